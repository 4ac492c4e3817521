#include "proto/codec.h"

#include <gtest/gtest.h>

#include <fstream>
#include <string>
#include <vector>

#include "common/file_util.h"
#include "tests/proto/full_spec.h"

namespace hpo::proto {
namespace {

using Json = nlohmann::ordered_json;

TextTree Tree(const std::string& text) {
  auto t = ParseText(text);
  EXPECT_TRUE(t.ok()) << t.status().ToString();
  return t.ok() ? *t : TextTree{};
}

// True when some walk of `path` (e.g. "spec.trainingJobDefinitions[].resourceConfig.instanceType")
// through the tree, trying every element of each list, ends at a present, non-empty value.
bool HasPath(const Json& node, const std::string& path) {
  if (path.empty()) return !node.is_null() && !(node.is_object() && node.empty());
  size_t dot = path.find('.');
  std::string part = path.substr(0, dot);
  std::string rest = dot == std::string::npos ? "" : path.substr(dot + 1);
  bool list = part.size() > 2 && part.substr(part.size() - 2) == "[]";
  if (list) part.resize(part.size() - 2);
  if (!node.is_object() || !node.contains(part)) return false;
  const Json& child = node[part];
  if (!list) return HasPath(child, rest);
  if (!child.is_array()) return false;
  for (const auto& e : child) {
    if (HasPath(e, rest)) return true;
  }
  return false;
}

TEST(Codec, EveryFieldOfTheCrdReferenceIsWrittenFromTheFullDocument) {
  Json crd = EncodeCrdDocument(FullDocument());
  std::ifstream in(std::string(HPO_TESTDATA_DIR) + "/crd-fields.txt");
  ASSERT_TRUE(in.good());
  std::string line;
  int checked = 0;
  while (std::getline(in, line)) {
    if (line.empty() || line[0] == '#') continue;
    EXPECT_TRUE(HasPath(crd, line)) << "the CRD field " << line << " is not written";
    ++checked;
  }
  EXPECT_GE(checked, 160);
}

TEST(Codec, FullSpecRoundTripsThroughEverySpellingAndFormat) {
  TuningJobDocument doc = FullDocument();

  // CRD JSON and CRD YAML.
  Json crd = EncodeCrdDocument(doc);
  auto from_json = DecodeCrdDocument(Tree(crd.dump(2)));
  ASSERT_TRUE(from_json.ok()) << from_json.status().ToString();
  EXPECT_EQ(*from_json, doc);
  std::string yaml = ToYaml(crd);
  auto from_yaml = DecodeCrdDocument(Tree(yaml));
  ASSERT_TRUE(from_yaml.ok()) << from_yaml.status().ToString() << "\n" << yaml;
  EXPECT_EQ(*from_yaml, doc);

  // CRD -> SageMaker Create request -> CRD: the spec is equal.
  Json api = EncodeCreateRequest(from_yaml->spec);
  auto spec_back = DecodeCreateRequest(Tree(api.dump()));
  ASSERT_TRUE(spec_back.ok()) << spec_back.status().ToString();
  EXPECT_EQ(*spec_back, doc.spec);
  TuningJobDocument again = doc;
  again.spec = *spec_back;
  EXPECT_EQ(EncodeCrdDocument(again), crd);
}

TEST(Codec, DescribeResponseRoundTripsSpecAndStatus) {
  TuningJobDocument doc = FullDocument();
  DescribeTuningJobResponse resp{doc.spec, *doc.status};
  resp.spec.tags.clear();  // Describe carries no tags
  resp.status.ack_resource_metadata.reset();  // CRD-only members
  resp.status.conditions.clear();
  resp.status.hyper_parameter_tuning_job_arn = "arn:aws:sagemaker:us-west-2:123456789012:hyper-parameter-tuning-job/full";
  Json j = EncodeDescribeResponse(resp);
  EXPECT_TRUE(j.contains("HyperParameterTuningJobName"));
  EXPECT_TRUE(j.contains("TrainingJobStatusCounters"));
  EXPECT_FALSE(j.contains("Tags"));
  EXPECT_TRUE(j["CreationTime"].is_number());
  auto back = DecodeDescribeResponse(Tree(j.dump()));
  ASSERT_TRUE(back.ok()) << back.status().ToString();
  EXPECT_EQ(*back, resp);
}

// Describe gives a definition with HyperParameterTuningResourceConfig also a ResourceConfig (its
// first option, for the SDK's attach()). A job recreated from its own Describe output was then
// refused: "set either ResourceConfig or HyperParameterTuningResourceConfig, not both". That
// described ResourceConfig is dropped when read back; any other one is kept, to be refused.
TEST(Codec, TheResourceConfigDescribeAddsIsDroppedWhenTheDefinitionComesBack) {
  TuningJobSpec spec;
  spec.hyper_parameter_tuning_job_name = "hrc";
  TrainingJobDefinition& d = spec.training_job_definition.emplace();
  HyperParameterTuningResourceConfig& h = d.hyper_parameter_tuning_resource_config.emplace();
  h.instance_configs = {{"ml.g5.xlarge", 1, 50}, {"ml.m5.xlarge", 1, 30}};
  ResourceConfig first;
  first.instance_type = "ml.g5.xlarge";
  first.instance_count = 1;
  first.volume_size_in_gb = 50;
  d.resource_config = first;  // as Describe writes it
  auto back = DecodeCreateRequest(TextTree{EncodeCreateRequest(spec), false, {}, {}});
  ASSERT_TRUE(back.ok()) << back.status().ToString();
  EXPECT_FALSE(back->training_job_definition->resource_config.has_value());
  EXPECT_EQ(back->training_job_definition->hyper_parameter_tuning_resource_config, h);
  d.resource_config->instance_type = "ml.p4d.24xlarge";  // not the one Describe adds: kept
  back = DecodeCreateRequest(TextTree{EncodeCreateRequest(spec), false, {}, {}});
  ASSERT_TRUE(back.ok()) << back.status().ToString();
  EXPECT_TRUE(back->training_job_definition->resource_config.has_value());
}

TEST(Codec, ListTrainingJobsResponseRoundTrips) {
  ListTrainingJobsResponse resp;
  resp.training_job_summaries.push_back(*FullDocument().status->best_training_job);
  resp.training_job_summaries.push_back(*FullDocument().status->overall_best_training_job);
  resp.next_token = "token-2";
  Json j = EncodeListTrainingJobsResponse(resp);
  ASSERT_EQ(j["TrainingJobSummaries"].size(), 2u);
  EXPECT_EQ(j["TrainingJobSummaries"][0]["TrainingJobArn"],
            "arn:aws:sagemaker:us-west-2:123456789012:training-job/full-001-589e2e9f");
  auto back = DecodeListTrainingJobsResponse(Tree(j.dump()));
  ASSERT_TRUE(back.ok()) << back.status().ToString();
  EXPECT_EQ(*back, resp);
  EXPECT_EQ(EncodeListTrainingJobsResponse({})["TrainingJobSummaries"], Json::array());
}

TEST(Codec, RangeBoundsKeepTheirExactTextInYamlAndJson) {
  auto parsed = ParseSpec(R"(
apiVersion: sagemaker.services.k8s.aws/v1alpha1
kind: HyperParameterTuningJob
metadata: {name: exact}
spec:
  hyperParameterTuningJobName: exact
  hyperParameterTuningJobConfig:
    strategy: Random
    parameterRanges:
      continuousParameterRanges:
      - {name: eta, minValue: 0.10, maxValue: "1.50E-1", scalingType: Linear}
)");
  ASSERT_TRUE(parsed.ok()) << parsed.status().ToString();
  const auto& r = parsed->document.spec.hyper_parameter_tuning_job_config->parameter_ranges->continuous_parameter_ranges[0];
  EXPECT_EQ(*r.min_value, "0.10");
  EXPECT_EQ(*r.max_value, "1.50E-1");
  std::string yaml = ToYaml(EncodeCrdDocument(parsed->document));
  EXPECT_NE(yaml.find("minValue: \"0.10\""), std::string::npos) << yaml;
  Json api = EncodeCreateRequest(parsed->document.spec);
  EXPECT_EQ(api["HyperParameterTuningJobConfig"]["ParameterRanges"]["ContinuousParameterRanges"][0]["MinValue"], "0.10");
}

TEST(Codec, YamlScalarsTakeTheTypeTheModelAsksFor) {
  auto parsed = ParseSpec(R"(
hyperParameterTuningJobName: typed
hyperParameterTuningJobConfig:
  strategy: Random
  randomSeed: "42"
  resourceLimits: {maxParallelTrainingJobs: 3, maxNumberOfTrainingJobs: 9}
  tuningJobCompletionCriteria: {targetObjectiveMetricValue: 0.95}
trainingJobDefinition:
  enableManagedSpotTraining: true
  staticHyperParameters: {epochs: 10, verbose: true}
)");
  ASSERT_TRUE(parsed.ok()) << parsed.status().ToString();
  EXPECT_EQ(parsed->spelling, Spelling::kCrd);  // a bare CRD spec
  const auto& cfg = *parsed->document.spec.hyper_parameter_tuning_job_config;
  EXPECT_EQ(*cfg.random_seed, 42);
  EXPECT_EQ(*cfg.resource_limits->max_parallel_training_jobs, 3);
  EXPECT_DOUBLE_EQ(*cfg.tuning_job_completion_criteria->target_objective_metric_value, 0.95);
  const auto& def = *parsed->document.spec.training_job_definition;
  EXPECT_TRUE(*def.enable_managed_spot_training);
  EXPECT_EQ(def.static_hyper_parameters.at("epochs"), "10");
  EXPECT_EQ(def.static_hyper_parameters.at("verbose"), "true");
  EXPECT_EQ(parsed->document.metadata["name"], "typed");
}

// YAML 1.1 booleans (yes, on, ...) are read as kubectl reads them: `enableNetworkIsolation: yes`
// was refused, though kubectl applies it as true.
TEST(Codec, YamlOneOneBooleansAreReadAsKubectlReadsThem) {
  auto spot = [](const std::string& v) {
    return ParseSpec("hyperParameterTuningJobName: b\ntrainingJobDefinition:\n  enableManagedSpotTraining: " + v + "\n");
  };
  for (const char* t : {"yes", "On", "Y", "true"}) {
    auto p = spot(t);
    ASSERT_TRUE(p.ok()) << t;
    EXPECT_TRUE(*p->document.spec.training_job_definition->enable_managed_spot_training) << t;
  }
  for (const char* f : {"no", "OFF", "n", "false"}) {
    auto p = spot(f);
    ASSERT_TRUE(p.ok()) << f;
    EXPECT_FALSE(*p->document.spec.training_job_definition->enable_managed_spot_training) << f;
  }
  EXPECT_FALSE(spot("maybe").ok());
  EXPECT_FALSE(ParseSpec(R"({"HyperParameterTuningJobName": "b", "TrainingJobDefinition":
      {"EnableManagedSpotTraining": "yes"}})").ok()) << "JSON is typed: a string is no boolean";
}

// A JSON file with a UTF-8 byte-order mark (as Notepad and PowerShell write it) is still JSON,
// typed as JSON: read as YAML, "yes" passed for a boolean. UTF-16 is refused, naming it.
TEST(Codec, AByteOrderMarkLeavesJsonTypedAndUtf16IsRefused) {
  const std::string bom = "\xEF\xBB\xBF";
  EXPECT_FALSE(ParseSpec(bom + R"({"HyperParameterTuningJobName": "b", "TrainingJobDefinition":
      {"EnableManagedSpotTraining": "yes"}})").ok());
  auto good = ParseSpec(bom + R"({"HyperParameterTuningJobName": "b"})");
  ASSERT_TRUE(good.ok()) << good.status().ToString();
  EXPECT_EQ(good->spelling, Spelling::kApi);
  auto utf16 = ParseSpec(std::string("\xFF\xFE{\0\"\0", 6));
  ASSERT_FALSE(utf16.ok());
  EXPECT_NE(utf16.status().message().find("UTF-16"), std::string::npos) << utf16.status().message();
}

// A YAML number is decimal text, as range bounds are read: strtod also took a hex float and
// leading spaces for targetObjectiveMetricValue.
TEST(Codec, AYamlNumberIsDecimalText) {
  auto target = [](const std::string& v) {
    return ParseSpec("hyperParameterTuningJobName: t\nhyperParameterTuningJobConfig:\n"
                     "  tuningJobCompletionCriteria: {targetObjectiveMetricValue: " + v + "}\n");
  };
  for (const char* ok : {"0.95", "+0.5", "-2", "1e-3", "3"}) EXPECT_TRUE(target(ok).ok()) << ok;
  for (const char* bad : {"0x1p-2", "\" 0.5\"", ".inf", "nan", "1,5"}) EXPECT_FALSE(target(bad).ok()) << bad;
  EXPECT_DOUBLE_EQ(*target("+0.5")->document.spec.hyper_parameter_tuning_job_config->tuning_job_completion_criteria
                        ->target_objective_metric_value,
                   0.5);
}

// YAML readers disagree on 010 (kubectl and PyYAML: octal 8; YAML 1.2: 10): refused rather than
// run with a number the user may not have meant. A plus sign is read as kubectl reads it.
TEST(Codec, AYamlIntegerWithALeadingZeroIsRefusedAndAPlusSignRead) {
  FieldErrors errs;
  ASSERT_FALSE(ParseSpec("hyperParameterTuningJobName: z\nhyperParameterTuningJobConfig:\n"
                         "  resourceLimits: {maxParallelTrainingJobs: 010}\n",
                         &errs)
                   .ok());
  ASSERT_EQ(errs.size(), 1u) << JoinErrors(errs);
  EXPECT_EQ(errs[0].path, "spec.hyperParameterTuningJobConfig.resourceLimits.maxParallelTrainingJobs");
  EXPECT_NE(errs[0].message.find("\"010\" has a leading zero"), std::string::npos) << errs[0].message;
  auto plus = ParseSpec("hyperParameterTuningJobName: z\nhyperParameterTuningJobConfig:\n"
                        "  resourceLimits: {maxParallelTrainingJobs: +3, maxNumberOfTrainingJobs: 0}\n");
  ASSERT_TRUE(plus.ok()) << plus.status().ToString();
  EXPECT_EQ(*plus->document.spec.hyper_parameter_tuning_job_config->resource_limits->max_parallel_training_jobs, 3);
}

TEST(Codec, AnIntegerPast64BitsIsTooLargeNotANumberOfAnotherKind) {
  FieldErrors errs;
  ASSERT_FALSE(ParseSpec(R"({"HyperParameterTuningJobName": "big", "HyperParameterTuningJobConfig":
                            {"ResourceLimits": {"MaxParallelTrainingJobs": 100000000000000000000}}})",
                         &errs)
                   .ok());
  ASSERT_EQ(errs.size(), 1u) << JoinErrors(errs);
  EXPECT_EQ(errs[0].message, "integer is too large (about 1e+20, past 64 bits)");
}

