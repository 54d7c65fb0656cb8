//===- ConfigWriter.cpp - config.json as transformers writes it -----------===//

#include "moe/Formats/HF/ConfigWriter.h"

#include "llvm/ADT/STLExtras.h"

#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>

using namespace llvm;
using namespace mlir::moe;

/// A float as Python's repr writes it: the shortest digits that read back
/// as the same double, positional for exponents in [-4, 16), with ".0" on
/// whole numbers. transformers' strict config fields refuse `0` where they
/// expect a float.
static std::string formatPythonFloat(double value) {
  if (!std::isfinite(value))
    return std::isnan(value) ? "NaN" : value > 0 ? "Infinity" : "-Infinity";
  char text[40];
  int digits = 1;
  for (; digits < 17; ++digits) {
    std::snprintf(text, sizeof(text), "%.*e", digits - 1, value);
    if (std::strtod(text, nullptr) == value)
      break;
  }
  std::snprintf(text, sizeof(text), "%.*e", digits - 1, value);
  int exponent = std::atoi(std::strchr(text, 'e') + 1);
  if (exponent < -4 || exponent >= 16) {
    std::snprintf(text, sizeof(text), "%.*g", digits, value);
    return text;
  }
  std::snprintf(text, sizeof(text), "%.*f", std::max(digits - 1 - exponent, 1),
                value);
  return text;
}

/// Whether a JSON number holds a double rather than an integer. The json
/// library tells them apart only through getAsUINT64, which refuses
/// doubles; a negative whole number is taken for an integer (token ids may
/// be -1, float fields are not negative whole numbers).
static bool isFloatNumber(const llvm::json::Value &value) {
  std::optional<int64_t> whole = value.getAsInteger();
  return !value.getAsUINT64() && !(whole && *whole < 0);
}

/// Writes `value` with sorted keys and Python-style floats.
static void writeJson(llvm::json::OStream &json,
                      const llvm::json::Value &value) {
  if (const llvm::json::Object *object = value.getAsObject()) {
    std::vector<StringRef> keys;
    for (const auto &entry : *object)
      keys.push_back(entry.first);
    llvm::sort(keys);
    json.object([&] {
      for (StringRef key : keys) {
        json.attributeBegin(key);
        writeJson(json, *object->get(key));
        json.attributeEnd();
      }
    });
  } else if (const llvm::json::Array *array = value.getAsArray()) {
    json.array([&] {
      for (const llvm::json::Value &element : *array)
        writeJson(json, element);
    });
  } else if (value.kind() == llvm::json::Value::Number &&
             isFloatNumber(value)) {
    json.rawValue(formatPythonFloat(*value.getAsNumber()));
  } else {
    json.value(value);
  }
}

std::string mlir::moe::hf::formatConfigJson(const llvm::json::Value &config) {
  std::string text;
  llvm::raw_string_ostream os(text);
  {
    llvm::json::OStream json(os, /*IndentSize=*/2);
    writeJson(json, config);
  }
  return text + "\n";
}
