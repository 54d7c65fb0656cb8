//===- ONNXExport.cpp - Export to ONNX graphs -----------------------------===//
//
// An op-by-op translation of a model function into an ONNX graph (opset 17).
//
// Activations are 2-D in the graph: every value with token dimensions
// `[B, S, F]` of the IR is `[B * S, F]`, so that every linear layer is one
// Gemm on the weight as stored (`transB = 1`, no transposed copies) and the
// routed forms gather and scatter token rows. Attention alone restores
// `[B, S, ...]`, from the shape of the token ids.
//
// Weights are initializers in external data (ONNXWeights.h); some routed
// forms need them in another layout (one expert's slice, gate and up rows
// interleaved, experts side by side), which the producers stream directly.
//
//===----------------------------------------------------------------------===//

#include "moe/Export/ONNXExport.h"

#include "ONNXChecker.h"
#include "ONNXGraph.h"
#include "ONNXWeights.h"

#include "moe/Dialect/MoeDialect.h"
#include "moe/Dialect/MoeOps.h"
#include "moe/Support/Errors.h"
#include "moe/Support/Format.h"

#include "mlir/Dialect/Arith/IR/Arith.h"
#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/Dialect/Tensor/IR/Tensor.h"
#include "mlir/IR/Diagnostics.h"
#include "llvm/ADT/ScopeExit.h"
#include "llvm/ADT/StringExtras.h"
#include "llvm/ADT/TypeSwitch.h"
#include "llvm/Support/FileSystem.h"
#include "llvm/Support/MathExtras.h"
#include "llvm/Support/Path.h"
#include "llvm/Support/Signals.h"

#include <cmath>
#include <limits>
#include <map>

using namespace mlir;
using namespace mlir::moe;
using namespace mlir::moe::onnx_export;

using Names = SmallVector<std::string, 4>;

/// The name a location gives an operation: its NameLoc, looking through
/// fused and call-site locations.
static std::optional<std::string> nameFromLoc(Location loc) {
  if (auto name = dyn_cast<NameLoc>(loc))
    return name.getName().str();
  if (auto fused = dyn_cast<FusedLoc>(loc))
    for (Location inner : fused.getLocations())
      if (std::optional<std::string> name = nameFromLoc(inner))
        return name;
  if (auto callSite = dyn_cast<CallSiteLoc>(loc))
    return nameFromLoc(callSite.getCallee());
  return std::nullopt;
}

static int64_t numElements(ArrayRef<int64_t> shape) {
  int64_t count = 1;
  for (int64_t dim : shape)
    count *= dim;
  return count;
}

static ArrayRef<int64_t> shapeOf(Value value) {
  return cast<RankedTensorType>(value.getType()).getShape();
}

static StringRef activationName(Activation kind) {
  return stringifyActivation(kind);
}

namespace {
/// Translates one model function into a graph.
class Translator {
public:
  Translator(ModuleOp module, func::FuncOp func, OnnxMoeEncoding encoding,
             GraphBuilder &graph, std::vector<WeightInitializer> &weights)
      : module(module), func(func), encoding(encoding), g(graph),
        weights(weights) {
    if (auto scope = func->getAttrOfType<FlatSymbolRefAttr>(
            MoeDialect::getScopeAttrName()))
      ownScope = scope.getValue().str();
  }

  LogicalResult run();
  bool usesMicrosoftDomain() const { return microsoftDomain; }

private:
  //===--- Values ---------------------------------------------------------===//
  FailureOr<std::string> act(Operation *user, Value value);
  FailureOr<Names> acts(Operation *user, ValueRange values);
  void bind(Value value, const std::string &name) { values[value] = name; }

  //===--- Weights --------------------------------------------------------===//
  Value resolve(Value value) {
    if (Value bound = boundWeights.lookup(value))
      return bound;
    return value;
  }
  LogicalResult bindWeightArguments(FunctionType type);
  std::string addWeight(StringRef key, StringRef name,
                        SmallVector<int64_t, 4> dims,
                        std::function<llvm::Error(FloatSink &)> produce);
  FailureOr<std::string> weight(Operation *user, Value value, StringRef hint);
  FailureOr<std::string> optionalWeight(Operation *user, Value value,
                                        StringRef hint) {
    if (!value)
      return std::string();
    return weight(user, value, hint);
  }
  FailureOr<std::string> weightAs(Operation *user, Value value,
                                  SmallVector<int64_t, 4> dims, StringRef hint);
  FailureOr<std::string> expertSlice(Operation *user, Value stacked,
                                     int64_t expert, StringRef hint);
  FailureOr<std::string> interleavedGateUp(Operation *user, Value gate,
                                           Value up, StringRef hint);
  FailureOr<std::string> expertsSideBySide(Operation *user, Value stacked,
                                           StringRef hint);
  FailureOr<std::string> expertMean(Operation *user, Value stacked,
                                    StringRef hint);
  LogicalResult checkWeight(Operation *user, Value value);

  //===--- Shared subgraphs ----------------------------------------------===//
  const std::string &idsShape();
  const std::string &flatIds();
  const std::string &seqLen();
  const std::string &positions();
  const std::string &positionsF32();
  std::string tokenShape(ArrayRef<int64_t> trailing, StringRef name);
  std::string rowsShape(const std::string &x, int64_t columns, StringRef name);
  FailureOr<std::pair<std::string, std::string>> rope(AttentionOp op);
  const std::string &causalMask(int64_t window);

  //===--- Building blocks ------------------------------------------------===//
  std::string gemm(StringRef name, const std::string &a, const std::string &b,
                   const std::string &c = "", float alpha = 1.0f);
  std::string activation(StringRef name, Activation kind, const std::string &x);
  std::string ffn(StringRef name, const std::string &x, const std::string &gate,
                  const std::string &up, const std::string &down,
                  Activation kind, const std::string &gateBias = "",
                  const std::string &upBias = "",
                  const std::string &downBias = "", float downAlpha = 1.0f);
  std::pair<std::string, std::string>
  gating(StringRef name, const std::string &logits, int64_t k, Scoring scoring,
         bool scoreBeforeTopK, bool renormalize);
  FailureOr<std::string> routedRows(
      StringRef name, const std::string &x, const std::string &routeWeights,
      const std::string &routeIndices, int64_t numExperts, int64_t outDim,
      const std::string &init,
      llvm::function_ref<FailureOr<std::string>(int64_t, const std::string &,
                                                StringRef)>
          expert);

  //===--- Operations -----------------------------------------------------===//
  LogicalResult translate(Operation *op);
  std::string nameOf(Operation *op);
  LogicalResult refuseNoise(Operation *op, double noise);
  FailureOr<std::string> sharedExpert(Operation *op, StringRef name,
                                      const std::string &x, Value gate,
                                      Value up, Value down, Value expertGate,
                                      Activation kind);
  FailureOr<std::string>
  routedExperts(Operation *op, StringRef name, const std::string &x, Value gate,
                Value up, Value down, Activation kind,
                const std::string &shared,
                std::optional<std::pair<std::string, std::string>> route,
                const std::string &fusedLogits, int64_t k, bool normalize);
  FailureOr<std::string> denseExperts(Operation *op, StringRef name,
                                      const std::string &x, Value gate,
                                      Value up, Value down, Activation kind,
                                      const std::string &shared);
  std::string fusedBlocker(Value gate, Activation kind, Scoring scoring);

  LogicalResult lower(EmbeddingOp op);
  LogicalResult lower(RmsNormOp op);
  LogicalResult lower(LayerNormOp op);
  LogicalResult lower(LinearOp op);
  LogicalResult lower(LoraLinearOp op);
  LogicalResult lower(AttentionOp op);
  LogicalResult lower(FfnOp op);
  LogicalResult lower(ActivationOp op);
  LogicalResult lower(GluOp op);
  LogicalResult lower(ScaleOp op);
  LogicalResult lower(arith::AddFOp op);
  LogicalResult lower(RouterOp op);
  LogicalResult lower(TopKGatingOp op);
  LogicalResult lower(UniformGatingOp op);
  LogicalResult lower(ExpertsOp op);
  LogicalResult lower(FusedMoeOp op);
  LogicalResult lower(RoutedLinearOp op);
  LogicalResult lower(MixtureOfLoraOp op);
  LogicalResult lower(func::ReturnOp op);

  ModuleOp module;
  func::FuncOp func;
  OnnxMoeEncoding encoding;
  GraphBuilder &g;
  std::vector<WeightInitializer> &weights;
  std::string ownScope;
  Value ids;
  bool microsoftDomain = false;

  DenseMap<Value, std::string> values;
  /// Weight arguments (moe-outline-weights) to the weights they are bound
  /// to in the weights function.
  DenseMap<Value, Value> boundWeights;
  /// Initializers by what they hold (value and layout), to share them.
  std::map<std::string, std::string> weightNames;
  /// Lazily built subgraphs.
  std::string idsShapeName, flatIdsName, seqLenName, positionsName,
      positionsF32Name;
  std::map<std::string, std::pair<std::string, std::string>> ropeTables;
  std::map<int64_t, std::string> masks;
  std::map<std::string, std::string> shapes;
};
} // namespace

//===----------------------------------------------------------------------===//
// Values and names
//===----------------------------------------------------------------------===//

FailureOr<std::string> Translator::act(Operation *user, Value value) {
  auto it = values.find(value);
  if (it != values.end())
    return it->second;
  if (isWeight(resolve(value)))
    return user->emitOpError()
           << "reads a weight where the ONNX export expects an activation "
              "(a value with token dimensions)";
  return user->emitOpError() << "reads a value the ONNX export did not "
                                "translate";
}

FailureOr<Names> Translator::acts(Operation *user, ValueRange operands) {
  Names result;
  for (Value value : operands) {
    FailureOr<std::string> name = act(user, value);
    if (failed(name))
      return failure();
    result.push_back(*name);
  }
  return result;
}

