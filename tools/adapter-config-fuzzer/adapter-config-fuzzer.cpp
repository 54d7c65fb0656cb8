//===- adapter-config-fuzzer.cpp - libFuzzer target of adapter configs ----===//
//
// Each input is a PEFT adapter_config.json. The importer reads it inline
// while it imports an adapter (readAdapter in HFImporter.cpp), so the input
// goes through importHuggingFace: a tiny two-layer Llama base and two
// adapters are made once in a scratch directory, and the input is the
// adapter_config.json of both. One adapter holds LoRA factors of ranks 2
// and 4 on three modules, the other a rank-0 pair, which only a missing
// rank check would let through. An import that succeeds must verify and
// give every adapted module one moe.lora_linear with a rank in
// [1, 65536] and a finite scale. Any crash, sanitizer report or broken
// invariant is a finding.
//
//===----------------------------------------------------------------------===//

#include "moe/Dialect/MoeOps.h"
#include "moe/Formats/HF/TensorNames.h"
#include "moe/Import/HFImporter.h"

#include "mlir/Dialect/Arith/IR/Arith.h"
#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/Dialect/Tensor/IR/Tensor.h"
#include "mlir/IR/Diagnostics.h"
#include "mlir/IR/MLIRContext.h"
#include "mlir/IR/Verifier.h"
#include "llvm/Support/Endian.h"
#include "llvm/Support/FileSystem.h"
#include "llvm/Support/Path.h"
#include "llvm/Support/raw_ostream.h"

#include <cmath>
#include <cstdlib>
#include <string>

using namespace mlir;
using namespace mlir::moe;

/// Stops the fuzzer with a report: a property of the library was violated.
[[noreturn]] static void fail(const llvm::Twine &what) {
  llvm::errs() << "adapter-config-fuzzer: " << what << "\n";
  std::abort();
}

namespace {
/// A tensor of a fixture checkpoint (F32, zeros).
struct FixtureTensor {
  std::string name;
  std::vector<int64_t> shape;
};

/// The checkpoints every input is imported with, in a scratch directory of
/// this fuzzer process that is removed at exit.
struct Fixture {
  llvm::SmallString<128> dir;
  std::string base, adapter, emptyAdapter, input;

  Fixture();
  ~Fixture() { llvm::sys::fs::remove_directories(dir); }
};
} // namespace

/// The base: Llama, hidden 8, two heads of 4, one KV head, FFN 16, vocab 32.
static constexpr llvm::StringLiteral kBaseConfig = R"({
  "architectures": ["LlamaForCausalLM"], "model_type": "llama",
  "hidden_size": 8, "intermediate_size": 16, "num_hidden_layers": 2,
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

