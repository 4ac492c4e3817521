// cli/cli_util.h: what every hpo subcommand shares: how it ends (exit codes), how it reads a
// spec file, how it prints a number.
//
// Exit codes (hpo's contract, README): 0 ok, 1 the job failed or was stopped, 2 usage or
// validation error, 3 a service could not be reached or started. A command ends by throwing
// CLI::RuntimeError(code), which main() turns into the process's exit status.
#pragma once

#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>

#include <functional>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "coordinator/placement.h"
#include "proto/codec.h"
#include "proto/validate.h"

namespace hpo::cli {

[[noreturn]] void Exit(int code);
// Prints "hpo: MESSAGE" on stderr, then Exit(code).
[[noreturn]] void Fail(int code, const std::string& message);

// How the long-running commands (hpo coordinator, hpo worker) log: each line on stderr as
// "2026-12-02T08:52:39.875Z LINE" (UTC, milliseconds), written whole, so lines from several
// threads do not mix and journald, kubectl logs or a file keep when each thing happened.
std::string LogTime();
// `line` as one line of a log: newlines, carriage returns, ESC and the other control characters
// (but tab) written as \n, \r, \xNN.
std::string OneLogLine(std::string_view line);
// A timestamped line on stderr, made one line by OneLogLine.
void LogLine(const std::string& line);
std::function<void(const std::string&)> StderrLog();

// A spec file's text; "-" reads standard input (hpo convert x.yaml --to api | hpo validate -).
Result<std::string> ReadSpecText(const std::string& path);
// An error in spec file `file` as compilers write theirs, "FILE:LINE: path: message" (editors
// jump to it), or "FILE: path: message" where no line is known (JSON, a rule on the whole spec).
std::string SpecError(const std::string& file, const proto::FieldError& e);
// Reads, parses and validates a spec file (against `limits`, the quotas); every error goes to
// stderr as "FILE[:LINE]: PATH: MESSAGE" (SpecError), then exit code 2. A relative file:// training image is
// resolved against the file's directory (the current one for standard input).
proto::ParsedSpec LoadSpec(const std::string& path, const proto::ValidationLimits& limits = {});
// For each training job definition whose trainingImage is a local program (an absolute path or a
// file:// URI; a relative one taken from `spec_path`'s directory, the current one for "-") that is
// not an executable file on this machine: a sentence saying so, and that each worker must have it
// at that path. `hpo validate` notes them and `hpo submit` warns (the workers may be elsewhere);
// `hpo run`, whose workers are here, refuses.
std::vector<std::string> LocalProgramNotes(const proto::TuningJobSpec& spec, const std::string& spec_path);
// Notes on a spec's Environment entries that hpo overrides for every training job
// (worker::SetForEveryTrainingJob): they were dropped without a word (a security pass).
std::vector<std::string> ContractEnvironmentNotes(const proto::TuningJobSpec& spec);

// The quotas SageMaker has per account and an on-prem coordinator sets for itself, as options:
// --max-parallel-training-jobs, --max-training-jobs (Bayesian, Hyperband, Grid) and
// --max-training-jobs-random; defaults are SageMaker's raised quotas (100, 750, 10000).
void AddQuotaOptions(CLI::App* c, proto::ValidationLimits* limits);

// A port number written as 1-5 digits and at most 65535; nullopt for anything else ("-1", "12a",
// "99999", "").
std::optional<int> PortNumber(const std::string& digits);
// What is wrong with an http:// or https:// URL that hpo will POST to (a webhook), or "" when
// nothing is: a scheme other than those two (or not in lower case), whitespace or a
// control character anywhere, no host, a host with characters no host name or address has, or a
// port that is not 1-65535. Curl refused such URLs at every POST, and their events waited 24
// hours for a delivery that could not happen.
std::string HttpUrlProblem(const std::string& url);
// The same URL's host (an IPv6 one in its brackets) and port ("" when it gives none), or in
// `problem` what HttpUrlProblem says.
struct HttpUrlParts {
  std::string host, port, problem;
};
HttpUrlParts ParseHttpUrl(const std::string& url);
// Splits HOST:PORT (an option's value, e.g. --http 127.0.0.1:7780; an IPv6 address in brackets,
// [::1]:7780, comes back without them); exits 2 naming the option, with `example` (that
// option's default), when it is not one, or PORT is not 0-65535.
std::pair<std::string, int> HostPort(const std::string& option, const std::string& value,
                                     const std::string& example);
// A host as a URL writes it: an IPv6 address in brackets (http://[::1]:7780), others as they are.
std::string UrlHost(const std::string& host);
// Checks a ZeroMQ endpoint given to `option`: a tcp:// one needs a host and a port of 1-65535
// (`listen`: also 0 or *, any free port); exits 2 naming the option otherwise, and for a value
// without a transport (127.0.0.1:7700). Other transports (ipc://, inproc://) are left to ZeroMQ.
void CheckZmqEndpoint(const std::string& option, const std::string& endpoint, bool listen);

// --max-tuning-job-runtime SECONDS (hpo coordinator, hpo run): how long a tuning job that gives no
// ResourceLimits.MaxRuntimeInSeconds may run (CoreOptions::max_tuning_job_runtime_s); SageMaker's
// quota, 30 days, by default; 0: no limit.
void AddRuntimeQuotaOption(CLI::App* c, int64_t* seconds);

// The shipped instance catalog (coordinator/placement.h) with `catalog_file`'s entries merged over
// it (none when empty); a file that cannot be read or parsed fails with exit 2 naming it.
coordinator::InstanceCatalog LoadInstanceCatalog(const std::string& catalog_file);

// The instance types a spec may name besides SageMaker's (proto::ValidationLimits::
// known_instance_types): hpo's built-in catalog, the catalog file's (when not empty; a bad one
// fails with exit 2 naming it) and `served` (types workers are told to serve, --instance-type).
std::set<std::string> KnownInstanceTypes(const std::string& catalog_file, const std::vector<std::string>& served);

// The --image NAME=COMMAND options of hpo worker and hpo run as a map; a COMMAND whose program is
// a relative path (./train.py, examples/trainers/x.py) is made absolute here, where the user wrote
// it (training programs run in their own directories). Exits 2 on a malformed entry.
std::map<std::string, std::string> ParseImages(const std::vector<std::string>& options);

// A metric value as people read it: 6 significant digits.
std::string Num(double v);

// `hpo run`'s progress line for the tuning job `d`: its status, training jobs done (of `max_jobs`
// when > 0), running (`running`: their program runs as far as the core knows; the rest of
// InProgress start or queue), failed (both kinds, those of infrastructure said), the best
// objective, and the time since the start. `width` > 0: the terminal's columns; the least useful
// parts go first, and a line still longer is cut before the clock, so that `\r` redraws it.
std::string ProgressLine(const proto::DescribeTuningJobResponse& d, int64_t elapsed_ms, int64_t max_jobs,
                         int64_t running, int width = 0);

// How many columns the terminal behind `fd` has: $COLUMNS when it is a positive number, else the
// terminal's own width when `fd` is one; 0 (no limit) for a pipe or a file without $COLUMNS.
int TerminalColumns(int fd);

// `words` joined by spaces into lines of at most `columns` characters (a word longer than that
// gets a line of its own); one line with them all when `columns` is 0.
std::vector<std::string> WrapWords(const std::vector<std::string>& words, size_t columns);

// --help as people read it in a terminal: option and command descriptions wrapped at its width
// (TerminalColumns of stdout; 80 columns for a pipe or a file, as argparse and man do), each line
// after the first under the description column. A line break already in a description stays.
class HelpFormatter : public CLI::Formatter {
 public:
  std::string make_option_desc(const CLI::Option* opt) const override;
  std::string make_subcommand(const CLI::App* sub) const override;
  // A command's description and footer: a paragraph of prose (lines that do not begin with a
  // space) wider than the terminal flows again to fit; examples (indented lines) and tables (a
  // paragraph with a line of columns lined up by spaces) stay as written.
  std::string make_description(const CLI::App* app) const override;
  std::string make_footer(const CLI::App* app) const override;

