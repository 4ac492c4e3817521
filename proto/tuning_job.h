// proto/tuning_job.h: the one C++ model of a SageMaker hyperparameter tuning job.
//
// What it is: plain value types for every field of the `HyperParameterTuningJob` Kubernetes
// resource (ACK sagemaker-controller, spec and status) and of the SageMaker API shapes
// `CreateHyperParameterTuningJob`, `DescribeHyperParameterTuningJob` and
// `ListTrainingJobsForHyperParameterTuningJob`, including the API fields the CRD leaves out
// (StrategyConfig, RandomSeed, Environment, ResourceLimits.MaxRuntimeInSeconds,
// BestObjectiveNotImproving, ConvergenceDetected, OutputDataConfig.CompressionType,
// StoppingCondition.MaxPendingTimeInSeconds, AutoParameters, Autotune).
//
// What it is not: a parser or a validator. proto/codec.h reads and writes this model in both
// spellings (CRD camelCase and SageMaker PascalCase); proto/validate.h checks the SageMaker
// rules. Nothing here touches files, sockets or processes.
//
// Conventions:
// - Member names are the snake_case of the SageMaker API member name; the codec's schema table
//   (proto/schema.h) maps each member to both spellings.
// - std::optional means "absent in the document"; an empty vector or map is written back as
//   absent too, so absent and empty are the same value.
// - Values the API carries as strings stay strings (range bounds, hyperparameter values), so a
//   document read and written back keeps "0.10" as "0.10".
// - Enumerations stay strings here so that an unknown value survives decoding and is reported
//   by validation with its field path rather than lost.
// - Every type is a regular value: copyable, comparable with ==, no hidden sharing.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace hpo::proto {

using StringMap = std::map<std::string, std::string>;

// A point in time with millisecond resolution. The SageMaker JSON spelling writes it as epoch
// seconds (a number, fractional milliseconds allowed); the CRD spelling writes RFC 3339 UTC text
// ("2026-11-28T23:50:33.123Z").
struct Timestamp {
  int64_t unix_millis = 0;
  bool operator==(const Timestamp&) const = default;
};

// ---------------------------------------------------------------------------------------------
// Spec: HyperParameterTuningJobConfig
// ---------------------------------------------------------------------------------------------

// HyperParameterTuningJobObjective / TuningObjective.
struct Objective {
  std::optional<std::string> type;         // "Maximize" | "Minimize"; CRD spelling `type_`
  std::optional<std::string> metric_name;  // 1-255 chars; must name a MetricDefinition
  bool operator==(const Objective&) const = default;
};

// IntegerParameterRange and ContinuousParameterRange share this shape.
struct NumericRange {
  std::optional<std::string> name;
  std::optional<std::string> min_value;     // decimal text, kept exactly as written
  std::optional<std::string> max_value;
  std::optional<std::string> scaling_type;  // Auto | Linear | Logarithmic | ReverseLogarithmic
  bool operator==(const NumericRange&) const = default;
};

struct CategoricalRange {
  std::optional<std::string> name;
  std::vector<std::string> values;  // 1-30 values
  bool operator==(const CategoricalRange&) const = default;
};

// AutoParameters: a name and a hint from which SageMaker (Autotune) infers a range.
struct AutoParameter {
  std::optional<std::string> name;
  std::optional<std::string> value_hint;
  bool operator==(const AutoParameter&) const = default;
};

struct ParameterRanges {
  std::vector<NumericRange> integer_parameter_ranges;
  std::vector<NumericRange> continuous_parameter_ranges;
  std::vector<CategoricalRange> categorical_parameter_ranges;
  std::vector<AutoParameter> auto_parameters;
  bool operator==(const ParameterRanges&) const = default;
};

struct ResourceLimits {
  std::optional<int64_t> max_number_of_training_jobs;  // >= 1; optional for Grid
  std::optional<int64_t> max_parallel_training_jobs;   // >= 1, required
  std::optional<int64_t> max_runtime_in_seconds;       // tuning job wall time, 120-15768000
  bool operator==(const ResourceLimits&) const = default;
};

struct HyperbandStrategyConfig {
  std::optional<int64_t> min_resource;  // >= 1
  std::optional<int64_t> max_resource;  // >= 1, <= 20000
  bool operator==(const HyperbandStrategyConfig&) const = default;
};

struct StrategyConfig {
  std::optional<HyperbandStrategyConfig> hyperband_strategy_config;
  bool operator==(const StrategyConfig&) const = default;
};

struct BestObjectiveNotImproving {
  std::optional<int64_t> max_number_of_training_jobs_not_improving;  // >= 3
  bool operator==(const BestObjectiveNotImproving&) const = default;
};

