//===- ConversionPasses.td - Conversions of the moe dialect -*- tablegen -*-===//

#ifndef MOE_CONVERSIONPASSES_TD
#define MOE_CONVERSIONPASSES_TD

include "mlir/Pass/PassBase.td"

def LowerToLinalg : Pass<"moe-lower-to-linalg", "::mlir::ModuleOp"> {
  let summary = "Lowers moe compute ops to linalg, tensor, arith, math and scf";
  let description = [{
    Every moe operation that computes on activations becomes tensor code:
    projections and attention are `linalg.generic` contractions, norms and
    activations element-wise and reduction generics, rotary embeddings
    generics with positions from `linalg.index`, top-k gating an `scf.for`
    over tokens, and routed experts one of two strategies:

    - `dense`: every expert runs on every token; outputs are combined with a
      gate matrix that is zero for experts a token did not choose. Work is
      E FFNs per token.
    - `sparse`: per expert, the tokens that chose it are gathered, run through
      the expert with matmuls of their count, scaled by their gate weight and
      scatter-added into the output. Work is k FFNs per token.

    Both compute the same function. Weight expressions are left alone: run
    `moe-outline-weights` first to make them function arguments. Ops or
    attributes that cannot be lowered are reported, naming the feature.
  }];
  let dependentDialects = ["::mlir::linalg::LinalgDialect",
                           "::mlir::tensor::TensorDialect",
                           "::mlir::arith::ArithDialect",
                           "::mlir::math::MathDialect",
                           "::mlir::scf::SCFDialect"];
  let options = [
    Option<"strategy", "strategy", "std::string", /*default=*/"\"sparse\"",
           "Routed experts: 'sparse' (group tokens by expert) or 'dense' "
           "(every expert, masked by the gates)">
  ];
}

#endif // MOE_CONVERSIONPASSES_TD
