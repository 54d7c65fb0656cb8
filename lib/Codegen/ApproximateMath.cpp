//===- ApproximateMath.cpp - Polynomial approximations of math ops --------===//

#include "moe/Codegen/Passes.h"

#include "mlir/Dialect/Arith/IR/Arith.h"
#include "mlir/Dialect/LLVMIR/LLVMDialect.h"
#include "mlir/Dialect/Math/IR/Math.h"
#include "mlir/Dialect/Math/Transforms/Approximation.h"
#include "mlir/Dialect/Math/Transforms/Passes.h"
#include "mlir/IR/TypeUtilities.h"
#include "mlir/Transforms/GreedyPatternRewriteDriver.h"

#include <cmath>

namespace mlir::moe {
#define GEN_PASS_DEF_APPROXIMATEMATH
#include "moe/CodegenPasses.h.inc"
} // namespace mlir::moe

using namespace mlir;

namespace {
/// The approximations use fma, floor, abs...: as math ops they would become
/// libdevice calls on NVVM; as LLVM intrinsics they are instructions.
template <typename MathOp, typename IntrinsicOp>
struct ToIntrinsic : OpRewritePattern<MathOp> {
  using OpRewritePattern<MathOp>::OpRewritePattern;
  LogicalResult matchAndRewrite(MathOp op,
                                PatternRewriter &rewriter) const override {
    rewriter.replaceOpWithNewOp<IntrinsicOp>(op, op->getResultTypes(),
                                             op->getOperands());
    return success();
  }
};

/// floor without libdevice: truncation, corrected for negative fractions;
/// magnitudes of 2^mantissa and more are already integers.
struct FloorToArith : OpRewritePattern<math::FloorOp> {
  using OpRewritePattern::OpRewritePattern;
  LogicalResult matchAndRewrite(math::FloorOp op,
                                PatternRewriter &rewriter) const override {
    auto type = dyn_cast<FloatType>(op.getType());
    if (!type || !(type.isF32() || type.isF64()))
      return failure();
    Location loc = op.getLoc();
    Value x = op.getOperand();
    auto constant = [&](double value) -> Value {
      return arith::ConstantOp::create(rewriter, loc,
                                       rewriter.getFloatAttr(type, value));
    };
    Type integer = rewriter.getIntegerType(type.getWidth());
    Value truncated = arith::SIToFPOp::create(
        rewriter, loc, type,
        arith::FPToSIOp::create(rewriter, loc, integer, x));
    Value above = arith::CmpFOp::create(
        rewriter, loc, arith::CmpFPredicate::OGT, truncated, x);
    Value lowered = arith::SelectOp::create(
        rewriter, loc, above,
        arith::SubFOp::create(rewriter, loc, truncated, constant(1.0)),
        truncated);
    Value integral = arith::CmpFOp::create(
        rewriter, loc, arith::CmpFPredicate::OGE,
        math::AbsFOp::create(rewriter, loc, x),
        constant(std::ldexp(1.0, type.getFPMantissaWidth() - 1)));
    rewriter.replaceOpWithNewOp<arith::SelectOp>(op, integral, x, lowered);
    return success();
  }
};

/// f64 transcendental functions (noise samples, rope frequencies) have no
/// polynomial approximation: computed in f32, which is what the f32
/// activations they feed carry anyway.
struct NarrowToF32 : RewritePattern {
  NarrowToF32(MLIRContext *context)
      : RewritePattern(MatchAnyOpTypeTag(), /*benefit=*/1, context) {}
  LogicalResult matchAndRewrite(Operation *op,
                                PatternRewriter &rewriter) const override {
    if (!isa<math::ExpOp, math::Exp2Op, math::ExpM1Op, math::LogOp,
             math::Log2Op, math::Log1pOp, math::CosOp, math::SinOp,
             math::TanhOp, math::ErfOp, math::AtanOp, math::Atan2Op,
             math::PowFOp>(op) ||
        !llvm::all_of(op->getOperandTypes(),
                      [](Type type) { return type.isF64(); }) ||
        !op->getResult(0).getType().isF64())
      return failure();
    Location loc = op->getLoc();
    Type f32 = rewriter.getF32Type();
    SmallVector<Value> narrow;
    for (Value operand : op->getOperands())
      narrow.push_back(arith::TruncFOp::create(rewriter, loc, f32, operand));
    OperationState state(loc, op->getName().getStringRef(), narrow, {f32},
                         op->getAttrs());
    Operation *narrowOp = rewriter.create(state);
    rewriter.replaceOpWithNewOp<arith::ExtFOp>(op, op->getResult(0).getType(),
                                               narrowOp->getResult(0));
    return success();
  }
};

/// sqrt as the PTX round-to-nearest instruction (IEEE, like libdevice's).
struct SqrtToNVVM : OpRewritePattern<math::SqrtOp> {
  using OpRewritePattern::OpRewritePattern;
  LogicalResult matchAndRewrite(math::SqrtOp op,
                                PatternRewriter &rewriter) const override {
    Type type = op.getType();
    if (!type.isF32() && !type.isF64())
      return failure();
    rewriter.replaceOpWithNewOp<LLVM::CallIntrinsicOp>(
        op, type,
        rewriter.getStringAttr(type.isF32() ? "llvm.nvvm.sqrt.rn.f"
                                            : "llvm.nvvm.sqrt.rn.d"),
        op.getOperand());
    return success();
  }
};

/// |x| = max(x, -x), an instruction rather than a libdevice call.
struct AbsToArith : OpRewritePattern<math::AbsFOp> {
  using OpRewritePattern::OpRewritePattern;
  LogicalResult matchAndRewrite(math::AbsFOp op,
                                PatternRewriter &rewriter) const override {
    Value x = op.getOperand();
    rewriter.replaceOpWithNewOp<arith::MaximumFOp>(
        op, x, arith::NegFOp::create(rewriter, op.getLoc(), x));
    return success();
  }
};

struct ApproximateMathPass
    : public moe::impl::ApproximateMathBase<ApproximateMathPass> {
  void runOnOperation() override {
    RewritePatternSet patterns(&getContext());
    // Expansions first bring powf, rsqrt, ceil... down to exp, log, sqrt,
    // floor and fma.
    math::populateExpansionPatterns(patterns);
    populateMathPolynomialApproximationPatterns(patterns);
    patterns.add<ToIntrinsic<math::FmaOp, LLVM::FMAOp>, SqrtToNVVM,
                 FloorToArith, AbsToArith, NarrowToF32>(&getContext());
    if (failed(applyPatternsGreedily(getOperation(), std::move(patterns))))
      return signalPassFailure();
  }
};
} // namespace
