//===- export-hf-fuzzer.cpp - libFuzzer target of the HF export's entry --===//
//
// Each input is the MLIR text --export-hf reads, parsed with the dialects
// that translation registers and verified. A module that verifies goes
// through the export's planning without writing anything: the model
// function is picked, matched as a decoder, given a layout against a tiny
// one-layer Llama base, and its tensors are planned, with every moe.scope
// bound to that base (made once in a scratch directory; a fuzzed path is
// never read). The plan must name each tensor once, give each a size, and
// take what it copies from inside the files. Any crash, sanitizer report or
// broken invariant is a finding.
//
//===----------------------------------------------------------------------===//

#include "Layout.h"
#include "TensorPlan.h"

#include "moe/Analysis/DecoderStructure.h"
#include "moe/Analysis/ModelFunctions.h"
#include "moe/Dialect/MoeOps.h"
#include "moe/Formats/HF/HFConfig.h"
#include "moe/Formats/HF/TensorNames.h"
#include "moe/Weights/WeightSources.h"

#include "mlir/Dialect/Arith/IR/Arith.h"
#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/Dialect/Tensor/IR/Tensor.h"
#include "mlir/IR/Diagnostics.h"
#include "mlir/IR/MLIRContext.h"
#include "mlir/IR/Verifier.h"
#include "mlir/Parser/Parser.h"
#include "llvm/ADT/StringSet.h"
#include "llvm/Support/Endian.h"
#include "llvm/Support/FileSystem.h"
#include "llvm/Support/Path.h"
#include "llvm/Support/raw_ostream.h"

#include <cstdlib>
#include <string>

using namespace mlir;
using namespace mlir::moe;

/// Stops the fuzzer with a report: a property of the library was violated.
[[noreturn]] static void fail(const llvm::Twine &what) {
  llvm::errs() << "export-hf-fuzzer: " << what << "\n";
  std::abort();
}

/// The base: Llama, one layer, hidden 8, two heads of 4, one KV head, FFN
/// 16, vocab 32 (the seeds are mixes of it).
static constexpr llvm::StringLiteral kBaseConfig = R"({
  "architectures": ["LlamaForCausalLM"], "model_type": "llama",
  "hidden_size": 8, "intermediate_size": 16, "num_hidden_layers": 1,
  "num_attention_heads": 2, "num_key_value_heads": 1, "head_dim": 4,
  "vocab_size": 32, "max_position_embeddings": 64, "rms_norm_eps": 1e-06,
  "rope_theta": 10000.0, "hidden_act": "silu", "tie_word_embeddings": false
})";

static std::string joinPath(llvm::StringRef dir, llvm::StringRef name) {
  llvm::SmallString<128> path(dir);
  llvm::sys::path::append(path, name);
  return path.str().str();
}

static void writeFile(llvm::StringRef path, llvm::StringRef contents) {
  std::error_code ec;
  llvm::raw_fd_ostream out(path, ec);
  if (ec)
    fail("cannot write " + path + ": " + ec.message());
  out << contents;
}

/// The base's safetensors file: its tensors in F32, zero-filled.
static std::string baseCheckpoint() {
  std::vector<std::pair<std::string, std::vector<int64_t>>> tensors = {
      {hf::weightKey(hf::kEmbedTokens), {32, 8}},
      {hf::weightKey(hf::kFinalNorm), {8}},
      {hf::weightKey(hf::kLmHead), {32, 8}},
      {hf::weightKey(hf::inputNormModule(0)), {8}},
      {hf::weightKey(hf::postAttentionNormModule(0)), {8}},
      {hf::weightKey(hf::attentionModule(0, "q_proj")), {8, 8}},
      {hf::weightKey(hf::attentionModule(0, "k_proj")), {4, 8}},
      {hf::weightKey(hf::attentionModule(0, "v_proj")), {4, 8}},
      {hf::weightKey(hf::attentionModule(0, "o_proj")), {8, 8}},
      {hf::weightKey(hf::mlpModule(0, "gate_proj")), {16, 8}},
      {hf::weightKey(hf::mlpModule(0, "up_proj")), {16, 8}},
      {hf::weightKey(hf::mlpModule(0, "down_proj")), {8, 16}}};
  std::string header = "{";
  uint64_t offset = 0;
  for (const auto &[name, dims] : tensors) {
    uint64_t bytes = 4;
    std::string shape;
    for (int64_t dim : dims) {
      bytes *= dim;
      shape += (shape.empty() ? "" : ",") + std::to_string(dim);
    }
    header += (header.size() > 1 ? ",\"" : "\"") + name +
              "\":{\"dtype\":\"F32\",\"shape\":[" + shape +
              "],\"data_offsets\":[" + std::to_string(offset) + "," +
              std::to_string(offset + bytes) + "]}";
    offset += bytes;
  }
  header += "}";
  char length[8];
  llvm::support::endian::write64le(length, header.size());
  return std::string(length, 8) + header + std::string(offset, '\0');
}

