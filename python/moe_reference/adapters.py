"""The reference of ``moe-mix-adapters``: a base model whose LoRA-adapted
linear layers become routed mixtures of the adapters.

Every linear layer that at least one adapter adapts computes

    y = x W^T + b + sum_e g_e(x) * scale_e * (x A_e^T) B_e^T

over the adapters that adapt it (in adapter order), with ``A_e`` ``[r, in]``
and ``B_e`` ``[out, r]`` read from the adapter's safetensors and
``scale_e = lora_alpha / r`` (``lora_alpha / sqrt(r)`` with
``use_rslora``) from its adapter_config.json. The router weight ``R``
(``[E, in]``) gives logits ``x R^T``; ``g`` is
:func:`routers.adapter_scores` of them. The router of the adapted layer at
position p (its index in program order, counting adapted layers only) is

- ``noisy``: ``moe.random_normal`` seed ``seed + p``, std ``router_std``;
- ``uniform-random``: ``moe.random_uniform`` seed ``seed + p`` in
  [-1/sqrt(in), 1/sqrt(in)];
- ``zero``: all zero;
- ``given``: the tensor ``<module>.router.weight`` of ``router_weights``.

Program order is the order in which the forward pass first calls the
adapted layers (q, k, v, o, gate, up, down per layer, then lm_head).
"""

import json
import math
import os
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from . import routers
from .models import load_model, logits_of, read_safetensors

_PREFIX = "base_model.model."
_UNSUPPORTED = {"use_dora": False, "fan_in_fan_out": False, "lora_bias": False,
                "rank_pattern": {}, "alpha_pattern": {}, "modules_to_save": None,
                "target_parameters": None, "layer_replication": None}


@dataclass
class Adapter:
    """A PEFT LoRA adapter: per module path (``model.layers.0.self_attn.q_proj``)
    its ``(A [r, in], B [out, r])`` float32 arrays, and its scale."""

    name: str
    scale: float
    factors: dict


def read_adapter(name, path):
    """Reads a PEFT LoRA adapter directory (adapter_config.json and
    adapter_model.safetensors). Features that change the plain LoRA formula
    (DoRA, per-module rank or alpha patterns, ...) are refused."""
    with open(os.path.join(path, "adapter_config.json")) as f:
        config = json.load(f)
    if config.get("peft_type", "LORA") != "LORA":
        raise ValueError(f"{path}: not a LoRA adapter ({config.get('peft_type')})")
    for key, default in _UNSUPPORTED.items():
        if config.get(key, default) not in (default, None, {}, False):
            raise NotImplementedError(f"{path}: '{key}' = {config[key]!r} is not supported")
    rank, alpha = int(config["r"]), float(config["lora_alpha"])
    scale = alpha / math.sqrt(rank) if config.get("use_rslora") else alpha / rank
    tensors = read_safetensors(os.path.join(path, "adapter_model.safetensors"))
    factors = {}
    for key, value in tensors.items():
        module, _, rest = key.removeprefix(_PREFIX).partition(".lora_")
        part = rest.split(".")[0]
        if part not in ("A", "B") or not rest.endswith("weight"):
            raise NotImplementedError(f"{path}: unexpected tensor '{key}'")
        factors.setdefault(module, {})[part] = value
    result = {}
    for module, pair in factors.items():
        a, b = pair["A"], pair["B"]
        if a.shape[0] != rank or b.shape[1] != rank:
            raise ValueError(f"{path}: {module} has rank {a.shape[0]}, config r = {rank}")
        result[module] = (a, b)
    return Adapter(name, scale, result)


@dataclass
class AdaptersMix:
    """The options of ``moe-mix-adapters`` (same defaults) plus where the
    models are: ``base`` the base's directory, ``adapters`` the adapters as
    ``(name, directory)`` pairs in order."""

    base: str
    adapters: list
    router: str = "noisy"
    normalization: str = "sigmoid"
    top_k: int = 0
    router_std: float = 0.02
    seed: int = 0
    router_weights: str | None = None


