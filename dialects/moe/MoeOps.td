//===- MoeOps.td - Operations of the moe dialect -----------*- tablegen -*-===//

#ifndef MOE_OPS_TD
#define MOE_OPS_TD

include "MoeDialect.td"
include "MoeAttrs.td"
include "MoeInterfaces.td"
include "mlir/IR/OpBase.td"
include "mlir/IR/SymbolInterfaces.td"
include "mlir/Interfaces/InferTypeOpInterface.td"
include "mlir/Interfaces/SideEffectInterfaces.td"

//===----------------------------------------------------------------------===//
// Type constraints and traits
//===----------------------------------------------------------------------===//

def Moe_FloatTensor : RankedTensorOf<[AnyFloat]>;
def Moe_StaticFloatTensor : StaticShapeTensorOf<[AnyFloat]>;
def Moe_TokenIdTensor : RankedTensorOf<[I32, I64]>;
def Moe_ExpertIndexTensor : RankedTensorOf<[I64]>;

// Weight expressions (see MoeInterfaces.td): views map element ranges onto
// their operands or the stored tensor, computations compute whole values.
defvar Moe_WeightView = DeclareOpInterfaceMethods<
    Moe_WeightExpressionOpInterface, ["isWeightView", "mapElements"]>;
defvar Moe_WeightComputation = DeclareOpInterfaceMethods<
    Moe_WeightExpressionOpInterface, ["computeWeight"]>;

//===----------------------------------------------------------------------===//
// Checkpoint scopes and weight expressions
//===----------------------------------------------------------------------===//

def Moe_ScopeOp : Moe_Op<"scope", [Symbol]> {
  let summary = "declares a checkpoint that parameters are read from";
  let description = [{
    Names a checkpoint on disk. `path` is a directory for `huggingface` and
    `peft` scopes and a file for `safetensors` scopes. The import and the
    passes write absolute paths; relative ones are resolved against the
    working directory of the tool that reads them. A tool reads a scope
    from elsewhere with `--moe-scope=NAME=PATH` (a module moved to another
    machine) and refuses stored weights that hold NaN or an infinity unless
    `--allow-non-finite-weights` is given.

    ```mlir
    moe.scope @base path "models/base" format huggingface
    moe.scope @math_lora path "adapters/math" format peft {lora_alpha = 16.0 : f64}
    ```
  }];
  let arguments = (ins SymbolNameAttr:$sym_name, StrAttr:$path,
                       Moe_ScopeFormatKind:$format);
  let assemblyFormat = "$sym_name `path` $path `format` $format attr-dict";
  let hasVerifier = 1;
}

def Moe_ParamOp : Moe_Op<"param", [Pure, Moe_WeightView,
    DeclareOpInterfaceMethods<SymbolUserOpInterface>]> {
  let summary = "a tensor read from a checkpoint scope by key";
  let description = [{
    Refers to the tensor `key` of the checkpoint declared by `scope`. The
    result type is the type the program computes with: the stored data type
    is converted to its element type when the tensor is read (for example
    bf16 storage read as f32). With an `index`, the result is the slice
    `index` along the leading dimension of the stored tensor.

    ```mlir
    %w = moe.param @base::"model.layers.0.mlp.up_proj.weight" : tensor<64x32xf32>
    %p = moe.param @protos::"prototypes"[3] : tensor<4x32xf32>
    ```
  }];
  let arguments = (ins FlatSymbolRefAttr:$scope, StrAttr:$key,
                       OptionalAttr<I64Attr>:$index);
  let results = (outs Moe_StaticFloatTensor:$result);
  let assemblyFormat =
      "custom<ParamRef>($scope, $key, $index) attr-dict `:` type($result)";
  let hasVerifier = 1;
}

