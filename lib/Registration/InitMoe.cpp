//===- InitMoe.cpp - Registration of everything moe provides --------------===//

#include "moe/InitMoe.h"

#include "moe/Codegen/Passes.h"
#include "moe/Codegen/Pipelines.h"
#include "moe/Conversion/Passes.h"
#include "moe/Dialect/MoeDialect.h"
#include "moe/Transforms/Passes.h"

#include "mlir/IR/DialectRegistry.h"
#include "mlir/InitAllDialects.h"
#include "mlir/InitAllExtensions.h"
#include "mlir/Target/LLVMIR/Dialect/All.h"

using namespace mlir;

void mlir::moe::registerMoeDialects(DialectRegistry &registry) {
  moe::registerMoeDialect(registry);
  registerAllDialects(registry);
  registerAllExtensions(registry);
  // Serialising gpu.modules to PTX translates them to LLVM IR.
  registerAllToLLVMIRTranslations(registry);
}

void mlir::moe::registerAllMoePasses() {
  registerMoePasses();
  registerMoeConversionPasses();
  registerMoeCodegenPasses();
  registerMoePipelines();
}
