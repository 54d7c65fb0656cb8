//===- GGUFTest.cpp - GGUF files, dequantisation, llama checkpoints -------===//

#include "WeightsTestSupport.h"

#include "moe/Weights/Checkpoint.h"
#include "moe/Weights/GGUF.h"
#include "moe/Weights/GGUFModel.h"

#include <cmath>

using namespace mlir::moe::weights;
using namespace moe_test;

namespace {

void appendU32(std::string &out, uint32_t value) {
  char bytes[4];
  llvm::support::endian::write32le(bytes, value);
  out.append(bytes, 4);
}

void appendU64(std::string &out, uint64_t value) {
  char bytes[8];
  llvm::support::endian::write64le(bytes, value);
  out.append(bytes, 8);
}

void appendString(std::string &out, llvm::StringRef text) {
  appendU64(out, text.size());
  out += text.str();
}

/// A GGUF file made by hand: metadata and tensors in order, data aligned to
/// 32 bytes.
struct GGUFBuilder {
  std::string values, infos, data;
  uint64_t valueCount = 0, tensorCount = 0;

  GGUFBuilder &raw(llvm::StringRef key, uint32_t type, std::string payload) {
    appendString(values, key);
    appendU32(values, type);
    values += payload;
    ++valueCount;
    return *this;
  }
  GGUFBuilder &u32(llvm::StringRef key, uint32_t value) {
    std::string payload;
    appendU32(payload, value);
    return raw(key, GGUFValue::UInt32, payload);
  }
  GGUFBuilder &f32(llvm::StringRef key, float value) {
    std::string payload;
    appendU32(payload, llvm::bit_cast<uint32_t>(value));
    return raw(key, GGUFValue::Float32, payload);
  }
  GGUFBuilder &str(llvm::StringRef key, llvm::StringRef value) {
    std::string payload;
    appendString(payload, value);
    return raw(key, GGUFValue::String, payload);
  }
  GGUFBuilder &tensor(llvm::StringRef name, std::vector<uint64_t> dims,
                      uint32_t type, const std::string &bytes) {
    appendString(infos, name);
    appendU32(infos, dims.size());
    for (uint64_t dim : dims)
      appendU64(infos, dim);
    appendU32(infos, type);
    appendU64(infos, data.size());
    data += bytes;
    data.resize(llvm::alignTo(data.size(), 32), '\0');
    ++tensorCount;
    return *this;
  }
  GGUFBuilder &f32Tensor(llvm::StringRef name, std::vector<uint64_t> dims,
                         const std::vector<float> &values) {
    std::string bytes(values.size() * 4, '\0');
    convertFromF32(DType::F32, values.data(),
                   reinterpret_cast<uint8_t *>(bytes.data()), values.size());
    return tensor(name, std::move(dims), 0, bytes);
  }
  std::string header(uint32_t version = 3) const {
    std::string out = "GGUF";
    appendU32(out, version);
    appendU64(out, tensorCount);
    appendU64(out, valueCount);
    return out + values + infos;
  }
  std::string bytes() const {
    std::string out = header();
    out.resize(llvm::alignTo(out.size(), 32), '\0');
    return out + data;
  }
};

/// Bytes from a list of small integers.
std::string blockOf(std::initializer_list<int> bytes) {
  std::string out;
  for (int byte : bytes)
    out += char(uint8_t(byte));
  return out;
}

std::vector<float> dequantized(GGMLType type, const std::string &block) {
  std::vector<float> result(ggmlBlockLayout(type).elements);
  dequantizeBlocks(type, reinterpret_cast<const uint8_t *>(block.data()),
                   result.data(), 1);
  return result;
}

// f16 bit patterns.
constexpr int kHalfOneLow = 0x00, kHalfOneHigh = 0x3C; // 1.0
constexpr int kHalfHalfHigh = 0x38;                    // 0.5
constexpr int kHalfTwoHigh = 0x40;                     // 2.0
constexpr int kHalfQuarterHigh = 0x34;                 // 0.25
constexpr int kHalfMinusOneHigh = 0xBC;                // -1.0

TEST(GGUFDequantize, Q8_0) {
  std::string block = blockOf({0, kHalfHalfHigh});
  block += blockOf({0xFD, 0, 127, 0x80}); // -3, 0, 127, -128
  block.resize(34, '\0');
  std::vector<float> values = dequantized(GGMLType::Q8_0, block);
  EXPECT_EQ(values[0], -1.5f);
  EXPECT_EQ(values[1], 0.0f);
  EXPECT_EQ(values[2], 63.5f);
  EXPECT_EQ(values[3], -64.0f);
  EXPECT_EQ(values[31], 0.0f);
}

TEST(GGUFDequantize, Q4_0) {
  // Element i is the low nibble of byte i, element i + 16 the high one,
  // both less 8, times d = 2.
  std::string block = blockOf({0, kHalfTwoHigh, 0x1F});
  block.resize(18, char(0x88));
  std::vector<float> values = dequantized(GGMLType::Q4_0, block);
  EXPECT_EQ(values[0], 14.0f);
  EXPECT_EQ(values[16], -14.0f);
  EXPECT_EQ(values[1], 0.0f);
  EXPECT_EQ(values[17], 0.0f);
}

TEST(GGUFDequantize, Q4_1) {
  // d = 0.5, m = -1: q * d + m.
  std::string block =
      blockOf({0, kHalfHalfHigh, 0, kHalfMinusOneHigh, 0x30, 0xF2});
  block.resize(20, '\0');
  std::vector<float> values = dequantized(GGMLType::Q4_1, block);
  EXPECT_EQ(values[0], -1.0f);
  EXPECT_EQ(values[16], 0.5f);
  EXPECT_EQ(values[1], 0.0f);
  EXPECT_EQ(values[17], 6.5f);
  EXPECT_EQ(values[2], -1.0f);
}

TEST(GGUFDequantize, Q4_K) {
  // d = 1, dmin = 0.5. Sub-blocks 0..3 take 6-bit scales from bytes 0..3
  // and minima from bytes 4..7; sub-blocks 4..7 take their low 4 bits from
  // bytes 8..11 and their top 2 bits from the top of bytes 0..7.
  // Sub-block 0: scale 1, min 0; 1: scale 2, min 1; 4: scale 49 (0b110001),
  // min 34 (0b100010); 5: scale 0, min 0.
  std::string scales = blockOf({1 | (3 << 6), 2, 0, 0, 0 | (2 << 6), 1, 0, 0,
                                0x1 | (0x2 << 4), 0, 0, 0});
  std::string block =
      blockOf({kHalfOneLow, kHalfOneHigh, 0, kHalfHalfHigh}) + scales;
  // Each 32-byte chunk of values: low nibbles are sub-block 2k, high
  // nibbles sub-block 2k + 1.
  block += std::string(128, char(0x21));
  std::vector<float> values = dequantized(GGMLType::Q4_K, block);
  EXPECT_EQ(values[0], 1.0f); // 1 * 1 * 1 - 0.5 * 0
  EXPECT_EQ(values[31], 1.0f);
  EXPECT_EQ(values[32], 3.5f);   // 1 * 2 * 2 - 0.5 * 1
  EXPECT_EQ(values[128], 32.0f); // 1 * 49 * 1 - 0.5 * 34
  EXPECT_EQ(values[160], 0.0f);  // scale 0, min 0
  EXPECT_EQ(values[64], 0.0f);   // sub-block 2: scale 0, min 0
}

TEST(GGUFDequantize, Q6_K) {
  // 128 bytes of low nibbles, 64 of high bit pairs, 16 int8 scales, d.
  std::string block(210, '\0');
  block[0] = char(0x21);         // low nibbles 1 (element 0), 2 (64)
  block[128] = char(0b11100100); // high pairs 0, 1, 2, 3
  block[192 + 0] = 2;            // scale of elements 0..15
  block[192 + 2] = char(-1);     // 32..47
  block[192 + 4] = 3;            // 64..79
  block[192 + 6] = 4;            // 96..111
  block[208] = 0;
  block[209] = char(kHalfQuarterHigh); // d = 0.25
  std::vector<float> values = dequantized(GGMLType::Q6_K, block);
  EXPECT_EQ(values[0], -15.5f); // 0.25 * 2 * (1 - 32)
  EXPECT_EQ(values[32], 4.0f);  // 0.25 * -1 * (16 - 32)
  EXPECT_EQ(values[64], 1.5f);  // 0.25 * 3 * (2 + 32 - 32)
  EXPECT_EQ(values[96], 16.0f); // 0.25 * 4 * (48 - 32)
  EXPECT_EQ(values[1], -16.0f); // 0.25 * 2 * (0 - 32)
  EXPECT_EQ(values[128], 0.0f); // second half: scales 0
}

TEST(GGUFFile, ReadsRangesAcrossBlocks) {
  TempDir dir;
  // Two Q8_0 blocks: d = 1, values 0..31 and d = 0.5, values 0..31.
  std::string blocks;
  for (int high : {kHalfOneHigh, kHalfHalfHigh}) {
    blocks += blockOf({0, high});
    for (int i = 0; i < 32; ++i)
      blocks += char(i);
  }
  std::string path = dir.file("q.gguf");
  writeFile(path, GGUFBuilder().tensor("t", {64}, 8, blocks).bytes());
  auto file = GGUFFile::open(path);
  ASSERT_TRUE(bool(file)) << errorText(file.takeError());
  const GGUFTensorInfo *info = (*file)->findTensor("t");
  ASSERT_TRUE(info);
  std::vector<float> values(6);
  ASSERT_FALSE(bool((*file)->readF32(*info, 30, values)));
  EXPECT_EQ(values, (std::vector<float>{30, 31, 0, 0.5, 1, 1.5}));
  EXPECT_CONTAINS(errorText((*file)->readF32(*info, 60, values)),
                  "tensor 't' has 64 elements; cannot read 6 from element "
                  "60");
}

/// A llama GGUF with two heads of size 4 and one KV head: a 3-column query
/// projection whose rows are interleaved per head, as llama.cpp stores them.
std::string llamaFile(bool withNaN = false) {
  std::vector<float> storedQ(8 * 3);
  for (int row = 0; row < 8; ++row)
    for (int column = 0; column < 3; ++column)
      storedQ[row * 3 + column] = row * 10 + column;
  if (withNaN)
    storedQ[7] = NAN;
  return GGUFBuilder()
      .str("general.architecture", "llama")
      .u32("llama.attention.head_count", 2)
      .u32("llama.attention.head_count_kv", 1)
      .f32Tensor("blk.0.attn_q.weight", {3, 8}, storedQ)
      .f32Tensor("blk.0.attn_norm.weight", {3}, {1, 2, 3})
      .bytes();
}

TEST(GGUFCheckpoint, NamesShapesAndRopeRows) {
  TempDir dir;
  std::string path = dir.file("m.gguf");
  writeFile(path, llamaFile());
  auto checkpoint = Checkpoint::open(path);
  ASSERT_TRUE(bool(checkpoint)) << errorText(checkpoint.takeError());
  EXPECT_EQ(
      (*checkpoint)->names(),
      (std::vector<std::string>{"model.layers.0.input_layernorm.weight",
                                "model.layers.0.self_attn.q_proj.weight"}));
  const TensorInfo *info =
      (*checkpoint)->find("model.layers.0.self_attn.q_proj.weight");
  ASSERT_TRUE(info);
  EXPECT_EQ(info->shape, (llvm::SmallVector<int64_t, 4>{8, 3}));
  EXPECT_EQ(info->dtype, DType::F32);
  EXPECT_EQ((*checkpoint)->filePathOf(info->name), path);
  EXPECT_FALSE((*checkpoint)->fileOf(info->name));
  // Transformers' row r of head h (size 4) is stored at h*4 + 2*(r%2) +
  // (r/2)%2... within a head: rows 0, 1, 2, 3 are stored rows 0, 2, 1, 3.
  auto rows = (*checkpoint)->readF32(info->name);
  ASSERT_TRUE(bool(rows)) << errorText(rows.takeError());
  std::vector<float> expected;
  for (int stored : {0, 2, 1, 3, 4, 6, 5, 7})
    for (int column = 0; column < 3; ++column)
      expected.push_back(stored * 10 + column);
  EXPECT_EQ(*rows, expected);
  // A range that starts and ends inside rows.
  std::vector<float> part(5);
  ASSERT_FALSE(bool((*checkpoint)->readF32(info->name, 4, part)));
  EXPECT_EQ(part, (std::vector<float>{21, 22, 10, 11, 12}));
  auto none = (*checkpoint)->findNonFinite(info->name, 0, 24);
  ASSERT_TRUE(bool(none));
  EXPECT_FALSE(none->has_value());
}

TEST(GGUFCheckpoint, FindsNonFiniteAtTransformersIndex) {
  TempDir dir;
  std::string path = dir.file("m.gguf");
  writeFile(path, llamaFile(/*withNaN=*/true));
  auto checkpoint = Checkpoint::open(path);
  ASSERT_TRUE(bool(checkpoint)) << errorText(checkpoint.takeError());
  // Stored row 2 (element 7 = row 2, column 1) is transformers' row 1.
  auto found =
      (*checkpoint)
          ->findNonFinite("model.layers.0.self_attn.q_proj.weight", 0, 24);
  ASSERT_TRUE(bool(found));
  EXPECT_EQ(*found, std::optional<uint64_t>(4));
}

TEST(GGUFModel, ConfigFromMetadata) {
  TempDir dir;
  std::string path = dir.file("m.gguf");
  std::string tokens;
  appendU32(tokens, GGUFValue::String);
  appendU64(tokens, 3);
  for (llvm::StringRef token : {"a", "b", "c"})
    appendString(tokens, token);
  writeFile(path,
            GGUFBuilder()
                .str("general.architecture", "llama")
                .u32("llama.embedding_length", 4)
                .u32("llama.feed_forward_length", 8)
                .u32("llama.block_count", 1)
                .u32("llama.attention.head_count", 2)
                .u32("llama.context_length", 16)
                .f32("llama.attention.layer_norm_rms_epsilon", 1e-5f)
                .raw("tokenizer.ggml.tokens", GGUFValue::Array, tokens)
                .f32Tensor("token_embd.weight", {4, 5}, std::vector<float>(20))
                .bytes());
  auto file = GGUFFile::open(path);
  ASSERT_TRUE(bool(file)) << errorText(file.takeError());
  auto config = ggufHuggingFaceConfig(**file);
  ASSERT_TRUE(bool(config)) << errorText(config.takeError());
  EXPECT_EQ(config->getInteger("hidden_size"), 4);
  EXPECT_EQ(config->getInteger("num_key_value_heads"), 2);
  // The token list wins over the embedding's rows; no output.weight: tied.
  EXPECT_EQ(config->getInteger("vocab_size"), 3);
  EXPECT_EQ(config->getBoolean("tie_word_embeddings"), true);
  // Float32 metadata reads as the decimal config.json had.
  EXPECT_EQ(config->getNumber("rms_norm_eps"), 1e-5);
  EXPECT_EQ(config->getNumber("rope_theta"), 10000.0);
}

TEST(GGUFModel, MissingKeyIsNamed) {
  TempDir dir;
  std::string path = dir.file("m.gguf");
  writeFile(path,
            GGUFBuilder()
                .str("general.architecture", "llama")
                .u32("llama.attention.head_count", 2)
                .f32Tensor("token_embd.weight", {4, 5}, std::vector<float>(20))
                .bytes());
  auto file = GGUFFile::open(path);
  ASSERT_TRUE(bool(file)) << errorText(file.takeError());
  EXPECT_CONTAINS(errorText(ggufHuggingFaceConfig(**file)),
                  "m.gguf: metadata 'llama.embedding_length' is missing");
}

TEST(GGUFModel, RefusesOtherArchitecturesAndUnknownTensors) {
  TempDir dir;
  std::string path = dir.file("m.gguf");
  writeFile(path, GGUFBuilder().str("general.architecture", "qwen2").bytes());
  EXPECT_CONTAINS(errorText(Checkpoint::open(path)),
                  "architecture 'qwen2' is not supported (llama is)");
  writeFile(path, GGUFBuilder()
                      .str("general.architecture", "llama")
                      .u32("llama.attention.head_count", 2)
                      .f32Tensor("rope_freqs.weight", {2}, {1, 1})
                      .bytes());
  EXPECT_CONTAINS(errorText(Checkpoint::open(path)),
                  "tensor 'rope_freqs.weight' holds Llama 3 rotary");
  writeFile(path, GGUFBuilder()
                      .str("general.architecture", "llama")
                      .u32("llama.attention.head_count", 2)
                      .f32Tensor("blk.0.ssm_x.weight", {2}, {1, 1})
                      .bytes());
  EXPECT_CONTAINS(errorText(Checkpoint::open(path)),
                  "tensor 'blk.0.ssm_x.weight' has no transformers "
                  "counterpart");
}

/// The error of opening `bytes` as a GGUF file.
std::string openError(const std::string &bytes) {
  TempDir dir;
  std::string path = dir.file("bad.gguf");
  writeFile(path, bytes);
  return errorText(GGUFFile::open(path));
}

TEST(GGUFMalformed, Header) {
  std::string good = GGUFBuilder().f32Tensor("t", {2}, {1, 2}).bytes();
  EXPECT_CONTAINS(openError("GGU"), "file ended at byte 3 while reading the "
                                    "magic");
  EXPECT_CONTAINS(openError("GGUX" + good.substr(4)),
                  "not a GGUF file (the first 4 bytes are 'GGUX'");
  std::string version1 = good;
  version1[4] = 1;
  EXPECT_CONTAINS(openError(version1),
                  "GGUF version 1 is not supported (2 and 3 are)");
  // Counts are not trusted: a huge tensor count ends at the file's end.
  std::string huge = GGUFBuilder().f32Tensor("t", {2}, {1, 2}).header();
  huge[8 + 7] = 0x40;
  EXPECT_CONTAINS(openError(huge),
                  "file ended at byte 57 while reading the name of tensor "
                  "info 1 length");
  // The data region (32 bytes, padding included) cut to 4 bytes.
  EXPECT_CONTAINS(openError(good.substr(0, good.size() - 28)),
                  "tensor 't': bytes [0, 8) run past the data region of 4 "
                  "bytes");
}

TEST(GGUFMalformed, Metadata) {
  std::string longString;
  appendU64(longString, uint64_t(1) << 40);
  EXPECT_CONTAINS(
      openError(GGUFBuilder().raw("k", GGUFValue::String, longString).bytes()),
      "metadata 'k' of 1099511627776 bytes exceeds the limit");
  EXPECT_CONTAINS(openError(GGUFBuilder().raw("k", 13, "").bytes()),
                  "metadata 'k': unknown value type 13");
  EXPECT_CONTAINS(openError(GGUFBuilder().u32("k", 1).u32("k", 2).bytes()),
                  "metadata 'k': duplicate key");
  std::string array;
  appendU32(array, GGUFValue::UInt32);
  appendU64(array, uint64_t(1) << 61);
  EXPECT_CONTAINS(
      openError(GGUFBuilder().raw("a", GGUFValue::Array, array).bytes()),
      "metadata 'a': array of 2305843009213693952 uint32 runs past the end");
  std::string nested;
  appendU32(nested, GGUFValue::Array);
  appendU64(nested, 1);
  EXPECT_CONTAINS(
      openError(GGUFBuilder().raw("a", GGUFValue::Array, nested).bytes()),
      "arrays of arrays are not supported");
  EXPECT_CONTAINS(openError(GGUFBuilder().u32("general.alignment", 24).bytes()),
                  "'general.alignment' must be a uint32 power of two");
  EXPECT_CONTAINS(
      openError(GGUFBuilder().raw("b", GGUFValue::Bool, "\x02").bytes()),
      "metadata 'b': bool of value 2");
}

TEST(GGUFMalformed, Tensors) {
  EXPECT_CONTAINS(openError(GGUFBuilder().tensor("t", {32}, 99, "").bytes()),
                  "tensor 't': unknown ggml type 99");
  EXPECT_CONTAINS(openError(GGUFBuilder().tensor("t", {256}, 13, "").bytes()),
                  "tensor 't': type Q5_K cannot be dequantised (F32, F16, "
                  "BF16, Q8_0, Q4_0, Q4_1, Q4_K and Q6_K can)");
  EXPECT_CONTAINS(
      openError(GGUFBuilder().tensor("t", {1, 1, 1, 1, 1}, 0, "").bytes()),
      "tensor 't': has 5 dimensions (1 to 4 are allowed)");
  EXPECT_CONTAINS(
      openError(GGUFBuilder()
                    .tensor("t", {uint64_t(1) << 32, uint64_t(1) << 32}, 0, "")
                    .bytes()),
      "tensor 't': dimensions overflow 63 bits");
  EXPECT_CONTAINS(openError(GGUFBuilder().tensor("t", {16}, 8, "").bytes()),
                  "rows of 16 elements are not whole blocks of 32 (Q8_0)");
  EXPECT_CONTAINS(openError(GGUFBuilder()
                                .f32Tensor("t", {2}, {1, 2})
                                .f32Tensor("t", {2}, {1, 2})
                                .bytes()),
                  "tensor 't': duplicate name");
  // Tensor infos point into each other's bytes.
  GGUFBuilder overlapping;
  overlapping.f32Tensor("a", {16}, std::vector<float>(16));
  overlapping.f32Tensor("b", {2}, {1, 2});
  std::string bytes = overlapping.bytes();
  size_t offsetField = bytes.find("b") + 1 + 4 + 8 + 4;
  bytes[offsetField] = 32;
  EXPECT_CONTAINS(openError(bytes), "tensors 'a' and 'b' overlap");
  bytes[offsetField] = 4;
  EXPECT_CONTAINS(openError(bytes),
                  "tensor 'b': offset 4 is not a multiple of the alignment "
                  "32");
}

} // namespace
