//===- InitMoe.cpp - Registration of everything moe provides --------------===//

#include "moe/InitMoe.h"

#include "moe/Conversion/Passes.h"
#include "moe/Conversion/Pipelines.h"
#include "moe/Dialect/MoeDialect.h"
#include "moe/Transforms/Passes.h"

#include "mlir/IR/DialectRegistry.h"
#include "mlir/InitAllDialects.h"
#include "mlir/InitAllExtensions.h"
#include "mlir/Target/LLVMIR/Dialect/All.h"

using namespace mlir;

void mlir::moe::registerMoeDialects(DialectRegistry &registry) {
  registry.insert<moe::MoeDialect>();
  registerAllDialects(registry);
  registerAllExtensions(registry);
  // Serialising gpu.modules to PTX translates them to LLVM IR.
  registerAllToLLVMIRTranslations(registry);
}

void mlir::moe::registerAllMoePasses() {
  registerMoePasses();
  registerMoeConversionPasses();
  registerMoePipelines();
}
