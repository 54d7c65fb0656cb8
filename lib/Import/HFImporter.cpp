//===- HFImporter.cpp - Import of Hugging Face decoders -------------------===//
//
// Builds one moe function per model from its config.json and the headers of
// its safetensors files. Weights become moe.param references; nothing but
// headers is read.
//
//===----------------------------------------------------------------------===//

#include "moe/Import/HFImporter.h"
#include "moe/Support/Format.h"

#include "moe/Dialect/MoeOps.h"
#include "moe/Formats/HF/HFConfig.h"
#include "moe/Formats/HF/TensorNames.h"
#include "moe/Support/Errors.h"
#include "moe/Support/StrictJson.h"
#include "moe/Weights/Checkpoint.h"
#include "moe/Weights/GGUFModel.h"

#include "mlir/Dialect/Arith/IR/Arith.h"
#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/Dialect/Tensor/IR/Tensor.h"
#include "mlir/IR/Builders.h"
#include "llvm/ADT/DenseSet.h"
#include "llvm/ADT/StringSet.h"
#include "llvm/Support/FileSystem.h"
#include "llvm/Support/FormatVariadic.h"
#include "llvm/Support/Path.h"
#include "llvm/Support/Regex.h"

#include <cmath>

using namespace mlir;
using namespace mlir::moe;
using weights::Checkpoint;
using weights::TensorInfo;

//===----------------------------------------------------------------------===//
// The linear layers of a decoder
//===----------------------------------------------------------------------===//

namespace {
/// A linear layer of the model: `[out, in]` weight; `fused` for Phi-3's
/// qkv_proj and gate_up_proj, which the importer splits.
struct LinearShape {
  int64_t out, in;
  bool fused = false;
};

/// One adapted linear layer: where its LoRA factors live and their scale.
struct LoraTarget {
  std::string aKey, bKey;
  int64_t rank;
  double scale;
};

/// A LoRA adapter: its scope, checkpoint and the linear layers it adapts,
/// keyed by module path (`model.layers.0.self_attn.q_proj`).
struct Adapter {
  std::string name;
  std::unique_ptr<Checkpoint> checkpoint;
  llvm::StringMap<LoraTarget> targets;
};
} // namespace

/// Functions and scopes share the module's symbol table: the scope of
/// model `name` is `name.ckpt`.
static std::string scopeName(StringRef name) { return (name + ".ckpt").str(); }

/// Every linear layer of a decoder described by `config`.
static llvm::StringMap<LinearShape> collectLinears(const DecoderConfig &c) {
  llvm::StringMap<LinearShape> linears;
  int64_t qOut = c.numHeads * c.headDim, kvOut = c.numKvHeads * c.headDim;
  for (int64_t layer = 0; layer < c.numLayers; ++layer) {
    auto attention = [&](StringRef projection) {
      return hf::attentionModule(layer, projection);
    };
    auto mlp = [&](StringRef projection) {
      return hf::mlpModule(layer, projection);
    };
    if (c.family == ModelFamily::Phi3) {
      linears[attention("qkv_proj")] = {qOut + 2 * kvOut, c.hiddenSize, true};
      linears[mlp("gate_up_proj")] = {2 * c.intermediateSize, c.hiddenSize,
                                      true};
    } else {
      linears[attention("q_proj")] = {qOut, c.hiddenSize};
      linears[attention("k_proj")] = {kvOut, c.hiddenSize};
      linears[attention("v_proj")] = {kvOut, c.hiddenSize};
      linears[mlp("gate_proj")] = {c.intermediateSize, c.hiddenSize};
      linears[mlp("up_proj")] = {c.intermediateSize, c.hiddenSize};
    }
    linears[attention("o_proj")] = {c.hiddenSize, qOut};
    linears[mlp("down_proj")] = {c.hiddenSize, c.intermediateSize};
  }
  linears[hf::kLmHead] = {c.vocabSize, c.hiddenSize};
  return linears;
}

//===----------------------------------------------------------------------===//
// PEFT adapters
//===----------------------------------------------------------------------===//

/// The largest LoRA rank accepted: ranks from files are bounded before
/// they size anything.
static constexpr int64_t kMaxLoraRank = int64_t(1) << 16;

/// PEFT's pattern lookup: the value of the first key of `patterns` that
/// matches the end of `module` at a dot boundary.
static const llvm::json::Value *
lookupPattern(const llvm::json::Object *patterns, StringRef module) {
  if (!patterns)
    return nullptr;
  for (const auto &entry : *patterns) {
    llvm::Regex regex(("^(.*\\.)?(" + entry.first.str() + ")$"));
    if (regex.isValid() && regex.match(module))
      return &entry.second;
  }
  return nullptr;
}

