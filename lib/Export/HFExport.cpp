//===- HFExport.cpp - Export to Hugging Face MoE checkpoints --------------===//
//
// A mixed function becomes MixtralForCausalLM, Qwen2MoeForCausalLM or
// GraniteMoeForCausalLM, whichever computes exactly what it computes:
//
// - routing: Mixtral renormalises the softmax over its top k, Qwen2-MoE does
//   iff norm_topk_prob, GraniteMoE takes the softmax of the top-k logits (the
//   same function as renormalising); gate-less routing is a zero router with
//   k = E (1/E each);
// - a dense layer of a layer subset is one of Qwen2-MoE's mlp_only_layers;
//   the other layouts have none, and get E copies of the dense FFN under a
//   zero router (gate weights summing to one leave it unchanged), with a
//   warning;
// - Qwen2-MoE always has a sigmoid-gated shared expert and q/k/v biases: an
//   ungated shared expert gets a zero gate and its down projection doubled
//   (sigmoid(0) = 1/2), a mix without one gets a zero expert of width 1, and
//   a stem without biases zero biases.
//
// Tensors are written in the per-expert layout that transformers'
// save_pretrained writes and from_pretrained fuses on load. Weights that are
// plain tensors of a source checkpoint in the output dtype are copied
// between files by the kernel; conversions and computed weights (averaged
// stems, random routers) stream through bounded buffers.
//
//===----------------------------------------------------------------------===//

#include "moe/Export/HFExport.h"

#include "moe/Export/DecoderStructure.h"
#include "moe/Import/HFConfig.h"
#include "moe/Support/Errors.h"
#include "moe/Support/Format.h"
#include "moe/Transforms/ModelFunctions.h"
#include "moe/Weights/WeightEvaluator.h"

#include "mlir/Dialect/Tensor/IR/Tensor.h"
#include "llvm/ADT/ScopeExit.h"
#include "llvm/ADT/StringExtras.h"
#include "llvm/ADT/StringSwitch.h"
#include "llvm/Support/FileSystem.h"
#include "llvm/Support/Format.h"
#include "llvm/Support/JSON.h"
#include "llvm/Support/Path.h"
#include "llvm/Support/Process.h"
#include "llvm/Support/Signals.h"
#include "llvm/Support/raw_ostream.h"

#include <chrono>
#include <cmath>
#include <csignal>

using namespace mlir;
using namespace mlir::moe;
using weights::DType;

//===----------------------------------------------------------------------===//
// Layouts and what they cannot carry
//===----------------------------------------------------------------------===//

namespace {
enum class Layout { Mixtral, Qwen2Moe, GraniteMoe };
} // namespace

static StringRef architectureOf(Layout layout) {
  switch (layout) {
  case Layout::Mixtral:
    return "MixtralForCausalLM";
  case Layout::Qwen2Moe:
    return "Qwen2MoeForCausalLM";
  case Layout::GraniteMoe:
    return "GraniteMoeForCausalLM";
  }
  llvm_unreachable("unknown layout");
}

static StringRef modelTypeOf(Layout layout) {
  switch (layout) {
  case Layout::Mixtral:
    return "mixtral";
  case Layout::Qwen2Moe:
    return "qwen2_moe";
  case Layout::GraniteMoe:
    return "granitemoe";
  }
  llvm_unreachable("unknown layout");
}

/// Where a refused feature can go instead.
static constexpr StringLiteral kOtherExports =
    "the ONNX export (--export-onnx) and the CPU runner (moe-run) can carry "
    "it";

static LogicalResult refuse(Operation *op, func::FuncOp func,
                            const Twine &feature) {
  InFlightDiagnostic diag = op->emitError()
                            << "cannot export @" << func.getSymName()
                            << " as a Hugging Face checkpoint: " << feature;
  if (std::optional<int64_t> layer = getLayerIndex(op))
    diag << " (layer " << *layer << ")";
  diag << " has no counterpart in MixtralForCausalLM, Qwen2MoeForCausalLM or "
          "GraniteMoeForCausalLM; "
       << kOtherExports;
  return failure();
}

/// Refuses operations that no decoder layout has, before the structure is
/// matched, so that the message names the feature rather than the shape.
static LogicalResult refuseUnstructuredFeatures(func::FuncOp func) {
  WalkResult result = func.walk([&](Operation *op) {
    LogicalResult verdict = success();
    if (isa<MixtureOfLoraOp>(op))
      verdict = refuse(op, func,
                       "a mixture of LoRA adapters "
                       "(moe.mixture_of_lora, moe-mix-adapters)");
    else if (isa<LoraLinearOp>(op))
      verdict = refuse(op, func,
                       "a LoRA adapter on a linear layer (moe.lora_linear)");
    else if (isa<RoutedLinearOp>(op))
      verdict = refuse(
          op, func,
          llvm::any_of(op->getUsers(), llvm::IsaPred<AttentionOp>)
              ? "routed attention projections (moe.routed_linear, "
                "route-attention)"
              : "fine-grained routing, separate routers for the gate, up "
                "and down projections (moe.routed_linear, fine-grained)");
    return failed(verdict) ? WalkResult::interrupt() : WalkResult::advance();
  });
  return failure(result.wasInterrupted());
}

/// Refuses routing and FFN variants that the matched structure holds but
/// no layout can express.
static LogicalResult refuseUnsupportedLayers(Decoder &decoder) {
  func::FuncOp func = decoder.func;
  for (DecoderLayer &layer : decoder.layers) {
    if (layer.attention.getRopeTheta().convertToDouble() == 0)
      return refuse(layer.attention, func,
                    "attention without a rotary embedding (rope_theta 0)");
    if (layer.dense) {
      if (!layer.dense->gate)
        return refuse(layer.dense->op, func,
                      "a dense FFN without a gate projection");
      if (layer.dense->op.getActivation() == Activation::identity)
        return refuse(layer.dense->op, func, "the identity activation");
      continue;
    }
    const RoutedExperts &routed = *layer.routed;
    Operation *op = routed.op;
    if (routed.scoring == Scoring::sigmoid)
      return refuse(op, func, "sigmoid scoring of the router");
    if (routed.noiseStd != 0)
      return refuse(op, func,
                    "noisy top-k gating (noise_std " +
                        formatNumber(routed.noiseStd) + ")");
    if (routed.routerBias)
      return refuse(op, func, "a router bias (router=base-init)");
    if (routed.router && routed.routerInput != op->getOperand(0))
      return refuse(op, func,
                    "a global router shared by the layers (global-router)");
    if (!routed.gate)
      return refuse(op, func, "experts without a gate projection");
    if (routed.sharedUp && !routed.sharedGate)
      return refuse(op, func, "a shared expert without a gate projection");
    if (routed.activation == Activation::identity)
      return refuse(op, func, "the identity activation");
  }
  return success();
}

namespace {
/// What every layer of the decoder shares, as one config describes it.
struct UniformShape {
  int64_t hidden = 0, vocab = 0;
  int64_t heads = 0, kvHeads = 0, headDim = 0;
  double normEpsilon = 0;
  Activation activation = Activation::silu;
  /// Of the routed layers.
  int64_t numExperts = 0, topK = 0, expertIntermediate = 0;
  bool weightsSumToOne = false;
  bool hasShared = false, sharedGated = false;
  int64_t sharedIntermediate = 0;
  /// Of the dense layers, if any.
  std::optional<int64_t> denseIntermediate;
  SmallVector<int64_t> denseLayers;
  /// The branch scale of every layer (Granite's residual multiplier).
  double branchScale = 1.0;
  /// Per layer: the sliding window, if any.
  SmallVector<std::optional<int64_t>> windows;
  /// The attention scale when it is not 1/sqrt(head_dim).
  std::optional<double> attentionScale;
  /// Biases of all of q, k and v; of some of them only; of o.
  bool qkvBias = false, partialQkvBias = false, outputBias = false;
};
} // namespace

