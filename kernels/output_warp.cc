#include "kernels/output_warp.h"

#include <cmath>
#include <limits>

namespace hpo::kernels {

double YeoJohnson(double x, double lambda) {
  if (x >= 0) {
    return std::fabs(lambda) < 1e-12 ? std::log1p(x) : std::expm1(lambda * std::log1p(x)) / lambda;
  }
  const double p = 2.0 - lambda;
  return std::fabs(p) < 1e-12 ? -std::log1p(-x) : -std::expm1(p * std::log1p(-x)) / p;
}

double YeoJohnsonLogSlope(double x, double lambda) {
  return (lambda - 1.0) * std::copysign(std::log1p(std::fabs(x)), x);
}

namespace {

// n/2 log(z' K^-1 z) - sum log dz/dy for one lambda; +inf when not finite.
double Criterion(const Eigen::MatrixXd& chol, const Eigen::VectorXd& y, double lambda) {
  const Eigen::Index n = y.size();
  Eigen::VectorXd z(n);
  double log_slope = 0;
  for (Eigen::Index i = 0; i < n; ++i) {
    z[i] = YeoJohnson(y[i], lambda);
    log_slope += YeoJohnsonLogSlope(y[i], lambda);
  }
  z.array() -= z.mean();
  const double q = chol.triangularView<Eigen::Lower>().solve(z).squaredNorm();
  const double c = 0.5 * static_cast<double>(n) * std::log(q) - log_slope;
  return std::isfinite(c) && q > 0 ? c : std::numeric_limits<double>::infinity();
}

}  // namespace

OutputWarpChoice ChooseOutputLambda(const Eigen::MatrixXd& chol, const Eigen::VectorXd& y, double min_lambda) {
  OutputWarpChoice choice;
  if (static_cast<size_t>(y.size()) < kMinOutputWarpPoints || chol.rows() != y.size() || chol.cols() != y.size() ||
      !y.allFinite() || !(min_lambda < 1.0)) {
    return choice;
  }
  const double identity = Criterion(chol, y, 1.0);
  if (!std::isfinite(identity)) return choice;
  constexpr int kSteps = 24;  // grid of (1 - min_lambda) / 24: 0.125 for [-2, 1]
  double best = identity;
  for (int k = 0; k < kSteps; ++k) {
    const double lambda = min_lambda + (1.0 - min_lambda) * k / kSteps;
    const double c = Criterion(chol, y, lambda);
    if (c < best) {
      best = c;
      choice.lambda = lambda;
    }
  }
  choice.gain = identity - best;
  return choice;
}

void ApplyOutputWarp(double lambda, Eigen::VectorXd* y) {
  for (Eigen::Index i = 0; i < y->size(); ++i) (*y)[i] = YeoJohnson((*y)[i], lambda);
  if (y->size() == 0) return;
  y->array() -= y->mean();
  const double sd = std::sqrt(y->squaredNorm() / static_cast<double>(y->size()));
  if (sd > 0 && std::isfinite(sd)) *y /= sd;
}

}  // namespace hpo::kernels
