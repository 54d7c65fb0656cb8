//===- SafeTensors.h - safetensors reader and writer ------------*- C++ -*-===//
//
// A safetensors file is an 8-byte little-endian header length N, N bytes of
// JSON `{name: {dtype, shape, data_offsets: [begin, end]}, "__metadata__":
// {string: string}}`, then the data region the offsets are relative to.
//
//===----------------------------------------------------------------------===//

#ifndef MOE_WEIGHTS_SAFETENSORS_H
#define MOE_WEIGHTS_SAFETENSORS_H

#include "moe/Weights/DType.h"

#include "llvm/ADT/SmallVector.h"
#include "llvm/ADT/StringMap.h"
#include "llvm/Support/Error.h"
#include "llvm/Support/FileSystem.h"

#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

namespace llvm {
class raw_ostream;
}

namespace mlir::moe::weights {

/// One tensor entry of a safetensors header.
struct TensorInfo {
  std::string name;
  DType dtype;
  llvm::SmallVector<int64_t, 4> shape;
  /// Byte offsets relative to the start of the data region, end exclusive.
  uint64_t begin = 0, end = 0;

  uint64_t numElements() const;
  uint64_t numBytes() const { return end - begin; }
};

/// The validated header of a safetensors file.
struct SafeTensorsHeader {
  /// Tensors in the order of their data offsets.
  std::vector<TensorInfo> tensors;
  std::map<std::string, std::string> metadata;
  /// Size of the header JSON (N) and of the data region.
  uint64_t headerSize = 0, dataSize = 0;
};

/// The largest header the reader accepts (the limit of the reference
/// implementation).
constexpr uint64_t kMaxHeaderSize = 100'000'000;

/// Parses and validates a header: well-formed JSON object without duplicate
/// keys, known dtypes, non-negative shapes, `data_offsets` inside a data
/// region of `dataSize` bytes, size equal to elements x dtype size (without
/// overflow), no overlapping tensors and no bytes of the data region left
/// unowned, string-to-string `__metadata__`. Errors start with `source`
/// (a file name) and name the tensor and field at fault.
llvm::Expected<SafeTensorsHeader>
parseSafeTensorsHeader(llvm::StringRef json, uint64_t dataSize,
                       llvm::StringRef source);

/// A validated safetensors file. Opening reads the header only, so opening a
/// 14 GB checkpoint costs a few kilobytes of reads; tensor data is read on
/// demand (see `read`).
class SafeTensorsFile {
public:
  /// Opens `path` and validates its header: the header length against the
  /// file size, then everything parseSafeTensorsHeader checks.
  static llvm::Expected<std::unique_ptr<SafeTensorsFile>>
  open(llvm::StringRef path);

  llvm::StringRef path() const { return filePath; }
  const SafeTensorsHeader &header() const { return parsed; }
  llvm::ArrayRef<TensorInfo> tensors() const { return parsed.tensors; }
  /// The entry named `name`, or null.
  const TensorInfo *find(llvm::StringRef name) const;
  /// Byte offset of the data region in the file (8 + N).
  uint64_t dataOffset() const { return 8 + parsed.headerSize; }

  /// Reads `dest.size()` raw little-endian bytes of `tensor`, starting
  /// `byteOffset` bytes into it. This is the one way tensor data is read (the
  /// page policy of the checkpoint layer): positioned reads into the
  /// caller's buffer, from the file opened when the header was read. Nothing
  /// stays mapped, so the resident set of a tool that streams a checkpoint
  /// stays at its buffers, whatever the checkpoint's size; the kernel's page
  /// cache keeps what it likes. Errors name the file and the tensor (a file
  /// that shrank since it was opened, an out-of-range request).
  llvm::Error read(const TensorInfo &tensor, uint64_t byteOffset,
                   llvm::MutableArrayRef<uint8_t> dest) const;
  /// All the bytes of `tensor`.
  llvm::Expected<std::vector<uint8_t>>
  readBytes(const TensorInfo &tensor) const;
  ~SafeTensorsFile();

private:
  SafeTensorsFile(std::string path, SafeTensorsHeader header,
                  llvm::sys::fs::file_t handle)
      : filePath(std::move(path)), parsed(std::move(header)), handle(handle) {}

  std::string filePath;
  SafeTensorsHeader parsed;
  llvm::StringMap<size_t> index;
  llvm::sys::fs::file_t handle;
};

/// Where the bytes of a tensor to write come from.
struct TensorSource {
  std::string name;
  DType dtype;
  llvm::SmallVector<int64_t, 4> shape;
  /// Either a byte range of an existing file (copied in the kernel with
  /// copy_file_range where possible)...
  std::string file;
  uint64_t fileOffset = 0;
  /// ... or a producer that writes exactly numBytes() bytes to the stream.
  std::function<llvm::Error(llvm::raw_ostream &)> produce;

  uint64_t numBytes() const;
};

/// Options of writeSafeTensorsCheckpoint.
struct WriterOptions {
  /// Shard size limit in bytes (a tensor larger than the limit gets a shard
  /// of its own); 0 writes a single file.
  uint64_t maxShardBytes = 0;
  /// File name stem: `<stem>.safetensors`, or
  /// `<stem>-00001-of-00003.safetensors` and `<stem>.safetensors.index.json`.
  std::string stem = "model";
  /// `__metadata__` of every shard.
  std::map<std::string, std::string> metadata;
  /// Called after each tensor with the bytes written so far and in all.
  std::function<void(uint64_t done, uint64_t total)> progress;
};

/// Writes `tensors` into directory `dir` (which must exist) as one or more
/// safetensors files in the given order, plus the index file when sharded.
/// Every file is written to a temporary name and renamed when complete, so
/// no partial file is ever visible; on error, nothing is left behind.
/// Memory stays bounded by the largest produced tensor, whatever the total.
llvm::Error writeSafeTensorsCheckpoint(llvm::StringRef dir,
                                       std::vector<TensorSource> tensors,
                                       const WriterOptions &options);

} // namespace mlir::moe::weights

#endif // MOE_WEIGHTS_SAFETENSORS_H
