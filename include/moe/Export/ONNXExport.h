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

/// The inputs and outputs of the exported graph.
enum class OnnxForm {
  /// input_ids [batch, sequence] -> logits [batch, sequence, vocab]: a
  /// prefill without KV cache.
  Prefill,
  /// The decoder-with-past convention of onnxruntime-genai and Optimum:
  /// input_ids, attention_mask [batch, total_sequence], position_ids and
  /// past_key_values.{i}.key/value [batch, kv_heads, past_sequence, head_dim]
  /// in; logits and present.{i}.key/value [batch, kv_heads, total_sequence,
  /// head_dim] out. One graph serves prefill (empty past) and decode.
  KvCache,
};

/// How weights are stored in the external data.
enum class OnnxWeightType {
  F32,
  /// float16 / bfloat16 storage, cast to float32 where read.
  F16,
  BF16,
  /// Weight-only block quantisation (symmetric, one float scale per block of
  /// `quantBlockSize` input features) of the linear layers and the experts:
  /// com.microsoft.MatMulNBits and com.microsoft.QMoE.
  Int8,
  Int4,
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
  OnnxForm form = OnnxForm::Prefill;
  OnnxWeightType weightType = OnnxWeightType::F32;
  /// Input features per quantisation block (Int8, Int4): a power of two, at
  /// least 16.
  int64_t quantBlockSize = 32;
  /// Int8, Int4: MatMulNBits multiplies by activations quantised to int8
  /// per block (its accuracy_level 4: integer dot products, faster on CPUs
  /// with VNNI) instead of float32 ones (exactly what the stored weights
  /// say).
  bool quantizeActivations = false;
};

/// The default-domain opset of exported graphs: the operators are chosen for
/// it, and the C++ checker of libonnx 1.12 knows no later one.
constexpr int64_t kOnnxOpset = 17;

/// Exports a model function of `module`. Unsupported operations and
/// features are refused with an error naming the operation and the feature;
/// on any error nothing is left on disk. Remarks name the layers that the
/// `fused` encoding writes in portable form, and why.
LogicalResult exportOnnx(ModuleOp module, const OnnxExportOptions &options);

/// Exports a model function as an onnxruntime-genai folder at
/// `options.modelPath`: model.onnx (the KV-cache form, which `options.form`
/// must name) and model.onnx.data, genai_config.json, and the tokenizer and
/// generation files of the base model (the Hugging Face checkpoint of the
/// function's moe.scope). The folder appears complete or not at all; an
/// existing non-empty one is replaced only with `options.force`.
LogicalResult exportOnnxGenai(ModuleOp module,
                              const OnnxExportOptions &options);

} // namespace mlir::moe

#endif // MOE_EXPORT_ONNXEXPORT_H
