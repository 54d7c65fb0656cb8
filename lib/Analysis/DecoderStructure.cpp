//===- DecoderStructure.cpp - A model function as decoder parts -----------===//
//
// Walks a model function backwards from its logits: head, final norm, then
// per layer the FFN residual addition and the attention residual addition,
// down to the embedding. Residual additions are recognised by their operands,
// in either order, so that canonicalisation cannot hide a layer.
//
//===----------------------------------------------------------------------===//

#include "moe/Analysis/DecoderStructure.h"

#include "mlir/Dialect/Arith/IR/Arith.h"

using namespace mlir;
using namespace mlir::moe;

static int64_t dim(Value value, unsigned index) {
  return cast<RankedTensorType>(value.getType()).getShape()[index];
}

int64_t DenseFfn::intermediateSize() const { return dim(up, 0); }

namespace {
class DecoderMatcher {
public:
  explicit DecoderMatcher(func::FuncOp func) : func(func) {}
  FailureOr<Decoder> match();

private:
  /// Reports that `value` is not the `expected` part of a decoder.
  LogicalResult mismatch(Value value, const Twine &expected);
  /// Strips a moe.scale, returning its factor in `factor` (1 without).
  static Value stripScale(Value value, double &factor);
  LogicalResult matchLayer(arith::AddFOp ffnResidual, DecoderLayer &layer,
                           Value &layerInput);
  LogicalResult matchAttention(Value branch, Value layerInput,
                               DecoderLayer &layer);
  LogicalResult matchFfn(Value branch, Value residual, DecoderLayer &layer);

  func::FuncOp func;
};
} // namespace

LogicalResult DecoderMatcher::mismatch(Value value, const Twine &expected) {
  Operation *op = value.getDefiningOp();
  InFlightDiagnostic diag =
      op ? op->emitError() : mlir::emitError(func.getLoc());
  diag << "@" << func.getSymName()
       << " does not have the structure of a decoder: expected " << expected
       << ", found ";
  if (op)
    diag << "'" << op->getName() << "'";
  else
    diag << "a block argument";
  return failure();
}

Value DecoderMatcher::stripScale(Value value, double &factor) {
  factor = 1.0;
  if (auto scale = value.getDefiningOp<ScaleOp>()) {
    factor = scale.getFactor().convertToDouble();
    return scale.getInput();
  }
  return value;
}

FailureOr<Decoder> DecoderMatcher::match() {
  Decoder decoder;
  decoder.func = func;
  Block &body = func.getBody().front();
  if (func.getNumArguments() != 1)
    return mlir::emitError(func.getLoc())
           << "@" << func.getSymName() << " takes " << func.getNumArguments()
           << " arguments where a model function takes the token ids only "
              "(export before moe-outline-weights turns weights into "
              "arguments)";
  auto ret = dyn_cast<func::ReturnOp>(body.getTerminator());
  if (!ret || ret.getNumOperands() != 1)
    return mlir::emitError(func.getLoc())
           << "@" << func.getSymName()
           << " is not a model function: it must return the logits";

  Value logits = stripScale(ret.getOperand(0), decoder.logitsScale);
  auto head = logits.getDefiningOp<LinearOp>();
  if (!head || head.getBias())
    return mismatch(logits, "the language-model head (a moe.linear without "
                            "bias)");
  decoder.head = head.getWeight();
  auto finalNorm = head.getInput().getDefiningOp<RmsNormOp>();
  if (!finalNorm)
    return mismatch(head.getInput(), "the final moe.rms_norm");
  decoder.finalNorm = finalNorm.getWeight();
  decoder.finalNormEpsilon = finalNorm.getEpsilon().convertToDouble();

  Value hidden = finalNorm.getInput();
  while (auto residual = hidden.getDefiningOp<arith::AddFOp>()) {
    DecoderLayer layer;
    if (failed(matchLayer(residual, layer, hidden)))
      return failure();
    decoder.layers.push_back(std::move(layer));
  }
  std::reverse(decoder.layers.begin(), decoder.layers.end());
  for (auto [position, layer] : llvm::enumerate(decoder.layers))
    if (layer.index != int64_t(position))
      return layer.attention.emitError()
             << "@" << func.getSymName() << ": decoder layer " << position
             << " is tagged moe.layer = " << layer.index;

  Value embedded = stripScale(hidden, decoder.embeddingScale);
  auto embedding = embedded.getDefiningOp<EmbeddingOp>();
  if (!embedding || embedding.getIds() != func.getArgument(0))
    return mismatch(embedded, "the token embedding of the input ids (a "
                              "moe.embedding)");
  decoder.embeddingTable = embedding.getTable();
  return decoder;
}

