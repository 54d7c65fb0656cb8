"""An independent PyTorch reference of the mixes moe makes (see README.md).

It shares no code with the compiler: the mixed models are built from the
original dense Hugging Face models with transformers (and the adapters'
safetensors), and only the routing is written here, from the documented
semantics of ``moe-mix-experts`` and ``moe-mix-adapters``.
"""

from .adapters import (AdaptersMix, adapters_logits, adapters_router_weights,
                       build_adapters_mix, read_adapter)
from .experts import ExpertsMix, build_experts_mix, experts_logits, experts_router_weights
from .models import load_model, logits_of, parse_ids
from .rng import normal_at, random_normal, random_uniform, uniform_at

__all__ = [
    "AdaptersMix", "ExpertsMix", "adapters_logits", "adapters_router_weights",
    "build_adapters_mix", "build_experts_mix", "experts_logits", "experts_router_weights",
    "load_model", "logits_of", "normal_at", "parse_ids", "random_normal", "random_uniform",
    "read_adapter", "uniform_at",
]
