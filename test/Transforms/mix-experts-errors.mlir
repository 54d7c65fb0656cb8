// Every user-facing error of moe-mix-experts, each with its message.
// RUN: rm -rf %t && mkdir -p %t
// RUN: %stdpython -m moe_testing.write_tensors %t/protos.safetensors prototypes=2x3x8
// RUN: %stdpython -m moe_testing.write_tensors %t/wrong.safetensors model.layers.0.block_sparse_moe.gate.weight=2x8
// RUN: %stdpython -m moe_testing.write_tensors %t/wrong-bias.safetensors model.layers.0.block_sparse_moe.gate.weight=3x8 model.layers.0.block_sparse_moe.gate.bias=2
// RUN: not moe-opt %s --moe-mix-experts="experts=base,math,code router=foo" 2>&1 | FileCheck %s --check-prefix=MODE --implicit-check-not='see current operation'
// RUN: not moe-opt %s --moe-mix-experts="experts=base,math,code scoring=max" 2>&1 | FileCheck %s --check-prefix=SCORING --implicit-check-not='see current operation'
// RUN: not moe-opt %s --moe-mix-experts="experts=base,math,code stem=median" 2>&1 | FileCheck %s --check-prefix=STEM --implicit-check-not='see current operation'
// RUN: not moe-opt %s --moe-mix-experts="experts=base,math,code always-on=math shared-expert=code" 2>&1 | FileCheck %s --check-prefix=EXCLUSIVE --implicit-check-not='see current operation'
// RUN: not moe-opt %s --moe-mix-experts="experts=base,math,code router=hidden fine-grained" 2>&1 | FileCheck %s --check-prefix=HIDDEN-FINE --implicit-check-not='see current operation'
// RUN: not moe-opt %s --moe-mix-experts="shared-expert=base fine-grained experts=base,math" 2>&1 | FileCheck %s --check-prefix=SHARED-FINE --implicit-check-not='see current operation'
// RUN: not moe-opt %s --moe-mix-experts="experts=base,math,code router-std=-1.0" 2>&1 | FileCheck %s --check-prefix=STD --implicit-check-not='see current operation'
// RUN: not moe-opt %s --moe-mix-experts="experts=base,math,code router-std=nan" 2>&1 | FileCheck %s --check-prefix=STD-NAN --implicit-check-not='see current operation'
// RUN: not moe-opt %s --moe-mix-experts="base=nothing" 2>&1 | FileCheck %s --check-prefix=NOBASE --implicit-check-not='see current operation'
// RUN: not moe-opt %s --moe-mix-experts="experts=math,math" 2>&1 | FileCheck %s --check-prefix=TWICE --implicit-check-not='see current operation'
// RUN: not moe-opt %s --moe-mix-experts="experts=math,nothing" 2>&1 | FileCheck %s --check-prefix=UNKNOWN --implicit-check-not='see current operation'
// RUN: not moe-opt %s --moe-mix-experts="always-on=nothing experts=base,math" 2>&1 | FileCheck %s --check-prefix=NOSHARED --implicit-check-not='see current operation'
// RUN: not moe-opt %s --moe-mix-experts="experts=base always-on=base" 2>&1 | FileCheck %s --check-prefix=EMPTY --implicit-check-not='see current operation'
// RUN: not moe-opt %s --moe-mix-experts="experts=base,math k=3" 2>&1 | FileCheck %s --check-prefix=K --implicit-check-not='see current operation'
// RUN: not moe-opt %s --moe-mix-experts="experts=base,odd" 2>&1 | FileCheck %s --check-prefix=STRUCTURE --implicit-check-not='see current operation'
// RUN: not moe-opt %s --moe-mix-experts="experts=base,math output=code" 2>&1 | FileCheck %s --check-prefix=TAKEN --implicit-check-not='see current operation'
// RUN: not moe-opt %s --moe-mix-experts="router=hidden experts=base,math" 2>&1 | FileCheck %s --check-prefix=NOPROTOS --implicit-check-not='see current operation'
// RUN: not moe-opt %s --moe-mix-experts="router=hidden experts=base,math prototypes=%t/missing.safetensors" 2>&1 | FileCheck %s --check-prefix=PROTOFILE --implicit-check-not='see current operation'
// RUN: not moe-opt %s --moe-mix-experts="router=hidden experts=base,math prototypes=%t/protos.safetensors" 2>&1 | FileCheck %s --check-prefix=PROTOSHAPE --implicit-check-not='see current operation'
// RUN: not moe-opt %s --moe-mix-experts="router=given experts=base,math" 2>&1 | FileCheck %s --check-prefix=NOGIVEN --implicit-check-not='see current operation'
// RUN: not moe-opt %s --moe-mix-experts="router=given experts=base,math router-weights=%t/protos.safetensors" 2>&1 | FileCheck %s --check-prefix=GIVENKEY --implicit-check-not='see current operation'
// RUN: not moe-opt %s --moe-mix-experts="router=given experts=base,math,code router-weights=%t/wrong.safetensors layers=0" 2>&1 | FileCheck %s --check-prefix=GIVENSHAPE --implicit-check-not='see current operation'
// RUN: not moe-opt %s --moe-mix-experts="router=given experts=base,math,code router-weights=%t/wrong-bias.safetensors layers=0" 2>&1 | FileCheck %s --check-prefix=GIVENBIAS --implicit-check-not='see current operation'
// RUN: not moe-opt %s --moe-mix-experts="experts=base,math,code router=cheap-embed cheap-embed-tokens=1;2" 2>&1 | FileCheck %s --check-prefix=CHEAPCOUNT --implicit-check-not='see current operation'
// RUN: not moe-opt %s --moe-mix-experts="experts=base,math,code router=cheap-embed cheap-embed-tokens=1;x;2" 2>&1 | FileCheck %s --check-prefix=CHEAPID --implicit-check-not='see current operation'
// RUN: not moe-opt %s --moe-mix-experts="experts=base,math,code router=cheap-embed cheap-embed-tokens=1;;2" 2>&1 | FileCheck %s --check-prefix=CHEAPEMPTY --implicit-check-not='see current operation'
// RUN: not moe-opt %s --moe-mix-experts="experts=base,math,code router=cheap-embed cheap-embed-tokens=1;16;2" 2>&1 | FileCheck %s --check-prefix=CHEAPVOCAB --implicit-check-not='see current operation'
// RUN: not moe-opt %s --moe-mix-experts="experts=base,math,code layers=0,5" 2>&1 | FileCheck %s --check-prefix=LAYER --implicit-check-not='see current operation'
// RUN: not moe-opt %s --moe-mix-experts="base=bbase experts=bbase,bexp" -mlir-print-op-on-diagnostic=false 2>&1 | FileCheck %s --check-prefix=BIAS
// RUN: not moe-opt %s --moe-mix-experts="base=adapted experts=adapted k=1 route-attention" -mlir-print-op-on-diagnostic=false 2>&1 | FileCheck %s --check-prefix=LORA
// RUN: not moe-opt %s --moe-mix-experts="experts=base,gelu" 2>&1 | FileCheck %s --check-prefix=ATTRS --implicit-check-not='see current operation'
// RUN: not moe-opt %s --moe-mix-experts="experts=base,wide" 2>&1 | FileCheck %s --check-prefix=SIGNATURE --implicit-check-not='see current operation'

