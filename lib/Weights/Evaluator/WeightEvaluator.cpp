//===- WeightEvaluator.cpp - Values of weight expressions -----------------===//

#include "moe/Weights/WeightEvaluator.h"

#include "moe/Dialect/MoeOps.h"
#include "moe/Support/Errors.h"
#include "moe/Support/Format.h"

#include <cmath>
#include <cstring>

using namespace mlir;
using namespace mlir::moe;

llvm::Expected<weights::Checkpoint *>
WeightEvaluator::checkpoint(StringRef name) {
  auto it = checkpoints.find(name);
  if (it != checkpoints.end())
    return it->second.get();
  if (!scopeBindingsChecked) {
    MOE_RETURN_IF_ERROR(checkScopeBindings(module, options));
    scopeBindingsChecked = true;
  }
  auto scope = module.lookupSymbol<ScopeOp>(name);
  if (!scope)
    return makeError("no moe.scope named '" + name + "'");
  StringRef stem =
      scope.getFormat() == ScopeFormat::peft ? "adapter_model" : "model";
  std::string path = scopePath(scope, options);
  llvm::Expected<std::unique_ptr<weights::Checkpoint>> opened =
      weights::Checkpoint::open(path, stem);
  if (!opened)
    return explainScopeError(scope, path,
                             makeError("scope '" + name + "': " +
                                       llvm::toString(opened.takeError())));
  weights::Checkpoint *result = opened->get();
  checkpoints[name] = std::move(*opened);
  return result;
}

/// Refuses a stored param with a NaN or an infinity, naming the file, the
/// tensor and the element.
static llvm::Error checkFinite(const StoredParam &stored, StringRef key) {
  std::optional<uint64_t> found;
  MOE_ASSIGN_OR_RETURN(found, stored.checkpoint->findNonFinite(
                                  key, stored.elementOffset, stored.elements));
  if (!found)
    return llvm::Error::success();
  float value;
  MOE_RETURN_IF_ERROR(stored.checkpoint->readF32(key, *found, {&value, 1}));
  return makeError(stored.file + ": tensor '" + key + "' holds " +
                   (std::isnan(value) ? "NaN"
                    : value > 0       ? "+infinity"
                                      : "-infinity") +
                   " at element " + Twine(*found) +
                   " (--allow-non-finite-weights reads it as it is)");
}

llvm::Expected<StoredParam> WeightEvaluator::locate(ParamOp param) {
  if (auto it = located.find(param); it != located.end())
    return it->second;
  weights::Checkpoint *ckpt;
  MOE_ASSIGN_OR_RETURN(ckpt, checkpoint(param.getScope()));
  StringRef key = param.getKey();
  const weights::TensorInfo *info = ckpt->find(key);
  if (!info)
    return makeError("scope '" + param.getScope() + "' (" + ckpt->path() +
                     "): no tensor '" + key + "'");
  StringRef file = ckpt->filePathOf(key);
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
  StoredParam result{ckpt, info, file, index * elements, elements};
  if (!options.allowNonFinite)
    MOE_RETURN_IF_ERROR(checkFinite(result, key));
  located[param] = result;
  return result;
}

/// The weight expression that defines `value`, or an error naming what
/// defines it instead.
static llvm::Expected<WeightExpressionOpInterface> expressionOf(Value value) {
  auto expression = value.getDefiningOp<WeightExpressionOpInterface>();
  if (expression && expression.computesWeight())
    return expression;
  Operation *op = value.getDefiningOp();
  return makeError("the value of " +
                   (op ? formatOp(op) : std::string("a block argument")) +
                   " is not a weight expression");
}

static uint64_t numElementsOf(Value value) {
  return HostTensor::numElements(
      cast<RankedTensorType>(value.getType()).getShape());
}

llvm::Expected<std::shared_ptr<const HostTensor>>
WeightEvaluator::evaluate(Value value) {
  if (auto cached = values.lookup(value))
    return cached;
  WeightExpressionOpInterface expression;
  MOE_ASSIGN_OR_RETURN(expression, expressionOf(value));
  llvm::Expected<HostTensor> computed = compute(expression);
  if (!computed)
    return computed.takeError();
  auto result = std::make_shared<const HostTensor>(std::move(*computed));
  values[value] = result;
  return result;
}

