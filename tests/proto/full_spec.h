// tests/proto/full_spec.h: a document that sets every member of the model (spec and status), for
// round-trip tests. It is shaped to be read, not to be valid: it sets both TrainingJobDefinition
// and TrainingJobDefinitions, for instance.
#pragma once

#include "proto/tuning_job.h"

namespace hpo::proto {

inline ParameterRanges FullRanges(const std::string& prefix) {
  ParameterRanges r;
  r.integer_parameter_ranges.push_back({prefix + "depth", "1", "12", "Linear"});
  r.continuous_parameter_ranges.push_back({prefix + "eta", "0.001", "0.30", "Logarithmic"});
  r.continuous_parameter_ranges.push_back({prefix + "momentum", "0.5", "0.999", "ReverseLogarithmic"});
  r.categorical_parameter_ranges.push_back({prefix + "booster", {"gbtree", "dart", "true", "0.5"}});
  r.auto_parameters.push_back({prefix + "alpha", "0.1"});
  return r;
}

inline TrainingJobDefinition FullDefinition(const std::string& name) {
  TrainingJobDefinition d;
  d.definition_name = name;
  d.tuning_objective = Objective{"Maximize", "validation:auc"};
  d.hyper_parameter_ranges = FullRanges(name + "-");
  d.static_hyper_parameters = {{"epochs", "10"}, {"objective", "binary:logistic"}, {"empty", ""}};
  d.algorithm_specification = AlgorithmSpecification{
      "123456789012.dkr.ecr.us-west-2.amazonaws.com/xgboost:1.7-1", "File", "xgboost-builtin",
      {{"validation:auc", R"(.*\[[0-9]+\].*#011validation-auc:([-+]?[0-9]*\.?[0-9]+))"},
       {"train:auc", R"(train-auc:([0-9.]+))"}}};
  d.role_arn = "arn:aws:iam::123456789012:role/hpo-full";
  Channel train;
  train.channel_name = "train";
  train.data_source = DataSource{
      S3DataSource{"AugmentedManifestFile", "s3://bucket/train/", "ShardedByS3Key", {"source-ref", "label"}, {"gpu"}},
      std::nullopt};
  train.content_type = "application/x-recordio";
  train.compression_type = "Gzip";
  train.record_wrapper_type = "RecordIO";
  train.input_mode = "Pipe";
  train.shuffle_config = ShuffleConfig{7};
  Channel shared;
  shared.channel_name = "shared";
  shared.data_source = DataSource{std::nullopt, FileSystemDataSource{"fs-0123456789abcdef0", "ro", "FSxLustre", "/fsx/data"}};
  d.input_data_config = {train, shared};
  d.vpc_config = VpcConfig{{"sg-0123456789abcdef0"}, {"subnet-0123456789abcdef0", "subnet-1"}};
  d.output_data_config = OutputDataConfig{"arn:aws:kms:us-west-2:123456789012:key/out", "s3://bucket/output/", "NONE"};
  d.resource_config = ResourceConfig{"ml.p4d.24xlarge", 2, 100, "arn:aws:kms:us-west-2:123456789012:key/vol", 600,
                                     {{"ml.p4d.24xlarge", 2, "gpu"}, {"ml.c5.18xlarge", 1, "cpu"}}};
  d.stopping_condition = StoppingCondition{3600, 7200, 7200};
  d.enable_network_isolation = true;
  d.enable_inter_container_traffic_encryption = false;
  d.enable_managed_spot_training = true;
  d.checkpoint_config = CheckpointConfig{"s3://bucket/checkpoints/run-1/", "/opt/ml/checkpoints/"};
  d.retry_strategy = RetryStrategy{3};
  // Not valid beside ResourceConfig (a spec has one of the two), but every field is written.
  d.hyper_parameter_tuning_resource_config = HyperParameterTuningResourceConfig{
      "ml.g5.xlarge", 1, 50, "arn:aws:kms:us-west-2:123456789012:key/hp", "Prioritized",
      {{"ml.g5.xlarge", 1, 50}, {"ml.g4dn.xlarge", 2, 60}}};
  d.environment = {{"NCCL_DEBUG", "INFO"}, {"OMP_NUM_THREADS", "4"}};
  return d;
}

inline TrainingJobSummary FullSummary(const std::string& job, const std::string& suffix) {
  TrainingJobSummary s;
  s.training_job_definition_name = "main";
  s.training_job_name = job + suffix;
  s.training_job_arn = "arn:aws:sagemaker:us-west-2:123456789012:training-job/" + job + suffix;
  s.tuning_job_name = job;
  s.creation_time = Timestamp{1764373833000};
  s.training_start_time = Timestamp{1764373840123};
  s.training_end_time = Timestamp{1764374000500};
  s.training_job_status = "Completed";
  s.tuned_hyper_parameters = {{"main-eta", "0.05"}, {"main-depth", "6"}};
  s.failure_reason = "";
  s.final_hyper_parameter_tuning_job_objective_metric = FinalObjectiveMetric{"Maximize", "validation:auc", 0.9371};
  s.objective_status = "Succeeded";
  return s;
}

inline TuningJobDocument FullDocument() {
  TuningJobDocument doc;
  doc.metadata = {{"name", "full"}, {"namespace", "ml"}, {"labels", {{"team", "vision"}}}};
  TuningJobSpec& s = doc.spec;
  s.hyper_parameter_tuning_job_name = "full";
  TuningJobConfig c;
  c.strategy = "Hyperband";
  c.strategy_config = StrategyConfig{HyperbandStrategyConfig{1, 81}};
  c.hyper_parameter_tuning_job_objective = Objective{"Maximize", "validation:auc"};
  c.resource_limits = ResourceLimits{50, 5, 86400};
  c.parameter_ranges = FullRanges("");
  c.training_job_early_stopping_type = "Off";
  c.tuning_job_completion_criteria =
      TuningJobCompletionCriteria{0.985, BestObjectiveNotImproving{10}, ConvergenceDetected{"Enabled"}};
  c.random_seed = 1234;
  s.hyper_parameter_tuning_job_config = c;
  s.training_job_definition = FullDefinition("main");
  s.training_job_definitions = {FullDefinition("first"), FullDefinition("second")};
  s.warm_start_config = WarmStartConfig{{{"parent-a"}, {"parent-b"}}, "TransferLearning"};
  s.tags = {{"project", "hpo"}, {"owner", ""}};
  s.autotune = Autotune{"Enabled"};

  TuningJobStatus st;
  st.hyper_parameter_tuning_job_status = "InProgress";
  st.creation_time = Timestamp{1764373833000};
  st.hyper_parameter_tuning_end_time = Timestamp{1764380000250};
  st.last_modified_time = Timestamp{1764379999999};
  st.training_job_status_counters = TrainingJobStatusCounters{10, 3, 1, 2, 4};
  st.objective_status_counters = ObjectiveStatusCounters{9, 3, 2};
  st.best_training_job = FullSummary("full", "-001-589e2e9f");
  st.overall_best_training_job = FullSummary("parent-a", "-017-0badc0de");
  st.failure_reason = "No training job succeeded after 5 attempts.";
  st.tuning_job_completion_details = TuningJobCompletionDetails{4, Timestamp{1764379000000}};
  st.consumed_resources = ConsumedResources{5321};
  st.ack_resource_metadata =
      AckResourceMetadata{"arn:aws:sagemaker:us-west-2:123456789012:hyper-parameter-tuning-job/full", "123456789012",
                          "us-west-2"};
  st.conditions.push_back(Condition{"ACK.ResourceSynced", "False", Timestamp{1764373833000}, "InProgress",
                                    "HyperParameterTuningJob is in InProgress status."});
  doc.status = st;
  return doc;
}

}  // namespace hpo::proto
