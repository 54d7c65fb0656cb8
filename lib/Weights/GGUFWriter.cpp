//===- GGUFWriter.cpp - GGUF writer ---------------------------------------===//
//
// The layout of llama.cpp's gguf specification, version 3: the header and
// metadata, the tensor infos with offsets relative to the data region, and
// the data region at the next multiple of the alignment, each tensor padded
// to it.
//
//===----------------------------------------------------------------------===//

#include "moe/Weights/GGUFWriter.h"

#include "moe/Support/Errors.h"
#include "moe/Support/OutputStreams.h"
#include "moe/Support/StagedOutput.h"
#include "moe/Support/StrictJson.h"

#include "llvm/ADT/StringExtras.h"
#include "llvm/Support/Endian.h"
#include "llvm/Support/FileSystem.h"
#include "llvm/Support/MathExtras.h"
#include "llvm/Support/Path.h"

using namespace mlir::moe;
using namespace mlir::moe::weights;
using llvm::Error;
using llvm::StringRef;
using llvm::Twine;

/// ggml's GGML_MAX_NAME, the terminating zero included.
static constexpr size_t kMaxTensorName = 64;

template <typename T> static void appendLE(std::string &out, T value) {
  char bytes[sizeof(T)];
  llvm::support::endian::write<T, llvm::endianness::little>(bytes, value);
  out.append(bytes, sizeof(T));
}

static void appendString(std::string &out, StringRef text) {
  appendLE<uint64_t>(out, text.size());
  out.append(text.begin(), text.end());
}

void GGUFMetadata::begin(StringRef key, GGUFValue::Type type) {
  bool inserted = keys.insert(key).second;
  assert(inserted && "metadata key added twice");
  (void)inserted;
  appendString(bytes, key);
  appendLE<uint32_t>(bytes, type);
}

void GGUFMetadata::addUInt32(StringRef key, uint32_t value) {
  begin(key, GGUFValue::UInt32);
  appendLE(bytes, value);
}

void GGUFMetadata::addInt32(StringRef key, int32_t value) {
  begin(key, GGUFValue::Int32);
  appendLE(bytes, value);
}

void GGUFMetadata::addUInt64(StringRef key, uint64_t value) {
  begin(key, GGUFValue::UInt64);
  appendLE(bytes, value);
}

void GGUFMetadata::addFloat32(StringRef key, float value) {
  begin(key, GGUFValue::Float32);
  appendLE(bytes, llvm::bit_cast<uint32_t>(value));
}

void GGUFMetadata::addBool(StringRef key, bool value) {
  begin(key, GGUFValue::Bool);
  appendLE<uint8_t>(bytes, value);
}

void GGUFMetadata::addString(StringRef key, StringRef value) {
  begin(key, GGUFValue::String);
  appendString(bytes, value);
}

void GGUFMetadata::addStringArray(StringRef key,
                                  llvm::ArrayRef<std::string> values) {
  begin(key, GGUFValue::Array);
  appendLE<uint32_t>(bytes, GGUFValue::String);
  appendLE<uint64_t>(bytes, values.size());
  for (const std::string &value : values)
    appendString(bytes, value);
}

void GGUFMetadata::addFloat32Array(StringRef key,
                                   llvm::ArrayRef<float> values) {
  begin(key, GGUFValue::Array);
  appendLE<uint32_t>(bytes, GGUFValue::Float32);
  appendLE<uint64_t>(bytes, values.size());
  for (float value : values)
    appendLE(bytes, llvm::bit_cast<uint32_t>(value));
}

void GGUFMetadata::addInt32Array(StringRef key,
                                 llvm::ArrayRef<int32_t> values) {
  begin(key, GGUFValue::Array);
  appendLE<uint32_t>(bytes, GGUFValue::Int32);
  appendLE<uint64_t>(bytes, values.size());
  for (int32_t value : values)
    appendLE(bytes, value);
}

void GGUFMetadata::addEncoded(StringRef key, GGUFValue::Type type,
                              StringRef encodedValue) {
  begin(key, type);
  bytes.append(encodedValue.begin(), encodedValue.end());
}

uint64_t mlir::moe::weights::ggmlTensorBytes(GGMLType type,
                                             llvm::ArrayRef<int64_t> dims) {
  GGMLBlockLayout layout = ggmlBlockLayout(type);
  uint64_t rows = 1;
  for (int64_t dim : dims.drop_front())
    rows *= uint64_t(dim);
  return uint64_t(dims.front()) / layout.elements * layout.bytes * rows;
}

