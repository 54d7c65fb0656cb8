//===- MixExperts.cpp - Dense FFNs of several models into routed experts --===//

#include "moe/Support/Format.h"
#include "moe/Transforms/Passes.h"

#include "moe/Support/LinearAlgebra.h"
#include "moe/Transforms/ModelFunctions.h"
#include "moe/Weights/Checkpoint.h"
#include "moe/Weights/WeightEvaluator.h"

#include "mlir/Dialect/Arith/IR/Arith.h"
#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/IR/Builders.h"
#include "llvm/ADT/DenseSet.h"
#include "llvm/ADT/STLExtras.h"
#include "llvm/ADT/StringSet.h"
#include "llvm/ADT/StringSwitch.h"

#include <cmath>

namespace mlir::moe {
#define GEN_PASS_DEF_MIXEXPERTS
#include "moe/Passes.h.inc"
} // namespace mlir::moe

using namespace mlir;
using namespace mlir::moe;

namespace {
enum class RouterMode {
  Gateless,
  Noisy,
  UniformRandom,
  Hidden,
  CheapEmbed,
  BaseInit,
  Given
};

/// Where a router sits. Projection routers get seeds and `given` keys of
/// their own.
enum class RouterSite { Ffn, Gate, Up, Down, Query, Key, Value, Global };

/// The bias of the base-init router: every token to expert 0.
constexpr double kBaseInitPenalty = -30.0;

struct MixExpertsPass : public moe::impl::MixExpertsBase<MixExpertsPass> {
  using MixExpertsBase::MixExpertsBase;
  void runOnOperation() override;

private:
  LogicalResult parseOptions();
  LogicalResult prepareRouterInputs();
  Value routerWeight(OpBuilder &builder, Location loc, RouterSite site,
                     int64_t layer, int64_t rows, int64_t cols);
  std::pair<Value, Value> gating(OpBuilder &builder, Location loc, Value input,
                                 RouterSite site, int64_t layer);
  Value sharedExpertGate(OpBuilder &builder, Location loc, int64_t layer,
                         int64_t hidden);
  Value stack(OpBuilder &builder, Location loc, ArrayRef<Value> weights);
  LogicalResult mixFfn(FfnOp op, size_t index);
  LogicalResult routeProjection(LinearOp op, size_t index, RouterSite site);
  void averageWeights(Operation *op, size_t index);
  Value givenParam(OpBuilder &builder, Location loc, StringRef key,
                   ArrayRef<int64_t> shape);
  void checkRouterConditioning();

  ModuleOp module;
  RouterMode mode = RouterMode::Noisy;
  Scoring scoringKind = Scoring::softmax;
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
  std::shared_ptr<WeightCloner> cloner;
  std::shared_ptr<OpBuilder> weightBuilder;
  DenseMap<Value, Value> averaged;
  std::pair<Value, Value> globalGating;
  std::vector<std::vector<int64_t>> cheapEmbedIds;
  Value cheapEmbedRouter;
  std::string prototypesScope, givenScope;
  std::shared_ptr<weights::Checkpoint> givenCheckpoint;
  /// Router weights read or derived from data, checked for degeneracy.
  SmallVector<std::pair<Value, std::string>> checkedRouters;
  bool failed = false;
};
} // namespace

static int64_t lastDim(Value value) {
  return cast<RankedTensorType>(value.getType()).getShape().back();
}

static RankedTensorType withLastDim(Value value, int64_t last, Type element) {
  SmallVector<int64_t> shape(
      cast<RankedTensorType>(value.getType()).getShape());
  shape.back() = last;
  return RankedTensorType::get(shape, element);
}

static StringRef siteName(RouterSite site) {
  switch (site) {
  case RouterSite::Ffn:
    return "ffn";
  case RouterSite::Gate:
    return "gate_proj";
  case RouterSite::Up:
    return "up_proj";
  case RouterSite::Down:
    return "down_proj";
  case RouterSite::Query:
    return "q_proj";
  case RouterSite::Key:
    return "k_proj";
  case RouterSite::Value:
    return "v_proj";
  case RouterSite::Global:
    return "global";
  }
  llvm_unreachable("unknown router site");
}

