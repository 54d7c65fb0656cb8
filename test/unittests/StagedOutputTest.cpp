//===- StagedOutputTest.cpp - Outputs that appear whole or not at all -----===//

#include "moe/Support/StagedOutput.h"

#include "WeightsTestSupport.h"

#include <sys/wait.h>
#include <unistd.h>

using namespace moe_test;
using mlir::moe::StagedOutput;

namespace {

StagedOutput stage(const TempDir &dir, llvm::StringRef name) {
  llvm::Expected<StagedOutput> staged = StagedOutput::create(dir.path(), name);
  if (!staged) {
    ADD_FAILURE() << llvm::toString(staged.takeError());
    std::abort();
  }
  return std::move(*staged);
}

std::string errorOf(llvm::Error error) {
  return error ? llvm::toString(std::move(error)) : "<no error>";
}

/// A pid no process has: a child that has exited and been reaped.
pid_t deadPid() {
  pid_t child = ::fork();
  if (child == 0)
    ::_exit(0);
  int status;
  ::waitpid(child, &status, 0);
  return child;
}

TEST(StagedOutputTest, PublishesFilesAndLeavesNoStagingBehind) {
  TempDir dir;
  {
    StagedOutput staged = stage(dir, "model.onnx");
    EXPECT_EQ(errorOf(staged.writeFile("model.onnx", "graph")), "<no error>");
    EXPECT_EQ(errorOf(staged.writeFile("model.onnx.data", "weights")),
              "<no error>");
    // Nothing is visible at the destination before publishing.
    EXPECT_EQ(dir.list().size(), 1u);
    EXPECT_EQ(errorOf(staged.publishFiles({"model.onnx.data", "model.onnx"},
                                          /*replace=*/false)),
              "<no error>");
  }
  EXPECT_EQ(dir.list(),
            (std::vector<std::string>{"model.onnx", "model.onnx.data"}));
  EXPECT_EQ(readFile(dir.file("model.onnx")), "graph");
}

TEST(StagedOutputTest, UnpublishedOutputIsRemoved) {
  TempDir dir;
  {
    StagedOutput staged = stage(dir, "out");
    EXPECT_EQ(errorOf(staged.writeFile("a", "x")), "<no error>");
  }
  EXPECT_TRUE(dir.list().empty());
}

TEST(StagedOutputTest, ExistingFileIsKeptWithoutReplace) {
  TempDir dir;
  writeFile(dir.file("model.onnx"), "old");
  {
    StagedOutput staged = stage(dir, "model.onnx");
    EXPECT_EQ(errorOf(staged.writeFile("model.onnx.data", "new data")),
              "<no error>");
    EXPECT_EQ(errorOf(staged.writeFile("model.onnx", "new")), "<no error>");
    // The check covers every file before any is moved: the data file is
    // not published either.
    EXPECT_EQ(errorOf(staged.publishFiles({"model.onnx.data", "model.onnx"},
                                          /*replace=*/false)),
              dir.file("model.onnx") + ": exists (--force replaces it)");
  }
  EXPECT_EQ(dir.list(), std::vector<std::string>{"model.onnx"});
  EXPECT_EQ(readFile(dir.file("model.onnx")), "old");
}

TEST(StagedOutputTest, DirectoryIsNeverReplacedUnasked) {
  TempDir dir;
  ASSERT_FALSE(llvm::sys::fs::create_directory(dir.file("out")));
  StagedOutput staged = stage(dir, "out");
  EXPECT_EQ(errorOf(staged.writeFile("config.json", "{}")), "<no error>");
  // Even an empty directory that appeared is not replaced.
  EXPECT_EQ(errorOf(staged.publishDirectory(/*replace=*/false)),
            dir.file("out") + ": exists (--force replaces it)");
  EXPECT_TRUE(dir.list("out").empty());
}

TEST(StagedOutputTest, ReplacedSymlinkIsNeverFollowed) {
  TempDir dir;
  ASSERT_FALSE(llvm::sys::fs::create_directory(dir.file("precious")));
  writeFile(dir.file("precious/keep.txt"), "keep");
  ASSERT_FALSE(
      llvm::sys::fs::create_link(dir.file("precious"), dir.file("out")));
  {
    StagedOutput staged = stage(dir, "out");
    EXPECT_EQ(errorOf(staged.writeFile("config.json", "{}")), "<no error>");
    EXPECT_EQ(errorOf(staged.publishDirectory(/*replace=*/true)), "<no error>");
  }
  // The link was replaced by the output; what it pointed to is untouched.
  EXPECT_EQ(dir.list(), (std::vector<std::string>{"out", "precious"}));
  EXPECT_FALSE(llvm::sys::fs::is_symlink_file(dir.file("out")));
  EXPECT_EQ(dir.list("out"), std::vector<std::string>{"config.json"});
  EXPECT_EQ(readFile(dir.file("precious/keep.txt")), "keep");
}

TEST(StagedOutputTest, ReplacedDirectoryIsSwappedWhole) {
  TempDir dir;
  ASSERT_FALSE(llvm::sys::fs::create_directory(dir.file("out")));
  writeFile(dir.file("out/old.txt"), "old");
  {
    StagedOutput staged = stage(dir, "out");
    EXPECT_EQ(errorOf(staged.writeFile("new.txt", "new")), "<no error>");
    EXPECT_EQ(errorOf(staged.publishDirectory(/*replace=*/true)), "<no error>");
  }
  EXPECT_EQ(dir.list(), std::vector<std::string>{"out"});
  EXPECT_EQ(dir.list("out"), std::vector<std::string>{"new.txt"});
}

TEST(StagedOutputTest, StaleStagingOfDeadProcessesIsRemoved) {
  TempDir dir;
  std::string dead = ".out.moe-staging-" + std::to_string(deadPid()) + "-1";
  std::string alive = ".out.moe-staging-" + std::to_string(::getpid()) + "-2";
  std::string other = ".other.moe-staging-" + std::to_string(deadPid()) + "-3";
  for (const std::string &name : {dead, alive, other}) {
    ASSERT_FALSE(llvm::sys::fs::create_directory(dir.file(name)));
    writeFile(dir.file(name + "/partial"), "x");
  }
  {
    StagedOutput staged = stage(dir, "out");
    EXPECT_EQ(errorOf(staged.publishDirectory(/*replace=*/false)),
              "<no error>");
  }
  // Only the dead process's staging of this destination goes; a live
  // process's and another destination's stay.
  EXPECT_EQ(dir.list(), (std::vector<std::string>{other, alive, "out"}));
}

TEST(StagedOutputTest, MissingDirectoryIsNamed) {
  TempDir dir;
  llvm::Expected<StagedOutput> staged =
      StagedOutput::create(dir.file("missing"), "out");
  ASSERT_FALSE(static_cast<bool>(staged));
  EXPECT_CONTAINS(llvm::toString(staged.takeError()),
                  dir.file("missing") + ": does not exist");
}

} // namespace