// MODE: for the --router option: Cannot find option named 'foo'!
// SCORING: for the --scoring option: Cannot find option named 'max'!
// STEM: for the --stem option: Cannot find option named 'median'!
// EXCLUSIVE: error: always-on and shared-expert are exclusive: a mix has one shared expert, gated or not
// HIDDEN-FINE: error: router=hidden builds FFN routers over the hidden size only; fine-grained and route-attention need noisy, uniform-random, base-init or given routers
// SHARED-FINE: error: a gated shared expert cannot be combined with fine-grained routing
// STD: error: router-std must be a finite non-negative number, got -1
// STD-NAN: error: router-std must be a finite non-negative number, got nan
// NOBASE: error: no function 'nothing' for the base model
// TWICE: error: expert 'math' is listed twice
// UNKNOWN: error: no function 'nothing' for the expert model
// NOSHARED: error: no function 'nothing' for the shared expert model
// EMPTY: error: no experts left to route
// K: error: k = 3 must be between 1 and the number of routed experts (2)
// STRUCTURE: error: model 'odd' does not have the structure of 'base': it has 13 compute operations, the base has 23
// TAKEN: error: the output name 'code' is already taken
// NOPROTOS: error: router=hidden needs prototypes=<file>
// PROTOFILE: error: {{.*}}missing.safetensors: No such file or directory
// PROTOSHAPE: error: {{.*}}protos.safetensors: tensor 'prototypes' has shape [2, 3, 8] but this mix needs [2, 2, 8] (layers, experts, hidden)
// NOGIVEN: error: router=given needs router-weights=<file>
// GIVENKEY: error: {{.*}}protos.safetensors: no tensor 'model.layers.0.block_sparse_moe.gate.weight' (expected shape [2, 8])
// GIVENSHAPE: error: {{.*}}wrong.safetensors: tensor 'model.layers.0.block_sparse_moe.gate.weight' has shape [2, 8] but the router needs [3, 8]
// GIVENBIAS: error: {{.*}}wrong-bias.safetensors: tensor 'model.layers.0.block_sparse_moe.gate.bias' has shape [2] but the router needs [3]
// CHEAPCOUNT: error: router=cheap-embed needs one token-id list per routed expert in cheap-embed-tokens (3 lists separated by ';'), got '1;2'
// CHEAPID: error: cheap-embed-tokens: 'x' is not a token id
// CHEAPEMPTY: error: cheap-embed-tokens: every expert needs at least one token
// CHEAPVOCAB: error: cheap-embed-tokens: token id 16 is outside the base's vocabulary of 16 tokens
// LAYER: error: layer 5 does not exist (the model has 2 layers with an FFN)
// BIAS: error: the FFN of layer 0 has biases, which moe.experts cannot carry; mix it with fine-grained=true
// LORA: error: route-attention needs plain moe.linear q/k/v projections in layer 0
// ATTRS: error: model 'gelu' does not have the structure of 'base': operation #9 ('moe.ffn') has attributes differing from the base
// SIGNATURE: error: model 'wide' does not have the structure of 'base': its signature '(tensor<?x?xi64>) -> tensor<?x?x17xf32>' differs from '(tensor<?x?xi64>) -> tensor<?x?x16xf32>'

moe.scope @base.ckpt path "models/base" format huggingface
moe.scope @math.ckpt path "models/math" format huggingface
moe.scope @code.ckpt path "models/code" format huggingface
moe.scope @odd.ckpt path "models/odd" format huggingface
moe.scope @bbase.ckpt path "models/bbase" format huggingface
moe.scope @bexp.ckpt path "models/bexp" format huggingface
moe.scope @adapted.ckpt path "models/adapted" format huggingface
moe.scope @ad.ckpt path "models/ad" format huggingface
moe.scope @gelu.ckpt path "models/gelu" format huggingface
moe.scope @wide.ckpt path "models/wide" format huggingface

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
  %fn = moe.param @odd.ckpt::"model.norm.weight" : tensor<8xf32>
  %hn = moe.rms_norm %h1, %fn epsilon 1.0e-5 : tensor<?x?x8xf32>, tensor<8xf32> -> tensor<?x?x8xf32>
  %logits = moe.linear %hn, %table : (tensor<?x?x8xf32>, tensor<16x8xf32>) -> tensor<?x?x16xf32>
  return %logits : tensor<?x?x16xf32>
}

