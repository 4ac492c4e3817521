// coordinator/hyperband_strategy.h: SageMaker's Hyperband strategy: which configurations to
// start. (Which running trials to stop is the core's, by AshaDecide in coordinator/adaptive.h;
// the two share the schedule.)
//
// Proposals come from the Bayesian model once there is enough data and from random search
// before (BOHB-style): the model is fitted on the objective values at one resource level, the
// highest rung that at least min_observations training jobs reached (their curves say what
// they emitted there), so that configurations are compared at the same budget. Trials that have
// not reached that level are pending (fantasised) while they run; once they ended below it
// (stopped at a lower rung), their last value stands in: pessimistic for a learning curve, and
// it keeps the model away from regions that were already found poor (left out, those regions
// would look unexplored and attract the acquisition: an integration test caught the model
// proposing the corners that had just been stopped). Trials without a tracked curve
// (warm-start parents) enter with their final objective. Before any level has enough training
// jobs the Bayesian strategy itself falls back to random search, and says so in
// LastSuggestStats().
//
// With several training job definitions each has its own schedule; "level k" is then the k-th
// distinct rung of each definition's schedule (its max_resource for k past its last rung).
//
// Reproducibility and thread safety: as BayesianStrategy.
#pragma once

#include <memory>
#include <vector>

#include "coordinator/adaptive.h"
#include "coordinator/bayesian_strategy.h"
#include "coordinator/strategy.h"

namespace hpo::coordinator {

class HyperbandStrategy : public Strategy {
 public:
  // Errors as BayesianStrategy::Create and HyperbandScheduleFor.
  static Result<std::unique_ptr<HyperbandStrategy>> Create(const proto::TuningJobSpec& spec, uint64_t seed,
                                                           const BayesianOptions& options = BayesianOptions());

  std::vector<Proposal> Propose(size_t n, const std::vector<Observation>& history) override;
  bool Exhausted(const std::vector<Observation>& history) const override { return model_->Exhausted(history); }
  std::string Name() const override { return "Hyperband"; }
  // Rungs learn from results; one training job early costs little when they are short.
  Ahead ProposeAhead() const override { return Ahead::kWhileShort; }
  // The model's fit, as Bayesian's (the history's curves are the request's copies).
  bool ProposesOffCore() const override { return true; }
  const SuggestStats* LastSuggestStats() const override { return model_->LastSuggestStats(); }

  // The schedule of the definition named `definition_name` (the first for an unknown name).
  // Fixed at Create: unlike the other methods it may be called while Propose runs on another
  // thread (the core decides early stops by it while a proposal is out).
  const HyperbandSchedule& Schedule(const std::string& definition_name) const;
  // The history as the model sees it (exposed for tests): objectives at the chosen level.
  std::vector<Observation> ModelView(const std::vector<Observation>& history) const;

 private:
  HyperbandStrategy(std::vector<std::string> names, std::vector<HyperbandSchedule> schedules,
                    std::unique_ptr<BayesianStrategy> model);
  size_t MinObservations() const;

  std::vector<std::string> names_;  // definition names, spec order
  std::vector<HyperbandSchedule> schedules_;
  std::vector<std::vector<int64_t>> levels_;  // per definition: AllRungs()
  std::unique_ptr<BayesianStrategy> model_;
};

}  // namespace hpo::coordinator
