"""The routing and grouped-GEMM kernels of moe-lower-to-gpu on a real GPU.

    gpu_moe_layer.py [--experts 8 --k 2 --hidden 4096 --inter 14336]
                     [--tokens 16,128,1024,4096] [--mma none,tf32]
                     [--dry-run | --ptx FILE]

Builds a one-layer routed-experts function (a Mixtral-sized layer by
default), lowers it with `moe-opt --moe-lower-to-gpu`, reads the kernels'
PTX back (moe_testing.gpu_binaries) and assembles it with ptxas. Then, on a
CUDA device, loads the PTX with the driver API (ctypes, libcuda), launches
the five kernels the way the generated host code does, and for every token
count:

- checks the output against a float64 PyTorch reference of the layer
  (max |ours - ref| / max |ref|, tolerance 1e-4); for the tensor-core
  kernels (mma=tf32) the reference rounds the GEMM operands to TF32 as the
  kernels do, so a wrong fragment layout shows as an O(1) error;
- times the five kernels (CUDA events, median of 20 runs after 3 warm-ups)
  against PyTorch float32 doing the same work two ways: a per-expert loop
  (gather, three matmuls, scatter-add) and one dense GEMM chain with the
  same FLOPs (T k rows through gate, up and down), the lower bound of a
  grouped GEMM in cuBLAS.

Both GEMM arithmetics are built and run by default (--mma none,tf32: f32
multiply-adds, and tensor-core mma.sync with TF32 operands).

--dry-run stops after ptxas (no GPU needed) and checks that every kernel's
parameter list is the one this script launches with; it leaves the PTX in
--out/<mma>/. --ptx FILE skips the build and loads that PTX (built with the
one --mma given), for a GPU machine without the compiler (torch is all it
needs). Tools come from $MOE_BIN
(default build/bin); ptxas from $MOE_PTXAS or PATH.
"""

import argparse
import ctypes
import os
import pathlib
import re
import shutil
import statistics
import subprocess
import sys
import tempfile

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1] / "python"))
from moe_testing.gpu_binaries import extract  # noqa: E402

BLOCK_M, BLOCK_N, BLOCK_K, THREADS = 16, 64, 16, 256

# Kernel signatures (moe-lower-moe-kernels): "b" a flat buffer (a memref
# descriptor: 5 parameters), "i" an index (1 parameter).
SIGNATURES = {
    "gating": "bbbbbi",
    "align": "bbbbbbii",
    "gemm_up": "bbbbbbbii",
    "gemm_down": "bbbbbbbii",
    "combine": "bbi",
}


def layer_mlir(e, k, h, i):
    x, r = f"tensor<?x{h}xf32>", f"tensor<{e}x{h}xf32>"
    w, d = f"tensor<{e}x{i}x{h}xf32>", f"tensor<{e}x{h}x{i}xf32>"
    return f"""func.func @layer(%x: {x}, %router: {r}, %gate: {w}, %up: {w}, %down: {d}) -> {x} {{
  %logits = moe.router %x, %router : ({x}, {r}) -> tensor<?x{e}xf32>
  %w, %idx = moe.topk_gating %logits k {k} scoring softmax {{renormalize}} : tensor<?x{e}xf32> -> tensor<?x{k}xf32>, tensor<?x{k}xi64>
  %y = moe.experts %x routed(%w, %idx) gate %gate up %up down %down activation silu : ({x}, tensor<?x{k}xf32>, tensor<?x{k}xi64>, {w}, {w}, {d}) -> {x}
  return %y : {x}
}}
"""


def build_ptx(args, workdir, mma):
    """Lowers the layer to PTX; returns the moe_kernels module's text."""
    workdir.mkdir(parents=True, exist_ok=True)
    source = workdir / "layer.mlir"
    source.write_text(layer_mlir(args.experts, args.k, args.hidden, args.inter))
    lowered = workdir / "layer.gpu.mlir"
    moe_opt = os.path.join(os.environ.get("MOE_BIN", "build/bin"), "moe-opt")
    options = (f"chip={args.chip} features=+ptx80 block-m={BLOCK_M} "
               f"block-n={BLOCK_N} block-k={BLOCK_K} threads={THREADS} "
               f"mma={mma}")
    subprocess.run([moe_opt, str(source), f"--moe-lower-to-gpu={options}",
                    "-o", str(lowered)], check=True)
    ptx = extract(lowered.read_text())["moe_kernels"]
    (workdir / "moe_kernels.ptx").write_text(ptx)
    ptxas = os.environ.get("MOE_PTXAS") or shutil.which("ptxas")
    if not ptxas:
        sys.exit("error: no ptxas (set MOE_PTXAS)")
    subprocess.run([ptxas, f"-arch={args.chip}", "-v",
                    str(workdir / "moe_kernels.ptx"), "-o",
                    str(workdir / "moe_kernels.cubin")], check=True)
    return ptx


