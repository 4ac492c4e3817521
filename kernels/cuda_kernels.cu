// The device kernels of the CUDA GP engine (see cuda_kernels.h). The log-EI code is a line-by-line
// port of kernels/log_ei.cc (same regimes, same constants) so that both engines agree to rounding.
#include "kernels/cuda_kernels.h"

#include <cmath>

#include "kernels/ascent_step.h"
#include "kernels/likelihood_terms.h"

namespace hpo::kernels::cuda {
namespace {

constexpr double kSqrt5 = 2.23606797749978969641;
constexpr double kInvSqrt2 = 0.70710678118654752440;
constexpr double kLogSqrt2Pi = 0.91893853320467274178;
constexpr double kSqrtHalfPi = 1.25331413731550025121;
constexpr double kAsymptotic = 30.0;
constexpr int kThreads = 256;
constexpr int kWarpsPerBlock = kThreads / 32;

__device__ inline double NegInf() { return __longlong_as_double(static_cast<long long>(0xfff0000000000000ULL)); }

__device__ inline double Phi(double z) { return 0.5 * erfc(-z * kInvSqrt2); }
__device__ inline double LogPhiDensity(double z) { return -0.5 * z * z - kLogSqrt2Pi; }

__device__ inline double Mills(double t) {
  if (t < kAsymptotic) return kSqrtHalfPi * exp(0.5 * t * t) * erfc(t * kInvSqrt2);
  const double u = 1.0 / (t * t);
  return (1.0 / t) * (1.0 - u * (1.0 - 3.0 * u * (1.0 - 5.0 * u * (1.0 - 7.0 * u * (1.0 - 9.0 * u)))));
}

__device__ inline double LogOneMinusTMills(double t) {
  if (t < kAsymptotic) return log1p(-t * Mills(t));
  const double u = 1.0 / (t * t);
  const double series = 1.0 - 3.0 * u * (1.0 - 5.0 * u * (1.0 - 7.0 * u * (1.0 - 9.0 * u)));
  return -2.0 * log(t) + log(series);
}

__device__ inline double LogH(double z) {
  if (isnan(z)) return NegInf();
  if (z > -1.0) return log(z * Phi(z) + exp(LogPhiDensity(z)));
  const double t = -z;
  if (t > 1e150) return NegInf();
  return LogPhiDensity(z) + LogOneMinusTMills(t);
}

__device__ inline double LogHDerivative(double z) {
  if (isnan(z)) return 0.0;
  if (z > -1.0) return Phi(z) / (z * Phi(z) + exp(LogPhiDensity(z)));
  const double t = -z;
  if (t > 1e150) return t;
  return Mills(t) / exp(LogOneMinusTMills(t));
}

// log EI (kernels/log_ei.cc LogExpectedImprovement), NaN mapped to -inf as the engines rank it.
__device__ inline double LogEi(double mean, double variance, double incumbent, double* d_mean, double* d_var) {
  const double var = fmax(variance, 1e-300);
  const double sigma = sqrt(var);
  const double z = (incumbent - mean) / sigma;
  double value = log(sigma) + LogH(z);
  if (d_mean || d_var) {
    const double r = LogHDerivative(z);
    if (d_mean) *d_mean = -r / sigma;
    if (d_var) *d_var = (1.0 - z * r) / (2.0 * var);
  }
  return value;
}

__device__ inline void Matern(double r, double s2, double* k, double* g) {
  const double sr = kSqrt5 * r;
  const double e = s2 * exp(-sr);
  *k = (1.0 + sr + sr * sr / 3.0) * e;
  if (g) *g = (5.0 / 3.0) * (1.0 + sr) * e;
}

__global__ void CrossCovarianceKernel(const double* __restrict__ train_t, int ld_train, int n,
                                      const double* __restrict__ cand, int dims, double s2, double* __restrict__ k,
                                      double* __restrict__ g, int ldk) {
  extern __shared__ double c[];
  const int j = blockIdx.y;
  for (int d = threadIdx.x; d < dims; d += blockDim.x) c[d] = cand[static_cast<size_t>(j) * dims + d];
  __syncthreads();
  const int i = blockIdx.x * blockDim.x + threadIdx.x;
  if (i >= n) return;
  double r2 = 0.0;
  for (int d = 0; d < dims; ++d) {
    const double delta = train_t[i + static_cast<size_t>(d) * ld_train] - c[d];
    r2 += delta * delta;
  }
  double kv, gv;
  Matern(sqrt(r2), s2, &kv, g ? &gv : nullptr);
  const size_t at = i + static_cast<size_t>(j) * ldk;
  k[at] = kv;
  if (g) g[at] = gv;
}

__global__ void VarianceLogEiKernel(const double* __restrict__ v, int ldv, int n, int m, double s2, double floor,
                                    const double* __restrict__ mean, double incumbent, bool incumbent_valid,
                                    double* __restrict__ var, double* __restrict__ log_ei, double* __restrict__ d_mean,
                                    double* __restrict__ d_var) {
  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
  const int j = blockIdx.x * kWarpsPerBlock + warp;
  if (j >= m) return;  // whole warps leave together: j is uniform within a warp
  const double* col = v + static_cast<size_t>(j) * ldv;
  double s = 0.0;
  for (int i = lane; i < n; i += 32) s += col[i] * col[i];
  for (int off = 16; off > 0; off /= 2) s += __shfl_down_sync(0xffffffffu, s, off);
  if (lane != 0) return;
  const double vj = fmax(s2 - s, floor);
  var[j] = vj;
  if (!incumbent_valid) return;
  double dm = 0.0, dv = 0.0;
  double value = LogEi(mean[j], vj, incumbent, d_mean ? &dm : nullptr, d_var ? &dv : nullptr);
  if (isnan(value)) value = NegInf();
  log_ei[j] = value;
  if (d_mean) d_mean[j] = dm;
  if (d_var) d_var[j] = dv;
}

__global__ void PoolScoresKernel(const double* __restrict__ mean, const double* __restrict__ var, int m,
                                 double incumbent, double* __restrict__ out) {
  const int j = blockIdx.x * blockDim.x + threadIdx.x;
  if (j >= m) return;
  const double mj = mean[j], vj = var[j];
  const double value = LogEi(mj, vj, incumbent, nullptr, nullptr);
  out[j] = isnan(value) ? NegInf() : value;
  out[static_cast<size_t>(m) + j] = mj;
  out[2 * static_cast<size_t>(m) + j] = vj;
}

// b and out may alias (in place: each element is read and written by the same thread).
__global__ void RadialProductsKernel(const double* __restrict__ g, int ld, const double* __restrict__ a,
                                     const double* b, int ldb, int n, double* out) {
  const int i = blockIdx.x * blockDim.x + threadIdx.x, j = blockIdx.y;
  if (i >= n) return;
  const size_t at = i + static_cast<size_t>(j) * ld;
  out[at] = g[at] * (a ? a[i] : b[i + static_cast<size_t>(j) * ldb]);
}

__global__ void FantasyPoolUpdateKernel(const double* __restrict__ pool, int dims, int m, const double* __restrict__ x,
                                        double s2, const double* __restrict__ vl, double d, double shift, double floor,
                                        double* __restrict__ v, int ldv, int n, double* __restrict__ var,
                                        double* __restrict__ mean) {
  const int j = blockIdx.x * blockDim.x + threadIdx.x;
  if (j >= m) return;
  double r2 = 0.0;
  for (int c = 0; c < dims; ++c) {
    const double delta = pool[static_cast<size_t>(j) * dims + c] - x[c];
    r2 += delta * delta;
  }
  double kv;
  Matern(sqrt(r2), s2, &kv, nullptr);
  const double row = (kv - vl[j]) / d;
  v[n + static_cast<size_t>(j) * ldv] = row;
  var[j] = fmax(var[j] - row * row, floor);
  mean[j] += row * shift;
}

// One thread per start; the step itself is kernels/ascent_step.h's, as on the host.
__global__ void AscentProposeKernel(AscentState st, WarpParams w, int dims, int s, bool first) {
  const int i = blockIdx.x * blockDim.x + threadIdx.x;
  if (i >= s) return;
  const size_t col = static_cast<size_t>(i) * static_cast<size_t>(dims);
  double* trial = st.trial + col;
  const bool was_active = !first && st.active[i] != 0.0;
  const bool move =
      was_active && AscentTrial(st.cur + col, st.grad + col, st.movable + col, st.f[i], st.step[i], dims, trial);
  if (was_active && !move) st.active[i] = 0.0;  // stopped: no direction, or f not finite
  for (int d = 0; d < dims; ++d) {
    if (!move) trial[d] = st.cur[col + d];  // evaluated, and not taken (accept skips it)
    const double x = trial[d];
    double v = x, dw = 1.0;
    if (w.warped[d] != 0.0) {
      dw = KumaraswamyWarpDerivative(x, w.a[d], w.b[d]);
      v = KumaraswamyWarp(x, w.a[d], w.b[d]);
    }
    st.z[col + d] = v * w.inv_l[d];
    st.dwdx[col + d] = dw;
  }
}

__global__ void AscentAcceptKernel(AscentState st, TrialScores r, const double* __restrict__ inv_l, double floor,
                                   int dims, int s, bool first) {
  const int i = blockIdx.x * blockDim.x + threadIdx.x;
  if (i >= s) return;
  const size_t col = static_cast<size_t>(i) * static_cast<size_t>(dims);
  bool take = first;
  if (first) {
    st.f[i] = r.log_ei[i];
  } else if (st.active[i] != 0.0) {
    bool still = true;
    take = AscentVerdict(r.log_ei[i], &st.f[i], &st.step[i], &still);
    if (!still) st.active[i] = 0.0;
  }
  if (!take) return;
  // The gradient at the trial point, assembled as CudaEngine::Evaluate does on the host.
  const bool with_var = r.var[i] > floor;
  for (int d = 0; d < dims; ++d) {
    const double z = st.z[col + d];
    const double dmean_dz = -(z * r.s_mean[i] - r.t_mean[col + d]);
    const double dvar_dz = 2.0 * (z * r.s_var[i] - r.t_var[col + d]);
    const double dz_dx = inv_l[d] * st.dwdx[col + d];
    const double g = (r.d_mean[i] * dmean_dz + (with_var ? r.d_var[i] * dvar_dz : 0.0)) * dz_dx;
    st.grad[col + d] = IsFiniteHd(g) ? g : 0.0;
    st.cur[col + d] = st.trial[col + d];
  }
}

__global__ void ProbeKernel(int* out) {
  if (out) *out = 1;
}

unsigned Blocks(long long count, int per_block) { return static_cast<unsigned>((count + per_block - 1) / per_block); }

}  // namespace

cudaError_t CheckKernelImage() {
  cudaFuncAttributes attributes;
  return cudaFuncGetAttributes(&attributes, ProbeKernel);
}

cudaError_t LaunchCrossCovariance(const double* train_t, int ld_train, int n, const double* cand, int dims, int m,
                                  double s2, double* k, double* g, int ldk, cudaStream_t stream) {
  if (n <= 0 || m <= 0) return cudaSuccess;
  if (m > 65535) return cudaErrorInvalidValue;
  const dim3 grid(Blocks(n, kThreads), static_cast<unsigned>(m));
  CrossCovarianceKernel<<<grid, kThreads, sizeof(double) * static_cast<size_t>(dims), stream>>>(
      train_t, ld_train, n, cand, dims, s2, k, g, ldk);
  return cudaGetLastError();
}

cudaError_t LaunchVarianceLogEi(const double* v, int ldv, int n, int m, double s2, double floor, const double* mean,
                                double incumbent, bool incumbent_valid, double* var, double* log_ei, double* d_mean,
                                double* d_var, cudaStream_t stream) {
  if (m <= 0) return cudaSuccess;
  VarianceLogEiKernel<<<Blocks(m, kWarpsPerBlock), kThreads, 0, stream>>>(v, ldv, n, m, s2, floor, mean, incumbent,
                                                                          incumbent_valid, var, log_ei, d_mean, d_var);
  return cudaGetLastError();
}

cudaError_t LaunchPoolScores(const double* mean, const double* var, int m, double incumbent, double* out,
                             cudaStream_t stream) {
  if (m <= 0) return cudaSuccess;
  PoolScoresKernel<<<Blocks(m, kThreads), kThreads, 0, stream>>>(mean, var, m, incumbent, out);
  return cudaGetLastError();
}

cudaError_t LaunchRadialProducts(const double* g, int ld, const double* a, const double* b, int ldb, int n, int m,
                                 double* out, cudaStream_t stream) {
  if (n <= 0 || m <= 0) return cudaSuccess;
  if (m > 65535) return cudaErrorInvalidValue;
  const dim3 grid(Blocks(n, kThreads), static_cast<unsigned>(m));
  RadialProductsKernel<<<grid, kThreads, 0, stream>>>(g, ld, a, b, ldb, n, out);
  return cudaGetLastError();
}

__global__ void ZeroStrictUpperKernel(double* a, int ld, int j0) {
  const int j = j0 + static_cast<int>(blockIdx.y);  // column
  for (int i = blockIdx.x * blockDim.x + threadIdx.x; i < j; i += gridDim.x * blockDim.x) {
    a[static_cast<size_t>(j) * static_cast<size_t>(ld) + static_cast<size_t>(i)] = 0.0;
  }
}

cudaError_t LaunchZeroStrictUpper(double* a, int ld, int n, cudaStream_t stream) {
  for (int j0 = 1; j0 < n; j0 += 65535) {  // one grid row per column, 65535 columns a launch
    const int cols = n - j0 < 65535 ? n - j0 : 65535;
    const dim3 grid(Blocks(n, kThreads), static_cast<unsigned>(cols));
    ZeroStrictUpperKernel<<<grid, kThreads, 0, stream>>>(a, ld, j0);
    const cudaError_t e = cudaGetLastError();
    if (e != cudaSuccess) return e;
  }
  return cudaSuccess;
}

cudaError_t LaunchFantasyPoolUpdate(const double* pool, int dims, int m, const double* x, double s2, const double* vl,
                                    double d, double shift, double floor, double* v, int ldv, int n, double* var,
                                    double* mean, cudaStream_t stream) {
  if (m <= 0) return cudaSuccess;
  FantasyPoolUpdateKernel<<<Blocks(m, kThreads), kThreads, 0, stream>>>(pool, dims, m, x, s2, vl, d, shift, floor, v,
                                                                       ldv, n, var, mean);
  return cudaGetLastError();
}

cudaError_t LaunchAscentPropose(AscentState state, WarpParams warp, int dims, int s, bool first,
                                cudaStream_t stream) {
  if (s <= 0) return cudaSuccess;
  AscentProposeKernel<<<Blocks(s, 32), 32, 0, stream>>>(state, warp, dims, s, first);
  return cudaGetLastError();
}

cudaError_t LaunchAscentAccept(AscentState state, TrialScores scores, const double* inv_l, double var_floor,
                               int dims, int s, bool first, cudaStream_t stream) {
  if (s <= 0) return cudaSuccess;
  AscentAcceptKernel<<<Blocks(s, 32), 32, 0, stream>>>(state, scores, inv_l, var_floor, dims, s, first);
  return cudaGetLastError();
}

// ---- the fit's likelihood (kernels/likelihood_terms.h) ---------------------------------------

namespace {

// Step 1, one thread per (point, coordinate); consecutive threads take consecutive points.
__global__ void LikelihoodWarpKernel(LikelihoodArrays a, int dims, int n, bool gradient) {
  const long idx = static_cast<long>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (idx >= static_cast<long>(n) * dims) return;
  const int p = static_cast<int>(idx % n), d = static_cast<int>(idx / n);
  const LikelihoodParamsView params{a.params, dims};
  const int wi = a.warp_index[d];
  const bool derivatives = gradient && wi >= 0;
  double dwa = 0, dwb = 0;
  LikelihoodWarpEntry(a.x[d + static_cast<long>(dims) * p], params.inv_l(d), params.a(d), params.b(d),
                      params.identity(d), &a.z[p + static_cast<long>(n) * d], derivatives ? &dwa : nullptr, &dwb);
  if (derivatives) {
    a.dwa[p + static_cast<long>(n) * wi] = dwa;
    a.dwb[p + static_cast<long>(n) * wi] = dwb;
  }
}

// Step 2, one thread per entry of the lower triangle (row p of column q = blockIdx.y).
__global__ void LikelihoodKernelMatrixKernel(LikelihoodArrays a, int dims, int n) {
  const int q = blockIdx.y;
  const int p = q + blockIdx.x * blockDim.x + threadIdx.x;
  if (p >= n) return;
  const LikelihoodParamsView params{a.params, dims};
  a.chol[p + static_cast<long>(n) * q] =
      p == q ? params.s2() + params.noise()
             : LikelihoodKernelEntry(LikelihoodDistance2(a.z, n, dims, p, q), params.s2());
}

// Step 4, one thread per pair (row p of column q = blockIdx.y), both triangles.
__global__ void LikelihoodPairsKernel(LikelihoodArrays a, int dims, int n) {
  const int q = blockIdx.y;
  const int p = blockIdx.x * blockDim.x + threadIdx.x;
  if (p >= n) return;
  const long at = p + static_cast<long>(n) * q;
  if (p == q) {
    a.c[at] = 0;
    a.s[at] = 0;
    return;
  }
  const int hi = p > q ? p : q, lo = p > q ? q : p;
  const LikelihoodParamsView params{a.params, dims};
  LikelihoodPairTerms(LikelihoodDistance2(a.z, n, dims, p, q), params.s2(), a.alpha[p], a.alpha[q],
                      a.kinv[hi + static_cast<long>(n) * lo], &a.c[at], &a.s[at]);
}

// Step 5, one thread per (point, coordinate), and per point the signal and diagonal terms
// (coordinate index D).
__global__ void LikelihoodRowsKernel(LikelihoodArrays a, int dims, int n) {
  const long idx = static_cast<long>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (idx >= static_cast<long>(n) * (dims + 1)) return;
  const int p = static_cast<int>(idx % n), d = static_cast<int>(idx / n);
  if (d < dims) {
    LikelihoodRowSums(a.c, a.z, n, p, d, &a.zr[p + static_cast<long>(n) * d], &a.ls[p + static_cast<long>(n) * d]);
    return;
  }
  double sum = 0;
  for (int q = 0; q < n; ++q) sum += a.s[p + static_cast<long>(n) * q];
  a.sig[p] = sum;
  a.dg[p] = a.alpha[p] * a.alpha[p] - a.kinv[p + static_cast<long>(n) * p];
}

// Step 6, one block: thread 0 the value, every thread some gradient entries (each summed over
// the points in order, so the result does not depend on the launch).
__global__ void LikelihoodFinalKernel(LikelihoodArrays a, int dims, int n, bool gradient) {
  if (threadIdx.x == 0) a.out[0] = LikelihoodValue(n, a.y, a.alpha, a.chol, *a.info);
  if (!gradient) return;
  const LikelihoodParamsView params{a.params, dims};
  const int count = dims + 2 + 2 * a.warped_count;
  for (int j = threadIdx.x; j < count; j += blockDim.x) {
    a.out[1 + j] = LikelihoodGradientEntry(j, n, params, a.warped_count, a.warped_dims, a.ls, a.zr, a.sig, a.dg,
                                           a.dwa, a.dwb);
  }
}

}  // namespace

cudaError_t LaunchLikelihoodInputs(const LikelihoodArrays& a, int dims, int n, bool gradient, cudaStream_t stream) {
  if (n <= 0 || dims <= 0) return cudaSuccess;
  const long entries = static_cast<long>(n) * dims;
  LikelihoodWarpKernel<<<static_cast<unsigned>((entries + kThreads - 1) / kThreads), kThreads, 0, stream>>>(
      a, dims, n, gradient);
  cudaError_t e = cudaGetLastError();
  if (e != cudaSuccess) return e;
  // Column q's rows q .. n-1; the grid's rows cover the longest column (the first).
  const dim3 grid(Blocks(n, kThreads), static_cast<unsigned>(n));
  LikelihoodKernelMatrixKernel<<<grid, kThreads, 0, stream>>>(a, dims, n);
  return cudaGetLastError();
}

cudaError_t LaunchLikelihoodResult(const LikelihoodArrays& a, int dims, int n, bool gradient, cudaStream_t stream) {
  if (n <= 0 || dims <= 0) return cudaSuccess;
  if (gradient) {
    const dim3 grid(Blocks(n, kThreads), static_cast<unsigned>(n));
    LikelihoodPairsKernel<<<grid, kThreads, 0, stream>>>(a, dims, n);
    cudaError_t e = cudaGetLastError();
    if (e != cudaSuccess) return e;
    const long entries = static_cast<long>(n) * (dims + 1);
    LikelihoodRowsKernel<<<static_cast<unsigned>((entries + kThreads - 1) / kThreads), kThreads, 0, stream>>>(
        a, dims, n);
    e = cudaGetLastError();
    if (e != cudaSuccess) return e;
  }
  LikelihoodFinalKernel<<<1, kThreads, 0, stream>>>(a, dims, n, gradient);
  return cudaGetLastError();
}

}  // namespace hpo::kernels::cuda
