"""moe-mix against mergekit-moe on the same YAML: the benchmark of
docs/benchmarks.md ("moe-mix vs mergekit-moe, gate_mode hidden").

    .venv/bin/python bench/moe_mix_benchmark.py [--work bench/work] [--runs 3]
        [--prompts 3] [--words 16]

Inputs: the synthetic 1.1B Llama base and three experts of
bench/make_checkpoints.py (TinyLlama-1.1B's shape, bfloat16, 2.2 GB each),
made once under --work/models with the moe_fixtures word-level tokenizer
("w5 w6" -> [1, 5, 6], bos 1), which both tools load with transformers'
AutoTokenizer. The config is mergekit-moe's: `gate_mode: hidden`, `dtype:
bfloat16`, top 2, the base and the three experts as experts, each with
--prompts prompts of --words random words (w3..w127, fixed seed).

Each run, interleaved, measures under /usr/bin/time -v the wall time and
the peak RSS of the largest process, and samples (every 50 ms) the summed
RSS of the command's whole process tree; `sync` runs before each command
and, timed apart, after it. Calibration is included: it is part of both
commands. mergekit-moe runs from its own virtualenv (bench/setup-mergekit.sh)
with `--device cpu`. After the runs, the last outputs of both are compared
tensor by tensor: router rows (max |difference|, cosine) and expert and
stem tensors (bitwise).
"""

import argparse
import os
import random
import shutil
import statistics
import subprocess
import sys
import threading
import time

from gnu_time import read_gnu_time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
EXPERTS = ["base", "expert-1", "expert-2", "expert-3"]


def tree_rss(pid):
    """Summed RSS (bytes) of `pid` and its descendants, 0 once gone."""
    import psutil
    try:
        process = psutil.Process(pid)
        processes = [process] + process.children(recursive=True)
    except psutil.NoSuchProcess:
        return 0
    total = 0
    for p in processes:
        try:
            total += p.memory_info().rss
        except psutil.NoSuchProcess:
            pass
    return total


def measure(label, command, work, log, env):
    """(seconds to exit, seconds of the sync after it, peak KiB of the
    largest process, peak MiB of the process tree)."""
    subprocess.run(["sync"], check=True)
    timing = os.path.join(work, "time.txt")
    with open(log, "a") as out:
        out.write(f"\n== {label}: {' '.join(command)}\n")
        out.flush()
        process = subprocess.Popen(["/usr/bin/time", "-v", "-o", timing, *command],
                                   stdout=out, stderr=out, env=env)
        peak = [0]

        def sample():
            while process.poll() is None:
                peak[0] = max(peak[0], tree_rss(process.pid))
                time.sleep(0.05)
        sampler = threading.Thread(target=sample)
        sampler.start()
        process.wait()
        sampler.join()
    if process.returncode:
        sys.exit(f"{label} failed, see {log}")
    start = time.monotonic()
    subprocess.run(["sync"], check=True)
    flushed = time.monotonic() - start
    seconds, largest = read_gnu_time(timing)
    return seconds, flushed, largest, peak[0] / 2**20


def make_models(work):
    models = os.path.join(work, "models")
    if os.path.exists(os.path.join(models, EXPERTS[-1], "config.json")):
        return models
    shutil.rmtree(models, ignore_errors=True)
    env = dict(os.environ, PYTHONPATH=os.path.join(ROOT, "python"))
    tokenizer = os.path.join(work, "tokenizer")
    if not os.path.exists(tokenizer):
        subprocess.run([sys.executable, "-m", "moe_fixtures", "make", "llama", tokenizer],
                       check=True, env=env)
    subprocess.run([sys.executable, os.path.join(ROOT, "bench", "make_checkpoints.py"),
                    models, "--experts", str(len(EXPERTS) - 1), "--tokenizer", tokenizer],
                   check=True)
    return models


def write_config(path, models, prompts, words):
    rng = random.Random(0)
    lines = [f"base_model: {models}/base", "gate_mode: hidden", "dtype: bfloat16",
             "experts_per_token: 2", "experts:"]
    for name in EXPERTS:
        lines.append(f"  - source_model: {models}/{name}")
        lines.append("    positive_prompts:")
        for _ in range(prompts):
            lines.append('      - "' + " ".join(f"w{rng.randrange(3, 128)}"
                                                for _ in range(words)) + '"')
    with open(path, "w") as f:
        f.write("\n".join(lines) + "\n")


