//===- MoeDialect.cpp - The moe dialect -----------------------------------===//

#include "moe/Dialect/MoeDialect.h"
#include "moe/Dialect/MoeOps.h"

#include "mlir/Dialect/Arith/IR/Arith.h"
#include "mlir/Dialect/Tensor/IR/Tensor.h"
#include "mlir/IR/Builders.h"
#include "mlir/IR/DialectImplementation.h"
#include "mlir/IR/DialectRegistry.h"
#include "mlir/IR/TypeUtilities.h"
#include "mlir/Interfaces/FunctionInterfaces.h"
#include "llvm/ADT/TypeSwitch.h"
#include "llvm/Support/MathExtras.h"

#include <algorithm>
#include <cmath>

using namespace mlir;
using namespace mlir::moe;

#include "moe/MoeDialect.cpp.inc"
#include "moe/MoeEnums.cpp.inc"

#define GET_ATTRDEF_CLASSES
#include "moe/MoeAttrs.cpp.inc"

void mlir::moe::registerMoeDialect(DialectRegistry &registry) {
  registry.insert<MoeDialect>();
  registerWeightExpressionExternalModels(registry);
}

void MoeDialect::initialize() {
  addOperations<
#define GET_OP_LIST
#include "moe/MoeOps.cpp.inc"
      >();
  addAttributes<
#define GET_ATTRDEF_LIST
#include "moe/MoeAttrs.cpp.inc"
      >();
}

LogicalResult MoeDialect::verifyOperationAttribute(Operation *op,
                                                   NamedAttribute attr) {
  StringRef name = attr.getName().getValue();
  if (name == getLayerAttrName()) {
    auto layer = dyn_cast<IntegerAttr>(attr.getValue());
    if (!layer || layer.getInt() < 0)
      return op->emitError()
             << "'" << name << "' must be a non-negative integer attribute";
    return success();
  }
  if (name == getScopeAttrName() || name == getWeightsAttrName()) {
    if (!isa<FlatSymbolRefAttr>(attr.getValue()))
      return op->emitError()
             << "'" << name << "' must be a flat symbol reference";
    return success();
  }
  if (name == getGpuKernelAttrName()) {
    auto function = dyn_cast<FunctionOpInterface>(op);
    if (!isa<SymbolRefAttr>(attr.getValue()) || !function ||
        !function.isExternal())
      return op->emitError() << "'" << name
                             << "' must be a symbol reference on a function "
                                "declaration";
    return success();
  }
  if (name == getArchitectureAttrName()) {
    if (!isa<StringAttr>(attr.getValue()))
      return op->emitError() << "'" << name << "' must be a string attribute";
    return success();
  }
  return op->emitError() << "unknown moe dialect attribute '" << name << "'";
}

LogicalResult MoeDialect::verifyRegionArgAttribute(Operation *op,
                                                   unsigned region,
                                                   unsigned argument,
                                                   NamedAttribute attr) {
  StringRef name = attr.getName().getValue();
  if (name == getNameAttrName()) {
    if (!isa<StringAttr>(attr.getValue()))
      return op->emitError() << "'" << name << "' of argument #" << argument
                             << " must be a string attribute";
    return success();
  }
  if (name == getWeightAttrName()) {
    auto index = dyn_cast<IntegerAttr>(attr.getValue());
    if (!index || index.getInt() < 0)
      return op->emitError() << "'" << name << "' of argument #" << argument
                             << " must be a non-negative integer attribute";
    return success();
  }
  return op->emitError() << "unknown moe dialect argument attribute '" << name
                         << "'";
}

