// kernels/cuda_kernels.h (internal to kernels/): the hand-written device kernels of the CUDA GP
// engine, behind plain host launchers so that the engine itself (cuda_engine.cc, compiled by the
// C++ compiler with Eigen) never goes through nvcc, and cuda_kernels.cu never sees Eigen.
//
// Layout (all column-major, doubles, device pointers):
//   train_t   n x D with leading dimension ld_train: the scaled warped training inputs z = w(x)/l,
//             one coordinate per column so that consecutive threads (consecutive training points)
//             read consecutive addresses;
//   cand      D x m: scaled warped candidates, one per column;
//   k, g      n x m with leading dimension ldk: the cross-covariance K(train, cand) and the
//             Matern radial term g (kernels/matern.h).
// Every launcher is asynchronous on `stream` and returns the launch error (cudaSuccess when fine).
#pragma once

#include <cstddef>

#include <cuda_runtime_api.h>

namespace hpo::kernels::cuda {

// cudaSuccess when this build's device code can run on the current device (its architecture is
// among CMAKE_CUDA_ARCHITECTURES, or PTX for it is embedded); otherwise the error
// (cudaErrorNoKernelImageForDevice, ...).
cudaError_t CheckKernelImage();

// k(i, j) = Matern52(|train_i - cand_j|, s2); with g != null also the radial term. The distance is
// summed coordinate by coordinate (no |a|^2 + |b|^2 - 2ab cancellation). m <= 65535 per launch.
cudaError_t LaunchCrossCovariance(const double* train_t, int ld_train, int n, const double* cand, int dims, int m,
                                  double s2, double* k, double* g, int ldk, cudaStream_t stream);

// For each column j of v (n x m, leading dimension ldv): var_j = max(s2 - |v_j|^2, floor);
// var[j] is written, and when incumbent_valid, log_ei[j] (log EI below `incumbent` of N(mean_j,
// var_j), NaN mapped to -inf) and, when d_mean/d_var are not null, its derivatives. mean may be
// null when log EI is not asked for.
cudaError_t LaunchVarianceLogEi(const double* v, int ldv, int n, int m, double s2, double floor, const double* mean,
                                double incumbent, bool incumbent_valid, double* var, double* log_ei, double* d_mean,
                                double* d_var, cudaStream_t stream);

// The pool's ranking data in one array of 3 m, for one copy back: out[j] = log EI below
// incumbent of N(mean[j], var[j]) (NaN mapped to -inf), out[m + j] = mean[j], out[2 m + j] =
// var[j], j < m.
cudaError_t LaunchPoolScores(const double* mean, const double* var, int m, double incumbent, double* out,
                             cudaStream_t stream);

// out(i, j) = g(i, j) * (a[i] if a is not null else b(i, j)) for i < n, j < m; g, b, out share
// the leading dimension ld (b's own leading dimension is ldb).
cudaError_t LaunchRadialProducts(const double* g, int ld, const double* a, const double* b, int ldb, int n, int m,
                                 double* out, cudaStream_t stream);

// a(i, j) = 0 for i < j < n (the strict upper triangle of the n x n block, leading dimension ld).
cudaError_t LaunchZeroStrictUpper(double* a, int ld, int n, cudaStream_t stream);

// The Kriging/sampled fantasy's rank-one pool update, for each pool column j < m:
//   row_j = (Matern52(|pool_j - x|, s2) - vl[j]) / d      (vl[j] = v_j . l, computed by cuBLAS)
//   v(n, j) = row_j;  var[j] = max(var[j] - row_j^2, floor);  mean[j] += row_j * shift.
// pool: D x m scaled candidates; x: D scaled point; v: leading dimension ldv, row n written.
cudaError_t LaunchFantasyPoolUpdate(const double* pool, int dims, int m, const double* x, double s2, const double* vl,
                                    double d, double shift, double floor, double* v, int ldv, int n, double* var,
                                    double* mean, cudaStream_t stream);

// ---- the ascent of GpEngine::Ascend on the device -------------------------------------------
// s starts in D dimensions, one thread each (s is a refinement's starts: 4 to 16). All arrays
// are column-major, one column per start; 0/1 flags are doubles.
struct AscentState {
  double* cur;             // D x s: the points reached (unit cube)
  double* f;               // s: log EI at cur
  double* grad;            // D x s: d log EI / d point at cur
  double* step;            // s: the next step's length
  double* active;          // s: 1 while the start moves
  const double* movable;   // D x s: 0 for a coordinate held at its start
  double* trial;           // D x s: the points tried this round (unit cube)
  double* z;               // D x s: the trial points warped and scaled, w(x) / l
  double* dwdx;            // D x s: the warp's derivative at the trial points (1 when unwarped)
};
// The warp and lengthscales (D each): 1 / l, Kumaraswamy a and b, and 1.0 where warped.
struct WarpParams {
  const double* inv_l;
  const double* a;
  const double* b;
  const double* warped;
};
// The scores of the trial points as the engine's gradient evaluation leaves them (s each, t_* D x
// s): variance, log EI, d log EI / d mean and / d variance, the column sums s_mean, s_var and the
// products t_mean, t_var of the CPU engine's gradient formulas.
struct TrialScores {
  const double* var;
  const double* log_ei;
  const double* d_mean;
  const double* d_var;
  const double* s_mean;
  const double* s_var;
  const double* t_mean;
  const double* t_var;
};
// Writes the round's trial points and their z and dwdx. first: the trial is the start itself.
// Otherwise, per active start, kernels/ascent_step.h's AscentTrial; a start it stops gets
// active = 0 and tries its current point (evaluated, never taken).
cudaError_t LaunchAscentPropose(AscentState state, WarpParams warp, int dims, int s, bool first,
                                cudaStream_t stream);
// Takes the round's scores. first: f and grad of the starts. Otherwise, per active start,
// kernels/ascent_step.h's AscentVerdict; a kept trial replaces cur and grad. The gradient is
// assembled as the CUDA engine's host code does (variance terms dropped at the floor, non-finite
// entries 0).
cudaError_t LaunchAscentAccept(AscentState state, TrialScores scores, const double* inv_l, double var_floor,
                               int dims, int s, bool first, cudaStream_t stream);

// ---- the fit's likelihood on the device (kernels/likelihood_terms.h, steps 1, 2, 4-6) ----
// One fit's arrays, n points in D coordinates, W of them warped, P = D + 2 + 2 W parameters; all
// column-major with leading dimension n. Between the two launches the caller factorises chol,
// solves alpha and (for the gradient) inverts into kinv with cuSOLVER, on the same stream.
struct LikelihoodArrays {
  const double* x;          // D x n: the inputs (unit cube)
  const double* y;          // n: standardised targets
  const double* params;     // LikelihoodParamsSize(D): 1/l, a, b, identity flags, s2, noise
  const int* warp_index;    // D: a coordinate's index among the warped ones, or -1
  const int* warped_dims;   // W: each warped index's coordinate
  int warped_count;         // W
  double* z;                // n x D: w(x) / l
  double* dwa;              // n x W: dw / d log a (only with the gradient)
  double* dwb;              // n x W: dw / d log b
  double* chol;             // n x n: K's lower triangle, then the factor's
  double* alpha;            // n: K^-1 y
  double* kinv;             // n x n: K^-1's lower triangle (only with the gradient)
  const int* info;          // the factorisation's status (0: it succeeded)
  double* c;                // n x n: Wm .* g (step 4)
  double* s;                // n x n: Wm .* k
  double* zr;               // n x D: step 5's sums
  double* ls;               // n x D
  double* sig;              // n
  double* dg;               // n
  double* out;              // 1 + P: the value, then the gradient
};
// Steps 1 and 2: z (and dwa, dwb with the gradient), then K's lower triangle into chol.
cudaError_t LaunchLikelihoodInputs(const LikelihoodArrays& a, int dims, int n, bool gradient, cudaStream_t stream);
// Steps 4 to 6: out[0] = the value (+infinity when *info != 0 or a pivot is not positive), and
// with the gradient out[1 .. P] (steps 4 and 5 run only then).
cudaError_t LaunchLikelihoodResult(const LikelihoodArrays& a, int dims, int n, bool gradient, cudaStream_t stream);

}  // namespace hpo::kernels::cuda
