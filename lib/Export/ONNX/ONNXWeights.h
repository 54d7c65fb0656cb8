//===- ONNXWeights.h - Weights streamed to ONNX external data ---*- C++ -*-===//
//
// Weights of the exported graph are initializers whose bytes live in one
// external data file. Each is described by its shape and a producer that
// streams its float32 elements in order, reading ranges of weight values
// through the weight evaluator (only the elements asked for are read from
// the checkpoints; computed weights are evaluated whole). Memory stays
// bounded by a copy buffer plus the largest evaluated expression.
//
//===----------------------------------------------------------------------===//

#ifndef MOE_LIB_EXPORT_ONNX_ONNXWEIGHTS_H
#define MOE_LIB_EXPORT_ONNX_ONNXWEIGHTS_H

#include "moe/Weights/WeightEvaluator.h"

#include "llvm/ADT/DenseMap.h"
#include "llvm/ADT/SmallVector.h"
#include "llvm/ADT/StringSet.h"
#include "llvm/Support/Error.h"
#include "llvm/Support/raw_ostream.h"

#include "onnx/onnx_pb.h"

#include <functional>
#include <string>
#include <vector>

namespace mlir::moe::onnx_export {

/// The stream producers write initializer elements to.
class FloatSink {
public:
  FloatSink(llvm::raw_ostream &os, WeightEvaluator &evaluator)
      : os(os), evaluator(evaluator) {}

  void write(const float *data, size_t count);
  /// Copies elements [offset, offset + count) of `weight`.
  llvm::Error copy(Value weight, uint64_t offset, uint64_t count);
  WeightEvaluator &weights() { return evaluator; }
  uint64_t written() const { return count; }
  /// A scratch buffer of `size` floats, reused between calls.
  float *scratch(size_t size);

private:
  llvm::raw_ostream &os;
  WeightEvaluator &evaluator;
  uint64_t count = 0;
  std::vector<float> buffer, extra;
};

/// One weight initializer of the graph.
struct WeightInitializer {
  std::string name;
  llvm::SmallVector<int64_t, 4> dims;
  /// Writes exactly product(dims) elements.
  std::function<llvm::Error(FloatSink &)> produce;

  uint64_t numElements() const;
};

/// Writes the initializers named in `used` into the external data file at
/// `path` and adds their TensorProtos (data location `location`, relative to
/// the model file) to `graph`. Large tensors start at 64 KiB boundaries so
/// that runtimes can memory-map them.
llvm::Error writeExternalData(llvm::ArrayRef<WeightInitializer> initializers,
                              const llvm::StringSet<> &used,
                              WeightEvaluator &evaluator, llvm::StringRef path,
                              llvm::StringRef location,
                              onnx::GraphProto &graph);

} // namespace mlir::moe::onnx_export

#endif // MOE_LIB_EXPORT_ONNX_ONNXWEIGHTS_H
