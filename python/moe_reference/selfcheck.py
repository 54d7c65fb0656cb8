"""The self-check of the reference: identities with plain transformers and
PEFT models, naive per-token recomputations of routed layers, and the
generator against values computed by the C++ header.

``run(fixtures)`` expects these moe_fixtures under the directory
``fixtures``: llama, llama-expert-1, llama-expert-2, llama-lora-attn,
llama-lora-all, qwen2, granite, phi3, gemma. Errors are relative:
``max |got - want| / max |want|``.
"""

import math
import os
import tempfile
import time
import warnings

import numpy as np
import torch

from . import rng, routers
from .adapters import AdaptersMix, build_adapters_mix
from .experts import ExpertsMix, build_experts_mix
from .models import load_model, logits_of, read_safetensors, write_safetensors

FIXTURES = ("llama", "llama-expert-1", "llama-expert-2", "llama-lora-attn",
            "llama-lora-all", "qwen2", "granite", "phi3", "gemma")
IDS = [[1, 5, 9, 13, 17, 21, 25, 29, 33, 37], [2, 6, 10, 14, 18, 22, 26, 30, 34, 127]]

# (seed as int64, counter) -> (uniform_at, normal_at), printed with %a by a
# C++ program that includes include/moe/Weights/Random.h.
RNG_VECTORS = [
    (0, 0, "0x1.4e0dba5e9a32fp-1", "0x1.7547b044f8a46p-1"),
    (0, 1, "0x1.54c7a80d79bf4p-3", "0x1.2e21867b73d17p+0"),
    (7, 31, "0x1.148db307576e4p-1", "0x1.066e2b20eb36bp-2"),
    (42, 1000, "0x1.d482c07b31984p-2", "0x1.bd3977db0c86ep-1"),
    (1000, 65535, "0x1.62e26bb5b5898p-4", "-0x1.682da7826174ap-2"),
    (7003, 127, "0x1.0a50c355c1c88p-1", "-0x1.a5410281a97fep-5"),
    (-1, 3, "0x1.74fa17ccee4cp-7", "0x1.bff4751ea2a03p+0"),
    (-123456789, 2, "0x1.90b0b6ad5e4dp-3", "-0x1.e88a6a5ef80cep-2"),
    (2**63 - 1, 2**64 - 1, "0x1.a2891e9a1617cp-1", "0x1.b75d37ac5c5b8p-4"),
    (-2**63, 2**32, "0x1.c5ae07dd5e36p-3", "-0x1.66d64a0963a8cp+0"),
]
# float32 tensors of the C++ weight evaluator: random_normal seed 5 mean 0
# std 0.02 [2, 3]; random_uniform seed 9 [-0.25, 0.25] [2, 2]; the
# uniform-random router rows of seed 4006 (seed 5, layer 1, q_proj), H = 32.
RNG_TENSORS = [
    (lambda: rng.random_normal(5, (2, 3), 0.0, 0.02),
     ["0x1.4f49ep-5", "-0x1.bee754p-6", "0x1.ef9282p-6", "-0x1.a6687p-7",
      "0x1.72957ep-8", "0x1.2bf7acp-5"]),
    (lambda: rng.random_uniform(9, (2, 2), -0.25, 0.25),
     ["0x1.9637dep-3", "-0x1.d66276p-5", "-0x1.136376p-5", "0x1.0019eap-8"]),
    (lambda: routers.uniform_random(routers.site_seed(5, "q_proj", 1), 1, 32)[0, :3],
     ["0x1.5844b4p-7", "0x1.4bd01p-3", "0x1.9d83dep-4"]),
]


def rel_err(got, want):
    got, want = np.asarray(got, np.float64), np.asarray(want, np.float64)
    return float(np.abs(got - want).max() / np.abs(want).max())


class Checker:
    """Records checks and prints one line per check."""

    def __init__(self):
        self.passed = self.failed = 0

    def check(self, name, error, tolerance):
        ok = error <= tolerance
        self.passed += ok
        self.failed += not ok
        print(f"{'ok  ' if ok else 'FAIL'} {name}: error {error:.3g} (tolerance {tolerance:g})",
              flush=True)

    def true(self, name, condition):
        self.check(name, 0.0 if condition else 1.0, 0.0)


