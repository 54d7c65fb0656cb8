module {
  moe.scope @base.ckpt path "base" format huggingface
  func.func @base(%arg0: tensor<?x?xi64> {moe.name = "input_ids"}) -> tensor<?x?x32xf32> attributes {moe.architecture = "LlamaForCausalLM", moe.scope = @base.ckpt} {
    %0 = moe.param @base.ckpt::"model.embed_tokens.weight" : tensor<32x8xf32>
    %1 = moe.embedding %0[%arg0] : tensor<32x8xf32>, tensor<?x?xi64> -> tensor<?x?x8xf32>
    %2 = moe.param @base.ckpt::"model.layers.0.input_layernorm.weight" : tensor<8xf32>
    %3 = moe.rms_norm %1, %2 epsilon 9.9999999999999995E-7 {moe.layer = 0 : i64} : tensor<?x?x8xf32>, tensor<8xf32> -> tensor<?x?x8xf32>
    %4 = moe.param @base.ckpt::"model.layers.0.self_attn.q_proj.weight" : tensor<8x8xf32>
    %5 = moe.linear %3, %4 {moe.layer = 0 : i64} : (tensor<?x?x8xf32>, tensor<8x8xf32>) -> tensor<?x?x8xf32>
    %6 = moe.param @base.ckpt::"model.layers.0.self_attn.k_proj.weight" : tensor<4x8xf32>
    %7 = moe.linear %3, %6 {moe.layer = 0 : i64} : (tensor<?x?x8xf32>, tensor<4x8xf32>) -> tensor<?x?x4xf32>
    %8 = moe.param @base.ckpt::"model.layers.0.self_attn.v_proj.weight" : tensor<4x8xf32>
    %9 = moe.linear %3, %8 {moe.layer = 0 : i64} : (tensor<?x?x8xf32>, tensor<4x8xf32>) -> tensor<?x?x4xf32>
    %10 = moe.attention %5, %7, %9 heads 2 kv_heads 1 head_dim 4 rope_theta 1.000000e+04 {moe.layer = 0 : i64} : (tensor<?x?x8xf32>, tensor<?x?x4xf32>, tensor<?x?x4xf32>) -> tensor<?x?x8xf32>
    %11 = moe.param @base.ckpt::"model.layers.0.self_attn.o_proj.weight" : tensor<8x8xf32>
    %12 = moe.linear %10, %11 {moe.layer = 0 : i64} : (tensor<?x?x8xf32>, tensor<8x8xf32>) -> tensor<?x?x8xf32>
    %13 = arith.addf %1, %12 {moe.layer = 0 : i64} : tensor<?x?x8xf32>
    %14 = moe.param @base.ckpt::"model.layers.0.post_attention_layernorm.weight" : tensor<8xf32>
    %15 = moe.rms_norm %13, %14 epsilon 9.9999999999999995E-7 {moe.layer = 0 : i64} : tensor<?x?x8xf32>, tensor<8xf32> -> tensor<?x?x8xf32>
    %16 = moe.param @base.ckpt::"model.layers.0.mlp.gate_proj.weight" : tensor<16x8xf32>
    %17 = moe.param @base.ckpt::"model.layers.0.mlp.up_proj.weight" : tensor<16x8xf32>
    %18 = moe.param @base.ckpt::"model.layers.0.mlp.down_proj.weight" : tensor<8x16xf32>
    %19 = moe.ffn %15 gate %16 up %17 down %18 activation silu {moe.layer = 0 : i64} : (tensor<?x?x8xf32>, tensor<16x8xf32>, tensor<16x8xf32>, tensor<8x16xf32>) -> tensor<?x?x8xf32>
    %20 = arith.addf %13, %19 {moe.layer = 0 : i64} : tensor<?x?x8xf32>
    %21 = moe.param @base.ckpt::"model.norm.weight" : tensor<8xf32>
    %22 = moe.rms_norm %20, %21 epsilon 9.9999999999999995E-7 : tensor<?x?x8xf32>, tensor<8xf32> -> tensor<?x?x8xf32>
    %23 = moe.param @base.ckpt::"lm_head.weight" : tensor<32x8xf32>
    %24 = moe.linear %22, %23 : (tensor<?x?x8xf32>, tensor<32x8xf32>) -> tensor<?x?x32xf32>
    return %24 : tensor<?x?x32xf32>
  }
}
