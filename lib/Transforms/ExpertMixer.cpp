//===- ExpertMixer.cpp - Dense FFNs of several models into routed experts -===//
//
// One run of moe-mix-experts: the mix starts as a copy of the base; in every
// chosen layer the dense FFN becomes routed experts over the sources' FFNs
// (or, fine-grained, routed projections), q/k/v projections are routed when
// asked, and the stem is the base's or the mean of the sources'.
//
//===----------------------------------------------------------------------===//

#include "ExpertMixer.h"

#include "moe/Analysis/ModelFunctions.h"

#include "mlir/Dialect/Arith/IR/Arith.h"
#include "llvm/ADT/StringSet.h"

#include <cmath>

using namespace mlir;
using namespace mlir::moe;

static int64_t lastDim(Value value) {
  return cast<RankedTensorType>(value.getType()).getShape().back();
}

static RankedTensorType withLastDim(Value value, int64_t last, Type element) {
  SmallVector<int64_t> shape(
      cast<RankedTensorType>(value.getType()).getShape());
  shape.back() = last;
  return RankedTensorType::get(shape, element);
}

ExpertMixer::ExpertMixer(ModuleOp module, const MixExpertsOptions &options)
    : module(module), options(options) {}

ExpertMixer::~ExpertMixer() = default;

LogicalResult ExpertMixer::selectModels() {
  const std::string &alwaysOn = options.alwaysOn;
  const std::string &sharedExpert = options.sharedExpert;
  bool dataRouter = options.routerMode == RouterMode::hidden ||
                    options.routerMode == RouterMode::cheap_embed;
  if (!alwaysOn.empty() && !sharedExpert.empty())
    return emitError(module.getLoc())
           << "always-on and shared-expert are exclusive: a mix has one "
              "shared expert, gated or not";
  if (dataRouter && (options.fineGrained || options.routeAttention))
    return emitError(module.getLoc())
           << "router=" << stringifyRouterMode(options.routerMode)
           << " builds FFN routers over the hidden size only; fine-grained "
              "and route-attention need noisy, uniform-random, base-init or "
              "given routers";
  if (options.fineGrained && !sharedExpert.empty())
    return emitError(module.getLoc())
           << "a gated shared expert cannot be combined "
              "with fine-grained routing";
  if (!(std::isfinite(options.routerStd) && options.routerStd >= 0))
    return emitError(module.getLoc())
           << "router-std must be a finite non-negative number, got "
           << options.routerStd;

  FailureOr<func::FuncOp> baseFunc =
      lookupModelFunction(module, options.baseName, "base");
  if (failed(baseFunc))
    return failure();
  base = *baseFunc;

  SmallVector<std::string> names(options.expertNames.begin(),
                                 options.expertNames.end());
  if (names.empty())
    for (func::FuncOp func : getModelFunctions(module))
      names.push_back(func.getSymName().str());
  llvm::StringSet<> seen;
  for (const std::string &name : names) {
    if (!seen.insert(name).second)
      return emitError(module.getLoc())
             << "expert '" << name << "' is listed twice";
    FailureOr<func::FuncOp> func = lookupModelFunction(module, name, "expert");
    if (failed(func))
      return failure();
    if (name == alwaysOn || name == sharedExpert)
      continue;
    routed.push_back(*func);
  }
  StringRef sharedName =
      alwaysOn.empty() ? StringRef(sharedExpert) : StringRef(alwaysOn);
  if (!sharedName.empty()) {
    FailureOr<func::FuncOp> func =
        lookupModelFunction(module, sharedName, "shared expert");
    if (failed(func))
      return failure();
    sharedModel = *func;
    sharedGated = !sharedExpert.empty();
  }
  if (routed.empty())
    return emitError(module.getLoc()) << "no experts left to route";
  int64_t experts = routed.size();
  if (options.routerMode != RouterMode::gateless &&
      (options.topK < 1 || options.topK > experts))
    return emitError(module.getLoc())
           << "k = " << options.topK << " must be between 1 and "
           << "the number of routed experts (" << experts << ")";

  routers = std::make_unique<RouterFactory>(module, options, base, experts);
  sources.push_back(base);
  for (func::FuncOp func : routed)
    if (!llvm::is_contained(sources, func))
      sources.push_back(func);
  if (sharedModel && !llvm::is_contained(sources, sharedModel))
    sources.push_back(sharedModel);
  for (func::FuncOp source : sources)
    if (source != base && failed(verifySameStructure(base, source)))
      return failure();
  if (module.lookupSymbol(options.outputName) &&
      !llvm::any_of(sources, [&](func::FuncOp f) {
        return f.getSymName() == options.outputName && !options.keepSources;
      }))
    return emitError(module.getLoc())
           << "the output name '" << options.outputName << "' is already taken";
  return success();
}

