//===- RegularFile.h - Reading a file that must be a regular one -*- C++
//-*-===//
//
// Paths come from users and from files (shard names, model directories): a
// FIFO there blocks a read for ever, a device (/dev/zero) is read until
// memory runs out. Small files we read whole go through here.
//
//===----------------------------------------------------------------------===//

#ifndef MOE_SUPPORT_REGULARFILE_H
#define MOE_SUPPORT_REGULARFILE_H

#include "llvm/ADT/ArrayRef.h"
#include "llvm/ADT/StringRef.h"
#include "llvm/ADT/Twine.h"
#include "llvm/Support/Error.h"
#include "llvm/Support/FileSystem.h"

#include <cstdint>
#include <string>
#include <utility>

namespace mlir::moe {

/// The contents of `path`, which must be a regular file (or a symlink to
/// one) of at most `maxBytes` bytes. The file is opened without blocking
/// and checked after opening, so a FIFO or device swapped in is refused
/// too. Errors start with `path`.
llvm::Expected<std::string> readRegularFile(llvm::StringRef path,
                                            uint64_t maxBytes);

/// Closes a native file handle when it goes out of scope.
class ScopedFile {
public:
  explicit ScopedFile(llvm::sys::fs::file_t handle) : handle(handle) {}
  ScopedFile(ScopedFile &&other)
      : handle(std::exchange(other.handle, llvm::sys::fs::kInvalidFile)) {}
  ScopedFile(const ScopedFile &) = delete;
  ScopedFile &operator=(const ScopedFile &) = delete;
  ScopedFile &operator=(ScopedFile &&) = delete;
  /// Hands the handle over to the caller, who closes it.
  llvm::sys::fs::file_t release() {
    return std::exchange(handle, llvm::sys::fs::kInvalidFile);
  }
  ~ScopedFile() {
    if (handle != llvm::sys::fs::kInvalidFile)
      llvm::sys::fs::closeFile(handle);
  }
  llvm::sys::fs::file_t get() const { return handle; }

private:
  llvm::sys::fs::file_t handle;
};

/// Opens `path` for positioned reads (large files: checkpoints); it must be
/// a regular file, checked before opening (opening a FIFO would block) and
/// again on what was opened. Returns the handle and the size of what was
/// opened. Errors start with `path`.
llvm::Expected<std::pair<ScopedFile, uint64_t>>
openRegularFile(const llvm::Twine &path);

/// Reads exactly `dest.size()` bytes of the open file `file` (at `path`)
/// from `offset`: positioned reads, retried on short ones. Errors start
/// with `path` and say what was being read (`what`).
llvm::Error readFileRange(llvm::sys::fs::file_t file, uint64_t offset,
                          llvm::MutableArrayRef<char> dest,
                          llvm::StringRef path, const llvm::Twine &what);

} // namespace mlir::moe

#endif // MOE_SUPPORT_REGULARFILE_H
