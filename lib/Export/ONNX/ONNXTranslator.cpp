//===- ONNXTranslator.cpp - A model function as an ONNX graph -------------===//
//
// Values, weight initializers, the building blocks (Gemm, activations,
// FFNs) and the translation of the plain operations; the driver of the
// translation.
//
//===----------------------------------------------------------------------===//

#include "ONNXTranslator.h"

#include "moe/Dialect/MoeDialect.h"
#include "moe/Support/Errors.h"
#include "moe/Support/Format.h"

#include "llvm/ADT/StringExtras.h"
#include "llvm/ADT/TypeSwitch.h"
#include "llvm/Support/MathExtras.h"

using namespace mlir;
using namespace mlir::moe;
using namespace mlir::moe::onnx_export;

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

int64_t Translator::quantizedBits(WeightRole role) const {
  if (role != WeightRole::Matrix && role != WeightRole::Experts)
    return 0;
  switch (options.weightType) {
  case OnnxWeightType::Int8:
    return 8;
  case OnnxWeightType::Int4:
    return 4;
  default:
    return 0;
  }
}

std::string Translator::addWeight(
    StringRef key, StringRef name, SmallVector<int64_t, 4> dims,
    std::function<llvm::Error(FloatSink &)> produce, WeightRole role) {
  int64_t bits = quantizedBits(role);
  onnx::TensorProto::DataType dataType = onnx::TensorProto::FLOAT;
  if (role != WeightRole::Router && options.weightType == OnnxWeightType::F16)
    dataType = onnx::TensorProto::FLOAT16;
  if (role != WeightRole::Router && options.weightType == OnnxWeightType::BF16)
    dataType = onnx::TensorProto::BFLOAT16;
  // One value read as a matrix and as a plain weight (a tied embedding) is
  // stored once each way.
  std::string storedKey = key.str();
  if (bits)
    storedKey += "@" + std::to_string(bits) + "bits";
  else if (dataType != onnx::TensorProto::FLOAT)
    storedKey += "@half";
  auto it = weightNames.find(storedKey);
  if (it != weightNames.end())
    return it->second;
  std::string unique = g.uniqueValueName(name);
  std::string value = unique;
  if (bits) {
    // The packed blocks are written first; their scales (a 1/blockSize part
    // of the weight) are kept until the scales initializer, written next,
    // so that the weight is read once.
    int64_t columns = dims.back(), rows = numElements(dims) / columns;
    BlockQuantization quantization{bits, options.quantBlockSize, columns};
    auto scales = std::make_shared<std::vector<float>>();
    SmallVector<int64_t, 4> packedDims(dims), scaleDims(dims);
    if (role == WeightRole::Matrix) {
      // MatMulNBits: B [N, blocks, bytes per block], scales [N, blocks].
      packedDims = {rows, quantization.blocksPerRow(),
                    quantization.bytesPerBlock()};
      scaleDims = {rows, quantization.blocksPerRow()};
    } else {
      // QMoE: [E, N, K * bits / 8] and [E, N, K / blockSize] (K a multiple
      // of the block, fusedBlocker).
      packedDims.back() = quantization.bytesPerRow();
      scaleDims.back() = quantization.blocksPerRow();
    }
    weights.push_back({unique, packedDims, onnx::TensorProto::UINT8,
                       std::move(produce), quantization, scales});
    std::string scalesName = g.uniqueValueName((name + ".scales").str());
    uint64_t numScales = numElements(scaleDims);
    weights.push_back({scalesName, scaleDims, onnx::TensorProto::FLOAT,
                       [scales, numScales](FloatSink &sink) -> llvm::Error {
                         if (scales->size() != numScales)
                           return makeError(
                               "internal error: " + Twine(scales->size()) +
                               " quantisation scales instead of " +
                               Twine(numScales));
                         sink.write(scales->data(), scales->size());
                         std::vector<float>().swap(*scales);
                         return llvm::Error::success();
                       },
                       std::nullopt, nullptr});
    quantized[unique] = {scalesName, rows, columns};
  } else {
    weights.push_back({unique, std::move(dims), dataType, std::move(produce),
                       std::nullopt, nullptr});
    if (dataType != onnx::TensorProto::FLOAT)
      value = g.add("Cast", {unique}, unique + "/f32")
                  .attr("to", int64_t(onnx::TensorProto::FLOAT))
                  .out();
  }
  weightNames[storedKey] = value;
  weightValues.insert(value);
  return value;
}

