//===- MoeToLinalg.cpp - moe compute ops to linalg on tensors -------------===//

#include "moe/Conversion/TensorBuilder.h"

#include "moe/Conversion/Passes.h"
#include "moe/Dialect/MoeOps.h"

#include "mlir/Dialect/Arith/IR/Arith.h"
#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/Dialect/Linalg/IR/Linalg.h"
#include "mlir/Dialect/Math/IR/Math.h"
#include "mlir/Dialect/SCF/IR/SCF.h"
#include "mlir/Dialect/Tensor/IR/Tensor.h"
#include "mlir/Transforms/DialectConversion.h"

#include <cmath>

namespace mlir::moe {
#define GEN_PASS_DEF_LOWERTOLINALG
#include "moe/ConversionPasses.h.inc"
} // namespace mlir::moe

using namespace mlir;
using namespace mlir::moe;
using utils::IteratorType;

namespace {
RankedTensorType tensorType(Value value) {
  return cast<RankedTensorType>(value.getType());
}

Type elementType(Value value) { return tensorType(value).getElementType(); }

//===----------------------------------------------------------------------===//
// Rotary embedding
//===----------------------------------------------------------------------===//

/// The inverse frequencies as a tensor; for dynamic NTK scaling computed
/// from the sequence length `length` at run time.
Value frequencyTensor(TensorBuilder &tb, AttentionOp op, Value length,
                      Type element, double &cosSinScale) {
  OpBuilder &b = tb.builder();
  Location loc = tb.location();
  int64_t dim = op.getHeadDim();
  double theta = op.getRopeTheta().convertToDouble();
  RopeScalingAttr scaling = op.getRopeScalingAttr();
  auto [frequencies, scale] = op.getRopeInverseFrequencies();
  cosSinScale = scale;
  auto type = RankedTensorType::get({dim / 2}, element);
  if (!scaling || scaling.getKind() != RopeScalingKind::dynamic) {
    SmallVector<float> values(frequencies.begin(), frequencies.end());
    return arith::ConstantOp::create(
        b, loc, type, DenseElementsAttr::get(type, ArrayRef<float>(values)));
  }
  // base = theta * ((factor * S / max) - (factor - 1)) ^ (d / (d - 2)) once
  // S exceeds max, theta before; frequency i = base ^ (-2 i / d).
  double factor = scaling.getFactor().convertToDouble();
  double maxPositions = scaling.getOriginalMaxPosition();
  Type f64 = b.getF64Type();
  Value lengthF = arith::SIToFPOp::create(
      b, loc, f64, arith::IndexCastOp::create(b, loc, b.getI64Type(), length));
  Value ratio = arith::SubFOp::create(
      b, loc,
      arith::MulFOp::create(b, loc, lengthF,
                            tb.floatConstant(f64, factor / maxPositions)),
      tb.floatConstant(f64, factor - 1));
  Value grown = arith::MulFOp::create(
      b, loc, tb.floatConstant(f64, theta),
      math::PowFOp::create(b, loc, ratio,
                           tb.floatConstant(f64, double(dim) / (dim - 2))));
  Value longer =
      arith::CmpFOp::create(b, loc, arith::CmpFPredicate::OGT, lengthF,
                            tb.floatConstant(f64, maxPositions));
  Value base = arith::SelectOp::create(b, loc, longer, grown,
                                       tb.floatConstant(f64, theta));
  Value logBase = math::LogOp::create(b, loc, base);
  Value init = tb.empty({b.getIndexAttr(dim / 2)}, element);
  AffineMap identity = AffineMap::getMultiDimIdentityMap(1, b.getContext());
  return tb.generic(
      {}, init, {identity}, {IteratorType::parallel},
      [&](OpBuilder &nb, Location l, ValueRange) -> Value {
        Value i = arith::IndexCastOp::create(nb, l, nb.getI64Type(),
                                             linalg::IndexOp::create(nb, l, 0));
        Value exponent = arith::MulFOp::create(
            nb, l, arith::SIToFPOp::create(nb, l, f64, i),
            arith::ConstantOp::create(nb, l, nb.getF64FloatAttr(-2.0 / dim)));
        Value value = math::ExpOp::create(
            nb, l, arith::MulFOp::create(nb, l, exponent, logBase));
        return arith::TruncFOp::create(nb, l, element, value);
      });
}

/// Rotates [B, S, heads, d] by the half-split rotary embedding at positions
/// 0..S-1: x * cos + rotate_half(x) * sin.
Value applyRope(TensorBuilder &tb, Value x, Value frequencies, double scale) {
  OpBuilder &b = tb.builder();
  int64_t dim = tensorType(x).getShape()[3], half = dim / 2;
  Type element = elementType(x);
  Value init = tb.empty(tb.sizes(x), element);
  AffineMap identity = AffineMap::getMultiDimIdentityMap(4, b.getContext());
  SmallVector<IteratorType> parallel(4, IteratorType::parallel);
  return tb.generic(
      {x}, init, {identity, identity}, parallel,
      [&](OpBuilder &nb, Location l, ValueRange args) -> Value {
        auto constant = [&](double v) -> Value {
          return arith::ConstantOp::create(nb, l, nb.getFloatAttr(element, v));
        };
        Value batch = linalg::IndexOp::create(nb, l, 0);
        Value position = linalg::IndexOp::create(nb, l, 1);
        Value head = linalg::IndexOp::create(nb, l, 2);
        Value d = linalg::IndexOp::create(nb, l, 3);
        Value halfValue = arith::ConstantIndexOp::create(nb, l, half);
        Value first = arith::CmpIOp::create(nb, l, arith::CmpIPredicate::ult, d,
                                            halfValue);
        Value i = arith::RemUIOp::create(nb, l, d, halfValue);
        Value partnerIndex = arith::SelectOp::create(
            nb, l, first, arith::AddIOp::create(nb, l, d, halfValue),
            arith::SubIOp::create(nb, l, d, halfValue));
        Value partner = tensor::ExtractOp::create(
            nb, l, x, ValueRange{batch, position, head, partnerIndex});
        Value frequency =
            tensor::ExtractOp::create(nb, l, frequencies, ValueRange{i});
        Value positionF = arith::SIToFPOp::create(
            nb, l, element,
            arith::IndexCastOp::create(nb, l, nb.getI64Type(), position));
        Value angle = arith::MulFOp::create(nb, l, positionF, frequency);
        Value cos = math::CosOp::create(nb, l, angle);
        Value sin = math::SinOp::create(nb, l, angle);
        if (scale != 1.0) {
          cos = arith::MulFOp::create(nb, l, cos, constant(scale));
          sin = arith::MulFOp::create(nb, l, sin, constant(scale));
        }
        Value rotated = arith::SelectOp::create(
            nb, l, first, arith::NegFOp::create(nb, l, partner), partner);
        return arith::AddFOp::create(
            nb, l, arith::MulFOp::create(nb, l, args[0], cos),
            arith::MulFOp::create(nb, l, rotated, sin));
      });
}

/// [B, S, F] -> [B, S, parts..., last] with the last dimension split.
Value splitHeads(TensorBuilder &tb, Value x, ArrayRef<int64_t> parts) {
  auto type = tensorType(x);
  SmallVector<int64_t> shape{type.getShape()[0], type.getShape()[1]};
  llvm::append_range(shape, parts);
  SmallVector<OpFoldResult> outputShape{tb.sizes(x)[0], tb.sizes(x)[1]};
  for (int64_t part : parts)
    outputShape.push_back(tb.builder().getIndexAttr(part));
  ReassociationIndices tail;
  for (size_t i = 0; i < parts.size(); ++i)
    tail.push_back(2 + i);
  return tensor::ExpandShapeOp::create(
      tb.builder(), tb.location(),
      RankedTensorType::get(shape, type.getElementType()), x,
      ArrayRef<ReassociationIndices>{{0}, {1}, tail}, outputShape);
}

Value lowerAttention(TensorBuilder &tb, AttentionOp op, Value query, Value key,
                     Value value) {
  OpBuilder &b = tb.builder();
  MLIRContext *context = b.getContext();
  Location loc = tb.location();
  Type element = elementType(query);
  int64_t heads = op.getNumHeads(), kvHeads = op.getNumKvHeads(),
          dim = op.getHeadDim(), group = heads / kvHeads;

  Value q = splitHeads(tb, query, {heads, dim});
  Value k = splitHeads(tb, key, {kvHeads, dim});
  Value v = splitHeads(tb, value, {kvHeads, dim});
  if (op.getRopeTheta().convertToDouble() != 0) {
    double scale;
    Value frequencies =
        frequencyTensor(tb, op, tb.dim(query, 1), element, scale);
    q = applyRope(tb, q, frequencies, scale);
    k = applyRope(tb, k, frequencies, scale);
  }
  // Query head h reads key/value head h / group: [B, S, kv, group, d].
  SmallVector<OpFoldResult> qShape = tb.sizes(q);
  q = tensor::ExpandShapeOp::create(
      b, loc,
      RankedTensorType::get({tensorType(q).getShape()[0],
                             tensorType(q).getShape()[1], kvHeads, group, dim},
                            element),
      q, ArrayRef<ReassociationIndices>{{0}, {1}, {2, 3}, {4}},
      ArrayRef<OpFoldResult>{qShape[0], qShape[1], b.getIndexAttr(kvHeads),
                             b.getIndexAttr(group), b.getIndexAttr(dim)});

  // scores[b, kv, g, i, j] = sum_d q[b, i, kv, g, d] k[b, j, kv, d] * scale.
  auto d = [&](unsigned i) { return b.getAffineDimExpr(i); };
  Value batch = tb.dim(query, 0), length = tb.dim(query, 1);
  SmallVector<OpFoldResult> scoreSizes{batch, b.getIndexAttr(kvHeads),
                                       b.getIndexAttr(group), length, length};
  Value scores = tb.generic(
      {q, k}, tb.zeros(scoreSizes, element),
      {AffineMap::get(6, 0, {d(0), d(3), d(1), d(2), d(5)}, context),
       AffineMap::get(6, 0, {d(0), d(4), d(1), d(5)}, context),
       AffineMap::get(6, 0, {d(0), d(1), d(2), d(3), d(4)}, context)},
      {IteratorType::parallel, IteratorType::parallel, IteratorType::parallel,
       IteratorType::parallel, IteratorType::parallel, IteratorType::reduction},
      [](OpBuilder &nb, Location l, ValueRange args) -> Value {
        return arith::AddFOp::create(
            nb, l, args[2], arith::MulFOp::create(nb, l, args[0], args[1]));
      });

  // Causal (and sliding-window) masked softmax over j.
  double scale = op.getScale() ? op.getScale()->convertToDouble()
                               : 1.0 / std::sqrt(double(dim));
  std::optional<int64_t> window;
  if (op.getSlidingWindow())
    window = int64_t(*op.getSlidingWindow());
  auto allowed = [window](OpBuilder &nb, Location l) -> Value {
    Value i = linalg::IndexOp::create(nb, l, 3);
    Value j = linalg::IndexOp::create(nb, l, 4);
    Value causal =
        arith::CmpIOp::create(nb, l, arith::CmpIPredicate::ule, j, i);
    if (!window)
      return causal;
    // i - w < j, i.e. i < j + w.
    Value reach = arith::AddIOp::create(
        nb, l, j, arith::ConstantIndexOp::create(nb, l, *window));
    Value inWindow =
        arith::CmpIOp::create(nb, l, arith::CmpIPredicate::ult, i, reach);
    return arith::AndIOp::create(nb, l, causal, inWindow);
  };
  AffineMap all = AffineMap::getMultiDimIdentityMap(5, context);
  AffineMap rows = AffineMap::get(5, 0, {d(0), d(1), d(2), d(3)}, context);
  SmallVector<IteratorType> rowReduction(4, IteratorType::parallel);
  rowReduction.push_back(IteratorType::reduction);
  SmallVector<IteratorType> parallel(5, IteratorType::parallel);
  SmallVector<OpFoldResult> rowSizes(scoreSizes.begin(), scoreSizes.end() - 1);
  Value maxima = tb.generic(
      {scores}, tb.filled(rowSizes, tb.floatConstant(element, -INFINITY)),
      {all, rows}, rowReduction,
      [&](OpBuilder &nb, Location l, ValueRange args) -> Value {
        Value scaled = arith::MulFOp::create(
            nb, l, args[0],
            arith::ConstantOp::create(nb, l, nb.getFloatAttr(element, scale)));
        Value candidate = arith::MaximumFOp::create(nb, l, args[1], scaled);
        return arith::SelectOp::create(nb, l, allowed(nb, l), candidate,
                                       args[1]);
      });
  Value exponentials = tb.generic(
      {scores, maxima}, tb.empty(scoreSizes, element), {all, rows, all},
      parallel, [&](OpBuilder &nb, Location l, ValueRange args) -> Value {
        Value scaled = arith::MulFOp::create(
            nb, l, args[0],
            arith::ConstantOp::create(nb, l, nb.getFloatAttr(element, scale)));
        Value e = math::ExpOp::create(
            nb, l, arith::SubFOp::create(nb, l, scaled, args[1]));
        return arith::SelectOp::create(
            nb, l, allowed(nb, l), e,
            arith::ConstantOp::create(nb, l, nb.getFloatAttr(element, 0.0)));
      });
  Value sums = tb.generic(
      {exponentials}, tb.zeros(rowSizes, element), {all, rows}, rowReduction,
      [](OpBuilder &nb, Location l, ValueRange args) -> Value {
        return arith::AddFOp::create(nb, l, args[0], args[1]);
      });
  Value probabilities = tb.generic(
      {exponentials, sums}, tb.empty(scoreSizes, element), {all, rows, all},
      parallel, [](OpBuilder &nb, Location l, ValueRange args) -> Value {
        return arith::DivFOp::create(nb, l, args[0], args[1]);
      });

  // out[b, i, kv, g, d] = sum_j p[b, kv, g, i, j] v[b, j, kv, d].
  SmallVector<OpFoldResult> outSizes{batch, length, b.getIndexAttr(kvHeads),
                                     b.getIndexAttr(group),
                                     b.getIndexAttr(dim)};
  Value out = tb.generic(
      {probabilities, v}, tb.zeros(outSizes, element),
      {AffineMap::get(6, 0, {d(0), d(2), d(3), d(1), d(5)}, context),
       AffineMap::get(6, 0, {d(0), d(5), d(2), d(4)}, context),
       AffineMap::get(6, 0, {d(0), d(1), d(2), d(3), d(4)}, context)},
      {IteratorType::parallel, IteratorType::parallel, IteratorType::parallel,
       IteratorType::parallel, IteratorType::parallel, IteratorType::reduction},
      [](OpBuilder &nb, Location l, ValueRange args) -> Value {
        return arith::AddFOp::create(
            nb, l, args[2], arith::MulFOp::create(nb, l, args[0], args[1]));
      });
  return tensor::CollapseShapeOp::create(
      b, loc, out, ArrayRef<ReassociationIndices>{{0}, {1}, {2, 3, 4}});
}

//===----------------------------------------------------------------------===//
// Normalisation
//===----------------------------------------------------------------------===//

/// RMS norm (no bias, `center` false) or layer norm of [..., F].
Value lowerNorm(TensorBuilder &tb, Value input, Value weight, Value bias,
                double epsilon, bool center) {
  OpBuilder &b = tb.builder();
  Value x = tb.collapseTokens(input);
  Type element = elementType(x);
  double features = tensorType(x).getShape()[1];
  Value inverseCount = tb.floatConstant(element, 1.0 / features);
  if (center) {
    Value mean = tb.reduceLastDim(x, /*maximum=*/false);
    x = tb.mapWithRow(
        x, mean,
        [&](OpBuilder &nb, Location l, Value value, Value sum) -> Value {
          return arith::SubFOp::create(
              nb, l, value, arith::MulFOp::create(nb, l, sum, inverseCount));
        });
  }
  Value squares = tb.map({x}, [](OpBuilder &nb, Location l, ValueRange args) {
    return arith::MulFOp::create(nb, l, args[0], args[0]).getResult();
  });
  Value sumSquares = tb.reduceLastDim(squares, /*maximum=*/false);
  Value eps = tb.floatConstant(element, epsilon);
  Value normalized = tb.mapWithRow(
      x, sumSquares,
      [&](OpBuilder &nb, Location l, Value value, Value sum) -> Value {
        Value variance = arith::MulFOp::create(nb, l, sum, inverseCount);
        Value inverse = math::RsqrtOp::create(
            nb, l, arith::AddFOp::create(nb, l, variance, eps));
        return arith::MulFOp::create(nb, l, value, inverse);
      });
  MLIRContext *context = b.getContext();
  AffineMap identity = AffineMap::getMultiDimIdentityMap(2, context);
  AffineMap column = AffineMap::get(2, 0, {b.getAffineDimExpr(1)}, context);
  SmallVector<Value> inputs{normalized, weight};
  SmallVector<AffineMap> maps{identity, column};
  if (bias) {
    inputs.push_back(bias);
    maps.push_back(column);
  }
  maps.push_back(identity);
  Value scaled = tb.generic(
      inputs, tb.empty(tb.sizes(normalized), element), maps,
      {IteratorType::parallel, IteratorType::parallel},
      [&](OpBuilder &nb, Location l, ValueRange args) -> Value {
        Value product = arith::MulFOp::create(nb, l, args[0], args[1]);
        return bias ? arith::AddFOp::create(nb, l, product, args[2]) : product;
      });
  return tb.expandTokens(scaled, input);
}

//===----------------------------------------------------------------------===//
// Gating
//===----------------------------------------------------------------------===//

/// Softmax over the last dimension of [T, N].
Value softmaxRows(TensorBuilder &tb, Value x) {
  Value maxima = tb.reduceLastDim(x, /*maximum=*/true);
  Value exponentials = tb.mapWithRow(
      x, maxima, [](OpBuilder &nb, Location l, Value v, Value m) -> Value {
        return math::ExpOp::create(nb, l, arith::SubFOp::create(nb, l, v, m));
      });
  Value sums = tb.reduceLastDim(exponentials, /*maximum=*/false);
  return tb.mapWithRow(exponentials, sums,
                       [](OpBuilder &nb, Location l, Value v, Value s) {
                         return arith::DivFOp::create(nb, l, v, s).getResult();
                       });
}

/// Divides every row of [T, N] by its sum.
Value renormalizeRows(TensorBuilder &tb, Value x) {
  Value sums = tb.reduceLastDim(x, /*maximum=*/false);
  return tb.mapWithRow(x, sums,
                       [](OpBuilder &nb, Location l, Value v, Value s) {
                         return arith::DivFOp::create(nb, l, v, s).getResult();
                       });
}

/// The k largest scores of every row of [T, E] (ties to the lower index):
/// values [T, k] and indices [T, k] (i64). Output (t, j) is the expert of
/// rank j, rank(e) counting the experts that score higher or as high with a
/// lower index; every output is independent, so the top-k is one parallel
/// linalg.generic (GPU threads on the GPU path).
std::pair<Value, Value> selectTopK(TensorBuilder &tb, Value scores, int64_t k) {
  OpBuilder &b = tb.builder();
  Location loc = tb.location();
  Type element = elementType(scores);
  Type i64 = b.getI64Type();
  int64_t experts = tensorType(scores).getShape()[1];
  SmallVector<OpFoldResult> outSizes{tb.dim(scores, 0), b.getIndexAttr(k)};
  AffineMap identity = AffineMap::getMultiDimIdentityMap(2, b.getContext());
  auto generic = linalg::GenericOp::create(
      b, loc,
      TypeRange{tensorType(scores).clone({ShapedType::kDynamic, k}),
                RankedTensorType::get({ShapedType::kDynamic, k}, i64)},
      ValueRange{},
      ValueRange{tb.empty(outSizes, element), tb.empty(outSizes, i64)},
      SmallVector<AffineMap>{identity, identity},
      SmallVector<utils::IteratorType>(2, utils::IteratorType::parallel),
      [&](OpBuilder &nb, Location l, ValueRange) {
        Value t = linalg::IndexOp::create(nb, l, 0);
        Value j = linalg::IndexOp::create(nb, l, 1);
        Value jI64 = arith::IndexCastOp::create(nb, l, i64, j);
        Value zero = arith::ConstantIndexOp::create(nb, l, 0);
        Value one = arith::ConstantIndexOp::create(nb, l, 1);
        Value count = arith::ConstantIndexOp::create(nb, l, experts);
        // NaN scores have no rank: index j keeps the output a valid expert.
        Value nan = arith::ConstantOp::create(
            nb, l,
            nb.getFloatAttr(
                element,
                APFloat::getNaN(cast<FloatType>(element).getFloatSemantics())));
        auto scan = scf::ForOp::create(
            nb, l, zero, count, one, ValueRange{nan, jI64},
            [&](OpBuilder &sb, Location sl, Value e, ValueRange chosen) {
              Value score =
                  tensor::ExtractOp::create(sb, sl, scores, ValueRange{t, e});
              auto rank = scf::ForOp::create(
                  sb, sl, zero, count, one, ValueRange{zero},
                  [&](OpBuilder &rb, Location rl, Value other,
                      ValueRange counted) {
                    Value otherScore = tensor::ExtractOp::create(
                        rb, rl, scores, ValueRange{t, other});
                    Value higher = arith::CmpFOp::create(
                        rb, rl, arith::CmpFPredicate::OGT, otherScore, score);
                    Value tiedBefore = arith::AndIOp::create(
                        rb, rl,
                        arith::CmpFOp::create(rb, rl, arith::CmpFPredicate::OEQ,
                                              otherScore, score),
                        arith::CmpIOp::create(rb, rl, arith::CmpIPredicate::ult,
                                              other, e));
                    Value ahead =
                        arith::OrIOp::create(rb, rl, higher, tiedBefore);
                    Value next = arith::AddIOp::create(
                        rb, rl, counted[0],
                        arith::SelectOp::create(rb, rl, ahead, one, zero));
                    scf::YieldOp::create(rb, rl, next);
                  });
              Value isJ = arith::CmpIOp::create(
                  sb, sl, arith::CmpIPredicate::eq, rank.getResult(0), j);
              Value eI64 = arith::IndexCastOp::create(sb, sl, i64, e);
              scf::YieldOp::create(
                  sb, sl,
                  ValueRange{
                      arith::SelectOp::create(sb, sl, isJ, score, chosen[0]),
                      arith::SelectOp::create(sb, sl, isJ, eI64, chosen[1])});
            });
        linalg::YieldOp::create(nb, l, scan.getResults());
      });
  return {generic.getResult(0), generic.getResult(1)};
}

struct GatingSpec {
  int64_t k;
  Scoring scoring;
  bool scoreBeforeTopK;
  bool renormalize;
  double noiseStd;
  int64_t noiseSeed;
};

/// Top-k gating of [T, E] logits: gate weights and expert indices, [T, k].
std::pair<Value, Value> lowerGating(TensorBuilder &tb, Value logits,
                                    const GatingSpec &spec) {
  Type element = elementType(logits);
  int64_t experts = tensorType(logits).getShape()[1];
  if (spec.noiseStd > 0) {
    double std = spec.noiseStd;
    uint64_t seed = spec.noiseSeed;
    logits = tb.map({logits}, [&](OpBuilder &nb, Location l, ValueRange args) {
      Type i64 = nb.getI64Type();
      Value t = arith::IndexCastOp::create(nb, l, i64,
                                           linalg::IndexOp::create(nb, l, 0));
      Value e = arith::IndexCastOp::create(nb, l, i64,
                                           linalg::IndexOp::create(nb, l, 1));
      Value position = arith::AddIOp::create(
          nb, l,
          arith::MulIOp::create(
              nb, l, t,
              arith::ConstantOp::create(nb, l, nb.getI64IntegerAttr(experts))),
          e);
      Value noise = arith::MulFOp::create(
          nb, l, buildNormalSample(nb, l, seed, position),
          arith::ConstantOp::create(nb, l, nb.getF64FloatAttr(std)));
      return arith::AddFOp::create(
                 nb, l, args[0], arith::TruncFOp::create(nb, l, element, noise))
          .getResult();
    });
  }
  Value scores = logits;
  if (spec.scoring == Scoring::sigmoid)
    scores = tb.map({logits}, [](OpBuilder &nb, Location l, ValueRange args) {
      Value one = arith::ConstantOp::create(
          nb, l, nb.getFloatAttr(args[0].getType(), 1.0));
      Value denominator = arith::AddFOp::create(
          nb, l, one,
          math::ExpOp::create(nb, l, arith::NegFOp::create(nb, l, args[0])));
      return arith::DivFOp::create(nb, l, one, denominator).getResult();
    });
  else if (spec.scoreBeforeTopK)
    scores = softmaxRows(tb, logits);
  auto [weights, indices] = selectTopK(tb, scores, spec.k);
  if (spec.scoring == Scoring::softmax && !spec.scoreBeforeTopK)
    weights = softmaxRows(tb, weights);
  if (spec.renormalize)
    weights = renormalizeRows(tb, weights);
  return {weights, indices};
}

//===----------------------------------------------------------------------===//
// Routed experts
//===----------------------------------------------------------------------===//

/// G[t, e] = sum_j weights[t, j] * (indices[t, j] == e): the gate of every
/// expert for every token, zero where not chosen.
Value gateMatrix(TensorBuilder &tb, Value weights, Value indices,
                 int64_t experts) {
  OpBuilder &b = tb.builder();
  MLIRContext *context = b.getContext();
  Type element = elementType(weights);
  auto d = [&](unsigned i) { return b.getAffineDimExpr(i); };
  SmallVector<OpFoldResult> sizes{tb.sizes(weights)[0],
                                  b.getIndexAttr(experts)};
  return tb.generic(
      {weights, indices}, tb.zeros(sizes, element),
      {AffineMap::get(3, 0, {d(0), d(2)}, context),
       AffineMap::get(3, 0, {d(0), d(2)}, context),
       AffineMap::get(3, 0, {d(0), d(1)}, context)},
      {IteratorType::parallel, IteratorType::parallel, IteratorType::reduction},
      [&](OpBuilder &nb, Location l, ValueRange args) -> Value {
        Value e = arith::IndexCastOp::create(nb, l, nb.getI64Type(),
                                             linalg::IndexOp::create(nb, l, 1));
        Value chosen =
            arith::CmpIOp::create(nb, l, arith::CmpIPredicate::eq, args[1], e);
        Value gate = arith::SelectOp::create(
            nb, l, chosen, args[0],
            arith::ConstantOp::create(nb, l, nb.getFloatAttr(element, 0.0)));
        return arith::AddFOp::create(nb, l, args[2], gate);
      });
}

/// Y[e, t, n] = sum_k x[t, k] w[e, n, k] (+ bias[e, n]) for every expert.
Value batchedProjection(TensorBuilder &tb, Value x, Value weight, Value bias) {
  OpBuilder &b = tb.builder();
  MLIRContext *context = b.getContext();
  Type element = elementType(x);
  auto d = [&](unsigned i) { return b.getAffineDimExpr(i); };
  SmallVector<OpFoldResult> sizes{tb.sizes(weight)[0], tb.sizes(x)[0],
                                  tb.sizes(weight)[1]};
  Value result = tb.generic(
      {x, weight}, tb.zeros(sizes, element),
      {AffineMap::get(4, 0, {d(1), d(3)}, context),
       AffineMap::get(4, 0, {d(0), d(2), d(3)}, context),
       AffineMap::get(4, 0, {d(0), d(1), d(2)}, context)},
      {IteratorType::parallel, IteratorType::parallel, IteratorType::parallel,
       IteratorType::reduction},
      [](OpBuilder &nb, Location l, ValueRange args) -> Value {
        return arith::AddFOp::create(
            nb, l, args[2], arith::MulFOp::create(nb, l, args[0], args[1]));
      });
  if (!bias)
    return result;
  AffineMap identity = AffineMap::getMultiDimIdentityMap(3, context);
  return tb.generic(
      {result, bias}, tb.empty(sizes, element),
      {identity, AffineMap::get(3, 0, {d(0), d(2)}, context), identity},
      SmallVector<IteratorType>(3, IteratorType::parallel),
      [](OpBuilder &nb, Location l, ValueRange args) -> Value {
        return arith::AddFOp::create(nb, l, args[0], args[1]);
      });
}

/// Y[e, t, n] = sum_i m[e, t, i] w[e, n, i]: per-expert inputs.
Value batchedPerExpertProjection(TensorBuilder &tb, Value m, Value weight) {
  OpBuilder &b = tb.builder();
  MLIRContext *context = b.getContext();
  auto d = [&](unsigned i) { return b.getAffineDimExpr(i); };
  SmallVector<OpFoldResult> sizes{tb.sizes(weight)[0], tb.sizes(m)[1],
                                  tb.sizes(weight)[1]};
  return tb.generic({m, weight}, tb.zeros(sizes, elementType(m)),
                    {AffineMap::get(4, 0, {d(0), d(1), d(3)}, context),
                     AffineMap::get(4, 0, {d(0), d(2), d(3)}, context),
                     AffineMap::get(4, 0, {d(0), d(1), d(2)}, context)},
                    {IteratorType::parallel, IteratorType::parallel,
                     IteratorType::parallel, IteratorType::reduction},
                    [](OpBuilder &nb, Location l, ValueRange args) -> Value {
                      return arith::AddFOp::create(
                          nb, l, args[2],
                          arith::MulFOp::create(nb, l, args[0], args[1]));
                    });
}

/// out[t, h] = sum_e G[t, e] Y[e, t, h].
Value combineExperts(TensorBuilder &tb, Value gates, Value outputs) {
  OpBuilder &b = tb.builder();
  MLIRContext *context = b.getContext();
  auto d = [&](unsigned i) { return b.getAffineDimExpr(i); };
  SmallVector<OpFoldResult> sizes{tb.sizes(outputs)[1], tb.sizes(outputs)[2]};
  return tb.generic(
      {gates, outputs}, tb.zeros(sizes, elementType(outputs)),
      {AffineMap::get(3, 0, {d(0), d(2)}, context),
       AffineMap::get(3, 0, {d(2), d(0), d(1)}, context),
       AffineMap::get(3, 0, {d(0), d(1)}, context)},
      {IteratorType::parallel, IteratorType::parallel, IteratorType::reduction},
      [](OpBuilder &nb, Location l, ValueRange args) -> Value {
        return arith::AddFOp::create(
            nb, l, args[2], arith::MulFOp::create(nb, l, args[0], args[1]));
      });
}

/// What one routed expert computes on gathered rows [n, in].
using ExpertFn = function_ref<Value(TensorBuilder &, Value rows, Value expert)>;

/// The sparse strategy: tokens are sorted by expert (counting sort of the
/// (token, slot) pairs), each expert runs on its own tokens only, and the
/// gate-weighted outputs are added back into their tokens' rows.
Value routeSparse(TensorBuilder &tb, Value x, Value weights, Value indices,
                  int64_t experts, int64_t outFeatures, ExpertFn expert) {
  OpBuilder &b = tb.builder();
  Location loc = tb.location();
  Type element = elementType(x);
  Type indexType = b.getIndexType();
  int64_t k = tensorType(weights).getShape()[1];
  Value tokens = tb.dim(x, 0);
  Value zero = tb.index(0), one = tb.index(1), kValue = tb.index(k);
  Value pairs = arith::MulIOp::create(b, loc, tokens, kValue);
  auto expertOf = [&](OpBuilder &nb, Location l, Value pair) {
    Value t = arith::DivUIOp::create(nb, l, pair,
                                     arith::ConstantIndexOp::create(nb, l, k));
    Value j = arith::RemUIOp::create(nb, l, pair,
                                     arith::ConstantIndexOp::create(nb, l, k));
    Value e = tensor::ExtractOp::create(nb, l, indices, ValueRange{t, j});
    return std::tuple<Value, Value, Value>{
        t, j, arith::IndexCastOp::create(nb, l, nb.getIndexType(), e)};
  };

  // Tokens per expert.
  Value counts0 = tb.filled({b.getIndexAttr(experts)}, tb.index(0));
  auto counting = scf::ForOp::create(
      b, loc, zero, pairs, one, ValueRange{counts0},
      [&](OpBuilder &nb, Location l, Value pair, ValueRange state) {
        auto [t, j, e] = expertOf(nb, l, pair);
        (void)t;
        (void)j;
        Value count = tensor::ExtractOp::create(nb, l, state[0], ValueRange{e});
        Value next = arith::AddIOp::create(
            nb, l, count, arith::ConstantIndexOp::create(nb, l, 1));
        scf::YieldOp::create(nb, l,
                             ValueRange{tensor::InsertOp::create(
                                 nb, l, next, state[0], ValueRange{e})});
      });
  Value counts = counting.getResult(0);
  // Where each expert's tokens start.
  auto prefix = scf::ForOp::create(
      b, loc, zero, tb.index(experts), one,
      ValueRange{zero, tb.empty({b.getIndexAttr(experts)}, indexType)},
      [&](OpBuilder &nb, Location l, Value e, ValueRange state) {
        Value offsets =
            tensor::InsertOp::create(nb, l, state[0], state[1], ValueRange{e});
        Value count = tensor::ExtractOp::create(nb, l, counts, ValueRange{e});
        scf::YieldOp::create(
            nb, l,
            ValueRange{arith::AddIOp::create(nb, l, state[0], count), offsets});
      });
  Value offsets = prefix.getResult(1);
  // The permutation: token and gate of every (token, slot) pair, by expert.
  auto permute = scf::ForOp::create(
      b, loc, zero, pairs, one,
      ValueRange{offsets, tb.empty({pairs}, indexType),
                 tb.empty({pairs}, element)},
      [&](OpBuilder &nb, Location l, Value pair, ValueRange state) {
        auto [t, j, e] = expertOf(nb, l, pair);
        Value position =
            tensor::ExtractOp::create(nb, l, state[0], ValueRange{e});
        Value gate =
            tensor::ExtractOp::create(nb, l, weights, ValueRange{t, j});
        Value cursor = tensor::InsertOp::create(
            nb, l,
            arith::AddIOp::create(nb, l, position,
                                  arith::ConstantIndexOp::create(nb, l, 1)),
            state[0], ValueRange{e});
        Value sortedTokens =
            tensor::InsertOp::create(nb, l, t, state[1], ValueRange{position});
        Value sortedGates = tensor::InsertOp::create(nb, l, gate, state[2],
                                                     ValueRange{position});
        scf::YieldOp::create(nb, l,
                             ValueRange{cursor, sortedTokens, sortedGates});
      });
  Value sortedTokens = permute.getResult(1), sortedGates = permute.getResult(2);

  SmallVector<OpFoldResult> outSizes{tokens, b.getIndexAttr(outFeatures)};
  auto perExpert = scf::ForOp::create(
      b, loc, zero, tb.index(experts), one,
      ValueRange{tb.zeros(outSizes, element)},
      [&](OpBuilder &nb, Location l, Value e, ValueRange state) {
        TensorBuilder inner(nb, l);
        Value start = tensor::ExtractOp::create(nb, l, offsets, ValueRange{e});
        Value count = tensor::ExtractOp::create(nb, l, counts, ValueRange{e});
        auto slice1d = [&](Value source) -> Value {
          return tensor::ExtractSliceOp::create(
              nb, l, source, ArrayRef<OpFoldResult>{start},
              ArrayRef<OpFoldResult>{count},
              ArrayRef<OpFoldResult>{nb.getIndexAttr(1)});
        };
        Value rows = slice1d(sortedTokens);
        Value gates = slice1d(sortedGates);
        Value gathered = inner.gatherRows(x, rows);
        Value computed = expert(inner, gathered, e);
        Value scaled = inner.mapWithRow(
            computed, gates, [](OpBuilder &sb, Location sl, Value v, Value g) {
              return arith::MulFOp::create(sb, sl, v, g).getResult();
            });
        // Scatter-add each row into its token.
        auto scatter = scf::ForOp::create(
            nb, l, arith::ConstantIndexOp::create(nb, l, 0), count,
            arith::ConstantIndexOp::create(nb, l, 1), state,
            [&](OpBuilder &sb, Location sl, Value r, ValueRange out) {
              TensorBuilder rowBuilder(sb, sl);
              Value token =
                  tensor::ExtractOp::create(sb, sl, rows, ValueRange{r});
              SmallVector<OpFoldResult> rowSizes{sb.getIndexAttr(1),
                                                 sb.getIndexAttr(outFeatures)};
              SmallVector<OpFoldResult> unit(2, sb.getIndexAttr(1));
              Value source = tensor::ExtractSliceOp::create(
                  sb, sl, scaled, ArrayRef<OpFoldResult>{r, sb.getIndexAttr(0)},
                  rowSizes, unit);
              Value destination = tensor::ExtractSliceOp::create(
                  sb, sl, out[0],
                  ArrayRef<OpFoldResult>{token, sb.getIndexAttr(0)}, rowSizes,
                  unit);
              Value sum = rowBuilder.map(
                  {destination, source},
                  [](OpBuilder &mb, Location ml, ValueRange args) {
                    return arith::AddFOp::create(mb, ml, args[0], args[1])
                        .getResult();
                  });
              Value updated = tensor::InsertSliceOp::create(
                  sb, sl, sum, out[0],
                  ArrayRef<OpFoldResult>{token, sb.getIndexAttr(0)}, rowSizes,
                  unit);
              scf::YieldOp::create(sb, sl, ValueRange{updated});
            });
        scf::YieldOp::create(nb, l, scatter.getResults());
      });
  return perExpert.getResult(0);
}

/// What the routed FFN experts of moe.experts / moe.fused_moe need.
struct ExpertWeights {
  Value gate, up, down;
  Value sharedGate, sharedUp, sharedDown, sharedExpertGate;
  Activation activation;