func.func @bbase(%ids: tensor<?x?xi64>) -> tensor<?x?x16xf32> attributes {moe.architecture = "LlamaForCausalLM", moe.scope = @bbase.ckpt} {
  %table = moe.param @bbase.ckpt::"model.embed_tokens.weight" : tensor<16x8xf32>
  %h0 = moe.embedding %table[%ids] : tensor<16x8xf32>, tensor<?x?xi64> -> tensor<?x?x8xf32>
  %ln0 = moe.param @bbase.ckpt::"model.layers.0.input_layernorm.weight" : tensor<8xf32>
  %a0 = moe.rms_norm %h0, %ln0 epsilon 1.0e-5 {moe.layer = 0 : i64} : tensor<?x?x8xf32>, tensor<8xf32> -> tensor<?x?x8xf32>
  %wq0 = moe.param @bbase.ckpt::"model.layers.0.self_attn.q_proj.weight" : tensor<8x8xf32>
  %q0 = moe.linear %a0, %wq0 {moe.layer = 0 : i64} : (tensor<?x?x8xf32>, tensor<8x8xf32>) -> tensor<?x?x8xf32>
  %wk0 = moe.param @bbase.ckpt::"model.layers.0.self_attn.k_proj.weight" : tensor<4x8xf32>
  %k0 = moe.linear %a0, %wk0 {moe.layer = 0 : i64} : (tensor<?x?x8xf32>, tensor<4x8xf32>) -> tensor<?x?x4xf32>
  %wv0 = moe.param @bbase.ckpt::"model.layers.0.self_attn.v_proj.weight" : tensor<4x8xf32>
  %v0 = moe.linear %a0, %wv0 {moe.layer = 0 : i64} : (tensor<?x?x8xf32>, tensor<4x8xf32>) -> tensor<?x?x4xf32>
  %att0 = moe.attention %q0, %k0, %v0 heads 2 kv_heads 1 head_dim 4 rope_theta 10000.0 {moe.layer = 0 : i64} : (tensor<?x?x8xf32>, tensor<?x?x4xf32>, tensor<?x?x4xf32>) -> tensor<?x?x8xf32>
  %wo0 = moe.param @bbase.ckpt::"model.layers.0.self_attn.o_proj.weight" : tensor<8x8xf32>
  %o0 = moe.linear %att0, %wo0 {moe.layer = 0 : i64} : (tensor<?x?x8xf32>, tensor<8x8xf32>) -> tensor<?x?x8xf32>
  %r0 = arith.addf %h0, %o0 {moe.layer = 0 : i64} : tensor<?x?x8xf32>
  %pn0 = moe.param @bbase.ckpt::"model.layers.0.post_attention_layernorm.weight" : tensor<8xf32>
  %x0 = moe.rms_norm %r0, %pn0 epsilon 1.0e-5 {moe.layer = 0 : i64} : tensor<?x?x8xf32>, tensor<8xf32> -> tensor<?x?x8xf32>
  %g0 = moe.param @bbase.ckpt::"model.layers.0.mlp.gate_proj.weight" : tensor<12x8xf32>
  %u0 = moe.param @bbase.ckpt::"model.layers.0.mlp.up_proj.weight" : tensor<12x8xf32>
  %d0 = moe.param @bbase.ckpt::"model.layers.0.mlp.down_proj.weight" : tensor<8x12xf32>
  %gb0 = moe.param @bbase.ckpt::"model.layers.0.mlp.gate_proj.bias" : tensor<12xf32>
  %ub0 = moe.param @bbase.ckpt::"model.layers.0.mlp.up_proj.bias" : tensor<12xf32>
  %db0 = moe.param @bbase.ckpt::"model.layers.0.mlp.down_proj.bias" : tensor<8xf32>
  %f0 = moe.ffn %x0 gate %g0 up %u0 down %d0 gate_bias %gb0 up_bias %ub0 down_bias %db0 activation silu {moe.layer = 0 : i64} : (tensor<?x?x8xf32>, tensor<12x8xf32>, tensor<12x8xf32>, tensor<8x12xf32>, tensor<12xf32>, tensor<12xf32>, tensor<8xf32>) -> tensor<?x?x8xf32>
  %h1 = arith.addf %r0, %f0 {moe.layer = 0 : i64} : tensor<?x?x8xf32>
  %ln1 = moe.param @bbase.ckpt::"model.layers.1.input_layernorm.weight" : tensor<8xf32>
  %a1 = moe.rms_norm %h1, %ln1 epsilon 1.0e-5 {moe.layer = 1 : i64} : tensor<?x?x8xf32>, tensor<8xf32> -> tensor<?x?x8xf32>
  %wq1 = moe.param @bbase.ckpt::"model.layers.1.self_attn.q_proj.weight" : tensor<8x8xf32>
  %q1 = moe.linear %a1, %wq1 {moe.layer = 1 : i64} : (tensor<?x?x8xf32>, tensor<8x8xf32>) -> tensor<?x?x8xf32>
  %wk1 = moe.param @bbase.ckpt::"model.layers.1.self_attn.k_proj.weight" : tensor<4x8xf32>
  %k1 = moe.linear %a1, %wk1 {moe.layer = 1 : i64} : (tensor<?x?x8xf32>, tensor<4x8xf32>) -> tensor<?x?x4xf32>
  %wv1 = moe.param @bbase.ckpt::"model.layers.1.self_attn.v_proj.weight" : tensor<4x8xf32>
  %v1 = moe.linear %a1, %wv1 {moe.layer = 1 : i64} : (tensor<?x?x8xf32>, tensor<4x8xf32>) -> tensor<?x?x4xf32>
  %att1 = moe.attention %q1, %k1, %v1 heads 2 kv_heads 1 head_dim 4 rope_theta 10000.0 {moe.layer = 1 : i64} : (tensor<?x?x8xf32>, tensor<?x?x4xf32>, tensor<?x?x4xf32>) -> tensor<?x?x8xf32>
  %wo1 = moe.param @bbase.ckpt::"model.layers.1.self_attn.o_proj.weight" : tensor<8x8xf32>
  %o1 = moe.linear %att1, %wo1 {moe.layer = 1 : i64} : (tensor<?x?x8xf32>, tensor<8x8xf32>) -> tensor<?x?x8xf32>
  %r1 = arith.addf %h1, %o1 {moe.layer = 1 : i64} : tensor<?x?x8xf32>
  %pn1 = moe.param @bbase.ckpt::"model.layers.1.post_attention_layernorm.weight" : tensor<8xf32>
  %x1 = moe.rms_norm %r1, %pn1 epsilon 1.0e-5 {moe.layer = 1 : i64} : tensor<?x?x8xf32>, tensor<8xf32> -> tensor<?x?x8xf32>
  %g1 = moe.param @bbase.ckpt::"model.layers.1.mlp.gate_proj.weight" : tensor<12x8xf32>
  %u1 = moe.param @bbase.ckpt::"model.layers.1.mlp.up_proj.weight" : tensor<12x8xf32>
  %d1 = moe.param @bbase.ckpt::"model.layers.1.mlp.down_proj.weight" : tensor<8x12xf32>
  %gb1 = moe.param @bbase.ckpt::"model.layers.1.mlp.gate_proj.bias" : tensor<12xf32>
  %ub1 = moe.param @bbase.ckpt::"model.layers.1.mlp.up_proj.bias" : tensor<12xf32>
  %db1 = moe.param @bbase.ckpt::"model.layers.1.mlp.down_proj.bias" : tensor<8xf32>
  %f1 = moe.ffn %x1 gate %g1 up %u1 down %d1 gate_bias %gb1 up_bias %ub1 down_bias %db1 activation silu {moe.layer = 1 : i64} : (tensor<?x?x8xf32>, tensor<12x8xf32>, tensor<12x8xf32>, tensor<8x12xf32>, tensor<12xf32>, tensor<12xf32>, tensor<8xf32>) -> tensor<?x?x8xf32>
  %h2 = arith.addf %r1, %f1 {moe.layer = 1 : i64} : tensor<?x?x8xf32>
  %fn = moe.param @bbase.ckpt::"model.norm.weight" : tensor<8xf32>
  %hn = moe.rms_norm %h2, %fn epsilon 1.0e-5 : tensor<?x?x8xf32>, tensor<8xf32> -> tensor<?x?x8xf32>
  %logits = moe.linear %hn, %table : (tensor<?x?x8xf32>, tensor<16x8xf32>) -> tensor<?x?x16xf32>
  return %logits : tensor<?x?x16xf32>
}