LogicalResult
RopeScalingAttr::verify(function_ref<InFlightDiagnostic()> emitError,
                        RopeScalingKind kind, APFloat factorValue,
                        APFloat lowFreqValue, APFloat highFreqValue,
                        int64_t originalMaxPosition, APFloat betaFastValue,
                        APFloat betaSlowValue, APFloat attentionValue) {
  double factor = factorValue.convertToDouble();
  double lowFreqFactor = lowFreqValue.convertToDouble();
  double highFreqFactor = highFreqValue.convertToDouble();
  double betaFast = betaFastValue.convertToDouble();
  double betaSlow = betaSlowValue.convertToDouble();
  double attentionFactor = attentionValue.convertToDouble();
  if (!(factor > 0))
    return emitError() << "rope scaling factor must be positive, got "
                       << factor;
  bool needsOriginal = kind != RopeScalingKind::linear;
  if (needsOriginal && originalMaxPosition <= 0)
    return emitError() << "rope scaling '" << stringifyRopeScalingKind(kind)
                       << "' needs a positive original_max_position";
  if (kind == RopeScalingKind::llama3 &&
      !(lowFreqFactor > 0 && highFreqFactor > lowFreqFactor))
    return emitError() << "llama3 rope scaling needs 0 < low_freq_factor < "
                          "high_freq_factor, got "
                       << lowFreqFactor << " and " << highFreqFactor;
  if (kind == RopeScalingKind::yarn && !(betaFast > betaSlow && betaSlow > 0))
    return emitError() << "yarn rope scaling needs beta_fast > beta_slow > 0";
  if (attentionFactor < 0)
    return emitError() << "rope scaling attention_factor must not be negative";
  return success();
}

double RopeScalingAttr::scaleInverseFrequencies(MutableArrayRef<double> inverse,
                                                int64_t dim,
                                                double theta) const {
  double factor = getFactor().convertToDouble();
  switch (getKind()) {
  case RopeScalingKind::linear:
    for (double &f : inverse)
      f /= factor;
    return 1.0;
  case RopeScalingKind::dynamic:
    return 1.0;
  case RopeScalingKind::llama3: {
    double low = getLowFreqFactor().convertToDouble();
    double high = getHighFreqFactor().convertToDouble();
    double context = double(getOriginalMaxPosition());
    double lowWavelength = context / low, highWavelength = context / high;
    for (double &f : inverse) {
      double wavelength = 2 * llvm::numbers::pi / f;
      double scaled = wavelength > lowWavelength ? f / factor : f;
      if (!(wavelength < highWavelength) && !(wavelength > lowWavelength)) {
        double smooth = (context / wavelength - low) / (high - low);
        scaled = (1 - smooth) * scaled / factor + smooth * scaled;
      }
      f = scaled;
    }
    return 1.0;
  }
  case RopeScalingKind::yarn: {
    double context = double(getOriginalMaxPosition());
    auto correctionDim = [&](double rotations) {
      return dim * std::log(context / (rotations * 2 * llvm::numbers::pi)) /
             (2 * std::log(theta));
    };
    double low = std::max(
        std::floor(correctionDim(getBetaFast().convertToDouble())), 0.0);
    double high =
        std::min(std::ceil(correctionDim(getBetaSlow().convertToDouble())),
                 double(dim - 1));
    if (low == high)
      high += 0.001;
    for (auto [i, f] : llvm::enumerate(inverse)) {
      double ramp = std::clamp((double(i) - low) / (high - low), 0.0, 1.0);
      double extrapolation = 1 - ramp;
      f = f / factor * (1 - extrapolation) + f * extrapolation;
    }
    double attention = getAttentionFactor().convertToDouble();
    if (attention == 0)
      attention = factor <= 1 ? 1.0 : 0.1 * std::log(factor) + 1.0;
    return attention;
  }
  }
  llvm_unreachable("unknown rope scaling");
}

std::optional<int64_t> mlir::moe::getLayerIndex(Operation *op) {
  if (auto attr =
          op->getAttrOfType<IntegerAttr>(MoeDialect::getLayerAttrName()))
    return attr.getInt();
  return std::nullopt;
}

void mlir::moe::setLayerIndex(Operation *op, int64_t layer) {
  op->setAttr(MoeDialect::getLayerAttrName(),
              IntegerAttr::get(IntegerType::get(op->getContext(), 64), layer));
}

void LayerTagger::notifyOperationInserted(Operation *op,
                                          OpBuilder::InsertPoint) {
  if (layer < 0 || llvm::any_of(op->getResults(), isWeight))
    return;
  setLayerIndex(op, layer);
}
