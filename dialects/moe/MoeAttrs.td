//===- MoeAttrs.td - Attributes and enums of the moe dialect -*- tablegen -*-===//

#ifndef MOE_ATTRS_TD
#define MOE_ATTRS_TD

include "MoeDialect.td"
include "mlir/IR/AttrTypeBase.td"
include "mlir/IR/EnumAttr.td"

def Moe_ActivationKind : I32EnumAttr<"Activation",
    "element-wise activation function", [
      I32EnumAttrCase<"silu", 0>,
      I32EnumAttrCase<"gelu", 1>,
      I32EnumAttrCase<"gelu_tanh", 2>,
      I32EnumAttrCase<"relu", 3>,
      I32EnumAttrCase<"identity", 4>
    ]> {
  let cppNamespace = "::mlir::moe";
  let description = [{
    `silu` is x * sigmoid(x); `gelu` the exact (erf) GELU; `gelu_tanh` its
    tanh approximation; `relu` max(x, 0); `identity` leaves x alone.
  }];
}

def Moe_ScopeFormatKind : I32EnumAttr<"ScopeFormat",
    "on-disk format of a checkpoint scope", [
      I32EnumAttrCase<"huggingface", 0>,
      I32EnumAttrCase<"peft", 1>,
      I32EnumAttrCase<"safetensors", 2>,
      I32EnumAttrCase<"gguf", 3>
    ]> {
  let cppNamespace = "::mlir::moe";
  let description = [{
    `huggingface`: a model directory with `config.json` and one
    `model.safetensors` or shards listed by `model.safetensors.index.json`.
    `peft`: a PEFT adapter directory (`adapter_config.json` and
    `adapter_model.safetensors`). `safetensors`: one safetensors file.
    `gguf`: one GGUF file of llama.cpp, read as transformers reads it:
    tensors under their transformers names, quantised ones dequantised to
    f32 when read (see docs/gguf.md).
  }];
}

def Moe_ScoringKind : I32EnumAttr<"Scoring",
    "how router logits become expert scores", [
      I32EnumAttrCase<"softmax", 0>,
      I32EnumAttrCase<"sigmoid", 1>
    ]> {
  let cppNamespace = "::mlir::moe";
}

def Moe_RopeScalingKindAttr : I32EnumAttr<"RopeScalingKind",
    "rotary embedding frequency scaling", [
      I32EnumAttrCase<"linear", 0>,
      I32EnumAttrCase<"dynamic", 1>,
      I32EnumAttrCase<"llama3", 2>,
      I32EnumAttrCase<"yarn", 3>
    ]> {
  let cppNamespace = "::mlir::moe";
}

//===----------------------------------------------------------------------===//
// Choices of pass and pipeline options
//===----------------------------------------------------------------------===//

def Moe_RouterModeEnum : I32Enum<"RouterMode",
    "how moe-mix-experts makes the router weights", [
      I32EnumCase<"gateless", 0>,
      I32EnumCase<"noisy", 1>,
      I32EnumCase<"uniform_random", 2, "uniform-random">,
      I32EnumCase<"hidden", 3>,
      I32EnumCase<"cheap_embed", 4, "cheap-embed">,
      I32EnumCase<"base_init", 5, "base-init">,
      I32EnumCase<"given", 6>
    ]> {
  let cppNamespace = "::mlir::moe";
}

def Moe_AdapterRouterModeEnum : I32Enum<"AdapterRouterMode",
    "how moe-mix-adapters makes the router weights", [
      I32EnumCase<"noisy", 0>,
      I32EnumCase<"uniform_random", 1, "uniform-random">,
      I32EnumCase<"zero", 2>,
      I32EnumCase<"given", 3>
    ]> {
  let cppNamespace = "::mlir::moe";
}

def Moe_StemSourceEnum : I32Enum<"StemSource",
    "where the non-expert weights of a mix come from", [
      I32EnumCase<"base", 0>,
      I32EnumCase<"average", 1>
    ]> {
  let cppNamespace = "::mlir::moe";
}

