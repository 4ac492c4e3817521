#include "kernels/gp_model.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <vector>

#include <Eigen/Cholesky>
#include <Eigen/LU>

#include "kernels/gp_engine.h"
#include "kernels/quantile.h"
#include "kernels/random.h"
#include "tests/kernels/test_data.h"

namespace hpo::kernels {
namespace {

using testing::RandomPoints;

Eigen::VectorXd TestFunction(const Eigen::MatrixXd& x) { return testing::SmoothSurface(x); }

Hyperparameters SomeHyperparameters(int d, bool warped) {
  Hyperparameters hp;
  hp.log_lengthscale.resize(d);
  for (int i = 0; i < d; ++i) hp.log_lengthscale[i] = std::log(0.2 + 0.15 * i);
  hp.log_signal_variance = std::log(1.3);
  hp.log_noise_variance = std::log(0.01);
  if (warped) {
    hp.log_warp_a = Eigen::VectorXd::Zero(d);
    hp.log_warp_b = Eigen::VectorXd::Zero(d);
    for (int i = 0; i < d; i += 2) {
      hp.log_warp_a[i] = 0.3 - 0.2 * i;
      hp.log_warp_b[i] = -0.4 + 0.1 * i;
    }
  }
  return hp;
}

WarpMask EveryOther(int d) {
  WarpMask m(d, 0);
  for (int i = 0; i < d; i += 2) m[i] = 1;
  return m;
}

// Central finite differences of NegLogMarginalLikelihood against its analytic gradient.
void CheckLikelihoodGradient(bool warped, bool with_prior,
                             double median = std::numeric_limits<double>::quiet_NaN()) {
  const int d = 3, n = 25;
  const Eigen::MatrixXd x = RandomPoints(d, n, 7);
  Eigen::VectorXd y = TestFunction(x);
  y = (y.array() - y.mean()) / std::sqrt((y.array() - y.mean()).square().mean());
  const WarpMask mask = warped ? EveryOther(d) : WarpMask();
  const Eigen::VectorXd theta = PackHyperparameters(SomeHyperparameters(d, warped), mask);
  Eigen::VectorXd grad;
  const double f = NegLogMarginalLikelihood(x, y, theta, mask, with_prior, &grad, median);
  ASSERT_TRUE(std::isfinite(f));
  ASSERT_EQ(grad.size(), theta.size());
  for (Eigen::Index i = 0; i < theta.size(); ++i) {
    const double h = 1e-5;
    Eigen::VectorXd tp = theta, tm = theta;
    tp[i] += h;
    tm[i] -= h;
    const double fd = (NegLogMarginalLikelihood(x, y, tp, mask, with_prior, nullptr, median) -
                       NegLogMarginalLikelihood(x, y, tm, mask, with_prior, nullptr, median)) /
                      (2 * h);
    EXPECT_NEAR(grad[i], fd, 1e-5 * std::max(1.0, std::fabs(fd))) << "parameter " << i;
  }
}

TEST(GpLikelihood, GradientMatchesFiniteDifferences) { CheckLikelihoodGradient(false, false); }
TEST(GpLikelihood, GradientWithPriorMatchesFiniteDifferences) { CheckLikelihoodGradient(false, true); }
TEST(GpLikelihood, GradientWithWarpingMatchesFiniteDifferences) { CheckLikelihoodGradient(true, true); }
TEST(GpLikelihood, GradientWithTheShortPriorMatchesFiniteDifferences) {
  CheckLikelihoodGradient(true, true, kShortLengthscaleLogMedian);
}

// The likelihood's gradient sums (kernels/gp_model.cc) expand the squared differences of every
// pair into one matrix product. Against the direct computation, pair by pair and parameter by
// parameter, of 1/2 sum_pq (alpha alpha^T - K^-1)_pq dK_pq/dtheta, on more points than the
// finite-difference checks use, with long and short lengthscales (where the expansion could
// lose digits) and inputs far from the origin of the scaled space.
TEST(GpLikelihood, GradientMatchesTheDirectPairwiseComputation) {
  const int d = 7, n = 120;
  const Eigen::MatrixXd x = RandomPoints(d, n, 21);
  Eigen::VectorXd y = TestFunction(x);
  y = (y.array() - y.mean()) / std::sqrt((y.array() - y.mean()).square().mean());
  const WarpMask mask = EveryOther(d);
  for (const double log_l : {std::log(0.05), std::log(0.7), std::log(30.0)}) {
    Hyperparameters hp = SomeHyperparameters(d, true);
    hp.log_lengthscale.setConstant(log_l);
    hp.log_lengthscale[1] += 0.5;
    const Eigen::VectorXd theta = PackHyperparameters(hp, mask);
    Eigen::VectorXd grad;
    const double f = NegLogMarginalLikelihood(x, y, theta, mask, false, &grad);
    ASSERT_TRUE(std::isfinite(f)) << log_l;

    // Direct: warped inputs and their derivatives in log a, log b.
    Eigen::MatrixXd w = x, dwa = Eigen::MatrixXd::Zero(d, n), dwb = Eigen::MatrixXd::Zero(d, n);
    for (int i = 0; i < d; ++i) {
      if (!mask[i]) continue;
      const double a = std::exp(hp.log_warp_a[i]), b = std::exp(hp.log_warp_b[i]);
      for (int j = 0; j < n; ++j) {
        const double u = x(i, j), ua = std::pow(u, a);
        w(i, j) = KumaraswamyWarp(u, a, b);
        dwa(i, j) = a * b * std::pow(1 - ua, b - 1) * ua * std::log(u);
        dwb(i, j) = -b * std::pow(1 - ua, b) * std::log(1 - ua);
      }
    }
    const double s2 = std::exp(hp.log_signal_variance), noise = std::exp(hp.log_noise_variance);
    Eigen::MatrixXd k = KernelMatrix(hp, x, x);
    k.diagonal().array() += noise;
    const Eigen::LLT<Eigen::MatrixXd> llt(k);
    const Eigen::VectorXd alpha = llt.solve(y);
    const Eigen::MatrixXd wm = alpha * alpha.transpose() - llt.solve(Eigen::MatrixXd::Identity(n, n));
    Eigen::VectorXd expect = Eigen::VectorXd::Zero(theta.size());
    const int warped = (d + 1) / 2;
    for (int p = 0; p < n; ++p) {
      for (int q = 0; q < n; ++q) {
        double r2 = 0;
        for (int i = 0; i < d; ++i) r2 += std::pow((w(i, p) - w(i, q)) / std::exp(hp.log_lengthscale[i]), 2);
        const double sr = std::sqrt(5.0 * r2);
        const double gg = 5.0 / 3.0 * s2 * (1 + sr) * std::exp(-sr);  // -(dk/dr)/r
        const double half = 0.5 * wm(p, q);
        expect[d] += half * (k(p, q) - (p == q ? noise : 0.0));
        if (p == q) expect[d + 1] += half * noise;
        for (int i = 0, wi = 0; i < d; ++i) {
          const double l2 = std::exp(2 * hp.log_lengthscale[i]), diff = w(i, p) - w(i, q);
          expect[i] += half * gg * diff * diff / l2;
          if (!mask[i]) continue;
          // dK_pq/dw_ip = -gg diff / l^2, dK_pq/dw_iq = +gg diff / l^2
          const double dk = -gg * diff / l2;
          expect[d + 2 + wi] += half * dk * (dwa(i, p) - dwa(i, q));
          expect[d + 2 + warped + wi] += half * dk * (dwb(i, p) - dwb(i, q));
          ++wi;
        }
      }
    }
    expect = -expect;
    for (Eigen::Index i = 0; i < theta.size(); ++i) {
      EXPECT_NEAR(grad[i], expect[i], 1e-8 * std::max(1.0, expect.cwiseAbs().maxCoeff()))
          << "parameter " << i << ", log lengthscale " << log_l;
    }
  }
}

// One evaluation's blocks run on LikelihoodWorkspace::threads threads (the cores the fit's
// starts leave idle): the value and every gradient entry are the same bits whatever the count,
// across the inverse's, the factor's and the product's block boundaries.
TEST(GpLikelihood, TheValueAndGradientDoNotDependOnTheThreadCount) {
  for (const int n : {1, 2, 31, 65, 300}) {
    const int d = 6;
    const Eigen::MatrixXd x = RandomPoints(d, n, 60 + n);
    Eigen::VectorXd y = TestFunction(x);
    if (n > 1) y = (y.array() - y.mean()) / std::sqrt((y.array() - y.mean()).square().mean());
    const WarpMask mask = EveryOther(d);
    const Eigen::VectorXd theta = PackHyperparameters(SomeHyperparameters(d, true), mask);
    LikelihoodWorkspace one;
    Eigen::VectorXd g1;
    const double f1 = NegLogMarginalLikelihood(x, y, theta, mask, true, &g1, kShortLengthscaleLogMedian, &one);
    ASSERT_TRUE(std::isfinite(f1)) << n;
    for (const int threads : {2, 3, 5}) {
      LikelihoodWorkspace ws;
      ws.threads = threads;
      Eigen::VectorXd g;
      for (int repeat = 0; repeat < 2; ++repeat) {  // the second with the workspace's buffers kept
        const double f = NegLogMarginalLikelihood(x, y, theta, mask, true, &g, kShortLengthscaleLogMedian, &ws);
        EXPECT_EQ(f, f1) << n << " points, " << threads << " threads";
        ASSERT_EQ(g.size(), g1.size());
        for (Eigen::Index i = 0; i < g.size(); ++i) EXPECT_EQ(g[i], g1[i]) << n << " points, " << threads << " threads, " << i;
      }
      // Without the gradient: the same value.
      EXPECT_EQ(NegLogMarginalLikelihood(x, y, theta, mask, true, nullptr, kShortLengthscaleLogMedian, &ws), f1);
    }
  }
}

// The posterior's factor (a blocked, threaded Cholesky since the subset of 2000 points took
// 0.1 s on one thread) against Eigen's LLT, across block boundaries and sizes where the blocks
// run on threads; L L^T reproduces the matrix, and alpha solves it.
TEST(GpPosterior, TheFactorMatchesEigensCholesky) {
  for (const int n : {1, 5, 127, 128, 129, 300, 700}) {
    const int d = 4;
    const Eigen::MatrixXd x = RandomPoints(d, n, 40 + n);
    const Eigen::VectorXd y = TestFunction(x);
    const Hyperparameters hp = SomeHyperparameters(d, true);
    Posterior post;
    ASSERT_TRUE(BuildPosterior(x, y, hp, 0.0, 1.0, &post).ok()) << n;
    Eigen::MatrixXd k = KernelMatrix(hp, x, x);
    k.diagonal().array() += std::exp(hp.log_noise_variance) + post.jitter;
    const Eigen::LLT<Eigen::MatrixXd> llt(k);
    ASSERT_EQ(llt.info(), Eigen::Success);
    const Eigen::MatrixXd expect = llt.matrixL();
    EXPECT_LT((post.chol - expect).cwiseAbs().maxCoeff(), 1e-9 * expect.cwiseAbs().maxCoeff()) << n;
    EXPECT_EQ(post.chol.triangularView<Eigen::StrictlyUpper>().toDenseMatrix().cwiseAbs().maxCoeff(), 0.0) << n;
    EXPECT_LT((post.chol * post.chol.transpose() - k).cwiseAbs().maxCoeff(), 1e-9 * k.cwiseAbs().maxCoeff()) << n;
    EXPECT_LT((k * post.alpha - y).norm(), 1e-6 * y.norm()) << n;
  }
}

TEST(GpLikelihood, ThePriorsDifferOnlyInTheLengthscaleTerm) {
  const int d = 3;
  const Eigen::MatrixXd x = RandomPoints(d, 10, 5);
  const Eigen::VectorXd y = TestFunction(x);
  Hyperparameters hp = SomeHyperparameters(d, false);
  hp.log_lengthscale.setConstant(kShortLengthscaleLogMedian);  // at the short prior's median
  const Eigen::VectorXd theta = PackHyperparameters(hp, {});
  const double none = NegLogMarginalLikelihood(x, y, theta, {}, false, nullptr);
  const double at_short = NegLogMarginalLikelihood(x, y, theta, {}, true, nullptr, kShortLengthscaleLogMedian);
  const double at_long = NegLogMarginalLikelihood(x, y, theta, {}, true, nullptr);
  const double long_median = std::sqrt(2.0) + 0.5 * std::log(3.0);
  const double gap = long_median - kShortLengthscaleLogMedian;
  // Same terms but the lengthscales': (m - l)^2 / (2 * 3) per dimension.
  EXPECT_NEAR(at_long - at_short, d * gap * gap / 6.0, 1e-9);
  EXPECT_GT(at_short, none);
}

TEST(GpLikelihood, EqualsTheDenseGaussianLogDensity) {
  const int d = 2, n = 12;
  const Eigen::MatrixXd x = RandomPoints(d, n, 3);
  const Eigen::VectorXd y = TestFunction(x);
  const Hyperparameters hp = SomeHyperparameters(d, false);
  Eigen::MatrixXd k = KernelMatrix(hp, x, x);
  k.diagonal().array() += std::exp(hp.log_noise_variance);
  const Eigen::LLT<Eigen::MatrixXd> llt(k);
  const double log_det = 2 * llt.matrixL().toDenseMatrix().diagonal().array().log().sum();
  const double expected = 0.5 * y.dot(llt.solve(y)) + 0.5 * log_det + 0.5 * n * std::log(2 * M_PI);
  EXPECT_NEAR(NegLogMarginalLikelihood(x, y, PackHyperparameters(hp, {}), {}, false, nullptr), expected, 1e-9);
}

TEST(GpKernel, Matern52AtZeroIsTheSignalVarianceAndDecays) {
  Hyperparameters hp = SomeHyperparameters(2, false);
  Eigen::MatrixXd a(2, 3);
  a << 0.1, 0.1, 0.9, 0.2, 0.25, 0.9;
  const Eigen::MatrixXd k = KernelMatrix(hp, a, a);
  EXPECT_NEAR(k(0, 0), 1.3, 1e-12);
  EXPECT_GT(k(0, 1), k(0, 2));
  EXPECT_NEAR(k(0, 1), k(1, 0), 1e-15);
}

TEST(GpKernel, KumaraswamyWarpIsAMonotoneMapOfTheUnitInterval) {
  for (double a : {0.3, 1.0, 2.5}) {
    for (double b : {0.4, 1.0, 3.0}) {
      EXPECT_DOUBLE_EQ(KumaraswamyWarp(0.0, a, b), 0.0);
      EXPECT_DOUBLE_EQ(KumaraswamyWarp(1.0, a, b), 1.0);
      double prev = 0;
      for (double x = 0.05; x < 1; x += 0.05) {
        const double w = KumaraswamyWarp(x, a, b);
        EXPECT_GT(w, prev);
        prev = w;
        const double h = 1e-6;
        const double fd = (KumaraswamyWarp(x + h, a, b) - KumaraswamyWarp(x - h, a, b)) / (2 * h);
        EXPECT_NEAR(KumaraswamyWarpDerivative(x, a, b), fd, 1e-5 * std::max(1.0, std::fabs(fd)));
      }
    }
  }
  EXPECT_DOUBLE_EQ(KumaraswamyWarp(0.37, 1.0, 1.0), 0.37);
}

TEST(GpPosterior, MeanAndVarianceMatchADirectDenseComputation) {
  const int d = 3, n = 30;
  const Eigen::MatrixXd x = RandomPoints(d, n, 11);
  const Eigen::VectorXd y = TestFunction(x);
  for (bool warped : {false, true}) {
    const Hyperparameters hp = SomeHyperparameters(d, warped);
    Posterior post;
    ASSERT_TRUE(BuildPosterior(x, y, hp, 0.0, 1.0, &post).ok());
    const Eigen::MatrixXd q = RandomPoints(d, 5, 12);
    Eigen::MatrixXd k = KernelMatrix(hp, x, x);
    k.diagonal().array() += std::exp(hp.log_noise_variance) + post.jitter;
    const Eigen::MatrixXd kinv = k.inverse();
    const Eigen::MatrixXd ks = KernelMatrix(hp, x, q);
    const Eigen::VectorXd mean = ks.transpose() * kinv * y;
    for (int j = 0; j < 5; ++j) {
      const Eigen::VectorXd kj = ks.col(j);
      const double var = std::exp(hp.log_signal_variance) - kj.dot(kinv * kj);
      // The posterior's factor reproduces the same quantities.
      const double m2 = kj.dot(post.alpha);
      const Eigen::VectorXd v = post.chol.triangularView<Eigen::Lower>().solve(kj);
      EXPECT_NEAR(m2, mean[j], 1e-8);
      EXPECT_NEAR(std::exp(hp.log_signal_variance) - v.squaredNorm(), var, 1e-8);
    }
    EXPECT_DOUBLE_EQ(post.incumbent, y.minCoeff());
  }
}

TEST(GpPosterior, AppendingAnObservationEqualsRefactorising) {
  const int d = 4, n = 40;
  const Eigen::MatrixXd x = RandomPoints(d, n + 3, 5);
  const Eigen::VectorXd y = TestFunction(x);
  const Hyperparameters hp = SomeHyperparameters(d, true);
  Posterior inc;
  ASSERT_TRUE(BuildPosterior(x.leftCols(n), y.head(n), hp, 0.0, 1.0, &inc).ok());
  ASSERT_EQ(inc.jitter, 0.0);
  for (int i = 0; i < 3; ++i) ASSERT_TRUE(AppendObservation(&inc, x.col(n + i), y[n + i]).ok());
  Posterior full;
  ASSERT_TRUE(BuildPosterior(x, y, hp, 0.0, 1.0, &full).ok());
  EXPECT_LT((inc.chol - full.chol).cwiseAbs().maxCoeff(), 1e-10);
  EXPECT_LT((inc.alpha - full.alpha).cwiseAbs().maxCoeff(), 1e-8);
  EXPECT_DOUBLE_EQ(inc.incumbent, full.incumbent);
}

TEST(GpFit, IsDeterministicGivenTheSeedAndRecoversASmoothFunction) {
  const int d = 2, n = 40;
  const Eigen::MatrixXd x = RandomPoints(d, n, 21);
  const Eigen::VectorXd y = TestFunction(x);
  FitOptions o;
  o.seed = 99;
  Posterior a, b;
  FitReport ra;
  ASSERT_TRUE(FitGp(x, y, o, &a, &ra).ok());
  ASSERT_TRUE(FitGp(x, y, o, &b, nullptr).ok());
  EXPECT_EQ(a.hp.log_lengthscale, b.hp.log_lengthscale);
  EXPECT_EQ(a.alpha, b.alpha);
  EXPECT_EQ(ra.starts, 3);  // the default start, one random restart, the short prior's start
  // Prediction at held-out points is close to the truth (the function is smooth).
  const Eigen::MatrixXd q = RandomPoints(d, 20, 22);
  const Eigen::VectorXd truth = TestFunction(q);
  const Eigen::MatrixXd ks = KernelMatrix(a.hp, a.inputs, q);
  const Eigen::VectorXd pred = (ks.transpose() * a.alpha).array() * a.y_scale + a.y_mean;
  EXPECT_LT((pred - truth).cwiseAbs().maxCoeff(), 0.1);
  // The fit is better than the default start, under the prior it chose.
  EXPECT_LT(ra.neg_log_posterior,
            NegLogMarginalLikelihood(x, (y.array() - a.y_mean) / a.y_scale,
                                     PackHyperparameters(DefaultHyperparameters(d, {}), {}), {}, true, nullptr,
                                     ra.short_lengthscale_prior ? kShortLengthscaleLogMedian
                                                                : std::numeric_limits<double>::quiet_NaN()));
}

// FitOptions::prior_mean_quantile: away from the data the model reverts to that quantile of the
// targets (0.75 by default), not to their mean; at the data it still interpolates them.
TEST(GpFit, RevertsToThePriorMeanQuantileAwayFromTheData) {
  const int d = 2, n = 30;
  const Eigen::MatrixXd x = RandomPoints(d, n, 31);
  const Eigen::VectorXd y = TestFunction(x);
  std::vector<double> sorted(y.data(), y.data() + n);
  std::sort(sorted.begin(), sorted.end());
  const Eigen::MatrixXd far = Eigen::MatrixXd::Constant(d, 1, 1e3);
  for (double q : {0.75, 0.5, 0.9, std::numeric_limits<double>::quiet_NaN()}) {
    FitOptions o;
    o.seed = 5;
    o.prior_mean_quantile = q;
    Posterior p;
    ASSERT_TRUE(FitGp(x, y, o, &p, nullptr).ok());
    const double expected = std::isnan(q) ? y.mean() : QuantileOfSorted(sorted, q);
    EXPECT_NEAR(p.y_mean, expected, 1e-9 * std::max(1.0, std::fabs(expected))) << q;
    const Eigen::VectorXd at_far = (KernelMatrix(p.hp, p.inputs, far).transpose() * p.alpha).array() * p.y_scale + p.y_mean;
    EXPECT_NEAR(at_far[0], expected, 1e-6) << q;
    const Eigen::VectorXd at_data = (KernelMatrix(p.hp, p.inputs, x).transpose() * p.alpha).array() * p.y_scale + p.y_mean;
    EXPECT_LT((at_data - y).cwiseAbs().maxCoeff(), 1e-2 * (y.maxCoeff() - y.minCoeff())) << q;
    // The incumbent is still the best target.
    EXPECT_NEAR(p.incumbent * p.y_scale + p.y_mean, y.minCoeff(), 1e-9) << q;
  }
  // The default leans pessimistic: above the median of the targets.
  EXPECT_EQ(FitOptions().prior_mean_quantile, 0.75);
}

// FitOptions::threads: the starts side by side and each evaluation split over the cores they
// leave (from 128 points) give the same hyperparameters and posterior as one thread; with
// warping, slice sampling and a warm start too.
TEST(GpFit, TheResultDoesNotDependOnTheThreadCount) {
  const int d = 4, n = 160;
  const Eigen::MatrixXd x = RandomPoints(d, n, 31);
  const Eigen::VectorXd y = TestFunction(x);
  for (const HyperFit method : {HyperFit::kMaximumPosterior, HyperFit::kSliceSampling}) {
    FitOptions o;
    o.method = method;
    o.seed = 5;
    o.warp_mask = EveryOther(d);
    o.max_iterations = 15;
    o.slice_sweeps = 1;
    const Hyperparameters warm = SomeHyperparameters(d, true);
    o.initial = &warm;
    Posterior reference;
    FitReport ref_report;
    o.threads = 1;
    ASSERT_TRUE(FitGp(x, y, o, &reference, &ref_report).ok());
    EXPECT_EQ(ref_report.starts, 5);
    for (const int threads : {2, 4, 11}) {
      o.threads = threads;
      Posterior p;
      FitReport r;
      ASSERT_TRUE(FitGp(x, y, o, &p, &r).ok()) << threads;
      EXPECT_EQ(p.hp.log_lengthscale, reference.hp.log_lengthscale) << threads;
      EXPECT_EQ(p.hp.log_warp_a, reference.hp.log_warp_a) << threads;
      EXPECT_EQ(p.hp.log_noise_variance, reference.hp.log_noise_variance) << threads;
      EXPECT_EQ(p.chol, reference.chol) << threads;
      EXPECT_EQ(p.alpha, reference.alpha) << threads;
      EXPECT_EQ(r.evaluations, ref_report.evaluations) << threads;
      EXPECT_EQ(r.neg_log_posterior, ref_report.neg_log_posterior) << threads;
    }
  }
}

// FitOptions::engine: a likelihood device that computes on the host (the reference likelihood
// without its prior) stands in for the GPU, so that what FitGp does around a device -- one per
// start, the prior added on the host, a failing device's start going on on the host, the notes
// -- is tested without one. The CUDA device itself is tested against the host in
// cuda_engine_test.cc (CudaEngine.LikelihoodMatchesCpu, on a lent GPU).
class HostLikelihood final : public LikelihoodDevice {
 public:
  int fail_after = -1;        // Evaluate fails (Unavailable) from this call on; -1: never
  bool fail_load = false;
  int calls = 0;
  GpStatus Load(const Eigen::MatrixXd& x, const Eigen::VectorXd& y, const std::vector<uint8_t>& mask) override {
    if (fail_load) return GpStatus::Unavailable("test: no device memory");
    x_ = x;
    y_ = y;
    mask_ = mask;
    return GpStatus::Ok();
  }
  GpStatus Evaluate(const Eigen::VectorXd& theta, double* value, Eigen::VectorXd* grad) override {
    if (fail_after >= 0 && calls >= fail_after) return GpStatus::Unavailable("test: the device went away");
    ++calls;
    *value = NegLogMarginalLikelihood(x_, y_, theta, mask_, false, grad);
    return GpStatus::Ok();
  }

