// kernels/ascent_step.h (internal to kernels/): one start's step of GpEngine::Ascend, written
// once for the host loop (ascent.cc) and the CUDA engine's device loop (cuda_kernels.cu), so that
// the two differ only in how the scores are computed, never in what a step does with them.
//
// Plain functions of one start's arrays (D entries each), no Eigen, no allocation; compiled as
// __host__ __device__ under nvcc and as ordinary inline functions elsewhere. `Flag` is the type of
// the held-coordinate mask (uint8_t on the host, double on the device), 0 meaning held; a null
// mask holds nothing.
#pragma once

#include "kernels/host_device.h"

namespace hpo::kernels {

// Step lengths of GpEngine::Ascend (unit-cube units): the first, the longest, the factor a step
// that fails is cut by, and the length below which a start stops.
inline constexpr double kAscentFirstStep = 0.05;
inline constexpr double kAscentMaxStep = 0.5;
inline constexpr double kAscentShrink = 0.25;
inline constexpr double kAscentMinStep = 1e-5;

// Coordinate d of a start at `cur` with log-EI gradient `grad` does not move: the mask holds it,
// or it is at a face of the box with the gradient pointing out.
template <class Flag>
HPO_HOST_DEVICE inline bool AscentHeld(const double* cur, const double* grad, const Flag* movable, int d) {
  return (movable != nullptr && movable[d] == 0) || (cur[d] <= 0.0 && grad[d] < 0) || (cur[d] >= 1.0 && grad[d] > 0);
}

// The length of the gradient over the coordinates that move (summed in coordinate order).
template <class Flag>
HPO_HOST_DEVICE inline double AscentNorm(const double* cur, const double* grad, const Flag* movable, int dims) {
  double sq = 0.0;
  for (int d = 0; d < dims; ++d) {
    if (!AscentHeld(cur, grad, movable, d)) sq += grad[d] * grad[d];
  }
  return SqrtHd(sq);
}

// The start's next trial point: cur + step * (the moving part of grad, normalised), clipped to
// the box, into `trial`. False (trial untouched) when the start stops instead: no coordinate
// left to move, a gradient that is not finite, or a log EI `f` that is not finite.
template <class Flag>
HPO_HOST_DEVICE inline bool AscentTrial(const double* cur, const double* grad, const Flag* movable, double f,
                                        double step, int dims, double* trial) {
  const double norm = AscentNorm(cur, grad, movable, dims);
  if (!(norm > 0) || !IsFiniteHd(norm) || !IsFiniteHd(f)) return false;
  for (int d = 0; d < dims; ++d) {
    const double dir = AscentHeld(cur, grad, movable, d) ? 0.0 : grad[d] / norm;
    const double x = cur[d] + step * dir;
    trial[d] = x < 0.0 ? 0.0 : (x > 1.0 ? 1.0 : x);
  }
  return true;
}

// The verdict on a trial whose log EI is `trial_log_ei`: kept when above *f (then *f takes it and
// the step doubles, up to kAscentMaxStep; true), else the step is cut and the start stops
// (*active = false) below kAscentMinStep (false).
HPO_HOST_DEVICE inline bool AscentVerdict(double trial_log_ei, double* f, double* step, bool* active) {
  if (trial_log_ei > *f) {
    *f = trial_log_ei;
    *step = 2.0 * *step < kAscentMaxStep ? 2.0 * *step : kAscentMaxStep;
    return true;
  }
  *step *= kAscentShrink;
  if (*step < kAscentMinStep) *active = false;
  return false;
}

}  // namespace hpo::kernels
