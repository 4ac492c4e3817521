// kernels/host_device.h (internal to kernels/): the few plain math functions the host code and
// the CUDA kernels (cuda_kernels.cu, compiled by nvcc without Eigen) share, so that each is
// written once: the Kumaraswamy warp and its derivative, the ascent's finiteness test, and the
// elementary functions the fit's likelihood terms call (likelihood_terms.h).
// Compiled as __host__ __device__ under nvcc and as ordinary inline functions elsewhere; on the
// host they call <cmath>'s functions exactly as before they were shared.
#pragma once

#include <cmath>

#if defined(__CUDACC__)
#define HPO_HOST_DEVICE __host__ __device__
#else
#define HPO_HOST_DEVICE
#endif

namespace hpo::kernels {

// The elementary functions, once per side: CUDA's in device code, <cmath>'s on the host.
#if defined(__CUDA_ARCH__)
__device__ inline bool IsFiniteHd(double v) { return isfinite(v); }
__device__ inline double SqrtHd(double v) { return sqrt(v); }
__device__ inline double ExpHd(double v) { return exp(v); }
__device__ inline double LogHd(double v) { return log(v); }
__device__ inline double PowHd(double x, double y) { return pow(x, y); }
#else
HPO_HOST_DEVICE inline bool IsFiniteHd(double v) { return std::isfinite(v); }
HPO_HOST_DEVICE inline double SqrtHd(double v) { return std::sqrt(v); }
HPO_HOST_DEVICE inline double ExpHd(double v) { return std::exp(v); }
HPO_HOST_DEVICE inline double LogHd(double v) { return std::log(v); }
HPO_HOST_DEVICE inline double PowHd(double x, double y) { return std::pow(x, y); }
#endif

// The Kumaraswamy CDF w(x) = 1 - (1 - x^a)^b for x in [0,1] (x clamped), and dw/dx. The CPU
// engine, the fit, and the CUDA engine on both sides (its host scaling and its device ascent).
HPO_HOST_DEVICE inline double KumaraswamyWarp(double x, double a, double b) {
  x = x < 0.0 ? 0.0 : (x > 1.0 ? 1.0 : x);  // as std::clamp, NaN included
  return 1.0 - PowHd(1.0 - PowHd(x, a), b);
}
HPO_HOST_DEVICE inline double KumaraswamyWarpDerivative(double x, double a, double b) {
  x = x < 1e-12 ? 1e-12 : (x > 1.0 - 1e-12 ? 1.0 - 1e-12 : x);
  const double xa = PowHd(x, a);
  const double rest = 1.0 - xa < 1e-300 ? 1e-300 : 1.0 - xa;  // as std::max(1 - xa, 1e-300)
  return a * b * xa / x * PowHd(rest, b - 1.0);
}

}  // namespace hpo::kernels
