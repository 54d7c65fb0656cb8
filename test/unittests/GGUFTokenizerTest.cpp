//===- GGUFTokenizerTest.cpp - Hugging Face tokenizers as GGUF metadata ---===//

#include "WeightsTestSupport.h"

#include "Tokenizer.h"

#include "moe/Weights/GGUF.h"
#include "moe/Weights/GGUFWriter.h"

#include "llvm/ADT/StringExtras.h"

using namespace mlir::moe;
using namespace mlir::moe::weights;
using namespace moe_test;

namespace {

/// A byte-level BPE tokenizer.json: four tokens, one merge, one special
/// added token, and `preTokenizer` (JSON) with the ByteLevel decoder.
std::string
byteLevelTokenizer(llvm::StringRef preTokenizer =
                       R"({"type": "ByteLevel", "add_prefix_space": false,
            "trim_offsets": true, "use_regex": true})",
                   llvm::StringRef modelExtra = "",
                   llvm::StringRef postProcessor = "null",
                   llvm::StringRef normalizer = "null") {
  return (R"({"version": "1.0",
  "added_tokens": [{"id": 4, "content": "<|endoftext|>", "special": true,
                    "normalized": false}],
  "normalizer": )" +
          normalizer + R"(,
  "pre_tokenizer": )" +
          preTokenizer + R"(,
  "post_processor": )" +
          postProcessor + R"(,
  "decoder": {"type": "ByteLevel", "add_prefix_space": true,
              "trim_offsets": true, "use_regex": true},
  "model": {"type": "BPE", "dropout": null, "unk_token": null,)" +
          modelExtra + R"(
            "vocab": {"a": 0, "b": 1, "ab": 2, "\u0120": 3},
            "merges": ["a b"]}})")
      .str();
}

/// Llama 3's pre-tokenizer as tokenizer.json spells it.
const char *const kLlama3PreTokenizer = R"({"type": "Sequence",
  "pretokenizers": [
    {"type": "Split", "pattern": {"Regex": "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}{1,3}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+"},
     "behavior": "Isolated", "invert": false},
    {"type": "ByteLevel", "add_prefix_space": false, "trim_offsets": true,
     "use_regex": false}]})";

/// A metadata array decoded from the file.
struct DecodedArray {
  uint32_t elementType = 0;
  std::vector<std::string> strings;
  std::vector<int32_t> integers;
};

/// A tokenizer folder converted, written as a GGUF file without tensors and
/// read back.
class ConvertedTokenizer {
public:
  explicit ConvertedTokenizer(const TempDir &dir) { convert(dir); }

  const GGUFValue *find(llvm::StringRef key) const {
    return file ? file->find(key) : nullptr;
  }
  std::string string(llvm::StringRef key) const {
    const GGUFValue *value = find(key);
    return value && value->type == GGUFValue::String ? value->string
                                                     : "<missing>";
  }
  int64_t integer(llvm::StringRef key) const {
    const GGUFValue *value = find(key);
    return value && value->isInteger() ? value->integer : -1;
  }
  /// A boolean as 0 or 1; -1 when missing or of another type.
  int flag(llvm::StringRef key) const {
    const GGUFValue *value = find(key);
    return value && value->type == GGUFValue::Bool ? int(value->integer) : -1;
  }
  DecodedArray array(llvm::StringRef key) const {
    DecodedArray result;
    const GGUFValue *value = find(key);
    if (!value || value->type != GGUFValue::Array)
      return result;
    llvm::Expected<std::string> bytes = file->readEncodedValue(*value);
    if (!bytes)
      return result;
    llvm::StringRef rest = *bytes;
    auto take = [&](size_t size) {
      llvm::StringRef head = rest.take_front(size);
      rest = rest.drop_front(size);
      return head;
    };
    result.elementType = llvm::support::endian::read32le(take(4).data());
    uint64_t count = llvm::support::endian::read64le(take(8).data());
    for (uint64_t index = 0; index < count; ++index) {
      if (result.elementType == GGUFValue::String) {
        uint64_t size = llvm::support::endian::read64le(take(8).data());
        result.strings.push_back(take(size).str());
      } else {
        result.integers.push_back(
            int32_t(llvm::support::endian::read32le(take(4).data())));
      }
    }
    return result;
  }

private:
  void convert(const TempDir &dir) {
    GGUFMetadata metadata;
    std::string error =
        errorText(gguf_export::addHuggingFaceTokenizer(dir.path(), metadata));
    ASSERT_EQ(error, "<success>");
    std::string path = dir.file("tokenizer.gguf");
    ASSERT_EQ(errorText(writeGGUF(path, std::move(metadata), {})), "<success>");
    auto opened = GGUFFile::open(path);
    ASSERT_TRUE(bool(opened)) << llvm::toString(opened.takeError());
    file = std::move(*opened);
  }

