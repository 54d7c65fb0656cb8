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

namespace mlir::moe::OpTrait {
/// Marks operations that compute weights from weights only. Tools evaluate
/// them from the checkpoints (see moe/Weights/WeightEvaluator.h) instead of
/// lowering them.
template <typename ConcreteType>
class WeightExpression
    : public mlir::OpTrait::TraitBase<ConcreteType, WeightExpression> {};
} // namespace mlir::moe::OpTrait

#endif // MOE_DIALECT_MOEDIALECT_H