 private:
  Eigen::MatrixXd x_;
  Eigen::VectorXd y_;
  WarpMask mask_;
};

// A CPU engine that offers `offered` host likelihood devices.
class EngineWithDevices final : public GpEngine {
 public:
  explicit EngineWithDevices(size_t offered) : devices_(offered) {
    EXPECT_TRUE(MakeGpEngine(Device::kCpu, EngineOptions{}, &cpu_, nullptr).ok());
  }
  std::vector<HostLikelihood> devices_;
  size_t asked = 0;
  Device device() const override { return Device::kCpu; }
  std::string Describe() const override { return "test"; }
  GpStatus Load(const Posterior& p, size_t reserve) override { return cpu_->Load(p, reserve); }
  GpStatus Evaluate(const Eigen::MatrixXd& x, double inc, bool g, PointScores* out) override {
    return cpu_->Evaluate(x, inc, g, out);
  }
  GpStatus SetPool(const Eigen::MatrixXd& p) override { return cpu_->SetPool(p); }
  GpStatus ExtendPool(const Eigen::MatrixXd& p) override { return cpu_->ExtendPool(p); }
  size_t PoolSize() const override { return cpu_->PoolSize(); }
  GpStatus PoolTopK(double inc, size_t k, std::vector<RankedCandidate>* out) override {
    return cpu_->PoolTopK(inc, k, out);
  }
  GpStatus Fantasize(const Eigen::VectorXd& x, double y) override { return cpu_->Fantasize(x, y); }
  size_t TrainingSize() const override { return cpu_->TrainingSize(); }
  void LikelihoodDevices(size_t count, std::vector<LikelihoodDevice*>* out, std::string* why) override {
    asked = count;
    out->clear();
    if (why) why->clear();
    for (size_t i = 0; i < std::min(count, devices_.size()); ++i) out->push_back(&devices_[i]);
  }

