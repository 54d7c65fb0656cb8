//===- Pipelines.h - From moe IR to LLVM ------------------------*- C++ -*-===//

#ifndef MOE_CODEGEN_PIPELINES_H
#define MOE_CODEGEN_PIPELINES_H

#include "moe/Dialect/MoeOptionValues.h"

#include "mlir/Pass/PassManager.h"
#include "mlir/Pass/PassOptions.h"

namespace mlir::moe {

/// The tiles of the routing and grouped-GEMM kernels (moe-lower-moe-kernels).
struct KernelTiles {
#define MOE_KERNEL_TILE_OPTION(field, flag, toolFlag, value, help)             \
  int64_t field = value;
#include "moe/Codegen/KernelTileOptions.def"
};

/// The options of the routing and grouped-GEMM kernels, which both
/// pipelines take.
template <typename Derived>
struct RoutingKernelOptions : public PassPipelineOptions<Derived> {
#define MOE_KERNEL_TILE_OPTION(field, flag, toolFlag, value, help)             \
  ::mlir::detail::PassOptions::Option<int64_t> field{                          \
      *this, flag, llvm::cl::desc(help), llvm::cl::init(value)};
#include "moe/Codegen/KernelTileOptions.def"
  ::mlir::detail::PassOptions::Option<MmaKind> mma{
      *this, "mma",
      llvm::cl::desc("GEMM inner products of the routing kernels"),
      mmaKindValues(), llvm::cl::init(MmaKind::none)};

  KernelTiles tiles() const {
    KernelTiles result;
#define MOE_KERNEL_TILE_OPTION(field, flag, toolFlag, value, help)             \
  result.field = field;
#include "moe/Codegen/KernelTileOptions.def"
    return result;
  }
  void setTiles(const KernelTiles &tiles) {
#define MOE_KERNEL_TILE_OPTION(field, flag, toolFlag, value, help)             \
  field = tiles.field;
#include "moe/Codegen/KernelTileOptions.def"
  }
};

struct LowerToLLVMOptions : public RoutingKernelOptions<LowerToLLVMOptions> {
  Option<RoutedStrategy> strategy{
      *this, "strategy", llvm::cl::desc("How routed experts run"),
      cpuStrategyValues(), llvm::cl::init(RoutedStrategy::sparse)};
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

#endif // MOE_CODEGEN_PIPELINES_H