std::string Translator::nameOf(Operation *op) {
  if (std::optional<std::string> name = nameFromLoc(op->getLoc()))
    return *name;
  std::string base = op->getName().getStringRef().str();
  if (std::optional<int64_t> layer = getLayerIndex(op))
    return "layers." + std::to_string(*layer) + "/" + base;
  return base;
}

//===----------------------------------------------------------------------===//
// Weights
//===----------------------------------------------------------------------===//

LogicalResult Translator::checkWeight(Operation *user, Value value) {
  auto type = dyn_cast<RankedTensorType>(value.getType());
  if (!type || !type.hasStaticShape() || !type.getElementType().isF32())
    return user->emitOpError()
           << "reads a weight of type " << value.getType()
           << "; the ONNX export writes f32 weights of static shape";
  return success();
}

std::string
Translator::addWeight(StringRef key, StringRef name,
                      SmallVector<int64_t, 4> dims,
                      std::function<llvm::Error(FloatSink &)> produce) {
  auto it = weightNames.find(key.str());
  if (it != weightNames.end())
    return it->second;
  std::string unique = g.uniqueValueName(name);
  weights.push_back({unique, std::move(dims), std::move(produce)});
  weightNames[key.str()] = unique;
  return unique;
}

/// A key naming a weight value (and a layout of it) for sharing.
static std::string weightKey(StringRef layout, ArrayRef<Value> weightValues) {
  std::string key = layout.str();
  for (Value value : weightValues)
    key += ":" + llvm::utohexstr(
                     reinterpret_cast<uintptr_t>(value.getAsOpaquePointer()));
  return key;
}

FailureOr<std::string> Translator::weight(Operation *user, Value value,
                                          StringRef hint) {
  value = resolve(value);
  if (!isWeight(value))
    return user->emitOpError()
           << "reads an activation where the ONNX export expects a weight";
  if (failed(checkWeight(user, value)))
    return failure();
  std::string name = hint.str();
  if (auto param = value.getDefiningOp<ParamOp>(); param && !param.getIndex()) {
    StringRef scope = param.getScope();
    name = param.getKey().str();
    if (scope != ownScope)
      name = (scope.drop_back(scope.ends_with(".ckpt") ? 5 : 0) + "/" + name)
                 .str();
  }
  uint64_t count = numElements(shapeOf(value));
  return addWeight(
      weightKey("full", value), name, SmallVector<int64_t, 4>(shapeOf(value)),
      [value, count](FloatSink &sink) { return sink.copy(value, 0, count); });
}

FailureOr<std::string> Translator::weightAs(Operation *user, Value value,
                                            SmallVector<int64_t, 4> dims,
                                            StringRef hint) {
  value = resolve(value);
  if (failed(checkWeight(user, value)))
    return failure();
  if (ArrayRef<int64_t>(dims) == shapeOf(value))
    return weight(user, value, hint);
  uint64_t count = numElements(dims);
  std::string key = weightKey("reshaped", value);
  for (int64_t dim : dims)
    key += "x" + std::to_string(dim);
  return addWeight(key, hint, std::move(dims), [value, count](FloatSink &sink) {
    return sink.copy(value, 0, count);
  });
}

FailureOr<std::string> Translator::expertSlice(Operation *user, Value stacked,
                                               int64_t expert, StringRef hint) {
  stacked = resolve(stacked);
  if (failed(checkWeight(user, stacked)))
    return failure();
  // The slice of a stack is one of its operands: share its initializer.
  if (auto stack = stacked.getDefiningOp<StackOp>())
    return weight(user, stack.getInputs()[expert], hint);
  SmallVector<int64_t, 4> dims(shapeOf(stacked).drop_front());
  uint64_t count = numElements(dims);
  return addWeight(weightKey("expert" + std::to_string(expert), stacked), hint,
                   std::move(dims), [stacked, expert, count](FloatSink &sink) {
                     return sink.copy(stacked, expert * count, count);
                   });
}

FailureOr<std::string> Translator::interleavedGateUp(Operation *user,
                                                     Value gate, Value up,
                                                     StringRef hint) {
  gate = resolve(gate);
  up = resolve(up);
  if (failed(checkWeight(user, gate)) || failed(checkWeight(user, up)))
    return failure();
  ArrayRef<int64_t> shape = shapeOf(up);
  int64_t experts = shape[0], inter = shape[1], hidden = shape[2];
  return addWeight(weightKey("interleaved", {gate, up}), hint,
                   {experts, 2 * inter, hidden},
                   [=](FloatSink &sink) -> llvm::Error {
                     // Row 2i is gate row i and row 2i+1 up row i
                     // (swiglu_fusion = 1).
                     for (int64_t e = 0; e < experts; ++e)
                       for (int64_t i = 0; i < inter; ++i) {
                         uint64_t row = (e * inter + i) * hidden;
                         MOE_RETURN_IF_ERROR(sink.copy(gate, row, hidden));
                         MOE_RETURN_IF_ERROR(sink.copy(up, row, hidden));
                       }
                     return llvm::Error::success();
                   });
}

FailureOr<std::string>
Translator::expertsSideBySide(Operation *user, Value stacked, StringRef hint) {
  stacked = resolve(stacked);
  if (failed(checkWeight(user, stacked)))
    return failure();
  ArrayRef<int64_t> shape = shapeOf(stacked);
  int64_t experts = shape[0], rows = shape[1], columns = shape[2];
  // [E, rows, columns] -> [rows, E * columns]: row r holds row r of every
  // expert, so that one Gemm sums the experts' products.
  return addWeight(weightKey("side-by-side", stacked), hint,
                   {rows, experts * columns},
                   [=](FloatSink &sink) -> llvm::Error {
                     for (int64_t r = 0; r < rows; ++r)
                       for (int64_t e = 0; e < experts; ++e)
                         MOE_RETURN_IF_ERROR(sink.copy(
                             stacked, (e * rows + r) * columns, columns));
                     return llvm::Error::success();
                   });
}

FailureOr<std::string> Translator::expertMean(Operation *user, Value stacked,
                                              StringRef hint) {
  stacked = resolve(stacked);
  if (failed(checkWeight(user, stacked)))
    return failure();
  ArrayRef<int64_t> shape = shapeOf(stacked);
  int64_t experts = shape[0];
  SmallVector<int64_t, 4> dims(shape.drop_front());
  uint64_t count = numElements(dims);
  return addWeight(weightKey("mean", stacked), hint, dims,
                   [=](FloatSink &sink) -> llvm::Error {
                     constexpr uint64_t chunk = 1 << 16;
                     std::vector<double> sum(chunk);
                     float *part = sink.scratch(chunk);
                     std::vector<float> mean(chunk);
                     for (uint64_t begin = 0; begin < count; begin += chunk) {
                       uint64_t n = std::min(chunk, count - begin);
                       std::fill(sum.begin(), sum.end(), 0.0);
                       for (int64_t e = 0; e < experts; ++e) {
                         MOE_RETURN_IF_ERROR(sink.weights().read(
                             stacked, e * count + begin, n, part));
                         for (uint64_t i = 0; i < n; ++i)
                           sum[i] += part[i];
                       }
                       for (uint64_t i = 0; i < n; ++i)
                         mean[i] = static_cast<float>(sum[i] / experts);
                       sink.write(mean.data(), n);
                     }
                     return llvm::Error::success();
                   });
}

//===----------------------------------------------------------------------===//
// Shared subgraphs
//===----------------------------------------------------------------------===//

const std::string &Translator::idsShape() {
  if (idsShapeName.empty())
    idsShapeName = g.add("Shape", {values[ids]}, "input_ids/shape").out();
  return idsShapeName;
}

const std::string &Translator::flatIds() {
  if (flatIdsName.empty())
    flatIdsName =
        g.add("Reshape", {values[ids], g.i64Vector({-1})}, "input_ids/flat")
            .out();
  return flatIdsName;
}

const std::string &Translator::seqLen() {
  if (seqLenName.empty())
    seqLenName =
        g.add("Gather", {idsShape(), g.i64Scalar(1)}, "input_ids/seq_len")
            .attr("axis", int64_t(0))
            .out();
  return seqLenName;
}

const std::string &Translator::positions() {
  if (positionsName.empty())
    positionsName =
        g.add("Range", {g.i64Scalar(0), seqLen(), g.i64Scalar(1)}, "positions")
            .out();
  return positionsName;
}

const std::string &Translator::positionsF32() {
  if (positionsF32Name.empty())
    positionsF32Name = g.add("Cast", {positions()}, "positions/f32")
                           .attr("to", int64_t(onnx::TensorProto::FLOAT))
                           .out();
  return positionsF32Name;
}

/// [B, S, trailing...]: the shape that restores token dimensions.
std::string Translator::tokenShape(ArrayRef<int64_t> trailing, StringRef name) {
  std::string key;
  for (int64_t dim : trailing)
    key += std::to_string(dim) + ",";
  auto it = shapes.find(key);
  if (it != shapes.end())
    return it->second;
  std::string shape = g.add("Concat", {idsShape(), g.i64Vector(trailing)}, name)
                          .attr("axis", int64_t(0))
                          .out();
  shapes[key] = shape;
  return shape;
}

/// [rows of x, columns].
std::string Translator::rowsShape(const std::string &x, int64_t columns,
                                  StringRef name) {
  std::string rows = g.add("Shape", {x}, (name + "/rows").str())
                         .attr("start", int64_t(0))
                         .attr("end", int64_t(1))
                         .out();
  return g.add("Concat", {rows, g.i64Vector({columns})}, name)
      .attr("axis", int64_t(0))
      .out();
}

