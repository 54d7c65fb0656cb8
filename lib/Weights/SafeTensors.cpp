//===- SafeTensors.cpp - safetensors reader and writer --------------------===//
//
// The format and its validation rules follow the reference implementation
// (github.com/huggingface/safetensors): the tensors must tile the data region
// exactly, and the writer pads the header with spaces to a multiple of 8.
//
//===----------------------------------------------------------------------===//

#include "moe/Weights/SafeTensors.h"

#include "moe/Support/Errors.h"
#include "moe/Support/OutputStreams.h"
#include "moe/Support/RegularFile.h"
#include "moe/Support/StagedOutput.h"
#include "moe/Support/StrictJson.h"

#include "llvm/ADT/STLExtras.h"
#include "llvm/ADT/StringExtras.h"
#include "llvm/ADT/StringSet.h"
#include "llvm/Support/Endian.h"
#include "llvm/Support/FileSystem.h"
#include "llvm/Support/JSON.h"
#include "llvm/Support/MathExtras.h"
#include "llvm/Support/Path.h"
#include "llvm/Support/raw_ostream.h"

#include <algorithm>
#include <cerrno>

#ifdef __linux__
#include <unistd.h>
#endif

using namespace mlir::moe;
using namespace mlir::moe::weights;
using llvm::Error;
using llvm::Expected;
using llvm::StringRef;
using llvm::Twine;
using mlir::moe::makeError;
using mlir::moe::StagedOutput;

static std::string formatShape(llvm::ArrayRef<int64_t> shape) {
  std::string text = "[";
  for (auto [i, dim] : llvm::enumerate(shape))
    text += (i ? ", " : "") + std::to_string(dim);
  return text + "]";
}

/// Elements x dtype size, or std::nullopt when a dimension is negative or
/// the product does not fit in 64 bits.
static std::optional<uint64_t> byteSizeOf(DType dtype,
                                          llvm::ArrayRef<int64_t> shape) {
  uint64_t bytes = dtypeSize(dtype);
  for (int64_t dim : shape) {
    if (dim < 0)
      return std::nullopt;
    bool overflowed = false;
    bytes = llvm::SaturatingMultiply(bytes, static_cast<uint64_t>(dim),
                                     &overflowed);
    if (overflowed)
      return std::nullopt;
  }
  return bytes;
}

uint64_t TensorInfo::numElements() const {
  uint64_t elements = 1;
  // Saturates rather than wraps; parsed headers never get that far.
  for (int64_t dim : shape)
    elements = llvm::SaturatingMultiply(
        elements, static_cast<uint64_t>(std::max<int64_t>(dim, 0)));
  return elements;
}

/// UINT64_MAX when the shape overflows; writeSafeTensorsCheckpoint refuses
/// such shapes (and negative dimensions) before writing anything.
uint64_t TensorSource::numBytes() const {
  return byteSizeOf(dtype, shape).value_or(UINT64_MAX);
}

//===----------------------------------------------------------------------===//
// Header parsing
//===----------------------------------------------------------------------===//

static std::string describeHeaderDuplicate(const DuplicateJsonKey &dup) {
  if (dup.path.empty())
    return "duplicate key " + quoted(dup.key) + " in the header object";
  std::string where = dup.path.front() == "__metadata__"
                          ? std::string("__metadata__")
                          : "tensor " + quoted(dup.path.front());
  std::string message = where + ": duplicate key " + quoted(dup.key);
  if (dup.path.size() > 1)
    message +=
        " in " + quoted(formatJsonPath(llvm::ArrayRef(dup.path).drop_front()));
  return message;
}

/// A JSON integer in [0, INT64_MAX]: floats such as 1.0 and negative numbers
/// are refused, as the reference implementation (unsigned fields) does.
static std::optional<int64_t>
getNonNegativeInteger(const llvm::json::Value &v) {
  std::optional<uint64_t> value = v.getAsUINT64();
  if (!value || *value > static_cast<uint64_t>(INT64_MAX))
    return std::nullopt;
  return static_cast<int64_t>(*value);
}

