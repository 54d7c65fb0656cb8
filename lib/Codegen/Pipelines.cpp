//===- Pipelines.cpp - From moe IR to LLVM --------------------------------===//

#include "moe/Codegen/Pipelines.h"

#include "moe/Codegen/Passes.h"
#include "moe/Conversion/Passes.h"
#include "moe/Transforms/Passes.h"

#include "mlir/Conversion/Passes.h"
#include "mlir/Conversion/VectorToSCF/VectorToSCF.h"
#include "mlir/Dialect/Bufferization/Pipelines/Passes.h"
#include "mlir/Dialect/Bufferization/Transforms/Passes.h"
#include "mlir/Dialect/GPU/Pipelines/Passes.h"
#include "mlir/Dialect/GPU/Transforms/Passes.h"
#include "mlir/Dialect/Linalg/Passes.h"
#include "mlir/Dialect/MemRef/Transforms/Passes.h"
#include "mlir/Dialect/Vector/Transforms/Passes.h"
#include "mlir/Pass/PassRegistry.h"
#include "mlir/Transforms/Passes.h"

using namespace mlir;

/// Tensors to buffers across function boundaries (plain memref arguments
/// and results), every allocation freed.
static void addBufferization(OpPassManager &pm) {
  bufferization::OneShotBufferizePassOptions bufferize;
  bufferize.bufferizeFunctionBoundaries = true;
  bufferize.functionBoundaryTypeConversion =
      bufferization::LayoutMapOption::IdentityLayoutMap;
  pm.addPass(bufferization::createOneShotBufferizePass(bufferize));
  bufferization::buildBufferDeallocationPipeline(pm);
}

/// The kernel options of a pipeline, for `target`.
template <typename Derived>
static moe::LowerMoeKernelsOptions
kernelOptions(const moe::RoutingKernelOptions<Derived> &options,
              moe::KernelTarget target) {
  moe::LowerMoeKernelsOptions kernels;
  kernels.target = target;
  moe::KernelTiles tiles = options.tiles();
  kernels.blockM = tiles.blockM;
  kernels.blockN = tiles.blockN;
  kernels.blockK = tiles.blockK;
  kernels.threads = tiles.threads;
  kernels.mma = options.mma;
  return kernels;
}

void mlir::moe::buildLowerToLLVMPipeline(OpPassManager &pm,
                                         const LowerToLLVMOptions &options) {
  pm.addPass(createStripWeights());
  pm.addPass(createCanonicalizerPass());
  LowerToLinalgOptions lowering;
  lowering.strategy = options.strategy;
  if (options.strategy == moe::RoutedStrategy::kernels) {
    // The routing and grouped-GEMM kernels of the GPU path, run as loops.
    pm.addPass(createFuseGating());
    pm.addPass(
        createLowerMoeKernels(kernelOptions(options, moe::KernelTarget::cpu)));
    lowering.strategy = moe::RoutedStrategy::sparse;
  }
  pm.addPass(createLowerToLinalg(lowering));
  // Residual additions are arith on tensors.
  pm.addNestedPass<func::FuncOp>(createConvertElementwiseToLinalgPass());
  pm.addPass(createCanonicalizerPass());
  pm.addPass(createCSEPass());
  if (options.vectorize) {
    pm.addNestedPass<func::FuncOp>(createTileAndVectorize());
    pm.addPass(createCanonicalizerPass());
  }
  // Upstream MLIR from here; the equivalent mlir-opt spelling is
  //   one-shot-bufferize{bufferize-function-boundaries
  //     function-boundary-type-conversion=identity-layout-map},
  //   buffer-deallocation-pipeline, func.func(convert-linalg-to-loops,
  //   lower-vector-multi-reduction{lowering-strategy=inner-reduction}),
  //   convert-vector-to-scf{full-unroll}, expand-strided-metadata,
  //   lower-affine, convert-scf-to-cf,
  //   convert-vector-to-llvm{reassociate-fp-reductions},
  //   finalize-memref-to-llvm, convert-math-to-llvm, convert-math-to-libm,
  //   convert-arith-to-llvm, convert-index-to-llvm, convert-func-to-llvm,
  //   convert-cf-to-llvm, convert-ub-to-llvm, reconcile-unrealized-casts
  addBufferization(pm);
  pm.addNestedPass<func::FuncOp>(createConvertLinalgToLoopsPass());
  // Vectorised contractions reduce along the contiguous (weight row)
  // dimension: horizontal reductions per output.
  pm.addNestedPass<func::FuncOp>(vector::createLowerVectorMultiReductionPass(
      vector::VectorMultiReductionLowering::InnerReduction));
  // Unrolled: n-D transfers become 1-D loads and stores, without the
  // stack temporaries (allocas inside loops) of the progressive lowering.
  pm.addPass(createConvertVectorToSCFPass(
      VectorTransferToSCFOptions().enableFullUnroll()));
  pm.addPass(memref::createExpandStridedMetadataPass());
  pm.addPass(createLowerAffinePass());
  pm.addPass(createSCFToControlFlowPass());
  // Dot products may sum in any order: tree reductions, not 64 serial adds.
  ConvertVectorToLLVMPassOptions vectorToLLVM;
  vectorToLLVM.reassociateFPReductions = true;
  pm.addPass(createConvertVectorToLLVMPass(vectorToLLVM));
  pm.addPass(createFinalizeMemRefToLLVMConversionPass());
  // LLVM intrinsics where they exist, libm (erff, tanhf) for the rest.
  pm.addPass(createConvertMathToLLVMPass());
  pm.addPass(createConvertMathToLibmPass());
  pm.addPass(createArithToLLVMConversionPass());
  pm.addPass(createConvertIndexToLLVMPass());
  pm.addPass(createConvertFuncToLLVMPass());
  pm.addPass(createConvertControlFlowToLLVMPass());
  pm.addPass(createUBToLLVMConversionPass());
  pm.addPass(createReconcileUnrealizedCastsPass());
}