/// The inverse frequencies of a rotary embedding with static scaling, as in
/// transformers' modeling_rope_utils, and the cos/sin scale.
static std::pair<std::vector<float>, double>
inverseFrequencies(int64_t dim, double theta, RopeScalingAttr scaling) {
  std::vector<double> base(dim / 2);
  for (int64_t i = 0; i < dim / 2; ++i)
    base[i] = 1.0 / std::pow(theta, double(2 * i) / double(dim));
  double attention = 1.0;
  if (scaling) {
    double factor = scaling.getFactor().convertToDouble();
    switch (scaling.getKind()) {
    case RopeScalingKind::linear:
      for (double &f : base)
        f /= factor;
      break;
    case RopeScalingKind::dynamic:
      break; // Depends on the sequence length: built in the graph.
    case RopeScalingKind::llama3: {
      double low = scaling.getLowFreqFactor().convertToDouble();
      double high = scaling.getHighFreqFactor().convertToDouble();
      double context = double(scaling.getOriginalMaxPosition());
      double lowWavelen = context / low, highWavelen = context / high;
      for (double &f : base) {
        double wavelen = 2 * llvm::numbers::pi / f;
        double scaled = wavelen > lowWavelen ? f / factor : f;
        double smooth = (context / wavelen - low) / (high - low);
        bool medium = !(wavelen < highWavelen) && !(wavelen > lowWavelen);
        if (medium)
          scaled = (1 - smooth) * scaled / factor + smooth * scaled;
        f = scaled;
      }
      break;
    }
    case RopeScalingKind::yarn: {
      double betaFast = scaling.getBetaFast().convertToDouble();
      double betaSlow = scaling.getBetaSlow().convertToDouble();
      double context = double(scaling.getOriginalMaxPosition());
      auto correctionDim = [&](double rotations) {
        return (dim * std::log(context / (rotations * 2 * llvm::numbers::pi))) /
               (2 * std::log(theta));
      };
      double low = std::max(std::floor(correctionDim(betaFast)), 0.0);
      double high =
          std::min(std::ceil(correctionDim(betaSlow)), double(dim - 1));
      if (low == high)
        high += 0.001;
      for (int64_t i = 0; i < dim / 2; ++i) {
        double ramp = std::clamp((double(i) - low) / (high - low), 0.0, 1.0);
        double extrapolation = 1 - ramp;
        base[i] =
            base[i] / factor * (1 - extrapolation) + base[i] * extrapolation;
      }
      attention = scaling.getAttentionFactor().convertToDouble();
      if (attention == 0)
        attention = factor <= 1 ? 1.0 : 0.1 * std::log(factor) + 1.0;
      break;
    }
    }
  }
  std::vector<float> result(base.begin(), base.end());
  return {result, attention};
}

FailureOr<std::pair<std::string, std::string>>
Translator::rope(AttentionOp op) {
  int64_t dim = op.getHeadDim();
  double theta = op.getRopeTheta().convertToDouble();
  RopeScalingAttr scaling = op.getRopeScaling().value_or(RopeScalingAttr());
  std::string key = std::to_string(dim) + "/" + std::to_string(theta);
  if (scaling) {
    std::string text;
    llvm::raw_string_ostream os(text);
    os << scaling;
    key += "/" + text;
  }
  auto it = ropeTables.find(key);
  if (it != ropeTables.end())
    return it->second;
  if (dim % 2)
    return op.emitOpError() << "has an odd head_dim (" << dim
                            << "): its rotary embedding cannot be exported";
  std::string prefix = "rope" + std::to_string(ropeTables.size());
  auto [inverse, attentionFactor] = inverseFrequencies(dim, theta, scaling);
  std::string inverseName;
  if (scaling && scaling.getKind() == RopeScalingKind::dynamic) {
    // NTK scaling: base = theta * max(factor * S / original - (factor - 1),
    // 1) ^ (d / (d - 2)); the maximum keeps theta up to the original
    // length.
    if (scaling.getOriginalMaxPosition() <= 0)
      return op.emitOpError() << "uses dynamic rotary scaling without "
                                 "original_max_position";
    double factor = scaling.getFactor().convertToDouble();
    std::string length = g.add("Cast", {seqLen()}, prefix + "/seq_len")
                             .attr("to", int64_t(onnx::TensorProto::FLOAT))
                             .out();
    std::string ratio = g.add(
        "Mul",
        {length,
         g.f32Scalar(float(factor / double(scaling.getOriginalMaxPosition())))},
        prefix + "/ratio");
    ratio = g.add("Sub", {ratio, g.f32Scalar(float(factor - 1))},
                  prefix + "/ratio_shift");
    ratio = g.add("Max", {ratio, g.f32Scalar(1.0f)}, prefix + "/ratio_min");
    std::string power =
        g.add("Pow", {ratio, g.f32Scalar(float(double(dim) / (dim - 2)))},
              prefix + "/ntk");
    std::string base =
        g.add("Mul", {power, g.f32Scalar(float(theta))}, prefix + "/base");
    std::vector<float> exponents(dim / 2);
    for (int64_t i = 0; i < dim / 2; ++i)
      exponents[i] = float(double(2 * i) / double(dim));
    std::string pow =
        g.add("Pow", {base, g.f32(exponents, {dim / 2})}, prefix + "/base_pow");
    inverseName = g.add("Reciprocal", {pow}, prefix + "/inv_freq");
  } else {
    inverseName = g.f32(inverse, {dim / 2});
  }
  std::string column =
      g.add("Unsqueeze", {positionsF32(), g.i64Vector({1})}, prefix + "/pos");
  std::string freqs =
      g.add("Mul", {column, inverseName}, prefix + "/freqs").out();
  std::string emb = g.add("Concat", {freqs, freqs}, prefix + "/emb")
                        .attr("axis", int64_t(-1))
                        .out();
  std::string cos = g.add("Cos", {emb}, prefix + "/cos");
  std::string sin = g.add("Sin", {emb}, prefix + "/sin");
  if (attentionFactor != 1.0) {
    cos = g.add("Mul", {cos, g.f32Scalar(float(attentionFactor))},
                prefix + "/cos_scaled")
              .out();
    sin = g.add("Mul", {sin, g.f32Scalar(float(attentionFactor))},
                prefix + "/sin_scaled")
              .out();
  }
  return ropeTables[key] = {cos, sin};
}

const std::string &Translator::causalMask(int64_t window) {
  auto it = masks.find(window);
  if (it != masks.end())
    return it->second;
  std::string prefix =
      window ? "mask/window" + std::to_string(window) : std::string("mask");
  std::string rows =
      g.add("Unsqueeze", {positions(), g.i64Vector({1})}, prefix + "/rows");
  std::string columns =
      g.add("Unsqueeze", {positions(), g.i64Vector({0})}, prefix + "/columns");
  std::string allowed =
      g.add("LessOrEqual", {columns, rows}, prefix + "/causal");
  if (window) {
    // Query i sees keys j with i - window < j.
    std::string first =
        g.add("Sub", {rows, g.i64Scalar(window)}, prefix + "/first");
    std::string near = g.add("Greater", {columns, first}, prefix + "/near");
    allowed = g.add("And", {allowed, near}, prefix).out();
  }
  return masks[window] = allowed;
}

//===----------------------------------------------------------------------===//
// Building blocks
//===----------------------------------------------------------------------===//

std::string Translator::gemm(StringRef name, const std::string &a,
                             const std::string &b, const std::string &c,
                             float alpha) {
  Node node = g.add("Gemm", {a, b, c}, name).attr("transB", int64_t(1));
  if (alpha != 1.0f)
    node.attr("alpha", alpha);
  return node.out();
}

std::string Translator::activation(StringRef name, Activation kind,
                                   const std::string &x) {
  std::string prefix = (name + "/" + activationName(kind)).str();
  switch (kind) {
  case Activation::silu: {
    std::string sigmoid = g.add("Sigmoid", {x}, prefix + "/sigmoid");
    return g.add("Mul", {x, sigmoid}, prefix).out();
  }
  case Activation::gelu: {
    // x * 0.5 * (1 + erf(x / sqrt(2))), in the order ONNX Runtime fuses.
    std::string scaled = g.add(
        "Div", {x, g.f32Scalar(float(llvm::numbers::sqrt2))}, prefix + "/div");
    std::string erf = g.add("Erf", {scaled}, prefix + "/erf");
    std::string one = g.add("Add", {erf, g.f32Scalar(1.0f)}, prefix + "/add");
    std::string product = g.add("Mul", {x, one}, prefix + "/mul");
    return g.add("Mul", {product, g.f32Scalar(0.5f)}, prefix).out();
  }
  case Activation::gelu_tanh: {
    // 0.5 * x * (1 + tanh(sqrt(2 / pi) * (x + 0.044715 * x^3))).
    std::string cube = g.add("Pow", {x, g.f32Scalar(3.0f)}, prefix + "/cube");
    std::string term =
        g.add("Mul", {cube, g.f32Scalar(0.044715f)}, prefix + "/cubic");
    std::string inner = g.add("Add", {x, term}, prefix + "/inner");
    std::string scaled = g.add(
        "Mul", {inner, g.f32Scalar(float(std::sqrt(2.0 / llvm::numbers::pi)))},
        prefix + "/scaled");
    std::string tanh = g.add("Tanh", {scaled}, prefix + "/tanh");
    std::string one = g.add("Add", {tanh, g.f32Scalar(1.0f)}, prefix + "/add");
    std::string half = g.add("Mul", {x, g.f32Scalar(0.5f)}, prefix + "/half");
    return g.add("Mul", {half, one}, prefix).out();
  }
  case Activation::relu:
    return g.add("Relu", {x}, prefix).out();
  case Activation::identity:
    return x;
  }
  return x;
}

std::string Translator::ffn(StringRef name, const std::string &x,
                            const std::string &gate, const std::string &up,
                            const std::string &down, Activation kind,
                            const std::string &gateBias,
                            const std::string &upBias,
                            const std::string &downBias, float downAlpha) {
  std::string upOut = gemm((name + "/up").str(), x, up, upBias);
  std::string hidden;
  if (!gate.empty()) {
    std::string gateOut = gemm((name + "/gate").str(), x, gate, gateBias);
    hidden = g.add("Mul", {activation(name, kind, gateOut), upOut},
                   (name + "/glu").str());
  } else {
    hidden = activation(name, kind, upOut);
  }
  return gemm((name + "/down").str(), hidden, down, downBias, downAlpha);
}

