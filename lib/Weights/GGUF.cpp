//===- GGUF.cpp - GGUF reader ---------------------------------------------===//
//
// The format follows llama.cpp's gguf specification (docs/gguf.md of
// ggml): every count and length is checked against the bytes left in the
// file before anything is sized from it, so a malformed header costs at most
// one pass over the file's header bytes.
//
//===----------------------------------------------------------------------===//

#include "moe/Weights/GGUF.h"

#include "moe/Support/Errors.h"
#include "moe/Support/RegularFile.h"
#include "moe/Support/StrictJson.h"

#include "llvm/ADT/STLExtras.h"
#include "llvm/ADT/Twine.h"
#include "llvm/Support/Endian.h"
#include "llvm/Support/MathExtras.h"

#include <algorithm>
#include <cstring>

using namespace mlir::moe;
using namespace mlir::moe::weights;
using llvm::Error;
using llvm::Expected;
using llvm::StringRef;
using llvm::Twine;

/// Largest key and tensor name (ggml's GGML_MAX_NAME is 64; keys are short).
static constexpr uint64_t kMaxNameSize = 65535;

llvm::StringRef mlir::moe::weights::ggufValueTypeName(uint32_t type) {
  static const char *const names[] = {
      "uint8", "int8",   "uint16", "int16",  "uint32", "int32",  "float32",
      "bool",  "string", "array",  "uint64", "int64",  "float64"};
  return type < std::size(names) ? StringRef(names[type]) : StringRef();
}

bool GGUFValue::isInteger() const {
  switch (type) {
  case UInt8:
  case Int8:
  case UInt16:
  case Int16:
  case UInt32:
  case Int32:
  case UInt64:
  case Int64:
    return true;
  default:
    return false;
  }
}

uint64_t GGUFTensorInfo::numElements() const {
  uint64_t elements = 1;
  for (int64_t dim : dims)
    elements *= uint64_t(dim); // Checked not to overflow when parsed.
  return elements;
}

/// Size in bytes of a scalar metadata type; 0 for strings and arrays.
static uint64_t scalarSize(uint32_t type) {
  switch (type) {
  case GGUFValue::UInt8:
  case GGUFValue::Int8:
  case GGUFValue::Bool:
    return 1;
  case GGUFValue::UInt16:
  case GGUFValue::Int16:
    return 2;
  case GGUFValue::UInt32:
  case GGUFValue::Int32:
  case GGUFValue::Float32:
    return 4;
  case GGUFValue::UInt64:
  case GGUFValue::Int64:
  case GGUFValue::Float64:
    return 8;
  default:
    return 0;
  }
}

namespace {
/// Sequential reads of the header through a bounded buffer; every read is
/// checked against the file size first.
class HeaderCursor {
public:
  HeaderCursor(llvm::sys::fs::file_t handle, uint64_t fileSize, StringRef path)
      : handle(handle), fileSize(fileSize), path(path) {}

  uint64_t offset() const { return position; }
  uint64_t left() const { return fileSize - position; }

