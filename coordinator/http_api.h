// coordinator/http_api.h: the coordinator's HTTP API, which is SageMaker's own API.
//
// Protocol: AWS JSON 1.1, as the SageMaker service speaks it: `POST /` with the header
// `X-Amz-Target: SageMaker.<Action>` and a JSON body, answered with
// `Content-Type: application/x-amz-json-1.1`. So `aws sagemaker ... --endpoint-url URL` and boto3
// with `endpoint_url` work unchanged against a coordinator. Actions:
//   CreateHyperParameterTuningJob, DescribeHyperParameterTuningJob, ListHyperParameterTuningJobs,
//   ListTrainingJobsForHyperParameterTuningJob, StopHyperParameterTuningJob,
//   DeleteHyperParameterTuningJob (an ended job only; CoordinatorCore::Delete), DescribeTrainingJob,
//   StopTrainingJob (one training job of a tuning job; CoordinatorCore::StopTrainingJob).
// The training jobs' output and metrics are served too, as CloudWatch Logs' actions
// (`X-Amz-Target: Logs_20140328.<Action>`, coordinator/cloudwatch_logs.h; signatures scoped to
// `logs`) and CloudWatch's (`GraniteServiceVersion20100801.<Action>`, AWS JSON 1.0,
// coordinator/cloudwatch_metrics.h; scoped to `monitoring`).
// Errors are AWS JSON errors: status 400 with `{"__type": "ValidationException", "message": ...}`
// (ResourceNotFound, ResourceInUse, ResourceLimitExceeded likewise); a body that is not JSON, or a
// member of the wrong JSON type (a string for MaxResults), is `SerializationException` naming it,
// before any rule is checked, as SageMaker's deserializer answers; an unknown action is
// `UnknownOperationException`.
//
// What SageMaker has no action for lives under /hpo/v1/:
//   POST /hpo/v1/jobs          a spec in either spelling (CRD YAML/JSON or SageMaker JSON)
//   GET  /hpo/v1/jobs/NAME     the CRD document with its status block
//   GET  /hpo/v1/health        "ok" and counts
//   GET  /hpo/v1/workers       {"Workers": [{WorkerId, Host, State (Open, Cordoned, Draining,
//                              Resting), Reason, Slots, Running, RunningTrainingJobs [names],
//                              QueuedAhead, InstanceType, Cpus,
//                              MemoryMiB, Gpus [{Index, Name, MemoryMiB, InUse}], Spot, Labels,
//                              LastHeardSecondsAgo, ...}]}; a cordoned id not registered now is
//                              listed with "Registered": false
//   POST /hpo/v1/workers/cordon    {"WorkerId": ID, "Reason": TEXT}: CoordinatorCore::Cordon
//   POST /hpo/v1/workers/uncordon  {"WorkerId": ID}: CoordinatorCore::Uncordon
//   GET  /hpo/v1/logs/TRIAL    the trial's log lines the coordinator holds (?after=N&limit=M)
//   GET  /hpo/v1/events        the coordinator's history, oldest first (?job=NAME&after=N&limit=M):
//                              {"events": [{id, time, kind, job, trial, message}], "next": N}
//   GET  /hpo/v1/curves?job=NAME[&limit=N]  the objective's values of each training job, in
//                              emission order: {"MetricName": M, "Curves": {"TRAINING-JOB": [...]}};
//                              with limit, of the best N/4 and the newest others only (their
//                              current attempts); with &trial=TRAINING-JOB, of that one only,
//                              every attempt's values one after another, and "AttemptStarts":
//                              {"TRAINING-JOB": [index where attempt 2 begins, ...]}
//
// The web dashboard (coordinator/dashboard.h) is served on GET /ui/ (GET / and /ui redirect
// there), from the same handlers in process. Where signatures are required a browser's request
// is refused like any other, with an HTML page that says to run `hpo dashboard` instead.
//
// Authentication (coordinator/sigv4.h): with HttpApiOptions::require_sigv4 every request, on
// every path, must carry a valid AWS Signature Version 4 (service `sagemaker`) made with one of
// the configured access keys; anything else is answered with the AWS error JSON (403
// MissingAuthenticationTokenException / UnrecognizedClientException / InvalidSignatureException,
// 400 IncompleteSignatureException), logged, and never reaches a handler, so it changes nothing.
// `hpo coordinator` turns this on whenever the API listens on a non-loopback address.
//
// Web pages (BrowserRequestRefusal): before the signature check, every request is refused with 403
// AccessDeniedException when it carries an Origin header naming another server than its Host (a
// page elsewhere posting a spec, which a browser sends without asking), or, where unsigned
// requests are answered, when its Host is not a loopback name or address (on loopback), or not an
// address or a name of this machine (on a network address): a page whose name was rebound to
// the server's address, which the browser lets read the answers.
//
// Threads: the server runs its own thread pool; every handler reaches the core through the
// dispatcher's WithCore (the core's mutex) and queues worker messages with Post.
#pragma once

#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "common/status.h"
#include "coordinator/dashboard.h"
#include "coordinator/dispatcher.h"
#include "coordinator/sigv4.h"