def capture(model, path, ids):
    """Input and output of submodule ``path`` during a forward pass."""
    seen = {}
    handle = model.get_submodule(path).register_forward_hook(
        lambda m, args, out: seen.update(x=args[0].detach().clone(), y=out.detach().clone()))
    logits_of(model, ids)
    handle.remove()
    return seen["x"].double().numpy(), seen["y"].double().numpy()


def naive_gating(logits, k, scoring, renormalize):
    """Per-token gating from first principles: [(indices, weights)]."""
    result = []
    for row in logits.reshape(-1, logits.shape[-1]):
        if scoring == "softmax":
            e = np.exp(row - row.max())
            scores = e / e.sum()
        else:
            scores = 1.0 / (1.0 + np.exp(-row))
        chosen = sorted(range(len(row)), key=lambda i: (-scores[i], i))[:k]
        weights = np.array([scores[i] for i in chosen])
        if renormalize:
            weights = weights / weights.sum()
        result.append((chosen, weights))
    return result


def silu(x):
    return x / (1.0 + np.exp(-x))


class Weights:
    """Float64 weights of a checkpoint, read from its safetensors."""

    def __init__(self, directory):
        self.t = {k: v.astype(np.float64) for k, v in
                  read_safetensors(os.path.join(directory, "model.safetensors")).items()}

    def ffn(self, layer, x):
        p = f"model.layers.{layer}.mlp."
        g, u, d = (self.t[p + n + ".weight"] for n in ("gate_proj", "up_proj", "down_proj"))
        return (silu(x @ g.T) * (x @ u.T)) @ d.T


def check_rng(c):
    worst_u = worst_n = 0.0
    for seed, index, uniform, normal in RNG_VECTORS:
        worst_u = max(worst_u, abs(float(rng.uniform_at(seed, index)) - float.fromhex(uniform)))
        worst_n = max(worst_n, abs(float(rng.normal_at(seed, index)) - float.fromhex(normal)))
    c.check("rng: uniform_at equals the C++ generator bit for bit", worst_u, 0.0)
    c.check("rng: normal_at equals the C++ generator (absolute)", worst_n, 1e-15)
    for i, (make, expected) in enumerate(RNG_TENSORS):
        got = make().ravel()
        want = np.array([float.fromhex(h) for h in expected], np.float32)
        c.check(f"rng: float32 tensor {i} equals the C++ weight evaluator bit for bit",
                float(np.abs(got.astype(np.float64) - want).max()), 0.0)
    vec = rng.normal_at(3, np.arange(4, dtype=np.uint64))
    one = np.array([float(rng.normal_at(3, i)) for i in range(4)])
    c.check("rng: vectorised and scalar counters agree", float(np.abs(vec - one).max()), 1e-15)


