// coordinator/search.h: SearchExpression parsing (what SageMaker refuses, and the message), and
// matching against resource documents shaped as Search returns them.

#include "coordinator/search.h"

#include <gtest/gtest.h>

#include <string>

namespace hpo::coordinator {
namespace {

using Json = nlohmann::ordered_json;

// A training job as Search returns one (the fields the filters below read).
Json TrainingJob() {
  return Json::parse(R"({
    "TrainingJobName": "tune-003-1a2b3c4d",
    "TuningJobArn": "arn:aws:sagemaker:local:000000000000:hyper-parameter-tuning-job/tune",
    "TrainingJobStatus": "Completed",
    "HyperParameters": {"lr": "0.75", "layers": "4", "optimizer": "\"adam\"", "note": "fast"},
    "InputDataConfig": [
      {"ChannelName": "train", "DataSource": {"S3DataSource": {"S3Uri": "s3://bucket/cats/train"}}},
      {"ChannelName": "validation", "DataSource": {"S3DataSource": {"S3Uri": "s3://bucket/dogs/validation"}}}],
    "ResourceConfig": {"InstanceType": "ml.g5.xlarge", "InstanceCount": 2},
    "EnableManagedSpotTraining": true,
    "CreationTime": 1796559505.5,
    "LastModifiedTime": 1796559600.0,
    "FinalMetricDataList": [{"MetricName": "train:loss", "Value": 0.2, "Timestamp": 1796559590.0},
                            {"MetricName": "validation:loss", "Value": 0.31, "Timestamp": 1796559599.0}],
    "Tags": [{"Key": "team", "Value": "vision"}, {"Key": "stage", "Value": "dev"}]
  })");
}

Result<SearchExpression> Parse(const std::string& json, SearchResource r = SearchResource::kTrainingJob) {
  return SearchExpression::Parse(Json::parse(json), r);
}

bool Matches(const std::string& json, const Json& doc = TrainingJob()) {
  auto e = Parse(json);
  EXPECT_TRUE(e.ok()) << e.status().ToString();
  return e.ok() && e->Matches(doc);
}

std::string Refusal(const std::string& json, SearchResource r = SearchResource::kTrainingJob) {
  auto e = Parse(json, r);
  EXPECT_FALSE(e.ok()) << json;
  return e.ok() ? std::string() : e.status().message();
}

std::string Filter(const std::string& name, const std::string& op, const std::string& value) {
  return R"({"Filters": [{"Name": ")" + name + R"(", "Operator": ")" + op + R"(", "Value": ")" + value + R"("}]})";
}

TEST(Search, MetricsCompareAsNumbers) {
  EXPECT_TRUE(Matches(Filter("Metrics.validation:loss", "LessThan", "0.5")));
  EXPECT_FALSE(Matches(Filter("Metrics.validation:loss", "GreaterThan", "0.5")));
  EXPECT_TRUE(Matches(Filter("Metrics.validation:loss", "Equals", "0.31")));
  EXPECT_TRUE(Matches(Filter("Metrics.train:loss", "LessThanOrEqualTo", "2e-1")));
  EXPECT_FALSE(Matches(Filter("Metrics.accuracy", "GreaterThan", "0")));  // no such metric
  EXPECT_TRUE(Matches(Filter("Metrics.accuracy", "NotEquals", "1")));    // missing: NotEquals holds
  EXPECT_TRUE(Matches(R"({"Filters": [{"Name": "Metrics.accuracy", "Operator": "NotExists"}]})"));
  EXPECT_TRUE(Matches(R"({"Filters": [{"Name": "Metrics.train:loss"}]})"));  // neither: Exists
}

TEST(Search, HyperParametersAreNumbersWhenTheValueIsOne) {
  EXPECT_TRUE(Matches(Filter("HyperParameters.lr", "LessThan", "0.8")));
  EXPECT_FALSE(Matches(Filter("HyperParameters.lr", "LessThan", "0.5")));
  // An integer Value: the hyperparameter is taken as an integer (0.75 truncates to 0).
  EXPECT_TRUE(Matches(Filter("HyperParameters.lr", "Equals", "0")));
  EXPECT_TRUE(Matches(Filter("HyperParameters.layers", "GreaterThanOrEqualTo", "4")));
  EXPECT_TRUE(Matches(Filter("HyperParameters.layers", "Equals", "4.0")));
  // Text otherwise, as sent (the SDK's JSON-encoded categoricals keep their quotes).
  EXPECT_TRUE(Matches(Filter("HyperParameters.optimizer", "Equals", "\\\"adam\\\"")));
  EXPECT_TRUE(Matches(Filter("HyperParameters.optimizer", "Contains", "adam")));
  EXPECT_TRUE(Matches(Filter("HyperParameters.note", "In", "slow, fast")));
  EXPECT_FALSE(Matches(Filter("HyperParameters.note", "GreaterThan", "3")));  // not a number: no match
  EXPECT_NE(Refusal(Filter("HyperParameters.note", "GreaterThan", "abc")).find("as a number"), std::string::npos);
}

TEST(Search, TextTagsBooleansAndTimestamps) {
  EXPECT_TRUE(Matches(Filter("TrainingJobStatus", "Equals", "Completed")));
  EXPECT_FALSE(Matches(Filter("TrainingJobStatus", "Equals", "completed")));  // case-sensitive
  EXPECT_TRUE(Matches(Filter("TrainingJobStatus", "In", "Failed,Completed")));
  EXPECT_TRUE(Matches(Filter("TrainingJobName", "Contains", "-003-")));
  EXPECT_TRUE(Matches(Filter("Tags.team", "Equals", "vision")));
  EXPECT_FALSE(Matches(Filter("Tags.team", "Equals", "stage")));
  EXPECT_TRUE(Matches(Filter("EnableManagedSpotTraining", "Equals", "true")));
  EXPECT_TRUE(Matches(Filter("EnableManagedSpotTraining", "NotEquals", "false")));
  // 1796559505.5 is 2026-12-06T12:18:25.5Z.
  EXPECT_TRUE(Matches(Filter("CreationTime", "GreaterThan", "2026-12-06T12:18:25")));
  EXPECT_FALSE(Matches(Filter("CreationTime", "GreaterThan", "2026-12-06T12:18:26")));
  EXPECT_TRUE(Matches(Filter("CreationTime", "LessThan", "2026-12-06T13:18:26+01:00")));
  EXPECT_FALSE(Matches(Filter("CreationTime", "LessThan", "2026-12-06T13:18:25+01:00")));
  EXPECT_TRUE(Matches(Filter("CreationTime", "GreaterThanOrEqualTo", "2026-12-06T12:18:25.5Z")));
  EXPECT_TRUE(Matches(Filter("ResourceConfig.InstanceCount", "GreaterThan", "1")));
}

TEST(Search, ListsMatchThroughAnyElementAndNestedFiltersThroughOne) {
  EXPECT_TRUE(Matches(Filter("InputDataConfig.ChannelName", "Equals", "validation")));
  EXPECT_FALSE(Matches(Filter("InputDataConfig.ChannelName", "NotEquals", "validation")));  // one element is
  EXPECT_TRUE(Matches(Filter("InputDataConfig.ChannelName", "NotEquals", "test")));
  // train is under cats, validation under dogs: the plain filters hold through different
  // elements, the nested ones need one element to hold both.
  const std::string plain = R"({"Filters": [
      {"Name": "InputDataConfig.ChannelName", "Value": "train"},
      {"Name": "InputDataConfig.DataSource.S3DataSource.S3Uri", "Operator": "Contains", "Value": "dogs"}]})";
  EXPECT_TRUE(Matches(plain));
  auto nested = [](const std::string& channel, const std::string& animal) {
    return R"({"NestedFilters": [{"NestedPropertyName": "InputDataConfig", "Filters": [
        {"Name": "InputDataConfig.ChannelName", "Value": ")" + channel + R"("},
        {"Name": "InputDataConfig.DataSource.S3DataSource.S3Uri", "Operator": "Contains", "Value": ")" + animal +
           R"("}]}]})";
  };
  EXPECT_FALSE(Matches(nested("train", "dogs")));
  EXPECT_TRUE(Matches(nested("train", "cats")));
  EXPECT_TRUE(Matches(R"({"NestedFilters": [{"NestedPropertyName": "FinalMetricDataList", "Filters": [
      {"Name": "FinalMetricDataList.MetricName", "Value": "train:loss"},
      {"Name": "FinalMetricDataList.Value", "Operator": "LessThan", "Value": "0.25"}]}]})"));
}