FailureOr<std::pair<Value, Value>>
ExpertMixer::gating(OpBuilder &builder, Location loc, Value input,
                    RouterSite site, int64_t layer) {
  if (globalGating.first)
    return globalGating;
  int64_t topK = options.topK;
  int64_t experts = routed.size();
  Type f32 = builder.getF32Type(), i64 = builder.getI64Type();
  if (options.routerMode == RouterMode::gateless) {
    auto op =
        UniformGatingOp::create(builder, loc, withLastDim(input, experts, f32),
                                withLastDim(input, experts, i64), input,
                                builder.getI64IntegerAttr(experts));
    return std::pair<Value, Value>(op.getWeights(), op.getIndices());
  }
  FailureOr<Value> weight = routers->weight(*weightBuilder, loc, site, layer,
                                            experts, lastDim(input), *cloner);
  if (failed(weight))
    return failure();
  FailureOr<Value> bias =
      routers->bias(*weightBuilder, loc, site, layer, experts);
  if (failed(bias))
    return failure();
  Value logits = RouterOp::create(
      builder, loc, withLastDim(input, experts, f32), input, *weight, *bias);
  auto op = TopKGatingOp::create(
      builder, loc, withLastDim(input, topK, f32),
      withLastDim(input, topK, i64), logits, builder.getI64IntegerAttr(topK),
      ScoringAttr::get(builder.getContext(), options.scoring),
      builder.getBoolAttr(true),
      options.renormalize ? builder.getUnitAttr() : UnitAttr(),
      builder.getF64FloatAttr(0.0), builder.getI64IntegerAttr(0));
  return std::pair<Value, Value>(op.getWeights(), op.getIndices());
}

Value ExpertMixer::stack(OpBuilder &builder, Location loc,
                         ArrayRef<Value> weights) {
  SmallVector<Value> cloned;
  for (Value weight : weights)
    cloned.push_back(cloner->clone(*weightBuilder, weight));
  auto type = cast<RankedTensorType>(cloned.front().getType());
  SmallVector<int64_t> shape{int64_t(cloned.size())};
  llvm::append_range(shape, type.getShape());
  return StackOp::create(*weightBuilder, loc,
                         RankedTensorType::get(shape, type.getElementType()),
                         cloned);
}

