//===- ProgressBar.cpp - A progress line for long writes ------------------===//

#include "moe/Support/ProgressBar.h"

#include "moe/Support/ByteSize.h"

#include "llvm/Support/Format.h"
#include "llvm/Support/raw_ostream.h"

using namespace mlir::moe;

void ProgressBar::update(uint64_t done, uint64_t total) {
  auto now = std::chrono::steady_clock::now();
  if (done < total && now - lastDraw < std::chrono::milliseconds(100))
    return;
  lastDraw = now;
  double seconds = std::chrono::duration<double>(now - start).count();
  double fraction = total ? double(done) / double(total) : 1.0;
  constexpr int width = 30;
  int filled = int(fraction * width);
  llvm::errs() << "\r[" << std::string(filled, '=')
               << std::string(width - filled, ' ') << "] "
               << llvm::format("%3d%%", int(fraction * 100)) << "  "
               << formatBytes(done) << " / " << formatBytes(total);
  if (seconds > 0)
    llvm::errs() << "  " << formatBytes(done / seconds) << "/s";
  llvm::errs() << "   ";
  if (done == total)
    llvm::errs() << "\n";
}