void mlir::moe::buildLowerToGPUPipeline(OpPassManager &pm,
                                        const LowerToGPUOptions &options) {
  pm.addPass(createStripWeights());
  pm.addPass(createCanonicalizerPass());
  pm.addPass(createFuseGating());
  pm.addPass(
      createLowerMoeKernels(kernelOptions(options, moe::KernelTarget::gpu)));
  // Routed experts the kernels leave (gate-less, shared experts, gatings
  // shared by layers) as dense linalg: the sparse form counts tokens on the
  // host.
  LowerToLinalgOptions lowering;
  lowering.strategy = moe::RoutedStrategy::dense;
  pm.addPass(createLowerToLinalg(lowering));
  pm.addNestedPass<func::FuncOp>(createConvertElementwiseToLinalgPass());
  pm.addPass(createCanonicalizerPass());
  pm.addPass(createCSEPass());
  addBufferization(pm);
  // memref.reshape to a reinterpret_cast, which the host lowering knows.
  pm.addPass(memref::createExpandOpsPass());
  // What is not a routed-expert kernel becomes parallel loops on the GPU.
  pm.addNestedPass<func::FuncOp>(createConvertLinalgToParallelLoopsPass());
  pm.addNestedPass<func::FuncOp>(createGpuMapParallelLoopsPass());
  pm.addNestedPass<func::FuncOp>(createConvertParallelLoopToGpuPass());
  pm.addPass(createGpuKernelOutliningPass());
  pm.addPass(createLaunchGpuKernels());
  pm.addNestedPass<func::FuncOp>(createGpuAsyncRegionPass());
  // Kernels that need no libdevice: no CUDA toolkit is needed to link.
  pm.addNestedPass<gpu::GPUModuleOp>(createApproximateMath());
  pm.addPass(createLowerAffinePass());
  pm.addPass(createSCFToControlFlowPass());
  gpu::GPUToNVVMPipelineOptions nvvm;
  nvvm.cubinChip = options.chip;
  nvvm.cubinFeatures = options.features;
  nvvm.cubinFormat = options.format;
  gpu::buildLowerToNVVMPassPipeline(pm, nvvm);
}

void mlir::moe::registerMoePipelines() {
  PassPipelineRegistration<LowerToGPUOptions>(
      "moe-lower-to-gpu",
      "Lowers routed experts to GPU kernels (fused gating, token "
      "permutation, grouped GEMMs) and the module to NVVM and PTX",
      buildLowerToGPUPipeline);
  PassPipelineRegistration<LowerToLLVMOptions>(
      "moe-lower-to-llvm",
      "Lowers moe compute ops (with outlined weights) to the LLVM dialect",
      buildLowerToLLVMPipeline);
}
