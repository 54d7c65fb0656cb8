//===- hf-config-fuzzer.cpp - libFuzzer target of config.json reading -----===//
//
// Each input is a config.json. It is read from a file through the reader
// every tool uses (readDecoderConfig: regular file, strict JSON, bounded
// fields); a config that parses is compared with itself for mixing and
// written back by the config writer, whose output must parse as the same
// config. Any crash, sanitizer report or broken round trip is a finding.
//
//===----------------------------------------------------------------------===//

#include "FuzzerSupport.h"

#include "moe/Formats/HF/ConfigWriter.h"
#include "moe/Formats/HF/HFConfig.h"
#include "moe/Support/StrictJson.h"

#include "llvm/Support/FileSystem.h"
#include "llvm/Support/raw_ostream.h"

#include <cstdlib>

using namespace mlir::moe;

/// Stops the fuzzer with a report: a property of the library was violated.
[[noreturn]] static void fail(const llvm::Twine &what) {
  llvm::errs() << "hf-config-fuzzer: " << what << "\n";
  std::abort();
}

/// The file every input is written to, in a scratch directory removed at
/// exit.
static const std::string &inputPath() {
  static const std::string path = [] {
    static const std::string dir =
        moe_fuzz::makeScratchDirectory("hf-config-fuzz");
    std::atexit([] { llvm::sys::fs::remove_directories(dir); });
    return moe_fuzz::joinPath(dir, "config.json");
  }();
  return path;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  {
    std::error_code ec;
    llvm::raw_fd_ostream out(inputPath(), ec);
    if (ec)
      fail("cannot write " + inputPath() + ": " + ec.message());
    out.write(reinterpret_cast<const char *>(data), size);
  }
  llvm::Expected<DecoderConfig> config = readDecoderConfig(inputPath());
  if (!config) {
    llvm::consumeError(config.takeError());
    return 0;
  }
  if (std::optional<std::string> difference =
          findIncompatibility(*config, *config))
    fail("a config is incompatible with itself: " + *difference);
  std::string written =
      hf::formatConfigJson(llvm::json::Value(llvm::json::Object(config->raw)));
  StrictJson reparsed = parseJsonStrictly(written);
  if (!reparsed.value || !reparsed.value->getAsObject())
    fail("the config writer's output does not parse: " + written);
  llvm::Expected<DecoderConfig> again =
      parseDecoderConfig(std::move(*reparsed.value->getAsObject()), "written");
  if (!again)
    fail("the written config is refused: " + llvm::toString(again.takeError()));
  if (std::optional<std::string> difference =
          findIncompatibility(*config, *again))
    fail("the written config differs: " + *difference);
  return 0;
}