std::pair<std::string, std::string>
Translator::gating(StringRef name, const std::string &logits, int64_t k,
                   Scoring scoring, bool scoreBeforeTopK, bool renormalize) {
  std::string prefix = name.str();
  std::string kName = g.i64Vector({k});
  std::string weightsName, indicesName;
  auto topK = [&](const std::string &scores) {
    Node node = g.add("TopK", {scores, kName}, prefix + "/topk", 2)
                    .attr("axis", int64_t(-1))
                    .attr("largest", int64_t(1))
                    .attr("sorted", int64_t(1));
    weightsName = node.out(0);
    indicesName = node.out(1);
  };
  if (scoring == Scoring::sigmoid) {
    topK(g.add("Sigmoid", {logits}, prefix + "/sigmoid"));
  } else if (scoreBeforeTopK) {
    topK(g.add("Softmax", {logits}, prefix + "/softmax")
             .attr("axis", int64_t(-1)));
  } else {
    topK(logits);
    weightsName = g.add("Softmax", {weightsName}, prefix + "/softmax")
                      .attr("axis", int64_t(-1))
                      .out();
  }
  if (renormalize) {
    std::string sum =
        g.add("ReduceSum", {weightsName, g.i64Vector({-1})}, prefix + "/sum")
            .attr("keepdims", int64_t(1));
    weightsName = g.add("Div", {weightsName, sum}, prefix + "/renormalize");
  }
  return {weightsName, indicesName};
}

/// Routed rows, sorted by expert: the (expert, token) pairs of the routing
/// (NonZero of the [E, T] hit matrix, expert-major), every chosen token row
/// gathered once and split into one block per expert, each block through its
/// expert, and all of them weighted and added into the result by one
/// ScatterND (reduction `add`), which starts from `init` (zeros when empty).
FailureOr<std::string> Translator::routedRows(
    StringRef name, const std::string &x, const std::string &routeWeights,
    const std::string &routeIndices, int64_t numExperts, int64_t outDim,
    const std::string &init,
    llvm::function_ref<FailureOr<std::string>(int64_t, const std::string &,
                                              StringRef)>
        expert) {
  std::string prefix = (name + "/routing").str();
  SmallVector<int64_t> expertIds;
  for (int64_t e = 0; e < numExperts; ++e)
    expertIds.push_back(e);
  // chosen[t, j, e] = (indices[t, j] == e).
  std::string column =
      g.add("Unsqueeze", {routeIndices, g.i64Vector({2})}, prefix + "/indices");
  std::string chosen =
      g.add("Equal", {column, g.i64Vector(expertIds)}, prefix + "/chosen");
  std::string mask = g.add("Cast", {chosen}, prefix + "/mask")
                         .attr("to", int64_t(onnx::TensorProto::FLOAT));
  std::string weights3 =
      g.add("Unsqueeze", {routeWeights, g.i64Vector({2})}, prefix + "/weights");
  std::string spread = g.add("Mul", {mask, weights3}, prefix + "/spread");
  // gates[t, e]: the weight token t gives expert e; hits[t, e]: whether it
  // chose it.
  std::string gates =
      g.add("ReduceSum", {spread, g.i64Vector({1})}, prefix + "/gates")
          .attr("keepdims", int64_t(0));
  std::string hits = g.add("ReduceMax", {mask}, prefix + "/hits")
                         .attr("axes", ArrayRef<int64_t>{1})
                         .attr("keepdims", int64_t(0));
  std::string byExpert = g.add("Transpose", {hits}, prefix + "/hits_t")
                             .attr("perm", ArrayRef<int64_t>{1, 0});
  std::string pairs = g.add("NonZero", {byExpert}, prefix + "/pairs");
  std::string tokens =
      g.add("Gather", {pairs, g.i64Scalar(1)}, prefix + "/tokens")
          .attr("axis", int64_t(0));
  std::string counts =
      g.add("ReduceSum", {byExpert, g.i64Vector({1})}, prefix + "/counts")
          .attr("keepdims", int64_t(0));
  counts = g.add("Cast", {counts}, prefix + "/counts_i64")
               .attr("to", int64_t(onnx::TensorProto::INT64))
               .out();
  std::string gatesByExpert = g.add("Transpose", {gates}, prefix + "/gates_t")
                                  .attr("perm", ArrayRef<int64_t>{1, 0});
  std::string pairIndices = g.add("Transpose", {pairs}, prefix + "/pairs_t")
                                .attr("perm", ArrayRef<int64_t>{1, 0});
  std::string pairWeights =
      g.add("GatherND", {gatesByExpert, pairIndices}, prefix + "/pair_weights");
  std::string rows =
      g.add("Gather", {x, tokens}, prefix + "/rows").attr("axis", int64_t(0));
  Node blocks = g.add("Split", {rows, counts}, prefix + "/split", numExperts)
                    .attr("axis", int64_t(0));

  std::vector<std::string> outputs;
  for (int64_t e = 0; e < numExperts; ++e) {
    FailureOr<std::string> ye =
        expert(e, blocks.out(e), (name + "/expert" + Twine(e)).str());
    if (failed(ye))
      return failure();
    outputs.push_back(*ye);
  }
  std::string joined = outputs.front();
  if (numExperts > 1)
    joined = g.add("Concat", outputs, (name + "/experts_out").str())
                 .attr("axis", int64_t(0))
                 .out();
  std::string scale = g.add("Unsqueeze", {pairWeights, g.i64Vector({1})},
                            prefix + "/pair_weight_column");
  std::string weighted =
      g.add("Mul", {joined, scale}, (name + "/weighted").str());
  std::string result = init;
  if (result.empty()) {
    onnx::TensorProto zero;
    zero.set_data_type(onnx::TensorProto::FLOAT);
    zero.add_dims(1);
    zero.add_float_data(0.0f);
    result = g.add("ConstantOfShape",
                   {rowsShape(x, outDim, (name + "/out_shape").str())},
                   (name + "/zeros").str())
                 .attr("value", zero)
                 .out();
  }
  std::string scatterIndices = g.add("Unsqueeze", {tokens, g.i64Vector({1})},
                                     prefix + "/scatter_indices");
  return g
      .add("ScatterND", {result, scatterIndices, weighted},
           (name + "/scatter").str())
      .attr("reduction", StringRef("add"))
      .out();
}

//===----------------------------------------------------------------------===//
// Operations
//===----------------------------------------------------------------------===//

LogicalResult Translator::refuseNoise(Operation *op, double noise) {
  if (noise == 0)
    return success();
  return op->emitOpError()
         << "uses noisy gating (noise_std = " << formatNumber(noise)
         << "), which draws fresh noise per token position; the ONNX export "
            "does not reproduce it: set noise_std to 0 for inference";
}

LogicalResult Translator::lower(EmbeddingOp op) {
  if (op.getIds() != ids)
    return op.emitOpError() << "looks up ids other than the function's token "
                               "ids, which the ONNX export does not support";
  FailureOr<std::string> table =
      weight(op, op.getTable(), nameOf(op) + ".weight");
  if (failed(table))
    return failure();
  bind(op.getResult(), g.add("Gather", {*table, flatIds()}, nameOf(op))
                           .attr("axis", int64_t(0))
                           .out());
  return success();
}

LogicalResult Translator::lower(RmsNormOp op) {
  std::string name = nameOf(op);
  FailureOr<std::string> x = act(op, op.getInput());
  FailureOr<std::string> w = weight(op, op.getWeight(), name + ".weight");
  if (failed(x) || failed(w))
    return failure();
  // The pattern ONNX Runtime fuses into SimplifiedLayerNormalization.
  std::string square = g.add("Pow", {*x, g.f32Scalar(2.0f)}, name + "/pow");
  std::string mean = g.add("ReduceMean", {square}, name + "/mean")
                         .attr("axes", ArrayRef<int64_t>{-1})
                         .attr("keepdims", int64_t(1));
  std::string shifted = g.add(
      "Add", {mean, g.f32Scalar(float(op.getEpsilon().convertToDouble()))},
      name + "/add_eps");
  std::string root = g.add("Sqrt", {shifted}, name + "/sqrt");
  std::string normed = g.add("Div", {*x, root}, name + "/div");
  bind(op.getResult(), g.add("Mul", {normed, *w}, name).out());
  return success();
}

LogicalResult Translator::lower(LayerNormOp op) {
  std::string name = nameOf(op);
  FailureOr<std::string> x = act(op, op.getInput());
  FailureOr<std::string> w = weight(op, op.getWeight(), name + ".weight");
  FailureOr<std::string> b = optionalWeight(op, op.getBias(), name + ".bias");
  if (failed(x) || failed(w) || failed(b))
    return failure();
  bind(op.getResult(),
       g.add("LayerNormalization", {*x, *w, *b}, name)
           .attr("axis", int64_t(-1))
           .attr("epsilon", float(op.getEpsilon().convertToDouble()))
           .out());
  return success();
}

LogicalResult Translator::lower(LinearOp op) {
  std::string name = nameOf(op);
  FailureOr<std::string> x = act(op, op.getInput());
  FailureOr<std::string> w = weight(op, op.getWeight(), name + ".weight");
  FailureOr<std::string> b = optionalWeight(op, op.getBias(), name + ".bias");
  if (failed(x) || failed(w) || failed(b))
    return failure();
  bind(op.getResult(), gemm(name, *x, *w, *b));
  return success();
}

LogicalResult Translator::lower(LoraLinearOp op) {
  std::string name = nameOf(op);
  FailureOr<std::string> x = act(op, op.getInput());
  FailureOr<std::string> w = weight(op, op.getWeight(), name + ".weight");
  FailureOr<std::string> b = optionalWeight(op, op.getBias(), name + ".bias");
  FailureOr<std::string> a = weight(op, op.getLoraA(), name + ".lora_A");
  FailureOr<std::string> bb = weight(op, op.getLoraB(), name + ".lora_B");
  if (failed(x) || failed(w) || failed(b) || failed(a) || failed(bb))
    return failure();
  std::string base = gemm(name + "/base", *x, *w, *b);
  std::string low = gemm(name + "/lora_A", *x, *a, "",
                         float(op.getScale().convertToDouble()));
  bind(op.getResult(), gemm(name, low, *bb, base));
  return success();
}