  Error read(void *dest, uint64_t size, const Twine &what) {
    if (size > left())
      return makeError(path + ": file ended at byte " + Twine(fileSize) +
                       " while reading " + what + " (" + Twine(size) +
                       " bytes at byte " + Twine(position) + ")");
    auto *out = static_cast<char *>(dest);
    while (size) {
      if (bufferBegin > position || position >= bufferBegin + buffer.size())
        MOE_RETURN_IF_ERROR(fill(what));
      uint64_t inBuffer = bufferBegin + buffer.size() - position;
      uint64_t count = std::min(size, inBuffer);
      std::memcpy(out, buffer.data() + (position - bufferBegin), count);
      out += count;
      size -= count;
      position += count;
    }
    return Error::success();
  }
  Error skip(uint64_t size, const Twine &what) {
    if (size > left())
      return makeError(path + ": file ended at byte " + Twine(fileSize) +
                       " while reading " + what + " (" + Twine(size) +
                       " bytes at byte " + Twine(position) + ")");
    position += size;
    return Error::success();
  }
  template <typename T> Expected<T> value(const Twine &what) {
    uint8_t bytes[sizeof(T)];
    MOE_RETURN_IF_ERROR(read(bytes, sizeof(T), what));
    return llvm::support::endian::read<T, llvm::endianness::little>(bytes);
  }
  /// A string: uint64 length and bytes, the length bounded by `limit`.
  Expected<std::string> string(uint64_t limit, const Twine &what) {
    uint64_t size;
    MOE_ASSIGN_OR_RETURN(size, value<uint64_t>(what + " length"));
    if (size > limit)
      return makeError(path + ": " + what + " of " + Twine(size) +
                       " bytes exceeds the limit of " + Twine(limit));
    if (size > left())
      return makeError(path + ": " + what + " of " + Twine(size) +
                       " bytes runs past the end of the file (" +
                       Twine(fileSize) + " bytes)");
    std::string text(size, '\0');
    MOE_RETURN_IF_ERROR(read(text.data(), size, what));
    return text;
  }

private:
  Error fill(const Twine &what) {
    buffer.resize(std::min<uint64_t>(kBufferSize, left()));
    bufferBegin = position;
    return readFileRange(
        handle, position,
        llvm::MutableArrayRef<char>(buffer.data(), buffer.size()), path, what);
  }

  static constexpr uint64_t kBufferSize = 1 << 16;
  llvm::sys::fs::file_t handle;
  uint64_t fileSize, position = 0, bufferBegin = 0;
  std::string path;
  std::vector<char> buffer;
};
} // namespace

/// Reads a scalar or string value of `type` into `value`.
static Error readScalar(HeaderCursor &cursor, uint32_t type, GGUFValue &value,
                        const Twine &what) {
  value.type = GGUFValue::Type(type);
  switch (type) {
  case GGUFValue::UInt8:
    MOE_ASSIGN_OR_RETURN(value.integer, cursor.value<uint8_t>(what));
    break;
  case GGUFValue::Int8:
    MOE_ASSIGN_OR_RETURN(value.integer, cursor.value<int8_t>(what));
    break;
  case GGUFValue::UInt16:
    MOE_ASSIGN_OR_RETURN(value.integer, cursor.value<uint16_t>(what));
    break;
  case GGUFValue::Int16:
    MOE_ASSIGN_OR_RETURN(value.integer, cursor.value<int16_t>(what));
    break;
  case GGUFValue::UInt32:
    MOE_ASSIGN_OR_RETURN(value.integer, cursor.value<uint32_t>(what));
    break;
  case GGUFValue::Int32:
    MOE_ASSIGN_OR_RETURN(value.integer, cursor.value<int32_t>(what));
    break;
  case GGUFValue::Int64:
    MOE_ASSIGN_OR_RETURN(value.integer, cursor.value<int64_t>(what));
    break;
  case GGUFValue::UInt64: {
    uint64_t raw;
    MOE_ASSIGN_OR_RETURN(raw, cursor.value<uint64_t>(what));
    value.integer = int64_t(std::min<uint64_t>(raw, INT64_MAX));
    break;
  }
  case GGUFValue::Bool: {
    uint8_t raw;
    MOE_ASSIGN_OR_RETURN(raw, cursor.value<uint8_t>(what));
    if (raw > 1)
      return makeError("bool of value " + Twine(unsigned(raw)));
    value.integer = raw;
    break;
  }
  case GGUFValue::Float32: {
    uint32_t bits;
    MOE_ASSIGN_OR_RETURN(bits, cursor.value<uint32_t>(what));
    value.number = llvm::bit_cast<float>(bits);
    break;
  }
  case GGUFValue::Float64: {
    uint64_t bits;
    MOE_ASSIGN_OR_RETURN(bits, cursor.value<uint64_t>(what));
    value.number = llvm::bit_cast<double>(bits);
    break;
  }
  case GGUFValue::String:
    MOE_ASSIGN_OR_RETURN(value.string, cursor.string(kMaxGGUFStringSize, what));
    break;
  default:
    llvm_unreachable("not a scalar type");
  }
  if (value.isInteger())
    value.number = double(value.integer);
  return Error::success();
}