static Error parseMetadata(const llvm::json::Value &value,
                           std::map<std::string, std::string> &metadata,
                           StringRef source) {
  const llvm::json::Object *object = value.getAsObject();
  if (!object)
    return makeError(source + ": __metadata__ must be an object of strings");
  for (const auto &[key, entry] : *object) {
    std::optional<StringRef> text = entry.getAsString();
    if (!text)
      return makeError(source + ": __metadata__: value of " +
                       quoted(key.str()) + " is not a string");
    metadata[key.str()] = text->str();
  }
  return Error::success();
}

static Expected<TensorInfo> parseTensorEntry(StringRef name,
                                             const llvm::json::Value &value,
                                             uint64_t dataSize,
                                             StringRef source) {
  std::string prefix = (source + ": tensor " + quoted(name) + ": ").str();
  const llvm::json::Object *entry = value.getAsObject();
  if (!entry)
    return makeError(prefix + "entry is not an object");

  // Unknown fields are refused, in sorted order for a stable message.
  std::vector<StringRef> fields;
  for (const auto &field : *entry)
    fields.push_back(field.first);
  llvm::sort(fields);
  for (StringRef field : fields)
    if (field != "dtype" && field != "shape" && field != "data_offsets")
      return makeError(prefix + "unexpected field " + quoted(field));
  for (StringRef field : {"dtype", "shape", "data_offsets"})
    if (!entry->get(field))
      return makeError(prefix + "missing field '" + field + "'");

  TensorInfo info;
  info.name = name.str();

  std::optional<StringRef> dtypeText = entry->get("dtype")->getAsString();
  if (!dtypeText)
    return makeError(prefix + "dtype is not a string");
  std::optional<DType> dtype = parseDType(*dtypeText);
  if (!dtype)
    return makeError(prefix + "unknown dtype " + quoted(*dtypeText));
  info.dtype = *dtype;

  const llvm::json::Array *shape = entry->get("shape")->getAsArray();
  if (!shape)
    return makeError(prefix + "shape is not an array");
  for (auto [i, element] : llvm::enumerate(*shape)) {
    std::optional<int64_t> dim = getNonNegativeInteger(element);
    if (!dim)
      return makeError(prefix + "shape element " + Twine(i) +
                       " is not a non-negative integer");
    info.shape.push_back(*dim);
  }

  const llvm::json::Array *offsets = entry->get("data_offsets")->getAsArray();
  std::optional<int64_t> begin, end;
  if (offsets && offsets->size() == 2) {
    begin = getNonNegativeInteger((*offsets)[0]);
    end = getNonNegativeInteger((*offsets)[1]);
  }
  if (!begin || !end)
    return makeError(prefix + "data_offsets must be two non-negative integers");
  info.begin = *begin;
  info.end = *end;
  std::string offsetsText = "data_offsets [" + std::to_string(info.begin) +
                            ", " + std::to_string(info.end) + "]";
  if (info.begin > info.end)
    return makeError(prefix + offsetsText + " begin after end");
  if (info.end > dataSize)
    return makeError(prefix + offsetsText + " run past the data region of " +
                     Twine(dataSize) + " bytes");

  std::string shapeText =
      "shape " + formatShape(info.shape) + " of " + dtypeName(info.dtype).str();
  std::optional<uint64_t> needed = byteSizeOf(info.dtype, info.shape);
  if (!needed)
    return makeError(prefix + shapeText + " needs more than 2^64 bytes");
  if (*needed != info.numBytes())
    return makeError(prefix + offsetsText + " span " + Twine(info.numBytes()) +
                     " bytes but " + shapeText + " needs " + Twine(*needed));
  return info;
}

