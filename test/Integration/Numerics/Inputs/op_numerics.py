"""Runs every moe compute op through moe-run and compares it with an
independent numpy implementation of the op's documented semantics.

    op_numerics.py WORKDIR            (moe-run from $MOE_BIN)

One function applies each op to the embeddings of a batch of token ids and
returns every result; it is compiled with the three routed-expert
strategies (sparse, dense, and the routing kernels run on the CPU).
Prints one line per output and fails when any relative error
max|ours - reference| / max|reference| exceeds 1e-5.
"""

import math
import os
import subprocess
import sys

import numpy as np
from safetensors.numpy import load_file, save_file

from moe_reference.rng import normal_at
from moe_testing.compare import relative_error

TOLERANCE = 1e-5
B, S, H, V = 2, 7, 16, 32
rng = np.random.default_rng(7)
weights = {}
declared = set()
lines = []
references = []


def weight(name, *shape, scale=0.3):
    weights[name] = (rng.standard_normal(shape) * scale).astype(np.float32)
    return weights[name].astype(np.float64)


def param(name):
    """The SSA name of weight `name`, declared once."""
    ssa = "%" + name.replace(".", "_")
    if name not in declared:
        declared.add(name)
        shape = "x".join(str(d) for d in weights[name].shape)
        lines.append(f'  {ssa} = moe.param @w::"{name}" : tensor<{shape}xf32>')
    return ssa


def ttype(*shape):
    return "tensor<" + "x".join("?" if d is None else str(d) for d in shape) + "xf32>"


IDS = rng.integers(0, V, size=(B, S))
TABLE = weight("table", V, H, scale=1.0)
X = TABLE[IDS]
X3 = ttype(None, None, H)
outputs = []  # (ssa, type, reference, name)


def output(ssa, type_, reference, name):
    outputs.append((ssa, type_, reference, name))


# --- activations and element-wise ops --------------------------------------
def act(kind, x):
    if kind == "silu":
        return x / (1 + np.exp(-x))
    if kind == "gelu":
        return 0.5 * x * (1 + np.vectorize(math.erf)(x / math.sqrt(2)))
    if kind == "gelu_tanh":
        return 0.5 * x * (1 + np.tanh(math.sqrt(2 / math.pi) * (x + 0.044715 * x**3)))
    if kind == "relu":
        return np.maximum(x, 0)
    return x


def emit_norms():
    weight("norm.w", H)
    weights["norm.w"] += 1
    w = weights["norm.w"].astype(np.float64)
    b = weight("norm.b", H)
    lines.append(f"  %rms = moe.rms_norm %x, {param('norm.w')} epsilon 1.0e-5 : {X3}, {ttype(H)} -> {X3}")
    output("%rms", X3, X / np.sqrt((X**2).mean(-1, keepdims=True) + 1e-5) * w, "rms_norm")
    centered = X - X.mean(-1, keepdims=True)
    lines.append(f"  %ln = moe.layer_norm %x, {param('norm.w')} bias {param('norm.b')} epsilon 1.0e-5 : ({X3}, {ttype(H)}, {ttype(H)}) -> {X3}")
    output("%ln", X3, centered / np.sqrt((centered**2).mean(-1, keepdims=True) + 1e-5) * w + b, "layer_norm")
    lines.append(f"  %sc = moe.scale %x by 0.25 : {X3}")
    output("%sc", X3, X * 0.25, "scale")


def emit_linears():
    w = weight("lin.w", 12, H)
    b = weight("lin.b", 12)
    a = weight("lin.a", 3, H)
    bb = weight("lin.bb", 12, 3)
    t12 = ttype(None, None, 12)
    lines.append(f"  %lin = moe.linear %x, {param('lin.w')} bias {param('lin.b')} : ({X3}, {ttype(12, H)}, {ttype(12)}) -> {t12}")
    output("%lin", t12, X @ w.T + b, "linear")
    lines.append(f"  %lora = moe.lora_linear %x, {param('lin.w')} lora({param('lin.a')}, {param('lin.bb')}) scale 1.5 : ({X3}, {ttype(12, H)}, {ttype(3, H)}, {ttype(12, 3)}) -> {t12}")
    output("%lora", t12, X @ w.T + 1.5 * (X @ a.T) @ bb.T, "lora_linear")


