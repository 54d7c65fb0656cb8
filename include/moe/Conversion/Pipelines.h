//===- Pipelines.h - From moe IR to LLVM ------------------------*- C++ -*-===//

#ifndef MOE_CONVERSION_PIPELINES_H
#define MOE_CONVERSION_PIPELINES_H

#include "mlir/Pass/PassManager.h"
#include "mlir/Pass/PassOptions.h"

namespace mlir::moe {

/// The options of the routing and grouped-GEMM kernels
/// (moe-lower-moe-kernels), which both pipelines take.
template <typename Derived>
struct RoutingKernelOptions : public PassPipelineOptions<Derived> {
  detail::PassOptions::Option<int64_t> blockM{
      *this, "block-m", llvm::cl::desc("Rows per grouped-GEMM block"),
      llvm::cl::init(16)};
  detail::PassOptions::Option<int64_t> blockN{
      *this, "block-n", llvm::cl::desc("Columns per grouped-GEMM block"),
      llvm::cl::init(64)};
  detail::PassOptions::Option<int64_t> blockK{
      *this, "block-k", llvm::cl::desc("Reduction step in shared memory"),
      llvm::cl::init(16)};
  detail::PassOptions::Option<int64_t> threads{
      *this, "threads", llvm::cl::desc("Threads per kernel block"),
      llvm::cl::init(256)};
  detail::PassOptions::Option<std::string> mma{
      *this, "mma",
      llvm::cl::desc("GEMM inner products of the routing kernels: none "
                     "(f32 multiply-adds) or tf32 (tensor-core mma.sync, "
                     "TF32 operands, f32 accumulation)"),
      llvm::cl::init("none")};
};

struct LowerToLLVMOptions : public RoutingKernelOptions<LowerToLLVMOptions> {
  Option<std::string> strategy{
      *this, "strategy",
      llvm::cl::desc("Routed experts: sparse (group tokens by expert), "
                     "dense (every expert, masked by the gates) or kernels "
                     "(fused ops through the GPU routing and grouped-GEMM "
                     "kernels, run as loops; the kernel options apply)"),
      llvm::cl::init("sparse")};
  Option<bool> vectorize{*this, "vectorize",
                         llvm::cl::desc("Tile and vectorise contractions"),
                         llvm::cl::init(true)};
};

struct LowerToGPUOptions : public RoutingKernelOptions<LowerToGPUOptions> {
  Option<std::string> chip{*this, "chip",
                           llvm::cl::desc("Target GPU architecture"),
                           llvm::cl::init("sm_90a")};
  Option<std::string> features{*this, "features",
                               llvm::cl::desc("PTX features"),
                               llvm::cl::init("+ptx80")};
  Option<std::string> format{
      *this, "format",
      llvm::cl::desc("What gpu.binary holds: isa (PTX text), bin (cubin, "
                     "needs ptxas) or fatbin"),
      llvm::cl::init("isa")};
};

/// Both pipelines take a module whose weights are outlined
/// (moe-outline-weights) and start by keeping only its compute functions
/// (moe-strip-weights).

/// Routed experts to GPU code: gating fusion, the routing and grouped-GEMM
/// kernels of moe-lower-moe-kernels, every other op through linalg and
/// parallel loops mapped to GPU blocks and threads, then NVVM and a
/// gpu.binary (PTX by default). Registered as `moe-lower-to-gpu`.
void buildLowerToGPUPipeline(OpPassManager &pm,
                             const LowerToGPUOptions &options);

/// moe compute ops (weights outlined into arguments) -> linalg ->
/// tiled and vectorised loops -> buffers -> the LLVM dialect, ready for the
/// ExecutionEngine. Registered as `moe-lower-to-llvm`.
void buildLowerToLLVMPipeline(OpPassManager &pm,
                              const LowerToLLVMOptions &options);

void registerMoePipelines();

} // namespace mlir::moe

#endif // MOE_CONVERSION_PIPELINES_H
