// RUN: moe-opt %s --moe-mix-experts | FileCheck %s --check-prefix=NOISY
// RUN: moe-opt %s --moe-mix-experts="router=gateless" | FileCheck %s --check-prefix=GATELESS
// RUN: moe-opt %s --moe-mix-experts="router=uniform-random k=1 seed=5 scoring=sigmoid renormalize=false" | FileCheck %s --check-prefix=UNIFORM
// RUN: moe-opt %s --moe-mix-experts="router=base-init experts=base,math layers=1 output=moe" | FileCheck %s --check-prefix=BASEINIT
// RUN: moe-opt %s --moe-mix-experts="experts=math,code stem=average keep-sources" | FileCheck %s --check-prefix=AVERAGE
// RUN: moe-opt %s --moe-mix-experts --moe-report-params 2>&1 >/dev/null | FileCheck %s --check-prefix=PARAMS --implicit-check-not='see current operation'

// Three models of one architecture: the base and two fine-tuned experts.

// Default: noisy top-2 routing over base, math and code in every layer; the
// stem is the base's and the sources are gone.
// NOISY-DAG: moe.scope @base.ckpt
// NOISY-DAG: moe.scope @math.ckpt
// NOISY-DAG: moe.scope @code.ckpt
// NOISY-NOT: func.func @base
// NOISY-LABEL: func.func @mix
// NOISY-SAME: attributes {moe.architecture = "LlamaForCausalLM", moe.scope = @base.ckpt}
// NOISY-DAG: %[[G0:.*]] = moe.stack %{{.*}}, %{{.*}}, %{{.*}} : tensor<12x8xf32>, tensor<12x8xf32>, tensor<12x8xf32> -> tensor<3x12x8xf32>
// NOISY-DAG: %[[R0:.*]] = moe.random_normal seed 0 mean 0.000000e+00 std 2.000000e-02 : tensor<3x8xf32>
// NOISY-DAG: %[[R1:.*]] = moe.random_normal seed 1 mean 0.000000e+00 std 2.000000e-02 : tensor<3x8xf32>
// NOISY: %[[L0:.*]] = moe.router %[[X0:.*]], %[[R0]] {moe.layer = 0 : i64} : (tensor<?x?x8xf32>, tensor<3x8xf32>) -> tensor<?x?x3xf32>
// NOISY: %[[W0:.*]], %[[I0:.*]] = moe.topk_gating %[[L0]] k 2 scoring softmax {moe.layer = 0 : i64, renormalize}
// NOISY: moe.experts %[[X0]] routed(%[[W0]], %[[I0]]) gate %[[G0]] up %{{.*}} down %{{.*}} activation silu {moe.layer = 0 : i64}
// NOISY: moe.router %{{.*}}, %[[R1]] {moe.layer = 1 : i64}
// NOISY-NOT: moe.ffn
// NOISY: return

// GATELESS-LABEL: func.func @mix
// GATELESS-NOT: moe.router
// GATELESS: %[[W:.*]], %[[I:.*]] = moe.uniform_gating %[[X:.*]] experts 3 {moe.layer = 0 : i64} : tensor<?x?x8xf32> -> tensor<?x?x3xf32>, tensor<?x?x3xi64>
// GATELESS: moe.experts %[[X]] routed(%[[W]], %[[I]])
// GATELESS: moe.uniform_gating %{{.*}} experts 3 {moe.layer = 1 : i64}

// UNIFORM-LABEL: func.func @mix
// UNIFORM-DAG: moe.random_uniform seed 5 low -0.35355339059327373 high 0.35355339059327373 : tensor<3x8xf32>
// UNIFORM-DAG: moe.random_uniform seed 6 low -0.35355339059327373 high 0.35355339059327373 : tensor<3x8xf32>
// UNIFORM: moe.topk_gating %{{.*}} k 1 scoring sigmoid {moe.layer = 0 : i64} :

// Only layer 1 is mixed; base-init routes every token to expert 0 (the base).
// BASEINIT-LABEL: func.func @moe
// BASEINIT-DAG: %[[ZERO:.*]] = arith.constant dense<0.000000e+00> : tensor<2x8xf32>
// BASEINIT-DAG: %[[BIAS:.*]] = arith.constant dense<[0.000000e+00, -3.000000e+01]> : tensor<2xf32>
// BASEINIT: moe.ffn {{.*}}{moe.layer = 0 : i64}
// BASEINIT: moe.router %{{.*}}, %[[ZERO]] bias %[[BIAS]] {moe.layer = 1 : i64}
// BASEINIT: moe.topk_gating %{{.*}} k 2 scoring softmax
// BASEINIT: moe.experts {{.*}} -> tensor<?x?x8xf32>
// BASEINIT-NOT: moe.ffn

