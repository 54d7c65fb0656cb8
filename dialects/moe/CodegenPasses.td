//===- CodegenPasses.td - Code generation passes of moe ----*- tablegen -*-===//
//
// Passes that know no moe operation and no weight: they shape the code that
// the lowerings make (tiles and vectors, polynomial math, GPU launches) on
// its way to LLVM and PTX, under the moe-lower-to-llvm and moe-lower-to-gpu
// pipelines.
//
//===----------------------------------------------------------------------===//

#ifndef MOE_CODEGENPASSES_TD
#define MOE_CODEGENPASSES_TD

include "mlir/Pass/PassBase.td"

def TileAndVectorize : Pass<"moe-tile-and-vectorize", "::mlir::func::FuncOp"> {
  let summary = "Tiles contractions and vectorises the tiles";
  let description = [{
    Tiles every linalg contraction (matmuls, batched matmuls, attention
    scores...) into scf.for loops and vectorises the tiles. The two
    innermost parallel dimensions and the innermost reduction get tiles of
    `tile-sizes`, shrunk to the largest size that divides their static
    extent; the first dynamic one among them (tokens) gets a full tile too
    and its loop is peeled, so that every iteration but the last works on
    a full, statically shaped tile, and the last advances one token at a
    time. Tiles are then vectorised without masks. Dynamic dimensions beyond
    the first advance one at a time. Runs on tensors, before
    bufferisation.
  }];
  let dependentDialects = ["::mlir::scf::SCFDialect",
                           "::mlir::vector::VectorDialect",
                           "::mlir::tensor::TensorDialect",
                           "::mlir::linalg::LinalgDialect"];
  let options = [
    ListOption<"tileSizes", "tile-sizes", "int64_t",
               "Tile sizes of the two innermost parallel dimensions and the "
               "reduction (default 4,8,64)">
  ];
}

def ApproximateMath : Pass<"moe-approximate-math"> {
  let summary = "Replaces transcendental math ops by polynomial approximations";
  let description = [{
    Rewrites the f32 math of GPU kernels so that the PTX they become calls
    no libdevice function and needs no CUDA toolkit to link: MLIR's
    expansions first (`math.powf`, `math.rsqrt`, `math.ceil`... in terms of
    simpler ops), then its polynomial approximations of `math.exp`,
    `math.log`, `math.tanh`, `math.erf`, `math.sin`/`math.cos`... (accurate
    to a few ulps); the fused multiply-adds those use become
    `llvm.intr.fma`, `math.floor` integer conversions, `math.absf` a
    maximum and `math.sqrt` the NVVM round-to-nearest square root
    intrinsic (`llvm.nvvm.sqrt.rn.f`). Being NVVM-specific, it belongs in
    `gpu.module`s; the GPU pipeline runs it there.
  }];
  let dependentDialects = ["::mlir::arith::ArithDialect",
                           "::mlir::vector::VectorDialect",
                           "::mlir::LLVM::LLVMDialect"];
}

def LaunchGpuKernels : Pass<"moe-launch-gpu-kernels", "::mlir::ModuleOp"> {
  let summary = "Launches the routing kernels and places the buffers that "
                "GPU kernels touch in device memory";
  let description = [{
    Runs after bufferization, buffer deallocation and kernel outlining
    (`moe-lower-to-gpu` orders them). Calls to the declarations that
    `moe-lower-moe-kernels{target=gpu}` made (marked `moe.gpu_kernel`)
    become `gpu.launch_func` of that kernel, with the call's last two
    operands as grid sizes and the kernel's known block size; the
    declarations are erased.

    Then every buffer a `gpu.launch_func` reads or writes, or that a host
    function returns, is followed through views to where it is made and put
    on the device:

    - `memref.alloc` becomes `gpu.alloc`, and its `memref.dealloc`s
      `gpu.dealloc`;
    - `memref.get_global` (a constant) is copied into a `gpu.alloc` once per
      call, freed before the function returns;
    - `memref.copy` from or to a device buffer becomes `gpu.memcpy`.

    Arguments of public functions are taken to be device buffers already
    (the caller uploads weights and activations). Host code that reads or
    writes an element of a device buffer, or a device buffer made in a way
    the pass cannot follow, is reported. Run `gpu-async-region` afterwards
    so that the GPU runtime lowering accepts the allocations.
  }];
  let dependentDialects = ["::mlir::gpu::GPUDialect",
                           "::mlir::memref::MemRefDialect"];
}

#endif // MOE_CODEGENPASSES_TD
