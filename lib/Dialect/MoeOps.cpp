//===- MoeOps.cpp - Operations of the moe dialect -------------------------===//

#include "moe/Dialect/MoeOps.h"
#include "moe/Support/Format.h"

#include "mlir/IR/Builders.h"
#include "mlir/IR/OpImplementation.h"
#include "mlir/IR/TypeUtilities.h"
#include "llvm/ADT/STLExtras.h"

#include <cmath>

using namespace mlir;
using namespace mlir::moe;

//===----------------------------------------------------------------------===//
// Verification helpers
//===----------------------------------------------------------------------===//

static RankedTensorType tensorOf(Value value) {
  return cast<RankedTensorType>(value.getType());
}

static bool dimsAgree(int64_t lhs, int64_t rhs) {
  return ShapedType::isDynamic(lhs) || ShapedType::isDynamic(rhs) || lhs == rhs;
}

static LogicalResult expectRank(Operation *op, StringRef name, Value value,
                                int64_t rank) {
  int64_t actual = tensorOf(value).getRank();
  if (actual != rank)
    return op->emitOpError() << "expects '" << name << "' of rank " << rank
                             << ", got rank " << actual;
  return success();
}

static LogicalResult expectMinRank(Operation *op, StringRef name, Value value,
                                   int64_t rank) {
  int64_t actual = tensorOf(value).getRank();
  if (actual < rank)
    return op->emitOpError() << "expects '" << name << "' of rank at least "
                             << rank << ", got rank " << actual;
  return success();
}

/// Checks that dimension `dim` of `value` agrees with `expected`, which is
/// described by `what` in the message.
static LogicalResult expectDim(Operation *op, StringRef name, Value value,
                               int64_t dim, int64_t expected, StringRef what) {
  ArrayRef<int64_t> shape = tensorOf(value).getShape();
  if (dim < 0)
    dim += shape.size();
  if (!dimsAgree(shape[dim], expected))
    return op->emitOpError() << "dimension " << dim << " of '" << name
                             << "' is " << formatDim(shape[dim]) << " but "
                             << what << " is " << formatDim(expected);
  return success();
}

static LogicalResult expectSameElementType(Operation *op) {
  Type element;
  for (Value value : op->getOperands()) {
    auto type = dyn_cast<RankedTensorType>(value.getType());
    if (!type || !isa<FloatType>(type.getElementType()))
      continue;
    if (!element)
      element = type.getElementType();
    else if (type.getElementType() != element)
      return op->emitOpError()
             << "expects all floating-point operands to have the element "
                "type "
             << element << ", got " << type.getElementType();
  }
  for (Value value : op->getResults()) {
    auto type = cast<RankedTensorType>(value.getType());
    if (element && isa<FloatType>(type.getElementType()) &&
        type.getElementType() != element)
      return op->emitOpError() << "expects the result element type " << element
                               << ", got " << type.getElementType();
  }
  return success();
}

/// Checks that `result` has `expected` shape (with compatible dynamic
/// dimensions).
static LogicalResult expectResultShape(Operation *op, StringRef name,
                                       Value result,
                                       ArrayRef<int64_t> expected) {
  ArrayRef<int64_t> shape = tensorOf(result).getShape();
  bool agree = shape.size() == expected.size();
  for (size_t i = 0; agree && i < shape.size(); ++i)
    agree = dimsAgree(shape[i], expected[i]);
  if (!agree)
    return op->emitOpError()
           << "expects '" << name << "' of shape " << formatShape(expected)
           << ", got " << formatShape(shape);
  return success();
}

/// The shape of `input` with its last dimension replaced by `last`.
static SmallVector<int64_t> withLastDim(Value input, int64_t last) {
  SmallVector<int64_t> shape(tensorOf(input).getShape());
  shape.back() = last;
  return shape;
}

