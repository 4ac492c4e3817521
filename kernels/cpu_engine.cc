// The CPU (Eigen) engine: the reference implementation of GpEngine.
//
// Layout: training inputs are kept warped and lengthscale-scaled (z = w(x) / l), so squared
// distances to a block of candidates come from one matrix product (|z|^2 + |z'|^2 - 2 z.z').
// Candidates are processed in chunks of kChunk columns, one chunk per thread at a time (OpenMP
// when built with it); inside a chunk Eigen runs single-threaded, so a chunk's arithmetic, and
// the result, do not depend on the thread count. Capacity for fantasies is reserved at Load so
// that the Cholesky factor grows in place.
#include "kernels/cpu_engine.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <thread>

#include <Eigen/Core>

#ifdef _OPENMP
#include <omp.h>
#endif

#include "kernels/host_ascent.h"
#include "kernels/log_ei.h"
#include "kernels/matern.h"

namespace hpo::kernels {
namespace {

constexpr Eigen::Index kChunk = 256;       // candidates per chunk (values only)
constexpr Eigen::Index kGradChunk = 8;     // candidates per chunk with gradients (refinement batches are small)
constexpr double kVarianceFloor = 1e-12;

class CpuEngine final : public GpEngine {
 public:
  explicit CpuEngine(int threads) : threads_(threads) {}

  Device device() const override { return Device::kCpu; }

  std::string Describe() const override {
#ifdef _OPENMP
    return "cpu (Eigen " + std::to_string(EIGEN_WORLD_VERSION) + "." + std::to_string(EIGEN_MAJOR_VERSION) +
           ", OpenMP, " + std::to_string(threads_) + (threads_ == 1 ? " thread)" : " threads)");
#else
    return "cpu (Eigen " + std::to_string(EIGEN_WORLD_VERSION) + "." + std::to_string(EIGEN_MAJOR_VERSION) +
           ", built without OpenMP: 1 thread)";
#endif
  }

  GpStatus Load(const Posterior& p, size_t reserve) override {
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
    loaded_ = true;
    dims_ = d;
    n_ = n;
    cap_ = n + static_cast<Eigen::Index>(reserve) + 1;
    s2_ = std::exp(p.hp.log_signal_variance);
    noise_ = p.noise_variance();
    inv_l_ = (-p.hp.log_lengthscale.array()).exp().matrix();
    inv_l2_ = inv_l_.array().square().matrix();
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
    z_.resize(d, cap_);
    z_.leftCols(n) = Scaled(p.inputs, nullptr);
    zsq_.resize(cap_);
    zsq_.head(n) = z_.leftCols(n).colwise().squaredNorm().transpose();
    l_.setZero(cap_, cap_);
    l_.topLeftCorner(n, n) = p.chol.triangularView<Eigen::Lower>();
    y_.resize(cap_);
    y_.head(n) = p.y;
    alpha_.resize(cap_);
    alpha_.head(n) = p.alpha;
    pool_z_.resize(d, 0);
    pool_v_.resize(cap_, 0);
    pool_mean_.resize(0);
    pool_var_.resize(0);
    return GpStatus::Ok();
  }

