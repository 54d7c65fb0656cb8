//===- HFExport.h - Export to Hugging Face MoE checkpoints ------*- C++ -*-===//
//
// Writes a mixed model function as a standard Hugging Face MoE checkpoint
// (MixtralForCausalLM, Qwen2MoeForCausalLM or GraniteMoeForCausalLM) that
// transformers loads without remote code: config.json, safetensors shards
// with their index, and the base model's generation and tokenizer files.
//
//===----------------------------------------------------------------------===//

#ifndef MOE_EXPORT_HFEXPORT_H
#define MOE_EXPORT_HFEXPORT_H

#include "mlir/IR/BuiltinOps.h"

#include <cstdint>
#include <optional>
#include <string>

namespace llvm {
class raw_ostream;
}

namespace mlir::moe {

/// The dtype of the exported tensors.
enum class ExportDType {
  /// The dtype the base checkpoint stores (that of its embedding table).
  automatic,
  f32,
  bf16,
  f16,
};

struct HFExportOptions {
  /// The directory to create. It appears complete or not at all: the export
  /// is written next to it and renamed into place.
  std::string outputDir;
  /// Replace an existing non-empty `outputDir`.
  bool force = false;
  /// The model function to export; empty for the only one of the module.
  std::string function;
  ExportDType dtype = ExportDType::automatic;
  /// Shard size limit in bytes (a larger tensor gets a shard of its own).
  uint64_t maxShardBytes = 5'000'000'000;
  /// Draw a progress bar on stderr.
  bool showProgress = false;
};

/// Exports a model function of `module`. Features no standard architecture
/// can express are refused with an error naming the feature and the exports
/// that carry it; on any error nothing is left on disk. Writes a one-line
/// summary to `summary`.
LogicalResult exportHuggingFace(ModuleOp module, const HFExportOptions &options,
                                llvm::raw_ostream &summary);

} // namespace mlir::moe

#endif // MOE_EXPORT_HFEXPORT_H
