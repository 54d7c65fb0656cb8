//===- ONNXModelFiles.h - A model and its data, staged ----------*- C++ -*-===//
//
// The files of one exported graph (the model and its external data),
// written into a staged output and checked there; the plain export publishes
// them beside each other, the onnxruntime-genai export as part of a folder.
//
//===----------------------------------------------------------------------===//

#ifndef MOE_LIB_EXPORT_ONNX_ONNXMODELFILES_H
#define MOE_LIB_EXPORT_ONNX_ONNXMODELFILES_H

#include "moe/Export/ONNXExport.h"
#include "moe/Support/StagedOutput.h"

#include "mlir/Dialect/Func/IR/FuncOps.h"

namespace mlir::moe::onnx_export {

/// Translates `func` and writes the model `modelName` and its external data
/// `location` into `staged`, then runs the ONNX checker on them. Messages
/// name the files by `destination`, the directory they are going to.
LogicalResult writeModelFiles(ModuleOp module, func::FuncOp func,
                              const OnnxExportOptions &options,
                              StagedOutput &staged, StringRef destination,
                              StringRef modelName, StringRef location);

} // namespace mlir::moe::onnx_export

#endif // MOE_LIB_EXPORT_ONNX_ONNXMODELFILES_H
