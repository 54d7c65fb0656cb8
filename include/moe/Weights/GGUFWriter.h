//===- GGUFWriter.h - GGUF writer --------------------------------*- C++
//-*-===//
//
// Writes GGUF version 3 files: typed metadata, tensor infos (dimensions
// innermost first) and the aligned data region, each tensor's bytes streamed
// from a producer, the file written under a temporary name and renamed when
// complete.
//
//===----------------------------------------------------------------------===//

#ifndef MOE_WEIGHTS_GGUFWRITER_H
#define MOE_WEIGHTS_GGUFWRITER_H

#include "moe/Weights/GGUF.h"

#include "llvm/ADT/ArrayRef.h"
#include "llvm/ADT/StringSet.h"
#include "llvm/Support/raw_ostream.h"

#include <functional>

namespace mlir::moe::weights {

/// The metadata of a GGUF file being written, encoded as entries are added
/// (in the order they are added). A key may be added once.
class GGUFMetadata {
public:
  void addUInt32(llvm::StringRef key, uint32_t value);
  void addInt32(llvm::StringRef key, int32_t value);
  void addUInt64(llvm::StringRef key, uint64_t value);
  void addFloat32(llvm::StringRef key, float value);
  void addBool(llvm::StringRef key, bool value);
  void addString(llvm::StringRef key, llvm::StringRef value);
  void addStringArray(llvm::StringRef key, llvm::ArrayRef<std::string> values);
  void addFloat32Array(llvm::StringRef key, llvm::ArrayRef<float> values);
  void addInt32Array(llvm::StringRef key, llvm::ArrayRef<int32_t> values);
  /// An entry whose value is already encoded (after its type), such as one
  /// carried over from another file (GGUFFile::readEncodedValue).
  void addEncoded(llvm::StringRef key, GGUFValue::Type type,
                  llvm::StringRef encodedValue);

  bool contains(llvm::StringRef key) const { return keys.contains(key); }
  uint64_t size() const { return keys.size(); }
  /// The entries as the file stores them.
  llvm::StringRef encoded() const { return bytes; }

private:
  /// Starts an entry: its key and type.
  void begin(llvm::StringRef key, GGUFValue::Type type);

  llvm::StringSet<> keys;
  std::string bytes;
};

/// A tensor of a GGUF file being written.
struct GGUFTensorSource {
  std::string name;
  GGMLType type;
  /// Innermost first (dims[0] is the row length, a whole number of blocks).
  llvm::SmallVector<int64_t, 4> dims;
  /// Writes exactly ggmlTensorBytes(type, dims) bytes.
  std::function<llvm::Error(llvm::raw_ostream &)> produce;
};

/// Bytes of a tensor of `type` with dimensions `dims` (innermost first).
uint64_t ggmlTensorBytes(GGMLType type, llvm::ArrayRef<int64_t> dims);

/// Encodes `blocks` whole blocks of `type` from `blocks x elements` floats:
/// the float types by conversion, Q8_0 as ggml's reference quantiser
/// (quantize_row_q8_0_ref) computes it.
void quantizeBlocks(GGMLType type, const float *source, uint8_t *dest,
                    size_t blocks);

/// Options of writeGGUF.
struct GGUFWriterOptions {
  /// `general.alignment`, written to the metadata when not ggml's default 32.
  uint32_t alignment = 32;
  /// Replace an existing file at the path.
  bool replace = false;
  /// Called after each tensor with the bytes written so far and in all.
  std::function<void(uint64_t done, uint64_t total)> progress;
};

/// Writes the GGUF file `path` from `metadata` and `tensors` (in that
/// order). The file is written as `path` plus a temporary suffix and renamed
/// into place when complete; on error nothing is left. Errors name the file
/// and the tensor.
llvm::Error writeGGUF(llvm::StringRef path, GGUFMetadata metadata,
                      llvm::ArrayRef<GGUFTensorSource> tensors,
                      const GGUFWriterOptions &options = {});

} // namespace mlir::moe::weights

#endif // MOE_WEIGHTS_GGUFWRITER_H
