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

#include <atomic>
#include <cerrno>
#include <climits>
#include <csignal>
#include <cstdio>
#include <cstring>
#include <fcntl.h>
#include <iterator>
#include <mutex>
#include <pthread.h>
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

//===----------------------------------------------------------------------===//
// Removing the staging directories on a signal. LLVM's handler unlinks the
// registered files but leaves directories, so the staging directories of the
// process are kept in fixed slots that a handler reads without locks or
// allocation, and removed (inner ones first) once LLVM has removed the files.
//===----------------------------------------------------------------------===//

static constexpr int kSignalSlots = 32;
enum SlotState : int { SlotFree, SlotClaimed, SlotReady };
static std::atomic<int> slotStates[kSignalSlots];
static char slotPaths[kSignalSlots][PATH_MAX];
static std::atomic<int> caughtSignal{0};
static const int interruptSignals[] = {SIGHUP, SIGINT, SIGTERM};
static struct sigaction llvmActions[std::size(interruptSignals)];

/// rmdir(2) of every registered staging directory, repeated while one goes,
/// so that a staging directory inside another goes first. Async-signal-safe.
static void removeStagingDirectories() {
  for (bool progress = true; progress;) {
    progress = false;
    for (int slot = 0; slot < kSignalSlots; ++slot)
      if (slotStates[slot].load() == SlotReady &&
          ::rmdir(slotPaths[slot]) == 0) {
        slotStates[slot].store(SlotClaimed);
        progress = true;
      }
  }
}

/// LLVM's interrupt function: runs after LLVM removed the files and restored
/// the default actions, instead of its re-raise, so it raises the signal.
static void removeStagingOnInterrupt() {
  removeStagingDirectories();
  int signal = caughtSignal.load();
  ::raise(signal ? signal : SIGTERM);
}

static void removeStagingOnCrash(void *) { removeStagingDirectories(); }

/// Put before LLVM's handler only to tell the interrupt function which
/// signal to raise again.
static void recordSignal(int signal, siginfo_t *info, void *context) {
  caughtSignal.store(signal);
  for (size_t i = 0; i < std::size(interruptSignals); ++i) {
    if (interruptSignals[i] != signal)
      continue;
    const struct sigaction &llvm = llvmActions[i];
    if (llvm.sa_flags & SA_SIGINFO)
      llvm.sa_sigaction(signal, info, context);
    else if (llvm.sa_handler != SIG_DFL && llvm.sa_handler != SIG_IGN)
      llvm.sa_handler(signal);
  }
}

static void installSignalCleanup() {
  static std::once_flag once;
  std::call_once(once, [] {
    // Registers LLVM's handlers too, so that they can be chained below.
    llvm::sys::SetInterruptFunction(removeStagingOnInterrupt);
    llvm::sys::AddSignalHandler(removeStagingOnCrash, nullptr);
    for (size_t i = 0; i < std::size(interruptSignals); ++i) {
      struct sigaction current;
      if (::sigaction(interruptSignals[i], nullptr, &current) != 0 ||
          (!(current.sa_flags & SA_SIGINFO) &&
           (current.sa_handler == SIG_DFL || current.sa_handler == SIG_IGN)))
        continue;
      llvmActions[i] = current;
      struct sigaction chained = current;
      chained.sa_flags |= SA_SIGINFO;
      chained.sa_sigaction = recordSignal;
      ::sigaction(interruptSignals[i], &chained, nullptr);
    }
  });
}

/// Registers `directory` for removal on a signal; false when every slot is
/// taken (then only the next run of the destination removes it).
static bool removeDirectoryOnSignal(const std::string &directory) {
  if (directory.size() >= PATH_MAX)
    return false;
  installSignalCleanup();
  for (int slot = 0; slot < kSignalSlots; ++slot) {
    int expected = SlotFree;
    if (!slotStates[slot].compare_exchange_strong(expected, SlotClaimed))
      continue;
    std::memcpy(slotPaths[slot], directory.c_str(), directory.size() + 1);
    slotStates[slot].store(SlotReady);
    return true;
  }
  return false;
}

