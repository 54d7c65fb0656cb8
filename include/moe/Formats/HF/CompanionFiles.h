//===- CompanionFiles.h - Tokenizer and generation files --------*- C++ -*-===//
//
// A Hugging Face model directory holds, beside config.json and the weights,
// the files that describe its tokenizer and its generation defaults. An
// exported model is the base's with other weights: those files are the
// base's, copied as they are.
//
//===----------------------------------------------------------------------===//

#ifndef MOE_FORMATS_HF_COMPANIONFILES_H
#define MOE_FORMATS_HF_COMPANIONFILES_H

#include "moe/Support/StagedOutput.h"

namespace mlir::moe::hf {

/// tokenizer*, generation_config.json, special_tokens_map.json,
/// added_tokens.json, vocab.json, merges.txt, chat_template.{jinja,json}.
bool isCompanionFile(llvm::StringRef name);

/// Copies the companion files of `baseDir` into `output`.
llvm::Error copyCompanionFiles(llvm::StringRef baseDir, StagedOutput &output);

} // namespace mlir::moe::hf

#endif // MOE_FORMATS_HF_COMPANIONFILES_H