LogicalResult ExpertMixer::mixFfn(FfnOp op, size_t index) {
  int64_t layer = *getLayerIndex(op);
  Location loc = op.getLoc();
  OpBuilder builder(op);
  LayerTagger tagger(layer);
  builder.setListener(&tagger);
  bool hasBias = op.getGateBias() || op.getUpBias() || op.getDownBias();
  if (hasBias && !options.fineGrained)
    return op.emitError() << "the FFN of layer " << layer
                          << " has biases, which moe.experts cannot carry; "
                             "mix it with fine-grained=true";

  // The source FFN aligned with `op` in model `func`.
  auto ffnOf = [&](func::FuncOp func) {
    return cast<FfnOp>(sourceOps[func][index]);
  };
  auto collect = [&](function_ref<Value(FfnOp)> get) {
    SmallVector<Value> values;
    for (func::FuncOp func : routed)
      values.push_back(get(ffnOf(func)));
    return values;
  };
  Value gate, up, down, sharedGate, sharedUp, sharedDown, sharedGateRow;
  if (op.getGate())
    gate = stack(builder, loc, collect([](FfnOp f) { return f.getGate(); }));
  up = stack(builder, loc, collect([](FfnOp f) { return f.getUp(); }));
  down = stack(builder, loc, collect([](FfnOp f) { return f.getDown(); }));
  if (sharedModel) {
    FfnOp shared = ffnOf(sharedModel);
    if (shared.getGate())
      sharedGate = cloner->clone(*weightBuilder, shared.getGate());
    sharedUp = cloner->clone(*weightBuilder, shared.getUp());
    sharedDown = cloner->clone(*weightBuilder, shared.getDown());
    if (sharedGated) {
      FailureOr<Value> row = routers->sharedExpertGate(
          *weightBuilder, loc, layer, lastDim(op.getInput()));
      if (failed(row))
        return failure();
      sharedGateRow = *row;
    }
  }

  Value x = op.getInput(), result;
  if (!options.fineGrained) {
    FailureOr<std::pair<Value, Value>> routing =
        gating(builder, loc, x, RouterSite::Ffn, layer);
    if (failed(routing))
      return failure();
    result =
        ExpertsOp::create(builder, loc, op.getType(), x, routing->first,
                          routing->second, gate, up, down, sharedGate, sharedUp,
                          sharedDown, sharedGateRow, op.getActivation());
  } else {
    auto biasStack = [&](function_ref<Value(FfnOp)> get) -> Value {
      if (!get(op))
        return Value();
      return stack(builder, loc, collect(get));
    };
    auto routedLinear = [&](Value input, Value weightStack, Value bias,
                            RouterSite site) -> FailureOr<Value> {
      FailureOr<std::pair<Value, Value>> routing =
          gating(builder, loc, input, site, layer);
      if (failed(routing))
        return failure();
      int64_t out = cast<RankedTensorType>(weightStack.getType()).getShape()[1];
      return RoutedLinearOp::create(
                 builder, loc, withLastDim(input, out, builder.getF32Type()),
                 input, routing->first, routing->second, weightStack, bias)
          .getResult();
    };
    FailureOr<Value> upOut =
        routedLinear(x, up, biasStack([](FfnOp f) { return f.getUpBias(); }),
                     RouterSite::Up);
    if (failed(upOut))
      return failure();
    Value middle;
    if (gate) {
      FailureOr<Value> gateOut = routedLinear(
          x, gate, biasStack([](FfnOp f) { return f.getGateBias(); }),
          RouterSite::Gate);
      if (failed(gateOut))
        return failure();
      middle =
          GluOp::create(builder, loc, *gateOut, *upOut, op.getActivation());
    } else {
      middle = ActivationOp::create(builder, loc, *upOut, op.getActivation());
    }
    FailureOr<Value> downOut = routedLinear(
        middle, down, biasStack([](FfnOp f) { return f.getDownBias(); }),
        RouterSite::Down);
    if (failed(downOut))
      return failure();
    result = *downOut;
    if (sharedModel) {
      FfnOp shared = ffnOf(sharedModel);
      auto clone = [&](Value v) {
        return v ? cloner->clone(*weightBuilder, v) : Value();
      };
      Value sharedOut = FfnOp::create(
          builder, loc, op.getType(), x, sharedGate, sharedUp, sharedDown,
          clone(shared.getGateBias()), clone(shared.getUpBias()),
          clone(shared.getDownBias()), shared.getActivation());
      result = arith::AddFOp::create(builder, loc, result, sharedOut);
    }
  }
  op.getResult().replaceAllUsesWith(result);
  op.erase();
  return success();
}

LogicalResult ExpertMixer::routeProjection(LinearOp op, size_t index,
                                           RouterSite site) {
  int64_t layer = *getLayerIndex(op);
  OpBuilder builder(op);
  LayerTagger tagger(layer);
  builder.setListener(&tagger);
  Location loc = op.getLoc();
  SmallVector<Value> weights, biases;
  for (func::FuncOp func : routed) {
    auto linear = dyn_cast<LinearOp>(sourceOps[func][index]);
    weights.push_back(linear.getWeight());
    if (linear.getBias())
      biases.push_back(linear.getBias());
  }
  Value weightStack = stack(builder, loc, weights);
  Value biasStack = biases.empty() ? Value() : stack(builder, loc, biases);
  FailureOr<std::pair<Value, Value>> routing =
      gating(builder, loc, op.getInput(), site, layer);
  if (failed(routing))
    return failure();
  auto routedOp = RoutedLinearOp::create(
      builder, loc, op.getType(), op.getInput(), routing->first,
      routing->second, weightStack, biasStack);
  op.getResult().replaceAllUsesWith(routedOp.getResult());
  op.erase();
  return success();
}

void ExpertMixer::averageWeights(Operation *op, size_t index) {
  for (OpOperand &operand : op->getOpOperands()) {
    Value current = operand.get();
    if (!isWeight(current))
      continue;
    if (Value known = averaged.lookup(current)) {
      operand.set(known);
      continue;
    }
    SmallVector<Value> values;
    for (func::FuncOp func : sources) {
      Value value = cloner->clone(
          *weightBuilder,
          sourceOps[func][index]->getOperand(operand.getOperandNumber()));
      if (!llvm::is_contained(values, value))
        values.push_back(value);
    }
    Value mean = values.front();
    if (values.size() > 1)
      mean = AverageOp::create(*weightBuilder, current.getLoc(),
                               current.getType(), values);
    averaged[current] = mean;
    operand.set(mean);
  }
}

