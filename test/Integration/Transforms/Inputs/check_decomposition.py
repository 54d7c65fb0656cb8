"""Checks the factors moe-decompose-experts wrote: for every decomposed
module, B A must approximate expert - base within 1% of the optimal rank-r
error (Eckart-Young), and exactly (1e-5) when the difference has rank <= r.

    check_decomposition.py BASE.safetensors EXPERT.safetensors FACTORS.safetensors
"""

import sys

import numpy as np
from safetensors.numpy import load_file


def main(base_path, expert_path, factors_path):
    base, expert, factors = (load_file(p) for p in (base_path, expert_path, factors_path))
    modules = sorted({k[: -len(".lora_A.weight")] for k in factors if k.endswith(".lora_A.weight")})
    if not modules:
        raise SystemExit("no factors")
    for module in modules:
        a = factors[module + ".lora_A.weight"].astype(np.float64)
        b = factors[module + ".lora_B.weight"].astype(np.float64)
        delta = expert[module + ".weight"].astype(np.float64) - base[module + ".weight"]
        rank = a.shape[0]
        error = np.linalg.norm(delta - b @ a) / np.linalg.norm(delta)
        s = np.linalg.svd(delta, compute_uv=False)
        optimal = np.sqrt(np.sum(s[rank:] ** 2)) / np.linalg.norm(delta)
        limit = max(optimal * 1.01, 1e-5)
        status = "ok" if error <= limit else "FAIL"
        print(f"{module}: rank {rank} error {error:.3e} optimal {optimal:.3e} {status}")
        if error > limit:
            raise SystemExit(1)


if __name__ == "__main__":
    main(*sys.argv[1:])
