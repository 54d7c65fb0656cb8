"""Checks moe-calibrate outputs against the definitions, recomputed here
with transformers' full forward pass (no streaming, no code of
moe_calibrate).

    check_prototypes.py BASE --set NAME=P1|P2[:N1|N2] ... \
        --check "FILE [mode=hidden|cheap-embed] [pooling=last|mean|mean-padded]
                 [dtype=float32|bfloat16] [rows] [shared=NAME] [sets=A,B]" ...

Each --set gives an expert's positive prompts (separated by '|') and, after
':', its negative ones. Each --check names a file and how it was made:
without `rows`, its tensor 'prototypes' must be the definition's [layers,
experts, hidden] prototypes; with `rows`, it must hold router=given's
normalised rows (and with `shared`, that set's row as the shared expert
gate). `sets` picks the sets the file was made from (default: all).

- hidden, float32: the model in float64; prompts prefixed with the bos text,
  left-padded with bos per expert; per layer the state entering it (the
  last position, the mean over the prompt's tokens, or the mean over the
  padded batch); mean over prompts; positive minus negative. Tolerance:
  relative 1e-5 (moe-calibrate computes in float32).
- hidden, bfloat16: mergekit-moe 0.1.5's arithmetic (model in bfloat16,
  output_hidden_states, bfloat16 means and difference, bfloat16 row
  normalisation for rows); must be bitwise equal.
- cheap-embed: sum of the raw embedding rows of every prompt token (bos
  included, padding excluded), L2-normalised, minus the same of the
  negative prompts, every layer; relative 1e-6.

Prints a line per file.
"""

import argparse
import sys

import torch
import transformers
from safetensors.torch import load_file


def definition(base, sets, mode, pooling, dtype, models):
    """{set name: [layers, hidden]} by the definitions above."""
    tokenizer = transformers.AutoTokenizer.from_pretrained(base)
    tokenizer.padding_side = "left"
    tokenizer.pad_token_id = tokenizer.bos_token_id

    def batch(prompts):
        return tokenizer([tokenizer.bos_token + p for p in prompts], return_tensors="pt",
                         padding=True, add_special_tokens=False)

    if dtype not in models:
        models[dtype] = transformers.AutoModelForCausalLM.from_pretrained(base, dtype=dtype)
    model = models[dtype]
    if mode == "hidden":
        def vector(prompts):
            encoded = batch(prompts)
            with torch.no_grad():
                states = torch.stack(model(**encoded, output_hidden_states=True)
                                     .hidden_states[:-1])
            if pooling == "last":
                pooled = states[:, :, -1, :]
            elif pooling == "mean-padded":
                pooled = states.sum(dim=2) / states.shape[2]
            else:
                mask = encoded["attention_mask"].to(dtype)[None, :, :, None]
                pooled = (states * mask).sum(dim=2) / mask.sum(dim=2)
            return pooled.sum(dim=1) / pooled.shape[1]
    else:
        table = model.get_input_embeddings().weight.detach()
        layers = model.config.num_hidden_layers

        def vector(prompts):
            encoded = batch(prompts)
            summed = (table[encoded["input_ids"]]
                      * encoded["attention_mask"].unsqueeze(-1)).sum(dim=(0, 1))
            return (summed / summed.norm()).expand(layers, -1)

    rows = {}
    for name, positive, negative in sets:
        value = vector(positive)
        if negative:
            value = value - vector(negative)
        rows[name] = value
    return rows


def check(path, base, sets, options, models):
    mode = options.get("mode", "hidden")
    exact = options.get("dtype") == "bfloat16"
    rows = definition(base, sets, mode, options.get("pooling", "last"),
                      torch.bfloat16 if exact and mode == "hidden" else torch.float64,
                      models)
    tensors = load_file(path)

    def compare(name, got, want):
        if exact:
            if not torch.equal(got, want.float()):
                sys.exit(f"{path}: {name}: not bitwise mergekit-moe's arithmetic (max "
                         f"|difference| {(got - want.float()).abs().max():.3g})")
            return 0.0
        error = ((got.double() - want).abs().max() / want.abs().max()).item()
        tolerance = 1e-5 if mode == "hidden" else 1e-6
        if not error <= tolerance:
            sys.exit(f"{path}: {name}: relative error {error:.3g} > {tolerance:g}")
        return error

    worst = 0.0
    if "rows" not in options:
        want = torch.stack([rows[name] for name, _, _ in sets], dim=1)
        worst = compare("prototypes", tensors["prototypes"], want)
        expected_keys = ["prototypes"]
    else:
        def unit(x):
            return x / x.norm(p=2, dim=-1, keepdim=True).clamp(min=1e-8)
        shared = options.get("shared")
        routed = [name for name, _, _ in sets if name != shared]
        expected_keys = []
        for layer in range(next(iter(rows.values())).shape[0]):
            key = f"model.layers.{layer}.block_sparse_moe.gate.weight"
            expected_keys.append(key)
            want = unit(torch.stack([rows[name][layer] for name in routed]))
            worst = max(worst, compare(key, tensors[key], want))
            if shared:
                key = f"model.layers.{layer}.mlp.shared_expert_gate.weight"
                expected_keys.append(key)
                worst = max(worst, compare(key, tensors[key],
                                           unit(rows[shared][layer]).unsqueeze(0)))
    if sorted(tensors) != sorted(expected_keys):
        sys.exit(f"{path}: tensors {sorted(tensors)}, expected {sorted(expected_keys)}")
    shapes = ", ".join(f"{key} {list(tensors[key].shape)}" for key in sorted(tensors)[:2])
    how = "bitwise mergekit-moe's arithmetic" if exact else f"max relative error {worst:.1e}"
    print(f"{path}: {len(tensors)} tensors ({shapes}{', ...' if len(tensors) > 2 else ''}), "
          f"{how}")


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("base")
    parser.add_argument("--set", action="append", required=True)
    parser.add_argument("--check", action="append", required=True)
    args = parser.parse_args()
    sets = []
    for spec in args.set:
        name, _, prompts = spec.partition("=")
        positive, _, negative = prompts.partition(":")
        sets.append((name, positive.split("|"), negative.split("|") if negative else []))
    models = {}
    for spec in args.check:
        path, *words = spec.split()
        options = dict(word.partition("=")[::2] for word in words)
        chosen = options.get("sets")
        check(path, args.base, [s for s in sets if not chosen or s[0] in chosen.split(",")],
              options, models)


if __name__ == "__main__":
    main()
