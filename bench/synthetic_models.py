"""Synthetic Llama-shaped Hugging Face checkpoints for benchmarks.

    synthetic_models.py OUT_DIR --hidden 768 --intermediate 3072 --layers 8
        --vocab 16000 --heads 12 --kv-heads 4 [--experts N] [--dtype f32|bf16]
        [--sparse]

Writes OUT_DIR/base and, with --experts N, OUT_DIR/expert-1..N-1 (the base
with perturbed FFNs): config.json and one model.safetensors each. Values are
seeded normal noise scaled like a trained model (std 0.02), written tensor by
tensor so memory stays at one tensor. --sparse writes the headers and leaves
the data a hole (sparse files: a 14 GB checkpoint takes no disk), for
benchmarks that must not read weights.
"""

import argparse
import json
import os
import pathlib
import sys

import numpy as np

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1] / "python"))
from moe_testing.synthetic_model import (  # noqa: E402
    llama_config, llama_tensors, to_bf16, write_safetensors)


def write_model(path, args, seed, perturb_ffn):
    """One checkpoint directory; `seed` perturbs the FFNs of experts."""
    os.makedirs(path, exist_ok=True)
    bf16 = args.dtype == "bf16"

    def data(index, name, shape):
        rng = np.random.default_rng((seed if ".mlp." in name and perturb_ffn else 0) * 100003 + index)
        if name.endswith("norm.weight"):
            values = np.ones(shape, np.float32)
        else:
            values = rng.standard_normal(shape, dtype=np.float32) * 0.02
        yield (to_bf16(values) if bf16 else values).tobytes()

    specs = llama_tensors(args.hidden, args.intermediate, args.layers, args.heads,
                          args.kv_heads, args.vocab)
    write_safetensors(os.path.join(path, "model.safetensors"), specs, "BF16" if bf16 else "F32",
                      None if args.sparse else data)
    config = llama_config(args.hidden, args.intermediate, args.layers, args.heads,
                          args.kv_heads, args.vocab, max_position_embeddings=4096,
                          rope_theta=10000.0, tie_word_embeddings=False,
                          torch_dtype="bfloat16" if bf16 else "float32")
    with open(os.path.join(path, "config.json"), "w") as out:
        json.dump(config, out, indent=2)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out")
    parser.add_argument("--hidden", type=int, default=768)
    parser.add_argument("--intermediate", type=int, default=3072)
    parser.add_argument("--layers", type=int, default=8)
    parser.add_argument("--vocab", type=int, default=16000)
    parser.add_argument("--heads", type=int, default=12)
    parser.add_argument("--kv-heads", type=int, default=4)
    parser.add_argument("--experts", type=int, default=0)
    parser.add_argument("--dtype", choices=["f32", "bf16"], default="f32")
    parser.add_argument("--sparse", action="store_true")
    args = parser.parse_args()
    write_model(os.path.join(args.out, "base"), args, 0, False)
    for e in range(1, args.experts):
        write_model(os.path.join(args.out, f"expert-{e}"), args, e, True)


if __name__ == "__main__":
    main()
