//===- CheckpointTest.cpp - Checkpoint files and directories --------------===//

#include "WeightsTestSupport.h"

#include "moe/Weights/Checkpoint.h"

#include "llvm/ADT/bit.h"

#include <cmath>
#include <map>

using namespace mlir::moe::weights;
using namespace moe_test;

namespace {

/// One tensor of a hand-made file: raw little-endian bytes of `dtype`.
struct RawTensor {
  std::string name;
  std::string dtype;
  std::vector<int64_t> shape;
  std::string bytes;
};

std::string f32Bytes(std::vector<float> values) {
  std::string bytes(values.size() * 4, '\0');
  convertFromF32(DType::F32, values.data(),
                 reinterpret_cast<uint8_t *>(bytes.data()), values.size());
  return bytes;
}

RawTensor f32Tensor(std::string name, std::vector<float> values) {
  int64_t count = values.size();
  return {std::move(name), "F32", {count}, f32Bytes(std::move(values))};
}

/// A valid safetensors file of `tensors`, laid out in order.
std::string fileOf(const std::vector<RawTensor> &tensors) {
  std::string header = "{", data;
  for (const RawTensor &tensor : tensors) {
    std::string shape;
    for (int64_t dim : tensor.shape)
      shape += (shape.empty() ? "" : ",") + std::to_string(dim);
    header += (header.size() > 1 ? "," : "") + ("\"" + tensor.name) +
              "\":{\"dtype\":\"" + tensor.dtype + "\",\"shape\":[" + shape +
              "],\"data_offsets\":[" + std::to_string(data.size()) + "," +
              std::to_string(data.size() + tensor.bytes.size()) + "]}";
    data += tensor.bytes;
  }
  return safetensorsBytes(header + "}", data);
}

void writeIndex(const TempDir &dir,
                const std::map<std::string, std::string> &weightMap,
                llvm::StringRef stem = "model") {
  auto quote = [](llvm::StringRef text) {
    std::string result = "\"";
    for (char c : text)
      result += c == '"' || c == '\\' ? std::string{'\\', c} : std::string{c};
    return result + "\"";
  };
  std::string json = "{\"metadata\": {\"total_size\": 0}, \"weight_map\": {";
  bool first = true;
  for (const auto &[tensor, file] : weightMap) {
    json += (first ? "" : ", ") + quote(tensor) + ": " + quote(file);
    first = false;
  }
  writeFile(dir.file((stem + ".safetensors.index.json").str()), json + "}}");
}

std::string openError(llvm::StringRef path, llvm::StringRef stem = "model") {
  return errorText(Checkpoint::open(path, stem));
}

TEST(CheckpointTest, OpensASingleFile) {
  TempDir dir;
  std::string path = dir.file("weights.safetensors");
  writeFile(path, fileOf({f32Tensor("z", {1, 2}), f32Tensor("a", {3})}));
  auto checkpoint = Checkpoint::open(path);
  ASSERT_TRUE(static_cast<bool>(checkpoint))
      << errorText(std::move(checkpoint));
  EXPECT_EQ((*checkpoint)->path(), path);
  EXPECT_EQ((*checkpoint)->names(), (std::vector<std::string>{"a", "z"}));
  ASSERT_NE((*checkpoint)->find("z"), nullptr);
  EXPECT_EQ((*checkpoint)->find("z")->numElements(), 2u);
  EXPECT_EQ((*checkpoint)->find("missing"), nullptr);
  EXPECT_EQ((*checkpoint)->fileOf("missing"), nullptr);
  ASSERT_NE((*checkpoint)->fileOf("a"), nullptr);
  EXPECT_EQ((*checkpoint)->fileOf("a")->path(), path);
  auto bytes = (*checkpoint)->readBytes("a");
  ASSERT_TRUE(static_cast<bool>(bytes));
  EXPECT_EQ(bytes->size(), 4u);
  auto values = (*checkpoint)->readF32("z");
  ASSERT_TRUE(static_cast<bool>(values)) << errorText(std::move(values));
  EXPECT_EQ(*values, (std::vector<float>{1, 2}));
  EXPECT_EQ(errorText((*checkpoint)->readBytes("missing")),
            path + ": no tensor 'missing'");
}

TEST(CheckpointTest, OpensADirectoryWithOneFile) {
  TempDir dir;
  writeFile(dir.file("model.safetensors"), fileOf({f32Tensor("w", {1})}));
  writeFile(dir.file("adapter_model.safetensors"),
            fileOf({f32Tensor("lora_A", {2})}));
  auto model = Checkpoint::open(dir.path());
  ASSERT_TRUE(static_cast<bool>(model)) << errorText(std::move(model));
  EXPECT_EQ((*model)->names(), (std::vector<std::string>{"w"}));
  auto adapter = Checkpoint::open(dir.path(), "adapter_model");
  ASSERT_TRUE(static_cast<bool>(adapter)) << errorText(std::move(adapter));
  EXPECT_EQ((*adapter)->names(), (std::vector<std::string>{"lora_A"}));
}

TEST(CheckpointTest, TheIndexWinsOverASingleFile) {
  TempDir dir;
  writeFile(dir.file("model.safetensors"), fileOf({f32Tensor("single", {1})}));
  writeFile(dir.file("model-00001-of-00002.safetensors"),
            fileOf({f32Tensor("a", {1}), f32Tensor("b", {2})}));
  writeFile(dir.file("model-00002-of-00002.safetensors"),
            fileOf({f32Tensor("c", {3, 4})}));
  writeIndex(dir, {{"a", "model-00001-of-00002.safetensors"},
                   {"b", "model-00001-of-00002.safetensors"},
                   {"c", "model-00002-of-00002.safetensors"}});
  auto checkpoint = Checkpoint::open(dir.path());
  ASSERT_TRUE(static_cast<bool>(checkpoint))
      << errorText(std::move(checkpoint));
  EXPECT_EQ((*checkpoint)->names(), (std::vector<std::string>{"a", "b", "c"}));
  EXPECT_EQ((*checkpoint)->fileOf("c")->path(),
            dir.file("model-00002-of-00002.safetensors"));
  auto c = (*checkpoint)->readF32("c");
  ASSERT_TRUE(static_cast<bool>(c));
  EXPECT_EQ(*c, (std::vector<float>{3, 4}));
}

TEST(CheckpointTest, NothingToOpen) {
  TempDir dir;
  EXPECT_EQ(openError(dir.path()),
            dir.path() + ": neither model.safetensors.index.json nor "
                         "model.safetensors in this directory");
  EXPECT_EQ(openError(dir.file("absent")),
            dir.file("absent") + ": No such file or directory");
  writeFile(dir.file("model.safetensors"), "junk");
  EXPECT_EQ(openError(dir.path()),
            dir.file("model.safetensors") +
                ": file of 4 bytes is too short for the 8-byte header length");
}

TEST(CheckpointTest, RoundTripsThroughTheWriter) {
  TempDir dir;
  std::vector<TensorSource> tensors;
  std::vector<std::vector<float>> values;
  for (int i = 0; i < 5; ++i) {
    values.push_back(std::vector<float>(10 + i, 0.5f * i));
    TensorSource source;
    source.name = "layers." + std::to_string(i) + ".weight";
    source.dtype = i % 2 ? DType::BF16 : DType::F32;
    source.shape = {10 + i};
    source.produce = [dtype = source.dtype,
                      data = values.back()](llvm::raw_ostream &os) {
      std::vector<uint8_t> bytes(data.size() * dtypeSize(dtype));
      convertFromF32(dtype, data.data(), bytes.data(), data.size());
      os.write(reinterpret_cast<const char *>(bytes.data()), bytes.size());
      return llvm::Error::success();
    };
    tensors.push_back(std::move(source));
  }
  WriterOptions options;
  options.maxShardBytes = 64;
  ASSERT_EQ(errorText(writeSafeTensorsCheckpoint(dir.path(), tensors, options)),
            "<success>");
  auto checkpoint = Checkpoint::open(dir.path());
  ASSERT_TRUE(static_cast<bool>(checkpoint))
      << errorText(std::move(checkpoint));
  ASSERT_EQ((*checkpoint)->names().size(), 5u);
  for (int i = 0; i < 5; ++i) {
    auto read =
        (*checkpoint)->readF32("layers." + std::to_string(i) + ".weight");
    ASSERT_TRUE(static_cast<bool>(read)) << errorText(std::move(read));
    EXPECT_EQ(*read, values[i]);
  }
}

/// Little-endian bytes of 16-bit words (F16 and BF16 bit patterns).
std::string le16(std::vector<uint16_t> values) {
  std::string bytes;
  for (uint16_t value : values)
    bytes += {static_cast<char>(value), static_cast<char>(value >> 8)};
  return bytes;
}

/// Little-endian bytes of doubles (F64).
std::string le64(std::vector<double> values) {
  std::string bytes(8 * values.size(), '\0');
  for (auto [i, value] : llvm::enumerate(values))
    llvm::support::endian::write64le(bytes.data() + 8 * i,
                                     llvm::bit_cast<uint64_t>(value));
  return bytes;
}

TEST(CheckpointTest, ReadsEveryFloatDType) {
  TempDir dir;
  std::string path = dir.file("model.safetensors");
  writeFile(path, fileOf({{"f64", "F64", {2}, le64({0.25, -1e300})},
                          {"f32", "F32", {1, 1}, f32Bytes({7.5f})},
                          {"f16", "F16", {3}, le16({0x3c00, 0xc100, 0x0001})},
                          {"bf16", "BF16", {2}, le16({0x4040, 0xff80})},
                          {"ids", "I64", {1}, std::string(8, '\0')},
                          {"mask", "BOOL", {2}, std::string("\1\0", 2)}}));
  auto checkpoint = Checkpoint::open(path);
  ASSERT_TRUE(static_cast<bool>(checkpoint))
      << errorText(std::move(checkpoint));
  auto read = [&](llvm::StringRef name) {
    auto values = (*checkpoint)->readF32(name);
    EXPECT_TRUE(static_cast<bool>(values)) << name.str();
    return values ? *values : std::vector<float>{};
  };
  EXPECT_EQ(read("f64"), (std::vector<float>{0.25f, -INFINITY}));
  EXPECT_EQ(read("f32"), (std::vector<float>{7.5f}));
  EXPECT_EQ(read("f16"), (std::vector<float>{1.0f, -2.5f, 0x1p-24f}));
  EXPECT_EQ(read("bf16"), (std::vector<float>{3.0f, -INFINITY}));

  std::vector<float> into(2);
  EXPECT_EQ(errorText((*checkpoint)->readF32("f16", 1, into)), "<success>");
  EXPECT_EQ(into, (std::vector<float>{-2.5f, 0x1p-24f}));
  EXPECT_EQ(errorText((*checkpoint)->readF32("f16", 2, into)),
            path + ": tensor 'f16' has 3 elements; cannot read 2 from "
                   "element 2");
  std::vector<float> wrongSize(2);

  EXPECT_EQ(errorText((*checkpoint)->readF32("ids")),
            path + ": tensor 'ids' has dtype I64, which cannot be read as F32 "
                   "(F64, F32, F16 and BF16 can)");
  EXPECT_CONTAINS(errorText((*checkpoint)->readF32("mask", 0, wrongSize)),
                  "tensor 'mask' has dtype BOOL, which cannot be read as F32");
  EXPECT_EQ(errorText((*checkpoint)->readF32("nope")),
            path + ": no tensor 'nope'");
  EXPECT_EQ(errorText((*checkpoint)->readF32("nope", 0, into)),
            path + ": no tensor 'nope'");
}

TEST(CheckpointTest, FindsElementsThatReadAsNaNOrInfinity) {
  TempDir dir;
  std::string path = dir.file("model.safetensors");
  writeFile(
      path,
      fileOf({{"finite_f32", "F32", {3}, f32Bytes({3.4e38f, -0.0f, 1e-45f})},
              {"nan_f32", "F32", {4}, f32Bytes({1, 2, NAN, INFINITY})},
              {"inf_f16", "F16", {3}, le16({0x7bff, 0x3c00, 0xfc00})},
              {"nan_bf16", "BF16", {2}, le16({0x7f7f, 0x7fc1})},
              // 1e300 is a finite double but reads as an infinite float.
              {"big_f64", "F64", {3}, le64({3.4e38, 0.5, -1e300})}}));
  auto checkpoint = Checkpoint::open(path);
  ASSERT_TRUE(static_cast<bool>(checkpoint))
      << errorText(std::move(checkpoint));
  auto find = [&](llvm::StringRef name, uint64_t first, uint64_t count) {
    auto found = (*checkpoint)->findNonFinite(name, first, count);
    if (!found)
      return "error: " + errorText(found.takeError());
    return *found ? std::to_string(**found) : std::string("none");
  };
  EXPECT_EQ(find("finite_f32", 0, 3), "none");
  EXPECT_EQ(find("nan_f32", 0, 4), "2");
  EXPECT_EQ(find("nan_f32", 3, 1), "3");
  EXPECT_EQ(find("nan_f32", 0, 2), "none");
  EXPECT_EQ(find("inf_f16", 0, 3), "2");
  EXPECT_EQ(find("inf_f16", 0, 2), "none");
  EXPECT_EQ(find("nan_bf16", 0, 2), "1");
  EXPECT_EQ(find("big_f64", 0, 3), "2");
  EXPECT_EQ(find("big_f64", 0, 2), "none");
  EXPECT_EQ(find("nan_f32", 3, 2),
            "error: " + path +
                ": tensor 'nan_f32' has 4 elements; cannot read 2 from "
                "element 3");
}

/// A directory with two good shards and an index that is edited per test.
class ShardedCheckpointTest : public ::testing::Test {
protected:
  ShardedCheckpointTest() {
    writeFile(dir.file("model-00001-of-00002.safetensors"),
              fileOf({f32Tensor("a", {1}), f32Tensor("b", {2})}));
    writeFile(dir.file("model-00002-of-00002.safetensors"),
              fileOf({f32Tensor("c", {3})}));
  }
  std::string indexPath() const {
    return dir.file("model.safetensors.index.json");
  }

