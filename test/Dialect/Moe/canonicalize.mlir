// RUN: moe-opt %s -split-input-file -canonicalize | FileCheck %s

// A softmax-routed op over one expert is that expert's dense FFN.
// CHECK-LABEL: func.func @single_expert_softmax
// CHECK-SAME: (%[[X:.*]]: tensor<?x4xf32>, %[[R:.*]]: tensor<1x4xf32>, %[[G:.*]]: tensor<8x4xf32>, %[[U:.*]]: tensor<8x4xf32>, %[[D:.*]]: tensor<4x8xf32>)
// CHECK-NEXT: %[[Y:.*]] = moe.ffn %[[X]] gate %[[G]] up %[[U]] down %[[D]] activation silu {moe.layer = 2 : i64}
// CHECK-NEXT: return %[[Y]]
func.func @single_expert_softmax(%x: tensor<?x4xf32>, %r: tensor<1x4xf32>, %g: tensor<8x4xf32>, %u: tensor<8x4xf32>, %d: tensor<4x8xf32>) -> tensor<?x4xf32> {
  %l = moe.router %x, %r : (tensor<?x4xf32>, tensor<1x4xf32>) -> tensor<?x1xf32>
  %w, %i = moe.topk_gating %l k 1 scoring softmax : tensor<?x1xf32> -> tensor<?x1xf32>, tensor<?x1xi64>
  %gs = moe.stack %g : tensor<8x4xf32> -> tensor<1x8x4xf32>
  %us = moe.stack %u : tensor<8x4xf32> -> tensor<1x8x4xf32>
  %ds = moe.stack %d : tensor<4x8xf32> -> tensor<1x4x8xf32>
  %y = moe.experts %x routed(%w, %i) gate %gs up %us down %ds activation silu {moe.layer = 2 : i64} : (tensor<?x4xf32>, tensor<?x1xf32>, tensor<?x1xi64>, tensor<1x8x4xf32>, tensor<1x8x4xf32>, tensor<1x4x8xf32>) -> tensor<?x4xf32>
  return %y : tensor<?x4xf32>
}

// -----

// Stacked weights that come from elsewhere are sliced.
// CHECK-LABEL: func.func @single_expert_uniform
// CHECK: %[[U:.*]] = tensor.extract_slice %{{.*}}[0, 0, 0] [1, 8, 4] [1, 1, 1] : tensor<1x8x4xf32> to tensor<8x4xf32>
// CHECK: %[[D:.*]] = tensor.extract_slice %{{.*}}[0, 0, 0] [1, 4, 8] [1, 1, 1] : tensor<1x4x8xf32> to tensor<4x8xf32>
// CHECK: moe.ffn %{{.*}} up %[[U]] down %[[D]] activation relu
// CHECK-NOT: moe.experts
func.func @single_expert_uniform(%x: tensor<?x4xf32>, %us: tensor<1x8x4xf32>, %ds: tensor<1x4x8xf32>) -> tensor<?x4xf32> {
  %w, %i = moe.uniform_gating %x experts 1 : tensor<?x4xf32> -> tensor<?x1xf32>, tensor<?x1xi64>
  %y = moe.experts %x routed(%w, %i) up %us down %ds activation relu : (tensor<?x4xf32>, tensor<?x1xf32>, tensor<?x1xi64>, tensor<1x8x4xf32>, tensor<1x4x8xf32>) -> tensor<?x4xf32>
  return %y : tensor<?x4xf32>
}

// -----

// A single expert scored by a bare sigmoid has a gate weight below one: keep.
// CHECK-LABEL: func.func @single_expert_sigmoid
// CHECK: moe.experts
func.func @single_expert_sigmoid(%x: tensor<?x4xf32>, %r: tensor<1x4xf32>, %us: tensor<1x8x4xf32>, %ds: tensor<1x4x8xf32>) -> tensor<?x4xf32> {
  %l = moe.router %x, %r : (tensor<?x4xf32>, tensor<1x4xf32>) -> tensor<?x1xf32>
  %w, %i = moe.topk_gating %l k 1 scoring sigmoid : tensor<?x1xf32> -> tensor<?x1xf32>, tensor<?x1xi64>
  %y = moe.experts %x routed(%w, %i) up %us down %ds activation relu : (tensor<?x4xf32>, tensor<?x1xf32>, tensor<?x1xi64>, tensor<1x8x4xf32>, tensor<1x4x8xf32>) -> tensor<?x4xf32>
  return %y : tensor<?x4xf32>
}

// -----

