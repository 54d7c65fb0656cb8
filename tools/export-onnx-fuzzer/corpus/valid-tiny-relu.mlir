// onnx-tiny.mlir of the export tests over the fuzzer's base checkpoint.
moe.scope @w.ckpt path "base" format safetensors
func.func @tiny(%ids: tensor<?x?xi64>) -> tensor<?x?x32xf32> attributes {moe.scope = @w.ckpt} {
  %table = moe.param @w.ckpt::"model.embed_tokens.weight" : tensor<32x8xf32>
  %lnw = moe.param @w.ckpt::"model.layers.0.input_layernorm.weight" : tensor<8xf32>
  %lnb = moe.param @w.ckpt::"model.layers.0.post_attention_layernorm.weight" : tensor<8xf32>
  %router = moe.param @w.ckpt::"model.layers.0.self_attn.k_proj.weight" : tensor<4x8xf32>
  %g = moe.param @w.ckpt::"model.layers.0.mlp.gate_proj.weight" : tensor<16x8xf32>
  %u = moe.param @w.ckpt::"model.layers.0.mlp.up_proj.weight" : tensor<16x8xf32>
  %d = moe.param @w.ckpt::"model.layers.0.mlp.down_proj.weight" : tensor<8x16xf32>
  %gate = moe.stack %g, %u, %g, %u : tensor<16x8xf32>, tensor<16x8xf32>, tensor<16x8xf32>, tensor<16x8xf32> -> tensor<4x16x8xf32>
  %up = moe.stack %u, %g, %u, %g : tensor<16x8xf32>, tensor<16x8xf32>, tensor<16x8xf32>, tensor<16x8xf32> -> tensor<4x16x8xf32>
  %down = moe.stack %d, %d, %d, %d : tensor<8x16xf32>, tensor<8x16xf32>, tensor<8x16xf32>, tensor<8x16xf32> -> tensor<4x8x16xf32>
  %head = moe.param @w.ckpt::"lm_head.weight" : tensor<32x8xf32>
  %h = moe.embedding %table[%ids] : tensor<32x8xf32>, tensor<?x?xi64> -> tensor<?x?x8xf32>
  %a = moe.activation gelu_tanh %h : tensor<?x?x8xf32>
  %n = moe.layer_norm %a, %lnw bias %lnb epsilon 1.0e-05 : (tensor<?x?x8xf32>, tensor<8xf32>, tensor<8xf32>) -> tensor<?x?x8xf32>
  %l = moe.router %n, %router : (tensor<?x?x8xf32>, tensor<4x8xf32>) -> tensor<?x?x4xf32>
  %w, %i = moe.topk_gating %l k 2 scoring softmax : tensor<?x?x4xf32> -> tensor<?x?x2xf32>, tensor<?x?x2xi64>
  %e = moe.experts %n routed(%w, %i)  up %up down %down activation relu {moe.layer = 0 : i64} : (tensor<?x?x8xf32>, tensor<?x?x2xf32>, tensor<?x?x2xi64>, tensor<4x16x8xf32>, tensor<4x8x16xf32>) -> tensor<?x?x8xf32>
  %r = arith.addf %h, %e : tensor<?x?x8xf32>
  %o = moe.linear %r, %head : (tensor<?x?x8xf32>, tensor<32x8xf32>) -> tensor<?x?x32xf32>
  return %o : tensor<?x?x32xf32>
}