def Moe_StackOp : Moe_Op<"stack", [Pure, Moe_WeightView]> {
  let summary = "stacks same-typed tensors along a new leading dimension";
  let description = [{
    `result[i] = inputs[i]`. Used to build the stacked expert weights of
    routed operations from the weights of each source model.

    ```mlir
    %s = moe.stack %a, %b : tensor<64x32xf32>, tensor<64x32xf32> -> tensor<2x64x32xf32>
    ```
  }];
  let arguments = (ins Variadic<Moe_FloatTensor>:$inputs);
  let results = (outs Moe_FloatTensor:$result);
  let assemblyFormat =
      "$inputs attr-dict `:` type($inputs) `->` type($result)";
  let hasVerifier = 1;
}

def Moe_AverageOp : Moe_Op<"average", [Pure, Moe_WeightComputation]> {
  let summary = "element-wise mean of same-typed tensors";
  let description = [{
    `result = (inputs[0] + ... + inputs[n-1]) / n`, accumulated in double
    precision. Used for stem weights averaged over the source models.
  }];
  let arguments = (ins Variadic<Moe_FloatTensor>:$inputs);
  let results = (outs Moe_FloatTensor:$result);
  let assemblyFormat =
      "$inputs attr-dict `:` type($inputs) `->` type($result)";
  let hasVerifier = 1;
  let hasFolder = 1;
}

def Moe_RandomNormalOp : Moe_Op<"random_normal",
    [Pure, Moe_WeightComputation]> {
  let summary = "a tensor of deterministic normal random numbers";
  let description = [{
    Element `i` (row-major) is `mean + std * z_i` where `z_i` is a standard
    normal sample produced by the Box-Muller transform of two uniforms drawn
    from the counter-based generator of `moe::RandomStream` (SplitMix64 of
    the seed and the element index). The same seed always gives the same
    tensor, on every tool and platform.

    ```mlir
    %r = moe.random_normal seed 7 mean 0.0 std 0.02 : tensor<4x32xf32>
    ```
  }];
  let arguments = (ins I64Attr:$seed, F64Attr:$mean, F64Attr:$std);
  let results = (outs Moe_StaticFloatTensor:$result);
  let assemblyFormat =
      "`seed` $seed `mean` $mean `std` $std attr-dict `:` type($result)";
  let hasVerifier = 1;
}

def Moe_RandomUniformOp : Moe_Op<"random_uniform",
    [Pure, Moe_WeightComputation]> {
  let summary = "a tensor of deterministic uniform random numbers";
  let description = [{
    Element `i` is `low + (high - low) * u_i` with `u_i` in [0, 1) from the
    same counter-based generator as `moe.random_normal`.

    ```mlir
    %r = moe.random_uniform seed 3 low -0.17 high 0.17 : tensor<4x32xf32>
    ```
  }];
  let arguments = (ins I64Attr:$seed, F64Attr:$low, F64Attr:$high);
  let results = (outs Moe_StaticFloatTensor:$result);
  let assemblyFormat =
      "`seed` $seed `low` $low `high` $high attr-dict `:` type($result)";
  let hasVerifier = 1;
}

def Moe_NormalizeRowsOp : Moe_Op<"normalize_rows",
    [Pure, Moe_WeightComputation, SameOperandsAndResultType]> {
  let summary = "scales every row (last dimension) to unit L2 norm";
  let description = [{
    `result[..., :] = input[..., :] / ||input[..., :]||_2`; all-zero rows
    stay zero.
  }];
  let arguments = (ins Moe_FloatTensor:$input);
  let results = (outs Moe_FloatTensor:$result);
  let assemblyFormat = "$input attr-dict `:` type($result)";
}

def Moe_EmbeddingPrototypesOp : Moe_Op<"embedding_prototypes",
    [Pure, Moe_WeightComputation]> {
  let summary = "router rows from the token embeddings of chosen tokens";
  let description = [{
    For each expert `e`, row `e` of the result is the L2-normalised mean of
    the L2-normalised embedding rows `table[t]` for `t` in `token_ids[e]`.
    This is the `cheap-embed` router of mixing.

    ```mlir
    %r = moe.embedding_prototypes %table token_ids [[1, 2], [7]]
        : tensor<128x32xf32> -> tensor<2x32xf32>
    ```
  }];
  let arguments = (ins Moe_FloatTensor:$table,
                       TypedArrayAttrBase<DenseI64ArrayAttr,
                           "one token-id list per expert">:$token_ids);
  let results = (outs Moe_FloatTensor:$result);
  let assemblyFormat = "$table `token_ids` $token_ids attr-dict `:` "
                       "type($table) `->` type($result)";
  let hasVerifier = 1;
}

