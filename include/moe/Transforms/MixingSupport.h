//===- MixingSupport.h - What the mixing passes share -----------*- C++ -*-===//
//
// Mixing passes build one function from several model functions: they move
// weights between functions and split FFNs into projections that can be
// routed or adapted one by one.
//
//===----------------------------------------------------------------------===//

#ifndef MOE_TRANSFORMS_MIXINGSUPPORT_H
#define MOE_TRANSFORMS_MIXINGSUPPORT_H

#include "moe/Dialect/MoeOps.h"

#include "mlir/IR/BuiltinOps.h"
#include "mlir/IR/IRMapping.h"

namespace mlir::moe {

/// Replaces a dense FFN by its projections (moe.linear for gate, up and
/// down around a moe.glu, or a moe.activation without gate), so that each
/// projection can be adapted or routed on its own. Keeps the layer tag.
void decomposeFfn(FfnOp op);

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

/// The module path of a linear layer from the key of its weight
/// (`model.layers.0.self_attn.q_proj` for `....q_proj.weight`), or empty
/// when the weight is not a plain moe.param.
std::string getLinearModulePath(Value weight);

/// Declares a safetensors scope for the file `path` (router weights,
/// prototypes), made absolute, under a fresh name derived from `stem`, and
/// returns the name.
std::string declareFileScope(ModuleOp module, StringRef stem, StringRef path);

} // namespace mlir::moe

#endif // MOE_TRANSFORMS_MIXINGSUPPORT_H
