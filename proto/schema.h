// proto/schema.h: the field table of every model struct (internal to proto/).
//
// One row per member: its SageMaker API name, its CRD name when that is not simply the API name
// with a lower-case first letter (CrdName() handles the CRD's fixed exceptions such as `type_`
// and `s3URI`), and in which spellings the member exists. The codecs in codec.cc walk these
// tables; nothing else should need them. Adding a member to a struct in tuning_job.h means adding
// its row here, and the round-trip test of a document that sets every field checks it.
#pragma once

#include <tuple>

#include "proto/tuning_job.h"

namespace hpo::proto::schema {

enum class Where { kBoth, kApiOnly, kCrdOnly };

template <class T, class M>
struct Field {
  const char* api;
  const char* crd;  // nullptr: CrdName(api)
  M T::*member;
  Where where;
};

template <class T, class M>
constexpr Field<T, M> F(const char* api, M T::*m) { return {api, nullptr, m, Where::kBoth}; }
template <class T, class M>
constexpr Field<T, M> F(const char* api, const char* crd, M T::*m) { return {api, crd, m, Where::kBoth}; }
template <class T, class M>
constexpr Field<T, M> ApiOnly(const char* api, M T::*m) { return {api, nullptr, m, Where::kApiOnly}; }
template <class T, class M>
constexpr Field<T, M> CrdOnly(const char* api, const char* crd, M T::*m) { return {api, crd, m, Where::kCrdOnly}; }

// Schema<T>::Fields() returns a tuple of Field rows, in the order documents are written.
template <class T>
struct Schema;

#define HPO_SCHEMA(T, ...)                                   \
  template <>                                                \
  struct Schema<T> {                                         \
    static constexpr auto Fields() { return std::make_tuple(__VA_ARGS__); } \
  }

HPO_SCHEMA(Objective, F("Type", &Objective::type), F("MetricName", &Objective::metric_name));
HPO_SCHEMA(NumericRange, F("Name", &NumericRange::name), F("MinValue", &NumericRange::min_value),
           F("MaxValue", &NumericRange::max_value), F("ScalingType", &NumericRange::scaling_type));
HPO_SCHEMA(CategoricalRange, F("Name", &CategoricalRange::name), F("Values", &CategoricalRange::values));
HPO_SCHEMA(AutoParameter, F("Name", &AutoParameter::name), F("ValueHint", &AutoParameter::value_hint));
HPO_SCHEMA(ParameterRanges,
           F("IntegerParameterRanges", &ParameterRanges::integer_parameter_ranges),
           F("ContinuousParameterRanges", &ParameterRanges::continuous_parameter_ranges),
           F("CategoricalParameterRanges", &ParameterRanges::categorical_parameter_ranges),
           F("AutoParameters", &ParameterRanges::auto_parameters));
HPO_SCHEMA(ResourceLimits,
           F("MaxNumberOfTrainingJobs", &ResourceLimits::max_number_of_training_jobs),
           F("MaxParallelTrainingJobs", &ResourceLimits::max_parallel_training_jobs),
           F("MaxRuntimeInSeconds", &ResourceLimits::max_runtime_in_seconds));
HPO_SCHEMA(HyperbandStrategyConfig, F("MinResource", &HyperbandStrategyConfig::min_resource),
           F("MaxResource", &HyperbandStrategyConfig::max_resource));
HPO_SCHEMA(StrategyConfig, F("HyperbandStrategyConfig", &StrategyConfig::hyperband_strategy_config));
HPO_SCHEMA(BestObjectiveNotImproving,
           F("MaxNumberOfTrainingJobsNotImproving",
             &BestObjectiveNotImproving::max_number_of_training_jobs_not_improving));
HPO_SCHEMA(ConvergenceDetected, F("CompleteOnConvergence", &ConvergenceDetected::complete_on_convergence));
HPO_SCHEMA(TuningJobCompletionCriteria,
           F("TargetObjectiveMetricValue", &TuningJobCompletionCriteria::target_objective_metric_value),
           F("BestObjectiveNotImproving", &TuningJobCompletionCriteria::best_objective_not_improving),
           F("ConvergenceDetected", &TuningJobCompletionCriteria::convergence_detected));
HPO_SCHEMA(TuningJobConfig, F("Strategy", &TuningJobConfig::strategy),
           F("StrategyConfig", &TuningJobConfig::strategy_config),
           F("HyperParameterTuningJobObjective", &TuningJobConfig::hyper_parameter_tuning_job_objective),
           F("ResourceLimits", &TuningJobConfig::resource_limits),
           F("ParameterRanges", &TuningJobConfig::parameter_ranges),
           F("TrainingJobEarlyStoppingType", &TuningJobConfig::training_job_early_stopping_type),
           F("TuningJobCompletionCriteria", &TuningJobConfig::tuning_job_completion_criteria),
           F("RandomSeed", &TuningJobConfig::random_seed));
HPO_SCHEMA(MetricDefinition, F("Name", &MetricDefinition::name), F("Regex", &MetricDefinition::regex));
HPO_SCHEMA(AlgorithmSpecification, F("TrainingImage", &AlgorithmSpecification::training_image),
           F("TrainingInputMode", &AlgorithmSpecification::training_input_mode),
           F("AlgorithmName", &AlgorithmSpecification::algorithm_name),
           F("MetricDefinitions", &AlgorithmSpecification::metric_definitions));
HPO_SCHEMA(CheckpointConfig, F("S3Uri", &CheckpointConfig::s3_uri),
           F("LocalPath", &CheckpointConfig::local_path));
HPO_SCHEMA(S3DataSource, F("S3DataType", &S3DataSource::s3_data_type), F("S3Uri", &S3DataSource::s3_uri),
           F("S3DataDistributionType", &S3DataSource::s3_data_distribution_type),
           F("AttributeNames", &S3DataSource::attribute_names),
           F("InstanceGroupNames", &S3DataSource::instance_group_names));
HPO_SCHEMA(FileSystemDataSource, F("FileSystemId", &FileSystemDataSource::file_system_id),
           F("FileSystemAccessMode", &FileSystemDataSource::file_system_access_mode),
           F("FileSystemType", &FileSystemDataSource::file_system_type),
           F("DirectoryPath", &FileSystemDataSource::directory_path));
HPO_SCHEMA(DataSource, F("S3DataSource", &DataSource::s3_data_source),
           F("FileSystemDataSource", &DataSource::file_system_data_source));
HPO_SCHEMA(ShuffleConfig, F("Seed", &ShuffleConfig::seed));
HPO_SCHEMA(Channel, F("ChannelName", &Channel::channel_name), F("DataSource", &Channel::data_source),
           F("ContentType", &Channel::content_type), F("CompressionType", &Channel::compression_type),
           F("RecordWrapperType", &Channel::record_wrapper_type), F("InputMode", &Channel::input_mode),
           F("ShuffleConfig", &Channel::shuffle_config));
HPO_SCHEMA(OutputDataConfig, F("KmsKeyId", &OutputDataConfig::kms_key_id),
           F("S3OutputPath", &OutputDataConfig::s3_output_path),
           F("CompressionType", &OutputDataConfig::compression_type));
HPO_SCHEMA(InstanceGroup, F("InstanceType", &InstanceGroup::instance_type),
           F("InstanceCount", &InstanceGroup::instance_count),
           F("InstanceGroupName", &InstanceGroup::instance_group_name));
HPO_SCHEMA(ResourceConfig, F("InstanceType", &ResourceConfig::instance_type),
           F("InstanceCount", &ResourceConfig::instance_count),
           F("VolumeSizeInGB", &ResourceConfig::volume_size_in_gb),
           F("VolumeKmsKeyId", &ResourceConfig::volume_kms_key_id),
           F("KeepAlivePeriodInSeconds", &ResourceConfig::keep_alive_period_in_seconds),
           F("InstanceGroups", &ResourceConfig::instance_groups));
HPO_SCHEMA(HyperParameterTuningInstanceConfig,
           F("InstanceType", &HyperParameterTuningInstanceConfig::instance_type),
           F("InstanceCount", &HyperParameterTuningInstanceConfig::instance_count),
           F("VolumeSizeInGB", &HyperParameterTuningInstanceConfig::volume_size_in_gb));
HPO_SCHEMA(HyperParameterTuningResourceConfig,
           F("InstanceType", &HyperParameterTuningResourceConfig::instance_type),
           F("InstanceCount", &HyperParameterTuningResourceConfig::instance_count),
           F("VolumeSizeInGB", &HyperParameterTuningResourceConfig::volume_size_in_gb),
           F("VolumeKmsKeyId", &HyperParameterTuningResourceConfig::volume_kms_key_id),
           F("AllocationStrategy", &HyperParameterTuningResourceConfig::allocation_strategy),
           F("InstanceConfigs", &HyperParameterTuningResourceConfig::instance_configs));
HPO_SCHEMA(RetryStrategy, F("MaximumRetryAttempts", &RetryStrategy::maximum_retry_attempts));
HPO_SCHEMA(StoppingCondition, F("MaxRuntimeInSeconds", &StoppingCondition::max_runtime_in_seconds),
           F("MaxWaitTimeInSeconds", &StoppingCondition::max_wait_time_in_seconds),
           F("MaxPendingTimeInSeconds", &StoppingCondition::max_pending_time_in_seconds));
HPO_SCHEMA(VpcConfig, F("SecurityGroupIds", &VpcConfig::security_group_ids),
           F("Subnets", &VpcConfig::subnets));
HPO_SCHEMA(TrainingJobDefinition, F("DefinitionName", &TrainingJobDefinition::definition_name),
           F("TuningObjective", &TrainingJobDefinition::tuning_objective),
           F("HyperParameterRanges", &TrainingJobDefinition::hyper_parameter_ranges),
           F("StaticHyperParameters", &TrainingJobDefinition::static_hyper_parameters),
           F("AlgorithmSpecification", &TrainingJobDefinition::algorithm_specification),
           F("RoleArn", &TrainingJobDefinition::role_arn),
           F("InputDataConfig", &TrainingJobDefinition::input_data_config),
           F("VpcConfig", &TrainingJobDefinition::vpc_config),
           F("OutputDataConfig", &TrainingJobDefinition::output_data_config),
           F("ResourceConfig", &TrainingJobDefinition::resource_config),
           F("StoppingCondition", &TrainingJobDefinition::stopping_condition),
           F("EnableNetworkIsolation", &TrainingJobDefinition::enable_network_isolation),
           F("EnableInterContainerTrafficEncryption",
             &TrainingJobDefinition::enable_inter_container_traffic_encryption),
           F("EnableManagedSpotTraining", &TrainingJobDefinition::enable_managed_spot_training),
           F("CheckpointConfig", &TrainingJobDefinition::checkpoint_config),
           F("RetryStrategy", &TrainingJobDefinition::retry_strategy),
           F("HyperParameterTuningResourceConfig", &TrainingJobDefinition::hyper_parameter_tuning_resource_config),
           F("Environment", &TrainingJobDefinition::environment));
HPO_SCHEMA(ParentTuningJob,
           F("HyperParameterTuningJobName", &ParentTuningJob::hyper_parameter_tuning_job_name));
HPO_SCHEMA(WarmStartConfig,
           F("ParentHyperParameterTuningJobs", &WarmStartConfig::parent_hyper_parameter_tuning_jobs),
           F("WarmStartType", &WarmStartConfig::warm_start_type));
HPO_SCHEMA(Tag, F("Key", &Tag::key), F("Value", &Tag::value));
HPO_SCHEMA(Autotune, F("Mode", &Autotune::mode));
HPO_SCHEMA(TuningJobSpec,
           F("HyperParameterTuningJobName", &TuningJobSpec::hyper_parameter_tuning_job_name),
           F("HyperParameterTuningJobConfig", &TuningJobSpec::hyper_parameter_tuning_job_config),
           F("TrainingJobDefinition", &TuningJobSpec::training_job_definition),
           F("TrainingJobDefinitions", &TuningJobSpec::training_job_definitions),
           F("WarmStartConfig", &TuningJobSpec::warm_start_config), F("Tags", &TuningJobSpec::tags),
           F("Autotune", &TuningJobSpec::autotune));

HPO_SCHEMA(FinalObjectiveMetric, F("Type", &FinalObjectiveMetric::type),
           F("MetricName", &FinalObjectiveMetric::metric_name), F("Value", &FinalObjectiveMetric::value));
HPO_SCHEMA(TrainingJobSummary,
           F("TrainingJobDefinitionName", &TrainingJobSummary::training_job_definition_name),
           F("TrainingJobName", &TrainingJobSummary::training_job_name),
           F("TrainingJobArn", &TrainingJobSummary::training_job_arn),
           F("TuningJobName", &TrainingJobSummary::tuning_job_name),
           F("CreationTime", &TrainingJobSummary::creation_time),
           F("TrainingStartTime", &TrainingJobSummary::training_start_time),
           F("TrainingEndTime", &TrainingJobSummary::training_end_time),
           F("TrainingJobStatus", &TrainingJobSummary::training_job_status),
           F("TunedHyperParameters", &TrainingJobSummary::tuned_hyper_parameters),
           F("FailureReason", &TrainingJobSummary::failure_reason),
           F("FinalHyperParameterTuningJobObjectiveMetric",
             &TrainingJobSummary::final_hyper_parameter_tuning_job_objective_metric),
           F("ObjectiveStatus", &TrainingJobSummary::objective_status));
HPO_SCHEMA(TrainingJobStatusCounters, F("Completed", &TrainingJobStatusCounters::completed),
           F("InProgress", &TrainingJobStatusCounters::in_progress),
           F("RetryableError", &TrainingJobStatusCounters::retryable_error),
           F("NonRetryableError", &TrainingJobStatusCounters::non_retryable_error),
           F("Stopped", &TrainingJobStatusCounters::stopped));
HPO_SCHEMA(ObjectiveStatusCounters, F("Succeeded", &ObjectiveStatusCounters::succeeded),
           F("Pending", &ObjectiveStatusCounters::pending), F("Failed", &ObjectiveStatusCounters::failed));
HPO_SCHEMA(TuningJobCompletionDetails,
           F("NumberOfTrainingJobsObjectiveNotImproving",
             &TuningJobCompletionDetails::number_of_training_jobs_objective_not_improving),
           F("ConvergenceDetectedTime", &TuningJobCompletionDetails::convergence_detected_time));
HPO_SCHEMA(ConsumedResources, F("RuntimeInSeconds", &ConsumedResources::runtime_in_seconds));
HPO_SCHEMA(AckResourceMetadata, F("Arn", "arn", &AckResourceMetadata::arn),
           F("OwnerAccountId", "ownerAccountID", &AckResourceMetadata::owner_account_id),
           F("Region", "region", &AckResourceMetadata::region));
HPO_SCHEMA(Condition, F("Type", "type", &Condition::type), F("Status", "status", &Condition::status),
           F("LastTransitionTime", &Condition::last_transition_time), F("Reason", &Condition::reason),
           F("Message", &Condition::message));
HPO_SCHEMA(TuningJobStatus,
           ApiOnly("HyperParameterTuningJobArn", &TuningJobStatus::hyper_parameter_tuning_job_arn),
           CrdOnly("AckResourceMetadata", "ackResourceMetadata", &TuningJobStatus::ack_resource_metadata),
           CrdOnly("Conditions", "conditions", &TuningJobStatus::conditions),
           F("HyperParameterTuningJobStatus", &TuningJobStatus::hyper_parameter_tuning_job_status),
           F("CreationTime", &TuningJobStatus::creation_time),
           F("HyperParameterTuningEndTime", &TuningJobStatus::hyper_parameter_tuning_end_time),
           F("LastModifiedTime", &TuningJobStatus::last_modified_time),
           F("TrainingJobStatusCounters", &TuningJobStatus::training_job_status_counters),
           F("ObjectiveStatusCounters", &TuningJobStatus::objective_status_counters),
           F("BestTrainingJob", &TuningJobStatus::best_training_job),
           F("OverallBestTrainingJob", &TuningJobStatus::overall_best_training_job),
           F("FailureReason", &TuningJobStatus::failure_reason),
           F("TuningJobCompletionDetails", &TuningJobStatus::tuning_job_completion_details),
           F("ConsumedResources", &TuningJobStatus::consumed_resources));
HPO_SCHEMA(ListTrainingJobsResponse,
           F("TrainingJobSummaries", &ListTrainingJobsResponse::training_job_summaries),
           F("NextToken", &ListTrainingJobsResponse::next_token));

#undef HPO_SCHEMA

}  // namespace hpo::proto::schema
