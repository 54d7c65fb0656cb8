"""Writes the checkpoints of decompose-experts.mlir into DIR/models/{base,math}:
a one-layer model whose expert differs from the base by an exact rank-2 update
in q_proj, a full-rank one in up_proj, and not at all elsewhere."""

import sys

import numpy as np
from safetensors.numpy import save_file

SHAPES = {
    "model.embed_tokens.weight": (16, 8),
    "model.layers.0.input_layernorm.weight": (8,),
    "model.layers.0.self_attn.q_proj.weight": (8, 8),
    "model.layers.0.self_attn.k_proj.weight": (4, 8),
    "model.layers.0.self_attn.v_proj.weight": (4, 8),
    "model.layers.0.self_attn.o_proj.weight": (8, 8),
    "model.layers.0.post_attention_layernorm.weight": (8,),
    "model.layers.0.mlp.gate_proj.weight": (12, 8),
    "model.layers.0.mlp.up_proj.weight": (12, 8),
    "model.layers.0.mlp.down_proj.weight": (8, 12),
    "model.norm.weight": (8,),
}


def main(root):
    rng = np.random.default_rng(0)
    base = {k: rng.standard_normal(s).astype(np.float32) for k, s in SHAPES.items()}
    expert = dict(base)
    q = "model.layers.0.self_attn.q_proj.weight"
    expert[q] = base[q] + rng.standard_normal((8, 2)) @ rng.standard_normal((2, 8))
    up = "model.layers.0.mlp.up_proj.weight"
    expert[up] = base[up] + rng.standard_normal((12, 8))
    for name, tensors in (("base", base), ("math", expert)):
        save_file({k: np.ascontiguousarray(v, np.float32) for k, v in tensors.items()},
                  f"{root}/models/{name}/model.safetensors")


if __name__ == "__main__":
    main(sys.argv[1])
