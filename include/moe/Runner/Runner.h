//===- Runner.h - Compiling and running model functions on the CPU -*- C++
//-*-===//

#ifndef MOE_RUNNER_RUNNER_H
#define MOE_RUNNER_RUNNER_H

#include "moe/Codegen/Pipelines.h"

#include "mlir/IR/BuiltinOps.h"
#include "llvm/Support/Error.h"

#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace mlir {
class ExecutionEngine;
} // namespace mlir

namespace mlir::moe {

struct HostTensor;

struct RunnerOptions {
  /// The model function; empty picks the only function with a `moe.scope`
  /// attribute (or the only function).
  std::string function;
  /// How routed experts run.
  RoutedStrategy strategy = RoutedStrategy::sparse;
  /// GEMM inner products and tiles of the `kernels` strategy.
  MmaKind mma = MmaKind::none;
  KernelTiles tiles;
  /// Tile and vectorise contractions.
  bool vectorize = true;
  /// Also return each decoder layer's output and each router's choice.
  bool collectInternals = false;
};

/// A result of a run: `logits` (or `output.<i>` for a function of several
/// results), or an internal value.
struct NamedTensor {
  std::string name;
  llvm::SmallVector<int64_t, 4> shape;
  /// One of the two holds the data, by element type.
  std::vector<float> floats;
  std::vector<int64_t> integers;
};

/// A model function compiled to machine code with its weights bound.
/// Compiling outlines the weights, evaluates them from the checkpoints,
/// lowers the function to LLVM (moe-lower-to-llvm) and JIT-compiles it.
class Runner {
public:
  /// Compiles `module` (which it takes). Errors name what could not be
  /// compiled or evaluated.
  static llvm::Expected<std::unique_ptr<Runner>>
  create(OwningOpRef<ModuleOp> module, const RunnerOptions &options);
  ~Runner();

  /// Runs the model on `ids` (`batch` rows of `length` token ids). Checks
  /// every id against the vocabulary first.
  llvm::Expected<std::vector<NamedTensor>> run(llvm::ArrayRef<int64_t> ids,
                                               int64_t batch, int64_t length);

  int64_t vocabularySize() const { return vocabulary; }

private:
  Runner() = default;

  OwningOpRef<ModuleOp> module;
  std::unique_ptr<ExecutionEngine> engine;
  std::string entry;
  /// The compiled entry point's packed interface.
  void (*entryPoint)(void **) = nullptr;
  /// Weights bound to the trailing arguments, in order.
  std::vector<std::shared_ptr<const HostTensor>> weights;
  /// Names, ranks and integer-ness of the results.
  struct ResultInfo {
    std::string name;
    int64_t rank;
    bool integer;
  };
  std::vector<ResultInfo> results;
  int64_t vocabulary = 0;
};

} // namespace mlir::moe

#endif // MOE_RUNNER_RUNNER_H
