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

// score[j] = log EI below incumbent of N(mean[j], var[j]) (NaN mapped to -inf), j < m.
cudaError_t LaunchLogEi(const double* mean, const double* var, int m, double incumbent, double* score,
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

}  // namespace hpo::kernels::cuda