class MixtureOfLora(nn.Module):
    """``moe.mixture_of_lora`` around the base's own linear layer. Each LoRA
    term is computed as PEFT does (``B(A(x)) * scale`` in float32) and the
    sum is accumulated in float64."""

    def __init__(self, base, factors, scales, router, normalization, top_k):
        super().__init__()
        self.base = base
        self.a = [torch.from_numpy(a) for a, _ in factors]
        self.b = [torch.from_numpy(b) for _, b in factors]
        self.scales = list(scales)
        self.register_buffer("router", torch.from_numpy(router))
        self.normalization, self.top_k = normalization, top_k

    def forward(self, x):
        logits = x.double() @ self.router.double().T
        gates = routers.adapter_scores(logits, self.normalization, self.top_k)
        y = self.base(x).double()
        for e, (a, b, scale) in enumerate(zip(self.a, self.b, self.scales)):
            y = y + gates[..., e:e + 1] * (F.linear(F.linear(x, a), b) * scale).double()
        return y.to(x.dtype)


def program_order(model, modules):
    """The module paths of ``modules`` in the order a forward pass of one
    token first calls them."""
    order, handles = [], []
    for path in modules:
        module = model.get_submodule(path)
        handles.append(module.register_forward_pre_hook(
            lambda m, args, path=path: order.append(path) if path not in order else None))
    try:
        logits_of(model, [[0]])
    finally:
        for handle in handles:
            handle.remove()
    missing = set(modules) - set(order)
    if missing:
        raise ValueError(f"adapted modules never called: {sorted(missing)}")
    return order


def _router(mix, module, position, rows, cols, given):
    if mix.router == "noisy":
        return routers.noisy(mix.seed + position, rows, cols, mix.router_std)
    if mix.router == "uniform-random":
        return routers.uniform_random(mix.seed + position, rows, cols)
    if mix.router == "zero":
        return np.zeros((rows, cols), np.float32)
    return routers.read_given(given, module + ".router.weight", (rows, cols),
                              mix.router_weights)


@dataclass
class BuiltAdapters:
    """A mixture-of-adapters model, its router weights keyed
    ``<module>.router.weight``, and the adapted modules in program order."""

    model: nn.Module
    router_tensors: dict
    modules: list


def build_adapters_mix(mix):
    """Builds the mixture of adapters of ``mix`` (an :class:`AdaptersMix`)."""
    if mix.router not in routers.ADAPTER_ROUTER_MODES:
        raise ValueError(f"unknown router mode '{mix.router}' for adapters "
                         f"({', '.join(routers.ADAPTER_ROUTER_MODES)})")
    if mix.normalization not in routers.SCORINGS:
        raise ValueError(f"unknown normalization '{mix.normalization}' (sigmoid or softmax)")
    if mix.top_k < 0:
        raise ValueError("top-k must be 0 (all) or positive")
    if not mix.adapters:
        raise ValueError("no adapters to mix")
    names = [name for name, _ in mix.adapters]
    if len(set(names)) != len(names):
        raise ValueError(f"an adapter is listed twice in {names}")
    given = None
    if mix.router == "given":
        if not mix.router_weights:
            raise ValueError("router=given needs router-weights=<file>")
        given = read_safetensors(mix.router_weights)
    adapters = [read_adapter(name, path) for name, path in mix.adapters]
    model = load_model(mix.base)
    adapted = list(dict.fromkeys(m for a in adapters for m in a.factors))
    for module in adapted:
        try:
            layer = model.get_submodule(module)
        except AttributeError:
            raise ValueError(f"the base has no module '{module}'") from None
        if not isinstance(layer, nn.Linear):
            raise ValueError(f"'{module}' is not a linear layer of the base")
        for adapter in adapters:
            if module in adapter.factors:
                a, b = adapter.factors[module]
                if a.shape[1] != layer.in_features or b.shape[0] != layer.out_features:
                    raise ValueError(f"adapter '{adapter.name}': {module} does not fit "
                                     f"[{layer.out_features}, {layer.in_features}]")
    order = program_order(model, adapted)
    tensors = {}
    for position, module in enumerate(order):
        users = [a for a in adapters if module in a.factors]
        base = model.get_submodule(module)
        router = _router(mix, module, position, len(users), base.in_features, given)
        tensors[module + ".router.weight"] = router
        parent, _, attribute = module.rpartition(".")
        setattr(model.get_submodule(parent), attribute, MixtureOfLora(
            base, [u.factors[module] for u in users], [u.scale for u in users],
            router, mix.normalization, min(mix.top_k, len(users))))
    return BuiltAdapters(model.eval(), tensors, order)


def adapters_logits(mix, ids):
    """Float32 logits ``[batch, sequence, vocab]`` of the mixture of adapters."""
    return logits_of(build_adapters_mix(mix).model, ids)


def adapters_router_weights(mix):
    """The router weights of the mixture, keyed ``<module>.router.weight``."""
    return build_adapters_mix(mix).router_tensors
