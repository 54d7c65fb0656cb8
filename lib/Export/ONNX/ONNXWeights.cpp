//===- ONNXWeights.cpp - Weights streamed to ONNX external data -----------===//

#include "ONNXWeights.h"

#include "moe/Dialect/MoeOps.h"
#include "moe/Support/Errors.h"
#include "moe/Support/Format.h"
#include "moe/Weights/DType.h"

#include "llvm/Support/FileSystem.h"

#include <algorithm>
#include <cassert>
#include <cstring>

using namespace mlir;
using namespace mlir::moe;
using namespace mlir::moe::onnx_export;

/// Elements copied per read: 4 MiB of floats.
static constexpr uint64_t kChunkElements = uint64_t(1) << 20;

void FloatSink::start(const WeightInitializer &init) {
  current = &init;
  row.clear();
}

void FloatSink::write(const float *data, size_t n) {
  assert(current && "FloatSink::start names the initializer first");
  count += n;
  if (current->quantization)
    return writeQuantized(data, n);
  if (current->dataType == onnx::TensorProto::FLOAT) {
    os.write(reinterpret_cast<const char *>(data), n * sizeof(float));
    return;
  }
  weights::DType dtype = current->dataType == onnx::TensorProto::FLOAT16
                             ? weights::DType::F16
                             : weights::DType::BF16;
  bytes.resize(std::min<size_t>(n, kChunkElements) * 2);
  for (size_t begin = 0; begin < n; begin += kChunkElements) {
    size_t chunk = std::min<size_t>(n - begin, kChunkElements);
    weights::convertFromF32(dtype, data + begin, bytes.data(), chunk);
    os.write(reinterpret_cast<const char *>(bytes.data()), chunk * 2);
  }
}

void FloatSink::writeQuantized(const float *data, size_t n) {
  const BlockQuantization &quantization = *current->quantization;
  size_t columns = quantization.columns;
  bytes.resize(quantization.bytesPerRow());
  std::vector<float> &scales = *current->scales;
  while (n) {
    size_t taken = std::min(n, columns - row.size());
    row.insert(row.end(), data, data + taken);
    data += taken;
    n -= taken;
    if (row.size() < columns)
      return;
    size_t firstScale = scales.size();
    scales.resize(firstScale + quantization.blocksPerRow());
    quantizeRow(quantization, row, bytes,
                MutableArrayRef<float>(scales).drop_front(firstScale));
    os.write(reinterpret_cast<const char *>(bytes.data()), bytes.size());
    row.clear();
  }
}

float *FloatSink::scratch(size_t size) {
  if (extra.size() < size)
    extra.resize(size);
  return extra.data();
}

llvm::Error FloatSink::copy(Value weight, uint64_t offset, uint64_t n) {
  if (buffer.empty())
    buffer.resize(kChunkElements);
  while (n) {
    uint64_t chunk = std::min(n, kChunkElements);
    MOE_RETURN_IF_ERROR(evaluator.read(weight, offset, chunk, buffer.data()));
    write(buffer.data(), chunk);
    offset += chunk;
    n -= chunk;
  }
  return llvm::Error::success();
}

uint64_t WeightInitializer::numElements() const {
  uint64_t count = 1;
  for (int64_t dim : dims)
    count *= static_cast<uint64_t>(dim);
  return count;
}

uint64_t WeightInitializer::numSourceElements() const {
  if (!quantization)
    return numElements();
  return numElements() / quantization->bytesPerRow() * quantization->columns;
}

uint64_t WeightInitializer::numBytes() const {
  switch (dataType) {
  case onnx::TensorProto::FLOAT16:
  case onnx::TensorProto::BFLOAT16:
    return numElements() * 2;
  case onnx::TensorProto::UINT8:
    return numElements();
  default:
    return numElements() * sizeof(float);
  }
}

/// Writes the initializers named in `used` to `os`, adding their protos.
static llvm::Error writeInitializers(ArrayRef<WeightInitializer> initializers,
                                     const llvm::StringSet<> &used,
                                     WeightEvaluator &evaluator,
                                     llvm::raw_fd_ostream &os,
                                     StringRef location,
                                     onnx::GraphProto &graph) {
  FloatSink sink(os, evaluator);
  uint64_t offset = 0;
  static const char zeros[65536] = {};
  for (const WeightInitializer &init : initializers) {
    if (!used.contains(init.name))
      continue;
    uint64_t bytes = init.numBytes();
    uint64_t alignment = bytes >= (uint64_t(1) << 20) ? 65536 : 64;
    uint64_t padding = (alignment - offset % alignment) % alignment;
    os.write(zeros, padding);
    offset += padding;
    uint64_t before = sink.written();
    sink.start(init);
    MOE_RETURN_IF_ERROR(init.produce(sink));
    evaluator.clearValues();
    if (sink.written() - before != init.numSourceElements())
      return makeError("internal error: the producer of initializer '" +
                       init.name + "' wrote " + Twine(sink.written() - before) +
                       " elements instead of " +
                       Twine(init.numSourceElements()));
    if (os.has_error())
      return llvm::Error::success();

    onnx::TensorProto *tensor = graph.add_initializer();
    tensor->set_name(init.name);
    tensor->set_data_type(init.dataType);
    for (int64_t dim : init.dims)
      tensor->add_dims(dim);
    tensor->set_data_location(onnx::TensorProto::EXTERNAL);
    auto addEntry = [&](StringRef key, const std::string &value) {
      onnx::StringStringEntryProto *entry = tensor->add_external_data();
      entry->set_key(key.str());
      entry->set_value(value);
    };
    addEntry("location", location.str());
    addEntry("offset", std::to_string(offset));
    addEntry("length", std::to_string(bytes));
    offset += bytes;
  }
  return llvm::Error::success();
}

llvm::Error
onnx_export::writeExternalData(ArrayRef<WeightInitializer> initializers,
                               const llvm::StringSet<> &used,
                               WeightEvaluator &evaluator, StringRef path,
                               StringRef location, onnx::GraphProto &graph) {
  std::error_code error;
  llvm::raw_fd_ostream os(path, error, llvm::sys::fs::OF_None);
  if (error)
    return makeError("cannot write '" + path + "': " + error.message());
  llvm::Error written =
      writeInitializers(initializers, used, evaluator, os, location, graph);
  os.close();
  // A stream error must be cleared before the stream goes away, whatever
  // else went wrong.
  if (os.has_error()) {
    std::string message = os.error().message();
    os.clear_error();
    llvm::consumeError(std::move(written));
    return makeError("cannot write '" + path + "': " + message);
  }
  return written;
}
