// coordinator/dashboard.h: the web dashboard: HTML pages with inline SVG charts of a
// coordinator's tuning jobs, drawn from the coordinator's own API.
//
// Pages (GET; everything server-rendered, no scripts, no files from elsewhere, so it works on
// an air-gapped cluster and in any browser):
//   /ui/                 the tuning jobs, newest first: status, strategy, progress, best objective
//   /ui/jobs/NAME        one tuning job: its status and limits, the best training job, charts
//                        (objective by training job with the best so far; the objective against
//                        each tuned hyperparameter; the learning curves, early stops shown; which
//                        hyperparameters mattered, coordinator/importance.h), every
//                        training job in a table (?sort=objective|number), the latest events
//   /ui/jobs/NAME/trials.csv  its training jobs as CSV (TrainingJobsCsv), for a spreadsheet or pandas
//   /ui/trials/TRAINING  one training job: status, secondary status transitions, hyperparameters,
//                        final metrics, failure reason and the last lines of its log
//   /ui/compare?jobs=A,B[&budget=N]  tuning jobs side by side (Compare): the table of hpo compare
//                        and each job's best so far on one chart; the list page's form (a
//                        checkbox per job) leads there
// A page of a job that is still running refreshes itself every PageOptions::refresh_s seconds,
// or every ten times the seconds it took to draw when that is longer (large jobs).
// Anything else under /ui is a 404 page that links back to the list.
//
// The charts are coordinator/dashboard_charts.h's (internal to this module).
//
// Data: a Source answers with the documents of the API (coordinator/http_api.h): SageMaker's
// Describe/List responses, and hpo's events, logs and curves. `hpo coordinator` serves the pages
// from an in-process Source (http_api.h's InProcessDashboardSource); `hpo dashboard` serves them
// on this machine from a Source that calls a remote coordinator with signed requests, for
// coordinators that require AWS Signature V4 (a browser cannot sign).
//
// Safety: every text from a spec, a training job or a log (names, values, failure reasons, log
// lines) is HTML-escaped; a path's job or training job name is checked against SageMaker's name
// pattern before it is used. A Source error becomes an error page naming it (status 404 when the
// job or training job does not exist, else 502), never an exception.
//
// Thread safety: Render is reentrant; the Source must be safe for the server's threads.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "common/status.h"
#include "proto/tuning_job.h"

