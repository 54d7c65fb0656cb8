//===- ConfigWriter.h - config.json as transformers writes it ---*- C++ -*-===//

#ifndef MOE_FORMATS_HF_CONFIGWRITER_H
#define MOE_FORMATS_HF_CONFIGWRITER_H

#include "llvm/Support/JSON.h"

#include <string>

namespace mlir::moe::hf {

/// `config` as transformers' save_pretrained writes a config.json: keys
/// sorted, two-space indentation, floats as Python's repr writes them
/// (transformers' strict config fields refuse `0` where they expect a float),
/// a final newline.
std::string formatConfigJson(const llvm::json::Value &config);

} // namespace mlir::moe::hf

#endif // MOE_FORMATS_HF_CONFIGWRITER_H