LogicalResult Translator::lower(AttentionOp op) {
  std::string name = nameOf(op);
  FailureOr<Names> qkv = acts(op, {op.getQuery(), op.getKey(), op.getValue()});
  if (failed(qkv))
    return failure();
  int64_t heads = op.getNumHeads(), kvHeads = op.getNumKvHeads();
  int64_t dim = op.getHeadDim();
  if (heads % kvHeads)
    return op.emitOpError()
           << "heads " << heads << " is not a multiple of kv_heads " << kvHeads;
  int64_t group = heads / kvHeads;
  // q: [T, H * D] -> [B, S, KV, G, D] -> [B, KV, G, S, D]; k and v:
  // [T, KV * D] -> [B, KV, 1, S, D], so that MatMul broadcasts the group.
  std::string q = g.add(
      "Reshape", {(*qkv)[0], tokenShape({kvHeads, group, dim}, "shape/q")},
      name + "/q_heads");
  q = g.add("Transpose", {q}, name + "/q_transpose")
          .attr("perm", ArrayRef<int64_t>{0, 2, 3, 1, 4})
          .out();
  auto kvHeadsOf = [&](const std::string &value, StringRef part) {
    std::string reshaped =
        g.add("Reshape", {value, tokenShape({kvHeads, dim}, "shape/kv")},
              (name + "/" + part + "_heads").str());
    std::string transposed =
        g.add("Transpose", {reshaped}, (name + "/" + part + "_transpose").str())
            .attr("perm", ArrayRef<int64_t>{0, 2, 1, 3});
    return g
        .add("Unsqueeze", {transposed, g.i64Vector({2})},
             (name + "/" + part + "_group").str())
        .out();
  };
  std::string k = kvHeadsOf((*qkv)[1], "k");
  std::string v = kvHeadsOf((*qkv)[2], "v");

  if (op.getRopeTheta().convertToDouble() != 0) {
    FailureOr<std::pair<std::string, std::string>> table = rope(op);
    if (failed(table))
      return failure();
    auto rotate = [&](const std::string &x, StringRef part) {
      std::string prefix = (name + "/rope_" + part).str();
      std::string axes = g.i64Vector({-1});
      std::string first =
          g.add("Slice", {x, g.i64Vector({0}), g.i64Vector({dim / 2}), axes},
                prefix + "/first");
      std::string second =
          g.add("Slice", {x, g.i64Vector({dim / 2}), g.i64Vector({dim}), axes},
                prefix + "/second");
      std::string negated = g.add("Neg", {second}, prefix + "/neg");
      std::string rotated = g.add("Concat", {negated, first}, prefix + "/rot")
                                .attr("axis", int64_t(-1));
      std::string cos = g.add("Mul", {x, table->first}, prefix + "/cos");
      std::string sin = g.add("Mul", {rotated, table->second}, prefix + "/sin");
      return g.add("Add", {cos, sin}, prefix).out();
    };
    q = rotate(q, "q");
    k = rotate(k, "k");
  }
  double scale = op.getScale().has_value() ? op.getScale()->convertToDouble()
                                           : 1.0 / std::sqrt(double(dim));
  std::string kT = g.add("Transpose", {k}, name + "/k_t")
                       .attr("perm", ArrayRef<int64_t>{0, 1, 2, 4, 3});
  std::string scores = g.add("MatMul", {q, kT}, name + "/scores");
  scores =
      g.add("Mul", {scores, g.f32Scalar(float(scale))}, name + "/scores_scaled")
          .out();
  int64_t window = op.getSlidingWindow().value_or(0);
  if (window < 0)
    return op.emitOpError() << "has a negative sliding window";
  std::string mask = causalMask(window);
  scores = g.add("Where",
                 {mask, scores,
                  g.f32Scalar(-std::numeric_limits<float>::infinity())},
                 name + "/masked")
               .out();
  std::string probs =
      g.add("Softmax", {scores}, name + "/softmax").attr("axis", int64_t(-1));
  std::string out = g.add("MatMul", {probs, v}, name + "/context");
  out = g.add("Transpose", {out}, name + "/context_transpose")
            .attr("perm", ArrayRef<int64_t>{0, 3, 1, 2, 4})
            .out();
  bind(op.getResult(),
       g.add("Reshape", {out, g.i64Vector({-1, heads * dim})}, name).out());
  return success();
}

LogicalResult Translator::lower(FfnOp op) {
  std::string name = nameOf(op);
  FailureOr<std::string> x = act(op, op.getInput());
  FailureOr<std::string> gate =
      optionalWeight(op, op.getGate(), name + ".gate_proj.weight");
  FailureOr<std::string> up = weight(op, op.getUp(), name + ".up_proj.weight");
  FailureOr<std::string> down =
      weight(op, op.getDown(), name + ".down_proj.weight");
  FailureOr<std::string> gateBias =
      optionalWeight(op, op.getGateBias(), name + ".gate_proj.bias");
  FailureOr<std::string> upBias =
      optionalWeight(op, op.getUpBias(), name + ".up_proj.bias");
  FailureOr<std::string> downBias =
      optionalWeight(op, op.getDownBias(), name + ".down_proj.bias");
  if (failed(x) || failed(gate) || failed(up) || failed(down) ||
      failed(gateBias) || failed(upBias) || failed(downBias))
    return failure();
  bind(op.getResult(), ffn(name, *x, *gate, *up, *down, op.getActivation(),
                           *gateBias, *upBias, *downBias));
  return success();
}

LogicalResult Translator::lower(ActivationOp op) {
  FailureOr<std::string> x = act(op, op.getInput());
  if (failed(x))
    return failure();
  std::string result = activation(nameOf(op), op.getKind(), *x);
  if (result == *x)
    result = g.add("Identity", {*x}, nameOf(op)).out();
  bind(op.getResult(), result);
  return success();
}

LogicalResult Translator::lower(GluOp op) {
  std::string name = nameOf(op);
  FailureOr<std::string> gate = act(op, op.getGate());
  FailureOr<std::string> up = act(op, op.getUp());
  if (failed(gate) || failed(up))
    return failure();
  bind(op.getResult(),
       g.add("Mul", {activation(name, op.getActivation(), *gate), *up}, name)
           .out());
  return success();
}

LogicalResult Translator::lower(ScaleOp op) {
  FailureOr<std::string> x = act(op, op.getInput());
  if (failed(x))
    return failure();
  bind(op.getResult(),
       g.add("Mul", {*x, g.f32Scalar(float(op.getFactor().convertToDouble()))},
             nameOf(op))
           .out());
  return success();
}

LogicalResult Translator::lower(arith::AddFOp op) {
  FailureOr<std::string> lhs = act(op, op.getLhs());
  FailureOr<std::string> rhs = act(op, op.getRhs());
  if (failed(lhs) || failed(rhs))
    return failure();
  bind(op.getResult(), g.add("Add", {*lhs, *rhs}, nameOf(op)).out());
  return success();
}

LogicalResult Translator::lower(RouterOp op) {
  std::string name = nameOf(op);
  FailureOr<std::string> x = act(op, op.getInput());
  FailureOr<std::string> w = weight(op, op.getWeight(), name + ".router");
  FailureOr<std::string> b =
      optionalWeight(op, op.getBias(), name + ".router_bias");
  if (failed(x) || failed(w) || failed(b))
    return failure();
  bind(op.getLogits(), gemm(name + "/router", *x, *w, *b));
  return success();
}

LogicalResult Translator::lower(TopKGatingOp op) {
  if (failed(refuseNoise(op, op.getNoiseStd().convertToDouble())))
    return failure();
  FailureOr<std::string> logits = act(op, op.getLogits());
  if (failed(logits))
    return failure();
  auto [weightsName, indicesName] =
      gating(nameOf(op), *logits, op.getK(), op.getScoring(),
             op.getScoreBeforeTopk(), op.getRenormalize());
  bind(op.getWeights(), weightsName);
  bind(op.getIndices(), indicesName);
  return success();
}

LogicalResult Translator::lower(UniformGatingOp op) {
  // Consumers that recognise gate-less routing never read these; any other
  // consumer gets the equal weights and all indices, row by row.
  std::string name = nameOf(op);
  FailureOr<std::string> x = act(op, op.getInput());
  if (failed(x))
    return failure();
  int64_t experts = op.getNumExperts();
  std::string shape = rowsShape(*x, experts, name + "/shape");
  std::vector<float> weightsRow(experts, 1.0f / float(experts));
  SmallVector<int64_t> indexRow;
  for (int64_t e = 0; e < experts; ++e)
    indexRow.push_back(e);
  bind(op.getWeights(),
       g.add("Expand", {g.f32(weightsRow, {1, experts}), shape},
             name + "/weights")
           .out());
  bind(op.getIndices(), g.add("Expand", {g.i64(indexRow, {1, experts}), shape},
                              name + "/indices")
                            .out());
  return success();
}

FailureOr<std::string> Translator::sharedExpert(Operation *op, StringRef name,
                                                const std::string &x,
                                                Value gate, Value up,
                                                Value down, Value expertGate,
                                                Activation kind) {
  if (!up)
    return std::string();
  std::string prefix = (name + ".shared_expert").str();
  FailureOr<std::string> gateName =
      optionalWeight(op, gate, prefix + ".gate_proj.weight");
  FailureOr<std::string> upName = weight(op, up, prefix + ".up_proj.weight");
  FailureOr<std::string> downName =
      weight(op, down, prefix + ".down_proj.weight");
  FailureOr<std::string> expertGateName =
      optionalWeight(op, expertGate, (name + ".shared_expert_gate").str());
  if (failed(gateName) || failed(upName) || failed(downName) ||
      failed(expertGateName))
    return failure();
  std::string out = ffn((name + "/shared_expert").str(), x, *gateName, *upName,
                        *downName, kind);
  if (expertGateName->empty())
    return out;
  std::string logit =
      gemm((name + "/shared_expert_gate").str(), x, *expertGateName);
  std::string scale =
      g.add("Sigmoid", {logit}, (name + "/shared_expert_gate_sigmoid").str());
  return g.add("Mul", {out, scale}, (name + "/shared_expert_gated").str())
      .out();
}

