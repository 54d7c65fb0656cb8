"""The Hugging Face MoE export benchmark of docs/benchmarks.md.

    .venv/bin/python bench/export_benchmark.py [--work bench/work] [--runs 2]

Builds the same 4-expert Mixtral checkpoint (experts: the base and three
fine-tuned models of a 1.1B Llama, bfloat16, noisy/random router, top 2)
three ways and measures each with /usr/bin/time -v (wall time, peak RSS):

- `cp`: a plain copy of the four input model files, the floor;
- `mergekit`: `mergekit-moe` (gate_mode random, CPU), from its own
  virtualenv (bench/setup-mergekit.sh);
- `moe`: `moe-translate --import-hf`, `moe-opt --moe-mix-experts`,
  `moe-translate --export-hf`, one after the other (peak RSS is the largest
  of the three); `moe export` times the export step alone.

Inputs are synthetic (bench/make_checkpoints.py) and made once under
--work; every output is deleted after it is measured, and `sync` runs
before each measurement so that no earlier write-back is charged to it.
Page-cache drops are not available: after the first run the inputs are
cached (warm). Outputs are not synced by the tools; the `sync` after each
one is timed apart, and the throughput counts both (data on disk). Prints a
Markdown table of every run.
"""

import argparse
import os
import shutil
import subprocess
import sys
import time

from gnu_time import read_gnu_time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
EXPERTS = ["base", "expert-1", "expert-2", "expert-3"]


def measure(label, command, work, log):
    """Runs `command` under /usr/bin/time -v, then `sync`; returns (seconds
    to exit, seconds of the sync after it, peak KiB)."""
    subprocess.run(["sync"], check=True)
    timing = os.path.join(work, "time.txt")
    with open(log, "a") as out:
        out.write(f"\n== {label}: {' '.join(command)}\n")
        out.flush()
        subprocess.run(["/usr/bin/time", "-v", "-o", timing, *command],
                       check=True, stdout=out, stderr=out)
    start = time.monotonic()
    subprocess.run(["sync"], check=True)
    flushed = time.monotonic() - start
    seconds, peak = read_gnu_time(timing)
    return seconds, flushed, peak


def safetensors_bytes(directory):
    return sum(os.path.getsize(os.path.join(directory, name))
               for name in os.listdir(directory)
               if name.endswith(".safetensors"))


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--work", default=os.path.join(ROOT, "bench", "work"))
    parser.add_argument("--runs", type=int, default=2)
    parser.add_argument("--bin", default=os.environ.get(
        "MOE_BIN", os.path.join(ROOT, "build", "bin")))
    args = parser.parse_args(argv)
    work = os.path.abspath(args.work)
    models = os.path.join(work, "models")
    log = os.path.join(work, "benchmark.log")
    os.makedirs(work, exist_ok=True)

    subprocess.run([os.path.join(ROOT, "bench", "setup-mergekit.sh")],
                   check=True)
    if not os.path.exists(os.path.join(models, EXPERTS[-1], "config.json")):
        shutil.rmtree(models, ignore_errors=True)
        env = dict(os.environ, PYTHONPATH=os.path.join(ROOT, "python"))
        subprocess.run([sys.executable, "-m", "moe_fixtures", "make", "llama",
                        os.path.join(work, "tokenizer")], check=True, env=env)
        subprocess.run([sys.executable,
                        os.path.join(ROOT, "bench", "make_checkpoints.py"),
                        models, "--experts", str(len(EXPERTS) - 1),
                        "--tokenizer", os.path.join(work, "tokenizer")],
                       check=True)

    config = os.path.join(work, "mergekit-moe.yml")
    with open(config, "w") as f:
        f.write(f"base_model: {models}/base\ngate_mode: random\n"
                "dtype: bfloat16\nexperts_per_token: 2\nexperts:\n")
        for name in EXPERTS:
            f.write(f"  - source_model: {models}/{name}\n")
    mergekit = os.path.join(ROOT, "bench", ".venv-mergekit", "bin",
                            "mergekit-moe")
    translate = os.path.join(args.bin, "moe-translate")
    opt = os.path.join(args.bin, "moe-opt")
    out = os.path.join(work, "out")
    imported = os.path.join(work, "input.mlir")
    mixed = os.path.join(work, "mix.mlir")
    ours = " && ".join([
        f"{translate} --import-hf {models}/base "
        + " ".join(f"--expert {n.replace('-', '')}={models}/{n}"
                   for n in EXPERTS[1:]) + f" -o {imported}",
        f"{opt} {imported} --moe-mix-experts='experts=base,"
        + ",".join(n.replace("-", "") for n in EXPERTS[1:])
        + f" router=noisy k=2' -o {mixed}",
        f"{translate} --export-hf {mixed} -o {out}"])
    tools = [
        ("cp", ["cp", "-r", models, out]),
        ("mergekit", [mergekit, config, out, "--device", "cpu", "--quiet"]),
        ("moe", ["bash", "-c", ours]),
        ("moe export", [translate, "--export-hf", mixed, "-o", out]),
    ]
    input_bytes = sum(safetensors_bytes(os.path.join(models, n))
                      for n in EXPERTS)

    rows = []
    env_offline = dict(os.environ, HF_HUB_OFFLINE="1")
    os.environ.update(env_offline)
    for run in range(1, args.runs + 1):
        for label, command in tools:
            shutil.rmtree(out, ignore_errors=True)
            seconds, flushed, peak = measure(f"{label} #{run}", command,
                                             work, log)
            written = (input_bytes if label == "cp"
                       else safetensors_bytes(out))
            rows.append((label, run, seconds, flushed, peak, written))
            print(f"{label} #{run}: {seconds:.1f} s + sync {flushed:.1f} s, "
                  f"{peak / 1024:.0f} MiB, {written / 1e9:.2f} GB", flush=True)
    shutil.rmtree(out, ignore_errors=True)

    print(f"\ninputs: {len(EXPERTS)} x {input_bytes / len(EXPERTS) / 1e9:.2f}"
          f" GB (bfloat16)\n")
    print("| tool | run | wall time (s) | + sync (s) | peak RSS (MiB) "
          "| written (GB) | throughput incl. sync (GB/s) |")
    print("| --- | ---: | ---: | ---: | ---: | ---: | ---: |")
    for label, run, seconds, flushed, peak, written in rows:
        total = max(seconds + flushed, 0.01)
        print(f"| {label} | {run} | {seconds:.1f} | {flushed:.1f} | "
              f"{peak / 1024:,.0f} | {written / 1e9:.2f} | "
              f"{written / 1e9 / total:.2f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