def check_gating(c):
    t = torch.tensor
    w, i = routers.topk_gating(t([[0.0, -30.0, -30.0, -30.0]], dtype=torch.float64),
                               2, "softmax", False)
    c.true("gating: base-init bias, k=2 takes experts 0 and 1 (ties to the lower index)",
           i.tolist() == [[0, 1]] and abs(w[0, 0].item() - 1 / (1 + 3 * math.exp(-30))) < 1e-15)
    w, i = routers.topk_gating(t([[1.0, 3.0, 2.0, 3.0]], dtype=torch.float64),
                               2, "softmax", True)
    c.true("gating: softmax, top-2 of [1,3,2,3] is [1,3] with 1/2 each",
           i.tolist() == [[1, 3]] and w.tolist() == [[0.5, 0.5]])
    w, i = routers.topk_gating(t([[1.0, 2.0, 3.0]], dtype=torch.float64), 2, "softmax", False)
    z = math.exp(1) + math.exp(2) + math.exp(3)
    c.check("gating: softmax before top-k, no renormalisation",
            max(abs(w[0, 0].item() - math.exp(3) / z),
                abs(w[0, 1].item() - math.exp(2) / z)), 1e-15)
    w, i = routers.topk_gating(t([[1.0, -2.0, 0.5]], dtype=torch.float64), 2, "sigmoid", True)
    s1, s3 = 1 / (1 + math.exp(-1)), 1 / (1 + math.exp(-0.5))
    c.check("gating: sigmoid, top-2, renormalised",
            abs(w[0, 0].item() - s1 / (s1 + s3)) + abs(w[0, 1].item() - s3 / (s1 + s3)), 1e-15)
    g = routers.adapter_scores(t([[0.0, 0.0, 0.0]], dtype=torch.float64), "softmax", 1)
    h = routers.adapter_scores(t([[0.0, 0.0, 0.0]], dtype=torch.float64), "sigmoid", 2)
    c.true("gating: adapters, softmax top-1 tie -> [1,0,0]; sigmoid top-2 -> [1/2,1/2,0]",
           g.tolist() == [[1.0, 0.0, 0.0]] and h.tolist() == [[0.5, 0.5, 0.0]])
    rows = routers.normalize_rows(np.array([[3.0, 4.0], [0.0, 0.0]]))
    table = np.array([[3.0, 4.0], [0.0, 2.0], [5.0, 0.0]])
    proto = routers.embedding_prototypes(table, [[0, 1], [2, 2]])
    want = np.array([0.6, 1.8]) / math.hypot(0.6, 1.8)
    c.true("routers: normalize_rows keeps zero rows; embedding_prototypes by hand",
           np.abs(rows - [[0.6, 0.8], [0.0, 0.0]]).max() < 1e-7
           and np.abs(proto[0] - want).max() < 1e-7 and proto[1].tolist() == [1.0, 0.0])
    c.true("routers: site seeds (seed 5: ffn l1 6, q_proj l1 4006, down_proj l0 3005, "
           "shared gate l1 7006, global 5)",
           [routers.site_seed(5, "ffn", 1), routers.site_seed(5, "q_proj", 1),
            routers.site_seed(5, "down_proj", 0), routers.shared_gate_seed(5, 1),
            routers.site_seed(5, "global", -1)] == [6, 4006, 3005, 7006, 5])


def scaled_down(directory, factor, ids):
    """Logits of a model whose FFN outputs are multiplied by ``factor``."""
    model = load_model(directory)
    with torch.no_grad():
        for layer in model.get_decoder().layers:
            layer.mlp.down_proj.weight.mul_(factor)
    return logits_of(model, ids)


def check_experts_identities(c, fx, tmp):
    llama = os.path.join(fx, "llama")
    base = logits_of(load_model(llama), IDS)
    protos = os.path.join(tmp, "prototypes.safetensors")
    write_safetensors({"prototypes": rng.random_normal(1, (2, 1, 32), 0.0, 1.0)}, protos)
    given = os.path.join(tmp, "given-single.safetensors")
    single = {}
    for extra in [{}, {"fine_grained": True, "route_attention": True}, {"global_router": True}]:
        single.update(build_experts_mix(ExpertsMix(base=llama, experts=["base"], k=1,
                                                   **extra)).router_tensors)
    write_safetensors(single, given)
    variants = [{}, {"fine_grained": True, "route_attention": True}, {"global_router": True}]
    worst = 0.0
    for router in routers.EXPERT_ROUTER_MODES:
        for extra in variants:
            if router in ("hidden", "cheap-embed") and extra.get("fine_grained"):
                continue
            for scoring in routers.SCORINGS:
                mix = ExpertsMix(base=llama, experts=["base"], k=1, router=router,
                                 scoring=scoring, prototypes=protos,
                                 cheap_embed_tokens="5,6,7", router_weights=given, **extra)
                worst = max(worst, rel_err(logits_of(build_experts_mix(mix).model, IDS), base))
    c.check("experts: llama, experts=[base], k=1, every router mode, scoring and variant "
            "== transformers", worst, 1e-6)

    same = {"a": llama, "b": llama}
    worst = 0.0
    for extra in [{"router": "gateless"}, {"router": "gateless", "stem": "average"},
                  {"router": "noisy", "router_std": 1.0, "k": 2},
                  {"router": "uniform-random", "k": 3, "renormalize": False},
                  {"router": "noisy", "router_std": 1.0, "k": 2, "fine_grained": True,
                   "route_attention": True, "stem": "average"},
                  {"router": "noisy", "router_std": 1.0, "k": 2, "global_router": True}]:
        mix = ExpertsMix(base=llama, models=same, **extra)
        worst = max(worst, rel_err(logits_of(build_experts_mix(mix).model, IDS), base))
    c.check("experts: [llama, llama, llama] gate-less / softmax weights summing to 1 == llama",
            worst, 1e-6)

    for family in ("llama", "qwen2", "granite", "phi3", "gemma"):
        d = os.path.join(fx, family)
        ref = base if family == "llama" else logits_of(load_model(d), IDS)
        err = 0.0
        for extra in [{"router": "noisy", "router_std": 1.0, "k": 2, "fine_grained": True,
                       "route_attention": True, "stem": "average"},
                      {"router": "uniform-random", "k": 1, "global_router": True,
                       "route_attention": True},
                      {"router": "gateless", "stem": "average"}]:
            mix = ExpertsMix(base=d, models={"a": d}, **extra)
            err = max(err, rel_err(logits_of(build_experts_mix(mix).model, IDS), ref))
        c.check(f"experts: {family} mixed with itself (fine-grained, route-attention, "
                "global router, average stem) == transformers", err, 1e-6)
        twice = logits_of(build_experts_mix(ExpertsMix(
            base=d, models={"a": d}, experts=["base", "a"], always_on="a", k=1)).model, IDS)
        c.check(f"experts: {family} always-on copy of itself == FFN outputs x 2",
                rel_err(twice, scaled_down(d, 2.0, IDS)), 1e-6)
        half = logits_of(build_experts_mix(ExpertsMix(
            base=d, models={"a": d}, experts=["base", "a"], shared_expert="a", k=1,
            router="base-init")).model, IDS)
        c.check(f"experts: {family} shared expert with zero gate == FFN outputs x 1.5",
                rel_err(half, scaled_down(d, 1.5, IDS)), 1e-6)