namespace {
/// The base every scope is bound to, in a scratch directory of this fuzzer
/// process that is removed at exit.
struct Fixture {
  llvm::SmallString<128> dir;
  DecoderConfig config;

  Fixture();
  ~Fixture() { llvm::sys::fs::remove_directories(dir); }
};
} // namespace

Fixture::Fixture() {
  // tmpfs when there is one, as the other fuzzers.
  bool created = false;
  if (llvm::sys::fs::is_directory("/dev/shm"))
    for (int attempt = 0; attempt < 16 && !created; ++attempt) {
      llvm::sys::fs::getPotentiallyUniqueFileName(
          "/dev/shm/export-hf-fuzz-%%%%%%%%", dir);
      created = !llvm::sys::fs::create_directory(dir,
                                                 /*IgnoreExisting=*/false);
    }
  if (!created && llvm::sys::fs::createUniqueDirectory("export-hf-fuzz", dir))
    std::abort();
  std::string configPath = joinPath(dir, "config.json");
  writeFile(configPath, kBaseConfig);
  writeFile(joinPath(dir, "model.safetensors"), baseCheckpoint());
  llvm::Expected<DecoderConfig> parsed = readDecoderConfig(configPath);
  if (!parsed)
    fail("the base config is refused: " + llvm::toString(parsed.takeError()));
  config = std::move(*parsed);
}

static Fixture &fixture() {
  static Fixture instance;
  return instance;
}

/// The dialects of --export-hf (registerDialects in Translations.cpp).
static MLIRContext &context() {
  static MLIRContext *instance = [] {
    DialectRegistry registry;
    registerMoeDialect(registry);
    registry.insert<func::FuncDialect, arith::ArithDialect,
                    tensor::TensorDialect>();
    auto *created = new MLIRContext(registry, MLIRContext::Threading::DISABLED);
    created->loadAllAvailableDialects();
    return created;
  }();
  return *instance;
}

/// Checks a tensor plan: names once, sizes known, file ranges inside.
static void checkPlan(llvm::ArrayRef<weights::TensorSource> plan) {
  llvm::StringSet<> names;
  for (const weights::TensorSource &tensor : plan) {
    if (tensor.name.empty() || !names.insert(tensor.name).second)
      fail("the plan names tensor '" + tensor.name + "' twice or empty");
    uint64_t bytes = tensor.numBytes();
    if (bytes == UINT64_MAX)
      fail("tensor '" + tensor.name + "' has no size");
    if (tensor.produce)
      continue;
    uint64_t fileSize = 0;
    if (llvm::sys::fs::file_size(tensor.file, fileSize) ||
        tensor.fileOffset > fileSize || bytes > fileSize - tensor.fileOffset)
      fail("tensor '" + tensor.name + "' is copied from outside '" +
           tensor.file + "'");
  }
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  MLIRContext &ctx = context();
  // Refusals are expected; their messages are not the point here.
  ScopedDiagnosticHandler quiet(&ctx, [](Diagnostic &) { return success(); });
  // MLIR's lexer reads up to a terminating NUL, which libFuzzer's buffer
  // lacks: the parser is given a copy that has one.
  std::string text(reinterpret_cast<const char *>(data), size);
  OwningOpRef<ModuleOp> module = parseSourceString<ModuleOp>(text, &ctx);
  if (!module || failed(verify(*module)))
    return 0;

  llvm::Expected<func::FuncOp> func =
      pickModelFunction(*module, "", "--export-func");
  if (!func) {
    llvm::consumeError(func.takeError());
    return 0;
  }
  if (failed(hf_export::refuseUnstructuredFeatures(*func)))
    return 0;
  FailureOr<Decoder> decoder = matchDecoder(*func);
  if (failed(decoder))
    return 0;
  FailureOr<hf_export::LayoutChoice> choice =
      hf_export::chooseLayout(*decoder, fixture().config);
  if (failed(choice))
    return 0;

  WeightSourceOptions sources;
  for (ScopeOp scope : module->getOps<ScopeOp>())
    sources.scopePaths[scope.getSymName().str()] = fixture().dir.str().str();
  hf_export::CheckpointTensors tensors(*module, weights::DType::F32, sources);
  llvm::Expected<std::vector<weights::TensorSource>> plan =
      tensors.plan(*choice, *decoder);
  if (!plan) {
    llvm::consumeError(plan.takeError());
    return 0;
  }
  checkPlan(*plan);
  return 0;
}
