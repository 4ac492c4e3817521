// kernels/likelihood_terms.h (internal to kernels/): the arithmetic of the negative log marginal
// likelihood and its gradient as the CUDA engine's fit computes it (cuda_kernels.cu), one entry
// at a time, written once for host and device. The host fit (gp_model.cc) has its own, faster
// arrangement of the same sums for a CPU; a host test (tests/kernels/likelihood_terms_test.cc)
// runs these functions in plain loops and checks them against it, so the device's formulas are
// tested on a machine without a GPU.
//
// The device evaluation, for n points x (D x n), standardised targets y and packed
// hyperparameters (gp_model.h's order), in the order it runs (all arrays column-major):
//   1. per point p and coordinate d: z(p, d) = w_d(x_dp) / l_d, and for the i-th warped
//      coordinate the warp's derivatives dwa(p, i) = dw/d(log a), dwb(p, i) = dw/d(log b)
//      (LikelihoodWarpEntry);
//   2. K (lower triangle, noise on the diagonal) (LikelihoodKernelEntry over
//      LikelihoodDistance2);
//   3. L = chol(K), alpha = K^-1 y, the lower triangle of K^-1 (cuSOLVER);
//   4. per pair p != q, with Wm = alpha alpha^T - K^-1: C(p, q) = Wm_pq g_pq and
//      S(p, q) = Wm_pq k_pq, g the Matern radial term (kernels/matern.h) (LikelihoodPairTerms);
//   5. per point p and coordinate d: zr(p, d) = sum_q C_pq (z_pd - z_qd) and
//      ls(p, d) = sum_q C_pq (z_pd - z_qd)^2 (LikelihoodRowSums); per point: sig(p) = sum_q
//      S_pq and dg(p) = alpha_p^2 - K^-1_pp;
//   6. the value 1/2 y.alpha + sum_p log L_pp + n/2 log 2 pi (LikelihoodValue) and each
//      gradient entry from the sums of step 5 (LikelihoodGradientEntry).
// Step 5 sums over all q, so each pair counts twice; step 6 halves. The prior is the host's to
// add (it is a few dozen numbers).
#pragma once

#include "kernels/host_device.h"
#include "kernels/matern.h"

