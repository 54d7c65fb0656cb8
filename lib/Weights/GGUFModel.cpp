//===- GGUFModel.cpp - llama.cpp models as transformers reads them --------===//
//
// The names, the rotary row order and the config keys follow llama.cpp's
// convert_hf_to_gguf.py (LlamaModel) and its inverse in transformers
// (integrations/ggml.py, modeling_gguf_pytorch_utils.py).
//
//===----------------------------------------------------------------------===//

#include "moe/Weights/GGUFModel.h"

#include "moe/Support/Errors.h"
#include "moe/Support/StrictJson.h"

#include "llvm/ADT/StringSwitch.h"

#include <cstdio>
#include <cstdlib>

using namespace mlir::moe;
using namespace mlir::moe::weights;
using llvm::Error;
using llvm::Expected;
using llvm::StringRef;
using llvm::Twine;

uint64_t mlir::moe::weights::llamaRotaryStoredRow(uint64_t row,
                                                  uint64_t headSize) {
  uint64_t half = headSize / 2, head = row / headSize, inHead = row % headSize;
  return head * headSize + 2 * (inHead % half) + inHead / half;
}

uint64_t mlir::moe::weights::llamaRotarySourceRow(uint64_t storedRow,
                                                  uint64_t headSize) {
  uint64_t half = headSize / 2, head = storedRow / headSize,
           inHead = storedRow % headSize;
  return head * headSize + (inHead % 2) * half + inHead / 2;
}

uint64_t GGUFModelTensor::storedRow(uint64_t row) const {
  if (!ropeHeads)
    return row;
  return llamaRotaryStoredRow(row, uint64_t(shape[0]) / uint64_t(ropeHeads));
}

/// The architectures whose tensors and metadata are mapped.
static Expected<StringRef> architectureOf(const GGUFFile &file) {
  const GGUFValue *value = file.find("general.architecture");
  if (!value || value->type != GGUFValue::String)
    return makeError(file.path() +
                     ": metadata 'general.architecture' is missing or not "
                     "a string");
  if (value->string != "llama")
    return makeError(file.path() + ": architecture " + quoted(value->string) +
                     " is not supported (llama is)");
  return StringRef(value->string);
}

/// The transformers name of llama.cpp tensor `name` of the llama
/// architecture; empty when it has none.
static std::string transformersName(StringRef name) {
  std::string global =
      llvm::StringSwitch<std::string>(name)
          .Case("token_embd.weight", "model.embed_tokens.weight")
          .Case("output_norm.weight", "model.norm.weight")
          .Case("output.weight", "lm_head.weight")
          .Default("");
  if (!global.empty())
    return global;
  StringRef rest = name;
  unsigned layer;
  if (!rest.consume_front("blk.") || rest.consumeInteger(10, layer) ||
      !rest.consume_front("."))
    return "";
  std::string module = llvm::StringSwitch<std::string>(rest)
                           .Case("attn_norm.weight", "input_layernorm")
                           .Case("ffn_norm.weight", "post_attention_layernorm")
                           .Case("attn_q.weight", "self_attn.q_proj")
                           .Case("attn_k.weight", "self_attn.k_proj")
                           .Case("attn_v.weight", "self_attn.v_proj")
                           .Case("attn_output.weight", "self_attn.o_proj")
                           .Case("ffn_gate.weight", "mlp.gate_proj")
                           .Case("ffn_up.weight", "mlp.up_proj")
                           .Case("ffn_down.weight", "mlp.down_proj")
                           .Default("");
  if (module.empty())
    return "";
  return "model.layers." + std::to_string(layer) + "." + module + ".weight";
}

/// Metadata `arch.key`: its value, null when absent and `optional`, else an
/// error naming the key.
static Expected<const GGUFValue *>
archValue(const GGUFFile &file, StringRef arch, StringRef key, bool optional) {
  std::string full = (arch + "." + key).str();
  const GGUFValue *value = file.find(full);
  if (!value && !optional)
    return makeError(file.path() + ": metadata " + quoted(full) +
                     " is missing");
  return value;
}