/// Verifies the routing operands shared by moe.experts and
/// moe.routed_linear: weights and indices of shape [tokens..., k], with k no
/// larger than the number of experts.
static LogicalResult verifyRouting(Operation *op, Value input, Value weights,
                                   Value indices, int64_t numExperts) {
  if (failed(expectRank(op, "weights", weights, tensorOf(input).getRank())) ||
      failed(expectRank(op, "indices", indices, tensorOf(input).getRank())))
    return failure();
  int64_t k = tensorOf(weights).getShape().back();
  SmallVector<int64_t> routingShape = withLastDim(input, k);
  if (failed(expectResultShape(op, "weights", weights, routingShape)) ||
      failed(expectResultShape(op, "indices", indices, routingShape)))
    return failure();
  if (!ShapedType::isDynamic(k) && !ShapedType::isDynamic(numExperts) &&
      k > numExperts)
    return op->emitOpError() << "routes each token to " << k
                             << " experts but only " << numExperts << " exist";
  return success();
}

/// Verifies an FFN expert set: `up` and `gate` of shape [prefix..., I, H],
/// `down` of [prefix..., H, I], with H the input features. `prefix` is the
/// number of leading (expert) dimensions.
static LogicalResult verifyFfnWeights(Operation *op, Value input, Value gate,
                                      Value up, Value down, int64_t prefix,
                                      StringRef upName, StringRef gateName,
                                      StringRef downName) {
  if (failed(expectRank(op, upName, up, prefix + 2)) ||
      failed(expectRank(op, downName, down, prefix + 2)))
    return failure();
  int64_t hidden = tensorOf(input).getShape().back();
  ArrayRef<int64_t> upShape = tensorOf(up).getShape();
  int64_t inter = upShape[prefix];
  if (failed(expectDim(op, upName, up, prefix + 1, hidden,
                       "the input hidden size")) ||
      failed(expectDim(op, downName, down, prefix, hidden,
                       "the input hidden size")) ||
      failed(expectDim(op, downName, down, prefix + 1, inter,
                       "the intermediate size of '" + upName.str() + "'")))
    return failure();
  for (int64_t i = 0; i < prefix; ++i)
    if (failed(expectDim(op, downName, down, i, upShape[i],
                         "the expert count of '" + upName.str() + "'")))
      return failure();
  if (gate && tensorOf(gate).getShape() != upShape)
    return op->emitOpError()
           << "expects '" << gateName << "' to have the shape of '" << upName
           << "' " << formatShape(upShape) << ", got "
           << formatShape(tensorOf(gate).getShape());
  return success();
}

static LogicalResult verifyBias(Operation *op, StringRef name, Value bias,
                                int64_t size, StringRef what) {
  if (!bias)
    return success();
  if (failed(expectRank(op, name, bias, 1)))
    return failure();
  return expectDim(op, name, bias, 0, size, what);
}

/// Verifies the optional shared expert of moe.experts and moe.fused_moe.
static LogicalResult verifySharedExpert(Operation *op, Value input,
                                        Value sharedGate, Value sharedUp,
                                        Value sharedDown,
                                        Value sharedExpertGate) {
  if (!sharedUp && !sharedDown) {
    if (sharedGate || sharedExpertGate)
      return op->emitOpError()
             << "has a shared expert gate or gate projection but no shared "
                "expert ('shared_up' and 'shared_down')";
    return success();
  }
  if (!sharedUp || !sharedDown)
    return op->emitOpError()
           << "needs both 'shared_up' and 'shared_down' for a shared expert";
  if (failed(verifyFfnWeights(op, input, sharedGate, sharedUp, sharedDown, 0,
                              "shared_up", "shared_gate", "shared_down")))
    return failure();
  if (sharedExpertGate) {
    int64_t hidden = tensorOf(input).getShape().back();
    if (failed(expectRank(op, "shared_expert_gate", sharedExpertGate, 2)) ||
        failed(expectDim(op, "shared_expert_gate", sharedExpertGate, 0, 1,
                         "a single gate row")) ||
        failed(expectDim(op, "shared_expert_gate", sharedExpertGate, 1, hidden,
                         "the input hidden size")))
      return failure();
  }
  return success();
}

//===----------------------------------------------------------------------===//
// Custom directives
//===----------------------------------------------------------------------===//

