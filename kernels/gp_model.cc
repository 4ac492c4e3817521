#include "kernels/gp_model.h"

#include <algorithm>
#include <atomic>
#include <cmath>
#include <exception>
#include <functional>
#include <limits>
#include <mutex>
#include <numeric>
#include <system_error>
#include <thread>
#include <utility>
#include <vector>

#ifdef _OPENMP
#include <omp.h>
#endif

#include <Eigen/Cholesky>

#include "kernels/lbfgs.h"
#include "kernels/matern.h"
#include "kernels/output_warp.h"
#include "kernels/quantile.h"
#include "kernels/random.h"

namespace hpo::kernels {
namespace {

// The threads a caller's `threads` means: itself when positive, else OpenMP's team size (1
// without OpenMP).
int TeamSize(int threads) {
  if (threads > 0) return threads;
#ifdef _OPENMP
  return std::max(1, omp_get_max_threads());
#else
  return 1;
#endif
}

constexpr double kInf = std::numeric_limits<double>::infinity();
constexpr double kLog2Pi = 1.8378770664093454836;

bool AnyWarp(const WarpMask& mask) { return std::any_of(mask.begin(), mask.end(), [](uint8_t m) { return m != 0; }); }

std::vector<size_t> WarpedDims(const WarpMask& mask) {
  std::vector<size_t> out;
  for (size_t d = 0; d < mask.size(); ++d) {
    if (mask[d]) out.push_back(d);
  }
  return out;
}

size_t ParameterCount(size_t dims, const WarpMask& mask) { return dims + 2 + 2 * WarpedDims(mask).size(); }

// Prior mean and variance of every packed parameter.
void Prior(size_t dims, const WarpMask& mask, double lengthscale_log_median, Eigen::VectorXd* mean,
           Eigen::VectorXd* var) {
  const size_t p = ParameterCount(dims, mask);
  mean->resize(static_cast<Eigen::Index>(p));
  var->resize(static_cast<Eigen::Index>(p));
  const double l_mean = std::isnan(lengthscale_log_median)
                            ? std::sqrt(2.0) + 0.5 * std::log(static_cast<double>(dims))
                            : lengthscale_log_median;
  for (size_t d = 0; d < dims; ++d) {
    (*mean)[d] = l_mean;
    (*var)[d] = 3.0;
  }
  (*mean)[dims] = 0.0;
  (*var)[dims] = 1.0;
  (*mean)[dims + 1] = -5.0;
  (*var)[dims + 1] = 4.0;
  for (size_t i = dims + 2; i < p; ++i) {
    (*mean)[i] = 0.0;
    (*var)[i] = 0.5625;
  }
}

// The negative log prior (Prior's independent normals, constants dropped) at theta, and its
// gradient: what the likelihood adds on the host, and FitGp adds to a likelihood device's.
double NegLogPrior(const Eigen::VectorXd& theta, const Eigen::VectorXd& mean, const Eigen::VectorXd& var) {
  return ((theta - mean).array().square() / (2.0 * var.array())).sum();
}
Eigen::VectorXd NegLogPriorGradient(const Eigen::VectorXd& theta, const Eigen::VectorXd& mean,
                                    const Eigen::VectorXd& var) {
  return ((theta - mean).array() / var.array()).matrix();
}

}  // namespace

Eigen::MatrixXd WarpInputs(const Hyperparameters& hp, const Eigen::MatrixXd& points) {
  if (!hp.warped()) return points;
  Eigen::MatrixXd w = points;
  for (Eigen::Index d = 0; d < points.rows(); ++d) {
    if (hp.log_warp_a[d] == 0.0 && hp.log_warp_b[d] == 0.0) continue;
    const double a = std::exp(hp.log_warp_a[d]), b = std::exp(hp.log_warp_b[d]);
    for (Eigen::Index j = 0; j < points.cols(); ++j) w(d, j) = KumaraswamyWarp(points(d, j), a, b);
  }
  return w;
}

Eigen::MatrixXd KernelMatrix(const Hyperparameters& hp, const Eigen::MatrixXd& a, const Eigen::MatrixXd& b) {
  const Eigen::MatrixXd wa = WarpInputs(hp, a), wb = WarpInputs(hp, b);
  const double s2 = std::exp(hp.log_signal_variance);
  Eigen::MatrixXd k(a.cols(), b.cols());
  for (Eigen::Index i = 0; i < a.cols(); ++i) {
    for (Eigen::Index j = 0; j < b.cols(); ++j) {
      double r2 = 0;
      for (Eigen::Index d = 0; d < a.rows(); ++d) {
        const double diff = (wa(d, i) - wb(d, j)) / std::exp(hp.log_lengthscale[d]);
        r2 += diff * diff;
      }
      k(i, j) = Matern52(std::sqrt(r2), s2);
    }
  }
  return k;
}

Eigen::VectorXd PosteriorMean(const Posterior& posterior, const Eigen::MatrixXd& points) {
  const Hyperparameters& hp = posterior.hp;
  const Eigen::ArrayXd inv_l = (-hp.log_lengthscale.array()).exp();
  const Eigen::MatrixXd z = inv_l.matrix().asDiagonal() * WarpInputs(hp, posterior.inputs);  // D x n
  const Eigen::RowVectorXd z2 = z.colwise().squaredNorm();
  const double s2 = std::exp(hp.log_signal_variance);
  constexpr Eigen::Index kChunk = 1024;
  Eigen::VectorXd mean(points.cols());
  for (Eigen::Index begin = 0; begin < points.cols(); begin += kChunk) {
    const Eigen::Index m = std::min(kChunk, points.cols() - begin);
    const Eigen::MatrixXd q = inv_l.matrix().asDiagonal() * WarpInputs(hp, points.middleCols(begin, m));  // D x m
    const Eigen::VectorXd q2 = q.colwise().squaredNorm().transpose();
    Eigen::MatrixXd r2 = -2.0 * (q.transpose() * z);  // m x n
    r2.colwise() += q2;
    r2.rowwise() += z2;
    const Eigen::MatrixXd k = r2.unaryExpr([s2](double v) { return Matern52(std::sqrt(std::max(v, 0.0)), s2); });
    mean.segment(begin, m) = k * posterior.alpha;
  }
  return mean;
}

// ---- packing --------------------------------------------------------------------------------

Eigen::VectorXd PackHyperparameters(const Hyperparameters& hp, const WarpMask& mask) {
  const size_t dims = static_cast<size_t>(hp.log_lengthscale.size());
  const std::vector<size_t> warped = WarpedDims(mask);
  Eigen::VectorXd theta(static_cast<Eigen::Index>(ParameterCount(dims, mask)));
  theta.head(static_cast<Eigen::Index>(dims)) = hp.log_lengthscale;
  theta[dims] = hp.log_signal_variance;
  theta[dims + 1] = hp.log_noise_variance;
  for (size_t i = 0; i < warped.size(); ++i) {
    theta[dims + 2 + i] = hp.warped() ? hp.log_warp_a[warped[i]] : 0.0;
    theta[dims + 2 + warped.size() + i] = hp.warped() ? hp.log_warp_b[warped[i]] : 0.0;
  }
  return theta;
}

Hyperparameters UnpackHyperparameters(const Eigen::VectorXd& theta, size_t dims, const WarpMask& mask) {
  const std::vector<size_t> warped = WarpedDims(mask);
  Hyperparameters hp;
  hp.log_lengthscale = theta.head(static_cast<Eigen::Index>(dims));
  hp.log_signal_variance = theta[dims];
  hp.log_noise_variance = theta[dims + 1];
  if (!warped.empty()) {
    hp.log_warp_a = Eigen::VectorXd::Zero(static_cast<Eigen::Index>(dims));
    hp.log_warp_b = Eigen::VectorXd::Zero(static_cast<Eigen::Index>(dims));
    for (size_t i = 0; i < warped.size(); ++i) {
      hp.log_warp_a[warped[i]] = theta[dims + 2 + i];
      hp.log_warp_b[warped[i]] = theta[dims + 2 + warped.size() + i];
    }
  }
  return hp;
}

void HyperparameterBounds(size_t dims, const WarpMask& mask, Eigen::VectorXd* lower, Eigen::VectorXd* upper) {
  const size_t p = ParameterCount(dims, mask);
  lower->resize(static_cast<Eigen::Index>(p));
  upper->resize(static_cast<Eigen::Index>(p));
  for (size_t d = 0; d < dims; ++d) {
    (*lower)[d] = std::log(0.01);
    (*upper)[d] = std::log(100.0);
  }
  (*lower)[dims] = std::log(0.05);
  (*upper)[dims] = std::log(20.0);
  // Noise variance (standardised units) down to 1e-9: deterministic objectives are resolved to
  // their optimum (a floor of 1e-6, noise sd 1e-3 of the targets' spread, left Branin's median
  // regret at 1.7e-5 and Hartmann6's at 8.7e-5; with 1e-9: below 5e-7 and 2e-6, bench/RESULTS.md).
  // The prior keeps noisy objectives well above it.
  (*lower)[dims + 1] = std::log(1e-9);
  (*upper)[dims + 1] = std::log(2.0);
  for (size_t i = dims + 2; i < p; ++i) {
    (*lower)[i] = std::log(0.2);
    (*upper)[i] = std::log(5.0);
  }
}

Hyperparameters DefaultHyperparameters(size_t dims, const WarpMask& mask) {
  Hyperparameters hp;
  // Lengthscales a bit shorter than the prior's median, which helps the first fits on few points.
  hp.log_lengthscale = Eigen::VectorXd::Constant(static_cast<Eigen::Index>(dims),
                                                 std::log(0.5 * std::sqrt(static_cast<double>(dims))));
  hp.log_signal_variance = 0.0;
  hp.log_noise_variance = std::log(1e-3);
  if (AnyWarp(mask)) {
    hp.log_warp_a = Eigen::VectorXd::Zero(static_cast<Eigen::Index>(dims));
    hp.log_warp_b = Eigen::VectorXd::Zero(static_cast<Eigen::Index>(dims));
  }
  return hp;
}

// ---- likelihood -----------------------------------------------------------------------------

namespace {

// The Cholesky factor of the symmetric positive definite *a (its lower triangle is read), in
// place: its lower triangle becomes L, its strict upper triangle 0. False when a pivot is not
// positive (*a then holds partial results). Blocked (`block` columns) and left-looking: block
// column j is first updated by the columns left of it (one product per block of rows), then its
// diagonal block factorised and the panel below it solved (again by blocks of rows). The blocks
// of rows run on `threads` OpenMP threads where a step has at least `min_work` multiply-adds
// (Eigen's LLT ran on one thread: 0.1 s of the posterior on 2000 points). Each block is computed
// the same way whatever the thread count, so the factor does not depend on it.
bool CholeskyInPlace(Eigen::MatrixXd* a, Eigen::Index block, int threads, double min_work) {
  Eigen::MatrixXd& m = *a;
  const Eigen::Index n = m.rows();
  const auto parallel = [&](Eigen::Index blocks, double work) {
    return blocks > 1 && threads > 1 && work >= min_work;
  };
  for (Eigen::Index j = 0; j < n; j += block) {
    const Eigen::Index b = std::min(block, n - j);
    const Eigen::Index row_blocks = (n - j + block - 1) / block;
    if (j > 0) {
      const bool split = parallel(row_blocks, double(n - j) * j * b);
#pragma omp parallel for schedule(dynamic, 1) num_threads(threads) if (split)
      for (Eigen::Index rb = 0; rb < row_blocks; ++rb) {
        const Eigen::Index r = j + rb * block, rn = std::min(block, n - r);
        m.block(r, j, rn, b).noalias() -= m.block(r, 0, rn, j) * m.block(j, 0, b, j).transpose();
      }
    }
    Eigen::Ref<Eigen::MatrixXd> diagonal = m.block(j, j, b, b);
    Eigen::LLT<Eigen::Ref<Eigen::MatrixXd>> diag(diagonal);  // in place
    if (diag.info() != Eigen::Success) return false;
    const Eigen::Index below = n - j - b;
    if (below > 0) {
      const Eigen::Index panel_blocks = (below + block - 1) / block;
      const auto ljj = m.block(j, j, b, b).triangularView<Eigen::Lower>();
      const bool split = parallel(panel_blocks, double(below) * b * b);
#pragma omp parallel for schedule(dynamic, 1) num_threads(threads) if (split)
      for (Eigen::Index rb = 0; rb < panel_blocks; ++rb) {
        const Eigen::Index r = j + b + rb * block, rn = std::min(block, n - r);
        // X L_jj^T = A_rj
        ljj.transpose().solveInPlace<Eigen::OnTheRight>(m.block(r, j, rn, b));
      }
    }
  }
  m.triangularView<Eigen::StrictlyUpper>().setZero();
  return true;
}

// From the Cholesky factor L (lower triangle of `chol`, n x n): L^-1 into *linv (lower; its
// upper triangle is left undefined) and the lower triangle of K^-1 = L^-T L^-1 into *kinv (upper
// undefined). Blocked so that neither triangle's zeros are multiplied: column block j of L^-1
// solves only the trailing system L[j:, j:] X = I[j:, j-block]; block (i, j), i >= j, of K^-1 is
// L^-1[i:, i-block]^T L^-1[i:, j-block]. The blocks are independent: they run on `threads`
// OpenMP threads, each computed the same way whatever the count. The block size depends on n
// only (small blocks keep a few threads busy on the fit's 200 points; large ones keep Eigen's
// products efficient on thousands).
void InverseFromCholesky(const Eigen::MatrixXd& chol, Eigen::MatrixXd* linv, Eigen::MatrixXd* kinv,
                         int threads) {
  const Eigen::Index n = chol.rows();
  const Eigen::Index block = n <= 512 ? 24 : 48;
  const Eigen::Index blocks = (n + block - 1) / block;
  linv->setZero(n, n);
  kinv->resize(n, n);
  // Block pairs (i, j), i >= j, the largest products (small i) first.
  std::vector<std::pair<Eigen::Index, Eigen::Index>> pairs;
  pairs.reserve(static_cast<size_t>(blocks * (blocks + 1) / 2));
  for (Eigen::Index ib = 0; ib < blocks; ++ib) {
    for (Eigen::Index jb = 0; jb <= ib; ++jb) pairs.emplace_back(ib, jb);
  }
  const Eigen::Index pair_count = static_cast<Eigen::Index>(pairs.size());
#pragma omp parallel num_threads(threads) if (threads > 1)
  {
#pragma omp for schedule(dynamic, 1)
    for (Eigen::Index jb = 0; jb < blocks; ++jb) {
      const Eigen::Index j = jb * block, b = std::min(block, n - j);
      auto x = linv->block(j, j, n - j, b);
      x.topRows(b).setIdentity();
      chol.bottomRightCorner(n - j, n - j).triangularView<Eigen::Lower>().solveInPlace(x);
    }
#pragma omp for schedule(dynamic, 1)
    for (Eigen::Index p = 0; p < pair_count; ++p) {
      const auto [ib, jb] = pairs[static_cast<size_t>(p)];
      const Eigen::Index i = ib * block, j = jb * block;
      const Eigen::Index bi = std::min(block, n - i), bj = std::min(block, n - j);
      kinv->block(i, j, bi, bj).noalias() =
          linv->block(i, i, n - i, bi).transpose() * linv->block(i, j, n - i, bj);
    }
  }
}

}  // namespace

double NegLogMarginalLikelihood(const Eigen::MatrixXd& x, const Eigen::VectorXd& y, const Eigen::VectorXd& theta,
                                const WarpMask& mask_in, bool with_prior, Eigen::VectorXd* grad,
                                double lengthscale_log_median, LikelihoodWorkspace* workspace) {
  LikelihoodWorkspace local;
  LikelihoodWorkspace& ws = workspace != nullptr ? *workspace : local;
  const size_t dims = static_cast<size_t>(x.rows());
  const Eigen::Index n = x.cols();
  const WarpMask mask = AnyWarp(mask_in) ? mask_in : WarpMask();
  const std::vector<size_t> warped = WarpedDims(mask);
  const Hyperparameters hp = UnpackHyperparameters(theta, dims, mask);
  const double s2 = std::exp(hp.log_signal_variance);
  const double noise = std::exp(hp.log_noise_variance);
  const Eigen::VectorXd inv_l = (-hp.log_lengthscale.array()).exp().matrix();
  // Warped inputs w and, for the gradient, dw/d(log a) and dw/d(log b) of the warped coordinates:
  // w = 1 - (1 - x^a)^b with x^a = exp(a log x), two exponentials and two logarithms per entry
  // (separate pow calls took five powers and two logarithms, 8 % of a fit).
  // Kept n x D (w transposed): one coordinate of every point is contiguous, so the threads that
  // warp different coordinates write separate memory.
  Eigen::MatrixXd wt = x.transpose();
  const bool want_grad = grad != nullptr;
  Eigen::MatrixXd& dwa = ws.dwa;
  Eigen::MatrixXd& dwb = ws.dwb;
  if (want_grad && !warped.empty()) {
    dwa.resize(n, static_cast<Eigen::Index>(warped.size()));
    dwb.resize(n, static_cast<Eigen::Index>(warped.size()));
  }
  const int threads = std::max(1, ws.threads);
  const long warped_count = static_cast<long>(warped.size());
#pragma omp parallel num_threads(threads) if (threads > 1)
  {
    Eigen::ArrayXd u(n), log_u(n), ua(n), om(n), log_om(n), omb(n);
#pragma omp for schedule(static)
    for (long i = 0; i < warped_count; ++i) {
      const Eigen::Index d = static_cast<Eigen::Index>(warped[static_cast<size_t>(i)]);
      const bool identity = hp.log_warp_a[d] == 0.0 && hp.log_warp_b[d] == 0.0;
      if (identity && !want_grad) continue;
      const double a = std::exp(hp.log_warp_a[d]), b = std::exp(hp.log_warp_b[d]);
      // In vector arithmetic, a coordinate of every point at once (Eigen's exp and log).
      u = wt.col(d).array().max(1e-12).min(1.0 - 1e-12);
      log_u = u.log();
      ua = (a * log_u).exp();
      om = (1.0 - ua).max(1e-300);
      log_om = om.log();
      omb = (b * log_om).exp();
      // The identity warp (a = b = 1) leaves x as it is; where the clamp above moved x (the
      // cube's faces, and within 1e-12 of them) w is KumaraswamyWarp's, as WarpInputs gives the
      // posterior.
      if (!identity) {
        for (Eigen::Index j = 0; j < n; ++j) {
          wt(j, d) = u[j] != x(d, j) ? KumaraswamyWarp(x(d, j), a, b) : 1.0 - omb[j];
        }
      }
      if (want_grad) {
        dwa.col(i) = (a * b * (omb / om) * ua * log_u).matrix();
        dwb.col(i) = (-b * omb * log_om).matrix();
      }
    }
  }
  // Scaled, warped inputs z = w(x) / l, centred per coordinate: distances are unchanged, and the
  // gradient's sums below (which expand the squared differences) stay free of cancellation
  // against a large common offset. Kept n x D: one coordinate of every point is contiguous.
  Eigen::MatrixXd zt = wt * inv_l.asDiagonal();
  zt.rowwise() -= zt.colwise().mean();

  // K (lower triangle; noise on the diagonal) and, when the gradient is asked for, the radial
  // term G of every pair (kernels/matern.h), a column at a time in vector arithmetic, one
  // exponential per pair. The distance is summed coordinate by coordinate (exact zeros for equal
  // points). Columns are independent: on `threads` threads, each computed the same way.
  Eigen::MatrixXd& k = ws.k;
  Eigen::MatrixXd& gm = ws.radial;
  k.resize(n, n);
  if (want_grad) gm.resize(n, n);
#pragma omp parallel num_threads(threads) if (threads > 1)
  {
    Eigen::ArrayXd r2(n), sr(n), e(n);
#pragma omp for schedule(dynamic, 8)
    for (Eigen::Index q = 0; q < n; ++q) {
      k(q, q) = s2 + noise;
      const Eigen::Index m = n - q - 1;
      if (m == 0) continue;
      auto r2s = r2.head(m);
      r2s.setZero();
      for (size_t d = 0; d < dims; ++d) {
        const Eigen::Index dd = static_cast<Eigen::Index>(d);
        r2s += (zt.col(dd).segment(q + 1, m).array() - zt(q, dd)).square();
      }
      auto srs = sr.head(m);
      auto es = e.head(m);
      srs = kSqrt5 * r2s.sqrt();
      es = s2 * (-srs).exp();
      k.col(q).segment(q + 1, m) = ((1.0 + srs + srs.square() / 3.0) * es).matrix();
      if (want_grad) gm.col(q).segment(q + 1, m) = ((5.0 / 3.0) * (1.0 + srs) * es).matrix();
    }
  }
  // The factor in place of K's lower triangle (K itself is kept for the signal's gradient).
  Eigen::MatrixXd& chol = ws.chol;
  chol = k;
  if (!CholeskyInPlace(&chol, 64, threads, 0.0)) return kInf;
  double log_det = 0;
  for (Eigen::Index i = 0; i < n; ++i) {
    const double l = chol(i, i);
    if (!(l > 0) || !std::isfinite(l)) return kInf;
    log_det += std::log(l);
  }
  Eigen::VectorXd alpha = chol.triangularView<Eigen::Lower>().solve(y);
  chol.triangularView<Eigen::Lower>().transpose().solveInPlace(alpha);
  double nll = 0.5 * y.dot(alpha) + log_det + 0.5 * static_cast<double>(n) * kLog2Pi;
  Eigen::VectorXd prior_mean, prior_var;
  if (with_prior) {
    Prior(dims, mask, lengthscale_log_median, &prior_mean, &prior_var);
    nll += NegLogPrior(theta, prior_mean, prior_var);
  }
  if (!std::isfinite(nll)) return kInf;
  if (!want_grad) return nll;

  // d logML / d theta = 1/2 tr((alpha alpha^T - K^-1) dK/dtheta) = 1/2 sum_pq Wm_pq dK_pq.
  // K^-1 = L^-T L^-1, its lower triangle, by blocks that skip the zeros of both triangles: the
  // inverse n^3/6 multiply-adds, the product n^3/6 (solving against the whole identity and a
  // dense rank update took n^3/2 each).
  InverseFromCholesky(chol, &ws.linv, &ws.kinv, threads);
  const Eigen::MatrixXd& kinv = ws.kinv;
  // Off the diagonal, with C = Wm .* G (symmetric, zero diagonal) and r = C 1:
  //   signal:        sum_{p>q} Wm_pq K_pq
  //   lengthscale d: sum_{p>q} C_pq (z_dp - z_dq)^2 = sum_p z_dp (z_dp r_p - (Z C)_dp)
  //   warped input:  d logML / d w_dp = -(1/l_d) (z_dp r_p - (Z C)_dp)
  // so one product Z C (D n^2) replaces the per-pair loops over the coordinates. Per column q
  // its share of the two sums is kept and added in order afterwards, so the sums do not depend
  // on the thread count.
  Eigen::VectorXd g = Eigen::VectorXd::Zero(theta.size());
  Eigen::MatrixXd& c = ws.c;  // its lower triangle
  c.resize(n, n);
  Eigen::VectorXd& signal_part = ws.signal_part;
  Eigen::VectorXd& diag_part = ws.diag_part;
  signal_part.resize(n);
  diag_part.resize(n);
#pragma omp parallel num_threads(threads) if (threads > 1)
  {
    Eigen::ArrayXd wm_col(n);
#pragma omp for schedule(dynamic, 8)
    for (Eigen::Index q = 0; q < n; ++q) {
      diag_part[q] = alpha[q] * alpha[q] - kinv(q, q);
      c(q, q) = 0;
      signal_part[q] = 0;
      const Eigen::Index m = n - q - 1;
      if (m == 0) continue;
      auto wm = wm_col.head(m);  // Wm_pq for p > q
      wm = alpha.segment(q + 1, m).array() * alpha[q] - kinv.col(q).segment(q + 1, m).array();
      signal_part[q] = (wm * k.col(q).segment(q + 1, m).array()).sum();
      c.col(q).segment(q + 1, m) = (wm * gm.col(q).segment(q + 1, m).array()).matrix();
    }
  }
  double signal = 0, diag_sum = 0;
  for (Eigen::Index q = 0; q < n; ++q) {
    diag_sum += diag_part[q];
    signal += signal_part[q];
  }
  // [r, (Z C)^T] = C [1, Z^T] by blocks of rows: C's row block I is C_L(I, <I), the diagonal
  // block (symmetric) and C_L(>I, I)^T.
  Eigen::MatrixXd& rhs = ws.rhs;
  Eigen::MatrixXd& prod = ws.prod;
  rhs.resize(n, zt.cols() + 1);
  rhs.col(0).setOnes();
  rhs.rightCols(zt.cols()) = zt;
  prod.resize(n, rhs.cols());
  constexpr Eigen::Index kRows = 32;
  const Eigen::Index row_blocks = (n + kRows - 1) / kRows;
#pragma omp parallel for num_threads(threads) if (threads > 1) schedule(dynamic, 1)
  for (Eigen::Index ib = 0; ib < row_blocks; ++ib) {
    const Eigen::Index i = ib * kRows, bi = std::min(kRows, n - i), after = n - i - bi;
    auto out = prod.middleRows(i, bi);
    out.noalias() = c.block(i, i, bi, bi).selfadjointView<Eigen::Lower>() * rhs.middleRows(i, bi);
    if (i > 0) out.noalias() += c.block(i, 0, bi, i) * rhs.topRows(i);
    if (after > 0) {
      out.noalias() += c.block(i + bi, i, after, bi).transpose() * rhs.bottomRows(after);
    }
  }
  const auto r = prod.col(0);
  const auto czt = prod.rightCols(zt.cols());  // (Z C)^T, n x D
  // zr_pd = z_dp r_p - (Z C)_dp
  const Eigen::MatrixXd zr = (zt.array().colwise() * r.array() - czt.array()).matrix();
  for (size_t d = 0; d < dims; ++d) {
    g[static_cast<Eigen::Index>(d)] = zt.col(static_cast<Eigen::Index>(d)).dot(zr.col(static_cast<Eigen::Index>(d)));
  }
  g[static_cast<Eigen::Index>(dims)] = signal + 0.5 * diag_sum * s2;
  g[static_cast<Eigen::Index>(dims) + 1] = 0.5 * diag_sum * noise;
  for (size_t i = 0; i < warped.size(); ++i) {
    const Eigen::Index d = static_cast<Eigen::Index>(warped[i]), ii = static_cast<Eigen::Index>(i);
    // d logML / d w_dp = -(1/l_d) zr_pd
    const double scale = -inv_l[d];
    g[static_cast<Eigen::Index>(dims + 2 + i)] = scale * dwa.col(ii).dot(zr.col(d));
    g[static_cast<Eigen::Index>(dims + 2 + warped.size() + i)] = scale * dwb.col(ii).dot(zr.col(d));
  }
  *grad = -g;
  if (with_prior) *grad += NegLogPriorGradient(theta, prior_mean, prior_var);
  if (!grad->allFinite()) return kInf;
  return nll;
}

// ---- fitting --------------------------------------------------------------------------------

std::vector<size_t> SelectSubset(const Eigen::VectorXd& y, size_t budget, uint64_t seed) {
  const size_t n = static_cast<size_t>(y.size());
  std::vector<size_t> all(n);
  std::iota(all.begin(), all.end(), size_t{0});
  if (n <= budget) return all;
  if (budget == 0) return {};
  std::stable_sort(all.begin(), all.end(), [&](size_t i, size_t j) { return y[i] < y[j]; });
  const size_t best = std::max<size_t>(1, budget / 4);
  std::vector<size_t> out(all.begin(), all.begin() + static_cast<std::ptrdiff_t>(best));
  std::vector<size_t> rest(all.begin() + static_cast<std::ptrdiff_t>(best), all.end());
  std::sort(rest.begin(), rest.end());
  Random rng(seed);
  const size_t take = budget - best;
  for (size_t i = 0; i < take; ++i) {
    const size_t j = i + static_cast<size_t>(rng.Below(rest.size() - i));
    std::swap(rest[i], rest[j]);
    out.push_back(rest[i]);
  }
  std::sort(out.begin(), out.end());
  return out;
}

GpStatus BuildPosterior(const Eigen::MatrixXd& x, const Eigen::VectorXd& y, const Hyperparameters& hp, double y_mean,
                        double y_scale, Posterior* out, int threads) {
  const Eigen::Index n = x.cols();
  if (n == 0 || y.size() != n || hp.log_lengthscale.size() != x.rows()) {
    return GpStatus::InvalidArgument("BuildPosterior: shapes do not match");
  }
  const double s2 = std::exp(hp.log_signal_variance);
  const double noise = std::exp(hp.log_noise_variance);
  const Eigen::MatrixXd w = WarpInputs(hp, x);
  // Pairwise squared distances by one product (fast for large n): |a|^2 + |b|^2 - 2 a.b on
  // lengthscale-scaled coordinates, clamped at 0; the diagonal is exact.
  const Eigen::VectorXd inv_l = (-hp.log_lengthscale.array()).exp().matrix();
  const Eigen::MatrixXd z = inv_l.asDiagonal() * w;
  const Eigen::VectorXd sq = z.colwise().squaredNorm().transpose();
  Eigen::MatrixXd k = -2.0 * (z.transpose() * z);
  k.colwise() += sq;
  k.rowwise() += sq.transpose();
  // Matern52 of every entry, a column at a time in vector arithmetic (Eigen's vectorised exp:
  // the scalar loop's exponentials were a third of the posterior's time on 2000 points).
  const int team = TeamSize(threads);
#pragma omp parallel for schedule(static) num_threads(team) if (n >= 500 && team > 1)
  for (Eigen::Index j = 0; j < n; ++j) {
    auto col = k.col(j).array();
    const Eigen::ArrayXd sr = kSqrt5 * col.max(0.0).sqrt();
    col = s2 * (1.0 + sr + sr.square() / 3.0) * (-sr).exp();
    k(j, j) = s2;
  }
  for (double rel : {0.0, 1e-10, 1e-8, 1e-6, 1e-4, 1e-2}) {
    const double jitter = rel * s2;
    Eigen::MatrixXd l = k;
    l.diagonal().array() += noise + jitter;
    if (!CholeskyInPlace(&l, 128, team, 4e6)) continue;
    if (!(l.diagonal().array() > 0).all() || !l.diagonal().allFinite()) continue;
    Eigen::VectorXd alpha = l.triangularView<Eigen::Lower>().solve(y);
    l.triangularView<Eigen::Lower>().transpose().solveInPlace(alpha);
    out->hp = hp;
    out->inputs = x;
    out->chol = std::move(l);
    out->y = y;
    out->alpha = std::move(alpha);
    out->jitter = jitter;
    out->incumbent = y.minCoeff();
    out->y_mean = y_mean;
    out->y_scale = y_scale;
    if (!out->alpha.allFinite()) continue;
    return GpStatus::Ok();
  }
  return GpStatus::Numerical("the kernel matrix of " + std::to_string(n) +
                             " points could not be factorised even with jitter 1e-2 x signal variance");
}

GpStatus AppendObservation(Posterior* post, const Eigen::VectorXd& x, double y) {
  const Eigen::Index n = static_cast<Eigen::Index>(post->size());
  if (x.size() != post->inputs.rows() || !x.allFinite() || !std::isfinite(y)) {
    return GpStatus::InvalidArgument("AppendObservation: wrong size or non-finite input");
  }
  const Eigen::VectorXd k = KernelMatrix(post->hp, post->inputs, x).col(0);
  const double s2 = std::exp(post->hp.log_signal_variance);
  const Eigen::VectorXd l = post->chol.triangularView<Eigen::Lower>().solve(k);
  const double d2 = s2 + post->noise_variance() - l.squaredNorm();
  if (!(d2 > 1e-14 * s2)) {
    return GpStatus::Numerical("the new observation duplicates the data beyond the noise level");
  }
  post->inputs.conservativeResize(Eigen::NoChange, n + 1);
  post->inputs.col(n) = x;
  post->chol.conservativeResize(n + 1, n + 1);
  post->chol.col(n).setZero();
  post->chol.row(n).head(n) = l.transpose();
  post->chol(n, n) = std::sqrt(d2);
  post->y.conservativeResize(n + 1);
  post->y[n] = y;
  const Eigen::MatrixXd& c = post->chol;
  post->alpha = c.triangularView<Eigen::Lower>().transpose().solve(c.triangularView<Eigen::Lower>().solve(post->y));
  post->incumbent = std::min(post->incumbent, y);
  return GpStatus::Ok();
}

namespace {

// One univariate slice-sampling update of coordinate i (Neal 2003, stepping out, shrinkage).
void SliceStep(const std::function<double(const Eigen::VectorXd&)>& log_p, Eigen::VectorXd* theta, double* current,
               Eigen::Index i, double lo, double hi, Random* rng, int* evaluations) {
  const double level = *current - (-std::log(1.0 - rng->Uniform()));  // log U, U in (0,1]
  const double width = 0.5;
  double left = (*theta)[i] - width * rng->Uniform();
  double right = left + width;
  Eigen::VectorXd probe = *theta;
  auto at = [&](double v) {
    probe[i] = v;
    ++*evaluations;
    return log_p(probe);
  };
  for (int s = 0; s < 8 && left > lo && at(left) > level; ++s) left -= width;
  for (int s = 0; s < 8 && right < hi && at(right) > level; ++s) right += width;
  left = std::max(left, lo);
  right = std::min(right, hi);
  for (int s = 0; s < 40; ++s) {
    const double v = left + rng->Uniform() * (right - left);
    const double lp = at(v);
    if (lp > level) {
      (*theta)[i] = v;
      *current = lp;
      return;
    }
    if (v < (*theta)[i]) left = v; else right = v;
  }
}

// How the fit's L-BFGS starts share `threads` cores (TeamSize): `outer` starts side by side,
// each likelihood evaluation on `inner` threads (its independent blocks), outer x inner <= that.
// The starts alone left most of a 16-core host idle (3 starts; the fit took one start's time).
// Below 64 points one thread; below 128 the evaluations are too small to split.
struct FitThreads {
  int outer = 1, inner = 1;
};

FitThreads SplitThreads(int threads, int starts, size_t points) {
  FitThreads t;
  const int total = TeamSize(threads);
  if (points < 64 || starts < 1) return t;
  t.outer = std::min(starts, total);
  if (points >= 128) t.inner = std::max(1, total / t.outer);
  return t;
}

// Runs job(0 .. count-1) on `outer` threads: the calling thread and outer - 1 plain threads,
// each taking the next job until none is left. Plain threads, not an OpenMP team: each then
// starts its own team for the likelihood's blocks, and a thread's team is kept between its
// parallel regions (libgomp starts a nested team's threads afresh at every region, a few
// hundred thread starts per fit). A thread that cannot be started leaves its share to the
// others; an exception in a job stops the others taking more and is rethrown here, as on one
// thread.
void RunStarts(int count, int outer, const std::function<void(int)>& job) {
  std::atomic<int> next{0};
  std::mutex mu;
  std::exception_ptr error;
  const auto work = [&] {
    for (int s = next++; s < count; s = next++) {
      try {
        job(s);
      } catch (...) {
        const std::lock_guard<std::mutex> lock(mu);
        if (!error) error = std::current_exception();
        next = count;
        return;
      }
    }
  };
  std::vector<std::thread> threads;
  for (int t = 1; t < std::min(outer, count); ++t) {
    try {
      threads.emplace_back(work);
    } catch (const std::system_error&) {
      break;
    }
  }
  work();
  for (std::thread& t : threads) t.join();
  if (error) std::rethrow_exception(error);
}

}  // namespace

GpStatus FitGp(const Eigen::MatrixXd& x, const Eigen::VectorXd& y, const FitOptions& options, Posterior* out,
               FitReport* report) {
  const size_t dims = static_cast<size_t>(x.rows());
  const size_t n = static_cast<size_t>(x.cols());
  if (n == 0) return GpStatus::InvalidArgument("no observations to fit");
  if (dims == 0) return GpStatus::InvalidArgument("zero input dimensions");
  if (static_cast<size_t>(y.size()) != n) return GpStatus::InvalidArgument("inputs and targets differ in count");
  if (!x.allFinite() || !y.allFinite()) return GpStatus::InvalidArgument("non-finite inputs or targets");
  if (!options.warp_mask.empty() && options.warp_mask.size() != dims) {
    return GpStatus::InvalidArgument("warp mask has " + std::to_string(options.warp_mask.size()) +
                                     " entries for " + std::to_string(dims) + " dimensions");
  }
  const WarpMask mask = AnyWarp(options.warp_mask) ? options.warp_mask : WarpMask();

  const double mean = y.mean();
  double scale = std::sqrt((y.array() - mean).square().mean());
  if (!std::isfinite(scale)) {
    // Squares of values near 1e300 overflow: scaled by the largest deviation first (else every
    // standardised target became 0). Only then: the usual sum's rounding is kept bit for bit.
    const double widest = (y.array() - mean).abs().maxCoeff();
    scale = std::isfinite(widest) ? widest * std::sqrt(((y.array() - mean) / widest).square().mean()) : 0.0;
  }
  if (!(scale > 1e-12 * std::max(1.0, std::fabs(mean)))) scale = 1.0;
  // The targets the model takes: the standardised ones, or their output warping (below).
  Eigen::VectorXd ys = ((y.array() - mean) / scale).matrix();

  // The posterior's subset of data, and the hyperparameters' subset of that (the targets'
  // order chooses them, so a warping leaves both as they are).
  const std::vector<size_t> post_idx = SelectSubset(ys, std::max<size_t>(1, options.max_posterior_points),
                                                    SubSeed(options.seed, 1));
  const Eigen::MatrixXd xp = x(Eigen::all, post_idx);
  Eigen::VectorXd yp = ys(post_idx);
  const std::vector<size_t> fit_idx = SelectSubset(yp, std::max<size_t>(1, options.max_fit_points),
                                                   SubSeed(options.seed, 2));
  const Eigen::MatrixXd xf = xp(Eigen::all, fit_idx);
  Eigen::VectorXd yf = yp(fit_idx);
  FitReport rep;
  rep.observations = n;
  rep.fit_points = fit_idx.size();
  rep.posterior_points = post_idx.size();

  auto matches = [&](const Hyperparameters& hp) {
    if (static_cast<size_t>(hp.log_lengthscale.size()) != dims || !hp.log_lengthscale.allFinite()) return false;
    if (!std::isfinite(hp.log_signal_variance) || !std::isfinite(hp.log_noise_variance)) return false;
    if (hp.warped() && (static_cast<size_t>(hp.log_warp_a.size()) != dims ||
                        static_cast<size_t>(hp.log_warp_b.size()) != dims)) {
      return false;
    }
    return true;
  };

  // The hyperparameters for targets `yfit` (the fit subset's): MAP from every start, the
  // lengthscale prior chosen by evidence, then slice sampling when asked. `initial`: a warm start.
  auto fit_hyperparameters = [&](const Eigen::VectorXd& yfit, const Hyperparameters* initial,
                                 Hyperparameters* chosen) -> GpStatus {
    Eigen::VectorXd lower, upper, prior_mean, prior_var;
    HyperparameterBounds(dims, mask, &lower, &upper);
    const double kDimensionScaled = std::numeric_limits<double>::quiet_NaN();
    Prior(dims, mask, kDimensionScaled, &prior_mean, &prior_var);
    // Each start with the lengthscale prior it is optimised under.
    std::vector<std::pair<Eigen::VectorXd, double>> starts;
    starts.emplace_back(PackHyperparameters(DefaultHyperparameters(dims, mask), mask), kDimensionScaled);
    const bool warm = initial != nullptr && matches(*initial);
    if (warm) starts.emplace_back(PackHyperparameters(*initial, mask), kDimensionScaled);
    Random rng(SubSeed(options.seed, 3));
    for (int r = 0; r < options.random_restarts; ++r) {
      Eigen::VectorXd t(prior_mean.size());
      for (Eigen::Index i = 0; i < t.size(); ++i) t[i] = prior_mean[i] + std::sqrt(prior_var[i]) * rng.Normal();
      starts.emplace_back(t.cwiseMax(lower).cwiseMin(upper), kDimensionScaled);
    }
    if (options.select_lengthscale_prior) {  // the short prior: from its median, and from the warm start
      Hyperparameters short_start = DefaultHyperparameters(dims, mask);
      short_start.log_lengthscale.setConstant(kShortLengthscaleLogMedian);
      starts.emplace_back(PackHyperparameters(short_start, mask), kShortLengthscaleLogMedian);
      if (warm) starts.emplace_back(PackHyperparameters(*initial, mask), kShortLengthscaleLogMedian);
    }
    LbfgsOptions lo;
    lo.max_iterations = options.max_iterations;
    // The acquisition does not notice hyperparameters more precise than this.
    lo.gradient_tolerance = 1e-4;
    lo.relative_tolerance = 1e-7;
    std::vector<LbfgsResult> results(starts.size());
    const int count = static_cast<int>(starts.size());
    // The engine's likelihood devices, one per start, each loaded with the fit's data.
    std::vector<LikelihoodDevice*> devices;
    if (options.engine != nullptr && fit_idx.size() >= options.device_min_fit_points) {
      options.engine->LikelihoodDevices(static_cast<size_t>(count), &devices, &rep.device_note);
      for (LikelihoodDevice* device : devices) {
        const GpStatus loaded = device->Load(xf, yfit, mask);
        if (!loaded.ok()) {
          rep.device_note = loaded.message();
          devices.clear();
          break;
        }
      }
      if (!devices.empty() && devices.size() < static_cast<size_t>(count)) {
        rep.device_note = "the engine offered " + std::to_string(devices.size()) + " likelihood devices for " +
                          std::to_string(count) + " starts";
        devices.clear();
      }
    }
    // On a device each start's thread mostly waits for it: one thread per start, none split.
    const FitThreads team =
        devices.empty() ? SplitThreads(options.threads, count, fit_idx.size()) : FitThreads{count, 1};
    std::vector<int> device_evaluations(starts.size(), 0);
    std::vector<std::string> device_errors(starts.size());
    RunStarts(count, team.outer, [&](int s) {
      const double median = starts[s].second;
      LikelihoodWorkspace workspace;
      workspace.threads = team.inner;
      LikelihoodDevice* device = devices.empty() ? nullptr : devices[static_cast<size_t>(s)];
      Eigen::VectorXd start_prior_mean, start_prior_var;
      Prior(dims, mask, median, &start_prior_mean, &start_prior_var);
      const Objective objective = [&](const Eigen::VectorXd& theta, Eigen::VectorXd* grad) {
        if (device != nullptr) {
          double value = kInf;
          const GpStatus st = device->Evaluate(theta, &value, grad);
          if (st.ok()) {
            ++device_evaluations[static_cast<size_t>(s)];
            if (!std::isfinite(value)) return kInf;
            value += NegLogPrior(theta, start_prior_mean, start_prior_var);
            if (!std::isfinite(value)) return kInf;
            if (grad != nullptr) {
              *grad += NegLogPriorGradient(theta, start_prior_mean, start_prior_var);
              if (!grad->allFinite()) return kInf;
            }
            return value;
          }
          device_errors[static_cast<size_t>(s)] = st.message();
          device = nullptr;  // this start goes on on the host
        }
        return NegLogMarginalLikelihood(xf, yfit, theta, mask, true, grad, median, &workspace);
      };
      results[s] = MinimizeBoxed(objective, starts[s].first, lower, upper, lo);
    });
    for (int s = 0; s < count; ++s) {
      rep.device_evaluations += device_evaluations[static_cast<size_t>(s)];
      if (rep.device_note.empty() && !device_errors[static_cast<size_t>(s)].empty()) {
        rep.device_note = "a likelihood device failed, its start went on on the host: " +
                          device_errors[static_cast<size_t>(s)];
      }
    }
    // The MAP under each prior, then the prior whose MAP explains the data better.
    int best = -1;
    double best_evidence = kInf;
    for (const bool short_prior : {false, true}) {
      int b = -1;
      for (int s = 0; s < count; ++s) {
        if (std::isnan(starts[s].second) == short_prior) continue;
        if (std::isfinite(results[s].f) && (b < 0 || results[s].f < results[b].f)) b = s;
      }
      if (b < 0) continue;
      const double evidence = NegLogMarginalLikelihood(xf, yfit, results[b].x, mask, false, nullptr) -
                              (short_prior ? options.short_prior_margin : 0.0);
      if (best < 0 || evidence < best_evidence) {
        best = b;
        best_evidence = evidence;
      }
    }
    for (int s = 0; s < count; ++s) rep.evaluations += results[s].evaluations;
    rep.starts += count;
    if (best < 0) {
      return GpStatus::Numerical("no hyperparameter start gave a finite marginal likelihood on " +
                                 std::to_string(fit_idx.size()) + " points");
    }
    const double median = starts[best].second;
    rep.short_lengthscale_prior = !std::isnan(median);
    Eigen::VectorXd theta = results[best].x;
    double f = results[best].f;
    if (options.method == HyperFit::kSliceSampling) {
      Random srng(SubSeed(options.seed, 4));
      LikelihoodWorkspace workspace;
      workspace.threads = SplitThreads(options.threads, 1, fit_idx.size()).inner;
      const auto log_p = [&](const Eigen::VectorXd& t) {
        const double v = NegLogMarginalLikelihood(xf, yfit, t, mask, true, nullptr, median, &workspace);
        return std::isfinite(v) ? -v : -kInf;
      };
      double current = -f;
      for (int sweep = 0; sweep < options.slice_sweeps; ++sweep) {
        for (Eigen::Index i = 0; i < theta.size(); ++i) {
          SliceStep(log_p, &theta, &current, i, lower[i], upper[i], &srng, &rep.evaluations);
        }
      }
      f = -current;
    }
    rep.neg_log_posterior = f;
    *chosen = UnpackHyperparameters(theta, dims, mask);
    return GpStatus::Ok();
  };

  Hyperparameters chosen;
  if (options.method == HyperFit::kFixed) {
    if (options.initial == nullptr || !matches(*options.initial)) {
      return GpStatus::InvalidArgument("HyperFit::kFixed needs initial hyperparameters of matching size");
    }
    chosen = *options.initial;
    rep.neg_log_posterior = NegLogMarginalLikelihood(xf, yf, PackHyperparameters(chosen, mask), mask, true, nullptr);
    rep.evaluations = 1;
  } else {
    const GpStatus fitted = fit_hyperparameters(yf, options.initial, &chosen);
    if (!fitted.ok()) return fitted;
    // Output warping (kernels/output_warp.h): chosen on the plain fit's covariance, then the
    // hyperparameters fitted again on the warped targets, from the plain ones.
    if (std::isfinite(options.output_warp_margin) && fit_idx.size() >= kMinOutputWarpPoints) {
      Posterior plain;
      if (BuildPosterior(xf, yf, chosen, 0.0, 1.0, &plain, options.threads).ok()) {
        const OutputWarpChoice warp = ChooseOutputLambda(plain.chol, yf, options.output_warp_min_lambda);
        rep.output_warp_gain = warp.gain;
        if (warp.lambda != 1.0 && warp.gain > options.output_warp_margin) {
          ApplyOutputWarp(warp.lambda, &ys);
          yp = ys(post_idx);
          yf = yp(fit_idx);
          const Hyperparameters from = chosen;
          const std::string first_note = rep.device_note;  // the refit asks the engine again
          const GpStatus refitted = fit_hyperparameters(yf, &from, &chosen);
          if (!refitted.ok()) return refitted;
          if (rep.device_note.empty()) rep.device_note = first_note;
          rep.output_lambda = warp.lambda;
        }
      }
    }
  }
  // The posterior's prior mean (0 after this shift) at the prior_mean_quantile of the modelled
  // targets (FitOptions). The hyperparameters were fitted on the centred targets: fitted on the
  // shifted ones, the offset was explained by long lengthscales and a rugged surface lost the
  // short prior (GpFit.TheDataChooseTheLengthscalePriorByItsEvidence).
  double shift = 0;
  if (std::isfinite(options.prior_mean_quantile)) {
    std::vector<double> sorted(ys.data(), ys.data() + ys.size());
    std::sort(sorted.begin(), sorted.end());
    shift = QuantileOfSorted(sorted, options.prior_mean_quantile);
  }
  yp.array() -= shift;  // the posterior only
  const bool warped = rep.output_lambda != 1.0;
  const double nan = std::numeric_limits<double>::quiet_NaN();
  GpStatus st = BuildPosterior(xp, yp, chosen, warped ? nan : mean + shift * scale, warped ? nan : scale, out,
                               options.threads);
  if (!st.ok()) return st;
  if (report != nullptr) *report = rep;
  return GpStatus::Ok();
}

void UseOneOpenMpThreadHere() {
#ifdef _OPENMP
  omp_set_num_threads(1);
#endif
}

}  // namespace hpo::kernels
