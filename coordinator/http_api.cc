#include "coordinator/http_api.h"

#include <httplib.h>
#include <arpa/inet.h>
#include <netdb.h>
#include <netinet/in.h>

#include <algorithm>
#include <limits>
#include <atomic>
#include <chrono>
#include <functional>
#include <map>
#include <set>
#include <cstdio>
#include <cstring>
#include <memory>
#include <mutex>
#include <optional>
#include <random>
#include <string_view>
#include <thread>

#include <unistd.h>

#include "common/text.h"
#include "coordinator/aws_request.h"
#include "coordinator/cloudwatch_logs.h"
#include "coordinator/cloudwatch_metrics.h"
#include "coordinator/dashboard.h"
#include "coordinator/search.h"
#include "proto/codec.h"

namespace hpo::coordinator {

using Json = nlohmann::ordered_json;

namespace {

// Answers echo what clients sent (a name, a value): text that is not UTF-8 is written with
// U+FFFD in its place rather than failing the answer.
std::string Dump(const Json& j, int indent = -1) { return j.dump(indent, ' ', false, Json::error_handler_t::replace); }

ApiResponse AwsError(int status, const std::string& type, const std::string& message) {
  Json j = {{"__type", type}, {"message", message}};
  return {status, Dump(j)};
}

// An AWS query-protocol request (form-encoded, no X-Amz-Target): CloudWatch's protocol for older
// clients (coordinator/cloudwatch_metrics.h).
bool IsQueryRequest(const httplib::Request& req) {
  if (req.has_header("X-Amz-Target")) return false;
  const std::string type = req.get_header_value("Content-Type");
  return type.rfind("application/x-www-form-urlencoded", 0) == 0 || req.body.rfind("Action=", 0) == 0;
}

// JSON text is UTF-8 (RFC 8259): a body that is not gets a 400 saying where, not a 500 from
// echoing it back.
ApiResponse NotUtf8(size_t at, std::string_view body) {
  char byte[8];
  std::snprintf(byte, sizeof byte, "0x%02X", static_cast<unsigned>(static_cast<unsigned char>(body[at])));
  return AwsError(400, "SerializationException",
                  "the request body is not valid UTF-8: byte " + std::string(byte) + " at offset " +
                      std::to_string(at) + "; send JSON (or YAML) text in UTF-8");
}

// The AWS error type of a failed Status (InternalFailure, a 500, for the codes not listed).
const char* ErrorType(const Status& s) {
  switch (s.code()) {
    case StatusCode::kInvalidArgument: return "ValidationException";
    case StatusCode::kNotFound: return "ResourceNotFound";
    case StatusCode::kAlreadyExists: return "ResourceInUse";
    case StatusCode::kResourceExhausted: return "ResourceLimitExceeded";
    case StatusCode::kFailedPrecondition: return "ValidationException";
    case StatusCode::kUnavailable: return "ServiceUnavailable";  // the coordinator is stopping
    default: return "InternalFailure";
  }
}

ApiResponse FromStatus(const Status& s) {
  const std::string type = ErrorType(s);
  return AwsError(type == "InternalFailure" ? 500 : type == "ServiceUnavailable" ? 503 : 400, type, s.message());
}

ApiResponse Ok(const Json& j) { return {200, Dump(j)}; }

// ?after=N&limit=M of the paged GET routes (limit at most 10,000). False, with the error in
// `res`, when either is not a non-negative integer.
bool Cursor(const httplib::Request& req, httplib::Response& res, int64_t* after, size_t* limit) {
  // Digits only: std::stoul read "-1" as 2^64 - 1 and "12abc" as 12.
  auto number = [&](const char* name, int64_t* out) {
    if (!req.has_param(name)) return true;
    const std::string v = req.get_param_value(name);
    if (v.empty() || v.size() > 18 || v.find_first_not_of("0123456789") != std::string::npos) return false;
    *out = std::stoll(v);
    return true;
  };
  int64_t l = static_cast<int64_t>(*limit);
  if (number("after", after) && number("limit", &l)) {
    *limit = static_cast<size_t>(std::min<int64_t>(l, 10000));
    return true;
  }
  ApiResponse r = AwsError(400, "ValidationException", "after and limit must be non-negative integers");
  res.status = r.status;
  res.set_content(r.body, "application/json");
  return false;
}

double Epoch(int64_t ms) { return static_cast<double>(ms) / 1000.0; }

// A request member and the JSON type SageMaker's model gives it.
enum class JsonType { kString, kInteger, kTimestamp, kList, kObject };
using enum JsonType;
struct Member {
  const char* name;
  JsonType type;
};

// Reads the request members this action allows: another member is a ValidationException naming
// it; a member of the wrong JSON type (null is absent) a SerializationException naming it and
// what it got, as SageMaker's deserializer answers before any rule is checked. nullopt when the
// request may go on.
std::optional<ApiResponse> CheckMembers(const Json& req, std::initializer_list<Member> allowed) {
  if (!req.is_object()) return AwsError(400, "SerializationException", "the request body must be a JSON object");
  for (auto it = req.begin(); it != req.end(); ++it) {
    const Member* m = nullptr;
    for (const Member& a : allowed) {
      if (it.key() == a.name) m = &a;
    }
    if (!m) return AwsError(400, "ValidationException", "unknown member " + it.key() + " in this request");
    const Json& v = it.value();
    const char* want = nullptr;
    switch (m->type) {
      case JsonType::kString: want = v.is_string() ? nullptr : "a string"; break;
      case JsonType::kInteger: want = v.is_number_integer() ? nullptr : "an integer"; break;
      case JsonType::kTimestamp: want = v.is_number() ? nullptr : "a timestamp in epoch seconds"; break;
      case JsonType::kList: want = v.is_array() ? nullptr : "a list"; break;
      case JsonType::kObject: want = v.is_object() ? nullptr : "an object"; break;
    }
    if (!want || v.is_null()) continue;
    // A list or an object is named, not printed: printing is recursive, and a value nested
    // 200,000 deep overflowed the stack.
    std::string got = v.is_array() ? std::string("a list") : v.is_object() ? std::string("an object") : v.dump();
    if (got.size() > 64) got = got.substr(0, 64) + "...";
    return AwsError(400, "SerializationException",
                    std::string("member ") + m->name + " must be " + want + "; got " + got);
  }
  return std::nullopt;
}

// A required string member (its type checked by CheckMembers): ValidationException when absent,
// null or empty (as SageMaker words each: an empty one is too short, not null).
Result<std::string> RequiredString(const Json& req, const char* name) {
  if (!req.contains(name) || !req[name].is_string()) {
    return Status::InvalidArgument(std::string("1 validation error detected: Value at '") + name +
                                   "' failed to satisfy constraint: Member must not be null");
  }
  if (req[name].get<std::string>().empty()) {
    return Status::InvalidArgument(std::string("1 validation error detected: Value '' at '") + name +
                                   "' failed to satisfy constraint: Member must have length greater than or equal to 1");
  }
  return req[name].get<std::string>();
}

// A required name member: a string of at most `max` characters in SageMaker's name pattern, as
// SageMaker checks before it looks anything up (a 33-character name was "no tuning job named").
Result<std::string> RequiredName(const Json& req, const char* name, size_t max) {
  auto value = RequiredString(req, name);
  if (!value.ok()) return value;
  auto refuse = [&](const std::string& constraint) {
    std::string shown = *value;
    if (shown.size() > 80) shown = shown.substr(0, 80) + "...";
    return Status::InvalidArgument("1 validation error detected: Value '" + shown + "' at '" + name +
                                   "' failed to satisfy constraint: " + constraint);
  };
  if (value->size() > max) return refuse("Member must have length less than or equal to " + std::to_string(max));
  if (!proto::IsHyphenatedName(*value)) {
    return refuse("Member must satisfy regular expression pattern: ^[a-zA-Z0-9](-*[a-zA-Z0-9]){0," +
                  std::to_string(max - 1) + "}");
  }
  return value;
}

// NameContains, checked as SageMaker checks it when given ([a-zA-Z0-9\-]+, at most 63 characters):
// another character matched no name, and the list came back empty where SageMaker answers a
// ValidationException; "" and 64 characters listed everything and nothing (an API pass).
Status CheckNameContains(const Json& req, const std::string& v) {
  if (!req.contains("NameContains")) return Status::Ok();
  if (v.size() > 63) {
    return Status::InvalidArgument("1 validation error detected: Value '" + v +
                                   "' at 'nameContains' failed to satisfy constraint: Member must have length less "
                                   "than or equal to 63");
  }
  if (!v.empty() &&
      std::all_of(v.begin(), v.end(), [](char c) { return std::isalnum(static_cast<unsigned char>(c)) || c == '-'; })) {
    return Status::Ok();
  }
  return Status::InvalidArgument("1 validation error detected: Value '" + v +
                                 "' at 'nameContains' failed to satisfy constraint: Member must satisfy regular "
                                 "expression pattern: [a-zA-Z0-9\\-]+");
}

// An optional string member: `fallback` when absent; a ValidationException when it is not a string
// or, with `allowed` given, not one of those values (the model's enum).

Result<std::string> OptionalString(const Json& req, const char* name, const std::string& fallback,
                                   std::initializer_list<const char*> allowed = {}) {
  if (!req.contains(name)) return fallback;
  if (!req[name].is_string()) {
    return Status::InvalidArgument(std::string("1 validation error detected: Value at '") + name +
                                   "' failed to satisfy constraint: Member must be a string; got " + req[name].dump());
  }
  std::string v = req[name].get<std::string>();
  if (allowed.size() == 0) return v;
  std::string set;
  for (const char* a : allowed) {
    if (v == a) return v;
    set += std::string(set.empty() ? "" : ", ") + a;
  }
  return Status::InvalidArgument("1 validation error detected: Value '" + v + "' at '" + name +
                                 "' failed to satisfy constraint: Member must satisfy enum value set: [" + set + "]");
}

// An optional timestamp member (epoch seconds, as AWS JSON 1.1 sends timestamps).
Status CheckTimestamp(const Json& req, const char* name) {
  if (req.contains(name) && !req[name].is_number()) {
    return Status::InvalidArgument(std::string("1 validation error detected: Value at '") + name +
                                   "' failed to satisfy constraint: Member must be a timestamp in epoch seconds; got " +
                                   req[name].dump());
  }
  return Status::Ok();
}

// Paging: a NextToken names the last row returned by its sort key and name, and the order it was
// issued for ("hpo2:" + hex of [number, text, name, "SortBy/SortOrder"] as the request gave
// them), and the next page starts after that row in the same order; a token sent with another
// order is refused, naming both. Offsets
// shifted on a job still running: a newest-first list returned rows twice as new ones arrived
// ahead of the cursor. A row whose sort key changes between pages (a Status) can still move.
struct SortKey {
  double number = 0;  // CreationTime, FinalObjectiveMetricValue
  std::string text;   // Status (Name sorts by the name alone)
  std::string name;   // the tie-break, and the unique id
  bool operator<(const SortKey& o) const { return std::tie(number, text, name) < std::tie(o.number, o.text, o.name); }
};

struct Page {
  std::optional<SortKey> after;  // the last row of the previous page
  size_t max = 10;
  std::string order;  // the request's SortBy/SortOrder, kept in its NextToken
  std::string scope;  // which list: the action and the resource it lists, kept in its NextToken
};

// A label value as the text format writes it: backslash, double quote and line feed escaped.
std::string LabelValue(const std::string& v) {
  std::string out;
  for (char ch : v) {
    if (ch == '\\' || ch == '"') out += '\\';
    if (ch == '\n') {
      out += "\\n";
      continue;
    }
    out += ch;
  }
  return out;
}

std::string MetricsText(const CoordinatorCore& c, const SqliteJobStore* deferred_store, int64_t now_ms) {
  struct Family {
    const char* name;
    const char* type;
    const char* help;
    std::string samples;
  };
  std::vector<Family> f = {
      {"hpo_suggestions_total", "counter",
       "Proposal rounds of the tuning job's strategy (Propose calls; one round may propose several configurations, "
       "one for each free parallel slot).",
       ""},
      {"hpo_suggestion_seconds", "summary", "Time spent proposing configurations (_sum seconds over _count rounds).", ""},
      {"hpo_suggestion_max_seconds", "gauge", "The slowest single proposal.", ""},
      {"hpo_suggestion_last_seconds", "gauge", "The latest proposal.", ""},
      {"hpo_suggestion_fallbacks_total", "counter",
       "Proposal rounds the model did not make (the start design before it has enough observations, or random "
       "search when it could not fit).",
       ""},
      {"hpo_suggestion_exploits_total", "counter",
       "Bayesian proposals that went to the model's predicted best instead of expected improvement's choice (one "
       "per round of 4 or more parallel trials).",
       ""},
      {"hpo_training_jobs", "gauge", "Training jobs of the tuning job by status.", ""},
      {"hpo_tuning_jobs", "gauge", "Tuning jobs by status.", ""},
      {"hpo_workers", "gauge", "Registered workers.", ""},
      {"hpo_workers_closed", "gauge",
       "Registered workers that take no new training job now (resting after infrastructure failures, or reclaimed).",
       ""},
      {"hpo_workers_cordoned", "gauge",
       "Workers an operator has cordoned (hpo workers cordon), registered now or not.", ""},
      {"hpo_events_total", "counter",
       "Events written since the coordinator started, by kind (WorkerLost, InfraError, JobFailed, "
       "CoordinatorStalled, ...; hpo events lists them).",
       ""},
  };
  if (deferred_store) {  // absent when commits sync themselves
    f.push_back({"hpo_store_syncs_total", "counter",
                 "fdatasyncs of the state database's write-ahead log made before acknowledging (each serves every "
                 "commit before it).",
                 ""});
    f.push_back({"hpo_store_sync_seconds", "summary",
                 "Time those syncs took, checkpoints after them included (_sum seconds over _count syncs): a slow "
                 "state volume shows here.",
                 ""});
    f.push_back({"hpo_store_sync_max_seconds", "gauge", "The slowest of those syncs.", ""});
  }
  auto add = [&](size_t family, const std::string& labels, const std::string& suffix, double value) {
    char buf[64];
    std::snprintf(buf, sizeof buf, "%.9g", value);
    f[family].samples += std::string(f[family].name) + suffix + labels + " " + buf + "\n";
  };
  // The statuses a tuning job or a training job can have, each listed with 0 when none has it.
  static constexpr const char* kStatuses[] = {"InProgress", "Completed", "Failed", "Stopping", "Stopped"};
  std::map<std::string, int> jobs_by_status;
  for (const TuningJob* j : c.Jobs()) {
    ++jobs_by_status[j->status];
    // `tuning_job`, not `job`: Prometheus sets `job` to the scrape's job_name and renames a
    // target's own `job` to `exported_job`, so queries on the documented name matched nothing.
    const std::string l = "{tuning_job=\"" + LabelValue(j->name) + "\"}";
    if (const SuggestionStats* st = c.Suggestions(j->name)) {
      add(0, l, "", static_cast<double>(st->count));
      add(1, l, "_sum", st->seconds_sum);
      add(1, l, "_count", static_cast<double>(st->count));
      add(2, l, "", st->seconds_max);
      add(3, l, "", st->last.seconds);
      add(4, l, "", static_cast<double>(st->fallbacks));
      add(5, l, "", static_cast<double>(st->exploits));
    }
    // Every status, 0 included, as hpo_tuning_jobs: a series that vanished when its count fell to
    // 0 (InProgress at the job's end) kept its last value in graphs and alerts.
    std::map<std::string, int> by_status;
    for (const char* status : kStatuses) by_status[status] = 0;
    for (const Trial* tr : c.TrialsOf(j->name)) {
      // As DescribeHyperParameterTuningJob counts them: a trial queued ahead or given back before
      // it started is no training job yet, and a pending retry is InProgress.
      if (!tr->Unlaunched()) ++by_status[TrainingJobStatusOf(*tr)];
    }
    for (const auto& [status, n] : by_status) {
      add(6, "{tuning_job=\"" + LabelValue(j->name) + "\",status=\"" + status + "\"}", "", n);
    }
  }
  for (const char* status : kStatuses) {
    add(7, std::string("{status=\"") + status + "\"}", "", jobs_by_status[status]);
  }
  const std::vector<const WorkerInfo*> workers = c.Workers();
  add(8, "", "", static_cast<double>(workers.size()));
  size_t closed = 0;
  for (const WorkerInfo* w : workers) closed += w->Closed().empty() ? 0 : 1;
  add(9, "", "", static_cast<double>(closed));
  add(10, "", "", static_cast<double>(c.Cordons().size()));
  for (const auto& [kind, n] : c.EventCounts()) add(11, "{kind=\"" + LabelValue(kind) + "\"}", "", static_cast<double>(n));
  if (deferred_store) {
    const double syncs = static_cast<double>(deferred_store->syncs());
    add(12, "", "", syncs);
    add(13, "", "_sum", deferred_store->sync_seconds());
    add(13, "", "_count", syncs);
    add(14, "", "", deferred_store->sync_max_seconds());
  }
  if (deferred_store && c.options().notify) {
    auto backlog = deferred_store->Backlog();
    if (backlog.ok()) {
      f.push_back({"hpo_notifications_waiting", "gauge",
                   "State-change notifications (--notify) not yet taken by their URL: a URL that is down or slow "
                   "shows here.",
                   ""});
      f.push_back({"hpo_notifications_oldest_waiting_seconds", "gauge",
                   "Age of the oldest of them (0 when none); after 24 hours it is dropped.", ""});
      add(f.size() - 2, "", "", static_cast<double>(backlog->waiting));
      add(f.size() - 1, "", "",
          backlog->waiting ? static_cast<double>(std::max<int64_t>(0, now_ms - backlog->oldest_ms)) / 1000.0 : 0.0);
    }
  }
  std::string t;
  for (const Family& family : f) {
    t += std::string("# HELP ") + family.name + " " + family.help + "\n# TYPE " + family.name + " " + family.type + "\n" +
         family.samples;
  }
  return t;
}

// GET /hpo/v1/workers: each registered worker (what it has, what runs there, whether it takes new
// training jobs and why not), each lost or departed one not registered again (CoordinatorCore::
// Departed: State Lost or Left, when last heard), and each cordoned id that is not registered now.
Json WorkersJson(const CoordinatorCore& c, int64_t now_ms) {
  Json out = Json::array();
  std::map<std::string, CordonRow> cordons;
  for (CordonRow& r : c.Cordons()) cordons[r.worker] = std::move(r);
  for (const WorkerInfo* w : c.Workers()) {
    const auto& r = w->reg;
    const std::set<uint32_t> busy = c.GpusInUse(r.worker_id);
    Json gpus = Json::array();
    for (const auto& g : r.gpus) {
      gpus.push_back({{"Index", g.index}, {"Name", g.name}, {"MemoryMiB", g.memory_mb}, {"InUse", busy.count(g.index) > 0}});
    }
    // A worker shutting down that holds nothing has gone in all but the lease: Leaving, not
    // Draining (an operator who stopped it saw it draining for another lease).
    const bool leaving = w->draining.rfind(kDrainingShutdown, 0) == 0 && w->running.empty() && w->queued.empty();
    const std::string state = leaving ? "Leaving" : !w->draining.empty() ? "Draining" : !w->cordoned.empty() ? "Cordoned"
                              : !w->resting.empty() ? "Resting" : "Open";
    Json j = {{"WorkerId", r.worker_id}, {"Host", r.host}, {"State", state}};
    if (leaving) {
      j["Reason"] = w->Closed() + "; nothing runs there, and it is listed as Left once the coordinator's lease of " +
                    std::to_string((c.options().lease_ms + 999) / 1000) + " s has passed without a word from it";
    } else if (state != "Open") {
      j["Reason"] = w->Closed();
    }
    if (auto cordon = cordons.find(r.worker_id); cordon != cordons.end()) {
      j["CordonedSince"] = Epoch(cordon->second.since_ms);
      cordons.erase(cordon);
    }
    j["Slots"] = r.slots;
    j["Running"] = w->running.size();
    Json names = Json::array();
    for (const auto& [trial, attempt] : w->running) names.push_back(trial);
    j["RunningTrainingJobs"] = names;
    j["QueuedAhead"] = w->queued.size();
    if (!w->foreign.empty()) j["Foreign"] = w->foreign.size();
    j["InstanceType"] = r.instance_type;
    if (!r.instance_group.empty()) j["InstanceGroup"] = r.instance_group;
    j["Cpus"] = r.cpus;
    j["MemoryMiB"] = r.memory_mb;
    j["Gpus"] = gpus;
    if (r.disk_mb > 0) j["FreeDiskMiB"] = r.disk_mb;
    j["Spot"] = r.spot;
    if (!r.labels.empty()) j["Labels"] = r.labels;
    j["LastHeardSecondsAgo"] = std::max<double>(0.0, static_cast<double>(now_ms - w->last_seen_ms) / 1000.0);
    out.push_back(std::move(j));
  }
  // Workers not registered now: lost or gone (until they register again), and cordoned ids.
  auto seconds_ago = [&](int64_t ms) { return std::max<double>(0.0, static_cast<double>(now_ms - ms) / 1000.0); };
  const auto& departed = c.Departed();
  for (const auto& [id, gone] : departed) {
    Json j = {{"WorkerId", id}, {"Host", gone.host}, {"State", gone.left ? "Left" : "Lost"}, {"Reason", gone.why}};
    if (auto cordon = cordons.find(id); cordon != cordons.end()) {
      j["Reason"] = gone.why + "; cordoned: " + cordon->second.reason;
      j["CordonedSince"] = Epoch(cordon->second.since_ms);
      cordons.erase(cordon);
    }
    if (!gone.instance_type.empty()) j["InstanceType"] = gone.instance_type;
    j["Registered"] = false;
    j["LastHeardSecondsAgo"] = seconds_ago(gone.last_seen_ms);
    j["GoneSecondsAgo"] = seconds_ago(gone.gone_ms);
    out.push_back(std::move(j));
  }
  for (const auto& [id, row] : cordons) {
    out.push_back({{"WorkerId", id}, {"State", "Cordoned"}, {"Reason", row.reason},
                   {"CordonedSince", Epoch(row.since_ms)}, {"Registered", false}});
  }
  return Json{{"Workers", out}};
}

std::string Hex(const std::string& s) {
  static const char* d = "0123456789abcdef";
  std::string out;
  for (unsigned char c : s) {
    out += d[c >> 4];
    out += d[c & 15];
  }
  return out;
}

std::optional<std::string> Unhex(std::string_view s) {
  if (s.size() % 2) return std::nullopt;
  std::string out;
  for (size_t i = 0; i < s.size(); i += 2) {
    auto v = [](char c) { return c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1; };
    const int hi = v(s[i]), lo = v(s[i + 1]);
    if (hi < 0 || lo < 0) return std::nullopt;
    out += static_cast<char>(hi * 16 + lo);
  }
  return out;
}

// `scope` names the list ("ListTrainingJobsForHyperParameterTuningJob qa1"): a token of another
// list named a place in rows it never had (one of job qa1 was taken for job qa2's list).
Result<Page> ReadPage(const Json& req, size_t default_max, size_t limit, const std::string& scope) {
  Page p;
  p.max = default_max;
  p.scope = scope;
  if (req.contains("MaxResults")) {
    if (!req["MaxResults"].is_number_integer() || req["MaxResults"].get<int64_t>() < 1 ||
        req["MaxResults"].get<int64_t>() > static_cast<int64_t>(limit)) {
      return Status::InvalidArgument("MaxResults must be an integer from 1 to " + std::to_string(limit));
    }
    p.max = req["MaxResults"].get<size_t>();
  }
  auto member = [&](const char* name) {
    return req.contains(name) && req[name].is_string() ? req[name].get<std::string>() : std::string();
  };
  p.order = member("SortBy") + "/" + member("SortOrder");
  if (req.contains("NextToken")) {
    const Status bad = Status::InvalidArgument("NextToken is not a token this coordinator issued");
    std::string t = req["NextToken"].is_string() ? req["NextToken"].get<std::string>() : "";
    if (t.rfind("hpo2:", 0) != 0 || t.size() > 8192) return bad;
    auto text = Unhex(std::string_view(t).substr(5));
    if (!text) return bad;
    Json k = Json::parse(*text, nullptr, false);
    if (!k.is_array() || k.size() < 3 || k.size() > 5 || !k[0].is_number() || !k[1].is_string() ||
        !k[2].is_string() || (k.size() >= 4 && !k[3].is_string()) || (k.size() == 5 && !k[4].is_string())) {
      return bad;
    }
    if (k.size() == 5 && k[4].get<std::string>() != p.scope) {
      return Status::InvalidArgument("NextToken was issued for another list (" + k[4].get<std::string>() +
                                     "), not this " + p.scope + ": send it with the request it came from");
    }
    // A token marks a place in one order: in another it was ignored, and page 1 came back.
    if (k.size() >= 4 && k[3].get<std::string>() != p.order) {
      auto show = [](const std::string& order) {
        const size_t slash = order.find('/');
        const std::string by = order.substr(0, slash), dir = order.substr(slash + 1);
        return "SortBy " + (by.empty() ? std::string("(default)") : by) + ", SortOrder " +
               (dir.empty() ? std::string("(default)") : dir);
      };
      return Status::InvalidArgument("NextToken was issued for " + show(k[3].get<std::string>()) +
                                     "; this request asks for " + show(p.order) +
                                     ": send the same SortBy and SortOrder with it, or no NextToken");
    }
    p.after = SortKey{k[0].get<double>(), k[1].get<std::string>(), k[2].get<std::string>()};
  }
  return p;
}

// The page of `rows` (sorted by `key`, descending when `desc`) after p.after.
template <class T>
Json Paginate(const std::vector<T>& rows, const Page& p, bool desc, const char* list,
              const std::function<SortKey(const T&)>& key, const std::function<Json(const T&)>& encode) {
  auto before = [desc](const SortKey& a, const SortKey& b) { return desc ? b < a : a < b; };
  size_t i = 0;
  if (p.after) {
    i = static_cast<size_t>(std::partition_point(rows.begin(), rows.end(),
                                                 [&](const T& r) { return !before(*p.after, key(r)); }) -
                            rows.begin());
  }
  Json out;
  out[list] = Json::array();
  const size_t end = std::min(rows.size(), i + p.max);
  for (size_t k = i; k < end; ++k) out[list].push_back(encode(rows[k]));
  if (end < rows.size() && end > i) {
    const SortKey last = key(rows[end - 1]);
    out["NextToken"] = "hpo2:" + Hex(Json::array({last.number, last.text, last.name, p.order, p.scope}).dump());
  }
  return out;
}

Result<bool> Descending(const Json& req) {
  if (!req.contains("SortOrder")) return false;
  std::string o = req["SortOrder"].is_string() ? req["SortOrder"].get<std::string>() : "";
  if (o != "Ascending" && o != "Descending") {
    return Status::InvalidArgument("SortOrder must be one of Ascending, Descending; got " + req["SortOrder"].dump());
  }
  return o == "Descending";
}

// ---- actions --------------------------------------------------------------------------------------

ApiResponse Create(Dispatcher& d, const Json& req) {
  proto::FieldErrors errs;
  auto spec = proto::DecodeCreateRequest(proto::TextTree{req, false, {}, {}}, &errs);
  if (!spec.ok()) {
    // A value of the wrong JSON type is refused before any rule, as SageMaker's deserializer does.
    proto::FieldErrors types;
    for (const proto::FieldError& e : errs) {
      if (e.type) types.push_back(e);
    }
    if (!types.empty()) return AwsError(400, "SerializationException", proto::JoinErrors(types));
    return AwsError(400, "ValidationException", spec.status().message());
  }
  std::vector<Outgoing> out;
  auto arn = d.WithCore([&](CoordinatorCore& c) { return c.Submit(*spec, proto::Spelling::kApi, d.Now(), &out); });
  if (!arn.ok()) return FromStatus(arn.status());
  d.Post(std::move(out));
  return Ok({{"HyperParameterTuningJobArn", *arn}});
}

// All three kinds of range, empty ones too, as SageMaker describes them (the SDK's attach()
// reads each without a fallback).
void AllRangeKinds(Json& ranges) {
  for (const char* k : {"IntegerParameterRanges", "ContinuousParameterRanges", "CategoricalParameterRanges"}) {
    if (!ranges.contains(k)) ranges[k] = Json::array();
  }
}

// What SageMaker's DescribeHyperParameterTuningJob carries in a training job definition beyond
// the request, and the SageMaker Python SDK reads without a fallback (HyperparameterTuner.attach,
// and the warm-start tuners made from it): `_tuning_objective_metric` among the static
// hyperparameters and every kind of range (the ResourceConfig is added by DescribeAsSageMaker).
void DescribedAsSageMakerDoes(Json& def, const std::string& job_metric) {
  if (!def.is_object()) return;
  std::string metric = job_metric;
  if (def.contains("TuningObjective")) metric = def["TuningObjective"].value("MetricName", metric);
  Json& statics = def["StaticHyperParameters"];
  if (!statics.is_object()) statics = Json::object();
  if (!metric.empty() && !statics.contains("_tuning_objective_metric")) statics["_tuning_objective_metric"] = metric;
  if (def.contains("HyperParameterRanges")) AllRangeKinds(def["HyperParameterRanges"]);
}

ApiResponse Describe(Dispatcher& d, const Json& req) {
  if (auto bad = CheckMembers(req, {{"HyperParameterTuningJobName", kString}})) return *bad;
  auto name = RequiredName(req, "HyperParameterTuningJobName", 32);
  if (!name.ok()) return FromStatus(name.status());
  auto r = d.WithCore([&](CoordinatorCore& c) { return c.Describe(*name, d.Now()); });
  if (!r.ok()) return FromStatus(r.status());
  return Ok(DescribeAsSageMaker(*r));
}

}  // namespace

Json DescribeAsSageMaker(const proto::DescribeTuningJobResponse& r) {
  // A definition with HyperParameterTuningResourceConfig is also described with a ResourceConfig:
  // its preferred option (proto::ResourceOptions), from which attach() takes the estimator's
  // instance type, count and volume.
  proto::DescribeTuningJobResponse described = r;
  auto add_resource_config = [](proto::TrainingJobDefinition& d) {
    if (d.resource_config || !d.hyper_parameter_tuning_resource_config) return;
    const std::vector<proto::ResourceConfig> options = proto::ResourceOptions(d);
    if (!options.empty()) d.resource_config = options[0];
  };
  if (described.spec.training_job_definition) add_resource_config(*described.spec.training_job_definition);
  for (auto& d : described.spec.training_job_definitions) add_resource_config(d);
  Json out = proto::EncodeDescribeResponse(described);
  std::string metric;
  if (out.contains("HyperParameterTuningJobConfig")) {
    Json& cfg = out["HyperParameterTuningJobConfig"];
    if (cfg.contains("HyperParameterTuningJobObjective")) {
      metric = cfg["HyperParameterTuningJobObjective"].value("MetricName", "");
    }
    if (cfg.contains("ParameterRanges")) AllRangeKinds(cfg["ParameterRanges"]);
    // The API's default, described as SageMaker does: the SDK's attach() reads it without a
    // fallback, and raised KeyError on every job created without the SDK (which sends "Off").
    if (cfg.is_object() && !cfg.contains("TrainingJobEarlyStoppingType")) cfg["TrainingJobEarlyStoppingType"] = "Off";
  }
  if (out.contains("TrainingJobDefinition")) DescribedAsSageMakerDoes(out["TrainingJobDefinition"], metric);
  if (out.contains("TrainingJobDefinitions") && out["TrainingJobDefinitions"].is_array()) {
    for (Json& def : out["TrainingJobDefinitions"]) DescribedAsSageMakerDoes(def, metric);
  }
  return out;
}

namespace {

// A training job's LastModifiedTime: "when the status of the training job was last modified"
// (its creation, each secondary status, its end). Its metrics do not count: they moved it at
// every line a trainer printed, and the SageMaker SDK stamps its status lines with it (a
// "Starting" printed at the time of the call; an SDK pass).
int64_t TrainingJobLastModified(const Trial& t) {
  int64_t last = std::max(t.creation_ms, t.end_ms);
  for (const auto& st : t.secondary) last = std::max(last, st.start_ms);
  return last;
}

// A list request's CreationTimeAfter/Before or LastModifiedTimeAfter/Before filter (`key`, epoch
// seconds; checked by CheckTimestamp): whether a row at `ms` passes; true when not given.
bool TimeFilterPasses(const Json& req, const char* key, int64_t ms, bool after) {
  if (!req.contains(key) || !req[key].is_number()) return true;
  const double t = req[key].get<double>();
  return after ? Epoch(ms) > t : Epoch(ms) < t;
}

// The resource an ARN names, for the tag actions: its tuning job (a training job's tags are its
// tuning job's here) and whether the ARN was a training job's; nullopt when neither is known.
struct TaggedResource {
  std::string job;  // the tuning job's name, or the training job's
  bool training_job = false;
  std::vector<proto::Tag> tags;
};
Json TagsJson(const std::vector<proto::Tag>& tags) {
  Json out = Json::array();
  for (const auto& t : tags) out.push_back({{"Key", t.key.value_or("")}, {"Value", t.value.value_or("")}});
  return out;
}

// The tags a training job has: its own, or (a record from before training jobs kept their own)
// its tuning job's.
const std::vector<proto::Tag>& TrainingJobTags(const CoordinatorCore& c, const Trial& t) {
  static const std::vector<proto::Tag> kNone;
  if (t.tags) return *t.tags;
  const TuningJob* owner = c.FindJob(t.tuning_job);
  return owner ? owner->spec.tags : kNone;
}

std::optional<TaggedResource> FindTagged(CoordinatorCore& c, const std::string& arn) {
  const size_t slash = arn.rfind('/');
  const std::string name = slash == std::string::npos ? "" : arn.substr(slash + 1);
  const TuningJob* j = c.FindJob(name);
  if (j && EqualsIgnoringCase(c.JobArn(j->name), arn)) return TaggedResource{j->name, false, j->spec.tags};
  if (const Trial* t = c.FindTrial(name); t && !t->Unlaunched() && EqualsIgnoringCase(c.TrainingJobArn(t->name), arn)) {
    if (t->tags || c.FindJob(t->tuning_job)) return TaggedResource{t->name, true, TrainingJobTags(c, *t)};
  }
  return std::nullopt;
}

// The request's ResourceArn. Not an ARN at all is the request's fault (botocore's ResourceArn
// pattern), refused before any lookup; an ARN nothing here has is UnknownArn's.
Result<std::string> RequiredArn(const Json& req) {
  auto arn = RequiredString(req, "ResourceArn");
  if (!arn.ok()) return arn;
  const bool shaped = arn->rfind("arn:aws", 0) == 0 && arn->find(":sagemaker:") != std::string::npos &&
                      std::count(arn->begin(), arn->end(), ':') >= 5;
  if (!shaped) {
    return Status::InvalidArgument("ResourceArn must be a SageMaker ARN (arn:aws:sagemaker:REGION:ACCOUNT:TYPE/NAME, "
                                   "as CreateHyperParameterTuningJob and DescribeTrainingJob return it); got " + *arn);
  }
  return arn;
}

ApiResponse UnknownArn(const std::string& arn) {
  return AwsError(400, "ResourceNotFound",
                  "no tuning job or training job of this coordinator has the ARN " + arn +
                      " (hpo keeps tags for those only)");
}

// ListTags for a tuning job's or one of its training jobs' ARN: the tuning job's Tags, or the
// training job's own (its tuning job's when it was made: SageMaker copies them onto every
// training job). The SDK's Estimator.attach() and tuner.best_estimator() call it every time.
ApiResponse ListTags(Dispatcher& d, const Json& req) {
  if (auto bad = CheckMembers(req, {{"ResourceArn", kString}, {"MaxResults", kInteger}, {"NextToken", kString}}))
    return *bad;
  auto arn = RequiredArn(req);
  if (!arn.ok()) return FromStatus(arn.status());
  // SageMaker's ListTags takes 50 and up, no maximum (a tuning job holds at most 50 tags): a
  // paginator's larger page size was refused "from 1 to 100".
  auto page = ReadPage(req, 50, std::numeric_limits<int32_t>::max(), "ListTags " + *arn);
  if (!page.ok()) return FromStatus(page.status());
  const auto found = d.WithCore([&](CoordinatorCore& c) { return FindTagged(c, *arn); });
  if (!found) return UnknownArn(*arn);
  std::vector<Json> rows;  // in key order (keys are unique), for paging
  for (Json& t : TagsJson(found->tags)) rows.push_back(std::move(t));
  std::sort(rows.begin(), rows.end(), [](const Json& a, const Json& b) { return a["Key"] < b["Key"]; });
  return Ok(Paginate<Json>(
      rows, *page, false, "Tags", [](const Json& row) { return SortKey{0, row["Key"].get<std::string>(), ""}; },
      [](const Json& row) { return row; }));
}

// AddTags and DeleteTags change a tuning job's tags, or a training job's own; a tuning job's
// change reaches the training jobs it makes from then on, not those it made.
ApiResponse ChangeTags(Dispatcher& d, const std::string& arn, const std::function<void(std::vector<proto::Tag>&)>& change,
                       const std::vector<proto::Tag>* validate_first) {
  if (validate_first) {
    if (proto::FieldErrors errs = proto::ValidateTags(*validate_first, proto::Spelling::kApi); !errs.empty()) {
      return AwsError(400, "ValidationException", proto::JoinErrors(errs));
    }
  }
  return d.WithCore([&](CoordinatorCore& c) {  // read, change and store under one lock
    auto found = FindTagged(c, arn);
    if (!found) return UnknownArn(arn);
    change(found->tags);
    if (found->tags.size() > 50) {
      return AwsError(400, "ValidationException",
                      arn + " would have " + std::to_string(found->tags.size()) + " tags; a resource has at most 50");
    }
    Status s = found->training_job ? c.SetTrainingJobTags(found->job, std::move(found->tags))
                                   : c.SetTags(found->job, std::move(found->tags));
    return s.ok() ? Ok(Json::object()) : FromStatus(s);
  });
}

ApiResponse AddTags(Dispatcher& d, const Json& req) {
  if (auto bad = CheckMembers(req, {{"ResourceArn", kString}, {"Tags", kList}})) return *bad;
  auto arn = RequiredArn(req);
  if (!arn.ok()) return FromStatus(arn.status());
  if (!req.contains("Tags") || !req["Tags"].is_array()) {
    return AwsError(400, "ValidationException", "Tags is required: a list of 0-50 {\"Key\": ..., \"Value\": ...}");
  }
  std::vector<proto::Tag> add;
  for (size_t i = 0; i < req["Tags"].size(); ++i) {
    const Json& t = req["Tags"][i];
    const std::string at = "Tags[" + std::to_string(i) + "]";
    if (!t.is_object()) return AwsError(400, "ValidationException", at + " must be an object {Key, Value}");
    for (const auto& [k, v] : t.items()) {
      if (k != "Key" && k != "Value") return AwsError(400, "ValidationException", at + "." + k + " is not a member of Tag");
      if (!v.is_string()) return AwsError(400, "ValidationException", at + "." + k + " must be a string");
    }
    proto::Tag tag;
    if (t.contains("Key")) tag.key = t["Key"].get<std::string>();
    if (t.contains("Value")) tag.value = t["Value"].get<std::string>();
    add.push_back(std::move(tag));
  }
  ApiResponse r = ChangeTags(
      d, *arn,
      [&](std::vector<proto::Tag>& tags) {
        for (const proto::Tag& t : add) {  // a key already there takes the new value
          auto same = std::find_if(tags.begin(), tags.end(), [&](const proto::Tag& o) { return o.key == t.key; });
          if (same != tags.end()) *same = t;
          else tags.push_back(t);
        }
      },
      &add);
  if (r.status != 200) return r;
  Json added = Json::array();
  for (const auto& t : add) added.push_back({{"Key", t.key.value_or("")}, {"Value", t.value.value_or("")}});
  return Ok({{"Tags", added}});
}

ApiResponse DeleteTags(Dispatcher& d, const Json& req) {
  if (auto bad = CheckMembers(req, {{"ResourceArn", kString}, {"TagKeys", kList}})) return *bad;
  auto arn = RequiredArn(req);
  if (!arn.ok()) return FromStatus(arn.status());
  const Json* keys = req.contains("TagKeys") ? &req["TagKeys"] : nullptr;
  if (!keys || !keys->is_array() || keys->empty() || keys->size() > 50 ||
      !std::all_of(keys->begin(), keys->end(), [](const Json& k) {
        return k.is_string() && !k.get<std::string>().empty() && k.get<std::string>().size() <= 128;
      })) {
    return AwsError(400, "ValidationException", "TagKeys is required: a list of 1-50 keys, each 1-128 characters");
  }
  std::set<std::string> gone;
  for (const auto& k : *keys) gone.insert(k.get<std::string>());
  return ChangeTags(
      d, *arn,
      [&](std::vector<proto::Tag>& tags) {
        std::erase_if(tags, [&](const proto::Tag& t) { return t.key && gone.count(*t.key); });
      },
      nullptr);
}

ApiResponse ListJobs(Dispatcher& d, const Json& req) {
  if (auto bad = CheckMembers(req, {{"NextToken", kString}, {"MaxResults", kInteger}, {"SortBy", kString},
                                    {"SortOrder", kString}, {"NameContains", kString},
                                    {"CreationTimeAfter", kTimestamp}, {"CreationTimeBefore", kTimestamp},
                                    {"LastModifiedTimeAfter", kTimestamp}, {"LastModifiedTimeBefore", kTimestamp},
                                    {"StatusEquals", kString}})) {
    return *bad;
  }
  auto page = ReadPage(req, 10, 100, "ListHyperParameterTuningJobs");
  if (!page.ok()) return FromStatus(page.status());
  auto desc = Descending(req);
  if (!desc.ok()) return FromStatus(desc.status());
  auto sort_by_r = OptionalString(req, "SortBy", "Name", {"Name", "Status", "CreationTime"});
  if (!sort_by_r.ok()) return FromStatus(sort_by_r.status());
  auto contains_r = OptionalString(req, "NameContains", "");
  if (!contains_r.ok()) return FromStatus(contains_r.status());
  if (Status s = CheckNameContains(req, *contains_r); !s.ok()) return FromStatus(s);
  auto status_r = OptionalString(req, "StatusEquals", "",
                                 {"Completed", "InProgress", "Failed", "Stopped", "Stopping", "Deleting", "DeleteFailed"});
  if (!status_r.ok()) return FromStatus(status_r.status());
  for (const char* k : {"CreationTimeAfter", "CreationTimeBefore", "LastModifiedTimeAfter", "LastModifiedTimeBefore"}) {
    if (Status s = CheckTimestamp(req, k); !s.ok()) return FromStatus(s);
  }
  const std::string sort_by = *sort_by_r, contains = *contains_r, status_eq = *status_r;
  auto time_ok = [&](const char* key, int64_t ms, bool after) { return TimeFilterPasses(req, key, ms, after); };
  // Filtered and sorted on the jobs' own fields, and only the page's rows described: describing
  // every job (its spec, its training jobs counted) under the core's lock cost 0.1-0.2 s per
  // call with 2,000 jobs whatever MaxResults, and a paginator paid it on every page.
  Json out;
  d.WithCore([&](CoordinatorCore& c) {
    std::vector<const TuningJob*> rows;
    for (const TuningJob* j : c.Jobs()) {
      if (!contains.empty()) {
        if (AsciiLower(j->name).find(AsciiLower(contains)) == std::string::npos) continue;
      }
      if (!status_eq.empty() && j->ShownStatus() != status_eq) continue;
      if (!time_ok("CreationTimeAfter", j->creation_ms, true) || !time_ok("CreationTimeBefore", j->creation_ms, false) ||
          !time_ok("LastModifiedTimeAfter", j->last_modified_ms, true) ||
          !time_ok("LastModifiedTimeBefore", j->last_modified_ms, false)) {
        continue;
      }
      rows.push_back(j);
    }
    std::function<SortKey(const TuningJob* const&)> key = [&](const TuningJob* const& j) {
      SortKey k;
      k.name = j->name;
      if (sort_by == "Status") k.text = j->ShownStatus();
      if (sort_by == "CreationTime") k.number = Epoch(j->creation_ms);
      return k;
    };
    std::stable_sort(rows.begin(), rows.end(), [&](const TuningJob* a, const TuningJob* b) {
      return *desc ? key(b) < key(a) : key(a) < key(b);
    });
    std::function<Json(const TuningJob* const&)> encode = [&](const TuningJob* const& j) {
      Json s;
      auto desc_r = c.Describe(j->name, d.Now());
      if (!desc_r.ok()) return s;
      Json full = proto::EncodeDescribeResponse(*desc_r);
      s["HyperParameterTuningJobName"] = j->name;
      s["HyperParameterTuningJobArn"] = full["HyperParameterTuningJobArn"];
      s["HyperParameterTuningJobStatus"] = j->ShownStatus();
      s["Strategy"] = full["HyperParameterTuningJobConfig"]["Strategy"];
      s["CreationTime"] = full["CreationTime"];
      if (full.contains("HyperParameterTuningEndTime")) s["HyperParameterTuningEndTime"] = full["HyperParameterTuningEndTime"];
      s["LastModifiedTime"] = full["LastModifiedTime"];
      s["TrainingJobStatusCounters"] = full["TrainingJobStatusCounters"];
      s["ObjectiveStatusCounters"] = full["ObjectiveStatusCounters"];
      if (full["HyperParameterTuningJobConfig"].contains("ResourceLimits")) {
        s["ResourceLimits"] = full["HyperParameterTuningJobConfig"]["ResourceLimits"];
      }
      return s;
    };
    out = Paginate<const TuningJob*>(rows, *page, *desc, "HyperParameterTuningJobSummaries", key, encode);
    return 0;
  });
  return Ok(out);
}

// ListTrainingJobs: the training jobs of every tuning job here (hpo runs no others), as
// SageMaker's TrainingJobSummary rows; boto3 scripts find a tuning job's training jobs with
// NameContains. Name and Status sort by those (then the name), CreationTime by time then name.
ApiResponse ListAllTrainingJobs(Dispatcher& d, const Json& req) {
  if (auto bad = CheckMembers(req, {{"NextToken", kString}, {"MaxResults", kInteger},
                                    {"CreationTimeAfter", kTimestamp}, {"CreationTimeBefore", kTimestamp},
                                    {"LastModifiedTimeAfter", kTimestamp}, {"LastModifiedTimeBefore", kTimestamp},
                                    {"NameContains", kString}, {"StatusEquals", kString}, {"SortBy", kString},
                                    {"SortOrder", kString}, {"WarmPoolStatusEquals", kString},
                                    {"TrainingPlanArnEquals", kString}})) {
    return *bad;
  }
  // No training job here runs on a SageMaker training plan, and none has a warm pool status of
  // its own (KeepAlivePeriodInSeconds keeps a worker's slot and staged data for the tuning job
  // instead): filtered by either, the list is empty, as SageMaker's would be for such jobs.
  auto warm_r = OptionalString(req, "WarmPoolStatusEquals", "", {"Available", "Terminated", "Reused", "InUse"});
  if (!warm_r.ok()) return FromStatus(warm_r.status());
  const bool none_match = (req.contains("TrainingPlanArnEquals") && req["TrainingPlanArnEquals"].is_string()) ||
                         !warm_r->empty();
  auto page = ReadPage(req, 10, 100, "ListTrainingJobs");
  if (!page.ok()) return FromStatus(page.status());
  auto desc = Descending(req);
  if (!desc.ok()) return FromStatus(desc.status());
  auto sort_by_r = OptionalString(req, "SortBy", "CreationTime", {"Name", "CreationTime", "Status"});
  if (!sort_by_r.ok()) return FromStatus(sort_by_r.status());
  auto contains_r = OptionalString(req, "NameContains", "");
  if (!contains_r.ok()) return FromStatus(contains_r.status());
  if (Status s = CheckNameContains(req, *contains_r); !s.ok()) return FromStatus(s);
  // Deleting: botocore's enum has it (no training job here is ever Deleting).
  auto status_r = OptionalString(req, "StatusEquals", "",
                                 {"InProgress", "Completed", "Failed", "Stopping", "Stopped", "Deleting"});
  if (!status_r.ok()) return FromStatus(status_r.status());
  for (const char* k : {"CreationTimeAfter", "CreationTimeBefore", "LastModifiedTimeAfter", "LastModifiedTimeBefore"}) {
    if (Status s = CheckTimestamp(req, k); !s.ok()) return FromStatus(s);
  }
  const std::string sort_by = *sort_by_r, contains = AsciiLower(*contains_r), status_eq = *status_r;
  auto time_ok = [&](const char* key, int64_t ms, bool after) { return TimeFilterPasses(req, key, ms, after); };
  Json out = d.WithCore([&](CoordinatorCore& c) {
    std::vector<SortKey> rows;
    for (const TuningJob* j : c.Jobs()) {
      for (const Trial* t : c.TrialsOf(j->name)) {
        if (none_match || t->Unlaunched()) continue;  // not a training job yet (Trial::Unlaunched)
        if (!contains.empty() && AsciiLower(t->name).find(contains) == std::string::npos) continue;
        if (!status_eq.empty() && TrainingJobStatusOf(*t) != status_eq) continue;
        const int64_t modified = TrainingJobLastModified(*t);
        if (!time_ok("CreationTimeAfter", t->creation_ms, true) || !time_ok("CreationTimeBefore", t->creation_ms, false) ||
            !time_ok("LastModifiedTimeAfter", modified, true) || !time_ok("LastModifiedTimeBefore", modified, false)) {
          continue;
        }
        SortKey k;
        k.name = t->name;
        if (sort_by == "CreationTime") k.number = static_cast<double>(t->creation_ms);
        if (sort_by == "Status") k.text = TrainingJobStatusOf(*t);
        rows.push_back(std::move(k));
      }
    }
    std::sort(rows.begin(), rows.end(), [&](const SortKey& a, const SortKey& b) { return *desc ? b < a : a < b; });
    return Paginate<SortKey>(
        rows, *page, *desc, "TrainingJobSummaries", [](const SortKey& k) { return k; },
        [&](const SortKey& k) {
          const Trial* t = c.FindTrial(k.name);
          Json r = {{"TrainingJobName", t->name},
                    {"TrainingJobArn", c.TrainingJobArn(t->name)},
                    {"CreationTime", Epoch(t->creation_ms)}};
          if (t->end_ms) r["TrainingEndTime"] = Epoch(t->end_ms);
          r["LastModifiedTime"] = Epoch(TrainingJobLastModified(*t));
          r["TrainingJobStatus"] = TrainingJobStatusOf(*t);
          r["SecondaryStatus"] = t->SecondaryStatus();
          return r;
        });
  });
  return Ok(out);
}

ApiResponse ListTrainingJobs(Dispatcher& d, const Json& req) {
  if (auto bad = CheckMembers(req, {{"HyperParameterTuningJobName", kString}, {"NextToken", kString},
                                    {"MaxResults", kInteger}, {"StatusEquals", kString}, {"SortBy", kString},
                                    {"SortOrder", kString}})) {
    return *bad;
  }
  auto name = RequiredName(req, "HyperParameterTuningJobName", 32);
  if (!name.ok()) return FromStatus(name.status());
  auto page = ReadPage(req, 10, 100, "ListTrainingJobsForHyperParameterTuningJob " + AsciiLower(*name));
  if (!page.ok()) return FromStatus(page.status());
  auto desc = Descending(req);
  if (!desc.ok()) return FromStatus(desc.status());
  auto sort_by_r =
      OptionalString(req, "SortBy", "Name", {"Name", "CreationTime", "Status", "FinalObjectiveMetricValue"});
  if (!sort_by_r.ok()) return FromStatus(sort_by_r.status());
  auto status_r =
      OptionalString(req, "StatusEquals", "", {"InProgress", "Completed", "Failed", "Stopping", "Stopped", "Deleting"});
  if (!status_r.ok()) return FromStatus(status_r.status());
  const std::string sort_by = *sort_by_r, status_eq = *status_r;
  // Filter and sort on the trials' own fields, and build summaries for this page's rows only:
  // paging through a 10,000-trial job is then 100 sorts of pointers, not 100 x 10,000 summaries
  // made under the core's lock.
  std::optional<Json> out = d.WithCore([&](CoordinatorCore& c) -> std::optional<Json> {
    const TuningJob* j = c.FindJob(*name);
    if (!j) return std::nullopt;
    // An ended job's training jobs no longer change: its rows are sorted once for all its pages
    // (reading a 21,000-training-job job took 7 s of sorts, one per page of 100).
    static std::mutex cache_mu;
    static std::string cache_key;
    static std::shared_ptr<const std::vector<SortKey>> cache_rows;
    // Ended with every training job ended: a job that failed (or reached its runtime quota)
    // ends at once while its training jobs are still stopping, and those change afterwards.
    const bool settled = j->Terminal() && !c.AnyUnfinished(*j);
    const std::string key = settled ? std::to_string(c.instance()) + "\n" + j->name + "\n" +
                                                std::to_string(j->creation_ms) + "\n" + std::to_string(j->end_ms) +
                                                "\n" + std::to_string(j->trials.size()) + "\n" + sort_by + "\n" +
                                                (*desc ? "d" : "a") + "\n" + status_eq
                                          : "";
    std::shared_ptr<const std::vector<SortKey>> keyed;
    if (!key.empty()) {
      std::lock_guard<std::mutex> lock(cache_mu);
      if (cache_key == key) keyed = cache_rows;
    }
    if (!keyed) {
      // Each row's key once (not per comparison: a sort of 10,000 rows compares ~280,000 times).
      // CreationTime ties (the same millisecond) go by the training job's number, zero-padded,
      // so that creation order, the order the core keeps them in, is the order of the keys: the
      // dashboard pages by CreationTime and then no page sorts (names alone put ...-1000-...
      // before ...-999-...). The key's name is the training job's.
      auto rows = std::make_shared<std::vector<SortKey>>();
      for (const Trial* t : c.TrialsOf(*name)) {
        if (t->Unlaunched()) continue;  // not a training job yet (Trial::Unlaunched)
        if (!status_eq.empty() && TrainingJobStatusOf(*t) != status_eq) continue;
        if (sort_by == "FinalObjectiveMetricValue" && !t->ShowsObjective()) continue;
        SortKey k;
        k.name = t->name;
        if (sort_by == "CreationTime") {
          k.number = static_cast<double>(t->creation_ms);
          char n[16];
          std::snprintf(n, sizeof n, "%010d", t->index);
          k.text = n;
        }
        if (sort_by == "Status") k.text = TrainingJobStatusOf(*t);
        if (sort_by == "FinalObjectiveMetricValue") k.number = *t->objective;
        rows->push_back(std::move(k));
      }
      auto less = [&](const SortKey& a, const SortKey& b) { return *desc ? b < a : a < b; };
      if (!std::is_sorted(rows->begin(), rows->end(), less)) std::sort(rows->begin(), rows->end(), less);
      keyed = rows;
      if (!key.empty()) {
        std::lock_guard<std::mutex> lock(cache_mu);
        cache_key = key;
        cache_rows = keyed;
      }
    }
    Json page_json = Paginate<SortKey>(
        *keyed, *page, *desc, "TrainingJobSummaries", [](const SortKey& k) { return k; },
        [&c](const SortKey& k) {
          const Trial* t = c.FindTrial(k.name);
          return t ? proto::EncodeTrainingJobSummary(c.Summary(*t), proto::Spelling::kApi) : Json::object();
        });
    return page_json;
  });
  if (!out) return AwsError(400, "ResourceNotFound", "no tuning job named " + *name);
  return Ok(*out);
}

ApiResponse DeleteJob(Dispatcher& d, const Json& req) {
  if (auto bad = CheckMembers(req, {{"HyperParameterTuningJobName", kString}})) return *bad;
  auto name = RequiredName(req, "HyperParameterTuningJobName", 32);
  if (!name.ok()) return FromStatus(name.status());
  // The bulk a slice at a time, letting go of the core between slices.
  if (Status s = d.DeleteTuningJob(*name); !s.ok()) return FromStatus(s);  // stops early at shutdown
  return Ok(Json::object());
}

ApiResponse StopJob(Dispatcher& d, const Json& req) {
  if (auto bad = CheckMembers(req, {{"HyperParameterTuningJobName", kString}})) return *bad;
  auto name = RequiredName(req, "HyperParameterTuningJobName", 32);
  if (!name.ok()) return FromStatus(name.status());
  std::vector<Outgoing> out;
  Status s = d.WithCore([&](CoordinatorCore& c) { return c.Stop(*name, d.Now(), &out); });
  if (!s.ok()) return FromStatus(s);
  d.Post(std::move(out));
  return Ok(Json::object());
}

ApiResponse StopTrainingJob(Dispatcher& d, const Json& req) {
  if (auto bad = CheckMembers(req, {{"TrainingJobName", kString}})) return *bad;
  auto name = RequiredName(req, "TrainingJobName", 63);
  if (!name.ok()) return FromStatus(name.status());
  std::vector<Outgoing> out;
  Status s = d.WithCore([&](CoordinatorCore& c) { return c.StopTrainingJob(*name, d.Now(), &out); });
  if (!s.ok()) return FromStatus(s);
  d.Post(std::move(out));
  return Ok(Json::object());
}

// A secondary status's message when hpo recorded none.
std::string DefaultStatusMessage(const std::string& status) {
  static const std::pair<const char*, const char*> kMessages[] = {
      {"Starting", "Preparing the instances for training"},
      {"Downloading", "Downloading input data"},
      {"DownloadingTrainingImage", "Downloading the training image"},
      {"Training", "Training in progress"},
      {"Uploading", "Uploading generated training model"},
      {"Completed", "Training job completed"},
      {"Stopping", "Stopping the training job"},
      {"Stopped", "Training job stopped"},
      {"Failed", "Training job failed"},
      {"Interrupted", "Training job interrupted"},
      {"MaxRuntimeExceeded", "Training job stopped: MaxRuntimeInSeconds exceeded"},
      {"MaxWaitTimeExceeded", "Training job stopped: MaxWaitTimeInSeconds exceeded"},
      {"Restarting", "Restarting the training job"},
      {"Pending", "Waiting for capacity"},
  };
  for (const auto& [s, m] : kMessages) {
    if (status == s) return m;
  }
  return status;
}

// DescribeTrainingJob's answer for training job `t` (launched). `definitions`, when given, keeps
// each definition's request form across calls (a Search builds thousands of these).
Json TrainingJobDocument(CoordinatorCore& c, const Trial& t, int64_t now_ms, std::map<std::string, Json>* definitions) {
  const TuningJob* j = c.FindJob(t.tuning_job);
  Json out;
  // The definition as a training job's request, once per definition and instance option for a
  // Search over many training jobs.
  const std::string cache_key = t.tuning_job + "\n" + std::to_string(j->creation_ms) + "\n" + t.definition_name + "\n" +
                                std::to_string(t.resource_option);
  const Json* cached = nullptr;
  if (definitions) {
    if (auto it = definitions->find(cache_key); it != definitions->end()) cached = &it->second;
  }
  const proto::TrainingJobDefinition* def = nullptr;
  for (const auto* dd : j->spec.Definitions()) {
    if (!def || dd->definition_name.value_or("") == t.definition_name) def = dd;
  }
  proto::TuningJobSpec one;
  if (def && !cached) {
    // With instance configs to choose from, the one this training job was given.
    const std::optional<proto::ResourceConfig> rc = proto::ResourceOption(*def, t.resource_option);
    one.training_job_definition = rc ? proto::WithResourceConfig(*def, *rc) : *def;
  }
  Json fresh;
  if (!cached) {
    fresh = proto::EncodeCreateRequest(one).value("TrainingJobDefinition", Json::object());
    cached = definitions ? &definitions->emplace(cache_key, std::move(fresh)).first->second : &fresh;
  }
  const Json& dj = *cached;
  out["TrainingJobName"] = t.name;
  out["TrainingJobArn"] = c.TrainingJobArn(t.name);
  out["TuningJobArn"] = c.JobArn(j->name);
  std::string output = dj.contains("OutputDataConfig") ? dj["OutputDataConfig"].value("S3OutputPath", "") : "";
  while (!output.empty() && output.back() == '/') output.pop_back();
  // Where the worker put the model (worker/artifacts.h): model.tar.gz, or with CompressionType
  // NONE the model's files under the prefix .../output/model/, which the SageMaker SDK then
  // deploys as an S3Prefix with CompressionType None.
  const bool uncompressed = dj.contains("OutputDataConfig") && dj["OutputDataConfig"].value("CompressionType", "") == "NONE";
  out["ModelArtifacts"] = {
      {"S3ModelArtifacts", output + "/" + t.name + (uncompressed ? "/output/model/" : "/output/model.tar.gz")}};
  proto::TrainingJobSummary s = c.Summary(t);
  out["TrainingJobStatus"] = *s.training_job_status;
  out["SecondaryStatus"] = t.SecondaryStatus();
  if (!t.failure_reason.empty()) out["FailureReason"] = t.failure_reason;
  out["HyperParameters"] = t.hyperparameters;
  for (const char* k : {"AlgorithmSpecification", "RoleArn", "InputDataConfig", "OutputDataConfig", "ResourceConfig",
                        "VpcConfig", "StoppingCondition", "EnableNetworkIsolation",
                        "EnableInterContainerTrafficEncryption", "EnableManagedSpotTraining", "CheckpointConfig",
                        "RetryStrategy", "Environment"}) {
    if (dj.contains(k)) out[k] = dj[k];
  }
  // SageMaker always describes OutputDataConfig.KmsKeyId ("" when none), and the SDK's
  // Estimator.attach() reads it without a fallback.
  if (out.contains("OutputDataConfig") && !out["OutputDataConfig"].contains("KmsKeyId")) {
    out["OutputDataConfig"]["KmsKeyId"] = "";
  }
  // SageMaker describes these as false when the request left them out; code reading
  // desc["EnableManagedSpotTraining"] raised KeyError here.
  for (const char* k : {"EnableNetworkIsolation", "EnableInterContainerTrafficEncryption", "EnableManagedSpotTraining"}) {
    if (!out.contains(k)) out[k] = false;
  }
  if (!out.contains("AlgorithmSpecification")) out["AlgorithmSpecification"] = {{"TrainingInputMode", "File"}};
  if (!out.contains("ResourceConfig")) out["ResourceConfig"] = {{"VolumeSizeInGB", 1}};
  if (!out.contains("StoppingCondition")) out["StoppingCondition"] = {{"MaxRuntimeInSeconds", proto::kDefaultMaxRuntimeInSeconds}};
  out["CreationTime"] = Epoch(t.creation_ms);
  if (t.start_ms) out["TrainingStartTime"] = Epoch(t.start_ms);
  if (t.end_ms) out["TrainingEndTime"] = Epoch(t.end_ms);
  int64_t last = t.creation_ms;
  Json tr = Json::array();
  for (size_t i = 0; i < t.secondary.size(); ++i) {
    const auto& st = t.secondary[i];
    Json e = {{"Status", st.status}, {"StartTime", Epoch(st.start_ms)}};
    if (i + 1 < t.secondary.size()) e["EndTime"] = Epoch(t.secondary[i + 1].start_ms);
    // SageMaker gives every transition a message, and the SDK's log waiter reads it.
    e["StatusMessage"] = !st.message.empty() ? st.message : DefaultStatusMessage(st.status);
    tr.push_back(std::move(e));
    last = std::max(last, st.start_ms);
  }
  out["SecondaryStatusTransitions"] = tr;
  // SageMaker: the Timestamp is "the date and time that the algorithm emitted the metric".
  Json fm = Json::array();
  for (const auto& [m, v] : t.final_metrics) {
    auto when = t.final_metric_ms.find(m);
    const int64_t ts = when != t.final_metric_ms.end() && when->second > 0 ? when->second
                       : t.end_ms                                        ? t.end_ms
                                                                          : last;
    fm.push_back({{"MetricName", m}, {"Value", v}, {"Timestamp", Epoch(ts)}});
  }
  out["LastModifiedTime"] = Epoch(TrainingJobLastModified(t));
  out["FinalMetricDataList"] = fm;
  if (t.start_ms) {
    const auto [training, billable] = t.TrainingAndBillableSeconds(now_ms, c.options().spot_price_ratio);
    out["TrainingTimeInSeconds"] = training;
    out["BillableTimeInSeconds"] = billable;
  }
  return out;
}

ApiResponse DescribeTrainingJob(Dispatcher& d, const Json& req) {
  if (auto bad = CheckMembers(req, {{"TrainingJobName", kString}})) return *bad;
  auto name = RequiredName(req, "TrainingJobName", 63);
  if (!name.ok()) return FromStatus(name.status());
  Json out;
  bool found = d.WithCore([&](CoordinatorCore& c) {
    const Trial* t = c.FindTrial(*name);
    if (!t || t->Unlaunched()) return false;
    out = TrainingJobDocument(c, *t, d.Now(), nullptr);
    return true;
  });
  // SageMaker's answer, not its API model's ResourceNotFound (proto::kRequestedResourceNotFound).
  if (!found) {
    return AwsError(400, "ValidationException",
                    std::string(proto::kRequestedResourceNotFound) + " No training job named " + *name +
                        "; ListTrainingJobsForHyperParameterTuningJob lists a tuning job's training jobs");
  }
  return Ok(out);
}

// Search: SageMaker's search over the training jobs and tuning jobs here (coordinator/search.h
// has the expression's semantics). Each resource is matched as the document Search returns for
// it, built under the core's lock (a definition's request form once per definition); only the
// page's records are encoded. Sorted by SortBy (LastModifiedTime), Descending by default; a
// resource without the property sorts last. Paged with NextToken as the list actions are.
ApiResponse Search(Dispatcher& d, const Json& req) {
  if (auto bad = CheckMembers(req, {{"Resource", kString}, {"SearchExpression", kObject}, {"SortBy", kString},
                                    {"SortOrder", kString}, {"NextToken", kString}, {"MaxResults", kInteger},
                                    {"CrossAccountFilterOption", kString}, {"VisibilityConditions", kList}})) {
    return *bad;
  }
  auto resource_name = RequiredString(req, "Resource");
  if (!resource_name.ok()) return FromStatus(resource_name.status());
  auto resource = ParseSearchResource(*resource_name);
  if (!resource.ok()) return FromStatus(resource.status());
  std::optional<SearchExpression> expression;
  if (req.contains("SearchExpression") && req["SearchExpression"].is_object()) {
    auto e = SearchExpression::Parse(req["SearchExpression"], *resource);
    if (!e.ok()) return FromStatus(e.status());
    expression = std::move(e).value();
  }
  auto sort_by_r = OptionalString(req, "SortBy", "LastModifiedTime");
  if (!sort_by_r.ok()) return FromStatus(sort_by_r.status());
  auto sort_by = SearchProperty::Parse(*sort_by_r, *resource, "SortBy");
  if (!sort_by.ok()) return FromStatus(sort_by.status());
  bool desc = true;
  if (req.contains("SortOrder") && !req["SortOrder"].is_null()) {
    auto dr = Descending(req);
    if (!dr.ok()) return FromStatus(dr.status());
    desc = *dr;
  }
  auto cross_r = OptionalString(req, "CrossAccountFilterOption", "SameAccount", {"SameAccount", "CrossAccount"});
  if (!cross_r.ok()) return FromStatus(cross_r.status());
  // VisibilityConditions: a resource with tag KEY is shown only when its value is VALUE.
  std::vector<std::pair<std::string, std::string>> visible;
  if (req.contains("VisibilityConditions") && req["VisibilityConditions"].is_array()) {
    const Json& list = req["VisibilityConditions"];
    if (list.empty() || list.size() > 5) {
      return AwsError(400, "ValidationException", "VisibilityConditions must hold 1 to 5 conditions");
    }
    for (size_t i = 0; i < list.size(); ++i) {
      const std::string at = "VisibilityConditions[" + std::to_string(i) + "]";
      const Json& v = list[i];
      const std::string key = v.is_object() && v.contains("Key") && v["Key"].is_string() ? v["Key"].get<std::string>() : "";
      if (key.rfind("Tags.", 0) != 0 || key.size() == 5 || !v.contains("Value") || !v["Value"].is_string()) {
        return AwsError(400, "ValidationException", at + " must be {\"Key\": \"Tags.KEY\", \"Value\": \"...\"}");
      }
      visible.emplace_back(key.substr(5), v["Value"].get<std::string>());
    }
  }
  // The token's scope names the search: a token of another expression marks a place in rows it
  // never had.
  const std::string expression_text = req.contains("SearchExpression") ? req["SearchExpression"].dump() : "";
  char digest[17];
  std::snprintf(digest, sizeof digest, "%016zx", std::hash<std::string>{}(expression_text + "\n" + *cross_r));
  auto page = ReadPage(req, 10, 100, "Search " + *resource_name + " " + digest);
  if (!page.ok()) return FromStatus(page.status());
  const bool training = *resource == SearchResource::kTrainingJob;
  const std::vector<std::string>& members = SearchResourceMembers(*resource);
  const int64_t now = d.Now();
  std::map<std::string, Json> definitions;  // kept across the chunks below
  auto document = [&](CoordinatorCore& c, const std::string& name) {
    return ResourceDocument(c, training, name, now, &definitions);  // nullopt: deleted meanwhile
  };
  auto shown = [&](const Json& doc) {
    for (const auto& [key, value] : visible) {
      for (const Json& t : doc["Tags"]) {
        if (t["Key"] == key && t["Value"] != value) return false;
      }
    }
    return true;
  };
  // The candidates' names first, then their documents in chunks, each under the core's lock
  // once: a search over 50,000 training jobs builds as many documents (about 20 us each here),
  // and the dispatcher and other API calls get the core between chunks, not after a second.
  std::vector<std::string> names;
  if (*cross_r == "SameAccount") {  // nothing here is shared from another account
    d.WithCore([&](CoordinatorCore& c) {
      for (const TuningJob* j : c.Jobs()) {
        if (!training) {
          names.push_back(j->name);
          continue;
        }
        for (const Trial* t : c.TrialsOf(j->name)) {
          if (!t->Unlaunched()) names.push_back(t->name);
        }
      }
      return 0;
    });
  }
  constexpr size_t kChunk = 256;
  std::vector<SortKey> rows;
  for (size_t start = 0; start < names.size(); start += kChunk) {
    // A moment for the others between chunks: a mutex is not fair, and taken back at once the
    // lock went to this thread again (Dispatcher::DeleteTuningJob found the same).
    if (start > 0) std::this_thread::sleep_for(std::chrono::milliseconds(1));
    d.WithCore([&](CoordinatorCore& c) {
      for (size_t i = start; i < std::min(names.size(), start + kChunk); ++i) {
        const std::optional<Json> doc = document(c, names[i]);
        if (!doc || !shown(*doc) || (expression && !expression->Matches(*doc))) continue;
        const SearchSortValue v = sort_by->SortValue(*doc);
        SortKey k;
        k.name = names[i];
        if (!v.present) {
          k.number = desc ? -1e308 : 1e308;  // last in either order
        } else {
          k.number = v.number;
          k.text = v.text;
        }
        rows.push_back(std::move(k));
      }
      return 0;
    });
  }
  std::sort(rows.begin(), rows.end(), [&](const SortKey& a, const SortKey& b) { return desc ? b < a : a < b; });
  Json out = d.WithCore([&](CoordinatorCore& c) {
    Json result = Paginate<SortKey>(
        rows, *page, desc, "Results", [](const SortKey& k) { return k; },
        [&](const SortKey& k) {
          std::optional<Json> doc = document(c, k.name);
          Json record = Json::object();
          for (const std::string& m : members) {
            if (doc && doc->contains(m)) record[m] = std::move((*doc)[m]);
          }
          if (!doc) record[training ? "TrainingJobName" : "HyperParameterTuningJobName"] = k.name;  // deleted since
          return Json{{SearchRecordMember(*resource), std::move(record)}};
        });
    result["TotalHits"] = {{"Value", rows.size()}, {"Relation", "EqualTo"}};
    return result;
  });
  return Ok(out);
}

// Writes an ApiResponse of a GET route.
void Reply(httplib::Response& res, const ApiResponse& r) {
  res.status = r.status;
  res.set_content(r.body, "application/json");
}

// The JSON object body of one of hpo's own POST routes (an empty body is {}), or the error to
// answer. The spec parser's limits (64 levels, 50,000 nodes), as for the SageMaker actions: a
// body nested 200,000 deep crashed the coordinator.
std::optional<ApiResponse> ObjectBody(const httplib::Request& req, Json* body) {
  if (auto bad = InvalidUtf8At(req.body)) return NotUtf8(*bad, req.body);
  auto parsed = proto::ParseJson(req.body.empty() ? std::string_view("{}") : std::string_view(req.body));
  if (!parsed.ok()) {
    return AwsError(400, "SerializationException", "the body is not accepted JSON: " + parsed.status().message());
  }
  *body = std::move(parsed).value();
  if (!body->is_object()) return AwsError(400, "SerializationException", "the body must be a JSON object");
  return std::nullopt;
}

}  // namespace

std::optional<Json> ResourceDocument(CoordinatorCore& c, bool training_job, const std::string& name, int64_t now_ms,
                                     std::map<std::string, Json>* definitions) {
  Json doc;
  if (training_job) {
    const Trial* t = c.FindTrial(name);
    if (!t || t->Unlaunched()) return std::nullopt;
    doc = TrainingJobDocument(c, *t, now_ms, definitions);
    doc["Tags"] = TagsJson(TrainingJobTags(c, *t));
  } else {
    const TuningJob* j = c.FindJob(name);
    if (!j) return std::nullopt;
    auto r = c.Describe(name, now_ms);
    if (!r.ok()) return std::nullopt;
    doc = DescribeAsSageMaker(*r);
    doc["Tags"] = TagsJson(j->spec.tags);
  }
  return doc;
}

ApiResponse LogsPage(Dispatcher& d, const std::string& trial, int64_t after, size_t limit) {
  std::string status;
  auto rows = d.WithCore([&](CoordinatorCore& c) {
    if (const Trial* t = c.FindTrial(trial)) status = TrainingJobStatusOf(*t);
    return c.Logs(trial, after, limit);
  });
  if (!rows.ok()) return FromStatus(rows.status());
  // Lines re-sent after a lost connection are stored after later ones: a page is returned in
  // attempt order and, within each host's output, in line order; the hosts of a multi-host
  // attempt stay interleaved as their lines arrived. `next` stays the storage cursor, so
  // following still sees every line.
  int64_t cursor = after;
  for (const auto& r : *rows) cursor = std::max(cursor, r.id);
  std::vector<LogRow> ordered = *rows;
  std::stable_sort(ordered.begin(), ordered.end(), [](const LogRow& a, const LogRow& b) { return a.attempt < b.attempt; });
  std::map<std::pair<uint32_t, uint32_t>, std::vector<size_t>> places;  // (attempt, host) -> positions
  for (size_t i = 0; i < ordered.size(); ++i) places[{ordered[i].attempt, LogLineHost(ordered[i].line)}].push_back(i);
  for (const auto& [stream, at] : places) {
    std::vector<LogRow> mine;
    for (size_t i : at) mine.push_back(std::move(ordered[i]));
    std::stable_sort(mine.begin(), mine.end(), [](const LogRow& a, const LogRow& b) { return a.line < b.line; });
    for (size_t k = 0; k < at.size(); ++k) ordered[at[k]] = std::move(mine[k]);
  }
  Json lines = Json::array();
  for (const auto& r : ordered) {
    Json l = {{"attempt", r.attempt}, {"line", LogLineNumber(r.line)}, {"text", r.text}};
    if (const uint32_t host = LogLineHost(r.line); host > 0) l["host"] = "algo-" + std::to_string(host);
    lines.push_back(std::move(l));
  }
  return Ok({{"TrainingJobStatus", status}, {"lines", lines}, {"next", cursor}});
}

ApiResponse EventsPage(Dispatcher& d, const std::string& job, int64_t after, size_t limit, bool last) {
  auto rows = d.WithCore([&](CoordinatorCore& c) { return last ? c.LastEvents(job, limit) : c.Events(job, after, limit); });
  if (!rows.ok()) return FromStatus(rows.status());
  Json events = Json::array();
  for (const EventRow& e : *rows) {
    after = std::max(after, e.id);
    events.push_back({{"id", e.id}, {"time", Epoch(e.ts_ms)}, {"kind", e.kind}, {"job", e.job}, {"trial", e.trial},
                      {"message", e.message}});
  }
  return Ok({{"events", events}, {"next", after}});
}

// Curves read every training job's metrics from the store under the core's lock: without a
// limit, a 400-training-job job held it for a second (a 10,000 one for tens), stalling the
// workers' messages. At most kMaxCurves (and kMaxCurves when no limit is given).
constexpr size_t kMaxCurves = 1000;

ApiResponse CurvesPage(Dispatcher& d, const std::string& job, size_t limit, const std::string& trial) {
  if (limit == 0 || limit > kMaxCurves) limit = kMaxCurves;
  std::string metric;
  std::map<std::string, std::vector<size_t>> attempt_starts;  // one training job's: every attempt
  auto curves = d.WithCore([&](CoordinatorCore& c) {
    const TuningJob* j = c.FindJob(job);
    if (!j) return c.Curves(job);  // NotFound
    metric = j->objective_metric;
    if (!trial.empty()) {
      const std::set<std::string> one = {trial};
      return c.Curves(job, &one, &attempt_starts);
    }
    const std::vector<const Trial*> trials = c.TrialsOf(job);
    if (trials.size() <= limit) return c.Curves(job);
    std::vector<std::optional<double>> objectives;
    for (const Trial* t : trials) objectives.push_back(t->objective);
    std::set<std::string> only;
    for (size_t i : dashboard::BestAndNewest(objectives, !j->maximize, limit)) only.insert(trials[i]->name);
    return c.Curves(job, &only);
  });
  if (!curves.ok()) return FromStatus(curves.status());
  Json out = {{"MetricName", metric}, {"Curves", Json::object()}};
  for (const auto& [trial, values] : *curves) out["Curves"][trial] = values;
  if (!attempt_starts.empty()) {
    out["AttemptStarts"] = Json::object();
    for (const auto& [name, starts] : attempt_starts) out["AttemptStarts"][name] = starts;
  }
  return Ok(out);
}

Result<dashboard::Json> InProcessSource::FromResponse(const ApiResponse& r) {
  Json j = Json::parse(r.body, nullptr, false);
  if (r.status == 200 && !j.is_discarded()) return j;
  const std::string type = j.is_object() ? j.value("__type", "Error") : "Error";
  const std::string message = j.is_object() ? j.value("message", r.body) : r.body;
  if (proto::IsNotFoundError(type, message)) return Status::NotFound(message);
  if (type == "ValidationException") return Status::InvalidArgument(type + ": " + message);
  return Status::FailedPrecondition(type + ": " + message);
}

Result<dashboard::Json> InProcessSource::Action(const std::string& action, const dashboard::Json& request) {
  return FromResponse(HandleSageMakerAction(d_, action, request.dump()));
}
Result<dashboard::Json> InProcessSource::Events(const std::string& job, int64_t after, size_t limit) {
  return FromResponse(EventsPage(d_, job, after, limit, false));
}
Result<dashboard::Json> InProcessSource::LastEvents(const std::string& job, size_t limit) {
  return FromResponse(EventsPage(d_, job, 0, limit, true));
}
Result<dashboard::Json> InProcessSource::Logs(const std::string& trial, int64_t after, size_t limit) {
  return FromResponse(LogsPage(d_, trial, after, limit));
}
Result<dashboard::Json> InProcessSource::Curves(const std::string& job, size_t limit, const std::string& trial) {
  return FromResponse(CurvesPage(d_, job, limit, trial));
}

Result<dashboard::Json> InProcessSource::Workers() {
  return d_.WithCore([&](CoordinatorCore& c) { return WorkersJson(c, d_.Now()); });
}

ApiResponse HandleSageMakerAction(Dispatcher& d, const std::string& action, const std::string& body) {
  if (auto bad = InvalidUtf8At(body)) return NotUtf8(*bad, body);
  // Parsed with the spec parser's limits (64 levels, 50,000 nodes, unique keys): a deeply nested
  // member must not reach the handlers, which walk and print the tree recursively.
  auto parsed = proto::ParseJson(body.empty() ? std::string_view("{}") : std::string_view(body));
  if (!parsed.ok()) {
    return AwsError(400, "SerializationException", "the request body is not accepted JSON: " + parsed.status().message());
  }
  Json req = std::move(parsed).value();
  if (!req.is_object()) return AwsError(400, "SerializationException", "the request body must be a JSON object");
  if (action == "CreateHyperParameterTuningJob") return Create(d, req);
  if (action == "DescribeHyperParameterTuningJob") return Describe(d, req);
  if (action == "ListHyperParameterTuningJobs") return ListJobs(d, req);
  if (action == "ListTrainingJobsForHyperParameterTuningJob") return ListTrainingJobs(d, req);
  if (action == "StopHyperParameterTuningJob") return StopJob(d, req);
  if (action == "DeleteHyperParameterTuningJob") return DeleteJob(d, req);
  if (action == "DescribeTrainingJob") return DescribeTrainingJob(d, req);
  if (action == "StopTrainingJob") return StopTrainingJob(d, req);
  if (action == "ListTags") return ListTags(d, req);
  if (action == "AddTags") return AddTags(d, req);
  if (action == "DeleteTags") return DeleteTags(d, req);
  if (action == "ListTrainingJobs") return ListAllTrainingJobs(d, req);
  if (action == "Search") return Search(d, req);
  return AwsError(400, "UnknownOperationException",
                  "this coordinator does not implement SageMaker." + action +
                      "; it implements CreateHyperParameterTuningJob, DescribeHyperParameterTuningJob, "
                      "ListHyperParameterTuningJobs, ListTrainingJobsForHyperParameterTuningJob, "
                      "StopHyperParameterTuningJob, DeleteHyperParameterTuningJob, DescribeTrainingJob, "
                      "StopTrainingJob, ListTrainingJobs, Search, ListTags, AddTags and DeleteTags (the training jobs' logs: "
                      "CloudWatch Logs' actions on this endpoint, or hpo logs; their metrics: CloudWatch's GetMetricData, "
                      "GetMetricStatistics and ListMetrics on this endpoint, hpo trials, or the dashboard)");
}

bool IsLoopbackHost(std::string host) {
  if (host.size() >= 2 && host.front() == '[' && host.back() == ']') host = host.substr(1, host.size() - 2);
  in_addr v4{};
  if (::inet_pton(AF_INET, host.c_str(), &v4) == 1) return (ntohl(v4.s_addr) >> 24) == 127;
  in6_addr v6{};
  if (::inet_pton(AF_INET6, host.c_str(), &v6) == 1) return IN6_IS_ADDR_LOOPBACK(&v6);
  // A name (127.0.0.1.example.com is one, and may resolve anywhere).
  host = AsciiLower(host);
  if (!host.empty() && host.back() == '.') host.pop_back();  // a fully qualified "localhost."
  const std::string suffix = ".localhost";
  return host == "localhost" ||
         (host.size() > suffix.size() && host.compare(host.size() - suffix.size(), suffix.size(), suffix) == 0);
}

std::vector<std::string> MachineNames() {
  std::vector<std::string> names;
  char buf[256] = {};
  if (::gethostname(buf, sizeof buf - 1) != 0 || buf[0] == '\0') return names;
  names.push_back(AsciiLower(buf));
  addrinfo hints{};
  hints.ai_flags = AI_CANONNAME;
  addrinfo* found = nullptr;
  if (::getaddrinfo(buf, nullptr, &hints, &found) == 0) {
    if (found && found->ai_canonname && AsciiLower(found->ai_canonname) != names[0]) {
      names.push_back(AsciiLower(found->ai_canonname));
    }
    ::freeaddrinfo(found);
  }
  return names;
}

std::string BrowserRequestRefusal(const std::string& host_header, const std::string& origin,
                                  UnsignedAnswers unsigned_answers, const std::vector<std::string>& machine_names) {
  const std::string host = AsciiLower(host_header);
  if (!origin.empty()) {
    const std::string o = AsciiLower(origin);
    const size_t scheme = o.find("://");
    std::string authority = scheme == std::string::npos ? "" : o.substr(scheme + 3);
    // A default port may be left out of one and not the other.
    auto without_default_port = [](std::string a, const std::string& port) {
      return a.size() > port.size() && a.compare(a.size() - port.size(), port.size(), port) == 0
                 ? a.substr(0, a.size() - port.size())
                 : a;
    };
    const std::string default_port = o.rfind("https://", 0) == 0 ? ":443" : ":80";
    if (authority.empty() || without_default_port(authority, default_port) != without_default_port(host, default_port)) {
      return "a web page's request (Origin " + origin.substr(0, 100) + ", Host " + host_header.substr(0, 100) +
             ") is refused: the API takes requests from hpo, the AWS SDKs and the aws CLI, and the dashboard's "
             "pages only read";
    }
  }
  if (unsigned_answers == UnsignedAnswers::kNone) return "";
  std::string name = host;
  if (!name.empty() && name.front() == '[') {
    name = name.substr(0, name.find(']') + 1);
  } else if (name.find(':') != name.rfind(':')) {
    // a bare IPv6 address (no brackets: no port)
  } else if (const size_t colon = name.rfind(':'); colon != std::string::npos) {
    name = name.substr(0, colon);
  }
  const std::string shown = host_header.empty() ? std::string("(none)") : host_header.substr(0, 100);
  if (unsigned_answers == UnsignedAnswers::kLoopback) {
    if (name.empty() || !IsLoopbackHost(name)) {
      return "Host " + shown +
             " is not a name of this machine's loopback, where this API answers unsigned requests (a page whose "
             "name was made to resolve to 127.0.0.1 would read it); use http://127.0.0.1:PORT or "
             "http://localhost:PORT";
    }
    return "";
  }
  std::string bare = name;
  if (bare.size() >= 2 && bare.front() == '[' && bare.back() == ']') bare = bare.substr(1, bare.size() - 2);
  in_addr v4{};
  in6_addr v6{};
  const bool address = ::inet_pton(AF_INET, bare.c_str(), &v4) == 1 || ::inet_pton(AF_INET6, bare.c_str(), &v6) == 1;
  std::string plain = bare;
  if (!plain.empty() && plain.back() == '.') plain.pop_back();
  const bool known = std::find(machine_names.begin(), machine_names.end(), plain) != machine_names.end();
  if (name.empty() || !(address || known || IsLoopbackHost(name))) {
    return "Host " + shown +
           " is not an address or a name of this machine, and this API answers unsigned requests (--http-auth "
           "off): a page whose name was made to resolve to this machine would run training jobs here; use "
           "http://ADDRESS:PORT" +
           (machine_names.empty() ? std::string() : " or http://" + machine_names.front() + ":PORT") +
           ", or sign requests (hpo coordinator --credentials)";
  }
  return "";
}

struct HttpApi::Impl {
  Dispatcher* d;
  HttpApiOptions options;
  std::mutex credentials_mu;  // guards options.credentials (replaced on SIGHUP)
  httplib::Server server;
  int port = 0;
  std::string host;
  const std::vector<std::string> machine_names = MachineNames();  // for UnsignedAnswers::kNetwork
  // The routes whose handlers read a request body (each registered through guard_body); filled
  // while the routes are registered, before the server serves, and only read from then on.
  std::set<std::string> body_routes;

