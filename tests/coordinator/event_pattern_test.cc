// coordinator/event_pattern.h: EventBridge event patterns: matching (literals, nesting, arrays,
// each content filter, absent fields) and what Parse refuses, with the path in the message.

#include "coordinator/event_pattern.h"

#include <gtest/gtest.h>

#include <string>

namespace hpo::coordinator {
namespace {

using Json = nlohmann::ordered_json;

constexpr const char* kSageMakerPattern = R"({
  "source": ["aws.sagemaker"],
  "detail-type": ["SageMaker Training Job State Change"],
  "detail": {"TrainingJobStatus": ["Failed", "Completed"]}
})";

// A training job state-change event as EventBridge delivers one (the fields the patterns read).
Json TrainingJobEvent(const std::string& status) {
  Json e = Json::parse(R"({
    "version": "0",
    "id": "6a7e8feb-b491-4cf7-a9f1-bf3703467718",
    "detail-type": "SageMaker Training Job State Change",
    "source": "aws.sagemaker",
    "account": "000000000000",
    "region": "local",
    "resources": ["arn:aws:sagemaker:local:000000000000:training-job/tune-003-1a2b3c4d"],
    "detail": {
      "TrainingJobName": "tune-003-1a2b3c4d",
      "TrainingJobStatus": "InProgress",
      "SecondaryStatus": "Training",
      "ResourceConfig": {"InstanceType": "ml.g5.xlarge", "InstanceCount": 2},
      "FinalMetricDataList": [],
      "FailureReason": null,
      "Tags": ["team:vision", "stage:dev"],
      "BillableTimeInSeconds": 5
    }
  })");
  e["detail"]["TrainingJobStatus"] = status;
  return e;
}

EventPattern Parsed(const std::string& text) {
  auto p = EventPattern::Parse(text);
  EXPECT_TRUE(p.ok()) << text << ": " << p.status().ToString();
  if (!p.ok()) return *EventPattern::Parse(R"({"no-such-field-anywhere": ["x"]})");
  return std::move(p).value();
}

bool Matches(const std::string& pattern, const Json& event) { return Parsed(pattern).Matches(event); }

// The message of a refused pattern ("" when it was accepted).
std::string Refusal(const std::string& text) {
  auto p = EventPattern::Parse(text);
  if (p.ok()) return "";
  EXPECT_EQ(p.status().code(), StatusCode::kInvalidArgument);
  return p.status().message();
}

TEST(EventPatternTest, SageMakerExampleMatchesCompletedNotInProgress) {
  EventPattern p = Parsed(kSageMakerPattern);
  EXPECT_TRUE(p.Matches(TrainingJobEvent("Completed")));
  EXPECT_TRUE(p.Matches(TrainingJobEvent("Failed")));
  EXPECT_FALSE(p.Matches(TrainingJobEvent("InProgress")));
  EXPECT_FALSE(p.Matches(TrainingJobEvent("completed")));  // case-sensitive
  Json other = TrainingJobEvent("Completed");
  other["source"] = "aws.batch";
  EXPECT_FALSE(p.Matches(other));
  other = TrainingJobEvent("Completed");
  other.erase("detail");
  EXPECT_FALSE(p.Matches(other));
  EXPECT_EQ(p.text(), kSageMakerPattern);
}

TEST(EventPatternTest, NestedDetail) {
  Json e = TrainingJobEvent("Completed");
  EXPECT_TRUE(Matches(R"({"detail": {"ResourceConfig": {"InstanceType": ["ml.g5.xlarge"]}}})", e));
  EXPECT_FALSE(Matches(R"({"detail": {"ResourceConfig": {"InstanceType": ["ml.p4d.24xlarge"]}}})", e));
  // Every key must match (AND), at every level.
  EXPECT_TRUE(Matches(R"({"detail": {"ResourceConfig": {"InstanceCount": [2]}, "SecondaryStatus": ["Training"]}})", e));
  EXPECT_FALSE(Matches(R"({"detail": {"ResourceConfig": {"InstanceCount": [2]}, "SecondaryStatus": ["Stopped"]}})", e));
  // A nested pattern over a field that is not an object sees its leaves as absent.
  EXPECT_FALSE(Matches(R"({"detail": {"TrainingJobName": {"x": ["tune-003-1a2b3c4d"]}}})", e));
  EXPECT_TRUE(Matches(R"({"detail": {"TrainingJobName": {"x": [{"exists": false}]}}})", e));
}

