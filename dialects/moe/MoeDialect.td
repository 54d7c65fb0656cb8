//===- MoeDialect.td - The moe dialect ---------------------*- tablegen -*-===//
//
// The dialect that holds decoder-only language models, their weights kept
// outside the IR, and the routed experts that mixing builds from them.
//
//===----------------------------------------------------------------------===//

#ifndef MOE_DIALECT_TD
#define MOE_DIALECT_TD

include "mlir/IR/OpBase.td"

def Moe_Dialect : Dialect {
  let name = "moe";
  let cppNamespace = "::mlir::moe";
  let summary = "Decoder LLMs, external weights and mixtures of domain experts";
  let description = [{
    The `moe` dialect describes a decoder-only language model at the level of
    its building blocks (embedding, normalisation, attention, feed-forward
    network, linear layers) and the routed forms that mixing produces from
    several such models: routers, top-k gating, routed experts over stacked
    expert weights, mixtures of LoRA adapters and the fused gating form.

    Weights never live in the IR. A `moe.scope` declares a checkpoint (a
    Hugging Face model directory, a PEFT adapter, a single safetensors file)
    and `moe.param` names one tensor in it by key. Operations marked as
    *weight expressions* (`moe.param`, `moe.stack`, `moe.average`, the random
    initialisers, ...) compute weights from weights only; tools evaluate them
    lazily from the memory-mapped checkpoints, when they run or export a model.

    A model is a `func.func` from token ids (`tensor<?x?xi64>`, batch by
    sequence) to logits. Activations have any number of leading token
    dimensions and the hidden size last. Residual additions are plain
    `arith.addf`.

    Discardable attributes of the dialect:
    - `moe.layer` (integer) on an operation: the decoder layer it belongs to.
    - `moe.scope` (flat symbol reference) on a function: the checkpoint scope
      the model was imported from.
    - `moe.architecture` (string) on a function: the architecture name of the
      source model (`LlamaForCausalLM`, ...).
    - `moe.weights` (flat symbol reference) on a function: the function that
      computes the weights bound to its trailing arguments (see
      `moe-outline-weights`).
    - `moe.gpu_kernel` (symbol reference) on a function declaration: the
      `gpu.func` that a call to the declaration launches, the grid's x and y
      sizes being the call's last two operands (see `moe-lower-moe-kernels`
      and `moe-launch-gpu-kernels`).
  }];
  let dependentDialects = ["::mlir::tensor::TensorDialect"];
  let useDefaultAttributePrinterParser = 1;
  let hasOperationAttrVerify = 1;
  let extraClassDeclaration = [{
    static constexpr ::llvm::StringLiteral getLayerAttrName() {
      return ::llvm::StringLiteral("moe.layer");
    }
    static constexpr ::llvm::StringLiteral getScopeAttrName() {
      return ::llvm::StringLiteral("moe.scope");
    }
    static constexpr ::llvm::StringLiteral getArchitectureAttrName() {
      return ::llvm::StringLiteral("moe.architecture");
    }
    static constexpr ::llvm::StringLiteral getWeightsAttrName() {
      return ::llvm::StringLiteral("moe.weights");
    }
    static constexpr ::llvm::StringLiteral getGpuKernelAttrName() {
      return ::llvm::StringLiteral("moe.gpu_kernel");
    }
  }];
}

class Moe_Op<string mnemonic, list<Trait> traits = []>
    : Op<Moe_Dialect, mnemonic, traits>;

#endif // MOE_DIALECT_TD