namespace hpo::coordinator::dashboard {

using Json = nlohmann::ordered_json;

class Source {
 public:
  virtual ~Source() = default;
  // A SageMaker action (AWS JSON 1.1), e.g. "DescribeHyperParameterTuningJob", and its request;
  // returns the response document. Errors: NotFound for ResourceNotFound; InvalidArgument for
  // ValidationException; Unavailable when the coordinator cannot be reached; else
  // FailedPrecondition; every message but NotFound's starts with the error's type.
  virtual Result<Json> Action(const std::string& action, const Json& request) = 0;
  // GET /hpo/v1/events?job=JOB&after=AFTER&limit=LIMIT: {"events": [...], "next": N}.
  virtual Result<Json> Events(const std::string& job, int64_t after, size_t limit) = 0;
  // GET /hpo/v1/events?job=JOB&last=1&limit=LIMIT: the newest LIMIT events, oldest first, in the
  // same shape. This default pages through Events from the start.
  virtual Result<Json> LastEvents(const std::string& job, size_t limit);
  // GET /hpo/v1/logs/TRIAL?after=AFTER&limit=LIMIT: {"TrainingJobStatus", "lines": [...], "next"}.
  virtual Result<Json> Logs(const std::string& trial, int64_t after, size_t limit) = 0;
  // GET /hpo/v1/curves?job=JOB&limit=LIMIT[&trial=TRAINING]: {"MetricName": objective, "Curves":
  // {TRAINING: [values...]}} for at most LIMIT training jobs (BestAndNewest's; 0 or over 1,000:
  // 1,000), or for the one named `trial` when it is not empty.
  virtual Result<Json> Curves(const std::string& job, size_t limit, const std::string& trial) = 0;
  // GET /hpo/v1/workers: {"Workers": [...]}. Only a running coordinator knows its workers.
  virtual Result<Json> Workers() {
    return Status::Unavailable("only a running coordinator knows its workers; this shows a state directory");
  }
};

struct PageOptions {
  int refresh_s = 5;      // a running job's pages reload after this many seconds (0: never)
  std::string subtitle;   // under the header, e.g. which coordinator the pages show
  // Appended to the `hpo` commands the pages suggest, so that they reach what the pages show:
  // " --state-dir DIR", " --coordinator URL", or "" for the default coordinator.
  std::string cli_flags;
  size_t log_tail = 200;  // lines of a training job's log on its page
  size_t events = 50;     // latest events on a job's page
  // A job with more training jobs than these shows only some of them (BestAndNewest's), and says so.
  size_t max_points = 2000;  // on the objective and hyperparameter charts
  size_t max_curves = 200;   // learning curves
  size_t max_rows = 1000;    // rows of the training jobs table (?rows=all: every one)
};

struct Page {
  int status = 200;
  std::string content_type = "text/html; charset=utf-8";
  std::string body;
  std::string location;  // set with status 302 (GET / and /ui go to /ui/)
};

// Renders the page at `path` (starting /ui, or "/" for the redirect); `query` holds the decoded
// query parameters (QueryParameters: a repeated one, as a form's checkboxes send, joined by ',').
Page Render(Source& source, const std::string& path, const std::map<std::string, std::string>& query,
            const PageOptions& options = {});

// A request's decoded query parameters for Render: each name once, the values of a repeated one
// joined by ',' in their order (?jobs=a&jobs=b is jobs "a,b").
std::map<std::string, std::string> QueryParameters(const std::multimap<std::string, std::string>& params);
// The HTML page shown instead of the dashboard where a coordinator requires signed requests:
// what to run on one's own machine to see it (`hpo dashboard --coordinator URL`).
std::string SignedRequestsPage(const std::string& reason);

// Which of a job's training jobs a chart draws when there are more than `limit` (0: no limit):
// the best quarter of `limit` by objective (`objectives[i]` of the i-th training job in creation
// order, nullopt without one), then the newest others until there are `limit`. Returns indices,
// ascending.
std::vector<size_t> BestAndNewest(const std::vector<std::optional<double>>& objectives, bool minimize, size_t limit);

// The objective's curve of each training job of `job` (Source::Curves, at most its 1,000), for
// the importance estimate of a job that stops training jobs early (coordinator/importance.h
// ObservedTrainingJob::curve); empty where the job does not (StopsTrainingJobsEarly) or they
// cannot be read (the estimate then takes only training jobs that Completed).
std::map<std::string, std::vector<double>> ImportanceCurves(Source& source, const std::string& job,
                                                            const proto::TuningJobSpec& spec);

// Training jobs as CSV, one row each, from ListTrainingJobsForHyperParameterTuningJob's
// TrainingJobSummaries (rows in the order given): the table of the SageMaker SDK's
// HyperparameterTuningJobAnalytics(...).dataframe(), its columns in its order (as pandas unions
// the rows the SDK lists, by name: each row's tuned hyperparameters, TrainingJobName,
// TrainingJobStatus, FinalObjectiveValue, TrainingStartTime, TrainingEndTime (as pandas writes
// the SDK's UTC datetimes: 2026-12-02 05:04:01.830000+00:00), TrainingElapsedTimeSeconds (their
// difference; rows with both times), TrainingJobDefinitionName (rows that have one: several
// definitions)). RFC 4180 quoting; a text cell that a spreadsheet would run as a formula
// (starting = + - @) gets a leading '.
std::string TrainingJobsCsv(const Json& summaries);

// Text made safe for HTML element content and attribute values (& < > " ').
std::string Escape(std::string_view text);
// A duration as the pages write it: "0.4s" (under 10 s, to a tenth), "42s", "3m 07s", "2h 05m",
// "1d 03h"; "" for a negative or NaN one.
std::string Duration(double seconds);

// ---- comparing tuning jobs (hpo compare) -----------------------------------------------------
// One job to compare: where to read it, its name there, and how to show it (default: its name).
struct CompareJob {
  Source* source = nullptr;
  std::string name;
  std::string label;
};
// What each job reached, judged on the same number of training jobs, as a JSON document:
//   {"Budget": N, "BudgetFromFewest": bool, "Notes": [text...], "Jobs": [{"Label",
//    "HyperParameterTuningJobName", "Strategy", "Status", "MetricName", "Type" (Minimize or
//    Maximize), "TrainingJobs" (created), "WithObjective" (ended with a final objective), "Best",
//    "BestTrainingJob", "BestNumber" (its place among the job's training jobs, 1-based, in
//    the order they were created), "BestAtBudget" (the best among its first N), "SecondsToBest"
//    (from the job's creation to the best one's end), "Seconds" (to the job's end, or `now_s`
//    while it runs), "BestSoFar" (after each of its training jobs in that order; null before the
//    first objective), "Leads" (which of "BestAtBudget" and "Best" this job's value is the best
//    of, ties included; none when the jobs' objectives differ)}...], "Type" and "MetricName" (the
//    direction and metric every job shares; null where they differ)}
// with "Best", "BestAtBudget" and the seconds null where there is none yet. A job given twice (the
// same source and name) is compared once. N is `budget`, or with 0 the fewest training jobs any
// of the jobs created (a job with none yet is left out of that, and "BudgetSkipsEmpty" says so), so
// that each is judged on as many evaluations as the others (a job that ran more is not better
// for it). Notes say when the jobs
// optimise different metrics or directions (their values then do not compare) and when one has
// fewer training jobs than `budget`. Errors: the Source's, the job's label first.
Result<Json> Compare(const std::vector<CompareJob>& jobs, size_t budget, double now_s);

}  // namespace hpo::coordinator::dashboard