TEST(EventPatternTest, ArrayValuedEventField) {
  Json e = TrainingJobEvent("Completed");
  EXPECT_TRUE(Matches(R"({"detail": {"Tags": ["stage:dev"]}})", e));
  EXPECT_TRUE(Matches(R"({"detail": {"Tags": ["nope", "team:vision"]}})", e));
  EXPECT_FALSE(Matches(R"({"detail": {"Tags": ["stage:prod"]}})", e));
  EXPECT_TRUE(Matches(R"({"detail": {"Tags": [{"prefix": "team:"}]}})", e));
  EXPECT_TRUE(Matches(R"({"resources": [{"suffix": "/tune-003-1a2b3c4d"}]})", e));
  // An empty array holds nothing to match.
  EXPECT_FALSE(Matches(R"({"detail": {"FinalMetricDataList": ["x"]}})", e));
}

// A nested pattern over an array of objects (FinalMetricDataList, SecondaryStatusTransitions)
// matches one of its objects, as EventBridge does, and all of the nested pattern in that one
// object (array-consistent): it saw the array as absent, and a rule copied from EventBridge
// ("a score above 0.9") silently delivered nothing.
TEST(EventPatternTest, NestedPatternsMatchObjectsInsideArrays) {
  Json e = TrainingJobEvent("Completed");
  e["detail"]["FinalMetricDataList"] = Json::parse(
      R"([{"MetricName": "loss", "Value": 0.3}, {"MetricName": "validation:auc", "Value": 0.93}])");
  e["detail"]["SecondaryStatusTransitions"] =
      Json::parse(R"([[{"Status": "Starting"}], [{"Status": "Training"}, {"Status": "Completed"}]])");
  EXPECT_TRUE(Matches(R"({"detail": {"FinalMetricDataList": {"MetricName": ["validation:auc"]}}})", e));
  EXPECT_TRUE(Matches(R"({"detail": {"FinalMetricDataList": {"Value": [{"numeric": [">", 0.9]}]}}})", e));
  EXPECT_TRUE(Matches(
      R"({"detail": {"FinalMetricDataList": {"MetricName": ["validation:auc"], "Value": [{"numeric": [">", 0.9]}]}}})", e));
  // Two fields from different elements do not make a match.
  EXPECT_FALSE(Matches(
      R"({"detail": {"FinalMetricDataList": {"MetricName": ["loss"], "Value": [{"numeric": [">", 0.9]}]}}})", e));
  EXPECT_FALSE(Matches(R"({"detail": {"FinalMetricDataList": {"MetricName": ["accuracy"]}}})", e));
  // Arrays within arrays are crushed out too.
  EXPECT_TRUE(Matches(R"({"detail": {"SecondaryStatusTransitions": {"Status": ["Completed"]}}})", e));
  EXPECT_FALSE(Matches(R"({"detail": {"SecondaryStatusTransitions": {"Status": ["Failed"]}}})", e));
  // An array holding no object is an absent one.
  EXPECT_TRUE(Matches(R"({"detail": {"Tags": {"Key": [{"exists": false}]}}})", e));
  EXPECT_FALSE(Matches(R"({"detail": {"Tags": {"Key": ["team"]}}})", e));
}

TEST(EventPatternTest, NumbersCompareNumerically) {
  Json e = Json::parse(R"({"count": 5, "ratio": 0.5, "text": "5"})");
  EXPECT_TRUE(Matches(R"({"count": [5.0]})", e));
  EXPECT_TRUE(Matches(R"({"count": [5]})", e));
  EXPECT_TRUE(Matches(R"({"ratio": [5e-1]})", e));
  EXPECT_FALSE(Matches(R"({"count": [6]})", e));
  EXPECT_FALSE(Matches(R"({"count": ["5"]})", e));  // a string is not a number
  EXPECT_FALSE(Matches(R"({"text": [5]})", e));
  EXPECT_TRUE(Matches(R"({"text": ["5"]})", e));
  EXPECT_TRUE(Matches(R"({"count": [5]})", Json::parse(R"({"count": 5.0})")));
}

