//===- TensorBuilder.cpp - Building linalg-on-tensors code ----------------===//

#include "moe/Conversion/TensorBuilder.h"

#include "mlir/Dialect/Arith/IR/Arith.h"
#include "mlir/Dialect/Math/IR/Math.h"
#include "mlir/Dialect/Tensor/IR/Tensor.h"
#include "mlir/Dialect/Utils/StaticValueUtils.h"
#include "moe/Weights/Random.h"

#include <cmath>

using namespace mlir;
using namespace mlir::moe;
using utils::IteratorType;

Value TensorBuilder::index(int64_t value) {
  return arith::ConstantIndexOp::create(b, loc, value);
}

Value TensorBuilder::floatConstant(Type type, double value) {
  return arith::ConstantOp::create(b, loc, b.getFloatAttr(type, value));
}

Value TensorBuilder::integerConstant(Type type, int64_t value) {
  return arith::ConstantOp::create(b, loc, b.getIntegerAttr(type, value));
}

Value TensorBuilder::dim(Value tensor, int64_t dim) {
  return tensor::DimOp::create(b, loc, tensor, dim);
}

SmallVector<OpFoldResult> TensorBuilder::sizes(Value tensor) {
  auto type = cast<RankedTensorType>(tensor.getType());
  SmallVector<OpFoldResult> result;
  for (auto [i, size] : llvm::enumerate(type.getShape()))
    result.push_back(ShapedType::isDynamic(size)
                         ? OpFoldResult(dim(tensor, i))
                         : OpFoldResult(b.getIndexAttr(size)));
  return result;
}

Value TensorBuilder::empty(ArrayRef<OpFoldResult> sizes, Type elementType) {
  return tensor::EmptyOp::create(b, loc, sizes, elementType);
}

Value TensorBuilder::filled(ArrayRef<OpFoldResult> sizes, Value value) {
  Value init = empty(sizes, value.getType());
  return linalg::FillOp::create(b, loc, ValueRange{value}, ValueRange{init})
      .getResult(0);
}

Value TensorBuilder::collapseTokens(Value tensor) {
  auto type = cast<RankedTensorType>(tensor.getType());
  if (type.getRank() == 2)
    return tensor;
  if (type.getRank() == 1)
    return tensor::ExpandShapeOp::create(
        b, loc,
        RankedTensorType::get({1, type.getShape()[0]}, type.getElementType()),
        tensor, ArrayRef<ReassociationIndices>{{0, 1}});
  ReassociationIndices leading;
  for (int64_t i = 0; i + 1 < type.getRank(); ++i)
    leading.push_back(i);
  return tensor::CollapseShapeOp::create(
      b, loc, tensor,
      ArrayRef<ReassociationIndices>{leading, {type.getRank() - 1}});
}

Value TensorBuilder::expandTokens(Value tensor, Value like) {
  auto likeType = cast<RankedTensorType>(like.getType());
  auto type = cast<RankedTensorType>(tensor.getType());
  if (likeType.getRank() == 2)
    return tensor;
  int64_t features = type.getShape().back();
  SmallVector<int64_t> shape(likeType.getShape());
  shape.back() = features;
  auto resultType = RankedTensorType::get(shape, type.getElementType());
  if (likeType.getRank() == 1)
    return tensor::CollapseShapeOp::create(
        b, loc, resultType, tensor, ArrayRef<ReassociationIndices>{{0, 1}});
  SmallVector<OpFoldResult> outputShape = sizes(like);
  outputShape.back() = b.getIndexAttr(features);
  // expand-strided-metadata (MLIR 22) crashes on memref.expand_shape with
  // two dynamic sizes in one group (batch and sequence); a reshape by a
  // shape tensor lowers without it.
  if (llvm::count_if(shape, ShapedType::isDynamic) > 1) {
    SmallVector<Value> extents;
    for (OpFoldResult size : outputShape)
      extents.push_back(isa<Value>(size)
                            ? cast<Value>(size)
                            : index(getConstantIntValue(size).value()));
    Value shapeTensor = tensor::FromElementsOp::create(b, loc, extents);
    return tensor::ReshapeOp::create(b, loc, resultType, tensor, shapeTensor);
  }
  ReassociationIndices leading;
  for (int64_t i = 0; i + 1 < likeType.getRank(); ++i)
    leading.push_back(i);
  return tensor::ExpandShapeOp::create(
      b, loc, resultType, tensor,
      ArrayRef<ReassociationIndices>{leading, {likeType.getRank() - 1}},
      outputShape);
}