 private:
  std::unique_ptr<GpEngine> cpu_;
};

void ExpectSameFit(const Posterior& a, const Posterior& b) {
  EXPECT_EQ(a.hp.log_lengthscale, b.hp.log_lengthscale);
  EXPECT_EQ(a.hp.log_warp_a, b.hp.log_warp_a);
  EXPECT_EQ(a.hp.log_warp_b, b.hp.log_warp_b);
  EXPECT_EQ(a.hp.log_signal_variance, b.hp.log_signal_variance);
  EXPECT_EQ(a.hp.log_noise_variance, b.hp.log_noise_variance);
  EXPECT_EQ(a.alpha, b.alpha);
}

TEST(GpFit, LikelihoodDevicesRunEveryStartAndGiveTheHostsFit) {
  const int d = 4, n = 150;
  const Eigen::MatrixXd x = RandomPoints(d, n, 41);
  const Eigen::VectorXd y = TestFunction(x);
  FitOptions o;
  o.seed = 8;
  o.warp_mask = EveryOther(d);
  o.max_iterations = 20;
  const Hyperparameters warm = SomeHyperparameters(d, true);
  o.initial = &warm;
  Posterior host, device;
  FitReport host_report, device_report;
  ASSERT_TRUE(FitGp(x, y, o, &host, &host_report).ok());
  EngineWithDevices engine(8);
  o.engine = &engine;
  ASSERT_TRUE(FitGp(x, y, o, &device, &device_report).ok());
  EXPECT_EQ(engine.asked, 5u);  // one per start: default, warm, random, short, short warm
  int calls = 0;
  for (size_t i = 0; i < 5; ++i) {
    EXPECT_GT(engine.devices_[i].calls, 0) << i;
    calls += engine.devices_[i].calls;
  }
  EXPECT_EQ(device_report.device_evaluations, calls);
  EXPECT_EQ(device_report.device_evaluations, device_report.evaluations);
  EXPECT_EQ(device_report.device_note, "");
  // The host device computes the host's likelihood, and the prior is added as the host adds it.
  ExpectSameFit(device, host);
  EXPECT_EQ(device_report.neg_log_posterior, host_report.neg_log_posterior);
  EXPECT_EQ(host_report.device_evaluations, 0);
}

TEST(GpFit, AFailingLikelihoodDeviceLeavesItsStartToTheHost) {
  const int d = 3, n = 140;
  const Eigen::MatrixXd x = RandomPoints(d, n, 42);
  const Eigen::VectorXd y = TestFunction(x);
  FitOptions o;
  o.seed = 3;
  o.max_iterations = 20;
  Posterior host;
  ASSERT_TRUE(FitGp(x, y, o, &host, nullptr).ok());
  {  // one device fails after 4 evaluations: its start goes on on the host, the fit is the same
    EngineWithDevices engine(3);
    engine.devices_[1].fail_after = 4;
    o.engine = &engine;
    Posterior p;
    FitReport r;
    ASSERT_TRUE(FitGp(x, y, o, &p, &r).ok());
    ExpectSameFit(p, host);
    EXPECT_EQ(engine.devices_[1].calls, 4);
    EXPECT_LT(r.device_evaluations, r.evaluations);
    EXPECT_NE(r.device_note.find("the device went away"), std::string::npos) << r.device_note;
  }
  {  // a device that cannot load: the whole fit on the host, and why
    EngineWithDevices engine(3);
    engine.devices_[2].fail_load = true;
    o.engine = &engine;
    Posterior p;
    FitReport r;
    ASSERT_TRUE(FitGp(x, y, o, &p, &r).ok());
    ExpectSameFit(p, host);
    EXPECT_EQ(r.device_evaluations, 0);
    EXPECT_EQ(r.device_note, "test: no device memory");
  }
  {  // fewer devices than starts: the host, and why
    EngineWithDevices engine(2);
    o.engine = &engine;
    Posterior p;
    FitReport r;
    ASSERT_TRUE(FitGp(x, y, o, &p, &r).ok());
    ExpectSameFit(p, host);
    EXPECT_EQ(r.device_evaluations, 0);
    EXPECT_NE(r.device_note.find("2 likelihood devices for 3 starts"), std::string::npos) << r.device_note;
  }
  {  // below device_min_fit_points the engine is not asked
    EngineWithDevices engine(3);
    o.engine = &engine;
    o.device_min_fit_points = n + 1;
    Posterior p;
    FitReport r;
    ASSERT_TRUE(FitGp(x, y, o, &p, &r).ok());
    EXPECT_EQ(engine.asked, 0u);
    EXPECT_EQ(r.device_evaluations, 0);
  }
}

// The data choose the lengthscale prior: a rugged surface (many short waves, like Ackley's) gets
// the short one, a surface that is nearly linear over the box the dimension-scaled one; turned
// off, only the latter is tried.
TEST(GpFit, TheDataChooseTheLengthscalePriorByItsEvidence) {
  const int d = 4, n = 60;
  const Eigen::MatrixXd x = RandomPoints(d, n, 41);
  Eigen::VectorXd rugged(n), smooth(n), exact(n);
  for (int j = 0; j < n; ++j) {
    rugged[j] = 0;
    exact[j] = 0;
    for (int i = 0; i < d; ++i) {
      rugged[j] += std::cos(2 * M_PI * 4 * x(i, j)) + 0.5 * x(i, j);
      exact[j] += (1.0 + i) * x(i, j) + 0.1 * x(i, j) * x(i, j);
    }
    smooth[j] = exact[j] + 0.05 * std::sin(1000.0 * (j + 1));  // a little measurement noise
  }
  FitOptions o;
  o.seed = 3;
  Posterior post;
  FitReport r;
  ASSERT_TRUE(FitGp(x, rugged, o, &post, &r).ok());
  EXPECT_TRUE(r.short_lengthscale_prior);
  ASSERT_TRUE(FitGp(x, smooth, o, &post, &r).ok());
  EXPECT_FALSE(r.short_lengthscale_prior);
  // Without noise both priors' MAPs interpolate the plane with long lengthscales and about equal
  // evidence: whichever wins, the model is smooth.
  ASSERT_TRUE(FitGp(x, exact, o, &post, &r).ok());
  EXPECT_GT(post.hp.log_lengthscale.minCoeff(), std::log(5.0));
  // A margin for the short prior turns the smooth choice around once it is large enough.
  o.short_prior_margin = 1e6;
  ASSERT_TRUE(FitGp(x, smooth, o, &post, &r).ok());
  EXPECT_TRUE(r.short_lengthscale_prior);
  o.short_prior_margin = 0;
  o.select_lengthscale_prior = false;
  o.output_warp_margin = std::numeric_limits<double>::quiet_NaN();  // one fit: its starts alone
  ASSERT_TRUE(FitGp(x, rugged, o, &post, &r).ok());
  EXPECT_FALSE(r.short_lengthscale_prior);
  EXPECT_EQ(r.starts, 2);
}

TEST(GpFit, WarmStartAndSliceSamplingAndFixedGiveUsablePosteriors) {
  const int d = 3, n = 30;
  const Eigen::MatrixXd x = RandomPoints(d, n, 31);
  const Eigen::VectorXd y = TestFunction(x);
  FitOptions o;
  o.seed = 1;
  o.warp_mask = WarpMask(d, 1);
  Posterior first;
  ASSERT_TRUE(FitGp(x, y, o, &first, nullptr).ok());
  ASSERT_TRUE(first.hp.warped());
  o.initial = &first.hp;
  o.random_restarts = 0;
  Posterior warm;
  FitReport rw;
  ASSERT_TRUE(FitGp(x, y, o, &warm, &rw).ok());
  EXPECT_EQ(rw.starts, 4);  // default and warm, under each lengthscale prior
  o.method = HyperFit::kSliceSampling;
  Posterior sliced;
  ASSERT_TRUE(FitGp(x, y, o, &sliced, nullptr).ok());
  EXPECT_TRUE(sliced.alpha.allFinite());
  o.method = HyperFit::kFixed;
  Posterior fixed;
  ASSERT_TRUE(FitGp(x, y, o, &fixed, nullptr).ok());
  EXPECT_EQ(fixed.hp.log_lengthscale, first.hp.log_lengthscale);
}

TEST(GpFit, HandlesDegenerateData) {
  // No data: an error, not a crash.
  Posterior p;
  EXPECT_EQ(FitGp(Eigen::MatrixXd(2, 0), Eigen::VectorXd(0), FitOptions(), &p, nullptr).code(),
            GpStatus::Code::kInvalidArgument);
  // One point.
  Eigen::MatrixXd one(2, 1);
  one << 0.3, 0.7;
  ASSERT_TRUE(FitGp(one, Eigen::VectorXd::Constant(1, 4.0), FitOptions(), &p, nullptr).ok());
  EXPECT_TRUE(p.alpha.allFinite());
  // Duplicated points with different values, and a constant target.
  Eigen::MatrixXd dup(2, 6);
  dup << 0.5, 0.5, 0.5, 0.1, 0.1, 0.9, 0.5, 0.5, 0.5, 0.2, 0.2, 0.9;
  Eigen::VectorXd ydup(6);
  ydup << 1, 2, 1.5, 0, 0.1, 3;
  ASSERT_TRUE(FitGp(dup, ydup, FitOptions(), &p, nullptr).ok());
  EXPECT_TRUE(p.alpha.allFinite());
  ASSERT_TRUE(FitGp(dup, Eigen::VectorXd::Constant(6, 2.5), FitOptions(), &p, nullptr).ok());
  EXPECT_TRUE(p.alpha.allFinite());
  EXPECT_EQ(p.y_scale, 1.0);
  // Non-finite input.
  Eigen::VectorXd bad = ydup;
  bad[2] = std::nan("");
  EXPECT_EQ(FitGp(dup, bad, FitOptions(), &p, nullptr).code(), GpStatus::Code::kInvalidArgument);
}

TEST(GpFit, LargeDataUsesTheDocumentedSubsetAndKeepsTheBestPoint) {
  const int d = 2, n = 600;
  const Eigen::MatrixXd x = RandomPoints(d, n, 41);
  const Eigen::VectorXd y = TestFunction(x);
  FitOptions o;
  o.max_fit_points = 50;
  o.max_posterior_points = 120;
  o.random_restarts = 0;
  Posterior p;
  FitReport r;
  ASSERT_TRUE(FitGp(x, y, o, &p, &r).ok());
  EXPECT_EQ(r.fit_points, 50u);
  EXPECT_EQ(r.posterior_points, 120u);
  EXPECT_EQ(p.size(), 120u);
  EXPECT_NEAR(p.incumbent * p.y_scale + p.y_mean, y.minCoeff(), 1e-9);
  const std::vector<size_t> s = SelectSubset(y, 120, 5);
  ASSERT_EQ(s.size(), 120u);
  EXPECT_TRUE(std::is_sorted(s.begin(), s.end()));
  EXPECT_EQ(s, SelectSubset(y, 120, 5));
  // The best 30 are all in.
  std::vector<size_t> order(n);
  for (int i = 0; i < n; ++i) order[i] = i;
  std::sort(order.begin(), order.end(), [&](size_t a, size_t b) { return y[a] < y[b]; });
  for (int i = 0; i < 30; ++i) EXPECT_TRUE(std::binary_search(s.begin(), s.end(), order[i]));
}

}  // namespace
}  // namespace hpo::kernels
