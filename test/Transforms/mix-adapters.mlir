// RUN: moe-opt %s --moe-mix-adapters | FileCheck %s
// RUN: moe-opt %s --moe-mix-adapters="normalization=softmax top-k=1 router=zero output=moa keep-sources" | FileCheck %s --check-prefix=SOFTMAX
// RUN: moe-opt %s --moe-mix-adapters="adapters=qv router=uniform-random seed=3" | FileCheck %s --check-prefix=ONE
// RUN: rm -rf %t && mkdir -p %t
// RUN: %stdpython -m moe_testing.write_tensors %t/routers.safetensors model.layers.0.self_attn.q_proj.router.weight=2x8 model.layers.1.self_attn.q_proj.router.weight=2x8 model.layers.0.self_attn.v_proj.router.weight=1x8 model.layers.1.self_attn.v_proj.router.weight=1x8
// RUN: moe-opt %s --moe-mix-adapters="router=given router-weights=%t/routers.safetensors" | FileCheck %s --check-prefix=GIVEN
// RUN: moe-opt %s --moe-mix-adapters --moe-report-params 2>&1 >/dev/null | FileCheck %s --check-prefix=PARAMS --implicit-check-not='see current operation'

// Two adapters: qa adapts q_proj, qv adapts q_proj and v_proj. Every adapted
// layer becomes a mixture over the adapters that adapt it.
// CHECK-NOT: func.func @base
// CHECK-LABEL: func.func @mix
// CHECK-DAG: %[[WQ:.*]] = moe.param @base.ckpt::"model.layers.0.self_attn.q_proj.weight" : tensor<8x8xf32>
// CHECK-DAG: %[[A1:.*]] = moe.param @qa.ckpt::"base_model.model.model.layers.0.self_attn.q_proj.lora_A.weight" : tensor<2x8xf32>
// CHECK-DAG: %[[A2:.*]] = moe.param @qv.ckpt::"base_model.model.model.layers.0.self_attn.q_proj.lora_A.weight" : tensor<2x8xf32>
// CHECK-DAG: %[[B1:.*]] = moe.param @qa.ckpt::"base_model.model.model.layers.0.self_attn.q_proj.lora_B.weight" : tensor<8x2xf32>
// CHECK-DAG: %[[B2:.*]] = moe.param @qv.ckpt::"base_model.model.model.layers.0.self_attn.q_proj.lora_B.weight" : tensor<8x2xf32>
// CHECK-DAG: %[[R:.*]] = moe.random_normal seed 0 mean 0.000000e+00 std 2.000000e-02 : tensor<2x8xf32>
// CHECK: moe.mixture_of_lora %{{.*}}, %[[WQ]] router %[[R]] lora_a(%[[A1]], %[[A2]]) lora_b(%[[B1]], %[[B2]]) scales [2.000000e+00, 2.000000e+00] normalization sigmoid {moe.layer = 0 : i64} : (tensor<?x?x8xf32>, tensor<8x8xf32>, tensor<2x8xf32>, tensor<2x8xf32>, tensor<2x8xf32>, tensor<8x2xf32>, tensor<8x2xf32>) -> tensor<?x?x8xf32>
// CHECK: moe.linear {{.*}}tensor<4x8xf32>
// CHECK: moe.mixture_of_lora {{.*}} lora_a(%{{.*}}) lora_b(%{{.*}}) scales [2.000000e+00] {{.*}}-> tensor<?x?x4xf32>
// CHECK-NOT: moe.lora_linear
// CHECK: return

// SOFTMAX-LABEL: func.func @base
// SOFTMAX-LABEL: func.func @moa
// SOFTMAX: %[[Z:.*]] = arith.constant dense<0.000000e+00> : tensor<2x8xf32>
// SOFTMAX: moe.mixture_of_lora %{{.*}}, %{{.*}} router %[[Z]] {{.*}} normalization softmax {moe.layer = 0 : i64, top_k = 1 : i64}

// ONE-LABEL: func.func @mix
// ONE: moe.random_uniform seed 3 low -0.35355339059327373 high 0.35355339059327373 : tensor<1x8xf32>
// ONE: moe.mixture_of_lora
// ONE: moe.random_uniform seed 4

