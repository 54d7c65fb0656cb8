// RUN: moe-opt %s -split-input-file --moe-fuse-gating | FileCheck %s

// CHECK-LABEL: func.func @routed
// CHECK-SAME: (%[[X:.*]]: tensor<?x?x8xf32>, %[[R:.*]]: tensor<4x8xf32>, %[[RB:.*]]: tensor<4xf32>, %[[G:.*]]: tensor<4x6x8xf32>, %[[U:.*]]: tensor<4x6x8xf32>, %[[D:.*]]: tensor<4x8x6xf32>, %[[SU:.*]]: tensor<3x8xf32>, %[[SD:.*]]: tensor<8x3xf32>)
// CHECK-NEXT: %[[Y:.*]] = moe.fused_moe %[[X]] router %[[R]] router_bias %[[RB]] gate %[[G]] up %[[U]] down %[[D]] shared_up %[[SU]] shared_down %[[SD]] k 2 scoring sigmoid activation silu {moe.layer = 3 : i64, noise_seed = 4 : i64, noise_std = 1.000000e-01 : f64, renormalize, score_before_topk = false}
// CHECK-NEXT: return %[[Y]]
func.func @routed(%x: tensor<?x?x8xf32>, %r: tensor<4x8xf32>, %rb: tensor<4xf32>, %g: tensor<4x6x8xf32>, %u: tensor<4x6x8xf32>, %d: tensor<4x8x6xf32>, %su: tensor<3x8xf32>, %sd: tensor<8x3xf32>) -> tensor<?x?x8xf32> {
  %l = moe.router %x, %r bias %rb : (tensor<?x?x8xf32>, tensor<4x8xf32>, tensor<4xf32>) -> tensor<?x?x4xf32>
  %w, %i = moe.topk_gating %l k 2 scoring sigmoid {renormalize, score_before_topk = false, noise_std = 0.1 : f64, noise_seed = 4 : i64} : tensor<?x?x4xf32> -> tensor<?x?x2xf32>, tensor<?x?x2xi64>
  %y = moe.experts %x routed(%w, %i) gate %g up %u down %d shared_up %su shared_down %sd activation silu {moe.layer = 3 : i64} : (tensor<?x?x8xf32>, tensor<?x?x2xf32>, tensor<?x?x2xi64>, tensor<4x6x8xf32>, tensor<4x6x8xf32>, tensor<4x8x6xf32>, tensor<3x8xf32>, tensor<8x3xf32>) -> tensor<?x?x8xf32>
  return %y : tensor<?x?x8xf32>
}

// -----

// Gate-less: the weighted mean of every expert.
// CHECK-LABEL: func.func @gateless
// CHECK-NEXT: %[[Y:.*]] = moe.fused_moe %arg0 up %arg1 down %arg2 k 4 scoring softmax activation relu :
// CHECK-NEXT: return %[[Y]]
func.func @gateless(%x: tensor<?x8xf32>, %u: tensor<4x6x8xf32>, %d: tensor<4x8x6xf32>) -> tensor<?x8xf32> {
  %w, %i = moe.uniform_gating %x experts 4 : tensor<?x8xf32> -> tensor<?x4xf32>, tensor<?x4xi64>
  %y = moe.experts %x routed(%w, %i) up %u down %d activation relu : (tensor<?x8xf32>, tensor<?x4xf32>, tensor<?x4xi64>, tensor<4x6x8xf32>, tensor<4x8x6xf32>) -> tensor<?x8xf32>
  return %y : tensor<?x8xf32>
}

// -----

// A gating shared by two layers (a global router) is computed once: no
// fusion.
// CHECK-LABEL: func.func @shared_gating
// CHECK: moe.router
// CHECK: moe.topk_gating
// CHECK-COUNT-2: moe.experts
// CHECK-NOT: moe.fused_moe
func.func @shared_gating(%x: tensor<?x8xf32>, %r: tensor<4x8xf32>, %u: tensor<4x6x8xf32>, %d: tensor<4x8x6xf32>) -> tensor<?x8xf32> {
  %l = moe.router %x, %r : (tensor<?x8xf32>, tensor<4x8xf32>) -> tensor<?x4xf32>
  %w, %i = moe.topk_gating %l k 1 scoring softmax : tensor<?x4xf32> -> tensor<?x1xf32>, tensor<?x1xi64>
  %y = moe.experts %x routed(%w, %i) up %u down %d activation relu : (tensor<?x8xf32>, tensor<?x1xf32>, tensor<?x1xi64>, tensor<4x6x8xf32>, tensor<4x8x6xf32>) -> tensor<?x8xf32>
  %z = moe.experts %y routed(%w, %i) up %u down %d activation relu : (tensor<?x8xf32>, tensor<?x1xf32>, tensor<?x1xi64>, tensor<4x6x8xf32>, tensor<4x8x6xf32>) -> tensor<?x8xf32>
  return %z : tensor<?x8xf32>
}

// -----