// A NUL in any string: validation let it through, and then every training job drawing it failed
// at the worker (a range name, a value, a regex, an output path), or the training image was cut
// short at it and something else ran.
TEST(Codec, ANulCharacterInAnyStringIsRefusedNamingTheField) {
  FieldErrors errs;
  ASSERT_FALSE(ParseSpec(R"({"HyperParameterTuningJobName": "nul", "HyperParameterTuningJobConfig":
      {"ParameterRanges": {"CategoricalParameterRanges": [{"Name": "opt", "Values": ["adam", "s\u0000gd"]}]}},
      "TrainingJobDefinition": {"AlgorithmSpecification": {"TrainingImage": "file://train.py\u0000junk"}}})",
                         &errs)
                   .ok());
  ASSERT_EQ(errs.size(), 2u) << JoinErrors(errs);
  EXPECT_EQ(errs[0].path, "HyperParameterTuningJobConfig.ParameterRanges.CategoricalParameterRanges[0].Values[1]");
  EXPECT_EQ(errs[0].message, "must not contain a NUL character (\\u0000)");
  EXPECT_EQ(errs[1].path, "TrainingJobDefinition.AlgorithmSpecification.TrainingImage");
}

TEST(Codec, JsonIsTypedStrictlyAndSaysHowToFixIt) {
  FieldErrors errs;
  auto parsed = ParseSpec(R"({"HyperParameterTuningJobName": "strict",
    "HyperParameterTuningJobConfig": {"Strategy": "Random",
      "ResourceLimits": {"MaxParallelTrainingJobs": "3"},
      "ParameterRanges": {"ContinuousParameterRanges": [{"Name": "eta", "MinValue": 0.1, "MaxValue": "1"}]}}})",
                          &errs);
  ASSERT_FALSE(parsed.ok());
  ASSERT_EQ(errs.size(), 2u) << JoinErrors(errs);
  EXPECT_EQ(errs[0].path, "HyperParameterTuningJobConfig.ResourceLimits.MaxParallelTrainingJobs");
  EXPECT_NE(errs[0].message.find("expected an integer"), std::string::npos);
  EXPECT_EQ(errs[1].path, "HyperParameterTuningJobConfig.ParameterRanges.ContinuousParameterRanges[0].MinValue");
  EXPECT_NE(errs[1].message.find("write it in quotes: \"0.1\""), std::string::npos);
}