def Moe_RoutedStrategyEnum : I32Enum<"RoutedStrategy",
    "how routed experts run on the CPU", [
      I32EnumCase<"sparse", 0>,
      I32EnumCase<"dense", 1>,
      I32EnumCase<"kernels", 2>
    ]> {
  let cppNamespace = "::mlir::moe";
}

def Moe_KernelTargetEnum : I32Enum<"KernelTarget",
    "what the routing kernels are emitted as", [
      I32EnumCase<"gpu", 0>,
      I32EnumCase<"cpu", 1>
    ]> {
  let cppNamespace = "::mlir::moe";
}

def Moe_MmaKindEnum : I32Enum<"MmaKind",
    "the inner products of the grouped GEMMs", [
      I32EnumCase<"none", 0>,
      I32EnumCase<"tf32", 1>
    ]> {
  let cppNamespace = "::mlir::moe";
}

// A double-precision attribute parameter, written as a plain float literal.
class Moe_F64Parameter<string desc> : APFloatParameter<desc> {
  let parser = [{
    [&]() -> ::mlir::FailureOr<::llvm::APFloat> {
      double value;
      if ($_parser.parseFloat(value))
        return ::mlir::failure();
      return ::llvm::APFloat(value);
    }()
  }];
}
class Moe_DefaultF64Parameter<string desc, string value>
    : Moe_F64Parameter<desc> {
  let defaultValue = "::llvm::APFloat(" # value # ")";
}

def Moe_RopeScalingAttr : AttrDef<Moe_Dialect, "RopeScaling"> {
  let mnemonic = "rope_scaling";
  let summary = "scaling of the rotary embedding frequencies";
  let description = [{
    Mirrors the `rope_scaling` entry of a Hugging Face config.

    - `linear`: positions are divided by `factor`.
    - `dynamic`: NTK scaling; when the sequence is longer than
      `original_max_position`, the base becomes
      `theta * ((factor * S / original_max_position) - (factor - 1)) ^ (d / (d - 2))`.
    - `llama3`: wavelengths longer than `original_max_position /
      low_freq_factor` are divided by `factor`, shorter than
      `original_max_position / high_freq_factor` kept, and interpolated in
      between.
    - `yarn`: frequencies blended between interpolation and extrapolation by
      a linear ramp over the dimensions between `beta_fast` and `beta_slow`
      rotations, and cos/sin scaled by `attention_factor` (0 means the
      default `0.1 * ln(factor) + 1`).

    Example: `#moe.rope_scaling<kind = llama3, factor = 8.0,
    original_max_position = 8192>`.
  }];
  let parameters = (ins
    EnumParameter<Moe_RopeScalingKindAttr>:$kind,
    Moe_F64Parameter<"scaling factor">:$factor,
    Moe_DefaultF64Parameter<"llama3 low frequency factor", "1.0">:$low_freq_factor,
    Moe_DefaultF64Parameter<"llama3 high frequency factor", "4.0">:$high_freq_factor,
    DefaultValuedParameter<"int64_t", "0">:$original_max_position,
    Moe_DefaultF64Parameter<"yarn fast rotation bound", "32.0">:$beta_fast,
    Moe_DefaultF64Parameter<"yarn slow rotation bound", "1.0">:$beta_slow,
    Moe_DefaultF64Parameter<"yarn cos/sin scale, 0 for the default", "0.0">:$attention_factor
  );
  let assemblyFormat = "`<` struct(params) `>`";
  let genVerifyDecl = 1;
  let extraClassDeclaration = [{
    /// Applies the scaling to the inverse frequencies `inverse` of a rotary
    /// embedding over `dim` dimensions with base `theta`, as transformers'
    /// rope utilities compute them, and returns the scale of cos and sin
    /// (yarn's attention factor, 1 otherwise). Dynamic (NTK) scaling depends
    /// on the sequence length: it leaves the frequencies as they are.
    double scaleInverseFrequencies(::llvm::MutableArrayRef<double> inverse,
                                   int64_t dim, double theta) const;
  }];
}

#endif // MOE_ATTRS_TD
