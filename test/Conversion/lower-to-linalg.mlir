// RUN: moe-opt %s -split-input-file --moe-lower-to-linalg | FileCheck %s
// RUN: moe-opt %s -split-input-file --moe-lower-to-linalg="strategy=dense" | FileCheck %s --check-prefix=DENSE
// RUN: not moe-opt %s --moe-lower-to-linalg="strategy=magic" 2>&1 | FileCheck %s --check-prefix=STRATEGY
// RUN: not moe-opt %s --moe-lower-to-linalg="strategy=kernels" 2>&1 | FileCheck %s --check-prefix=KERNELS

// STRATEGY: for the --strategy option: Cannot find option named 'magic'!
// `kernels` is a strategy of the moe-lower-to-llvm pipeline, not of this pass.
// KERNELS: for the --strategy option: Cannot find option named 'kernels'!

// A projection is a contraction over the input features with the weight
// read transposed; token dimensions are collapsed around it.
// CHECK-DAG: #[[IN:.*]] = affine_map<(d0, d1, d2) -> (d0, d2)>
// CHECK-DAG: #[[W:.*]] = affine_map<(d0, d1, d2) -> (d1, d2)>
// CHECK-DAG: #[[OUT:.*]] = affine_map<(d0, d1, d2) -> (d0, d1)>
// CHECK-LABEL: func.func @linear
// CHECK: %[[X:.*]] = tensor.collapse_shape %arg0 {{\[\[}}0, 1], [2]] : tensor<?x?x8xf32> into tensor<?x8xf32>
// CHECK: linalg.generic {indexing_maps = [#[[IN]], #[[W]], #[[OUT]]], iterator_types = ["parallel", "parallel", "reduction"]} ins(%[[X]], %arg1 : tensor<?x8xf32>, tensor<4x8xf32>)
// CHECK: arith.mulf
// CHECK: arith.addf
// CHECK: tensor.reshape
// CHECK-NOT: moe.
func.func @linear(%x: tensor<?x?x8xf32>, %w: tensor<4x8xf32>) -> tensor<?x?x4xf32> {
  %y = moe.linear %x, %w : (tensor<?x?x8xf32>, tensor<4x8xf32>) -> tensor<?x?x4xf32>
  return %y : tensor<?x?x4xf32>
}

// -----

// CHECK-LABEL: func.func @embedding
// CHECK: linalg.generic {{.*}} ins(%arg1 : tensor<?x?xi64>) outs(%{{.*}} : tensor<?x?x8xf32>)
// CHECK: arith.index_cast
// CHECK: linalg.index 2
// CHECK: tensor.extract %arg0
func.func @embedding(%t: tensor<16x8xf32>, %ids: tensor<?x?xi64>) -> tensor<?x?x8xf32> {
  %h = moe.embedding %t[%ids] : tensor<16x8xf32>, tensor<?x?xi64> -> tensor<?x?x8xf32>
  return %h : tensor<?x?x8xf32>
}

// -----

// RMS norm: a sum of squares over the features, then a scaled rsqrt.
// CHECK-LABEL: func.func @rms_norm
// CHECK: iterator_types = ["parallel", "reduction"]
// CHECK: math.rsqrt
func.func @rms_norm(%x: tensor<?x8xf32>, %w: tensor<8xf32>) -> tensor<?x8xf32> {
  %y = moe.rms_norm %x, %w epsilon 1.0e-5 : tensor<?x8xf32>, tensor<8xf32> -> tensor<?x8xf32>
  return %y : tensor<?x8xf32>
}

// -----

// Attention: rotary embedding at positions from linalg.index, scores as a
// contraction over the head dimension with query heads grouped over
// key/value heads, masked softmax, weighted values.
// CHECK-LABEL: func.func @attention
// CHECK: arith.constant dense<[1.000000e+00, 0.00999999977]> : tensor<2xf32>
// CHECK: math.cos
// CHECK: math.sin
// CHECK: tensor.expand_shape %{{.*}} {{\[\[}}0], [1], [2, 3], [4]] {{.*}} : tensor<?x?x2x4xf32> into tensor<?x?x1x2x4xf32>
// CHECK: iterator_types = ["parallel", "parallel", "parallel", "parallel", "parallel", "reduction"]
// CHECK: arith.cmpi ule
// CHECK: math.exp
// CHECK: arith.divf
// CHECK: iterator_types = ["parallel", "parallel", "parallel", "parallel", "parallel", "reduction"]
// CHECK: tensor.collapse_shape %{{.*}} {{\[\[}}0], [1], [2, 3, 4]]
func.func @attention(%q: tensor<?x?x8xf32>, %k: tensor<?x?x4xf32>) -> tensor<?x?x8xf32> {
  %o = moe.attention %q, %k, %k heads 2 kv_heads 1 head_dim 4 rope_theta 10000.0 : (tensor<?x?x8xf32>, tensor<?x?x4xf32>, tensor<?x?x4xf32>) -> tensor<?x?x8xf32>
  return %o : tensor<?x?x8xf32>
}

