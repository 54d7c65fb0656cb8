"""The reference of ``moe-mix-experts``: a mixture of domain experts built
from dense Hugging Face models with transformers and torch alone.

The base model is loaded with transformers and kept as it is, except that

- in every mixed layer, ``mlp`` becomes a :class:`RoutedFFN` over
  deep copies of the routed experts' ``mlp`` modules:
  ``y = sum_j w_j ffn_{i_j}(x)`` with the gating ``(w, i)`` of
  :func:`routers.topk_gating` on ``x W^T (+ b)`` (or 1/E each, gate-less),
  plus the always-on FFN with weight 1 or the shared expert's FFN scaled by
  ``sigmoid(x g^T)``;
- with ``fine_grained``, ``mlp`` becomes a :class:`FineGrainedFFN`:
  ``down(act(gate(x)) * up(x))`` where each projection is a
  :class:`RoutedLinear` ``sum_j w_j (x W_{i_j}^T + b_{i_j})`` with a
  router of its own (down's on the intermediate activation), plus the
  always-on FFN;
- with ``route_attention``, q/k/v projections of mixed layers become
  :class:`RoutedLinear` modules over the routed experts' projections (a
  fused ``qkv_proj`` is split into its q, k and v rows);
- with ``global_router``, one router reads the hidden states entering the
  first decoder layer (the embeddings, after any embedding multiplier) and
  every mixed site uses its gating;
- with ``stem="average"``, every other parameter is the float64 mean over
  the sources (base, routed experts, always-on/shared model, each once),
  rounded to float32.

The routed experts are the ``experts`` minus the always-on or shared model,
in order. Attention, rotary embeddings, norms, multipliers and the head
stay transformers' own code.
"""

import copy
from dataclasses import dataclass, field

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from . import routers
from .models import decoder_layers, load_model, logits_of, read_safetensors

STEMS = ("base", "average")
ATTENTION_SITES = ("q_proj", "k_proj", "v_proj")


@dataclass
class ExpertsMix:
    """The options of ``moe-mix-experts`` (same names and defaults) plus
    where the models are: ``base`` is the base's directory, ``models`` maps
    the name of every other model to its directory, ``base_name`` names the
    base. ``experts`` defaults to the base and then every model of
    ``models`` in order; ``layers`` to all decoder layers.
    ``cheap_embed_tokens`` is the option's string ('5,17;8;9,2') or a list
    of id lists; ``prototypes`` and ``router_weights`` are safetensors
    paths."""

    base: str
    models: dict = field(default_factory=dict)
    base_name: str = "base"
    experts: list | None = None
    layers: list | None = None
    k: int = 2
    router: str = "noisy"
    scoring: str = "softmax"
    renormalize: bool = True
    router_std: float = 0.02
    seed: int = 0
    prototypes: str | None = None
    cheap_embed_tokens: object = None
    router_weights: str | None = None
    always_on: str | None = None
    shared_expert: str | None = None
    stem: str = "base"
    fine_grained: bool = False
    route_attention: bool = False
    global_router: bool = False


class Router(nn.Module):
    """Router logits ``x W^T + b`` in float64, then :func:`routers.topk_gating`.
    Returns (weights float64 ``[..., k]``, indices ``[..., k]``)."""

    def __init__(self, weight, bias, k, scoring, renormalize):
        super().__init__()
        self.register_buffer("weight", torch.from_numpy(np.asarray(weight, np.float32)))
        self.register_buffer("bias", None if bias is None else
                             torch.from_numpy(np.asarray(bias, np.float32)))
        self.k, self.scoring, self.renormalize = k, scoring, renormalize

    def forward(self, x):
        logits = x.double() @ self.weight.double().T
        if self.bias is not None:
            logits = logits + self.bias.double()
        return routers.topk_gating(logits, self.k, self.scoring, self.renormalize)


class UniformRouter(nn.Module):
    """Gate-less routing: every expert with weight 1/E."""

    def __init__(self, experts):
        super().__init__()
        self.experts = experts

    def forward(self, x):
        return routers.uniform_gating(x.shape[:-1], self.experts)


