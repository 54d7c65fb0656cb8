//===- MoeDialect.h - The moe dialect ---------------------------*- C++ -*-===//

#ifndef MOE_DIALECT_MOEDIALECT_H
#define MOE_DIALECT_MOEDIALECT_H

#include "mlir/IR/BuiltinAttributes.h"
#include "mlir/IR/Dialect.h"
#include "mlir/IR/OpDefinition.h"

#include "moe/MoeDialect.h.inc"
#include "moe/MoeEnums.h.inc"

#define GET_ATTRDEF_CLASSES
#include "moe/MoeAttrs.h.inc"

namespace mlir::moe {
/// Registers the moe dialect with the interfaces it attaches to upstream
/// operations (weight expressions of arith and tensor operations). Every
/// tool registers the dialect through this.
void registerMoeDialect(DialectRegistry &registry);
} // namespace mlir::moe

#endif // MOE_DIALECT_MOEDIALECT_H