  TempDir dir;
  const std::string first = "model-00001-of-00002.safetensors";
  const std::string second = "model-00002-of-00002.safetensors";
};

TEST_F(ShardedCheckpointTest, MissingShard) {
  writeIndex(dir, {{"a", first},
                   {"b", first},
                   {"c", second},
                   {"d", "model-00003-of-00003.safetensors"}});
  EXPECT_EQ(openError(dir.path()),
            indexPath() + ": shard 'model-00003-of-00003.safetensors' (of "
                          "tensor 'd') does not exist");
}

TEST_F(ShardedCheckpointTest, ShardNamesMustStayInTheDirectory) {
  TempDir outside;
  writeFile(outside.file("evil.safetensors"), fileOf({f32Tensor("d", {1})}));
  for (std::string name :
       {std::string("../evil.safetensors"), outside.file("evil.safetensors"),
        std::string("sub/evil.safetensors"), std::string("sub\\evil"),
        std::string(".."), std::string("."), std::string("")}) {
    writeIndex(dir, {{"a", first}, {"b", first}, {"c", second}, {"d", name}});
    EXPECT_EQ(openError(dir.path()),
              indexPath() + ": shard " +
                  (name == "sub\\evil" ? "'sub\\\\evil'" : "'" + name + "'") +
                  " (of tensor 'd') is not a plain file name inside the "
                  "directory");
  }
  // A shard that is a symlink out of the directory is fine: the Hugging
  // Face hub cache links every snapshot file to ../../blobs.
  ASSERT_FALSE(
      llvm::sys::fs::copy_file(dir.file(second), outside.file("blob")));
  ASSERT_FALSE(llvm::sys::fs::create_link(outside.file("blob"),
                                          dir.file("link.safetensors")));
  writeIndex(dir, {{"a", first}, {"b", first}, {"c", "link.safetensors"}});
  auto checkpoint = Checkpoint::open(dir.path());
  EXPECT_TRUE(static_cast<bool>(checkpoint))
      << errorText(std::move(checkpoint));
}

TEST_F(ShardedCheckpointTest, TensorMissingFromItsShard) {
  writeIndex(dir, {{"a", first}, {"b", first}, {"c", second}, {"d", second}});
  EXPECT_EQ(openError(dir.path()),
            indexPath() + ": tensor 'd' is not in its shard '" + second + "'");
  writeIndex(dir, {{"a", first}, {"b", second}, {"c", second}});
  EXPECT_EQ(openError(dir.path()),
            indexPath() + ": tensor 'b' is not in its shard '" + second + "'");
}

TEST_F(ShardedCheckpointTest, TensorInTwoShards) {
  writeFile(dir.file(second),
            fileOf({f32Tensor("c", {3}), f32Tensor("a", {4})}));
  writeIndex(dir, {{"a", first}, {"b", first}, {"c", second}});
  EXPECT_EQ(openError(dir.path()),
            indexPath() + ": tensor 'a' is in two shards, '" + first +
                "' (as indexed) and '" + second + "'");
}

TEST_F(ShardedCheckpointTest, TensorTheIndexDoesNotList) {
  writeIndex(dir, {{"a", first}, {"c", second}});
  EXPECT_EQ(openError(dir.path()),
            indexPath() + ": shard '" + first +
                "' holds tensor 'b', which the index does not list");
}

TEST_F(ShardedCheckpointTest, MalformedIndexes) {
  writeFile(indexPath(), "{\"weight_map\": {\"a\": ");
  EXPECT_CONTAINS(openError(dir.path()), indexPath() + ": invalid JSON: ");
  writeFile(indexPath(), "[]");
  EXPECT_EQ(openError(dir.path()), indexPath() + ": must hold a JSON object");
  writeFile(indexPath(), "{\"weight_map\": []}");
  EXPECT_EQ(openError(dir.path()), indexPath() + ": no \"weight_map\" object");
  writeFile(indexPath(), "{\"weight_map\": {\"a\": 1}}");
  EXPECT_EQ(openError(dir.path()),
            indexPath() + ": weight_map entry of tensor 'a' is not a string");
  // llvm::json alone would keep the second entry and lose the first.
  writeFile(indexPath(), "{\"weight_map\": {\"a\": \"" + first +
                             "\", \"a\": \"" + second + "\"}}");
  EXPECT_EQ(openError(dir.path()),
            indexPath() + ": duplicate key 'a' in 'weight_map'");
  writeFile(indexPath(), "{\"weight_map\": {}, \"weight_map\": {}}");
  EXPECT_EQ(openError(dir.path()),
            indexPath() + ": duplicate key 'weight_map'");
}

TEST_F(ShardedCheckpointTest, BrokenShard) {
  writeFile(dir.file(second), safetensorsBytes("{\"c\": 1}"));
  writeIndex(dir, {{"a", first}, {"b", first}, {"c", second}});
  EXPECT_EQ(openError(dir.path()),
            dir.file(second) + ": tensor 'c': entry is not an object");
}

TEST_F(ShardedCheckpointTest, OtherStems) {
  writeIndex(dir, {{"a", first}, {"b", first}, {"c", second}}, "adapter_model");
  auto checkpoint = Checkpoint::open(dir.path(), "adapter_model");
  ASSERT_TRUE(static_cast<bool>(checkpoint))
      << errorText(std::move(checkpoint));
  EXPECT_EQ((*checkpoint)->names(), (std::vector<std::string>{"a", "b", "c"}));
  EXPECT_CONTAINS(openError(dir.path()),
                  "neither model.safetensors.index.json");
}

} // namespace
