// Two functions, the model's moe.scope attribute misspelt: found by the
// fuzzer (the name of an int64 constant holding INT64_MIN negated it);
// exports.
module {
  moe.scope @base.ckpt path "base" format huggingface
  func.func @other(%arg0: tensor<?x?xi64>) -> tensor<?x?xi64> attributes {moe.scope = @base.ckpt} {
    return %arg0 : tensor<?x?xi64>
  }
  func.func @mix(%arg0: tensor<?x?xi64> {moe.name = "input_ids"}) -> tensor<?x?x32xf32> attributes {moe.architecture = "LlamaForCausalLM", msep.cooe = @base.ckpt} {
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
    %22 = moe.embedding %0[%arg0] : tensor<32x8xf32>, tensor<?x?xi64> -> tensor<?x?x8xf32>
    %23 = moe.rms_norm %22, %1 epsilon 9.9999999999999995E-7 {moe.layer = 0 : i64} : tensor<?x?x8xf32>, tensor<8xf32> -> tensor<?x?x8xf32>
    %24 = moe.linear %23, %2 {moe.layer = 0 : i64} : (tensor<?x?x8xf32>, tensor<8x8xf32>) -> tensor<?x?x8xf32>
    %25 = moe.linear %23, %3 {moe.layer = 0 : i64} : (tensor<?x?x8xf32>, tensor<4x8xf32>) -> tensor<?x?x4xf32>
    %26 = moe.linear %23, %4 {moe.layer = 0 : i64} : (tensor<?x?x8xf32>, tensor<4x8xf32>) -> tensor<?x?x4xf32>
    %27 = moe.attention %24, %25, %26 heads 2 kv_heads 1 head_dim 4 rope_theta 1.000000e+04 {moe.layer = 0 : i64} : (tensor<?x?x8xf32>, tensor<?x?x4xf32>, tensor<?x?x4xf32>) -> tensor<?x?x8xf32>
    %28 = moe.linear %27, %5 {moe.layer = 0 : i64} : (tensor<?x?x8xf32>, tensor<8x8xf32>) -> tensor<?x?x8xf32>
    %29 = arith.addf %22, %28 {moe.layer = 0 : i64} : tensor<?x?x8xf32>
    %30 = moe.rms_norm %29, %6 epsilon 9.9999999999999995E-7 {moe.layer = 0 : i64} : tensor<?x?x8xf32>, tensor<8xf32> -> tensor<?x?x8xf32>
    %32 = moe.ffn %30 gate %7 up %8 down %9 activation silu {moe.layer = 0 : i64} : (tensor<?x?x8xf32>, tensor<16x8xf32>, tensor<16x8xf32>, tensor<8x16xf32>) -> tensor<?x?x8xf32>
    %33 = arith.addf %29, %32 {moe.layer = 0 : i64} : tensor<?x?x8xf32>
    %34 = moe.rms_norm %33, %10 epsilon 9.9999999999999995E-7 : tensor<?x?x8xf32>, tensor<8xf32> -> tensor<?x?x8xf32>
    %35 = moe.linear %34, %11 : (tensor<?x?x8xf32>, tensor<32x8xf32>) -> tensor<?x?x32xf32>
    return %35 : tensor<?x?x32xf32>
  }
}

