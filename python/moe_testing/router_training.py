"""Checks of moe-train-router's outputs, for lit tests.

    python -m moe_testing.router_training changed BEFORE AFTER --only router[,experts,...]
    python -m moe_testing.router_training same A B     (directories or files)
    python -m moe_testing.router_training lower EVAL.json BEFORE_NAME AFTER_NAME
    python -m moe_testing.router_training routers FILE.safetensors --layers 0,1 \\
        [--bias 0,-4,-4]

`changed` compares every tensor of two Hugging Face checkpoints on disk
(their safetensors files, by name): tensors of the named groups (router:
the router/gate weights, shared-expert-gate, experts, attention) may
differ and at least one router tensor must; every other tensor must be
bitwise equal. `same` requires every tensor to be bitwise equal (and the
same names). `lower` reads a moe-eval JSON and requires AFTER's
token-weighted mean NLL over all domains to be below BEFORE's. `routers`
checks the key set and dtype of a router=given file and, with --bias, that
each layer's bias is within --bias-tolerance of the one the run started
from (base-init).
Each prints one line and exits 1 on failure.
"""

import argparse
import json
import os
import re
import sys

GROUPS = {
    "router": r"\.(block_sparse_moe\.gate|mlp\.gate|block_sparse_moe\.router\.layer)\.weight$",
    "shared-expert-gate": r"\.mlp\.shared_expert_gate\.weight$",
    "experts": r"\.(block_sparse_moe\.(experts\.|input_linear|output_linear)|mlp\.experts\.)",
    "attention": r"\.self_attn\.",
}


def _tensors(directory):
    """Every tensor of a checkpoint directory, or of one safetensors file."""
    from safetensors.torch import load_file
    if os.path.isfile(directory):
        return load_file(directory)
    tensors = {}
    for name in sorted(os.listdir(directory)):
        if name.endswith(".safetensors"):
            tensors.update(load_file(os.path.join(directory, name)))
    if not tensors:
        raise SystemExit(f"{directory}: no safetensors files")
    return tensors


def changed(args):
    import torch
    before, after = _tensors(args.before), _tensors(args.after)
    if sorted(before) != sorted(after):
        raise SystemExit(f"the checkpoints hold different tensors: "
                         f"{sorted(set(before) ^ set(after))}")
    allowed = [re.compile(GROUPS[group]) for group in args.only.split(",")]
    router = re.compile(GROUPS["router"])
    moved, routers_moved = [], 0
    for name in sorted(before):
        if torch.equal(before[name], after[name]):
            continue
        if not any(pattern.search(name) for pattern in allowed):
            raise SystemExit(f"{name} changed, but only {args.only} may")
        moved.append(name)
        routers_moved += bool(router.search(name))
    if not routers_moved:
        raise SystemExit("no router weight changed")
    print(f"{len(moved)} of {len(before)} tensors changed ({routers_moved} "
          f"router weights), all in: {args.only}")


def same(args):
    import torch
    first, second = _tensors(args.first), _tensors(args.second)
    if sorted(first) != sorted(second):
        raise SystemExit(f"the checkpoints hold different tensors: "
                         f"{sorted(set(first) ^ set(second))}")
    for name in sorted(first):
        if first[name].dtype != second[name].dtype or not torch.equal(first[name], second[name]):
            raise SystemExit(f"{name} differs")
    print(f"{len(first)} tensors bitwise equal")


def lower(args):
    with open(args.eval_json) as f:
        report = json.load(f)
    models = {m["name"]: m for m in report["models"]}

    def mean_nll(name):
        model = models[name]
        return sum(model["nll"].values()) / sum(model["tokens"].values())

    before, after = mean_nll(args.before), mean_nll(args.after)
    print(f"mean NLL per token: {args.before} {before:.6f}, {args.after} {after:.6f}")
    if not after < before:
        raise SystemExit("the loss did not go down")


def routers(args):
    from safetensors.torch import load_file
    tensors = load_file(args.file)
    layers = [int(x) for x in args.layers.split(",")]
    expected = {f"model.layers.{l}.block_sparse_moe.gate.weight" for l in layers}
    if args.bias is not None:
        expected |= {f"model.layers.{l}.block_sparse_moe.gate.bias" for l in layers}
    if args.shared_gate:
        expected |= {f"model.layers.{l}.mlp.shared_expert_gate.weight" for l in layers}
    if set(tensors) != expected:
        raise SystemExit(f"{args.file}: keys {sorted(tensors)}, expected {sorted(expected)}")
    for name, tensor in tensors.items():
        if str(tensor.dtype) != "torch.float32":
            raise SystemExit(f"{args.file}: {name} is {tensor.dtype}, not float32")
    if args.bias is not None:
        start = [float(x) for x in args.bias.split(",")]
        for layer in layers:
            bias = tensors[f"model.layers.{layer}.block_sparse_moe.gate.bias"].tolist()
            drift = max(abs(a - b) for a, b in zip(bias, start))
            if len(bias) != len(start) or drift > args.bias_tolerance:
                raise SystemExit(f"{args.file}: layer {layer} bias {bias}, expected "
                                 f"within {args.bias_tolerance} of {start}")
    print(f"{args.file}: {len(tensors)} tensors as expected")


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m moe_testing.router_training",
                                     description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)
    sub = commands.add_parser("changed")
    sub.add_argument("before")
    sub.add_argument("after")
    sub.add_argument("--only", default="router")
    sub.set_defaults(run=changed)
    sub = commands.add_parser("same")
    sub.add_argument("first")
    sub.add_argument("second")
    sub.set_defaults(run=same)
    sub = commands.add_parser("lower")
    sub.add_argument("eval_json")
    sub.add_argument("before")
    sub.add_argument("after")
    sub.set_defaults(run=lower)
    sub = commands.add_parser("routers")
    sub.add_argument("file")
    sub.add_argument("--layers", required=True)
    sub.add_argument("--bias", help="the bias the run started from")
    sub.add_argument("--bias-tolerance", type=float, default=1.0)
    sub.add_argument("--shared-gate", action="store_true")
    sub.set_defaults(run=routers)
    args = parser.parse_args(argv)
    args.run(args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