TEST(EventPatternTest, BooleansAndNull) {
  Json e = Json::parse(R"({"spot": true, "reason": null})");
  EXPECT_TRUE(Matches(R"({"spot": [true]})", e));
  EXPECT_FALSE(Matches(R"({"spot": [false]})", e));
  EXPECT_FALSE(Matches(R"({"spot": ["true"]})", e));
  EXPECT_TRUE(Matches(R"({"reason": [null]})", e));
  EXPECT_FALSE(Matches(R"({"spot": [null]})", e));
  EXPECT_FALSE(Matches(R"({"absent": [null]})", e));  // null is not absence
  EXPECT_TRUE(Matches(R"({"detail": {"FailureReason": [null]}})", TrainingJobEvent("Completed")));
}

TEST(EventPatternTest, Prefix) {
  Json e = TrainingJobEvent("Completed");
  EXPECT_TRUE(Matches(R"({"detail": {"TrainingJobName": [{"prefix": "tune-003"}]}})", e));
  EXPECT_FALSE(Matches(R"({"detail": {"TrainingJobName": [{"prefix": "tune-004"}]}})", e));
  EXPECT_FALSE(Matches(R"({"detail": {"BillableTimeInSeconds": [{"prefix": "5"}]}})", e));  // not a string
}

TEST(EventPatternTest, Suffix) {
  Json e = TrainingJobEvent("Completed");
  EXPECT_TRUE(Matches(R"({"detail": {"TrainingJobName": [{"suffix": "1a2b3c4d"}]}})", e));
  EXPECT_FALSE(Matches(R"({"detail": {"TrainingJobName": [{"suffix": "1a2b3c4"}]}})", e));
}

TEST(EventPatternTest, AnythingBut) {
  Json e = TrainingJobEvent("Completed");
  EXPECT_TRUE(Matches(R"({"detail": {"TrainingJobStatus": [{"anything-but": "InProgress"}]}})", e));
  EXPECT_FALSE(Matches(R"({"detail": {"TrainingJobStatus": [{"anything-but": "Completed"}]}})", e));
  EXPECT_FALSE(Matches(R"({"detail": {"TrainingJobStatus": [{"anything-but": ["Stopped", "Completed"]}]}})", e));
  EXPECT_TRUE(Matches(R"({"detail": {"TrainingJobStatus": [{"anything-but": ["Stopped", "Failed"]}]}})", e));
  EXPECT_TRUE(Matches(R"({"detail": {"TrainingJobStatus": [{"anything-but": {"prefix": "In"}}]}})", e));
  EXPECT_FALSE(Matches(R"({"detail": {"TrainingJobStatus": [{"anything-but": {"prefix": "Comp"}}]}})", e));
  EXPECT_FALSE(Matches(R"({"detail": {"BillableTimeInSeconds": [{"anything-but": 5.0}]}})", e));
  EXPECT_TRUE(Matches(R"({"detail": {"BillableTimeInSeconds": [{"anything-but": [4, 6]}]}})", e));
  // Needs a present string or number field.
  EXPECT_FALSE(Matches(R"({"detail": {"Absent": [{"anything-but": "x"}]}})", e));
  EXPECT_FALSE(Matches(R"({"detail": {"FailureReason": [{"anything-but": "x"}]}})", e));
}

TEST(EventPatternTest, AnythingButStringFilters) {
  Json e = TrainingJobEvent("Completed");
  EXPECT_TRUE(Matches(R"({"detail": {"TrainingJobName": [{"anything-but": {"suffix": "ffff"}}]}})", e));
  EXPECT_FALSE(Matches(R"({"detail": {"TrainingJobName": [{"anything-but": {"suffix": "3c4d"}}]}})", e));
  EXPECT_FALSE(Matches(R"({"detail": {"TrainingJobStatus": [{"anything-but": {"equals-ignore-case": "completed"}}]}})", e));
  EXPECT_FALSE(
      Matches(R"({"detail": {"TrainingJobStatus": [{"anything-but": {"equals-ignore-case": ["failed", "COMPLETED"]}}]}})", e));
  EXPECT_TRUE(
      Matches(R"({"detail": {"TrainingJobStatus": [{"anything-but": {"equals-ignore-case": ["failed", "stopped"]}}]}})", e));
  EXPECT_FALSE(Matches(R"({"detail": {"TrainingJobName": [{"anything-but": {"wildcard": "tune-*"}}]}})", e));
  EXPECT_FALSE(Matches(R"({"detail": {"TrainingJobName": [{"anything-but": {"wildcard": ["x*", "*-1a2b*"]}}]}})", e));
  EXPECT_TRUE(Matches(R"({"detail": {"TrainingJobName": [{"anything-but": {"wildcard": ["x*", "*-9*"]}}]}})", e));
  // Still needs a present field.
  EXPECT_FALSE(Matches(R"({"detail": {"Absent": [{"anything-but": {"suffix": "x"}}]}})", e));
}

