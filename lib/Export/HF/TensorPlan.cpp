//===- TensorPlan.cpp - The tensors of a Hugging Face MoE export ----------===//
//
// Tensors are written in the per-expert layout that transformers'
// save_pretrained writes and from_pretrained fuses on load. Weights that are
// plain tensors of a source checkpoint in the output dtype are copied
// between files by the kernel; conversions and computed weights (averaged
// stems, random routers) stream through bounded buffers.
//
//===----------------------------------------------------------------------===//

#include "TensorPlan.h"

#include "moe/Formats/HF/TensorNames.h"
#include "moe/Support/Errors.h"

using namespace mlir;
using namespace mlir::moe;
using namespace mlir::moe::hf_export;
using weights::DType;

namespace mlir::moe::hf_export {
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
} // namespace mlir::moe::hf_export

/// Plans every tensor of the checkpoint in model order.
static std::vector<PlannedTensor> planTensors(const LayoutChoice &choice,
                                              const Decoder &decoder) {
  Layout layout = choice.layout;
  const UniformShape &shape = choice.shape;
  TensorPlanner plan;
  int64_t experts = shape.numExperts, hidden = shape.hidden;
  plan.add(hf::weightKey(hf::kEmbedTokens), decoder.embeddingTable);
  for (const DecoderLayer &layer : decoder.layers) {
    std::string prefix = hf::layerPrefix(layer.index);
    plan.add(hf::weightKey(hf::inputNormModule(layer.index)), layer.inputNorm);
    for (auto [name, weight, bias] :
         {std::tuple{"q_proj", layer.query, layer.queryBias},
          {"k_proj", layer.key, layer.keyBias},
          {"v_proj", layer.value, layer.valueBias}}) {
      std::string module = hf::attentionModule(layer.index, name);
      plan.add(hf::weightKey(module), weight);
      int64_t outputs = cast<RankedTensorType>(weight.getType()).getShape()[0];
      if (bias)
        plan.add(hf::biasKey(module), bias);
      else if (layout == Layout::Qwen2Moe)
        plan.addZeros(hf::biasKey(module), {outputs});
    }
    std::string output = hf::attentionModule(layer.index, "o_proj");
    plan.add(hf::weightKey(output), layer.output);
    if (layer.outputBias)
      plan.add(hf::biasKey(output), layer.outputBias);
    plan.add(hf::weightKey(hf::postAttentionNormModule(layer.index)),
             layer.postAttentionNorm);

    ExpertSlices slices =
        expertSlices(layer, experts, /*copyDense=*/layout != Layout::Qwen2Moe);
    Value router = slices.router;
    using Slice = ExpertSlices::Slice;
    SmallVector<Slice> &gates = slices.gates, &ups = slices.ups,
                       &downs = slices.downs;
    auto addRouter = [&](const std::string &name) {
      if (router)
        plan.add(name, router);
      else
        plan.addZeros(name, {experts, hidden});
    };

    switch (layout) {
    case Layout::Mixtral: {
      std::string moe = prefix + "block_sparse_moe.";
      addRouter(hf::mixtralRouterKey(layer.index));
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
        plan.add(hf::weightKey(hf::mlpModule(layer.index, "gate_proj")),
                 layer.dense->gate);
        plan.add(hf::weightKey(hf::mlpModule(layer.index, "up_proj")),
                 layer.dense->up);
        plan.add(hf::weightKey(hf::mlpModule(layer.index, "down_proj")),
                 layer.dense->down);
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
        plan.add(hf::sharedExpertGateKey(layer.index), routed.sharedExpertGate);
      else
        plan.addZeros(hf::sharedExpertGateKey(layer.index), {1, hidden});
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
  plan.add(hf::weightKey(hf::kFinalNorm), decoder.finalNorm);
  if (!decoder.tiedEmbeddings())
    plan.add(hf::weightKey(hf::kLmHead), decoder.head);
  return std::move(plan.tensors);
}

//===----------------------------------------------------------------------===//
// Streaming the values
//===----------------------------------------------------------------------===//

/// Elements converted per step: bounds the buffers of every producer.
static constexpr size_t kChunkElements = 1 << 20;

/// The first element of a part within its weight.
static uint64_t firstElement(const WeightPart &part) {
  return part.expert ? uint64_t(*part.expert) * part.numElements : 0;
}

llvm::Error CheckpointTensors::writePart(const WeightPart &part,
                                         llvm::raw_ostream &out) {
  std::vector<float> values(
      std::min<uint64_t>(part.numElements, kChunkElements));
  std::vector<uint8_t> bytes(values.size() * weights::dtypeSize(dtype));
  for (uint64_t done = 0; done < part.numElements; done += kChunkElements) {
    size_t chunk = std::min<uint64_t>(kChunkElements, part.numElements - done);
    if (part.weight)
      MOE_RETURN_IF_ERROR(evaluator.read(part.weight, firstElement(part) + done,
                                         chunk, values.data()));
    else
      std::fill_n(values.begin(), chunk, 0.0f);
    if (part.scale != 1.0)
      for (size_t i = 0; i < chunk; ++i)
        values[i] = float(values[i] * part.scale);
    weights::convertFromF32(dtype, values.data(), bytes.data(), chunk);
    out.write(reinterpret_cast<const char *>(bytes.data()),
              chunk * weights::dtypeSize(dtype));
  }
  // Computed weights are not needed by the next tensor.
  evaluator.clearValues();
  return llvm::Error::success();
}

llvm::Expected<weights::TensorSource>
CheckpointTensors::source(const PlannedTensor &tensor) {
  weights::TensorSource source;
  source.name = tensor.name;
  source.dtype = dtype;
  source.shape = tensor.shape;
  const WeightPart &first = tensor.parts.front();
  if (tensor.parts.size() == 1 && first.weight && first.scale == 1.0) {
    std::optional<StoredRange> range;
    MOE_ASSIGN_OR_RETURN(range, evaluator.storedRange(first.weight,
                                                      firstElement(first),
                                                      first.numElements));
    if (range && range->dtype == dtype) {
      source.file = range->file;
      source.fileOffset = range->byteOffset;
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

CheckpointTensors::CheckpointTensors(ModuleOp module, DType dtype,
                                     const WeightSourceOptions &sources)
    : evaluator(module, sources), dtype(dtype) {}

CheckpointTensors::~CheckpointTensors() = default;

llvm::Expected<std::vector<weights::TensorSource>>
CheckpointTensors::plan(const LayoutChoice &choice, const Decoder &decoder) {
  planned = planTensors(choice, decoder);
  std::vector<weights::TensorSource> sources;
  for (const PlannedTensor &tensor : planned) {
    llvm::Expected<weights::TensorSource> source = this->source(tensor);
    if (!source)
      return source.takeError();
    sources.push_back(std::move(*source));
  }
  return sources;
}