std::string Translator::fusedBlocker(Value gate, Activation kind,
                                     Scoring scoring) {
  if (scoring == Scoring::sigmoid)
    return "sigmoid scoring (the operator applies softmax to the router "
           "logits)";
  if (gate && kind != Activation::silu)
    return ("gated " + activationName(kind) +
            " experts (the CPU kernel's only gated activation is SwiGLU)")
        .str();
  if (!gate && kind == Activation::gelu)
    return "exact (erf) GELU experts (the operator's gelu is the tanh "
           "approximation)";
  return "";
}

FailureOr<std::string> Translator::denseExperts(Operation *op, StringRef name,
                                                const std::string &x,
                                                Value gate, Value up,
                                                Value down, Activation kind,
                                                const std::string &shared) {
  // Gate-less: every expert with weight 1/E is one FFN whose intermediate
  // dimension holds all the experts side by side.
  ArrayRef<int64_t> shape = shapeOf(up);
  int64_t experts = shape[0], inter = shape[1], hidden = shape[2];
  std::string prefix = (name + ".experts").str();
  FailureOr<std::string> upAll =
      weightAs(op, up, {experts * inter, hidden}, prefix + ".up_proj.all");
  FailureOr<std::string> gateAll =
      gate ? weightAs(op, gate, {experts * inter, hidden},
                      prefix + ".gate_proj.all")
           : FailureOr<std::string>(std::string());
  FailureOr<std::string> downAll =
      expertsSideBySide(op, down, prefix + ".down_proj.all");
  if (failed(upAll) || failed(gateAll) || failed(downAll))
    return failure();
  std::string out = ffn((name + "/experts").str(), x, *gateAll, *upAll,
                        *downAll, kind, "", "", shared, 1.0f / float(experts));
  return out;
}

FailureOr<std::string> Translator::routedExperts(
    Operation *op, StringRef name, const std::string &x, Value gate, Value up,
    Value down, Activation kind, const std::string &shared,
    std::optional<std::pair<std::string, std::string>> route,
    const std::string &fusedLogits, int64_t k, bool normalize) {
  ArrayRef<int64_t> shape = shapeOf(up);
  int64_t experts = shape[0], hidden = shape[2];
  std::string prefix = (name + ".experts").str();
  if (!fusedLogits.empty()) {
    FailureOr<std::string> fc1 =
        gate ? interleavedGateUp(op, gate, up, prefix + ".fc1")
             : weight(op, up, prefix + ".fc1");
    FailureOr<std::string> fc2 = weight(op, down, prefix + ".fc2");
    if (failed(fc1) || failed(fc2))
      return failure();
    StringRef type = gate                            ? StringRef("swiglu")
                     : kind == Activation::gelu_tanh ? StringRef("gelu")
                                                     : activationName(kind);
    Node moe = g.add("MoE", {x, fusedLogits, *fc1, "", *fc2},
                     (name + "/moe").str(), 1, kMicrosoftDomain)
                   .attr("k", k)
                   .attr("activation_type", type)
                   .attr("normalize_routing_weights", int64_t(normalize));
    if (gate)
      moe.attr("swiglu_fusion", int64_t(1))
          .attr("activation_alpha", 1.0f)
          .attr("activation_beta", 0.0f);
    microsoftDomain = true;
    if (shared.empty())
      return moe.out();
    return g.add("Add", {moe.out(), shared}, (name + "/add_shared").str())
        .out();
  }
  return routedRows(
      name, x, route->first, route->second, experts, hidden, shared,
      [&](int64_t e, const std::string &xe,
          StringRef expertName) -> FailureOr<std::string> {
        std::string weightPrefix = prefix + "." + std::to_string(e);
        FailureOr<std::string> gateName =
            gate ? expertSlice(op, gate, e, weightPrefix + ".gate_proj.weight")
                 : FailureOr<std::string>(std::string());
        FailureOr<std::string> upName =
            expertSlice(op, up, e, weightPrefix + ".up_proj.weight");
        FailureOr<std::string> downName =
            expertSlice(op, down, e, weightPrefix + ".down_proj.weight");
        if (failed(gateName) || failed(upName) || failed(downName))
          return failure();
        return ffn(expertName, xe, *gateName, *upName, *downName, kind);
      });
}

LogicalResult Translator::lower(ExpertsOp op) {
  std::string name = nameOf(op);
  FailureOr<std::string> x = act(op, op.getInput());
  if (failed(x))
    return failure();
  FailureOr<std::string> shared = sharedExpert(
      op, name, *x, op.getSharedGate(), op.getSharedUp(), op.getSharedDown(),
      op.getSharedExpertGate(), op.getActivation());
  if (failed(shared))
    return failure();

  auto uniform = op.getWeights().getDefiningOp<UniformGatingOp>();
  if (uniform && op.getIndices() == uniform.getIndices()) {
    FailureOr<std::string> out =
        denseExperts(op, name, *x, op.getGate(), op.getUp(), op.getDown(),
                     op.getActivation(), *shared);
    if (failed(out))
      return failure();
    bind(op.getResult(), *out);
    return success();
  }

  std::string fusedLogits;
  int64_t k = shapeOf(op.getIndices()).back();
  bool normalize = false;
  if (encoding == OnnxMoeEncoding::Fused) {
    auto gatingOp = op.getWeights().getDefiningOp<TopKGatingOp>();
    std::string blocker;
    if (!gatingOp || op.getIndices() != gatingOp.getIndices())
      blocker = "routing that is not one moe.topk_gating";
    else
      blocker =
          fusedBlocker(op.getGate(), op.getActivation(), gatingOp.getScoring());
    if (blocker.empty()) {
      FailureOr<std::string> logits = act(op, gatingOp.getLogits());
      if (failed(logits))
        return failure();
      fusedLogits = *logits;
      k = gatingOp.getK();
      // Softmax over the k best logits is the renormalised softmax.
      normalize = gatingOp.getRenormalize() || !gatingOp.getScoreBeforeTopk();
    } else {
      emitRemark(op.getLoc()) << "exported in portable form: "
                                 "com.microsoft.MoE cannot express "
                              << blocker;
    }
  }
  std::optional<std::pair<std::string, std::string>> route;
  if (fusedLogits.empty()) {
    FailureOr<std::string> w = act(op, op.getWeights());
    FailureOr<std::string> idx = act(op, op.getIndices());
    if (failed(w) || failed(idx))
      return failure();
    route = {*w, *idx};
  }
  FailureOr<std::string> out = routedExperts(
      op, name, *x, op.getGate(), op.getUp(), op.getDown(), op.getActivation(),
      *shared, route, fusedLogits, k, normalize);
  if (failed(out))
    return failure();
  bind(op.getResult(), *out);
  return success();
}

LogicalResult Translator::lower(FusedMoeOp op) {
  if (failed(refuseNoise(op, op.getNoiseStd().convertToDouble())))
    return failure();
  std::string name = nameOf(op);
  FailureOr<std::string> x = act(op, op.getInput());
  if (failed(x))
    return failure();
  FailureOr<std::string> shared = sharedExpert(
      op, name, *x, op.getSharedGate(), op.getSharedUp(), op.getSharedDown(),
      op.getSharedExpertGate(), op.getActivation());
  if (failed(shared))
    return failure();
  FailureOr<std::string> out;
  if (!op.getRouter()) {
    out = denseExperts(op, name, *x, op.getGate(), op.getUp(), op.getDown(),
                       op.getActivation(), *shared);
  } else {
    FailureOr<std::string> router =
        weight(op, op.getRouter(), name + ".router");
    FailureOr<std::string> bias =
        optionalWeight(op, op.getRouterBias(), name + ".router_bias");
    if (failed(router) || failed(bias))
      return failure();
    std::string logits = gemm(name + "/router", *x, *router, *bias);
    int64_t k = op.getK();
    std::string blocker;
    if (encoding == OnnxMoeEncoding::Fused) {
      blocker = fusedBlocker(op.getGate(), op.getActivation(), op.getScoring());
      if (!blocker.empty())
        emitRemark(op.getLoc()) << "exported in portable form: "
                                   "com.microsoft.MoE cannot express "
                                << blocker;
    }
    if (encoding == OnnxMoeEncoding::Fused && blocker.empty()) {
      out = routedExperts(op, name, *x, op.getGate(), op.getUp(), op.getDown(),
                          op.getActivation(), *shared, std::nullopt, logits, k,
                          op.getRenormalize() || !op.getScoreBeforeTopk());
    } else {
      auto route = gating(name + "/gating", logits, k, op.getScoring(),
                          op.getScoreBeforeTopk(), op.getRenormalize());
      out = routedExperts(op, name, *x, op.getGate(), op.getUp(), op.getDown(),
                          op.getActivation(), *shared, route, "", k, false);
    }
  }
  if (failed(out))
    return failure();
  bind(op.getResult(), *out);
  return success();
}