TEST(EventPatternTest, PrefixAndSuffixIgnoringCase) {
  Json e = TrainingJobEvent("Completed");
  EXPECT_TRUE(Matches(R"({"detail": {"TrainingJobName": [{"prefix": {"equals-ignore-case": "TUNE-003"}}]}})", e));
  EXPECT_FALSE(Matches(R"({"detail": {"TrainingJobName": [{"prefix": "TUNE-003"}]}})", e));
  EXPECT_TRUE(Matches(R"({"detail": {"TrainingJobName": [{"suffix": {"equals-ignore-case": "1A2B3C4D"}}]}})", e));
  EXPECT_FALSE(Matches(R"({"detail": {"TrainingJobName": [{"suffix": {"equals-ignore-case": "X1A2B3C4D"}}]}})", e));
  EXPECT_FALSE(Matches(R"({"s": [{"prefix": {"equals-ignore-case": "abcd"}}]})", Json::parse(R"({"s": "ABC"})")));
}

// $or: alternatives at one object's level, AND-ed with that object's other fields; nested.
TEST(EventPatternTest, OrBetweenFields) {
  const std::string failed_or_slow = R"({
    "detail-type": ["SageMaker Training Job State Change"],
    "detail": {"$or": [{"TrainingJobStatus": ["Failed"]}, {"BillableTimeInSeconds": [{"numeric": [">", 3600]}]}]}
  })";
  EXPECT_TRUE(Matches(failed_or_slow, TrainingJobEvent("Failed")));
  EXPECT_FALSE(Matches(failed_or_slow, TrainingJobEvent("Completed")));
  Json slow = TrainingJobEvent("Completed");
  slow["detail"]["BillableTimeInSeconds"] = 7200;
  EXPECT_TRUE(Matches(failed_or_slow, slow));
  Json other = TrainingJobEvent("Failed");
  other["detail-type"] = "SageMaker HyperParameter Tuning Job State Change";
  EXPECT_FALSE(Matches(failed_or_slow, other)) << "the $or is AND-ed with the other fields";
  // At the top, between a field and a nested one; and an $or inside an alternative.
  const std::string top = R"({"$or": [{"source": ["aws.other"]},
                                       {"detail": {"$or": [{"SecondaryStatus": ["Stopped"]},
                                                           {"ResourceConfig": {"InstanceCount": [2]}}]}}]})";
  EXPECT_TRUE(Matches(top, TrainingJobEvent("Completed")));  // InstanceCount 2
  Json one = TrainingJobEvent("Completed");
  one["detail"]["ResourceConfig"]["InstanceCount"] = 1;
  EXPECT_FALSE(Matches(top, one));
  one["source"] = "aws.other";
  EXPECT_TRUE(Matches(top, one));

  auto has = [](const std::string& msg, const std::string& part) { return msg.find(part) != std::string::npos; };
  std::string m = Refusal(R"({"detail": {"$or": [{"a": ["x"]}]}})");
  EXPECT_TRUE(has(m, "detail.$or") && has(m, "at least two")) << m;
  m = Refusal(R"({"detail": {"$or": {"a": ["x"]}}})");
  EXPECT_TRUE(has(m, "detail.$or") && has(m, "array")) << m;
  m = Refusal(R"({"detail": {"$or": [{"a": ["x"]}, ["b"]]}})");
  EXPECT_TRUE(has(m, "detail.$or[1]") && has(m, "objects")) << m;
  m = Refusal(R"({"detail": {"$or": [{"a": ["x"]}, {"b": "y"}]}})");
  EXPECT_TRUE(has(m, "detail.$or[1].b") && has(m, "array")) << m;
  m = Refusal(R"({"detail": {"$or": [{"a": ["x"]}, {}]}})");
  EXPECT_TRUE(has(m, "detail.$or[1]") && has(m, "empty object")) << m;
}