  /// The (converted) weights of moe.experts or moe.fused_moe.
  template <typename OpTy, typename Adaptor>
  static ExpertWeights of(OpTy op, Adaptor adaptor) {
    return {adaptor.getGate(),
            adaptor.getUp(),
            adaptor.getDown(),
            adaptor.getSharedGate(),
            adaptor.getSharedUp(),
            adaptor.getSharedDown(),
            adaptor.getSharedExpertGate(),
            op.getActivation()};
  }
};

/// Adds the shared expert (sigmoid-gated when it has a gate row).
Value addSharedExpert(TensorBuilder &tb, Value x, Value routed,
                      const ExpertWeights &w) {
  if (!w.sharedUp)
    return routed;
  Value shared = tb.ffn(x, w.sharedGate, w.sharedUp, w.sharedDown, Value(),
                        Value(), Value(), w.activation);
  if (w.sharedExpertGate) {
    Value logits = tb.matmulTransposedB(x, w.sharedExpertGate); // [T, 1]
    Value flat =
        tensor::CollapseShapeOp::create(tb.builder(), tb.location(), logits,
                                        ArrayRef<ReassociationIndices>{{0, 1}});
    shared = tb.mapWithRow(
        shared, flat, [](OpBuilder &nb, Location l, Value v, Value g) {
          Value one = arith::ConstantOp::create(
              nb, l, nb.getFloatAttr(g.getType(), 1.0));
          Value sigmoid = arith::DivFOp::create(
              nb, l, one,
              arith::AddFOp::create(
                  nb, l, one,
                  math::ExpOp::create(nb, l, arith::NegFOp::create(nb, l, g))));
          return arith::MulFOp::create(nb, l, v, sigmoid).getResult();
        });
  }
  return tb.map({routed, shared}, [](OpBuilder &nb, Location l, ValueRange a) {
    return arith::AddFOp::create(nb, l, a[0], a[1]).getResult();
  });
}

/// Routed FFN experts on [T, H] with gates [T, k] / indices [T, k]; null
/// indices means every expert with the gate matrix `weights` [T, E].
Value lowerRoutedFfn(TensorBuilder &tb, Value x, Value weights, Value indices,
                     const ExpertWeights &w, RoutedStrategy strategy) {
  int64_t experts = tensorType(w.up).getShape()[0];
  int64_t hidden = tensorType(x).getShape()[1];
  Value routed;
  if (strategy == RoutedStrategy::dense || !indices) {
    Value gates = indices ? gateMatrix(tb, weights, indices, experts) : weights;
    Value up = batchedProjection(tb, x, w.up, Value());
    Value middle = w.gate ? tb.glu(batchedProjection(tb, x, w.gate, Value()),
                                   up, w.activation)
                          : tb.activation(up, w.activation);
    routed = combineExperts(tb, gates,
                            batchedPerExpertProjection(tb, middle, w.down));
  } else {
    routed =
        routeSparse(tb, x, weights, indices, experts, hidden,
                    [&](TensorBuilder &inner, Value rows, Value e) {
                      Value gate =
                          w.gate ? inner.sliceLeading(w.gate, e) : Value();
                      return inner.ffn(rows, gate, inner.sliceLeading(w.up, e),
                                       inner.sliceLeading(w.down, e), Value(),
                                       Value(), Value(), w.activation);
                    });
  }
  return addSharedExpert(tb, x, routed, w);
}

/// The uniform gate matrix of a gate-less mixture: 1 / E everywhere.
Value uniformGates(TensorBuilder &tb, Value x, int64_t experts) {
  Type element = elementType(x);
  return tb.filled({tb.sizes(x)[0], tb.builder().getIndexAttr(experts)},
                   tb.floatConstant(element, 1.0 / double(experts)));
}

//===----------------------------------------------------------------------===//
// Conversion patterns
//===----------------------------------------------------------------------===//

template <typename OpTy> struct Lowering : OpConversionPattern<OpTy> {
  Lowering(MLIRContext *context, RoutedStrategy strategy)
      : OpConversionPattern<OpTy>(context), strategy(strategy) {}
  RoutedStrategy strategy;
};

struct EmbeddingLowering : Lowering<EmbeddingOp> {
  using Lowering::Lowering;
  LogicalResult
  matchAndRewrite(EmbeddingOp op, OpAdaptor adaptor,
                  ConversionPatternRewriter &rewriter) const override {
    TensorBuilder tb(rewriter, op.getLoc());
    Value ids = adaptor.getIds(), table = adaptor.getTable();
    int64_t rank = tensorType(ids).getRank();
    MLIRContext *context = rewriter.getContext();
    SmallVector<OpFoldResult> sizes = tb.sizes(ids);
    sizes.push_back(tb.sizes(table)[1]);
    AffineMap output = AffineMap::getMultiDimIdentityMap(rank + 1, context);
    AffineMap input =
        AffineMap::get(rank + 1, 0, output.getResults().drop_back(), context);
    Value result =
        tb.generic({ids}, tb.empty(sizes, elementType(table)), {input, output},
                   SmallVector<IteratorType>(rank + 1, IteratorType::parallel),
                   [&](OpBuilder &nb, Location l, ValueRange args) -> Value {
                     Value row = arith::IndexCastOp::create(
                         nb, l, nb.getIndexType(), args[0]);
                     Value column = linalg::IndexOp::create(nb, l, rank);
                     return tensor::ExtractOp::create(nb, l, table,
                                                      ValueRange{row, column});
                   });
    rewriter.replaceOp(op, result);
    return success();
  }
};

struct RmsNormLowering : Lowering<RmsNormOp> {
  using Lowering::Lowering;
  LogicalResult
  matchAndRewrite(RmsNormOp op, OpAdaptor adaptor,
                  ConversionPatternRewriter &rewriter) const override {
    TensorBuilder tb(rewriter, op.getLoc());
    rewriter.replaceOp(op,
                       lowerNorm(tb, adaptor.getInput(), adaptor.getWeight(),
                                 Value(), op.getEpsilon().convertToDouble(),
                                 /*center=*/false));
    return success();
  }
};

struct LayerNormLowering : Lowering<LayerNormOp> {
  using Lowering::Lowering;
  LogicalResult
  matchAndRewrite(LayerNormOp op, OpAdaptor adaptor,
                  ConversionPatternRewriter &rewriter) const override {
    TensorBuilder tb(rewriter, op.getLoc());
    rewriter.replaceOp(op, lowerNorm(tb, adaptor.getInput(),
                                     adaptor.getWeight(), adaptor.getBias(),
                                     op.getEpsilon().convertToDouble(),
                                     /*center=*/true));
    return success();
  }
};

struct LinearLowering : Lowering<LinearOp> {
  using Lowering::Lowering;
  LogicalResult
  matchAndRewrite(LinearOp op, OpAdaptor adaptor,
                  ConversionPatternRewriter &rewriter) const override {
    TensorBuilder tb(rewriter, op.getLoc());
    rewriter.replaceOp(op, tb.linear(adaptor.getInput(), adaptor.getWeight(),
                                     adaptor.getBias()));
    return success();
  }
};

struct RouterLowering : Lowering<RouterOp> {
  using Lowering::Lowering;
  LogicalResult
  matchAndRewrite(RouterOp op, OpAdaptor adaptor,
                  ConversionPatternRewriter &rewriter) const override {
    TensorBuilder tb(rewriter, op.getLoc());
    rewriter.replaceOp(op, tb.linear(adaptor.getInput(), adaptor.getWeight(),
                                     adaptor.getBias()));
    return success();
  }
};

/// x A^T B^T scaled and added to `base` ([T, out]).
Value addLora(TensorBuilder &tb, Value base, Value x, Value a, Value b,
              Value gate, double scale) {
  Value low = tb.matmulTransposedB(x, a);
  Value update = tb.matmulTransposedB(low, b);
  Type element = elementType(base);
  Value scaleValue = tb.floatConstant(element, scale);
  if (!gate)
    return tb.map({base, update}, [&](OpBuilder &nb, Location l, ValueRange v) {
      return arith::AddFOp::create(
                 nb, l, v[0], arith::MulFOp::create(nb, l, v[1], scaleValue))
          .getResult();
    });
  Value scaled = tb.mapWithRow(
      update, gate, [&](OpBuilder &nb, Location l, Value v, Value g) {
        return arith::MulFOp::create(
                   nb, l, v, arith::MulFOp::create(nb, l, g, scaleValue))
            .getResult();
      });
  return tb.map({base, scaled}, [](OpBuilder &nb, Location l, ValueRange v) {
    return arith::AddFOp::create(nb, l, v[0], v[1]).getResult();
  });
}

struct LoraLinearLowering : Lowering<LoraLinearOp> {
  using Lowering::Lowering;
  LogicalResult
  matchAndRewrite(LoraLinearOp op, OpAdaptor adaptor,
                  ConversionPatternRewriter &rewriter) const override {
    TensorBuilder tb(rewriter, op.getLoc());
    Value x = tb.collapseTokens(adaptor.getInput());
    Value base = tb.matmulTransposedB(x, adaptor.getWeight());
    if (adaptor.getBias())
      base = tb.addBias(base, adaptor.getBias());
    Value result = addLora(tb, base, x, adaptor.getLoraA(), adaptor.getLoraB(),
                           Value(), op.getScale().convertToDouble());
    rewriter.replaceOp(op, tb.expandTokens(result, adaptor.getInput()));
    return success();
  }
};

struct AttentionLowering : Lowering<AttentionOp> {
  using Lowering::Lowering;
  LogicalResult
  matchAndRewrite(AttentionOp op, OpAdaptor adaptor,
                  ConversionPatternRewriter &rewriter) const override {
    TensorBuilder tb(rewriter, op.getLoc());
    rewriter.replaceOp(op,
                       lowerAttention(tb, op, adaptor.getQuery(),
                                      adaptor.getKey(), adaptor.getValue()));
    return success();
  }
};

struct FfnLowering : Lowering<FfnOp> {
  using Lowering::Lowering;
  LogicalResult
  matchAndRewrite(FfnOp op, OpAdaptor adaptor,
                  ConversionPatternRewriter &rewriter) const override {
    TensorBuilder tb(rewriter, op.getLoc());
    rewriter.replaceOp(op, tb.ffn(adaptor.getInput(), adaptor.getGate(),
                                  adaptor.getUp(), adaptor.getDown(),
                                  adaptor.getGateBias(), adaptor.getUpBias(),
                                  adaptor.getDownBias(), op.getActivation()));
    return success();
  }
};

struct ActivationLowering : Lowering<ActivationOp> {
  using Lowering::Lowering;
  LogicalResult
  matchAndRewrite(ActivationOp op, OpAdaptor adaptor,
                  ConversionPatternRewriter &rewriter) const override {
    TensorBuilder tb(rewriter, op.getLoc());
    rewriter.replaceOp(op, tb.activation(adaptor.getInput(), op.getKind()));
    return success();
  }
};

struct GluLowering : Lowering<GluOp> {
  using Lowering::Lowering;
  LogicalResult
  matchAndRewrite(GluOp op, OpAdaptor adaptor,
                  ConversionPatternRewriter &rewriter) const override {
    TensorBuilder tb(rewriter, op.getLoc());
    rewriter.replaceOp(
        op, tb.glu(adaptor.getGate(), adaptor.getUp(), op.getActivation()));
    return success();
  }
};

struct ScaleLowering : Lowering<ScaleOp> {
  using Lowering::Lowering;
  LogicalResult
  matchAndRewrite(ScaleOp op, OpAdaptor adaptor,
                  ConversionPatternRewriter &rewriter) const override {
    TensorBuilder tb(rewriter, op.getLoc());
    Value factor = tb.floatConstant(elementType(adaptor.getInput()),
                                    op.getFactor().convertToDouble());
    rewriter.replaceOp(
        op, tb.map({adaptor.getInput()}, [&](OpBuilder &nb, Location l,
                                             ValueRange args) {
          return arith::MulFOp::create(nb, l, args[0], factor).getResult();
        }));
    return success();
  }
};

struct TopKGatingLowering : Lowering<TopKGatingOp> {
  using Lowering::Lowering;
  LogicalResult
  matchAndRewrite(TopKGatingOp op, OpAdaptor adaptor,
                  ConversionPatternRewriter &rewriter) const override {
    TensorBuilder tb(rewriter, op.getLoc());
    Value logits = tb.collapseTokens(adaptor.getLogits());
    GatingSpec spec{int64_t(op.getK()),
                    op.getScoring(),
                    op.getScoreBeforeTopk(),
                    op.getRenormalize(),
                    op.getNoiseStd().convertToDouble(),
                    int64_t(op.getNoiseSeed())};
    auto [weights, indices] = lowerGating(tb, logits, spec);
    rewriter.replaceOp(op, {tb.expandTokens(weights, adaptor.getLogits()),
                            tb.expandTokens(indices, adaptor.getLogits())});
    return success();
  }
};

struct UniformGatingLowering : Lowering<UniformGatingOp> {
  using Lowering::Lowering;
  LogicalResult
  matchAndRewrite(UniformGatingOp op, OpAdaptor adaptor,
                  ConversionPatternRewriter &rewriter) const override {
    TensorBuilder tb(rewriter, op.getLoc());
    int64_t experts = op.getNumExperts();
    Value x = tb.collapseTokens(adaptor.getInput());
    Value weights = uniformGates(tb, x, experts);
    Value indices = tb.map(
        {weights},
        [](OpBuilder &nb, Location l, ValueRange) {
          return arith::IndexCastOp::create(nb, l, nb.getI64Type(),
                                            linalg::IndexOp::create(nb, l, 1))
              .getResult();
        },
        rewriter.getI64Type());
    rewriter.replaceOp(op, {tb.expandTokens(weights, adaptor.getInput()),
                            tb.expandTokens(indices, adaptor.getInput())});
    return success();
  }
};

struct ExpertsLowering : Lowering<ExpertsOp> {
  using Lowering::Lowering;
  LogicalResult
  matchAndRewrite(ExpertsOp op, OpAdaptor adaptor,
                  ConversionPatternRewriter &rewriter) const override {
    TensorBuilder tb(rewriter, op.getLoc());
    Value x = tb.collapseTokens(adaptor.getInput());
    ExpertWeights w = ExpertWeights::of(op, adaptor);
    Value result =
        lowerRoutedFfn(tb, x, tb.collapseTokens(adaptor.getWeights()),
                       tb.collapseTokens(adaptor.getIndices()), w, strategy);
    rewriter.replaceOp(op, tb.expandTokens(result, adaptor.getInput()));
    return success();
  }
};

struct FusedMoeLowering : Lowering<FusedMoeOp> {
  using Lowering::Lowering;
  LogicalResult
  matchAndRewrite(FusedMoeOp op, OpAdaptor adaptor,
                  ConversionPatternRewriter &rewriter) const override {
    TensorBuilder tb(rewriter, op.getLoc());
    Value x = tb.collapseTokens(adaptor.getInput());
    ExpertWeights w = ExpertWeights::of(op, adaptor);
    int64_t experts = tensorType(w.up).getShape()[0];
    Value result;
    if (!adaptor.getRouter()) {
      // Gate-less: the mean of every expert, computed densely.
      result = lowerRoutedFfn(tb, x, uniformGates(tb, x, experts), Value(), w,
                              RoutedStrategy::dense);
    } else {
      Value logits = tb.matmulTransposedB(x, adaptor.getRouter());
      if (adaptor.getRouterBias())
        logits = tb.addBias(logits, adaptor.getRouterBias());
      GatingSpec spec{int64_t(op.getK()),
                      op.getScoring(),
                      op.getScoreBeforeTopk(),
                      op.getRenormalize(),
                      op.getNoiseStd().convertToDouble(),
                      int64_t(op.getNoiseSeed())};
      auto [weights, indices] = lowerGating(tb, logits, spec);
      result = lowerRoutedFfn(tb, x, weights, indices, w, strategy);
    }
    rewriter.replaceOp(op, tb.expandTokens(result, adaptor.getInput()));
    return success();
  }
};

struct RoutedLinearLowering : Lowering<RoutedLinearOp> {
  using Lowering::Lowering;
  LogicalResult
  matchAndRewrite(RoutedLinearOp op, OpAdaptor adaptor,
                  ConversionPatternRewriter &rewriter) const override {
    TensorBuilder tb(rewriter, op.getLoc());
    Value x = tb.collapseTokens(adaptor.getInput());
    Value weights = tb.collapseTokens(adaptor.getWeights());
    Value indices = tb.collapseTokens(adaptor.getIndices());
    Value stack = adaptor.getWeight(), bias = adaptor.getBias();
    int64_t experts = tensorType(stack).getShape()[0];
    int64_t out = tensorType(stack).getShape()[1];
    Value result;
    if (strategy == RoutedStrategy::dense) {
      result = combineExperts(tb, gateMatrix(tb, weights, indices, experts),
                              batchedProjection(tb, x, stack, bias));
    } else {
      result = routeSparse(
          tb, x, weights, indices, experts, out,
          [&](TensorBuilder &inner, Value rows, Value e) {
            Value projected =
                inner.matmulTransposedB(rows, inner.sliceLeading(stack, e));
            return bias ? inner.addBias(projected, inner.sliceLeading(bias, e))
                        : projected;
          });
    }
    rewriter.replaceOp(op, tb.expandTokens(result, adaptor.getInput()));
    return success();
  }
};

struct MixtureOfLoraLowering : Lowering<MixtureOfLoraOp> {
  using Lowering::Lowering;
  LogicalResult
  matchAndRewrite(MixtureOfLoraOp op, OpAdaptor adaptor,
                  ConversionPatternRewriter &rewriter) const override {
    TensorBuilder tb(rewriter, op.getLoc());
    Value x = tb.collapseTokens(adaptor.getInput());
    Value result = tb.matmulTransposedB(x, adaptor.getWeight());
    if (adaptor.getBias())
      result = tb.addBias(result, adaptor.getBias());
    int64_t experts = adaptor.getLoraA().size();
    Value logits = tb.matmulTransposedB(x, adaptor.getRouter());
    bool softmax = op.getNormalization() == Scoring::softmax;
    Value gates;
    if (op.getTopK() == 0) {
      // Every adapter, with its score.
      gates = softmax
                  ? softmaxRows(tb, logits)
                  : tb.map({logits}, [](OpBuilder &nb, Location l,
                                        ValueRange args) {
                      Value one = arith::ConstantOp::create(
                          nb, l, nb.getFloatAttr(args[0].getType(), 1.0));
                      return arith::DivFOp::create(
                                 nb, l, one,
                                 arith::AddFOp::create(
                                     nb, l, one,
                                     math::ExpOp::create(nb, l,
                                                         arith::NegFOp::create(
                                                             nb, l, args[0]))))
                          .getResult();
                    });
    } else {
      GatingSpec spec{
          int64_t(op.getTopK()), op.getNormalization(), true, softmax, 0.0, 0};
      auto [weights, indices] = lowerGating(tb, logits, spec);
      gates = gateMatrix(tb, weights, indices, experts);
    }
    for (int64_t e = 0; e < experts; ++e) {
      // Column e of the gate matrix.
      Value column = tensor::ExtractSliceOp::create(
          rewriter, op.getLoc(),
          RankedTensorType::get({ShapedType::kDynamic}, elementType(gates)),
          gates,
          ArrayRef<OpFoldResult>{rewriter.getIndexAttr(0),
                                 rewriter.getIndexAttr(e)},
          ArrayRef<OpFoldResult>{tb.sizes(gates)[0], rewriter.getIndexAttr(1)},
          ArrayRef<OpFoldResult>{rewriter.getIndexAttr(1),
                                 rewriter.getIndexAttr(1)});
      result = addLora(tb, result, x, adaptor.getLoraA()[e],
                       adaptor.getLoraB()[e], column, op.getScales()[e]);
    }
    rewriter.replaceOp(op, tb.expandTokens(result, adaptor.getInput()));
    return success();
  }
};

struct LowerToLinalgPass
    : public moe::impl::LowerToLinalgBase<LowerToLinalgPass> {
  using LowerToLinalgBase::LowerToLinalgBase;
  void runOnOperation() override;
};
} // namespace

