"""Checks a Hugging Face checkpoint written by moe-mix against what
mergekit-moe 0.1.5 made of the same config (a record written by
bench/record_mergekit_references.py).

    check_mix.py OUT RECORD.json --routers exact
    check_mix.py OUT RECORD.json --routers definition --config CONFIG --models DIR
    check_mix.py OUT RECORD.json --routers random
    check_mix.py OUT RECORD.json --routers close

OUT is loaded with transformers (strictly: no missing, unexpected or
mismatched key, no warning), as float32 so that bfloat16 values are exact.
It must be the recorded model class with the recorded config fields, hold
the same parameters, and every parameter but the routers must be bitwise
the recorded one. Routers:

- `exact`: bitwise mergekit's (moe-mix with calibration dtype bfloat16);
- `definition`: within one bfloat16 ulp of mergekit's definition of the
  gate rows computed here independently in float64 by transformers' own
  forward (hidden state entering each layer at each prompt's last token,
  prompts prefixed with the bos text and left-padded with bos per expert,
  mean over prompts, minus the negative prompts' mean, L2-normalised) and
  rounded to the checkpoint's dtype. How far they are from mergekit's own
  bfloat16 arithmetic is printed.
- `close`: within one bfloat16 ulp of mergekit's rows, element by element
  (gate_mode cheap_embed, which mergekit computes in float32 too: both are
  roundings of the same float32-accurate rows);
- `random`: gate_mode random draws its own numbers; its rows must look like
  mergekit's torch.randn (standard normal: mean within 0.2 of 0, standard
  deviation within 15% of 1, over every router).

Prints one line; exits 1 with the reason on any difference.
"""

import argparse
import hashlib
import json
import math
import os
import sys

import torch
import transformers
import yaml

from moe_testing.hf_export import _load as load_strictly


def ulps(a, b):
    """Largest |a - b| in bfloat16 ulps of each element's magnitude."""
    worst = 0.0
    for x, y in zip(a.flatten().tolist(), b.flatten().tolist()):
        scale = max(abs(x), abs(y))
        if scale:
            worst = max(worst, abs(x - y) / 2.0 ** (math.floor(math.log2(scale)) - 7))
    return worst


def row_ulps(a, b):
    """Largest |a - b| in bfloat16 ulps of its row's largest magnitude: the
    rounding error of bfloat16 arithmetic on the row."""
    worst = 0.0
    for x, y in zip(a.reshape(-1, a.shape[-1]), b.reshape(-1, b.shape[-1])):
        scale = max(x.abs().max().item(), y.abs().max().item())
        if scale:
            ulp = 2.0 ** (math.floor(math.log2(scale)) - 7)
            worst = max(worst, (x - y).abs().max().item() / ulp)
    return worst