Expected<SafeTensorsHeader>
mlir::moe::weights::parseSafeTensorsHeader(StringRef json, uint64_t dataSize,
                                           StringRef source) {
  if (json.size() > kMaxHeaderSize)
    return makeError(source + ": header of " + Twine(json.size()) +
                     " bytes exceeds the limit of " + Twine(kMaxHeaderSize));
  StrictJson parsed = parseJsonStrictly(json);
  if (!parsed.syntaxError.empty())
    return makeError(source +
                     ": header is not valid JSON: " + parsed.syntaxError);
  if (parsed.duplicate)
    return makeError(source + ": " +
                     describeHeaderDuplicate(*parsed.duplicate));
  const llvm::json::Object *root = parsed.value->getAsObject();
  if (!root)
    return makeError(source + ": header is not a JSON object");

  SafeTensorsHeader header;
  header.headerSize = json.size();
  header.dataSize = dataSize;

  // llvm::json::Object iterates in hash order: sort the names so that the
  // first error reported does not depend on it.
  std::vector<StringRef> names;
  for (const auto &member : *root)
    names.push_back(member.first);
  llvm::sort(names);
  for (StringRef name : names) {
    const llvm::json::Value &value = *root->get(name);
    if (name == "__metadata__") {
      if (Error error = parseMetadata(value, header.metadata, source))
        return std::move(error);
      continue;
    }
    Expected<TensorInfo> info = parseTensorEntry(name, value, dataSize, source);
    if (!info)
      return info.takeError();
    header.tensors.push_back(std::move(*info));
  }

  // Tile the data region: sorted by offsets, each tensor starts where the
  // previous one ended (empty tensors may sit at any boundary).
  llvm::sort(header.tensors, [](const TensorInfo &a, const TensorInfo &b) {
    return std::tie(a.begin, a.end, a.name) < std::tie(b.begin, b.end, b.name);
  });
  uint64_t covered = 0;
  const TensorInfo *previous = nullptr;
  for (const TensorInfo &tensor : header.tensors) {
    if (tensor.begin < covered)
      return makeError(source + ": tensors " + quoted(previous->name) + " [" +
                       Twine(previous->begin) + ", " + Twine(previous->end) +
                       "] and " + quoted(tensor.name) + " [" +
                       Twine(tensor.begin) + ", " + Twine(tensor.end) +
                       "] overlap");
    if (tensor.begin > covered)
      return makeError(source + ": data region bytes [" + Twine(covered) +
                       ", " + Twine(tensor.begin) +
                       "] belong to no tensor (before " + quoted(tensor.name) +
                       ")");
    covered = tensor.end;
    previous = &tensor;
  }
  if (covered != dataSize)
    return makeError(
        source + ": data region bytes [" + Twine(covered) + ", " +
        Twine(dataSize) + "] belong to no tensor" +
        (previous ? " (after " + quoted(previous->name) + ")" : std::string()));
  return header;
}

//===----------------------------------------------------------------------===//
// Reading files
//===----------------------------------------------------------------------===//

Expected<std::unique_ptr<SafeTensorsFile>>
SafeTensorsFile::open(StringRef path) {
  auto opened = openRegularFile(path);
  if (!opened)
    return opened.takeError();
  llvm::sys::fs::file_t file = opened->first.get();
  uint64_t fileSize = opened->second;

  if (fileSize < 8)
    return makeError(path + ": file of " + Twine(fileSize) +
                     " bytes is too short for the 8-byte header length");
  char lengthBytes[8];
  if (Error error = readFileRange(file, 0, lengthBytes, path, "the header"))
    return std::move(error);
  uint64_t headerSize =
      llvm::support::endian::read64le(static_cast<const void *>(lengthBytes));
  if (headerSize > kMaxHeaderSize)
    return makeError(path + ": header length " + Twine(headerSize) +
                     " exceeds the limit of " + Twine(kMaxHeaderSize) +
                     " bytes");
  if (headerSize > fileSize - 8)
    return makeError(path + ": header length " + Twine(headerSize) +
                     " runs past the end of the file (" + Twine(fileSize) +
                     " bytes)");

  std::string json(headerSize, '\0');
  if (Error error = readFileRange(file, 8, json, path, "the header"))
    return std::move(error);
  Expected<SafeTensorsHeader> header =
      parseSafeTensorsHeader(json, fileSize - 8 - headerSize, path);
  if (!header)
    return header.takeError();

  std::unique_ptr<SafeTensorsFile> result(new SafeTensorsFile(
      path.str(), std::move(*header), opened->first.release()));
  for (auto [i, tensor] : llvm::enumerate(result->parsed.tensors))
    result->index[tensor.name] = i;
  return std::move(result);
}

