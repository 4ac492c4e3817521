// proto/validate.h: SageMaker's rules for a tuning-job spec.
//
// Checks every rule of reference/sagemaker-semantics.md section 2 and the enumerations of
// section 1 on a decoded TuningJobSpec: required fields, names and patterns, lengths and counts,
// enumerations, scaling types against range signs and types, Grid (categorical only, job count),
// Hyperband (early stopping Off, resources, epochs inference), MaxWaitTime (managed spot only,
// >= MaxRuntime), instance groups versus instanceType/instanceCount, channels' instance groups
// all-or-none, warm start limits, exactly one of TrainingJobDefinition / TrainingJobDefinitions,
// an objective for every definition, metric names that exist.
//
// Every error is reported, each with its field path in the spelling the user wrote
// (see FieldPath in proto/codec.h) and a message that says what is wrong and what is allowed.
// Validation is pure: no I/O, no clock, no global state; thread-safe.
#pragma once

#include <cstdint>
#include <optional>
#include <set>
#include <string>
#include <string_view>

#include "proto/codec.h"
#include "proto/tuning_job.h"

namespace hpo::proto {

// Quotas that SageMaker raises on request are configuration here, not constants. Defaults are
// SageMaker's raised maxima, so a spec SageMaker would accept after a quota increase passes.
// SageMaker's quotas that an on-prem coordinator sets for itself (hpo coordinator/run/validate
// --max-parallel-training-jobs, --max-training-jobs, --max-training-jobs-random); a spec over
// one is refused as ResourceLimitExceeded (FieldError::quota). SageMaker's fixed limits on
// metric definitions and tunable hyperparameters are settable too (--max-metric-definitions,
// --max-tunable-hyperparameters: a cluster of your own may search more), refused as
// validation errors; the tuning runtime's is fixed.
struct ValidationLimits {
  int64_t max_parallel_training_jobs = 100;
  int64_t max_training_jobs = 10000;         // per tuning job (Random's raised maximum)
  int64_t max_training_jobs_bayesian = 750;  // Bayesian, Hyperband and Grid jobs
  int64_t max_metric_definitions = 40;       // per training job definition (the API's limit)
  int64_t max_tunable_hyperparameters = 30;
  int64_t max_tuning_runtime_seconds = 15768000;
  // When set, every InstanceType must be one of SageMaker's training instance types or one of
  // these (a catalog's own types, or types workers were told to serve), else it is an error with
  // the closest SageMaker type. hpo validate and hpo run check so, and a coordinator with its
  // catalog and its registered workers' types.
  const std::set<std::string>* known_instance_types = nullptr;

  // No quotas: for a check whose quotas are someone else's (hpo submit: the coordinator's, which
  // may allow more metric definitions or hyperparameters than SageMaker; hpo convert: none
  // apply). The tuning runtime's fixed limit stays.
  static ValidationLimits Unlimited() {
    ValidationLimits l;
    l.max_parallel_training_jobs = l.max_training_jobs = l.max_training_jobs_bayesian = INT64_MAX;
    l.max_metric_definitions = l.max_tunable_hyperparameters = INT64_MAX;
    return l;
  }
};

// Returns every rule violation; empty when the spec is valid.
FieldErrors Validate(const TuningJobSpec& spec, Spelling spelling,
                     const ValidationLimits& limits = ValidationLimits());

// The fields a valid spec sets that SageMaker acts on and hpo only keeps (README, "Accepted and
// not enforced"): VpcConfig, the KMS keys, and EnableInterContainerTrafficEncryption true. One
// line per field set, in the spelling given, naming the definition when there are several;
// empty when none. hpo validate prints them and a job's events carry them, so that a user who
// asked for encryption or a VPC is told it is not there.
std::vector<std::string> NotEnforced(const TuningJobSpec& spec, Spelling spelling);

// What a tuning job of a built-in algorithm (proto/builtin_algorithms.h) asks for that SageMaker
// would not do as the user means it, one line each, naming the field in the spelling given:
//   - an objective whose Type is the opposite of its metric's documented direction (for a metric
//     the algorithm's own definitions find: the definition gives no MetricDefinitions), which
//     would have the search look for the worst models;
//   - a tuned hyperparameter the algorithm's documentation does not list as tunable (SageMaker
//     refuses the job), with the closest tunable name when one is near (a misspelling).
// The spec stays valid and runs as written; hpo validate and hpo run print the lines and a job's
// events carry them (kind BuiltInAlgorithm).
std::vector<std::string> BuiltInAlgorithmNotes(const TuningJobSpec& spec, Spelling spelling);

// Whether `type` is one of SageMaker's TrainingInstanceType values (proto/training_instance_types.inc).
bool IsSageMakerTrainingInstanceType(std::string_view type);

// SageMaker's rules for a list of tags (AddTags, and Tags of a create request): at most 50, keys
// 1-128 and unique, values 0-256, both of letters, digits, spaces and _ . : / = + - @. Paths are
// Tags[i].Key / Tags[i].Value in the spelling given.
FieldErrors ValidateTags(const std::vector<Tag>& tags, Spelling spelling);

// The key of the epochs-type static hyperparameter SageMaker infers Hyperband's MaxResource from:
// the first of epochs, numepochs, n-epochs, n_epochs, num_epochs (matched case-insensitively)
// that the definition has, as the user wrote it; nullopt if none.
std::optional<std::string> EpochsHyperParameter(const TrainingJobDefinition& def);

// SageMaker's pattern for tuning job, training job and definition names, [a-zA-Z0-9](-*[a-zA-Z0-9])*:
// letters, digits and hyphens, alphanumeric at both ends. The length limit is the caller's.
bool IsHyphenatedName(std::string_view s);

}  // namespace hpo::proto