Value TensorBuilder::generic(
    ValueRange inputs, Value init, ArrayRef<AffineMap> maps,
    ArrayRef<IteratorType> iterators,
    function_ref<Value(OpBuilder &, Location, ValueRange)> body) {
  auto op = linalg::GenericOp::create(
      b, loc, TypeRange{init.getType()}, inputs, ValueRange{init}, maps,
      iterators, [&](OpBuilder &nested, Location nestedLoc, ValueRange args) {
        linalg::YieldOp::create(nested, nestedLoc,
                                body(nested, nestedLoc, args));
      });
  return op.getResult(0);
}

Value TensorBuilder::map(
    ValueRange inputs,
    function_ref<Value(OpBuilder &, Location, ValueRange)> fn,
    Type resultElementType) {
  Value first = inputs.front();
  auto type = cast<RankedTensorType>(first.getType());
  Type element = resultElementType ? resultElementType : type.getElementType();
  Value init = empty(sizes(first), element);
  AffineMap identity =
      AffineMap::getMultiDimIdentityMap(type.getRank(), b.getContext());
  SmallVector<AffineMap> maps(inputs.size() + 1, identity);
  SmallVector<IteratorType> iterators(type.getRank(), IteratorType::parallel);
  return generic(inputs, init, maps, iterators,
                 [&](OpBuilder &nested, Location nestedLoc, ValueRange args) {
                   return fn(nested, nestedLoc, args.drop_back());
                 });
}

Value TensorBuilder::matmulTransposedB(Value input, Value weight) {
  MLIRContext *context = b.getContext();
  auto inputType = cast<RankedTensorType>(input.getType());
  auto weightType = cast<RankedTensorType>(weight.getType());
  Type element = inputType.getElementType();
  SmallVector<OpFoldResult> outSizes{sizes(input)[0], sizes(weight)[0]};
  Value init = zeros(outSizes, element);
  AffineExpr t = b.getAffineDimExpr(0), n = b.getAffineDimExpr(1),
             k = b.getAffineDimExpr(2);
  (void)weightType;
  SmallVector<AffineMap> maps{AffineMap::get(3, 0, {t, k}, context),
                              AffineMap::get(3, 0, {n, k}, context),
                              AffineMap::get(3, 0, {t, n}, context)};
  return generic(
      {input, weight}, init, maps,
      {IteratorType::parallel, IteratorType::parallel, IteratorType::reduction},
      [](OpBuilder &nb, Location l, ValueRange args) -> Value {
        Value product = arith::MulFOp::create(nb, l, args[0], args[1]);
        return arith::AddFOp::create(nb, l, args[2], product);
      });
}

Value TensorBuilder::addBias(Value input, Value bias) {
  MLIRContext *context = b.getContext();
  AffineMap identity = AffineMap::getMultiDimIdentityMap(2, context);
  AffineMap column = AffineMap::get(2, 0, {b.getAffineDimExpr(1)}, context);
  Value init = empty(sizes(input),
                     cast<RankedTensorType>(input.getType()).getElementType());
  return generic({input, bias}, init, {identity, column, identity},
                 {IteratorType::parallel, IteratorType::parallel},
                 [](OpBuilder &nb, Location l, ValueRange args) -> Value {
                   return arith::AddFOp::create(nb, l, args[0], args[1]);
                 });
}

Value TensorBuilder::linear(Value input, Value weight, Value bias) {
  Value flat = collapseTokens(input);
  Value result = matmulTransposedB(flat, weight);
  if (bias)
    result = addBias(result, bias);
  return expandTokens(result, input);
}

Value TensorBuilder::reduceLastDim(Value input, bool maximum) {
  MLIRContext *context = b.getContext();
  auto type = cast<RankedTensorType>(input.getType());
  Type element = type.getElementType();
  Value start =
      maximum ? floatConstant(element, -INFINITY) : floatConstant(element, 0.0);
  Value init = filled({sizes(input)[0]}, start);
  AffineMap identity = AffineMap::getMultiDimIdentityMap(2, context);
  AffineMap row = AffineMap::get(2, 0, {b.getAffineDimExpr(0)}, context);
  return generic(
      {input}, init, {identity, row},
      {IteratorType::parallel, IteratorType::reduction},
      [maximum](OpBuilder &nb, Location l, ValueRange args) -> Value {
        if (maximum)
          return arith::MaximumFOp::create(nb, l, args[0], args[1]);
        return arith::AddFOp::create(nb, l, args[0], args[1]);
      });
}

