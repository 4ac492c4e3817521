// The CUDA engine: GpEngine (gp_engine.h) on one NVIDIA GPU, with cuBLAS for the dense algebra and
// the hand-written kernels of cuda_kernels.cu for the rest. Built only when HPO_WITH_CUDA is ON,
// into the module hpo-cuda-engine.so, whose one export hands MakeCudaEngine and
// CudaEngineUnavailableReason to MakeGpEngine (kernels/cuda_engine_module.h). This file is plain
// C++ (Eigen on the host, the CUDA runtime and cuBLAS C APIs); only cuda_kernels.cu goes through
// nvcc.
//
// What runs where (see also docs/architecture.md, "The Gaussian-process engine"):
//   - host: the hyperparameter fit's L-BFGS steps and the posterior's Cholesky factorisation
//     (FitGp / BuildPosterior in gp_model.cc: the posterior arrives factorised), the warping and
//     lengthscale scaling of candidates (O(D m), negligible), the final D x m gradient assembly,
//     and the top-k choice over the pool's scores (see PoolTopK);
//   - device, the fit: each L-BFGS start's likelihood evaluations, in the LikelihoodDevices this
//     engine offers (cuda_likelihood.cc);
//   - device, Load: the inverse factor L^-1 (one cuBLAS trsm against the identity, n^3/3
//     multiply-adds at full matrix rate). Every later solve is then a product: a triangular solve
//     with a few right-hand sides runs row after row, and the acquisition's local refinement asks
//     for hundreds of them (on an H200, 0.31 s of acquisition at n = 1000 went to them);
//   - device, per batch of candidates: the Matern-5/2 ARD cross-covariance K(train, batch)
//     (own kernel, distances summed per coordinate), the mean K^T alpha (cuBLAS gemv),
//     V = L^-1 K (gemm), variance and log EI (own kernel, a port of log_ei.cc), and for
//     gradients B = L^-T V (gemm), the radial products (own kernel) and two gemm/gemv reductions;
//     everything the host needs comes back in one copy;
//   - device, Fantasize: the cross-covariance of the new point, l = L^-1 k (gemv), the new row of
//     L^-1, -(L^-T l)/d and 1/d, the rank-one pool update (gemv + own kernel) and alpha by two
//     gemv.
//   The products are plain gemm/gemv over the whole n x n block, whose upper triangle is kept 0
//   (zeroed after the trsm, never written since).
// Batches: as many candidates per batch as fit in the scratch budget (2 GiB or a quarter of the
// free memory at Load, whichever is less; 4 n x batch matrices with gradients, 2 without), at most
// 65535 (one grid dimension); HPO_CUDA_BATCH_COLUMNS=N caps it further (tests use it to cross
// batch boundaries).
//
// Size: the posterior is exact for any n whose inverse factor (8 cap^2 bytes, cap = n + reserve +
// 1) fits in 90% of the free device memory, with the factor itself beside it while Load inverts
// it: 20000 observations take 3.2 GB, and 6.4 GB during Load. Load answers Unavailable
// otherwise. (How many observations the posterior holds is decided upstream, by
// FitOptions::max_posterior_points, because the factorisation runs on the host.)
//
// Precision: doubles throughout. Agreement with the CPU engine: relative 1e-6 on mean, variance
// and log EI (tests/kernels/cuda_engine_test.cc); in practice ~1e-12, the differences being the
// summation order of cuBLAS and of the distance (direct differences here, |a|^2+|b|^2-2ab there).
// Determinism: cuBLAS's trsm/gemv/gemm and these kernels use no atomics, so results are
// reproducible on the same GPU and library version.
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <memory>
#include <cstdlib>
#include <limits>
#include <string>
#include <vector>

#include <cublas_v2.h>
#include <cuda_runtime_api.h>

#include <Eigen/Core>

#include "kernels/cuda_engine_module.h"
#include "kernels/cuda_kernels.h"
#include "kernels/cuda_likelihood.h"
#include "kernels/cuda_support.h"
#include "kernels/gp_engine.h"

namespace hpo::kernels {

// Handed to MakeGpEngine through hpo_cuda_engine_entry (kernels/cuda_engine_module.h).
GpStatus MakeCudaEngine(const EngineOptions& options, std::unique_ptr<GpEngine>* out);
std::string CudaEngineUnavailableReason();

namespace {

constexpr double kVarianceFloor = 1e-12;  // as the CPU engine: times the signal variance
constexpr size_t kMaxScratchBytes = size_t{2} << 30;
constexpr int kMaxBatchColumns = 65535;  // grid.y of the cross-covariance kernel
constexpr int kAscentCheckRounds = 8;     // Ascend: rounds between looks at the starts' active flags

std::string ProbeDevice() {
  int count = 0;
  const cudaError_t e = cudaGetDeviceCount(&count);
  if (e != cudaSuccess) {
    const bool absent = e == cudaErrorNoDevice || e == cudaErrorInsufficientDriver;
    return std::string(absent ? "no usable CUDA device (no NVIDIA GPU or driver on this machine?)" : "no usable CUDA device") +
           ": cudaGetDeviceCount failed (" + CudaErrorText(e) + ")";
  }
  if (count == 0) return "no CUDA device (cudaGetDeviceCount returned 0)";
  const cudaError_t k = cuda::CheckKernelImage();
  if (k != cudaSuccess) {
    return "this build's device code does not run on the CUDA device (" + CudaErrorText(k) +
           "; rebuild with CMAKE_CUDA_ARCHITECTURES set for it)";
  }
  return "";
}

int BatchColumnsOverride() {
  const char* v = std::getenv("HPO_CUDA_BATCH_COLUMNS");
  if (!v || !*v) return 0;
  const long n = std::strtol(v, nullptr, 10);
  return n > 0 ? static_cast<int>(std::min<long>(n, kMaxBatchColumns)) : 0;
}

// cuBLAS results written to device memory for a scope (cublasDdot into a device array), the
// handle's host mode restored when it ends, on every path: a handle left in device mode would
// read every later call's host alpha and beta as device addresses.
class DevicePointerMode {
 public:
  explicit DevicePointerMode(cublasHandle_t handle)
      : handle_(handle), status_(cublasSetPointerMode(handle, CUBLAS_POINTER_MODE_DEVICE)) {}
  ~DevicePointerMode() { cublasSetPointerMode(handle_, CUBLAS_POINTER_MODE_HOST); }
  DevicePointerMode(const DevicePointerMode&) = delete;
  DevicePointerMode& operator=(const DevicePointerMode&) = delete;
  cublasStatus_t status() const { return status_; }

