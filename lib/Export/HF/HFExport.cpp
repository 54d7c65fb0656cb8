//===- HFExport.cpp - Export to Hugging Face MoE checkpoints --------------===//
//
// The export: pick the function, match it as a decoder, choose the layout
// (Layout.cpp), plan its tensors (TensorPlan.cpp), and write config.json,
// the base's tokenizer and generation files and the safetensors shards into
// a staged directory that is renamed into place once complete.
//
//===----------------------------------------------------------------------===//

#include "moe/Export/HFExport.h"

#include "Layout.h"
#include "TensorPlan.h"

#include "moe/Analysis/ModelFunctions.h"
#include "moe/Formats/HF/CompanionFiles.h"
#include "moe/Formats/HF/ConfigWriter.h"
#include "moe/Formats/HF/TensorNames.h"
#include "moe/Support/ByteSize.h"
#include "moe/Support/Errors.h"
#include "moe/Support/ProgressBar.h"
#include "moe/Support/StagedOutput.h"

#include "llvm/Support/FileSystem.h"
#include "llvm/Support/Path.h"
#include "llvm/Support/raw_ostream.h"

using namespace mlir;
using namespace mlir::moe;
using namespace mlir::moe::hf_export;
using weights::DType;

/// The dtype of the exported tensors: the option's, or the base's stored
/// dtype (of its embedding table).
static FailureOr<DType>
exportDType(ExportDType option, weights::Checkpoint &base, ModuleOp module) {
  switch (option) {
  case ExportDType::f32:
    return DType::F32;
  case ExportDType::bf16:
    return DType::BF16;
  case ExportDType::f16:
    return DType::F16;
  case ExportDType::automatic:
    break;
  }
  std::string embedding = hf::weightKey(hf::kEmbedTokens);
  const weights::TensorInfo *info = base.find(embedding);
  if (!info)
    return mlir::emitError(module.getLoc())
           << base.path() << ": no tensor '" << embedding
           << "' to take the dtype of (choose one with --export-dtype)";
  return info->dtype;
}

LogicalResult mlir::moe::exportHuggingFace(ModuleOp module,
                                           const HFExportOptions &options,
                                           llvm::raw_ostream &summary) {
  auto fail = [&](llvm::Error error) {
    mlir::emitError(module.getLoc()) << llvm::toString(std::move(error));
    return failure();
  };
  if (options.outputDir.empty())
    return fail(makeError("--export-hf needs an output directory (-o DIR)"));
  llvm::Expected<bool> replace =
      checkOutputDirectory(options.outputDir, options.force);
  if (!replace)
    return fail(replace.takeError());
  WeightSourceOptions weightSources;
  if (llvm::Error error = checkScopeBindings(module, weightSources))
    return fail(std::move(error));
  if (llvm::Error error =
          refuseReplacingSource(module, options.outputDir, weightSources))
    return fail(std::move(error));

  llvm::Expected<func::FuncOp> func =
      pickModelFunction(module, options.function, "--export-func");
  if (!func)
    return fail(func.takeError());
  if (failed(refuseUnstructuredFeatures(*func, kHuggingFaceTarget)))
    return failure();
  FailureOr<Decoder> decoder = matchDecoder(*func);
  if (failed(decoder))
    return failure();

  llvm::Expected<BaseCheckpoint> base = huggingFaceBaseOf(*func, weightSources);
  if (!base)
    return fail(base.takeError());
  ScopeOp baseScope = base->scope;
  std::string baseDir = base->directory;
  SmallString<256> configPath(baseDir);
  llvm::sys::path::append(configPath, "config.json");
  llvm::Expected<DecoderConfig> baseConfig = readDecoderConfig(configPath);
  if (!baseConfig)
    return fail(explainScopeError(baseScope, baseDir, baseConfig.takeError()));
  FailureOr<LayoutChoice> choice =
      chooseLayout(*decoder, *baseConfig, kHuggingFaceTarget);
  if (failed(choice))
    return failure();

  WeightEvaluator headers(module, weightSources);
  llvm::Expected<weights::Checkpoint *> baseCheckpoint =
      headers.checkpoint(baseScope.getSymName());
  if (!baseCheckpoint)
    return fail(baseCheckpoint.takeError());
  FailureOr<DType> dtype = exportDType(options.dtype, **baseCheckpoint, module);
  if (failed(dtype))
    return failure();

  CheckpointTensors tensors(module, *dtype, weightSources);
  llvm::Expected<std::vector<weights::TensorSource>> sources =
      tensors.plan(*choice, *decoder);
  if (!sources)
    return fail(sources.takeError());
  uint64_t totalBytes = 0;
  for (const weights::TensorSource &source : *sources)
    totalBytes += source.numBytes();
  size_t tensorCount = sources->size();

  llvm::Expected<StagedOutput> staged =
      StagedOutput::create(llvm::sys::path::parent_path(options.outputDir),
                           llvm::sys::path::filename(options.outputDir));
  if (!staged)
    return fail(staged.takeError());
  // Errors name the files by where they were going, not by the staging area.
  auto failStaged = [&](llvm::Error error) {
    return fail(staged->nameDestination(std::move(error), options.outputDir));
  };
  if (llvm::Error error = staged->writeFile(
          "config.json", hf::formatConfigJson(llvm::json::Value(buildConfig(
                             *choice, *decoder, *baseConfig, *dtype)))))
    return failStaged(std::move(error));
  if (llvm::Error error = hf::copyCompanionFiles(baseDir, *staged))
    return failStaged(std::move(error));

  weights::WriterOptions writer;
  writer.maxShardBytes = options.maxShardBytes;
  writer.metadata["format"] = "pt";
  ProgressBar progress;
  if (options.showProgress)
    writer.progress = [&](uint64_t done, uint64_t total) {
      progress.update(done, total);
    };
  if (llvm::Error error = weights::writeSafeTensorsCheckpoint(
          staged->path(), std::move(*sources), writer))
    return failStaged(std::move(error));
  if (llvm::Error error = staged->publishDirectory(*replace))
    return fail(std::move(error));

  uint64_t files = 0;
  std::error_code ec;
  for (llvm::sys::fs::directory_iterator it(options.outputDir, ec), end;
       !ec && it != end; it.increment(ec))
    files += StringRef(it->path()).ends_with(".safetensors");
  const UniformShape &shape = choice->shape;
  summary << "exported @" << (*func).getSymName() << " as "
          << architectureOf(choice->layout) << " to " << options.outputDir
          << ": " << shape.numExperts << " experts, " << shape.topK
          << " per token, " << decoder->layers.size() - shape.denseLayers.size()
          << " of " << decoder->layers.size() << " layers routed; "
          << tensorCount << " tensors, " << formatBytes(totalBytes) << " of "
          << weights::dtypeName(*dtype) << " in " << files
          << (files == 1 ? " file" : " files") << "\n";
  return success();
}
