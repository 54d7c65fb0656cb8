//===- Tokenizer.h - A Hugging Face tokenizer as GGUF metadata --*- C++ -*-===//
//
// llama.cpp reads its tokenizer from the `tokenizer.ggml.*` metadata of the
// model file. These are the conversions of a Hugging Face tokenizer folder
// (tokenizer.json, tokenizer_config.json) into that metadata, for the
// tokenizer models llama.cpp implements the same way.
//
//===----------------------------------------------------------------------===//

#ifndef MOE_LIB_EXPORT_GGUF_TOKENIZER_H
#define MOE_LIB_EXPORT_GGUF_TOKENIZER_H

#include "moe/Weights/GGUFWriter.h"

namespace mlir::moe::gguf_export {

/// Adds the `tokenizer.ggml.*` (and `tokenizer.chat_template`) metadata of
/// the Hugging Face tokenizer in `directory` to `metadata`. Errors name the
/// file and what llama.cpp has no equivalent for.
llvm::Error addHuggingFaceTokenizer(llvm::StringRef directory,
                                    weights::GGUFMetadata &metadata);

} // namespace mlir::moe::gguf_export

#endif // MOE_LIB_EXPORT_GGUF_TOKENIZER_H