std::string onnx_export::weightKey(StringRef layout,
                                   ArrayRef<Value> weightValues) {
  std::string key = layout.str();
  for (Value value : weightValues)
    key += ":" + llvm::utohexstr(
                     reinterpret_cast<uintptr_t>(value.getAsOpaquePointer()));
  return key;
}

FailureOr<std::string> Translator::weight(Operation *user, Value value,
                                          StringRef hint, WeightRole role) {
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
      [value, count](FloatSink &sink) { return sink.copy(value, 0, count); },
      role);
}

FailureOr<std::string> Translator::weightAs(Operation *user, Value value,
                                            SmallVector<int64_t, 4> dims,
                                            StringRef hint, WeightRole role) {
  value = resolve(value);
  if (failed(checkWeight(user, value)))
    return failure();
  if (ArrayRef<int64_t>(dims) == shapeOf(value))
    return weight(user, value, hint, role);
  uint64_t count = numElements(dims);
  std::string key = weightKey("reshaped", value);
  for (int64_t dim : dims)
    key += "x" + std::to_string(dim);
  return addWeight(
      key, hint, std::move(dims),
      [value, count](FloatSink &sink) { return sink.copy(value, 0, count); },
      role);
}

FailureOr<std::string> Translator::expertSlice(Operation *user, Value stacked,
                                               int64_t expert, StringRef hint,
                                               WeightRole role) {
  stacked = resolve(stacked);
  if (failed(checkWeight(user, stacked)))
    return failure();
  // The slice of a stack is one of its operands: share its initializer.
  if (auto stack = stacked.getDefiningOp<StackOp>())
    return weight(user, stack.getInputs()[expert], hint, role);
  SmallVector<int64_t, 4> dims(shapeOf(stacked).drop_front());
  uint64_t count = numElements(dims);
  return addWeight(
      weightKey("expert" + std::to_string(expert), stacked), hint,
      std::move(dims),
      [stacked, expert, count](FloatSink &sink) {
        return sink.copy(stacked, expert * count, count);
      },
      role);
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
  return addWeight(
      weightKey("interleaved", {gate, up}), hint, {experts, 2 * inter, hidden},
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
      },
      WeightRole::Experts);
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
  return addWeight(
      weightKey("side-by-side", stacked), hint, {rows, experts * columns},
      [=](FloatSink &sink) -> llvm::Error {
        for (int64_t r = 0; r < rows; ++r)
          for (int64_t e = 0; e < experts; ++e)
            MOE_RETURN_IF_ERROR(
                sink.copy(stacked, (e * rows + r) * columns, columns));
        return llvm::Error::success();
      },
      WeightRole::Matrix);
}

FailureOr<std::string> Translator::expertMean(Operation *user, Value stacked,
                                              StringRef hint, WeightRole role) {
  stacked = resolve(stacked);
  if (failed(checkWeight(user, stacked)))
    return failure();
  ArrayRef<int64_t> shape = shapeOf(stacked);
  int64_t experts = shape[0];
  SmallVector<int64_t, 4> dims(shape.drop_front());
  uint64_t count = numElements(dims);
  return addWeight(
      weightKey("mean", stacked), hint, dims,
      [=](FloatSink &sink) -> llvm::Error {
        constexpr uint64_t chunk = 1 << 16;
        std::vector<double> sum(chunk);
        float *part = sink.scratch(chunk);
        std::vector<float> mean(chunk);
        for (uint64_t begin = 0; begin < count; begin += chunk) {
          uint64_t n = std::min(chunk, count - begin);
          std::fill(sum.begin(), sum.end(), 0.0);
          for (int64_t e = 0; e < experts; ++e) {
            MOE_RETURN_IF_ERROR(
                sink.weights().read(stacked, e * count + begin, n, part));
            for (uint64_t i = 0; i < n; ++i)
              sum[i] += part[i];
          }
          for (uint64_t i = 0; i < n; ++i)
            mean[i] = static_cast<float>(sum[i] / experts);
          sink.write(mean.data(), n);
        }
        return llvm::Error::success();
      },
      role);
}

//===----------------------------------------------------------------------===//
// Building blocks
//===----------------------------------------------------------------------===//