  // True when the request may go on to its handler; otherwise res holds the AWS error.
  bool Authorize(const httplib::Request& req, httplib::Response& res) {
    const std::string refused = BrowserRequestRefusal(
        req.get_header_value("Host"), req.get_header_value("Origin"),
        options.require_sigv4 ? UnsignedAnswers::kNone
        : IsLoopbackHost(host) ? UnsignedAnswers::kLoopback
                               : UnsignedAnswers::kNetwork,
        machine_names);
    if (!refused.empty()) {
      Refuse(req, res, 403, "AccessDeniedException", refused);
      return false;
    }
    if (!options.require_sigv4) return true;
    std::shared_ptr<const sigv4::Credentials> creds;
    {
      std::lock_guard<std::mutex> lock(credentials_mu);
      creds = options.credentials;
    }
    sigv4::Request r;
    r.method = req.method;
    const std::string& target = req.target.empty() ? req.path : req.target;
    size_t q = target.find('?');
    r.path = target.substr(0, q);
    r.query = q == std::string::npos ? "" : target.substr(q + 1);
    for (const auto& [k, v] : req.headers) r.headers.emplace_back(k, v);
    r.body = req.body;
    sigv4::VerifyOptions vo;
    vo.region = options.region;
    // CloudWatch Logs' requests (coordinator/cloudwatch_logs.h) are signed for its service.
    if (req.get_header_value("X-Amz-Target").rfind(kLogsTargetPrefix, 0) == 0) vo.service = "logs";
    // CloudWatch's (coordinator/cloudwatch_metrics.h) for its service, "monitoring", in either
    // protocol.
    if (req.get_header_value("X-Amz-Target").rfind(kCloudWatchTargetPrefix, 0) == 0 || IsQueryRequest(req)) {
      vo.service = "monitoring";
    }
    sigv4::Verdict v = sigv4::Verify(
        r,
        [&](const std::string& id) -> std::optional<std::string> {
          return creds ? creds->SecretOf(id) : std::nullopt;
        },
        options.now_s(), vo);
    if (v.ok()) return true;
    Refuse(req, res, v.http_status, v.error_type, v.message);
    return false;
  }