func.func @bexp(%ids: tensor<?x?xi64>) -> tensor<?x?x16xf32> attributes {moe.architecture = "LlamaForCausalLM", moe.scope = @bexp.ckpt} {
  %table = moe.param @bexp.ckpt::"model.embed_tokens.weight" : tensor<16x8xf32>
  %h0 = moe.embedding %table[%ids] : tensor<16x8xf32>, tensor<?x?xi64> -> tensor<?x?x8xf32>
  %ln0 = moe.param @bexp.ckpt::"model.layers.0.input_layernorm.weight" : tensor<8xf32>
  %a0 = moe.rms_norm %h0, %ln0 epsilon 1.0e-5 {moe.layer = 0 : i64} : tensor<?x?x8xf32>, tensor<8xf32> -> tensor<?x?x8xf32>
  %wq0 = moe.param @bexp.ckpt::"model.layers.0.self_attn.q_proj.weight" : tensor<8x8xf32>
  %q0 = moe.linear %a0, %wq0 {moe.layer = 0 : i64} : (tensor<?x?x8xf32>, tensor<8x8xf32>) -> tensor<?x?x8xf32>
  %wk0 = moe.param @bexp.ckpt::"model.layers.0.self_attn.k_proj.weight" : tensor<4x8xf32>
  %k0 = moe.linear %a0, %wk0 {moe.layer = 0 : i64} : (tensor<?x?x8xf32>, tensor<4x8xf32>) -> tensor<?x?x4xf32>
  %wv0 = moe.param @bexp.ckpt::"model.layers.0.self_attn.v_proj.weight" : tensor<4x8xf32>
  %v0 = moe.linear %a0, %wv0 {moe.layer = 0 : i64} : (tensor<?x?x8xf32>, tensor<4x8xf32>) -> tensor<?x?x4xf32>
  %att0 = moe.attention %q0, %k0, %v0 heads 2 kv_heads 1 head_dim 4 rope_theta 10000.0 {moe.layer = 0 : i64} : (tensor<?x?x8xf32>, tensor<?x?x4xf32>, tensor<?x?x4xf32>) -> tensor<?x?x8xf32>
  %wo0 = moe.param @bexp.ckpt::"model.layers.0.self_attn.o_proj.weight" : tensor<8x8xf32>
  %o0 = moe.linear %att0, %wo0 {moe.layer = 0 : i64} : (tensor<?x?x8xf32>, tensor<8x8xf32>) -> tensor<?x?x8xf32>
  %r0 = arith.addf %h0, %o0 {moe.layer = 0 : i64} : tensor<?x?x8xf32>
  %pn0 = moe.param @bexp.ckpt::"model.layers.0.post_attention_layernorm.weight" : tensor<8xf32>
  %x0 = moe.rms_norm %r0, %pn0 epsilon 1.0e-5 {moe.layer = 0 : i64} : tensor<?x?x8xf32>, tensor<8xf32> -> tensor<?x?x8xf32>
  %g0 = moe.param @bexp.ckpt::"model.layers.0.mlp.gate_proj.weight" : tensor<12x8xf32>
  %u0 = moe.param @bexp.ckpt::"model.layers.0.mlp.up_proj.weight" : tensor<12x8xf32>
  %d0 = moe.param @bexp.ckpt::"model.layers.0.mlp.down_proj.weight" : tensor<8x12xf32>
  %gb0 = moe.param @bexp.ckpt::"model.layers.0.mlp.gate_proj.bias" : tensor<12xf32>
  %ub0 = moe.param @bexp.ckpt::"model.layers.0.mlp.up_proj.bias" : tensor<12xf32>
  %db0 = moe.param @bexp.ckpt::"model.layers.0.mlp.down_proj.bias" : tensor<8xf32>
  %f0 = moe.ffn %x0 gate %g0 up %u0 down %d0 gate_bias %gb0 up_bias %ub0 down_bias %db0 activation silu {moe.layer = 0 : i64} : (tensor<?x?x8xf32>, tensor<12x8xf32>, tensor<12x8xf32>, tensor<8x12xf32>, tensor<12xf32>, tensor<12xf32>, tensor<8xf32>) -> tensor<?x?x8xf32>
  %h1 = arith.addf %r0, %f0 {moe.layer = 0 : i64} : tensor<?x?x8xf32>
  %ln1 = moe.param @bexp.ckpt::"model.layers.1.input_layernorm.weight" : tensor<8xf32>
  %a1 = moe.rms_norm %h1, %ln1 epsilon 1.0e-5 {moe.layer = 1 : i64} : tensor<?x?x8xf32>, tensor<8xf32> -> tensor<?x?x8xf32>
  %wq1 = moe.param @bexp.ckpt::"model.layers.1.self_attn.q_proj.weight" : tensor<8x8xf32>
  %q1 = moe.linear %a1, %wq1 {moe.layer = 1 : i64} : (tensor<?x?x8xf32>, tensor<8x8xf32>) -> tensor<?x?x8xf32>
  %wk1 = moe.param @bexp.ckpt::"model.layers.1.self_attn.k_proj.weight" : tensor<4x8xf32>
  %k1 = moe.linear %a1, %wk1 {moe.layer = 1 : i64} : (tensor<?x?x8xf32>, tensor<4x8xf32>) -> tensor<?x?x4xf32>
  %wv1 = moe.param @bexp.ckpt::"model.layers.1.self_attn.v_proj.weight" : tensor<4x8xf32>
  %v1 = moe.linear %a1, %wv1 {moe.layer = 1 : i64} : (tensor<?x?x8xf32>, tensor<4x8xf32>) -> tensor<?x?x4xf32>
  %att1 = moe.attention %q1, %k1, %v1 heads 2 kv_heads 1 head_dim 4 rope_theta 10000.0 {moe.layer = 1 : i64} : (tensor<?x?x8xf32>, tensor<?x?x4xf32>, tensor<?x?x4xf32>) -> tensor<?x?x8xf32>
  %wo1 = moe.param @bexp.ckpt::"model.layers.1.self_attn.o_proj.weight" : tensor<8x8xf32>
  %o1 = moe.linear %att1, %wo1 {moe.layer = 1 : i64} : (tensor<?x?x8xf32>, tensor<8x8xf32>) -> tensor<?x?x8xf32>
  %r1 = arith.addf %h1, %o1 {moe.layer = 1 : i64} : tensor<?x?x8xf32>
  %pn1 = moe.param @bexp.ckpt::"model.layers.1.post_attention_layernorm.weight" : tensor<8xf32>
  %x1 = moe.rms_norm %r1, %pn1 epsilon 1.0e-5 {moe.layer = 1 : i64} : tensor<?x?x8xf32>, tensor<8xf32> -> tensor<?x?x8xf32>
  %g1 = moe.param @bexp.ckpt::"model.layers.1.mlp.gate_proj.weight" : tensor<12x8xf32>
  %u1 = moe.param @bexp.ckpt::"model.layers.1.mlp.up_proj.weight" : tensor<12x8xf32>
  %d1 = moe.param @bexp.ckpt::"model.layers.1.mlp.down_proj.weight" : tensor<8x12xf32>
  %gb1 = moe.param @bexp.ckpt::"model.layers.1.mlp.gate_proj.bias" : tensor<12xf32>
  %ub1 = moe.param @bexp.ckpt::"model.layers.1.mlp.up_proj.bias" : tensor<12xf32>
  %db1 = moe.param @bexp.ckpt::"model.layers.1.mlp.down_proj.bias" : tensor<8xf32>
  %f1 = moe.ffn %x1 gate %g1 up %u1 down %d1 gate_bias %gb1 up_bias %ub1 down_bias %db1 activation silu {moe.layer = 1 : i64} : (tensor<?x?x8xf32>, tensor<12x8xf32>, tensor<12x8xf32>, tensor<8x12xf32>, tensor<12xf32>, tensor<12xf32>, tensor<8xf32>) -> tensor<?x?x8xf32>
  %h2 = arith.addf %r1, %f1 {moe.layer = 1 : i64} : tensor<?x?x8xf32>
  %fn = moe.param @bexp.ckpt::"model.norm.weight" : tensor<8xf32>
  %hn = moe.rms_norm %h2, %fn epsilon 1.0e-5 : tensor<?x?x8xf32>, tensor<8xf32> -> tensor<?x?x8xf32>
  %logits = moe.linear %hn, %table : (tensor<?x?x8xf32>, tensor<16x8xf32>) -> tensor<?x?x16xf32>
  return %logits : tensor<?x?x16xf32>
}

