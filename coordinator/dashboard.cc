#include "coordinator/dashboard.h"

#include <algorithm>
#include <charconv>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <ctime>
#include <deque>
#include <functional>
#include <limits>
#include <optional>
#include <cctype>
#include <set>
#include <string>
#include <tuple>
#include <utility>
#include <vector>

#include "common/text.h"
#include "coordinator/dashboard_charts.h"
#include "kernels/gp_model.h"
#include "proto/validate.h"

namespace hpo::coordinator::dashboard {

namespace {

using charts::Better;
using charts::CurvesChart;
using charts::ImportanceChart;
using charts::Legend;
using charts::Num;
using charts::Running;
using charts::ObjectiveChart;
using charts::ParallelChart;
using charts::ParseDouble;
using charts::RangeInfo;
using charts::ScatterChart;
using charts::TrialPoint;

// ---------------------------------------------------------------------------------------------
// Text

std::string Time(double epoch_s) {
  if (epoch_s <= 0) return "";
  std::time_t t = static_cast<std::time_t>(epoch_s);
  std::tm tm{};
  gmtime_r(&t, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%d %H:%M:%S", &tm);
  return buf;
}

}  // namespace

std::string Duration(double seconds) {
  if (!(seconds >= 0)) return "";
  long s = std::lround(seconds);
  char buf[48];
  if (seconds < 9.95) {  // a short training job: to a tenth ("0s" for 0.2 s and 0.5 s said nothing)
    std::snprintf(buf, sizeof buf, "%.1fs", seconds);
  } else if (s < 60) {
    std::snprintf(buf, sizeof buf, "%lds", s);
  } else if (s < 3600) {
    std::snprintf(buf, sizeof buf, "%ldm %02lds", s / 60, s % 60);
  } else if (s < 86400) {
    std::snprintf(buf, sizeof buf, "%ldh %02ldm", s / 3600, s / 60 % 60);
  } else {
    std::snprintf(buf, sizeof buf, "%ldd %02ldh", s / 86400, s / 3600 % 24);
  }
  return buf;
}

namespace {

std::string Str(const Json& j, const char* key) {
  if (!j.is_object() || !j.contains(key)) return "";
  const Json& v = j[key];
  if (v.is_string()) return v.get<std::string>();
  if (v.is_null()) return "";
  return v.dump();
}

double NumOf(const Json& j, const char* key, double fallback = 0) {
  if (!j.is_object() || !j.contains(key)) return fallback;
  const Json& v = j[key];
  if (v.is_number()) return v.get<double>();
  if (v.is_string()) {
    char* end = nullptr;
    const std::string s = v.get<std::string>();
    double d = std::strtod(s.c_str(), &end);
    if (end && *end == '\0' && !s.empty()) return d;
  }
  return fallback;
}

// A tuning job's or training job's name as SageMaker allows them: letters, digits and hyphens,
// starting and ending with a letter or digit, at most 63 characters.
bool ValidName(const std::string& n) { return n.size() <= 63 && proto::IsHyphenatedName(n); }

// The tuning job of a training job named `<job>-NNN-xxxxxxxx`.
std::string JobOfTrial(const std::string& trial) {
  size_t b = trial.rfind('-');
  if (b == std::string::npos || b == 0) return "";
  size_t a = trial.rfind('-', b - 1);
  if (a == std::string::npos || a == 0) return "";
  return trial.substr(0, a);
}

std::string StatusBadge(const std::string& status) {
  std::string cls = "st-other";
  if (status == "Completed") cls = "st-ok";
  else if (status == "InProgress") cls = "st-run";
  else if (status == "Failed") cls = "st-fail";
  else if (status == "Stopped") cls = "st-stop";
  else if (status == "Stopping" || status == "Deleting") cls = "st-stopping";
  else if (status == "DeleteFailed") cls = "st-fail";
  return "<span class=\"badge " + cls + "\">" + Escape(status) + "</span>";
}

std::string Link(const std::string& href, const std::string& text) {
  return "<a href=\"" + Escape(href) + "\">" + Escape(text) + "</a>";
}

const char* kStyle = R"CSS(
body{font-family:system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;margin:0;color:#1d2330;background:#f6f7f9}
header{background:#232f3e;color:#fff;padding:10px 24px;display:flex;align-items:baseline;gap:18px}
header a{color:#fff;text-decoration:none;font-weight:600;font-size:18px}
header .sub{color:#c8ced8;font-size:13px}
main{padding:16px 24px;max-width:1400px}
h1{font-size:22px;margin:8px 0 4px}h2{font-size:17px;margin:22px 0 8px}
.muted{color:#5f6b7a;font-size:13px}
table{border-collapse:collapse;background:#fff;font-size:13px}
th,td{border-bottom:1px solid #e3e6ea;padding:5px 10px;text-align:left;vertical-align:top;overflow-wrap:anywhere;max-width:40em}
th{background:#eef0f3;font-weight:600;overflow-wrap:normal}
td.num{text-align:right;font-variant-numeric:tabular-nums;white-space:nowrap;overflow-wrap:normal}
tr.best td{background:#eaf6ea}
.badge{display:inline-block;padding:1px 8px;border-radius:10px;font-size:12px;font-weight:600;white-space:nowrap}
.st-ok{background:#d7f0d8;color:#145a1c}.st-run{background:#d8e8fb;color:#0b4a8b}
.st-fail{background:#fbdad7;color:#8b1a10}.st-stop{background:#e4e6ea;color:#3c4450}
.st-stopping{background:#fde9c9;color:#7a4a00}.st-other{background:#eee;color:#333}
.cards{display:flex;flex-wrap:wrap;gap:12px}
.card{background:#fff;border:1px solid #e3e6ea;border-radius:6px;padding:10px 14px;min-width:150px}
.card .k{color:#5f6b7a;font-size:12px}.card .v{font-size:18px;font-weight:600;margin-top:2px}
.bar{background:#e3e6ea;border-radius:4px;height:8px;width:160px;display:inline-block;vertical-align:middle}
.bar span{display:block;height:8px;border-radius:4px;background:#2f7d32}
.charts{display:flex;flex-wrap:wrap;gap:12px}
svg{background:#fff;border:1px solid #e3e6ea;border-radius:6px}
svg text{font-size:11px;fill:#3c4450}svg .title{font-size:13px;font-weight:600;fill:#1d2330}
pre.log{background:#111821;color:#d8dee9;padding:10px;font-size:12px;overflow-x:auto;max-height:600px;border-radius:6px}
.err{background:#fbdad7;border:1px solid #e8a29b;padding:8px 12px;border-radius:6px;white-space:pre-wrap}
td.name{white-space:nowrap}
.note{background:#eef4fb;border:1px solid #bcd3ee;padding:6px 12px;border-radius:6px}
.warn{background:#fdf3dc;border:1px solid #ebcd83;padding:6px 12px;border-radius:6px}
.legend span{margin-right:14px;font-size:12px}.dot{display:inline-block;width:9px;height:9px;border-radius:5px;margin-right:4px}
)CSS";

// Seconds until a running job's page reloads: the configured interval, or ten times what this
// page took to draw when that is longer (a 10,000-trial job's page), so an open browser tab never
// costs the coordinator more than a tenth of its time.
int Refresh(int refresh_s, std::chrono::steady_clock::time_point started) {
  if (refresh_s <= 0) return 0;
  const double took = std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
  return std::max(refresh_s, static_cast<int>(std::ceil(took * 10)));
}

std::string Html(const std::string& title, const std::string& body, int refresh_s, const std::string& subtitle) {
  std::string h = "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">";
  if (refresh_s > 0) h += "<meta http-equiv=\"refresh\" content=\"" + std::to_string(refresh_s) + "\">";
  h += "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">";
  h += "<title>" + Escape(title) + " - hpo</title><style>" + std::string(kStyle) + "</style></head><body>";
  h += "<header><a href=\"/ui/\">hpo</a><span class=\"sub\">tuning jobs";
  if (!subtitle.empty()) h += " &middot; " + Escape(subtitle);
  h += "</span></header><main>" + body + "</main></body></html>\n";
  return h;
}

Page ErrorPage(int status, const std::string& title, const std::string& message, const PageOptions& o) {
  Page p;
  p.status = status;
  p.body = Html(title,
                "<h1>" + Escape(title) + "</h1><div class=\"err\">" + Escape(message) +
                    "</div><p><a href=\"/ui/\">All tuning jobs</a></p>",
                0, o.subtitle);
  return p;
}

Page FromError(const Status& s, const std::string& what, const PageOptions& o) {
  if (s.code() == StatusCode::kNotFound) return ErrorPage(404, "Not found", s.message(), o);
  return ErrorPage(502, "Cannot read " + what, s.message(), o);
}

// ---------------------------------------------------------------------------------------------
// Pages

// Pages through a cursor API (/hpo/v1/events, /hpo/v1/logs: `key` holds the items, `next` the
// cursor) from the start, at most `max_pages` pages, keeping the last `keep` items; *total
// counts them all (when not null). nullopt when the first page cannot be read; a later failure ends the paging.
std::optional<std::deque<Json>> LastOf(const std::function<Result<Json>(int64_t after)>& page, const char* key,
                                       size_t keep, int max_pages, size_t* total) {
  std::deque<Json> last;
  int64_t after = 0;
  for (int p = 0; p < max_pages; ++p) {
    auto r = page(after);
    if (!r.ok()) {
      if (p == 0) return std::nullopt;
      break;
    }
    const Json items = r->value(key, Json::array());
    for (const Json& item : items) {
      if (total) ++*total;
      last.push_back(item);
      if (last.size() > keep) last.pop_front();
    }
    const int64_t next = r->value("next", after);
    if (items.empty() || next <= after) break;
    after = next;
  }
  return last;
}

// The job's objective: the config's, or (several definitions) the first definition's.
Json ObjectiveOf(const Json& desc) {
  const Json cfg = desc.value("HyperParameterTuningJobConfig", Json::object());
  if (cfg.contains("HyperParameterTuningJobObjective")) return cfg["HyperParameterTuningJobObjective"];
  for (const Json& def : desc.value("TrainingJobDefinitions", Json::array())) {
    if (def.contains("TuningObjective")) return def["TuningObjective"];
  }
  return Json::object();
}

Page JobsPage(Source& src, const PageOptions& o) {
  const auto started = std::chrono::steady_clock::now();
  auto list = src.Action("ListHyperParameterTuningJobs",
                         Json{{"MaxResults", 100}, {"SortBy", "CreationTime"}, {"SortOrder", "Descending"}});
  if (!list.ok()) return FromError(list.status(), "the tuning jobs", o);
  const Json& jobs = (*list)["HyperParameterTuningJobSummaries"];
  std::string b = "<h1>Tuning jobs</h1><p class=\"muted\">" + Link("/ui/workers", "Workers") + "</p>";
  bool any_running = false;
  if (!jobs.is_array() || jobs.empty()) {
    b += "<p>No tuning jobs yet. Submit one with <code>hpo submit spec.yaml</code> (or "
         "<code>aws sagemaker create-hyper-parameter-tuning-job --endpoint-url ...</code>).</p>";
  } else {
    // A form without scripts: the ticked jobs go to /ui/compare as ?jobs=a&jobs=b.
    b += "<form method=\"get\" action=\"/ui/compare\">";
    b += "<table id=\"jobs\"><tr><th>Name</th><th>Status</th><th>Strategy</th><th>Objective</th><th>Best</th>"
         "<th>Training jobs</th><th>Created (UTC)</th><th>Duration</th><th>Compare</th></tr>";
    for (const Json& j : jobs) {
      const std::string name = Str(j, "HyperParameterTuningJobName");
      const std::string status = Str(j, "HyperParameterTuningJobStatus");
      any_running = any_running || Running(status);
      auto d = src.Action("DescribeHyperParameterTuningJob", Json{{"HyperParameterTuningJobName", name}});
      Json desc = d.ok() ? *d : Json::object();
      const Json cfg = desc.value("HyperParameterTuningJobConfig", Json::object());
      const Json obj = ObjectiveOf(desc);
      const Json counters = desc.value("TrainingJobStatusCounters", Json::object());
      const Json best = desc.value("BestTrainingJob", Json::object());
      const Json limits = cfg.value("ResourceLimits", Json::object());
      int done = static_cast<int>(NumOf(counters, "Completed") + NumOf(counters, "Stopped") +
                                  NumOf(counters, "NonRetryableError") + NumOf(counters, "RetryableError"));
      int running = static_cast<int>(NumOf(counters, "InProgress"));
      int max = static_cast<int>(NumOf(limits, "MaxNumberOfTrainingJobs", done + running));
      std::string best_cell;
      if (best.contains("FinalHyperParameterTuningJobObjectiveMetric")) {
        best_cell = Num(NumOf(best["FinalHyperParameterTuningJobObjectiveMetric"], "Value"));
      }
      double created = NumOf(j, "CreationTime");
      double ended = NumOf(j, "HyperParameterTuningEndTime");
      double now = static_cast<double>(std::time(nullptr));
      int pct = max > 0 ? std::min(100, done * 100 / max) : 0;
      b += "<tr><td>" + Link("/ui/jobs/" + name, name) + "</td><td>" + StatusBadge(status) + "</td><td>" +
           Escape(Str(j, "Strategy")) + "</td><td>" + Escape(Str(obj, "Type") + " " + Str(obj, "MetricName")) +
           "</td><td class=\"num\">" + Escape(best_cell) + "</td><td><span class=\"bar\"><span style=\"width:" +
           std::to_string(pct) + "%\"></span></span> " + std::to_string(done) + " / " + std::to_string(max) +
           (running ? " (" + std::to_string(running) + " running)" : std::string()) + "</td><td>" + Time(created) +
           "</td><td>" + Duration((ended > 0 ? ended : now) - created) +
           "</td><td><input type=\"checkbox\" name=\"jobs\" value=\"" + Escape(name) + "\" aria-label=\"compare " +
           Escape(name) + "\"></td></tr>";
    }
    b += "</table><p><button type=\"submit\">Compare the ticked jobs</button> <span class=\"muted\">best, best at "
         "an equal number of training jobs, best so far</span></p></form>";
    if (list->contains("NextToken")) b += "<p class=\"muted\">The 100 newest tuning jobs are shown.</p>";
  }
  Page p;
  p.body = Html("Tuning jobs", b, any_running ? Refresh(o.refresh_s, started) : 0, o.subtitle);
  return p;
}

// The cluster's workers: what each has, what runs there, whether it takes new training jobs.
Page WorkersPage(Source& src, const PageOptions& o) {
  const auto started = std::chrono::steady_clock::now();
  auto got = src.Workers();
  std::string b = "<p class=\"muted\"><a href=\"/ui/\">Tuning jobs</a> &rsaquo;</p><h1>Workers</h1>";
  if (!got.ok()) {
    b += "<div class=\"err\">" + Escape(got.status().message()) + "</div>";
    Page p;
    p.body = Html("Workers", b, 0, o.subtitle);
    return p;
  }
  const Json workers = got->value("Workers", Json::array());
  if (workers.empty()) {
    b += "<p>No worker has registered. Start one with <code>hpo worker --connect tcp://COORDINATOR:7700</code>.</p>";
  } else {
    int slots = 0, running = 0, open = 0, registered_n = 0, departed_n = 0;
    std::string rows;
    for (const Json& w : workers) {
      const std::string id = Str(w, "WorkerId"), state = Str(w, "State");
      const bool registered = w.value("Registered", true);
      registered_n += registered;
      departed_n += w.contains("GoneSecondsAgo");
      const std::string cls = state == "Open" ? "st-ok" : state == "Cordoned" || state == "Lost" ? "st-stop" : "st-stopping";
      rows += "<tr><td class=\"name\">" + Escape(id) + "</td><td><span class=\"badge " + cls + "\">" + Escape(state) +
              "</span>" + (registered ? "" : " <span class=\"muted\">not registered</span>") + "</td>";
      if (!registered) {
        // Lost or gone: when it was last heard; a cordoned id: nothing more.
        rows += w.contains("GoneSecondsAgo")
                    ? "<td colspan=\"6\" class=\"muted\">" + Escape(Str(w, "Host")) + ", last heard " +
                          Num(std::round(NumOf(w, "LastHeardSecondsAgo"))) + " s ago</td>"
                    : "<td colspan=\"6\"></td>";
      } else {
        const int n = static_cast<int>(NumOf(w, "Running")), s = static_cast<int>(NumOf(w, "Slots"));
        slots += s;
        running += n;
        open += state == "Open" ? 1 : 0;
        const int pct = s > 0 ? std::min(100, n * 100 / s) : 0;
        std::string gpus = "-";
        const Json g = w.value("Gpus", Json::array());
        if (!g.empty()) {
          int used = 0;
          for (const Json& x : g) used += x.value("InUse", false) ? 1 : 0;
          gpus = std::to_string(used) + " / " + std::to_string(g.size()) + " " + Str(g[0], "Name");
        }
        const double disk = NumOf(w, "FreeDiskMiB");
        rows += "<td><span class=\"bar\"><span style=\"width:" + std::to_string(pct) + "%\"></span></span> " +
                std::to_string(n) + " / " + std::to_string(s) +
                (NumOf(w, "QueuedAhead") > 0 ? " (+" + Num(NumOf(w, "QueuedAhead")) + " queued)" : std::string()) +
                "</td><td>" + Escape(gpus) + "</td><td class=\"num\">" +
                (disk > 0 ? Num(std::round(disk / 1024)) + " GiB" : std::string("-")) + "</td><td>" +
                Escape(Str(w, "InstanceType").empty() ? "(what fits)" : Str(w, "InstanceType")) +
                (w.value("Spot", false) ? " spot" : "") + "</td><td>" + Escape(Str(w, "Host")) + "</td><td class=\"num\">" +
                Num(std::round(NumOf(w, "LastHeardSecondsAgo") * 10) / 10) + " s ago</td>";
      }
      rows += "</tr>";
      if (!Str(w, "Reason").empty()) {
        rows += "<tr><td></td><td colspan=\"7\" class=\"muted\">" + Escape(Str(w, "Reason")) + "</td></tr>";
      }
    }
    b += "<p>" + std::to_string(registered_n) + " worker(s), " + std::to_string(open) + " open; " +
         std::to_string(running) + " of " + std::to_string(slots) + " slots running training jobs" +
         (departed_n > 0 ? "; " + std::to_string(departed_n) + " lost or gone (listed until they register again)" : "") +
         ".</p>";
    b += "<table id=\"workers\"><tr><th>Worker</th><th>State</th><th>Running / slots</th><th>GPUs in use</th>"
         "<th>Free disk</th><th>Type</th><th>Host</th><th>Heard</th></tr>" +
         rows + "</table>";
    b += "<p class=\"muted\">Take one out of service with <code>hpo workers drain ID" + Escape(o.cli_flags) +
         "</code>; put it back with <code>hpo workers uncordon ID" + Escape(o.cli_flags) + "</code>.</p>";
  }
  Page p;
  p.body = Html("Workers", b, Refresh(o.refresh_s, started), o.subtitle);
  return p;
}

// Every tuned range of the job (the config's, then each definition's), one per name where the
// definitions agree on it, else one per definition (RangeInfo::definition: one definition's
// depth 1..5 beside another's 100..200 drew the second's points far off the first's axis; a
// multi-definition pass); with `definition`, only that definition's.
std::vector<RangeInfo> RangesOf(const Json& desc, const std::string& definition = "") {
  std::vector<RangeInfo> out;
  std::set<std::string> seen;
  std::string of;  // the definition whose ranges are being added
  auto add = [&](const Json& pr) {
    if (!pr.is_object()) return;
    for (const char* kind : {"IntegerParameterRanges", "ContinuousParameterRanges", "CategoricalParameterRanges"}) {
      if (!pr.contains(kind) || !pr[kind].is_array()) continue;
      for (const Json& r : pr[kind]) {
        RangeInfo info;
        info.name = Str(r, "Name");
        info.definition = of;
        if (info.name.empty() || !seen.insert(of + '\n' + info.name).second) continue;
        info.kind = std::string(kind).substr(0, std::string(kind).find("Parameter"));
        if (info.kind == "Categorical") {
          for (const Json& v : r.value("Values", Json::array())) info.values.push_back(v.is_string() ? v.get<std::string>() : v.dump());
        } else {
          info.min = NumOf(r, "MinValue");
          info.max = NumOf(r, "MaxValue");
          const std::string scaling = Str(r, "ScalingType");
          info.log = info.min > 0 && (scaling == "Logarithmic" || (scaling == "Auto" && info.max / info.min >= 100));
          info.reverse_log = scaling == "ReverseLogarithmic" && info.max < 1;
        }
        out.push_back(std::move(info));
      }
    }
  };
  if (definition.empty()) {
    add(desc.value("HyperParameterTuningJobConfig", Json::object()).value("ParameterRanges", Json::object()));
  }
  for (const Json& def : desc.value("TrainingJobDefinitions", Json::array())) {
    of = Str(def, "DefinitionName");
    if (definition.empty() || of == definition) add(def.value("HyperParameterRanges", Json::object()));
  }
  // A name whose ranges agree is one range of no definition (its first place kept).
  auto same = [](const RangeInfo& a, const RangeInfo& b) {
    return a.kind == b.kind && a.min == b.min && a.max == b.max && a.log == b.log && a.reverse_log == b.reverse_log &&
           a.values == b.values;
  };
  std::vector<RangeInfo> merged;
  for (const RangeInfo& r : out) {
    const bool agree =
        std::all_of(out.begin(), out.end(), [&](const RangeInfo& o) { return o.name != r.name || same(o, r); });
    if (agree && std::any_of(merged.begin(), merged.end(), [&](const RangeInfo& m) { return m.name == r.name; })) {
      continue;
    }
    merged.push_back(r);
    if (agree) merged.back().definition.clear();
  }
  return merged;
}

// Every TrainingJobSummary of the job (all pages), in the order the API lists them.
Result<Json> SummariesOf(Source& src, const std::string& job) {
  Json all = Json::array();
  std::string token;
  for (;;) {  // every page: a table or CSV that silently missed rows would mislead
    // By creation time: the order the coordinator keeps them in, so each page costs it no sort.
    Json req = {{"HyperParameterTuningJobName", job}, {"MaxResults", 100}, {"SortBy", "CreationTime"}};
    if (!token.empty()) req["NextToken"] = token;
    auto r = src.Action("ListTrainingJobsForHyperParameterTuningJob", req);
    if (!r.ok()) return r.status();
    for (const Json& s : r->value("TrainingJobSummaries", Json::array())) all.push_back(s);
    const std::string next = Str(*r, "NextToken");
    if (next.empty() || next == token) break;
    token = next;
  }
  return all;
}

Result<std::vector<TrialPoint>> TrialsOf(Source& src, const std::string& job) {
  std::vector<TrialPoint> out;
  auto all = SummariesOf(src, job);
  if (!all.ok()) return all.status();
  {
    for (const Json& s : *all) {
      TrialPoint t;
      t.name = Str(s, "TrainingJobName");
      t.status = Str(s, "TrainingJobStatus");
      t.definition = Str(s, "TrainingJobDefinitionName");
      t.created = NumOf(s, "CreationTime");
      t.started = NumOf(s, "TrainingStartTime");
      t.ended = NumOf(s, "TrainingEndTime");
      t.failure = Str(s, "FailureReason");
      if (s.contains("FinalHyperParameterTuningJobObjectiveMetric")) {
        const Json& m = s["FinalHyperParameterTuningJobObjectiveMetric"];
        if (m.contains("Value") && m["Value"].is_number()) t.objective = m["Value"].get<double>();
      }
      const Json tuned = s.value("TunedHyperParameters", Json::object());
      for (const auto& [k, v] : tuned.items()) {
        t.tuned[k] = v.is_string() ? v.get<std::string>() : v.dump();
      }
      out.push_back(std::move(t));
    }
  }
  // Each is numbered by the NNN of its name (JOB-NNN-xxxxxxxx), the number people read: a rank
  // in creation order differed (a training job queued ahead is created when it launches, after
  // later-numbered ones), so "#7633" was JOB-7629. A name without one is numbered after the rest.
  int unnumbered = 0;
  for (TrialPoint& t : out) {
    const std::string prefix = job + "-";
    if (t.name.rfind(prefix, 0) == 0) {
      const size_t end = t.name.find('-', prefix.size());
      const std::string digits = t.name.substr(prefix.size(), end == std::string::npos ? std::string::npos : end - prefix.size());
      if (!digits.empty() && digits.size() <= 9 &&
          std::all_of(digits.begin(), digits.end(), [](unsigned char c) { return std::isdigit(c); })) {
        t.number = std::stoi(digits);
        continue;
      }
    }
    t.number = 0;
    ++unnumbered;
  }
  std::sort(out.begin(), out.end(), [](const TrialPoint& a, const TrialPoint& b) {
    return std::make_tuple(a.number == 0, a.number, a.created, a.name) <
           std::make_tuple(b.number == 0, b.number, b.created, b.name);
  });
  if (unnumbered > 0) {
    int next = 0;
    for (const TrialPoint& t : out) next = std::max(next, t.number);
    for (TrialPoint& t : out) {
      if (t.number == 0) t.number = ++next;
    }
  }
  return out;
}

}  // namespace

Result<Json> Compare(const std::vector<CompareJob>& given, size_t budget, double now_s) {
  std::vector<CompareJob> jobs;  // each once (`hpo compare a a` listed it twice, both starred)
  std::set<std::pair<const Source*, std::string>> seen;
  for (const CompareJob& j : given) {
    if (seen.emplace(j.source, j.name).second) jobs.push_back(j);
  }
  bool skips_empty = false;
  struct Got {
    Json desc;
    std::vector<TrialPoint> trials;
  };
  std::vector<Got> got;
  size_t fewest = 0;
  std::vector<std::string> labels;
  for (const CompareJob& j : jobs) {
    const std::string& label = labels.emplace_back(j.label.empty() ? j.name : j.label);
    auto desc = j.source->Action("DescribeHyperParameterTuningJob", Json{{"HyperParameterTuningJobName", j.name}});
    if (!desc.ok()) return Status(desc.status().code(), label + ": " + desc.status().message());
    auto trials = TrialsOf(*j.source, j.name);
    if (!trials.ok()) return Status(trials.status().code(), label + ": " + trials.status().message());
    // A job with no training job yet sets no budget (every job would be judged on none).
    if (!trials->empty()) fewest = fewest == 0 ? trials->size() : std::min(fewest, trials->size());
    skips_empty = skips_empty || trials->empty();
    got.push_back({std::move(desc).value(), std::move(trials).value()});
  }
  const size_t n = budget > 0 ? budget : fewest;
  Json out = {{"Budget", n},        {"BudgetFromFewest", budget == 0}, {"BudgetSkipsEmpty", budget == 0 && skips_empty},
              {"Notes", Json::array()}, {"Jobs", Json::array()}};
  std::set<std::string> objectives, types, metrics;
  for (size_t i = 0; i < jobs.size(); ++i) {
    const Json& desc = got[i].desc;
    const std::vector<TrialPoint>& trials = got[i].trials;
    const Json objective = ObjectiveOf(desc);
    const std::string metric = Str(objective, "MetricName"), type = Str(objective, "Type");
    const bool minimize = type != "Maximize";
    objectives.insert(type + " " + metric);
    types.insert(minimize ? "Minimize" : "Maximize");
    metrics.insert(metric);
    std::optional<double> best, at_budget;
    const TrialPoint* best_trial = nullptr;
    size_t best_number = 0, with_objective = 0;
    Json so_far = Json::array();
    for (size_t k = 0; k < trials.size(); ++k) {
      const TrialPoint& t = trials[k];
      if (t.objective && std::isfinite(*t.objective)) {
        ++with_objective;
        // Of equal values, the one that ended first, as Describe's best (it found a later-created
        // one that ended first, and timed "to best" by another: a dashboard pass).
        const bool tie_ended_first = best && *t.objective == *best && t.ended > 0 &&
                                     (best_trial->ended <= 0 || t.ended < best_trial->ended);
        if (!best || Better(*t.objective, *best, minimize) || tie_ended_first) {
          best = t.objective;
          best_trial = &t;
          best_number = k + 1;
        }
      }
      if (k + 1 == n) at_budget = best;
      so_far.push_back(best ? Json(*best) : Json(nullptr));
    }
    if (n > trials.size()) {
      at_budget = best;
      out["Notes"].push_back(labels[i] + " has " +
                             std::to_string(trials.size()) + " training jobs, fewer than " + std::to_string(n) +
                             ": its best at " + std::to_string(n) + " is its best so far");
    }
    const double created = NumOf(desc, "CreationTime"), ended = NumOf(desc, "HyperParameterTuningEndTime");
    const double until = ended > 0 ? ended : now_s;
    auto number_or_null = [](const std::optional<double>& v) { return v ? Json(*v) : Json(nullptr); };
    Json row = {
        {"Label", labels[i]},
        {"HyperParameterTuningJobName", Str(desc, "HyperParameterTuningJobName")},
        {"Strategy", Str(desc.value("HyperParameterTuningJobConfig", Json::object()), "Strategy")},
        {"Status", Str(desc, "HyperParameterTuningJobStatus")},
        {"MetricName", metric},
        {"Type", minimize ? "Minimize" : "Maximize"},
        {"TrainingJobs", trials.size()},
        {"WithObjective", with_objective},
        {"Best", number_or_null(best)},
        {"BestTrainingJob", best_trial ? Json(best_trial->name) : Json(nullptr)},
        {"BestNumber", best_trial ? Json(best_number) : Json(nullptr)},
        {"BestAtBudget", number_or_null(at_budget)},
        {"SecondsToBest", best_trial && best_trial->ended > 0 && created > 0 ? Json(best_trial->ended - created)
                                                                                : Json(nullptr)},
        {"Seconds", created > 0 && until >= created ? Json(until - created) : Json(nullptr)},
        {"BestSoFar", std::move(so_far)},
    };
    out["Jobs"].push_back(std::move(row));
  }
  if (objectives.size() > 1) {
    std::string list;
    for (const std::string& o : objectives) list += (list.empty() ? "" : ", ") + o;
    out["Notes"].push_back("the jobs optimise different objectives (" + list + "): their values do not compare");
  }
  out["Type"] = types.size() == 1 ? Json(*types.begin()) : Json(nullptr);
  out["MetricName"] = metrics.size() == 1 ? Json(*metrics.begin()) : Json(nullptr);
  // Which jobs lead each column (ties: every one), when the values compare at all.
  for (Json& row : out["Jobs"]) row["Leads"] = Json::array();
  if (objectives.size() == 1) {
    const bool minimize = out["Type"] == "Minimize";
    for (const char* key : {"BestAtBudget", "Best"}) {
      std::optional<double> top;
      for (const Json& row : out["Jobs"]) {
        if (row[key].is_number() && (!top || Better(row[key].get<double>(), *top, minimize))) top = row[key].get<double>();
      }
      for (Json& row : out["Jobs"]) {
        if (top && row[key].is_number() && row[key].get<double>() == *top) row["Leads"].push_back(key);
      }
    }
  }
  return out;
}

namespace {

// The latest objective value of each running training job (drawn gray, "its latest value"):
// SageMaker's lists give a FinalHyperParameterTuningJobObjectiveMetric only to one that has
// ended, so it is read from DescribeTrainingJob's metrics, for at most 100 of them.
void FillRunningObjectives(Source& src, const Json& desc, std::vector<TrialPoint>* trials) {
  std::map<std::string, std::string> metric_of;  // definition name -> its objective metric
  for (const Json& def : desc.value("TrainingJobDefinitions", Json::array())) {
    metric_of[Str(def, "DefinitionName")] = Str(def.value("TuningObjective", Json::object()), "MetricName");
  }
  const std::string metric = Str(ObjectiveOf(desc), "MetricName");
  int asked = 0;
  for (TrialPoint& t : *trials) {
    if (t.objective || (t.status != "InProgress" && t.status != "Stopping") || asked >= 100) continue;
    ++asked;
    auto d = src.Action("DescribeTrainingJob", Json{{"TrainingJobName", t.name}});
    if (!d.ok()) continue;
    auto named = metric_of.find(t.definition);
    const std::string want = named != metric_of.end() && !named->second.empty() ? named->second : metric;
    for (const Json& m : d->value("FinalMetricDataList", Json::array())) {
      if (Str(m, "MetricName") == want && m.contains("Value") && m["Value"].is_number()) {
        t.objective = m["Value"].get<double>();
      }
    }
  }
}

// A hyperparameter's value in a table: a long number shortened to 6 significant digits, the
// exact value (what the trainer got) on hover; every number right-aligned, whole (a dashboard
// pass: 1e-05 sat left of 0.226921 in one column, and narrow windows split numbers in two).
std::string Cell(const std::string& value) {
  auto v = ParseDouble(value);
  if (v && value.size() > 10) {
    return "<td class=\"num\" title=\"" + Escape(value) + "\">" + Escape(Num(*v)) + "</td>";
  }
  return std::string(v ? "<td class=\"num\">" : "<td>") + Escape(value) + "</td>";
}

std::string Card(const std::string& k, const std::string& v_html) {
  return "<div class=\"card\"><div class=\"k\">" + Escape(k) + "</div><div class=\"v\">" + v_html + "</div></div>";
}

Page JobPage(Source& src, const std::string& name, const std::map<std::string, std::string>& query,
             const PageOptions& o) {
  const auto started = std::chrono::steady_clock::now();
  auto d = src.Action("DescribeHyperParameterTuningJob", Json{{"HyperParameterTuningJobName", name}});
  if (!d.ok()) return FromError(d.status(), "tuning job " + name, o);
  const Json& desc = *d;
  auto trials_r = TrialsOf(src, name);
  if (!trials_r.ok()) return FromError(trials_r.status(), "the training jobs of " + name, o);
  std::vector<TrialPoint> trials = std::move(trials_r).value();
  FillRunningObjectives(src, desc, &trials);
  const std::string status = Str(desc, "HyperParameterTuningJobStatus");
  const Json cfg = desc.value("HyperParameterTuningJobConfig", Json::object());
  const Json obj = ObjectiveOf(desc);
  // Definitions that tune metrics of their own (no job objective): the page's values are each
  // definition's metric, so they are labelled "objective" and the card names each (every value
  // was labelled with the first definition's metric).
  std::string per_definition;
  std::set<std::string> def_metrics;
  if (!cfg.contains("HyperParameterTuningJobObjective")) {
    for (const Json& def : desc.value("TrainingJobDefinitions", Json::array())) {
      const std::string m = Str(def.value("TuningObjective", Json::object()), "MetricName");
      if (m.empty()) continue;
      def_metrics.insert(m);
      per_definition += (per_definition.empty() ? "" : ", ") + Str(def, "DefinitionName") + " " + m;
    }
  }
  const bool mixed_metrics = def_metrics.size() > 1;
  const std::string metric = mixed_metrics ? std::string("objective") : Str(obj, "MetricName");
  const bool minimize = Str(obj, "Type") == "Minimize";
  const Json limits = cfg.value("ResourceLimits", Json::object());
  const Json counters = desc.value("TrainingJobStatusCounters", Json::object());
  const Json best = desc.value("BestTrainingJob", Json::object());
  const std::string best_name = Str(best, "TrainingJobName");

  // The latest events, oldest first (shown newest first below; the newest also explain the state).
  const std::deque<Json> latest =
      [&] {
        // The newest events only: paging from the first read a long job's whole history on
        // every render, and past 500,000 events showed old ones as the latest.
        std::deque<Json> last;
        if (auto r = src.LastEvents(name, std::max<size_t>(o.events, 1)); r.ok()) {
          for (const Json& e : r->value("events", Json::array())) last.push_back(e);
        }
        return last;
      }();

  std::string b = "<p class=\"muted\"><a href=\"/ui/\">Tuning jobs</a> &rsaquo;</p><h1>" + Escape(name) + " " +
                  StatusBadge(status) + "</h1>";
  const double created = NumOf(desc, "CreationTime"), ended = NumOf(desc, "HyperParameterTuningEndTime");
  b += "<p class=\"muted\">created " + Time(created) + " UTC" +
       (ended > 0 ? " &middot; ended " + Time(ended) + " UTC after " + Duration(ended - created)
                  : " &middot; running for " + Duration(static_cast<double>(std::time(nullptr)) - created)) +
       "</p>";
  if (desc.contains("FailureReason")) b += "<div class=\"err\">" + Escape(Str(desc, "FailureReason")) + "</div>";
  // Why it ended, or why it waits (the newest event says, when it is one of those).
  for (auto it = latest.rbegin(); it != latest.rend(); ++it) {
    const std::string kind = Str(*it, "kind");
    if (kind == "JobCompleted" || kind == "JobStopped") {
      b += "<p class=\"note\">Ended: " + Escape(Str(*it, "message")) + "</p>";
      break;
    }
    if (kind == "Waiting" && Running(status) && it == latest.rbegin()) {
      b += "<p class=\"warn\">Waiting since " + Time(NumOf(*it, "time")) + " UTC: " + Escape(Str(*it, "message")) + "</p>";
      break;
    }
  }

  int done = 0;
  for (const auto& t : trials) done += Running(t.status) ? 0 : 1;
  const int max = static_cast<int>(NumOf(limits, "MaxNumberOfTrainingJobs", static_cast<double>(trials.size())));
  const int pct = max > 0 ? std::min(100, done * 100 / max) : 0;
  std::string early = Str(cfg, "TrainingJobEarlyStoppingType");
  b += "<div class=\"cards\">";
  b += Card("Strategy", Escape(Str(cfg, "Strategy")));
  b += Card("Objective", mixed_metrics ? Escape(Str(obj, "Type")) + " <span class=\"muted\">per definition:</span> " +
                                             Escape(per_definition)
                                       : Escape(Str(obj, "Type") + " " + metric));
  b += Card("Training jobs ended", std::to_string(done) + " / " + std::to_string(max) +
                                       " <span class=\"bar\"><span style=\"width:" + std::to_string(pct) +
                                       "%\"></span></span>");
  // InProgress counts training jobs that have not started their program yet too (staging data,
  // or assigned ahead to a slot that is still busy): shown apart, so that the running ones stay
  // within the parallel limit on the page as they do on the workers.
  int not_started = 0;
  for (const auto& t : trials) not_started += Running(t.status) && t.started <= 0 ? 1 : 0;
  const int in_progress = static_cast<int>(NumOf(counters, "InProgress"));
  b += Card("Running", std::to_string(std::max(0, in_progress - not_started)) + " of at most " +
                           Escape(Str(limits, "MaxParallelTrainingJobs")) +
                           (not_started > 0 ? " <span class=\"muted\">+" + std::to_string(not_started) +
                                                  " starting or queued</span>"
                                            : ""));
  b += Card("Completed / stopped / failed",
            std::to_string(static_cast<int>(NumOf(counters, "Completed"))) + " / " +
                std::to_string(static_cast<int>(NumOf(counters, "Stopped"))) + " / " +
                std::to_string(static_cast<int>(NumOf(counters, "NonRetryableError") + NumOf(counters, "RetryableError"))));
  if (!early.empty()) b += Card("Early stopping", Escape(early));
  if (const Json warm = desc.value("WarmStartConfig", Json::object()); !warm.empty()) {
    std::string parents;
    for (const Json& p : warm.value("ParentHyperParameterTuningJobs", Json::array())) {
      const std::string parent = Str(p, "HyperParameterTuningJobName");
      parents += (parents.empty() ? "" : ", ") + Link("/ui/jobs/" + parent, parent);
    }
    b += Card("Warm start", Escape(Str(warm, "WarmStartType")) + " <span class=\"muted\">from</span> " + parents);
  }
  if (best.contains("FinalHyperParameterTuningJobObjectiveMetric")) {
    const Json& final_metric = best["FinalHyperParameterTuningJobObjectiveMetric"];
    b += Card("Best " + (mixed_metrics ? Str(final_metric, "MetricName") : metric),
              Escape(Num(NumOf(final_metric, "Value"))));
  }
  b += "</div>";

  if (!best_name.empty()) {
    b += "<h2>Best training job: " + Link("/ui/trials/" + best_name, best_name) + "</h2><table><tr>";
    const Json tuned = best.value("TunedHyperParameters", Json::object());
    for (const auto& [k, v] : tuned.items()) b += "<th>" + Escape(k) + "</th>";
    b += "<th>" + Escape(metric) + "</th></tr><tr>";
    for (const auto& [k, v] : tuned.items()) b += Cell(v.is_string() ? v.get<std::string>() : v.dump());
    b += "<td class=\"num\">" + Escape(Num(NumOf(best.value("FinalHyperParameterTuningJobObjectiveMetric", Json::object()), "Value"))) +
         "</td></tr></table>";
  }
  const Json overall = desc.value("OverallBestTrainingJob", Json::object());
  if (!Str(overall, "TrainingJobName").empty() && Str(overall, "TrainingJobName") != best_name) {
    b += "<p class=\"muted\">Best across this job and its warm-start parents: " +
         Escape(Str(overall, "TrainingJobName")) + " (" +
         Escape(Num(NumOf(overall.value("FinalHyperParameterTuningJobObjectiveMetric", Json::object()), "Value"))) +
         ")</p>";
  }

  // Charts: of every training job, or of the best and the newest of a large job.
  std::vector<TrialPoint> drawn;
  {
    std::vector<std::optional<double>> objectives;
    for (const auto& t : trials) objectives.push_back(t.objective);
    for (size_t i : BestAndNewest(objectives, minimize, o.max_points)) drawn.push_back(trials[i]);
  }
  std::string charts = ObjectiveChart(drawn, metric, minimize, best_name);
  if (!charts.empty()) {
    b += "<h2>Progress</h2>" + Legend();
    if (drawn.size() < trials.size()) {
      b += "<p class=\"muted\">The charts show " + std::to_string(drawn.size()) + " of the " +
           std::to_string(trials.size()) + " training jobs: the " + std::to_string(o.max_points / 4) +
           " best and the newest; learning curves of " + std::to_string(o.max_curves) + ", chosen the same way.</p>";
    }
    b += "<div class=\"charts\">" + charts + "</div>";
    auto curves = src.Curves(name, o.max_curves, "");
    if (curves.ok()) {
      std::string c = CurvesChart(*curves, trials, metric, best_name);
      if (!c.empty()) b += "<div class=\"charts\" style=\"margin-top:12px\">" + c + "</div>";
    }
    const std::vector<RangeInfo> ranges = RangesOf(desc);
    std::string scatters;
    for (const RangeInfo& r : ranges) scatters += ScatterChart(r, drawn, metric, best_name);
    if (!scatters.empty()) {
      // One parallel chart per training job definition: their hyperparameters differ.
      std::string parallel;
      const Json defs = desc.value("TrainingJobDefinitions", Json::array());
      if (defs.size() > 1) {
        for (const Json& def : defs) {
          const std::string dn = Str(def, "DefinitionName");
          std::vector<TrialPoint> of;
          for (const auto& t : drawn) {
            if (t.definition == dn) of.push_back(t);
          }
          parallel += ParallelChart(RangesOf(desc, dn), of, metric, minimize, best_name, dn);
        }
      } else {
        parallel = ParallelChart(ranges, drawn, metric, minimize, best_name, "");
      }
      b += "<h2>Objective by hyperparameter</h2>";
      if (!parallel.empty()) b += "<div class=\"charts\" style=\"margin-bottom:12px\">" + parallel + "</div>";
      b += "<div class=\"charts\">" + scatters + "</div>";
    }
    // Which hyperparameters mattered (coordinator/importance.h), per definition, from every
    // training job with an objective (not only the ones drawn).
    if (auto described = proto::DecodeDescribeResponse(proto::TextTree{desc, false, {}, {}}); described.ok()) {
      std::vector<ObservedTrainingJob> observed;
      std::map<std::string, std::vector<double>> curves = ImportanceCurves(src, name, described->spec);
      for (const auto& t : trials) {
        if (!t.objective) continue;
        observed.push_back({t.definition, t.status, Config(t.tuned.begin(), t.tuned.end()), *t.objective, {}});
        if (auto c = curves.find(t.name); c != curves.end()) observed.back().curve = std::move(c->second);
      }
      std::string importance, budgets, why_none;
      // On this server thread, one thread: each pool thread kept an OpenMP team of its own.
      kernels::UseOneOpenMpThreadHere();
      ImportanceOptions one_thread;
      one_thread.threads = 1;
      for (const auto& [def, rep] : EstimateJobImportance(described->spec, observed, one_thread)) {
        if (rep.ok()) {
          importance += ImportanceChart(*rep, def);
          if (rep->budget > 0) {
            budgets += std::string(budgets.empty() ? "" : "; ") + (def.empty() ? "" : Escape(def) + ": ") +
                       std::to_string(rep->observations) + " of them after " + std::to_string(rep->budget) + " value" +
                       (rep->budget == 1 ? "" : "s");
          }
        } else if (StopsTrainingJobsEarly(described->spec)) {
          why_none += "<p class=\"muted\">" + (def.empty() ? "" : Escape(def) + ": ") + "no importance yet: " +
                      Escape(rep.status().message()) + ".</p>";
        }
      }
      if (!importance.empty()) {
        b += "<h2>What mattered</h2><p class=\"muted\">Each hyperparameter's share of the objective's variation over "
             "its range: solid alone, light with its interactions (Sobol indices of a Gaussian process fitted to the "
             "ended training jobs). It shows what the ranges searched and the training jobs so far reveal; a "
             "hyperparameter held in a narrow range shows little.";
        if (!budgets.empty()) {
          b += " This job stops training jobs early, so they are compared at one budget, the largest that enough of "
               "them reached, by the objective's value there (" + budgets + "), not by their final values.";
        }
        b += "</p><div class=\"charts\">" + importance + "</div>" + why_none;
      } else if (!why_none.empty()) {
        b += "<h2>What mattered</h2>" + why_none;
      }
    }
  } else if (!trials.empty()) {
    b += "<p class=\"muted\">No training job has reported " + Escape(metric) + " yet.</p>";
  }

  // The training jobs.
  const std::string sort = query.count("sort") ? query.at("sort") : "objective";
  std::vector<const TrialPoint*> rows;
  for (const auto& t : trials) rows.push_back(&t);
  if (sort == "objective") {
    // Ended ones by their final value, then running ones by their latest (a running one's latest
    // value ranked above the best, whose row was the green one; a dashboard pass), then the rest.
    // Equal values: the one that ended first, as DescribeHyperParameterTuningJob's best (the
    // list put another tied one first).
    std::stable_sort(rows.begin(), rows.end(), [&](const TrialPoint* a, const TrialPoint* c) {
      if (a->objective.has_value() != c->objective.has_value()) return a->objective.has_value();
      if (!a->objective) return a->number < c->number;
      if (Running(a->status) != Running(c->status)) return Running(c->status);
      if (*a->objective != *c->objective) return Better(*a->objective, *c->objective, minimize);
      if ((a->ended > 0) != (c->ended > 0)) return a->ended > 0;
      return a->ended != c->ended ? a->ended < c->ended : a->number < c->number;
    });
  }
  std::vector<std::string> columns;
  for (const RangeInfo& r : RangesOf(desc)) {
    if (std::find(columns.begin(), columns.end(), r.name) == columns.end()) columns.push_back(r.name);
  }
  for (const auto& t : trials) {
    for (const auto& [k, v] : t.tuned) {
      if (std::find(columns.begin(), columns.end(), k) == columns.end()) columns.push_back(k);
    }
  }
  b += "<h2>Training jobs (" + std::to_string(trials.size()) + ")</h2><p class=\"muted\">" +
       Link("/ui/jobs/" + name + "/trials.csv", "download as CSV") + " &middot; sorted by " +
       (sort == "objective" ? std::string("objective, best first &middot; ") + Link("?sort=number", "by number")
                            : std::string("number &middot; ") + Link("?sort=objective", "by objective")) +
       "</p>";
  if (!trials.empty()) {
    bool defs = std::any_of(trials.begin(), trials.end(), [](const TrialPoint& t) { return !t.definition.empty(); });
    b += "<table id=\"trials\"><tr><th>#</th><th>Training job</th><th>Status</th><th>" + Escape(metric) + "</th>";
    if (defs) b += "<th>Definition</th>";
    for (const auto& c : columns) b += "<th>" + Escape(c) + "</th>";
    b += "<th>Duration</th><th>Failure reason</th></tr>";
    const bool all_rows = query.count("rows") && query.at("rows") == "all";
    size_t shown = 0;
    for (const TrialPoint* t : rows) {
      if (!all_rows && shown++ == o.max_rows) break;
      b += std::string("<tr") + (t->name == best_name ? " class=\"best\"" : "") + "><td class=\"num\">" +
           std::to_string(t->number) + "</td><td class=\"name\">" + Link("/ui/trials/" + t->name, t->name) + "</td><td>" +
           StatusBadge(t->status) + "</td><td class=\"num\">" +
           (!t->objective        ? ""
            : Running(t->status) ? "<span class=\"muted\" title=\"its latest value; not final\">" +
                                       Escape(Num(*t->objective)) + " so far</span>"
                                 : Escape(Num(*t->objective))) +
           "</td>";
      if (defs) b += "<td>" + Escape(t->definition) + "</td>";
      for (const auto& c : columns) {
        auto it = t->tuned.find(c);
        b += it == t->tuned.end() ? "<td></td>" : Cell(it->second);
      }
      std::string failure = Utf8Length(t->failure) > 160 ? Utf8Prefix(t->failure, 157) + "..." : t->failure;
      b += "<td>" + (t->started > 0 ? Duration((t->ended > 0 ? t->ended : static_cast<double>(std::time(nullptr))) - t->started) : "") +
           "</td><td>" + Escape(failure) + "</td></tr>";
    }
    b += "</table>";
    if (!all_rows && rows.size() > o.max_rows) {
      b += "<p class=\"muted\">The first " + std::to_string(o.max_rows) + " of " + std::to_string(rows.size()) +
           " rows. " + Link("?rows=all&sort=" + sort, "Show all") + ", or " +
           Link("/ui/jobs/" + name + "/trials.csv", "download them as CSV") + ".</p>";
    }
  }

  // The latest events, newest first.
  if (!latest.empty()) {
    b += "<h2>Latest events</h2><p class=\"muted\">all of them: <code>hpo events " + Escape(name + o.cli_flags) +
         "</code></p><table id=\"events\"><tr><th>Time (UTC)</th><th>Kind</th><th>Training job</th><th>Message</th></tr>";
    for (auto it = latest.rbegin(); it != latest.rend(); ++it) {
      const std::string trial = Str(*it, "trial");
      b += "<tr><td>" + Time(NumOf(*it, "time")) + "</td><td>" + Escape(Str(*it, "kind")) + "</td><td>" +
           (trial.empty() ? "" : Link("/ui/trials/" + trial, trial)) + "</td><td>" + Escape(Str(*it, "message")) +
           "</td></tr>";
    }
    b += "</table>";
  }
  Page p;
  p.body = Html(name, b, Running(status) ? Refresh(o.refresh_s, started) : 0, o.subtitle);
  return p;
}

// Tuning jobs side by side (Compare): a table and the best-so-far chart. ?jobs=a,b (or jobs=a&jobs=b
// from the jobs page's form) and an optional &budget=N.
Page ComparePage(Source& src, const std::map<std::string, std::string>& query, const PageOptions& o) {
  const auto started = std::chrono::steady_clock::now();
  std::vector<CompareJob> jobs;
  std::set<std::string> seen;
  const auto it = query.find("jobs");
  const std::string list = it == query.end() ? "" : it->second;
  for (size_t at = 0; at <= list.size();) {
    size_t comma = list.find(',', at);
    if (comma == std::string::npos) comma = list.size();
    const std::string name = list.substr(at, comma - at);
    at = comma + 1;
    if (name.empty()) continue;
    if (name.size() > 32 || !ValidName(name)) {
      return ErrorPage(404, "Not found", "no tuning job can be named \"" + name + "\"", o);
    }
    if (seen.insert(AsciiLower(name)).second) jobs.push_back({&src, name, name});
  }
  // Each job costs its Describe and every page of its training jobs: a page stays quick to draw.
  constexpr size_t kMaxCompared = 20;
  if (jobs.size() > kMaxCompared) {
    return ErrorPage(400, "Too many jobs", "the page compares at most " + std::to_string(kMaxCompared) +
                                               " tuning jobs at once; got " + std::to_string(jobs.size()) +
                                               " (hpo compare takes any number)",
                     o);
  }
  if (jobs.empty()) {
    return ErrorPage(400, "Nothing to compare",
                     "tick two or more tuning jobs on the jobs page (/ui/) and press Compare, or give "
                     "/ui/compare?jobs=NAME,NAME",
                     o);
  }
  size_t budget = 0;
  if (auto b = query.find("budget"); b != query.end() && !b->second.empty()) {
    const std::string& v = b->second;
    const bool digits = std::all_of(v.begin(), v.end(), [](unsigned char c) { return std::isdigit(c); });
    if (digits && v.size() > 9) {  // a whole number, but more training jobs than any job has
      return ErrorPage(400, "Bad budget", "budget " + v + " is more training jobs than a tuning job can have; give at "
                       "most 999999999 (or leave it out: the fewest training jobs any of the jobs ran)", o);
    }
    if (!digits || std::stoul(v) == 0) {
      return ErrorPage(400, "Bad budget", "budget must be a whole number of training jobs, 1 or more; got \"" + v + "\"", o);
    }
    budget = std::stoul(v);
  }
  auto cmp = Compare(jobs, budget, static_cast<double>(std::time(nullptr)));
  if (!cmp.ok()) return FromError(cmp.status(), "the comparison", o);
  const Json& rows = (*cmp)["Jobs"];
  const std::string n = std::to_string((*cmp)["Budget"].get<size_t>());
  bool any_running = false;
  for (const Json& r : rows) any_running = any_running || Running(Str(r, "Status"));
  auto value = [](const Json& row, const char* key) {
    if (!row[key].is_number()) return std::string("&ndash;");
    const std::string text = Escape(Num(row[key].get<double>()));
    const Json& leads = row["Leads"];
    return std::find(leads.begin(), leads.end(), key) != leads.end() ? "<b>" + text + "</b>" : text;
  };
  auto seconds = [](const Json& v) { return v.is_number() ? Duration(v.get<double>()) : std::string("&ndash;"); };
  std::string b = "<p class=\"muted\"><a href=\"/ui/\">Tuning jobs</a> &rsaquo;</p><h1>Comparing " +
                  std::to_string(rows.size()) + (rows.size() == 1 ? " tuning job</h1>" : " tuning jobs</h1>");
  if ((*cmp)["Type"].is_string() && (*cmp)["MetricName"].is_string()) {
    b += "<p>Objective: " + Escape(Str(*cmp, "Type") + " " + Str(*cmp, "MetricName")) + "</p>";
  }
  b += "<p class=\"muted\">Each judged by its first " + n + " training jobs" +
       ((*cmp)["BudgetFromFewest"].get<bool>()
            ? std::string(" (the fewest any of them ") +
                  ((*cmp)["BudgetSkipsEmpty"].get<bool>() ? "that has one created" : "created") +
                  "; add &amp;budget=N to the address for another number)"
            : "") +
       ". Bold: the best of a column.</p>";
  b += "<table id=\"compare\"><tr><th>Job</th><th>Strategy</th><th>Status</th><th>Training jobs</th><th>Best at " + n +
       "</th><th>Best</th><th>Found at</th><th>To best</th><th>Duration</th></tr>";
  for (size_t i = 0; i < rows.size(); ++i) {
    const Json& r = rows[i];
    const std::string name = Str(r, "HyperParameterTuningJobName");
    std::string found = "&ndash;";
    if (r["BestNumber"].is_number()) {
      found = Link("/ui/trials/" + Str(r, "BestTrainingJob"), "#" + std::to_string(r["BestNumber"].get<size_t>()));
    }
    b += "<tr><td><i class=\"dot\" style=\"background:" + std::string(charts::CompareColor(i)) + "\"></i>" +
         Link("/ui/jobs/" + name, name) + "</td><td>" + Escape(Str(r, "Strategy")) + "</td><td>" +
         StatusBadge(Str(r, "Status")) + "</td><td class=\"num\">" + std::to_string(r["TrainingJobs"].get<size_t>()) +
         " (" + std::to_string(r["WithObjective"].get<size_t>()) + " scored)</td><td class=\"num\">" +
         value(r, "BestAtBudget") + "</td><td class=\"num\">" + value(r, "Best") +
         "</td><td>" + found + "</td><td>" + seconds(r["SecondsToBest"]) + "</td><td>" + seconds(r["Seconds"]) +
         "</td></tr>";
  }
  b += "</table>";
  for (const Json& note : (*cmp)["Notes"]) b += "<p class=\"muted\">Note: " + Escape(note.get<std::string>()) + "</p>";
  const std::string chart = charts::CompareChart(*cmp);
  b += chart.empty() ? "<p class=\"muted\">No training job has ended with an objective yet.</p>"
                     : "<div class=\"chart\">" + chart + "</div>";
  b += "<p class=\"muted\">The same from a terminal: <code>hpo compare";
  for (const CompareJob& j : jobs) b += " " + Escape(j.name);
  b += Escape(o.cli_flags) + "</code></p>";
  Page p;
  p.body = Html("Comparing tuning jobs", b, any_running ? Refresh(o.refresh_s, started) : 0, o.subtitle);
  return p;
}

Page CsvPage(Source& src, const std::string& name, const PageOptions& o) {
  auto d = src.Action("DescribeHyperParameterTuningJob", Json{{"HyperParameterTuningJobName", name}});
  if (!d.ok()) return FromError(d.status(), "tuning job " + name, o);
  auto all = SummariesOf(src, name);
  if (!all.ok()) return FromError(all.status(), "the training jobs of " + name, o);
  // By name (the job's order of proposals), as `hpo trials -o csv` and the SDK's analytics
  // (ListTrainingJobsForHyperParameterTuningJob's default order) list them: by creation time, a
  // training job assigned ahead came before an older one, and the two tables differed.
  std::vector<Json> rows(all->begin(), all->end());
  std::stable_sort(rows.begin(), rows.end(),
                   [](const Json& a, const Json& b) { return Str(a, "TrainingJobName") < Str(b, "TrainingJobName"); });
  Page p;
  p.content_type = "text/csv; charset=utf-8";
  p.body = TrainingJobsCsv(Json(rows));
  return p;
}

Page TrialPage(Source& src, const std::string& name, const PageOptions& o) {
  const auto started = std::chrono::steady_clock::now();
  auto d = src.Action("DescribeTrainingJob", Json{{"TrainingJobName", name}});
  if (!d.ok()) return FromError(d.status(), "training job " + name, o);
  const Json& t = *d;
  const std::string status = Str(t, "TrainingJobStatus");
  const std::string job = JobOfTrial(name);
  std::string b = "<p class=\"muted\"><a href=\"/ui/\">Tuning jobs</a> &rsaquo; " + Link("/ui/jobs/" + job, job) +
                  " &rsaquo;</p><h1>" + Escape(name) + " " + StatusBadge(status) + "</h1>";
  b += "<p class=\"muted\">secondary status " + Escape(Str(t, "SecondaryStatus"));
  if (t.contains("TrainingTimeInSeconds")) {
    // Whole seconds, as SageMaker counts them: "3.0s" claimed a tenth that is not there, beside
    // the job table's 2.2s for the same training job (a dashboard pass).
    auto whole = [](double seconds) {
      return seconds >= 0 && seconds < 60 ? std::to_string(std::lround(seconds)) + "s" : Duration(seconds);
    };
    b += " &middot; training time " + whole(NumOf(t, "TrainingTimeInSeconds")) + ", billable " +
         whole(NumOf(t, "BillableTimeInSeconds")) + " (whole seconds)";
  }
  b += "</p>";
  if (t.contains("FailureReason")) b += "<div class=\"err\">" + Escape(Str(t, "FailureReason")) + "</div>";
  b += "<div class=\"charts\"><div><h2>Final metrics</h2><table><tr><th>Metric</th><th>Value</th></tr>";
  for (const Json& m : t.value("FinalMetricDataList", Json::array())) {
    b += "<tr><td>" + Escape(Str(m, "MetricName")) + "</td><td class=\"num\">" + Escape(Num(NumOf(m, "Value"))) +
         "</td></tr>";
  }
  b += "</table><h2>Hyperparameters</h2><table><tr><th>Name</th><th>Value</th></tr>";
  const Json hps = t.value("HyperParameters", Json::object());
  for (const auto& [k, v] : hps.items()) {
    b += "<tr><td>" + Escape(k) + "</td><td>" + Escape(v.is_string() ? v.get<std::string>() : v.dump()) + "</td></tr>";
  }
  b += "</table></div><div><h2>Status history</h2><table><tr><th>Status</th><th>Start (UTC)</th><th>Message</th></tr>";
  for (const Json& s : t.value("SecondaryStatusTransitions", Json::array())) {
    b += "<tr><td>" + Escape(Str(s, "Status")) + "</td><td>" + Time(NumOf(s, "StartTime")) + "</td><td>" +
         Escape(Str(s, "StatusMessage")) + "</td></tr>";
  }
  const Json rc = t.value("ResourceConfig", Json::object());
  b += "</table><h2>Resources</h2><table><tr><td>Instance type</td><td>" + Escape(Str(rc, "InstanceType")) +
       "</td></tr><tr><td>Instance count</td><td>" + Escape(Str(rc, "InstanceCount")) +
       "</td></tr><tr><td>Model artifacts</td><td>" +
       Escape(Str(t.value("ModelArtifacts", Json::object()), "S3ModelArtifacts")) + "</td></tr></table></div></div>";

  // Its learning curve, when it emitted the objective more than once: every attempt's values, each
  // later attempt's start marked (a resumed training job showed only its last attempt).
  if (auto curves = src.Curves(job, 0, name); curves.ok() && curves->contains("Curves") && (*curves)["Curves"].contains(name)) {
    Json one = {{"Curves", {{name, (*curves)["Curves"][name]}}}};
    if (curves->contains("AttemptStarts") && (*curves)["AttemptStarts"].contains(name)) {
      one["AttemptStarts"] = {{name, (*curves)["AttemptStarts"][name]}};
    }
    TrialPoint self;
    self.name = name;
    self.status = status;
    std::string chart = CurvesChart(one, {self}, Str(*curves, "MetricName"), "");
    if (!chart.empty()) b += "<h2>Objective as it was emitted</h2><div class=\"charts\">" + chart + "</div>";
  }

  // The last lines of the log.
  size_t total = 0;
  const std::optional<std::deque<Json>> tail =
      LastOf([&](int64_t after) { return src.Logs(name, after, 5000); }, "lines", o.log_tail, 40, &total);
  const bool log_ok = tail.has_value();
  // Line numbers count what the program printed, also where the coordinator kept only the head
  // and the tail of a long log.
  // (A multi-host training job's lines are numbered per host: the count is what was read.)
  if (tail && !tail->empty() && Str(tail->back(), "host").empty()) {
    total = std::max<size_t>(total, tail->back().value("line", size_t{0}) + 1);
  }
  b += "<h2>Log</h2><p class=\"muted\">";
  if (!log_ok) {
    b += "the log could not be read";
  } else if (total > tail->size()) {
    b += "the last " + std::to_string(tail->size()) + " of " + std::to_string(total) + " lines";
  } else {
    b += std::to_string(total) + " lines";
  }
  b += " &middot; follow it with <code>hpo logs " + Escape(name + o.cli_flags) + " -f</code></p><pre class=\"log\">";
  if (tail) {
    // Each attempt's lines under its own heading, as hpo logs prints them (a resumed training
    // job's second attempt ran straight on from its first).
    int64_t attempt = -1;
    for (const Json& line : *tail) {
      const int64_t a = line.value("attempt", int64_t{0});
      if (a != attempt && (attempt != -1 || a > 1)) b += "---- attempt " + std::to_string(a) + " ----\n";
      attempt = a;
      const std::string host = Str(line, "host");  // a multi-host training job's
      b += (host.empty() ? "" : "[" + Escape(host) + "] ") + Escape(Str(line, "text")) + "\n";
    }
  }
  b += "</pre>";
  Page p;
  p.body = Html(name, b, Running(status) ? Refresh(o.refresh_s, started) : 0, o.subtitle);
  return p;
}

}  // namespace

std::string Escape(std::string_view text) {
  std::string out;
  out.reserve(text.size());
  for (char c : text) {
    switch (c) {
      case '&': out += "&amp;"; break;
      case '<': out += "&lt;"; break;
      case '>': out += "&gt;"; break;
      case '"': out += "&quot;"; break;
      case '\'': out += "&#39;"; break;
      default: out += c;
    }
  }
  return out;
}

std::vector<size_t> BestAndNewest(const std::vector<std::optional<double>>& objectives, bool minimize, size_t limit) {
  std::vector<size_t> all(objectives.size());
  for (size_t i = 0; i < all.size(); ++i) all[i] = i;
  if (limit == 0 || all.size() <= limit) return all;
  std::vector<size_t> with;
  for (size_t i : all) {
    if (objectives[i]) with.push_back(i);
  }
  std::stable_sort(with.begin(), with.end(), [&](size_t a, size_t b) {
    return minimize ? *objectives[a] < *objectives[b] : *objectives[a] > *objectives[b];
  });
  std::vector<bool> keep(all.size(), false);
  size_t kept = 0;
  for (size_t k = 0; k < with.size() && kept < limit / 4; ++k, ++kept) keep[with[k]] = true;
  for (size_t i = all.size(); i-- > 0 && kept < limit;) {
    if (!keep[i]) {
      keep[i] = true;
      ++kept;
    }
  }
  std::vector<size_t> out;
  for (size_t i : all) {
    if (keep[i]) out.push_back(i);
  }
  return out;
}

namespace {
// The shortest text that reads back as the same double (0.98029, not 0.98028999999999999).
std::string Shortest(double v) {
  char buf[40];
  const auto r = std::to_chars(buf, buf + sizeof buf, v);
  return r.ec == std::errc() ? std::string(buf, r.ptr) : std::string();
}
}  // namespace

std::string TrainingJobsCsv(const Json& summaries) {
  auto cell = [](const std::string& v) {
    std::string t = v;
    if (!t.empty() && std::string("=+-@\t\r").find(t[0]) != std::string::npos && !ParseDouble(t)) t = "'" + t;
    if (t.find_first_of(",\"\r\n") == std::string::npos) return t;
    std::string q = "\"";
    for (char c : t) q += c == '"' ? std::string("\"\"") : std::string(1, c);
    return q + "\"";
  };
  // As pandas writes the SDK's timestamps (datetimes in UTC, to the millisecond SageMaker keeps):
  // 2026-12-02 05:04:01.830000+00:00.
  auto when = [](double epoch_s) {
    if (epoch_s <= 0) return std::string();
    const double whole = std::floor(epoch_s);
    const long ms = std::lround((epoch_s - whole) * 1000.0);
    char frac[40];  // room for any long, so the compiler sees no truncation
    std::snprintf(frac, sizeof frac, ".%03ld000+00:00", std::clamp(ms, 0L, 999L));
    return Time(whole) + frac;
  };
  // The columns as pandas makes them from the SDK's rows: in order of first appearance, each row
  // adding its hyperparameters (as listed), then the fixed ones; elapsed time only for a row with
  // both times, the definition's name only for a row that has one.
  std::vector<std::string> columns;
  auto add = [&](const std::string& k) {
    if (std::find(columns.begin(), columns.end(), k) == columns.end()) columns.push_back(k);
  };
  if (summaries.is_array()) {
    // Walked as the SDK lists them (the API's default order: by name), whatever the rows' order.
    std::vector<const Json*> by_name;
    for (const Json& s : summaries) by_name.push_back(&s);
    std::stable_sort(by_name.begin(), by_name.end(),
                     [](const Json* a, const Json* b) { return Str(*a, "TrainingJobName") < Str(*b, "TrainingJobName"); });
    for (const Json* row : by_name) {
      const Json& s = *row;
      const Json hps = s.value("TunedHyperParameters", Json::object());  // kept: items() refers to it
      for (const auto& [k, v] : hps.items()) add(k);
      for (const char* k : {"TrainingJobName", "TrainingJobStatus", "FinalObjectiveValue", "TrainingStartTime",
                            "TrainingEndTime"}) {
        add(k);
      }
      if (NumOf(s, "TrainingStartTime") > 0 && NumOf(s, "TrainingEndTime") > 0) add("TrainingElapsedTimeSeconds");
      if (s.contains("TrainingJobDefinitionName")) add("TrainingJobDefinitionName");
    }
  }
  if (columns.empty()) {
    columns = {"TrainingJobName", "TrainingJobStatus", "FinalObjectiveValue", "TrainingStartTime", "TrainingEndTime"};
  }
  std::string out;
  for (size_t i = 0; i < columns.size(); ++i) out += (i ? "," : "") + cell(columns[i]);
  out += "\r\n";
  if (!summaries.is_array()) return out;
  for (const Json& s : summaries) {
    const Json hps = s.value("TunedHyperParameters", Json::object());
    const double start = NumOf(s, "TrainingStartTime"), end = NumOf(s, "TrainingEndTime");
    for (size_t i = 0; i < columns.size(); ++i) {
      const std::string& k = columns[i];
      if (i) out += ",";
      if (hps.contains(k)) {
        out += cell(Str(hps, k.c_str()));
      } else if (k == "FinalObjectiveValue") {
        const Json metric = s.value("FinalHyperParameterTuningJobObjectiveMetric", Json::object());
        if (metric.contains("Value") && metric["Value"].is_number()) out += Shortest(metric["Value"].get<double>());
      } else if (k == "TrainingStartTime" || k == "TrainingEndTime") {
        out += when(k == "TrainingStartTime" ? start : end);
      } else if (k == "TrainingElapsedTimeSeconds") {
        // From the two times as written, so that it is their difference to the millisecond.
        if (start > 0 && end >= start) {
          out += Shortest(static_cast<double>(std::lround(end * 1000.0) - std::lround(start * 1000.0)) / 1000.0);
        }
      } else if (k == "TrainingJobName" || k == "TrainingJobStatus" || k == "TrainingJobDefinitionName") {
        out += cell(Str(s, k.c_str()));
      }
    }
    out += "\r\n";
  }
  return out;
}

std::string SignedRequestsPage(const std::string& reason) {
  std::string b =
      "<h1>This coordinator requires signed requests</h1><div class=\"err\">" + Escape(reason) +
      "</div><p>A browser cannot sign requests with AWS Signature V4. Serve the dashboard on your own machine "
      "instead; it signs its requests with your AWS credentials (as the aws CLI finds them):</p>"
      "<pre class=\"log\">hpo dashboard --coordinator http://THIS-HOST:PORT\n# then open http://127.0.0.1:7790/ui/</pre>";
  return Html("Signed requests required", b, 0, "");
}

Page Render(Source& source, const std::string& path, const std::map<std::string, std::string>& query,
            const PageOptions& options) {
  if (path == "/" || path == "/ui") {
    Page p;
    p.status = 302;
    p.location = "/ui/";
    p.body = "<a href=\"/ui/\">/ui/</a>\n";
    return p;
  }
  try {
    if (path == "/ui/") return JobsPage(source, options);
    if (path == "/ui/workers" || path == "/ui/workers/") return WorkersPage(source, options);
    if (path == "/ui/compare" || path == "/ui/compare/") return ComparePage(source, query, options);
    const std::string jobs = "/ui/jobs/", trials = "/ui/trials/";
    const std::string csv = "/trials.csv";
    if (path.rfind(jobs, 0) == 0 && path.size() > jobs.size() + csv.size() &&
        path.compare(path.size() - csv.size(), csv.size(), csv) == 0) {
      std::string name = path.substr(jobs.size(), path.size() - jobs.size() - csv.size());
      if (!ValidName(name)) return ErrorPage(404, "Not found", "no tuning job can be named \"" + name + "\"", options);
      return CsvPage(source, name, options);
    }
    if (path.rfind(jobs, 0) == 0) {
      std::string name = path.substr(jobs.size());
      if (!name.empty() && name.back() == '/') name.pop_back();
      if (!ValidName(name)) return ErrorPage(404, "Not found", "no tuning job can be named \"" + name + "\"", options);
      return JobPage(source, name, query, options);
    }
    if (path.rfind(trials, 0) == 0) {
      std::string name = path.substr(trials.size());
      if (!name.empty() && name.back() == '/') name.pop_back();
      if (!ValidName(name)) return ErrorPage(404, "Not found", "no training job can be named \"" + name + "\"", options);
      return TrialPage(source, name, options);
    }
  } catch (const std::exception& e) {
    // A document of an unexpected shape (a JSON type error): an error page, not a dead server.
    return ErrorPage(502, "Cannot draw this page", std::string("unexpected data from the coordinator: ") + e.what(),
                     options);
  }
  return ErrorPage(404, "Not found", "there is no page " + path + " (the dashboard has /ui/, /ui/jobs/NAME, /ui/trials/NAME, /ui/compare and /ui/workers)",
                   options);
}

std::map<std::string, std::string> QueryParameters(const std::multimap<std::string, std::string>& params) {
  std::map<std::string, std::string> query;
  for (const auto& [key, value] : params) {
    auto [it, fresh] = query.emplace(key, value);
    if (!fresh) it->second += "," + value;
  }
  return query;
}

std::map<std::string, std::vector<double>> ImportanceCurves(Source& source, const std::string& job,
                                                            const proto::TuningJobSpec& spec) {
  std::map<std::string, std::vector<double>> out;
  if (!StopsTrainingJobsEarly(spec)) return out;
  auto curves = source.Curves(job, 0, "");
  if (!curves.ok() || !curves->contains("Curves") || !(*curves)["Curves"].is_object()) return out;
  for (const auto& [name, values] : (*curves)["Curves"].items()) {
    if (!values.is_array()) continue;
    std::vector<double>& curve = out[name];
    for (const auto& v : values) curve.push_back(v.is_number() ? v.get<double>() : std::nan(""));
  }
  return out;
}

Result<Json> Source::LastEvents(const std::string& job, size_t limit) {
  Status first = Status::Ok();  // why the first page could not be read (LastOf says only that)
  auto last = LastOf(
      [&](int64_t after) {
        auto r = Events(job, after, 5000);
        if (!r.ok() && after == 0) first = r.status();
        return r;
      },
      "events", limit, 1000, nullptr);
  if (!last) return first;
  const int64_t next = last->empty() ? 0 : last->back().value("id", int64_t{0});
  return Json{{"events", Json(std::vector<Json>(last->begin(), last->end()))}, {"next", next}};
}

}  // namespace hpo::coordinator::dashboard
