//===- Passes.td - Passes of the moe dialect ---------------*- tablegen -*-===//

#ifndef MOE_PASSES_TD
#define MOE_PASSES_TD

include "mlir/Pass/PassBase.td"

def MixExperts : Pass<"moe-mix-experts", "::mlir::ModuleOp"> {
  let summary = "Mixes the dense FFNs of several models into routed experts";
  let description = [{
    Takes the functions of a base model and of models fine-tuned from it (as
    `moe-translate --import-hf --expert` imports them) and builds one mixed
    function, `output`, from the base: in every chosen layer the dense
    `moe.ffn` becomes a `moe.experts` op over the FFNs of the `experts`
    (stacked with `moe.stack`), routed per token by a router of the chosen
    mode. Everything else (the stem) is the base's, or the mean of all the
    sources' (`stem=average`). The source functions are erased unless
    `keep-sources` is set; their scopes stay, since the mix reads them.

    Router modes (the router of layer `l` is a matrix `W` of `[E, H]` rows,
    logits `x W^T`, then `moe.topk_gating` with `k`, `scoring`,
    `renormalize`):

    | mode | router weight |
    | --- | --- |
    | `gateless` | no router: `moe.uniform_gating`, every expert with weight `1/E` (`k` is ignored) |
    | `noisy` | `moe.random_normal` with std `router-std`, seed `seed + l` |
    | `uniform-random` | `moe.random_uniform` in `[-1/sqrt(H), 1/sqrt(H)]` (the default `nn.Linear` init), seed `seed + l` |
    | `hidden` | `moe.normalize_rows` of slice `l` of the tensor `prototypes` (`[layers, E, H]`) of the safetensors file `prototypes` (calibration output: per layer and expert, the mean hidden state entering the layer over that expert's prompts) |
    | `cheap-embed` | `moe.embedding_prototypes` of the base's token embeddings over `cheap-embed-tokens` (one comma-separated id list per expert, lists separated by `;`), the same for every layer |
    | `base-init` | zero weight and a bias of 0 for expert 0 and -30 for the others, so that every token goes to expert 0 at first (for router training) |
    | `given` | the tensor `model.layers.{l}.block_sparse_moe.gate.weight` (the Mixtral name, `[E, H]`) of the safetensors file `router-weights`, and its `gate.bias` (`[E]`) when the file has one; every other router reads `<router>.bias` beside `<router>.weight` the same way |

    Variants:
    - `always-on=<model>`: that model's FFN runs for every token with
      weight 1 (an ungated shared expert); the router chooses `k` of the
      others.
    - `shared-expert=<model>`: that model's FFN is a gated shared expert
      (Qwen2-MoE): its output is scaled by `sigmoid(x g)` with a gate row
      `g` of `[1, H]` that is `router-std` normal noise in `noisy` mode,
      `model.layers.{l}.mlp.shared_expert_gate.weight` in `given` mode, and
      zero otherwise.
    - `fine-grained`: the gate, up and down projections get routers of their
      own (`moe.routed_linear` each, down's router over the intermediate
      activation); `given` reads `model.layers.{l}.mlp.{gate,up,down}_proj.router.weight`.
    - `route-attention`: the q, k and v projections become `moe.routed_linear`
      over the routed experts' projections, one router each; `given` reads
      `model.layers.{l}.self_attn.{q,k,v}_proj.router.weight`.
    - `global-router`: one router on the token embeddings, whose gating every
      mixed layer shares; `hidden` uses prototype slice 0 and `given` the
      tensor `model.router.weight`.

    Seeds of random weights: the FFN router of layer `l` uses `seed + l`, the
    router of projection `p` (1 gate, 2 up, 3 down, 4 q, 5 k, 6 v) in layer
    `l` uses `seed + 1000 p + l`, the shared-expert gate of layer `l`
    `seed + 7000 + l`, and the global router `seed`.

    Router weights of the `hidden`, `cheap-embed` and `given` modes are
    checked: a warning reports the condition number of a router whose rows
    are nearly linearly dependent (condition number above
    `condition-warning`) and names near-identical rows.
  }];
  let dependentDialects = ["::mlir::moe::MoeDialect"];
  let options = [
    Option<"baseName", "base", "std::string", /*default=*/"\"base\"",
           "Function (and scope) of the base model: the stem comes from it">,
    ListOption<"expertNames", "experts", "std::string",
               "Functions whose FFNs become the experts, in order (default: "
               "every model function of the module, base first)">,
    Option<"outputName", "output", "std::string", /*default=*/"\"mix\"",
           "Name of the mixed function">,
    ListOption<"layers", "layers", "int64_t",
               "Decoder layers to mix (default: all)">,
    Option<"topK", "k", "int64_t", /*default=*/"2",
           "Experts per token">,
    Option<"routerMode", "router", "::mlir::moe::RouterMode",
           /*default=*/"::mlir::moe::RouterMode::noisy",
           "How the router weights are made",
           "::mlir::moe::routerModeValues()">,
    Option<"scoring", "scoring", "::mlir::moe::Scoring",
           /*default=*/"::mlir::moe::Scoring::softmax",
           "How router logits become scores (softmax over all experts, "
           "before top-k, or sigmoid)",
           "::mlir::moe::scoringValues()">,
    Option<"renormalize", "renormalize", "bool", /*default=*/"true",
           "Divide the k gate weights by their sum">,
    Option<"routerStd", "router-std", "double", /*default=*/"0.02",
           "Standard deviation of noisy router weights">,
    Option<"seed", "seed", "int64_t", /*default=*/"0",
           "Seed of random router weights (layer l uses seed + l)">,
    Option<"prototypesPath", "prototypes", "std::string", /*default=*/"\"\"",
           "safetensors file with the [layers, experts, hidden] tensor "
           "'prototypes' (router=hidden)">,
    Option<"cheapEmbedTokens", "cheap-embed-tokens", "std::string",
           /*default=*/"\"\"",
           "Token ids per expert for router=cheap-embed, e.g. '5,17;8;9,2'">,
    Option<"routerWeightsPath", "router-weights", "std::string",
           /*default=*/"\"\"", "safetensors file of router=given">,
    Option<"alwaysOn", "always-on", "std::string", /*default=*/"\"\"",
           "Model whose FFN is an ungated expert active for every token">,
    Option<"sharedExpert", "shared-expert", "std::string", /*default=*/"\"\"",
           "Model whose FFN is a sigmoid-gated shared expert">,
    Option<"stem", "stem", "::mlir::moe::StemSource",
           /*default=*/"::mlir::moe::StemSource::base",
           "Where the non-expert weights come from",
           "::mlir::moe::stemSourceValues()">,
    Option<"fineGrained", "fine-grained", "bool", /*default=*/"false",
           "Separate routers for the gate, up and down projections">,
    Option<"routeAttention", "route-attention", "bool", /*default=*/"false",
           "Route the q, k and v projections over the sources too">,
    Option<"globalRouter", "global-router", "bool", /*default=*/"false",
           "One router on the embeddings, shared by all mixed layers">,
    Option<"keepSources", "keep-sources", "bool", /*default=*/"false",
           "Keep the source model functions">,
    Option<"conditionWarning", "condition-warning", "double",
           /*default=*/"1000.0",
           "Warn about routers whose condition number exceeds this">
  ];
}

def MixAdapters : Pass<"moe-mix-adapters", "::mlir::ModuleOp"> {
  let summary = "Turns the LoRA adapters of a base into mixtures of adapters";
  let description = [{
    Takes the base function and functions that apply one LoRA adapter each
    (`moe.lora_linear`, as `moe-translate --import-hf --adapter` imports them
    or `moe-decompose-experts` makes them) and builds `output`: every linear
    layer that at least one adapter adapts becomes a `moe.mixture_of_lora`
    over the adapters that adapt it, with a router of its own:

    `y = x W^T + b + sum_e g_e(x) * scale_e * (x A_e^T) B_e^T`

    The router weight (`[E, in]`) is `noisy` (normal, std `router-std`, seed
    `seed + p` where `p` counts the adapted layers in program order from 0),
    `uniform-random` (`[-1/sqrt(in), 1/sqrt(in)]`, same seeds), `zero` (every adapter scores
    `sigmoid(0) = 1/2`, or `1/E` with softmax) or `given` (the tensor
    `<module>.router.weight` of the safetensors file `router-weights`, module
    as in `model.layers.0.self_attn.q_proj`). `normalization` is `sigmoid`
    (each adapter scored on its own, the default of the method) or
    `softmax`; `top-k` = 0 keeps every adapter active, otherwise the `top-k`
    best scores per token.
  }];
  let dependentDialects = ["::mlir::moe::MoeDialect"];
  let options = [
    Option<"baseName", "base", "std::string", /*default=*/"\"base\"",
           "Function of the base model">,
    ListOption<"adapterNames", "adapters", "std::string",
               "Adapter functions, in order (default: every function with "
               "moe.lora_linear ops)">,
    Option<"outputName", "output", "std::string", /*default=*/"\"mix\"",
           "Name of the mixed function">,
    Option<"routerMode", "router", "::mlir::moe::AdapterRouterMode",
           /*default=*/"::mlir::moe::AdapterRouterMode::noisy",
           "How the router weights are made",
           "::mlir::moe::adapterRouterModeValues()">,
    Option<"normalization", "normalization", "::mlir::moe::Scoring",
           /*default=*/"::mlir::moe::Scoring::sigmoid",
           "How router logits become adapter gates",
           "::mlir::moe::scoringValues()">,
    Option<"topK", "top-k", "int64_t", /*default=*/"0",
           "Adapters active per token (0: all)">,
    Option<"routerStd", "router-std", "double", /*default=*/"0.02",
           "Standard deviation of noisy router weights">,
    Option<"seed", "seed", "int64_t", /*default=*/"0",
           "Seed of random router weights">,
    Option<"routerWeightsPath", "router-weights", "std::string",
           /*default=*/"\"\"", "safetensors file of router=given">,
    Option<"keepSources", "keep-sources", "bool", /*default=*/"false",
           "Keep the source functions">
  ];
}

def DecomposeExperts : Pass<"moe-decompose-experts", "::mlir::ModuleOp"> {
  let summary = "Turns fine-tuned full models into LoRA adapters of the base";
  let description = [{
    For every expert function, each linear layer (attention and FFN
    projections; `modules` narrows the choice by suffix) whose weight differs
    from the base's is replaced by a `moe.lora_linear` on the base weight
    with rank-`rank` factors from a truncated SVD of `expert - base`:
    `expert - base ~= B A` with `B = U_r sqrt(S_r)` (`[out, r]`) and
    `A = sqrt(S_r) V_r^T` (`[r, in]`), scale 1. The SVD is randomised
    (Halko et al.) with `oversample` extra columns and `power-iterations`
    power iterations, seeded, so runs are reproducible. FFNs are decomposed
    into their projections in every model function so that the functions
    keep one structure, ready for `moe-mix-adapters`.

    The factors of expert `<name>` are written to
    `<output-dir>/<name>.safetensors` (keys `<module>.lora_A.weight` and
    `<module>.lora_B.weight`), declared as scope `@<name>_lora`. Each
    replaced layer gets a remark with the relative reconstruction error
    `||expert - base - B A||_F / ||expert - base||_F`.
  }];
  let dependentDialects = ["::mlir::moe::MoeDialect"];
  let options = [
    Option<"baseName", "base", "std::string", /*default=*/"\"base\"",
           "Function of the base model">,
    ListOption<"expertNames", "experts", "std::string",
               "Expert functions (default: every other model function)">,
    Option<"rank", "rank", "int64_t", /*default=*/"16", "LoRA rank">,
    Option<"outputDir", "output-dir", "std::string", /*default=*/"\"\"",
           "Directory the factor files are written to (required)">,
    ListOption<"modules", "modules", "std::string",
               "Module name suffixes to decompose, e.g. q_proj,down_proj "
               "(default: all linear layers of the decoder layers)">,
    Option<"oversample", "oversample", "int64_t", /*default=*/"8",
           "Extra random columns of the randomised SVD">,
    Option<"powerIterations", "power-iterations", "int64_t",
           /*default=*/"2", "Power iterations of the randomised SVD">,
    Option<"seed", "seed", "int64_t", /*default=*/"0",
           "Seed of the randomised SVD">
  ];
}

def ReportParams : Pass<"moe-report-params", "::mlir::ModuleOp"> {
  let summary = "Counts stem, expert, router, total and active parameters";
  let description = [{
    For every model function, counts the parameters of the distinct weights
    it uses (a weight used twice, such as tied embeddings, counts once):

    - `expert`: stacked expert weights of `moe.experts`, `moe.fused_moe` and
      `moe.routed_linear`, shared experts, LoRA factors of
      `moe.mixture_of_lora` and `moe.lora_linear`;
    - `router`: router weights and biases, shared-expert gates;
    - `stem`: every other weight;
    - `total`: their sum;
    - `active`: what one token uses: the stem, the routers, and per routed
      op `k` of its `E` experts (all of them when gate-less) plus its shared
      expert; for a mixture of adapters, `top-k` adapters (all when 0).

    Each function gets a remark with the counts; `output` writes them as
    JSON too: `{"functions": {"<name>": {"stem": .., "expert": ..,
    "router": .., "total": .., "active": ..}}}`.
  }];
  let dependentDialects = ["::mlir::moe::MoeDialect"];
  let options = [
    Option<"outputPath", "output", "std::string", /*default=*/"\"\"",
           "JSON file to write the counts to">
  ];
}

def FuseGating : Pass<"moe-fuse-gating"> {
  let summary = "Fuses router, top-k gating and routed experts into one op";
  let description = [{
    Rewrites `moe.router` + `moe.topk_gating` + `moe.experts` into
    `moe.fused_moe` (same function, the gating attributes move onto the fused
    op), and gate-less `moe.uniform_gating` + `moe.experts` into a router-less
    `moe.fused_moe` (the weighted mean of all experts). A routed op over one
    expert whose gate weight is always 1 becomes a dense `moe.ffn`.

    Does not fuse when the gating is shared (a global router whose choice
    several layers read, or a router read elsewhere): fusing would compute
    it once per user.
  }];
  let dependentDialects = ["::mlir::moe::MoeDialect"];
}

def OutlineWeights : Pass<"moe-outline-weights", "::mlir::ModuleOp"> {
  let summary = "Moves the weights of model functions into functions of their own";
  let description = [{
    For every function `@f` that computes with weights, creates
    `@f.weights() -> (weights...)` holding every weight expression `@f`
    reads, and turns those weights into trailing arguments of `@f` (named
    by a `moe.weight` argument attribute with the index of the result of
    `@f.weights` it binds to). `@f` gets `moe.weights = @f.weights`.

    After this, `@f` is plain tensor code that lowers to machine code,
    while tools evaluate `@f.weights` from the checkpoints (memory-mapped)
    and bind the results at run time.
  }];
  let dependentDialects = ["::mlir::moe::MoeDialect",
                           "::mlir::func::FuncDialect"];
}

def StripWeights : Pass<"moe-strip-weights", "::mlir::ModuleOp"> {
  let summary = "Keeps the compute of a module whose weights are outlined";
  let description = [{
    After `moe-outline-weights`, what machine code needs is the compute
    functions; the weights functions they name (`moe.weights = @f.weights`)
    and the `moe.scope` declarations are read by the tools that evaluate
    weights from the checkpoints. This pass erases them, and the `moe.*`
    attributes of functions and their arguments (`moe.scope`,
    `moe.weights`, `moe.weight`, `moe.architecture`), which lowering to LLVM
    would otherwise carry along. `moe-lower-to-llvm` and `moe-lower-to-gpu`
    start with it, so both take an outlined module as it is.

    A weight expression (`moe.param`, `moe.stack`, ...) left anywhere else
    is an error: weights reach compiled code as arguments only, so run
    `moe-outline-weights` first and keep its output: its `@f.weights` says
    which checkpoint tensor binds to which argument.
  }];
  let dependentDialects = ["::mlir::func::FuncDialect"];
}

#endif // MOE_PASSES_TD
