//===- GGUFQuants.cpp - ggml tensor types, their (de)quantisation ---------===//
//
// Block layouts of ggml (ggml-common.h) and the arithmetic of its
// dequantize_row_* functions, in the same order of float operations, so that
// values match llama.cpp's and the gguf package's; and the writer's
// encodings (float conversions, Q8_0 as ggml's reference quantiser).
//
//===----------------------------------------------------------------------===//

#include "moe/Weights/DType.h"
#include "moe/Weights/GGUF.h"
#include "moe/Weights/GGUFWriter.h"

#include <algorithm>
#include <cmath>

using namespace mlir::moe::weights;

llvm::StringRef mlir::moe::weights::ggmlTypeName(uint32_t type) {
  static const char *const names[] = {
      "F32",        "F16",        "Q4_0",       "Q4_1",     "Q4_2",    "Q4_3",
      "Q5_0",       "Q5_1",       "Q8_0",       "Q8_1",     "Q2_K",    "Q3_K",
      "Q4_K",       "Q5_K",       "Q6_K",       "Q8_K",     "IQ2_XXS", "IQ2_XS",
      "IQ3_XXS",    "IQ1_S",      "IQ4_NL",     "IQ3_S",    "IQ2_S",   "IQ4_XS",
      "I8",         "I16",        "I32",        "I64",      "F64",     "IQ1_M",
      "BF16",       "Q4_0_4_4",   "Q4_0_4_8",   "Q4_0_8_8", "TQ1_0",   "TQ2_0",
      "IQ4_NL_4_4", "IQ4_NL_4_8", "IQ4_NL_8_8", "MXFP4"};
  return type < std::size(names) ? llvm::StringRef(names[type])
                                 : llvm::StringRef();
}

std::optional<GGMLType> mlir::moe::weights::supportedGGMLType(uint32_t type) {
  switch (GGMLType(type)) {
  case GGMLType::F32:
  case GGMLType::F16:
  case GGMLType::BF16:
  case GGMLType::Q8_0:
  case GGMLType::Q4_0:
  case GGMLType::Q4_1:
  case GGMLType::Q4_K:
  case GGMLType::Q6_K:
    return GGMLType(type);
  }
  return std::nullopt;
}

/// Elements of a K-quant super-block.
static constexpr uint32_t kSuperBlock = 256;

GGMLBlockLayout mlir::moe::weights::ggmlBlockLayout(GGMLType type) {
  switch (type) {
  case GGMLType::F32:
    return {1, 4};
  case GGMLType::F16:
  case GGMLType::BF16:
    return {1, 2};
  case GGMLType::Q8_0:
    return {32, 2 + 32};
  case GGMLType::Q4_0:
    return {32, 2 + 16};
  case GGMLType::Q4_1:
    return {32, 2 + 2 + 16};
  case GGMLType::Q4_K:
    return {kSuperBlock, 2 + 2 + 12 + kSuperBlock / 2};
  case GGMLType::Q6_K:
    return {kSuperBlock,
            kSuperBlock / 2 + kSuperBlock / 4 + kSuperBlock / 16 + 2};
  }
  llvm_unreachable("unknown ggml type");
}

static float half(const uint8_t *bytes) {
  float value;
  convertToF32(DType::F16, bytes, &value, 1);
  return value;
}

/// Q8_0: an f16 scale d and 32 int8 values: d * q.
static void dequantizeQ8_0(const uint8_t *block, float *dest) {
  float d = half(block);
  for (int i = 0; i < 32; ++i)
    dest[i] = float(int8_t(block[2 + i])) * d;
}

/// Q4_0: d and 16 bytes of nibbles: element i is the low nibble of byte i,
/// element i + 16 the high one; d * (q - 8).
static void dequantizeQ4_0(const uint8_t *block, float *dest) {
  float d = half(block);
  const uint8_t *qs = block + 2;
  for (int i = 0; i < 16; ++i) {
    dest[i] = float((qs[i] & 0x0F) - 8) * d;
    dest[i + 16] = float((qs[i] >> 4) - 8) * d;
  }
}

/// Q4_1: d, a minimum m and nibbles as Q4_0: d * q + m.
static void dequantizeQ4_1(const uint8_t *block, float *dest) {
  float d = half(block), m = half(block + 2);
  const uint8_t *qs = block + 4;
  for (int i = 0; i < 16; ++i) {
    dest[i] = float(qs[i] & 0x0F) * d + m;
    dest[i + 16] = float(qs[i] >> 4) * d + m;
  }
}

/// The 6-bit scale and minimum of sub-block j of a Q4_K super-block, packed
/// in 12 bytes (ggml's get_scale_min_k4).
static void scaleMinK4(int j, const uint8_t *q, uint8_t &scale, uint8_t &min) {
  if (j < 4) {
    scale = q[j] & 63;
    min = q[j + 4] & 63;
  } else {
    scale = (q[j + 4] & 0x0F) | ((q[j - 4] >> 6) << 4);
    min = (q[j + 4] >> 4) | ((q[j] >> 6) << 4);
  }
}

