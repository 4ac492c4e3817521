#include "cli/cli_util.h"

#include <algorithm>
#include <cctype>
#include <chrono>
#include <ctime>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <sstream>

#include <sys/ioctl.h>
#include <unistd.h>

#include "common/file_util.h"
#include "common/text.h"
#include "coordinator/core.h"
#include "coordinator/importance.h"
#include "coordinator/placement.h"
#include "proto/validate.h"
#include "worker/trial_layout.h"

namespace hpo::cli {

namespace fs = std::filesystem;

namespace {

// Relative file:// training images resolve against the spec file's directory, so a spec and its
// trainer can travel together.
void ResolveImages(proto::TuningJobSpec& spec, const fs::path& spec_dir) {
  auto fix = [&](proto::TrainingJobDefinition& d) {
    if (!d.algorithm_specification || !d.algorithm_specification->training_image) return;
    std::string& img = *d.algorithm_specification->training_image;
    if (proto::IsRelativeFileImage(img)) {
      img = "file://" + fs::weakly_canonical(spec_dir / img.substr(7)).string();
    }
  };
  if (spec.training_job_definition) fix(*spec.training_job_definition);
  for (auto& d : spec.training_job_definitions) fix(d);
}

}  // namespace

[[noreturn]] void Exit(int code) { throw CLI::RuntimeError(code); }

[[noreturn]] void Fail(int code, const std::string& message) {
  std::cerr << "hpo: " << message << "\n";
  Exit(code);
}

void AddQuotaOptions(CLI::App* c, proto::ValidationLimits* limits) {
  c->add_option("--max-parallel-training-jobs", limits->max_parallel_training_jobs,
                "Quota: MaxParallelTrainingJobs a spec may ask for (100)")
      ->check(CLI::Range(int64_t{1}, int64_t{100000}));
  c->add_option("--max-training-jobs", limits->max_training_jobs_bayesian,
                "Quota: MaxNumberOfTrainingJobs of a Bayesian, Hyperband or Grid job (750, SageMaker's)")
      ->check(CLI::Range(int64_t{1}, int64_t{1000000}));
  c->add_option("--max-training-jobs-random", limits->max_training_jobs,
                "Quota: MaxNumberOfTrainingJobs of a Random job (10000)")
      ->check(CLI::Range(int64_t{1}, int64_t{1000000}));
  c->add_option("--max-tunable-hyperparameters", limits->max_tunable_hyperparameters,
                "Limit: tunable hyperparameters (ranges) of a training job definition (30, SageMaker's)")
      ->check(CLI::Range(int64_t{1}, int64_t{100}));
  c->add_option("--max-metric-definitions", limits->max_metric_definitions,
                "Limit: MetricDefinitions of a training job definition (40, SageMaker's; at most 100,\n"
                "what an assignment to a worker carries)")
      ->check(CLI::Range(int64_t{1}, int64_t{100}));
}

std::optional<int> PortNumber(const std::string& digits) {
  if (digits.empty() || digits.size() > 5 || digits.find_first_not_of("0123456789") != std::string::npos) {
    return std::nullopt;
  }
  const int port = std::stoi(digits);
  return port <= 65535 ? std::optional<int>(port) : std::nullopt;
}

HttpUrlParts ParseHttpUrl(const std::string& url) {
  const auto fail = [](std::string problem) { return HttpUrlParts{"", "", std::move(problem)}; };
  const size_t sep = url.find("://");
  if (sep == std::string::npos) return fail("give an http:// or https:// URL");
  std::string scheme = url.substr(0, sep);
  for (char& c : scheme) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  if (scheme != "http" && scheme != "https")
    return fail("give an http:// or https:// URL, not " + url.substr(0, sep + 3));
  // RFC 3986 allows any case; the delivery takes lower case only, and refused every POST.
  if (url.compare(0, sep, scheme) != 0) return fail("write its scheme in lower case: " + scheme + "://");
  // Two URLs in one value (HPO_NOTIFY="URL1 URL2" or "URL1,URL2": an environment variable holds
  // one value): one URL to curl, with the other in its path or refused.
  if (url.find("://", sep + 3) != std::string::npos) {
    return fail("holds a second URL: give the option once for each URL (an environment variable holds one "
                "value; a --config file takes a list)");
  }
  for (unsigned char c : url) {
    if (c <= ' ' || c == 0x7f)
      return fail("a URL has no spaces or control characters (write a space in a path as %20)");
  }
  const std::string rest = url.substr(sep + 3);
  std::string authority = rest.substr(0, rest.find_first_of("/?#"));
  if (const size_t at = authority.rfind('@'); at != std::string::npos) authority = authority.substr(at + 1);
  std::string host = authority, port;
  if (!authority.empty() && authority.front() == '[') {  // [IPv6]:PORT
    const size_t close = authority.find(']');
    if (close == std::string::npos) return fail("its IPv6 host has no closing ]");
    host = authority.substr(0, close + 1);
    const std::string after = authority.substr(close + 1);
    if (!after.empty() && after.front() != ':') return fail("has '" + after + "' after its IPv6 host");
    if (!after.empty()) port = after.substr(1);
    if (host.size() == 2 || host.find_first_not_of("[]0123456789abcdefABCDEF:.") != std::string::npos) {
      return fail("has no valid IPv6 host (" + host + ")");
    }
  } else if (const size_t colon = authority.rfind(':'); colon != std::string::npos) {
    host = authority.substr(0, colon);
    port = authority.substr(colon + 1);
    if (port.empty()) return fail("has a : with no port after it");
  }
  if (host.empty()) return fail("has no host");
  if (host.front() != '[' &&
      host.find_first_not_of("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-._~%") != std::string::npos) {
    return fail("has a host, '" + host + "', that is no host name or address");
  }
  if (!port.empty() && PortNumber(port).value_or(0) < 1) return fail("has the port '" + port + "', not one of 1-65535");
  return HttpUrlParts{host, port, ""};
}

std::string HttpUrlProblem(const std::string& url) { return ParseHttpUrl(url).problem; }

std::pair<std::string, int> HostPort(const std::string& option, const std::string& value, const std::string& example) {
  const size_t colon = value.rfind(':');
  const std::optional<int> port =
      colon != std::string::npos && colon > 0 ? PortNumber(value.substr(colon + 1)) : std::nullopt;
  if (!port) Fail(2, option + " wants HOST:PORT with a port of 0-65535 (e.g. " + example + "), got " + value);
  std::string host = value.substr(0, colon);
  // [::1]:7780: the address without its brackets (what a socket binds; the listen failed).
  if (host.size() >= 2 && host.front() == '[' && host.back() == ']') host = host.substr(1, host.size() - 2);
  return {host, *port};
}

std::string UrlHost(const std::string& host) {
  return host.find(':') != std::string::npos && host.front() != '[' ? "[" + host + "]" : host;
}

void CheckZmqEndpoint(const std::string& option, const std::string& endpoint, bool listen) {
  if (endpoint.find("://") == std::string::npos) {  // 127.0.0.1:7700: ZeroMQ knows no such thing
    Fail(2, option + " " + endpoint + ": wants a ZeroMQ endpoint, tcp://HOST:PORT (or ipc://PATH)" +
                (endpoint.find(':') != std::string::npos ? "; did you mean tcp://" + endpoint + "?" : ""));
  }
  if (endpoint.rfind("tcp://", 0) != 0) return;
  const std::string rest = endpoint.substr(6);
  const size_t colon = rest.rfind(':');
  if (colon != std::string::npos && colon > 0 && listen && rest.substr(colon + 1) == "*") return;
  const std::optional<int> port =
      colon != std::string::npos && colon > 0 ? PortNumber(rest.substr(colon + 1)) : std::nullopt;
  if (!port || (!listen && *port == 0)) {
    Fail(2, option + " " + endpoint + ": wants tcp://HOST:PORT with a port of " + (listen ? "0-65535" : "1-65535") +
                " (e.g. tcp://" + (listen ? "0.0.0.0" : "127.0.0.1") + ":7700)");
  }
}

void AddRuntimeQuotaOption(CLI::App* c, int64_t* seconds) {
  c->add_option("--max-tuning-job-runtime", *seconds,
                "Quota: seconds a tuning job that gives no ResourceLimits.MaxRuntimeInSeconds may run; then its "
                "training jobs are stopped and it ends, as SageMaker ends one at 30 days (" +
                    std::to_string(coordinator::kSageMakerTuningJobRuntimeS) + "; 0: no limit)")
      ->check(CLI::Range(int64_t{0}, int64_t{100} * 365 * 86400));
}

coordinator::InstanceCatalog LoadInstanceCatalog(const std::string& catalog_file) {
  coordinator::InstanceCatalog catalog = coordinator::InstanceCatalog::Defaults();
  if (!catalog_file.empty()) {
    std::ifstream in(catalog_file);
    if (!in) Fail(2, "cannot read the instance catalog " + catalog_file);
    std::stringstream text;
    text << in.rdbuf();
    auto custom = coordinator::InstanceCatalog::FromJson(text.str());
    if (!custom.ok()) Fail(2, catalog_file + ": " + custom.status().message());
    catalog.Merge(*custom);
  }
  return catalog;
}

std::set<std::string> KnownInstanceTypes(const std::string& catalog_file, const std::vector<std::string>& served) {
  std::set<std::string> types = LoadInstanceCatalog(catalog_file).Types();
  types.insert(served.begin(), served.end());
  return types;
}

std::map<std::string, std::string> ParseImages(const std::vector<std::string>& options) {
  std::map<std::string, std::string> images;
  for (const auto& kv : options) {
    const auto eq = kv.find('=');
    if (eq == std::string::npos || eq == 0 || eq + 1 == kv.size()) Fail(2, "--image wants NAME=COMMAND, got " + kv);
    std::string command = kv.substr(eq + 1);
    const size_t end = command.find_first_of(" \t");
    const std::string program = command.substr(0, end);
    if (program.find('/') != std::string::npos && program[0] != '/') {
      command = fs::absolute(program).lexically_normal().string() + (end == std::string::npos ? "" : command.substr(end));
    }
    images[kv.substr(0, eq)] = command;
  }
  return images;
}

Result<std::string> ReadSpecText(const std::string& path) {
  return ReadFile(path == "-" ? "/dev/stdin" : path);  // a pipe, a file or a terminal
}

std::string SpecError(const std::string& file, const proto::FieldError& e) {
  return file + (e.line > 0 ? ":" + std::to_string(e.line) : "") + ": " + e.WithoutLine();
}

proto::ParsedSpec LoadSpec(const std::string& path, const proto::ValidationLimits& limits) {
  auto text = ReadSpecText(path);
  if (!text.ok()) Fail(2, text.status().message());
  proto::FieldErrors errs;
  auto parsed = proto::ParseSpec(*text, &errs);
  if (!parsed.ok()) {
    for (const auto& e : errs) std::cerr << SpecError(path, e) << "\n";
    Exit(2);
  }
  ResolveImages(parsed->document.spec, fs::absolute(path).parent_path());
  auto verrs = proto::Validate(parsed->document.spec, parsed->spelling, limits);
  proto::AddYamlLines(parsed->yaml_lines, verrs);
  if (!verrs.empty()) {
    for (const auto& e : verrs) std::cerr << SpecError(path, e) << "\n";
    std::cerr << "hpo: " << path << " is not a valid tuning job (" << verrs.size() << " error"
              << (verrs.size() == 1 ? "" : "s") << "); nothing was started\n";
    Exit(2);
  }
  return std::move(parsed).value();
}

std::vector<std::string> LocalProgramNotes(const proto::TuningJobSpec& spec, const std::string& spec_path) {
  std::vector<std::string> notes;
  const fs::path dir = spec_path == "-" ? fs::current_path() : fs::absolute(spec_path).parent_path();
  for (const proto::TrainingJobDefinition* d : spec.Definitions()) {
    if (!d->algorithm_specification || !d->algorithm_specification->training_image) continue;
    const std::string& image = *d->algorithm_specification->training_image;
    std::string program = image.rfind("file://", 0) == 0 ? image.substr(7) : image;
    if (program.empty() || (image.rfind("file://", 0) != 0 && program[0] != '/')) continue;  // a container image
    if (program[0] != '/') program = fs::weakly_canonical(dir / program).string();
    std::error_code ec;
    const char* wrong = !fs::exists(program, ec)        ? "does not exist"
                        : fs::is_directory(program, ec) ? "is a directory"
                        : ::access(program.c_str(), X_OK) != 0 ? "is not executable"
                                                               : nullptr;
    if (!wrong) continue;
    const std::string def = d->definition_name.value_or("");
    const std::string where =
        !proto::IsRelativeFileImage(image) ? ""
        : spec_path == "-" ? " (" + image + ": the spec came from standard input, so from the current directory)"
                           : " (" + image + " is taken from the spec's directory)";
    notes.push_back("the training program " + program + (def.empty() ? "" : " (training job definition " + def + ")") +
                    " " + wrong + " on this machine: each worker must have it at that path, or its training jobs " +
                    "fail" + where);
  }
  return notes;
}

std::vector<std::string> ContractEnvironmentNotes(const proto::TuningJobSpec& spec) {
  std::vector<std::string> notes;
  for (const proto::TrainingJobDefinition* d : spec.Definitions()) {
    std::string names;
    for (const auto& [name, value] : d->environment) {
      if (worker::SetForEveryTrainingJob(name)) names += (names.empty() ? "" : ", ") + name;
    }
    if (names.empty()) continue;
    const std::string def = d->definition_name.value_or("");
    notes.push_back("Environment sets " + names + (def.empty() ? "" : " (training job definition " + def + ")") +
                    ": hpo sets these for every training job (the training-container contract), and the program "
                    "gets hpo's values; give your own settings other names");
  }
  return notes;
}

std::string CompletionReason(const nlohmann::json& events) {
  std::string reason;
  if (!events.is_object() || !events.contains("events") || !events["events"].is_array()) return reason;
  for (const nlohmann::json& e : events["events"]) {
    if (e.is_object() && e.value("kind", "") == "JobCompleted") reason = e.value("message", "");
  }
  return reason;
}

std::string LogTime() {
  using namespace std::chrono;
  const auto now = system_clock::now();
  const time_t secs = system_clock::to_time_t(now);
  const auto ms = duration_cast<milliseconds>(now.time_since_epoch()).count() % 1000;
  struct tm tm {};
  gmtime_r(&secs, &tm);
  char buf[96];  // room for any int in every field, so the compiler sees no truncation
  std::snprintf(buf, sizeof buf, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday,
                tm.tm_hour, tm.tm_min, tm.tm_sec, static_cast<int>(ms));
  return buf;
}

std::string OneLogLine(std::string_view line) {
  std::string out;
  out.reserve(line.size());
  for (unsigned char c : line) {
    if (c == '\n') {
      out += "\\n";
    } else if (c == '\r') {
      out += "\\r";
    } else if ((c < 0x20 && c != '\t') || c == 0x7f) {
      char hex[8];
      std::snprintf(hex, sizeof hex, "\\x%02x", c);
      out += hex;
    } else {
      out += static_cast<char>(c);
    }
  }
  return out;
}

void LogLine(const std::string& line) {
  // Text from peers (a routing id, an error's or a notice's reason) is in many lines: with a
  // newline in it, a peer wrote a well-formed forged line ("... event JobCompleted x: FORGED"),
  // and with ESC, terminal escapes.
  const std::string whole = LogTime() + " " + OneLogLine(line) + "\n";
  std::fwrite(whole.data(), 1, whole.size(), stderr);  // one write: stderr is unbuffered
}

std::function<void(const std::string&)> StderrLog() {
  return [](const std::string& line) { LogLine(line); };
}

bool TuningJobEnded(const std::string& status) {
  return TrainingJobEnded(status) || status == "Deleting" || status == "DeleteFailed";
}

bool TrainingJobEnded(const std::string& status) {
  return status == "Completed" || status == "Failed" || status == "Stopped";
}

std::string Num(double v) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.6g", v);
  return buf;
}