/// The key a `given` router file holds for a site.
static std::string givenKey(RouterSite site, int64_t layer) {
  std::string prefix = "model.layers." + std::to_string(layer) + ".";
  switch (site) {
  case RouterSite::Ffn:
    return prefix + "block_sparse_moe.gate.weight";
  case RouterSite::Gate:
  case RouterSite::Up:
  case RouterSite::Down:
    return prefix + "mlp." + siteName(site).str() + ".router.weight";
  case RouterSite::Query:
  case RouterSite::Key:
  case RouterSite::Value:
    return prefix + "self_attn." + siteName(site).str() + ".router.weight";
  case RouterSite::Global:
    return "model.router.weight";
  }
  llvm_unreachable("unknown router site");
}

/// Random routers of different sites must differ: FFN routers of layer l
/// use seed + l, projection p (1 for gate ... 6 for v) seed + 1000 p + l,
/// shared-expert gates seed + 7000 + l, the global router seed.
static int64_t siteSeed(int64_t seed, RouterSite site, int64_t layer) {
  switch (site) {
  case RouterSite::Ffn:
    return seed + layer;
  case RouterSite::Global:
    return seed;
  default:
    return seed + 1000 * static_cast<int64_t>(site) + layer;
  }
}

LogicalResult MixExpertsPass::parseOptions() {
  std::optional<RouterMode> parsed =
      llvm::StringSwitch<std::optional<RouterMode>>(routerMode)
          .Case("gateless", RouterMode::Gateless)
          .Case("noisy", RouterMode::Noisy)
          .Case("uniform-random", RouterMode::UniformRandom)
          .Case("hidden", RouterMode::Hidden)
          .Case("cheap-embed", RouterMode::CheapEmbed)
          .Case("base-init", RouterMode::BaseInit)
          .Case("given", RouterMode::Given)
          .Default(std::nullopt);
  if (!parsed)
    return emitError(module.getLoc())
           << "unknown router mode '" << routerMode
           << "' (gateless, noisy, uniform-random, hidden, cheap-embed, "
              "base-init or given)";
  mode = *parsed;
  if (scoring == "softmax")
    scoringKind = Scoring::softmax;
  else if (scoring == "sigmoid")
    scoringKind = Scoring::sigmoid;
  else
    return emitError(module.getLoc())
           << "unknown scoring '" << scoring << "' (softmax or sigmoid)";
  if (stem != "base" && stem != "average")
    return emitError(module.getLoc())
           << "unknown stem '" << stem << "' (base or average)";
  if (!alwaysOn.empty() && !sharedExpert.empty())
    return emitError(module.getLoc())
           << "always-on and shared-expert are exclusive: a mix has one "
              "shared expert, gated or not";
  if ((mode == RouterMode::Hidden || mode == RouterMode::CheapEmbed) &&
      (fineGrained || routeAttention))
    return emitError(module.getLoc())
           << "router=" << routerMode
           << " builds FFN routers over the hidden size only; fine-grained "
              "and route-attention need noisy, uniform-random, base-init or "
              "given routers";
  if (fineGrained && !sharedExpert.empty())
    return emitError(module.getLoc())
           << "a gated shared expert cannot be combined "
              "with fine-grained routing";
  if (routerStd < 0)
    return emitError(module.getLoc()) << "router-std must be non-negative";

  FailureOr<func::FuncOp> baseFunc =
      lookupModelFunction(module, baseName, "base");
  if (::mlir::failed(baseFunc))
    return failure();
  base = *baseFunc;

  SmallVector<std::string> names(expertNames.begin(), expertNames.end());
  if (names.empty())
    for (func::FuncOp func : getModelFunctions(module))
      names.push_back(func.getSymName().str());
  llvm::StringSet<> seen;
  for (const std::string &name : names) {
    if (!seen.insert(name).second)
      return emitError(module.getLoc())
             << "expert '" << name << "' is listed twice";
    FailureOr<func::FuncOp> func = lookupModelFunction(module, name, "expert");
    if (::mlir::failed(func))
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
    if (::mlir::failed(func))
      return failure();
    sharedModel = *func;
    sharedGated = !sharedExpert.empty();
  }
  if (routed.empty())
    return emitError(module.getLoc()) << "no experts left to route";
  int64_t experts = routed.size();
  if (mode != RouterMode::Gateless && (topK < 1 || topK > experts))
    return emitError(module.getLoc())
           << "k = " << int64_t(topK) << " must be between 1 and "
           << "the number of routed experts (" << experts << ")";

  sources.push_back(base);
  for (func::FuncOp func : routed)
    if (!llvm::is_contained(sources, func))
      sources.push_back(func);
  if (sharedModel && !llvm::is_contained(sources, sharedModel))
    sources.push_back(sharedModel);
  for (func::FuncOp source : sources)
    if (source != base && ::mlir::failed(verifySameStructure(base, source)))
      return failure();
  if (module.lookupSymbol(outputName) &&
      !llvm::any_of(sources, [&](func::FuncOp f) {
        return f.getSymName() == outputName && !keepSources;
      }))
    return emitError(module.getLoc())
           << "the output name '" << outputName << "' is already taken";
  return success();
}