struct ConvergenceDetected {
  std::optional<std::string> complete_on_convergence;  // Disabled | Enabled
  bool operator==(const ConvergenceDetected&) const = default;
};

struct TuningJobCompletionCriteria {
  std::optional<double> target_objective_metric_value;
  std::optional<BestObjectiveNotImproving> best_objective_not_improving;
  std::optional<ConvergenceDetected> convergence_detected;
  bool operator==(const TuningJobCompletionCriteria&) const = default;
};

struct TuningJobConfig {
  std::optional<std::string> strategy;  // Bayesian | Random | Hyperband | Grid
  std::optional<StrategyConfig> strategy_config;
  std::optional<Objective> hyper_parameter_tuning_job_objective;
  std::optional<ResourceLimits> resource_limits;
  std::optional<ParameterRanges> parameter_ranges;
  std::optional<std::string> training_job_early_stopping_type;  // Off (default) | Auto
  std::optional<TuningJobCompletionCriteria> tuning_job_completion_criteria;
  std::optional<int64_t> random_seed;  // >= 0
  bool operator==(const TuningJobConfig&) const = default;
};

// ---------------------------------------------------------------------------------------------
// Spec: HyperParameterTrainingJobDefinition
// ---------------------------------------------------------------------------------------------

struct MetricDefinition {
  std::optional<std::string> name;   // 1-255 chars
  std::optional<std::string> regex;  // 1-500 chars; group 1 holds the number
  bool operator==(const MetricDefinition&) const = default;
};

// HyperParameterAlgorithmSpecification.
struct AlgorithmSpecification {
  std::optional<std::string> training_image;       // image name, or an executable's path / file:// URI
  std::optional<std::string> training_input_mode;  // Pipe | File | FastFile
  std::optional<std::string> algorithm_name;
  std::vector<MetricDefinition> metric_definitions;
  bool operator==(const AlgorithmSpecification&) const = default;
};

struct CheckpointConfig {
  std::optional<std::string> s3_uri;      // CRD `s3URI`; s3://, https://, file:// or a local path
  std::optional<std::string> local_path;  // default /opt/ml/checkpoints/
  bool operator==(const CheckpointConfig&) const = default;
};

struct S3DataSource {
  std::optional<std::string> s3_data_type;  // ManifestFile | S3Prefix | AugmentedManifestFile
  std::optional<std::string> s3_uri;        // CRD `s3URI`
  std::optional<std::string> s3_data_distribution_type;  // FullyReplicated | ShardedByS3Key
  std::vector<std::string> attribute_names;       // <= 16
  std::vector<std::string> instance_group_names;  // <= 5
  bool operator==(const S3DataSource&) const = default;
};

struct FileSystemDataSource {
  std::optional<std::string> file_system_id;           // CRD `fileSystemID`
  std::optional<std::string> file_system_access_mode;  // rw | ro
  std::optional<std::string> file_system_type;         // EFS | FSxLustre
  std::optional<std::string> directory_path;
  bool operator==(const FileSystemDataSource&) const = default;
};

struct DataSource {
  std::optional<S3DataSource> s3_data_source;
  std::optional<FileSystemDataSource> file_system_data_source;
  bool operator==(const DataSource&) const = default;
};

struct ShuffleConfig {
  std::optional<int64_t> seed;
  bool operator==(const ShuffleConfig&) const = default;
};

struct Channel {
  std::optional<std::string> channel_name;  // 1-64, [A-Za-z0-9.\-_]+
  std::optional<DataSource> data_source;
  std::optional<std::string> content_type;
  std::optional<std::string> compression_type;     // None | Gzip
  std::optional<std::string> record_wrapper_type;  // None | RecordIO
  std::optional<std::string> input_mode;           // Pipe | File | FastFile
  std::optional<ShuffleConfig> shuffle_config;
  bool operator==(const Channel&) const = default;
};

struct OutputDataConfig {
  std::optional<std::string> kms_key_id;        // CRD `kmsKeyID`
  std::optional<std::string> s3_output_path;    // required
  std::optional<std::string> compression_type;  // GZIP | NONE
  bool operator==(const OutputDataConfig&) const = default;
};

struct InstanceGroup {
  std::optional<std::string> instance_type;
  std::optional<int64_t> instance_count;
  std::optional<std::string> instance_group_name;  // 1-64
  bool operator==(const InstanceGroup&) const = default;
};

