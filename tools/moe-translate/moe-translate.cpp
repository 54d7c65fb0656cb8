//===- moe-translate.cpp - Import and export of moe modules ---------------===//
//
// mlir-translate with the moe importers (Hugging Face checkpoints, PEFT
// adapters) and exporters (Hugging Face MoE checkpoints, ONNX).
//
//===----------------------------------------------------------------------===//

#include "moe/Translation/Translations.h"

#include "mlir/Tools/mlir-translate/MlirTranslateMain.h"
#include "llvm/ADT/STLExtras.h"
#include "llvm/ADT/SmallString.h"
#include "llvm/ADT/StringRef.h"
#include "llvm/Support/FileSystem.h"
#include "llvm/Support/Path.h"

#include <string>
#include <vector>

/// Exports write their output themselves (`--export-hf` a directory,
/// `--export-onnx` a model file and its external data, both atomically),
/// while mlirTranslateMain would open and truncate `-o` first: when
/// `translation` is on the command line, moves the value of `-o` into
/// `outputOption` and leaves the driver `-o -` (the summary, if any, goes to
/// stdout).
static void redirectOutput(std::vector<std::string> &args,
                           llvm::StringRef translation,
                           llvm::StringRef outputOption) {
  if (!llvm::is_contained(args, ("--" + translation).str()) &&
      !llvm::is_contained(args, ("-" + translation).str()))
    return;
  for (size_t i = 1; i < args.size(); ++i) {
    llvm::StringRef arg = args[i];
    std::string path;
    if ((arg == "-o" || arg == "--o") && i + 1 < args.size()) {
      path = args[i + 1];
      args.erase(args.begin() + i + 1);
    } else if (arg.consume_front("-o=") || arg.consume_front("--o=")) {
      path = arg.str();
    } else {
      continue;
    }
    args[i] = ("--" + outputOption + "=" + path).str();
    args.push_back("-o");
    args.push_back("-");
    return;
  }
}

int main(int argc, char **argv) {
  mlir::moe::registerMoeTranslations();
  std::vector<std::string> storage(argv, argv + argc);
  redirectOutput(storage, "export-hf", "export-dir");
  redirectOutput(storage, "export-onnx", "onnx-output");
  // A model directory given as the input stands for its config.json, so that
  // `moe-translate --import-hf models/base` works.
  for (size_t i = 1; i < storage.size(); ++i) {
    llvm::StringRef arg = storage[i];
    llvm::StringRef previous = storage[i - 1];
    if (arg.starts_with("-") || previous == "-o" || previous == "--o")
      continue;
    llvm::SmallString<256> config(arg);
    llvm::sys::path::append(config, "config.json");
    if (llvm::sys::fs::is_directory(arg) && llvm::sys::fs::exists(config))
      storage[i] = config.str().str();
  }
  std::vector<char *> args;
  for (std::string &arg : storage)
    args.push_back(arg.data());
  return mlir::failed(mlir::mlirTranslateMain(static_cast<int>(args.size()),
                                              args.data(),
                                              "moe import and export\n"))
             ? 1
             : 0;
}
