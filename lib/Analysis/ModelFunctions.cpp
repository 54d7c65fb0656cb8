//===- ModelFunctions.cpp - The model functions of a module ---------------===//

#include "moe/Analysis/ModelFunctions.h"

#include "moe/Support/Errors.h"

#include "moe/Dialect/MoeOps.h"

#include "llvm/ADT/DenseMap.h"

using namespace mlir;
using namespace mlir::moe;

SmallVector<func::FuncOp> mlir::moe::getModelFunctions(ModuleOp module) {
  SmallVector<func::FuncOp> functions;
  for (auto func : module.getOps<func::FuncOp>())
    if (func->hasAttr(MoeDialect::getScopeAttrName()))
      functions.push_back(func);
  return functions;
}

llvm::Expected<func::FuncOp> mlir::moe::pickModelFunction(ModuleOp module,
                                                          StringRef name,
                                                          StringRef option) {
  SmallVector<func::FuncOp> defined;
  for (auto func : module.getOps<func::FuncOp>())
    if (!func.isExternal())
      defined.push_back(func);
  auto list = [&](ArrayRef<func::FuncOp> functions) {
    std::string text;
    for (func::FuncOp func : functions)
      text += (text.empty() ? "@" : ", @") + func.getSymName().str();
    return text;
  };
  if (!name.empty()) {
    for (func::FuncOp func : defined)
      if (func.getSymName() == name)
        return func;
    return makeError(
        option + ": no function named '" + name + "'" +
        (defined.empty() ? "" : " (functions: " + list(defined) + ")"));
  }
  SmallVector<func::FuncOp> models = getModelFunctions(module);
  if (models.size() == 1)
    return models.front();
  if (models.empty() && defined.size() == 1)
    return defined.front();
  if (models.empty() && defined.empty())
    return makeError("the module has no function");
  ArrayRef<func::FuncOp> candidates = models.empty() ? defined : models;
  return makeError("the module has " + Twine(candidates.size()) +
                   (models.empty() ? " functions" : " model functions") + " (" +
                   list(candidates) + "): choose one with " + option);
}

FailureOr<func::FuncOp> mlir::moe::lookupModelFunction(ModuleOp module,
                                                       StringRef name,
                                                       StringRef role) {
  auto func = module.lookupSymbol<func::FuncOp>(name);
  if (!func || func.isExternal()) {
    emitError(module.getLoc())
        << "no function '" << name << "' for the " << role << " model";
    return failure();
  }
  return func;
}

SmallVector<Operation *> mlir::moe::getComputeOps(func::FuncOp func) {
  SmallVector<Operation *> ops;
  func.walk<WalkOrder::PreOrder>([&](Operation *op) {
    if (op == func || op->hasTrait<::mlir::OpTrait::IsTerminator>() ||
        (op->getNumResults() == 1 && isWeight(op->getResult(0))))
      return;
    ops.push_back(op);
  });
  return ops;
}

LogicalResult mlir::moe::verifySameStructure(func::FuncOp base,
                                             func::FuncOp other) {
  auto fail = [&](Operation *op) {
    InFlightDiagnostic diag = emitError(other.getLoc())
                              << "model '" << other.getSymName()
                              << "' does not have the structure of '"
                              << base.getSymName() << "': ";
    if (op)
      diag.attachNote(op->getLoc()) << "at this operation";
    return diag;
  };
  if (base.getFunctionType() != other.getFunctionType())
    return fail(nullptr) << "its signature " << other.getFunctionType()
                         << " differs from " << base.getFunctionType();
  SmallVector<Operation *> baseOps = getComputeOps(base);
  SmallVector<Operation *> otherOps = getComputeOps(other);
  if (baseOps.size() != otherOps.size())
    return fail(nullptr) << "it has " << otherOps.size()
                         << " compute operations, the base has "
                         << baseOps.size();
  // Where each compute result comes from, to compare the wiring.
  DenseMap<Value, std::pair<size_t, unsigned>> baseResults, otherResults;
  auto record = [](DenseMap<Value, std::pair<size_t, unsigned>> &results,
                   Operation *op, size_t index) {
    for (OpResult result : op->getResults())
      results[result] = {index, result.getResultNumber()};
  };
  for (size_t i = 0; i < baseOps.size(); ++i) {
    Operation *mine = baseOps[i], *theirs = otherOps[i];
    // A linear layer with a LoRA adapter stands where the base has the
    // plain layer: compare input and base weight only.
    bool adapted = isa<LoraLinearOp>(mine) || isa<LoraLinearOp>(theirs);
    if (adapted) {
      auto unpack =
          [](Operation *op) -> std::optional<std::pair<Value, Value>> {
        if (auto linear = dyn_cast<LinearOp>(op))
          return std::pair(linear.getInput(), linear.getWeight());
        if (auto lora = dyn_cast<LoraLinearOp>(op))
          return std::pair(lora.getInput(), lora.getWeight());
        return std::nullopt;
      };
      auto a = unpack(mine), b = unpack(theirs);
      if (!a || !b)
        return fail(theirs)
               << "operation #" << i << " is '" << theirs->getName()
               << "' where the base has '" << mine->getName() << "'";
      if (mine->getResultTypes() != theirs->getResultTypes() ||
          a->second.getType() != b->second.getType())
        return fail(theirs) << "operation #" << i << " ('" << theirs->getName()
                            << "') has types differing from the base";
    } else {
      if (mine->getName() != theirs->getName())
        return fail(theirs)
               << "operation #" << i << " is '" << theirs->getName()
               << "' where the base has '" << mine->getName() << "'";
      if (mine->getResultTypes() != theirs->getResultTypes())
        return fail(theirs) << "operation #" << i << " ('" << theirs->getName()
                            << "') has result types differing from the base";
      if (mine->getRawDictionaryAttrs() != theirs->getRawDictionaryAttrs() ||
          mine->getPropertiesAsAttribute() !=
              theirs->getPropertiesAsAttribute())
        return fail(theirs) << "operation #" << i << " ('" << theirs->getName()
                            << "') has attributes differing from the base";
      if (mine->getNumOperands() != theirs->getNumOperands())
        return fail(theirs)
               << "operation #" << i << " ('" << theirs->getName() << "') has "
               << theirs->getNumOperands() << " operands, the base's has "
               << mine->getNumOperands();
    }
    unsigned compared = adapted ? 1 : mine->getNumOperands();
    for (unsigned o = 0; o < compared; ++o) {
      Value a = mine->getOperand(o), b = theirs->getOperand(o);
      bool wired;
      if (isWeight(a) || isWeight(b))
        wired = isWeight(a) && isWeight(b) && a.getType() == b.getType();
      else if (auto arg = dyn_cast<BlockArgument>(a))
        wired = isa<BlockArgument>(b) &&
                cast<BlockArgument>(b).getArgNumber() == arg.getArgNumber();
      else
        wired = baseResults.lookup(a) == otherResults.lookup(b);
      if (!wired)
        return fail(theirs)
               << "operand #" << o << " of operation #" << i << " ('"
               << theirs->getName() << "') is not wired as in the base";
    }
    record(baseResults, mine, i);
    record(otherResults, theirs, i);
  }
  return success();
}