struct ResourceConfig {
  std::optional<std::string> instance_type;
  std::optional<int64_t> instance_count;
  std::optional<int64_t> volume_size_in_gb;
  std::optional<std::string> volume_kms_key_id;  // CRD `volumeKMSKeyID`
  std::optional<int64_t> keep_alive_period_in_seconds;  // 0-21600
  std::vector<InstanceGroup> instance_groups;           // <= 5
  bool operator==(const ResourceConfig&) const = default;
};

// HyperParameterTuningResourceConfig's InstanceConfigs entries.
struct HyperParameterTuningInstanceConfig {
  std::optional<std::string> instance_type;  // required
  std::optional<int64_t> instance_count;     // required, >= 1
  std::optional<int64_t> volume_size_in_gb;  // required, >= 1
  bool operator==(const HyperParameterTuningInstanceConfig&) const = default;
};

// A definition's resources with alternatives (the SageMaker SDK's `instance_configs`): either
// one InstanceType/InstanceCount/VolumeSizeInGB, or 1-6 InstanceConfigs tried in the order
// written (AllocationStrategy Prioritized, the only one). Takes the place of ResourceConfig,
// never both; no KeepAlivePeriodInSeconds, no InstanceGroups.
struct HyperParameterTuningResourceConfig {
  std::optional<std::string> instance_type;
  std::optional<int64_t> instance_count;
  std::optional<int64_t> volume_size_in_gb;
  std::optional<std::string> volume_kms_key_id;    // CRD `volumeKMSKeyID`
  std::optional<std::string> allocation_strategy;  // Prioritized
  std::vector<HyperParameterTuningInstanceConfig> instance_configs;  // 1-6
  bool operator==(const HyperParameterTuningResourceConfig&) const = default;
};

struct RetryStrategy {
  std::optional<int64_t> maximum_retry_attempts;  // 1-30
  bool operator==(const RetryStrategy&) const = default;
};

// SageMaker's MaxRuntimeInSeconds when a definition gives none: a day, for all attempts together.
inline constexpr int64_t kDefaultMaxRuntimeInSeconds = 86400;

struct StoppingCondition {
  std::optional<int64_t> max_runtime_in_seconds;       // >= 1; default kDefaultMaxRuntimeInSeconds
  std::optional<int64_t> max_wait_time_in_seconds;     // >= max runtime; managed spot only
  std::optional<int64_t> max_pending_time_in_seconds;  // 7200-2419200
  bool operator==(const StoppingCondition&) const = default;
  // MaxRuntimeInSeconds, or SageMaker's default when it is not given.
  int64_t MaxRuntimeSeconds() const { return max_runtime_in_seconds.value_or(kDefaultMaxRuntimeInSeconds); }
};

struct VpcConfig {
  std::vector<std::string> security_group_ids;  // CRD `securityGroupIDs`; 1-5
  std::vector<std::string> subnets;             // 1-16
  bool operator==(const VpcConfig&) const = default;
};

struct TrainingJobDefinition {
  std::optional<std::string> definition_name;  // 1-64; required with TrainingJobDefinitions
  std::optional<Objective> tuning_objective;
  std::optional<ParameterRanges> hyper_parameter_ranges;
  StringMap static_hyper_parameters;
  std::optional<AlgorithmSpecification> algorithm_specification;
  std::optional<std::string> role_arn;  // CRD `roleARN`
  std::vector<Channel> input_data_config;
  std::optional<VpcConfig> vpc_config;
  std::optional<OutputDataConfig> output_data_config;
  std::optional<ResourceConfig> resource_config;
  std::optional<StoppingCondition> stopping_condition;
  std::optional<bool> enable_network_isolation;
  std::optional<bool> enable_inter_container_traffic_encryption;
  std::optional<bool> enable_managed_spot_training;
  std::optional<CheckpointConfig> checkpoint_config;
  std::optional<RetryStrategy> retry_strategy;
  std::optional<HyperParameterTuningResourceConfig> hyper_parameter_tuning_resource_config;
  StringMap environment;
  bool operator==(const TrainingJobDefinition&) const = default;
};

// The ResourceConfigs a training job of `d` may run with, in order of preference: its
// ResourceConfig alone; else one per HyperParameterTuningResourceConfig.InstanceConfigs entry
// (the scheduler takes the first that can start now), or its single InstanceType. Empty when the
// definition has neither (an invalid spec).
std::vector<ResourceConfig> ResourceOptions(const TrainingJobDefinition& d);

// ResourceOptions(d)[index], the last option for an index past them (a stored choice read with
// a spec that has fewer), nullopt when there is none.
std::optional<ResourceConfig> ResourceOption(const TrainingJobDefinition& d, size_t index);

// `d` as one training job runs it: with ResourceConfig `rc` in place of either resource field.
TrainingJobDefinition WithResourceConfig(const TrainingJobDefinition& d, const ResourceConfig& rc);