  // Refused requests are logged at most kRefusalsLogged a minute (anyone who reaches the port can
  // make them; a flood would push the coordinator's own lines out of a rate-limited journal), each
  // cut to 300 characters, with a count of those left out.
  static constexpr int kRefusalsLogged = 20;
  std::mutex refusals_mu;
  std::chrono::steady_clock::time_point refusals_since{};
  int refusals_logged = 0;
  uint64_t refusals_unlogged = 0;

  void LogRefusal(std::string line) {
    if (line.size() > 300) line = line.substr(0, 300) + "...";
    std::string summary;
    {
      std::lock_guard<std::mutex> lock(refusals_mu);
      const auto now = std::chrono::steady_clock::now();
      if (now - refusals_since >= std::chrono::minutes(1)) {
        if (refusals_unlogged > 0) {
          summary = "http: " + std::to_string(refusals_unlogged) + " more refused request(s) were not logged (at most " +
                    std::to_string(kRefusalsLogged) + " a minute)";
        }
        refusals_since = now;
        refusals_logged = 0;
        refusals_unlogged = 0;
      }
      if (refusals_logged >= kRefusalsLogged) {
        ++refusals_unlogged;
        line.clear();
      } else {
        ++refusals_logged;
      }
    }
    if (!summary.empty()) options.log(summary);
    if (!line.empty()) options.log(line);
  }

