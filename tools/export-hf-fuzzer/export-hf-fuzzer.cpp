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

#include "FuzzerSupport.h"

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
#include "llvm/Support/FileSystem.h"
#include "llvm/Support/raw_ostream.h"

#include <cstdlib>
#include <string>

using namespace mlir;
using namespace mlir::moe;
using namespace moe_fuzz;

/// Stops the fuzzer with a report: a property of the library was violated.
[[noreturn]] static void fail(const llvm::Twine &what) {
  llvm::errs() << "export-hf-fuzzer: " << what << "\n";
  std::abort();
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
  dir = makeScratchDirectory("export-hf-fuzz");
  writeTinyLlama(dir, /*layers=*/1);
  std::string configPath = joinPath(dir, "config.json");
  llvm::Expected<DecoderConfig> parsed = readDecoderConfig(configPath);
  if (!parsed)
    fail("the base config is refused: " + llvm::toString(parsed.takeError()));
  config = std::move(*parsed);
}

static Fixture &fixture() {
  static Fixture instance;
  return instance;
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
  OwningOpRef<ModuleOp> module = parseExportInput(data, size);
  if (!module)
    return 0;

  llvm::Expected<func::FuncOp> func =
      pickModelFunction(*module, "", "--export-func");
  if (!func) {
    llvm::consumeError(func.takeError());
    return 0;
  }
  if (failed(hf_export::refuseUnstructuredFeatures(
          *func, hf_export::kHuggingFaceTarget)))
    return 0;
  FailureOr<Decoder> decoder = matchDecoder(*func);
  if (failed(decoder))
    return 0;
  FailureOr<hf_export::LayoutChoice> choice = hf_export::chooseLayout(
      *decoder, fixture().config, hf_export::kHuggingFaceTarget);
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