namespace {

std::string Clock(int64_t ms) {
  int64_t s = ms / 1000;
  char buf[32];
  std::snprintf(buf, sizeof buf, "%02lld:%02lld:%02lld", static_cast<long long>(s / 3600),
                static_cast<long long>(s / 60 % 60), static_cast<long long>(s % 60));
  return buf;
}

}  // namespace

// (`running`: the core heard the program's start, not yet its exit report, which comes after the
// upload; those assigned ahead to a busy slot are not training jobs until they start.)
std::string ProgressLine(const proto::DescribeTuningJobResponse& d, int64_t elapsed_ms, int64_t max_jobs,
                         int64_t running, int width) {
  const auto& c = *d.status.training_job_status_counters;
  int64_t done = *c.completed + *c.stopped + *c.retryable_error + *c.non_retryable_error;
  const int64_t waiting = std::max<int64_t>(0, *c.in_progress - running);
  // The least useful parts go first when the terminal is narrow: the best training job's name,
  // then the starting count, then the infrastructure errors. Cutting the whole line from the right
  // cut the best value itself ("best 0.985..." for 0.98512 read as another number).
  auto compose = [&](bool best_name, bool starting, bool infra) {
    std::string line = *d.spec.hyper_parameter_tuning_job_name + "  " + *d.status.hyper_parameter_tuning_job_status +
                       "  " + std::to_string(done) + (max_jobs > 0 ? "/" + std::to_string(max_jobs) : "") +
                       " done, " + std::to_string(running) + " running, " +
                       (starting && waiting > 0 ? std::to_string(waiting) + " starting or queued, " : "") +
                       // Failed counts both kinds, as the summary and hpo trials do (it read "0 failed, 2
                       // infrastructure errors" above a summary of "2 failed"; a CLI pass).
                       std::to_string(*c.non_retryable_error + *c.retryable_error) + " failed" +
                       (infra && *c.retryable_error > 0
                            ? " (" + std::to_string(*c.retryable_error) + " by infrastructure)"
                            : "");
    if (d.status.best_training_job) {
      const auto& b = *d.status.best_training_job;
      line += ", best " + Num(*b.final_hyper_parameter_tuning_job_objective_metric->value) +
              (best_name ? " (" + *b.training_job_name + ")" : "");
    }
    return line;
  };
  const std::string clock = "  " + Clock(elapsed_ms);
  auto fits = [&](const std::string& line) { return width <= 0 || line.size() + clock.size() < static_cast<size_t>(width); };
  std::string line = compose(true, true, true);
  for (auto [best_name, starting, infra] : {std::tuple{false, true, true}, std::tuple{false, false, true},
                                            std::tuple{false, false, false}}) {
    if (fits(line)) break;
    line = compose(best_name, starting, infra);
  }
  if (!fits(line)) {
    const size_t room = static_cast<size_t>(std::max(0, width - 1 - static_cast<int>(clock.size()) - 3));
    line = line.substr(0, room) + "...";
  }
  return line + clock;
}

