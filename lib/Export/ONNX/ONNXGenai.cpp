//===- ONNXGenai.cpp - onnxruntime-genai model folders --------------------===//
//
// A folder that onnxruntime-genai loads and generates with: the KV-cache
// graph (model.onnx and its data), genai_config.json describing its
// interface and the base model's token ids, and the base's tokenizer and
// generation files. The folder appears whole or not at all.
//
//===----------------------------------------------------------------------===//

#include "moe/Export/ONNXExport.h"

#include "ONNXModelFiles.h"

#include "moe/Analysis/ModelFunctions.h"
#include "moe/Dialect/MoeOps.h"
#include "moe/Formats/HF/CompanionFiles.h"
#include "moe/Formats/HF/ConfigWriter.h"
#include "moe/Formats/HF/HFConfig.h"
#include "moe/Support/Errors.h"
#include "moe/Weights/WeightSources.h"

#include "llvm/Support/FileSystem.h"
#include "llvm/Support/Path.h"

using namespace mlir;
using namespace mlir::moe;
using namespace mlir::moe::onnx_export;

static constexpr llvm::StringLiteral kModelFile = "model.onnx";
static constexpr llvm::StringLiteral kDataFile = "model.onnx.data";

namespace {
/// The attention shape genai_config.json declares: one for every layer.
struct AttentionShape {
  int64_t layers = 0, heads = 0, kvHeads = 0, headDim = 0;
};
} // namespace

static FailureOr<AttentionShape> attentionShape(func::FuncOp func) {
  AttentionShape shape;
  WalkResult walk = func.walk([&](AttentionOp op) {
    AttentionShape layer{0, int64_t(op.getNumHeads()),
                         int64_t(op.getNumKvHeads()), int64_t(op.getHeadDim())};
    if (shape.layers &&
        (layer.heads != shape.heads || layer.kvHeads != shape.kvHeads ||
         layer.headDim != shape.headDim)) {
      op.emitOpError() << "has " << layer.heads << " heads, " << layer.kvHeads
                       << " kv heads of " << layer.headDim
                       << " where an earlier layer has " << shape.heads << ", "
                       << shape.kvHeads << " of " << shape.headDim
                       << ": genai_config.json declares one shape for every "
                          "layer";
      return WalkResult::interrupt();
    }
    layer.layers = shape.layers + 1;
    shape = layer;
    return WalkResult::advance();
  });
  if (walk.wasInterrupted())
    return failure();
  if (!shape.layers)
    return func.emitOpError() << "has no moe.attention: --export-onnx-genai "
                                 "writes a decoder with a KV cache";
  return shape;
}

/// A token id field of the base's config.json: an integer, or for
/// eos_token_id a list of them; null or absent gives std::nullopt.
static llvm::Expected<std::optional<llvm::json::Value>>
tokenIds(const DecoderConfig &config, StringRef field, bool list) {
  const llvm::json::Value *value = config.raw.get(field);
  if (!value || value->kind() == llvm::json::Value::Null)
    return std::nullopt;
  if (value->getAsInteger())
    return *value;
  if (const llvm::json::Array *array = value->getAsArray(); list && array) {
    for (const llvm::json::Value &id : *array)
      if (!id.getAsInteger())
        return makeError(config.path + ": " + field +
                         " must hold integer token ids");
    if (!array->empty())
      return *value;
  }
  return makeError(config.path + ": " + field + " must be an integer" +
                   (list ? " or a non-empty list of integers" : ""));
}

static llvm::Expected<llvm::json::Value>
genaiConfig(const DecoderConfig &base, const AttentionShape &attention,
            int64_t vocab, int64_t hidden, StringRef idsInput) {
  std::optional<llvm::json::Value> eos, bos, pad;
  MOE_ASSIGN_OR_RETURN(eos, tokenIds(base, "eos_token_id", /*list=*/true));
  if (!eos)
    return makeError(base.path +
                     ": no eos_token_id, which onnxruntime-genai stops "
                     "generating at");
  MOE_ASSIGN_OR_RETURN(bos, tokenIds(base, "bos_token_id", /*list=*/false));
  MOE_ASSIGN_OR_RETURN(pad, tokenIds(base, "pad_token_id", /*list=*/false));
  // Without a pad token, padding uses the (first) end-of-sequence token, as
  // transformers' generate does.
  llvm::json::Value padId = pad ? *pad : *eos;
  if (const llvm::json::Array *ids = padId.getAsArray())
    padId = llvm::json::Value(ids->front());
  std::optional<int64_t> context =
      base.raw.getInteger("max_position_embeddings");
  if (!context || *context <= 0)
    return makeError(base.path +
                     ": no positive max_position_embeddings, the context "
                     "length genai_config.json declares");

  llvm::json::Object model{
      {"type", "llama"},
      {"vocab_size", vocab},
      {"context_length", *context},
      {"eos_token_id", std::move(*eos)},
      {"pad_token_id", std::move(padId)},
      {"decoder",
       llvm::json::Object{
           {"filename", kModelFile},
           {"session_options",
            llvm::json::Object{{"log_id", "onnxruntime-genai"},
                               {"provider_options", llvm::json::Array()}}},
           {"hidden_size", hidden},
           {"head_size", attention.headDim},
           {"num_attention_heads", attention.heads},
           {"num_key_value_heads", attention.kvHeads},
           {"num_hidden_layers", attention.layers},
           {"inputs",
            llvm::json::Object{
                {"input_ids", idsInput},
                {"attention_mask", "attention_mask"},
                {"position_ids", "position_ids"},
                {"past_key_names", "past_key_values.%d.key"},
                {"past_value_names", "past_key_values.%d.value"}}},
           {"outputs",
            llvm::json::Object{{"logits", "logits"},
                               {"present_key_names", "present.%d.key"},
                               {"present_value_names", "present.%d.value"}}},
       }},
  };
  if (bos)
    model["bos_token_id"] = std::move(*bos);
  // Greedy by default, like transformers' generate without a
  // generation config; callers change the search options per request.
  llvm::json::Object search{{"do_sample", false},
                            {"num_beams", 1},
                            {"num_return_sequences", 1},
                            {"max_length", *context},
                            {"min_length", 0},
                            {"top_k", 1},
                            {"top_p", 1.0},
                            {"temperature", 1.0},
                            {"repetition_penalty", 1.0},
                            {"length_penalty", 1.0},
                            {"diversity_penalty", 0.0},
                            {"no_repeat_ngram_size", 0},
                            {"early_stopping", true},
                            {"past_present_share_buffer", false}};
  return llvm::json::Object{{"model", std::move(model)},
                            {"search", std::move(search)}};
}