 private:
  static size_t Columns();
  std::string Wrap(const std::string& text) const;
};

// Rows of cells as table lines: each column as wide as its widest cell (in characters), two
// spaces apart, the last column unpadded.
std::vector<std::string> AlignedRows(const std::vector<std::vector<std::string>>& rows);

// Whether a tuning job's status (HyperParameterTuningJobStatus) says it has ended: Completed,
// Failed, Stopped, or on its way out of the store (Deleting, DeleteFailed).
bool TuningJobEnded(const std::string& status);
// Whether a training job's status (TrainingJobStatus) says it has ended: Completed, Failed or
// Stopped.
bool TrainingJobEnded(const std::string& status);

// A tuning job for people: status, counters, the best training job and its hyperparameters,
// completion details, with `show_ranges` the ranges searched (Autotune's among them), which
// hyperparameters mattered (coordinator/importance.h; from 8 training jobs with an objective,
// or the reason when there is no estimate), then the ten best training jobs. `hpo run` prints it
// at the end, `hpo describe -o table` on request.
// `waiting`: why a running job's next training jobs wait (no worker fits), "" when they do not.
// Which hyperparameters mattered (coordinator/importance.h), per training job definition, from
// the ended training jobs with an objective: one line per hyperparameter, its first-order share
// as '#' and what its interactions add as '+'. Nothing for a definition without an estimate
// (fewer than 8 such training jobs), unless `explain`, which prints the reason. `curves`: the
// objective's curve of each training job (dashboard::ImportanceCurves), which a job that stops
// training jobs early needs to compare them at one budget (coordinator/importance.h).
using Curves = std::map<std::string, std::vector<double>>;
void PrintImportance(const proto::DescribeTuningJobResponse& d, const std::vector<proto::TrainingJobSummary>& trials,
                     bool explain, const Curves& curves = {});
// The same as JSON for `hpo describe NAME --importance -o json`: one object per definition,
// {"DefinitionName" (several definitions only), "TrainingJobs", "Flat", "HyperParameters":
// [{"Name", "FirstOrder", "Total"}, ...] most important first, and "Budget" (the objective's
// values each was compared at) where the job stops training jobs early} or {["DefinitionName",]
// "NotEstimated": reason}.
nlohmann::ordered_json ImportanceJson(const proto::DescribeTuningJobResponse& d,
                                      const std::vector<proto::TrainingJobSummary>& trials, const Curves& curves = {});

// `ended`: the message of the job's JobCompleted event (its completion reason), "" if unknown: a
// job ended by the coordinator's runtime quota says so (it said nothing; a limits pass).
void PrintSummary(const proto::DescribeTuningJobResponse& d, const std::vector<proto::TrainingJobSummary>& trials,
                  bool show_ranges = false, const std::string& waiting = "", const Curves& curves = {},
                  const std::string& ended = "");
// The message of the newest JobCompleted event among `events` ({"events": [{"kind", "message"}]}),
// "" if none.
std::string CompletionReason(const nlohmann::json& events);

}  // namespace hpo::cli
