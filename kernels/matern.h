// kernels/matern.h (internal): the Matern-5/2 radial profile shared by the host fit and the
// engines. r is the lengthscale-scaled distance, s2 the signal variance.
//   k(r) = s2 (1 + sqrt5 r + 5/3 r^2) exp(-sqrt5 r)
//   g(r) = -(dk/dr) / r = 5/3 s2 (1 + sqrt5 r) exp(-sqrt5 r)
// so that dk/d(log l_d) = g(r) delta_d^2 / l_d^2 and dk/d delta_d = -g(r) delta_d / l_d^2, with no
// division by r (finite at r = 0). Compiled for the host and, in the CUDA fit's likelihood
// (likelihood_terms.h), for the device.
#pragma once

#include <cmath>

#include "kernels/host_device.h"

namespace hpo::kernels {

inline constexpr double kSqrt5 = 2.23606797749978969641;

HPO_HOST_DEVICE inline double Matern52(double r, double s2) {
  const double sr = kSqrt5 * r;
  return s2 * (1.0 + sr + sr * sr / 3.0) * ExpHd(-sr);
}

HPO_HOST_DEVICE inline void Matern52WithRadialTerm(double r, double s2, double* k, double* g) {
  const double sr = kSqrt5 * r;
  const double e = s2 * ExpHd(-sr);
  *k = (1.0 + sr + sr * sr / 3.0) * e;
  *g = (5.0 / 3.0) * (1.0 + sr) * e;
}

}  // namespace hpo::kernels
