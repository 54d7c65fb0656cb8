//===- ONNXExport.h - Export to ONNX graphs ---------------------*- C++ -*-===//
//
// Writes a model function (token ids [B, S] -> logits [B, S, V], a prefill
// without KV cache) as an ONNX ModelProto whose weights live in one external
// data file beside the model, streamed from the memory-mapped checkpoints.
// Routed experts are encoded either with standard ONNX operators only
// (`portable`) or with ONNX Runtime's `com.microsoft.MoE` where that
// operator expresses the layer (`fused`).
//
//===----------------------------------------------------------------------===//

#ifndef MOE_EXPORT_ONNXEXPORT_H
#define MOE_EXPORT_ONNXEXPORT_H

#include "mlir/IR/BuiltinOps.h"

#include <cstdint>
#include <string>

namespace mlir::moe {

/// How routed experts are encoded.
enum class OnnxMoeEncoding {
  /// Standard ONNX operators only: TopK, per-expert gathers of the routed
  /// tokens, Gemm and ScatterND with reduction `add`. Any conforming runtime
  /// runs it.
  Portable,
  /// ONNX Runtime's `com.microsoft.MoE` for every routed-expert layer it can
  /// express; the others fall back to the portable form.
  Fused,
};

struct OnnxExportOptions {
  /// The model file to write. It and its external data appear complete or
  /// not at all: both are written into a temporary directory beside it,
  /// checked, and renamed into place.
  std::string modelPath;
  /// The external data file, relative to the model's directory: a plain
  /// file name (no directories, not absolute, no `..`, not a symbolic
  /// link). Empty means `<model file name>.data`.
  std::string dataFile;
  OnnxMoeEncoding encoding = OnnxMoeEncoding::Portable;
  /// The model function to export; empty for the only one of the module.
  std::string function;
  /// Replace an existing model or data file; without it, an existing one
  /// is an error and nothing is written.
  bool force = false;
};

/// The default-domain opset of exported graphs: the operators are chosen for
/// it, and the C++ checker of libonnx 1.12 knows no later one.
constexpr int64_t kOnnxOpset = 17;

/// Exports a model function of `module`. Unsupported operations and
/// features are refused with an error naming the operation and the feature;
/// on any error nothing is left on disk. Remarks name the layers that the
/// `fused` encoding writes in portable form, and why.
LogicalResult exportOnnx(ModuleOp module, const OnnxExportOptions &options);

} // namespace mlir::moe

#endif // MOE_EXPORT_ONNXEXPORT_H
