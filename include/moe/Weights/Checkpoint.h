//===- Checkpoint.h - Tensors of a checkpoint directory ---------*- C++ -*-===//

#ifndef MOE_WEIGHTS_CHECKPOINT_H
#define MOE_WEIGHTS_CHECKPOINT_H

#include "moe/Weights/GGUFModel.h"
#include "moe/Weights/SafeTensors.h"

#include "llvm/ADT/StringMap.h"

namespace mlir::moe::weights {

/// The tensors of a checkpoint: one safetensors file, a directory with
/// `model.safetensors` (or `adapter_model.safetensors`), or a sharded
/// directory with `model.safetensors.index.json`. Opening reads every
/// header and validates the index (every shard it names exists and holds the
/// tensors the index assigns to it; no tensor in two shards). A `.gguf` file
/// is read as the checkpoint transformers makes of it (GGUFModel.h): its
/// tensors under their transformers names and shapes, dequantised to floats
/// when read (their TensorInfo says F32, the dtype they read as).
class Checkpoint {
public:
  /// `path` is a .safetensors or .gguf file or a directory; in a directory
  /// the index file wins over a single file. `stem` names the files looked
  /// for ("model" or "adapter_model").
  static llvm::Expected<std::unique_ptr<Checkpoint>>
  open(llvm::StringRef path, llvm::StringRef stem = "model");

  llvm::StringRef path() const { return rootPath; }
  /// Tensor names in a deterministic order (sorted).
  std::vector<std::string> names() const;
  /// The entry of `name` and the file holding it; null if absent.
  const TensorInfo *find(llvm::StringRef name) const;
  /// The safetensors file of `name`; null if absent or stored in a GGUF file
  /// (whose bytes are no safetensors tensor's).
  SafeTensorsFile *fileOf(llvm::StringRef name) const;
  /// The path of the file holding `name` (which must be present).
  llvm::StringRef filePathOf(llvm::StringRef name) const;

  /// The raw bytes of safetensors tensor `name`.
  llvm::Expected<std::vector<uint8_t>> readBytes(llvm::StringRef name) const;
  /// Tensor `name` as floats (converted from F64/F16/BF16); an error names
  /// the tensor when its dtype is not a readable float.
  llvm::Expected<std::vector<float>> readF32(llvm::StringRef name) const;
  /// Elements [first, first + dest.size()) of tensor `name` as floats, read
  /// through bounded buffers (SafeTensorsFile::read is the page policy).
  llvm::Error readF32(llvm::StringRef name, uint64_t first,
                      llvm::MutableArrayRef<float> dest) const;
  /// The index of the first NaN or infinity among elements [first, first +
  /// count) of tensor `name` (a readable float), read through the same
  /// bounded buffers; std::nullopt when they are all finite.
  llvm::Expected<std::optional<uint64_t>>
  findNonFinite(llvm::StringRef name, uint64_t first, uint64_t count) const;

private:
  explicit Checkpoint(std::string root) : rootPath(std::move(root)) {}

  using Located = std::pair<SafeTensorsFile *, const TensorInfo *>;
  /// The file and entry of float tensor `name`, with elements [first, first
  /// + count) checked to exist.
  llvm::Expected<Located> locateFloats(llvm::StringRef name, uint64_t first,
                                       uint64_t count) const;

  /// A tensor of a GGUF file and what it reads as.
  struct GGUFEntry {
    GGUFModelTensor mapped;
    TensorInfo info;
  };
  llvm::Error openGGUF();
  llvm::Error readGGUF(const GGUFEntry &entry, uint64_t first,
                       llvm::MutableArrayRef<float> dest) const;

  std::string rootPath;
  std::vector<std::unique_ptr<SafeTensorsFile>> files;
  llvm::StringMap<Located> tensors;
  std::unique_ptr<GGUFFile> gguf;
  llvm::StringMap<GGUFEntry> ggufTensors;
};

} // namespace mlir::moe::weights

#endif // MOE_WEIGHTS_CHECKPOINT_H
