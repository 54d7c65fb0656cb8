//===- MoeWeightExpressions.cpp - What weight operations compute ----------===//
//
// The WeightExpressionOpInterface of the moe weight operations and of the
// upstream operations weights are built with: views map element ranges onto
// their operands (or the stored tensor), computations compute whole values.
// The weight evaluator and the weight stream interpret weights through these
// methods only.
//
//===----------------------------------------------------------------------===//

#include "moe/Dialect/MoeOps.h"

#include "moe/Support/Errors.h"
#include "moe/Support/Format.h"
#include "moe/Weights/Random.h"

#include "mlir/Dialect/Arith/IR/Arith.h"
#include "mlir/Dialect/Tensor/IR/Tensor.h"
#include "mlir/IR/BuiltinAttributes.h"
#include "mlir/IR/DialectRegistry.h"
#include "mlir/IR/TypeUtilities.h"

#include <cmath>

using namespace mlir;
using namespace mlir::moe;

#include "moe/MoeInterfaces.cpp.inc"

llvm::Error mlir::moe::notAWeightView(Operation *op) {
  return makeError(formatOp(op) + " is not a weight view");
}

llvm::Error mlir::moe::notAWeightComputation(Operation *op) {
  return makeError(formatOp(op) + " is not a weight computation");
}

bool mlir::moe::isWeight(Value value) {
  auto expression = value.getDefiningOp<WeightExpressionOpInterface>();
  return expression && expression.computesWeight();
}

static uint64_t numElementsOf(Value value) {
  return HostTensor::numElements(
      cast<RankedTensorType>(value.getType()).getShape());
}

//===----------------------------------------------------------------------===//
// Views
//===----------------------------------------------------------------------===//

bool ParamOp::isWeightView() { return true; }

llvm::Error ParamOp::mapElements(
    uint64_t offset, uint64_t count,
    llvm::function_ref<llvm::Error(const WeightPiece &)> visit) {
  // With an index, the param is slice `index` of the stored tensor's
  // leading dimension: a contiguous block of it.
  uint64_t first = 0;
  if (IntegerAttr index = getIndexAttr())
    first = uint64_t(index.getInt()) * numElementsOf(getResult());
  return visit({Value(), first + offset, count});
}

bool StackOp::isWeightView() { return true; }

llvm::Error StackOp::mapElements(
    uint64_t offset, uint64_t count,
    llvm::function_ref<llvm::Error(const WeightPiece &)> visit) {
  uint64_t perInput = numElementsOf(getInputs().front());
  while (count) {
    uint64_t input = offset / perInput, within = offset % perInput;
    uint64_t run = std::min(count, perInput - within);
    MOE_RETURN_IF_ERROR(visit({getInputs()[input], within, run}));
    offset += run;
    count -= run;
  }
  return llvm::Error::success();
}

namespace {
/// tensor.extract_slice of a weight with static offsets, sizes and strides.
struct ExtractSliceWeight : public WeightExpressionOpInterface::ExternalModel<
                                ExtractSliceWeight, tensor::ExtractSliceOp> {
  bool computesWeight(Operation *op) const {
    return isWeight(cast<tensor::ExtractSliceOp>(op).getSource());
  }
  bool isWeightView(Operation *) const { return true; }

  llvm::Error mapElements(
      Operation *op, uint64_t offset, uint64_t count,
      llvm::function_ref<llvm::Error(const WeightPiece &)> visit) const {
    auto slice = cast<tensor::ExtractSliceOp>(op);
    if (!slice.getOffsets().empty() || !slice.getSizes().empty() ||
        !slice.getStrides().empty())
      return makeError(formatOp(op) + " has dynamic offsets or sizes");
    ArrayRef<int64_t> source = slice.getSourceType().getShape();
    ArrayRef<int64_t> offsets = slice.getStaticOffsets();
    ArrayRef<int64_t> sizes = slice.getStaticSizes();
    ArrayRef<int64_t> strides = slice.getStaticStrides();
    int64_t rank = source.size();
    SmallVector<uint64_t> sourceStrides(rank, 1);
    for (int64_t d = rank - 2; d >= 0; --d)
      sourceStrides[d] = sourceStrides[d + 1] * source[d + 1];
    // The innermost dimensions the slice takes whole (plus the first one it
    // takes partly, with stride 1) form contiguous runs of the source.
    uint64_t run = 1;
    int64_t inner = rank;
    for (int64_t d = rank - 1; d >= 0; --d) {
      if (strides[d] != 1)
        break;
      run *= sizes[d];
      inner = d;
      if (offsets[d] != 0 || sizes[d] != source[d])
        break;
    }
    uint64_t innerStart = 0;
    for (int64_t d = inner; d < rank; ++d)
      innerStart += offsets[d] * sourceStrides[d];
    while (count) {
      uint64_t runIndex = offset / run, within = offset % run;
      uint64_t start = innerStart + within;
      for (int64_t d = inner - 1; d >= 0; --d) {
        uint64_t position = runIndex % sizes[d];
        runIndex /= sizes[d];
        start += (offsets[d] + position * strides[d]) * sourceStrides[d];
      }
      uint64_t n = std::min(count, run - within);
      MOE_RETURN_IF_ERROR(visit({slice.getSource(), start, n}));
      offset += n;
      count -= n;
    }
    return llvm::Error::success();
  }
};

/// tensor.collapse_shape and tensor.expand_shape of a weight: the same
/// elements in the same order.
template <typename ReshapeOp>
struct ReshapeWeight : public WeightExpressionOpInterface::ExternalModel<
                           ReshapeWeight<ReshapeOp>, ReshapeOp> {
  bool computesWeight(Operation *op) const {
    return isWeight(op->getOperand(0));
  }
  bool isWeightView(Operation *) const { return true; }
  llvm::Error mapElements(
      Operation *op, uint64_t offset, uint64_t count,
      llvm::function_ref<llvm::Error(const WeightPiece &)> visit) const {
    return visit({op->getOperand(0), offset, count});
  }
};
} // namespace

