//===- HFConfig.cpp - Hugging Face decoder configurations -----------------===//

#include "moe/Formats/HF/HFConfig.h"
#include "moe/Support/Errors.h"
#include "moe/Support/StrictJson.h"
#include "moe/Weights/GGUFModel.h"

#include "llvm/ADT/StringSwitch.h"
#include "llvm/Support/FormatVariadic.h"
#include "llvm/Support/Path.h"

using namespace mlir;
using namespace mlir::moe;

/// Bounds of sizes read from config files, far above any real model's:
/// hidden and intermediate sizes and head dims; layer and head counts;
/// vocabularies; positions (context lengths, sliding windows).
static constexpr int64_t kMaxDimension = int64_t(1) << 20;
static constexpr int64_t kMaxCount = int64_t(1) << 12;
static constexpr int64_t kMaxVocabulary = int64_t(1) << 24;
static constexpr int64_t kMaxPositions = int64_t(1) << 30;

namespace {
/// Typed access to config fields with errors that name the file and field.
class FieldReader {
public:
  FieldReader(const llvm::json::Object &object, StringRef source,
              StringRef prefix = "")
      : object(object), source(source), prefix(prefix) {}

  llvm::Error error(StringRef field, const Twine &message) const {
    return llvm::createStringError(llvm::inconvertibleErrorCode(),
                                   source + ": field '" + prefix + field +
                                       "' " + message);
  }

  bool has(StringRef field) const {
    const llvm::json::Value *value = object.get(field);
    return value && value->kind() != llvm::json::Value::Null;
  }

  llvm::Expected<int64_t> integer(StringRef field,
                                  std::optional<int64_t> fallback = {}) const {
    if (!has(field)) {
      if (fallback)
        return *fallback;
      return error(field, "is missing");
    }
    std::optional<int64_t> value = object.get(field)->getAsInteger();
    if (!value)
      return error(field, "must be an integer");
    return *value;
  }

  /// A positive integer of at most `limit`: sizes from a file are bounded
  /// before anything is allocated, indexed or multiplied by them.
  llvm::Expected<int64_t> positive(StringRef field,
                                   std::optional<int64_t> fallback = {},
                                   int64_t limit = kMaxDimension) const {
    llvm::Expected<int64_t> value = integer(field, fallback);
    if (value && *value <= 0)
      return error(field, "must be positive, got " + Twine(*value));
    if (value && *value > limit)
      return error(field, "must be at most " + Twine(limit) + ", got " +
                              Twine(*value));
    return value;
  }

  llvm::Expected<double> number(StringRef field,
                                std::optional<double> fallback = {}) const {
    if (!has(field)) {
      if (fallback)
        return *fallback;
      return error(field, "is missing");
    }
    std::optional<double> value = object.get(field)->getAsNumber();
    if (!value)
      return error(field, "must be a number");
    return *value;
  }

  llvm::Expected<bool> boolean(StringRef field, bool fallback) const {
    if (!has(field))
      return fallback;
    std::optional<bool> value = object.get(field)->getAsBoolean();
    if (!value)
      return error(field, "must be true or false");
    return *value;
  }

  llvm::Expected<std::string>
  string(StringRef field, std::optional<StringRef> fallback = {}) const {
    if (!has(field)) {
      if (fallback)
        return fallback->str();
      return error(field, "is missing");
    }
    std::optional<StringRef> value = object.get(field)->getAsString();
    if (!value)
      return error(field, "must be a string");
    return value->str();
  }

private:
  const llvm::json::Object &object;
  std::string source;
  std::string prefix;
};
} // namespace

static std::optional<ModelFamily> familyOf(StringRef architecture) {
  return llvm::StringSwitch<std::optional<ModelFamily>>(architecture)
      .Case("LlamaForCausalLM", ModelFamily::Llama)
      .Case("MistralForCausalLM", ModelFamily::Mistral)
      .Case("Qwen2ForCausalLM", ModelFamily::Qwen2)
      .Case("GraniteForCausalLM", ModelFamily::Granite)
      .Case("Phi3ForCausalLM", ModelFamily::Phi3)
      .Default(std::nullopt);
}

