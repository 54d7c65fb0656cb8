//===- FuseGating.cpp - Router, gating and experts into one op ------------===//

#include "moe/Transforms/Passes.h"

#include "mlir/IR/PatternMatch.h"
#include "mlir/Transforms/GreedyPatternRewriteDriver.h"

namespace mlir::moe {
#define GEN_PASS_DEF_FUSEGATING
#include "moe/Passes.h.inc"
} // namespace mlir::moe

using namespace mlir;
using namespace mlir::moe;

/// True when `value`'s only users are `op` (a gating shared by several
/// routed ops must stay computed once).
static bool onlyUsedBy(Value value, Operation *op) {
  return llvm::all_of(value.getUsers(),
                      [&](Operation *user) { return user == op; });
}

namespace {
/// router + topk_gating + experts -> fused_moe.
struct FuseRoutedExperts : OpRewritePattern<ExpertsOp> {
  using OpRewritePattern::OpRewritePattern;

  LogicalResult matchAndRewrite(ExpertsOp op,
                                PatternRewriter &rewriter) const override {
    auto gating = op.getWeights().getDefiningOp<TopKGatingOp>();
    if (!gating || op.getIndices() != gating.getIndices())
      return rewriter.notifyMatchFailure(op, "not gated by one topk_gating");
    auto router = gating.getLogits().getDefiningOp<RouterOp>();
    if (!router || router.getInput() != op.getInput())
      return rewriter.notifyMatchFailure(
          op, "logits are not a router of the input");
    if (!onlyUsedBy(gating.getWeights(), op) ||
        !onlyUsedBy(gating.getIndices(), op) ||
        !onlyUsedBy(router.getLogits(), gating))
      return rewriter.notifyMatchFailure(op, "the gating is shared");
    auto fused = FusedMoeOp::create(
        rewriter, op.getLoc(), op.getType(), op.getInput(), router.getWeight(),
        router.getBias(), op.getGate(), op.getUp(), op.getDown(),
        op.getSharedGate(), op.getSharedUp(), op.getSharedDown(),
        op.getSharedExpertGate(), gating.getKAttr(), gating.getScoringAttr(),
        gating.getScoreBeforeTopkAttr(), gating.getRenormalizeAttr(),
        gating.getNoiseStdAttr(), gating.getNoiseSeedAttr(),
        op.getActivationAttr());
    fused->setDiscardableAttrs(op->getDiscardableAttrDictionary());
    rewriter.replaceOp(op, fused);
    rewriter.eraseOp(gating);
    rewriter.eraseOp(router);
    return success();
  }
};

/// uniform_gating + experts -> router-less fused_moe: the weighted mean of
/// every expert.
struct FuseGatelessExperts : OpRewritePattern<ExpertsOp> {
  using OpRewritePattern::OpRewritePattern;

  LogicalResult matchAndRewrite(ExpertsOp op,
                                PatternRewriter &rewriter) const override {
    auto gating = op.getWeights().getDefiningOp<UniformGatingOp>();
    if (!gating || op.getIndices() != gating.getIndices() ||
        !onlyUsedBy(gating.getWeights(), op) ||
        !onlyUsedBy(gating.getIndices(), op))
      return rewriter.notifyMatchFailure(op, "not gate-less, or shared");
    auto fused = FusedMoeOp::create(
        rewriter, op.getLoc(), op.getType(), op.getInput(), Value(), Value(),
        op.getGate(), op.getUp(), op.getDown(), op.getSharedGate(),
        op.getSharedUp(), op.getSharedDown(), op.getSharedExpertGate(),
        gating.getNumExpertsAttr(),
        ScoringAttr::get(getContext(), Scoring::softmax),
        rewriter.getBoolAttr(true), UnitAttr(), rewriter.getF64FloatAttr(0.0),
        rewriter.getI64IntegerAttr(0), op.getActivationAttr());
    fused->setDiscardableAttrs(op->getDiscardableAttrDictionary());
    rewriter.replaceOp(op, fused);
    rewriter.eraseOp(gating);
    return success();
  }
};

/// A fused op over one expert whose gate is always 1 is a dense FFN.
struct SingleExpertFusedToFfn : OpRewritePattern<FusedMoeOp> {
  using OpRewritePattern::OpRewritePattern;

  LogicalResult matchAndRewrite(FusedMoeOp op,
                                PatternRewriter &rewriter) const override {
    auto up = cast<RankedTensorType>(op.getUp().getType());
    bool unitGate = !op.getRouter() || op.getScoring() == Scoring::softmax ||
                    op.getRenormalize();
    if (up.getShape()[0] != 1 || op.getSharedUp() || !unitGate)
      return rewriter.notifyMatchFailure(op, "not one always-chosen expert");
    Location loc = op.getLoc();
    auto first = [&](Value stacked) -> Value {
      if (!stacked)
        return stacked;
      if (auto stack = stacked.getDefiningOp<StackOp>())
        return stack.getInputs().front();
      auto type = cast<RankedTensorType>(stacked.getType());
      int64_t rank = type.getRank();
      SmallVector<OpFoldResult> offsets(rank, rewriter.getIndexAttr(0));
      SmallVector<OpFoldResult> strides(rank, rewriter.getIndexAttr(1));
      SmallVector<OpFoldResult> sizes;
      for (int64_t dim : type.getShape())
        sizes.push_back(rewriter.getIndexAttr(dim));
      return tensor::ExtractSliceOp::create(
          rewriter, loc,
          RankedTensorType::get(type.getShape().drop_front(),
                                type.getElementType()),
          stacked, offsets, sizes, strides);
    };
    auto ffn = FfnOp::create(rewriter, loc, op.getType(), op.getInput(),
                             first(op.getGate()), first(op.getUp()),
                             first(op.getDown()), Value(), Value(), Value(),
                             op.getActivation());
    ffn->setDiscardableAttrs(op->getDiscardableAttrDictionary());
    rewriter.replaceOp(op, ffn);
    return success();
  }
};

struct FuseGatingPass : public moe::impl::FuseGatingBase<FuseGatingPass> {
  void runOnOperation() override {
    RewritePatternSet patterns(&getContext());
    patterns
        .add<FuseRoutedExperts, FuseGatelessExperts, SingleExpertFusedToFfn>(
            &getContext());
    ExpertsOp::getCanonicalizationPatterns(patterns, &getContext());
    if (failed(applyPatternsGreedily(getOperation(), std::move(patterns))))
      return signalPassFailure();
  }
};
} // namespace
