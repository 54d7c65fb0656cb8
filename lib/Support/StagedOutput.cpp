//===- StagedOutput.cpp - Outputs that appear whole or not at all ---------===//

#include "moe/Support/StagedOutput.h"

#include "moe/Support/Errors.h"

#include "llvm/ADT/SmallString.h"
#include "llvm/ADT/StringExtras.h"
#include "llvm/Support/FileSystem.h"
#include "llvm/Support/Path.h"
#include "llvm/Support/Process.h"
#include "llvm/Support/Signals.h"
#include "llvm/Support/raw_ostream.h"

#include <cerrno>
#include <csignal>
#include <cstdio>
#include <fcntl.h>
#include <sys/types.h>
#include <unistd.h>

using namespace llvm;
using namespace mlir::moe;
namespace fs = llvm::sys::fs;
namespace path = llvm::sys::path;

/// `.<name>.moe-staging-` and `.<name>.moe-replaced-`: the prefixes of what a
/// staged output makes beside its destination.
static std::string stagingPrefix(StringRef name) {
  return ("." + name + ".moe-staging-").str();
}
static std::string replacedPrefix(StringRef name) {
  return ("." + name + ".moe-replaced-").str();
}

/// Removes `target` and, when it is a directory (not a link to one), what
/// is in it. Symbolic links are removed themselves, never followed.
static void removeTree(StringRef target) {
  fs::file_status status;
  if (fs::status(target, status, /*Follow=*/false))
    return;
  if (status.type() == fs::file_type::directory_file) {
    std::error_code ec;
    std::vector<std::string> entries;
    for (fs::directory_iterator it(target, ec, /*FollowSymlinks=*/false), end;
         !ec && it != end; it.increment(ec))
      entries.push_back(it->path());
    for (const std::string &entry : entries)
      removeTree(entry);
  }
  (void)fs::remove(target);
}

/// Removes the staging and replaced entries of `name` in `directory` that
/// processes which no longer exist left behind (a SIGKILL, a power cut).
static void removeStaleEntries(StringRef directory, StringRef name) {
  std::error_code ec;
  std::vector<std::string> stale;
  for (fs::directory_iterator it(directory, ec, /*FollowSymlinks=*/false), end;
       !ec && it != end; it.increment(ec)) {
    StringRef entry = path::filename(it->path());
    if (!entry.consume_front(stagingPrefix(name)) &&
        !entry.consume_front(replacedPrefix(name)))
      continue;
    unsigned pid;
    if (entry.split('-').first.getAsInteger(10, pid) || pid == 0)
      continue;
    // kill(pid, 0) fails with ESRCH once the process is gone.
    if (::kill(pid_t(pid), 0) != 0 && errno == ESRCH)
      stale.push_back(it->path());
  }
  for (const std::string &entry : stale)
    removeTree(entry);
}

/// `<prefix><pid>-<random>` in `directory`.
static std::string uniqueName(StringRef directory, StringRef prefix) {
  SmallString<256> result(directory);
  path::append(result,
               prefix + Twine(::getpid()) + "-" +
                   llvm::utohexstr(llvm::sys::Process::GetRandomNumber()));
  return result.str().str();
}

/// rename(2) that fails instead of replacing an existing `to`.
static std::error_code renameNoReplace(const std::string &from,
                                       const std::string &to) {
#ifdef RENAME_NOREPLACE
  if (::renameat2(AT_FDCWD, from.c_str(), AT_FDCWD, to.c_str(),
                  RENAME_NOREPLACE) == 0)
    return {};
  return std::error_code(errno, std::generic_category());
#else
  if (fs::exists(to))
    return std::make_error_code(std::errc::file_exists);
  return fs::rename(from, to);
#endif
}

