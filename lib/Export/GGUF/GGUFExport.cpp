//===- GGUFExport.cpp - Export to llama.cpp GGUF models -------------------===//
//
// The export matches the function as a decoder, takes the Mixtral layout
// of the Hugging Face export (Layout.cpp: the same analysis of what one
// config can say), refuses what llama.cpp's `llama` architecture computes
// differently, and writes the tensors as llama.cpp's converter names and
// shapes them: dimensions innermost first, the experts of a layer stacked in
// one tensor per projection, the query and key rows interleaved per head for
// llama.cpp's rotary embedding. Values stream through the weight evaluator
// in bounded chunks, converted or quantised on the way.
//
//===----------------------------------------------------------------------===//

#include "moe/Export/GGUFExport.h"

#include "../HF/Layout.h"
#include "Tokenizer.h"

#include "moe/Analysis/ModelFunctions.h"
#include "moe/Formats/HF/HFConfig.h"
#include "moe/Formats/HF/TensorNames.h"
#include "moe/Support/ByteSize.h"
#include "moe/Support/Errors.h"
#include "moe/Support/Format.h"
#include "moe/Support/ProgressBar.h"
#include "moe/Weights/Checkpoint.h"
#include "moe/Weights/GGUFModel.h"
#include "moe/Weights/GGUFWriter.h"
#include "moe/Weights/WeightEvaluator.h"
#include "moe/Weights/WeightSources.h"

#include "llvm/Support/FileSystem.h"
#include "llvm/Support/raw_ostream.h"

#include <cmath>

using namespace mlir;
using namespace mlir::moe;
using namespace mlir::moe::hf_export;
using weights::GGMLType;
using weights::GGUFMetadata;
using weights::GGUFTensorSource;

static constexpr Layout kLlamaCppLayouts[] = {Layout::Mixtral};

static const ExportTarget kLlamaCppTarget = {
    "a llama.cpp GGUF model", "llama.cpp's Mixtral-style llama architecture",
    "the GGUF metadata", kLlamaCppLayouts,
    "the Hugging Face export (--export-hf), the ONNX export (--export-onnx) "
    "and the CPU runner (moe-run) can carry it"};

/// Refuses what the Mixtral layout carries but llama.cpp's `llama`
/// architecture computes differently.
static LogicalResult refuseLlamaCppDifferences(Decoder &decoder,
                                               const UniformShape &shape) {
  DecoderLayer &first = decoder.layers.front();
  auto refuse = [&](const Twine &feature) {
    return first.attention.emitError()
           << "cannot export @" << decoder.func.getSymName() << " as "
           << kLlamaCppTarget.what << ": " << feature
           << " has no counterpart in " << kLlamaCppTarget.architectures << "; "
           << kLlamaCppTarget.otherExports;
  };
  if (shape.activation != Activation::silu)
    return refuse("the " + stringifyActivation(shape.activation) +
                  " activation (llama.cpp's llama FFN is SiLU-gated)");
  if (llvm::any_of(shape.windows, [](auto window) { return bool(window); }))
    return refuse("sliding-window attention");
  if (RopeScalingAttr scaling = first.attention.getRopeScalingAttr())
    if (scaling.getKind() != RopeScalingKind::linear &&
        scaling.getKind() != RopeScalingKind::llama3)
      return refuse(stringifyRopeScalingKind(scaling.getKind()) +
                    " rotary embedding scaling");
  return success();
}

//===----------------------------------------------------------------------===//
// The tensors
//===----------------------------------------------------------------------===//

namespace {
/// One piece of a GGUF tensor: a weight, or the slice of one expert of a
/// stacked weight, or zeros.
struct TensorPart {
  /// Null for zeros.
  Value weight;
  std::optional<int64_t> expert;
  uint64_t rows = 0, rowLength = 0;
  /// Rows per head of a query or key projection whose rows are interleaved
  /// for llama.cpp's rotary embedding; 0 otherwise.
  uint64_t rotaryHeadSize = 0;
};

/// A tensor of the file: its parts stacked along the outermost dimension.
struct PlannedTensor {
  std::string name;
  GGMLType type;
  /// Innermost first.
  SmallVector<int64_t, 4> dims;
  SmallVector<TensorPart, 8> parts;
};

class TensorPlanner {
public:
  TensorPlanner(GGMLType matrixType) : matrixType(matrixType) {}

