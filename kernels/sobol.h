// kernels/sobol.h: scrambled Sobol points in the unit cube, the acquisition's candidate set.
//
// Sobol's sequence in base 2 with the Joe-Kuo direction numbers (new-joe-kuo-6.21201, first 256
// dimensions; see sobol_table.inc), 32 bits per coordinate, generated in Gray-code order.
// Scrambling (when a seed is given): Matousek's random linear matrix scrambling (a random lower
// triangular binary matrix with unit diagonal per dimension, applied to the digits) followed by a
// random digital shift; this keeps the (t,m,s)-net property of every block of 2^k points and
// makes every point uniform on the cube. Dimensions beyond 256 fall back to independent uniform
// draws (documented limit; hpo's unit cubes stay well below it: one coordinate per numeric range
// plus one per categorical value).
//
// Points are offset by half a least-significant digit (x = (i + 0.5) / 2^32), so no coordinate is
// exactly 0 or 1.
//
// Thread safety: a value; Fill is const.
#pragma once

#include <cstdint>
#include <vector>

#include <Eigen/Core>

namespace hpo::kernels {

class SobolSequence {
 public:
  static constexpr int kMaxTableDims = 256;
  static constexpr int kBits = 32;

  // `dims` >= 1. scramble=false gives the plain sequence (the first point is the origin offset by
  // half a digit); scramble=true scrambles with `seed` (deterministic).
  SobolSequence(int dims, bool scramble, uint64_t seed);

  int dims() const { return dims_; }
  // Points first .. first + count - 1 of the sequence as columns of a dims x count matrix.
  Eigen::MatrixXd Points(uint64_t first, size_t count) const;

 private:
  uint32_t Scramble(int dim, uint32_t x) const;

  int dims_;
  bool scramble_;
  uint64_t seed_;
  std::vector<uint32_t> direction_;  // dims x kBits direction numbers (table dims only)
  std::vector<uint32_t> lms_;        // dims x kBits rows of the scrambling matrices (column masks)
  std::vector<uint32_t> shift_;      // dims digital shifts
};

}  // namespace hpo::kernels
