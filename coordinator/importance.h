// coordinator/importance.h: how much each tuned hyperparameter mattered to a tuning job's
// objective, from the training jobs it ran.
//
// What it computes: a Gaussian process (kernels/gp_model.h, the Bayesian strategy's model, its
// hyperparameters by maximum posterior) is fitted to the objective values of the training jobs
// that reported one, at their configurations in the search space's unit cube. The importance of a
// hyperparameter is a pair of Sobol indices of that model's posterior mean over the search space,
// with configurations drawn as Random search draws them (SearchSpace::Sample: uniform in the
// scaled space, categoricals uniform over their values):
//   - first order: the share of the predicted objective's variance that the hyperparameter
//     explains alone (Saltelli's 2010 estimator),
//   - total: its share with every interaction it takes part in (Jansen's estimator).
// First-order shares sum to at most about 1; what they leave is interaction. Total shares may sum
// to more than 1. Both are Monte Carlo estimates from `samples` pairs of configurations (standard
// error about 1 / sqrt(samples) of the variance), clamped to [0, 1], and reproducible for a seed.
// A categorical range is one hyperparameter (its one-hot coordinates move together).
//
// What it says, and what not: how the objective varies across the ranges searched, as far as the
// training jobs so far show it. A hyperparameter whose range is narrow, or that the search barely
// moved, shows little importance whatever it would do elsewhere. With few training jobs (fewer
// than `min_observations`) nothing is estimated: FailedPrecondition, saying how many there are.
//
// Thread safety: a pure function of its arguments; the fit may use several threads.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "common/status.h"
#include "coordinator/search_space.h"

namespace hpo::coordinator {

struct ImportanceOptions {
  // Pairs of configurations for the Sobol estimators; fewer (down to 512) when the training jobs
  // times the hyperparameters would make the estimate slow (past 4e7 / ((k + 2) n) for k
  // hyperparameters and n training jobs in the model: 20 and 750 give about 2,400).
  size_t samples = 4096;
  uint64_t seed = 1;              // the configurations drawn and the fit's restarts
  size_t min_observations = 8;    // fewer training jobs with an objective: FailedPrecondition
  int threads = 0;                // the fit's threads (kernels::FitOptions::threads)
};

struct ParameterImportance {
  std::string name;
  double first_order = 0;  // in [0, 1]
  double total = 0;        // in [first_order, 1]; both 1 for a space of one hyperparameter
};

struct ImportanceReport {
  // One per dimension of the space, most important first (by total, then first order, then name).
  std::vector<ParameterImportance> parameters;
  size_t observations = 0;  // training jobs the model was fitted on
  // The budget the training jobs were compared at, when the job stops some early (Hyperband,
  // TrainingJobEarlyStoppingType Auto): each one's objective after this many emissions (its
  // curve's value there); 0: their final objectives.
  int64_t budget = 0;
  // The model predicts the same objective everywhere (all values equal, or no structure the fit
  // could find): every share is 0.
  bool flat = false;
};

// `observations`: configurations (tuned hyperparameters by name; names outside the space are
// ignored, a value outside its range is clamped) with their objective values. `maximize` only
// orients the model (the shares do not depend on it). InvalidArgument for a space without
// dimensions or a non-finite value; FailedPrecondition for too few observations; Internal when
// the model cannot be fitted.
Result<ImportanceReport> EstimateImportance(const SearchSpace& space,
                                            const std::vector<std::pair<Config, double>>& observations,
                                            bool maximize, const ImportanceOptions& options = {});

// A training job as the job-level estimate reads it: its definition's name ("" with one
// definition), its TrainingJobStatus, its tuned hyperparameters, its final objective value and
// its curve (the objective's values in emission order, GET /hpo/v1/curves; empty: not known).
struct ObservedTrainingJob {
  std::string definition;
  std::string status;
  Config tuned;
  double objective = 0;
  std::vector<double> curve;
};

// Whether the job stops training jobs before their end by their objective's curves (Hyperband,
// or TrainingJobEarlyStoppingType Auto): their final objectives are then from different budgets.
bool StopsTrainingJobsEarly(const proto::TuningJobSpec& spec);

// One estimate per training job definition of `spec` that tunes something, in the spec's order:
// the definition's name ("" with one definition) and its estimate, or why there is none (as
// EstimateImportance; InvalidArgument too for ranges SearchSpace refuses). With several
// definitions each takes its own training jobs (by `definition`); with one, all of them. A
// training job still running (InProgress, Stopping) is left out: its value may still change.
// When the job stops training jobs early (StopsTrainingJobsEarly), final objectives are not
// compared: a configuration stopped after one epoch looked worse than one that ran nine, and a
// hyperparameter with no effect read 49%. The training jobs are compared at one budget instead,
// as Hyperband's model compares them (coordinator/hyperband_strategy.h): the largest number of
// emissions (Hyperband: of its rungs) that at least min_observations of their curves reached,
// each at its value there (ImportanceReport::budget); those whose curve stopped short are left
// out. Without curves, only training jobs that Completed enter, with their final objectives.
// What `hpo run`, `hpo describe -o table` and the dashboard's job page show.
std::vector<std::pair<std::string, Result<ImportanceReport>>> EstimateJobImportance(
    const proto::TuningJobSpec& spec, const std::vector<ObservedTrainingJob>& jobs, const ImportanceOptions& options = {});

}  // namespace hpo::coordinator
