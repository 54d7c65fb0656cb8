//===- MoeCanonicalize.cpp - Canonicalisation patterns of moe ops ---------===//

#include "moe/Dialect/MoeOps.h"

#include "mlir/Dialect/Tensor/IR/Tensor.h"
#include "mlir/IR/PatternMatch.h"

using namespace mlir;
using namespace mlir::moe;

/// True when every gate weight that `weights` can hold is exactly 1: one
/// expert chosen out of one, scored by a softmax, a renormalised sigmoid or
/// the gate-less uniform gating.
static bool isUnitGate(Value weights) {
  if (auto uniform = weights.getDefiningOp<UniformGatingOp>())
    return uniform.getNumExperts() == 1;
  auto gating = weights.getDefiningOp<TopKGatingOp>();
  if (!gating)
    return false;
  auto logits = cast<RankedTensorType>(gating.getLogits().getType());
  if (logits.getShape().back() != 1)
    return false;
  return gating.getScoring() == Scoring::softmax || gating.getRenormalize();
}

/// Expert 0 of a stacked weight [1, ...]: the stacked operand itself when the
/// stack is visible, a rank-reducing slice otherwise.
static Value firstExpert(PatternRewriter &rewriter, Location loc,
                         Value stacked) {
  if (!stacked)
    return stacked;
  if (auto stack = stacked.getDefiningOp<StackOp>())
    return stack.getInputs().front();
  auto type = cast<RankedTensorType>(stacked.getType());
  auto sliceType = RankedTensorType::get(type.getShape().drop_front(),
                                         type.getElementType());
  int64_t rank = type.getRank();
  SmallVector<OpFoldResult> offsets(rank, rewriter.getIndexAttr(0));
  SmallVector<OpFoldResult> strides(rank, rewriter.getIndexAttr(1));
  SmallVector<OpFoldResult> sizes;
  for (int64_t dim : type.getShape())
    sizes.push_back(rewriter.getIndexAttr(dim));
  return tensor::ExtractSliceOp::create(rewriter, loc, sliceType, stacked,
                                        offsets, sizes, strides);
}

namespace {
/// A routed op over a single expert that always gets weight 1 is that
/// expert's dense FFN.
struct SingleExpertToFfn : OpRewritePattern<ExpertsOp> {
  using OpRewritePattern::OpRewritePattern;

  LogicalResult matchAndRewrite(ExpertsOp op,
                                PatternRewriter &rewriter) const override {
    auto up = cast<RankedTensorType>(op.getUp().getType());
    if (up.getShape()[0] != 1 || op.getSharedUp() ||
        !isUnitGate(op.getWeights()))
      return rewriter.notifyMatchFailure(op,
                                         "not a single always-chosen expert");
    Location loc = op.getLoc();
    auto ffn = FfnOp::create(rewriter, loc, op.getType(), op.getInput(),
                             firstExpert(rewriter, loc, op.getGate()),
                             firstExpert(rewriter, loc, op.getUp()),
                             firstExpert(rewriter, loc, op.getDown()), Value(),
                             Value(), Value(), op.getActivation());
    ffn->setDiscardableAttrs(op->getDiscardableAttrDictionary());
    rewriter.replaceOp(op, ffn);
    return success();
  }
};

/// A LoRA adapter scaled by zero contributes nothing.
struct ZeroScaleLoraToLinear : OpRewritePattern<LoraLinearOp> {
  using OpRewritePattern::OpRewritePattern;

  LogicalResult matchAndRewrite(LoraLinearOp op,
                                PatternRewriter &rewriter) const override {
    if (!op.getScale().isZero())
      return rewriter.notifyMatchFailure(op, "non-zero adapter scale");
    auto linear = LinearOp::create(rewriter, op.getLoc(), op.getType(),
                                   op.getInput(), op.getWeight(), op.getBias());
    linear->setDiscardableAttrs(op->getDiscardableAttrDictionary());
    rewriter.replaceOp(op, linear);
    return success();
  }
};
} // namespace

void ExpertsOp::getCanonicalizationPatterns(RewritePatternSet &patterns,
                                            MLIRContext *context) {
  patterns.add<SingleExpertToFfn>(context);
}

void LoraLinearOp::getCanonicalizationPatterns(RewritePatternSet &patterns,
                                               MLIRContext *context) {
  patterns.add<ZeroScaleLoraToLinear>(context);
}
