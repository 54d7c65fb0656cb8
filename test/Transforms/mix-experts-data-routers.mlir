// Routers computed from data: calibration prototypes, token embeddings, and
// router weights from a file. Scope paths are relative: the tests run in %t.
// RUN: rm -rf %t && mkdir -p %t/models/base && cd %t
// RUN: %stdpython -m moe_testing.write_tensors %t/models/base/model.safetensors model.embed_tokens.weight=16x8:normal:3
// RUN: %stdpython -m moe_testing.write_tensors %t/protos.safetensors prototypes=2x3x8:normal:1
// RUN: moe-opt %s --moe-mix-experts="router=hidden prototypes=%t/protos.safetensors" | FileCheck %s --check-prefix=HIDDEN
// RUN: moe-opt %s --moe-mix-experts="router=cheap-embed cheap-embed-tokens=1,2;3;4,5,6" | FileCheck %s --check-prefix=CHEAP
// RUN: moe-opt %s --moe-mix-experts="router=cheap-embed cheap-embed-tokens=1;1;1 condition-warning=100" -mlir-print-op-on-diagnostic=false 2>&1 | FileCheck %s --check-prefix=CHEAP-DEGENERATE
// RUN: %stdpython -m moe_testing.write_tensors %t/given.safetensors model.layers.0.block_sparse_moe.gate.weight=3x8:normal:4 model.layers.0.block_sparse_moe.gate.bias=3:normal:6 model.layers.1.block_sparse_moe.gate.weight=3x8:duplicate:5
// RUN: moe-opt %s --moe-mix-experts="router=given router-weights=%t/given.safetensors" -mlir-print-op-on-diagnostic=false 2>&1 | FileCheck %s --check-prefix=GIVEN

// HIDDEN: moe.scope @prototypes path "{{.*}}protos.safetensors" format safetensors
// HIDDEN-LABEL: func.func @mix
// HIDDEN-DAG: %[[P0:.*]] = moe.param @prototypes::"prototypes"[0] : tensor<3x8xf32>
// HIDDEN-DAG: %[[N0:.*]] = moe.normalize_rows %[[P0]] : tensor<3x8xf32>
// HIDDEN-DAG: %[[P1:.*]] = moe.param @prototypes::"prototypes"[1] : tensor<3x8xf32>
// HIDDEN: moe.router %{{.*}}, %[[N0]] {moe.layer = 0 : i64}

// CHEAP-LABEL: func.func @mix
// CHEAP-DAG: %[[T:.*]] = moe.param @base.ckpt::"model.embed_tokens.weight"
// CHEAP-DAG: %[[R:.*]] = moe.embedding_prototypes %[[T]] token_ids [array<i64: 1, 2>, array<i64: 3>, array<i64: 4, 5, 6>] : tensor<16x8xf32> -> tensor<3x8xf32>
// CHEAP: moe.router %{{.*}}, %[[R]] {moe.layer = 0 : i64}
// CHEAP: moe.router %{{.*}}, %[[R]] {moe.layer = 1 : i64}

// The same token for every expert gives identical router rows.
// CHEAP-DEGENERATE: warning: the cheap-embed router of every layer is degenerate: condition number inf; rows 0 and 1 are the most alike (cosine 1)
// CHEAP-DEGENERATE-NOT: warning

// Layer 1's rows are copies of one row: warned; layer 0's are not.
// GIVEN-NOT: router of layer 0 is degenerate
// GIVEN: warning: the ffn router of layer 1 is degenerate: condition number
// GIVEN: moe.scope @router_weights path "{{.*}}given.safetensors" format safetensors
// GIVEN-LABEL: func.func @mix
// Layer 0's file has a bias, layer 1's has none.
// GIVEN-DAG: %[[W0:.*]] = moe.param @router_weights::"model.layers.0.block_sparse_moe.gate.weight" : tensor<3x8xf32>
// GIVEN-DAG: %[[B0:.*]] = moe.param @router_weights::"model.layers.0.block_sparse_moe.gate.bias" : tensor<3xf32>
// GIVEN-DAG: %[[W1:.*]] = moe.param @router_weights::"model.layers.1.block_sparse_moe.gate.weight" : tensor<3x8xf32>
// GIVEN: moe.router %{{.*}}, %[[W0]] bias %[[B0]] {moe.layer = 0 : i64}
// GIVEN: moe.router %{{.*}}, %[[W1]] {moe.layer = 1 : i64} : (tensor<?x?x8xf32>, tensor<3x8xf32>)

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
