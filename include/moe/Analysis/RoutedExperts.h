//===- RoutedExperts.h - Routed experts, whichever op spells them -*- C++
//-*-===//
//
// A routed-experts layer is a moe.experts fed by a moe.topk_gating of a
// moe.router (or by a moe.uniform_gating: gate-less), or one moe.fused_moe
// (what moe-fuse-gating makes of the former). Consumers that do not care
// which form they see ask for the view instead of matching both.
//
//===----------------------------------------------------------------------===//

#ifndef MOE_ANALYSIS_ROUTEDEXPERTS_H
#define MOE_ANALYSIS_ROUTEDEXPERTS_H

#include "moe/Dialect/MoeOps.h"

#include <optional>

namespace mlir::moe {

/// A routed FFN (a moe.experts with its gating, or a moe.fused_moe) as one
/// thing, whichever op spells it: what exports and the decoder view ask of
/// routed experts.
struct RoutedExperts {
  /// Where the routing comes from: every expert with weight 1/E (a
  /// moe.uniform_gating, or a moe.fused_moe without router), a router
  /// (moe.router, moe.topk_gating), or, for a moe.experts, weights and
  /// indices computed some other way.
  enum class Routing { Uniform, Router, Other };

  Operation *op = nullptr;
  Routing routing = Routing::Other;
  /// The moe.uniform_gating or moe.topk_gating of a moe.experts.
  Operation *gating = nullptr;
  /// `[E, H]` router weight and optional bias, with Routing::Router.
  Value router, routerBias;
  /// What the router reads: the FFN input, unless the gating is global.
  Value routerInput;
  int64_t numExperts = 0;
  /// Experts per token (E when gate-less).
  int64_t topK = 0;
  Scoring scoring = Scoring::softmax;
  bool scoreBeforeTopK = true;
  bool renormalize = false;
  double noiseStd = 0.0;
  /// Stacked expert weights: `[E, I, H]`, `[E, I, H]`, `[E, H, I]`.
  Value gate, up, down;
  /// The shared expert, if any, and its `[1, H]` sigmoid gate (null for an
  /// always-on expert).
  Value sharedGate, sharedUp, sharedDown, sharedExpertGate;
  Activation activation = Activation::silu;

  bool gateless() const { return routing == Routing::Uniform; }
  /// Whether the k gate weights of a softmax router sum to one:
  /// renormalised, softmax after top-k (the same function), all E experts
  /// chosen, or gate-less.
  bool weightsSumToOne() const;
  int64_t intermediateSize() const;
  int64_t sharedIntermediateSize() const;
};

/// The view of `op` (a moe.experts or moe.fused_moe); std::nullopt for other
/// operations.
std::optional<RoutedExperts> getRoutedExperts(Operation *op);

} // namespace mlir::moe

#endif // MOE_ANALYSIS_ROUTEDEXPERTS_H
