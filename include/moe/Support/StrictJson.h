//===- StrictJson.h - JSON parsing that refuses duplicate keys --*- C++ -*-===//
//
// llvm::json keeps the last of two equal keys without a word, and parses
// nested values recursively without a depth limit. Every JSON file we read
// (checkpoint headers and indices, config.json, adapter_config.json) comes
// from an untrusted file, so it is parsed through here.
//
//===----------------------------------------------------------------------===//

#ifndef MOE_SUPPORT_STRICTJSON_H
#define MOE_SUPPORT_STRICTJSON_H

#include "llvm/ADT/StringRef.h"
#include "llvm/Support/Error.h"
#include "llvm/Support/JSON.h"

#include <optional>
#include <string>
#include <vector>

namespace mlir::moe {

/// Deeper nesting is refused before llvm::json's recursive parser sees it.
constexpr unsigned kMaxJsonDepth = 64;

/// A key that occurs twice in one object.
struct DuplicateJsonKey {
  /// Keys (or `[index]` for arrays) leading from the root to the object.
  std::vector<std::string> path;
  std::string key;
};

/// The outcome of strictly parsing a JSON document. Exactly one of `value`,
/// `syntaxError` (the reason, without a file name) and `duplicate` is set.
struct StrictJson {
  std::optional<llvm::json::Value> value;
  std::string syntaxError;
  std::optional<DuplicateJsonKey> duplicate;
};

/// Parses `text` as JSON, refusing documents nested deeper than
/// kMaxJsonDepth, numbers beyond the range of a double (`1e999`, which
/// would read as infinity) and objects with two equal keys (compared after
/// unescaping, so "a" and "\u0061" are equal). The first duplicate in text
/// order is reported.
StrictJson parseJsonStrictly(llvm::StringRef text);

/// A path of DuplicateJsonKey as text: `shape[0].x`.
std::string formatJsonPath(llvm::ArrayRef<std::string> path);

/// "duplicate key 'k' in 'a.b'" (the path left out when empty).
std::string describeDuplicate(const DuplicateJsonKey &duplicate);

/// The largest JSON file (a config, an index) readJsonObjectFile reads.
constexpr uint64_t kMaxJsonFileSize = 100 << 20;

/// The JSON object in the regular file `path` (readRegularFile), parsed
/// strictly. Errors start with `path`.
llvm::Expected<llvm::json::Object>
readJsonObjectFile(llvm::StringRef path, uint64_t maxBytes = kMaxJsonFileSize);

/// `text` in single quotes, with control characters, quotes and
/// backslashes escaped: names from files may hold anything.
std::string quoted(llvm::StringRef text);

} // namespace mlir::moe

#endif // MOE_SUPPORT_STRICTJSON_H