/// Q4_K: d, dmin, 12 bytes of scales, 128 bytes of nibbles; eight
/// sub-blocks of 32 elements: d * scale * q - dmin * min.
static void dequantizeQ4_K(const uint8_t *block, float *dest) {
  float d = half(block), dmin = half(block + 2);
  const uint8_t *scales = block + 4, *q = block + 16;
  for (int j = 0; j < 8; j += 2, q += 32, dest += 64) {
    uint8_t scale, min;
    scaleMinK4(j, scales, scale, min);
    float d1 = d * float(scale), m1 = dmin * float(min);
    scaleMinK4(j + 1, scales, scale, min);
    float d2 = d * float(scale), m2 = dmin * float(min);
    for (int l = 0; l < 32; ++l)
      dest[l] = d1 * float(q[l] & 0x0F) - m1;
    for (int l = 0; l < 32; ++l)
      dest[l + 32] = d2 * float(q[l] >> 4) - m2;
  }
}

/// Q6_K: 128 bytes of low nibbles, 64 of high bit pairs, 16 int8 scales (one
/// per 16 elements), d: d * scale * (q - 32).
static void dequantizeQ6_K(const uint8_t *block, float *dest) {
  const uint8_t *ql = block, *qh = block + 128;
  const int8_t *scales = reinterpret_cast<const int8_t *>(block + 192);
  float d = half(block + 208);
  for (int half128 = 0; half128 < 2; ++half128) {
    for (int l = 0; l < 32; ++l) {
      int is = l / 16;
      int q1 = int((ql[l] & 0x0F) | (((qh[l] >> 0) & 3) << 4)) - 32;
      int q2 = int((ql[l + 32] & 0x0F) | (((qh[l] >> 2) & 3) << 4)) - 32;
      int q3 = int((ql[l] >> 4) | (((qh[l] >> 4) & 3) << 4)) - 32;
      int q4 = int((ql[l + 32] >> 4) | (((qh[l] >> 6) & 3) << 4)) - 32;
      dest[l] = d * float(scales[is]) * float(q1);
      dest[l + 32] = d * float(scales[is + 2]) * float(q2);
      dest[l + 64] = d * float(scales[is + 4]) * float(q3);
      dest[l + 96] = d * float(scales[is + 6]) * float(q4);
    }
    dest += 128;
    ql += 64;
    qh += 32;
    scales += 8;
  }
}

void mlir::moe::weights::dequantizeBlocks(GGMLType type, const uint8_t *source,
                                          float *dest, size_t blocks) {
  switch (type) {
  case GGMLType::F32:
    return convertToF32(DType::F32, source, dest, blocks);
  case GGMLType::F16:
    return convertToF32(DType::F16, source, dest, blocks);
  case GGMLType::BF16:
    return convertToF32(DType::BF16, source, dest, blocks);
  default:
    break;
  }
  void (*decode)(const uint8_t *, float *) =
      type == GGMLType::Q8_0   ? dequantizeQ8_0
      : type == GGMLType::Q4_0 ? dequantizeQ4_0
      : type == GGMLType::Q4_1 ? dequantizeQ4_1
      : type == GGMLType::Q4_K ? dequantizeQ4_K
                               : dequantizeQ6_K;
  GGMLBlockLayout layout = ggmlBlockLayout(type);
  for (size_t i = 0; i < blocks; ++i)
    decode(source + i * layout.bytes, dest + i * layout.elements);
}

/// Q8_0 as quantize_row_q8_0_ref: d = max|x| / 127 stored as f16, values
/// rounded half away from zero by 1/d (the f32 scale, before its rounding).
static void quantizeQ8_0(const float *source, uint8_t *block) {
  float amax = 0;
  for (int i = 0; i < 32; ++i)
    amax = std::max(amax, std::fabs(source[i]));
  float d = amax / 127;
  float inverse = d != 0 ? 1.0f / d : 0.0f;
  convertFromF32(DType::F16, &d, block, 1);
  for (int i = 0; i < 32; ++i)
    block[2 + i] = uint8_t(int8_t(std::round(source[i] * inverse)));
}

void mlir::moe::weights::quantizeBlocks(GGMLType type, const float *source,
                                        uint8_t *dest, size_t blocks) {
  switch (type) {
  case GGMLType::F32:
    return convertFromF32(DType::F32, source, dest, blocks);
  case GGMLType::F16:
    return convertFromF32(DType::F16, source, dest, blocks);
  case GGMLType::BF16:
    return convertFromF32(DType::BF16, source, dest, blocks);
  case GGMLType::Q8_0:
    for (size_t i = 0; i < blocks; ++i)
      quantizeQ8_0(source + i * 32, dest + i * 34);
    return;
  default:
    llvm_unreachable("the writer quantises the float types and Q8_0 only");
  }
}
