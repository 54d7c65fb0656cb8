//===- gguf-header-fuzzer.cpp - libFuzzer target of the GGUF reader -------===//
//
// Each input is a whole GGUF file. It is opened with GGUFFile (header
// validation), its tensors are dequantised in ranges that start and end
// inside blocks, and it is opened as a Checkpoint (the llama mapping and the
// config). What opens must read consistently: a range reads as the same
// slice of a larger read, and every value read is what findNonFinite says
// it is. Any crash, sanitizer report or inconsistency is a finding.
//
//===----------------------------------------------------------------------===//

#include "FuzzerSupport.h"

#include "moe/Weights/Checkpoint.h"
#include "moe/Weights/GGUF.h"
#include "moe/Weights/GGUFModel.h"

#include "llvm/Support/FileSystem.h"
#include "llvm/Support/raw_ostream.h"

#include <cmath>
#include <cstdlib>
#include <cstring>

using namespace mlir::moe::weights;

namespace {
/// A scratch directory of this fuzzer process, removed at exit.
struct Scratch {
  llvm::SmallString<128> dir;
  std::string input;

  Scratch() {
    dir = moe_fuzz::makeScratchDirectory("gguf-fuzz");
    input = moe_fuzz::joinPath(dir, "input.gguf");
  }
  ~Scratch() { llvm::sys::fs::remove_directories(dir); }
};
} // namespace

static Scratch &scratch() {
  static Scratch instance;
  return instance;
}

[[noreturn]] static void fail(const llvm::Twine &what) {
  llvm::errs() << "gguf-header-fuzzer: " << what << "\n";
  std::abort();
}

/// Elements read per tensor at most: a header may describe big tensors in a
/// small file only as far as the file's bytes go, but reading all of them
/// would slow the fuzzer down.
static constexpr uint64_t kMaxRead = 4096;

/// Reads `count` elements from `first` with `read`, then the same range in
/// two pieces split inside it, and checks that they agree bit for bit.
template <typename ReadFn>
static void checkRanges(llvm::StringRef name, uint64_t first, uint64_t count,
                        ReadFn read) {
  if (count == 0)
    return;
  std::vector<float> whole(count), pieces(count);
  if (llvm::Error error = read(first, llvm::MutableArrayRef<float>(whole))) {
    llvm::consumeError(std::move(error));
    return; // A file that changed or a failed read: an error, not a finding.
  }
  uint64_t split = count / 3;
  if (llvm::Error error =
          read(first, llvm::MutableArrayRef<float>(pieces.data(), split)))
    fail("tensor " + name +
         ": a prefix failed: " + llvm::toString(std::move(error)));
  if (llvm::Error error = read(
          first + split,
          llvm::MutableArrayRef<float>(pieces.data() + split, count - split)))
    fail("tensor " + name +
         ": a suffix failed: " + llvm::toString(std::move(error)));
  if (std::memcmp(whole.data(), pieces.data(), count * sizeof(float)) != 0)
    fail("tensor " + name + ": a range reads differently in pieces");
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  const std::string &path = scratch().input;
  moe_fuzz::writeFileOrAbort(
      path, llvm::StringRef(reinterpret_cast<const char *>(data), size));

  llvm::Expected<std::unique_ptr<GGUFFile>> file = GGUFFile::open(path);
  if (!file) {
    llvm::consumeError(file.takeError());
    return 0;
  }
  for (const GGUFTensorInfo &tensor : (*file)->tensors()) {
    uint64_t elements = tensor.numElements();
    if (tensor.offset + tensor.bytes > size)
      fail("tensor " + tensor.name + " accepted past the end of the file");
    uint64_t count = std::min(elements, kMaxRead);
    // From element 1, so that blocks are entered in the middle.
    uint64_t first = elements > count ? 1 : 0;
    checkRanges(tensor.name, first, count - first,
                [&](uint64_t at, llvm::MutableArrayRef<float> dest) {
                  return (*file)->readF32(tensor, at, dest);
                });
  }
  if (llvm::Expected<llvm::json::Object> config = ggufHuggingFaceConfig(**file);
      !config)
    llvm::consumeError(config.takeError());

  llvm::Expected<std::unique_ptr<Checkpoint>> checkpoint =
      Checkpoint::open(path);
  if (!checkpoint) {
    llvm::consumeError(checkpoint.takeError());
    return 0;
  }
  for (const std::string &name : (*checkpoint)->names()) {
    const TensorInfo *info = (*checkpoint)->find(name);
    if (!info)
      fail("listed tensor " + name + " is not found");
    uint64_t count = std::min(info->numElements(), kMaxRead);
    checkRanges(name, 0, count,
                [&](uint64_t at, llvm::MutableArrayRef<float> dest) {
                  return (*checkpoint)->readF32(name, at, dest);
                });
    llvm::Expected<std::optional<uint64_t>> found =
        (*checkpoint)->findNonFinite(name, 0, count);
    if (!found) {
      llvm::consumeError(found.takeError());
      continue;
    }
    if (*found) {
      float value = 0;
      if (llvm::Error error =
              (*checkpoint)->readF32(name, **found, {&value, 1}))
        fail("non-finite element of " + name +
             " cannot be read: " + llvm::toString(std::move(error)));
      if (std::isfinite(value))
        fail("findNonFinite named a finite element of " + name);
    }
  }
  return 0;
}