  std::unique_ptr<GGUFFile> file;
};

/// The error converting the folder `dir`.
std::string conversionError(const TempDir &dir) {
  GGUFMetadata metadata;
  return errorText(gguf_export::addHuggingFaceTokenizer(dir.path(), metadata));
}

TEST(GGUFTokenizerTest, ByteLevelBPEIsGpt2) {
  TempDir dir;
  writeFile(dir.file("tokenizer.json"), byteLevelTokenizer());
  writeFile(dir.file("tokenizer_config.json"),
            R"({"bos_token": "<|endoftext|>",
                "eos_token": {"content": "<|endoftext|>", "special": true},
                "unk_token": null, "chat_template": "{{ messages }}"})");
  ConvertedTokenizer converted(dir);
  EXPECT_EQ(converted.string("tokenizer.ggml.model"), "gpt2");
  EXPECT_EQ(converted.string("tokenizer.ggml.pre"), "gpt-2");
  DecodedArray tokens = converted.array("tokenizer.ggml.tokens");
  EXPECT_EQ(tokens.elementType, GGUFValue::String);
  EXPECT_EQ(tokens.strings, (std::vector<std::string>{"a", "b", "ab", "\u0120",
                                                      "<|endoftext|>"}));
  DecodedArray types = converted.array("tokenizer.ggml.token_type");
  EXPECT_EQ(types.elementType, GGUFValue::Int32);
  EXPECT_EQ(types.integers, (std::vector<int32_t>{1, 1, 1, 1, 3}));
  EXPECT_EQ(converted.array("tokenizer.ggml.merges").strings,
            std::vector<std::string>{"a b"});
  EXPECT_EQ(converted.integer("tokenizer.ggml.bos_token_id"), 4);
  EXPECT_EQ(converted.integer("tokenizer.ggml.eos_token_id"), 4);
  EXPECT_EQ(converted.find("tokenizer.ggml.unknown_token_id"), nullptr);
  EXPECT_EQ(converted.flag("tokenizer.ggml.add_bos_token"), 0);
  EXPECT_EQ(converted.flag("tokenizer.ggml.add_eos_token"), 0);
  EXPECT_EQ(converted.string("tokenizer.chat_template"), "{{ messages }}");
  // A scores array is SentencePiece's; the converter writes none for gpt2.
  EXPECT_EQ(converted.find("tokenizer.ggml.scores"), nullptr);
}

TEST(GGUFTokenizerTest, MergesAsPairsAreJoinedWithASpace) {
  TempDir dir;
  std::string json = byteLevelTokenizer();
  llvm::StringRef merges = R"("merges": ["a b"])";
  json.replace(json.find(merges.str()), merges.size(),
               R"("merges": [["a", "b"], ["ab", "\u0120"]])");
  writeFile(dir.file("tokenizer.json"), json);
  ConvertedTokenizer converted(dir);
  EXPECT_EQ(converted.array("tokenizer.ggml.merges").strings,
            (std::vector<std::string>{"a b", "ab \u0120"}));
}

TEST(GGUFTokenizerTest, IndividualDigitsBeforeByteLevelIsSmolLM) {
  TempDir dir;
  writeFile(dir.file("tokenizer.json"),
            byteLevelTokenizer(R"({"type": "Sequence", "pretokenizers": [
                {"type": "Digits", "individual_digits": true},
                {"type": "ByteLevel", "add_prefix_space": false,
                 "trim_offsets": true, "use_regex": true}]})"));
  EXPECT_EQ(ConvertedTokenizer(dir).string("tokenizer.ggml.pre"), "smollm");
}

