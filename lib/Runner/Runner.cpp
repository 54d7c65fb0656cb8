//===- Runner.cpp - Compiling and running model functions on the CPU ------===//

#include "moe/Runner/Runner.h"

#include "moe/Analysis/ModelFunctions.h"
#include "moe/Codegen/Pipelines.h"
#include "moe/Dialect/MoeOps.h"
#include "moe/Support/Errors.h"
#include "moe/Support/Format.h"
#include "moe/Transforms/Passes.h"
#include "moe/Weights/WeightEvaluator.h"

#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/ExecutionEngine/ExecutionEngine.h"
#include "mlir/ExecutionEngine/OptUtils.h"
#include "mlir/Pass/PassManager.h"
#include "mlir/Target/LLVMIR/Dialect/Builtin/BuiltinToLLVMIRTranslation.h"
#include "mlir/Target/LLVMIR/Dialect/LLVMIR/LLVMToLLVMIRTranslation.h"
#include "llvm/Support/TargetSelect.h"
#include "llvm/Support/raw_ostream.h"

#include <cstdlib>
#include <cstring>

using namespace mlir;
using namespace mlir::moe;

Runner::~Runner() = default;

/// Captures the diagnostics of `context` while alive, as one message.
namespace {
class DiagnosticCollector {
public:
  explicit DiagnosticCollector(MLIRContext *context)
      : handler(context, [this](Diagnostic &diagnostic) {
          llvm::raw_string_ostream os(text);
          os << (text.empty() ? "" : "\n") << diagnostic.getLocation() << ": "
             << diagnostic;
          return success();
        }) {}
  std::string take() { return std::move(text); }

private:
  std::string text;
  ScopedDiagnosticHandler handler;
};
} // namespace

/// Makes `func` also return each layer's output (the last residual addition
/// of the layer) and each router's choice; names every result.
static std::vector<std::string> exposeInternals(func::FuncOp func,
                                                bool internals) {
  // A model returns logits; a function of several results (op tests)
  // returns output.0, output.1, ...
  std::vector<std::string> names;
  if (func.getNumResults() == 1)
    names.push_back("logits");
  else
    for (unsigned i = 0; i < func.getNumResults(); ++i)
      names.push_back("output." + std::to_string(i));
  if (!internals)
    return names;
  auto ret = cast<func::ReturnOp>(func.getBody().front().getTerminator());
  SmallVector<Value> values(ret.getOperands());
  std::map<int64_t, Value> layerOutputs;
  int64_t router = 0;
  func.walk([&](Operation *op) {
    std::optional<int64_t> layer = getLayerIndex(op);
    if (auto add = dyn_cast<arith::AddFOp>(op); add && layer)
      layerOutputs[*layer] = add.getResult();
    std::string prefix =
        "router." + (layer ? std::to_string(*layer) : std::string("global")) +
        "." + std::to_string(router);
    if (auto gating = dyn_cast<TopKGatingOp>(op)) {
      values.append({gating.getWeights(), gating.getIndices()});
      names.push_back(prefix + ".weights");
      names.push_back(prefix + ".indices");
      ++router;
    }
  });
  for (auto &[layer, value] : layerOutputs) {
    values.push_back(value);
    names.push_back("hidden." + std::to_string(layer));
  }
  OpBuilder builder(ret);
  func::ReturnOp::create(builder, ret.getLoc(), values);
  ret.erase();
  func.setFunctionType(builder.getFunctionType(func.getArgumentTypes(),
                                               ValueRange(values).getTypes()));
  return names;
}

