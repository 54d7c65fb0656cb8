//===- Checkpoint.cpp - Tensors of a checkpoint directory -----------------===//

#include "moe/Weights/Checkpoint.h"

#include "moe/Support/Errors.h"
#include "moe/Support/RegularFile.h"
#include "moe/Support/StrictJson.h"

#include "llvm/ADT/STLExtras.h"
#include "llvm/ADT/SmallString.h"
#include "llvm/Support/FileSystem.h"
#include "llvm/Support/JSON.h"
#include "llvm/Support/Path.h"

#include <cmath>
#include <set>

using namespace mlir::moe;
using namespace mlir::moe::weights;
using llvm::Error;
using llvm::Expected;
using llvm::StringRef;
using llvm::Twine;
using mlir::moe::makeError;

static std::string joinPath(StringRef dir, StringRef name) {
  llvm::SmallString<256> path(dir);
  llvm::sys::path::append(path, name);
  return path.str().str();
}

/// A shard name of an index must name a file directly inside the
/// directory: no separators, no `.`/`..`, nothing absolute.
static bool isPlainFileName(StringRef name) {
  return !name.empty() && name != "." && name != ".." &&
         name.find_first_of(llvm::StringRef("/\\\0", 3)) == StringRef::npos;
}

namespace {
/// The private members of Checkpoint that open() fills in.
struct CheckpointContents {
  std::vector<std::unique_ptr<SafeTensorsFile>> &files;
  llvm::StringMap<std::pair<SafeTensorsFile *, const TensorInfo *>> &tensors;
};
} // namespace

static Error addSingleFile(CheckpointContents contents, StringRef filePath) {
  Expected<std::unique_ptr<SafeTensorsFile>> file =
      SafeTensorsFile::open(filePath);
  if (!file)
    return file.takeError();
  for (const TensorInfo &info : (*file)->tensors())
    contents.tensors[info.name] = {file->get(), &info};
  contents.files.push_back(std::move(*file));
  return Error::success();
}

/// Opens the shards an index names and checks that they agree with it.
static Error addIndexedShards(CheckpointContents contents, StringRef dir,
                              StringRef indexPath) {
  llvm::Expected<llvm::json::Object> root =
      readJsonObjectFile(indexPath, kMaxHeaderSize);
  if (!root)
    return root.takeError();
  const llvm::json::Object *weightMap = root->getObject("weight_map");
  if (!weightMap)
    return makeError(indexPath + ": no \"weight_map\" object");

  // Tensor -> shard file name, sorted for stable messages.
  std::map<std::string, std::string> assignment;
  for (const auto &[tensor, fileValue] : *weightMap) {
    std::optional<StringRef> fileName = fileValue.getAsString();
    if (!fileName)
      return makeError(indexPath + ": weight_map entry of tensor " +
                       quoted(tensor.str()) + " is not a string");
    assignment[tensor.str()] = fileName->str();
  }

  // Every shard once, checked to be a file of this directory, then opened.
  std::map<std::string, std::string> firstTensorOf;
  for (const auto &[tensor, fileName] : assignment)
    firstTensorOf.try_emplace(fileName, tensor);
  llvm::StringMap<SafeTensorsFile *> shards;
  for (const auto &[fileName, tensor] : firstTensorOf) {
    std::string described =
        "shard " + quoted(fileName) + " (of tensor " + quoted(tensor) + ")";
    if (!isPlainFileName(fileName))
      return makeError(indexPath + ": " + described +
                       " is not a plain file name inside the directory");
    std::string shardPath = joinPath(dir, fileName);
    if (!llvm::sys::fs::exists(shardPath))
      return makeError(indexPath + ": " + described + " does not exist");
    Expected<std::unique_ptr<SafeTensorsFile>> file =
        SafeTensorsFile::open(shardPath);
    if (!file)
      return file.takeError();
    shards[fileName] = file->get();
    contents.files.push_back(std::move(*file));
  }

  for (const auto &[tensor, fileName] : assignment) {
    SafeTensorsFile *shard = shards.lookup(fileName);
    const TensorInfo *info = shard->find(tensor);
    if (!info)
      return makeError(indexPath + ": tensor " + quoted(tensor) +
                       " is not in its shard " + quoted(fileName));
    contents.tensors[tensor] = {shard, info};
  }
  // A shard may hold nothing but what the index assigns to it.
  for (const auto &[fileName, firstTensor] : firstTensorOf) {
    SafeTensorsFile *shard = shards.lookup(fileName);
    for (const TensorInfo &info : shard->tensors()) {
      auto listed = assignment.find(info.name);
      if (listed == assignment.end())
        return makeError(indexPath + ": shard " + quoted(fileName) +
                         " holds tensor " + quoted(info.name) +
                         ", which the index does not list");
      if (listed->second != fileName)
        return makeError(indexPath + ": tensor " + quoted(info.name) +
                         " is in two shards, " + quoted(listed->second) +
                         " (as indexed) and " + quoted(fileName));
    }
  }
  return Error::success();
}

