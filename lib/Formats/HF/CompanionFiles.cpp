//===- CompanionFiles.cpp - Tokenizer and generation files ----------------===//

#include "moe/Formats/HF/CompanionFiles.h"

#include "moe/Support/Errors.h"

#include "llvm/ADT/STLExtras.h"
#include "llvm/Support/FileSystem.h"
#include "llvm/Support/Path.h"

using namespace llvm;
using namespace mlir::moe;

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
    if (std::error_code copyError =
            llvm::sys::fs::copy_file(it->path(), output.file(name)))
      return makeError(it->path() + ": cannot copy: " + copyError.message());
  }
  if (ec)
    return makeError(baseDir + ": " + ec.message());
  return llvm::Error::success();
}
