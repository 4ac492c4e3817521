// The arithmetic of the CUDA fit's likelihood (kernels/likelihood_terms.h), run on the host in
// plain loops in the order the device runs it, against the host fit's likelihood
// (NegLogMarginalLikelihood, itself checked against finite differences in gp_model_test.cc).
// This is how the device's formulas are tested where there is no GPU; the CUDA parity test
// (cuda_engine_test.cc, CudaEngine.LikelihoodMatchesCpu) checks the kernels and cuSOLVER calls
// around them on a lent device.
//
// Tolerance: value and gradient within 1e-9 relative (max(1, |host|)); the two differ only in
// summation order (the host centres z and expands the squared differences).
#include "kernels/likelihood_terms.h"

#include <gtest/gtest.h>

#include <cmath>
#include <vector>

#include <Eigen/Cholesky>
#include <Eigen/Core>

#include "kernels/gp_model.h"
#include "kernels/random.h"

namespace hpo::kernels {
namespace {

struct Mirror {
  double value = 0;
  Eigen::VectorXd grad;
};

// The device evaluation's steps 1-6 (likelihood_terms.h), on the host.
Mirror DeviceArithmetic(const Eigen::MatrixXd& x, const Eigen::VectorXd& y, const Eigen::VectorXd& theta,
                        const WarpMask& mask) {
  const int dims = static_cast<int>(x.rows()), n = static_cast<int>(x.cols());
  std::vector<int> warp_of(static_cast<size_t>(dims), -1), warped_dims;
  for (int d = 0; d < dims; ++d) {
    if (!mask.empty() && mask[static_cast<size_t>(d)]) {
      warp_of[static_cast<size_t>(d)] = static_cast<int>(warped_dims.size());
      warped_dims.push_back(d);
    }
  }
  const int warped = static_cast<int>(warped_dims.size());
  std::vector<double> pv(static_cast<size_t>(LikelihoodParamsSize(dims)));
  FillLikelihoodParams(theta.data(), dims, warp_of.data(), warped, pv.data());
  const LikelihoodParamsView params{pv.data(), dims};
  // 1.
  Eigen::MatrixXd z(n, dims), dwa(n, std::max(warped, 1)), dwb(n, std::max(warped, 1));
  for (int d = 0; d < dims; ++d) {
    for (int p = 0; p < n; ++p) {
      const int i = warp_of[static_cast<size_t>(d)];
      double a = 0, b = 0;
      LikelihoodWarpEntry(x(d, p), params.inv_l(d), params.a(d), params.b(d), params.identity(d), &z(p, d),
                          i >= 0 ? &a : nullptr, &b);
      if (i >= 0) {
        dwa(p, i) = a;
        dwb(p, i) = b;
      }
    }
  }
  // 2.
  Eigen::MatrixXd k = Eigen::MatrixXd::Zero(n, n);
  for (int q = 0; q < n; ++q) {
    for (int p = q; p < n; ++p) {
      k(p, q) = p == q ? params.s2() + params.noise()
                       : LikelihoodKernelEntry(LikelihoodDistance2(z.data(), n, dims, p, q), params.s2());
    }
  }
  // 3.
  Eigen::LLT<Eigen::MatrixXd> llt(k);  // reads the lower triangle
  const int info = llt.info() == Eigen::Success ? 0 : 1;
  const Eigen::MatrixXd chol = llt.matrixL();
  const Eigen::VectorXd alpha = llt.solve(y);
  const Eigen::MatrixXd kinv = llt.solve(Eigen::MatrixXd::Identity(n, n));
  // 4.
  Eigen::MatrixXd c(n, n), s(n, n);
  for (int q = 0; q < n; ++q) {
    for (int p = 0; p < n; ++p) {
      if (p == q) {
        c(p, q) = s(p, q) = 0;
        continue;
      }
      LikelihoodPairTerms(LikelihoodDistance2(z.data(), n, dims, p, q), params.s2(), alpha[p], alpha[q],
                          kinv(std::max(p, q), std::min(p, q)), &c(p, q), &s(p, q));
    }
  }
  // 5.
  Eigen::MatrixXd zr(n, dims), ls(n, dims);
  Eigen::VectorXd sig(n), dg(n);
  for (int p = 0; p < n; ++p) {
    for (int d = 0; d < dims; ++d) LikelihoodRowSums(c.data(), z.data(), n, p, d, &zr(p, d), &ls(p, d));
    sig[p] = s.row(p).sum();
    dg[p] = alpha[p] * alpha[p] - kinv(p, p);
  }
  // 6.
  Mirror m;
  m.value = LikelihoodValue(n, y.data(), alpha.data(), chol.data(), info);
  m.grad.resize(dims + 2 + 2 * warped);
  for (int j = 0; j < m.grad.size(); ++j) {
    m.grad[j] = LikelihoodGradientEntry(j, n, params, warped, warped_dims.data(), ls.data(), zr.data(), sig.data(),
                                        dg.data(), dwa.data(), dwb.data());
  }
  return m;
}

void ExpectNear(double mirror, double host, const char* what) {
  EXPECT_NEAR(mirror, host, 1e-9 * std::max(1.0, std::abs(host))) << what;
}

struct Case {
  int dims, n;
  WarpMask mask;
  bool identity_warp;  // one warped coordinate at a = b = 1 exactly
};

TEST(LikelihoodTerms, DeviceArithmeticMatchesTheHostLikelihood) {
  Random rng(11);
  for (const Case& c : {Case{3, 1, {}, false}, Case{4, 40, {}, false}, Case{5, 60, {1, 0, 1, 1, 0}, false},
                        Case{5, 60, {1, 0, 1, 1, 0}, true}, Case{8, 130, {1, 1, 1, 1, 1, 1, 1, 1}, false}}) {
    SCOPED_TRACE("dims " + std::to_string(c.dims) + ", n " + std::to_string(c.n));
    Eigen::MatrixXd x(c.dims, c.n);
    for (int j = 0; j < c.n; ++j) {
      for (int d = 0; d < c.dims; ++d) x(d, j) = rng.Uniform();
    }
    if (c.n > 2) x(0, 1) = 0.0, x(1, 2) = 1.0;  // the cube's faces, where the warp clamps
    Eigen::VectorXd y(c.n);
    for (int j = 0; j < c.n; ++j) y[j] = std::sin(5 * x(0, j)) + (x.col(j).array() - 0.4).square().sum();
    y = (y.array() - y.mean()).matrix();
    Eigen::VectorXd lower, upper;
    HyperparameterBounds(static_cast<size_t>(c.dims), c.mask, &lower, &upper);
    for (int trial = 0; trial < 4; ++trial) {
      Eigen::VectorXd theta(lower.size());
      for (Eigen::Index i = 0; i < theta.size(); ++i) {
        theta[i] = lower[i] + (upper[i] - lower[i]) * (0.3 + 0.4 * rng.Uniform());
      }
      theta[c.dims + 1] = std::log(1e-3);  // noise: small, but the factor well conditioned
      if (c.identity_warp) theta[c.dims + 2] = theta[c.dims + 2 + 3] = 0.0;  // the first warped coordinate
      Eigen::VectorXd host_grad;
      const double host = NegLogMarginalLikelihood(x, y, theta, c.mask, false, &host_grad);
      ASSERT_TRUE(std::isfinite(host));
      const Mirror m = DeviceArithmetic(x, y, theta, c.mask);
      ExpectNear(m.value, host, "value");
      ASSERT_EQ(m.grad.size(), host_grad.size());
      for (Eigen::Index i = 0; i < host_grad.size(); ++i) {
        ExpectNear(m.grad[i], host_grad[i], ("gradient entry " + std::to_string(i)).c_str());
      }
    }
  }
}

TEST(LikelihoodTerms, AFailedFactorisationOrABadPivotIsInfinite) {
  const double y[2] = {1, 2}, alpha[2] = {0.5, 0.5};
  const double good[4] = {1, 0.2, 0, 1}, zero_pivot[4] = {1, 0.2, 0, 0}, nan_pivot[4] = {NAN, 0, 0, 1};
  EXPECT_TRUE(std::isfinite(LikelihoodValue(2, y, alpha, good, 0)));
  EXPECT_EQ(LikelihoodValue(2, y, alpha, good, 2), HUGE_VAL);
  EXPECT_EQ(LikelihoodValue(2, y, alpha, zero_pivot, 0), HUGE_VAL);
  EXPECT_EQ(LikelihoodValue(2, y, alpha, nan_pivot, 0), HUGE_VAL);
}

TEST(LikelihoodTerms, ParamsFollowThePackedOrder) {
  // D = 3, coordinates 0 and 2 warped: theta = l0 l1 l2 s2 noise a0 a2 b0 b2.
  const double theta[9] = {0.1, 0.2, 0.3, 0.4, -5.0, 0.5, 0.0, -0.5, 0.0};
  const int warp_of[3] = {0, -1, 1};
  std::vector<double> out(static_cast<size_t>(LikelihoodParamsSize(3)));
  FillLikelihoodParams(theta, 3, warp_of, 2, out.data());
  const LikelihoodParamsView v{out.data(), 3};
  EXPECT_DOUBLE_EQ(v.inv_l(1), std::exp(-0.2));
  EXPECT_DOUBLE_EQ(v.a(0), std::exp(0.5));
  EXPECT_DOUBLE_EQ(v.b(0), std::exp(-0.5));
  EXPECT_FALSE(v.identity(0));
  EXPECT_TRUE(v.identity(1));   // not warped
  EXPECT_TRUE(v.identity(2));   // warped at log a = log b = 0
  EXPECT_DOUBLE_EQ(v.s2(), std::exp(0.4));
  EXPECT_DOUBLE_EQ(v.noise(), std::exp(-5.0));
}

}  // namespace
}  // namespace hpo::kernels
