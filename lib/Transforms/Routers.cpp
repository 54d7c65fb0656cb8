//===- Routers.cpp - The router weights of moe-mix-experts ----------------===//

#include "Routers.h"

#include "moe/Formats/HF/TensorNames.h"
#include "moe/Support/Format.h"
#include "moe/Support/LinearAlgebra.h"
#include "moe/Weights/WeightEvaluator.h"

#include "mlir/Dialect/Arith/IR/Arith.h"

#include <cmath>

using namespace mlir;
using namespace mlir::moe;

/// The bias of the base-init router: every token to expert 0.
static constexpr double kBaseInitPenalty = -30.0;

static StringRef projectionOf(RouterSite site) {
  switch (site) {
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
  case RouterSite::Ffn:
    return "ffn";
  case RouterSite::Global:
    return "global";
  }
  llvm_unreachable("unknown router site");
}

/// The key a `given` router file holds for a site.
static std::string givenKey(RouterSite site, int64_t layer) {
  switch (site) {
  case RouterSite::Ffn:
    return hf::mixtralRouterKey(layer);
  case RouterSite::Gate:
  case RouterSite::Up:
  case RouterSite::Down:
    return hf::projectionRouterKey(hf::mlpModule(layer, projectionOf(site)));
  case RouterSite::Query:
  case RouterSite::Key:
  case RouterSite::Value:
    return hf::projectionRouterKey(
        hf::attentionModule(layer, projectionOf(site)));
  case RouterSite::Global:
    return hf::kGlobalRouterKey.str();
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

static int64_t lastDim(Value value) {
  return cast<RankedTensorType>(value.getType()).getShape().back();
}

RouterFactory::RouterFactory(ModuleOp module, const MixExpertsOptions &options,
                             func::FuncOp base, int64_t numExperts)
    : module(module), options(options), base(base), numExperts(numExperts) {}

LogicalResult RouterFactory::prepare() {
  int64_t layers = 0, hidden = 0;
  base.walk([&](FfnOp ffn) {
    if (std::optional<int64_t> layer = getLayerIndex(ffn))
      layers = std::max(layers, *layer + 1);
    hidden = lastDim(ffn.getInput());
  });
  const std::string &prototypes = options.prototypesPath;
  if (options.routerMode == RouterMode::hidden) {
    if (prototypes.empty())
      return emitError(module.getLoc())
             << "router=hidden needs prototypes=<file>";
    auto ckpt = weights::Checkpoint::open(prototypes);
    if (!ckpt)
      return emitError(module.getLoc()) << llvm::toString(ckpt.takeError());
    const weights::TensorInfo *info = (*ckpt)->find("prototypes");
    SmallVector<int64_t> expected{layers, numExperts, hidden};
    if (!info)
      return emitError(module.getLoc())
             << prototypes << ": no tensor 'prototypes' (expected shape "
             << formatShape(expected) << ")";
    if (ArrayRef<int64_t>(info->shape) != ArrayRef<int64_t>(expected))
      return emitError(module.getLoc())
             << prototypes << ": tensor 'prototypes' has shape "
             << formatShape(info->shape) << " but this mix needs "
             << formatShape(expected) << " (layers, experts, hidden)";
    prototypesScope = declareFileScope(module, "prototypes", prototypes);
  }
  if (options.routerMode == RouterMode::given) {
    if (options.routerWeightsPath.empty())
      return emitError(module.getLoc())
             << "router=given needs router-weights=<file>";
    auto ckpt = weights::Checkpoint::open(options.routerWeightsPath);
    if (!ckpt)
      return emitError(module.getLoc()) << llvm::toString(ckpt.takeError());
    givenCheckpoint = std::move(*ckpt);
    givenScope =
        declareFileScope(module, "router_weights", options.routerWeightsPath);
  }
  if (options.routerMode == RouterMode::cheap_embed) {
    StringRef tokens = options.cheapEmbedTokens;
    SmallVector<StringRef> lists;
    tokens.split(lists, ';');
    if (tokens.empty() || int64_t(lists.size()) != numExperts)
      return emitError(module.getLoc())
             << "router=cheap-embed needs one token-id list per routed expert "
                "in cheap-embed-tokens ("
             << numExperts << " lists separated by ';'), got '" << tokens
             << "'";
    // Token ids are checked here, before any weight is evaluated from them.
    int64_t vocabulary = ShapedType::kDynamic;
    base.walk([&](EmbeddingOp embedding) {
      vocabulary =
          cast<RankedTensorType>(embedding.getTable().getType()).getDimSize(0);
    });
    for (StringRef list : lists) {
      SmallVector<StringRef> ids;
      list.split(ids, ',', -1, /*KeepEmpty=*/false);
      std::vector<int64_t> parsed;
      for (StringRef id : ids) {
        int64_t value;
        if (id.trim().getAsInteger(10, value) || value < 0)
          return emitError(module.getLoc())
                 << "cheap-embed-tokens: '" << id << "' is not a token id";
        if (!ShapedType::isDynamic(vocabulary) && value >= vocabulary)
          return emitError(module.getLoc())
                 << "cheap-embed-tokens: token id " << value
                 << " is outside the base's vocabulary of " << vocabulary
                 << " tokens";
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

FailureOr<Value> RouterFactory::givenParam(OpBuilder &builder, Location loc,
                                           StringRef key,
                                           ArrayRef<int64_t> shape) {
  const weights::TensorInfo *info = givenCheckpoint->find(key);
  if (!info || ArrayRef<int64_t>(info->shape) != shape) {
    InFlightDiagnostic diag = emitError(module.getLoc())
                              << options.routerWeightsPath << ": ";
    if (!info)
      diag << "no tensor '" << key << "' (expected shape " << formatShape(shape)
           << ")";
    else
      diag << "tensor '" << key << "' has shape " << formatShape(info->shape)
           << " but the router needs " << formatShape(shape);
    return failure();
  }
  return ParamOp::create(
             builder, loc, RankedTensorType::get(shape, builder.getF32Type()),
             FlatSymbolRefAttr::get(builder.getContext(), givenScope),
             builder.getStringAttr(key), IntegerAttr())
      .getResult();
}

FailureOr<Value> RouterFactory::weight(OpBuilder &builder, Location loc,
                                       RouterSite site, int64_t layer,
                                       int64_t rows, int64_t cols,
                                       WeightCloner &cloner) {
  auto type = RankedTensorType::get({rows, cols}, builder.getF32Type());
  int64_t routerSeed = siteSeed(options.seed, site, layer);
  std::string what = site == RouterSite::Global
                         ? std::string("the global router")
                         : "the " + projectionOf(site).str() +
                               " router of layer " + std::to_string(layer);
  switch (options.routerMode) {
  case RouterMode::gateless:
    llvm_unreachable("gate-less mixes have no router");
  case RouterMode::noisy:
    return RandomNormalOp::create(builder, loc, type,
                                  builder.getI64IntegerAttr(routerSeed),
                                  builder.getF64FloatAttr(0.0),
                                  builder.getF64FloatAttr(options.routerStd))
        .getResult();
  case RouterMode::uniform_random: {
    double bound = 1.0 / std::sqrt(double(cols));
    return RandomUniformOp::create(
               builder, loc, type, builder.getI64IntegerAttr(routerSeed),
               builder.getF64FloatAttr(-bound), builder.getF64FloatAttr(bound))
        .getResult();
  }
  case RouterMode::hidden: {
    Value prototypes = ParamOp::create(
        builder, loc, type,
        FlatSymbolRefAttr::get(builder.getContext(), prototypesScope),
        builder.getStringAttr("prototypes"),
        builder.getI64IntegerAttr(std::max<int64_t>(layer, 0)));
    Value weight = NormalizeRowsOp::create(builder, loc, prototypes);
    checkedRouters.push_back({weight, what});
    return weight;
  }
  case RouterMode::cheap_embed: {
    // Every layer shares one router: build it once.
    if (cheapEmbedRouter)
      return cheapEmbedRouter;
    // The base's table, even when the stem is averaged.
    Value table;
    base.walk([&](EmbeddingOp embedding) { table = embedding.getTable(); });
    table = cloner.clone(builder, table);
    SmallVector<Attribute> lists;
    for (const std::vector<int64_t> &ids : cheapEmbedIds)
      lists.push_back(builder.getDenseI64ArrayAttr(ids));
    cheapEmbedRouter = EmbeddingPrototypesOp::create(
        builder, loc, type, table, builder.getArrayAttr(lists));
    checkedRouters.push_back(
        {cheapEmbedRouter, "the cheap-embed router of every layer"});
    return cheapEmbedRouter;
  }
  case RouterMode::base_init:
    return arith::ConstantOp::create(
               builder, loc, type,
               DenseElementsAttr::get(type, builder.getF32FloatAttr(0.0f)))
        .getResult();
  case RouterMode::given: {
    FailureOr<Value> weight =
        givenParam(builder, loc, givenKey(site, layer), {rows, cols});
    if (succeeded(weight))
      checkedRouters.push_back({*weight, what});
    return weight;
  }
  }
  llvm_unreachable("unknown router mode");
}

FailureOr<Value> RouterFactory::bias(OpBuilder &builder, Location loc,
                                     RouterSite site, int64_t layer,
                                     int64_t rows) {
  if (options.routerMode == RouterMode::given) {
    // A trained router may keep a bias; the file need not have one.
    std::string key =
        hf::biasKey(*hf::moduleOfWeightKey(givenKey(site, layer)));
    if (!givenCheckpoint->find(key))
      return Value();
    return givenParam(builder, loc, key, {rows});
  }
  if (options.routerMode != RouterMode::base_init)
    return Value();
  SmallVector<float> values(rows, float(kBaseInitPenalty));
  values[0] = 0.0f;
  auto type = RankedTensorType::get({rows}, builder.getF32Type());
  return arith::ConstantOp::create(
             builder, loc, type,
             DenseElementsAttr::get(type, ArrayRef<float>(values)))
      .getResult();
}

FailureOr<Value> RouterFactory::sharedExpertGate(OpBuilder &builder,
                                                 Location loc, int64_t layer,
                                                 int64_t hidden) {
  auto type = RankedTensorType::get({1, hidden}, builder.getF32Type());
  if (options.routerMode == RouterMode::noisy)
    return RandomNormalOp::create(
               builder, loc, type,
               builder.getI64IntegerAttr(options.seed + 7000 + layer),
               builder.getF64FloatAttr(0.0),
               builder.getF64FloatAttr(options.routerStd))
        .getResult();
  if (options.routerMode == RouterMode::given)
    return givenParam(builder, loc, hf::sharedExpertGateKey(layer),
                      {1, hidden});
  return arith::ConstantOp::create(
             builder, loc, type,
             DenseElementsAttr::get(type, builder.getF32FloatAttr(0.0f)))
      .getResult();
}

LogicalResult RouterFactory::checkConditioning() {
  WeightEvaluator evaluator(module);
  bool evaluated = true;
  for (auto &[weight, what] : checkedRouters) {
    auto value = evaluator.evaluate(weight);
    if (!value) {
      emitError(module.getLoc())
          << what << ": " << llvm::toString(value.takeError());
      evaluated = false;
      continue;
    }
    const HostTensor &tensor = **value;
    int64_t rows = tensor.shape[0], cols = tensor.shape[1];
    Matrix matrix(rows, cols);
    for (int64_t i = 0; i < rows * cols; ++i)
      matrix.data[i] = tensor.data[i];
    double condition = rowConditionNumber(matrix);
    if (!(condition > options.conditionWarning))
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
  return success(evaluated);
}