/// Adds a scope for `path` under a fresh name derived from `stem`.
static std::string declareFileScope(ModuleOp module, StringRef stem,
                                    StringRef path) {
  std::string name = stem.str();
  for (int suffix = 1; module.lookupSymbol(name); ++suffix)
    name = (stem + "_" + Twine(suffix)).str();
  OpBuilder builder = OpBuilder::atBlockBegin(module.getBody());
  ScopeOp::create(builder, module.getLoc(), name, path,
                  ScopeFormat::safetensors);
  return name;
}

LogicalResult MixExpertsPass::prepareRouterInputs() {
  int64_t experts = routed.size();
  int64_t layers = 0, hidden = 0;
  base.walk([&](FfnOp ffn) {
    if (std::optional<int64_t> layer = getLayerIndex(ffn))
      layers = std::max(layers, *layer + 1);
    hidden = lastDim(ffn.getInput());
  });
  if (mode == RouterMode::Hidden) {
    if (prototypesPath.empty())
      return emitError(module.getLoc())
             << "router=hidden needs prototypes=<file>";
    auto ckpt = weights::Checkpoint::open(prototypesPath);
    if (!ckpt)
      return emitError(module.getLoc()) << llvm::toString(ckpt.takeError());
    const weights::TensorInfo *info = (*ckpt)->find("prototypes");
    SmallVector<int64_t> expected{layers, experts, hidden};
    if (!info)
      return emitError(module.getLoc())
             << prototypesPath << ": no tensor 'prototypes' (expected shape "
             << formatShape(expected) << ")";
    if (ArrayRef<int64_t>(info->shape) != ArrayRef<int64_t>(expected))
      return emitError(module.getLoc())
             << prototypesPath << ": tensor 'prototypes' has shape "
             << formatShape(info->shape) << " but this mix needs "
             << formatShape(expected) << " (layers, experts, hidden)";
    prototypesScope = declareFileScope(module, "prototypes", prototypesPath);
  }
  if (mode == RouterMode::Given) {
    if (routerWeightsPath.empty())
      return emitError(module.getLoc())
             << "router=given needs router-weights=<file>";
    auto ckpt = weights::Checkpoint::open(routerWeightsPath);
    if (!ckpt)
      return emitError(module.getLoc()) << llvm::toString(ckpt.takeError());
    givenCheckpoint = std::move(*ckpt);
    givenScope = declareFileScope(module, "router_weights", routerWeightsPath);
  }
  if (mode == RouterMode::CheapEmbed) {
    SmallVector<StringRef> lists;
    StringRef(cheapEmbedTokens).split(lists, ';');
    if (cheapEmbedTokens.empty() || int64_t(lists.size()) != experts)
      return emitError(module.getLoc())
             << "router=cheap-embed needs one token-id list per routed expert "
                "in cheap-embed-tokens ("
             << experts << " lists separated by ';'), got '" << cheapEmbedTokens
             << "'";
    for (StringRef list : lists) {
      SmallVector<StringRef> ids;
      list.split(ids, ',', -1, /*KeepEmpty=*/false);
      std::vector<int64_t> parsed;
      for (StringRef id : ids) {
        int64_t value;
        if (id.trim().getAsInteger(10, value) || value < 0)
          return emitError(module.getLoc())
                 << "cheap-embed-tokens: '" << id << "' is not a token id";
        parsed.push_back(value);
      }
      if (parsed.empty())
        return emitError(module.getLoc())
               << "cheap-embed-tokens: every expert needs at least one token";
      cheapEmbedIds.push_back(std::move(parsed));
    }
  }
  return success();
}

