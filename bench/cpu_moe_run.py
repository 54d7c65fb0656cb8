"""CPU throughput of moe-run: dense models, and mixes with each strategy.

    cpu_moe_run.py [WORKDIR] [--tokens 128] [--repeat 3] [--quick]

Synthetic Llama-shaped checkpoints (bench/synthetic_models.py, f32):
a tiny model (hidden 128, 2 layers, vocab 1000: 0.6M parameters) and a
~100M one (hidden 768, intermediate 3072, 8 layers, vocab 16000, 12 heads,
4 KV heads: 94M). For each: the dense model's prefill throughput
(`moe-run --repeat`, one sequence of --tokens tokens), then on the ~100M
shape mixes of E = 4 and 8 experts (noisy router) with k = 1 and 2, run
with each routed-expert strategy (sparse, dense, kernels). Prints tokens/s
(moe-run --repeat: the mean over the runs, code generation done before
them) and the compile time (MLIR pipeline and LLVM code generation).
--quick runs the tiny model only. Tools come from $MOE_BIN (default
build/bin).
"""

import argparse
import os
import pathlib
import re
import subprocess
import sys

HERE = pathlib.Path(__file__).resolve().parent
SHAPES = {
    "tiny": ["--hidden", "128", "--intermediate", "512", "--layers", "2",
             "--vocab", "1000", "--heads", "4", "--kv-heads", "2"],
    "100M": ["--hidden", "768", "--intermediate", "3072", "--layers", "8",
             "--vocab", "16000", "--heads", "12", "--kv-heads", "4"],
}


def tool(name):
    return os.path.join(os.environ.get("MOE_BIN", "build/bin"), name)


def make(workdir, shape, experts):
    target = workdir / f"{shape}-e{experts}"
    if not (target / "base" / "config.json").exists():
        subprocess.run([sys.executable, str(HERE / "synthetic_models.py"),
                        str(target), "--experts", str(experts)] + SHAPES[shape],
                       check=True)
    return target


def import_and_mix(directory, experts, k):
    """The MLIR to run: the base alone, or a mix of its experts."""
    out = directory / (f"mix-k{k}.mlir" if experts > 1 else "dense.mlir")
    command = [tool("moe-translate"), "--import-hf", str(directory / "base")]
    names = ["base"]
    for e in range(1, experts):
        command += ["--expert", f"expert{e}={directory / f'expert-{e}'}"]
        names.append(f"expert{e}")
    imported = directory / "imported.mlir"
    subprocess.run(command + ["-o", str(imported)], check=True)
    if experts == 1:
        return imported, "base"
    subprocess.run([tool("moe-opt"), str(imported),
                    f"--moe-mix-experts=experts={','.join(names)} "
                    f"router=noisy k={k}", "-o", str(out)], check=True)
    return out, "mix"


def run(module, function, tokens, repeat, strategy):
    ids = ",".join(str((7 * t) % 997) for t in range(tokens))
    result = subprocess.run(
        [tool("moe-run"), str(module), "--func", function, "--ids", ids,
         "--strategy", strategy, "--repeat", str(repeat)],
        check=True, capture_output=True, text=True)
    match = re.search(r"compile ([\d.]+) s; \d+ runs of \d+ tokens: ([\d.]+) "
                      r"tokens/s", result.stdout + result.stderr)
    if not match:
        sys.exit("error: no throughput in moe-run's output:\n" + result.stderr)
    return float(match.group(1)), float(match.group(2))


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("workdir", nargs="?", default=str(HERE / "work" / "cpu"))
    parser.add_argument("--tokens", type=int, default=128)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    workdir = pathlib.Path(args.workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    print(f"prefill of {args.tokens} tokens, {args.repeat} timed runs")
    print("model                      strategy  compile s   tokens/s")
    for shape in ("tiny",) if args.quick else ("tiny", "100M"):
        module, function = import_and_mix(make(workdir, shape, 1), 1, 0)
        compile_s, rate = run(module, function, args.tokens, args.repeat, "sparse")
        print(f"{shape + ' dense model':26} {'-':9} {compile_s:8.2f}  {rate:9.1f}")
    if args.quick:
        return
    for experts in (4, 8):
        directory = make(workdir, "100M", experts)
        for k in (1, 2):
            module, function = import_and_mix(directory, experts, k)
            for strategy in ("sparse", "dense", "kernels"):
                compile_s, rate = run(module, function, args.tokens,
                                      args.repeat, strategy)
                print(f"{f'100M mix E={experts} k={k}':26} {strategy:9} "
                      f"{compile_s:8.2f}  {rate:9.1f}")


if __name__ == "__main__":
    main()