struct ParentTuningJob {
  std::optional<std::string> hyper_parameter_tuning_job_name;
  bool operator==(const ParentTuningJob&) const = default;
};

struct WarmStartConfig {
  std::vector<ParentTuningJob> parent_hyper_parameter_tuning_jobs;  // 1-5
  std::optional<std::string> warm_start_type;  // IdenticalDataAndAlgorithm | TransferLearning
  bool operator==(const WarmStartConfig&) const = default;
};

struct Tag {
  std::optional<std::string> key;    // 1-128
  std::optional<std::string> value;  // 0-256
  bool operator==(const Tag&) const = default;
};

struct Autotune {
  std::optional<std::string> mode;  // Enabled
  bool operator==(const Autotune&) const = default;
};

// The whole spec: the CreateHyperParameterTuningJob request, the CRD's `spec`.
struct TuningJobSpec {
  std::optional<std::string> hyper_parameter_tuning_job_name;
  std::optional<TuningJobConfig> hyper_parameter_tuning_job_config;
  std::optional<TrainingJobDefinition> training_job_definition;
  std::vector<TrainingJobDefinition> training_job_definitions;  // 1-10, each with a DefinitionName
  std::optional<WarmStartConfig> warm_start_config;
  std::vector<Tag> tags;
  std::optional<Autotune> autotune;
  bool operator==(const TuningJobSpec&) const = default;

  // The definitions the job runs: the single TrainingJobDefinition, else TrainingJobDefinitions.
  std::vector<const TrainingJobDefinition*> Definitions() const;
};

// DescribeHyperParameterTuningJob describes a definition with HyperParameterTuningResourceConfig
// also with a ResourceConfig, its first option (for the SDK's attach()). Given back to Create as
// it was described, that ResourceConfig is dropped here, so the definition is the one submitted
// (both fields set is otherwise refused). A ResourceConfig that differs is left for the refusal.
void DropDescribedResourceConfig(TuningJobSpec& spec);

// ---------------------------------------------------------------------------------------------
// Status: DescribeHyperParameterTuningJob response / the CRD's `status`
// ---------------------------------------------------------------------------------------------

// FinalHyperParameterTuningJobObjectiveMetric.
struct FinalObjectiveMetric {
  std::optional<std::string> type;  // CRD `type_`
  std::optional<std::string> metric_name;
  std::optional<double> value;
  bool operator==(const FinalObjectiveMetric&) const = default;
};

// HyperParameterTrainingJobSummary: best-job fields and the rows of
// ListTrainingJobsForHyperParameterTuningJob.
struct TrainingJobSummary {
  std::optional<std::string> training_job_definition_name;
  std::optional<std::string> training_job_name;
  std::optional<std::string> training_job_arn;  // CRD `trainingJobARN`
  std::optional<std::string> tuning_job_name;
  std::optional<Timestamp> creation_time;
  std::optional<Timestamp> training_start_time;
  std::optional<Timestamp> training_end_time;
  std::optional<std::string> training_job_status;  // InProgress|Completed|Failed|Stopping|Stopped
  StringMap tuned_hyper_parameters;
  std::optional<std::string> failure_reason;
  std::optional<FinalObjectiveMetric> final_hyper_parameter_tuning_job_objective_metric;
  std::optional<std::string> objective_status;  // Succeeded | Pending | Failed
  bool operator==(const TrainingJobSummary&) const = default;
};

struct TrainingJobStatusCounters {
  std::optional<int64_t> completed;
  std::optional<int64_t> in_progress;
  std::optional<int64_t> retryable_error;      // internal (infrastructure) errors
  std::optional<int64_t> non_retryable_error;  // client / algorithm errors
  std::optional<int64_t> stopped;
  bool operator==(const TrainingJobStatusCounters&) const = default;
};

struct ObjectiveStatusCounters {
  std::optional<int64_t> succeeded;
  std::optional<int64_t> pending;
  std::optional<int64_t> failed;
  bool operator==(const ObjectiveStatusCounters&) const = default;
};

struct TuningJobCompletionDetails {
  std::optional<int64_t> number_of_training_jobs_objective_not_improving;
  std::optional<Timestamp> convergence_detected_time;
  bool operator==(const TuningJobCompletionDetails&) const = default;
};

struct ConsumedResources {
  std::optional<int64_t> runtime_in_seconds;
  bool operator==(const ConsumedResources&) const = default;
};

// CRD only: status.ackResourceMetadata.
struct AckResourceMetadata {
  std::optional<std::string> arn;
  std::optional<std::string> owner_account_id;  // CRD `ownerAccountID`
  std::optional<std::string> region;
  bool operator==(const AckResourceMetadata&) const = default;
};

