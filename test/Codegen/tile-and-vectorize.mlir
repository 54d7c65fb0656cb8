// RUN: moe-opt %s -split-input-file --moe-tile-and-vectorize | FileCheck %s
// RUN: moe-opt %s -split-input-file --moe-tile-and-vectorize="tile-sizes=2,4,4" | FileCheck %s --check-prefix=SMALL
// RUN: not moe-opt %s --moe-tile-and-vectorize="tile-sizes=4,4" 2>&1 | FileCheck %s --check-prefix=ERROR

// ERROR: error: tile-sizes needs three positive sizes (two parallel dimensions and the reduction)

#in = affine_map<(d0, d1, d2) -> (d0, d2)>
#w = affine_map<(d0, d1, d2) -> (d1, d2)>
#out = affine_map<(d0, d1, d2) -> (d0, d1)>

// Tokens (dynamic) get tiles of 4 and their loop is peeled: full tiles are
// static and vectorise whole; the last, ragged one advances one token at a
// time. The output features (12) get the largest tile dividing them under
// 8, the reduction (24) one tile. No vector masks anywhere.
// CHECK-LABEL: func.func @projection
// CHECK: %[[FULL:.*]] = scf.for %{{.*}} = %c0 to %{{.*}} step %c4
// CHECK: scf.for %{{.*}} = %c0 to %c12 step %c6
// CHECK: vector.transfer_read {{.*}} : tensor<4x24xf32>, vector<4x6x24xf32>
// CHECK: vector.multi_reduction <add>, %{{.*}}, %{{.*}} [2] : vector<4x6x24xf32> to vector<4x6xf32>
// CHECK: scf.for %{{.*}} = %{{.*}} to %{{.*}} step %c4 iter_args(%{{.*}} = %[[FULL]])
// CHECK: scf.for %{{.*}} = %c0 to %c12 step %c6
// CHECK: scf.for %{{.*}} = %{{.*}} to %{{.*}} step %c1
// CHECK: vector.transfer_read {{.*}} : tensor<1x24xf32>, vector<1x6x24xf32>
// CHECK-NOT: vector.mask
// SMALL-LABEL: func.func @projection
// SMALL: step %c2
// SMALL: step %c4
// SMALL: step %c4
// SMALL: vector<2x4x4xf32>
func.func @projection(%x: tensor<?x24xf32>, %w: tensor<12x24xf32>, %o: tensor<?x12xf32>) -> tensor<?x12xf32> {
  %r = linalg.generic {indexing_maps = [#in, #w, #out], iterator_types = ["parallel", "parallel", "reduction"]} ins(%x, %w : tensor<?x24xf32>, tensor<12x24xf32>) outs(%o : tensor<?x12xf32>) {
  ^bb0(%a: f32, %b: f32, %c: f32):
    %m = arith.mulf %a, %b : f32
    %s = arith.addf %c, %m : f32
    linalg.yield %s : f32
  } -> tensor<?x12xf32>
  return %r : tensor<?x12xf32>
}

// -----

// Element-wise ops are not contractions: untouched.
// CHECK-LABEL: func.func @elementwise
// CHECK: linalg.generic
// CHECK-NOT: vector
#id = affine_map<(d0) -> (d0)>
func.func @elementwise(%x: tensor<?xf32>) -> tensor<?xf32> {
  %r = linalg.generic {indexing_maps = [#id, #id], iterator_types = ["parallel"]} ins(%x : tensor<?xf32>) outs(%x : tensor<?xf32>) {
  ^bb0(%a: f32, %b: f32):
    %m = arith.mulf %a, %a : f32
    linalg.yield %m : f32
  } -> tensor<?xf32>
  return %r : tensor<?xf32>
}