static llvm::Expected<Adapter>
readAdapter(const CheckpointRef &ref, const DecoderConfig &base,
            const llvm::StringMap<LinearShape> &linears) {
  SmallString<256> configPath(ref.path);
  llvm::sys::path::append(configPath, "adapter_config.json");
  llvm::Expected<llvm::json::Object> json = readJsonObjectFile(configPath);
  if (!json)
    return json.takeError();
  const llvm::json::Object *config = &*json;
  auto fieldError = [&](StringRef field, const Twine &message) {
    return makeError(configPath + ": field '" + field + "' " + message);
  };

  if (std::optional<StringRef> type = config->getString("peft_type");
      type && *type != "LORA")
    return fieldError("peft_type", "is '" + *type +
                                       "'; only LORA adapters can be "
                                       "imported");
  // Ranks are integers in [1, kMaxLoraRank] and alphas finite numbers, so
  // that every scale alpha / rank is finite.
  auto rankOf = [&](const llvm::json::Value &value,
                    const Twine &field) -> llvm::Expected<int64_t> {
    std::optional<int64_t> rank = value.getAsInteger();
    if (!rank || *rank <= 0 || *rank > kMaxLoraRank)
      return fieldError(field.str(), "must be an integer in [1, " +
                                         Twine(kMaxLoraRank) + "]");
    return *rank;
  };
  auto alphaOf = [&](const llvm::json::Value &value,
                     const Twine &field) -> llvm::Expected<double> {
    std::optional<double> alpha = value.getAsNumber();
    if (!alpha || !std::isfinite(*alpha))
      return fieldError(field.str(), "must be a finite number");
    return *alpha;
  };
  const llvm::json::Value *rankValue = config->get("r");
  if (!rankValue)
    return fieldError("r", "is missing");
  int64_t rank;
  MOE_ASSIGN_OR_RETURN(rank, rankOf(*rankValue, "r"));
  double alpha = 8.0;
  if (const llvm::json::Value *alphaValue = config->get("lora_alpha"))
    MOE_ASSIGN_OR_RETURN(alpha, alphaOf(*alphaValue, "lora_alpha"));
  // Every pattern entry is checked, whether a module of the adapter uses it
  // or not: a zero rank or an infinite alpha is a broken config either way.
  for (StringRef field : {"rank_pattern", "alpha_pattern"}) {
    const llvm::json::Value *pattern = config->get(field);
    if (!pattern || pattern->kind() == llvm::json::Value::Null)
      continue;
    const llvm::json::Object *entries = pattern->getAsObject();
    if (!entries)
      return fieldError(field.str(), "must be an object");
    for (const auto &[module, value] : *entries) {
      std::string entry = (field + "' entry of '" + module.str()).str();
      if (field == "rank_pattern") {
        MOE_RETURN_IF_ERROR(rankOf(value, entry).takeError());
      } else {
        MOE_RETURN_IF_ERROR(alphaOf(value, entry).takeError());
      }
    }
  }
  bool rslora = config->getBoolean("use_rslora").value_or(false);
  if (config->getBoolean("fan_in_fan_out").value_or(false))
    return fieldError("fan_in_fan_out",
                      "is true, which does not fit the nn.Linear layers of " +
                          base.architecture);
  if (config->getBoolean("use_dora").value_or(false))
    return fieldError("use_dora", "is true; DoRA adapters are not supported");
  if (std::optional<StringRef> bias = config->getString("bias");
      bias && *bias != "none")
    return fieldError("bias", "is '" + *bias +
                                  "'; adapters that train biases are not "
                                  "supported");
  if (const llvm::json::Array *modules = config->getArray("modules_to_save");
      modules && !modules->empty())
    return fieldError("modules_to_save",
                      "lists modules; adapters that replace whole modules "
                      "are not supported");

  // Variants of LoRA that change what the adapter computes.
  for (StringRef field : {"lora_bias", "use_qalora"})
    if (config->getBoolean(field).value_or(false))
      return fieldError(field, "is true; such adapters are not supported");
  for (StringRef field :
       {"layer_replication", "target_parameters", "trainable_token_indices",
        "alora_invocation_tokens"}) {
    const llvm::json::Value *value = config->get(field);
    bool set = value && value->kind() != llvm::json::Value::Null;
    if (const llvm::json::Array *array = value ? value->getAsArray() : nullptr)
      set = !array->empty();
    if (set)
      return fieldError(field, "is set; such adapters are not supported");
  }

  Adapter adapter;
  adapter.name = ref.name;
  llvm::Expected<std::unique_ptr<Checkpoint>> checkpoint =
      Checkpoint::open(ref.path, "adapter_model");
  if (!checkpoint)
    return checkpoint.takeError();
  adapter.checkpoint = std::move(*checkpoint);
  Checkpoint &ckpt = *adapter.checkpoint;

  constexpr StringLiteral prefix = "base_model.model.";
  for (const std::string &key : ckpt.names()) {
    StringRef name = key;
    StringRef file = ckpt.filePathOf(key);
    bool isA = name.ends_with(".lora_A.weight");
    if (!name.starts_with(prefix) || !(isA || name.ends_with(".lora_B.weight")))
      return makeError(file + ": tensor '" + key +
                       "' is not a LoRA A or B weight; only plain LoRA "
                       "adapters can be imported");
    StringRef module =
        name.drop_front(prefix.size()).drop_back(strlen(".lora_A.weight"));
    auto linear = linears.find(module);
    if (linear == linears.end())
      return makeError(file + ": tensor '" + key + "' adapts '" + module +
                       "', which is not a linear layer of the base " +
                       base.architecture);
    if (linear->second.fused)
      return makeError(file + ": tensor '" + key + "' adapts the fused '" +
                       module +
                       "', which the importer splits; LoRA on it is "
                       "not supported");
    LoraTarget &target = adapter.targets[module];
    (isA ? target.aKey : target.bKey) = key;
  }

  const llvm::json::Object *rankPattern = config->getObject("rank_pattern");
  const llvm::json::Object *alphaPattern = config->getObject("alpha_pattern");
  for (auto &entry : adapter.targets) {
    StringRef module = entry.first();
    LoraTarget &target = entry.second;
    if (target.aKey.empty() || target.bKey.empty())
      return makeError(
          ckpt.filePathOf(target.aKey.empty() ? target.bKey : target.aKey) +
          ": '" + module + "' has a lora_" + (target.aKey.empty() ? "B" : "A") +
          " weight but no lora_" + (target.aKey.empty() ? "A" : "B") +
          " weight");
    const TensorInfo *a = ckpt.find(target.aKey);
    const TensorInfo *b = ckpt.find(target.bKey);
    const LinearShape &shape = linears.lookup(module);
    int64_t expectedRank = rank;
    if (const llvm::json::Value *value = lookupPattern(rankPattern, module))
      MOE_ASSIGN_OR_RETURN(expectedRank,
                           rankOf(*value, "rank_pattern' entry of '" + module));
    if (a->shape.size() != 2 || a->shape[0] != expectedRank ||
        a->shape[1] != shape.in)
      return makeError(ckpt.filePathOf(target.aKey) + ": tensor '" +
                       target.aKey + "' has shape " + formatShape(a->shape) +
                       " but rank " + Twine(expectedRank) + " over the " +
                       Twine(shape.in) + " inputs of '" + module + "' needs " +
                       formatShape({expectedRank, shape.in}));
    if (b->shape.size() != 2 || b->shape[0] != shape.out ||
        b->shape[1] != expectedRank)
      return makeError(ckpt.filePathOf(target.bKey) + ": tensor '" +
                       target.bKey + "' has shape " + formatShape(b->shape) +
                       " but '" + module + "' needs " +
                       formatShape({shape.out, expectedRank}));
    for (const TensorInfo *info : {a, b})
      if (!weights::isReadableFloat(info->dtype))
        return makeError(ckpt.filePathOf(info->name) + ": tensor '" +
                         info->name + "' has dtype " +
                         weights::dtypeName(info->dtype) +
                         "; weights must be F32, F16, BF16 or F64");
    double moduleAlpha = alpha;
    if (const llvm::json::Value *value = lookupPattern(alphaPattern, module))
      MOE_ASSIGN_OR_RETURN(
          moduleAlpha, alphaOf(*value, "alpha_pattern' entry of '" + module));
    target.rank = expectedRank;
    target.scale = rslora ? moduleAlpha / std::sqrt(double(expectedRank))
                          : moduleAlpha / double(expectedRank);
  }
  if (adapter.targets.empty())
    return makeError(ckpt.path() + ": the adapter holds no LoRA weights");
  return adapter;
}