def check_signatures(ptx):
    for name, signature in SIGNATURES.items():
        entry = re.search(r"\.entry layer_moe0_%s\((.*?)\)" % name, ptx, re.S)
        if not entry:
            sys.exit(f"error: no kernel layer_moe0_{name} in the PTX")
        params = entry.group(1).count(".param")
        wanted = sum(5 if c == "b" else 1 for c in signature)
        if params != wanted:
            sys.exit(f"error: layer_moe0_{name} takes {params} parameters, "
                     f"this script launches it with {wanted}")
    print("kernel parameter lists: as launched")


class Driver:
    """The few CUDA driver calls needed to load PTX and launch kernels."""

    def __init__(self, ptx):
        import torch
        torch.cuda.init()
        self.cuda = ctypes.CDLL("libcuda.so.1")
        self.check(self.cuda.cuInit(0), "cuInit")
        # PyTorch's primary context is current once it has touched the GPU.
        torch.zeros(1, device="cuda")
        module = ctypes.c_void_p()
        self.check(self.cuda.cuModuleLoadData(
            ctypes.byref(module), ctypes.c_char_p(ptx.encode() + b"\0")),
            "cuModuleLoadData")
        self.functions = {}
        for name in SIGNATURES:
            function = ctypes.c_void_p()
            self.check(self.cuda.cuModuleGetFunction(
                ctypes.byref(function), module,
                f"layer_moe0_{name}".encode()), "cuModuleGetFunction")
            self.functions[name] = function

    def check(self, status, what):
        if status != 0:
            sys.exit(f"error: {what} failed with CUDA error {status}")

    def launch(self, name, grid, arguments, stream):
        values = []
        for argument, kind in zip(arguments, SIGNATURES[name]):
            if kind == "b":
                pointer = argument.data_ptr()
                values += [pointer, pointer, 0, argument.numel(), 1]
            else:
                values.append(int(argument))
        params = (ctypes.c_uint64 * len(values))(*values)
        pointers = (ctypes.c_void_p * len(values))(*[
            ctypes.addressof(params) + 8 * n for n in range(len(values))])
        self.check(self.cuda.cuLaunchKernel(
            self.functions[name], grid[0], grid[1], 1, THREADS, 1, 1, 0,
            ctypes.c_void_p(stream), pointers, None), f"launch {name}")


