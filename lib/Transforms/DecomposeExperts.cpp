//===- DecomposeExperts.cpp - Full models into LoRA adapters of the base --===//

#include "moe/Transforms/Passes.h"

#include "moe/Analysis/ModelFunctions.h"
#include "moe/Formats/HF/TensorNames.h"
#include "moe/Support/Format.h"
#include "moe/Support/LinearAlgebra.h"
#include "moe/Transforms/MixingSupport.h"
#include "moe/Weights/SafeTensors.h"
#include "moe/Weights/WeightEvaluator.h"

#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/IR/Builders.h"
#include "llvm/Support/FileSystem.h"
#include "llvm/Support/Path.h"
#include "llvm/Support/raw_ostream.h"

#include <cmath>

namespace mlir::moe {
#define GEN_PASS_DEF_DECOMPOSEEXPERTS
#include "moe/Passes.h.inc"
} // namespace mlir::moe

using namespace mlir;
using namespace mlir::moe;

namespace {
/// The factors of one decomposed linear layer.
struct Factors {
  std::string module;
  std::vector<float> a, b; // [rank, in], [out, rank]
  int64_t in, out;
};

struct DecomposeExpertsPass
    : public moe::impl::DecomposeExpertsBase<DecomposeExpertsPass> {
  using DecomposeExpertsBase::DecomposeExpertsBase;
  void runOnOperation() override;

private:
  bool wanted(StringRef module) const {
    if (modules.empty())
      return true;
    return llvm::any_of(modules, [&](const std::string &suffix) {
      return module.ends_with(suffix);
    });
  }
  LogicalResult decompose(func::FuncOp base, func::FuncOp expert,
                          WeightEvaluator &evaluator);
};
} // namespace

/// Writes the factors of an expert to `<dir>/<name>.safetensors`.
static llvm::Error writeFactors(StringRef dir, StringRef name,
                                const std::vector<Factors> &factors) {
  std::vector<weights::TensorSource> tensors;
  for (const Factors &f : factors) {
    int64_t rank = f.a.size() / f.in;
    auto source = [&](std::string key, const std::vector<float> &data,
                      SmallVector<int64_t, 4> shape) {
      weights::TensorSource tensor;
      tensor.name = std::move(key);
      tensor.dtype = weights::DType::F32;
      tensor.shape = shape;
      tensor.produce = [&data](llvm::raw_ostream &os) {
        os.write(reinterpret_cast<const char *>(data.data()),
                 data.size() * sizeof(float));
        return llvm::Error::success();
      };
      tensors.push_back(std::move(tensor));
    };
    source(hf::loraAKey(f.module), f.a, {rank, f.in});
    source(hf::loraBKey(f.module), f.b, {f.out, rank});
  }
  weights::WriterOptions options;
  options.stem = name.str();
  options.metadata["format"] = "pt";
  options.metadata["producer"] = "moe-decompose-experts";
  return weights::writeSafeTensorsCheckpoint(dir, std::move(tensors), options);
}

