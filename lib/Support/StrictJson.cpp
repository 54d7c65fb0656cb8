//===- StrictJson.cpp - JSON parsing that refuses duplicate keys ----------===//

#include "moe/Support/StrictJson.h"
#include "moe/Support/Errors.h"
#include "moe/Support/RegularFile.h"

#include "llvm/ADT/StringExtras.h"
#include "llvm/ADT/StringSet.h"
#include "llvm/Support/raw_ostream.h"

#include <cmath>

using namespace mlir::moe;

namespace {
/// One open object or array while scanning.
struct ScanFrame {
  bool isObject;
  /// In an object: the next string is a key (after `{` or `,`).
  bool expectKey;
  /// In an object: the latest key; in an array: the element index.
  std::string key;
  size_t index = 0;
  llvm::StringSet<> keys;
};

/// What a scan over the raw text found.
struct ScanResult {
  bool tooDeep = false;
  std::optional<DuplicateJsonKey> duplicate;
};
} // namespace

/// Decodes the JSON string starting at the quote `text[start]` and sets
/// `next` past its closing quote (or to the end of an unterminated one).
/// Escaped keys are decoded by llvm::json itself, so that two keys compare
/// equal here exactly when llvm::json would merge them.
static std::string readString(llvm::StringRef text, size_t start,
                              size_t &next) {
  size_t position = start + 1;
  bool escaped = false;
  while (position < text.size() && text[position] != '"') {
    if (text[position] == '\\') {
      escaped = true;
      ++position; // The escaped character, a quote included, is skipped.
    }
    ++position;
  }
  next = std::min(position + 1, text.size());
  llvm::StringRef raw = text.slice(start, next);
  llvm::StringRef body =
      raw.drop_front().drop_back(raw.size() >= 2 && raw.back() == '"' ? 1 : 0);
  if (!escaped)
    return body.str();
  llvm::Expected<llvm::json::Value> decoded = llvm::json::parse(raw);
  if (!decoded) {
    // A malformed string: the parse of the whole text fails on it anyway.
    llvm::consumeError(decoded.takeError());
    return body.str();
  }
  return decoded->getAsString().value_or(body).str();
}

static std::vector<std::string> pathOf(llvm::ArrayRef<ScanFrame> stack) {
  std::vector<std::string> path;
  for (const ScanFrame &frame : stack)
    path.push_back(frame.isObject ? frame.key
                                  : "[" + std::to_string(frame.index) + "]");
  return path;
}

/// Walks the text once, tracking strings and nesting only. It sees the same
/// structure as a JSON parser on every well-formed prefix, which is all that
/// matters: on malformed text the parser stops at the first fault, before
/// nesting any deeper than the scan has checked.
static ScanResult scanJson(llvm::StringRef text) {
  ScanResult result;
  std::vector<ScanFrame> stack;
  size_t position = 0;
  while (position < text.size()) {
    char c = text[position];
    switch (c) {
    case '"': {
      size_t next;
      std::string string = readString(text, position, next);
      position = next;
      if (!stack.empty() && stack.back().isObject && stack.back().expectKey) {
        ScanFrame &frame = stack.back();
        frame.expectKey = false;
        if (!frame.keys.insert(string).second && !result.duplicate)
          result.duplicate = DuplicateJsonKey{
              pathOf(llvm::ArrayRef(stack).drop_back()), string};
        frame.key = std::move(string);
      }
      continue;
    }
    case '{':
    case '[':
      if (stack.size() >= kMaxJsonDepth) {
        result.tooDeep = true;
        return result;
      }
      stack.push_back(ScanFrame{c == '{', c == '{', "", 0, {}});
      break;
    case '}':
    case ']':
      if (!stack.empty())
        stack.pop_back();
      break;
    case ',':
      if (!stack.empty()) {
        if (stack.back().isObject)
          stack.back().expectKey = true;
        else
          ++stack.back().index;
      }
      break;
    default:
      break;
    }
    ++position;
  }
  return result;
}

