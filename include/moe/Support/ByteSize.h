//===- ByteSize.h - Byte counts in options and messages ---------*- C++ -*-===//

#ifndef MOE_SUPPORT_BYTESIZE_H
#define MOE_SUPPORT_BYTESIZE_H

#include "llvm/ADT/StringRef.h"

#include <cstdint>
#include <optional>
#include <string>

namespace mlir::moe {

/// Parses a byte count: a plain number or one with a unit (KB, MB, GB, TB
/// in powers of 1000; KiB, MiB, GiB, TiB in powers of 1024), e.g. "5GB".
std::optional<uint64_t> parseByteSize(llvm::StringRef text);

/// "1.23 GB": a byte count with a decimal unit, for messages.
std::string formatBytes(double bytes);

} // namespace mlir::moe

#endif // MOE_SUPPORT_BYTESIZE_H