  /// Tensor `name` holding `weight`: vectors in float32, matrices in the
  /// export's type; `rotaryHeads` > 0 interleaves the rows of that many
  /// heads.
  void add(std::string name, Value weight, int64_t rotaryHeads = 0) {
    ArrayRef<int64_t> shape =
        cast<RankedTensorType>(weight.getType()).getShape();
    TensorPart part = partOf(weight, std::nullopt, shape);
    if (rotaryHeads)
      part.rotaryHeadSize = part.rows / uint64_t(rotaryHeads);
    push(std::move(name), shape.size() == 1 ? GGMLType::F32 : matrixType,
         SmallVector<int64_t, 4>(llvm::reverse(shape)), {part});
  }
  /// A router, in float32 as llama.cpp's converter keeps it; zeros when
  /// `router` is null (a dense layer written as identical experts).
  void addRouter(std::string name, Value router, int64_t experts,
                 int64_t hidden) {
    TensorPart part{router, std::nullopt, uint64_t(experts), uint64_t(hidden)};
    push(std::move(name), GGMLType::F32, {hidden, experts}, {part});
  }
  /// The experts' projections stacked: `slices` (weight, expert) pairs.
  void addStacked(std::string name,
                  ArrayRef<std::pair<Value, std::optional<int64_t>>> slices) {
    SmallVector<TensorPart, 8> parts;
    for (auto [weight, expert] : slices) {
      ArrayRef<int64_t> shape =
          cast<RankedTensorType>(weight.getType()).getShape();
      parts.push_back(
          partOf(weight, expert, expert ? shape.drop_front() : shape));
    }
    push(std::move(name), matrixType,
         {int64_t(parts.front().rowLength), int64_t(parts.front().rows),
          int64_t(parts.size())},
         parts);
  }

  std::vector<PlannedTensor> tensors;

private:
  static TensorPart partOf(Value weight, std::optional<int64_t> expert,
                           ArrayRef<int64_t> shape) {
    uint64_t rowLength = shape.back(), elements = 1;
    for (int64_t dim : shape)
      elements *= uint64_t(dim);
    return {weight, expert, elements / rowLength, rowLength};
  }
  void push(std::string name, GGMLType type, SmallVector<int64_t, 4> dims,
            ArrayRef<TensorPart> parts) {
    // Rows that are not whole Q8_0 blocks are stored in f16, as llama.cpp's
    // converter falls back.
    if (dims.front() % weights::ggmlBlockLayout(type).elements)
      type = GGMLType::F16;
    tensors.push_back({std::move(name), type, std::move(dims),
                       SmallVector<TensorPart, 8>(parts)});
  }

  GGMLType matrixType;
};
} // namespace

static std::string blockName(int64_t layer, StringRef tensor) {
  return ("blk." + Twine(layer) + "." + tensor + ".weight").str();
}

/// Plans every tensor of the file, in llama.cpp's converter's order.
static std::vector<PlannedTensor> planTensors(const UniformShape &shape,
                                              const Decoder &decoder,
                                              GGMLType matrixType) {
  TensorPlanner plan(matrixType);
  int64_t experts = shape.numExperts;
  plan.add("token_embd.weight", decoder.embeddingTable);
  for (const DecoderLayer &layer : decoder.layers) {
    int64_t index = layer.index;
    plan.add(blockName(index, "attn_norm"), layer.inputNorm);
    plan.add(blockName(index, "attn_q"), layer.query, shape.heads);
    plan.add(blockName(index, "attn_k"), layer.key, shape.kvHeads);
    plan.add(blockName(index, "attn_v"), layer.value);
    plan.add(blockName(index, "attn_output"), layer.output);
    plan.add(blockName(index, "ffn_norm"), layer.postAttentionNorm);

    ExpertSlices slices = expertSlices(layer, experts, /*copyDense=*/true);
    plan.addRouter(blockName(index, "ffn_gate_inp"), slices.router, experts,
                   shape.hidden);
    plan.addStacked(blockName(index, "ffn_gate_exps"), slices.gates);
    plan.addStacked(blockName(index, "ffn_down_exps"), slices.downs);
    plan.addStacked(blockName(index, "ffn_up_exps"), slices.ups);
  }
  plan.add("output_norm.weight", decoder.finalNorm);
  if (!decoder.tiedEmbeddings())
    plan.add("output.weight", decoder.head);
  return std::move(plan.tensors);
}

/// Elements converted per step: bounds the buffers of every producer.
static constexpr uint64_t kChunkElements = uint64_t(1) << 20;

