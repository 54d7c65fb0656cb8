//===- ONNXWeights.h - Weights streamed to ONNX external data ---*- C++ -*-===//
//
// Weights of the exported graph are initializers whose bytes live in one
// external data file. Each is described by its shape and a producer that
// streams its float32 elements in order, reading ranges of weight values
// through the weight evaluator (only the elements asked for are read from
// the checkpoints; computed weights are evaluated whole). The sink stores
// them as the initializer says: float32, float16 or bfloat16 (rounded to
// nearest even), or quantised row by row (ONNXQuantize.h). Memory stays
// bounded by a copy buffer, one row, the scales of one quantised weight and
// the largest evaluated expression.
//
//===----------------------------------------------------------------------===//

#ifndef MOE_LIB_EXPORT_ONNX_ONNXWEIGHTS_H
#define MOE_LIB_EXPORT_ONNX_ONNXWEIGHTS_H

#include "ONNXQuantize.h"

#include "moe/Weights/WeightEvaluator.h"

#include "llvm/ADT/DenseMap.h"
#include "llvm/ADT/SmallVector.h"
#include "llvm/ADT/StringSet.h"
#include "llvm/Support/Error.h"
#include "llvm/Support/raw_ostream.h"

#include "onnx/onnx_pb.h"

#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace mlir::moe::onnx_export {

struct WeightInitializer;

/// The stream producers write initializer elements to.
class FloatSink {
public:
  FloatSink(llvm::raw_ostream &os, WeightEvaluator &evaluator)
      : os(os), evaluator(evaluator) {}

  /// Stores the next elements of the current initializer.
  void write(const float *data, size_t count);
  /// Copies elements [offset, offset + count) of `weight`.
  llvm::Error copy(Value weight, uint64_t offset, uint64_t count);
  WeightEvaluator &weights() { return evaluator; }
  /// Elements written so far, over all initializers.
  uint64_t written() const { return count; }
  /// A scratch buffer of `size` floats, reused between calls.
  float *scratch(size_t size);
  /// Stores what follows as `init` says.
  void start(const WeightInitializer &init);

private:
  void writeQuantized(const float *data, size_t count);

  llvm::raw_ostream &os;
  WeightEvaluator &evaluator;
  const WeightInitializer *current = nullptr;
  uint64_t count = 0;
  std::vector<float> buffer, extra;
  /// Conversions: float16/bfloat16 bytes, or the pending row and the packed
  /// bytes of a quantised one.
  std::vector<uint8_t> bytes;
  std::vector<float> row;
};

/// One weight initializer of the graph.
struct WeightInitializer {
  std::string name;
  /// The dimensions of the tensor in the graph.
  llvm::SmallVector<int64_t, 4> dims;
  /// FLOAT, FLOAT16, BFLOAT16, or UINT8 with `quantization`.
  onnx::TensorProto::DataType dataType = onnx::TensorProto::FLOAT;
  /// Writes the float32 elements: product(dims) of them, or with
  /// `quantization` whole rows of `quantization->columns`.
  std::function<llvm::Error(FloatSink &)> produce;
  /// Packed blocks (UINT8 [..., rows, bytes]): the rows are quantised as they
  /// arrive and their scales appended to `scales`, which the initializer of
  /// the scales, written next, empties.
  std::optional<BlockQuantization> quantization;
  std::shared_ptr<std::vector<float>> scales;

  uint64_t numElements() const;
  /// The float32 elements `produce` writes.
  uint64_t numSourceElements() const;
  uint64_t numBytes() const;
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
