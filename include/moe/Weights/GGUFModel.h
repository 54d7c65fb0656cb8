//===- GGUFModel.h - llama.cpp models as transformers reads them -*- C++
//-*-===//
//
// llama.cpp's converter renames a transformers checkpoint's tensors, stores
// dimensions innermost first, interleaves the rows of the query and key
// projections per head for its rotary embedding, and moves config.json into
// typed metadata. This is the inverse, as transformers' GGUF loader computes
// it: tensors under their transformers names and shapes with the original
// row order, and the config.json the metadata stands for.
//
//===----------------------------------------------------------------------===//

#ifndef MOE_WEIGHTS_GGUFMODEL_H
#define MOE_WEIGHTS_GGUFMODEL_H

#include "moe/Weights/GGUF.h"

#include "llvm/Support/JSON.h"

namespace mlir::moe::weights {

/// llama.cpp's interleaving of the rows of each head of the query and key
/// projections (its converter's LlamaModel.permute), for heads of
/// `headSize` rows: the stored row of transformers' row `row`, and the
/// transformers row that stored row `storedRow` holds.
uint64_t llamaRotaryStoredRow(uint64_t row, uint64_t headSize);
uint64_t llamaRotarySourceRow(uint64_t storedRow, uint64_t headSize);

/// A tensor of a GGUF model under its transformers name.
struct GGUFModelTensor {
  std::string name;
  const GGUFTensorInfo *tensor = nullptr;
  /// Outermost first, as transformers has it.
  llvm::SmallVector<int64_t, 4> shape;
  /// For the query and key projections, the heads whose rows the converter
  /// interleaved (stored row h*d + 2i + j is row h*d + j*d/2 + i, d the head
  /// size); 0 when rows are stored in their own order.
  int64_t ropeHeads = 0;

  /// The stored row that holds row `row` of the transformers tensor.
  uint64_t storedRow(uint64_t row) const;
};

/// The tensors of a GGUF model of a supported architecture (`llama`), in
/// file order. Errors name the file and the key or tensor: another
/// architecture, a tensor without a transformers counterpart (Llama 3's
/// `rope_freqs.weight` included), head counts that do not divide the rows.
llvm::Expected<std::vector<GGUFModelTensor>>
mapGGUFModelTensors(const GGUFFile &file);

/// The config.json that transformers derives from the metadata (and, for
/// the vocabulary size and tied embeddings, the tensors) of `file`. Errors
/// name the file and the key that is missing or of the wrong type.
llvm::Expected<llvm::json::Object> ggufHuggingFaceConfig(const GGUFFile &file);

} // namespace mlir::moe::weights

#endif // MOE_WEIGHTS_GGUFMODEL_H
