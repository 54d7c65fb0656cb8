//===- DecoderStructure.h - A model function as decoder parts ---*- C++ -*-===//
//
// Exporters write a model function in the vocabulary of the formats they
// target: embedding, decoder layers (norms, attention projections, FFN or
// routed experts), final norm and head. matchDecoder recognises that
// structure in a function as the importer and the mixing passes build it.
//
//===----------------------------------------------------------------------===//

#ifndef MOE_EXPORT_DECODERSTRUCTURE_H
#define MOE_EXPORT_DECODERSTRUCTURE_H

#include "moe/Dialect/MoeOps.h"

#include "mlir/Dialect/Func/IR/FuncOps.h"

#include <optional>
#include <vector>

namespace mlir::moe {

/// The routed FFN of a layer (a moe.experts with its gating, or a
/// moe.fused_moe), reduced to what standard MoE checkpoints describe.
struct RoutedExperts {
  Operation *op = nullptr;
  /// `[E, H]` router weight and optional bias; both null for gate-less
  /// routing (every expert with weight 1/E).
  Value router, routerBias;
  /// What the router reads: the FFN input, unless the gating is global.
  Value routerInput;
  int64_t numExperts = 0;
  /// Experts per token (E when gate-less).
  int64_t topK = 0;
  Scoring scoring = Scoring::softmax;
  bool scoreBeforeTopK = true;
  bool renormalize = false;
  double noiseStd = 0.0;
  /// Stacked expert weights: `[E, I, H]`, `[E, I, H]`, `[E, H, I]`.
  Value gate, up, down;
  /// The shared expert, if any, and its `[1, H]` sigmoid gate (null for an
  /// always-on expert).
  Value sharedGate, sharedUp, sharedDown, sharedExpertGate;
  Activation activation = Activation::silu;

  bool gateless() const { return !router; }
  /// Whether the k gate weights of a softmax router sum to one:
  /// renormalised, softmax after top-k (the same function), all E experts
  /// chosen, or gate-less.
  bool weightsSumToOne() const;
  int64_t intermediateSize() const;
  int64_t sharedIntermediateSize() const;
};

/// A dense FFN (moe.ffn without biases).
struct DenseFfn {
  FfnOp op;
  Value gate, up, down;
  int64_t intermediateSize() const;
};

struct DecoderLayer {
  int64_t index = 0;
  Value inputNorm, postAttentionNorm;
  Value query, key, value, output;
  /// Biases of the projections; null when absent.
  Value queryBias, keyBias, valueBias, outputBias;
  AttentionOp attention;
  /// moe.scale factors on the attention and FFN branches (Granite's
  /// residual multiplier); 1 when absent.
  double attentionBranchScale = 1.0, ffnBranchScale = 1.0;
  /// Exactly one of the two is set.
  std::optional<DenseFfn> dense;
  std::optional<RoutedExperts> routed;
  /// The epsilons of the two norms.
  double inputNormEpsilon = 0, postAttentionNormEpsilon = 0;
};

/// A decoder-only causal LM: embedding, layers, final norm, head.
struct Decoder {
  func::FuncOp func;
  Value embeddingTable;
  double embeddingScale = 1.0;
  std::vector<DecoderLayer> layers;
  Value finalNorm;
  double finalNormEpsilon = 0;
  /// The head weight; the embedding table itself when embeddings are tied.
  Value head;
  /// moe.scale on the logits (Granite's 1 / logits_scaling); 1 when absent.
  double logitsScale = 1.0;

  bool tiedEmbeddings() const { return head == embeddingTable; }
};

/// Recognises `func` as a decoder. Reports the first operation that does not
/// fit (an error on it, naming what was expected) and fails.
FailureOr<Decoder> matchDecoder(func::FuncOp func);

} // namespace mlir::moe

#endif // MOE_EXPORT_DECODERSTRUCTURE_H