/// Whether `directory` is a staging directory of this process.
static bool isStagingDirectory(StringRef directory) {
  for (int slot = 0; slot < kSignalSlots; ++slot)
    if (slotStates[slot].load() == SlotReady && directory == slotPaths[slot])
      return true;
  return false;
}

static void dontRemoveDirectoryOnSignal(const std::string &directory) {
  for (int slot = 0; slot < kSignalSlots; ++slot) {
    int expected = SlotReady;
    if (slotPaths[slot] == directory &&
        slotStates[slot].compare_exchange_strong(expected, SlotClaimed))
      slotStates[slot].store(SlotFree);
  }
}

namespace {
/// Holds SIGINT, SIGTERM and SIGHUP back while it lives (they are delivered
/// once it is gone), so that what it guards completes.
class InterruptsBlocked {
public:
  InterruptsBlocked() {
    sigset_t interrupts;
    sigemptyset(&interrupts);
    for (int signal : interruptSignals)
      sigaddset(&interrupts, signal);
    ::pthread_sigmask(SIG_BLOCK, &interrupts, &previous);
  }
  ~InterruptsBlocked() { ::pthread_sigmask(SIG_SETMASK, &previous, nullptr); }

private:
  sigset_t previous;
};
} // namespace

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
    // Registered first: a signal right after the mkdir still removes it.
    bool registered = removeDirectoryOnSignal(candidate);
    ec = fs::create_directory(
        candidate, /*IgnoreExisting=*/false,
        fs::perms::owner_all | fs::perms::group_read | fs::perms::group_exe |
            fs::perms::others_read | fs::perms::others_exe);
    if (!ec)
      return StagedOutput(dir, name.str(), candidate);
    if (registered)
      dontRemoveDirectoryOnSignal(candidate);
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
  other.staging.clear();
}

StagedOutput::~StagedOutput() {
  for (const std::string &file : registered)
    llvm::sys::DontRemoveFileOnSignal(file);
  if (!published)
    removeTree(staging);
  // After the removal: a signal meanwhile still removes what is left.
  if (!staging.empty())
    dontRemoveDirectoryOnSignal(staging);
}

llvm::Error StagedOutput::nameDestination(llvm::Error error,
                                          StringRef where) const {
  if (!error)
    return error;
  std::string message = llvm::toString(std::move(error));
  for (size_t at = message.find(staging); at != std::string::npos;
       at = message.find(staging, at + where.size()))
    message.replace(at, staging.size(), where.str());
  return makeError(message);
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
  // Files published into another staging directory (the shards of an
  // export staged as a whole) stay removable on a signal there.
  bool intoStaging = isStagingDirectory(directory);
  // SIGINT, SIGTERM and SIGHUP wait until every file is in place: a model
  // file is never left beside the data of another export.
  InterruptsBlocked blocked;
  for (auto &[from, to] : moves) {
    if (intoStaging)
      llvm::sys::RemoveFileOnSignal(to);
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
  // SIGINT, SIGTERM and SIGHUP wait until the replaced entry is gone (its
  // files are not staged, no handler would remove them).
  InterruptsBlocked blocked;
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

llvm::Expected<bool>
mlir::moe::checkOutputDirectory(llvm::StringRef destination, bool force) {
  llvm::sys::fs::file_status status;
  if (llvm::sys::fs::status(destination, status))
    return force;
  if (status.type() != llvm::sys::fs::file_type::directory_file)
    return makeError(destination + ": exists and is not a directory");
  std::error_code ec;
  llvm::sys::fs::directory_iterator it(destination, ec);
  if (ec)
    return makeError(destination + ": " + ec.message());
  bool empty = it == llvm::sys::fs::directory_iterator();
  if (!empty && !force)
    return makeError(destination +
                     ": directory is not empty (--force replaces it)");
  return true;
}
