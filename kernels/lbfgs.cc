#include "kernels/lbfgs.h"

#include <algorithm>
#include <cmath>
#include <deque>

namespace hpo::kernels {
namespace {

Eigen::VectorXd Clip(const Eigen::VectorXd& x, const Eigen::VectorXd& lo, const Eigen::VectorXd& hi) {
  return x.cwiseMax(lo).cwiseMin(hi);
}

// Zero the components of d for variables at a bound that d would push outside.
void HoldActive(const Eigen::VectorXd& x, const Eigen::VectorXd& lo, const Eigen::VectorXd& hi, Eigen::VectorXd* d) {
  for (Eigen::Index i = 0; i < x.size(); ++i) {
    if ((x[i] <= lo[i] && (*d)[i] < 0) || (x[i] >= hi[i] && (*d)[i] > 0)) (*d)[i] = 0;
  }
}

}  // namespace

LbfgsResult MinimizeBoxed(const Objective& f, const Eigen::VectorXd& x0, const Eigen::VectorXd& lower,
                          const Eigen::VectorXd& upper, const LbfgsOptions& options) {
  LbfgsResult r;
  r.x = Clip(x0, lower, upper);
  Eigen::VectorXd g(r.x.size());
  r.f = f(r.x, &g);
  r.evaluations = 1;
  if (!std::isfinite(r.f) || !g.allFinite()) return r;

  std::deque<Eigen::VectorXd> s_mem, y_mem;
  std::deque<double> rho_mem;
  for (r.iterations = 0; r.iterations < options.max_iterations; ++r.iterations) {
    const Eigen::VectorXd pg = Clip(r.x - g, lower, upper) - r.x;
    if (pg.lpNorm<Eigen::Infinity>() < options.gradient_tolerance) {
      r.converged = true;
      break;
    }
    // Two-loop recursion.
    Eigen::VectorXd d = -g;
    const size_t m = s_mem.size();
    std::vector<double> a(m);
    for (size_t i = m; i-- > 0;) {
      a[i] = rho_mem[i] * s_mem[i].dot(d);
      d -= a[i] * y_mem[i];
    }
    if (m > 0) d *= s_mem.back().dot(y_mem.back()) / y_mem.back().squaredNorm();
    for (size_t i = 0; i < m; ++i) {
      const double b = rho_mem[i] * y_mem[i].dot(d);
      d += (a[i] - b) * s_mem[i];
    }
    HoldActive(r.x, lower, upper, &d);
    bool steepest = m == 0;
    if (!(g.dot(d) < 0)) {
      d = -g;
      HoldActive(r.x, lower, upper, &d);
      steepest = true;
      s_mem.clear(); y_mem.clear(); rho_mem.clear();
    }
    // First steepest step: scaled so that the largest move is 1 (log-space units).
    double t = 1.0;
    if (steepest) {
      const double dn = d.lpNorm<Eigen::Infinity>();
      if (dn > 0) t = std::min(1.0, 1.0 / dn);
    }
    bool accepted = false;
    Eigen::VectorXd x_new, g_new(r.x.size());
    double f_new = 0;
    for (int ls = 0; ls < 30; ++ls, t *= 0.5) {
      x_new = Clip(r.x + t * d, lower, upper);
      f_new = f(x_new, &g_new);
      ++r.evaluations;
      if (std::isfinite(f_new) && g_new.allFinite() && f_new <= r.f + 1e-4 * g.dot(x_new - r.x)) {
        accepted = true;
        break;
      }
    }
    if (!accepted) {
      if (steepest) break;  // even the projected steepest descent found no decrease
      s_mem.clear(); y_mem.clear(); rho_mem.clear();
      continue;  // next iteration: steepest descent (empty memory)
    }
    const Eigen::VectorXd s = x_new - r.x;
    const Eigen::VectorXd yv = g_new - g;
    const double sy = s.dot(yv);
    if (sy > 1e-12 * s.norm() * yv.norm()) {
      s_mem.push_back(s);
      y_mem.push_back(yv);
      rho_mem.push_back(1.0 / sy);
      if (static_cast<int>(s_mem.size()) > options.memory) {
        s_mem.pop_front(); y_mem.pop_front(); rho_mem.pop_front();
      }
    }
    const double improvement = r.f - f_new;
    r.x = x_new;
    r.f = f_new;
    g = g_new;
    if (improvement < options.relative_tolerance * std::max(1.0, std::fabs(r.f))) {
      r.converged = true;
      ++r.iterations;
      break;
    }
  }
  return r;
}

}  // namespace hpo::kernels
