//===- OutputStreams.cpp - Streams of the checkpoint writers --------------===//

#include "moe/Support/OutputStreams.h"

#include "moe/Support/Errors.h"

using namespace mlir::moe;

OutputFileStream::~OutputFileStream() {
  if (!closed)
    out.close();
  out.clear_error();
}

llvm::Error OutputFileStream::takeError(const llvm::Twine &prefix) {
  if (!out.has_error())
    return llvm::Error::success();
  std::error_code ec = out.error();
  out.clear_error();
  return makeError(prefix + "cannot write: " + ec.message());
}

llvm::Error OutputFileStream::close(const llvm::Twine &path) {
  closed = true;
  out.close();
  return takeError(path + ": ");
}