//===----------------------------------------------------------------------===//
// Building model functions
//===----------------------------------------------------------------------===//

namespace {
/// The tensors of a checkpoint that some function read.
using UsedKeys = llvm::DenseMap<const Checkpoint *, llvm::StringSet<>>;

/// Emits the function of one model: the base, an expert (its own weights)
/// or an adapted base (base weights plus one adapter).
class ModelBuilder {
public:
  ModelBuilder(ModuleOp module, const DecoderConfig &config, StringRef scope,
               const Checkpoint &checkpoint, const Adapter *adapter,
               const llvm::DenseSet<int64_t> &decomposedFfns, UsedKeys &used)
      : builder(module.getContext()), config(config), scope(scope),
        checkpoint(checkpoint), adapter(adapter),
        decomposedFfns(decomposedFfns), used(used) {
    builder.setInsertionPointToEnd(module.getBody());
    builder.setListener(&tagger);
  }

  llvm::Error build(StringRef name);

private:
  RankedTensorType activation(int64_t features) {
    return RankedTensorType::get(
        {ShapedType::kDynamic, ShapedType::kDynamic, features},
        builder.getF32Type());
  }
  Location loc(const Twine &module) {
    return NameLoc::get(builder.getStringAttr(module));
  }

  llvm::Expected<Value> param(StringRef paramScope, const Checkpoint &ckpt,
                              StringRef key, ArrayRef<int64_t> shape);
  llvm::Expected<Value> param(StringRef key, ArrayRef<int64_t> shape) {
    return param(scope, checkpoint, key, shape);
  }
  /// Rows [begin, begin + count) of a weight.
  Value rows(Value weight, int64_t begin, int64_t count);
  llvm::Expected<Value> linear(Value input, StringRef module, bool bias);
  llvm::Expected<Value> linearWithWeight(Value input, StringRef module,
                                         Value weight, Value bias);
  llvm::Expected<Value> rmsNorm(Value input, StringRef key);
  llvm::Expected<Value> attention(Value x, int64_t layer);
  llvm::Expected<Value> ffn(Value x, int64_t layer);
  Value scale(Value x, double factor, StringRef module) {
    if (factor == 1.0)
      return x;
    return ScaleOp::create(builder, loc(module), x,
                           builder.getF64FloatAttr(factor));
  }