/// Checks what can be checked before a byte is written.
static Error validateTensors(StringRef path,
                             llvm::ArrayRef<GGUFTensorSource> tensors) {
  llvm::StringSet<> names;
  for (const GGUFTensorSource &tensor : tensors) {
    std::string prefix =
        (path + ": tensor " + quoted(tensor.name) + ": ").str();
    if (tensor.name.size() >= kMaxTensorName)
      return makeError(prefix + "name is longer than " +
                       Twine(kMaxTensorName - 1) + " bytes");
    if (!names.insert(tensor.name).second)
      return makeError(prefix + "given twice");
    if (tensor.dims.empty() || tensor.dims.size() > kMaxGGUFDims)
      return makeError(prefix + "has " + Twine(tensor.dims.size()) +
                       " dimensions (1 to " + Twine(kMaxGGUFDims) +
                       " are allowed)");
    for (int64_t dim : tensor.dims)
      if (dim <= 0)
        return makeError(prefix + "has a dimension of " + Twine(dim));
    uint32_t block = ggmlBlockLayout(tensor.type).elements;
    if (tensor.dims.front() % block)
      return makeError(prefix + "rows of " + Twine(tensor.dims.front()) +
                       " elements are not whole " +
                       ggmlTypeName(uint32_t(tensor.type)) + " blocks of " +
                       Twine(block));
    if (!tensor.produce)
      return makeError(prefix + "has no producer");
  }
  return Error::success();
}

static void appendPadding(std::string &out, uint64_t alignment) {
  out.append(llvm::alignTo(out.size(), alignment) - out.size(), '\0');
}

Error mlir::moe::weights::writeGGUF(StringRef path, GGUFMetadata metadata,
                                    llvm::ArrayRef<GGUFTensorSource> tensors,
                                    const GGUFWriterOptions &options) {
  MOE_RETURN_IF_ERROR(validateTensors(path, tensors));
  uint64_t alignment = options.alignment;
  if (!llvm::isPowerOf2_64(alignment))
    return makeError(path + ": alignment " + Twine(alignment) +
                     " is not a power of two");
  // The alignment is the writer's to state, as it lays the data out.
  if (metadata.contains("general.alignment"))
    return makeError(path + ": metadata 'general.alignment' is set by the "
                            "writer's alignment option, not by the caller");
  if (alignment != kDefaultGGUFAlignment)
    metadata.addUInt32("general.alignment", options.alignment);

  std::string header = "GGUF";
  appendLE<uint32_t>(header, 3);
  appendLE<uint64_t>(header, tensors.size());
  appendLE<uint64_t>(header, metadata.size());
  header += metadata.encoded();
  uint64_t offset = 0;
  std::vector<uint64_t> sizes;
  for (const GGUFTensorSource &tensor : tensors) {
    appendString(header, tensor.name);
    appendLE<uint32_t>(header, tensor.dims.size());
    for (int64_t dim : tensor.dims)
      appendLE<uint64_t>(header, dim);
    appendLE<uint32_t>(header, uint32_t(tensor.type));
    appendLE<uint64_t>(header, offset);
    sizes.push_back(ggmlTensorBytes(tensor.type, tensor.dims));
    offset = llvm::alignTo(offset + sizes.back(), alignment);
  }
  appendPadding(header, alignment);
  uint64_t total = offset;

  StringRef directory = llvm::sys::path::parent_path(path);
  StringRef name = llvm::sys::path::filename(path);
  llvm::Expected<StagedOutput> staged =
      StagedOutput::create(directory.empty() ? "." : directory, name);
  if (!staged)
    return makeError(path + ": " + llvm::toString(staged.takeError()));
  int fd;
  if (std::error_code ec = llvm::sys::fs::openFileForWrite(
          staged->file(name), fd, llvm::sys::fs::CD_CreateNew))
    return makeError(path + ": cannot create: " + ec.message());
  OutputFileStream stream(fd);
  llvm::raw_fd_ostream &out = stream.out;
  out << header;

  uint64_t done = 0;
  static const char zeros[kDefaultGGUFAlignment * 8] = {};
  for (auto [tensor, size] : llvm::zip_equal(tensors, sizes)) {
    std::string prefix =
        (path + ": tensor " + quoted(tensor.name) + ": ").str();
    CountingStream counter(out);
    Error error = tensor.produce(counter);
    counter.flush();
    if (error)
      return makeError(prefix + llvm::toString(std::move(error)));
    if (counter.count() != size)
      return makeError(prefix + "the producer wrote " + Twine(counter.count()) +
                       " bytes; " + ggmlTypeName(uint32_t(tensor.type)) +
                       " needs " + Twine(size));
    for (uint64_t padding = llvm::alignTo(size, alignment) - size; padding;) {
      uint64_t count = std::min<uint64_t>(padding, sizeof(zeros));
      out.write(zeros, count);
      padding -= count;
    }
    // Flush now, so that a write error names the tensor being written.
    out.flush();
    if (Error error = stream.takeError(prefix))
      return error;
    done += llvm::alignTo(size, alignment);
    if (options.progress)
      options.progress(done, total);
  }
  if (Error error = stream.close(path))
    return error;
  // publishFiles' errors already start with the path.
  return staged->publishFiles({std::string(name)}, options.replace);
}