TEST(Codec, UnknownFieldsAreReportedWithTheRightName) {
  FieldErrors errs;
  auto parsed = ParseSpec(R"(
apiVersion: sagemaker.services.k8s.aws/v1alpha1
kind: HyperParameterTuningJob
metadata: {name: typo}
spec:
  hyperParameterTuningJobName: typo
  hyperParameterTuningJobConfig:
    stratgy: Random
  trainingJobDefinition:
    RoleArn: arn:aws:iam::123456789012:role/x
    checkpointConfig: {s3Uri: s3://b/c}
)",
                          &errs);
  ASSERT_FALSE(parsed.ok());
  ASSERT_EQ(errs.size(), 3u) << JoinErrors(errs);
  // Each with its line in the YAML (the text starts with a newline: apiVersion is line 2).
  EXPECT_EQ(errs[0].ToString(),
            "line 8: spec.hyperParameterTuningJobConfig.stratgy: unknown field; did you mean \"strategy\"?");
  EXPECT_EQ(errs[1].ToString(),
            "line 10: spec.trainingJobDefinition.RoleArn: unknown field; that is the SageMaker API spelling, "
            "this document spells it \"roleARN\"");
  EXPECT_EQ(errs[2].path, "spec.trainingJobDefinition.checkpointConfig.s3Uri");
  EXPECT_EQ(errs[2].line, 11) << "a flow mapping's member: its line";
  EXPECT_NE(errs[2].message.find("\"s3URI\""), std::string::npos);
}

// A YAML scalar where an object or a list belongs is shown as the value written ("got a string"
// described `resourceLimits: 5`; a crd pass); a number past a double's range is said to be one;
// a bare spec's errors have lines too, and a JSON document's none.
TEST(Codec, YamlTypeErrorsShowTheValueWrittenAndTheirLine) {
  FieldErrors errs;
  ASSERT_FALSE(ParseSpec("hyperParameterTuningJobName: t\n"
                         "hyperParameterTuningJobConfig:\n"
                         "  resourceLimits: 5\n"
                         "  tuningJobCompletionCriteria: {targetObjectiveMetricValue: 1e400}\n"
                         "tags: true\n",
                         &errs)
                   .ok());
  ASSERT_EQ(errs.size(), 3u) << JoinErrors(errs);
  EXPECT_EQ(errs[0].ToString(),
            "line 3: spec.hyperParameterTuningJobConfig.resourceLimits: expected an object, got a single value (5)");
  EXPECT_EQ(errs[1].line, 4);
  EXPECT_NE(errs[1].message.find("number \"1e400\" is out of range"), std::string::npos) << errs[1].message;
  EXPECT_EQ(errs[2].ToString(), "line 5: spec.tags: expected a list, got a single value (true)");
  ASSERT_FALSE(ParseSpec(R"({"hyperParameterTuningJobName": "t", "tags": true})", &errs).ok());
  ASSERT_EQ(errs.size(), 1u) << JoinErrors(errs);
  EXPECT_EQ(errs[0].ToString(), "spec.tags: expected a list, got a boolean");
}

// Members of SageMaker's current API that hpo does not implement are named as such, with what to
// do, in either spelling, rather than reported as unknown.
// A DescribeHyperParameterTuningJob answer reused as a spec: its answer-only members are named as
// such, not as unknown fields.
TEST(Codec, DescribeOnlyMembersAreNamedAsSuch) {
  FieldErrors errs;
  ASSERT_FALSE(ParseSpec(R"({"HyperParameterTuningJobName": "d", "HyperParameterTuningJobArn": "arn:x",
      "ResponseMetadata": {}, "HyperParameterTuningJobConfig": {"Strategy": "Random"}})",
                         &errs)
                   .ok());
  ASSERT_EQ(errs.size(), 2u) << JoinErrors(errs);
  EXPECT_EQ(errs[0].path, "HyperParameterTuningJobArn");
  EXPECT_EQ(errs[0].message,
            "is part of DescribeHyperParameterTuningJob's answer, not of a CreateHyperParameterTuningJob request; "
            "leave it out");
  EXPECT_EQ(errs[1].path, "ResponseMetadata");
}

TEST(Codec, SageMakerFieldsHpoDoesNotSupportAreNamedAsSuch) {
  FieldErrors errs;
  auto parsed = ParseSpec(R"({"HyperParameterTuningJobName": "api-job",
    "HyperParameterTuningJobConfig": {"Strategy": "Random"},
    "TrainingJobDefinition": {"ResourceConfig": {"InstanceType": "ml.m5.large", "TrainingPlanArn": "arn:x",
                                                 "InstancePreferences": []}}})",
                          &errs);
  ASSERT_FALSE(parsed.ok());
  ASSERT_EQ(errs.size(), 2u) << JoinErrors(errs);
  EXPECT_EQ(errs[0].path, "TrainingJobDefinition.ResourceConfig.TrainingPlanArn");
  EXPECT_EQ(errs[0].message.rfind("is a SageMaker field that hpo does not support (SageMaker training plans", 0), 0u)
      << errs[0].message;
  EXPECT_EQ(errs[1].path, "TrainingJobDefinition.ResourceConfig.InstancePreferences");
  EXPECT_NE(errs[1].message.find("HyperParameterTuningResourceConfig with InstanceConfigs"), std::string::npos)
      << errs[1].message;
  FieldErrors crd;
  ASSERT_FALSE(ParseSpec("spec:\n  hyperParameterTuningJobName: x\n  trainingJobDefinition:\n"
                         "    resourceConfig: {instancePlacementConfig: {}}\n",
                         &crd)
                   .ok());
  ASSERT_EQ(crd.size(), 1u) << JoinErrors(crd);
  EXPECT_NE(crd[0].message.find("UltraServers"), std::string::npos) << crd[0].message;
}

// What the SageMaker Python SDK sends for HyperparameterTuner(instance_configs=[...]) is read in
// both spellings.
TEST(Codec, HyperParameterTuningResourceConfigIsReadInBothSpellings) {
  auto api = ParseSpec(R"({"HyperParameterTuningJobName": "api-job",
    "TrainingJobDefinition": {"HyperParameterTuningResourceConfig": {"InstanceConfigs": [
      {"InstanceType": "ml.g5.xlarge", "InstanceCount": 1, "VolumeSizeInGB": 30},
      {"InstanceType": "ml.m5.large", "InstanceCount": 2, "VolumeSizeInGB": 10}],
      "AllocationStrategy": "Prioritized"}}})");
  ASSERT_TRUE(api.ok()) << api.status().ToString();
  const auto& h = *api->document.spec.training_job_definition->hyper_parameter_tuning_resource_config;
  ASSERT_EQ(h.instance_configs.size(), 2u);
  EXPECT_EQ(h.instance_configs[1].instance_count, 2);
  EXPECT_EQ(h.allocation_strategy, "Prioritized");
  const auto options = ResourceOptions(*api->document.spec.training_job_definition);
  ASSERT_EQ(options.size(), 2u);
  EXPECT_EQ(options[1].instance_type, "ml.m5.large");
  EXPECT_EQ(options[1].volume_size_in_gb, 10);
  auto crd = ParseSpec("spec:\n  hyperParameterTuningJobName: x\n  trainingJobDefinition:\n"
                       "    hyperParameterTuningResourceConfig:\n      instanceType: ml.g5.xlarge\n"
                       "      instanceCount: 1\n      volumeSizeInGB: 30\n");
  ASSERT_TRUE(crd.ok()) << crd.status().ToString();
  const auto one = ResourceOptions(*crd->document.spec.training_job_definition);
  ASSERT_EQ(one.size(), 1u);
  EXPECT_EQ(one[0].instance_type, "ml.g5.xlarge");
  EXPECT_EQ(one[0].volume_size_in_gb, 30);
}

// SageMaker takes InputDataConfig with 1-20 channels or none at all; an empty list is refused
// (decoded, it could not be told from a left-out one).
TEST(Codec, AnEmptyInputDataConfigIsRefusedInEitherSpelling) {
  FieldErrors api;
  ASSERT_FALSE(ParseSpec(R"({"HyperParameterTuningJobName": "x", "TrainingJobDefinition": {"InputDataConfig": []}})", &api)
                   .ok());
  ASSERT_EQ(api.size(), 1u) << JoinErrors(api);
  EXPECT_EQ(api[0].ToString(),
            "TrainingJobDefinition.InputDataConfig: must have 1-20 channels, or be left out (a training job without "
            "input data)");
  FieldErrors crd;
  ASSERT_FALSE(ParseSpec("spec:\n  hyperParameterTuningJobName: x\n  trainingJobDefinition:\n    inputDataConfig: []\n",
                         &crd)
                   .ok());
  ASSERT_EQ(crd.size(), 1u) << JoinErrors(crd);
  EXPECT_EQ(crd[0].path, "spec.trainingJobDefinition.inputDataConfig");
}

// An empty TrainingJobDefinitions beside TrainingJobDefinition is refused like an empty
// InputDataConfig (botocore: 1-10).
TEST(Codec, AnEmptyTrainingJobDefinitionsListIsRefused) {
  FieldErrors api;
  ASSERT_FALSE(ParseSpec(R"({"HyperParameterTuningJobName": "x", "TrainingJobDefinition": {},
                            "TrainingJobDefinitions": []})",
                         &api)
                   .ok());
  ASSERT_EQ(api.size(), 1u) << JoinErrors(api);
  EXPECT_EQ(api[0].path, "TrainingJobDefinitions");
  EXPECT_NE(api[0].message.find("must have 1-10 training job definitions"), std::string::npos) << api[0].message;
}