LogicalResult DecoderMatcher::matchLayer(arith::AddFOp ffnResidual,
                                         DecoderLayer &layer,
                                         Value &layerInput) {
  // The FFN branch adds to the attention residual, itself an addition.
  Value residual = ffnResidual.getLhs(), ffnBranch = ffnResidual.getRhs();
  if (!residual.getDefiningOp<arith::AddFOp>())
    std::swap(residual, ffnBranch);
  auto attentionResidual = residual.getDefiningOp<arith::AddFOp>();
  if (!attentionResidual)
    return mismatch(ffnResidual.getResult(),
                    "the residual addition of an FFN to the residual "
                    "addition of an attention block");
  if (failed(matchFfn(ffnBranch, residual, layer)))
    return failure();

  // The attention branch is the output projection, possibly scaled.
  layerInput = attentionResidual.getLhs();
  Value attentionBranch = attentionResidual.getRhs();
  double factor;
  if (stripScale(layerInput, factor).getDefiningOp<LinearOp>())
    std::swap(layerInput, attentionBranch);
  return matchAttention(attentionBranch, layerInput, layer);
}

LogicalResult DecoderMatcher::matchAttention(Value branch, Value layerInput,
                                             DecoderLayer &layer) {
  Value projected = stripScale(branch, layer.attentionBranchScale);
  auto output = projected.getDefiningOp<LinearOp>();
  if (!output)
    return mismatch(projected, "the attention output projection (a "
                               "moe.linear)");
  auto attention = output.getInput().getDefiningOp<AttentionOp>();
  if (!attention)
    return mismatch(output.getInput(), "a moe.attention");
  std::optional<int64_t> index = getLayerIndex(attention);
  if (!index)
    return attention.emitError()
           << "@" << func.getSymName()
           << ": the attention has no moe.layer attribute";
  layer.index = *index;
  layer.attention = attention;
  layer.output = output.getWeight();
  layer.outputBias = output.getBias();

  Value normed;
  auto projection = [&](Value value, StringRef name, Value &weight,
                        Value &bias) -> LogicalResult {
    auto linear = value.getDefiningOp<LinearOp>();
    if (!linear)
      return mismatch(value, "the " + name + " projection (a moe.linear)");
    if (normed && linear.getInput() != normed)
      return mismatch(value, "a " + name +
                                 " projection of the same normed input as "
                                 "the query projection");
    normed = linear.getInput();
    weight = linear.getWeight();
    bias = linear.getBias();
    return success();
  };
  if (failed(projection(attention.getQuery(), "query", layer.query,
                        layer.queryBias)) ||
      failed(projection(attention.getKey(), "key", layer.key, layer.keyBias)) ||
      failed(projection(attention.getValue(), "value", layer.value,
                        layer.valueBias)))
    return failure();
  auto norm = normed.getDefiningOp<RmsNormOp>();
  if (!norm || norm.getInput() != layerInput)
    return mismatch(normed, "the input moe.rms_norm of the layer");
  layer.inputNorm = norm.getWeight();
  layer.inputNormEpsilon = norm.getEpsilon().convertToDouble();
  return success();
}

LogicalResult DecoderMatcher::matchFfn(Value branch, Value residual,
                                       DecoderLayer &layer) {
  Value result = stripScale(branch, layer.ffnBranchScale);
  Operation *op = result.getDefiningOp();
  if (!op || !isa<FfnOp, ExpertsOp, FusedMoeOp>(op))
    return mismatch(result, "an FFN (moe.ffn, moe.experts or moe.fused_moe)");
  auto norm = op->getOperand(0).getDefiningOp<RmsNormOp>();
  if (!norm || norm.getInput() != residual)
    return mismatch(op->getOperand(0),
                    "the post-attention moe.rms_norm of the layer");
  layer.postAttentionNorm = norm.getWeight();
  layer.postAttentionNormEpsilon = norm.getEpsilon().convertToDouble();

  if (auto ffn = dyn_cast<FfnOp>(op)) {
    if (ffn.getGateBias() || ffn.getUpBias() || ffn.getDownBias())
      return mismatch(result, "an FFN without biases");
    layer.dense = DenseFfn{ffn, ffn.getGate(), ffn.getUp(), ffn.getDown()};
    return success();
  }

  std::optional<RoutedExperts> routed = getRoutedExperts(op);
  if (routed->routing == RoutedExperts::Routing::Other)
    return mismatch(op->getOperand(1),
                    "the gating of the experts (a moe.uniform_gating, or a "
                    "moe.topk_gating of a moe.router)");
  layer.routed = std::move(routed);
  return success();
}

FailureOr<Decoder> mlir::moe::matchDecoder(func::FuncOp func) {
  return DecoderMatcher(func).match();
}
