//===- moe-translate.cpp - Import and export of moe modules ---------------===//
//
// mlir-translate with the moe importers (Hugging Face checkpoints, PEFT
// adapters) and exporters (Hugging Face MoE checkpoints, ONNX).
//
//===----------------------------------------------------------------------===//

#include "moe/Translation/Translations.h"

#include "mlir/Tools/mlir-translate/MlirTranslateMain.h"
#include "llvm/ADT/SmallString.h"
#include "llvm/ADT/StringRef.h"
#include "llvm/Support/FileSystem.h"
#include "llvm/Support/Path.h"

#include <string>
#include <vector>

int main(int argc, char **argv) {
  mlir::moe::registerMoeTranslations();
  // A model directory given as the input stands for its config.json, so that
  // `moe-translate --import-hf models/base` works.
  std::vector<std::string> storage(argv, argv + argc);
  for (int i = 1; i < argc; ++i) {
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
