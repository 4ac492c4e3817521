// kernels/quantile.h: the q-quantile of sorted values with linear interpolation between the two
// nearest (numpy's default), for the model's prior mean (gp_model.cc), the outlier fence of the
// Bayesian strategy and ASHA's rung cut-off (coordinator/).
//
// Contract: `sorted` is ascending and not empty; q is clamped to [0, 1]. Pure, header-only.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <span>

namespace hpo::kernels {

inline double QuantileOfSorted(std::span<const double> sorted, double q) {
  const double at = std::clamp(q, 0.0, 1.0) * static_cast<double>(sorted.size() - 1);
  const size_t lo = static_cast<size_t>(std::floor(at));
  const size_t hi = std::min(lo + 1, sorted.size() - 1);
  return sorted[lo] + (at - static_cast<double>(lo)) * (sorted[hi] - sorted[lo]);
}

}  // namespace hpo::kernels
