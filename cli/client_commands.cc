#include "cli/client_commands.h"

#include <algorithm>
#include <cctype>
#include <chrono>
#include <cmath>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <filesystem>
#include <functional>
#include <iostream>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <sstream>
#include <thread>

#include <httplib.h>
#include <nlohmann/json.hpp>

#include <unistd.h>

#include "cli/cli_util.h"
#include "cli/client.h"
#include "cli/local_state.h"
#include "cli/run_control.h"
#include "common/file_util.h"
#include "common/text.h"
#include "coordinator/core.h"
#include "coordinator/dashboard.h"
#include "coordinator/job_store.h"
#include "coordinator/search.h"
#include "coordinator/http_api.h"
#include "coordinator/sigv4.h"
#include "proto/codec.h"
#include "proto/validate.h"

namespace hpo::cli {

namespace fs = std::filesystem;
using Json = nlohmann::ordered_json;

namespace {

// The dashboard's data from a coordinator over HTTP, every request signed like the other client
// commands' (so it works against a coordinator that requires signatures). Errors are returned,
// not fatal: a page says the coordinator cannot be reached and the next reload tries again.
class RemoteSource : public coordinator::dashboard::Source {
 public:
  explicit RemoteSource(std::string url) : url_(std::move(url)) {}
  Result<Json> Action(const std::string& action, const Json& request) override {
    const std::string payload = request.dump();
    httplib::Client client(url_);
    Limits(client);
    auto res = client.Post("/", ClientHeaders(url_, "POST", "/", payload, {{"X-Amz-Target", "SageMaker." + action}}),
                           payload, "application/x-amz-json-1.1");
    return Answer(res);
  }
  Result<Json> Events(const std::string& job, int64_t after, size_t limit) override {
    return Get("/hpo/v1/events?after=" + std::to_string(after) + "&limit=" + std::to_string(limit) + "&job=" + job);
  }
  Result<Json> LastEvents(const std::string& job, size_t limit) override {
    return Get("/hpo/v1/events?last=1&limit=" + std::to_string(limit) + "&job=" + job);
  }
  Result<Json> Logs(const std::string& trial, int64_t after, size_t limit) override {
    return Get("/hpo/v1/logs/" + trial + "?after=" + std::to_string(after) + "&limit=" + std::to_string(limit));
  }
  Result<Json> Curves(const std::string& job, size_t limit, const std::string& trial) override {
    return Get("/hpo/v1/curves?job=" + job + "&limit=" + std::to_string(limit) + (trial.empty() ? "" : "&trial=" + trial));
  }
  Result<Json> Workers() override { return Get("/hpo/v1/workers"); }

 private:
  static void Limits(httplib::Client& client) {
    client.set_connection_timeout(3, 0);
    client.set_read_timeout(30, 0);
  }
  Result<Json> Get(const std::string& target) {
    httplib::Client client(url_);
    Limits(client);
    return Answer(client.Get(target, ClientHeaders(url_, "GET", target, "", {})));
  }
  Result<Json> Answer(const httplib::Result& res) const {
    if (!res) {
      if (res.error() == httplib::Error::Read || res.error() == httplib::Error::Write) {
        if (std::string zmq = ZmqPortHint(url_); !zmq.empty()) return Status::InvalidArgument(zmq);
      }
      return Status::Unavailable("cannot reach the coordinator at " + url_ + " (" + httplib::to_string(res.error()) +
                                 "); start one with `hpo coordinator`, point --coordinator / HPO_COORDINATOR at it, "
                                 "or read a state directory with --state-dir DIR");
    }
    Json j = Json::parse(res->body, nullptr, false);
    if (res->status == 200 && j.is_object()) return j;
    if (res->status == 200) {
      return Status::Unavailable(
          UnexpectedAnswer("the coordinator at " + url_, "not a JSON object (" + Snippet(res->body) + ")"));
    }
    if (!j.is_object()) {  // an error page from another server at that address (a wrong port)
      return Status::Unavailable(UnexpectedAnswer("the coordinator at " + url_,
                                                  "HTTP " + std::to_string(res->status) + ", " + Snippet(res->body)));
    }
    const std::string type = !Text(j, "__type").empty() ? Text(j, "__type")
                             : j.is_object()           ? "Error"
                                                       : "HTTP " + std::to_string(res->status);
    const std::string message = j.is_object() && j.contains("message") ? Text(j, "message") : res->body.substr(0, 300);
    if (proto::IsNotFoundError(type, message)) return Status::NotFound(message);
    if (type == "ValidationException" || type == "SerializationException") {
      return Status::InvalidArgument(type + ": " + message);
    }
    std::string hint;
    if (res->status == 403) hint = AuthHint(message);
    return Status::FailedPrecondition(type + ": " + message + hint);
  }
  std::string url_;
};

// Where the commands that only read (list, describe, trials, logs, events, dashboard) get their
// answers: a coordinator over HTTP (--coordinator), or a state directory read in this process
// (--state-dir, cli/local_state.h). Both answer through dashboard::Source with the same documents.
class Origin {
 public:
  explicit Origin(std::shared_ptr<std::string> url) : url_(std::move(url)) {}
  std::string state_dir;  // --state-dir; empty: the coordinator at *url_

  bool local() const { return !state_dir.empty(); }
  // The coordinator's URL, checked (CheckCoordinatorUrl: exits 2 when it is not an HTTP API's).
  const std::string& url() const {
    CheckCoordinatorUrl(url_.get());
    return *url_;
  }
  // "the coordinator at URL" or "DIR/hpo.db", for messages.
  std::string where() const { return local() ? state_dir + "/hpo.db" : "the coordinator at " + *url_; }
  // What a command it suggests needs to read the same place: " --state-dir DIR", " --coordinator
  // URL" for one not the default, or "".
  std::string flags() const { return local() ? " --state-dir " + ShellWord(state_dir) : CoordinatorFlag(*url_); }
  // Opened on first use; exits with a clear message when the state directory cannot be read.
  coordinator::dashboard::Source& source() {
    if (local()) {
      if (!local_) {
        auto opened = LocalState::Open(state_dir);
        if (!opened.ok()) Fail(opened.status().code() == StatusCode::kInvalidArgument ? 2 : 3, opened.status().message());
        local_ = std::move(opened).value();
      }
      return local_->source();
    }
    if (!remote_) remote_ = std::make_unique<RemoteSource>(url());
    return *remote_;
  }
  LocalState* local_state() {
    source();
    return local_.get();
  }
  // A state directory is read as it is at the moment of opening; the next use reads it afresh
  // (for -f on a directory that a coordinator is writing).
  void Refresh() { local_.reset(); }

 private:
  std::shared_ptr<std::string> url_;
  std::unique_ptr<LocalState> local_;
  std::unique_ptr<RemoteSource> remote_;
};

// A DescribeTrainingJob answer for people: status and why, times, metrics, artifacts, the
// hyperparameters it ran with and its status history.
void PrintTrainingJob(const Json& tj) {
  auto str = [&](const Json& j, const char* k) { return j.contains(k) && j[k].is_string() ? j[k].get<std::string>() : ""; };
  auto when = [&](const char* k) -> std::string {
    if (!tj.contains(k) || !tj[k].is_number()) return "-";
    const double t = tj[k].get<double>();
    const std::time_t s = static_cast<std::time_t>(t);
    std::tm tm{};
    gmtime_r(&s, &tm);
    char buf[40];
    std::strftime(buf, sizeof buf, "%Y-%m-%d %H:%M:%S", &tm);
    return std::string(buf) + " UTC";
  };
  std::printf("%-16s %s\n", "Training job", str(tj, "TrainingJobName").c_str());
  std::printf("%-16s %s (%s)\n", "Status", str(tj, "TrainingJobStatus").c_str(), str(tj, "SecondaryStatus").c_str());
  if (!str(tj, "FailureReason").empty()) std::printf("%-16s %s\n", "Failure", str(tj, "FailureReason").c_str());
  if (!str(tj, "TuningJobArn").empty()) std::printf("%-16s %s\n", "Tuning job", str(tj, "TuningJobArn").c_str());
  std::printf("%-16s %s\n", "Created", when("CreationTime").c_str());
  std::printf("%-16s %s\n", "Started", when("TrainingStartTime").c_str());
  std::printf("%-16s %s\n", "Ended", when("TrainingEndTime").c_str());
  if (tj.contains("TrainingTimeInSeconds")) {
    std::printf("%-16s %s s, billable %s s\n", "Training time", tj["TrainingTimeInSeconds"].dump().c_str(),
                tj.value("BillableTimeInSeconds", Json(0)).dump().c_str());
  }
  if (tj.contains("ModelArtifacts")) {
    // Where the model goes (DescribeTrainingJob always names it, as SageMaker's does); after an
    // infrastructure error it need not be there (a CLI pass followed it to an empty directory).
    const bool infra =
        str(tj, "TrainingJobStatus") == "Failed" && str(tj, "FailureReason").rfind("InternalServerError", 0) == 0;
    std::printf("%-16s %s%s\n", "Model", str(tj["ModelArtifacts"], "S3ModelArtifacts").c_str(),
                infra ? " (may be missing: the training job ended with an infrastructure error)" : "");
  }
  auto table = [](const char* title, const std::vector<std::pair<std::string, std::string>>& rows) {
    if (rows.empty()) return;
    std::printf("\n%s\n", title);
    size_t w = 0;
    for (const auto& [k, v] : rows) w = std::max(w, k.size());
    for (const auto& [k, v] : rows) std::printf("  %-*s  %s\n", static_cast<int>(w), k.c_str(), v.c_str());
  };
  std::vector<std::pair<std::string, std::string>> metrics, hps, history;
  for (const auto& m : tj.value("FinalMetricDataList", Json::array())) {
    metrics.emplace_back(str(m, "MetricName"), m.contains("Value") ? Num(m["Value"].get<double>()) : "-");
  }
  const Json given = tj.value("HyperParameters", Json::object());  // kept: items() does not own it
  for (const auto& [k, v] : given.items()) {
    if (v.is_string()) hps.emplace_back(k, v.get<std::string>());
  }
  for (const auto& st : tj.value("SecondaryStatusTransitions", Json::array())) {
    const double t = st.value("StartTime", 0.0);
    const std::time_t s = static_cast<std::time_t>(t);
    std::tm tm{};
    gmtime_r(&s, &tm);
    char buf[16];
    std::strftime(buf, sizeof buf, "%H:%M:%S", &tm);
    history.emplace_back(str(st, "Status"), std::string(buf) + "  " + str(st, "StatusMessage"));
  }
  table("Final metrics", metrics);
  table("Hyperparameters", hps);
  table("Status history (UTC)", history);
}

// The document, or an exit with the error's message: 2 for a request the server calls invalid,
// 3 when the coordinator cannot be reached, else 1 (no such job, refused, ...).
// `flags`: what the commands a not-found message suggests need to reach the same place
// (Origin::flags).
Json Must(Result<Json> r, const std::string& flags = "") {
  if (r.ok()) return std::move(r).value();
  const Status& s = r.status();
  switch (s.code()) {
    case StatusCode::kInvalidArgument: Fail(2, s.message());
    case StatusCode::kUnavailable: Fail(3, s.message());
    case StatusCode::kNotFound:
      Fail(1, "ResourceNotFound: " + s.message() +
                  (s.message().find("hpo list") != std::string::npos ? std::string() : WhereTheNamesAre(flags)));
    default: Fail(1, s.message());
  }
}

// A state directory behind the dashboard: read afresh for a request when the last reading is more
// than two seconds old, so that the pages of a job that a coordinator is running move on.
// Thread-safe (the server answers on several threads; each reading's core has its own lock).
class FreshLocalSource : public coordinator::dashboard::Source {
 public:
  explicit FreshLocalSource(std::string dir) : dir_(std::move(dir)) {}
  Result<Json> Action(const std::string& action, const Json& request) override {
    auto s = Reading();
    if (!s.ok()) return s.status();
    return (*s)->source().Action(action, request);
  }
  Result<Json> Events(const std::string& job, int64_t after, size_t limit) override {
    auto s = Reading();
    if (!s.ok()) return s.status();
    return (*s)->source().Events(job, after, limit);
  }
  Result<Json> LastEvents(const std::string& job, size_t limit) override {
    auto s = Reading();
    if (!s.ok()) return s.status();
    return (*s)->source().LastEvents(job, limit);
  }
  Result<Json> Logs(const std::string& trial, int64_t after, size_t limit) override {
    auto s = Reading();
    if (!s.ok()) return s.status();
    return (*s)->source().Logs(trial, after, limit);
  }
  Result<Json> Curves(const std::string& job, size_t limit, const std::string& trial) override {
    auto s = Reading();
    if (!s.ok()) return s.status();
    return (*s)->source().Curves(job, limit, trial);
  }

