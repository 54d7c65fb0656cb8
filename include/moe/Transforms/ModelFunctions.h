//===- ModelFunctions.h - Working with model functions ----------*- C++ -*-===//
//
// Mixing passes combine several functions that describe models of one
// architecture. These helpers find them, check that they have one structure,
// and move weights between them.
//
//===----------------------------------------------------------------------===//

#ifndef MOE_TRANSFORMS_MODELFUNCTIONS_H
#define MOE_TRANSFORMS_MODELFUNCTIONS_H

#include "moe/Dialect/MoeOps.h"

#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/IR/BuiltinOps.h"
#include "mlir/IR/IRMapping.h"

namespace mlir::moe {

/// The functions of `module` that hold imported models (those with a
/// `moe.scope` attribute), in module order.
SmallVector<func::FuncOp> getModelFunctions(ModuleOp module);

/// Looks up function `name`; reports an error on `module` naming `role`
/// ("base", "expert", ...) when there is none.
FailureOr<func::FuncOp> lookupModelFunction(ModuleOp module, StringRef name,
                                            StringRef role);

/// The compute operations of `func` in order: everything but weights (see
/// isWeight) and the terminator.
SmallVector<Operation *> getComputeOps(func::FuncOp func);

/// Checks that `other` computes with the structure of `base`: the same
/// compute operations with the same attributes and result types, wired the
/// same way, and weights of the same types in the same operand positions.
/// Reports the first difference as an error on `other` and fails.
LogicalResult verifySameStructure(func::FuncOp base, func::FuncOp other);

/// Replaces a dense FFN by its projections (moe.linear for gate, up and
/// down around a moe.glu, or a moe.activation without gate), so that each
/// projection can be adapted or routed on its own. Keeps the layer tag.
void decomposeFfn(FfnOp op);

/// The module path of a linear layer from the key of its weight
/// (`model.layers.0.self_attn.q_proj` for `....q_proj.weight`), or empty
/// when the weight is not a plain moe.param.
std::string getLinearModulePath(Value weight);

/// Clones weight expressions (from any function of the module) into one
/// function, once each.
class WeightCloner {
public:
  WeightCloner() = default;
  /// Values that `known` maps are already available in the destination.
  explicit WeightCloner(IRMapping known) : mapping(std::move(known)) {}

  /// The clone of weight `value` built before `builder`'s insertion point
  /// (or `value` itself when it already belongs to the destination).
  Value clone(OpBuilder &builder, Value value);

private:
  IRMapping mapping;
};

} // namespace mlir::moe

#endif // MOE_TRANSFORMS_MODELFUNCTIONS_H
