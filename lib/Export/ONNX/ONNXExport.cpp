//===- ONNXExport.cpp - Export to ONNX graphs -----------------------------===//
//
// The export: translate the function (ONNXTranslator.h), then write the
// model and its external data into a staged directory beside the model,
// check them there, and rename them into place.
//
//===----------------------------------------------------------------------===//

#include "moe/Export/ONNXExport.h"

#include "ONNXChecker.h"
#include "ONNXModelFiles.h"
#include "ONNXTranslator.h"

#include "moe/Analysis/ModelFunctions.h"
#include "moe/Support/StagedOutput.h"

#include "llvm/Support/FileSystem.h"
#include "llvm/Support/Path.h"

using namespace mlir;
using namespace mlir::moe;
using namespace mlir::moe::onnx_export;

//===----------------------------------------------------------------------===//
// Files
//===----------------------------------------------------------------------===//

/// Checks the external data location: a plain file name beside the model.
static LogicalResult checkDataLocation(Location loc, StringRef location,
                                       StringRef modelName) {
  namespace path = llvm::sys::path;
  auto refuse = [&](const Twine &why) {
    return emitError(loc) << "external data location '" << location << "' "
                          << why;
  };
  if (location.empty())
    return refuse("is empty");
  if (path::is_absolute(location) || path::has_root_name(location))
    return refuse("is absolute; it must be a file name relative to the "
                  "model's directory");
  for (StringRef component :
       llvm::make_range(path::begin(location), path::end(location)))
    if (component == "..")
      return refuse("leaves the model's directory ('..')");
  if (location.contains('/') || location.contains('\\'))
    return refuse("names a subdirectory; it must be a file name in the "
                  "model's directory");
  if (location == "." || location == modelName)
    return refuse("is the model file itself");
  return success();
}

LogicalResult onnx_export::writeModelFiles(ModuleOp module, func::FuncOp func,
                                           const OnnxExportOptions &options,
                                           StagedOutput &staged,
                                           StringRef destination,
                                           StringRef modelName,
                                           StringRef location) {
  Location loc = module.getLoc();
  onnx::ModelProto model;
  model.set_ir_version(8);
  model.set_producer_name("moe-translate");
  model.set_producer_version("1");
  model.set_doc_string(
      ("Model function @" + func.getSymName() +
       " exported by moe-translate "
       "--export-onnx (" +
       (options.encoding == OnnxMoeEncoding::Fused ? "fused" : "portable") +
       " MoE encoding): " +
       (options.form == OnnxForm::KvCache
            ? "a decoder with past: input_ids, attention_mask, position_ids "
              "and past_key_values.{i}.key/value -> logits and "
              "present.{i}.key/value."
            : "input_ids [batch, sequence] -> logits [batch, sequence, "
              "vocab], a prefill without KV cache."))
          .str());
  onnx::GraphProto *graphProto = model.mutable_graph();
  graphProto->set_name(func.getSymName().str());
  GraphBuilder graph(*graphProto);
  std::vector<WeightInitializer> weights;
  Translator translator(module, func, options, graph, weights);
  if (failed(translator.run()))
    return failure();
  onnx::OperatorSetIdProto *opset = model.add_opset_import();
  opset->set_domain("");
  opset->set_version(kOnnxOpset);
  if (translator.usesMicrosoftDomain()) {
    opset = model.add_opset_import();
    opset->set_domain(kMicrosoftDomain.str());
    opset->set_version(1);
  }
  llvm::StringSet<> used;
  graph.removeDeadCode(used);

  WeightEvaluator evaluator(module);
  // Errors name the files by where they were going, not by the staging area.
  if (llvm::Error error = staged.nameDestination(
          writeExternalData(weights, used, evaluator, staged.file(location),
                            location, *graphProto),
          destination))
    return emitError(func->getLoc())
           << "--export-onnx: " << llvm::toString(std::move(error));

  std::string bytes;
  if (!model.SerializeToString(&bytes))
    return emitError(loc) << "cannot serialise the ONNX model ("
                          << model.ByteSizeLong() << " bytes)";
  if (llvm::Error error = staged.nameDestination(
          staged.writeFile(modelName, bytes), destination))
    return emitError(loc) << llvm::toString(std::move(error));

  std::string message;
  if (!checkModelFile(staged.file(modelName), message))
    return emitError(loc) << "the exported model fails the ONNX checker: "
                          << message;
  return success();
}

LogicalResult mlir::moe::exportOnnx(ModuleOp module,
                                    const OnnxExportOptions &options) {
  namespace fs = llvm::sys::fs;
  namespace path = llvm::sys::path;
  Location loc = module.getLoc();
  StringRef modelPath = options.modelPath;
  if (modelPath.empty() || modelPath == "-")
    return emitError(loc) << "--export-onnx writes a model file and its "
                             "external data beside it: give the model file "
                             "with -o (e.g. -o model.onnx)";
  SmallString<256> dir(path::parent_path(modelPath));
  if (dir.empty())
    dir = ".";
  std::string modelName = path::filename(modelPath).str();
  if (modelName.empty() || modelName == "." || modelName == "..")
    return emitError(loc) << "-o '" << modelPath << "' does not name a file";
  std::string location =
      options.dataFile.empty() ? modelName + ".data" : options.dataFile;
  if (failed(checkDataLocation(loc, location, modelName)))
    return failure();
  SmallString<256> finalModel(dir), finalData(dir);
  path::append(finalModel, modelName);
  path::append(finalData, location);
  if (!fs::is_directory(dir))
    return emitError(loc) << "cannot write '" << modelPath << "': '" << dir
                          << "' "
                          << (fs::exists(dir) ? "is not a directory"
                                              : "does not exist");
  for (StringRef target : {finalModel.str(), finalData.str()}) {
    if (fs::is_symlink_file(target))
      return emitError(loc)
             << "refusing to write '" << target << "': it is a symbolic link";
    if (fs::is_directory(target))
      return emitError(loc)
             << "cannot write '" << target << "': it is a directory";
    // Checked again when publishing: a file that appears meanwhile is not
    // replaced either.
    if (!options.force && fs::exists(target))
      return emitError(loc) << "cannot write '" << modelPath << "': " << target
                            << ": exists (--force replaces it)";
  }

  llvm::Expected<func::FuncOp> func =
      pickModelFunction(module, options.function, "--export-func");
  if (!func)
    return emitError(loc) << llvm::toString(func.takeError());

  // Both files are staged beside the model and checked there (the checker
  // resolves the data file relative to the model), then renamed into place:
  // the data first, so that a model file is never there without its data.
  llvm::Expected<StagedOutput> staged = StagedOutput::create(dir, modelName);
  if (!staged)
    return emitError(loc) << "cannot write '" << modelPath
                          << "': " << llvm::toString(staged.takeError());
  if (failed(writeModelFiles(module, *func, options, *staged, dir, modelName,
                             location)))
    return failure();
  if (llvm::Error error =
          staged->publishFiles({location, modelName}, options.force))
    return emitError(loc) << "cannot write '" << modelPath
                          << "': " << llvm::toString(std::move(error));
  return success();
}
