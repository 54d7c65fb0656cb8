// RUN: moe-opt %s -split-input-file --moe-lower-moe-kernels="target=gpu" | FileCheck %s --check-prefix=GPU
// RUN: moe-opt %s -split-input-file --moe-lower-moe-kernels="target=cpu" | FileCheck %s --check-prefix=CPU
// RUN: moe-opt %s -split-input-file --moe-lower-moe-kernels="block-m=32 block-n=32 block-k=8 threads=128" | FileCheck %s --check-prefix=TILES
// RUN: moe-opt %s -split-input-file --moe-lower-moe-kernels="mma=tf32" | FileCheck %s --check-prefix=TF32
// RUN: moe-opt %s -split-input-file --moe-lower-moe-kernels="mma=tf32 target=cpu" | FileCheck %s --check-prefix=TF32-CPU

// The host side: flat buffers, the scratch buffers sized from the token
// count, and five launches (calls of declarations that name the kernels).
// GPU-LABEL: func.func @routed
// GPU-SAME: (%[[X:.*]]: tensor<?x?x8xf32>, %[[R:.*]]: tensor<4x8xf32>, %[[RB:.*]]: tensor<4xf32>, %[[G:.*]]: tensor<4x6x8xf32>, %[[U:.*]]: tensor<4x6x8xf32>, %[[D:.*]]: tensor<4x8x6xf32>)
// GPU: %[[X2:.*]] = tensor.collapse_shape %[[X]] {{\[}}[0, 1], [2]]
// GPU: %[[T:.*]] = tensor.dim %[[X2]], %c0
// GPU: %[[XB:.*]] = bufferization.to_buffer %[[X2]] read_only
// GPU: %[[XF:.*]] = memref.collapse_shape %[[XB]] {{\[}}[0, 1]] : memref<?x8xf32> into memref<?xf32>
// GPU-NOT: memref.cast %[[XF]] :
// GPU: %[[PAIRS:.*]] = arith.muli %[[T]], %c2
// Every expert's segment may be padded by up to block-m - 1 = 15 rows.
// GPU: %[[ROWS:.*]] = arith.addi %[[PAIRS]], %c60
// GPU: %[[IDS:.*]] = memref.alloc(%[[PAIRS]]) : memref<?xi32>
// GPU: %[[GATES:.*]] = memref.alloc(%[[PAIRS]]) : memref<?xf32>
// GPU: call @routed_moe0_gating(%[[XF]], {{.*}}, {{.*}}, %[[IDS]], %[[GATES]], %[[T]], %[[T]], %c1)
// GPU: call @routed_moe0_align(%[[IDS]],
// GPU: call @routed_moe0_gemm_up(%[[XF]],
// GPU: call @routed_moe0_gemm_down(
// GPU: call @routed_moe0_combine(
// GPU: %[[OUT:.*]] = memref.expand_shape {{.*}} output_shape [%[[T]], 8] : memref<?xf32> into memref<?x8xf32>
// GPU: %[[Y2:.*]] = bufferization.to_tensor %[[OUT]] restrict writable
// GPU: %[[Y:.*]] = tensor.reshape %[[Y2]]
// GPU: return %[[Y]] : tensor<?x?x8xf32>
// The kernels: block-wide reductions in workgroup memory, barriers between
// phases, atomics for the per-expert counts. The GEMMs stage an A tile and
// a B tile per weight in workgroup memory and keep each thread's
// accumulators in a private array (registers): 16 x 64 outputs over 256
// threads, 4 per thread and weight.
// GPU: gpu.module @moe_kernels
// GPU: gpu.func @routed_moe0_gating(%{{.*}}: memref<?xf32>, %{{.*}}: memref<?xf32>, %{{.*}}: memref<?xf32>, %{{.*}}: memref<?xi32>, %{{.*}}: memref<?xf32>, %{{.*}}: index) workgroup(%{{.*}} : memref<256xf32, #gpu.address_space<workgroup>>, %{{.*}} : memref<4xf32, #gpu.address_space<workgroup>>) kernel attributes {known_block_size = array<i32: 256, 1, 1>}
// GPU: gpu.barrier
// GPU: math.exp
// GPU: gpu.func @routed_moe0_align
// GPU: memref.atomic_rmw addi
// GPU: gpu.func @routed_moe0_gemm_up({{.*}}) workgroup(%{{.*}} : memref<256xf32, #gpu.address_space<workgroup>>, %{{.*}} : memref<1024xf32, #gpu.address_space<workgroup>>, %{{.*}} : memref<1024xf32, #gpu.address_space<workgroup>>) private(%[[ACC:.*]] : memref<8xf32, #gpu.address_space<private>>) kernel
// GPU: memref.store %{{.*}}, %[[ACC]][%c7] : memref<8xf32, #gpu.address_space<private>>
// GPU: gpu.barrier
// GPU: arith.negf
// GPU: math.exp
// GPU: gpu.func @routed_moe0_gemm_down({{.*}}) workgroup(%{{.*}} : memref<256xf32, #gpu.address_space<workgroup>>, %{{.*}} : memref<1024xf32, #gpu.address_space<workgroup>>) private(%{{.*}} : memref<4xf32, #gpu.address_space<private>>) kernel
// GPU: gpu.func @routed_moe0_combine
// GPU: func.func private @routed_moe0_gating(memref<?xf32>, memref<?xf32>, memref<?xf32>, memref<?xi32>, memref<?xf32>, index, index, index) attributes {moe.gpu_kernel = @moe_kernels::@routed_moe0_gating}
// GPU: func.func private @routed_moe0_combine({{.*}}) attributes {moe.gpu_kernel = @moe_kernels::@routed_moe0_combine}