static std::optional<Activation> activationOf(StringRef name) {
  return llvm::StringSwitch<std::optional<Activation>>(name)
      .Cases({"silu", "swish"}, Activation::silu)
      .Case("gelu", Activation::gelu)
      .Cases({"gelu_pytorch_tanh", "gelu_new"}, Activation::gelu_tanh)
      .Case("relu", Activation::relu)
      .Default(std::nullopt);
}

/// Reads the rotary embedding from `rope_parameters` (transformers 5) or
/// from `rope_theta` + `rope_scaling` (earlier releases).
static llvm::Error readRope(const llvm::json::Object &config,
                            const FieldReader &top, StringRef source,
                            RopeConfig &rope) {
  const llvm::json::Object *params = config.getObject("rope_parameters");
  StringRef paramsField = "rope_parameters";
  if (!params) {
    params = config.getObject("rope_scaling");
    paramsField = "rope_scaling";
  }
  if (config.get("rope_parameters") && !params)
    return top.error("rope_parameters", "must be an object");
  MOE_ASSIGN_OR_RETURN(rope.theta, top.number("rope_theta", 10000.0));
  if (!params)
    return llvm::Error::success();

  FieldReader reader(*params, source, (paramsField + ".").str());
  MOE_ASSIGN_OR_RETURN(rope.theta, reader.number("rope_theta", rope.theta));
  if (!(rope.theta > 0))
    return reader.error("rope_theta", "must be positive");
  std::string type;
  MOE_ASSIGN_OR_RETURN(type, reader.string("rope_type", StringRef("")));
  if (type.empty())
    MOE_ASSIGN_OR_RETURN(type, reader.string("type", StringRef("default")));

  static const char *const known[] = {"rope_type",
                                      "type",
                                      "rope_theta",
                                      "factor",
                                      "low_freq_factor",
                                      "high_freq_factor",
                                      "original_max_position_embeddings",
                                      "beta_fast",
                                      "beta_slow",
                                      "attention_factor",
                                      "partial_rotary_factor",
                                      "truncate"};
  for (const auto &entry : *params)
    if (!llvm::is_contained(known, entry.first.str()))
      return reader.error(entry.first.str(), "is not supported");
  if (reader.has("partial_rotary_factor")) {
    double partial;
    MOE_ASSIGN_OR_RETURN(partial, reader.number("partial_rotary_factor"));
    if (partial != 1.0)
      return reader.error("partial_rotary_factor",
                          "= " + llvm::formatv("{0}", partial) +
                              " is not supported (only full rotary "
                              "embeddings are)");
  }

  if (type == "default")
    return llvm::Error::success();
  std::optional<RopeScalingKind> kind =
      llvm::StringSwitch<std::optional<RopeScalingKind>>(type)
          .Case("linear", RopeScalingKind::linear)
          .Case("dynamic", RopeScalingKind::dynamic)
          .Case("llama3", RopeScalingKind::llama3)
          .Case("yarn", RopeScalingKind::yarn)
          .Default(std::nullopt);
  if (!kind)
    return reader.error("rope_type", "'" + type +
                                         "' is not supported (default, "
                                         "linear, dynamic, llama3 and yarn "
                                         "are)");
  rope.scaling = kind;
  MOE_ASSIGN_OR_RETURN(rope.factor, reader.number("factor"));
  if (!(rope.factor > 0))
    return reader.error("factor", "must be positive");
  MOE_ASSIGN_OR_RETURN(rope.lowFreqFactor,
                       reader.number("low_freq_factor", 1.0));
  MOE_ASSIGN_OR_RETURN(rope.highFreqFactor,
                       reader.number("high_freq_factor", 4.0));
  MOE_ASSIGN_OR_RETURN(rope.betaFast, reader.number("beta_fast", 32.0));
  MOE_ASSIGN_OR_RETURN(rope.betaSlow, reader.number("beta_slow", 1.0));
  MOE_ASSIGN_OR_RETURN(rope.attentionFactor,
                       reader.number("attention_factor", 0.0));
  int64_t maxPositions = 0;
  MOE_ASSIGN_OR_RETURN(maxPositions, top.positive("max_position_embeddings",
                                                  int64_t(0), kMaxPositions));
  if (*kind == RopeScalingKind::dynamic) {
    // transformers rescales once a sequence outgrows max_position_embeddings.
    if (!maxPositions)
      return top.error("max_position_embeddings",
                       "is needed by dynamic rope scaling");
    rope.originalMaxPosition = maxPositions;
  } else if (*kind != RopeScalingKind::linear) {
    // transformers falls back to max_position_embeddings when the original
    // length is not given.
    MOE_ASSIGN_OR_RETURN(
        rope.originalMaxPosition,
        reader.positive("original_max_position_embeddings",
                        maxPositions ? std::optional<int64_t>(maxPositions)
                                     : std::nullopt,
                        kMaxPositions));
  }
  bool truncate;
  MOE_ASSIGN_OR_RETURN(truncate, reader.boolean("truncate", true));
  if (!truncate)
    return reader.error("truncate", "= false is not supported");
  if (*kind == RopeScalingKind::llama3 &&
      !(rope.lowFreqFactor > 0 && rope.highFreqFactor > rope.lowFreqFactor))
    return reader.error("high_freq_factor",
                        "must exceed low_freq_factor, which must be positive");
  if (*kind == RopeScalingKind::yarn &&
      !(rope.betaFast > rope.betaSlow && rope.betaSlow > 0))
    return reader.error("beta_fast", "must exceed beta_slow, which must be "
                                     "positive");
  return llvm::Error::success();
}

