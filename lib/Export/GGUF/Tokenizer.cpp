//===- Tokenizer.cpp - A Hugging Face tokenizer as GGUF metadata ----------===//
//
// What llama.cpp's converter (convert_hf_to_gguf.py: get_vocab_base,
// _set_vocab_gpt2; gguf-py's SpecialVocab) writes for a byte-level BPE
// tokenizer, computed from tokenizer.json without running the tokenizer:
// the converter picks `tokenizer.ggml.pre` by hashing the tokenization of a
// test text, we by matching the pre-tokenizer against the ones whose
// regexes llama.cpp implements (llm_tokenizer_bpe in src/llama-vocab.cpp).
//
//===----------------------------------------------------------------------===//

#include "Tokenizer.h"

#include "moe/Support/Errors.h"
#include "moe/Support/RegularFile.h"
#include "moe/Support/StrictJson.h"

#include "llvm/ADT/StringExtras.h"
#include "llvm/ADT/StringMap.h"
#include "llvm/Support/FileSystem.h"
#include "llvm/Support/Path.h"

using namespace mlir::moe;
using llvm::Error;
using llvm::StringRef;
using llvm::Twine;
namespace json = llvm::json;

namespace {

/// llama.cpp's llama_token_type (the values of tokenizer.ggml.token_type).
enum class TokenType : int32_t {
  Normal = 1,
  Control = 3,
  UserDefined = 4,
  Unused = 5,
};

/// A JSON file that was read, so that errors name it.
struct JsonFile {
  std::string path;
  json::Object object;

  Error error(const Twine &message) const {
    return makeError(path + ": " + message);
  }
};

/// A byte-level BPE pre-tokenizer llama.cpp implements: the steps of the
/// tokenizer.json pre-tokenizer (as describePreTokenizer spells them) whose
/// splits equal the regexes of llama.cpp's pre-tokenizer `name`.
struct KnownPreTokenizer {
  StringRef name;
  llvm::ArrayRef<StringRef> steps;
  /// llama.cpp sets ignore_merges for this name; model.ignore_merges must
  /// agree, or words in the vocabulary would be split differently.
  bool ignoreMerges;
};

/// One of tokenizer_config.json's special tokens and its GGUF key.
struct SpecialToken {
  StringRef name, ggufKey;
};

} // namespace

// The Split regexes as tokenizer.json stores them (llama.cpp's comments
// "original regex from tokenizer.json" in llm_tokenizer_bpe).
static constexpr StringRef kLlama3Regex =
    "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}{1,3}| "
    "?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+";
static constexpr StringRef kQwen2Regex =
    "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}| "
    "?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+";

static const StringRef kGpt2Steps[] = {"ByteLevel(use_regex=true)"};
static const StringRef kSmolLMSteps[] = {"Digits(individual_digits=true)",
                                         "ByteLevel(use_regex=true)"};
static const std::string kLlama3Split =
    "Split(regex=" + quoted(kLlama3Regex) + ", behavior=Isolated)";
static const std::string kQwen2Split =
    "Split(regex=" + quoted(kQwen2Regex) + ", behavior=Isolated)";
static const StringRef kLlama3Steps[] = {kLlama3Split,
                                         "ByteLevel(use_regex=false)"};
static const StringRef kQwen2Steps[] = {kQwen2Split,
                                        "ByteLevel(use_regex=false)"};

// ByteLevel's own regex is llama.cpp's "gpt-2" one; Digits(individual) adds
// its "\p{N}" split first ("smollm", shared with "starcoder"); "smaug-bpe"
// has Llama 3's regex without ignore_merges.
static const KnownPreTokenizer kKnownPreTokenizers[] = {
    {"gpt-2", kGpt2Steps, false},      {"smollm", kSmolLMSteps, false},
    {"llama-bpe", kLlama3Steps, true}, {"smaug-bpe", kLlama3Steps, false},
    {"qwen2", kQwen2Steps, false},
};