// On the CPU the same kernels are functions: grid and threads are loops,
// workgroup memory is allocated per call.
// CPU-LABEL: func.func @routed
// CPU: call @routed_moe0_gating
// CPU: call @routed_moe0_combine
// CPU-NOT: gpu.
// CPU: func.func private @routed_moe0_gating(%{{.*}}: memref<?xf32>, %{{.*}}: memref<?xf32>, %{{.*}}: memref<?xf32>, %{{.*}}: memref<?xi32>, %{{.*}}: memref<?xf32>, %{{.*}}: index, %[[GX:.*]]: index, %[[GY:.*]]: index)
// CPU: memref.alloc() : memref<256xf32>
// CPU: scf.for %{{.*}} = %c0 to %[[GX]] step %c1
// CPU: scf.for %{{.*}} = %c0 to %[[GY]] step %c1
// CPU: scf.for %{{.*}} = %c0{{.*}} to %c256
// The GEMMs' per-thread accumulators are one buffer of 256 threads x 8.
// CPU-LABEL: func.func private @routed_moe0_gemm_up
// CPU: memref.alloc() : memref<2048xf32>

// TILES-LABEL: func.func @routed
// Padding: 4 experts x (32 - 1) rows.
// TILES: arith.addi %{{.*}}, %c124
// TILES: gpu.func @routed_moe0_gemm_up({{.*}}) workgroup(%{{.*}} : memref<256xf32, #gpu.address_space<workgroup>>, %{{.*}} : memref<256xf32, #gpu.address_space<workgroup>>, %{{.*}} : memref<256xf32, #gpu.address_space<workgroup>>) private(%{{.*}} : memref<16xf32, #gpu.address_space<private>>) kernel attributes {known_block_size = array<i32: 128, 1, 1>}
// Tensor cores: operands rounded to TF32 as they are staged (bits + 0x1000,
// low 13 bits cleared, NaN kept); each warp takes one 16x8 tile of the
// 16x64 block (8 tiles, 8 warps) and, over the block-k slice in steps of
// 4, carries the lane's four accumulators (private elements 0, 2, 4, 6 for
// the gate weight, 1, 3, 5, 7 for up) through mma.sync.
// TF32-LABEL: gpu.func @routed_moe0_gemm_up
// TF32: %[[BITS:.*]] = arith.bitcast %[[V:.*]] : f32 to i32
// TF32: %[[ADD:.*]] = arith.addi %[[BITS]], %c4096_i32
// TF32: %[[CLEAR:.*]] = arith.andi %[[ADD]], %c-8192_i32
// TF32: %[[NAN:.*]] = arith.cmpf uno, %[[V]], %[[V]]
// TF32: %[[ROUNDED:.*]] = arith.bitcast %[[CLEAR]] : i32 to f32
// TF32: arith.select %[[NAN]], %[[V]], %[[ROUNDED]] : f32
// TF32: gpu.barrier
// TF32: %[[TID:.*]] = gpu.thread_id x
// TF32: %[[LANE:.*]] = arith.remui %[[TID]], %c32
// TF32: %[[WARP:.*]] = arith.divui %[[TID]], %c32
// TF32: %[[C0:.*]] = memref.load %[[ACC:.*]][%c0{{.*}}] : memref<8xf32, #gpu.address_space<private>>
// TF32: %[[C1:.*]] = memref.load %[[ACC]][%c2{{.*}}]
// TF32: %[[C2:.*]] = memref.load %[[ACC]][%c4{{.*}}]
// TF32: %[[C3:.*]] = memref.load %[[ACC]][%c6{{.*}}]
// TF32: scf.for %{{.*}} = %c0{{.*}} to %c16{{.*}} step %c4{{.*}} iter_args(%{{.*}} = %[[C0]], %{{.*}} = %[[C1]], %{{.*}} = %[[C2]], %{{.*}} = %[[C3]]) -> (f32, f32, f32, f32)
// TF32: vector.from_elements %{{.*}}, %{{.*}} : vector<2x1xf32>
// TF32: vector.from_elements %{{.*}} : vector<1x1xf32>
// TF32: nvgpu.mma.sync(%{{.*}}, %{{.*}}, %{{.*}}) {mmaShape = [16, 8, 4], tf32Enabled} : (vector<2x1xf32>, vector<1x1xf32>, vector<2x2xf32>) -> vector<2x2xf32>
// TF32: nvgpu.mma.sync
// TF32-NOT: nvgpu.mma.sync
// TF32: gpu.func @routed_moe0_gemm_down
// TF32: nvgpu.mma.sync
// TF32-NOT: nvgpu.mma.sync
// TF32: gpu.func @routed_moe0_combine
// On the CPU each lane sums the four products of its accumulators instead.
// TF32-CPU-LABEL: func.func private @routed_moe0_gemm_up
// TF32-CPU: memref.alloc() : memref<2048xf32>
// TF32-CPU: arith.andi %{{.*}}, %c-8192_i32
// TF32-CPU: scf.for %{{.*}} = %c0{{.*}} to %c16{{.*}} step %c4{{.*}} iter_args({{.*}}) -> (f32, f32, f32, f32)
// TF32-CPU-COUNT-16: arith.mulf
// TF32-CPU-NOT: nvgpu
// TF32-CPU-NOT: vector.
func.func @routed(%x: tensor<?x?x8xf32>, %r: tensor<4x8xf32>, %rb: tensor<4xf32>, %g: tensor<4x6x8xf32>, %u: tensor<4x6x8xf32>, %d: tensor<4x8x6xf32>) -> tensor<?x?x8xf32> {
  %y = moe.fused_moe %x router %r router_bias %rb gate %g up %u down %d k 2 scoring softmax activation silu {renormalize} : (tensor<?x?x8xf32>, tensor<4x8xf32>, tensor<4xf32>, tensor<4x6x8xf32>, tensor<4x6x8xf32>, tensor<4x8x6xf32>) -> tensor<?x?x8xf32>
  return %y : tensor<?x?x8xf32>
}