def compare(ours, theirs, layers, experts):
    """Router rows and every other tensor of the two Mixtral checkpoints,
    one tensor at a time (mergekit writes transformers 5's fused expert
    layout, moe-translate the per-expert one)."""
    import torch
    from safetensors import safe_open

    def index(directory):
        files = {}
        for name in os.listdir(directory):
            if name.endswith(".safetensors"):
                with safe_open(os.path.join(directory, name), "pt") as f:
                    for key in f.keys():
                        files[key] = os.path.join(directory, name)
        return files

    def tensor(files, key):
        with safe_open(files[key], "pt") as f:
            return f.get_tensor(key)

    mine, other = index(ours), index(theirs)
    worst, cosine = 0.0, 1.0
    unequal = []
    for layer in range(layers):
        a = tensor(mine, f"model.layers.{layer}.block_sparse_moe.gate.weight").float()
        b = tensor(other, f"model.layers.{layer}.mlp.gate.weight").float()
        worst = max(worst, (a - b).abs().max().item())
        cosine = min(cosine, torch.nn.functional.cosine_similarity(a, b, dim=1).min().item())
        gate_up = tensor(other, f"model.layers.{layer}.mlp.experts.gate_up_proj")
        down = tensor(other, f"model.layers.{layer}.mlp.experts.down_proj")
        half = gate_up.shape[1] // 2
        for e in range(experts):
            prefix = f"model.layers.{layer}.block_sparse_moe.experts.{e}"
            for ours_key, theirs_value in (("w1", gate_up[e, :half]), ("w3", gate_up[e, half:]),
                                           ("w2", down[e])):
                if not torch.equal(tensor(mine, f"{prefix}.{ours_key}.weight"), theirs_value):
                    unequal.append(f"{prefix}.{ours_key}")
    stem = [k for k in other if ".mlp." not in k]
    for key in stem:
        if not torch.equal(tensor(mine, key), tensor(other, key)):
            unequal.append(key)
    return worst, cosine, unequal, len(stem)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--work", default=os.path.join(ROOT, "bench", "work"))
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--prompts", type=int, default=3, help="per expert")
    parser.add_argument("--words", type=int, default=16, help="per prompt")
    parser.add_argument("--bin", default=os.environ.get(
        "MOE_BIN", os.path.join(ROOT, "build", "bin")))
    args = parser.parse_args(argv)
    work = os.path.abspath(args.work)
    os.makedirs(work, exist_ok=True)
    subprocess.run([os.path.join(ROOT, "bench", "setup-mergekit.sh")], check=True)
    models = make_models(work)
    config = os.path.join(work, "moe-mix-hidden.yml")
    write_config(config, models, args.prompts, args.words)
    log = os.path.join(work, "moe-mix-benchmark.log")
    env = dict(os.environ, HF_HUB_OFFLINE="1", MOE_BIN=args.bin)
    out = {"mergekit": os.path.join(work, "out-mergekit"),
           "moe-mix": os.path.join(work, "out-moe-mix")}
    commands = {
        "mergekit": [os.path.join(ROOT, "bench", ".venv-mergekit", "bin", "mergekit-moe"),
                     config, out["mergekit"], "--device", "cpu", "--quiet"],
        "moe-mix": [os.path.join(ROOT, ".venv", "bin", "moe-mix"), config, out["moe-mix"],
                    "--quiet"],
    }
    rows = []
    for run in range(1, args.runs + 1):
        for label, command in commands.items():
            shutil.rmtree(out[label], ignore_errors=True)
            seconds, flushed, largest, tree = measure(f"{label} #{run}", command,
                                                      work, log, env)
            rows.append((label, run, seconds, flushed, largest / 1024, tree))
            print(f"{label} #{run}: {seconds:.1f} s + sync {flushed:.1f} s, largest "
                  f"process {largest / 1024:,.0f} MiB, process tree {tree:,.0f} MiB",
                  flush=True)

    print(f"\nconfig: {config} ({len(EXPERTS)} experts x {args.prompts} prompts x "
          f"{args.words} words); load average now {os.getloadavg()[0]:.1f}\n")
    print("| tool | run | wall time (s) | + sync (s) | peak RSS, largest process (MiB) "
          "| peak RSS, process tree (MiB) |")
    print("| --- | ---: | ---: | ---: | ---: | ---: |")
    for label, run, seconds, flushed, largest, tree in rows:
        print(f"| {label} | {run} | {seconds:.1f} | {flushed:.1f} | {largest:,.0f} "
              f"| {tree:,.0f} |")
    summary = {}
    for label in commands:
        times = [s + f for l, _, s, f, _, _ in rows if l == label]
        trees = [t for l, _, _, _, _, t in rows if l == label]
        summary[label] = (statistics.median(times), min(times), statistics.median(trees),
                          max(trees))
    print("\n| | median time incl. sync (s) | min (s) | median tree peak RSS (MiB) "
          "| max tree peak RSS (MiB) |")
    print("| --- | ---: | ---: | ---: | ---: |")
    for label, (median, low, rss, rss_max) in summary.items():
        print(f"| {label} | {median:.1f} | {low:.1f} | {rss:,.0f} | {rss_max:,.0f} |")
    mk, ours = summary["mergekit"], summary["moe-mix"]
    print(f"\nspeed-up: {mk[0] / ours[0]:.2f}x on medians, {mk[1] / ours[1]:.2f}x on "
          f"minima; peak RSS: {ours[3] / mk[2]:.3f} of mergekit's (our max / their "
          "median)")

    worst, cosine, unequal, stem = compare(out["moe-mix"], out["mergekit"], 22,
                                           len(EXPERTS))
    print(f"routers: max |moe-mix - mergekit| = {worst:.4g}, min row cosine "
          f"{cosine:.6f}; experts and {stem} stem tensors: "
          + ("all bitwise equal" if not unequal else f"{len(unequal)} differ: "
             + ", ".join(unequal[:5])))
    for path in out.values():
        shutil.rmtree(path, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
