#include "kernels/acquisition.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <numeric>
#include <unordered_set>

#include "kernels/random.h"
#include "kernels/sobol.h"

namespace hpo::kernels {
namespace {

using Key = std::vector<double>;

// Points already taken or in the pool, by exact coordinates (finite). A hash set: the ordered
// set's comparisons were a tenth of a proposal's host time at small n.
struct KeyHash {
  size_t operator()(const Key& k) const {
    uint64_t h = 1469598103934665603ull;
    for (double v : k) {
      if (v == 0.0) v = 0.0;  // -0 and +0 are one coordinate, as for ==
      uint64_t bits;
      std::memcpy(&bits, &v, sizeof bits);
      h = (h ^ bits) * 1099511628211ull;
      h ^= h >> 29;
    }
    return static_cast<size_t>(h);
  }
};
using KeySet = std::unordered_set<Key, KeyHash>;

Key KeyOf(const Eigen::Ref<const Eigen::VectorXd>& x) { return Key(x.data(), x.data() + x.size()); }

void Project(const ProjectFn& project, Eigen::Ref<Eigen::VectorXd> x, uint8_t* movable) {
  for (Eigen::Index i = 0; i < x.size(); ++i) x[i] = std::clamp(x[i], 0.0, 1.0);
  if (project) {
    Eigen::VectorXd tmp = x;  // the callback wants contiguous storage
    project(tmp.data(), movable);
    x = tmp;
  } else if (movable != nullptr) {
    std::fill(movable, movable + x.size(), uint8_t{1});
  }
}

double FantasyValue(FantasyMode mode, double mean, double variance, double noise, Random* rng) {
  if (mode == FantasyMode::kKrigingBeliever) return mean;
  return mean + std::sqrt(std::max(variance, 0.0) + noise) * rng->Normal();
}

}  // namespace

namespace {

// The engine's calls that SuggestBatch makes, counted (AcquisitionReport::engine_calls) and timed
// by kind (engine_seconds): on the GPU each is a device round trip, and their number, not their
// size, sets much of a batch's latency.
class CountedEngine {
 public:
  CountedEngine(GpEngine& engine, AcquisitionReport* report) : engine_(engine), report_(*report) {}
  GpStatus Load(const Posterior& p, size_t reserve) {
    return Timed(&EngineSeconds::load, [&] { return engine_.Load(p, reserve); });
  }
  GpStatus Evaluate(const Eigen::MatrixXd& x, double tau, bool gradients, PointScores* out) {
    return Timed(&EngineSeconds::evaluate, [&] { return engine_.Evaluate(x, tau, gradients, out); });
  }
  GpStatus SetPool(const Eigen::MatrixXd& x) {
    return Timed(&EngineSeconds::pool, [&] { return engine_.SetPool(x); });
  }
  GpStatus ExtendPool(const Eigen::MatrixXd& x) {
    return Timed(&EngineSeconds::pool, [&] { return engine_.ExtendPool(x); });
  }
  GpStatus PoolTopK(double tau, size_t k, std::vector<RankedCandidate>* out) {
    return Timed(&EngineSeconds::top_k, [&] { return engine_.PoolTopK(tau, k, out); });
  }
  GpStatus Fantasize(const Eigen::VectorXd& x, double y) {
    return Timed(&EngineSeconds::fantasize, [&] { return engine_.Fantasize(x, y); });
  }
  GpStatus Ascend(const Eigen::MatrixXd& starts, const std::vector<uint8_t>& movable, double tau,
                  int iterations, Eigen::MatrixXd* ends, Eigen::VectorXd* log_ei) {
    return Timed(&EngineSeconds::ascend,
                 [&] { return engine_.Ascend(starts, movable, tau, iterations, ends, log_ei); });
  }
  GpStatus DescendMean(const Eigen::MatrixXd& starts, const std::vector<uint8_t>& movable, double tau,
                       int iterations, Eigen::MatrixXd* ends, Eigen::VectorXd* means) {
    return Timed(&EngineSeconds::descend,
                 [&] { return engine_.DescendMean(starts, movable, tau, iterations, ends, means); });
  }
  size_t TrainingSize() const { return engine_.TrainingSize(); }