/// `@scope::"key"` with an optional `[index]`.
static ParseResult parseParamRef(OpAsmParser &parser, FlatSymbolRefAttr &scope,
                                 StringAttr &key, IntegerAttr &index) {
  StringAttr scopeName;
  std::string keyText;
  if (parser.parseSymbolName(scopeName) || parser.parseColon() ||
      parser.parseColon() || parser.parseString(&keyText))
    return failure();
  scope = FlatSymbolRefAttr::get(scopeName);
  key = parser.getBuilder().getStringAttr(keyText);
  if (succeeded(parser.parseOptionalLSquare())) {
    int64_t value;
    if (parser.parseInteger(value) || parser.parseRSquare())
      return failure();
    index = parser.getBuilder().getI64IntegerAttr(value);
  }
  return success();
}

static void printParamRef(OpAsmPrinter &printer, ParamOp,
                          FlatSymbolRefAttr scope, StringAttr key,
                          IntegerAttr index) {
  printer.printSymbolName(scope.getValue());
  printer << "::";
  printer.printString(key.getValue());
  if (index)
    printer << "[" << index.getInt() << "]";
}

//===----------------------------------------------------------------------===//
// Scopes and weight expressions
//===----------------------------------------------------------------------===//

LogicalResult ScopeOp::verify() {
  if (getPath().empty())
    return emitOpError() << "needs a non-empty checkpoint path";
  return success();
}

LogicalResult ParamOp::verify() {
  if (getKey().empty())
    return emitOpError() << "needs a non-empty tensor key";
  if (IntegerAttr index = getIndexAttr(); index && index.getInt() < 0)
    return emitOpError() << "index must be non-negative, got "
                         << index.getInt();
  return success();
}

LogicalResult ParamOp::verifySymbolUses(SymbolTableCollection &symbolTable) {
  Operation *scope = symbolTable.lookupNearestSymbolFrom(*this, getScopeAttr());
  if (!scope)
    return emitOpError() << "refers to an undefined scope " << getScopeAttr();
  if (!isa<ScopeOp>(scope))
    return emitOpError() << "refers to " << getScopeAttr()
                         << ", which is not a moe.scope";
  return success();
}

/// Checks that every input of a variadic weight expression has the type of
/// the first one.
static LogicalResult verifyUniformInputs(Operation *op, ValueRange inputs) {
  if (inputs.empty())
    return op->emitOpError() << "needs at least one input";
  Type first = inputs.front().getType();
  for (auto [i, input] : llvm::enumerate(inputs))
    if (input.getType() != first)
      return op->emitOpError()
             << "expects every input to have the type " << first
             << " of input #0, but input #" << i << " has " << input.getType();
  return success();
}

LogicalResult StackOp::verify() {
  if (failed(verifyUniformInputs(*this, getInputs())))
    return failure();
  auto inputType = tensorOf(getInputs().front());
  SmallVector<int64_t> expected{static_cast<int64_t>(getInputs().size())};
  llvm::append_range(expected, inputType.getShape());
  auto expectedType =
      RankedTensorType::get(expected, inputType.getElementType());
  if (getResult().getType() != expectedType)
    return emitOpError() << "expects the result type " << expectedType
                         << ", got " << getResult().getType();
  return success();
}

LogicalResult AverageOp::verify() {
  if (failed(verifyUniformInputs(*this, getInputs())))
    return failure();
  if (getResult().getType() != getInputs().front().getType())
    return emitOpError() << "expects the result type "
                         << getInputs().front().getType() << ", got "
                         << getResult().getType();
  return success();
}

OpFoldResult AverageOp::fold(FoldAdaptor) {
  // The mean of copies of one tensor is that tensor.
  Value first = getInputs().front();
  if (llvm::all_equal(getInputs()))
    return first;
  return {};
}

LogicalResult RandomNormalOp::verify() {
  if (getStd().convertToDouble() < 0)
    return emitOpError() << "std must be non-negative, got "
                         << getStd().convertToDouble();
  return success();
}

LogicalResult RandomUniformOp::verify() {
  if (!(getLow().convertToDouble() < getHigh().convertToDouble()))
    return emitOpError() << "needs low < high, got ["
                         << getLow().convertToDouble() << ", "
                         << getHigh().convertToDouble() << ")";
  return success();
}

