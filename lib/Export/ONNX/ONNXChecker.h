//===- ONNXChecker.h - onnx::checker behind a plain interface ---*- C++ -*-===//
//
// libonnx reports failed checks by throwing. The project builds without
// exceptions, so the one call that needs them lives in ONNXChecker.cpp (the
// only file compiled with -fexceptions) behind this exception-free and
// LLVM-free interface.
//
//===----------------------------------------------------------------------===//

#ifndef MOE_LIB_EXPORT_ONNX_ONNXCHECKER_H
#define MOE_LIB_EXPORT_ONNX_ONNXCHECKER_H

#include <string>

namespace mlir::moe::onnx_export {

/// Runs onnx::checker::check_model on the model file at `path` (which
/// resolves external data relative to the file). Returns true when the model
/// passes; otherwise false with the checker's message in `message`.
bool checkModelFile(const std::string &path, std::string &message);

} // namespace mlir::moe::onnx_export

#endif // MOE_LIB_EXPORT_ONNX_ONNXCHECKER_H