  OpBuilder builder;
  LayerTagger tagger;
  const DecoderConfig &config;
  std::string scope;
  const Checkpoint &checkpoint;
  const Adapter *adapter;
  const llvm::DenseSet<int64_t> &decomposedFfns;
  UsedKeys &used;
  llvm::StringMap<Value> params;
  llvm::StringMap<LinearShape> linears = collectLinears(config);
};
} // namespace

llvm::Expected<Value> ModelBuilder::param(StringRef paramScope,
                                          const Checkpoint &ckpt, StringRef key,
                                          ArrayRef<int64_t> shape) {
  std::string cacheKey = (paramScope + "::" + key).str();
  if (Value cached = params.lookup(cacheKey))
    return cached;
  const TensorInfo *info = ckpt.find(key);
  if (!info)
    return makeError(ckpt.path() + ": tensor '" + key +
                     "' is missing (expected shape " + formatShape(shape) +
                     ")");
  StringRef file = ckpt.filePathOf(key);
  if (!weights::isReadableFloat(info->dtype))
    return makeError(file + ": tensor '" + key + "' has dtype " +
                     weights::dtypeName(info->dtype) +
                     "; weights must be F32, F16, BF16 or F64");
  if (ArrayRef<int64_t>(info->shape) != shape)
    return makeError(file + ": tensor '" + key + "' has shape " +
                     formatShape(info->shape) + " but " + config.path +
                     " implies " + formatShape(shape));
  used[&ckpt].insert(key);
  auto type = RankedTensorType::get(shape, builder.getF32Type());
  Value value =
      ParamOp::create(builder, loc(key), type,
                      FlatSymbolRefAttr::get(builder.getContext(), paramScope),
                      builder.getStringAttr(key), IntegerAttr());
  params[cacheKey] = value;
  return value;
}

Value ModelBuilder::rows(Value weight, int64_t begin, int64_t count) {
  auto type = cast<RankedTensorType>(weight.getType());
  auto sliceType =
      RankedTensorType::get({count, type.getShape()[1]}, type.getElementType());
  SmallVector<OpFoldResult> offsets{builder.getIndexAttr(begin),
                                    builder.getIndexAttr(0)};
  SmallVector<OpFoldResult> sizes{builder.getIndexAttr(count),
                                  builder.getIndexAttr(type.getShape()[1])};
  SmallVector<OpFoldResult> strides(2, builder.getIndexAttr(1));
  return tensor::ExtractSliceOp::create(builder, weight.getLoc(), sliceType,
                                        weight, offsets, sizes, strides);
}

