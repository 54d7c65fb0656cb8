//===- MoeInterfaces.td - Interfaces of the moe dialect ----*- tablegen -*-===//

#ifndef MOE_INTERFACES_TD
#define MOE_INTERFACES_TD

include "mlir/IR/OpBase.td"

def Moe_WeightExpressionOpInterface
    : OpInterface<"WeightExpressionOpInterface"> {
  let cppNamespace = "::mlir::moe";
  let description = [{
    An operation that computes a weight from weights only: tensors of the
    checkpoints that `moe.scope`s name, constants, and other weight
    expressions. Tools evaluate weight expressions from the checkpoints
    instead of lowering them: the weight evaluator
    (`moe/Weights/WeightEvaluator.h`) computes whole values and streams
    ranges of elements of them to the exports; it is the only code that
    interprets weight operations, through this interface.

    An implementation is one of two kinds:

    - a *view* (`isWeightView` is true) rearranges elements without
      computing them: `moe.param`, `moe.stack`, and the upstream
      `tensor.extract_slice`, `tensor.collapse_shape` and
      `tensor.expand_shape` of a weight. `mapElements` maps a range of its
      result's elements (row-major) onto runs of consecutive elements of its
      operands or, for `moe.param`, of the stored tensor. Reading a range of
      a view reads only those runs, straight from the checkpoint files.
    - a *computation* (`moe.average`, the random initialisers,
      `moe.normalize_rows`, `moe.embedding_prototypes`, and the upstream
      `arith.constant` of dense floats) computes its whole result from the
      values of its operands: `computeWeight`.

    Adding a weight operation means declaring it in ODS with this interface
    and implementing these methods (`lib/Dialect/MoeWeightExpressions.cpp`);
    no tool changes.
  }];
  let methods = [
    InterfaceMethod<[{
        Whether this operation computes a weight. Always true for the moe
        dialect's weight expressions; the upstream operations that the
        interface is attached to compute one only when their operand is a
        weight (or, for `arith.constant`, when it holds dense floats).
      }], "bool", "computesWeight", (ins), [{}], [{ return true; }]>,
    InterfaceMethod<[{
        Whether this operation is a view (implements `mapElements`) rather
        than a computation (implements `computeWeight`).
      }], "bool", "isWeightView", (ins), [{}], [{ return false; }]>,
    InterfaceMethod<[{
        Views: calls `visit`, in order, with the runs of consecutive
        elements that elements `[offset, offset + count)` of the result are
        made of. Their counts add up to `count`.
      }], "::llvm::Error", "mapElements",
      (ins "uint64_t":$offset, "uint64_t":$count,
           "::llvm::function_ref<::llvm::Error(const ::mlir::moe::WeightPiece &)>":$visit),
      [{}], [{
        return ::mlir::moe::notAWeightView($_op);
      }]>,
    InterfaceMethod<[{
        Computations: computes the result (`result` comes with its shape and
        zero-filled data) from the values of the operands, in operand order.
      }], "::llvm::Error", "computeWeight",
      (ins "::llvm::ArrayRef<const ::mlir::moe::HostTensor *>":$operands,
           "::mlir::moe::HostTensor &":$result),
      [{}], [{
        return ::mlir::moe::notAWeightComputation($_op);
      }]>
  ];
}

#endif // MOE_INTERFACES_TD
