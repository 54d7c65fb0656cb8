// Every user-facing error of moe-decompose-experts, each with its message.
// RUN: rm -rf %t && mkdir -p %t && touch %t/file
// RUN: not moe-opt %s --moe-decompose-experts="rank=2" 2>&1 | FileCheck %s --check-prefix=NODIR --implicit-check-not='see current operation'
// RUN: not moe-opt %s --moe-decompose-experts="rank=0 output-dir=%t/out" 2>&1 | FileCheck %s --check-prefix=RANK --implicit-check-not='see current operation'
// RUN: not moe-opt %s --moe-decompose-experts="experts=base output-dir=%t/file/sub" 2>&1 | FileCheck %s --check-prefix=MKDIR --implicit-check-not='see current operation'
// RUN: not moe-opt %s --moe-decompose-experts="oversample=-1 output-dir=%t/never" 2>&1 | FileCheck %s --check-prefix=OVERSAMPLE --implicit-check-not='see current operation'
// RUN: not moe-opt %s --moe-decompose-experts="power-iterations=1000000 output-dir=%t/never" 2>&1 | FileCheck %s --check-prefix=ITERATIONS --implicit-check-not='see current operation'
// RUN: not moe-opt %s --moe-decompose-experts="output-dir=%t/never" 2>&1 >/dev/null
// Nothing is created when the options or the models are wrong.
// RUN: not ls %t/never
// RUN: not moe-opt %s --moe-decompose-experts="base=nothing output-dir=%t/out" 2>&1 | FileCheck %s --check-prefix=NOBASE --implicit-check-not='see current operation'
// RUN: not moe-opt %s --moe-decompose-experts="experts=nothing output-dir=%t/out" 2>&1 | FileCheck %s --check-prefix=NOEXPERT --implicit-check-not='see current operation'
// RUN: not moe-opt %s --moe-decompose-experts="output-dir=%t/out" 2>&1 | FileCheck %s --check-prefix=STRUCTURE --implicit-check-not='see current operation'
// RUN: not moe-opt %s --moe-decompose-experts="experts=base output-dir=%t/out" -mlir-print-op-on-diagnostic=false 2>&1 | FileCheck %s --check-prefix=WEIGHTS

// NODIR: error: moe-decompose-experts needs output-dir=<directory>
// RANK: error: rank must be positive
// MKDIR: error: cannot create '{{.*}}file/sub': Not a directory
// OVERSAMPLE: error: oversample must be in [0, 1024], got -1
// ITERATIONS: error: power-iterations must be in [0, 64], got 1000000
// NOBASE: error: no function 'nothing' for the base model
// NOEXPERT: error: no function 'nothing' for the expert model
// STRUCTURE: error: model 'odd' does not have the structure of 'base': it has 29 compute operations, the base has 16
// WEIGHTS: error: scope 'base.ckpt': {{.*}}models/base{{.*}}

moe.scope @base.ckpt path "models/base" format huggingface
moe.scope @odd.ckpt path "models/odd" format huggingface

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
  %fn = moe.param @base.ckpt::"model.norm.weight" : tensor<8xf32>
  %hn = moe.rms_norm %h1, %fn epsilon 1.0e-5 : tensor<?x?x8xf32>, tensor<8xf32> -> tensor<?x?x8xf32>
  %logits = moe.linear %hn, %table : (tensor<?x?x8xf32>, tensor<16x8xf32>) -> tensor<?x?x16xf32>
  return %logits : tensor<?x?x16xf32>
}