LogicalResult mlir::moe::exportOnnxGenai(ModuleOp module,
                                         const OnnxExportOptions &options) {
  Location loc = module.getLoc();
  auto fail = [&](llvm::Error error) {
    emitError(loc) << llvm::toString(std::move(error));
    return failure();
  };
  StringRef folder = options.modelPath;
  if (folder.empty() || folder == "-")
    return emitError(loc) << "--export-onnx-genai writes a folder: give it "
                             "with -o (e.g. -o model-genai)";
  if (options.form != OnnxForm::KvCache)
    return emitError(loc) << "--export-onnx-genai writes the kv-cache form "
                             "(onnxruntime-genai runs the generation loop)";
  llvm::Expected<bool> replace = checkOutputDirectory(folder, options.force);
  if (!replace)
    return fail(replace.takeError());
  WeightSourceOptions weightSources;
  if (llvm::Error error = checkScopeBindings(module, weightSources))
    return fail(std::move(error));
  if (llvm::Error error = refuseReplacingSource(module, folder, weightSources))
    return fail(std::move(error));

  llvm::Expected<func::FuncOp> func =
      pickModelFunction(module, options.function, "--export-func");
  if (!func)
    return fail(func.takeError());
  FailureOr<AttentionShape> attention = attentionShape(*func);
  if (failed(attention))
    return failure();
  EmbeddingOp embedding;
  func->walk([&](EmbeddingOp op) {
    if (!embedding)
      embedding = op;
  });
  if (!embedding)
    return func->emitOpError() << "has no moe.embedding, whose width "
                                  "genai_config.json declares";
  int64_t hidden =
      cast<RankedTensorType>(embedding.getResult().getType()).getShape().back();
  int64_t vocab = cast<RankedTensorType>(func->getFunctionType().getResult(0))
                      .getShape()
                      .back();

  // The token ids and the tokenizer are the base model's.
  llvm::Expected<BaseCheckpoint> base = huggingFaceBaseOf(*func, weightSources);
  if (!base)
    return fail(base.takeError());
  std::string baseDir = base->directory;
  SmallString<256> configPath(baseDir);
  llvm::sys::path::append(configPath, "config.json");
  llvm::Expected<DecoderConfig> baseConfig = readDecoderConfig(configPath);
  if (!baseConfig)
    return fail(
        explainScopeError(base->scope, baseDir, baseConfig.takeError()));
  std::string idsInput = "input_ids";
  if (auto name =
          func->getArgAttrOfType<StringAttr>(0, MoeDialect::getNameAttrName()))
    idsInput = name.getValue().str();
  llvm::Expected<llvm::json::Value> config =
      genaiConfig(*baseConfig, *attention, vocab, hidden, idsInput);
  if (!config)
    return fail(config.takeError());

  llvm::Expected<StagedOutput> staged = StagedOutput::create(
      llvm::sys::path::parent_path(folder), llvm::sys::path::filename(folder));
  if (!staged)
    return fail(staged.takeError());
  if (failed(writeModelFiles(module, *func, options, *staged, folder,
                             kModelFile, kDataFile)))
    return failure();
  if (llvm::Error error = staged->nameDestination(
          staged->writeFile("genai_config.json", hf::formatConfigJson(*config)),
          folder))
    return fail(std::move(error));
  if (llvm::Error error = staged->nameDestination(
          hf::copyCompanionFiles(baseDir, *staged), folder))
    return fail(std::move(error));
  if (llvm::Error error = staged->publishDirectory(*replace))
    return fail(std::move(error));
  return success();
}
