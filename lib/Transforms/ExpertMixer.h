//===- ExpertMixer.h - One run of moe-mix-experts ---------------*- C++ -*-===//

#ifndef MOE_LIB_TRANSFORMS_EXPERTMIXER_H
#define MOE_LIB_TRANSFORMS_EXPERTMIXER_H

#include "Routers.h"

#include "moe/Transforms/MixingSupport.h"
#include "moe/Transforms/Passes.h"

#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "llvm/ADT/DenseSet.h"

#include <memory>

namespace mlir::moe {

/// Mixes the models of `module` as `options` say: a fresh object per run,
/// so that nothing of one run leaks into the next. Errors are reported on
/// the module or the operation at fault; on failure the module is as it was
/// (but for the scopes of router files it declared).
class ExpertMixer {
public:
  ExpertMixer(ModuleOp module, const MixExpertsOptions &options);
  ~ExpertMixer();

  LogicalResult run();

private:
  /// Checks the options against each other and finds the base, the routed
  /// models and the shared one; the routed models must have the base's
  /// structure.
  LogicalResult selectModels();
  /// Builds the mix in `mix`, a copy of the base.
  LogicalResult build(IRMapping &baseToMix);
  FailureOr<std::pair<Value, Value>> gating(OpBuilder &builder, Location loc,
                                            Value input, RouterSite site,
                                            int64_t layer);
  Value stack(OpBuilder &builder, Location loc, ArrayRef<Value> weights);
  LogicalResult mixFfn(FfnOp op, size_t index);
  LogicalResult routeProjection(LinearOp op, size_t index, RouterSite site);
  void averageWeights(Operation *op, size_t index);

  ModuleOp module;
  const MixExpertsOptions &options;
  func::FuncOp base, mix;
  /// The models whose FFNs are routed, and the optional always-on or
  /// shared one.
  SmallVector<func::FuncOp> routed;
  func::FuncOp sharedModel;
  bool sharedGated = false;
  /// Every model a weight may be averaged over: base, routed, shared.
  SmallVector<func::FuncOp> sources;
  /// Compute operations of each source, aligned with those of `mix`.
  DenseMap<func::FuncOp, SmallVector<Operation *>> sourceOps;
  llvm::DenseSet<int64_t> mixedLayers;
  std::unique_ptr<RouterFactory> routers;
  std::unique_ptr<WeightCloner> cloner;
  /// Inserts the weights the mix adds, after the base's.
  std::unique_ptr<OpBuilder> weightBuilder;
  DenseMap<Value, Value> averaged;
  /// The gating every layer shares with a global router.
  std::pair<Value, Value> globalGating;
};

} // namespace mlir::moe

#endif // MOE_LIB_TRANSFORMS_EXPERTMIXER_H
