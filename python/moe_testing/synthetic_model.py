"""Writes a LlamaForCausalLM directory with seeded random weights, streamed.

    python -m moe_testing.synthetic_model DIR [--vocab 128] [--hidden 64] \\
        [--intermediate 128] [--layers 1] [--heads 4] [--kv-heads 2] \\
        [--dtype f32|bf16] [--tied] [--seed 0] [--std 0.02] [--perturb 0]

For tests and benchmarks that need shapes no fixture has (a checkpoint over
2 GB, a model whose FFN dominates): config.json plus one model.safetensors
written tensor by tensor in chunks of rows, so memory stays small whatever
the size. Weights are normal(0, std) (norm weights 1 + normal(0, 0.1));
`--perturb P` adds a second seeded normal(0, P) draw to every MLP weight,
which makes a fine-tuned "expert" of the model with the same --seed.
"""

import argparse
import json
import os
import struct
import sys

import numpy as np

CHUNK_ELEMENTS = 1 << 24


def llama_tensors(hidden, intermediate, layers, heads, kv_heads, vocab, tied=False):
    """(name, shape) of every tensor of a LlamaForCausalLM, in the order
    save_pretrained writes them."""
    head_dim = hidden // heads
    specs = [("model.embed_tokens.weight", (vocab, hidden))]
    for layer in range(layers):
        p = f"model.layers.{layer}."
        specs += [
            (p + "input_layernorm.weight", (hidden,)),
            (p + "self_attn.q_proj.weight", (heads * head_dim, hidden)),
            (p + "self_attn.k_proj.weight", (kv_heads * head_dim, hidden)),
            (p + "self_attn.v_proj.weight", (kv_heads * head_dim, hidden)),
            (p + "self_attn.o_proj.weight", (hidden, heads * head_dim)),
            (p + "post_attention_layernorm.weight", (hidden,)),
            (p + "mlp.gate_proj.weight", (intermediate, hidden)),
            (p + "mlp.up_proj.weight", (intermediate, hidden)),
            (p + "mlp.down_proj.weight", (hidden, intermediate)),
        ]
    specs.append(("model.norm.weight", (hidden,)))
    if not tied:
        specs.append(("lm_head.weight", (vocab, hidden)))
    return specs


def llama_config(hidden, intermediate, layers, heads, kv_heads, vocab, **extra):
    """config.json of a LlamaForCausalLM: the shape, SiLU, RMSNorm 1e-5,
    then `extra` keys."""
    config = {
        "architectures": ["LlamaForCausalLM"], "model_type": "llama",
        "hidden_size": hidden, "intermediate_size": intermediate,
        "num_hidden_layers": layers, "num_attention_heads": heads,
        "num_key_value_heads": kv_heads, "vocab_size": vocab,
        "rms_norm_eps": 1e-5, "hidden_act": "silu",
    }
    config.update(extra)
    return config


def to_bf16(values):
    """float32 -> bfloat16 bits, rounding to nearest even."""
    bits = values.astype(np.float32).view(np.uint32)
    rounded = bits + 0x7FFF + ((bits >> 16) & 1)
    return (rounded >> 16).astype(np.uint16)


def write_safetensors(path, specs, dtype, data=None, metadata=None):
    """A safetensors file of `specs` ((name, shape) pairs) in `dtype` ("F32"
    or "BF16"), with `metadata` (a dict of strings) if given.
    `data(index, name, shape)` yields each tensor's bytes in row-major
    pieces, written one at a time so memory stays at one piece; without it
    the data is a hole (a sparse file: headers only, for benchmarks that
    must not read weights)."""
    size = {"F32": 4, "BF16": 2}[dtype]
    header, offset = ({"__metadata__": metadata} if metadata else {}), 0
    for name, shape in specs:
        length = int(np.prod(shape)) * size
        header[name] = {"dtype": dtype, "shape": list(shape), "data_offsets": [offset, offset + length]}
        offset += length
    text = json.dumps(header, separators=(",", ":")).encode()
    text += b" " * (-len(text) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(text)))
        f.write(text)
        if data is None:
            f.truncate(8 + len(text) + offset)
            return
        for index, (name, shape) in enumerate(specs):
            for piece in data(index, name, shape):
                f.write(piece)


def chunks(name, shape, index, args):
    """The tensor's values in row-major chunks."""
    count = int(np.prod(shape))
    rng = np.random.default_rng([args.seed, index])
    noise = np.random.default_rng([args.seed, index, 1 + args.perturb_seed])
    is_norm = name.endswith("norm.weight")
    is_mlp = ".mlp." in name
    for begin in range(0, count, CHUNK_ELEMENTS):
        n = min(CHUNK_ELEMENTS, count - begin)
        if is_norm:
            values = 1 + 0.1 * rng.standard_normal(n, dtype=np.float32)
        else:
            values = args.std * rng.standard_normal(n, dtype=np.float32)
        if is_mlp and args.perturb:
            values += args.perturb * noise.standard_normal(n, dtype=np.float32)
        yield values


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("dir")
    parser.add_argument("--vocab", type=int, default=128)
    parser.add_argument("--hidden", type=int, default=64)
    parser.add_argument("--intermediate", type=int, default=128)
    parser.add_argument("--layers", type=int, default=1)
    parser.add_argument("--heads", type=int, default=4)
    parser.add_argument("--kv-heads", type=int, default=2)
    parser.add_argument("--dtype", choices=("f32", "bf16"), default="f32")
    parser.add_argument("--tied", action="store_true")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--std", type=float, default=0.02)
    parser.add_argument("--perturb", type=float, default=0.0)
    parser.add_argument("--perturb-seed", type=int, default=0)
    args = parser.parse_args(argv)

    os.makedirs(args.dir)
    config = llama_config(
        args.hidden, args.intermediate, args.layers, args.heads, args.kv_heads, args.vocab,
        head_dim=args.hidden // args.heads, max_position_embeddings=4096, rope_theta=10000.0,
        tie_word_embeddings=args.tied, attention_bias=False, mlp_bias=False, bos_token_id=1,
        eos_token_id=2, dtype="bfloat16" if args.dtype == "bf16" else "float32")
    with open(os.path.join(args.dir, "config.json"), "w") as f:
        json.dump(config, f, indent=2)

    bf16 = args.dtype == "bf16"
    specs = llama_tensors(args.hidden, args.intermediate, args.layers, args.heads,
                          args.kv_heads, args.vocab, args.tied)
    write_safetensors(
        os.path.join(args.dir, "model.safetensors"), specs, "BF16" if bf16 else "F32",
        lambda index, name, shape: ((to_bf16(values) if bf16 else values).tobytes()
                                    for values in chunks(name, shape, index, args)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