Value TensorBuilder::mapWithRow(
    Value input, Value row,
    function_ref<Value(OpBuilder &, Location, Value, Value)> fn) {
  MLIRContext *context = b.getContext();
  AffineMap identity = AffineMap::getMultiDimIdentityMap(2, context);
  AffineMap rowMap = AffineMap::get(2, 0, {b.getAffineDimExpr(0)}, context);
  Value init = empty(sizes(input),
                     cast<RankedTensorType>(input.getType()).getElementType());
  return generic({input, row}, init, {identity, rowMap, identity},
                 {IteratorType::parallel, IteratorType::parallel},
                 [&](OpBuilder &nb, Location l, ValueRange args) {
                   return fn(nb, l, args[0], args[1]);
                 });
}

Value TensorBuilder::activationScalar(OpBuilder &nb, Location l, Value x,
                                      Activation kind) {
  Type type = x.getType();
  auto constant = [&](double value) -> Value {
    return arith::ConstantOp::create(nb, l, nb.getFloatAttr(type, value));
  };
  switch (kind) {
  case Activation::silu: {
    // x * sigmoid(x) = x / (1 + exp(-x)).
    Value negated = arith::NegFOp::create(nb, l, x);
    Value denominator = arith::AddFOp::create(
        nb, l, constant(1.0), math::ExpOp::create(nb, l, negated));
    return arith::DivFOp::create(nb, l, x, denominator);
  }
  case Activation::gelu: {
    Value scaled = arith::MulFOp::create(nb, l, x, constant(M_SQRT1_2));
    Value erf = math::ErfOp::create(nb, l, scaled);
    Value half = arith::MulFOp::create(nb, l, x, constant(0.5));
    return arith::MulFOp::create(
        nb, l, half, arith::AddFOp::create(nb, l, constant(1.0), erf));
  }
  case Activation::gelu_tanh: {
    // 0.5 x (1 + tanh(sqrt(2 / pi) (x + 0.044715 x^3))).
    Value cube =
        arith::MulFOp::create(nb, l, x, arith::MulFOp::create(nb, l, x, x));
    Value inner = arith::AddFOp::create(
        nb, l, x, arith::MulFOp::create(nb, l, cube, constant(0.044715)));
    Value tanh = math::TanhOp::create(
        nb, l,
        arith::MulFOp::create(nb, l, inner, constant(std::sqrt(2.0 / M_PI))));
    Value half = arith::MulFOp::create(nb, l, x, constant(0.5));
    return arith::MulFOp::create(
        nb, l, half, arith::AddFOp::create(nb, l, constant(1.0), tanh));
  }
  case Activation::relu:
    return arith::MaximumFOp::create(nb, l, x, constant(0.0));
  case Activation::identity:
    return x;
  }
  llvm_unreachable("unknown activation");
}

Value TensorBuilder::activation(Value input, Activation kind) {
  if (kind == Activation::identity)
    return input;
  return map({input}, [kind](OpBuilder &nb, Location l, ValueRange args) {
    return activationScalar(nb, l, args[0], kind);
  });
}

Value TensorBuilder::glu(Value gate, Value up, Activation kind) {
  return map({gate, up}, [kind](OpBuilder &nb, Location l, ValueRange args) {
    Value activated = activationScalar(nb, l, args[0], kind);
    return arith::MulFOp::create(nb, l, activated, args[1]).getResult();
  });
}

Value TensorBuilder::ffn(Value input, Value gate, Value up, Value down,
                         Value gateBias, Value upBias, Value downBias,
                         Activation kind) {
  Value upOut = linear(input, up, upBias);
  Value middle = gate ? glu(linear(input, gate, gateBias), upOut, kind)
                      : activation(upOut, kind);
  return linear(middle, down, downBias);
}