TEST(GGUFTokenizerTest, Llama3SplitIsLlamaBpeAndAddsBos) {
  TempDir dir;
  writeFile(dir.file("tokenizer.json"),
            byteLevelTokenizer(kLlama3PreTokenizer, R"("ignore_merges": true,)",
                               R"({"type": "Sequence", "processors": [
                 {"type": "ByteLevel", "add_prefix_space": true,
                  "trim_offsets": false, "use_regex": true},
                 {"type": "TemplateProcessing",
                  "single": [{"SpecialToken": {"id": "<|endoftext|>",
                                               "type_id": 0}},
                             {"Sequence": {"id": "A", "type_id": 0}}],
                  "pair": [], "special_tokens": {}}]})"));
  writeFile(dir.file("tokenizer_config.json"),
            R"({"bos_token": "<|endoftext|>"})");
  ConvertedTokenizer converted(dir);
  EXPECT_EQ(converted.string("tokenizer.ggml.pre"), "llama-bpe");
  EXPECT_EQ(converted.flag("tokenizer.ggml.add_bos_token"), 1);
  EXPECT_EQ(converted.flag("tokenizer.ggml.add_eos_token"), 0);
}

TEST(GGUFTokenizerTest, Llama3SplitWithoutIgnoreMergesIsSmaug) {
  TempDir dir;
  writeFile(dir.file("tokenizer.json"),
            byteLevelTokenizer(kLlama3PreTokenizer));
  EXPECT_EQ(ConvertedTokenizer(dir).string("tokenizer.ggml.pre"), "smaug-bpe");
}

TEST(GGUFTokenizerTest, Qwen2SplitWithNFCIsQwen2) {
  TempDir dir;
  writeFile(dir.file("tokenizer.json"),
            byteLevelTokenizer(R"({"type": "Sequence", "pretokenizers": [
    {"type": "Split", "pattern": {"Regex": "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+"},
     "behavior": "Isolated", "invert": false},
    {"type": "ByteLevel", "add_prefix_space": false, "trim_offsets": false,
     "use_regex": false}]})",
                               "", "null", R"({"type": "NFC"})"));
  EXPECT_EQ(ConvertedTokenizer(dir).string("tokenizer.ggml.pre"), "qwen2");
}

TEST(GGUFTokenizerTest, AddedTokensAndPaddingToTheModelVocabSize) {
  TempDir dir;
  std::string json = byteLevelTokenizer();
  llvm::StringRef added = R"("normalized": false}],)";
  json.replace(json.find(added.str()), added.size(),
               R"("normalized": false},
      {"id": 6, "content": "<|im_start|>", "special": false},
      {"id": 7, "content": "<think>", "special": false}],)");
  writeFile(dir.file("tokenizer.json"), json);
  writeFile(dir.file("config.json"), R"({"vocab_size": 10})");
  ConvertedTokenizer converted(dir);
  // As convert_hf_to_gguf's get_vocab_base: unnamed ids are unused
  // "[PAD<id>]" tokens; "<|...|>" looks special and is a control token.
  EXPECT_EQ(converted.array("tokenizer.ggml.tokens").strings,
            (std::vector<std::string>{"a", "b", "ab", "\u0120", "<|endoftext|>",
                                      "[PAD5]", "<|im_start|>", "<think>",
                                      "[PAD8]", "[PAD9]"}));
  EXPECT_EQ(converted.array("tokenizer.ggml.token_type").integers,
            (std::vector<int32_t>{1, 1, 1, 1, 3, 5, 3, 4, 5, 5}));
}

TEST(GGUFTokenizerTest, SpecialIdsFromConfigJson) {
  TempDir dir;
  writeFile(dir.file("tokenizer.json"), byteLevelTokenizer());
  writeFile(dir.file("config.json"),
            R"({"bos_token_id": 4, "eos_token_id": [4, 2],
                "pad_token_id": 2})");
  ConvertedTokenizer converted(dir);
  EXPECT_EQ(converted.integer("tokenizer.ggml.bos_token_id"), 4);
  // A list of eos ids is skipped, as gguf-py's SpecialVocab skips it.
  EXPECT_EQ(converted.find("tokenizer.ggml.eos_token_id"), nullptr);
  EXPECT_EQ(converted.integer("tokenizer.ggml.padding_token_id"), 2);
}

TEST(GGUFTokenizerTest, TokenizerConfigFlagsOverrideThePostProcessor) {
  TempDir dir;
  writeFile(dir.file("tokenizer.json"), byteLevelTokenizer());
  writeFile(dir.file("tokenizer_config.json"),
            R"({"eos_token": "<|endoftext|>", "add_bos_token": true,
                "add_eos_token": true})");
  ConvertedTokenizer converted(dir);
  EXPECT_EQ(converted.flag("tokenizer.ggml.add_bos_token"), 1);
  EXPECT_EQ(converted.flag("tokenizer.ggml.add_eos_token"), 1);
}