func.func @adapted(%ids: tensor<?x?xi64>) -> tensor<?x?x16xf32> attributes {moe.architecture = "LlamaForCausalLM", moe.scope = @adapted.ckpt} {
  %table = moe.param @adapted.ckpt::"model.embed_tokens.weight" : tensor<16x8xf32>
  %h0 = moe.embedding %table[%ids] : tensor<16x8xf32>, tensor<?x?xi64> -> tensor<?x?x8xf32>
  %ln0 = moe.param @adapted.ckpt::"model.layers.0.input_layernorm.weight" : tensor<8xf32>
  %a0 = moe.rms_norm %h0, %ln0 epsilon 1.0e-5 {moe.layer = 0 : i64} : tensor<?x?x8xf32>, tensor<8xf32> -> tensor<?x?x8xf32>
  %wq0 = moe.param @adapted.ckpt::"model.layers.0.self_attn.q_proj.weight" : tensor<8x8xf32>
  %laq0 = moe.param @ad.ckpt::"base_model.model.model.layers.0.self_attn.q_proj.lora_A.weight" : tensor<2x8xf32>
  %lbq0 = moe.param @ad.ckpt::"base_model.model.model.layers.0.self_attn.q_proj.lora_B.weight" : tensor<8x2xf32>
  %q0 = moe.lora_linear %a0, %wq0 lora(%laq0, %lbq0) scale 2.0 {moe.layer = 0 : i64} : (tensor<?x?x8xf32>, tensor<8x8xf32>, tensor<2x8xf32>, tensor<8x2xf32>) -> tensor<?x?x8xf32>
  %wk0 = moe.param @adapted.ckpt::"model.layers.0.self_attn.k_proj.weight" : tensor<4x8xf32>
  %k0 = moe.linear %a0, %wk0 {moe.layer = 0 : i64} : (tensor<?x?x8xf32>, tensor<4x8xf32>) -> tensor<?x?x4xf32>
  %wv0 = moe.param @adapted.ckpt::"model.layers.0.self_attn.v_proj.weight" : tensor<4x8xf32>
  %v0 = moe.linear %a0, %wv0 {moe.layer = 0 : i64} : (tensor<?x?x8xf32>, tensor<4x8xf32>) -> tensor<?x?x4xf32>
  %att0 = moe.attention %q0, %k0, %v0 heads 2 kv_heads 1 head_dim 4 rope_theta 10000.0 {moe.layer = 0 : i64} : (tensor<?x?x8xf32>, tensor<?x?x4xf32>, tensor<?x?x4xf32>) -> tensor<?x?x8xf32>
  %wo0 = moe.param @adapted.ckpt::"model.layers.0.self_attn.o_proj.weight" : tensor<8x8xf32>
  %o0 = moe.linear %att0, %wo0 {moe.layer = 0 : i64} : (tensor<?x?x8xf32>, tensor<8x8xf32>) -> tensor<?x?x8xf32>
  %r0 = arith.addf %h0, %o0 {moe.layer = 0 : i64} : tensor<?x?x8xf32>
  %pn0 = moe.param @adapted.ckpt::"model.layers.0.post_attention_layernorm.weight" : tensor<8xf32>
  %x0 = moe.rms_norm %r0, %pn0 epsilon 1.0e-5 {moe.layer = 0 : i64} : tensor<?x?x8xf32>, tensor<8xf32> -> tensor<?x?x8xf32>
  %g0 = moe.param @adapted.ckpt::"model.layers.0.mlp.gate_proj.weight" : tensor<12x8xf32>
  %u0 = moe.param @adapted.ckpt::"model.layers.0.mlp.up_proj.weight" : tensor<12x8xf32>
  %d0 = moe.param @adapted.ckpt::"model.layers.0.mlp.down_proj.weight" : tensor<8x12xf32>
  %f0 = moe.ffn %x0 gate %g0 up %u0 down %d0 activation silu {moe.layer = 0 : i64} : (tensor<?x?x8xf32>, tensor<12x8xf32>, tensor<12x8xf32>, tensor<8x12xf32>) -> tensor<?x?x8xf32>
  %h1 = arith.addf %r0, %f0 {moe.layer = 0 : i64} : tensor<?x?x8xf32>
  %ln1 = moe.param @adapted.ckpt::"model.layers.1.input_layernorm.weight" : tensor<8xf32>
  %a1 = moe.rms_norm %h1, %ln1 epsilon 1.0e-5 {moe.layer = 1 : i64} : tensor<?x?x8xf32>, tensor<8xf32> -> tensor<?x?x8xf32>
  %wq1 = moe.param @adapted.ckpt::"model.layers.1.self_attn.q_proj.weight" : tensor<8x8xf32>
  %laq1 = moe.param @ad.ckpt::"base_model.model.model.layers.1.self_attn.q_proj.lora_A.weight" : tensor<2x8xf32>
  %lbq1 = moe.param @ad.ckpt::"base_model.model.model.layers.1.self_attn.q_proj.lora_B.weight" : tensor<8x2xf32>
  %q1 = moe.lora_linear %a1, %wq1 lora(%laq1, %lbq1) scale 2.0 {moe.layer = 1 : i64} : (tensor<?x?x8xf32>, tensor<8x8xf32>, tensor<2x8xf32>, tensor<8x2xf32>) -> tensor<?x?x8xf32>
  %wk1 = moe.param @adapted.ckpt::"model.layers.1.self_attn.k_proj.weight" : tensor<4x8xf32>
  %k1 = moe.linear %a1, %wk1 {moe.layer = 1 : i64} : (tensor<?x?x8xf32>, tensor<4x8xf32>) -> tensor<?x?x4xf32>
  %wv1 = moe.param @adapted.ckpt::"model.layers.1.self_attn.v_proj.weight" : tensor<4x8xf32>
  %v1 = moe.linear %a1, %wv1 {moe.layer = 1 : i64} : (tensor<?x?x8xf32>, tensor<4x8xf32>) -> tensor<?x?x4xf32>
  %att1 = moe.attention %q1, %k1, %v1 heads 2 kv_heads 1 head_dim 4 rope_theta 10000.0 {moe.layer = 1 : i64} : (tensor<?x?x8xf32>, tensor<?x?x4xf32>, tensor<?x?x4xf32>) -> tensor<?x?x8xf32>
  %wo1 = moe.param @adapted.ckpt::"model.layers.1.self_attn.o_proj.weight" : tensor<8x8xf32>
  %o1 = moe.linear %att1, %wo1 {moe.layer = 1 : i64} : (tensor<?x?x8xf32>, tensor<8x8xf32>) -> tensor<?x?x8xf32>
  %r1 = arith.addf %h1, %o1 {moe.layer = 1 : i64} : tensor<?x?x8xf32>
  %pn1 = moe.param @adapted.ckpt::"model.layers.1.post_attention_layernorm.weight" : tensor<8xf32>
  %x1 = moe.rms_norm %r1, %pn1 epsilon 1.0e-5 {moe.layer = 1 : i64} : tensor<?x?x8xf32>, tensor<8xf32> -> tensor<?x?x8xf32>
  %g1 = moe.param @adapted.ckpt::"model.layers.1.mlp.gate_proj.weight" : tensor<12x8xf32>
  %u1 = moe.param @adapted.ckpt::"model.layers.1.mlp.up_proj.weight" : tensor<12x8xf32>
  %d1 = moe.param @adapted.ckpt::"model.layers.1.mlp.down_proj.weight" : tensor<8x12xf32>
  %f1 = moe.ffn %x1 gate %g1 up %u1 down %d1 activation silu {moe.layer = 1 : i64} : (tensor<?x?x8xf32>, tensor<12x8xf32>, tensor<12x8xf32>, tensor<8x12xf32>) -> tensor<?x?x8xf32>
  %h2 = arith.addf %r1, %f1 {moe.layer = 1 : i64} : tensor<?x?x8xf32>
  %fn = moe.param @adapted.ckpt::"model.norm.weight" : tensor<8xf32>
  %hn = moe.rms_norm %h2, %fn epsilon 1.0e-5 : tensor<?x?x8xf32>, tensor<8xf32> -> tensor<?x?x8xf32>
  %logits = moe.linear %hn, %table : (tensor<?x?x8xf32>, tensor<16x8xf32>) -> tensor<?x?x16xf32>
  return %logits : tensor<?x?x16xf32>
}