 private:
  Result<std::shared_ptr<LocalState>> Reading() {
    std::lock_guard<std::mutex> lock(mu_);
    const auto now = std::chrono::steady_clock::now();
    if (!state_ || now - read_at_ > std::chrono::seconds(2)) {
      auto opened = LocalState::Open(dir_);
      if (!opened.ok()) return opened.status();
      state_ = std::move(opened).value();
      read_at_ = now;
    }
    return state_;
  }
  const std::string dir_;
  std::mutex mu_;
  std::shared_ptr<LocalState> state_;
  std::chrono::steady_clock::time_point read_at_;
};

// hpo compare's table (coordinator/dashboard.h Compare's document): one row per job, '*' on the
// best value of each objective column, then the notes.
std::string CompareTable(const Json& cmp) {
  const Json& jobs = cmp["Jobs"];
  const std::string n = std::to_string(cmp["Budget"].get<size_t>());
  std::string out;
  if (!Text(cmp, "Type").empty() && !Text(cmp, "MetricName").empty()) {
    out += "Objective: " + Text(cmp, "Type") + " " + Text(cmp, "MetricName") + "\n";
  }
  out += "Each judged by its first " + n + " training jobs" +
         (cmp["BudgetFromFewest"].get<bool>()
              ? std::string(" (the fewest any of them ") +
                    (cmp.value("BudgetSkipsEmpty", false) ? "that has one created" : "created") + "; --budget N sets it)"
              : "") +
         ".\n\n";
  auto value = [](const Json& row, const char* key) {
    if (!row[key].is_number()) return std::string("-");
    const Json& leads = Field(row, "Leads");
    const bool lead = leads.is_array() && std::find(leads.begin(), leads.end(), key) != leads.end();
    return Num(row[key].get<double>()) + (lead ? " *" : "");
  };
  auto seconds = [](const Json& v) { return v.is_number() ? coordinator::dashboard::Duration(v.get<double>()) : "-"; };
  std::vector<std::vector<std::string>> rows = {
      {"JOB", "STRATEGY", "STATUS", "TRAINING JOBS", "BEST@" + n, "BEST", "FOUND AT", "TO BEST", "WALL"}};
  for (const Json& j : jobs) {
    rows.push_back({Text(j, "Label"), Text(j, "Strategy"), Text(j, "Status"),
                    std::to_string(j["TrainingJobs"].get<size_t>()) + " (" +
                        std::to_string(j["WithObjective"].get<size_t>()) + " scored)",
                    value(j, "BestAtBudget"), value(j, "Best"),
                    j["BestNumber"].is_number() ? "#" + std::to_string(j["BestNumber"].get<size_t>()) : "-",
                    seconds(j["SecondsToBest"]), seconds(j["Seconds"])});
  }
  for (const std::string& line : AlignedRows(rows)) out += line + "\n";
  for (const Json& note : cmp["Notes"]) out += "note: " + note.get<std::string>() + "\n";
  return out;
}

// hpo compare's plot: each job's best objective so far against its training jobs, one letter per
// job (A, B, ...), `width` x `height` characters; "" when no job has a value yet.
std::string CompareChart(const Json& cmp, int width, int height) {
  const Json& jobs = cmp["Jobs"];
  size_t longest = 0;
  double lo = 0, hi = 0;
  bool any = false;
  for (const Json& j : jobs) {
    longest = std::max(longest, j["BestSoFar"].size());
    for (const Json& v : j["BestSoFar"]) {
      if (!v.is_number()) continue;
      const double d = v.get<double>();
      lo = any ? std::min(lo, d) : d;
      hi = any ? std::max(hi, d) : d;
      any = true;
    }
  }
  if (!any || longest == 0) return "";
  // Best-so-far values of a good run crowd near the optimum: a log scale shows them apart when all
  // are positive and span more than a factor of 20.
  const bool log = lo > 0 && hi / lo > 20;
  auto y_of = [&](double v) {
    const double a = log ? std::log10(v) : v, b = log ? std::log10(lo) : lo, c = log ? std::log10(hi) : hi;
    const double f = c > b ? (a - b) / (c - b) : 0.5;
    return static_cast<int>(std::lround((1.0 - f) * (height - 1)));
  };
  std::vector<std::string> grid(static_cast<size_t>(height), std::string(static_cast<size_t>(width), ' '));
  for (size_t i = 0; i < jobs.size(); ++i) {
    const char mark = i < 26 ? static_cast<char>('A' + i) : '+';
    const Json& series = jobs[i]["BestSoFar"];
    for (int x = 0; x < width; ++x) {
      // The training job this column stands for: the longest job's count spread over the width.
      const size_t k = x == width - 1 ? longest - 1
                                      : std::min(longest - 1, static_cast<size_t>(x) * longest / static_cast<size_t>(width));
      if (k >= series.size() || !series[k].is_number()) continue;
      char& cell = grid[static_cast<size_t>(y_of(series[k].get<double>()))][static_cast<size_t>(x)];
      cell = (cell == ' ' || cell == mark) ? mark : '#';
    }
  }
  std::string notes;
  if (!Text(cmp, "Type").empty()) notes = Text(cmp, "Type") == "Maximize" ? "higher is better" : "lower is better";
  if (log) notes += std::string(notes.empty() ? "" : ", ") + "log scale";
  std::string out = "\nBest so far" + (notes.empty() ? "" : " (" + notes + ")") + ", by training job:\n";
  const std::string top = Num(hi), bottom = Num(lo);
  const size_t label = std::max(top.size(), bottom.size());
  for (int r = 0; r < height; ++r) {
    std::string tick = r == 0 ? top : r == height - 1 ? bottom : "";
    out += std::string(label - tick.size(), ' ') + tick + " |" + grid[static_cast<size_t>(r)] + "\n";
  }
  out += std::string(label + 1, ' ') + "+" + std::string(static_cast<size_t>(width), '-') + "\n";
  const std::string last = std::to_string(longest);
  out += std::string(label + 2, ' ') + "1" + std::string(static_cast<size_t>(std::max<int>(1, width - 1 - static_cast<int>(last.size()))), ' ') +
         last + "\n";
  for (size_t i = 0; i < jobs.size(); ++i) {
    out += "  " + std::string(1, i < 26 ? static_cast<char>('A' + i) : '+') + "  " + Text(jobs[i], "Label") + "\n";
  }
  out += "  #  two or more at once\n";
  return out;
}

// Puts a list answer's NextToken into the next request; false when there is none. A token that
// is not a string, or the one just sent (a server that would page forever), exits 3.
bool NextPage(const Json& page, Json* req, const std::string& from) {
  const Json& token = Field(page, "NextToken");
  if (token.is_null()) return false;
  if (!token.is_string() || token.get<std::string>().empty()) FailUnexpected(from, "its NextToken is not a token");
  if (req->contains("NextToken") && (*req)["NextToken"] == token) {
    FailUnexpected(from, "it answered the page of NextToken " + token.get<std::string>() + " with the same token");
  }
  (*req)["NextToken"] = token;
  return true;
}

// One `hpo search` condition as a Search filter: "NAME OP VALUE" (OP one of = == != < <= > >= ~, ~
// being Contains), "NAME in A,B,C", "NAME exists" or "NAME !exists". Spaces around the operator
// are optional. Exits 2 saying the forms for anything else.
Json SearchCondition(const std::string& condition) {
  const std::string_view s = TrimSpace(condition);
  auto bad = [&](const std::string& why) {
    Fail(2, "search condition '" + condition + "' " + why +
                ": write NAME OP VALUE (OP one of = != < <= > >= ~, ~ for contains), NAME in A,B, NAME exists or "
                "NAME !exists; NAME is Metrics.NAME, HyperParameters.NAME, Tags.KEY or a field such as "
                "TrainingJobStatus");
  };
  auto word = [&](std::string_view suffix, const char* op) -> std::optional<Json> {
    if (s.size() <= suffix.size() || s.substr(s.size() - suffix.size()) != suffix) return std::nullopt;
    const std::string_view name = TrimSpace(s.substr(0, s.size() - suffix.size()));
    if (name.empty()) bad("names no property");
    return Json{{"Name", std::string(name)}, {"Operator", op}};
  };
  // The words apply where no operator comes first: 'FailureReason ~ file exists' is a Contains.
  const size_t at = s.find_first_of("<>=!~");
  const bool symbol_first = at != std::string_view::npos;
  auto before_symbol = [&](size_t pos) { return !symbol_first || pos <= at; };
  if (s.size() > 8 && before_symbol(s.size() - 8)) {
    if (auto j = word(" !exists", "NotExists")) return *j;
  }
  if (s.size() > 7 && before_symbol(s.size() - 7)) {
    if (auto j = word(" exists", "Exists")) return *j;
  }
  if (const size_t in = s.find(" in "); in != std::string_view::npos && before_symbol(in)) {
    const std::string_view name = TrimSpace(s.substr(0, in)), values = TrimSpace(s.substr(in + 4));
    if (name.empty() || values.empty()) bad("needs a name and a list");
    return Json{{"Name", std::string(name)}, {"Operator", "In"}, {"Value", std::string(values)}};
  }
  if (!symbol_first) bad("has no operator");
  if (at == 0) bad("names no property");
  // == as =, as programmers write it.
  static const std::pair<const char*, const char*> kOps[] = {{"<=", "LessThanOrEqualTo"}, {">=", "GreaterThanOrEqualTo"},
                                                             {"!=", "NotEquals"}, {"==", "Equals"},
                                                             {"<", "LessThan"}, {">", "GreaterThan"},
                                                             {"=", "Equals"}, {"~", "Contains"}};
  for (const auto& [symbol, op] : kOps) {
    if (s.substr(at, std::strlen(symbol)) != symbol) continue;
    const std::string_view value = TrimSpace(s.substr(at + std::strlen(symbol)));
    if (value.empty()) bad("has no value after " + std::string(symbol));
    // ">>", "=<", "<>": an operator hpo does not know, not a value that starts with one (it said
    // "Value > 0.9 is not a number"). A Contains takes any text.
    if (std::string(symbol) != "~" && std::string_view("<>=!~").find(value.front()) != std::string_view::npos) {
      const size_t end = s.find_first_not_of("<>=!~", at);
      bad("has an operator hpo does not know (" +
          std::string(s.substr(at, end == std::string_view::npos ? std::string_view::npos : end - at)) + ")");
    }
    return Json{{"Name", std::string(TrimSpace(s.substr(0, at)))}, {"Operator", op}, {"Value", std::string(value)}};
  }
  bad("has an operator hpo does not know");
  return Json();
}

// A record's value of a Search property, as text for a table ("-" when it has none, or when the
// record's resource lacks the property): the first value coordinator::SearchProperty reaches.
std::string SearchColumn(const Json& record, const std::optional<coordinator::SearchProperty>& property) {
  const std::vector<const Json*> values = property ? property->Values(record) : std::vector<const Json*>{};
  if (values.empty()) return "-";
  const Json& v = *values.front();
  if (v.is_string()) return v.get<std::string>();
  if (v.is_number()) return Num(v.get<double>());
  return v.dump();
}

}  // namespace

void AddClientCommands(CLI::App& app) {
  auto url = std::make_shared<std::string>(DefaultCoordinator());
  auto add_url = [url](CLI::App* c) {
    c->add_option("--coordinator", *url, "Coordinator URL (default $HPO_COORDINATOR, else http://127.0.0.1:7780)");
  };
  // The commands that only read take either a coordinator or a state directory.
  auto add_origin = [url](CLI::App* c) {
    auto origin = std::make_shared<Origin>(url);
    c->add_option("--coordinator", *url, "Coordinator URL (default $HPO_COORDINATOR, else http://127.0.0.1:7780)");
    c->add_option("--state-dir", origin->state_dir,
                  "Read a state directory instead of asking a coordinator: hpo run's (it prints it) or hpo "
                  "coordinator's; it may be in use, and nothing in it is changed")
        ->excludes(c->get_option("--coordinator"));
    return origin;
  };

  auto spec = std::make_shared<std::string>();
  CLI::App* submit = app.add_subcommand("submit", "Submit a tuning job to a coordinator");
  submit->footer(
      "Validates the spec here first (as hpo validate), then sends it: a SageMaker request as a\n"
      "CreateHyperParameterTuningJob request, a Kubernetes resource as one (its metadata's namespace,\n"
      "labels and annotations are kept, and hpo describe -o yaml shows them); prints the job's ARN.\n"
      "The quotas (MaxParallelTrainingJobs, MaxNumberOfTrainingJobs) are the coordinator's (hpo\n"
      "coordinator --max-*), checked there. Exit codes: 0 submitted, 1 refused by the coordinator (a\n"
      "name in use, a quota), 2 an invalid spec, 3 no coordinator there.\n\n"
      "Example:\n  hpo submit examples/quickstart.yaml --coordinator http://gpu-head:7780");
  submit->add_option("spec", *spec, "CRD YAML/JSON or SageMaker JSON request")->required();
  add_url(submit);
  submit->callback([spec, url] {
    // The coordinator's quotas are its own (hpo coordinator --max-*): it answers
    // ResourceLimitExceeded for a job over one. Checked here: everything else.
    proto::ParsedSpec p = LoadSpec(*spec, proto::ValidationLimits::Unlimited());
    // The workers may be other machines: a program missing here is a warning, not a refusal.
    for (const std::string& note : LocalProgramNotes(p.document.spec, *spec)) std::cerr << "hpo: warning: " << note << "\n";
    for (const std::string& note : ContractEnvironmentNotes(p.document.spec)) std::cerr << "hpo: note: " << note << "\n";
    // A Kubernetes resource goes as one, so that the job keeps its metadata (namespace, labels,
    // annotations) and `hpo describe -o yaml` shows them again.
    const Endpoint at = CoordinatorAt(*url);
    Json j = p.spelling == proto::Spelling::kCrd
                 ? Request(at, "POST", "/hpo/v1/jobs", proto::EncodeCrdDocument(p.document))
                 : Call(at, "CreateHyperParameterTuningJob", proto::EncodeCreateRequest(p.document.spec));
    std::cout << j.value("HyperParameterTuningJobArn", "") << "\n";
    Exit(0);
  });

  auto output = std::make_shared<std::string>("table");
  CLI::App* list = app.add_subcommand("list", "List the coordinator's tuning jobs");
  auto list_origin = add_origin(list);
  auto status = std::make_shared<std::string>();
  list->add_option("-o,--output", *output, "table, json, or names (one per line, for scripts); default table")
      ->check(CLI::IsMember({"table", "json", "names"}));
  list->add_option("--status", *status, "Only jobs in this status")
      ->check(CLI::IsMember({"InProgress", "Completed", "Failed", "Stopping", "Stopped", "Deleting", "DeleteFailed"}));
  list->footer("Example:\n  hpo delete $(hpo list --status Completed -o names)   # clear out the finished ones");
  list->callback([list_origin, output, status] {
    Json all = Json::array();
    Json req = {{"MaxResults", 100}, {"SortBy", "CreationTime"}};
    if (!status->empty()) req["StatusEquals"] = *status;
    for (;;) {
      Json page = Must(list_origin->source().Action("ListHyperParameterTuningJobs", req));
      for (const auto& s : Items(page, "HyperParameterTuningJobSummaries", list_origin->where())) all.push_back(s);
      if (!NextPage(page, &req, list_origin->where())) break;
    }
    if (*output == "json") {
      std::cout << Json{{"HyperParameterTuningJobSummaries", all}}.dump(2) << "\n";
    } else if (*output == "names") {
      for (const auto& s : all) std::cout << Text(s, "HyperParameterTuningJobName") << "\n";
    } else {
      // As wide as the longest name (up to SageMaker's 32): padded to 32, every line of short
      // names was 93 columns and wrapped in an 80-column terminal.
      int width = 4;
      for (const auto& s : all) width = std::max(width, static_cast<int>(Text(s, "HyperParameterTuningJobName").size()));
      std::printf("%-*s %-11s %-10s %9s %7s %7s %6s\n", width, "NAME", "STATUS", "STRATEGY", "COMPLETED", "RUNNING",
                  "STOPPED", "FAILED");
      for (const auto& s : all) {
        const Json& c = Field(s, "TrainingJobStatusCounters");
        auto count = [&](const char* k) { return Field(c, k).is_number_integer() ? Field(c, k).get<long long>() : 0LL; };
        std::printf("%-*s %-11s %-10s %9lld %7lld %7lld %6lld\n", width, Text(s, "HyperParameterTuningJobName").c_str(),
                    Text(s, "HyperParameterTuningJobStatus").c_str(), Text(s, "Strategy").c_str(), count("Completed"),
                    count("InProgress"), count("Stopped"), count("NonRetryableError") + count("RetryableError"));
      }
    }
    // A state directory that no process holds: its InProgress jobs are not running (an hpo run
    // whose terminal went away left its job to be resumed), though the table says InProgress.
    if (list_origin->local()) {
      size_t open = 0;
      for (const auto& s : all) {
        const std::string st = Text(s, "HyperParameterTuningJobStatus");
        open += st == "InProgress" || st == "Stopping";
      }
      if (open > 0 && DirectoryLocked(list_origin->state_dir) == std::optional<bool>(false)) {
        std::cerr << "note: no hpo run or hpo coordinator is running on " << list_origin->state_dir << ", so "
                  << (open == 1 ? "its InProgress job waits" : "its InProgress jobs wait")
                  << ": run the same hpo run command to resume it (hpo run prints its state directory), or start "
                     "hpo coordinator --state-dir "
                  << ShellWord(list_origin->state_dir) << "\n";
      }
    }
    Exit(0);
  });

  auto name = std::make_shared<std::string>();
  auto doutput = std::make_shared<std::string>("json");
  auto dtraining = std::make_shared<bool>(false);
  auto dbest = std::make_shared<bool>(false);
  auto dimportance = std::make_shared<bool>(false);
  CLI::App* describe = app.add_subcommand("describe", "Describe a tuning job, its best configuration, or a training job");
  describe->add_option("name", *name, "Tuning job name (or a training job's, with --training-job)")->required();
  describe->add_option("-o,--output", *doutput,
                       "json (DescribeHyperParameterTuningJob), yaml (the CRD document) or table (for people: "
                       "status, best training job, the ranges searched, which hyperparameters mattered, the ten best); default "
                       "json")
      ->check(CLI::IsMember({"json", "yaml", "table"}));
  describe->add_flag("--training-job", *dtraining,
                     "NAME is a training job: DescribeTrainingJob (its hyperparameters, status history, metrics, "
                     "model artifacts). Without it, a name that is not a tuning job's is looked up as a training job's");
  describe->add_flag("--best", *dbest,
                     "The best training job's hyperparameters, every one (static and tuned), ready to reuse: "
                     "a JSON object (-o json), YAML (-o yaml) or a table");
  describe->get_option("--best")->excludes("--training-job");
  describe->add_flag("--importance", *dimportance,
                     "Which hyperparameters mattered: each one's share of the objective's variation over the ranges, "
                     "alone and with its interactions (from 8 ended training jobs with an objective; per definition): "
                     "JSON (-o json, for a script), YAML (-o yaml) or bars (-o table)")
      ->excludes("--training-job")
      ->excludes("--best");
  auto describe_origin = add_origin(describe);
  describe->footer(
      "Examples:\n  hpo describe my-job -o table\n"
      "  hpo describe my-job --best > best.json              # the winning configuration, to train with\n"
      "  hpo describe my-job --importance -o table           # which hyperparameters mattered\n"
      "  hpo describe my-job-007-1a2b3c4d -o table          # one training job\n"
      "  hpo describe quickstart --state-dir hpo-runs/quickstart-20261130-084248 -o table   # after hpo run");
  describe->callback([describe_origin, name, doutput, dtraining, dbest, dimportance] {
    Origin& origin = *describe_origin;
    auto training_job = [&](const Json& tj) {
      if (*doutput != "table") {
        std::cout << (*doutput == "yaml" ? proto::ToYaml(nlohmann::ordered_json::parse(tj.dump())) : tj.dump(2) + "\n");
        Exit(0);
      }
      PrintTrainingJob(tj);
      Exit(0);
    };
    if (*dtraining) training_job(Must(origin.source().Action("DescribeTrainingJob", {{"TrainingJobName", *name}}), origin.flags()));
    if (*dbest) {
      Json d = Must(origin.source().Action("DescribeHyperParameterTuningJob", {{"HyperParameterTuningJobName", *name}}), origin.flags());
      if (!d.contains("BestTrainingJob")) {
        // The objective: the job's, or with TrainingJobDefinitions each definition's (the first).
        using Ptr = Json::json_pointer;
        std::string metric = d.value(Ptr("/HyperParameterTuningJobConfig/HyperParameterTuningJobObjective/MetricName"), "");
        if (metric.empty()) metric = d.value(Ptr("/TrainingJobDefinitions/0/TuningObjective/MetricName"), "");
        const std::string status = Text(d, "HyperParameterTuningJobStatus");
        const bool ended = TuningJobEnded(status);
        // Its warm-start parents' best (OverallBestTrainingJob) is still there to use.
        std::string parents;
        if (d.contains("OverallBestTrainingJob")) {
          const Json& o = d["OverallBestTrainingJob"];
          parents = "; its warm-start parents' best is " + o.value("TrainingJobName", "?") + " of " +
                    o.value("TuningJobName", "a parent") + " (OverallBestTrainingJob): hpo describe --best " +
                    o.value("TuningJobName", "PARENT") + origin.flags();
        }
        Fail(1, *name + (ended ? " ended (" + status + ") without a best training job (none completed with its objective"
                               : " has no best training job yet (none has reported its objective") +
                    (metric.empty() ? "" : " " + metric) + "); see hpo trials " + *name + origin.flags() + parents);
      }
      const std::string best = d["BestTrainingJob"]["TrainingJobName"];
      // A warm start's parents may hold a better one (OverallBestTrainingJob): this job's best is
      // what SageMaker's SDK gives too, but "the winning configuration" was 57 times worse than one
      // already found (a user's pass). Said on stderr, so the output stays what it was.
      if (d.contains("OverallBestTrainingJob") && d["OverallBestTrainingJob"].value("TrainingJobName", "") != best) {
        const Json& o = d["OverallBestTrainingJob"];
        const Json om = o.value("FinalHyperParameterTuningJobObjectiveMetric", Json::object());
        std::cerr << "hpo: note: a parent of this warm start did better: " << o.value("TrainingJobName", "?")
                  << (om.contains("Value") ? " (" + Num(om["Value"].get<double>()) + ")" : std::string()) << " of "
                  << o.value("TuningJobName", "a parent") << " (OverallBestTrainingJob); its hyperparameters: hpo "
                  << "describe --best " << o.value("TuningJobName", "PARENT") << "\n";
      }
      Json tj = Must(origin.source().Action("DescribeTrainingJob", {{"TrainingJobName", best}}), origin.flags());
      Json hp = Json::object();
      const Json all = tj.value("HyperParameters", Json::object());  // kept: items() does not own it
      for (const auto& [k, v] : all.items()) {
        if (k != "_tuning_objective_metric") hp[k] = v;  // SageMaker's own, not the trainer's
      }
      if (*doutput == "json") {
        std::cout << hp.dump(2) << "\n";
      } else if (*doutput == "yaml") {
        std::cout << proto::ToYaml(nlohmann::ordered_json::parse(hp.dump()));
      } else {
        const Json& m = d["BestTrainingJob"].value("FinalHyperParameterTuningJobObjectiveMetric", Json::object());
        std::printf("%s: %s = %s\n", best.c_str(), m.value("MetricName", "objective").c_str(),
                    m.contains("Value") ? Num(m["Value"].get<double>()).c_str() : "-");
        size_t w = 0;
        for (const auto& [k, v] : hp.items()) w = std::max(w, k.size());
        for (const auto& [k, v] : hp.items()) {
          std::printf("  %-*s  %s\n", static_cast<int>(w), k.c_str(), v.get<std::string>().c_str());
        }
      }
      Exit(0);
    }
    // Asked once: a training job's name given without --training-job is tried as one.
    // (-o yaml too: its CRD document is the tuning job's only, so a training job's name needs this.)
    std::optional<Result<Json>> described;
    {
      described = origin.source().Action("DescribeHyperParameterTuningJob", {{"HyperParameterTuningJobName", *name}});
      const StatusCode code = described->status().code();
      if (code == StatusCode::kNotFound || code == StatusCode::kInvalidArgument) {
        Result<Json> tj = origin.source().Action("DescribeTrainingJob", {{"TrainingJobName", *name}});
        if (tj.ok()) training_job(*tj);
        // (A name too long for a tuning job may still be a training job's: not found as either.)
        if (tj.status().code() == StatusCode::kNotFound) {
          described = Result<Json>(Status::NotFound(
              "no tuning job or training job named " + *name + " on " + origin.where() +
              WhereTheNamesAre(origin.flags())));
        }
      }
    }
    if (*doutput == "table" || *dimportance) {
      Json d = Must(std::move(*described), origin.flags());
      auto desc = proto::DecodeDescribeResponse(proto::TextTree{d, false, {}, {}});
      if (!desc.ok()) Fail(1, "the DescribeHyperParameterTuningJob answer of " + origin.where() +
                                  " does not decode: " + desc.status().message());
      std::vector<proto::TrainingJobSummary> rows;
      // By creation time: the order the coordinator keeps them in (no sort per page);
      // PrintSummary ranks them itself.
      Json req = {{"HyperParameterTuningJobName", *name}, {"MaxResults", 100}, {"SortBy", "CreationTime"}};
      for (;;) {
        Json page = Must(origin.source().Action("ListTrainingJobsForHyperParameterTuningJob", req), origin.flags());
        auto list = proto::DecodeListTrainingJobsResponse(proto::TextTree{page, false, {}, {}});
        if (!list.ok()) Fail(1, "the training job list of " + origin.where() + " does not decode: " + list.status().message());
        for (auto& t : list->training_job_summaries) rows.push_back(std::move(t));
        if (!NextPage(page, &req, origin.where())) break;
      }
      // A job that stops training jobs early compares them at one budget, by their curves.
      const Curves curves = coordinator::dashboard::ImportanceCurves(origin.source(), *name, desc->spec);
      if (*dimportance) {
        if (*doutput == "json") {
          std::cout << ImportanceJson(*desc, rows, curves).dump(2) << "\n";
        } else if (*doutput == "yaml") {
          std::cout << proto::ToYaml(ImportanceJson(*desc, rows, curves));
        } else {
          PrintImportance(*desc, rows, /*explain=*/true, curves);
        }
        Exit(0);
      }
      // Why it waits, where it does: the Waiting condition of its CRD status (-o yaml shows it too).
      std::string waiting;
      Json doc;
      if (origin.local()) {
        if (auto d = origin.local_state()->Document(*name); d.ok()) doc = proto::EncodeCrdDocument(*d);
      } else {
        httplib::Client client(origin.url());
        const std::string target = "/hpo/v1/jobs/" + *name;
        auto res = client.Get(target, ClientHeaders(origin.url(), "GET", target, "", {}));
        if (res && res->status == 200) doc = Json::parse(res->body, nullptr, false);
      }
      if (doc.is_object() && doc.contains("status") && doc["status"].contains("conditions")) {
        for (const auto& cond : doc["status"]["conditions"]) {
          if (cond.value("type", "") == "Waiting" && cond.value("status", "") == "True") waiting = cond.value("message", "");
        }
      }
      auto last = origin.source().LastEvents(*name, 20);
      PrintSummary(*desc, rows, /*show_ranges=*/true, waiting, curves, last.ok() ? CompletionReason(*last) : "");
    } else if (*doutput == "yaml" && !described->ok()) {
      Must(std::move(*described), origin.flags());
    } else if (*doutput == "yaml" && origin.local()) {
      auto doc = origin.local_state()->Document(*name);
      if (!doc.ok()) Must(doc.status(), origin.flags());
      std::cout << proto::ToYaml(proto::EncodeCrdDocument(*doc));
    } else if (*doutput == "yaml") {
      httplib::Client client(origin.url());
      const std::string target = "/hpo/v1/jobs/" + *name + "?format=yaml";
      auto res = client.Get(target, ClientHeaders(origin.url(), "GET", target, "", {}));
      if (!res) Fail(3, "cannot reach the coordinator at " + origin.url());
      if (res->status != 200) Fail(1, res->body);
      std::cout << res->body;
    } else {
      std::cout << Must(std::move(*described), origin.flags()).dump(2) << "\n";
    }
    Exit(0);
  });

  struct TrialsArgs {
    std::string name, sort_by = "Name", sort_order = "Ascending", status, output = "table";
  };
  auto ta = std::make_shared<TrialsArgs>();
  CLI::App* trials = app.add_subcommand("trials", "List the training jobs of a tuning job");
  trials->add_option("name", ta->name, "Tuning job name")->required();
  trials->add_option("--sort-by", ta->sort_by, "Name, CreationTime, Status or FinalObjectiveMetricValue (default Name)")
      ->check(CLI::IsMember({"Name", "CreationTime", "Status", "FinalObjectiveMetricValue"}));
  trials->add_option("--sort-order", ta->sort_order, "Ascending or Descending (default Ascending)")
      ->check(CLI::IsMember({"Ascending", "Descending"}));
  trials->add_option("--status", ta->status, "Only InProgress, Completed, Failed, Stopping or Stopped jobs")
      ->check(CLI::IsMember({"InProgress", "Completed", "Failed", "Stopping", "Stopped"}));
  trials->add_option("-o,--output", ta->output,
                     "table, json, csv (the SageMaker SDK's tuning-analytics columns, for pandas or a spreadsheet), or "
                     "names (one per line, for scripts); default table")
      ->check(CLI::IsMember({"table", "json", "csv", "names"}));
  auto trials_origin = add_origin(trials);
  trials->footer(
      "Examples:\n  hpo trials my-job --sort-by FinalObjectiveMetricValue --sort-order Descending\n"
      "  hpo trials my-job -o csv > my-job.csv        # one row per training job, for pandas\n"
      "  hpo logs $(hpo trials my-job --status Failed -o names | head -1)   # why the first failure failed\n"
      "  hpo trials quickstart --state-dir hpo-runs/quickstart-20261130-084248   # after hpo run");
  trials->callback([trials_origin, ta] {
    Json req = {{"HyperParameterTuningJobName", ta->name}, {"SortBy", ta->sort_by}, {"SortOrder", ta->sort_order},
                {"MaxResults", 100}};
    if (!ta->status.empty()) req["StatusEquals"] = ta->status;
    Json all = Json::array();
    for (;;) {
      Json page = Must(trials_origin->source().Action("ListTrainingJobsForHyperParameterTuningJob", req), trials_origin->flags());
      for (const auto& s : Items(page, "TrainingJobSummaries", trials_origin->where())) all.push_back(s);
      if (!NextPage(page, &req, trials_origin->where())) break;
    }
    // Sorted by objective, the API leaves out those without one (as SageMaker's does): said, on
    // stderr (the table, CSV and JSON read as if they were every training job).
    if (ta->sort_by == "FinalObjectiveMetricValue" && ta->status.empty()) {
      auto d = trials_origin->source().Action("DescribeHyperParameterTuningJob",
                                              {{"HyperParameterTuningJobName", ta->name}});
      int64_t total = 0;
      if (d.ok() && d->contains("TrainingJobStatusCounters")) {
        for (const auto& [k, v] : (*d)["TrainingJobStatusCounters"].items())
          total += v.is_number() ? v.get<int64_t>() : 0;
      }
      if (total > static_cast<int64_t>(all.size())) {
        std::cerr << "hpo: " << total - static_cast<int64_t>(all.size()) << " of " << total
                  << " training jobs have no objective value and are not listed when sorting by "
                     "FinalObjectiveMetricValue (as in SageMaker's API); --sort-by CreationTime lists every one\n";
      }
    }
    if (ta->output == "json") {
      std::cout << Json{{"TrainingJobSummaries", all}}.dump(2) << "\n";
    } else if (ta->output == "csv") {
      std::cout << coordinator::dashboard::TrainingJobsCsv(all);
    } else if (ta->output == "names") {
      for (const auto& s : all) std::cout << Text(s, "TrainingJobName") << "\n";
    } else {
      // As wide as the longest name: a 32-character job's training jobs have 45 (it was 40, and
      // the rows lost their columns).
      int width = 40;
      for (const auto& s : all) width = std::max(width, static_cast<int>(Text(s, "TrainingJobName").size()));
      // With several training job definitions, which one each ran (only JSON and CSV said).
      std::set<std::string> definitions;
      for (const auto& s : all) definitions.insert(Text(s, "TrainingJobDefinitionName"));
      int def_width = 0;
      if (definitions.size() > 1) {
        def_width = 10;
        for (const auto& n : definitions) def_width = std::max(def_width, static_cast<int>(n.size()));
      }
      std::printf("%-*s %-10s %-12s %-*s%s%s\n", width, "TRAINING JOB", "STATUS", "OBJECTIVE", def_width,
                  def_width ? "DEFINITION" : "", def_width ? " " : "", "HYPERPARAMETERS");
      // The hyperparameters wrap, whole, under their column to the terminal's width ($COLUMNS):
      // a long line wrapped by the terminal itself broke the table's columns (a dashboard pass).
      const size_t indent = static_cast<size_t>(width + 1 + 10 + 1 + 12 + 1 + def_width + (def_width ? 1 : 0));
      const int columns = TerminalColumns(STDOUT_FILENO);
      // (At 80 columns, after a 40-character name, 15 are left: room for a pair a line.)
      const size_t room = columns > static_cast<int>(indent) + 10 ? static_cast<size_t>(columns) - indent : 0;
      for (const auto& s : all) {
        std::string obj = "-";
        if (const Json& v = Field(Field(s, "FinalHyperParameterTuningJobObjectiveMetric"), "Value"); v.is_number()) {
          obj = Num(v.get<double>());
        }
        std::vector<std::string> hps;
        if (const Json& tuned = Field(s, "TunedHyperParameters"); tuned.is_object()) {
          for (auto it = tuned.begin(); it != tuned.end(); ++it) {
            std::string v = it->is_string() ? it->get<std::string>() : it->dump();
            // Quoted when a space, '=' or quote would make "k=v k2=v2" ambiguous.
            if (v.empty() || v.find_first_of(" \t=\"'") != std::string::npos) v = Json(v).dump();
            hps.push_back(it.key() + "=" + v);
          }
        }
        const std::vector<std::string> lines = WrapWords(hps, room);
        std::printf("%-*s %-10s %-12s %-*s%s%s\n", width, Text(s, "TrainingJobName").c_str(),
                    Text(s, "TrainingJobStatus").c_str(), obj.c_str(), def_width,
                    def_width ? Text(s, "TrainingJobDefinitionName").c_str() : "", def_width ? " " : "",
                    lines[0].c_str());
        for (size_t i = 1; i < lines.size(); ++i) std::printf("%s%s\n", std::string(indent, ' ').c_str(), lines[i].c_str());
      }
    }
    Exit(0);
  });

  struct SearchArgs {
    std::vector<std::string> conditions;
    bool tuning_jobs = false;
    bool any = false;
    std::string sort_by;
    std::string sort_order = "Descending";
    size_t max = 100;
    std::string output = "table";
  };
  auto sa = std::make_shared<SearchArgs>();
  CLI::App* search = app.add_subcommand("search", "Find training jobs (or tuning jobs) across every tuning job, by "
                                                  "metric, hyperparameter, tag or field (SageMaker's Search)");
  search->add_option("conditions", sa->conditions,
                     "Conditions, all of which must hold (--any: one): 'Metrics.validation:auc > 0.9', "
                     "'HyperParameters.max_depth <= 4', 'Tags.team = vision', 'TrainingJobStatus in Completed,Stopped', "
                     "'FailureReason exists'. None: every one");
  search->add_flag("--tuning-jobs", sa->tuning_jobs, "Search tuning jobs instead of training jobs");
  search->add_flag("--any", sa->any, "One condition is enough (Or); by default all must hold");
  search->add_option("--sort-by", sa->sort_by,
                     "A property to sort by, e.g. Metrics.validation:auc (default LastModifiedTime)");
  search->add_option("--sort-order", sa->sort_order, "Ascending or Descending (the default)")
      ->check(CLI::IsMember({"Ascending", "Descending"}));
  // (PositiveNumber printed "Value 0 not in range 0.000000 to 1797...": 300 digits)
  search->add_option("--max", sa->max, "At most this many rows (default 100)")
      ->check(CLI::Range(size_t{1}, size_t{999999999}));
  search->add_option("-o,--output", sa->output, "table, json (Search's Results), or names (one per line); default table")
      ->check(CLI::IsMember({"table", "json", "names"}));
  auto search_origin = add_origin(search);
  search->footer(
      "Examples:\n"
      "  hpo search 'Metrics.validation:auc > 0.98' 'HyperParameters.max_depth <= 4' --sort-by Metrics.validation:auc\n"
      "  hpo search 'TrainingJobStatus = Failed' 'FailureReason ~ OutOfMemory' -o names\n"
      "  hpo search --tuning-jobs 'HyperParameterTuningJobConfig.Strategy = Bayesian'\n"
      "  hpo search 'Tags.team = vision' --state-dir hpo-runs/quickstart-20261130-084248\n"
      "The table shows each property a condition or --sort-by names. The same search through the AWS CLI:\n"
      "  aws sagemaker search --resource TrainingJob --search-expression '{\"Filters\": [...]}' --endpoint-url URL");
  search->callback([search_origin, sa] {
    const char* resource = sa->tuning_jobs ? "HyperParameterTuningJob" : "TrainingJob";
    Json req = {{"Resource", resource}, {"SortOrder", sa->sort_order}, {"MaxResults", std::min<size_t>(sa->max, 100)}};
    if (!sa->sort_by.empty()) req["SortBy"] = sa->sort_by;
    std::vector<std::string> columns;  // what the conditions and the sort name, once each
    auto column = [&](const std::string& name) {
      static const std::set<std::string> shown = {"TrainingJobName", "TrainingJobStatus", "HyperParameterTuningJobName",
                                                  "HyperParameterTuningJobStatus"};
      if (!shown.count(name) && std::find(columns.begin(), columns.end(), name) == columns.end()) {
        columns.push_back(name);
      }
    };
    if (!sa->conditions.empty()) {
      Json filters = Json::array();
      for (const std::string& c : sa->conditions) {
        filters.push_back(SearchCondition(c));
        column(filters.back()["Name"].get<std::string>());
      }
      req["SearchExpression"] = {{"Filters", filters}, {"Operator", sa->any ? "Or" : "And"}};
    }
    if (!sa->sort_by.empty()) column(sa->sort_by);
    Json all = Json::array();
    long long total = -1;
    for (;;) {
      Json page = Must(search_origin->source().Action("Search", req), search_origin->flags());
      if (const Json& hits = Field(Field(page, "TotalHits"), "Value"); hits.is_number_integer()) total = hits.get<long long>();
      for (const auto& r : Items(page, "Results", search_origin->where())) {
        if (all.size() < sa->max) all.push_back(Field(r, resource));
      }
      if (all.size() >= sa->max || !NextPage(page, &req, search_origin->where())) break;
    }
    const char* name_key = sa->tuning_jobs ? "HyperParameterTuningJobName" : "TrainingJobName";
    const coordinator::SearchResource kind = sa->tuning_jobs ? coordinator::SearchResource::kHyperParameterTuningJob
                                                             : coordinator::SearchResource::kTrainingJob;
    std::map<std::string, std::optional<coordinator::SearchProperty>> parsed;  // each column's property, once
    auto cell = [&](const Json& r, const std::string& name) {
      auto it = parsed.find(name);
      if (it == parsed.end()) {
        auto p = coordinator::SearchProperty::Parse(name, kind, name);
        it = parsed.emplace(name, p.ok() ? std::optional(std::move(p).value()) : std::nullopt).first;
      }
      return SearchColumn(r, it->second);
    };
    if (sa->output == "json") {
      Json results = Json::array();
      for (const Json& r : all) results.push_back({{resource, r}});
      std::cout << Json{{"Results", results}, {"TotalHits", total}}.dump(2) << "\n";
    } else if (sa->output == "names") {
      for (const Json& r : all) std::cout << Text(r, name_key) << "\n";
    } else if (all.empty()) {
      std::cerr << "nothing matched\n";
    } else {
      std::vector<std::vector<std::string>> rows;
      std::vector<std::string> head;
      if (sa->tuning_jobs) {
        head = {"TUNING JOB", "STATUS", "STRATEGY", "BEST OBJECTIVE", "BEST TRAINING JOB"};
      } else {
        head = {"TRAINING JOB", "STATUS", "OBJECTIVE"};
      }
      for (const std::string& c : columns) head.push_back(c);
      rows.push_back(head);
      for (const Json& r : all) {
        std::vector<std::string> row;
        if (sa->tuning_jobs) {
          row = {Text(r, name_key), Text(r, "HyperParameterTuningJobStatus"),
                 cell(r, "HyperParameterTuningJobConfig.Strategy"),
                 cell(r, "BestTrainingJob.FinalHyperParameterTuningJobObjectiveMetric.Value"),
                 cell(r, "BestTrainingJob.TrainingJobName")};
        } else {
          // The objective: the metric its tuning job tunes (_tuning_objective_metric).
          const std::string objective = cell(r, "HyperParameters._tuning_objective_metric");
          row = {Text(r, name_key), Text(r, "TrainingJobStatus"),
                 objective == "-" ? "-" : cell(r, "Metrics." + objective)};
        }
        for (const std::string& c : columns) row.push_back(cell(r, c));
        rows.push_back(std::move(row));
      }
      for (const std::string& line : AlignedRows(rows)) std::cout << line << "\n";
    }
    if (sa->output != "json" && total > static_cast<long long>(all.size())) {  // json has TotalHits
      std::cerr << all.size() << " of " << total << " shown; --max " << total << " shows them all\n";
    }
    Exit(0);
  });

  struct CompareArgs {
    std::vector<std::string> what;
    size_t budget = 0;
    std::string output = "table";
    bool no_plot = false;
  };
  auto ca = std::make_shared<CompareArgs>();
  CLI::App* compare =
      app.add_subcommand("compare", "Compare tuning jobs on the same number of training jobs: best, when, how fast");
  compare->add_option("jobs", ca->what,
                      "Tuning job names (on the coordinator, or in --state-dir), or state directories (each "
                      "hpo run's: every job in it)")
      ->required();
  compare->add_option("--budget", ca->budget,
                      "Judge each job by its first N training jobs (default: the fewest any of them created)")
      ->check(CLI::Range(size_t{1}, size_t{999999999}));
  compare->add_option("-o,--output", ca->output, "table (with a plot of the best so far) or json; default table")
      ->check(CLI::IsMember({"table", "json"}));
  compare->add_flag("--no-plot", ca->no_plot, "The table only");
  auto compare_origin = add_origin(compare);
  compare->footer(
      "Strategies, seeds or settings side by side: each job's best objective, the best among its\n"
      "first N training jobs (N the fewest any of them created, so each is judged on as many\n"
      "evaluations; --budget sets it), which training job found the best and how long after the\n"
      "job's start, and a plot of the best so far by training job. '*' marks the best of a column.\n\n"
      "Examples:\n"
      "  hpo compare bayes-1 random-1                          # two jobs of the coordinator\n"
      "  hpo compare hpo-runs/quickstart-20261130-*            # every hpo run of quickstart\n"
      "  hpo compare bayes-1 random-1 --budget 50 -o json      # at 50 training jobs, for a script");
  compare->callback([compare_origin, ca] {
    std::vector<std::unique_ptr<LocalState>> dirs;
    std::vector<coordinator::dashboard::CompareJob> jobs;
    for (const std::string& arg : ca->what) {
      std::error_code ec;
      if (fs::is_directory(arg, ec)) {  // a state directory: every tuning job in it
        auto opened = LocalState::Open(arg);
        if (!opened.ok()) {
          // Named as given: no --state-dir was ("--state-dir empty: no hpo.db there" for `hpo compare empty`).
          std::string said = opened.status().message();
          if (said.rfind("--state-dir ", 0) == 0) said = "the directory " + said.substr(12);
          Fail(opened.status().code() == StatusCode::kInvalidArgument ? 2 : 3, said);
        }
        dirs.push_back(std::move(opened).value());
        coordinator::dashboard::Source& src = dirs.back()->source();
        std::vector<std::string> names;
        Json req = {{"MaxResults", 100}, {"SortBy", "CreationTime"}, {"SortOrder", "Ascending"}};
        for (;;) {
          Json page = Must(src.Action("ListHyperParameterTuningJobs", req));
          for (const auto& j : Items(page, "HyperParameterTuningJobSummaries", arg)) {
            names.push_back(Text(j, "HyperParameterTuningJobName"));
          }
          if (!NextPage(page, &req, arg)) break;
        }
        if (names.empty()) Fail(2, arg + " holds no tuning job");
        std::string base = fs::path(arg).lexically_normal().filename().string();
        if (base.empty() || base == ".") base = fs::path(arg).lexically_normal().parent_path().filename().string();
        for (const std::string& n : names) {
          jobs.push_back({&src, n, names.size() == 1 ? base : base + "/" + n});
        }
        continue;
      }
      if (arg.find('/') != std::string::npos) Fail(2, "no state directory " + arg + " (" + ec.message() + ")");
      if (arg.size() > 32 || !proto::IsHyphenatedName(arg)) {
        Fail(2, "\"" + arg + "\" is neither a state directory nor a tuning job name (1-32 letters, digits and hyphens)");
      }
      jobs.push_back({&compare_origin->source(), arg, arg});
    }
    const double now_s =
        std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch()).count();
    Json cmp = Must(coordinator::dashboard::Compare(jobs, ca->budget, now_s), compare_origin->flags());
    if (ca->output == "json") {
      std::cout << cmp.dump(2) << "\n";
      Exit(0);
    }
    std::cout << CompareTable(cmp);
    if (!ca->no_plot) std::cout << CompareChart(cmp, 64, 14);
    Exit(0);
  });

