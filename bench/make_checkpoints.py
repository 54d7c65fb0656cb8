"""Writes synthetic Hugging Face checkpoints of a realistic shape for the
export benchmark: a base and N experts of one LlamaForCausalLM config
(by default TinyLlama-1.1B's: hidden 2048, intermediate 5632, 22 layers,
32 heads, 4 KV heads, vocabulary 32000), bfloat16, 2.2 GB each.

    python bench/make_checkpoints.py DIR [--experts 3] [--layers 22] ...

DIR/base and DIR/expert-1 ... get config.json, model.safetensors and the
tiny word-level tokenizer of the moe_fixtures llama (the models are never
run, but mergekit copies a tokenizer). Values are N(0, 0.02) samples from a
64 MB pool, read at a different offset for every tensor and model, so that
no two tensors are equal and writing stays at disk speed. Tensors stream to
disk one at a time.
"""

import argparse
import json
import os
import pathlib
import shutil
import sys

import numpy as np

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1] / "python"))
from moe_testing.synthetic_model import (  # noqa: E402
    llama_config, llama_tensors, to_bf16, write_safetensors)

POOL_ELEMENTS = 32 * 1024 * 1024


def write_model(directory, specs, pool, model_index):
    """model.safetensors with every tensor read from the pool cyclically."""
    def data(index, name, shape):
        start = (7919 * index + 104729 * model_index) % POOL_ELEMENTS
        remaining = int(np.prod(shape))
        while remaining:
            chunk = min(remaining, POOL_ELEMENTS - start)
            if name.endswith("norm.weight"):  # near 1, as trained models have
                yield np.full(chunk, 0x3F80, np.uint16).tobytes()
            else:
                yield pool[start:start + chunk].tobytes()
            remaining -= chunk
            start = 0

    write_safetensors(os.path.join(directory, "model.safetensors"), specs, "BF16", data,
                      metadata={"format": "pt"})


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("dir")
    parser.add_argument("--experts", type=int, default=3)
    parser.add_argument("--layers", type=int, default=22)
    parser.add_argument("--hidden", type=int, default=2048)
    parser.add_argument("--intermediate", type=int, default=5632)
    parser.add_argument("--heads", type=int, default=32)
    parser.add_argument("--kv-heads", type=int, default=4)
    parser.add_argument("--vocab", type=int, default=32000)
    parser.add_argument("--tokenizer", required=True,
                        help="a directory whose tokenizer files are copied")
    c = parser.parse_args(argv)

    config = llama_config(
        c.hidden, c.intermediate, c.layers, c.heads, c.kv_heads, c.vocab,
        max_position_embeddings=2048, tie_word_embeddings=False,
        rope_parameters={"rope_type": "default", "rope_theta": 10000.0},
        bos_token_id=1, eos_token_id=2, dtype="bfloat16", initializer_range=0.02)
    specs = llama_tensors(c.hidden, c.intermediate, c.layers, c.heads, c.kv_heads, c.vocab)
    # N(0, 0.02) samples, read at a different offset for every tensor.
    pool = to_bf16(np.random.default_rng(0).normal(0, 0.02, POOL_ELEMENTS))
    names = ["base"] + [f"expert-{i}" for i in range(1, c.experts + 1)]
    for index, name in enumerate(names):
        directory = os.path.join(c.dir, name)
        os.makedirs(directory)
        with open(os.path.join(directory, "config.json"), "w") as f:
            json.dump(config, f, indent=2)
        for file in os.listdir(c.tokenizer):
            if file.startswith("tokenizer") or file == "generation_config.json":
                shutil.copy(os.path.join(c.tokenizer, file), directory)
        write_model(directory, specs, pool, index)
        print(f"{directory}: {os.path.getsize(os.path.join(directory, 'model.safetensors')) / 1e9:.2f} GB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
