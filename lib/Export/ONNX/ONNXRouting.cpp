//===- ONNXRouting.cpp - Routers and routed experts in ONNX graphs --------===//
//
// Routers, top-k gating, and the routed forms: experts (portable rows
// gathered per expert and scattered back, gate-less experts as one wide FFN,
// ONNX Runtime's com.microsoft.MoE, or com.microsoft.QMoE with quantised
// weights), routed linear layers and mixtures of LoRA adapters.
//
//===----------------------------------------------------------------------===//

#include "ONNXTranslator.h"

#include "moe/Analysis/RoutedExperts.h"
#include "moe/Support/Errors.h"
#include "moe/Support/Format.h"

using namespace mlir;
using namespace mlir::moe;
using namespace mlir::moe::onnx_export;

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

LogicalResult Translator::lower(RouterOp op) {
  std::string name = nameOf(op);
  FailureOr<std::string> x = act(op, op.getInput());
  FailureOr<std::string> w =
      weight(op, op.getWeight(), name + ".router", WeightRole::Router);
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
  FailureOr<std::string> gateName = optionalWeight(
      op, gate, prefix + ".gate_proj.weight", WeightRole::Matrix);
  FailureOr<std::string> upName =
      weight(op, up, prefix + ".up_proj.weight", WeightRole::Matrix);
  FailureOr<std::string> downName =
      weight(op, down, prefix + ".down_proj.weight", WeightRole::Matrix);
  FailureOr<std::string> expertGateName = optionalWeight(
      op, expertGate, (name + ".shared_expert_gate").str(), WeightRole::Router);
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

std::string Translator::fusedBlocker(Value gate, Value up, Activation kind,
                                     Scoring scoring) {
  int64_t blockSize = options.quantBlockSize;
  int64_t inter = shapeOf(up)[1], hidden = shapeOf(up)[2];
  if (quantizedBits(WeightRole::Experts) &&
      (inter % blockSize || hidden % blockSize))
    return ("a hidden size (" + Twine(hidden) + ") or intermediate size (" +
            Twine(inter) + ") that --onnx-block-size=" + Twine(blockSize) +
            " does not divide (the operator quantises whole blocks)")
        .str();
  if (scoring == Scoring::sigmoid)
    return "sigmoid scoring (the operator applies softmax to the router "
           "logits)";
  if (gate && kind != Activation::silu)
    return ("gated " + stringifyActivation(kind) +
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
      weightAs(op, up, {experts * inter, hidden}, prefix + ".up_proj.all",
               WeightRole::Matrix);
  FailureOr<std::string> gateAll =
      gate ? weightAs(op, gate, {experts * inter, hidden},
                      prefix + ".gate_proj.all", WeightRole::Matrix)
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
             : weight(op, up, prefix + ".fc1", WeightRole::Experts);
    FailureOr<std::string> fc2 =
        weight(op, down, prefix + ".fc2", WeightRole::Experts);
    if (failed(fc1) || failed(fc2))
      return failure();
    StringRef type = gate ? StringRef("swiglu")
                     : kind == Activation::gelu_tanh
                         ? StringRef("gelu")
                         : stringifyActivation(kind);
    int64_t bits = quantizedBits(WeightRole::Experts);
    Node moe =
        bits ? g.add("QMoE",
                     {x, fusedLogits, *fc1, quantized[*fc1].scales, "", *fc2,
                      quantized[*fc2].scales},
                     (name + "/moe").str(), 1, kMicrosoftDomain)
                   .attr("expert_weight_bits", bits)
                   .attr("block_size", options.quantBlockSize)
                   // Our [E, N, K] row-major blocks, not a provider's layout.
                   .attr("weights_prepacked", int64_t(0))
             : g.add("MoE", {x, fusedLogits, *fc1, "", *fc2},
                     (name + "/moe").str(), 1, kMicrosoftDomain);
    moe.attr("k", k)
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
            gate ? expertSlice(op, gate, e, weightPrefix + ".gate_proj.weight",
                               WeightRole::Matrix)
                 : FailureOr<std::string>(std::string());
        FailureOr<std::string> upName = expertSlice(
            op, up, e, weightPrefix + ".up_proj.weight", WeightRole::Matrix);
        FailureOr<std::string> downName =
            expertSlice(op, down, e, weightPrefix + ".down_proj.weight",
                        WeightRole::Matrix);
        if (failed(gateName) || failed(upName) || failed(downName))
          return failure();
        return ffn(expertName, xe, *gateName, *upName, *downName, kind);
      });
}

