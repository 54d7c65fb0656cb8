//===- moe-opt.cpp - The moe optimizer driver -----------------------------===//
//
// mlir-opt with the moe dialect, its passes and pipelines, and every upstream
// dialect and pass they lower through.
//
//===----------------------------------------------------------------------===//

#include "moe/InitMoe.h"
#include "moe/Weights/WeightSources.h"

#include "mlir/IR/DialectRegistry.h"
#include "mlir/InitAllPasses.h"
#include "mlir/Tools/mlir-opt/MlirOptMain.h"

int main(int argc, char **argv) {
  mlir::registerAllPasses();
  mlir::moe::registerAllMoePasses();
  mlir::moe::registerWeightSourceCLOptions();
  mlir::DialectRegistry registry;
  mlir::moe::registerMoeDialects(registry);
  return mlir::asMainReturnCode(mlir::MlirOptMain(
      argc, argv, "moe optimizer: mixes LLMs into mixtures of experts\n",
      registry));
}