LogicalResult ExpertMixer::run() {
  if (failed(selectModels()) || failed(routers->prepare()))
    return failure();
  // The mix starts as a copy of the base, under a name of its own until it
  // is complete.
  IRMapping baseToMix;
  mix = cast<func::FuncOp>(base->clone(baseToMix));
  module.getBody()->push_back(mix);
  mix.setSymName(options.outputName + ".partial");
  if (failed(build(baseToMix))) {
    mix.erase();
    return failure();
  }
  if (!options.keepSources)
    for (func::FuncOp func : sources)
      func.erase();
  if (module.lookupSymbol(options.outputName))
    return emitError(module.getLoc())
           << "the output name '" << options.outputName << "' is already taken";
  mix.setSymName(options.outputName);
  return success();
}

LogicalResult ExpertMixer::build(IRMapping &baseToMix) {
  cloner = std::make_unique<WeightCloner>(baseToMix);
  // Weights move to the top of the mix, in order, so that the weights this
  // pass adds (after them) may read any of them.
  Block &body = mix.getBody().front();
  SmallVector<Operation *> weightOps;
  for (Operation &op : body)
    if (op.getNumResults() == 1 && isWeight(op.getResult(0)))
      weightOps.push_back(&op);
  for (Operation *op : llvm::reverse(weightOps))
    op->moveBefore(&body, body.begin());
  weightBuilder = std::make_unique<OpBuilder>(mix.getContext());
  weightBuilder->setInsertionPoint(&body,
                                   std::next(body.begin(), weightOps.size()));

  SmallVector<Operation *> mixOps = getComputeOps(mix);
  for (func::FuncOp func : sources)
    sourceOps[func] = getComputeOps(func);

  int64_t numLayers = 0;
  for (Operation *op : mixOps)
    if (isa<FfnOp>(op))
      if (std::optional<int64_t> layer = getLayerIndex(op))
        numLayers = std::max(numLayers, *layer + 1);
  if (options.layers.empty()) {
    for (int64_t layer = 0; layer < numLayers; ++layer)
      mixedLayers.insert(layer);
  } else {
    for (int64_t layer : options.layers) {
      if (layer < 0 || layer >= numLayers)
        return emitError(module.getLoc())
               << "layer " << layer << " does not exist (the model has "
               << numLayers << " layers with an FFN)";
      mixedLayers.insert(layer);
    }
  }

  if (options.globalRouter && options.routerMode != RouterMode::gateless) {
    Value embedded;
    for (Operation *op : mixOps)
      if (auto embedding = dyn_cast<EmbeddingOp>(op)) {
        embedded = embedding.getResult();
        if (embedded.hasOneUse())
          if (auto scale = dyn_cast<ScaleOp>(*embedded.getUsers().begin()))
            embedded = scale.getResult();
        break;
      }
    if (!embedded)
      return emitError(mix.getLoc())
             << "global-router needs a moe.embedding in the base";
    OpBuilder builder(mix.getContext());
    builder.setInsertionPointAfterValue(embedded);
    FailureOr<std::pair<Value, Value>> shared =
        gating(builder, embedded.getLoc(), embedded, RouterSite::Global, -1);
    if (failed(shared))
      return failure();
    globalGating = *shared;
  }

  // q/k/v projections to route, with their sites.
  DenseMap<Operation *, RouterSite> routedProjections;
  if (options.routeAttention)
    for (Operation *op : mixOps)
      if (auto attention = dyn_cast<AttentionOp>(op)) {
        std::optional<int64_t> layer = getLayerIndex(op);
        if (!layer || !mixedLayers.contains(*layer))
          continue;
        for (auto [value, site] :
             {std::pair{attention.getQuery(), RouterSite::Query},
              {attention.getKey(), RouterSite::Key},
              {attention.getValue(), RouterSite::Value}}) {
          if (!value.getDefiningOp<LinearOp>())
            return attention.emitError()
                   << "route-attention needs plain moe.linear q/k/v "
                      "projections in layer "
                   << *layer;
          routedProjections[value.getDefiningOp()] = site;
        }
      }

  for (auto [index, op] : llvm::enumerate(mixOps)) {
    std::optional<int64_t> layer = getLayerIndex(op);
    if (auto ffn = dyn_cast<FfnOp>(op);
        ffn && layer && mixedLayers.contains(*layer)) {
      if (failed(mixFfn(ffn, index)))
        return failure();
      continue;
    }
    if (auto it = routedProjections.find(op); it != routedProjections.end()) {
      if (failed(routeProjection(cast<LinearOp>(op), index, it->second)))
        return failure();
      continue;
    }
    if (options.stem == StemSource::average)
      averageWeights(op, index);
  }

  // Weights of the base that nothing reads any more.
  for (Operation &op :
       llvm::make_early_inc_range(llvm::reverse(mix.getBody().front())))
    if (op.getNumResults() == 1 && isWeight(op.getResult(0)) && op.use_empty())
      op.erase();
  return routers->checkConditioning();
}
