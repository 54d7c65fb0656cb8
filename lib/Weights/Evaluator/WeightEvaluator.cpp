//===- WeightEvaluator.cpp - Values of weight expressions -----------------===//

#include "moe/Weights/WeightEvaluator.h"
#include "moe/Support/Format.h"

#include "moe/Dialect/MoeOps.h"
#include "moe/Support/Errors.h"
#include "moe/Weights/Random.h"

#include "mlir/Dialect/Arith/IR/Arith.h"
#include "mlir/Dialect/Tensor/IR/Tensor.h"
#include "mlir/IR/BuiltinAttributes.h"
#include "llvm/ADT/TypeSwitch.h"
#include "llvm/Support/raw_ostream.h"

#include <cmath>

using namespace mlir;
using namespace mlir::moe;

int64_t HostTensor::numElements() const {
  int64_t count = 1;
  for (int64_t dim : shape)
    count *= dim;
  return count;
}

llvm::Expected<weights::Checkpoint *>
WeightEvaluator::checkpoint(StringRef name) {
  auto it = checkpoints.find(name);
  if (it != checkpoints.end())
    return it->second.get();
  auto scope = module.lookupSymbol<ScopeOp>(name);
  if (!scope)
    return makeError("no moe.scope named '" + name + "'");
  StringRef stem =
      scope.getFormat() == ScopeFormat::peft ? "adapter_model" : "model";
  llvm::Expected<std::unique_ptr<weights::Checkpoint>> opened =
      weights::Checkpoint::open(scope.getPath(), stem);
  if (!opened)
    return makeError("scope '" + name +
                     "': " + llvm::toString(opened.takeError()));
  weights::Checkpoint *result = opened->get();
  checkpoints[name] = std::move(*opened);
  return result;
}

llvm::Expected<std::shared_ptr<const HostTensor>>
WeightEvaluator::evaluate(Value value) {
  if (auto cached = values.lookup(value))
    return cached;
  Operation *op = value.getDefiningOp();
  if (!isWeight(value))
    return makeError("the value of " +
                     (op ? formatOp(op) : std::string("a block argument")) +
                     " is not a weight expression");
  llvm::Expected<HostTensor> computed = compute(op);
  if (!computed)
    return computed.takeError();
  auto type = cast<RankedTensorType>(value.getType());
  if (ArrayRef<int64_t>(computed->shape) != type.getShape())
    return makeError(formatOp(op) + " computed a tensor of shape " +
                     formatShape(computed->shape) + " for a result of type " +
                     formatShape(type.getShape()));
  auto result = std::make_shared<const HostTensor>(std::move(*computed));
  values[value] = result;
  return result;
}

llvm::Expected<StoredParam> WeightEvaluator::locate(ParamOp param) {
  weights::Checkpoint *ckpt;
  MOE_ASSIGN_OR_RETURN(ckpt, checkpoint(param.getScope()));
  StringRef key = param.getKey();
  const weights::TensorInfo *info = ckpt->find(key);
  if (!info)
    return makeError("scope '" + param.getScope() + "' (" + ckpt->path() +
                     "): no tensor '" + key + "'");
  StringRef file = ckpt->fileOf(key)->path();
  if (!weights::isReadableFloat(info->dtype))
    return makeError(file + ": tensor '" + key + "' has dtype " +
                     weights::dtypeName(info->dtype) +
                     "; weights must be F32, F16, BF16 or F64");
  ArrayRef<int64_t> expected = param.getType().getShape();
  ArrayRef<int64_t> stored = info->shape;
  uint64_t elements = param.getType().getNumElements(), index = 0;
  if (IntegerAttr indexAttr = param.getIndexAttr()) {
    if (stored.empty() || indexAttr.getInt() < 0 ||
        indexAttr.getInt() >= stored.front())
      return makeError(file + ": tensor '" + key + "' of shape " +
                       formatShape(stored) + " has no slice " +
                       Twine(indexAttr.getInt()));
    index = uint64_t(indexAttr.getInt());
    stored = stored.drop_front();
  }
  if (stored != expected)
    return makeError(file + ": tensor '" + key + "' has shape " +
                     formatShape(stored) + " but the IR expects " +
                     formatShape(expected));
  return StoredParam{ckpt, info, file, index * elements, elements};
}

/// Reads a moe.param (its slice, when it has an index) as floats.
static llvm::Expected<HostTensor> readParam(ParamOp op,
                                            const StoredParam &stored) {
  ArrayRef<uint8_t> bytes;
  MOE_ASSIGN_OR_RETURN(bytes, stored.checkpoint->bytes(op.getKey()));
  HostTensor tensor;
  ArrayRef<int64_t> shape = op.getType().getShape();
  tensor.shape.assign(shape.begin(), shape.end());
  tensor.data.resize(stored.elements);
  weights::convertToF32(stored.info->dtype,
                        bytes.data() +
                            stored.elementOffset *
                                weights::dtypeSize(stored.info->dtype),
                        tensor.data.data(), stored.elements);
  return tensor;
}