llvm::Expected<HostTensor> WeightEvaluator::compute(Operation *op) {
  auto expression = cast<WeightExpressionOpInterface>(op);
  Value value = op->getResult(0);
  HostTensor result(cast<RankedTensorType>(value.getType()).getShape());
  if (expression.isWeightView()) {
    MOE_RETURN_IF_ERROR(read(value, 0, result.data.size(), result.data.data()));
    return result;
  }
  std::vector<std::shared_ptr<const HostTensor>> operands;
  SmallVector<const HostTensor *> inputs;
  for (Value operand : op->getOperands()) {
    std::shared_ptr<const HostTensor> input;
    MOE_ASSIGN_OR_RETURN(input, evaluate(operand));
    inputs.push_back(input.get());
    operands.push_back(std::move(input));
  }
  MOE_RETURN_IF_ERROR(expression.computeWeight(inputs, result));
  return result;
}

llvm::Error WeightEvaluator::readStored(Operation *op, uint64_t offset,
                                        uint64_t count, float *dest) {
  auto param = dyn_cast<ParamOp>(op);
  if (!param)
    return makeError(formatOp(op) +
                     " maps elements onto a stored tensor but is not a "
                     "moe.param");
  StoredParam stored;
  MOE_ASSIGN_OR_RETURN(stored, locate(param));
  return stored.checkpoint->readF32(param.getKey(), offset,
                                    {dest, size_t(count)});
}

llvm::Error WeightEvaluator::read(Value value, uint64_t offset, uint64_t count,
                                  float *dest) {
  WeightExpressionOpInterface expression;
  MOE_ASSIGN_OR_RETURN(expression, expressionOf(value));
  uint64_t elements = numElementsOf(value);
  if (offset > elements || count > elements - offset)
    return makeError(formatOp(expression) + ": cannot read elements [" +
                     Twine(offset) + ", " + Twine(offset + count) +
                     ") of a weight of " + Twine(elements));
  if (!expression.isWeightView()) {
    std::shared_ptr<const HostTensor> whole;
    MOE_ASSIGN_OR_RETURN(whole, evaluate(value));
    std::memcpy(dest, whole->data.data() + offset, count * sizeof(float));
    return llvm::Error::success();
  }
  return expression.mapElements(
      offset, count, [&](const WeightPiece &piece) -> llvm::Error {
        MOE_RETURN_IF_ERROR(
            piece.operand
                ? read(piece.operand, piece.offset, piece.count, dest)
                : readStored(expression, piece.offset, piece.count, dest));
        dest += piece.count;
        return llvm::Error::success();
      });
}

llvm::Expected<std::optional<StoredRange>>
WeightEvaluator::storedRange(Value value, uint64_t offset, uint64_t count) {
  WeightExpressionOpInterface expression;
  MOE_ASSIGN_OR_RETURN(expression, expressionOf(value));
  if (!expression.isWeightView())
    return std::nullopt;
  SmallVector<WeightPiece, 2> pieces;
  MOE_RETURN_IF_ERROR(expression.mapElements(
      offset, count, [&](const WeightPiece &piece) -> llvm::Error {
        pieces.push_back(piece);
        return llvm::Error::success();
      }));
  if (pieces.size() != 1)
    return std::nullopt;
  const WeightPiece &piece = pieces.front();
  if (piece.operand)
    return storedRange(piece.operand, piece.offset, piece.count);
  auto param = dyn_cast<ParamOp>(expression.getOperation());
  if (!param)
    return std::nullopt;
  StoredParam stored;
  MOE_ASSIGN_OR_RETURN(stored, locate(param));
  const weights::SafeTensorsFile *file =
      stored.checkpoint->fileOf(param.getKey());
  // GGUF tensors are dequantised when read: no bytes to copy.
  if (!file)
    return std::nullopt;
  return StoredRange{stored.file.str(),
                     file->dataOffset() + stored.info->begin +
                         piece.offset * weights::dtypeSize(stored.info->dtype),
                     stored.info->dtype};
}
