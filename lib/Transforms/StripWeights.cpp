//===- StripWeights.cpp - Only the compute of an outlined module ----------===//

#include "moe/Dialect/MoeDialect.h"
#include "moe/Dialect/MoeOps.h"
#include "moe/Transforms/Passes.h"

#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "llvm/ADT/SetVector.h"

namespace mlir::moe {
#define GEN_PASS_DEF_STRIPWEIGHTS
#include "moe/Passes.h.inc"
} // namespace mlir::moe

using namespace mlir;
using namespace mlir::moe;

namespace {
struct StripWeightsPass : public moe::impl::StripWeightsBase<StripWeightsPass> {
  void runOnOperation() override;
};
} // namespace

/// Removes the `moe.*` discardable attributes of `func` and its arguments.
static void stripMoeAttributes(func::FuncOp func) {
  auto isMoe = [](NamedAttribute attr) {
    return attr.getName().getValue().starts_with("moe.");
  };
  for (NamedAttribute attr : func->getDiscardableAttrs())
    if (isMoe(attr))
      func->removeDiscardableAttr(attr.getName());
  for (unsigned i = 0, e = func.getNumArguments(); i < e; ++i)
    if (DictionaryAttr attrs = func.getArgAttrDict(i))
      for (NamedAttribute attr : attrs)
        if (isMoe(attr))
          func.removeArgAttr(i, attr.getName());
}

void StripWeightsPass::runOnOperation() {
  ModuleOp module = getOperation();
  llvm::SetVector<Operation *> weightOps;
  for (Operation &op : *module.getBody())
    if (isa<ScopeOp>(op))
      weightOps.insert(&op);
  for (auto func : module.getOps<func::FuncOp>())
    if (auto weights = func->getAttrOfType<FlatSymbolRefAttr>(
            MoeDialect::getWeightsAttrName()))
      if (auto weightsFunc = module.lookupSymbol<func::FuncOp>(weights))
        weightOps.insert(weightsFunc);

  WalkResult result = module.walk([&](Operation *op) {
    if (!isa<WeightExpressionOpInterface>(op) ||
        !isa<MoeDialect>(op->getDialect()) ||
        weightOps.contains(op->getParentOfType<func::FuncOp>()))
      return WalkResult::advance();
    op->emitError() << "computes a weight inside a compute function: weights "
                       "reach compiled code as arguments; run "
                       "moe-outline-weights first";
    return WalkResult::interrupt();
  });
  if (result.wasInterrupted())
    return signalPassFailure();

  for (Operation *op : weightOps)
    op->erase();
  for (auto func : module.getOps<func::FuncOp>())
    stripMoeAttributes(func);
}
