//===- SafeTensorsTest.cpp - dtypes, safetensors reader and writer --------===//

#include "WeightsTestSupport.h"

#include "moe/Weights/SafeTensors.h"

#include "mlir/IR/BuiltinTypes.h"
#include "mlir/IR/MLIRContext.h"
#include "llvm/ADT/bit.h"
#include "llvm/Support/JSON.h"

#include <cmath>
#include <limits>
#include <random>

#include <csignal>
#include <sys/resource.h>
#include <unistd.h>

using namespace mlir::moe::weights;
using namespace moe_test;

namespace {

//===----------------------------------------------------------------------===//
// Test vectors made by the Python safetensors library (0.8.0)
//===----------------------------------------------------------------------===//

// save({'a': tensor([1.0, -2.5], float16), 'b': tensor([[3.0]], bfloat16)},
//      metadata={'format': 'pt'})
const std::string kPythonHalfAndBFloat = bytesOf(
    "\x90\x00\x00\x00\x00\x00\x00\x00{\"__metadata__\":{\"format\":\"pt\"},"
    "\"b\":{\"dtype\":\"BF16\",\"shape\":[1,1],\"data_offsets\":[0,2]},"
    "\"a\":{\"dtype\":\"F16\",\"shape\":[2],\"data_offsets\":[2,6]}}   "
    "@@\x00<\x00\xc1");

// save({'w': tensor([[1.5, -0.25], [65504.0, 1e-40]], float32),
//       'i': tensor(-7, int64), 'e': zeros((0, 3), float32)})
const std::string kPythonScalarAndEmpty = bytesOf(
    "\xa8\x00\x00\x00\x00\x00\x00\x00{\"i\":{\"dtype\":\"I64\",\"shape\":[],"
    "\"data_offsets\":[0,8]},\"e\":{\"dtype\":\"F32\",\"shape\":[0,3],"
    "\"data_offsets\":[8,8]},\"w\":{\"dtype\":\"F32\",\"shape\":[2,2],"
    "\"data_offsets\":[8,24]}}    \xf9\xff\xff\xff\xff\xff\xff\xff\x00\x00"
    "\xc0?\x00\x00\x80\xbe\x00\xe0\x7fG\xc2\x16\x01\x00");

// save({'a': tensor([1.0, -2.5], float16)}, metadata={'format': 'pt'}):
// with one tensor the writers agree byte for byte.
const std::string kPythonSingleHalf = bytesOf(
    "X\x00\x00\x00\x00\x00\x00\x00{\"__metadata__\":{\"format\":\"pt\"},"
    "\"a\":{\"dtype\":\"F16\",\"shape\":[2],\"data_offsets\":[0,4]}}   "
    "\x00<\x00\xc1");

std::vector<float> toFloats(DType dtype, llvm::ArrayRef<uint8_t> bytes) {
  std::vector<float> values(bytes.size() / dtypeSize(dtype));
  convertToF32(dtype, bytes.data(), values.data(), values.size());
  return values;
}

//===----------------------------------------------------------------------===//
// DType
//===----------------------------------------------------------------------===//

const DType kAllDTypes[] = {
    DType::F64,     DType::F32, DType::F16, DType::BF16, DType::F8_E4M3,
    DType::F8_E5M2, DType::I64, DType::I32, DType::I16,  DType::I8,
    DType::U64,     DType::U32, DType::U16, DType::U8,   DType::BOOL};

TEST(DTypeTest, NamesSizesAndReadability) {
  const char *names[] = {"F64",     "F32", "F16", "BF16", "F8_E4M3",
                         "F8_E5M2", "I64", "I32", "I16",  "I8",
                         "U64",     "U32", "U16", "U8",   "BOOL"};
  unsigned sizes[] = {8, 4, 2, 2, 1, 1, 8, 4, 2, 1, 8, 4, 2, 1, 1};
  for (auto [i, dtype] : llvm::enumerate(kAllDTypes)) {
    EXPECT_EQ(dtypeName(dtype), names[i]);
    EXPECT_EQ(parseDType(names[i]), dtype);
    EXPECT_EQ(dtypeSize(dtype), sizes[i]) << names[i];
    EXPECT_EQ(isReadableFloat(dtype), i < 4) << names[i];
  }
  EXPECT_EQ(parseDType("f32"), std::nullopt);
  EXPECT_EQ(parseDType("F4"), std::nullopt);
  EXPECT_EQ(parseDType(""), std::nullopt);
}

TEST(DTypeTest, MlirTypes) {
  mlir::MLIRContext context;
  EXPECT_TRUE(
      mlir::isa<mlir::Float32Type>(dtypeToMlirType(DType::F32, &context)));
  EXPECT_TRUE(
      mlir::isa<mlir::Float64Type>(dtypeToMlirType(DType::F64, &context)));
  EXPECT_TRUE(
      mlir::isa<mlir::Float16Type>(dtypeToMlirType(DType::F16, &context)));
  EXPECT_TRUE(
      mlir::isa<mlir::BFloat16Type>(dtypeToMlirType(DType::BF16, &context)));
  for (DType dtype : kAllDTypes) {
    mlir::Type type = dtypeToMlirType(dtype, &context);
    ASSERT_TRUE(type) << dtypeName(dtype).str();
    EXPECT_EQ(mlirTypeToDType(type), dtype) << dtypeName(dtype).str();
  }
  EXPECT_EQ(mlirTypeToDType(mlir::IndexType::get(&context)), std::nullopt);
  EXPECT_EQ(mlirTypeToDType(mlir::IntegerType::get(&context, 7)), std::nullopt);
  EXPECT_EQ(mlirTypeToDType(mlir::Float8E4M3FNUZType::get(&context)),
            std::nullopt);
  EXPECT_EQ(mlirTypeToDType(mlir::Type()), std::nullopt);
}

uint16_t toHalf(float value) {
  uint8_t bytes[2];
  convertFromF32(DType::F16, &value, bytes, 1);
  return static_cast<uint16_t>(bytes[0] | bytes[1] << 8);
}
float fromHalf(uint16_t half) {
  uint8_t bytes[2] = {static_cast<uint8_t>(half),
                      static_cast<uint8_t>(half >> 8)};
  float value;
  convertToF32(DType::F16, bytes, &value, 1);
  return value;
}
uint16_t toBFloat(float value) {
  uint8_t bytes[2];
  convertFromF32(DType::BF16, &value, bytes, 1);
  return static_cast<uint16_t>(bytes[0] | bytes[1] << 8);
}
float fromBFloat(uint16_t bfloat) {
  uint8_t bytes[2] = {static_cast<uint8_t>(bfloat),
                      static_cast<uint8_t>(bfloat >> 8)};
  float value;
  convertToF32(DType::BF16, bytes, &value, 1);
  return value;
}

TEST(DTypeTest, HalfKnownValues) {
  EXPECT_EQ(toHalf(1.0f), 0x3c00);
  EXPECT_EQ(toHalf(-2.5f), 0xc100);
  EXPECT_EQ(toHalf(65504.0f), 0x7bff);
  EXPECT_EQ(toHalf(0.0f), 0x0000);
  EXPECT_EQ(toHalf(-0.0f), 0x8000);
  EXPECT_EQ(toHalf(std::ldexp(1.0f, -24)), 0x0001); // smallest subnormal
  EXPECT_EQ(toHalf(std::ldexp(1023.0f, -24)), 0x03ff);
  EXPECT_EQ(toHalf(std::ldexp(1.0f, -14)), 0x0400); // smallest normal
  EXPECT_EQ(toHalf(INFINITY), 0x7c00);
  EXPECT_EQ(toHalf(-INFINITY), 0xfc00);
  EXPECT_EQ(fromHalf(0x0001), std::ldexp(1.0f, -24));
  EXPECT_EQ(fromHalf(0x03ff), std::ldexp(1023.0f, -24));
  EXPECT_EQ(fromHalf(0x8001), -std::ldexp(1.0f, -24));
  EXPECT_EQ(fromHalf(0x7bff), 65504.0f);
  EXPECT_EQ(fromHalf(0x7c00), INFINITY);
  EXPECT_EQ(fromHalf(0xfc00), -INFINITY);
  EXPECT_TRUE(std::signbit(fromHalf(0x8000)));
}

TEST(DTypeTest, HalfRoundsToNearestEven) {
  // Exactly halfway: to the even neighbour.
  EXPECT_EQ(toHalf(1.0f + std::ldexp(1.0f, -11)), 0x3c00);
  EXPECT_EQ(toHalf(1.0f + 3 * std::ldexp(1.0f, -11)), 0x3c02);
  // Just above halfway: up.
  EXPECT_EQ(toHalf(1.0f + std::ldexp(1.0f, -11) + std::ldexp(1.0f, -20)),
            0x3c01);
  // Overflow: 65519.99 stays finite, 65520 (halfway to 2^16) is infinity.
  EXPECT_EQ(toHalf(65519.0f), 0x7bff);
  EXPECT_EQ(toHalf(std::nextafter(65520.0f, 0.0f)), 0x7bff);
  EXPECT_EQ(toHalf(65520.0f), 0x7c00);
  EXPECT_EQ(toHalf(-1e10f), 0xfc00);
  // Subnormal results: 2^-25 ties to zero, anything above it rounds up.
  EXPECT_EQ(toHalf(std::ldexp(1.0f, -25)), 0x0000);
  EXPECT_EQ(toHalf(std::nextafter(std::ldexp(1.0f, -25), 1.0f)), 0x0001);
  EXPECT_EQ(toHalf(3 * std::ldexp(1.0f, -25)), 0x0002);
  EXPECT_EQ(toHalf(5 * std::ldexp(1.0f, -25)), 0x0002);
  EXPECT_EQ(toHalf(-std::ldexp(1.0f, -26)), 0x8000);
  // The largest subnormal plus half an ulp carries into the smallest normal.
  EXPECT_EQ(toHalf(std::ldexp(1023.5f, -24)), 0x0400);
  EXPECT_EQ(toHalf(1e-40f), 0x0000); // float subnormal
}

TEST(DTypeTest, HalfNaN) {
  EXPECT_TRUE(std::isnan(fromHalf(0x7e00)));
  EXPECT_TRUE(std::isnan(fromHalf(0x7c01))); // signalling, payload 1
  EXPECT_TRUE(std::isnan(fromHalf(0xfe00)));
  uint16_t half = toHalf(std::numeric_limits<float>::quiet_NaN());
  EXPECT_EQ(half & 0x7c00, 0x7c00);
  EXPECT_NE(half & 0x03ff, 0);
  // A NaN whose payload sits below the bits a half keeps stays a NaN.
  EXPECT_TRUE(std::isnan(fromHalf(toHalf(llvm::bit_cast<float>(0x7f800001u)))));
  EXPECT_EQ(toHalf(-std::numeric_limits<float>::quiet_NaN()) & 0x8000, 0x8000);
}

TEST(DTypeTest, HalfRoundTripsEveryValue) {
  for (uint32_t bits = 0; bits <= 0xffff; ++bits) {
    float value = fromHalf(static_cast<uint16_t>(bits));
    if ((bits & 0x7c00) == 0x7c00 && (bits & 0x3ff)) {
      ASSERT_TRUE(std::isnan(value)) << bits;
      ASSERT_TRUE(std::isnan(fromHalf(toHalf(value)))) << bits;
      continue;
    }
    ASSERT_EQ(toHalf(value), bits) << "half 0x" << std::hex << bits;
  }
}

/// The correctly rounded conversion, found by search among the finite
/// values of a 16-bit format given by `decode` (ascending bit patterns
/// 0..maxFinite are ascending values): the nearer neighbour, the even one
/// on a tie, infinity past the last rounding boundary.
uint16_t referenceRound(float value, uint16_t maxFinite, uint16_t infinity,
                        float (*decode)(uint16_t)) {
  uint16_t sign = std::signbit(value) ? 0x8000 : 0;
  double magnitude = std::fabs(static_cast<double>(value));
  double largest = decode(maxFinite);
  double ulpAtTop = largest - decode(maxFinite - 1);
  if (magnitude >= largest + ulpAtTop / 2)
    return sign | infinity;
  uint16_t low = 0, high = maxFinite;
  while (high - low > 1) { // decode(low) <= magnitude < decode(high)
    uint16_t middle = (low + high) / 2;
    if (decode(middle) <= magnitude)
      low = middle;
    else
      high = middle;
  }
  if (decode(high) <= magnitude)
    low = high;
  double below = magnitude - decode(low), above = decode(high) - magnitude;
  uint16_t rounded;
  if (low == high || below < above)
    rounded = low;
  else if (above < below)
    rounded = high;
  else
    rounded = (low & 1) ? high : low;
  return sign | rounded;
}

TEST(DTypeTest, NarrowingMatchesAReferenceOnRandomFloats) {
  std::mt19937 random(20240607);
  std::uniform_int_distribution<uint32_t> anyBits;
  for (int i = 0; i < 200000; ++i) {
    uint32_t bits = anyBits(random);
    // Half the samples around the half range, where rounding happens.
    if (i % 2)
      bits = (bits & 0x807fffff) | ((100 + bits % 45) << 23);
    float value = llvm::bit_cast<float>(bits);
    if (std::isnan(value))
      continue;
    ASSERT_EQ(toHalf(value), referenceRound(value, 0x7bff, 0x7c00, fromHalf))
        << std::hexfloat << value;
    ASSERT_EQ(toBFloat(value),
              referenceRound(value, 0x7f7f, 0x7f80, fromBFloat))
        << std::hexfloat << value;
  }
}

TEST(DTypeTest, BFloatKnownValuesAndRounding) {
  EXPECT_EQ(toBFloat(1.0f), 0x3f80);
  EXPECT_EQ(toBFloat(3.0f), 0x4040);
  EXPECT_EQ(toBFloat(-0.0f), 0x8000);
  EXPECT_EQ(toBFloat(1.0f + std::ldexp(1.0f, -8)), 0x3f80); // tie, even
  EXPECT_EQ(toBFloat(1.0f + 3 * std::ldexp(1.0f, -8)), 0x3f82);
  EXPECT_EQ(toBFloat(std::numeric_limits<float>::max()), 0x7f80);
  EXPECT_EQ(toBFloat(INFINITY), 0x7f80);
  EXPECT_EQ(toBFloat(-INFINITY), 0xff80);
  EXPECT_EQ(toBFloat(std::numeric_limits<float>::denorm_min()), 0x0000);
  EXPECT_EQ(toBFloat(llvm::bit_cast<float>(0x00018000u)), 0x0002); // tie up
  EXPECT_EQ(fromBFloat(0x0001), llvm::bit_cast<float>(0x00010000u));
  // A NaN with only low payload bits must not truncate to infinity.
  uint16_t nan = toBFloat(llvm::bit_cast<float>(0x7f800001u));
  EXPECT_TRUE(std::isnan(fromBFloat(nan)));
  EXPECT_TRUE(std::isnan(fromBFloat(toBFloat(-NAN))));
  for (uint32_t bits = 0; bits <= 0xffff; ++bits) {
    float value = fromBFloat(static_cast<uint16_t>(bits));
    if (std::isnan(value))
      continue;
    ASSERT_EQ(toBFloat(value), bits) << bits;
  }
}

TEST(DTypeTest, FloatAndDoubleConversions) {
  std::vector<float> values = {0.0f,    -0.0f,
                               1.5f,    -3.25e-3f,
                               1e-40f,  std::numeric_limits<float>::max(),
                               INFINITY};
  for (DType dtype : {DType::F32, DType::F64}) {
    std::vector<uint8_t> bytes(values.size() * dtypeSize(dtype));
    convertFromF32(dtype, values.data(), bytes.data(), values.size());
    std::vector<float> back = toFloats(dtype, bytes);
    for (auto [i, value] : llvm::enumerate(values))
      EXPECT_EQ(llvm::bit_cast<uint32_t>(back[i]),
                llvm::bit_cast<uint32_t>(value))
          << dtypeName(dtype).str() << " " << value;
  }
  // Doubles narrow to the nearest float.
  double source[] = {0.1, 1e300, -1e-300, 1.0 + 0x1p-24, 1.0 + 0x1.8p-24};
  uint8_t bytes[sizeof(source)];
  for (auto [i, value] : llvm::enumerate(source))
    llvm::support::endian::write64le(bytes + 8 * i,
                                     llvm::bit_cast<uint64_t>(value));
  std::vector<float> floats = toFloats(DType::F64, bytes);
  EXPECT_EQ(floats[0], 0.1f);
  EXPECT_EQ(floats[1], INFINITY);
  EXPECT_EQ(floats[2], -0.0f);
  EXPECT_EQ(floats[3], 1.0f);            // tie to even
  EXPECT_EQ(floats[4], 1.0f + 0x1p-23f); // above the tie
}

TEST(DTypeTest, UnalignedSources) {
  // Data regions need not be aligned; conversion reads byte-wise.
  uint8_t bytes[9] = {0xff};
  float one = 1.0f, back = 0;
  convertFromF32(DType::F32, &one, bytes + 1, 1);
  convertToF32(DType::F32, bytes + 1, &back, 1);
  EXPECT_EQ(back, 1.0f);
}

//===----------------------------------------------------------------------===//
// Header parsing
//===----------------------------------------------------------------------===//

/// The error of parsing `json` with a data region of `dataSize` bytes.
std::string headerError(llvm::StringRef json, uint64_t dataSize) {
  return errorText(parseSafeTensorsHeader(json, dataSize, "model.safetensors"));
}

std::string tensor(llvm::StringRef name, llvm::StringRef dtype,
                   llvm::StringRef shape, uint64_t begin, uint64_t end) {
  return ("\"" + name + "\":{\"dtype\":\"" + dtype + "\",\"shape\":" + shape +
          ",\"data_offsets\":[" + llvm::Twine(begin) + "," + llvm::Twine(end) +
          "]}")
      .str();
}

TEST(SafeTensorsHeaderTest, ParsesAValidHeader) {
  std::string json = "{\"__metadata__\":{\"format\":\"pt\",\"x\":\"\"}," +
                     tensor("b", "F32", "[2]", 8, 16) + "," +
                     tensor("a", "BF16", "[2,2]", 0, 8) + "," +
                     tensor("s", "U8", "[]", 16, 17) + "," +
                     tensor("z", "I64", "[0,5]", 17, 17) + "}  ";
  auto header = parseSafeTensorsHeader(json, 17, "model.safetensors");
  ASSERT_TRUE(static_cast<bool>(header)) << errorText(std::move(header));
  ASSERT_EQ(header->tensors.size(), 4u);
  // In data order.
  EXPECT_EQ(header->tensors[0].name, "a");
  EXPECT_EQ(header->tensors[0].dtype, DType::BF16);
  EXPECT_EQ(header->tensors[0].shape, (llvm::SmallVector<int64_t, 4>{2, 2}));
  EXPECT_EQ(header->tensors[0].numElements(), 4u);
  EXPECT_EQ(header->tensors[1].name, "b");
  EXPECT_EQ(header->tensors[1].begin, 8u);
  EXPECT_EQ(header->tensors[1].end, 16u);
  EXPECT_EQ(header->tensors[2].name, "s");
  EXPECT_EQ(header->tensors[2].numElements(), 1u);
  EXPECT_EQ(header->tensors[3].name, "z");
  EXPECT_EQ(header->tensors[3].numElements(), 0u);
  EXPECT_EQ(header->tensors[3].numBytes(), 0u);
  EXPECT_EQ(header->metadata.size(), 2u);
  EXPECT_EQ(header->metadata["format"], "pt");
  EXPECT_EQ(header->headerSize, json.size());
  EXPECT_EQ(header->dataSize, 17u);
}

TEST(SafeTensorsHeaderTest, EmptyHeaders) {
  auto header = parseSafeTensorsHeader("{}", 0, "empty.safetensors");
  ASSERT_TRUE(static_cast<bool>(header)) << errorText(std::move(header));
  EXPECT_TRUE(header->tensors.empty());
  EXPECT_EQ(headerError("{\"__metadata__\":{}}", 3),
            "model.safetensors: data region bytes [0, 3] belong to no tensor");
}

TEST(SafeTensorsHeaderTest, SizeMismatchMessage) {
  std::string json =
      "{" + tensor("model.norm.weight", "F16", "[4]", 0, 12) + "}";
  EXPECT_EQ(headerError(json, 12),
            "model.safetensors: tensor 'model.norm.weight': data_offsets "
            "[0, 12] span 12 bytes but shape [4] of F16 needs 8");
}

TEST(SafeTensorsHeaderTest, InvalidJson) {
  std::string error = headerError("{\"a\": ", 0);
  EXPECT_CONTAINS(error, "model.safetensors: header is not valid JSON");
  EXPECT_CONTAINS(headerError("", 0), "header is not valid JSON");
  EXPECT_CONTAINS(headerError("{} x", 0), "header is not valid JSON");
  EXPECT_CONTAINS(headerError("{\"a\":\"\xff\"}", 0),
                  "header is not valid JSON");
  EXPECT_CONTAINS(headerError(llvm::StringRef("{\0}", 3), 0),
                  "header is not valid JSON");
}

TEST(SafeTensorsHeaderTest, DeepNestingIsRefusedWithoutRecursion) {
  std::string shallow =
      "{\"__metadata__\":" + std::string(62, '[') + std::string(62, ']') + "}";
  EXPECT_CONTAINS(headerError(shallow, 0),
                  "__metadata__ must be an object of strings");
  // Deep enough to overflow the stack of a recursive parser.
  std::string deep = std::string(1'000'000, '[') + std::string(1'000'000, ']');
  EXPECT_EQ(headerError(deep, 0), "model.safetensors: header is not valid "
                                  "JSON: nesting deeper than 64 levels");
}

TEST(SafeTensorsHeaderTest, NotAnObject) {
  EXPECT_EQ(headerError("[1, 2]", 0),
            "model.safetensors: header is not a JSON object");
  EXPECT_EQ(headerError("\"x\"", 0),
            "model.safetensors: header is not a JSON object");
  EXPECT_EQ(headerError("{\"a\": 3}", 0),
            "model.safetensors: tensor 'a': entry is not an object");
}

TEST(SafeTensorsHeaderTest, DuplicateKeys) {
  std::string a = tensor("a", "F32", "[1]", 0, 4);
  EXPECT_EQ(headerError("{" + a + "," + a + "}", 4),
            "model.safetensors: duplicate key 'a' in the header object");
  // Keys compare after unescaping.
  EXPECT_EQ(headerError("{" + a + ",\"\\u0061\":{}}", 4),
            "model.safetensors: duplicate key 'a' in the header object");
  EXPECT_EQ(headerError("{\"a\":{\"dtype\":\"F32\",\"dtype\":\"F16\","
                        "\"shape\":[1],\"data_offsets\":[0,4]}}",
                        4),
            "model.safetensors: tensor 'a': duplicate key 'dtype'");
  EXPECT_EQ(headerError("{\"__metadata__\":{\"k\":\"1\",\"k\":\"2\"}}", 0),
            "model.safetensors: __metadata__: duplicate key 'k'");
  // Deeper, where no field may be an object anyway: still found.
  EXPECT_EQ(headerError("{\"a\":{\"shape\":[{\"x\":1,\"x\":2}]}}", 0),
            "model.safetensors: tensor 'a': duplicate key 'x' in 'shape[0]'");
  // Quotes inside strings and escaped quotes do not confuse the scan.
  EXPECT_EQ(headerError("{\"__metadata__\":{\"q\\\"{\":\"}\\\\\","
                        "\"q\\\"{\":\"\"}}",
                        0),
            "model.safetensors: __metadata__: duplicate key 'q\"{'");
  // The same key in different objects is fine.
  auto header = parseSafeTensorsHeader(
      "{\"__metadata__\":{\"a\":\"x\"}," + a + "}", 4, "m");
  EXPECT_TRUE(static_cast<bool>(header)) << errorText(std::move(header));
}

TEST(SafeTensorsHeaderTest, UnknownDType) {
  EXPECT_EQ(headerError("{" + tensor("w", "Q4_K", "[1]", 0, 1) + "}", 1),
            "model.safetensors: tensor 'w': unknown dtype 'Q4_K'");
  // Newer safetensors releases know sub-byte formats (F4, F6_E2M3, ...);
  // this reader does not, and says so rather than misreading them.
  EXPECT_EQ(headerError("{" + tensor("w", "F4", "[2]", 0, 1) + "}", 1),
            "model.safetensors: tensor 'w': unknown dtype 'F4'");
  EXPECT_EQ(headerError("{\"w\":{\"dtype\":1,\"shape\":[1],"
                        "\"data_offsets\":[0,1]}}",
                        1),
            "model.safetensors: tensor 'w': dtype is not a string");
}

TEST(SafeTensorsHeaderTest, FieldsMissingOrUnexpected) {
  EXPECT_EQ(headerError("{\"w\":{\"dtype\":\"F32\",\"shape\":[1]}}", 4),
            "model.safetensors: tensor 'w': missing field 'data_offsets'");
  EXPECT_EQ(headerError("{\"w\":{\"dtype\":\"F32\",\"shape\":[1],"
                        "\"data_offsets\":[0,4],\"extra\":0}}",
                        4),
            "model.safetensors: tensor 'w': unexpected field 'extra'");
}

TEST(SafeTensorsHeaderTest, BadShape) {
  EXPECT_EQ(headerError("{" + tensor("w", "F32", "[2,-1]", 0, 4) + "}", 4),
            "model.safetensors: tensor 'w': shape element 1 is not a "
            "non-negative integer");
  EXPECT_CONTAINS(headerError("{" + tensor("w", "F32", "[1.0]", 0, 4) + "}", 4),
                  "shape element 0 is not a non-negative integer");
  EXPECT_CONTAINS(
      headerError("{" + tensor("w", "F32", "[\"1\"]", 0, 4) + "}", 4),
      "shape element 0 is not a non-negative integer");
  EXPECT_CONTAINS(
      headerError(
          "{" + tensor("w", "F32", "[18446744073709551615]", 0, 4) + "}", 4),
      "shape element 0 is not a non-negative integer");
  EXPECT_EQ(headerError("{" + tensor("w", "F32", "4", 0, 4) + "}", 4),
            "model.safetensors: tensor 'w': shape is not an array");
  EXPECT_EQ(
      headerError("{" + tensor("w", "F32", "[4294967296,4294967296,16]", 0, 4) +
                      "}",
                  4),
      "model.safetensors: tensor 'w': shape [4294967296, 4294967296, "
      "16] of F32 needs more than 2^64 bytes");
}

TEST(SafeTensorsHeaderTest, BadOffsets) {
  auto entry = [](llvm::StringRef offsets) {
    return ("{\"w\":{\"dtype\":\"U8\",\"shape\":[4],\"data_offsets\":" +
            offsets + "}}")
        .str();
  };
  const char *twoIntegers = "model.safetensors: tensor 'w': data_offsets "
                            "must be two non-negative integers";
  EXPECT_EQ(headerError(entry("[0]"), 4), twoIntegers);
  EXPECT_EQ(headerError(entry("[0,4,4]"), 4), twoIntegers);
  EXPECT_EQ(headerError(entry("[-4,0]"), 4), twoIntegers);
  EXPECT_EQ(headerError(entry("[0,4.5]"), 4), twoIntegers);
  EXPECT_EQ(headerError(entry("\"0,4\""), 4), twoIntegers);
  EXPECT_EQ(headerError(entry("[8,4]"), 8),
            "model.safetensors: tensor 'w': data_offsets [8, 4] begin after "
            "end");
  EXPECT_EQ(headerError(entry("[4,8]"), 6),
            "model.safetensors: tensor 'w': data_offsets [4, 8] run past the "
            "data region of 6 bytes");
  EXPECT_CONTAINS(headerError(entry("[0,18446744073709551615]"), 4),
                  "two non-negative integers");
}

TEST(SafeTensorsHeaderTest, OverlapsAndHoles) {
  EXPECT_EQ(headerError("{" + tensor("a", "F32", "[2]", 0, 8) + "," +
                            tensor("b", "F32", "[2]", 4, 12) + "}",
                        12),
            "model.safetensors: tensors 'a' [0, 8] and 'b' [4, 12] overlap");
  // The same range twice overlaps too.
  EXPECT_CONTAINS(headerError("{" + tensor("a", "F32", "[1]", 0, 4) + "," +
                                  tensor("b", "F32", "[1]", 0, 4) + "}",
                              4),
                  "tensors 'a' [0, 4] and 'b' [0, 4] overlap");
  // An empty tensor inside another one.
  EXPECT_CONTAINS(headerError("{" + tensor("a", "F32", "[2]", 0, 8) + "," +
                                  tensor("e", "F32", "[0]", 4, 4) + "}",
                              8),
                  "tensors 'a' [0, 8] and 'e' [4, 4] overlap");
  EXPECT_EQ(headerError("{" + tensor("a", "F32", "[1]", 0, 4) + "," +
                            tensor("b", "F32", "[1]", 8, 12) + "}",
                        12),
            "model.safetensors: data region bytes [4, 8] belong to no tensor "
            "(before 'b')");
  EXPECT_EQ(headerError("{" + tensor("b", "F32", "[1]", 4, 8) + "}", 8),
            "model.safetensors: data region bytes [0, 4] belong to no tensor "
            "(before 'b')");
  EXPECT_EQ(headerError("{" + tensor("a", "F32", "[1]", 0, 4) + "}", 6),
            "model.safetensors: data region bytes [4, 6] belong to no tensor "
            "(after 'a')");
  // Empty tensors at boundaries are fine.
  auto header =
      parseSafeTensorsHeader("{" + tensor("a", "F32", "[1]", 0, 4) + "," +
                                 tensor("e", "F32", "[0]", 4, 4) + "," +
                                 tensor("f", "F32", "[3,0]", 0, 0) + "," +
                                 tensor("b", "F32", "[1]", 4, 8) + "}",
                             8, "m");
  ASSERT_TRUE(static_cast<bool>(header)) << errorText(std::move(header));
  EXPECT_EQ(header->tensors[0].name, "f");
  EXPECT_EQ(header->tensors[1].name, "a");
  EXPECT_EQ(header->tensors[2].name, "e");
  EXPECT_EQ(header->tensors[3].name, "b");
}

TEST(SafeTensorsHeaderTest, BadMetadata) {
  EXPECT_EQ(headerError("{\"__metadata__\":[]}", 0),
            "model.safetensors: __metadata__ must be an object of strings");
  EXPECT_EQ(headerError("{\"__metadata__\":null}", 0),
            "model.safetensors: __metadata__ must be an object of strings");
  EXPECT_EQ(headerError("{\"__metadata__\":{\"step\":3}}", 0),
            "model.safetensors: __metadata__: value of 'step' is not a "
            "string");
}

TEST(SafeTensorsHeaderTest, NamesInMessagesAreEscaped) {
  EXPECT_EQ(headerError("{\"a\\n'b\":{}}", 0),
            "model.safetensors: tensor 'a\\x0a\\'b': missing field 'dtype'");
}

TEST(SafeTensorsHeaderTest, HeaderLargerThanTheLimit) {
  std::string json(kMaxHeaderSize + 1, ' ');
  EXPECT_EQ(headerError(json, 0),
            "model.safetensors: header of 100000001 bytes exceeds the limit "
            "of 100000000");
}

//===----------------------------------------------------------------------===//
// Files
//===----------------------------------------------------------------------===//

TEST(SafeTensorsFileTest, ReadsPythonFiles) {
  TempDir dir;
  ASSERT_EQ(kPythonHalfAndBFloat.size(), 158u);
  std::string path = dir.file("halves.safetensors");
  writeFile(path, kPythonHalfAndBFloat);
  auto file = SafeTensorsFile::open(path);
  ASSERT_TRUE(static_cast<bool>(file)) << errorText(std::move(file));
  EXPECT_EQ((*file)->path(), path);
  EXPECT_EQ((*file)->dataOffset(), 8u + 0x90);
  EXPECT_EQ((*file)->header().metadata.at("format"), "pt");
  ASSERT_EQ((*file)->tensors().size(), 2u);
  const TensorInfo *a = (*file)->find("a");
  const TensorInfo *b = (*file)->find("b");
  ASSERT_TRUE(a && b);
  EXPECT_EQ((*file)->find("c"), nullptr);
  EXPECT_EQ(a->dtype, DType::F16);
  EXPECT_EQ(b->dtype, DType::BF16);
  EXPECT_EQ(b->shape, (llvm::SmallVector<int64_t, 4>{1, 1}));
  auto aBytes = (*file)->readBytes(*a);
  ASSERT_TRUE(static_cast<bool>(aBytes)) << errorText(std::move(aBytes));
  EXPECT_EQ(toFloats(DType::F16, *aBytes), (std::vector<float>{1.0f, -2.5f}));
  auto bBytes = (*file)->readBytes(*b);
  ASSERT_TRUE(static_cast<bool>(bBytes));
  EXPECT_EQ(toFloats(DType::BF16, *bBytes), (std::vector<float>{3.0f}));

  ASSERT_EQ(kPythonScalarAndEmpty.size(), 200u);
  path = dir.file("mixed.safetensors");
  writeFile(path, kPythonScalarAndEmpty);
  file = SafeTensorsFile::open(path);
  ASSERT_TRUE(static_cast<bool>(file)) << errorText(std::move(file));
  const TensorInfo *i = (*file)->find("i");
  const TensorInfo *e = (*file)->find("e");
  const TensorInfo *w = (*file)->find("w");
  ASSERT_TRUE(i && e && w);
  EXPECT_TRUE(i->shape.empty());
  EXPECT_EQ(i->numElements(), 1u);
  auto iBytes = (*file)->readBytes(*i);
  ASSERT_TRUE(static_cast<bool>(iBytes));
  EXPECT_EQ(
      static_cast<int64_t>(llvm::support::endian::read64le(iBytes->data())),
      -7);
  EXPECT_EQ(e->numElements(), 0u);
  auto eBytes = (*file)->readBytes(*e);
  ASSERT_TRUE(static_cast<bool>(eBytes));
  EXPECT_TRUE(eBytes->empty());
  auto wBytes = (*file)->readBytes(*w);
  ASSERT_TRUE(static_cast<bool>(wBytes));
  EXPECT_EQ(toFloats(DType::F32, *wBytes),
            (std::vector<float>{1.5f, -0.25f, 65504.0f, 1e-40f}));
}

std::string openError(const TempDir &dir, llvm::StringRef contents) {
  std::string path = dir.file("model.safetensors");
  writeFile(path, contents);
  return errorText(SafeTensorsFile::open(path));
}

TEST(SafeTensorsFileTest, TruncatedFile) {
  TempDir dir;
  std::string path = dir.file("model.safetensors");
  EXPECT_EQ(openError(dir, bytesOf("\x05\x00\x00")),
            path + ": file of 3 bytes is too short for the 8-byte header "
                   "length");
  EXPECT_CONTAINS(openError(dir, ""), "file of 0 bytes is too short");
  // A file cut inside the data region: the tensors no longer tile it.
  std::string whole = safetensorsBytes(
      "{" + tensor("a", "F32", "[2]", 0, 8) + "}", std::string(8, '\0'));
  EXPECT_EQ(openError(dir, llvm::StringRef(whole).drop_back(3)),
            path + ": tensor 'a': data_offsets [0, 8] run past the data "
                   "region of 5 bytes");
}

TEST(SafeTensorsFileTest, HeaderLengthPastTheEnd) {
  TempDir dir;
  std::string path = dir.file("model.safetensors");
  std::string bytes = safetensorsBytes("{}");
  bytes[0] = 100;
  EXPECT_EQ(openError(dir, bytes),
            path + ": header length 100 runs past the end of the file (10 "
                   "bytes)");
  // Lengths near 2^64 must not wrap around in the comparison.
  EXPECT_CONTAINS(openError(dir, std::string(8, '\xff') + "{}"),
                  "header length 18446744073709551615 exceeds the limit");
}

TEST(SafeTensorsFileTest, HeaderLengthOverTheLimit) {
  TempDir dir;
  std::string bytes = safetensorsBytes("{}");
  llvm::support::endian::write64le(bytes.data(), kMaxHeaderSize + 1);
  EXPECT_EQ(openError(dir, bytes),
            dir.file("model.safetensors") +
                ": header length 100000001 exceeds the limit of 100000000 "
                "bytes");
}

TEST(SafeTensorsFileTest, ErrorsStartWithTheFileName) {
  TempDir dir;
  std::string path = dir.file("model.safetensors");
  EXPECT_EQ(openError(dir, safetensorsBytes("[]")),
            path + ": header is not a JSON object");
  EXPECT_EQ(errorText(SafeTensorsFile::open(dir.file("absent.safetensors"))),
            dir.file("absent.safetensors") + ": No such file or directory");
  EXPECT_EQ(errorText(SafeTensorsFile::open(dir.path())),
            dir.path() + ": not a regular file");
}

TEST(SafeTensorsFileTest, OpeningReadsTheHeaderOnly) {
  // A sparse 1 GiB file: opening it must not touch the data.
  TempDir dir;
  uint64_t tensorBytes = 1ull << 30;
  std::string header =
      "{" + tensor("big", "F32", "[268435456]", 0, tensorBytes) + "}";
  std::string path = dir.file("big.safetensors");
  writeFile(path, safetensorsBytes(header));
  // truncate(2) extends without allocating.
  ASSERT_EQ(::truncate(path.c_str(), 8 + header.size() + tensorBytes), 0);
  auto file = SafeTensorsFile::open(path);
  ASSERT_TRUE(static_cast<bool>(file)) << errorText(std::move(file));
  EXPECT_EQ((*file)->header().dataSize, tensorBytes);
  EXPECT_EQ((*file)->tensors()[0].numElements(), 268435456u);
}

TEST(SafeTensorsFileTest, ReadsCheckTheFileStillHoldsTheTensor) {
  TempDir dir;
  std::string path = dir.file("model.safetensors");
  writeFile(path, safetensorsBytes("{" + tensor("a", "F32", "[2]", 0, 8) + "}",
                                   std::string(8, '\1')));
  auto file = SafeTensorsFile::open(path);
  ASSERT_TRUE(static_cast<bool>(file)) << errorText(std::move(file));
  // Shrunk behind the reader's back before the first access.
  ASSERT_EQ(::truncate(path.c_str(), 8 + (*file)->header().headerSize + 4), 0);
  EXPECT_CONTAINS(errorText((*file)->readBytes((*file)->tensors()[0])),
                  "file ended while reading tensor 'a' (changed since opened?)");
  // A TensorInfo that does not belong to the file is refused as well.
  TensorInfo stranger;
  stranger.name = "x";
  stranger.begin = 0;
  stranger.end = 1u << 20;
  EXPECT_CONTAINS(errorText((*file)->readBytes(stranger)),
                  "tensor 'x' at data_offsets [0, 1048576] lies outside the "
                  "data region of 8 bytes");
}

//===----------------------------------------------------------------------===//
// Writing
//===----------------------------------------------------------------------===//

TensorSource produced(llvm::StringRef name, DType dtype,
                      llvm::ArrayRef<int64_t> shape, std::string bytes) {
  TensorSource source;
  source.name = name.str();
  source.dtype = dtype;
  source.shape.assign(shape.begin(), shape.end());
  source.produce = [bytes](llvm::raw_ostream &os) {
    os << bytes;
    return llvm::Error::success();
  };
  return source;
}

TensorSource fromFile(llvm::StringRef name, DType dtype,
                      llvm::ArrayRef<int64_t> shape, llvm::StringRef file,
                      uint64_t offset) {
  TensorSource source;
  source.name = name.str();
  source.dtype = dtype;
  source.shape.assign(shape.begin(), shape.end());
  source.file = file.str();
  source.fileOffset = offset;
  return source;
}

std::string floatBytes(std::vector<float> values) {
  std::string bytes(values.size() * 4, '\0');
  convertFromF32(DType::F32, values.data(),
                 reinterpret_cast<uint8_t *>(bytes.data()), values.size());
  return bytes;
}

std::string halfBytes(std::vector<float> values) {
  std::string bytes(values.size() * 2, '\0');
  convertFromF32(DType::F16, values.data(),
                 reinterpret_cast<uint8_t *>(bytes.data()), values.size());
  return bytes;
}

TEST(SafeTensorsWriterTest, SingleFileMatchesPython) {
  TempDir dir;
  WriterOptions options;
  options.metadata["format"] = "pt";
  std::vector<TensorSource> tensors;
  tensors.push_back(produced("a", DType::F16, {2}, halfBytes({1.0f, -2.5f})));
  EXPECT_EQ(errorText(writeSafeTensorsCheckpoint(dir.path(), tensors, options)),
            "<success>");
  EXPECT_EQ(dir.list(), (std::vector<std::string>{"model.safetensors"}));
  EXPECT_EQ(readFile(dir.file("model.safetensors")), kPythonSingleHalf);
}

TEST(SafeTensorsWriterTest, SingleFileRoundTrip) {
  TempDir dir;
  WriterOptions options;
  options.stem = "adapter_model";
  std::vector<std::pair<uint64_t, uint64_t>> progress;
  options.progress = [&](uint64_t done, uint64_t total) {
    progress.emplace_back(done, total);
  };
  std::vector<TensorSource> tensors;
  tensors.push_back(
      produced("z.weight", DType::F32, {2, 2}, floatBytes({1, 2, 3, 4})));
  tensors.push_back(produced("a.bias", DType::F16, {3}, halfBytes({5, 6, 7})));
  tensors.push_back(produced("empty", DType::BF16, {0, 4}, ""));
  tensors.push_back(produced("scalar", DType::I8, {}, "\x7f"));
  EXPECT_EQ(errorText(writeSafeTensorsCheckpoint(dir.path(), tensors, options)),
            "<success>");
  EXPECT_EQ(dir.list(),
            (std::vector<std::string>{"adapter_model.safetensors"}));
  EXPECT_EQ(progress, (std::vector<std::pair<uint64_t, uint64_t>>{
                          {16, 23}, {22, 23}, {22, 23}, {23, 23}}));

  std::string bytes = readFile(dir.file("adapter_model.safetensors"));
  uint64_t headerSize = llvm::support::endian::read64le(bytes.data());
  EXPECT_EQ(headerSize % 8, 0u);
  EXPECT_EQ(bytes.size(), 8 + headerSize + 23);
  // Padding is spaces, after the closing brace.
  llvm::StringRef json(bytes.data() + 8, headerSize);
  EXPECT_EQ(json.rtrim(' ').back(), '}');

  auto file = SafeTensorsFile::open(dir.file("adapter_model.safetensors"));
  ASSERT_TRUE(static_cast<bool>(file)) << errorText(std::move(file));
  ASSERT_EQ((*file)->tensors().size(), 4u);
  // Written in the given order.
  EXPECT_EQ((*file)->tensors()[0].name, "z.weight");
  EXPECT_EQ((*file)->tensors()[1].name, "a.bias");
  EXPECT_TRUE((*file)->header().metadata.empty());
  auto z = (*file)->readBytes(*(*file)->find("z.weight"));
  ASSERT_TRUE(static_cast<bool>(z));
  EXPECT_EQ(toFloats(DType::F32, *z), (std::vector<float>{1, 2, 3, 4}));
  auto a = (*file)->readBytes(*(*file)->find("a.bias"));
  ASSERT_TRUE(static_cast<bool>(a));
  EXPECT_EQ(toFloats(DType::F16, *a), (std::vector<float>{5, 6, 7}));
  EXPECT_EQ((*file)->find("empty")->shape,
            (llvm::SmallVector<int64_t, 4>{0, 4}));
  EXPECT_TRUE((*file)->find("scalar")->shape.empty());

  // Writing again replaces the file.
  tensors.resize(1);
  EXPECT_EQ(errorText(writeSafeTensorsCheckpoint(dir.path(), tensors, options)),
            "<success>");
  file = SafeTensorsFile::open(dir.file("adapter_model.safetensors"));
  ASSERT_TRUE(static_cast<bool>(file));
  EXPECT_EQ((*file)->tensors().size(), 1u);
}

TEST(SafeTensorsWriterTest, NoTensors) {
  TempDir dir;
  EXPECT_EQ(errorText(writeSafeTensorsCheckpoint(dir.path(), {}, {})),
            "<success>");
  auto file = SafeTensorsFile::open(dir.file("model.safetensors"));
  ASSERT_TRUE(static_cast<bool>(file)) << errorText(std::move(file));
  EXPECT_TRUE((*file)->tensors().empty());
}

TEST(SafeTensorsWriterTest, Sharded) {
  TempDir dir;
  WriterOptions options;
  options.maxShardBytes = 40;
  options.metadata["format"] = "pt";
  std::vector<TensorSource> tensors;
  tensors.push_back(produced("b", DType::F32, {4}, floatBytes({1, 2, 3, 4})));
  tensors.push_back(produced("a", DType::F32, {4}, floatBytes({5, 6, 7, 8})));
  // Over the limit alone: a shard of its own.
  tensors.push_back(produced("huge", DType::F32, {12},
                             floatBytes(std::vector<float>(12, 0.5f))));
  tensors.push_back(produced("c", DType::F16, {2}, halfBytes({9, 10})));
  EXPECT_EQ(errorText(writeSafeTensorsCheckpoint(dir.path(), tensors, options)),
            "<success>");
  EXPECT_EQ(dir.list(),
            (std::vector<std::string>{"model-00001-of-00003.safetensors",
                                      "model-00002-of-00003.safetensors",
                                      "model-00003-of-00003.safetensors",
                                      "model.safetensors.index.json"}));
  EXPECT_EQ(readFile(dir.file("model.safetensors.index.json")),
            R"({
  "metadata": {
    "total_size": 84
  },
  "weight_map": {
    "a": "model-00001-of-00003.safetensors",
    "b": "model-00001-of-00003.safetensors",
    "c": "model-00003-of-00003.safetensors",
    "huge": "model-00002-of-00003.safetensors"
  }
}
)");
  auto first =
      SafeTensorsFile::open(dir.file("model-00001-of-00003.safetensors"));
  ASSERT_TRUE(static_cast<bool>(first)) << errorText(std::move(first));
  EXPECT_EQ((*first)->tensors().size(), 2u);
  EXPECT_EQ((*first)->header().metadata.at("format"), "pt");
  auto third =
      SafeTensorsFile::open(dir.file("model-00003-of-00003.safetensors"));
  ASSERT_TRUE(static_cast<bool>(third)) << errorText(std::move(third));
  auto c = (*third)->readBytes(*(*third)->find("c"));
  ASSERT_TRUE(static_cast<bool>(c));
  EXPECT_EQ(toFloats(DType::F16, *c), (std::vector<float>{9, 10}));
}