  struct EventsArgs {
    std::string job;
    std::string state_dir;
    std::vector<std::string> kinds;
    bool follow = false;
    std::string output = "table";
  };
  auto ea = std::make_shared<EventsArgs>();
  CLI::App* events = app.add_subcommand("events", "Print the history of a tuning job, or of the whole coordinator");
  events->add_option("job", ea->job, "Tuning job name (default: every job's events and the coordinator's own)");
  events->add_option("--state-dir", ea->state_dir,
                     "Read a state directory instead of asking a coordinator (one that hpo run or hpo coordinator "
                     "wrote; it may be in use)");
  events->add_option("--kind", ea->kinds, "Only events of this kind (repeatable), e.g. EarlyStopped");
  events->add_flag("-f,--follow", ea->follow,
                   "Keep printing new events until the tuning job ends (without a job: until interrupted)");
  events->add_option("-o,--output", ea->output, "table or json (one object per line); default table")
      ->check(CLI::IsMember({"table", "json"}));
  add_url(events);
  events->get_option("--state-dir")->excludes(events->get_option("--coordinator"));
  events->footer(
      "What happened and why, oldest first: the job created (and what Autotune chose), each\n"
      "training job stopped early with the rule's reason, each model suggestion with its cost and\n"
      "any fallback, infrastructure errors and retries, workers lost, completion criteria met.\n\n"
      "Examples:\n  hpo events my-job --kind EarlyStopped\n  hpo events my-job -f\n"
      "  hpo events quickstart --state-dir hpo-runs/quickstart-20261130-084248   # after hpo run");
  events->callback([url, ea] {
    const bool name_ok = ea->job.size() <= 32 && std::all_of(ea->job.begin(), ea->job.end(), [](char c) {
                           return std::isalnum(static_cast<unsigned char>(c)) || c == '-';
                         });
    if (!name_ok) Fail(2, "\"" + ea->job + "\" is not a tuning job name (1-32 letters, digits and hyphens)");
    const std::set<std::string> kinds(ea->kinds.begin(), ea->kinds.end());
    bool header = false;
    size_t printed = 0;
    // Events come page by page (and -f goes on): the column fits the longest name there can be, a
    // tuning job's 32 characters, or this job's training jobs' (its name + "-NNNNN-xxxxxxxx" at
    // most: 46 for every job put MESSAGE at column 95, past an 80-column terminal).
    const int who_width = ea->job.empty() ? 32 : static_cast<int>(ea->job.size()) + 15;
    std::set<std::string> seen_kinds;  // to name them when --kind matches none
    auto print = [&](const Json& e) {
      seen_kinds.insert(e["kind"].get<std::string>());
      if (!kinds.empty() && !kinds.count(e["kind"].get<std::string>())) return;
      ++printed;
      if (ea->output == "json") {
        std::cout << e.dump() << "\n";
        return;
      }
      const auto ms = static_cast<int64_t>(std::llround(e["time"].get<double>() * 1000));
      std::time_t secs = static_cast<std::time_t>(ms / 1000);
      std::tm tm{};
      gmtime_r(&secs, &tm);
      char when[40];
      std::strftime(when, sizeof when, "%Y-%m-%d %H:%M:%S", &tm);
      std::snprintf(when + std::strlen(when), sizeof when - std::strlen(when), ".%03d", static_cast<int>(ms % 1000));
      const std::string who = ea->job.empty() ? e["job"].get<std::string>() : e["trial"].get<std::string>();
      if (!header) {
        std::printf("%-23s  %-20s %-*s %s\n", "TIME (UTC)", "KIND", who_width,
                    ea->job.empty() ? "TUNING JOB" : "TRAINING JOB", "MESSAGE");
        header = true;
      }
      std::string message = e["message"].get<std::string>();
      if (ea->job.empty() && !e["trial"].get<std::string>().empty()) message = e["trial"].get<std::string>() + ": " + message;
      // One line each: a newline in a message (a training image named with one) split the table
      // (a security pass); TrainingJobWithdrawn ran into the next column (a notify pass).
      std::printf("%-23s  %-20s %-*s %s\n", when, e["kind"].get<std::string>().c_str(), who_width, who.c_str(),
                  OneLogLine(message).c_str());
    };
    // One page of events after the cursor: from the state directory's store, or the coordinator.
    std::function<Result<Json>(int64_t)> page;
    std::unique_ptr<coordinator::SqliteJobStore> store;
    if (!ea->state_dir.empty()) {
      const std::string db = ea->state_dir + "/hpo.db";
      if (!fs::exists(db)) Fail(2, "--state-dir " + ea->state_dir + ": no hpo.db there (hpo run prints its state directory)");
      auto opened = coordinator::SqliteJobStore::OpenReadOnly(db);
      if (!opened.ok()) Fail(3, opened.status().message());
      store = std::move(opened).value();
      page = [&store, ea, db](int64_t after) -> Result<Json> {  // db by value: the lambda outlives this block
        auto rows = store->LoadEvents(ea->job, after, 5000);
        if (!rows.ok()) Fail(3, rows.status().message());
        if (after == 0 && rows->empty() && !ea->job.empty()) {
          Fail(1, "ResourceNotFound: no events of a tuning job named " + ea->job + " in " + db);
        }
        Json events = Json::array();
        for (const auto& r : *rows) {
          events.push_back({{"id", r.id}, {"time", static_cast<double>(r.ts_ms) / 1000.0}, {"kind", r.kind},
                            {"job", r.job}, {"trial", r.trial}, {"message", r.message}});
        }
        return events;
      };
    } else {
      // Request's errors, exit codes and checks; nothing answering is left to the loop (-f waits).
      page = [ea, at = CoordinatorAt(*url)](int64_t after) -> Result<Json> {
        std::string target = "/hpo/v1/events?after=" + std::to_string(after) + "&limit=5000";
        if (!ea->job.empty()) target += "&job=" + ea->job;
        auto got = GetUnlessAway(at, target);
        if (!got.ok()) return got.status();
        return Items(*got, "events", at.who + " at " + at.url);
      };
    }
    // A job's history ends with the event of its end (-f stops there); without a job, -f goes
    // on until interrupted.
    auto ends = [](const std::string& kind) {
      return kind == "JobCompleted" || kind == "JobFailed" || kind == "JobStopped" || kind == "JobDeleted";
    };
    int64_t after = 0;
    bool ended = false;
    // Event ids are the store's: a restarted coordinator goes on from the same cursor.
    AwayWaiter away(ea->job.empty() ? "following the coordinator's events" : "following " + ea->job + "'s events");
    for (;;) {
      Result<Json> got = page(after);
      if (!got.ok()) {
        if (ea->follow && away.Wait(got.status())) continue;
        Fail(3, got.status().message());
      }
      away.Answered();
      const Json events = std::move(got).value();
      for (const auto& e : events) {
        const bool whole = Field(e, "id").is_number_integer() && Field(e, "time").is_number() &&
                           Field(e, "kind").is_string() && Field(e, "job").is_string() && Field(e, "trial").is_string() &&
                           Field(e, "message").is_string();
        if (!whole) FailUnexpected(ea->state_dir.empty() ? "the coordinator at " + *url : ea->state_dir, "an event " + e.dump());
        after = std::max(after, e["id"].get<int64_t>());
        ended = ended || (!ea->job.empty() && ends(e["kind"].get<std::string>()));
        print(e);
      }
      std::cout.flush();
      if (!events.empty()) continue;
      if (!ea->follow || ended) break;
      std::this_thread::sleep_for(std::chrono::milliseconds(500));
    }
    if (printed == 0 && !kinds.empty() && !seen_kinds.empty()) {
      std::string have;
      for (const auto& k : seen_kinds) have += (have.empty() ? "" : ", ") + k;
      std::cerr << "hpo: no events of the kind(s) asked for; this history has: " << have << "\n";
    }
    Exit(0);
  });