TEST(GGUFTokenizerTest, ChatTemplateFromJinjaFile) {
  TempDir dir;
  writeFile(dir.file("tokenizer.json"), byteLevelTokenizer());
  writeFile(dir.file("tokenizer_config.json"), R"({})");
  writeFile(dir.file("chat_template.jinja"), "{% for m in messages %}");
  EXPECT_EQ(ConvertedTokenizer(dir).string("tokenizer.chat_template"),
            "{% for m in messages %}");
}

TEST(GGUFTokenizerTest, ChatTemplateFromJsonFile) {
  TempDir dir;
  writeFile(dir.file("tokenizer.json"), byteLevelTokenizer());
  writeFile(dir.file("chat_template.json"), R"({"chat_template": "J"})");
  EXPECT_EQ(ConvertedTokenizer(dir).string("tokenizer.chat_template"), "J");
}

TEST(GGUFTokenizerTest, ChatTemplateJsonWithoutATemplate) {
  TempDir dir;
  writeFile(dir.file("tokenizer.json"), byteLevelTokenizer());
  writeFile(dir.file("chat_template.json"), R"({"template": "J"})");
  EXPECT_CONTAINS(conversionError(dir), dir.file("chat_template.json") +
                                            ": chat_template is not a string");
}

TEST(GGUFTokenizerTest, NamedChatTemplates) {
  TempDir dir;
  writeFile(dir.file("tokenizer.json"), byteLevelTokenizer());
  writeFile(dir.file("tokenizer_config.json"),
            R"({"chat_template": [{"name": "default", "template": "D"},
                                  {"name": "tool_use", "template": "T"}]})");
  ConvertedTokenizer converted(dir);
  EXPECT_EQ(converted.string("tokenizer.chat_template"), "D");
  EXPECT_EQ(converted.string("tokenizer.chat_template.tool_use"), "T");
}

/// A folder that is refused: its files and a part of the message.
struct RefusedTokenizer {
  const char *what;
  std::string tokenizerJson;
  std::string tokenizerConfig, config;
  std::string message;
};

std::string replaced(std::string text, llvm::StringRef from,
                     llvm::StringRef to) {
  size_t at = text.find(from.str());
  EXPECT_NE(at, std::string::npos) << from.str();
  if (at != std::string::npos)
    text.replace(at, from.size(), to.str());
  return text;
}