const TensorInfo *SafeTensorsFile::find(StringRef name) const {
  auto it = index.find(name);
  return it == index.end() ? nullptr : &parsed.tensors[it->second];
}

SafeTensorsFile::~SafeTensorsFile() { llvm::sys::fs::closeFile(handle); }

Expected<std::vector<uint8_t>>
SafeTensorsFile::readBytes(const TensorInfo &tensor) const {
  std::vector<uint8_t> bytes(tensor.numBytes());
  if (Error error = read(tensor, 0, bytes))
    return std::move(error);
  return bytes;
}

Error SafeTensorsFile::read(const TensorInfo &tensor, uint64_t byteOffset,
                            llvm::MutableArrayRef<uint8_t> dest) const {
  if (tensor.begin > tensor.end || tensor.end > parsed.dataSize)
    return makeError(filePath + ": tensor " + quoted(tensor.name) +
                     " at data_offsets [" + Twine(tensor.begin) + ", " +
                     Twine(tensor.end) + "] lies outside the data region of " +
                     Twine(parsed.dataSize) + " bytes");
  if (byteOffset > tensor.numBytes() ||
      dest.size() > tensor.numBytes() - byteOffset)
    return makeError(filePath + ": tensor " + quoted(tensor.name) + " has " +
                     Twine(tensor.numBytes()) + " bytes; cannot read " +
                     Twine(dest.size()) + " from byte " + Twine(byteOffset));
  llvm::MutableArrayRef<char> chars(reinterpret_cast<char *>(dest.data()),
                                    dest.size());
  return readFileRange(handle, dataOffset() + tensor.begin + byteOffset, chars,
                       filePath, "tensor " + quoted(tensor.name));
}

//===----------------------------------------------------------------------===//
// Writing
//===----------------------------------------------------------------------===//

namespace {
/// A source file opened once for all the tensors copied from it.
struct OpenSource {
  ScopedFile file;
  uint64_t size;
  /// Cleared when copy_file_range refuses this file (another file system).
  bool kernelCopyWorks = true;
};

/// A contiguous run of the tensors, written as one file.
struct Shard {
  size_t first = 0, end = 0;
  std::string fileName;
};
} // namespace

/// Copies `length` bytes at `offset` of `source` to the current position of
/// `dest`, in the kernel (copy_file_range) while it can, else through a
/// buffer. `out` is the (flushed) stream over `dest`, used by the fallback.
static Error copyRange(llvm::sys::fs::file_t source, uint64_t offset,
                       uint64_t length, int dest, llvm::raw_fd_ostream &out,
                       bool &kernelCopyWorks, StringRef sourcePath) {
  // The stream's buffer goes first, and the kernel copy then advances the
  // shared file offset that the stream's next write(2) continues from.
  out.flush();
#ifdef __linux__
  while (length > 0 && kernelCopyWorks) {
    loff_t sourceOffset = static_cast<loff_t>(offset);
    size_t chunk = static_cast<size_t>(std::min<uint64_t>(length, 1u << 30));
    ssize_t copied =
        ::copy_file_range(source, &sourceOffset, dest, nullptr, chunk, 0);
    if (copied < 0) {
      if (errno == EINTR)
        continue;
      // Another file system, an old kernel, or a file system that cannot:
      // the buffered copy below does the rest.
      if (errno == EXDEV || errno == ENOSYS || errno == EINVAL ||
          errno == EOPNOTSUPP) {
        kernelCopyWorks = false;
        break;
      }
      return makeError(
          sourcePath + ": cannot copy: " +
          std::error_code(errno, std::generic_category()).message());
    }
    if (copied == 0)
      return makeError(sourcePath + ": file ended early (changed while "
                                    "copying?)");
    offset += copied;
    length -= copied;
  }
#else
  (void)dest;
  kernelCopyWorks = false;
#endif
  std::vector<char> buffer(std::min<uint64_t>(length, 1u << 20));
  while (length > 0) {
    llvm::MutableArrayRef<char> chunk(
        buffer.data(), std::min<uint64_t>(length, buffer.size()));
    Expected<size_t> count =
        llvm::sys::fs::readNativeFileSlice(source, chunk, offset);
    if (!count)
      return makeError(sourcePath +
                       ": cannot read: " + llvm::toString(count.takeError()));
    if (*count == 0)
      return makeError(sourcePath + ": file ended early (changed while "
                                    "copying?)");
    out.write(buffer.data(), *count);
    offset += *count;
    length -= *count;
  }
  return Error::success();
}

