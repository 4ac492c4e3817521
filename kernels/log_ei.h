// kernels/log_ei.h: numerically stable log expected improvement (for minimisation).
//
// EI(mean, sigma; incumbent) = sigma * h(z), z = (incumbent - mean) / sigma,
// h(z) = z Phi(z) + phi(z). For z far below zero h underflows long before its logarithm does, so
// log h is computed in three regimes (after Ament et al., "Unexpected improvements to expected
// improvement", NeurIPS 2023):
//   z > -1:          log(z Phi(z) + phi(z)) directly;
//   -30 < z <= -1:   log phi(z) + log(1 - t M(t)), t = -z, with the Mills ratio
//                    M(t) = Phi(-t)/phi(t) = sqrt(pi/2) exp(t^2/2) erfc(t/sqrt 2) (no overflow for
//                    t < 30; the cancellation in 1 - t M(t) costs at most ~1e-12 relative);
//   z <= -30:        log phi(z) + log of the asymptotic series
//                    1 - t M(t) = t^-2 - 3 t^-4 + 15 t^-6 - 105 t^-8 + 945 t^-10 - ...
//                    (written as -2 log t + log(1 - 3/t^2 + ...), so huge t cannot overflow).
// The results are finite for every finite z with |z| < 1e150 (beyond that -inf, never NaN).
// The derivative d log h / dz = Phi(z) / h(z) uses the same regimes.
//
// Thread safety: pure functions.
#pragma once

namespace hpo::kernels {

// log h(z) and d log h / dz.
double LogH(double z);
double LogHDerivative(double z);

// Expected improvement below `incumbent` of a Gaussian N(mean, sigma^2), sigma > 0, computed
// naively (underflows to 0 for very negative z): for tests and reference.
double NaiveExpectedImprovement(double mean, double sigma, double incumbent);

// log EI for a latent variance `variance` (floored at 1e-300), and optionally its derivatives
// with respect to mean and variance (either pointer may be null).
double LogExpectedImprovement(double mean, double variance, double incumbent, double* d_mean, double* d_variance);

}  // namespace hpo::kernels
