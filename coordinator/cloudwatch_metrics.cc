#include "coordinator/cloudwatch_metrics.h"

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <chrono>
#include <cmath>
#include <cstdlib>
#include <cstdint>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "coordinator/aws_request.h"
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
constexpr size_t kMaxQueries = 500;               // GetMetricData's MetricDataQueries
constexpr int64_t kMaxDatapointsPerCall = 100800;  // GetMetricData's MaxDatapoints, and its default
// The longest Period taken (a year is 31,536,000 s): its milliseconds, and a period index times
// them, stay far inside int64 for any time in range (aws_request.h: years 0000 to 9999).
constexpr int64_t kMaxPeriodSeconds = 1000000000;

// CloudWatch's periods for high-resolution metrics (a training job's values come at any second):
// 1, 5, 10, 20, 30, or a multiple of 60; a Period of 7 was taken and gave 7-second buckets that
// CloudWatch would refuse to make.
bool ValidPeriod(int64_t p) {
  return p == 1 || p == 5 || p == 10 || p == 20 || p == 30 || (p >= 60 && p <= kMaxPeriodSeconds && p % 60 == 0);
}

std::string PeriodRule(const std::string& path, int64_t got) {
  return "The parameter " + path + " must be 1, 5, 10, 20, 30 or a multiple of 60 (seconds) up to 1,000,000,000; got " +
         std::to_string(got) + ".";
}

const std::set<std::string>& KnownStatistics() {
  static const std::set<std::string> known = {"SampleCount", "Average", "Sum", "Minimum", "Maximum"};
  return known;
}

// A metric a request names: the TrainingJobName of its Dimensions ("" when none is named), and
// whether it names another dimension (then no training job's metric matches).
struct MetricName {
  std::optional<std::string> ns, name;
  std::string job;
  bool other_dimension = false;
};

// Reads Namespace, MetricName and Dimensions of `o` (the request, or GetMetricData's Metric).
MetricName ReadMetric(const AwsRequest::Object& o) {
  MetricName m;
  m.ns = o.String("Namespace");
  m.name = o.String("MetricName");
  for (const auto& dim : o.Structures("Dimensions").value_or(std::vector<AwsRequest::Object>{})) {
    auto name = dim.String("Name");
    auto value = dim.String("Value");
    if (name != kDimension) {
      m.other_dimension = true;
    } else if (value) {
      m.job = *value;
    }  // (ListMetrics' filter without a Value: every training job's metrics have the dimension)
  }
  return m;
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

// A training job's stored metric values, and its TrainingStartTime (DescribeTrainingJob's).
struct History {
  std::vector<MetricRow> rows;
  int64_t training_start_ms = 0;
};

// The history of the training job `m` names; empty when it names none, or another namespace or
// dimension (an unknown training job has no datapoints). One bounded read under the core's lock.
History LoadHistory(Dispatcher& d, const MetricName& m) {
  History h;
  if (m.ns != kNamespace || m.job.empty() || m.other_dimension || !m.name) return h;
  auto rows = d.WithCore([&](CoordinatorCore& c) {
    if (const Trial* t = c.FindTrial(m.job)) h.training_start_ms = t->start_ms;
    return c.MetricHistory(m.job);
  });
  if (rows.ok()) h.rows = std::move(rows).value();
  return h;
}

// Where CloudWatch's periods start for a StartTime (its API reference, StartTime): rounded down to
// the period's division of a minute for periods of 1, 5, 10, 20 and 30 s; else to the minute for
// a StartTime under 15 days old, to 5 minutes under 63 days, to the hour beyond. Periods counted
// from the StartTime itself dropped the values between the minute and it, and were dated at
// times CloudWatch never gives (12:26:59.302).
int64_t RoundedStart(int64_t start_ms, int64_t period_ms, int64_t now_ms) {
  constexpr int64_t kMinute = 60000, kDay = 24 * 3600 * 1000;
  const int64_t age = now_ms - start_ms;
  const int64_t unit = period_ms < kMinute ? period_ms
                       : age < 15 * kDay   ? kMinute
                       : age < 63 * kDay   ? 5 * kMinute
                                           : 60 * kMinute;
  const int64_t r = start_ms % unit;
  return start_ms - (r < 0 ? r + unit : r);
}

int64_t NowMs() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::system_clock::now().time_since_epoch())
      .count();
}

