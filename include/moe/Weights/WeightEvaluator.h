//===- WeightEvaluator.h - Values of weight expressions ---------*- C++ -*-===//

#ifndef MOE_WEIGHTS_WEIGHTEVALUATOR_H
#define MOE_WEIGHTS_WEIGHTEVALUATOR_H

#include "moe/Weights/Checkpoint.h"

#include "mlir/IR/BuiltinOps.h"
#include "mlir/IR/Value.h"
#include "llvm/ADT/DenseMap.h"
#include "llvm/ADT/StringMap.h"

#include <memory>
#include <vector>

namespace mlir::moe {

class ParamOp;

/// A dense row-major float tensor in host memory.
struct HostTensor {
  llvm::SmallVector<int64_t, 4> shape;
  std::vector<float> data;

  int64_t numElements() const;
};

/// Where the values of a moe.param are stored.
struct StoredParam {
  weights::Checkpoint *checkpoint;
  /// The whole stored tensor, and the safetensors file that holds it.
  const weights::TensorInfo *info;
  llvm::StringRef file;
  /// The param's first element within the stored tensor (its slice, when
  /// it has an index) and its element count.
  uint64_t elementOffset, elements;
};

/// Computes weights from the checkpoints their scopes name. Checkpoints are
/// opened once (headers only) and read lazily; results are cached per value.
class WeightEvaluator {
public:
  explicit WeightEvaluator(ModuleOp module) : module(module) {}

  /// The value of weight `value` as floats. Errors name the operation, the
  /// scope and the tensor at fault.
  llvm::Expected<std::shared_ptr<const HostTensor>> evaluate(Value value);

  /// The checkpoint behind scope `name` of the module.
  llvm::Expected<weights::Checkpoint *> checkpoint(llvm::StringRef name);

  /// The stored tensor of `param`, checked against the IR: it exists, its
  /// dtype is a float one, the slice its index names exists, and its shape
  /// (less a sliced dimension) is the param's. Errors name the file and the
  /// tensor.
  llvm::Expected<StoredParam> locate(ParamOp param);

  /// Forgets cached values (not checkpoints), to bound memory between
  /// independent evaluations.
  void clearValues() { values.clear(); }

private:
  llvm::Expected<HostTensor> compute(Operation *op);

  ModuleOp module;
  llvm::StringMap<std::unique_ptr<weights::Checkpoint>> checkpoints;
  llvm::DenseMap<Value, std::shared_ptr<const HostTensor>> values;
};

} // namespace mlir::moe

#endif // MOE_WEIGHTS_WEIGHTEVALUATOR_H