TEST(SafeTensorsWriterTest, ShardingThatFitsInOneFileWritesNoIndex) {
  TempDir dir;
  WriterOptions options;
  options.maxShardBytes = 1 << 20;
  std::vector<TensorSource> tensors;
  tensors.push_back(produced("a", DType::U8, {3}, "abc"));
  EXPECT_EQ(errorText(writeSafeTensorsCheckpoint(dir.path(), tensors, options)),
            "<success>");
  EXPECT_EQ(dir.list(), (std::vector<std::string>{"model.safetensors"}));
}

TEST(SafeTensorsWriterTest, ReplacesAnEarlierCheckpointOfTheSameStem) {
  TempDir dir;
  WriterOptions sharded;
  sharded.maxShardBytes = 1;
  std::vector<TensorSource> three = {produced("a", DType::U8, {1}, "a"),
                                     produced("b", DType::U8, {1}, "b"),
                                     produced("c", DType::U8, {1}, "c")};
  ASSERT_EQ(errorText(writeSafeTensorsCheckpoint(dir.path(), three, sharded)),
            "<success>");
  writeFile(dir.file("other-00001-of-00002.safetensors"), "not ours");
  writeFile(dir.file("model-notes.txt"), "not ours either");
  // Fewer shards: the third of the earlier write goes.
  three.pop_back();
  ASSERT_EQ(errorText(writeSafeTensorsCheckpoint(dir.path(), three, sharded)),
            "<success>");
  EXPECT_EQ(dir.list(), (std::vector<std::string>{
                            "model-00001-of-00002.safetensors",
                            "model-00002-of-00002.safetensors",
                            "model-notes.txt", "model.safetensors.index.json",
                            "other-00001-of-00002.safetensors"}));
  // One file: the shards and the index, which would shadow it, go.
  ASSERT_EQ(errorText(writeSafeTensorsCheckpoint(dir.path(), three, {})),
            "<success>");
  EXPECT_EQ(dir.list(),
            (std::vector<std::string>{"model-notes.txt", "model.safetensors",
                                      "other-00001-of-00002.safetensors"}));
}