LogicalResult EmbeddingPrototypesOp::verify() {
  if (failed(expectRank(*this, "table", getTable(), 2)) ||
      failed(expectRank(*this, "result", getResult(), 2)))
    return failure();
  ArrayRef<int64_t> table = tensorOf(getTable()).getShape();
  if (getTokenIds().empty())
    return emitOpError() << "needs a token-id list for at least one expert";
  for (auto [expert, attr] : llvm::enumerate(getTokenIds())) {
    ArrayRef<int64_t> ids = cast<DenseI64ArrayAttr>(attr).asArrayRef();
    if (ids.empty())
      return emitOpError() << "has no token ids for expert " << expert;
    for (int64_t id : ids)
      if (id < 0 || (!ShapedType::isDynamic(table[0]) && id >= table[0]))
        return emitOpError() << "token id " << id << " of expert " << expert
                             << " is outside the vocabulary of "
                             << formatDim(table[0]) << " tokens";
  }
  return expectResultShape(
      *this, "result", getResult(),
      {static_cast<int64_t>(getTokenIds().size()), table[1]});
}

//===----------------------------------------------------------------------===//
// Decoder building blocks
//===----------------------------------------------------------------------===//

LogicalResult EmbeddingOp::verify() {
  if (failed(expectRank(*this, "table", getTable(), 2)))
    return failure();
  SmallVector<int64_t> expected(tensorOf(getIds()).getShape());
  expected.push_back(tensorOf(getTable()).getShape()[1]);
  if (tensorOf(getResult()).getElementType() !=
      tensorOf(getTable()).getElementType())
    return emitOpError() << "expects the result element type of the table, "
                         << tensorOf(getTable()).getElementType();
  return expectResultShape(*this, "result", getResult(), expected);
}

/// Checks a normalisation: 1-D weight (and bias) over the last input
/// dimension, result of the input's type.
static LogicalResult verifyNorm(Operation *op, Value input, Value weight,
                                Value bias, Value result, double epsilon) {
  if (epsilon < 0)
    return op->emitOpError() << "epsilon must be non-negative, got " << epsilon;
  int64_t features = tensorOf(input).getShape().back();
  if (failed(expectMinRank(op, "input", input, 1)) ||
      failed(verifyBias(op, "weight", weight, features,
                        "the input feature size")) ||
      failed(verifyBias(op, "bias", bias, features, "the input feature size")))
    return failure();
  if (input.getType() != result.getType())
    return op->emitOpError() << "expects the result type " << input.getType()
                             << ", got " << result.getType();
  return expectSameElementType(op);
}

LogicalResult RmsNormOp::verify() {
  return verifyNorm(*this, getInput(), getWeight(), Value(), getResult(),
                    getEpsilon().convertToDouble());
}

LogicalResult LayerNormOp::verify() {
  return verifyNorm(*this, getInput(), getWeight(), getBias(), getResult(),
                    getEpsilon().convertToDouble());
}

/// Checks y = x W^T + b with W [out, in]; returns `out` through `outFeatures`.
static LogicalResult verifyProjection(Operation *op, Value input, Value weight,
                                      Value bias, Value result,
                                      StringRef weightName = "weight") {
  if (failed(expectMinRank(op, "input", input, 1)) ||
      failed(expectRank(op, weightName, weight, 2)))
    return failure();
  ArrayRef<int64_t> w = tensorOf(weight).getShape();
  if (failed(expectDim(op, weightName, weight, 1,
                       tensorOf(input).getShape().back(),
                       "the input feature size")) ||
      failed(verifyBias(op, "bias", bias, w[0],
                        "the output features of '" + weightName.str() + "'")))
    return failure();
  if (failed(expectResultShape(op, "result", result, withLastDim(input, w[0]))))
    return failure();
  return expectSameElementType(op);
}

LogicalResult LinearOp::verify() {
  return verifyProjection(*this, getInput(), getWeight(), getBias(),
                          getResult());
}