  struct LogsArgs {
    std::string trial;
    bool follow = false;
  };
  auto la = std::make_shared<LogsArgs>();
  CLI::App* logs = app.add_subcommand("logs", "Print a training job's output (stdout and stderr)");
  logs->add_option("training_job", la->trial, "Training job name, e.g. my-job-003-1a2b3c4d")->required();
  logs->add_flag("-f,--follow", la->follow, "Keep printing new lines until the training job ends");
  auto logs_origin = add_origin(logs);
  logs->footer(
      "Examples:\n  hpo logs $(hpo trials my-job -o json | jq -r '.TrainingJobSummaries[0].TrainingJobName') -f\n"
      "  hpo logs quickstart-001-1a2b3c4d --state-dir hpo-runs/quickstart-20261130-084248   # after hpo run");
  logs->callback([logs_origin, la] {
    Origin& origin = *logs_origin;
    int64_t after = 0;
    uint32_t attempt = 0;
    std::map<std::string, int64_t> last_line;  // of each host of the attempt being printed ("" for one host)
    // The cursor is the store's line id: a restarted coordinator goes on from it.
    AwayWaiter away("following " + la->trial + "'s output");
    for (;;) {
      auto got = origin.source().Logs(la->trial, after, 5000);
      if (!got.ok() && la->follow && !origin.local() && away.Wait(got.status())) continue;
      if (got.ok()) away.Answered();
      if (!got.ok() && got.status().code() == StatusCode::kNotFound && after == 0 &&
          origin.source().Action("DescribeHyperParameterTuningJob", {{"HyperParameterTuningJobName", la->trial}}).ok()) {
        Fail(1, "ResourceNotFound: " + la->trial + " is a tuning job; hpo logs takes one of its training jobs (hpo trials " +
                    la->trial + (origin.local() ? " --state-dir " + origin.state_dir : "") + " lists them)");
      }
      const Json j = Must(std::move(got), origin.flags());
      if (!Field(j, "next").is_number_integer()) FailUnexpected(origin.where(), "a page of log lines without next");
      for (const auto& l : Items(j, "lines", origin.where())) {
        if (!Field(l, "attempt").is_number_unsigned() || !Field(l, "text").is_string()) {
          FailUnexpected(origin.where(), "a log line " + l.dump());
        }
        uint32_t a = l["attempt"].get<uint32_t>();
        if (a != attempt) {
          if (attempt != 0 || a > 1) std::cout << "---- attempt " << a << " ----\n";
          attempt = a;
          last_line.clear();
        }
        // A multi-host training job's lines name their host, as SageMaker's log streams do.
        const std::string host = l.value("host", "");
        const std::string tag = host.empty() ? "" : "[" + host + "] ";
        auto seen = last_line.try_emplace(host, -1).first;
        const int64_t line = l.value("line", seen->second + 1);
        if (line > seen->second + 1 && seen->second >= 0) {
          // The coordinator keeps an attempt's first and last lines (CoordinatorCore::kLogHeadLines).
          std::cout << tag << "---- " << (line - seen->second - 1)
                    << " lines not kept by the coordinator (it keeps the first "
                    << coordinator::CoordinatorCore::kLogHeadLines << " and the last "
                    << coordinator::CoordinatorCore::kLogTailLines << " of an attempt" << (host.empty() ? "" : "'s host")
                    << "; the worker's trial.log has them all) ----\n";
        }
        seen->second = std::max(seen->second, line);
        std::cout << tag << l["text"].get<std::string>() << "\n";
      }
      std::cout.flush();
      bool more = !Items(j, "lines", origin.where()).empty();
      if (more && j["next"].get<int64_t>() <= after) FailUnexpected(origin.where(), "a page of log lines that does not move on");
      after = j["next"].get<int64_t>();
      std::string st = Text(j, "TrainingJobStatus");
      bool ended = TrainingJobEnded(st);
      if (!more && (!la->follow || ended)) break;
      if (!more) {
        std::this_thread::sleep_for(std::chrono::milliseconds(500));
        origin.Refresh();  // a state directory in use: read the training job's status afresh
      }
    }
    Exit(0);
  });

