// RUN: moe-opt %s | moe-opt | FileCheck %s
// RUN: moe-opt %s --mlir-print-op-generic | moe-opt | FileCheck %s

// CHECK: moe.scope @base path "models/base" format huggingface
moe.scope @base path "models/base" format huggingface
// CHECK: moe.scope @math path "adapters/math" format peft {role = "adapter"}
moe.scope @math path "adapters/math" format peft {role = "adapter"}
// CHECK: moe.scope @protos path "protos.safetensors" format safetensors
moe.scope @protos path "protos.safetensors" format safetensors

// CHECK-LABEL: func.func @weights
func.func @weights() -> (tensor<2x8x4xf32>, tensor<8x4xf32>, tensor<2x4xf32>, tensor<2x4xf32>, tensor<2x4xf32>, tensor<2x4xf32>, tensor<3x4xf32>) {
  // CHECK: %[[A:.*]] = moe.param @base::"model.layers.0.mlp.up_proj.weight" : tensor<8x4xf32>
  %a = moe.param @base::"model.layers.0.mlp.up_proj.weight" : tensor<8x4xf32>
  // CHECK: %[[B:.*]] = moe.param @math::"key with \22quotes\22" : tensor<8x4xf32>
  %b = moe.param @math::"key with \"quotes\"" : tensor<8x4xf32>
  // CHECK: moe.param @protos::"prototypes"[1] : tensor<2x4xf32>
  %p = moe.param @protos::"prototypes"[1] : tensor<2x4xf32>
  // CHECK: moe.stack %[[A]], %[[B]] : tensor<8x4xf32>, tensor<8x4xf32> -> tensor<2x8x4xf32>
  %s = moe.stack %a, %b : tensor<8x4xf32>, tensor<8x4xf32> -> tensor<2x8x4xf32>
  // CHECK: moe.average %[[A]], %[[B]] : tensor<8x4xf32>, tensor<8x4xf32> -> tensor<8x4xf32>
  %m = moe.average %a, %b : tensor<8x4xf32>, tensor<8x4xf32> -> tensor<8x4xf32>
  // CHECK: moe.random_normal seed 7 mean 0.000000e+00 std 2.000000e-02 : tensor<2x4xf32>
  %n = moe.random_normal seed 7 mean 0.0 std 0.02 : tensor<2x4xf32>
  // CHECK: moe.random_uniform seed 3 low -5.000000e-01 high 5.000000e-01 : tensor<2x4xf32>
  %u = moe.random_uniform seed 3 low -0.5 high 0.5 : tensor<2x4xf32>
  // CHECK: moe.normalize_rows %{{.*}} : tensor<2x4xf32>
  %r = moe.normalize_rows %p : tensor<2x4xf32>
  // CHECK: moe.embedding_prototypes %[[A]] token_ids [array<i64: 1, 2>, array<i64: 7>, array<i64: 0>] : tensor<8x4xf32> -> tensor<3x4xf32>
  %e = moe.embedding_prototypes %a token_ids [array<i64: 1, 2>, array<i64: 7>, array<i64: 0>] : tensor<8x4xf32> -> tensor<3x4xf32>
  return %s, %m, %n, %u, %r, %p, %e : tensor<2x8x4xf32>, tensor<8x4xf32>, tensor<2x4xf32>, tensor<2x4xf32>, tensor<2x4xf32>, tensor<2x4xf32>, tensor<3x4xf32>
}

