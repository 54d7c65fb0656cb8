//===- MixAdapters.cpp - LoRA adapters into mixtures of adapters ----------===//

#include "moe/Transforms/Passes.h"

#include "moe/Analysis/ModelFunctions.h"
#include "moe/Formats/HF/TensorNames.h"
#include "moe/Transforms/MixingSupport.h"
#include "moe/Weights/Checkpoint.h"

#include "mlir/Dialect/Arith/IR/Arith.h"
#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/IR/Builders.h"
#include "llvm/ADT/StringSet.h"

#include <cmath>

namespace mlir::moe {
#define GEN_PASS_DEF_MIXADAPTERS
#include "moe/Passes.h.inc"
} // namespace mlir::moe

using namespace mlir;
using namespace mlir::moe;

namespace {
struct MixAdaptersPass : public moe::impl::MixAdaptersBase<MixAdaptersPass> {
  using MixAdaptersBase::MixAdaptersBase;
  void runOnOperation() override;

private:
  LogicalResult parseOptions();
  FailureOr<Value> routerWeight(OpBuilder &builder, Location loc,
                                StringRef module, int64_t position,
                                int64_t rows, int64_t cols);

  ModuleOp moduleOp;
  func::FuncOp base;
  SmallVector<func::FuncOp> adapters;
  std::string givenScope;
  std::shared_ptr<weights::Checkpoint> given;
};
} // namespace

LogicalResult MixAdaptersPass::parseOptions() {
  if (topK < 0)
    return emitError(moduleOp.getLoc()) << "top-k must be 0 (all) or positive";
  if (!(std::isfinite(routerStd) && routerStd >= 0))
    return emitError(moduleOp.getLoc())
           << "router-std must be a finite non-negative number, got "
           << double(routerStd);
  FailureOr<func::FuncOp> baseFunc =
      lookupModelFunction(moduleOp, baseName, "base");
  if (::mlir::failed(baseFunc))
    return failure();
  base = *baseFunc;

  SmallVector<std::string> names(adapterNames.begin(), adapterNames.end());
  if (names.empty())
    for (func::FuncOp func : getModelFunctions(moduleOp)) {
      bool hasLora = false;
      func.walk([&](LoraLinearOp) { hasLora = true; });
      if (func != base && hasLora)
        names.push_back(func.getSymName().str());
    }
  if (names.empty())
    return emitError(moduleOp.getLoc())
           << "no adapter functions (with moe.lora_linear) to mix";
  llvm::StringSet<> seen;
  for (const std::string &name : names) {
    if (!seen.insert(name).second)
      return emitError(moduleOp.getLoc())
             << "adapter '" << name << "' is listed twice";
    FailureOr<func::FuncOp> func =
        lookupModelFunction(moduleOp, name, "adapter");
    if (::mlir::failed(func) ||
        ::mlir::failed(verifySameStructure(base, *func)))
      return failure();
    adapters.push_back(*func);
  }
  if (routerMode == AdapterRouterMode::given) {
    if (routerWeightsPath.empty())
      return emitError(moduleOp.getLoc())
             << "router=given needs router-weights=<file>";
    auto ckpt = weights::Checkpoint::open(routerWeightsPath);
    if (!ckpt)
      return emitError(moduleOp.getLoc()) << llvm::toString(ckpt.takeError());
    given = std::move(*ckpt);
    givenScope =
        declareFileScope(moduleOp, "adapter_router_weights", routerWeightsPath);
  }
  if (moduleOp.lookupSymbol(outputName) &&
      !(outputName == baseName && !keepSources) &&
      !(llvm::is_contained(names, outputName) && !keepSources))
    return emitError(moduleOp.getLoc())
           << "the output name '" << outputName << "' is already taken";
  return success();
}