/// Which of the q, k, v and o projections have biases, as bits 0 to 3.
static int64_t biasPattern(const DecoderLayer &layer) {
  return int64_t(bool(layer.queryBias)) | int64_t(bool(layer.keyBias)) << 1 |
         int64_t(bool(layer.valueBias)) << 2 |
         int64_t(bool(layer.outputBias)) << 3;
}

/// "q, k, v" for the projections with biases, "none" without.
static std::string describeBiases(const DecoderLayer &layer) {
  SmallVector<StringRef> names;
  for (auto [bias, name] : {std::pair{layer.queryBias, "q"},
                            {layer.keyBias, "k"},
                            {layer.valueBias, "v"},
                            {layer.outputBias, "o"}})
    if (bias)
      names.push_back(name);
  return names.empty() ? "none" : llvm::join(names, ", ");
}

/// The rotary embedding and scale of an attention, as the IR spells them.
static std::string describeAttention(AttentionOp attention) {
  std::string text;
  llvm::raw_string_ostream os(text);
  os << "rope_theta "
     << formatNumber(attention.getRopeTheta().convertToDouble());
  if (RopeScalingAttr scaling = attention.getRopeScalingAttr())
    os << ", " << scaling;
  if (FloatAttr scale = attention.getScaleAttr())
    os << ", scale " << formatNumber(scale.getValueAsDouble());
  return text;
}

/// Collects the shape every layer shares; reports the first two layers that
/// differ in something a config holds once.
static FailureOr<UniformShape> uniformShape(Decoder &decoder) {
  func::FuncOp func = decoder.func;
  UniformShape shape;
  auto tableShape =
      cast<RankedTensorType>(decoder.embeddingTable.getType()).getShape();
  shape.vocab = tableShape[0];
  shape.hidden = tableShape[1];
  shape.normEpsilon = decoder.finalNormEpsilon;

  const DecoderLayer *firstRouted = nullptr;
  const DecoderLayer *firstDense = nullptr;
  auto differ = [&](const DecoderLayer &a, DecoderLayer &b, const Twine &what,
                    const Twine &valueA, const Twine &valueB) -> LogicalResult {
    return b.attention.emitError()
           << "cannot export @" << func.getSymName()
           << " as a Hugging Face checkpoint: layers " << a.index << " and "
           << b.index << " differ in " << what << " (" << valueA << " vs "
           << valueB
           << "), which a Hugging Face config holds once for all layers; "
           << kOtherExports;
  };
  auto compare = [&](const DecoderLayer &a, DecoderLayer &b, StringRef what,
                     auto valueA, auto valueB) -> LogicalResult {
    if (valueA == valueB)
      return success();
    return differ(a, b, what, Twine(valueA), Twine(valueB));
  };

  DecoderLayer &first = decoder.layers.front();
  AttentionOp reference = first.attention;
  shape.heads = reference.getNumHeads();
  shape.kvHeads = reference.getNumKvHeads();
  shape.headDim = reference.getHeadDim();
  if (std::optional<APFloat> scale = reference.getScale()) {
    double value = scale->convertToDouble();
    if (std::abs(value * std::sqrt(double(shape.headDim)) - 1) > 1e-12)
      shape.attentionScale = value;
  }
  shape.branchScale = first.attentionBranchScale;

  for (DecoderLayer &layer : decoder.layers) {
    AttentionOp attention = layer.attention;
    if (failed(compare(first, layer, "attention heads",
                       int64_t(attention.getNumHeads()), shape.heads)) ||
        failed(compare(first, layer, "key/value heads",
                       int64_t(attention.getNumKvHeads()), shape.kvHeads)) ||
        failed(compare(first, layer, "head_dim",
                       int64_t(attention.getHeadDim()), shape.headDim)))
      return failure();
    if (describeAttention(attention) != describeAttention(reference))
      return differ(first, layer, "the rotary embedding or attention scale",
                    describeAttention(reference), describeAttention(attention));
    for (double epsilon :
         {layer.inputNormEpsilon, layer.postAttentionNormEpsilon})
      if (epsilon != shape.normEpsilon)
        return differ(first, layer, "the RMS norm epsilon",
                      formatNumber(shape.normEpsilon), formatNumber(epsilon));
    for (double scale : {layer.attentionBranchScale, layer.ffnBranchScale})
      if (scale != shape.branchScale)
        return differ(first, layer, "the residual branch scale",
                      formatNumber(shape.branchScale), formatNumber(scale));
    std::optional<int64_t> window;
    if (std::optional<uint64_t> size = attention.getSlidingWindow())
      window = *size;
    shape.windows.push_back(window);
    if (biasPattern(layer) != biasPattern(first))
      return differ(first, layer, "which attention projections have biases",
                    describeBiases(first), describeBiases(layer));
    Activation activation = layer.dense ? layer.dense->op.getActivation()
                                        : layer.routed->activation;
    Activation firstActivation = first.dense ? first.dense->op.getActivation()
                                             : first.routed->activation;
    if (activation != firstActivation)
      return differ(first, layer, "the FFN activation",
                    stringifyActivation(firstActivation),
                    stringifyActivation(activation));
    shape.activation = activation;

    if (layer.dense) {
      if (!firstDense) {
        firstDense = &layer;
        shape.denseIntermediate = layer.dense->intermediateSize();
      }
      if (failed(compare(*firstDense, layer, "the dense FFN width",
                         layer.dense->intermediateSize(),
                         *shape.denseIntermediate)))
        return failure();
      shape.denseLayers.push_back(layer.index);
      continue;
    }
    const RoutedExperts &routed = *layer.routed;
    if (!firstRouted) {
      firstRouted = &layer;
      shape.numExperts = routed.numExperts;
      shape.topK = routed.topK;
      shape.weightsSumToOne = routed.weightsSumToOne();
      shape.expertIntermediate = routed.intermediateSize();
      shape.hasShared = bool(routed.sharedUp);
      shape.sharedGated = bool(routed.sharedExpertGate);
      if (shape.hasShared)
        shape.sharedIntermediate = routed.sharedIntermediateSize();
    }
    const DecoderLayer &a = *firstRouted;
    if (failed(compare(a, layer, "the number of experts", routed.numExperts,
                       shape.numExperts)) ||
        failed(compare(a, layer, "k", routed.topK, shape.topK)) ||
        failed(compare(a, layer, "the expert width", routed.intermediateSize(),
                       shape.expertIntermediate)) ||
        failed(compare(a, layer, "whether the gate weights sum to one",
                       int64_t(routed.weightsSumToOne()),
                       int64_t(shape.weightsSumToOne))) ||
        failed(compare(a, layer, "whether there is a shared expert",
                       int64_t(bool(routed.sharedUp)),
                       int64_t(shape.hasShared))) ||
        failed(compare(a, layer, "whether the shared expert is gated",
                       int64_t(bool(routed.sharedExpertGate)),
                       int64_t(shape.sharedGated))))
      return failure();
    if (shape.hasShared && failed(compare(a, layer, "the shared expert width",
                                          routed.sharedIntermediateSize(),
                                          shape.sharedIntermediate)))
      return failure();
  }
  int64_t pattern = biasPattern(first);
  shape.qkvBias = (pattern & 7) == 7;
  shape.partialQkvBias = (pattern & 7) != 0 && (pattern & 7) != 7;
  shape.outputBias = pattern & 8;
  if (!firstRouted)
    return mlir::emitError(func.getLoc())
           << "cannot export @" << func.getSymName()
           << " as a Hugging Face MoE checkpoint: no layer "
              "is routed (mix it with moe-mix-experts first)";
  return shape;
}