llvm::Expected<Value> ModelBuilder::linearWithWeight(Value input,
                                                     StringRef module,
                                                     Value weight, Value bias) {
  int64_t out = cast<RankedTensorType>(weight.getType()).getShape()[0];
  auto resultType = activation(out);
  const LoraTarget *lora = nullptr;
  if (adapter) {
    auto it = adapter->targets.find(module);
    if (it != adapter->targets.end())
      lora = &it->second;
  }
  if (!lora)
    return LinearOp::create(builder, loc(module), resultType, input, weight,
                            bias)
        .getResult();
  int64_t in = cast<RankedTensorType>(input.getType()).getShape().back();
  Value a, b;
  std::string adapterScope = scopeName(adapter->name);
  MOE_ASSIGN_OR_RETURN(a, param(adapterScope, *adapter->checkpoint, lora->aKey,
                                {lora->rank, in}));
  MOE_ASSIGN_OR_RETURN(b, param(adapterScope, *adapter->checkpoint, lora->bKey,
                                {out, lora->rank}));
  return LoraLinearOp::create(builder, loc(module), resultType, input, weight,
                              bias, a, b, builder.getF64FloatAttr(lora->scale))
      .getResult();
}

llvm::Expected<Value> ModelBuilder::linear(Value input, StringRef module,
                                           bool hasBias) {
  const LinearShape &shape = linears.lookup(module);
  Value weight, bias;
  MOE_ASSIGN_OR_RETURN(weight,
                       param(hf::weightKey(module), {shape.out, shape.in}));
  if (hasBias)
    MOE_ASSIGN_OR_RETURN(bias, param(hf::biasKey(module), {shape.out}));
  return linearWithWeight(input, module, weight, bias);
}

llvm::Expected<Value> ModelBuilder::rmsNorm(Value input, StringRef key) {
  int64_t features = cast<RankedTensorType>(input.getType()).getShape().back();
  Value weight;
  MOE_ASSIGN_OR_RETURN(weight, param(key, {features}));
  return RmsNormOp::create(builder, loc(key.drop_back(strlen(".weight"))),
                           input.getType(), input, weight,
                           builder.getF64FloatAttr(config.normEps))
      .getResult();
}

llvm::Expected<Value> ModelBuilder::attention(Value x, int64_t layer) {
  std::string prefix = hf::attentionModule(layer, "");
  int64_t qOut = config.numHeads * config.headDim;
  int64_t kvOut = config.numKvHeads * config.headDim;
  Value q, k, v;
  if (config.family == ModelFamily::Phi3) {
    Value qkv;
    MOE_ASSIGN_OR_RETURN(qkv, param(prefix + "qkv_proj.weight",
                                    {qOut + 2 * kvOut, config.hiddenSize}));
    MOE_ASSIGN_OR_RETURN(
        q, linearWithWeight(x, prefix + "q_proj", rows(qkv, 0, qOut), Value()));
    MOE_ASSIGN_OR_RETURN(k, linearWithWeight(x, prefix + "k_proj",
                                             rows(qkv, qOut, kvOut), Value()));
    MOE_ASSIGN_OR_RETURN(v, linearWithWeight(x, prefix + "v_proj",
                                             rows(qkv, qOut + kvOut, kvOut),
                                             Value()));
  } else {
    MOE_ASSIGN_OR_RETURN(q, linear(x, prefix + "q_proj", config.qkvBias));
    MOE_ASSIGN_OR_RETURN(k, linear(x, prefix + "k_proj", config.qkvBias));
    MOE_ASSIGN_OR_RETURN(v, linear(x, prefix + "v_proj", config.qkvBias));
  }
  const RopeConfig &rope = config.rope;
  RopeScalingAttr scaling;
  if (rope.scaling)
    scaling = RopeScalingAttr::get(
        builder.getContext(), *rope.scaling, APFloat(rope.factor),
        APFloat(rope.lowFreqFactor), APFloat(rope.highFreqFactor),
        rope.originalMaxPosition, APFloat(rope.betaFast),
        APFloat(rope.betaSlow), APFloat(rope.attentionFactor));
  FloatAttr scaleAttr;
  if (config.attentionMultiplier)
    scaleAttr = builder.getF64FloatAttr(*config.attentionMultiplier);
  IntegerAttr window;
  if (std::optional<int64_t> size = config.slidingWindow[layer])
    window = builder.getI64IntegerAttr(*size);
  Value attended = AttentionOp::create(
      builder, loc(prefix.substr(0, prefix.size() - 1)), activation(qOut), q, k,
      v, builder.getI64IntegerAttr(config.numHeads),
      builder.getI64IntegerAttr(config.numKvHeads),
      builder.getI64IntegerAttr(config.headDim),
      builder.getF64FloatAttr(rope.theta), scaling, scaleAttr, window);
  return linear(attended, prefix + "o_proj", config.outputBias);
}

