//===- TensorNames.h - Hugging Face tensor names ----------------*- C++ -*-===//
//
// The names of the tensors of Hugging Face decoders, MoE checkpoints, PEFT
// adapters and the router files of moe-mix-experts and moe-mix-adapters: one
// home for the naming conventions that the importer reads, the mixing passes
// look up and the Hugging Face export writes.
//
//===----------------------------------------------------------------------===//

#ifndef MOE_FORMATS_HF_TENSORNAMES_H
#define MOE_FORMATS_HF_TENSORNAMES_H

#include "llvm/ADT/StringRef.h"

#include <cstdint>
#include <optional>
#include <string>

namespace mlir::moe::hf {

/// Module paths of a decoder (a tensor is `<module>.weight` or
/// `<module>.bias`).
inline constexpr llvm::StringLiteral kEmbedTokens = "model.embed_tokens";
inline constexpr llvm::StringLiteral kFinalNorm = "model.norm";
inline constexpr llvm::StringLiteral kLmHead = "lm_head";

/// `model.layers.<layer>.`
std::string layerPrefix(int64_t layer);
/// `model.layers.<layer>.self_attn.<projection>` (q_proj, k_proj, v_proj,
/// o_proj, qkv_proj).
std::string attentionModule(int64_t layer, llvm::StringRef projection);
/// `model.layers.<layer>.mlp.<projection>` (gate_proj, up_proj, down_proj,
/// gate_up_proj).
std::string mlpModule(int64_t layer, llvm::StringRef projection);
/// `model.layers.<layer>.input_layernorm` and
/// `model.layers.<layer>.post_attention_layernorm`.
std::string inputNormModule(int64_t layer);
std::string postAttentionNormModule(int64_t layer);

/// `<module>.weight` and `<module>.bias`.
std::string weightKey(llvm::StringRef module);
std::string biasKey(llvm::StringRef module);
/// The module of a `<module>.weight` key; std::nullopt for other keys.
std::optional<llvm::StringRef> moduleOfWeightKey(llvm::StringRef key);

/// The router of layer `layer` under Mixtral's name,
/// `model.layers.<layer>.block_sparse_moe.gate.weight`: what the Mixtral
/// export writes and `router=given` reads, whatever the architecture.
std::string mixtralRouterKey(int64_t layer);
/// Qwen2-MoE's shared-expert gate,
/// `model.layers.<layer>.mlp.shared_expert_gate.weight`.
std::string sharedExpertGateKey(int64_t layer);
/// The router of a routed projection in a `router=given` file:
/// `<module>.router.weight` (also the routers of moe-mix-adapters).
std::string projectionRouterKey(llvm::StringRef module);
/// The global router of a `router=given` file.
inline constexpr llvm::StringLiteral kGlobalRouterKey = "model.router.weight";

/// PEFT's LoRA factors of a module: `<module>.lora_A.weight` and
/// `<module>.lora_B.weight`.
std::string loraAKey(llvm::StringRef module);
std::string loraBKey(llvm::StringRef module);

} // namespace mlir::moe::hf

#endif // MOE_FORMATS_HF_TENSORNAMES_H
