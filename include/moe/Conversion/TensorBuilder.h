//===- TensorBuilder.h - Building linalg-on-tensors code --------*- C++ -*-===//
//
// The vocabulary the moe lowerings are written in: matmuls with transposed
// weights, element-wise maps, reductions over the last dimension, token
// collapsing, gathers. Every helper builds linalg/tensor/arith/math ops at
// the builder's insertion point.
//
//===----------------------------------------------------------------------===//

#ifndef MOE_CONVERSION_TENSORBUILDER_H
#define MOE_CONVERSION_TENSORBUILDER_H

#include "moe/Dialect/MoeOps.h"

#include "mlir/Dialect/Linalg/IR/Linalg.h"
#include "mlir/Dialect/Utils/StructuredOpsUtils.h"
#include "mlir/IR/Builders.h"

namespace mlir::moe {

class TensorBuilder {
public:
  TensorBuilder(OpBuilder &builder, Location loc) : b(builder), loc(loc) {}

  OpBuilder &builder() { return b; }
  Location location() const { return loc; }

  // Scalars.
  Value index(int64_t value);
  Value floatConstant(Type type, double value);
  Value integerConstant(Type type, int64_t value);

  // Shapes.
  Value dim(Value tensor, int64_t dim);
  SmallVector<OpFoldResult> sizes(Value tensor);
  /// A tensor.empty of `sizes` (static or dynamic).
  Value empty(ArrayRef<OpFoldResult> sizes, Type elementType);
  /// A tensor of `sizes` filled with `value`.
  Value filled(ArrayRef<OpFoldResult> sizes, Value value);
  Value zeros(ArrayRef<OpFoldResult> sizes, Type elementType) {
    return filled(sizes, floatConstant(elementType, 0.0));
  }

  /// Collapses every dimension but the last into one: [..., F] -> [T, F].
  Value collapseTokens(Value tensor);
  /// The inverse: [T, F] -> like's leading dimensions + [F].
  Value expandTokens(Value tensor, Value like);

  /// A linalg.generic producing one result of `init`'s type.
  Value generic(ValueRange inputs, Value init, ArrayRef<AffineMap> maps,
                ArrayRef<utils::IteratorType> iterators,
                function_ref<Value(OpBuilder &, Location, ValueRange)> body);

  /// Element-wise `fn` over same-shaped `inputs` (scalars in, scalar out).
  Value map(ValueRange inputs,
            function_ref<Value(OpBuilder &, Location, ValueRange)> fn,
            Type resultElementType = Type());

  /// [T, K] x [N, K]^T -> [T, N]: a projection with a torch.nn.Linear weight.
  Value matmulTransposedB(Value input, Value weight);
  /// y[t, n] + bias[n].
  Value addBias(Value input, Value bias);
  /// y = input W^T + bias on any leading token dimensions.
  Value linear(Value input, Value weight, Value bias);

  /// Sum (or max) over the last dimension of a [T, F] tensor: [T].
  Value reduceLastDim(Value input, bool maximum);
  /// out[t, f] = fn(input[t, f], row[t]).
  Value mapWithRow(Value input, Value row,
                   function_ref<Value(OpBuilder &, Location, Value, Value)> fn);

  /// Element-wise activation.
  Value activation(Value input, Activation kind);
  static Value activationScalar(OpBuilder &b, Location loc, Value x,
                                Activation kind);
  /// act(gate) * up.
  Value glu(Value gate, Value up, Activation kind);
  /// A dense FFN on [..., H] inputs: gated when `gate` is set.
  Value ffn(Value input, Value gate, Value up, Value down, Value gateBias,
            Value upBias, Value downBias, Activation kind);

  /// Rows `rows` ([N] of index-convertible integers) of `table` ([R, F]).
  Value gatherRows(Value table, Value rows);

  /// Slice `index` (dynamic) of the leading dimension: [E, ...] -> [...].
  Value sliceLeading(Value tensor, Value index);

private:
  OpBuilder &b;
  Location loc;
};

/// The counter-based generator of moe/Weights/Random.h in IR: a standard
/// normal sample (f64) for counter `index` (i64) of stream `seed`.
Value buildNormalSample(OpBuilder &b, Location loc, uint64_t seed, Value index);

} // namespace mlir::moe

#endif // MOE_CONVERSION_TENSORBUILDER_H
