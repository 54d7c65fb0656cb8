// A tiny routed model over the tensors of onnx_tiny_reference.py, for the
// ONNX export tests of expert activations no Hugging Face fixture has. The
// RUN lines replace @ACT@ (the expert activation), @GATE@ (empty, or
// "gate %gate" for gated experts) and @ROUTING@ (the gating attributes).
moe.scope @w.ckpt path "tiny.safetensors" format safetensors
func.func @tiny(%ids: tensor<?x?xi64>) -> tensor<?x?x16xf32> attributes {moe.scope = @w.ckpt} {
  %table = moe.param @w.ckpt::"table" : tensor<16x8xf32>
  %lnw = moe.param @w.ckpt::"ln_weight" : tensor<8xf32>
  %lnb = moe.param @w.ckpt::"ln_bias" : tensor<8xf32>
  %router = moe.param @w.ckpt::"router" : tensor<4x8xf32>
  %gate = moe.param @w.ckpt::"gate" : tensor<4x12x8xf32>
  %up = moe.param @w.ckpt::"up" : tensor<4x12x8xf32>
  %down = moe.param @w.ckpt::"down" : tensor<4x8x12xf32>
  %head = moe.param @w.ckpt::"head" : tensor<16x8xf32>
  %h = moe.embedding %table[%ids] : tensor<16x8xf32>, tensor<?x?xi64> -> tensor<?x?x8xf32>
  %a = moe.activation gelu_tanh %h : tensor<?x?x8xf32>
  %n = moe.layer_norm %a, %lnw bias %lnb epsilon 1.0e-05 : (tensor<?x?x8xf32>, tensor<8xf32>, tensor<8xf32>) -> tensor<?x?x8xf32>
  %l = moe.router %n, %router : (tensor<?x?x8xf32>, tensor<4x8xf32>) -> tensor<?x?x4xf32>
  %w, %i = moe.topk_gating %l k 2 @ROUTING@ : tensor<?x?x4xf32> -> tensor<?x?x2xf32>, tensor<?x?x2xi64>
  %e = moe.experts %n routed(%w, %i) @GATE@ up %up down %down activation @ACT@ {moe.layer = 0 : i64} : (tensor<?x?x8xf32>, tensor<?x?x2xf32>, tensor<?x?x2xi64>, @GATE_TYPE@tensor<4x12x8xf32>, tensor<4x8x12xf32>) -> tensor<?x?x8xf32>
  %r = arith.addf %h, %e : tensor<?x?x8xf32>
  %o = moe.linear %r, %head : (tensor<?x?x8xf32>, tensor<16x8xf32>) -> tensor<?x?x16xf32>
  return %o : tensor<?x?x16xf32>
}
