// tests/kernels/test_data.h: the inputs and objectives the kernels' tests fit and evaluate on.
#pragma once

#include <cmath>
#include <cstdint>

#include <Eigen/Core>

#include "kernels/random.h"

namespace hpo::kernels::testing {

// n points uniform in the unit cube of d dimensions (D x n), from `seed`.
inline Eigen::MatrixXd RandomPoints(int d, int n, uint64_t seed) {
  Random rng(seed);
  Eigen::MatrixXd x(d, n);
  for (int j = 0; j < n; ++j)
    for (int i = 0; i < d; ++i) x(i, j) = rng.Uniform();
  return x;
}

// A smooth surface of any dimension: sum_i sin(3 x_i + i) + (x_i - 0.3)^2.
inline Eigen::VectorXd SmoothSurface(const Eigen::MatrixXd& x) {
  Eigen::VectorXd y(x.cols());
  for (Eigen::Index j = 0; j < x.cols(); ++j) {
    double v = 0;
    for (Eigen::Index i = 0; i < x.rows(); ++i) v += std::sin(3.0 * x(i, j) + i) + (x(i, j) - 0.3) * (x(i, j) - 0.3);
    y[j] = v;
  }
  return y;
}

}  // namespace hpo::kernels::testing
