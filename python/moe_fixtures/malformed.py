"""Hugging Face model directories broken in exactly one way, for error tests.

Every kind starts from the ``llama`` fixture: its config.json (unchanged
unless stated) and its 21 float32 tensors, rewritten by
:mod:`moe_fixtures.safetensors_io` into ``model.safetensors`` in tensor-name
order with the metadata ``{"format": "pt"}``. In that valid layout the data
region is 107136 bytes and, for example, ``model.layers.0.mlp.up_proj.weight``
spans data bytes [49280, 57472); every tensor not named below keeps its
valid entry. Offsets below are relative to the data region, as in the
header. Nothing else (generation config, tokenizer) is written.

truncated
    The file ends in the middle of the data region, halfway through
    ``model.layers.0.mlp.up_proj.weight`` (at data byte 53376). It is the
    first tensor, in offset order, whose bytes are not all there; every later
    tensor lies wholly past the end.
header-past-end
    The 8-byte header length is the size of the whole valid file plus one
    (107136 + 8 + header size + 1), so the header would run past the end of
    the file. Header and data bytes are those of the valid file.
offsets-out-of-range
    ``model.layers.1.self_attn.k_proj.weight`` (float32 [16, 32], 2048 bytes)
    has its bytes removed from the data region, which closes up (105088
    bytes), and its data_offsets become [105088, 107136]: the right length,
    starting exactly at the end of the data region and ending 2048 bytes past
    it. All other tensors stay contiguous and in range.
overlap
    ``model.layers.0.self_attn.v_proj.weight`` (2048 bytes) starts 1024 bytes
    early, inside ``model.layers.0.self_attn.q_proj.weight`` which directly
    precedes it: q_proj spans [63744, 67840) and v_proj [66816, 68864). The
    last 1024 bytes of v_proj's data are dropped and every later tensor moves
    1024 bytes down, so there is no gap and nothing runs past the end; the
    only fault is the 1024-byte overlap.
unknown-dtype
    ``model.layers.0.mlp.gate_proj.weight`` has dtype ``"F12"``; its shape
    and 8192-byte span are unchanged.
invalid-json
    The header's final ``}`` is replaced by a space, leaving an unterminated
    JSON object of the same length; length field and data are valid.
duplicate-key
    ``model.layers.0.mlp.down_proj.weight`` appears twice in the header JSON.
    The first entry is the valid one; the second, written last, has the same
    dtype and shape and points at a copy of the same bytes appended to the
    data region, [107136, 115328). No ranges overlap; only the name repeats.
size-mismatch
    ``model.layers.0.self_attn.o_proj.weight`` declares shape [32, 16]
    (2048 bytes of float32) while its data_offsets span its real 4096 bytes.
missing-shard
    A sharded checkpoint: ``model-00001-of-00003.safetensors`` (lm_head and
    embed_tokens), ``model-00002-of-00003.safetensors`` (every
    ``model.layers.0.*`` tensor) and ``model-00003-of-00003.safetensors``
    (``model.layers.1.*`` and ``model.norm.weight``), each a valid file, and
    ``model.safetensors.index.json`` (``metadata.total_size`` and
    ``weight_map``) naming all three; the second shard is then deleted, so
    the nine ``model.layers.0.*`` tensors, first of them
    ``model.layers.0.input_layernorm.weight``, point at a missing file. There
    is no model.safetensors.
config-mismatch
    model.safetensors is valid, but config.json says ``hidden_size`` 48
    (head_dim stays 8): every tensor with a hidden dimension disagrees, first
    in name order ``lm_head.weight`` ([128, 32] on disk, [128, 48] expected)
    and first in a forward pass ``model.embed_tokens.weight``.
missing-tensor
    ``model.layers.1.mlp.down_proj.weight`` is left out; the header and data
    are otherwise consistent (20 tensors, 98944 data bytes).
int-weights
    ``model.layers.1.mlp.gate_proj.weight`` is stored as ``I32`` (same shape
    [64, 32], same 8192-byte span): each value is round(weight * 10000). The
    file is valid safetensors; only a float weight is expected there.
"""

import json
import struct

from . import cache
from . import safetensors_io as st


def write(kind, dest):
    """Writes the malformed model directory ``kind`` (a key of KINDS) into
    dest, which must be new or empty."""
    source = cache.ensure("llama")
    tensors = sorted(st.read(source / "model.safetensors"),
                     key=lambda tensor: tensor.name)
    config = json.loads((source / "config.json").read_text())
    dest = cache.prepare_destination(dest)
    KINDS[kind][0](tensors, config, dest)


def _save(dest, config, blob, filename="model.safetensors"):
    (dest / "config.json").write_text(json.dumps(config, indent=2) + "\n")
    (dest / filename).write_bytes(blob)


def _info(entries, name):
    (info,) = [info for entry, info in entries if entry == name]
    return info


def _truncated(tensors, config, dest):
    entries, data = st.layout(tensors)
    header = st.encode_header(entries)
    victim = _info(entries, "model.layers.0.mlp.up_proj.weight")
    middle = sum(victim["data_offsets"]) // 2
    _save(dest, config, st.assemble(header, data)[:8 + len(header) + middle])


def _header_past_end(tensors, config, dest):
    entries, data = st.layout(tensors)
    header = st.encode_header(entries)
    file_size = 8 + len(header) + len(data)
    _save(dest, config, st.assemble(header, data, length=file_size + 1))


