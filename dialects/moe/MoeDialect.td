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

    Argument attributes of model functions:
    - `moe.name` (string) on the token ids: the input's name in exports
      (`input_ids`).
    - `moe.weight` (non-negative integer) on an argument: the result of the
      `moe.weights` function bound to it (see `moe-outline-weights`).
  }];
  let discardableAttrs = (ins
    "::mlir::IntegerAttr":$layer,
    "::mlir::FlatSymbolRefAttr":$scope,
    "::mlir::StringAttr":$architecture,
    "::mlir::FlatSymbolRefAttr":$weights,
    "::mlir::SymbolRefAttr":$gpu_kernel,
    "::mlir::StringAttr":$name,
    "::mlir::IntegerAttr":$weight
  );
  let dependentDialects = ["::mlir::tensor::TensorDialect"];
  let useDefaultAttributePrinterParser = 1;
  let hasOperationAttrVerify = 1;
  let hasRegionArgAttrVerify = 1;
  let extraClassDeclaration = [{
    static constexpr ::llvm::StringLiteral getLayerAttrName() {
      return LayerAttrHelper::getNameStr();
    }
    static constexpr ::llvm::StringLiteral getScopeAttrName() {
      return ScopeAttrHelper::getNameStr();
    }
    static constexpr ::llvm::StringLiteral getArchitectureAttrName() {
      return ArchitectureAttrHelper::getNameStr();
    }
    static constexpr ::llvm::StringLiteral getWeightsAttrName() {
      return WeightsAttrHelper::getNameStr();
    }
    static constexpr ::llvm::StringLiteral getGpuKernelAttrName() {
      return GpuKernelAttrHelper::getNameStr();
    }
    static constexpr ::llvm::StringLiteral getNameAttrName() {
      return NameAttrHelper::getNameStr();
    }
    static constexpr ::llvm::StringLiteral getWeightAttrName() {
      return WeightAttrHelper::getNameStr();
    }
  }];
}

class Moe_Op<string mnemonic, list<Trait> traits = []>
    : Op<Moe_Dialect, mnemonic, traits>;

#endif // MOE_DIALECT_TD