/// Why `layout` cannot carry the decoder, or std::nullopt when it can.
static std::optional<std::string> whyNot(Layout layout, const Decoder &decoder,
                                         const UniformShape &shape) {
  bool scaled = decoder.embeddingScale != 1 || decoder.logitsScale != 1 ||
                shape.branchScale != 1;
  std::optional<int64_t> anyWindow;
  bool oneWindow = true, everyLayer = true;
  for (const std::optional<int64_t> &window : shape.windows) {
    everyLayer &= window.has_value();
    if (window && anyWindow && *window != *anyWindow)
      oneWindow = false;
    if (window)
      anyWindow = window;
  }
  if (!oneWindow)
    return std::string("sliding windows of different sizes");
  bool denseWidthDiffers = shape.denseIntermediate &&
                           *shape.denseIntermediate != shape.expertIntermediate;

  switch (layout) {
  case Layout::Mixtral:
  case Layout::GraniteMoe:
    if (shape.hasShared)
      return std::string("a shared expert");
    if (!shape.weightsSumToOne)
      return std::string("gate weights that are not renormalised over the "
                         "top k");
    if (denseWidthDiffers)
      return std::string("dense layers wider or narrower than the experts");
    if (layout == Layout::Mixtral) {
      if (shape.qkvBias || shape.outputBias)
        return std::string("attention projection biases");
      if (scaled)
        return std::string("embedding, residual or logit multipliers");
      if (shape.attentionScale)
        return std::string("an attention scale other than 1/sqrt(head_dim)");
      if (anyWindow && !everyLayer)
        return std::string("sliding windows in some layers only");
      return std::nullopt;
    }
    if (anyWindow)
      return std::string("sliding-window attention");
    if (shape.qkvBias != shape.outputBias || shape.partialQkvBias)
      return std::string("biases on some attention projections only");
    return std::nullopt;
  case Layout::Qwen2Moe:
    if (shape.outputBias)
      return std::string("an output projection bias (o_proj.bias)");
    if (shape.partialQkvBias)
      return std::string("biases on some of the q, k and v projections only");
    if (scaled)
      return std::string("embedding, residual or logit multipliers");
    if (shape.attentionScale)
      return std::string("an attention scale other than 1/sqrt(head_dim)");
    return std::nullopt;
  }
  llvm_unreachable("unknown layout");
}

/// The layouts to try for a base architecture, best first: the one of the
/// base's family, else Mixtral (the most widely supported) unless a shared
/// expert needs Qwen2-MoE.
static SmallVector<Layout> candidateLayouts(StringRef baseArchitecture,
                                            const UniformShape &shape) {
  if (baseArchitecture == "GraniteForCausalLM")
    return {Layout::GraniteMoe};
  if (baseArchitecture == "Qwen2ForCausalLM" || shape.hasShared)
    return {Layout::Qwen2Moe};
  return {Layout::Mixtral, Layout::Qwen2Moe};
}

//===----------------------------------------------------------------------===//
// The tensors of the export
//===----------------------------------------------------------------------===//

namespace {
/// One contiguous piece of an exported tensor.
struct WeightPart {
  /// The weight; null for zeros.
  Value weight;
  /// The slice of a stacked `[E, ...]` weight, if any.
  std::optional<int64_t> expert;
  /// Factor applied to every value.
  double scale = 1.0;
  uint64_t numElements = 0;
};

/// A tensor of the export: its parts concatenated along the leading
/// dimension (one part but for GraniteMoE's fused expert projections).
struct PlannedTensor {
  std::string name;
  SmallVector<int64_t, 4> shape;
  SmallVector<WeightPart, 2> parts;
};

/// A byte range of a checkpoint file holding the values of a weight part.
struct FileRange {
  std::string path;
  uint64_t offset = 0;
  DType dtype = DType::F32;
};

class TensorPlanner {
public:
  void add(std::string name, Value weight,
           std::optional<int64_t> expert = std::nullopt, double scale = 1.0) {
    PlannedTensor tensor{std::move(name), shapeOf(weight, expert), {}};
    tensor.parts.push_back({weight, expert, scale, count(tensor.shape)});
    tensors.push_back(std::move(tensor));
  }
  void addZeros(std::string name, ArrayRef<int64_t> shape) {
    PlannedTensor tensor{std::move(name), {shape.begin(), shape.end()}, {}};
    tensor.parts.push_back({Value(), std::nullopt, 1.0, count(shape)});
    tensors.push_back(std::move(tensor));
  }
  /// A tensor of `parts` (weight, expert) stacked along a new leading
  /// dimension of `groups` entries.
  void
  addConcatenation(std::string name, int64_t groups,
                   ArrayRef<std::pair<Value, std::optional<int64_t>>> parts) {
    PlannedTensor tensor{std::move(name), {groups}, {}};
    int64_t rows = 0;
    for (auto [weight, expert] : parts) {
      SmallVector<int64_t, 4> shape = shapeOf(weight, expert);
      rows += shape.front();
      tensor.parts.push_back({weight, expert, 1.0, count(shape)});
      if (tensor.shape.size() == 1)
        tensor.shape.append(shape.begin(), shape.end());
    }
    tensor.shape[1] = rows / groups;
    tensors.push_back(std::move(tensor));
  }

  std::vector<PlannedTensor> tensors;

private:
  static SmallVector<int64_t, 4> shapeOf(Value weight,
                                         std::optional<int64_t> expert) {
    ArrayRef<int64_t> shape =
        cast<RankedTensorType>(weight.getType()).getShape();
    if (expert)
      shape = shape.drop_front();
    return {shape.begin(), shape.end()};
  }
  static uint64_t count(ArrayRef<int64_t> shape) {
    uint64_t elements = 1;
    for (int64_t dim : shape)
      elements *= dim;
    return elements;
  }
};
} // namespace

static std::string layerPrefix(int64_t layer) {
  return "model.layers." + std::to_string(layer) + ".";
}

