//===- ONNXQuantize.h - Weight-only block quantisation ----------*- C++ -*-===//
//
// The quantiser of --onnx-weights=int8/int4: symmetric, one float scale per
// block of `blockSize` input features of a weight row (a row of [N, K] as
// stored), the codes stored unsigned with the offset 2^(bits-1), which is the
// default zero point of com.microsoft.MatMulNBits and com.microsoft.QMoE, so
// that the graph needs no zero-point input:
//
//   scale = max|w| / (2^(bits-1) - 1)     (0 for a block of zeros)
//   code  = round(w / scale) + 2^(bits-1) (round half away from zero)
//   w'    = (code - 2^(bits-1)) * scale   (what the operators compute)
//
// Codes are packed along K: one per byte (8 bits), or two per byte with the
// earlier element in the low nibble (4 bits). A row whose K is not a multiple
// of the block is padded with zeros to whole blocks.
//
//===----------------------------------------------------------------------===//

#ifndef MOE_LIB_EXPORT_ONNX_ONNXQUANTIZE_H
#define MOE_LIB_EXPORT_ONNX_ONNXQUANTIZE_H

#include "llvm/ADT/ArrayRef.h"

#include <cstdint>

namespace mlir::moe::onnx_export {

struct BlockQuantization {
  /// 4 or 8.
  int64_t bits;
  /// Input features per block: a power of two, at least 16.
  int64_t blockSize;
  /// Input features per row (K).
  int64_t columns;

  int64_t blocksPerRow() const { return (columns + blockSize - 1) / blockSize; }
  int64_t bytesPerBlock() const { return blockSize * bits / 8; }
  /// Packed bytes of one row, padded to whole blocks.
  int64_t bytesPerRow() const { return blocksPerRow() * bytesPerBlock(); }
};

/// Quantises one row of `quantization.columns` weights into
/// `quantization.bytesPerRow()` packed bytes and `blocksPerRow()` scales.
void quantizeRow(const BlockQuantization &quantization,
                 llvm::ArrayRef<float> row,
                 llvm::MutableArrayRef<uint8_t> packed,
                 llvm::MutableArrayRef<float> scales);

} // namespace mlir::moe::onnx_export

#endif // MOE_LIB_EXPORT_ONNX_ONNXQUANTIZE_H
