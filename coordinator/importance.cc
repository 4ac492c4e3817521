#include "coordinator/importance.h"

#include <algorithm>
#include <cmath>
#include <limits>

#include <Eigen/Core>

#include "coordinator/adaptive.h"
#include "coordinator/bayesian_strategy.h"
#include "coordinator/rng.h"
#include "kernels/gp_model.h"

namespace hpo::coordinator {

Result<ImportanceReport> EstimateImportance(const SearchSpace& space,
                                            const std::vector<std::pair<Config, double>>& observations,
                                            bool maximize, const ImportanceOptions& options) {
  const auto& dims = space.dimensions();
  if (dims.empty() || space.UnitDims() == 0) {
    return Status::InvalidArgument("the search space has no tuned hyperparameter");
  }
  if (observations.size() < options.min_observations) {
    return Status::FailedPrecondition(std::to_string(observations.size()) + " training job" +
                                      (observations.size() == 1 ? "" : "s") +
                                      " reported the objective; the importance model needs at least " +
                                      std::to_string(options.min_observations));
  }
  const auto d = static_cast<Eigen::Index>(space.UnitDims());
  const auto n = static_cast<Eigen::Index>(observations.size());
  Eigen::MatrixXd x(d, n);
  Eigen::VectorXd y(n);
  for (Eigen::Index j = 0; j < n; ++j) {
    const auto& [config, value] = observations[static_cast<size_t>(j)];
    if (!std::isfinite(value)) {
      return Status::InvalidArgument("the objective value of observation " + std::to_string(j + 1) + " is not finite");
    }
    const std::vector<double> u = space.ToUnit(config);
    x.col(j) = Eigen::Map<const Eigen::VectorXd>(u.data(), d);
    y[j] = maximize ? -value : value;
  }
  ImportanceReport report;
  report.observations = observations.size();
  for (const auto& dim : dims) report.parameters.push_back({dim.name, 0.0, 0.0});
  PullInOutliers(&y);  // one diverged run would otherwise be all the variance there is
  if (y.maxCoeff() - y.minCoeff() <= 1e-12 * std::max(1.0, std::fabs(y.mean()))) {
    report.flat = true;
    return report;
  }

  kernels::FitOptions fo;
  // The model's own view, without the Bayesian strategy's leanings: the prior mean is the
  // targets' mean (not a pessimistic quantile, which makes unexplored corners look bad and so
  // their hyperparameters important), and the targets are not warped (the shares are of the
  // objective's own scale).
  fo.prior_mean_quantile = std::numeric_limits<double>::quiet_NaN();
  fo.output_warp_margin = std::numeric_limits<double>::quiet_NaN();
  fo.random_restarts = 2;
  fo.seed = options.seed;
  fo.threads = options.threads;
  kernels::Posterior posterior;
  kernels::FitReport fit_report;
  if (kernels::GpStatus st = kernels::FitGp(x, y, fo, &posterior, &fit_report); !st.ok()) {
    return Status::Internal("the importance model could not be fitted: " + st.message());
  }

  // Two independent sets of configurations, A and B, drawn as Random search draws them; for each
  // hyperparameter i, AB_i is A with i's coordinates taken from B.
  // The mean costs O(n D) a point and (k + 2) samples points are needed: past kWork the samples
  // shrink (not below 512), which bounds a large job's estimate at about a second here.
  constexpr double kWork = 4e7;
  const auto k = static_cast<Eigen::Index>(dims.size());
  const double per_sample = static_cast<double>(k + 2) * static_cast<double>(posterior.size());
  const size_t bounded = static_cast<size_t>(std::max(512.0, kWork / per_sample));
  const size_t samples = std::max<size_t>(std::min(options.samples, bounded), 64);
  const auto ns = static_cast<Eigen::Index>(samples);
  Rng rng(options.seed ^ 0x9e3779b97f4a7c15ULL);
  Eigen::MatrixXd a(d, ns), b(d, ns);
  for (Eigen::Index s = 0; s < ns; ++s) {
    const std::vector<double> ua = space.ToUnit(space.Sample(rng));
    const std::vector<double> ub = space.ToUnit(space.Sample(rng));
    a.col(s) = Eigen::Map<const Eigen::VectorXd>(ua.data(), d);
    b.col(s) = Eigen::Map<const Eigen::VectorXd>(ub.data(), d);
  }
  Eigen::MatrixXd all(d, ns * (k + 2));
  all.leftCols(ns) = a;
  all.middleCols(ns, ns) = b;
  for (Eigen::Index i = 0; i < k; ++i) {
    auto ab = all.middleCols(ns * (i + 2), ns);
    ab = a;
    const auto& dim = dims[static_cast<size_t>(i)];
    const auto off = static_cast<Eigen::Index>(dim.unit_offset), width = static_cast<Eigen::Index>(dim.UnitWidth());
    ab.middleRows(off, width) = b.middleRows(off, width);
  }
  const Eigen::VectorXd f = kernels::PosteriorMean(posterior, all);
  const Eigen::VectorXd fa = f.head(ns), fb = f.segment(ns, ns);
  const double mean = (fa.sum() + fb.sum()) / static_cast<double>(2 * ns);
  const double variance =
      ((fa.array() - mean).square().sum() + (fb.array() - mean).square().sum()) / static_cast<double>(2 * ns - 1);
  // The posterior mean hardly moves over the space (standardised targets: 1 is the observed
  // spread): the fit found no structure, so no share means anything.
  if (!(variance > 1e-10)) {
    report.flat = true;
    return report;
  }
  for (Eigen::Index i = 0; i < k; ++i) {
    const Eigen::VectorXd fab = f.segment(ns * (i + 2), ns);
    const double first = (fb.array() * (fab - fa).array()).mean() / variance;
    const double total = 0.5 * (fa - fab).array().square().mean() / variance;
    auto& p = report.parameters[static_cast<size_t>(i)];
    p.first_order = std::clamp(first, 0.0, 1.0);
    // A share with its interactions is at least its share alone; an estimate below is the
    // samples' noise ("99 % alone, 98 % with interactions" read as a contradiction). One
    // hyperparameter holds all of the variance, exactly.
    p.total = std::max(std::clamp(total, 0.0, 1.0), p.first_order);
    if (k == 1) p.first_order = p.total = 1.0;
  }
  std::stable_sort(report.parameters.begin(), report.parameters.end(), [](const auto& l, const auto& r) {
    if (l.total != r.total) return l.total > r.total;
    if (l.first_order != r.first_order) return l.first_order > r.first_order;
    return l.name < r.name;
  });
  return report;
}

bool StopsTrainingJobsEarly(const proto::TuningJobSpec& spec) {
  const auto& c = spec.hyper_parameter_tuning_job_config;
  return c &&
         (c->strategy.value_or("") == "Hyperband" || c->training_job_early_stopping_type.value_or("Off") == "Auto");
}

namespace {

// A definition's ended training jobs at one budget (EstimateJobImportance): the observations,
// and the budget (0: final objectives of those that Completed), or why there are too few.
Result<std::pair<std::vector<std::pair<Config, double>>, int64_t>> AtOneBudget(
    const proto::TuningJobSpec& spec, const proto::TrainingJobDefinition& def,
    const std::vector<const ObservedTrainingJob*>& ended, size_t min_observations) {
  std::vector<std::pair<Config, double>> obs;
  bool any_curve = false;
  for (const ObservedTrainingJob* j : ended) any_curve = any_curve || !j->curve.empty();
  if (!any_curve) {
    for (const ObservedTrainingJob* j : ended) {
      if (j->status == "Completed") obs.emplace_back(j->tuned, j->objective);
    }
    if (obs.size() < min_observations) {
      return Status::FailedPrecondition(
          std::to_string(obs.size()) + " training job" + (obs.size() == 1 ? "" : "s") +
          " ran to completion; the importance model needs at least " + std::to_string(min_observations) +
          " (the job stops training jobs early, and their objectives are from smaller budgets)");
    }
    return std::make_pair(std::move(obs), int64_t{0});
  }
  // The candidate budgets: Hyperband's rungs, or every length a curve has.
  std::vector<int64_t> levels;
  Result<HyperbandSchedule> schedule = Status::NotFound("not Hyperband");
  if (spec.hyper_parameter_tuning_job_config->strategy.value_or("") == "Hyperband") {
    schedule = HyperbandScheduleFor(spec, def);
  }
  if (schedule.ok()) {
    levels = schedule->AllRungs();
  } else {
    for (const ObservedTrainingJob* j : ended) levels.push_back(static_cast<int64_t>(j->curve.size()));
    std::sort(levels.begin(), levels.end());
    levels.erase(std::unique(levels.begin(), levels.end()), levels.end());
  }
  size_t best_reached = 0;
  for (auto level = levels.rbegin(); level != levels.rend(); ++level) {
    if (*level <= 0) continue;
    size_t reached = 0;
    for (const ObservedTrainingJob* j : ended) reached += static_cast<int64_t>(j->curve.size()) >= *level;
    best_reached = std::max(best_reached, reached);
    if (reached < min_observations) continue;
    for (const ObservedTrainingJob* j : ended) {
      if (static_cast<int64_t>(j->curve.size()) >= *level) {
        obs.emplace_back(j->tuned, j->curve[static_cast<size_t>(*level - 1)]);
      }
    }
    return std::make_pair(std::move(obs), *level);
  }
  return Status::FailedPrecondition(
      std::to_string(best_reached) + " training job" + (best_reached == 1 ? "" : "s") +
      " reached a common budget; the importance model needs at least " + std::to_string(min_observations) +
      " (the job stops training jobs early, so they are compared at one budget, not by their final objectives)");
}

}  // namespace

std::vector<std::pair<std::string, Result<ImportanceReport>>> EstimateJobImportance(
    const proto::TuningJobSpec& spec, const std::vector<ObservedTrainingJob>& jobs, const ImportanceOptions& options) {
  std::vector<std::pair<std::string, Result<ImportanceReport>>> out;
  const auto defs = spec.Definitions();
  const bool early = StopsTrainingJobsEarly(spec);
  for (const proto::TrainingJobDefinition* def : defs) {
    const std::string name = defs.size() > 1 ? def->definition_name.value_or("") : "";
    Result<SearchSpace> space = SearchSpace::FromSpec(spec, *def);
    if (!space.ok()) {
      out.emplace_back(name, space.status());
      continue;
    }
    if (space->dimensions().empty()) continue;
    std::vector<const ObservedTrainingJob*> ended;
    for (const ObservedTrainingJob& j : jobs) {
      if (j.status == "InProgress" || j.status == "Stopping") continue;
      if (defs.size() == 1 || j.definition == name) ended.push_back(&j);
    }
    if (!early) {
      std::vector<std::pair<Config, double>> obs;
      for (const ObservedTrainingJob* j : ended) obs.emplace_back(j->tuned, j->objective);
      out.emplace_back(name, EstimateImportance(*space, obs, /*maximize=*/false, options));
      continue;
    }
    auto at = AtOneBudget(spec, *def, ended, options.min_observations);
    if (!at.ok()) {
      out.emplace_back(name, at.status());
      continue;
    }
    Result<ImportanceReport> rep = EstimateImportance(*space, at->first, /*maximize=*/false, options);
    if (rep.ok()) rep->budget = at->second;
    out.emplace_back(name, std::move(rep));
  }
  return out;
}

}  // namespace hpo::coordinator