 private:
  cublasHandle_t handle_;
  cublasStatus_t status_;
};

// HPO_CUDA_ASCENT=host: GpEngine::Ascend's host loop instead of the device loop (an A/B switch for
// the device benchmark, and a way out should the device loop misbehave on some device).
bool HostAscentAsked() { return HostAsked("HPO_CUDA_ASCENT"); }

class CudaEngine final : public GpEngine {
 public:
  CudaEngine(cublasHandle_t handle, int device, std::string description)
      : handle_(handle), device_(device), description_(std::move(description)), batch_override_(BatchColumnsOverride()) {}

  ~CudaEngine() override {
    if (handle_) cublasDestroy(handle_);
  }

  Device device() const override { return Device::kCuda; }
  std::string Describe() const override { return description_; }

  GpStatus Load(const Posterior& p, size_t reserve) override {
    loaded_ = false;
    const Eigen::Index d = p.inputs.rows(), n = p.inputs.cols();
    if (d == 0 || n == 0 || p.chol.rows() != n || p.chol.cols() != n || p.alpha.size() != n || p.y.size() != n ||
        p.hp.log_lengthscale.size() != d) {
      return GpStatus::InvalidArgument("engine Load: the posterior's shapes do not match");
    }
    if (p.hp.warped() && (p.hp.log_warp_a.size() != d || p.hp.log_warp_b.size() != d)) {
      return GpStatus::InvalidArgument("engine Load: warping parameters do not match the dimensions");
    }
    if (!p.inputs.allFinite() || !p.chol.allFinite() || !p.alpha.allFinite()) {
      return GpStatus::InvalidArgument("engine Load: non-finite posterior");
    }
    HPO_CUDA_TRY(cudaSetDevice(device_));
    dims_ = d;
    n_ = n;
    cap_ = n + static_cast<Eigen::Index>(reserve) + 1;
    s2_ = std::exp(p.hp.log_signal_variance);
    noise_ = p.noise_variance();
    inv_l_ = (-p.hp.log_lengthscale.array()).exp().matrix();
    warped_.assign(static_cast<size_t>(d), 0);
    warp_a_ = Eigen::VectorXd::Ones(d);
    warp_b_ = Eigen::VectorXd::Ones(d);
    if (p.hp.warped()) {
      for (Eigen::Index i = 0; i < d; ++i) {
        if (p.hp.log_warp_a[i] == 0.0 && p.hp.log_warp_b[i] == 0.0) continue;
        warped_[static_cast<size_t>(i)] = 1;
        warp_a_[i] = std::exp(p.hp.log_warp_a[i]);
        warp_b_[i] = std::exp(p.hp.log_warp_b[i]);
      }
    }
    // Release the previous posterior, pool and scratch before measuring what is free.
    linv_.Release();
    zt_.Release();
    pool_v_.Release();
    pool_z_.Release();
    k_.Release();
    v_.Release();
    g_.Release();
    ga_.Release();
    pool_m_ = pool_cap_ = 0;
    HPO_GP_TRY(CheckFits(static_cast<size_t>(cap_), Sq(n)));

    // The inverse factor, lower triangle in the top-left n x n block of a cap x cap array whose
    // other entries are 0 (Fantasize appends rows): L^-1 = trsm(L, I).
    HPO_GP_TRY(FillOnes(static_cast<size_t>(cap_)));
    HPO_CUDA_TRY(linv_.Reserve(Sq(cap_)));
    HPO_CUDA_TRY(cudaMemset(linv_.get(), 0, Sq(cap_) * sizeof(double)));
    {
      DeviceArray chol;
      HPO_CUDA_TRY(chol.Reserve(Sq(n)));
      HPO_CUDA_TRY(cudaMemcpy(chol.get(), p.chol.data(), Sq(n) * sizeof(double), cudaMemcpyHostToDevice));
      const int ni = static_cast<int>(n), ld = static_cast<int>(cap_);
      const double one = 1.0;
      HPO_CUBLAS_TRY(cublasDcopy(handle_, ni, ones_.get(), 1, linv_.get(), ld + 1));  // the identity
      HPO_CUBLAS_TRY(cublasDtrsm(handle_, CUBLAS_SIDE_LEFT, CUBLAS_FILL_MODE_LOWER, CUBLAS_OP_N, CUBLAS_DIAG_NON_UNIT, ni,
                                 ni, &one, chol.get(), ni, linv_.get(), ld));
      // The products below are plain gemm/gemv over the whole block: its upper triangle must be
      // 0, whatever trsm left there.
      HPO_CUDA_TRY(cuda::LaunchZeroStrictUpper(linv_.get(), ld, ni, nullptr));
      HPO_CUDA_TRY(cudaDeviceSynchronize());  // before `chol` is freed
    }
    // Training inputs, scaled and warped, transposed: cap x D.
    const Eigen::MatrixXd zt = Scaled(p.inputs, nullptr).transpose();
    HPO_CUDA_TRY(zt_.Reserve(static_cast<size_t>(cap_) * static_cast<size_t>(d)));
    HPO_CUDA_TRY(cudaMemcpy2D(zt_.get(), Bytes(cap_), zt.data(), Bytes(n), Bytes(n), static_cast<size_t>(d),
                              cudaMemcpyHostToDevice));
    y_.resize(cap_);
    y_.head(n) = p.y;
    HPO_CUDA_TRY(alpha_.Reserve(static_cast<size_t>(cap_)));
    HPO_CUDA_TRY(cudaMemcpy(alpha_.get(), p.alpha.data(), Bytes(n), cudaMemcpyHostToDevice));
    HPO_CUDA_TRY(lvec_.Reserve(static_cast<size_t>(cap_)));
    HPO_CUDA_TRY(rvec_.Reserve(static_cast<size_t>(cap_)));
    HPO_CUDA_TRY(xvec_.Reserve(static_cast<size_t>(d)));
    HPO_CUDA_TRY(dots_.Reserve(2));
    // 1 / l, warp a and b, warped flags: what the device ascent warps and scales with.
    {
      std::vector<double> wp(4 * static_cast<size_t>(d));
      for (Eigen::Index i = 0; i < d; ++i) {
        const size_t k = static_cast<size_t>(i), du = static_cast<size_t>(d);
        wp[k] = inv_l_[i];
        wp[du + k] = warp_a_[i];
        wp[2 * du + k] = warp_b_[i];
        wp[3 * du + k] = warped_[k] ? 1.0 : 0.0;
      }
      HPO_CUDA_TRY(warp_params_.Reserve(wp.size()));
      HPO_CUDA_TRY(cudaMemcpy(warp_params_.get(), wp.data(), wp.size() * sizeof(double), cudaMemcpyHostToDevice));
    }

    size_t free_bytes = 0, total_bytes = 0;
    HPO_CUDA_TRY(cudaMemGetInfo(&free_bytes, &total_bytes));
    scratch_bytes_ = std::min(kMaxScratchBytes, free_bytes / 4);
    loaded_ = true;
    return GpStatus::Ok();
  }

