#include "coordinator/cloudwatch_metrics.h"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "coordinator/aws_json.h"
#include "coordinator/core.h"
#include "coordinator/job_store.h"

namespace hpo::coordinator {
namespace {

using Json = nlohmann::ordered_json;

constexpr const char* kNamespace = "/aws/sagemaker/TrainingJobs";
constexpr const char* kDimension = "TrainingJobName";
constexpr int64_t kMaxDatapoints = 1440;
constexpr size_t kListPage = 500;

constexpr const char* kContentType = "application/x-amz-json-1.0";

ApiResponse Error(const std::string& type, const std::string& message) {
  return AwsJsonError(400, type, message, kContentType);
}

// The TrainingJobName of a request's Dimensions ("" when none is named; *other_dimension when it
// names another), or the error that a malformed list is.
std::optional<ApiResponse> TrainingJobOf(AwsJsonRequest& r, std::string* job, bool* other_dimension) {
  const Json* v = r.Array("Dimensions");
  if (r.error()) return r.error();
  if (!v) return std::nullopt;
  for (const auto& d : *v) {
    if (!d.is_object() || !d.contains("Name") || !d["Name"].is_string() ||
        (d.contains("Value") && !d["Value"].is_string())) {
      return Error("SerializationException", "each member of Dimensions must be {Name, Value} strings");
    }
    if (d["Name"] == kDimension && d.contains("Value")) {
      *job = d["Value"].get<std::string>();
    } else {
      *other_dimension = true;
    }
  }
  return std::nullopt;
}

Json Statistic(const std::string& name, const std::vector<double>& values) {
  double sum = 0, lo = values.front(), hi = values.front();
  for (double v : values) sum += v, lo = std::min(lo, v), hi = std::max(hi, v);
  if (name == "SampleCount") return static_cast<double>(values.size());
  if (name == "Sum") return sum;
  if (name == "Minimum") return lo;
  if (name == "Maximum") return hi;
  return sum / static_cast<double>(values.size());  // Average
}

ApiResponse GetMetricStatistics(Dispatcher& d, AwsJsonRequest& r) {
  const auto ns = r.String("Namespace");
  const auto metric = r.String("MetricName");
  const auto start = r.Number("StartTime");  // timestamps: epoch seconds
  const auto end = r.Number("EndTime");
  const auto period = r.Integer("Period");
  const std::vector<std::string> statistics = r.Strings("Statistics").value_or(std::vector<std::string>{});
  const std::vector<std::string> extended = r.Strings("ExtendedStatistics").value_or(std::vector<std::string>{});
  if (r.error()) return *r.error();
  std::string job;
  bool other_dimension = false;
  if (auto e = TrainingJobOf(r, &job, &other_dimension)) return *e;
  for (const auto& [name, present] : {std::pair<const char*, bool>{"Namespace", ns.has_value()},
                                      {"MetricName", metric.has_value()},
                                      {"StartTime", start.has_value()},
                                      {"EndTime", end.has_value()},
                                      {"Period", period.has_value()}}) {
    if (!present) return Error("MissingParameter", std::string("The parameter ") + name + " is required.");
  }
  if (*period < 1) return Error("InvalidParameterValue", "The parameter Period must be at least 1 (seconds).");
  if (!(*start < *end)) {
    return Error("InvalidParameterCombination", "The parameter StartTime must be less than the parameter EndTime.");
  }
  if (!extended.empty()) {
    return Error("InvalidParameterValue", "ExtendedStatistics (percentiles) are not served by this coordinator; ask "
                                          "for SampleCount, Average, Sum, Minimum or Maximum");
  }
  if (statistics.empty()) {
    return Error("MissingParameter", "Must specify either Statistics or ExtendedStatistics.");
  }
  static const std::set<std::string> kKnown = {"SampleCount", "Average", "Sum", "Minimum", "Maximum"};
  for (const auto& s : statistics) {
    if (!kKnown.count(s)) {
      return Error("InvalidParameterValue", "The parameter Statistics contains " + s +
                                                ", not one of SampleCount, Average, Sum, Minimum, Maximum.");
    }
  }
  const double periods = std::ceil((*end - *start) / static_cast<double>(*period));
  if (periods > static_cast<double>(kMaxDatapoints)) {
    return Error("InvalidParameterCombination",
                 "You have requested up to " + std::to_string(static_cast<int64_t>(periods)) +
                     " datapoints, which exceeds the limit of 1,440. You may reduce the datapoints requested by "
                     "increasing Period, or decreasing the time range.");
  }
  Json res = {{"Label", *metric}, {"Datapoints", Json::array()}};
  if (*ns != kNamespace || job.empty() || other_dimension) return r.Ok(res);
  int64_t training_start_ms = 0;  // DescribeTrainingJob's TrainingStartTime
  auto rows = d.WithCore([&](CoordinatorCore& c) {
    if (const Trial* t = c.FindTrial(job)) training_start_ms = t->start_ms;
    return c.MetricHistory(job);
  });
  if (!rows.ok()) return r.Ok(res);  // an unknown training job has no datapoints
  const int64_t start_ms = static_cast<int64_t>(std::floor(*start * 1000)),
                end_ms = static_cast<int64_t>(std::floor(*end * 1000)), period_ms = *period * 1000;
  std::map<int64_t, std::vector<double>> buckets;  // period index -> values
  for (const MetricRow& m : *rows) {
    // A value is dated by the worker when it read the line; TrainingStartTime is when the
    // coordinator heard the program start, a few milliseconds later. A value printed in between
    // is dated at TrainingStartTime, so that the window the SDK asks for (from TrainingStartTime)
    // holds every value, as SageMaker's does.
    const int64_t at = std::max(m.timestamp_ms, training_start_ms);
    if (m.name != *metric || at < start_ms || at >= end_ms) continue;
    buckets[(at - start_ms) / period_ms].push_back(m.value);
  }
  for (const auto& [k, values] : buckets) {
    Json point = {{"Timestamp", static_cast<double>(start_ms + k * period_ms) / 1000.0}};
    for (const auto& s : statistics) point[s] = Statistic(s, values);
    point["Unit"] = "None";
    res["Datapoints"].push_back(std::move(point));
  }
  return r.Ok(res);
}

ApiResponse ListMetrics(Dispatcher& d, AwsJsonRequest& r) {
  const auto ns = r.String("Namespace");
  const auto metric = r.String("MetricName");
  const auto token = r.String("NextToken");
  if (r.error()) return *r.error();
  std::string job;
  bool other_dimension = false;
  if (auto e = TrainingJobOf(r, &job, &other_dimension)) return *e;
  Json res = {{"Metrics", Json::array()}};
  if ((ns && *ns != kNamespace) || other_dimension) return r.Ok(res);
  return d.WithCore([&](CoordinatorCore& c) -> ApiResponse {
    std::vector<std::string> trials;
    if (!job.empty()) {
      if (c.FindTrial(job) && !token) trials.push_back(job);
    } else {
      trials = c.TrialNames("", token.value_or(""), kListPage + 1);
    }
    const bool more = trials.size() > kListPage;
    if (more) trials.pop_back();
    for (const auto& name : trials) {
      const Trial* t = c.FindTrial(name);
      if (!t) continue;
      for (const auto& [m, value] : t->final_metrics) {
        (void)value;
        if (metric && m != *metric) continue;
        res["Metrics"].push_back({{"Namespace", kNamespace},
                                  {"MetricName", m},
                                  {"Dimensions", Json::array({{{"Name", kDimension}, {"Value", name}}})}});
      }
    }
    if (more) res["NextToken"] = trials.back();
    return r.Ok(res);
  });
}

}  // namespace

ApiResponse HandleCloudWatchAction(Dispatcher& d, const std::string& action, const std::string& body) {
  AwsJsonRequest r(body, kContentType);
  if (r.error()) return *r.error();
  if (action == "GetMetricStatistics") return GetMetricStatistics(d, r);
  if (action == "ListMetrics") return ListMetrics(d, r);
  return Error("UnknownOperationException", "this coordinator serves the training jobs' metrics as CloudWatch with "
                                            "GetMetricStatistics and ListMetrics; it does not implement " + action);
}

}  // namespace hpo::coordinator
