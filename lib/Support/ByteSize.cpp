//===- ByteSize.cpp - Byte counts in options and messages -----------------===//

#include "moe/Support/ByteSize.h"

#include "llvm/ADT/StringExtras.h"
#include "llvm/ADT/StringSwitch.h"
#include "llvm/Support/Format.h"
#include "llvm/Support/raw_ostream.h"

using namespace llvm;
using namespace mlir::moe;

/// "1.23 GB".
std::string mlir::moe::formatBytes(double bytes) {
  static const char *const units[] = {"B", "kB", "MB", "GB", "TB"};
  int unit = 0;
  while (bytes >= 1000 && unit < 4) {
    bytes /= 1000;
    ++unit;
  }
  std::string text;
  llvm::raw_string_ostream os(text);
  os << llvm::format(unit ? "%.2f %s" : "%.0f %s", bytes, units[unit]);
  return text;
}

std::optional<uint64_t> mlir::moe::parseByteSize(StringRef text) {
  text = text.trim();
  size_t digits = 0;
  while (digits < text.size() &&
         (llvm::isDigit(text[digits]) || text[digits] == '.'))
    ++digits;
  double number;
  if (digits == 0 || text.take_front(digits).getAsDouble(number))
    return std::nullopt;
  std::optional<double> unit =
      llvm::StringSwitch<std::optional<double>>(text.drop_front(digits).trim())
          .CasesLower({"", "b"}, 1.0)
          .CaseLower("kb", 1e3)
          .CaseLower("mb", 1e6)
          .CaseLower("gb", 1e9)
          .CaseLower("tb", 1e12)
          .CaseLower("kib", 1024.0)
          .CaseLower("mib", 1024.0 * 1024)
          .CaseLower("gib", 1024.0 * 1024 * 1024)
          .CaseLower("tib", 1024.0 * 1024 * 1024 * 1024)
          .Default(std::nullopt);
  if (!unit || number * *unit < 1 || number * *unit > 1.8e19)
    return std::nullopt;
  return uint64_t(number * *unit);
}
