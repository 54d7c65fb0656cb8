//===- moe-run.cpp - Runs a model function on the CPU ---------------------===//
//
// Compiles a model function of a moe module (imported, mixed, or both) to
// machine code with the weights of its checkpoints bound, runs it on token
// ids, and writes the logits (optionally every layer's output and router
// choice) to .npy or .safetensors.
//
//===----------------------------------------------------------------------===//

#include "moe/InitMoe.h"
#include "moe/Runner/Runner.h"
#include "moe/Support/Errors.h"
#include "moe/Support/StagedOutput.h"
#include "moe/Weights/SafeTensors.h"
#include "moe/Weights/WeightSources.h"

#include "mlir/IR/DialectRegistry.h"
#include "mlir/IR/MLIRContext.h"
#include "mlir/Parser/Parser.h"
#include "mlir/Support/FileUtilities.h"
#include "llvm/Support/CommandLine.h"
#include "llvm/Support/FileSystem.h"
#include "llvm/Support/InitLLVM.h"
#include "llvm/Support/MemoryBuffer.h"
#include "llvm/Support/Path.h"
#include "llvm/Support/SourceMgr.h"
#include "llvm/Support/ToolOutputFile.h"
#include "llvm/Support/raw_ostream.h"

#include <chrono>

using namespace mlir;
using namespace mlir::moe;
namespace cl = llvm::cl;

static cl::OptionCategory runCategory("moe-run options");

static cl::opt<std::string> inputFile(cl::Positional, cl::desc("<input .mlir>"),
                                      cl::init("-"), cl::cat(runCategory));
static cl::opt<std::string> function("func", cl::desc("Model function to run"),
                                     cl::cat(runCategory));
static cl::opt<std::string>
    idsText("ids",
            cl::desc("Token ids: rows of comma-separated ids, rows "
                     "separated by ';' (\"1,2,3;4,5,6\")"),
            cl::cat(runCategory));
static cl::opt<std::string>
    outputFile("o",
               cl::desc("Output file: .npy (logits) or .safetensors "
                        "(logits and, with --internals, the rest)"),
               cl::value_desc("file"), cl::cat(runCategory));
static cl::opt<RoutedStrategy> strategy("strategy",
                                        cl::desc("How routed experts run"),
                                        cpuStrategyValues(),
                                        cl::init(RoutedStrategy::sparse),
                                        cl::cat(runCategory));
static cl::opt<MmaKind>
    mma("mma", cl::desc("GEMM inner products of --strategy=kernels"),
        mmaKindValues(), cl::init(MmaKind::none), cl::cat(runCategory));
#define MOE_KERNEL_TILE_OPTION(field, flag, toolFlag, value, help)             \
  static cl::opt<int64_t> field(toolFlag,                                      \
                                cl::desc(help " (--strategy=kernels)"),        \
                                cl::init(value), cl::cat(runCategory));
#include "moe/Codegen/KernelTileOptions.def"
static cl::opt<bool> noVectorize("no-vectorize",
                                 cl::desc("Do not vectorise contractions"),
                                 cl::cat(runCategory));
static cl::opt<bool> internals(
    "internals",
    cl::desc("Also output every decoder layer's output (hidden.<layer>) and "
             "every router's choice (router.<layer>.<n>.weights/indices)"),
    cl::cat(runCategory));
static cl::opt<unsigned>
    repeat("repeat", cl::desc("Run this many times and report tokens/s"),
           cl::init(1), cl::cat(runCategory));

/// Parses "1,2,3;4,5,6" into rows of equal length.
static llvm::Expected<std::vector<int64_t>>
parseIds(StringRef text, int64_t &batch, int64_t &length) {
  std::vector<int64_t> ids;
  SmallVector<StringRef> rows;
  text.split(rows, ';');
  batch = rows.size();
  length = -1;
  for (auto [r, row] : llvm::enumerate(rows)) {
    SmallVector<StringRef> items;
    row.split(items, ',');
    if (length >= 0 && int64_t(items.size()) != length)
      return makeError("--ids: row " + Twine(r) + " has " +
                       Twine(items.size()) + " ids, the first has " +
                       Twine(length));
    length = items.size();
    for (StringRef item : items) {
      int64_t id;
      if (item.trim().getAsInteger(10, id))
        return makeError("--ids: '" + item + "' is not a token id");
      ids.push_back(id);
    }
  }
  return ids;
}

/// Writes a float32 .npy file, staged.
static llvm::Error writeNpy(StringRef path, const NamedTensor &tensor) {
  std::string shape;
  for (int64_t dim : tensor.shape)
    shape += std::to_string(dim) + ", ";
  std::string header =
      "{'descr': '<f4', 'fortran_order': False, 'shape': (" + shape + "), }";
  // Magic, version, header length, header padded to 64 bytes with '\n'.
  size_t unpadded = 10 + header.size() + 1;
  header.append((64 - unpadded % 64) % 64, ' ');
  header.push_back('\n');
  std::string prelude = "\x93NUMPY";
  prelude += char(1);
  prelude += char(0);
  prelude += char(header.size() & 0xff);
  prelude += char(header.size() >> 8);
  std::string bytes = prelude + header;
  bytes.append(reinterpret_cast<const char *>(tensor.floats.data()),
               tensor.floats.size() * sizeof(float));
  StringRef name = llvm::sys::path::filename(path);
  llvm::Expected<StagedOutput> staged =
      StagedOutput::create(llvm::sys::path::parent_path(path), name);
  if (!staged)
    return staged.takeError();
  MOE_RETURN_IF_ERROR(staged->writeFile(name, bytes));
  return staged->publishFiles({name.str()}, /*replace=*/true);
}