//===----------------------------------------------------------------------===//
// Computations
//===----------------------------------------------------------------------===//

llvm::Error AverageOp::computeWeight(ArrayRef<const HostTensor *> operands,
                                     HostTensor &result) {
  std::vector<double> sum(result.data.size(), 0.0);
  for (const HostTensor *input : operands)
    for (size_t i = 0; i < sum.size(); ++i)
      sum[i] += input->data[i];
  for (size_t i = 0; i < sum.size(); ++i)
    result.data[i] = float(sum[i] / double(operands.size()));
  return llvm::Error::success();
}

llvm::Error RandomNormalOp::computeWeight(ArrayRef<const HostTensor *>,
                                          HostTensor &result) {
  double mean = getMean().convertToDouble();
  double std = getStd().convertToDouble();
  for (size_t i = 0; i < result.data.size(); ++i)
    result.data[i] = float(mean + std * weights::normalAt(getSeed(), i));
  return llvm::Error::success();
}

llvm::Error RandomUniformOp::computeWeight(ArrayRef<const HostTensor *>,
                                           HostTensor &result) {
  double low = getLow().convertToDouble();
  double high = getHigh().convertToDouble();
  for (size_t i = 0; i < result.data.size(); ++i)
    result.data[i] =
        float(low + (high - low) * weights::uniformAt(getSeed(), i));
  return llvm::Error::success();
}

/// Scales every row of `rowLength` values to unit L2 norm; zero rows stay.
static void normalizeRows(MutableArrayRef<float> data, int64_t rowLength) {
  for (size_t row = 0; row + rowLength <= data.size(); row += rowLength) {
    double sum = 0;
    for (int64_t i = 0; i < rowLength; ++i)
      sum += double(data[row + i]) * data[row + i];
    if (sum == 0)
      continue;
    double inverse = 1.0 / std::sqrt(sum);
    for (int64_t i = 0; i < rowLength; ++i)
      data[row + i] = float(data[row + i] * inverse);
  }
}

llvm::Error
NormalizeRowsOp::computeWeight(ArrayRef<const HostTensor *> operands,
                               HostTensor &result) {
  result.data = operands.front()->data;
  normalizeRows(result.data, result.shape.back());
  return llvm::Error::success();
}

llvm::Error
EmbeddingPrototypesOp::computeWeight(ArrayRef<const HostTensor *> operands,
                                     HostTensor &result) {
  const HostTensor &table = *operands.front();
  int64_t vocabulary = table.shape[0], hidden = table.shape[1];
  std::vector<float> embedding(hidden);
  for (auto [expert, attr] : llvm::enumerate(getTokenIds())) {
    std::vector<double> row(hidden, 0.0);
    for (int64_t id : cast<DenseI64ArrayAttr>(attr).asArrayRef()) {
      if (id < 0 || id >= vocabulary)
        return makeError(formatOp(*this) + ": token id " + Twine(id) +
                         " of expert " + Twine(expert) +
                         " is outside the vocabulary of " + Twine(vocabulary) +
                         " tokens");
      embedding.assign(table.data.begin() + id * hidden,
                       table.data.begin() + (id + 1) * hidden);
      normalizeRows(embedding, hidden);
      for (int64_t i = 0; i < hidden; ++i)
        row[i] += embedding[i];
    }
    for (int64_t i = 0; i < hidden; ++i)
      result.data[expert * hidden + i] = float(row[i]);
  }
  normalizeRows(result.data, hidden);
  return llvm::Error::success();
}

namespace {
/// arith.constant of dense floats.
struct ConstantWeight
    : public WeightExpressionOpInterface::ExternalModel<ConstantWeight,
                                                        arith::ConstantOp> {
  bool computesWeight(Operation *op) const {
    auto constant = cast<arith::ConstantOp>(op);
    return isa<DenseElementsAttr>(constant.getValue()) &&
           isa<FloatType>(getElementTypeOrSelf(constant.getType()));
  }
  llvm::Error computeWeight(Operation *op, ArrayRef<const HostTensor *>,
                            HostTensor &result) const {
    auto dense =
        cast<DenseElementsAttr>(cast<arith::ConstantOp>(op).getValue());
    if (dense.isSplat()) {
      std::fill(result.data.begin(), result.data.end(),
                float(dense.getSplatValue<APFloat>().convertToDouble()));
      return llvm::Error::success();
    }
    size_t i = 0;
    for (const APFloat &value : dense.getValues<APFloat>())
      result.data[i++] = float(value.convertToDouble());
    return llvm::Error::success();
  }
};
} // namespace

void mlir::moe::registerWeightExpressionExternalModels(
    DialectRegistry &registry) {
  registry.addExtension(+[](MLIRContext *context, arith::ArithDialect *) {
    arith::ConstantOp::attachInterface<ConstantWeight>(*context);
  });
  registry.addExtension(+[](MLIRContext *context, tensor::TensorDialect *) {
    tensor::ExtractSliceOp::attachInterface<ExtractSliceWeight>(*context);
    tensor::CollapseShapeOp::attachInterface<
        ReshapeWeight<tensor::CollapseShapeOp>>(*context);
    tensor::ExpandShapeOp::attachInterface<
        ReshapeWeight<tensor::ExpandShapeOp>>(*context);
  });
}