// SIGTERM while staging (an export staged as a whole, with its shards staged
// inside it and published into it): the process dies of the signal and
// nothing staged is left, directories included.
TEST(StagedOutputTest, SignalRemovesStagingDirectories) {
  TempDir dir;
  pid_t child = ::fork();
  if (child == 0) {
    llvm::Expected<StagedOutput> outer =
        StagedOutput::create(dir.path(), "out");
    if (!outer || outer->writeFile("config.json", "{}"))
      ::_exit(1);
    llvm::Expected<StagedOutput> inner =
        StagedOutput::create(outer->path(), "model");
    if (!inner || inner->writeFile("model.safetensors", "weights") ||
        inner->publishFiles({"model.safetensors"}, /*replace=*/false))
      ::_exit(1);
    llvm::Expected<StagedOutput> pending =
        StagedOutput::create(outer->path(), "more");
    if (!pending || pending->writeFile("more.safetensors", "weights"))
      ::_exit(1);
    ::raise(SIGTERM);
    ::_exit(2);
  }
  int status;
  ASSERT_EQ(::waitpid(child, &status, 0), child);
  ASSERT_TRUE(WIFSIGNALED(status)) << "exit status " << WEXITSTATUS(status);
  EXPECT_EQ(WTERMSIG(status), SIGTERM);
  EXPECT_EQ(dir.list(), std::vector<std::string>{});
}

TEST(StagedOutputTest, MessagesNameTheDestination) {
  TempDir dir;
  StagedOutput staged = stage(dir, "out");
  std::string stagingPath = staged.path().str();
  std::string message = errorOf(staged.nameDestination(
      llvm::createStringError(stagingPath + "/a: cannot write: full; " +
                              stagingPath + "/b"),
      dir.file("out")));
  EXPECT_EQ(message, dir.file("out") + "/a: cannot write: full; " +
                         dir.file("out") + "/b");
  EXPECT_EQ(errorOf(staged.nameDestination(llvm::Error::success(), "x")),
            "<no error>");
}