Error GGUFFile::parseHeader(uint64_t fileSize) {
  HeaderCursor cursor(handle, fileSize, filePath);
  char magic[4];
  MOE_RETURN_IF_ERROR(cursor.read(magic, 4, "the magic"));
  if (std::memcmp(magic, "GGUF", 4) != 0)
    return makeError(filePath + ": not a GGUF file (the first 4 bytes are " +
                     quoted(StringRef(magic, 4)) + ", not 'GGUF')");
  MOE_ASSIGN_OR_RETURN(formatVersion, cursor.value<uint32_t>("the version"));
  if (formatVersion != 2 && formatVersion != 3)
    return makeError(filePath + ": GGUF version " + Twine(formatVersion) +
                     " is not supported (2 and 3 are)");
  uint64_t tensorCount, valueCount;
  MOE_ASSIGN_OR_RETURN(tensorCount, cursor.value<uint64_t>("the tensor count"));
  MOE_ASSIGN_OR_RETURN(valueCount,
                       cursor.value<uint64_t>("the metadata count"));

  // Counts are never used to size anything: each entry is read (and checked
  // against the file's end) one at a time.
  for (uint64_t i = 0; i < valueCount; ++i) {
    std::string key;
    MOE_ASSIGN_OR_RETURN(
        key,
        cursor.string(kMaxNameSize, "the key of metadata entry " + Twine(i)));
    std::string what = "metadata " + quoted(key);
    auto fail = [&](const Twine &message) {
      return makeError(filePath + ": " + what + ": " + message);
    };
    if (values.count(key))
      return fail("duplicate key");
    uint32_t type;
    MOE_ASSIGN_OR_RETURN(type, cursor.value<uint32_t>(what + " type"));
    if (ggufValueTypeName(type).empty())
      return fail("unknown value type " + Twine(type));
    GGUFValue value;
    value.fileOffset = cursor.offset();
    if (type == GGUFValue::Array) {
      value.type = GGUFValue::Array;
      uint32_t elementType;
      MOE_ASSIGN_OR_RETURN(elementType,
                           cursor.value<uint32_t>(what + " element type"));
      if (ggufValueTypeName(elementType).empty())
        return fail("unknown array element type " + Twine(elementType));
      if (elementType == GGUFValue::Array)
        return fail("arrays of arrays are not supported");
      value.elementType = GGUFValue::Type(elementType);
      MOE_ASSIGN_OR_RETURN(value.count,
                           cursor.value<uint64_t>(what + " element count"));
      if (uint64_t size = scalarSize(elementType)) {
        if (value.count > cursor.left() / size)
          return fail("array of " + Twine(value.count) + " " +
                      ggufValueTypeName(elementType) +
                      " runs past the end of the file");
        MOE_RETURN_IF_ERROR(cursor.skip(value.count * size, what));
      } else {
        for (uint64_t e = 0; e < value.count; ++e) {
          uint64_t size;
          MOE_ASSIGN_OR_RETURN(
              size, cursor.value<uint64_t>(what + " element " + Twine(e)));
          if (size > kMaxGGUFStringSize)
            return fail("element " + Twine(e) + " of " + Twine(size) +
                        " bytes exceeds the limit of " +
                        Twine(kMaxGGUFStringSize));
          MOE_RETURN_IF_ERROR(cursor.skip(size, what + " element " + Twine(e)));
        }
      }
    } else if (Error error = readScalar(cursor, type, value, what)) {
      std::string message = llvm::toString(std::move(error));
      if (StringRef(message).starts_with(filePath))
        return makeError(message);
      return fail(message);
    }
    value.encodedSize = cursor.offset() - value.fileOffset;
    values[key] = std::move(value);
  }

  uint64_t alignment = kDefaultGGUFAlignment;
  if (const GGUFValue *value = find("general.alignment")) {
    if (value->type != GGUFValue::UInt32 || value->integer == 0 ||
        !llvm::isPowerOf2_64(value->integer))
      return makeError(filePath + ": metadata 'general.alignment' must be a "
                                  "uint32 power of two");
    alignment = value->integer;
  }

  for (uint64_t i = 0; i < tensorCount; ++i) {
    GGUFTensorInfo info;
    MOE_ASSIGN_OR_RETURN(
        info.name,
        cursor.string(kMaxNameSize, "the name of tensor info " + Twine(i)));
    std::string what = "tensor " + quoted(info.name);
    auto fail = [&](const Twine &message) {
      return makeError(filePath + ": " + what + ": " + message);
    };
    if (index.count(info.name))
      return fail("duplicate name");
    uint32_t rank;
    MOE_ASSIGN_OR_RETURN(rank, cursor.value<uint32_t>(what + " rank"));
    if (rank == 0 || rank > kMaxGGUFDims)
      return fail("has " + Twine(rank) + " dimensions (1 to " +
                  Twine(kMaxGGUFDims) + " are allowed)");
    uint64_t elements = 1;
    for (uint32_t d = 0; d < rank; ++d) {
      uint64_t dim;
      MOE_ASSIGN_OR_RETURN(dim, cursor.value<uint64_t>(what + " dimension"));
      bool overflowed = false;
      elements = llvm::SaturatingMultiply(elements, dim, &overflowed);
      if (dim > uint64_t(INT64_MAX) || overflowed || elements > INT64_MAX)
        return fail("dimensions overflow 63 bits");
      info.dims.push_back(int64_t(dim));
    }
    uint32_t type;
    MOE_ASSIGN_OR_RETURN(type, cursor.value<uint32_t>(what + " type"));
    std::optional<GGMLType> supported = supportedGGMLType(type);
    if (!supported) {
      StringRef name = ggmlTypeName(type);
      return fail(name.empty()
                      ? "unknown ggml type " + Twine(type)
                      : "type " + name +
                            " cannot be dequantised (F32, F16, BF16, Q8_0, "
                            "Q4_0, Q4_1, Q4_K and Q6_K can)");
    }
    info.type = *supported;
    GGMLBlockLayout layout = ggmlBlockLayout(info.type);
    if (info.dims.front() % layout.elements)
      return fail("rows of " + Twine(info.dims.front()) + " elements are not " +
                  "whole blocks of " + Twine(layout.elements) + " (" +
                  ggmlTypeName(type) + ")");
    info.bytes = elements / layout.elements * layout.bytes;
    MOE_ASSIGN_OR_RETURN(info.offset, cursor.value<uint64_t>(what + " offset"));
    if (info.offset % alignment)
      return fail("offset " + Twine(info.offset) +
                  " is not a multiple of the alignment " + Twine(alignment));
    index[info.name] = infos.size();
    infos.push_back(std::move(info));
  }

  dataStart = llvm::alignTo(cursor.offset(), alignment);
  if (dataStart > fileSize)
    return makeError(filePath + ": the data region would start at byte " +
                     Twine(dataStart) + ", past the end of the file (" +
                     Twine(fileSize) + " bytes)");
  dataSize = fileSize - dataStart;
  std::vector<const GGUFTensorInfo *> byOffset;
  for (const GGUFTensorInfo &info : infos) {
    if (info.offset > dataSize || info.bytes > dataSize - info.offset)
      return makeError(
          filePath + ": tensor " + quoted(info.name) + ": bytes [" +
          Twine(info.offset) + ", " + Twine(info.offset + info.bytes) +
          ") run past the data region of " + Twine(dataSize) + " bytes");
    byOffset.push_back(&info);
  }
  llvm::sort(byOffset, [](const GGUFTensorInfo *a, const GGUFTensorInfo *b) {
    return std::tie(a->offset, a->name) < std::tie(b->offset, b->name);
  });
  for (size_t i = 1; i < byOffset.size(); ++i)
    if (byOffset[i]->offset < byOffset[i - 1]->offset + byOffset[i - 1]->bytes)
      return makeError(filePath + ": tensors " + quoted(byOffset[i - 1]->name) +
                       " and " + quoted(byOffset[i]->name) + " overlap");
  return Error::success();
}

