"""Runs moe.fused_moe ops through the routing kernels on the CPU
(moe-run --strategy=kernels) with both GEMM arithmetics and several tile
shapes, and compares them with numpy:

- mma=none (f32 multiply-adds) against the layer in float64;
- mma=tf32 (tensor-core arithmetic) against a model of it: GEMM operands
  (token rows, expert weights, the intermediate activations) rounded to
  TF32 (to nearest, ties away from zero), their products summed in f32 in
  order, router and gating in float64.

    kernel_numerics.py WORKDIR            (moe-run from $MOE_BIN)

Shapes are chosen so that tiles are partial in every dimension (hidden 40,
intermediate 72, 26 tokens), and the tile configurations so that threads
and warps own a partial last share of the block (see TILES). Prints one
line per configuration and op with the relative errors
max|ours - ref| / max|ref|: both must be <= 1e-5, and the f32 kernels must
differ from the TF32 model by more than 1e-4 (the model tells the two
arithmetics apart).
"""

import os
import subprocess
import sys

import numpy as np
from safetensors.numpy import load_file, save_file

from moe_testing.compare import relative_error

TOLERANCE = 1e-5
DISTINCT = 1e-4
B, S, H, I, E, V = 2, 13, 40, 72, 4, 64
rng = np.random.default_rng(11)


def round_tf32(x):
    """cvt.rna.tf32.f32: keep 10 mantissa bits, ties away from zero."""
    bits = np.asarray(x, dtype=np.float32).view(np.uint32)
    rounded = ((bits + np.uint32(0x1000)) & np.uint32(0xFFFFE000)).view(np.float32)
    return rounded.astype(np.float64)


def act(kind, x):
    if kind == "silu":
        return x / (1 + np.exp(-x))
    if kind == "gelu_tanh":
        return 0.5 * x * (1 + np.tanh(np.sqrt(2 / np.pi) * (x + 0.044715 * x**3)))
    return np.maximum(x, 0)


def gating(logits, k, scoring, renormalize):
    if scoring == "sigmoid":
        scores = 1 / (1 + np.exp(-logits))
    else:
        e = np.exp(logits - logits.max(-1, keepdims=True))
        scores = e / e.sum(-1, keepdims=True)
    order = np.argsort(-scores, axis=-1, kind="stable")[..., :k]
    w = np.take_along_axis(scores, order, -1)
    if renormalize:
        w = w / w.sum(-1, keepdims=True)
    return w, order


def tf32_matmul(a, w):
    """sum_k a[..., k] w[..., n, k] as the kernels compute it: TF32 operands
    (whose products are exact in f32), f32 sums in order of k."""
    a, w = round_tf32(a).astype(np.float32), round_tf32(w).astype(np.float32)
    total = np.zeros(w.shape[:-1], dtype=np.float32)
    for k in range(a.shape[-1]):
        total += a[..., k : k + 1] * w[..., k]
    return total


def exact_matmul(a, w):
    return np.einsum("...k,...nk->...n", a.astype(np.float64), w.astype(np.float64))


def layer(x, router, gate, up, down, k, scoring, renormalize, kind, matmul):
    """The routed layer with `matmul` for its GEMMs; x and weights are
    float32 arrays."""
    w, idx = gating(x.astype(np.float64) @ router.astype(np.float64).T, k, scoring, renormalize)
    out = np.zeros(x.shape, dtype=np.float64)
    for j in range(k):
        e = idx[..., j]
        u = matmul(x, up[e])
        h = act(kind, matmul(x, gate[e])) * u if gate is not None else act(kind, u)
        # The kernels store the activations in f32 (and stage them as TF32).
        out += w[..., j : j + 1] * matmul(h.astype(np.float32), down[e])
    return out


# moe-run flags of each tile configuration: the defaults (16 x 64 x 16, 256
# threads: 8 warps, one 16x8 tile each); block-n 24 with 64 threads (3 tiles
# for 2 warps: warp 1 has no second tile); block-n 24 with 256 threads (384
# outputs: the second accumulator of threads 128.. is outside); 32 x 40 x 8
# with 128 threads (10 tiles for 4 warps).
TILES = [
    [],
    ["--block-n", "24", "--block-threads", "64"],
    ["--block-n", "24", "--block-threads", "256"],
    ["--block-m", "32", "--block-n", "40", "--block-k", "8", "--block-threads", "128"],
]