// GIVEN: moe.scope @adapter_router_weights path "{{.*}}routers.safetensors" format safetensors
// GIVEN: moe.param @adapter_router_weights::"model.layers.0.self_attn.q_proj.router.weight" : tensor<2x8xf32>
// GIVEN: moe.param @adapter_router_weights::"model.layers.0.self_attn.v_proj.router.weight" : tensor<1x8xf32>

// Stem: 552 + dense FFNs 2 x 288; adapters per layer: two q_proj pairs of
// 2 x 8 + 8 x 2 and one v_proj pair of 2 x 8 + 4 x 2; routers 2 x 8 + 1 x 8
// per layer; every adapter is active.
// PARAMS: remark: parameters of 'mix': stem 1128, expert 176, router 48, total 1352, active 1352

moe.scope @base.ckpt path "models/base" format huggingface
moe.scope @qa.ckpt path "models/qa" format peft
moe.scope @qv.ckpt path "models/qv" format peft

func.func @base(%ids: tensor<?x?xi64>) -> tensor<?x?x16xf32> attributes {moe.architecture = "LlamaForCausalLM", moe.scope = @base.ckpt} {
  %table = moe.param @base.ckpt::"model.embed_tokens.weight" : tensor<16x8xf32>
  %h0 = moe.embedding %table[%ids] : tensor<16x8xf32>, tensor<?x?xi64> -> tensor<?x?x8xf32>
  %ln0 = moe.param @base.ckpt::"model.layers.0.input_layernorm.weight" : tensor<8xf32>
  %a0 = moe.rms_norm %h0, %ln0 epsilon 1.0e-5 {moe.layer = 0 : i64} : tensor<?x?x8xf32>, tensor<8xf32> -> tensor<?x?x8xf32>
  %wq0 = moe.param @base.ckpt::"model.layers.0.self_attn.q_proj.weight" : tensor<8x8xf32>
  %q0 = moe.linear %a0, %wq0 {moe.layer = 0 : i64} : (tensor<?x?x8xf32>, tensor<8x8xf32>) -> tensor<?x?x8xf32>
  %wk0 = moe.param @base.ckpt::"model.layers.0.self_attn.k_proj.weight" : tensor<4x8xf32>
  %k0 = moe.linear %a0, %wk0 {moe.layer = 0 : i64} : (tensor<?x?x8xf32>, tensor<4x8xf32>) -> tensor<?x?x4xf32>
  %wv0 = moe.param @base.ckpt::"model.layers.0.self_attn.v_proj.weight" : tensor<4x8xf32>
  %v0 = moe.linear %a0, %wv0 {moe.layer = 0 : i64} : (tensor<?x?x8xf32>, tensor<4x8xf32>) -> tensor<?x?x4xf32>
  %att0 = moe.attention %q0, %k0, %v0 heads 2 kv_heads 1 head_dim 4 rope_theta 10000.0 {moe.layer = 0 : i64} : (tensor<?x?x8xf32>, tensor<?x?x4xf32>, tensor<?x?x4xf32>) -> tensor<?x?x8xf32>
  %wo0 = moe.param @base.ckpt::"model.layers.0.self_attn.o_proj.weight" : tensor<8x8xf32>
  %o0 = moe.linear %att0, %wo0 {moe.layer = 0 : i64} : (tensor<?x?x8xf32>, tensor<8x8xf32>) -> tensor<?x?x8xf32>
  %r0 = arith.addf %h0, %o0 {moe.layer = 0 : i64} : tensor<?x?x8xf32>
  %pn0 = moe.param @base.ckpt::"model.layers.0.post_attention_layernorm.weight" : tensor<8xf32>
  %x0 = moe.rms_norm %r0, %pn0 epsilon 1.0e-5 {moe.layer = 0 : i64} : tensor<?x?x8xf32>, tensor<8xf32> -> tensor<?x?x8xf32>
  %g0 = moe.param @base.ckpt::"model.layers.0.mlp.gate_proj.weight" : tensor<12x8xf32>
  %u0 = moe.param @base.ckpt::"model.layers.0.mlp.up_proj.weight" : tensor<12x8xf32>
  %d0 = moe.param @base.ckpt::"model.layers.0.mlp.down_proj.weight" : tensor<8x12xf32>
  %f0 = moe.ffn %x0 gate %g0 up %u0 down %d0 activation silu {moe.layer = 0 : i64} : (tensor<?x?x8xf32>, tensor<12x8xf32>, tensor<12x8xf32>, tensor<8x12xf32>) -> tensor<?x?x8xf32>
  %h1 = arith.addf %r0, %f0 {moe.layer = 0 : i64} : tensor<?x?x8xf32>
  %ln1 = moe.param @base.ckpt::"model.layers.1.input_layernorm.weight" : tensor<8xf32>
  %a1 = moe.rms_norm %h1, %ln1 epsilon 1.0e-5 {moe.layer = 1 : i64} : tensor<?x?x8xf32>, tensor<8xf32> -> tensor<?x?x8xf32>
  %wq1 = moe.param @base.ckpt::"model.layers.1.self_attn.q_proj.weight" : tensor<8x8xf32>
  %q1 = moe.linear %a1, %wq1 {moe.layer = 1 : i64} : (tensor<?x?x8xf32>, tensor<8x8xf32>) -> tensor<?x?x8xf32>
  %wk1 = moe.param @base.ckpt::"model.layers.1.self_attn.k_proj.weight" : tensor<4x8xf32>
  %k1 = moe.linear %a1, %wk1 {moe.layer = 1 : i64} : (tensor<?x?x8xf32>, tensor<4x8xf32>) -> tensor<?x?x4xf32>
  %wv1 = moe.param @base.ckpt::"model.layers.1.self_attn.v_proj.weight" : tensor<4x8xf32>
  %v1 = moe.linear %a1, %wv1 {moe.layer = 1 : i64} : (tensor<?x?x8xf32>, tensor<4x8xf32>) -> tensor<?x?x4xf32>
  %att1 = moe.attention %q1, %k1, %v1 heads 2 kv_heads 1 head_dim 4 rope_theta 10000.0 {moe.layer = 1 : i64} : (tensor<?x?x8xf32>, tensor<?x?x4xf32>, tensor<?x?x4xf32>) -> tensor<?x?x8xf32>
  %wo1 = moe.param @base.ckpt::"model.layers.1.self_attn.o_proj.weight" : tensor<8x8xf32>
  %o1 = moe.linear %att1, %wo1 {moe.layer = 1 : i64} : (tensor<?x?x8xf32>, tensor<8x8xf32>) -> tensor<?x?x8xf32>
  %r1 = arith.addf %h1, %o1 {moe.layer = 1 : i64} : tensor<?x?x8xf32>
  %pn1 = moe.param @base.ckpt::"model.layers.1.post_attention_layernorm.weight" : tensor<8xf32>
  %x1 = moe.rms_norm %r1, %pn1 epsilon 1.0e-5 {moe.layer = 1 : i64} : tensor<?x?x8xf32>, tensor<8xf32> -> tensor<?x?x8xf32>
  %g1 = moe.param @base.ckpt::"model.layers.1.mlp.gate_proj.weight" : tensor<12x8xf32>
  %u1 = moe.param @base.ckpt::"model.layers.1.mlp.up_proj.weight" : tensor<12x8xf32>
  %d1 = moe.param @base.ckpt::"model.layers.1.mlp.down_proj.weight" : tensor<8x12xf32>
  %f1 = moe.ffn %x1 gate %g1 up %u1 down %d1 activation silu {moe.layer = 1 : i64} : (tensor<?x?x8xf32>, tensor<12x8xf32>, tensor<12x8xf32>, tensor<8x12xf32>) -> tensor<?x?x8xf32>
  %h2 = arith.addf %r1, %f1 {moe.layer = 1 : i64} : tensor<?x?x8xf32>
  %fn = moe.param @base.ckpt::"model.norm.weight" : tensor<8xf32>
  %hn = moe.rms_norm %h2, %fn epsilon 1.0e-5 : tensor<?x?x8xf32>, tensor<8xf32> -> tensor<?x?x8xf32>
  %logits = moe.linear %hn, %table : (tensor<?x?x8xf32>, tensor<16x8xf32>) -> tensor<?x?x16xf32>
  return %logits : tensor<?x?x16xf32>
}