// The values of `m` in [start_ms, end_ms), by period index (periods of period_ms from start_ms,
// already rounded as CloudWatch rounds it).
std::map<int64_t, std::vector<double>> Periods(const History& h, const MetricName& m, int64_t start_ms, int64_t end_ms,
                                               int64_t period_ms) {
  std::map<int64_t, std::vector<double>> buckets;
  for (const MetricRow& row : h.rows) {
    // A value is dated by the worker when it read the line; TrainingStartTime is when the
    // coordinator heard the program start, a few milliseconds later. A value printed in between
    // is dated at TrainingStartTime, so that the window the SDK asks for (from TrainingStartTime)
    // holds every value, as SageMaker's does.
    const int64_t at = std::max(row.timestamp_ms, h.training_start_ms);
    if (row.name != *m.name || at < start_ms || at >= end_ms) continue;
    buckets[(at - start_ms) / period_ms].push_back(row.value);
  }
  return buckets;
}

int64_t Millis(double seconds) { return static_cast<int64_t>(std::floor(seconds * 1000)); }

ApiResponse GetMetricStatistics(Dispatcher& d, AwsRequest& r) {
  const MetricName m = ReadMetric(r.Body());
  const auto start = r.Timestamp("StartTime");
  const auto end = r.Timestamp("EndTime");
  const auto period = r.Integer("Period");
  const std::vector<std::string> statistics = r.Strings("Statistics").value_or(std::vector<std::string>{});
  const std::vector<std::string> extended = r.Strings("ExtendedStatistics").value_or(std::vector<std::string>{});
  // The values are stored with the unit None; another Unit matches none of them, as CloudWatch
  // answers a unit a metric was not put with.
  const bool unit_none = r.String("Unit").value_or("None") == "None";
  if (r.error()) return *r.error();
  for (const auto& [name, present] : {std::pair<const char*, bool>{"Namespace", m.ns.has_value()},
                                      {"MetricName", m.name.has_value()},
                                      {"StartTime", start.has_value()},
                                      {"EndTime", end.has_value()},
                                      {"Period", period.has_value()}}) {
    if (!present) return r.Error("MissingParameter", std::string("The parameter ") + name + " is required.");
  }
  if (!ValidPeriod(*period)) return r.Error("InvalidParameterValue", PeriodRule("Period", *period));
  if (!(*start < *end)) {
    return r.Error("InvalidParameterCombination", "The parameter StartTime must be less than the parameter EndTime.");
  }
  if (!extended.empty()) {
    return r.Error("InvalidParameterValue", "ExtendedStatistics (percentiles) are not served by this coordinator; "
                                            "ask for SampleCount, Average, Sum, Minimum or Maximum");
  }
  if (statistics.empty()) {
    return r.Error("MissingParameter", "Must specify either Statistics or ExtendedStatistics.");
  }
  for (const auto& s : statistics) {
    if (!KnownStatistics().count(s)) {
      return r.Error("InvalidParameterValue", "The parameter Statistics contains " + s +
                                                  ", not one of SampleCount, Average, Sum, Minimum, Maximum.");
    }
  }
  const int64_t period_ms = *period * 1000, start_ms = RoundedStart(Millis(*start), period_ms, NowMs());
  // Counted from the rounded StartTime, as the periods below are.
  const double periods = std::ceil((*end * 1000 - static_cast<double>(start_ms)) / static_cast<double>(period_ms));
  if (periods > static_cast<double>(kMaxDatapoints)) {
    return r.Error("InvalidParameterCombination",
                   "You have requested up to " + std::to_string(static_cast<int64_t>(periods)) +
                       " datapoints, which exceeds the limit of 1,440. You may reduce the datapoints requested by "
                       "increasing Period, or decreasing the time range.");
  }
  Json res = {{"Label", *m.name}, {"Datapoints", Json::array()}};
  if (!unit_none) return r.Ok(res);
  for (const auto& [k, values] : Periods(LoadHistory(d, m), m, start_ms, Millis(*end), period_ms)) {
    Json point = {{"Timestamp", static_cast<double>(start_ms + k * period_ms) / 1000.0}};
    for (const auto& s : statistics) point[s] = Statistic(s, values);
    point["Unit"] = "None";
    res["Datapoints"].push_back(std::move(point));
  }
  return r.Ok(res);
}

// One MetricDataQuery, read and checked.
struct DataQuery {
  std::string id, label;
  MetricName metric;
  int64_t period_s = 0;
  std::string stat;
  bool unit_none = true;  // a Unit other than None matches no value (all are None)
  bool returned = true;
};

bool ValidQueryId(const std::string& id) {
  if (id.empty() || id.size() > 255 || !(id[0] >= 'a' && id[0] <= 'z')) return false;
  for (char c : id) {
    if (!std::isalnum(static_cast<unsigned char>(c)) && c != '_') return false;
  }
  return true;
}

