// coordinator/adaptive.h: the rules of adaptive tuning, as pure functions of objective curves.
//
// What it is: SageMaker's early-stopping median rule, Hyperband's asynchronous successive
// halving (ASHA) schedule, and the completion criteria that look at a job's history
// (BestObjectiveNotImproving, ConvergenceDetected). The core (coordinator/core.h) feeds them
// the objective curves it tracks and acts on their decisions; the Hyperband strategy
// (hyperband_strategy.h) uses the schedule's rungs for its model.
//
// Curves: a trial's curve is the objective metric's values in the order the training program
// emitted them in its current attempt (a retried attempt starts a new curve). One emission is
// one unit of resource, an "epoch": that is how SageMaker's median rule counts ("at each
// emission of the objective metric") and what Hyperband's MinResource/MaxResource count.
//
// Every decision is a pure function of the curves at the moment a trial emits; a coordinator
// that restarts rebuilds the curves from its store and decides the same way from then on.
//
// What it is not: an actor. Nothing here stops a trial, touches the store or reads a clock.
// Thread safety: pure functions and immutable values.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "common/status.h"
#include "proto/tuning_job.h"

namespace hpo::coordinator {

// ---- early stopping: SageMaker's median rule (TrainingJobEarlyStoppingType Auto) ----------

// Earlier trials needed at an epoch before the rule may stop anyone there (with fewer, the
// median of one or two curves would stop trials on noise; Ray Tune's median rule uses 3 too).
inline constexpr size_t kMedianMinPeers = 3;

struct MedianDecision {
  bool stop = false;
  size_t epoch = 0;    // 1-based emission the decision is about (the current curve's length)
  size_t peers = 0;    // earlier trials that reached that epoch
  double median = 0;   // median of their running averages up to the epoch (valid when peers > 0)
  double value = 0;    // the current trial's value at the epoch
  std::string Explain(bool maximize) const;  // one sentence for the trial's stop reason
};

// At the current trial's latest emission k = current.size(): for each earlier trial whose curve
// has at least k values, its running average (mean of its first k values); the median of those;
// stop when current[k-1] is strictly worse than the median (lower when maximizing, higher when
// minimizing) and at least min_peers earlier trials reached epoch k. An empty curve never stops.
MedianDecision MedianRule(std::span<const std::vector<double>* const> earlier, std::span<const double> current,
                          bool maximize, size_t min_peers = kMedianMinPeers);

// ---- Hyperband: asynchronous successive halving with brackets ------------------------------

// The schedule of one training job definition. Brackets b = 0..s_max, s_max =
// floor(log_eta(max/min)): bracket b's rungs are min * eta^(b+k) (k >= 0) below max_resource,
// so bracket 0 is the most aggressive and bracket s_max stops at most once (none when max is
// exactly min * eta^s_max: Hyperband's "run everything to the end" bracket). Trials are spread over brackets by
// Hyperband's budget split: bracket b gets weight eta^(s_max-b) / (s_max-b+1) (many cheap
// starts in the aggressive brackets), assigned deterministically from the trial's index.
struct HyperbandSchedule {
  int64_t min_resource = 1;
  int64_t max_resource = 1;
  int eta = 3;
  bool stop_at_max = true;  // stop a trial that reaches max_resource (false when its own epochs
                            // hyperparameter is max_resource: it ends there by itself); one past
                            // max_resource is stopped either way

  int Brackets() const;                       // s_max + 1
  int BracketOf(int trial_index) const;       // 1-based trial index -> bracket
  std::vector<int64_t> Rungs(int bracket) const;
  std::vector<int64_t> AllRungs() const;      // every bracket's rungs, sorted, distinct
};

// The schedule for one definition: MinResource (default 1) and MaxResource from
// StrategyConfig.HyperbandStrategyConfig, MaxResource otherwise from the definition's
// epochs-type static hyperparameter (validation guarantees one of them). InvalidArgument
// when neither gives a positive integer.
Result<HyperbandSchedule> HyperbandScheduleFor(const proto::TuningJobSpec& spec,
                                               const proto::TrainingJobDefinition& definition);

// The epochs the training program runs by its own hyperparameters: the value of the
// definition's epochs-type static hyperparameter (proto::EpochsHyperParameter) when it is a
// positive integer, else nullopt.
std::optional<int64_t> ProgramEpochs(const proto::TrainingJobDefinition& definition);

struct RungDecision {
  bool stop = false;
  bool at_rung = false;      // the current emission is one of the bracket's rungs (or max)
  int64_t rung = 0;          // the resource level decided at
  int bracket = 0;
  size_t recorded = 0;       // peers of the bracket that reached this rung before
  double cutoff = 0;         // the (1 - 1/eta) quantile of their values (valid when recorded > 0)
  double value = 0;
  bool reached_max = false;  // stopped because it reached max_resource
  std::string Explain(bool maximize) const;
};

// ASHA's decision when the current trial (index trial_index, curve `current`) has just emitted
// its r-th value, r = current.size(): when r is a rung of its bracket, its value is compared
// with the values at r of the bracket's peers that reached r before it (`bracket_peers`: curves
// of other trials of the same bracket; those shorter than r are ignored). It continues when it
// is at least as good as the (1 - 1/eta) quantile of those values (linear interpolation, as
// numpy's percentile), i.e. it is in the top 1/eta; it also continues when no peer has
// reached r yet, so workers never wait for a rung to fill (asynchronous promotion). At
// r == max_resource it stops when schedule.stop_at_max. Below min_resource it never stops.
RungDecision AshaDecide(const HyperbandSchedule& schedule, int trial_index, std::span<const double> current,
                        std::span<const std::vector<double>* const> bracket_peers, bool maximize);

// q-quantile (0 <= q <= 1) of values with linear interpolation (numpy's default); values not
// empty.
double Quantile(std::vector<double> values, double q);

// ---- completion criteria -------------------------------------------------------------------

// BestObjectiveNotImproving: fed the objectives of finished training jobs in the order they
// finished. A job improves when it beats the best so far by more than 1 % of the best's
// magnitude (any strict improvement when the best is 0); `not_improving` counts the jobs since
// the last improvement (TuningJobCompletionDetails.NumberOfTrainingJobsObjectiveNotImproving).
// The best is updated by any better value, so a run of sub-1 % gains still ends the job.
struct NotImprovingTracker {
  std::optional<double> best;
  int64_t not_improving = 0;
  void Add(double value, bool maximize);
};

// ConvergenceDetected (CompleteOnConvergence Enabled). The test, documented in
// docs/architecture.md: with n objectives (in finishing order) and W = max(10, ceil(n / 5)),
// the job has converged when n >= 2 W and the best of all n is no better than the best of the
// first n - W by more than 0.1 % of the spread (max - min) of all n objectives: the last W
// training jobs, a fifth of the work so far, moved the best by a negligible amount relative to
// how much the objective varies over the space (a constant objective converges once n >= 2 W).
bool Converged(std::span<const double> objectives_in_finish_order, bool maximize);

}  // namespace hpo::coordinator