std::string Translator::gemm(StringRef name, const std::string &a,
                             const std::string &b, const std::string &c,
                             float alpha) {
  auto packed = quantized.find(b);
  if (packed == quantized.end()) {
    Node node = g.add("Gemm", {a, b, c}, name).attr("transB", int64_t(1));
    if (alpha != 1.0f)
      node.attr("alpha", alpha);
    return node.out();
  }
  // A weight vector is MatMulNBits' bias; a scaled product or an activation
  // to add (dense experts) takes a Mul and an Add.
  bool biasInput = !c.empty() && alpha == 1.0f && weightValues.contains(c);
  SmallVector<std::string, 6> inputs = {a, b, packed->second.scales};
  if (biasInput)
    inputs.append({"", "", c});
  microsoftDomain = true;
  // accuracy_level 0: float32 activations; 4: activations quantised to
  // int8.
  std::string out =
      g.add("MatMulNBits", inputs, name, 1, kMicrosoftDomain)
          .attr("K", packed->second.columns)
          .attr("N", packed->second.rows)
          .attr("bits", quantizedBits(WeightRole::Matrix))
          .attr("block_size", options.quantBlockSize)
          .attr("accuracy_level", int64_t(options.quantizeActivations ? 4 : 0))
          .out();
  if (alpha != 1.0f)
    out =
        g.add("Mul", {out, g.f32Scalar(alpha)}, (name + "/alpha").str()).out();
  if (!c.empty() && !biasInput)
    out = g.add("Add", {out, c}, (name + "/add").str()).out();
  return out;
}

std::string Translator::activation(StringRef name, Activation kind,
                                   const std::string &x) {
  std::string prefix = (name + "/" + stringifyActivation(kind)).str();
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
  FailureOr<std::string> w =
      weight(op, op.getWeight(), name + ".weight", WeightRole::Matrix);
  FailureOr<std::string> b = optionalWeight(op, op.getBias(), name + ".bias");
  if (failed(x) || failed(w) || failed(b))
    return failure();
  bind(op.getResult(), gemm(name, *x, *w, *b));
  return success();
}

