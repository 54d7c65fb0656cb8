"""The routers of a Hugging Face MoE model as transformers builds it.

Covers the three layouts that `moe-translate --export-hf` writes:
MixtralForCausalLM (`model.layers.{l}.mlp.gate`), Qwen2MoeForCausalLM
(`mlp.gate` plus `mlp.shared_expert_gate`; dense `mlp_only_layers`
have none) and GraniteMoeForCausalLM (`block_sparse_moe.router`).
Each router module holds `weight` [E, H] and returns
(logits, top-k weights, top-k indices) for the flattened tokens.
"""

import dataclasses

import torch
import torch.nn.functional as F

from .common import FAMILIES, SUPPORTED, NoRouters


@dataclasses.dataclass
class RouterSite:
    layer: int
    router: torch.nn.Module        # .weight [E, H]
    experts: torch.nn.Module       # .gate_up_proj [E, 2I, H], .down_proj [E, H, I]
    shared_gate: torch.nn.Module   # Qwen2-MoE's shared_expert_gate, or None

    def experts_identical(self):
        """Whether all experts hold the same weights: a dense layer of the
        mix (Mixtral has no dense layers, so the export writes E copies of
        the FFN under a zero router), where the router changes nothing."""
        return all(torch.equal(tensor[0], tensor[e])
                   for tensor in (self.experts.gate_up_proj,
                                  self.experts.down_proj)
                   for e in range(1, tensor.shape[0]))


@dataclasses.dataclass
class MoeLayout:
    family: str          # a key of FAMILIES
    experts: int         # E
    top_k: int           # k
    renormalize: bool    # whether the k weights are divided by their sum
    sites: list          # RouterSite per routed layer, in layer order


def moe_layout(model, source):
    """The routers of `model` (loaded from `source`, named in errors)."""
    config = model.config
    family = getattr(config, "model_type", None)
    if family not in FAMILIES:
        raise NoRouters(f"{source}: {type(model).__name__} has no routers; "
                        f"expected a mixture of experts exported as {SUPPORTED}")
    block_name, router_name = FAMILIES[family]
    sites = []
    for layer, decoder_layer in enumerate(model.model.layers):
        block = getattr(decoder_layer, block_name)
        router = getattr(block, router_name, None)
        if router is None:
            continue  # a dense layer of Qwen2-MoE
        sites.append(RouterSite(layer, router, block.experts,
                                getattr(block, "shared_expert_gate", None)))
    if not sites:
        raise NoRouters(f"{source}: {type(model).__name__} has no routed layer")
    experts = sites[0].router.weight.shape[0]
    renormalize = (family != "qwen2_moe") or bool(config.norm_topk_prob)
    return MoeLayout(family, experts, config.num_experts_per_tok, renormalize,
                     sites)


def route(layout, logits):
    """Top-k weights and indices of router logits [T, E], as the family's
    router computes them (the same choice as the model's own router:
    softmax over all E, top k, optionally renormalised; GraniteMoE's softmax
    over the top-k logits is the renormalised form of the same weights)."""
    probabilities = torch.softmax(logits.float(), dim=-1)
    weights, indices = torch.topk(probabilities, layout.top_k, dim=-1)
    if layout.renormalize:
        weights = weights / weights.sum(dim=-1, keepdim=True)
    return weights.to(logits.dtype), indices


def add_router_bias(layout, site, values):
    """Gives the router of `site` a trainable bias (logits x W^T + b), the
    form of `router=base-init`, which no Hugging Face MoE config holds. The
    module keeps its class (so transformers still records its logits) under
    a subclass whose forward adds the bias."""
    router = site.router
    router.bias = torch.nn.Parameter(
        torch.as_tensor(values, dtype=router.weight.dtype,
                        device=router.weight.device))
    base_class = type(router)

    def forward(self, hidden_states):
        hidden_states = hidden_states.reshape(-1, self.weight.shape[1])
        logits = F.linear(hidden_states, self.weight, self.bias)
        weights, indices = route(layout, logits)
        return logits, weights.to(hidden_states.dtype), indices

    router.__class__ = type("Biased" + base_class.__name__, (base_class,),
                            {"forward": forward})