LogicalResult Translator::lower(RoutedLinearOp op) {
  std::string name = nameOf(op);
  FailureOr<std::string> x = act(op, op.getInput());
  if (failed(x))
    return failure();
  Value weightValue = op.getWeight(), biasValue = op.getBias();
  ArrayRef<int64_t> shape = shapeOf(weightValue);
  int64_t experts = shape[0], out = shape[1];
  auto uniform = op.getWeights().getDefiningOp<UniformGatingOp>();
  if (uniform && op.getIndices() == uniform.getIndices()) {
    // Gate-less: the mean of linear maps is the map of the mean weight.
    FailureOr<std::string> w =
        expertMean(op, weightValue, name + ".weight.mean");
    FailureOr<std::string> b =
        biasValue ? expertMean(op, biasValue, name + ".bias.mean")
                  : FailureOr<std::string>(std::string());
    if (failed(w) || failed(b))
      return failure();
    bind(op.getResult(), gemm(name, *x, *w, *b));
    return success();
  }
  FailureOr<std::string> w = act(op, op.getWeights());
  FailureOr<std::string> idx = act(op, op.getIndices());
  if (failed(w) || failed(idx))
    return failure();
  FailureOr<std::string> result =
      routedRows(name, *x, *w, *idx, experts, out, "",
                 [&](int64_t e, const std::string &xe,
                     StringRef expertName) -> FailureOr<std::string> {
                   std::string prefix = name + ".experts." + std::to_string(e);
                   FailureOr<std::string> we =
                       expertSlice(op, weightValue, e, prefix + ".weight");
                   FailureOr<std::string> be =
                       biasValue
                           ? expertSlice(op, biasValue, e, prefix + ".bias")
                           : FailureOr<std::string>(std::string());
                   if (failed(we) || failed(be))
                     return failure();
                   return gemm((expertName + "/linear").str(), xe, *we, *be);
                 });
  if (failed(result))
    return failure();
  bind(op.getResult(), *result);
  return success();
}

LogicalResult Translator::lower(MixtureOfLoraOp op) {
  std::string name = nameOf(op);
  FailureOr<std::string> x = act(op, op.getInput());
  FailureOr<std::string> w = weight(op, op.getWeight(), name + ".weight");
  FailureOr<std::string> b = optionalWeight(op, op.getBias(), name + ".bias");
  FailureOr<std::string> router = weight(op, op.getRouter(), name + ".router");
  if (failed(x) || failed(w) || failed(b) || failed(router))
    return failure();
  int64_t adapters = op.getLoraA().size();
  SmallVector<Value> as, bs;
  for (Value a : op.getLoraA())
    as.push_back(resolve(a));
  for (Value b : op.getLoraB())
    bs.push_back(resolve(b));
  for (Value factor : llvm::concat<Value>(as, bs))
    if (!isWeight(factor) || failed(checkWeight(op, factor)))
      return op.emitOpError() << "reads LoRA factors that are not f32 weights";

  std::string base = gemm(name + "/base", *x, *w, *b);
  std::string logits = gemm(name + "/router", *x, *router);
  std::string scores = op.getNormalization() == Scoring::sigmoid
                           ? g.add("Sigmoid", {logits}, name + "/sigmoid").out()
                           : g.add("Softmax", {logits}, name + "/softmax")
                                 .attr("axis", int64_t(-1))
                                 .out();
  int64_t topK = op.getTopK();
  if (topK > 0 && topK < adapters) {
    // Keep the top_k scores (renormalised with softmax), zero the others.
    Node top = g.add("TopK", {scores, g.i64Vector({topK})}, name + "/topk", 2)
                   .attr("axis", int64_t(-1))
                   .attr("largest", int64_t(1))
                   .attr("sorted", int64_t(1));
    std::string kept = top.out(0);
    if (op.getNormalization() == Scoring::softmax) {
      std::string sum =
          g.add("ReduceSum", {kept, g.i64Vector({-1})}, name + "/topk_sum")
              .attr("keepdims", int64_t(1));
      kept = g.add("Div", {kept, sum}, name + "/renormalize").out();
    }
    onnx::TensorProto zero;
    zero.set_data_type(onnx::TensorProto::FLOAT);
    zero.add_dims(1);
    zero.add_float_data(0.0f);
    std::string shape = g.add("Shape", {scores}, name + "/scores_shape");
    std::string zeros =
        g.add("ConstantOfShape", {shape}, name + "/zeros").attr("value", zero);
    scores =
        g.add("ScatterElements", {zeros, top.out(1), kept}, name + "/gates")
            .attr("axis", int64_t(1))
            .out();
  }
  // All adapters at once: A stacked by rows ([R, in], R the sum of the
  // ranks), B side by side ([out, R]), each rank column scaled by its
  // adapter's gate times its scale.
  SmallVector<int64_t> rankOf;
  std::vector<float> rankScale;
  SmallVector<int64_t> ranks;
  ArrayRef<double> scales = op.getScales();
  for (int64_t e = 0; e < adapters; ++e) {
    int64_t rank = shapeOf(as[e])[0];
    ranks.push_back(rank);
    for (int64_t r = 0; r < rank; ++r) {
      rankOf.push_back(e);
      rankScale.push_back(float(scales[e]));
    }
  }
  int64_t total = rankOf.size();
  int64_t in = shapeOf(op.getWeight())[1], out = shapeOf(op.getWeight())[0];
  std::string allA = addWeight(
      weightKey("lora_a", as), name + ".lora_A.all", {total, in},
      [as](FloatSink &sink) -> llvm::Error {
        for (Value a : as)
          MOE_RETURN_IF_ERROR(sink.copy(a, 0, numElements(shapeOf(a))));
        return llvm::Error::success();
      });
  std::string allB =
      addWeight(weightKey("lora_b", bs), name + ".lora_B.all", {out, total},
                [bs, ranks, out](FloatSink &sink) -> llvm::Error {
                  for (int64_t row = 0; row < out; ++row)
                    for (auto [b, rank] : llvm::zip(bs, ranks))
                      MOE_RETURN_IF_ERROR(sink.copy(b, row * rank, rank));
                  return llvm::Error::success();
                });
  std::string rankGates =
      g.add("Gather", {scores, g.i64Vector(rankOf)}, name + "/rank_gates")
          .attr("axis", int64_t(1));
  std::string scaled = g.add("Mul", {rankGates, g.f32(rankScale, {total})},
                             name + "/rank_scales");
  std::string low = gemm(name + "/lora_A", *x, allA);
  std::string gated = g.add("Mul", {low, scaled}, name + "/gated");
  bind(op.getResult(), gemm(name, gated, allB, base));
  return success();
}

LogicalResult Translator::lower(func::ReturnOp op) {
  if (op.getNumOperands() != 1)
    return op.emitOpError() << "returns " << op.getNumOperands()
                            << " values; the ONNX export expects the logits";
  FailureOr<std::string> logits = act(op, op.getOperand(0));
  if (failed(logits))
    return failure();
  ArrayRef<int64_t> shape = shapeOf(op.getOperand(0));
  // The graph output is named "logits" exactly: reserve the name first.
  std::string output = g.uniqueValueName("logits");
  g.add("Reshape", {*logits, tokenShape({shape.back()}, "shape/logits")},
        "logits");
  onnx::GraphProto &proto = g.proto();
  proto.mutable_node(proto.node_size() - 1)->set_output(0, output);
  onnx::ValueInfoProto *info = proto.add_output();
  info->set_name(output);
  onnx::TypeProto::Tensor *type = info->mutable_type()->mutable_tensor_type();
  type->set_elem_type(onnx::TensorProto::FLOAT);
  ArrayRef<int64_t> idsShape = shapeOf(ids);
  const char *symbols[] = {"batch", "sequence"};
  for (int i = 0; i < 2; ++i) {
    auto *dim = type->mutable_shape()->add_dim();
    if (ShapedType::isDynamic(idsShape[i]))
      dim->set_dim_param(symbols[i]);
    else
      dim->set_dim_value(idsShape[i]);
  }
  type->mutable_shape()->add_dim()->set_dim_value(shape.back());
  return success();
}

LogicalResult Translator::translate(Operation *op) {
  // Weights become initializers when an operation reads them.
  if (op->getNumResults() &&
      llvm::all_of(op->getResults(), [](Value v) { return isWeight(v); }))
    return success();
  for (Value result : op->getResults()) {
    auto type = dyn_cast<RankedTensorType>(result.getType());
    if (!type)
      return op->emitOpError() << "produces a " << result.getType()
                               << ", which the ONNX export does not support";
    Type element = type.getElementType();
    if (isa<FloatType>(element) && !element.isF32())
      return op->emitOpError() << "computes in " << element
                               << "; the ONNX export supports f32 models";
    if (type.getRank() < 2 && !isa<func::ReturnOp>(op))
      return op->emitOpError() << "produces a value without token dimensions, "
                                  "which the ONNX export does not support";
  }
  return llvm::TypeSwitch<Operation *, LogicalResult>(op)
      .Case<EmbeddingOp, RmsNormOp, LayerNormOp, LinearOp, LoraLinearOp,
            AttentionOp, FfnOp, ActivationOp, GluOp, ScaleOp, arith::AddFOp,
            RouterOp, TopKGatingOp, UniformGatingOp, ExpertsOp, FusedMoeOp,
            RoutedLinearOp, MixtureOfLoraOp, func::ReturnOp>(
          [&](auto typed) { return lower(typed); })
      .Default([&](Operation *other) {
        return other->emitOpError()
               << "is not supported by the ONNX export (supported: the moe "
                  "model and routing operations, arith.addf, and weight "
                  "expressions)";
      });
}

/// Trailing arguments with `moe.weight = i` stand for result i of the
/// function `moe.weights` names (moe-outline-weights).
LogicalResult Translator::bindWeightArguments(FunctionType type) {
  if (type.getNumInputs() <= 1)
    return success();
  auto weightsRef =
      func->getAttrOfType<FlatSymbolRefAttr>(MoeDialect::getWeightsAttrName());
  auto weightsFunc =
      weightsRef ? module.lookupSymbol<func::FuncOp>(weightsRef.getAttr())
                 : func::FuncOp();
  if (!weightsFunc || weightsFunc.isExternal())
    return func.emitOpError() << "has " << type.getNumInputs()
                              << " arguments but no 'moe.weights' function "
                                 "binding the ones after the token ids";
  auto returnOp =
      cast<func::ReturnOp>(weightsFunc.getBody().front().getTerminator());
  for (unsigned i = 1; i < type.getNumInputs(); ++i) {
    auto index = func.getArgAttrOfType<IntegerAttr>(i, "moe.weight");
    if (!index || index.getInt() < 0 ||
        index.getInt() >= int64_t(returnOp.getNumOperands()))
      return func.emitOpError() << "argument #" << i
                                << " is neither the token ids nor a weight "
                                   "bound by 'moe.weight'";
    boundWeights[func.getArgument(i)] = returnOp.getOperand(index.getInt());
  }
  return success();
}