// A renormalised sigmoid over one expert is one.
// CHECK-LABEL: func.func @single_expert_sigmoid_renormalized
// CHECK-NOT: moe.experts
// CHECK: moe.ffn
func.func @single_expert_sigmoid_renormalized(%x: tensor<?x4xf32>, %r: tensor<1x4xf32>, %us: tensor<1x8x4xf32>, %ds: tensor<1x4x8xf32>) -> tensor<?x4xf32> {
  %l = moe.router %x, %r : (tensor<?x4xf32>, tensor<1x4xf32>) -> tensor<?x1xf32>
  %w, %i = moe.topk_gating %l k 1 scoring sigmoid {renormalize} : tensor<?x1xf32> -> tensor<?x1xf32>, tensor<?x1xi64>
  %y = moe.experts %x routed(%w, %i) up %us down %ds activation relu : (tensor<?x4xf32>, tensor<?x1xf32>, tensor<?x1xi64>, tensor<1x8x4xf32>, tensor<1x4x8xf32>) -> tensor<?x4xf32>
  return %y : tensor<?x4xf32>
}

// -----

// Two experts stay routed; so does one expert with a shared expert beside it.
// CHECK-LABEL: func.func @keeps_routing
// CHECK-COUNT-2: moe.experts
func.func @keeps_routing(%x: tensor<?x4xf32>, %us: tensor<2x8x4xf32>, %ds: tensor<2x4x8xf32>, %u1: tensor<1x8x4xf32>, %d1: tensor<1x4x8xf32>, %su: tensor<8x4xf32>, %sd: tensor<4x8xf32>) -> (tensor<?x4xf32>, tensor<?x4xf32>) {
  %w, %i = moe.uniform_gating %x experts 2 : tensor<?x4xf32> -> tensor<?x2xf32>, tensor<?x2xi64>
  %y = moe.experts %x routed(%w, %i) up %us down %ds activation relu : (tensor<?x4xf32>, tensor<?x2xf32>, tensor<?x2xi64>, tensor<2x8x4xf32>, tensor<2x4x8xf32>) -> tensor<?x4xf32>
  %w1, %i1 = moe.uniform_gating %x experts 1 : tensor<?x4xf32> -> tensor<?x1xf32>, tensor<?x1xi64>
  %z = moe.experts %x routed(%w1, %i1) up %u1 down %d1 shared_up %su shared_down %sd activation relu : (tensor<?x4xf32>, tensor<?x1xf32>, tensor<?x1xi64>, tensor<1x8x4xf32>, tensor<1x4x8xf32>, tensor<8x4xf32>, tensor<4x8xf32>) -> tensor<?x4xf32>
  return %y, %z : tensor<?x4xf32>, tensor<?x4xf32>
}

// -----

// CHECK-LABEL: func.func @zero_scale_lora
// CHECK-NEXT: %[[Y:.*]] = moe.linear %arg0, %arg1 bias %arg2 :
// CHECK-NEXT: return %[[Y]]
func.func @zero_scale_lora(%x: tensor<?x4xf32>, %w: tensor<8x4xf32>, %b: tensor<8xf32>, %a: tensor<2x4xf32>, %bb: tensor<8x2xf32>) -> tensor<?x8xf32> {
  %y = moe.lora_linear %x, %w bias %b lora(%a, %bb) scale 0.0 : (tensor<?x4xf32>, tensor<8x4xf32>, tensor<8xf32>, tensor<2x4xf32>, tensor<8x2xf32>) -> tensor<?x8xf32>
  return %y : tensor<?x8xf32>
}

// -----

// CHECK-LABEL: func.func @folds
// CHECK-SAME: (%[[A:.*]]: tensor<4xf32>, %[[X:.*]]: tensor<?x4xf32>)
// CHECK-NEXT: return %[[A]], %[[X]]
func.func @folds(%a: tensor<4xf32>, %x: tensor<?x4xf32>) -> (tensor<4xf32>, tensor<?x4xf32>) {
  %m = moe.average %a, %a, %a : tensor<4xf32>, tensor<4xf32>, tensor<4xf32> -> tensor<4xf32>
  %s = moe.scale %x by 1.0 : tensor<?x4xf32>
  return %m, %s : tensor<4xf32>, tensor<?x4xf32>
}

// -----

// CHECK-LABEL: func.func @no_folds
// CHECK: moe.average
// CHECK: moe.scale
func.func @no_folds(%a: tensor<4xf32>, %b: tensor<4xf32>, %x: tensor<?x4xf32>) -> (tensor<4xf32>, tensor<?x4xf32>) {
  %m = moe.average %a, %b : tensor<4xf32>, tensor<4xf32> -> tensor<4xf32>
  %s = moe.scale %x by 2.0 : tensor<?x4xf32>
  return %m, %s : tensor<4xf32>, tensor<?x4xf32>
}