namespace hpo::coordinator {

// Handles one AWS JSON 1.1 request: `action` from X-Amz-Target (without "SageMaker."), `body`
// the request JSON. Returns the HTTP status and the response body. Pure with respect to the
// network, so tests can call it directly.
struct ApiResponse {
  int status = 200;
  std::string body;
  std::string content_type = "application/x-amz-json-1.1";
};
ApiResponse HandleSageMakerAction(Dispatcher& d, const std::string& action, const std::string& body);

// Whether `host` (a name or address; IPv6 with or without brackets; no port) can only be this
// machine: localhost, NAME.localhost, 127.0.0.0/8 or ::1.
bool IsLoopbackHost(std::string host);
// Where unsigned requests are answered: nowhere (every request is signed), on a loopback address,
// or on a network address (`hpo coordinator --http-auth off` on 0.0.0.0 or a LAN address).
enum class UnsignedAnswers { kNone, kLoopback, kNetwork };
// Why a request with these Host and Origin headers ("" when absent) must be refused as a web
// page's, or "" when it may go on:
//   - an Origin that is not the scheme and authority of Host ("null" included): browsers send
//     Origin with every POST and every cross-origin fetch; hpo, the SDKs and the aws CLI never do,
//     and the dashboard's own pages only read;
//   - kLoopback: a Host that is not IsLoopbackHost (DNS rebinding: evil.example resolved to
//     127.0.0.1 makes the server the page's own origin);
//   - kNetwork: a Host that is neither an IP address, nor IsLoopbackHost, nor one of
//     `machine_names` (this machine's names; compared ignoring case and a final dot): a page
//     whose name was rebound to this machine's address read and wrote the unsigned API (a tuning
//     job whose program ran as the workers' user).
std::string BrowserRequestRefusal(const std::string& host_header, const std::string& origin,
                                  UnsignedAnswers unsigned_answers, const std::vector<std::string>& machine_names = {});
// This machine's names for kNetwork: gethostname() and, where the resolver gives one, its
// canonical (fully qualified) name; lower case.
std::vector<std::string> MachineNames();
// The DescribeHyperParameterTuningJob response document as this API answers it: the stored job
// (proto::EncodeDescribeResponse) with what SageMaker's own answer carries beyond the request and
// the SageMaker Python SDK reads (`_tuning_objective_metric` among the static hyperparameters,
// every kind of range, a ResourceConfig beside a HyperParameterTuningResourceConfig). `hpo run
// -o json` prints the same document.
nlohmann::ordered_json DescribeAsSageMaker(const proto::DescribeTuningJobResponse& d);
// A resource's document as Search matches it and the state-change notifications carry it
// (coordinator/notifier.h): DescribeTrainingJob's answer (`training_job`) or
// DescribeHyperParameterTuningJob's, each with its `Tags` (a list of Key/Value). nullopt when
// there is no such resource (or a training job not launched yet). `definitions`, when given,
// keeps each definition's request form across calls (a Search builds thousands).
std::optional<nlohmann::ordered_json> ResourceDocument(
    CoordinatorCore& c, bool training_job, const std::string& name, int64_t now_ms,
    std::map<std::string, nlohmann::ordered_json>* definitions = nullptr);
// The bodies of GET /hpo/v1/logs/TRIAL, /hpo/v1/events and /hpo/v1/curves (JSON; errors as above).
ApiResponse LogsPage(Dispatcher& d, const std::string& trial, int64_t after, size_t limit);
ApiResponse EventsPage(Dispatcher& d, const std::string& job, int64_t after, size_t limit, bool last = false);
// At most `limit` training jobs' curves (dashboard::BestAndNewest's; 0: every one).
ApiResponse CurvesPage(Dispatcher& d, const std::string& job, size_t limit, const std::string& trial = "");

// The dashboard's data from this coordinator's own handlers, without a network hop.
class InProcessSource : public dashboard::Source {
 public:
  explicit InProcessSource(Dispatcher& d) : d_(d) {}
  Result<dashboard::Json> Action(const std::string& action, const dashboard::Json& request) override;
  Result<dashboard::Json> Events(const std::string& job, int64_t after, size_t limit) override;
  Result<dashboard::Json> LastEvents(const std::string& job, size_t limit) override;
  Result<dashboard::Json> Logs(const std::string& trial, int64_t after, size_t limit) override;
  Result<dashboard::Json> Curves(const std::string& job, size_t limit, const std::string& trial) override;
  Result<dashboard::Json> Workers() override;
  // An ApiResponse as a Source answers: the document, or NotFound(message) for ResourceNotFound,
  // InvalidArgument("ValidationException: message"), else FailedPrecondition("Type: message").
  static Result<dashboard::Json> FromResponse(const ApiResponse& r);

 private:
  Dispatcher& d_;
};

struct HttpApiOptions {
  bool require_sigv4 = false;  // every request must be signed with one of `credentials`
  // GET /hpo/v1/metrics answered without a signature too (Prometheus cannot sign a scrape): it
  // tells job names, counts and latencies, nothing of specs or logs.
  bool public_metrics = false;
  std::shared_ptr<const sigv4::Credentials> credentials;  // required with require_sigv4
  std::string region;          // "" = a signature scoped to any region is accepted
  std::function<int64_t()> now_s;                // clock for the 15-minute window; default system
  std::function<void(const std::string&)> log;   // refused requests; default stderr
  dashboard::PageOptions dashboard;               // how the /ui/ pages look (refresh, subtitle)
};

class HttpApi {
 public:
  explicit HttpApi(Dispatcher* dispatcher, HttpApiOptions options = {});
  // Replaces the accepted access keys (for SIGHUP); thread-safe, applies to the next request.
  void SetCredentials(std::shared_ptr<const sigv4::Credentials> credentials);
  ~HttpApi();
  // Binds host:port (port 0 picks one). Errors: address in use or malformed.
  Status Bind(const std::string& host, int port);
  int port() const;
  // Serves until Stop() (blocking; run it on its own thread).
  void Serve();
  void Stop();

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace hpo::coordinator
