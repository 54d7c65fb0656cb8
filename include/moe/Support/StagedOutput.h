//===- StagedOutput.h - Outputs that appear whole or not at all -*- C++ -*-===//
//
// Every file or directory a tool of ours writes goes through a staged
// output: it is written into a staging directory beside its destination (the
// same file system, so that publishing is a rename) and renamed into place
// once complete. Until then nothing at the destination changes; an error,
// or a return without publishing, removes the staging directory; a signal
// (SIGINT, SIGTERM, SIGHUP, or a crash) removes every file staged so far
// (the files are registered with LLVM's RemoveFileOnSignal, the one signal
// strategy of the project). What a SIGKILL leaves, an empty or partial
// staging directory named after its destination and the process that made
// it, is removed by the next staged output of the same destination once that
// process is gone.
//
//===----------------------------------------------------------------------===//

#ifndef MOE_SUPPORT_STAGEDOUTPUT_H
#define MOE_SUPPORT_STAGEDOUTPUT_H

#include "llvm/ADT/ArrayRef.h"
#include "llvm/ADT/StringRef.h"
#include "llvm/Support/Error.h"

#include <string>
#include <vector>

namespace mlir::moe {

class StagedOutput {
public:
  /// Stages outputs for `directory` (which must exist): files that will be
  /// published into it, or a directory `directory/name` that will be
  /// published as a whole. The staging directory is
  /// `directory/.<name>.moe-staging-<pid>-<random>`.
  static llvm::Expected<StagedOutput> create(llvm::StringRef directory,
                                             llvm::StringRef name);

  StagedOutput(StagedOutput &&other);
  StagedOutput(const StagedOutput &) = delete;
  StagedOutput &operator=(const StagedOutput &) = delete;
  StagedOutput &operator=(StagedOutput &&) = delete;
  /// Removes the staging directory and what is in it, unless published.
  ~StagedOutput();

  /// The staging directory.
  llvm::StringRef path() const { return staging; }
  /// The path of file `name` in the staging directory, registered for
  /// removal if a signal arrives before it is published. Every file written
  /// into the staging area is named through this.
  std::string file(llvm::StringRef name);
  /// Writes file `name` of the staging directory with `contents`.
  llvm::Error writeFile(llvm::StringRef name, llvm::StringRef contents);

  /// Renames the staged files `names` into the output directory. A file
  /// there of the same name is replaced only when `replace` is set (and never
  /// a directory); otherwise it is an error and nothing is published.
  llvm::Error publishFiles(llvm::ArrayRef<std::string> names, bool replace);

  /// Renames the staging directory to `directory/name`. An existing entry of
  /// that name (a directory, a file, or a symbolic link, which is replaced
  /// itself, never followed) is replaced only when `replace` is set;
  /// otherwise it is an error. The replaced entry is moved aside first, so
  /// that the destination is always either the old or the new content.
  llvm::Error publishDirectory(bool replace);

  /// `error` with the staging directory in its message replaced by `where`
  /// its files go (the destination or its directory), so that a message
  /// names a path the user knows, not one that is gone once it is printed.
  llvm::Error nameDestination(llvm::Error error, llvm::StringRef where) const;

  /// `directory/name`: where publishDirectory puts the staging directory.
  std::string destination() const;

private:
  StagedOutput(std::string directory, std::string name, std::string staging)
      : directory(std::move(directory)), name(std::move(name)),
        staging(std::move(staging)) {}

  std::string directory, name, staging;
  std::vector<std::string> registered;
  bool published = false;
};

/// Checks `destination`, a directory an export is to publish (with
/// publishDirectory): a file there is refused, and a non-empty directory
/// without `force`. Returns whether publishing may replace what is there:
/// with `force`, or when it is an empty directory.
llvm::Expected<bool> checkOutputDirectory(llvm::StringRef destination,
                                          bool force);

} // namespace mlir::moe

#endif // MOE_SUPPORT_STAGEDOUTPUT_H