  GpStatus Evaluate(const Eigen::MatrixXd& points, double incumbent, bool gradients, PointScores* out) override {
    HPO_GP_TRY(CheckPoints(points));
    const Eigen::Index m = points.cols();
    out->mean.resize(m);
    out->variance.resize(m);
    out->log_ei.resize(m);
    if (gradients) out->log_ei_grad.resize(dims_, m); else out->log_ei_grad.resize(0, 0);
    if (m == 0) return GpStatus::Ok();
    Eigen::MatrixXd dwdx;
    const Eigen::MatrixXd zc = Scaled(points, gradients ? &dwdx : nullptr);
    const Eigen::Index batch = BatchColumns(m, gradients ? 4 : 2);
    const Eigen::Index per_column = PerColumn(gradients);
    HPO_GP_TRY(ReserveScoring(batch, gradients));
    HPO_CUDA_TRY(cand_.Reserve(static_cast<size_t>(dims_) * static_cast<size_t>(batch)));
    std::vector<double> res;
    for (Eigen::Index c0 = 0; c0 < m; c0 += batch) {
      const Eigen::Index cn64 = std::min(batch, m - c0);
      const int cn = static_cast<int>(cn64);
      HPO_CUDA_TRY(cudaMemcpy(cand_.get(), zc.col(c0).data(), Bytes(dims_ * cn64), cudaMemcpyHostToDevice));
      HPO_GP_TRY(EnqueueScores(cand_.get(), cn, incumbent, gradients, res_.get()));
      res.resize(static_cast<size_t>(per_column * cn64));
      HPO_CUDA_TRY(cudaMemcpy(res.data(), res_.get(), res.size() * sizeof(double), cudaMemcpyDeviceToHost));
      const double* h = res.data();
      std::copy(h, h + cn64, out->mean.data() + c0);
      std::copy(h + cn64, h + 2 * cn64, out->variance.data() + c0);
      std::copy(h + 2 * cn64, h + 3 * cn64, out->log_ei.data() + c0);
      if (!gradients) continue;
      const double* hd_mean = h + 3 * cn64;
      const double* hd_var = h + 4 * cn64;
      const double* hs_mean = h + 5 * cn64;
      const double* hs_var = h + 6 * cn64;
      const double* ht_mean = h + 7 * cn64;
      const double* ht_var = ht_mean + dims_ * cn64;
      for (Eigen::Index j = 0; j < cn64; ++j) {
        const double var_j = out->variance[c0 + j];
        for (Eigen::Index dd = 0; dd < dims_; ++dd) {
          const double z = zc(dd, c0 + j);
          const double dmean_dz = -(z * hs_mean[j] - ht_mean[j * dims_ + dd]);
          const double dvar_dz = 2.0 * (z * hs_var[j] - ht_var[j * dims_ + dd]);
          const double dz_dx = inv_l_[dd] * dwdx(dd, c0 + j);
          const double grad =
              (hd_mean[j] * dmean_dz + (var_j > kVarianceFloor * s2_ ? hd_var[j] * dvar_dz : 0.0)) * dz_dx;
          out->log_ei_grad(dd, c0 + j) = std::isfinite(grad) ? grad : 0.0;
        }
      }
    }
    return GpStatus::Ok();
  }