// The special tokens of gguf-py's SpecialVocab that llama.cpp reads (its
// key for the separator keeps llama.cpp's spelling).
static const SpecialToken kSpecialTokens[] = {
    {"bos", "tokenizer.ggml.bos_token_id"},
    {"eos", "tokenizer.ggml.eos_token_id"},
    {"unk", "tokenizer.ggml.unknown_token_id"},
    {"sep", "tokenizer.ggml.seperator_token_id"},
    {"pad", "tokenizer.ggml.padding_token_id"},
    {"mask", "tokenizer.ggml.mask_token_id"},
};

static std::string joinPath(StringRef directory, StringRef name) {
  llvm::SmallString<256> path(directory);
  llvm::sys::path::append(path, name);
  return path.str().str();
}

/// The JSON object in `directory`/`name`, or std::nullopt when there is no
/// such file.
static llvm::Expected<std::optional<JsonFile>>
readOptionalJson(StringRef directory, StringRef name) {
  std::string path = joinPath(directory, name);
  if (!llvm::sys::fs::exists(path))
    return std::nullopt;
  llvm::Expected<json::Object> object = readJsonObjectFile(path);
  if (!object)
    return object.takeError();
  return JsonFile{std::move(path), std::move(*object)};
}

/// The type of a tokenizer.json component (`{"type": ...}`); empty for null.
static llvm::Expected<std::string> componentType(const JsonFile &file,
                                                 const json::Value *component,
                                                 StringRef field) {
  if (!component || component->kind() == json::Value::Null)
    return "";
  const json::Object *object = component->getAsObject();
  std::optional<StringRef> type =
      object ? object->getString("type") : std::nullopt;
  if (!type)
    return file.error(field + " is not an object with a string 'type'");
  return type->str();
}

/// Appends the steps of the pre-tokenizer `value` (Sequences flattened) to
/// `steps`, spelled with the options that change how text is split.
static Error describePreTokenizer(const JsonFile &file,
                                  const json::Value &value,
                                  std::vector<std::string> &steps) {
  StringRef field = "pre_tokenizer";
  llvm::Expected<std::string> type = componentType(file, &value, field);
  if (!type)
    return type.takeError();
  const json::Object *object = value.getAsObject();
  if (*type == "Sequence") {
    const json::Array *parts = object->getArray("pretokenizers");
    if (!parts)
      return file.error("pre_tokenizer Sequence has no 'pretokenizers' array");
    for (const json::Value &part : *parts)
      MOE_RETURN_IF_ERROR(describePreTokenizer(file, part, steps));
    return Error::success();
  }
  if (*type == "ByteLevel") {
    // llama.cpp never adds a prefix space to a BPE text.
    if (object->getBoolean("add_prefix_space").value_or(false))
      return file.error("pre_tokenizer ByteLevel adds a prefix space, which "
                        "llama.cpp's BPE tokenizer does not");
    bool useRegex = object->getBoolean("use_regex").value_or(true);
    steps.push_back(
        ("ByteLevel(use_regex=" + Twine(useRegex ? "true" : "false") + ")")
            .str());
    return Error::success();
  }
  if (*type == "Digits") {
    bool individual = object->getBoolean("individual_digits").value_or(false);
    steps.push_back(("Digits(individual_digits=" +
                     Twine(individual ? "true" : "false") + ")")
                        .str());
    return Error::success();
  }
  if (*type == "Split") {
    const json::Object *pattern = object->getObject("pattern");
    std::optional<StringRef> regex =
        pattern ? pattern->getString("Regex") : std::nullopt;
    std::optional<StringRef> literal =
        pattern ? pattern->getString("String") : std::nullopt;
    std::string behavior = object->getString("behavior").value_or("").str();
    if (object->getBoolean("invert").value_or(false))
      behavior += ", inverted";
    if (regex)
      steps.push_back("Split(regex=" + quoted(*regex) +
                      ", behavior=" + behavior + ")");
    else
      steps.push_back("Split(string=" + quoted(literal.value_or("")) +
                      ", behavior=" + behavior + ")");
    return Error::success();
  }
  steps.push_back(*type);
  return Error::success();
}