/// Per-layer sliding windows: `layer_types` (transformers 5), Qwen2's
/// `use_sliding_window` / `max_window_layers`, or Mistral's global window.
static llvm::Error readSlidingWindows(const llvm::json::Object &config,
                                      const FieldReader &reader,
                                      DecoderConfig &result) {
  std::optional<int64_t> window;
  if (reader.has("sliding_window")) {
    int64_t value;
    MOE_ASSIGN_OR_RETURN(value,
                         reader.positive("sliding_window", {}, kMaxPositions));
    window = value;
  }
  result.slidingWindow.assign(result.numLayers, std::nullopt);
  if (const llvm::json::Array *types = config.getArray("layer_types")) {
    if (static_cast<int64_t>(types->size()) != result.numLayers)
      return reader.error("layer_types",
                          "has " + Twine(types->size()) + " entries for " +
                              Twine(result.numLayers) + " layers");
    for (auto [layer, type] : llvm::enumerate(*types)) {
      std::optional<StringRef> name = type.getAsString();
      if (name == "full_attention")
        continue;
      if (name != "sliding_attention")
        return reader.error("layer_types", "entry " + Twine(layer) +
                                               " must be full_attention or "
                                               "sliding_attention");
      if (!window)
        return reader.error("sliding_window", "is missing but layer " +
                                                  Twine(layer) +
                                                  " uses sliding attention");
      result.slidingWindow[layer] = window;
    }
    return llvm::Error::success();
  }
  if (!window)
    return llvm::Error::success();
  if (result.family == ModelFamily::Qwen2) {
    bool enabled;
    MOE_ASSIGN_OR_RETURN(enabled, reader.boolean("use_sliding_window", false));
    if (!enabled)
      return llvm::Error::success();
    int64_t firstLayer;
    MOE_ASSIGN_OR_RETURN(firstLayer,
                         reader.integer("max_window_layers", int64_t(0)));
    for (int64_t layer = firstLayer; layer < result.numLayers; ++layer)
      result.slidingWindow[layer] = window;
    return llvm::Error::success();
  }
  if (result.family == ModelFamily::Mistral ||
      result.family == ModelFamily::Phi3)
    result.slidingWindow.assign(result.numLayers, window);
  return llvm::Error::success();
}

