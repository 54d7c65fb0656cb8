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
import shutil
import struct
import sys

import numpy as np

POOL_ELEMENTS = 32 * 1024 * 1024


def tensor_shapes(c):
    """The tensors of a LlamaForCausalLM, in the order save_pretrained uses."""
    head_dim = c.hidden // c.heads
    shapes = {"model.embed_tokens.weight": (c.vocab, c.hidden)}
    for layer in range(c.layers):
        p = f"model.layers.{layer}."
        shapes.update({
            p + "input_layernorm.weight": (c.hidden,),
            p + "self_attn.q_proj.weight": (c.heads * head_dim, c.hidden),
            p + "self_attn.k_proj.weight": (c.kv_heads * head_dim, c.hidden),
            p + "self_attn.v_proj.weight": (c.kv_heads * head_dim, c.hidden),
            p + "self_attn.o_proj.weight": (c.hidden, c.heads * head_dim),
            p + "post_attention_layernorm.weight": (c.hidden,),
            p + "mlp.gate_proj.weight": (c.intermediate, c.hidden),
            p + "mlp.up_proj.weight": (c.intermediate, c.hidden),
            p + "mlp.down_proj.weight": (c.hidden, c.intermediate),
        })
    shapes["model.norm.weight"] = (c.hidden,)
    shapes["lm_head.weight"] = (c.vocab, c.hidden)
    return shapes


def bf16_pool(seed):
    """POOL_ELEMENTS bfloat16 bit patterns of N(0, 0.02) samples."""
    values = np.random.default_rng(seed).normal(0, 0.02, POOL_ELEMENTS)
    bits = values.astype(np.float32).view(np.uint32)
    # Round to nearest even on the 16 bits dropped.
    bits = bits + 0x7FFF + ((bits >> 16) & 1)
    return (bits >> 16).astype(np.uint16)


def write_model(directory, shapes, pool, model_index):
    """model.safetensors with every tensor read from the pool cyclically."""
    offsets, header, begin = {}, {"__metadata__": {"format": "pt"}}, 0
    for name, shape in shapes.items():
        count = int(np.prod(shape))
        header[name] = {"dtype": "BF16", "shape": list(shape),
                        "data_offsets": [begin, begin + 2 * count]}
        offsets[name] = count
        begin += 2 * count
    text = json.dumps(header, separators=(",", ":")).encode()
    text += b" " * ((8 - len(text) % 8) % 8)
    with open(os.path.join(directory, "model.safetensors"), "wb") as out:
        out.write(struct.pack("<Q", len(text)))
        out.write(text)
        for index, (name, count) in enumerate(offsets.items()):
            norm = name.endswith("norm.weight")
            start = (7919 * index + 104729 * model_index) % POOL_ELEMENTS
            remaining = count
            while remaining:
                chunk = min(remaining, POOL_ELEMENTS - start)
                data = pool[start:start + chunk]
                if norm:  # norm weights near 1, as trained models have
                    data = np.full(chunk, 0x3F80, np.uint16)
                out.write(data.tobytes())
                remaining -= chunk
                start = 0


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

    config = {
        "architectures": ["LlamaForCausalLM"], "model_type": "llama",
        "hidden_size": c.hidden, "intermediate_size": c.intermediate,
        "num_hidden_layers": c.layers, "num_attention_heads": c.heads,
        "num_key_value_heads": c.kv_heads, "vocab_size": c.vocab,
        "max_position_embeddings": 2048, "rms_norm_eps": 1e-5,
        "hidden_act": "silu", "tie_word_embeddings": False,
        "rope_parameters": {"rope_type": "default", "rope_theta": 10000.0},
        "bos_token_id": 1, "eos_token_id": 2, "dtype": "bfloat16",
        "initializer_range": 0.02,
    }
    shapes = tensor_shapes(c)
    pool = bf16_pool(0)
    names = ["base"] + [f"expert-{i}" for i in range(1, c.experts + 1)]
    for index, name in enumerate(names):
        directory = os.path.join(c.dir, name)
        os.makedirs(directory)
        with open(os.path.join(directory, "config.json"), "w") as f:
            json.dump(config, f, indent=2)
        for file in os.listdir(c.tokenizer):
            if file.startswith("tokenizer") or file == "generation_config.json":
                shutil.copy(os.path.join(c.tokenizer, file), directory)
        write_model(directory, shapes, pool, index)
        print(f"{directory}: {os.path.getsize(os.path.join(directory, 'model.safetensors')) / 1e9:.2f} GB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