llvm::Expected<Value> ModelBuilder::ffn(Value x, int64_t layer) {
  std::string prefix = hf::mlpModule(layer, "");
  int64_t hidden = config.hiddenSize, inter = config.intermediateSize;
  Value gate, up, down, gateBias, upBias, downBias;
  if (config.family == ModelFamily::Phi3) {
    Value gateUp;
    MOE_ASSIGN_OR_RETURN(
        gateUp, param(prefix + "gate_up_proj.weight", {2 * inter, hidden}));
    gate = rows(gateUp, 0, inter);
    up = rows(gateUp, inter, inter);
  } else {
    MOE_ASSIGN_OR_RETURN(gate,
                         param(prefix + "gate_proj.weight", {inter, hidden}));
    MOE_ASSIGN_OR_RETURN(up, param(prefix + "up_proj.weight", {inter, hidden}));
  }
  MOE_ASSIGN_OR_RETURN(down,
                       param(prefix + "down_proj.weight", {hidden, inter}));
  if (config.mlpBias) {
    MOE_ASSIGN_OR_RETURN(gateBias, param(prefix + "gate_proj.bias", {inter}));
    MOE_ASSIGN_OR_RETURN(upBias, param(prefix + "up_proj.bias", {inter}));
    MOE_ASSIGN_OR_RETURN(downBias, param(prefix + "down_proj.bias", {hidden}));
  }
  if (!decomposedFfns.contains(layer))
    return FfnOp::create(builder, loc(prefix + "ffn"), x.getType(), x, gate, up,
                         down, gateBias, upBias, downBias, config.activation)
        .getResult();
  Value g, u, d;
  MOE_ASSIGN_OR_RETURN(
      g, linearWithWeight(x, prefix + "gate_proj", gate, gateBias));
  MOE_ASSIGN_OR_RETURN(u, linearWithWeight(x, prefix + "up_proj", up, upBias));
  Value glu =
      GluOp::create(builder, loc(prefix + "act"), g, u, config.activation);
  MOE_ASSIGN_OR_RETURN(
      d, linearWithWeight(glu, prefix + "down_proj", down, downBias));
  return d;
}