ApiResponse GetMetricData(Dispatcher& d, AwsRequest& r) {
  const auto queries = r.Structures("MetricDataQueries");
  const auto start = r.Timestamp("StartTime");
  const auto end = r.Timestamp("EndTime");
  const std::string scan_by = r.String("ScanBy").value_or("TimestampDescending");
  const int64_t max_points = r.Integer("MaxDatapoints").value_or(kMaxDatapointsPerCall);
  const std::string token = r.String("NextToken").value_or("");
  if (r.error()) return *r.error();
  for (const auto& [name, present] : {std::pair<const char*, bool>{"MetricDataQueries", queries.has_value()},
                                      {"StartTime", start.has_value()},
                                      {"EndTime", end.has_value()}}) {
    if (!present) return r.Error("MissingParameter", std::string("The parameter ") + name + " is required.");
  }
  if (queries->empty() || queries->size() > kMaxQueries) {
    return r.Error("InvalidParameterValue", "The collection MetricDataQueries must hold 1 to 500 queries, got " +
                                                std::to_string(queries->size()) + ".");
  }
  if (!(*start < *end)) {
    return r.Error("InvalidParameterCombination", "The parameter StartTime must be less than the parameter EndTime.");
  }
  if (scan_by != "TimestampDescending" && scan_by != "TimestampAscending") {
    return r.Error("InvalidParameterValue",
                   "The parameter ScanBy must be TimestampDescending or TimestampAscending, got " + scan_by + ".");
  }
  if (max_points < 1 || max_points > kMaxDatapointsPerCall) {
    return r.Error("InvalidParameterValue", "The parameter MaxDatapoints must be from 1 to 100,800.");
  }
  int64_t offset = 0;  // datapoints already returned by earlier pages (at most 500 queries' worth)
  if (!token.empty()) {
    char* stop = nullptr;
    errno = 0;
    offset = std::strtoll(token.c_str(), &stop, 10);
    if (errno != 0 || *stop != '\0' || offset < 1 || offset > int64_t{1} << 40) {
      return r.Error("InvalidNextToken", "The NextToken " + token.substr(0, 100) +
                                             " was not given by this coordinator's GetMetricData.");
    }
  }
  std::vector<DataQuery> parsed;
  std::set<std::string> ids;
  for (const auto& q : *queries) {
    DataQuery dq;
    dq.id = q.String("Id").value_or("");
    auto label = q.String("Label");
    auto expression = q.String("Expression");
    auto stat = q.Structure("MetricStat");
    dq.returned = q.Bool("ReturnData").value_or(true);
    if (r.error()) return *r.error();
    if (!ValidQueryId(dq.id)) {
      return r.Error("InvalidParameterValue",
                     "The parameter " + q.PathOf("Id") + " must start with a lowercase letter and hold only letters, "
                     "digits and underscores, got \"" + dq.id.substr(0, 100) + "\".");
    }
    if (!ids.insert(dq.id).second) {
      return r.Error("InvalidParameterValue", "The Id " + dq.id + " is used by more than one of MetricDataQueries.");
    }
    if (expression) {
      return r.Error("InvalidParameterValue",
                     q.PathOf("Expression") + ": metric math and Metrics Insights expressions are not served by this "
                     "coordinator; ask for each training job's metric with a MetricStat (and compute in the client)");
    }
    if (!stat) return r.Error("MissingParameter", "The parameter " + q.PathOf("MetricStat") + " is required.");
    auto metric = stat->Structure("Metric");
    auto period = stat->Integer("Period");
    dq.stat = stat->String("Stat").value_or("");
    dq.unit_none = stat->String("Unit").value_or("None") == "None";
    if (metric) dq.metric = ReadMetric(*metric);
    if (r.error()) return *r.error();
    if (!metric || !dq.metric.name) {
      return r.Error("MissingParameter", "The parameter " + stat->PathOf("Metric.MetricName") + " is required.");
    }
    if (!period) return r.Error("MissingParameter", "The parameter " + stat->PathOf("Period") + " is required.");
    if (!ValidPeriod(*period)) return r.Error("InvalidParameterValue", PeriodRule(stat->PathOf("Period"), *period));
    if (!KnownStatistics().count(dq.stat)) {
      return r.Error("InvalidParameterValue", "The parameter " + stat->PathOf("Stat") + " is \"" +
                                                  dq.stat.substr(0, 100) +
                                                  "\", not one of SampleCount, Average, Sum, Minimum, Maximum "
                                                  "(percentiles are not served by this coordinator).");
    }
    dq.period_s = *period;
    dq.label = label.value_or(*dq.metric.name);
    if (dq.returned) parsed.push_back(std::move(dq));
  }

  // Every query's datapoints, in ScanBy order; then the page [offset, offset + max_points) of
  // their concatenation.
  const int64_t asked_ms = Millis(*start), end_ms = Millis(*end), now_ms = NowMs();
  Json results = Json::array();
  int64_t seen = 0;
  bool more = false;
  // Queries in a row that name the same training job read its history once (a dashboard asks for
  // each metric of a job in one call); one history is held at a time.
  std::optional<std::string> loaded_key;
  History loaded;
  for (const DataQuery& q : parsed) {
    std::vector<std::pair<double, double>> points;  // timestamp (s), value
    if (q.unit_none) {
      const int64_t period_ms = q.period_s * 1000, start_ms = RoundedStart(asked_ms, period_ms, now_ms);
      const std::string key = q.metric.ns.value_or("") + "\n" + q.metric.job + (q.metric.other_dimension ? "\n+" : "");
      if (loaded_key != key) {
        loaded = LoadHistory(d, q.metric);
        loaded_key = key;
      }
      for (const auto& [k, values] : Periods(loaded, q.metric, start_ms, end_ms, period_ms)) {
        points.emplace_back(static_cast<double>(start_ms + k * period_ms) / 1000.0,
                            Statistic(q.stat, values).get<double>());
      }
    }
    if (scan_by == "TimestampDescending") std::reverse(points.begin(), points.end());
    Json timestamps = Json::array(), values = Json::array();
    const int64_t n = static_cast<int64_t>(points.size());
    const int64_t from = std::clamp<int64_t>(offset - seen, 0, n);
    const int64_t to = std::clamp<int64_t>(offset + max_points - seen, 0, n);
    for (int64_t i = from; i < to; ++i) {
      timestamps.push_back(points[static_cast<size_t>(i)].first);
      values.push_back(points[static_cast<size_t>(i)].second);
    }
    const bool partial = to < n;
    more = more || partial;
    seen += n;
    results.push_back({{"Id", q.id},
                       {"Label", q.label},
                       {"Timestamps", std::move(timestamps)},
                       {"Values", std::move(values)},
                       {"StatusCode", partial ? "PartialData" : "Complete"}});
  }
  Json res = {{"MetricDataResults", std::move(results)}, {"Messages", Json::array()}};
  if (more) res["NextToken"] = std::to_string(offset + max_points);
  return r.Ok(res);
}