  GpStatus Evaluate(const Eigen::MatrixXd& points, double incumbent, bool gradients, PointScores* out) override {
    GpStatus st = CheckPoints(points);
    if (!st.ok()) return st;
    const Eigen::Index m = points.cols();
    out->mean.resize(m);
    out->variance.resize(m);
    out->log_ei.resize(m);
    if (gradients) out->log_ei_grad.resize(dims_, m); else out->log_ei_grad.resize(0, 0);
    const Eigen::Index chunk = gradients ? kGradChunk : kChunk;
    const Eigen::Index chunks = (m + chunk - 1) / chunk;
#pragma omp parallel for schedule(static) num_threads(Threads(chunks)) if (Parallel(m))
    for (Eigen::Index c = 0; c < chunks; ++c) {
      const Eigen::Index c0 = c * chunk, cn = std::min(chunk, m - c0);
      Eigen::MatrixXd dwdx;
      const Eigen::MatrixXd zc = Scaled(points.middleCols(c0, cn), gradients ? &dwdx : nullptr);
      Eigen::MatrixXd k, g;
      Cross(zc, &k, gradients ? &g : nullptr);
      auto mean = out->mean.segment(c0, cn);
      mean = k.transpose() * alpha_.head(n_);
      Eigen::MatrixXd v = k;
      l_.topLeftCorner(n_, n_).triangularView<Eigen::Lower>().solveInPlace(v);
      auto var = out->variance.segment(c0, cn);
      var = (s2_ - v.colwise().squaredNorm().array()).max(kVarianceFloor * s2_).matrix().transpose();
      Eigen::VectorXd d_mean(cn), d_var(cn);
      for (Eigen::Index j = 0; j < cn; ++j) {
        out->log_ei[c0 + j] = LogExpectedImprovement(mean[j], var[j], incumbent, &d_mean[j], &d_var[j]);
      }
      if (!gradients) continue;
      // b = K^-1 k per column; mean and variance gradients with respect to the scaled, warped
      // point z_j (then chained to x): dk_pj/dz_dj = -g_pj (z_dj - z_pd) (times 1/l_d for w).
      Eigen::MatrixXd b = v;
      l_.topLeftCorner(n_, n_).transpose().triangularView<Eigen::Upper>().solveInPlace(b);
      const Eigen::MatrixXd dmean_dz = MeanGradientZ(zc, g);  // D x cn
      const Eigen::MatrixXd gb = g.cwiseProduct(b);            // g_pj b_pj
      const Eigen::RowVectorXd s_var = gb.colwise().sum();
      const Eigen::MatrixXd t_var = z_.leftCols(n_) * gb;
      for (Eigen::Index j = 0; j < cn; ++j) {
        for (Eigen::Index dd = 0; dd < dims_; ++dd) {
          const double dvar_dz = 2.0 * (zc(dd, j) * s_var[j] - t_var(dd, j));
          const double dz_dx = inv_l_[dd] * dwdx(dd, j);
          double grad = (d_mean[j] * dmean_dz(dd, j) + (var[j] > kVarianceFloor * s2_ ? d_var[j] * dvar_dz : 0.0)) * dz_dx;
          out->log_ei_grad(dd, c0 + j) = std::isfinite(grad) ? grad : 0.0;
        }
      }
    }
    return GpStatus::Ok();
  }

  // The mean alone: k(train, x)' alpha and its gradient, O(n D) per point and step (Evaluate's
  // variance needs two solves against the factor, O(n^2)). The score climbed is minus the mean.
  GpStatus DescendMean(const Eigen::MatrixXd& starts, const std::vector<uint8_t>& movable, double /*tau*/,
                       int iterations, Eigen::MatrixXd* ends, Eigen::VectorXd* means) override {
    GpStatus st = CheckPoints(starts);
    if (!st.ok()) return st;
    const AscentScore score = [this](const Eigen::MatrixXd& points, Eigen::VectorXd* value, Eigen::MatrixXd* grad) {
      MinusMean(points, value, grad);
      return GpStatus::Ok();
    };
    Eigen::VectorXd minus_mean;
    st = HostAscent(starts, movable, iterations, score, ends, &minus_mean);
    if (!st.ok()) return st;
    if (means != nullptr) *means = -minus_mean;
    return GpStatus::Ok();
  }

  GpStatus SetPool(const Eigen::MatrixXd& points) override {
    if (!loaded_) return GpStatus::InvalidArgument("engine: nothing loaded");
    pool_z_.resize(dims_, 0);
    pool_v_.resize(cap_, 0);
    pool_mean_.resize(0);
    pool_var_.resize(0);
    return ExtendPool(points);
  }