  // On the device: the whole ascent, rounds of propose (a kernel), the gradient evaluation of
  // Evaluate, and accept (a kernel), with no copy in between: one copy up (the starts, their
  // held coordinates, the step lengths), one back (the ends and their log EI). The starts must
  // fit one batch of columns; more (or HPO_CUDA_ASCENT=host) take the default host loop. Every
  // round evaluates all s starts, stopped ones at their current point (where accept leaves them
  // as they are). Every kAscentCheckRounds rounds the starts' active flags come back (s doubles,
  // one synchronisation) and the loop ends when every start has stopped, as the host loop does:
  // the exploit member's descent allows 60 rounds and its starts stop after far fewer.
  GpStatus Ascend(const Eigen::MatrixXd& starts, const std::vector<uint8_t>& movable, double incumbent,
                  int iterations, Eigen::MatrixXd* ends, Eigen::VectorXd* log_ei) override {
    HPO_GP_TRY(CheckPoints(starts));
    const Eigen::Index dims = dims_, s = starts.cols();
    if (!movable.empty() && movable.size() != static_cast<size_t>(dims * s)) {
      return GpEngine::Ascend(starts, movable, incumbent, iterations, ends, log_ei);  // says what is wrong
    }
    if (host_ascent_ || s == 0 || BatchColumns(s, 4) < s) {
      return GpEngine::Ascend(starts, movable, incumbent, iterations, ends, log_ei);
    }
    HPO_GP_TRY(ReserveScoring(s, true));
    // The state, column-major, in one array: cur (D x s), f (s), grad (D x s), step (s), active
    // (s), movable (D x s), trial, z, dwdx (D x s each). cur and f first: they are what comes back.
    const size_t ds = static_cast<size_t>(dims * s), sn = static_cast<size_t>(s);
    std::vector<double> host(6 * ds + 3 * sn, 0.0);
    std::copy(starts.data(), starts.data() + ds, host.begin());
    std::fill_n(host.begin() + static_cast<std::ptrdiff_t>(2 * ds + sn), sn, kAscentFirstStep);
    std::fill_n(host.begin() + static_cast<std::ptrdiff_t>(2 * ds + 2 * sn), sn, 1.0);
    for (size_t k = 0; k < ds; ++k) host[2 * ds + 3 * sn + k] = movable.empty() || movable[k] ? 1.0 : 0.0;
    HPO_CUDA_TRY(ascent_.Reserve(host.size()));
    HPO_CUDA_TRY(cudaMemcpy(ascent_.get(), host.data(), host.size() * sizeof(double), cudaMemcpyHostToDevice));
    double* base = ascent_.get();
    cuda::AscentState state{base, base + ds, base + ds + sn, base + 2 * ds + sn, base + 2 * ds + 2 * sn,
                            base + 2 * ds + 3 * sn, base + 3 * ds + 3 * sn, base + 4 * ds + 3 * sn,
                            base + 5 * ds + 3 * sn};
    const double* w = warp_params_.get();
    const cuda::WarpParams warp{w, w + dims, w + 2 * dims, w + 3 * dims};
    const Scores r = Layout(res_.get(), s);
    const cuda::TrialScores scores{r.var, r.log_ei, r.d_mean, r.d_var, r.s_mean, r.s_var, r.t_mean, r.t_var};
    const int di = static_cast<int>(dims), si = static_cast<int>(s);
    std::vector<double> active(sn);
    for (int round = 0; round <= std::max(iterations, 0); ++round) {
      const bool first = round == 0;
      HPO_CUDA_TRY(cuda::LaunchAscentPropose(state, warp, di, si, first, nullptr));
      HPO_GP_TRY(EnqueueScores(state.z, si, incumbent, true, res_.get()));
      HPO_CUDA_TRY(cuda::LaunchAscentAccept(state, scores, w, kVarianceFloor * s2_, di, si, first, nullptr));
      if (round > 0 && round % kAscentCheckRounds == 0 && round < iterations) {
        HPO_CUDA_TRY(cudaMemcpy(active.data(), state.active, sn * sizeof(double), cudaMemcpyDeviceToHost));
        if (std::all_of(active.begin(), active.end(), [](double a) { return a == 0.0; })) break;
      }
    }
    HPO_CUDA_TRY(cudaMemcpy(host.data(), ascent_.get(), (ds + sn) * sizeof(double), cudaMemcpyDeviceToHost));
    ends->resize(dims, s);
    std::copy(host.begin(), host.begin() + static_cast<std::ptrdiff_t>(ds), ends->data());
    log_ei->resize(s);
    std::copy(host.begin() + static_cast<std::ptrdiff_t>(ds), host.begin() + static_cast<std::ptrdiff_t>(ds + sn),
              log_ei->data());
    return GpStatus::Ok();
  }

  GpStatus SetPool(const Eigen::MatrixXd& points) override {
    if (!loaded_) return GpStatus::InvalidArgument("engine: nothing loaded");
    pool_m_ = 0;
    return ExtendPool(points);
  }

  GpStatus ExtendPool(const Eigen::MatrixXd& points) override {
    HPO_GP_TRY(CheckPoints(points));
    const Eigen::Index m0 = pool_m_, m = points.cols();
    if (m == 0) return GpStatus::Ok();
    HPO_GP_TRY(ReservePool(m0 + m));
    const Eigen::MatrixXd zc = Scaled(points, nullptr);
    HPO_CUDA_TRY(cudaMemcpy(pool_z_.get() + static_cast<size_t>(m0) * static_cast<size_t>(dims_), zc.data(),
                            Bytes(dims_ * m), cudaMemcpyHostToDevice));
    const double one = 1.0, zero = 0.0;
    const int n = static_cast<int>(n_), dims = static_cast<int>(dims_), ld = static_cast<int>(cap_);
    const Eigen::Index batch = BatchColumns(m, 1);
    HPO_CUDA_TRY(k_.Reserve(static_cast<size_t>(n_) * static_cast<size_t>(batch)));
    for (Eigen::Index c0 = 0; c0 < m; c0 += batch) {
      const int cn = static_cast<int>(std::min<Eigen::Index>(batch, m - c0));
      const size_t col = static_cast<size_t>(m0 + c0);
      double* v = pool_v_.get() + col * static_cast<size_t>(cap_);
      HPO_CUDA_TRY(cuda::LaunchCrossCovariance(zt_.get(), ld, n, pool_z_.get() + col * static_cast<size_t>(dims_), dims,
                                               cn, s2_, k_.get(), nullptr, n, nullptr));
      HPO_CUBLAS_TRY(cublasDgemv(handle_, CUBLAS_OP_T, n, cn, &one, k_.get(), n, alpha_.get(), 1, &zero,
                                 pool_mean_.get() + col, 1));
      // V = L^-1 K, into the pool's rows.
      HPO_CUBLAS_TRY(cublasDgemm(handle_, CUBLAS_OP_N, CUBLAS_OP_N, n, cn, n, &one, linv_.get(), ld, k_.get(), n, &zero, v,
                                 ld));
      HPO_CUDA_TRY(cuda::LaunchVarianceLogEi(v, ld, n, cn, s2_, kVarianceFloor * s2_, nullptr, 0.0, false,
                                             pool_var_.get() + col, nullptr, nullptr, nullptr, nullptr));
    }
    HPO_CUDA_TRY(cudaDeviceSynchronize());
    pool_m_ = m0 + m;
    return GpStatus::Ok();
  }

  size_t PoolSize() const override { return static_cast<size_t>(pool_m_); }