ApiResponse ListMetrics(Dispatcher& d, AwsRequest& r) {
  const MetricName m = ReadMetric(r.Body());
  const auto token = r.String("NextToken");
  if (r.error()) return *r.error();
  Json res = {{"Metrics", Json::array()}};
  if ((m.ns && *m.ns != kNamespace) || m.other_dimension) return r.Ok(res);
  return d.WithCore([&](CoordinatorCore& c) -> ApiResponse {
    std::vector<std::string> trials;
    if (!m.job.empty()) {
      if (c.FindTrial(m.job) && !token) trials.push_back(m.job);
    } else {
      trials = c.TrialNames("", token.value_or(""), kListPage + 1);
    }
    const bool more = trials.size() > kListPage;
    if (more) trials.pop_back();
    for (const auto& name : trials) {
      const Trial* t = c.FindTrial(name);
      if (!t) continue;
      for (const auto& [metric, value] : t->final_metrics) {
        (void)value;
        if (m.name && metric != *m.name) continue;
        res["Metrics"].push_back({{"Namespace", kNamespace},
                                  {"MetricName", metric},
                                  {"Dimensions", Json::array({{{"Name", kDimension}, {"Value", name}}})}});
      }
    }
    if (more) res["NextToken"] = trials.back();
    return r.Ok(res);
  });
}

ApiResponse Handle(Dispatcher& d, const std::string& action, AwsRequest& r) {
  if (action == "GetMetricStatistics") return GetMetricStatistics(d, r);
  if (action == "GetMetricData") return GetMetricData(d, r);
  if (action == "ListMetrics") return ListMetrics(d, r);
  return r.Error(r.query() ? "InvalidAction" : "UnknownOperationException",
                 "this coordinator serves the training jobs' metrics as CloudWatch with GetMetricStatistics, "
                 "GetMetricData and ListMetrics; it does not implement " + action);
}

}  // namespace

ApiResponse HandleCloudWatchAction(Dispatcher& d, const std::string& action, const std::string& body) {
  AwsRequest r(body, kContentType);
  if (r.error()) return *r.error();
  return Handle(d, action, r);
}

ApiResponse HandleCloudWatchQuery(Dispatcher& d, const std::string& form) {
  AwsRequest r = AwsRequest::Query(form, kCloudWatchXmlns);
  if (r.error()) return *r.error();
  if (r.version() != "2010-08-01") {
    return r.Error("InvalidParameterValue",
                   "this coordinator serves CloudWatch's query protocol (Version 2010-08-01) for the training jobs' "
                   "metrics; the request's Version is \"" + r.version().substr(0, 40) +
                       "\" (SageMaker and CloudWatch Logs are served as AWS JSON, with X-Amz-Target)");
  }
  return Handle(d, r.action(), r);
}

}  // namespace hpo::coordinator