TEST(Search, AndOrAndSubExpressions) {
  const std::string yes = R"({"Name": "TrainingJobStatus", "Value": "Completed"})";
  const std::string no = R"({"Name": "TrainingJobStatus", "Value": "Failed"})";
  EXPECT_FALSE(Matches(R"({"Filters": [)" + yes + "," + no + "]}"));
  EXPECT_TRUE(Matches(R"({"Operator": "Or", "Filters": [)" + yes + "," + no + "]}"));
  EXPECT_TRUE(Matches(R"({"Filters": [)" + yes + R"(], "SubExpressions": [{"Operator": "Or", "Filters": [)" + no +
                      "," + yes + "]}]}"));
  EXPECT_FALSE(Matches(R"({"Filters": [)" + yes + R"(], "SubExpressions": [{"Filters": [)" + no + "]}]}"));
}

TEST(Search, RefusesWhatSageMakerRefusesSayingWhere) {
  EXPECT_NE(Refusal("{}").find("at least one of Filters, NestedFilters and SubExpressions"), std::string::npos);
  EXPECT_NE(Refusal(Filter("TrainingJobStatus", "GreaterThan", "A")).find("not supported for text properties"),
            std::string::npos);
  EXPECT_NE(Refusal(Filter("Metrics.loss", "Contains", "1")).find("only for text properties"), std::string::npos);
  EXPECT_NE(Refusal(Filter("Metrics.loss", "LessThan", "low")).find("is not a number"), std::string::npos);
  EXPECT_NE(Refusal(Filter("CreationTime", "LessThan", "1796559505")).find("YYYY-mm-ddTHH:MM:SS"), std::string::npos);
  EXPECT_NE(Refusal(Filter("CreationTime", "LessThan", "2026-02-30T00:00:00")).find("not a date-time"),
            std::string::npos);
  EXPECT_NE(Refusal(Filter("EnableManagedSpotTraining", "Equals", "yes")).find("true or false"), std::string::npos);
  EXPECT_NE(Refusal(Filter("TrainingJobName", "Like", "x")).find("Operator must be one of"), std::string::npos);
  EXPECT_NE(Refusal(R"({"Filters": [{"Name": "TrainingJobName", "Operator": "Equals"}]})").find("needs a Value"),
            std::string::npos);
  const std::string two = R"({"Filters": [{"Name": "TrainingJobName", "Operator": "Contains", "Value": "a"},
      {"Name": "RoleArn", "Operator": "Contains", "Value": "b"}]})";
  EXPECT_NE(Refusal(two).find("'CONTAINS' operator usage limit of 1 exceeded"), std::string::npos);
  EXPECT_NE(Refusal(Filter("Metric.loss", "Equals", "1")).find("did you mean Metrics.NAME?"), std::string::npos);
  EXPECT_NE(Refusal(Filter("TrainingJobNmae", "Equals", "1")).find("did you mean TrainingJobName?"),
            std::string::npos);
  EXPECT_NE(Refusal(Filter("Metrics.", "Equals", "1")).find("names no metric"), std::string::npos);
  // Tuning jobs have no metrics or hyperparameters of their own.
  EXPECT_NE(Refusal(Filter("Metrics.loss", "Equals", "1"), SearchResource::kHyperParameterTuningJob)
                .find("not a property of a HyperParameterTuningJob"),
            std::string::npos);
  EXPECT_NE(Refusal(R"({"Filters": [{"Name": "TrainingJobName", "Value": "x", "Regex": "y"}]})")
                .find("SearchExpression.Filters[0] has no member Regex"),
            std::string::npos);
  EXPECT_NE(Refusal(R"({"Operator": "Xor", "Filters": [{"Name": "TrainingJobName", "Value": "x"}]})")
                .find("And or Or"),
            std::string::npos);
  EXPECT_NE(Refusal(R"({"NestedFilters": [{"NestedPropertyName": "InputDataConfig", "Filters": [
      {"Name": "OutputDataConfig.S3OutputPath", "Value": "x"}]}]})")
                .find("InputDataConfig.SOMETHING"),
            std::string::npos);
  EXPECT_NE(Refusal(R"({"NestedFilters": [{"NestedPropertyName": "Tags.team", "Filters": [
      {"Name": "Tags.team.x", "Value": "x"}]}]})")
                .find("not a list of objects"),
            std::string::npos);
}

