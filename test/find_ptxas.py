# Where ptxas is, for both lit suites: MOE_PTXAS, the CUDA toolkit's on PATH,
# or the one the project virtualenv's triton (a torch dependency) ships.

import glob
import os
import shutil


def find_ptxas(src_root):
    ptxas = os.environ.get("MOE_PTXAS") or shutil.which("ptxas") or next(
        iter(sorted(glob.glob(os.path.join(
            src_root, ".venv", "lib", "python3*", "site-packages", "triton",
            "backends", "nvidia", "bin", "ptxas")))), None)
    return ptxas if ptxas and os.access(ptxas, os.X_OK) else None
