"""Optimum's ONNX export of a Mixtral checkpoint, with the custom config
Optimum documents for architectures it does not support natively.

    bench/optimum/.venv/bin/python bench/optimum/export_mixtral.py HF_DIR OUT_DIR

optimum-onnx 0.1.0 has no ONNX config for `mixtral`: `optimum-cli export
onnx --task text-generation-with-past` refuses it ("Trying to export a
mixtral model, that is a custom or unsupported architecture, ..."). Its
documented way out is `custom_onnx_configs` (of `main_export` and of
`onnx_export_from_model`, used here on a model loaded first). This script
passes the config Optimum itself registers for `qwen3_moe`, the closest
supported MoE decoder: `LlamaOnnxConfig` (input_ids, attention_mask,
position_ids, past_key_values.N.key/value in; logits, present.N.key/value
out) with a model patcher that, while tracing, replaces the sparse MoE
block's forward by a loop over all experts. Without it the trace bakes in
the experts that the dummy inputs happened to hit (transformers' forward
loops over `expert_hit`, a data-dependent list). The patched forward is
Optimum's `qwen3_moe_forward_patched` with `norm_topk_prob` always on,
which is Mixtral's routing (softmax, top-k, renormalised). The model is
loaded with the checkpoint's rope_theta (see main).
"""

import json
import os
import sys

import torch
from optimum.exporters.onnx import onnx_export_from_model
from optimum.exporters.onnx.model_configs import LlamaOnnxConfig
from optimum.exporters.onnx.model_patcher import ModelPatcher
from optimum.utils import NormalizedTextConfigWithGQA
from transformers import MixtralForCausalLM
from transformers.models.mixtral.modeling_mixtral import MixtralSparseMoeBlock


def mixtral_moe_forward_patched(self, hidden_states):
    """transformers 4.57's MixtralSparseMoeBlock.forward, looping over every
    expert instead of the experts hit (as Optimum does for qwen3_moe)."""
    batch_size, sequence_length, hidden_dim = hidden_states.shape
    hidden_states = hidden_states.view(-1, hidden_dim)
    router_logits = self.gate(hidden_states)
    routing_weights = torch.nn.functional.softmax(router_logits, dim=1, dtype=torch.float)
    routing_weights, selected_experts = torch.topk(routing_weights, self.top_k, dim=-1)
    routing_weights /= routing_weights.sum(dim=-1, keepdim=True)
    routing_weights = routing_weights.to(hidden_states.dtype)
    final_hidden_states = torch.zeros((batch_size * sequence_length, hidden_dim),
                                      dtype=hidden_states.dtype, device=hidden_states.device)
    expert_mask = torch.nn.functional.one_hot(
        selected_experts, num_classes=self.num_experts).permute(2, 1, 0)
    for expert_idx in range(self.num_experts):
        idx, top_x = torch.where(expert_mask[expert_idx])
        current_state = hidden_states[None, top_x].reshape(-1, hidden_dim)
        current_hidden_states = (self.experts[expert_idx](current_state)
                                 * routing_weights[top_x, idx, None])
        final_hidden_states.index_add_(0, top_x, current_hidden_states.to(hidden_states.dtype))
    return final_hidden_states.reshape(batch_size, sequence_length, hidden_dim), router_logits


class MixtralModelPatcher(ModelPatcher):
    def __enter__(self):
        super().__enter__()
        self.original_moe_forward = MixtralSparseMoeBlock.forward
        MixtralSparseMoeBlock.forward = mixtral_moe_forward_patched

    def __exit__(self, exc_type, exc_value, traceback):
        super().__exit__(exc_type, exc_value, traceback)
        MixtralSparseMoeBlock.forward = self.original_moe_forward


class MixtralOnnxConfig(LlamaOnnxConfig):
    NORMALIZED_CONFIG_CLASS = NormalizedTextConfigWithGQA
    _MODEL_PATCHER = MixtralModelPatcher


def main():
    hf_dir, out_dir = sys.argv[1:3]
    # transformers 5 writes rope_parameters (as our export does when the base
    # has it); 4.57 ignores that key and would trace Mixtral's default
    # rope_theta (1e6). Pass the checkpoint's own theta.
    with open(os.path.join(hf_dir, "config.json")) as f:
        rope = json.load(f).get("rope_parameters") or {}
    overrides = {"rope_theta": rope["rope_theta"]} if "rope_theta" in rope else {}
    model = MixtralForCausalLM.from_pretrained(hf_dir, dtype=torch.float32, **overrides)
    print(f"rope_theta {model.config.rope_theta}", flush=True)
    onnx_config = MixtralOnnxConfig(model.config, task="text-generation", use_past=True,
                                    use_past_in_inputs=True)
    onnx_export_from_model(model, output=out_dir, task="text-generation-with-past",
                           custom_onnx_configs={"model": onnx_config},
                           do_validation=True, device="cpu")


if __name__ == "__main__":
    main()
