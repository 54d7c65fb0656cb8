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
    %12 = moe.param @math.ckpt::"model.layers.0.self_attn.q_proj.weight" : tensor<8x8xf32>
    %13 = moe.param @code.ckpt::"model.layers.0.self_attn.q_proj.weight" : tensor<8x8xf32>
    %14 = moe.stack %2, %12, %13 : tensor<8x8xf32>, tensor<8x8xf32>, tensor<8x8xf32> -> tensor<3x8x8xf32>
    %15 = moe.random_normal seed 4000 mean 0.000000e+00 std 2.000000e-02 : tensor<3x8xf32>
    %16 = moe.param @math.ckpt::"model.layers.0.self_attn.k_proj.weight" : tensor<4x8xf32>
    %17 = moe.param @code.ckpt::"model.layers.0.self_attn.k_proj.weight" : tensor<4x8xf32>
    %18 = moe.stack %3, %16, %17 : tensor<4x8xf32>, tensor<4x8xf32>, tensor<4x8xf32> -> tensor<3x4x8xf32>
    %19 = moe.random_normal seed 5000 mean 0.000000e+00 std 2.000000e-02 : tensor<3x8xf32>
    %20 = moe.param @math.ckpt::"model.layers.0.self_attn.v_proj.weight" : tensor<4x8xf32>
    %21 = moe.param @code.ckpt::"model.layers.0.self_attn.v_proj.weight" : tensor<4x8xf32>
    %22 = moe.stack %4, %20, %21 : tensor<4x8xf32>, tensor<4x8xf32>, tensor<4x8xf32> -> tensor<3x4x8xf32>
    %23 = moe.random_normal seed 6000 mean 0.000000e+00 std 2.000000e-02 : tensor<3x8xf32>
    %24 = moe.param @math.ckpt::"model.layers.0.mlp.gate_proj.weight" : tensor<16x8xf32>
    %25 = moe.param @code.ckpt::"model.layers.0.mlp.gate_proj.weight" : tensor<16x8xf32>
    %26 = moe.stack %7, %24, %25 : tensor<16x8xf32>, tensor<16x8xf32>, tensor<16x8xf32> -> tensor<3x16x8xf32>
    %27 = moe.param @math.ckpt::"model.layers.0.mlp.up_proj.weight" : tensor<16x8xf32>
    %28 = moe.param @code.ckpt::"model.layers.0.mlp.up_proj.weight" : tensor<16x8xf32>
    %29 = moe.stack %8, %27, %28 : tensor<16x8xf32>, tensor<16x8xf32>, tensor<16x8xf32> -> tensor<3x16x8xf32>
    %30 = moe.param @math.ckpt::"model.layers.0.mlp.down_proj.weight" : tensor<8x16xf32>
    %31 = moe.param @code.ckpt::"model.layers.0.mlp.down_proj.weight" : tensor<8x16xf32>
    %32 = moe.stack %9, %30, %31 : tensor<8x16xf32>, tensor<8x16xf32>, tensor<8x16xf32> -> tensor<3x8x16xf32>
    %33 = moe.random_normal seed 0 mean 0.000000e+00 std 2.000000e-02 : tensor<3x8xf32>
    %34 = moe.embedding %0[%arg0] : tensor<32x8xf32>, tensor<?x?xi64> -> tensor<?x?x8xf32>
    %35 = moe.rms_norm %34, %1 epsilon 9.9999999999999995E-7 {moe.layer = 0 : i64} : tensor<?x?x8xf32>, tensor<8xf32> -> tensor<?x?x8xf32>
    %36 = moe.router %35, %15 {moe.layer = 0 : i64} : (tensor<?x?x8xf32>, tensor<3x8xf32>) -> tensor<?x?x3xf32>
    %weights, %indices = moe.topk_gating %36 k 2 scoring softmax {moe.layer = 0 : i64, renormalize} : tensor<?x?x3xf32> -> tensor<?x?x2xf32>, tensor<?x?x2xi64>
    %37 = moe.routed_linear %35 routed(%weights, %indices), %14 {moe.layer = 0 : i64} : (tensor<?x?x8xf32>, tensor<?x?x2xf32>, tensor<?x?x2xi64>, tensor<3x8x8xf32>) -> tensor<?x?x8xf32>
    %38 = moe.router %35, %19 {moe.layer = 0 : i64} : (tensor<?x?x8xf32>, tensor<3x8xf32>) -> tensor<?x?x3xf32>
    %weights_0, %indices_1 = moe.topk_gating %38 k 2 scoring softmax {moe.layer = 0 : i64, renormalize} : tensor<?x?x3xf32> -> tensor<?x?x2xf32>, tensor<?x?x2xi64>
    %39 = moe.routed_linear %35 routed(%weights_0, %indices_1), %18 {moe.layer = 0 : i64} : (tensor<?x?x8xf32>, tensor<?x?x2xf32>, tensor<?x?x2xi64>, tensor<3x4x8xf32>) -> tensor<?x?x4xf32>
    %40 = moe.router %35, %23 {moe.layer = 0 : i64} : (tensor<?x?x8xf32>, tensor<3x8xf32>) -> tensor<?x?x3xf32>
    %weights_2, %indices_3 = moe.topk_gating %40 k 2 scoring softmax {moe.layer = 0 : i64, renormalize} : tensor<?x?x3xf32> -> tensor<?x?x2xf32>, tensor<?x?x2xi64>
    %41 = moe.routed_linear %35 routed(%weights_2, %indices_3), %22 {moe.layer = 0 : i64} : (tensor<?x?x8xf32>, tensor<?x?x2xf32>, tensor<?x?x2xi64>, tensor<3x4x8xf32>) -> tensor<?x?x4xf32>
    %42 = moe.attention %37, %39, %41 heads 2 kv_heads 1 head_dim 4 rope_theta 1.000000e+04 {moe.layer = 0 : i64} : (tensor<?x?x8xf32>, tensor<?x?x4xf32>, tensor<?x?x4xf32>) -> tensor<?x?x8xf32>
    %43 = moe.linear %42, %5 {moe.layer = 0 : i64} : (tensor<?x?x8xf32>, tensor<8x8xf32>) -> tensor<?x?x8xf32>
    %44 = arith.addf %34, %43 {moe.layer = 0 : i64} : tensor<?x?x8xf32>
    %45 = moe.rms_norm %44, %6 epsilon 9.9999999999999995E-7 {moe.layer = 0 : i64} : tensor<?x?x8xf32>, tensor<8xf32> -> tensor<?x?x8xf32>
    %46 = moe.router %45, %33 {moe.layer = 0 : i64} : (tensor<?x?x8xf32>, tensor<3x8xf32>) -> tensor<?x?x3xf32>
    %weights_4, %indices_5 = moe.topk_gating %46 k 2 scoring softmax {moe.layer = 0 : i64, renormalize} : tensor<?x?x3xf32> -> tensor<?x?x2xf32>, tensor<?x?x2xi64>
    %47 = moe.experts %45 routed(%weights_4, %indices_5) gate %26 up %29 down %32 activation silu {moe.layer = 0 : i64} : (tensor<?x?x8xf32>, tensor<?x?x2xf32>, tensor<?x?x2xi64>, tensor<3x16x8xf32>, tensor<3x16x8xf32>, tensor<3x8x16xf32>) -> tensor<?x?x8xf32>
    %48 = arith.addf %44, %47 {moe.layer = 0 : i64} : tensor<?x?x8xf32>
    %49 = moe.rms_norm %48, %10 epsilon 9.9999999999999995E-7 : tensor<?x?x8xf32>, tensor<8xf32> -> tensor<?x?x8xf32>
    %50 = moe.linear %49, %11 : (tensor<?x?x8xf32>, tensor<32x8xf32>) -> tensor<?x?x32xf32>
    return %50 : tensor<?x?x32xf32>
  }
}

