//===- GGUFWriterTest.cpp - GGUF files written and read back --------------===//

#include "WeightsTestSupport.h"

#include "moe/Support/Errors.h"
#include "moe/Weights/GGUF.h"
#include "moe/Weights/GGUFWriter.h"

using namespace mlir::moe::weights;
using namespace moe_test;

namespace {

/// A tensor whose producer encodes `values` as `type`.
GGUFTensorSource encodedTensor(std::string name, GGMLType type,
                               llvm::SmallVector<int64_t, 4> dims,
                               std::vector<float> values) {
  GGUFTensorSource tensor;
  tensor.name = std::move(name);
  tensor.type = type;
  tensor.dims = dims;
  tensor.produce = [type, values = std::move(values)](llvm::raw_ostream &out) {
    size_t blocks = values.size() / ggmlBlockLayout(type).elements;
    std::string bytes(blocks * ggmlBlockLayout(type).bytes, '\0');
    quantizeBlocks(type, values.data(),
                   reinterpret_cast<uint8_t *>(bytes.data()), blocks);
    out << bytes;
    return llvm::Error::success();
  };
  return tensor;
}

/// A tensor whose producer writes `bytes` whatever its type needs.
GGUFTensorSource rawTensor(std::string name, GGMLType type,
                           llvm::SmallVector<int64_t, 4> dims,
                           std::string bytes) {
  GGUFTensorSource tensor;
  tensor.name = std::move(name);
  tensor.type = type;
  tensor.dims = dims;
  tensor.produce = [bytes = std::move(bytes)](llvm::raw_ostream &out) {
    out << bytes;
    return llvm::Error::success();
  };
  return tensor;
}

std::unique_ptr<GGUFFile> openOrFail(const std::string &path) {
  auto file = GGUFFile::open(path);
  EXPECT_TRUE(bool(file)) << llvm::toString(file.takeError());
  return file ? std::move(*file) : nullptr;
}

std::vector<float> readAll(const GGUFFile &file, llvm::StringRef name) {
  const GGUFTensorInfo *tensor = file.findTensor(name);
  EXPECT_NE(tensor, nullptr) << name.str();
  if (!tensor)
    return {};
  std::vector<float> values(tensor->numElements());
  llvm::Error error = file.readF32(*tensor, 0, values);
  EXPECT_FALSE(error) << llvm::toString(std::move(error));
  return values;
}

TEST(GGUFWriterTest, MetadataOfEachTypeRoundTrips) {
  TempDir dir;
  GGUFMetadata metadata;
  metadata.addUInt32("u32", 4000000000u);
  metadata.addInt32("i32", -7);
  metadata.addUInt64("u64", uint64_t(1) << 40);
  metadata.addFloat32("f32", 0.625f);
  metadata.addBool("bool", true);
  metadata.addString("string", "h\xc3\xa9llo");
  metadata.addStringArray("strings", {"a", "", "ccc"});
  metadata.addFloat32Array("floats", {1.5f, -2.0f});
  metadata.addInt32Array("ints", {3, -4, 5, 6});
  EXPECT_TRUE(metadata.contains("ints"));
  EXPECT_EQ(metadata.size(), 9u);
  std::string path = dir.file("m.gguf");
  ASSERT_EQ(errorText(writeGGUF(path, std::move(metadata), {})), "<success>");

  std::unique_ptr<GGUFFile> file = openOrFail(path);
  ASSERT_TRUE(file);
  EXPECT_EQ(file->version(), 3u);
  EXPECT_TRUE(file->tensors().empty());
  EXPECT_EQ(file->metadata().size(), 9u);
  EXPECT_EQ(file->find("u32")->type, GGUFValue::UInt32);
  EXPECT_EQ(file->find("u32")->integer, 4000000000);
  EXPECT_EQ(file->find("i32")->type, GGUFValue::Int32);
  EXPECT_EQ(file->find("i32")->integer, -7);
  EXPECT_EQ(file->find("u64")->type, GGUFValue::UInt64);
  EXPECT_EQ(file->find("u64")->integer, int64_t(1) << 40);
  EXPECT_EQ(file->find("f32")->type, GGUFValue::Float32);
  EXPECT_EQ(file->find("f32")->number, 0.625);
  EXPECT_EQ(file->find("bool")->type, GGUFValue::Bool);
  EXPECT_EQ(file->find("bool")->integer, 1);
  EXPECT_EQ(file->find("string")->string, "h\xc3\xa9llo");
  const GGUFValue *strings = file->find("strings");
  EXPECT_EQ(strings->type, GGUFValue::Array);
  EXPECT_EQ(strings->elementType, GGUFValue::String);
  EXPECT_EQ(strings->count, 3u);
  EXPECT_EQ(file->find("floats")->elementType, GGUFValue::Float32);
  EXPECT_EQ(file->find("floats")->count, 2u);
  const GGUFValue *ints = file->find("ints");
  EXPECT_EQ(ints->elementType, GGUFValue::Int32);
  EXPECT_EQ(ints->count, 4u);
  // The array as encoded: element type, count, then the elements.
  llvm::Expected<std::string> encoded = file->readEncodedValue(*ints);
  ASSERT_TRUE(bool(encoded)) << llvm::toString(encoded.takeError());
  ASSERT_EQ(encoded->size(), 4u + 8u + 16u);
  EXPECT_EQ(int32_t(llvm::support::endian::read32le(encoded->data() + 16)), -4);
}

TEST(GGUFWriterTest, AnEncodedEntryIsCarriedOver) {
  TempDir dir;
  GGUFMetadata first;
  first.addStringArray("tokens", {"x", "yz"});
  ASSERT_EQ(errorText(writeGGUF(dir.file("a.gguf"), std::move(first), {})),
            "<success>");
  std::unique_ptr<GGUFFile> a = openOrFail(dir.file("a.gguf"));
  ASSERT_TRUE(a);
  llvm::Expected<std::string> encoded = a->readEncodedValue(*a->find("tokens"));
  ASSERT_TRUE(bool(encoded));
  GGUFMetadata second;
  second.addEncoded("tokens", GGUFValue::Array, *encoded);
  ASSERT_EQ(errorText(writeGGUF(dir.file("b.gguf"), std::move(second), {})),
            "<success>");
  std::unique_ptr<GGUFFile> b = openOrFail(dir.file("b.gguf"));
  ASSERT_TRUE(b);
  EXPECT_EQ(b->find("tokens")->count, 2u);
  EXPECT_EQ(*b->readEncodedValue(*b->find("tokens")), *encoded);
}

TEST(GGUFWriterTest, FloatTensorsWithOddShapesRoundTrip) {
  TempDir dir;
  // Values every type holds exactly.
  std::vector<float> f32(3 * 5), f16(7), bf16(5 * 3 * 2);
  for (size_t i = 0; i < f32.size(); ++i)
    f32[i] = 0.1f * float(i) - 0.7f;
  for (size_t i = 0; i < f16.size(); ++i)
    f16[i] = float(i) * 0.375f - 1.0f;
  for (size_t i = 0; i < bf16.size(); ++i)
    bf16[i] = float(int(i) - 12) * 16.0f;
  std::vector<GGUFTensorSource> tensors = {
      encodedTensor("f32", GGMLType::F32, {3, 5}, f32),
      encodedTensor("f16", GGMLType::F16, {7}, f16),
      encodedTensor("bf16", GGMLType::BF16, {5, 3, 2}, bf16),
  };
  std::string path = dir.file("t.gguf");
  std::vector<std::pair<uint64_t, uint64_t>> progress;
  GGUFWriterOptions options;
  options.progress = [&](uint64_t done, uint64_t total) {
    progress.emplace_back(done, total);
  };
  ASSERT_EQ(errorText(writeGGUF(path, GGUFMetadata(), tensors, options)),
            "<success>");

  std::unique_ptr<GGUFFile> file = openOrFail(path);
  ASSERT_TRUE(file);
  ASSERT_EQ(file->tensors().size(), 3u);
  EXPECT_EQ(file->findTensor("f32")->dims,
            (llvm::SmallVector<int64_t, 4>{3, 5}));
  EXPECT_EQ(file->findTensor("bf16")->dims,
            (llvm::SmallVector<int64_t, 4>{5, 3, 2}));
  EXPECT_EQ(file->findTensor("f16")->type, GGMLType::F16);
  EXPECT_EQ(file->findTensor("f16")->bytes, 14u);
  EXPECT_EQ(readAll(*file, "f32"), f32);
  EXPECT_EQ(readAll(*file, "f16"), f16);
  EXPECT_EQ(readAll(*file, "bf16"), bf16);
  // Each tensor is padded to the default alignment of 32.
  EXPECT_EQ(file->findTensor("f16")->offset, 64u);
  EXPECT_EQ(file->findTensor("bf16")->offset, 96u);
  EXPECT_EQ(file->dataOffset() % 32, 0u);
  ASSERT_EQ(progress.size(), 3u);
  EXPECT_EQ(progress.back(), std::make_pair(uint64_t(160), uint64_t(160)));
}

TEST(GGUFWriterTest, Q8_0MatchesAHandComputedBlock) {
  TempDir dir;
  // Row 0: max |x| = 127, so d = 1 and q = x rounded half away from zero.
  // Row 1: max |x| = 63.5, so d = 0.5 and q = round(2x).
  std::vector<float> values(64, 0.0f);
  values[0] = 127.0f;
  values[1] = 2.5f;
  values[2] = -2.5f;
  values[3] = 1.4f;
  values[32] = -63.5f;
  values[33] = 0.25f;
  values[34] = -0.75f;
  values[35] = 10.1f;
  std::string path = dir.file("q.gguf");
  ASSERT_EQ(errorText(writeGGUF(
                path, GGUFMetadata(),
                {encodedTensor("q", GGMLType::Q8_0, {32, 2}, values)})),
            "<success>");

  std::unique_ptr<GGUFFile> file = openOrFail(path);
  ASSERT_TRUE(file);
  const GGUFTensorInfo *tensor = file->findTensor("q");
  ASSERT_NE(tensor, nullptr);
  EXPECT_EQ(tensor->bytes, 2u * 34u);
  std::string bytes =
      readFile(path).substr(file->dataOffset() + tensor->offset, tensor->bytes);
  // d in f16 (1.0 = 0x3c00, 0.5 = 0x3800), then 32 int8 quants.
  EXPECT_EQ(llvm::support::endian::read16le(bytes.data()), 0x3c00);
  EXPECT_EQ(int8_t(bytes[2]), 127);
  EXPECT_EQ(int8_t(bytes[3]), 3);
  EXPECT_EQ(int8_t(bytes[4]), -3);
  EXPECT_EQ(int8_t(bytes[5]), 1);
  EXPECT_EQ(int8_t(bytes[6]), 0);
  EXPECT_EQ(llvm::support::endian::read16le(bytes.data() + 34), 0x3800);
  EXPECT_EQ(int8_t(bytes[36]), -127);
  EXPECT_EQ(int8_t(bytes[37]), 1);
  EXPECT_EQ(int8_t(bytes[38]), -2);
  EXPECT_EQ(int8_t(bytes[39]), 20);

  std::vector<float> expected(64, 0.0f);
  expected[0] = 127.0f;
  expected[1] = 3.0f;
  expected[2] = -3.0f;
  expected[3] = 1.0f;
  expected[32] = -63.5f;
  expected[33] = 0.5f;
  expected[34] = -1.0f;
  expected[35] = 10.0f;
  EXPECT_EQ(readAll(*file, "q"), expected);
}

TEST(GGUFWriterTest, NonDefaultAlignment) {
  TempDir dir;
  std::vector<float> first(3, 1.0f), second(5, -2.0f);
  GGUFWriterOptions options;
  options.alignment = 128;
  std::string path = dir.file("a.gguf");
  ASSERT_EQ(
      errorText(writeGGUF(path, GGUFMetadata(),
                          {encodedTensor("first", GGMLType::F32, {3}, first),
                           encodedTensor("second", GGMLType::F32, {5}, second)},
                          options)),
      "<success>");
  std::unique_ptr<GGUFFile> file = openOrFail(path);
  ASSERT_TRUE(file);
  EXPECT_EQ(file->find("general.alignment")->integer, 128);
  EXPECT_EQ(file->dataOffset() % 128, 0u);
  EXPECT_EQ(file->findTensor("second")->offset, 128u);
  EXPECT_EQ(readAll(*file, "first"), first);
  EXPECT_EQ(readAll(*file, "second"), second);
}

TEST(GGUFWriterTest, AnExistingFileIsReplacedOnlyWhenAsked) {
  TempDir dir;
  std::string path = dir.file("x.gguf");
  writeFile(path, "old");
  EXPECT_EQ(errorText(writeGGUF(path, GGUFMetadata(), {})),
            path + ": exists (--force replaces it)");
  EXPECT_EQ(readFile(path), "old");
  EXPECT_EQ(dir.list(), std::vector<std::string>{"x.gguf"});

  GGUFWriterOptions options;
  options.replace = true;
  ASSERT_EQ(errorText(writeGGUF(path, GGUFMetadata(), {}, options)),
            "<success>");
  EXPECT_TRUE(openOrFail(path));
  EXPECT_EQ(dir.list(), std::vector<std::string>{"x.gguf"});
}

/// A writer refusal: the tensors and a part of the message.
struct RefusedWrite {
  const char *what;
  std::vector<GGUFTensorSource> tensors;
  uint32_t alignment;
  std::string message;
};

TEST(GGUFWriterTest, RefusalsNameTheTensorAndLeaveNoFile) {
  GGUFTensorSource noProducer = rawTensor("p", GGMLType::F32, {1}, "");
  noProducer.produce = nullptr;
  GGUFTensorSource failingProducer = rawTensor("f", GGMLType::F32, {1}, "");
  failingProducer.produce = [](llvm::raw_ostream &out) {
    out << "ab";
    return mlir::moe::makeError("the source is gone");
  };
  std::string longName(64, 'n');
  const RefusedWrite cases[] = {
      {"duplicate name",
       {rawTensor("t", GGMLType::F32, {1}, "abcd"),
        rawTensor("t", GGMLType::F32, {1}, "abcd")},
       32,
       "tensor 't': given twice"},
      {"name of 64 bytes",
       {rawTensor(longName, GGMLType::F32, {1}, "abcd")},
       32,
       "tensor '" + longName + "': name is longer than 63 bytes"},
      {"rows not whole blocks",
       {rawTensor("q", GGMLType::Q8_0, {33}, "")},
       32,
       "tensor 'q': rows of 33 elements are not whole Q8_0 blocks of 32"},
      {"no dimensions",
       {rawTensor("d", GGMLType::F32, {}, "")},
       32,
       "tensor 'd': has 0 dimensions (1 to 4 are allowed)"},
      {"five dimensions",
       {rawTensor("d", GGMLType::F32, {1, 1, 1, 1, 1}, "abcd")},
       32,
       "tensor 'd': has 5 dimensions (1 to 4 are allowed)"},
      {"empty dimension",
       {rawTensor("d", GGMLType::F32, {2, 0}, "")},
       32,
       "tensor 'd': has a dimension of 0"},
      {"no producer", {noProducer}, 32, "tensor 'p': has no producer"},
      {"too few bytes",
       {rawTensor("ok", GGMLType::F32, {1}, "abcd"),
        rawTensor("short", GGMLType::F16, {3}, "abcd")},
       32,
       "tensor 'short': the producer wrote 4 bytes; F16 needs 6"},
      {"too many bytes",
       {rawTensor("long", GGMLType::F32, {1}, "abcdef")},
       32,
       "tensor 'long': the producer wrote 6 bytes; F32 needs 4"},
      {"producer error",
       {failingProducer},
       32,
       "tensor 'f': the source is gone"},
      {"alignment", {}, 48, "alignment 48 is not a power of two"},
  };
  for (const RefusedWrite &refused : cases) {
    SCOPED_TRACE(refused.what);
    TempDir dir;
    std::string path = dir.file("r.gguf");
    GGUFWriterOptions options;
    options.alignment = refused.alignment;
    std::string message =
        errorText(writeGGUF(path, GGUFMetadata(), refused.tensors, options));
    EXPECT_TRUE(llvm::StringRef(message).starts_with(path + ": ")) << message;
    EXPECT_CONTAINS(message, refused.message);
    // Neither the file nor its staging copy is left behind.
    EXPECT_EQ(dir.list(), std::vector<std::string>{});
  }
}

TEST(GGUFWriterTest, AlignmentIsTheOptionsNotTheCallers) {
  TempDir dir;
  std::string path = dir.file("a.gguf");
  GGUFMetadata metadata;
  metadata.addUInt32("general.alignment", 64);
  EXPECT_EQ(errorText(writeGGUF(path, metadata, {})),
            path + ": metadata 'general.alignment' is set by the writer's "
                   "alignment option, not by the caller");
  EXPECT_EQ(dir.list(), std::vector<std::string>{});
}

} // namespace