def check_experts_against_naive(c, fx, tmp):
    llama, e1, e2 = (os.path.join(fx, n) for n in ("llama", "llama-expert-1", "llama-expert-2"))
    models = {"e1": e1, "e2": e2}
    weights = [Weights(d) for d in (llama, e1, e2)]

    # Stem average and layer choice, from the checkpoints' tensors.
    mixed = build_experts_mix(ExpertsMix(base=llama, models=models, experts=["e1"], k=1,
                                         layers=[0], stem="average")).model
    plain = load_model(llama)
    state = {}
    for key, value in weights[0].t.items():
        if key.startswith("model.layers.0.mlp."):
            state[key] = weights[1].t[key]
        else:
            state[key] = (value + weights[1].t[key]) / 2
    plain.load_state_dict({k: torch.from_numpy(v.astype(np.float32)) for k, v in state.items()})
    c.check("experts: stem=average, layers=[0], experts=[e1] == llama with averaged tensors "
            "and e1's layer-0 FFN", rel_err(logits_of(mixed, IDS), logits_of(plain, IDS)), 1e-6)

    # Routed FFN of layer 1 against a per-token recomputation.
    std, seed = 0.5, 11
    for scoring, k, renormalize, shared in [("softmax", 2, True, None),
                                            ("sigmoid", 2, False, None),
                                            ("softmax", 1, False, "e2")]:
        mix = ExpertsMix(base=llama, models=models, k=k, router="noisy", router_std=std,
                         seed=seed, scoring=scoring, renormalize=renormalize,
                         shared_expert=shared)
        x, y = capture(build_experts_mix(mix).model, "model.layers.1.mlp", IDS)
        x = x.reshape(-1, 32)
        experts = weights[:2] if shared else weights
        router = rng.random_normal(seed + 1, (len(experts), 32), 0.0, std).astype(np.float64)
        want = np.zeros_like(x)
        for t, (chosen, w) in enumerate(naive_gating(x @ router.T, k, scoring, renormalize)):
            want[t] = sum(wj * experts[j].ffn(1, x[t]) for j, wj in zip(chosen, w))
        if shared:
            gate = rng.random_normal(seed + 7001, (1, 32), 0.0, std).astype(np.float64)
            want += (1 / (1 + np.exp(-(x @ gate.T)))) * weights[2].ffn(1, x)
        c.check(f"experts: layer-1 routed FFN ({scoring}, k={k}, renormalize={renormalize}, "
                f"shared={shared}) == per-token recomputation", rel_err(y.reshape(-1, 32), want),
                1e-5)

    # Fine-grained projections and routed q_proj of layer 0, sigmoid scores.
    mix = ExpertsMix(base=llama, models=models, experts=["base", "e1"], always_on="e2", k=2,
                     router="noisy", router_std=std, seed=seed, scoring="sigmoid",
                     renormalize=False, fine_grained=True, route_attention=True)
    model = build_experts_mix(mix).model
    x, y = capture(model, "model.layers.0.mlp", IDS)
    x = x.reshape(-1, 32)

    def routed(site, inputs, name):
        w = rng.random_normal(seed + 1000 * routers.PROJECTION_SITES[site], (2, inputs.shape[1]),
                              0.0, std).astype(np.float64)
        out = []
        for row, (chosen, g) in zip(inputs, naive_gating(inputs @ w.T, 2, "sigmoid", False)):
            out.append(sum(gj * (weights[j].t[name] @ row) for j, gj in zip(chosen, g)))
        return np.array(out)

    middle = silu(routed("gate_proj", x, "model.layers.0.mlp.gate_proj.weight")) * \
        routed("up_proj", x, "model.layers.0.mlp.up_proj.weight")
    want = routed("down_proj", middle, "model.layers.0.mlp.down_proj.weight") + weights[2].ffn(0, x)
    c.check("experts: fine-grained layer-0 FFN (gate, up, down routers, always-on e2) == "
            "per-token recomputation", rel_err(y.reshape(-1, 32), want), 1e-5)
    x, y = capture(model, "model.layers.0.self_attn.q_proj", IDS)
    x = x.reshape(-1, 32)
    c.check("experts: routed q_proj of layer 0 == per-token recomputation",
            rel_err(y.reshape(-1, 32),
                    routed("q_proj", x, "model.layers.0.self_attn.q_proj.weight")),
            1e-5)

    # The global router reads the embeddings (after Granite's multiplier).
    granite = os.path.join(fx, "granite")
    built = build_experts_mix(ExpertsMix(base=granite, models={"a": granite},
                                         global_router=True, router_std=std))
    logits_of(built.model, IDS)
    gating = built.model.model.layers[1].mlp.router
    table = built.model.model.embed_tokens.weight.detach().double().numpy()
    c.check("experts: the global router reads embedding x embedding_multiplier (granite)",
            rel_err(gating.last_input.double().numpy(), table[IDS] * 12.0), 1e-7)
    mix = ExpertsMix(base=llama, models=models, global_router=True, router_std=std, seed=seed,
                     k=2)
    model = build_experts_mix(mix).model
    x1, y = capture(model, "model.layers.1.mlp", IDS)
    embedded = model.model.embed_tokens.weight.detach().double().numpy()[IDS].reshape(-1, 32)
    router = rng.random_normal(seed, (3, 32), 0.0, std).astype(np.float64)
    x1 = x1.reshape(-1, 32)
    want = np.array([sum(wj * weights[j].ffn(1, x1[t]) for j, wj in zip(chosen, w))
                     for t, (chosen, w) in enumerate(
                         naive_gating(embedded @ router.T, 2, "softmax", True))])
    c.check("experts: layer-1 FFN routed by the global router (seed, embeddings) == "
            "per-token recomputation", rel_err(y.reshape(-1, 32), want), 1e-5)

    # router=given reads back the tensors of a noisy mix under the given names.
    for extra in [{"fine_grained": True, "route_attention": True, "always_on": "e2"},
                  {"shared_expert": "e2", "global_router": True},
                  {"shared_expert": "e2"}]:
        noisy = build_experts_mix(ExpertsMix(base=llama, models=models, router_std=std,
                                             seed=seed, k=1, **extra))
        path = os.path.join(tmp, "given.safetensors")
        write_safetensors(noisy.router_tensors, path)
        given = build_experts_mix(ExpertsMix(base=llama, models=models, router="given",
                                             router_weights=path, k=1, **extra))
        c.check(f"experts: router=given on the noisy mix's router file ({', '.join(extra)}) "
                "== the noisy mix", rel_err(logits_of(given.model, IDS),
                                            logits_of(noisy.model, IDS)), 0.0)


