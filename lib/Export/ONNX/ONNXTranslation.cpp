//===- ONNXTranslation.cpp - --export-onnx for moe-translate --------------===//

#include "moe/Export/ONNXExport.h"

#include "moe/Dialect/MoeDialect.h"

#include "mlir/Dialect/Arith/IR/Arith.h"
#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/Dialect/Tensor/IR/Tensor.h"
#include "mlir/IR/DialectRegistry.h"
#include "mlir/Tools/mlir-translate/Translation.h"
#include "llvm/Support/CommandLine.h"

using namespace mlir;
using namespace mlir::moe;

namespace {
struct OnnxTranslateOptions {
  llvm::cl::OptionCategory category{"moe ONNX export options"};
  llvm::cl::opt<std::string> output{
      "onnx-output",
      llvm::cl::desc("The model file --export-onnx writes (moe-translate "
                     "takes it from -o)"),
      llvm::cl::value_desc("file"), llvm::cl::cat(category)};
  llvm::cl::opt<OnnxMoeEncoding> encoding{
      "onnx-moe", llvm::cl::desc("How --export-onnx encodes routed experts"),
      llvm::cl::values(
          clEnumValN(OnnxMoeEncoding::Portable, "portable",
                     "standard ONNX operators only (TopK, Gather, Gemm, "
                     "ScatterND): any runtime"),
          clEnumValN(OnnxMoeEncoding::Fused, "fused",
                     "ONNX Runtime's com.microsoft.MoE where it expresses "
                     "the layer, portable elsewhere")),
      llvm::cl::init(OnnxMoeEncoding::Portable), llvm::cl::cat(category)};
  llvm::cl::opt<std::string> dataFile{
      "onnx-data-file",
      llvm::cl::desc("External data file of --export-onnx, a file name in "
                     "the model's directory (default: <model file>.data)"),
      llvm::cl::value_desc("name"), llvm::cl::cat(category)};
};
} // namespace

static OnnxTranslateOptions &onnxOptions() {
  static OnnxTranslateOptions options;
  return options;
}

/// `--export-func` is shared by the exporters: whichever registers first
/// owns it (as a cl::opt<std::string>), the others read it.
static llvm::cl::opt<std::string> *exportFunction() {
  static llvm::cl::opt<std::string> *option = [] {
    auto &registered = llvm::cl::getRegisteredOptions();
    auto it = registered.find("export-func");
    if (it != registered.end())
      return static_cast<llvm::cl::opt<std::string> *>(it->second);
    static llvm::cl::opt<std::string> own(
        "export-func",
        llvm::cl::desc("The model function to export (default: the only "
                       "one of the module)"),
        llvm::cl::value_desc("name"));
    return &own;
  }();
  return option;
}

void mlir::moe::registerOnnxExportTranslation() {
  onnxOptions();
  exportFunction();
  static TranslateFromMLIRRegistration exportOnnxRegistration(
      "export-onnx",
      "Export a model function to ONNX: -o model.onnx, weights in external "
      "data beside it",
      [](ModuleOp module, llvm::raw_ostream &) -> LogicalResult {
        OnnxTranslateOptions &options = onnxOptions();
        OnnxExportOptions exportOptions;
        exportOptions.modelPath = options.output;
        exportOptions.dataFile = options.dataFile;
        exportOptions.encoding = options.encoding;
        exportOptions.function = exportFunction()->getValue();
        return exportOnnx(module, exportOptions);
      },
      [](DialectRegistry &registry) {
        registry.insert<MoeDialect, func::FuncDialect, arith::ArithDialect,
                        tensor::TensorDialect>();
      });
}