/// llama.cpp's name for the pre-tokenizer of tokenizer.json `file`.
static llvm::Expected<StringRef> matchPreTokenizer(const JsonFile &file,
                                                   const json::Object &model) {
  const json::Value *value = file.object.get("pre_tokenizer");
  if (!value || value->kind() == json::Value::Null)
    return file.error("pre_tokenizer is null; llama.cpp's byte-level BPE "
                      "always pre-tokenizes, so it would tokenize differently");
  std::vector<std::string> steps;
  MOE_RETURN_IF_ERROR(describePreTokenizer(file, *value, steps));
  bool ignoreMerges = model.getBoolean("ignore_merges").value_or(false);
  for (const KnownPreTokenizer &known : kKnownPreTokenizers)
    if (llvm::equal(known.steps, steps) && known.ignoreMerges == ignoreMerges)
      return known.name;
  return file.error(
      "pre_tokenizer [" + llvm::join(steps, ", ") +
      "] with model.ignore_merges=" + (ignoreMerges ? "true" : "false") +
      " is none of the pre-tokenizers llama.cpp implements "
      "(gpt-2, smollm, llama-bpe, smaug-bpe, qwen2); llama.cpp "
      "would tokenize differently");
}

/// What convert_hf_to_gguf.py's does_token_look_special calls a control
/// token although tokenizer.json does not mark it special.
static bool looksSpecial(StringRef text) {
  return text == "<pad>" || text == "<mask>" || text == "<2mass>" ||
         text == "[@BOS@]" ||
         (text.starts_with("<|") && text.ends_with("|>")) ||
         (text.starts_with("<\xef\xbd\x9c") &&
          text.ends_with("\xef\xbd\x9c>")) ||
         (text.starts_with("<unused") && text.ends_with(">"));
}

/// A token id of a JSON file: an integer in [0, INT32_MAX).
static llvm::Expected<int32_t>
tokenId(const JsonFile &file, const json::Value &value, const Twine &field) {
  std::optional<int64_t> id = value.getAsInteger();
  if (!id || *id < 0 || *id >= INT32_MAX)
    return file.error(field + " is not a token id (an integer from 0)");
  return int32_t(*id);
}

namespace {
/// The vocabulary as llama.cpp stores it: one token and type per id.
struct Vocabulary {
  std::vector<std::string> tokens;
  std::vector<int32_t> types;
  /// The id of each token text.
  llvm::StringMap<int32_t> ids;
};
} // namespace

/// config.json's vocab_size (the rows of the embedding), if it has one.
static llvm::Expected<std::optional<int32_t>>
readVocabSize(const std::optional<JsonFile> &config) {
  const json::Value *size = config ? config->object.get("vocab_size") : nullptr;
  if (!size)
    return std::nullopt;
  std::optional<int64_t> vocabSize = size->getAsInteger();
  if (!vocabSize || *vocabSize <= 0 || *vocabSize >= INT32_MAX)
    return config->error("vocab_size is not a positive integer");
  return int32_t(*vocabSize);
}