static std::string shardHeader(llvm::ArrayRef<TensorSource> tensors,
                               const std::map<std::string, std::string> &meta) {
  std::string json;
  llvm::raw_string_ostream os(json);
  llvm::json::OStream writer(os);
  uint64_t offset = 0;
  writer.object([&] {
    if (!meta.empty())
      writer.attributeObject("__metadata__", [&] {
        for (const auto &[key, value] : meta)
          writer.attribute(key, value);
      });
    for (const TensorSource &tensor : tensors) {
      uint64_t end = offset + tensor.numBytes();
      writer.attributeObject(tensor.name, [&] {
        writer.attribute("dtype", dtypeName(tensor.dtype));
        writer.attributeArray("shape", [&] {
          for (int64_t dim : tensor.shape)
            writer.value(dim);
        });
        writer.attributeArray("data_offsets", [&] {
          writer.value(offset);
          writer.value(end);
        });
      });
      offset = end;
    }
  });
  // Spaces up to a multiple of 8 keep the data region 8-byte aligned, as
  // the reference writer does.
  json.append((8 - json.size() % 8) % 8, ' ');
  return json;
}

static Error writeShard(StringRef dir, const Shard &shard,
                        llvm::ArrayRef<TensorSource> tensors,
                        const WriterOptions &options,
                        llvm::StringMap<OpenSource> &sources,
                        StagedOutput &staged, uint64_t &done, uint64_t total) {
  llvm::SmallString<256> finalPath(dir);
  llvm::sys::path::append(finalPath, shard.fileName);
  int fd;
  if (std::error_code ec = llvm::sys::fs::openFileForWrite(
          staged.file(shard.fileName), fd, llvm::sys::fs::CD_CreateNew))
    return makeError(Twine(finalPath) + ": cannot create: " + ec.message());

  OutputFileStream stream(fd);
  llvm::raw_fd_ostream &out = stream.out;

  std::string header = shardHeader(tensors, options.metadata);
  char length[8];
  llvm::support::endian::write64le(length, header.size());
  out.write(length, sizeof(length));
  out << header;

  for (const TensorSource &tensor : tensors) {
    std::string prefix =
        (Twine(finalPath) + ": tensor " + quoted(tensor.name) + ": ").str();
    uint64_t expected = tensor.numBytes();
    if (!tensor.file.empty()) {
      OpenSource &source = sources.find(tensor.file)->second;
      if (Error error =
              copyRange(source.file.get(), tensor.fileOffset, expected, fd, out,
                        source.kernelCopyWorks, tensor.file))
        return makeError(prefix + llvm::toString(std::move(error)));
    } else {
      CountingStream counter(out);
      Error error = tensor.produce(counter);
      counter.flush();
      if (error)
        return makeError(prefix + llvm::toString(std::move(error)));
      if (counter.count() != expected)
        return makeError(prefix + "the producer wrote " +
                         Twine(counter.count()) + " bytes, shape " +
                         formatShape(tensor.shape) + " of " +
                         dtypeName(tensor.dtype) + " needs " + Twine(expected));
    }
    // Flush now, so that a write error names the tensor being written.
    out.flush();
    if (Error error = stream.takeError(prefix))
      return error;
    done += expected;
    if (options.progress)
      options.progress(done, total);
  }
  return stream.close(finalPath);
}

