#include "kernels/sobol.h"

#include <bit>

#include "kernels/random.h"

namespace hpo::kernels {
namespace {

#include "kernels/sobol_table.inc"

}  // namespace

SobolSequence::SobolSequence(int dims, bool scramble, uint64_t seed)
    : dims_(dims < 1 ? 1 : dims), scramble_(scramble), seed_(seed) {
  const int table_dims = dims_ < kMaxTableDims ? dims_ : kMaxTableDims;
  direction_.assign(static_cast<size_t>(table_dims) * kBits, 0);
  for (int k = 1; k <= kBits; ++k) direction_[k - 1] = uint32_t{1} << (kBits - k);  // van der Corput
  for (int j = 1; j < table_dims; ++j) {
    const SobolRow& row = kSobolTable[j - 1];
    const int s = std::bit_width(row.poly) - 1;
    const uint32_t a = s > 1 ? (row.poly >> 1) & ((uint32_t{1} << (s - 1)) - 1) : 0;
    uint32_t* v = &direction_[static_cast<size_t>(j) * kBits];  // v[k-1] is v_k
    for (int k = 1; k <= kBits; ++k) {
      if (k <= s) {
        v[k - 1] = static_cast<uint32_t>(row.m[k - 1]) << (kBits - k);
      } else {
        uint32_t x = v[k - s - 1] ^ (v[k - s - 1] >> s);
        for (int i = 1; i < s; ++i) {
          if ((a >> (s - 1 - i)) & 1) x ^= v[k - i - 1];
        }
        v[k - 1] = x;
      }
    }
  }
  if (scramble_) {
    lms_.assign(static_cast<size_t>(dims_) * kBits, 0);
    shift_.assign(static_cast<size_t>(dims_), 0);
    for (int j = 0; j < dims_; ++j) {
      Random rng(SubSeed(seed_, static_cast<uint64_t>(j)));
      for (int r = 0; r < kBits; ++r) {
        // Output digit r (0: most significant) = parity(x & mask): the digit itself plus a random
        // combination of the more significant digits (lower triangular, unit diagonal).
        const uint32_t own = uint32_t{1} << (kBits - 1 - r);
        const uint32_t above = r == 0 ? 0 : static_cast<uint32_t>(~((uint64_t{1} << (kBits - r)) - 1));
        lms_[static_cast<size_t>(j) * kBits + r] = own | (static_cast<uint32_t>(rng.Next()) & above);
      }
      shift_[j] = static_cast<uint32_t>(rng.Next() >> 32);
    }
  }
}

uint32_t SobolSequence::Scramble(int dim, uint32_t x) const {
  const uint32_t* rows = &lms_[static_cast<size_t>(dim) * kBits];
  uint32_t y = 0;
  for (int r = 0; r < kBits; ++r) {
    y |= static_cast<uint32_t>(std::popcount(x & rows[r]) & 1) << (kBits - 1 - r);
  }
  return y ^ shift_[dim];
}

Eigen::MatrixXd SobolSequence::Points(uint64_t first, size_t count) const {
  Eigen::MatrixXd out(dims_, static_cast<Eigen::Index>(count));
  const int table_dims = dims_ < kMaxTableDims ? dims_ : kMaxTableDims;
  std::vector<uint32_t> x(static_cast<size_t>(table_dims), 0);
  // The point with index `first`: XOR of the direction numbers of the set bits of its Gray code.
  const uint64_t gray = first ^ (first >> 1);
  for (int j = 0; j < table_dims; ++j) {
    uint32_t acc = 0;
    for (int b = 0; b < kBits; ++b) {
      if ((gray >> b) & 1) acc ^= direction_[static_cast<size_t>(j) * kBits + b];
    }
    x[j] = acc;
  }
  constexpr double kScale = 1.0 / 4294967296.0;
  for (size_t i = 0; i < count; ++i) {
    const uint64_t index = first + i;
    if (i > 0) {
      const int c = std::countr_zero(index);  // Gray code of index differs from index-1's in bit c
      for (int j = 0; j < table_dims; ++j) x[j] ^= direction_[static_cast<size_t>(j) * kBits + (c < kBits ? c : kBits - 1)];
    }
    for (int j = 0; j < table_dims; ++j) {
      const uint32_t v = scramble_ ? Scramble(j, x[j]) : x[j];
      out(j, static_cast<Eigen::Index>(i)) = (static_cast<double>(v) + 0.5) * kScale;
    }
    for (int j = table_dims; j < dims_; ++j) {
      Random rng(SubSeed(SubSeed(seed_, static_cast<uint64_t>(j) + 0x50b01ULL), index));
      out(j, static_cast<Eigen::Index>(i)) = rng.Uniform();
    }
  }
  return out;
}

}  // namespace hpo::kernels
