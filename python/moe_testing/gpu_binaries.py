"""Writes the PTX of the gpu.binary ops of an MLIR file to <dir>/<name>.ptx.

`moe-opt --moe-lower-to-gpu="format=isa"` keeps each kernel module's PTX as
an escaped string in `assembly = "..."` of its #gpu.object; this reads it
back so that ptxas (tests) or a CUDA driver (device checks) can load it.

Usage: python -m moe_testing.gpu_binaries IN.mlir OUT_DIR
"""

import pathlib
import re
import sys

_BINARY = re.compile(r'gpu\.binary @(\w+)\s*\[(.*)\]\s*$')
_ASSEMBLY = re.compile(r'assembly = "((?:[^"\\]|\\.)*)"')


def unescape(text):
    """Decodes an MLIR string literal body: \\\\ and \\XX (two hex digits)."""
    out = bytearray()
    i = 0
    while i < len(text):
        if text[i] != "\\":
            out += text[i].encode()
            i += 1
        elif text[i + 1] == "\\":
            out += b"\\"
            i += 2
        else:
            out.append(int(text[i + 1:i + 3], 16))
            i += 3
    return out.decode()


def extract(mlir_text):
    """Returns {binary name: PTX text} for every gpu.binary with assembly."""
    found = {}
    for line in mlir_text.splitlines():
        match = _BINARY.search(line.strip())
        if not match:
            continue
        assembly = _ASSEMBLY.search(match.group(2))
        if not assembly:
            raise ValueError(
                "gpu.binary @%s holds no PTX assembly (lower with "
                "format=isa)" % match.group(1))
        found[match.group(1)] = unescape(assembly.group(1))
    return found


def main(argv):
    if len(argv) != 3:
        sys.exit(__doc__.strip().splitlines()[-1])
    source, destination = pathlib.Path(argv[1]), pathlib.Path(argv[2])
    try:
        binaries = extract(source.read_text())
    except (OSError, ValueError) as error:
        sys.exit("error: %s: %s" % (source, error))
    if not binaries:
        sys.exit("error: %s: no gpu.binary op" % source)
    destination.mkdir(parents=True, exist_ok=True)
    for name, ptx in binaries.items():
        (destination / (name + ".ptx")).write_text(ptx)
        print(destination / (name + ".ptx"))


if __name__ == "__main__":
    main(sys.argv)