def emit_ffns():
    g = weight("ffn.g", 24, H)
    u = weight("ffn.u", 24, H)
    d = weight("ffn.d", H, 24)
    ub = weight("ffn.ub", 24)
    db = weight("ffn.db", H)
    for kind in ("silu", "gelu", "gelu_tanh", "relu", "identity"):
        lines.append(f"  %ffn_{kind} = moe.ffn %x gate {param('ffn.g')} up {param('ffn.u')} down {param('ffn.d')} activation {kind} : ({X3}, {ttype(24, H)}, {ttype(24, H)}, {ttype(H, 24)}) -> {X3}")
        output(f"%ffn_{kind}", X3, (act(kind, X @ g.T) * (X @ u.T)) @ d.T, f"ffn gated {kind}")
    lines.append(f"  %mlp = moe.ffn %x up {param('ffn.u')} down {param('ffn.d')} up_bias {param('ffn.ub')} down_bias {param('ffn.db')} activation gelu : ({X3}, {ttype(24, H)}, {ttype(H, 24)}, {ttype(24)}, {ttype(H)}) -> {X3}")
    output("%mlp", X3, act("gelu", X @ u.T + ub) @ d.T + db, "ffn plain with biases")


def rope_frequencies(dim, theta, scaling):
    freqs = 1.0 / theta ** (np.arange(0, dim, 2) / dim)
    attention = 1.0
    if scaling is None:
        return freqs, attention
    kind, factor, extra = scaling
    if kind == "linear":
        return freqs / factor, attention
    if kind == "llama3":
        low, high, context = extra
        wavelength = 2 * math.pi / freqs
        out = np.where(wavelength > context / low, freqs / factor, freqs)
        smooth = (context / wavelength - low) / (high - low)
        smoothed = (1 - smooth) * out / factor + smooth * out
        medium = ~(wavelength < context / high) & ~(wavelength > context / low)
        return np.where(medium, smoothed, out), attention
    if kind == "yarn":
        original, beta_fast, beta_slow = extra
        corr = lambda rot: dim * math.log(original / (rot * 2 * math.pi)) / (2 * math.log(theta))
        lo = max(math.floor(corr(beta_fast)), 0)
        hi = min(math.ceil(corr(beta_slow)), dim - 1)
        if lo == hi:
            hi += 0.001
        ramp = np.clip((np.arange(dim // 2) - lo) / (hi - lo), 0, 1)
        extrapolation = 1 - ramp
        pos = theta ** (np.arange(0, dim, 2) / dim)
        freqs = 1 / (factor * pos) * (1 - extrapolation) + 1 / pos * extrapolation
        return freqs, 0.1 * math.log(factor) + 1
    if kind == "dynamic":
        (maximum,) = extra
        if S > maximum:
            base = theta * ((factor * S / maximum) - (factor - 1)) ** (dim / (dim - 2))
            freqs = 1.0 / base ** (np.arange(0, dim, 2) / dim)
        return freqs, attention
    raise ValueError(kind)


def attention_reference(q, k, v, heads, kv_heads, dim, theta, scaling, scale, window):
    q = q.reshape(B, S, heads, dim)
    k = k.reshape(B, S, kv_heads, dim)
    v = v.reshape(B, S, kv_heads, dim)
    if theta:
        freqs, factor = rope_frequencies(dim, theta, scaling)
        angles = np.arange(S)[:, None] * freqs[None, :]
        cos = np.concatenate([np.cos(angles)] * 2, -1)[None, :, None, :] * factor
        sin = np.concatenate([np.sin(angles)] * 2, -1)[None, :, None, :] * factor
        rotate = lambda t: np.concatenate([-t[..., dim // 2:], t[..., : dim // 2]], -1)
        q = q * cos + rotate(q) * sin
        k = k * cos + rotate(k) * sin
    group = heads // kv_heads
    k = np.repeat(k, group, axis=2)
    v = np.repeat(v, group, axis=2)
    scores = np.einsum("bihd,bjhd->bhij", q, k) * (scale or 1 / math.sqrt(dim))
    i, j = np.arange(S)[:, None], np.arange(S)[None, :]
    allowed = j <= i
    if window:
        allowed &= i - j < window
    scores = np.where(allowed, scores, -np.inf)
    p = np.exp(scores - scores.max(-1, keepdims=True))
    p /= p.sum(-1, keepdims=True)
    return np.einsum("bhij,bjhd->bihd", p, v).reshape(B, S, heads * dim)


def emit_attention():
    heads, kv_heads, dim = 4, 2, 4
    wq = weight("att.q", heads * dim, H)
    wk = weight("att.k", kv_heads * dim, H)
    wv = weight("att.v", kv_heads * dim, H)
    q, k, v = X @ wq.T, X @ wk.T, X @ wv.T
    tq, tk = ttype(None, None, heads * dim), ttype(None, None, kv_heads * dim)
    lines.append(f"  %q = moe.linear %x, {param('att.q')} : ({X3}, {ttype(heads * dim, H)}) -> {tq}")
    lines.append(f"  %k = moe.linear %x, {param('att.k')} : ({X3}, {ttype(kv_heads * dim, H)}) -> {tk}")
    lines.append(f"  %v = moe.linear %x, {param('att.v')} : ({X3}, {ttype(kv_heads * dim, H)}) -> {tk}")
    cases = [
        ("default", 10000.0, None, "", None, None),
        ("no_rope_window", 0.0, None, "sliding_window = 3 : i64, scale = 0.7 : f64", 0.7, 3),
        ("linear", 500.0, ("linear", 2.0, None), "rope_scaling = #moe.rope_scaling<kind = linear, factor = 2.0>", None, None),
        ("llama3", 500.0, ("llama3", 8.0, (1.0, 4.0, 4)), "rope_scaling = #moe.rope_scaling<kind = llama3, factor = 8.0, original_max_position = 4>", None, None),
        ("yarn", 500.0, ("yarn", 4.0, (4, 32.0, 1.0)), "rope_scaling = #moe.rope_scaling<kind = yarn, factor = 4.0, original_max_position = 4>", None, None),
        ("dynamic", 500.0, ("dynamic", 2.0, (4,)), "rope_scaling = #moe.rope_scaling<kind = dynamic, factor = 2.0, original_max_position = 4>", None, None),
    ]
    for name, theta, scaling, attrs, scale, window in cases:
        attr_text = f" {{{attrs}}}" if attrs else ""
        lines.append(f"  %att_{name} = moe.attention %q, %k, %v heads {heads} kv_heads {kv_heads} head_dim {dim} rope_theta {theta}{attr_text} : ({tq}, {tk}, {tk}) -> {tq}")
        output(f"%att_{name}", tq, attention_reference(q, k, v, heads, kv_heads, dim, theta, scaling, scale, window), f"attention {name}")


def softmax(x):
    e = np.exp(x - x.max(-1, keepdims=True))
    return e / e.sum(-1, keepdims=True)


def topk(scores, k):
    # Stable: ties go to the lower index.
    order = np.argsort(-scores, axis=-1, kind="stable")[..., :k]
    return np.take_along_axis(scores, order, -1), order


def gating_reference(logits, k, scoring, before, renormalize, noise=0.0, seed=0):
    if noise:
        E = logits.shape[-1]
        index = np.arange(logits.size, dtype=np.uint64).reshape(logits.shape)
        z = normal_at(seed, index)
        logits = (logits.astype(np.float32) + (noise * z).astype(np.float32)).astype(np.float64)
    if scoring == "sigmoid":
        scores = 1 / (1 + np.exp(-logits))
    elif before:
        scores = softmax(logits)
    else:
        scores = logits
    w, i = topk(scores, k)
    if scoring == "softmax" and not before:
        w = softmax(w)
    if renormalize:
        w = w / w.sum(-1, keepdims=True)
    return w, i


def experts_reference(x, w, idx, gate, up, down, kind):
    out = np.zeros_like(x)
    for j in range(w.shape[-1]):
        e = idx[..., j]
        g = np.einsum("bsh,bsih->bsi", x, gate[e]) if gate is not None else None
        u = np.einsum("bsh,bsih->bsi", x, up[e])
        m = act(kind, g) * u if gate is not None else act(kind, u)
        out += w[..., j : j + 1] * np.einsum("bsi,bshi->bsh", m, down[e])
    return out


def emit_routing():
    E, I = 4, 8
    router = weight("r.w", E, H)
    rbias = weight("r.b", E)
    gate = weight("e.g", E, I, H)
    up = weight("e.u", E, I, H)
    down = weight("e.d", E, H, I)
    sg, su, sd = weight("s.g", 6, H), weight("s.u", 6, H), weight("s.d", H, 6)
    seg = weight("s.gate", 1, H)
    logits = X @ router.T + rbias
    tl = ttype(None, None, E)
    lines.append(f"  %logits = moe.router %x, {param('r.w')} bias {param('r.b')} : ({X3}, {ttype(E, H)}, {ttype(E)}) -> {tl}")
    output("%logits", tl, logits, "router")
    stack = lambda n: f"{param(n)}"
    tg, td = ttype(E, I, H), ttype(E, H, I)
    variants = [
        ("softmax_before", 2, "softmax", True, True, 0.0),
        ("softmax_after", 2, "softmax", False, False, 0.0),
        ("sigmoid", 3, "sigmoid", True, False, 0.0),
        ("noisy", 2, "softmax", True, True, 0.5),
    ]
    for name, k, scoring, before, renorm, noise in variants:
        tk, ti = ttype(None, None, k), "tensor<?x?x%dxi64>" % k
        attrs = []
        if not before:
            attrs.append("score_before_topk = false")
        if renorm:
            attrs.append("renormalize")
        if noise:
            attrs += [f"noise_std = {noise} : f64", "noise_seed = 9 : i64"]
        attr_text = " {" + ", ".join(attrs) + "}" if attrs else ""
        lines.append(f"  %gw_{name}, %gi_{name} = moe.topk_gating %logits k {k} scoring {scoring}{attr_text} : {tl} -> {tk}, {ti}")
        w, i = gating_reference(logits, k, scoring, before, renorm, noise, 9)
        output(f"%gw_{name}", tk, w, f"topk_gating {name} weights")
        shared = ""
        shared_types = ""
        reference = experts_reference(X, w, i, gate, up, down, "silu")
        if name == "softmax_before":
            shared = f" shared_gate {param('s.g')} shared_up {param('s.u')} shared_down {param('s.d')} shared_expert_gate {param('s.gate')}"
            shared_types = f", {ttype(6, H)}, {ttype(6, H)}, {ttype(H, 6)}, {ttype(1, H)}"
            s_out = (act("silu", X @ sg.T) * (X @ su.T)) @ sd.T
            reference = reference + s_out / (1 + np.exp(-(X @ seg.T)))
        if name == "sigmoid":
            shared = f" shared_up {param('s.u')} shared_down {param('s.d')}"
            shared_types = f", {ttype(6, H)}, {ttype(H, 6)}"
            reference = reference + act("silu", X @ su.T) @ sd.T
        lines.append(f"  %ex_{name} = moe.experts %x routed(%gw_{name}, %gi_{name}) gate {stack('e.g')} up {stack('e.u')} down {stack('e.d')}{shared} activation silu : ({X3}, {tk}, {ti}, {tg}, {tg}, {td}{shared_types}) -> {X3}")
        output(f"%ex_{name}", X3, reference, f"experts {name}")
    # Gate-less and fused forms.
    tu, tui = ttype(None, None, E), "tensor<?x?x%dxi64>" % E
    lines.append(f"  %uw, %ui = moe.uniform_gating %x experts {E} : {X3} -> {tu}, {tui}")
    lines.append(f"  %ex_uniform = moe.experts %x routed(%uw, %ui) up {stack('e.u')} down {stack('e.d')} activation relu : ({X3}, {tu}, {tui}, {tg}, {td}) -> {X3}")
    uw = np.full(X.shape[:-1] + (E,), 1 / E)
    ui = np.broadcast_to(np.arange(E), X.shape[:-1] + (E,))
    output("%ex_uniform", X3, experts_reference(X, uw, ui, None, up, down, "relu"), "experts gate-less")
    lines.append(f"  %fused = moe.fused_moe %x router {param('r.w')} router_bias {param('r.b')} gate {stack('e.g')} up {stack('e.u')} down {stack('e.d')} k 2 scoring softmax activation gelu_tanh {{renormalize}} : ({X3}, {ttype(E, H)}, {ttype(E)}, {tg}, {tg}, {td}) -> {X3}")
    w, i = gating_reference(logits, 2, "softmax", True, True)
    output("%fused", X3, experts_reference(X, w, i, gate, up, down, "gelu_tanh"), "fused_moe")
    lines.append(f"  %fused_mean = moe.fused_moe %x gate {stack('e.g')} up {stack('e.u')} down {stack('e.d')} k {E} scoring softmax activation silu : ({X3}, {tg}, {tg}, {td}) -> {X3}")
    output("%fused_mean", X3, experts_reference(X, uw, ui, gate, up, down, "silu"), "fused_moe gate-less")
    # Routed linear with biases.
    rw = weight("rl.w", E, 10, H)
    rb = weight("rl.b", E, 10)
    t10 = ttype(None, None, 10)
    lines.append(f"  %rl = moe.routed_linear %x routed(%gw_softmax_after, %gi_softmax_after), {param('rl.w')} bias {param('rl.b')} : ({X3}, {ttype(None, None, 2)}, tensor<?x?x2xi64>, {ttype(E, 10, H)}, {ttype(E, 10)}) -> {t10}")
    w, i = gating_reference(logits, 2, "softmax", False, False)
    ref = sum(w[..., j : j + 1] * (np.einsum("bsh,bsoh->bso", X, rw[i[..., j]]) + rb[i[..., j]]) for j in range(2))
    output("%rl", t10, ref, "routed_linear")


def emit_mixture_of_lora():
    E = 3
    base = weight("m.w", 12, H)
    router = weight("m.r", E, H, scale=1.0)
    As = [weight(f"m.a{e}", r, H) for e, r in enumerate((2, 4, 1))]
    Bs = [weight(f"m.b{e}", 12, r) for e, r in enumerate((2, 4, 1))]
    scales = [1.0, 0.5, 2.0]
    t12 = ttype(None, None, 12)
    a_types = ", ".join(ttype(*weights[f"m.a{e}"].shape) for e in range(E))
    b_types = ", ".join(ttype(*weights[f"m.b{e}"].shape) for e in range(E))
    a_ssa = ", ".join(param(f"m.a{e}") for e in range(E))
    b_ssa = ", ".join(param(f"m.b{e}") for e in range(E))
    logits = X @ router.T
    for name, norm, top_k in (("sigmoid_all", "sigmoid", 0), ("softmax_top1", "softmax", 1), ("sigmoid_top2", "sigmoid", 2)):
        attr = f" {{top_k = {top_k} : i64}}" if top_k else ""
        lines.append(f"  %mol_{name} = moe.mixture_of_lora %x, {param('m.w')} router {param('m.r')} lora_a({a_ssa}) lora_b({b_ssa}) scales [1.0, 0.5, 2.0] normalization {norm}{attr} : ({X3}, {ttype(12, H)}, {ttype(E, H)}, {a_types}, {b_types}) -> {t12}")
        scores = softmax(logits) if norm == "softmax" else 1 / (1 + np.exp(-logits))
        gates = scores
        if top_k:
            w, i = topk(scores, top_k)
            if norm == "softmax":
                w = w / w.sum(-1, keepdims=True)
            gates = np.zeros_like(scores)
            np.put_along_axis(gates, i, w, -1)
        ref = X @ base.T + sum(gates[..., e : e + 1] * scales[e] * (X @ As[e].T) @ Bs[e].T for e in range(E))
        output(f"%mol_{name}", t12, ref, f"mixture_of_lora {name}")


def main(workdir):
    emit_norms()
    emit_linears()
    emit_ffns()
    emit_attention()
    emit_routing()
    emit_mixture_of_lora()
    save_file(weights, os.path.join(workdir, "w.safetensors"))
    body = [
        f'moe.scope @w path "{workdir}/w.safetensors" format safetensors',
        "func.func @ops(%ids: tensor<?x?xi64>) -> (" + ", ".join(t for _, t, _, _ in outputs) + ") {",
        f"  %table = moe.param @w::\"table\" : tensor<{V}x{H}xf32>",
        f"  %x = moe.embedding %table[%ids] : tensor<{V}x{H}xf32>, tensor<?x?xi64> -> {X3}",
    ] + lines + ["  return " + ", ".join(s for s, _, _, _ in outputs) + " : " + ", ".join(t for _, t, _, _ in outputs), "}"]
    path = os.path.join(workdir, "ops.mlir")
    open(path, "w").write("\n".join(body) + "\n")
    ids = ";".join(",".join(str(int(t)) for t in row) for row in IDS)
    failures = 0
    for strategy in ("sparse", "dense", "kernels"):
        out = os.path.join(workdir, f"out-{strategy}.safetensors")
        subprocess.run([os.path.join(os.environ["MOE_BIN"], "moe-run"), path, "--ids", ids,
                        "--strategy", strategy, "-o", out], check=True, stdout=subprocess.DEVNULL)
        results = load_file(out)
        for n, (_, _, reference, name) in enumerate(outputs):
            ours = results[f"output.{n}"].astype(np.float64)
            error = relative_error(ours, reference)
            ok = error <= TOLERANCE
            failures += not ok
            print(f"{strategy:6} {name:32} {error:.2e} {'ok' if ok else 'FAIL'}")
    print(f"{len(outputs)} outputs x 3 strategies: {failures} above {TOLERANCE}")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
