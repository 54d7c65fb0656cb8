//===- DType.h - Tensor element types of checkpoints ------------*- C++ -*-===//

#ifndef MOE_WEIGHTS_DTYPE_H
#define MOE_WEIGHTS_DTYPE_H

#include "llvm/ADT/ArrayRef.h"
#include "llvm/ADT/StringRef.h"

#include <cstdint>
#include <optional>

namespace mlir {
class Type;
class MLIRContext;
} // namespace mlir

namespace mlir::moe::weights {

/// Every dtype the safetensors format defines. Only F32, F16 and BF16 (and
/// F64) can be read as floating-point weights; the others are recognised so
/// that their refusal names them.
enum class DType {
  F64,
  F32,
  F16,
  BF16,
  F8_E4M3,
  F8_E5M2,
  I64,
  I32,
  I16,
  I8,
  U64,
  U32,
  U16,
  U8,
  BOOL,
};

/// The safetensors spelling ("F32", "BF16", ...).
llvm::StringRef dtypeName(DType dtype);
/// Parses a safetensors dtype name; std::nullopt for unknown names.
std::optional<DType> parseDType(llvm::StringRef name);
/// Bytes per element.
unsigned dtypeSize(DType dtype);
/// True for the dtypes weights can be read from (F64, F32, F16, BF16).
bool isReadableFloat(DType dtype);
/// The MLIR element type of a readable float dtype.
Type dtypeToMlirType(DType dtype, MLIRContext *context);
/// The dtype of an MLIR float type (f64, f32, f16, bf16).
std::optional<DType> mlirTypeToDType(Type type);

/// Converts `count` elements of `source` (little-endian, of `dtype`, which
/// must be a readable float) into floats.
void convertToF32(DType dtype, const uint8_t *source, float *dest,
                  size_t count);
/// Converts floats into `dtype` (F64, F32, F16 or BF16), rounding to nearest
/// even.
void convertFromF32(DType dtype, const float *source, uint8_t *dest,
                    size_t count);

/// The index of the first element of `source` (`count` little-endian
/// elements of a readable float `dtype`) that reads as NaN or an infinity
/// when converted to a float (convertToF32): a NaN or infinity of its own
/// dtype, or an F64 beyond the range of a float; std::nullopt when there is
/// none.
std::optional<size_t> findNonFinite(DType dtype, const uint8_t *source,
                                    size_t count);

} // namespace mlir::moe::weights

#endif // MOE_WEIGHTS_DTYPE_H
