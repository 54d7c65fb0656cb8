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


def tensor_specs(args):
    head_dim = args.hidden // args.heads
    specs = [("model.embed_tokens.weight", (args.vocab, args.hidden))]
    for layer in range(args.layers):
        p = f"model.layers.{layer}."
        specs += [
            (p + "input_layernorm.weight", (args.hidden,)),
            (p + "self_attn.q_proj.weight", (args.heads * head_dim, args.hidden)),
            (p + "self_attn.k_proj.weight", (args.kv_heads * head_dim, args.hidden)),
            (p + "self_attn.v_proj.weight", (args.kv_heads * head_dim, args.hidden)),
            (p + "self_attn.o_proj.weight", (args.hidden, args.heads * head_dim)),
            (p + "post_attention_layernorm.weight", (args.hidden,)),
            (p + "mlp.gate_proj.weight", (args.intermediate, args.hidden)),
            (p + "mlp.up_proj.weight", (args.intermediate, args.hidden)),
            (p + "mlp.down_proj.weight", (args.hidden, args.intermediate)),
        ]
    specs.append(("model.norm.weight", (args.hidden,)))
    if not args.tied:
        specs.append(("lm_head.weight", (args.vocab, args.hidden)))
    return specs


def to_bf16(values):
    """float32 -> bfloat16 bits, rounding to nearest even."""
    bits = values.astype(np.float32).view(np.uint32)
    rounded = bits + 0x7FFF + ((bits >> 16) & 1)
    return (rounded >> 16).astype(np.uint16)


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
    config = {
        "architectures": ["LlamaForCausalLM"], "model_type": "llama",
        "hidden_size": args.hidden, "intermediate_size": args.intermediate,
        "num_hidden_layers": args.layers, "num_attention_heads": args.heads,
        "num_key_value_heads": args.kv_heads, "head_dim": args.hidden // args.heads,
        "vocab_size": args.vocab, "max_position_embeddings": 4096,
        "rms_norm_eps": 1e-5, "rope_theta": 10000.0, "hidden_act": "silu",
        "tie_word_embeddings": args.tied, "attention_bias": False,
        "mlp_bias": False, "bos_token_id": 1, "eos_token_id": 2,
        "dtype": "bfloat16" if args.dtype == "bf16" else "float32",
    }
    with open(os.path.join(args.dir, "config.json"), "w") as f:
        json.dump(config, f, indent=2)

    size = 2 if args.dtype == "bf16" else 4
    header, offset = {}, 0
    specs = tensor_specs(args)
    for name, shape in specs:
        length = int(np.prod(shape)) * size
        header[name] = {"dtype": "BF16" if size == 2 else "F32",
                        "shape": list(shape), "data_offsets": [offset, offset + length]}
        offset += length
    text = json.dumps(header, separators=(",", ":")).encode()
    text += b" " * (-len(text) % 8)
    with open(os.path.join(args.dir, "model.safetensors"), "wb") as f:
        f.write(struct.pack("<Q", len(text)))
        f.write(text)
        for index, (name, shape) in enumerate(specs):
            for values in chunks(name, shape, index, args):
                f.write((to_bf16(values) if size == 2 else values).tobytes())
    return 0


if __name__ == "__main__":
    sys.exit(main())
