//===- WeightEvaluator.h - Values of weight expressions ---------*- C++ -*-===//
//
// The one interpreter of weight expressions (WeightExpressionOpInterface):
// whole values for the tools that compute with weights (the CPU runner, the
// passes that inspect routers), element ranges streamed from the checkpoint
// files for the exports, and the byte ranges of stored tensors that can be
// copied as they are.
//
//===----------------------------------------------------------------------===//

#ifndef MOE_WEIGHTS_WEIGHTEVALUATOR_H
#define MOE_WEIGHTS_WEIGHTEVALUATOR_H

#include "moe/Weights/Checkpoint.h"
#include "moe/Weights/HostTensor.h"
#include "moe/Weights/WeightSources.h"

#include "mlir/IR/BuiltinOps.h"
#include "mlir/IR/Value.h"
#include "llvm/ADT/DenseMap.h"
#include "llvm/ADT/StringMap.h"

#include <memory>
#include <optional>

namespace mlir::moe {

class ParamOp;

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

/// A contiguous run of a stored tensor's bytes: what an export can copy
/// between files without reading it.
struct StoredRange {
  std::string file;
  /// From the start of the file.
  uint64_t byteOffset = 0;
  weights::DType dtype = weights::DType::F32;
};

/// Computes weights from the checkpoints their scopes name. Checkpoints are
/// opened once (headers only); tensor data is read on demand through the
/// checkpoint layer's bounded reads.
class WeightEvaluator {
public:
  explicit WeightEvaluator(ModuleOp module, WeightSourceOptions options = {})
      : module(module), options(std::move(options)) {}

  /// The value of weight `value` as floats, cached until clearValues. Errors
  /// name the operation, the scope and the tensor at fault.
  llvm::Expected<std::shared_ptr<const HostTensor>> evaluate(Value value);

  /// Elements [offset, offset + count) of weight `value` (row-major) into
  /// `dest`. Views (parameters, stacks, slices, reshapes) are mapped onto
  /// their operands down to the stored tensors, so only the elements asked
  /// for are read; computations are evaluated whole, and cached.
  llvm::Error read(Value value, uint64_t offset, uint64_t count, float *dest);

  /// Where elements [offset, offset + count) of weight `value` lie in a
  /// checkpoint file, when they are one contiguous run of one stored
  /// tensor; std::nullopt when they are computed or gathered from pieces.
  llvm::Expected<std::optional<StoredRange>>
  storedRange(Value value, uint64_t offset, uint64_t count);

  /// The checkpoint behind scope `name` of the module.
  llvm::Expected<weights::Checkpoint *> checkpoint(llvm::StringRef name);

  /// The stored tensor of `param`, checked against the IR: it exists, its
  /// dtype is a float one, the slice its index names exists, its shape
  /// (less a sliced dimension) is the param's, and (unless the options
  /// allow them) its elements hold no NaN or infinity. Errors name the file
  /// and the tensor.
  llvm::Expected<StoredParam> locate(ParamOp param);

  /// Forgets cached values (not checkpoints), to bound memory between
  /// independent evaluations.
  void clearValues() { values.clear(); }

private:
  llvm::Expected<HostTensor> compute(Operation *op);
  llvm::Error readStored(Operation *op, uint64_t offset, uint64_t count,
                         float *dest);

  ModuleOp module;
  WeightSourceOptions options;
  bool scopeBindingsChecked = false;
  llvm::StringMap<std::unique_ptr<weights::Checkpoint>> checkpoints;
  llvm::DenseMap<Operation *, StoredParam> located;
  llvm::DenseMap<Value, std::shared_ptr<const HostTensor>> values;
};

} // namespace mlir::moe

#endif // MOE_WEIGHTS_WEIGHTEVALUATOR_H