llvm::Expected<std::unique_ptr<Runner>>
Runner::create(OwningOpRef<ModuleOp> moduleRef, const RunnerOptions &options) {
  std::unique_ptr<Runner> runner(new Runner());
  runner->module = std::move(moduleRef);
  ModuleOp module = *runner->module;
  MLIRContext *context = module.getContext();
  DiagnosticCollector diagnostics(context);

  func::FuncOp func;
  MOE_ASSIGN_OR_RETURN(func,
                       pickModelFunction(module, options.function, "--func"));
  runner->entry = func.getSymName().str();
  if (func.getNumArguments() != 1)
    return makeError("'" + runner->entry +
                     "' must take token ids as its only argument, it takes " +
                     Twine(func.getNumArguments()));
  auto ids = dyn_cast<RankedTensorType>(func.getArgument(0).getType());
  if (!ids || ids.getRank() != 2 || !ids.getElementType().isInteger(64))
    return makeError("'" + runner->entry +
                     "' must take tensor<?x?xi64> token ids");
  func.walk([&](EmbeddingOp embedding) {
    runner->vocabulary =
        cast<RankedTensorType>(embedding.getTable().getType()).getShape()[0];
  });

  std::vector<std::string> names =
      exposeInternals(func, options.collectInternals);
  for (auto [name, type] : llvm::zip(names, func.getResultTypes())) {
    auto tensor = dyn_cast<RankedTensorType>(type);
    if (!tensor || !(tensor.getElementType().isF32() ||
                     tensor.getElementType().isInteger(64)))
      return makeError("result '" + name + "' of '" + runner->entry +
                       "' must be an f32 or i64 tensor");
    runner->results.push_back(
        {name, tensor.getRank(), tensor.getElementType().isInteger(64)});
  }

  // Weights into their own function, then evaluated from the checkpoints.
  PassManager outline(context);
  outline.addPass(createOutlineWeights());
  if (failed(outline.run(module)))
    return makeError("cannot outline the weights: " + diagnostics.take());
  if (auto weightsName = func->getAttrOfType<FlatSymbolRefAttr>(
          MoeDialect::getWeightsAttrName())) {
    auto weightsFunc = module.lookupSymbol<func::FuncOp>(weightsName);
    WeightEvaluator evaluator(module);
    for (Value value :
         weightsFunc.getBody().front().getTerminator()->getOperands()) {
      auto tensor = evaluator.evaluate(value);
      if (!tensor)
        return tensor.takeError();
      runner->weights.push_back(*tensor);
    }
  }
  // Only the function is compiled (moe-lower-to-llvm strips its moe
  // attributes, which LLVM would refuse).
  for (Operation &op : llvm::make_early_inc_range(*module.getBody()))
    if (&op != func.getOperation())
      op.erase();
  func->setAttr("llvm.emit_c_interface", UnitAttr::get(context));

  PassManager lowering(context);
  LowerToLLVMOptions pipeline;
  pipeline.strategy = options.strategy;
  pipeline.mma = options.mma;
  pipeline.setTiles(options.tiles);
  pipeline.vectorize = options.vectorize;
  buildLowerToLLVMPipeline(lowering, pipeline);
  if (failed(lowering.run(module)))
    return makeError("cannot compile '" + runner->entry +
                     "': " + diagnostics.take());

  llvm::InitializeNativeTarget();
  llvm::InitializeNativeTargetAsmPrinter();
  registerBuiltinDialectTranslation(*context);
  registerLLVMDialectTranslation(*context);
  auto optimize = makeOptimizingTransformer(3, 0, nullptr);
  ExecutionEngineOptions engineOptions;
  engineOptions.transformer = optimize;
  engineOptions.jitCodeGenOptLevel = llvm::CodeGenOptLevel::Aggressive;
  auto engine = ExecutionEngine::create(module, engineOptions);
  if (!engine)
    return makeError("cannot JIT-compile '" + runner->entry + "': " +
                     llvm::toString(engine.takeError()) + diagnostics.take());
  runner->engine = std::move(*engine);
  // Code generation happens at the first lookup: here, so that it counts as
  // compilation and runs are only runs.
  auto entryPoint =
      runner->engine->lookupPacked("_mlir_ciface_" + runner->entry);
  if (!entryPoint)
    return makeError("cannot JIT-compile '" + runner->entry +
                     "': " + llvm::toString(entryPoint.takeError()));
  runner->entryPoint = *entryPoint;
  return runner;
}

namespace {
/// A memref descriptor of any rank: {allocated, aligned, offset, sizes[r],
/// strides[r]}, all 64-bit.
struct Descriptor {
  explicit Descriptor(int64_t rank) : fields(3 + 2 * rank, 0), rank(rank) {}
  Descriptor(const void *data, ArrayRef<int64_t> shape)
      : Descriptor(shape.size()) {
    fields[0] = fields[1] = reinterpret_cast<int64_t>(data);
    int64_t stride = 1;
    for (int64_t d = rank - 1; d >= 0; --d) {
      fields[3 + d] = shape[d];
      fields[3 + rank + d] = stride;
      stride *= shape[d];
    }
  }
  std::vector<int64_t> fields;
  int64_t rank;
};
} // namespace

llvm::Expected<std::vector<NamedTensor>>
Runner::run(ArrayRef<int64_t> ids, int64_t batch, int64_t length) {
  if (batch < 1 || length < 1 || int64_t(ids.size()) != batch * length)
    return makeError("token ids must form a non-empty batch x length grid");
  for (auto [i, id] : llvm::enumerate(ids))
    if (id < 0 || (vocabulary && id >= vocabulary))
      return makeError("token id " + Twine(id) + " at position " + Twine(i) +
                       " is outside the vocabulary of " + Twine(vocabulary) +
                       " tokens");
  Descriptor idsDescriptor(ids.data(), {batch, length});
  std::vector<Descriptor> weightDescriptors;
  for (const auto &weight : weights)
    weightDescriptors.emplace_back(weight->data.data(), weight->shape);

  // The results come back as consecutive descriptors.
  int64_t resultFields = 0;
  for (const ResultInfo &result : results)
    resultFields += 3 + 2 * result.rank;
  std::vector<int64_t> resultBuffer(resultFields, 0);
  void *resultPointer = resultBuffer.data();
  std::vector<void *> argumentPointers{idsDescriptor.fields.data()};
  for (Descriptor &descriptor : weightDescriptors)
    argumentPointers.push_back(descriptor.fields.data());
  SmallVector<void *> packed{&resultPointer};
  for (void *&pointer : argumentPointers)
    packed.push_back(&pointer);
  entryPoint(packed.data());

  std::vector<NamedTensor> outputs;
  int64_t cursor = 0;
  for (const ResultInfo &result : results) {
    NamedTensor tensor;
    tensor.name = result.name;
    int64_t *fields = resultBuffer.data() + cursor;
    cursor += 3 + 2 * result.rank;
    int64_t count = 1;
    for (int64_t d = 0; d < result.rank; ++d) {
      tensor.shape.push_back(fields[3 + d]);
      count *= fields[3 + d];
    }
    // Identity layouts: the data is contiguous from the aligned pointer.
    const char *data =
        reinterpret_cast<const char *>(fields[1]) +
        fields[2] * (result.integer ? sizeof(int64_t) : sizeof(float));
    if (result.integer) {
      tensor.integers.resize(count);
      std::memcpy(tensor.integers.data(), data, count * sizeof(int64_t));
    } else {
      tensor.floats.resize(count);
      std::memcpy(tensor.floats.data(), data, count * sizeof(float));
    }
    // The caller owns returned buffers.
    free(reinterpret_cast<void *>(fields[0]));
    outputs.push_back(std::move(tensor));
  }
  return outputs;
}