Expected<std::unique_ptr<Checkpoint>> Checkpoint::open(StringRef path,
                                                       StringRef stem) {
  llvm::sys::fs::file_status status;
  if (std::error_code ec = llvm::sys::fs::status(path, status))
    return makeError(path + ": " + ec.message());
  std::unique_ptr<Checkpoint> checkpoint(new Checkpoint(path.str()));
  CheckpointContents contents{checkpoint->files, checkpoint->tensors};

  if (status.type() != llvm::sys::fs::file_type::directory_file) {
    if (path.ends_with(".gguf")) {
      if (Error error = checkpoint->openGGUF())
        return std::move(error);
      return std::move(checkpoint);
    }
    if (Error error = addSingleFile(contents, path))
      return std::move(error);
    return std::move(checkpoint);
  }

  std::string indexPath =
      joinPath(path, (stem + ".safetensors.index.json").str());
  if (llvm::sys::fs::exists(indexPath)) {
    if (Error error = addIndexedShards(contents, path, indexPath))
      return std::move(error);
    return std::move(checkpoint);
  }
  std::string singlePath = joinPath(path, (stem + ".safetensors").str());
  if (llvm::sys::fs::exists(singlePath)) {
    if (Error error = addSingleFile(contents, singlePath))
      return std::move(error);
    return std::move(checkpoint);
  }
  return makeError(path + ": neither " + stem + ".safetensors.index.json nor " +
                   stem + ".safetensors in this directory");
}

Error Checkpoint::openGGUF() {
  MOE_ASSIGN_OR_RETURN(gguf, GGUFFile::open(rootPath));
  std::vector<GGUFModelTensor> mapped;
  MOE_ASSIGN_OR_RETURN(mapped, mapGGUFModelTensors(*gguf));
  for (GGUFModelTensor &tensor : mapped) {
    TensorInfo info{tensor.name, DType::F32, tensor.shape};
    std::string name = tensor.name;
    if (!ggufTensors.try_emplace(name, GGUFEntry{std::move(tensor), info})
             .second)
      return makeError(rootPath + ": two tensors read as " + quoted(name));
  }
  return Error::success();
}

std::vector<std::string> Checkpoint::names() const {
  std::vector<std::string> result;
  result.reserve(tensors.size() + ggufTensors.size());
  for (const auto &entry : tensors)
    result.push_back(entry.getKey().str());
  for (const auto &entry : ggufTensors)
    result.push_back(entry.getKey().str());
  llvm::sort(result);
  return result;
}

const TensorInfo *Checkpoint::find(StringRef name) const {
  if (auto it = ggufTensors.find(name); it != ggufTensors.end())
    return &it->second.info;
  auto it = tensors.find(name);
  return it == tensors.end() ? nullptr : it->second.second;
}

SafeTensorsFile *Checkpoint::fileOf(StringRef name) const {
  auto it = tensors.find(name);
  return it == tensors.end() ? nullptr : it->second.first;
}

StringRef Checkpoint::filePathOf(StringRef name) const {
  if (gguf)
    return gguf->path();
  return fileOf(name)->path();
}

Expected<std::vector<uint8_t>> Checkpoint::readBytes(StringRef name) const {
  auto it = tensors.find(name);
  if (it == tensors.end())
    return makeError(rootPath + ": " +
                     (ggufTensors.count(name)
                          ? "tensor " + quoted(name) +
                                " is read from GGUF blocks; it has no "
                                "safetensors bytes"
                          : "no tensor " + quoted(name)));
  return it->second.first->readBytes(*it->second.second);
}

Expected<std::vector<float>> Checkpoint::readF32(StringRef name) const {
  const TensorInfo *info = find(name);
  if (!info)
    return makeError(rootPath + ": no tensor " + quoted(name));
  std::vector<float> values(info->numElements());
  if (Error error = readF32(name, 0, values))
    return std::move(error);
  return values;
}

/// Bytes read per step when converting: bounds the buffer of a read.
static constexpr uint64_t kReadChunkBytes = uint64_t(4) << 20;