/// A value of the wrong kind for `arch.key`.
static Error wrongKind(const GGUFFile &file, StringRef arch, StringRef key,
                       const GGUFValue &value, StringRef wanted) {
  return makeError(file.path() + ": metadata " +
                   quoted((arch + "." + key).str()) + " is a " +
                   ggufValueTypeName(value.type) + ", not " + wanted);
}

/// An integer metadata value of the architecture; `fallback` when absent
/// and given.
static Expected<int64_t> integerKey(const GGUFFile &file, StringRef arch,
                                    StringRef key,
                                    std::optional<int64_t> fallback = {}) {
  const GGUFValue *value;
  MOE_ASSIGN_OR_RETURN(value, archValue(file, arch, key, fallback.has_value()));
  if (!value)
    return *fallback;
  if (!value->isInteger())
    return wrongKind(file, arch, key, *value, "an integer");
  return value->integer;
}

/// The shortest decimal that rounds to float32 `value`: llama.cpp's
/// converter stores config.json's decimals (1e-5) as float32s, and reading
/// them back as such keeps GGUF and safetensors imports of a model alike.
static double configDecimal(float value) {
  char text[32];
  for (int digits = 1; digits < 9; ++digits) {
    std::snprintf(text, sizeof(text), "%.*g", digits, double(value));
    if (std::strtof(text, nullptr) == value)
      return std::strtod(text, nullptr);
  }
  return value;
}

static Expected<double> numberKey(const GGUFFile &file, StringRef arch,
                                  StringRef key,
                                  std::optional<double> fallback = {}) {
  const GGUFValue *value;
  MOE_ASSIGN_OR_RETURN(value, archValue(file, arch, key, fallback.has_value()));
  if (!value)
    return *fallback;
  if (!value->isNumber())
    return wrongKind(file, arch, key, *value, "a number");
  if (value->type == GGUFValue::Float32)
    return configDecimal(float(value->number));
  return value->number;
}

Expected<std::vector<GGUFModelTensor>>
mlir::moe::weights::mapGGUFModelTensors(const GGUFFile &file) {
  StringRef arch;
  MOE_ASSIGN_OR_RETURN(arch, architectureOf(file));
  int64_t heads, kvHeads;
  MOE_ASSIGN_OR_RETURN(heads, integerKey(file, arch, "attention.head_count"));
  MOE_ASSIGN_OR_RETURN(
      kvHeads, integerKey(file, arch, "attention.head_count_kv", heads));
  std::vector<GGUFModelTensor> result;
  for (const GGUFTensorInfo &info : file.tensors()) {
    auto fail = [&](const Twine &message) {
      return makeError(file.path() + ": tensor " + quoted(info.name) + " " +
                       message);
    };
    if (info.name == "rope_freqs.weight")
      return fail("holds Llama 3 rotary frequency factors, which are not "
                  "supported");
    GGUFModelTensor mapped;
    mapped.name = transformersName(info.name);
    if (mapped.name.empty())
      return fail("has no transformers counterpart in the " + arch +
                  " architecture");
    mapped.tensor = &info;
    mapped.shape.assign(info.dims.rbegin(), info.dims.rend());
    StringRef name = info.name;
    if (name.ends_with(".attn_q.weight") || name.ends_with(".attn_k.weight")) {
      int64_t count = name.ends_with(".attn_q.weight") ? heads : kvHeads;
      if (count <= 0 || mapped.shape.size() != 2 ||
          mapped.shape[0] % (2 * count))
        return fail("cannot be split into " + Twine(count) +
                    " heads of an even number of rows");
      mapped.ropeHeads = count;
    }
    result.push_back(std::move(mapped));
  }
  return result;
}