/// A static slice (offsets, sizes, strides) of a row-major tensor, with the
/// result shape of the op (rank-reducing slices drop unit dimensions).
static HostTensor slice(const HostTensor &source, ArrayRef<int64_t> offsets,
                        ArrayRef<int64_t> sizes, ArrayRef<int64_t> strides,
                        ArrayRef<int64_t> resultShape) {
  int64_t rank = source.shape.size();
  SmallVector<int64_t> sourceStrides(rank, 1);
  for (int64_t d = rank - 2; d >= 0; --d)
    sourceStrides[d] = sourceStrides[d + 1] * source.shape[d + 1];
  HostTensor result;
  result.shape.assign(resultShape.begin(), resultShape.end());
  int64_t count = 1;
  for (int64_t size : sizes)
    count *= size;
  result.data.resize(count);
  SmallVector<int64_t> position(rank, 0);
  for (int64_t i = 0; i < count; ++i) {
    int64_t linear = 0;
    for (int64_t d = 0; d < rank; ++d)
      linear += (offsets[d] + position[d] * strides[d]) * sourceStrides[d];
    result.data[i] = source.data[linear];
    for (int64_t d = rank - 1; d >= 0; --d) {
      if (++position[d] < sizes[d])
        break;
      position[d] = 0;
    }
  }
  return result;
}

static void normalizeRows(std::vector<float> &data, int64_t rowLength) {
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

llvm::Expected<HostTensor> WeightEvaluator::compute(Operation *op) {
  auto resultType = cast<RankedTensorType>(op->getResult(0).getType());
  HostTensor result;
  result.shape.assign(resultType.getShape().begin(),
                      resultType.getShape().end());
  auto operand = [&](unsigned i) { return evaluate(op->getOperand(i)); };

  if (auto param = dyn_cast<ParamOp>(op)) {
    StoredParam stored;
    MOE_ASSIGN_OR_RETURN(stored, locate(param));
    return readParam(param, stored);
  }
  if (isa<StackOp, AverageOp>(op)) {
    std::vector<std::shared_ptr<const HostTensor>> inputs;
    for (unsigned i = 0; i < op->getNumOperands(); ++i) {
      auto input = operand(i);
      if (!input)
        return input.takeError();
      inputs.push_back(*input);
    }
    if (isa<StackOp>(op)) {
      for (const auto &input : inputs)
        llvm::append_range(result.data, input->data);
      return result;
    }
    std::vector<double> sum(inputs.front()->data.size(), 0.0);
    for (const auto &input : inputs)
      for (size_t i = 0; i < sum.size(); ++i)
        sum[i] += input->data[i];
    result.data.resize(sum.size());
    for (size_t i = 0; i < sum.size(); ++i)
      result.data[i] = float(sum[i] / double(inputs.size()));
    return result;
  }
  int64_t count = result.numElements();
  if (auto normal = dyn_cast<RandomNormalOp>(op)) {
    result.data.resize(count);
    double mean = normal.getMean().convertToDouble();
    double std = normal.getStd().convertToDouble();
    for (int64_t i = 0; i < count; ++i)
      result.data[i] =
          float(mean + std * weights::normalAt(normal.getSeed(), i));
    return result;
  }
  if (auto uniform = dyn_cast<RandomUniformOp>(op)) {
    result.data.resize(count);
    double low = uniform.getLow().convertToDouble();
    double high = uniform.getHigh().convertToDouble();
    for (int64_t i = 0; i < count; ++i)
      result.data[i] =
          float(low + (high - low) * weights::uniformAt(uniform.getSeed(), i));
    return result;
  }
  if (isa<NormalizeRowsOp>(op)) {
    auto input = operand(0);
    if (!input)
      return input.takeError();
    result.data = (*input)->data;
    normalizeRows(result.data, result.shape.back());
    return result;
  }
  if (auto prototypes = dyn_cast<EmbeddingPrototypesOp>(op)) {
    auto table = operand(0);
    if (!table)
      return table.takeError();
    int64_t hidden = (*table)->shape[1];
    for (Attribute attr : prototypes.getTokenIds()) {
      std::vector<double> row(hidden, 0.0);
      for (int64_t id : cast<DenseI64ArrayAttr>(attr).asArrayRef()) {
        std::vector<float> embedding((*table)->data.begin() + id * hidden,
                                     (*table)->data.begin() +
                                         (id + 1) * hidden);
        normalizeRows(embedding, hidden);
        for (int64_t i = 0; i < hidden; ++i)
          row[i] += embedding[i];
      }
      for (double value : row)
        result.data.push_back(float(value));
    }
    normalizeRows(result.data, hidden);
    return result;
  }
  if (auto constant = dyn_cast<arith::ConstantOp>(op)) {
    auto dense = cast<DenseElementsAttr>(constant.getValue());
    for (const APFloat &value : dense.getValues<APFloat>())
      result.data.push_back(float(value.convertToDouble()));
    if (dense.isSplat())
      result.data.assign(count, result.data.front());
    return result;
  }
  if (auto extract = dyn_cast<tensor::ExtractSliceOp>(op)) {
    if (!extract.getOffsets().empty() || !extract.getSizes().empty() ||
        !extract.getStrides().empty())
      return makeError(formatOp(op) + " has dynamic offsets or sizes");
    auto input = operand(0);
    if (!input)
      return input.takeError();
    return slice(**input, extract.getStaticOffsets(), extract.getStaticSizes(),
                 extract.getStaticStrides(), result.shape);
  }
  if (isa<tensor::CollapseShapeOp, tensor::ExpandShapeOp>(op)) {
    auto input = operand(0);
    if (!input)
      return input.takeError();
    result.data = (*input)->data;
    return result;
  }
  return makeError(formatOp(op) + " cannot be evaluated as a weight");
}
