"""Self-check of the fixtures: ``python -m moe_fixtures.verify``.

Builds every fixture into the cache (timing each), loads each back with
transformers (adapters with peft) and runs a forward pass, checks the
properties the catalog promises (shards, tying, dtypes, experts' distance
from their base, adapters changing the output, the wide adapter not fitting
llama), and checks that every malformed kind is broken as documented. Prints
one line per check and exits non-zero on the first failure.
"""

import json
import tempfile
import time
import warnings
from pathlib import Path

import torch
import transformers
from peft import PeftModel
from safetensors import SafetensorError, safe_open

from . import cache, malformed, models, safetensors_io
from .catalog import FIXTURES, AdapterSpec

IDS = [[1] + list(range(5, 5 + 4 * 23, 4)), list(range(100, 76, -1))]


def _load(path):
    return transformers.AutoModelForCausalLM.from_pretrained(
        path, dtype=torch.float32, attn_implementation="eager")


def _logits(model):
    with torch.no_grad():
        return model(input_ids=torch.tensor(IDS)).logits


def _tensors(path):
    """name -> (dtype string, shape) over every safetensors file in path."""
    found = {}
    for file in sorted(Path(path).glob("*.safetensors")):
        with safe_open(file, "pt") as handle:
            for name in handle.keys():
                piece = handle.get_slice(name)
                found[name] = (piece.get_dtype(), piece.get_shape())
    return found


def _relative(a, b):
    return float((a - b).norm() / b.norm())


def check_models(paths):
    for name, fixture in FIXTURES.items():
        spec = fixture.spec
        if isinstance(spec, AdapterSpec):
            continue
        path = paths[name]
        model = _load(path)
        logits = _logits(model)
        config = model.config
        assert logits.shape == (2, len(IDS[0]), config.vocab_size)
        assert torch.isfinite(logits).all()
        tensors = _tensors(path)
        dtypes = {dtype for dtype, _ in tensors.values()}
        assert dtypes == {"BF16" if spec.dtype == "bfloat16" else "F32"}, dtypes
        assert ("lm_head.weight" in tensors) != config.tie_word_embeddings
        notes = [f"{len(tensors)} tensors", spec.dtype]
        if spec.family in models.WITHOUT_TOKENIZER:
            assert not (Path(path) / "tokenizer.json").exists()
            notes.append("no tokenizer")
        else:
            tokenizer = transformers.AutoTokenizer.from_pretrained(path)
            assert tokenizer("w5 w6")["input_ids"] == [1, 5, 6]
        if spec.max_shard_size:
            shards = len(list(Path(path).glob("model-*.safetensors")))
            assert shards >= 3, shards
            assert (Path(path) / "model.safetensors.index.json").exists()
            notes.append(f"{shards} shards")
        if config.tie_word_embeddings:
            assert model.lm_head.weight is model.model.embed_tokens.weight
            notes.append("tied, no lm_head.weight on disk")
        if spec.weights_from:
            base = _logits(_load(paths[spec.weights_from]))
            notes.append(f"logits vs {spec.weights_from}: rel "
                         f"{_relative(logits, base):.3g}")
            if spec.perturb:
                notes.append(_expert_distance(path, paths[spec.weights_from]))
        print(f"ok   model   {name:<18} {', '.join(notes)}")


def _expert_distance(path, base_path):
    """Relative distance of MLP and other weights (not the small biases)
    from the base."""
    expert = _load(path).state_dict()
    base = _load(base_path).state_dict()
    weights = [key for key in base if key.endswith(".weight")]
    mlp = [_relative(expert[key], base[key]) for key in weights
           if ".mlp." in key]
    rest = [_relative(expert[key], base[key]) for key in weights
            if ".mlp." not in key]
    assert min(mlp) > 0.05 and max(rest) < 0.03, (min(mlp), max(rest))
    return (f"weights rel dist mlp {min(mlp):.2f}..{max(mlp):.2f}, "
            f"rest {min(rest):.3f}..{max(rest):.3f}")


def check_sliding_window(paths):
    """mistral's window of 16 changes the logits from position 16 on only."""
    config = transformers.AutoConfig.from_pretrained(paths["mistral"])
    config.sliding_window = None
    windowless = transformers.AutoModelForCausalLM.from_pretrained(
        paths["mistral"], config=config, attn_implementation="eager")
    gap = (_logits(_load(paths["mistral"])) - _logits(windowless)).abs()
    per_position = gap.amax(dim=(0, 2))
    assert per_position[:16].max() == 0 and per_position[16:].min() > 1e-3
    print(f"ok   model   mistral            sliding window: logits change "
          f"from position 16 (max {float(per_position.max()):.3g})")