//===----------------------------------------------------------------------===//
// Decoder building blocks
//===----------------------------------------------------------------------===//

def Moe_EmbeddingOp : Moe_Op<"embedding", [Pure]> {
  let summary = "token embedding lookup";
  let description = [{
    `result[b, s, :] = table[ids[b, s], :]` for ids of any rank.

    ```mlir
    %h = moe.embedding %table[%ids] : tensor<128x32xf32>, tensor<?x?xi64> -> tensor<?x?x32xf32>
    ```
  }];
  let arguments = (ins Moe_FloatTensor:$table, Moe_TokenIdTensor:$ids);
  let results = (outs Moe_FloatTensor:$result);
  let assemblyFormat = "$table `[` $ids `]` attr-dict `:` type($table) `,` "
                       "type($ids) `->` type($result)";
  let hasVerifier = 1;
}

def Moe_RmsNormOp : Moe_Op<"rms_norm", [Pure]> {
  let summary = "RMS normalisation over the last dimension";
  let description = [{
    `result = input / sqrt(mean(input^2) + epsilon) * weight`, statistics
    over the last dimension.
  }];
  let arguments = (ins Moe_FloatTensor:$input, Moe_FloatTensor:$weight,
                       F64Attr:$epsilon);
  let results = (outs Moe_FloatTensor:$result);
  let assemblyFormat = "$input `,` $weight `epsilon` $epsilon attr-dict `:` "
                       "type($input) `,` type($weight) `->` type($result)";
  let hasVerifier = 1;
}

def Moe_LayerNormOp : Moe_Op<"layer_norm", [Pure]> {
  let summary = "layer normalisation over the last dimension";
  let description = [{
    `result = (input - mean) / sqrt(var + epsilon) * weight + bias`, with the
    biased variance over the last dimension; no bias means zero.
  }];
  let arguments = (ins Moe_FloatTensor:$input, Moe_FloatTensor:$weight,
                       Optional<Moe_FloatTensor>:$bias, F64Attr:$epsilon);
  let results = (outs Moe_FloatTensor:$result);
  let assemblyFormat = "$input `,` $weight (`bias` $bias^)? `epsilon` $epsilon "
                       "attr-dict `:` functional-type(operands, results)";
  let hasVerifier = 1;
}

def Moe_LinearOp : Moe_Op<"linear", [Pure]> {
  let summary = "a dense projection y = x W^T + b";
  let description = [{
    `weight` is `[out, in]` as in `torch.nn.Linear`; the optional `bias` is
    `[out]`. The language-model head is a `moe.linear` too (on the embedding
    table when embeddings are tied).
  }];
  let arguments = (ins Moe_FloatTensor:$input, Moe_FloatTensor:$weight,
                       Optional<Moe_FloatTensor>:$bias);
  let results = (outs Moe_FloatTensor:$result);
  let assemblyFormat = "$input `,` $weight (`bias` $bias^)? attr-dict `:` "
                       "functional-type(operands, results)";
  let hasVerifier = 1;
}