// A list or map member written with no value (YAML `tags:`, JSON null) is left out, as for an
// object member; the Kubernetes API server drops such members too.
TEST(Codec, AListOrMapWithoutAValueIsLeftOut) {
  auto crd = ParseSpec("spec:\n  hyperParameterTuningJobName: x\n  tags:\n  trainingJobDefinition:\n"
                       "    environment:\n    inputDataConfig:\n    staticHyperParameters: null\n");
  ASSERT_TRUE(crd.ok()) << crd.status().ToString();
  EXPECT_TRUE(crd->document.spec.tags.empty());
  EXPECT_TRUE(crd->document.spec.training_job_definition->environment.empty());
  EXPECT_TRUE(crd->document.spec.training_job_definition->input_data_config.empty());
  auto api = ParseSpec(R"({"HyperParameterTuningJobName": "x", "Tags": null})");
  ASSERT_TRUE(api.ok()) << api.status().ToString();
  EXPECT_TRUE(api->document.spec.tags.empty());
}

TEST(Codec, ApiSpellingIsDetectedFromPascalCaseKeys) {
  auto parsed = ParseSpec(R"({"HyperParameterTuningJobName": "api-job",
      "HyperParameterTuningJobConfig": {"Strategy": "Grid"}})");
  ASSERT_TRUE(parsed.ok()) << parsed.status().ToString();
  EXPECT_EQ(parsed->spelling, Spelling::kApi);
  EXPECT_EQ(*parsed->document.spec.hyper_parameter_tuning_job_name, "api-job");
  EXPECT_EQ(parsed->document.metadata["name"], "api-job");
}

TEST(Codec, CrdEnvelopeIsChecked) {
  FieldErrors errs;
  auto parsed = ParseSpec("apiVersion: v1\nkind: Pod\nmetdata: {}\nspec: {}\n", &errs);
  ASSERT_FALSE(parsed.ok());
  ASSERT_EQ(errs.size(), 3u) << JoinErrors(errs);
  EXPECT_EQ(errs[0].path, "apiVersion");
  EXPECT_EQ(errs[1].path, "kind");
  EXPECT_EQ(errs[2].path, "metdata");
  EXPECT_NE(errs[2].message.find("did you mean \"metadata\""), std::string::npos);
}

// A CRD pass: `lables:` under metadata validated, and the labels were lost without a word. An
// unknown metadata field is refused as kubectl's strict validation refuses it, with a hint; what
// `kubectl get -o yaml` writes there is accepted.
TEST(Codec, AnUnknownMetadataFieldIsRefusedAndKubectlsOwnAreRead) {
  const std::string head = "apiVersion: sagemaker.services.k8s.aws/v1alpha1\nkind: HyperParameterTuningJob\n";
  FieldErrors errs;
  auto bad = ParseSpec(head + "metadata:\n  name: x\n  lables: {team: ml}\nspec: {}\n", &errs);
  ASSERT_FALSE(bad.ok());
  bool named = false;
  for (const FieldError& e : errs) {
    if (e.path != "metadata.lables") continue;
    named = true;
    EXPECT_NE(e.message.find("did you mean \"labels\""), std::string::npos) << e.message;
  }
  EXPECT_TRUE(named) << JoinErrors(errs);
  errs.clear();
  (void)ParseSpec(head + "metadata:\n  name: x\n  namespace: ml\n  uid: 1-2\n  resourceVersion: \"7\"\n"
                         "  generation: 2\n  creationTimestamp: \"2026-12-07T10:00:00Z\"\n  labels: {a: b}\n"
                         "  annotations: {c: d}\n  finalizers: [x]\n  managedFields: []\n  ownerReferences: []\n"
                         "spec: {}\n",
                  &errs);
  for (const FieldError& e : errs) EXPECT_NE(e.path.rfind("metadata", 0), 0u) << e.path << ": " << e.message;
}

TEST(Codec, MalformedTextNamesLineAndColumn) {
  auto y = ParseText("spec:\n  a: [1, 2\n  b: 3\n");
  ASSERT_FALSE(y.ok());
  EXPECT_NE(y.status().message().find("malformed YAML at line"), std::string::npos) << y.status().message();
  auto j = ParseText("{\n  \"a\": 1,\n  \"b\": }\n");
  ASSERT_FALSE(j.ok());
  EXPECT_NE(j.status().message().find("malformed JSON at line 3"), std::string::npos) << j.status().message();
  EXPECT_FALSE(ParseText("   \n").ok());
  auto two = ParseText("a: 1\n---\nb: 2\n");
  ASSERT_FALSE(two.ok());
  EXPECT_NE(two.status().message().find("2 YAML documents"), std::string::npos);
  auto tab = ParseText("spec:\n  a:\n  \tb: 1\n  c: 2\n");
  ASSERT_FALSE(tab.ok());
  EXPECT_NE(tab.status().message().find("(line 3 is indented with a tab; YAML indents with spaces only)"),
            std::string::npos)
      << tab.status().message();
  auto dup = ParseText("a: 1\na: 2\n");
  ASSERT_FALSE(dup.ok());
  EXPECT_NE(dup.status().message().find("duplicate key \"a\""), std::string::npos);
}

TEST(Codec, DeeplyNestedInputIsRefusedNotRecursedInto) {
  std::string deep(5000, '[');
  EXPECT_FALSE(ParseText(deep + std::string(5000, ']')).ok());
  std::string yaml;
  for (int i = 0; i < 100; ++i) yaml += std::string(i * 2, ' ') + "a:\n";
  EXPECT_FALSE(ParseText(yaml).ok());
  // Deeper than yaml-cpp goes: said as nesting, not as yaml-cpp's "bad file".
  std::string deeper;
  for (int i = 0; i < 1500; ++i) deeper += std::string(i * 2, ' ') + "b" + std::to_string(i) + ":\n";
  deeper += std::string(3000, ' ') + "x: 1\n";
  auto refused = ParseText(deeper);
  ASSERT_FALSE(refused.ok());
  EXPECT_NE(refused.status().message().find("nesting deeper than the YAML parser allows"), std::string::npos)
      << refused.status().message();
}

TEST(Codec, WrongShapesAreErrorsNotCrashes) {
  FieldErrors errs;
  auto parsed = ParseSpec(R"({"HyperParameterTuningJobName": ["x"], "Tags": {"Key": "a"},
      "TrainingJobDefinitions": [7], "HyperParameterTuningJobConfig": {"RandomSeed": 1.5}})",
                          &errs);
  ASSERT_FALSE(parsed.ok());
  EXPECT_EQ(errs.size(), 4u) << JoinErrors(errs);
  EXPECT_FALSE(ParseSpec("[1, 2]").ok());
  EXPECT_FALSE(ParseSpec("just text").ok());
  EXPECT_FALSE(ParseSpec("{\"HyperParameterTuningJobConfig\": {\"ResourceLimits\": {\"MaxParallelTrainingJobs\": 18446744073709551615}}}").ok());
}

TEST(Codec, TimestampsAreRfc3339InTheCrdAndEpochSecondsInTheApi) {
  Timestamp t{1764373833123};
  EXPECT_EQ(FormatRfc3339(t), "2025-11-28T23:50:33.123Z");
  EXPECT_EQ(FormatRfc3339(Timestamp{0}), "1970-01-01T00:00:00Z");
  EXPECT_EQ(ParseRfc3339("2025-11-28T23:50:33.123Z")->unix_millis, t.unix_millis);
  EXPECT_EQ(ParseRfc3339("2025-11-29T01:50:33.123+02:00")->unix_millis, t.unix_millis);
  EXPECT_FALSE(ParseRfc3339("2025-13-01T00:00:00Z").ok());
  // A day the month does not have (2026-02-30 was read as March 2); February 29 in leap years only.
  EXPECT_FALSE(ParseRfc3339("2026-02-30T00:00:00Z").ok());
  EXPECT_FALSE(ParseRfc3339("2026-04-31T00:00:00Z").ok());
  EXPECT_FALSE(ParseRfc3339("2026-02-29T00:00:00Z").ok());
  EXPECT_TRUE(ParseRfc3339("2028-02-29T00:00:00Z").ok());
  EXPECT_FALSE(ParseRfc3339("2100-02-29T00:00:00Z").ok());
  EXPECT_TRUE(ParseRfc3339("2000-02-29T00:00:00Z").ok());
  EXPECT_FALSE(ParseRfc3339("yesterday").ok());
  EXPECT_FALSE(ParseRfc3339("2025-11-28T23:50:33").ok());  // a zone is required

  ListTrainingJobsResponse r;
  r.training_job_summaries.emplace_back().creation_time = t;
  Json j = EncodeListTrainingJobsResponse(r);
  EXPECT_DOUBLE_EQ(j["TrainingJobSummaries"][0]["CreationTime"].get<double>(), 1764373833.123);
  EXPECT_EQ(EncodeTrainingJobSummary(r.training_job_summaries[0], Spelling::kCrd)["creationTime"],
            "2025-11-28T23:50:33.123Z");
}

