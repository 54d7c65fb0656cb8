//===- Translations.cpp - moe-translate registrations ---------------------===//

#include "moe/Translation/Translations.h"

#include "moe/InitMoe.h"

#include "mlir/IR/DialectRegistry.h"
#include "mlir/Tools/mlir-translate/Translation.h"

using namespace mlir;

void mlir::moe::registerMoeTranslations() {}
