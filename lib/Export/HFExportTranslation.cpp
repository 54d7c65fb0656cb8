//===- HFExportTranslation.cpp - moe-translate --export-hf ----------------===//
//
// `-o` of mlir-translate names an output file, which the translation writes
// to a stream; this export writes a directory. moe-translate therefore moves
// the `-o` value of `--export-hf` into `--export-dir` and passes `-o -`, so
// that the stream carries a one-line summary to stdout.
//
//===----------------------------------------------------------------------===//

#include "moe/Export/HFExport.h"

#include "moe/Dialect/MoeDialect.h"

#include "mlir/Dialect/Arith/IR/Arith.h"
#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/Dialect/Tensor/IR/Tensor.h"
#include "mlir/Tools/mlir-translate/Translation.h"
#include "llvm/Support/CommandLine.h"
#include "llvm/Support/Process.h"

using namespace mlir;

namespace {
struct ExportOptions {
  llvm::cl::OptionCategory category{"moe Hugging Face export options"};
  llvm::cl::opt<std::string> outputDir{
      "export-dir",
      llvm::cl::desc("Directory --export-hf creates (moe-translate moves the "
                     "value of -o here)"),
      llvm::cl::value_desc("dir"), llvm::cl::cat(category)};
  llvm::cl::opt<bool> force{
      "force",
      llvm::cl::desc("Replace a non-empty --export-hf output directory"),
      llvm::cl::cat(category)};
  llvm::cl::opt<std::string> function{
      "export-func",
      llvm::cl::desc("Model function to export (default: the only one)"),
      llvm::cl::value_desc("name"), llvm::cl::cat(category)};
  llvm::cl::opt<std::string> dtype{
      "export-dtype",
      llvm::cl::desc("dtype of the exported tensors: auto (the base "
                     "checkpoint's), f32, bf16 or f16"),
      llvm::cl::init("auto"), llvm::cl::cat(category)};
  llvm::cl::opt<std::string> shardSize{
      "shard-size",
      llvm::cl::desc("Largest safetensors shard, in bytes or with a unit "
                     "(500MB, 5GB, 2GiB)"),
      llvm::cl::init("5GB"), llvm::cl::cat(category)};
};
} // namespace

static ExportOptions &exportOptions() {
  static ExportOptions options;
  return options;
}

static LogicalResult exportHF(ModuleOp module, llvm::raw_ostream &output) {
  ExportOptions &cl = exportOptions();
  moe::HFExportOptions options;
  options.outputDir = cl.outputDir;
  options.force = cl.force;
  options.function = cl.function;
  options.dtype = cl.dtype;
  std::optional<uint64_t> shardBytes = moe::parseByteSize(cl.shardSize);
  if (!shardBytes)
    return mlir::emitError(module.getLoc())
           << "--shard-size: '" << cl.shardSize
           << "' is not a size in bytes (e.g. 5GB, 500MB, 2GiB, 1000000)";
  options.maxShardBytes = *shardBytes;
  options.showProgress = llvm::sys::Process::StandardErrIsDisplayed();
  return moe::exportHuggingFace(module, options, output);
}

void mlir::moe::registerHFExportTranslation() {
  exportOptions();
  static TranslateFromMLIRRegistration exportHuggingFace(
      "export-hf",
      "Export a mixed model function as a Hugging Face MoE checkpoint "
      "(Mixtral, Qwen2-MoE or GraniteMoE) into the directory -o names",
      exportHF, [](DialectRegistry &registry) {
        registry.insert<moe::MoeDialect, func::FuncDialect, arith::ArithDialect,
                        tensor::TensorDialect>();
      });
}
