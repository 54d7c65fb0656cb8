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
    Option<"strategy", "strategy", "::mlir::moe::RoutedStrategy",
           /*default=*/"::mlir::moe::RoutedStrategy::sparse",
           "How routed experts are lowered",
           "::mlir::moe::linalgStrategyValues()">
  ];
}

def LowerMoeKernels : Pass<"moe-lower-moe-kernels", "::mlir::ModuleOp"> {
  let summary = "Lowers fused routed experts to explicit routing and "
                "grouped-GEMM kernels";
  let description = [{
    Replaces every `moe.fused_moe` with a router (run `moe-fuse-gating`
    first) by five kernels over flat buffers, the approach of vLLM's fused
    MoE:

    1. `gating` (one block per token): router logits by block reductions,
       (noise,) softmax or sigmoid, top-k, renormalisation; writes the chosen
       experts and gate weights of every (token, slot) pair.
    2. `align` (one block): per-expert counts, offsets padded to `block-m`
       rows, the expert of every row block, and the pairs sorted by expert
       (padding rows hold the sentinel `T * k`).
    3. `gemm_up` (row blocks x intermediate blocks): one expert per row
       block; gathers its tokens' rows, multiplies by that expert's gate and
       up weights through shared-memory tiles of `block-k` into per-thread
       accumulators (registers: a private array with constant indices),
       applies the activation (and the gating product) in the epilogue.
    4. `gemm_down` (row blocks x hidden blocks): the down projection, scaled
       by each pair's gate weight in the epilogue.
    5. `combine` (one block per token): sums the token's k rows.

    With `target=gpu` the kernels are `gpu.func`s of a `gpu.module` launched
    with `gpu.launch_func` (workgroup memory, `gpu.barrier`); with
    `target=cpu` the same kernel bodies become functions whose blocks and
    threads are loops, every barrier ending a loop over threads, so that the
    CPU runs exactly the GPU algorithm and `moe-run --strategy=kernels`
    checks it against the reference.

    Kernel signatures (every buffer a flat `memref<?xT>`, row-major):
    `gating(x, router, router_bias, ids, gates, T)`,
    `align(ids, counts, cursor, offsets, sorted, block_expert, T, rows)`,
    `gemm_up(x, gate, up, sorted, block_expert, offsets, inter, T, rows)`,
    `gemm_down(inter, down, sorted, block_expert, offsets, gates, pair_out,
    T, rows)`, `combine(pair_out, out, T)`, where `rows = T k + E (block-m -
    1)` bounds the padded rows (`router_bias` has E zeros when the op has
    none, `gate` is ignored by plain FFNs). Shared experts are not
    supported by these kernels and are reported.

    With `mma=tf32` the GEMM kernels round both operands to TF32 (10-bit
    mantissa, to nearest, ties away from zero) as they stage them in shared
    memory, and every warp computes 16x8 tiles of the block's product with
    `nvgpu.mma.sync` (shape 16x8x4, f32 accumulators): tensor cores on sm_80
    and later. It needs `block-m` a multiple of 16, `block-n` of 8 and
    `block-k` of 4. On the CPU each thread computes, with the same operand
    rounding, the accumulator elements its lane holds in the PTX fragment
    layout, so the CPU checks the tiling, the rounding and the epilogues;
    the fragment layout itself is checked on a GPU (bench/gpu_moe_layer.py).
  }];
  let dependentDialects = ["::mlir::gpu::GPUDialect",
                           "::mlir::memref::MemRefDialect",
                           "::mlir::bufferization::BufferizationDialect",
                           "::mlir::nvgpu::NVGPUDialect",
                           "::mlir::vector::VectorDialect",
                           "::mlir::scf::SCFDialect",
                           "::mlir::arith::ArithDialect",
                           "::mlir::math::MathDialect",
                           "::mlir::func::FuncDialect",
                           "::mlir::tensor::TensorDialect"];
  let options = [
    Option<"target", "target", "::mlir::moe::KernelTarget",
           /*default=*/"::mlir::moe::KernelTarget::gpu",
           "What the kernels are emitted as",
           "::mlir::moe::kernelTargetValues()">,
    Option<"blockM", "block-m", "int64_t", /*default=*/"16",
           "Rows (token slots) per GEMM block; expert segments are padded "
           "to it">,
    Option<"blockN", "block-n", "int64_t", /*default=*/"64",
           "Output columns per GEMM block">,
    Option<"blockK", "block-k", "int64_t", /*default=*/"16",
           "Reduction step staged in shared memory">,
    Option<"threads", "threads", "int64_t", /*default=*/"256",
           "Threads per block (a power of two from 32 to 1024)">,
    Option<"mma", "mma", "::mlir::moe::MmaKind",
           /*default=*/"::mlir::moe::MmaKind::none",
           "GEMM inner products",
           "::mlir::moe::mmaKindValues()">
  ];
}

#endif // MOE_CONVERSIONPASSES_TD