namespace hpo::kernels {

inline constexpr double kLikelihoodLog2Pi = 1.8378770664093454836;

// Per-evaluation constants, one array of 4 D + 2 doubles: 1/l_d, a_d, b_d (1 where not warped),
// 1.0 where the warp is the identity (a = b = 1 exactly, as log a = log b = 0), then s2 and the
// noise variance.
struct LikelihoodParamsView {
  const double* v;
  int dims;
  HPO_HOST_DEVICE double inv_l(int d) const { return v[d]; }
  HPO_HOST_DEVICE double a(int d) const { return v[dims + d]; }
  HPO_HOST_DEVICE double b(int d) const { return v[2 * dims + d]; }
  HPO_HOST_DEVICE bool identity(int d) const { return v[3 * dims + d] != 0.0; }
  HPO_HOST_DEVICE double s2() const { return v[4 * dims]; }
  HPO_HOST_DEVICE double noise() const { return v[4 * dims + 1]; }
};
HPO_HOST_DEVICE inline int LikelihoodParamsSize(int dims) { return 4 * dims + 2; }

// The constants of LikelihoodParamsView from packed hyperparameters theta (kernels/gp_model.h's
// order: D log lengthscales, log s2, log noise, W log a, W log b); warp_of (D): a coordinate's
// index among the W warped ones, or -1. out: LikelihoodParamsSize(dims) doubles.
HPO_HOST_DEVICE inline void FillLikelihoodParams(const double* theta, int dims, const int* warp_of, int warped,
                                                 double* out) {
  for (int d = 0; d < dims; ++d) {
    out[d] = ExpHd(-theta[d]);
    out[dims + d] = 1.0;
    out[2 * dims + d] = 1.0;
    out[3 * dims + d] = 1.0;
    const int i = warp_of[d];
    if (i < 0) continue;
    const double la = theta[dims + 2 + i], lb = theta[dims + 2 + warped + i];
    out[dims + d] = ExpHd(la);
    out[2 * dims + d] = ExpHd(lb);
    out[3 * dims + d] = la == 0.0 && lb == 0.0 ? 1.0 : 0.0;
  }
  out[4 * dims] = ExpHd(theta[dims]);
  out[4 * dims + 1] = ExpHd(theta[dims + 1]);
}

// Step 1 for one entry x of a coordinate with parameters (a, b): the scaled input z and, when
// the coordinate is warped (dwa != null), the derivatives of w by log a and log b, from x clamped
// to [1e-12, 1 - 1e-12] as the host fit does. An identity warp leaves x as it is.
HPO_HOST_DEVICE inline void LikelihoodWarpEntry(double x, double inv_l, double a, double b, bool identity, double* z,
                                                double* dwa, double* dwb) {
  const double w = identity ? x : KumaraswamyWarp(x, a, b);
  *z = w * inv_l;
  if (dwa == nullptr) return;
  const double u = x < 1e-12 ? 1e-12 : (x > 1.0 - 1e-12 ? 1.0 - 1e-12 : x);
  const double log_u = LogHd(u);
  const double ua = ExpHd(a * log_u);
  const double om = 1.0 - ua < 1e-300 ? 1e-300 : 1.0 - ua;
  const double log_om = LogHd(om);
  const double omb = ExpHd(b * log_om);
  *dwa = a * b * (omb / om) * ua * log_u;
  *dwb = -b * omb * log_om;
}

// The squared scaled distance between points p and q of z (n x D, leading dimension ld), summed
// coordinate by coordinate (exactly 0 for equal points).
HPO_HOST_DEVICE inline double LikelihoodDistance2(const double* z, int ld, int dims, int p, int q) {
  double r2 = 0;
  for (int d = 0; d < dims; ++d) {
    const double t = z[p + static_cast<long>(ld) * d] - z[q + static_cast<long>(ld) * d];
    r2 += t * t;
  }
  return r2;
}

// Step 2: K(p, q) off the diagonal (s2 + noise on it).
HPO_HOST_DEVICE inline double LikelihoodKernelEntry(double r2, double s2) { return Matern52(SqrtHd(r2), s2); }

// Step 4 for a pair p != q at squared distance r2: C and S from Wm_pq = alpha_p alpha_q - kinv_pq.
HPO_HOST_DEVICE inline void LikelihoodPairTerms(double r2, double s2, double alpha_p, double alpha_q, double kinv_pq,
                                                double* c, double* s) {
  double k = 0, g = 0;
  Matern52WithRadialTerm(SqrtHd(r2), s2, &k, &g);
  const double wm = alpha_p * alpha_q - kinv_pq;
  *c = wm * g;
  *s = wm * k;
}

// Step 5 for point p and coordinate d: C (n x n, C_pp = 0) against z (n x D, leading dimension n).
HPO_HOST_DEVICE inline void LikelihoodRowSums(const double* c, const double* z, int n, int p, int d, double* zr,
                                              double* ls) {
  const double* zd = z + static_cast<long>(n) * d;
  const double zp = zd[p];
  double a1 = 0, a2 = 0;
  for (int q = 0; q < n; ++q) {
    const double cpq = c[p + static_cast<long>(n) * q];
    const double t = zp - zd[q];
    a1 += cpq * t;
    a2 += cpq * t * t;
  }
  *zr = a1;
  *ls = a2;
}

// Step 6, the value: +infinity when the factorisation failed (info != 0) or a pivot is not a
// positive finite number. chol: n x n, leading dimension n.
HPO_HOST_DEVICE inline double LikelihoodValue(int n, const double* y, const double* alpha, const double* chol,
                                              int info) {
  const double inf = HUGE_VAL;
  if (info != 0) return inf;
  double fit = 0, log_det = 0;
  for (int p = 0; p < n; ++p) {
    const double l = chol[p + static_cast<long>(n) * p];
    if (!(l > 0) || !IsFiniteHd(l)) return inf;
    log_det += LogHd(l);
    fit += y[p] * alpha[p];
  }
  const double v = 0.5 * fit + log_det + 0.5 * static_cast<double>(n) * kLikelihoodLog2Pi;
  return IsFiniteHd(v) ? v : inf;
}

// Step 6, gradient entry j of the negative log marginal likelihood (packed order: D
// lengthscales, signal, noise, W a's, W b's), from the row sums of step 5 (ls, zr: n x D; sig,
// dg: n; dwa, dwb: n x W) and warped_dims (W: the coordinate of each warped index).
HPO_HOST_DEVICE inline double LikelihoodGradientEntry(int j, int n, LikelihoodParamsView params, int warped_count,
                                                      const int* warped_dims, const double* ls, const double* zr,
                                                      const double* sig, const double* dg, const double* dwa,
                                                      const double* dwb) {
  const int dims = params.dims;
  double g = 0;  // d logML / d theta_j
  if (j < dims) {
    const double* col = ls + static_cast<long>(n) * j;
    for (int p = 0; p < n; ++p) g += col[p];
    g *= 0.5;
  } else if (j == dims || j == dims + 1) {
    double diag = 0, signal = 0;
    for (int p = 0; p < n; ++p) {
      diag += dg[p];
      signal += sig[p];
    }
    g = j == dims ? 0.5 * signal + 0.5 * diag * params.s2() : 0.5 * diag * params.noise();
  } else {
    const int i = (j - dims - 2) % warped_count;
    const double* dw = (j - dims - 2 < warped_count ? dwa : dwb) + static_cast<long>(n) * i;
    const int d = warped_dims[i];
    const double* zrd = zr + static_cast<long>(n) * d;
    for (int p = 0; p < n; ++p) g += dw[p] * zrd[p];
    g *= -params.inv_l(d);
  }
  return -g;
}

}  // namespace hpo::kernels
