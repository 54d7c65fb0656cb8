//===- Translations.cpp - moe-translate registrations ---------------------===//
//
// The import and export translations of moe-translate and their options.
// The exports write files of their own (a checkpoint directory, an ONNX
// model and its external data) at the path `-o` names: moe-translate hands
// them that path (setOutputPath) and gives their stream to stdout, for a
// one-line summary.
//
//===----------------------------------------------------------------------===//

#include "moe/Translation/Translations.h"

#include "moe/Dialect/MoeDialect.h"
#include "moe/Export/GGUFExport.h"
#include "moe/Export/HFExport.h"
#include "moe/Export/ONNXExport.h"
#include "moe/Import/HFImporter.h"
#include "moe/Support/ByteSize.h"

#include "mlir/Dialect/Arith/IR/Arith.h"
#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/Dialect/Tensor/IR/Tensor.h"
#include "mlir/IR/BuiltinOps.h"
#include "mlir/IR/DialectRegistry.h"
#include "mlir/Tools/mlir-translate/Translation.h"
#include "llvm/ADT/STLExtras.h"
#include "llvm/Support/CommandLine.h"
#include "llvm/Support/FileSystem.h"
#include "llvm/Support/Path.h"
#include "llvm/Support/Process.h"
#include "llvm/Support/SourceMgr.h"

using namespace mlir;
using namespace mlir::moe;
namespace cl = llvm::cl;

namespace {
/// Options of the translations, declared once each.
struct TranslationOptions {
  cl::OptionCategory importCategory{"moe import options"};
  cl::opt<std::string> baseName{
      "base-name", cl::desc("Scope and function name of the base model"),
      cl::init("base"), cl::cat(importCategory)};
  cl::list<std::string> experts{
      "expert",
      cl::desc("A fine-tuned model to import beside the base: a directory "
               "or a .gguf file, or name=path (repeatable)"),
      cl::value_desc("[name=]dir"), cl::cat(importCategory)};
  cl::list<std::string> adapters{
      "adapter",
      cl::desc("A PEFT LoRA adapter of the base to import: a directory, or "
               "name=directory (repeatable)"),
      cl::value_desc("[name=]dir"), cl::cat(importCategory)};

  cl::OptionCategory exportCategory{"moe export options"};
  cl::opt<std::string> function{
      "export-func",
      cl::desc("The model function to export (default: the only one)"),
      cl::value_desc("name"), cl::cat(exportCategory)};
  cl::opt<bool> force{
      "force",
      cl::desc("Replace what an export would overwrite: a non-empty "
               "--export-hf directory, an existing --export-onnx model or "
               "data file, an existing --export-gguf file"),
      cl::cat(exportCategory)};
  cl::opt<ExportDType> dtype{
      "export-dtype", cl::desc("dtype of the --export-hf tensors"),
      cl::values(clEnumValN(ExportDType::automatic, "auto",
                            "the dtype the base checkpoint stores"),
                 clEnumValN(ExportDType::f32, "f32", "float32"),
                 clEnumValN(ExportDType::bf16, "bf16", "bfloat16"),
                 clEnumValN(ExportDType::f16, "f16", "float16")),
      cl::init(ExportDType::automatic), cl::cat(exportCategory)};
  cl::opt<std::string> shardSize{
      "shard-size",
      cl::desc("Largest safetensors shard of --export-hf, in bytes or with "
               "a unit (500MB, 5GB, 2GiB)"),
      cl::init("5GB"), cl::cat(exportCategory)};
  cl::opt<OnnxMoeEncoding> encoding{
      "onnx-moe", cl::desc("How --export-onnx encodes routed experts"),
      cl::values(
          clEnumValN(OnnxMoeEncoding::Portable, "portable",
                     "standard ONNX operators only (TopK, Gather, Gemm, "
                     "ScatterND): any runtime"),
          clEnumValN(OnnxMoeEncoding::Fused, "fused",
                     "ONNX Runtime's com.microsoft.MoE where it expresses "
                     "the layer, portable elsewhere")),
      cl::init(OnnxMoeEncoding::Portable), cl::cat(exportCategory)};
  cl::opt<OnnxForm> form{
      "onnx-form", cl::desc("Inputs and outputs of the --export-onnx graph"),
      cl::values(clEnumValN(OnnxForm::Prefill, "prefill",
                            "input_ids -> logits, without KV cache"),
                 clEnumValN(OnnxForm::KvCache, "kv-cache",
                            "decoder with past (onnxruntime-genai and "
                            "Optimum convention): attention_mask, "
                            "position_ids and past_key_values in, logits "
                            "and present out")),
      cl::init(OnnxForm::Prefill), cl::cat(exportCategory)};
  cl::opt<OnnxWeightType> weightType{
      "onnx-weights", cl::desc("How --export-onnx stores weights"),
      cl::values(clEnumValN(OnnxWeightType::F32, "f32", "float32"),
                 clEnumValN(OnnxWeightType::F16, "f16",
                            "float16, cast to float32 where read"),
                 clEnumValN(OnnxWeightType::BF16, "bf16",
                            "bfloat16, cast to float32 where read"),
                 clEnumValN(OnnxWeightType::Int8, "int8",
                            "8-bit blocks for linear layers and experts "
                            "(MatMulNBits, QMoE), float32 elsewhere"),
                 clEnumValN(OnnxWeightType::Int4, "int4",
                            "4-bit blocks for linear layers and experts "
                            "(MatMulNBits, QMoE), float32 elsewhere")),
      cl::init(OnnxWeightType::F32), cl::cat(exportCategory)};
  cl::opt<int64_t> quantBlockSize{
      "onnx-block-size",
      cl::desc("Input features per quantisation block of --onnx-weights "
               "int8/int4 (a power of two, at least 16)"),
      cl::init(32), cl::cat(exportCategory)};
  cl::opt<bool> quantizeActivations{
      "onnx-int8-activations",
      cl::desc("With --onnx-weights=int8/int4, MatMulNBits multiplies by "
               "activations quantised to int8 per block (faster on CPUs with "
               "VNNI, less exact) instead of float32 ones"),
      cl::cat(exportCategory)};
  cl::opt<GGUFWeightType> ggufType{
      "gguf-type", cl::desc("How --export-gguf stores the weight matrices"),
      cl::values(
          clEnumValN(GGUFWeightType::automatic, "auto",
                     "the float dtype the base checkpoint stores (f16 for a "
                     "GGUF base)"),
          clEnumValN(GGUFWeightType::f32, "f32", "float32"),
          clEnumValN(GGUFWeightType::f16, "f16", "float16"),
          clEnumValN(GGUFWeightType::bf16, "bf16", "bfloat16"),
          clEnumValN(GGUFWeightType::q8_0, "q8_0",
                     "ggml's 8-bit blocks of 32 (f16 where a row is not "
                     "whole blocks)")),
      cl::init(GGUFWeightType::automatic), cl::cat(exportCategory)};
  cl::opt<std::string> dataFile{
      "onnx-data-file",
      cl::desc("External data file of --export-onnx, a file name in the "
               "model's directory (default: <model file>.data)"),
      cl::value_desc("name"), cl::cat(exportCategory)};

