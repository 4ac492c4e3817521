// The host loop (host_ascent.h), GpEngine::Ascend's and DescendMean's defaults, and
// AscentDirection (gp_engine.h). Its own file because it is compiled twice: into hpo_kernels,
// and into the CUDA engine module, which links nothing of hpo_kernels (kernels/CMakeLists.txt)
// and falls back to this loop for shapes its device loop does not take.
#include <cmath>
#include <string>
#include <vector>

#include "kernels/ascent_step.h"
#include "kernels/gp_engine.h"
#include "kernels/host_ascent.h"

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

GpStatus HostAscent(const Eigen::MatrixXd& starts, const std::vector<uint8_t>& movable, int iterations,
                    const AscentScore& score, Eigen::MatrixXd* ends, Eigen::VectorXd* values) {
  const Eigen::Index dims = starts.rows(), s = starts.cols();
  if (!movable.empty() && movable.size() != static_cast<size_t>(dims * s)) {
    return GpStatus::InvalidArgument("Ascend: movable has " + std::to_string(movable.size()) + " entries for " +
                                     std::to_string(dims) + " x " + std::to_string(s) + " starts");
  }
  *ends = starts;
  Eigen::MatrixXd& cur = *ends;
  Eigen::VectorXd& f = *values;
  Eigen::MatrixXd grad;
  GpStatus st = score(cur, &f, &grad);
  if (!st.ok()) return st;
  auto held = [&](Eigen::Index i) { return movable.empty() ? nullptr : movable.data() + i * dims; };
  std::vector<double> step(static_cast<size_t>(s), kAscentFirstStep);
  std::vector<char> active(static_cast<size_t>(s), 1);
  Eigen::MatrixXd trial(dims, s);
  Eigen::VectorXd trial_f;
  Eigen::MatrixXd trial_grad;
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
    st = score(trial.leftCols(static_cast<Eigen::Index>(who.size())), &trial_f, &trial_grad);
    if (!st.ok()) return st;
    for (size_t w = 0; w < who.size(); ++w) {
      const Eigen::Index i = who[w], wi = static_cast<Eigen::Index>(w);
      bool still = true;
      if (AscentVerdict(trial_f[wi], &f[i], &step[static_cast<size_t>(i)], &still)) {
        cur.col(i) = trial.col(wi);
        grad.col(i) = trial_grad.col(wi);
      }
      if (!still) active[static_cast<size_t>(i)] = 0;
    }
  }
  return GpStatus::Ok();
}

GpStatus GpEngine::Ascend(const Eigen::MatrixXd& starts, const std::vector<uint8_t>& movable, double incumbent,
                          int iterations, Eigen::MatrixXd* ends, Eigen::VectorXd* log_ei) {
  PointScores at;
  const AscentScore score = [&](const Eigen::MatrixXd& points, Eigen::VectorXd* value, Eigen::MatrixXd* grad) {
    GpStatus st = Evaluate(points, incumbent, true, &at);
    if (!st.ok()) return st;
    value->swap(at.log_ei);
    grad->swap(at.log_ei_grad);
    return GpStatus::Ok();
  };
  return HostAscent(starts, movable, iterations, score, ends, log_ei);
}

GpStatus GpEngine::DescendMean(const Eigen::MatrixXd& starts, const std::vector<uint8_t>& movable, double tau,
                               int iterations, Eigen::MatrixXd* ends, Eigen::VectorXd* means) {
  Eigen::VectorXd log_ei;
  GpStatus st = Ascend(starts, movable, tau, iterations, ends, &log_ei);
  if (!st.ok() || means == nullptr) return st;
  PointScores at;
  st = Evaluate(*ends, tau, false, &at);
  if (!st.ok()) return st;
  *means = at.mean;
  return GpStatus::Ok();
}

}  // namespace hpo::kernels
