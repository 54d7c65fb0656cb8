//===- ReportParams.cpp - Parameter counts of model functions -------------===//

#include "moe/Transforms/Passes.h"

#include "moe/Support/StagedOutput.h"

#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "llvm/ADT/DenseSet.h"
#include "llvm/Support/FileSystem.h"
#include "llvm/Support/FormatVariadic.h"
#include "llvm/Support/JSON.h"
#include "llvm/Support/Path.h"

namespace mlir::moe {
#define GEN_PASS_DEF_REPORTPARAMS
#include "moe/Passes.h.inc"
} // namespace mlir::moe

using namespace mlir;
using namespace mlir::moe;

namespace {
enum class Role { Stem, Expert, Router };

struct Counts {
  int64_t stem = 0, expert = 0, router = 0, active = 0;
  int64_t total() const { return stem + expert + router; }
};

/// Counts the distinct weights of one function by role.
class Counter {
public:
  /// Counts `weight` (once, whatever it is used for) under `role`; returns
  /// the elements it added.
  int64_t add(Value weight, Role role) {
    if (!weight || !isWeight(weight))
      return 0;
    // Stacks count their parts, so that a weight both stacked and used on
    // its own counts once.
    if (auto stack = weight.getDefiningOp<StackOp>()) {
      int64_t added = 0;
      for (Value input : stack.getInputs())
        added += add(input, role);
      return added;
    }
    if (!seen.insert(weight).second)
      return 0;
    int64_t elements =
        cast<RankedTensorType>(weight.getType()).getNumElements();
    (role == Role::Stem     ? counts.stem
     : role == Role::Expert ? counts.expert
                            : counts.router) += elements;
    return elements;
  }

  Counts counts;

private:
  llvm::DenseSet<Value> seen;
};

struct ReportParamsPass : public moe::impl::ReportParamsBase<ReportParamsPass> {
  using ReportParamsBase::ReportParamsBase;
  void runOnOperation() override;
};
} // namespace

static int64_t elementsOf(Value value) {
  return value ? cast<RankedTensorType>(value.getType()).getNumElements() : 0;
}

/// Routed expert parameters one token uses: k of E equally sized experts.
static int64_t activeShare(ArrayRef<Value> stacks, int64_t k) {
  int64_t active = 0;
  for (Value stacked : stacks) {
    if (!stacked)
      continue;
    auto type = cast<RankedTensorType>(stacked.getType());
    active += type.getNumElements() / type.getShape()[0] * k;
  }
  return active;
}

static Counts countFunction(func::FuncOp func) {
  Counter counter;
  int64_t routedTotal = 0, routedActive = 0;
  func.walk([&](Operation *op) {
    if (auto experts = dyn_cast<ExpertsOp>(op)) {
      int64_t k = cast<RankedTensorType>(experts.getWeights().getType())
                      .getShape()
                      .back();
      SmallVector<Value> stacks{experts.getGate(), experts.getUp(),
                                experts.getDown()};
      for (Value stacked : stacks)
        routedTotal += counter.add(stacked, Role::Expert);
      routedActive += activeShare(stacks, k);
      for (Value shared : {experts.getSharedGate(), experts.getSharedUp(),
                           experts.getSharedDown()})
        counter.add(shared, Role::Expert);
      counter.add(experts.getSharedExpertGate(), Role::Router);
      return;
    }
    if (auto fused = dyn_cast<FusedMoeOp>(op)) {
      SmallVector<Value> stacks{fused.getGate(), fused.getUp(),
                                fused.getDown()};
      for (Value stacked : stacks)
        routedTotal += counter.add(stacked, Role::Expert);
      routedActive += activeShare(stacks, fused.getK());
      for (Value shared :
           {fused.getSharedGate(), fused.getSharedUp(), fused.getSharedDown()})
        counter.add(shared, Role::Expert);
      for (Value router : {fused.getRouter(), fused.getRouterBias(),
                           fused.getSharedExpertGate()})
        counter.add(router, Role::Router);
      return;
    }
    if (auto routedLinear = dyn_cast<RoutedLinearOp>(op)) {
      int64_t k = cast<RankedTensorType>(routedLinear.getWeights().getType())
                      .getShape()
                      .back();
      SmallVector<Value> stacks{routedLinear.getWeight(),
                                routedLinear.getBias()};
      for (Value stacked : stacks)
        routedTotal += counter.add(stacked, Role::Expert);
      routedActive += activeShare(stacks, k);
      return;
    }
    if (auto mixture = dyn_cast<MixtureOfLoraOp>(op)) {
      counter.add(mixture.getWeight(), Role::Stem);
      counter.add(mixture.getBias(), Role::Stem);
      counter.add(mixture.getRouter(), Role::Router);
      SmallVector<int64_t> sizes;
      for (auto [a, b] : llvm::zip(mixture.getLoraA(), mixture.getLoraB())) {
        routedTotal +=
            counter.add(a, Role::Expert) + counter.add(b, Role::Expert);
        sizes.push_back(elementsOf(a) + elementsOf(b));
      }
      // With top-k, count the k largest adapters: an upper bound.
      llvm::sort(sizes, std::greater<int64_t>());
      int64_t active = mixture.getTopK() ? mixture.getTopK() : sizes.size();
      for (int64_t i = 0; i < active; ++i)
        routedActive += sizes[i];
      return;
    }
    if (auto router = dyn_cast<RouterOp>(op)) {
      counter.add(router.getWeight(), Role::Router);
      counter.add(router.getBias(), Role::Router);
      return;
    }
    if (op->getNumResults() == 1 && isWeight(op->getResult(0)))
      return;
    for (Value operand : op->getOperands())
      counter.add(operand, Role::Stem);
  });
  Counts counts = counter.counts;
  // Everything but the routed experts is active for every token.
  counts.active = counts.total() - routedTotal + routedActive;
  return counts;
}

void ReportParamsPass::runOnOperation() {
  ModuleOp module = getOperation();
  llvm::json::Object functions;
  for (auto func : module.getOps<func::FuncOp>()) {
    if (func.isExternal())
      continue;
    Counts counts = countFunction(func);
    // At the function's location only: a remark on the op would print it.
    emitRemark(func.getLoc())
        << "parameters of '" << func.getSymName() << "': stem " << counts.stem
        << ", expert " << counts.expert << ", router " << counts.router
        << ", total " << counts.total() << ", active " << counts.active;
    functions[func.getSymName()] =
        llvm::json::Object{{"stem", counts.stem},
                           {"expert", counts.expert},
                           {"router", counts.router},
                           {"total", counts.total()},
                           {"active", counts.active}};
  }
  if (outputPath.empty())
    return;
  std::string text =
      llvm::formatv("{0:2}\n", llvm::json::Value(llvm::json::Object{
                                   {"functions", std::move(functions)}}));
  StringRef name = llvm::sys::path::filename(outputPath);
  llvm::Expected<StagedOutput> staged =
      StagedOutput::create(llvm::sys::path::parent_path(outputPath), name);
  llvm::Error error =
      staged ? staged->writeFile(name, text) : staged.takeError();
  if (!error)
    error = staged->publishFiles({name.str()}, /*replace=*/true);
  if (error) {
    emitError(module.getLoc()) << "cannot write '" << outputPath
                               << "': " << llvm::toString(std::move(error));
    return signalPassFailure();
  }
}
