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

struct HFExportOptions {
  /// The directory to create. It appears complete or not at all: the export
  /// is written next to it and renamed into place.
  std::string outputDir;
  /// Replace an existing non-empty `outputDir`.
  bool force = false;
  /// The model function to export; empty for the only one of the module.
  std::string function;
  /// `auto` (the dtype the base checkpoint stores), `f32`, `bf16` or `f16`.
  std::string dtype = "auto";
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

/// Parses a byte count: a plain number or one with a unit (KB, MB, GB, TB
/// in powers of 1000; KiB, MiB, GiB, TiB in powers of 1024), e.g. "5GB".
std::optional<uint64_t> parseByteSize(llvm::StringRef text);

/// Registers `--export-hf` and its options with mlir-translate.
void registerHFExportTranslation();

} // namespace mlir::moe

#endif // MOE_EXPORT_HFEXPORT_H