func.func @qa(%ids: tensor<?x?xi64>) -> tensor<?x?x16xf32> attributes {moe.architecture = "LlamaForCausalLM", moe.scope = @qa.ckpt} {
  %table = moe.param @qa.ckpt::"model.embed_tokens.weight" : tensor<16x8xf32>
  %h0 = moe.embedding %table[%ids] : tensor<16x8xf32>, tensor<?x?xi64> -> tensor<?x?x8xf32>
  %ln0 = moe.param @qa.ckpt::"model.layers.0.input_layernorm.weight" : tensor<8xf32>
  %a0 = moe.rms_norm %h0, %ln0 epsilon 1.0e-5 {moe.layer = 0 : i64} : tensor<?x?x8xf32>, tensor<8xf32> -> tensor<?x?x8xf32>
  %wq0 = moe.param @qa.ckpt::"model.layers.0.self_attn.q_proj.weight" : tensor<8x8xf32>
  %laq0 = moe.param @qa.ckpt::"base_model.model.model.layers.0.self_attn.q_proj.lora_A.weight" : tensor<2x8xf32>
  %lbq0 = moe.param @qa.ckpt::"base_model.model.model.layers.0.self_attn.q_proj.lora_B.weight" : tensor<8x2xf32>
  %q0 = moe.lora_linear %a0, %wq0 lora(%laq0, %lbq0) scale 2.0 {moe.layer = 0 : i64} : (tensor<?x?x8xf32>, tensor<8x8xf32>, tensor<2x8xf32>, tensor<8x2xf32>) -> tensor<?x?x8xf32>
  %wk0 = moe.param @qa.ckpt::"model.layers.0.self_attn.k_proj.weight" : tensor<4x8xf32>
  %k0 = moe.linear %a0, %wk0 {moe.layer = 0 : i64} : (tensor<?x?x8xf32>, tensor<4x8xf32>) -> tensor<?x?x4xf32>
  %wv0 = moe.param @qa.ckpt::"model.layers.0.self_attn.v_proj.weight" : tensor<4x8xf32>
  %v0 = moe.linear %a0, %wv0 {moe.layer = 0 : i64} : (tensor<?x?x8xf32>, tensor<4x8xf32>) -> tensor<?x?x4xf32>
  %att0 = moe.attention %q0, %k0, %v0 heads 2 kv_heads 1 head_dim 4 rope_theta 10000.0 {moe.layer = 0 : i64} : (tensor<?x?x8xf32>, tensor<?x?x4xf32>, tensor<?x?x4xf32>) -> tensor<?x?x8xf32>
  %wo0 = moe.param @qa.ckpt::"model.layers.0.self_attn.o_proj.weight" : tensor<8x8xf32>
  %o0 = moe.linear %att0, %wo0 {moe.layer = 0 : i64} : (tensor<?x?x8xf32>, tensor<8x8xf32>) -> tensor<?x?x8xf32>
  %r0 = arith.addf %h0, %o0 {moe.layer = 0 : i64} : tensor<?x?x8xf32>
  %pn0 = moe.param @qa.ckpt::"model.layers.0.post_attention_layernorm.weight" : tensor<8xf32>
  %x0 = moe.rms_norm %r0, %pn0 epsilon 1.0e-5 {moe.layer = 0 : i64} : tensor<?x?x8xf32>, tensor<8xf32> -> tensor<?x?x8xf32>
  %g0 = moe.param @qa.ckpt::"model.layers.0.mlp.gate_proj.weight" : tensor<12x8xf32>
  %u0 = moe.param @qa.ckpt::"model.layers.0.mlp.up_proj.weight" : tensor<12x8xf32>
  %d0 = moe.param @qa.ckpt::"model.layers.0.mlp.down_proj.weight" : tensor<8x12xf32>
  %f0 = moe.ffn %x0 gate %g0 up %u0 down %d0 activation silu {moe.layer = 0 : i64} : (tensor<?x?x8xf32>, tensor<12x8xf32>, tensor<12x8xf32>, tensor<8x12xf32>) -> tensor<?x?x8xf32>
  %h1 = arith.addf %r0, %f0 {moe.layer = 0 : i64} : tensor<?x?x8xf32>
  %ln1 = moe.param @qa.ckpt::"model.layers.1.input_layernorm.weight" : tensor<8xf32>
  %a1 = moe.rms_norm %h1, %ln1 epsilon 1.0e-5 {moe.layer = 1 : i64} : tensor<?x?x8xf32>, tensor<8xf32> -> tensor<?x?x8xf32>
  %wq1 = moe.param @qa.ckpt::"model.layers.1.self_attn.q_proj.weight" : tensor<8x8xf32>
  %laq1 = moe.param @qa.ckpt::"base_model.model.model.layers.1.self_attn.q_proj.lora_A.weight" : tensor<2x8xf32>
  %lbq1 = moe.param @qa.ckpt::"base_model.model.model.layers.1.self_attn.q_proj.lora_B.weight" : tensor<8x2xf32>
  %q1 = moe.lora_linear %a1, %wq1 lora(%laq1, %lbq1) scale 2.0 {moe.layer = 1 : i64} : (tensor<?x?x8xf32>, tensor<8x8xf32>, tensor<2x8xf32>, tensor<8x2xf32>) -> tensor<?x?x8xf32>
  %wk1 = moe.param @qa.ckpt::"model.layers.1.self_attn.k_proj.weight" : tensor<4x8xf32>
  %k1 = moe.linear %a1, %wk1 {moe.layer = 1 : i64} : (tensor<?x?x8xf32>, tensor<4x8xf32>) -> tensor<?x?x4xf32>
  %wv1 = moe.param @qa.ckpt::"model.layers.1.self_attn.v_proj.weight" : tensor<4x8xf32>
  %v1 = moe.linear %a1, %wv1 {moe.layer = 1 : i64} : (tensor<?x?x8xf32>, tensor<4x8xf32>) -> tensor<?x?x4xf32>
  %att1 = moe.attention %q1, %k1, %v1 heads 2 kv_heads 1 head_dim 4 rope_theta 10000.0 {moe.layer = 1 : i64} : (tensor<?x?x8xf32>, tensor<?x?x4xf32>, tensor<?x?x4xf32>) -> tensor<?x?x8xf32>
  %wo1 = moe.param @qa.ckpt::"model.layers.1.self_attn.o_proj.weight" : tensor<8x8xf32>
  %o1 = moe.linear %att1, %wo1 {moe.layer = 1 : i64} : (tensor<?x?x8xf32>, tensor<8x8xf32>) -> tensor<?x?x8xf32>
  %r1 = arith.addf %h1, %o1 {moe.layer = 1 : i64} : tensor<?x?x8xf32>
  %pn1 = moe.param @qa.ckpt::"model.layers.1.post_attention_layernorm.weight" : tensor<8xf32>
  %x1 = moe.rms_norm %r1, %pn1 epsilon 1.0e-5 {moe.layer = 1 : i64} : tensor<?x?x8xf32>, tensor<8xf32> -> tensor<?x?x8xf32>
  %g1 = moe.param @qa.ckpt::"model.layers.1.mlp.gate_proj.weight" : tensor<12x8xf32>
  %u1 = moe.param @qa.ckpt::"model.layers.1.mlp.up_proj.weight" : tensor<12x8xf32>
  %d1 = moe.param @qa.ckpt::"model.layers.1.mlp.down_proj.weight" : tensor<8x12xf32>
  %f1 = moe.ffn %x1 gate %g1 up %u1 down %d1 activation silu {moe.layer = 1 : i64} : (tensor<?x?x8xf32>, tensor<12x8xf32>, tensor<12x8xf32>, tensor<8x12xf32>) -> tensor<?x?x8xf32>
  %h2 = arith.addf %r1, %f1 {moe.layer = 1 : i64} : tensor<?x?x8xf32>
  %fn = moe.param @qa.ckpt::"model.norm.weight" : tensor<8xf32>
  %hn = moe.rms_norm %h2, %fn epsilon 1.0e-5 : tensor<?x?x8xf32>, tensor<8xf32> -> tensor<?x?x8xf32>
  %logits = moe.linear %hn, %table : (tensor<?x?x8xf32>, tensor<16x8xf32>) -> tensor<?x?x16xf32>
  return %logits : tensor<?x?x16xf32>
}