// The stem is the mean of the three models; the sources stay.
// AVERAGE-LABEL: func.func @base
// AVERAGE-LABEL: func.func @math
// AVERAGE-LABEL: func.func @code
// AVERAGE-LABEL: func.func @mix
// AVERAGE-DAG: %[[TB:.*]] = moe.param @base.ckpt::"model.embed_tokens.weight"
// AVERAGE-DAG: %[[TM:.*]] = moe.param @math.ckpt::"model.embed_tokens.weight"
// AVERAGE-DAG: %[[TC:.*]] = moe.param @code.ckpt::"model.embed_tokens.weight"
// AVERAGE-DAG: %[[T:.*]] = moe.average %[[TB]], %[[TM]], %[[TC]] : tensor<16x8xf32>, tensor<16x8xf32>, tensor<16x8xf32> -> tensor<16x8xf32>
// AVERAGE-DAG: %[[UM:.*]] = moe.param @math.ckpt::"model.layers.0.mlp.up_proj.weight"
// AVERAGE-DAG: %[[UC:.*]] = moe.param @code.ckpt::"model.layers.0.mlp.up_proj.weight"
// AVERAGE-DAG: moe.stack %[[UM]], %[[UC]] : tensor<12x8xf32>, tensor<12x8xf32> -> tensor<2x12x8xf32>
// AVERAGE: moe.embedding %[[T]][
// AVERAGE: moe.topk_gating %{{.*}} k 2
// AVERAGE: moe.linear %{{.*}}, %[[T]] :

// Stem: tied embedding 128 + 2 x 208 per layer + final norm 8; experts: 3 x
// 288 per layer; routers 3 x 8 per layer; active: stem, routers, 2 of 3
// experts.
// PARAMS: remark: parameters of 'mix': stem 552, expert 1728, router 48, total 2328, active 1752

moe.scope @base.ckpt path "models/base" format huggingface
moe.scope @math.ckpt path "models/math" format huggingface
moe.scope @code.ckpt path "models/code" format huggingface

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