/// Streams the parts of `tensor` in bounded chunks of whole rows (whole
/// heads where rows are interleaved), converted or quantised.
static llvm::Error writeTensor(WeightEvaluator &evaluator,
                               const PlannedTensor &tensor,
                               llvm::raw_ostream &out) {
  weights::GGMLBlockLayout layout = weights::ggmlBlockLayout(tensor.type);
  std::vector<float> values, rows;
  std::vector<uint8_t> bytes;
  for (const TensorPart &part : tensor.parts) {
    uint64_t rowsPerChunk =
        part.rotaryHeadSize
            ? part.rotaryHeadSize
            : std::max<uint64_t>(1, kChunkElements / part.rowLength);
    uint64_t partElements = part.rows * part.rowLength;
    uint64_t first = part.expert ? uint64_t(*part.expert) * partElements : 0;
    for (uint64_t row = 0; row < part.rows; row += rowsPerChunk) {
      uint64_t count = std::min(rowsPerChunk, part.rows - row);
      uint64_t elements = count * part.rowLength;
      values.resize(elements);
      if (part.weight)
        MOE_RETURN_IF_ERROR(evaluator.read(part.weight,
                                           first + row * part.rowLength,
                                           elements, values.data()));
      else
        std::fill(values.begin(), values.end(), 0.0f);
      if (part.rotaryHeadSize) {
        rows.resize(elements);
        for (uint64_t stored = 0; stored < count; ++stored) {
          uint64_t source =
              weights::llamaRotarySourceRow(stored, part.rotaryHeadSize);
          std::copy_n(values.begin() + source * part.rowLength, part.rowLength,
                      rows.begin() + stored * part.rowLength);
        }
        values.swap(rows);
      }
      bytes.resize(elements / layout.elements * layout.bytes);
      weights::quantizeBlocks(tensor.type, values.data(), bytes.data(),
                              elements / layout.elements);
      out.write(reinterpret_cast<const char *>(bytes.data()), bytes.size());
    }
  }
  // A computed weight serves every part (expert) of the tensor, and no
  // other tensor.
  evaluator.clearValues();
  return llvm::Error::success();
}

//===----------------------------------------------------------------------===//
// The metadata
//===----------------------------------------------------------------------===//

/// llama.cpp's general.file_type (enum llama_ftype) of the matrices' type.
static uint32_t fileTypeOf(GGMLType type) {
  switch (type) {
  case GGMLType::F32:
    return 0;
  case GGMLType::F16:
    return 1;
  case GGMLType::Q8_0:
    return 7;
  case GGMLType::BF16:
    return 32;
  default:
    llvm_unreachable("not an export type");
  }
}

/// The hyper-parameters of the `llama` architecture with experts.
static llvm::Error addModelMetadata(GGUFMetadata &metadata, Decoder &decoder,
                                    const UniformShape &shape,
                                    const DecoderConfig &base,
                                    GGMLType matrixType) {
  const llvm::json::Value *contextLength =
      base.raw.get("max_position_embeddings");
  if (!contextLength || !contextLength->getAsInteger())
    return makeError(base.path +
                     ": no integer 'max_position_embeddings' for the GGUF "
                     "context length");
  AttentionOp attention = decoder.layers.front().attention;
  metadata.addString("general.architecture", "llama");
  metadata.addString("general.name", decoder.func.getSymName());
  metadata.addUInt32("general.file_type", fileTypeOf(matrixType));
  if (matrixType == GGMLType::Q8_0)
    metadata.addUInt32("general.quantization_version", 2);
  metadata.addUInt32("llama.vocab_size", shape.vocab);
  metadata.addUInt32("llama.context_length", *contextLength->getAsInteger());
  metadata.addUInt32("llama.embedding_length", shape.hidden);
  metadata.addUInt32("llama.block_count", decoder.layers.size());
  metadata.addUInt32("llama.feed_forward_length", shape.expertIntermediate);
  metadata.addUInt32("llama.attention.head_count", shape.heads);
  metadata.addUInt32("llama.attention.head_count_kv", shape.kvHeads);
  metadata.addUInt32("llama.attention.key_length", shape.headDim);
  metadata.addUInt32("llama.attention.value_length", shape.headDim);
  metadata.addFloat32("llama.attention.layer_norm_rms_epsilon",
                      float(shape.normEpsilon));
  metadata.addUInt32("llama.rope.dimension_count", shape.headDim);
  metadata.addFloat32("llama.rope.freq_base",
                      float(attention.getRopeTheta().convertToDouble()));
  if (RopeScalingAttr scaling = attention.getRopeScalingAttr();
      scaling && scaling.getKind() == RopeScalingKind::linear) {
    metadata.addString("llama.rope.scaling.type", "linear");
    metadata.addFloat32("llama.rope.scaling.factor",
                        float(scaling.getFactor().convertToDouble()));
  }
  metadata.addUInt32("llama.expert_count", shape.numExperts);
  metadata.addUInt32("llama.expert_used_count", shape.topK);
  return llvm::Error::success();
}