TEST(SafeTensorsWriterTest, CopiesFileRanges) {
  TempDir dir;
  // Sources at odd offsets, several per file, mixed with produced tensors
  // so that copies and stream writes interleave in one output file.
  std::string source = "xyz" + floatBytes({1, 2, 3}) + "!" +
                       std::string(3 << 20, '\x5a') + "tail";
  std::string sourcePath = dir.file("source.bin");
  writeFile(sourcePath, source);
  ASSERT_FALSE(llvm::sys::fs::create_directory(dir.file("out")));

  std::vector<TensorSource> tensors;
  tensors.push_back(fromFile("copied", DType::F32, {3}, sourcePath, 3));
  tensors.push_back(produced("made", DType::U8, {2}, "ok"));
  tensors.push_back(
      fromFile("large", DType::U8, {3 << 20}, sourcePath, 3 + 12 + 1));
  tensors.push_back(
      fromFile("tail", DType::U8, {4}, sourcePath, source.size() - 4));
  tensors.push_back(
      fromFile("nothing", DType::U8, {0}, sourcePath, source.size()));
  WriterOptions options;
  options.maxShardBytes = 1 << 20;
  EXPECT_EQ(
      errorText(writeSafeTensorsCheckpoint(dir.file("out"), tensors, options)),
      "<success>");
  EXPECT_EQ(dir.list("out"),
            (std::vector<std::string>{"model-00001-of-00003.safetensors",
                                      "model-00002-of-00003.safetensors",
                                      "model-00003-of-00003.safetensors",
                                      "model.safetensors.index.json"}));
  auto first =
      SafeTensorsFile::open(dir.file("out/model-00001-of-00003.safetensors"));
  ASSERT_TRUE(static_cast<bool>(first)) << errorText(std::move(first));
  auto copied = (*first)->readBytes(*(*first)->find("copied"));
  ASSERT_TRUE(static_cast<bool>(copied));
  EXPECT_EQ(toFloats(DType::F32, *copied), (std::vector<float>{1, 2, 3}));
  auto made = (*first)->readBytes(*(*first)->find("made"));
  ASSERT_TRUE(static_cast<bool>(made));
  EXPECT_EQ(llvm::StringRef(reinterpret_cast<const char *>(made->data()),
                            made->size()),
            "ok");
  auto second =
      SafeTensorsFile::open(dir.file("out/model-00002-of-00003.safetensors"));
  ASSERT_TRUE(static_cast<bool>(second)) << errorText(std::move(second));
  auto large = (*second)->readBytes(*(*second)->find("large"));
  ASSERT_TRUE(static_cast<bool>(large));
  EXPECT_EQ(large->size(), 3u << 20);
  EXPECT_TRUE(llvm::all_of(*large, [](uint8_t b) { return b == 0x5a; }));
  auto third =
      SafeTensorsFile::open(dir.file("out/model-00003-of-00003.safetensors"));
  ASSERT_TRUE(static_cast<bool>(third)) << errorText(std::move(third));
  auto tail = (*third)->readBytes(*(*third)->find("tail"));
  ASSERT_TRUE(static_cast<bool>(tail));
  EXPECT_EQ(llvm::StringRef(reinterpret_cast<const char *>(tail->data()),
                            tail->size()),
            "tail");
}

