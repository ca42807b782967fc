// Philox4x32-10 counter-based generator, identical on host and device, so a seed and an offset give the
// same numbers on the CPU and the GPU. Convention used by every random op: element i of a draw at
// (seed, offset) uses counter (i, i>>32, offset, offset>>32) and key (seed, seed>>32); lane 0 gives the
// uniform, lanes 0 and 1 feed Box-Muller for the normal.
#pragma once
#include <cmath>
#include <cstdint>

#include "kernels/dtype.h"

namespace pneumo {

struct Philox4 {
  uint32_t v[4];
};

PNEUMO_HD void philox_mulhilo(uint32_t a, uint32_t b, uint32_t& hi, uint32_t& lo) {
  uint64_t p = static_cast<uint64_t>(a) * b;
  hi = static_cast<uint32_t>(p >> 32);
  lo = static_cast<uint32_t>(p);
}

PNEUMO_HD Philox4 philox4x32_10(uint64_t counter_lo, uint64_t counter_hi, uint64_t seed) {
  uint32_t c0 = static_cast<uint32_t>(counter_lo), c1 = static_cast<uint32_t>(counter_lo >> 32);
  uint32_t c2 = static_cast<uint32_t>(counter_hi), c3 = static_cast<uint32_t>(counter_hi >> 32);
  uint32_t k0 = static_cast<uint32_t>(seed), k1 = static_cast<uint32_t>(seed >> 32);
  for (int r = 0; r < 10; ++r) {
    uint32_t hi0, lo0, hi1, lo1;
    philox_mulhilo(0xD2511F53u, c0, hi0, lo0);
    philox_mulhilo(0xCD9E8D57u, c2, hi1, lo1);
    uint32_t n0 = hi1 ^ c1 ^ k0, n1 = lo1, n2 = hi0 ^ c3 ^ k1, n3 = lo0;
    c0 = n0; c1 = n1; c2 = n2; c3 = n3;
    k0 += 0x9E3779B9u;
    k1 += 0xBB67AE85u;
  }
  return Philox4{{c0, c1, c2, c3}};
}

// Uniform in (0, 1]: 24 random bits, never exactly 0 so log() is safe.
PNEUMO_HD float philox_uniform01(uint32_t bits) { return (static_cast<float>(bits >> 8) + 1.0f) * (1.0f / 16777216.0f); }

PNEUMO_HD float philox_uniform_at(uint64_t seed, uint64_t offset, uint64_t i) {
  return philox_uniform01(philox4x32_10(i, offset, seed).v[0]);
}

// Standard normal via Box-Muller in double so host and device agree to rounding of the final float.
PNEUMO_HD float philox_normal_at(uint64_t seed, uint64_t offset, uint64_t i) {
  Philox4 r = philox4x32_10(i, offset, seed);
  double u1 = (static_cast<double>(r.v[0]) + 1.0) * (1.0 / 4294967296.0);
  double u2 = static_cast<double>(r.v[1]) * (1.0 / 4294967296.0);
  return static_cast<float>(sqrt(-2.0 * log(u1)) * cos(6.283185307179586 * u2));
}

}  // namespace pneumo