int TerminalColumns(int fd) {
  if (const char* env = std::getenv("COLUMNS"); env && *env) {
    char* end = nullptr;
    const long n = std::strtol(env, &end, 10);
    if (*end == '\0' && n > 0 && n < 100000) return static_cast<int>(n);
  }
  winsize ws{};
  if (::isatty(fd) && ::ioctl(fd, TIOCGWINSZ, &ws) == 0 && ws.ws_col > 0) return ws.ws_col;
  return 0;
}

size_t HelpFormatter::Columns() {
  const int terminal = TerminalColumns(STDOUT_FILENO);
  return static_cast<size_t>(terminal > 0 ? terminal : 80);
}

std::string HelpFormatter::Wrap(const std::string& text) const {
  // (Narrower than 30 columns beside the names, a description goes on as it is.)
  const size_t columns = Columns();
  const size_t width = columns > get_column_width() + 30 ? columns - get_column_width() - 1 : 0;
  if (width == 0) return text;
  std::string out;
  std::istringstream paragraphs(text);
  for (std::string paragraph; std::getline(paragraphs, paragraph);) {
    std::vector<std::string> words;
    std::istringstream in(paragraph);
    for (std::string w; in >> w;) words.push_back(w);
    for (const std::string& line : WrapWords(words, width)) out += (out.empty() ? "" : "\n") + line;
  }
  return out;
}

