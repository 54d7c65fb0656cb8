"""Writes a safetensors file from tensor specifications, for lit tests.

    python -m moe_testing.write_tensors OUT.safetensors NAME=SHAPE[:KIND[:SEED]] ...

SHAPE is like 2x3x8. KIND is one of
  normal     seeded standard normal values (the default)
  zeros      all zeros
  duplicate  seeded normal rows (last dimension), every row equal to the first
             plus 1e-7 noise: a degenerate router
  arange     0, 1, 2, ... in row-major order
SEED defaults to 0. Values are float32.
"""

import argparse
import sys

import numpy as np
from safetensors.numpy import save_file


def make(shape, kind, seed):
    rng = np.random.default_rng(seed)
    if kind == "normal":
        return rng.standard_normal(shape).astype(np.float32)
    if kind == "zeros":
        return np.zeros(shape, np.float32)
    if kind == "arange":
        return np.arange(np.prod(shape), dtype=np.float32).reshape(shape)
    if kind == "duplicate":
        row = rng.standard_normal(shape[-1])
        values = np.broadcast_to(row, shape) + 1e-7 * rng.standard_normal(shape)
        return values.astype(np.float32)
    raise SystemExit(f"write_tensors: unknown kind '{kind}'")


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("output")
    parser.add_argument("tensors", nargs="+", metavar="NAME=SHAPE[:KIND[:SEED]]")
    args = parser.parse_args(argv)
    tensors = {}
    for spec in args.tensors:
        name, _, rest = spec.partition("=")
        fields = rest.split(":")
        shape = tuple(int(d) for d in fields[0].split("x"))
        kind = fields[1] if len(fields) > 1 else "normal"
        seed = int(fields[2]) if len(fields) > 2 else 0
        tensors[name] = make(shape, kind, seed)
    save_file(tensors, args.output)


if __name__ == "__main__":
    sys.exit(main())