TEST(Codec, YamlWriterQuotesStringsThatWouldChangeType) {
  Json j = {{"a", "0.1"}, {"b", "true"}, {"c", ""}, {"d", "null"}, {"e", "plain"}, {"f", 3},
            {"g", "1e5"}, {"h", "no"}, {"i", Json::array()}};
  std::string y = ToYaml(j);
  EXPECT_NE(y.find("a: \"0.1\""), std::string::npos) << y;
  EXPECT_NE(y.find("b: \"true\""), std::string::npos) << y;
  EXPECT_NE(y.find("c: \"\""), std::string::npos) << y;
  EXPECT_NE(y.find("d: \"null\""), std::string::npos) << y;
  EXPECT_NE(y.find("e: plain"), std::string::npos) << y;
  EXPECT_NE(y.find("f: 3"), std::string::npos) << y;
  EXPECT_NE(y.find("g: \"1e5\""), std::string::npos) << y;
  EXPECT_NE(y.find("h: \"no\""), std::string::npos) << y;
  EXPECT_NE(y.find("i: []"), std::string::npos) << y;
}

// A number in exponent form without a '.' is a string to YAML 1.1 readers (PyYAML, kubectl):
// hpo convert wrote targetObjectiveMetricValue: 1e-07, which PyYAML read as "1e-07". Written
// with ".0", it reads as the same float everywhere, and back here.
TEST(Codec, YamlWriterWritesExponentFloatsAsYaml11ReadsThem) {
  Json j = {{"small", 1e-07}, {"big", 1e+300}, {"plain", 0.5}, {"whole", 2.0}};
  std::string y = ToYaml(j);
  EXPECT_NE(y.find("small: 1.0e-07"), std::string::npos) << y;
  EXPECT_NE(y.find("big: 1.0e+300"), std::string::npos) << y;
  EXPECT_NE(y.find("plain: 0.5"), std::string::npos) << y;
  auto back = ParseText(y);  // (YAML scalars stay text here: fields read them by their type)
  ASSERT_TRUE(back.ok()) << back.status().ToString();
  EXPECT_EQ(std::stod(back->tree["small"].get<std::string>()), 1e-07);
  EXPECT_EQ(std::stod(back->tree["big"].get<std::string>()), 1e+300);
}

TEST(Codec, YamlWriterEscapesControlCharactersAndQuotesYaml11Types) {
  // What PyYAML and go-yaml v2 (kubectl) would read as a date, an integer, or choke on raw.
  const std::vector<std::string> values = {"a\rb", "x\xC2\x85y", "x\xE2\x80\xA8y", "\x7F", "\xEF\xBB\xBF" "bom",
                                           "2001-12-14", "2001-1-2t10:00:00Z", "0b101", "-0b1_0", "=", "<<",
                                           "tab\there", "caf\xC3\xA9"};
  Json j = Json::object();
  for (size_t i = 0; i < values.size(); ++i) j["k" + std::to_string(i)] = values[i];
  j["key\x7F"] = "v";
  const std::string y = ToYaml(j);
  for (unsigned char c : y) {
    EXPECT_TRUE(c == '\n' || (c >= 0x20 && c != 0x7F)) << "raw control byte " << int(c) << " in\n" << y;
  }
  EXPECT_EQ(y.find("\xE2\x80\xA8"), std::string::npos) << y;
  EXPECT_NE(y.find("k5: \"2001-12-14\""), std::string::npos) << y;
  EXPECT_NE(y.find("k7: \"0b101\""), std::string::npos) << y;
  EXPECT_NE(y.find("k12: caf\xC3\xA9"), std::string::npos) << "plain UTF-8 stays readable\n" << y;
  EXPECT_EQ(Tree(y).tree, j) << "reads back as the same strings\n" << y;
}

TEST(Codec, JsonWithARepeatedKeyIsRefusedNamingWhere) {
  auto top = ParseText(R"({"a": 1, "a": 2})");
  ASSERT_FALSE(top.ok());
  EXPECT_EQ(top.status().message(), "duplicate key \"a\" in the top-level object; give each member once");
  auto nested = ParseText(R"({"C": {"L": [{"x": 1}, {"y": 1, "y": 2}]}})");
  ASSERT_FALSE(nested.ok());
  EXPECT_NE(nested.status().message().find("duplicate key \"y\" in C.L[1]"), std::string::npos)
      << nested.status().message();
  EXPECT_TRUE(ParseText(R"({"a": {"k": 1}, "b": {"k": 2}})").ok()) << "the same key in two objects is fine";
}

TEST(Codec, FlowStyleYamlThatStartsWithABraceIsYaml) {
  auto flow = ParseText("{hyperParameterTuningJobName: x, spec: {a: [1, b]}}");
  ASSERT_TRUE(flow.ok()) << flow.status().ToString();
  EXPECT_TRUE(flow->from_yaml);
  EXPECT_EQ(flow->tree["spec"]["a"][1], "b");
  // A quoted first key means JSON, read strictly, though YAML would take it (with b null).
  auto broken = ParseText("{\"a\": 1, \"b\": }");
  ASSERT_FALSE(broken.ok());
  EXPECT_NE(broken.status().message().find("malformed JSON at line 1"), std::string::npos)
      << broken.status().message();
  auto comment = ParseText("// my spec\n{\"a\": 1}");
  ASSERT_FALSE(comment.ok());
  EXPECT_NE(comment.status().message().find("JSON does not allow"), std::string::npos) << comment.status().message();
}

// A tag YAML does not define (CloudFormation's !GetAtt, !Sub, !Ref) was dropped: the value was
// read as its text and an error, if any, named the value. It is refused naming the tag; YAML's
// own tags are read, !!str keeping null-like text a string.
TEST(Codec, YamlTagsOtherThanYamlsOwnAreRefusedNamingTheTag) {
  auto cfn = ParseText("spec:\n  roleARN: !GetAtt Role.Arn\n");
  ASSERT_FALSE(cfn.ok());
  EXPECT_NE(cfn.status().message().find("line 2, column 12: the YAML tag !GetAtt is not supported"),
            std::string::npos)
      << cfn.status().message();
  EXPECT_FALSE(ParseText("a: !Sub \"arn:${AWS::AccountId}\"\n").ok());
  EXPECT_FALSE(ParseText("a: !Ref [x]\n").ok());
  auto own = ParseText("a: !!str null\nb: !!int 3\nc: !!map {d: e}\n");
  ASSERT_TRUE(own.ok()) << own.status().ToString();
  EXPECT_EQ(own->tree["a"], "null");
  EXPECT_EQ(own->tree["b"], "3");
  EXPECT_EQ(own->tree["c"]["d"], "e");
}

TEST(Codec, YamlMergeKeysMergeWithWrittenKeysWinning) {
  auto t = ParseText(
      "base: &b {minValue: '1', maxValue: '9', scalingType: Linear}\n"
      "other: &o {scalingType: Logarithmic, extra: e}\n"
      "one: {<<: *b, name: x, maxValue: '5'}\n"
      "two:\n  <<: [*o, *b]\n  name: y\n"
      "quoted: {'<<': literal}\n");
  ASSERT_TRUE(t.ok()) << t.status().ToString();
  EXPECT_EQ(t->tree["one"], Json::parse(R"({"name": "x", "maxValue": "5", "minValue": "1", "scalingType": "Linear"})"));
  EXPECT_EQ(t->tree["two"]["scalingType"], "Logarithmic") << "the first merged mapping wins";
  EXPECT_EQ(t->tree["two"]["minValue"], "1");
  EXPECT_EQ(t->tree["two"]["extra"], "e");
  EXPECT_EQ(t->tree["quoted"]["<<"], "literal") << "a quoted << is an ordinary key";
  auto bad = ParseText("a: {<<: text}\n");
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.status().message().find("merge key (<<) takes a mapping"), std::string::npos);
}

TEST(Codec, ATopLevelScalarIsNotATuningJob) {
  FieldErrors errs;
  EXPECT_FALSE(ParseSpec("42\n", &errs).ok());
  ASSERT_EQ(errs.size(), 1u);
  EXPECT_NE(errs[0].message.find("got a single value, not a mapping of fields"), std::string::npos)
      << errs[0].message;
}

TEST(Codec, CrdNamesFollowTheControllersSpellings) {
  EXPECT_EQ(CrdName("Type"), "type_");
  EXPECT_EQ(CrdName("S3Uri"), "s3URI");
  EXPECT_EQ(CrdName("RoleArn"), "roleARN");
  EXPECT_EQ(CrdName("VolumeKmsKeyId"), "volumeKMSKeyID");
  EXPECT_EQ(CrdName("SecurityGroupIds"), "securityGroupIDs");
  EXPECT_EQ(CrdName("HyperParameterTuningJobConfig"), "hyperParameterTuningJobConfig");
  FieldPath p = FieldPath(Spelling::kCrd).Child("TrainingJobDefinitions").Index(1).Child("RoleArn");
  EXPECT_EQ(p.str(), "spec.trainingJobDefinitions[1].roleARN");
  FieldPath a = FieldPath(Spelling::kApi).Child("TrainingJobDefinitions").Index(1).Child("RoleArn");
  EXPECT_EQ(a.str(), "TrainingJobDefinitions[1].RoleArn");
  EXPECT_EQ(FieldPath(Spelling::kCrd).Child("TrainingJobDefinition").Child("StaticHyperParameters").Key("epochs").str(),
            "spec.trainingJobDefinition.staticHyperParameters.epochs");
}

