//===- Layout.h - Which Hugging Face MoE layout a mix is --------*- C++ -*-===//
//
// A mixed function becomes MixtralForCausalLM, Qwen2MoeForCausalLM or
// GraniteMoeForCausalLM, whichever computes exactly what it computes, and
// its config.json holds what every layer shares.
//
//===----------------------------------------------------------------------===//

#ifndef MOE_LIB_EXPORT_HF_LAYOUT_H
#define MOE_LIB_EXPORT_HF_LAYOUT_H

#include "moe/Analysis/DecoderStructure.h"
#include "moe/Formats/HF/HFConfig.h"
#include "moe/Weights/DType.h"

#include "llvm/Support/JSON.h"

namespace mlir::moe::hf_export {

enum class Layout { Mixtral, Qwen2Moe, GraniteMoe };

llvm::StringRef architectureOf(Layout layout);
llvm::StringRef modelTypeOf(Layout layout);

/// An export that writes decoders in these layouts: how its messages name
/// it, and the layouts it can write.
struct ExportTarget {
  /// What the export writes ("a Hugging Face checkpoint").
  llvm::StringRef what;
  /// Its architectures, for "... has no counterpart in <architectures>".
  llvm::StringRef architectures;
  /// What holds the settings shared by all layers ("a Hugging Face config").
  llvm::StringRef config;
  /// The layouts it writes, best first; empty for the base family's ones.
  llvm::ArrayRef<Layout> layouts;
  /// Where a refused feature can go instead.
  llvm::StringRef otherExports;
};

/// The Hugging Face export (--export-hf).
extern const ExportTarget kHuggingFaceTarget;

/// What every layer of the decoder shares, as one config describes it.
struct UniformShape {
  int64_t hidden = 0, vocab = 0;
  int64_t heads = 0, kvHeads = 0, headDim = 0;
  double normEpsilon = 0;
  Activation activation = Activation::silu;
  /// Of the routed layers.
  int64_t numExperts = 0, topK = 0, expertIntermediate = 0;
  bool weightsSumToOne = false;
  bool hasShared = false, sharedGated = false;
  int64_t sharedIntermediate = 0;
  /// Of the dense layers, if any.
  std::optional<int64_t> denseIntermediate;
  SmallVector<int64_t> denseLayers;
  /// The branch scale of every layer (Granite's residual multiplier).
  double branchScale = 1.0;
  /// Per layer: the sliding window, if any.
  SmallVector<std::optional<int64_t>> windows;
  /// The attention scale when it is not 1/sqrt(head_dim).
  std::optional<double> attentionScale;
  /// Biases of all of q, k and v; of some of them only; of o.
  bool qkvBias = false, partialQkvBias = false, outputBias = false;
};

/// The layout that carries a decoder, and what its layers share.
struct LayoutChoice {
  Layout layout;
  UniformShape shape;
};

/// Refuses operations that no decoder layout has (mixtures of adapters,
/// routed projections...), before the structure is matched, so that the
/// message names the feature rather than the shape.
LogicalResult refuseUnstructuredFeatures(func::FuncOp func,
                                         const ExportTarget &target);

/// The first layout that computes exactly what `decoder` computes (the
/// base's family first), checking that every layer has what one config can
/// say once and that the rotary embedding is `base`'s. Errors name the
/// feature no layout carries; dense layers that a layout writes as copies
/// of the FFN get a warning.
FailureOr<LayoutChoice> chooseLayout(Decoder &decoder,
                                     const DecoderConfig &base,
                                     const ExportTarget &target);

/// The experts of a decoder layer, per projection, as (weight, expert)
/// slices: the routed experts, or `numExperts` copies of a dense layer's
/// FFN when `copyDense` (layouts without dense layers write them under a
/// zero router, which is exact); the router, null for a dense layer.
struct ExpertSlices {
  using Slice = std::pair<Value, std::optional<int64_t>>;
  Value router;
  SmallVector<Slice> gates, ups, downs;
};
ExpertSlices expertSlices(const DecoderLayer &layer, int64_t numExperts,
                          bool copyDense);

/// The config.json of the export (Config.cpp): the base's token, position
/// and rotary fields, and the layout's sizes, experts and multipliers.
llvm::json::Object buildConfig(const LayoutChoice &choice,
                               const Decoder &decoder,
                               const DecoderConfig &base, weights::DType dtype);

} // namespace mlir::moe::hf_export

#endif // MOE_LIB_EXPORT_HF_LAYOUT_H