LogicalResult LoraLinearOp::verify() {
  if (failed(verifyProjection(*this, getInput(), getWeight(), getBias(),
                              getResult())) ||
      failed(expectRank(*this, "lora_a", getLoraA(), 2)) ||
      failed(expectRank(*this, "lora_b", getLoraB(), 2)))
    return failure();
  ArrayRef<int64_t> w = tensorOf(getWeight()).getShape();
  int64_t rank = tensorOf(getLoraA()).getShape()[0];
  if (failed(expectDim(*this, "lora_a", getLoraA(), 1, w[1],
                       "the input features of 'weight'")) ||
      failed(expectDim(*this, "lora_b", getLoraB(), 0, w[0],
                       "the output features of 'weight'")) ||
      failed(expectDim(*this, "lora_b", getLoraB(), 1, rank,
                       "the rank of 'lora_a'")))
    return failure();
  return success();
}

std::pair<SmallVector<double>, double>
AttentionOp::getRopeInverseFrequencies() {
  int64_t dim = getHeadDim();
  double theta = getRopeTheta().convertToDouble();
  SmallVector<double> inverse(dim / 2);
  for (int64_t i = 0; i < dim / 2; ++i)
    inverse[i] = 1.0 / std::pow(theta, double(2 * i) / double(dim));
  double scale = 1.0;
  if (RopeScalingAttr scaling = getRopeScalingAttr())
    scale = scaling.scaleInverseFrequencies(inverse, dim, theta);
  return {std::move(inverse), scale};
}

LogicalResult AttentionOp::verify() {
  int64_t heads = getNumHeads(), kvHeads = getNumKvHeads(),
          headDim = getHeadDim();
  if (heads % kvHeads != 0)
    return emitOpError() << "needs num_heads (" << heads
                         << ") to be a multiple of num_kv_heads (" << kvHeads
                         << ")";
  if (failed(expectRank(*this, "query", getQuery(), 3)) ||
      failed(expectRank(*this, "key", getKey(), 3)) ||
      failed(expectRank(*this, "value", getValue(), 3)) ||
      failed(expectDim(*this, "query", getQuery(), 2, heads * headDim,
                       "num_heads * head_dim")) ||
      failed(expectDim(*this, "key", getKey(), 2, kvHeads * headDim,
                       "num_kv_heads * head_dim")) ||
      failed(expectDim(*this, "value", getValue(), 2, kvHeads * headDim,
                       "num_kv_heads * head_dim")))
    return failure();
  ArrayRef<int64_t> q = tensorOf(getQuery()).getShape();
  for (auto [name, value] :
       {std::pair<StringRef, Value>{"key", getKey()}, {"value", getValue()}})
    if (failed(expectDim(*this, name, value, 0, q[0], "the query batch")) ||
        failed(expectDim(*this, name, value, 1, q[1], "the query length")))
      return failure();
  if (headDim % 2 != 0 && getRopeTheta().convertToDouble() != 0)
    return emitOpError() << "needs an even head_dim for the rotary "
                            "embedding, got "
                         << headDim;
  if (getRopeTheta().convertToDouble() < 0)
    return emitOpError() << "rope_theta must be non-negative";
  if (getRopeScaling() && getRopeTheta().convertToDouble() == 0)
    return emitOpError() << "has rope_scaling but no rotary embedding "
                            "(rope_theta = 0)";
  if (getScale() && !(getScale()->convertToDouble() > 0))
    return emitOpError() << "scale must be positive";
  if (getSlidingWindow() && *getSlidingWindow() <= 0)
    return emitOpError() << "sliding_window must be positive, got "
                         << *getSlidingWindow();
  if (getResult().getType() != getQuery().getType())
    return emitOpError() << "expects the result type " << getQuery().getType()
                         << ", got " << getResult().getType();
  return expectSameElementType(*this);
}

