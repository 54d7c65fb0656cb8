"""What refusing NaN and infinite weights costs the Hugging Face export.

    weight_check_benchmark.py MODULE [--runs 5]

Exports MODULE (a mixed module whose checkpoints are on this machine) with
`moe-translate --export-hf`, once checking every stored weight for NaN and
infinity (the default) and once with --allow-non-finite-weights, the two
interleaved run by run so that both see the same load and page cache.
Prints wall seconds of each run and the ratios (checked / unchecked) of the
medians and the minima. Tools come from $MOE_BIN (default build/bin).
"""

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time


def timed_export(tool, module, output, extra):
    shutil.rmtree(output, ignore_errors=True)
    start = time.perf_counter()
    result = subprocess.run([tool, "--export-hf", module, "-o", output] + extra,
                            stdout=subprocess.DEVNULL)
    seconds = time.perf_counter() - start
    if result.returncode != 0:
        sys.exit(f"error: the export of {module} failed")
    shutil.rmtree(output)
    return seconds


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("module")
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    tool = os.path.join(os.environ.get("MOE_BIN", "build/bin"), "moe-translate")
    variants = {"checked": [], "unchecked": ["--allow-non-finite-weights"]}
    times = {name: [] for name in variants}
    with tempfile.TemporaryDirectory(dir=os.path.dirname(os.path.abspath(
            args.module))) as scratch:
        output = os.path.join(scratch, "out")
        timed_export(tool, args.module, output, [])  # Warms the page cache.
        for run in range(args.runs):
            for name, extra in variants.items():
                times[name].append(timed_export(tool, args.module, output,
                                                extra))
            print(f"run {run + 1}: " + ", ".join(
                f"{name} {times[name][-1]:.2f} s" for name in variants))
    for name in variants:
        print(f"{name}: median {statistics.median(times[name]):.2f} s, "
              f"min {min(times[name]):.2f} s")
    print("checked / unchecked: median "
          f"{statistics.median(times['checked']) / statistics.median(times['unchecked']):.2f}x, "
          f"min {min(times['checked']) / min(times['unchecked']):.2f}x")


if __name__ == "__main__":
    main()