TEST(SafeTensorsWriterTest, CopiesAcrossFileSystems) {
  // copy_file_range fails with EXDEV between file systems (tmpfs and the
  // temp dir's, usually); the buffered fallback must take over.
  int fd;
  llvm::SmallString<128> sourcePath;
  if (!llvm::sys::fs::is_directory("/dev/shm") ||
      llvm::sys::fs::createUniqueFile("/dev/shm/moe-weights-%%%%%%%%.bin", fd,
                                      sourcePath))
    GTEST_SKIP() << "no /dev/shm";
  llvm::sys::fs::closeFile(fd);
  std::string source = "-" + std::string(5 << 20, '\0') + "end";
  for (size_t i = 1; i < source.size() - 3; ++i)
    source[i] = static_cast<char>(i * 7);
  writeFile(sourcePath, source);
  TempDir dir;
  std::vector<TensorSource> tensors;
  tensors.push_back(fromFile("bulk", DType::U8, {5 << 20}, sourcePath, 1));
  tensors.push_back(produced("between", DType::U8, {1}, "|"));
  tensors.push_back(
      fromFile("end", DType::U8, {3}, sourcePath, source.size() - 3));
  llvm::Error error = writeSafeTensorsCheckpoint(dir.path(), tensors, {});
  llvm::sys::fs::remove(sourcePath);
  ASSERT_EQ(errorText(std::move(error)), "<success>");
  auto file = SafeTensorsFile::open(dir.file("model.safetensors"));
  ASSERT_TRUE(static_cast<bool>(file)) << errorText(std::move(file));
  auto bulk = (*file)->readBytes(*(*file)->find("bulk"));
  ASSERT_TRUE(static_cast<bool>(bulk));
  EXPECT_TRUE(llvm::equal(
      *bulk,
      llvm::ArrayRef<uint8_t>(
          reinterpret_cast<const uint8_t *>(source.data()) + 1, 5 << 20)));
  auto end = (*file)->readBytes(*(*file)->find("end"));
  ASSERT_TRUE(static_cast<bool>(end));
  EXPECT_EQ(
      llvm::StringRef(reinterpret_cast<const char *>(end->data()), end->size()),
      "end");
}