LogicalResult FfnOp::verify() {
  if (failed(expectMinRank(*this, "input", getInput(), 1)) ||
      failed(verifyFfnWeights(*this, getInput(), getGate(), getUp(), getDown(),
                              0, "up", "gate", "down")))
    return failure();
  ArrayRef<int64_t> up = tensorOf(getUp()).getShape();
  if (getGateBias() && !getGate())
    return emitOpError() << "has a 'gate_bias' but no 'gate' projection";
  if (failed(verifyBias(*this, "gate_bias", getGateBias(), up[0],
                        "the intermediate size")) ||
      failed(verifyBias(*this, "up_bias", getUpBias(), up[0],
                        "the intermediate size")) ||
      failed(verifyBias(*this, "down_bias", getDownBias(), up[1],
                        "the hidden size")))
    return failure();
  if (getResult().getType() != getInput().getType())
    return emitOpError() << "expects the result type " << getInput().getType()
                         << ", got " << getResult().getType();
  return expectSameElementType(*this);
}

OpFoldResult ScaleOp::fold(FoldAdaptor) {
  if (getFactor().convertToDouble() == 1.0)
    return getInput();
  return {};
}

//===----------------------------------------------------------------------===//
// Routing
//===----------------------------------------------------------------------===//

LogicalResult RouterOp::verify() {
  return verifyProjection(*this, getInput(), getWeight(), getBias(),
                          getLogits());
}

LogicalResult TopKGatingOp::verify() {
  if (failed(expectMinRank(*this, "logits", getLogits(), 1)))
    return failure();
  int64_t experts = tensorOf(getLogits()).getShape().back();
  int64_t k = getK();
  if (!ShapedType::isDynamic(experts) && k > experts)
    return emitOpError() << "k = " << k << " exceeds the number of experts ("
                         << experts << ")";
  if (getNoiseStd().convertToDouble() < 0)
    return emitOpError() << "noise_std must be non-negative";
  SmallVector<int64_t> shape = withLastDim(getLogits(), k);
  if (failed(expectResultShape(*this, "weights", getWeights(), shape)) ||
      failed(expectResultShape(*this, "indices", getIndices(), shape)))
    return failure();
  return expectSameElementType(*this);
}

LogicalResult UniformGatingOp::verify() {
  if (failed(expectMinRank(*this, "input", getInput(), 1)))
    return failure();
  SmallVector<int64_t> shape = withLastDim(getInput(), getNumExperts());
  if (failed(expectResultShape(*this, "weights", getWeights(), shape)) ||
      failed(expectResultShape(*this, "indices", getIndices(), shape)))
    return failure();
  return expectSameElementType(*this);
}

LogicalResult ExpertsOp::verify() {
  if (failed(expectMinRank(*this, "input", getInput(), 1)) ||
      failed(verifyFfnWeights(*this, getInput(), getGate(), getUp(), getDown(),
                              1, "up", "gate", "down")) ||
      failed(verifyRouting(*this, getInput(), getWeights(), getIndices(),
                           tensorOf(getUp()).getShape()[0])) ||
      failed(verifySharedExpert(*this, getInput(), getSharedGate(),
                                getSharedUp(), getSharedDown(),
                                getSharedExpertGate())))
    return failure();
  if (getResult().getType() != getInput().getType())
    return emitOpError() << "expects the result type " << getInput().getType()
                         << ", got " << getResult().getType();
  return expectSameElementType(*this);
}

LogicalResult RoutedLinearOp::verify() {
  if (failed(expectMinRank(*this, "input", getInput(), 1)) ||
      failed(expectRank(*this, "weight", getWeight(), 3)))
    return failure();
  ArrayRef<int64_t> w = tensorOf(getWeight()).getShape();
  if (failed(expectDim(*this, "weight", getWeight(), 2,
                       tensorOf(getInput()).getShape().back(),
                       "the input feature size")) ||
      failed(
          verifyRouting(*this, getInput(), getWeights(), getIndices(), w[0])))
    return failure();
  if (getBias()) {
    if (failed(expectRank(*this, "bias", getBias(), 2)) ||
        failed(expectDim(*this, "bias", getBias(), 0, w[0],
                         "the expert count of 'weight'")) ||
        failed(expectDim(*this, "bias", getBias(), 1, w[1],
                         "the output features of 'weight'")))
      return failure();
  }
  if (failed(expectResultShape(*this, "result", getResult(),
                               withLastDim(getInput(), w[1]))))
    return failure();
  return expectSameElementType(*this);
}

