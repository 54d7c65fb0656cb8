module {
  moe.scope @base.ckpt path "base" format huggingface
  moe.scope @math.ckpt path "base" format huggingface
  moe.scope @code.ckpt path "base" format huggingface
  func.func private @mix.weights() -> (tensor<32x8xf32>, tensor<8xf32>, tensor<8x8xf32>, tensor<4x8xf32>, tensor<4x8xf32>, tensor<8x8xf32>, tensor<8xf32>, tensor<8xf32>, tensor<32x8xf32>, tensor<3x16x8xf32>, tensor<3x16x8xf32>, tensor<3x8x16xf32>, tensor<3x8xf32>) {
    %0 = moe.param @base.ckpt::"model.embed_tokens.weight" : tensor<32x8xf32>
    %1 = moe.param @base.ckpt::"model.layers.0.input_layernorm.weight" : tensor<8xf32>
    %2 = moe.param @base.ckpt::"model.layers.0.self_attn.q_proj.weight" : tensor<8x8xf32>
    %3 = moe.param @base.ckpt::"model.layers.0.self_attn.k_proj.weight" : tensor<4x8xf32>
    %4 = moe.param @base.ckpt::"model.layers.0.self_attn.v_proj.weight" : tensor<4x8xf32>
    %5 = moe.param @base.ckpt::"model.layers.0.self_attn.o_proj.weight" : tensor<8x8xf32>
    %6 = moe.param @base.ckpt::"model.layers.0.post_attention_layernorm.weight" : tensor<8xf32>
    %7 = moe.param @base.ckpt::"model.layers.0.mlp.gate_proj.weight" : tensor<16x8xf32>
    %8 = moe.param @base.ckpt::"model.layers.0.mlp.up_proj.weight" : tensor<16x8xf32>
    %9 = moe.param @base.ckpt::"model.layers.0.mlp.down_proj.weight" : tensor<8x16xf32>
    %10 = moe.param @base.ckpt::"model.norm.weight" : tensor<8xf32>
    %11 = moe.param @base.ckpt::"lm_head.weight" : tensor<32x8xf32>
    %12 = moe.param @math.ckpt::"model.layers.0.mlp.gate_proj.weight" : tensor<16x8xf32>
    %13 = moe.param @code.ckpt::"model.layers.0.mlp.gate_proj.weight" : tensor<16x8xf32>
    %14 = moe.stack %7, %12, %13 : tensor<16x8xf32>, tensor<16x8xf32>, tensor<16x8xf32> -> tensor<3x16x8xf32>
    %15 = moe.param @math.ckpt::"model.layers.0.mlp.up_proj.weight" : tensor<16x8xf32>
    %16 = moe.param @code.ckpt::"model.layers.0.mlp.up_proj.weight" : tensor<16x8xf32>
    %17 = moe.stack %8, %15, %16 : tensor<16x8xf32>, tensor<16x8xf32>, tensor<16x8xf32> -> tensor<3x16x8xf32>
    %18 = moe.param @math.ckpt::"model.layers.0.mlp.down_proj.weight" : tensor<8x16xf32>
    %19 = moe.param @code.ckpt::"model.layers.0.mlp.down_proj.weight" : tensor<8x16xf32>
    %20 = moe.stack %9, %18, %19 : tensor<8x16xf32>, tensor<8x16xf32>, tensor<8x16xf32> -> tensor<3x8x16xf32>
    %21 = moe.random_normal seed 0 mean 0.000000e+00 std 2.000000e-02 : tensor<3x8xf32>
    return %0, %1, %2, %3, %4, %5, %6, %10, %11, %14, %17, %20, %21 : tensor<32x8xf32>, tensor<8xf32>, tensor<8x8xf32>, tensor<4x8xf32>, tensor<4x8xf32>, tensor<8x8xf32>, tensor<8xf32>, tensor<8xf32>, tensor<32x8xf32>, tensor<3x16x8xf32>, tensor<3x16x8xf32>, tensor<3x8x16xf32>, tensor<3x8xf32>
  }
  func.func @mix(%arg0: tensor<?x?xi64> {moe.name = "input_ids"}, %arg1: tensor<32x8xf32> {moe.weight = 0 : i64}, %arg2: tensor<8xf32> {moe.weight = 1 : i64}, %arg3: tensor<8x8xf32> {moe.weight = 2 : i64}, %arg4: tensor<4x8xf32> {moe.weight = 3 : i64}, %arg5: tensor<4x8xf32> {moe.weight = 4 : i64}, %arg6: tensor<8x8xf32> {moe.weight = 5 : i64}, %arg7: tensor<8xf32> {moe.weight = 6 : i64}, %arg8: tensor<8xf32> {moe.weight = 7 : i64}, %arg9: tensor<32x8xf32> {moe.weight = 8 : i64}, %arg10: tensor<3x16x8xf32> {moe.weight = 9 : i64}, %arg11: tensor<3x16x8xf32> {moe.weight = 10 : i64}, %arg12: tensor<3x8x16xf32> {moe.weight = 11 : i64}, %arg13: tensor<3x8xf32> {moe.weight = 12 : i64}) -> tensor<?x?x32xf32> attributes {moe.architecture = "LlamaForCausalLM", moe.scope = @base.ckpt, moe.weights = @mix.weights} {
    %0 = moe.embedding %arg1[%arg0] : tensor<32x8xf32>, tensor<?x?xi64> -> tensor<?x?x8xf32>
    %1 = moe.rms_norm %0, %arg2 epsilon 9.9999999999999995E-7 {moe.layer = 0 : i64} : tensor<?x?x8xf32>, tensor<8xf32> -> tensor<?x?x8xf32>
    %2 = moe.linear %1, %arg3 {moe.layer = 0 : i64} : (tensor<?x?x8xf32>, tensor<8x8xf32>) -> tensor<?x?x8xf32>
    %3 = moe.linear %1, %arg4 {moe.layer = 0 : i64} : (tensor<?x?x8xf32>, tensor<4x8xf32>) -> tensor<?x?x4xf32>
    %4 = moe.linear %1, %arg5 {moe.layer = 0 : i64} : (tensor<?x?x8xf32>, tensor<4x8xf32>) -> tensor<?x?x4xf32>
    %5 = moe.attention %2, %3, %4 heads 2 kv_heads 1 head_dim 4 rope_theta 1.000000e+04 {moe.layer = 0 : i64} : (tensor<?x?x8xf32>, tensor<?x?x4xf32>, tensor<?x?x4xf32>) -> tensor<?x?x8xf32>
    %6 = moe.linear %5, %arg6 {moe.layer = 0 : i64} : (tensor<?x?x8xf32>, tensor<8x8xf32>) -> tensor<?x?x8xf32>
    %7 = arith.addf %0, %6 {moe.layer = 0 : i64} : tensor<?x?x8xf32>
    %8 = moe.rms_norm %7, %arg7 epsilon 9.9999999999999995E-7 {moe.layer = 0 : i64} : tensor<?x?x8xf32>, tensor<8xf32> -> tensor<?x?x8xf32>
    %9 = moe.router %8, %arg13 {moe.layer = 0 : i64} : (tensor<?x?x8xf32>, tensor<3x8xf32>) -> tensor<?x?x3xf32>
    %weights, %indices = moe.topk_gating %9 k 2 scoring softmax {moe.layer = 0 : i64, renormalize} : tensor<?x?x3xf32> -> tensor<?x?x2xf32>, tensor<?x?x2xi64>
    %10 = moe.experts %8 routed(%weights, %indices) gate %arg10 up %arg11 down %arg12 activation silu {moe.layer = 0 : i64} : (tensor<?x?x8xf32>, tensor<?x?x2xf32>, tensor<?x?x2xi64>, tensor<3x16x8xf32>, tensor<3x16x8xf32>, tensor<3x8x16xf32>) -> tensor<?x?x8xf32>
    %11 = arith.addf %7, %10 {moe.layer = 0 : i64} : tensor<?x?x8xf32>
    %12 = moe.rms_norm %11, %arg8 epsilon 9.9999999999999995E-7 : tensor<?x?x8xf32>, tensor<8xf32> -> tensor<?x?x8xf32>
    %13 = moe.linear %12, %arg9 : (tensor<?x?x8xf32>, tensor<32x8xf32>) -> tensor<?x?x32xf32>
    return %13 : tensor<?x?x32xf32>
  }
}

