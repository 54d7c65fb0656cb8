//===- FuzzerSupport.h - Scratch files of the libFuzzer targets -*- C++ -*-===//
//
// What the fuzzers that read whole checkpoint directories share: a scratch
// directory (tmpfs when there is one: every input is written to a file,
// and on a disk that makes fuzzing an order of magnitude slower), files
// written or the fuzzer stops, zero-filled safetensors files, and the tiny
// Llama base the adapter and export fuzzers bind their inputs to, and the
// context the export fuzzers parse their inputs in.
//
//===----------------------------------------------------------------------===//

#ifndef MOE_TOOLS_FUZZERSUPPORT_H
#define MOE_TOOLS_FUZZERSUPPORT_H

#include "mlir/IR/BuiltinOps.h"
#include "mlir/IR/OwningOpRef.h"
#include "llvm/ADT/ArrayRef.h"
#include "llvm/ADT/SmallString.h"
#include "llvm/ADT/StringRef.h"

#include <cstdint>
#include <string>
#include <vector>

namespace moe_fuzz {

/// `size` bytes of MLIR text parsed in a context with the dialects
/// moe-translate's exports parse their input with (registerDialects in
/// Translations.cpp) and verified; null when refused. Diagnostics of the
/// context are dropped: refusals are expected, their messages are not what
/// is fuzzed.
mlir::OwningOpRef<mlir::ModuleOp> parseExportInput(const uint8_t *data,
                                                   size_t size);

/// A fresh directory named after `prefix` (in /dev/shm when it exists);
/// aborts when none can be made.
std::string makeScratchDirectory(llvm::StringRef prefix);

/// `dir/name`.
std::string joinPath(llvm::StringRef dir, llvm::StringRef name);

/// Writes `contents` to `path`, or prints why not and aborts.
void writeFileOrAbort(llvm::StringRef path, llvm::StringRef contents);

/// Makes directory `path`, or prints why not and aborts.
void makeDirectoryOrAbort(llvm::StringRef path);

/// An F32 tensor of a fixture checkpoint, zero-filled.
struct ZeroTensor {
  std::string name;
  std::vector<int64_t> shape;
};

/// A safetensors file of `tensors`, in order.
std::string zeroSafetensors(llvm::ArrayRef<ZeroTensor> tensors);

/// The config.json of the tiny Llama: hidden 8, two heads of 4, one KV
/// head, FFN 16, vocabulary 32, `layers` layers.
std::string tinyLlamaConfig(int64_t layers);

/// Every tensor of the tiny Llama with `layers` layers.
std::vector<ZeroTensor> tinyLlamaTensors(int64_t layers);

/// Writes the tiny Llama (config.json and model.safetensors) into the
/// existing directory `dir`.
void writeTinyLlama(llvm::StringRef dir, int64_t layers);

/// The scratch directory of an export fuzzer, removed at exit: `base`, a
/// one-layer tiny Llama every scope is bound to, and `out`, the path of the
/// directory each export writes into (made afresh for each input).
struct ExportFixture {
  llvm::SmallString<128> dir;
  std::string base, out;

  explicit ExportFixture(llvm::StringRef prefix);
  ~ExportFixture();
};

/// The names in `dir`, hidden ones (a staging entry) included; aborts when
/// it cannot be listed.
std::vector<std::string> listDirectoryOrAbort(llvm::StringRef dir);

} // namespace moe_fuzz

#endif // MOE_TOOLS_FUZZERSUPPORT_H
