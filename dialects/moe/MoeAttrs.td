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
      I32EnumAttrCase<"safetensors", 2>
    ]> {
  let cppNamespace = "::mlir::moe";
  let description = [{
    `huggingface`: a model directory with `config.json` and one
    `model.safetensors` or shards listed by `model.safetensors.index.json`.
    `peft`: a PEFT adapter directory (`adapter_config.json` and
    `adapter_model.safetensors`). `safetensors`: one safetensors file.
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
}

#endif // MOE_ATTRS_TD
