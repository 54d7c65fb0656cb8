//===- HostTensor.h - Weight values in host memory --------------*- C++ -*-===//
//
// What evaluating a weight expression produces: a dense row-major float
// tensor. Weights are computed in f32 whatever their stored dtype.
//
//===----------------------------------------------------------------------===//

#ifndef MOE_WEIGHTS_HOSTTENSOR_H
#define MOE_WEIGHTS_HOSTTENSOR_H

#include "llvm/ADT/ArrayRef.h"
#include "llvm/ADT/SmallVector.h"

#include <cstdint>
#include <vector>

namespace mlir::moe {

/// A dense row-major float tensor in host memory.
struct HostTensor {
  HostTensor() = default;
  /// A tensor of `shape`, zero-filled.
  explicit HostTensor(llvm::ArrayRef<int64_t> shape)
      : shape(shape.begin(), shape.end()), data(numElements(shape), 0.0f) {}

  llvm::SmallVector<int64_t, 4> shape;
  std::vector<float> data;

  static uint64_t numElements(llvm::ArrayRef<int64_t> shape) {
    uint64_t count = 1;
    for (int64_t dim : shape)
      count *= static_cast<uint64_t>(dim);
    return count;
  }
  uint64_t numElements() const { return numElements(shape); }
};

} // namespace mlir::moe

#endif // MOE_WEIGHTS_HOSTTENSOR_H