llvm::Error ModelBuilder::build(StringRef name) {
  MLIRContext *context = builder.getContext();
  auto idsType = RankedTensorType::get(
      {ShapedType::kDynamic, ShapedType::kDynamic}, builder.getI64Type());
  auto logitsType = activation(config.vocabSize);
  auto func = func::FuncOp::create(
      builder, NameLoc::get(builder.getStringAttr(name)), name,
      FunctionType::get(context, {idsType}, {logitsType}));
  func->setAttr(MoeDialect::getScopeAttrName(),
                FlatSymbolRefAttr::get(context, scope));
  func->setAttr(MoeDialect::getArchitectureAttrName(),
                builder.getStringAttr(config.architecture));
  func.setArgAttr(0, MoeDialect::getNameAttrName(),
                  builder.getStringAttr("input_ids"));
  OpBuilder::InsertionGuard guard(builder);
  builder.setInsertionPointToStart(func.addEntryBlock());

  Value table;
  MOE_ASSIGN_OR_RETURN(table, param(hf::weightKey(hf::kEmbedTokens),
                                    {config.vocabSize, config.hiddenSize}));
  Value hidden = EmbeddingOp::create(builder, loc(hf::kEmbedTokens),
                                     activation(config.hiddenSize), table,
                                     func.getArgument(0));
  hidden = scale(hidden, config.embeddingMultiplier, hf::kEmbedTokens);

  for (int64_t layer = 0; layer < config.numLayers; ++layer) {
    tagger.layer = layer;
    std::string prefix = hf::layerPrefix(layer);
    Value x, attended, mlp;
    MOE_ASSIGN_OR_RETURN(
        x, rmsNorm(hidden, hf::weightKey(hf::inputNormModule(layer))));
    MOE_ASSIGN_OR_RETURN(attended, attention(x, layer));
    attended = scale(attended, config.residualMultiplier, prefix + "self_attn");
    hidden = arith::AddFOp::create(builder, loc(prefix + "residual_attn"),
                                   hidden, attended);
    MOE_ASSIGN_OR_RETURN(
        x, rmsNorm(hidden, hf::weightKey(hf::postAttentionNormModule(layer))));
    MOE_ASSIGN_OR_RETURN(mlp, ffn(x, layer));
    mlp = scale(mlp, config.residualMultiplier, prefix + "mlp");
    hidden = arith::AddFOp::create(builder, loc(prefix + "residual_mlp"),
                                   hidden, mlp);
  }
  tagger.layer = -1;

  MOE_ASSIGN_OR_RETURN(hidden, rmsNorm(hidden, hf::weightKey(hf::kFinalNorm)));
  Value headWeight = table;
  if (!config.tieWordEmbeddings)
    MOE_ASSIGN_OR_RETURN(headWeight,
                         param(hf::weightKey(hf::kLmHead),
                               {config.vocabSize, config.hiddenSize}));
  else if (checkpoint.find(hf::weightKey(hf::kLmHead)))
    used[&checkpoint].insert(hf::weightKey(hf::kLmHead));
  Value logits;
  MOE_ASSIGN_OR_RETURN(
      logits, linearWithWeight(hidden, hf::kLmHead, headWeight, Value()));
  logits = scale(logits, 1.0 / config.logitsScaling, hf::kLmHead);
  func::ReturnOp::create(builder, loc("logits"), logits);
  return llvm::Error::success();
}

//===----------------------------------------------------------------------===//
// Import of a base with experts and adapters
//===----------------------------------------------------------------------===//

/// The first tensor in which `other` differs from `base` (missing, extra,
/// other shape), or std::nullopt.
static std::optional<std::string> findTensorMismatch(const Checkpoint &base,
                                                     const Checkpoint &other) {
  for (const std::string &name : base.names()) {
    const TensorInfo *theirs = other.find(name);
    if (!theirs)
      return "tensor '" + name + "' is missing";
    const TensorInfo *mine = base.find(name);
    if (mine->shape != theirs->shape)
      return "tensor '" + name + "' has shape " + formatShape(theirs->shape) +
             " but " + formatShape(mine->shape) + " in the base";
  }
  for (const std::string &name : other.names())
    if (!base.find(name))
      return "tensor '" + name + "' is not in the base";
  return std::nullopt;
}

static bool isValidName(StringRef name) {
  return !name.empty() && (isalpha(name[0]) || name[0] == '_') &&
         llvm::all_of(name, [](char c) {
           return isalnum(c) || c == '_' || c == '-' || c == '.';
         });
}

static bool isGGUF(StringRef path) { return path.ends_with(".gguf"); }

