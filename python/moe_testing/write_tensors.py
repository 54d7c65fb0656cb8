"""Writes a safetensors file from tensor specifications, for lit tests.

    python -m moe_testing.write_tensors OUT.safetensors NAME=SHAPE[:KIND[:SEED]] ...

SHAPE is like 2x3x8. KIND is one of
  normal     seeded standard normal values (the default)
  zeros      all zeros
  duplicate  seeded normal rows (last dimension), every row equal to the first
             plus 1e-7 noise: a degenerate router
  arange     0, 1, 2, ... in row-major order
SEED defaults to 0. Values are float32.

Standard library only: the LLVM-only test suite (check-moe) runs it on the
Python that runs lit.
"""

import argparse
import math
import random
import struct
import sys

from moe_fixtures import safetensors_io


def values(shape, kind, seed):
    count = math.prod(shape)
    rng = random.Random(seed)
    if kind == "normal":
        return [rng.gauss(0.0, 1.0) for _ in range(count)]
    if kind == "zeros":
        return [0.0] * count
    if kind == "arange":
        return [float(i) for i in range(count)]
    if kind == "duplicate":
        row = [rng.gauss(0.0, 1.0) for _ in range(shape[-1])]
        return [row[i % len(row)] + 1e-7 * rng.gauss(0.0, 1.0)
                for i in range(count)]
    raise SystemExit(f"write_tensors: unknown kind '{kind}'")


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("output")
    parser.add_argument("tensors", nargs="+", metavar="NAME=SHAPE[:KIND[:SEED]]")
    args = parser.parse_args(argv)
    tensors = []
    for spec in args.tensors:
        name, _, rest = spec.partition("=")
        fields = rest.split(":")
        shape = [int(d) for d in fields[0].split("x")]
        kind = fields[1] if len(fields) > 1 else "normal"
        seed = int(fields[2]) if len(fields) > 2 else 0
        data = struct.pack(f"<{math.prod(shape)}f", *values(shape, kind, seed))
        tensors.append(safetensors_io.Tensor(name, "F32", shape, data))
    with open(args.output, "wb") as out:
        out.write(safetensors_io.encode(tensors))


if __name__ == "__main__":
    sys.exit(main())
