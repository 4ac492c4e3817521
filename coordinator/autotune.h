// coordinator/autotune.h: what SageMaker's Autotune (`Autotune{Mode: Enabled}`) chooses for a job.
//
// What it is: one pure function from a validated spec to the spec the job runs, plus the list of
// choices made, so that people can read them (`hpo validate`, the job's events, Describe shows
// the spec the job runs). SageMaker documents *which* fields Autotune may set (ParameterRanges from
// AutoParameters, Strategy, ResourceLimits, TrainingJobEarlyStoppingType, RetryStrategy,
// ConvergenceDetected) but not how it chooses; the rules below are hpo's, stated here and in the
// README, and a value the user wrote is never changed.
//
// AutoParameters {Name, ValueHint}: the SageMaker Python SDK's `autotune=True` sends every
// estimator hyperparameter not kept static this way, with its current value as the hint, so the
// hint is a value known to work and the range is built around it:
//   - names starting with "sagemaker_" or "_" (the frameworks' settings, _tuning_objective_metric)
//     are never tuned: they stay static hyperparameters with the hint as their value;
//   - with the Hyperband strategy and no MaxResource, an epochs-type name (epochs, numepochs,
//     n-epochs, n_epochs, num_epochs) stays static too: Hyperband's maximum resource comes from it;
//   - "true" / "false" in any case: CategoricalParameterRanges [hint, the other one], same case;
//   - an integer h >= 1 ("64"): IntegerParameterRanges [max(1, floor(h/4)), 4h], Logarithmic
//     when the range spans a factor of 10 or more, else Linear;
//   - a decimal number h with '.', 'e' or 'E' ("0.1", "1e-3"): ContinuousParameterRanges
//       0 < h <= 0.5: [h/10, min(10h, (1+h)/2)] Logarithmic (learning rates, dropout);
//       0.5 < h < 1:  [h/10, (1+h)/2] ReverseLogarithmic (momentum-like values near 1);
//       h >= 1:       [h/10, 10h] Logarithmic;
//     bounds are written with 6 significant digits;
//   - anything else (0, negative numbers: often "off" or "unlimited"; other text; numbers too large
//     to scale) is not eligible: it stays a static hyperparameter with the hint as its value, and
//     the choice says why.
//   With the Grid strategy (which searches categorical ranges only) a numeric hint becomes a
//   CategoricalParameterRanges of up to five values: the range's ends, the points halfway from the
//   hint to each end in its scaled space (the quarter points when the hint is at an end), and the
//   hint itself.
//   Inferred ranges go to the block the AutoParameters were in (the job's ParameterRanges or the
//   definition's HyperParameterRanges); a parameter kept static goes to the StaticHyperParameters of
//   the definitions that block applies to.
//
// Fields left out (only when left out):
//   Strategy                         Bayesian
//   ResourceLimits.MaxNumberOfTrainingJobs   10 per tuned hyperparameter, between 20 and 100
//                                    (not for Grid, which runs every combination)
//   ResourceLimits.MaxParallelTrainingJobs   a tenth of MaxNumberOfTrainingJobs, between 2 and 10
//                                    (Grid: 10), and at most the coordinator's limit
//   TrainingJobEarlyStoppingType     Auto for Bayesian and Random jobs with one definition
//   RetryStrategy.MaximumRetryAttempts       2 (per definition; infrastructure failures only)
//   TuningJobCompletionCriteria.ConvergenceDetected.CompleteOnConvergence   Enabled
//
// The result keeps `Autotune` and has no AutoParameters, so resolving it again changes nothing.
// A job whose AutoParameters are all ineligible and that has no other range gets InvalidArgument
// naming each parameter and why. Without `Autotune` the spec comes back unchanged, no choices.
//
// Thread safety: a pure function.
#pragma once

#include <string>
#include <vector>

#include "common/status.h"
#include "proto/codec.h"
#include "proto/tuning_job.h"
#include "proto/validate.h"

namespace hpo::coordinator {

struct AutotuneChoice {
  std::string field;   // path of the field set, in the spec's spelling: "HyperParameterTuningJobConfig.Strategy",
                       // "spec.hyperParameterTuningJobConfig.strategy"
  std::string value;   // what was chosen, as text ("Bayesian"; "0.01 .. 0.55, Logarithmic")
  std::string reason;  // why, in a sentence a user can check
};

struct AutotuneResult {
  proto::TuningJobSpec spec;            // the spec the job runs
  std::vector<AutotuneChoice> choices;  // in field order; empty without Autotune
};

// `spec` must have passed proto::Validate. `limits` caps MaxParallelTrainingJobs; `spelling` is the
// one the spec was written in (the choices' field paths use it, as validation errors do).
Result<AutotuneResult> ResolveAutotune(const proto::TuningJobSpec& spec, const proto::ValidationLimits& limits,
                                       proto::Spelling spelling = proto::Spelling::kApi);

}  // namespace hpo::coordinator
