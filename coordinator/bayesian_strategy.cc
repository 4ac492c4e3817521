#include "coordinator/bayesian_strategy.h"

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <set>
#include <utility>

#include <Eigen/Core>
#include <spdlog/spdlog.h>

#include "kernels/quantile.h"
#include "kernels/random.h"

namespace hpo::coordinator {
namespace {

double SecondsSince(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

// Maximize for a definition: its own TuningObjective's type when set, else the job's objective.
bool Maximize(const proto::TuningJobSpec& spec, const proto::TrainingJobDefinition& def) {
  if (def.tuning_objective && def.tuning_objective->type) return *def.tuning_objective->type == "Maximize";
  const auto& cfg = spec.hyper_parameter_tuning_job_config;
  if (cfg && cfg->hyper_parameter_tuning_job_objective && cfg->hyper_parameter_tuning_job_objective->type) {
    return *cfg->hyper_parameter_tuning_job_objective->type == "Maximize";
  }
  std::vector<const proto::TrainingJobDefinition*> defs = spec.Definitions();
  if (!defs.empty() && defs[0]->tuning_objective && defs[0]->tuning_objective->type) {
    return *defs[0]->tuning_objective->type == "Maximize";
  }
  return false;
}


// The cube's width: the definition one-hot (with several definitions), every definition's
// block, and the task coordinate.
size_t CubeDims(const std::vector<DefinitionSpace>& spaces, bool task_coordinate) {
  size_t dims = spaces.size() > 1 ? spaces.size() : 0;
  for (const DefinitionSpace& d : spaces) dims += d.space.UnitDims();
  return dims + (task_coordinate ? 1 : 0);
}

Status ToStatus(const kernels::GpStatus& st) {
  switch (st.code()) {
    case kernels::GpStatus::Code::kOk: return Status::Ok();
    case kernels::GpStatus::Code::kInvalidArgument: return Status::InvalidArgument(st.message());
    case kernels::GpStatus::Code::kUnavailable: return Status::Unavailable(st.message());
    case kernels::GpStatus::Code::kNumerical: return Status::Internal(st.message());
  }
  return Status::Internal(st.message());
}

}  // namespace

size_t BayesianStartSize(size_t dims) { return std::max<size_t>(3, std::min<size_t>(dims + 1, 20)); }

size_t PullInOutliers(Eigen::VectorXd* y) {
  const Eigen::Index n = y->size();
  if (n < 4) return 0;
  std::vector<double> sorted(y->data(), y->data() + n);
  std::sort(sorted.begin(), sorted.end());
  const double q25 = kernels::QuantileOfSorted(sorted, 0.25), q75 = kernels::QuantileOfSorted(sorted, 0.75);
  // Differences below `tiny` are rounding: a bayes pass's objectives of -1e-300 * y beside 1e300
  // losses had a spread of 1e-300, every loss was pulled to 3e-300, and the model saw "every
  // objective the same value".
  const double tiny = 1e-9 * std::max(1.0, std::fabs(q75));
  double spread = q75 - q25;
  if (!(spread > tiny)) spread = q75 - sorted.front();
  if (!(spread > tiny)) spread = tiny;  // the rest tied: the outliers just above them, still the worst
  const double fence = q75 + 3.0 * spread;
  if (!std::isfinite(fence)) return 0;
  size_t pulled = 0;
  for (Eigen::Index i = 0; i < n; ++i) {
    if ((*y)[i] > fence) {
      (*y)[i] = fence;
      ++pulled;
    }
  }
  return pulled;
}

Result<std::unique_ptr<BayesianStrategy>> BayesianStrategy::Create(const proto::TuningJobSpec& spec, uint64_t seed,
                                                                   const BayesianOptions& options) {
  Result<std::vector<DefinitionSpace>> spaces = DefinitionSpaces(spec);
  if (!spaces.ok()) return spaces.status();
  std::vector<bool> maximize;
  for (const proto::TrainingJobDefinition* def : spec.Definitions()) maximize.push_back(Maximize(spec, *def));
  BayesianOptions opts = options;
  if (spec.warm_start_config && spec.warm_start_config->warm_start_type.value_or("") == "TransferLearning") {
    opts.task_coordinate = true;
  }
  std::unique_ptr<kernels::GpEngine> engine;
  std::string note;
  kernels::EngineOptions eo;
  eo.threads = options.threads;
  kernels::GpStatus st = kernels::MakeGpEngine(options.device, eo, &engine, &note);
  if (!st.ok()) return ToStatus(st);
  // Once per process: the reason does not change between jobs, and a coordinator restarting
  // with many Bayesian jobs said it once for each.
  static std::atomic<bool> noted{false};
  if (!note.empty() && !noted.exchange(true)) spdlog::info("Bayesian strategy: {}; using {}", note, engine->Describe());
  return std::make_unique<BayesianStrategy>(std::move(spaces).value(), std::move(maximize), seed, opts,
                                            std::move(engine), std::move(note));
}

BayesianStrategy::BayesianStrategy(std::vector<DefinitionSpace> spaces, std::vector<bool> maximize, uint64_t seed,
                                   const BayesianOptions& options, std::unique_ptr<kernels::GpEngine> engine,
                                   std::string engine_note)
    : spaces_(std::move(spaces)),
      maximize_(std::move(maximize)),
      seed_(seed),
      options_(options),
      engine_(std::move(engine)),
      engine_note_(std::move(engine_note)),
      random_(spaces_, seed),
      start_points_(static_cast<int>(std::max<size_t>(CubeDims(spaces_, options.task_coordinate), 1)), true,
                    kernels::SubSeed(seed, 0x5354)) {
  HPO_CHECK(!spaces_.empty() && maximize_.size() == spaces_.size() && engine_ != nullptr);
  def_width_ = spaces_.size() > 1 ? spaces_.size() : 0;
  size_t offset = def_width_;
  for (const DefinitionSpace& d : spaces_) {
    offsets_.push_back(offset);
    offset += d.space.UnitDims();
  }
  dims_ = CubeDims(spaces_, options_.task_coordinate);
  warp_mask_.assign(dims_, 0);
  if (options_.input_warping) {
    for (size_t k = 0; k < spaces_.size(); ++k) {
      for (const Dimension& d : spaces_[k].space.dimensions()) {
        if (d.kind != DimensionKind::kCategorical && d.lo < d.hi) warp_mask_[offsets_[k] + d.unit_offset] = 1;
      }
    }
  }
}

std::optional<std::vector<double>> BayesianStrategy::Encode(const std::string& definition_name,
                                                            const Config& config, bool prior) const {
  std::optional<size_t> def = FindDefinition(spaces_, definition_name);
  if (!def) return std::nullopt;
  std::vector<double> u(dims_, 0.0);
  if (def_width_ > 0) u[*def] = 1.0;
  if (options_.task_coordinate) u[dims_ - 1] = prior ? 0.0 : 1.0;
  const std::vector<double> block = spaces_[*def].space.ToUnit(config);
  std::copy(block.begin(), block.end(), u.begin() + static_cast<std::ptrdiff_t>(offsets_[*def]));
  return u;
}

Proposal BayesianStrategy::Decode(std::span<const double> u) const {
  HPO_CHECK(u.size() == dims_);
  size_t def = 0;
  for (size_t k = 1; k < def_width_; ++k) {
    if (u[k] > u[def]) def = k;
  }
  const SearchSpace& space = spaces_[def].space;
  return Proposal{spaces_[def].name, space.FromUnit(u.subspan(offsets_[def], space.UnitDims()))};
}

void BayesianStrategy::Project(double* u, uint8_t* movable) const {
  std::span<double> x(u, dims_);
  size_t def = 0;  // as Decode
  for (size_t k = 1; k < def_width_; ++k) {
    if (x[k] > x[def]) def = k;
  }
  const SearchSpace& space = spaces_[def].space;
  // Encode(Decode(x)), without building the configuration (SearchSpace::ProjectUnit).
  std::vector<double> block(x.begin() + static_cast<std::ptrdiff_t>(offsets_[def]),
                            x.begin() + static_cast<std::ptrdiff_t>(offsets_[def] + space.UnitDims()));
  space.ProjectUnit(block);
  std::fill(x.begin(), x.end(), 0.0);
  if (movable != nullptr) std::fill(movable, movable + dims_, uint8_t{0});
  if (def_width_ > 0) x[def] = 1.0;
  if (options_.task_coordinate) x[dims_ - 1] = 1.0;  // proposals are for this job's task, fixed
  std::copy(block.begin(), block.end(), x.begin() + static_cast<std::ptrdiff_t>(offsets_[def]));
  if (movable != nullptr) {
    for (const Dimension& d : space.dimensions()) {
      if (d.kind != DimensionKind::kCategorical && d.lo < d.hi) movable[offsets_[def] + d.unit_offset] = 1;
    }
  }
}

bool BayesianStrategy::Exhausted(const std::vector<Observation>& history) const {
  return random_.Exhausted(history);
}

std::vector<Proposal> BayesianStrategy::Fallback(size_t n, const std::vector<Observation>& history,
                                                 const std::string& reason, bool failure) {
  if (failure) {
    spdlog::info("Bayesian strategy: random search proposes ({})", reason);
  } else {
    spdlog::debug("Bayesian strategy: random search proposes ({})", reason);
  }
  stats_.fallback = reason;
  stats_.exploit = false;
  return random_.Propose(n, history);
}

size_t BayesianStrategy::Distinct(const std::vector<Eigen::VectorXd>& points, size_t n,
                                  const std::vector<Observation>& history, std::vector<Proposal>* out) {
  const size_t first = out->size();
  std::set<ConfigKey> seen = ProposedKeys(spaces_, history);
  // Configurations of spaces that are not finite, taken only when one comes up: a start design's
  // point that decodes to the same values as a trial already run (its window begins where the
  // last one did when a point went to an exhausted definition) is no new configuration either.
  std::optional<std::set<std::pair<std::string, Config>>> ran;
  for (const Eigen::VectorXd& p : points) {
    if (out->size() >= n) break;
    Proposal prop = Decode(std::span<const double>(p.data(), static_cast<size_t>(p.size())));
    const size_t def = *FindDefinition(spaces_, prop.definition_name);
    if (std::optional<uint64_t> index = spaces_[def].space.IndexOf(prop.hyperparameters)) {
      if (!seen.insert({def, *index}).second) continue;
    } else {
      if (!ran) {
        ran.emplace();
        for (const Observation& o : history) {
          if (!o.prior) ran->insert({o.definition_name, o.hyperparameters});
        }
      }
      if (!ran->insert({prop.definition_name, prop.hyperparameters}).second) continue;
    }
    out->push_back(std::move(prop));
  }
  if (out->size() >= n) return 0;
  // Only here is the history copied (random search must also avoid what was just taken): with
  // thousands of trials a copy on every proposal would cost more than the decoding.
  std::vector<Observation> extended = history;
  for (size_t i = first; i < out->size(); ++i) {
    Observation o;
    o.definition_name = (*out)[i].definition_name;
    o.hyperparameters = (*out)[i].hyperparameters;
    extended.push_back(std::move(o));
  }
  std::vector<Proposal> more = random_.Propose(n - out->size(), extended);
  for (Proposal& p : more) out->push_back(std::move(p));
  return more.size();
}

std::vector<Proposal> BayesianStrategy::Start(size_t n, const std::vector<Observation>& history,
                                              const std::vector<size_t>& only, const NearFailures& near) {
  if (options_.start_design == BayesianOptions::StartDesign::kRandom && only.empty()) {
    return random_.Propose(n, history);
  }
  // A window of 4n points: in a finite space some may stand for configurations already tried.
  // With failures, 16n: those nearer a failed configuration than any other go last.
  const bool steer = near.failed != nullptr && !near.failed->empty();
  const Eigen::MatrixXd window = start_points_.Points(history.size(), (steer ? 16 : 4) * n);
  std::vector<Eigen::VectorXd> points;
  for (Eigen::Index j = 0; j < window.cols(); ++j) {
    points.push_back(window.col(j));
    if (!only.empty() && def_width_ > 0) {  // its definition coordinates say one of `only`, in turn
      for (size_t k = 0; k < def_width_; ++k) points.back()[static_cast<Eigen::Index>(k)] = 0.0;
      const size_t turn = (history.size() + static_cast<size_t>(j)) % only.size();
      points.back()[static_cast<Eigen::Index>(only[turn])] = 1.0;
    }
    Project(points.back().data(), nullptr);
  }
  if (steer) {  // nearest-neighbour: a point whose nearest tried configuration failed goes last
    auto nearest = [](const Eigen::VectorXd& p, const std::vector<Eigen::VectorXd>& set) {
      double best = INFINITY;
      for (const Eigen::VectorXd& q : set) best = std::min(best, (p - q).squaredNorm());
      return best;
    };
    std::vector<Eigen::VectorXd> kept, avoided;
    for (Eigen::VectorXd& p : points) {
      const bool bad = near.fine == nullptr || nearest(p, *near.failed) < nearest(p, *near.fine);
      (bad ? avoided : kept).push_back(std::move(p));
    }
    points = std::move(kept);
    for (Eigen::VectorXd& p : avoided) points.push_back(std::move(p));
  }
  std::vector<Proposal> out;
  Distinct(points, n, history, &out);
  return out;
}

std::vector<Proposal> BayesianStrategy::Propose(size_t n, const std::vector<Observation>& history) {
  const auto t0 = std::chrono::steady_clock::now();
  stats_ = SuggestStats();
  std::vector<Proposal> out;
  auto finish = [&](std::vector<Proposal> proposals) {
    stats_.proposals = proposals.size();
    stats_.seconds = SecondsSince(t0);
    return proposals;
  };
  if (n == 0 || Exhausted(history)) return finish({});

  std::vector<std::vector<double>> xs;
  std::vector<double> ys;
  std::vector<Eigen::VectorXd> pending, exclude, failed;
  // Training jobs per definition, whatever their end: each definition's own start (see the
  // header) counts them all, or one whose training jobs fail was started again and again.
  std::vector<size_t> per_definition(spaces_.size(), 0);
  for (const Observation& o : history) {
    std::optional<std::vector<double>> u = Encode(o.definition_name, o.hyperparameters, o.prior);
    if (!u) continue;
    const size_t def = *FindDefinition(spaces_, o.definition_name);
    if (!o.prior) ++per_definition[def];
    const Eigen::VectorXd v = Eigen::Map<const Eigen::VectorXd>(u->data(), static_cast<Eigen::Index>(u->size()));
    // A prior's configuration (a TransferLearning parent's, or one run with other static values)
    // did not run this job's configuration and may run here (ProposedKeys): the model may pick
    // it, and did not when it was excluded, even as the predicted best.
    if (!o.prior) exclude.push_back(v);
    if (o.status == Observation::kRunning) {
      pending.push_back(v);
    } else if ((o.status == Observation::kSucceeded || o.status == Observation::kStopped) && o.objective &&
               std::isfinite(*o.objective)) {
      xs.push_back(std::move(*u));
      ys.push_back(maximize_[def] ? -*o.objective : *o.objective);
    } else if (o.status == Observation::kFailed || (o.objective && !std::isfinite(*o.objective)) ||
               (o.status == Observation::kSucceeded && !o.objective)) {
      failed.push_back(v);  // the configuration's fault, as far as the model can tell (see the header)
    }
  }
  const size_t failed_count = options_.fantasize_failed ? failed.size() : 0;
  if (failed.size() > kMaxFailedFantasies) {  // the latest (each costs an update of the factor)
    failed.erase(failed.begin(), failed.end() - static_cast<std::ptrdiff_t>(kMaxFailedFantasies));
  }
  stats_.observations = xs.size();
  stats_.pending = pending.size();
  if (dims_ == 0) return finish(Fallback(n, history, "the search space has no tunable coordinate", false));
  if (spaces_.size() > 1) {  // each definition's own start (see the header)
    std::vector<size_t> short_of_start;
    for (size_t k = 0; k < spaces_.size(); ++k) {
      const size_t d = spaces_[k].space.UnitDims();
      size_t want = BayesianStartSize(d);
      // A small finite space: no more than its configurations (else it stayed short for good).
      if (std::optional<uint64_t> size = spaces_[k].space.Cardinality(); size && *size < want) {
        want = static_cast<size_t>(*size);
      }
      if (d > 0 && per_definition[k] < want) short_of_start.push_back(k);
    }
    if (!short_of_start.empty()) {
      stats_.fallback = "the space-filling start of " + std::to_string(short_of_start.size()) + " of " +
                        std::to_string(spaces_.size()) + " definitions";
      return finish(Start(n, history, short_of_start));
    }
  }
  const size_t min_obs = options_.min_observations > 0 ? options_.min_observations : BayesianStartSize(dims_);
  // Failed configurations inform the model too (fantasised at the worst): with two objectives to
  // fit, they count towards the start's size, or a space that mostly fails spent its budget on the
  // space-filling start (18 of 20 training jobs failed where 90% of a learning rate's range did).
  // Only for a few slots at a time: a batch of 8 fitted on two or three objectives went to one
  // basin together (Hartmann6 with 70% failing, 100 evaluations, 80 seeds: the global basin in 29
  // runs against 49 when the start waited for its objectives); one at a time it was as good, and
  // at 30 evaluations better (bench/RESULTS.md).
  const bool count_failures =
      options_.start_counts_failures && n + pending.size() <= BayesianOptions::kFailuresStartMaxParallel;
  if (xs.size() < 2 || xs.size() + (count_failures ? failed_count : 0) < min_obs) {
    // What it waits for, as the rule is: two objectives to fit, and `min_obs` ended training jobs
    // with the failures counted when they are (it said "1 with an objective and 6 failed; the
    // model needs 3", which read as met; a bayes pass).
    const bool failures_count = failed_count > 0 && count_failures;
    std::string needs = std::to_string(min_obs);
    if (failures_count) {
      needs = xs.size() < 2 ? "2 with an objective" : needs + ", failures counted";
    }
    stats_.fallback = std::to_string(xs.size()) + " observations with an objective" +
                      (failures_count ? " and " + std::to_string(failed_count) + " failed" : std::string()) +
                      "; the model needs " + needs +
                      (options_.start_design == BayesianOptions::StartDesign::kRandom ? " (random start)"
                                                                                       : " (space-filling start)");
    spdlog::debug("Bayesian strategy: {}", stats_.fallback);
    // (The same measure for its steering; failures left out altogether steer nothing.)
    if (!count_failures || failed_count == 0) return finish(Start(n, history));
    std::vector<Eigen::VectorXd> fine = pending;
    for (const std::vector<double>& u : xs) {
      fine.push_back(Eigen::Map<const Eigen::VectorXd>(u.data(), static_cast<Eigen::Index>(u.size())));
    }
    return finish(Start(n, history, {}, NearFailures{&failed, &fine}));
  }

  // Fit.
  const auto t_fit = std::chrono::steady_clock::now();
  Eigen::MatrixXd x(static_cast<Eigen::Index>(dims_), static_cast<Eigen::Index>(xs.size()));
  Eigen::VectorXd y(static_cast<Eigen::Index>(ys.size()));
  for (size_t j = 0; j < xs.size(); ++j) {
    x.col(static_cast<Eigen::Index>(j)) = Eigen::Map<const Eigen::VectorXd>(xs[j].data(), static_cast<Eigen::Index>(dims_));
    y[static_cast<Eigen::Index>(j)] = ys[j];
  }
  if (const size_t pulled = PullInOutliers(&y); pulled > 0) {
    spdlog::debug("Bayesian strategy: {} objective(s) far worse than the rest modelled at the outlier fence", pulled);
  }
  // Every objective the same (a plateau: majority-class accuracy everywhere): a flat posterior
  // whose expected improvement only follows the variance, to the corners of the space. The
  // space-filling design goes on instead, and says why.
  if (y.maxCoeff() - y.minCoeff() <= 1e-12 * std::max(1.0, std::fabs(y.mean()))) {
    stats_.fallback = "every objective so far is the same value: nothing to model yet (space-filling design)";
    spdlog::info("Bayesian strategy: {}", stats_.fallback);
    return finish(Start(n, history));
  }
  const uint64_t call_seed = StreamSeed(seed_, history.size());
  kernels::FitOptions fo;
  fo.method = options_.hyper_fit;
  // Warping adds two parameters per numeric coordinate; fitted on few points it bends the
  // cube so that its edges look unexplored and the acquisition runs to the corners (measured:
  // with 12 observations of a 2-d quadratic every first proposal was the corner (1, -1);
  // without warping, a point 0.09 from the optimum). So it waits for enough data.
  const size_t warp_dims = static_cast<size_t>(std::count(warp_mask_.begin(), warp_mask_.end(), uint8_t{1}));
  const size_t warp_min = options_.warp_min_observations > 0 ? options_.warp_min_observations : 10 * warp_dims;
  if (xs.size() >= warp_min) fo.warp_mask = warp_mask_;
  fo.random_restarts = options_.random_restarts;
  fo.max_fit_points = options_.max_fit_points;
  fo.prior_mean_quantile = options_.prior_mean_quantile;
  fo.output_warp_margin = options_.output_warp_margin;
  fo.max_posterior_points = options_.max_posterior_points;
  fo.seed = kernels::SubSeed(call_seed, 1);
  fo.threads = options_.threads;
  // Proposing for several slots at once (a batch, or next to running trials): the long
  // lengthscale prior must win by a margin (kernels/gp_model.h; BayesianOptions).
  if (n + pending.size() > 1) fo.short_prior_margin = options_.parallel_short_prior_margin;
  if (options_.warm_start && last_hp_) fo.initial = &*last_hp_;
  // On a GPU engine the likelihood evaluations of the fit run on the device too.
  fo.engine = engine_.get();
  kernels::Posterior posterior;
  kernels::FitReport fit_report;
  kernels::GpStatus st = kernels::FitGp(x, y, fo, &posterior, &fit_report);
  stats_.fit_seconds = SecondsSince(t_fit);
  stats_.fit_device_evaluations = static_cast<size_t>(fit_report.device_evaluations);
  stats_.fit_device_note = fit_report.device_note;
  if (!fit_report.device_note.empty()) spdlog::debug("Bayesian strategy: fit on the host: {}", fit_report.device_note);
  if (!st.ok()) return finish(Fallback(n, history, "the model could not be fitted: " + st.message(), true));
  if (options_.warm_start) last_hp_ = posterior.hp;
  stats_.output_lambda = fit_report.output_lambda;

  // Acquisition.
  const auto t_acq = std::chrono::steady_clock::now();
  kernels::AcquisitionOptions ao;
  ao.pool_size = options_.pool_size;
  ao.refine_starts = options_.refine_starts;
  ao.refine_starts_per_pick = options_.refine_starts_per_pick;
  ao.fantasy = options_.fantasy;
  ao.seed = kernels::SubSeed(call_seed, 2);
  ao.project = [this](double* u, uint8_t* movable) { Project(u, movable); };
  if (const size_t parallel = pending.size() + n; options_.parallel_exploit && parallel >= BayesianOptions::kExploitMinParallel) {
    for (size_t b = 0; b < n; ++b) {
      if ((history.size() + b) % parallel == 1) {
        ao.exploit_member = b;
        stats_.exploit = true;
        break;
      }
    }
  }
  if (options_.fantasize_failed) ao.failed = std::move(failed);
  ao.pending = std::move(pending);
  ao.exclude = std::move(exclude);
  kernels::Batch batch;
  kernels::AcquisitionReport acq_report;
  st = kernels::SuggestBatch(*engine_, posterior, n, ao, &batch, &acq_report);
  stats_.engine_calls = acq_report.engine_calls;
  stats_.failed = acq_report.failed;
  const kernels::EngineSeconds& es = acq_report.engine_seconds;
  stats_.engine_seconds = {{"load", es.load},           {"evaluate", es.evaluate}, {"pool", es.pool},
                           {"top_k", es.top_k},         {"fantasize", es.fantasize}, {"ascend", es.ascend},
                           {"descend", es.descend}};
  engine_->ReleasePool();  // rebuilt for the next batch; kept, it stayed with ended jobs (a soak)
  stats_.acq_seconds = SecondsSince(t_acq);
  if (!st.ok()) return finish(Fallback(n, history, "the acquisition failed: " + st.message(), true));
  stats_.device = kernels::DeviceName(engine_->device());

  // Decode; a finite space never gets a configuration twice.
  if (const size_t random = Distinct(batch.points, n, history, &out); random > 0) {
    stats_.fallback = std::to_string(random) + " of " + std::to_string(n) +
                      " proposals random: the model found too few distinct new points";
  }
  spdlog::debug("Bayesian strategy: {} proposals from {} observations and {} pending in {:.3f} s (fit {:.3f} s, "
                "acquisition {:.3f} s, {}; output warping lambda {:.3f}, 1 for none)",
                out.size(), stats_.observations, stats_.pending, SecondsSince(t0), stats_.fit_seconds,
                stats_.acq_seconds, stats_.device, stats_.output_lambda);
  return finish(std::move(out));
}

}  // namespace hpo::coordinator
