// Output warping (kernels/output_warp.h): the Yeo-Johnson transform keeps the order of the
// objectives; the lambda is the one under which the GP explains the original values best (its
// marginal likelihood with the Jacobian, the scale profiled out), so a skewed surface is warped
// and a plain smooth one is left alone; FitGp uses it only past its margin and keeps the order,
// the incumbent and the data.
#include "kernels/output_warp.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <numeric>
#include <vector>

#include <Eigen/Cholesky>
#include <Eigen/Core>

#include "kernels/gp_engine.h"
#include "kernels/gp_model.h"
#include "kernels/random.h"
#include "tests/kernels/test_data.h"

namespace hpo::kernels {
namespace {

using testing::RandomPoints;

// A smooth surface, and the same surface exponentiated: a narrow deep basin below a wide plateau
// of poor values, the shape of a loss with a few good configurations.
Eigen::VectorXd Smooth(const Eigen::MatrixXd& x) { return testing::SmoothSurface(x); }
Eigen::VectorXd Skewed(const Eigen::MatrixXd& x) { return (2.0 * Smooth(x)).array().exp().matrix(); }

Eigen::VectorXd Standardised(Eigen::VectorXd y) {
  y.array() -= y.mean();
  return y / std::sqrt(y.squaredNorm() / static_cast<double>(y.size()));
}

// The plain model's factor for standardised targets y at x: the GP fitted as FitGp does.
Eigen::MatrixXd PlainFactor(const Eigen::MatrixXd& x, const Eigen::VectorXd& y) {
  FitOptions fo;
  fo.seed = 5;
  fo.prior_mean_quantile = std::numeric_limits<double>::quiet_NaN();
  Posterior p;
  EXPECT_TRUE(FitGp(x, y, fo, &p, nullptr).ok());
  return p.chol;
}

// The warped GP's negative log marginal likelihood of y, directly: z = YJ(y) centred, the
// covariance c * K with c at its optimum (z' K^-1 z / n), minus the log-Jacobian of the transform.
double DirectNegLogLikelihood(const Eigen::MatrixXd& chol, const Eigen::VectorXd& y, double lambda) {
  const Eigen::Index n = y.size();
  const Eigen::MatrixXd k = chol * chol.transpose();
  Eigen::VectorXd z(n);
  for (Eigen::Index i = 0; i < n; ++i) z[i] = YeoJohnson(y[i], lambda);
  z.array() -= z.mean();
  Eigen::LDLT<Eigen::MatrixXd> ldlt(k);
  const double c = z.dot(ldlt.solve(z)) / static_cast<double>(n);
  double log_det = 0;
  for (Eigen::Index i = 0; i < n; ++i) log_det += std::log(c * ldlt.vectorD()[i]);
  double log_jacobian = 0;
  for (Eigen::Index i = 0; i < n; ++i) {
    const double h = 1e-6;
    log_jacobian += std::log((YeoJohnson(y[i] + h, lambda) - YeoJohnson(y[i] - h, lambda)) / (2 * h));
  }
  return 0.5 * log_det + 0.5 * z.dot(ldlt.solve(z)) / c + 0.5 * n * std::log(2 * M_PI) - log_jacobian;
}

TEST(OutputWarp, YeoJohnsonIsStrictlyIncreasingContinuousAndItsSlopeIsRight) {
  for (double lambda : {-2.0, -1.0, 0.0, 0.5, 1.0, 2.0}) {
    double prev = -std::numeric_limits<double>::infinity();
    for (double x = -30; x <= 30; x += 0.25) {
      const double t = YeoJohnson(x, lambda);
      EXPECT_GT(t, prev) << "lambda " << lambda << " at " << x;
      prev = t;
      const double h = 1e-6;
      const double fd = (YeoJohnson(x + h, lambda) - YeoJohnson(x - h, lambda)) / (2 * h);
      if (x != 0) {
        EXPECT_NEAR(YeoJohnsonLogSlope(x, lambda), std::log(fd), 1e-6) << lambda << " " << x;
      }
    }
    EXPECT_EQ(YeoJohnson(0.0, lambda), 0.0);
  }
  for (double x : {-3.0, -0.5, 0.5, 3.0}) {  // lambda 0 and 2 are their neighbours' limits
    EXPECT_NEAR(YeoJohnson(x, 0.0), YeoJohnson(x, 1e-7), 1e-6);
    EXPECT_NEAR(YeoJohnson(x, 2.0), YeoJohnson(x, 2.0 - 1e-7), 1e-6);
  }
  for (double x : {-7.0, -0.1, 0.0, 0.3, 12.0}) EXPECT_NEAR(YeoJohnson(x, 1.0), x, 1e-12);  // identity
}

TEST(OutputWarp, TheGainIsTheWarpedModelsLikelihoodWithTheJacobian) {
  const Eigen::MatrixXd x = RandomPoints(2, 40, 3);
  const Eigen::VectorXd y = Standardised(Skewed(x));
  const Eigen::MatrixXd chol = PlainFactor(x, y);
  const OutputWarpChoice choice = ChooseOutputLambda(chol, y);
  ASSERT_NE(choice.lambda, 1.0);
  EXPECT_NEAR(choice.gain, DirectNegLogLikelihood(chol, y, 1.0) - DirectNegLogLikelihood(chol, y, choice.lambda),
              1e-4 * std::max(1.0, choice.gain));
  // The best of the grid: no lambda of [-2, 1] does better than the chosen one by more than the
  // grid's step allows.
  const double chosen = DirectNegLogLikelihood(chol, y, choice.lambda);
  for (double lambda = -2.0; lambda <= 1.0; lambda += 0.01) {
    EXPECT_GE(DirectNegLogLikelihood(chol, y, lambda), chosen - 0.5) << lambda;
  }
}

TEST(OutputWarp, ASkewedSurfaceIsWarpedAndASmoothOneIsNot) {
  for (uint64_t seed : {1, 2, 3}) {
    const Eigen::MatrixXd x = RandomPoints(2, 40, seed);
    const Eigen::VectorXd skewed = Standardised(Skewed(x));
    const OutputWarpChoice s = ChooseOutputLambda(PlainFactor(x, skewed), skewed);
    EXPECT_LT(s.lambda, 0.5) << seed;
    EXPECT_GT(s.gain, 5.0) << seed;
    const Eigen::VectorXd smooth = Standardised(Smooth(x));
    const OutputWarpChoice p = ChooseOutputLambda(PlainFactor(x, smooth), smooth);
    EXPECT_LT(p.gain, 2.0) << seed;
  }
}

TEST(OutputWarp, TooFewPointsOrAMismatchedFactorLeaveTheIdentity) {
  const Eigen::MatrixXd x = RandomPoints(2, 4, 1);
  const Eigen::VectorXd y = Standardised(Skewed(x));
  const OutputWarpChoice few = ChooseOutputLambda(Eigen::MatrixXd::Identity(4, 4), y);
  EXPECT_EQ(few.lambda, 1.0);
  EXPECT_EQ(few.gain, 0.0);
  const Eigen::VectorXd y8 = Standardised(Skewed(RandomPoints(2, 8, 1)));
  EXPECT_EQ(ChooseOutputLambda(Eigen::MatrixXd::Identity(7, 7), y8).lambda, 1.0);
}

TEST(OutputWarp, FitGpWarpsPastItsMarginAndKeepsTheOrderAndTheIncumbent) {
  const Eigen::MatrixXd x = RandomPoints(2, 40, 7);
  const Eigen::VectorXd y = 0.69 + 0.01 * Skewed(x).array();  // raw, not standardised
  FitOptions off;
  off.seed = 9;
  off.output_warp_margin = std::numeric_limits<double>::quiet_NaN();
  Posterior plain, again, warped, refused;
  FitReport plain_report, warped_report, refused_report;
  ASSERT_TRUE(FitGp(x, y, off, &plain, &plain_report).ok());
  EXPECT_EQ(plain_report.output_lambda, 1.0);
  EXPECT_EQ(plain_report.output_warp_gain, 0.0);  // not considered

  FitOptions on = off;
  on.output_warp_margin = 2.0;
  ASSERT_TRUE(FitGp(x, y, on, &warped, &warped_report).ok());
  EXPECT_LT(warped_report.output_lambda, 1.0);
  EXPECT_GT(warped_report.output_warp_gain, 2.0);
  EXPECT_GT(warped_report.starts, plain_report.starts);  // fitted again on the warped targets
  EXPECT_TRUE(std::isnan(warped.y_mean) && std::isnan(warped.y_scale));  // no affine map to raw
  EXPECT_EQ(FitOptions().output_warp_margin, 0.0);  // the default: whenever it explains the data better
  // The order of the targets, and so the incumbent's point, are the raw objectives' own.
  Eigen::Index best_raw = 0, best_warped = 0;
  y.minCoeff(&best_raw);
  warped.y.minCoeff(&best_warped);
  EXPECT_EQ(best_raw, best_warped);
  EXPECT_EQ(warped.incumbent, warped.y.minCoeff());
  for (Eigen::Index i = 0; i < y.size(); ++i) {
    for (Eigen::Index j = 0; j < y.size(); ++j) {
      if (y[i] < y[j]) {
        EXPECT_LT(warped.y[i], warped.y[j]) << i << " " << j;
      }
    }
  }
  // The skew is out: the good end spread, the plateau of bad values compressed.
  auto skewness = [](const Eigen::VectorXd& v) {
    const double m = v.mean(), var = (v.array() - m).square().mean();
    return (v.array() - m).cube().mean() / std::pow(var, 1.5);
  };
  EXPECT_LT(std::fabs(skewness(warped.y)), std::fabs(skewness(plain.y)));

  // A margin above the gain: the plain fit, bit for bit.
  FitOptions strict = off;
  strict.output_warp_margin = warped_report.output_warp_gain + 1.0;
  ASSERT_TRUE(FitGp(x, y, strict, &refused, &refused_report).ok());
  EXPECT_EQ(refused_report.output_lambda, 1.0);
  EXPECT_NEAR(refused_report.output_warp_gain, warped_report.output_warp_gain, 1e-12);
  EXPECT_EQ(refused.y, plain.y);
  EXPECT_EQ(refused.alpha, plain.alpha);
  EXPECT_EQ(refused.hp.log_lengthscale, plain.hp.log_lengthscale);
}

}  // namespace
}  // namespace hpo::kernels