llvm::Expected<DecoderConfig>
mlir::moe::parseDecoderConfig(llvm::json::Object config, StringRef source) {
  DecoderConfig result;
  result.path = source.str();
  FieldReader reader(config, source);

  if (const llvm::json::Array *architectures =
          config.getArray("architectures")) {
    if (architectures->empty() || !(*architectures)[0].getAsString())
      return reader.error("architectures", "must list an architecture name");
    result.architecture = (*architectures)[0].getAsString()->str();
  } else {
    std::string modelType;
    MOE_ASSIGN_OR_RETURN(modelType, reader.string("model_type"));
    result.architecture = llvm::StringSwitch<std::string>(modelType)
                              .Case("llama", "LlamaForCausalLM")
                              .Case("mistral", "MistralForCausalLM")
                              .Case("qwen2", "Qwen2ForCausalLM")
                              .Case("granite", "GraniteForCausalLM")
                              .Case("phi3", "Phi3ForCausalLM")
                              .Default(modelType);
  }
  std::optional<ModelFamily> family = familyOf(result.architecture);
  if (!family)
    return reader.error("architectures",
                        "names '" + result.architecture +
                            "', which is not supported (LlamaForCausalLM, "
                            "MistralForCausalLM, Qwen2ForCausalLM, "
                            "GraniteForCausalLM and Phi3ForCausalLM are)");
  result.family = *family;

  MOE_ASSIGN_OR_RETURN(result.hiddenSize, reader.positive("hidden_size"));
  MOE_ASSIGN_OR_RETURN(result.intermediateSize,
                       reader.positive("intermediate_size"));
  MOE_ASSIGN_OR_RETURN(result.numLayers,
                       reader.positive("num_hidden_layers", {}, kMaxCount));
  MOE_ASSIGN_OR_RETURN(result.numHeads,
                       reader.positive("num_attention_heads", {}, kMaxCount));
  MOE_ASSIGN_OR_RETURN(
      result.numKvHeads,
      reader.positive("num_key_value_heads", result.numHeads, kMaxCount));
  MOE_ASSIGN_OR_RETURN(result.vocabSize,
                       reader.positive("vocab_size", {}, kMaxVocabulary));
  if (result.numHeads % result.numKvHeads != 0)
    return reader.error(
        "num_key_value_heads",
        "= " + Twine(result.numKvHeads) +
            " must divide num_attention_heads = " + Twine(result.numHeads));
  if (reader.has("head_dim")) {
    MOE_ASSIGN_OR_RETURN(result.headDim, reader.positive("head_dim"));
  } else {
    if (result.hiddenSize % result.numHeads != 0)
      return reader.error("hidden_size",
                          "= " + Twine(result.hiddenSize) +
                              " is not a multiple of num_attention_heads = " +
                              Twine(result.numHeads) +
                              " and no head_dim is "
                              "given");
    result.headDim = result.hiddenSize / result.numHeads;
  }
  if (result.headDim % 2 != 0)
    return reader.error("head_dim", "= " + Twine(result.headDim) +
                                        " must be even for the rotary "
                                        "embedding");

  MOE_ASSIGN_OR_RETURN(result.normEps, reader.number("rms_norm_eps", 1e-6));
  if (!(result.normEps >= 0))
    return reader.error("rms_norm_eps", "must be non-negative");

  std::string act;
  MOE_ASSIGN_OR_RETURN(act, reader.string("hidden_act", StringRef("silu")));
  std::optional<Activation> activation = activationOf(act);
  if (!activation)
    return reader.error("hidden_act",
                        "'" + act +
                            "' is not supported (silu, gelu, "
                            "gelu_pytorch_tanh, gelu_new and relu are)");
  result.activation = *activation;

  MOE_ASSIGN_OR_RETURN(result.tieWordEmbeddings,
                       reader.boolean("tie_word_embeddings", false));
  bool attentionBias;
  MOE_ASSIGN_OR_RETURN(attentionBias, reader.boolean("attention_bias", false));
  MOE_ASSIGN_OR_RETURN(result.mlpBias, reader.boolean("mlp_bias", false));
  switch (result.family) {
  case ModelFamily::Qwen2:
    // Qwen2 always biases q, k and v, never the output projection.
    result.qkvBias = true;
    break;
  case ModelFamily::Llama:
  case ModelFamily::Granite:
    result.qkvBias = result.outputBias = attentionBias;
    break;
  case ModelFamily::Mistral:
  case ModelFamily::Phi3:
    break;
  }

  if (llvm::Error err = readRope(config, reader, source, result.rope))
    return std::move(err);
  if (llvm::Error err = readSlidingWindows(config, reader, result))
    return std::move(err);

  if (result.family == ModelFamily::Granite) {
    MOE_ASSIGN_OR_RETURN(result.embeddingMultiplier,
                         reader.number("embedding_multiplier", 1.0));
    MOE_ASSIGN_OR_RETURN(result.residualMultiplier,
                         reader.number("residual_multiplier", 1.0));
    MOE_ASSIGN_OR_RETURN(result.logitsScaling,
                         reader.number("logits_scaling", 1.0));
    if (result.logitsScaling == 0)
      return reader.error("logits_scaling", "must not be zero");
    if (reader.has("attention_multiplier")) {
      double multiplier;
      MOE_ASSIGN_OR_RETURN(multiplier, reader.number("attention_multiplier"));
      if (!(multiplier > 0))
        return reader.error("attention_multiplier", "must be positive");
      result.attentionMultiplier = multiplier;
    }
  }

  std::string dtype;
  MOE_ASSIGN_OR_RETURN(dtype, reader.string("dtype", StringRef("")));
  if (dtype.empty())
    MOE_ASSIGN_OR_RETURN(dtype, reader.string("torch_dtype", StringRef("")));
  result.dtype = dtype;
  result.raw = std::move(config);
  return result;
}

