//===- safetensors-index-fuzzer.cpp - libFuzzer target of shard indexes ---===//
//
// Each input is a model.safetensors.index.json. A scratch directory is made
// once: a checkpoint directory with two shards, a third file, a
// subdirectory with a shard and a symbolic link to a shard outside, and
// that outside shard beside the directory. The input is written as the
// directory's index and the directory opened with Checkpoint::open. A
// checkpoint that opens must hold exactly the tensors of the weight_map,
// each in the shard the index names, which must be a plain file name
// inside the directory, and each shard's tensors must map back to it. Any
// crash, sanitizer report or broken invariant is a finding.
//
//===----------------------------------------------------------------------===//

#include "FuzzerSupport.h"

#include "moe/Support/StrictJson.h"
#include "moe/Weights/Checkpoint.h"

#include "llvm/Support/FileSystem.h"
#include "llvm/Support/raw_ostream.h"

#include <cstdlib>
#include <map>

using namespace mlir::moe;
using namespace mlir::moe::weights;
using namespace moe_fuzz;

/// Stops the fuzzer with a report: a property of the library was violated.
[[noreturn]] static void fail(const llvm::Twine &what) {
  llvm::errs() << "safetensors-index-fuzzer: " << what << "\n";
  std::abort();
}

/// A safetensors file of one-element F32 tensors named `names`.
static std::string shardOf(llvm::ArrayRef<llvm::StringRef> names) {
  std::vector<ZeroTensor> tensors;
  for (llvm::StringRef name : names)
    tensors.push_back({name.str(), {1}});
  return zeroSafetensors(tensors);
}

namespace {
/// The files every input is checked against, in a scratch directory of
/// this fuzzer process that is removed at exit:
///   outside.safetensors                     {a, b}, beside the checkpoint
///   ckpt/model-00001-of-00002.safetensors   {a, b}
///   ckpt/model-00002-of-00002.safetensors   {c}
///   ckpt/extra.safetensors                  {d}
///   ckpt/sub/inner.safetensors              {c}
///   ckpt/link.safetensors -> ../outside.safetensors
///   ckpt/model.safetensors.index.json       the input
struct Fixture {
  llvm::SmallString<128> dir;
  std::string checkpoint, index;

  Fixture();
  ~Fixture() { llvm::sys::fs::remove_directories(dir); }
};
} // namespace

Fixture::Fixture() {
  dir = makeScratchDirectory("safetensors-index-fuzz");
  checkpoint = joinPath(dir, "ckpt");
  std::string sub = joinPath(checkpoint, "sub");
  for (const std::string &path : {checkpoint, sub})
    makeDirectoryOrAbort(path);
  writeFileOrAbort(joinPath(dir, "outside.safetensors"), shardOf({"a", "b"}));
  writeFileOrAbort(joinPath(checkpoint, "model-00001-of-00002.safetensors"),
                   shardOf({"a", "b"}));
  writeFileOrAbort(joinPath(checkpoint, "model-00002-of-00002.safetensors"),
                   shardOf({"c"}));
  writeFileOrAbort(joinPath(checkpoint, "extra.safetensors"), shardOf({"d"}));
  writeFileOrAbort(joinPath(sub, "inner.safetensors"), shardOf({"c"}));
  if (llvm::sys::fs::create_link("../outside.safetensors",
                                 joinPath(checkpoint, "link.safetensors")))
    fail("cannot link to the outside shard");
  index = joinPath(checkpoint, "model.safetensors.index.json");
}

static Fixture &fixture() {
  static Fixture instance;
  return instance;
}

/// The file name a shard path has inside the checkpoint directory; fails
/// unless the path is `<checkpoint>/<plain file name>`.
static llvm::StringRef shardName(llvm::StringRef shardPath) {
  llvm::StringRef name = shardPath;
  if (!name.consume_front(fixture().checkpoint) || !name.consume_front("/"))
    fail("an accepted shard is outside the directory: " + shardPath);
  if (name.empty() || name == "." || name == ".." ||
      name.find_first_of(llvm::StringRef("/\\\0", 3)) != llvm::StringRef::npos)
    fail("an accepted shard name is not a plain file name: " + shardPath);
  return name;
}

/// Checks a checkpoint that opened against the weight_map of its index.
static void checkAccepted(const Checkpoint &checkpoint, llvm::StringRef text) {
  StrictJson parsed = parseJsonStrictly(text);
  const llvm::json::Object *root =
      parsed.value ? parsed.value->getAsObject() : nullptr;
  const llvm::json::Object *weightMap =
      root ? root->getObject("weight_map") : nullptr;
  if (!weightMap)
    fail("an index without a weight_map object was accepted");

  std::map<std::string, std::string> expected;
  for (const auto &[tensor, shard] : *weightMap) {
    std::optional<llvm::StringRef> name = shard.getAsString();
    if (!name)
      fail("a weight_map entry that is not a string was accepted");
    expected[tensor.str()] = name->str();
  }
  std::vector<std::string> names = checkpoint.names();
  if (names.size() != expected.size())
    fail("the checkpoint holds " + llvm::Twine(names.size()) +
         " tensors, its weight_map " + llvm::Twine(expected.size()));
  for (const std::string &tensor : names) {
    auto listed = expected.find(tensor);
    if (listed == expected.end())
      fail("tensor '" + tensor + "' is not in the weight_map");
    const TensorInfo *info = checkpoint.find(tensor);
    SafeTensorsFile *shard = checkpoint.fileOf(tensor);
    if (!info || !shard || shard->find(tensor) != info)
      fail("tensor '" + tensor + "' is not the entry of its shard");
    if (shardName(shard->path()) != listed->second)
      fail("tensor '" + tensor + "' is in '" + shard->path() +
           "', its weight_map says '" + listed->second + "'");
    // One shard per tensor: every tensor of this shard maps back to it.
    for (const TensorInfo &other : shard->tensors())
      if (checkpoint.fileOf(other.name) != shard)
        fail("tensor '" + other.name + "' of shard '" + shard->path() +
             "' maps to another shard");
    llvm::Expected<std::vector<uint8_t>> bytes = checkpoint.readBytes(tensor);
    if (!bytes)
      fail("cannot read tensor '" + tensor +
           "': " + llvm::toString(bytes.takeError()));
  }
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  llvm::StringRef text(reinterpret_cast<const char *>(data), size);
  writeFileOrAbort(fixture().index, text);
  llvm::Expected<std::unique_ptr<Checkpoint>> checkpoint =
      Checkpoint::open(fixture().checkpoint);
  if (!checkpoint) {
    llvm::consumeError(checkpoint.takeError());
    return 0;
  }
  checkAccepted(**checkpoint, text);
  return 0;
}
