"""The counter-based generator of moe, re-implemented in numpy.

Semantics (those of ``include/moe/Weights/Random.h``), all arithmetic on
uint64 with wrap-around:

- ``splitmix64(x)``: ``x += 0x9E3779B97F4A7C15``;
  ``x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9``;
  ``x = (x ^ (x >> 27)) * 0x94D049BB133111EB``; ``x ^ (x >> 31)``.
- ``uniform_at(seed, i)``: the top 53 bits of
  ``splitmix64(splitmix64(seed) + i)`` times 2**-53, a double in [0, 1).
- ``normal_at(seed, i)``: Box-Muller on the uniforms at counters ``2 i``
  and ``2 i + 1``: ``sqrt(-2 log(1 - u1)) * cos(2 pi u2)``.

Seeds are int64 values reinterpreted as uint64 (``-1`` is ``2**64 - 1``).
Element ``i`` of a tensor, in row-major order, uses counter ``i``; the
tensor is computed in double precision and rounded to float32 once
(``mean + std * z`` and ``low + (high - low) * u``).
"""

import numpy as np

_MASK = (1 << 64) - 1
_GOLDEN = np.uint64(0x9E3779B97F4A7C15)
_MUL1 = np.uint64(0xBF58476D1CE4E5B9)
_MUL2 = np.uint64(0x94D049BB133111EB)
_TWO_PI = 6.283185307179586476925286766559


def _u64(value):
    """An int (any sign) or integer array as uint64, modulo 2**64."""
    if isinstance(value, (int, np.integer)):
        return np.uint64(int(value) & _MASK)
    return np.asarray(value).astype(np.uint64)


def splitmix64(x):
    """The SplitMix64 finaliser of uint64 ``x`` (scalar or array)."""
    with np.errstate(over="ignore"):
        x = _u64(x) + _GOLDEN
        x = (x ^ (x >> np.uint64(30))) * _MUL1
        x = (x ^ (x >> np.uint64(27))) * _MUL2
        return x ^ (x >> np.uint64(31))


def uniform_at(seed, index):
    """Uniform doubles in [0, 1) at counters ``index`` of stream ``seed``."""
    with np.errstate(over="ignore"):
        bits = splitmix64(splitmix64(seed) + _u64(index))
    return (bits >> np.uint64(11)).astype(np.float64) * 2.0**-53


def normal_at(seed, index):
    """Standard normal doubles at counters ``index`` of stream ``seed``."""
    with np.errstate(over="ignore"):
        index = _u64(index)
        u1 = uniform_at(seed, index * np.uint64(2))
        u2 = uniform_at(seed, index * np.uint64(2) + np.uint64(1))
    return np.sqrt(-2.0 * np.log(1.0 - u1)) * np.cos(_TWO_PI * u2)


def random_normal(seed, shape, mean=0.0, std=1.0):
    """The float32 tensor of ``moe.random_normal``: element i (row-major) is
    ``mean + std * normal_at(seed, i)``."""
    count = int(np.prod(shape, dtype=np.int64))
    z = normal_at(seed, np.arange(count, dtype=np.uint64))
    return (mean + std * z).astype(np.float32).reshape(shape)


def random_uniform(seed, shape, low, high):
    """The float32 tensor of ``moe.random_uniform``: element i is
    ``low + (high - low) * uniform_at(seed, i)``."""
    count = int(np.prod(shape, dtype=np.int64))
    u = uniform_at(seed, np.arange(count, dtype=np.uint64))
    return (low + (high - low) * u).astype(np.float32).reshape(shape)