  // Logs a refused request and answers it with the AWS error.
  void Refuse(const httplib::Request& req, httplib::Response& res, int status, const std::string& type,
              const std::string& message) {
    LogRefusal("http: refused " + req.method + " " + req.path + " from " + req.remote_addr + ": " + type + ": " +
               message);
    // A query-protocol client (CloudWatch's older ones) reads XML errors.
    ApiResponse e = IsQueryRequest(req) ? AwsQueryError(status, type, message, kCloudWatchXmlns)
                                        : AwsError(status, type, message);
    res.status = e.status;
    res.set_header("x-amzn-ErrorType", type + ":http://internal.amazon.com/coral/com.amazon.coral.service/");
    res.set_content(e.body, e.content_type.c_str());
  }
};

namespace {
// A random UUID (version 4) in its 36-character text form, as AWS request ids are written.
std::string NewRequestId() {
  thread_local std::mt19937_64 rng{std::random_device{}() ^ (static_cast<uint64_t>(::getpid()) << 32) ^
                                   static_cast<uint64_t>(std::hash<std::thread::id>{}(std::this_thread::get_id()))};
  uint64_t hi = rng(), lo = rng();
  hi = (hi & ~0xF000ull) | 0x4000ull;                          // version 4
  lo = (lo & ~(0xC000ull << 48)) | (0x8000ull << 48);          // variant 10
  char buf[37];
  std::snprintf(buf, sizeof buf, "%08llx-%04llx-%04llx-%04llx-%012llx", static_cast<unsigned long long>(hi >> 32),
                static_cast<unsigned long long>((hi >> 16) & 0xFFFF), static_cast<unsigned long long>(hi & 0xFFFF),
                static_cast<unsigned long long>(lo >> 48), static_cast<unsigned long long>(lo & 0xFFFFFFFFFFFFull));
  return buf;
}
}  // namespace

HttpApi::HttpApi(Dispatcher* dispatcher, HttpApiOptions options) : impl_(std::make_unique<Impl>()) {
  impl_->d = dispatcher;
  // cpp-httplib's default also sets SO_REUSEPORT, with which a second coordinator binds the same
  // port and the kernel splits the requests between the two: SO_REUSEADDR only (a restart may
  // still bind while old connections linger in TIME_WAIT), so a port in use is refused.
  impl_->server.set_socket_options([](int sock) {
    int yes = 1;
    ::setsockopt(sock, SOL_SOCKET, SO_REUSEADDR, &yes, sizeof yes);
  });
  // Without it a reply on a kept-alive connection (boto3 keeps them) waits for the client's
  // delayed ACK of the previous one: about 40 ms a call instead of a fraction of one.
  impl_->server.set_tcp_nodelay(true);
  // Every answer names itself as AWS's do; botocore puts it in ResponseMetadata["RequestId"].
  impl_->server.set_post_routing_handler([](const httplib::Request&, httplib::Response& res) {
    res.set_header("x-amzn-RequestId", NewRequestId());
  });
  // Connections are served by a pool of threads; one that sends its request slowly holds a
  // thread until it finishes or stops for the read timeout (5 s between bytes). cpp-httplib's
  // default of 8 let eight such clients (slowloris, before any signature is checked) stall
  // the API and the dashboard. 128 raise that cost; a coordinator facing an untrusted network
  // belongs behind a reverse proxy that buffers requests (README, "Securing a cluster").
  impl_->server.new_task_queue = [] { return new httplib::ThreadPool(128); };
  // What cpp-httplib refuses itself (a malformed request line, an oversized header or URI, an
  // unknown route) gets an AWS-style JSON error naming the problem instead of an empty body.
  impl_->server.set_error_handler(httplib::Server::HandlerWithResponse([](const httplib::Request& req,
                                                                           httplib::Response& res) {
    if (!res.body.empty()) return httplib::Server::HandlerResponse::Unhandled;  // a handler's own answer
    std::string type = "ValidationException", message;
    switch (res.status) {
      case 404:
        type = "UnknownOperationException";
        message = "no such route: " + req.method + " " + req.path +
                  " (the SageMaker API is POST / with X-Amz-Target: SageMaker.<Action>; the dashboard is /ui/)";
        break;
      case 413:
        message = "the request is too large: bodies are at most 8 MiB";
        break;
      case 414:
        message = "the request URI is too long";
        break;
      default:
        message = "the request could not be read as HTTP/1.1 (HTTP status " + std::to_string(res.status) +
                  "): check its request line, headers and Content-Length";
    }
    Json j = {{"__type", type}, {"message", message}};
    res.set_content(Dump(j), "application/x-amz-json-1.1");
    return httplib::Server::HandlerResponse::Handled;
  }));
  // Framing that two HTTP parsers may read differently (RFC 9112 6.3): a Content-Length together
  // with Transfer-Encoding, or Content-Lengths that disagree. Behind a proxy (the README's advice
  // for untrusted networks) that is how one request is smuggled inside another; refused before
  // any body is read.
  impl_->server.set_pre_routing_handler([impl = impl_.get()](const httplib::Request& req, httplib::Response& res) {
    std::string why;
    const size_t lengths = req.get_header_value_count("Content-Length");
    if (req.get_header_value_count("Host") > 1) {  // RFC 9112 3.2: a server answers 400
      why = "the request has more than one Host header; send one";
    } else if (lengths > 0 && req.has_header("Transfer-Encoding")) {
      why = "the request has both Content-Length and Transfer-Encoding; send one";
    } else {
      for (size_t i = 1; i < lengths; ++i) {
        if (req.get_header_value("Content-Length", i) != req.get_header_value("Content-Length", 0)) {
          why = "the request has Content-Length headers that disagree";
        }
      }
    }
    // A body only where a route reads it, up to its limit (guard_body): elsewhere the server
    // read a chunked body whole before answering 413, and 300 MB bodies on a few connections
    // ran an unauthenticated coordinator out of memory.
    const bool has_body = req.has_header("Transfer-Encoding") ||
                          (lengths > 0 && req.get_header_value("Content-Length") != "0");
    if (why.empty() && has_body && !(req.method == "POST" && impl->body_routes.count(req.path))) {
      Json j = {{"__type", "SerializationException"},
                {"message", req.method + " " + req.path + " takes no request body (only POST / and the POST routes "
                            "of /hpo/v1 do)"}};
      res.status = 413;
      // A SageMaker call sent to a path (an endpoint URL with one, a path-routed proxy): not
      // "payload too large" (an API pass) but where the API is.
      if (req.has_header("X-Amz-Target") && req.path != "/") {
        j = {{"__type", "UnknownOperationException"},
             {"message", req.method + " " + req.path + ": no such route; the SageMaker API answers POST / (give the "
                         "endpoint URL without a path: http://HOST:PORT)"}};
        res.status = 404;
      }
      res.set_header("Connection", "close");  // the body is not read: the connection cannot go on
      res.set_content(Dump(j), "application/x-amz-json-1.1");
      return httplib::Server::HandlerResponse::Handled;
    }
    if (why.empty()) return httplib::Server::HandlerResponse::Unhandled;
    Json j = {{"__type", "SerializationException"}, {"message", why}};
    res.status = 400;
    res.set_content(Dump(j), "application/x-amz-json-1.1");
    return httplib::Server::HandlerResponse::Handled;
  });
  impl_->options = std::move(options);
  if (!impl_->options.now_s) {
    impl_->options.now_s = [] {
      return static_cast<int64_t>(
          std::chrono::duration_cast<std::chrono::seconds>(std::chrono::system_clock::now().time_since_epoch()).count());
    };
  }
  if (!impl_->options.log) impl_->options.log = [](const std::string& l) { std::fprintf(stderr, "%s\n", l.c_str()); };
  auto& s = impl_->server;
  Dispatcher* d = dispatcher;
  Impl* impl = impl_.get();
  // Every route goes through the signature check first (a no-op unless require_sigv4).
  auto guard = [impl](httplib::Server::Handler h) {
    return [impl, h = std::move(h)](const httplib::Request& req, httplib::Response& res) {
      if (impl->Authorize(req, res)) h(req, res);
    };
  };
  // Request bodies are read here, not by cpp-httplib: its limit (set_payload_max_length) holds
  // only for a Content-Length, a chunked body was read whole (1,000 MiB of one took 1.2 GB before
  // the answer), and it refuses a form-encoded body (curl --data-binary's default Content-Type)
  // over 8 KB with an empty 413. Every POST body is now read up to kMaxBody, whatever its
  // framing or type, and then, signed or not, checked as before.
  constexpr size_t kMaxBody = 8u << 20;
  s.set_payload_max_length(kMaxBody);
  auto guard_body = [impl](httplib::Server::Handler h) {
    return [impl, h = std::move(h)](const httplib::Request& req, httplib::Response& res,
                                    const httplib::ContentReader& read) {
      httplib::Request full = req;
      // A Content-Length over the limit: cpp-httplib refuses to read the body before any of it
      // reaches the reader below, which then looked like a body cut short (400).
      bool over = false;
      if (req.has_header("Content-Length")) {
        const std::string length = req.get_header_value("Content-Length");
        // Digits only: strtoull took "-5" for 2^64 - 5, and the answer was "more than 8 MiB".
        if (length.empty() || length.find_first_not_of("0123456789") != std::string::npos) {
          ApiResponse r = AwsError(400, "SerializationException",
                                   "the Content-Length header is not a number of bytes: \"" +
                                       length.substr(0, 40) + "\"");
          res.status = r.status;
          res.set_content(r.body, r.content_type.c_str());
          return;
        }
        char* end = nullptr;
        const unsigned long long n = std::strtoull(length.c_str(), &end, 10);
        over = end && *end == '\0' && n > kMaxBody;
      } else if (!req.has_header("Transfer-Encoding")) {
        // Neither: the body cannot be told from the next request (RFC 9112: it is empty).
        if (impl->Authorize(full, res)) h(full, res);
        return;
      }
      const bool complete = !over && read([&](const char* data, size_t n) {
        if (full.body.size() + n > kMaxBody) {
          over = true;
          return false;
        }
        full.body.append(data, n);
        return true;
      });
      if (!complete) {
        // What is left of the body is not read: cpp-httplib closes the connection after the answer.
        ApiResponse r = over ? AwsError(413, "ValidationException",
                                        "the request body is more than " + std::to_string(kMaxBody >> 20) +
                                            " MiB; a tuning job's spec is at most 4 MiB")
                             : AwsError(400, "SerializationException", "the request body could not be read to its end");
        res.status = r.status;
        res.set_content(r.body, r.content_type.c_str());
        return;
      }
      if (impl->Authorize(full, res)) h(full, res);
    };
  };
  // A POST route that reads a body: registered with guard_body, and named to the pre-routing
  // check, which refuses a body on any other route before it is read.
  auto post_body = [&s, impl, &guard_body](const std::string& path, httplib::Server::Handler h) {
    impl->body_routes.insert(path);
    s.Post(path, guard_body(std::move(h)));
  };
  post_body("/", [d](const httplib::Request& req, httplib::Response& res) {
    std::string target = req.get_header_value("X-Amz-Target");
    const std::string prefix = "SageMaker.";
    ApiResponse r;
    try {
      r = target.rfind(prefix, 0) == 0 ? HandleSageMakerAction(*d, target.substr(prefix.size()), req.body)
          : target.rfind(kLogsTargetPrefix, 0) == 0
              ? HandleLogsAction(*d, target.substr(std::strlen(kLogsTargetPrefix)), req.body)
          : target.rfind(kCloudWatchTargetPrefix, 0) == 0
              ? HandleCloudWatchAction(*d, target.substr(std::strlen(kCloudWatchTargetPrefix)), req.body)
          : IsQueryRequest(req)
              ? HandleCloudWatchQuery(*d, req.body)
              : AwsError(400, "UnknownOperationException",
                         "missing or foreign X-Amz-Target header (want SageMaker.<Action>, "
                         "Logs_20140328.<Action> for the training jobs' logs, or "
                         "GraniteServiceVersion20100801.<Action> or a form-encoded Action=<Action> for their "
                         "metrics as CloudWatch serves them)");
    } catch (const std::exception& e) {
      // A request the handlers did not foresee: still an AWS error in the request's protocol, so
      // clients see a code.
      const std::string why = std::string("the coordinator could not handle this request: ") + e.what();
      r = IsQueryRequest(req) ? AwsQueryError(500, "InternalFailure", why, kCloudWatchXmlns)
                              : AwsError(500, "InternalFailure", why);
    }
    res.status = r.status;
    res.set_content(r.body, r.content_type.c_str());
  });
  post_body("/hpo/v1/jobs", [d](const httplib::Request& req, httplib::Response& res) {
    proto::FieldErrors errs;
    if (auto bad = InvalidUtf8At(req.body)) return Reply(res, NotUtf8(*bad, req.body));
    auto parsed = proto::ParseSpec(req.body, &errs);
    ApiResponse r;
    if (!parsed.ok()) {
      r = AwsError(400, "ValidationException", parsed.status().message());
    } else {
      std::vector<Outgoing> out;
      auto arn = d->WithCore([&](CoordinatorCore& c) {
        return c.Submit(parsed->document.spec, parsed->spelling, d->Now(), &out,
                        parsed->spelling == proto::Spelling::kCrd ? parsed->document.metadata
                                                                  : nlohmann::ordered_json::object());
      });
      if (!arn.ok()) {
        r = FromStatus(arn.status());
      } else {
        d->Post(std::move(out));
        r = Ok({{"HyperParameterTuningJobArn", *arn}});
      }
    }
    res.status = r.status;
    res.set_content(r.body, "application/json");
  });
  s.Get(R"(/hpo/v1/jobs/([A-Za-z0-9-]+))", guard([d](const httplib::Request& req, httplib::Response& res) {
    auto doc = d->WithCore([&](CoordinatorCore& c) { return c.DescribeDocument(req.matches[1]); });
    if (!doc.ok()) {
      ApiResponse r = FromStatus(doc.status());
      res.status = r.status;
      res.set_content(r.body, "application/json");
      return;
    }
    bool yaml = req.get_param_value("format") == "yaml";
    Json j = proto::EncodeCrdDocument(*doc);
    res.set_content(yaml ? proto::ToYaml(j) : j.dump(2), yaml ? "application/yaml" : "application/json");
  }));
  s.Get(R"(/hpo/v1/logs/([A-Za-z0-9-]+))", guard([d](const httplib::Request& req, httplib::Response& res) {
    int64_t after = 0;
    size_t limit = 1000;
    if (!Cursor(req, res, &after, &limit)) return;
    Reply(res, LogsPage(*d, req.matches[1], after, limit));
  }));
  // The coordinator's history (every job's, or ?job=NAME's), oldest first, from ?after=N.
  s.Get("/hpo/v1/events", guard([d](const httplib::Request& req, httplib::Response& res) {
    int64_t after = 0;
    size_t limit = 1000;
    if (!Cursor(req, res, &after, &limit)) return;
    // ?last=1: the newest `limit` events (oldest first), not those after `after`.
    const bool last = req.has_param("last") && req.get_param_value("last") == "1";
    Reply(res, EventsPage(*d, req.has_param("job") ? req.get_param_value("job") : "", after, limit, last));
  }));
  // The objective's values of each training job of ?job=NAME, in emission order.
  s.Get("/hpo/v1/curves", guard([d](const httplib::Request& req, httplib::Response& res) {
    if (!req.has_param("job")) return Reply(res, AwsError(400, "ValidationException", "?job=NAME is required"));
    int64_t after = 0;
    size_t limit = 0;
    if (!Cursor(req, res, &after, &limit)) return;
    Reply(res, CurvesPage(*d, req.get_param_value("job"), limit, req.get_param_value("trial")));
  }));
  // The dashboard (coordinator/dashboard.h): GET / and /ui go to /ui/.
  auto ui = [impl](const httplib::Request& req, httplib::Response& res) {
    if (!impl->Authorize(req, res)) {
      // Still refused; but a person with a browser is told how to see the pages after all.
      Json e = Json::parse(res.body, nullptr, false);
      if (e.is_object() && e.value("__type", "") == "AccessDeniedException") return;  // a web page's, not a person's
      std::string why = e.is_object() ? e.value("__type", "") + ": " + e.value("message", "") : res.body;
      res.set_content(dashboard::SignedRequestsPage(why), "text/html; charset=utf-8");
      return;
    }
    InProcessSource source(*impl->d);
    const std::map<std::string, std::string> query = dashboard::QueryParameters(req.params);
    dashboard::Page page = dashboard::Render(source, req.path, query, impl->options.dashboard);
    res.status = page.status;
    if (!page.location.empty()) res.set_header("Location", page.location);
    res.set_content(page.body, page.content_type.c_str());
  };
  s.Get("/", ui);
  s.Get("/ui", ui);
  s.Get(R"(/ui/.*)", ui);
  // Prometheus text format (version 0.0.4): each family's HELP and TYPE, then all its samples
  // together (a parser takes a family's samples only right after its TYPE line).
  httplib::Server::Handler metrics = [d](const httplib::Request&, httplib::Response& res) {
    std::string text = d->WithCore([&](CoordinatorCore& c) { return MetricsText(c, d->deferred_store(), d->Now()); });
    res.set_content(text, "text/plain; version=0.0.4");
  };
  s.Get("/hpo/v1/metrics", impl->options.public_metrics ? metrics : guard(metrics));
  // Liveness for probes (Kubernetes, load balancers), which cannot sign: unauthenticated, and so
  // it says nothing but that the core answers (it takes the core's lock, as every request does).
  s.Get("/healthz", [d](const httplib::Request&, httplib::Response& res) {
    d->WithCore([](CoordinatorCore&) { return 0; });
    res.set_content("ok\n", "text/plain");
  });
  // Stopping several tuning jobs at once (hpo stop A B C): {"Names": [NAME, ...]} -> {"Jobs":
  // [{"Name", "Status" (before the stop)} | {"Name", "__type", "message"}]}. All in one hold of
  // the core, so no slot one of them frees goes to another that is about to be stopped (stopped
  // one request at a time, 18 jobs that had never run each started a training job first).
  post_body("/hpo/v1/jobs/stop", [d](const httplib::Request& req, httplib::Response& res) {
    Json body;
    if (auto bad = ObjectBody(req, &body)) return Reply(res, *bad);
    if (auto bad = CheckMembers(body, {{"Names", kList}})) return Reply(res, *bad);
    if (!body.contains("Names") || !body["Names"].is_array() || body["Names"].empty() || body["Names"].size() > 1000) {
      return Reply(res, AwsError(400, "ValidationException", "Names must be a list of 1 to 1000 tuning job names"));
    }
    for (const auto& n : body["Names"]) {
      if (!n.is_string()) return Reply(res, AwsError(400, "SerializationException", "Names must hold strings"));
    }
    std::vector<Outgoing> out;
    Json jobs = Json::array();
    d->WithCore([&](CoordinatorCore& c) {
      for (const auto& n : body["Names"]) {
        // Checked as StopHyperParameterTuningJob checks its name (a ValidationException, with the
        // name cut short), each on its own: the others are still stopped.
        auto checked = RequiredName(Json{{"HyperParameterTuningJobName", n}}, "HyperParameterTuningJobName", 32);
        const std::string name = checked.ok() ? *checked : "";
        const TuningJob* j = checked.ok() ? c.FindJob(name) : nullptr;
        const std::string before = j ? j->ShownStatus() : "";
        // One that has ended is reported with its status (hpo stop says so), not as an error.
        Status st = !checked.ok() ? checked.status() : j && j->Terminal() ? Status::Ok() : c.Stop(name, d->Now(), &out);
        if (st.ok()) {
          jobs.push_back({{"Name", j ? j->name : name}, {"Status", before}});
        } else {
          jobs.push_back({{"Name", checked.ok() ? name : Utf8Prefix(n.get<std::string>(), 80)},
                          {"__type", ErrorType(st)},
                          {"message", st.message()}});
        }
      }
      return 0;
    });
    d->Post(std::move(out));
    Reply(res, Ok({{"Jobs", jobs}}));
  });
  // The workers (hpo workers), and cordoning one: {"WorkerId": ID, "Reason": TEXT}.
  s.Get("/hpo/v1/workers", guard([d](const httplib::Request&, httplib::Response& res) {
    Json j = d->WithCore([&](CoordinatorCore& c) { return WorkersJson(c, d->Now()); });
    res.set_content(Dump(j), "application/json");
  }));
  // Evicting one (hpo workers drain --now), the same body -> the training jobs stopped there to
  // run elsewhere, {"Evicted": [NAME, ...]}.
  enum class WorkerAction { kCordon, kUncordon, kEvict };
  for (const auto& [path, what] : {std::pair{"/hpo/v1/workers/cordon", WorkerAction::kCordon},
                                   std::pair{"/hpo/v1/workers/uncordon", WorkerAction::kUncordon},
                                   std::pair{"/hpo/v1/workers/evict", WorkerAction::kEvict}}) {
    const WorkerAction action = what;  // a lambda may not capture a structured binding before clang 16
    post_body(path, [d, action](const httplib::Request& req, httplib::Response& res) {
      Json body;
      if (auto bad = ObjectBody(req, &body)) return Reply(res, *bad);
      if (auto bad = action == WorkerAction::kUncordon
                         ? CheckMembers(body, {{"WorkerId", kString}})
                         : CheckMembers(body, {{"WorkerId", kString}, {"Reason", kString}})) {
        return Reply(res, *bad);
      }
      auto id = RequiredString(body, "WorkerId");
      if (!id.ok()) return Reply(res, FromStatus(id.status()));
      // null is no reason (CheckMembers lets it through as absent; value() threw on it: a 500).
      const std::string reason = body.contains("Reason") && body["Reason"].is_string() ? body["Reason"].get<std::string>() : "";
      std::vector<Outgoing> out;
      std::vector<std::string> evicted;
      Status s = d->WithCore([&](CoordinatorCore& c) {
        switch (action) {
          case WorkerAction::kCordon: return c.Cordon(*id, reason, d->Now(), &out);
          case WorkerAction::kUncordon: return c.Uncordon(*id, d->Now(), &out);
          case WorkerAction::kEvict: break;
        }
        return c.Evict(*id, reason, d->Now(), &out, &evicted);
      });
      if (!s.ok()) return Reply(res, FromStatus(s));
      d->Post(std::move(out));
      Reply(res, Ok(action == WorkerAction::kEvict ? Json{{"Evicted", evicted}} : Json::object()));
    });
  }
  s.Get("/hpo/v1/health", guard([d](const httplib::Request&, httplib::Response& res) {
    Json j = d->WithCore([&](CoordinatorCore& c) {
      return Json{{"status", "ok"}, {"jobs", c.Jobs().size()}, {"workers", c.Workers().size()}};
    });
    res.set_content(j.dump(), "application/json");
  }));
}

HttpApi::~HttpApi() { Stop(); }

void HttpApi::SetCredentials(std::shared_ptr<const sigv4::Credentials> credentials) {
  std::lock_guard<std::mutex> lock(impl_->credentials_mu);
  impl_->options.credentials = std::move(credentials);
}

Status HttpApi::Bind(const std::string& host, int port) {
  impl_->host = host;
  if (port == 0) {
    impl_->port = impl_->server.bind_to_any_port(host);
  } else {
    impl_->port = impl_->server.bind_to_port(host, port) ? port : -1;
  }
  if (impl_->port < 0) {
    const std::string shown = host.find(':') != std::string::npos ? "[" + host + "]" : host;  // IPv6
    return Status::Unavailable("cannot listen for HTTP on " + shown + ":" + std::to_string(port) +
                               " (in use, or not an address of this machine)");
  }
  return Status::Ok();
}

int HttpApi::port() const { return impl_->port; }

void HttpApi::Serve() { impl_->server.listen_after_bind(); }

void HttpApi::Stop() { impl_->server.stop(); }

}  // namespace hpo::coordinator
