#include "proto/validate.h"

#include "proto/builtin_algorithms.h"

#include <gtest/gtest.h>

#include "common/text.h"

#include <cctype>
#include <functional>
#include <ostream>
#include <regex>
#include <set>
#include <string>
#include <vector>

namespace hpo::proto {
namespace {

// ---- valid bases --------------------------------------------------------------------------------

// A Random job with integer, continuous and categorical ranges and one definition that sets
// everything required.
TuningJobSpec RandomBase() {
  TuningJobSpec s;
  s.hyper_parameter_tuning_job_name = "xgb-random-1";
  TuningJobConfig c;
  c.strategy = "Random";
  c.hyper_parameter_tuning_job_objective = Objective{"Maximize", "validation:auc"};
  c.resource_limits = ResourceLimits{20, 4, std::nullopt};
  ParameterRanges r;
  r.integer_parameter_ranges = {{"max_depth", "3", "10", "Linear"}};
  r.continuous_parameter_ranges = {{"eta", "0.01", "0.3", "Logarithmic"}};
  r.categorical_parameter_ranges = {{"booster", {"gbtree", "dart"}}};
  c.parameter_ranges = r;
  s.hyper_parameter_tuning_job_config = c;

  TrainingJobDefinition d;
  d.static_hyper_parameters = {{"objective", "binary:logistic"}, {"num_round", "100"}};
  d.algorithm_specification = AlgorithmSpecification{
      "hpo/xgboost:1.7", "File", std::nullopt, {{"validation:auc", R"(validation-auc:([0-9.]+))"}}};
  d.role_arn = "arn:aws:iam::123456789012:role/hpo";
  Channel train;
  train.channel_name = "train";
  train.data_source =
      DataSource{S3DataSource{"S3Prefix", "s3://bucket/train/", "FullyReplicated", {}, {}}, std::nullopt};
  Channel validation;
  validation.channel_name = "validation";
  validation.data_source =
      DataSource{S3DataSource{"S3Prefix", "s3://bucket/validation/", std::nullopt, {}, {}}, std::nullopt};
  d.input_data_config = {train, validation};
  d.output_data_config = OutputDataConfig{std::nullopt, "s3://bucket/output/", std::nullopt};
  d.resource_config = ResourceConfig{"ml.g5.xlarge", 1, 30, std::nullopt, std::nullopt, {}};
  d.stopping_condition = StoppingCondition{3600, std::nullopt, std::nullopt};
  s.training_job_definition = d;
  return s;
}

// Grid over 2 x 3 = 6 combinations.
TuningJobSpec GridBase() {
  TuningJobSpec s = RandomBase();
  TuningJobConfig& c = *s.hyper_parameter_tuning_job_config;
  c.strategy = "Grid";
  c.resource_limits->max_number_of_training_jobs = 6;
  c.parameter_ranges = ParameterRanges{};
  c.parameter_ranges->categorical_parameter_ranges = {{"booster", {"gbtree", "dart"}}, {"max_depth", {"3", "6", "9"}}};
  return s;
}

// Hyperband taking MaxResource from the static hyperparameter `epochs` (the CRD user's path).
TuningJobSpec HyperbandBase() {
  TuningJobSpec s = RandomBase();
  TuningJobConfig& c = *s.hyper_parameter_tuning_job_config;
  c.strategy = "Hyperband";
  c.training_job_early_stopping_type = "Off";
  s.training_job_definition->static_hyper_parameters["epochs"] = "81";
  return s;
}

// Two definitions, each with its own objective and ranges; no config ranges or objective.
TuningJobSpec MultiBase() {
  TuningJobSpec s = RandomBase();
  TuningJobConfig& c = *s.hyper_parameter_tuning_job_config;
  c.hyper_parameter_tuning_job_objective.reset();
  c.parameter_ranges.reset();
  TrainingJobDefinition xgb = *s.training_job_definition;
  s.training_job_definition.reset();
  xgb.definition_name = "xgb";
  xgb.tuning_objective = Objective{"Maximize", "validation:auc"};
  xgb.hyper_parameter_ranges = ParameterRanges{};
  xgb.hyper_parameter_ranges->continuous_parameter_ranges = {{"eta", "0.01", "0.3", "Auto"}};
  TrainingJobDefinition lgbm = xgb;
  lgbm.definition_name = "lgbm";
  lgbm.tuning_objective = Objective{"Maximize", "valid:auc"};
  lgbm.algorithm_specification->training_image = "hpo/lightgbm:4";
  lgbm.algorithm_specification->metric_definitions = {{"valid:auc", R"(valid auc: ([0-9.eE+-]+))"}};
  lgbm.hyper_parameter_ranges->integer_parameter_ranges = {{"num_leaves", "8", "256", "Logarithmic"}};
  s.training_job_definitions = {xgb, lgbm};
  return s;
}

// Heterogeneous cluster: instance groups, every channel naming its groups.
TuningJobSpec GroupsBase() {
  TuningJobSpec s = RandomBase();
  TrainingJobDefinition& d = *s.training_job_definition;
  d.resource_config =
      ResourceConfig{std::nullopt, std::nullopt, 30,
                     std::nullopt, std::nullopt, {{"ml.g5.xlarge", 2, "gpu"}, {"ml.c5.xlarge", 1, "cpu"}}};
  d.input_data_config[0].data_source->s3_data_source->instance_group_names = {"gpu"};
  d.input_data_config[1].data_source->s3_data_source->instance_group_names = {"gpu", "cpu"};
  return s;
}

// Warm start from two parents.
TuningJobSpec WarmBase() {
  TuningJobSpec s = RandomBase();
  s.warm_start_config = WarmStartConfig{{{"parent-a"}, {"parent-b"}}, "TransferLearning"};
  return s;
}

enum class Base { kRandom, kGrid, kHyperband, kMulti, kGroups, kWarm };

TuningJobSpec Make(Base b) {
  switch (b) {
    case Base::kRandom:
      return RandomBase();
    case Base::kGrid:
      return GridBase();
    case Base::kHyperband:
      return HyperbandBase();
    case Base::kMulti:
      return MultiBase();
    case Base::kGroups:
      return GroupsBase();
    case Base::kWarm:
      return WarmBase();
  }
  return RandomBase();
}

// Short hands for the mutations.
TuningJobConfig& Cfg(TuningJobSpec& s) { return *s.hyper_parameter_tuning_job_config; }
ParameterRanges& Ranges(TuningJobSpec& s) { return *Cfg(s).parameter_ranges; }
TrainingJobDefinition& Def(TuningJobSpec& s) { return *s.training_job_definition; }
AlgorithmSpecification& Algo(TuningJobSpec& s) { return *Def(s).algorithm_specification; }
Channel& Chan(TuningJobSpec& s, size_t i = 0) { return Def(s).input_data_config[i]; }
S3DataSource& S3(TuningJobSpec& s, size_t i = 0) { return *Chan(s, i).data_source->s3_data_source; }
FileSystemDataSource& UseFileSystem(TuningJobSpec& s) {
  Chan(s).data_source = DataSource{std::nullopt, FileSystemDataSource{"fs-0123456789abcdef0", "ro", "EFS", "/data"}};
  return *Chan(s).data_source->file_system_data_source;
}

std::string Describe(const FieldErrors& errors) {
  std::string out;
  for (const auto& e : errors) out += "\n  " + e.ToString();
  return out.empty() ? " (none)" : out;
}

// ---- the valid bases pass -----------------------------------------------------------------------

TEST(Validate, EveryValidBaseHasNoErrorsInBothSpellings) {
  for (Base b : {Base::kRandom, Base::kGrid, Base::kHyperband, Base::kMulti, Base::kGroups, Base::kWarm}) {
    SCOPED_TRACE(static_cast<int>(b));
    TuningJobSpec s = Make(b);
    EXPECT_TRUE(Validate(s, Spelling::kCrd).empty()) << Describe(Validate(s, Spelling::kCrd));
    EXPECT_TRUE(Validate(s, Spelling::kApi).empty()) << Describe(Validate(s, Spelling::kApi));
  }
}

// Distributed training on one of the job's instance groups, named as the SDK writes it (a JSON
// list) or as plain text, is valid.
TEST(Validate, DistributionOnOneInstanceGroupIsValid) {
  for (const char* value : {R"(["gpu"])", "gpu", R"("cpu")"}) {
    TuningJobSpec s = Make(Base::kGroups);
    Def(s).static_hyper_parameters["sagemaker_distribution_instance_groups"] = value;
    EXPECT_TRUE(Validate(s, Spelling::kCrd).empty()) << value << Describe(Validate(s, Spelling::kCrd));
  }
}

// What SageMaker acts on and hpo only keeps is listed, one line per field set, in the file's
// spelling, naming the definition when there are several; a spec setting none has no notes.
TEST(Validate, FieldsHpoDoesNotEnforceAreListed) {
  for (Base b : {Base::kRandom, Base::kGrid, Base::kHyperband, Base::kMulti, Base::kGroups, Base::kWarm}) {
    EXPECT_TRUE(NotEnforced(Make(b), Spelling::kApi).empty()) << static_cast<int>(b);
  }
  TuningJobSpec s = Make(Base::kRandom);
  Def(s).vpc_config = VpcConfig{{"sg-0123456789abcdef0"}, {"subnet-0123456789abcdef0"}};
  Def(s).output_data_config->kms_key_id = "alias/out";
  Def(s).resource_config->volume_kms_key_id = "alias/volume";
  Def(s).enable_inter_container_traffic_encryption = true;
  EXPECT_TRUE(Validate(s, Spelling::kApi).empty()) << Describe(Validate(s, Spelling::kApi));
  const std::vector<std::string> api = NotEnforced(s, Spelling::kApi);
  ASSERT_EQ(api.size(), 4u);
  EXPECT_EQ(api[0].rfind("VpcConfig: not enforced here: ", 0), 0u) << api[0];
  EXPECT_EQ(api[1].rfind("OutputDataConfig.KmsKeyId: not enforced here: ", 0), 0u) << api[1];
  EXPECT_EQ(api[2].rfind("ResourceConfig.VolumeKmsKeyId: not enforced here: ", 0), 0u) << api[2];
  EXPECT_EQ(api[3].rfind("EnableInterContainerTrafficEncryption: not enforced here: ", 0), 0u) << api[3];
  const std::vector<std::string> crd = NotEnforced(s, Spelling::kCrd);
  ASSERT_EQ(crd.size(), 4u);
  EXPECT_EQ(crd[1].rfind("outputDataConfig.kmsKeyID: ", 0), 0u) << crd[1];
  EXPECT_EQ(crd[2].rfind("resourceConfig.volumeKMSKeyID: ", 0), 0u) << crd[2];
  Def(s).enable_inter_container_traffic_encryption = false;  // asked not to: nothing to say
  EXPECT_EQ(NotEnforced(s, Spelling::kApi).size(), 3u);

  TuningJobSpec m = Make(Base::kMulti);
  m.training_job_definitions[1].vpc_config = VpcConfig{{"sg-0123456789abcdef0"}, {"subnet-0123456789abcdef0"}};
  const std::vector<std::string> multi = NotEnforced(m, Spelling::kApi);
  ASSERT_EQ(multi.size(), 1u);
  EXPECT_EQ(multi[0].rfind("VpcConfig (definition \"lgbm\"): ", 0), 0u) << multi[0];
}

// SageMaker's limits on tunable hyperparameters and metric definitions are a coordinator's
// settings here (--max-tunable-hyperparameters, --max-metric-definitions): a cluster of your own
// may search more; a client's check leaves them to the coordinator.
TEST(Validate, TheHyperparameterAndMetricLimitsAreSettings) {
  TuningJobSpec s = Make(Base::kRandom);
  while (Ranges(s).continuous_parameter_ranges.size() + Ranges(s).integer_parameter_ranges.size() +
             Ranges(s).categorical_parameter_ranges.size() <
         31) {
    Ranges(s).continuous_parameter_ranges.push_back(
        NumericRange{"x" + std::to_string(Ranges(s).continuous_parameter_ranges.size()), "0", "1", "Linear"});
  }
  while (Algo(s).metric_definitions.size() < 41) {
    Algo(s).metric_definitions.push_back({"m" + std::to_string(Algo(s).metric_definitions.size()), "m=([0-9.]+)"});
  }
  const FieldErrors by_default = Validate(s, Spelling::kApi);
  ASSERT_EQ(by_default.size(), 2u) << Describe(by_default);
  EXPECT_NE(by_default[0].ToString().find("at most 30 are allowed (SageMaker's limit, a coordinator's "
                                          "--max-tunable-hyperparameters here"),
            std::string::npos)
      << Describe(by_default);
  EXPECT_NE(by_default[1].ToString().find("at most 40 metric definitions, got 41 (SageMaker's limit, a "
                                          "coordinator's --max-metric-definitions here)"),
            std::string::npos)
      << Describe(by_default);
  ValidationLimits wider;
  wider.max_tunable_hyperparameters = 31;
  wider.max_metric_definitions = 41;
  EXPECT_TRUE(Validate(s, Spelling::kApi, wider).empty()) << Describe(Validate(s, Spelling::kApi, wider));
  EXPECT_TRUE(Validate(s, Spelling::kApi, ValidationLimits::Unlimited()).empty());
}

// A value shown in a message is cut at 80 characters, not bytes: a static value of 2,600 "日"
// was cut inside a character, and hpo validate wrote invalid UTF-8 to the terminal.
TEST(Validate, AQuotedValueIsCutBetweenCharacters) {
  TuningJobSpec s = Make(Base::kRandom);
  std::string wide;
  for (int i = 0; i < 2600; ++i) wide += "\xe6\x97\xa5";
  s.training_job_definition->static_hyper_parameters["note"] = wide;
  const auto errors = Validate(s, Spelling::kApi);
  ASSERT_FALSE(errors.empty());
  const std::string all = Describe(errors);
  std::string eighty;
  for (int i = 0; i < 80; ++i) eighty += "\xe6\x97\xa5";
  EXPECT_NE(all.find("\"" + eighty + "...\""), std::string::npos) << all;
  EXPECT_EQ(hpo::ReplaceInvalidUtf8(all), all) << "the message is valid UTF-8";
}

// VolumeSizeInGB 0 (instance storage only) is SageMaker's: botocore's OptionalVolumeSizeInGB has
// min 0; hpo refused it.
// A multi-definition pass: a spec with both TrainingJobDefinition and TrainingJobDefinitions, each
// definition with its own objective, also got "HyperParameterTuningJobObjective is required" and
// "ParameterRanges needs at least one range": only the one error that is.
TEST(Validate, BothDefinitionKindsIsOneErrorWithoutFollowOns) {
  TuningJobSpec s = Make(Base::kMulti);
  TrainingJobDefinition single = s.training_job_definitions[0];
  single.definition_name.reset();
  single.hyper_parameter_ranges.reset();
  s.training_job_definition = single;
  const FieldErrors errors = Validate(s, Spelling::kApi);
  ASSERT_EQ(errors.size(), 1u) << Describe(errors);
  EXPECT_NE(Describe(errors).find("cannot be combined with TrainingJobDefinition"), std::string::npos)
      << Describe(errors);
}

// An SDK pass: an Integer range with Grid was refused, and the next error counted the Grid's
// combinations without it ("must equal ... 2, got 4" for a space the user counted as 4).
TEST(Validate, AGridWithARangeItRefusesIsNotCountedToo) {
  TuningJobSpec s = Make(Base::kGrid);
  Ranges(s).integer_parameter_ranges.push_back({"layers", "1", "2"});
  s.hyper_parameter_tuning_job_config->resource_limits->max_number_of_training_jobs = 99;
  const FieldErrors errors = Validate(s, Spelling::kApi);
  EXPECT_NE(Describe(errors).find("is not allowed with the Grid strategy"), std::string::npos) << Describe(errors);
  EXPECT_EQ(Describe(errors).find("number of Grid combinations"), std::string::npos) << Describe(errors);
}

TEST(Validate, AVolumeSizeOfZeroIsValid) {
  TuningJobSpec s = Make(Base::kRandom);
  s.training_job_definition->resource_config->volume_size_in_gb = 0;
  EXPECT_TRUE(Validate(s, Spelling::kApi).empty()) << Describe(Validate(s, Spelling::kApi));
}

// Enough combinations: exactly as many as training jobs passes, and a continuous range has no limit.
TEST(Validate, DiscreteRangesWithAsManyCombinationsAsJobsOrAContinuousRangePass) {
  TuningJobSpec s = Make(Base::kRandom);
  s.hyper_parameter_tuning_job_config->parameter_ranges = ParameterRanges{};
  auto& r = *s.hyper_parameter_tuning_job_config->parameter_ranges;
  r.integer_parameter_ranges = {{"depth", "0", "2", std::nullopt}};
  r.categorical_parameter_ranges = {{"booster", {"gbtree", "dart"}}};
  s.hyper_parameter_tuning_job_config->resource_limits->max_number_of_training_jobs = 6;
  EXPECT_TRUE(Validate(s, Spelling::kCrd).empty()) << Describe(Validate(s, Spelling::kCrd));
  s.hyper_parameter_tuning_job_config->resource_limits->max_number_of_training_jobs = 50;
  EXPECT_FALSE(Validate(s, Spelling::kCrd).empty());
  r.continuous_parameter_ranges = {{"eta", "0.1", "0.2", std::nullopt}};
  EXPECT_TRUE(Validate(s, Spelling::kCrd).empty()) << Describe(Validate(s, Spelling::kCrd));
  // A continuous range from a value to itself is that one value: no more combinations.
  r.continuous_parameter_ranges = {{"eta", "0.5", "0.50", std::nullopt}};
  FieldErrors fixed = Validate(s, Spelling::kCrd);
  ASSERT_EQ(fixed.size(), 1u) << Describe(fixed);
  EXPECT_NE(fixed[0].message.find("give 6 combinations, fewer than the 50"), std::string::npos) << fixed[0].message;
  // An empty categorical value is one (botocore's ParameterValue is 0-256 characters).
  r.continuous_parameter_ranges.clear();
  r.categorical_parameter_ranges = {{"booster", {"gbtree", "dart", ""}}};
  s.hyper_parameter_tuning_job_config->resource_limits->max_number_of_training_jobs = 9;
  EXPECT_TRUE(Validate(s, Spelling::kCrd).empty()) << Describe(Validate(s, Spelling::kCrd));
}

// Ranges of 2^32 and 2^40 values: their product is capped, not overflowed. Two such ranges
// multiplied past int64 and wrapped to 0 combinations, and a valid job was refused.
TEST(Validate, HugeIntegerRangesCountAsPlentyOfCombinations) {
  TuningJobSpec s = Make(Base::kRandom);
  s.hyper_parameter_tuning_job_config->parameter_ranges = ParameterRanges{};
  auto& r = *s.hyper_parameter_tuning_job_config->parameter_ranges;
  r.integer_parameter_ranges = {{"a", "0", "4294967295", std::nullopt}, {"b", "0", "4294967295", std::nullopt}};
  s.hyper_parameter_tuning_job_config->resource_limits->max_number_of_training_jobs = 10;
  EXPECT_TRUE(Validate(s, Spelling::kCrd).empty()) << Describe(Validate(s, Spelling::kCrd));
  r.integer_parameter_ranges = {{"a", "1", "1099511627775", std::nullopt}, {"b", "1", "1099511627775", std::nullopt}};
  EXPECT_TRUE(Validate(s, Spelling::kCrd).empty()) << Describe(Validate(s, Spelling::kCrd));
}

// Hyperband proposes from the same space as Random: too few combinations ended it early too.
TEST(Validate, AHyperbandJobNeedsEnoughCombinationsToo) {
  TuningJobSpec s = Make(Base::kHyperband);
  s.hyper_parameter_tuning_job_config->parameter_ranges = ParameterRanges{};
  s.hyper_parameter_tuning_job_config->parameter_ranges->categorical_parameter_ranges = {{"opt", {"a", "b"}}};
  s.hyper_parameter_tuning_job_config->resource_limits->max_number_of_training_jobs = 10;
  FieldErrors errors = Validate(s, Spelling::kCrd);
  ASSERT_EQ(errors.size(), 1u) << Describe(errors);
  EXPECT_NE(errors[0].message.find("give 2 combinations, fewer than the 10"), std::string::npos) << errors[0].message;
}

// ---- one rule per row ---------------------------------------------------------------------------

struct Case {
  std::string name;
  Base base;
  std::function<void(TuningJobSpec&)> mutate;
  std::string path;     // exact, CRD spelling
  std::string message;  // a substring
  size_t count = 1;     // how many errors the mutation causes in all
};

// Test names in failure output instead of a byte dump.
void PrintTo(const Case& c, std::ostream* os) { *os << c.name; }

const std::string C = "spec.hyperParameterTuningJobConfig";
const std::string R = C + ".parameterRanges";
const std::string RL = C + ".resourceLimits";
const std::string D = "spec.trainingJobDefinition";
const std::string A = D + ".algorithmSpecification";
const std::string CH = D + ".inputDataConfig";
const std::string S3P = CH + "[0].dataSource.s3DataSource";
const std::string FSP = CH + "[0].dataSource.fileSystemDataSource";
const std::string SC = D + ".stoppingCondition";
const std::string RC = D + ".resourceConfig";
const std::string W = "spec.warmStartConfig";
const std::string M = "spec.trainingJobDefinitions";
const std::string HP = D + ".hyperParameterTuningResourceConfig";

// The definition's resources as instance types to choose from (the SDK's instance_configs).
HyperParameterTuningResourceConfig& UseInstanceConfigs(TuningJobSpec& s) {
  Def(s).resource_config.reset();
  auto& h = Def(s).hyper_parameter_tuning_resource_config.emplace();
  h.allocation_strategy = "Prioritized";
  h.instance_configs = {{"ml.g5.xlarge", 1, 30}, {"ml.g4dn.xlarge", 1, 30}};
  return h;
}

std::vector<Case> Cases() {
  using S = TuningJobSpec;
  const std::string long_key(257, 'k');
  return {
      // Job name and config.
      {"job_name_missing", Base::kRandom, [](S& s) { s.hyper_parameter_tuning_job_name.reset(); },
       "spec.hyperParameterTuningJobName", "is required"},
      {"job_name_too_long", Base::kRandom, [](S& s) { s.hyper_parameter_tuning_job_name = std::string(33, 'a'); },
       "spec.hyperParameterTuningJobName", "must be 1-32 characters, got 33"},
      {"job_name_underscore", Base::kRandom, [](S& s) { s.hyper_parameter_tuning_job_name = "my_job"; },
       "spec.hyperParameterTuningJobName", "must match [a-zA-Z0-9](-*[a-zA-Z0-9]){0,31}"},
      {"job_name_trailing_hyphen", Base::kRandom, [](S& s) { s.hyper_parameter_tuning_job_name = "job-"; },
       "spec.hyperParameterTuningJobName", "got \"job-\""},
      {"config_missing", Base::kRandom, [](S& s) { s.hyper_parameter_tuning_job_config.reset(); }, C, "is required"},
      {"strategy_missing", Base::kRandom, [](S& s) { Cfg(s).strategy.reset(); }, C + ".strategy",
       "is required: one of Bayesian, Random, Hyperband, Grid"},
      {"strategy_unknown", Base::kRandom, [](S& s) { Cfg(s).strategy = "bayes"; }, C + ".strategy",
       "must be one of Bayesian, Random, Hyperband, Grid; got \"bayes\""},
      {"strategy_wrong_case", Base::kRandom, [](S& s) { Cfg(s).strategy = "random"; }, C + ".strategy",
       "case-sensitive"},
      {"objective_missing", Base::kRandom, [](S& s) { Cfg(s).hyper_parameter_tuning_job_objective.reset(); },
       C + ".hyperParameterTuningJobObjective", "is required"},
      {"objective_type_unknown", Base::kRandom, [](S& s) { Cfg(s).hyper_parameter_tuning_job_objective->type = "Max"; },
       C + ".hyperParameterTuningJobObjective.type_", "must be one of Maximize, Minimize; got \"Max\""},
      {"objective_metric_missing", Base::kRandom,
       [](S& s) { Cfg(s).hyper_parameter_tuning_job_objective->metric_name.reset(); },
       C + ".hyperParameterTuningJobObjective.metricName", "is required"},
      {"objective_metric_too_long", Base::kRandom,
       [](S& s) { Cfg(s).hyper_parameter_tuning_job_objective->metric_name = std::string(256, 'm'); },
       C + ".hyperParameterTuningJobObjective.metricName", "must be 1-255 characters"},
      {"objective_metric_not_defined", Base::kRandom,
       [](S& s) { Cfg(s).hyper_parameter_tuning_job_objective->metric_name = "validation:rmse"; },
       C + ".hyperParameterTuningJobObjective.metricName",
       "\"validation:rmse\" is not defined in spec.trainingJobDefinition.algorithmSpecification.metricDefinitions"},
      {"resource_limits_missing", Base::kRandom, [](S& s) { Cfg(s).resource_limits.reset(); }, RL, "is required"},
      {"max_parallel_missing", Base::kRandom, [](S& s) { Cfg(s).resource_limits->max_parallel_training_jobs.reset(); },
       RL + ".maxParallelTrainingJobs", "is required"},
      {"max_parallel_zero", Base::kRandom, [](S& s) { Cfg(s).resource_limits->max_parallel_training_jobs = 0; },
       RL + ".maxParallelTrainingJobs", "must be between 1 and 100, got 0"},
      {"max_parallel_over_coordinator_limit", Base::kRandom,
       [](S& s) { Cfg(s).resource_limits->max_parallel_training_jobs = 101; }, RL + ".maxParallelTrainingJobs",
       "that is a quota (per account on SageMaker, an option here): raise it with --max-parallel-training-jobs"},
      {"max_jobs_missing", Base::kRandom, [](S& s) { Cfg(s).resource_limits->max_number_of_training_jobs.reset(); },
       RL + ".maxNumberOfTrainingJobs", "is required"},
      {"max_jobs_zero", Base::kRandom, [](S& s) { Cfg(s).resource_limits->max_number_of_training_jobs = 0; },
       RL + ".maxNumberOfTrainingJobs", "must be >= 1, got 0"},
      {"max_jobs_over_random_limit", Base::kRandom,
       [](S& s) { Cfg(s).resource_limits->max_number_of_training_jobs = 10001; }, RL + ".maxNumberOfTrainingJobs",
       "must be <= 10000 for the Random strategy"},
      {"max_jobs_over_bayesian_limit", Base::kRandom,
       [](S& s) {
         Cfg(s).strategy = "Bayesian";
         Cfg(s).resource_limits->max_number_of_training_jobs = 751;
       },
       RL + ".maxNumberOfTrainingJobs", "must be <= 750 for the Bayesian strategy"},
      {"tuning_runtime_too_short", Base::kRandom, [](S& s) { Cfg(s).resource_limits->max_runtime_in_seconds = 60; },
       RL + ".maxRuntimeInSeconds", "must be between 120 and 15768000, got 60"},
      {"tuning_runtime_too_long", Base::kRandom,
       [](S& s) { Cfg(s).resource_limits->max_runtime_in_seconds = 15768001; }, RL + ".maxRuntimeInSeconds",
       "got 15768001"},
      {"random_seed_negative", Base::kRandom, [](S& s) { Cfg(s).random_seed = -1; }, C + ".randomSeed",
       "must be >= 0, got -1"},
      {"early_stopping_unknown", Base::kRandom, [](S& s) { Cfg(s).training_job_early_stopping_type = "On"; },
       C + ".trainingJobEarlyStoppingType", "must be one of Off, Auto; got \"On\""},
      {"not_improving_below_three", Base::kRandom,
       [](S& s) {
         Cfg(s).tuning_job_completion_criteria =
             TuningJobCompletionCriteria{std::nullopt, BestObjectiveNotImproving{2}, std::nullopt};
       },
       C + ".tuningJobCompletionCriteria.bestObjectiveNotImproving.maxNumberOfTrainingJobsNotImproving",
       "must be >= 3, got 2"},
      {"convergence_unknown", Base::kRandom,
       [](S& s) {
         Cfg(s).tuning_job_completion_criteria =
             TuningJobCompletionCriteria{0.9, std::nullopt, ConvergenceDetected{"Yes"}};
       },
       C + ".tuningJobCompletionCriteria.convergenceDetected.completeOnConvergence",
       "must be one of Disabled, Enabled; got \"Yes\""},
      {"strategy_config_without_hyperband", Base::kRandom,
       [](S& s) {
         Cfg(s).strategy_config = StrategyConfig{HyperbandStrategyConfig{1, 10}};
       },
       C + ".strategyConfig", "only allowed with the Hyperband strategy"},

      // Hyperband.
      {"hyperband_with_early_stopping", Base::kHyperband,
       [](S& s) { Cfg(s).training_job_early_stopping_type = "Auto"; }, C + ".trainingJobEarlyStoppingType",
       "must be Off with the Hyperband strategy"},
      {"hyperband_min_resource_zero", Base::kHyperband,
       [](S& s) {
         Cfg(s).strategy_config = StrategyConfig{HyperbandStrategyConfig{0, 81}};
       },
       C + ".strategyConfig.hyperbandStrategyConfig.minResource", "must be >= 1, got 0"},
      {"hyperband_max_resource_over_20000", Base::kHyperband,
       [](S& s) {
         Cfg(s).strategy_config = StrategyConfig{HyperbandStrategyConfig{1, 20001}};
       },
       C + ".strategyConfig.hyperbandStrategyConfig.maxResource", "must be between 1 and 20000, got 20001"},
      {"hyperband_min_above_max", Base::kHyperband,
       [](S& s) {
         Cfg(s).strategy_config = StrategyConfig{HyperbandStrategyConfig{10, 5}};
       },
       C + ".strategyConfig.hyperbandStrategyConfig", "minResource 10 must be <= maxResource 5"},
      {"hyperband_no_max_resource_to_infer", Base::kHyperband,
       [](S& s) { Def(s).static_hyper_parameters.erase("epochs"); }, D + ".staticHyperParameters",
       "add a static hyperparameter epochs, numepochs, n-epochs, n_epochs or num_epochs (a positive integer) or set "
       "spec.hyperParameterTuningJobConfig.strategyConfig.hyperbandStrategyConfig.maxResource"},
      {"hyperband_epochs_not_integer", Base::kHyperband, [](S& s) { Def(s).static_hyper_parameters["epochs"] = "ten"; },
       D + ".staticHyperParameters.epochs", "must be a positive integer"},
      {"hyperband_min_resource_above_epochs", Base::kHyperband,
       [](S& s) {
         Cfg(s).strategy_config = StrategyConfig{HyperbandStrategyConfig{100, std::nullopt}};
       },
       D + ".staticHyperParameters.epochs", "must be >= minResource 100"},
      {"hyperband_epochs_over_20000", Base::kHyperband,
       [](S& s) { Def(s).static_hyper_parameters["epochs"] = "20001"; }, D + ".staticHyperParameters.epochs",
       "must be <= 20000"},

      // Parameter ranges.
      {"integer_range_name_missing", Base::kRandom, [](S& s) { Ranges(s).integer_parameter_ranges[0].name.reset(); },
       R + ".integerParameterRanges[0].name", "is required"},
      {"integer_range_min_missing", Base::kRandom,
       [](S& s) { Ranges(s).integer_parameter_ranges[0].min_value.reset(); }, R + ".integerParameterRanges[0].minValue",
       "is required: an integer"},
      {"integer_range_min_not_integer", Base::kRandom,
       [](S& s) { Ranges(s).integer_parameter_ranges[0].min_value = "1.5"; }, R + ".integerParameterRanges[0].minValue",
       "must be an integer, got \"1.5\""},
      {"continuous_range_max_not_number", Base::kRandom,
       [](S& s) { Ranges(s).continuous_parameter_ranges[0].max_value = "abc"; },
       R + ".continuousParameterRanges[0].maxValue", "must be a finite decimal number, got \"abc\""},
      {"continuous_range_max_infinite", Base::kRandom,
       [](S& s) { Ranges(s).continuous_parameter_ranges[0].max_value = "inf"; },
       R + ".continuousParameterRanges[0].maxValue", "finite decimal"},
      {"continuous_range_value_too_long", Base::kRandom,
       [](S& s) { Ranges(s).continuous_parameter_ranges[0].max_value = "0." + std::string(255, '1'); },
       R + ".continuousParameterRanges[0].maxValue", "must be 1-256 characters, got 257"},
      {"integer_range_min_above_max", Base::kRandom,
       [](S& s) { Ranges(s).integer_parameter_ranges[0].min_value = "11"; }, R + ".integerParameterRanges[0]",
       "minValue \"11\" must be <= maxValue \"10\""},
      {"scaling_type_unknown", Base::kRandom,
       [](S& s) { Ranges(s).continuous_parameter_ranges[0].scaling_type = "Log"; },
       R + ".continuousParameterRanges[0].scalingType",
       "must be one of Auto, Linear, Logarithmic, ReverseLogarithmic; got \"Log\""},
      {"logarithmic_continuous_min_zero", Base::kRandom,
       [](S& s) { Ranges(s).continuous_parameter_ranges[0].min_value = "0"; }, R + ".continuousParameterRanges[0]",
       "scalingType Logarithmic needs minValue > 0, got \"0\""},
      {"logarithmic_integer_min_negative", Base::kRandom,
       [](S& s) {
         Ranges(s).integer_parameter_ranges[0].min_value = "-2";
         Ranges(s).integer_parameter_ranges[0].scaling_type = "Logarithmic";
       },
       R + ".integerParameterRanges[0]", "scalingType Logarithmic needs minValue > 0, got \"-2\""},
      {"reverse_logarithmic_integer", Base::kRandom,
       [](S& s) { Ranges(s).integer_parameter_ranges[0].scaling_type = "ReverseLogarithmic"; },
       R + ".integerParameterRanges[0].scalingType", "only allowed for continuousParameterRanges"},
      {"reverse_logarithmic_max_one", Base::kRandom,
       [](S& s) {
         Ranges(s).continuous_parameter_ranges[0] = NumericRange{"momentum", "0.5", "1", "ReverseLogarithmic"};
       },
       R + ".continuousParameterRanges[0]", "scalingType ReverseLogarithmic needs maxValue < 1, got \"1\""},
      {"reverse_logarithmic_min_negative", Base::kRandom,
       [](S& s) {
         Ranges(s).continuous_parameter_ranges[0] = NumericRange{"momentum", "-0.1", "0.9", "ReverseLogarithmic"};
       },
       R + ".continuousParameterRanges[0]", "needs minValue >= 0, got \"-0.1\""},
      {"too_many_integer_ranges", Base::kRandom,
       [](S& s) {
         auto& ranges = Ranges(s);
         ranges.categorical_parameter_ranges.clear();
         ranges.continuous_parameter_ranges.clear();
         ranges.integer_parameter_ranges.clear();
         for (int i = 0; i < 31; ++i)
           ranges.integer_parameter_ranges.push_back({"p" + std::to_string(i), "1", "2", std::nullopt});
       },
       R + ".integerParameterRanges", "must have at most 30 ranges, got 31", 2 /* and 31 > 30 tunable */},
      {"categorical_without_values", Base::kRandom,
       [](S& s) { Ranges(s).categorical_parameter_ranges[0].values.clear(); },
       R + ".categoricalParameterRanges[0].values", "is required: 1-30 values"},
      {"categorical_too_many_values", Base::kRandom,
       [](S& s) {
         auto& values = Ranges(s).categorical_parameter_ranges[0].values;
         values.clear();
         for (int i = 0; i < 31; ++i) values.push_back("v" + std::to_string(i));
       },
       R + ".categoricalParameterRanges[0].values", "must have 1-30 values, got 31"},
      {"categorical_long_value", Base::kRandom,
       [](S& s) { Ranges(s).categorical_parameter_ranges[0].values[1] = std::string(257, 'v'); },
       R + ".categoricalParameterRanges[0].values[1]", "must be at most 256 characters, got 257"},
      {"categorical_duplicate_value", Base::kRandom,
       [](S& s) { Ranges(s).categorical_parameter_ranges[0].values.push_back("gbtree"); },
       R + ".categoricalParameterRanges[0].values[2]", "duplicates the value \"gbtree\""},
      {"categorical_name_missing", Base::kRandom, [](S& s) { Ranges(s).categorical_parameter_ranges[0].name.reset(); },
       R + ".categoricalParameterRanges[0].name", "is required"},
      {"range_name_repeated_across_kinds", Base::kRandom,
       [](S& s) { Ranges(s).continuous_parameter_ranges[0].name = "max_depth"; },
       R + ".continuousParameterRanges[0].name",
       "duplicates the hyperparameter \"max_depth\" of " + R + ".integerParameterRanges[0]"},
      {"range_name_repeated_in_definition", Base::kRandom,
       [](S& s) {
         Def(s).hyper_parameter_ranges = ParameterRanges{};
         Def(s).hyper_parameter_ranges->integer_parameter_ranges = {{"max_depth", "1", "4", std::nullopt}};
       },
       D + ".hyperParameterRanges.integerParameterRanges[0].name", "duplicates the hyperparameter \"max_depth\""},
      {"range_name_also_static", Base::kRandom, [](S& s) { Def(s).static_hyper_parameters["eta"] = "0.1"; },
       R + ".continuousParameterRanges[0].name", "\"eta\" is also in staticHyperParameters"},
      {"too_many_tunable_hyperparameters", Base::kRandom,
       [](S& s) {
         for (int i = 0; i < 28; ++i)
           Ranges(s).categorical_parameter_ranges.push_back({"c" + std::to_string(i), {"a"}});
       },
       R, "defines 31 tunable hyperparameters; at most 30"},
      {"static_plus_tunable_over_100", Base::kRandom,
       [](S& s) {
         for (int i = 0; i < 96; ++i) Def(s).static_hyper_parameters["s" + std::to_string(i)] = "1";
       },
       D + ".staticHyperParameters", "makes 101; at most 100 hyperparameters in total"},
      {"static_key_too_long", Base::kRandom, [long_key](S& s) { Def(s).static_hyper_parameters[long_key] = "1"; },
       // The key in the path is cut, as values are in messages (257 characters filled the line).
       D + ".staticHyperParameters." + long_key.substr(0, 64) + "...(257 bytes)", "at most 256 are allowed"},
      {"static_value_too_long", Base::kRandom,
       [](S& s) { Def(s).static_hyper_parameters["objective"] = std::string(2501, 'v'); },
       D + ".staticHyperParameters.objective", "must be at most 2500 characters, got 2501"},
      {"auto_parameter_without_hint", Base::kRandom,
       [](S& s) {
         s.autotune = Autotune{"Enabled"};
         Ranges(s).auto_parameters.push_back({"alpha", std::nullopt});
       },
       R + ".autoParameters[0].valueHint", "is required"},
      {"auto_parameters_without_autotune", Base::kRandom,
       [](S& s) { Ranges(s).auto_parameters.push_back({"alpha", "0.1"}); }, R + ".autoParameters",
       "needs Autotune: set spec.autotune.mode to Enabled, or write these as Integer, Continuous or Categorical "
       "ranges"},
      {"no_resource_limits_without_autotune", Base::kRandom, [](S& s) { Cfg(s).resource_limits.reset(); }, RL,
       "is required (maxParallelTrainingJobs, and maxNumberOfTrainingJobs unless the strategy is Grid), unless "
       "Autotune is enabled"},
      {"no_ranges_at_all", Base::kRandom, [](S& s) { Cfg(s).parameter_ranges.reset(); }, R,
       "needs at least one range to tune"},
      {"autotune_mode_not_enabled", Base::kRandom, [](S& s) { s.autotune = Autotune{"Disabled"}; },
       "spec.autotune.mode", "must be Enabled; got \"Disabled\""},

      // Grid.
      {"grid_with_integer_range", Base::kGrid,
       [](S& s) {
         Ranges(s).integer_parameter_ranges = {{"rounds", "1", "5", std::nullopt}};
       },
       R + ".integerParameterRanges", "is not allowed with the Grid strategy"},
      {"grid_with_continuous_range_in_definition", Base::kGrid,
       [](S& s) {
         Def(s).hyper_parameter_ranges = ParameterRanges{};
         Def(s).hyper_parameter_ranges->continuous_parameter_ranges = {{"eta", "0.1", "0.2", std::nullopt}};
       },
       D + ".hyperParameterRanges.continuousParameterRanges", "is not allowed with the Grid strategy"},
      {"grid_job_count_not_combinations", Base::kGrid,
       [](S& s) { Cfg(s).resource_limits->max_number_of_training_jobs = 7; }, RL + ".maxNumberOfTrainingJobs",
       "must equal the number of Grid combinations, 6"},
      {"grid_combinations_over_limit", Base::kGrid,
       [](S& s) {
         Cfg(s).resource_limits->max_number_of_training_jobs.reset();
         CategoricalRange wide{"seed", {}};
         for (int i = 0; i < 30; ++i) wide.values.push_back(std::to_string(i));
         Ranges(s).categorical_parameter_ranges.push_back(wide);  // 2 * 3 * 30 = 180
         wide.name = "fold";
         Ranges(s).categorical_parameter_ranges.push_back(wide);  // * 30 = 5400
       },
       RL, "would run 5400 combinations; at most 750"},
      {"grid_combinations_past_the_count", Base::kGrid,  // a limits pass: it printed 2^40 as the count
       [](S& s) {
         Cfg(s).resource_limits->max_number_of_training_jobs.reset();
         CategoricalRange wide{"p0", {}};
         for (int i = 0; i < 30; ++i) wide.values.push_back(std::to_string(i));
         for (int k = 0; k < 12; ++k) {  // 6 * 30^12, about 3e18
           wide.name = "p" + std::to_string(k);
           Ranges(s).categorical_parameter_ranges.push_back(wide);
         }
       },
       RL, "would run more than 1099511627776 combinations; at most 750"},

      // Random and Bayesian: as many configurations as training jobs (SageMaker: "You don't have
      // enough combinations of hyperparameter ranges").
      {"random_fewer_combinations_than_jobs", Base::kRandom,
       [](S& s) {
         Ranges(s) = ParameterRanges{};
         Ranges(s).integer_parameter_ranges = {{"depth", "0", "2", std::nullopt}};
         Ranges(s).categorical_parameter_ranges = {{"booster", {"gbtree", "dart"}}};
         Cfg(s).resource_limits->max_number_of_training_jobs = 7;
       },
       RL + ".maxNumberOfTrainingJobs", "enough combinations of hyperparameter ranges: the integer and categorical "
                                        "ranges (and any continuous range whose MinValue equals its MaxValue) give 6 "
                                        "combinations, fewer than the 7"},
      // Definitions.
      {"no_definition", Base::kRandom, [](S& s) { s.training_job_definition.reset(); }, D, "is required"},
      {"both_definition_kinds", Base::kRandom,
       [](S& s) {
         TrainingJobDefinition extra = Def(s);
         extra.definition_name = "extra";
         extra.hyper_parameter_ranges = ParameterRanges{};
         extra.hyper_parameter_ranges->categorical_parameter_ranges = {{"gamma", {"0", "1"}}};
         s.training_job_definitions = {extra};
       },
       M, "cannot be combined with trainingJobDefinition"},
      {"too_many_definitions", Base::kMulti,
       [](S& s) {
         for (int i = 2; i < 11; ++i) {
           TrainingJobDefinition d = s.training_job_definitions[0];
           d.definition_name = "def-" + std::to_string(i);
           s.training_job_definitions.push_back(d);
         }
       },
       M, "must have at most 10 definitions, got 11"},
      {"definitions_objective_types_differ", Base::kMulti,
       [](S& s) { s.training_job_definitions[1].tuning_objective->type = "Minimize"; },
       "spec.trainingJobDefinitions[1].tuningObjective.type_",
       "is Minimize but trainingJobDefinitions[0]'s objective is Maximize; every definition must use the same "
       "type_ (the best training job is chosen across all of them)"},
      {"job_objective_against_every_definitions_own", Base::kMulti,
       [](S& s) {  // each definition has its own Maximize objective
         s.hyper_parameter_tuning_job_config->hyper_parameter_tuning_job_objective = Objective{"Minimize", "acc"};
       },
       "spec.hyperParameterTuningJobConfig.hyperParameterTuningJobObjective.type_",
       "is Minimize but every entry of trainingJobDefinitions has its own tuningObjective of type_ Maximize, which is "
       "used instead; make it Maximize or leave hyperParameterTuningJobObjective out"},
      {"definition_name_missing", Base::kMulti, [](S& s) { s.training_job_definitions[1].definition_name.reset(); },
       M + "[1].definitionName", "is required"},
      {"definition_name_bad_pattern", Base::kMulti,
       [](S& s) { s.training_job_definitions[1].definition_name = "light_gbm"; }, M + "[1].definitionName",
       "must match [a-zA-Z0-9](-*[a-zA-Z0-9]){0,63}"},
      {"definition_name_duplicate", Base::kMulti, [](S& s) { s.training_job_definitions[1].definition_name = "xgb"; },
       M + "[1].definitionName", "duplicates the name \"xgb\" of spec.trainingJobDefinitions[0]"},
      {"multi_definition_without_ranges", Base::kMulti,
       [](S& s) { s.training_job_definitions[0].hyper_parameter_ranges.reset(); }, M + "[0].hyperParameterRanges",
       "is required with at least one range"},
      {"multi_definition_with_config_ranges", Base::kMulti,
       [](S& s) {
         Cfg(s).parameter_ranges = ParameterRanges{};
         Cfg(s).parameter_ranges->categorical_parameter_ranges = {{"booster", {"gbtree"}}};
       },
       R, "must be empty when trainingJobDefinitions is used"},
      {"multi_definition_without_own_objective", Base::kMulti,
       [](S& s) { s.training_job_definitions[1].tuning_objective.reset(); }, C + ".hyperParameterTuningJobObjective",
       "unless every entry of trainingJobDefinitions has its own tuningObjective"},
      {"multi_definition_objective_type_unknown", Base::kMulti,
       [](S& s) { s.training_job_definitions[0].tuning_objective->type = "Highest"; }, M + "[0].tuningObjective.type_",
       "must be one of Maximize, Minimize"},
      {"multi_definition_objective_metric_not_defined", Base::kMulti,
       [](S& s) { s.training_job_definitions[1].tuning_objective->metric_name = "validation:auc"; },
       M + "[1].tuningObjective.metricName", "(defined: \"valid:auc\")"},
      {"multi_definition_early_stopping", Base::kMulti, [](S& s) { Cfg(s).training_job_early_stopping_type = "Auto"; },
       C + ".trainingJobEarlyStoppingType", "supported only with a single training job definition"},
      {"multi_definition_warm_start", Base::kMulti,
       [](S& s) {
         s.warm_start_config = WarmStartConfig{{{"parent-a"}}, "TransferLearning"};
       },
       W, "supported only with a single training job definition"},

      // Algorithm.
      {"algorithm_missing", Base::kRandom, [](S& s) { Def(s).algorithm_specification.reset(); }, A, "is required"},
      {"algorithm_image_and_name", Base::kRandom, [](S& s) { Algo(s).algorithm_name = "xgboost"; }, A,
       "set exactly one of trainingImage and algorithmName"},
      {"algorithm_neither_image_nor_name", Base::kRandom, [](S& s) { Algo(s).training_image.reset(); }, A,
       "needs trainingImage"},
      {"training_image_too_long", Base::kRandom, [](S& s) { Algo(s).training_image = std::string(256, 'i'); },
       A + ".trainingImage", "must be 1-255 characters, got 256"},
      // Without metric definitions too: one error, not a second naming the objective's metric (the
      // program, and so the metrics it brings, is unknown while the image is in error).
      {"training_image_too_long_without_metric_definitions", Base::kRandom,
       [](S& s) {
         Algo(s).training_image = std::string(256, 'i');
         Algo(s).metric_definitions.clear();
       },
       A + ".trainingImage", "must be 1-255 characters, got 256"},
      {"algorithm_neither_without_metric_definitions", Base::kRandom,
       [](S& s) {
         Algo(s).training_image.reset();
         Algo(s).metric_definitions.clear();
       },
       A, "needs trainingImage"},
      {"training_input_mode_missing", Base::kRandom, [](S& s) { Algo(s).training_input_mode.reset(); },
       A + ".trainingInputMode", "is required: one of Pipe, File, FastFile"},
      {"training_input_mode_unknown", Base::kRandom, [](S& s) { Algo(s).training_input_mode = "Stream"; },
       A + ".trainingInputMode", "must be one of Pipe, File, FastFile; got \"Stream\""},
      {"too_many_metric_definitions", Base::kRandom,
       [](S& s) {
         for (int i = 0; i < 40; ++i) Algo(s).metric_definitions.push_back({"m" + std::to_string(i), "m: ([0-9]+)"});
       },
       A + ".metricDefinitions", "must have at most 40 metric definitions, got 41"},
      {"metric_name_missing", Base::kRandom,
       [](S& s) {
         Algo(s).metric_definitions.push_back({std::nullopt, "loss: ([0-9.]+)"});
       },
       A + ".metricDefinitions[1].name", "is required"},
      {"metric_name_duplicate", Base::kRandom,
       [](S& s) {
         Algo(s).metric_definitions.push_back({"validation:auc", "auc=([0-9.]+)"});
       },
       A + ".metricDefinitions[1].name", "duplicates the metric \"validation:auc\""},
      {"metric_regex_missing", Base::kRandom, [](S& s) { Algo(s).metric_definitions[0].regex.reset(); },
       A + ".metricDefinitions[0].regex", "is required"},
      {"metric_regex_too_long", Base::kRandom,
       [](S& s) { Algo(s).metric_definitions[0].regex = "(" + std::string(500, 'a') + ")"; },
       A + ".metricDefinitions[0].regex", "must be 1-500 characters, got 502"},
      {"metric_regex_does_not_compile", Base::kRandom,
       [](S& s) { Algo(s).metric_definitions[0].regex = "auc: ([0-9.]+"; }, A + ".metricDefinitions[0].regex",
       "is not a valid regular expression"},
      {"metric_regex_with_a_lookbehind", Base::kRandom,
       [](S& s) { Algo(s).metric_definitions[0].regex = "(?<=auc: )([0-9.]+)"; }, A + ".metricDefinitions[0].regex",
       "hpo matches with RE2, which has no lookahead, lookbehind or backreferences"},
      {"metric_regex_with_a_backreference", Base::kRandom,
       [](S& s) { Algo(s).metric_definitions[0].regex = "(['\"])([0-9.]+)\\1"; }, A + ".metricDefinitions[0].regex",
       "no lookahead, lookbehind or backreferences"},
      {"metric_regex_without_group", Base::kRandom, [](S& s) { Algo(s).metric_definitions[0].regex = "auc: [0-9.]+"; },
       A + ".metricDefinitions[0].regex", "group 1 holds the metric value"},

      // Role, output, stopping.
      {"role_missing", Base::kRandom, [](S& s) { Def(s).role_arn.reset(); }, D + ".roleARN", "is required"},
      {"role_too_short", Base::kRandom, [](S& s) { Def(s).role_arn = "arn:aws:iam::1"; }, D + ".roleARN",
       "must be 20-2048 characters, got 14"},
      {"output_missing", Base::kRandom, [](S& s) { Def(s).output_data_config.reset(); }, D + ".outputDataConfig",
       "is required"},
      {"output_path_missing", Base::kRandom, [](S& s) { Def(s).output_data_config->s3_output_path.reset(); },
       D + ".outputDataConfig.s3OutputPath", "is required"},
      {"output_path_relative", Base::kRandom, [](S& s) { Def(s).output_data_config->s3_output_path = "out/"; },
       D + ".outputDataConfig.s3OutputPath", "an absolute local path; got \"out/\""},
      {"output_compression_wrong_case", Base::kRandom,
       [](S& s) { Def(s).output_data_config->compression_type = "gzip"; }, D + ".outputDataConfig.compressionType",
       "must be one of GZIP, NONE; got \"gzip\" (values are case-sensitive: GZIP)"},
      {"stopping_condition_missing", Base::kRandom, [](S& s) { Def(s).stopping_condition.reset(); }, SC, "is required"},
      {"max_runtime_zero", Base::kRandom, [](S& s) { Def(s).stopping_condition->max_runtime_in_seconds = 0; },
       SC + ".maxRuntimeInSeconds", "must be >= 1, got 0"},
      {"max_wait_without_managed_spot", Base::kRandom,
       [](S& s) { Def(s).stopping_condition->max_wait_time_in_seconds = 7200; }, SC + ".maxWaitTimeInSeconds",
       "Invalid MaxWaitTimeInSeconds. It is only supported when EnableManagedSpotTraining is set to true"},
      {"max_wait_below_max_runtime", Base::kRandom,
       [](S& s) {
         Def(s).enable_managed_spot_training = true;
         Def(s).stopping_condition->max_wait_time_in_seconds = 1800;
       },
       SC + ".maxWaitTimeInSeconds", "must be >= maxRuntimeInSeconds (3600), got 1800"},
      {"max_wait_below_default_max_runtime", Base::kRandom,
       [](S& s) {
         Def(s).enable_managed_spot_training = true;
         Def(s).stopping_condition->max_runtime_in_seconds.reset();
         Def(s).stopping_condition->max_wait_time_in_seconds = 3600;
       },
       SC + ".maxWaitTimeInSeconds", "(86400, the default)"},
      {"max_pending_too_short", Base::kRandom,
       [](S& s) { Def(s).stopping_condition->max_pending_time_in_seconds = 1799; }, SC + ".maxPendingTimeInSeconds",
       "must be between 1800 and 2419200, got 1799"},
      // SageMaker's integers are 32-bit: larger times overflowed hpo's arithmetic (a training job
      // that never started, or was stopped at once).
      {"max_runtime_past_int32", Base::kRandom,
       [](S& s) { Def(s).stopping_condition->max_runtime_in_seconds = 4294967296; }, SC + ".maxRuntimeInSeconds",
       "must be between 1 and 2147483647 (SageMaker's integers are 32-bit), got 4294967296"},
      {"max_wait_past_int32", Base::kRandom,
       [](S& s) {
         Def(s).enable_managed_spot_training = true;
         Def(s).stopping_condition->max_wait_time_in_seconds = int64_t{1} << 62;
       },
       SC + ".maxWaitTimeInSeconds", "(SageMaker's integers are 32-bit)"},
      {"random_seed_past_int32", Base::kRandom, [](S& s) { Cfg(s).random_seed = 2147483648; }, C + ".randomSeed",
       "must be between 0 and 2147483647"},
      {"instance_count_past_hosts_limit", Base::kRandom, [](S& s) { Def(s).resource_config->instance_count = 1025; },
       RC + ".instanceCount", "asks for 1025 hosts per training job; hpo runs at most 1024"},
      {"channel_name_dot_dot", Base::kRandom, [](S& s) { Chan(s).channel_name = ".."; }, CH + "[0].channelName",
       "must not be \"..\": a channel is the directory /opt/ml/input/data/.."},

      // Resources.
      {"resource_config_missing", Base::kRandom, [](S& s) { Def(s).resource_config.reset(); }, RC, "is required"},
      {"instance_type_missing", Base::kRandom, [](S& s) { Def(s).resource_config->instance_type.reset(); },
       RC + ".instanceType", "is required"},
      {"instance_count_zero", Base::kRandom, [](S& s) { Def(s).resource_config->instance_count = 0; },
       RC + ".instanceCount", "must be >= 1, got 0"},
      {"instance_type_with_instance_groups", Base::kGroups,
       [](S& s) { Def(s).resource_config->instance_type = "ml.g5.xlarge"; }, RC,
       "set either instanceType and instanceCount or instanceGroups, not both"},
      {"too_many_instance_groups", Base::kGroups,
       [](S& s) {
         for (int i = 0; i < 4; ++i) {
           Def(s).resource_config->instance_groups.push_back({"ml.c5.xlarge", 1, "extra" + std::to_string(i)});
         }
       },
       RC + ".instanceGroups", "must have 1-5 instance groups, got 6"},
      {"instance_group_name_duplicate", Base::kGroups,
       [](S& s) {
         Def(s).resource_config->instance_groups[1].instance_group_name = "gpu";
         S3(s, 1).instance_group_names = {"gpu"};
       },
       RC + ".instanceGroups[1].instanceGroupName", "duplicates the name \"gpu\""},
      {"instance_group_count_missing", Base::kGroups,
       [](S& s) { Def(s).resource_config->instance_groups[0].instance_count.reset(); },
       RC + ".instanceGroups[0].instanceCount", "is required"},
      // 0 is valid (botocore's OptionalVolumeSizeInGB, min 0: instance storage only).
      {"volume_size_negative", Base::kRandom, [](S& s) { Def(s).resource_config->volume_size_in_gb = -1; },
       RC + ".volumeSizeInGB", "must be >= 0, got -1"},
      // SageMaker's patterns and lengths (botocore's model), so that a spec valid here is valid there.
      {"role_arn_not_an_arn", Base::kRandom, [](S& s) { Def(s).role_arn = "not-an-arn-but-long-enough"; },
       D + ".roleARN", "must match arn:aws:iam::ACCOUNT:role/NAME"},
      {"role_arn_user_not_role", Base::kRandom, [](S& s) { Def(s).role_arn = "arn:aws:iam::123456789012:user/x"; },
       D + ".roleARN", "got \"arn:aws:iam::123456789012:user/x\""},
      {"algorithm_name_underscore", Base::kRandom,
       [](S& s) {
         Algo(s).training_image.reset();
         Algo(s).algorithm_name = "bad_name";
       },
       A + ".algorithmName", "must match [ARN/]NAME"},
      {"output_path_too_long", Base::kRandom,
       [](S& s) { Def(s).output_data_config->s3_output_path = "s3://bucket/" + std::string(1013, 'k'); },
       D + ".outputDataConfig.s3OutputPath", "must be 1-1024 characters, got 1025"},
      {"output_kms_key_with_space", Base::kRandom, [](S& s) { Def(s).output_data_config->kms_key_id = "key with space"; },
       D + ".outputDataConfig.kmsKeyID", "(a KMS key ID, alias or ARN)"},
      {"file_system_id_pattern", Base::kRandom, [](S& s) { UseFileSystem(s).file_system_id = "fs-XYZ12345"; },
       FSP + ".fileSystemID", "must match fs-[0-9a-f]{8,}"},
      {"security_group_id_underscore", Base::kRandom,
       [](S& s) { Def(s).vpc_config = VpcConfig{{"sg_1"}, {"subnet-1"}}; }, D + ".vpcConfig.securityGroupIDs[0]",
       "must match [-0-9a-zA-Z]+"},
      {"tag_key_bang", Base::kRandom, [](S& s) { s.tags = {{"key!", "v"}}; }, "spec.tags[0].key",
       "(letters, digits, spaces and _ . : / = + - @)"},
      {"content_type_too_long", Base::kRandom, [](S& s) { Chan(s).content_type = std::string(257, 't'); },
       CH + "[0].contentType", "must be at most 256 characters, got 257"},
      {"s3_data_type_converse", Base::kRandom, [](S& s) { S3(s).s3_data_type = "Converse"; }, S3P + ".s3DataType",
       "Converse is a SageMaker value that hpo does not support"},
      {"keep_alive_too_long", Base::kRandom, [](S& s) { Def(s).resource_config->keep_alive_period_in_seconds = 21601; },
       RC + ".keepAlivePeriodInSeconds", "must be between 0 and 21600, got 21601"},
      {"tuning_resource_config_beside_resource_config", Base::kRandom,
       [](S& s) {
         auto rc = *Def(s).resource_config;
         UseInstanceConfigs(s);
         Def(s).resource_config = rc;
       },
       HP, "set either resourceConfig or hyperParameterTuningResourceConfig, not both"},
      {"instance_configs_with_instance_type", Base::kRandom, [](S& s) { UseInstanceConfigs(s).instance_type = "ml.g5.xlarge"; },
       HP, "set either instanceConfigs or instanceType, instanceCount and volumeSizeInGB, not both"},
      {"too_many_instance_configs", Base::kRandom,
       [](S& s) {
         auto& h = UseInstanceConfigs(s);
         for (const char* t : {"ml.g5.2xlarge", "ml.g5.4xlarge", "ml.g6.xlarge", "ml.p3.2xlarge", "ml.m5.xlarge"}) {
           h.instance_configs.push_back({t, 1, 30});
         }
       },
       HP + ".instanceConfigs", "must have 1-6 instance configs, got 7"},
      {"instance_config_volume_missing", Base::kRandom,
       [](S& s) { UseInstanceConfigs(s).instance_configs[1].volume_size_in_gb.reset(); },
       HP + ".instanceConfigs[1].volumeSizeInGB", "is required"},
      {"instance_config_count_zero", Base::kRandom,
       [](S& s) { UseInstanceConfigs(s).instance_configs[0].instance_count = 0; },
       HP + ".instanceConfigs[0].instanceCount", "must be >= 1, got 0"},
      {"instance_config_type_missing", Base::kRandom,
       [](S& s) { UseInstanceConfigs(s).instance_configs[0].instance_type.reset(); },
       HP + ".instanceConfigs[0].instanceType", "is required"},
      {"allocation_strategy_unknown", Base::kRandom, [](S& s) { UseInstanceConfigs(s).allocation_strategy = "Cheapest"; },
       HP + ".allocationStrategy", "got \"Cheapest\""},
      {"tuning_resource_config_without_type", Base::kRandom,
       [](S& s) {
         UseInstanceConfigs(s).instance_configs.clear();
         Def(s).hyper_parameter_tuning_resource_config->instance_count = 1;
       },
       HP + ".instanceType", "is required (or instanceConfigs"},
      {"instance_group_names_with_instance_configs", Base::kRandom,
       [](S& s) {
         UseInstanceConfigs(s);
         S3(s).instance_group_names = {"gpu"};
         S3(s, 1).instance_group_names = {"gpu"};
       },
       S3P + ".instanceGroupNames", "needs resourceConfig.instanceGroups", 2 /* one per channel */},
      {"retry_attempts_zero", Base::kRandom, [](S& s) { Def(s).retry_strategy = RetryStrategy{0}; },
       D + ".retryStrategy.maximumRetryAttempts", "must be between 1 and 30, got 0"},
      {"retry_attempts_missing", Base::kRandom, [](S& s) { Def(s).retry_strategy = RetryStrategy{}; },
       D + ".retryStrategy.maximumRetryAttempts", "is required"},

      // Checkpoints, VPC, environment, tags.
      {"checkpoint_uri_missing", Base::kRandom, [](S& s) { Def(s).checkpoint_config = CheckpointConfig{}; },
       D + ".checkpointConfig.s3URI", "is required"},
      {"checkpoint_uri_unknown_scheme", Base::kRandom,
       [](S& s) {
         Def(s).checkpoint_config = CheckpointConfig{"gs://bucket/ckpt", std::nullopt};
       },
       D + ".checkpointConfig.s3URI", "got \"gs://bucket/ckpt\""},
      {"checkpoint_uri_without_bucket", Base::kRandom,
       [](S& s) {
         Def(s).checkpoint_config = CheckpointConfig{"s3:///ckpt", std::nullopt};
       },
       D + ".checkpointConfig.s3URI", "must be an s3:// URI with a bucket"},
      {"checkpoint_uri_too_long", Base::kRandom,
       [](S& s) {
         Def(s).checkpoint_config = CheckpointConfig{"s3://b/" + std::string(1018, 'x'), std::nullopt};
       },
       D + ".checkpointConfig.s3URI", "must be 1-1024 characters, got 1025"},
      {"checkpoint_local_path_relative", Base::kRandom,
       [](S& s) {
         Def(s).checkpoint_config = CheckpointConfig{"s3://bucket/ckpt/", "ckpt"};
       },
       D + ".checkpointConfig.localPath", "must be an absolute path"},
      // The worker refused these at the start of every training job, after validate said valid.
      {"checkpoint_local_path_with_dot_dot", Base::kRandom,
       [](S& s) {
         Def(s).checkpoint_config = CheckpointConfig{"s3://bucket/ckpt/", "/opt/ml/../../tmp/cp"};
       },
       D + ".checkpointConfig.localPath", "must be a clean absolute path, without . or .. components"},
      {"checkpoint_local_path_with_dot", Base::kRandom,
       [](S& s) {
         Def(s).checkpoint_config = CheckpointConfig{"s3://bucket/ckpt/", "/a/./b"};
       },
       D + ".checkpointConfig.localPath", "got \"/a/./b\""},
      {"checkpoint_local_path_opt_ml", Base::kRandom,
       [](S& s) {
         Def(s).checkpoint_config = CheckpointConfig{"s3://bucket/ckpt/", "/opt/ml/"};
       },
       D + ".checkpointConfig.localPath", "must not be /opt/ml itself"},
      {"checkpoint_local_path_model_dir", Base::kRandom,
       [](S& s) {
         Def(s).checkpoint_config = CheckpointConfig{"s3://bucket/ckpt/", "/opt/ml/model"};
       },
       D + ".checkpointConfig.localPath", "must not be in /opt/ml/model (the container contract's"},
      {"checkpoint_local_path_under_output", Base::kRandom,
       [](S& s) {
         Def(s).checkpoint_config = CheckpointConfig{"s3://bucket/ckpt/", "/opt/ml/output/data/ck/"};
       },
       D + ".checkpointConfig.localPath", "must not be in /opt/ml/output"},
      {"checkpoint_local_path_double_slash", Base::kRandom,  // a regression pass: past the checks below
       [](S& s) {
         Def(s).checkpoint_config = CheckpointConfig{"s3://bucket/ckpt/", "/opt/ml//model"};
       },
       D + ".checkpointConfig.localPath", "must be a clean absolute path, without . or .. components or //"},
      {"checkpoint_local_path_leading_double_slash", Base::kRandom,
       [](S& s) {
         Def(s).checkpoint_config = CheckpointConfig{"s3://bucket/ckpt/", "//opt"};
       },
       D + ".checkpointConfig.localPath", "without . or .. components or //; got \"//opt\""},
      {"checkpoint_local_path_opt", Base::kRandom,
       [](S& s) {
         Def(s).checkpoint_config = CheckpointConfig{"s3://bucket/ckpt/", "/opt"};
       },
       D + ".checkpointConfig.localPath", "must not be /opt (/opt/ml's input"},
      {"vpc_without_subnets", Base::kRandom,
       [](S& s) {
         Def(s).vpc_config = VpcConfig{{"sg-1"}, {}};
       },
       D + ".vpcConfig.subnets", "must have 1-16 subnets, got 0"},
      {"vpc_too_many_security_groups", Base::kRandom,
       [](S& s) {
         Def(s).vpc_config = VpcConfig{{"sg-1", "sg-2", "sg-3", "sg-4", "sg-5", "sg-6"}, {"subnet-1"}};
       },
       D + ".vpcConfig.securityGroupIDs", "must have 1-5 security group IDs, got 6"},
      {"environment_too_many", Base::kRandom,
       [](S& s) {
         for (int i = 0; i < 49; ++i) Def(s).environment["VAR_" + std::to_string(i)] = "1";
       },
       D + ".environment", "must have at most 48 entries, got 49"},
      {"environment_bad_key", Base::kRandom, [](S& s) { Def(s).environment["1BAD"] = "x"; }, D + ".environment.1BAD",
       "must match [a-zA-Z_][a-zA-Z0-9_]*"},
      {"environment_value_too_long", Base::kRandom, [](S& s) { Def(s).environment["LONG"] = std::string(513, 'v'); },
       D + ".environment.LONG", "must be at most 512 characters, got 513"},
      // What hyperparameters.json and a program's environment cannot carry is refused at submit,
      // not found out by every training job failing at once.
      {"environment_value_nul", Base::kRandom,
       [](S& s) { Def(s).environment["A"] = std::string("x\0y", 3); }, D + ".environment.A",
       "must not contain a NUL character"},
      {"static_hyperparameter_value_nul", Base::kRandom,
       [](S& s) { Def(s).static_hyper_parameters["mode"] = std::string("x\0y", 3); },
       D + ".staticHyperParameters.mode", "must not contain a NUL character"},
      {"static_hyperparameter_name_nul", Base::kRandom,
       [](S& s) { Def(s).static_hyper_parameters[std::string("a\0b", 3)] = "1"; },
       D + ".staticHyperParameters.a\\u0000b", "must not contain a NUL character"},
      {"network_isolation_multi_host", Base::kRandom,
       [](S& s) {
         Def(s).enable_network_isolation = true;
         Def(s).resource_config->instance_count = 2;
       },
       D + ".enableNetworkIsolation", "with more than one host is not supported by hpo"},
      {"tags_too_many", Base::kRandom,
       [](S& s) {
         for (int i = 0; i < 51; ++i) s.tags.push_back({"k" + std::to_string(i), "v"});
       },
       "spec.tags", "must have at most 50 tags, got 51"},
      {"tag_key_empty", Base::kRandom,
       [](S& s) {
         s.tags = {{"", "v"}};
       },
       "spec.tags[0].key", "must be 1-128 characters, got 0"},
      {"tag_value_too_long", Base::kRandom,
       [](S& s) {
         s.tags = {{"team", std::string(257, 'v')}};
       },
       "spec.tags[0].value", "must be at most 256 characters, got 257"},
      {"tag_key_aws_prefix", Base::kRandom, [](S& s) { s.tags = {{"aws:cloudformation:stack-name", "x"}}; },
       "spec.tags[0].key", "must not begin with aws: (AWS reserves the prefix"},
      {"tag_value_missing", Base::kRandom, [](S& s) { s.tags = {{"team", std::nullopt}}; }, "spec.tags[0].value",
       "is required (0-256 characters)"},
      {"tag_value_257_characters_of_two_bytes", Base::kRandom,
       [](S& s) {
         std::string v;
         for (int i = 0; i < 257; ++i) v += "\xC3\xA9";  // é
         s.tags = {{"team", v}};
       },
       "spec.tags[0].value", "must be at most 256 characters, got 257"},
      {"range_named_tuning_objective_metric", Base::kRandom,
       [](S& s) { Ranges(s).categorical_parameter_ranges[0].name = "_tuning_objective_metric"; },
       R + ".categoricalParameterRanges[0].name", "\"_tuning_objective_metric\" is reserved"},
      {"static_tuning_objective_metric_other_than_the_objective", Base::kRandom,
       [](S& s) { Def(s).static_hyper_parameters["_tuning_objective_metric"] = "train:auc"; },
       D + ".staticHyperParameters._tuning_objective_metric",
       "is set by the tuning job to the objective metric's name \"validation:auc\", not \"train:auc\""},
      {"integer_bound_beyond_2_53", Base::kRandom,
       [](S& s) { Ranges(s).integer_parameter_ranges[0].max_value = "9007199254740993"; },
       R + ".integerParameterRanges[0].maxValue",
       "must be an integer between -2^53 and 2^53 (9007199254740992), got \"9007199254740993\""},
      {"integer_bound_below_minus_2_53", Base::kRandom,
       [](S& s) { Ranges(s).integer_parameter_ranges[0].min_value = "-9007199254740993"; },
       R + ".integerParameterRanges[0].minValue", "must be an integer between -2^53 and 2^53"},
      // Past 64 bits: too large, not "not an integer" (a limits pass).
      {"integer_bound_past_64_bits", Base::kRandom,
       [](S& s) { Ranges(s).integer_parameter_ranges[0].max_value = "99999999999999999999"; },
       R + ".integerParameterRanges[0].maxValue",
       "must be an integer between -2^53 and 2^53 (9007199254740992), got \"99999999999999999999\""},
      {"tag_key_duplicate", Base::kRandom,
       [](S& s) {
         s.tags = {{"team", "a"}, {"team", "b"}};
       },
       "spec.tags[1].key", "duplicates the key \"team\" of spec.tags[0]"},

      // Channels.
      {"channels_too_many", Base::kRandom,
       [](S& s) {
         Channel c = Chan(s);
         for (int i = 0; i < 19; ++i) {
           c.channel_name = "extra" + std::to_string(i);
           Def(s).input_data_config.push_back(c);
         }
       },
       CH, "must have at most 20 channels, got 21"},
      {"channel_name_missing", Base::kRandom, [](S& s) { Chan(s).channel_name.reset(); }, CH + "[0].channelName",
       "is required"},
      {"channel_name_with_space", Base::kRandom, [](S& s) { Chan(s).channel_name = "train data"; },
       CH + "[0].channelName", "must match [A-Za-z0-9\\.\\-_]+"},
      {"channel_name_duplicate", Base::kRandom, [](S& s) { Chan(s, 1).channel_name = "train"; }, CH + "[1].channelName",
       "duplicates the channel \"train\" of " + CH + "[0]"},
      {"channel_data_source_missing", Base::kRandom, [](S& s) { Chan(s).data_source.reset(); }, CH + "[0].dataSource",
       "is required"},
      {"channel_data_source_empty", Base::kRandom, [](S& s) { Chan(s).data_source = DataSource{}; },
       CH + "[0].dataSource", "needs one of s3DataSource or fileSystemDataSource"},
      {"channel_both_data_sources", Base::kRandom,
       [](S& s) {
         Chan(s).data_source->file_system_data_source = FileSystemDataSource{"fs-11111111", "ro", "EFS", "/d"};
       },
       CH + "[0].dataSource", "set exactly one of s3DataSource and fileSystemDataSource"},
      {"s3_data_type_missing", Base::kRandom, [](S& s) { S3(s).s3_data_type.reset(); }, S3P + ".s3DataType",
       "is required: one of ManifestFile, S3Prefix, AugmentedManifestFile"},
      {"s3_data_type_unknown", Base::kRandom, [](S& s) { S3(s).s3_data_type = "Prefix"; }, S3P + ".s3DataType",
       "got \"Prefix\""},
      {"s3_uri_missing", Base::kRandom, [](S& s) { S3(s).s3_uri.reset(); }, S3P + ".s3URI", "is required"},
      {"s3_uri_relative_path", Base::kRandom, [](S& s) { S3(s).s3_uri = "data/train"; }, S3P + ".s3URI",
       "got \"data/train\""},
      {"s3_distribution_unknown", Base::kRandom, [](S& s) { S3(s).s3_data_distribution_type = "Sharded"; },
       S3P + ".s3DataDistributionType", "must be one of FullyReplicated, ShardedByS3Key"},
      {"attribute_names_without_augmented_manifest", Base::kRandom,
       [](S& s) { S3(s).attribute_names = {"source-ref"}; }, S3P + ".attributeNames",
       "only allowed with s3DataType AugmentedManifestFile"},
      {"attribute_names_too_many", Base::kRandom,
       [](S& s) {
         Algo(s).training_input_mode = "Pipe";
         S3(s).s3_data_type = "AugmentedManifestFile";
         for (int i = 0; i < 17; ++i) S3(s).attribute_names.push_back("a" + std::to_string(i));
       },
       S3P + ".attributeNames", "must have at most 16 attribute names, got 17"},
      {"file_system_id_missing", Base::kRandom, [](S& s) { UseFileSystem(s).file_system_id.reset(); },
       FSP + ".fileSystemID", "is required"},
      {"file_system_access_mode_wrong_case", Base::kRandom,
       [](S& s) { UseFileSystem(s).file_system_access_mode = "RO"; }, FSP + ".fileSystemAccessMode",
       "must be one of rw, ro; got \"RO\""},
      {"file_system_type_unknown", Base::kRandom, [](S& s) { UseFileSystem(s).file_system_type = "NFS"; },
       FSP + ".fileSystemType", "must be one of EFS, FSxLustre; got \"NFS\""},
      {"file_system_directory_missing", Base::kRandom, [](S& s) { UseFileSystem(s).directory_path.reset(); },
       FSP + ".directoryPath", "is required"},
      {"channel_compression_unknown", Base::kRandom, [](S& s) { Chan(s).compression_type = "gzip"; },
       CH + "[0].compressionType", "must be one of None, Gzip"},
      {"augmented_manifest_in_file_mode", Base::kRandom,
       [](S& s) {
         S3(s).s3_data_type = "AugmentedManifestFile";
         S3(s).attribute_names = {"source-ref"};
       },
       S3P + ".s3DataType", "AugmentedManifestFile can only be used in Pipe input mode; this channel's input mode is \"File\""},
      {"augmented_manifest_in_channel_fastfile_mode", Base::kRandom,
       [](S& s) {
         Algo(s).training_input_mode = "Pipe";
         S3(s).s3_data_type = "AugmentedManifestFile";
         S3(s).attribute_names = {"source-ref"};
         Chan(s).input_mode = "FastFile";
       },
       S3P + ".s3DataType", "input mode is \"FastFile\""},
      {"augmented_manifest_without_attribute_names", Base::kRandom,
       [](S& s) {
         Algo(s).training_input_mode = "Pipe";
         S3(s).s3_data_type = "AugmentedManifestFile";
       },
       S3P + ".attributeNames", "is required with s3DataType AugmentedManifestFile"},
      {"augmented_manifest_gzip", Base::kRandom,
       [](S& s) {
         Algo(s).training_input_mode = "Pipe";
         S3(s).s3_data_type = "AugmentedManifestFile";
         S3(s).attribute_names = {"source-ref"};
         Chan(s).compression_type = "Gzip";
       },
       CH + "[0].compressionType", "Gzip cannot be used with s3DataType AugmentedManifestFile"},
      {"channel_gzip_in_file_mode", Base::kRandom, [](S& s) { Chan(s).compression_type = "Gzip"; },
       CH + "[0].compressionType", "Gzip is only supported in Pipe input mode; this channel's input mode is \"File\""},
      {"channel_gzip_in_channel_file_mode", Base::kRandom,
       [](S& s) {
         Algo(s).training_input_mode = "Pipe";
         Chan(s).compression_type = "Gzip";
         Chan(s).input_mode = "FastFile";
       },
       CH + "[0].compressionType", "input mode is \"FastFile\""},
      {"channel_record_wrapper_unknown", Base::kRandom, [](S& s) { Chan(s).record_wrapper_type = "TFRecord"; },
       CH + "[0].recordWrapperType", "must be one of None, RecordIO"},
      {"channel_input_mode_unknown", Base::kRandom, [](S& s) { Chan(s).input_mode = "Stream"; }, CH + "[0].inputMode",
       "must be one of Pipe, File, FastFile"},
      {"channel_shuffle_without_seed", Base::kRandom, [](S& s) { Chan(s).shuffle_config = ShuffleConfig{}; },
       CH + "[0].shuffleConfig.seed", "is required"},
      {"channel_instance_groups_on_some_channels_only", Base::kGroups,
       [](S& s) { S3(s, 1).instance_group_names.clear(); }, CH,
       "Some channels have assigned instance groups: [train] while others not: [validation]"},
      {"channel_instance_group_unknown", Base::kGroups, [](S& s) { S3(s).instance_group_names = {"tpu"}; },
       S3P + ".instanceGroupNames[0]", "\"tpu\" is not an instance group of resourceConfig"},
      {"channel_instance_groups_too_many", Base::kGroups,
       [](S& s) { S3(s).instance_group_names = {"gpu", "cpu", "gpu", "cpu", "gpu", "cpu"}; },
       S3P + ".instanceGroupNames", "must have at most 5 instance group names, got 6"},
      {"distribution_two_instance_groups", Base::kGroups,
       [](S& s) { Def(s).static_hyper_parameters["sagemaker_distribution_instance_groups"] = R"(["gpu", "cpu"])"; },
       D + ".staticHyperParameters.sagemaker_distribution_instance_groups",
       "names 2 instance groups (\"gpu\", \"cpu\"); distributed training targets one instance group"},
      {"distribution_unknown_instance_group", Base::kGroups,
       [](S& s) { Def(s).static_hyper_parameters["sagemaker_distribution_instance_groups"] = R"(["tpu"])"; },
       D + ".staticHyperParameters.sagemaker_distribution_instance_groups",
       "\"tpu\" is not an instance group of resourceConfig"},
      {"distribution_instance_group_plain_text_unknown", Base::kGroups,
       [](S& s) { Def(s).static_hyper_parameters["sagemaker_distribution_instance_groups"] = "tpu"; },
       D + ".staticHyperParameters.sagemaker_distribution_instance_groups", "\"tpu\" is not an instance group"},
      {"distribution_instance_group_not_a_name", Base::kGroups,
       [](S& s) { Def(s).static_hyper_parameters["sagemaker_distribution_instance_groups"] = "[1]"; },
       D + ".staticHyperParameters.sagemaker_distribution_instance_groups", "must name instance groups"},
      {"distribution_instance_group_without_resource_groups", Base::kRandom,
       [](S& s) { Def(s).static_hyper_parameters["sagemaker_distribution_instance_groups"] = R"(["gpu"])"; },
       D + ".staticHyperParameters.sagemaker_distribution_instance_groups", "needs resourceConfig.instanceGroups"},
      {"channel_instance_groups_without_resource_groups", Base::kRandom,
       [](S& s) {
         S3(s, 0).instance_group_names = {"gpu"};
         S3(s, 1).instance_group_names = {"gpu"};
       },
       S3P + ".instanceGroupNames", "needs resourceConfig.instanceGroups", 2 /* one per channel */},

      // Warm start.
      {"warm_start_without_parents", Base::kWarm,
       [](S& s) { s.warm_start_config->parent_hyper_parameter_tuning_jobs.clear(); },
       W + ".parentHyperParameterTuningJobs", "is required: 1-5 parent tuning jobs"},
      {"warm_start_too_many_parents", Base::kWarm,
       [](S& s) {
         for (int i = 0; i < 4; ++i) {
           s.warm_start_config->parent_hyper_parameter_tuning_jobs.push_back({"parent-" + std::to_string(i)});
         }
       },
       W + ".parentHyperParameterTuningJobs", "must have 1-5 parent tuning jobs, got 6"},
      {"warm_start_parent_bad_name", Base::kWarm,
       [](S& s) { s.warm_start_config->parent_hyper_parameter_tuning_jobs[0] = {"parent_a"}; },
       W + ".parentHyperParameterTuningJobs[0].hyperParameterTuningJobName", "got \"parent_a\""},
      {"warm_start_parent_is_self", Base::kWarm,
       [](S& s) { s.warm_start_config->parent_hyper_parameter_tuning_jobs[1] = {"XGB-Random-1"}; },
       W + ".parentHyperParameterTuningJobs[1].hyperParameterTuningJobName", "is this tuning job itself"},
      {"warm_start_parent_duplicate", Base::kWarm,
       [](S& s) { s.warm_start_config->parent_hyper_parameter_tuning_jobs[1] = {"Parent-A"}; },
       W + ".parentHyperParameterTuningJobs[1].hyperParameterTuningJobName", "duplicates the parent \"parent-a\" of"},
      {"warm_start_type_missing", Base::kWarm, [](S& s) { s.warm_start_config->warm_start_type.reset(); },
       W + ".warmStartType", "is required: one of IdenticalDataAndAlgorithm, TransferLearning"},
      {"warm_start_type_unknown", Base::kWarm, [](S& s) { s.warm_start_config->warm_start_type = "Transfer"; },
       W + ".warmStartType", "got \"Transfer\""},
  };
}

class ValidateRule : public ::testing::TestWithParam<Case> {};

TEST_P(ValidateRule, ReportsExactlyThatFieldAndWhatIsAllowed) {
  const Case& c = GetParam();
  TuningJobSpec spec = Make(c.base);
  ASSERT_TRUE(Validate(spec, Spelling::kCrd).empty()) << "the base must be valid";
  c.mutate(spec);

  FieldErrors errors = Validate(spec, Spelling::kCrd);
  EXPECT_EQ(errors.size(), c.count) << Describe(errors);
  bool found = false;
  for (const auto& e : errors) {
    if (e.path == c.path && e.message.find(c.message) != std::string::npos) found = true;
  }
  EXPECT_TRUE(found) << "wanted " << c.path << ": ..." << c.message << "...; got" << Describe(errors);

  // The same spec in the API spelling: the same number of errors, every path PascalCase.
  FieldErrors api = Validate(spec, Spelling::kApi);
  EXPECT_EQ(api.size(), errors.size()) << Describe(api);
  for (const auto& e : api) {
    ASSERT_FALSE(e.path.empty());
    EXPECT_NE(e.path.rfind("spec.", 0), 0u) << e.path;
    EXPECT_TRUE(std::isupper(static_cast<unsigned char>(e.path[0]))) << e.path;
  }
}

INSTANTIATE_TEST_SUITE_P(Table, ValidateRule, ::testing::ValuesIn(Cases()),
                         [](const ::testing::TestParamInfo<Case>& info) { return info.param.name; });

TEST(Validate, TheTableCoversAtLeastSixtyRules) {
  auto cases = Cases();
  EXPECT_GE(cases.size(), 60u);
  std::set<std::string> names;
  for (const auto& c : cases) EXPECT_TRUE(names.insert(c.name).second) << "duplicate case " << c.name;
}

// ---- spellings, several errors at once, limits ------------------------------------------------

TEST(Validate, ApiSpellingRendersPascalCasePathsAndNamesFieldsInMessagesTheSameWay) {
  TuningJobSpec s = RandomBase();
  Ranges(s).continuous_parameter_ranges[0].min_value = "0";
  Def(s).role_arn.reset();
  FieldErrors errors = Validate(s, Spelling::kApi);
  ASSERT_EQ(errors.size(), 2u) << Describe(errors);
  EXPECT_EQ(errors[0].path, "HyperParameterTuningJobConfig.ParameterRanges.ContinuousParameterRanges[0]");
  EXPECT_EQ(errors[0].message, "ScalingType Logarithmic needs MinValue > 0, got \"0\"");
  EXPECT_EQ(errors[1].path, "TrainingJobDefinition.RoleArn");

  FieldErrors crd = Validate(s, Spelling::kCrd);
  ASSERT_EQ(crd.size(), 2u) << Describe(crd);
  EXPECT_EQ(crd[0].path, "spec.hyperParameterTuningJobConfig.parameterRanges.continuousParameterRanges[0]");
  EXPECT_EQ(crd[0].message, "scalingType Logarithmic needs minValue > 0, got \"0\"");
  EXPECT_EQ(crd[1].path, "spec.trainingJobDefinition.roleARN");
}

TEST(Validate, ReportsEveryErrorAtOnceNotJustTheFirst) {
  TuningJobSpec s = RandomBase();
  s.hyper_parameter_tuning_job_name = "bad_name";
  Cfg(s).strategy = "Annealing";
  Ranges(s).integer_parameter_ranges[0].max_value = "ten";
  Algo(s).training_input_mode = "Stream";
  Def(s).stopping_condition->max_wait_time_in_seconds = 7200;
  s.tags = {{"a", "1"}, {"a", "2"}};
  FieldErrors errors = Validate(s, Spelling::kCrd);
  std::set<std::string> paths;
  for (const auto& e : errors) paths.insert(e.path);
  EXPECT_EQ(errors.size(), 6u) << Describe(errors);
  for (const char* p : {"spec.hyperParameterTuningJobName", "spec.hyperParameterTuningJobConfig.strategy",
                        "spec.hyperParameterTuningJobConfig.parameterRanges.integerParameterRanges[0].maxValue",
                        "spec.trainingJobDefinition.algorithmSpecification.trainingInputMode",
                        "spec.trainingJobDefinition.stoppingCondition.maxWaitTimeInSeconds", "spec.tags[1].key"}) {
    EXPECT_TRUE(paths.count(p)) << p << " missing from" << Describe(errors);
  }
}

TEST(Validate, AnEmptySpecNamesEveryRequiredTopLevelField) {
  FieldErrors errors = Validate(TuningJobSpec{}, Spelling::kCrd);
  std::set<std::string> paths;
  for (const auto& e : errors) paths.insert(e.path);
  EXPECT_TRUE(paths.count("spec.hyperParameterTuningJobName")) << Describe(errors);
  EXPECT_TRUE(paths.count("spec.hyperParameterTuningJobConfig")) << Describe(errors);
  EXPECT_TRUE(paths.count("spec.trainingJobDefinition")) << Describe(errors);
}

TEST(Validate, QuotasComeFromTheLimits) {
  TuningJobSpec s = RandomBase();
  Cfg(s).resource_limits->max_parallel_training_jobs = 20;
  EXPECT_TRUE(Validate(s, Spelling::kCrd).empty());
  ValidationLimits limits;
  limits.max_parallel_training_jobs = 10;
  limits.max_training_jobs = 15;
  limits.max_tunable_hyperparameters = 2;
  limits.max_metric_definitions = 0;
  FieldErrors errors = Validate(s, Spelling::kCrd, limits);
  std::set<std::string> paths;
  for (const auto& e : errors) paths.insert(e.path);
  EXPECT_EQ(errors.size(), 4u) << Describe(errors);
  EXPECT_TRUE(paths.count(RL + ".maxParallelTrainingJobs"));
  EXPECT_TRUE(paths.count(RL + ".maxNumberOfTrainingJobs"));
  EXPECT_TRUE(paths.count(R));
  EXPECT_TRUE(paths.count(A + ".metricDefinitions"));
  // The coordinator's quotas (SageMaker: ResourceLimitExceeded) are marked; SageMaker's own API
  // limits and malformed values are not.
  for (const auto& e : errors) {
    const bool quota = e.path == RL + ".maxParallelTrainingJobs" || e.path == RL + ".maxNumberOfTrainingJobs";
    EXPECT_EQ(e.quota, quota) << e.ToString();
  }
  Cfg(s).resource_limits->max_parallel_training_jobs = 0;
  errors = Validate(s, Spelling::kCrd, limits);
  for (const auto& e : errors) {
    if (e.path == RL + ".maxParallelTrainingJobs") {
      EXPECT_FALSE(e.quota) << "0 is invalid anywhere: " << e.ToString();
    }
  }
  // Raised quotas let through what the defaults refuse.
  Cfg(s).resource_limits->max_parallel_training_jobs = 150;
  Cfg(s).resource_limits->max_number_of_training_jobs = 20000;
  EXPECT_EQ(Validate(s, Spelling::kCrd).size(), 2u);
  ValidationLimits raised;
  raised.max_parallel_training_jobs = 200;
  raised.max_training_jobs = 50000;
  EXPECT_TRUE(Validate(s, Spelling::kCrd, raised).empty()) << Describe(Validate(s, Spelling::kCrd, raised));
}

// With known_instance_types (hpo validate, hpo run), an instance type must be SageMaker's or one
// of those: "m5.large" and "ml.m5.larg" validated and then never ran, the job waiting for a worker
// that serves a type nobody does. Without them (a coordinator) any type passes.
TEST(Validate, InstanceTypesMustBeSageMakersOrNamedWhenAskedToCheck) {
  TuningJobSpec s = RandomBase();
  std::set<std::string> own = {"ml.onprem.a100"};
  ValidationLimits limits;
  limits.known_instance_types = &own;
  EXPECT_TRUE(Validate(s, Spelling::kCrd, limits).empty()) << "ml.g5.xlarge is SageMaker's";
  for (const auto& [typo, closest] : std::vector<std::pair<std::string, std::string>>{
           {"m5.large", "ml.m5.large"}, {"ml.m5.larg", "ml.m5.large"}, {"ml.g5.xlarg", "ml.g5.xlarge"}}) {
    s.training_job_definition->resource_config->instance_type = typo;
    FieldErrors errors = Validate(s, Spelling::kCrd, limits);
    ASSERT_EQ(errors.size(), 1u) << Describe(errors);
    EXPECT_EQ(errors[0].path, RC + ".instanceType");
    EXPECT_NE(errors[0].message.find("is not a SageMaker training instance type (did you mean \"" + closest + "\"?)"),
              std::string::npos)
        << errors[0].message;
    EXPECT_TRUE(Validate(s, Spelling::kCrd).empty()) << "not checked without known_instance_types";
  }
  s.training_job_definition->resource_config->instance_type = "ml.onprem.a100";
  EXPECT_TRUE(Validate(s, Spelling::kCrd, limits).empty()) << "a type of one's own, named";
  s.training_job_definition->resource_config->instance_type = "ml.trn1.32xlarge";
  EXPECT_TRUE(Validate(s, Spelling::kCrd, limits).empty());
  EXPECT_TRUE(IsSageMakerTrainingInstanceType("ml.p5.48xlarge"));
  EXPECT_FALSE(IsSageMakerTrainingInstanceType("ml.p5.48xlarg"));
}

// ---- what is allowed --------------------------------------------------------------------------

// SageMaker's built-in XGBoost brings its metric definitions; an algorithm resource's cannot be
// read here (such a job used to validate and then never start).
TEST(Validate, ABuiltInXgboostImageNeedsNoMetricDefinitionsButAnAlgorithmResourceDoes) {
  TuningJobSpec s = RandomBase();
  Algo(s).training_image = "683313688378.dkr.ecr.us-east-1.amazonaws.com/sagemaker-xgboost:1.7-1";
  Algo(s).metric_definitions.clear();
  EXPECT_TRUE(Validate(s, Spelling::kApi).empty()) << Describe(Validate(s, Spelling::kApi));
  Cfg(s).hyper_parameter_tuning_job_objective->metric_name = "loss";
  FieldErrors e = Validate(s, Spelling::kApi);
  ASSERT_EQ(e.size(), 1u) << Describe(e);
  EXPECT_NE(e[0].message.find("is not a metric of SageMaker's built-in XGBoost"), std::string::npos) << e[0].message;

  s = RandomBase();
  Algo(s).training_image.reset();
  Algo(s).algorithm_name = "my-algorithm";
  Algo(s).metric_definitions.clear();
  e = Validate(s, Spelling::kApi);
  ASSERT_EQ(e.size(), 1u) << Describe(e);
  EXPECT_EQ(e[0].path, "TrainingJobDefinition.AlgorithmSpecification.MetricDefinitions");
  EXPECT_NE(e[0].message.find("hpo cannot read the metric definitions of the algorithm resource \"my-algorithm\""),
            std::string::npos)
      << e[0].message;
}

// The other built-ins: their documented metrics validate without MetricDefinitions; another
// metric is refused with the algorithm's list; a metric whose log line hpo does not know asks for
// a definition by name (the job would otherwise run and never find its objective).
TEST(Validate, BuiltInAlgorithmsMetricsNeedNoDefinitionsAndOthersAreNamed) {
  auto with = [](const std::string& repository, const std::string& metric) {
    TuningJobSpec s = RandomBase();
    Algo(s).training_image = "382416733822.dkr.ecr.us-east-1.amazonaws.com/" + repository + ":1";
    Algo(s).metric_definitions.clear();
    Cfg(s).hyper_parameter_tuning_job_objective = Objective{"Minimize", metric};
    return Validate(s, Spelling::kApi);
  };
  for (const auto& [repository, metric] : std::vector<std::pair<std::string, std::string>>{
           {"linear-learner", "validation:objective_loss"}, {"linear-learner", "test:binary_f_beta"},
           {"kmeans", "test:msd"}, {"factorization-machines", "test:rmse"}, {"knn", "test:accuracy"},
           {"forecasting-deepar", "test:mean_wQuantileLoss"}, {"object-detection", "validation:mAP"},
           {"ipinsights", "validation:discriminator_auc"}, {"image-classification", "validation:accuracy"},
           {"blazingtext", "validation:accuracy"}}) {
    EXPECT_TRUE(with(repository, metric).empty()) << repository << " " << metric << ": "
                                                  << Describe(with(repository, metric));
  }
  FieldErrors e = with("kmeans", "validation:objective_loss");
  ASSERT_EQ(e.size(), 1u) << Describe(e);
  EXPECT_EQ(e[0].path, "HyperParameterTuningJobConfig.HyperParameterTuningJobObjective.MetricName");
  EXPECT_EQ(e[0].message, "\"validation:objective_loss\" is not a metric of SageMaker's built-in k-means "
                          "(\"test:msd\", \"test:ssd\"); give TrainingJobDefinition.AlgorithmSpecification."
                          "MetricDefinitions for another");
  e = with("ntm", "validation:total_loss");
  ASSERT_EQ(e.size(), 1u) << Describe(e);
  EXPECT_EQ(e[0].path, "TrainingJobDefinition.AlgorithmSpecification.MetricDefinitions");
  EXPECT_NE(e[0].message.find("is required for \"validation:total_loss\" of SageMaker's built-in NTM here: "
                              "SageMaker takes the spec without (it reads its algorithms' logs itself), but hpo knows "
                              "the metric and not how the algorithm logs it"),
            std::string::npos)
      << e[0].message;
  EXPECT_NE(e[0].message.find("leave it out of the copy you send there"), std::string::npos) << e[0].message;
  e = with("pca", "test:loss");
  ASSERT_EQ(e.size(), 1u) << Describe(e);
  EXPECT_NE(e[0].message.find("is not a metric of SageMaker's built-in PCA, which has none to tune"),
            std::string::npos)
      << e[0].message;
  e = with("my-linear-learner", "validation:objective_loss");  // not SageMaker's repository
  ASSERT_EQ(e.size(), 1u) << Describe(e);
  EXPECT_NE(e[0].message.find("is not defined in"), std::string::npos) << e[0].message;
  // A definition of one's own is used as given, even for a built-in's image.
  TuningJobSpec s = RandomBase();
  Algo(s).training_image = "382416733822.dkr.ecr.us-east-1.amazonaws.com/ntm:1";
  Cfg(s).hyper_parameter_tuning_job_objective = Objective{"Minimize", "validation:auc"};
  EXPECT_TRUE(Validate(s, Spelling::kApi).empty()) << Describe(Validate(s, Spelling::kApi));
}

// An objective whose Type is the opposite of a built-in metric's documented direction is noted,
// not refused (SageMaker runs it as written); a metric of one's own definitions is not judged.
TuningJobSpec LinearLearnerBase() {
  TuningJobSpec s = RandomBase();
  Algo(s).training_image = "382416733822.dkr.ecr.us-east-1.amazonaws.com/linear-learner:1";
  Algo(s).metric_definitions.clear();
  Cfg(s).hyper_parameter_tuning_job_objective = Objective{"Minimize", "validation:objective_loss"};
  Ranges(s).integer_parameter_ranges = {{"mini_batch_size", "10", "500", "Logarithmic"}};
  Ranges(s).continuous_parameter_ranges = {{"learning_rate", "0.0001", "1", "Logarithmic"}};
  Ranges(s).categorical_parameter_ranges = {{"use_bias", {"True", "False"}}};
  return s;
}

// SageMaker refuses MetricDefinitions for its built-in algorithms (a user's pass: an XGBoost spec
// whose own regex read train-auc as validation:auc validated here and was refused there). Noted,
// saying whether hpo needs them; a framework image in script mode logs what its script likes.
TEST(BuiltInAlgorithmNotes, SayThatSageMakerRefusesMetricDefinitionsForItsAlgorithms) {
  TuningJobSpec s = RandomBase();
  Algo(s).training_image = "683313688378.dkr.ecr.us-east-1.amazonaws.com/sagemaker-xgboost:1.7-1";
  Ranges(s).categorical_parameter_ranges.clear();
  Cfg(s).hyper_parameter_tuning_job_objective = Objective{"Maximize", "validation:auc"};
  Algo(s).metric_definitions = {MetricDefinition{"validation:auc", "train-auc:([0-9.]+)"}};
  ASSERT_TRUE(Validate(s, Spelling::kApi).empty()) << Describe(Validate(s, Spelling::kApi));
  std::vector<std::string> notes = BuiltInAlgorithmNotes(s, Spelling::kApi);
  ASSERT_EQ(notes.size(), 1u);
  EXPECT_EQ(notes[0], "AlgorithmSpecification.MetricDefinitions: SageMaker refuses metric definitions for its built-in "
                      "algorithms (\"You can't override the metric definitions for Amazon SageMaker algorithms\"): "
                      "hpo reads validation:auc from SageMaker's built-in XGBoost's own log lines, so leave them out "
                      "and this spec runs on both (given, they are used here in place of SageMaker's built-in "
                      "XGBoost's)");
  s.training_job_definition->static_hyper_parameters["sagemaker_program"] = "\"train.py\"";
  EXPECT_TRUE(BuiltInAlgorithmNotes(s, Spelling::kApi).empty()) << "script mode: the script's own metrics";

  s = RandomBase();
  Algo(s).training_image = "382416733822.dkr.ecr.us-east-1.amazonaws.com/ntm:1";
  Ranges(s).categorical_parameter_ranges.clear();
  Cfg(s).hyper_parameter_tuning_job_objective = Objective{"Minimize", "validation:total_loss"};
  Algo(s).metric_definitions = {MetricDefinition{"validation:total_loss", "total_loss=([0-9.]+)"}};
  notes = BuiltInAlgorithmNotes(s, Spelling::kCrd);
  ASSERT_FALSE(notes.empty());
  EXPECT_EQ(notes[0].rfind("algorithmSpecification.metricDefinitions: SageMaker refuses", 0), 0u) << notes[0];
  EXPECT_NE(notes[0].find("hpo needs them here, as it does not know how SageMaker's built-in NTM logs its metrics; "
                          "leave them out of the copy you send to SageMaker"),
            std::string::npos)
      << notes[0];
}

TEST(BuiltInAlgorithmNotes, NameAnObjectiveThatWouldSeekTheWorstModels) {
  TuningJobSpec s = LinearLearnerBase();
  Cfg(s).hyper_parameter_tuning_job_objective = Objective{"Maximize", "validation:objective_loss"};
  ASSERT_TRUE(Validate(s, Spelling::kApi).empty()) << Describe(Validate(s, Spelling::kApi));
  std::vector<std::string> notes = BuiltInAlgorithmNotes(s, Spelling::kApi);
  ASSERT_EQ(notes.size(), 1u);
  EXPECT_EQ(notes[0], "HyperParameterTuningJobObjective.Type: Maximize, but SageMaker's built-in Linear Learner "
                      "documents validation:objective_loss as lower is better: the search will look for the worst "
                      "models; set it to Minimize unless that is what you want");
  notes = BuiltInAlgorithmNotes(s, Spelling::kCrd);
  ASSERT_EQ(notes.size(), 1u);
  EXPECT_EQ(notes[0].rfind("hyperParameterTuningJobObjective.type_: Maximize", 0), 0u) << notes[0];
  Cfg(s).hyper_parameter_tuning_job_objective->type = "Minimize";
  EXPECT_TRUE(BuiltInAlgorithmNotes(s, Spelling::kApi).empty());

  // XGBoost, by its eval_metric; one it does not know the direction of is not judged.
  s = RandomBase();
  Algo(s).training_image = "683313688378.dkr.ecr.us-east-1.amazonaws.com/sagemaker-xgboost:1.7-1";
  Algo(s).metric_definitions.clear();
  Ranges(s).categorical_parameter_ranges.clear();  // booster: not among XGBoost's tunable ones
  Cfg(s).hyper_parameter_tuning_job_objective = Objective{"Minimize", "validation:ndcg@5"};
  notes = BuiltInAlgorithmNotes(s, Spelling::kApi);
  ASSERT_EQ(notes.size(), 1u);
  EXPECT_NE(notes[0].find("Minimize, but SageMaker's built-in XGBoost documents validation:ndcg@5 as higher is "
                          "better"),
            std::string::npos)
      << notes[0];
  Cfg(s).hyper_parameter_tuning_job_objective = Objective{"Minimize", "validation:rmse"};
  EXPECT_TRUE(BuiltInAlgorithmNotes(s, Spelling::kApi).empty());
  Cfg(s).hyper_parameter_tuning_job_objective = Objective{"Maximize", "validation:my_metric"};
  EXPECT_TRUE(BuiltInAlgorithmNotes(s, Spelling::kApi).empty());
  // The job's own definitions: its metric means what they say.
  s = RandomBase();
  Algo(s).training_image = "683313688378.dkr.ecr.us-east-1.amazonaws.com/sagemaker-xgboost:1.7-1";
  Ranges(s).categorical_parameter_ranges.clear();
  Cfg(s).hyper_parameter_tuning_job_objective = Objective{"Minimize", "validation:auc"};
  ASSERT_FALSE(Algo(s).metric_definitions.empty());
  notes = BuiltInAlgorithmNotes(s, Spelling::kApi);
  ASSERT_EQ(notes.size(), 1u) << "no direction note; only that SageMaker refuses the definitions";
  EXPECT_EQ(notes[0].rfind("AlgorithmSpecification.MetricDefinitions: SageMaker refuses", 0), 0u) << notes[0];
}

// A tuned hyperparameter a built-in does not document as tunable is noted with the closest
// tunable name (a misspelling) or the list; SageMaker would refuse the job, hpo runs it. A
// framework image in script mode (sagemaker_program) tunes the script's own hyperparameters.
TEST(BuiltInAlgorithmNotes, NameAHyperparameterTheAlgorithmDoesNotTune) {
  TuningJobSpec s = LinearLearnerBase();
  EXPECT_TRUE(BuiltInAlgorithmNotes(s, Spelling::kApi).empty());
  Ranges(s).continuous_parameter_ranges[0].name = "learning_rat";
  Ranges(s).categorical_parameter_ranges[0].name = "dataset";
  ASSERT_TRUE(Validate(s, Spelling::kApi).empty()) << Describe(Validate(s, Spelling::kApi));
  std::vector<std::string> notes = BuiltInAlgorithmNotes(s, Spelling::kApi);
  ASSERT_EQ(notes.size(), 2u);
  EXPECT_EQ(notes[0], "ParameterRanges.ContinuousParameterRanges[0].Name: \"learning_rat\" is not among the "
                      "hyperparameters SageMaker's built-in Linear Learner documents as tunable (did you mean "
                      "\"learning_rate\"?); SageMaker refuses to tune it, hpo runs the job as written");
  EXPECT_EQ(notes[1], "ParameterRanges.CategoricalParameterRanges[0].Name: \"dataset\" is not among the "
                      "hyperparameters SageMaker's built-in Linear Learner documents as tunable (\"wd\", \"l1\", "
                      "\"learning_rate\", \"mini_batch_size\", \"use_bias\", \"positive_example_weight_mult\"); "
                      "SageMaker refuses to tune it, hpo runs the job as written");
  notes = BuiltInAlgorithmNotes(s, Spelling::kCrd);
  ASSERT_EQ(notes.size(), 2u);
  EXPECT_EQ(notes[0].rfind("parameterRanges.continuousParameterRanges[0].name: ", 0), 0u) << notes[0];

  Def(s).static_hyper_parameters["sagemaker_program"] = "train.py";  // script mode
  EXPECT_TRUE(BuiltInAlgorithmNotes(s, Spelling::kApi).empty());

  s = RandomBase();  // XGBoost: booster is not in its documented list
  Algo(s).training_image = "683313688378.dkr.ecr.us-east-1.amazonaws.com/sagemaker-xgboost:1.7-1";
  notes = BuiltInAlgorithmNotes(s, Spelling::kApi);
  ASSERT_EQ(notes.size(), 2u) << "its MetricDefinitions, then booster";
  EXPECT_NE(notes[1].find("\"booster\" is not among the hyperparameters SageMaker's built-in XGBoost documents"),
            std::string::npos)
      << notes[1];
  Algo(s).training_image = "my-registry/my-trainer:1";  // not a built-in
  EXPECT_TRUE(BuiltInAlgorithmNotes(s, Spelling::kApi).empty());
}

TEST(BuiltInMetrics, XgboostDefinitionsFindTheValueOnTheAlgorithmsLogLine) {
  const std::string image = "811284229777.dkr.ecr.us-east-1.amazonaws.com/xgboost:1";
  EXPECT_EQ(BuiltInAlgorithmOf(image), "xgboost");
  EXPECT_EQ(BuiltInAlgorithmOf("my-registry/not-xgboost:1"), "");
  auto defs = BuiltInMetricDefinitions(image, "validation:ndcg@5");
  ASSERT_EQ(defs.size(), 2u);
  EXPECT_EQ(*defs[0].name, "validation:ndcg@5");
  EXPECT_EQ(*defs[1].name, "train:ndcg@5");
  std::smatch m;
  const std::string line = "[17]#011train-ndcg@5:0.71#011validation-ndcg@5:0.6512";
  ASSERT_TRUE(std::regex_match(line, m, std::regex(*defs[0].regex))) << *defs[0].regex;
  EXPECT_EQ(m[1], "0.6512");
  ASSERT_TRUE(std::regex_match(line, m, std::regex(*defs[1].regex))) << *defs[1].regex;
  EXPECT_EQ(m[1], "0.71");
  EXPECT_TRUE(BuiltInMetricDefinitions(image, "loss").empty());
  EXPECT_TRUE(BuiltInMetricDefinitions(image, "test:rmse").empty());
}

TEST(Validate, AllowsWhatSageMakerAllows) {
  auto ok = [](const TuningJobSpec& s) {
    FieldErrors e = Validate(s, Spelling::kCrd);
    EXPECT_TRUE(e.empty()) << Describe(e);
  };
  TuningJobSpec s = RandomBase();
  UseInstanceConfigs(s);  // instance types to choose from, in order
  ok(s);
  s = RandomBase();  // ... or one, written as HyperParameterTuningResourceConfig
  UseInstanceConfigs(s).instance_configs.clear();
  Def(s).hyper_parameter_tuning_resource_config->instance_type = "ml.g5.xlarge";
  Def(s).hyper_parameter_tuning_resource_config->instance_count = 2;
  ok(s);

  s = RandomBase();
  // More parallel jobs than jobs.
  Cfg(s).resource_limits->max_parallel_training_jobs = 50;
  ok(s);

  s = RandomBase();  // equal bounds, signed and exponent notation (one value: as many jobs as combinations)
  Ranges(s).integer_parameter_ranges[0].min_value = "+10";
  Ranges(s).continuous_parameter_ranges[0] = NumericRange{"eta", "1e-3", "0.001", "Logarithmic"};
  Cfg(s).resource_limits->max_number_of_training_jobs = 2;
  ok(s);

  s = RandomBase();  // ReverseLogarithmic over [0, 1)
  Ranges(s).continuous_parameter_ranges[0] = NumericRange{"momentum", "0", "0.999", "ReverseLogarithmic"};
  ok(s);

  s = GridBase();  // Grid may leave the job count out
  Cfg(s).resource_limits->max_number_of_training_jobs.reset();
  ok(s);

  s = HyperbandBase();  // an explicit MaxResource needs no epochs hyperparameter
  Def(s).static_hyper_parameters.erase("epochs");
  Cfg(s).strategy_config = StrategyConfig{HyperbandStrategyConfig{1, 27}};
  ok(s);

  s = HyperbandBase();  // MaxResource from num_epochs
  Def(s).static_hyper_parameters.erase("epochs");
  Def(s).static_hyper_parameters["num_epochs"] = "30";
  ok(s);

  s = RandomBase();  // a built-in algorithm's image brings its own metrics (XGBoost's here)
  Algo(s).training_image = "683313688378.dkr.ecr.us-east-1.amazonaws.com/sagemaker-xgboost:1.7-1";
  Algo(s).metric_definitions.clear();
  ok(s);

  s = RandomBase();  // Autotune supplies the ranges
  Cfg(s).parameter_ranges.reset();
  s.autotune = Autotune{"Enabled"};
  ok(s);

  s = RandomBase();  // ... and the strategy and resource limits left out
  s.autotune = Autotune{"Enabled"};
  Cfg(s).strategy.reset();
  Cfg(s).resource_limits.reset();
  Ranges(s).auto_parameters.push_back({"alpha", "0.1"});
  ok(s);

  s = RandomBase();  // ... or only some of the limits
  s.autotune = Autotune{"Enabled"};
  Cfg(s).resource_limits->max_parallel_training_jobs.reset();
  Cfg(s).resource_limits->max_number_of_training_jobs.reset();
  ok(s);

  s = RandomBase();  // on-premises storage
  S3(s, 0).s3_uri = "file:///data/train";
  S3(s, 1).s3_uri = "/data/validation";
  Def(s).output_data_config->s3_output_path = "https://my-bucket.s3.eu-west-1.amazonaws.com/out";
  Def(s).checkpoint_config = CheckpointConfig{"/mnt/ckpt/run-1/", "/opt/ml/checkpoints/"};
  ok(s);
  // An https:// URL hpo does not read as S3 (it validated, then failed every training job): named.
  Def(s).output_data_config->s3_output_path = "https://minio.local/bucket/out";
  FieldErrors minio = Validate(s, Spelling::kApi);
  ASSERT_EQ(minio.size(), 1u) << Describe(minio);
  EXPECT_NE(minio[0].message.find("is an https:// URL that is not an S3 object URL"), std::string::npos)
      << minio[0].message;
  EXPECT_NE(minio[0].message.find("give s3://bucket/prefix, and its address as the workers' S3 endpoint"),
            std::string::npos)
      << minio[0].message;

  // A "." or ".." segment, or a local "//" (a security pass: accepted, then every training job
  // failed after its program had run, its upload refused; an s3:// key's ".." was resolved by the
  // HTTP client and the artifact went to another key than DescribeTrainingJob's). Each of the
  // three storage URIs, named; a trailing '/' and an s3 key's "//" stay fine.
  struct Bad {
    std::string uri, says;
  };
  for (const Bad& b : {Bad{"file:///data/a/../out", "has a \"..\" segment: write the path"},
                       Bad{"/data/./out", "has a \".\" segment: write the path"},
                       Bad{"s3://bucket/out/../x", "has a \"..\" segment: write the key"},
                       Bad{"https://b.s3.eu-west-1.amazonaws.com/a/../x", "has a \"..\" segment: write the key"},
                       Bad{"file:///data//out", "has an empty segment (\"//\")"},
                       Bad{"file://relout/x", "names the host \"relout\" (file://HOST/PATH)"}}) {
    for (int field = 0; field < 3; ++field) {
      s = RandomBase();
      if (field == 0) Def(s).output_data_config->s3_output_path = b.uri;
      if (field == 1) Def(s).checkpoint_config = CheckpointConfig{b.uri, "/opt/ml/checkpoints/"};
      if (field == 2) S3(s, 0).s3_uri = b.uri;
      FieldErrors errs = Validate(s, Spelling::kApi);
      ASSERT_EQ(errs.size(), 1u) << b.uri << ": " << Describe(errs);
      EXPECT_NE(errs[0].path.find(field == 0 ? "OutputDataConfig.S3OutputPath" : field == 1 ? "CheckpointConfig.S3Uri"
                                                                                             : "S3DataSource.S3Uri"),
                std::string::npos)
          << errs[0].path;
      EXPECT_NE(errs[0].message.find(b.says), std::string::npos) << b.uri << ": " << errs[0].message;
    }
  }
  for (const std::string uri :
       {"s3://bucket/out/", "s3://bucket", "s3://bucket/a//b", "file:///data/out/", "/data/o.k/x", "/data/..x/y"}) {
    s = RandomBase();
    Def(s).output_data_config->s3_output_path = uri;
    ok(s);
  }

  s = RandomBase();  // Gzip in Pipe mode, from the definition or the channel
  Algo(s).training_input_mode = "Pipe";
  Chan(s, 0).compression_type = "Gzip";
  Chan(s, 1).compression_type = "Gzip";
  Chan(s, 1).input_mode = "Pipe";
  ok(s);

  s = RandomBase();  // no channels at all; managed spot with a long enough wait
  Def(s).input_data_config.clear();
  Def(s).enable_managed_spot_training = true;
  Def(s).stopping_condition->max_wait_time_in_seconds = 3600;
  ok(s);

  s = RandomBase();  // limits count characters, not UTF-8 bytes: 256 two-byte characters
  std::string e256;
  for (int i = 0; i < 256; ++i) e256 += "\xC3\xA9";
  Ranges(s).categorical_parameter_ranges[0].values = {e256, "dart"};
  s.tags = {{"team", e256}, {"empty", ""}};
  ok(s);

  s = RandomBase();  // integer bounds of magnitude 2^53 are exact as doubles
  Ranges(s).integer_parameter_ranges[0].min_value = "-9007199254740992";
  Ranges(s).integer_parameter_ranges[0].max_value = "9007199254740992";
  ok(s);

  s = RandomBase();  // _tuning_objective_metric written out as the value the job gives it anyway
  Def(s).static_hyper_parameters["_tuning_objective_metric"] = "validation:auc";
  ok(s);

  s = RandomBase();  // the objective on the single definition itself
  TrainingJobDefinition& d = Def(s);
  d.tuning_objective = Cfg(s).hyper_parameter_tuning_job_objective;
  Cfg(s).hyper_parameter_tuning_job_objective.reset();
  ok(s);
}

// ---- EpochsHyperParameter -----------------------------------------------------------------------

TEST(EpochsHyperParameter, FindsEachSpellingSageMakerAccepts) {
  for (const char* name : {"epochs", "numepochs", "n-epochs", "n_epochs", "num_epochs"}) {
    TrainingJobDefinition d;
    d.static_hyper_parameters = {{"lr", "0.1"}, {name, "10"}};
    EXPECT_EQ(EpochsHyperParameter(d), std::optional<std::string>(name));
  }
}

TEST(EpochsHyperParameter, IsAbsentWhenNoEpochsTypeHyperParameterExists) {
  TrainingJobDefinition d;
  EXPECT_EQ(EpochsHyperParameter(d), std::nullopt);
  d.static_hyper_parameters = {{"epoch", "10"}, {"max_epochs", "10"}, {"num_round", "100"}};
  EXPECT_EQ(EpochsHyperParameter(d), std::nullopt);
}

TEST(EpochsHyperParameter, PrefersTheListedOrderAndIgnoresCase) {
  TrainingJobDefinition d;
  d.static_hyper_parameters = {{"num_epochs", "5"}, {"epochs", "10"}};
  EXPECT_EQ(EpochsHyperParameter(d), std::optional<std::string>("epochs"));
  d.static_hyper_parameters = {{"Num_Epochs", "5"}};
  EXPECT_EQ(EpochsHyperParameter(d), std::optional<std::string>("Num_Epochs"));
}

// SageMaker's S3Uri pattern admits https://; the S3 object URLs among such text are read as the
// s3:// URIs they name (virtual-hosted and path style, any region, China's partition), keys
// decoded; anything else is not an S3 URL.
TEST(S3UriOfUrl, ReadsS3ObjectUrlsAsS3Uris) {
  EXPECT_EQ(S3UriOfUrl("https://data.s3.amazonaws.com/val/"), "s3://data/val/");
  EXPECT_EQ(S3UriOfUrl("https://data.s3.us-east-1.amazonaws.com/val/a.csv"), "s3://data/val/a.csv");
  EXPECT_EQ(S3UriOfUrl("https://my.dotted.bucket.s3-eu-west-1.amazonaws.com/x"), "s3://my.dotted.bucket/x");
  EXPECT_EQ(S3UriOfUrl("https://s3.eu-west-1.amazonaws.com/data/train/"), "s3://data/train/");
  EXPECT_EQ(S3UriOfUrl("https://s3.amazonaws.com/data"), "s3://data");
  EXPECT_EQ(S3UriOfUrl("https://DATA.S3.CN-NORTH-1.AMAZONAWS.COM.CN/k"), "s3://data/k");
  EXPECT_EQ(S3UriOfUrl("https://data.s3.amazonaws.com/my%20file%2B1.csv"), "s3://data/my file+1.csv");
  EXPECT_EQ(S3UriOfUrl("https://data.s3.amazonaws.com/100%"), "s3://data/100%") << "not an escape: kept";
  for (const char* other : {"https://minio.local/bucket/out", "https://example.com/x", "s3://data/x",
                            "https://s3.amazonaws.com/", "https://.s3.amazonaws.com/x",
                            "https://data.ec2.amazonaws.com/x", "http://data.s3.amazonaws.com/x"}) {
    EXPECT_EQ(S3UriOfUrl(other), std::nullopt) << other;
  }
  EXPECT_EQ(StorageUri("https://data.s3.amazonaws.com/val"), "s3://data/val");
  EXPECT_EQ(StorageUri("file:///data/train"), "file:///data/train");
}

// Which definitions need a worker with S3 credentials (coordinator placement): any s3:// or S3
// object URL among channels, output and checkpoints, or script mode's code in S3.
TEST(UsesS3, AnyS3UriAmongChannelsOutputCheckpointsOrTheCode) {
  TuningJobSpec s = RandomBase();
  for (size_t i = 0; i < Def(s).input_data_config.size(); ++i) S3(s, i).s3_uri = "file:///data/c" + std::to_string(i);
  Def(s).output_data_config->s3_output_path = "/data/out";
  EXPECT_FALSE(UsesS3(Def(s)));
  S3(s, 0).s3_uri = "https://data.s3.amazonaws.com/train";
  EXPECT_TRUE(UsesS3(Def(s)));
  S3(s, 0).s3_uri = "file:///data/c0";
  Def(s).checkpoint_config = CheckpointConfig{"s3://b/ck", "/opt/ml/checkpoints/"};
  EXPECT_TRUE(UsesS3(Def(s)));
  Def(s).checkpoint_config.reset();
  Def(s).static_hyper_parameters["sagemaker_submit_directory"] = "\"s3://b/code/sourcedir.tar.gz\"";
  EXPECT_TRUE(UsesS3(Def(s)));
  Def(s).static_hyper_parameters["sagemaker_submit_directory"] = "\"file:///code\"";
  EXPECT_FALSE(UsesS3(Def(s)));
  Def(s).output_data_config->s3_output_path = "s3://b/out";
  EXPECT_TRUE(UsesS3(Def(s)));
}

// Messages a user's pass found misleading: a subnet's example was a security group's; a repeated
// parent was named as the repeat spells it, not as the entry it repeats; Hyperband said "add a
// static epochs" to a spec that tuned one.
TEST(Validate, SaysWhatIsWrongInTheWordsOfTheFieldAtFault) {
  TuningJobSpec s = RandomBase();
  Def(s).vpc_config = VpcConfig{{"sg-0123abcd"}, {"subnet_1"}};
  FieldErrors e = Validate(s, Spelling::kApi);
  ASSERT_EQ(e.size(), 1u) << Describe(e);
  EXPECT_NE(e[0].message.find("e.g. subnet-0123abcd"), std::string::npos) << e[0].message;

  s = RandomBase();
  s.warm_start_config = WarmStartConfig{{{"p1"}, {"P1"}}, "TransferLearning"};
  e = Validate(s, Spelling::kApi);
  ASSERT_EQ(e.size(), 1u) << Describe(e);
  EXPECT_NE(e[0].message.find("duplicates the parent \"p1\" of WarmStartConfig.ParentHyperParameterTuningJobs[0] "
                              "(tuning job names are case-insensitive)"),
            std::string::npos)
      << e[0].message;

  s = RandomBase();
  Cfg(s).strategy = "Hyperband";
  Ranges(s).integer_parameter_ranges.push_back({"epochs", "1", "50", "Auto"});
  e = Validate(s, Spelling::kApi);
  ASSERT_FALSE(e.empty());
  bool said = false;
  for (const auto& x : e) said |= x.message.find("\"epochs\" is tuned here, and Hyperband gives each training job its "
                                                 "\"epochs\" itself") != std::string::npos;
  EXPECT_TRUE(said) << Describe(e);
}

}  // namespace
}  // namespace hpo::proto
