//===- ONNXChecker.cpp - onnx::checker behind a plain interface -----------===//
//
// Compiled with -fexceptions: onnx::checker throws ValidationError (and the
// protobuf loader may throw std::exceptions). Nothing here may include LLVM
// or MLIR headers, whose classes are built without RTTI.
//
//===----------------------------------------------------------------------===//

#include "ONNXChecker.h"

#include "onnx/checker.h"

#include <exception>

bool mlir::moe::onnx_export::checkModelFile(const std::string &path,
                                            std::string &message) {
  try {
    onnx::checker::check_model(path);
    return true;
  } catch (const std::exception &error) {
    message = error.what();
  } catch (...) {
    message = "unknown error";
  }
  return false;
}
