"""Makes a copy of a Hugging Face checkpoint whose weights are what an
`moe-translate --export-onnx --onnx-weights=...` export computes with, for
lit tests: the reference of a reduced-precision export then differs from
the export by float32 arithmetic only.

    python -m moe_testing.fake_quant SRC DEST --weights f16|bf16|int8|int4 \\
        [--block-size 32]

f16 / bf16: every tensor rounded to that type (round to nearest even).
int8 / int4: every linear layer's weight (`*_proj.weight`, `lm_head.weight`)
quantised and dequantised as the export does, independently of its C++
quantiser: symmetric blocks of --block-size input features (the last one
padded with zeros), scale = max|w| / (2^(bits-1) - 1), codes rounded half
away from zero; embeddings, norms and biases are kept. Tensors are float32
in DEST.
"""

import argparse
import os
import re
import shutil
import sys

import numpy as np

LINEAR = re.compile(r"(_proj|^lm_head)\.weight$")


def fake_quantize(weight, bits, block_size):
    rows, columns = weight.shape
    blocks = -(-columns // block_size)
    padded = np.zeros((rows, blocks * block_size), np.float32)
    padded[:, :columns] = weight
    padded = padded.reshape(rows, blocks, block_size)
    largest = (2 ** (bits - 1)) - 1
    scales = (np.abs(padded).max(axis=-1) / np.float32(largest)).astype(np.float32)
    safe = np.where(scales == 0, np.float32(1), scales)[..., None]
    ratio = padded / safe
    codes = np.clip(np.sign(ratio) * np.floor(np.abs(ratio) + 0.5),
                    -largest - 1, largest)
    dequantized = (codes * scales[..., None]).astype(np.float32)
    return dequantized.reshape(rows, -1)[:, :columns]


def convert(name, value, weights, block_size):
    if weights in ("f16", "bf16"):
        import torch
        dtype = torch.float16 if weights == "f16" else torch.bfloat16
        return torch.from_numpy(value).to(dtype).float().numpy()
    if value.ndim == 2 and LINEAR.search(name):
        return fake_quantize(value, 8 if weights == "int8" else 4, block_size)
    return value


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("source")
    parser.add_argument("dest")
    parser.add_argument("--weights", required=True,
                        choices=["f16", "bf16", "int8", "int4"])
    parser.add_argument("--block-size", type=int, default=32)
    args = parser.parse_args(argv)

    import torch
    from safetensors.torch import load_file, save_file

    os.makedirs(args.dest)
    for name in os.listdir(args.source):
        if name != "model.safetensors":
            shutil.copy(os.path.join(args.source, name), args.dest)
    tensors = load_file(os.path.join(args.source, "model.safetensors"))
    converted = {
        key: torch.from_numpy(np.ascontiguousarray(convert(
            key, tensors[key].float().numpy(), args.weights, args.block_size)))
        for key in sorted(tensors)}
    save_file(converted, os.path.join(args.dest, "model.safetensors"),
              metadata={"format": "pt"})
    return 0


if __name__ == "__main__":
    sys.exit(main())