/// llama3's rotary frequency factors, which llama.cpp divides the
/// frequencies by (`rope_freqs.weight`): base / scaled inverse frequencies.
static std::optional<std::vector<float>>
ropeFrequencyFactors(const Decoder &decoder, const UniformShape &shape) {
  AttentionOp attention = decoder.layers.front().attention;
  RopeScalingAttr scaling = attention.getRopeScalingAttr();
  if (!scaling || scaling.getKind() != RopeScalingKind::llama3)
    return std::nullopt;
  double theta = attention.getRopeTheta().convertToDouble();
  std::vector<double> inverse(shape.headDim / 2);
  for (size_t i = 0; i < inverse.size(); ++i)
    inverse[i] = 1.0 / std::pow(theta, double(2 * i) / double(shape.headDim));
  std::vector<double> scaled = inverse;
  scaling.scaleInverseFrequencies(scaled, shape.headDim, theta);
  std::vector<float> factors;
  for (size_t i = 0; i < inverse.size(); ++i)
    factors.push_back(float(inverse[i] / scaled[i]));
  return factors;
}

/// The base's tokenizer: the `tokenizer.*` entries of a GGUF base as they
/// are, or those converted from a Hugging Face base's tokenizer files.
static llvm::Error addTokenizerMetadata(GGUFMetadata &metadata,
                                        BaseCheckpoint base) {
  if (base.scope.getFormat() != ScopeFormat::gguf)
    return gguf_export::addHuggingFaceTokenizer(base.directory, metadata);
  std::unique_ptr<weights::GGUFFile> file;
  MOE_ASSIGN_OR_RETURN(file, weights::GGUFFile::open(base.directory));
  // In the file's order of keys, for a stable output.
  std::vector<std::pair<uint64_t, StringRef>> keys;
  for (const auto &entry : file->metadata())
    if (entry.getKey().starts_with("tokenizer."))
      keys.push_back({entry.getValue().fileOffset, entry.getKey()});
  llvm::sort(keys);
  if (keys.empty())
    return makeError(base.directory + ": no tokenizer.* metadata to carry "
                                      "over");
  for (auto [offset, key] : keys) {
    const weights::GGUFValue &value = *file->find(key);
    std::string encoded;
    MOE_ASSIGN_OR_RETURN(encoded, file->readEncodedValue(value));
    metadata.addEncoded(key, value.type, encoded);
  }
  return llvm::Error::success();
}

//===----------------------------------------------------------------------===//
// The export
//===----------------------------------------------------------------------===//

/// The type of the weight matrices: the option's, or the base's float
/// dtype (f16 for a GGUF base, whose weights may be quantised).
static llvm::Expected<GGMLType> matrixTypeOf(GGUFWeightType option,
                                             BaseCheckpoint base,
                                             WeightEvaluator &evaluator) {
  switch (option) {
  case GGUFWeightType::f32:
    return GGMLType::F32;
  case GGUFWeightType::f16:
    return GGMLType::F16;
  case GGUFWeightType::bf16:
    return GGMLType::BF16;
  case GGUFWeightType::q8_0:
    return GGMLType::Q8_0;
  case GGUFWeightType::automatic:
    break;
  }
  if (base.scope.getFormat() == ScopeFormat::gguf)
    return GGMLType::F16;
  weights::Checkpoint *checkpoint;
  MOE_ASSIGN_OR_RETURN(checkpoint,
                       evaluator.checkpoint(base.scope.getSymName()));
  const weights::TensorInfo *embedding =
      checkpoint->find(hf::weightKey(hf::kEmbedTokens));
  if (embedding && embedding->dtype == weights::DType::F32)
    return GGMLType::F32;
  if (embedding && embedding->dtype == weights::DType::BF16)
    return GGMLType::BF16;
  return GGMLType::F16;
}

