//===- export-gguf-fuzzer.cpp - libFuzzer target of the GGUF export -------===//
//
// Each input is the MLIR text --export-gguf reads, parsed with the dialects
// that translation registers and verified. A module that verifies is
// exported whole (decoder match, layout, tokenizer conversion, tensors,
// staged writing) into a fresh directory, with every moe.scope bound to a
// tiny one-layer Llama base with a small byte-level BPE tokenizer (made once
// in a scratch directory; a fuzzed path is never read), its matrices in one
// of the export's types picked by a hash of the input. An export that
// succeeds must have written exactly the GGUF file, which must open with the
// reader as a `llama` model with an expert count, experts per token and a
// token per embedding row, every tensor named once and holding the bytes of
// its type and dimensions; one that fails must leave the directory empty.
// Any crash, sanitizer report or broken invariant is a finding.
//
//===----------------------------------------------------------------------===//

#include "FuzzerSupport.h"

#include "moe/Dialect/MoeOps.h"
#include "moe/Export/GGUFExport.h"
#include "moe/Weights/GGUF.h"
#include "moe/Weights/GGUFWriter.h"

#include "llvm/ADT/STLExtras.h"
#include "llvm/ADT/StringExtras.h"
#include "llvm/ADT/StringSet.h"
#include "llvm/Support/FileSystem.h"
#include "llvm/Support/Path.h"
#include "llvm/Support/raw_ostream.h"
#include "llvm/Support/xxhash.h"

#include <cstdlib>
#include <string>
#include <vector>

using namespace mlir;
using namespace mlir::moe;
using namespace moe_fuzz;

/// Stops the fuzzer with a report: a property of the library was violated.
[[noreturn]] static void fail(const llvm::Twine &what) {
  llvm::errs() << "export-gguf-fuzzer: " << what << "\n";
  std::abort();
}

static constexpr llvm::StringLiteral kModelName = "model.gguf";

/// The smallest tokenizer the export converts: byte-level BPE with
/// ByteLevel's own regex (llama.cpp's "gpt-2"), three special tokens and a
/// few characters, no merges; config.json's vocab_size pads it to 32.
static constexpr llvm::StringLiteral kTokenizerJson = R"({
  "version": "1.0",
  "added_tokens": [
    {"id": 0, "content": "<unk>", "special": true},
    {"id": 1, "content": "<s>", "special": true},
    {"id": 2, "content": "</s>", "special": true}
  ],
  "normalizer": null,
  "pre_tokenizer": {"type": "ByteLevel", "add_prefix_space": false,
                    "trim_offsets": true, "use_regex": true},
  "post_processor": null,
  "decoder": {"type": "ByteLevel", "add_prefix_space": true,
              "trim_offsets": true, "use_regex": true},
  "model": {
    "type": "BPE", "dropout": null, "unk_token": null,
    "continuing_subword_prefix": null, "end_of_word_suffix": null,
    "fuse_unk": false, "byte_fallback": false, "ignore_merges": false,
    "vocab": {"<unk>": 0, "<s>": 1, "</s>": 2, "a": 3, "b": 4, "c": 5,
              "\u0120": 6},
    "merges": []
  }
})";

static constexpr llvm::StringLiteral kTokenizerConfigJson = R"({
  "bos_token": "<s>", "eos_token": "</s>", "unk_token": "<unk>",
  "add_bos_token": true, "add_eos_token": false
})";

/// The export fixture, its base given a tokenizer the export converts.
static ExportFixture &fixture() {
  static ExportFixture instance("export-gguf-fuzz");
  static const bool tokenizerWritten = [] {
    writeFileOrAbort(joinPath(instance.base, "tokenizer.json"), kTokenizerJson);
    writeFileOrAbort(joinPath(instance.base, "tokenizer_config.json"),
                     kTokenizerConfigJson);
    return true;
  }();
  (void)tokenizerWritten;
  return instance;
}