Value MixExpertsPass::givenParam(OpBuilder &builder, Location loc,
                                 StringRef key, ArrayRef<int64_t> shape) {
  const weights::TensorInfo *info = givenCheckpoint->find(key);
  if (!info || ArrayRef<int64_t>(info->shape) != shape) {
    InFlightDiagnostic diag = emitError(module.getLoc())
                              << routerWeightsPath << ": ";
    if (!info)
      diag << "no tensor '" << key << "' (expected shape " << formatShape(shape)
           << ")";
    else
      diag << "tensor '" << key << "' has shape " << formatShape(info->shape)
           << " but the router needs " << formatShape(shape);
    failed = true;
  }
  return ParamOp::create(
      builder, loc, RankedTensorType::get(shape, builder.getF32Type()),
      FlatSymbolRefAttr::get(builder.getContext(), givenScope),
      builder.getStringAttr(key), IntegerAttr());
}

Value MixExpertsPass::routerWeight(OpBuilder &builder, Location loc,
                                   RouterSite site, int64_t layer, int64_t rows,
                                   int64_t cols) {
  auto type = RankedTensorType::get({rows, cols}, builder.getF32Type());
  int64_t routerSeed = siteSeed(seed, site, layer);
  std::string what = site == RouterSite::Global
                         ? std::string("the global router")
                         : "the " + siteName(site).str() + " router of layer " +
                               std::to_string(layer);
  switch (mode) {
  case RouterMode::Gateless:
    llvm_unreachable("gate-less mixes have no router");
  case RouterMode::Noisy:
    return RandomNormalOp::create(
        builder, loc, type, builder.getI64IntegerAttr(routerSeed),
        builder.getF64FloatAttr(0.0), builder.getF64FloatAttr(routerStd));
  case RouterMode::UniformRandom: {
    double bound = 1.0 / std::sqrt(double(cols));
    return RandomUniformOp::create(
        builder, loc, type, builder.getI64IntegerAttr(routerSeed),
        builder.getF64FloatAttr(-bound), builder.getF64FloatAttr(bound));
  }
  case RouterMode::Hidden: {
    Value prototypes = ParamOp::create(
        builder, loc, type,
        FlatSymbolRefAttr::get(builder.getContext(), prototypesScope),
        builder.getStringAttr("prototypes"),
        builder.getI64IntegerAttr(std::max<int64_t>(layer, 0)));
    Value weight = NormalizeRowsOp::create(builder, loc, prototypes);
    checkedRouters.push_back({weight, what});
    return weight;
  }
  case RouterMode::CheapEmbed: {
    // Every layer shares one router: build it once.
    if (cheapEmbedRouter)
      return cheapEmbedRouter;
    // The base's table, even when the stem is averaged.
    Value table;
    base.walk([&](EmbeddingOp embedding) { table = embedding.getTable(); });
    table = cloner->clone(builder, table);
    SmallVector<Attribute> lists;
    for (const std::vector<int64_t> &ids : cheapEmbedIds)
      lists.push_back(builder.getDenseI64ArrayAttr(ids));
    cheapEmbedRouter = EmbeddingPrototypesOp::create(
        builder, loc, type, table, builder.getArrayAttr(lists));
    checkedRouters.push_back(
        {cheapEmbedRouter, "the cheap-embed router of every layer"});
    return cheapEmbedRouter;
  }
  case RouterMode::BaseInit:
    return arith::ConstantOp::create(
        builder, loc, type,
        DenseElementsAttr::get(type, builder.getF32FloatAttr(0.0f)));
  case RouterMode::Given: {
    Value weight =
        givenParam(builder, loc, givenKey(site, layer), {rows, cols});
    checkedRouters.push_back({weight, what});
    return weight;
  }
  }
  llvm_unreachable("unknown router mode");
}

