//===- MixingSupport.cpp - What the mixing passes share -------------------===//

#include "moe/Transforms/MixingSupport.h"

#include "moe/Formats/HF/TensorNames.h"

#include "mlir/IR/Builders.h"
#include "llvm/Support/FileSystem.h"

using namespace mlir;
using namespace mlir::moe;

Value WeightCloner::clone(OpBuilder &builder, Value value) {
  Block *destination = builder.getInsertionBlock();
  if (value.getParentBlock() == destination)
    return value;
  if (Value mapped = mapping.lookupOrNull(value))
    return mapped;
  Operation *op = value.getDefiningOp();
  for (Value operand : op->getOperands())
    clone(builder, operand);
  Operation *copy = builder.clone(*op, mapping);
  return copy->getResult(cast<OpResult>(value).getResultNumber());
}

void mlir::moe::decomposeFfn(FfnOp op) {
  OpBuilder builder(op);
  LayerTagger tagger(getLayerIndex(op).value_or(-1));
  builder.setListener(&tagger);
  Location loc = op.getLoc();
  auto project = [&](Value input, Value weight, Value bias) -> Value {
    auto inputType = cast<RankedTensorType>(input.getType());
    SmallVector<int64_t> shape(inputType.getShape());
    shape.back() = cast<RankedTensorType>(weight.getType()).getShape()[0];
    return LinearOp::create(
        builder, loc, RankedTensorType::get(shape, inputType.getElementType()),
        input, weight, bias);
  };
  // The importer's order (gate, up, down), so that functions decomposed
  // either way keep one structure.
  Value gate;
  if (op.getGate())
    gate = project(op.getInput(), op.getGate(), op.getGateBias());
  Value up = project(op.getInput(), op.getUp(), op.getUpBias());
  Value middle =
      gate ? GluOp::create(builder, loc, gate, up, op.getActivation())
                 .getResult()
           : ActivationOp::create(builder, loc, up, op.getActivation())
                 .getResult();
  Value down = project(middle, op.getDown(), op.getDownBias());
  op.getResult().replaceAllUsesWith(down);
  op.erase();
}

std::string mlir::moe::getLinearModulePath(Value weight) {
  auto param = weight.getDefiningOp<ParamOp>();
  if (!param || param.getIndexAttr())
    return "";
  return hf::moduleOfWeightKey(param.getKey()).value_or("").str();
}

std::string mlir::moe::declareFileScope(ModuleOp module, StringRef stem,
                                        StringRef path) {
  std::string name = stem.str();
  for (int suffix = 1; module.lookupSymbol(name); ++suffix)
    name = (stem + "_" + Twine(suffix)).str();
  SmallString<256> absolute(path);
  llvm::sys::fs::make_absolute(absolute);
  OpBuilder builder = OpBuilder::atBlockBegin(module.getBody());
  ScopeOp::create(builder, module.getLoc(), name, absolute,
                  ScopeFormat::safetensors);
  return name;
}
