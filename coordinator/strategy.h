// coordinator/strategy.h: what a search strategy is, and how the coordinator gets one.
//
// What it is: the interface between the coordinator core and a search strategy (Random, Grid,
// Bayesian, Hyperband). A strategy turns the history of a
// tuning job (every trial it has proposed so far, finished or not) into proposals of new
// hyperparameter configurations for the free parallel slots.
//
// What it is not: a scheduler or a store. A strategy owns no trials, counts no budgets
// (MaxNumberOfTrainingJobs, parallelism and completion rules are the caller's) and touches no
// files, sockets, clocks or processes. The caller persists what it needs; strategies are built
// to be reconstructed from (spec, seed) after a restart and fed the stored history.
//
// History contract (all strategies): `history` holds one Observation per trial the job has ever
// created (running, succeeded, failed or stopped; a retried attempt is the same trial, not a new
// one), in any order. Proposals are pure functions of (spec, seed, history): calling Propose
// again with the same history gives the same proposals, so a proposal that could not be placed
// is simply asked for again later.
//
// Thread safety: a Strategy is not thread-safe; it is called from one thread at a time (the
// core's, or for ProposesOffCore the coordinator's proposer thread while the core leaves it alone).
#pragma once

#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "common/status.h"
#include "coordinator/search_space.h"
#include "proto/tuning_job.h"

namespace hpo::coordinator {

// One configuration to run: the definition it belongs to (its DefinitionName; "" for a spec
// with a single unnamed TrainingJobDefinition) and the tuned hyperparameters only. The caller
// builds the training program's hyperparameters with MergeHyperParameters.
struct Proposal {
  std::string definition_name;
  Config hyperparameters;
  bool operator==(const Proposal&) const = default;
};

// One trial of the job as a strategy sees it. `hyperparameters` are the tuned values (keys that
// are not tunable, such as static hyperparameters, are ignored if present). `objective` is the
// final objective metric value when the trial emitted one.
struct Observation {
  std::string trial;
  std::string definition_name;
  Config hyperparameters;
  std::optional<double> objective;
  enum Status { kRunning, kSucceeded, kFailed, kStopped } status = kRunning;
  // The objective's values in emission order (this attempt), when the caller tracks curves
  // (jobs with early stopping or Hyperband); null otherwise. Owned by the caller, valid for
  // the duration of the Propose/Exhausted call.
  const std::vector<double>* curve = nullptr;
  // A training job of a warm-start parent job (not one of this job's own). With
  // IdenticalDataAndAlgorithm parents' observations are exactly like the job's own and this is
  // false; with TransferLearning it is true and the Bayesian model keeps them apart by a task
  // coordinate (coordinator/bayesian_strategy.h).
  bool prior = false;
};

// The training program's hyperparameters: the definition's StaticHyperParameters, overridden
// by the tuned values, plus "_tuning_objective_metric" = objective_metric (added last, as
// SageMaker's AMT does, so it wins over a static or tuned value of that name).
Config MergeHyperParameters(const proto::TrainingJobDefinition& definition, const Config& tuned,
                            const std::string& objective_metric);

// What the last Propose call cost and how it decided, for logs and exported metrics. Strategies
// that keep no model (Random, Grid) report none.
struct SuggestStats {
  double seconds = 0;         // wall time of the whole Propose call
  double fit_seconds = 0;     // fitting the surrogate (hyperparameters and factorisation)
  double acq_seconds = 0;     // optimising the acquisition over candidates
  size_t observations = 0;    // trials with an objective the model was fitted on
  size_t pending = 0;         // running trials fantasised
  size_t failed = 0;          // failed trials fantasised at the worst objective (Bayesian)
  size_t proposals = 0;       // configurations returned
  std::string device;         // engine that ran ("cpu", "cuda"); "" when the model did not run
  std::string fallback;       // "" when the model proposed; else why random search proposed
  bool exploit = false;       // Bayesian: one proposal is the posterior mean's minimiser
  size_t engine_calls = 0;    // Bayesian: calls to the GP engine in the acquisition (device
                              // round trips on the GPU)
  // Bayesian: wall seconds of the acquisition inside the engine's calls, by kind ("load",
  // "evaluate", "pool", "top_k", "fantasize", "ascend", "descend"); the rest of acq_seconds is host work.
  std::vector<std::pair<std::string, double>> engine_seconds;
  size_t fit_device_evaluations = 0;  // Bayesian: likelihood evaluations of the fit on the device
  std::string fit_device_note;        // Bayesian: why the fit stayed on the host on a GPU engine
  double output_lambda = 1.0;         // Bayesian: the objectives' output warping (1: none)
};

class Strategy {
 public:
  virtual ~Strategy();