  GpStatus ExtendPool(const Eigen::MatrixXd& points) override {
    GpStatus st = CheckPoints(points);
    if (!st.ok()) return st;
    const Eigen::Index m0 = pool_z_.cols(), m = points.cols();
    pool_z_.conservativeResize(Eigen::NoChange, m0 + m);
    pool_v_.conservativeResize(Eigen::NoChange, m0 + m);
    pool_mean_.conservativeResize(m0 + m);
    pool_var_.conservativeResize(m0 + m);
    const Eigen::Index chunks = (m + kChunk - 1) / kChunk;
#pragma omp parallel for schedule(static) num_threads(Threads(chunks)) if (Parallel(m))
    for (Eigen::Index c = 0; c < chunks; ++c) {
      const Eigen::Index c0 = c * kChunk, cn = std::min(kChunk, m - c0);
      const Eigen::MatrixXd zc = Scaled(points.middleCols(c0, cn), nullptr);
      pool_z_.middleCols(m0 + c0, cn) = zc;
      Eigen::MatrixXd k;
      Cross(zc, &k, nullptr);
      pool_mean_.segment(m0 + c0, cn) = k.transpose() * alpha_.head(n_);
      l_.topLeftCorner(n_, n_).triangularView<Eigen::Lower>().solveInPlace(k);
      pool_v_.block(0, m0 + c0, n_, cn) = k;
      pool_var_.segment(m0 + c0, cn) =
          (s2_ - k.colwise().squaredNorm().array()).max(kVarianceFloor * s2_).matrix().transpose();
    }
    return GpStatus::Ok();
  }

  size_t PoolSize() const override { return static_cast<size_t>(pool_z_.cols()); }

  void ReleasePool() override {
    pool_z_.resize(dims_, 0);  // no columns: no storage (the rows are what Load and Fantasize expect)
    pool_v_.resize(cap_, 0);
    pool_mean_.resize(0);
    pool_var_.resize(0);
  }

  GpStatus PoolTopK(double incumbent, size_t k, std::vector<RankedCandidate>* out) override {
    if (!loaded_) return GpStatus::InvalidArgument("engine: nothing loaded");
    const Eigen::Index m = pool_z_.cols();
    std::vector<double> score(static_cast<size_t>(m));
    const Eigen::Index chunks = (m + kChunk - 1) / kChunk;
#pragma omp parallel for schedule(static) num_threads(Threads(chunks)) if (ParallelRank(m))
    for (Eigen::Index c = 0; c < chunks; ++c) {
      const Eigen::Index c0 = c * kChunk, cn = std::min(kChunk, m - c0);
      for (Eigen::Index j = c0; j < c0 + cn; ++j) {
        const double v = LogExpectedImprovement(pool_mean_[j], pool_var_[j], incumbent, nullptr, nullptr);
        score[static_cast<size_t>(j)] = std::isnan(v) ? -std::numeric_limits<double>::infinity() : v;
      }
    }
    std::vector<size_t> order(static_cast<size_t>(m));
    for (size_t i = 0; i < order.size(); ++i) order[i] = i;
    const size_t take = std::min(k, order.size());
    std::partial_sort(order.begin(), order.begin() + static_cast<std::ptrdiff_t>(take), order.end(),
                      [&](size_t a, size_t b) { return score[a] > score[b] || (score[a] == score[b] && a < b); });
    out->clear();
    for (size_t i = 0; i < take; ++i) {
      const size_t j = order[i];
      out->push_back({j, score[j], pool_mean_[static_cast<Eigen::Index>(j)], pool_var_[static_cast<Eigen::Index>(j)]});
    }
    return GpStatus::Ok();
  }