/// Files in the directory after a failed write: only what was there.
TEST(SafeTensorsWriterTest, ProducerWritingTheWrongByteCountLeavesNothing) {
  TempDir dir;
  for (size_t wrong : {3, 5}) {
    WriterOptions options;
    options.maxShardBytes = 4;
    std::vector<TensorSource> tensors;
    tensors.push_back(produced("good1", DType::F32, {1}, floatBytes({1})));
    tensors.push_back(produced("good2", DType::F32, {1}, floatBytes({2})));
    tensors.push_back(produced("model.norm.weight", DType::F16, {2},
                               std::string(wrong, 'x')));
    EXPECT_EQ(
        errorText(writeSafeTensorsCheckpoint(dir.path(), tensors, options)),
        dir.file("model-00003-of-00003.safetensors") +
            ": tensor 'model.norm.weight': the producer wrote " +
            std::to_string(wrong) + " bytes, shape [2] of F16 needs 4");
    EXPECT_TRUE(dir.list().empty()) << dir.list().front();
  }
}

TEST(SafeTensorsWriterTest, ProducerErrorsArePassedOnAndLeaveNothing) {
  TempDir dir;
  std::vector<TensorSource> tensors;
  tensors.push_back(produced("first", DType::U8, {1}, "1"));
  TensorSource failing;
  failing.name = "failing";
  failing.dtype = DType::U8;
  failing.shape = {1};
  failing.produce = [](llvm::raw_ostream &) {
    return llvm::createStringError("out of coffee");
  };
  tensors.push_back(failing);
  EXPECT_EQ(errorText(writeSafeTensorsCheckpoint(dir.path(), tensors, {})),
            dir.file("model.safetensors") +
                ": tensor 'failing': out of coffee");
  EXPECT_TRUE(dir.list().empty());
}