  // Scores on the device (one thread per pool entry); the choice on the host: the scores, means
  // and variances come back in one copy (8 bytes x 3 x m: 100 KB for a 4096-point pool, under a
  // millisecond for a million) and std::partial_sort picks the k best with the CPU engine's order (score
  // descending, ties and -inf by lower index), so both engines rank identically given equal
  // scores. A device top-k would pay off only for pools far beyond what SuggestBatch builds.
  GpStatus PoolTopK(double incumbent, size_t k, std::vector<RankedCandidate>* out) override {
    if (!loaded_) return GpStatus::InvalidArgument("engine: nothing loaded");
    HPO_GP_TRY(OnDevice());
    out->clear();
    const Eigen::Index m = pool_m_;
    if (m == 0 || k == 0) return GpStatus::Ok();
    const size_t mu = static_cast<size_t>(m);
    HPO_CUDA_TRY(score_.Reserve(3 * mu));
    HPO_CUDA_TRY(cuda::LaunchPoolScores(pool_mean_.get(), pool_var_.get(), static_cast<int>(m), incumbent,
                                        score_.get(), nullptr));
    std::vector<double> packed(3 * mu);  // scores, means, variances: one copy back
    HPO_CUDA_TRY(cudaMemcpy(packed.data(), score_.get(), 3 * mu * sizeof(double), cudaMemcpyDeviceToHost));
    const double* score = packed.data();
    const double* mean = score + mu;
    const double* var = mean + mu;
    std::vector<size_t> order(static_cast<size_t>(m));
    for (size_t i = 0; i < order.size(); ++i) order[i] = i;
    const size_t take = std::min(k, order.size());
    std::partial_sort(order.begin(), order.begin() + static_cast<std::ptrdiff_t>(take), order.end(),
                      [&](size_t a, size_t b) { return score[a] > score[b] || (score[a] == score[b] && a < b); });
    for (size_t i = 0; i < take; ++i) {
      const size_t j = order[i];
      out->push_back({j, score[j], mean[j], var[j]});
    }
    return GpStatus::Ok();
  }

  // A device error part-way (after the pool or the factor changed) leaves the factor, the
  // targets and the pool out of step: the engine then holds nothing until the next Load, so
  // no later call mixes them. A pivot that is not positive is found before anything changes.
  GpStatus Fantasize(const Eigen::VectorXd& x, double y) override {
    if (!loaded_) return GpStatus::InvalidArgument("engine: nothing loaded");
    if (x.size() != dims_ || !x.allFinite() || !std::isfinite(y)) {
      return GpStatus::InvalidArgument("Fantasize: wrong size or non-finite value");
    }
    HPO_GP_TRY(OnDevice());
    GpStatus st = Append(x, y);
    if (!st.ok() && st.code() != GpStatus::Code::kNumerical) {
      loaded_ = false;
      pool_m_ = 0;
    }
    return st;
  }

  // The pool's device memory back (gp_engine.h): a job's engine lives as long as its record.
  void ReleasePool() override {
    if (OnDevice().ok()) {
      pool_z_.Release();
      pool_v_.Release();
      pool_mean_.Release();
      pool_var_.Release();
      score_.Release();
      vl_.Release();
    }
    pool_m_ = pool_cap_ = 0;
  }

  size_t TrainingSize() const override { return static_cast<size_t>(n_); }

  void LikelihoodDevices(size_t count, std::vector<LikelihoodDevice*>* out, std::string* why) override {
    out->clear();
    if (why != nullptr) why->clear();
    if (HostFitAsked()) {
      if (why != nullptr) *why = "HPO_CUDA_FIT=host";
      return;
    }
    while (likelihoods_.size() < count) {
      std::string reason;
      std::unique_ptr<LikelihoodDevice> device = MakeCudaLikelihood(device_, &reason);
      if (device == nullptr) {
        if (why != nullptr) *why = reason;
        return;
      }
      likelihoods_.push_back(std::move(device));
    }
    for (size_t i = 0; i < count; ++i) out->push_back(likelihoods_[i].get());
  }

 private:
  static size_t Bytes(Eigen::Index count) { return static_cast<size_t>(count) * sizeof(double); }

