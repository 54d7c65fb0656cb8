"""Which engine should run the base model for calibration? The benchmark of
docs/benchmarks.md ("Calibration engine").

    .venv/bin/python bench/calibration_engines.py [--work bench/work] [--runs 3]
        [--model DIR] [--experts 4] [--prompts 3] [--words 16]

Computes the same router prototypes (the hidden state entering every
decoder layer at each prompt's last token, averaged over an expert's
prompts) from the same token ids in two ways, interleaved, each under
/usr/bin/time -v (wall time, peak RSS), load and compile time included:

- `torch float32` / `torch bfloat16`: `moe-calibrate` (transformers'
  decoder layers, streamed from the checkpoint one layer at a time; the
  whole command: Python start, imports, tokenization, writing the file);
- `moe-run`: our own CPU execution, `moe-run --internals` on the imported
  base (`moe-translate --import-hf`, timed apart), which compiles the
  whole model for the CPU, evaluates its weights into float32 and returns
  every layer's output; prompts are right-padded into one batch (causal
  attention: padding after a token cannot change it), and the prototypes
  are read at each prompt's last position.

The model defaults to the 1.1B synthetic base of bench/make_checkpoints.py
(made under --work by bench/export_benchmark.py or bench/moe_mix_benchmark.py),
whose tokenizer is the moe_fixtures word-level one ("w5 w6" -> [1, 5, 6]);
prompts are random words w3..w127, fixed by a seed. Prints a Markdown table
of every run, the medians and minima, and how far the two engines' prototypes
are apart.
"""

import argparse
import json
import os
import random
import statistics
import subprocess
import sys
import tempfile

import numpy as np

from gnu_time import read_gnu_time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "python"))


def timed(command, log):
    """(wall seconds, peak RSS in MiB) of `command` under /usr/bin/time -v."""
    with tempfile.NamedTemporaryFile("r", suffix=".time") as timing:
        with open(log, "a") as out:
            out.write("\n$ " + " ".join(command) + "\n")
            out.flush()
            subprocess.run(["/usr/bin/time", "-v", "-o", timing.name, *command],
                           check=True, stdout=out, stderr=out)
        seconds, peak = read_gnu_time(timing.name)
    return seconds, peak / 1024


def prompt_sets(experts, prompts, words, seed=0):
    rng = random.Random(seed)
    return [[" ".join(f"w{rng.randrange(3, 128)}" for _ in range(words))
             for _ in range(prompts)] for _ in range(experts)]


