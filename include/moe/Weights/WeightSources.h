//===- WeightSources.h - Where and how the tools read weights ---*- C++ -*-===//
//
// A module names its checkpoints by path (moe.scope); a tool that reads
// the weights may read a scope from elsewhere (the module moved to another
// machine), and refuses non-finite weights unless told otherwise. These
// options are the tools' own (--moe-scope, --allow-non-finite-weights),
// registered once by each tool's main, as MLIR registers its printing
// flags; everything that reads weights takes them from here.
//
//===----------------------------------------------------------------------===//

#ifndef MOE_WEIGHTS_WEIGHTSOURCES_H
#define MOE_WEIGHTS_WEIGHTSOURCES_H

#include "moe/Dialect/MoeOps.h"

#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/IR/BuiltinOps.h"
#include "llvm/ADT/StringRef.h"
#include "llvm/Support/Error.h"

#include <map>
#include <string>

namespace llvm::cl {
class OptionCategory;
} // namespace llvm::cl

namespace mlir::moe {

/// How the stored weights of a module are found and checked.
struct WeightSourceOptions {
  /// The options set on the command line when
  /// registerWeightSourceCLOptions was called, else the defaults.
  WeightSourceOptions();

  /// Scope name to the path read instead of the moe.scope's own.
  std::map<std::string, std::string, std::less<>> scopePaths;
  /// Reads NaN and infinite weights as they are instead of refusing them.
  bool allowNonFinite = false;
};

/// Registers --moe-scope=NAME=PATH and --allow-non-finite-weights.
void registerWeightSourceCLOptions();
/// Their --help category (registers them too).
llvm::cl::OptionCategory &weightSourceCLCategory();

/// The path the weights of `scope` are read from: its --moe-scope binding,
/// else its own path.
std::string scopePath(ScopeOp scope, const WeightSourceOptions &options);

/// Refuses bindings of names that are no moe.scope of `module` (a typo
/// would otherwise leave the scope reading from its old path).
llvm::Error checkScopeBindings(ModuleOp module,
                               const WeightSourceOptions &options);

/// `error`, met reading `scope` from `path`, with a hint at --moe-scope
/// when `path` does not exist (the module came from another machine).
llvm::Error explainScopeError(ScopeOp scope, llvm::StringRef path,
                              llvm::Error error);

/// The checkpoint of a model function's base: the moe.scope its `moe.scope`
/// attribute names, and the directory it is read from.
struct BaseCheckpoint {
  ScopeOp scope;
  std::string directory;
};

/// The checkpoint of `func`'s base, in any format; an error when its
/// moe.scope is missing.
llvm::Expected<BaseCheckpoint>
baseCheckpointOf(func::FuncOp func, const WeightSourceOptions &options);

/// The Hugging Face checkpoint of `func`'s base (its config, tokenizer and
/// generation files are what exports carry over); an error when its
/// moe.scope is missing or of another format.
llvm::Expected<BaseCheckpoint>
huggingFaceBaseOf(func::FuncOp func, const WeightSourceOptions &options);

/// Refuses `destination`, a directory or file an export would replace, when
/// it holds or is a checkpoint that `module` reads (the export would delete
/// it once written).
llvm::Error refuseReplacingSource(ModuleOp module, llvm::StringRef destination,
                                  const WeightSourceOptions &options);

} // namespace mlir::moe

#endif // MOE_WEIGHTS_WEIGHTSOURCES_H