LogicalResult DecomposeExpertsPass::decompose(func::FuncOp base,
                                              func::FuncOp expert,
                                              WeightEvaluator &evaluator) {
  SmallVector<Operation *> baseOps = getComputeOps(base);
  SmallVector<Operation *> expertOps = getComputeOps(expert);
  std::vector<Factors> factors;
  SmallVector<std::pair<LinearOp, size_t>> replaced;
  for (auto [index, op] : llvm::enumerate(expertOps)) {
    auto linear = dyn_cast<LinearOp>(op);
    auto baseLinear = dyn_cast<LinearOp>(baseOps[index]);
    if (!linear || !baseLinear || !getLayerIndex(linear))
      continue;
    std::string module = getLinearModulePath(linear.getWeight());
    if (module.empty())
      module = getLinearModulePath(baseLinear.getWeight());
    if (module.empty() || !wanted(module))
      continue;
    auto expertWeight = evaluator.evaluate(linear.getWeight());
    if (!expertWeight)
      return linear.emitError() << llvm::toString(expertWeight.takeError());
    auto baseWeight = evaluator.evaluate(baseLinear.getWeight());
    if (!baseWeight)
      return baseLinear.emitError() << llvm::toString(baseWeight.takeError());
    int64_t out = (*expertWeight)->shape[0], in = (*expertWeight)->shape[1];
    Matrix delta(out, in);
    double norm = 0;
    for (int64_t i = 0; i < out * in; ++i) {
      delta.data[i] = double((*expertWeight)->data[i]) - (*baseWeight)->data[i];
      norm += delta.data[i] * delta.data[i];
    }
    evaluator.clearValues();
    if (norm == 0)
      continue;
    int64_t r = std::min<int64_t>(rank, std::min(out, in));
    TruncatedSvd svd =
        truncatedSvd(delta, r, oversample, powerIterations, seed + index);
    Factors f{module, std::vector<float>(r * in), std::vector<float>(out * r),
              in, out};
    for (int64_t j = 0; j < r; ++j) {
      double root = std::sqrt(svd.s[j]);
      for (int64_t c = 0; c < in; ++c)
        f.a[j * in + c] = float(root * svd.v(c, j));
      for (int64_t row = 0; row < out; ++row)
        f.b[row * r + j] = float(svd.u(row, j) * root);
    }
    // ||delta - B A||_F from the factors as stored (in float).
    double residual = 0;
    for (int64_t row = 0; row < out; ++row)
      for (int64_t c = 0; c < in; ++c) {
        double approx = 0;
        for (int64_t j = 0; j < r; ++j)
          approx += double(f.b[row * r + j]) * f.a[j * in + c];
        double diff = delta(row, c) - approx;
        residual += diff * diff;
      }
    linear.emitRemark() << "'" << expert.getSymName() << "' " << module
                        << ": rank " << r << ", relative reconstruction error "
                        << formatNumber(std::sqrt(residual / norm));
    factors.push_back(std::move(f));
    replaced.push_back({linear, index});
  }
  if (factors.empty()) {
    emitWarning(expert.getLoc())
        << "'" << expert.getSymName()
        << "' has no linear layer that differs from the "
           "base; nothing to decompose";
    return success();
  }

  std::string scope = (expert.getSymName() + "_lora").str();
  ModuleOp module = getOperation();
  if (module.lookupSymbol(scope))
    return emitError(module.getLoc())
           << "a symbol '" << scope << "' already exists";
  if (llvm::Error error = writeFactors(outputDir, expert.getSymName(), factors))
    return emitError(expert.getLoc()) << llvm::toString(std::move(error));
  SmallString<256> path(outputDir);
  llvm::sys::path::append(path, expert.getSymName() + ".safetensors");
  llvm::sys::fs::make_absolute(path);
  OpBuilder moduleBuilder = OpBuilder::atBlockBegin(module.getBody());
  ScopeOp::create(moduleBuilder, expert.getLoc(), scope, path,
                  ScopeFormat::safetensors);

  for (auto [f, item] : llvm::zip(factors, replaced)) {
    LinearOp linear = item.first;
    size_t index = item.second;
    const Factors &factor = f;
    OpBuilder builder(linear);
    int64_t r = f.a.size() / f.in;
    auto param = [&](StringRef key, ArrayRef<int64_t> shape) {
      return ParamOp::create(
          builder, linear.getLoc(),
          RankedTensorType::get(shape, builder.getF32Type()),
          FlatSymbolRefAttr::get(builder.getContext(), scope),
          builder.getStringAttr(key), IntegerAttr());
    };
    Value a = param(hf::loraAKey(factor.module), {r, f.in});
    Value b = param(hf::loraBKey(factor.module), {f.out, r});
    // The adapter sits on the base weight, cloned into this function.
    Value baseWeight = cast<LinearOp>(baseOps[index]).getWeight();
    WeightCloner cloner;
    Value weight = cloner.clone(builder, baseWeight);
    auto lora = LoraLinearOp::create(
        builder, linear.getLoc(), linear.getType(), linear.getInput(), weight,
        linear.getBias(), a, b, builder.getF64FloatAttr(1.0));
    lora->setDiscardableAttrs(linear->getDiscardableAttrDictionary());
    linear.getResult().replaceAllUsesWith(lora.getResult());
    linear.erase();
  }
  return success();
}

/// Bounds of the randomised SVD's options (its cost grows with both).
static constexpr int64_t kMaxOversample = 1024;
static constexpr int64_t kMaxPowerIterations = 64;

void DecomposeExpertsPass::runOnOperation() {
  ModuleOp module = getOperation();
  if (outputDir.empty()) {
    emitError(module.getLoc())
        << "moe-decompose-experts needs output-dir=<directory>";
    return signalPassFailure();
  }
  if (rank < 1) {
    emitError(module.getLoc()) << "rank must be positive";
    return signalPassFailure();
  }
  if (oversample < 0 || oversample > kMaxOversample) {
    emitError(module.getLoc()) << "oversample must be in [0, " << kMaxOversample
                               << "], got " << int64_t(oversample);
    return signalPassFailure();
  }
  if (powerIterations < 0 || powerIterations > kMaxPowerIterations) {
    emitError(module.getLoc())
        << "power-iterations must be in [0, " << kMaxPowerIterations
        << "], got " << int64_t(powerIterations);
    return signalPassFailure();
  }
  FailureOr<func::FuncOp> base = lookupModelFunction(module, baseName, "base");
  if (::mlir::failed(base))
    return signalPassFailure();
  SmallVector<func::FuncOp> experts;
  if (expertNames.empty()) {
    for (func::FuncOp func : getModelFunctions(module))
      if (func != *base)
        experts.push_back(func);
  } else {
    for (const std::string &name : expertNames) {
      FailureOr<func::FuncOp> func =
          lookupModelFunction(module, name, "expert");
      if (::mlir::failed(func))
        return signalPassFailure();
      experts.push_back(*func);
    }
  }
  // One structure for every model: projections instead of dense FFNs.
  for (func::FuncOp func : getModelFunctions(module)) {
    SmallVector<FfnOp> ffns;
    func.walk([&](FfnOp op) { ffns.push_back(op); });
    for (FfnOp ffn : ffns)
      decomposeFfn(ffn);
  }
  for (func::FuncOp expert : experts)
    if (::mlir::failed(verifySameStructure(*base, expert)))
      return signalPassFailure();
  // Created only once the options and models have been checked.
  if (std::error_code error = llvm::sys::fs::create_directories(outputDir)) {
    emitError(module.getLoc())
        << "cannot create '" << outputDir << "': " << error.message();
    return signalPassFailure();
  }
  WeightEvaluator evaluator(module);
  for (func::FuncOp expert : experts)
    if (::mlir::failed(decompose(*base, expert, evaluator)))
      return signalPassFailure();
  // Weights of the experts that the adapters replaced.
  for (func::FuncOp expert : experts)
    for (Operation &op :
         llvm::make_early_inc_range(llvm::reverse(expert.getBody().front())))
      if (op.getNumResults() == 1 && isWeight(op.getResult(0)) &&
          op.use_empty())
        op.erase();
}
