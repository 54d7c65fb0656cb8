//===- Config.cpp - config.json of a Hugging Face MoE export --------------===//

#include "Layout.h"

#include <cmath>

using namespace mlir;
using namespace mlir::moe;
using namespace mlir::moe::hf_export;
using weights::DType;

static StringRef hfActivationName(Activation activation) {
  switch (activation) {
  case Activation::silu:
    return "silu";
  case Activation::gelu:
    return "gelu";
  case Activation::gelu_tanh:
    return "gelu_pytorch_tanh";
  case Activation::relu:
    return "relu";
  case Activation::identity:
    break;
  }
  llvm_unreachable("refused before");
}

static StringRef torchDTypeName(DType dtype) {
  switch (dtype) {
  case DType::F64:
    return "float64";
  case DType::F32:
    return "float32";
  case DType::F16:
    return "float16";
  case DType::BF16:
    return "bfloat16";
  default:
    llvm_unreachable("not an export dtype");
  }
}

llvm::json::Object hf_export::buildConfig(const LayoutChoice &choice,
                                          const Decoder &decoder,
                                          const DecoderConfig &base,
                                          DType dtype) {
  Layout layout = choice.layout;
  const UniformShape &shape = choice.shape;
  llvm::json::Object config;
  // Tokens, positions and the rotary embedding as the base declares them,
  // so that transformers builds the base's rotary embedding.
  for (StringRef key :
       {"bos_token_id", "eos_token_id", "pad_token_id",
        "max_position_embeddings", "initializer_range", "rope_parameters",
        "rope_theta", "rope_scaling", "original_max_position_embeddings"})
    if (const llvm::json::Value *value = base.raw.get(key))
      config[key] = *value;

  config["architectures"] = llvm::json::Array{architectureOf(layout)};
  config["model_type"] = modelTypeOf(layout);
  config["dtype"] = torchDTypeName(dtype);
  config["vocab_size"] = shape.vocab;
  config["hidden_size"] = shape.hidden;
  config["num_hidden_layers"] = int64_t(decoder.layers.size());
  config["num_attention_heads"] = shape.heads;
  config["num_key_value_heads"] = shape.kvHeads;
  config["head_dim"] = shape.headDim;
  config["hidden_act"] = hfActivationName(shape.activation);
  config["rms_norm_eps"] = shape.normEpsilon;
  config["tie_word_embeddings"] = decoder.tiedEmbeddings();
  config["attention_dropout"] = 0.0;
  config["use_cache"] = true;
  config["num_experts_per_tok"] = shape.topK;
  config["output_router_logits"] = false;

  std::optional<int64_t> window;
  for (const std::optional<int64_t> &layerWindow : shape.windows)
    if (layerWindow)
      window = layerWindow;

  switch (layout) {
  case Layout::Mixtral:
    config["num_local_experts"] = shape.numExperts;
    config["intermediate_size"] = shape.expertIntermediate;
    config["router_jitter_noise"] = 0.0;
    config["sliding_window"] =
        window ? llvm::json::Value(*window) : llvm::json::Value(nullptr);
    break;
  case Layout::Qwen2Moe: {
    config["num_experts"] = shape.numExperts;
    config["moe_intermediate_size"] = shape.expertIntermediate;
    config["intermediate_size"] =
        shape.denseIntermediate.value_or(shape.expertIntermediate);
    config["shared_expert_intermediate_size"] =
        shape.hasShared ? shape.sharedIntermediate : 1;
    config["norm_topk_prob"] = shape.weightsSumToOne;
    config["decoder_sparse_step"] = 1;
    llvm::json::Array dense;
    for (int64_t layer : shape.denseLayers)
      dense.push_back(layer);
    config["mlp_only_layers"] = std::move(dense);
    config["qkv_bias"] = true;
    config["use_sliding_window"] = window.has_value();
    config["sliding_window"] =
        window ? llvm::json::Value(*window) : llvm::json::Value(nullptr);
    config["max_window_layers"] = int64_t(decoder.layers.size());
    llvm::json::Array types;
    for (const std::optional<int64_t> &layerWindow : shape.windows)
      types.push_back(layerWindow ? "sliding_attention" : "full_attention");
    config["layer_types"] = std::move(types);
    break;
  }
  case Layout::GraniteMoe:
    config["num_local_experts"] = shape.numExperts;
    config["intermediate_size"] = shape.expertIntermediate;
    config["attention_bias"] = shape.qkvBias;
    config["embedding_multiplier"] = decoder.embeddingScale;
    config["residual_multiplier"] = shape.branchScale;
    config["logits_scaling"] = 1.0 / decoder.logitsScale;
    config["attention_multiplier"] =
        shape.attentionScale.value_or(1.0 / std::sqrt(double(shape.headDim)));
    break;
  }
  return config;
}
