//===- Passes.h - Code generation passes of moe -----------------*- C++ -*-===//

#ifndef MOE_CODEGEN_PASSES_H
#define MOE_CODEGEN_PASSES_H

#include "mlir/Dialect/Arith/IR/Arith.h"
#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/Dialect/GPU/IR/GPUDialect.h"
#include "mlir/Dialect/LLVMIR/LLVMDialect.h"
#include "mlir/Dialect/Linalg/IR/Linalg.h"
#include "mlir/Dialect/MemRef/IR/MemRef.h"
#include "mlir/Dialect/SCF/IR/SCF.h"
#include "mlir/Dialect/Tensor/IR/Tensor.h"
#include "mlir/Dialect/Vector/IR/VectorOps.h"
#include "mlir/IR/BuiltinOps.h"
#include "mlir/Pass/Pass.h"

namespace mlir::moe {
#define GEN_PASS_DECL
#include "moe/CodegenPasses.h.inc"

#define GEN_PASS_REGISTRATION
#include "moe/CodegenPasses.h.inc"
} // namespace mlir::moe

#endif // MOE_CODEGEN_PASSES_H