def check_router_tensors(c, fx, tmp):
    llama, e1, e2 = (os.path.join(fx, n) for n in ("llama", "llama-expert-1", "llama-expert-2"))
    models = {"e1": e1, "e2": e2}
    ffn = "model.layers.{}.block_sparse_moe.gate.weight"

    def tensors(**options):
        return build_experts_mix(ExpertsMix(base=llama, models=models, **options)).router_tensors

    protos = rng.random_normal(2, (2, 3, 32), 0.0, 1.0).astype(np.float64)
    protos[1, 2] = 0.0
    path = os.path.join(tmp, "prototypes3.safetensors")
    write_safetensors({"prototypes": protos}, path)
    got = tensors(router="hidden", prototypes=path)
    err = 0.0
    for layer in range(2):
        norms = np.sqrt((protos[layer] ** 2).sum(axis=1, keepdims=True))
        want = protos[layer] / np.where(norms == 0, 1.0, norms)
        err = max(err, float(np.abs(got[ffn.format(layer)] - want).max()))
    c.check("routers: hidden = prototypes[l] with unit rows (a zero row stays zero)", err, 1e-7)

    table = Weights(llama).t["model.embed_tokens.weight"]
    lists = [[5, 6], [7], [9, 9, 10]]
    want = []
    for ids in lists:
        rows = table[ids] / np.linalg.norm(table[ids], axis=1, keepdims=True)
        mean = rows.mean(axis=0)
        want.append(mean / np.linalg.norm(mean))
    got = tensors(router="cheap-embed", cheap_embed_tokens="5,6;7;9,9,10", stem="average")
    c.check("routers: cheap-embed from the base's embedding rows, every layer the same "
            "(stem=average too)", max(float(np.abs(got[ffn.format(l)] - want).max())
                                      for l in range(2)), 1e-7)

    got = tensors(router="base-init")
    c.true("routers: base-init = zero weight, bias [0, -30, -30]",
           not got[ffn.format(1)].any() and
           got["model.layers.1.block_sparse_moe.gate.bias"].tolist() == [0.0, -30.0, -30.0])
    got = tensors(router="uniform-random", seed=4, fine_grained=True)
    down = got["model.layers.1.mlp.down_proj.router.weight"]
    c.true("routers: uniform-random down_proj router of layer 1 = seed 4 + 3001, "
           "bound 1/sqrt(64)", down.shape == (3, 64) and np.abs(down).max() <= 0.125 and
           np.array_equal(down, rng.random_uniform(3005, (3, 64), -0.125, 0.125)))


