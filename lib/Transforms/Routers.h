//===- Routers.h - The router weights of moe-mix-experts --------*- C++ -*-===//
//
// Every router mode of moe-mix-experts makes weight expressions for the
// routers of a mix: random ones (noisy, uniform-random), ones computed from
// data (hidden prototypes, cheap embeddings), ones read from a file (given),
// and the base-init start of router training. Data-derived routers are
// checked for degenerate rows once the mix is built.
//
//===----------------------------------------------------------------------===//

#ifndef MOE_LIB_TRANSFORMS_ROUTERS_H
#define MOE_LIB_TRANSFORMS_ROUTERS_H

#include "moe/Transforms/MixingSupport.h"
#include "moe/Transforms/Passes.h"
#include "moe/Weights/Checkpoint.h"

#include "mlir/Dialect/Func/IR/FuncOps.h"

#include <memory>

namespace mlir::moe {

/// Where a router sits. Projection routers get seeds and `given` keys of
/// their own.
enum class RouterSite { Ffn, Gate, Up, Down, Query, Key, Value, Global };

/// Makes the router weights of one run of moe-mix-experts.
class RouterFactory {
public:
  RouterFactory(ModuleOp module, const MixExpertsOptions &options,
                func::FuncOp base, int64_t numExperts);

  /// Reads and checks what the mode needs before anything is built: the
  /// prototypes or given file (declared as a scope of the module), the
  /// cheap-embed token lists.
  LogicalResult prepare();

  /// The `[rows, cols]` router weight of `site` in `layer`, built at
  /// `builder` (the weights of the mix); `cloner` moves the base's weights
  /// it reads (cheap-embed) into the mix.
  FailureOr<Value> weight(OpBuilder &builder, Location loc, RouterSite site,
                          int64_t layer, int64_t rows, int64_t cols,
                          WeightCloner &cloner);
  /// The `[E]` router bias of `site` in `layer`: base-init's penalty, a
  /// given file's `<router module>.bias` when it has one; null otherwise.
  FailureOr<Value> bias(OpBuilder &builder, Location loc, RouterSite site,
                        int64_t layer, int64_t rows);
  /// The `[1, hidden]` sigmoid gate row of a gated shared expert.
  FailureOr<Value> sharedExpertGate(OpBuilder &builder, Location loc,
                                    int64_t layer, int64_t hidden);

  /// Warns about data-derived routers whose rows are nearly linearly
  /// dependent (condition number above `condition-warning`), naming the
  /// most alike rows; fails when a router cannot be evaluated.
  LogicalResult checkConditioning();

private:
  FailureOr<Value> givenParam(OpBuilder &builder, Location loc, StringRef key,
                              ArrayRef<int64_t> shape);

  ModuleOp module;
  const MixExpertsOptions &options;
  func::FuncOp base;
  int64_t numExperts;
  std::vector<std::vector<int64_t>> cheapEmbedIds;
  Value cheapEmbedRouter;
  std::string prototypesScope, givenScope;
  std::unique_ptr<weights::Checkpoint> givenCheckpoint;
  /// Router weights read or derived from data, checked for degeneracy.
  SmallVector<std::pair<Value, std::string>> checkedRouters;
};

} // namespace mlir::moe

#endif // MOE_LIB_TRANSFORMS_ROUTERS_H
