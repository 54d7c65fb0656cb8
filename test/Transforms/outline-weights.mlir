// RUN: moe-opt %s -split-input-file --moe-outline-weights | FileCheck %s

moe.scope @s path "m" format safetensors

// Weights read by compute ops become trailing arguments, computed by
// @model.weights; weights only other weights read (the stack inputs) stay
// inside it.
// CHECK-LABEL: func.func private @model.weights() -> (tensor<4x8xf32>, tensor<2x8xf32>, tensor<2x6x8xf32>)
// CHECK-DAG:   %[[T:.*]] = moe.param @s::"table" : tensor<4x8xf32>
// CHECK-DAG:   %[[A:.*]] = moe.param @s::"a" : tensor<6x8xf32>
// CHECK-DAG:   %[[B:.*]] = moe.param @s::"b" : tensor<6x8xf32>
// CHECK-DAG:   %[[S:.*]] = moe.stack %[[A]], %[[B]]
// CHECK-DAG:   %[[R:.*]] = moe.random_normal seed 1
// CHECK:       return %[[T]], %[[R]], %[[S]]
// CHECK-LABEL: func.func @model(%arg0: tensor<?x?xi64>, %arg1: tensor<4x8xf32> {moe.weight = 0 : i64}, %arg2: tensor<2x8xf32> {moe.weight = 1 : i64}, %arg3: tensor<2x6x8xf32> {moe.weight = 2 : i64}) -> tensor<?x?x4xf32>
// CHECK-SAME:  moe.weights = @model.weights
// CHECK-NOT:   moe.param
// CHECK:       moe.embedding %arg1[%arg0]
// CHECK:       moe.router %{{.*}}, %arg2
// CHECK:       moe.routed_linear %{{.*}} routed(%{{.*}}, %{{.*}}), %arg3
// CHECK:       moe.linear %{{.*}}, %arg1
func.func @model(%ids: tensor<?x?xi64>) -> tensor<?x?x4xf32> attributes {moe.scope = @s} {
  %t = moe.param @s::"table" : tensor<4x8xf32>
  %h = moe.embedding %t[%ids] : tensor<4x8xf32>, tensor<?x?xi64> -> tensor<?x?x8xf32>
  %r = moe.random_normal seed 1 mean 0.0 std 1.0 : tensor<2x8xf32>
  %l = moe.router %h, %r : (tensor<?x?x8xf32>, tensor<2x8xf32>) -> tensor<?x?x2xf32>
  %w, %i = moe.topk_gating %l k 1 scoring softmax : tensor<?x?x2xf32> -> tensor<?x?x1xf32>, tensor<?x?x1xi64>
  %a = moe.param @s::"a" : tensor<6x8xf32>
  %b = moe.param @s::"b" : tensor<6x8xf32>
  %s = moe.stack %a, %b : tensor<6x8xf32>, tensor<6x8xf32> -> tensor<2x6x8xf32>
  %y = moe.routed_linear %h routed(%w, %i), %s : (tensor<?x?x8xf32>, tensor<?x?x1xf32>, tensor<?x?x1xi64>, tensor<2x6x8xf32>) -> tensor<?x?x6xf32>
  %z = moe.linear %h, %t : (tensor<?x?x8xf32>, tensor<4x8xf32>) -> tensor<?x?x4xf32>
  return %z : tensor<?x?x4xf32>
}

// -----

// Without weights nothing changes.
// CHECK-LABEL: func.func @plain
// CHECK-NOT: moe.weights
func.func @plain(%x: tensor<?x8xf32>, %w: tensor<4x8xf32>) -> tensor<?x4xf32> {
  %y = moe.linear %x, %w : (tensor<?x8xf32>, tensor<4x8xf32>) -> tensor<?x4xf32>
  return %y : tensor<?x4xf32>
}

