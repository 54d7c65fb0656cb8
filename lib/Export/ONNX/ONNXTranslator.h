//===- ONNXTranslator.h - A model function as an ONNX graph -----*- C++ -*-===//
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
// How a weight is stored follows --onnx-weights and what reads it
// (WeightRole): float16/bfloat16 initializers each read through one Cast to
// float32 (the graph computes in float32); with int8/int4 the matrices of
// linear layers and experts become packed blocks and scales
// (ONNXQuantize.h) read by com.microsoft.MatMulNBits and
// com.microsoft.QMoE, everything else stays float32. Routers are float32 in
// every mode: they are tiny, and their logits decide which experts run.
//
//===----------------------------------------------------------------------===//

#ifndef MOE_LIB_EXPORT_ONNX_ONNXTRANSLATOR_H
#define MOE_LIB_EXPORT_ONNX_ONNXTRANSLATOR_H

#include "ONNXGraph.h"
#include "ONNXWeights.h"

#include "moe/Dialect/MoeOps.h"
#include "moe/Export/ONNXExport.h"

#include "mlir/Dialect/Arith/IR/Arith.h"
#include "mlir/Dialect/Func/IR/FuncOps.h"

#include <map>

namespace mlir::moe::onnx_export {

using Names = SmallVector<std::string, 4>;

/// What reads a weight, which decides how --onnx-weights stores it.
enum class WeightRole {
  /// Router and gate matrices: float32 always.
  Router,
  /// Embeddings, norms, biases, LoRA factors: float16/bfloat16 in those
  /// modes, float32 otherwise.
  Plain,
  /// The [N, K] matrix of a linear layer: quantised for MatMulNBits.
  Matrix,
  /// The [E, N, K] matrices of fused experts: quantised for QMoE.
  Experts,
};

/// Rotary tables: `cos`/`sin` broadcast over keys [B, KV, S, D], and
/// `groupCos`/`groupSin` over grouped queries [B, KV, G, S, D].
struct RopeTables {
  std::string cos, sin, groupCos, groupSin;
};

/// The interface names of one attention layer's cache (KV-cache form).
struct CacheNames {
  std::string pastKey, pastValue, presentKey, presentValue;
};

inline ArrayRef<int64_t> shapeOf(Value value) {
  return cast<RankedTensorType>(value.getType()).getShape();
}

/// A key naming a weight value (and a layout of it), to share initializers.
std::string weightKey(StringRef layout, ArrayRef<Value> weightValues);

inline int64_t numElements(ArrayRef<int64_t> shape) {
  int64_t count = 1;
  for (int64_t dim : shape)
    count *= dim;
  return count;
}

/// Translates one model function into a graph. The translation of each
/// operation lives with its kind: ONNXTranslator.cpp (values, weights, the
/// building blocks and the plain operations), ONNXAttention.cpp (attention,
/// rotary embeddings, masks), ONNXRouting.cpp (routers, gating, routed
/// experts, mixtures of adapters).
class Translator {
public:
  Translator(ModuleOp module, func::FuncOp func,
             const OnnxExportOptions &options, GraphBuilder &graph,
             std::vector<WeightInitializer> &weights)
      : module(module), func(func), options(options),
        encoding(options.encoding), g(graph), weights(weights) {
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
                        std::function<llvm::Error(FloatSink &)> produce,
                        WeightRole role = WeightRole::Plain);
  /// The bits of quantised weights in `role`, 0 when stored as floats.
  int64_t quantizedBits(WeightRole role) const;
  FailureOr<std::string> weight(Operation *user, Value value, StringRef hint,
                                WeightRole role = WeightRole::Plain);
  FailureOr<std::string> optionalWeight(Operation *user, Value value,
                                        StringRef hint,
                                        WeightRole role = WeightRole::Plain) {
    if (!value)
      return std::string();
    return weight(user, value, hint, role);
  }
  FailureOr<std::string> weightAs(Operation *user, Value value,
                                  SmallVector<int64_t, 4> dims, StringRef hint,
                                  WeightRole role);
  FailureOr<std::string> expertSlice(Operation *user, Value stacked,
                                     int64_t expert, StringRef hint,
                                     WeightRole role);
  FailureOr<std::string> interleavedGateUp(Operation *user, Value gate,
                                           Value up, StringRef hint);
  FailureOr<std::string> expertsSideBySide(Operation *user, Value stacked,
                                           StringRef hint);
  FailureOr<std::string> expertMean(Operation *user, Value stacked,
                                    StringRef hint, WeightRole role);
  LogicalResult checkWeight(Operation *user, Value value);

  //===--- The graph's interface -----------------------------------------===//
  bool kvCache() const { return options.form == OnnxForm::KvCache; }
  LogicalResult declareInputs(RankedTensorType idsType);
  void declareOutputs(const std::string &logits, const std::string &name,
                      int64_t vocab);

  //===--- Shared subgraphs ----------------------------------------------===//
  const std::string &idsShape();
  const std::string &flatIds();
  const std::string &seqLen();
  const std::string &totalLen();
  const std::string &pastLen();
  const std::string &positionsF32();
  const std::string &ropeLength();
  std::string tokenShape(ArrayRef<int64_t> trailing, StringRef name);
  std::string rowsShape(const std::string &x, int64_t columns, StringRef name);
  FailureOr<RopeTables> rope(AttentionOp op);
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
  std::string fusedBlocker(Value gate, Value up, Activation kind,
                           Scoring scoring);

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
  /// moe.experts and moe.fused_moe.
  LogicalResult lowerRoutedExperts(Operation *op);
  LogicalResult lower(RoutedLinearOp op);
  LogicalResult lower(MixtureOfLoraOp op);
  LogicalResult lower(func::ReturnOp op);

  ModuleOp module;
  func::FuncOp func;
  const OnnxExportOptions &options;
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
  /// Initializers by what they hold (value, layout and storage), to share
  /// them.
  std::map<std::string, std::string> weightNames;
  /// The values addWeight returned (initializers or their casts).
  llvm::StringSet<> weightValues;
  /// Quantised matrices by the name of their packed blocks.
  struct QuantizedWeight {
    std::string scales;
    int64_t rows, columns;
  };
  std::map<std::string, QuantizedWeight> quantized;
  /// KV-cache form: the inputs beside the token ids, the cache names of
  /// each attention layer (in order), the present values of the layers
  /// translated so far, and the logits output's reserved name.
  std::string attentionMask, positionIds, logitsName;
  std::vector<CacheNames> cacheNames;
  struct Present {
    std::string key, value;
    int64_t kvHeads, headDim;
  };
  std::vector<Present> presents;
  /// Lazily built subgraphs.
  std::string idsShapeName, flatIdsName, seqLenName, totalLenName, pastLenName,
      positionsF32Name, ropeLengthName;
  std::map<std::string, RopeTables> ropeTables;
  std::map<int64_t, std::string> masks;
  std::map<std::string, std::string> shapes;
};

} // namespace mlir::moe::onnx_export

#endif // MOE_LIB_EXPORT_ONNX_ONNXTRANSLATOR_H
