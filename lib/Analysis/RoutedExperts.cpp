//===- RoutedExperts.cpp - Routed experts, whichever op spells them -------===//

#include "moe/Analysis/RoutedExperts.h"

using namespace mlir;
using namespace mlir::moe;

static int64_t dim(Value value, unsigned index) {
  return cast<RankedTensorType>(value.getType()).getShape()[index];
}

bool RoutedExperts::weightsSumToOne() const {
  return gateless() ||
         (scoring == Scoring::softmax &&
          (renormalize || !scoreBeforeTopK || topK == numExperts));
}

int64_t RoutedExperts::intermediateSize() const { return dim(up, 1); }

int64_t RoutedExperts::sharedIntermediateSize() const {
  return dim(sharedUp, 0);
}

/// The routing of a moe.experts: nothing to add for a moe.uniform_gating,
/// the router and gating attributes of a moe.topk_gating of a moe.router.
static void matchGating(ExpertsOp experts, RoutedExperts &routed) {
  Value weights = experts.getWeights();
  if (auto uniform = weights.getDefiningOp<UniformGatingOp>()) {
    if (experts.getIndices() == uniform.getIndices()) {
      routed.routing = RoutedExperts::Routing::Uniform;
      routed.gating = uniform;
    }
    return;
  }
  auto gating = weights.getDefiningOp<TopKGatingOp>();
  if (!gating || experts.getIndices() != gating.getIndices())
    return;
  routed.gating = gating;
  routed.topK = gating.getK();
  routed.scoring = gating.getScoring();
  routed.scoreBeforeTopK = gating.getScoreBeforeTopk();
  routed.renormalize = gating.getRenormalize();
  routed.noiseStd = gating.getNoiseStd().convertToDouble();
  auto router = gating.getLogits().getDefiningOp<RouterOp>();
  if (!router)
    return;
  routed.routing = RoutedExperts::Routing::Router;
  routed.router = router.getWeight();
  routed.routerBias = router.getBias();
  routed.routerInput = router.getInput();
}

std::optional<RoutedExperts> mlir::moe::getRoutedExperts(Operation *op) {
  RoutedExperts routed;
  routed.op = op;
  if (auto experts = dyn_cast<ExpertsOp>(op)) {
    routed.gate = experts.getGate();
    routed.up = experts.getUp();
    routed.down = experts.getDown();
    routed.sharedGate = experts.getSharedGate();
    routed.sharedUp = experts.getSharedUp();
    routed.sharedDown = experts.getSharedDown();
    routed.sharedExpertGate = experts.getSharedExpertGate();
    routed.activation = experts.getActivation();
    routed.topK = cast<RankedTensorType>(experts.getIndices().getType())
                      .getShape()
                      .back();
    matchGating(experts, routed);
  } else if (auto fused = dyn_cast<FusedMoeOp>(op)) {
    routed.routing = fused.getRouter() ? RoutedExperts::Routing::Router
                                       : RoutedExperts::Routing::Uniform;
    routed.router = fused.getRouter();
    routed.routerBias = fused.getRouterBias();
    routed.routerInput = fused.getInput();
    routed.gate = fused.getGate();
    routed.up = fused.getUp();
    routed.down = fused.getDown();
    routed.sharedGate = fused.getSharedGate();
    routed.sharedUp = fused.getSharedUp();
    routed.sharedDown = fused.getSharedDown();
    routed.sharedExpertGate = fused.getSharedExpertGate();
    routed.activation = fused.getActivation();
    routed.topK = fused.getK();
    routed.scoring = fused.getScoring();
    routed.scoreBeforeTopK = fused.getScoreBeforeTopk();
    routed.renormalize = fused.getRenormalize();
    routed.noiseStd = fused.getNoiseStd().convertToDouble();
  } else {
    return std::nullopt;
  }
  routed.numExperts = dim(routed.up, 0);
  if (routed.gateless())
    routed.topK = routed.numExperts;
  return routed;
}