/// Imports everything, returning the first error.
static llvm::Error importAll(ModuleOp module, const ImportRequest &request) {
  llvm::StringSet<> names;
  auto claimName = [&](const CheckpointRef &ref) -> llvm::Error {
    if (!isValidName(ref.name))
      return makeError("'" + ref.name +
                       "' is not a valid model name (letters, digits, '_', "
                       "'-' and '.', starting with a letter or '_')");
    if (!names.insert(ref.name).second)
      return makeError("the name '" + ref.name + "' is used twice");
    return llvm::Error::success();
  };

  MOE_RETURN_IF_ERROR(claimName(request.base));
  DecoderConfig base;
  MOE_ASSIGN_OR_RETURN(base, readCheckpointConfig(request.base.path));
  std::unique_ptr<Checkpoint> baseCheckpoint;
  MOE_ASSIGN_OR_RETURN(baseCheckpoint, Checkpoint::open(request.base.path));

  struct Expert {
    const CheckpointRef *ref;
    DecoderConfig config;
    std::unique_ptr<Checkpoint> checkpoint;
  };
  std::vector<Expert> experts;
  for (const CheckpointRef &ref : request.experts) {
    MOE_RETURN_IF_ERROR(claimName(ref));
    Expert expert{&ref, {}, nullptr};
    MOE_ASSIGN_OR_RETURN(expert.config, readCheckpointConfig(ref.path));
    auto incompatible = [&](const Twine &why) {
      return makeError("expert '" + ref.name + "' (" + ref.path +
                       ") cannot be mixed with base '" + request.base.name +
                       "' (" + request.base.path + "): " + why);
    };
    if (std::optional<std::string> field =
            findIncompatibility(base, expert.config))
      return incompatible(*field);
    MOE_ASSIGN_OR_RETURN(expert.checkpoint, Checkpoint::open(ref.path));
    if (std::optional<std::string> tensor =
            findTensorMismatch(*baseCheckpoint, *expert.checkpoint))
      return incompatible(*tensor);
    experts.push_back(std::move(expert));
  }

  llvm::StringMap<LinearShape> linears = collectLinears(base);
  std::vector<Adapter> adapters;
  llvm::DenseSet<int64_t> decomposedFfns;
  for (const CheckpointRef &ref : request.adapters) {
    MOE_RETURN_IF_ERROR(claimName(ref));
    Adapter adapter;
    MOE_ASSIGN_OR_RETURN(adapter, readAdapter(ref, base, linears));
    for (const auto &target : adapter.targets)
      for (int64_t layer = 0; layer < base.numLayers; ++layer)
        if (target.first().starts_with(hf::mlpModule(layer, "")))
          decomposedFfns.insert(layer);
    adapters.push_back(std::move(adapter));
  }

  OpBuilder builder(module.getContext());
  builder.setInsertionPointToEnd(module.getBody());
  // Absolute scope paths: the module reads the same checkpoints from any
  // working directory (--moe-scope rebinds them on another machine).
  auto declareScope = [&](const CheckpointRef &ref, ScopeFormat format) {
    SmallString<256> path(ref.path);
    llvm::sys::fs::make_absolute(path);
    if (format == ScopeFormat::huggingface && isGGUF(ref.path))
      format = ScopeFormat::gguf;
    ScopeOp::create(builder, NameLoc::get(builder.getStringAttr(ref.path)),
                    scopeName(ref.name), path, format);
  };
  declareScope(request.base, ScopeFormat::huggingface);
  for (const Expert &expert : experts)
    declareScope(*expert.ref, ScopeFormat::huggingface);
  for (const CheckpointRef &ref : request.adapters)
    declareScope(ref, ScopeFormat::peft);

  UsedKeys used;
  MOE_RETURN_IF_ERROR(ModelBuilder(module, base, scopeName(request.base.name),
                                   *baseCheckpoint, nullptr, decomposedFfns,
                                   used)
                          .build(request.base.name));
  for (const Expert &expert : experts)
    MOE_RETURN_IF_ERROR(
        ModelBuilder(module, expert.config, scopeName(expert.ref->name),
                     *expert.checkpoint, nullptr, decomposedFfns, used)
            .build(expert.ref->name));
  for (const Adapter &adapter : adapters)
    MOE_RETURN_IF_ERROR(ModelBuilder(module, base, scopeName(request.base.name),
                                     *baseCheckpoint, &adapter, decomposedFfns,
                                     used)
                            .build(adapter.name));

  // Tensors no model reads are worth a warning: they may mean a feature the
  // importer does not know about.
  auto warnUnused = [&](const Checkpoint &ckpt) {
    std::vector<std::string> unused;
    for (const std::string &name : ckpt.names())
      if (!used[&ckpt].contains(name) &&
          !StringRef(name).ends_with("rotary_emb.inv_freq"))
        unused.push_back(name);
    if (!unused.empty())
      mlir::emitWarning(module.getLoc())
          << ckpt.path() << ": " << unused.size()
          << " tensor(s) are not used by the " << base.architecture
          << " importer, the first is '" << unused.front() << "'";
  };
  warnUnused(*baseCheckpoint);
  for (const Expert &expert : experts)
    warnUnused(*expert.checkpoint);
  for (const Adapter &adapter : adapters)
    warnUnused(*adapter.checkpoint);
  return llvm::Error::success();
}

LogicalResult mlir::moe::importHuggingFace(ModuleOp module,
                                           const ImportRequest &request) {
  if (llvm::Error err = importAll(module, request)) {
    // Errors start with the file at fault (an expert's config, an
    // adapter's tensor file, a shard): locate them there, not at the base.
    std::string message = llvm::toString(std::move(err));
    Location loc = module.getLoc();
    StringRef file = StringRef(message).split(": ").first;
    if (file != message && llvm::sys::fs::exists(file))
      loc = FileLineColLoc::get(module.getContext(), file, /*line=*/0,
                                /*column=*/0);
    mlir::emitError(loc) << message;
    return failure();
  }
  return success();
}
