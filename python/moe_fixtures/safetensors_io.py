"""A minimal, byte-exact safetensors reader and writer.

The format: an unsigned 64-bit little-endian header length N, N bytes of
JSON header (``{"__metadata__": {...}, name: {"dtype", "shape",
"data_offsets": [begin, end]}, ...}``, offsets relative to the data region,
padded with spaces to a multiple of 8), then the data region up to the end of
the file. Writing the pieces separately (entries, header text, data) lets
:mod:`moe_fixtures.malformed` break exactly one rule at a time; that is why
this module does not use the safetensors package.
"""

import json
import struct
from dataclasses import dataclass
from pathlib import Path

METADATA = {"format": "pt"}
COMPACT = (",", ":")


@dataclass
class Tensor:
    name: str
    dtype: str
    shape: list[int]
    data: bytes


def read(path):
    """The tensors of the safetensors file at path, in data-offset order."""
    raw = Path(path).read_bytes()
    (length,) = struct.unpack("<Q", raw[:8])
    header = json.loads(raw[8:8 + length])
    header.pop("__metadata__", None)
    data = raw[8 + length:]
    ordered = sorted(header.items(), key=lambda item: item[1]["data_offsets"])
    return [Tensor(name, info["dtype"], info["shape"],
                   data[info["data_offsets"][0]:info["data_offsets"][1]])
            for name, info in ordered]


def layout(tensors):
    """Lays tensors out back to back, in the given order.

    Returns (entries, data): entries is a list of [name, info] pairs (a list,
    not a dict, so that callers may repeat a name) with info holding dtype,
    shape and data_offsets; data is the concatenated bytes.
    """
    entries, chunks, offset = [], [], 0
    for tensor in tensors:
        end = offset + len(tensor.data)
        entries.append([tensor.name, {"dtype": tensor.dtype,
                                      "shape": list(tensor.shape),
                                      "data_offsets": [offset, end]}])
        chunks.append(tensor.data)
        offset = end
    return entries, b"".join(chunks)


def encode_header(entries, metadata=METADATA):
    """The header JSON of entries, space-padded to a multiple of 8 bytes.

    Written pair by pair, so a repeated name stays repeated.
    """
    members = [json.dumps("__metadata__") + ":"
               + json.dumps(metadata, separators=COMPACT)]
    members += [json.dumps(name) + ":" + json.dumps(info, separators=COMPACT)
                for name, info in entries]
    text = ("{" + ",".join(members) + "}").encode()
    return text + b" " * (-len(text) % 8)


def assemble(header, data, length=None):
    """The file bytes: length field (default: the true header length),
    header, data."""
    return struct.pack("<Q", len(header) if length is None else length) \
        + header + data


def encode(tensors):
    """A valid safetensors file of tensors, laid out in the given order."""
    entries, data = layout(tensors)
    return assemble(encode_header(entries), data)