func.func @odd(%ids: tensor<?x?xi64>) -> tensor<?x?x16xf32> attributes {moe.architecture = "LlamaForCausalLM", moe.scope = @odd.ckpt} {
  %table = moe.param @odd.ckpt::"model.embed_tokens.weight" : tensor<16x8xf32>
  %h0 = moe.embedding %table[%ids] : tensor<16x8xf32>, tensor<?x?xi64> -> tensor<?x?x8xf32>
  %ln0 = moe.param @odd.ckpt::"model.layers.0.input_layernorm.weight" : tensor<8xf32>
  %a0 = moe.rms_norm %h0, %ln0 epsilon 1.0e-5 {moe.layer = 0 : i64} : tensor<?x?x8xf32>, tensor<8xf32> -> tensor<?x?x8xf32>
  %wq0 = moe.param @odd.ckpt::"model.layers.0.self_attn.q_proj.weight" : tensor<8x8xf32>
  %q0 = moe.linear %a0, %wq0 {moe.layer = 0 : i64} : (tensor<?x?x8xf32>, tensor<8x8xf32>) -> tensor<?x?x8xf32>
  %wk0 = moe.param @odd.ckpt::"model.layers.0.self_attn.k_proj.weight" : tensor<4x8xf32>
  %k0 = moe.linear %a0, %wk0 {moe.layer = 0 : i64} : (tensor<?x?x8xf32>, tensor<4x8xf32>) -> tensor<?x?x4xf32>
  %wv0 = moe.param @odd.ckpt::"model.layers.0.self_attn.v_proj.weight" : tensor<4x8xf32>
  %v0 = moe.linear %a0, %wv0 {moe.layer = 0 : i64} : (tensor<?x?x8xf32>, tensor<4x8xf32>) -> tensor<?x?x4xf32>
  %att0 = moe.attention %q0, %k0, %v0 heads 2 kv_heads 1 head_dim 4 rope_theta 10000.0 {moe.layer = 0 : i64} : (tensor<?x?x8xf32>, tensor<?x?x4xf32>, tensor<?x?x4xf32>) -> tensor<?x?x8xf32>
  %wo0 = moe.param @odd.ckpt::"model.layers.0.self_attn.o_proj.weight" : tensor<8x8xf32>
  %o0 = moe.linear %att0, %wo0 {moe.layer = 0 : i64} : (tensor<?x?x8xf32>, tensor<8x8xf32>) -> tensor<?x?x8xf32>
  %r0 = arith.addf %h0, %o0 {moe.layer = 0 : i64} : tensor<?x?x8xf32>
  %pn0 = moe.param @odd.ckpt::"model.layers.0.post_attention_layernorm.weight" : tensor<8xf32>
  %x0 = moe.rms_norm %r0, %pn0 epsilon 1.0e-5 {moe.layer = 0 : i64} : tensor<?x?x8xf32>, tensor<8xf32> -> tensor<?x?x8xf32>
  %g0 = moe.param @odd.ckpt::"model.layers.0.mlp.gate_proj.weight" : tensor<12x8xf32>
  %u0 = moe.param @odd.ckpt::"model.layers.0.mlp.up_proj.weight" : tensor<12x8xf32>
  %d0 = moe.param @odd.ckpt::"model.layers.0.mlp.down_proj.weight" : tensor<8x12xf32>
  %f0 = moe.ffn %x0 gate %g0 up %u0 down %d0 activation silu {moe.layer = 0 : i64} : (tensor<?x?x8xf32>, tensor<12x8xf32>, tensor<12x8xf32>, tensor<8x12xf32>) -> tensor<?x?x8xf32>
  %h1 = arith.addf %r0, %f0 {moe.layer = 0 : i64} : tensor<?x?x8xf32>
  %ln1 = moe.param @odd.ckpt::"model.layers.1.input_layernorm.weight" : tensor<8xf32>
  %a1 = moe.rms_norm %h1, %ln1 epsilon 1.0e-5 {moe.layer = 1 : i64} : tensor<?x?x8xf32>, tensor<8xf32> -> tensor<?x?x8xf32>
  %wq1 = moe.param @odd.ckpt::"model.layers.1.self_attn.q_proj.weight" : tensor<8x8xf32>
  %q1 = moe.linear %a1, %wq1 {moe.layer = 1 : i64} : (tensor<?x?x8xf32>, tensor<8x8xf32>) -> tensor<?x?x8xf32>
  %wk1 = moe.param @odd.ckpt::"model.layers.1.self_attn.k_proj.weight" : tensor<4x8xf32>
  %k1 = moe.linear %a1, %wk1 {moe.layer = 1 : i64} : (tensor<?x?x8xf32>, tensor<4x8xf32>) -> tensor<?x?x4xf32>
  %wv1 = moe.param @odd.ckpt::"model.layers.1.self_attn.v_proj.weight" : tensor<4x8xf32>
  %v1 = moe.linear %a1, %wv1 {moe.layer = 1 : i64} : (tensor<?x?x8xf32>, tensor<4x8xf32>) -> tensor<?x?x4xf32>
  %att1 = moe.attention %q1, %k1, %v1 heads 2 kv_heads 1 head_dim 4 rope_theta 10000.0 {moe.layer = 1 : i64} : (tensor<?x?x8xf32>, tensor<?x?x4xf32>, tensor<?x?x4xf32>) -> tensor<?x?x8xf32>
  %wo1 = moe.param @odd.ckpt::"model.layers.1.self_attn.o_proj.weight" : tensor<8x8xf32>
  %o1 = moe.linear %att1, %wo1 {moe.layer = 1 : i64} : (tensor<?x?x8xf32>, tensor<8x8xf32>) -> tensor<?x?x8xf32>
  %r1 = arith.addf %h1, %o1 {moe.layer = 1 : i64} : tensor<?x?x8xf32>
  %pn1 = moe.param @odd.ckpt::"model.layers.1.post_attention_layernorm.weight" : tensor<8xf32>
  %x1 = moe.rms_norm %r1, %pn1 epsilon 1.0e-5 {moe.layer = 1 : i64} : tensor<?x?x8xf32>, tensor<8xf32> -> tensor<?x?x8xf32>
  %g1 = moe.param @odd.ckpt::"model.layers.1.mlp.gate_proj.weight" : tensor<12x8xf32>
  %u1 = moe.param @odd.ckpt::"model.layers.1.mlp.up_proj.weight" : tensor<12x8xf32>
  %d1 = moe.param @odd.ckpt::"model.layers.1.mlp.down_proj.weight" : tensor<8x12xf32>
  %f1 = moe.ffn %x1 gate %g1 up %u1 down %d1 activation silu {moe.layer = 1 : i64} : (tensor<?x?x8xf32>, tensor<12x8xf32>, tensor<12x8xf32>, tensor<8x12xf32>) -> tensor<?x?x8xf32>
  %h2 = arith.addf %r1, %f1 {moe.layer = 1 : i64} : tensor<?x?x8xf32>
  %fn = moe.param @odd.ckpt::"model.norm.weight" : tensor<8xf32>
  %hn = moe.rms_norm %h2, %fn epsilon 1.0e-5 : tensor<?x?x8xf32>, tensor<8xf32> -> tensor<?x?x8xf32>
  %logits = moe.linear %hn, %table : (tensor<?x?x8xf32>, tensor<16x8xf32>) -> tensor<?x?x16xf32>
  return %logits : tensor<?x?x16xf32>
}
