//===- GGUFExport.h - Export to llama.cpp GGUF models -----------*- C++ -*-===//
//
// Writes a mixed model function as one GGUF file that llama.cpp loads as a
// Mixtral-style MoE (architecture `llama` with experts): llama.cpp's tensor
// names and stacked expert tensors, the hyper-parameters, expert count and
// experts per token in the metadata, and the base's tokenizer.
//
//===----------------------------------------------------------------------===//

#ifndef MOE_EXPORT_GGUFEXPORT_H
#define MOE_EXPORT_GGUFEXPORT_H

#include "mlir/IR/BuiltinOps.h"

#include <string>

namespace llvm {
class raw_ostream;
}

namespace mlir::moe {

/// How the weight matrices of a GGUF export are stored (norms and routers
/// stay float32).
enum class GGUFWeightType {
  /// The float dtype the base checkpoint stores; f16 for a GGUF base.
  automatic,
  f32,
  f16,
  bf16,
  /// ggml's 8-bit blocks of 32 (f16 where a row is not whole blocks).
  q8_0,
};

struct GGUFExportOptions {
  /// The file to write. It appears complete or not at all.
  std::string outputPath;
  /// Replace an existing file at `outputPath`.
  bool force = false;
  /// The model function to export; empty for the only one of the module.
  std::string function;
  GGUFWeightType weightType = GGUFWeightType::automatic;
  /// Draw a progress bar on stderr.
  bool showProgress = false;
};

/// Exports a model function of `module`. Features llama.cpp's Mixtral-style
/// models cannot express are refused with an error naming the feature; on
/// any error nothing is left on disk. Writes a one-line summary to
/// `summary`.
LogicalResult exportGGUF(ModuleOp module, const GGUFExportOptions &options,
                         llvm::raw_ostream &summary);

} // namespace mlir::moe

#endif // MOE_EXPORT_GGUFEXPORT_H