void LowerToLinalgPass::runOnOperation() {
  RoutedStrategy kind = strategy;
  MLIRContext *context = &getContext();
  ConversionTarget target(*context);
  target.addLegalDialect<arith::ArithDialect, linalg::LinalgDialect,
                         math::MathDialect, scf::SCFDialect,
                         tensor::TensorDialect, func::FuncDialect>();
  target.addIllegalDialect<MoeDialect>();
  // Weights stay: tools evaluate them (see moe-outline-weights).
  target.markUnknownOpDynamicallyLegal([](Operation *) { return true; });
  target.addDynamicallyLegalDialect<MoeDialect>([](Operation *op) {
    return isa<ScopeOp, WeightExpressionOpInterface>(op);
  });
  RewritePatternSet patterns(context);
  patterns.add<EmbeddingLowering, RmsNormLowering, LayerNormLowering,
               LinearLowering, RouterLowering, LoraLinearLowering,
               AttentionLowering, FfnLowering, ActivationLowering, GluLowering,
               ScaleLowering, TopKGatingLowering, UniformGatingLowering,
               ExpertsLowering, FusedMoeLowering, RoutedLinearLowering,
               MixtureOfLoraLowering>(context, kind);
  if (failed(
          applyPartialConversion(getOperation(), target, std::move(patterns))))
    return signalPassFailure();
}