std::pair<Value, Value> MixExpertsPass::gating(OpBuilder &builder, Location loc,
                                               Value input, RouterSite site,
                                               int64_t layer) {
  if (globalGating.first)
    return globalGating;
  int64_t experts = routed.size();
  Type f32 = builder.getF32Type(), i64 = builder.getI64Type();
  if (mode == RouterMode::Gateless) {
    auto op =
        UniformGatingOp::create(builder, loc, withLastDim(input, experts, f32),
                                withLastDim(input, experts, i64), input,
                                builder.getI64IntegerAttr(experts));
    return {op.getWeights(), op.getIndices()};
  }
  Value weight;
  {
    OpBuilder::InsertionGuard guard(*weightBuilder);
    weight =
        routerWeight(*weightBuilder, loc, site, layer, experts, lastDim(input));
  }
  Value bias;
  if (mode == RouterMode::BaseInit) {
    SmallVector<float> values(experts, float(kBaseInitPenalty));
    values[0] = 0.0f;
    auto type = RankedTensorType::get({experts}, f32);
    bias = arith::ConstantOp::create(
        *weightBuilder, loc, type,
        DenseElementsAttr::get(type, ArrayRef<float>(values)));
  }
  Value logits = RouterOp::create(
      builder, loc, withLastDim(input, experts, f32), input, weight, bias);
  auto op = TopKGatingOp::create(
      builder, loc, withLastDim(input, topK, f32),
      withLastDim(input, topK, i64), logits, builder.getI64IntegerAttr(topK),
      ScoringAttr::get(builder.getContext(), scoringKind),
      builder.getBoolAttr(true),
      renormalize ? builder.getUnitAttr() : UnitAttr(),
      builder.getF64FloatAttr(0.0), builder.getI64IntegerAttr(0));
  return {op.getWeights(), op.getIndices()};
}

Value MixExpertsPass::sharedExpertGate(OpBuilder &builder, Location loc,
                                       int64_t layer, int64_t hidden) {
  auto type = RankedTensorType::get({1, hidden}, builder.getF32Type());
  if (mode == RouterMode::Noisy)
    return RandomNormalOp::create(
        builder, loc, type, builder.getI64IntegerAttr(seed + 7000 + layer),
        builder.getF64FloatAttr(0.0), builder.getF64FloatAttr(routerStd));
  if (mode == RouterMode::Given)
    return givenParam(builder, loc,
                      "model.layers." + std::to_string(layer) +
                          ".mlp.shared_expert_gate.weight",
                      {1, hidden});
  return arith::ConstantOp::create(
      builder, loc, type,
      DenseElementsAttr::get(type, builder.getF32FloatAttr(0.0f)));
}