/// The path of a number in `value` that is not a finite double:
/// llvm::json reads a literal such as `1e999` as infinity, which no writer
/// can write back as JSON. Recursion is bounded by the scan's depth limit.
static std::optional<std::vector<std::string>>
findNonFiniteNumber(const llvm::json::Value &value,
                    std::vector<std::string> &path) {
  if (const llvm::json::Object *object = value.getAsObject()) {
    for (const auto &[key, member] : *object) {
      path.push_back(key.str());
      if (auto found = findNonFiniteNumber(member, path))
        return found;
      path.pop_back();
    }
  } else if (const llvm::json::Array *array = value.getAsArray()) {
    for (auto [index, element] : llvm::enumerate(*array)) {
      path.push_back("[" + std::to_string(index) + "]");
      if (auto found = findNonFiniteNumber(element, path))
        return found;
      path.pop_back();
    }
  } else if (std::optional<double> number = value.getAsNumber()) {
    if (!std::isfinite(*number))
      return path;
  }
  return std::nullopt;
}

StrictJson mlir::moe::parseJsonStrictly(llvm::StringRef text) {
  StrictJson result;
  ScanResult scan = scanJson(text);
  if (scan.tooDeep) {
    result.syntaxError =
        "nesting deeper than " + std::to_string(kMaxJsonDepth) + " levels";
    return result;
  }
  llvm::Expected<llvm::json::Value> value = llvm::json::parse(text);
  if (!value) {
    result.syntaxError = llvm::toString(value.takeError());
    return result;
  }
  if (scan.duplicate) {
    result.duplicate = std::move(scan.duplicate);
    return result;
  }
  std::vector<std::string> path;
  if (auto overflow = findNonFiniteNumber(*value, path)) {
    result.syntaxError = "number out of the range of a double";
    if (!overflow->empty())
      result.syntaxError += " at " + quoted(formatJsonPath(*overflow));
    return result;
  }
  result.value = std::move(*value);
  return result;
}

std::string mlir::moe::formatJsonPath(llvm::ArrayRef<std::string> path) {
  std::string text;
  for (const std::string &element : path) {
    if (!text.empty() && !llvm::StringRef(element).starts_with("["))
      text += '.';
    text += element;
  }
  return text;
}

std::string mlir::moe::quoted(llvm::StringRef text) {
  std::string result = "'";
  for (unsigned char c : text) {
    if (c == '\'' || c == '\\') {
      result += '\\';
      result += static_cast<char>(c);
    } else if (c < 0x20 || c == 0x7f) {
      result += "\\x";
      result += llvm::hexdigit(c >> 4, /*LowerCase=*/true);
      result += llvm::hexdigit(c & 0xf, /*LowerCase=*/true);
    } else {
      result += static_cast<char>(c);
    }
  }
  return result + "'";
}

std::string mlir::moe::describeDuplicate(const DuplicateJsonKey &duplicate) {
  std::string message = "duplicate key " + quoted(duplicate.key);
  if (!duplicate.path.empty())
    message += " in " + quoted(formatJsonPath(duplicate.path));
  return message;
}

llvm::Expected<llvm::json::Object>
mlir::moe::readJsonObjectFile(llvm::StringRef path, uint64_t maxBytes) {
  llvm::Expected<std::string> text = readRegularFile(path, maxBytes);
  if (!text)
    return text.takeError();
  StrictJson parsed = parseJsonStrictly(*text);
  if (!parsed.syntaxError.empty())
    return makeError(path + ": invalid JSON: " + parsed.syntaxError);
  if (parsed.duplicate)
    return makeError(path + ": " + describeDuplicate(*parsed.duplicate));
  llvm::json::Object *object = parsed.value->getAsObject();
  if (!object)
    return makeError(path + ": must hold a JSON object");
  return std::move(*object);
}