/// Plans every tensor of the checkpoint in model order.
static std::vector<PlannedTensor>
planTensors(Layout layout, const Decoder &decoder, const UniformShape &shape) {
  TensorPlanner plan;
  int64_t experts = shape.numExperts, hidden = shape.hidden;
  plan.add("model.embed_tokens.weight", decoder.embeddingTable);
  for (const DecoderLayer &layer : decoder.layers) {
    std::string prefix = layerPrefix(layer.index);
    std::string attention = prefix + "self_attn.";
    plan.add(prefix + "input_layernorm.weight", layer.inputNorm);
    for (auto [name, weight, bias] :
         {std::tuple{"q_proj", layer.query, layer.queryBias},
          {"k_proj", layer.key, layer.keyBias},
          {"v_proj", layer.value, layer.valueBias}}) {
      plan.add(attention + name + ".weight", weight);
      int64_t outputs = cast<RankedTensorType>(weight.getType()).getShape()[0];
      if (bias)
        plan.add(attention + name + ".bias", bias);
      else if (layout == Layout::Qwen2Moe)
        plan.addZeros(attention + name + ".bias", {outputs});
    }
    plan.add(attention + "o_proj.weight", layer.output);
    if (layer.outputBias)
      plan.add(attention + "o_proj.bias", layer.outputBias);
    plan.add(prefix + "post_attention_layernorm.weight",
             layer.postAttentionNorm);

    // The experts of the layer as (weight, expert) pairs: the routed ones,
    // or copies of the dense FFN where the layout has no dense layers.
    using Slice = std::pair<Value, std::optional<int64_t>>;
    SmallVector<Slice> gates, ups, downs;
    Value router;
    if (layer.routed) {
      router = layer.routed->router;
      for (int64_t e = 0; e < experts; ++e) {
        gates.push_back({layer.routed->gate, e});
        ups.push_back({layer.routed->up, e});
        downs.push_back({layer.routed->down, e});
      }
    } else if (layout != Layout::Qwen2Moe) {
      gates.assign(experts, {layer.dense->gate, std::nullopt});
      ups.assign(experts, {layer.dense->up, std::nullopt});
      downs.assign(experts, {layer.dense->down, std::nullopt});
    }
    auto addRouter = [&](const std::string &name) {
      if (router)
        plan.add(name, router);
      else
        plan.addZeros(name, {experts, hidden});
    };

    switch (layout) {
    case Layout::Mixtral: {
      std::string moe = prefix + "block_sparse_moe.";
      addRouter(moe + "gate.weight");
      for (int64_t e = 0; e < experts; ++e) {
        std::string expert = moe + "experts." + std::to_string(e) + ".";
        plan.add(expert + "w1.weight", gates[e].first, gates[e].second);
        plan.add(expert + "w2.weight", downs[e].first, downs[e].second);
        plan.add(expert + "w3.weight", ups[e].first, ups[e].second);
      }
      break;
    }
    case Layout::Qwen2Moe: {
      std::string mlp = prefix + "mlp.";
      if (layer.dense) {
        plan.add(mlp + "gate_proj.weight", layer.dense->gate);
        plan.add(mlp + "up_proj.weight", layer.dense->up);
        plan.add(mlp + "down_proj.weight", layer.dense->down);
        break;
      }
      addRouter(mlp + "gate.weight");
      for (int64_t e = 0; e < experts; ++e) {
        std::string expert = mlp + "experts." + std::to_string(e) + ".";
        plan.add(expert + "gate_proj.weight", gates[e].first, gates[e].second);
        plan.add(expert + "up_proj.weight", ups[e].first, ups[e].second);
        plan.add(expert + "down_proj.weight", downs[e].first, downs[e].second);
      }
      const RoutedExperts &routed = *layer.routed;
      std::string shared = mlp + "shared_expert.";
      if (routed.sharedUp) {
        // An ungated expert is gated by sigmoid(0) = 1/2 here: double it.
        double downScale = routed.sharedExpertGate ? 1.0 : 2.0;
        plan.add(shared + "gate_proj.weight", routed.sharedGate);
        plan.add(shared + "up_proj.weight", routed.sharedUp);
        plan.add(shared + "down_proj.weight", routed.sharedDown, std::nullopt,
                 downScale);
      } else {
        plan.addZeros(shared + "gate_proj.weight", {1, hidden});
        plan.addZeros(shared + "up_proj.weight", {1, hidden});
        plan.addZeros(shared + "down_proj.weight", {hidden, 1});
      }
      if (routed.sharedExpertGate)
        plan.add(mlp + "shared_expert_gate.weight", routed.sharedExpertGate);
      else
        plan.addZeros(mlp + "shared_expert_gate.weight", {1, hidden});
      break;
    }
    case Layout::GraniteMoe: {
      std::string moe = prefix + "block_sparse_moe.";
      SmallVector<Slice> gateUp;
      for (int64_t e = 0; e < experts; ++e) {
        gateUp.push_back(gates[e]);
        gateUp.push_back(ups[e]);
      }
      plan.addConcatenation(moe + "input_linear.weight", experts, gateUp);
      plan.addConcatenation(moe + "output_linear.weight", experts, downs);
      addRouter(moe + "router.layer.weight");
      break;
    }
    }
  }
  plan.add("model.norm.weight", decoder.finalNorm);
  if (!decoder.tiedEmbeddings())
    plan.add("lm_head.weight", decoder.head);
  return std::move(plan.tensors);
}

//===----------------------------------------------------------------------===//
// Streaming the values
//===----------------------------------------------------------------------===//

namespace {
/// Turns planned tensors into writer sources: kernel copies where the bytes
/// exist in a source file in the output dtype, bounded-memory producers
/// otherwise.
class TensorStreamer {
public:
  TensorStreamer(ModuleOp module, DType dtype)
      : module(module), headers(module), dtype(dtype) {}

  llvm::Expected<weights::TensorSource> source(const PlannedTensor &tensor);

private:
  llvm::Expected<std::optional<FileRange>>
  locate(Value weight, std::optional<int64_t> expert);
  llvm::Error writePart(const WeightPart &part, llvm::raw_ostream &out);
  llvm::Error writeFromFile(const FileRange &range, const WeightPart &part,
                            llvm::raw_ostream &out);
  void writeFloats(const float *values, size_t count, double scale,
                   llvm::raw_ostream &out);

  ModuleOp module;
  /// Opens checkpoints for their headers; never evaluates (values would
  /// stay cached).
  WeightEvaluator headers;
  DType dtype;
};
} // namespace

/// Elements converted per step: bounds the buffers of every producer.
static constexpr size_t kChunkElements = 1 << 20;

llvm::Expected<std::optional<FileRange>>
TensorStreamer::locate(Value weight, std::optional<int64_t> expert) {
  if (expert)
    if (auto stack = weight.getDefiningOp<StackOp>())
      return locate(stack.getInputs()[*expert], std::nullopt);

  // A block of whole rows of a matrix is contiguous (Phi-3's fused q/k/v).
  uint64_t elementOffset = 0;
  Value stored = weight;
  if (auto slice = weight.getDefiningOp<tensor::ExtractSliceOp>()) {
    auto sourceType = slice.getSourceType();
    ArrayRef<int64_t> offsets = slice.getStaticOffsets();
    ArrayRef<int64_t> sizes = slice.getStaticSizes();
    if (expert || sourceType.getRank() != 2 || !slice.getOffsets().empty() ||
        !slice.getSizes().empty() || !slice.getStrides().empty() ||
        !llvm::all_of(slice.getStaticStrides(),
                      [](int64_t stride) { return stride == 1; }) ||
        offsets[1] != 0 || sizes[1] != sourceType.getDimSize(1))
      return std::nullopt;
    elementOffset = uint64_t(offsets[0]) * sizes[1];
    stored = slice.getSource();
  }
  auto param = stored.getDefiningOp<ParamOp>();
  if (!param)
    return std::nullopt;

  StoredParam tensor;
  MOE_ASSIGN_OR_RETURN(tensor, headers.locate(param));
  elementOffset += tensor.elementOffset;
  if (expert)
    elementOffset +=
        uint64_t(*expert) * (tensor.elements / param.getType().getDimSize(0));
  return FileRange{tensor.file.str(),
                   tensor.checkpoint->fileOf(param.getKey())->dataOffset() +
                       tensor.info->begin +
                       elementOffset * weights::dtypeSize(tensor.info->dtype),
                   tensor.info->dtype};
}