func.func @gelu(%ids: tensor<?x?xi64>) -> tensor<?x?x16xf32> attributes {moe.architecture = "LlamaForCausalLM", moe.scope = @gelu.ckpt} {
  %table = moe.param @gelu.ckpt::"model.embed_tokens.weight" : tensor<16x8xf32>
  %h0 = moe.embedding %table[%ids] : tensor<16x8xf32>, tensor<?x?xi64> -> tensor<?x?x8xf32>
  %ln0 = moe.param @gelu.ckpt::"model.layers.0.input_layernorm.weight" : tensor<8xf32>
  %a0 = moe.rms_norm %h0, %ln0 epsilon 1.0e-5 {moe.layer = 0 : i64} : tensor<?x?x8xf32>, tensor<8xf32> -> tensor<?x?x8xf32>
  %wq0 = moe.param @gelu.ckpt::"model.layers.0.self_attn.q_proj.weight" : tensor<8x8xf32>
  %q0 = moe.linear %a0, %wq0 {moe.layer = 0 : i64} : (tensor<?x?x8xf32>, tensor<8x8xf32>) -> tensor<?x?x8xf32>
  %wk0 = moe.param @gelu.ckpt::"model.layers.0.self_attn.k_proj.weight" : tensor<4x8xf32>
  %k0 = moe.linear %a0, %wk0 {moe.layer = 0 : i64} : (tensor<?x?x8xf32>, tensor<4x8xf32>) -> tensor<?x?x4xf32>
  %wv0 = moe.param @gelu.ckpt::"model.layers.0.self_attn.v_proj.weight" : tensor<4x8xf32>
  %v0 = moe.linear %a0, %wv0 {moe.layer = 0 : i64} : (tensor<?x?x8xf32>, tensor<4x8xf32>) -> tensor<?x?x4xf32>
  %att0 = moe.attention %q0, %k0, %v0 heads 2 kv_heads 1 head_dim 4 rope_theta 10000.0 {moe.layer = 0 : i64} : (tensor<?x?x8xf32>, tensor<?x?x4xf32>, tensor<?x?x4xf32>) -> tensor<?x?x8xf32>
  %wo0 = moe.param @gelu.ckpt::"model.layers.0.self_attn.o_proj.weight" : tensor<8x8xf32>
  %o0 = moe.linear %att0, %wo0 {moe.layer = 0 : i64} : (tensor<?x?x8xf32>, tensor<8x8xf32>) -> tensor<?x?x8xf32>
  %r0 = arith.addf %h0, %o0 {moe.layer = 0 : i64} : tensor<?x?x8xf32>
  %pn0 = moe.param @gelu.ckpt::"model.layers.0.post_attention_layernorm.weight" : tensor<8xf32>
  %x0 = moe.rms_norm %r0, %pn0 epsilon 1.0e-5 {moe.layer = 0 : i64} : tensor<?x?x8xf32>, tensor<8xf32> -> tensor<?x?x8xf32>
  %g0 = moe.param @gelu.ckpt::"model.layers.0.mlp.gate_proj.weight" : tensor<12x8xf32>
  %u0 = moe.param @gelu.ckpt::"model.layers.0.mlp.up_proj.weight" : tensor<12x8xf32>
  %d0 = moe.param @gelu.ckpt::"model.layers.0.mlp.down_proj.weight" : tensor<8x12xf32>
  %f0 = moe.ffn %x0 gate %g0 up %u0 down %d0 activation gelu {moe.layer = 0 : i64} : (tensor<?x?x8xf32>, tensor<12x8xf32>, tensor<12x8xf32>, tensor<8x12xf32>) -> tensor<?x?x8xf32>
  %h1 = arith.addf %r0, %f0 {moe.layer = 0 : i64} : tensor<?x?x8xf32>
  %ln1 = moe.param @gelu.ckpt::"model.layers.1.input_layernorm.weight" : tensor<8xf32>
  %a1 = moe.rms_norm %h1, %ln1 epsilon 1.0e-5 {moe.layer = 1 : i64} : tensor<?x?x8xf32>, tensor<8xf32> -> tensor<?x?x8xf32>
  %wq1 = moe.param @gelu.ckpt::"model.layers.1.self_attn.q_proj.weight" : tensor<8x8xf32>
  %q1 = moe.linear %a1, %wq1 {moe.layer = 1 : i64} : (tensor<?x?x8xf32>, tensor<8x8xf32>) -> tensor<?x?x8xf32>
  %wk1 = moe.param @gelu.ckpt::"model.layers.1.self_attn.k_proj.weight" : tensor<4x8xf32>
  %k1 = moe.linear %a1, %wk1 {moe.layer = 1 : i64} : (tensor<?x?x8xf32>, tensor<4x8xf32>) -> tensor<?x?x4xf32>
  %wv1 = moe.param @gelu.ckpt::"model.layers.1.self_attn.v_proj.weight" : tensor<4x8xf32>
  %v1 = moe.linear %a1, %wv1 {moe.layer = 1 : i64} : (tensor<?x?x8xf32>, tensor<4x8xf32>) -> tensor<?x?x4xf32>
  %att1 = moe.attention %q1, %k1, %v1 heads 2 kv_heads 1 head_dim 4 rope_theta 10000.0 {moe.layer = 1 : i64} : (tensor<?x?x8xf32>, tensor<?x?x4xf32>, tensor<?x?x4xf32>) -> tensor<?x?x8xf32>
  %wo1 = moe.param @gelu.ckpt::"model.layers.1.self_attn.o_proj.weight" : tensor<8x8xf32>
  %o1 = moe.linear %att1, %wo1 {moe.layer = 1 : i64} : (tensor<?x?x8xf32>, tensor<8x8xf32>) -> tensor<?x?x8xf32>
  %r1 = arith.addf %h1, %o1 {moe.layer = 1 : i64} : tensor<?x?x8xf32>
  %pn1 = moe.param @gelu.ckpt::"model.layers.1.post_attention_layernorm.weight" : tensor<8xf32>
  %x1 = moe.rms_norm %r1, %pn1 epsilon 1.0e-5 {moe.layer = 1 : i64} : tensor<?x?x8xf32>, tensor<8xf32> -> tensor<?x?x8xf32>
  %g1 = moe.param @gelu.ckpt::"model.layers.1.mlp.gate_proj.weight" : tensor<12x8xf32>
  %u1 = moe.param @gelu.ckpt::"model.layers.1.mlp.up_proj.weight" : tensor<12x8xf32>
  %d1 = moe.param @gelu.ckpt::"model.layers.1.mlp.down_proj.weight" : tensor<8x12xf32>
  %f1 = moe.ffn %x1 gate %g1 up %u1 down %d1 activation gelu {moe.layer = 1 : i64} : (tensor<?x?x8xf32>, tensor<12x8xf32>, tensor<12x8xf32>, tensor<8x12xf32>) -> tensor<?x?x8xf32>
  %h2 = arith.addf %r1, %f1 {moe.layer = 1 : i64} : tensor<?x?x8xf32>
  %fn = moe.param @gelu.ckpt::"model.norm.weight" : tensor<8xf32>
  %hn = moe.rms_norm %h2, %fn epsilon 1.0e-5 : tensor<?x?x8xf32>, tensor<8xf32> -> tensor<?x?x8xf32>
  %logits = moe.linear %hn, %table : (tensor<?x?x8xf32>, tensor<16x8xf32>) -> tensor<?x?x16xf32>
  return %logits : tensor<?x?x16xf32>
}

