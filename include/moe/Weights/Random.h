//===- Random.h - The deterministic generator of moe ------------*- C++ -*-===//
//
// Random weights (noisy routers, uniform initialisers) and gating noise must
// be the same in every tool, on every platform, and in generated code. They
// come from this counter-based generator: element i of a stream with seed s
// is a pure function of (s, i), so it can be computed in any order.
//
//===----------------------------------------------------------------------===//

#ifndef MOE_WEIGHTS_RANDOM_H
#define MOE_WEIGHTS_RANDOM_H

#include <cmath>
#include <cstdint>

namespace mlir::moe::weights {

/// The SplitMix64 finaliser.
inline uint64_t splitMix64(uint64_t x) {
  x += 0x9E3779B97F4A7C15ull;
  x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ull;
  x = (x ^ (x >> 27)) * 0x94D049BB133111EBull;
  return x ^ (x >> 31);
}

/// Uniform double in [0, 1) for counter `index` of stream `seed`: the top 53
/// bits of splitMix64(splitMix64(seed) + index).
inline double uniformAt(uint64_t seed, uint64_t index) {
  uint64_t bits = splitMix64(splitMix64(seed) + index);
  return static_cast<double>(bits >> 11) * 0x1.0p-53;
}

/// Standard normal sample `index` of stream `seed`: Box-Muller on the
/// uniforms at counters 2 * index and 2 * index + 1.
inline double normalAt(uint64_t seed, uint64_t index) {
  double u1 = uniformAt(seed, 2 * index);
  double u2 = uniformAt(seed, 2 * index + 1);
  // 1 - u1 is in (0, 1], so the logarithm is finite.
  return std::sqrt(-2.0 * std::log(1.0 - u1)) *
         std::cos(6.283185307179586476925286766559 * u2);
}

} // namespace mlir::moe::weights

#endif // MOE_WEIGHTS_RANDOM_H
