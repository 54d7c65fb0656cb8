"""Runs the base model on batches of prompts, one decoder layer at a time,
and pools the hidden state entering every layer.

The model is transformers' own (`AutoModelForCausalLM.from_config`), built
without weights (parameters on the meta device, buffers such as rotary
frequencies computed as usual). Its forward runs once per batch with every
decoder layer stubbed out, which records the arguments the model passes to
each layer (attention masks per layer type, rotary embeddings, position
ids), computed by the model's own code; then the layers run in order, each
loaded from the checkpoint, applied to every batch and dropped again. Peak
memory is the embedding table, one decoder layer and the batches' hidden
states, instead of the whole model; each layer's weights are read once
whatever the number of batches. The last decoder layer, the final norm and
the LM head never run: nothing reads their output.
"""

import concurrent.futures

import torch

from .checkpoint import Checkpoint
from .errors import CalibrationError

POOLINGS = ("last", "mean", "mean-padded")
DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16}


class _Recorded(Exception):
    """Raised by the stub of the last decoder layer: everything is recorded."""


def _first_line(error):
    text = str(error).strip()
    return text.splitlines()[0] if text else type(error).__name__


def empty_model(base_dir, dtype):
    import transformers
    from accelerate import init_empty_weights
    try:
        config = transformers.AutoConfig.from_pretrained(base_dir)
    except Exception as error:
        raise CalibrationError(f"{base_dir}: cannot read config.json "
                               f"({_first_line(error)})") from None
    try:
        with init_empty_weights(include_buffers=False):
            model = transformers.AutoModelForCausalLM.from_config(config, dtype=dtype)
    except Exception as error:
        raise CalibrationError(
            f"{base_dir}: transformers cannot build this model "
            f"({_first_line(error)})") from None
    return model.eval()


def _decoder_layers(model, base_dir):
    """(qualified name of the decoder layer list, the list)."""
    count = model.config.num_hidden_layers
    for name, module in model.named_modules():
        if isinstance(module, torch.nn.ModuleList) and name.endswith("layers") \
                and len(module) == count:
            return name, module
    raise CalibrationError(f"{base_dir}: no list of {count} decoder layers in "
                           f"{type(model).__name__}")


def _read(prefix, names, checkpoint, dtype):
    """{name: tensor in `dtype`} of the checkpoint's `prefix` + name."""
    tensors = checkpoint.read([prefix + name for name in names])
    return {name: tensors[prefix + name].to(dtype) for name in names}


def _assign(module, state, checkpoint):
    """Gives `module` the tensors of `state` (keys of its state dict)."""
    try:
        module.load_state_dict(state, assign=True, strict=False)
    except RuntimeError as error:  # a shape that differs from the config's
        raise CalibrationError(f"{checkpoint.directory}: "
                               f"{_first_line(error)}") from None


def _pool(hidden, mask, pooling):
    """[batch, hidden] from [batch, sequence, hidden]."""
    if pooling == "last":
        return hidden[:, -1, :]
    if pooling == "mean-padded":
        return hidden.sum(dim=1) / hidden.shape[1]
    weights = mask.to(hidden.dtype).unsqueeze(-1)
    return (hidden * weights).sum(dim=1) / weights.sum(dim=1)


def layer_inputs(base_dir, batches, pooling="last", dtype="float32", progress=None):
    """For every batch (a dict with 'input_ids' and 'attention_mask',
    left-padded), the pooled hidden state entering each decoder layer for
    each of its prompts: a list of [layers, prompts, hidden] tensors in
    `dtype`.

    `pooling`: 'last' (the last position, the prompt's last token under left
    padding), 'mean' (mean over the prompt's tokens), 'mean-padded' (mean
    over every position, padding included, as mergekit's hidden_avg).
    `progress(done, total)` is called after each layer."""
    if pooling not in POOLINGS:
        raise CalibrationError(f"pooling '{pooling}': expected one of "
                               f"{', '.join(POOLINGS)}")
    if dtype not in DTYPES:
        raise CalibrationError(f"dtype '{dtype}': expected one of "
                               f"{', '.join(DTYPES)}")
    torch_dtype = DTYPES[dtype]
    checkpoint = Checkpoint(base_dir)
    model = empty_model(base_dir, torch_dtype)
    layers_name, layers = _decoder_layers(model, base_dir)
    head = model.get_output_embeddings()
    head_keys = {name + "." + key for name, module in model.named_modules()
                 if module is head for key in module.state_dict()}

    with torch.inference_mode():
        # Everything outside the decoder layers but the head: the embeddings
        # and whatever else the model's forward reads before the first layer
        # (and the final norm, never run but tiny).
        outside = [key for key in model.state_dict()
                   if not key.startswith(layers_name + ".") and key not in head_keys]
        _assign(model, _read("", outside, checkpoint, torch_dtype), checkpoint)
        calls = _record_layer_calls(model, layers, batches)
        # The embedding table is no longer needed.
        model.get_input_embeddings().to("meta")

        hidden = [per_layer[0][0][0] for per_layer in calls]
        pooled = [[] for _ in batches]
        # The next layer's weights are read and converted while this one
        # runs (both release the GIL).
        with concurrent.futures.ThreadPoolExecutor(max_workers=1) as reader:
            def read(index):
                return reader.submit(_read, f"{layers_name}.{index}.",
                                     list(layers[index].state_dict()), checkpoint,
                                     torch_dtype)
            pending = read(0) if len(layers) > 1 else None
            for index, layer in enumerate(layers):
                for b, batch in enumerate(batches):
                    pooled[b].append(_pool(hidden[b], batch["attention_mask"], pooling))
                if index + 1 < len(layers):
                    state = pending.result()
                    pending = read(index + 1) if index + 2 < len(layers) else None
                    _assign(layer, state, checkpoint)
                    del state
                    for b in range(len(batches)):
                        args, kwargs = calls[b][index]
                        out = layer(hidden[b], *args[1:], **kwargs)
                        hidden[b] = out[0] if isinstance(out, tuple) else out
                    layer.to("meta")
                if progress:
                    progress(index + 1, len(layers))
    return [torch.stack(per_layer) for per_layer in pooled]


def _record_layer_calls(model, layers, batches):
    """Runs the model's forward on every batch with the decoder layers
    replaced by stubs that record their arguments (and pass the hidden
    state through); returns, per batch, per layer, (args, kwargs) with the
    layer's input hidden state as args[0]."""
    recorded = []
    last = len(layers) - 1

    def stub(index):
        def forward(*args, **kwargs):
            if "hidden_states" in kwargs:
                args = (kwargs.pop("hidden_states"),) + args
            recorded[-1].append((args, kwargs))
            if index == last:
                raise _Recorded
            return args[0]
        return forward

    for index, layer in enumerate(layers):
        layer.forward = stub(index)
    try:
        for batch in batches:
            recorded.append([])
            try:
                model(input_ids=batch["input_ids"],
                      attention_mask=batch["attention_mask"], use_cache=False)
            except _Recorded:
                pass
    finally:
        for layer in layers:
            del layer.forward
    return recorded
