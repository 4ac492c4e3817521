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

#include "common/text.h"
#include "coordinator/core.h"
#include "coordinator/job_store.h"
#include "proto/codec.h"

namespace hpo::coordinator {
namespace {

using Json = nlohmann::ordered_json;

constexpr const char* kNamespace = "/aws/sagemaker/TrainingJobs";
constexpr const char* kDimension = "TrainingJobName";
constexpr int64_t kMaxDatapoints = 1440;
constexpr size_t kListPage = 500;

ApiResponse Reply(int status, const Json& j) {
  return {status, j.dump(-1, ' ', false, Json::error_handler_t::replace), "application/x-amz-json-1.0"};
}
ApiResponse Error(const std::string& type, const std::string& message) {
  return Reply(400, {{"__type", type}, {"message", message}});
}

// ---- requests ----

// A member of the decoded request, typed; the wrong type is an error naming it.
struct Request {
  const Json& j;
  std::optional<ApiResponse> error;

  const Json* Member(const char* name, bool ok_type(const Json&), const char* type) {
    auto it = j.find(name);
    if (it == j.end() || it->is_null()) return nullptr;
    if (!ok_type(*it)) {
      if (!error) error = Error("SerializationException", std::string("member ") + name + " must be " + type);
      return nullptr;
    }
    return &*it;
  }
  std::optional<std::string> String(const char* name) {
    const Json* v = Member(name, [](const Json& x) { return x.is_string(); }, "a string");
    return v ? std::optional<std::string>(v->get<std::string>()) : std::nullopt;
  }
  // A timestamp: epoch seconds, as AWS JSON writes them.
  std::optional<double> Seconds(const char* name) {
    const Json* v = Member(name, [](const Json& x) { return x.is_number(); }, "a timestamp (epoch seconds)");
    return v ? std::optional<double>(v->get<double>()) : std::nullopt;
  }
  std::optional<int64_t> Integer(const char* name) {
    const Json* v = Member(name, [](const Json& x) { return x.is_number_integer(); }, "an integer");
    return v ? std::optional<int64_t>(v->get<int64_t>()) : std::nullopt;
  }
  std::vector<std::string> Strings(const char* name) {
    const Json* v = Member(name, [](const Json& x) { return x.is_array(); }, "a list of strings");
    std::vector<std::string> out;
    if (!v) return out;
    for (const auto& e : *v) {
      if (!e.is_string()) {
        if (!error) error = Error("SerializationException", std::string("member ") + name + " must hold strings");
        return {};
      }
      out.push_back(e.get<std::string>());
    }
    return out;
  }
  // The TrainingJobName dimension's value; "" when none is given; nullopt (with the error) for a
  // malformed list.
  std::optional<std::string> TrainingJob(bool* other_dimension) {
    const Json* v = Member("Dimensions", [](const Json& x) { return x.is_array(); }, "a list of dimensions");
    std::string job;
    if (!v) return job;
    for (const auto& d : *v) {
      if (!d.is_object() || !d.contains("Name") || !d["Name"].is_string() ||
          (d.contains("Value") && !d["Value"].is_string())) {
        error = Error("SerializationException", "each member of Dimensions must be {Name, Value} strings");
        return std::nullopt;
      }
      if (d["Name"] == kDimension && d.contains("Value")) {
        job = d["Value"].get<std::string>();
      } else {
        *other_dimension = true;
      }
    }
    return job;
  }
};

Json Statistic(const std::string& name, const std::vector<double>& values) {
  double sum = 0, lo = values.front(), hi = values.front();
  for (double v : values) sum += v, lo = std::min(lo, v), hi = std::max(hi, v);
  if (name == "SampleCount") return static_cast<double>(values.size());
  if (name == "Sum") return sum;
  if (name == "Minimum") return lo;
  if (name == "Maximum") return hi;
  return sum / static_cast<double>(values.size());  // Average
}

ApiResponse GetMetricStatistics(Dispatcher& d, Request& r) {
  const auto ns = r.String("Namespace");
  const auto metric = r.String("MetricName");
  const auto start = r.Seconds("StartTime");
  const auto end = r.Seconds("EndTime");
  const auto period = r.Integer("Period");
  const std::vector<std::string> statistics = r.Strings("Statistics");
  const std::vector<std::string> extended = r.Strings("ExtendedStatistics");
  bool other_dimension = false;
  const auto job = r.TrainingJob(&other_dimension);
  if (r.error) return *r.error;
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
  if (*ns != kNamespace || job->empty() || other_dimension) return Reply(200, res);
  auto rows = d.WithCore([&](CoordinatorCore& c) { return c.MetricHistory(*job); });
  if (!rows.ok()) return Reply(200, res);  // an unknown training job has no datapoints
  const int64_t start_ms = static_cast<int64_t>(std::floor(*start * 1000)),
                end_ms = static_cast<int64_t>(std::floor(*end * 1000)), period_ms = *period * 1000;
  std::map<int64_t, std::vector<double>> buckets;  // period index -> values
  for (const MetricRow& m : *rows) {
    if (m.name != *metric || m.timestamp_ms < start_ms || m.timestamp_ms >= end_ms) continue;
    buckets[(m.timestamp_ms - start_ms) / period_ms].push_back(m.value);
  }
  for (const auto& [k, values] : buckets) {
    Json point = {{"Timestamp", static_cast<double>(start_ms + k * period_ms) / 1000.0}};
    for (const auto& s : statistics) point[s] = Statistic(s, values);
    point["Unit"] = "None";
    res["Datapoints"].push_back(std::move(point));
  }
  return Reply(200, res);
}

ApiResponse ListMetrics(Dispatcher& d, Request& r) {
  const auto ns = r.String("Namespace");
  const auto metric = r.String("MetricName");
  const auto token = r.String("NextToken");
  bool other_dimension = false;
  const auto job = r.TrainingJob(&other_dimension);
  if (r.error) return *r.error;
  Json res = {{"Metrics", Json::array()}};
  if ((ns && *ns != kNamespace) || other_dimension) return Reply(200, res);
  return d.WithCore([&](CoordinatorCore& c) -> ApiResponse {
    std::vector<std::string> trials;
    if (!job->empty()) {
      if (c.FindTrial(*job) && !token) trials.push_back(*job);
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
    return Reply(200, res);
  });
}

}  // namespace

ApiResponse HandleCloudWatchAction(Dispatcher& d, const std::string& action, const std::string& body) {
  if (auto bad = InvalidUtf8At(body)) {
    return Error("SerializationException", "the request body is not valid UTF-8 (byte offset " +
                                               std::to_string(*bad) + ")");
  }
  auto parsed = proto::ParseJson(body.empty() ? std::string_view("{}") : std::string_view(body));
  if (!parsed.ok()) return Error("SerializationException", "the request body is not accepted JSON: " + parsed.status().message());
  const Json req = std::move(parsed).value();
  if (!req.is_object()) return Error("SerializationException", "the request body must be a JSON object");
  Request r{req, std::nullopt};
  if (action == "GetMetricStatistics") return GetMetricStatistics(d, r);
  if (action == "ListMetrics") return ListMetrics(d, r);
  return Error("UnknownOperationException", "this coordinator serves the training jobs' metrics as CloudWatch with "
                                            "GetMetricStatistics and ListMetrics; it does not implement " + action);
}

}  // namespace hpo::coordinator
