//===- Layout.cpp - Which Hugging Face MoE layout a mix is ----------------===//
//
// What decides the layout:
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
//   a stem without biases zero biases (TensorPlan.cpp).
//
//===----------------------------------------------------------------------===//

#include "Layout.h"

#include "moe/Support/Format.h"

#include "llvm/ADT/StringExtras.h"
#include "llvm/Support/raw_ostream.h"

#include <cmath>

using namespace mlir;
using namespace mlir::moe;
using namespace mlir::moe::hf_export;

StringRef hf_export::architectureOf(Layout layout) {
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

StringRef hf_export::modelTypeOf(Layout layout) {
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

const ExportTarget hf_export::kHuggingFaceTarget = {
    "a Hugging Face checkpoint",
    "MixtralForCausalLM, Qwen2MoeForCausalLM or GraniteMoeForCausalLM",
    "a Hugging Face config",
    {},
    "the ONNX export (--export-onnx) and the CPU runner (moe-run) can carry "
    "it"};

static LogicalResult refuse(Operation *op, func::FuncOp func,
                            const ExportTarget &target, const Twine &feature) {
  InFlightDiagnostic diag = op->emitError()
                            << "cannot export @" << func.getSymName() << " as "
                            << target.what << ": " << feature;
  if (std::optional<int64_t> layer = getLayerIndex(op))
    diag << " (layer " << *layer << ")";
  diag << " has no counterpart in " << target.architectures << "; "
       << target.otherExports;
  return failure();
}

/// Refuses operations that no decoder layout has, before the structure is
/// matched, so that the message names the feature rather than the shape.
LogicalResult
hf_export::refuseUnstructuredFeatures(func::FuncOp func,
                                      const ExportTarget &target) {
  WalkResult result = func.walk([&](Operation *op) {
    LogicalResult verdict = success();
    if (isa<MixtureOfLoraOp>(op))
      verdict = refuse(op, func, target,
                       "a mixture of LoRA adapters "
                       "(moe.mixture_of_lora, moe-mix-adapters)");
    else if (isa<LoraLinearOp>(op))
      verdict = refuse(op, func, target,
                       "a LoRA adapter on a linear layer (moe.lora_linear)");
    else if (isa<RoutedLinearOp>(op))
      verdict = refuse(
          op, func, target,
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
static LogicalResult refuseUnsupportedLayers(Decoder &decoder,
                                             const ExportTarget &target) {
  func::FuncOp func = decoder.func;
  for (DecoderLayer &layer : decoder.layers) {
    if (layer.attention.getRopeTheta().convertToDouble() == 0)
      return refuse(layer.attention, func, target,
                    "attention without a rotary embedding (rope_theta 0)");
    if (layer.dense) {
      if (!layer.dense->gate)
        return refuse(layer.dense->op, func, target,
                      "a dense FFN without a gate projection");
      if (layer.dense->op.getActivation() == Activation::identity)
        return refuse(layer.dense->op, func, target, "the identity activation");
      continue;
    }
    const RoutedExperts &routed = *layer.routed;
    Operation *op = routed.op;
    if (routed.scoring == Scoring::sigmoid)
      return refuse(op, func, target, "sigmoid scoring of the router");
    if (routed.noiseStd != 0)
      return refuse(op, func, target,
                    "noisy top-k gating (noise_std " +
                        formatNumber(routed.noiseStd) + ")");
    if (routed.routerBias)
      return refuse(op, func, target, "a router bias (router=base-init)");
    if (routed.router && routed.routerInput != op->getOperand(0))
      return refuse(op, func, target,
                    "a global router shared by the layers (global-router)");
    if (!routed.gate)
      return refuse(op, func, target, "experts without a gate projection");
    if (routed.sharedUp && !routed.sharedGate)
      return refuse(op, func, target,
                    "a shared expert without a gate projection");
    if (routed.activation == Activation::identity)
      return refuse(op, func, target, "the identity activation");
  }
  return success();
}

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
static FailureOr<UniformShape> uniformShape(Decoder &decoder,
                                            const ExportTarget &target) {
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
           << "cannot export @" << func.getSymName() << " as " << target.what
           << ": layers " << a.index << " and " << b.index << " differ in "
           << what << " (" << valueA << " vs " << valueB << "), which "
           << target.config << " holds once for all layers; "
           << target.otherExports;
  };
  auto compare = [&](const DecoderLayer &a, DecoderLayer &b, StringRef what,
                     auto valueA, auto valueB) -> LogicalResult {
    if (valueA == valueB)
      return success();
    return differ(a, b, what, Twine(valueA), Twine(valueB));
  };

  auto noRoutedLayer = [&] {
    return mlir::emitError(func.getLoc())
           << "cannot export @" << func.getSymName() << " as " << target.what
           << ": no layer is routed (mix it with moe-mix-experts first)";
  };
  // Embedding, final norm and head alone match as a decoder without
  // layers; what follows takes the first layer as the reference.
  if (decoder.layers.empty())
    return noRoutedLayer();
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
    return noRoutedLayer();
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

FailureOr<LayoutChoice> hf_export::chooseLayout(Decoder &decoder,
                                                const DecoderConfig &base,
                                                const ExportTarget &target) {
  if (failed(refuseUnsupportedLayers(decoder, target)))
    return failure();
  FailureOr<UniformShape> shape = uniformShape(decoder, target);
  if (failed(shape) || failed(checkRopeMatchesBase(decoder, base)))
    return failure();
  func::FuncOp func = decoder.func;
  std::optional<Layout> layout;
  std::string reasons;
  SmallVector<Layout> candidates(target.layouts);
  if (candidates.empty())
    candidates = candidateLayouts(base.architecture, *shape);
  for (Layout candidate : candidates) {
    std::optional<std::string> reason = whyNot(candidate, decoder, *shape);
    if (!reason) {
      layout = candidate;
      break;
    }
    reasons += (reasons.empty() ? "" : "; ") + architectureOf(candidate).str() +
               " cannot carry " + *reason;
  }
  if (!layout)
    return mlir::emitError(func.getLoc())
           << "cannot export @" << func.getSymName() << " (base "
           << base.architecture << ") as " << target.what << ": " << reasons
           << "; " << target.otherExports;
  if (*layout != Layout::Qwen2Moe)
    for (DecoderLayer &layer : decoder.layers)
      if (layer.dense)
        layer.dense->op.emitWarning()
            << "layer " << layer.index
            << " is dense: " << architectureOf(*layout)
            << " has no dense layers, so it is "
            << "written as " << shape->numExperts
            << " identical experts under a zero router (exact; the "
               "checkpoint holds "
            << shape->numExperts - 1 << " extra copies of this FFN)";
  return LayoutChoice{*layout, std::move(*shape)};
}

ExpertSlices hf_export::expertSlices(const DecoderLayer &layer,
                                     int64_t numExperts, bool copyDense) {
  ExpertSlices slices;
  if (layer.routed) {
    slices.router = layer.routed->router;
    for (int64_t e = 0; e < numExperts; ++e) {
      slices.gates.push_back({layer.routed->gate, e});
      slices.ups.push_back({layer.routed->up, e});
      slices.downs.push_back({layer.routed->down, e});
    }
  } else if (copyDense) {
    slices.gates.assign(numExperts, {layer.dense->gate, std::nullopt});
    slices.ups.assign(numExperts, {layer.dense->up, std::nullopt});
    slices.downs.assign(numExperts, {layer.dense->down, std::nullopt});
  }
  return slices;
}
