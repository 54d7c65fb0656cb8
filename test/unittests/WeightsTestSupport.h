//===- WeightsTestSupport.h - Helpers of the weights unit tests -*- C++ -*-===//

#ifndef MOE_TEST_UNITTESTS_WEIGHTSTESTSUPPORT_H
#define MOE_TEST_UNITTESTS_WEIGHTSTESTSUPPORT_H

#include "llvm/ADT/STLExtras.h"
#include "llvm/ADT/SmallString.h"
#include "llvm/Support/Endian.h"
#include "llvm/Support/Error.h"
#include "llvm/Support/FileSystem.h"
#include "llvm/Support/MemoryBuffer.h"
#include "llvm/Support/Path.h"
#include "llvm/Support/raw_ostream.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

namespace moe_test {

/// Fails the test unless `text` contains `part`, showing both.
#define EXPECT_CONTAINS(text, part)                                            \
  EXPECT_NE(std::string(text).find(part), std::string::npos)                   \
      << "  text: " << (text) << "\n  part: " << (part)

/// A fresh directory, removed with everything in it at scope exit.
class TempDir {
public:
  TempDir() {
    std::error_code ec =
        llvm::sys::fs::createUniqueDirectory("moe-weights-test", root);
    EXPECT_FALSE(ec) << ec.message();
  }
  ~TempDir() { llvm::sys::fs::remove_directories(root); }
  TempDir(const TempDir &) = delete;
  TempDir &operator=(const TempDir &) = delete;

  std::string path() const { return root.str().str(); }
  std::string file(llvm::StringRef name) const {
    llvm::SmallString<128> result(root);
    llvm::sys::path::append(result, name);
    return result.str().str();
  }
  /// Names of the entries, hidden ones included, sorted.
  std::vector<std::string> list(llvm::StringRef sub = "") const {
    std::vector<std::string> names;
    std::error_code ec;
    std::string dir = sub.empty() ? path() : file(sub);
    for (llvm::sys::fs::directory_iterator it(dir, ec), end; !ec && it != end;
         it.increment(ec))
      names.push_back(llvm::sys::path::filename(it->path()).str());
    llvm::sort(names);
    return names;
  }

private:
  llvm::SmallString<128> root;
};

inline void writeFile(llvm::StringRef path, llvm::StringRef contents) {
  std::error_code ec;
  llvm::raw_fd_ostream out(path, ec);
  ASSERT_FALSE(ec) << path.str() << ": " << ec.message();
  out << contents;
}

inline std::string readFile(llvm::StringRef path) {
  auto buffer = llvm::MemoryBuffer::getFile(path, /*IsText=*/false,
                                            /*RequiresNullTerminator=*/false);
  if (!buffer)
    return "<cannot read " + path.str() + ">";
  return (*buffer)->getBuffer().str();
}

/// An 8-byte little-endian header length, the header, then the data.
inline std::string safetensorsBytes(llvm::StringRef header,
                                    llvm::StringRef data = "") {
  char length[8];
  llvm::support::endian::write64le(length, header.size());
  return std::string(length, 8) + header.str() + data.str();
}

/// A string literal with its embedded NULs.
template <size_t N> std::string bytesOf(const char (&literal)[N]) {
  return std::string(literal, N - 1);
}

inline std::string errorText(llvm::Error error) {
  if (!error)
    return "<success>";
  return llvm::toString(std::move(error));
}
template <typename T> std::string errorText(llvm::Expected<T> &&value) {
  if (value)
    return "<success>";
  return llvm::toString(value.takeError());
}

} // namespace moe_test

#endif // MOE_TEST_UNITTESTS_WEIGHTSTESTSUPPORT_H