// The router reads another value than the experts: no fusion.
// CHECK-LABEL: func.func @other_input
// CHECK: moe.experts
// CHECK-NOT: moe.fused_moe
func.func @other_input(%x: tensor<?x8xf32>, %h: tensor<?x8xf32>, %r: tensor<4x8xf32>, %u: tensor<4x6x8xf32>, %d: tensor<4x8x6xf32>) -> tensor<?x8xf32> {
  %l = moe.router %h, %r : (tensor<?x8xf32>, tensor<4x8xf32>) -> tensor<?x4xf32>
  %w, %i = moe.topk_gating %l k 1 scoring softmax : tensor<?x4xf32> -> tensor<?x1xf32>, tensor<?x1xi64>
  %y = moe.experts %x routed(%w, %i) up %u down %d activation relu : (tensor<?x8xf32>, tensor<?x1xf32>, tensor<?x1xi64>, tensor<4x6x8xf32>, tensor<4x8x6xf32>) -> tensor<?x8xf32>
  return %y : tensor<?x8xf32>
}

// -----

// The router's logits are read elsewhere too: no fusion.
// CHECK-LABEL: func.func @logits_used
// CHECK: moe.experts
// CHECK-NOT: moe.fused_moe
func.func @logits_used(%x: tensor<?x8xf32>, %r: tensor<4x8xf32>, %u: tensor<4x6x8xf32>, %d: tensor<4x8x6xf32>) -> (tensor<?x8xf32>, tensor<?x4xf32>) {
  %l = moe.router %x, %r : (tensor<?x8xf32>, tensor<4x8xf32>) -> tensor<?x4xf32>
  %w, %i = moe.topk_gating %l k 1 scoring softmax : tensor<?x4xf32> -> tensor<?x1xf32>, tensor<?x1xi64>
  %y = moe.experts %x routed(%w, %i) up %u down %d activation relu : (tensor<?x8xf32>, tensor<?x1xf32>, tensor<?x1xi64>, tensor<4x6x8xf32>, tensor<4x8x6xf32>) -> tensor<?x8xf32>
  return %y, %l : tensor<?x8xf32>, tensor<?x4xf32>
}

// -----

// One expert always chosen: a dense FFN, whether gated by a softmax router
// or gate-less.
// CHECK-LABEL: func.func @single
// CHECK-NOT: moe.fused_moe
// CHECK-NOT: moe.experts
// CHECK: %[[A:.*]] = moe.ffn %arg0 up %{{.*}} down %{{.*}} activation relu
// CHECK: %[[B:.*]] = moe.ffn %arg0 up %{{.*}} down %{{.*}} activation relu
// CHECK: return %[[A]], %[[B]]
func.func @single(%x: tensor<?x8xf32>, %r: tensor<1x8xf32>, %u: tensor<1x6x8xf32>, %d: tensor<1x8x6xf32>) -> (tensor<?x8xf32>, tensor<?x8xf32>) {
  %l = moe.router %x, %r : (tensor<?x8xf32>, tensor<1x8xf32>) -> tensor<?x1xf32>
  %w, %i = moe.topk_gating %l k 1 scoring softmax : tensor<?x1xf32> -> tensor<?x1xf32>, tensor<?x1xi64>
  %y = moe.experts %x routed(%w, %i) up %u down %d activation relu : (tensor<?x8xf32>, tensor<?x1xf32>, tensor<?x1xi64>, tensor<1x6x8xf32>, tensor<1x8x6xf32>) -> tensor<?x8xf32>
  %uw, %ui = moe.uniform_gating %x experts 1 : tensor<?x8xf32> -> tensor<?x1xf32>, tensor<?x1xi64>
  %z = moe.experts %x routed(%uw, %ui) up %u down %d activation relu : (tensor<?x8xf32>, tensor<?x1xf32>, tensor<?x1xi64>, tensor<1x6x8xf32>, tensor<1x8x6xf32>) -> tensor<?x8xf32>
  return %y, %z : tensor<?x8xf32>, tensor<?x8xf32>
}

// -----

// A single expert scored by a bare sigmoid is weighted below 1: it stays
// routed (fused).
// CHECK-LABEL: func.func @single_sigmoid
// CHECK: moe.fused_moe {{.*}} k 1 scoring sigmoid
func.func @single_sigmoid(%x: tensor<?x8xf32>, %r: tensor<1x8xf32>, %u: tensor<1x6x8xf32>, %d: tensor<1x8x6xf32>) -> tensor<?x8xf32> {
  %l = moe.router %x, %r : (tensor<?x8xf32>, tensor<1x8xf32>) -> tensor<?x1xf32>
  %w, %i = moe.topk_gating %l k 1 scoring sigmoid : tensor<?x1xf32> -> tensor<?x1xf32>, tensor<?x1xi64>
  %y = moe.experts %x routed(%w, %i) up %u down %d activation relu : (tensor<?x8xf32>, tensor<?x1xf32>, tensor<?x1xi64>, tensor<1x6x8xf32>, tensor<1x8x6xf32>) -> tensor<?x8xf32>
  return %y : tensor<?x8xf32>
}
