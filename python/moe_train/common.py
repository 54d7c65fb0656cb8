"""What the command lines need before torch is imported: the MoE layouts
and the names of their routers, the trainable parts, the errors."""

# model_type -> (attribute of the decoder layer holding the sparse block,
# attribute of the block holding the router)
FAMILIES = {
    "mixtral": ("mlp", "gate"),
    "qwen2_moe": ("mlp", "gate"),
    "granitemoe": ("block_sparse_moe", "router"),
}
SUPPORTED = "MixtralForCausalLM, Qwen2MoeForCausalLM or GraniteMoeForCausalLM"

# The keys `moe-mix-experts router=given` reads for the FFN router of a
# layer, whatever the exported architecture (the Mixtral names).
GIVEN_WEIGHT = "model.layers.{}.block_sparse_moe.gate.weight"
GIVEN_BIAS = "model.layers.{}.block_sparse_moe.gate.bias"
GIVEN_SHARED_GATE = "model.layers.{}.mlp.shared_expert_gate.weight"

# Groups of parameters --train can name.
PARTS = ("router", "shared-expert-gate", "experts", "attention")


class NoRouters(Exception):
    """The model is not one of the MoE layouts above."""


class TrainError(Exception):
    """A user-facing training failure (the message names the cause)."""


def resolve_device(name):
    """The torch device that --device NAME (cpu, cuda, cuda:N or auto)
    means here; a ValueError naming the option when it cannot be used."""
    import torch
    if name == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise ValueError(f"--device {name}: no CUDA device is available")
    if name != "cpu" and not name.startswith("cuda"):
        raise ValueError(f"--device {name}: expected cpu, cuda, cuda:N or auto")
    return name