func.func @math(%ids: tensor<?x?xi64>) -> tensor<?x?x16xf32> attributes {moe.architecture = "LlamaForCausalLM", moe.scope = @math.ckpt} {
  %table = moe.param @math.ckpt::"model.embed_tokens.weight" : tensor<16x8xf32>
  %h0 = moe.embedding %table[%ids] : tensor<16x8xf32>, tensor<?x?xi64> -> tensor<?x?x8xf32>
  %ln0 = moe.param @math.ckpt::"model.layers.0.input_layernorm.weight" : tensor<8xf32>
  %a0 = moe.rms_norm %h0, %ln0 epsilon 1.0e-5 {moe.layer = 0 : i64} : tensor<?x?x8xf32>, tensor<8xf32> -> tensor<?x?x8xf32>
  %wq0 = moe.param @math.ckpt::"model.layers.0.self_attn.q_proj.weight" : tensor<8x8xf32>
  %q0 = moe.linear %a0, %wq0 {moe.layer = 0 : i64} : (tensor<?x?x8xf32>, tensor<8x8xf32>) -> tensor<?x?x8xf32>
  %wk0 = moe.param @math.ckpt::"model.layers.0.self_attn.k_proj.weight" : tensor<4x8xf32>
  %k0 = moe.linear %a0, %wk0 {moe.layer = 0 : i64} : (tensor<?x?x8xf32>, tensor<4x8xf32>) -> tensor<?x?x4xf32>
  %wv0 = moe.param @math.ckpt::"model.layers.0.self_attn.v_proj.weight" : tensor<4x8xf32>
  %v0 = moe.linear %a0, %wv0 {moe.layer = 0 : i64} : (tensor<?x?x8xf32>, tensor<4x8xf32>) -> tensor<?x?x4xf32>
  %att0 = moe.attention %q0, %k0, %v0 heads 2 kv_heads 1 head_dim 4 rope_theta 10000.0 {moe.layer = 0 : i64} : (tensor<?x?x8xf32>, tensor<?x?x4xf32>, tensor<?x?x4xf32>) -> tensor<?x?x8xf32>
  %wo0 = moe.param @math.ckpt::"model.layers.0.self_attn.o_proj.weight" : tensor<8x8xf32>
  %o0 = moe.linear %att0, %wo0 {moe.layer = 0 : i64} : (tensor<?x?x8xf32>, tensor<8x8xf32>) -> tensor<?x?x8xf32>
  %r0 = arith.addf %h0, %o0 {moe.layer = 0 : i64} : tensor<?x?x8xf32>
  %pn0 = moe.param @math.ckpt::"model.layers.0.post_attention_layernorm.weight" : tensor<8xf32>
  %x0 = moe.rms_norm %r0, %pn0 epsilon 1.0e-5 {moe.layer = 0 : i64} : tensor<?x?x8xf32>, tensor<8xf32> -> tensor<?x?x8xf32>
  %g0 = moe.param @math.ckpt::"model.layers.0.mlp.gate_proj.weight" : tensor<12x8xf32>
  %u0 = moe.param @math.ckpt::"model.layers.0.mlp.up_proj.weight" : tensor<12x8xf32>
  %d0 = moe.param @math.ckpt::"model.layers.0.mlp.down_proj.weight" : tensor<8x12xf32>
  %f0 = moe.ffn %x0 gate %g0 up %u0 down %d0 activation silu {moe.layer = 0 : i64} : (tensor<?x?x8xf32>, tensor<12x8xf32>, tensor<12x8xf32>, tensor<8x12xf32>) -> tensor<?x?x8xf32>
  %h1 = arith.addf %r0, %f0 {moe.layer = 0 : i64} : tensor<?x?x8xf32>
  %ln1 = moe.param @math.ckpt::"model.layers.1.input_layernorm.weight" : tensor<8xf32>
  %a1 = moe.rms_norm %h1, %ln1 epsilon 1.0e-5 {moe.layer = 1 : i64} : tensor<?x?x8xf32>, tensor<8xf32> -> tensor<?x?x8xf32>
  %wq1 = moe.param @math.ckpt::"model.layers.1.self_attn.q_proj.weight" : tensor<8x8xf32>
  %q1 = moe.linear %a1, %wq1 {moe.layer = 1 : i64} : (tensor<?x?x8xf32>, tensor<8x8xf32>) -> tensor<?x?x8xf32>
  %wk1 = moe.param @math.ckpt::"model.layers.1.self_attn.k_proj.weight" : tensor<4x8xf32>
  %k1 = moe.linear %a1, %wk1 {moe.layer = 1 : i64} : (tensor<?x?x8xf32>, tensor<4x8xf32>) -> tensor<?x?x4xf32>
  %wv1 = moe.param @math.ckpt::"model.layers.1.self_attn.v_proj.weight" : tensor<4x8xf32>
  %v1 = moe.linear %a1, %wv1 {moe.layer = 1 : i64} : (tensor<?x?x8xf32>, tensor<4x8xf32>) -> tensor<?x?x4xf32>
  %att1 = moe.attention %q1, %k1, %v1 heads 2 kv_heads 1 head_dim 4 rope_theta 10000.0 {moe.layer = 1 : i64} : (tensor<?x?x8xf32>, tensor<?x?x4xf32>, tensor<?x?x4xf32>) -> tensor<?x?x8xf32>
  %wo1 = moe.param @math.ckpt::"model.layers.1.self_attn.o_proj.weight" : tensor<8x8xf32>
  %o1 = moe.linear %att1, %wo1 {moe.layer = 1 : i64} : (tensor<?x?x8xf32>, tensor<8x8xf32>) -> tensor<?x?x8xf32>
  %r1 = arith.addf %h1, %o1 {moe.layer = 1 : i64} : tensor<?x?x8xf32>
  %pn1 = moe.param @math.ckpt::"model.layers.1.post_attention_layernorm.weight" : tensor<8xf32>
  %x1 = moe.rms_norm %r1, %pn1 epsilon 1.0e-5 {moe.layer = 1 : i64} : tensor<?x?x8xf32>, tensor<8xf32> -> tensor<?x?x8xf32>
  %g1 = moe.param @math.ckpt::"model.layers.1.mlp.gate_proj.weight" : tensor<12x8xf32>
  %u1 = moe.param @math.ckpt::"model.layers.1.mlp.up_proj.weight" : tensor<12x8xf32>
  %d1 = moe.param @math.ckpt::"model.layers.1.mlp.down_proj.weight" : tensor<8x12xf32>
  %f1 = moe.ffn %x1 gate %g1 up %u1 down %d1 activation silu {moe.layer = 1 : i64} : (tensor<?x?x8xf32>, tensor<12x8xf32>, tensor<12x8xf32>, tensor<8x12xf32>) -> tensor<?x?x8xf32>
  %h2 = arith.addf %r1, %f1 {moe.layer = 1 : i64} : tensor<?x?x8xf32>
  %fn = moe.param @math.ckpt::"model.norm.weight" : tensor<8xf32>
  %hn = moe.rms_norm %h2, %fn epsilon 1.0e-5 : tensor<?x?x8xf32>, tensor<8xf32> -> tensor<?x?x8xf32>
  %logits = moe.linear %hn, %table : (tensor<?x?x8xf32>, tensor<16x8xf32>) -> tensor<?x?x16xf32>
  return %logits : tensor<?x?x16xf32>
}

