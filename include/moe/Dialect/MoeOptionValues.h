//===- MoeOptionValues.h - The choices of moe options -----------*- C++ -*-===//
//
// The values, spellings and help texts of the options that take one of the
// enums of MoeAttrs.td, declared once for the passes (ODS), the pipelines
// and the tools.
//
//===----------------------------------------------------------------------===//

#ifndef MOE_DIALECT_MOEOPTIONVALUES_H
#define MOE_DIALECT_MOEOPTIONVALUES_H

#include "moe/Dialect/MoeDialect.h"

#include "llvm/Support/CommandLine.h"

namespace mlir::moe {

inline llvm::cl::ValuesClass routerModeValues() {
  return llvm::cl::values(
      clEnumValN(RouterMode::gateless, "gateless",
                 "no router: every expert with weight 1/E"),
      clEnumValN(RouterMode::noisy, "noisy",
                 "normal random weights of std router-std"),
      clEnumValN(RouterMode::uniform_random, "uniform-random",
                 "uniform random weights in [-1/sqrt(H), 1/sqrt(H)]"),
      clEnumValN(RouterMode::hidden, "hidden",
                 "normalised calibration prototypes (prototypes=)"),
      clEnumValN(RouterMode::cheap_embed, "cheap-embed",
                 "token embeddings of chosen tokens (cheap-embed-tokens=)"),
      clEnumValN(RouterMode::base_init, "base-init",
                 "every token to expert 0, for router training"),
      clEnumValN(RouterMode::given, "given",
                 "weights from a safetensors file (router-weights=)"));
}

inline llvm::cl::ValuesClass adapterRouterModeValues() {
  return llvm::cl::values(
      clEnumValN(AdapterRouterMode::noisy, "noisy",
                 "normal random weights of std router-std"),
      clEnumValN(AdapterRouterMode::uniform_random, "uniform-random",
                 "uniform random weights in [-1/sqrt(in), 1/sqrt(in)]"),
      clEnumValN(AdapterRouterMode::zero, "zero",
                 "zero weights: every adapter scores alike"),
      clEnumValN(AdapterRouterMode::given, "given",
                 "weights from a safetensors file (router-weights=)"));
}

inline llvm::cl::ValuesClass scoringValues() {
  return llvm::cl::values(
      clEnumValN(Scoring::softmax, "softmax", "softmax over the experts"),
      clEnumValN(Scoring::sigmoid, "sigmoid", "sigmoid of each logit"));
}

inline llvm::cl::ValuesClass stemSourceValues() {
  return llvm::cl::values(
      clEnumValN(StemSource::base, "base", "the base model's"),
      clEnumValN(StemSource::average, "average", "the mean over all sources"));
}

/// How moe-lower-to-linalg lowers routed experts.
inline llvm::cl::ValuesClass linalgStrategyValues() {
  return llvm::cl::values(
      clEnumValN(RoutedStrategy::sparse, "sparse",
                 "tokens grouped per expert: k FFNs per token"),
      clEnumValN(RoutedStrategy::dense, "dense",
                 "every expert on every token, masked by the gates"));
}

/// How the CPU pipeline (moe-lower-to-llvm, moe-run) runs routed experts.
inline llvm::cl::ValuesClass cpuStrategyValues() {
  return llvm::cl::values(
      clEnumValN(RoutedStrategy::sparse, "sparse",
                 "tokens grouped per expert: k FFNs per token"),
      clEnumValN(RoutedStrategy::dense, "dense",
                 "every expert on every token, masked by the gates"),
      clEnumValN(RoutedStrategy::kernels, "kernels",
                 "the GPU path's routing and grouped-GEMM kernels, run as "
                 "loops"));
}

inline llvm::cl::ValuesClass kernelTargetValues() {
  return llvm::cl::values(
      clEnumValN(KernelTarget::gpu, "gpu", "gpu.func kernels"),
      clEnumValN(KernelTarget::cpu, "cpu", "the same kernels as loops"));
}

inline llvm::cl::ValuesClass mmaKindValues() {
  return llvm::cl::values(
      clEnumValN(MmaKind::none, "none", "f32 multiply-adds per thread"),
      clEnumValN(MmaKind::tf32, "tf32",
                 "tensor-core mma.sync m16n8k4, TF32 operands, f32 "
                 "accumulation"));
}

} // namespace mlir::moe

#endif // MOE_DIALECT_MOEOPTIONVALUES_H
