//===- ONNXQuantizeTest.cpp - Block quantisation of --onnx-weights --------===//
//
// Exact codes, packing and scales of the int4/int8 quantiser for hand-made
// rows (scales chosen to be exact, so that every code is known), padding of
// a row whose length is not a multiple of the block, and the error bound of
// rounding to nearest.
//
//===----------------------------------------------------------------------===//

#include "ONNXQuantize.h"

#include "gtest/gtest.h"

#include <cmath>
#include <vector>

using mlir::moe::onnx_export::BlockQuantization;
using mlir::moe::onnx_export::quantizeRow;

namespace {

struct Quantized {
  std::vector<uint8_t> packed;
  std::vector<float> scales;
};

Quantized quantize(const BlockQuantization &quantization,
                   const std::vector<float> &row) {
  Quantized result{std::vector<uint8_t>(quantization.bytesPerRow()),
                   std::vector<float>(quantization.blocksPerRow())};
  quantizeRow(quantization, row, result.packed, result.scales);
  return result;
}

TEST(ONNXQuantizeTest, FourBitsPadsTheLastBlockWithZeroCodes) {
  // K = 20 in blocks of 16: the second block holds 4 weights and 12 zeros.
  BlockQuantization quantization{4, 16, 20};
  EXPECT_EQ(quantization.blocksPerRow(), 2);
  EXPECT_EQ(quantization.bytesPerRow(), 16);
  std::vector<float> row(20, 0.0f);
  // Block 0: max |w| = 7, scale 1. Ties round away from zero.
  float first[] = {7.0f, -7.0f, 0.5f, -0.5f, 1.49f, 2.5f};
  std::copy(std::begin(first), std::end(first), row.begin());
  // Block 1: max |w| = 3.5, scale 0.5.
  row[16] = -3.5f;
  row[19] = 1.0f;
  Quantized q = quantize(quantization, row);
  EXPECT_EQ(q.scales, (std::vector<float>{1.0f, 0.5f}));
  // Codes + 8, the earlier element in the low nibble: (15, 1), (9, 7),
  // (9, 11), zeros (8, 8); block 1: (1, 8), (8, 10), then padding.
  std::vector<uint8_t> expected = {0x1F, 0x79, 0xB9, 0x88, 0x88, 0x88,
                                   0x88, 0x88, 0x81, 0xA8, 0x88, 0x88,
                                   0x88, 0x88, 0x88, 0x88};
  EXPECT_EQ(q.packed, expected);
}

TEST(ONNXQuantizeTest, EightBitsOneCodePerByte) {
  BlockQuantization quantization{8, 16, 16};
  std::vector<float> row(16, 0.0f);
  float values[] = {127.0f, -127.0f, 0.5f, -0.5f, 64.4f, -2.5f};
  std::copy(std::begin(values), std::end(values), row.begin());
  Quantized q = quantize(quantization, row);
  EXPECT_EQ(q.scales, (std::vector<float>{1.0f}));
  std::vector<uint8_t> expected(16, 128);
  uint8_t codes[] = {255, 1, 129, 127, 192, 125};
  std::copy(std::begin(codes), std::end(codes), expected.begin());
  EXPECT_EQ(q.packed, expected);
}

TEST(ONNXQuantizeTest, AllZeroBlockHasScaleZero) {
  BlockQuantization quantization{4, 16, 32};
  std::vector<float> row(32, 0.0f);
  row[31] = -0.25f;
  Quantized q = quantize(quantization, row);
  EXPECT_EQ(q.scales[0], 0.0f);
  EXPECT_FLOAT_EQ(q.scales[1], 0.25f / 7.0f);
  for (int i = 0; i < 8; ++i)
    EXPECT_EQ(q.packed[i], 0x88) << "byte " << i;
  // -0.25 is the block's largest magnitude: code -7 + 8 = 1, high nibble.
  EXPECT_EQ(q.packed[15], 0x18);
}

TEST(ONNXQuantizeTest, DequantisedWeightsAreWithinHalfAStep) {
  for (int64_t bits : {4, 8}) {
    BlockQuantization quantization{bits, 32, 100};
    std::vector<float> row(100);
    for (size_t i = 0; i < row.size(); ++i)
      row[i] = std::sin(float(i) * 0.7f) * float(i % 13 + 1);
    Quantized q = quantize(quantization, row);
    int64_t offset = int64_t(1) << (bits - 1);
    for (size_t i = 0; i < row.size(); ++i) {
      int64_t code =
          bits == 8 ? q.packed[i] : (q.packed[i / 2] >> (i % 2 ? 4 : 0)) & 0xF;
      float scale = q.scales[i / 32];
      float dequantized = float(code - offset) * scale;
      EXPECT_LE(std::fabs(dequantized - row[i]), scale * 0.5f * 1.0001f)
          << bits << " bits, element " << i;
    }
  }
}

} // namespace