TEST(Codec, MetadataIsKeptWithItsTypes) {
  auto parsed = ParseSpec(R"(
apiVersion: sagemaker.services.k8s.aws/v1alpha1
kind: HyperParameterTuningJob
metadata:
  name: meta
  namespace: ml
  generation: 3
  labels: {team: vision, tier: "1"}
spec:
  hyperParameterTuningJobName: meta
)");
  ASSERT_TRUE(parsed.ok()) << parsed.status().ToString();
  const Json& m = parsed->document.metadata;
  EXPECT_EQ(m["generation"], 3);
  EXPECT_EQ(m["labels"]["tier"], "1");
  std::string yaml = ToYaml(EncodeCrdDocument(parsed->document));
  auto again = ParseSpec(yaml);
  ASSERT_TRUE(again.ok());
  EXPECT_EQ(again->document, parsed->document);
}

}  // namespace
}  // namespace hpo::proto

namespace hpo::proto {
namespace {

TEST(Codec, YamlWithInvalidUtf8IsRefusedBecauseJsonCannotCarryIt) {
  auto bad = ParseText("spec:\n  hyperParameterTuningJobName: \"a\xff\xfe\"\n");
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.status().message().find("not valid UTF-8"), std::string::npos);
  auto key = ParseText("\xc3\x28: 1\n");
  EXPECT_FALSE(key.ok());
  EXPECT_TRUE(ParseText("name: \"caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x9a\x80\"\n").ok());
}

// YAML's escapes \N (next line, U+0085) and \_ (no-break space, U+00A0) in double quotes: the
// YAML library gives their Latin-1 byte, and the spec was refused as "not valid UTF-8". They
// are the characters' UTF-8 now, in values and keys; \L and \P already were. A raw such byte in
// a document that is not UTF-8 is still refused.
TEST(Codec, YamlEscapesForNextLineAndNoBreakSpaceAreTheirCharacters) {
  auto parsed = ParseText("a: \"x\\Ny\\_z\\Lw\\Pv\"\n\"k\\_ey\": 1\nc: \"caf\\u00e9\\_\\N\"\n");
  ASSERT_TRUE(parsed.ok()) << parsed.status().ToString();
  EXPECT_EQ(parsed->tree["a"], "x\xC2\x85y\xC2\xA0z\xE2\x80\xA8w\xE2\x80\xA9v");
  EXPECT_TRUE(parsed->tree.contains("k\xC2\xA0" "ey")) << parsed->tree.dump();
  EXPECT_EQ(parsed->tree["c"], "caf\xC3\xA9\xC2\xA0\xC2\x85");
  auto raw = ParseText("a: \"x\x85y\"\n");
  ASSERT_FALSE(raw.ok());
  EXPECT_NE(raw.status().message().find("not valid UTF-8"), std::string::npos);
}

// Found by the spec fuzzer: nested aliases name a tree of 10^9 nodes in a few hundred bytes, and
// copying it exhausted memory. It is refused quickly, naming the cause; ordinary aliases work.
TEST(Codec, YamlAliasesThatExpandWithoutBoundAreRefused) {
  std::string laughs = "a: &a [x, x, x, x, x, x, x, x, x, x]\n";
  for (char c = 'b'; c <= 'j'; ++c) {
    std::string prev(1, static_cast<char>(c - 1));
    laughs += std::string(1, c) + ": &" + c + " [*" + prev + ", *" + prev + ", *" + prev + ", *" + prev + ", *" +
              prev + ", *" + prev + ", *" + prev + ", *" + prev + ", *" + prev + ", *" + prev + "]\n";
  }
  auto bad = ParseText(laughs);
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.status().message().find("expands to more than 50000 nodes"), std::string::npos)
      << bad.status().message();
  auto fine = ParseText("base: &b {instanceType: ml.m5.large}\nother: *b\n");
  ASSERT_TRUE(fine.ok()) << fine.status().ToString();
  EXPECT_EQ(fine->tree["other"]["instanceType"], "ml.m5.large");
}

// Within the old budget (10^6 nodes, 64 MiB) one document of 6 KB could still make the fuzzer's
// parse, decode, re-encode and re-parse take 1.9 GB and 80 s; the budget is now proportionate to
// the largest spec SageMaker accepts.
TEST(Codec, DocumentsBeyondTheSizeLimitsAreRefusedNamingTheLimit) {
  std::string big(kMaxDocumentBytes + 1, ' ');
  big.replace(0, 6, "name: ");
  auto yaml = ParseText(big);
  ASSERT_FALSE(yaml.ok());
  EXPECT_NE(yaml.status().message().find("more than the limit of 4 MiB"), std::string::npos) << yaml.status().message();
  big[0] = '[';
  big.replace(1, 5, "     ");
  big.back() = ']';
  auto json = ParseText(big);
  ASSERT_FALSE(json.ok());
  EXPECT_NE(json.status().message().find("more than the limit of 4 MiB"), std::string::npos) << json.status().message();

  // JSON has no aliases, but can still hold many small nodes.
  std::string many = "[0";
  for (size_t i = 0; i < kMaxDocumentNodes; ++i) many += ",0";
  many += "]";
  auto nodes = ParseText(many);
  ASSERT_FALSE(nodes.ok());
  EXPECT_NE(nodes.status().message().find("more than 50000 nodes"), std::string::npos) << nodes.status().message();
  many.resize(many.size() - 5);
  many += "]";
  EXPECT_TRUE(ParseText(many).ok());

  // YAML aliases: a 1,000-element list named 50 times is 50,000 nodes and more (the lists, the
  // top-level map); 45 times is fine.
  std::string list = "a: &a [x";
  for (int i = 1; i < 1000; ++i) list += ", x";
  list += "]\nb: [*a";
  for (int i = 1; i < 45; ++i) list += ", *a";
  auto fine = ParseText(list + "]\n");
  ASSERT_TRUE(fine.ok()) << fine.status().ToString();
  EXPECT_EQ(fine->tree["b"].size(), 45u);
  auto too_many = ParseText(list + ", *a, *a, *a, *a, *a]\n");
  ASSERT_FALSE(too_many.ok());
  EXPECT_NE(too_many.status().message().find("expands to more than 50000 nodes or 4 MiB of text"), std::string::npos)
      << too_many.status().message();

  // A 60 KB string named 100 times is 6 MB of text in under 61 KB of YAML; keys count too.
  std::string text = "a: &a \"" + std::string(60000, 'z') + "\"\nb: [";
  for (int i = 0; i < 100; ++i) text += (i ? ", *a" : "*a");
  auto long_text = ParseText(text + "]\n");
  ASSERT_FALSE(long_text.ok());
  EXPECT_NE(long_text.status().message().find("4 MiB of text"), std::string::npos) << long_text.status().message();
  std::string keys = "a: &a {" + std::string(60000, 'k') + ": 1}\nb: [";
  for (int i = 0; i < 100; ++i) keys += (i ? ", *a" : "*a");
  EXPECT_FALSE(ParseText(keys + "]\n").ok());
}

// Objects are built by appending (ordered_json's own insert scans every key, which made a map of
// thousands of keys named through YAML aliases take 40 s under the fuzzer); order and values are
// unchanged (a repeated key is refused: JsonWithARepeatedKeyIsRefusedNamingWhere).
TEST(Codec, LargeObjectsKeepTheirOrderAndAreBuiltInLinearTime) {
  auto json = ParseText(R"({"b": 3, "a": {"y": [1, 2.5, "s", null, true], "x": {}}, "c": []})");
  ASSERT_TRUE(json.ok()) << json.status().ToString();
  EXPECT_EQ(json->tree.dump(), R"({"b":3,"a":{"y":[1,2.5,"s",null,true],"x":{}},"c":[]})");
  auto yaml = ParseText("b: 1\na: {y: [1, s], x: {}}\nc: []\n");
  ASSERT_TRUE(yaml.ok()) << yaml.status().ToString();
  EXPECT_EQ(yaml->tree.dump(), R"({"b":"1","a":{"y":["1","s"],"x":{}},"c":[]})");

  std::string keys = "{";
  for (int i = 0; i < 45000; ++i) keys += (i ? ",\"k" : "\"k") + std::to_string(i) + "\":" + std::to_string(i);
  auto many = ParseText(keys + "}");
  ASSERT_TRUE(many.ok()) << many.status().ToString();
  ASSERT_EQ(many->tree.size(), 45000u);
  EXPECT_EQ(many->tree.begin().key(), "k0");
  EXPECT_EQ(many->tree["k44999"], 44999);

  std::string named = "a: &a {";
  for (int i = 0; i < 1000; ++i) named += (i ? ", k" : "k") + std::to_string(i) + ": v";
  named += "}\nb: [";
  for (int i = 0; i < 45; ++i) named += (i ? ", *a" : "*a");
  auto aliases = ParseText(named + "]\n");
  ASSERT_TRUE(aliases.ok()) << aliases.status().ToString();
  EXPECT_EQ(aliases->tree["b"][44]["k999"], "v");
}

