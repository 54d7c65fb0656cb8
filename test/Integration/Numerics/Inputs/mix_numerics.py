"""Runs mixes built by moe-mix-experts / moe-mix-adapters with moe-run (all
routed-expert strategies: sparse, dense, the routing kernels on the CPU) and
compares their logits with the independent PyTorch reference of
python/moe_reference.

    mix_numerics.py WORKDIR experts|adapters|decompose

Tools come from $MOE_BIN, fixtures from moe_fixtures. Prints one line per
run and fails when a relative error max|ours - ref| / max|ref| is above
1e-5 (fp32).
"""

import os
import subprocess
import sys

import numpy as np

from moe_reference.adapters import AdaptersMix, adapters_logits
from moe_reference.experts import ExpertsMix, experts_logits
from moe_reference.models import logits_of, load_model
from moe_testing.compare import relative_error

TOLERANCE = 1e-5
IDS = [list(range(1, 13)), list(range(40, 52))]
IDS_TEXT = ";".join(",".join(map(str, row)) for row in IDS)


def tool(name, *args):
    return subprocess.run([os.path.join(os.environ["MOE_BIN"], name), *args],
                          check=True, stdout=subprocess.PIPE).stdout


def fixture(workdir, name):
    path = os.path.join(workdir, name)
    if not os.path.exists(path):
        subprocess.run([sys.executable, "-m", "moe_fixtures", "make", name, path], check=True)
    return path


def run_strategies(module):
    logits = {}
    for strategy in ("sparse", "dense", "kernels"):
        out = module + f".{strategy}.npy"
        tool("moe-run", module, "--ids", IDS_TEXT, "--strategy", strategy, "-o", out)
        logits[strategy] = np.load(out).astype(np.float64)
    return logits


def report(label, logits, reference):
    failures = 0
    for strategy, ours in logits.items():
        error = relative_error(ours, reference)
        ok = error <= TOLERANCE
        failures += not ok
        print(f"{label:44} {strategy:6} {error:.2e} {'ok' if ok else 'FAIL'}")
    return failures


def experts(workdir):
    from safetensors.numpy import save_file

    rng = np.random.default_rng(3)
    protos = os.path.join(workdir, "protos.safetensors")
    save_file({"prototypes": rng.standard_normal((2, 3, 32)).astype(np.float32)}, protos)
    given = os.path.join(workdir, "given.safetensors")
    save_file({f"model.layers.{l}.block_sparse_moe.gate.weight":
               rng.standard_normal((3, 32)).astype(np.float32) for l in range(2)}, given)
    families = {
        "llama": ("llama", ["llama-expert-1", "llama-expert-2"]),
        "mistral": ("mistral", ["mistral-expert-1", "mistral-expert-2"]),
        "qwen2": ("qwen2", ["qwen2-expert-1", "qwen2-expert-2"]),
    }
    cases = [
        ("llama", "router=noisy k=2", {}),
        ("llama", "router=gateless", {"router": "gateless"}),
        ("llama", "router=uniform-random k=1 seed=3", {"router": "uniform-random", "k": 1, "seed": 3}),
        ("llama", f"router=hidden prototypes={protos}", {"router": "hidden", "prototypes": protos}),
        ("llama", "router=cheap-embed cheap-embed-tokens=1,2;3;4,5,6", {"router": "cheap-embed", "cheap_embed_tokens": "1,2;3;4,5,6"}),
        ("llama", "router=base-init", {"router": "base-init"}),
        ("llama", f"router=given router-weights={given}", {"router": "given", "router_weights": given}),
        ("llama", "stem=average", {"stem": "average"}),
        ("llama", "k=1 scoring=sigmoid renormalize=false", {"k": 1, "scoring": "sigmoid", "renormalize": False}),
        ("llama", "always-on=base", {"always_on": "base"}),
        ("llama", "shared-expert=base k=1", {"shared_expert": "base", "k": 1}),
        ("llama", "fine-grained", {"fine_grained": True}),
        ("llama", "route-attention", {"route_attention": True}),
        ("llama", "global-router seed=4", {"global_router": True, "seed": 4}),
        ("llama", "layers=1", {"layers": [1]}),
        ("mistral", "router=noisy k=1", {"k": 1}),
        ("qwen2", "shared-expert=base", {"shared_expert": "base"}),
    ]
    failures = 0
    for family, options, reference_options in cases:
        base, expert_names = families[family]
        base_dir = fixture(workdir, base)
        experts = {f"e{i + 1}": fixture(workdir, name) for i, name in enumerate(expert_names)}
        imported = os.path.join(workdir, f"{family}-import.mlir")
        if not os.path.exists(imported):
            tool("moe-translate", "--import-hf", base_dir,
                 *[f"--expert={n}={d}" for n, d in experts.items()], "-o", imported)
        module = os.path.join(workdir, f"{family}-{len(os.listdir(workdir))}.mlir")
        tool("moe-opt", imported, f"--moe-mix-experts={options}", "-o", module)
        reference = experts_logits(ExpertsMix(base=base_dir, models=experts, **reference_options), IDS)
        failures += report(f"{family} {options.split(' router-weights')[0].split(' prototypes')[0]}",
                           run_strategies(module), reference.astype(np.float64))
    return failures