 private:
  template <class Call>
  GpStatus Timed(double EngineSeconds::*slot, const Call& call) {
    ++report_.engine_calls;
    const auto t0 = std::chrono::steady_clock::now();
    GpStatus st = call();
    report_.engine_seconds.*slot += std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    return st;
  }

  GpEngine& engine_;
  AcquisitionReport& report_;
};

}  // namespace

GpStatus SuggestBatch(GpEngine& target, const Posterior& posterior, size_t q, const AcquisitionOptions& options,
                      Batch* out, AcquisitionReport* report) {
  *out = Batch();
  AcquisitionReport rep;
  CountedEngine engine(target, &rep);
  const Eigen::Index dims = static_cast<Eigen::Index>(posterior.dims());
  if (q == 0) return GpStatus::InvalidArgument("SuggestBatch: q must be at least 1");
  if (dims == 0 || posterior.size() == 0) return GpStatus::InvalidArgument("SuggestBatch: empty posterior");
  GpStatus st = engine.Load(posterior, options.failed.size() + options.pending.size() + q);
  if (!st.ok()) return st;
  Random rng(SubSeed(options.seed, 11));
  double incumbent = posterior.incumbent;
  const double noise = posterior.noise_variance();

  KeySet taken;
  // The pending points and the batch so far: a member is not put within kMinSeparation of one
  // while the pool's top offers another (below).
  std::vector<Eigen::VectorXd> placed;
  for (const Eigen::VectorXd& e : options.exclude) {
    if (e.size() != dims) return GpStatus::InvalidArgument("SuggestBatch: excluded point of the wrong size");
    Eigen::VectorXd x = e;
    Project(options.project, x, nullptr);
    taken.insert(KeyOf(x));
  }

  // 1. Failed points, at the worst target (pessimistic: the incumbent stays), then pending points.
  const double worst = posterior.y.maxCoeff();
  for (const Eigen::VectorXd& p : options.failed) {
    if (p.size() != dims || !p.allFinite()) return GpStatus::InvalidArgument("SuggestBatch: bad failed point");
    Eigen::VectorXd x = p;
    Project(options.project, x, nullptr);
    taken.insert(KeyOf(x));
    if (engine.Fantasize(x, worst).ok()) ++rep.failed;  // a duplicate of the data adds nothing: skipped
  }
  for (const Eigen::VectorXd& p : options.pending) {
    if (p.size() != dims || !p.allFinite()) return GpStatus::InvalidArgument("SuggestBatch: bad pending point");
    Eigen::VectorXd x = p;
    Project(options.project, x, nullptr);
    taken.insert(KeyOf(x));
    placed.push_back(x);
    PointScores s;
    st = engine.Evaluate(x, incumbent, false, &s);
    if (!st.ok()) return st;
    const double y = FantasyValue(options.fantasy, s.mean[0], s.variance[0], noise, &rng);
    if (engine.Fantasize(x, y).ok()) {  // a duplicate of the data adds nothing: skipped
      incumbent = std::min(incumbent, y);
      ++rep.pending;
    }
  }

  // 2. The pool.
  const size_t n_train = engine.TrainingSize();
  size_t pool_size = options.pool_size;
  if (n_train > 0 && pool_size > options.max_pool_work / n_train) {
    pool_size = std::min(pool_size, std::max(options.min_pool_size, options.max_pool_work / n_train));
  }
  const size_t local =
      std::min(pool_size, static_cast<size_t>(std::llround(options.local_fraction * static_cast<double>(pool_size))));
  const size_t sobol_count = std::max<size_t>(1, pool_size - local);
  Eigen::MatrixXd raw(dims, static_cast<Eigen::Index>(sobol_count + local));
  raw.leftCols(static_cast<Eigen::Index>(sobol_count)) =
      SobolSequence(static_cast<int>(dims), true, SubSeed(options.seed, 12)).Points(0, sobol_count);
  if (local > 0) {
    std::vector<size_t> order(posterior.size());
    std::iota(order.begin(), order.end(), size_t{0});
    std::stable_sort(order.begin(), order.end(),
                     [&](size_t a, size_t b) { return posterior.y[static_cast<Eigen::Index>(a)] < posterior.y[static_cast<Eigen::Index>(b)]; });
    const size_t centres = std::max<size_t>(1, std::min(options.local_centres, order.size()));
    static constexpr double kSd[] = {0.01, 0.05, 0.15};
    for (size_t i = 0; i < local; ++i) {
      const Eigen::VectorXd c = posterior.inputs.col(static_cast<Eigen::Index>(order[i % centres]));
      const double sd = kSd[(i / centres) % 3];
      auto col = raw.col(static_cast<Eigen::Index>(sobol_count + i));
      for (Eigen::Index d = 0; d < dims; ++d) col[d] = std::clamp(c[d] + sd * rng.Normal(), 0.0, 1.0);
    }
  }
  KeySet in_pool;
  Eigen::MatrixXd pool(dims, raw.cols());
  Eigen::Index m = 0;
  for (Eigen::Index j = 0; j < raw.cols(); ++j) {
    Eigen::VectorXd x = raw.col(j);
    Project(options.project, x, nullptr);
    Key k = KeyOf(x);
    if (taken.count(k) || !in_pool.insert(std::move(k)).second) continue;
    pool.col(m++) = x;
  }
  pool.conservativeResize(Eigen::NoChange, m);
  if (m > 0) {
    st = engine.SetPool(pool);
    if (!st.ok()) return st;
  }

  // 3. Local refinement: the `starts` best pool points by log EI at incumbent `tau` (under the
  // current fantasies) climb it, or, for the exploit member (`by_mean`), descend the posterior
  // mean; their end points join the pool. *added: how many were new.
  auto refine = [&](size_t starts, int iterations, double tau, bool by_mean, size_t* added) -> GpStatus {
    *added = 0;
    if (m == 0 || starts == 0 || iterations <= 0) return GpStatus::Ok();
    std::vector<RankedCandidate> top;
    GpStatus st = engine.PoolTopK(tau, starts, &top);
    if (!st.ok()) return st;
    const Eigen::Index s = static_cast<Eigen::Index>(top.size());
    Eigen::MatrixXd from(dims, s);  // the starts' points
    // Column-major D x s, as GpEngine::Ascend takes it.
    std::vector<uint8_t> movable(static_cast<size_t>(s * dims), 1);
    for (Eigen::Index i = 0; i < s; ++i) {
      Eigen::VectorXd x = pool.col(static_cast<Eigen::Index>(top[static_cast<size_t>(i)].index));
      Project(options.project, x, movable.data() + static_cast<size_t>(i * dims));
      from.col(i) = x;
    }
    Eigen::MatrixXd ends;
    Eigen::VectorXd ends_log_ei;  // not needed here: the ends join the pool, which scores them
    st = by_mean ? engine.DescendMean(from, movable, tau, iterations, &ends, nullptr)
                 : engine.Ascend(from, movable, tau, iterations, &ends, &ends_log_ei);
    if (!st.ok()) return st;
    Eigen::MatrixXd refined(dims, s);
    Eigen::Index r = 0;
    for (Eigen::Index i = 0; i < s; ++i) {
      Eigen::VectorXd x = ends.col(i);
      Project(options.project, x, nullptr);
      Key k = KeyOf(x);
      if (taken.count(k) || !in_pool.insert(std::move(k)).second) continue;
      refined.col(r++) = x;
    }
    if (r > 0) {
      st = engine.ExtendPool(refined.leftCols(r));
      if (!st.ok()) return st;
      pool.conservativeResize(Eigen::NoChange, m + r);
      pool.rightCols(r) = refined.leftCols(r);
      m += r;
    }
    *added = static_cast<size_t>(r);
    return GpStatus::Ok();
  };
  st = refine(options.refine_starts, options.refine_iterations, incumbent, false, &rep.refined);
  if (!st.ok()) return st;
  rep.pool = static_cast<size_t>(m);

  // 4. The batch.
  std::vector<char> chosen(static_cast<size_t>(m), 0);
  for (size_t b = 0; b < q && m > 0; ++b) {
    // The exploit member ranks by the mean: log EI at an incumbent far above every candidate.
    const bool exploit = b == options.exploit_member;
    const double tau = exploit ? incumbent + kExploitOffset : incumbent;
    if (exploit && options.exploit_refine_starts > 0) {
      size_t added = 0;
      st = refine(options.exploit_refine_starts, options.exploit_refine_iterations, tau, true, &added);
      if (!st.ok()) return st;
      chosen.resize(static_cast<size_t>(m), 0);
      rep.refined += added;
    }
    // The best not chosen yet that keeps its distance from the pending points and the members
    // chosen (a fantasy with a fitted noise leaves log EI high right beside it: a warm-started
    // job's two parallel members came out 5e-5 apart, one training job spent twice); when the
    // top offers none, the best not chosen.
    std::vector<RankedCandidate> top;
    st = engine.PoolTopK(tau, std::min<size_t>(static_cast<size_t>(m), b + 1 + kSeparationLookahead), &top);
    if (!st.ok()) return st;
    const double min_separation = kMinSeparation * std::sqrt(static_cast<double>(dims));
    const RankedCandidate* pick = nullptr;
    const RankedCandidate* closest_ok = nullptr;
    for (const RankedCandidate& c : top) {
      if (chosen[c.index]) continue;
      if (closest_ok == nullptr) closest_ok = &c;
      const Eigen::VectorXd x = pool.col(static_cast<Eigen::Index>(c.index));
      const bool apart = std::all_of(placed.begin(), placed.end(),
                                     [&](const Eigen::VectorXd& p) { return (p - x).norm() >= min_separation; });
      if (apart) {
        pick = &c;
        break;
      }
    }
    if (pick == nullptr) pick = closest_ok;
    if (pick == nullptr) break;
    chosen[pick->index] = 1;
    const Eigen::VectorXd x = pool.col(static_cast<Eigen::Index>(pick->index));
    double log_ei = pick->log_ei;
    if (exploit) {  // reported at the real incumbent, as for the other members
      PointScores s;
      st = engine.Evaluate(x, incumbent, false, &s);
      if (!st.ok()) return st;
      log_ei = s.log_ei[0];
    }
    out->points.push_back(x);
    placed.push_back(x);
    out->log_ei.push_back(log_ei);
    out->mean.push_back(pick->mean);
    out->variance.push_back(pick->variance);
    if (b + 1 < q) {
      const double y = FantasyValue(options.fantasy, pick->mean, pick->variance, noise, &rng);
      if (engine.Fantasize(x, y).ok()) incumbent = std::min(incumbent, y);
      // The next member is a local maximum too: refine again under this fantasy.
      if (b < options.max_refined_picks && options.refine_starts_per_pick > 0) {
        size_t added = 0;
        st = refine(options.refine_starts_per_pick, options.refine_iterations_per_pick, incumbent, false,
                    &added);
        if (!st.ok()) return st;
        chosen.resize(static_cast<size_t>(m), 0);
        rep.refined += added;
      }
    }
  }
  if (report != nullptr) *report = rep;
  return GpStatus::Ok();
}

}  // namespace hpo::kernels