TEST(SafeTensorsWriterTest, WriteErrorsAreReportedAndLeaveNothing) {
  // A file size limit makes writes fail (EFBIG) the way a full disk would.
  TempDir dir;
  std::string sourcePath = dir.file("source.bin");
  writeFile(sourcePath, std::string(2 << 20, 's'));
  ASSERT_FALSE(llvm::sys::fs::create_directory(dir.file("out")));
  struct rlimit saved;
  ASSERT_EQ(getrlimit(RLIMIT_FSIZE, &saved), 0);
  void (*savedHandler)(int) = signal(SIGXFSZ, SIG_IGN);
  struct rlimit limited = saved;
  limited.rlim_cur = 1 << 20;
  ASSERT_EQ(setrlimit(RLIMIT_FSIZE, &limited), 0);

  std::string produceError = errorText(writeSafeTensorsCheckpoint(
      dir.file("out"),
      {produced("big", DType::U8, {2 << 20}, std::string(2 << 20, 'p'))}, {}));
  std::string copyError = errorText(writeSafeTensorsCheckpoint(
      dir.file("out"), {fromFile("big", DType::U8, {2 << 20}, sourcePath, 0)},
      {}));

  setrlimit(RLIMIT_FSIZE, &saved);
  signal(SIGXFSZ, savedHandler);
  EXPECT_EQ(produceError, dir.file("out/model.safetensors") +
                              ": tensor 'big': cannot write: File too large");
  EXPECT_CONTAINS(copyError, "tensor 'big': ");
  EXPECT_CONTAINS(copyError, "File too large");
  EXPECT_TRUE(dir.list("out").empty());
}