class GlobalGating(nn.Module):
    """The global router: :meth:`capture` computes the gating of the hidden
    states entering the first decoder layer (kept as ``last_input``);
    calling the module returns that gating, whatever its input (every mixed
    site shares it)."""

    def __init__(self, router):
        super().__init__()
        self.router = router
        self.current = None
        self.last_input = None

    def capture(self, hidden):
        self.last_input = hidden.detach().clone()
        self.current = self.router(hidden)

    def forward(self, x):
        weights, indices = self.current
        if weights.shape[:-1] != x.shape[:-1]:
            raise RuntimeError("the global gating was computed for tokens "
                               f"{list(weights.shape[:-1])}, used for {list(x.shape[:-1])}")
        return self.current


def combine(outputs, weights, indices):
    """``sum_j weights[..., j] * outputs[indices[..., j]]`` accumulated in
    float64. ``outputs``: one tensor ``[..., out]`` per expert."""
    stacked = torch.stack([o.double() for o in outputs], dim=-2)  # [..., E, out]
    index = indices.unsqueeze(-1).expand(*indices.shape, stacked.shape[-1])
    chosen = torch.gather(stacked, -2, index)  # [..., k, out]
    return (weights.unsqueeze(-1) * chosen).sum(dim=-2)


class RoutedFFN(nn.Module):
    """``moe.experts``: ``sum_j w_j ffn_{i_j}(x)`` over the experts' own
    FFN modules, plus an optional shared FFN, scaled by ``sigmoid(x g^T)``
    when ``shared_gate`` (``[1, H]``) is given and by 1 otherwise."""

    def __init__(self, experts, router, shared=None, shared_gate=None):
        super().__init__()
        self.experts = nn.ModuleList(experts)
        self.router = router
        self.shared = shared
        self.register_buffer("shared_gate", None if shared_gate is None else
                             torch.from_numpy(np.asarray(shared_gate, np.float32)))

    def forward(self, x):
        weights, indices = self.router(x)
        y = combine([expert(x) for expert in self.experts], weights, indices)
        if self.shared is not None:
            shared = self.shared(x).double()
            if self.shared_gate is not None:
                shared = shared * torch.sigmoid(x.double() @ self.shared_gate.double().T)
            y = y + shared
        return y.to(x.dtype)


class RoutedLinear(nn.Module):
    """``moe.routed_linear``: ``sum_j w_j (x W_{i_j}^T + b_{i_j})``."""

    def __init__(self, linears, router):
        super().__init__()
        self.register_buffer("weight", torch.stack([l.weight.detach() for l in linears]))
        biases = [l.bias for l in linears]
        self.register_buffer("bias", None if biases[0] is None else
                             torch.stack([b.detach() for b in biases]))
        self.router = router

    def mix(self, x):
        """The routed output in float64."""
        weights, indices = self.router(x)
        outputs = [F.linear(x, self.weight[e], None if self.bias is None else self.bias[e])
                   for e in range(self.weight.shape[0])]
        return combine(outputs, weights, indices)

    def forward(self, x):
        return self.mix(x).to(x.dtype)


class FusedQKV(nn.Module):
    """A fused ``qkv_proj`` whose q, k and v parts are routed separately:
    the concatenation of the three outputs."""

    def __init__(self, q, k, v):
        super().__init__()
        self.q, self.k, self.v = q, k, v

    def forward(self, x):
        return torch.cat([self.q(x), self.k(x), self.v(x)], dim=-1)


class FineGrainedFFN(nn.Module):
    """Fine-grained routing: ``down(act(gate(x)) * up(x))`` (``down(act(up(x)))``
    without gate) with routed projections, plus an optional always-on FFN."""

    def __init__(self, gate, up, down, act, shared=None):
        super().__init__()
        self.gate, self.up, self.down, self.act = gate, up, down, act
        self.shared = shared

    def forward(self, x):
        up = self.up(x)
        middle = self.act(self.gate(x)) * up if self.gate is not None else self.act(up)
        y = self.down.mix(middle)
        if self.shared is not None:
            y = y + self.shared(x).double()
        return y.to(x.dtype)