func.func @wide(%ids: tensor<?x?xi64>) -> tensor<?x?x17xf32> attributes {moe.architecture = "LlamaForCausalLM", moe.scope = @wide.ckpt} {
  %table = moe.param @wide.ckpt::"model.embed_tokens.weight" : tensor<17x8xf32>
  %h0 = moe.embedding %table[%ids] : tensor<17x8xf32>, tensor<?x?xi64> -> tensor<?x?x8xf32>
  %ln0 = moe.param @wide.ckpt::"model.layers.0.input_layernorm.weight" : tensor<8xf32>
  %a0 = moe.rms_norm %h0, %ln0 epsilon 1.0e-5 {moe.layer = 0 : i64} : tensor<?x?x8xf32>, tensor<8xf32> -> tensor<?x?x8xf32>
  %wq0 = moe.param @wide.ckpt::"model.layers.0.self_attn.q_proj.weight" : tensor<8x8xf32>
  %q0 = moe.linear %a0, %wq0 {moe.layer = 0 : i64} : (tensor<?x?x8xf32>, tensor<8x8xf32>) -> tensor<?x?x8xf32>
  %wk0 = moe.param @wide.ckpt::"model.layers.0.self_attn.k_proj.weight" : tensor<4x8xf32>
  %k0 = moe.linear %a0, %wk0 {moe.layer = 0 : i64} : (tensor<?x?x8xf32>, tensor<4x8xf32>) -> tensor<?x?x4xf32>
  %wv0 = moe.param @wide.ckpt::"model.layers.0.self_attn.v_proj.weight" : tensor<4x8xf32>
  %v0 = moe.linear %a0, %wv0 {moe.layer = 0 : i64} : (tensor<?x?x8xf32>, tensor<4x8xf32>) -> tensor<?x?x4xf32>
  %att0 = moe.attention %q0, %k0, %v0 heads 2 kv_heads 1 head_dim 4 rope_theta 10000.0 {moe.layer = 0 : i64} : (tensor<?x?x8xf32>, tensor<?x?x4xf32>, tensor<?x?x4xf32>) -> tensor<?x?x8xf32>
  %wo0 = moe.param @wide.ckpt::"model.layers.0.self_attn.o_proj.weight" : tensor<8x8xf32>
  %o0 = moe.linear %att0, %wo0 {moe.layer = 0 : i64} : (tensor<?x?x8xf32>, tensor<8x8xf32>) -> tensor<?x?x8xf32>
  %r0 = arith.addf %h0, %o0 {moe.layer = 0 : i64} : tensor<?x?x8xf32>
  %pn0 = moe.param @wide.ckpt::"model.layers.0.post_attention_layernorm.weight" : tensor<8xf32>
  %x0 = moe.rms_norm %r0, %pn0 epsilon 1.0e-5 {moe.layer = 0 : i64} : tensor<?x?x8xf32>, tensor<8xf32> -> tensor<?x?x8xf32>
  %g0 = moe.param @wide.ckpt::"model.layers.0.mlp.gate_proj.weight" : tensor<12x8xf32>
  %u0 = moe.param @wide.ckpt::"model.layers.0.mlp.up_proj.weight" : tensor<12x8xf32>
  %d0 = moe.param @wide.ckpt::"model.layers.0.mlp.down_proj.weight" : tensor<8x12xf32>
  %f0 = moe.ffn %x0 gate %g0 up %u0 down %d0 activation silu {moe.layer = 0 : i64} : (tensor<?x?x8xf32>, tensor<12x8xf32>, tensor<12x8xf32>, tensor<8x12xf32>) -> tensor<?x?x8xf32>
  %h1 = arith.addf %r0, %f0 {moe.layer = 0 : i64} : tensor<?x?x8xf32>
  %ln1 = moe.param @wide.ckpt::"model.layers.1.input_layernorm.weight" : tensor<8xf32>
  %a1 = moe.rms_norm %h1, %ln1 epsilon 1.0e-5 {moe.layer = 1 : i64} : tensor<?x?x8xf32>, tensor<8xf32> -> tensor<?x?x8xf32>
  %wq1 = moe.param @wide.ckpt::"model.layers.1.self_attn.q_proj.weight" : tensor<8x8xf32>
  %q1 = moe.linear %a1, %wq1 {moe.layer = 1 : i64} : (tensor<?x?x8xf32>, tensor<8x8xf32>) -> tensor<?x?x8xf32>
  %wk1 = moe.param @wide.ckpt::"model.layers.1.self_attn.k_proj.weight" : tensor<4x8xf32>
  %k1 = moe.linear %a1, %wk1 {moe.layer = 1 : i64} : (tensor<?x?x8xf32>, tensor<4x8xf32>) -> tensor<?x?x4xf32>
  %wv1 = moe.param @wide.ckpt::"model.layers.1.self_attn.v_proj.weight" : tensor<4x8xf32>
  %v1 = moe.linear %a1, %wv1 {moe.layer = 1 : i64} : (tensor<?x?x8xf32>, tensor<4x8xf32>) -> tensor<?x?x4xf32>
  %att1 = moe.attention %q1, %k1, %v1 heads 2 kv_heads 1 head_dim 4 rope_theta 10000.0 {moe.layer = 1 : i64} : (tensor<?x?x8xf32>, tensor<?x?x4xf32>, tensor<?x?x4xf32>) -> tensor<?x?x8xf32>
  %wo1 = moe.param @wide.ckpt::"model.layers.1.self_attn.o_proj.weight" : tensor<8x8xf32>
  %o1 = moe.linear %att1, %wo1 {moe.layer = 1 : i64} : (tensor<?x?x8xf32>, tensor<8x8xf32>) -> tensor<?x?x8xf32>
  %r1 = arith.addf %h1, %o1 {moe.layer = 1 : i64} : tensor<?x?x8xf32>
  %pn1 = moe.param @wide.ckpt::"model.layers.1.post_attention_layernorm.weight" : tensor<8xf32>
  %x1 = moe.rms_norm %r1, %pn1 epsilon 1.0e-5 {moe.layer = 1 : i64} : tensor<?x?x8xf32>, tensor<8xf32> -> tensor<?x?x8xf32>
  %g1 = moe.param @wide.ckpt::"model.layers.1.mlp.gate_proj.weight" : tensor<12x8xf32>
  %u1 = moe.param @wide.ckpt::"model.layers.1.mlp.up_proj.weight" : tensor<12x8xf32>
  %d1 = moe.param @wide.ckpt::"model.layers.1.mlp.down_proj.weight" : tensor<8x12xf32>
  %f1 = moe.ffn %x1 gate %g1 up %u1 down %d1 activation silu {moe.layer = 1 : i64} : (tensor<?x?x8xf32>, tensor<12x8xf32>, tensor<12x8xf32>, tensor<8x12xf32>) -> tensor<?x?x8xf32>
  %h2 = arith.addf %r1, %f1 {moe.layer = 1 : i64} : tensor<?x?x8xf32>
  %fn = moe.param @wide.ckpt::"model.norm.weight" : tensor<8xf32>
  %hn = moe.rms_norm %h2, %fn epsilon 1.0e-5 : tensor<?x?x8xf32>, tensor<8xf32> -> tensor<?x?x8xf32>
  %logits = moe.linear %hn, %table : (tensor<?x?x8xf32>, tensor<17x8xf32>) -> tensor<?x?x17xf32>
  return %logits : tensor<?x?x17xf32>
}