/// The tokens of tokenizer.json's model.vocab and added_tokens by id, typed
/// as get_vocab_base does; ids up to config.json's vocab_size that neither
/// names become unused "[PAD<id>]" tokens, as there.
static llvm::Expected<Vocabulary>
readVocabulary(const JsonFile &file, const json::Object &model,
               const std::optional<JsonFile> &config) {
  const json::Object *vocab = model.getObject("vocab");
  if (!vocab)
    return file.error("model.vocab is not an object");
  const json::Array *added = nullptr;
  if (const json::Value *value = file.object.get("added_tokens")) {
    added = value->getAsArray();
    if (!added)
      return file.error("added_tokens is not an array");
  }
  std::optional<int32_t> vocabSize;
  MOE_ASSIGN_OR_RETURN(vocabSize, readVocabSize(config));
  // Ids are bounded before a table is sized by them.
  uint64_t idLimit =
      vocabSize ? uint64_t(*vocabSize)
                : uint64_t(vocab->size()) + (added ? added->size() : 0);
  std::string limitName =
      vocabSize ? "config.json's vocab_size " + std::to_string(*vocabSize)
                : "the number of tokens, " + std::to_string(idLimit);

  std::vector<std::optional<std::string>> byId;
  std::vector<TokenType> types;
  auto place = [&](int32_t id, StringRef text, TokenType type,
                   const Twine &field) -> Error {
    if (uint64_t(id) >= idLimit)
      return file.error(field + ": id " + Twine(id) + " is not below " +
                        limitName);
    if (size_t(id) >= byId.size()) {
      byId.resize(id + 1);
      types.resize(id + 1, TokenType::Unused);
    }
    if (byId[id] && *byId[id] != text) {
      // In text order: model.vocab is read in no particular order.
      StringRef known = *byId[id];
      auto [first, second] = std::minmax(known, text);
      return file.error(field + ": id " + Twine(id) + " is both " +
                        quoted(first) + " and " + quoted(second));
    }
    byId[id] = text.str();
    types[id] = type;
    return Error::success();
  };
  for (const auto &[text, value] : *vocab) {
    std::string field = "model.vocab[" + quoted(text) + "]";
    llvm::Expected<int32_t> id = tokenId(file, value, field);
    if (!id)
      return id.takeError();
    MOE_RETURN_IF_ERROR(place(*id, text, TokenType::Normal, field));
  }
  for (auto [index, entry] : llvm::enumerate(added ? *added : json::Array())) {
    std::string field = ("added_tokens[" + Twine(index) + "]").str();
    const json::Object *object = entry.getAsObject();
    const json::Value *idValue = object ? object->get("id") : nullptr;
    std::optional<StringRef> content =
        object ? object->getString("content") : std::nullopt;
    if (!idValue || !content)
      return file.error(field + " has no integer 'id' and string 'content'");
    llvm::Expected<int32_t> id = tokenId(file, *idValue, field + ".id");
    if (!id)
      return id.takeError();
    bool special = object->getBoolean("special").value_or(false);
    TokenType type = special || looksSpecial(*content) ? TokenType::Control
                                                       : TokenType::UserDefined;
    MOE_RETURN_IF_ERROR(place(*id, *content, type, field));
  }
  if (vocabSize) {
    byId.resize(*vocabSize);
    types.resize(*vocabSize, TokenType::Unused);
  }

  Vocabulary result;
  for (auto [id, text] : llvm::enumerate(byId)) {
    std::string token = text ? *text : ("[PAD" + Twine(id) + "]").str();
    auto [it, inserted] = result.ids.try_emplace(token, int32_t(id));
    // llama.cpp refuses a vocabulary with a token twice.
    if (!inserted)
      return file.error("token " + quoted(token) + " has ids " +
                        Twine(it->second) + " and " + Twine(id));
    result.tokens.push_back(std::move(token));
    result.types.push_back(int32_t(types[id]));
  }
  return result;
}

/// model.merges as "left right" strings, from either spelling tokenizer.json
/// uses ("a b" or ["a", "b"]).
static llvm::Expected<std::vector<std::string>>
readMerges(const JsonFile &file, const json::Object &model) {
  const json::Array *merges = model.getArray("merges");
  if (!merges)
    return file.error("model.merges is not an array");
  std::vector<std::string> result;
  result.reserve(merges->size());
  for (auto [index, merge] : llvm::enumerate(*merges)) {
    std::string field = ("model.merges[" + Twine(index) + "]").str();
    if (std::optional<StringRef> text = merge.getAsString()) {
      // llama.cpp splits a merge at its first space after the first byte.
      if (text->size() < 3 || text->find(' ', 1) == StringRef::npos)
        return file.error(field + " " + quoted(*text) +
                          " is not two tokens separated by a space");
      result.push_back(text->str());
      continue;
    }
    const json::Array *pair = merge.getAsArray();
    std::optional<StringRef> left, right;
    if (pair && pair->size() == 2) {
      left = (*pair)[0].getAsString();
      right = (*pair)[1].getAsString();
    }
    if (!left || !right || left->empty() || right->empty())
      return file.error(field + " is neither \"a b\" nor a pair of tokens");
    if (left->contains(' ') || right->contains(' '))
      return file.error(field + " has a token with a space, which llama.cpp's "
                                "\"a b\" merges cannot hold");
    result.push_back((*left + " " + *right).str());
  }
  return result;
}