def adapters(workdir):
    base = fixture(workdir, "llama")
    adapters = [("attn", fixture(workdir, "llama-lora-attn")), ("mlp", fixture(workdir, "llama-lora-mlp")),
                ("all", fixture(workdir, "llama-lora-all"))]
    imported = os.path.join(workdir, "adapters-import.mlir")
    tool("moe-translate", "--import-hf", base, *[f"--adapter={n}={d}" for n, d in adapters], "-o", imported)
    cases = [
        ("router=noisy", {}),
        ("router=zero normalization=softmax", {"router": "zero", "normalization": "softmax"}),
        ("router=uniform-random top-k=1 normalization=softmax", {"router": "uniform-random", "top_k": 1, "normalization": "softmax"}),
        ("router=noisy top-k=2 seed=5", {"top_k": 2, "seed": 5}),
    ]
    failures = 0
    for n, (options, reference_options) in enumerate(cases):
        module = os.path.join(workdir, f"adapters-{n}.mlir")
        tool("moe-opt", imported, f"--moe-mix-adapters={options}", "-o", module)
        reference = adapters_logits(AdaptersMix(base=base, adapters=adapters, **reference_options), IDS)
        failures += report(f"adapters {options}", run_strategies(module), reference.astype(np.float64))
    return failures


def decompose(workdir):
    """A full-rank decomposition of an expert into an adapter of the base
    computes the expert again."""
    base = fixture(workdir, "llama")
    expert = fixture(workdir, "llama-expert-1")
    imported = os.path.join(workdir, "decompose-import.mlir")
    tool("moe-translate", "--import-hf", base, f"--expert=math={expert}", "-o", imported)
    module = os.path.join(workdir, "decomposed.mlir")
    tool("moe-opt", imported, f"--moe-decompose-experts=rank=64 output-dir={workdir}/factors",
         "--mlir-print-op-on-diagnostic=false", "-o", module)
    logits = {}
    for strategy in ("sparse", "dense", "kernels"):
        out = module + f".{strategy}.npy"
        tool("moe-run", module, "--func", "math", "--ids", IDS_TEXT, "--strategy", strategy, "-o", out)
        logits[strategy] = np.load(out).astype(np.float64)
    reference = logits_of(load_model(expert), IDS).astype(np.float64)
    return report("decomposed expert at full rank", logits, reference)


def main(workdir, kind):
    failures = {"experts": experts, "adapters": adapters, "decompose": decompose}[kind](workdir)
    print(f"{kind}: {failures} above {TOLERANCE}")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main(*sys.argv[1:]))