llvm::Expected<DecoderConfig>
mlir::moe::readDecoderConfig(StringRef configPath) {
  llvm::Expected<llvm::json::Object> object = readJsonObjectFile(configPath);
  if (!object)
    return object.takeError();
  return parseDecoderConfig(std::move(*object), configPath);
}

std::optional<std::string>
mlir::moe::findIncompatibility(const DecoderConfig &base,
                               const DecoderConfig &other) {
  if (base.architecture != other.architecture)
    return "architecture: " + other.architecture + " vs " + base.architecture;
  auto compare = [](StringRef field, int64_t mine,
                    int64_t theirs) -> std::optional<std::string> {
    if (mine == theirs)
      return std::nullopt;
    return llvm::formatv("{0}: {1} vs {2}", field, mine, theirs).str();
  };
  for (auto [field, mine, theirs] :
       {std::tuple<StringRef, int64_t, int64_t>{"hidden_size", other.hiddenSize,
                                                base.hiddenSize},
        {"intermediate_size", other.intermediateSize, base.intermediateSize},
        {"num_hidden_layers", other.numLayers, base.numLayers},
        {"num_attention_heads", other.numHeads, base.numHeads},
        {"num_key_value_heads", other.numKvHeads, base.numKvHeads},
        {"head_dim", other.headDim, base.headDim},
        {"vocab_size", other.vocabSize, base.vocabSize}})
    if (std::optional<std::string> mismatch = compare(field, mine, theirs))
      return mismatch;
  if (base.activation != other.activation)
    return ("hidden_act: " + stringifyActivation(other.activation) + " vs " +
            stringifyActivation(base.activation))
        .str();
  return std::nullopt;
}

llvm::Expected<DecoderConfig> mlir::moe::readCheckpointConfig(StringRef path) {
  if (!path.ends_with(".gguf")) {
    SmallString<256> configPath(path);
    llvm::sys::path::append(configPath, "config.json");
    return readDecoderConfig(configPath);
  }
  std::unique_ptr<weights::GGUFFile> file;
  MOE_ASSIGN_OR_RETURN(file, weights::GGUFFile::open(path));
  llvm::json::Object config;
  MOE_ASSIGN_OR_RETURN(config, weights::ggufHuggingFaceConfig(*file));
  return parseDecoderConfig(std::move(config), path);
}