  /// The path `-o` names, for the exports.
  std::string outputPath;
};
} // namespace

static TranslationOptions &options() {
  static TranslationOptions instance;
  return instance;
}

/// The translations that write files of their own at the -o path.
static constexpr llvm::StringLiteral kFileExports[] = {
    "export-hf", "export-onnx", "export-onnx-genai", "export-gguf"};

bool mlir::moe::writesOwnFiles(StringRef translation) {
  return llvm::is_contained(kFileExports, translation);
}

void mlir::moe::setOutputPath(StringRef path) {
  options().outputPath = path.str();
}

/// "name=path", or a bare path named after its last component (less a
/// `.gguf` extension).
static CheckpointRef parseCheckpointRef(StringRef spec) {
  auto [name, path] = spec.split('=');
  if (!path.empty())
    return {name.str(), path.str()};
  StringRef directory = spec.rtrim("/");
  StringRef last = llvm::sys::path::filename(directory);
  last.consume_back(".gguf");
  return {last.str(), spec.str()};
}

static void registerDialects(DialectRegistry &registry) {
  registerMoeDialect(registry);
  registry
      .insert<func::FuncDialect, arith::ArithDialect, tensor::TensorDialect>();
}

/// Imports the base model the input names: a GGUF file, or (unless
/// `ggufOnly`) a directory or its config.json.
static OwningOpRef<Operation *>
importModel(llvm::SourceMgr &sourceMgr, MLIRContext *context, bool ggufOnly) {
  StringRef input = sourceMgr.getMemoryBuffer(sourceMgr.getMainFileID())
                        ->getBufferIdentifier();
  bool gguf = input.ends_with(".gguf");
  std::string basePath = gguf || llvm::sys::fs::is_directory(input)
                             ? input.str()
                             : llvm::sys::path::parent_path(input).str();
  if (basePath.empty())
    basePath = ".";
  SmallString<256> configPath(basePath);
  if (!gguf)
    llvm::sys::path::append(configPath, "config.json");
  context->loadDialect<MoeDialect, func::FuncDialect, arith::ArithDialect,
                       tensor::TensorDialect>();
  Location location =
      FileLineColLoc::get(context, configPath, /*line=*/0, /*column=*/0);
  if (ggufOnly && !gguf) {
    emitError(location) << "--import-gguf reads a .gguf file, not " << input;
    return nullptr;
  }
  TranslationOptions &opts = options();
  ImportRequest request;
  request.base = {opts.baseName, basePath};
  for (const std::string &spec : opts.experts)
    request.experts.push_back(parseCheckpointRef(spec));
  for (const std::string &spec : opts.adapters)
    request.adapters.push_back(parseCheckpointRef(spec));

  OwningOpRef<ModuleOp> module(ModuleOp::create(location));
  if (failed(importHuggingFace(*module, request)))
    return nullptr;
  return OwningOpRef<Operation *>(module.release());
}