// Found while checking the fuzzer's round trip by hand: libstdc++'s std::regex recursed once per
// character of a long digit string (deciding whether YAML would read it as a number), and a
// 60,000-digit job name overflowed the stack in ToYaml.
TEST(Codec, ToYamlQuotesLongNumberLikeTextWithoutOverflowingTheStack) {
  for (const std::string& s : {std::string(200000, '1'), std::string(200000, '1') + "x", "1." + std::string(100000, '5'),
                               std::string(100000, 'z')}) {
    Json tree = {{"spec", {{"hyperParameterTuningJobName", s}}}};
    std::string yaml = ToYaml(tree);
    auto back = ParseText(yaml);
    ASSERT_TRUE(back.ok()) << back.status().ToString();
    EXPECT_EQ(back->tree, tree);
  }
  EXPECT_EQ(ToYaml(Json{{"a", std::string(100, '7')}}), "a: \"" + std::string(100, '7') + "\"\n");
  EXPECT_EQ(ToYaml(Json{{"a", std::string(100, 'z')}}), "a: " + std::string(100, 'z') + "\n");
  // Signed and upper-case radix forms and base 60 with a sign (-0x1F, 0X1F, -1:30, .5_): kubectl
  // or PyYAML read them as numbers, and they went out unquoted.
  for (const char* number : {"1", "-0.5", "1e5", "0x1F", "0o17", ".inf", "-.Inf", ".NaN", "1_000", "1:30", "007",
                             "-0x1F", "+0x1F", "-0o17", "0X1F", "0O7", "0B1", "-0b1", "-1:30", "+1:30", "-1:30.5",
                             ".5_", "-._5"}) {
    EXPECT_EQ(ToYaml(Json{{"a", number}}), std::string("a: \"") + number + "\"\n") << number;
  }
  for (const char* text : {"abc", "1a2b", "ml.m5.large", "loss=([0-9.]+)", "x1"}) {
    EXPECT_EQ(ToYaml(Json{{"a", text}}), std::string("a: ") + text + "\n") << text;
  }
}

// A user pass: yaml-cpp took a quoted value without its closing quote to run to the end of the
// file, without an error: `value: 'crd-test` on a tag swallowed the warmStartConfig after it, and
// the spec validated and ran without its warm start. Refused where the value starts, as PyYAML
// and kubectl refuse it; quotes that are closed (across lines, with '' or \" inside) still read.
TEST(Codec, AQuotedValueNeverClosedIsRefusedWhereItStarts) {
  for (const char* text : {"spec:\n  tags:\n    - value: 'crd-test\n  warmStartConfig:\n    warmStartType: x\n",
                           "a: \"open\n", "a: 'it''s\n", "a: \"esc \\\"\n", "- 'x'\n- 'y\n"}) {
    auto bad = ParseText(text);
    ASSERT_FALSE(bad.ok()) << text;
    EXPECT_EQ(bad.status().message().find("malformed YAML at line "), 0u) << bad.status().message();
    EXPECT_NE(bad.status().message().find("here is never closed"), std::string::npos) << bad.status().message();
  }
  auto at = ParseText("a: 1\nb:\n  c: 'x\n  d: 2\n");
  ASSERT_FALSE(at.ok());
  EXPECT_EQ(at.status().message().find("malformed YAML at line 3, column 6: the value quoted with ' here"), 0u)
      << at.status().message();
  for (const char* text : {"a: 'it''s'\n", "a: \"say \\\"hi\\\"\"\n", "a: 'two\n  lines'\nb: 1\n", "'k': \"v\"\n",
                           "a: \"\"\n", "a: ''\n", "a: !!str 'x'\n", "a: [\"x\", 'y']\n"}) {
    auto good = ParseText(text);
    EXPECT_TRUE(good.ok()) << text << " -> " << good.status().ToString();
  }
}

// A manifest as kubectl applies it holds a Namespace (or other resources) beside the tuning job:
// the one HyperParameterTuningJob document is the spec (it was refused as "2 YAML documents").
TEST(Codec, AManifestsOneTuningJobDocumentIsTheSpec) {
  auto one = ParseText("apiVersion: v1\nkind: Namespace\nmetadata: {name: ml}\n---\n"
                       "apiVersion: sagemaker.services.k8s.aws/v1alpha1\nkind: HyperParameterTuningJob\nspec: {a: 1}\n");
  ASSERT_TRUE(one.ok()) << one.status().ToString();
  EXPECT_EQ(one->tree["kind"], "HyperParameterTuningJob");
  EXPECT_EQ(one->tree["spec"]["a"], "1");
  auto two = ParseText("kind: HyperParameterTuningJob\nspec: {}\n---\nkind: HyperParameterTuningJob\nspec: {}\n");
  ASSERT_FALSE(two.ok());
  EXPECT_NE(two.status().message().find("2 of them of kind HyperParameterTuningJob; give one tuning job per file"),
            std::string::npos)
      << two.status().message();
  auto none = ParseText("kind: Namespace\n---\nkind: ConfigMap\n");
  ASSERT_FALSE(none.ok());
  EXPECT_NE(none.status().message().find("none is of kind HyperParameterTuningJob"), std::string::npos)
      << none.status().message();
}

// A regression pass: `kubectl get hyperparametertuningjobs -o yaml` (kind: List) was refused. Its
// one tuning job is the spec, with its kubectl notes at the item's own paths; two are refused.
TEST(Codec, AKubernetesListsOneTuningJobIsTheSpec) {
  const std::string item = "  - apiVersion: sagemaker.services.k8s.aws/v1alpha1\n    kind: HyperParameterTuningJob\n"
                           "    metadata: {name: listed}\n    spec:\n      trainingJobDefinition:\n"
                           "        staticHyperParameters: {epochs: 10}\n";
  FieldErrors errs;
  ParsedSpec partial;
  (void)ParseSpec("apiVersion: v1\nkind: List\nitems:\n" + item + "metadata: {resourceVersion: \"\"}\n", &errs,
                  &partial);
  EXPECT_EQ(partial.spelling, Spelling::kCrd);
  EXPECT_EQ(partial.document.metadata.value("name", ""), "listed");
  EXPECT_EQ(partial.document.spec.training_job_definition->static_hyper_parameters.at("epochs"), "10");
  bool noted = false;
  for (const FieldError& n : partial.kubectl_notes)
    noted = noted || n.path == "spec.trainingJobDefinition.staticHyperParameters.epochs";
  EXPECT_TRUE(noted) << "the note's path is the item's own";
  for (const FieldError& e : errs) EXPECT_EQ(e.path.find("items"), std::string::npos) << e.path << ": " << e.message;
  auto two = ParseSpec("apiVersion: v1\nkind: List\nitems:\n" + item + item);
  ASSERT_FALSE(two.ok());
  EXPECT_NE(two.status().message().find("a Kubernetes List of 2 items, 2 of them of kind HyperParameterTuningJob"),
            std::string::npos)
      << two.status().message();
}

// Found by the spec fuzzer (an out-of-memory after ~1 GB): a ',' where a YAML node should start,
// e.g. after a top-level quoted scalar, made yaml-cpp 0.7's LoadAll return empty documents
// forever without consuming it, and the document list grew until memory ran out. The parser now
// stops at the first document that consumes nothing and says where the bad text is.
TEST(Codec, YamlThatStallsTheDocumentParserIsRefusedWithItsPosition) {
  struct Case {
    const char* text;
    const char* where;
  };
  for (const Case& c : {Case{",", "line 1, column 1: unexpected ','"},
                        Case{"\"x\",\n", "line 1, column 4: unexpected ','"},
                        Case{"--- [a], b\n", "line 1, column 8: unexpected ','"},
                        Case{"&a ,", "line 1, column 4: unexpected ','"},
                        Case{"# a spec\n  \"Hy0ick\",\n  \"Strategy\": x\n", "line 2, column 11: unexpected ','"},
                        Case{"a: 1\n---\n,\n", "line 3, column 1: unexpected ','"},
                        Case{"...\n,\n", "line 2, column 1: unexpected ','"}}) {
    auto bad = ParseText(c.text);
    ASSERT_FALSE(bad.ok()) << c.text;
    EXPECT_EQ(bad.status().message().find(std::string("malformed YAML at ") + c.where), 0u)
        << c.text << " -> " << bad.status().message();
    EXPECT_FALSE(ParseSpec(c.text).ok()) << c.text;
  }
  // What the check must not refuse: empty documents between markers, several documents (counted),
  // and a ',' where YAML allows one.
  auto three = ParseText("---\nx: 0\n---\n---\ny: 2\n---\na: 1\n...\n");
  ASSERT_FALSE(three.ok());
  EXPECT_NE(three.status().message().find("the file holds 3 YAML documents"), std::string::npos)
      << three.status().message();
  // Empty ones are skipped, as kubectl does (helm and kustomize write them, and a trailing `---`):
  // the file holds one tuning job.
  for (const char* text : {"---\n---\n---\na: 1\n...\n", "a: 1\n---\n", "a: 1\n---\n# the end\n",
                           "---\n~\n---\na: 1\n"}) {
    auto skipped = ParseText(text);
    ASSERT_TRUE(skipped.ok()) << text << " -> " << skipped.status().ToString();
    EXPECT_EQ(skipped->tree["a"], "1") << text;
  }
  EXPECT_FALSE(ParseText("---\n---\n").ok()) << "only empty documents: empty";
  auto commas = ParseText("a: [1, 2]\nb: {c: d, e: f}\ng: x, y\n");
  ASSERT_TRUE(commas.ok()) << commas.status().ToString();
  EXPECT_EQ(commas->tree["g"], "x, y");
  auto one = ParseText("---\na: 1\n...\n");
  ASSERT_TRUE(one.ok()) << one.status().ToString();
  EXPECT_EQ(one->tree["a"], "1");
}