  auto snames = std::make_shared<std::vector<std::string>>();
  auto sname = std::make_shared<std::string>();
  auto stop_training = std::make_shared<bool>(false);
  CLI::App* stop = app.add_subcommand("stop", "Stop tuning jobs, or one of their training jobs (SIGTERM and a grace period)");
  stop->add_option("names", *snames,
                   "Tuning job names (several are stopped at once; none: nothing to do, exit 0); a training "
                   "job's with --training-job");
  stop->add_flag("--training-job", *stop_training,
                 "NAME is a training job: stop only it (SageMaker's StopTrainingJob); it ends Stopped, is not "
                 "retried, its last objective counts, and the tuning job goes on");
  add_url(stop);
  auto stop_dir = std::make_shared<std::string>();
  stop->add_option("--state-dir", *stop_dir,
                   "Stop it in the hpo run that keeps its state in DIR (hpo run prints it), from another terminal")
      ->excludes(stop->get_option("--coordinator"));
  stop->footer(
      "Examples:\n  hpo stop my-job\n  hpo stop $(hpo list --status InProgress -o names)   # all at once\n"
      "  hpo stop --training-job my-job-007-1a2b3c4d   # a runaway one\n"
      "  hpo stop --training-job my-job-007-1a2b3c4d --state-dir hpo-runs/my-job-20261202-050101   # in an hpo run");
  stop->callback([url, snames, sname, stop_training, stop_dir] {
    const bool tj = *stop_training;
    if (snames->empty()) {  // `hpo stop $(hpo list --status InProgress -o names)` with nothing listed
      if (tj) Fail(2, "--training-job needs the training job's name");
      std::cerr << "hpo stop: no names given: nothing stopped\n";
      Exit(0);
    }
    if (tj && snames->size() > 1) Fail(2, "--training-job stops one training job; give one name");
    if (snames->size() > 1) {
      // In one request: stopped one at a time, each stop's freed slots went to the next job
      // named, which started a training job just before its own stop came.
      const Endpoint at = stop_dir->empty() ? CoordinatorAt(*url) : RunOf(*stop_dir);
      Json names = Json::array();
      for (const auto& n : *snames) names.push_back(n);
      const Json r = Request(at, "POST", "/hpo/v1/jobs/stop", {{"Names", names}});
      int code = 0;
      for (const auto& j : Items(r, "Jobs", at.who + " at " + at.url)) {
        const std::string name = Text(j, "Name"), status = Text(j, "Status"), type = Text(j, "__type");
        if (!type.empty()) {
          std::cerr << "hpo: " << name << ": " << type << ": " << Text(j, "message") << "\n";
          code = std::max(code, type == "ValidationException" ? 2 : 1);
        } else if (TuningJobEnded(status)) {
          std::cout << name << " has already ended (" << status << "); nothing to stop\n";
        } else {
          std::cout << "stopping " << name << "\n";
        }
      }
      Exit(code);
    }
    *sname = snames->front();
    // The same steps for a tuning job and a training job, with their actions and fields.
    const std::string describe = tj ? "DescribeTrainingJob" : "DescribeHyperParameterTuningJob";
    const std::string key = tj ? "TrainingJobName" : "HyperParameterTuningJobName";
    const std::string status_key = tj ? "TrainingJobStatus" : "HyperParameterTuningJobStatus";
    // One that has ended is left as it is (SageMaker's stop of a tuning job is idempotent; its
    // StopTrainingJob refuses an ended one): say so, rather than "stopping" what will not change.
    auto exit_if_ended = [&](const Json& d) {
      const std::string status = d.value(status_key, std::string());
      if (tj ? TrainingJobEnded(status) : TuningJobEnded(status)) {
        std::cout << *sname << " has already ended (" << status << "); nothing to stop\n";
        Exit(0);
      }
    };
    if (!stop_dir->empty() && !fs::exists(RunControlPath(*stop_dir)) && fs::exists(fs::path(*stop_dir) / "hpo.db")) {
      // No hpo run serves the directory: what has ended there needs no stop, as with a
      // coordinator; anything else is said by RunOf.
      Origin origin(std::make_shared<std::string>());
      origin.state_dir = *stop_dir;
      exit_if_ended(Must(origin.source().Action(describe, {{key, *sname}}), origin.flags()));
    }
    const Endpoint at = stop_dir->empty() ? CoordinatorAt(*url) : RunOf(*stop_dir);
    exit_if_ended(Call(at, describe, {{key, *sname}}));
    Call(at, tj ? "StopTrainingJob" : "StopHyperParameterTuningJob", {{key, *sname}});
    std::cout << "stopping " << *sname << "\n";
    Exit(0);
  });

