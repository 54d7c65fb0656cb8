// RUN: moe-opt %s --moe-lower-to-llvm | FileCheck %s
// RUN: moe-opt %s --moe-lower-to-llvm="strategy=dense vectorize=false" | FileCheck %s --check-prefix=SCALAR
// RUN: moe-opt %S/Inputs/layer-with-params.mlir --moe-outline-weights --moe-lower-to-llvm | FileCheck %s --check-prefix=OUTLINED
// RUN: moe-opt %S/Inputs/layer-with-params.mlir --moe-outline-weights --moe-lower-to-llvm="strategy=kernels mma=tf32" | FileCheck %s --check-prefix=OUTLINED

// An outlined mix lowers as it is: the weights function and the scope are
// stripped, the compute function takes the weights as arguments.
// OUTLINED-NOT: moe.
// OUTLINED: llvm.func @layer(
// OUTLINED-NOT: moe.

// The whole pipeline ends in the LLVM dialect, with a C interface for the
// runner.
// CHECK: llvm.func @model
// CHECK: llvm.fmul {{.*}} : vector<
// CHECK: llvm.func @_mlir_ciface_model
// CHECK-NOT: linalg.
// CHECK-NOT: moe.
// SCALAR: llvm.func @model
// SCALAR-NOT: vector<
func.func @model(%x: tensor<?x?x8xf32>, %w: tensor<4x8xf32>, %r: tensor<3x8xf32>, %u: tensor<3x6x8xf32>, %d: tensor<3x8x6xf32>) -> tensor<?x?x8xf32> attributes {llvm.emit_c_interface} {
  %l = moe.router %x, %r : (tensor<?x?x8xf32>, tensor<3x8xf32>) -> tensor<?x?x3xf32>
  %g, %i = moe.topk_gating %l k 2 scoring softmax {renormalize} : tensor<?x?x3xf32> -> tensor<?x?x2xf32>, tensor<?x?x2xi64>
  %y = moe.experts %x routed(%g, %i) up %u down %d activation silu : (tensor<?x?x8xf32>, tensor<?x?x2xf32>, tensor<?x?x2xi64>, tensor<3x6x8xf32>, tensor<3x8x6xf32>) -> tensor<?x?x8xf32>
  %z = arith.addf %x, %y : tensor<?x?x8xf32>
  return %z : tensor<?x?x8xf32>
}