  // Fantasize's work: conditions the factor, the targets, alpha and the pool on (x, y).
  GpStatus Append(const Eigen::VectorXd& x, double y) {
    if (n_ + 1 >= cap_) HPO_GP_TRY(Grow());
    const Eigen::MatrixXd z = Scaled(x, nullptr);
    const int n = static_cast<int>(n_), dims = static_cast<int>(dims_), ld = static_cast<int>(cap_);
    HPO_CUDA_TRY(cudaMemcpy(xvec_.get(), z.data(), Bytes(dims_), cudaMemcpyHostToDevice));
    // l = L^-1 k(train, x); mean at x = k . alpha. (rvec_ holds k, then serves as scratch.) The
    // two dot products land on the device and come back in one copy: with host results each
    // cublasDdot waited for the device and copied on its own.
    const double one = 1.0, zero = 0.0;
    HPO_CUDA_TRY(cuda::LaunchCrossCovariance(zt_.get(), ld, n, xvec_.get(), dims, 1, s2_, rvec_.get(), nullptr, n,
                                             nullptr));
    HPO_CUBLAS_TRY(cublasDgemv(handle_, CUBLAS_OP_N, n, n, &one, linv_.get(), ld, rvec_.get(), 1, &zero, lvec_.get(), 1));
    {
      const DevicePointerMode device_results(handle_);
      HPO_CUBLAS_TRY(device_results.status());
      HPO_CUBLAS_TRY(cublasDdot(handle_, n, rvec_.get(), 1, alpha_.get(), 1, dots_.get()));
      HPO_CUBLAS_TRY(cublasDdot(handle_, n, lvec_.get(), 1, lvec_.get(), 1, dots_.get() + 1));
    }
    double dots[2] = {0.0, 0.0};
    HPO_CUDA_TRY(cudaMemcpy(dots, dots_.get(), sizeof dots, cudaMemcpyDeviceToHost));
    const double mu = dots[0], ll = dots[1];
    const double d2 = s2_ + noise_ - ll;
    if (!(d2 > 1e-14 * s2_)) return GpStatus::Numerical("Fantasize: the new pivot is not positive");
    const double d = std::sqrt(d2);
    if (pool_m_ > 0) {
      // cov(pool_j, x) = k(pool_j, x) - v_j . l; the new factor row of the pool = cov / d.
      const int m = static_cast<int>(pool_m_);
      HPO_CUDA_TRY(vl_.Reserve(static_cast<size_t>(m)));
      HPO_CUBLAS_TRY(cublasDgemv(handle_, CUBLAS_OP_T, n, m, &one, pool_v_.get(), ld, lvec_.get(), 1, &zero, vl_.get(), 1));
      HPO_CUDA_TRY(cuda::LaunchFantasyPoolUpdate(pool_z_.get(), dims, m, xvec_.get(), s2_, vl_.get(), d, (y - mu) / d,
                                                 kVarianceFloor * s2_, pool_v_.get(), ld, n, pool_var_.get(),
                                                 pool_mean_.get(), nullptr));
    }
    // Append x to the training inputs (row n of the transposed array, copied on the device). L
    // gains the row (l^T, d), so L^-1 gains the row (-(L^-T l)^T / d, 1/d), written straight into
    // row n (stride ld).
    HPO_CUBLAS_TRY(cublasDcopy(handle_, dims, xvec_.get(), 1, zt_.get() + n_, ld));
    const double minus_inv_d = -1.0 / d;
    HPO_CUBLAS_TRY(cublasDgemv(handle_, CUBLAS_OP_T, n, n, &minus_inv_d, linv_.get(), ld, lvec_.get(), 1, &zero,
                               linv_.get() + n_, ld));
    y_[n_] = y;
    // One copy up: the targets (fantasy included), then 1/d, which a device copy puts on the
    // diagonal (rvec_ has cap >= n + 2 entries: Grow keeps n + 1 < cap).
    std::vector<double> up(static_cast<size_t>(n_) + 2);
    std::copy(y_.data(), y_.data() + n_ + 1, up.begin());
    up[static_cast<size_t>(n_) + 1] = 1.0 / d;
    HPO_CUDA_TRY(cudaMemcpy(rvec_.get(), up.data(), up.size() * sizeof(double), cudaMemcpyHostToDevice));
    HPO_CUBLAS_TRY(cublasDcopy(handle_, 1, rvec_.get() + n_ + 1, 1,
                               linv_.get() + static_cast<size_t>(n_) + static_cast<size_t>(n_) * static_cast<size_t>(cap_),
                               1));
    ++n_;
    // alpha = L^-T (L^-1 y).
    HPO_CUBLAS_TRY(cublasDgemv(handle_, CUBLAS_OP_N, n + 1, n + 1, &one, linv_.get(), ld, rvec_.get(), 1, &zero,
                               lvec_.get(), 1));
    HPO_CUBLAS_TRY(cublasDgemv(handle_, CUBLAS_OP_T, n + 1, n + 1, &one, linv_.get(), ld, lvec_.get(), 1, &zero,
                               alpha_.get(), 1));
    HPO_CUDA_TRY(cudaDeviceSynchronize());
    return GpStatus::Ok();
  }
  static size_t Sq(Eigen::Index c) { return static_cast<size_t>(c) * static_cast<size_t>(c); }

  GpStatus CheckPoints(const Eigen::MatrixXd& points) const {
    if (!loaded_) return GpStatus::InvalidArgument("engine: nothing loaded");
    HPO_GP_TRY(OnDevice());
    if (points.rows() != dims_) {
      return GpStatus::InvalidArgument("points have " + std::to_string(points.rows()) + " coordinates, the model " +
                                       std::to_string(dims_));
    }
    if (!points.allFinite()) return GpStatus::InvalidArgument("non-finite candidate coordinate");
    return GpStatus::Ok();
  }

  // Makes the engine's device the calling thread's current one: a proposer thread may call an
  // engine on another device than its last call's (the pointers are valid on theirs only).
  GpStatus OnDevice() const {
    HPO_CUDA_TRY(cudaSetDevice(device_));
    return GpStatus::Ok();
  }

  // Where a batch of cn columns' scores lie in the results array: mean, variance, log EI, and
  // with gradients d log EI / d mean and / d variance, the column sums s_mean and s_var (cn
  // each), then t_mean and t_var (D x cn each). Evaluate copies it back in one piece.
  struct Scores {
    double *mean, *var, *log_ei, *d_mean, *d_var, *s_mean, *s_var, *t_mean, *t_var;
  };
  Scores Layout(double* base, Eigen::Index cn) const {
    Scores r;
    r.mean = base;
    r.var = r.mean + cn;
    r.log_ei = r.var + cn;
    r.d_mean = r.log_ei + cn;
    r.d_var = r.d_mean + cn;
    r.s_mean = r.d_var + cn;
    r.s_var = r.s_mean + cn;
    r.t_mean = r.s_var + cn;
    r.t_var = r.t_mean + dims_ * cn;
    return r;
  }
  Eigen::Index PerColumn(bool gradients) const { return gradients ? 7 + 2 * dims_ : 3; }

  // Scratch for scoring batches of up to `batch` columns.
  GpStatus ReserveScoring(Eigen::Index batch, bool gradients) {
    const size_t nb = static_cast<size_t>(n_) * static_cast<size_t>(batch);
    HPO_CUDA_TRY(k_.Reserve(nb));
    HPO_CUDA_TRY(v_.Reserve(nb));
    HPO_CUDA_TRY(res_.Reserve(static_cast<size_t>(PerColumn(gradients)) * static_cast<size_t>(batch)));
    if (gradients) {
      HPO_CUDA_TRY(g_.Reserve(nb));
      HPO_CUDA_TRY(ga_.Reserve(nb));
    }
    return GpStatus::Ok();
  }

