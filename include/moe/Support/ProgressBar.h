//===- ProgressBar.h - A progress line for long writes ----------*- C++ -*-===//

#ifndef MOE_SUPPORT_PROGRESSBAR_H
#define MOE_SUPPORT_PROGRESSBAR_H

#include <chrono>
#include <cstdint>

namespace mlir::moe {

/// A one-line progress bar of bytes written, with throughput, drawn on
/// stderr at most ten times a second.
class ProgressBar {
public:
  void update(uint64_t done, uint64_t total);

private:
  std::chrono::steady_clock::time_point start =
      std::chrono::steady_clock::now();
  std::chrono::steady_clock::time_point lastDraw;
};

} // namespace mlir::moe

#endif // MOE_SUPPORT_PROGRESSBAR_H
