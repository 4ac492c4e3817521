// GpEngine::Ascend's default (the host loop) and AscentDirection (gp_engine.h). Its own file
// because it is compiled twice: into hpo_kernels, and into the CUDA engine module, which links
// nothing of hpo_kernels (kernels/CMakeLists.txt) and falls back to this loop for shapes its
// device loop does not take.
#include <algorithm>
#include <cmath>
#include <string>
#include <vector>

#include "kernels/gp_engine.h"

namespace hpo::kernels {

Eigen::VectorXd AscentDirection(const Eigen::VectorXd& x, const Eigen::VectorXd& g, const uint8_t* movable) {
  Eigen::VectorXd dir = g;
  for (Eigen::Index d = 0; d < dir.size(); ++d) {
    const bool held = (movable != nullptr && !movable[d]) || (x[d] <= 0.0 && dir[d] < 0) ||
                      (x[d] >= 1.0 && dir[d] > 0);
    if (held) dir[d] = 0;
  }
  const double norm = dir.norm();
  if (!(norm > 0) || !std::isfinite(norm)) return Eigen::VectorXd::Zero(g.size());
  return dir / norm;
}

GpStatus GpEngine::Ascend(const Eigen::MatrixXd& starts, const std::vector<uint8_t>& movable, double incumbent,
                          int iterations, Eigen::MatrixXd* ends, Eigen::VectorXd* log_ei) {
  const Eigen::Index dims = starts.rows(), s = starts.cols();
  if (!movable.empty() && movable.size() != static_cast<size_t>(dims * s)) {
    return GpStatus::InvalidArgument("Ascend: movable has " + std::to_string(movable.size()) + " entries for " +
                                     std::to_string(dims) + " x " + std::to_string(s) + " starts");
  }
  *ends = starts;
  Eigen::MatrixXd& cur = *ends;
  PointScores at;
  GpStatus st = Evaluate(cur, incumbent, true, &at);
  if (!st.ok()) return st;
  Eigen::VectorXd& f = *log_ei;
  f = at.log_ei;
  Eigen::MatrixXd grad = at.log_ei_grad;
  auto held = [&](Eigen::Index i) { return movable.empty() ? nullptr : movable.data() + i * dims; };
  std::vector<double> step(static_cast<size_t>(s), kAscentFirstStep);
  std::vector<char> active(static_cast<size_t>(s), 1);
  for (int it = 0; it < iterations; ++it) {
    std::vector<Eigen::Index> who;
    Eigen::MatrixXd trial(dims, s);
    for (Eigen::Index i = 0; i < s; ++i) {
      if (!active[static_cast<size_t>(i)]) continue;
      const Eigen::VectorXd dir = AscentDirection(cur.col(i), grad.col(i), held(i));
      if (!(dir.squaredNorm() > 0) || !std::isfinite(f[i])) {
        active[static_cast<size_t>(i)] = 0;
        continue;
      }
      trial.col(static_cast<Eigen::Index>(who.size())) =
          (cur.col(i) + step[static_cast<size_t>(i)] * dir).cwiseMax(0.0).cwiseMin(1.0);
      who.push_back(i);
    }
    if (who.empty()) break;
    PointScores ts;
    st = Evaluate(trial.leftCols(static_cast<Eigen::Index>(who.size())), incumbent, true, &ts);
    if (!st.ok()) return st;
    for (size_t w = 0; w < who.size(); ++w) {
      const Eigen::Index i = who[w];
      double& t = step[static_cast<size_t>(i)];
      if (ts.log_ei[static_cast<Eigen::Index>(w)] > f[i]) {
        cur.col(i) = trial.col(static_cast<Eigen::Index>(w));
        f[i] = ts.log_ei[static_cast<Eigen::Index>(w)];
        grad.col(i) = ts.log_ei_grad.col(static_cast<Eigen::Index>(w));
        t = std::min(2.0 * t, kAscentMaxStep);
      } else {
        t *= kAscentShrink;
        if (t < kAscentMinStep) active[static_cast<size_t>(i)] = 0;
      }
    }
  }
  return GpStatus::Ok();
}

}  // namespace hpo::kernels
