//===- ONNXWeights.cpp - Weights streamed to ONNX external data -----------===//

#include "ONNXWeights.h"

#include "moe/Dialect/MoeOps.h"
#include "moe/Support/Errors.h"
#include "moe/Support/Format.h"

#include "mlir/Dialect/Tensor/IR/Tensor.h"
#include "llvm/Support/FileSystem.h"
#include "llvm/Support/Process.h"

#if defined(__unix__) || defined(__APPLE__)
#include <sys/mman.h>
#endif

#include <algorithm>
#include <cstring>

using namespace mlir;
using namespace mlir::moe;
using namespace mlir::moe::onnx_export;

/// Elements copied per read: 4 MiB of floats.
static constexpr uint64_t kChunkElements = uint64_t(1) << 20;
/// Reads of at least this many bytes drop their checkpoint pages after use.
static constexpr uint64_t kReleaseBytes = uint64_t(1) << 20;

static uint64_t numElementsOf(Value value) {
  uint64_t count = 1;
  for (int64_t dim : cast<RankedTensorType>(value.getType()).getShape())
    count *= static_cast<uint64_t>(dim);
  return count;
}

llvm::Expected<WeightReader::ParamView *> WeightReader::view(Operation *op) {
  auto it = params.find(op);
  if (it != params.end())
    return &it->second;
  auto param = cast<ParamOp>(op);
  StoredParam stored;
  MOE_ASSIGN_OR_RETURN(stored, evaluator.locate(param));
  ArrayRef<uint8_t> bytes;
  MOE_ASSIGN_OR_RETURN(bytes, stored.checkpoint->bytes(param.getKey()));
  uint64_t size = weights::dtypeSize(stored.info->dtype);
  ParamView result{
      bytes.slice(stored.elementOffset * size, stored.elements * size),
      stored.info->dtype, 0, 0};
  return &params.try_emplace(op, result).first->second;
}

/// Drops the whole pages of [begin, end) from this process's view of a
/// read-only file mapping: they stay in the page cache (and fault back in if
/// read again), but a multi-gigabyte export does not keep every checkpoint
/// page it has streamed resident. Returns where the released pages end.
static const uint8_t *releasePages(const uint8_t *begin, const uint8_t *end) {
#if defined(__unix__) || defined(__APPLE__)
  static const uintptr_t page = llvm::sys::Process::getPageSizeEstimate();
  uintptr_t first =
      (reinterpret_cast<uintptr_t>(begin) + page - 1) & ~(page - 1);
  uintptr_t last = reinterpret_cast<uintptr_t>(end) & ~(page - 1);
  if (last <= first)
    return begin;
  (void)::madvise(reinterpret_cast<void *>(first), last - first, MADV_DONTNEED);
  return reinterpret_cast<const uint8_t *>(last);
#else
  (void)end;
  return begin;
#endif
}

llvm::Error WeightReader::readSlice(Operation *op, uint64_t offset,
                                    uint64_t count, float *dest) {
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
  // The innermost dimensions a slice takes whole (plus the first one it
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
  Value input = slice.getSource();
  while (count) {
    uint64_t runIndex = offset / run, within = offset % run;
    uint64_t start = innerStart + within;
    for (int64_t d = inner - 1; d >= 0; --d) {
      uint64_t position = runIndex % sizes[d];
      runIndex /= sizes[d];
      start += (offsets[d] + position * strides[d]) * sourceStrides[d];
    }
    uint64_t n = std::min(count, run - within);
    MOE_RETURN_IF_ERROR(read(input, start, n, dest));
    offset += n;
    count -= n;
    dest += n;
  }
  return llvm::Error::success();
}

