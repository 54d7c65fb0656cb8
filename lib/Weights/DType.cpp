//===- DType.cpp - Tensor element types of checkpoints --------------------===//

#include "moe/Weights/DType.h"

#include "mlir/IR/BuiltinTypes.h"
#include "mlir/IR/MLIRContext.h"
#include "llvm/ADT/bit.h"
#include "llvm/Support/Endian.h"

#include <algorithm>
#include <cassert>
#include <cmath>
#include <cstring>
#include <limits>

using namespace mlir;
using namespace mlir::moe::weights;
namespace endian = llvm::support::endian;

namespace {
struct DTypeDescription {
  DType dtype;
  llvm::StringLiteral name;
  unsigned size;
};
} // namespace

// Indexed by the enum value; the static_assert below keeps them in step.
static constexpr DTypeDescription kDTypes[] = {
    {DType::F64, "F64", 8},         {DType::F32, "F32", 4},
    {DType::F16, "F16", 2},         {DType::BF16, "BF16", 2},
    {DType::F8_E4M3, "F8_E4M3", 1}, {DType::F8_E5M2, "F8_E5M2", 1},
    {DType::I64, "I64", 8},         {DType::I32, "I32", 4},
    {DType::I16, "I16", 2},         {DType::I8, "I8", 1},
    {DType::U64, "U64", 8},         {DType::U32, "U32", 4},
    {DType::U16, "U16", 2},         {DType::U8, "U8", 1},
    {DType::BOOL, "BOOL", 1},
};
static_assert(std::size(kDTypes) == static_cast<size_t>(DType::BOOL) + 1,
              "every DType needs a description");

static const DTypeDescription &describe(DType dtype) {
  const DTypeDescription &description = kDTypes[static_cast<size_t>(dtype)];
  assert(description.dtype == dtype && "kDTypes out of order");
  return description;
}

llvm::StringRef mlir::moe::weights::dtypeName(DType dtype) {
  return describe(dtype).name;
}

std::optional<DType> mlir::moe::weights::parseDType(llvm::StringRef name) {
  for (const DTypeDescription &description : kDTypes)
    if (description.name == name)
      return description.dtype;
  return std::nullopt;
}

unsigned mlir::moe::weights::dtypeSize(DType dtype) {
  return describe(dtype).size;
}

bool mlir::moe::weights::isReadableFloat(DType dtype) {
  return dtype == DType::F64 || dtype == DType::F32 || dtype == DType::F16 ||
         dtype == DType::BF16;
}

// Every dtype has an MLIR type, so that callers never meet a null type: the
// float8 formats of safetensors are the "fn" (finite, no infinity) E4M3 of
// PyTorch and plain E5M2; signed integers map to signless ones, as MLIR
// arithmetic expects, unsigned ones to unsigned integer types.
Type mlir::moe::weights::dtypeToMlirType(DType dtype, MLIRContext *context) {
  switch (dtype) {
  case DType::F64:
    return Float64Type::get(context);
  case DType::F32:
    return Float32Type::get(context);
  case DType::F16:
    return Float16Type::get(context);
  case DType::BF16:
    return BFloat16Type::get(context);
  case DType::F8_E4M3:
    return Float8E4M3FNType::get(context);
  case DType::F8_E5M2:
    return Float8E5M2Type::get(context);
  case DType::BOOL:
    return IntegerType::get(context, 1);
  case DType::I64:
  case DType::I32:
  case DType::I16:
  case DType::I8:
    return IntegerType::get(context, dtypeSize(dtype) * 8);
  case DType::U64:
  case DType::U32:
  case DType::U16:
  case DType::U8:
    return IntegerType::get(context, dtypeSize(dtype) * 8,
                            IntegerType::Unsigned);
  }
  return Type();
}

std::optional<DType> mlir::moe::weights::mlirTypeToDType(Type type) {
  if (!type)
    return std::nullopt;
  if (isa<Float64Type>(type))
    return DType::F64;
  if (isa<Float32Type>(type))
    return DType::F32;
  if (isa<Float16Type>(type))
    return DType::F16;
  if (isa<BFloat16Type>(type))
    return DType::BF16;
  if (isa<Float8E4M3FNType>(type))
    return DType::F8_E4M3;
  if (isa<Float8E5M2Type>(type))
    return DType::F8_E5M2;
  auto integer = dyn_cast<IntegerType>(type);
  if (!integer)
    return std::nullopt;
  if (integer.getWidth() == 1)
    return integer.isUnsigned() ? std::nullopt : std::optional(DType::BOOL);
  bool isUnsigned = integer.isUnsigned();
  switch (integer.getWidth()) {
  case 8:
    return isUnsigned ? DType::U8 : DType::I8;
  case 16:
    return isUnsigned ? DType::U16 : DType::I16;
  case 32:
    return isUnsigned ? DType::U32 : DType::I32;
  case 64:
    return isUnsigned ? DType::U64 : DType::I64;
  default:
    return std::nullopt;
  }
}

