//===- moe-translate.cpp - Import and export of moe modules ---------------===//
//
// Translations between moe modules and the formats of the field: the
// Hugging Face and PEFT importers, and the Hugging Face MoE and ONNX
// exporters. Like mlir-translate, one translation flag picks what to do and
// `-o` names the output; the input of --import-hf may be the model's
// directory. The exports write files of their own (a directory, a model and
// its external data, appearing whole or not at all) at the path `-o` names,
// and print a summary to stdout.
//
//===----------------------------------------------------------------------===//

#include "moe/Translation/Translations.h"
#include "moe/Weights/WeightSources.h"

#include "mlir/IR/AsmState.h"
#include "mlir/IR/Diagnostics.h"
#include "mlir/IR/MLIRContext.h"
#include "mlir/Support/FileUtilities.h"
#include "mlir/Tools/mlir-translate/Translation.h"
#include "llvm/Support/CommandLine.h"
#include "llvm/Support/FileSystem.h"
#include "llvm/Support/InitLLVM.h"
#include "llvm/Support/MemoryBuffer.h"
#include "llvm/Support/SourceMgr.h"
#include "llvm/Support/ToolOutputFile.h"
#include "llvm/Support/WithColor.h"
#include "llvm/Support/raw_ostream.h"

using namespace mlir;
namespace cl = llvm::cl;

using TranslationOption =
    cl::opt<const Translation *, false, TranslationParser>;

/// The flag of the chosen translation ("import-hf", ...).
static llvm::StringRef flagOf(TranslationOption &option) {
  TranslationParser &parser = option.getParser();
  for (unsigned i = 0, e = parser.getNumOptions(); i != e; ++i)
    if (static_cast<const cl::OptionValue<const Translation *> &>(
            parser.getOptionValue(i))
            .getValue() == option.getValue())
      return parser.getOption(i);
  return "";
}

/// The input: a file (or stdin), or a directory or GGUF file, which stands
/// for itself (the importer reads the model; the buffer only carries its
/// name).
static std::unique_ptr<llvm::MemoryBuffer> openInput(llvm::StringRef path,
                                                     std::string &error) {
  if (path != "-" &&
      (llvm::sys::fs::is_directory(path) || path.ends_with(".gguf")))
    return llvm::MemoryBuffer::getMemBufferCopy("", path);
  return openInputFile(path, &error);
}

int main(int argc, char **argv) {
  llvm::InitLLVM init(argc, argv);
  moe::registerMoeTranslations();
  moe::registerWeightSourceCLOptions();
  registerAsmPrinterCLOptions();
  registerMLIRContextCLOptions();
  registerTranslationCLOptions();

  cl::opt<std::string> inputPath(cl::Positional,
                                 cl::desc("<input file or model directory>"),
                                 cl::init("-"));
  cl::opt<std::string> outputPath(
      "o",
      cl::desc(
          "Output file; for --export-hf the directory to create, for "
          "--export-onnx the model file, for --export-gguf the .gguf file"),
      cl::value_desc("path"), cl::init("-"));
  TranslationOption translation(cl::desc("Translation to perform"),
                                cl::Required);
  cl::ParseCommandLineOptions(argc, argv, "moe import and export\n");

  std::string error;
  std::unique_ptr<llvm::MemoryBuffer> input = openInput(inputPath, error);
  if (!input) {
    llvm::WithColor::error(llvm::errs(), "moe-translate") << error << "\n";
    return 1;
  }
  auto sourceMgr = std::make_shared<llvm::SourceMgr>();
  sourceMgr->AddNewSourceBuffer(std::move(input), llvm::SMLoc());
  MLIRContext context;
  SourceMgrDiagnosticHandler diagnostics(*sourceMgr, &context);

  if (moe::writesOwnFiles(flagOf(translation))) {
    moe::setOutputPath(outputPath);
    return failed((*translation)(sourceMgr, llvm::outs(), &context)) ? 1 : 0;
  }
  std::unique_ptr<llvm::ToolOutputFile> output =
      openOutputFile(outputPath, &error);
  if (!output) {
    llvm::WithColor::error(llvm::errs(), "moe-translate") << error << "\n";
    return 1;
  }
  if (failed((*translation)(sourceMgr, output->os(), &context)))
    return 1;
  output->keep();
  return 0;
}
