//===- ONNXQuantize.cpp - Weight-only block quantisation ------------------===//

#include "ONNXQuantize.h"

#include <algorithm>
#include <cassert>
#include <cmath>

using namespace mlir::moe;

void onnx_export::quantizeRow(const BlockQuantization &quantization,
                              llvm::ArrayRef<float> row,
                              llvm::MutableArrayRef<uint8_t> packed,
                              llvm::MutableArrayRef<float> scales) {
  assert((quantization.bits == 4 || quantization.bits == 8) &&
         "block quantisation stores 4 or 8 bits");
  assert(int64_t(row.size()) == quantization.columns &&
         int64_t(packed.size()) == quantization.bytesPerRow() &&
         int64_t(scales.size()) == quantization.blocksPerRow() &&
         "buffers of one row");
  const int64_t offset = int64_t(1) << (quantization.bits - 1);
  const float largestCode = float(offset - 1);
  const int64_t blockSize = quantization.blockSize;
  std::fill(packed.begin(), packed.end(), 0);
  for (int64_t block = 0; block < quantization.blocksPerRow(); ++block) {
    int64_t begin = block * blockSize;
    int64_t end = std::min(begin + blockSize, quantization.columns);
    float largest = 0.0f;
    for (int64_t i = begin; i < end; ++i)
      largest = std::max(largest, std::fabs(row[i]));
    float scale = largest / largestCode;
    scales[block] = scale;
    // Padding past the row's end holds code `offset`, that is zero.
    for (int64_t i = begin; i < begin + blockSize; ++i) {
      float value = i < end && scale != 0.0f ? row[i] / scale : 0.0f;
      int64_t code = std::clamp<int64_t>(int64_t(std::lround(value)), -offset,
                                         offset - 1) +
                     offset;
      if (quantization.bits == 8)
        packed[i] = uint8_t(code);
      else
        packed[i / 2] |= uint8_t(code << (i % 2 ? 4 : 0));
    }
  }
}