def run_kernels(driver, weights, x, args, stream):
    import torch
    e, k, h, i = args.experts, args.k, args.hidden, args.inter
    t = x.shape[0]
    pairs = t * k
    rows = pairs + e * (BLOCK_M - 1)
    row_blocks = (rows + BLOCK_M - 1) // BLOCK_M
    dev = dict(device="cuda")
    ids = torch.empty(pairs, dtype=torch.int32, **dev)
    gates = torch.empty(pairs, dtype=torch.float32, **dev)
    counts = torch.empty(e, dtype=torch.int32, **dev)
    cursor = torch.empty(e, dtype=torch.int32, **dev)
    offsets = torch.empty(e + 1, dtype=torch.int32, **dev)
    sorted_ = torch.empty(rows, dtype=torch.int32, **dev)
    block_expert = torch.empty(row_blocks, dtype=torch.int32, **dev)
    inter = torch.empty(rows * i, dtype=torch.float32, **dev)
    pair_out = torch.empty(pairs * h, dtype=torch.float32, **dev)
    out = torch.empty(t * h, dtype=torch.float32, **dev)
    router, gate, up, down, bias = weights

    def launch_all():
        driver.launch("gating", (t, 1), [x, router, bias, ids, gates, t], stream)
        driver.launch("align", (1, 1), [ids, counts, cursor, offsets, sorted_,
                                        block_expert, t, rows], stream)
        driver.launch("gemm_up", (row_blocks, -(-i // BLOCK_N)),
                      [x, gate, up, sorted_, block_expert, offsets, inter, t,
                       rows], stream)
        driver.launch("gemm_down", (row_blocks, -(-h // BLOCK_N)),
                      [inter, down, sorted_, block_expert, offsets, gates,
                       pair_out, t, rows], stream)
        driver.launch("combine", (t, 1), [pair_out, out, t], stream)

    return launch_all, out


def round_tf32(v):
    """cvt.rna.tf32.f32: keep 10 mantissa bits, ties away from zero."""
    import torch
    return ((v.float().view(torch.int32) + 0x1000) & ~0x1FFF).view(torch.float32)


def reference(x, router, gate, up, down, k, tf32):
    """The layer in float64: softmax top-k (renormalised), SiLU-gated FFNs;
    with `tf32` the GEMM operands rounded as the tensor-core kernels do."""
    import torch
    operand = round_tf32 if tf32 else (lambda v: v)
    x, router = x.double(), router.double()
    probabilities = torch.softmax(x @ router.T, dim=-1)
    weights, chosen = torch.topk(probabilities, k, dim=-1)
    weights = weights / weights.sum(-1, keepdim=True)
    out = torch.zeros_like(x)
    for expert in range(router.shape[0]):
        token, slot = torch.nonzero(chosen == expert, as_tuple=True)
        if token.numel() == 0:
            continue
        rows = operand(x[token]).double()
        hidden = torch.nn.functional.silu(
            rows @ operand(gate[expert]).double().T) * (
            rows @ operand(up[expert]).double().T)
        hidden = operand(hidden).double()
        out.index_add_(0, token, (hidden @ operand(down[expert]).double().T)
                       * weights[token, slot, None])
    return out


def time_ms(function, repeats=20, warmups=3):
    import torch
    for _ in range(warmups):
        function()
    times = []
    for _ in range(repeats):
        start = torch.cuda.Event(enable_timing=True)
        end = torch.cuda.Event(enable_timing=True)
        start.record()
        function()
        end.record()
        torch.cuda.synchronize()
        times.append(start.elapsed_time(end))
    return statistics.median(times)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--experts", type=int, default=8)
    parser.add_argument("--k", type=int, default=2)
    parser.add_argument("--hidden", type=int, default=4096)
    parser.add_argument("--inter", type=int, default=14336)
    parser.add_argument("--tokens", default="16,128,1024,4096")
    parser.add_argument("--chip", default="sm_90a")
    parser.add_argument("--mma", default="none,tf32",
                        help="GEMM arithmetics to build and run: none, tf32")
    parser.add_argument("--dry-run", action="store_true")
    parser.add_argument("--ptx", type=pathlib.Path)
    parser.add_argument("--out", type=pathlib.Path)
    args = parser.parse_args()
    variants = args.mma.split(",")
    if any(mma not in ("none", "tf32") for mma in variants):
        sys.exit(f"error: --mma takes none and tf32, not '{args.mma}'")
    if args.ptx:
        if len(variants) != 1:
            sys.exit("error: --ptx needs the one --mma it was built with")
        ptxs = {variants[0]: args.ptx.read_text()}
    else:
        workdir = args.out or pathlib.Path(tempfile.mkdtemp(prefix="moe-gpu-"))
        ptxs = {mma: build_ptx(args, workdir / mma, mma) for mma in variants}
    for ptx in ptxs.values():
        check_signatures(ptx)
    if args.dry_run:
        print(f"PTX and cubin in {workdir}")
        return

    import torch
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.manual_seed(0)
    e, k, h, i = args.experts, args.k, args.hidden, args.inter
    dev = dict(device="cuda", dtype=torch.float32)
    router = torch.randn(e, h, **dev) * h ** -0.5
    gate = torch.randn(e, i, h, **dev) * h ** -0.5
    up = torch.randn(e, i, h, **dev) * h ** -0.5
    down = torch.randn(e, h, i, **dev) * i ** -0.5
    bias = torch.zeros(e, **dev)
    stream = torch.cuda.current_stream().cuda_stream
    print(f"E={e} k={k} H={h} I={i} on {torch.cuda.get_device_name()}")
    failures = 0
    for mma, ptx in ptxs.items():
        failures += measure(Driver(ptx), mma, args, (router, gate, up, down,
                                                     bias), stream)
    sys.exit(1 if failures else 0)


def measure(driver, mma, args, weights, stream):
    """Checks and times the kernels for every token count; returns the
    number of failed checks."""
    import torch
    e, k, h, i = args.experts, args.k, args.hidden, args.inter
    dev = dict(device="cuda", dtype=torch.float32)
    router, gate, up, down, _ = weights
    print(f"mma={mma}")
    print("tokens  max rel err  kernels ms  torch loop ms  torch dense ms  "
          "kernel TFLOP/s")
    failures = 0
    for t in (int(n) for n in args.tokens.split(",")):
        x = torch.randn(t, h, **dev)
        launch_all, out = run_kernels(driver, weights, x, args, stream)
        launch_all()
        torch.cuda.synchronize()
        expected = reference(x, router, gate, up, down, k, mma == "tf32")
        error = ((out.view(t, h).double() - expected).abs().max()
                 / expected.abs().max()).item()
        failures += error > 1e-4
        kernels = time_ms(launch_all)

        def torch_loop():
            logits = torch.softmax(x @ router.T, dim=-1)
            weights, chosen = torch.topk(logits, k, dim=-1)
            weights = weights / weights.sum(-1, keepdim=True)
            result = torch.zeros_like(x)
            for expert in range(e):
                token, slot = torch.nonzero(chosen == expert, as_tuple=True)
                rows = x[token]
                hidden = torch.nn.functional.silu(rows @ gate[expert].T) * (
                    rows @ up[expert].T)
                result.index_add_(0, token, (hidden @ down[expert].T)
                                  * weights[token, slot, None])
            return result

        rows = torch.randn(t * k, h, **dev)

        def torch_dense():
            hidden = torch.nn.functional.silu(rows @ gate[0].T) * (rows @ up[0].T)
            return hidden @ down[0].T

        loop = time_ms(torch_loop)
        dense = time_ms(torch_dense)
        flops = 2 * t * k * 3 * h * i
        print(f"{t:6}  {error:11.2e}  {kernels:10.3f}  {loop:13.3f}  "
              f"{dense:14.3f}  {flops / kernels / 1e9:14.2f}")
    return failures


if __name__ == "__main__":
    main()
