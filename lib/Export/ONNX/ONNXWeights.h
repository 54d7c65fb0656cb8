//===- ONNXWeights.h - Weights streamed to ONNX external data ---*- C++ -*-===//
//
// Weights of the exported graph are initializers whose bytes live in one
// external data file. Each is described by its shape and a producer that
// streams its float32 elements in order, reading ranges of weight values:
// parameters straight from the memory-mapped checkpoints (converted from
// f16/bf16/f64 when needed), stacks, reshapes and static slices by mapping
// the range onto their operands, and only the other weight expressions
// (averages, random initialisers, ...) by evaluating them. Memory stays
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

/// Reads ranges of weight values as float32, in row-major element order.
class WeightReader {
public:
  explicit WeightReader(ModuleOp module) : evaluator(module) {}

  /// Elements [offset, offset + count) of weight `weight`.
  llvm::Error read(Value weight, uint64_t offset, uint64_t count, float *dest);
  /// Forgets evaluated expressions, to bound memory between initializers.
  void releaseEvaluated() { evaluator.clearValues(); }

private:
  struct ParamView {
    llvm::ArrayRef<uint8_t> bytes;
    weights::DType dtype;
    /// The bytes read in sequence and not released yet: [begin, end).
    size_t begin = 0, end = 0;
  };
  llvm::Expected<ParamView *> view(Operation *param);
  llvm::Error readSlice(Operation *slice, uint64_t offset, uint64_t count,
                        float *dest);

  WeightEvaluator evaluator;
  llvm::DenseMap<Operation *, ParamView> params;
};

/// The stream producers write initializer elements to.
class FloatSink {
public:
  FloatSink(llvm::raw_ostream &os, WeightReader &reader)
      : os(os), reader(reader) {}

  void write(const float *data, size_t count);
  /// Copies elements [offset, offset + count) of `weight`.
  llvm::Error copy(Value weight, uint64_t offset, uint64_t count);
  WeightReader &weights() { return reader; }
  uint64_t written() const { return count; }
  /// A scratch buffer of `size` floats, reused between calls.
  float *scratch(size_t size);

private:
  llvm::raw_ostream &os;
  WeightReader &reader;
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
                              WeightReader &reader, llvm::StringRef path,
                              llvm::StringRef location,
                              onnx::GraphProto &graph);

} // namespace mlir::moe::onnx_export

#endif // MOE_LIB_EXPORT_ONNX_ONNXWEIGHTS_H