def _linear(weight, bias):
    layer = nn.Linear(weight.shape[1], weight.shape[0], bias=bias is not None)
    with torch.no_grad():
        layer.weight.copy_(weight)
        if bias is not None:
            layer.bias.copy_(bias)
    return layer


def ffn_parts(mlp):
    """(gate, up, down, activation) of an FFN module: ``gate_proj``,
    ``up_proj``, ``down_proj`` and ``act_fn`` (Llama family), or Phi-3's
    fused ``gate_up_proj`` split into its gate (first half of the rows) and
    up halves. ``gate`` is None for a plain two-layer MLP (``up_proj``,
    ``down_proj``)."""
    if hasattr(mlp, "gate_up_proj"):
        fused = mlp.gate_up_proj
        half = fused.weight.shape[0] // 2
        bias = fused.bias
        gate = _linear(fused.weight[:half].detach(), None if bias is None else bias[:half].detach())
        up = _linear(fused.weight[half:].detach(), None if bias is None else bias[half:].detach())
        return gate, up, mlp.down_proj, mlp.activation_fn
    if hasattr(mlp, "up_proj") and hasattr(mlp, "down_proj"):
        return getattr(mlp, "gate_proj", None), mlp.up_proj, mlp.down_proj, mlp.act_fn
    raise NotImplementedError(f"fine-grained routing of {type(mlp).__name__} "
                              "(needs gate_proj/up_proj/down_proj or gate_up_proj)")


def attention_projections(attention):
    """The q, k and v projections of an attention module as
    ``{"q_proj": Linear, ...}``, splitting a fused ``qkv_proj`` by rows
    (q: heads * head_dim, then k and v: kv_heads * head_dim each)."""
    if hasattr(attention, "qkv_proj"):
        fused = attention.qkv_proj
        q_rows = attention.config.num_attention_heads * attention.head_dim
        kv_rows = attention.num_key_value_heads * attention.head_dim
        bounds = {"q_proj": (0, q_rows), "k_proj": (q_rows, q_rows + kv_rows),
                  "v_proj": (q_rows + kv_rows, q_rows + 2 * kv_rows)}
        return {name: _linear(fused.weight[a:b].detach(),
                              None if fused.bias is None else fused.bias[a:b].detach())
                for name, (a, b) in bounds.items()}
    if all(hasattr(attention, name) for name in ATTENTION_SITES):
        return {name: getattr(attention, name) for name in ATTENTION_SITES}
    raise NotImplementedError(f"route-attention on {type(attention).__name__}")


def _check(mix, names):
    """The option checks of moe-mix-experts. Returns (routed names, shared
    name or None, source names)."""
    if mix.router not in routers.EXPERT_ROUTER_MODES:
        raise ValueError(f"unknown router mode '{mix.router}' "
                         f"({', '.join(routers.EXPERT_ROUTER_MODES)})")
    if mix.scoring not in routers.SCORINGS:
        raise ValueError(f"unknown scoring '{mix.scoring}' (softmax or sigmoid)")
    if mix.stem not in STEMS:
        raise ValueError(f"unknown stem '{mix.stem}' (base or average)")
    if mix.always_on and mix.shared_expert:
        raise ValueError("always-on and shared-expert are exclusive")
    if mix.router in ("hidden", "cheap-embed") and (mix.fine_grained or mix.route_attention):
        raise ValueError(f"router={mix.router} builds FFN routers over the hidden size "
                         "only; fine-grained and route-attention need other routers")
    if mix.fine_grained and mix.shared_expert:
        raise ValueError("a gated shared expert cannot be combined with fine-grained routing")
    if mix.router_std < 0:
        raise ValueError("router-std must be non-negative")
    experts = list(mix.experts) if mix.experts else list(names)
    if len(set(experts)) != len(experts):
        raise ValueError(f"an expert is listed twice in {experts}")
    shared = mix.always_on or mix.shared_expert or None
    for name in experts + ([shared] if shared else []):
        if name not in names:
            raise ValueError(f"no model '{name}' (models: {', '.join(names)})")
    routed = [name for name in experts if name != shared]
    if not routed:
        raise ValueError("no experts left to route")
    if mix.router != "gateless" and not 1 <= mix.k <= len(routed):
        raise ValueError(f"k = {mix.k} must be between 1 and the number of "
                         f"routed experts ({len(routed)})")
    sources = [mix.base_name] + [n for n in routed if n != mix.base_name]
    if shared and shared not in sources:
        sources.append(shared)
    return routed, shared, sources