Expected<std::unique_ptr<GGUFFile>> GGUFFile::open(StringRef path) {
  auto opened = openRegularFile(path);
  if (!opened)
    return opened.takeError();
  std::unique_ptr<GGUFFile> file(
      new GGUFFile(path.str(), opened->first.release()));
  MOE_RETURN_IF_ERROR(file->parseHeader(opened->second));
  return std::move(file);
}

GGUFFile::~GGUFFile() { llvm::sys::fs::closeFile(handle); }

const GGUFValue *GGUFFile::find(StringRef key) const {
  auto it = values.find(key);
  return it == values.end() ? nullptr : &it->second;
}

const GGUFTensorInfo *GGUFFile::findTensor(StringRef name) const {
  auto it = index.find(name);
  return it == index.end() ? nullptr : &infos[it->second];
}

Expected<std::string> GGUFFile::readEncodedValue(const GGUFValue &value) const {
  std::string bytes(value.encodedSize, '\0');
  if (Error error =
          readFileRange(handle, value.fileOffset,
                        llvm::MutableArrayRef<char>(bytes.data(), bytes.size()),
                        filePath, "a metadata value"))
    return std::move(error);
  return bytes;
}

Error GGUFFile::readBytes(const GGUFTensorInfo &tensor, uint64_t byteOffset,
                          llvm::MutableArrayRef<uint8_t> dest) const {
  if (byteOffset > tensor.bytes || dest.size() > tensor.bytes - byteOffset)
    return makeError(filePath + ": tensor " + quoted(tensor.name) + " has " +
                     Twine(tensor.bytes) + " bytes; cannot read " +
                     Twine(dest.size()) + " from byte " + Twine(byteOffset));
  llvm::MutableArrayRef<char> chars(reinterpret_cast<char *>(dest.data()),
                                    dest.size());
  return readFileRange(handle, dataStart + tensor.offset + byteOffset, chars,
                       filePath, "tensor " + quoted(tensor.name));
}