TEST(EventPatternTest, Numeric) {
  Json e = TrainingJobEvent("Completed");
  EXPECT_TRUE(Matches(R"({"detail": {"BillableTimeInSeconds": [{"numeric": [">", 0, "<=", 5]}]}})", e));
  EXPECT_FALSE(Matches(R"({"detail": {"BillableTimeInSeconds": [{"numeric": [">", 0, "<", 5]}]}})", e));
  EXPECT_TRUE(Matches(R"({"detail": {"BillableTimeInSeconds": [{"numeric": ["=", 5.0]}]}})", e));
  EXPECT_TRUE(Matches(R"({"detail": {"BillableTimeInSeconds": [{"numeric": [">=", 5]}]}})", e));
  EXPECT_FALSE(Matches(R"({"detail": {"BillableTimeInSeconds": [{"numeric": [">", 5]}]}})", e));
  EXPECT_TRUE(Matches(R"({"detail": {"BillableTimeInSeconds": [{"numeric": ["<", 5.5]}]}})", e));
  EXPECT_FALSE(Matches(R"({"detail": {"TrainingJobName": [{"numeric": [">", 0]}]}})", e));  // not a number
  EXPECT_FALSE(Matches(R"({"detail": {"Absent": [{"numeric": [">", 0]}]}})", e));
}

TEST(EventPatternTest, EqualsIgnoreCase) {
  Json e = TrainingJobEvent("Completed");
  EXPECT_TRUE(Matches(R"({"detail": {"TrainingJobStatus": [{"equals-ignore-case": "cOMPLETED"}]}})", e));
  EXPECT_FALSE(Matches(R"({"detail": {"TrainingJobStatus": [{"equals-ignore-case": "complete"}]}})", e));
}

TEST(EventPatternTest, Wildcard) {
  Json e = TrainingJobEvent("Completed");
  EXPECT_TRUE(Matches(R"({"detail": {"TrainingJobName": [{"wildcard": "tune-*-1a2b*"}]}})", e));
  EXPECT_TRUE(Matches(R"({"detail": {"TrainingJobName": [{"wildcard": "*"}]}})", e));
  EXPECT_TRUE(Matches(R"({"detail": {"TrainingJobName": [{"wildcard": "tune-003-1a2b3c4d"}]}})", e));
  EXPECT_FALSE(Matches(R"({"detail": {"TrainingJobName": [{"wildcard": "tune-*-9*"}]}})", e));
  EXPECT_FALSE(Matches(R"({"detail": {"TrainingJobName": [{"wildcard": "tune-003"}]}})", e));
  // Backtracking: the first * must not swallow the run the second part needs.
  EXPECT_TRUE(Matches(R"({"s": [{"wildcard": "a*b*c"}]})", Json::parse(R"({"s": "aXbYbZc"})")));
  EXPECT_FALSE(Matches(R"({"s": [{"wildcard": "a*b*c"}]})", Json::parse(R"({"s": "aXbYbZ"})")));
  EXPECT_FALSE(Matches(R"({"s": [{"wildcard": "a?c"}]})", Json::parse(R"({"s": "abc"})")));  // ? is itself
}

TEST(EventPatternTest, Exists) {
  Json e = TrainingJobEvent("Completed");
  EXPECT_TRUE(Matches(R"({"detail": {"TrainingJobName": [{"exists": true}]}})", e));
  EXPECT_FALSE(Matches(R"({"detail": {"TrainingJobName": [{"exists": false}]}})", e));
  EXPECT_TRUE(Matches(R"({"detail": {"EndpointName": [{"exists": false}]}})", e));
  EXPECT_FALSE(Matches(R"({"detail": {"EndpointName": [{"exists": true}]}})", e));
  EXPECT_TRUE(Matches(R"({"detail": {"FailureReason": [{"exists": true}]}})", e));  // null is present
  EXPECT_FALSE(Matches(R"({"detail": {"ResourceConfig": [{"exists": true}]}})", e));  // an object is no leaf
  EXPECT_TRUE(Matches(R"({"detail": {"FinalMetricDataList": [{"exists": false}]}})", e));  // empty array
  // Under a missing object, every leaf is absent.
  EXPECT_TRUE(Matches(R"({"missing": {"deeper": [{"exists": false}]}})", e));
  EXPECT_FALSE(Matches(R"({"missing": {"deeper": [{"exists": true}]}})", e));
}