static llvm::Error writeSafeTensors(StringRef path,
                                    const std::vector<NamedTensor> &tensors) {
  std::vector<weights::TensorSource> sources;
  for (const NamedTensor &tensor : tensors) {
    weights::TensorSource source;
    source.name = tensor.name;
    source.shape = tensor.shape;
    bool integer = !tensor.integers.empty() || tensor.floats.empty();
    source.dtype = integer ? weights::DType::I64 : weights::DType::F32;
    source.produce = [&tensor, integer](llvm::raw_ostream &os) {
      if (integer)
        os.write(reinterpret_cast<const char *>(tensor.integers.data()),
                 tensor.integers.size() * sizeof(int64_t));
      else
        os.write(reinterpret_cast<const char *>(tensor.floats.data()),
                 tensor.floats.size() * sizeof(float));
      return llvm::Error::success();
    };
    sources.push_back(std::move(source));
  }
  SmallString<256> dir(path);
  llvm::sys::path::remove_filename(dir);
  if (dir.empty())
    dir = ".";
  weights::WriterOptions options;
  options.stem = llvm::sys::path::stem(path).str();
  options.metadata["producer"] = "moe-run";
  return weights::writeSafeTensorsCheckpoint(dir, std::move(sources), options);
}

static int fail(const Twine &message) {
  llvm::errs() << "moe-run: error: " << message << "\n";
  return 1;
}

int main(int argc, char **argv) {
  llvm::InitLLVM init(argc, argv);
  cl::HideUnrelatedOptions({&runCategory, &weightSourceCLCategory()});
  cl::ParseCommandLineOptions(argc, argv,
                              "moe-run: runs a moe model function on the CPU");
  if (idsText.empty())
    return fail("--ids is required");
  if (!outputFile.empty() && !StringRef(outputFile).ends_with(".npy") &&
      !StringRef(outputFile).ends_with(".safetensors"))
    return fail("-o must name a .npy or .safetensors file");
  if (internals && StringRef(outputFile).ends_with(".npy"))
    return fail("--internals needs a .safetensors output");
  KernelTiles tiles;
  bool tilesGiven = false;
#define MOE_KERNEL_TILE_OPTION(field, flag, toolFlag, value, help)             \
  tiles.field = field;                                                         \
  tilesGiven |= field.getNumOccurrences() != 0;
#include "moe/Codegen/KernelTileOptions.def"
  if ((mma != MmaKind::none || tilesGiven) &&
      strategy != RoutedStrategy::kernels)
    return fail("--mma and the block options apply to --strategy=kernels "
                "only");

  int64_t batch, length;
  auto ids = parseIds(idsText, batch, length);
  if (!ids)
    return fail(llvm::toString(ids.takeError()));

  DialectRegistry registry;
  registerMoeDialects(registry);
  MLIRContext context(registry);
  context.loadAllAvailableDialects();
  std::string parseError;
  auto buffer = openInputFile(inputFile, &parseError);
  if (!buffer)
    return fail(parseError);
  llvm::SourceMgr sourceMgr;
  sourceMgr.AddNewSourceBuffer(std::move(buffer), llvm::SMLoc());
  OwningOpRef<ModuleOp> module = parseSourceFile<ModuleOp>(sourceMgr, &context);
  if (!module)
    return 1;

  RunnerOptions options;
  options.function = function;
  options.strategy = strategy;
  options.mma = mma;
  options.tiles = tiles;
  options.vectorize = !noVectorize;
  options.collectInternals = internals;
  auto start = std::chrono::steady_clock::now();
  auto runner = Runner::create(std::move(module), options);
  if (!runner)
    return fail(llvm::toString(runner.takeError()));
  double compileSeconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start)
          .count();

  std::vector<NamedTensor> outputs;
  double runSeconds = 0;
  for (unsigned i = 0; i < std::max(1u, unsigned(repeat)); ++i) {
    auto runStart = std::chrono::steady_clock::now();
    auto result = (*runner)->run(*ids, batch, length);
    if (!result)
      return fail(llvm::toString(result.takeError()));
    runSeconds += std::chrono::duration<double>(
                      std::chrono::steady_clock::now() - runStart)
                      .count();
    outputs = std::move(*result);
  }

  const NamedTensor &logits = outputs.front();
  llvm::outs() << logits.name << ": [";
  for (auto [i, dim] : llvm::enumerate(logits.shape))
    llvm::outs() << (i ? ", " : "") << dim;
  llvm::outs() << "]";
  if (logits.name == "logits" && logits.shape.size() == 3) {
    int64_t vocabulary = logits.shape.back();
    llvm::outs() << "; next token of each row:";
    for (int64_t row = 0; row < batch; ++row) {
      const float *last =
          logits.floats.data() + ((row + 1) * length - 1) * vocabulary;
      llvm::outs() << " " << (std::max_element(last, last + vocabulary) - last);
    }
  }
  llvm::outs() << "\n";
  if (repeat > 1)
    llvm::outs() << llvm::format(
        "compile %.2f s; %u runs of %lld tokens: %.1f tokens/s\n",
        compileSeconds, unsigned(repeat), (long long)(batch * length),
        double(batch * length) * repeat / runSeconds);

  if (!outputFile.empty()) {
    if (outputs.size() > 1 && StringRef(outputFile).ends_with(".npy"))
      return fail("the run has " + Twine(outputs.size()) +
                  " results: write them to a .safetensors file");
    llvm::Error error = StringRef(outputFile).ends_with(".npy")
                            ? writeNpy(outputFile, logits)
                            : writeSafeTensors(outputFile, outputs);
    if (error)
      return fail("cannot write '" + outputFile +
                  "': " + llvm::toString(std::move(error)));
  }
  return 0;
}