func.func @qv(%ids: tensor<?x?xi64>) -> tensor<?x?x16xf32> attributes {moe.architecture = "LlamaForCausalLM", moe.scope = @qv.ckpt} {
  %table = moe.param @qv.ckpt::"model.embed_tokens.weight" : tensor<16x8xf32>
  %h0 = moe.embedding %table[%ids] : tensor<16x8xf32>, tensor<?x?xi64> -> tensor<?x?x8xf32>
  %ln0 = moe.param @qv.ckpt::"model.layers.0.input_layernorm.weight" : tensor<8xf32>
  %a0 = moe.rms_norm %h0, %ln0 epsilon 1.0e-5 {moe.layer = 0 : i64} : tensor<?x?x8xf32>, tensor<8xf32> -> tensor<?x?x8xf32>
  %wq0 = moe.param @qv.ckpt::"model.layers.0.self_attn.q_proj.weight" : tensor<8x8xf32>
  %laq0 = moe.param @qv.ckpt::"base_model.model.model.layers.0.self_attn.q_proj.lora_A.weight" : tensor<2x8xf32>
  %lbq0 = moe.param @qv.ckpt::"base_model.model.model.layers.0.self_attn.q_proj.lora_B.weight" : tensor<8x2xf32>
  %q0 = moe.lora_linear %a0, %wq0 lora(%laq0, %lbq0) scale 2.0 {moe.layer = 0 : i64} : (tensor<?x?x8xf32>, tensor<8x8xf32>, tensor<2x8xf32>, tensor<8x2xf32>) -> tensor<?x?x8xf32>
  %wk0 = moe.param @qv.ckpt::"model.layers.0.self_attn.k_proj.weight" : tensor<4x8xf32>
  %k0 = moe.linear %a0, %wk0 {moe.layer = 0 : i64} : (tensor<?x?x8xf32>, tensor<4x8xf32>) -> tensor<?x?x4xf32>
  %wv0 = moe.param @qv.ckpt::"model.layers.0.self_attn.v_proj.weight" : tensor<4x8xf32>
  %lav0 = moe.param @qv.ckpt::"base_model.model.model.layers.0.self_attn.v_proj.lora_A.weight" : tensor<2x8xf32>
  %lbv0 = moe.param @qv.ckpt::"base_model.model.model.layers.0.self_attn.v_proj.lora_B.weight" : tensor<4x2xf32>
  %v0 = moe.lora_linear %a0, %wv0 lora(%lav0, %lbv0) scale 2.0 {moe.layer = 0 : i64} : (tensor<?x?x8xf32>, tensor<4x8xf32>, tensor<2x8xf32>, tensor<4x2xf32>) -> tensor<?x?x4xf32>
  %att0 = moe.attention %q0, %k0, %v0 heads 2 kv_heads 1 head_dim 4 rope_theta 10000.0 {moe.layer = 0 : i64} : (tensor<?x?x8xf32>, tensor<?x?x4xf32>, tensor<?x?x4xf32>) -> tensor<?x?x8xf32>
  %wo0 = moe.param @qv.ckpt::"model.layers.0.self_attn.o_proj.weight" : tensor<8x8xf32>
  %o0 = moe.linear %att0, %wo0 {moe.layer = 0 : i64} : (tensor<?x?x8xf32>, tensor<8x8xf32>) -> tensor<?x?x8xf32>
  %r0 = arith.addf %h0, %o0 {moe.layer = 0 : i64} : tensor<?x?x8xf32>
  %pn0 = moe.param @qv.ckpt::"model.layers.0.post_attention_layernorm.weight" : tensor<8xf32>
  %x0 = moe.rms_norm %r0, %pn0 epsilon 1.0e-5 {moe.layer = 0 : i64} : tensor<?x?x8xf32>, tensor<8xf32> -> tensor<?x?x8xf32>
  %g0 = moe.param @qv.ckpt::"model.layers.0.mlp.gate_proj.weight" : tensor<12x8xf32>
  %u0 = moe.param @qv.ckpt::"model.layers.0.mlp.up_proj.weight" : tensor<12x8xf32>
  %d0 = moe.param @qv.ckpt::"model.layers.0.mlp.down_proj.weight" : tensor<8x12xf32>
  %f0 = moe.ffn %x0 gate %g0 up %u0 down %d0 activation silu {moe.layer = 0 : i64} : (tensor<?x?x8xf32>, tensor<12x8xf32>, tensor<12x8xf32>, tensor<8x12xf32>) -> tensor<?x?x8xf32>
  %h1 = arith.addf %r0, %f0 {moe.layer = 0 : i64} : tensor<?x?x8xf32>
  %ln1 = moe.param @qv.ckpt::"model.layers.1.input_layernorm.weight" : tensor<8xf32>
  %a1 = moe.rms_norm %h1, %ln1 epsilon 1.0e-5 {moe.layer = 1 : i64} : tensor<?x?x8xf32>, tensor<8xf32> -> tensor<?x?x8xf32>
  %wq1 = moe.param @qv.ckpt::"model.layers.1.self_attn.q_proj.weight" : tensor<8x8xf32>
  %laq1 = moe.param @qv.ckpt::"base_model.model.model.layers.1.self_attn.q_proj.lora_A.weight" : tensor<2x8xf32>
  %lbq1 = moe.param @qv.ckpt::"base_model.model.model.layers.1.self_attn.q_proj.lora_B.weight" : tensor<8x2xf32>
  %q1 = moe.lora_linear %a1, %wq1 lora(%laq1, %lbq1) scale 2.0 {moe.layer = 1 : i64} : (tensor<?x?x8xf32>, tensor<8x8xf32>, tensor<2x8xf32>, tensor<8x2xf32>) -> tensor<?x?x8xf32>
  %wk1 = moe.param @qv.ckpt::"model.layers.1.self_attn.k_proj.weight" : tensor<4x8xf32>
  %k1 = moe.linear %a1, %wk1 {moe.layer = 1 : i64} : (tensor<?x?x8xf32>, tensor<4x8xf32>) -> tensor<?x?x4xf32>
  %wv1 = moe.param @qv.ckpt::"model.layers.1.self_attn.v_proj.weight" : tensor<4x8xf32>
  %lav1 = moe.param @qv.ckpt::"base_model.model.model.layers.1.self_attn.v_proj.lora_A.weight" : tensor<2x8xf32>
  %lbv1 = moe.param @qv.ckpt::"base_model.model.model.layers.1.self_attn.v_proj.lora_B.weight" : tensor<4x2xf32>
  %v1 = moe.lora_linear %a1, %wv1 lora(%lav1, %lbv1) scale 2.0 {moe.layer = 1 : i64} : (tensor<?x?x8xf32>, tensor<4x8xf32>, tensor<2x8xf32>, tensor<4x2xf32>) -> tensor<?x?x4xf32>
  %att1 = moe.attention %q1, %k1, %v1 heads 2 kv_heads 1 head_dim 4 rope_theta 10000.0 {moe.layer = 1 : i64} : (tensor<?x?x8xf32>, tensor<?x?x4xf32>, tensor<?x?x4xf32>) -> tensor<?x?x8xf32>
  %wo1 = moe.param @qv.ckpt::"model.layers.1.self_attn.o_proj.weight" : tensor<8x8xf32>
  %o1 = moe.linear %att1, %wo1 {moe.layer = 1 : i64} : (tensor<?x?x8xf32>, tensor<8x8xf32>) -> tensor<?x?x8xf32>
  %r1 = arith.addf %h1, %o1 {moe.layer = 1 : i64} : tensor<?x?x8xf32>
  %pn1 = moe.param @qv.ckpt::"model.layers.1.post_attention_layernorm.weight" : tensor<8xf32>
  %x1 = moe.rms_norm %r1, %pn1 epsilon 1.0e-5 {moe.layer = 1 : i64} : tensor<?x?x8xf32>, tensor<8xf32> -> tensor<?x?x8xf32>
  %g1 = moe.param @qv.ckpt::"model.layers.1.mlp.gate_proj.weight" : tensor<12x8xf32>
  %u1 = moe.param @qv.ckpt::"model.layers.1.mlp.up_proj.weight" : tensor<12x8xf32>
  %d1 = moe.param @qv.ckpt::"model.layers.1.mlp.down_proj.weight" : tensor<8x12xf32>
  %f1 = moe.ffn %x1 gate %g1 up %u1 down %d1 activation silu {moe.layer = 1 : i64} : (tensor<?x?x8xf32>, tensor<12x8xf32>, tensor<12x8xf32>, tensor<8x12xf32>) -> tensor<?x?x8xf32>
  %h2 = arith.addf %r1, %f1 {moe.layer = 1 : i64} : tensor<?x?x8xf32>
  %fn = moe.param @qv.ckpt::"model.norm.weight" : tensor<8xf32>
  %hn = moe.rms_norm %h2, %fn epsilon 1.0e-5 : tensor<?x?x8xf32>, tensor<8xf32> -> tensor<?x?x8xf32>
  %logits = moe.linear %hn, %table : (tensor<?x?x8xf32>, tensor<16x8xf32>) -> tensor<?x?x16xf32>
  return %logits : tensor<?x?x16xf32>
}