TEST(EventPatternTest, AbsentFieldsMatchOnlyExistsFalse) {
  Json e = Json::parse(R"({"a": "x"})");
  for (const char* p : {R"({"b": ["x"]})", R"({"b": [null]})", R"({"b": [{"prefix": ""}]})", R"({"b": [{"anything-but": "y"}]})",
                        R"({"b": [{"numeric": [">", 0]}]})", R"({"b": [{"wildcard": "*"}]})", R"({"b": {"c": ["x"]}})"}) {
    EXPECT_FALSE(Matches(p, e)) << p;
  }
  EXPECT_TRUE(Matches(R"({"b": ["x", {"exists": false}]})", e));
  EXPECT_TRUE(Matches(R"({"a": ["x"], "b": [{"exists": false}]})", e));
  // A non-object event is seen as empty.
  EXPECT_FALSE(Matches(R"({"a": ["x"]})", Json::parse("[1]")));
  EXPECT_TRUE(Matches(R"({"a": [{"exists": false}]})", Json::parse("\"text\"")));
}

TEST(EventPatternTest, CopiesShareTheParsedPattern) {
  EventPattern p = Parsed(kSageMakerPattern);
  EventPattern q = p;
  EXPECT_TRUE(q.Matches(TrainingJobEvent("Failed")));
  EXPECT_FALSE(q.Matches(TrainingJobEvent("Stopping")));
  EXPECT_EQ(q.text(), p.text());
}

TEST(EventPatternTest, ParseErrorsNameThePath) {
  auto has = [](const std::string& msg, const std::string& part) {
    return msg.find(part) != std::string::npos;
  };
  std::string m;

  m = Refusal("{\"source\": [");
  EXPECT_TRUE(has(m, "not JSON")) << m;
  m = Refusal(R"(["aws.sagemaker"])");
  EXPECT_TRUE(has(m, "must be a JSON object")) << m;
  m = Refusal("{}");
  EXPECT_TRUE(has(m, "empty object")) << m;
  m = Refusal(R"({"detail": {}})");
  EXPECT_TRUE(has(m, "at detail:") && has(m, "empty object")) << m;
  m = Refusal(R"({"detail": {"TrainingJobStatus": "Completed"}})");
  EXPECT_TRUE(has(m, "detail.TrainingJobStatus") && has(m, "array")) << m;
  m = Refusal(R"({"detail": {"TrainingJobStatus": []}})");
  EXPECT_TRUE(has(m, "detail.TrainingJobStatus") && has(m, "empty array")) << m;
  m = Refusal(R"({"detail": {"TrainingJobStatus": ["Completed", ["Failed"]]}})");
  EXPECT_TRUE(has(m, "detail.TrainingJobStatus[1]") && has(m, "not an array")) << m;
  m = Refusal(R"({"detail": {"TrainingJobStatus": ["Completed", {"regex": "F.*"}]}})");
  EXPECT_TRUE(has(m, "detail.TrainingJobStatus[1]") && has(m, "unsupported content filter \"regex\"") &&
              has(m, "prefix, suffix, anything-but, exists, numeric, equals-ignore-case, wildcard"))
      << m;
  m = Refusal(R"({"detail": {"TrainingJobStatus": [{"prefix": "C", "suffix": "d"}]}})");
  EXPECT_TRUE(has(m, "detail.TrainingJobStatus[0]") && has(m, "exactly one key") && has(m, "wildcard")) << m;
  m = Refusal(R"({"detail": {"TrainingJobStatus": [{}]}})");
  EXPECT_TRUE(has(m, "detail.TrainingJobStatus[0]") && has(m, "exactly one key")) << m;
}

