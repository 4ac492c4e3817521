#include "cli/runtime_commands.h"

#include <fcntl.h>
#include <malloc.h>
#include <sys/stat.h>
#include <sys/resource.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cctype>
#include <chrono>
#include <csignal>
#include <cstdio>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <optional>
#include <random>
#include <set>
#include <sstream>
#include <thread>
#include <tuple>

#include <spdlog/spdlog.h>

#include "cli/cli_util.h"
#include "cli/run_control.h"
#include "cli/client.h"
#include "common/file_util.h"
#include "common/s3_client.h"
#include "coordinator/autotune.h"
#include "coordinator/core.h"
#include "coordinator/curve_auth.h"
#include "coordinator/dispatcher.h"
#include "coordinator/http_api.h"
#include "coordinator/job_store.h"
#include "coordinator/importance.h"
#include "coordinator/notifier.h"
#include "coordinator/sigv4.h"
#include "coordinator/strategy.h"
#include "proto/codec.h"
#include "proto/validate.h"
#include "worker/agent.h"
#include "worker/orphans.h"
#include "worker/process.h"

namespace hpo::cli {

namespace fs = std::filesystem;
using Json = nlohmann::ordered_json;

namespace {

std::atomic<int> g_signals{0};
std::atomic<int> g_hangups{0};  // SIGHUP: the coordinator re-reads its allow-list and credentials
std::atomic<int> g_usr1{0};     // SIGUSR1: a spot worker's interruption notice

// When the first stopping signal arrived, on CLOCK_REALTIME (0: none yet): a worker's training
// programs that end after it got the signal too (worker::AgentOptions::stop_signal_unix_ns).
std::atomic<int64_t> g_first_signal_ns{0};
static_assert(std::atomic<int64_t>::is_always_lock_free, "set in a signal handler");

void OnSignal(int) {
  timespec ts{};
  ::clock_gettime(CLOCK_REALTIME, &ts);  // async-signal-safe
  int64_t none = 0;
  g_first_signal_ns.compare_exchange_strong(none, static_cast<int64_t>(ts.tv_sec) * 1'000'000'000 + ts.tv_nsec);
  g_signals.fetch_add(1);
}
void OnHangup(int) { g_hangups.fetch_add(1); }
void OnUsr1(int) { g_usr1.fetch_add(1); }

// SIGUSR1 is the interruption notice of `hpo worker --spot`; elsewhere its default action killed
// the process and its training programs without a word. Counted in g_usr1 for a caller to say.
void InstallUsr1Handler() {
  struct sigaction sa {};
  sa.sa_handler = OnUsr1;
  sigemptyset(&sa.sa_mask);
  sigaction(SIGUSR1, &sa, nullptr);
}

void InstallHangupHandler() {
  struct sigaction sa {};
  sa.sa_handler = OnHangup;
  sigemptyset(&sa.sa_mask);
  sigaction(SIGHUP, &sa, nullptr);
}

// Endpoints and hosts only this machine can reach: there, workers and API clients are trusted
// like the machine's own users; anywhere else they must authenticate.
using coordinator::IsLoopbackHost;

// A file of secrets (keys, credentials) that other users can read is used, with a warning.
void WarnIfOthersCanRead(const std::string& path) {
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0 || (st.st_mode & 077) == 0) return;
  // Readable by its group only, on a file this process cannot change (a Kubernetes Secret volume:
  // read-only, mode 0440 for the pod's fsGroup): as it was given, and the advice could not be
  // followed. Readable by every user, it is said whatever the mount.
  if ((st.st_mode & 007) == 0 && ::access(path.c_str(), W_OK) != 0) return;
  char mode[8];
  std::snprintf(mode, sizeof mode, "%04o", static_cast<unsigned>(st.st_mode & 07777));
  LogLine("hpo: warning: " + path + " holds secrets and is readable by other users (mode " + mode +
          "); chmod 600 " + path);
}

// An hpo.db of 0 bytes: SQLite takes it for a new, empty store, and the directory's jobs were
// gone without a word (a file system can leave a file so after a crash; a user's fault pass).
// Said before it is opened; the run goes on (a store made and then cut before its first write is
// empty too).
// With a write-ahead log beside it the store refuses to open, saying why (it said both).
// A log damaged in its middle (SqliteJobStore::LogDamage): SQLite drops the records after the
// damage for good as it opens the store; a copy of the whole log is kept beside it first, and said.
void WarnIfEmptyDatabase(const std::string& state_dir) {
  std::error_code ec;
  const fs::path db = fs::path(state_dir) / "hpo.db";
  if (const std::string damage = coordinator::SqliteJobStore::LogDamage(db.string()); !damage.empty()) {
    const fs::path copy = db.string() + "-wal.damaged-" + std::to_string(::time(nullptr));
    fs::copy_file(db.string() + "-wal", copy, ec);
    // After a power loss the frames past a hole were never acknowledged (an acknowledgement waits
    // for the log's sync): nothing is lost then, and a restore would lose more.
    LogLine("hpo: warning: " + damage + ". " +
            (ec ? "It could not be copied aside (" + ec.message() + ")"
                : "The whole log is kept as " + copy.string() + " for recovery by hand") +
            ". If this machine lost power, those records were never acknowledged and nothing is lost; "
            "otherwise the disk damaged the log: stop now to restore hpo.db and its log from a backup");
    ec.clear();
  }
  const bool log_beside = fs::file_size(db.string() + "-wal", ec) > 0 && !ec;
  ec.clear();
  if (!log_beside && fs::is_regular_file(db, ec) && fs::file_size(db, ec) == 0 && !ec) {
    LogLine("hpo: warning: " + db.string() + " is empty (0 bytes): starting with no tuning jobs. If this state "
            "directory held jobs (a crash can leave a file so), stop now and restore hpo.db from a backup");
  }
}

// A state directory that could not be locked: in use (exit 2, with `in_use` advice), or not
// writable here (exit 3: a read-only or full file system, or permissions).
[[noreturn]] void FailLocking(const Status& s, const std::string& in_use) {
  if (s.code() == StatusCode::kFailedPrecondition) Fail(2, "the state directory " + s.message() + "; " + in_use);
  Fail(3, "the state directory cannot be locked: " + s.message() +
              "; it must be writable by this user (check its permissions, and that its file system is mounted "
              "read-write and not full)");
}

bool IsLoopbackEndpoint(const std::string& endpoint) {
  if (endpoint.rfind("ipc://", 0) == 0 || endpoint.rfind("inproc://", 0) == 0) return true;
  if (endpoint.rfind("tcp://", 0) != 0) return false;
  std::string hostport = endpoint.substr(6);
  size_t colon = hostport.rfind(':');
  return colon != std::string::npos && IsLoopbackHost(hostport.substr(0, colon));
}

// SIGINT and SIGTERM (and, for commands that run training jobs in a terminal, SIGHUP: the
// terminal or the SSH session went away) ask for a graceful stop; a second one, to quit now.
void InstallSignalHandlers(bool hangup_stops = false) {
  struct sigaction sa {};
  sa.sa_handler = OnSignal;
  sigemptyset(&sa.sa_mask);
  sigaction(SIGINT, &sa, nullptr);
  sigaction(SIGTERM, &sa, nullptr);
  if (hangup_stops) sigaction(SIGHUP, &sa, nullptr);
  signal(SIGPIPE, SIG_IGN);
}

// Open files: a running training job takes about a dozen descriptors in its worker (pipes, an
// eventfd, its log and journal files), and an API client or worker connection one in the
// coordinator. The soft limit is raised to the hard one (distributions default to 1024 soft),
// and a hard limit still below `needed` is said at start: otherwise training jobs failed as fast
// as they were given ("Too many open files"), using up a tuning job in a second.
void RaiseFileLimit(uint64_t needed, const std::string& what) {
  rlimit rl{};
  if (::getrlimit(RLIMIT_NOFILE, &rl) != 0) return;
  if (rl.rlim_cur != RLIM_INFINITY && rl.rlim_cur < rl.rlim_max) {
    rlimit up = rl;
    up.rlim_cur = rl.rlim_max;
    if (::setrlimit(RLIMIT_NOFILE, &up) == 0) rl = up;
  }
  if (rl.rlim_cur != RLIM_INFINITY && rl.rlim_cur < needed) {
    std::fprintf(stderr,
                 "hpo: warning: this process may open only %llu files (ulimit -n), and %s needs about %llu; "
                 "training jobs would fail with \"Too many open files\". Raise the limit (ulimit -n %llu, or "
                 "LimitNOFILE=%llu in a systemd unit)%s\n",
                 static_cast<unsigned long long>(rl.rlim_cur), what.c_str(), static_cast<unsigned long long>(needed),
                 static_cast<unsigned long long>(needed), static_cast<unsigned long long>(needed),
                 what.find("slot") != std::string::npos ? " or use fewer --slots" : "");
  }
}

// Every 10 s in a long-running process (hpo coordinator, hpo worker, hpo run):
// - says when open file descriptors pass 80 % of the soft limit: at the limit the coordinator's
//   HTTP API and ZeroMQ socket stop accepting connections and a worker's training jobs fail to
//   start, all without a word (a coordinator held open by 1,000 idle HTTP clients just stopped
//   answering); said again only after it has gone back under 70 %;
// - hands memory freed after a burst back to the system (glibc keeps it otherwise: a 1 GB log
//   burst left about 0.8 GB resident in the coordinator and the worker for good).
class Housekeeping {
 public:
  explicit Housekeeping(std::string who) : who_(std::move(who)) {}
  void Tick() {
    const auto now = std::chrono::steady_clock::now();
    if (now < next_) return;
    next_ = now + std::chrono::seconds(10);
    ::malloc_trim(0);
    rlimit rl{};
    if (::getrlimit(RLIMIT_NOFILE, &rl) != 0 || rl.rlim_cur == RLIM_INFINITY || rl.rlim_cur == 0) return;
    size_t open = 0;
    std::error_code ec;
    for (fs::directory_iterator d("/proc/self/fd", ec), end; !ec && d != end; d.increment(ec)) ++open;
    if (ec) return;
    const double used = static_cast<double>(open) / static_cast<double>(rl.rlim_cur);
    if (used >= 0.8 && !warned_) {
      warned_ = true;
      std::fprintf(stderr,
                   "%s: warning: %zu of the %llu files this process may open are open (ulimit -n); at the limit "
                   "%s. Raise the limit (LimitNOFILE= in a systemd unit, ulimit -n) or find what holds them (ls -l "
                   "/proc/%d/fd)\n",
                   who_.c_str(), open, static_cast<unsigned long long>(rl.rlim_cur),
                   who_ == "hpo worker" ? "training jobs fail to start" : "new API clients and workers cannot connect",
                   static_cast<int>(::getpid()));
    } else if (used < 0.7) {
      warned_ = false;
    }
  }