TEST(SafeTensorsWriterTest, ValidatesBeforeWriting) {
  TempDir dir;
  std::string sourcePath = dir.file("source.bin");
  writeFile(sourcePath, "12345678");
  ASSERT_FALSE(llvm::sys::fs::create_directory(dir.file("out")));
  std::string out = dir.file("out");
  auto errorFor = [&](std::vector<TensorSource> tensors,
                      WriterOptions options = {}) {
    std::string error =
        errorText(writeSafeTensorsCheckpoint(out, tensors, options));
    EXPECT_TRUE(dir.list("out").empty());
    return error;
  };
  auto good = produced("good", DType::U8, {1}, "g");

  EXPECT_EQ(errorFor({good, produced("x", DType::U8, {1}, "1"),
                      produced("x", DType::U8, {1}, "2")}),
            out + ": tensor 'x': given twice");
  EXPECT_EQ(errorFor({good, produced("neg", DType::F32, {2, -1}, "")}),
            out + ": tensor 'neg': shape [2, -1] has a negative dimension or "
                  "more than 2^64 bytes");
  EXPECT_CONTAINS(
      errorFor({produced("big", DType::F64, {1ll << 40, 1ll << 40}, "")}),
      "tensor 'big': shape [1099511627776, 1099511627776] has a negative "
      "dimension or more than 2^64 bytes");
  EXPECT_CONTAINS(errorFor({produced("sum1", DType::U8, {1ll << 62, 3}, ""),
                            produced("sum2", DType::U8, {1ll << 62, 3}, "")}),
                  "tensor 'sum2': the tensors hold more than 2^64 bytes");
  EXPECT_EQ(errorFor({good, fromFile("gone", DType::U8, {1},
                                     dir.file("absent.bin"), 0)}),
            out + ": tensor 'gone': source " + dir.file("absent.bin") +
                ": No such file or directory");
  EXPECT_EQ(errorFor({good, fromFile("dir", DType::U8, {1}, out, 0)}),
            out + ": tensor 'dir': source " + out + ": not a regular file");
  EXPECT_EQ(errorFor({good, fromFile("long", DType::F32, {2}, sourcePath, 1)}),
            out +
                ": tensor 'long': source range [1, +8) runs past the end "
                "of " +
                sourcePath + " (8 bytes)");
  EXPECT_CONTAINS(errorFor({fromFile("far", DType::U8, {0}, sourcePath, 100)}),
                  "tensor 'far': source range [100, +0) runs past the end");
  TensorSource both = fromFile("both", DType::U8, {1}, sourcePath, 0);
  both.produce = good.produce;
  EXPECT_EQ(errorFor({both}), out + ": tensor 'both': needs exactly one "
                                    "source, a file range or a producer");
  TensorSource neither = fromFile("neither", DType::U8, {1}, "", 0);
  EXPECT_CONTAINS(errorFor({neither}), "tensor 'neither': needs exactly one");
  EXPECT_EQ(errorFor({produced("__metadata__", DType::U8, {1}, "1")}),
            out + ": tensor '__metadata__': name is reserved for the "
                  "metadata");
  EXPECT_CONTAINS(errorFor({produced("bad\xff", DType::U8, {1}, "1")}),
                  "name is not valid UTF-8");
  WriterOptions badStem;
  badStem.stem = "../model";
  EXPECT_EQ(errorFor({good}, badStem),
            out + ": invalid file name stem '../model'");
  EXPECT_EQ(
      errorText(writeSafeTensorsCheckpoint(dir.file("nowhere"), {good}, {})),
      dir.file("nowhere") + ": not a directory");
}

TEST(SafeTensorsWriterTest, OddNamesRoundTrip) {
  TempDir dir;
  std::vector<TensorSource> tensors;
  std::string odd = "quote\" back\\slash \n tab\t unicode \xc3\xa9 \x01";
  tensors.push_back(produced(odd, DType::U8, {1}, "1"));
  tensors.push_back(produced("", DType::U8, {1}, "2"));
  WriterOptions options;
  options.metadata[odd] = odd;
  EXPECT_EQ(errorText(writeSafeTensorsCheckpoint(dir.path(), tensors, options)),
            "<success>");
  auto file = SafeTensorsFile::open(dir.file("model.safetensors"));
  ASSERT_TRUE(static_cast<bool>(file)) << errorText(std::move(file));
  EXPECT_NE((*file)->find(odd), nullptr);
  EXPECT_NE((*file)->find(""), nullptr);
  EXPECT_EQ((*file)->header().metadata.at(odd), odd);
}

} // namespace