// -----

// Top-k gating is one parallel generic over (token, slot): slot j takes the
// expert of rank j, rank counting the experts that score higher or as high
// with a lower index.
// CHECK-LABEL: func.func @gating
// CHECK: math.exp
// CHECK: %[[TOPK:.*]]:2 = linalg.generic {indexing_maps = [#map, #map], iterator_types = ["parallel", "parallel"]} outs(%{{.*}}, %{{.*}} : tensor<?x2xf32>, tensor<?x2xi64>)
// CHECK: %[[T:.*]] = linalg.index 0 : index
// CHECK: %[[J:.*]] = linalg.index 1 : index
// CHECK: scf.for %[[E:.*]] = %{{.*}} to %c4
// CHECK: %[[S:.*]] = tensor.extract %[[SCORES:.*]][%[[T]], %[[E]]]
// CHECK: %[[RANK:.*]] = scf.for %[[OTHER:.*]] = %{{.*}} to %c4
// CHECK: %[[SO:.*]] = tensor.extract %[[SCORES]][%[[T]], %[[OTHER]]]
// CHECK: arith.cmpf ogt, %[[SO]], %[[S]]
// CHECK: arith.cmpf oeq, %[[SO]], %[[S]]
// CHECK: arith.cmpi ult, %[[OTHER]], %[[E]]
// CHECK: arith.cmpi eq, %[[RANK]], %[[J]]
// Renormalisation of the chosen weights.
// CHECK: ins(%[[TOPK]]#0 : tensor<?x2xf32>)
// CHECK: return %{{.*}}, %[[TOPK]]#1
func.func @gating(%l: tensor<?x4xf32>) -> (tensor<?x2xf32>, tensor<?x2xi64>) {
  %w, %i = moe.topk_gating %l k 2 scoring softmax {renormalize} : tensor<?x4xf32> -> tensor<?x2xf32>, tensor<?x2xi64>
  return %w, %i : tensor<?x2xf32>, tensor<?x2xi64>
}

// -----

// Sparse experts: tokens are counted, sorted by expert, gathered, run
// through their expert's slice of the stacked weights and added back.
// Dense experts: every expert on every token, combined by a gate matrix.
// CHECK-LABEL: func.func @experts
// CHECK: scf.for {{.*}} -> (tensor<4xindex>)
// CHECK: scf.for {{.*}} -> (index, tensor<4xindex>)
// CHECK: scf.for {{.*}} -> (tensor<4xindex>, tensor<?xindex>, tensor<?xf32>)
// CHECK: scf.for
// CHECK: tensor.extract_slice %arg3[%{{.*}}, 0, 0] [1, 6, 8] [1, 1, 1] : tensor<4x6x8xf32> to tensor<6x8xf32>
// CHECK: tensor.insert_slice
// DENSE-LABEL: func.func @experts
// DENSE-NOT: scf.for
// DENSE: iterator_types = ["parallel", "parallel", "parallel", "reduction"]
// DENSE: iterator_types = ["parallel", "parallel", "reduction"]
func.func @experts(%x: tensor<?x8xf32>, %w: tensor<?x2xf32>, %i: tensor<?x2xi64>, %u: tensor<4x6x8xf32>, %d: tensor<4x8x6xf32>) -> tensor<?x8xf32> {
  %y = moe.experts %x routed(%w, %i) up %u down %d activation relu : (tensor<?x8xf32>, tensor<?x2xf32>, tensor<?x2xi64>, tensor<4x6x8xf32>, tensor<4x8x6xf32>) -> tensor<?x8xf32>
  return %y : tensor<?x8xf32>
}

// -----

// Weights stay for the tools to evaluate.
// CHECK-LABEL: func.func @weights_stay
// CHECK: moe.param @s::"w" : tensor<4x8xf32>
// CHECK-NOT: moe.linear
moe.scope @s path "m" format safetensors
func.func @weights_stay(%x: tensor<?x8xf32>) -> tensor<?x4xf32> {
  %w = moe.param @s::"w" : tensor<4x8xf32>
  %y = moe.linear %x, %w : (tensor<?x8xf32>, tensor<4x8xf32>) -> tensor<?x4xf32>
  return %y : tensor<?x4xf32>
}

// -----

// Noisy gating draws from the counter-based generator in integer arithmetic.
// CHECK-LABEL: func.func @noise
// CHECK: arith.constant -7046029254386353131 : i64
// CHECK: arith.shrui
// CHECK: math.log
// CHECK: math.cos
func.func @noise(%l: tensor<?x4xf32>) -> (tensor<?x1xf32>, tensor<?x1xi64>) {
  %w, %i = moe.topk_gating %l k 1 scoring softmax {noise_std = 1.0 : f64, noise_seed = 3 : i64} : tensor<?x4xf32> -> tensor<?x1xf32>, tensor<?x1xi64>
  return %w, %i : tensor<?x1xf32>, tensor<?x1xi64>
}