/// Checks everything that can be checked before a byte is written.
static Error validateWriterInputs(StringRef dir,
                                  llvm::ArrayRef<TensorSource> tensors,
                                  const WriterOptions &options,
                                  llvm::StringMap<OpenSource> &sources) {
  if (!llvm::sys::fs::is_directory(dir))
    return makeError(dir + ": not a directory");
  StringRef stem = options.stem;
  if (stem.empty() || stem == "." || stem == ".." ||
      stem.find_first_of("/\\") != StringRef::npos || !llvm::json::isUTF8(stem))
    return makeError(dir + ": invalid file name stem " + quoted(stem));
  for (const auto &[key, value] : options.metadata)
    if (!llvm::json::isUTF8(key) || !llvm::json::isUTF8(value))
      return makeError(dir + ": __metadata__ entry " + quoted(key) +
                       " is not valid UTF-8");

  llvm::StringSet<> names;
  uint64_t total = 0;
  for (const TensorSource &tensor : tensors) {
    std::string prefix = (dir + ": tensor " + quoted(tensor.name) + ": ").str();
    if (!llvm::json::isUTF8(tensor.name))
      return makeError(prefix + "name is not valid UTF-8");
    if (tensor.name == "__metadata__")
      return makeError(prefix + "name is reserved for the metadata");
    if (!names.insert(tensor.name).second)
      return makeError(prefix + "given twice");
    if (!byteSizeOf(tensor.dtype, tensor.shape))
      return makeError(prefix + "shape " + formatShape(tensor.shape) +
                       " has a negative dimension or more than 2^64 bytes");
    bool overflowed = false;
    total = llvm::SaturatingAdd(total, tensor.numBytes(), &overflowed);
    if (overflowed)
      return makeError(prefix + "the tensors hold more than 2^64 bytes");
    if (tensor.file.empty() == !tensor.produce)
      return makeError(prefix + "needs exactly one source, a file range or a "
                                "producer");
    if (tensor.file.empty())
      continue;

    auto it = sources.find(tensor.file);
    if (it == sources.end()) {
      auto opened = openRegularFile(tensor.file);
      if (!opened)
        return makeError(prefix + "source " +
                         llvm::toString(opened.takeError()));
      it = sources
               .try_emplace(tensor.file, OpenSource{std::move(opened->first),
                                                    opened->second})
               .first;
    }
    uint64_t size = it->second.size;
    uint64_t bytes = tensor.numBytes();
    if (tensor.fileOffset > size || bytes > size - tensor.fileOffset)
      return makeError(prefix + "source range [" + Twine(tensor.fileOffset) +
                       ", +" + Twine(bytes) + ") runs past the end of " +
                       tensor.file + " (" + Twine(size) + " bytes)");
  }
  return Error::success();
}

/// `value` in at least five digits, as in `model-00001-of-00003`.
static std::string zeroPadded(size_t value) {
  std::string digits = std::to_string(value);
  return std::string(digits.size() < 5 ? 5 - digits.size() : 0, '0') + digits;
}

/// Splits the tensors, in order, into runs of at most `maxShardBytes`
/// (a larger tensor alone); one run when the limit is 0.
static std::vector<Shard> planShards(llvm::ArrayRef<TensorSource> tensors,
                                     const WriterOptions &options) {
  std::vector<Shard> shards(1);
  uint64_t shardBytes = 0;
  for (auto [i, tensor] : llvm::enumerate(tensors)) {
    uint64_t bytes = tensor.numBytes();
    if (options.maxShardBytes && shards.back().end > shards.back().first &&
        bytes > options.maxShardBytes -
                    std::min(shardBytes, options.maxShardBytes)) {
      shards.push_back(Shard{i, i, ""});
      shardBytes = 0;
    }
    shards.back().end = i + 1;
    shardBytes += bytes;
  }
  // One file needs no index, as with transformers' save_pretrained.
  if (shards.size() == 1) {
    shards.front().fileName = options.stem + ".safetensors";
  } else {
    for (auto [i, shard] : llvm::enumerate(shards))
      shard.fileName = options.stem + "-" + zeroPadded(i + 1) + "-of-" +
                       zeroPadded(shards.size()) + ".safetensors";
  }
  return shards;
}