LogicalResult Translator::lower(LoraLinearOp op) {
  std::string name = nameOf(op);
  FailureOr<std::string> x = act(op, op.getInput());
  FailureOr<std::string> w =
      weight(op, op.getWeight(), name + ".weight", WeightRole::Matrix);
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

LogicalResult Translator::lower(FfnOp op) {
  std::string name = nameOf(op);
  FailureOr<std::string> x = act(op, op.getInput());
  FailureOr<std::string> gate = optionalWeight(
      op, op.getGate(), name + ".gate_proj.weight", WeightRole::Matrix);
  FailureOr<std::string> up =
      weight(op, op.getUp(), name + ".up_proj.weight", WeightRole::Matrix);
  FailureOr<std::string> down =
      weight(op, op.getDown(), name + ".down_proj.weight", WeightRole::Matrix);
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

LogicalResult Translator::lower(func::ReturnOp op) {
  if (op.getNumOperands() != 1)
    return op.emitOpError() << "returns " << op.getNumOperands()
                            << " values; the ONNX export expects the logits";
  FailureOr<std::string> logits = act(op, op.getOperand(0));
  if (failed(logits))
    return failure();
  int64_t vocab = shapeOf(op.getOperand(0)).back();
  // The graph output is named "logits" exactly: reserve the name first.
  std::string name = kvCache() ? logitsName : g.uniqueValueName("logits");
  declareOutputs(g.add("Reshape",
                       {*logits, tokenShape({vocab}, "shape/logits")},
                       "logits"),
                 name, vocab);
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
            RouterOp, TopKGatingOp, UniformGatingOp, RoutedLinearOp,
            MixtureOfLoraOp, func::ReturnOp>(
          [&](auto typed) { return lower(typed); })
      .Case<ExpertsOp, FusedMoeOp>(
          [&](Operation *routed) { return lowerRoutedExperts(routed); })
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
    auto index =
        func.getArgAttrOfType<IntegerAttr>(i, MoeDialect::getWeightAttrName());
    if (!index || index.getInt() < 0 ||
        index.getInt() >= int64_t(returnOp.getNumOperands()))
      return func.emitOpError() << "argument #" << i
                                << " is neither the token ids nor a weight "
                                   "bound by 'moe.weight'";
    boundWeights[func.getArgument(i)] = returnOp.getOperand(index.getInt());
  }
  return success();
}

LogicalResult Translator::declareInputs(RankedTensorType idsType) {
  std::string idsName = "input_ids";
  if (auto attr =
          func.getArgAttrOfType<StringAttr>(0, MoeDialect::getNameAttrName()))
    idsName = attr.getValue().str();
  int32_t idsElement = idsType.getElementTypeBitWidth() == 64
                           ? onnx::TensorProto::INT64
                           : onnx::TensorProto::INT32;
  if (!kvCache()) {
    SmallVector<GraphDim, 2> dims;
    const char *symbols[] = {"batch", "sequence"};
    for (int i = 0; i < 2; ++i)
      dims.push_back(idsType.isDynamicDim(i) ? GraphDim(symbols[i])
                                             : GraphDim(idsType.getDimSize(i)));
    values[ids] = g.addInput(g.uniqueValueName(idsName), idsElement, dims);
    return success();
  }

  SmallVector<AttentionOp> attentions;
  func.walk([&](AttentionOp attention) { attentions.push_back(attention); });
  if (attentions.empty())
    return func.emitOpError()
           << "has no moe.attention: --onnx-form=kv-cache exports the cache "
              "of attention keys and values, use --onnx-form=prefill";
  // The convention's names, reserved before any node names a value.
  attentionMask = g.uniqueValueName("attention_mask");
  positionIds = g.uniqueValueName("position_ids");
  for (size_t i = 0; i < attentions.size(); ++i) {
    std::string layer = std::to_string(i);
    cacheNames.push_back(
        {g.uniqueValueName("past_key_values." + layer + ".key"),
         g.uniqueValueName("past_key_values." + layer + ".value"),
         g.uniqueValueName("present." + layer + ".key"),
         g.uniqueValueName("present." + layer + ".value")});
  }
  logitsName = g.uniqueValueName("logits");
  if (g.uniqueValueName(idsName) != idsName)
    return func.emitOpError() << "names its token ids '" << idsName
                              << "', a name of the kv-cache form's interface";

  GraphDim batch("batch_size"), sequence("sequence_length");
  values[ids] = g.addInput(idsName, idsElement, {batch, sequence});
  g.addInput(attentionMask, onnx::TensorProto::INT64,
             {batch, GraphDim("total_sequence_length")});
  g.addInput(positionIds, onnx::TensorProto::INT64, {batch, sequence});
  for (auto [attention, names] : llvm::zip(attentions, cacheNames)) {
    SmallVector<GraphDim, 4> dims = {
        GraphDim("batch_size"), GraphDim(int64_t(attention.getNumKvHeads())),
        GraphDim("past_sequence_length"),
        GraphDim(int64_t(attention.getHeadDim()))};
    g.addInput(names.pastKey, onnx::TensorProto::FLOAT, dims);
    g.addInput(names.pastValue, onnx::TensorProto::FLOAT, dims);
  }
  return success();
}

void Translator::declareOutputs(const std::string &logits,
                                const std::string &name, int64_t vocab) {
  if (!kvCache()) {
    ArrayRef<int64_t> idsShape = shapeOf(ids);
    SmallVector<GraphDim, 3> dims;
    const char *symbols[] = {"batch", "sequence"};
    for (int i = 0; i < 2; ++i)
      dims.push_back(ShapedType::isDynamic(idsShape[i])
                         ? GraphDim(symbols[i])
                         : GraphDim(idsShape[i]));
    dims.push_back(vocab);
    g.addOutput(logits, name, onnx::TensorProto::FLOAT, dims);
    return;
  }
  g.addOutput(
      logits, name, onnx::TensorProto::FLOAT,
      {GraphDim("batch_size"), GraphDim("sequence_length"), GraphDim(vocab)});
  for (auto [present, names] : llvm::zip(presents, cacheNames)) {
    SmallVector<GraphDim, 4> dims = {
        GraphDim("batch_size"), GraphDim(present.kvHeads),
        GraphDim("total_sequence_length"), GraphDim(present.headDim)};
    g.addOutput(present.key, names.presentKey, onnx::TensorProto::FLOAT, dims);
    g.addOutput(present.value, names.presentValue, onnx::TensorProto::FLOAT,
                dims);
  }
}

LogicalResult Translator::run() {
  // MatMulNBits and QMoE take blocks of a power of two, at least 16.
  int64_t blockSize = options.quantBlockSize;
  if (blockSize < 16 || !llvm::isPowerOf2_64(blockSize))
    return emitError(func.getLoc())
           << "--onnx-block-size=" << blockSize
           << ": quantisation blocks must be a power of two, at least 16 "
              "(16, 32, 64, 128...)";
  if (options.quantizeActivations &&
      options.weightType != OnnxWeightType::Int8 &&
      options.weightType != OnnxWeightType::Int4)
    return emitError(func.getLoc())
           << "--onnx-int8-activations applies to the MatMulNBits of "
              "--onnx-weights=int8 or int4";
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
  if (failed(declareInputs(idsType)))
    return failure();
  for (Operation &op : func.getBody().front())
    if (failed(translate(&op)))
      return failure();
  return success();
}
