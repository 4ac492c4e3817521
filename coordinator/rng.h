// coordinator/rng.h: the strategies' random number generator, specified bit for bit.
//
// Why not <random>: the engines are portable but the distributions (uniform_real_distribution,
// uniform_int_distribution, ...) are not: libstdc++, libc++ and MSVC produce different numbers
// from the same engine state. A tuning job's proposals must be a function of its seed alone, on
// every platform and compiler, so that a restarted coordinator (or one built elsewhere) proposes
// exactly what the first one would have. Everything here is therefore written out:
//
// - Seeding: the four 64-bit words of the state are the first four outputs of SplitMix64
//   started at `seed` (Steele, Lea, Flood 2014; the reference seeding of xoshiro).
// - Engine: xoshiro256** 1.0 (Blackman, Vigna 2018), period 2^256 - 1.
// - Uniform(): the top 53 bits of one output times 2^-53, a double in [0, 1) with every
//   multiple of 2^-53 equally likely.
// - Below(n): an integer in [0, n) by rejection (draws below 2^64 mod n are rejected, then the
//   remainder is taken), exactly uniform; consumes one or (rarely) more outputs.
// - StreamSeed(seed, stream): SplitMix64's finalizer applied to seed and stream, giving
//   independent-looking seeds for numbered streams of one seed (proposal 0, 1, 2, ...).
//
// Thread safety: a value; one instance must not be used from two threads at once.
#pragma once

#include <cstdint>

namespace hpo::coordinator {

// The SplitMix64 output function (mixing of a 64-bit word), a bijection on uint64_t.
uint64_t SplitMix64Mix(uint64_t z);

// A seed for stream number `stream` of `seed`; different streams give unrelated sequences.
uint64_t StreamSeed(uint64_t seed, uint64_t stream);

class Rng {
 public:
  explicit Rng(uint64_t seed);

  // The next 64 raw bits (xoshiro256**).
  uint64_t Next();
  // A double in [0, 1): top 53 bits of Next() times 2^-53.
  double Uniform();
  // An integer in [0, n), exactly uniform. n must be >= 1 (HPO_CHECK).
  uint64_t Below(uint64_t n);

 private:
  uint64_t s_[4];
};

}  // namespace hpo::coordinator