  // Queues the scores of cn candidates (`cand`: D x cn on the device, warped and scaled) into
  // `res` (Layout), without waiting for them.
  GpStatus EnqueueScores(const double* cand, int cn, double incumbent, bool gradients, double* res) {
    const Scores r = Layout(res, cn);
    const double one = 1.0, zero = 0.0;
    const int n = static_cast<int>(n_), dims = static_cast<int>(dims_), ld = static_cast<int>(cap_);
    HPO_CUDA_TRY(cuda::LaunchCrossCovariance(zt_.get(), ld, n, cand, dims, cn, s2_, k_.get(),
                                             gradients ? g_.get() : nullptr, n, nullptr));
    HPO_CUBLAS_TRY(cublasDgemv(handle_, CUBLAS_OP_T, n, cn, &one, k_.get(), n, alpha_.get(), 1, &zero, r.mean, 1));
    // V = L^-1 K.
    HPO_CUBLAS_TRY(cublasDgemm(handle_, CUBLAS_OP_N, CUBLAS_OP_N, n, cn, n, &one, linv_.get(), ld, k_.get(), n,
                               &zero, v_.get(), n));
    HPO_CUDA_TRY(cuda::LaunchVarianceLogEi(v_.get(), n, n, cn, s2_, kVarianceFloor * s2_, r.mean, incumbent, true,
                                           r.var, r.log_ei, gradients ? r.d_mean : nullptr,
                                           gradients ? r.d_var : nullptr, nullptr));
    if (!gradients) return GpStatus::Ok();
    // B = L^-T V (over K, no longer needed); ga = g .* alpha (per row), gb = g .* B (in place
    // over B); then the column sums and Z^T-products of the CPU engine's formulas.
    HPO_CUBLAS_TRY(cublasDgemm(handle_, CUBLAS_OP_T, CUBLAS_OP_N, n, cn, n, &one, linv_.get(), ld, v_.get(), n,
                               &zero, k_.get(), n));
    HPO_CUDA_TRY(cuda::LaunchRadialProducts(g_.get(), n, alpha_.get(), nullptr, n, n, cn, ga_.get(), nullptr));
    HPO_CUDA_TRY(cuda::LaunchRadialProducts(g_.get(), n, nullptr, k_.get(), n, n, cn, k_.get(), nullptr));
    HPO_CUBLAS_TRY(cublasDgemv(handle_, CUBLAS_OP_T, n, cn, &one, ga_.get(), n, ones_.get(), 1, &zero, r.s_mean, 1));
    HPO_CUBLAS_TRY(cublasDgemv(handle_, CUBLAS_OP_T, n, cn, &one, k_.get(), n, ones_.get(), 1, &zero, r.s_var, 1));
    HPO_CUBLAS_TRY(cublasDgemm(handle_, CUBLAS_OP_T, CUBLAS_OP_N, dims, cn, n, &one, zt_.get(), ld, ga_.get(), n,
                               &zero, r.t_mean, dims));
    HPO_CUBLAS_TRY(cublasDgemm(handle_, CUBLAS_OP_T, CUBLAS_OP_N, dims, cn, n, &one, zt_.get(), ld, k_.get(), n,
                               &zero, r.t_var, dims));
    return GpStatus::Ok();
  }

  // The inverse factor for `cap` points (plus the transposed inputs, and `extra` doubles beside
  // them for a while) must fit in 90% of the free memory.
  GpStatus CheckFits(size_t cap, size_t extra = 0) const {
    size_t free_bytes = 0, total_bytes = 0;
    HPO_CUDA_TRY(cudaMemGetInfo(&free_bytes, &total_bytes));
    const double need =
        (static_cast<double>(cap) * static_cast<double>(cap + static_cast<size_t>(dims_) + 5) + static_cast<double>(extra)) *
        8.0;
    if (need > 0.9 * static_cast<double>(free_bytes)) {
      char buf[200];
      std::snprintf(buf, sizeof buf, "CUDA engine: an exact posterior of %zu points needs %.2f GiB, %.2f GiB free", cap,
                    need / 1073741824.0, static_cast<double>(free_bytes) / 1073741824.0);
      return GpStatus::Unavailable(buf);
    }
    return GpStatus::Ok();
  }

  Eigen::Index BatchColumns(Eigen::Index m, int matrices) const {
    const double per_column = 8.0 * static_cast<double>(n_) * matrices;
    Eigen::Index b = static_cast<Eigen::Index>(std::max(1.0, static_cast<double>(scratch_bytes_) / per_column));
    b = std::min<Eigen::Index>({b, m, kMaxBatchColumns});
    if (batch_override_ > 0) b = std::min<Eigen::Index>(b, batch_override_);
    return std::max<Eigen::Index>(b, 1);
  }

  GpStatus FillOnes(size_t count) {
    HPO_CUDA_TRY(ones_.Reserve(count));
    const std::vector<double> ones(count, 1.0);
    HPO_CUDA_TRY(cudaMemcpy(ones_.get(), ones.data(), count * sizeof(double), cudaMemcpyHostToDevice));
    return GpStatus::Ok();
  }

  // Pool storage for at least `columns` candidates, keeping the first pool_m_.
  GpStatus ReservePool(Eigen::Index columns) {
    if (columns <= pool_cap_) return GpStatus::Ok();
    const Eigen::Index cap = std::max<Eigen::Index>(columns, pool_cap_ + pool_cap_ / 2);
    const size_t c = static_cast<size_t>(cap);
    DeviceArray z, v, mean, var;
    HPO_CUDA_TRY(z.Reserve(c * static_cast<size_t>(dims_)));
    HPO_CUDA_TRY(v.Reserve(c * static_cast<size_t>(cap_)));
    HPO_CUDA_TRY(mean.Reserve(c));
    HPO_CUDA_TRY(var.Reserve(c));
    if (pool_m_ > 0) {
      const size_t m = static_cast<size_t>(pool_m_);
      HPO_CUDA_TRY(cudaMemcpy(z.get(), pool_z_.get(), m * static_cast<size_t>(dims_) * sizeof(double),
                              cudaMemcpyDeviceToDevice));
      HPO_CUDA_TRY(cudaMemcpy(v.get(), pool_v_.get(), m * static_cast<size_t>(cap_) * sizeof(double),
                              cudaMemcpyDeviceToDevice));
      HPO_CUDA_TRY(cudaMemcpy(mean.get(), pool_mean_.get(), m * sizeof(double), cudaMemcpyDeviceToDevice));
      HPO_CUDA_TRY(cudaMemcpy(var.get(), pool_var_.get(), m * sizeof(double), cudaMemcpyDeviceToDevice));
    }
    pool_z_.swap(z);
    pool_v_.swap(v);
    pool_mean_.swap(mean);
    pool_var_.swap(var);
    pool_cap_ = cap;
    return GpStatus::Ok();
  }