void TensorStreamer::writeFloats(const float *values, size_t count,
                                 double scale, llvm::raw_ostream &out) {
  std::vector<float> scaled;
  std::vector<uint8_t> bytes;
  for (size_t done = 0; done < count; done += kChunkElements) {
    size_t chunk = std::min(kChunkElements, count - done);
    const float *input = values + done;
    if (scale != 1.0) {
      scaled.assign(input, input + chunk);
      for (float &value : scaled)
        value = float(value * scale);
      input = scaled.data();
    }
    bytes.resize(chunk * weights::dtypeSize(dtype));
    weights::convertFromF32(dtype, input, bytes.data(), chunk);
    out.write(reinterpret_cast<const char *>(bytes.data()), bytes.size());
  }
}

llvm::Error TensorStreamer::writeFromFile(const FileRange &range,
                                          const WeightPart &part,
                                          llvm::raw_ostream &out) {
  // Read with pread rather than through a mapping: mapped pages would count
  // towards the resident set until the whole file is unmapped.
  llvm::Expected<llvm::sys::fs::file_t> file =
      llvm::sys::fs::openNativeFileForRead(range.path);
  if (!file)
    return makeError(range.path + ": " + llvm::toString(file.takeError()));
  llvm::scope_exit closeFile([&] { llvm::sys::fs::closeFile(*file); });
  unsigned sourceSize = weights::dtypeSize(range.dtype);
  std::vector<char> raw;
  std::vector<float> values;
  for (uint64_t done = 0; done < part.numElements; done += kChunkElements) {
    size_t chunk = std::min<uint64_t>(kChunkElements, part.numElements - done);
    raw.resize(chunk * sourceSize);
    uint64_t offset = range.offset + done * sourceSize;
    for (size_t filled = 0; filled < raw.size();) {
      llvm::Expected<size_t> count = llvm::sys::fs::readNativeFileSlice(
          *file, llvm::MutableArrayRef<char>(raw).drop_front(filled),
          offset + filled);
      if (!count)
        return makeError(range.path +
                         ": cannot read: " + llvm::toString(count.takeError()));
      if (*count == 0)
        return makeError(range.path + ": file ended early (changed while "
                                      "exporting?)");
      filled += *count;
    }
    if (range.dtype == dtype && part.scale == 1.0) {
      out.write(raw.data(), raw.size());
      continue;
    }
    values.resize(chunk);
    weights::convertToF32(range.dtype,
                          reinterpret_cast<const uint8_t *>(raw.data()),
                          values.data(), chunk);
    writeFloats(values.data(), chunk, part.scale, out);
  }
  return llvm::Error::success();
}

llvm::Error TensorStreamer::writePart(const WeightPart &part,
                                      llvm::raw_ostream &out) {
  if (!part.weight) {
    std::vector<char> zeros(
        std::min<uint64_t>(part.numElements, kChunkElements) *
        weights::dtypeSize(dtype));
    for (uint64_t done = 0; done < part.numElements; done += kChunkElements)
      out.write(zeros.data(),
                std::min<uint64_t>(kChunkElements, part.numElements - done) *
                    weights::dtypeSize(dtype));
    return llvm::Error::success();
  }
  std::optional<FileRange> range;
  MOE_ASSIGN_OR_RETURN(range, locate(part.weight, part.expert));
  if (range)
    return writeFromFile(*range, part, out);
  // A computed weight. A fresh evaluator per weight frees its inputs and
  // unmaps the checkpoints it read as soon as the weight is written.
  WeightEvaluator evaluator(module);
  std::shared_ptr<const HostTensor> value;
  MOE_ASSIGN_OR_RETURN(value, evaluator.evaluate(part.weight));
  const float *data = value->data.data();
  if (part.expert)
    data += *part.expert * part.numElements;
  writeFloats(data, part.numElements, part.scale, out);
  return llvm::Error::success();
}

llvm::Expected<weights::TensorSource>
TensorStreamer::source(const PlannedTensor &tensor) {
  weights::TensorSource source;
  source.name = tensor.name;
  source.dtype = dtype;
  source.shape = tensor.shape;
  if (tensor.parts.size() == 1 && tensor.parts.front().weight &&
      tensor.parts.front().scale == 1.0) {
    std::optional<FileRange> range;
    MOE_ASSIGN_OR_RETURN(range, locate(tensor.parts.front().weight,
                                       tensor.parts.front().expert));
    if (range && range->dtype == dtype) {
      source.file = range->path;
      source.fileOffset = range->offset;
      return source;
    }
  }
  source.produce = [this, &tensor](llvm::raw_ostream &out) -> llvm::Error {
    for (const WeightPart &part : tensor.parts)
      MOE_RETURN_IF_ERROR(writePart(part, out));
    return llvm::Error::success();
  };
  return source;
}

//===----------------------------------------------------------------------===//
// config.json
//===----------------------------------------------------------------------===//

static StringRef hfActivationName(Activation activation) {
  switch (activation) {
  case Activation::silu:
    return "silu";
  case Activation::gelu:
    return "gelu";
  case Activation::gelu_tanh:
    return "gelu_pytorch_tanh";
  case Activation::relu:
    return "relu";
  case Activation::identity:
    break;
  }
  llvm_unreachable("refused before");
}

static StringRef torchDTypeName(DType dtype) {
  switch (dtype) {
  case DType::F64:
    return "float64";
  case DType::F32:
    return "float32";
  case DType::F16:
    return "float16";
  case DType::BF16:
    return "bfloat16";
  default:
    llvm_unreachable("not an export dtype");
  }
}

