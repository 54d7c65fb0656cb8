//===- OutlineWeights.cpp - Weights of model functions as arguments -------===//

#include "moe/Transforms/Passes.h"

#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/IR/Builders.h"
#include "mlir/IR/IRMapping.h"

namespace mlir::moe {
#define GEN_PASS_DEF_OUTLINEWEIGHTS
#include "moe/Passes.h.inc"
} // namespace mlir::moe

using namespace mlir;
using namespace mlir::moe;

namespace {
struct OutlineWeightsPass
    : public moe::impl::OutlineWeightsBase<OutlineWeightsPass> {
  void runOnOperation() override;
};
} // namespace

/// True for an operation that defines a weight.
static bool definesWeight(Operation *op) {
  return op->getNumResults() == 1 && isWeight(op->getResult(0));
}

/// Outlines the weights of `func`; returns failure when the name of the
/// weights function is taken.
static LogicalResult outline(ModuleOp module, func::FuncOp func) {
  Block &body = func.getBody().front();
  SmallVector<Operation *> weightOps;
  SmallVector<Value> roots;
  for (Operation &op : body) {
    if (!definesWeight(&op))
      continue;
    weightOps.push_back(&op);
    Value value = op.getResult(0);
    if (llvm::any_of(value.getUsers(),
                     [](Operation *user) { return !definesWeight(user); }))
      roots.push_back(value);
  }
  if (roots.empty())
    return success();
  std::string name = (func.getSymName() + ".weights").str();
  if (module.lookupSymbol(name))
    return emitError(func.getLoc())
           << "cannot outline its weights: the symbol '" << name << "' exists";

  OpBuilder builder(func);
  auto weightsFunc = func::FuncOp::create(
      builder, func.getLoc(), name,
      builder.getFunctionType({}, ValueRange(roots).getTypes()));
  weightsFunc.setPrivate();
  OpBuilder inner = OpBuilder::atBlockBegin(weightsFunc.addEntryBlock());
  IRMapping mapping;
  for (Operation *op : weightOps)
    inner.clone(*op, mapping);
  SmallVector<Value> results;
  for (Value root : roots)
    results.push_back(mapping.lookup(root));
  func::ReturnOp::create(inner, func.getLoc(), results);

  unsigned first = func.getNumArguments();
  for (auto [index, root] : llvm::enumerate(roots)) {
    NamedAttribute tag(builder.getStringAttr(MoeDialect::getWeightAttrName()),
                       builder.getI64IntegerAttr(index));
    if (failed(func.insertArgument(first + index, root.getType(),
                                   builder.getDictionaryAttr(tag),
                                   root.getLoc())))
      return failure();
    Value argument = func.getArgument(first + index);
    root.replaceUsesWithIf(argument, [](OpOperand &use) {
      return !definesWeight(use.getOwner());
    });
  }
  for (Operation *op : llvm::reverse(weightOps))
    op->erase();
  func->setAttr(MoeDialect::getWeightsAttrName(),
                FlatSymbolRefAttr::get(weightsFunc.getSymNameAttr()));
  return success();
}

void OutlineWeightsPass::runOnOperation() {
  ModuleOp module = getOperation();
  SmallVector<func::FuncOp> functions;
  for (auto func : module.getOps<func::FuncOp>())
    if (!func.isExternal() &&
        !func->hasAttr(MoeDialect::getWeightsAttrName()) &&
        !func.getSymName().ends_with(".weights"))
      functions.push_back(func);
  for (func::FuncOp func : functions)
    if (failed(outline(module, func)))
      return signalPassFailure();
}