class _RouterFactory:
    """Builds the routers of one mix and records their weights under the
    key names of router=given."""

    def __init__(self, mix, experts, base_model, num_layers, hidden):
        self.mix, self.experts = mix, experts
        self.tensors = {}
        self.prototypes = self.given = self.cheap_embed = None
        if mix.router == "hidden":
            if not mix.prototypes:
                raise ValueError("router=hidden needs prototypes=<file>")
            tensors = read_safetensors(mix.prototypes)
            self.prototypes = routers.read_given(
                tensors, "prototypes", (num_layers, experts, hidden), mix.prototypes)
        elif mix.router == "given":
            if not mix.router_weights:
                raise ValueError("router=given needs router-weights=<file>")
            self.given = read_safetensors(mix.router_weights)
        elif mix.router == "cheap-embed":
            lists = mix.cheap_embed_tokens
            if isinstance(lists, str):
                lists = routers.parse_token_lists(lists)
            if not lists or len(lists) != experts:
                raise ValueError("router=cheap-embed needs one token-id list per "
                                 f"routed expert ({experts}), got {mix.cheap_embed_tokens!r}")
            table = base_model.get_input_embeddings().weight.detach().numpy()
            self.cheap_embed = routers.embedding_prototypes(table, lists)

    def router(self, site, layer, cols):
        """The gating module of a site ("ffn", "global" or a projection)."""
        mix, rows = self.mix, self.experts
        if mix.router == "gateless":
            return UniformRouter(rows)
        bias = None
        key = routers.given_key(site, layer)
        if mix.router == "noisy":
            weight = routers.noisy(routers.site_seed(mix.seed, site, layer), rows, cols,
                                   mix.router_std)
        elif mix.router == "uniform-random":
            weight = routers.uniform_random(routers.site_seed(mix.seed, site, layer), rows, cols)
        elif mix.router == "hidden":
            weight = routers.normalize_rows(self.prototypes[max(layer, 0)])
        elif mix.router == "cheap-embed":
            weight = self.cheap_embed
        elif mix.router == "base-init":
            weight, bias = routers.base_init(rows, cols)
            self.tensors[key.removesuffix(".weight") + ".bias"] = bias
        else:
            weight = routers.read_given(self.given, key, (rows, cols), mix.router_weights)
        self.tensors[key] = weight
        return Router(weight, bias, mix.k, mix.scoring, mix.renormalize)

    def shared_gate(self, layer, hidden):
        """The ``[1, H]`` gate row of the shared expert of a layer: noisy
        normal (seed + 7000 + l) in noisy mode, given in given mode, zero
        otherwise."""
        mix, key = self.mix, routers.shared_gate_key(layer)
        if mix.router == "noisy":
            gate = routers.noisy(routers.shared_gate_seed(mix.seed, layer), 1, hidden,
                                 mix.router_std)
        elif mix.router == "given":
            gate = routers.read_given(self.given, key, (1, hidden), mix.router_weights)
        else:
            gate = np.zeros((1, hidden), np.float32)
        self.tensors[key] = gate
        return gate


@dataclass
class BuiltMix:
    """A mixed model and the router tensors it uses, keyed as router=given
    reads them (base-init biases under ``....bias``)."""

    model: nn.Module
    router_tensors: dict


