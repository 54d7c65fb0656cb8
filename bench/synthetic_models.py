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

import numpy as np


def tensors(args):
    h, i, v = args.hidden, args.intermediate, args.vocab
    d = h // args.heads
    yield "model.embed_tokens.weight", (v, h)
    for l in range(args.layers):
        p = f"model.layers.{l}."
        yield p + "input_layernorm.weight", (h,)
        yield p + "self_attn.q_proj.weight", (args.heads * d, h)
        yield p + "self_attn.k_proj.weight", (args.kv_heads * d, h)
        yield p + "self_attn.v_proj.weight", (args.kv_heads * d, h)
        yield p + "self_attn.o_proj.weight", (h, args.heads * d)
        yield p + "post_attention_layernorm.weight", (h,)
        yield p + "mlp.gate_proj.weight", (i, h)
        yield p + "mlp.up_proj.weight", (i, h)
        yield p + "mlp.down_proj.weight", (h, i)
    yield "model.norm.weight", (h,)
    yield "lm_head.weight", (v, h)


def write_model(path, args, seed, perturb_ffn):
    """One checkpoint directory; `seed` perturbs the FFNs of experts."""
    os.makedirs(path, exist_ok=True)
    dtype = {"f32": ("F32", np.float32, 4), "bf16": ("BF16", np.float32, 2)}[args.dtype]
    header, offset = {}, 0
    specs = list(tensors(args))
    for name, shape in specs:
        size = int(np.prod(shape)) * dtype[2]
        header[name] = {"dtype": dtype[0], "shape": list(shape), "data_offsets": [offset, offset + size]}
        offset += size
    blob = json.dumps(header).encode()
    blob += b" " * ((8 - len(blob) % 8) % 8)
    with open(os.path.join(path, "model.safetensors"), "wb") as out:
        out.write(len(blob).to_bytes(8, "little"))
        out.write(blob)
        if args.sparse:
            out.truncate(8 + len(blob) + offset)
            specs = []
        for index, (name, shape) in enumerate(specs):
            is_ffn = ".mlp." in name
            rng = np.random.default_rng((seed if is_ffn and perturb_ffn else 0) * 100003 + index)
            if name.endswith("norm.weight"):
                values = np.ones(shape, np.float32)
            else:
                values = (rng.standard_normal(shape, dtype=np.float32) * 0.02)
            if args.dtype == "bf16":
                values = (values.view(np.uint32) >> 16).astype(np.uint16)
            out.write(values.tobytes())
    config = {
        "architectures": ["LlamaForCausalLM"], "model_type": "llama",
        "hidden_size": args.hidden, "intermediate_size": args.intermediate,
        "num_hidden_layers": args.layers, "num_attention_heads": args.heads,
        "num_key_value_heads": args.kv_heads, "vocab_size": args.vocab,
        "max_position_embeddings": 4096, "rms_norm_eps": 1e-5, "hidden_act": "silu",
        "rope_theta": 10000.0, "tie_word_embeddings": False,
        "torch_dtype": "float32" if args.dtype == "f32" else "bfloat16",
    }
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
