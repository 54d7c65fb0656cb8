// RUN: rm -rf %t && mkdir -p %t
// RUN: moe-opt %s --moe-report-params="output=%t/params.json" 2>&1 >/dev/null | FileCheck %s --implicit-check-not='see current operation'
// RUN: FileCheck %s --check-prefix=JSON < %t/params.json
// RUN: not moe-opt %s --moe-report-params="output=%t/missing/dir/params.json" 2>&1 | FileCheck %s --check-prefix=ERROR --implicit-check-not='see current operation'
// The remarks and the error name the function or the file, without printing
// IR.

moe.scope @s path "m" format huggingface

// A tied table (counted once) and a top-1 of 4 routed FFN with a shared
// expert: every token uses 1 of the 4 experts plus the shared one.
// CHECK: remark: parameters of 'routed': stem 64, expert 112, router 16, total 192, active 120
func.func @routed(%ids: tensor<?x?xi64>) -> tensor<?x?x16xf32> {
  %t = moe.param @s::"embed" : tensor<16x4xf32>
  %h = moe.embedding %t[%ids] : tensor<16x4xf32>, tensor<?x?xi64> -> tensor<?x?x4xf32>
  %r = moe.param @s::"router" : tensor<4x4xf32>
  %l = moe.router %h, %r : (tensor<?x?x4xf32>, tensor<4x4xf32>) -> tensor<?x?x4xf32>
  %w, %i = moe.topk_gating %l k 1 scoring softmax : tensor<?x?x4xf32> -> tensor<?x?x1xf32>, tensor<?x?x1xi64>
  %u0 = moe.param @s::"u0" : tensor<3x4xf32>
  %u1 = moe.param @s::"u1" : tensor<3x4xf32>
  %u2 = moe.param @s::"u2" : tensor<3x4xf32>
  %u3 = moe.param @s::"u3" : tensor<3x4xf32>
  %d = moe.random_normal seed 1 mean 0.0 std 1.0 : tensor<4x4x3xf32>
  %us = moe.stack %u0, %u1, %u2, %u3 : tensor<3x4xf32>, tensor<3x4xf32>, tensor<3x4xf32>, tensor<3x4xf32> -> tensor<4x3x4xf32>
  %su = moe.param @s::"su" : tensor<2x4xf32>
  %sd = moe.param @s::"sd" : tensor<4x2xf32>
  %y = moe.experts %h routed(%w, %i) up %us down %d shared_up %su shared_down %sd activation relu : (tensor<?x?x4xf32>, tensor<?x?x1xf32>, tensor<?x?x1xi64>, tensor<4x3x4xf32>, tensor<4x4x3xf32>, tensor<2x4xf32>, tensor<4x2xf32>) -> tensor<?x?x4xf32>
  %o = moe.linear %y, %t : (tensor<?x?x4xf32>, tensor<16x4xf32>) -> tensor<?x?x16xf32>
  return %o : tensor<?x?x16xf32>
}

// Gate-less: every token uses every expert.
// CHECK: remark: parameters of 'gateless': stem 0, expert 48, router 0, total 48, active 48
func.func @gateless(%x: tensor<?x4xf32>) -> tensor<?x4xf32> {
  %w, %i = moe.uniform_gating %x experts 2 : tensor<?x4xf32> -> tensor<?x2xf32>, tensor<?x2xi64>
  %u = moe.random_normal seed 1 mean 0.0 std 1.0 : tensor<2x3x4xf32>
  %d = moe.random_normal seed 2 mean 0.0 std 1.0 : tensor<2x4x3xf32>
  %y = moe.experts %x routed(%w, %i) up %u down %d activation relu : (tensor<?x4xf32>, tensor<?x2xf32>, tensor<?x2xi64>, tensor<2x3x4xf32>, tensor<2x4x3xf32>) -> tensor<?x4xf32>
  return %y : tensor<?x4xf32>
}

// A mixture of two adapters of different ranks, top-1: the larger counts.
// CHECK: remark: parameters of 'adapters': stem 16, expert 32, router 8, total 56, active 48
func.func @adapters(%x: tensor<?x4xf32>) -> tensor<?x4xf32> {
  %w = moe.param @s::"w" : tensor<4x4xf32>
  %r = moe.param @s::"r" : tensor<2x4xf32>
  %a0 = moe.param @s::"a0" : tensor<1x4xf32>
  %b0 = moe.param @s::"b0" : tensor<4x1xf32>
  %a1 = moe.param @s::"a1" : tensor<3x4xf32>
  %b1 = moe.param @s::"b1" : tensor<4x3xf32>
  %y = moe.mixture_of_lora %x, %w router %r lora_a(%a0, %a1) lora_b(%b0, %b1) scales [1.0, 1.0] normalization softmax {top_k = 1 : i64} : (tensor<?x4xf32>, tensor<4x4xf32>, tensor<2x4xf32>, tensor<1x4xf32>, tensor<3x4xf32>, tensor<4x1xf32>, tensor<4x3xf32>) -> tensor<?x4xf32>
  return %y : tensor<?x4xf32>
}

// The fused form and routed projections count like their unfused forms.
// CHECK: remark: parameters of 'fused': stem 0, expert 144, router 8, total 152, active 56
func.func @fused(%x: tensor<?x4xf32>) -> (tensor<?x4xf32>, tensor<?x6xf32>) {
  %r = moe.param @s::"r" : tensor<2x4xf32>
  %u = moe.random_normal seed 1 mean 0.0 std 1.0 : tensor<2x3x4xf32>
  %d = moe.random_normal seed 2 mean 0.0 std 1.0 : tensor<2x4x3xf32>
  %y = moe.fused_moe %x router %r up %u down %d k 1 scoring softmax activation relu : (tensor<?x4xf32>, tensor<2x4xf32>, tensor<2x3x4xf32>, tensor<2x4x3xf32>) -> tensor<?x4xf32>
  %w, %i = moe.topk_gating %y k 1 scoring softmax : tensor<?x4xf32> -> tensor<?x1xf32>, tensor<?x1xi64>
  %s = moe.random_normal seed 3 mean 0.0 std 1.0 : tensor<4x6x4xf32>
  %z = moe.routed_linear %x routed(%w, %i), %s : (tensor<?x4xf32>, tensor<?x1xf32>, tensor<?x1xi64>, tensor<4x6x4xf32>) -> tensor<?x6xf32>
  return %y, %z : tensor<?x4xf32>, tensor<?x6xf32>
}

// JSON: "functions": {
// JSON-DAG: "adapters": {
// JSON-DAG: "active": 120,
// JSON-DAG: "expert": 112,
// JSON-DAG: "router": 16,
// JSON-DAG: "stem": 64,
// JSON-DAG: "total": 192

// ERROR: error: cannot write '{{.*}}missing/dir/params.json': {{.*}}missing/dir: does not exist