/// The text of tokenizer_config.json's `<name>_token`: a string or an
/// AddedToken object; std::nullopt when absent or null.
static llvm::Expected<std::optional<std::string>>
specialTokenText(const JsonFile &config, StringRef name) {
  std::string field = (name + "_token").str();
  const json::Value *value = config.object.get(field);
  if (!value || value->kind() == json::Value::Null)
    return std::nullopt;
  if (std::optional<StringRef> text = value->getAsString())
    return text->str();
  if (const json::Object *object = value->getAsObject())
    if (std::optional<StringRef> content = object->getString("content"))
      return content->str();
  return config.error(field + " is neither a string nor an object with a "
                              "string 'content'");
}

/// Whether the post-processor adds `name`'s token first (bos) or last
/// (eos), read from a TemplateProcessing as SpecialVocab does.
struct AddedSpecials {
  bool bos = false, eos = false;
};

static llvm::Expected<AddedSpecials>
readPostProcessor(const JsonFile &file, const json::Value *value,
                  const std::optional<std::string> &bos,
                  const std::optional<std::string> &eos) {
  AddedSpecials result;
  llvm::Expected<std::string> type =
      componentType(file, value, "post_processor");
  if (!type)
    return type.takeError();
  if (type->empty() || *type == "ByteLevel")
    return result;
  const json::Object *object = value->getAsObject();
  if (*type == "Sequence") {
    const json::Array *parts = object->getArray("processors");
    if (!parts)
      return file.error("post_processor Sequence has no 'processors' array");
    for (const json::Value &part : *parts) {
      llvm::Expected<AddedSpecials> added =
          readPostProcessor(file, &part, bos, eos);
      if (!added)
        return added.takeError();
      result.bos |= added->bos;
      result.eos |= added->eos;
    }
    return result;
  }
  if (*type != "TemplateProcessing")
    return file.error("post_processor " + quoted(*type) +
                      " is not converted (llama.cpp can only add bos and eos)");
  const json::Array *single = object->getArray("single");
  if (!single)
    return file.error("post_processor TemplateProcessing has no 'single' "
                      "array");
  auto specialAt = [&](size_t index) -> std::optional<std::string> {
    const json::Object *piece = (*single)[index].getAsObject();
    const json::Object *special =
        piece ? piece->getObject("SpecialToken") : nullptr;
    std::optional<StringRef> id =
        special ? special->getString("id") : std::nullopt;
    return id ? std::optional<std::string>(id->str()) : std::nullopt;
  };
  if (single->size() < 2)
    return result;
  if (std::optional<std::string> first = specialAt(0)) {
    if (*first != bos)
      return file.error("post_processor adds " + quoted(*first) +
                        " first, which is not the bos token; llama.cpp can "
                        "only add bos there");
    result.bos = true;
  }
  if (std::optional<std::string> last = specialAt(single->size() - 1)) {
    if (*last != eos)
      return file.error("post_processor adds " + quoted(*last) +
                        " last, which is not the eos token; llama.cpp can "
                        "only add eos there");
    result.eos = true;
  }
  return result;
}