std::string HelpFormatter::make_option_desc(const CLI::Option* opt) const {
  return Wrap(CLI::Formatter::make_option_desc(opt));
}

namespace {

std::string Reflow(const std::string& text, size_t columns) {
  std::vector<std::string> lines;
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);) lines.push_back(line);
  std::string out;
  for (size_t i = 0; i < lines.size();) {
    size_t end = i, widest = 0;
    bool aligned = false;  // a line with columns lined up by spaces: a table, kept as written
    while (end < lines.size() && !lines[end].empty() && lines[end][0] != ' ') {
      widest = std::max(widest, Utf8Length(lines[end]));
      aligned = aligned || lines[end].find("  ") != std::string::npos;
      ++end;
    }
    if (aligned) widest = 0;
    if (end == i) {  // an empty or indented line
      out += lines[i++] + "\n";
      continue;
    }
    std::vector<std::string> words;
    for (size_t k = i; k < end; ++k) {
      if (widest <= columns) out += lines[k] + "\n";
      std::istringstream line(lines[k]);
      for (std::string w; line >> w;) words.push_back(w);
    }
    if (widest > columns) {
      for (const std::string& l : WrapWords(words, columns)) out += l + "\n";
    }
    i = end;
  }
  if (!text.empty() && text.back() != '\n' && !out.empty()) out.pop_back();
  return out;
}

}  // namespace