// A whole one-layer Llama-style decoder.
// CHECK-LABEL: func.func @decoder
// CHECK-SAME: attributes {moe.architecture = "LlamaForCausalLM", moe.scope = @base}
func.func @decoder(%ids: tensor<?x?xi64>) -> tensor<?x?x32xf32>
    attributes {moe.architecture = "LlamaForCausalLM", moe.scope = @base} {
  %table = moe.param @base::"model.embed_tokens.weight" : tensor<32x16xf32>
  // CHECK: moe.embedding %{{.*}}[%{{.*}}] : tensor<32x16xf32>, tensor<?x?xi64> -> tensor<?x?x16xf32>
  %h0 = moe.embedding %table[%ids] : tensor<32x16xf32>, tensor<?x?xi64> -> tensor<?x?x16xf32>
  %ln = moe.param @base::"model.layers.0.input_layernorm.weight" : tensor<16xf32>
  // CHECK: moe.rms_norm %{{.*}}, %{{.*}} epsilon 9.9999999999999995E-7 {moe.layer = 0 : i64} : tensor<?x?x16xf32>, tensor<16xf32> -> tensor<?x?x16xf32>
  %x = moe.rms_norm %h0, %ln epsilon 1.0e-6 {moe.layer = 0 : i64} : tensor<?x?x16xf32>, tensor<16xf32> -> tensor<?x?x16xf32>
  %wq = moe.param @base::"model.layers.0.self_attn.q_proj.weight" : tensor<16x16xf32>
  %bq = moe.param @base::"model.layers.0.self_attn.q_proj.bias" : tensor<16xf32>
  %wk = moe.param @base::"model.layers.0.self_attn.k_proj.weight" : tensor<8x16xf32>
  %wv = moe.param @base::"model.layers.0.self_attn.v_proj.weight" : tensor<8x16xf32>
  %wo = moe.param @base::"model.layers.0.self_attn.o_proj.weight" : tensor<16x16xf32>
  // CHECK: moe.linear %{{.*}}, %{{.*}} bias %{{.*}} : (tensor<?x?x16xf32>, tensor<16x16xf32>, tensor<16xf32>) -> tensor<?x?x16xf32>
  %q = moe.linear %x, %wq bias %bq : (tensor<?x?x16xf32>, tensor<16x16xf32>, tensor<16xf32>) -> tensor<?x?x16xf32>
  %k = moe.linear %x, %wk : (tensor<?x?x16xf32>, tensor<8x16xf32>) -> tensor<?x?x8xf32>
  %v = moe.linear %x, %wv : (tensor<?x?x16xf32>, tensor<8x16xf32>) -> tensor<?x?x8xf32>
  // CHECK: moe.attention %{{.*}}, %{{.*}}, %{{.*}} heads 4 kv_heads 2 head_dim 4 rope_theta 1.000000e+04 {rope_scaling = #moe.rope_scaling<kind = llama3, factor = 8.000000e+00, original_max_position = 64>, sliding_window = 32 : i64}
  %att = moe.attention %q, %k, %v heads 4 kv_heads 2 head_dim 4 rope_theta 10000.0
      {rope_scaling = #moe.rope_scaling<kind = llama3, factor = 8.0, original_max_position = 64>, sliding_window = 32 : i64}
      : (tensor<?x?x16xf32>, tensor<?x?x8xf32>, tensor<?x?x8xf32>) -> tensor<?x?x16xf32>
  %o = moe.linear %att, %wo : (tensor<?x?x16xf32>, tensor<16x16xf32>) -> tensor<?x?x16xf32>
  %h1 = arith.addf %h0, %o : tensor<?x?x16xf32>
  %wg = moe.param @base::"model.layers.0.mlp.gate_proj.weight" : tensor<24x16xf32>
  %wu = moe.param @base::"model.layers.0.mlp.up_proj.weight" : tensor<24x16xf32>
  %wd = moe.param @base::"model.layers.0.mlp.down_proj.weight" : tensor<16x24xf32>
  // CHECK: moe.ffn %{{.*}} gate %{{.*}} up %{{.*}} down %{{.*}} activation silu :
  %f = moe.ffn %h1 gate %wg up %wu down %wd activation silu : (tensor<?x?x16xf32>, tensor<24x16xf32>, tensor<24x16xf32>, tensor<16x24xf32>) -> tensor<?x?x16xf32>
  %h2 = arith.addf %h1, %f : tensor<?x?x16xf32>
  // CHECK: moe.scale %{{.*}} by 5.000000e-01 : tensor<?x?x16xf32>
  %h3 = moe.scale %h2 by 0.5 : tensor<?x?x16xf32>
  %fn = moe.param @base::"model.norm.weight" : tensor<16xf32>
  %fb = moe.param @base::"model.norm.bias" : tensor<16xf32>
  // CHECK: moe.layer_norm %{{.*}}, %{{.*}} bias %{{.*}} epsilon 1.000000e-05 : (tensor<?x?x16xf32>, tensor<16xf32>, tensor<16xf32>) -> tensor<?x?x16xf32>
  %hn = moe.layer_norm %h3, %fn bias %fb epsilon 1.0e-5 : (tensor<?x?x16xf32>, tensor<16xf32>, tensor<16xf32>) -> tensor<?x?x16xf32>
  // Tied embeddings: the LM head reads the embedding table.
  %logits = moe.linear %hn, %table : (tensor<?x?x16xf32>, tensor<32x16xf32>) -> tensor<?x?x32xf32>
  return %logits : tensor<?x?x32xf32>
}

// CHECK-LABEL: func.func @decomposed_ffn
func.func @decomposed_ffn(%x: tensor<?x16xf32>, %wg: tensor<24x16xf32>, %wu: tensor<24x16xf32>, %wd: tensor<16x24xf32>, %a: tensor<4x16xf32>, %b: tensor<24x4xf32>, %bu: tensor<24xf32>, %bd: tensor<16xf32>) -> (tensor<?x16xf32>, tensor<?x16xf32>) {
  // CHECK: moe.lora_linear %{{.*}}, %{{.*}} lora(%{{.*}}, %{{.*}}) scale 2.000000e+00 : (tensor<?x16xf32>, tensor<24x16xf32>, tensor<4x16xf32>, tensor<24x4xf32>) -> tensor<?x24xf32>
  %g = moe.lora_linear %x, %wg lora(%a, %b) scale 2.0 : (tensor<?x16xf32>, tensor<24x16xf32>, tensor<4x16xf32>, tensor<24x4xf32>) -> tensor<?x24xf32>
  %u = moe.linear %x, %wu : (tensor<?x16xf32>, tensor<24x16xf32>) -> tensor<?x24xf32>
  // CHECK: moe.glu gelu_tanh(%{{.*}}) * %{{.*}} : tensor<?x24xf32>
  %m = moe.glu gelu_tanh(%g) * %u : tensor<?x24xf32>
  // CHECK: moe.activation relu %{{.*}} : tensor<?x24xf32>
  %r = moe.activation relu %m : tensor<?x24xf32>
  %d = moe.linear %r, %wd : (tensor<?x24xf32>, tensor<16x24xf32>) -> tensor<?x16xf32>
  // CHECK: moe.ffn %{{.*}} up %{{.*}} down %{{.*}} up_bias %{{.*}} down_bias %{{.*}} activation gelu :
  %p = moe.ffn %x up %wu down %wd up_bias %bu down_bias %bd activation gelu : (tensor<?x16xf32>, tensor<24x16xf32>, tensor<16x24xf32>, tensor<24xf32>, tensor<16xf32>) -> tensor<?x16xf32>
  return %d, %p : tensor<?x16xf32>, tensor<?x16xf32>
}

// CHECK-LABEL: func.func @routing
func.func @routing(%x: tensor<?x?x16xf32>, %router: tensor<4x16xf32>, %g: tensor<4x24x16xf32>, %u: tensor<4x24x16xf32>, %d: tensor<4x16x24xf32>, %sg: tensor<8x16xf32>, %su: tensor<8x16xf32>, %sd: tensor<16x8xf32>, %seg: tensor<1x16xf32>) -> (tensor<?x?x16xf32>, tensor<?x?x16xf32>, tensor<?x?x16xf32>) {
  // CHECK: moe.router %{{.*}}, %{{.*}} : (tensor<?x?x16xf32>, tensor<4x16xf32>) -> tensor<?x?x4xf32>
  %logits = moe.router %x, %router : (tensor<?x?x16xf32>, tensor<4x16xf32>) -> tensor<?x?x4xf32>
  // CHECK: moe.topk_gating %{{.*}} k 2 scoring softmax {renormalize} : tensor<?x?x4xf32> -> tensor<?x?x2xf32>, tensor<?x?x2xi64>
  %w, %i = moe.topk_gating %logits k 2 scoring softmax {renormalize} : tensor<?x?x4xf32> -> tensor<?x?x2xf32>, tensor<?x?x2xi64>
  // CHECK: moe.topk_gating %{{.*}} k 1 scoring sigmoid {noise_seed = 5 : i64, noise_std = 1.000000e-01 : f64, score_before_topk = false}
  %w1, %i1 = moe.topk_gating %logits k 1 scoring sigmoid {score_before_topk = false, noise_std = 0.1 : f64, noise_seed = 5 : i64} : tensor<?x?x4xf32> -> tensor<?x?x1xf32>, tensor<?x?x1xi64>
  // CHECK: moe.experts %{{.*}} routed(%{{.*}}, %{{.*}}) gate %{{.*}} up %{{.*}} down %{{.*}} shared_gate %{{.*}} shared_up %{{.*}} shared_down %{{.*}} shared_expert_gate %{{.*}} activation silu :
  %y = moe.experts %x routed(%w, %i) gate %g up %u down %d shared_gate %sg shared_up %su shared_down %sd shared_expert_gate %seg activation silu
      : (tensor<?x?x16xf32>, tensor<?x?x2xf32>, tensor<?x?x2xi64>, tensor<4x24x16xf32>, tensor<4x24x16xf32>, tensor<4x16x24xf32>, tensor<8x16xf32>, tensor<8x16xf32>, tensor<16x8xf32>, tensor<1x16xf32>) -> tensor<?x?x16xf32>
  // CHECK: moe.uniform_gating %{{.*}} experts 4 : tensor<?x?x16xf32> -> tensor<?x?x4xf32>, tensor<?x?x4xi64>
  %uw, %ui = moe.uniform_gating %x experts 4 : tensor<?x?x16xf32> -> tensor<?x?x4xf32>, tensor<?x?x4xi64>
  // CHECK: moe.experts %{{.*}} routed(%{{.*}}, %{{.*}}) up %{{.*}} down %{{.*}} activation relu :
  %z = moe.experts %x routed(%uw, %ui) up %u down %d activation relu
      : (tensor<?x?x16xf32>, tensor<?x?x4xf32>, tensor<?x?x4xi64>, tensor<4x24x16xf32>, tensor<4x16x24xf32>) -> tensor<?x?x16xf32>
  // CHECK: moe.fused_moe %{{.*}} router %{{.*}} gate %{{.*}} up %{{.*}} down %{{.*}} k 2 scoring softmax activation silu {renormalize} :
  %f = moe.fused_moe %x router %router gate %g up %u down %d k 2 scoring softmax activation silu {renormalize}
      : (tensor<?x?x16xf32>, tensor<4x16xf32>, tensor<4x24x16xf32>, tensor<4x24x16xf32>, tensor<4x16x24xf32>) -> tensor<?x?x16xf32>
  return %y, %z, %f : tensor<?x?x16xf32>, tensor<?x?x16xf32>, tensor<?x?x16xf32>
}

// CHECK-LABEL: func.func @routed_projections
func.func @routed_projections(%x: tensor<?x16xf32>, %w: tensor<?x2xf32>, %i: tensor<?x2xi64>, %stack: tensor<3x8x16xf32>, %bias: tensor<3x8xf32>, %base: tensor<8x16xf32>, %router: tensor<2x16xf32>, %a0: tensor<4x16xf32>, %b0: tensor<8x4xf32>, %a1: tensor<2x16xf32>, %b1: tensor<8x2xf32>) -> (tensor<?x8xf32>, tensor<?x8xf32>) {
  // CHECK: moe.routed_linear %{{.*}} routed(%{{.*}}, %{{.*}}), %{{.*}} bias %{{.*}} : (tensor<?x16xf32>, tensor<?x2xf32>, tensor<?x2xi64>, tensor<3x8x16xf32>, tensor<3x8xf32>) -> tensor<?x8xf32>
  %r = moe.routed_linear %x routed(%w, %i), %stack bias %bias : (tensor<?x16xf32>, tensor<?x2xf32>, tensor<?x2xi64>, tensor<3x8x16xf32>, tensor<3x8xf32>) -> tensor<?x8xf32>
  // CHECK: moe.mixture_of_lora %{{.*}}, %{{.*}} router %{{.*}} lora_a(%{{.*}}, %{{.*}}) lora_b(%{{.*}}, %{{.*}}) scales [2.000000e+00, 1.000000e+00] normalization sigmoid {top_k = 1 : i64} :
  %m = moe.mixture_of_lora %x, %base router %router lora_a(%a0, %a1) lora_b(%b0, %b1) scales [2.0, 1.0] normalization sigmoid {top_k = 1 : i64}
      : (tensor<?x16xf32>, tensor<8x16xf32>, tensor<2x16xf32>, tensor<4x16xf32>, tensor<2x16xf32>, tensor<8x4xf32>, tensor<8x2xf32>) -> tensor<?x8xf32>
  return %r, %m : tensor<?x8xf32>, tensor<?x8xf32>
}