LogicalResult MixtureOfLoraOp::verify() {
  if (failed(verifyProjection(*this, getInput(), getWeight(), getBias(),
                              getResult())) ||
      failed(expectRank(*this, "router", getRouter(), 2)))
    return failure();
  ArrayRef<int64_t> w = tensorOf(getWeight()).getShape();
  size_t experts = getLoraA().size();
  if (experts == 0)
    return emitOpError() << "needs at least one adapter";
  if (getLoraB().size() != experts)
    return emitOpError() << "has " << experts << " 'lora_a' but "
                         << getLoraB().size() << " 'lora_b' tensors";
  if (static_cast<size_t>(getScales().size()) != experts)
    return emitOpError() << "has " << getScales().size() << " scales for "
                         << experts << " adapters";
  if (failed(expectDim(*this, "router", getRouter(), 0,
                       static_cast<int64_t>(experts), "the adapter count")) ||
      failed(expectDim(*this, "router", getRouter(), 1, w[1],
                       "the input features of 'weight'")))
    return failure();
  for (size_t e = 0; e < experts; ++e) {
    Value a = getLoraA()[e], b = getLoraB()[e];
    std::string aName = "lora_a #" + std::to_string(e);
    std::string bName = "lora_b #" + std::to_string(e);
    if (failed(expectRank(*this, aName, a, 2)) ||
        failed(expectRank(*this, bName, b, 2)) ||
        failed(expectDim(*this, aName, a, 1, w[1],
                         "the input features of 'weight'")) ||
        failed(expectDim(*this, bName, b, 0, w[0],
                         "the output features of 'weight'")) ||
        failed(expectDim(*this, bName, b, 1, tensorOf(a).getShape()[0],
                         "the rank of '" + aName + "'")))
      return failure();
  }
  int64_t topK = getTopK();
  if (topK < 0 || topK > static_cast<int64_t>(experts))
    return emitOpError() << "top_k = " << getTopK()
                         << " must be between 0 (all adapters) and the "
                            "adapter count "
                         << experts;
  return success();
}

LogicalResult FusedMoeOp::verify() {
  if (failed(expectMinRank(*this, "input", getInput(), 1)) ||
      failed(verifyFfnWeights(*this, getInput(), getGate(), getUp(), getDown(),
                              1, "up", "gate", "down")) ||
      failed(verifySharedExpert(*this, getInput(), getSharedGate(),
                                getSharedUp(), getSharedDown(),
                                getSharedExpertGate())))
    return failure();
  int64_t experts = tensorOf(getUp()).getShape()[0];
  if (getRouter()) {
    if (failed(expectRank(*this, "router", getRouter(), 2)) ||
        failed(expectDim(*this, "router", getRouter(), 0, experts,
                         "the expert count of 'up'")) ||
        failed(expectDim(*this, "router", getRouter(), 1,
                         tensorOf(getInput()).getShape().back(),
                         "the input hidden size")) ||
        failed(verifyBias(*this, "router_bias", getRouterBias(), experts,
                          "the expert count of 'up'")))
      return failure();
  } else {
    if (getRouterBias())
      return emitOpError() << "has a 'router_bias' but no 'router'";
    if (static_cast<int64_t>(getK()) != experts)
      return emitOpError() << "without a router runs every expert, so k ("
                           << getK() << ") must equal the expert count ("
                           << experts << ")";
  }
  if (!ShapedType::isDynamic(experts) && static_cast<int64_t>(getK()) > experts)
    return emitOpError() << "k = " << getK()
                         << " exceeds the number of experts (" << experts
                         << ")";
  if (getNoiseStd().convertToDouble() < 0)
    return emitOpError() << "noise_std must be non-negative";
  if (getResult().getType() != getInput().getType())
    return emitOpError() << "expects the result type " << getInput().getType()
                         << ", got " << getResult().getType();
  return expectSameElementType(*this);
}

#define GET_OP_CLASSES
#include "moe/MoeOps.cpp.inc"