def _offsets_out_of_range(tensors, config, dest):
    name = "model.layers.1.self_attn.k_proj.weight"
    (victim,) = [tensor for tensor in tensors if tensor.name == name]
    entries, data = st.layout([tensor for tensor in tensors
                               if tensor.name != name])
    entries.append([name, {"dtype": victim.dtype, "shape": victim.shape,
                           "data_offsets": [len(data),
                                            len(data) + len(victim.data)]}])
    entries.sort(key=lambda entry: entry[0])
    _save(dest, config, st.assemble(st.encode_header(entries), data))


def _overlap(tensors, config, dest):
    shift = 1024
    entries, data = st.layout(tensors)
    first = _info(entries, "model.layers.0.self_attn.q_proj.weight")
    second = _info(entries, "model.layers.0.self_attn.v_proj.weight")
    start, end = second["data_offsets"]
    assert first["data_offsets"][1] == start, "q_proj must precede v_proj"
    for _, info in entries:
        if info["data_offsets"][0] >= end:
            info["data_offsets"] = [offset - shift
                                    for offset in info["data_offsets"]]
    second["data_offsets"] = [start - shift, end - shift]
    data = data[:end - shift] + data[end:]
    _save(dest, config, st.assemble(st.encode_header(entries), data))


def _unknown_dtype(tensors, config, dest):
    entries, data = st.layout(tensors)
    _info(entries, "model.layers.0.mlp.gate_proj.weight")["dtype"] = "F12"
    _save(dest, config, st.assemble(st.encode_header(entries), data))


def _invalid_json(tensors, config, dest):
    entries, data = st.layout(tensors)
    header = st.encode_header(entries)
    brace = header.rindex(b"}")
    header = header[:brace] + b" " + header[brace + 1:]
    _save(dest, config, st.assemble(header, data))


def _duplicate_key(tensors, config, dest):
    name = "model.layers.0.mlp.down_proj.weight"
    entries, data = st.layout(tensors)
    (victim,) = [tensor for tensor in tensors if tensor.name == name]
    entries.append([name, {"dtype": victim.dtype, "shape": victim.shape,
                           "data_offsets": [len(data),
                                            len(data) + len(victim.data)]}])
    data += victim.data
    _save(dest, config, st.assemble(st.encode_header(entries), data))


def _size_mismatch(tensors, config, dest):
    entries, data = st.layout(tensors)
    _info(entries, "model.layers.0.self_attn.o_proj.weight")["shape"] = [32, 16]
    _save(dest, config, st.assemble(st.encode_header(entries), data))


def _missing_shard(tensors, config, dest):
    def shard_of(name):
        if name.startswith("model.layers.0."):
            return 2
        return 3 if name.startswith(("model.layers.1.", "model.norm.")) else 1

    weight_map = {}
    for index in (1, 2, 3):
        filename = f"model-{index:05d}-of-00003.safetensors"
        shard = [tensor for tensor in tensors if shard_of(tensor.name) == index]
        weight_map.update({tensor.name: filename for tensor in shard})
        if index != 2:
            (dest / filename).write_bytes(st.encode(shard))
    index_json = {"metadata": {"total_size": sum(len(tensor.data)
                                                 for tensor in tensors)},
                  "weight_map": dict(sorted(weight_map.items()))}
    (dest / "model.safetensors.index.json").write_text(
        json.dumps(index_json, indent=2) + "\n")
    (dest / "config.json").write_text(json.dumps(config, indent=2) + "\n")


def _config_mismatch(tensors, config, dest):
    _save(dest, {**config, "hidden_size": 48}, st.encode(tensors))


def _missing_tensor(tensors, config, dest):
    name = "model.layers.1.mlp.down_proj.weight"
    _save(dest, config, st.encode([tensor for tensor in tensors
                                   if tensor.name != name]))


def _int_weights(tensors, config, dest):
    name = "model.layers.1.mlp.gate_proj.weight"
    converted = []
    for tensor in tensors:
        if tensor.name == name:
            count = len(tensor.data) // 4
            values = struct.unpack(f"<{count}f", tensor.data)
            tensor = st.Tensor(name, "I32", tensor.shape, struct.pack(
                f"<{count}i", *(round(value * 10000) for value in values)))
        converted.append(tensor)
    _save(dest, config, st.encode(converted))


# Kind -> (writer, one-line summary for --help).
KINDS = {
    "truncated": (_truncated, "file cut halfway through "
                  "model.layers.0.mlp.up_proj.weight"),
    "header-past-end": (_header_past_end,
                        "header length field = file size + 1"),
    "offsets-out-of-range": (_offsets_out_of_range, "model.layers.1.self_attn."
                             "k_proj.weight ends 2048 bytes past the data"),
    "overlap": (_overlap, "model.layers.0.self_attn.v_proj.weight overlaps "
                "q_proj by 1024 bytes"),
    "unknown-dtype": (_unknown_dtype, "model.layers.0.mlp.gate_proj.weight "
                      "has dtype F12"),
    "invalid-json": (_invalid_json, "header JSON lacks its closing brace"),
    "duplicate-key": (_duplicate_key, "model.layers.0.mlp.down_proj.weight "
                      "twice in the header"),
    "size-mismatch": (_size_mismatch, "model.layers.0.self_attn.o_proj.weight "
                      "shape [32, 16] over 4096 bytes"),
    "missing-shard": (_missing_shard, "index names deleted shard "
                      "model-00002-of-00003.safetensors (layer 0)"),
    "config-mismatch": (_config_mismatch, "config.json hidden_size 48, "
                        "tensors have 32"),
    "missing-tensor": (_missing_tensor, "model.layers.1.mlp.down_proj.weight "
                       "left out"),
    "int-weights": (_int_weights, "model.layers.1.mlp.gate_proj.weight "
                    "stored as I32"),
}
