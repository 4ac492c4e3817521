#include "kernels/log_ei.h"

#include <algorithm>
#include <cmath>
#include <limits>

namespace hpo::kernels {
namespace {

constexpr double kInvSqrt2 = 0.70710678118654752440;
constexpr double kLogSqrt2Pi = 0.91893853320467274178;  // log sqrt(2 pi)
constexpr double kSqrtHalfPi = 1.25331413731550025121;  // sqrt(pi / 2)
constexpr double kAsymptotic = 30.0;

double Phi(double z) { return 0.5 * std::erfc(-z * kInvSqrt2); }
double LogPhiDensity(double z) { return -0.5 * z * z - kLogSqrt2Pi; }

// Mills ratio M(t) = Phi(-t) / phi(t), t >= 1.
double Mills(double t) {
  if (t < kAsymptotic) return kSqrtHalfPi * std::exp(0.5 * t * t) * std::erfc(t * kInvSqrt2);
  const double u = 1.0 / (t * t);
  return (1.0 / t) * (1.0 - u * (1.0 - 3.0 * u * (1.0 - 5.0 * u * (1.0 - 7.0 * u * (1.0 - 9.0 * u)))));
}

// log(1 - t M(t)), t >= 1.
double LogOneMinusTMills(double t) {
  if (t < kAsymptotic) return std::log1p(-t * Mills(t));
  const double u = 1.0 / (t * t);
  // 1 - t M = u (1 - 3u + 15u^2 - 105u^3 + 945u^4)
  const double series = 1.0 - 3.0 * u * (1.0 - 5.0 * u * (1.0 - 7.0 * u * (1.0 - 9.0 * u)));
  return -2.0 * std::log(t) + std::log(series);
}

}  // namespace

double LogH(double z) {
  if (std::isnan(z)) return -std::numeric_limits<double>::infinity();
  if (z > -1.0) {
    const double h = z * Phi(z) + std::exp(LogPhiDensity(z));
    return std::log(h);
  }
  const double t = -z;
  if (t > 1e150) return -std::numeric_limits<double>::infinity();
  return LogPhiDensity(z) + LogOneMinusTMills(t);
}

double LogHDerivative(double z) {
  if (std::isnan(z)) return 0.0;
  if (z > -1.0) {
    const double h = z * Phi(z) + std::exp(LogPhiDensity(z));
    return Phi(z) / h;
  }
  const double t = -z;
  if (t > 1e150) return t;
  // Phi(z) / h(z) = M(t) / (1 - t M(t))
  return Mills(t) / std::exp(LogOneMinusTMills(t));
}

double NaiveExpectedImprovement(double mean, double sigma, double incumbent) {
  const double z = (incumbent - mean) / sigma;
  return sigma * (z * Phi(z) + std::exp(LogPhiDensity(z)));
}

double LogExpectedImprovement(double mean, double variance, double incumbent, double* d_mean, double* d_variance) {
  const double var = std::max(variance, 1e-300);
  const double sigma = std::sqrt(var);
  const double z = (incumbent - mean) / sigma;
  const double value = std::log(sigma) + LogH(z);
  if (d_mean || d_variance) {
    const double r = LogHDerivative(z);
    if (d_mean) *d_mean = -r / sigma;
    // d/dsigma = (1 - z r) / sigma; dsigma/dvar = 1 / (2 sigma)
    if (d_variance) *d_variance = (1.0 - z * r) / (2.0 * var);
  }
  return value;
}

}  // namespace hpo::kernels