TEST(EventPatternTest, ParseErrorsInContentFilterOperands) {
  auto has = [](const std::string& msg, const std::string& part) {
    return msg.find(part) != std::string::npos;
  };
  std::string m;
  m = Refusal(R"({"a": [{"prefix": 5}]})");
  EXPECT_TRUE(has(m, "a[0].prefix") && has(m, "string")) << m;
  m = Refusal(R"({"a": [{"wildcard": null}]})");
  EXPECT_TRUE(has(m, "a[0].wildcard")) << m;
  m = Refusal(R"({"a": [{"exists": "yes"}]})");
  EXPECT_TRUE(has(m, "a[0].exists") && has(m, "true or false")) << m;
  m = Refusal(R"({"a": [{"numeric": [">", 0, "<"]}]})");
  EXPECT_TRUE(has(m, "a[0].numeric")) << m;
  m = Refusal(R"({"a": [{"numeric": ["!=", 0]}]})");
  EXPECT_TRUE(has(m, "a[0].numeric[0]") && has(m, "operator")) << m;
  m = Refusal(R"({"a": [{"numeric": [">", "0"]}]})");
  EXPECT_TRUE(has(m, "a[0].numeric[1]") && has(m, "number")) << m;
  m = Refusal(R"({"a": [{"anything-but": [true]}]})");
  EXPECT_TRUE(has(m, "a[0].anything-but[0]")) << m;
  m = Refusal(R"({"a": [{"anything-but": []}]})");
  EXPECT_TRUE(has(m, "a[0].anything-but")) << m;
  // What EventBridge refuses is refused here too (a pattern tried locally failed as a rule).
  m = Refusal(R"({"a": [{"anything-but": [1, "a"]}]})");
  EXPECT_TRUE(has(m, "a[0].anything-but") && has(m, "not both")) << m;
  m = Refusal(R"({"a": [{"wildcard": "a**b"}]})");
  EXPECT_TRUE(has(m, "a[0].wildcard") && has(m, "no two *")) << m;
  m = Refusal(R"({"a": [{"anything-but": {"wildcard": ["x", "a**"]}}]})");
  EXPECT_TRUE(has(m, "a[0].anything-but.wildcard[1]")) << m;
  m = Refusal(R"({"a": [{"numeric": [">", 5, ">", 3]}]})");
  EXPECT_TRUE(has(m, "a[0].numeric") && has(m, "range")) << m;
  m = Refusal(R"({"a": [{"numeric": ["=", 5, "<", 3]}]})");
  EXPECT_TRUE(has(m, "a[0].numeric") && has(m, "range")) << m;
  EXPECT_EQ(Refusal(R"({"a": [{"numeric": ["<=", 5, ">", 3]}]})"), "");
  EXPECT_EQ(Refusal(R"({"a": [{"wildcard": "a*b*"}]})"), "");
  m = Refusal(R"({"a": [{"anything-but": {"numeric": [">", 1]}}]})");
  EXPECT_TRUE(has(m, "a[0].anything-but") && has(m, "prefix") && has(m, "wildcard")) << m;
  m = Refusal(R"({"a": [{"anything-but": {"wildcard": []}}]})");
  EXPECT_TRUE(has(m, "a[0].anything-but.wildcard") && has(m, "non-empty")) << m;
  m = Refusal(R"({"a": [{"anything-but": {"equals-ignore-case": ["x", 1]}}]})");
  EXPECT_TRUE(has(m, "a[0].anything-but.equals-ignore-case[1]") && has(m, "string")) << m;
  m = Refusal(R"({"a": [{"prefix": {"equals-ignore-case": 1}}]})");
  EXPECT_TRUE(has(m, "a[0].prefix.equals-ignore-case") && has(m, "string")) << m;
  m = Refusal(R"({"a": [{"suffix": {"wildcard": "x"}}]})");
  EXPECT_TRUE(has(m, "a[0].suffix") && has(m, "equals-ignore-case")) << m;
  m = Refusal(R"({"a": [{"cidr": "10.0.0.0/24"}]})");
  EXPECT_TRUE(has(m, "unsupported content filter \"cidr\"")) << m;
  m = Refusal(R"({"a": [{"anything-but": {"prefix": 1}}]})");
  EXPECT_TRUE(has(m, "a[0].anything-but.prefix")) << m;
}

TEST(EventPatternTest, NestingDepthLimit) {
  // `levels` objects nested, the innermost holding a leaf.
  auto nested = [](int levels) {
    std::string s;
    for (int i = 1; i < levels; ++i) s += "{\"k" + std::to_string(i) + "\": ";
    s += R"({"leaf": ["x"]})";
    for (int i = 1; i < levels; ++i) s += "}";
    return s;
  };
  EXPECT_EQ(Refusal(nested(10)), "");
  std::string m = Refusal(nested(11));
  EXPECT_TRUE(m.find("deeper than 10") != std::string::npos) << m;
  EXPECT_TRUE(m.find("k1.k2.k3.k4.k5.k6.k7.k8.k9.k10") != std::string::npos) << m;

  Json event = Json::parse(R"({"leaf": "x"})");
  for (int i = 9; i >= 1; --i) event = Json{{"k" + std::to_string(i), event}};
  EXPECT_TRUE(Parsed(nested(10)).Matches(event));
}

}  // namespace
}  // namespace hpo::coordinator
