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

#include "FuzzerSupport.h"

#include "moe/Dialect/MoeOps.h"
#include "moe/Formats/HF/TensorNames.h"
#include "moe/Import/HFImporter.h"

#include "mlir/Dialect/Arith/IR/Arith.h"
#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/Dialect/Tensor/IR/Tensor.h"
#include "mlir/IR/Diagnostics.h"
#include "mlir/IR/MLIRContext.h"
#include "mlir/IR/Verifier.h"
#include "llvm/Support/FileSystem.h"
#include "llvm/Support/raw_ostream.h"

#include <cmath>
#include <cstdlib>
#include <string>

using namespace mlir;
using namespace mlir::moe;
using namespace moe_fuzz;

/// Stops the fuzzer with a report: a property of the library was violated.
[[noreturn]] static void fail(const llvm::Twine &what) {
  llvm::errs() << "adapter-config-fuzzer: " << what << "\n";
  std::abort();
}

namespace {
/// The checkpoints every input is imported with, in a scratch directory of
/// this fuzzer process that is removed at exit.
struct Fixture {
  llvm::SmallString<128> dir;
  std::string base, adapter, emptyAdapter, input;

  Fixture();
  ~Fixture() { llvm::sys::fs::remove_directories(dir); }
};
} // namespace

/// The PEFT factors of `module` (out x in) at `rank`.
static void addLora(std::vector<ZeroTensor> &tensors, llvm::StringRef module,
                    int64_t out, int64_t in, int64_t rank) {
  std::string prefix = "base_model.model.";
  tensors.push_back({prefix + hf::loraAKey(module), {rank, in}});
  tensors.push_back({prefix + hf::loraBKey(module), {out, rank}});
}

Fixture::Fixture() {
  dir = makeScratchDirectory("adapter-config-fuzz");
  base = joinPath(dir, "base");
  adapter = joinPath(dir, "adapter");
  emptyAdapter = joinPath(dir, "empty");
  for (const std::string &sub : {base, adapter, emptyAdapter})
    makeDirectoryOrAbort(sub);
  writeTinyLlama(base, /*layers=*/2);

  // Rank 2 unless a pattern says otherwise: layer 1's v_proj has rank 4,
  // and an FFN module is adapted too (its layer is then decomposed).
  std::vector<ZeroTensor> lora;
  addLora(lora, hf::attentionModule(0, "q_proj"), 8, 8, 2);
  addLora(lora, hf::attentionModule(1, "v_proj"), 4, 8, 4);
  addLora(lora, hf::mlpModule(1, "down_proj"), 8, 16, 2);
  writeFileOrAbort(joinPath(adapter, "adapter_model.safetensors"),
                   zeroSafetensors(lora));
  std::vector<ZeroTensor> empty;
  addLora(empty, hf::attentionModule(0, "k_proj"), 4, 8, 0);
  writeFileOrAbort(joinPath(emptyAdapter, "adapter_model.safetensors"),
                   zeroSafetensors(empty));

  // One input file, read by both adapters through a symbolic link.
  input = joinPath(adapter, "adapter_config.json");
  writeFileOrAbort(input, "{}");
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
  writeFileOrAbort(fixture().input,
                   llvm::StringRef(reinterpret_cast<const char *>(data), size));
  importAdapter(fixture().adapter, /*modules=*/3);
  importAdapter(fixture().emptyAdapter, /*modules=*/1);
  return 0;
}
