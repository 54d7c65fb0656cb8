//===- DecoderStructure.h - A model function as decoder parts ---*- C++ -*-===//
//
// Exporters write a model function in the vocabulary of the formats they
// target: embedding, decoder layers (norms, attention projections, FFN or
// routed experts), final norm and head. matchDecoder recognises that
// structure in a function as the importer and the mixing passes build it.
//
//===----------------------------------------------------------------------===//

#ifndef MOE_ANALYSIS_DECODERSTRUCTURE_H
#define MOE_ANALYSIS_DECODERSTRUCTURE_H

#include "moe/Analysis/RoutedExperts.h"

#include "mlir/Dialect/Func/IR/FuncOps.h"

#include <optional>
#include <vector>

namespace mlir::moe {

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

#endif // MOE_ANALYSIS_DECODERSTRUCTURE_H
