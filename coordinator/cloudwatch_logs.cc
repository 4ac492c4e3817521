#include "coordinator/cloudwatch_logs.h"

#include <algorithm>
#include <cstdint>
#include <limits>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <tuple>
#include <vector>

#include <nlohmann/json.hpp>

#include "coordinator/aws_request.h"
#include "coordinator/core.h"
#include "coordinator/job_store.h"
#include "coordinator/log_filter.h"

namespace hpo::coordinator {
namespace {

using Json = nlohmann::ordered_json;

constexpr size_t kMaxStreamsPage = 50;       // DescribeLogStreams' limit
constexpr size_t kMaxEvents = 10000;         // GetLogEvents' and FilterLogEvents' limit
constexpr size_t kMaxTrialsScanned = 1000;   // streams ordered by time, FilterLogEvents: training jobs read
constexpr size_t kMaxStreamNames = 100;      // FilterLogEvents' logStreamNames
constexpr int64_t kNoEnd = std::numeric_limits<int64_t>::max();
// CloudWatch answers at most 1 MB of events a call, counting each message's bytes and 26 more.
constexpr size_t kMaxPageBytes = 1048576;
constexpr size_t kEventOverhead = 26;

constexpr const char* kContentType = "application/x-amz-json-1.1";

ApiResponse Error(int status, const std::string& type, const std::string& message) {
  return AwsJsonError(status, type, message, kContentType);
}
ApiResponse Invalid(const std::string& message) { return Error(400, "InvalidParameterException", message); }
ApiResponse NotFound(const std::string& message) { return Error(400, "ResourceNotFoundException", message); }
ApiResponse FromStatus(const Status& s) {
  if (s.code() == StatusCode::kNotFound) return NotFound("The specified log stream does not exist.");
  return Error(s.code() == StatusCode::kUnavailable ? 503 : 500,
               s.code() == StatusCode::kUnavailable ? "ServiceUnavailableException" : "InternalFailure", s.message());
}

using Request = AwsRequest;

// The group a request names (logGroupName, or logGroupIdentifier: a name or an ARN ending in it):
// an error unless it is the training jobs' group.
std::optional<ApiResponse> CheckGroup(Request& r) {
  auto name = r.String("logGroupName");
  auto id = r.String("logGroupIdentifier");
  if (r.error()) return r.error();
  if (!name && !id) return Invalid("1 validation error detected: Value null at 'logGroupName' failed to satisfy "
                                   "constraint: Member must not be null");
  const std::string group = name ? *name : *id;
  const std::string suffix = std::string(":log-group:") + kTrainingJobLogGroup;
  if (group == kTrainingJobLogGroup ||
      (group.size() > suffix.size() && group.compare(group.size() - suffix.size(), suffix.size(), suffix) == 0)) {
    return std::nullopt;
  }
  return NotFound("The specified log group does not exist.");
}

// A stream's name: <training job>/algo-<N>-<seconds of its first line kept>, the seconds one more
// where an earlier attempt's stream of that host has the name (CloudWatch's names are unique in a
// group; two attempts that began in one second, a spot interruption's and its re-run's, had one,
// and the second's lines could not be read by it).
struct NamedStream {
  std::string name;
  LogStreamRow row;
  int64_t fallback_ms = 0;
};

Json StreamJson(const NamedStream& s) {
  const int64_t first = s.row.first_ms > 0 ? s.row.first_ms : s.fallback_ms;
  const int64_t last = s.row.last_ms > 0 ? s.row.last_ms : s.fallback_ms;
  return {{"logStreamName", s.name},
          {"creationTime", first},
          {"firstEventTimestamp", first},
          {"lastEventTimestamp", last},
          {"lastIngestionTime", last},
          {"storedBytes", s.row.bytes}};
}

// A training job's streams, each with its name, in name order; the start time stands in for
// lines stored without times. (Named in attempt order, so that a later attempt's stream never
// renames an earlier one.)
Result<std::vector<NamedStream>> StreamsOf(const CoordinatorCore& c, const std::string& trial) {
  auto rows = c.LogStreams(trial);
  if (!rows.ok()) return rows.status();
  const Trial* t = c.FindTrial(trial);
  const int64_t fallback = t ? (t->start_ms > 0 ? t->start_ms : t->creation_ms) : 0;
  std::sort(rows->begin(), rows->end(), [](const LogStreamRow& a, const LogStreamRow& b) {
    return std::tie(a.attempt, a.host) < std::tie(b.attempt, b.host);
  });
  std::vector<NamedStream> out;
  std::set<std::string> taken;
  for (const auto& r : *rows) {
    const std::string host = trial + "/algo-" + std::to_string(r.host == 0 ? 1 : r.host) + "-";
    int64_t seconds = (r.first_ms > 0 ? r.first_ms : fallback) / 1000;
    while (taken.count(host + std::to_string(seconds))) ++seconds;
    out.push_back({host + std::to_string(seconds), r, fallback});
    taken.insert(out.back().name);
  }
  std::sort(out.begin(), out.end(), [](const NamedStream& a, const NamedStream& b) { return a.name < b.name; });
  return out;
}

// The training job a stream name or prefix belongs to, when it says (the text before its '/').
std::optional<std::string> TrialOf(const std::string& stream) {
  const size_t slash = stream.find('/');
  if (slash == std::string::npos) return std::nullopt;
  return stream.substr(0, slash);
}

bool StartsWith(const std::string& s, const std::string& prefix) { return s.compare(0, prefix.size(), prefix) == 0; }

// Digits only, no sign, below 2^63: a token's number.
bool ParseUint(const std::string& text, uint64_t* out) {
  if (text.empty() || text.size() > 18) return false;
  uint64_t v = 0;
  for (char ch : text) {
    if (ch < '0' || ch > '9') return false;
    v = v * 10 + static_cast<uint64_t>(ch - '0');
  }
  *out = v;
  return true;
}
bool ParseSize(const std::string& text, size_t* out) {
  uint64_t v = 0;
  if (!ParseUint(text, &v)) return false;
  *out = static_cast<size_t>(v);
  return true;
}

std::string Quote(const std::string& s) { return Json(s).dump(-1, ' ', false, Json::error_handler_t::replace); }

ApiResponse DescribeLogGroups(Request& r) {
  auto prefix = r.String("logGroupNamePrefix");
  auto pattern = r.String("logGroupNamePattern");
  if (r.error()) return *r.error();
  Json groups = Json::array();
  const std::string group = kTrainingJobLogGroup;
  if ((!prefix || StartsWith(group, *prefix)) && (!pattern || group.find(*pattern) != std::string::npos)) {
    groups.push_back({{"logGroupName", group}, {"storedBytes", 0}});
  }
  return r.Ok({{"logGroups", groups}});
}

ApiResponse DescribeLogStreams(Dispatcher& d, Request& r) {
  if (auto e = CheckGroup(r)) return *e;
  const std::string prefix = r.String("logStreamNamePrefix").value_or("");
  const std::string order = r.String("orderBy").value_or("LogStreamName");
  const bool descending = r.Bool("descending").value_or(false);
  const int64_t limit = r.Integer("limit").value_or(static_cast<int64_t>(kMaxStreamsPage));
  const std::string token = r.String("nextToken").value_or("");
  if (r.error()) return *r.error();
  if (order != "LogStreamName" && order != "LastEventTime") {
    return Invalid("1 validation error detected: Value '" + order + "' at 'orderBy' failed to satisfy constraint: "
                   "Member must satisfy enum value set: [LogStreamName, LastEventTime]");
  }
  if (order == "LastEventTime" && !prefix.empty()) {
    return Invalid("Cannot order by LastEventTime with a logStreamNamePrefix.");
  }
  if (limit < 1 || limit > static_cast<int64_t>(kMaxStreamsPage)) {
    return Invalid("1 validation error detected: Value '" + std::to_string(limit) +
                   "' at 'limit' failed to satisfy constraint: Member must have value between 1 and 50");
  }
  // The training jobs the prefix can reach: one, when it names one ("job-001-abc/"), else those
  // whose names start with it.
  const std::optional<std::string> exact = TrialOf(prefix);
  const std::string trial_prefix = exact ? *exact : prefix;
  return d.WithCore([&](CoordinatorCore& c) -> ApiResponse {
    std::vector<NamedStream> streams;
    if (order == "LogStreamName" && !descending) {
      // Name order, paged: training jobs in name order, each one's streams in name order. The
      // token is the last stream answered: its training job's later streams come next, then the
      // training jobs after it; enough are read for a page and one more.
      if (!token.empty() && (!StartsWith(token, "s/") || !TrialOf(token.substr(2)))) {
        return Invalid("The specified nextToken is invalid.");
      }
      const std::string after = token.empty() ? "" : token.substr(2);
      const std::string cursor = after.empty() ? "" : *TrialOf(after);
      std::vector<std::string> pending;
      if (exact) {
        if (c.FindTrial(*exact) && (cursor.empty() || cursor == *exact)) pending.push_back(*exact);
      } else if (!cursor.empty() && StartsWith(cursor, trial_prefix) && c.FindTrial(cursor)) {
        pending.push_back(cursor);
      }
      std::string last_trial = cursor;
      while (streams.size() <= static_cast<size_t>(limit)) {
        if (pending.empty()) {
          if (exact) break;
          pending = c.TrialNames(trial_prefix, last_trial, 64);
          if (pending.empty()) break;
        }
        for (const auto& t : pending) {
          auto mine = StreamsOf(c, t);
          if (!mine.ok()) return FromStatus(mine.status());
          for (auto& s : *mine) {
            if (StartsWith(s.name, prefix) && (t != cursor || s.name > after)) streams.push_back(std::move(s));
          }
        }
        last_trial = pending.back();
        pending.clear();
        if (exact) break;
      }
      Json out = Json::array();
      for (size_t i = 0; i < streams.size() && i < static_cast<size_t>(limit); ++i) {
        out.push_back(StreamJson(streams[i]));
      }
      Json res = {{"logStreams", out}};
      if (streams.size() > static_cast<size_t>(limit)) res["nextToken"] = "s/" + streams[limit - 1].name;
      return r.Ok(res);
    }
    // Another order reads every stream it orders, of at most kMaxTrialsScanned training jobs.
    std::vector<std::string> trials = c.TrialNames(trial_prefix, "", kMaxTrialsScanned + 1);
    if (trials.size() > kMaxTrialsScanned) {
      return Invalid("ordering by " + order + (descending ? " descending" : "") + " reads every stream, and more than " +
                     std::to_string(kMaxTrialsScanned) + " training jobs match; order by LogStreamName "
                     "ascending, or give a longer logStreamNamePrefix");
    }
    for (const auto& t : trials) {
      auto mine = StreamsOf(c, t);
      if (!mine.ok()) return FromStatus(mine.status());
      for (auto& s : *mine) {
        if (StartsWith(s.name, prefix)) streams.push_back(std::move(s));
      }
    }
    auto last = [](const NamedStream& s) { return s.row.last_ms > 0 ? s.row.last_ms : s.fallback_ms; };
    if (order == "LastEventTime") {
      std::stable_sort(streams.begin(), streams.end(),
                       [&](const NamedStream& a, const NamedStream& b) { return last(a) < last(b); });
    }
    if (descending) std::reverse(streams.begin(), streams.end());
    size_t offset = 0;
    if (!token.empty()) {
      if (!StartsWith(token, "o/") || !ParseSize(token.substr(2), &offset)) {
        return Invalid("The specified nextToken is invalid.");
      }
    }
    Json out = Json::array();
    for (size_t i = offset; i < streams.size() && i < offset + static_cast<size_t>(limit); ++i) {
      out.push_back(StreamJson(streams[i]));
    }
    Json res = {{"logStreams", out}};
    if (offset + static_cast<size_t>(limit) < streams.size()) res["nextToken"] = "o/" + std::to_string(offset + limit);
    return r.Ok(res);
  });
}

// startTime/endTime/limit, checked as CloudWatch does.
struct Window {
  int64_t start_ms = 0, end_ms = kNoEnd;
  size_t limit = kMaxEvents;
};
std::optional<ApiResponse> ReadWindow(Request& r, Window* w) {
  auto start = r.Integer("startTime");
  auto end = r.Integer("endTime");
  auto limit = r.Integer("limit");
  if (r.error()) return r.error();
  if (start && *start < 0) return Invalid("startTime must not be negative");
  if (end && *end < 0) return Invalid("endTime must not be negative");
  if (limit && (*limit < 1 || *limit > static_cast<int64_t>(kMaxEvents))) {
    return Invalid("1 validation error detected: Value '" + std::to_string(*limit) +
                   "' at 'limit' failed to satisfy constraint: Member must have value between 1 and 10000");
  }
  if (start) w->start_ms = *start;
  if (end) w->end_ms = *end;
  if (limit) w->limit = static_cast<size_t>(*limit);
  return std::nullopt;
}

int64_t TimeOf(const LogRow& l, int64_t fallback_ms) { return l.ts_ms > 0 ? l.ts_ms : fallback_ms; }

ApiResponse GetLogEvents(Dispatcher& d, Request& r) {
  if (auto e = CheckGroup(r)) return *e;
  auto stream = r.String("logStreamName");
  const bool from_head = r.Bool("startFromHead").value_or(false);
  const std::string token = r.String("nextToken").value_or("");
  Window w;
  if (auto e = ReadWindow(r, &w)) return *e;
  if (r.error()) return *r.error();
  if (!stream) {
    return Invalid("1 validation error detected: Value null at 'logStreamName' failed to satisfy constraint: "
                   "Member must not be null");
  }
  // The token: f/N reads forward from line N, b/N backward from before it.
  bool forward = from_head;
  std::optional<uint64_t> at;
  if (!token.empty()) {
    uint64_t n = 0;
    if (token.size() < 3 || (token[0] != 'f' && token[0] != 'b') || token[1] != '/' ||
        !ParseUint(token.substr(2), &n)) {
      return Invalid("The specified nextToken is invalid.");
    }
    forward = token[0] == 'f';
    at = n;
  }
  const std::optional<std::string> trial = TrialOf(*stream);
  return d.WithCore([&](CoordinatorCore& c) -> ApiResponse {
    if (!trial || !c.FindTrial(*trial)) return NotFound("The specified log stream does not exist.");
    auto streams = StreamsOf(c, *trial);
    if (!streams.ok()) return FromStatus(streams.status());
    auto s = std::find_if(streams->begin(), streams->end(), [&](const NamedStream& x) { return x.name == *stream; });
    if (s == streams->end()) return NotFound("The specified log stream does not exist.");
    const uint64_t from = forward ? at.value_or(0) : 0, to = forward ? kLogLineLimit : at.value_or(kLogLineLimit);
    auto lines = c.StreamLines(*trial, s->row.attempt, s->row.host, from, to, w.start_ms, w.end_ms, w.limit, !forward);
    if (!lines.ok()) return FromStatus(lines.status());
    // At most kMaxPageBytes (one event at least), cut at the far end: the tokens go on from there.
    size_t bytes = 0, keep = 0;
    for (; keep < lines->size(); ++keep) {
      const LogRow& l = forward ? (*lines)[keep] : (*lines)[lines->size() - 1 - keep];
      bytes += l.text.size() + kEventOverhead;
      if (keep > 0 && bytes > kMaxPageBytes) break;
    }
    if (forward) {
      lines->resize(keep);
    } else {
      lines->erase(lines->begin(), lines->end() - static_cast<std::ptrdiff_t>(keep));
    }
    Json events = Json::array();
    for (const LogRow& l : *lines) {
      const int64_t ts = TimeOf(l, s->fallback_ms);
      events.push_back({{"timestamp", ts}, {"message", l.text}, {"ingestionTime", ts}});
    }
    std::string next_forward, next_backward;
    if (!lines->empty()) {
      next_forward = "f/" + std::to_string(LogLineNumber(lines->back().line) + 1);
      next_backward = "b/" + std::to_string(LogLineNumber(lines->front().line));
    } else {
      next_forward = forward && !token.empty() ? token : "f/" + std::to_string(from);
      next_backward = !forward && !token.empty() ? token : "b/" + std::to_string(forward ? from : 0);
    }
    return r.Ok({{"events", events}, {"nextForwardToken", next_forward}, {"nextBackwardToken", next_backward}});
  });
}

ApiResponse FilterLogEvents(Dispatcher& d, Request& r) {
  if (auto e = CheckGroup(r)) return *e;
  auto names = r.Strings("logStreamNames");
  auto prefix = r.String("logStreamNamePrefix");
  const std::string pattern_text = r.String("filterPattern").value_or("");
  const std::string token = r.String("nextToken").value_or("");
  Window w;
  if (auto e = ReadWindow(r, &w)) return *e;
  if (r.error()) return *r.error();
  if (names && prefix) return Invalid("logStreamNames and logStreamNamePrefix are mutually exclusive");
  if (names && (names->empty() || names->size() > kMaxStreamNames)) {
    return Invalid("logStreamNames must name between 1 and 100 streams");
  }
  Result<LogFilter> pattern = LogFilter::Parse(pattern_text);
  if (!pattern.ok()) return Invalid("filterPattern " + Quote(pattern_text) + ": " + pattern.status().message());
  int64_t after_ms = std::numeric_limits<int64_t>::min(), after_id = 0;
  if (!token.empty()) {
    const size_t slash = token.find('/', 2);
    uint64_t ms = 0, id = 0;
    if (!StartsWith(token, "t/") || slash == std::string::npos || !ParseUint(token.substr(2, slash - 2), &ms) ||
        !ParseUint(token.substr(slash + 1), &id)) {
      return Invalid("The specified nextToken is invalid.");
    }
    after_ms = static_cast<int64_t>(ms), after_id = static_cast<int64_t>(id);
  }
  return d.WithCore([&](CoordinatorCore& c) -> ApiResponse {
    // The training jobs read, and the name of each (attempt, host) stream of theirs.
    std::vector<std::string> trials;
    if (names) {
      for (const auto& n : *names) {
        if (auto t = TrialOf(n); t && c.FindTrial(*t) && std::find(trials.begin(), trials.end(), *t) == trials.end()) {
          trials.push_back(*t);
        }
      }
    } else {
      const std::string p = prefix.value_or("");
      const std::optional<std::string> exact = TrialOf(p);
      trials = exact ? (c.FindTrial(*exact) ? std::vector<std::string>{*exact} : std::vector<std::string>{})
                     : c.TrialNames(p, "", kMaxTrialsScanned + 1);
      if (trials.size() > kMaxTrialsScanned) {
        return Invalid("more than " + std::to_string(kMaxTrialsScanned) + " training jobs' streams match; give a "
                       "logStreamNamePrefix that names fewer (a tuning job's training jobs share its name)");
      }
    }
    std::map<std::tuple<std::string, uint32_t, uint32_t>, const NamedStream*> stream_of;
    std::vector<std::vector<NamedStream>> kept;
    kept.reserve(trials.size());
    for (const auto& t : trials) {
      auto mine = StreamsOf(c, t);
      if (!mine.ok()) return FromStatus(mine.status());
      kept.push_back(std::move(*mine));
      for (const auto& s : kept.back()) stream_of[{s.row.trial, s.row.attempt, s.row.host}] = &s;
    }
    auto wanted = [&](const NamedStream& s) {
      if (names) return std::find(names->begin(), names->end(), s.name) != names->end();
      return !prefix || StartsWith(s.name, *prefix);
    };
    // Lines in time order, read in batches; those of streams not asked for or not matching the
    // pattern are passed over. At most kMaxEvents lines are read per call: the token goes on.
    Json events = Json::array();
    size_t read = 0, bytes = 0;
    bool more = false, full = false;
    int64_t last_ms = after_ms, last_id = after_id;  // the last line passed over or answered
    // FilterLogEvents' endTime is inclusive ("events with a timestamp later than this time are not
    // returned"); GetLogEvents' is not ("equal to or later").
    const int64_t end_ms = w.end_ms == kNoEnd ? kNoEnd : w.end_ms + 1;
    while (!full && read < kMaxEvents && !trials.empty()) {
      const size_t batch = std::min(kMaxEvents - read, w.limit - events.size() + 100);
      auto rows = c.LinesByTime(trials, w.start_ms, end_ms, last_ms, last_id, batch);
      if (!rows.ok()) return FromStatus(rows.status());
      for (const LogRow& l : *rows) {
        auto s = stream_of.find({l.trial, l.attempt, LogLineHost(l.line)});
        if (s != stream_of.end() && wanted(*s->second) && pattern->Matches(l.text)) {
          if (!events.empty() && bytes + l.text.size() + kEventOverhead > kMaxPageBytes) {
            full = true;  // this line starts the next page
            break;
          }
          bytes += l.text.size() + kEventOverhead;
          const int64_t ts = TimeOf(l, s->second->fallback_ms);
          events.push_back({{"logStreamName", s->second->name},
                            {"timestamp", ts},
                            {"message", l.text},
                            {"ingestionTime", ts},
                            {"eventId", std::to_string(l.id)}});
        }
        ++read;
        last_ms = l.ts_ms, last_id = l.id;
        if (events.size() == w.limit) {
          full = true;
          break;
        }
      }
      more = full || rows->size() == batch;
      if (rows->size() < batch) break;
    }
    if (read >= kMaxEvents) more = true;
    Json res = {{"events", events}, {"searchedLogStreams", Json::array()}};
    if (more) res["nextToken"] = "t/" + std::to_string(std::max<int64_t>(last_ms, 0)) + "/" + std::to_string(last_id);
    return r.Ok(res);
  });
}

}  // namespace

ApiResponse HandleLogsAction(Dispatcher& d, const std::string& action, const std::string& body) {
  AwsRequest r(body, kContentType);
  if (r.error()) return *r.error();
  if (action == "DescribeLogGroups") return DescribeLogGroups(r);
  if (action == "DescribeLogStreams") return DescribeLogStreams(d, r);
  if (action == "GetLogEvents") return GetLogEvents(d, r);
  if (action == "FilterLogEvents") return FilterLogEvents(d, r);
  return Error(400, "UnknownOperationException",
               "this coordinator serves the training jobs' logs as CloudWatch Logs with DescribeLogGroups, "
               "DescribeLogStreams, GetLogEvents and FilterLogEvents; it does not implement " + action);
}

}  // namespace hpo::coordinator