static OwningOpRef<Operation *> importHF(llvm::SourceMgr &sourceMgr,
                                         MLIRContext *context) {
  return importModel(sourceMgr, context, /*ggufOnly=*/false);
}

static OwningOpRef<Operation *> importGGUF(llvm::SourceMgr &sourceMgr,
                                           MLIRContext *context) {
  return importModel(sourceMgr, context, /*ggufOnly=*/true);
}

static LogicalResult exportHF(ModuleOp module, llvm::raw_ostream &summary) {
  TranslationOptions &opts = options();
  HFExportOptions exportOptions;
  // No -o (or -o -): the export says that it needs a directory.
  exportOptions.outputDir = opts.outputPath == "-" ? "" : opts.outputPath;
  exportOptions.force = opts.force;
  exportOptions.function = opts.function;
  exportOptions.dtype = opts.dtype;
  std::optional<uint64_t> shardBytes = parseByteSize(opts.shardSize);
  if (!shardBytes)
    return emitError(module.getLoc())
           << "--shard-size: '" << opts.shardSize
           << "' is not a size in bytes (e.g. 5GB, 500MB, 2GiB, 1000000)";
  exportOptions.maxShardBytes = *shardBytes;
  exportOptions.showProgress = llvm::sys::Process::StandardErrIsDisplayed();
  return exportHuggingFace(module, exportOptions, summary);
}

static OnnxExportOptions onnxExportOptions() {
  TranslationOptions &opts = options();
  OnnxExportOptions exportOptions;
  exportOptions.modelPath = opts.outputPath;
  exportOptions.dataFile = opts.dataFile;
  exportOptions.encoding = opts.encoding;
  exportOptions.function = opts.function;
  exportOptions.force = opts.force;
  exportOptions.form = opts.form;
  exportOptions.weightType = opts.weightType;
  exportOptions.quantBlockSize = opts.quantBlockSize;
  exportOptions.quantizeActivations = opts.quantizeActivations;
  return exportOptions;
}

static LogicalResult exportONNX(ModuleOp module, llvm::raw_ostream &) {
  return exportOnnx(module, onnxExportOptions());
}

static LogicalResult exportONNXGenai(ModuleOp module, llvm::raw_ostream &) {
  OnnxExportOptions exportOptions = onnxExportOptions();
  if (options().form.getNumOccurrences() &&
      exportOptions.form != OnnxForm::KvCache)
    return emitError(module.getLoc())
           << "--export-onnx-genai writes the kv-cache form: drop "
              "--onnx-form=prefill";
  exportOptions.form = OnnxForm::KvCache;
  return exportOnnxGenai(module, exportOptions);
}

static LogicalResult exportGGUFModel(ModuleOp module,
                                     llvm::raw_ostream &summary) {
  TranslationOptions &opts = options();
  GGUFExportOptions exportOptions;
  exportOptions.outputPath = opts.outputPath;
  exportOptions.force = opts.force;
  exportOptions.function = opts.function;
  exportOptions.weightType = opts.ggufType;
  exportOptions.showProgress = llvm::sys::Process::StandardErrIsDisplayed();
  return exportGGUF(module, exportOptions, summary);
}

void mlir::moe::registerMoeTranslations() {
  options();
  static TranslateToMLIRRegistration importRegistration(
      "import-hf",
      "Import a Hugging Face decoder (directory or its config.json), with "
      "--expert and --adapter checkpoints beside it",
      importHF, registerDialects);
  static TranslateToMLIRRegistration importGGUFRegistration(
      "import-gguf",
      "Import a llama.cpp GGUF decoder (Llama family; quantised weights are "
      "dequantised when read), with --expert checkpoints beside it",
      importGGUF, registerDialects);
  static TranslateFromMLIRRegistration exportHFRegistration(
      "export-hf",
      "Export a mixed model function as a Hugging Face MoE checkpoint "
      "(Mixtral, Qwen2-MoE or GraniteMoE) into the directory -o names",
      exportHF, registerDialects);
  static TranslateFromMLIRRegistration exportONNXRegistration(
      "export-onnx",
      "Export a model function to ONNX: -o model.onnx, weights in external "
      "data beside it",
      exportONNX, registerDialects);
  static TranslateFromMLIRRegistration exportONNXGenaiRegistration(
      "export-onnx-genai",
      "Export a model function as an onnxruntime-genai folder (-o DIR): the "
      "KV-cache ONNX graph, genai_config.json and the base's tokenizer",
      exportONNXGenai, registerDialects);
  static TranslateFromMLIRRegistration exportGGUFRegistration(
      "export-gguf",
      "Export a mixed model function as a llama.cpp GGUF model (Mixtral-style "
      "llama with experts, the base's tokenizer) into the file -o names",
      exportGGUFModel, registerDialects);
}
