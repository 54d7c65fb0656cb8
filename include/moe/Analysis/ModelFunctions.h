//===- ModelFunctions.h - The model functions of a module -------*- C++ -*-===//
//
// A module holds functions that describe models (imported, mixed); tools
// pick the one they run or export, and mixing passes combine several that
// must have one structure.
//
//===----------------------------------------------------------------------===//

#ifndef MOE_ANALYSIS_MODELFUNCTIONS_H
#define MOE_ANALYSIS_MODELFUNCTIONS_H

#include "moe/Dialect/MoeOps.h"

#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/IR/BuiltinOps.h"
#include "llvm/Support/Error.h"

namespace mlir::moe {

/// The functions of `module` that hold imported models (those with a
/// `moe.scope` attribute), in module order.
SmallVector<func::FuncOp> getModelFunctions(ModuleOp module);

/// The function a tool runs or exports: the function `name` when it is
/// given, otherwise the only model function of the module, otherwise the
/// only function with a body. The error names `option` (the option that
/// chooses: "--export-func", "--func") and lists the candidates.
llvm::Expected<func::FuncOp> pickModelFunction(ModuleOp module, StringRef name,
                                               StringRef option);

/// Looks up function `name`; reports an error on `module` naming `role`
/// ("base", "expert", ...) when there is none.
FailureOr<func::FuncOp> lookupModelFunction(ModuleOp module, StringRef name,
                                            StringRef role);

/// The compute operations of `func` in order: everything but weights (see
/// isWeight) and the terminator.
SmallVector<Operation *> getComputeOps(func::FuncOp func);

/// Checks that `other` computes with the structure of `base`: the same
/// compute operations with the same attributes and result types, wired the
/// same way, and weights of the same types in the same operand positions.
/// Reports the first difference as an error on `other` and fails.
LogicalResult verifySameStructure(func::FuncOp base, func::FuncOp other);

} // namespace mlir::moe

#endif // MOE_ANALYSIS_MODELFUNCTIONS_H