FailureOr<Value> MixAdaptersPass::routerWeight(OpBuilder &builder, Location loc,
                                               StringRef module,
                                               int64_t position, int64_t rows,
                                               int64_t cols) {
  auto type = RankedTensorType::get({rows, cols}, builder.getF32Type());
  if (routerMode == AdapterRouterMode::noisy)
    return RandomNormalOp::create(
               builder, loc, type, builder.getI64IntegerAttr(seed + position),
               builder.getF64FloatAttr(0.0), builder.getF64FloatAttr(routerStd))
        .getResult();
  if (routerMode == AdapterRouterMode::uniform_random) {
    double bound = 1.0 / std::sqrt(double(cols));
    return RandomUniformOp::create(
               builder, loc, type, builder.getI64IntegerAttr(seed + position),
               builder.getF64FloatAttr(-bound), builder.getF64FloatAttr(bound))
        .getResult();
  }
  if (routerMode == AdapterRouterMode::zero)
    return arith::ConstantOp::create(
               builder, loc, type,
               DenseElementsAttr::get(type, builder.getF32FloatAttr(0.0f)))
        .getResult();
  if (module.empty()) {
    emitError(loc) << "router=given needs linear layers whose weight is a "
                      "moe.param, to name their router";
    return failure();
  }
  std::string key = hf::projectionRouterKey(module);
  const weights::TensorInfo *info = given->find(key);
  if (!info || ArrayRef<int64_t>(info->shape) != type.getShape()) {
    InFlightDiagnostic diag = emitError(loc) << routerWeightsPath << ": ";
    if (!info)
      diag << "no tensor '" << key << "'";
    else
      diag << "tensor '" << key << "' does not have the shape [" << rows << ", "
           << cols << "] of the router";
    return failure();
  }
  return ParamOp::create(
             builder, loc, type,
             FlatSymbolRefAttr::get(builder.getContext(), givenScope),
             builder.getStringAttr(key), IntegerAttr())
      .getResult();
}

void MixAdaptersPass::runOnOperation() {
  moduleOp = getOperation();
  adapters.clear();
  given.reset();
  if (::mlir::failed(parseOptions()))
    return signalPassFailure();

  IRMapping baseToMix;
  auto mix = cast<func::FuncOp>(base->clone(baseToMix));
  moduleOp.getBody()->push_back(mix);
  mix.setSymName(outputName + ".partial");
  WeightCloner cloner(baseToMix);
  Block &body = mix.getBody().front();
  OpBuilder weightBuilder(mix.getContext());
  weightBuilder.setInsertionPointToStart(&body);

  SmallVector<Operation *> mixOps = getComputeOps(mix);
  DenseMap<func::FuncOp, SmallVector<Operation *>> adapterOps;
  for (func::FuncOp func : adapters)
    adapterOps[func] = getComputeOps(func);

  int64_t position = 0;
  for (auto [index, op] : llvm::enumerate(mixOps)) {
    auto linear = dyn_cast<LinearOp>(op);
    if (!linear)
      continue;
    SmallVector<LoraLinearOp> loras;
    for (func::FuncOp func : adapters)
      if (auto lora = dyn_cast<LoraLinearOp>(adapterOps[func][index]))
        loras.push_back(lora);
    if (loras.empty())
      continue;
    // Weights the mixture reads must dominate it: clone them before it.
    weightBuilder.setInsertionPoint(linear);
    SmallVector<Value> loraA, loraB;
    SmallVector<double> scales;
    for (LoraLinearOp lora : loras) {
      loraA.push_back(cloner.clone(weightBuilder, lora.getLoraA()));
      loraB.push_back(cloner.clone(weightBuilder, lora.getLoraB()));
      scales.push_back(lora.getScale().convertToDouble());
    }
    int64_t experts = loras.size();
    int64_t in =
        cast<RankedTensorType>(linear.getWeight().getType()).getShape()[1];
    FailureOr<Value> router = routerWeight(
        weightBuilder, linear.getLoc(), getLinearModulePath(linear.getWeight()),
        position++, experts, in);
    if (::mlir::failed(router)) {
      mix.erase();
      return signalPassFailure();
    }
    OpBuilder builder(linear);
    auto mixture = MixtureOfLoraOp::create(
        builder, linear.getLoc(), linear.getType(), linear.getInput(),
        linear.getWeight(), linear.getBias(), *router, loraA, loraB,
        builder.getDenseF64ArrayAttr(scales),
        ScoringAttr::get(builder.getContext(), normalization),
        builder.getI64IntegerAttr(std::min<int64_t>(topK, experts)));
    mixture->setDiscardableAttrs(linear->getDiscardableAttrDictionary());
    linear.getResult().replaceAllUsesWith(mixture.getResult());
    linear.erase();
  }
  if (position == 0) {
    mix.erase();
    emitError(moduleOp.getLoc())
        << "the adapters adapt no linear layer of '" << baseName << "'";
    return signalPassFailure();
  }

  if (!keepSources) {
    base.erase();
    for (func::FuncOp func : adapters)
      func.erase();
  }
  if (moduleOp.lookupSymbol(outputName)) {
    emitError(moduleOp.getLoc())
        << "the output name '" << outputName << "' is already taken";
    return signalPassFailure();
  }
  mix.setSymName(outputName);
}
