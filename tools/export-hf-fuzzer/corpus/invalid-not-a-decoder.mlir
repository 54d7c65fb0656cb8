// Input of export-hf-errors.test: a routed model function that is not a
// decoder (no norms, no attention).
moe.scope @base path "models/base" format huggingface
moe.scope @math path "models/math" format huggingface

func.func @mix(%ids: tensor<?x?xi64>) -> tensor<?x?x32xf32> attributes {moe.scope = @base} {
  %table = moe.param @base::"model.embed_tokens.weight" : tensor<32x16xf32>
  %h = moe.embedding %table[%ids] : tensor<32x16xf32>, tensor<?x?xi64> -> tensor<?x?x16xf32>
  %router = moe.random_normal seed 0 mean 0.0 std 0.02 : tensor<2x16xf32>
  %logits = moe.router %h, %router : (tensor<?x?x16xf32>, tensor<2x16xf32>) -> tensor<?x?x2xf32>
  %w, %i = moe.topk_gating %logits k 1 scoring softmax {renormalize} : tensor<?x?x2xf32> -> tensor<?x?x1xf32>, tensor<?x?x1xi64>
  %u0 = moe.param @base::"model.layers.0.mlp.up_proj.weight" : tensor<24x16xf32>
  %u1 = moe.param @math::"model.layers.0.mlp.up_proj.weight" : tensor<24x16xf32>
  %d0 = moe.param @base::"model.layers.0.mlp.down_proj.weight" : tensor<16x24xf32>
  %d1 = moe.param @math::"model.layers.0.mlp.down_proj.weight" : tensor<16x24xf32>
  %us = moe.stack %u0, %u1 : tensor<24x16xf32>, tensor<24x16xf32> -> tensor<2x24x16xf32>
  %ds = moe.stack %d0, %d1 : tensor<16x24xf32>, tensor<16x24xf32> -> tensor<2x16x24xf32>
  %f = moe.experts %h routed(%w, %i) up %us down %ds activation relu {moe.layer = 0 : i64}
      : (tensor<?x?x16xf32>, tensor<?x?x1xf32>, tensor<?x?x1xi64>, tensor<2x24x16xf32>, tensor<2x16x24xf32>) -> tensor<?x?x16xf32>
  %r = arith.addf %h, %f : tensor<?x?x16xf32>
  %logits_out = moe.linear %r, %table : (tensor<?x?x16xf32>, tensor<32x16xf32>) -> tensor<?x?x32xf32>
  return %logits_out : tensor<?x?x32xf32>
}