Value MixExpertsPass::stack(OpBuilder &builder, Location loc,
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

LogicalResult MixExpertsPass::mixFfn(FfnOp op, size_t index) {
  int64_t layer = *getLayerIndex(op);
  Location loc = op.getLoc();
  OpBuilder builder(op);
  LayerTagger tagger(layer);
  builder.setListener(&tagger);
  bool hasBias = op.getGateBias() || op.getUpBias() || op.getDownBias();
  if (hasBias && !fineGrained)
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
      OpBuilder::InsertionGuard guard(*weightBuilder);
      sharedGateRow =
          sharedExpertGate(*weightBuilder, loc, layer, lastDim(op.getInput()));
    }
  }

  Value x = op.getInput(), result;
  if (!fineGrained) {
    auto [weights, indices] = gating(builder, loc, x, RouterSite::Ffn, layer);
    result = ExpertsOp::create(builder, loc, op.getType(), x, weights, indices,
                               gate, up, down, sharedGate, sharedUp, sharedDown,
                               sharedGateRow, op.getActivation());
  } else {
    auto biasStack = [&](function_ref<Value(FfnOp)> get) -> Value {
      if (!get(op))
        return Value();
      return stack(builder, loc, collect(get));
    };
    auto routedLinear = [&](Value input, Value weightStack, Value bias,
                            RouterSite site) -> Value {
      auto [weights, indices] = gating(builder, loc, input, site, layer);
      int64_t out = cast<RankedTensorType>(weightStack.getType()).getShape()[1];
      return RoutedLinearOp::create(
          builder, loc, withLastDim(input, out, builder.getF32Type()), input,
          weights, indices, weightStack, bias);
    };
    Value upOut =
        routedLinear(x, up, biasStack([](FfnOp f) { return f.getUpBias(); }),
                     RouterSite::Up);
    Value middle;
    if (gate) {
      Value gateOut = routedLinear(
          x, gate, biasStack([](FfnOp f) { return f.getGateBias(); }),
          RouterSite::Gate);
      middle = GluOp::create(builder, loc, gateOut, upOut, op.getActivation());
    } else {
      middle = ActivationOp::create(builder, loc, upOut, op.getActivation());
    }
    result = routedLinear(middle, down,
                          biasStack([](FfnOp f) { return f.getDownBias(); }),
                          RouterSite::Down);
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

LogicalResult MixExpertsPass::routeProjection(LinearOp op, size_t index,
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
  auto [gates, indices] = gating(builder, loc, op.getInput(), site, layer);
  auto routedOp =
      RoutedLinearOp::create(builder, loc, op.getType(), op.getInput(), gates,
                             indices, weightStack, biasStack);
  op.getResult().replaceAllUsesWith(routedOp.getResult());
  op.erase();
  return success();
}

void MixExpertsPass::averageWeights(Operation *op, size_t index) {
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

void MixExpertsPass::checkRouterConditioning() {
  WeightEvaluator evaluator(module);
  for (auto &[weight, what] : checkedRouters) {
    auto value = evaluator.evaluate(weight);
    if (!value) {
      emitError(module.getLoc())
          << what << ": " << llvm::toString(value.takeError());
      failed = true;
      continue;
    }
    const HostTensor &tensor = **value;
    int64_t rows = tensor.shape[0], cols = tensor.shape[1];
    Matrix matrix(rows, cols);
    for (int64_t i = 0; i < rows * cols; ++i)
      matrix.data[i] = tensor.data[i];
    double condition = rowConditionNumber(matrix);
    if (!(condition > conditionWarning))
      continue;
    // Name the most similar pair of rows.
    double bestCosine = -2;
    int64_t bestA = 0, bestB = 0;
    for (int64_t a = 0; a < rows; ++a)
      for (int64_t b = a + 1; b < rows; ++b) {
        double dot = 0, na = 0, nb = 0;
        for (int64_t c = 0; c < cols; ++c) {
          dot += matrix(a, c) * matrix(b, c);
          na += matrix(a, c) * matrix(a, c);
          nb += matrix(b, c) * matrix(b, c);
        }
        double cosine = (na > 0 && nb > 0) ? dot / std::sqrt(na * nb) : 1.0;
        if (cosine > bestCosine) {
          bestCosine = cosine;
          bestA = a;
          bestB = b;
        }
      }
    InFlightDiagnostic warning = weight.getDefiningOp()->emitWarning()
                                 << what << " is degenerate: condition number "
                                 << formatNumber(condition);
    if (rows > 1)
      warning << "; rows " << bestA << " and " << bestB
              << " are the most alike (cosine " << formatNumber(bestCosine)
              << ")";
  }
}

void MixExpertsPass::runOnOperation() {
  module = getOperation();
  // A pass instance may run on several modules: start afresh.
  routed.clear();
  sharedModel = nullptr;
  sources.clear();
  sourceOps.clear();
  mixedLayers.clear();
  averaged.clear();
  globalGating = {};
  cheapEmbedIds.clear();
  cheapEmbedRouter = nullptr;
  givenCheckpoint.reset();
  checkedRouters.clear();
  failed = false;
  if (::mlir::failed(parseOptions()) || ::mlir::failed(prepareRouterInputs()))
    return signalPassFailure();

  // The mix starts as a copy of the base.
  IRMapping baseToMix;
  mix = cast<func::FuncOp>(base->clone(baseToMix));
  module.getBody()->push_back(mix);
  mix.setSymName(outputName + ".partial");
  cloner = std::make_shared<WeightCloner>(baseToMix);
  // Weights move to the top of the mix, in order, so that the weights this
  // pass adds (after them) may read any of them.
  Block &body = mix.getBody().front();
  SmallVector<Operation *> weightOps;
  for (Operation &op : body)
    if (op.getNumResults() == 1 && isWeight(op.getResult(0)))
      weightOps.push_back(&op);
  for (Operation *op : llvm::reverse(weightOps))
    op->moveBefore(&body, body.begin());
  weightBuilder = std::make_shared<OpBuilder>(mix.getContext());
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
  if (layers.empty()) {
    for (int64_t layer = 0; layer < numLayers; ++layer)
      mixedLayers.insert(layer);
  } else {
    for (int64_t layer : layers) {
      if (layer < 0 || layer >= numLayers) {
        emitError(module.getLoc())
            << "layer " << layer << " does not exist (the model has "
            << numLayers << " layers with an FFN)";
        mix.erase();
        return signalPassFailure();
      }
      mixedLayers.insert(layer);
    }
  }

  if (globalRouter && mode != RouterMode::Gateless) {
    Value embedded;
    for (Operation *op : mixOps)
      if (auto embedding = dyn_cast<EmbeddingOp>(op)) {
        embedded = embedding.getResult();
        if (embedded.hasOneUse())
          if (auto scale = dyn_cast<ScaleOp>(*embedded.getUsers().begin()))
            embedded = scale.getResult();
        break;
      }
    if (!embedded) {
      emitError(mix.getLoc())
          << "global-router needs a moe.embedding in the base";
      mix.erase();
      return signalPassFailure();
    }
    OpBuilder builder(mix.getContext());
    builder.setInsertionPointAfterValue(embedded);
    globalGating =
        gating(builder, embedded.getLoc(), embedded, RouterSite::Global, -1);
  }

  // q/k/v projections to route, with their sites.
  DenseMap<Operation *, RouterSite> routedProjections;
  if (routeAttention)
    for (Operation *op : mixOps)
      if (auto attention = dyn_cast<AttentionOp>(op)) {
        std::optional<int64_t> layer = getLayerIndex(op);
        if (!layer || !mixedLayers.contains(*layer))
          continue;
        for (auto [value, site] :
             {std::pair{attention.getQuery(), RouterSite::Query},
              {attention.getKey(), RouterSite::Key},
              {attention.getValue(), RouterSite::Value}}) {
          if (!value.getDefiningOp<LinearOp>()) {
            attention.emitError()
                << "route-attention needs plain moe.linear q/k/v "
                   "projections in layer "
                << *layer;
            mix.erase();
            return signalPassFailure();
          }
          routedProjections[value.getDefiningOp()] = site;
        }
      }

  for (auto [index, op] : llvm::enumerate(mixOps)) {
    std::optional<int64_t> layer = getLayerIndex(op);
    if (auto ffn = dyn_cast<FfnOp>(op);
        ffn && layer && mixedLayers.contains(*layer)) {
      if (::mlir::failed(mixFfn(ffn, index))) {
        mix.erase();
        return signalPassFailure();
      }
      continue;
    }
    if (auto it = routedProjections.find(op); it != routedProjections.end()) {
      (void)routeProjection(cast<LinearOp>(op), index, it->second);
      continue;
    }
    if (stem == "average")
      averageWeights(op, index);
  }

  // Weights of the base that nothing reads any more.
  for (Operation &op :
       llvm::make_early_inc_range(llvm::reverse(mix.getBody().front())))
    if (op.getNumResults() == 1 && isWeight(op.getResult(0)) && op.use_empty())
      op.erase();

  checkRouterConditioning();
  if (failed) {
    mix.erase();
    return signalPassFailure();
  }
  if (!keepSources)
    for (func::FuncOp func : sources)
      func.erase();
  if (module.lookupSymbol(outputName)) {
    emitError(module.getLoc())
        << "the output name '" << outputName << "' is already taken";
    return signalPassFailure();
  }
  mix.setSymName(outputName);
}