  GpStatus Fantasize(const Eigen::VectorXd& x, double y) override {
    if (!loaded_) return GpStatus::InvalidArgument("engine: nothing loaded");
    if (x.size() != dims_ || !x.allFinite() || !std::isfinite(y)) {
      return GpStatus::InvalidArgument("Fantasize: wrong size or non-finite value");
    }
    if (n_ + 1 >= cap_) Grow();
    const Eigen::MatrixXd z = Scaled(x, nullptr);
    Eigen::MatrixXd k;
    Cross(z, &k, nullptr);
    const double mu = k.col(0).dot(alpha_.head(n_));
    Eigen::VectorXd l = k.col(0);
    l_.topLeftCorner(n_, n_).triangularView<Eigen::Lower>().solveInPlace(l);
    const double d2 = s2_ + noise_ - l.squaredNorm();
    if (!(d2 > 1e-14 * s2_)) return GpStatus::Numerical("Fantasize: the new pivot is not positive");
    const double d = std::sqrt(d2);
    const Eigen::Index m = pool_z_.cols();
    if (m > 0) {
      // cov(pool_j, x) = k(pool_j, x) - v_j . l; new factor row = cov / d.
      const double zsq = z.col(0).squaredNorm();
      const double shift = (y - mu) / d;
      const Eigen::Index chunks = (m + kChunk - 1) / kChunk;
#pragma omp parallel for schedule(static) num_threads(Threads(chunks)) if (ParallelLinear(m))
      for (Eigen::Index c = 0; c < chunks; ++c) {
        const Eigen::Index c0 = c * kChunk, cn = std::min(kChunk, m - c0);
        Eigen::VectorXd row = pool_v_.block(0, c0, n_, cn).transpose() * l;
        for (Eigen::Index j = 0; j < cn; ++j) {
          const auto pz = pool_z_.col(c0 + j);
          const double r2 = std::max(0.0, pz.squaredNorm() + zsq - 2.0 * pz.dot(z.col(0)));
          row[j] = (Matern52(std::sqrt(r2), s2_) - row[j]) / d;
        }
        pool_v_.block(n_, c0, 1, cn) = row.transpose();
        pool_var_.segment(c0, cn) = (pool_var_.segment(c0, cn) - row.cwiseAbs2()).cwiseMax(kVarianceFloor * s2_);
        pool_mean_.segment(c0, cn) += row * shift;
      }
    }
    z_.col(n_) = z.col(0);
    zsq_[n_] = z.col(0).squaredNorm();
    l_.row(n_).head(n_) = l.transpose();
    l_(n_, n_) = d;
    y_[n_] = y;
    ++n_;
    Eigen::VectorXd a = y_.head(n_);
    l_.topLeftCorner(n_, n_).triangularView<Eigen::Lower>().solveInPlace(a);
    l_.topLeftCorner(n_, n_).transpose().triangularView<Eigen::Upper>().solveInPlace(a);
    alpha_.head(n_) = a;
    return GpStatus::Ok();
  }

  size_t TrainingSize() const override { return static_cast<size_t>(n_); }

 private:
  // Threads pay off only for enough work; small batches (refinement steps, tiny histories) stay
  // on the calling thread, which also avoids waking (and spinning) a team for microseconds.
  // Solves (Evaluate, ExtendPool) cost O(m n^2); rank-one updates (Fantasize) O(m n); ranking O(m).
  bool Parallel(Eigen::Index m) const { return threads_ > 1 && double(m) * double(n_) * double(n_) >= 5e7; }
  bool ParallelLinear(Eigen::Index m) const { return threads_ > 1 && double(m) * double(n_) >= 2e7; }
  bool ParallelRank(Eigen::Index m) const { return threads_ > 1 && m >= 200000; }

  int Threads(Eigen::Index chunks) const {
    return static_cast<int>(std::max<Eigen::Index>(1, std::min<Eigen::Index>(threads_, chunks)));
  }

  GpStatus CheckPoints(const Eigen::MatrixXd& points) const {
    if (!loaded_) return GpStatus::InvalidArgument("engine: nothing loaded");
    if (points.rows() != dims_) {
      return GpStatus::InvalidArgument("points have " + std::to_string(points.rows()) + " coordinates, the model " +
                                       std::to_string(dims_));
    }
    if (!points.allFinite()) return GpStatus::InvalidArgument("non-finite candidate coordinate");
    return GpStatus::Ok();
  }

  // The posterior mean's gradient with respect to the scaled, warped points `zc` (D x m), from
  // Cross's radial terms g: dk_pj/dz_dj = -g_pj (z_dj - z_pd), so d mean_j / dz_dj =
  // -(z_dj sum_p g_pj alpha_p - sum_p z_pd g_pj alpha_p). Evaluate's log EI gradient and
  // MinusMean share it.
  Eigen::MatrixXd MeanGradientZ(const Eigen::MatrixXd& zc, const Eigen::MatrixXd& g) const {
    const Eigen::MatrixXd ga = g.array().colwise() * alpha_.head(n_).array();  // g_pj alpha_p
    const Eigen::RowVectorXd s_mean = ga.colwise().sum();
    const Eigen::MatrixXd t_mean = z_.leftCols(n_) * ga;  // D x m
    return -(zc.array().rowwise() * s_mean.array() - t_mean.array()).matrix();
  }