def definition_rows(config_path, models, dtype):
    """{state dict name: router rows} by mergekit's definition, float64."""
    with open(config_path) as f:
        config = yaml.safe_load(f)
    base = os.path.join(models, config["base_model"])
    tokenizer = transformers.AutoTokenizer.from_pretrained(base)
    tokenizer.padding_side = "left"
    tokenizer.pad_token_id = tokenizer.bos_token_id
    model = transformers.AutoModelForCausalLM.from_pretrained(
        base, dtype=torch.float64).eval()

    def mean_last(prompts):
        batch = tokenizer([tokenizer.bos_token + p for p in prompts], return_tensors="pt",
                          padding=True, add_special_tokens=False)
        with torch.no_grad():
            states = model(**batch, output_hidden_states=True).hidden_states[:-1]
        return torch.stack(states)[:, :, -1, :].mean(dim=1)

    def rows(expert):
        vector = mean_last(expert["positive_prompts"])
        if expert.get("negative_prompts"):
            vector = vector - mean_last(expert["negative_prompts"])
        return vector / vector.norm(dim=-1, keepdim=True)

    routed = torch.stack([rows(e) for e in config["experts"]], dim=1)
    result = {}
    for layer in range(routed.shape[0]):
        result[f"model.layers.{layer}.mlp.gate.weight"] = routed[layer]
    for shared in config.get("shared_experts") or []:
        gate = rows(shared)
        for layer in range(gate.shape[0]):
            result[f"model.layers.{layer}.mlp.shared_expert_gate.weight"] = \
                gate[layer].unsqueeze(0)
    return {name: value.to(dtype).float() for name, value in result.items()}


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("out")
    parser.add_argument("record")
    parser.add_argument("--routers", choices=["exact", "definition", "close", "random"],
                        required=True)
    parser.add_argument("--config")
    parser.add_argument("--models")
    args = parser.parse_args()
    with open(args.record) as f:
        record = json.load(f)

    model = load_strictly(args.out)
    if type(model).__name__ != record["class"]:
        sys.exit(f"{args.out}: {type(model).__name__}, mergekit made {record['class']}")
    with open(os.path.join(args.out, "config.json")) as f:
        config = json.load(f)
    for key, value in record["config"].items():
        if config.get(key) != value:
            sys.exit(f"{args.out}: config.json {key} is {config.get(key)!r}, "
                     f"mergekit wrote {value!r}")
    state = {name: value.detach().contiguous() for name, value in model.state_dict().items()}
    if sorted(state) != sorted(record["tensors"]):
        sys.exit(f"{args.out}: parameters differ: "
                 f"{sorted(set(state) ^ set(record['tensors']))}")

    stored = {"bfloat16": torch.bfloat16, "float16": torch.float16,
              "float32": torch.float32}[config["dtype"]]
    expected = definition_rows(args.config, args.models, stored) \
        if args.routers == "definition" else {}
    routers, bitwise, worst, from_mergekit = 0, 0, 0.0, 0.0
    drawn = []
    for name, entry in record["tensors"].items():
        value = state[name]
        if list(value.shape) != entry["shape"]:
            sys.exit(f"{name}: shape {list(value.shape)}, mergekit {entry['shape']}")
        if "values" not in entry:
            if hashlib.sha256(value.numpy().tobytes()).hexdigest() != entry["sha256"]:
                sys.exit(f"{name}: not bitwise mergekit-moe's tensor")
            bitwise += 1
            continue
        routers += 1
        theirs = torch.tensor(entry["values"], dtype=torch.float32)
        if args.routers == "random":
            drawn.append(value.flatten())
            continue
        if args.routers == "close":
            distance = ulps(value, theirs)
            worst = max(worst, distance)
            if distance > 1:
                sys.exit(f"{name}: {distance:.1f} bfloat16 ulp from mergekit-moe's rows")
            continue
        if args.routers == "exact":
            if not torch.equal(value, theirs):
                sys.exit(f"{name}: differs from mergekit-moe's by "
                         f"{ulps(value, theirs):.1f} ulp")
            continue
        distance = ulps(value, expected[name])
        worst = max(worst, distance)
        from_mergekit = max(from_mergekit, row_ulps(value, theirs))
        if distance > 1:
            sys.exit(f"{name}: {distance:.1f} bfloat16 ulp from mergekit's definition")
    if args.routers == "random":
        values = torch.cat(drawn)
        mean, std = values.mean().item(), values.std().item()
        if abs(mean) > 0.2 or abs(std - 1) > 0.15:
            sys.exit(f"router values: mean {mean:.3f}, std {std:.3f}; mergekit "
                     "draws from a standard normal")
        summary = f"standard normal ({len(values)} values)"
    elif args.routers == "exact":
        summary = "bitwise mergekit-moe's"
    elif args.routers == "close":
        summary = f"within {worst:.0f} ulp of mergekit-moe's"
    else:
        summary = (
            f"within {worst:.0f} ulp of mergekit's definition ({from_mergekit:.1f} ulp "
            "of the row's scale from mergekit-moe's bfloat16 arithmetic)")
    print(f"{type(model).__name__}: {bitwise} tensors bitwise mergekit-moe's; "
          f"{routers} router tensors {summary}")


if __name__ == "__main__":
    main()
