//===- GGUF.h - GGUF reader --------------------------------------*- C++
//-*-===//
//
// A GGUF file (llama.cpp's format, versions 2 and 3) is a little-endian
// header: magic "GGUF", version, tensor and metadata counts, typed key/value
// metadata, tensor infos (name, dimensions innermost first, ggml type, data
// offset); then, at the next multiple of `general.alignment`, the data
// region the offsets are relative to. Quantised types store blocks of
// elements along the innermost dimension.
//
//===----------------------------------------------------------------------===//

#ifndef MOE_WEIGHTS_GGUF_H
#define MOE_WEIGHTS_GGUF_H

#include "llvm/ADT/ArrayRef.h"
#include "llvm/ADT/SmallVector.h"
#include "llvm/ADT/StringMap.h"
#include "llvm/Support/Error.h"
#include "llvm/Support/FileSystem.h"

#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace mlir::moe::weights {

/// The ggml tensor types the reader dequantises; files with other types are
/// refused, naming the type.
enum class GGMLType : uint32_t {
  F32 = 0,
  F16 = 1,
  Q4_0 = 2,
  Q4_1 = 3,
  Q8_0 = 8,
  Q4_K = 12,
  Q6_K = 14,
  BF16 = 30,
};

/// The ggml name of type number `type` ("Q5_K", ...), including the types
/// the reader does not dequantise; empty for numbers ggml does not define.
llvm::StringRef ggmlTypeName(uint32_t type);
/// The dequantised type of number `type`; std::nullopt for the others.
std::optional<GGMLType> supportedGGMLType(uint32_t type);

/// Elements per block and bytes per block of a type (1 element for the
/// float types).
struct GGMLBlockLayout {
  uint32_t elements, bytes;
};
GGMLBlockLayout ggmlBlockLayout(GGMLType type);

/// Decodes `blocks` whole blocks of `type` from `source` into `blocks x
/// elements` floats, as ggml's dequantize_row functions compute them.
void dequantizeBlocks(GGMLType type, const uint8_t *source, float *dest,
                      size_t blocks);

/// A metadata value. Arrays keep their element type and count only: their
/// contents (token lists, merges) are skipped, not held.
struct GGUFValue {
  enum Type : uint32_t {
    UInt8 = 0,
    Int8 = 1,
    UInt16 = 2,
    Int16 = 3,
    UInt32 = 4,
    Int32 = 5,
    Float32 = 6,
    Bool = 7,
    String = 8,
    Array = 9,
    UInt64 = 10,
    Int64 = 11,
    Float64 = 12,
  };
  Type type = UInt8;
  /// Integers and booleans (unsigned values above INT64_MAX are refused).
  int64_t integer = 0;
  double number = 0;
  std::string string;
  Type elementType = UInt8;
  uint64_t count = 0;
  /// Where the encoded value (after its type) lies in the file, so that a
  /// writer can copy it whole (GGUFFile::readEncodedValue).
  uint64_t fileOffset = 0, encodedSize = 0;

  bool isInteger() const;
  bool isNumber() const {
    return isInteger() || type == Float32 || type == Float64;
  }
};

/// The spelling of a metadata value type ("uint32", "array", ...).
llvm::StringRef ggufValueTypeName(uint32_t type);

/// One tensor info of a GGUF header.
struct GGUFTensorInfo {
  std::string name;
  GGMLType type;
  /// Dimensions innermost first, as stored (ne[0] is the row length).
  llvm::SmallVector<int64_t, 4> dims;
  /// Byte offset relative to the data region, and byte size.
  uint64_t offset = 0, bytes = 0;

  uint64_t numElements() const;
};

/// ggml's limit on a tensor's dimensions, and the alignment of the data
/// when `general.alignment` does not say.
constexpr uint32_t kMaxGGUFDims = 4;
constexpr uint32_t kDefaultGGUFAlignment = 32;

/// The largest metadata string (chat templates are a few kilobytes).
constexpr uint64_t kMaxGGUFStringSize = uint64_t(16) << 20;

/// A validated GGUF file. Opening reads the header only; tensor data is read
/// on demand with positioned reads into bounded buffers.
class GGUFFile {
public:
  /// Opens `path` and validates its header: magic and version; every count,
  /// string and array against the bytes left in the file; unique keys and
  /// tensor names; at most 4 dimensions whose element count fits in 63 bits;
  /// types the reader dequantises, with rows made of whole blocks; a power
  /// of two `general.alignment`; tensor offsets aligned, inside the data
  /// region and not overlapping. Errors name the file and the key or tensor.
  static llvm::Expected<std::unique_ptr<GGUFFile>> open(llvm::StringRef path);

  llvm::StringRef path() const { return filePath; }
  uint32_t version() const { return formatVersion; }
  const llvm::StringMap<GGUFValue> &metadata() const { return values; }
  /// The value of `key`, or null.
  const GGUFValue *find(llvm::StringRef key) const;
  llvm::ArrayRef<GGUFTensorInfo> tensors() const { return infos; }
  const GGUFTensorInfo *findTensor(llvm::StringRef name) const;
  /// The bytes of `value` as the file encodes them (after its type): what a
  /// GGUF writer copies to carry the entry over unchanged.
  llvm::Expected<std::string> readEncodedValue(const GGUFValue &value) const;

  /// Byte offset of the data region in the file.
  uint64_t dataOffset() const { return dataStart; }

  /// Elements [first, first + dest.size()) of `tensor` (in storage order)
  /// dequantised to floats. The blocks holding them are read in bounded
  /// chunks, so a range may start and end inside a block.
  llvm::Error readF32(const GGUFTensorInfo &tensor, uint64_t first,
                      llvm::MutableArrayRef<float> dest) const;

  ~GGUFFile();

private:
  GGUFFile(std::string path, llvm::sys::fs::file_t handle)
      : filePath(std::move(path)), handle(handle) {}
  llvm::Error parseHeader(uint64_t fileSize);
  llvm::Error readBytes(const GGUFTensorInfo &tensor, uint64_t byteOffset,
                        llvm::MutableArrayRef<uint8_t> dest) const;

  std::string filePath;
  llvm::sys::fs::file_t handle;
  uint32_t formatVersion = 0;
  llvm::StringMap<GGUFValue> values;
  std::vector<GGUFTensorInfo> infos;
  llvm::StringMap<size_t> index;
  uint64_t dataStart = 0, dataSize = 0;
};

} // namespace mlir::moe::weights

#endif // MOE_WEIGHTS_GGUF_H