  // Minus the posterior mean at every column of `points` (checked by the caller) and its
  // gradient with respect to the points (through the warping).
  void MinusMean(const Eigen::MatrixXd& points, Eigen::VectorXd* value, Eigen::MatrixXd* grad) const {
    const Eigen::Index m = points.cols();
    value->resize(m);
    grad->resize(dims_, m);
    Eigen::MatrixXd dwdx;
    const Eigen::MatrixXd zc = Scaled(points, &dwdx);
    Eigen::MatrixXd k, g;
    Cross(zc, &k, &g);
    *value = -(k.transpose() * alpha_.head(n_));
    const Eigen::MatrixXd dmean_dz = MeanGradientZ(zc, g);
    for (Eigen::Index j = 0; j < m; ++j) {
      for (Eigen::Index dd = 0; dd < dims_; ++dd) {
        const double v = -dmean_dz(dd, j) * inv_l_[dd] * dwdx(dd, j);
        (*grad)(dd, j) = std::isfinite(v) ? v : 0.0;
      }
    }
  }

  // z = w(x) / l for a block of points; with dwdx, also the warp's derivative per coordinate.
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

  // k (n x c) = K(train, points), and g (the radial term) when asked.
  void Cross(const Eigen::MatrixXd& zc, Eigen::MatrixXd* k, Eigen::MatrixXd* g) const {
    const Eigen::RowVectorXd csq = zc.colwise().squaredNorm();
    *k = -2.0 * (z_.leftCols(n_).transpose() * zc);
    k->colwise() += zsq_.head(n_);
    k->rowwise() += csq;
    if (g) g->resize(n_, zc.cols());
    for (Eigen::Index j = 0; j < zc.cols(); ++j) {
      for (Eigen::Index i = 0; i < n_; ++i) {
        const double r = std::sqrt(std::max((*k)(i, j), 0.0));
        if (g) {
          Matern52WithRadialTerm(r, s2_, &(*k)(i, j), &(*g)(i, j));
        } else {
          (*k)(i, j) = Matern52(r, s2_);
        }
      }
    }
  }

  void Grow() {
    const Eigen::Index cap = cap_ * 2;
    z_.conservativeResize(Eigen::NoChange, cap);
    zsq_.conservativeResize(cap);
    Eigen::MatrixXd l = Eigen::MatrixXd::Zero(cap, cap);
    l.topLeftCorner(n_, n_) = l_.topLeftCorner(n_, n_);
    l_.swap(l);
    y_.conservativeResize(cap);
    alpha_.conservativeResize(cap);
    pool_v_.conservativeResize(cap, Eigen::NoChange);
    cap_ = cap;
  }

  int threads_;
  bool loaded_ = false;
  Eigen::Index dims_ = 0, n_ = 0, cap_ = 0;
  double s2_ = 1, noise_ = 0;
  Eigen::VectorXd inv_l_, inv_l2_, warp_a_, warp_b_;
  std::vector<uint8_t> warped_;
  Eigen::MatrixXd z_;      // D x cap: scaled warped training inputs
  Eigen::VectorXd zsq_;    // cap: their squared norms
  Eigen::MatrixXd l_;      // cap x cap: Cholesky factor (top-left n x n in use)
  Eigen::VectorXd y_, alpha_;
  Eigen::MatrixXd pool_z_;  // D x m
  Eigen::MatrixXd pool_v_;  // cap x m: L^-1 K(train, pool) (top n rows in use)
  Eigen::VectorXd pool_mean_, pool_var_;
};

}  // namespace

std::unique_ptr<GpEngine> MakeCpuEngine(const EngineOptions& options) {
  int threads = options.threads;
  if (threads <= 0) {
#ifdef _OPENMP
    threads = omp_get_max_threads();
#else
    threads = 1;
#endif
  }
#ifndef _OPENMP
  threads = 1;
#endif
  return std::make_unique<CpuEngine>(std::max(1, threads));
}

}  // namespace hpo::kernels