def _average_stem(host, sources):
    """Sets every parameter of ``host`` to the float64 mean over
    ``sources``, in float32 (tied parameters stay tied). The routed modules
    replace the averaged ones of mixed layers afterwards."""
    source_params = [dict(s.named_parameters(remove_duplicate=False)) for s in sources]
    with torch.no_grad():
        for name, param in host.named_parameters():
            total = torch.zeros(param.shape, dtype=torch.float64)
            for params in source_params:
                total += params[name].detach().double()
            param.copy_((total / len(sources)).to(param.dtype))


def build_experts_mix(mix):
    """Builds the mixed model of ``mix`` (an :class:`ExpertsMix`)."""
    names = [mix.base_name] + list(mix.models)
    if mix.base_name in mix.models:
        raise ValueError(f"'{mix.base_name}' names both the base and another model")
    routed, shared_name, source_names = _check(mix, names)
    paths = {mix.base_name: mix.base, **mix.models}
    loaded = {}
    for name in dict.fromkeys(routed + source_names):
        loaded[name] = load_model(paths[name])
    host = load_model(mix.base)
    layers = decoder_layers(host)
    num_layers = len(layers)
    chosen = list(range(num_layers)) if mix.layers is None else list(mix.layers)
    for layer in chosen:
        if not 0 <= layer < num_layers:
            raise ValueError(f"layer {layer} does not exist (the model has {num_layers} layers)")
    hidden = host.config.hidden_size
    factory = _RouterFactory(mix, len(routed), loaded[mix.base_name], num_layers, hidden)

    if mix.stem == "average":
        _average_stem(host, [loaded[name] for name in source_names])
    global_gating = None
    if mix.global_router and mix.router != "gateless":
        global_gating = GlobalGating(factory.router("global", -1, hidden))
        layers[0].register_forward_pre_hook(
            lambda module, args, kwargs: global_gating.capture(
                args[0] if args else kwargs["hidden_states"]),
            with_kwargs=True)

    def router(site, layer, cols):
        return global_gating if global_gating is not None else factory.router(site, layer, cols)

    for layer in sorted(set(chosen)):
        source_layers = {name: decoder_layers(loaded[name])[layer] for name in loaded}
        shared = copy.deepcopy(source_layers[shared_name].mlp) if shared_name else None
        if mix.fine_grained:
            parts = [ffn_parts(source_layers[name].mlp) for name in routed]
            gate = None
            if parts[0][0] is not None:
                gate = RoutedLinear([p[0] for p in parts], router("gate_proj", layer, hidden))
            up = RoutedLinear([p[1] for p in parts], router("up_proj", layer, hidden))
            down_in = parts[0][2].weight.shape[1]
            down = RoutedLinear([p[2] for p in parts], router("down_proj", layer, down_in))
            ffn = FineGrainedFFN(gate, up, down, copy.deepcopy(parts[0][3]), shared)
        else:
            experts = [copy.deepcopy(source_layers[name].mlp) for name in routed]
            gate_row = factory.shared_gate(layer, hidden) if mix.shared_expert else None
            ffn = RoutedFFN(experts, router("ffn", layer, hidden), shared, gate_row)
        layers[layer].mlp = ffn
        if mix.route_attention:
            attention = layers[layer].self_attn
            projections = [attention_projections(source_layers[name].self_attn)
                           for name in routed]
            routed_projections = {
                site: RoutedLinear([p[site] for p in projections],
                                   router(site, layer, projections[0][site].weight.shape[1]))
                for site in ATTENTION_SITES}
            if hasattr(attention, "qkv_proj"):
                attention.qkv_proj = FusedQKV(*(routed_projections[s] for s in ATTENTION_SITES))
            else:
                for site in ATTENTION_SITES:
                    setattr(attention, site, routed_projections[site])
    return BuiltMix(host.eval(), factory.tensors)


def experts_logits(mix, ids):
    """Float32 logits ``[batch, sequence, vocab]`` of the mix for ``ids``
    (equally long rows of token ids)."""
    return logits_of(build_experts_mix(mix).model, ids)


def experts_router_weights(mix):
    """The router tensors of the mix (see :class:`BuiltMix`)."""
    return build_experts_mix(mix).router_tensors