/// Elements decoded per step: bounds the buffers of a read.
static constexpr uint64_t kChunkElements = uint64_t(1) << 20;

Error GGUFFile::readF32(const GGUFTensorInfo &tensor, uint64_t first,
                        llvm::MutableArrayRef<float> dest) const {
  uint64_t elements = tensor.numElements();
  if (first > elements || dest.size() > elements - first)
    return makeError(filePath + ": tensor " + quoted(tensor.name) + " has " +
                     Twine(elements) + " elements; cannot read " +
                     Twine(dest.size()) + " from element " + Twine(first));
  GGMLBlockLayout layout = ggmlBlockLayout(tensor.type);
  uint64_t perChunk = std::max<uint64_t>(1, kChunkElements / layout.elements);
  std::vector<uint8_t> raw;
  std::vector<float> decoded;
  for (uint64_t done = 0; done < dest.size();) {
    uint64_t element = first + done;
    uint64_t block = element / layout.elements;
    uint64_t lastBlock = (first + dest.size() - 1) / layout.elements;
    uint64_t blocks = std::min(lastBlock - block + 1, perChunk);
    raw.resize(blocks * layout.bytes);
    decoded.resize(blocks * layout.elements);
    MOE_RETURN_IF_ERROR(readBytes(tensor, block * layout.bytes, raw));
    dequantizeBlocks(tensor.type, raw.data(), decoded.data(), blocks);
    // The range may start and end inside a block: copy what it asks for.
    uint64_t skip = element - block * layout.elements;
    uint64_t count =
        std::min<uint64_t>(dest.size() - done, decoded.size() - skip);
    std::memcpy(dest.data() + done, decoded.data() + skip,
                count * sizeof(float));
    done += count;
  }
  return Error::success();
}