// CRD only: status.conditions[] (ACK.ResourceSynced, ACK.Terminal, ACK.Recoverable).
struct Condition {
  std::optional<std::string> type;
  std::optional<std::string> status;  // True | False | Unknown
  std::optional<Timestamp> last_transition_time;
  std::optional<std::string> reason;
  std::optional<std::string> message;
  bool operator==(const Condition&) const = default;
};

struct TuningJobStatus {
  std::optional<std::string> hyper_parameter_tuning_job_arn;  // API; in the CRD: ackResourceMetadata.arn
  std::optional<std::string> hyper_parameter_tuning_job_status;  // Completed|InProgress|Failed|Stopped|Stopping|...
  std::optional<Timestamp> creation_time;
  std::optional<Timestamp> hyper_parameter_tuning_end_time;
  std::optional<Timestamp> last_modified_time;
  std::optional<TrainingJobStatusCounters> training_job_status_counters;
  std::optional<ObjectiveStatusCounters> objective_status_counters;
  std::optional<TrainingJobSummary> best_training_job;
  std::optional<TrainingJobSummary> overall_best_training_job;
  std::optional<std::string> failure_reason;  // <= 1024 chars
  std::optional<TuningJobCompletionDetails> tuning_job_completion_details;
  std::optional<ConsumedResources> consumed_resources;
  // CRD only.
  std::optional<AckResourceMetadata> ack_resource_metadata;
  std::vector<Condition> conditions;
  bool operator==(const TuningJobStatus&) const = default;
};

// ---------------------------------------------------------------------------------------------
// Documents
// ---------------------------------------------------------------------------------------------

// The Kubernetes resource: apiVersion sagemaker.services.k8s.aws/v1alpha1,
// kind HyperParameterTuningJob. `metadata` is kept as written (name, namespace, labels,
// annotations, and anything the API server added), so a document survives a round trip.
struct TuningJobDocument {
  std::string api_version = "sagemaker.services.k8s.aws/v1alpha1";
  std::string kind = "HyperParameterTuningJob";
  nlohmann::ordered_json metadata = nlohmann::ordered_json::object();
  TuningJobSpec spec;
  std::optional<TuningJobStatus> status;
  bool operator==(const TuningJobDocument&) const = default;
};

// DescribeHyperParameterTuningJob response: the spec (less Tags) and the status, flat.
struct DescribeTuningJobResponse {
  TuningJobSpec spec;  // tags are not part of the response and are ignored when writing
  TuningJobStatus status;
  bool operator==(const DescribeTuningJobResponse&) const = default;
};

// ListTrainingJobsForHyperParameterTuningJob response.
struct ListTrainingJobsResponse {
  std::vector<TrainingJobSummary> training_job_summaries;
  std::optional<std::string> next_token;
  bool operator==(const ListTrainingJobsResponse&) const = default;
};

// A trainingImage of the form file://RELATIVE/PATH: a program beside the spec file, which only
// the spec file's directory resolves (hpo submit and hpo run do; the coordinator cannot).
inline bool IsRelativeFileImage(const std::string& image) {
  return image.rfind("file://", 0) == 0 && image.size() > 7 && image[7] != '/';
}

// An S3 object URL, as SageMaker's S3Uri pattern (https|s3)://... admits it, as the s3:// URI
// it names: https://BUCKET.s3[.-]REGION.amazonaws.com[.cn]/KEY (virtual-hosted), or
// https://s3[.-]REGION.amazonaws.com[.cn]/BUCKET/KEY and https://s3.amazonaws.com/BUCKET/KEY
// (path style); the key's %XX escapes decoded. nullopt for any other text. (An https:// URI
// validated, then failed every training job at run time: nothing read it.)
std::optional<std::string> S3UriOfUrl(const std::string& url);
// `uri` with an S3 object URL written as its s3:// URI; any other text as it is. What the
// coordinator hands workers for channels, output and checkpoints.
std::string StorageUri(const std::string& uri);

// Script mode's code (the SageMaker SDK's sagemaker_submit_directory hyperparameter, JSON-encoded:
// its quotes taken off); "" when `hyperparameters` has none.
std::string SubmitDirectory(const StringMap& hyperparameters);

// Whether a training job of this definition reads or writes S3 (an s3:// URI or an S3 object URL
// in a channel, the output path or the checkpoints, or script mode's code at the static
// hyperparameter sagemaker_submit_directory): a worker without S3 credentials cannot run it.
bool UsesS3(const TrainingJobDefinition& d);

}  // namespace hpo::proto