//===----------------------------------------------------------------------===//
// Half-precision conversions
//===----------------------------------------------------------------------===//

static float halfToFloat(uint16_t half) {
  uint32_t sign = static_cast<uint32_t>(half & 0x8000) << 16;
  uint32_t exponent = (half >> 10) & 0x1f;
  uint32_t mantissa = half & 0x3ff;
  uint32_t bits;
  if (exponent == 0x1f) {
    // Infinity or NaN; the payload moves to the top of the wider mantissa.
    bits = sign | 0x7f800000 | (mantissa << 13);
  } else if (exponent != 0) {
    bits = sign | ((exponent + 127 - 15) << 23) | (mantissa << 13);
  } else if (mantissa == 0) {
    bits = sign;
  } else {
    // Subnormal half: every one is a normal float. Shift the leading one
    // into the implicit bit and lower the exponent by as much.
    int shift = llvm::countl_zero(mantissa) - (32 - 11);
    mantissa = (mantissa << shift) & 0x3ff;
    bits = sign | (static_cast<uint32_t>(127 - 15 + 1 - shift) << 23) |
           (mantissa << 13);
  }
  return llvm::bit_cast<float>(bits);
}

/// Rounds `value >> shift` to nearest, ties to even (shift >= 1).
static uint32_t shiftRightRoundingToEven(uint32_t value, unsigned shift) {
  uint32_t kept = value >> shift;
  uint32_t rest = value & ((1u << shift) - 1);
  uint32_t half = 1u << (shift - 1);
  if (rest > half || (rest == half && (kept & 1)))
    ++kept;
  return kept;
}

static uint16_t floatToHalf(float value) {
  uint32_t bits = llvm::bit_cast<uint32_t>(value);
  uint16_t sign = static_cast<uint16_t>((bits >> 16) & 0x8000);
  uint32_t magnitude = bits & 0x7fffffff;
  if (magnitude > 0x7f800000) {
    // NaN stays NaN (quiet), keeping what fits of the payload.
    return sign | 0x7e00 | ((magnitude >> 13) & 0x3ff);
  }
  // 65520 is halfway between the largest half, 65504, and 65536: it and
  // everything above round to infinity.
  if (magnitude >= 0x477ff000)
    return sign | 0x7c00;
  uint32_t exponent = magnitude >> 23;
  if (exponent >= 127 - 14) {
    // Normal half. A carry out of the mantissa correctly bumps the exponent.
    uint32_t rebased = magnitude - ((127 - 15) << 23);
    return sign | static_cast<uint16_t>(shiftRightRoundingToEven(rebased, 13));
  }
  // Below 2^-25 everything rounds to zero (2^-25 itself ties to even zero).
  if (exponent < 127 - 25)
    return sign;
  // Subnormal half: count units of 2^-24 in the 24-bit significand.
  uint32_t significand = (magnitude & 0x7fffff) | 0x800000;
  unsigned shift = 126 - exponent;
  return sign |
         static_cast<uint16_t>(shiftRightRoundingToEven(significand, shift));
}

static float bfloat16ToFloat(uint16_t bfloat) {
  return llvm::bit_cast<float>(static_cast<uint32_t>(bfloat) << 16);
}

static uint16_t floatToBFloat16(float value) {
  uint32_t bits = llvm::bit_cast<uint32_t>(value);
  if ((bits & 0x7fffffff) > 0x7f800000) {
    // Truncating could clear every payload bit and make an infinity.
    return static_cast<uint16_t>((bits >> 16) | 0x0040);
  }
  // Round to nearest even on the 16 dropped bits; overflow into the
  // exponent yields the correctly rounded result, infinity included.
  uint32_t roundingBias = 0x7fff + ((bits >> 16) & 1);
  return static_cast<uint16_t>((bits + roundingBias) >> 16);
}