// The input the fuzzer found, kept as a seed: it must fail to parse, quickly and in little memory.
TEST(Codec, FuzzerSeedThatStalledTheYamlParserIsRefused) {
  std::ifstream f(std::string(HPO_TESTDATA_DIR) + "/../../fuzz/corpus/spec/yaml-stray-comma.yaml", std::ios::binary);
  ASSERT_TRUE(f.good());
  std::string text((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
  auto parsed = ParseSpec(text);
  ASSERT_FALSE(parsed.ok());
  EXPECT_NE(parsed.status().message().find("malformed YAML at line"), std::string::npos) << parsed.status().message();
}

}  // namespace
}  // namespace hpo::proto

namespace hpo::proto {
namespace {

// A CRD in YAML whose values kubectl's YAML 1.1 reader would type otherwise than the CRD's schema
// (`kubectl apply` would be refused): hpo reads every one by its field's type, and ParseSpec
// notes each with the fix; so are labels that are not text to kubectl. Values typed as the schema
// has them, and API input, get no note.
TEST(Codec, ValuesKubectlWouldTypeOtherwiseThanTheCrdAreReadAndNoted) {
  const std::string crd = R"(apiVersion: sagemaker.services.k8s.aws/v1alpha1
kind: HyperParameterTuningJob
metadata:
  name: typed
  labels: {team: 7, enabled: yes}
spec:
  hyperParameterTuningJobName: typed
  hyperParameterTuningJobConfig:
    strategy: Random
    hyperParameterTuningJobObjective: {type_: Minimize, metricName: loss}
    resourceLimits:
      maxNumberOfTrainingJobs: "12"
      maxParallelTrainingJobs: 3
    parameterRanges:
      continuousParameterRanges:
        - {name: lr, minValue: 1e-4, maxValue: "0.5"}
      categoricalParameterRanges:
        - {name: batch, values: [64, "128", 0x100]}
  trainingJobDefinition:
    staticHyperParameters:
      epochs: 1_000
      verbose: yes
      mode: fast
      octal: 010
      on: "1"
    enableManagedSpotTraining: "true"
    algorithmSpecification: {trainingImage: "file:///bin/true", trainingInputMode: File}
    roleARN: arn:aws:iam::123456789012:role/r
    outputDataConfig: {s3OutputPath: "s3://b/o"}
    resourceConfig: {instanceType: ml.m5.large, instanceCount: 1, volumeSizeInGB: 1}
    stoppingCondition: {maxRuntimeInSeconds: 60, maxWaitTimeInSeconds: 120}
)";
  auto p = ParseSpec(crd);
  ASSERT_TRUE(p.ok()) << p.status().ToString();
  const TuningJobSpec& s = p->document.spec;
  EXPECT_EQ(*s.hyper_parameter_tuning_job_config->resource_limits->max_number_of_training_jobs, 12);
  const auto& statics = s.training_job_definition->static_hyper_parameters;
  EXPECT_EQ(statics.at("epochs"), "1_000");
  EXPECT_EQ(statics.at("verbose"), "yes");
  EXPECT_EQ(statics.at("octal"), "010");
  EXPECT_EQ(s.hyper_parameter_tuning_job_config->parameter_ranges->continuous_parameter_ranges[0].min_value, "1e-4");
  EXPECT_TRUE(*s.training_job_definition->enable_managed_spot_training);
  std::map<std::string, std::string> noted;
  for (const auto& n : p->kubectl_notes) noted[n.path] = n.message;
  const std::string cfg = "spec.hyperParameterTuningJobConfig.", def = "spec.trainingJobDefinition.";
  const std::map<std::string, std::string> want = {
      {"metadata.labels.team",
       "7 is not text, and Kubernetes takes only text there: write it in quotes, \"7\" (hpo leaves it out)"},
      {"metadata.labels.enabled",
       "yes is a boolean to kubectl (YAML 1.1), and Kubernetes takes only text there: write it in quotes, \"yes\""},
      {cfg + "resourceLimits.maxNumberOfTrainingJobs",
       "\"12\" is quoted, a string to kubectl, and the CRD's schema has an integer here: write it without quotes, 12"},
      {cfg + "parameterRanges.continuousParameterRanges[0].minValue",
       "1e-4 is a number to kubectl (YAML 1.1) and the CRD's schema has a string here: write it in quotes, \"1e-4\""},
      {cfg + "parameterRanges.categoricalParameterRanges[0].values[0]",
       "64 is an integer to kubectl (YAML 1.1) and the CRD's schema has a string here: write it in quotes, \"64\""},
      {cfg + "parameterRanges.categoricalParameterRanges[0].values[2]",
       "0x100 is an integer to kubectl (YAML 1.1) and the CRD's schema has a string here: write it in quotes, "
       "\"0x100\""},
      {def + "staticHyperParameters.epochs",
       "1_000 is an integer to kubectl (YAML 1.1) and the CRD's schema has a string here: write it in quotes, "
       "\"1_000\""},
      {def + "staticHyperParameters.verbose",
       "yes is a boolean to kubectl (YAML 1.1) and the CRD's schema has a string here: write it in quotes, \"yes\""},
      {def + "staticHyperParameters.octal",
       "010 is an integer to kubectl (YAML 1.1) and the CRD's schema has a string here: write it in quotes, \"010\""},
      // A key, too (a CRD pass: a hyperparameter named on reached the cluster named true).
      {def + "staticHyperParameters.on",
       "the key on is a boolean to kubectl (YAML 1.1), which sends it as the key \"true\": write the key in quotes, "
       "\"on\""},
      {def + "enableManagedSpotTraining",
       "\"true\" is quoted, a string to kubectl, and the CRD's schema has true or false here: write it without quotes, "
       "true"},
  };
  EXPECT_EQ(noted, want);

  // The same job written as the schema has it: no note.
  std::string clean = crd;
  for (const auto& [from, to] : std::vector<std::pair<std::string, std::string>>{
           {"{team: 7, enabled: yes}", "{team: \"7\", enabled: \"yes\"}"},
           {"maxNumberOfTrainingJobs: \"12\"", "maxNumberOfTrainingJobs: 12"},
           {"minValue: 1e-4", "minValue: \"1e-4\""},
           {"[64, \"128\", 0x100]", "[\"64\", \"128\", \"0x100\"]"},
           {"epochs: 1_000", "epochs: \"1_000\""},
           {"verbose: yes", "verbose: \"yes\""},
           {"octal: 010", "octal: \"010\""},
           {"on: \"1\"", "\"on\": \"1\""},
           {"enableManagedSpotTraining: \"true\"", "enableManagedSpotTraining: true"}}) {
    ASSERT_NE(clean.find(from), std::string::npos) << from;
    clean.replace(clean.find(from), from.size(), to);
  }
  auto c = ParseSpec(clean);
  ASSERT_TRUE(c.ok()) << c.status().ToString();
  EXPECT_TRUE(c->kubectl_notes.empty()) << c->kubectl_notes[0].ToString();
  EXPECT_EQ(c->document.spec, p->document.spec) << "read the same either way";
  EXPECT_EQ(KeptKubernetesMetadata(c->document.metadata),
            Json::parse(R"({"name": "typed", "labels": {"team": "7", "enabled": "yes"}})"));
  EXPECT_EQ(KeptKubernetesMetadata(p->document.metadata),
            Json::parse(R"({"name": "typed", "labels": {"enabled": "yes"}})"))
      << "a label that is not text is left out";

  // JSON has typed scalars (a type error is an error there), and the API spelling is no resource.
  auto api = ParseSpec(R"(HyperParameterTuningJobName: typed
HyperParameterTuningJobConfig:
  Strategy: Random
  ResourceLimits: {MaxNumberOfTrainingJobs: "12", MaxParallelTrainingJobs: 3}
TrainingJobDefinition:
  StaticHyperParameters: {epochs: 10}
)");
  ASSERT_TRUE(api.ok()) << api.status().ToString();
  EXPECT_TRUE(api->kubectl_notes.empty());
}

}  // namespace
}  // namespace hpo::proto