def Moe_LoraLinearOp : Moe_Op<"lora_linear", [Pure]> {
  let summary = "a linear layer with one LoRA adapter";
  let description = [{
    `result = x W^T + b + scale * (x A^T) B^T` with `lora_a` `[r, in]` and
    `lora_b` `[out, r]` (PEFT's layout). `scale` is `lora_alpha / r`, or
    `lora_alpha / sqrt(r)` for rsLoRA.
  }];
  let arguments = (ins Moe_FloatTensor:$input, Moe_FloatTensor:$weight,
                       Optional<Moe_FloatTensor>:$bias,
                       Moe_FloatTensor:$lora_a, Moe_FloatTensor:$lora_b,
                       F64Attr:$scale);
  let results = (outs Moe_FloatTensor:$result);
  let assemblyFormat = "$input `,` $weight (`bias` $bias^)? `lora` `(` $lora_a "
                       "`,` $lora_b `)` `scale` $scale attr-dict `:` "
                       "functional-type(operands, results)";
  let hasVerifier = 1;
  let hasCanonicalizer = 1;
}

def Moe_AttentionOp : Moe_Op<"attention", [Pure]> {
  let summary = "causal multi-head / grouped-query self-attention";
  let description = [{
    Takes the projected queries `[B, S, num_heads * head_dim]`, keys and
    values `[B, S, num_kv_heads * head_dim]`, applies the rotary embedding
    (half-split rotation as in Llama, base `rope_theta`, optional
    `rope_scaling`; `rope_theta = 0` means no rotary embedding) to queries and
    keys at positions `0..S-1`, and computes
    `softmax(q k^T * scale + causal mask) v` per head, query head `h` reading
    key/value head `h / (num_heads / num_kv_heads)`. `scale` defaults to
    `1 / sqrt(head_dim)`. With `sliding_window = w`, query `i` sees keys
    `j` with `i - w < j <= i`. The output projection is a separate
    `moe.linear`.
  }];
  let arguments = (ins Moe_FloatTensor:$query, Moe_FloatTensor:$key,
                       Moe_FloatTensor:$value,
                       ConfinedAttr<I64Attr, [IntPositive]>:$num_heads,
                       ConfinedAttr<I64Attr, [IntPositive]>:$num_kv_heads,
                       ConfinedAttr<I64Attr, [IntPositive]>:$head_dim,
                       F64Attr:$rope_theta,
                       OptionalAttr<Moe_RopeScalingAttr>:$rope_scaling,
                       OptionalAttr<F64Attr>:$scale,
                       OptionalAttr<I64Attr>:$sliding_window);
  let results = (outs Moe_FloatTensor:$result);
  let assemblyFormat = "$query `,` $key `,` $value `heads` $num_heads `kv_heads` "
                       "$num_kv_heads `head_dim` $head_dim `rope_theta` "
                       "$rope_theta attr-dict `:` "
                       "functional-type(operands, results)";
  let hasVerifier = 1;
  let extraClassDeclaration = [{
    /// The inverse frequencies `theta ^ (-2 i / head_dim)` of the rotary
    /// embedding with its static scaling applied (one per pair of
    /// dimensions), and the scale of cos and sin: what every lowering and
    /// export of the rotary embedding starts from.
    std::pair<::llvm::SmallVector<double>, double> getRopeInverseFrequencies();
  }];
}

def Moe_FfnOp : Moe_Op<"ffn", [Pure, AttrSizedOperandSegments]> {
  let summary = "dense feed-forward block (gated or plain)";
  let description = [{
    Gated (`gate` present, SwiGLU with `silu`, GeGLU with `gelu`):
    `down(act(gate(x)) * up(x))`. Plain two-layer MLP (no `gate`):
    `down(act(up(x)))`. `gate` and `up` are `[I, H]`, `down` is `[H, I]`;
    biases are optional per projection.

    ```mlir
    %y = moe.ffn %x gate %g up %u down %d activation silu
        : (tensor<?x?x32xf32>, tensor<64x32xf32>, tensor<64x32xf32>, tensor<32x64xf32>) -> tensor<?x?x32xf32>
    ```
  }];
  let arguments = (ins Moe_FloatTensor:$input,
                       Optional<Moe_FloatTensor>:$gate,
                       Moe_FloatTensor:$up, Moe_FloatTensor:$down,
                       Optional<Moe_FloatTensor>:$gate_bias,
                       Optional<Moe_FloatTensor>:$up_bias,
                       Optional<Moe_FloatTensor>:$down_bias,
                       Moe_ActivationKind:$activation);
  let results = (outs Moe_FloatTensor:$result);
  let assemblyFormat =
      "$input (`gate` $gate^)? `up` $up `down` $down "
      "(`gate_bias` $gate_bias^)? (`up_bias` $up_bias^)? "
      "(`down_bias` $down_bias^)? `activation` $activation attr-dict `:` "
      "functional-type(operands, results)";
  let hasVerifier = 1;
}

def Moe_ActivationOp : Moe_Op<"activation",
    [Pure, SameOperandsAndResultType]> {
  let summary = "element-wise activation";
  let arguments = (ins Moe_FloatTensor:$input, Moe_ActivationKind:$kind);
  let results = (outs Moe_FloatTensor:$result);
  let assemblyFormat = "$kind $input attr-dict `:` type($result)";
}

def Moe_GluOp : Moe_Op<"glu", [Pure, SameOperandsAndResultType]> {
  let summary = "gated linear unit act(gate) * up";
  let description = [{
    The middle of a gated FFN once its projections are separate operations
    (for example when LoRA adapters target them).
  }];
  let arguments = (ins Moe_FloatTensor:$gate, Moe_FloatTensor:$up,
                       Moe_ActivationKind:$activation);
  let results = (outs Moe_FloatTensor:$result);
  let assemblyFormat =
      "$activation `(` $gate `)` `*` $up attr-dict `:` type($result)";
}

def Moe_ScaleOp : Moe_Op<"scale", [Pure, SameOperandsAndResultType]> {
  let summary = "multiplies a tensor by a constant";
  let description = [{
    `result = input * factor`; the embedding, residual and logit multipliers
    of Granite-style models.
  }];
  let arguments = (ins Moe_FloatTensor:$input, F64Attr:$factor);
  let results = (outs Moe_FloatTensor:$result);
  let assemblyFormat = "$input `by` $factor attr-dict `:` type($result)";
  let hasFolder = 1;
}

//===----------------------------------------------------------------------===//
// Routing
//===----------------------------------------------------------------------===//

def Moe_RouterOp : Moe_Op<"router", [Pure]> {
  let summary = "router logits over E experts";
  let description = [{
    `logits = x W^T (+ b)` with `weight` `[E, H]`: one row per expert.
  }];
  let arguments = (ins Moe_FloatTensor:$input, Moe_FloatTensor:$weight,
                       Optional<Moe_FloatTensor>:$bias);
  let results = (outs Moe_FloatTensor:$logits);
  let assemblyFormat = "$input `,` $weight (`bias` $bias^)? attr-dict `:` "
                       "functional-type(operands, results)";
  let hasVerifier = 1;
}

def Moe_TopKGatingOp : Moe_Op<"topk_gating", [Pure]> {
  let summary = "top-k selection of experts and their gate weights";
  let description = [{
    From router logits `[..., E]` computes, per token, the indices of the `k`
    chosen experts and their gate weights (ties go to the lower index):

    - `noise_std > 0` first adds `noise_std * z` to every logit, `z` from the
      generator of `moe.random_normal` seeded with `noise_seed` and indexed by
      the row-major position of the logit (the noisy top-k gating of Shazeer
      et al., used for router training);
    - `scoring = softmax`, `score_before_topk = true` (Mixtral, Qwen2-MoE):
      softmax over all E, then top-k; `score_before_topk = false`: top-k of
      the logits, then softmax over the k;
    - `scoring = sigmoid`: sigmoid of each logit, then top-k;
    - `renormalize`: the k weights are divided by their sum.

    ```mlir
    %w, %i = moe.topk_gating %logits k 2 scoring softmax {renormalize}
        : tensor<?x?x4xf32> -> tensor<?x?x2xf32>, tensor<?x?x2xi64>
    ```
  }];
  let arguments = (ins Moe_FloatTensor:$logits,
                       ConfinedAttr<I64Attr, [IntPositive]>:$k,
                       Moe_ScoringKind:$scoring,
                       DefaultValuedAttr<BoolAttr, "true">:$score_before_topk,
                       UnitAttr:$renormalize,
                       DefaultValuedAttr<F64Attr, "0.0">:$noise_std,
                       DefaultValuedAttr<I64Attr, "0">:$noise_seed);
  let results = (outs Moe_FloatTensor:$weights,
                      Moe_ExpertIndexTensor:$indices);
  let assemblyFormat = "$logits `k` $k `scoring` $scoring attr-dict `:` "
                       "type($logits) `->` type($weights) `,` type($indices)";
  let hasVerifier = 1;
}

def Moe_UniformGatingOp : Moe_Op<"uniform_gating", [Pure]> {
  let summary = "gate-less routing: every expert with weight 1/E";
  let description = [{
    For the token dimensions of `input` (all but the last), selects all
    `num_experts` experts in order with equal weights `1 / num_experts`.
    This is the gate-less mixture.
  }];
  let arguments = (ins Moe_FloatTensor:$input,
                       ConfinedAttr<I64Attr, [IntPositive]>:$num_experts);
  let results = (outs Moe_FloatTensor:$weights,
                      Moe_ExpertIndexTensor:$indices);
  let assemblyFormat = "$input `experts` $num_experts attr-dict `:` "
                       "type($input) `->` type($weights) `,` type($indices)";
  let hasVerifier = 1;
}

def Moe_ExpertsOp : Moe_Op<"experts", [Pure, AttrSizedOperandSegments]> {
  let summary = "routed expert FFNs over stacked expert weights";
  let description = [{
    For each token, `sum_j weights[j] * ffn_{indices[j]}(x)` where expert `e`
    is the FFN with weights `gate[e]`, `up[e]` (`[E, I, H]`) and `down[e]`
    (`[E, H, I]`) and the activation of the op (gated when `gate` is
    present). An optional shared expert (`shared_up`, `shared_down`, optional
    `shared_gate` for a gated one, intermediate size of its own) is added to
    every token: with `shared_expert_gate` (`[1, H]`) its output is scaled by
    `sigmoid(x . shared_expert_gate)` (Qwen2-MoE); without, it is always on
    with weight 1.
  }];
  let arguments = (ins Moe_FloatTensor:$input, Moe_FloatTensor:$weights,
                       Moe_ExpertIndexTensor:$indices,
                       Optional<Moe_FloatTensor>:$gate,
                       Moe_FloatTensor:$up, Moe_FloatTensor:$down,
                       Optional<Moe_FloatTensor>:$shared_gate,
                       Optional<Moe_FloatTensor>:$shared_up,
                       Optional<Moe_FloatTensor>:$shared_down,
                       Optional<Moe_FloatTensor>:$shared_expert_gate,
                       Moe_ActivationKind:$activation);
  let results = (outs Moe_FloatTensor:$result);
  let assemblyFormat =
      "$input `routed` `(` $weights `,` $indices `)` (`gate` $gate^)? `up` $up "
      "`down` $down (`shared_gate` $shared_gate^)? "
      "(`shared_up` $shared_up^)? (`shared_down` $shared_down^)? "
      "(`shared_expert_gate` $shared_expert_gate^)? `activation` $activation "
      "attr-dict `:` functional-type(operands, results)";
  let hasVerifier = 1;
  let hasCanonicalizer = 1;
}

def Moe_RoutedLinearOp : Moe_Op<"routed_linear", [Pure]> {
  let summary = "a linear layer whose weight is routed over experts";
  let description = [{
    `result = sum_j weights[j] * (x W_{indices[j]}^T + b_{indices[j]})` with
    `weight` `[E, out, in]` and optional `bias` `[E, out]`. Fine-grained
    routing (separate routers for the gate, up and down projections) and
    routed attention projections use it.
  }];
  let arguments = (ins Moe_FloatTensor:$input, Moe_FloatTensor:$weights,
                       Moe_ExpertIndexTensor:$indices,
                       Moe_FloatTensor:$weight,
                       Optional<Moe_FloatTensor>:$bias);
  let results = (outs Moe_FloatTensor:$result);
  let assemblyFormat =
      "$input `routed` `(` $weights `,` $indices `)` `,` $weight "
      "(`bias` $bias^)? attr-dict `:` functional-type(operands, results)";
  let hasVerifier = 1;
}

def Moe_MixtureOfLoraOp : Moe_Op<"mixture_of_lora",
    [Pure, AttrSizedOperandSegments]> {
  let summary = "a base linear plus a routed mixture of LoRA adapters";
  let description = [{
    `result = x W^T + b + sum_{e in chosen} g_e * scales[e] * (x A_e^T) B_e^T`
    where `A_e` is `lora_a[e]` (`[r_e, in]`), `B_e` is `lora_b[e]`
    (`[out, r_e]`); ranks may differ between adapters. The router gives
    logits `x router^T` (`router` is `[E, in]`); `normalization = sigmoid`
    scores each adapter independently, `softmax` over all E. With
    `top_k = 0` every adapter is active with its score; otherwise the `top_k`
    highest scores are kept (and, with softmax, renormalised to sum to one).
  }];
  let arguments = (ins Moe_FloatTensor:$input, Moe_FloatTensor:$weight,
                       Optional<Moe_FloatTensor>:$bias,
                       Moe_FloatTensor:$router,
                       Variadic<Moe_FloatTensor>:$lora_a,
                       Variadic<Moe_FloatTensor>:$lora_b,
                       DenseF64ArrayAttr:$scales,
                       Moe_ScoringKind:$normalization,
                       DefaultValuedAttr<I64Attr, "0">:$top_k);
  let results = (outs Moe_FloatTensor:$result);
  let assemblyFormat =
      "$input `,` $weight (`bias` $bias^)? `router` $router `lora_a` `(` "
      "$lora_a `)` `lora_b` `(` $lora_b `)` `scales` $scales `normalization` "
      "$normalization attr-dict `:` functional-type(operands, results)";
  let hasVerifier = 1;
}

def Moe_FusedMoeOp : Moe_Op<"fused_moe", [Pure, AttrSizedOperandSegments]> {
  let summary = "router, top-k gating and routed experts in one operation";
  let description = [{
    What `moe-fuse-gating` makes of `moe.router` + `moe.topk_gating` +
    `moe.experts`: the same function, with the routing attributes of the
    gating op. Without `router` every expert runs with weight `1 / E`
    (gate-less; then `k` equals E).
  }];
  let arguments = (ins Moe_FloatTensor:$input,
                       Optional<Moe_FloatTensor>:$router,
                       Optional<Moe_FloatTensor>:$router_bias,
                       Optional<Moe_FloatTensor>:$gate,
                       Moe_FloatTensor:$up, Moe_FloatTensor:$down,
                       Optional<Moe_FloatTensor>:$shared_gate,
                       Optional<Moe_FloatTensor>:$shared_up,
                       Optional<Moe_FloatTensor>:$shared_down,
                       Optional<Moe_FloatTensor>:$shared_expert_gate,
                       ConfinedAttr<I64Attr, [IntPositive]>:$k,
                       Moe_ScoringKind:$scoring,
                       DefaultValuedAttr<BoolAttr, "true">:$score_before_topk,
                       UnitAttr:$renormalize,
                       DefaultValuedAttr<F64Attr, "0.0">:$noise_std,
                       DefaultValuedAttr<I64Attr, "0">:$noise_seed,
                       Moe_ActivationKind:$activation);
  let results = (outs Moe_FloatTensor:$result);
  let assemblyFormat =
      "$input (`router` $router^)? (`router_bias` $router_bias^)? "
      "(`gate` $gate^)? `up` $up `down` $down "
      "(`shared_gate` $shared_gate^)? (`shared_up` $shared_up^)? "
      "(`shared_down` $shared_down^)? "
      "(`shared_expert_gate` $shared_expert_gate^)? `k` $k `scoring` $scoring "
      "`activation` $activation attr-dict `:` "
      "functional-type(operands, results)";
  let hasVerifier = 1;
}

#endif // MOE_OPS_TD