def main(workdir):
    weights = {
        "table": rng.standard_normal((V, H)).astype(np.float32),
        "router": rng.standard_normal((E, H)).astype(np.float32),
        "gate": (rng.standard_normal((E, I, H)) * 0.3).astype(np.float32),
        "up": (rng.standard_normal((E, I, H)) * 0.3).astype(np.float32),
        "down": (rng.standard_normal((E, H, I)) * 0.3).astype(np.float32),
    }
    save_file(weights, os.path.join(workdir, "w.safetensors"))
    ids = rng.integers(0, V, size=(B, S))
    x = weights["table"][ids]
    cases = [
        ("gated silu k=2 softmax renormalize", "gate %gate ", "k 2 scoring softmax activation silu {renormalize}",
         (weights["gate"], 2, "softmax", True, "silu")),
        ("plain gelu_tanh k=1 sigmoid", "", "k 1 scoring sigmoid activation gelu_tanh",
         (None, 1, "sigmoid", False, "gelu_tanh")),
        ("gated relu k=3 softmax", "gate %gate ", "k 3 scoring softmax activation relu",
         (weights["gate"], 3, "softmax", False, "relu")),
    ]
    X3 = f"tensor<?x?x{H}xf32>"
    tw = f"tensor<{E}x{I}x{H}xf32>"
    td = f"tensor<{E}x{H}x{I}xf32>"
    lines = [
        f'moe.scope @w path "{workdir}/w.safetensors" format safetensors',
        f"func.func @ops(%ids: tensor<?x?xi64>) -> ({', '.join([X3] * len(cases))}) {{",
        f'  %table = moe.param @w::"table" : tensor<{V}x{H}xf32>',
        f'  %router = moe.param @w::"router" : tensor<{E}x{H}xf32>',
        f'  %gate = moe.param @w::"gate" : {tw}',
        f'  %up = moe.param @w::"up" : {tw}',
        f'  %down = moe.param @w::"down" : {td}',
        f"  %x = moe.embedding %table[%ids] : tensor<{V}x{H}xf32>, tensor<?x?xi64> -> {X3}",
    ]
    references = []
    for n, (name, gate_operand, attributes, (gate, k, scoring, renorm, kind)) in enumerate(cases):
        gate_type = f", {tw}" if gate_operand else ""
        lines.append(f"  %y{n} = moe.fused_moe %x router %router {gate_operand}up %up down %down {attributes} : "
                     f"({X3}, tensor<{E}x{H}xf32>{gate_type}, {tw}, {td}) -> {X3}")
        arguments = (x, weights["router"], gate, weights["up"], weights["down"], k, scoring, renorm, kind)
        references.append((name, layer(*arguments, exact_matmul), layer(*arguments, tf32_matmul)))
    lines.append("  return " + ", ".join(f"%y{n}" for n in range(len(cases))) + " : " + ", ".join([X3] * len(cases)))
    lines.append("}")
    path = os.path.join(workdir, "layers.mlir")
    open(path, "w").write("\n".join(lines) + "\n")
    ids_text = ";".join(",".join(str(int(t)) for t in row) for row in ids)

    def run(mma, tiles):
        out = os.path.join(workdir, f"out-{mma}.safetensors")
        subprocess.run([os.path.join(os.environ["MOE_BIN"], "moe-run"), path, "--ids", ids_text,
                        "--strategy", "kernels", "--mma", mma, *tiles, "-o", out],
                       check=True, stdout=subprocess.DEVNULL)
        return load_file(out)

    failures = 0
    for tiles in TILES:
        f32, tf32 = run("none", tiles), run("tf32", tiles)
        label = " ".join(tiles[i].lstrip("-") + "=" + tiles[i + 1] for i in range(0, len(tiles), 2)) or "defaults"
        for n, (name, exact, tf32_model) in enumerate(references):
            f32_error = relative_error(f32[f"output.{n}"], exact)
            tf32_error = relative_error(tf32[f"output.{n}"], tf32_model)
            apart = relative_error(f32[f"output.{n}"], tf32_model)
            ok = f32_error <= TOLERANCE and tf32_error <= TOLERANCE and apart > DISTINCT
            failures += not ok
            print(f"{label:44} {name:36} f32 {f32_error:.2e} tf32 {tf32_error:.2e} "
                  f"apart {apart:.2e} {'ok' if ok else 'FAIL'}")
    print(f"{len(TILES)} tilings x {len(references)} ops: {failures} failed")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