 private:
  std::string who_;
  std::chrono::steady_clock::time_point next_{};
  bool warned_ = false;
};


// The job's size: MaxNumberOfTrainingJobs, or a Grid's combinations when it gives none (a limits
// pass: "2 done" with no total, where Random's read "1/20 done"); 0 when unknown.
int64_t MaxJobsOf(const proto::TuningJobSpec& spec) {
  const auto& cfg = *spec.hyper_parameter_tuning_job_config;
  if (cfg.resource_limits && cfg.resource_limits->max_number_of_training_jobs) {
    return *cfg.resource_limits->max_number_of_training_jobs;
  }
  if (cfg.strategy.value_or("") != "Grid") return 0;
  auto spaces = coordinator::DefinitionSpaces(spec);
  if (!spaces.ok()) return 0;
  int64_t total = 0;
  for (const coordinator::DefinitionSpace& d : *spaces) {
    const std::optional<uint64_t> n = d.space.Cardinality();
    if (!n || *n > static_cast<uint64_t>(INT64_MAX - total)) return 0;
    total += static_cast<int64_t>(*n);
  }
  return total;
}

// CoreOptions::on_store_failure for a process that serves a state directory: a write the
// database refused means the core's memory is ahead of its disk; stop before anything more is
// acknowledged (no destructors, no final messages: _Exit), and say how to go on. The local
// training jobs of `hpo run` end with the process (their parent-death signal).
// `marker` (hpo run, whose training programs go with it): made before the exit, so that the next
// run takes their attempts for interruptions (CoreOptions::lost_at_first_registration_interrupted);
// an empty file, which a full disk still takes (best effort: without it they are infrastructure
// errors, as after a kill -9).
std::function<void(const Status&)> StopOnStoreFailure(std::string who, std::string state_dir, std::string resume,
                                                      std::string marker = "") {
  return [who = std::move(who), state_dir = std::move(state_dir), resume = std::move(resume),
          marker = std::move(marker)](const Status& s) {
    if (!marker.empty()) {
      const int fd = ::open(marker.c_str(), O_WRONLY | O_CREAT | O_CLOEXEC, 0600);
      if (fd >= 0) ::close(fd);
    }
    // Timed as every other line of the service's log (LogLine's format), though written at once.
    const std::string at = LogTime() + " ";
    std::string text = "\n" + at + who + ": cannot write the state database in " + state_dir + ": " + s.message() +
                       "\n" + at + who + ": stopping now, so that nothing is acknowledged that is not on disk. Free space "
                       "on that file system (df -h " + state_dir + "), or for an I/O error check the disk (dmesg), and " + resume +
                       ": the jobs resume from what the database holds, and workers re-send what was not "
                       "acknowledged.\n";
    ssize_t ignored = ::write(STDERR_FILENO, text.data(), text.size());
    (void)ignored;
    std::_Exit(3);
  };
}

// The state database deleted or replaced under a running service (an operator's rm, a restore
// copied over it): every record would vanish at the next start, and the service kept
// acknowledging work into a file nobody would read again. It saves what its open connection
// still reads to hpo.db.recovered-<time> beside it, says so and what to do, and stops (exit 3).
// Overwritten in place (a backup copied over it: the same file), nothing can be saved: the
// connection would read the new file's pages beside its own log's. The log and shared memory are
// moved aside, so that the file copied in opens as it is at the next start.
void StopIfDatabaseGone(const DirectoryLock& lock, coordinator::Dispatcher& dispatcher,
                        coordinator::SqliteJobStore& store, const std::string& who, const std::string& state_dir) {
  const Status gone = lock.StillThere();
  const Status overwritten = gone.ok() ? store.StillOwnFile() : Status::Ok();
  if (gone.ok() && overwritten.ok()) return;
  const Status& there = gone.ok() ? overwritten : gone;
  const std::string stamp = std::to_string(::time(nullptr));
  const std::string saved = state_dir + "/hpo.db.recovered-" + stamp;
  std::optional<Status> copied;  // deleted or replaced: what the connection still reads, saved
  if (!gone.ok()) copied = dispatcher.WithCore([&](coordinator::CoordinatorCore&) { return store.CopyTo(saved); });
  // The write-ahead log and shared memory beside it belong to the file that went: left there,
  // SQLite would replay them into whatever hpo.db is next (the recovered copy, a restored
  // backup) and corrupt it. Moved aside (this process still holds them open).
  const std::string aside = gone.ok() ? ".of-the-overwritten-hpo.db-" : ".of-the-gone-hpo.db-";
  for (const char* side : {"-wal", "-shm"}) {
    const std::string from = state_dir + "/hpo.db" + side;
    if (::access(from.c_str(), F_OK) == 0) (void)::rename(from.c_str(), (from + aside + stamp).c_str());
  }
  const std::string at = LogTime() + " ";
  std::string text = "\n" + at + who + ": " + there.message() + ": stopping now, so that nothing more is acknowledged "
                     "into a file that is gone.\n" + at + who + ": ";
  if (copied) {
    text += copied->ok()
                ? "every record it still held is saved in " + saved + ": move it to " + state_dir +
                      "/hpo.db and start again to resume the jobs.\n"
                : "it could not save what it held (" + copied->message() + "); restore hpo.db from a backup.\n";
  } else {
    text += "what it held cannot be saved (its file now has the other pages; its write-ahead log is kept as " +
            state_dir + "/hpo.db-wal" + aside + stamp + "). Start again to use the file copied in; what this "
            "service recorded after that file was made is not in it. To restore a backup, stop the service first.\n";
  }
  ssize_t ignored = ::write(STDERR_FILENO, text.data(), text.size());
  (void)ignored;
  std::_Exit(3);
}

// Opening the state database failed: the message, and for a full disk where and what to do
// (it said only "job store: database or disk is full").
[[noreturn]] void FailOpeningStore(const Status& s, const std::string& state_dir) {
  std::string text = s.message();
  if (text.find("disk is full") != std::string::npos || text.find("No space left") != std::string::npos) {
    text = "cannot open the state database in " + state_dir + ": " + text + "; free space on that file system (df -h " +
           state_dir + ") and start again";
  } else if (text.find("readonly database") != std::string::npos) {
    text = "cannot write the state database " + state_dir + "/hpo.db (" + text +
           "): it, its -wal file or its directory is read-only to this user (mode, owner, or an immutable "
           "attribute: ls -l " + state_dir + "; lsattr " + state_dir +
           "). Run as the user that owns it, or give another --state-dir";
  }
  Fail(3, text);
}

// `hpo run` as this process was started (its arguments from /proc/self/cmdline, each quoted for a
// shell), with --state-dir DIR when they have none: what resumes its job.
std::string ResumeCommand(const std::string& state_dir) {
  auto text = ReadFile("/proc/self/cmdline", 1 << 20);
  std::vector<std::string> args;
  if (text.ok()) {
    for (size_t start = 0; start < text->size();) {
      const size_t end = std::min(text->find('\0', start), text->size());
      args.push_back(text->substr(start, end - start));
      start = end + 1;
    }
  }
  if (args.size() < 2) return "hpo run SPEC --state-dir " + ShellWord(state_dir);
  std::string out = "hpo";
  bool has_dir = false;
  for (size_t i = 1; i < args.size(); ++i) {
    has_dir = has_dir || args[i] == "--state-dir" || args[i].rfind("--state-dir=", 0) == 0;
    out += " " + ShellWord(args[i]);
  }
  return has_dir ? out : out + " --state-dir " + ShellWord(state_dir);
}

std::string DefaultStateDir(const std::string& job) {
  std::time_t t = std::time(nullptr);
  std::tm tm{};
  localtime_r(&t, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y%m%d-%H%M%S", &tm);
  // Two runs of one spec in the same second get their own directories.
  const std::string base = "hpo-runs/" + job + "-" + buf;
  std::string dir = base;
  for (int n = 2; fs::exists(dir); ++n) dir = base + "-" + std::to_string(n);
  return dir;
}

// ---- container runtime options (hpo run, hpo worker) ---------------------------------------------

struct ContainerArgs {
  std::string runtime = "auto";
  std::string pull = "missing";
  std::string network = "host";
  std::vector<std::string> extra;
};

void AddContainerOptions(CLI::App* c, ContainerArgs* a) {
  c->add_option("--container-runtime", a->runtime,
                "Runs a trainingImage that is not a local program as `RUNTIME run ... IMAGE train`: auto (the "
                "first of podman, docker, apptainer found in PATH), none, podman, docker, apptainer, or a path to "
                "one of them (auto)");
  c->add_option("--container-pull", a->pull,
                "When images are pulled: never (offline clusters: a missing image fails the training job with a "
                "ClientError naming it), missing, always; default: missing. Podman and docker pull before the program "
                "starts (secondary status DownloadingTrainingImage; not training time); an image may be an "
                "archive, oci-archive:/images/x.tar, pulled without a registry")
      ->check(CLI::IsMember({"never", "missing", "always"}));
  c->add_option("--container-network", a->network,
                "Network of container training jobs without EnableNetworkIsolation (host: like a local "
                "program, so the hosts of a multi-host job reach each other; isolated jobs get none) (host)");
  c->add_option("--container-arg", a->extra,
                "An extra argument for every `RUNTIME run`, e.g. --container-arg=--shm-size=8g (repeatable)")
      ->allow_extra_args(false);
}

worker::ContainerConfig ResolveContainer(const ContainerArgs& a) {
  auto c = worker::ResolveContainerRuntime(a.runtime, a.pull, a.network, a.extra);
  if (!c.ok()) Fail(2, c.status().message());
  return *c;
}

// ---- hpo run ------------------------------------------------------------------------------------

// The Notifier of a command with its thread (one per target, under Run), stopped and joined on
// every way out, an exception's included (Fail throws: a thread still joinable would end the
// process). Without targets it only drops what waits for URLs no longer given, saying so once:
// kept, those events would be sent days late if the URL came back, or expire one by one.
class NotifierThread {
 public:
  NotifierThread(coordinator::Dispatcher* d, coordinator::JobStore* store,
                 const std::vector<coordinator::NotifyTarget>& targets)
      : notifier_(d, store, Options(targets)), store_(store), d_(d), any_(!targets.empty()) {
    if (!any_) {
      notifier_.DropUnconfigured();
      return;
    }
    thread_ = std::thread([this] { notifier_.Run(stop_); });
  }
  ~NotifierThread() { Stop(); }
  // Waits (at most `seconds`) until nothing waits: `hpo run`'s last events go out before it ends.
  // Returns how many still wait.
  int64_t Drain(int seconds) {
    int64_t waiting = 0;
    const int signals = g_signals.load();  // an interrupt meanwhile ends the wait
    for (int tenth = 0; any_ && tenth <= seconds * 10 && g_signals.load() == signals; ++tenth) {
      d_->WithCore([&](coordinator::CoordinatorCore&) {
        auto b = store_->Backlog();
        waiting = b.ok() ? b->waiting : 0;
      });
      if (waiting == 0) break;
      if (tenth == 10) std::cerr << "hpo: delivering " << waiting << " notification(s) (--notify)...\n";
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
    return waiting;
  }
  void Stop() {
    stop_ = true;
    if (thread_.joinable()) thread_.join();
  }

 private:
  static coordinator::NotifierOptions Options(const std::vector<coordinator::NotifyTarget>& targets) {
    coordinator::NotifierOptions o;
    o.targets = targets;
    o.log = [](const std::string& line) { LogLine(line); };
    return o;
  }
  coordinator::Notifier notifier_;
  coordinator::JobStore* store_;
  coordinator::Dispatcher* d_;
  bool any_;
  std::atomic<bool> stop_{false};
  std::thread thread_;
};

// --notify, --notify-chat, --notify-pattern, --notify-secret-file (hpo coordinator and hpo run).
struct NotifyArgs {
  std::vector<std::string> urls;       // webhook URLs (coordinator/notifier.h)
  std::vector<std::string> chat_urls;  // chat webhook URLs (NotifyTarget::Format::kChat)
  // An EventBridge event pattern (JSON or @FILE), and the file of the HMAC key of
  // X-Hpo-Signature-256: each for every URL, or as URL=VALUE for that URL.
  std::vector<std::string> patterns;
  std::vector<std::string> secret_files;
};
std::vector<coordinator::NotifyTarget> NotifyTargets(const NotifyArgs& a);

struct RunArgs {
  std::string spec;
  int workers = 0;
  int slots = 1;
  std::string state_dir;
  std::string output = "table";
  int64_t grace_s = 120;  // SageMaker's: a stopped training job has 120 s to save its work
  bool no_assign_ahead = false;
  bool keep_trial_files = false;            // AgentOptions::keep_trial_files of the local workers
  std::vector<std::string> images;          // NAME=COMMAND, as hpo worker --image
  std::string s3_endpoint;                  // as hpo worker --s3-endpoint
  std::vector<std::string> instance_types;  // local worker i serves instance_types[i % size]
  ContainerArgs container;
  int dashboard_port = -1;  // >= 0: serve the web dashboard on 127.0.0.1 (0 picks a port)
  std::string instance_catalog;    // JSON file of instance types, merged over the defaults
  proto::ValidationLimits limits;  // the quotas (AddQuotaOptions)
  int64_t max_tuning_job_runtime_s = coordinator::kSageMakerTuningJobRuntimeS;
  NotifyArgs notify;
};

void Run(const RunArgs& a) {
  // The progress line and the summary speak for the run; the components' informational log lines
  // (the GP engine chosen, ...) are in `hpo events` and broke the display between redraws.
  spdlog::set_level(spdlog::level::warn);
  if (a.workers > 0 && static_cast<size_t>(a.workers) < a.instance_types.size()) {
    Fail(2, "--instance-type: " + std::to_string(a.instance_types.size()) + " types for " +
                std::to_string(a.workers) + " workers; each local worker serves one type (use --workers " +
                std::to_string(a.instance_types.size()) + " or more)");
  }
  const std::vector<coordinator::NotifyTarget> notify_targets = NotifyTargets(a.notify);
  // A type nobody here serves is a typo more often than not (SageMaker refuses it): said now,
  // not after the workers started. The local workers serve the catalog's and --instance-type's.
  const std::set<std::string> known = KnownInstanceTypes(a.instance_catalog, a.instance_types);
  proto::ValidationLimits limits = a.limits;
  limits.known_instance_types = &known;
  proto::ParsedSpec parsed = LoadSpec(a.spec, limits);
  const proto::TuningJobSpec& spec = parsed.document.spec;
  const std::string name = *spec.hyper_parameter_tuning_job_name;
  // A local training program that cannot run here would fail every training job, one by one:
  // say so before starting any. `from`: where it was named.
  auto check_program = [&](const std::string& program, const std::string& from) {
    std::error_code fe;
    const char* wrong = !fs::exists(program, fe)      ? "does not exist"
                        : fs::is_directory(program, fe) ? "is a directory"
                        : ::access(program.c_str(), X_OK) != 0 ? "is not executable (chmod +x it, with a #! line)"
                                                               : nullptr;
    if (wrong) Fail(2, from + ": the training program " + program + " " + wrong + "; nothing was started");
    // Its #! line's interpreter: on a cluster another worker may have it; here no worker does.
    if (Status runs = worker::CheckExecutable(program, program); !runs.ok()) {
      Fail(2, from + ": " + runs.message() + "; nothing was started");
    }
  };
  std::set<std::string> spec_images;
  for (const proto::TrainingJobDefinition* d : spec.Definitions()) {
    if (!d->algorithm_specification || !d->algorithm_specification->training_image) continue;
    std::string program = *d->algorithm_specification->training_image;
    spec_images.insert(program);
    if (program.rfind("file://", 0) == 0) program = program.substr(7);
    if (program.empty() || program[0] != '/') continue;  // a container image
    check_program(program, a.spec);
  }
  // An --image mapping's program the same way (a typo in its path failed every training job as
  // an infrastructure error); and a mapping whose NAME no TrainingImage has is said (a tag left
  // off mapped nothing, and the image was pulled from its registry instead).
  const std::map<std::string, std::string> images = ParseImages(a.images);
  for (const auto& [image, command] : images) {
    if (!spec_images.count(image)) {
      std::string theirs;
      for (const std::string& i : spec_images) theirs += (theirs.empty() ? "" : ", ") + i;
      std::cerr << "hpo run: note: --image " << image << " matches no TrainingImage of " << a.spec << " (it has "
                << theirs << "): a mapping applies to the exact name, tag included\n";
      continue;
    }
    const std::string program = command.substr(0, command.find_first_of(" \t"));
    if (!program.empty() && program[0] == '/') check_program(program, "--image " + image);
  }
  // A container image with no runtime to run it and no --image mapping would fail every training
  // job, one by one, within a second of starting: said before starting any.
  const worker::ContainerConfig container = ResolveContainer(a.container);
  if (!container.enabled()) {
    for (const proto::TrainingJobDefinition* d : spec.Definitions()) {
      if (!d->algorithm_specification || !d->algorithm_specification->training_image) continue;
      const std::string& image = *d->algorithm_specification->training_image;
      if (image.empty() || image[0] == '/' || image.rfind("file://", 0) == 0 || images.count(image)) continue;
      Fail(2, a.spec + ": the training image " + image + " is a container image, and " +
                  (container.turned_off ? std::string("--container-runtime none turned containers off")
                                        : std::string("no container runtime (podman, docker, apptainer) is installed")) +
                  "; map it to a program here with --image " + image + "=COMMAND" +
                  (container.turned_off ? std::string(", or leave out --container-runtime none")
                                        : std::string(", or install podman")) +
                  "; nothing was started");
    }
  }
  // s3:// data, output or checkpoints with no S3 credentials here: its local workers, which share
  // this environment, would serve none of its training jobs (a coordinator's placement keeps
  // them from workers without S3), and the job would wait for ever: said before starting any.
  const auto definitions = spec.Definitions();
  if (std::any_of(definitions.begin(), definitions.end(), [](const auto* d) { return proto::UsesS3(*d); })) {
    if (auto cfg = S3Config::FromEnvironment(a.s3_endpoint); !cfg.ok()) {
      Fail(2, a.spec + ": its training jobs read or write s3:// (data, output, checkpoints or code), and " +
                  cfg.status().message() + "; give S3 credentials (and --s3-endpoint for a store other than AWS), "
                  "or use file:// paths; nothing was started");
    }
  }
  std::string state_dir = a.state_dir.empty() ? DefaultStateDir(name) : a.state_dir;
  std::error_code ec;
  // A directory this run makes goes again when the run is refused before its job is accepted (a
  // warm start's missing parent, a --dashboard port in use): left behind empty, it broke `hpo
  // compare hpo-runs/JOB-*` ("holds no tuning job"). Declared before what it holds open.
  struct RemoveIfRefused {
    std::string dir;
    bool default_dir = false;
    bool armed = false;
    ~RemoveIfRefused() {
      if (!armed) return;
      std::error_code ec;
      fs::remove_all(dir, ec);
      if (default_dir) fs::remove(fs::path(dir).parent_path(), ec);  // hpo-runs/, only if that leaves it empty
    }
  };
  const bool made_here = !fs::exists(state_dir, ec);
  RemoveIfRefused remove_if_refused{state_dir, a.state_dir.empty(), made_here};
  if (Status made = CreatePrivateDirectory(state_dir); !made.ok()) Fail(3, made.message());
  // One process per state directory: a second one would run the same training jobs again.
  auto lock = LockDirectory(state_dir, "hpo run " + a.spec);
  if (!lock.ok()) FailLocking(lock.status(), "wait for it to end, or pass another --state-dir (or none, for a new one)");
  // Commits do not wait for the disk under the core's mutex; the dispatcher waits before answering.
  WarnIfEmptyDatabase(state_dir);
  auto store = coordinator::SqliteJobStore::Open(state_dir + "/hpo.db", true, coordinator::Durability::kDeferred);
  if (!store.ok()) FailOpeningStore(store.status(), state_dir);
  if (Status w = (*lock)->Watch(state_dir + "/hpo.db"); !w.ok()) Fail(3, w.message());

  coordinator::CoreOptions co;
  const std::string stopped_marker = state_dir + "/stopped-for-its-state-database";
  co.on_store_failure = StopOnStoreFailure("hpo run", state_dir, "run the same command again", stopped_marker);
  co.lost_at_first_registration_interrupted = ::access(stopped_marker.c_str(), F_OK) == 0;
  co.default_grace_period_s = a.grace_s;
  co.lease_ms = 10000;
  co.assign_ahead = !a.no_assign_ahead;
  co.limits = a.limits;
  co.max_tuning_job_runtime_s = a.max_tuning_job_runtime_s;
  co.quota_command = "hpo run";
  co.propose_off_core = true;  // the dispatcher's proposer thread makes Bayesian proposals
  co.catalog = LoadInstanceCatalog(a.instance_catalog);
  if (!notify_targets.empty()) co.notify = coordinator::NotifyFunction(notify_targets, coordinator::SystemNowMs);
  // The spec the job runs: Autotune's choices made (Submit makes the same ones; printed below).
  auto tuned = coordinator::ResolveAutotune(spec, co.limits, parsed.spelling);
  if (!tuned.ok()) Fail(2, a.spec + ": " + tuned.status().message() + "; nothing was started");
  const proto::TuningJobSpec& effective = tuned->spec;
  const int64_t job_size = MaxJobsOf(effective);  // (a Grid's counted once, not at every progress line)
  coordinator::CoordinatorCore core(store->get(), co);
  if (co.lost_at_first_registration_interrupted) ::unlink(stopped_marker.c_str());  // read: this run's
  if (Status s = core.LoadStatus(); !s.ok()) {
    Fail(3, "hpo run: " + s.message() + " (in " + state_dir + "); nothing was started or changed: fix what keeps it "
            "from being read (the disk, its permissions) and run the same command again");
  }
  for (const std::string& line : core.LoadNotes()) std::cerr << "hpo run: " << line << "\n";
  for (const std::string& note : proto::BuiltInAlgorithmNotes(effective, parsed.spelling)) {
    std::cerr << "hpo run: note: " << note << "\n";
  }
  for (const std::string& note : proto::NotEnforced(effective, parsed.spelling)) {
    std::cerr << "hpo run: note: " << note << "\n";
  }
  coordinator::DispatcherOptions dopt;
  dopt.listen = "tcp://127.0.0.1:*";
  // Keys of this run's own, so that only its workers connect: loopback alone let any user of the
  // machine register a worker, take the run's training jobs and read their Environment and
  // hyperparameters. The allow-list file lives in the state directory (0700).
  coordinator::curve::KeyPair run_coordinator_key, run_worker_key;
  if (coordinator::curve::CheckCurveAvailable().ok()) {
    auto ck = coordinator::curve::GenerateKeyPair();
    auto wk = coordinator::curve::GenerateKeyPair();
    const std::string allow = state_dir + "/" + coordinator::curve::kAllowListFile;
    if (!ck.ok() || !wk.ok() ||
        !WriteFileAtomically(allow, "# this hpo run's workers (made at each start)\n" + wk->public_key + " local\n",
                             Durability::kAtomicOnly, 0600).ok()) {
      Fail(3, "hpo run: cannot make this run's worker keys in " + state_dir + " (" +
                  (!ck.ok() ? ck.status().message() : !wk.ok() ? wk.status().message() : "writing " + allow) + ")");
    }
    run_coordinator_key = *ck;
    run_worker_key = *wk;
    dopt.curve_secret_key = ck->secret_key;
    dopt.curve_allow_list = allow;
  } else {
    std::cerr << "hpo run: note: this libzmq has no CurveZMQ: any user of this machine can connect a worker to this "
                 "run (its loopback port)\n";
  }
  dopt.log = [](const std::string&) {};  // the progress display speaks for the run
  dopt.proposer_threads = 1;  // one tuning job: one proposal request out at a time
  dopt.deferred_store = store->get();
  dopt.on_sync_failure = co.on_store_failure;
  coordinator::Dispatcher dispatcher(&core, dopt);
  if (Status s = dispatcher.Bind(); !s.ok()) Fail(3, s.message());

  // This coordinator's HTTP API on loopback, always: with --dashboard it serves the pages (at
  // /ui/) unsigned, as a browser needs; without, it takes only requests signed with this run's own
  // keys, which DIR/control.json holds for `hpo stop ... --state-dir DIR` (cli/run_control.h).
  coordinator::HttpApiOptions hopt;
  hopt.dashboard.subtitle = "hpo run " + a.spec;
  hopt.dashboard.cli_flags = " --state-dir " + state_dir;  // readable while the run holds it
  hopt.log = [](const std::string&) {};
  RunControl control;
  if (a.dashboard_port < 0) {
    auto keys = NewRunKeys();
    if (!keys.ok()) Fail(3, keys.status().message());
    control = *keys;
    auto creds = coordinator::sigv4::Credentials::Parse(control.access_key_id + " " + control.secret_access_key,
                                                        "hpo run");
    if (!creds.ok()) Fail(3, creds.status().message());
    hopt.require_sigv4 = true;
    hopt.credentials = std::make_shared<const coordinator::sigv4::Credentials>(std::move(creds).value());
  }
  auto api = std::make_unique<coordinator::HttpApi>(&dispatcher, hopt);
  if (Status s = api->Bind("127.0.0.1", std::max(a.dashboard_port, 0)); !s.ok()) {
    Fail(3, a.dashboard_port >= 0 ? "--dashboard: " + s.message() + "; pick another port, or 0 for any free one"
                                  : "cannot serve the run's API on loopback: " + s.message());
  }
  control.url = "http://127.0.0.1:" + std::to_string(api->port());
  control.pid = static_cast<long>(::getpid());
  if (Status s = WriteRunControl(state_dir, control); !s.ok()) Fail(3, s.message());
  std::thread api_thread([&api] { api->Serve(); });
  auto stop_api = [&] {
    if (!api) return;
    RemoveRunControl(state_dir);
    dispatcher.BeginShutdown();
    api->Stop();
    api_thread.join();
    api.reset();
  };

  // SIGHUP (the terminal or the SSH session went away) is no request to stop: the job is left to
  // be resumed (see the loop below). It stopped the job for good, and the same command was then
  // refused, though the README promised it resumes a job whose terminal closed.
  InstallSignalHandlers();
  InstallHangupHandler();
  InstallUsr1Handler();  // said and ignored (the loop below): it killed the run and its training jobs
  std::atomic<bool> stop_dispatcher{false}, stop_workers{false};
  std::thread dispatch_thread([&] { dispatcher.Run(stop_dispatcher); });
  // Started once the run is known to go ahead: a run refused below (its state directory holds
  // an ended job) posted the chat lines of events a run before had left undelivered.
  std::optional<NotifierThread> notifier;

  // Default: one local worker per GPU (each owning that GPU), else 2 CPU workers.
  const worker::GpuDetection gpus = worker::DetectGpus();
  const bool per_gpu = a.workers <= 0 && !gpus.devices.empty();
  int nworkers = a.workers > 0 ? a.workers : (per_gpu ? static_cast<int>(gpus.devices.size()) : 2);
  RaiseFileLimit(256 + 12ull * static_cast<uint64_t>(nworkers) * static_cast<uint64_t>(std::max(a.slots, 1)),
                 std::to_string(nworkers) + " local workers of " + std::to_string(a.slots) + " slot(s)");
  nworkers = std::max(nworkers, static_cast<int>(a.instance_types.size()));
  std::vector<std::unique_ptr<worker::WorkerAgent>> agents;
  std::vector<std::thread> worker_threads;
  std::string log_path = state_dir + "/workers.log";
  auto wlog = std::make_shared<std::mutex>();
  for (int i = 0; i < nworkers; ++i) {
    worker::AgentOptions wo;
    wo.connect = dispatcher.endpoint();
    wo.worker_id = "local-" + std::to_string(i + 1);
    // Each its own loopback address (Linux routes all of 127.0.0.0/8 to lo): the hosts of a
    // multi-host training job resolve algo-N to different addresses (as root, where the names are
    // mounted), so a program that binds its own host's address and a fixed port (a rendezvous
    // server, a parameter server) does not collide with the same program on another host.
    wo.host = "127.0.0." + std::to_string(i % 254 + 1);
    wo.slots = static_cast<uint32_t>(a.slots);
    wo.work_dir = state_dir + "/" + wo.worker_id;
    wo.keep_trial_files = a.keep_trial_files;
    wo.images = images;
    wo.s3_endpoint = a.s3_endpoint;
    wo.container = container;
    wo.orphan_guard = "/proc/self/exe";
    wo.curve_server_key = run_coordinator_key.public_key;
    wo.curve_public_key = run_worker_key.public_key;
    wo.curve_secret_key = run_worker_key.secret_key;
    if (per_gpu && static_cast<size_t>(i) < gpus.devices.size()) wo.gpus = {gpus.devices[static_cast<size_t>(i)]};
    if (!a.instance_types.empty()) wo.instance_type = a.instance_types[static_cast<size_t>(i) % a.instance_types.size()];
    // Each line with its time and worker: several workers write this one file.
    wo.log = [wlog, log_path, id = wo.worker_id](const std::string& l) {
      std::lock_guard<std::mutex> lock(*wlog);
      if (FILE* f = std::fopen(log_path.c_str(), "a")) {
        std::fprintf(f, "%s [%s] %s\n", LogTime().c_str(), id.c_str(), l.c_str());
        std::fclose(f);
      }
    };
    agents.push_back(std::make_unique<worker::WorkerAgent>(wo));
  }
  // A local worker that cannot run (its work directory refused) says why in the loop below,
  // which ends the run: it waited for a worker that had gone, saying "no worker is registered".
  auto worker_error = std::make_shared<std::pair<std::mutex, std::string>>();
  auto failed_worker = [worker_error] {
    std::lock_guard<std::mutex> lock(worker_error->first);
    return worker_error->second;
  };
  for (auto& ag : agents) {
    worker::WorkerAgent* p = ag.get();
    worker_threads.emplace_back(
        [p, &stop_workers, worker_error, id = "local-" + std::to_string(worker_threads.size() + 1)] {
          const Status s = p->Run(stop_workers);
          if (s.ok() || stop_workers.load()) return;
          std::lock_guard<std::mutex> lock(worker_error->first);
          if (worker_error->second.empty()) worker_error->second = "local worker " + id + " stopped: " + s.message();
        });
  }

  // The job may be in the state directory already: interrupted (the process killed, the machine
  // rebooted), it resumes; ended, it is not run again.
  std::string existing_status;
  bool same_spec = true;
  dispatcher
      .WithCore([&](coordinator::CoordinatorCore& c) {
        if (const coordinator::TuningJob* j = c.FindJob(name)) {
          existing_status = j->status;
          same_spec = j->spec == effective;
        }
        return Status::Ok();
      })
      .ok();
  auto shutdown = [&] {
    stop_workers = true;
    for (auto& t : worker_threads) t.join();
    stop_dispatcher = true;
    dispatch_thread.join();
  };
  const bool resuming = existing_status == "InProgress" || existing_status == "Stopping";
  if (!existing_status.empty() && (!resuming || !same_spec)) {
    shutdown();
    stop_api();
    Fail(2, state_dir + " already holds the tuning job " + name + " (" + existing_status + ")" +
                (resuming ? " with a different spec; " : "; ") +
                "leave out --state-dir to run it afresh in a new directory; its history: hpo events " + name +
                " --state-dir " + state_dir);
  }
  notifier.emplace(&dispatcher, store->get(), notify_targets);
  // The local workers register in milliseconds: the job is submitted once they have (or after
  // 10 s regardless), so that its history does not open with "no registered worker can serve
  // ...: no worker is registered", which was only ever true for those milliseconds.
  for (int waited_ms = 0; waited_ms < 10000; waited_ms += 10) {
    size_t registered = 0;
    dispatcher
        .WithCore([&](coordinator::CoordinatorCore& c) {
          registered = c.Workers().size();
          return Status::Ok();
        })
        .ok();
    if (static_cast<int>(registered) >= nworkers) break;
    if (const std::string failed = failed_worker(); !failed.empty()) {  // before the job is submitted: no record
      std::cerr << "hpo: " << failed << "\n";
      shutdown();
      stop_api();
      Exit(3);
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  // A type none of the local workers can ever serve will not run here: said, with the flags that
  // would serve it, and exit 2. A job none of whose training jobs started leaves no record.
  auto cannot_run_here = [&](const std::string& never) {
    const bool tty = ::isatty(STDERR_FILENO);
    std::cerr << (tty ? "\n" : "") << "hpo: " << name << " cannot run on this machine: " << never << "\n  ";
    // Every type the spec asks for (all definitions, all instance groups), so that following
    // the advice once is enough.
    // Each host's type, for the definition with the most hosts (local worker i serves the i-th
    // --instance-type, round robin: one flag per host gives each group its count), then the other
    // definitions' types. A heterogeneous spec's hints took turns: "--instance-type A
    // --instance-type B" (2 workers, too few), then "--workers 3" (without the types).
    std::vector<std::string> types, hosts;
    bool groups = false;
    for (const auto* def : effective.Definitions()) {
      // With instance types to choose from (HyperParameterTuningResourceConfig), the first.
      const std::vector<proto::ResourceConfig> options = proto::ResourceOptions(*def);
      if (options.empty()) continue;
      std::vector<std::string> own;
      if (options[0].instance_type) {
        own.assign(static_cast<size_t>(std::max<int64_t>(1, options[0].instance_count.value_or(1))), *options[0].instance_type);
      }
      for (const auto& g : options[0].instance_groups) {
        groups = true;
        for (int64_t i = 0; i < std::max<int64_t>(1, g.instance_count.value_or(1)); ++i) own.push_back(g.instance_type.value_or(""));
      }
      if (own.size() > hosts.size()) hosts = own;
      for (const auto& t : own) {
        if (!t.empty() && std::find(types.begin(), types.end(), t) == types.end()) types.push_back(t);
      }
    }
    const bool mixed = types.size() > 1;
    std::string flags;
    for (const auto& t : mixed ? hosts : types) flags += t.empty() ? "" : " --instance-type " + t;
    if (mixed) {
      for (const auto& t : types) {
        if (std::find(hosts.begin(), hosts.end(), t) == hosts.end()) flags += " --instance-type " + t;
      }
    }
    // The state directory given, kept in the advice: without it the command started the job anew
    // elsewhere, the interrupted one left behind (a CLI pass).
    const std::string keep_dir = a.state_dir.empty() ? "" : " --state-dir " + ShellWord(a.state_dir);
    const int need_workers = std::max(static_cast<int>(hosts.size()), nworkers);
    const std::string more_workers = need_workers > nworkers ? " --workers " + std::to_string(need_workers) : "";
    const std::string spec_types = groups ? "instance types (ResourceConfig.InstanceGroups)" : "ResourceConfig.InstanceType";
    // "a training job of 3 hosts needs 3 workers, and 2 are registered": more local workers.
    const auto needs = never.find(" hosts needs ");
    if (needs != std::string::npos && never.find(" workers, and ") != std::string::npos) {
      const size_t at = needs + std::string(" hosts needs ").size();
      const std::string n = never.substr(at, never.find(' ', at) - at);
      std::cerr << "Give it as many local workers as hosts: hpo run " << a.spec << " --workers " << n
                << (a.instance_types.empty() ? "" : flags) << keep_dir << " (each local worker is one host"
                << (a.instance_types.empty() || !mixed ? "" : ", and serves the type of the --instance-type in its turn")
                << ").\n";
    } else if (never.find("VolumeSizeInGB") != std::string::npos) {
      std::cerr << "Free space in the workers' directory (--state-dir), or lower the spec's "
                   "ResourceConfig.VolumeSizeInGB to what the training jobs need.\n";
    } else if (never.find(" GPU") != std::string::npos && never.find(" has 0 GPUs") != std::string::npos) {
      // --instance-type does not conjure GPUs: following that advice failed again.
      std::cerr << "This machine has no GPUs for it. Change the spec's ResourceConfig.InstanceType to a CPU type"
                   " (ml.m5.large, ml.c5.xlarge, ...; hpo instance-types lists them and what this machine covers), or run a"
                   " coordinator with GPU workers (hpo worker --gpus auto on each GPU machine).\n";
    } else if (a.instance_types.empty()) {
      std::cerr << "To run it here anyway, let the local workers serve its types: hpo run " << a.spec << more_workers
                << (flags.empty() ? " --instance-type TYPE" : flags) << keep_dir
                << " (worker i serves the i-th type, round robin; add --workers N for more). Or change";
      std::cerr << " the spec's " << spec_types << " to a type this machine covers (hpo instance-types"
                   " lists them), or run a coordinator with workers that serve it"
                   " (hpo worker --instance-type TYPE).\n";
    } else {
      std::cerr << "--instance-type serves a type whatever this machine's CPUs and memory, but a GPU type"
                   " still needs its GPUs here" << (flags.empty() ? "" : "; the spec asks for" + flags)
                << ". Change the spec's " << spec_types << " to a type this machine covers (hpo"
                   " instance-types lists them), or run a coordinator with workers that serve it"
                   " (hpo worker --instance-type TYPE).\n";
    }
    // A job none of whose training jobs ever started leaves no record behind in a --state-dir
    // given (rerun there, it was "resumed" as if interrupted); one that ran before stays, to
    // be resumed with other flags.
    dispatcher
        .WithCore([&](coordinator::CoordinatorCore& c) {
          for (const auto* t : c.TrialsOf(name)) {
            if (t->started || t->start_ms > 0) return Status::Ok();
          }
          std::vector<coordinator::Outgoing> ignored;
          const coordinator::TuningJob* j = c.FindJob(name);
          if (j && !j->Terminal()) {
            if (Status s = c.Stop(name, dispatcher.Now(), &ignored); !s.ok()) return s;
          }
          return c.Delete(name, dispatcher.Now());
        })
        .ok();
    shutdown();
    stop_api();
    remove_if_refused.armed = made_here;  // a directory of its own for a job that never ran goes
    Exit(2);
  };
  // Before anything starts: a training job definition whose type none of the local workers can
  // ever serve (a multi-definition job ran its other definitions' training jobs first, and was
  // then refused with them left InProgress).
  {
    std::string never;
    dispatcher
        .WithCore([&](coordinator::CoordinatorCore& c) {
          if (static_cast<int>(c.Workers().size()) == nworkers) never = c.NeverServable(effective);
          return Status::Ok();
        })
        .ok();
    if (!never.empty()) cannot_run_here(never);
  }
  std::vector<coordinator::Outgoing> out;
  Result<std::string> arn = std::string();
  if (!resuming) {
    arn = dispatcher.WithCore([&](coordinator::CoordinatorCore& c) {
      const bool resource = parsed.spelling == proto::Spelling::kCrd;
      return c.Submit(spec, parsed.spelling, dispatcher.Now(), &out,
                      resource ? parsed.document.metadata : nlohmann::ordered_json::object());
    });
  }
  if (!arn.ok()) {
    shutdown();
    stop_api();
    std::string why = arn.status().message();
    // `hpo run` is a coordinator of its own: a parent is a job run with the same --state-dir.
    if (why.find("no such tuning job on this coordinator") != std::string::npos) {
      why += "; with hpo run, run the parent job first with the same --state-dir (" + state_dir + ")";
    }
    // A refusal of the spec (a quota, counting a warm start's parents, is one: SageMaker's
    // ResourceLimitExceeded) exits 2, as the same limit checked before the job starts does;
    // only a store that cannot be written is the service's failure (3).
    const StatusCode code = arn.status().code();
    Fail(code == StatusCode::kInvalidArgument || code == StatusCode::kResourceExhausted ? 2
         : code == StatusCode::kAlreadyExists || code == StatusCode::kNotFound        ? 1
                                                                                     : 3,
         why);
  }
  dispatcher.Post(std::move(out));
  remove_if_refused.armed = false;  // accepted (or resumed): its state is the run's from here

  bool tty = ::isatty(STDERR_FILENO);
  if (resuming) std::cerr << "hpo: resuming " << name << " from " << state_dir << " (it was interrupted)\n";
  std::cerr << "hpo: running " << name << " (" << effective.hyper_parameter_tuning_job_config->strategy.value_or("")
            << ") on " << nworkers << " local worker" << (nworkers == 1 ? "" : "s") << "; state in " << state_dir
            << "\n";
  for (const coordinator::AutotuneChoice& c : tuned->choices) {
    std::cerr << "hpo: Autotune chose " << c.field << ": " << c.value << " (" << c.reason << ")\n";
  }
  if (a.dashboard_port >= 0) {
    std::cerr << "hpo: dashboard at http://127.0.0.1:" << api->port() << "/ui/jobs/" << name << "\n";
  }
  int64_t start = dispatcher.Now();
  std::string last_line;
  int64_t last_printed_ms = 0;  // not a terminal: a line when a count changes, else every 30 s
  std::string said_waiting;     // the waiting reason last printed (printed again when it changes)
  constexpr int64_t kWaitingSaidAfterMs = 3000;
  int handled_signals = 0;
  bool leaving = false, left = false;  // SIGHUP: the job is left InProgress, to be resumed
  int64_t leave_by_ms = 0;
  proto::DescribeTuningJobResponse desc;
  Housekeeping housekeeping("hpo run");
  for (;;) {
    std::this_thread::sleep_for(std::chrono::milliseconds(200));
    housekeeping.Tick();
    StopIfDatabaseGone(**lock, dispatcher, **store, "hpo run", state_dir);
    if (g_usr1.exchange(0) > 0) {
      std::cerr << (tty ? "\n" : "") << "hpo: SIGUSR1 ignored: it is the interruption notice of hpo worker --spot, "
                << "and hpo run's local workers are not spot capacity\n";
    }
    int sigs = g_signals.load();
    if (sigs > handled_signals) {
      handled_signals = sigs;
      if (sigs == 1) {
        std::cerr << (tty ? "\n" : "") << "hpo: stopping " << name
                  << " (running training jobs get SIGTERM and their grace period; interrupt again to quit now)\n";
        std::vector<coordinator::Outgoing> so;
        dispatcher.WithCore([&](coordinator::CoordinatorCore& c) { return c.Stop(name, dispatcher.Now(), &so); })
            .ok();
        dispatcher.Post(std::move(so));
      } else {
        std::cerr << (tty ? "\n" : "") << "hpo: quitting now; running training jobs get SIGKILL\n";
        for (auto& ag : agents) ag->Abort();
        break;
      }
    }
    if (const std::string failed = failed_worker(); !failed.empty()) {
      std::cerr << (tty ? "\n" : "") << "hpo: " << failed << "\n";
      left = true;  // the job stays InProgress, to be resumed once the worker can run
      break;
    }
    int64_t running = 0, active = 0;  // active: started, or assigned to a worker and starting
    auto d = dispatcher.WithCore([&](coordinator::CoordinatorCore& c) {
      for (const auto* t : c.TrialsOf(name)) {
        running += t->Active() && t->started ? 1 : 0;
        active += t->Active() ? 1 : 0;
      }
      return c.Describe(name, dispatcher.Now());
    });
    if (!leaving && g_hangups.load() > 0 && handled_signals == 0) {
      // Its training jobs stop as after a spot notice (SIGTERM, their grace period; Interrupted,
      // run again without spending a retry) and the job stays InProgress in its state directory.
      leaving = true;
      leave_by_ms = dispatcher.Now() + (a.grace_s + 15) * 1000;
      std::cerr << (tty ? "\n" : "") << "hpo: the terminal went away (SIGHUP): leaving " << name
                << " to be resumed; running training jobs get SIGTERM and their grace period\n";
      for (auto& ag : agents) ag->Interrupt("hpo run's terminal went away (SIGHUP)", /*planned=*/true);
    }
    if (leaving && (running == 0 || dispatcher.Now() >= leave_by_ms)) {
      left = true;
      break;
    }
    if (!d.ok()) continue;
    desc = *d;
    std::string line = ProgressLine(desc, dispatcher.Now() - start, job_size, running,
                                    tty ? TerminalColumns(STDERR_FILENO) : 0);
    if (tty) {
      std::cerr << "\r\033[K" << line << std::flush;
    } else if (line.substr(0, line.size() - 8) != last_line.substr(0, last_line.size() > 8 ? last_line.size() - 8 : 0) ||
               dispatcher.Now() - last_printed_ms >= 30000) {
      // Long training jobs change no count for minutes: the elapsed time says it is alive.
      std::cerr << line << "\n";
      last_printed_ms = dispatcher.Now();
    }
    last_line = line;
    std::string st = *desc.status.hyper_parameter_tuning_job_status;
    if (st == "Completed" || st == "Failed" || st == "Stopped") break;
    // Once every local worker has registered, a type none of them can ever serve will not run
    // here: say so instead of waiting forever.
    std::string never, waiting;
    int64_t waiting_since = 0;
    dispatcher
        .WithCore([&](coordinator::CoordinatorCore& c) {
          const coordinator::TuningJob* j = c.FindJob(name);
          if (j) waiting = j->waiting_reason, waiting_since = j->waiting_since_ms;
          // A reason from before the workers registered ("no worker is registered") is stale: it
          // refused a job under load (CI) that the next scheduling pass would have placed.
          if (j && static_cast<int>(c.Workers().size()) == nworkers &&
              j->waiting_reason.rfind("no registered worker", 0) == 0 &&
              j->waiting_reason.find("no worker is registered") == std::string::npos) {
            never = j->waiting_reason;
          }
          return Status::Ok();
        })
        .ok();
    if (!never.empty()) cannot_run_here(never);
    // Nothing runs and nothing will until something changes (a worker rests after failed starts,
    // or is cordoned): the counts alone read as a hang. Say why once it has lasted a moment, and
    // again when the reason changes.
    if (active == 0 && !waiting.empty() && waiting_since > 0 && dispatcher.Now() - waiting_since >= kWaitingSaidAfterMs &&
        waiting != said_waiting) {
      std::cerr << (tty ? "\r\033[K" : "") << "hpo: nothing runs: " << waiting << "\n";
      if (tty) std::cerr << last_line << std::flush;
      said_waiting = waiting;
    } else if (waiting.empty() && !said_waiting.empty()) {
      said_waiting.clear();
    }
  }
  if (tty) std::cerr << "\n";
  shutdown();
  if (!left && handled_signals < 2) {  // not after "quit now"
    // The job's last events (its end) go out before the process does, for up to 30 s.
    if (const int64_t waiting = notifier->Drain(30); waiting > 0) {
      std::cerr << "hpo: " << waiting << " notification(s) not delivered: the URL did not take them within 30 s. "
                << "They are kept in " << state_dir << "; a coordinator on it delivers them: hpo coordinator "
                << "--state-dir " << state_dir << " with the same --notify options\n";
    }
  }
  notifier->Stop();
  if (left) {
    // This command's own options (the workers' types, slots, images): without them the resume
    // refused the job, or ran it on other workers (a CLI pass).
    std::cerr << "hpo: " << name << " stays InProgress in " << state_dir << "; to resume it: "
              << ResumeCommand(state_dir) << "\n";
    stop_api();
    Exit(3);
  }

  // Read through the dispatcher: the dashboard's threads may be reading the core too.
  std::vector<proto::TrainingJobSummary> trials;
  std::optional<proto::TuningJobDocument> doc;
  std::optional<coordinator::SuggestionStats> stats;
  Curves curves;  // a job that stops training jobs early: its importance compares them by these
  std::string ended;  // why it completed (what its JobCompleted event says), from the core itself
  dispatcher.WithCore([&](coordinator::CoordinatorCore& c) {
    for (const auto* t : c.TrialsOf(name)) trials.push_back(c.Summary(*t));
    if (const coordinator::TuningJob* j = c.FindJob(name)) ended = j->completion_reason;
    if (auto final_desc = c.Describe(name); final_desc.ok()) desc = *final_desc;
    if (coordinator::StopsTrainingJobsEarly(desc.spec)) {
      if (auto all = c.Curves(name); all.ok()) curves = std::move(*all);
    }
    if (auto d = c.DescribeDocument(name); d.ok()) doc = *d;
    if (const coordinator::SuggestionStats* st = c.Suggestions(name)) stats = *st;
    return 0;
  });
  if (a.output == "json") {
    std::cout << coordinator::DescribeAsSageMaker(desc).dump(2) << "\n";
  } else if (a.output == "yaml") {
    if (doc) std::cout << proto::ToYaml(proto::EncodeCrdDocument(*doc));
  } else {
    PrintSummary(desc, trials, /*show_ranges=*/false, /*waiting=*/"", curves, ended);
    if (const coordinator::SuggestionStats* st = stats ? &*stats : nullptr; st && st->count > 0) {
      char buf[256];
      // Rounds, not configurations: a round proposes one for each free parallel slot (a user
      // counted 38 "suggestions" for 40 training jobs).
      std::snprintf(buf, sizeof buf, "\n  proposal rounds: %llu in %.2f s (mean %.3f s, slowest %.3f s)",
                    static_cast<unsigned long long>(st->count), st->seconds_sum, st->seconds_sum / st->count,
                    st->seconds_max);
      std::cout << buf;
      if (st->fallbacks > 0) {
        std::cout << ", " << st->fallbacks
                  << " not from the model (its space-filling start before enough observations, or random search "
                     "when it could not be fitted)";
      }
      std::cout << "\n";
    }
    std::cout << "\n  look again: hpo describe " << name << " --state-dir " << state_dir << " -o table\n";
    std::cout << "  training jobs: hpo trials " << name << " --state-dir " << state_dir << "\n";
    std::cout << "  logs: hpo logs TRAINING-JOB --state-dir " << state_dir << " (all lines: " << state_dir
              << "/local-*/trials/TRAINING-JOB/attempt-N/trial.log)\n";
    std::cout << "  history: hpo events " << name << " --state-dir " << state_dir << "\n";
    std::cout << "  pages: hpo dashboard --state-dir " << state_dir << "\n";
  }
  if (a.dashboard_port >= 0 && ::isatty(STDIN_FILENO) && handled_signals < 2) {
    // Someone is watching: keep the final pages up until they are done with them.
    std::cout << std::flush;
    std::cerr << "hpo: the dashboard stays at http://127.0.0.1:" << api->port() << "/ui/jobs/" << name
              << " until Ctrl-C\n";
    const int seen = g_signals.load();
    while (g_signals.load() == seen) std::this_thread::sleep_for(std::chrono::milliseconds(200));
  }
  stop_api();
  Exit(*desc.status.hyper_parameter_tuning_job_status == "Completed" ? 0 : 1);
}

// ---- hpo coordinator ------------------------------------------------------------------------------

struct CoordinatorArgs {
  std::string listen = "tcp://0.0.0.0:7700";
  std::string http = "127.0.0.1:7780";
  std::string state_dir = "hpo-state";
  std::string keys;              // CurveZMQ key directory (hpo keygen)
  bool insecure = false;         // accept workers without CurveZMQ on a non-loopback endpoint
  std::string http_auth = "auto";  // auto | required | off
  std::string credentials;       // access keys for SigV4
  bool public_metrics = false;   // GET /hpo/v1/metrics without a signature
  std::string region;            // "" = any region
  std::string account_id = "000000000000";  // in the ARNs it gives
  int64_t lease_ms = 10000;
  int64_t heartbeat_ms = 1000;
  int64_t grace_s = 120;
  std::string instance_catalog;  // JSON file of instance types, merged over the defaults
  bool no_assign_ahead = false;
  int64_t gang_hold_after_s = 60;
  double spot_price_ratio = 0.3;
  std::string spot_workers_take = "managed-spot";  // managed-spot | all
  int proposer_threads = 2;
  proto::ValidationLimits limits;  // the quotas (AddQuotaOptions)
  int64_t max_concurrent_tuning_jobs = 100;
  int64_t max_tuning_job_runtime_s = coordinator::kSageMakerTuningJobRuntimeS;
  std::string log_events = "notable";  // notable | all | none
  NotifyArgs notify;
};

// --notify, --notify-pattern and --notify-secret-file as the Notifier's targets; exits 2 naming
// what is wrong (a URL that is not http(s), a pattern that does not parse, a secret not read, a
// URL=... for a URL not given, two settings for the same URLs).
std::vector<coordinator::NotifyTarget> NotifyTargets(const NotifyArgs& a) {
  std::vector<coordinator::NotifyTarget> targets;
  if (a.urls.empty() && a.chat_urls.empty()) {
    if (!a.patterns.empty() || !a.secret_files.empty()) {
      Fail(2, "--notify-pattern and --notify-secret-file apply to --notify targets: give --notify URL too");
    }
    return targets;
  }
  std::vector<std::string> all = a.urls;
  all.insert(all.end(), a.chat_urls.begin(), a.chat_urls.end());
  // The URLs first: what a pattern or secret says for one is read against them.
  for (size_t i = 0; i < all.size(); ++i) {
    const bool chat = i >= a.urls.size();
    if (const std::string problem = HttpUrlProblem(all[i]); !problem.empty()) {
      Fail(2, std::string(chat ? "--notify-chat " : "--notify ") + all[i] + ": " + problem + " (the URL the " +
                  (chat ? "messages" : "events") + " are POSTed to)");
    }
  }
  // Each value is for every URL, or (URL=VALUE) for one: "" -> the one for all; URL -> its own.
  auto per_url = [&](const std::vector<std::string>& values, const std::string& flag) {
    std::map<std::string, std::string> by_url;
    for (const std::string& v : values) {
      std::string url, value = v;
      if (v.rfind("http://", 0) == 0 || v.rfind("https://", 0) == 0) {
        // URL=VALUE: the value a pattern ({...} or @FILE) or a file; the URL is one given.
        size_t eq = std::string::npos;
        for (const std::string& u : all) {
          // The longest given URL it starts with (one URL may be another's prefix).
          if (v.size() > u.size() && v.compare(0, u.size(), u) == 0 && v[u.size()] == '=' &&
              (eq == std::string::npos || u.size() > eq)) {
            eq = u.size();
          }
        }
        if (eq == std::string::npos) {
          Fail(2, flag + " " + v + ": URL=VALUE sets it for one URL, and that URL must be given with --notify or "
                  "--notify-chat");
        }
        url = v.substr(0, eq);
        value = v.substr(eq + 1);
      }
      if (v.empty()) Fail(2, flag + " is empty: give " + (flag == "--notify-pattern" ? "an EventBridge event pattern "
                                                                                     "(JSON, or @FILE)" : "a file"));
      if (value.empty()) Fail(2, flag + " " + v + ": nothing after the URL=");
      if (!by_url.emplace(url, value).second) {
        Fail(2, flag + " is given twice for " + (url.empty() ? std::string("every URL") : url) +
                    ": give it once for all, and URL=VALUE for each URL that differs");
      }
    }
    return by_url;
  };
  std::map<std::string, std::optional<coordinator::EventPattern>> patterns;  // by the text given
  for (const auto& [url, given] : per_url(a.patterns, "--notify-pattern")) {
    std::string text = given;
    if (text[0] == '@') {
      auto read = ReadFile(text.substr(1));
      if (!read.ok()) Fail(2, "--notify-pattern " + given + ": " + read.status().message());
      text = *read;
    }
    auto parsed = coordinator::EventPattern::Parse(text);
    if (!parsed.ok()) {
      Fail(2, "--notify-pattern" + (url.empty() ? std::string() : " for " + url) + ": " + parsed.status().message() +
                  " (an EventBridge event pattern, e.g. {\"detail\": {\"TrainingJobStatus\": [\"Failed\"]}})");
    }
    patterns[url] = std::move(parsed).value();
  }
  std::map<std::string, std::string> secrets;
  for (const auto& [url, file] : per_url(a.secret_files, "--notify-secret-file")) {
    auto read = ReadFile(file);
    if (!read.ok()) Fail(2, "--notify-secret-file: " + read.status().message());
    std::string secret = *read;
    while (!secret.empty() && (secret.back() == '\n' || secret.back() == '\r')) secret.pop_back();
    if (secret.empty()) Fail(2, "--notify-secret-file " + file + " is empty");
    WarnIfOthersCanRead(file);
    secrets[url] = secret;
  }
  auto own_or_all = [](const auto& m, const std::string& url) {
    auto it = m.find(url);
    if (it == m.end()) it = m.find("");
    return it == m.end() ? typename std::decay_t<decltype(m)>::mapped_type{} : it->second;
  };
  for (size_t i = 0; i < all.size(); ++i) {
    const std::string& url = all[i];
    const bool chat = i >= a.urls.size();
    const std::string flag = chat ? "--notify-chat " : "--notify ";
    if (std::count(all.begin(), all.end(), url) > 1) Fail(2, flag + url + " is given twice");
    targets.push_back({url, own_or_all(patterns, url), own_or_all(secrets, url),
                       chat ? coordinator::NotifyTarget::Format::kChat : coordinator::NotifyTarget::Format::kEventBridge});
  }
  return targets;
}

void AddNotifyOptions(CLI::App* c, NotifyArgs* a) {
  c->add_option("--notify", a->urls,
                "POST each change of a training job's or tuning job's status to this URL (repeatable), as the "
                "\"SageMaker Training Job State Change\" and \"SageMaker HyperParameter Tuning Job State Change\" "
                "events SageMaker sends EventBridge: at least once, in order, kept across restarts, retried for 24 h")
      ->allow_extra_args(false);
  c->add_option("--notify-chat", a->chat_urls,
                "POST a line a person reads to this chat's incoming webhook when a tuning job ends (with its best "
                "training job) and when a training job fails (with why): {\"text\": ...} for Slack, Mattermost, "
                "Google Chat; {\"content\": ...} for a discord.com URL; an Adaptive Card for a Microsoft Teams "
                "Workflows URL (logic.azure.com, powerplatform.com). Repeatable, delivered as --notify's events are")
      ->allow_extra_args(false);
  c->add_option("--notify-pattern", a->patterns,
                "Only the events this EventBridge event pattern matches (JSON, or @FILE), e.g. "
                "'{\"detail-type\": [\"SageMaker HyperParameter Tuning Job State Change\"], \"detail\": "
                "{\"HyperParameterTuningJobStatus\": [\"Completed\", \"Failed\"]}}'. As URL=PATTERN, for that "
                "--notify or --notify-chat URL only (repeatable; a plain one is for the URLs without their own)")
      ->allow_extra_args(false);
  c->add_option("--notify-secret-file", a->secret_files,
                "Sign each notification: the header X-Hpo-Signature-256 is sha256=HEX of the body's HMAC-SHA256 under "
                "this file's key. As URL=FILE, for that URL only (repeatable, as --notify-pattern)")
      ->allow_extra_args(false);
}

// Whether `hpo coordinator --log-events notable` echoes an event: all but the routine ones a
// training job has on its way (its placement, its model suggestion, a completed exit), which
// `hpo events` and the dashboard list.
bool NotableEvent(const std::string& kind, const std::string& message) {
  if (kind == "Assigned" || kind == "AssignedAhead" || kind == "Suggestion") return false;
  if (kind == "TrialExited") return message.rfind("Completed", 0) != 0;
  return true;
}

void Coordinator(const CoordinatorArgs& a) {
  if (a.heartbeat_ms >= a.lease_ms) {
    Fail(2, "--heartbeat-ms " + std::to_string(a.heartbeat_ms) + " must be shorter than --lease-ms " +
                std::to_string(a.lease_ms) + " (a few heartbeats fit in a lease: e.g. 1000 and 10000)");
  }
  const std::vector<coordinator::NotifyTarget> notify_targets = NotifyTargets(a.notify);
  // Addresses, keys and credentials first: a bad one changes nothing (no state directory made,
  // no lock taken).
  CheckZmqEndpoint("--listen", a.listen, /*listen=*/true);
  const auto [host, port] = HostPort("--http", a.http, "127.0.0.1:7780");
  coordinator::DispatcherOptions dopt;
  // Who may connect: CurveZMQ with the key directory's allow-list; without keys only on an
  // endpoint no other machine can reach, or when --insecure says so.
  if (!a.keys.empty()) {
    if (a.insecure) Fail(2, "--keys and --insecure contradict each other; give one");
    if (Status s = coordinator::curve::CheckCurveAvailable(); !s.ok()) Fail(3, s.message());
    WarnIfOthersCanRead(a.keys + "/" + coordinator::curve::kCoordinatorSecretFile);
    auto kp = coordinator::curve::ReadKeyFile(a.keys + "/" + coordinator::curve::kCoordinatorSecretFile, true);
    if (!kp.ok()) Fail(2, kp.status().message() + " (make the keys with `hpo keygen --out " + a.keys + "`)");
    dopt.curve_secret_key = kp->secret_key;
    dopt.curve_allow_list = a.keys + "/" + coordinator::curve::kAllowListFile;
  } else if (!a.insecure && !IsLoopbackEndpoint(a.listen)) {
    Fail(2, "workers must authenticate: the coordinator listens on " + a.listen +
                ", which other machines can reach, and has no keys. Run `hpo keygen --out DIR` and start it with "
                "--keys DIR (each worker gets coordinator.pub and its own key pair: hpo worker --keys DIR), or pass "
                "--insecure to accept any worker, unencrypted (trusted networks only)");
  }
  // The SageMaker API: AWS Signature V4 when it is reachable from elsewhere, or when asked for.
  coordinator::HttpApiOptions hopt;
  hopt.log = StderrLog();
  hopt.region = a.region;
  hopt.require_sigv4 = a.http_auth == "required" || (a.http_auth == "auto" && (!IsLoopbackHost(host) || !a.credentials.empty()));
  hopt.public_metrics = a.public_metrics;
  if (a.http_auth == "off" && !a.credentials.empty()) Fail(2, "--credentials and --http-auth off contradict each other");
  auto load_credentials = [&]() -> Result<std::shared_ptr<const coordinator::sigv4::Credentials>> {
    auto c = coordinator::sigv4::Credentials::Load(a.credentials);
    if (!c.ok()) return c.status();
    return std::make_shared<const coordinator::sigv4::Credentials>(std::move(c).value());
  };
  if (hopt.require_sigv4) {
    if (a.credentials.empty()) {
      Fail(2, "the SageMaker API on " + a.http + " " +
                  (a.http_auth == "required" ? std::string("must check signatures (--http-auth required)")
                                             : std::string("is reachable from other machines, so it requires AWS "
                                                           "Signature V4")) +
                  ": give --credentials FILE (the ~/.aws/credentials format, or one `ACCESS_KEY_ID SECRET` per line), "
                  "or listen on 127.0.0.1");
    }
    auto c = load_credentials();
    if (!c.ok()) Fail(2, c.status().message());
    WarnIfOthersCanRead(a.credentials);
    hopt.credentials = *c;
  }
  std::error_code ec;
  // What this command makes of the state directory's path (it and any missing parents) goes
  // again if the coordinator cannot start (a port in use): nothing is left but what was there.
  fs::path made_top;
  for (fs::path p = fs::absolute(a.state_dir, ec); !ec && !p.empty() && !fs::exists(p, ec); p = p.parent_path()) {
    made_top = p;
    if (p == p.parent_path()) break;
  }
  auto undo_state_dir = [&] {
    std::error_code rm;
    if (!made_top.empty()) fs::remove_all(made_top, rm);
  };
  if (Status made = CreatePrivateDirectory(a.state_dir); !made.ok()) Fail(3, made.message());
  // One coordinator per state directory: two would both dispatch its jobs.
  auto lock = LockDirectory(a.state_dir, "hpo coordinator --listen " + a.listen);
  if (!lock.ok()) FailLocking(lock.status(), "stop it first, or pass another --state-dir");
  // Commits do not wait for the disk under the core's mutex; the dispatcher waits before answering.
  WarnIfEmptyDatabase(a.state_dir);
  auto store = coordinator::SqliteJobStore::Open(a.state_dir + "/hpo.db", true, coordinator::Durability::kDeferred);
  if (!store.ok()) FailOpeningStore(store.status(), a.state_dir);
  if (Status w = (*lock)->Watch(a.state_dir + "/hpo.db"); !w.ok()) Fail(3, w.message());
  coordinator::CoreOptions co;
  co.on_store_failure = StopOnStoreFailure("hpo coordinator", a.state_dir, "start the coordinator again");
  co.lease_ms = a.lease_ms;
  co.heartbeat_interval_ms = a.heartbeat_ms;
  co.default_grace_period_s = a.grace_s;
  co.assign_ahead = !a.no_assign_ahead;
  co.gang_hold_after_ms = a.gang_hold_after_s < 0 ? -1 : a.gang_hold_after_s * 1000;
  co.spot_price_ratio = a.spot_price_ratio;
  co.spot_workers_take_all = a.spot_workers_take == "all";
  co.limits = a.limits;
  co.max_concurrent_tuning_jobs = a.max_concurrent_tuning_jobs;
  co.max_tuning_job_runtime_s = a.max_tuning_job_runtime_s;
  // ARNs name the region the API answers for and the account given, so that one built by a user
  // of SageMaker from their own (ListTags, a warm start's parent) matches.
  if (!a.region.empty()) co.region = a.region;
  co.account_id = a.account_id;
  co.propose_off_core = true;  // the dispatcher's proposer thread makes Bayesian proposals
  co.catalog = LoadInstanceCatalog(a.instance_catalog);
  if (a.log_events != "none") {
    co.on_event = [all = a.log_events == "all"](const std::string& kind, const std::string& job,
                                                 const std::string& trial, const std::string& message) {
      if (!all && !NotableEvent(kind, message)) return;
      LogLine("event " + kind + (job.empty() ? "" : " " + job) + (trial.empty() ? "" : " " + trial) + ": " + message);
    };
  }
  if (!notify_targets.empty()) co.notify = coordinator::NotifyFunction(notify_targets, coordinator::SystemNowMs);
  coordinator::CoordinatorCore core(store->get(), co);
  if (Status s = core.LoadStatus(); !s.ok()) {
    Fail(3, "hpo coordinator: " + s.message() + " (in " + a.state_dir + "); it serves nothing rather than part of "
            "its jobs, and nothing was changed: fix what keeps it from being read (the disk, its permissions) and "
            "start the coordinator again");
  }
  for (const std::string& line : core.LoadNotes()) LogLine("hpo coordinator: " + line);
  dopt.log = StderrLog();
  dopt.listen = a.listen;
  dopt.proposer_threads = a.proposer_threads;
  dopt.deferred_store = store->get();
  dopt.on_sync_failure = co.on_store_failure;
  coordinator::Dispatcher dispatcher(&core, dopt);
  if (Status s = dispatcher.Bind(); !s.ok()) {
    undo_state_dir();
    // (The keys and the allow-list are checked there too: their errors say what to fix.)
    const bool address = s.message().rfind("cannot listen on ", 0) == 0;
    Fail(s.code() == StatusCode::kInvalidArgument ? 2 : 3,
         s.message() + (address ? "; give another --listen (what listens there: ss -ltnp)" : ""));
  }
  // The commands its pages suggest reach this coordinator (port 0 picks one: not known yet).
  if (a.http != "127.0.0.1:7780" && port != 0) hopt.dashboard.cli_flags = " --coordinator http://" + a.http;
  coordinator::HttpApi api(&dispatcher, hopt);
  if (Status s = api.Bind(host, port); !s.ok()) {
    undo_state_dir();
    Fail(3, s.message() + "; give another --http (what listens there: ss -ltnp)");
  }
  InstallSignalHandlers();
  InstallHangupHandler();
  RaiseFileLimit(1024, "a coordinator serving its API (128 connections at once) and its workers");
  std::atomic<bool> stop{false};
  std::thread dthread([&] { dispatcher.Run(stop); });
  std::thread hthread([&] { api.Serve(); });
  NotifierThread notifier(&dispatcher, store->get(), notify_targets);
  LogLine("hpo coordinator: workers connect to " + dispatcher.endpoint() +
          (dispatcher.secure() ? " (CurveZMQ; allow-list " + dopt.curve_allow_list + ")"
           : a.insecure        ? " (INSECURE: any worker, unencrypted)"
                               : " (loopback only, no keys)") +
          "; SageMaker API on http://" + UrlHost(host) + ":" + std::to_string(api.port()) +
          (hopt.require_sigv4 ? " (AWS Signature V4, " + std::to_string(hopt.credentials->size()) + " access key" +
                                    (hopt.credentials->size() == 1 ? "" : "s") + ")"
                              : " (no authentication" +
                                    (coordinator::IsLoopbackHost(host)
                                         ? std::string()
                                         : ": INSECURE, anyone who reaches it runs programs on the workers") +
                                    "; dashboard at http://" + UrlHost(host) + ":" + std::to_string(api.port()) +
                                    "/ui/)") +
          "; state in " + a.state_dir);
  int handled_hangups = 0;
  Housekeeping housekeeping("hpo coordinator");
  while (g_signals.load() == 0) {
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
    housekeeping.Tick();
    StopIfDatabaseGone(**lock, dispatcher, **store, "hpo coordinator", a.state_dir);
    if (int h = g_hangups.load(); h != handled_hangups) {
      handled_hangups = h;
      dispatcher.ReloadAllowList();
      if (hopt.require_sigv4) {
        auto c = load_credentials();
        if (c.ok()) {
          api.SetCredentials(*c);
          LogLine("hpo coordinator: SIGHUP: " + a.credentials + " reloaded: " + std::to_string((*c)->size()) +
                  " access key(s)");
        } else {
          LogLine("hpo coordinator: SIGHUP: keeping the previous access keys: " + c.status().message());
        }
      }
    }
  }
  LogLine("hpo coordinator: shutting down (jobs and trials resume when it restarts)");
  dispatcher.BeginShutdown();  // a deletion under way stops at its next slice (the next start goes on)
  notifier.Stop();  // what waits is sent when the coordinator starts again
  api.Stop();
  hthread.join();
  stop = true;
  dthread.join();
  Exit(0);
}

// ---- hpo worker -----------------------------------------------------------------------------------

struct WorkerArgs {
  std::string connect = "tcp://127.0.0.1:7700";
  int slots = 1;
  std::string gpus = "auto";
  std::string instance_type, instance_group, work_dir = "/tmp/hpo-worker", id, host;
  std::vector<std::string> images, labels;
  std::string s3_endpoint;
  std::string keys;                 // CurveZMQ key directory: coordinator.pub and <key_name>.secret
  std::string key_name = "worker";
  bool insecure = false;  // connect to a non-loopback coordinator without CurveZMQ
  bool spot = false;
  std::string notice_file;
  std::string notice_url;
  int64_t notice_poll_ms = 5000;
  int64_t checkpoint_sync_ms = 1000;
  int64_t checkpoint_settle_ms = 200;
  int64_t intermediate_sync_ms = 5000;
  int64_t channel_cache_mb = -1;  // -1 = worker::DefaultChannelCacheBytes
  int64_t volume_check_ms = 5000;
  bool keep_trial_files = false;
  int64_t checkpoint_release_ms = 60000;
  int64_t trial_log_days = 30;
  uint64_t volume_unit_bytes = 1ull << 30;
  std::string nccl_preflight;
  ContainerArgs container;
};

// The id a worker started without --id goes by: kept in WORK_DIR/worker-id, made on first start
// as HOST-<8 random hex digits>. The same for a worker restarted on its work directory (one
// process per work directory), so by default it re-attaches what it ran, delivers the reports it
// kept and resumes the uploads it left (worker/pending_exit.h); different for every other
// worker, also on machines that share a host name. It was HOST-PID: a restarted worker was a new
// one, whose predecessor's training jobs were lost with the old id and run again. (The agent
// writes the file, once it holds the directory: worker/agent.h KeptWorkerId.)
std::string DefaultWorkerId(const std::string& work_dir) {
  if (std::string kept = worker::KeptWorkerId(work_dir); !kept.empty()) return kept;
  const fs::path file = fs::path(work_dir) / worker::kWorkerIdFile;
  if (fs::exists(file)) LogLine("hpo worker: " + file.string() + " does not hold a worker id; making a new one");
  char host[256] = {0};
  if (::gethostname(host, sizeof host - 1) != 0 || host[0] == '\0') std::snprintf(host, sizeof host, "worker");
  std::string id;
  for (const char* c = host; *c && id.size() < 100; ++c) {
    id += std::isalnum(static_cast<unsigned char>(*c)) || *c == '.' || *c == '_' || *c == '-' ? *c : '-';
  }
  std::random_device rd;
  char hex[16];
  std::snprintf(hex, sizeof hex, "%08x", static_cast<unsigned>(rd()));
  return id + "-" + hex;  // the agent keeps it in the file once it holds the directory
}

void Worker(const WorkerArgs& a) {
  worker::AgentOptions o;
  o.spot = a.spot;
  o.notice_file = a.notice_file;
  o.notice_url = a.notice_url;
  o.notice_poll_ms = a.notice_poll_ms;
  o.checkpoint_sync_ms = a.checkpoint_sync_ms;
  o.checkpoint_settle_ms = a.checkpoint_settle_ms;
  o.intermediate_sync_ms = a.intermediate_sync_ms;
  o.channel_cache_mb = a.channel_cache_mb;
  o.volume_check_ms = a.volume_check_ms;
  o.keep_trial_files = a.keep_trial_files;
  o.release_check_ms = a.checkpoint_release_ms;
  o.trial_log_retention_ms = a.trial_log_days * 86'400'000;
  o.volume_unit_bytes = a.volume_unit_bytes;
  o.nccl_preflight = a.nccl_preflight;
  o.orphan_guard = "/proc/self/exe";
  o.guard_watches_stall = true;  // its coordinator runs elsewhere: a stalled worker's trainers go
  o.container = ResolveContainer(a.container);
  if (!a.notice_url.empty() && !a.spot) Fail(2, "--spot-notice-url needs --spot");
  // `--connect ""` (the systemd unit's ${HPO_COORDINATOR_ENDPOINT} unset) hides HPO_CONNECT,
  // which the command line would otherwise take: it is taken then, and else said plainly.
  std::string connect = a.connect;
  if (const char* env = std::getenv("HPO_CONNECT"); connect.empty() && env) connect = env;
  if (connect.empty()) {
    Fail(2, "--connect is empty: give the coordinator's ZeroMQ endpoint, tcp://HOST:PORT (the systemd unit "
            "deploy/systemd/hpo-worker.service takes it from HPO_COORDINATOR_ENDPOINT in /etc/default/hpo-worker)");
  }
  CheckZmqEndpoint("--connect", connect, /*listen=*/false);
  o.connect = connect;
  o.slots = static_cast<uint32_t>(a.slots);
  o.instance_type = a.instance_type;
  o.instance_group = a.instance_group;
  o.work_dir = a.work_dir;
  o.worker_id = a.id.empty() ? DefaultWorkerId(a.work_dir) : a.id;
  o.log = StderrLog();
  o.host = a.host;
  if (a.gpus == "none") {
    // Not asked to look: no NVML probe, and none of its errors on a machine without a driver.
    LogLine("worker: --gpus none: using no GPUs (training jobs see CUDA_VISIBLE_DEVICES empty)");
  } else {
    const worker::GpuDetection detected = worker::DetectGpus();
    auto gpus = worker::ResolveGpus(a.gpus, detected);
    if (!gpus.ok()) Fail(2, gpus.status().message());
    o.gpus = std::move(gpus).value();
    if (detected.devices.empty() && !o.gpus.empty()) {
      // Taken on the flag's word (a machine whose NVML cannot be read): said plainly, since a
      // typo here advertises GPUs that training jobs will not find ("using 2 GPU(s); no GPUs").
      LogLine("worker: warning: --gpus " + a.gpus + ": advertising " + std::to_string(o.gpus.size()) +
              " GPU(s) that could not be detected (" + detected.reason +
              "); training jobs placed here get CUDA_VISIBLE_DEVICES=" + a.gpus + " whether or not they exist");
    } else {
      LogLine("worker: --gpus " + a.gpus + ": using " + std::to_string(o.gpus.size()) + " GPU(s); " + detected.reason);
    }
  }
  o.s3_endpoint = a.s3_endpoint;
  // What the coordinator sends, this worker runs: off loopback, only over CurveZMQ (which also
  // proves the coordinator is the one whose coordinator.pub it holds), unless told otherwise.
  if (!a.keys.empty() && a.insecure) Fail(2, "--keys and --insecure contradict each other; give one");
  if (a.keys.empty() && !a.insecure && !IsLoopbackEndpoint(connect)) {
    Fail(2, "--connect " + connect +
                " is not a loopback or ipc:// endpoint: whoever answers there decides what this worker runs. Pass "
                "--keys DIR (coordinator.pub and this worker's key pair from `hpo keygen`), or --insecure to connect "
                "unencrypted to a coordinator started with --insecure (trusted networks only)");
  }
  if (a.insecure) LogLine("worker: --insecure: connecting to " + connect + " unencrypted and unauthenticated");
  if (!a.keys.empty()) {
    if (Status s = coordinator::curve::CheckCurveAvailable(); !s.ok()) Fail(3, s.message());
    auto server = coordinator::curve::ReadKeyFile(a.keys + "/" + coordinator::curve::kCoordinatorPublicFile, false);
    if (!server.ok()) Fail(2, server.status().message() + " (copy coordinator.pub from the coordinator's key directory)");
    WarnIfOthersCanRead(a.keys + "/" + a.key_name + ".secret");
    auto own = coordinator::curve::ReadKeyFile(a.keys + "/" + a.key_name + ".secret", true);
    if (!own.ok()) {
      Fail(2, own.status().message() + " (each worker needs its own key pair from `hpo keygen`; --key-name NAME picks " +
                  a.keys + "/NAME.secret)");
    }
    o.curve_server_key = server->public_key;
    o.curve_public_key = own->public_key;
    o.curve_secret_key = own->secret_key;
  }
  o.images = ParseImages(a.images);
  for (const auto& kv : a.labels) {
    auto eq = kv.find('=');
    if (eq == std::string::npos || eq == 0) Fail(2, "--label wants KEY=VALUE, got " + kv);
    o.labels[kv.substr(0, eq)] = kv.substr(eq + 1);
  }
  InstallSignalHandlers(/*hangup_stops=*/true);
  RaiseFileLimit(128 + 12ull * static_cast<uint64_t>(std::max(a.slots, 1)),
                 "a worker of " + std::to_string(a.slots) + " slot(s)");
  // Caught on every worker (a tool that sends notices to every host): ignored without --spot.
  InstallUsr1Handler();
  o.stop_signal_unix_ns = &g_first_signal_ns;
  std::atomic<bool> stop{false}, done{false};
  worker::WorkerAgent agent(o);
  std::thread watcher([&] {
    // A spot worker takes SIGUSR1 as an interruption notice (it stays up, drained), and SIGTERM
    // as its capacity going away: trials end Interrupted (re-queued for free), then it exits.
    Housekeeping housekeeping("hpo worker");
    while (g_signals.load() == 0 && !done.load()) {
      housekeeping.Tick();
      if (a.spot && g_usr1.load() > 0) agent.Interrupt("SIGUSR1 (spot interruption notice)");
      if (!a.spot && g_usr1.exchange(0) > 0) {
        LogLine("hpo worker: SIGUSR1 ignored: it is the interruption notice of a worker started with --spot, and this "
                "one was not (to take it off its work: hpo workers drain ID)");
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    if (done.load()) return;
    if (a.spot) agent.Interrupt("SIGTERM (spot capacity reclaimed)");
    LogLine("hpo worker: stopping; running training jobs get SIGTERM and their grace period (signal again to quit "
            "now)");
    stop = true;
    // A second signal: the grace periods are not waited out.
    while (g_signals.load() < 2 && !done.load()) std::this_thread::sleep_for(std::chrono::milliseconds(50));
    if (!done.load()) {
      LogLine("hpo worker: quitting now; running training jobs get SIGKILL");
      agent.Abort();
    }
  });
  Status s = agent.Run(stop);
  stop = true;
  done = true;
  watcher.join();
  if (!s.ok()) Fail(s.code() == StatusCode::kInvalidArgument ? 2 : 3, s.message());
  Exit(0);
}

}  // namespace

// `hpo run` and `hpo coordinator` share the flag.
constexpr const char* kNoAssignAheadHelp =
    "Send each worker its next training job only when a slot frees. By default a running training job gets one "
    "successor from its job, queued on its worker and started the moment it ends (a slot's gap is then about 2 ms "
    "instead of a round trip through the coordinator); a queued one becomes a training job (listed, counted, "
    "InProgress) when it starts, as SageMaker creates a training job when it launches it";

void AddRunCommand(CLI::App& app) {
  auto a = std::make_shared<RunArgs>();
  CLI::App* c = app.add_subcommand("run", "Run a tuning job to completion on this machine");
  c->add_option("spec", a->spec, "The tuning job: CRD YAML/JSON or a SageMaker JSON request")->required();
  c->add_option("--workers", a->workers, "Local workers to start (default: one per GPU, each with its GPU; else 2)")
      ->check(CLI::Range(1, 1024));
  c->add_option("--slots", a->slots, "Training jobs each worker runs at once (default 1)")->check(CLI::Range(1, 1024));
  AddQuotaOptions(c, &a->limits);
  AddRuntimeQuotaOption(c, &a->max_tuning_job_runtime_s);
  c->add_option("--state-dir", a->state_dir, "Where the job's database and trial directories go "
                                             "(default hpo-runs/<job>-<time>)");
  c->add_option("--grace", a->grace_s, "Seconds between SIGTERM and SIGKILL when a training job is stopped (120, as SageMaker gives; a second Ctrl-C does not wait)")
      ->check(CLI::Range(int64_t{0}, int64_t{86400}));
  c->add_flag("--no-assign-ahead", a->no_assign_ahead,
              kNoAssignAheadHelp);
  c->add_flag("--keep-trial-files", a->keep_trial_files,
              "Keep each ended training job's /opt/ml tree (input data copies, model, output) in the state "
              "directory; by default its trial.log and checkpoints stay there");
  c->add_option("--image", a->images,
                "Run a trainingImage as a local command: NAME=COMMAND (repeatable), e.g. --image "
                "683313688378.dkr.ecr.us-east-1.amazonaws.com/sagemaker-xgboost:1.7-1=./my_xgboost.py; the command "
                "gets `train` as its last argument, as a SageMaker container does");
  c->add_option("--instance-type", a->instance_types,
                "An instance type the local workers serve whatever this machine's CPUs and memory (GPU types "
                "still need their GPUs), e.g. ml.m5.xlarge on a 2-core laptop (repeatable: worker i serves the i-th type, round robin; the workers are at "
                "least as many as the types). Without it a worker serves the catalog's types its CPUs, "
                "memory and GPUs cover")
      ->allow_extra_args(false);
  AddContainerOptions(c, &a->container);
  c->add_option("--s3-endpoint", a->s3_endpoint,
                "S3 endpoint for s3:// data, output and checkpoints, e.g. http://127.0.0.1:7480 for radosgw or MinIO "
                "(default $AWS_ENDPOINT_URL_S3, $AWS_ENDPOINT_URL, else AWS), as hpo worker's");
  c->add_option("--instance-catalog", a->instance_catalog,
                "JSON file of instance types and what they need, merged over the shipped ml.* defaults (as hpo "
                "coordinator's); a local worker serves such a type when this machine covers it (hpo instance-types "
                "--instance-catalog FILE shows which)");
  c->add_option("--dashboard", a->dashboard_port,
                "Serve the web dashboard (charts, training jobs, logs) on http://127.0.0.1:PORT/ui/ while the job "
                "runs (0 picks a free port); from a terminal it stays up after the end until Ctrl-C")
      ->check(CLI::Range(0, 65535));
  AddNotifyOptions(c, &a->notify);
  c->add_option("-o,--output", a->output, "How to print the result: table (the default), json (DescribeHyperParameterTuningJob) "
                                          "or yaml (the CRD document with its status)")
      ->check(CLI::IsMember({"table", "json", "yaml"}));
  c->footer(
      "Starts a coordinator and local workers in this process, runs every training job as a\n"
      "process (or, for a container image, in podman/docker/apptainer) with the SageMaker\n"
      "training-container contract, shows progress, and prints the best\n"
      "training job. Ctrl-C stops the job gracefully and for good; a second Ctrl-C quits. Closing\n"
      "the terminal (SIGHUP), a reboot or kill -9 leaves it to resume: run the same command with\n"
      "--state-dir DIR. From another terminal,\n"
      "hpo stop --training-job TRAINING-JOB --state-dir DIR stops one training job (hpo stop NAME\n"
      "--state-dir DIR the job), and hpo describe/trials/events NAME --state-dir DIR and hpo logs\n"
      "TRAINING-JOB --state-dir DIR read it.\n\n"
      "Examples:\n  hpo run examples/quickstart.yaml --workers 3\n"
      "  hpo run examples/bayesian.yaml --instance-type ml.m5.xlarge   (its type needs 4 vCPUs; serve it anyway)\n"
      "  hpo run examples/bayesian.yaml --instance-type ml.m5.xlarge --dashboard 7790   (then open the printed URL)\n\n"
      "Exit codes: 0 the job completed, 1 it failed or was stopped, 2 the spec is invalid, no local\n"
      "worker can serve its instance type, or the state directory is in use by another process, 3 the\n"
      "run could not start (a port is taken, the state directory cannot be written) or was left to be\n"
      "resumed (SIGHUP).");
  c->callback([a] { Run(*a); });
}

void AddCoordinatorCommand(CLI::App& app) {
  auto a = std::make_shared<CoordinatorArgs>();
  CLI::App* c = app.add_subcommand("coordinator", "Run the coordinator of a cluster");
  c->add_option("--listen", a->listen, "ZeroMQ endpoint workers connect to (tcp://0.0.0.0:7700)");
  c->add_option("--http", a->http, "HOST:PORT of the SageMaker-compatible HTTP API (127.0.0.1:7780)");
  c->add_option("--state-dir", a->state_dir, "Directory of the job database (hpo-state)");
  c->add_option("--lease-ms", a->lease_ms, "A worker silent this long is lost: its running attempts end as infrastructure failures, retried under "
                "the RetryStrategy, even if it comes back (a paused VM, a swapping machine): raise it where workers "
                "may stall longer (10000)")
      ->check(CLI::Range(int64_t{100}, int64_t{86400000}));
  c->add_option("--heartbeat-ms", a->heartbeat_ms, "Heartbeat interval told to workers (1000)")
      ->check(CLI::Range(int64_t{10}, int64_t{3600000}));
  c->add_option("--grace", a->grace_s, "Seconds between SIGTERM and SIGKILL for stopped training jobs (120)")
      ->check(CLI::Range(int64_t{0}, int64_t{86400}));
  c->add_flag("--no-assign-ahead", a->no_assign_ahead,
              kNoAssignAheadHelp);
  c->add_option("--gang-hold-after-s", a->gang_hold_after_s,
                "A multi-host training job that could run but has waited this long for enough free workers at "
                "once holds workers for its hosts as they free up, so single-host training jobs of other tuning "
                "jobs cannot take every freed slot before it assembles (60; -1: never hold)")
      ->check(CLI::Range(int64_t{-1}, int64_t{86400}));
  c->add_option("--spot-price-ratio", a->spot_price_ratio,
                "What a second on a --spot worker costs against an on-demand one: DescribeTrainingJob's "
                "BillableTimeInSeconds counts spot seconds at this rate, so (1 - Billable/Training) * 100 is the "
                "spot savings, as SageMaker reports it (0.3)")
      ->check(CLI::Validator(
          [](std::string& v) {  // CLI::Range lets nan through
            char* end = nullptr;
            const double x = std::strtod(v.c_str(), &end);
            return end && *end == '\0' && x >= 0.0 && x <= 1.0 ? std::string() : "a number from 0 to 1, not " + v;
          },
          "[0 - 1]"));
  c->add_option("--spot-workers-take", a->spot_workers_take,
                "Which training jobs --spot workers run: managed-spot (default: only those whose definition sets "
                "EnableManagedSpotTraining, as SageMaker never puts a training job without it on spot capacity, "
                "where it could be interrupted; such jobs wait for an on-demand worker) or all (every training job, "
                "for a cluster that is all preemptible; only managed-spot seconds are billed at --spot-price-ratio)")
      ->check(CLI::IsMember({"managed-spot", "all"}));
  AddQuotaOptions(c, &a->limits);
  AddRuntimeQuotaOption(c, &a->max_tuning_job_runtime_s);
  c->add_option("--max-concurrent-tuning-jobs", a->max_concurrent_tuning_jobs,
                "Quota: tuning jobs in progress at once (100); one more is refused with ResourceLimitExceeded")
      ->check(CLI::Range(int64_t{1}, int64_t{100000}));
  c->add_option("--log-events", a->log_events,
                "Which events to write to the log (stderr) as they happen, as `hpo events` lists them: notable "
                "(default: all but each training job's placement, suggestion and completed exit), all, or none")
      ->check(CLI::IsMember({"notable", "all", "none"}));
  AddNotifyOptions(c, &a->notify);
  c->add_option("--proposer-threads", a->proposer_threads,
                "Bayesian and Hyperband proposals of different tuning jobs made at once, outside the event loop (2). "
                "They share the cores (each proposal's model uses all of them); what more threads buy is that a "
                "small job's proposal does not wait behind a large job's")
      ->check(CLI::Range(1, 64));
  c->add_option("--instance-catalog", a->instance_catalog,
                "JSON file of instance types and what they need, merged over the shipped ml.* defaults: "
                "{\"ml.x\": {\"gpus\": 1, \"gpu_model\": \"A10G\", \"gpu_memory_gib\": 24, \"vcpus\": 4, "
                "\"memory_gib\": 16}}. A worker without --instance-type serves a type when its GPUs, CPUs and "
                "memory cover the entry");
  c->add_option("--keys", a->keys,
                "CurveZMQ key directory from `hpo keygen` (coordinator.secret, authorized_workers): workers are "
                "encrypted and only allowed keys connect");
  c->add_flag("--insecure", a->insecure,
              "Accept any worker, unencrypted, on a non-loopback --listen (trusted networks only)");
  c->add_option("--http-auth", a->http_auth,
                "AWS Signature V4 on the HTTP API: auto (when it listens beyond loopback, or --credentials is "
                "given), required, or off")
      ->check(CLI::IsMember({"auto", "required", "off"}));
  c->add_flag("--public-metrics", a->public_metrics,
              "Answer GET /hpo/v1/metrics without a signature when the API requires them, for Prometheus (which "
              "cannot sign a scrape); it shows job names, counts and latencies, nothing of specs or logs");
  c->add_option("--credentials", a->credentials,
                "Access keys the HTTP API accepts: ~/.aws/credentials format, or one `ACCESS_KEY_ID SECRET` per line");
  c->add_option("--region", a->region,
                "Accept only signatures scoped to this region, and name it in the ARNs given (default: any "
                "region; ARNs say local)");
  c->add_option("--account-id", a->account_id,
                "The account in the ARNs given, e.g. your AWS account's, so that ARNs built the SageMaker way "
                "match (000000000000)")
      ->check(CLI::Validator(
          [](std::string& v) {
            return v.size() == 12 && v.find_first_not_of("0123456789") == std::string::npos
                       ? std::string()
                       : "an account id is 12 digits, not " + v;
          },
          "12 digits"));
  c->footer(
      "Keeps the jobs in an SQLite database, dispatches training jobs to workers over ZeroMQ, and\n"
      "serves the SageMaker API, so the aws CLI and boto3 work against it:\n\n"
      "  hpo keygen --out /etc/hpo/keys\n"
      "  hpo coordinator --keys /etc/hpo/keys --state-dir /var/lib/hpo\n"
      "  aws sagemaker list-hyper-parameter-tuning-jobs --endpoint-url http://127.0.0.1:7780\n\n"
      "The same endpoint serves the training jobs' output as CloudWatch Logs and their metrics as\n"
      "CloudWatch (group and namespace /aws/sagemaker/TrainingJobs), so SageMaker's readers work too:\n\n"
      "  aws logs tail /aws/sagemaker/TrainingJobs --log-stream-name-prefix my-job-003 --follow \\\n"
      "      --endpoint-url http://127.0.0.1:7780\n"
      "  aws cloudwatch list-metrics --namespace /aws/sagemaker/TrainingJobs --endpoint-url http://127.0.0.1:7780\n\n"
      "Workers must present a key from the allow-list (re-read when it changes and on SIGHUP) unless\n"
      "--listen is a loopback or ipc:// endpoint or --insecure is given. The HTTP API binds 127.0.0.1;\n"
      "on any other address (--http 0.0.0.0:7780), and on any with --credentials, every request must\n"
      "be signed with AWS Signature V4 by one of the --credentials keys (re-read on SIGHUP), exactly\n"
      "as AWS checks it (--http-auth changes when).\n\n"
      "The web dashboard is at http://HOST:PORT/ui/ of --http; where signatures are required, run\n"
      "`hpo dashboard --coordinator http://HOST:PORT` on your machine and open what it prints.\n\n"
      "Exit codes: 0 stopped by a signal, 2 a bad option or setting, or its --state-dir in use by\n"
      "another process, 3 it could not start (a port taken, a state database it cannot read) or had\n"
      "to stop (its database could not be written or synced, or was replaced under it).");
  c->callback([a] { Coordinator(*a); });
}

void AddWorkerCommand(CLI::App& app) {
  auto a = std::make_shared<WorkerArgs>();
  CLI::App* c = app.add_subcommand("worker", "Run a worker that executes training jobs");
  c->add_option("--connect", a->connect, "The coordinator's ZeroMQ endpoint (tcp://127.0.0.1:7700)");
  c->add_option("--slots", a->slots, "Training jobs run at once (1)")->check(CLI::Range(1, 1024));
  c->add_option("--gpus", a->gpus, "GPU indices to use: auto (every GPU found; the default), none, or a list such as 0,1");
  c->add_option("--instance-type", a->instance_type,
                "Instance type this worker serves, e.g. ml.g5.xlarge, whatever its machine has (a GPU type still needs "
                "its GPUs); without it, every catalog type this machine covers (hpo instance-types)");
  c->add_option("--instance-group", a->instance_group, "Instance group this worker belongs to");
  c->add_option("--label", a->labels, "Free-form placement label KEY=VALUE (repeatable)");
  c->add_flag("--spot", a->spot,
              "Spot/preemptible capacity: SIGUSR1 (or --spot-notice-file appearing) is an interruption notice, "
              "SIGTERM reclaims the capacity; running trials end Interrupted and are re-queued elsewhere "
              "without spending a retry. It runs only training jobs with EnableManagedSpotTraining, unless the "
              "coordinator says otherwise (hpo coordinator --spot-workers-take all)");
  c->add_option("--spot-notice-file", a->notice_file,
                "With --spot: a file whose appearance is an interruption notice (e.g. written by a cloud "
                "metadata watcher)");
  c->add_option("--spot-notice-url", a->notice_url,
                "With --spot: a metadata URL polled for an interruption notice; 404, an empty body or FALSE "
                "mean none, any other 200 body is one (EC2: "
                "http://169.254.169.254/latest/meta-data/spot/instance-action, IMDSv2 tokens handled; GCE: "
                "http://metadata.google.internal/computeMetadata/v1/instance/preempted)");
  c->add_option("--spot-notice-poll-ms", a->notice_poll_ms, "How often --spot-notice-url is polled (5000)")
      ->check(CLI::Range(int64_t{100}, int64_t{3600000}));
  c->add_option("--nccl-preflight", a->nccl_preflight,
                "The NCCL check run on every host of a multi-host GPU training job before it starts (default: "
                "hpo-nccl-preflight next to hpo, built with CUDA and NCCL; without it the check is skipped, "
                "saying so in the training job's log)");
  c->add_option("--intermediate-sync-ms", a->intermediate_sync_ms,
                "How often new and changed files of /opt/ml/output/intermediate go to "
                "S3OutputPath/<job>/output/intermediate/ while a training job runs (they go once more when it "
                "ends); 0: only then (5000)")
      ->check(CLI::Range(int64_t{0}, int64_t{3600000}));
  c->add_option("--checkpoint-sync-ms", a->checkpoint_sync_ms,
                "How often new checkpoint files go to CheckpointConfig.S3Uri while a training job runs; a worker "
                "killed without notice loses at most about this much (1000)")
      ->check(CLI::Range(int64_t{50}, int64_t{3600000}));
  c->add_option("--checkpoint-settle-ms", a->checkpoint_settle_ms,
                "Checkpoint files still being written wait, so CheckpointConfig.S3Uri never gets half of a "
                "checkpoint rewritten in place: while a training job runs, a file open for writing goes once "
                "it is closed (where the filesystem cannot tell, NFS: once unchanged this long and seen so by "
                "two passes); after a signal ended the program, a file it changed in its last this-many ms is "
                "not sent and its last whole copy stays. 0: send files as they are, as SageMaker does (200)")
      ->check(CLI::Range(int64_t{0}, int64_t{600000}));
  c->add_option("--channel-cache-mb", a->channel_cache_mb,
                "Size of the cache of s3:// channel data under WORK_DIR/cache: an object (same URI and ETag) "
                "staged before on this worker is not downloaded again; least recently used objects are evicted "
                "beyond this. 0 turns it off (default: 10% of the work directory's filesystem, at most 20480)")
      ->check(CLI::Range(int64_t{0}, int64_t{1} << 40));
  c->add_option("--volume-check-ms", a->volume_check_ms,
                "How often a running training job's disk use (its /opt/ml and checkpoint directory) is measured "
                "against ResourceConfig.VolumeSizeInGB; above it the job is stopped and fails. 0 turns the "
                "check off (5000)")
      ->check(CLI::Range(int64_t{0}, int64_t{3600000}));
  // For tests only (hidden): VolumeSizeInGB is an integer >= 1, so a test scales the unit down.
  c->add_option("--volume-unit-bytes", a->volume_unit_bytes, "")
      ->check(CLI::Range(uint64_t{1}, uint64_t{1} << 40))
      ->group("");
  c->add_option("--work-dir", a->work_dir, "Where trial directories go (/tmp/hpo-worker)");
  c->add_flag("--keep-trial-files", a->keep_trial_files,
              "Keep each ended training job's /opt/ml tree (its input data copies, model, output) under "
              "--work-dir; by default only its trial.log and the training job's checkpoint directory (until the "
              "training job has ended, see --checkpoint-release-ms) stay there (the model and output are at "
              "S3OutputPath); a worker started on a work directory also removes "
              "the trees an earlier, killed process left, unless this is given");
  c->add_option("--trial-log-days", a->trial_log_days,
                "Days a training job's directory under WORK_DIR/trials (its trial.log files) stays once unchanged; "
                "one with a checkpoint directory stays. The coordinator keeps the logs too. 0: forever (default 30)")
      ->check(CLI::Range(0, 36500));
  c->add_option("--checkpoint-release-ms", a->checkpoint_release_ms,
                "How often the worker asks the coordinator which training jobs whose local checkpoint directory "
                "(WORK_DIR/trials/<job>/checkpoints) it keeps have ended for good, and removes those: their "
                "checkpoints are at CheckpointConfig.S3Uri. One whose last upload there failed stays. 0: keep them "
                "all (60000)")
      ->check(CLI::Range(int64_t{0}, int64_t{86400000}));
  c->add_option("--id", a->id,
                "Worker id, unique per worker (default: the one kept in WORK_DIR/worker-id, made on first start as "
                "HOST-XXXXXXXX, so a worker restarted on the same --work-dir re-attaches its training jobs)");
  c->add_option("--host", a->host,
                "The name or address other hosts of a multi-host training job reach this worker by (default: the "
                "hostname); algo-N resolves to it inside the trial");
  c->add_option("--image", a->images,
                "Map a trainingImage name to a local command: NAME=COMMAND (repeatable); other names that are not "
                "absolute paths run in the container runtime");
  AddContainerOptions(c, &a->container);
  c->add_option("--s3-endpoint", a->s3_endpoint,
                "S3 endpoint for s3:// data and output, e.g. http://127.0.0.1:7480 (default $AWS_ENDPOINT_URL_S3, "
                "$AWS_ENDPOINT_URL, else AWS)");
  c->add_option("--keys", a->keys,
                "CurveZMQ key directory: the coordinator's coordinator.pub and this worker's key pair");
  c->add_option("--key-name", a->key_name, "This worker's key pair is KEYS/NAME.secret (worker)");
  c->add_flag("--insecure", a->insecure,
              "Connect to a non-loopback --connect without --keys, unencrypted and unauthenticated (a coordinator "
              "started with --insecure; trusted networks only)");
  c->footer(
      "Example:\n  hpo worker --keys /etc/hpo/keys --connect tcp://coordinator:7700 --slots 4 --gpus 0,1,2,3 \\\n"
      "      --image my-xgboost=/opt/trainers/xgb.py\n\n"
      "A trainingImage that is an absolute path (or file:// URI) runs as a local program; one mapped\n"
      "with --image runs its command; any other (123456789012.dkr.ecr...:tag, localhost/x:latest)\n"
      "runs as `RUNTIME run --rm -v <trial root>:/opt/ml ... IMAGE train` in the container runtime.\n"
      "Training programs get this worker's AWS_* credentials, endpoints and region, as SageMaker gives\n"
      "a container its role's (none with EnableNetworkIsolation; the spec's Environment wins).\n\n"
      "SIGTERM, SIGINT or SIGHUP (systemctl stop, the end of a Slurm job) takes the worker away like a spot\n"
      "interruption: the coordinator places nothing more here, running training jobs get SIGTERM and their\n"
      "grace period, end Interrupted and run again elsewhere without spending a retry (one that exits 0\n"
      "on a signal that reached it too, as scancel's does, as well). A second signal kills them at once.\n"
      "Each worker on a machine needs its own --work-dir.\n\n"
      "Exit codes: 0 it was taken away by a signal, 2 a bad option or setting, or its --work-dir in\n"
      "use by another worker, 3 it could not run (the coordinator refused it, its work directory\n"
      "cannot be written, no CurveZMQ support for --keys).");
  c->callback([a] { Worker(*a); });

  // Hidden: the process a worker starts to kill what its training jobs left running if it is
  // killed itself (worker/orphans.h OrphanGuard); not a command for people.
  struct GuardArgs {
    std::string dir, owner;
    worker::ContainerConfig containers;
    bool watch_stall = false;
  };
  auto ga = std::make_shared<GuardArgs>();
  CLI::App* g = app.add_subcommand(worker::kOrphanGuardCommand, "");
  g->group("");
  g->add_option("--work-dir", ga->dir)->required();
  g->add_option("--container-runtime", ga->containers.runtime);
  g->add_option("--container-binary", ga->containers.binary);
  g->add_option("--container-owner", ga->owner);
  g->add_flag("--watch-stall", ga->watch_stall);
  g->callback([ga] {
    // Its lines go to the worker's log, stamped as the worker's are (they had no time; a gangs pass).
    throw CLI::RuntimeError(worker::RunOrphanGuard(ga->dir, 5000, StderrLog(), ga->containers, ga->owner,
                                                   ga->watch_stall));
  });
}

}  // namespace hpo::cli
