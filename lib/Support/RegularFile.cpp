//===- RegularFile.cpp - Reading a file that must be a regular one --------===//

#include "moe/Support/RegularFile.h"
#include "moe/Support/Errors.h"

#include "llvm/ADT/ScopeExit.h"
#include "llvm/ADT/SmallString.h"
#include "llvm/ADT/Twine.h"

#include <cerrno>
#include <cstring>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

llvm::Expected<std::string> mlir::moe::readRegularFile(llvm::StringRef path,
                                                       uint64_t maxBytes) {
  llvm::SmallString<256> cPath(path);
  // O_NONBLOCK: opening a FIFO with no writer must not wait for one.
  int fd = ::open(cPath.c_str(), O_RDONLY | O_NONBLOCK | O_CLOEXEC);
  if (fd < 0)
    return makeError(path + ": cannot read: " + std::strerror(errno));
  llvm::scope_exit closeFd([fd] { ::close(fd); });
  struct stat status;
  if (::fstat(fd, &status) != 0)
    return makeError(path + ": cannot read: " + std::strerror(errno));
  if (!S_ISREG(status.st_mode))
    return makeError(path + ": cannot read: not a regular file");
  uint64_t size = status.st_size;
  if (size > maxBytes)
    return makeError(path + ": " + llvm::Twine(size) +
                     " bytes exceed the limit of " + llvm::Twine(maxBytes) +
                     " for this file");
  std::string contents(size, '\0');
  uint64_t done = 0;
  while (done < size) {
    ssize_t got = ::pread(fd, contents.data() + done, size - done, done);
    if (got < 0 && errno == EINTR)
      continue;
    if (got < 0)
      return makeError(path + ": cannot read: " + std::strerror(errno));
    if (got == 0)
      return makeError(path + ": cannot read: the file shrank while read");
    done += got;
  }
  return contents;
}

llvm::Error mlir::moe::readFileRange(llvm::sys::fs::file_t file,
                                     uint64_t offset,
                                     llvm::MutableArrayRef<char> dest,
                                     llvm::StringRef path,
                                     const llvm::Twine &what) {
  while (!dest.empty()) {
    llvm::Expected<size_t> count =
        llvm::sys::fs::readNativeFileSlice(file, dest, offset);
    if (!count)
      return makeError(path + ": cannot read " + what + ": " +
                       llvm::toString(count.takeError()));
    if (*count == 0)
      return makeError(path + ": file ended while reading " + what +
                       " (changed since opened?)");
    dest = dest.drop_front(*count);
    offset += *count;
  }
  return llvm::Error::success();
}

llvm::Expected<std::pair<mlir::moe::ScopedFile, uint64_t>>
mlir::moe::openRegularFile(const llvm::Twine &path) {
  std::string name = path.str();
  llvm::sys::fs::file_status status;
  if (std::error_code ec = llvm::sys::fs::status(name, status))
    return makeError(name + ": " + ec.message());
  if (status.type() != llvm::sys::fs::file_type::regular_file)
    return makeError(name + ": not a regular file");
  llvm::Expected<llvm::sys::fs::file_t> file =
      llvm::sys::fs::openNativeFileForRead(name);
  if (!file)
    return makeError(name + ": " + llvm::toString(file.takeError()));
  ScopedFile scoped(*file);
  // The size of what was opened, not of what the name pointed to before.
  if (std::error_code ec = llvm::sys::fs::status(scoped.get(), status))
    return makeError(name + ": " + ec.message());
  if (status.type() != llvm::sys::fs::file_type::regular_file)
    return makeError(name + ": not a regular file");
  return std::make_pair(std::move(scoped), status.getSize());
}