  // At most n new configurations (fewer, possibly none, when the space is exhausted). Never
  // a configuration already in `history` while the space is finite and not exhausted (Grid:
  // never at all). Proposals within one call are distinct in finite spaces.
  virtual std::vector<Proposal> Propose(size_t n, const std::vector<Observation>& history) = 0;
  // True when every configuration of a finite space is in `history`; always false for
  // spaces with a continuous (non-degenerate) range.
  virtual bool Exhausted(const std::vector<Observation>& history) const = 0;
  // "Random", "Grid", ...: the spec's Strategy value.
  virtual std::string Name() const = 0;
  // How far ahead of results a proposal may be made (coordinator/core.h, assign_ahead):
  // kAlways when proposals do not learn from results, kWhileShort only while the job's training
  // jobs are short, kNever when each proposal wants the latest result.
  enum class Ahead { kAlways, kWhileShort, kNever };
  virtual Ahead ProposeAhead() const = 0;
  // True when Propose may take long enough (seconds: a model fitted on thousands of trials) that
  // a coordinator should run it outside its core, on a snapshot of the history
  // (CoreOptions::propose_off_core). Such a strategy's Propose is then called from another thread
  // while the core calls none of its methods (Hyperband's Schedule excepted), with a history
  // whose curves are copies owned by the request.
  virtual bool ProposesOffCore() const { return false; }
  // Statistics of the last Propose call, or null for strategies without a model (the default).
  // The pointer stays valid for the strategy's lifetime; its content changes with each Propose.
  virtual const SuggestStats* LastSuggestStats() const { return nullptr; }
};

// Builds the strategy the spec names (HyperParameterTuningJobConfig.Strategy). `seed` is the
// job's seed (RandomSeed when given; otherwise one the caller chose and persisted).
// Errors: InvalidArgument for a missing or unknown strategy, a spec without training job
// definitions, or ranges the search space rejects (see SearchSpace::FromSpec), Grid with a
// non-categorical range, Hyperband without a maximum resource. Bayesian and Hyperband use
// BayesianOptions' defaults (device auto: CUDA when available).
Result<std::unique_ptr<Strategy>> MakeStrategy(const proto::TuningJobSpec& spec, uint64_t seed);

// ---- shared by the strategies --------------------------------------------------------------

// The search space of one training job definition.
struct DefinitionSpace {
  std::string name;  // DefinitionName, "" when absent
  SearchSpace space;
};

// One DefinitionSpace per definition of spec.Definitions(), in spec order. InvalidArgument when
// the spec has no definition or a space is rejected.
Result<std::vector<DefinitionSpace>> DefinitionSpaces(const proto::TuningJobSpec& spec);

// The definition an observation belongs to: with a single definition always 0 (whatever name
// the observation carries); otherwise the index of the definition with that name, or nullopt.
std::optional<size_t> FindDefinition(const std::vector<DefinitionSpace>& spaces, const std::string& name);

// Sum of the definitions' cardinalities when every space is finite (and the sum fits in
// 2^62), else nullopt.
std::optional<uint64_t> TotalCardinality(const std::vector<DefinitionSpace>& spaces);

// (definition index, SearchSpace::IndexOf) of every observation whose definition has a finite
// space and whose configuration lies in it; observations outside the space are left out, and so
// are TransferLearning parents' (Observation::prior): their configurations ran on other data or
// another algorithm, so this job runs them again (IdenticalDataAndAlgorithm parents' count as
// this job's own: a finite space never re-runs one).
using ConfigKey = std::pair<size_t, uint64_t>;
std::set<ConfigKey> ProposedKeys(const std::vector<DefinitionSpace>& spaces, const std::vector<Observation>& history);

// ProposedKeys kept from one call to the next. A job's history grows by appending (its parents'
// training jobs, then its own in creation order), so only the entries past those seen before
// are indexed: rebuilding the set on every proposal and every "exhausted?" check made a Random
// job over integer and categorical ranges cost time in the square of its training jobs (a
// 10,000-job one took 9 ms of coordinator time per job, and its launches fell from 64 to 17 a
// second). A history that does not extend the one seen before (shorter, or another trial where
// the last seen one was, or the first or that one with another configuration) is indexed again
// from the start. Thread safety: the calls serialize
// on an internal mutex (Exhausted may be asked while a proposal runs off the core).
class ProposedKeyCache {
 public:
  // Calls `use` with the keys of `history` and how many of them each definition has, under the
  // lock; returns what it returns.
  template <class F>
  auto With(const std::vector<DefinitionSpace>& spaces, const std::vector<Observation>& history, F&& use) const {
    std::lock_guard<std::mutex> lock(mu_);
    Update(spaces, history);
    return use(static_cast<const std::set<ConfigKey>&>(keys_), static_cast<const std::vector<uint64_t>&>(per_definition_));
  }

 private:
  void Update(const std::vector<DefinitionSpace>& spaces, const std::vector<Observation>& history) const;
  mutable std::mutex mu_;
  mutable std::set<ConfigKey> keys_;
  mutable std::vector<uint64_t> per_definition_;
  mutable size_t seen_ = 0;            // history entries indexed
  mutable Observation first_, last_;  // their first and last (name, definition, configuration)
};

}  // namespace hpo::coordinator