/// A safetensors file of zero-filled F32 tensors.
static std::string safetensorsOf(llvm::ArrayRef<FixtureTensor> tensors) {
  std::string header = "{";
  uint64_t offset = 0;
  for (const FixtureTensor &tensor : tensors) {
    uint64_t bytes = 4;
    std::string shape;
    for (int64_t dim : tensor.shape) {
      bytes *= dim;
      shape += (shape.empty() ? "" : ",") + std::to_string(dim);
    }
    header += (header.size() > 1 ? "," : "") + ("\"" + tensor.name) +
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

static std::vector<FixtureTensor> baseTensors() {
  std::vector<FixtureTensor> tensors = {
      {hf::weightKey(hf::kEmbedTokens), {32, 8}},
      {hf::weightKey(hf::kFinalNorm), {8}},
      {hf::weightKey(hf::kLmHead), {32, 8}}};
  for (int64_t layer = 0; layer < 2; ++layer) {
    tensors.push_back({hf::weightKey(hf::inputNormModule(layer)), {8}});
    tensors.push_back({hf::weightKey(hf::postAttentionNormModule(layer)), {8}});
    for (auto [projection, out] :
         {std::pair{"q_proj", 8}, {"k_proj", 4}, {"v_proj", 4}, {"o_proj", 8}})
      tensors.push_back(
          {hf::weightKey(hf::attentionModule(layer, projection)), {out, 8}});
    tensors.push_back(
        {hf::weightKey(hf::mlpModule(layer, "gate_proj")), {16, 8}});
    tensors.push_back(
        {hf::weightKey(hf::mlpModule(layer, "up_proj")), {16, 8}});
    tensors.push_back(
        {hf::weightKey(hf::mlpModule(layer, "down_proj")), {8, 16}});
  }
  return tensors;
}

/// The PEFT factors of `module` (out x in) at `rank`.
static void addLora(std::vector<FixtureTensor> &tensors, llvm::StringRef module,
                    int64_t out, int64_t in, int64_t rank) {
  std::string prefix = "base_model.model.";
  tensors.push_back({prefix + hf::loraAKey(module), {rank, in}});
  tensors.push_back({prefix + hf::loraBKey(module), {out, rank}});
}

Fixture::Fixture() {
  // tmpfs when there is one: every input is written to a file, and on a
  // disk that makes fuzzing an order of magnitude slower.
  bool created = false;
  if (llvm::sys::fs::is_directory("/dev/shm"))
    for (int attempt = 0; attempt < 16 && !created; ++attempt) {
      llvm::sys::fs::getPotentiallyUniqueFileName(
          "/dev/shm/adapter-config-fuzz-%%%%%%%%", dir);
      created = !llvm::sys::fs::create_directory(dir,
                                                 /*IgnoreExisting=*/false);
    }
  if (!created &&
      llvm::sys::fs::createUniqueDirectory("adapter-config-fuzz", dir))
    std::abort();
  base = joinPath(dir, "base");
  adapter = joinPath(dir, "adapter");
  emptyAdapter = joinPath(dir, "empty");
  for (const std::string &sub : {base, adapter, emptyAdapter})
    if (llvm::sys::fs::create_directory(sub))
      fail("cannot create " + sub);
  writeFile(joinPath(base, "config.json"), kBaseConfig);
  writeFile(joinPath(base, "model.safetensors"), safetensorsOf(baseTensors()));

  // Rank 2 unless a pattern says otherwise: layer 1's v_proj has rank 4,
  // and an FFN module is adapted too (its layer is then decomposed).
  std::vector<FixtureTensor> lora;
  addLora(lora, hf::attentionModule(0, "q_proj"), 8, 8, 2);
  addLora(lora, hf::attentionModule(1, "v_proj"), 4, 8, 4);
  addLora(lora, hf::mlpModule(1, "down_proj"), 8, 16, 2);
  writeFile(joinPath(adapter, "adapter_model.safetensors"),
            safetensorsOf(lora));
  std::vector<FixtureTensor> empty;
  addLora(empty, hf::attentionModule(0, "k_proj"), 4, 8, 0);
  writeFile(joinPath(emptyAdapter, "adapter_model.safetensors"),
            safetensorsOf(empty));

  // One input file, read by both adapters through a symbolic link.
  input = joinPath(adapter, "adapter_config.json");
  writeFile(input, "{}");
  if (llvm::sys::fs::create_link(input,
                                 joinPath(emptyAdapter, "adapter_config.json")))
    fail("cannot link the empty adapter's config");
}

static Fixture &fixture() {
  static Fixture instance;
  return instance;
}

static MLIRContext &context() {
  static MLIRContext *instance = [] {
    auto *created = new MLIRContext(MLIRContext::Threading::DISABLED);
    created->loadDialect<MoeDialect, func::FuncDialect, arith::ArithDialect,
                         tensor::TensorDialect>();
    return created;
  }();
  return *instance;
}

/// Imports the base with the adapter in `dir`; checks what an import that
/// succeeds must hold. `modules` is how many modules the adapter adapts.
static void importAdapter(const std::string &dir, size_t modules) {
  MLIRContext &ctx = context();
  // Refusals are expected; their messages are not the point here.
  ScopedDiagnosticHandler quiet(&ctx, [](Diagnostic &) { return success(); });
  OwningOpRef<ModuleOp> module(ModuleOp::create(UnknownLoc::get(&ctx)));
  ImportRequest request;
  request.base = {"base", fixture().base};
  request.adapters.push_back({"adapter", dir});
  if (failed(importHuggingFace(*module, request)))
    return;
  if (failed(verify(*module)))
    fail("an imported module does not verify");
  auto adapted = module->lookupSymbol<func::FuncOp>("adapter");
  if (!adapted)
    fail("the import has no function of the adapter");
  size_t count = 0;
  adapted.walk([&](LoraLinearOp op) {
    ++count;
    int64_t rank = op.getLoraA().getType().getShape()[0];
    if (rank < 1 || rank > 65536)
      fail("an accepted LoRA rank is " + llvm::Twine(rank));
    double scale = op.getScale().convertToDouble();
    if (!std::isfinite(scale))
      fail("an accepted LoRA scale is " + std::to_string(scale));
  });
  if (count != modules)
    fail("the adapter adapts " + llvm::Twine(modules) + " modules but " +
         llvm::Twine(count) + " moe.lora_linear ops were imported");
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  writeFile(fixture().input,
            llvm::StringRef(reinterpret_cast<const char *>(data), size));
  importAdapter(fixture().adapter, /*modules=*/3);
  importAdapter(fixture().emptyAdapter, /*modules=*/1);
  return 0;
}