Value TensorBuilder::gatherRows(Value table, Value rows) {
  MLIRContext *context = b.getContext();
  auto tableType = cast<RankedTensorType>(table.getType());
  SmallVector<OpFoldResult> outSizes{sizes(rows)[0], sizes(table)[1]};
  Value init = empty(outSizes, tableType.getElementType());
  AffineMap identity = AffineMap::getMultiDimIdentityMap(2, context);
  AffineMap row = AffineMap::get(2, 0, {b.getAffineDimExpr(0)}, context);
  return generic({rows}, init, {row, identity},
                 {IteratorType::parallel, IteratorType::parallel},
                 [table](OpBuilder &nb, Location l, ValueRange args) -> Value {
                   Value rowIndex = args[0];
                   if (!rowIndex.getType().isIndex())
                     rowIndex = arith::IndexCastOp::create(
                         nb, l, nb.getIndexType(), rowIndex);
                   Value column = linalg::IndexOp::create(nb, l, 1);
                   return tensor::ExtractOp::create(
                       nb, l, table, ValueRange{rowIndex, column});
                 });
}

Value TensorBuilder::sliceLeading(Value tensor, Value indexValue) {
  auto type = cast<RankedTensorType>(tensor.getType());
  int64_t rank = type.getRank();
  SmallVector<OpFoldResult> offsets(rank, b.getIndexAttr(0));
  offsets[0] = indexValue;
  SmallVector<OpFoldResult> sliceSizes = sizes(tensor);
  sliceSizes[0] = b.getIndexAttr(1);
  SmallVector<OpFoldResult> strides(rank, b.getIndexAttr(1));
  auto resultType = RankedTensorType::get(type.getShape().drop_front(),
                                          type.getElementType());
  return tensor::ExtractSliceOp::create(b, loc, resultType, tensor, offsets,
                                        sliceSizes, strides);
}

/// The counter-based generator of moe/Weights/Random.h in IR: a standard
/// normal sample for `index` (i64) of stream `seed`, as f64.
Value mlir::moe::buildNormalSample(OpBuilder &b, Location loc, uint64_t seed,
                                   Value index) {
  Type i64 = b.getI64Type(), f64 = b.getF64Type();
  auto constant = [&](uint64_t v) -> Value {
    return arith::ConstantOp::create(b, loc, b.getIntegerAttr(i64, v));
  };
  auto mix = [&](Value x) -> Value {
    x = arith::AddIOp::create(b, loc, x, constant(0x9E3779B97F4A7C15ull));
    for (auto [shift, multiplier] :
         {std::pair<uint64_t, uint64_t>{30, 0xBF58476D1CE4E5B9ull},
          {27, 0x94D049BB133111EBull}}) {
      Value shifted = arith::ShRUIOp::create(b, loc, x, constant(shift));
      x = arith::MulIOp::create(b, loc,
                                arith::XOrIOp::create(b, loc, x, shifted),
                                constant(multiplier));
    }
    return arith::XOrIOp::create(
        b, loc, x, arith::ShRUIOp::create(b, loc, x, constant(31)));
  };
  Value streamKey = constant(weights::splitMix64(seed));
  auto uniform = [&](Value counter) -> Value {
    Value bits = mix(arith::AddIOp::create(b, loc, streamKey, counter));
    Value top = arith::ShRUIOp::create(b, loc, bits, constant(11));
    Value asFloat = arith::UIToFPOp::create(b, loc, f64, top);
    return arith::MulFOp::create(
        b, loc, asFloat,
        arith::ConstantOp::create(b, loc, b.getF64FloatAttr(0x1.0p-53)));
  };
  Value twice = arith::MulIOp::create(b, loc, index, constant(2));
  Value u1 = uniform(twice);
  Value u2 = uniform(arith::AddIOp::create(b, loc, twice, constant(1)));
  auto f64Constant = [&](double v) -> Value {
    return arith::ConstantOp::create(b, loc, b.getF64FloatAttr(v));
  };
  Value radius = math::SqrtOp::create(
      b, loc,
      arith::MulFOp::create(
          b, loc, f64Constant(-2.0),
          math::LogOp::create(
              b, loc, arith::SubFOp::create(b, loc, f64Constant(1.0), u1))));
  Value angle =
      arith::MulFOp::create(b, loc, u2, f64Constant(6.283185307179586476925));
  return arith::MulFOp::create(b, loc, radius,
                               math::CosOp::create(b, loc, angle));
}
