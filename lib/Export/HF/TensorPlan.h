//===- TensorPlan.h - The tensors of a Hugging Face MoE export --*- C++ -*-===//

#ifndef MOE_LIB_EXPORT_HF_TENSORPLAN_H
#define MOE_LIB_EXPORT_HF_TENSORPLAN_H

#include "Layout.h"

#include "moe/Weights/SafeTensors.h"
#include "moe/Weights/WeightEvaluator.h"

#include <vector>

namespace mlir::moe::hf_export {

struct PlannedTensor;
struct WeightPart;

/// The tensors of the checkpoint of a layout, in model order, as sources of
/// the safetensors writer: byte ranges of the source files where a tensor is
/// stored there in the output dtype, producers that stream it through
/// bounded buffers otherwise. The producers read through this object, which
/// must outlive the writing.
class CheckpointTensors {
public:
  CheckpointTensors(ModuleOp module, weights::DType dtype,
                    const WeightSourceOptions &sources);
  ~CheckpointTensors();

  llvm::Expected<std::vector<weights::TensorSource>>
  plan(const LayoutChoice &choice, const Decoder &decoder);

private:
  llvm::Expected<weights::TensorSource> source(const PlannedTensor &tensor);
  llvm::Error writePart(const WeightPart &part, llvm::raw_ostream &out);

  WeightEvaluator evaluator;
  weights::DType dtype;
  std::vector<PlannedTensor> planned;
};

} // namespace mlir::moe::hf_export

#endif // MOE_LIB_EXPORT_HF_TENSORPLAN_H
