//===- Pipelines.h - From moe IR to LLVM ------------------------*- C++ -*-===//

#ifndef MOE_CONVERSION_PIPELINES_H
#define MOE_CONVERSION_PIPELINES_H

#include "mlir/Pass/PassManager.h"
#include "mlir/Pass/PassOptions.h"

namespace mlir::moe {

struct LowerToLLVMOptions : public PassPipelineOptions<LowerToLLVMOptions> {
  Option<std::string> strategy{
      *this, "strategy",
      llvm::cl::desc("Routed experts: sparse (group tokens by expert) or "
                     "dense (every expert, masked by the gates)"),
      llvm::cl::init("sparse")};
  Option<bool> vectorize{*this, "vectorize",
                         llvm::cl::desc("Tile and vectorise contractions"),
                         llvm::cl::init(true)};
};

/// moe compute ops (weights already outlined into arguments) -> linalg ->
/// tiled and vectorised loops -> buffers -> the LLVM dialect, ready for the
/// ExecutionEngine. Registered as `moe-lower-to-llvm`.
void buildLowerToLLVMPipeline(OpPassManager &pm,
                              const LowerToLLVMOptions &options);

void registerMoePipelines();

} // namespace mlir::moe

#endif // MOE_CONVERSION_PIPELINES_H
