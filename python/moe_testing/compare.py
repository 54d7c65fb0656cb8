"""Compares two arrays (.npy, or a tensor of a .safetensors file).

    python -m moe_testing.compare OURS REFERENCE [--tolerance 1e-5] [--label L]

OURS and REFERENCE are .npy files or FILE.safetensors:TENSOR. The error is
max|ours - reference| / max|reference|; prints it and exits 1 when it is
above the tolerance (or the shapes differ).
"""

import argparse
import sys

import numpy as np


def relative_error(ours, reference):
    """max|ours - reference| / max|reference|, in float64."""
    ours = np.asarray(ours, dtype=np.float64)
    reference = np.asarray(reference, dtype=np.float64)
    return float(np.abs(ours - reference).max() / np.abs(reference).max())


def load(spec):
    if ".safetensors:" in spec:
        from safetensors.numpy import load_file

        path, _, name = spec.partition(".safetensors:")
        return load_file(path + ".safetensors")[name]
    return np.load(spec)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("ours")
    parser.add_argument("reference")
    parser.add_argument("--tolerance", type=float, default=1e-5)
    parser.add_argument("--label", default="")
    args = parser.parse_args(argv)
    ours = load(args.ours).astype(np.float64)
    reference = load(args.reference).astype(np.float64)
    label = args.label or args.ours
    if ours.shape != reference.shape:
        print(f"{label}: shape {ours.shape} differs from the reference's {reference.shape}")
        return 1
    error = relative_error(ours, reference)
    verdict = "ok" if error <= args.tolerance else "ABOVE TOLERANCE"
    print(f"{label}: relative error {error:.2e} (tolerance {args.tolerance:g}) {verdict}")
    return 0 if error <= args.tolerance else 1


if __name__ == "__main__":
    sys.exit(main())
