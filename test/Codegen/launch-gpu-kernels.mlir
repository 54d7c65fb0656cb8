// RUN: moe-opt %s -split-input-file --moe-launch-gpu-kernels | FileCheck %s

// Calls become launches (grid from the last two operands, block size from
// the kernel); the buffers they touch are allocated, copied and freed on
// the device. Host-only buffers stay on the host.
// CHECK-LABEL: func.func @launch
// CHECK-SAME: (%[[X:.*]]: memref<?xf32>, %[[N:.*]]: index)
// CHECK: %[[BUF:.*]] = gpu.alloc (%[[N]]) : memref<?xf32>
// CHECK: %[[HOST:.*]] = memref.alloc() : memref<4xi1>
// CHECK: gpu.memcpy %[[BUF]], %[[X]] : memref<?xf32>, memref<?xf32>
// CHECK: %[[ONE:.*]] = arith.constant 1 : index
// CHECK: %[[THREADS:.*]] = arith.constant 128 : index
// CHECK: gpu.launch_func @kernels::@scale blocks in (%[[N]], %c3, %[[ONE]]) threads in (%[[THREADS]], %{{.*}}, %{{.*}}) args(%[[BUF]] : memref<?xf32>, %[[N]] : index)
// CHECK-NOT: call
// CHECK: memref.store %{{.*}}, %[[HOST]]
// CHECK: gpu.dealloc %[[BUF]] : memref<?xf32>
// CHECK: memref.dealloc %[[HOST]] : memref<4xi1>
// CHECK-NOT: func.func private @scale
module attributes {gpu.container_module} {
  gpu.module @kernels {
    gpu.func @scale(%x: memref<?xf32>, %n: index) kernel attributes {known_block_size = array<i32: 128, 1, 1>} {
      gpu.return
    }
  }
  func.func private @scale(memref<?xf32>, index, index, index) attributes {moe.gpu_kernel = @kernels::@scale}
  func.func @launch(%x: memref<?xf32>, %n: index) {
    %c0 = arith.constant 0 : index
    %c3 = arith.constant 3 : index
    %true = arith.constant true
    %buffer = memref.alloc(%n) : memref<?xf32>
    %host = memref.alloc() : memref<4xi1>
    memref.copy %x, %buffer : memref<?xf32> to memref<?xf32>
    call @scale(%buffer, %n, %n, %c3) : (memref<?xf32>, index, index, index) -> ()
    memref.store %true, %host[%c0] : memref<4xi1>
    memref.dealloc %buffer : memref<?xf32>
    memref.dealloc %host : memref<4xi1>
    return
  }
}

// -----

// A returned buffer lives on the device, found through views; a constant
// is copied in and freed before returning.
// CHECK-LABEL: func.func @returned
// CHECK: %[[G:.*]] = memref.get_global @table : memref<8xf32>
// CHECK: %[[T:.*]] = gpu.alloc () : memref<8xf32>
// CHECK: gpu.memcpy %[[T]], %[[G]] : memref<8xf32>, memref<8xf32>
// CHECK: %[[OUT:.*]] = gpu.alloc () : memref<2x4xf32>
// CHECK: %[[FLAT:.*]] = memref.collapse_shape %[[OUT]]
// CHECK: gpu.launch_func @kernels::@copy blocks in {{.*}} args(%[[T]] : memref<8xf32>, %[[FLAT]] : memref<8xf32>)
// CHECK: gpu.dealloc %[[T]] : memref<8xf32>
// CHECK-NEXT: return %[[OUT]] : memref<2x4xf32>
module attributes {gpu.container_module} {
  memref.global "private" constant @table : memref<8xf32> = dense<1.0>
  gpu.module @kernels {
    gpu.func @copy(%x: memref<8xf32>, %y: memref<8xf32>) kernel attributes {known_block_size = array<i32: 32, 1, 1>} {
      gpu.return
    }
  }
  func.func private @copy(memref<8xf32>, memref<8xf32>, index, index) attributes {moe.gpu_kernel = @kernels::@copy}
  func.func @returned() -> memref<2x4xf32> {
    %c1 = arith.constant 1 : index
    %table = memref.get_global @table : memref<8xf32>
    %out = memref.alloc() : memref<2x4xf32>
    %flat = memref.collapse_shape %out [[0, 1]] : memref<2x4xf32> into memref<8xf32>
    call @copy(%table, %flat, %c1, %c1) : (memref<8xf32>, memref<8xf32>, index, index) -> ()
    return %out : memref<2x4xf32>
  }
}
