//===- Translations.cpp - moe-translate registrations ---------------------===//

#include "moe/Translation/Translations.h"

#include "moe/Dialect/MoeDialect.h"
#include "moe/Export/HFExport.h"
#include "moe/Export/ONNXExport.h"
#include "moe/Import/HFImporter.h"

#include "mlir/Dialect/Arith/IR/Arith.h"
#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/Dialect/Tensor/IR/Tensor.h"
#include "mlir/IR/BuiltinOps.h"
#include "mlir/IR/DialectRegistry.h"
#include "mlir/Tools/mlir-translate/Translation.h"
#include "llvm/Support/CommandLine.h"
#include "llvm/Support/Path.h"
#include "llvm/Support/SourceMgr.h"

using namespace mlir;

namespace {
/// Options of the import translations.
struct ImportOptions {
  llvm::cl::OptionCategory category{"moe import options"};
  llvm::cl::opt<std::string> baseName{
      "base-name", llvm::cl::desc("Scope and function name of the base model"),
      llvm::cl::init("base"), llvm::cl::cat(category)};
  llvm::cl::list<std::string> experts{
      "expert",
      llvm::cl::desc("A fine-tuned model to import beside the base, as "
                     "name=directory (repeatable)"),
      llvm::cl::value_desc("name=dir"), llvm::cl::cat(category)};
  llvm::cl::list<std::string> adapters{
      "adapter",
      llvm::cl::desc("A PEFT LoRA adapter of the base to import, as "
                     "name=directory (repeatable)"),
      llvm::cl::value_desc("name=dir"), llvm::cl::cat(category)};
};
} // namespace

static ImportOptions &importOptions() {
  static ImportOptions options;
  return options;
}

/// Splits "name=path"; a bare path is named after its last component.
static moe::CheckpointRef parseCheckpointRef(StringRef spec) {
  auto [name, path] = spec.split('=');
  if (path.empty())
    return {llvm::sys::path::filename(spec).str(), spec.str()};
  return {name.str(), path.str()};
}

static OwningOpRef<Operation *> importHF(llvm::SourceMgr &sourceMgr,
                                         MLIRContext *context) {
  // The input is the base model's config.json (moe-translate turns a
  // directory argument into it).
  StringRef configPath = sourceMgr.getMemoryBuffer(sourceMgr.getMainFileID())
                             ->getBufferIdentifier();
  context->loadDialect<moe::MoeDialect, func::FuncDialect, arith::ArithDialect,
                       tensor::TensorDialect>();
  ImportOptions &options = importOptions();
  moe::ImportRequest request;
  request.base = {options.baseName,
                  llvm::sys::path::parent_path(configPath).str()};
  if (request.base.path.empty())
    request.base.path = ".";
  for (const std::string &spec : options.experts)
    request.experts.push_back(parseCheckpointRef(spec));
  for (const std::string &spec : options.adapters)
    request.adapters.push_back(parseCheckpointRef(spec));

  OwningOpRef<ModuleOp> module(ModuleOp::create(
      FileLineColLoc::get(context, configPath, /*line=*/0, /*column=*/0)));
  if (failed(moe::importHuggingFace(*module, request)))
    return nullptr;
  return OwningOpRef<Operation *>(module.release());
}

void mlir::moe::registerMoeTranslations() {
  importOptions();
  registerHFExportTranslation();
  registerOnnxExportTranslation();
  static TranslateToMLIRRegistration importHuggingFace(
      "import-hf",
      "Import a Hugging Face decoder (directory or its config.json), with "
      "--expert and --adapter checkpoints beside it",
      importHF, [](DialectRegistry &registry) {
        registry.insert<moe::MoeDialect, func::FuncDialect, arith::ArithDialect,
                        tensor::TensorDialect>();
      });
}
