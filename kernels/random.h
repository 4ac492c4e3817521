// kernels/random.h: the small deterministic generator kernels/ uses (seeded restarts, subsets,
// scrambling, perturbations, sampled fantasies).
//
// SplitMix64 seeding into xoshiro256** (the same algorithms as coordinator/rng.h, which kernels/
// may not include), plus Uniform() in [0,1) from the top 53 bits, Below(n) by rejection and
// Normal() by the Box-Muller transform (the cosine branch only: one normal per two uniforms, so
// the stream is a plain function of the seed). Written out so results do not depend on the
// standard library's distributions.
//
// Thread safety: a value; one instance per thread.
#pragma once

#include <cmath>
#include <cstdint>

namespace hpo::kernels {

inline uint64_t Mix64(uint64_t z) {
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
  return z ^ (z >> 31);
}

// A seed for sub-stream `stream` of `seed`.
inline uint64_t SubSeed(uint64_t seed, uint64_t stream) {
  return Mix64(Mix64(seed + 0x9e3779b97f4a7c15ULL) ^ (stream * 0xd1342543de82ef95ULL + 1));
}

class Random {
 public:
  explicit Random(uint64_t seed) {
    uint64_t x = seed;
    for (uint64_t& w : s_) {
      x += 0x9e3779b97f4a7c15ULL;
      w = Mix64(x);
    }
  }
  uint64_t Next() {
    const uint64_t result = Rotl(s_[1] * 5, 7) * 9;
    const uint64_t t = s_[1] << 17;
    s_[2] ^= s_[0];
    s_[3] ^= s_[1];
    s_[1] ^= s_[2];
    s_[0] ^= s_[3];
    s_[2] ^= t;
    s_[3] = Rotl(s_[3], 45);
    return result;
  }
  double Uniform() { return static_cast<double>(Next() >> 11) * 0x1.0p-53; }
  // n >= 1.
  uint64_t Below(uint64_t n) {
    const uint64_t threshold = (0 - n) % n;
    for (;;) {
      const uint64_t r = Next();
      if (r >= threshold) return r % n;
    }
  }
  double Normal() {
    const double u1 = 1.0 - Uniform();  // (0, 1]
    const double u2 = Uniform();
    return std::sqrt(-2.0 * std::log(u1)) * std::cos(6.283185307179586 * u2);
  }

 private:
  static uint64_t Rotl(uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }
  uint64_t s_[4];
};

}  // namespace hpo::kernels
