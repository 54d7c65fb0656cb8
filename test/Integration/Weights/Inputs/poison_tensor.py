"""Writes NaN or an infinity into one element of a safetensors tensor, or
counts the non-finite elements of a tensor (--count)."""

import argparse

import numpy as np
from safetensors.numpy import load_file, save_file

VALUES = {"nan": np.nan, "infinity": np.inf, "negative-infinity": -np.inf}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("file")
    parser.add_argument("tensor")
    parser.add_argument("element", nargs="?", type=int)
    parser.add_argument("value", nargs="?", choices=sorted(VALUES))
    parser.add_argument("--count", action="store_true")
    args = parser.parse_args()
    tensors = load_file(args.file)
    if args.count:
        values = tensors[args.tensor].astype(np.float32)
        print(f"{int((~np.isfinite(values)).sum())} non-finite")
        return
    flat = tensors[args.tensor].reshape(-1)
    flat[args.element] = VALUES[args.value]
    save_file(tensors, args.file, metadata={"format": "pt"})


if __name__ == "__main__":
    main()
