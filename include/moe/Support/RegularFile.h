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

namespace mlir::moe {

/// The contents of `path`, which must be a regular file (or a symlink to
/// one) of at most `maxBytes` bytes. The file is opened without blocking
/// and checked after opening, so a FIFO or device swapped in is refused
/// too. Errors start with `path`.
llvm::Expected<std::string> readRegularFile(llvm::StringRef path,
                                            uint64_t maxBytes);

/// Reads exactly `dest.size()` bytes of the open file `file` (at `path`)
/// from `offset`: positioned reads, retried on short ones. Errors start
/// with `path` and say what was being read (`what`).
llvm::Error readFileRange(llvm::sys::fs::file_t file, uint64_t offset,
                          llvm::MutableArrayRef<char> dest,
                          llvm::StringRef path, const llvm::Twine &what);

} // namespace mlir::moe

#endif // MOE_SUPPORT_REGULARFILE_H