Expected<llvm::json::Object>
mlir::moe::weights::ggufHuggingFaceConfig(const GGUFFile &file) {
  StringRef arch;
  MOE_ASSIGN_OR_RETURN(arch, architectureOf(file));
  llvm::json::Object config;
  config["architectures"] = llvm::json::Array{"LlamaForCausalLM"};
  config["model_type"] = arch;
  static const std::pair<const char *, const char *> integers[] = {
      {"embedding_length", "hidden_size"},
      {"feed_forward_length", "intermediate_size"},
      {"block_count", "num_hidden_layers"},
      {"attention.head_count", "num_attention_heads"},
      {"context_length", "max_position_embeddings"}};
  for (auto [key, field] : integers) {
    int64_t value;
    MOE_ASSIGN_OR_RETURN(value, integerKey(file, arch, key));
    config[field] = value;
  }
  int64_t heads = *config.getInteger("num_attention_heads");
  int64_t kvHeads;
  MOE_ASSIGN_OR_RETURN(
      kvHeads, integerKey(file, arch, "attention.head_count_kv", heads));
  config["num_key_value_heads"] = kvHeads;
  // The head size: key_length when given, else the rotary dimensions
  // (transformers' reading), else hidden / heads.
  std::string keyLength = (arch + ".attention.key_length").str();
  std::string ropeDims = (arch + ".rope.dimension_count").str();
  if (file.find(keyLength) || file.find(ropeDims)) {
    int64_t headDim;
    MOE_ASSIGN_OR_RETURN(headDim, integerKey(file, arch,
                                             file.find(keyLength)
                                                 ? "attention.key_length"
                                                 : "rope.dimension_count"));
    config["head_dim"] = headDim;
    if (file.find(keyLength) && file.find(ropeDims)) {
      int64_t rotary;
      MOE_ASSIGN_OR_RETURN(rotary,
                           integerKey(file, arch, "rope.dimension_count"));
      if (rotary != headDim)
        return makeError(file.path() + ": metadata " + quoted(ropeDims) +
                         " is " + Twine(rotary) + " but heads have " +
                         Twine(headDim) +
                         " dimensions; partial rotary embeddings are not "
                         "supported");
    }
  }
  double eps, theta;
  MOE_ASSIGN_OR_RETURN(
      eps, numberKey(file, arch, "attention.layer_norm_rms_epsilon"));
  MOE_ASSIGN_OR_RETURN(theta, numberKey(file, arch, "rope.freq_base", 10000.0));
  config["rms_norm_eps"] = eps;
  config["rope_theta"] = theta;

  // Rotary scaling: the scaling keys, or the older rope.scale_linear.
  std::string scalingType = (arch + ".rope.scaling.type").str();
  std::string scaleLinear = (arch + ".rope.scale_linear").str();
  if (const GGUFValue *type = file.find(scalingType)) {
    if (type->type != GGUFValue::String)
      return makeError(file.path() + ": metadata " + quoted(scalingType) +
                       " is not a string");
    if (type->string == "linear") {
      double factor;
      MOE_ASSIGN_OR_RETURN(factor,
                           numberKey(file, arch, "rope.scaling.factor"));
      config["rope_scaling"] =
          llvm::json::Object{{"rope_type", "linear"}, {"factor", factor}};
    } else if (type->string != "none") {
      return makeError(file.path() + ": metadata " + quoted(scalingType) +
                       " is " + quoted(type->string) +
                       "; only none and linear are supported");
    }
  } else if (file.find(scaleLinear)) {
    double factor;
    MOE_ASSIGN_OR_RETURN(factor, numberKey(file, arch, "rope.scale_linear"));
    if (factor != 1.0)
      config["rope_scaling"] =
          llvm::json::Object{{"rope_type", "linear"}, {"factor", factor}};
  }

  // The vocabulary: the architecture's key, else the token list, else the
  // embedding's rows.
  const GGUFTensorInfo *embedding = file.findTensor("token_embd.weight");
  if (!embedding || embedding->dims.size() != 2)
    return makeError(file.path() +
                     ": tensor 'token_embd.weight' is missing or not 2-D");
  int64_t vocab = embedding->dims[1];
  const GGUFValue *tokens = file.find("tokenizer.ggml.tokens");
  if (tokens && tokens->type == GGUFValue::Array)
    vocab = int64_t(tokens->count);
  MOE_ASSIGN_OR_RETURN(vocab, integerKey(file, arch, "vocab_size", vocab));
  config["vocab_size"] = vocab;
  config["tie_word_embeddings"] = !file.findTensor("output.weight");
  for (auto [key, field] :
       {std::pair("tokenizer.ggml.bos_token_id", "bos_token_id"),
        std::pair("tokenizer.ggml.eos_token_id", "eos_token_id")})
    if (const GGUFValue *value = file.find(key); value && value->isInteger())
      config[field] = value->integer;
  return config;
}