def check_adapters(paths):
    for name, fixture in FIXTURES.items():
        spec = fixture.spec
        if not isinstance(spec, AdapterSpec):
            continue
        path = paths[name]
        config = json.loads((Path(path) / "adapter_config.json").read_text())
        assert config["base_model_name_or_path"] == spec.base
        assert (config["r"], config["lora_alpha"], config["use_rslora"]) \
            == (spec.r, spec.lora_alpha, spec.use_rslora)
        assert config["target_modules"] == sorted(spec.target_modules)
        tensors = _tensors(path)
        with safe_open(Path(path) / "adapter_model.safetensors", "pt") as f:
            assert all(f.get_tensor(key).abs().max() > 0 for key in f.keys())
        base = _load(paths[spec.base])
        plain = _logits(base)
        adapted = _logits(PeftModel.from_pretrained(base, path))
        change = _relative(adapted, plain)
        assert change > 1e-3, change
        print(f"ok   adapter {name:<18} {len(tensors)} tensors, logits change "
              f"rel {change:.3g}")
    try:
        PeftModel.from_pretrained(_load(paths["llama"]),
                                  paths["llama-lora-wide"])
    except RuntimeError as error:
        print("ok   adapter llama-lora-wide on llama fails: "
              + str(error).splitlines()[1].strip())
    else:
        raise AssertionError("llama-lora-wide loaded onto llama")


def _safe_open_error(path):
    """safetensors' error reading every tensor of path, or None."""
    try:
        with safe_open(path, "pt") as handle:
            for name in handle.keys():
                handle.get_tensor(name)
    except (SafetensorError, OSError) as error:
        return str(error)
    return None


def _load_report(path):
    """What from_pretrained makes of path: its error or its missing keys."""
    try:
        _, info = transformers.AutoModelForCausalLM.from_pretrained(
            path, output_loading_info=True)
    except Exception as error:  # whatever transformers raises is reported
        return (f"from_pretrained raises {type(error).__name__}: "
                f"{str(error).splitlines()[0][:120]}")
    return f"from_pretrained loads, missing keys {info['missing_keys']}"


def _header_names(path):
    raw = path.read_bytes()
    length = int.from_bytes(raw[:8], "little")
    pairs = json.loads(raw[8:8 + length], object_pairs_hook=list)
    return [name for name, _ in pairs]


def _check_malformed(kind, dest):
    """Asserts that dest is broken as ``kind`` promises; returns what the
    reference libraries say about it."""
    single = dest / "model.safetensors"
    if kind == "missing-shard":
        index = json.loads((dest / "model.safetensors.index.json").read_text())
        missing = sorted({file for file in index["weight_map"].values()
                          if not (dest / file).exists()})
        assert missing == ["model-00002-of-00003.safetensors"], missing
        return _load_report(dest)
    if kind == "config-mismatch":
        config = json.loads((dest / "config.json").read_text())
        assert config["hidden_size"] == 48
        assert _tensors(dest)["lm_head.weight"][1] == [128, 32]
        return _load_report(dest)
    if kind == "missing-tensor":
        assert _safe_open_error(single) is None
        assert "model.layers.1.mlp.down_proj.weight" not in _tensors(dest)
        return "safe_open accepts; " + _load_report(dest)
    if kind == "int-weights":
        assert _safe_open_error(single) is None
        gate = _tensors(dest)["model.layers.1.mlp.gate_proj.weight"]
        assert gate == ("I32", [64, 32]), gate
        return "safe_open accepts; " + _load_report(dest)
    if kind == "duplicate-key":
        names = _header_names(single)
        assert names.count("model.layers.0.mlp.down_proj.weight") == 2
    error = _safe_open_error(single)
    assert error, f"safe_open accepts {kind}"
    return "safe_open: " + error


def check_malformed():
    for kind in malformed.KINDS:
        with tempfile.TemporaryDirectory() as scratch:
            dest = Path(scratch) / kind
            malformed.write(kind, dest)
            print(f"ok   malformed {kind:<21} {_check_malformed(kind, dest)}")


def main():
    warnings.simplefilter("ignore")
    transformers.logging.set_verbosity_error()
    transformers.logging.disable_progress_bar()
    paths, total = {}, time.perf_counter()
    for name in FIXTURES:
        start = time.perf_counter()
        paths[name] = cache.ensure(name)
        print(f"ok   build   {name:<18} {time.perf_counter() - start:.2f}s")
    print(f"all fixtures ready in {time.perf_counter() - total:.1f}s "
          f"(in {cache.root()})")
    check_models(paths)
    check_sliding_window(paths)
    check_adapters(paths)
    check_malformed()
    # The data-region size that malformed.py's docstring states.
    llama = safetensors_io.read(paths["llama"] / "model.safetensors")
    assert sum(len(tensor.data) for tensor in llama) == 107136
    print("all checks passed")


if __name__ == "__main__":
    main()