LogicalResult Translator::lowerRoutedExperts(Operation *op) {
  RoutedExperts experts = *getRoutedExperts(op);
  bool fusedOp = isa<FusedMoeOp>(op);
  // The gating of a moe.experts is translated on its own; a moe.fused_moe
  // samples its noise here.
  if (fusedOp && failed(refuseNoise(op, experts.noiseStd)))
    return failure();
  std::string name = nameOf(op);
  FailureOr<std::string> x = act(op, op->getOperand(0));
  if (failed(x))
    return failure();
  FailureOr<std::string> shared = sharedExpert(
      op, name, *x, experts.sharedGate, experts.sharedUp, experts.sharedDown,
      experts.sharedExpertGate, experts.activation);
  if (failed(shared))
    return failure();
  if (experts.gateless()) {
    FailureOr<std::string> out =
        denseExperts(op, name, *x, experts.gate, experts.up, experts.down,
                     experts.activation, *shared);
    if (failed(out))
      return failure();
    bind(op->getResult(0), *out);
    return success();
  }

  // The router logits: a moe.fused_moe computes them, a moe.experts reads
  // those of its moe.topk_gating.
  std::string logits;
  if (fusedOp) {
    FailureOr<std::string> router =
        weight(op, experts.router, name + ".router", WeightRole::Router);
    FailureOr<std::string> bias =
        optionalWeight(op, experts.routerBias, name + ".router_bias");
    if (failed(router) || failed(bias))
      return failure();
    logits = gemm(name + "/router", *x, *router, *bias);
  }
  auto topK = dyn_cast_or_null<TopKGatingOp>(experts.gating);
  std::string blocker;
  if (encoding == OnnxMoeEncoding::Fused) {
    blocker = !fusedOp && !topK
                  ? std::string("routing that is not one moe.topk_gating")
                  : fusedBlocker(experts.gate, experts.up, experts.activation,
                                 experts.scoring);
    if (!blocker.empty())
      emitRemark(op->getLoc())
          << "exported in portable form: com.microsoft."
          << (quantizedBits(WeightRole::Experts) ? "QMoE" : "MoE")
          << " cannot express " << blocker;
  }
  std::optional<std::pair<std::string, std::string>> route;
  bool fused = encoding == OnnxMoeEncoding::Fused && blocker.empty();
  if (fused && !fusedOp) {
    FailureOr<std::string> gatingLogits = act(op, topK.getLogits());
    if (failed(gatingLogits))
      return failure();
    logits = *gatingLogits;
  } else if (!fused && fusedOp) {
    route = gating(name + "/gating", logits, experts.topK, experts.scoring,
                   experts.scoreBeforeTopK, experts.renormalize);
  } else if (!fused) {
    auto expertsOp = cast<ExpertsOp>(op);
    FailureOr<std::string> weights = act(op, expertsOp.getWeights());
    FailureOr<std::string> indices = act(op, expertsOp.getIndices());
    if (failed(weights) || failed(indices))
      return failure();
    route = {*weights, *indices};
  }
  // Softmax over the k best logits is the renormalised softmax.
  bool normalize = fused && (experts.renormalize || !experts.scoreBeforeTopK);
  FailureOr<std::string> out = routedExperts(
      op, name, *x, experts.gate, experts.up, experts.down, experts.activation,
      *shared, route, fused ? logits : "", experts.topK, normalize);
  if (failed(out))
    return failure();
  bind(op->getResult(0), *out);
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
        expertMean(op, weightValue, name + ".weight.mean", WeightRole::Matrix);
    FailureOr<std::string> b =
        biasValue
            ? expertMean(op, biasValue, name + ".bias.mean", WeightRole::Plain)
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
  FailureOr<std::string> result = routedRows(
      name, *x, *w, *idx, experts, out, "",
      [&](int64_t e, const std::string &xe,
          StringRef expertName) -> FailureOr<std::string> {
        std::string prefix = name + ".experts." + std::to_string(e);
        FailureOr<std::string> we = expertSlice(
            op, weightValue, e, prefix + ".weight", WeightRole::Matrix);
        FailureOr<std::string> be =
            biasValue ? expertSlice(op, biasValue, e, prefix + ".bias",
                                    WeightRole::Plain)
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
  FailureOr<std::string> w =
      weight(op, op.getWeight(), name + ".weight", WeightRole::Matrix);
  FailureOr<std::string> b = optionalWeight(op, op.getBias(), name + ".bias");
  FailureOr<std::string> router =
      weight(op, op.getRouter(), name + ".router", WeightRole::Router);
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