static llvm::json::Object buildConfig(Layout layout, const Decoder &decoder,
                                      const UniformShape &shape,
                                      const DecoderConfig &base, DType dtype) {
  llvm::json::Object config;
  // Tokens, positions and the rotary embedding as the base declares them,
  // so that transformers builds the base's rotary embedding.
  for (StringRef key :
       {"bos_token_id", "eos_token_id", "pad_token_id",
        "max_position_embeddings", "initializer_range", "rope_parameters",
        "rope_theta", "rope_scaling", "original_max_position_embeddings"})
    if (const llvm::json::Value *value = base.raw.get(key))
      config[key] = *value;

  config["architectures"] = llvm::json::Array{architectureOf(layout)};
  config["model_type"] = modelTypeOf(layout);
  config["dtype"] = torchDTypeName(dtype);
  config["vocab_size"] = shape.vocab;
  config["hidden_size"] = shape.hidden;
  config["num_hidden_layers"] = int64_t(decoder.layers.size());
  config["num_attention_heads"] = shape.heads;
  config["num_key_value_heads"] = shape.kvHeads;
  config["head_dim"] = shape.headDim;
  config["hidden_act"] = hfActivationName(shape.activation);
  config["rms_norm_eps"] = shape.normEpsilon;
  config["tie_word_embeddings"] = decoder.tiedEmbeddings();
  config["attention_dropout"] = 0.0;
  config["use_cache"] = true;
  config["num_experts_per_tok"] = shape.topK;
  config["output_router_logits"] = false;

  std::optional<int64_t> window;
  for (const std::optional<int64_t> &layerWindow : shape.windows)
    if (layerWindow)
      window = layerWindow;

  switch (layout) {
  case Layout::Mixtral:
    config["num_local_experts"] = shape.numExperts;
    config["intermediate_size"] = shape.expertIntermediate;
    config["router_jitter_noise"] = 0.0;
    config["sliding_window"] =
        window ? llvm::json::Value(*window) : llvm::json::Value(nullptr);
    break;
  case Layout::Qwen2Moe: {
    config["num_experts"] = shape.numExperts;
    config["moe_intermediate_size"] = shape.expertIntermediate;
    config["intermediate_size"] =
        shape.denseIntermediate.value_or(shape.expertIntermediate);
    config["shared_expert_intermediate_size"] =
        shape.hasShared ? shape.sharedIntermediate : 1;
    config["norm_topk_prob"] = shape.weightsSumToOne;
    config["decoder_sparse_step"] = 1;
    llvm::json::Array dense;
    for (int64_t layer : shape.denseLayers)
      dense.push_back(layer);
    config["mlp_only_layers"] = std::move(dense);
    config["qkv_bias"] = true;
    config["use_sliding_window"] = window.has_value();
    config["sliding_window"] =
        window ? llvm::json::Value(*window) : llvm::json::Value(nullptr);
    config["max_window_layers"] = int64_t(decoder.layers.size());
    llvm::json::Array types;
    for (const std::optional<int64_t> &layerWindow : shape.windows)
      types.push_back(layerWindow ? "sliding_attention" : "full_attention");
    config["layer_types"] = std::move(types);
    break;
  }
  case Layout::GraniteMoe:
    config["num_local_experts"] = shape.numExperts;
    config["intermediate_size"] = shape.expertIntermediate;
    config["attention_bias"] = shape.qkvBias;
    config["embedding_multiplier"] = decoder.embeddingScale;
    config["residual_multiplier"] = shape.branchScale;
    config["logits_scaling"] = 1.0 / decoder.logitsScale;
    config["attention_multiplier"] =
        shape.attentionScale.value_or(1.0 / std::sqrt(double(shape.headDim)));
    break;
  }
  return config;
}

/// A float as Python's repr writes it: the shortest digits that read back
/// as the same double, positional for exponents in [-4, 16), with ".0" on
/// whole numbers. transformers' strict config fields refuse `0` where they
/// expect a float.
static std::string formatPythonFloat(double value) {
  if (!std::isfinite(value))
    return std::isnan(value) ? "NaN" : value > 0 ? "Infinity" : "-Infinity";
  char text[40];
  int digits = 1;
  for (; digits < 17; ++digits) {
    std::snprintf(text, sizeof(text), "%.*e", digits - 1, value);
    if (std::strtod(text, nullptr) == value)
      break;
  }
  std::snprintf(text, sizeof(text), "%.*e", digits - 1, value);
  int exponent = std::atoi(std::strchr(text, 'e') + 1);
  if (exponent < -4 || exponent >= 16) {
    std::snprintf(text, sizeof(text), "%.*g", digits, value);
    return text;
  }
  std::snprintf(text, sizeof(text), "%.*f", std::max(digits - 1 - exponent, 1),
                value);
  return text;
}

/// Whether a JSON number holds a double rather than an integer. The json
/// library tells them apart only through getAsUINT64, which refuses
/// doubles; a negative whole number is taken for an integer (token ids may
/// be -1, float fields are not negative whole numbers).
static bool isFloatNumber(const llvm::json::Value &value) {
  std::optional<int64_t> whole = value.getAsInteger();
  return !value.getAsUINT64() && !(whole && *whole < 0);
}

/// Writes `value` with sorted keys and Python-style floats.
static void writeJson(llvm::json::OStream &json,
                      const llvm::json::Value &value) {
  if (const llvm::json::Object *object = value.getAsObject()) {
    std::vector<StringRef> keys;
    for (const auto &entry : *object)
      keys.push_back(entry.first);
    llvm::sort(keys);
    json.object([&] {
      for (StringRef key : keys) {
        json.attributeBegin(key);
        writeJson(json, *object->get(key));
        json.attributeEnd();
      }
    });
  } else if (const llvm::json::Array *array = value.getAsArray()) {
    json.array([&] {
      for (const llvm::json::Value &element : *array)
        writeJson(json, element);
    });
  } else if (value.kind() == llvm::json::Value::Number &&
             isFloatNumber(value)) {
    json.rawValue(formatPythonFloat(*value.getAsNumber()));
  } else {
    json.value(value);
  }
}

/// Checks that the attention of the function is the base config's, whose
/// rotary embedding fields the export copies.
static LogicalResult checkRopeMatchesBase(Decoder &decoder,
                                          const DecoderConfig &base) {
  AttentionOp attention = decoder.layers.front().attention;
  RopeScalingAttr scaling = attention.getRopeScalingAttr();
  bool matches =
      attention.getRopeTheta().convertToDouble() == base.rope.theta &&
      bool(scaling) == base.rope.scaling.has_value() &&
      (!scaling || (scaling.getKind() == *base.rope.scaling &&
                    scaling.getFactor().convertToDouble() == base.rope.factor));
  if (matches)
    return success();
  return attention.emitError()
         << "cannot export @" << decoder.func.getSymName()
         << ": its rotary embedding is not the one of the base config "
         << base.path << ", whose rope fields the export copies";
}

//===----------------------------------------------------------------------===//
// The output directory
//===----------------------------------------------------------------------===//

/// The staging directory to remove if the process is interrupted (Ctrl-C):
/// one at a time, as interrupt handlers are process-wide.
static std::string interruptedStaging;

static void removeInterruptedStaging() {
  llvm::sys::fs::remove_directories(interruptedStaging);
  // LLVM leaves terminating to the interrupt function; 130 is the status
  // shells give an interrupted command.
  std::_Exit(130);
}

namespace {
/// A directory next to the destination that the export is written into and
/// renamed from. Removed with everything in it unless published, also when
/// the process is interrupted.
class StagingDirectory {
public:
  StagingDirectory() = default;
  StagingDirectory(const StagingDirectory &) = delete;
  StagingDirectory &operator=(const StagingDirectory &) = delete;
  ~StagingDirectory() {
    if (path.empty())
      return;
    llvm::sys::SetInterruptFunction(nullptr);
    if (!published)
      llvm::sys::fs::remove_directories(path);
  }

  llvm::Error create(StringRef destination);
  /// Renames the staging directory to the destination, replacing an
  /// existing directory there.
  llvm::Error publish();

  std::string path;

private:
  std::string destination;
  bool published = false;
};
} // namespace

/// `<parent of destination>/.<name>.<tag>-<random hex>`.
static std::string siblingName(StringRef destination, StringRef tag) {
  SmallString<256> path(llvm::sys::path::parent_path(destination));
  llvm::sys::path::append(
      path, "." + llvm::sys::path::filename(destination) + "." + tag + "-" +
                llvm::utohexstr(llvm::sys::Process::GetRandomNumber()));
  return path.str().str();
}

llvm::Error StagingDirectory::create(StringRef destinationPath) {
  destination = destinationPath.str();
  std::error_code ec;
  for (int attempt = 0; attempt < 128; ++attempt) {
    std::string candidate = siblingName(destination, "tmp");
    ec = llvm::sys::fs::create_directory(candidate, /*IgnoreExisting=*/false,
                                         llvm::sys::fs::perms::all_all);
    if (!ec) {
      path = candidate;
      interruptedStaging = path;
      llvm::sys::SetInterruptFunction(removeInterruptedStaging);
      return llvm::Error::success();
    }
    if (ec != std::errc::file_exists)
      break;
  }
  return makeError(destination +
                   ": cannot create a directory next to it: " + ec.message());
}

