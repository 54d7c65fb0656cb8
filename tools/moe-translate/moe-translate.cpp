//===- moe-translate.cpp - Import and export of moe modules ---------------===//
//
// mlir-translate with the moe importers (Hugging Face checkpoints, PEFT
// adapters) and exporters (Hugging Face MoE checkpoints, ONNX).
//
//===----------------------------------------------------------------------===//

#include "moe/InitMoe.h"
#include "moe/Translation/Translations.h"

#include "mlir/Tools/mlir-translate/MlirTranslateMain.h"

int main(int argc, char **argv) {
  mlir::moe::registerMoeTranslations();
  return mlir::failed(
             mlir::mlirTranslateMain(argc, argv, "moe import and export\n"))
             ? 1
             : 0;
}