  struct DeleteArgs {
    std::vector<std::string> names;
    bool stop = false;
    int timeout_s = 600;
  };
  auto dl = std::make_shared<DeleteArgs>();
  CLI::App* del = app.add_subcommand(
      "delete", "Delete tuning jobs' records (their output stays); --stop ends a running one first");
  del->add_option("names", dl->names, "Tuning job names (none: nothing to do, exit 0)");
  del->add_flag("--stop", dl->stop,
                "Stop a job that has not ended, wait for it to end, then delete it (as deleting an\n"
                "in-progress HyperParameterTuningJob resource does in Kubernetes)");
  del->add_option("--timeout", dl->timeout_s,
                  "With --stop: seconds to wait for a job to end (default 600; its training jobs have\n"
                  "the coordinator's --grace, 120 s by default as on SageMaker, to stop)")
      ->check(CLI::Range(1, 86400));
  add_url(del);
  del->footer(
      "SageMaker's DeleteHyperParameterTuningJob: the job, its training jobs' records, metrics and\n"
      "logs leave the coordinator; what they wrote to S3OutputPath stays, and the name is free\n"
      "again. Only a Completed, Stopped or Failed job can be deleted, and not one that is another\n"
      "job's warm-start parent (delete that job first, whether it runs or has ended). With --stop, a job still running is stopped first and deleted once it\n"
      "has ended (its running training jobs are stopped, their partial results kept as for hpo stop);\n"
      "a coordinator that restarts meanwhile is waited for, within --timeout.\n\n"
      "Each name is tried in turn; one refused does not stop the others, and the exit code is\n"
      "then that of the refusal (2 for a job that has not ended, or with --stop has not ended\n"
      "within --timeout).\n\n"
      "Examples:\n  hpo delete sweep-3\n  hpo delete --stop sweep-4          # running: stop, wait, delete\n"
      "  hpo delete $(hpo list --status Completed -o names)\n"
      "(with no names, as when that list is empty, it deletes nothing and exits 0)");
  del->callback([url, dl] {
    if (dl->names.empty()) {  // `hpo delete $(hpo list ... -o names)` with nothing listed
      std::cerr << "hpo delete: no names given: nothing deleted\n";
      Exit(0);
    }
    const Endpoint at = CoordinatorAt(*url);
    // Stops `n` if it is running and waits until it has ended; false (said why) when it has not
    // ended within the timeout.
    auto stop_and_wait = [&](const std::string& n) {
      const Json key = {{"HyperParameterTuningJobName", n}};
      Json d = Call(at, "DescribeHyperParameterTuningJob", key);
      std::string status = Text(d, "HyperParameterTuningJobStatus");
      if (TuningJobEnded(status)) return true;
      if (status == "InProgress") Call(at, "StopHyperParameterTuningJob", key);
      const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(dl->timeout_s);
      long long said = -1;
      // A coordinator that restarts while the job stops is waited for (within the timeout): the
      // stop is in its state, and it goes on after the restart.
      AwayWaiter away("waiting for " + n + " to stop");
      away.Answered();
      while (true) {
        Result<Json> described = CallUnlessAway(at, "DescribeHyperParameterTuningJob", key);
        if (!described.ok()) {
          if (!away.Wait(described.status())) Fail(3, described.status().message());
          if (std::chrono::steady_clock::now() < deadline) continue;
          std::cerr << "hpo delete: " << n << " not deleted: the coordinator has not answered again within "
                    << dl->timeout_s << " s (hpo delete --stop " << n << " once it answers)\n";
          return false;
        }
        away.Answered();
        d = std::move(described).value();
        status = Text(d, "HyperParameterTuningJobStatus");
        if (TuningJobEnded(status)) return true;
        const Json& c = Field(d, "TrainingJobStatusCounters");
        const long long running = Field(c, "InProgress").is_number_integer() ? Field(c, "InProgress").get<long long>() : 0;
        if (running != said) {
          std::cerr << "stopping " << n << ": " << running << " training job" << (running == 1 ? "" : "s")
                    << " still running\n";
          said = running;
        }
        if (std::chrono::steady_clock::now() >= deadline) {
          std::cerr << "hpo delete: " << n << " is still " << status << " after " << dl->timeout_s
                    << " s; not deleted (hpo describe " << n << " shows what runs; hpo delete --stop " << n
                    << " --timeout SECONDS waits longer)\n";
          return false;
        }
        std::this_thread::sleep_for(std::chrono::milliseconds(500));
      }
    };
    int code = 0;
    for (const std::string& n : dl->names) {
      try {
        if (dl->stop && !stop_and_wait(n)) {
          code = std::max(code, 2);
          continue;
        }
        Call(at, "DeleteHyperParameterTuningJob", {{"HyperParameterTuningJobName", n}});
        std::cout << "deleted " << n << "\n";
      } catch (const CLI::RuntimeError& e) {  // Call has printed why
        if (e.get_exit_code() == 3) throw;     // no coordinator: the rest would fail the same way
        code = std::max(code, e.get_exit_code());
      }
    }
    Exit(code);
  });