  // Doubles the capacity for training points (factor, inputs, alpha, pool rows).
  GpStatus Grow() {
    const Eigen::Index cap = cap_ * 2;
    const size_t c = static_cast<size_t>(cap);
    HPO_GP_TRY(CheckFits(c));
    DeviceArray l, zt, alpha, lvec, rvec, pv;
    HPO_CUDA_TRY(l.Reserve(c * c));
    HPO_CUDA_TRY(cudaMemset(l.get(), 0, c * c * sizeof(double)));
    HPO_CUDA_TRY(cudaMemcpy2D(l.get(), Bytes(cap), linv_.get(), Bytes(cap_), Bytes(n_), static_cast<size_t>(n_),
                              cudaMemcpyDeviceToDevice));
    HPO_CUDA_TRY(zt.Reserve(c * static_cast<size_t>(dims_)));
    HPO_CUDA_TRY(cudaMemcpy2D(zt.get(), Bytes(cap), zt_.get(), Bytes(cap_), Bytes(n_), static_cast<size_t>(dims_),
                              cudaMemcpyDeviceToDevice));
    HPO_CUDA_TRY(alpha.Reserve(c));
    HPO_CUDA_TRY(cudaMemcpy(alpha.get(), alpha_.get(), Bytes(n_), cudaMemcpyDeviceToDevice));
    HPO_CUDA_TRY(lvec.Reserve(c));
    HPO_CUDA_TRY(rvec.Reserve(c));
    if (pool_cap_ > 0) {
      HPO_CUDA_TRY(pv.Reserve(c * static_cast<size_t>(pool_cap_)));
      if (pool_m_ > 0) {
        HPO_CUDA_TRY(cudaMemcpy2D(pv.get(), Bytes(cap), pool_v_.get(), Bytes(cap_), Bytes(n_),
                                  static_cast<size_t>(pool_m_), cudaMemcpyDeviceToDevice));
      }
      pool_v_.swap(pv);
    }
    linv_.swap(l);
    zt_.swap(zt);
    alpha_.swap(alpha);
    lvec_.swap(lvec);
    rvec_.swap(rvec);
    y_.conservativeResize(cap);
    cap_ = cap;
    return FillOnes(c);
  }

  // z = w(x) / l for a block of points; with dwdx, also the warp's derivative (as the CPU engine).
  template <class Block>
  Eigen::MatrixXd Scaled(const Block& x, Eigen::MatrixXd* dwdx) const {
    Eigen::MatrixXd z(x.rows(), x.cols());
    if (dwdx) dwdx->setOnes(x.rows(), x.cols());
    for (Eigen::Index j = 0; j < x.cols(); ++j) {
      for (Eigen::Index d = 0; d < x.rows(); ++d) {
        double v = x(d, j);
        if (warped_[static_cast<size_t>(d)]) {
          if (dwdx) (*dwdx)(d, j) = KumaraswamyWarpDerivative(v, warp_a_[d], warp_b_[d]);
          v = KumaraswamyWarp(v, warp_a_[d], warp_b_[d]);
        }
        z(d, j) = v * inv_l_[d];
      }
    }
    return z;
  }

  cublasHandle_t handle_;
  int device_;
  std::string description_;
  int batch_override_;
  bool loaded_ = false;
  Eigen::Index dims_ = 0, n_ = 0, cap_ = 0;
  double s2_ = 1, noise_ = 0;
  size_t scratch_bytes_ = 0;
  Eigen::VectorXd inv_l_, warp_a_, warp_b_;
  std::vector<uint8_t> warped_;
  Eigen::VectorXd y_;  // host copy of the targets (fantasies appended)
  // Device state: inverse factor L^-1 (cap x cap, lower; 0 elsewhere), transposed scaled inputs
  // (cap x D), alpha, ones.
  DeviceArray linv_, zt_, alpha_, ones_;
  // Pool: scaled points (D x pool_cap), L^-1 K(train, pool) (cap x pool_cap), mean, variance.
  DeviceArray pool_z_, pool_v_, pool_mean_, pool_var_;
  Eigen::Index pool_m_ = 0, pool_cap_ = 0;
  // Scratch.
  DeviceArray k_, v_, g_, ga_, cand_, res_;
  DeviceArray lvec_, rvec_, xvec_, vl_, score_, dots_;
  // Ascend: its state (see Ascend) and the warp parameters (4 x D, from Load).
  DeviceArray ascent_, warp_params_;
  bool host_ascent_ = HostAscentAsked();
  // The fit's likelihood devices (LikelihoodDevices), kept for the next fits.
  std::vector<std::unique_ptr<LikelihoodDevice>> likelihoods_;
};

}  // namespace

std::string CudaEngineUnavailableReason() { return ProbeDevice(); }

GpStatus MakeCudaEngine(const EngineOptions& /*options*/, std::unique_ptr<GpEngine>* out) {
  const std::string reason = ProbeDevice();
  if (!reason.empty()) return GpStatus::Unavailable(reason);
  int device = 0;
  HPO_CUDA_TRY(cudaGetDevice(&device));
  cudaDeviceProp prop;
  HPO_CUDA_TRY(cudaGetDeviceProperties(&prop, device));
  cublasHandle_t handle = nullptr;
  HPO_CUBLAS_TRY(cublasCreate(&handle));
  int version = 0;
  cublasGetVersion(handle, &version);
  char buf[400];
  std::snprintf(buf, sizeof buf, "cuda (%s, sm_%d%d, %.0f GiB, cuBLAS %d.%d; %s, the posterior's factor on the CPU)",
                prop.name, prop.major, prop.minor, static_cast<double>(prop.totalGlobalMem) / 1073741824.0,
                version / 10000, (version / 100) % 100,
                HostFitAsked() ? "the fit on the CPU (HPO_CUDA_FIT=host)" : "the fit's likelihood on the GPU");
  *out = std::make_unique<CudaEngine>(handle, device, buf);
  return GpStatus::Ok();
}

}  // namespace hpo::kernels

// The module's one export (kernels/cuda_engine_module.h).
extern "C" __attribute__((visibility("default"))) const hpo::kernels::CudaEngineEntry* hpo_cuda_engine_entry() {
  using namespace hpo::kernels;
  static const CudaEngineEntry entry{kCudaEngineInterface, sizeof(EngineOptions), sizeof(Posterior), sizeof(GpEngine),
                                     &MakeCudaEngine, &CudaEngineUnavailableReason};
  return &entry;
}