std::string HelpFormatter::make_description(const CLI::App* app) const {
  return Reflow(CLI::Formatter::make_description(app), Columns());
}

std::string HelpFormatter::make_footer(const CLI::App* app) const {
  return Reflow(CLI::Formatter::make_footer(app), Columns());
}

std::string HelpFormatter::make_subcommand(const CLI::App* sub) const {
  std::stringstream out;
  CLI::detail::format_help(out, sub->get_display_name(true), Wrap(sub->get_description()), get_column_width());
  return out.str();
}

std::vector<std::string> WrapWords(const std::vector<std::string>& words, size_t columns) {
  std::vector<std::string> lines;
  std::string line;
  for (const std::string& w : words) {
    if (!line.empty() && columns > 0 && Utf8Length(line) + 1 + Utf8Length(w) > columns) {
      lines.push_back(std::move(line));
      line.clear();
    }
    line += (line.empty() ? "" : " ") + w;
  }
  if (!line.empty() || lines.empty()) lines.push_back(std::move(line));
  return lines;
}

std::vector<std::string> AlignedRows(const std::vector<std::vector<std::string>>& rows) {
  std::vector<size_t> width;
  for (const auto& r : rows) {
    if (width.size() < r.size()) width.resize(r.size(), 0);
    for (size_t c = 0; c < r.size(); ++c) width[c] = std::max(width[c], Utf8Length(r[c]));
  }
  std::vector<std::string> out;
  for (const auto& r : rows) {
    std::string line;
    for (size_t c = 0; c < r.size(); ++c) {
      line += r[c];
      if (c + 1 < r.size()) line += std::string(width[c] - Utf8Length(r[c]) + 2, ' ');
    }
    out.push_back(std::move(line));
  }
  return out;
}

namespace {

// The importance of each definition's hyperparameters from its training jobs with an objective.
std::vector<std::pair<std::string, Result<coordinator::ImportanceReport>>> JobImportance(
    const proto::DescribeTuningJobResponse& d, const std::vector<proto::TrainingJobSummary>& trials,
    const Curves& curves) {
  std::vector<coordinator::ObservedTrainingJob> jobs;
  for (const auto& t : trials) {
    const auto& m = t.final_hyper_parameter_tuning_job_objective_metric;
    if (!m || !m->value) continue;
    jobs.push_back({t.training_job_definition_name.value_or(""), t.training_job_status.value_or(""),
                    coordinator::Config(t.tuned_hyper_parameters.begin(), t.tuned_hyper_parameters.end()), *m->value,
                    {}});
    if (auto c = curves.find(t.training_job_name.value_or("")); c != curves.end()) jobs.back().curve = c->second;
  }
  return coordinator::EstimateJobImportance(d.spec, jobs);
}

}  // namespace

nlohmann::ordered_json ImportanceJson(const proto::DescribeTuningJobResponse& d,
                                      const std::vector<proto::TrainingJobSummary>& trials, const Curves& curves) {
  nlohmann::ordered_json out = nlohmann::ordered_json::array();
  for (const auto& [def_name, rep] : JobImportance(d, trials, curves)) {
    nlohmann::ordered_json e = nlohmann::ordered_json::object();
    if (!def_name.empty()) e["DefinitionName"] = def_name;
    if (!rep.ok()) {
      e["NotEstimated"] = rep.status().message();
      out.push_back(std::move(e));
      continue;
    }
    e["TrainingJobs"] = rep->observations;
    if (rep->budget > 0) e["Budget"] = rep->budget;
    e["Flat"] = rep->flat;
    e["HyperParameters"] = nlohmann::ordered_json::array();
    for (const auto& p : rep->parameters) {
      e["HyperParameters"].push_back({{"Name", p.name}, {"FirstOrder", p.first_order}, {"Total", p.total}});
    }
    out.push_back(std::move(e));
  }
  return out;
}

