//===- HFImporter.h - Import of Hugging Face decoders -----------*- C++ -*-===//

#ifndef MOE_IMPORT_HFIMPORTER_H
#define MOE_IMPORT_HFIMPORTER_H

#include "mlir/IR/BuiltinOps.h"

#include <string>
#include <vector>

namespace mlir::moe {

/// A checkpoint to import: the scope and function name it gets, and its
/// directory (for a base or an expert, also a `.gguf` file: its metadata
/// stands for config.json, its tensors are read as transformers reads them).
struct CheckpointRef {
  std::string name;
  std::string path;
};

/// A base model and what to import beside it.
struct ImportRequest {
  CheckpointRef base;
  /// Fine-tuned full models of the base's architecture.
  std::vector<CheckpointRef> experts;
  /// PEFT LoRA adapters trained on the base.
  std::vector<CheckpointRef> adapters;
};

/// Imports the request into `module`: one `moe.scope` per checkpoint and one
/// `func.func` per model (named after it) from token ids to logits. Expert
/// functions read their own scope; adapter functions read the base scope and
/// turn every linear layer an adapter targets into a `moe.lora_linear`. When
/// an adapter targets an FFN projection, that layer's FFN is decomposed in
/// every function so that they keep the same structure.
///
/// Only headers are read. Every failure (unreadable or malformed file,
/// unsupported config, a tensor missing or of the wrong shape or dtype, an
/// expert or adapter that does not fit the base) is reported as an error on
/// the module naming the file and the field or tensor.
LogicalResult importHuggingFace(ModuleOp module, const ImportRequest &request);

} // namespace mlir::moe

#endif // MOE_IMPORT_HFIMPORTER_H
