module {
  moe.scope @base.ckpt path "base" format huggingface
  moe.scope @math.ckpt path "base" format huggingface
  moe.scope @code.ckpt path "base" format huggingface
  func.func @mix(%arg0: tensor<?x?xi64> {moe.name = "input_ids"}) -> tensor<?x?x32xf32> attributes {moe.architecture = "LlamaForCausalLM", moe.scope = @base.ckpt} {
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
    %18 = moe.param @math.ckpt::"model.layers.