//===- MoeOps.h - Operations of the moe dialect -----------------*- C++ -*-===//

#ifndef MOE_DIALECT_MOEOPS_H
#define MOE_DIALECT_MOEOPS_H

#include "mlir/Bytecode/BytecodeOpInterface.h"
#include "mlir/IR/Builders.h"
#include "mlir/IR/BuiltinTypes.h"
#include "mlir/IR/OpDefinition.h"
#include "mlir/IR/SymbolTable.h"
#include "mlir/Interfaces/InferTypeOpInterface.h"
#include "mlir/Interfaces/SideEffectInterfaces.h"
#include "moe/Dialect/MoeDialect.h"
#include "moe/Dialect/MoeInterfaces.h"

#define GET_OP_CLASSES
#include "moe/MoeOps.h.inc"

namespace mlir::moe {
/// True when `value` is a weight: the result of an operation that computes
/// a weight (WeightExpressionOpInterface: the moe weight expressions, dense
/// float arith.constants, and tensor.extract_slice / collapse_shape /
/// expand_shape of a weight).
bool isWeight(Value value);

/// The decoder layer an operation belongs to, from its `moe.layer`
/// attribute.
std::optional<int64_t> getLayerIndex(Operation *op);
void setLayerIndex(Operation *op, int64_t layer);

/// Tags every compute operation (not weights) that a builder inserts with
/// the decoder layer `layer` (none while it is negative).
struct LayerTagger : public OpBuilder::Listener {
  explicit LayerTagger(int64_t layer = -1) : layer(layer) {}
  void notifyOperationInserted(Operation *op,
                               OpBuilder::InsertPoint previous) override;
  int64_t layer;
};
} // namespace mlir::moe

#endif // MOE_DIALECT_MOEOPS_H