void PrintImportance(const proto::DescribeTuningJobResponse& d, const std::vector<proto::TrainingJobSummary>& trials,
                     bool explain, const Curves& curves) {
  for (const auto& [def_name, rep] : JobImportance(d, trials, curves)) {
    const std::string where = def_name.empty() ? "" : " [" + def_name + "]";
    if (!rep.ok()) {
      if (explain) std::cout << "\n  what mattered" << where << ": not estimated: " << rep.status().message() << "\n";
      continue;
    }
    if (rep->flat) {
      std::cout << "\n  what mattered" << where << ": nothing: the " << rep->observations
                << " training jobs' objectives show no variation a model can attribute\n";
      continue;
    }
    std::cout << "\n  what mattered" << where << ": each hyperparameter's share of the objective's variation over the ranges\n"
              << "  (a model of " << rep->observations << " training jobs";
    if (rep->budget > 0) {  // (StopsTrainingJobsEarly: compared at one budget)
      std::cout << ", each after " << rep->budget << " value" << (rep->budget == 1 ? "" : "s")
                << " of the objective, the most that enough of them reached";
    }
    std::cout << "; # alone, + with its interactions):\n";
    size_t w = 0;
    for (const auto& p : rep->parameters) w = std::max(w, p.name.size());
    constexpr int kBar = 20;
    for (size_t i = 0; i < rep->parameters.size() && i < 10; ++i) {
      const auto& p = rep->parameters[i];
      const int alone = static_cast<int>(std::lround(p.first_order * kBar));
      const int with = std::max(alone, static_cast<int>(std::lround(p.total * kBar)));
      const std::string bar = std::string(alone, '#') + std::string(with - alone, '+') + std::string(kBar - with, '.');
      std::printf("    %-*s  %s %4.0f %% alone, %3.0f %% with interactions\n", static_cast<int>(w), p.name.c_str(),
                  bar.c_str(), 100 * p.first_order, 100 * p.total);
    }
    if (rep->parameters.size() > 10) std::printf("    ... %zu more\n", rep->parameters.size() - 10);
  }
}

