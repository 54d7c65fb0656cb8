//===- TensorNames.cpp - Hugging Face tensor names ------------------------===//

#include "moe/Formats/HF/TensorNames.h"

#include "llvm/ADT/Twine.h"

using namespace mlir::moe;
using llvm::StringRef;

std::string hf::layerPrefix(int64_t layer) {
  return "model.layers." + std::to_string(layer) + ".";
}

std::string hf::attentionModule(int64_t layer, StringRef projection) {
  return layerPrefix(layer) + "self_attn." + projection.str();
}

std::string hf::mlpModule(int64_t layer, StringRef projection) {
  return layerPrefix(layer) + "mlp." + projection.str();
}

std::string hf::inputNormModule(int64_t layer) {
  return layerPrefix(layer) + "input_layernorm";
}

std::string hf::postAttentionNormModule(int64_t layer) {
  return layerPrefix(layer) + "post_attention_layernorm";
}

std::string hf::weightKey(StringRef module) {
  return (module + ".weight").str();
}

std::string hf::biasKey(StringRef module) { return (module + ".bias").str(); }

std::optional<StringRef> hf::moduleOfWeightKey(StringRef key) {
  if (!key.consume_back(".weight"))
    return std::nullopt;
  return key;
}

std::string hf::mixtralRouterKey(int64_t layer) {
  return layerPrefix(layer) + "block_sparse_moe.gate.weight";
}

std::string hf::sharedExpertGateKey(int64_t layer) {
  return layerPrefix(layer) + "mlp.shared_expert_gate.weight";
}

std::string hf::projectionRouterKey(StringRef module) {
  return (module + ".router.weight").str();
}

std::string hf::loraAKey(StringRef module) {
  return (module + ".lora_A.weight").str();
}

std::string hf::loraBKey(StringRef module) {
  return (module + ".lora_B.weight").str();
}
