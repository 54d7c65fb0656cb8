"""GGUF fixtures: Hugging Face Llama checkpoints converted as llama.cpp does.

    python -m moe_testing.gguf_fixture wide-llama DIR
    python -m moe_testing.gguf_fixture convert HF_DIR OUT.gguf --type Q4_1
    python -m moe_testing.gguf_fixture malformed GOOD.gguf OUT.gguf --kind magic
    python -m moe_testing.gguf_fixture logits FILE.gguf OUT.npy --ids "1,2;3,4"

`convert` follows llama.cpp's convert_hf_to_gguf.py for LlamaForCausalLM:
llama.cpp's tensor names, the query and key rows interleaved per head for
its rotary embedding, norms in F32, 2-D weights in --type (Q4_K and Q6_K
need rows of 256 elements: `wide-llama` writes such a model). The gguf
package quantises F16, BF16, Q8_0, Q4_0 and Q4_1; Q4_K and Q6_K are
quantised here (simple per-block min/max scales, packed as ggml packs them).
`logits` is transformers' reading of a GGUF file (from_pretrained with
gguf_file=), the reference of the import.
"""

import argparse
import json
import os
import struct
import sys
import warnings

import numpy as np

BLOCK = 256


def _permute(weights, heads):
    """llama.cpp's LlamaModel.permute: rows of each head interleaved."""
    rows = weights.shape[0]
    return (weights.reshape(heads, 2, rows // heads // 2, *weights.shape[1:])
            .swapaxes(1, 2).reshape(weights.shape))


def _add_tokenizer(writer, gguf, hf_dir, config):
    """A byte-level BPE tokenizer.json (moe_testing.bpe_tokenizer) as
    llama.cpp's converter writes it: tokens by id, merges and special ids
    (gguf.SpecialVocab); other tokenizers as placeholder tokens t0, t1...
    (enough for transformers' reading, not for llama.cpp's)."""
    path = os.path.join(hf_dir, "tokenizer.json")
    model = None
    if os.path.exists(path):
        with open(path) as f:
            model = json.load(f)
    if model and model["model"]["type"] == "BPE":
        tokens = {index: token for token, index in model["model"]["vocab"].items()}
        special = {t["id"] for t in model.get("added_tokens", []) if t["special"]}
        for added in model.get("added_tokens", []):
            tokens[added["id"]] = added["content"]
        writer.add_tokenizer_model("gpt2")
        writer.add_tokenizer_pre("gpt-2")
        writer.add_token_list([tokens[i] for i in range(len(tokens))])
        writer.add_token_types([3 if i in special else 1 for i in range(len(tokens))])
        gguf.SpecialVocab(hf_dir, load_merges=True).add_to_gguf(writer)
        return
    writer.add_tokenizer_model("gpt2")
    writer.add_token_list([f"t{i}" for i in range(config["vocab_size"])])
    writer.add_bos_token_id(config.get("bos_token_id") or 0)
    writer.add_eos_token_id(config.get("eos_token_id") or 0)


def _f16_bytes(values):
    return np.asarray(values, dtype=np.float32).astype(np.float16).view(np.uint8)


def _quantize_q6_k(rows):
    """Q6_K blocks: 16 int8 scales per 256 elements, 6-bit values."""
    blocks = rows.reshape(-1, BLOCK).astype(np.float32)
    groups = blocks.reshape(len(blocks), 16, 16)
    group_scale = np.abs(groups).max(axis=-1) / 31
    d = group_scale.max(axis=-1, keepdims=True) / 127
    d = d.astype(np.float16).astype(np.float32)
    with np.errstate(divide="ignore", invalid="ignore"):
        sc = np.where(d > 0, np.round(group_scale / d), 0).clip(-128, 127)
        step = (d * sc)[..., None]
        q = np.where(step > 0, np.round(groups / step), 0)
    q = (q.clip(-32, 31) + 32).astype(np.uint8).reshape(len(blocks), BLOCK)
    out = []
    for block, scales, scale in zip(q, sc.astype(np.int8), d[:, 0]):
        ql = np.zeros(128, np.uint8)
        qh = np.zeros(64, np.uint8)
        for half in range(2):
            y = block[half * 128:(half + 1) * 128]
            for l in range(32):
                q1, q2, q3, q4 = y[l], y[l + 32], y[l + 64], y[l + 96]
                ql[half * 64 + l] = (q1 & 0xF) | ((q3 & 0xF) << 4)
                ql[half * 64 + l + 32] = (q2 & 0xF) | ((q4 & 0xF) << 4)
                qh[half * 32 + l] = ((q1 >> 4) | ((q2 >> 4) << 2)
                                     | ((q3 >> 4) << 4) | ((q4 >> 4) << 6))
        out.append(np.concatenate([ql, qh, scales.view(np.uint8),
                                   _f16_bytes([scale])]))
    return np.stack(out)


def _quantize_q4_k(rows):
    """Q4_K blocks: 6-bit scales and minima per 32 elements, 4-bit values."""
    blocks = rows.reshape(-1, BLOCK).astype(np.float32)
    groups = blocks.reshape(len(blocks), 8, 32)
    low = np.minimum(groups.min(axis=-1), 0)
    group_scale = (groups.max(axis=-1) - low) / 15
    d = (group_scale.max(axis=-1, keepdims=True) / 63)
    dmin = (-low).max(axis=-1, keepdims=True) / 63
    d = d.astype(np.float16).astype(np.float32)
    dmin = dmin.astype(np.float16).astype(np.float32)
    with np.errstate(divide="ignore", invalid="ignore"):
        sc = np.where(d > 0, np.round(group_scale / d), 0).clip(0, 63)
        mn = np.where(dmin > 0, np.round(-low / dmin), 0).clip(0, 63)
        step = (d * sc)[..., None]
        q = np.where(step > 0, np.round((groups + (dmin * mn)[..., None])
                                        / step), 0)
    q = q.clip(0, 15).astype(np.uint8)
    sc, mn = sc.astype(np.uint8), mn.astype(np.uint8)
    out = []
    for i in range(len(blocks)):
        packed = np.zeros(12, np.uint8)
        for j in range(8):
            if j < 4:
                packed[j] |= sc[i, j] & 63
                packed[j + 4] |= mn[i, j] & 63
            else:
                packed[j + 4] = (sc[i, j] & 0xF) | ((mn[i, j] & 0xF) << 4)
                packed[j - 4] |= (sc[i, j] >> 4) << 6
                packed[j] |= (mn[i, j] >> 4) << 6
        qs = np.concatenate([q[i, 2 * k] | (q[i, 2 * k + 1] << 4)
                             for k in range(4)])
        out.append(np.concatenate([_f16_bytes([d[i, 0]]),
                                   _f16_bytes([dmin[i, 0]]), packed, qs]))
    return np.stack(out)


def _tensor(writer, gguf, name, array, qtype):
    if qtype in ("Q4_K", "Q6_K"):
        if array.shape[-1] % BLOCK:
            raise SystemExit(f"{name}: rows of {array.shape[-1]} elements are "
                             f"not whole {qtype} blocks of {BLOCK}")
        rows = array.reshape(-1, array.shape[-1])
        quantize = _quantize_q4_k if qtype == "Q4_K" else _quantize_q6_k
        data = quantize(rows).reshape(rows.shape[0], -1)
        writer.add_tensor(name, data, raw_shape=data.shape,
                          raw_dtype=gguf.GGMLQuantizationType[qtype])
        return
    kind = gguf.GGMLQuantizationType[qtype]
    if kind == gguf.GGMLQuantizationType.F32:
        writer.add_tensor(name, array.astype(np.float32))
        return
    data = gguf.quants.quantize(array.astype(np.float32), kind)
    writer.add_tensor(name, data, raw_shape=data.shape, raw_dtype=kind)


def convert(hf_dir, out, qtype):
    import gguf
    from safetensors.numpy import load_file

    with open(os.path.join(hf_dir, "config.json")) as f:
        config = json.load(f)
    weights = load_file(os.path.join(hf_dir, "model.safetensors"))
    heads = config["num_attention_heads"]
    kv_heads = config.get("num_key_value_heads", heads)
    head_dim = config.get("head_dim") or config["hidden_size"] // heads
    rope = config.get("rope_parameters") or {}
    theta = rope.get("rope_theta", config.get("rope_theta", 10000.0))

    writer = gguf.GGUFWriter(out, "llama")
    writer.add_name("moe fixture")
    writer.add_context_length(config["max_position_embeddings"])
    writer.add_embedding_length(config["hidden_size"])
    writer.add_block_count(config["num_hidden_layers"])
    writer.add_feed_forward_length(config["intermediate_size"])
    writer.add_rope_dimension_count(head_dim)
    writer.add_head_count(heads)
    writer.add_head_count_kv(kv_heads)
    writer.add_rope_freq_base(theta)
    writer.add_layer_norm_rms_eps(config["rms_norm_eps"])
    _add_tokenizer(writer, gguf, hf_dir, config)

    names = {"model.embed_tokens.weight": "token_embd.weight",
             "model.norm.weight": "output_norm.weight",
             "lm_head.weight": "output.weight"}
    layer_names = {"input_layernorm": "attn_norm",
                   "post_attention_layernorm": "ffn_norm",
                   "self_attn.q_proj": "attn_q", "self_attn.k_proj": "attn_k",
                   "self_attn.v_proj": "attn_v",
                   "self_attn.o_proj": "attn_output",
                   "mlp.gate_proj": "ffn_gate", "mlp.up_proj": "ffn_up",
                   "mlp.down_proj": "ffn_down"}
    for layer in range(config["num_hidden_layers"]):
        for hf, cpp in layer_names.items():
            names[f"model.layers.{layer}.{hf}.weight"] = f"blk.{layer}.{cpp}.weight"
    for hf_name, array in weights.items():
        if hf_name == "lm_head.weight" and config.get("tie_word_embeddings"):
            continue
        array = np.asarray(array, dtype=np.float32)
        if hf_name.endswith("q_proj.weight"):
            array = _permute(array, heads)
        elif hf_name.endswith("k_proj.weight"):
            array = _permute(array, kv_heads)
        _tensor(writer, gguf, names[hf_name], array,
                qtype if array.ndim == 2 else "F32")
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()


def wide_llama(dest):
    """A two-layer Llama with rows of 256 elements (K-quant blocks)."""
    import torch
    import transformers

    torch.manual_seed(1600)
    config = transformers.LlamaConfig(
        hidden_size=256, intermediate_size=512, num_hidden_layers=2,
        num_attention_heads=4, num_key_value_heads=2, vocab_size=128,
        max_position_embeddings=128, rms_norm_eps=1e-5, initializer_range=0.1,
        tie_word_embeddings=True, bos_token_id=1, eos_token_id=2)
    model = transformers.LlamaForCausalLM(config)
    with torch.no_grad():
        for name, parameter in model.named_parameters():
            if name.endswith("norm.weight"):
                parameter.uniform_(0.5, 1.5)
    model.save_pretrained(dest)


def _header_offsets(data):
    """Byte offsets of the fields of a GGUF header, as ggml reads them:
    tensor name -> offset of its type field."""
    pos = 24
    _, _, tensors, kvs = struct.unpack_from("<4sIQQ", data, 0)

    def string(pos):
        (size,) = struct.unpack_from("<Q", data, pos)
        return data[pos + 8:pos + 8 + size].decode(), pos + 8 + size

    scalar = {0: 1, 1: 1, 2: 2, 3: 2, 4: 4, 5: 4, 6: 4, 7: 1, 10: 8, 11: 8,
              12: 8}

    def value(pos, kind):
        if kind == 8:
            return string(pos)[1]
        if kind == 9:
            element, count = struct.unpack_from("<IQ", data, pos)
            pos += 12
            for _ in range(count):
                pos = value(pos, element)
            return pos
        return pos + scalar[kind]

    for _ in range(kvs):
        _, pos = string(pos)
        (kind,) = struct.unpack_from("<I", data, pos)
        pos = value(pos + 4, kind)
    types = {}
    for _ in range(tensors):
        name, pos = string(pos)
        (rank,) = struct.unpack_from("<I", data, pos)
        pos += 4 + 8 * rank
        types[name] = pos
        pos += 4 + 8
    return types


def malformed(good, out, kind):
    """A copy of `good` broken in one way."""
    with open(good, "rb") as f:
        data = bytearray(f.read())
    if kind == "magic":
        data[0:4] = b"GGUX"
    elif kind == "truncated":
        data = data[:len(data) - 100]
    elif kind == "type":
        struct.pack_into("<I", data, _header_offsets(data)["token_embd.weight"],
                         99)
    elif kind == "q5_k":
        struct.pack_into("<I", data, _header_offsets(data)["token_embd.weight"],
                         13)
    elif kind == "missing-key":
        key = b"llama.embedding_length"
        at = data.index(key)
        data[at:at + len(key)] = b"llama.embedding_lengtX"
    elif kind == "version":
        struct.pack_into("<I", data, 4, 1)
    elif kind == "huge-count":
        struct.pack_into("<Q", data, 8, 1 << 62)
    else:
        raise SystemExit(f"unknown kind {kind}")
    with open(out, "wb") as f:
        f.write(data)


def logits(path, out, ids):
    """transformers' logits of the GGUF file `path` (float32, eager)."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        import torch
        import transformers
        from moe_fixtures.logits import parse_ids
        transformers.logging.set_verbosity_error()
        transformers.logging.disable_progress_bar()
        model = transformers.AutoModelForCausalLM.from_pretrained(
            os.path.dirname(os.path.abspath(path)),
            gguf_file=os.path.basename(path), dtype=torch.float32,
            attn_implementation="eager")
        model.eval()
        with torch.no_grad():
            result = model(input_ids=torch.tensor(parse_ids(ids))).logits
    np.save(out, result.float().numpy())


def main(argv=None):
    parser = argparse.ArgumentParser(
        description=__doc__.splitlines()[0], epilog=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter)
    commands = parser.add_subparsers(dest="command", required=True)
    wide = commands.add_parser("wide-llama")
    wide.add_argument("dest")
    conv = commands.add_parser("convert")
    conv.add_argument("hf_dir")
    conv.add_argument("out")
    conv.add_argument("--type", default="F32",
                      choices=["F32", "F16", "BF16", "Q8_0", "Q4_0", "Q4_1",
                               "Q4_K", "Q6_K"])
    bad = commands.add_parser("malformed")
    bad.add_argument("good")
    bad.add_argument("out")
    bad.add_argument("--kind", required=True,
                     choices=["magic", "truncated", "type", "q5_k",
                              "missing-key", "version", "huge-count"])
    run = commands.add_parser("logits")
    run.add_argument("gguf")
    run.add_argument("out")
    run.add_argument("--ids", required=True)
    args = parser.parse_args(argv)
    if args.command == "wide-llama":
        wide_llama(args.dest)
    elif args.command == "convert":
        convert(args.hf_dir, args.out, args.type)
    elif args.command == "malformed":
        malformed(args.good, args.out, args.kind)
    else:
        logits(args.gguf, args.out, args.ids)
    return 0


if __name__ == "__main__":
    sys.exit(main())