// One line of progress from a Describe response.
void PrintSummary(const proto::DescribeTuningJobResponse& d, const std::vector<proto::TrainingJobSummary>& trials,
                  bool show_ranges, const std::string& waiting, const Curves& curves, const std::string& ended) {
  const auto& st = d.status;
  // With several training job definitions, which one each training job ran, and the best (the
  // question "stumps or trees?" was answered only by the JSON and CSV).
  const bool several_definitions = d.spec.training_job_definitions.size() > 1;
  std::cout << "\nTuning job " << *d.spec.hyper_parameter_tuning_job_name << ": "
            << *st.hyper_parameter_tuning_job_status << "\n";
  if (st.failure_reason) std::cout << "  reason: " << *st.failure_reason << "\n";
  // (A reason that says "waiting for ..." itself is not said twice.)
  if (!waiting.empty()) std::cout << (waiting.rfind("waiting ", 0) == 0 ? "  " : "  waiting: ") << waiting << "\n";
  if (const auto& w = d.spec.warm_start_config) {  // the history it started from
    std::string parents;
    for (const auto& p : w->parent_hyper_parameter_tuning_jobs) {
      parents += (parents.empty() ? "" : ", ") + p.hyper_parameter_tuning_job_name.value_or("?");
    }
    std::cout << "  warm start: " << w->warm_start_type.value_or("?") << " from " << parents << "\n";
  }
  const auto& c = *st.training_job_status_counters;
  // Failed counts both kinds, as hpo list and the dashboard do; the parts say whose fault.
  const int64_t failed = c.non_retryable_error.value_or(0) + c.retryable_error.value_or(0);
  // In progress first when there are any (the line read "0 completed, 0 stopped, 0 failed" above
  // a table of two InProgress training jobs).
  std::cout << "  training jobs: ";
  if (c.in_progress.value_or(0) > 0) std::cout << *c.in_progress << " in progress, ";
  std::cout << c.completed.value_or(0) << " completed, " << c.stopped.value_or(0) << " stopped, " << failed << " failed";
  if (failed > 0) {
    std::cout << " (" << c.non_retryable_error.value_or(0) << " by the program or spec, " << c.retryable_error.value_or(0)
              << " by infrastructure)";
  }
  std::cout << "\n";
  if (const auto& o = st.objective_status_counters; o && o->failed.value_or(0) > 0) {
    std::cout << "  objective: " << o->succeeded.value_or(0) << " reported it, " << *o->failed
              << " did not (failed, stopped before a value, or no log line matched its regex)\n";
  }
  if (st.best_training_job) {
    const auto& b = *st.best_training_job;
    const auto& m = *b.final_hyper_parameter_tuning_job_objective_metric;
    std::cout << "  best: " << *b.training_job_name << "  " << *m.metric_name << " = " << Num(*m.value) << " ("
              << *m.type << ")"
              << (b.training_job_definition_name && several_definitions
                      ? "  definition " + *b.training_job_definition_name
                      : std::string())
              << "\n";
    for (const auto& [k, v] : b.tuned_hyper_parameters) std::cout << "    " << k << " = " << v << "\n";
  }
  if (st.overall_best_training_job && st.overall_best_training_job->final_hyper_parameter_tuning_job_objective_metric) {
    const auto& b = *st.overall_best_training_job;
    std::cout << "  overall best (with the warm-start parents): " << *b.training_job_name << "  "
              << Num(*b.final_hyper_parameter_tuning_job_objective_metric->value) << "\n";
  }
  if (const auto& cd = st.tuning_job_completion_details) {
    if (cd->convergence_detected_time) std::cout << "  completed on convergence\n";
    if (cd->number_of_training_jobs_objective_not_improving && *cd->number_of_training_jobs_objective_not_improving > 0) {
      const int64_t n = *cd->number_of_training_jobs_objective_not_improving;
      // Why it ended before its MaxNumberOfTrainingJobs, when this criterion ended it.
      const auto& cfg = d.spec.hyper_parameter_tuning_job_config;
      const auto& cc = cfg ? cfg->tuning_job_completion_criteria : std::nullopt;
      const int64_t limit = cc && cc->best_objective_not_improving
                                ? cc->best_objective_not_improving->max_number_of_training_jobs_not_improving.value_or(0)
                                : 0;
      std::cout << "  training jobs in a row that did not improve the best by more than 1 %: " << n;
      if (limit > 0 && n >= limit && st.hyper_parameter_tuning_job_status == "Completed") {
        std::cout << " (ended early: BestObjectiveNotImproving allows " << limit << ")";
      }
      std::cout << "\n";
    }
  }
  // Why a Completed job ended before its MaxNumberOfTrainingJobs, for the two criteria Describe
  // has no field for (its target reached, its runtime spent): its stopped training jobs otherwise
  // went unexplained here (hpo events says it too).
  if (const auto& cfg = d.spec.hyper_parameter_tuning_job_config;
      cfg && st.hyper_parameter_tuning_job_status == "Completed") {
    const auto& cc = cfg->tuning_job_completion_criteria;
    const auto& best = st.best_training_job;
    const std::optional<double> got =
        best && best->final_hyper_parameter_tuning_job_objective_metric
            ? best->final_hyper_parameter_tuning_job_objective_metric->value
            : std::nullopt;
    const bool maximize = cfg->hyper_parameter_tuning_job_objective &&
                          cfg->hyper_parameter_tuning_job_objective->type.value_or("") == "Maximize";
    const int64_t ran = st.consumed_resources ? st.consumed_resources->runtime_in_seconds.value_or(0) : 0;
    const int64_t limit = cfg->resource_limits ? cfg->resource_limits->max_runtime_in_seconds.value_or(0) : 0;
    if (cc && cc->target_objective_metric_value && got &&
        (maximize ? *got >= *cc->target_objective_metric_value : *got <= *cc->target_objective_metric_value)) {
      std::cout << "  ended early: the best reached TargetObjectiveMetricValue " << Num(*cc->target_objective_metric_value)
                << "\n";
    } else if (limit > 0 && ran >= limit) {
      std::cout << "  ended at ResourceLimits.MaxRuntimeInSeconds (" << limit << " s); the training jobs still running "
                << "then were stopped\n";
    } else if (ended.rfind("runtime quota", 0) == 0) {
      std::cout << "  ended: the coordinator's " << ended << "; the training jobs still running then were stopped\n";
    }
  }
  if (show_ranges && d.spec.hyper_parameter_tuning_job_config) {
    std::vector<std::pair<std::string, const proto::ParameterRanges*>> blocks;
    if (const auto& r = d.spec.hyper_parameter_tuning_job_config->parameter_ranges) blocks.push_back({"", &*r});
    for (const auto* def : d.spec.Definitions()) {
      if (def->hyper_parameter_ranges) blocks.push_back({def->definition_name.value_or(""), &*def->hyper_parameter_ranges});
    }
    std::cout << "  ranges" << (d.spec.autotune ? " (with Autotune's choices; hpo events " +
                                                       *d.spec.hyper_parameter_tuning_job_name + " --kind AutotuneChose)"
                                                 : std::string())
              << ":\n";
    // One row per range, in columns: name, kind, values, scaling, and the definition it is of.
    std::vector<std::vector<std::string>> rows;
    for (const auto& [def, r] : blocks) {
      const std::string where = def.empty() ? "" : "[" + def + "]";
      for (const auto* list : {&r->integer_parameter_ranges, &r->continuous_parameter_ranges}) {
        for (const auto& n : *list) {
          rows.push_back({n.name.value_or(""), list == &r->integer_parameter_ranges ? "integer" : "continuous",
                          n.min_value.value_or("") + " .. " + n.max_value.value_or(""), n.scaling_type.value_or("Auto"),
                          where});
        }
      }
      for (const auto& c : r->categorical_parameter_ranges) {
        std::string values;
        for (const auto& v : c.values) values += (values.empty() ? "" : ", ") + v;
        rows.push_back({c.name.value_or(""), "categorical", "{" + values + "}", "", where});
      }
    }
    for (const std::string& line : AlignedRows(rows)) {
      std::string trimmed = line;
      while (!trimmed.empty() && trimmed.back() == ' ') trimmed.pop_back();  // no definition, no scaling
      std::cout << "    " << trimmed << "\n";
    }
  }
  PrintImportance(d, trials, /*explain=*/true, curves);  // (why not, too: hpo run said nothing)
  // The top of the table, best first.
  std::vector<const proto::TrainingJobSummary*> rows;
  for (const auto& t : trials) rows.push_back(&t);
  bool maximize = st.best_training_job &&
                  st.best_training_job->final_hyper_parameter_tuning_job_objective_metric->type == "Maximize";
  std::stable_sort(rows.begin(), rows.end(), [&](auto* a, auto* b) {
    auto va = a->final_hyper_parameter_tuning_job_objective_metric;
    auto vb = b->final_hyper_parameter_tuning_job_objective_metric;
    if (!va || !vb) return va.has_value() && !vb.has_value();
    if (*va->value != *vb->value) return maximize ? *va->value > *vb->value : *va->value < *vb->value;
    // Equal values: the job's best first, then by when they ended, as Describe names the best
    // (the list put another tied one above the `best:` line's; a dashboard pass).
    const std::string best = st.best_training_job ? st.best_training_job->training_job_name.value_or("") : "";
    if ((a->training_job_name.value_or("") == best) != (b->training_job_name.value_or("") == best)) {
      return a->training_job_name.value_or("") == best;
    }
    const int64_t ea = a->training_end_time ? a->training_end_time->unix_millis : INT64_MAX;
    const int64_t eb = b->training_end_time ? b->training_end_time->unix_millis : INT64_MAX;
    return ea < eb;
  });
  // As wide as the longest name shown (a job name over 24 characters pushed the columns out from
  // under their headers).
  int name_width = 36;
  for (size_t i = 0; i < rows.size() && i < 10; ++i) {
    name_width = std::max(name_width, static_cast<int>(rows[i]->training_job_name->size()));
  }
  std::printf("\n  %-*s %-10s %14s%s\n", name_width, "TRAINING JOB", "STATUS", "OBJECTIVE",
              several_definitions ? "  DEFINITION" : "");
  for (size_t i = 0; i < rows.size() && i < 10; ++i) {
    auto obj = rows[i]->final_hyper_parameter_tuning_job_objective_metric;
    std::printf("  %-*s %-10s %14s%s\n", name_width, rows[i]->training_job_name->c_str(),
                rows[i]->training_job_status->c_str(),
                obj ? Num(*obj->value).c_str() : "-",
                several_definitions ? ("  " + rows[i]->training_job_definition_name.value_or("-")).c_str() : "");
  }
  if (rows.size() > 10) std::printf("  ... %zu more (hpo trials)\n", rows.size() - 10);
  // Why training jobs failed: each distinct reason once, with how many and one of them (the
  // reasons are the programs' own /opt/ml/output/failure or exit status).
  std::vector<std::pair<std::string, std::pair<int, std::string>>> reasons;  // reason -> (count, example)
  for (const auto& t : trials) {
    if (*t.training_job_status != "Failed" || !t.failure_reason || t.failure_reason->empty()) continue;
    auto it = std::find_if(reasons.begin(), reasons.end(), [&](const auto& r) { return r.first == *t.failure_reason; });
    if (it == reasons.end()) {
      reasons.push_back({*t.failure_reason, {1, *t.training_job_name}});
    } else {
      ++it->second.first;
    }
  }
  if (!reasons.empty()) std::printf("\n  failures:\n");
  // Five, and a sixth rather than "... 1 other reasons" in its place.
  const size_t shown_reasons = reasons.size() == 6 ? 6 : std::min<size_t>(reasons.size(), 5);
  for (size_t i = 0; i < shown_reasons; ++i) {
    const auto& [reason, seen] = reasons[i];
    // Its first line, at most 600 bytes (a traceback's last line is often the telling one: hpo
    // logs); hpo's own reasons end with what to do, which a shorter cut lost.
    std::string shown = reason.substr(0, reason.find('\n'));
    if (shown.size() > 600) {
      size_t cut = 600;
      while (cut > 0 && (static_cast<unsigned char>(shown[cut]) & 0xC0) == 0x80) --cut;  // not inside a character
      shown.resize(cut);
    }
    if (shown.size() < reason.size()) shown += " ...";
    std::printf("    %s%s: %s\n", seen.second.c_str(),
                seen.first > 1 ? (" and " + std::to_string(seen.first - 1) + " more").c_str() : "", shown.c_str());
  }
  if (reasons.size() > shown_reasons) {
    std::printf("    ... %zu other reasons (hpo trials -o json)\n", reasons.size() - shown_reasons);
  }
}

}  // namespace hpo::cli