LogicalResult Translator::run() {
  FunctionType type = func.getFunctionType();
  if (failed(bindWeightArguments(type)))
    return failure();
  auto idsType = type.getNumInputs() >= 1
                     ? dyn_cast<RankedTensorType>(type.getInput(0))
                     : RankedTensorType();
  if (!idsType || idsType.getRank() != 2 ||
      !idsType.getElementType().isSignlessInteger() ||
      (idsType.getElementTypeBitWidth() != 64 &&
       idsType.getElementTypeBitWidth() != 32))
    return func.emitOpError()
           << "is not a model function the ONNX export supports: it must "
              "take token ids [batch, sequence] of i64 or i32 (and weights "
              "bound by moe-outline-weights); got "
           << type;
  if (type.getNumResults() != 1)
    return func.emitOpError()
           << "is not a model function the ONNX export supports: it must "
              "return the logits only; got "
           << type;
  ids = func.getArgument(0);
  std::string inputName = "input_ids";
  if (auto attr = func.getArgAttrOfType<StringAttr>(0, "moe.name"))
    inputName = attr.getValue().str();
  inputName = g.uniqueValueName(inputName);
  values[ids] = inputName;
  onnx::ValueInfoProto *input = g.proto().add_input();
  input->set_name(inputName);
  onnx::TypeProto::Tensor *tensor =
      input->mutable_type()->mutable_tensor_type();
  tensor->set_elem_type(idsType.getElementTypeBitWidth() == 64
                            ? onnx::TensorProto::INT64
                            : onnx::TensorProto::INT32);
  const char *symbols[] = {"batch", "sequence"};
  for (int i = 0; i < 2; ++i) {
    auto *dim = tensor->mutable_shape()->add_dim();
    if (idsType.isDynamicDim(i))
      dim->set_dim_param(symbols[i]);
    else
      dim->set_dim_value(idsType.getDimSize(i));
  }
  for (Operation &op : func.getBody().front())
    if (failed(translate(&op)))
      return failure();
  return success();
}

//===----------------------------------------------------------------------===//
// Files
//===----------------------------------------------------------------------===//

/// The model function to export.
static FailureOr<func::FuncOp> pickFunction(ModuleOp module,
                                            StringRef requested) {
  SmallVector<func::FuncOp> models;
  for (auto func : module.getOps<func::FuncOp>())
    if (!func.isExternal())
      models.push_back(func);
  if (!requested.empty()) {
    for (func::FuncOp func : models)
      if (func.getSymName() == requested)
        return func;
    InFlightDiagnostic diag = emitError(module.getLoc())
                              << "--export-func: no function named '"
                              << requested << "'";
    if (!models.empty()) {
      diag << " (functions:";
      for (func::FuncOp func : models)
        diag << " " << func.getSymName();
      diag << ")";
    }
    return failure();
  }
  // Prefer the model functions (with a checkpoint scope) when there are
  // helper functions beside them.
  SmallVector<func::FuncOp> scoped;
  for (func::FuncOp func : models)
    if (func->hasAttr(MoeDialect::getScopeAttrName()))
      scoped.push_back(func);
  if (scoped.size() == 1)
    return scoped.front();
  if (models.size() == 1)
    return models.front();
  if (models.empty())
    return emitError(module.getLoc())
           << "the module has no function to export to ONNX";
  InFlightDiagnostic diag = emitError(module.getLoc())
                            << "the module has " << models.size()
                            << " functions; choose one with --export-func:";
  for (func::FuncOp func : models)
    diag << " " << func.getSymName();
  return failure();
}

/// Checks the external data location: a plain file name beside the model.
static LogicalResult checkDataLocation(Location loc, StringRef location,
                                       StringRef modelName) {
  namespace path = llvm::sys::path;
  auto refuse = [&](const Twine &why) {
    return emitError(loc) << "external data location '" << location << "' "
                          << why;
  };
  if (location.empty())
    return refuse("is empty");
  if (path::is_absolute(location) || path::has_root_name(location))
    return refuse("is absolute; it must be a file name relative to the "
                  "model's directory");
  for (StringRef component :
       llvm::make_range(path::begin(location), path::end(location)))
    if (component == "..")
      return refuse("leaves the model's directory ('..')");
  if (location.contains('/') || location.contains('\\'))
    return refuse("names a subdirectory; it must be a file name in the "
                  "model's directory");
  if (location == "." || location == modelName)
    return refuse("is the model file itself");
  return success();
}

/// Removes the temporary directory of an export and what is left in it, and
/// forgets the files for the signal handler.
static void removeTemporaries(StringRef dir, ArrayRef<std::string> files) {
  for (const std::string &file : files) {
    llvm::sys::fs::remove(file);
    llvm::sys::DontRemoveFileOnSignal(file);
  }
  llvm::sys::fs::remove(dir);
}

LogicalResult mlir::moe::exportOnnx(ModuleOp module,
                                    const OnnxExportOptions &options) {
  namespace fs = llvm::sys::fs;
  namespace path = llvm::sys::path;
  Location loc = module.getLoc();
  StringRef modelPath = options.modelPath;
  if (modelPath.empty() || modelPath == "-")
    return emitError(loc) << "--export-onnx writes a model file and its "
                             "external data beside it: give the model file "
                             "with -o (e.g. -o model.onnx)";
  SmallString<256> dir(path::parent_path(modelPath));
  if (dir.empty())
    dir = ".";
  std::string modelName = path::filename(modelPath).str();
  if (modelName.empty() || modelName == "." || modelName == "..")
    return emitError(loc) << "-o '" << modelPath << "' does not name a file";
  std::string location =
      options.dataFile.empty() ? modelName + ".data" : options.dataFile;
  if (failed(checkDataLocation(loc, location, modelName)))
    return failure();
  SmallString<256> finalModel(dir), finalData(dir);
  path::append(finalModel, modelName);
  path::append(finalData, location);
  if (!fs::is_directory(dir))
    return emitError(loc) << "cannot write '" << modelPath << "': '" << dir
                          << "' "
                          << (fs::exists(dir) ? "is not a directory"
                                              : "does not exist");
  for (StringRef target : {finalModel.str(), finalData.str()}) {
    if (fs::is_symlink_file(target))
      return emitError(loc)
             << "refusing to write '" << target << "': it is a symbolic link";
    if (fs::is_directory(target))
      return emitError(loc)
             << "cannot write '" << target << "': it is a directory";
  }

  FailureOr<func::FuncOp> func = pickFunction(module, options.function);
  if (failed(func))
    return failure();

  onnx::ModelProto model;
  model.set_ir_version(8);
  model.set_producer_name("moe-translate");
  model.set_producer_version("1");
  model.set_doc_string(
      ("Model function @" + func->getSymName() +
       " exported by moe-translate "
       "--export-onnx (" +
       (options.encoding == OnnxMoeEncoding::Fused ? "fused" : "portable") +
       " MoE encoding): input_ids [batch, sequence] -> logits [batch, "
       "sequence, vocab], a prefill without KV cache.")
          .str());
  onnx::GraphProto *graphProto = model.mutable_graph();
  graphProto->set_name(func->getSymName().str());
  GraphBuilder graph(*graphProto);
  std::vector<WeightInitializer> weights;
  Translator translator(module, *func, options.encoding, graph, weights);
  if (failed(translator.run()))
    return failure();
  onnx::OperatorSetIdProto *opset = model.add_opset_import();
  opset->set_domain("");
  opset->set_version(kOnnxOpset);
  if (translator.usesMicrosoftDomain()) {
    opset = model.add_opset_import();
    opset->set_domain(kMicrosoftDomain.str());
    opset->set_version(1);
  }
  llvm::StringSet<> used;
  graph.removeDeadCode(used);

  // Write both files into a fresh directory beside the model, check them
  // there (the checker resolves the data file relative to the model), then
  // rename them into place.
  SmallString<256> tempDir;
  SmallString<256> prefix(dir);
  path::append(prefix, "." + modelName + ".tmp");
  if (std::error_code error = fs::createUniqueDirectory(prefix, tempDir))
    return emitError(loc) << "cannot write '" << modelPath
                          << "': cannot create a temporary directory in '"
                          << dir << "': " << error.message();
  SmallString<256> tempModel(tempDir), tempData(tempDir);
  path::append(tempModel, modelName);
  path::append(tempData, location);
  std::vector<std::string> temporaries = {tempData.str().str(),
                                          tempModel.str().str()};
  llvm::scope_exit cleanup([&] { removeTemporaries(tempDir, temporaries); });
  llvm::sys::RemoveFileOnSignal(tempData);
  llvm::sys::RemoveFileOnSignal(tempModel);

  WeightReader reader(module);
  if (llvm::Error error = writeExternalData(weights, used, reader, tempData,
                                            location, *graphProto))
    return emitError(func->getLoc())
           << "--export-onnx: " << llvm::toString(std::move(error));

  std::string bytes;
  if (!model.SerializeToString(&bytes))
    return emitError(loc) << "cannot serialise the ONNX model ("
                          << model.ByteSizeLong() << " bytes)";
  {
    std::error_code error;
    llvm::raw_fd_ostream os(tempModel, error, fs::OF_None);
    if (error)
      return emitError(loc)
             << "cannot write '" << tempModel << "': " << error.message();
    os << bytes;
    os.close();
    if (os.has_error()) {
      std::string message = os.error().message();
      os.clear_error();
      return emitError(loc)
             << "cannot write '" << tempModel << "': " << message;
    }
  }

  std::string message;
  if (!checkModelFile(tempModel.str().str(), message))
    return emitError(loc) << "the exported model fails the ONNX checker: "
                          << message;

  if (std::error_code error = fs::rename(tempData, finalData))
    return emitError(loc) << "cannot write '" << finalData
                          << "': " << error.message();
  if (std::error_code error = fs::rename(tempModel, finalModel)) {
    fs::remove(finalData);
    return emitError(loc) << "cannot write '" << finalModel
                          << "': " << error.message();
  }
  return success();
}
