"""Tensors and numpy reference logits of Inputs/onnx-tiny.mlir.

    python onnx_tiny_reference.py tensors DIR/tiny.safetensors
    python onnx_tiny_reference.py logits DIR/tiny.safetensors OUT.npy --ids IDS \
        --activation ACT [--gated] [--scoring softmax|sigmoid] [--renormalize] \
        [--after-topk]

The reference follows docs/generated/MoeDialect.md op by op, in float64.
"""

import argparse
import math
import sys

import numpy as np
from safetensors.numpy import load_file, save_file

SHAPES = {"table": (16, 8), "ln_weight": (8,), "ln_bias": (8,),
          "router": (4, 8), "gate": (4, 12, 8), "up": (4, 12, 8),
          "down": (4, 8, 12), "head": (16, 8)}


def tensors(path):
    rng = np.random.default_rng(7)
    values = {name: (rng.standard_normal(shape) * 0.5).astype(np.float32)
              for name, shape in SHAPES.items()}
    values["router"] *= 4  # decisive routing
    save_file(values, path)


def gelu(x):
    return 0.5 * x * (1 + np.vectorize(math.erf)(x / math.sqrt(2)))


def gelu_tanh(x):
    return 0.5 * x * (1 + np.tanh(math.sqrt(2 / math.pi) * (x + 0.044715 * x**3)))


ACTIVATIONS = {"silu": lambda x: x / (1 + np.exp(-x)), "gelu": gelu,
               "gelu_tanh": gelu_tanh, "relu": lambda x: np.maximum(x, 0),
               "identity": lambda x: x}


def logits(path, ids, activation, gated, scoring, renormalize, after_topk):
    t = {k: v.astype(np.float64) for k, v in load_file(path).items()}
    act = ACTIVATIONS[activation]
    h = t["table"][ids]                                   # [B, S, 8]
    a = gelu_tanh(h)
    mean = a.mean(-1, keepdims=True)
    var = ((a - mean) ** 2).mean(-1, keepdims=True)
    n = (a - mean) / np.sqrt(var + 1e-5) * t["ln_weight"] + t["ln_bias"]
    out = np.zeros_like(n)
    for b in range(n.shape[0]):
        for s in range(n.shape[1]):
            x = n[b, s]
            l = t["router"] @ x
            if scoring == "sigmoid":
                scores = 1 / (1 + np.exp(-l))
            elif after_topk:
                scores = l
            else:
                scores = np.exp(l - l.max()) / np.exp(l - l.max()).sum()
            chosen = np.argsort(-scores, kind="stable")[:2]
            w = scores[chosen]
            if scoring == "softmax" and after_topk:
                w = np.exp(w - w.max()) / np.exp(w - w.max()).sum()
            if renormalize:
                w = w / w.sum()
            for weight, e in zip(w, chosen):
                u = t["up"][e] @ x
                hidden = act(t["gate"][e] @ x) * u if gated else act(u)
                out[b, s] += weight * (t["down"][e] @ hidden)
    r = h + out
    return (r @ t["head"].T).astype(np.float32)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("command", choices=("tensors", "logits"))
    parser.add_argument("path")
    parser.add_argument("out", nargs="?")
    parser.add_argument("--ids")
    parser.add_argument("--activation", default="silu")
    parser.add_argument("--gated", action="store_true")
    parser.add_argument("--scoring", default="softmax")
    parser.add_argument("--renormalize", action="store_true")
    parser.add_argument("--after-topk", action="store_true")
    args = parser.parse_args(argv)
    if args.command == "tensors":
        tensors(args.path)
        return 0
    ids = np.array([[int(v) for v in row.split(",")] for row in args.ids.split(";")])
    np.save(args.out, logits(args.path, ids, args.activation, args.gated,
                             args.scoring, args.renormalize, args.after_topk))
    return 0


if __name__ == "__main__":
    sys.exit(main())
