#include <gtest/gtest.h>

#include <cmath>
#include <set>

#include "kernels/lbfgs.h"
#include "kernels/log_ei.h"
#include "kernels/sobol.h"

namespace hpo::kernels {
namespace {

TEST(LogExpectedImprovement, MatchesNaiveEiWhereThatIsStable) {
  for (double mean : {-2.0, -0.5, 0.0, 0.3, 1.0, 3.0}) {
    for (double sigma : {0.05, 0.3, 1.0, 2.0}) {
      const double naive = NaiveExpectedImprovement(mean, sigma, 0.0);
      if (naive < 1e-250) continue;  // underflowed: nothing to compare with
      EXPECT_NEAR(LogExpectedImprovement(mean, sigma * sigma, 0.0, nullptr, nullptr), std::log(naive),
                  1e-10 * std::max(1.0, std::fabs(std::log(naive))))
          << mean << " " << sigma;
    }
  }
}

TEST(LogExpectedImprovement, StaysFiniteAndMonotoneFarBelowTheIncumbent) {
  double prev = 0;
  bool first = true;
  for (double z = 0; z > -1e6; z = z == 0 ? -0.5 : z * 1.7) {
    const double v = LogH(z);
    ASSERT_TRUE(std::isfinite(v)) << z;
    if (!first) {
      EXPECT_LT(v, prev) << z;
    }
    prev = v;
    first = false;
  }
  // Continuity across the regime boundaries.
  for (double b : {-1.0, -30.0}) EXPECT_NEAR(LogH(b - 1e-9), LogH(b + 1e-9), 1e-7);
  // Asymptotics: log h(z) ~ log phi(z) - 2 log|z| for z -> -inf.
  const double z = -1e4;
  EXPECT_NEAR(LogH(z), -0.5 * z * z - 0.5 * std::log(2 * M_PI) - 2 * std::log(-z), 1e-6);
  EXPECT_FALSE(std::isnan(LogH(-1e200)));
  EXPECT_FALSE(std::isnan(LogExpectedImprovement(1e10, 1e-300, 0.0, nullptr, nullptr)));
}

TEST(LogExpectedImprovement, DerivativesMatchFiniteDifferences) {
  for (double z : {-80.0, -31.0, -29.0, -5.0, -1.0, -0.3, 0.0, 2.0, 6.0}) {
    const double h = 1e-6 * std::max(1.0, std::fabs(z));
    const double fd = (LogH(z + h) - LogH(z - h)) / (2 * h);
    EXPECT_NEAR(LogHDerivative(z), fd, 1e-5 * std::max(1.0, std::fabs(fd))) << z;
  }
  for (double mean : {-1.0, 0.2, 2.5}) {
    for (double var : {0.01, 0.5, 2.0}) {
      double dm, dv;
      LogExpectedImprovement(mean, var, 0.1, &dm, &dv);
      const double h = 1e-6;
      auto f = [](double m, double v) { return LogExpectedImprovement(m, v, 0.1, nullptr, nullptr); };
      EXPECT_NEAR(dm, (f(mean + h, var) - f(mean - h, var)) / (2 * h), 1e-6 * std::max(1.0, std::fabs(dm)));
      EXPECT_NEAR(dv, (f(mean, var + h) - f(mean, var - h)) / (2 * h), 1e-4 * std::max(1.0, std::fabs(dv)));
    }
  }
}

TEST(Sobol, FirstPointsOfThePlainSequenceAreTheKnownOnes) {
  // Dimension 1: van der Corput; dimension 2 (x+1, m=1): 0, 1/2, 3/4, 1/4 in Gray-code order.
  const SobolSequence s(2, false, 0);
  const Eigen::MatrixXd p = s.Points(0, 4);
  const double half = 0.5 / 4294967296.0;
  EXPECT_DOUBLE_EQ(p(0, 0), half);
  EXPECT_DOUBLE_EQ(p(0, 1), 0.5 + half);
  EXPECT_DOUBLE_EQ(p(1, 1), 0.5 + half);
  std::multiset<double> first4, second4;
  for (int i = 0; i < 4; ++i) {
    first4.insert(p(0, i) - half);
    second4.insert(p(1, i) - half);
  }
  EXPECT_EQ(first4, (std::multiset<double>{0, 0.25, 0.5, 0.75}));
  EXPECT_EQ(second4, (std::multiset<double>{0, 0.25, 0.5, 0.75}));
  // A block read from the middle equals the same points read from the start.
  const Eigen::MatrixXd all = s.Points(0, 100);
  EXPECT_EQ(s.Points(37, 20), all.middleCols(37, 20));
}

// Every 2^k points (k = 8) of every coordinate and every pair of the first dimensions is
// stratified as a (0,m,2)-net in base 2 would be: each dyadic interval of length 1/256 holds
// exactly one point per coordinate; each 16x16 cell of pairs (1,2) holds exactly one.
TEST(Sobol, ScrambledPointsKeepTheNetPropertyAndAreDeterministic) {
  for (int dims : {5, 40, 120, 300}) {
    const SobolSequence s(dims, true, 1234);
    const Eigen::MatrixXd p = s.Points(0, 256);
    EXPECT_EQ(p, SobolSequence(dims, true, 1234).Points(0, 256));
    EXPECT_NE(p, SobolSequence(dims, true, 1235).Points(0, 256));
    ASSERT_TRUE((p.array() > 0).all() && (p.array() < 1).all());
    for (int d = 0; d < std::min(dims, 256); ++d) {
      std::set<int> cells;
      for (int i = 0; i < 256; ++i) cells.insert(static_cast<int>(p(d, i) * 256));
      EXPECT_EQ(cells.size(), 256u) << "dimension " << d;
    }
    std::set<int> pairs;
    for (int i = 0; i < 256; ++i) pairs.insert(static_cast<int>(p(0, i) * 16) * 16 + static_cast<int>(p(1, i) * 16));
    EXPECT_EQ(pairs.size(), 256u);
    // Beyond the table: uniform draws, still in (0,1) with a sensible mean.
    if (dims > 256) {
      EXPECT_NEAR(p.row(dims - 1).mean(), 0.5, 0.08);
    }
  }
}

TEST(Lbfgs, MinimisesARosenbrockValleyAndRespectsBounds) {
  const Objective rosen = [](const Eigen::VectorXd& x, Eigen::VectorXd* g) {
    const double a = 1 - x[0], b = x[1] - x[0] * x[0];
    (*g)[0] = -2 * a - 400 * x[0] * b;
    (*g)[1] = 200 * b;
    return a * a + 100 * b * b;
  };
  LbfgsOptions o;
  o.max_iterations = 500;
  o.relative_tolerance = 0;
  o.gradient_tolerance = 1e-9;
  const LbfgsResult r = MinimizeBoxed(rosen, Eigen::Vector2d(-1.2, 1.0), Eigen::Vector2d(-5, -5),
                                      Eigen::Vector2d(5, 5), o);
  EXPECT_NEAR(r.x[0], 1.0, 1e-5);
  EXPECT_NEAR(r.x[1], 1.0, 1e-5);
  // With the optimum cut off by a bound, the result sits on the bound.
  const LbfgsResult b = MinimizeBoxed(rosen, Eigen::Vector2d(-1.2, 1.0), Eigen::Vector2d(-5, -5),
                                      Eigen::Vector2d(0.5, 5), o);
  EXPECT_NEAR(b.x[0], 0.5, 1e-9);
  EXPECT_NEAR(b.x[1], 0.25, 1e-4);
  // A non-finite region is stepped around, not propagated.
  const Objective walled = [](const Eigen::VectorXd& x, Eigen::VectorXd* g) {
    (*g)[0] = 2 * (x[0] - 3);
    return x[0] > 2 ? std::numeric_limits<double>::infinity() : (x[0] - 3) * (x[0] - 3);
  };
  const LbfgsResult w = MinimizeBoxed(walled, Eigen::VectorXd::Constant(1, 0.0), Eigen::VectorXd::Constant(1, -10),
                                      Eigen::VectorXd::Constant(1, 10), o);
  EXPECT_TRUE(std::isfinite(w.f));
  EXPECT_LE(w.x[0], 2.0);
  EXPECT_GT(w.x[0], 1.9);
}

}  // namespace
}  // namespace hpo::kernels