/// Checks the output path before anything is read: a file to create, or to
/// replace with `force`, never a directory or a checkpoint the export reads.
static llvm::Error checkOutputFile(ModuleOp module, StringRef path, bool force,
                                   const WeightSourceOptions &sources) {
  if (path.empty() || path == "-")
    return makeError("--export-gguf needs an output file (-o FILE.gguf)");
  llvm::sys::fs::file_status status;
  if (!llvm::sys::fs::status(path, status, /*follow=*/false)) {
    if (status.type() == llvm::sys::fs::file_type::directory_file)
      return makeError(path + ": is a directory");
    if (!force)
      return makeError(path + ": exists (--force replaces it)");
  }
  return refuseReplacingSource(module, path, sources);
}

LogicalResult mlir::moe::exportGGUF(ModuleOp module,
                                    const GGUFExportOptions &options,
                                    llvm::raw_ostream &summary) {
  auto fail = [&](llvm::Error error) {
    mlir::emitError(module.getLoc()) << llvm::toString(std::move(error));
    return failure();
  };
  WeightSourceOptions weightSources;
  if (llvm::Error error = checkScopeBindings(module, weightSources))
    return fail(std::move(error));
  if (llvm::Error error = checkOutputFile(module, options.outputPath,
                                          options.force, weightSources))
    return fail(std::move(error));

  llvm::Expected<func::FuncOp> func =
      pickModelFunction(module, options.function, "--export-func");
  if (!func)
    return fail(func.takeError());
  if (failed(refuseUnstructuredFeatures(*func, kLlamaCppTarget)))
    return failure();
  FailureOr<Decoder> decoder = matchDecoder(*func);
  if (failed(decoder))
    return failure();
  llvm::Expected<BaseCheckpoint> base = baseCheckpointOf(*func, weightSources);
  if (!base)
    return fail(base.takeError());
  llvm::Expected<DecoderConfig> baseConfig =
      readCheckpointConfig(base->directory);
  if (!baseConfig)
    return fail(explainScopeError(base->scope, base->directory,
                                  baseConfig.takeError()));
  FailureOr<LayoutChoice> choice =
      chooseLayout(*decoder, *baseConfig, kLlamaCppTarget);
  if (failed(choice) ||
      failed(refuseLlamaCppDifferences(*decoder, choice->shape)))
    return failure();
  const UniformShape &shape = choice->shape;

  WeightEvaluator evaluator(module, weightSources);
  llvm::Expected<GGMLType> matrixType =
      matrixTypeOf(options.weightType, *base, evaluator);
  if (!matrixType)
    return fail(matrixType.takeError());
  GGUFMetadata metadata;
  if (llvm::Error error =
          addModelMetadata(metadata, *decoder, shape, *baseConfig, *matrixType))
    return fail(std::move(error));
  if (llvm::Error error = addTokenizerMetadata(metadata, *base))
    return fail(std::move(error));

  std::vector<PlannedTensor> planned =
      planTensors(shape, *decoder, *matrixType);
  std::vector<GGUFTensorSource> sources;
  std::optional<std::vector<float>> ropeFactors =
      ropeFrequencyFactors(*decoder, shape);
  if (ropeFactors)
    sources.push_back(
        {"rope_freqs.weight",
         GGMLType::F32,
         {int64_t(ropeFactors->size())},
         [&](llvm::raw_ostream &out) {
           out.write(reinterpret_cast<const char *>(ropeFactors->data()),
                     ropeFactors->size() * sizeof(float));
           return llvm::Error::success();
         }});
  uint64_t totalBytes = 0;
  for (const PlannedTensor &tensor : planned) {
    sources.push_back(
        {tensor.name, tensor.type, tensor.dims, [&](llvm::raw_ostream &out) {
           return writeTensor(evaluator, tensor, out);
         }});
    totalBytes += weights::ggmlTensorBytes(tensor.type, tensor.dims);
  }

  weights::GGUFWriterOptions writer;
  writer.replace = options.force;
  ProgressBar progress;
  if (options.showProgress)
    writer.progress = [&](uint64_t done, uint64_t total) {
      progress.update(done, total);
    };
  if (llvm::Error error = weights::writeGGUF(
          options.outputPath, std::move(metadata), sources, writer))
    return fail(std::move(error));

  summary << "exported @" << (*func).getSymName()
          << " as a llama.cpp GGUF model (llama, Mixtral-style) to "
          << options.outputPath << ": " << shape.numExperts << " experts, "
          << shape.topK << " per token, "
          << decoder->layers.size() - shape.denseLayers.size() << " of "
          << decoder->layers.size() << " layers routed; " << sources.size()
          << " tensors, " << formatBytes(totalBytes) << ", matrices in "
          << weights::ggmlTypeName(uint32_t(*matrixType)) << "\n";
  return success();
}
