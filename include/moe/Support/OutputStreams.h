//===- OutputStreams.h - Streams of the checkpoint writers ------*- C++ -*-===//
//
// The streams every checkpoint writer (safetensors, GGUF) writes through: a
// file stream that reports write errors instead of aborting, and a counter
// that checks a producer wrote the bytes it promised.
//
//===----------------------------------------------------------------------===//

#ifndef MOE_SUPPORT_OUTPUTSTREAMS_H
#define MOE_SUPPORT_OUTPUTSTREAMS_H

#include "llvm/Support/Error.h"
#include "llvm/Support/raw_ostream.h"

namespace mlir::moe {

/// A raw_fd_ostream over a file being written that never aborts the
/// process: a raw_fd_ostream destroyed with an error set calls
/// report_fatal_error, and its destructor's flush can set one (a full disk)
/// on the error paths.
class OutputFileStream {
public:
  explicit OutputFileStream(int fd) : out(fd, /*shouldClose=*/true) {}
  OutputFileStream(const OutputFileStream &) = delete;
  OutputFileStream &operator=(const OutputFileStream &) = delete;
  ~OutputFileStream();

  /// The write error seen so far, if any, as an Error starting `prefix`.
  llvm::Error takeError(const llvm::Twine &prefix);

  /// Flushes and closes the file, reporting any write error seen so far.
  llvm::Error close(const llvm::Twine &path);

  llvm::raw_fd_ostream out;

private:
  bool closed = false;
};

/// Forwards writes to `inner` and counts their bytes.
class CountingStream : public llvm::raw_ostream {
public:
  explicit CountingStream(llvm::raw_ostream &inner) : inner(inner) {
    SetUnbuffered();
  }
  uint64_t count() const { return written; }

private:
  void write_impl(const char *data, size_t size) override {
    inner.write(data, size);
    written += size;
  }
  uint64_t current_pos() const override { return written; }

  llvm::raw_ostream &inner;
  uint64_t written = 0;
};

} // namespace mlir::moe

#endif // MOE_SUPPORT_OUTPUTSTREAMS_H