void mlir::moe::weights::convertToF32(DType dtype, const uint8_t *source,
                                      float *dest, size_t count) {
  using llvm::endianness;
  switch (dtype) {
  case DType::F64:
    for (size_t i = 0; i < count; ++i)
      dest[i] = static_cast<float>(llvm::bit_cast<double>(
          endian::read<uint64_t, endianness::little>(source + 8 * i)));
    return;
  case DType::F32:
    for (size_t i = 0; i < count; ++i)
      dest[i] = llvm::bit_cast<float>(
          endian::read<uint32_t, endianness::little>(source + 4 * i));
    return;
  case DType::F16:
    for (size_t i = 0; i < count; ++i)
      dest[i] = halfToFloat(
          endian::read<uint16_t, endianness::little>(source + 2 * i));
    return;
  case DType::BF16:
    for (size_t i = 0; i < count; ++i)
      dest[i] = bfloat16ToFloat(
          endian::read<uint16_t, endianness::little>(source + 2 * i));
    return;
  default:
    assert(false && "convertToF32 needs a readable float dtype");
    return;
  }
}

void mlir::moe::weights::convertFromF32(DType dtype, const float *source,
                                        uint8_t *dest, size_t count) {
  using llvm::endianness;
  switch (dtype) {
  case DType::F64:
    for (size_t i = 0; i < count; ++i)
      endian::write<uint64_t, endianness::little>(
          dest + 8 * i,
          llvm::bit_cast<uint64_t>(static_cast<double>(source[i])));
    return;
  case DType::F32:
    for (size_t i = 0; i < count; ++i)
      endian::write<uint32_t, endianness::little>(
          dest + 4 * i, llvm::bit_cast<uint32_t>(source[i]));
    return;
  case DType::F16:
    for (size_t i = 0; i < count; ++i)
      endian::write<uint16_t, endianness::little>(dest + 2 * i,
                                                  floatToHalf(source[i]));
    return;
  case DType::BF16:
    for (size_t i = 0; i < count; ++i)
      endian::write<uint16_t, endianness::little>(dest + 2 * i,
                                                  floatToBFloat16(source[i]));
    return;
  default:
    assert(false && "convertFromF32 needs a readable float dtype");
    return;
  }
}

/// The index of the first of the `count` unsigned words of `source` with
/// all `exponent` bits set (NaN or infinity). Blocks are scanned without an
/// early exit, which the compiler vectorises: the check runs at memory
/// speed beside the reads of an export.
template <typename Word>
static std::optional<size_t> findAllOnesExponent(const uint8_t *source,
                                                 size_t count, Word exponent) {
  constexpr size_t kBlock = 1024;
  Word words[kBlock];
  for (size_t start = 0; start < count; start += kBlock) {
    size_t block = std::min(kBlock, count - start);
    std::memcpy(words, source + sizeof(Word) * start, sizeof(Word) * block);
    if (llvm::endianness::native != llvm::endianness::little)
      for (size_t i = 0; i < block; ++i)
        words[i] = llvm::byteswap(words[i]);
    bool found = false;
    for (size_t i = 0; i < block; ++i)
      found |= (words[i] & exponent) == exponent;
    if (!found)
      continue;
    for (size_t i = 0; i < block; ++i)
      if ((words[i] & exponent) == exponent)
        return start + i;
  }
  return std::nullopt;
}

std::optional<size_t> mlir::moe::weights::findNonFinite(DType dtype,
                                                        const uint8_t *source,
                                                        size_t count) {
  switch (dtype) {
  case DType::F64:
    // Weights are read as floats: a double beyond their range reads as an
    // infinity.
    for (size_t i = 0; i < count; ++i) {
      double value = llvm::bit_cast<double>(
          endian::read<uint64_t, llvm::endianness::little>(source + 8 * i));
      if (!(std::fabs(value) <= std::numeric_limits<float>::max()))
        return i;
    }
    return std::nullopt;
  case DType::F32:
    return findAllOnesExponent<uint32_t>(source, count, 0x7f800000);
  case DType::F16:
    return findAllOnesExponent<uint16_t>(source, count, 0x7c00);
  case DType::BF16:
    return findAllOnesExponent<uint16_t>(source, count, 0x7f80);
  default:
    assert(false && "findNonFinite needs a readable float dtype");
    return std::nullopt;
  }
}