llvm::Error WeightReader::read(Value weight, uint64_t offset, uint64_t count,
                               float *dest) {
  if (count == 0)
    return llvm::Error::success();
  Operation *op = weight.getDefiningOp();
  if (op && isa<ParamOp>(op)) {
    ParamView *param;
    MOE_ASSIGN_OR_RETURN(param, view(op));
    unsigned size = weights::dtypeSize(param->dtype);
    size_t begin = offset * size, end = begin + count * size;
    weights::convertToF32(param->dtype, param->bytes.data() + begin, dest,
                          count);
    // Reads usually walk a tensor in order (in chunks, or row by row for the
    // re-laid-out initializers): release what they have covered once it
    // reaches a megabyte.
    if (begin != param->end)
      param->begin = begin;
    param->end = end;
    if (param->end - param->begin >= kReleaseBytes) {
      const uint8_t *base = param->bytes.data();
      param->begin =
          releasePages(base + param->begin, base + param->end) - base;
    }
    return llvm::Error::success();
  }
  if (auto stack = dyn_cast_or_null<StackOp>(op)) {
    uint64_t per = numElementsOf(stack.getInputs().front());
    while (count) {
      uint64_t index = offset / per, within = offset % per;
      uint64_t n = std::min(count, per - within);
      MOE_RETURN_IF_ERROR(read(stack.getInputs()[index], within, n, dest));
      offset += n;
      count -= n;
      dest += n;
    }
    return llvm::Error::success();
  }
  if (op && isa<tensor::CollapseShapeOp, tensor::ExpandShapeOp>(op))
    return read(op->getOperand(0), offset, count, dest);
  if (op && isa<tensor::ExtractSliceOp>(op))
    return readSlice(op, offset, count, dest);
  // Any other weight expression is computed whole (and cached until the
  // initializer that reads it is written).
  std::shared_ptr<const HostTensor> tensor;
  MOE_ASSIGN_OR_RETURN(tensor, evaluator.evaluate(weight));
  std::memcpy(dest, tensor->data.data() + offset, count * sizeof(float));
  return llvm::Error::success();
}

void FloatSink::write(const float *data, size_t n) {
  os.write(reinterpret_cast<const char *>(data), n * sizeof(float));
  count += n;
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
    MOE_RETURN_IF_ERROR(reader.read(weight, offset, chunk, buffer.data()));
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

/// Writes the initializers named in `used` to `os`, adding their protos.
static llvm::Error writeInitializers(ArrayRef<WeightInitializer> initializers,
                                     const llvm::StringSet<> &used,
                                     WeightReader &reader,
                                     llvm::raw_fd_ostream &os,
                                     StringRef location,
                                     onnx::GraphProto &graph) {
  FloatSink sink(os, reader);
  uint64_t offset = 0;
  static const char zeros[65536] = {};
  for (const WeightInitializer &init : initializers) {
    if (!used.contains(init.name))
      continue;
    uint64_t bytes = init.numElements() * sizeof(float);
    uint64_t alignment = bytes >= (uint64_t(1) << 20) ? 65536 : 64;
    uint64_t padding = (alignment - offset % alignment) % alignment;
    os.write(zeros, padding);
    offset += padding;
    uint64_t before = sink.written();
    MOE_RETURN_IF_ERROR(init.produce(sink));
    reader.releaseEvaluated();
    if ((sink.written() - before) * sizeof(float) != bytes)
      return makeError("internal error: the producer of initializer '" +
                       init.name + "' wrote " + Twine(sink.written() - before) +
                       " elements instead of " + Twine(init.numElements()));
    if (os.has_error())
      return llvm::Error::success();

    onnx::TensorProto *tensor = graph.add_initializer();
    tensor->set_name(init.name);
    tensor->set_data_type(onnx::TensorProto::FLOAT);
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
                               WeightReader &reader, StringRef path,
                               StringRef location, onnx::GraphProto &graph) {
  std::error_code error;
  llvm::raw_fd_ostream os(path, error, llvm::sys::fs::OF_None);
  if (error)
    return makeError("cannot write '" + path + "': " + error.message());
  llvm::Error written =
      writeInitializers(initializers, used, reader, os, location, graph);
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