// -----

// A plain FFN without router bias: zeros stand for the bias, the gate
// operand is the up weight (ignored), and gemm_up has one B tile and one
// accumulator per output.
// GPU-LABEL: func.func @plain
// GPU-SAME: (%[[X:.*]]: tensor<?x8xf32>, %[[R:.*]]: tensor<4x8xf32>, %[[U:.*]]: tensor<4x6x8xf32>, %[[D:.*]]: tensor<4x8x6xf32>)
// GPU: %[[ZEROS:.*]] = linalg.fill
// GPU: %[[BIAS:.*]] = bufferization.to_buffer %[[ZEROS]]
// GPU: %[[BIASF:.*]] = memref.cast %[[BIAS]] : memref<4xf32> to memref<?xf32>
// GPU: %[[UB:.*]] = bufferization.to_buffer %[[U]]
// GPU: %[[UF:.*]] = memref.collapse_shape %[[UB]]
// GPU: %[[UC:.*]] = memref.cast %[[UF]] : memref<192xf32> to memref<?xf32>
// GPU: call @plain_moe0_gating(%{{.*}}, %{{.*}}, %[[BIASF]],
// GPU: call @plain_moe0_gemm_up(%{{.*}}, %[[UC]], %[[UC]],
// GPU: gpu.func @plain_moe0_gating
// Sigmoid scoring.
// GPU: arith.negf
// GPU: gpu.func @plain_moe0_gemm_up({{.*}}) workgroup(%{{.*}} : memref<256xf32, #gpu.address_space<workgroup>>, %{{.*}} : memref<1024xf32, #gpu.address_space<workgroup>>) private(%{{.*}} : memref<4xf32, #gpu.address_space<private>>) kernel
func.func @plain(%x: tensor<?x8xf32>, %r: tensor<4x8xf32>, %u: tensor<4x6x8xf32>, %d: tensor<4x8x6xf32>) -> tensor<?x8xf32> {
  %y = moe.fused_moe %x router %r up %u down %d k 1 scoring sigmoid activation gelu : (tensor<?x8xf32>, tensor<4x8xf32>, tensor<4x6x8xf32>, tensor<4x8x6xf32>) -> tensor<?x8xf32>
  return %y : tensor<?x8xf32>
}

// -----

// Two layers: kernels of each, numbered in order.
// GPU-LABEL: func.func @two_layers
// GPU: call @two_layers_moe0_gating
// GPU: call @two_layers_moe1_gating
// GPU: gpu.module @moe_kernels
// GPU: gpu.func @two_layers_moe0_gating
// GPU: gpu.func @two_layers_moe1_gating
func.func @two_layers(%x: tensor<?x8xf32>, %r: tensor<4x8xf32>, %u: tensor<4x6x8xf32>, %d: tensor<4x8x6xf32>) -> tensor<?x8xf32> {
  %y = moe.fused_moe %x router %r up %u down %d k 1 scoring softmax activation relu : (tensor<?x8xf32>, tensor<4x8xf32>, tensor<4x6x8xf32>, tensor<4x8x6xf32>) -> tensor<?x8xf32>
  %z = moe.fused_moe %y router %r up %u down %d k 2 scoring softmax activation relu : (tensor<?x8xf32>, tensor<4x8xf32>, tensor<4x6x8xf32>, tensor<4x8x6xf32>) -> tensor<?x8xf32>
  return %z : tensor<?x8xf32>
}