  struct DashboardArgs {
    std::string listen = "127.0.0.1:7790";
    int refresh_s = 5;
  };
  auto da = std::make_shared<DashboardArgs>();
  CLI::App* dash = app.add_subcommand("dashboard", "Serve the web dashboard of a coordinator on this machine");
  auto dash_origin = add_origin(dash);
  dash->add_option("--listen", da->listen, "HOST:PORT to serve the pages on (default 127.0.0.1:7790; port 0 picks one)");
  dash->add_option("--refresh", da->refresh_s, "Seconds between reloads of a running job's pages (0: never; default 5)")
      ->check(CLI::Range(0, 3600));
  dash->footer(
      "A coordinator serves its dashboard itself at http://HOST:7780/ui/ when it answers unsigned\n"
      "requests (its default, on 127.0.0.1). One that requires AWS Signature V4 (any other address,\n"
      "or one with --credentials)\n"
      "cannot be read by a browser: this command serves the same pages here, signing each request\n"
      "with your AWS credentials (as the aws CLI finds them). It only reads: lists, describes,\n"
      "events, logs. Stop it with Ctrl-C.\n\n"
      "With --state-dir it serves the pages of a state directory instead, with no coordinator\n"
      "running: the jobs of an ended hpo run, or a copy of a coordinator's directory. One in use\n"
      "is read afresh every two seconds.\n\n"
      "Examples:\n  hpo dashboard --coordinator http://gpu-head:7780\n  # then open http://127.0.0.1:7790/ui/\n"
      "  hpo dashboard --state-dir hpo-runs/quickstart-20261130-084248");
  dash->callback([dash_origin, da] {
    auto [host, port] = HostPort("--listen", da->listen, "127.0.0.1:7790");
    httplib::Server server;
    server.set_socket_options([](int sock) {  // not httplib's SO_REUSEPORT (see http_api.cc)
      int yes = 1;
      ::setsockopt(sock, SOL_SOCKET, SO_REUSEADDR, &yes, sizeof yes);
    });
    coordinator::dashboard::PageOptions po;
    po.refresh_s = da->refresh_s;
    std::shared_ptr<coordinator::dashboard::Source> source;
    if (dash_origin->local()) {
      dash_origin->source();  // a directory that cannot be read is an error now, not on the first page
      po.subtitle = "state directory " + dash_origin->state_dir;
      po.cli_flags = " --state-dir " + dash_origin->state_dir;
      source = std::make_shared<FreshLocalSource>(dash_origin->state_dir);
    } else {
      po.subtitle = "coordinator " + dash_origin->url();
      // The commands reach the default coordinator (HPO_COORDINATOR's) by themselves.
      if (dash_origin->url() != DefaultCoordinator()) po.cli_flags = " --coordinator " + dash_origin->url();
      source = std::make_shared<RemoteSource>(dash_origin->url());
    }
    // A web page's request, or one to a name rebound to loopback, is refused as the coordinator
    // refuses it: these pages are read with the user's credentials.
    const auto answers = coordinator::IsLoopbackHost(host) ? coordinator::UnsignedAnswers::kLoopback
                                                            : coordinator::UnsignedAnswers::kNetwork;
    auto ui = [source, po, answers, names = coordinator::MachineNames()](const httplib::Request& req,
                                                                          httplib::Response& res) {
      const std::string refused = coordinator::BrowserRequestRefusal(
          req.get_header_value("Host"), req.get_header_value("Origin"), answers, names);
      if (!refused.empty()) {
        res.status = 403;
        res.set_content(refused + "\n", "text/plain; charset=utf-8");
        return;
      }
      const std::map<std::string, std::string> query = coordinator::dashboard::QueryParameters(req.params);
      coordinator::dashboard::Page page = coordinator::dashboard::Render(*source, req.path, query, po);
      res.status = page.status;
      if (!page.location.empty()) res.set_header("Location", page.location);
      res.set_content(page.body, page.content_type.c_str());
    };
    server.Get("/", ui);
    server.Get("/ui", ui);
    server.Get(R"(/ui/.*)", ui);
    int bound = port == 0 ? server.bind_to_any_port(host) : (server.bind_to_port(host, port) ? port : -1);
    if (bound < 0) {
      Fail(3, "cannot listen on " + da->listen + " (in use, or not an address of this machine); pick another with --listen");
    }
    if (answers == coordinator::UnsignedAnswers::kNetwork) {
      std::cerr << "hpo: warning: serving on " << host << ": whoever reaches it reads "
                << (dash_origin->local() ? "these jobs" : "this coordinator's jobs with your credentials") << "\n";
    }
    std::cout << "hpo: dashboard of " << (dash_origin->local() ? dash_origin->state_dir : dash_origin->url())
              << " at http://" << (host == "0.0.0.0" ? "127.0.0.1" : UrlHost(host)) << ":" << bound
              << "/ui/ (Ctrl-C to stop)" << std::endl;
    std::signal(SIGPIPE, SIG_IGN);  // a browser that goes away mid-page is not our end
    if (!server.listen_after_bind()) Fail(3, "the dashboard's server stopped: cannot accept connections on " + da->listen);
    Exit(0);
  });
}

}  // namespace hpo::cli
