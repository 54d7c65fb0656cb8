"""Models that moe-eval scores: Hugging Face checkpoints (dense or MoE, or a
PEFT adapter on its base) run by transformers, and ONNX exports of ours run
by ONNX Runtime: the prefill form (`input_ids [B, S] -> logits [B, S, V]`)
or the KV-cache form (`--onnx-form=kv-cache`: also `attention_mask`,
`position_ids` and `past_key_values.{i}.key/value` in, fed as one prefill
with an empty past)."""

import json
import os
import warnings

import numpy as np


class ModelError(Exception):
    """A model that cannot be loaded or run (the message names it)."""


def parse_model_spec(spec):
    """NAME=PATH, or PATH named after its last path component."""
    name, sep, path = spec.partition("=")
    if not sep:
        name, path = os.path.basename(os.path.normpath(spec)), spec
        if name.endswith(".onnx"):
            name = name[:-len(".onnx")]
    if not name or not path:
        raise ModelError(f"model {spec!r}: expected NAME=PATH or PATH")
    return name, path


def check_model_path(path):
    """Fails early (before anything heavy is loaded) on a path that is
    neither an ONNX file nor a checkpoint or adapter directory."""
    if path.endswith(".onnx"):
        if not os.path.isfile(path):
            raise ModelError(f"{path}: no such ONNX file")
        return "onnx"
    if not os.path.isdir(path):
        raise ModelError(f"{path}: no such directory (a model is a Hugging "
                         "Face checkpoint or PEFT adapter directory, or a "
                         ".onnx file)")
    if os.path.isfile(os.path.join(path, "adapter_config.json")):
        return "adapter"
    if not os.path.isfile(os.path.join(path, "config.json")):
        raise ModelError(f"{path}: no config.json (not a Hugging Face "
                         "checkpoint) and no adapter_config.json (not a PEFT "
                         "adapter)")
    return "hf"


def _quiet_transformers():
    import transformers
    transformers.logging.set_verbosity_error()
    transformers.logging.disable_progress_bar()


def load_tokenizer(path):
    import transformers
    _quiet_transformers()
    try:
        return transformers.AutoTokenizer.from_pretrained(path)
    except Exception as error:  # transformers raises many kinds
        raise ModelError(f"{path}: no usable tokenizer: "
                         f"{str(error).splitlines()[0]}") from None


class HFModel:
    """A transformers causal LM; `adapter_base` is set for PEFT adapters."""

    kind = "hf"

    def __init__(self, name, path, device, dtype, adapter_base=None):
        import torch
        import transformers
        _quiet_transformers()
        self.name, self.path, self.device = name, path, device
        self.source = path
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            try:
                if adapter_base is None:
                    model = transformers.AutoModelForCausalLM.from_pretrained(
                        path, dtype=getattr(torch, dtype),
                        trust_remote_code=False)
                    tokenizer_dir = path
                else:
                    import peft
                    model = transformers.AutoModelForCausalLM.from_pretrained(
                        adapter_base, dtype=getattr(torch, dtype),
                        trust_remote_code=False)
                    model = peft.PeftModel.from_pretrained(model, path)
                    tokenizer_dir = adapter_base
                    self.source = f"{path} on {adapter_base}"
            except Exception as error:
                raise ModelError(f"{path}: cannot be loaded by transformers: "
                                 f"{str(error).splitlines()[0]}") from None
        self.model = model.to(device).eval()
        self.config = (model.get_base_model() if adapter_base else model).config
        self.architecture = type(model.get_base_model() if adapter_base
                                 else model).__name__
        self.tokenizer = load_tokenizer(tokenizer_dir)
        self.tokenizer_dir = tokenizer_dir
        self.vocab_size = self.config.vocab_size
        self.max_positions = getattr(self.config, "max_position_embeddings",
                                     None)

    def logits(self, ids):
        """[B, S] int64 numpy -> [B, S, V] torch float32 (on CPU)."""
        import torch
        with torch.no_grad():
            batch = torch.from_numpy(ids).to(self.device)
            return self.model(input_ids=batch, use_cache=False).logits.float()

    def base_model(self):
        """The transformers model without a PEFT wrapper."""
        return (self.model.get_base_model()
                if hasattr(self.model, "get_base_model") else self.model)