llvm::Expected<StagedOutput> StagedOutput::create(StringRef directory,
                                                  StringRef name) {
  std::string dir = directory.empty() ? "." : directory.str();
  if (!fs::is_directory(dir))
    return makeError(dir + ": " +
                     (fs::exists(dir) ? "not a directory" : "does not exist"));
  removeStaleEntries(dir, name);
  std::error_code ec;
  for (int attempt = 0; attempt < 128; ++attempt) {
    std::string candidate = uniqueName(dir, stagingPrefix(name));
    ec = fs::create_directory(
        candidate, /*IgnoreExisting=*/false,
        fs::perms::owner_all | fs::perms::group_read | fs::perms::group_exe |
            fs::perms::others_read | fs::perms::others_exe);
    if (!ec)
      return StagedOutput(dir, name.str(), candidate);
    if (ec != std::errc::file_exists)
      break;
  }
  return makeError(dir + ": cannot create a staging directory for '" + name +
                   "': " + ec.message());
}

StagedOutput::StagedOutput(StagedOutput &&other)
    : directory(std::move(other.directory)), name(std::move(other.name)),
      staging(std::move(other.staging)),
      registered(std::move(other.registered)), published(other.published) {
  other.published = true;
}

StagedOutput::~StagedOutput() {
  for (const std::string &file : registered)
    llvm::sys::DontRemoveFileOnSignal(file);
  if (!published)
    removeTree(staging);
}

std::string StagedOutput::destination() const {
  SmallString<256> result(directory);
  path::append(result, name);
  return result.str().str();
}

std::string StagedOutput::file(StringRef fileName) {
  SmallString<256> result(staging);
  path::append(result, fileName);
  llvm::sys::RemoveFileOnSignal(result);
  registered.push_back(result.str().str());
  return result.str().str();
}

llvm::Error StagedOutput::writeFile(StringRef fileName, StringRef contents) {
  std::string target = file(fileName);
  std::error_code ec;
  llvm::raw_fd_ostream out(target, ec, fs::OF_None);
  if (ec)
    return makeError(target + ": cannot create: " + ec.message());
  out << contents;
  out.close();
  if (out.has_error()) {
    std::error_code error = out.error();
    out.clear_error();
    return makeError(target + ": cannot write: " + error.message());
  }
  return llvm::Error::success();
}

llvm::Error StagedOutput::publishFiles(ArrayRef<std::string> names,
                                       bool replace) {
  std::vector<std::pair<std::string, std::string>> moves;
  for (const std::string &fileName : names) {
    SmallString<256> from(staging), to(directory);
    path::append(from, fileName);
    path::append(to, fileName);
    fs::file_status status;
    if (!fs::status(to, status, /*Follow=*/false)) {
      if (status.type() == fs::file_type::directory_file)
        return makeError(to + ": is a directory");
      if (!replace)
        return makeError(to + ": exists (--force replaces it)");
    }
    moves.emplace_back(from.str().str(), to.str().str());
  }
  for (auto &[from, to] : moves) {
    std::error_code ec =
        replace ? fs::rename(from, to) : renameNoReplace(from, to);
    if (ec)
      return makeError(to + ": cannot rename into place: " + ec.message());
  }
  return llvm::Error::success();
}

llvm::Error StagedOutput::publishDirectory(bool replace) {
  std::string target = destination();
  // Claims the destination in one step when nothing is there; a directory
  // that appeared meanwhile, even an empty one, is never replaced unasked.
  std::error_code ec = renameNoReplace(staging, target);
  if (!ec) {
    published = true;
    return llvm::Error::success();
  }
  if (ec != std::errc::file_exists && ec != std::errc::directory_not_empty)
    return makeError(target + ": cannot rename into place: " + ec.message());
  if (!replace)
    return makeError(target + ": exists (--force replaces it)");
  std::string aside = uniqueName(directory, replacedPrefix(name));
  if (std::error_code error = fs::rename(target, aside))
    return makeError(target + ": cannot move aside: " + error.message());
  if (std::error_code error = renameNoReplace(staging, target)) {
    (void)fs::rename(aside, target);
    return makeError(target + ": cannot rename into place: " + error.message());
  }
  published = true;
  removeTree(aside);
  return llvm::Error::success();
}
