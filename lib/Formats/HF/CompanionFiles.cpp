//===- CompanionFiles.cpp - Tokenizer and generation files ----------------===//

#include "moe/Formats/HF/CompanionFiles.h"

#include "moe/Support/Errors.h"
#include "moe/Support/RegularFile.h"

#include "llvm/ADT/STLExtras.h"
#include "llvm/Support/FileSystem.h"
#include "llvm/Support/Path.h"

using namespace llvm;
using namespace mlir::moe;

/// Tokenizers of large vocabularies are tens of MB; far more is not one.
static constexpr uint64_t kMaxCompanionFileBytes = uint64_t(1) << 30;

bool mlir::moe::hf::isCompanionFile(StringRef name) {
  return name.starts_with("tokenizer") ||
         llvm::is_contained({"generation_config.json",
                             "special_tokens_map.json", "added_tokens.json",
                             "vocab.json", "merges.txt", "chat_template.jinja",
                             "chat_template.json"},
                            name);
}

llvm::Error mlir::moe::hf::copyCompanionFiles(StringRef baseDir,
                                              StagedOutput &output) {
  std::error_code ec;
  for (llvm::sys::fs::directory_iterator it(baseDir, ec), end; it != end;
       it.increment(ec)) {
    StringRef name = llvm::sys::path::filename(it->path());
    if (!isCompanionFile(name) ||
        it->type() == llvm::sys::fs::file_type::directory_file)
      continue;
    // Read through the bounded reader: a FIFO or device named like a
    // tokenizer file must not block or fill the export.
    llvm::Expected<std::string> contents =
        readRegularFile(it->path(), kMaxCompanionFileBytes);
    if (!contents)
      return contents.takeError();
    MOE_RETURN_IF_ERROR(output.writeFile(name, *contents));
  }
  if (ec)
    return makeError(baseDir + ": " + ec.message());
  return llvm::Error::success();
}