TEST(GGUFTokenizerTest, RefusedTokenizersNameTheFileAndField) {
  std::string bpe = byteLevelTokenizer();
  std::string wordLevel = R"({"added_tokens": [],
      "normalizer": null, "pre_tokenizer": {"type": "WhitespaceSplit"},
      "post_processor": null, "decoder": null,
      "model": {"type": "WordLevel", "vocab": {"<unk>": 0, "w1": 1},
                "unk_token": "<unk>"}})";
  const RefusedTokenizer cases[] = {
      {"malformed JSON", "{\"model\": ", "", "", "tokenizer.json: "},
      {"no model", R"({"added_tokens": []})", "", "",
       "tokenizer.json: model is not an object with a string 'type'"},
      {"word level", wordLevel, "", "",
       "tokenizer.json: model.type 'WordLevel' is not converted: llama.cpp "
       "has no word-level tokenizer; its nearest, WPM ('bert'), appends the "
       "separator token whenever special tokens are added"},
      {"word piece",
       replaced(bpe, R"("type": "BPE")", R"("type": "WordPiece")"), "", "",
       "tokenizer.json: model.type 'WordPiece' is not converted: WordPiece "
       "(llama.cpp's 'bert') is not converted yet"},
      {"unigram", replaced(bpe, R"("type": "BPE")", R"("type": "Unigram")"), "",
       "", "model.type 'Unigram' is not converted: Unigram (llama.cpp's 't5')"},
      {"other model", replaced(bpe, R"("type": "BPE")", R"("type": "Magic")"),
       "", "", "model.type 'Magic' is not converted: llama.cpp has no such"},
      {"byte fallback",
       byteLevelTokenizer(R"({"type": "Metaspace"})",
                          R"("byte_fallback": true,)"),
       "", "",
       "tokenizer.json: model.byte_fallback is set: SentencePiece-style BPE"},
      {"decoder",
       replaced(bpe, R"("decoder": {"type": "ByteLevel")",
                R"("decoder": {"type": "Metaspace")"),
       "", "", "tokenizer.json: decoder 'Metaspace' is not ByteLevel"},
      {"decoder without type",
       replaced(bpe, R"("decoder": {"type": "ByteLevel")",
                R"("decoder": {"kind": "ByteLevel")"),
       "", "", "tokenizer.json: decoder is not an object with a string 'type'"},
      {"normalizer",
       byteLevelTokenizer(R"({"type": "ByteLevel", "use_regex": true})", "",
                          "null", R"({"type": "Lowercase"})"),
       "", "",
       "tokenizer.json: normalizer 'Lowercase' has no llama.cpp equivalent"},
      {"no pre-tokenizer", byteLevelTokenizer("null"), "", "",
       "tokenizer.json: pre_tokenizer is null"},
      {"unknown pre-tokenizer",
       byteLevelTokenizer(R"({"type": "Sequence", "pretokenizers": [
           {"type": "Split", "pattern": {"Regex": "\\p{N}{1,5}"},
            "behavior": "Isolated", "invert": false},
           {"type": "ByteLevel", "use_regex": false}]})"),
       "", "",
       "tokenizer.json: pre_tokenizer [Split(regex='\\\\p{N}{1,5}', "
       "behavior=Isolated), ByteLevel(use_regex=false)] with "
       "model.ignore_merges=false is none of the pre-tokenizers llama.cpp "
       "implements (gpt-2, smollm, llama-bpe, smaug-bpe, qwen2); llama.cpp "
       "would tokenize differently"},
      {"Sequence without steps", byteLevelTokenizer(R"({"type": "Sequence"})"),
       "", "",
       "tokenizer.json: pre_tokenizer Sequence has no 'pretokenizers' array"},
      {"prefix space",
       byteLevelTokenizer(R"({"type": "ByteLevel", "add_prefix_space": true})"),
       "", "", "tokenizer.json: pre_tokenizer ByteLevel adds a prefix space"},
      {"vocab not an object",
       replaced(bpe, R"("vocab": {"a": 0, "b": 1, "ab": 2, "\u0120": 3})",
                R"("vocab": [])"),
       "", "", "tokenizer.json: model.vocab is not an object"},
      {"negative id", replaced(bpe, R"("b": 1)", R"("b": -1)"), "", "",
       "tokenizer.json: model.vocab['b'] is not a token id"},
      {"id twice", replaced(bpe, R"("b": 1)", R"("b": 0)"), "", "",
       "id 0 is both 'a' and 'b'"},
      {"added token without id",
       replaced(bpe, R"({"id": 4, )", R"({"key": 4, )"), "", "",
       "tokenizer.json: added_tokens[0] has no integer 'id' and string "
       "'content'"},
      {"added token over a token",
       replaced(bpe, R"({"id": 4, )", R"({"id": 1, )"), "", "",
       "tokenizer.json: added_tokens[0]: id 1 is both '<|endoftext|>' and "
       "'b'"},
      {"vocab size too small", bpe, "", R"({"vocab_size": 4})",
       "tokenizer.json: added_tokens[0]: id 4 is not below config.json's "
       "vocab_size 4"},
      {"id beyond the tokens", replaced(bpe, R"("b": 1)", R"("b": 2000000000)"),
       "", "",
       "tokenizer.json: model.vocab['b']: id 2000000000 is not below the "
       "number of tokens, 5"},
      {"vocab size not a number", bpe, "", R"({"vocab_size": "5"})",
       "config.json: vocab_size is not a positive integer"},
      {"merges not an array",
       replaced(bpe, R"("merges": ["a b"])", R"("merges": "a b")"), "", "",
       "tokenizer.json: model.merges is not an array"},
      {"merge without a space",
       replaced(bpe, R"("merges": ["a b"])", R"("merges": ["ab"])"), "", "",
       "tokenizer.json: model.merges[0] 'ab' is not two tokens separated by "
       "a space"},
      {"merge of three",
       replaced(bpe, R"("merges": ["a b"])", R"("merges": [["a", "b", "c"]])"),
       "", "",
       "tokenizer.json: model.merges[0] is neither \"a b\" nor a pair of "
       "tokens"},
      {"merge with a space",
       replaced(bpe, R"("merges": ["a b"])", R"("merges": [["a c", "b"]])"), "",
       "",
       "tokenizer.json: model.merges[0] has a token with a space, which "
       "llama.cpp's \"a b\" merges cannot hold"},
      {"special token not in the vocabulary", bpe, R"({"eos_token": "</s>"})",
       "", "tokenizer_config.json: eos_token '</s>' is not a token of "},
      {"special token of another kind", bpe, R"({"eos_token": 4})", "",
       "tokenizer_config.json: eos_token is neither a string nor an object "
       "with a string 'content'"},
      {"config id out of range", bpe, "", R"({"eos_token_id": 9})",
       "config.json: eos_token_id 9 is not below the vocabulary size 5"},
      {"post-processor adds another first",
       byteLevelTokenizer(R"({"type": "ByteLevel", "use_regex": true})", "",
                          R"({"type": "TemplateProcessing",
               "single": [{"SpecialToken": {"id": "a", "type_id": 0}},
                          {"Sequence": {"id": "A", "type_id": 0}}]})"),
       R"({"bos_token": "<|endoftext|>"})", "",
       "tokenizer.json: post_processor adds 'a' first, which is not the bos "
       "token"},
      {"post-processor adds another last",
       byteLevelTokenizer(R"({"type": "ByteLevel", "use_regex": true})", "",
                          R"({"type": "TemplateProcessing",
               "single": [{"Sequence": {"id": "A", "type_id": 0}},
                          {"SpecialToken": {"id": "a", "type_id": 0}}]})"),
       "", "",
       "tokenizer.json: post_processor adds 'a' last, which is not the eos "
       "token"},
      {"template without single",
       byteLevelTokenizer(R"({"type": "ByteLevel", "use_regex": true})", "",
                          R"({"type": "TemplateProcessing"})"),
       "", "",
       "tokenizer.json: post_processor TemplateProcessing has no 'single' "
       "array"},
      {"post-processor Sequence without steps",
       byteLevelTokenizer(R"({"type": "ByteLevel", "use_regex": true})", "",
                          R"({"type": "Sequence"})"),
       "", "",
       "tokenizer.json: post_processor Sequence has no 'processors' array"},
      {"RoBERTa post-processor",
       byteLevelTokenizer(R"({"type": "ByteLevel", "use_regex": true})", "",
                          R"({"type": "RobertaProcessing"})"),
       "", "",
       "tokenizer.json: post_processor 'RobertaProcessing' is not converted"},
      {"chat template of another kind", bpe, R"({"chat_template": 3})", "",
       "tokenizer_config.json: chat_template is neither a string nor a list "
       "of named templates"},
      {"named template without a name", bpe,
       R"({"chat_template": [{"template": "T"}]})", "",
       "tokenizer_config.json: chat_template[0] has no string 'name' and "
       "'template'"},
      {"named template twice", bpe,
       R"({"chat_template": [{"name": "a", "template": "T"},
                             {"name": "a", "template": "U"}]})",
       "", "tokenizer_config.json: chat_template 'a' is given twice"},
  };
  for (const RefusedTokenizer &refused : cases) {
    SCOPED_TRACE(refused.what);
    TempDir dir;
    writeFile(dir.file("tokenizer.json"), refused.tokenizerJson);
    if (!refused.tokenizerConfig.empty())
      writeFile(dir.file("tokenizer_config.json"), refused.tokenizerConfig);
    if (!refused.config.empty())
      writeFile(dir.file("config.json"), refused.config);
    std::string message = conversionError(dir);
    EXPECT_NE(message, "<success>");
    // Errors start with the file they are about.
    EXPECT_TRUE(llvm::StringRef(message).starts_with(dir.path())) << message;
    EXPECT_CONTAINS(message, refused.message);
  }
}

TEST(GGUFTokenizerTest, AddedTokensNotAnArray) {
  TempDir dir;
  writeFile(dir.file("tokenizer.json"),
            replaced(byteLevelTokenizer(), R"("added_tokens": [)",
                     R"("added_tokens": {"x": 1}, "unused": [)"));
  EXPECT_CONTAINS(conversionError(dir), "added_tokens is not an array");
}

TEST(GGUFTokenizerTest, DuplicateTokenTextIsRefused) {
  TempDir dir;
  // A non-special added token repeating a vocabulary token under a new id.
  writeFile(dir.file("tokenizer.json"),
            replaced(byteLevelTokenizer(),
                     R"({"id": 4, "content": "<|endoftext|>")",
                     R"({"id": 4, "content": "ab")"));
  EXPECT_CONTAINS(conversionError(dir),
                  "tokenizer.json: token 'ab' has ids 2 and 4");
}

TEST(GGUFTokenizerTest, MissingTokenizerJson) {
  TempDir dir;
  EXPECT_CONTAINS(conversionError(dir),
                  dir.file("tokenizer.json") +
                      ": not found; the GGUF export converts the fast "
                      "tokenizer's tokenizer.json");
}

} // namespace
