//===- WeightSources.cpp - Where and how the tools read weights -----------===//

#include "moe/Weights/WeightSources.h"

#include "moe/Dialect/MoeOps.h"
#include "moe/Support/Errors.h"

#include "llvm/Support/CommandLine.h"
#include "llvm/Support/FileSystem.h"
#include "llvm/Support/ManagedStatic.h"

using namespace mlir;
using namespace mlir::moe;
namespace cl = llvm::cl;

namespace {
/// One --moe-scope value.
struct ScopeBinding {
  std::string name, path;
};

/// Parses NAME=PATH (NAME may be spelled @NAME), refusing a value without
/// a name or a path.
class ScopeBindingParser : public cl::basic_parser<ScopeBinding> {
public:
  using cl::basic_parser<ScopeBinding>::basic_parser;

  bool parse(cl::Option &option, StringRef, StringRef value,
             ScopeBinding &binding) {
    auto [name, path] = value.split('=');
    name.consume_front("@");
    if (name.empty() || path.empty())
      return option.error("'" + value + "' is not NAME=PATH");
    binding = {name.str(), path.str()};
    return false;
  }
  StringRef getValueName() const override { return "name=path"; }
};

struct WeightSourceCLOptions {
  cl::OptionCategory category{"moe weight reading options"};
  cl::list<ScopeBinding, bool, ScopeBindingParser> scopes{
      "moe-scope",
      cl::desc("Read the checkpoint of scope NAME from PATH instead of the "
               "path the module gives (repeatable)"),
      cl::cat(category)};
  cl::opt<bool> allowNonFinite{
      "allow-non-finite-weights",
      cl::desc("Read NaN and infinite weights as they are (by default a "
               "weight that holds one is an error naming the tensor)"),
      cl::cat(category)};
};
} // namespace

static llvm::ManagedStatic<WeightSourceCLOptions> clOptions;

void mlir::moe::registerWeightSourceCLOptions() { *clOptions; }

cl::OptionCategory &mlir::moe::weightSourceCLCategory() {
  return clOptions->category;
}

WeightSourceOptions::WeightSourceOptions() {
  if (!clOptions.isConstructed())
    return;
  // A scope bound twice reads from the last binding, as with any repeated
  // command-line option.
  for (const ScopeBinding &binding : clOptions->scopes)
    scopePaths[binding.name] = binding.path;
  allowNonFinite = clOptions->allowNonFinite;
}

std::string mlir::moe::scopePath(ScopeOp scope,
                                 const WeightSourceOptions &options) {
  auto bound = options.scopePaths.find(scope.getSymName());
  return bound != options.scopePaths.end() ? bound->second
                                           : scope.getPath().str();
}

llvm::Error mlir::moe::checkScopeBindings(ModuleOp module,
                                          const WeightSourceOptions &options) {
  for (const auto &binding : options.scopePaths) {
    if (module.lookupSymbol<ScopeOp>(binding.first))
      continue;
    std::string scopes;
    for (ScopeOp scope : module.getOps<ScopeOp>())
      scopes += (scopes.empty() ? "" : ", ") + scope.getSymName().str();
    return makeError("--moe-scope binds '" + binding.first +
                     "', which is no moe.scope of the module (its scopes: " +
                     (scopes.empty() ? "none" : scopes) + ")");
  }
  return llvm::Error::success();
}

llvm::Error mlir::moe::explainScopeError(ScopeOp scope, StringRef path,
                                         llvm::Error error) {
  if (!error || llvm::sys::fs::exists(path))
    return error;
  return makeError(
      llvm::toString(std::move(error)) + " (--moe-scope=" + scope.getSymName() +
      "=PATH reads scope '" + scope.getSymName() + "' from elsewhere)");
}

llvm::Error
mlir::moe::refuseReplacingSource(ModuleOp module, StringRef destination,
                                 const WeightSourceOptions &sources) {
  SmallString<256> target;
  if (llvm::sys::fs::real_path(destination, target))
    return llvm::Error::success();
  for (ScopeOp scope : module.getOps<ScopeOp>()) {
    SmallString<256> source;
    if (llvm::sys::fs::real_path(scopePath(scope, sources), source))
      continue;
    if (source == target || StringRef(source).starts_with((target + "/").str()))
      return makeError(destination + ": holds the checkpoint of scope '" +
                       scope.getSymName() +
                       "', which the export reads; choose another destination");
  }
  return llvm::Error::success();
}

llvm::Expected<BaseCheckpoint>
mlir::moe::baseCheckpointOf(func::FuncOp func,
                            const WeightSourceOptions &options) {
  auto scopeRef =
      func->getAttrOfType<FlatSymbolRefAttr>(MoeDialect::getScopeAttrName());
  auto module = func->getParentOfType<ModuleOp>();
  auto scope = scopeRef && module
                   ? module.lookupSymbol<ScopeOp>(scopeRef.getAttr())
                   : ScopeOp();
  if (!scope)
    return makeError("@" + func.getSymName() +
                     " has no moe.scope naming the checkpoint of its base "
                     "model");
  return BaseCheckpoint{scope, scopePath(scope, options)};
}

llvm::Expected<BaseCheckpoint>
mlir::moe::huggingFaceBaseOf(func::FuncOp func,
                             const WeightSourceOptions &options) {
  llvm::Expected<BaseCheckpoint> base = baseCheckpointOf(func, options);
  if (!base || base->scope.getFormat() != ScopeFormat::huggingface) {
    llvm::consumeError(base.takeError());
    return makeError("the moe.scope of @" + func.getSymName() +
                     " must name the Hugging Face checkpoint of its base "
                     "model");
  }
  return base;
}
