//===- MoeInterfaces.h - Interfaces of the moe dialect ----------*- C++ -*-===//

#ifndef MOE_DIALECT_MOEINTERFACES_H
#define MOE_DIALECT_MOEINTERFACES_H

#include "moe/Weights/HostTensor.h"

#include "mlir/IR/OpDefinition.h"
#include "llvm/Support/Error.h"

namespace mlir {
class DialectRegistry;
} // namespace mlir

namespace mlir::moe {

/// A run of consecutive elements (row-major) that elements of a weight view
/// come from: elements [offset, offset + count) of `operand`, or, when
/// `operand` is null, of the stored tensor that the view (a moe.param)
/// names.
struct WeightPiece {
  Value operand;
  uint64_t offset = 0, count = 0;
};

/// The errors of the interface's default methods.
llvm::Error notAWeightView(Operation *op);
llvm::Error notAWeightComputation(Operation *op);

/// Attaches WeightExpressionOpInterface to the upstream operations that
/// weights are built with (arith.constant, tensor.extract_slice,
/// tensor.collapse_shape, tensor.expand_shape). registerMoeDialect calls it.
void registerWeightExpressionExternalModels(DialectRegistry &registry);

} // namespace mlir::moe

#include "moe/MoeInterfaces.h.inc"

#endif // MOE_DIALECT_MOEINTERFACES_H