/// Refuses a destination that is a file, or a non-empty directory without
/// `force`.
static llvm::Error checkDestination(StringRef destination, bool force) {
  if (destination.empty())
    return makeError("--export-hf needs an output directory (-o DIR)");
  llvm::sys::fs::file_status status;
  if (llvm::sys::fs::status(destination, status))
    return llvm::Error::success();
  if (status.type() != llvm::sys::fs::file_type::directory_file)
    return makeError(destination + ": exists and is not a directory");
  std::error_code ec;
  llvm::sys::fs::directory_iterator it(destination, ec);
  if (ec)
    return makeError(destination + ": " + ec.message());
  if (it != llvm::sys::fs::directory_iterator() && !force)
    return makeError(destination +
                     ": directory is not empty (--force replaces it)");
  return llvm::Error::success();
}

/// Refuses to replace a directory that holds a checkpoint the export reads
/// (with --force, the export would delete it once written).
static llvm::Error checkNotASource(ModuleOp module, StringRef destination) {
  SmallString<256> target;
  if (llvm::sys::fs::real_path(destination, target))
    return llvm::Error::success();
  for (ScopeOp scope : module.getOps<ScopeOp>()) {
    SmallString<256> source;
    if (llvm::sys::fs::real_path(scope.getPath(), source))
      continue;
    if (source == target || StringRef(source).starts_with((target + "/").str()))
      return makeError(destination + ": holds the checkpoint of scope '" +
                       scope.getSymName() +
                       "', which the export reads; choose another directory");
  }
  return llvm::Error::success();
}

llvm::Error StagingDirectory::publish() {
  std::string previous;
  if (llvm::sys::fs::exists(destination)) {
    previous = siblingName(destination, "old");
    if (std::error_code ec = llvm::sys::fs::rename(destination, previous))
      return makeError(destination + ": cannot move aside: " + ec.message());
  }
  llvm::sys::SetInterruptFunction(nullptr);
  if (std::error_code ec = llvm::sys::fs::rename(path, destination)) {
    if (!previous.empty())
      llvm::sys::fs::rename(previous, destination);
    return makeError(destination +
                     ": cannot rename into place: " + ec.message());
  }
  published = true;
  if (!previous.empty())
    llvm::sys::fs::remove_directories(previous);
  return llvm::Error::success();
}

/// The files of the base's directory that describe generation and the
/// tokenizer, copied as they are.
static bool isCompanionFile(StringRef name) {
  return name.starts_with("tokenizer") ||
         llvm::is_contained({"generation_config.json",
                             "special_tokens_map.json", "added_tokens.json",
                             "vocab.json", "merges.txt", "chat_template.jinja",
                             "chat_template.json"},
                            name);
}

static llvm::Error copyCompanionFiles(StringRef baseDir, StringRef dest) {
  std::error_code ec;
  for (llvm::sys::fs::directory_iterator it(baseDir, ec), end; it != end;
       it.increment(ec)) {
    StringRef name = llvm::sys::path::filename(it->path());
    if (!isCompanionFile(name) ||
        it->type() == llvm::sys::fs::file_type::directory_file)
      continue;
    SmallString<256> target(dest);
    llvm::sys::path::append(target, name);
    if (std::error_code copyError =
            llvm::sys::fs::copy_file(it->path(), target))
      return makeError(it->path() + ": cannot copy: " + copyError.message());
  }
  if (ec)
    return makeError(baseDir + ": " + ec.message());
  return llvm::Error::success();
}

static llvm::Error writeTextFile(StringRef path, StringRef contents) {
  std::error_code ec;
  llvm::raw_fd_ostream out(path, ec);
  if (ec)
    return makeError(path + ": cannot create: " + ec.message());
  out << contents;
  out.close();
  if (out.has_error()) {
    std::error_code error = out.error();
    out.clear_error();
    return makeError(path + ": cannot write: " + error.message());
  }
  return llvm::Error::success();
}

//===----------------------------------------------------------------------===//
// Progress
//===----------------------------------------------------------------------===//

/// "1.23 GB".
static std::string formatBytes(double bytes) {
  static const char *const units[] = {"B", "kB", "MB", "GB", "TB"};
  int unit = 0;
  while (bytes >= 1000 && unit < 4) {
    bytes /= 1000;
    ++unit;
  }
  std::string text;
  llvm::raw_string_ostream os(text);
  os << llvm::format(unit ? "%.2f %s" : "%.0f %s", bytes, units[unit]);
  return text;
}

namespace {
/// A one-line progress bar with throughput, redrawn at most ten times a
/// second.
class ProgressBar {
public:
  void update(uint64_t done, uint64_t total) {
    auto now = std::chrono::steady_clock::now();
    if (done < total && now - lastDraw < std::chrono::milliseconds(100))
      return;
    lastDraw = now;
    double seconds = std::chrono::duration<double>(now - start).count();
    double fraction = total ? double(done) / double(total) : 1.0;
    constexpr int width = 30;
    int filled = int(fraction * width);
    llvm::errs() << "\r[" << std::string(filled, '=')
                 << std::string(width - filled, ' ') << "] "
                 << llvm::format("%3d%%", int(fraction * 100)) << "  "
                 << formatBytes(done) << " / " << formatBytes(total);
    if (seconds > 0)
      llvm::errs() << "  " << formatBytes(done / seconds) << "/s";
    llvm::errs() << "   ";
    if (done == total)
      llvm::errs() << "\n";
  }

private:
  std::chrono::steady_clock::time_point start =
      std::chrono::steady_clock::now();
  std::chrono::steady_clock::time_point lastDraw;
};
} // namespace

//===----------------------------------------------------------------------===//
// The export
//===----------------------------------------------------------------------===//

static FailureOr<func::FuncOp> findFunction(ModuleOp module, StringRef name) {
  if (!name.empty())
    return lookupModelFunction(module, name, "export");
  SmallVector<func::FuncOp> functions = getModelFunctions(module);
  if (functions.size() == 1)
    return functions.front();
  InFlightDiagnostic diag = mlir::emitError(module.getLoc())
                            << "--export-hf needs --export-func=<name>: the "
                               "module has "
                            << functions.size() << " model functions";
  if (!functions.empty()) {
    diag << " (";
    llvm::interleaveComma(functions, diag, [&](func::FuncOp func) {
      diag << "@" << func.getSymName();
    });
    diag << ")";
  }
  return failure();
}

static FailureOr<DType> exportDType(StringRef option, weights::Checkpoint &base,
                                    ModuleOp module) {
  std::optional<DType> chosen = llvm::StringSwitch<std::optional<DType>>(option)
                                    .Case("f32", DType::F32)
                                    .Case("bf16", DType::BF16)
                                    .Case("f16", DType::F16)
                                    .Default(std::nullopt);
  if (chosen)
    return *chosen;
  if (option != "auto")
    return mlir::emitError(module.getLoc())
           << "unknown --export-dtype '" << option
           << "' (auto, f32, bf16 or f16)";
  const weights::TensorInfo *embedding = base.find("model.embed_tokens.weight");
  if (!embedding)
    return mlir::emitError(module.getLoc())
           << base.path()
           << ": no tensor 'model.embed_tokens.weight' to take the dtype of "
              "(choose one with --export-dtype)";
  return embedding->dtype;
}

