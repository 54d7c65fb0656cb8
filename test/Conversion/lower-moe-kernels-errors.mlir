// RUN: moe-opt %s -split-input-file -verify-diagnostics --moe-lower-moe-kernels
// RUN: not moe-opt %s --moe-lower-moe-kernels="target=tpu" 2>&1 | FileCheck %s --check-prefix=TARGET
// RUN: not moe-opt %s --moe-lower-moe-kernels="threads=100" 2>&1 | FileCheck %s --check-prefix=THREADS
// RUN: not moe-opt %s --moe-lower-moe-kernels="threads=2048" 2>&1 | FileCheck %s --check-prefix=THREADS2048
// RUN: not moe-opt %s --moe-lower-moe-kernels="block-k=0" 2>&1 | FileCheck %s --check-prefix=BLOCK
// RUN: not moe-opt %s --moe-lower-moe-kernels="block-m=64 block-n=256 block-k=32" 2>&1 | FileCheck %s --check-prefix=SHARED
// RUN: moe-opt %s -split-input-file --moe-lower-moe-kernels="target=cpu block-m=64 block-n=256 block-k=32" -verify-diagnostics
// RUN: not moe-opt %s --moe-lower-moe-kernels="mma=fp8" 2>&1 | FileCheck %s --check-prefix=MMA
// RUN: not moe-opt %s --moe-lower-moe-kernels="mma=tf32 block-m=8" 2>&1 | FileCheck %s --check-prefix=MMA-TILES
// RUN: not moe-opt %s --moe-lower-moe-kernels="mma=tf32 block-k=6" 2>&1 | FileCheck %s --check-prefix=MMA-TILES-K

// TARGET: for the --target option: Cannot find option named 'tpu'!
// THREADS: error: moe-lower-moe-kernels: threads must be a power of two from 32 to 1024 (got 100)
// THREADS2048: error: moe-lower-moe-kernels: threads must be a power of two from 32 to 1024 (got 2048)
// BLOCK: error: moe-lower-moe-kernels: block-m, block-n and block-k must be positive
// MMA: for the --mma option: Cannot find option named 'fp8'!
// MMA-TILES: error: moe-lower-moe-kernels: mma=tf32 needs block-m a multiple of 16, block-n of 8 and block-k of 4 (got 8, 64, 16)
// MMA-TILES-K: error: moe-lower-moe-kernels: mma=tf32 needs block-m a multiple of 16, block-n of 8 and block-k of 4 (got 16, 64, 6)
// SHARED: error: moe-lower-moe-kernels: tiles need 73728 bytes of shared memory per block, more than the 49152 a kernel may declare statically

func.func @gateless(%x: tensor<?x8xf32>, %u: tensor<4x6x8xf32>, %d: tensor<4x8x6xf32>) -> tensor<?x8xf32> {
  // expected-warning @+1 {{gate-less mixes run every expert: no routing kernels; left to moe-lower-to-linalg}}
  %y = moe.fused_moe %x up %u down %d k 4 scoring softmax activation relu : (tensor<?x8xf32>, tensor<4x6x8xf32>, tensor<4x8x6xf32>) -> tensor<?x8xf32>
  return %y : tensor<?x8xf32>
}

// -----

func.func @shared(%x: tensor<?x8xf32>, %r: tensor<4x8xf32>, %u: tensor<4x6x8xf32>, %d: tensor<4x8x6xf32>, %su: tensor<3x8xf32>, %sd: tensor<8x3xf32>) -> tensor<?x8xf32> {
  // expected-warning @+1 {{the routing kernels do not support shared experts; left to moe-lower-to-linalg}}
  %y = moe.fused_moe %x router %r up %u down %d shared_up %su shared_down %sd k 2 scoring softmax activation relu : (tensor<?x8xf32>, tensor<4x8xf32>, tensor<4x6x8xf32>, tensor<4x8x6xf32>, tensor<3x8xf32>, tensor<8x3xf32>) -> tensor<?x8xf32>
  return %y : tensor<?x8xf32>
}

// -----

func.func @bf16(%x: tensor<?x8xbf16>, %r: tensor<4x8xbf16>, %u: tensor<4x6x8xbf16>, %d: tensor<4x8x6xbf16>) -> tensor<?x8xbf16> {
  // expected-warning @+1 {{the routing kernels compute in f32; left to moe-lower-to-linalg}}
  %y = moe.fused_moe %x router %r up %u down %d k 2 scoring softmax activation relu : (tensor<?x8xbf16>, tensor<4x8xbf16>, tensor<4x6x8xbf16>, tensor<4x8x6xbf16>) -> tensor<?x8xbf16>
  return %y : tensor<?x8xbf16>
}