/// The special token ids, add_bos/add_eos and chat template of
/// tokenizer_config.json, config.json and chat_template.jinja, as gguf-py's
/// SpecialVocab finds them.
static Error addSpecialTokens(StringRef directory, const JsonFile &tokenizer,
                              const std::optional<JsonFile> &tokenizerConfig,
                              const std::optional<JsonFile> &config,
                              const Vocabulary &vocabulary,
                              weights::GGUFMetadata &metadata) {
  llvm::StringMap<std::string> texts;
  for (const SpecialToken &special : kSpecialTokens) {
    std::optional<int32_t> id;
    if (tokenizerConfig) {
      llvm::Expected<std::optional<std::string>> text =
          specialTokenText(*tokenizerConfig, special.name);
      if (!text)
        return text.takeError();
      if (*text) {
        auto it = vocabulary.ids.find(**text);
        if (it == vocabulary.ids.end())
          return tokenizerConfig->error(special.name + "_token " +
                                        quoted(**text) + " is not a token of " +
                                        tokenizer.path);
        id = it->second;
        texts[special.name] = **text;
      }
    }
    // config.json's ids are the fallback; a list of ids (several eos) is
    // skipped there too.
    std::string idField = (special.name + "_token_id").str();
    const json::Value *idValue = config ? config->object.get(idField) : nullptr;
    if (!id && idValue && idValue->getAsInteger()) {
      llvm::Expected<int32_t> configId = tokenId(*config, *idValue, idField);
      if (!configId)
        return configId.takeError();
      if (size_t(*configId) >= vocabulary.tokens.size())
        return config->error(idField + " " + Twine(*configId) +
                             " is not below the vocabulary size " +
                             Twine(vocabulary.tokens.size()));
      id = *configId;
      texts[special.name] = vocabulary.tokens[*id];
    }
    if (id)
      metadata.addUInt32(special.ggufKey, *id);
  }

  auto textOf = [&](StringRef name) -> std::optional<std::string> {
    auto it = texts.find(name);
    return it == texts.end() ? std::nullopt
                             : std::optional<std::string>(it->second);
  };
  llvm::Expected<AddedSpecials> added =
      readPostProcessor(tokenizer, tokenizer.object.get("post_processor"),
                        textOf("bos"), textOf("eos"));
  if (!added)
    return added.takeError();
  bool addBos = added->bos, addEos = added->eos;
  if (tokenizerConfig) {
    addBos =
        tokenizerConfig->object.getBoolean("add_bos_token").value_or(addBos);
    addEos =
        tokenizerConfig->object.getBoolean("add_eos_token").value_or(addEos);
  }
  // Written even when false: llama.cpp's defaults differ by pre-tokenizer.
  metadata.addBool("tokenizer.ggml.add_bos_token", addBos);
  metadata.addBool("tokenizer.ggml.add_eos_token", addEos);

  const json::Value *chatTemplate =
      tokenizerConfig ? tokenizerConfig->object.get("chat_template") : nullptr;
  if (chatTemplate && chatTemplate->kind() != json::Value::Null) {
    if (std::optional<StringRef> text = chatTemplate->getAsString()) {
      metadata.addString("tokenizer.chat_template", *text);
      return Error::success();
    }
    const json::Array *named = chatTemplate->getAsArray();
    if (!named)
      return tokenizerConfig->error("chat_template is neither a string nor a "
                                    "list of named templates");
    for (auto [index, entry] : llvm::enumerate(*named)) {
      const json::Object *object = entry.getAsObject();
      std::optional<StringRef> name =
          object ? object->getString("name") : std::nullopt;
      std::optional<StringRef> text =
          object ? object->getString("template") : std::nullopt;
      if (!name || !text)
        return tokenizerConfig->error("chat_template[" + Twine(index) +
                                      "] has no string 'name' and 'template'");
      std::string key = *name == "default"
                            ? std::string("tokenizer.chat_template")
                            : ("tokenizer.chat_template." + *name).str();
      if (metadata.contains(key))
        return tokenizerConfig->error("chat_template " + quoted(*name) +
                                      " is given twice");
      metadata.addString(key, *text);
    }
    return Error::success();
  }
  // transformers 5 saves the template beside tokenizer_config.json, older
  // versions' processors in chat_template.json.
  std::string jinjaPath = joinPath(directory, "chat_template.jinja");
  if (llvm::sys::fs::exists(jinjaPath)) {
    llvm::Expected<std::string> text =
        readRegularFile(jinjaPath, weights::kMaxGGUFStringSize);
    if (!text)
      return text.takeError();
    metadata.addString("tokenizer.chat_template", *text);
    return Error::success();
  }
  llvm::Expected<std::optional<JsonFile>> templateFile =
      readOptionalJson(directory, "chat_template.json");
  if (!templateFile)
    return templateFile.takeError();
  if (!*templateFile)
    return Error::success();
  std::optional<StringRef> text =
      (*templateFile)->object.getString("chat_template");
  if (!text)
    return (*templateFile)->error("chat_template is not a string");
  metadata.addString("tokenizer.chat_template", *text);
  return Error::success();
}