/// True for `<stem>-<digits>-of-<digits>.safetensors`.
static bool isShardName(StringRef name, StringRef stem) {
  if (!name.consume_front(stem) || !name.consume_front("-") ||
      !name.consume_back(".safetensors"))
    return false;
  auto [index, count] = name.split("-of-");
  auto isNumber = [](StringRef text) {
    return text.size() >= 5 && llvm::all_of(text, llvm::isDigit);
  };
  return isNumber(index) && isNumber(count);
}

/// Removes what an earlier write of the same stem left that this one did
/// not replace: shards of another count, and an index when this write made
/// a single file (Checkpoint::open prefers the index, so it would hide the
/// new file). Like transformers' save_pretrained; failures are ignored, the
/// new checkpoint being complete already.
static void removeStaleFiles(StringRef dir, StringRef stem,
                             llvm::ArrayRef<Shard> shards, bool wroteIndex) {
  llvm::StringSet<> written;
  for (const Shard &shard : shards)
    written.insert(shard.fileName);
  std::string indexName = (stem + ".safetensors.index.json").str();
  std::vector<std::string> stale;
  std::error_code ec;
  for (llvm::sys::fs::directory_iterator it(dir, ec), end; !ec && it != end;
       it.increment(ec)) {
    StringRef name = llvm::sys::path::filename(it->path());
    if ((isShardName(name, stem) && !written.contains(name)) ||
        (!wroteIndex && name == indexName))
      stale.push_back(it->path());
  }
  for (const std::string &path : stale)
    llvm::sys::fs::remove(path);
}

Error mlir::moe::weights::writeSafeTensorsCheckpoint(
    StringRef dir, std::vector<TensorSource> tensors,
    const WriterOptions &options) {
  llvm::StringMap<OpenSource> sources;
  if (Error error = validateWriterInputs(dir, tensors, options, sources))
    return error;

  std::vector<Shard> shards = planShards(tensors, options);
  uint64_t total = 0;
  for (const TensorSource &tensor : tensors)
    total += tensor.numBytes(); // validateWriterInputs ruled out overflow.

  Expected<StagedOutput> staged = StagedOutput::create(dir, options.stem);
  if (!staged)
    return staged.takeError();
  uint64_t done = 0;
  std::vector<std::string> files;
  for (Shard &shard : shards) {
    if (Error error = writeShard(
            dir, shard,
            llvm::ArrayRef(tensors).slice(shard.first, shard.end - shard.first),
            options, sources, *staged, done, total))
      return error;
    files.push_back(shard.fileName);
  }

  bool indexed = shards.size() > 1;
  if (indexed) {
    std::string index;
    llvm::raw_string_ostream os(index);
    llvm::json::OStream writer(os, /*IndentSize=*/2);
    writer.object([&] {
      writer.attributeObject("metadata",
                             [&] { writer.attribute("total_size", total); });
      // Sorted, like the index files transformers writes.
      std::vector<std::pair<StringRef, StringRef>> entries;
      for (const Shard &shard : shards)
        for (size_t i = shard.first; i < shard.end; ++i)
          entries.emplace_back(tensors[i].name, shard.fileName);
      llvm::sort(entries);
      writer.attributeObject("weight_map", [&] {
        for (const auto &[name, file] : entries)
          writer.attribute(name, file);
      });
    });
    index += "\n";
    std::string indexName = options.stem + ".safetensors.index.json";
    if (Error error = staged->writeFile(indexName, index))
      return error;
    files.push_back(indexName);
  }

  // Shards first, the index last: a reader that finds the index finds every
  // shard it names.
  if (Error error = staged->publishFiles(files, /*replace=*/true))
    return error;
  removeStaleFiles(dir, options.stem, shards, indexed);
  return Error::success();
}
