//===- HFConfig.h - Hugging Face decoder configurations ---------*- C++ -*-===//

#ifndef MOE_FORMATS_HF_HFCONFIG_H
#define MOE_FORMATS_HF_HFCONFIG_H

#include "moe/Dialect/MoeDialect.h"

#include "llvm/Support/Error.h"
#include "llvm/Support/JSON.h"

#include <optional>
#include <string>
#include <vector>

namespace mlir::moe {

/// The decoder families the importer maps. They differ in tensor names,
/// biases, fused projections and scalar multipliers.
enum class ModelFamily { Llama, Mistral, Qwen2, Granite, Phi3 };

/// The rotary embedding of a config (`rope_parameters` in transformers 5,
/// `rope_theta` and `rope_scaling` before).
struct RopeConfig {
  double theta = 10000.0;
  /// Absent for the default (unscaled) rotary embedding.
  std::optional<RopeScalingKind> scaling;
  double factor = 1.0;
  double lowFreqFactor = 1.0;
  double highFreqFactor = 4.0;
  int64_t originalMaxPosition = 0;
  double betaFast = 32.0;
  double betaSlow = 1.0;
  double attentionFactor = 0.0;
};

/// What the importer needs from a decoder's config.json, validated.
struct DecoderConfig {
  /// Path of the config.json this was read from.
  std::string path;
  std::string architecture;
  ModelFamily family = ModelFamily::Llama;
  int64_t hiddenSize = 0;
  int64_t intermediateSize = 0;
  int64_t numLayers = 0;
  int64_t numHeads = 0;
  int64_t numKvHeads = 0;
  int64_t headDim = 0;
  int64_t vocabSize = 0;
  double normEps = 1e-6;
  Activation activation = Activation::silu;
  bool tieWordEmbeddings = false;
  /// Biases of the q/k/v projections, of the output projection and of the
  /// MLP projections.
  bool qkvBias = false;
  bool outputBias = false;
  bool mlpBias = false;
  RopeConfig rope;
  /// Per layer: the sliding attention window, if that layer has one.
  std::vector<std::optional<int64_t>> slidingWindow;
  /// Granite's scalar multipliers (1 elsewhere); attention scale override.
  double embeddingMultiplier = 1.0;
  double residualMultiplier = 1.0;
  double logitsScaling = 1.0;
  std::optional<double> attentionMultiplier;
  /// The storage dtype the config declares ("float32", "bfloat16", ...), or
  /// empty.
  std::string dtype;
  /// The whole parsed config, for exporters.
  llvm::json::Object raw;
};

/// Reads and validates `configPath` (a config.json). Errors name the file
/// and the field: a missing or mistyped field, an unsupported architecture,
/// activation or rope scaling, or inconsistent head counts.
llvm::Expected<DecoderConfig> readDecoderConfig(llvm::StringRef configPath);

/// The validated config of a checkpoint: a model directory's config.json,
/// or the config.json the metadata of a `.gguf` file stands for.
llvm::Expected<DecoderConfig> readCheckpointConfig(llvm::StringRef path);

/// Parses an already loaded config; `source` names it in errors.
llvm::Expected<DecoderConfig> parseDecoderConfig(llvm::json::Object config,
                                                 llvm::StringRef source);

/// The first field in which two configs differ in a way that makes their
/// models impossible to mix (architecture, sizes, head counts, vocabulary,
/// activation), as "field: <a> vs <b>"; std::nullopt when compatible.
std::optional<std::string> findIncompatibility(const DecoderConfig &base,
                                               const DecoderConfig &other);

} // namespace mlir::moe

#endif // MOE_FORMATS_HF_HFCONFIG_H