/// Why a tokenizer.json model type is not converted.
static StringRef whyNotConverted(StringRef type) {
  if (type == "WordLevel")
    return "llama.cpp has no word-level tokenizer; its nearest, WPM "
           "('bert'), appends the separator token whenever special tokens "
           "are added, splits off punctuation and lowercases by default, so "
           "it would tokenize differently";
  if (type == "WordPiece")
    return "WordPiece (llama.cpp's 'bert') is not converted yet";
  if (type == "Unigram")
    return "Unigram (llama.cpp's 't5') is not converted yet";
  return "llama.cpp has no such tokenizer";
}

Error mlir::moe::gguf_export::addHuggingFaceTokenizer(
    StringRef directory, weights::GGUFMetadata &metadata) {
  std::string tokenizerPath = joinPath(directory, "tokenizer.json");
  if (!llvm::sys::fs::exists(tokenizerPath))
    return makeError(tokenizerPath +
                     ": not found; the GGUF export converts the fast "
                     "tokenizer's tokenizer.json (a SentencePiece "
                     "tokenizer.model alone is not converted)");
  llvm::Expected<json::Object> tokenizerObject =
      readJsonObjectFile(tokenizerPath);
  if (!tokenizerObject)
    return tokenizerObject.takeError();
  JsonFile tokenizer{tokenizerPath, std::move(*tokenizerObject)};
  llvm::Expected<std::optional<JsonFile>> tokenizerConfig =
      readOptionalJson(directory, "tokenizer_config.json");
  if (!tokenizerConfig)
    return tokenizerConfig.takeError();
  llvm::Expected<std::optional<JsonFile>> config =
      readOptionalJson(directory, "config.json");
  if (!config)
    return config.takeError();

  const json::Object *model = tokenizer.object.getObject("model");
  std::optional<StringRef> modelType =
      model ? model->getString("type") : std::nullopt;
  if (!modelType)
    return tokenizer.error("model is not an object with a string 'type'");
  if (*modelType != "BPE")
    return tokenizer.error("model.type " + quoted(*modelType) +
                           " is not converted: " + whyNotConverted(*modelType));
  // Llama 2 / Mistral style: SentencePiece pieces with byte fallback.
  if (model->getBoolean("byte_fallback").value_or(false))
    return tokenizer.error(
        "model.byte_fallback is set: SentencePiece-style BPE "
        "(llama.cpp's 'llama' tokenizer) is not converted "
        "yet; only byte-level BPE is");
  llvm::Expected<std::string> decoder =
      componentType(tokenizer, tokenizer.object.get("decoder"), "decoder");
  if (!decoder)
    return decoder.takeError();
  if (*decoder != "ByteLevel")
    return tokenizer.error("decoder " + quoted(*decoder) +
                           " is not ByteLevel: only byte-level BPE is "
                           "converted");
  llvm::Expected<std::string> normalizer = componentType(
      tokenizer, tokenizer.object.get("normalizer"), "normalizer");
  if (!normalizer)
    return normalizer.takeError();
  // llama.cpp does not normalise BPE input; NFC (Qwen2) changes no text a
  // byte-level vocabulary was trained on, and llama.cpp's converter takes it.
  if (!normalizer->empty() && *normalizer != "NFC")
    return tokenizer.error("normalizer " + quoted(*normalizer) +
                           " has no llama.cpp equivalent for BPE");

  llvm::Expected<StringRef> pre = matchPreTokenizer(tokenizer, *model);
  if (!pre)
    return pre.takeError();
  llvm::Expected<Vocabulary> vocabulary =
      readVocabulary(tokenizer, *model, *config);
  if (!vocabulary)
    return vocabulary.takeError();
  llvm::Expected<std::vector<std::string>> merges =
      readMerges(tokenizer, *model);
  if (!merges)
    return merges.takeError();

  metadata.addString("tokenizer.ggml.model", "gpt2");
  metadata.addString("tokenizer.ggml.pre", *pre);
  metadata.addStringArray("tokenizer.ggml.tokens", vocabulary->tokens);
  metadata.addInt32Array("tokenizer.ggml.token_type", vocabulary->types);
  metadata.addStringArray("tokenizer.ggml.merges", *merges);
  return addSpecialTokens(directory, tokenizer, *tokenizerConfig, *config,
                          *vocabulary, metadata);
}