/// The integer metadata `key` of `file`; fails when it is missing.
static int64_t integerOf(const weights::GGUFFile &file, llvm::StringRef key) {
  const weights::GGUFValue *value = file.find(key);
  if (!value || !value->isInteger())
    fail("the file has no integer " + key);
  return value->integer;
}

/// Checks what an export that succeeded wrote into `dir`.
static void checkExport(llvm::StringRef dir) {
  std::vector<std::string> names = listDirectoryOrAbort(dir);
  if (names != std::vector<std::string>{kModelName.str()})
    fail("the export wrote '" + llvm::join(names, "', '") +
         "' instead of the GGUF file");
  llvm::Expected<std::unique_ptr<weights::GGUFFile>> opened =
      weights::GGUFFile::open(joinPath(dir, kModelName));
  if (!opened)
    fail("the file does not open: " + llvm::toString(opened.takeError()));
  const weights::GGUFFile &file = **opened;

  const weights::GGUFValue *architecture = file.find("general.architecture");
  if (!architecture || architecture->type != weights::GGUFValue::String ||
      architecture->string != "llama")
    fail("general.architecture is not \"llama\"");
  int64_t experts = integerOf(file, "llama.expert_count");
  int64_t used = integerOf(file, "llama.expert_used_count");
  if (used < 1 || used > experts)
    fail("llama.expert_used_count " + llvm::Twine(used) + " of " +
         llvm::Twine(experts) + " experts");

  llvm::StringSet<> tensorNames;
  for (const weights::GGUFTensorInfo &tensor : file.tensors()) {
    if (!tensorNames.insert(tensor.name).second)
      fail("tensor '" + tensor.name + "' is written twice");
    uint64_t bytes = weights::ggmlTensorBytes(tensor.type, tensor.dims);
    if (tensor.bytes != bytes)
      fail("tensor '" + tensor.name + "' has " + llvm::Twine(tensor.bytes) +
           " bytes for " + llvm::Twine(bytes));
  }

  // llama.cpp reads one token per row of the embedding.
  const weights::GGUFTensorInfo *embedding =
      file.findTensor("token_embd.weight");
  const weights::GGUFValue *tokens = file.find("tokenizer.ggml.tokens");
  if (!embedding || embedding->dims.size() != 2)
    fail("the file has no token_embd.weight matrix");
  if (!tokens || tokens->type != weights::GGUFValue::Array ||
      tokens->count != uint64_t(embedding->dims[1]))
    fail("tokenizer.ggml.tokens is not one token per embedding row");
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  OwningOpRef<ModuleOp> module = parseExportInput(data, size);
  if (!module)
    return 0;

  // The export reads scopes bound by --moe-scope, a command-line option:
  // the fuzzer binds them by rewriting their paths, to the same effect.
  const ExportFixture &files = fixture();
  for (ScopeOp scope : module->getOps<ScopeOp>())
    scope.setPath(files.base);

  static constexpr GGUFWeightType kTypes[] = {
      GGUFWeightType::automatic, GGUFWeightType::f32, GGUFWeightType::f16,
      GGUFWeightType::bf16, GGUFWeightType::q8_0};
  GGUFExportOptions options;
  options.outputPath = joinPath(files.out, kModelName);
  options.weightType =
      kTypes[llvm::xxh3_64bits(llvm::ArrayRef(data, size)) % std::size(kTypes)];

  if (llvm::sys::fs::create_directory(files.out, /*IgnoreExisting=*/false))
    fail("cannot create " + files.out);
  if (succeeded(exportGGUF(*module, options, llvm::nulls())))
    checkExport(files.out);
  else if (std::vector<std::string> left = listDirectoryOrAbort(files.out);
           !left.empty())
    fail("a failed export left '" + llvm::join(left, "', '") + "'");
  if (llvm::sys::fs::remove_directories(files.out))
    fail("cannot remove " + files.out);
  return 0;
}