func.func @code(%ids: tensor<?x?xi64>) -> tensor<?x?x16xf32> attributes {moe.architecture = "LlamaForCausalLM", moe.scope = @code.ckpt} {
  %table = moe.param @code.ckpt::"model.embed_tokens.weight" : tensor<16x8xf32>
  %h0 = moe.embedding %table[%ids] : tensor<16x8xf32>, tensor<?x?xi64> -> tensor<?x?x8xf32>
  %ln0 = moe.param @code.ckpt::"model.layers.0.input_layernorm.weight" : tensor<8xf32>
  %a0 = moe.rms_norm %h0, %ln0 epsilon 1.0e-5 {moe.layer = 0 : i64} : tensor<?x?x8xf32>, tensor<8xf32> -> tensor<?x?x8xf32>
  %wq0 = moe.param @code.ckpt::"model.layers.0.self_attn.q_proj.weight" : tensor<8x8xf32>
  %q0 = moe.linear %a0, %wq0 {moe.layer = 0 : i64} : (tensor<?x?x8xf32>, tensor<8x8xf32>) -> tensor<?x?x8xf32>
  %wk0 = moe.param @code.ckpt::"model.layers.0.self_attn.k_proj.weight" : tensor<4x8xf32>
  %k0 = moe.linear %a0, %wk0 {moe.layer = 0 : i64} : (tensor<?x?x8xf32>, tensor<4x8xf32>) -> tensor<?x?x4xf32>
  %wv0 = moe.param @code.ckpt::"model.layers.0.self_attn.v_proj.weight" : tensor<4x8xf32>
  %v0 = moe.linear %a0, %wv0 {moe.layer = 0 : i64} : (tensor<?x?x8xf32>, tensor<4x8xf32>) -> tensor<?x?x4xf32>
  %att0 = moe.attention %q0, %k0, %v0 heads 2 kv_heads 1 head_dim 4 rope_theta 10000.0 {moe.layer = 0 : i64} : (tensor<?x?x8xf32>, tensor<?x?x4xf32>, tensor<?x?x4xf32>) -> tensor<?x?x8xf32>
  %wo0 = moe.param @code.ckpt::"model.layers.0.self_attn.o_proj.weight" : tensor<8x8xf32>
  %o0 = moe.linear %att0, %wo0 {moe.layer = 0 : i64} : (tensor<?x?x8xf32>, tensor<8x8xf32>) -> tensor<?x?x8xf32>
  %r0 = arith.addf %h0, %o0 {moe.layer = 0 : i64} : tensor<?x?x8xf32>
  %pn0 = moe.param @code.ckpt::"model.layers.0.post_attention_layernorm.weight" : tensor<8xf32>
  %x0 = moe.rms_norm %r0, %pn0 epsilon 1.0e-5 {moe.layer = 0 : i64} : tensor<?x?x8xf32>, tensor<8xf32> -> tensor<?x?x8xf32>
  %g0 = moe.param @code.ckpt::"model.layers.0.mlp.gate_proj.weight" : tensor<12x8xf32>
  %u0 = moe.param @code.ckpt::"model.layers.0.mlp.up_proj.weight" : tensor<12x8xf32>
  %d0 = moe.param @code.ckpt::"model.layers.0.mlp.down_proj.weight" : tensor<8x12xf32>
  %f0 = moe.ffn %x0 gate %g0 up %u0 down %d0 activation silu {moe.layer = 0 : i64} : (tensor<?x?x8xf32>, tensor<12x8xf32>, tensor<12x8xf32>, tensor<8x12xf32>) -> tensor<?x?x8xf32>
  %h1 = arith.addf %r0, %f0 {moe.layer = 0 : i64} : tensor<?x?x8xf32>
  %ln1 = moe.param @code.ckpt::"model.layers.1.input_layernorm.weight" : tensor<8xf32>
  %a1 = moe.rms_norm %h1, %ln1 epsilon 1.0e-5 {moe.layer = 1 : i64} : tensor<?x?x8xf32>, tensor<8xf32> -> tensor<?x?x8xf32>
  %wq1 = moe.param @code.ckpt::"model.layers.1.self_attn.q_proj.weight" : tensor<8x8xf32>
  %q1 = moe.linear %a1, %wq1 {moe.layer = 1 : i64} : (tensor<?x?x8xf32>, tensor<8x8xf32>) -> tensor<?x?x8xf32>
  %wk1 = moe.param @code.ckpt::"model.layers.1.self_attn.k_proj.weight" : tensor<4x8xf32>
  %k1 = moe.linear %a1, %wk1 {moe.layer = 1 : i64} : (tensor<?x?x8xf32>, tensor<4x8xf32>) -> tensor<?x?x4xf32>
  %wv1 = moe.param @code.ckpt::"model.layers.1.self_attn.v_proj.weight" : tensor<4x8xf32>
  %v1 = moe.linear %a1, %wv1 {moe.layer = 1 : i64} : (tensor<?x?x8xf32>, tensor<4x8xf32>) -> tensor<?x?x4xf32>
  %att1 = moe.attention %q1, %k1, %v1 heads 2 kv_heads 1 head_dim 4 rope_theta 10000.0 {moe.layer = 1 : i64} : (tensor<?x?x8xf32>, tensor<?x?x4xf32>, tensor<?x?x4xf32>) -> tensor<?x?x8xf32>
  %wo1 = moe.param @code.ckpt::"model.layers.1.self_attn.o_proj.weight" : tensor<8x8xf32>
  %o1 = moe.linear %att1, %wo1 {moe.layer = 1 : i64} : (tensor<?x?x8xf32>, tensor<8x8xf32>) -> tensor<?x?x8xf32>
  %r1 = arith.addf %h1, %o1 {moe.layer = 1 : i64} : tensor<?x?x8xf32>
  %pn1 = moe.param @code.ckpt::"model.layers.1.post_attention_layernorm.weight" : tensor<8xf32>
  %x1 = moe.rms_norm %r1, %pn1 epsilon 1.0e-5 {moe.layer = 1 : i64} : tensor<?x?x8xf32>, tensor<8xf32> -> tensor<?x?x8xf32>
  %g1 = moe.param @code.ckpt::"model.layers.1.mlp.gate_proj.weight" : tensor<12x8xf32>
  %u1 = moe.param @code.ckpt::"model.layers.1.mlp.up_proj.weight" : tensor<12x8xf32>
  %d1 = moe.param @code.ckpt::"model.layers.1.mlp.down_proj.weight" : tensor<8x12xf32>
  %f1 = moe.ffn %x1 gate %g1 up %u1 down %d1 activation silu {moe.layer = 1 : i64} : (tensor<?x?x8xf32>, tensor<12x8xf32>, tensor<12x8xf32>, tensor<8x12xf32>) -> tensor<?x?x8xf32>
  %h2 = arith.addf %r1, %f1 {moe.layer = 1 : i64} : tensor<?x?x8xf32>
  %fn = moe.param @code.ckpt::"model.norm.weight" : tensor<8xf32>
  %hn = moe.rms_norm %h2, %fn epsilon 1.0e-5 : tensor<?x?x8xf32>, tensor<8xf32> -> tensor<?x?x8xf32>
  %logits = moe.linear %hn, %table : (tensor<?x?x8xf32>, tensor<16x8xf32>) -> tensor<?x?x16xf32>
  return %logits : tensor<?x?x16xf32>
}
