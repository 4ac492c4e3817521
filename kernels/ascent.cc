// GpEngine::Ascend's default (the host loop) and AscentDirection (gp_engine.h). Its own file
// because it is compiled twice: into hpo_kernels, and into the CUDA engine module, which links
// nothing of hpo_kernels (kernels/CMakeLists.txt) and falls back to this loop for shapes its
// device loop does not take.
#include <cmath>
#include <string>
#include <vector>

#include "kernels/ascent_step.h"
#include "kernels/gp_engine.h"

namespace hpo::kernels {

Eigen::VectorXd AscentDirection(const Eigen::VectorXd& x, const Eigen::VectorXd& g, const uint8_t* movable) {
  const int dims = static_cast<int>(g.size());
  const double norm = AscentNorm(x.data(), g.data(), movable, dims);
  Eigen::VectorXd dir = Eigen::VectorXd::Zero(g.size());
  if (!(norm > 0) || !std::isfinite(norm)) return dir;
  for (int d = 0; d < dims; ++d) {
    if (!AscentHeld(x.data(), g.data(), movable, d)) dir[d] = g[d] / norm;
  }
  return dir;
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
  Eigen::MatrixXd trial(dims, s);
  for (int it = 0; it < iterations; ++it) {
    std::vector<Eigen::Index> who;  // the starts still moving, in the order of their trials
    for (Eigen::Index i = 0; i < s; ++i) {
      if (!active[static_cast<size_t>(i)]) continue;
      if (!AscentTrial(cur.col(i).data(), grad.col(i).data(), held(i), f[i], step[static_cast<size_t>(i)],
                       static_cast<int>(dims), trial.col(static_cast<Eigen::Index>(who.size())).data())) {
        active[static_cast<size_t>(i)] = 0;
        continue;
      }
      who.push_back(i);
    }
    if (who.empty()) break;
    PointScores ts;
    st = Evaluate(trial.leftCols(static_cast<Eigen::Index>(who.size())), incumbent, true, &ts);
    if (!st.ok()) return st;
    for (size_t w = 0; w < who.size(); ++w) {
      const Eigen::Index i = who[w], wi = static_cast<Eigen::Index>(w);
      bool still = true;
      if (AscentVerdict(ts.log_ei[wi], &f[i], &step[static_cast<size_t>(i)], &still)) {
        cur.col(i) = trial.col(wi);
        grad.col(i) = ts.log_ei_grad.col(wi);
      }
      if (!still) active[static_cast<size_t>(i)] = 0;
    }
  }
  return GpStatus::Ok();
}

}  // namespace hpo::kernels