Expected<Checkpoint::Located>
Checkpoint::locateFloats(StringRef name, uint64_t first, uint64_t count) const {
  auto it = tensors.find(name);
  if (it == tensors.end())
    return makeError(rootPath + ": no tensor " + quoted(name));
  auto [file, info] = it->second;
  if (!isReadableFloat(info->dtype))
    return makeError(file->path() + ": tensor " + quoted(name) + " has dtype " +
                     dtypeName(info->dtype) +
                     ", which cannot be read as F32 (F64, F32, F16 and BF16 "
                     "can)");
  uint64_t elements = info->numElements();
  if (first > elements || count > elements - first)
    return makeError(file->path() + ": tensor " + quoted(name) + " has " +
                     Twine(elements) + " elements; cannot read " +
                     Twine(count) + " from element " + Twine(first));
  return it->second;
}

Error Checkpoint::readGGUF(const GGUFEntry &entry, uint64_t first,
                           llvm::MutableArrayRef<float> dest) const {
  const GGUFModelTensor &mapped = entry.mapped;
  uint64_t elements = entry.info.numElements();
  if (first > elements || dest.size() > elements - first)
    return makeError(rootPath + ": tensor " + quoted(mapped.name) + " has " +
                     Twine(elements) + " elements; cannot read " +
                     Twine(dest.size()) + " from element " + Twine(first));
  if (!mapped.ropeHeads)
    return gguf->readF32(*mapped.tensor, first, dest);
  // Rows of the query and key projections are read from where the
  // converter moved them, one (part of a) row at a time.
  uint64_t columns = uint64_t(mapped.shape[1]);
  for (uint64_t done = 0; done < dest.size();) {
    uint64_t row = (first + done) / columns, column = (first + done) % columns;
    uint64_t count = std::min(columns - column, dest.size() - done);
    MOE_RETURN_IF_ERROR(gguf->readF32(*mapped.tensor,
                                      mapped.storedRow(row) * columns + column,
                                      dest.slice(done, count)));
    done += count;
  }
  return Error::success();
}

Error Checkpoint::readF32(StringRef name, uint64_t first,
                          llvm::MutableArrayRef<float> dest) const {
  if (auto it = ggufTensors.find(name); it != ggufTensors.end())
    return readGGUF(it->second, first, dest);
  Located located;
  MOE_ASSIGN_OR_RETURN(located, locateFloats(name, first, dest.size()));
  auto [file, info] = located;
  unsigned size = dtypeSize(info->dtype);
  uint64_t perChunk = kReadChunkBytes / size;
  std::vector<uint8_t> raw;
  if (info->dtype != DType::F32)
    raw.resize(std::min<uint64_t>(dest.size(), perChunk) * size);
  for (uint64_t done = 0; done < dest.size();) {
    uint64_t count = std::min<uint64_t>(dest.size() - done, perChunk);
    // F32 needs no conversion: read straight into the destination.
    uint8_t *buffer = info->dtype == DType::F32
                          ? reinterpret_cast<uint8_t *>(dest.data() + done)
                          : raw.data();
    if (Error error = file->read(*info, (first + done) * size,
                                 {buffer, size_t(count * size)}))
      return error;
    if (info->dtype != DType::F32)
      convertToF32(info->dtype, buffer, dest.data() + done, count);
    done += count;
  }
  return Error::success();
}

Expected<std::optional<uint64_t>>
Checkpoint::findNonFinite(StringRef name, uint64_t first,
                          uint64_t count) const {
  if (auto it = ggufTensors.find(name); it != ggufTensors.end()) {
    // Dequantised values are what is read: check those, in bounded chunks.
    std::vector<float> values(std::min<uint64_t>(count, kReadChunkBytes / 4));
    for (uint64_t done = 0; done < count;) {
      uint64_t chunk = std::min<uint64_t>(count - done, values.size());
      llvm::MutableArrayRef<float> part(values.data(), chunk);
      MOE_RETURN_IF_ERROR(readGGUF(it->second, first + done, part));
      for (auto [i, value] : llvm::enumerate(part))
        if (!std::isfinite(value))
          return first + done + i;
      done += chunk;
    }
    return std::nullopt;
  }
  Located located;
  MOE_ASSIGN_OR_RETURN(located, locateFloats(name, first, count));
  auto [file, info] = located;
  unsigned size = dtypeSize(info->dtype);
  uint64_t perChunk = kReadChunkBytes / size;
  std::vector<uint8_t> raw(std::min<uint64_t>(count, perChunk) * size);
  for (uint64_t done = 0; done < count;) {
    uint64_t chunk = std::min<uint64_t>(count - done, perChunk);
    if (Error error = file->read(*info, (first + done) * size,
                                 {raw.data(), size_t(chunk * size)}))
      return std::move(error);
    if (std::optional<size_t> found =
            weights::findNonFinite(info->dtype, raw.data(), chunk))
      return first + done + *found;
    done += chunk;
  }
  return std::nullopt;
}