LogicalResult mlir::moe::exportHuggingFace(ModuleOp module,
                                           const HFExportOptions &options,
                                           llvm::raw_ostream &summary) {
  auto fail = [&](llvm::Error error) {
    mlir::emitError(module.getLoc()) << llvm::toString(std::move(error));
    return failure();
  };
  if (llvm::Error error = checkDestination(options.outputDir, options.force))
    return fail(std::move(error));
  if (llvm::Error error = checkNotASource(module, options.outputDir))
    return fail(std::move(error));

  FailureOr<func::FuncOp> func = findFunction(module, options.function);
  if (failed(func) || failed(refuseUnstructuredFeatures(*func)))
    return failure();
  FailureOr<Decoder> decoder = matchDecoder(*func);
  if (failed(decoder) || failed(refuseUnsupportedLayers(*decoder)))
    return failure();
  FailureOr<UniformShape> shape = uniformShape(*decoder);
  if (failed(shape))
    return failure();

  auto scopeRef =
      (*func)->getAttrOfType<FlatSymbolRefAttr>(MoeDialect::getScopeAttrName());
  auto baseScope =
      scopeRef ? module.lookupSymbol<ScopeOp>(scopeRef.getAttr()) : ScopeOp();
  if (!baseScope || baseScope.getFormat() != ScopeFormat::huggingface)
    return mlir::emitError(func->getLoc())
           << "the moe.scope of @" << (*func).getSymName()
           << " must name the Hugging Face checkpoint of its base model";
  SmallString<256> configPath(baseScope.getPath());
  llvm::sys::path::append(configPath, "config.json");
  llvm::Expected<DecoderConfig> baseConfig = readDecoderConfig(configPath);
  if (!baseConfig)
    return fail(baseConfig.takeError());
  if (failed(checkRopeMatchesBase(*decoder, *baseConfig)))
    return failure();

  // The first layout that computes exactly what the function computes.
  std::optional<Layout> layout;
  std::string reasons;
  for (Layout candidate : candidateLayouts(baseConfig->architecture, *shape)) {
    std::optional<std::string> reason = whyNot(candidate, *decoder, *shape);
    if (!reason) {
      layout = candidate;
      break;
    }
    reasons += (reasons.empty() ? "" : "; ") + architectureOf(candidate).str() +
               " cannot carry " + *reason;
  }
  if (!layout)
    return mlir::emitError(func->getLoc())
           << "cannot export @" << (*func).getSymName() << " (base "
           << baseConfig->architecture
           << ") as a Hugging Face checkpoint: " << reasons << "; "
           << kOtherExports;
  if (*layout != Layout::Qwen2Moe)
    for (DecoderLayer &layer : decoder->layers)
      if (layer.dense)
        layer.dense->op.emitWarning()
            << "layer " << layer.index
            << " is dense: " << architectureOf(*layout)
            << " has no dense layers, so it is "
            << "written as " << shape->numExperts
            << " identical experts under a zero router (exact; the "
               "checkpoint holds "
            << shape->numExperts - 1 << " extra copies of this FFN)";

  WeightEvaluator headers(module);
  llvm::Expected<weights::Checkpoint *> baseCheckpoint =
      headers.checkpoint(baseScope.getSymName());
  if (!baseCheckpoint)
    return fail(baseCheckpoint.takeError());
  FailureOr<DType> dtype = exportDType(options.dtype, **baseCheckpoint, module);
  if (failed(dtype))
    return failure();

  std::vector<PlannedTensor> planned = planTensors(*layout, *decoder, *shape);
  TensorStreamer streamer(module, *dtype);
  std::vector<weights::TensorSource> sources;
  uint64_t totalBytes = 0;
  for (const PlannedTensor &tensor : planned) {
    llvm::Expected<weights::TensorSource> source = streamer.source(tensor);
    if (!source)
      return fail(source.takeError());
    totalBytes += source->numBytes();
    sources.push_back(std::move(*source));
  }

  StagingDirectory staging;
  if (llvm::Error error = staging.create(options.outputDir))
    return fail(std::move(error));
  std::string config;
  llvm::raw_string_ostream configStream(config);
  {
    llvm::json::OStream json(configStream, /*IndentSize=*/2);
    writeJson(json, llvm::json::Value(buildConfig(*layout, *decoder, *shape,
                                                  *baseConfig, *dtype)));
  }
  config += "\n";
  SmallString<256> configFile(staging.path);
  llvm::sys::path::append(configFile, "config.json");
  if (llvm::Error error = writeTextFile(configFile, config))
    return fail(std::move(error));
  if (llvm::Error error = copyCompanionFiles(baseScope.getPath(), staging.path))
    return fail(std::move(error));

  weights::WriterOptions writer;
  writer.maxShardBytes = options.maxShardBytes;
  writer.metadata["format"] = "pt";
  ProgressBar progress;
  if (options.showProgress)
    writer.progress = [&](uint64_t done, uint64_t total) {
      progress.update(done, total);
    };
  size_t tensorCount = sources.size();
  if (llvm::Error error = weights::writeSafeTensorsCheckpoint(
          staging.path, std::move(sources), writer)) {
    // Name the files by where they were going, not by the staging directory.
    std::string message = llvm::toString(std::move(error));
    for (size_t at = message.find(staging.path); at != std::string::npos;
         at = message.find(staging.path, at))
      message.replace(at, staging.path.size(), options.outputDir);
    return mlir::emitError(module.getLoc()) << message;
  }
  if (llvm::Error error = staging.publish())
    return fail(std::move(error));

  uint64_t files = 0;
  std::error_code ec;
  for (llvm::sys::fs::directory_iterator it(options.outputDir, ec), end;
       !ec && it != end; it.increment(ec))
    files += StringRef(it->path()).ends_with(".safetensors");
  summary << "exported @" << (*func).getSymName() << " as "
          << architectureOf(*layout) << " to " << options.outputDir << ": "
          << shape->numExperts << " experts, " << shape->topK << " per token, "
          << decoder->layers.size() - shape->denseLayers.size() << " of "
          << decoder->layers.size() << " layers routed; " << tensorCount
          << " tensors, " << formatBytes(totalBytes) << " of "
          << weights::dtypeName(*dtype) << " in " << files
          << (files == 1 ? " file" : " files") << "\n";
  return success();
}

std::optional<uint64_t> mlir::moe::parseByteSize(StringRef text) {
  text = text.trim();
  size_t digits = 0;
  while (digits < text.size() &&
         (llvm::isDigit(text[digits]) || text[digits] == '.'))
    ++digits;
  double number;
  if (digits == 0 || text.take_front(digits).getAsDouble(number))
    return std::nullopt;
  std::optional<double> unit =
      llvm::StringSwitch<std::optional<double>>(text.drop_front(digits).trim())
          .CasesLower({"", "b"}, 1.0)
          .CaseLower("kb", 1e3)
          .CaseLower("mb", 1e6)
          .CaseLower("gb", 1e9)
          .CaseLower("tb", 1e12)
          .CaseLower("kib", 1024.0)
          .CaseLower("mib", 1024.0 * 1024)
          .CaseLower("gib", 1024.0 * 1024 * 1024)
          .CaseLower("tib", 1024.0 * 1024 * 1024 * 1024)
          .Default(std::nullopt);
  if (!unit || number * *unit < 1 || number * *unit > 1.8e19)
    return std::nullopt;
  return uint64_t(number * *unit);
}