def moe_run_prototypes(internals, ids, lengths, embedding):
    """[layers, experts, hidden] from moe-run's hidden.<l> (layer outputs):
    the input of layer 0 is the embedding row of the last token."""
    from safetensors.numpy import load_file
    tensors = load_file(internals)
    layers = len([k for k in tensors if k.startswith("hidden.")])
    rows = []
    for expert_ids, expert_lengths in zip(ids, lengths):
        per_layer = [np.mean([embedding[row[n - 1]] for row, n in
                              zip(expert_ids["rows"], expert_lengths)], axis=0)]
        for layer in range(layers - 1):
            hidden = tensors[f"hidden.{layer}"]
            per_layer.append(np.mean([hidden[index, n - 1] for index, n in
                                      zip(expert_ids["index"], expert_lengths)], axis=0))
        rows.append(np.stack(per_layer))
    return np.stack(rows, axis=1)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--work", default=os.path.join(ROOT, "bench", "work"))
    parser.add_argument("--model", help="base model directory (default: the "
                        "synthetic 1.1B base under --work)")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--experts", type=int, default=4)
    parser.add_argument("--prompts", type=int, default=3, help="per expert")
    parser.add_argument("--words", type=int, default=16, help="per prompt")
    parser.add_argument("--engines", default="torch-float32,torch-bfloat16,moe-run")
    parser.add_argument("--bin", default=os.environ.get(
        "MOE_BIN", os.path.join(ROOT, "build", "bin")))
    args = parser.parse_args(argv)
    work = os.path.abspath(os.path.join(args.work, "calibration"))
    os.makedirs(work, exist_ok=True)
    model = args.model or os.path.join(args.work, "models", "base")
    if not os.path.exists(os.path.join(model, "config.json")):
        sys.exit(f"{model}: no model; make it with bench/moe_mix_benchmark.py "
                 "(or bench/make_checkpoints.py)")
    log = os.path.join(work, "benchmark.log")

    sets = prompt_sets(args.experts, args.prompts, args.words)
    command = [os.path.join(ROOT, ".venv", "bin", "moe-calibrate"), model]
    for index, prompts in enumerate(sets):
        path = os.path.join(work, f"expert{index}.json")
        with open(path, "w") as f:
            json.dump(prompts, f)
        command.append(f"--prompts=e{index}={path}")

    # The token ids moe-calibrate runs (bos + prompt, mergekit's tokenization).
    from moe_calibrate.prompts import encode, load_tokenizer
    tokenizer = load_tokenizer(model)
    ids, lengths, flat = [], [], []
    for prompts in sets:
        rows = [encode(tokenizer, [prompt])["input_ids"][0].tolist() for prompt in prompts]
        ids.append({"rows": rows, "index": list(range(len(flat), len(flat) + len(rows)))})
        lengths.append([len(row) for row in rows])
        flat += rows
    width = max(len(row) for row in flat)
    padded = ";".join(",".join(str(i) for i in row + [tokenizer.pad_token_id] *
                               (width - len(row))) for row in flat)
    tokens = sum(len(row) for row in flat)

    imported = os.path.join(work, "base.mlir")
    translate = os.path.join(args.bin, "moe-translate")
    import_seconds, import_peak = timed([translate, "--import-hf", model, "-o", imported],
                                        log)
    engines = {
        "torch-float32": command + ["--dtype", "float32", "-o",
                                    os.path.join(work, "torch-float32.safetensors")],
        "torch-bfloat16": command + ["--dtype", "bfloat16", "-o",
                                     os.path.join(work, "torch-bfloat16.safetensors")],
        "moe-run": [os.path.join(args.bin, "moe-run"), imported, "--func", "base",
                    "--ids", padded, "--internals", "-o",
                    os.path.join(work, "internals.safetensors")],
    }
    chosen = args.engines.split(",")
    results = {name: [] for name in chosen}
    env_note = os.getloadavg()
    for run in range(1, args.runs + 1):
        for name in chosen:
            seconds, peak = timed(engines[name], log)
            results[name].append((seconds, peak))
            print(f"{name} #{run}: {seconds:.1f} s, {peak:,.0f} MiB", flush=True)

    print(f"\nmodel: {model}; {len(sets)} experts x {args.prompts} prompts, "
          f"{tokens} tokens (padded batch {len(flat)} x {width}); moe-translate "
          f"--import-hf: {import_seconds:.2f} s, {import_peak:,.0f} MiB; load "
          f"average at start {env_note[0]:.1f}\n")
    print("| engine | run | wall time (s) | peak RSS (MiB) |")
    print("| --- | ---: | ---: | ---: |")
    for run in range(args.runs):
        for name in chosen:
            seconds, peak = results[name][run]
            print(f"| {name} | {run + 1} | {seconds:.1f} | {peak:,.0f} |")
    print("\n| engine | median (s) | min (s) | median peak RSS (MiB) |")
    print("| --- | ---: | ---: | ---: |")
    for name in chosen:
        times = [s for s, _ in results[name]]
        peaks = [p for _, p in results[name]]
        print(f"| {name} | {statistics.median(times):.1f} | {min(times):.1f} | "
              f"{statistics.median(peaks):,.0f} |")

    if "moe-run" in chosen and "torch-float32" in chosen:
        from safetensors.numpy import load_file
        from moe_calibrate.checkpoint import Checkpoint
        embedding = Checkpoint(model).read(["model.embed_tokens.weight"])[
            "model.embed_tokens.weight"].float().numpy()
        theirs = moe_run_prototypes(os.path.join(work, "internals.safetensors"),
                                    ids, lengths, embedding)
        ours = load_file(os.path.join(work, "torch-float32.safetensors"))["prototypes"]
        difference = np.abs(theirs - ours).max() / np.abs(ours).max()
        print(f"\nmax |moe-run - torch float32| / max |torch float32| over the "
              f"prototypes: {difference:.2e}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
