// RUN: moe-opt %s -split-input-file -verify-diagnostics --moe-launch-gpu-kernels

module attributes {gpu.container_module} {
  gpu.module @kernels {
    gpu.func @scale(%x: memref<?xf32>) kernel attributes {known_block_size = array<i32: 128, 1, 1>} {
      gpu.return
    }
  }
  func.func private @scale(memref<?xf32>, index, index) attributes {moe.gpu_kernel = @kernels::@scale}
  func.func @host_read(%n: index) -> f32 {
    %c0 = arith.constant 0 : index
    %buffer = memref.alloc(%n) : memref<?xf32>
    call @scale(%buffer, %n, %n) : (memref<?xf32>, index, index) -> ()
    // expected-error @+1 {{host code accesses an element of a GPU buffer; only kernels may}}
    %v = memref.load %buffer[%c0] : memref<?xf32>
    return %v : f32
  }
}

// -----

module attributes {gpu.container_module} {
  gpu.module @kernels {
    gpu.func @scale(%x: memref<?xf32>) kernel {
      gpu.return
    }
  }
  // expected-error @+1 {{launches @kernels::@scale, which is not a gpu.func with a known block size}}
  func.func private @scale(memref<?xf32>, index, index) attributes {moe.gpu_kernel = @kernels::@scale}
}

// -----

module attributes {gpu.container_module} {
  gpu.module @kernels {
    gpu.func @scale(%x: memref<4xf32>) kernel attributes {known_block_size = array<i32: 32, 1, 1>} {
      gpu.return
    }
  }
  func.func private @scale(memref<4xf32>, index, index) attributes {moe.gpu_kernel = @kernels::@scale}
  func.func @stack(%n: index) {
    %buffer = memref.alloca() : memref<4xf32>
    // expected-error @+1 {{cannot place this buffer in GPU memory: it is not made by memref.alloc or memref.get_global, nor a function argument}}
    call @scale(%buffer, %n, %n) : (memref<4xf32>, index, index) -> ()
    return
  }
}

// -----

module attributes {gpu.container_module} {
  memref.global "private" constant @table : memref<8xf32> = dense<1.0>
  gpu.module @kernels {
    gpu.func @read(%x: memref<8xf32>) kernel attributes {known_block_size = array<i32: 32, 1, 1>} {
      gpu.return
    }
  }
  func.func private @read(memref<8xf32>, index, index) attributes {moe.gpu_kernel = @kernels::@read}
  func.func @returns_constant(%n: index) -> memref<8xf32> {
    // expected-error @+1 {{a constant buffer used by GPU kernels must be read in the function's body and not returned}}
    %table = memref.get_global @table : memref<8xf32>
    call @read(%table, %n, %n) : (memref<8xf32>, index, index) -> ()
    return %table : memref<8xf32>
  }
}

// -----

module attributes {gpu.container_module} {
  gpu.module @kernels {
    gpu.func @scale(%x: memref<?xf32>) kernel attributes {known_block_size = array<i32: 32, 1, 1>} {
      gpu.return
    }
  }
  func.func private @scale(memref<?xf32>, index, index) attributes {moe.gpu_kernel = @kernels::@scale}
  func.func @address() {
    // expected-error @+1 {{uses the kernel declaration @scale other than by a call}}
    %f = func.constant @scale : (memref<?xf32>, index, index) -> ()
    return
  }
}
