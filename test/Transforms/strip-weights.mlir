// RUN: moe-opt %s -split-input-file -verify-diagnostics --moe-strip-weights | FileCheck %s

// An outlined model: the scope and the weights function go; the compute
// function keeps its arguments and other attributes and loses the moe ones,
// its operations keep theirs.
// CHECK-NOT: moe.scope
// CHECK-NOT: @f.weights
// CHECK-LABEL: func.func @f(%{{.*}}: tensor<?x?xi64>, %{{.*}}: tensor<8x4xf32>) -> tensor<?x?x4xf32> attributes {llvm.emit_c_interface} {
// CHECK: moe.embedding {{.*}} {moe.layer = 0 : i64}
// CHECK-NOT: moe.param
moe.scope @m.ckpt path "/nowhere/m" format safetensors
func.func private @f.weights() -> tensor<8x4xf32> {
  %t = moe.param @m.ckpt::"model.embed_tokens.weight" : tensor<8x4xf32>
  return %t : tensor<8x4xf32>
}
func.func @f(%ids: tensor<?x?xi64>, %table: tensor<8x4xf32> {moe.weight = 0 : i64}) -> tensor<?x?x4xf32> attributes {llvm.emit_c_interface, moe.architecture = "LlamaForCausalLM", moe.scope = @m.ckpt, moe.weights = @f.weights} {
  %x = moe.embedding %table[%ids] {moe.layer = 0 : i64} : tensor<8x4xf32>, tensor<?x?xi64> -> tensor<?x?x4xf32>
  return %x : tensor<?x?x4xf32>
}

// -----

// Two functions sharing one weights function; a weights function no longer
// there (moe-run keeps the compute function alone) is no error.
// CHECK-NOT: @shared.weights
// CHECK-LABEL: func.func @g(%{{.*}}: tensor<4xf32>) -> tensor<4xf32> {
// CHECK-LABEL: func.func @h(%{{.*}}: tensor<4xf32>) -> tensor<4xf32> {
// CHECK-LABEL: func.func @k(%{{.*}}: tensor<4xf32>) -> tensor<4xf32> {
moe.scope @s path "/nowhere/s" format safetensors
func.func private @shared.weights() -> tensor<4xf32> {
  %w = moe.param @s::"w" : tensor<4xf32>
  return %w : tensor<4xf32>
}
func.func @g(%w: tensor<4xf32> {moe.weight = 0 : i64}) -> tensor<4xf32> attributes {moe.weights = @shared.weights} {
  return %w : tensor<4xf32>
}
func.func @h(%w: tensor<4xf32> {moe.weight = 0 : i64}) -> tensor<4xf32> attributes {moe.weights = @shared.weights} {
  return %w : tensor<4xf32>
}
func.func @k(%w: tensor<4xf32>) -> tensor<4xf32> attributes {moe.weights = @gone.weights} {
  return %w : tensor<4xf32>
}

// -----

// Weights not outlined.
moe.scope @m.ckpt path "/nowhere/m" format safetensors
func.func @f(%ids: tensor<?x?xi64>) -> tensor<?x?x4xf32> attributes {moe.scope = @m.ckpt} {
  // expected-error @+1 {{computes a weight inside a compute function: weights reach compiled code as arguments; run moe-outline-weights first}}
  %t = moe.param @m.ckpt::"model.embed_tokens.weight" : tensor<8x4xf32>
  %x = moe.embedding %t[%ids] : tensor<8x4xf32>, tensor<?x?xi64> -> tensor<?x?x4xf32>
  return %x : tensor<?x?x4xf32>
}
