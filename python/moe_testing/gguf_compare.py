"""Checks the tensors of a GGUF export against gguf-py's own encoding.

    python -m moe_testing.gguf_compare encoding F32.gguf OTHER.gguf
    python -m moe_testing.gguf_compare metadata A.gguf B.gguf --prefix tokenizer.

`encoding`: OTHER (an --export-gguf of the same mix in another --gguf-type)
holds, for every tensor, exactly the bytes that the gguf package (llama.cpp's
Python library, independent of our writer) makes of F32's tensor in OTHER's
type: numpy's float16 conversion, gguf.quants for BF16 and Q8_0; tensors
that stay float32 (norms, routers) are equal. Names, shapes and order must
match. `metadata`: the entries whose keys start with --prefix are the same
(keys, types and values) in both files.

Prints `ok: ...`; exits 1 with `error: ...` naming the tensor or key.
"""

import argparse
import sys

import numpy as np
from gguf import GGMLQuantizationType, GGUFReader, quants


def fail(message):
    print(f"error: {message}")
    sys.exit(1)


def encode(values, kind):
    if kind == GGMLQuantizationType.F32:
        return values.astype(np.float32).view(np.uint8)
    if kind == GGMLQuantizationType.F16:
        return values.astype(np.float16).view(np.uint8)
    return quants.quantize(values, kind).view(np.uint8)


def encoding(args):
    reference, other = GGUFReader(args.f32), GGUFReader(args.other)
    if [t.name for t in reference.tensors] != [t.name for t in other.tensors]:
        fail("the files hold different tensors")
    counts = {}
    for ref, out in zip(reference.tensors, other.tensors):
        if ref.tensor_type != GGMLQuantizationType.F32:
            fail(f"{ref.name} is {ref.tensor_type.name} in {args.f32}")
        if list(ref.shape) != list(out.shape):
            fail(f"{ref.name}: shape {list(out.shape)} vs {list(ref.shape)}")
        values = np.asarray(ref.data, dtype=np.float32)
        expected = encode(values, out.tensor_type).reshape(-1)
        actual = np.asarray(out.data).view(np.uint8).reshape(-1)
        if expected.shape != actual.shape or not np.array_equal(expected, actual):
            differing = (np.count_nonzero(expected != actual)
                         if expected.shape == actual.shape else "all")
            fail(f"{out.name} ({out.tensor_type.name}): {differing} of "
                 f"{expected.size} bytes differ from gguf-py's encoding")
        counts[out.tensor_type.name] = counts.get(out.tensor_type.name, 0) + 1
    summary = ", ".join(f"{n} {kind}" for kind, n in sorted(counts.items()))
    print(f"ok: {len(other.tensors)} tensors as gguf-py encodes them ({summary})")


def fields(reader, prefix):
    result = {}
    for key, field in reader.fields.items():
        if key.startswith(prefix):
            parts = [np.asarray(field.parts[i]).tobytes() for i in field.data]
            result[key] = (list(field.types), parts)
    return result


def metadata(args):
    a, b = fields(GGUFReader(args.a), args.prefix), fields(GGUFReader(args.b), args.prefix)
    if not a:
        fail(f"no {args.prefix}* entries in {args.a}")
    if sorted(a) != sorted(b):
        fail(f"keys differ: {sorted(set(a) ^ set(b))}")
    for key in a:
        if a[key] != b[key]:
            fail(f"{key} differs")
    print(f"ok: {len(a)} {args.prefix}* entries identical")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)
    command = commands.add_parser("encoding")
    command.add_argument("f32")
    command.add_argument("other")
    command.set_defaults(run=encoding)
    command = commands.add_parser("metadata")
    command.add_argument("a")
    command.add_argument("b")
    command.add_argument("--prefix", default="tokenizer.")
    command.set_defaults(run=metadata)
    args = parser.parse_args()
    args.run(args)


if __name__ == "__main__":
    main()