def kv_cache_feeds(inputs, path):
    """For the inputs of a KV-cache model (beside input_ids), a function of
    the ids [B, S] that gives them for a prefill: an all-ones attention_mask,
    position_ids 0..S-1 and empty pasts [B, kv heads, 0, head dim]."""
    dtypes = {"tensor(float)": np.float32, "tensor(float16)": np.float16}
    pasts = [i for i in inputs if i.name.startswith("past_key_values.")]
    others = sorted(i.name for i in inputs
                    if not i.name.startswith("past_key_values."))
    if others != ["attention_mask", "input_ids", "position_ids"] or not pasts:
        return None
    for past in pasts:
        if len(past.shape) != 4 or not isinstance(past.shape[1], int) or \
                not isinstance(past.shape[3], int) or past.type not in dtypes:
            raise ModelError(f"{path}: input {past.name} is {past.type} "
                             f"{past.shape}, expected float [batch, kv heads, "
                             "past, head dim]")

    def feeds(ids):
        batch, length = ids.shape
        positions = np.broadcast_to(np.arange(length, dtype=np.int64),
                                    (batch, length))
        feed = {"attention_mask": np.ones((batch, length), np.int64),
                "position_ids": np.ascontiguousarray(positions)}
        for past in pasts:
            feed[past.name] = np.zeros((batch, past.shape[1], 0, past.shape[3]),
                                       dtype=dtypes[past.type])
        return feed
    return feeds


class ONNXModel:
    """An ONNX export with an int64 input_ids and a logits output: the
    prefill form, or the KV-cache form run as a prefill."""

    kind = "onnx"

    def __init__(self, name, path, tokenizer_dir, device):
        import onnxruntime
        self.name, self.path, self.source = name, path, path
        if tokenizer_dir is None:
            raise ModelError(f"{path}: an ONNX model carries no tokenizer: "
                             "give --tokenizer DIR (the base model's "
                             "directory)")
        providers = ["CPUExecutionProvider"]
        if device.startswith("cuda"):
            if "CUDAExecutionProvider" not in onnxruntime.get_available_providers():
                raise ModelError(f"{path}: --device {device}, but this "
                                 "onnxruntime has no CUDA execution provider")
            providers.insert(0, "CUDAExecutionProvider")
        options = onnxruntime.SessionOptions()
        options.log_severity_level = 3
        try:
            self.session = onnxruntime.InferenceSession(
                path, options, providers=providers)
        except Exception as error:
            raise ModelError(f"{path}: ONNX Runtime cannot load it: "
                             f"{str(error).splitlines()[0]}") from None
        inputs = self.session.get_inputs()
        outputs = self.session.get_outputs()
        types = {i.name: i.type for i in inputs}
        self.extra_feeds = (None if list(types) == ["input_ids"]
                            else kv_cache_feeds(inputs, path))
        if types.get("input_ids") != "tensor(int64)" or \
                "logits" not in [o.name for o in outputs] or \
                (len(types) > 1 and self.extra_feeds is None):
            raise ModelError(
                f"{path}: expected an int64 input 'input_ids' (alone, or "
                "with attention_mask, position_ids and past_key_values.*) "
                f"and an output 'logits', found inputs "
                f"{[(i.name, i.type) for i in inputs]} and outputs "
                f"{[o.name for o in outputs]}")
        vocab = outputs[[o.name for o in outputs].index("logits")].shape[-1]
        self.vocab_size = vocab if isinstance(vocab, int) else None
        self.architecture = "ONNX"
        self.config = None
        self.max_positions = None
        self.tokenizer = load_tokenizer(tokenizer_dir)
        self.tokenizer_dir = tokenizer_dir

    def logits(self, ids):
        import torch
        feed = {"input_ids": ids}
        if self.extra_feeds is not None:
            feed.update(self.extra_feeds(ids))
        (logits,) = self.session.run(["logits"], feed)
        return torch.from_numpy(np.asarray(logits, dtype=np.float32))


def adapter_base_of(path, override):
    """The base directory a PEFT adapter applies to."""
    if override:
        return override
    with open(os.path.join(path, "adapter_config.json")) as f:
        try:
            base = json.load(f).get("base_model_name_or_path")
        except json.JSONDecodeError as error:
            raise ModelError(f"{path}/adapter_config.json: invalid JSON: "
                             f"{error}") from None
    if not base or not os.path.isdir(base):
        raise ModelError(f"{path}: its base_model_name_or_path {base!r} is "
                         "not a local directory: give --adapter-base DIR")
    return base


def load_model(name, path, kind, device, dtype, tokenizer_dir, adapter_base):
    if kind == "onnx":
        return ONNXModel(name, path, tokenizer_dir, device)
    if kind == "adapter":
        return HFModel(name, path, device, dtype,
                       adapter_base_of(path, adapter_base))
    return HFModel(name, path, device, dtype)
