//===- MixExperts.cpp - Dense FFNs of several models into routed experts --===//
//
// The pass: its options, and a fresh ExpertMixer for every module it runs
// on (ExpertMixer.cpp builds the mix, Routers.cpp the router weights).
//
//===----------------------------------------------------------------------===//

#include "ExpertMixer.h"

namespace mlir::moe {
#define GEN_PASS_DEF_MIXEXPERTS
#include "moe/Passes.h.inc"
} // namespace mlir::moe

using namespace mlir;
using namespace mlir::moe;

namespace {
struct MixExpertsPass : public moe::impl::MixExpertsBase<MixExpertsPass> {
  using MixExpertsBase::MixExpertsBase;

  void runOnOperation() override {
    MixExpertsOptions options;
    options.baseName = baseName;
    options.expertNames.assign(expertNames.begin(), expertNames.end());
    options.outputName = outputName;
    options.layers.assign(layers.begin(), layers.end());
    options.topK = topK;
    options.routerMode = routerMode;
    options.scoring = scoring;
    options.renormalize = renormalize;
    options.routerStd = routerStd;
    options.seed = seed;
    options.prototypesPath = prototypesPath;
    options.cheapEmbedTokens = cheapEmbedTokens;
    options.routerWeightsPath = routerWeightsPath;
    options.alwaysOn = alwaysOn;
    options.sharedExpert = sharedExpert;
    options.stem = stem;
    options.fineGrained = fineGrained;
    options.routeAttention = routeAttention;
    options.globalRouter = globalRouter;
    options.keepSources = keepSources;
    options.conditionWarning = conditionWarning;
    if (failed(ExpertMixer(getOperation(), options).run()))
      signalPassFailure();
  }
};
} // namespace