def peft_logits(base, adapters, factor, merge=False):
    """Logits of PEFT with every adapter of ``adapters`` ((name, dir) pairs)
    active, the scaling of adapter ``name`` on module ``path`` multiplied
    by ``factor(path, name, names adapting path)``."""
    import peft
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)
        (first, directory), *rest = adapters
        wrapped = peft.PeftModel.from_pretrained(load_model(base), directory,
                                                 adapter_name=first)
        for name, directory in rest:
            wrapped.load_adapter(directory, adapter_name=name)
        wrapped.base_model.set_adapter([name for name, _ in adapters])
        for path, module in wrapped.base_model.model.named_modules():
            if isinstance(module, peft.tuners.lora.LoraLayer):
                present = [name for name, _ in adapters if name in module.lora_A]
                for name in present:
                    module.scaling[name] *= factor(path, name, present)
        if merge:
            return logits_of(wrapped.merge_and_unload(), IDS)
        return logits_of(wrapped.eval(), IDS)


def check_adapters(c, fx):
    llama = os.path.join(fx, "llama")
    attn = ("attn", os.path.join(fx, "llama-lora-attn"))
    every = ("all", os.path.join(fx, "llama-lora-all"))

    def mix_logits(adapters, **options):
        return logits_of(build_adapters_mix(AdaptersMix(base=llama, adapters=adapters,
                                                        **options)).model, IDS)

    base = logits_of(load_model(llama), IDS)
    for adapter in (attn, every):
        half = mix_logits([adapter], router="zero", normalization="sigmoid")
        want = peft_logits(llama, [adapter], lambda *a: 0.5)
        c.check(f"adapters: one adapter ({adapter[0]}), sigmoid, zero router == PEFT scaled "
                "by 1/2", rel_err(half, want), 1e-6)
        c.true(f"adapters: ... and differs from the base ({rel_err(half, base):.3g})",
               rel_err(half, base) > 1e-2)
        full = mix_logits([adapter], router="noisy", router_std=1.0, normalization="softmax")
        c.check(f"adapters: one adapter ({adapter[0]}), softmax == PEFT",
                rel_err(full, peft_logits(llama, [adapter], lambda *a: 1.0)), 1e-6)
        c.check(f"adapters: one adapter ({adapter[0]}), softmax == PEFT merged",
                rel_err(full, peft_logits(llama, [adapter], lambda *a: 1.0, merge=True)), 1e-5)

    pair = [attn, every]
    cases = [
        ("softmax, zero router, all active: 1/2 where both adapt",
         {"normalization": "softmax"}, lambda p, n, present: 1.0 / len(present)),
        ("sigmoid, zero router, top-1: the first adapter at 1/2 where both adapt",
         {"normalization": "sigmoid", "top_k": 1},
         lambda p, n, present: 0.5 if n == present[0] else 0.0),
        ("softmax, zero router, top-1: the first adapter where both adapt",
         {"normalization": "softmax", "top_k": 1},
         lambda p, n, present: 1.0 if n == present[0] else 0.0),
    ]
    for what, options, factor in cases:
        c.check(f"adapters: attn + all, {what} == PEFT", rel_err(
            mix_logits(pair, router="zero", **options), peft_logits(llama, pair, factor)), 1e-6)

    # A noisy mixture against a per-token recomputation from the adapter files.
    factors = {}
    for name, directory, scale in (("attn", attn[1], 8 / 4), ("all", every[1], 4 / math.sqrt(2))):
        t = {k: v.astype(np.float64) for k, v in read_safetensors(
            os.path.join(directory, "adapter_model.safetensors")).items()}
        prefix = "base_model.model.model.layers.0.self_attn.q_proj."
        factors[name] = (t[prefix + "lora_A.weight"], t[prefix + "lora_B.weight"], scale)
    q = Weights(llama).t["model.layers.0.self_attn.q_proj.weight"]
    for normalization, top_k in (("softmax", 1), ("sigmoid", 0), ("sigmoid", 1)):
        built = build_adapters_mix(AdaptersMix(base=llama, adapters=pair, router="noisy",
                                               router_std=1.0, seed=3, top_k=top_k,
                                               normalization=normalization))
        x, y = capture(built.model, "model.layers.0.self_attn.q_proj", IDS)
        x = x.reshape(-1, 32)
        router = rng.random_normal(3, (2, 32), 0.0, 1.0).astype(np.float64)
        want = x @ q.T
        for t, (chosen, g) in enumerate(naive_gating(x @ router.T, top_k or 2, normalization,
                                                     normalization == "softmax")):
            for j, gj in zip(chosen, g):
                a, b, scale = factors[("attn", "all")[j]]
                want[t] += gj * scale * (b @ (a @ x[t]))
        c.check(f"adapters: noisy layer-0 q_proj mixture ({normalization}, top-k {top_k}) == "
                "per-token recomputation", rel_err(y.reshape(-1, 32), want), 1e-5)

    built = build_adapters_mix(AdaptersMix(base=llama, adapters=pair, router="noisy", seed=3))
    expected = [f"model.layers.{l}.{m}" for l in range(2) for m in (
        "self_attn.q_proj", "self_attn.k_proj", "self_attn.v_proj", "self_attn.o_proj",
        "mlp.gate_proj", "mlp.up_proj", "mlp.down_proj")]
    c.true("adapters: program order q, k, v, o, gate, up, down per layer",
           built.modules == expected)
    router = built.router_tensors["model.layers.1.self_attn.q_proj.router.weight"]
    c.check("adapters: noisy router of position 7 (layer 1 q_proj, 2 adapters) uses seed 3 + 7",
            float(np.abs(router - rng.random_normal(10, (2, 32), 0.0, 0.02)).max()), 0.0)


def run(fixtures):
    """Runs every check; returns the number of failures."""
    start = time.monotonic()
    missing = [n for n in FIXTURES if not os.path.isdir(os.path.join(fixtures, n))]
    if missing:
        raise FileNotFoundError(f"{fixtures}: missing fixtures {', '.join(missing)}")
    torch.set_num_threads(1)
    c = Checker()
    check_rng(c)
    check_gating(c)
    with tempfile.TemporaryDirectory() as tmp:
        check_experts_identities(c, fixtures, tmp)
        check_experts_against_naive(c, fixtures, tmp)
        check_router_tensors(c, fixtures, tmp)
    check_adapters(c, fixtures)
    print(f"self-check: {c.passed} passed, {c.failed} failed "
          f"({time.monotonic() - start:.1f} s)")
    return c.failed
