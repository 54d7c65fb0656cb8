"""Import time and peak memory do not grow with weight bytes.

    import_benchmark.py [WORKDIR] [--runs 5]

Makes a synthetic 7B-shaped Llama checkpoint in bf16 (hidden 4096,
intermediate 11008, 32 layers, vocab 32000: 6.7 G parameters, 13.5 GB) as
sparse files (headers written, data left a hole, so nothing is read that
the importer does not ask for), and the same with two experts of that shape.
Times `moe-translate --import-hf` on each (wall time and peak RSS of the
process, median of --runs) next to a ~100M model written for real. Tools
come from $MOE_BIN (default build/bin).
"""

import argparse
import os
import pathlib
import statistics
import subprocess
import sys
import time

HERE = pathlib.Path(__file__).resolve().parent
SHAPES = {
    "100M": ["--hidden", "768", "--intermediate", "3072", "--layers", "8",
             "--vocab", "16000", "--heads", "12", "--kv-heads", "4"],
    "7B": ["--hidden", "4096", "--intermediate", "11008", "--layers", "32",
           "--vocab", "32000", "--heads", "32", "--kv-heads", "32",
           "--sparse"],
}


def make(workdir, name, experts):
    target = workdir / f"{name}-e{experts}"
    if not (target / "base" / "config.json").exists():
        subprocess.run([sys.executable, str(HERE / "synthetic_models.py"),
                        str(target), "--dtype", "bf16", "--experts",
                        str(experts)] + SHAPES[name], check=True)
    return target


def measure(command):
    """Wall seconds and peak RSS (MiB) of one run of `command`."""
    start = time.perf_counter()
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL)
    _, status, usage = os.wait4(process.pid, 0)
    seconds = time.perf_counter() - start
    if status != 0:
        sys.exit(f"error: {' '.join(command)} failed")
    return seconds, usage.ru_maxrss / 1024


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("workdir", nargs="?", default=str(HERE / "work" / "import"))
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    workdir = pathlib.Path(args.workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    tool = os.path.join(os.environ.get("MOE_BIN", "build/bin"), "moe-translate")
    print("checkpoint                 weight bytes   wall s (median, min-max)   "
          "peak RSS MiB")
    for name, experts in (("100M", 1), ("7B", 1), ("7B", 3)):
        directory = make(workdir, name, experts)
        models = sorted(p for p in directory.iterdir() if p.is_dir())
        command = [tool, "--import-hf", str(directory / "base")]
        for model in models:
            if model.name != "base":
                command += ["--expert", f"{model.name}={model}"]
        command += ["-o", str(workdir / "out.mlir")]
        weight_bytes = sum((m / "model.safetensors").stat().st_size for m in models)
        runs = [measure(command) for _ in range(args.runs)]
        seconds = [s for s, _ in runs]
        rss = max(r for _, r in runs)
        label = f"{name} x{experts}" + (" (sparse)" if name == "7B" else "")
        print(f"{label:24} {weight_bytes / 1e9:9.2f} GB   "
              f"{statistics.median(seconds):6.3f} ({min(seconds):.3f}-{max(seconds):.3f})"
              f"          {rss:8.1f}")


if __name__ == "__main__":
    main()