TEST(Search, ElementLimitsAreSageMakers) {
  std::string filters;
  for (int i = 0; i < 21; ++i) filters += std::string(i ? "," : "") + R"({"Name": "TrainingJobName", "Value": "x"})";
  EXPECT_NE(Refusal(R"({"Filters": [)" + filters + "]}").find("1 to 20 elements; it holds 21"), std::string::npos);
  // 51 elements through nesting (each level one filter and one subexpression).
  std::string deep = R"({"Filters": [{"Name": "TrainingJobName", "Value": "x"}]})";
  for (int i = 0; i < 25; ++i) {
    deep = R"({"Filters": [{"Name": "TrainingJobName", "Value": "x"}], "SubExpressions": [)" + deep + "]}";
  }
  EXPECT_NE(Refusal(deep).find("more than 50"), std::string::npos);
  std::string ok = R"({"Filters": [{"Name": "TrainingJobStatus", "Value": "Completed"}]})";
  for (int i = 0; i < 24; ++i) {
    ok = R"({"Filters": [{"Name": "TrainingJobStatus", "Value": "Completed"}], "SubExpressions": [)" + ok + "]}";
  }
  EXPECT_TRUE(Matches(ok));  // 49 elements
}

TEST(Search, ResourcesAndSortValues) {
  EXPECT_TRUE(ParseSearchResource("TrainingJob").ok());
  EXPECT_TRUE(ParseSearchResource("HyperParameterTuningJob").ok());
  EXPECT_NE(ParseSearchResource("Experiment").status().message().find("hpo keeps tuning jobs and their training jobs"),
            std::string::npos);
  EXPECT_FALSE(ParseSearchResource("trainingjob").ok());
  const Json doc = TrainingJob();
  const SearchResource tj = SearchResource::kTrainingJob;
  auto sort_value = [&](const std::string& name) { return SearchProperty::Parse(name, tj, "SortBy")->SortValue(doc); };
  SearchSortValue v = sort_value("Metrics.validation:loss");
  EXPECT_TRUE(v.present);
  EXPECT_DOUBLE_EQ(v.number, 0.31);
  EXPECT_EQ(sort_value("TrainingJobStatus").text, "Completed");
  EXPECT_EQ(sort_value("InputDataConfig.ChannelName").text, "train");  // the first
  EXPECT_FALSE(sort_value("Metrics.accuracy").present);
  v = sort_value("HyperParameters.layers");  // "4": a number
  EXPECT_TRUE(v.present && v.text.empty());
  EXPECT_DOUBLE_EQ(v.number, 4);
  EXPECT_EQ(sort_value("HyperParameters.note").text, "fast");
  EXPECT_TRUE(SearchProperty::Parse("LastModifiedTime", tj, "SortBy").ok());
  EXPECT_FALSE(SearchProperty::Parse("Metrics", tj, "SortBy").ok());
}

}  // namespace
}  // namespace hpo::coordinator
