//===- safetensors-header-fuzzer.cpp - libFuzzer target of the reader -----===//
//
// Each input is a whole safetensors file (8-byte length, header, data). It
// goes through parseSafeTensorsHeader directly and, as a file, through
// SafeTensorsFile and Checkpoint; what parses is written back with the
// writer and must read back identically. Any crash, sanitizer report or
// broken round trip is a finding.
//
//===----------------------------------------------------------------------===//

#include "FuzzerSupport.h"

#include "moe/Weights/Checkpoint.h"
#include "moe/Weights/SafeTensors.h"

#include "llvm/Support/Endian.h"
#include "llvm/Support/FileSystem.h"
#include "llvm/Support/Path.h"
#include "llvm/Support/raw_ostream.h"

#include <cstdlib>
#include <cstring>

using namespace mlir::moe::weights;

namespace {
/// A scratch directory of this fuzzer process, removed at exit.
struct Scratch {
  llvm::SmallString<128> dir;
  std::string input, output;

  Scratch() {
    dir = moe_fuzz::makeScratchDirectory("safetensors-fuzz");
    input = moe_fuzz::joinPath(dir, "input.safetensors");
    output = moe_fuzz::joinPath(dir, "out");
    moe_fuzz::makeDirectoryOrAbort(output);
  }
  ~Scratch() { llvm::sys::fs::remove_directories(dir); }
};
} // namespace

static Scratch &scratch() {
  static Scratch instance;
  return instance;
}

/// Stops the fuzzer with a report: a property of the library was violated.
[[noreturn]] static void fail(const llvm::Twine &what) {
  llvm::errs() << "safetensors-header-fuzzer: " << what << "\n";
  std::abort();
}

static bool sameHeader(const SafeTensorsHeader &a, const SafeTensorsHeader &b) {
  if (a.tensors.size() != b.tensors.size() || a.metadata != b.metadata ||
      a.dataSize != b.dataSize)
    return false;
  for (size_t i = 0; i < a.tensors.size(); ++i) {
    const TensorInfo &x = a.tensors[i], &y = b.tensors[i];
    if (x.name != y.name || x.dtype != y.dtype || x.shape != y.shape ||
        x.begin != y.begin || x.end != y.end)
      return false;
  }
  return true;
}

/// Reads every tensor of a valid file, converting the float ones, then
/// writes the file back from its own byte ranges and compares.
static void exerciseValidFile(SafeTensorsFile &file) {
  auto checkpoint = Checkpoint::open(file.path());
  if (!checkpoint)
    fail("Checkpoint::open refused what SafeTensorsFile::open accepted: " +
         llvm::toString(checkpoint.takeError()));
  std::vector<TensorSource> sources;
  for (const TensorInfo &tensor : file.tensors()) {
    auto bytes = file.readBytes(tensor);
    if (!bytes)
      fail("readBytes() failed on a valid file: " +
           llvm::toString(bytes.takeError()));
    if (isReadableFloat(tensor.dtype)) {
      auto values = (*checkpoint)->readF32(tensor.name);
      if (!values)
        fail("readF32 failed: " + llvm::toString(values.takeError()));
    } else if (auto values = (*checkpoint)->readF32(tensor.name)) {
      fail("readF32 accepted a non-float dtype");
    } else {
      llvm::consumeError(values.takeError());
    }
    TensorSource source;
    source.name = tensor.name;
    source.dtype = tensor.dtype;
    source.shape = tensor.shape;
    source.file = file.path().str();
    source.fileOffset = file.dataOffset() + tensor.begin;
    sources.push_back(std::move(source));
  }

  WriterOptions options;
  options.metadata = file.header().metadata;
  if (llvm::Error error =
          writeSafeTensorsCheckpoint(scratch().output, sources, options))
    fail("cannot write back a valid file: " + llvm::toString(std::move(error)));
  auto written = SafeTensorsFile::open(scratch().output + "/model.safetensors");
  if (!written)
    fail("cannot read back what was written: " +
         llvm::toString(written.takeError()));
  if (!sameHeader(file.header(), (*written)->header()))
    fail("the header changed in the round trip");
  for (const TensorInfo &tensor : file.tensors()) {
    auto before = file.readBytes(tensor);
    auto after = (*written)->readBytes(*(*written)->find(tensor.name));
    if (!before || !after || *before != *after)
      fail("tensor bytes changed in the round trip");
  }
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  llvm::StringRef input(reinterpret_cast<const char *>(data), size);

  // The header parser alone, as SafeTensorsFile::open would call it.
  if (size >= 8) {
    uint64_t headerSize = llvm::support::endian::read64le(data);
    if (headerSize <= size - 8) {
      auto header = parseSafeTensorsHeader(input.substr(8, headerSize),
                                           size - 8 - headerSize, "fuzz");
      if (!header)
        llvm::consumeError(header.takeError());
    }
  }
  // The whole input as a header text too: the JSON paths without the need
  // to get the length prefix right.
  auto asHeader = parseSafeTensorsHeader(input, 0, "fuzz");
  if (!asHeader)
    llvm::consumeError(asHeader.takeError());

  // The whole-file path.
  {
    std::error_code ec;
    llvm::raw_fd_ostream out(scratch().input, ec);
    if (ec)
      fail("cannot write the input file: " + ec.message());
    out << input;
  }
  auto file = SafeTensorsFile::open(scratch().input);
  if (!file) {
    llvm::consumeError(file.takeError());
    return 0;
  }
  exerciseValidFile(**file);
  return 0;
}
