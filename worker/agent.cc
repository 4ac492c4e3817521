#include "worker/agent.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <sys/eventfd.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <condition_variable>
#include <optional>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <deque>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <functional>
#include <future>
#include <iterator>
#include <mutex>
#include <random>
#include <set>
#include <system_error>
#include <thread>

#include <zmq.hpp>
#include <zmq_addon.hpp>

#include "proto/codec.h"
#include "proto/messages.h"
#include "worker/artifacts.h"
#include "worker/channel_cache.h"
#include "worker/checkpoints.h"
#include "worker/outbox_journal.h"
#include "worker/spot_notice.h"
#include "worker/data_channels.h"
#include "worker/handshake_monitor.h"
#include "worker/metric_parser.h"
#include "worker/pipe_channel.h"
#include "worker/process.h"
#include "worker/spare_dirs.h"
#include "worker/task_pool.h"
#include "worker/trial_layout.h"
#include "worker/volume_watch.h"

namespace hpo::worker {

namespace fs = std::filesystem;

uint32_t DetectCpus() {
  long n = ::sysconf(_SC_NPROCESSORS_ONLN);
  return n > 0 ? static_cast<uint32_t>(n) : 1;
}

uint64_t DetectMemoryMb() {
  long pages = ::sysconf(_SC_PHYS_PAGES);
  long page = ::sysconf(_SC_PAGE_SIZE);
  return pages > 0 && page > 0 ? static_cast<uint64_t>(pages) * static_cast<uint64_t>(page) / (1024 * 1024) : 0;
}

namespace {

int64_t SystemNowMs() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::system_clock::now().time_since_epoch())
      .count();
}

std::string Hostname() {
  char buf[256] = {0};
  if (::gethostname(buf, sizeof buf - 1) != 0) return "localhost";
  return buf;
}

using Key = std::pair<std::string, uint32_t>;

// Whether this process may create mount and network namespaces: a forked child tries, once.
bool NamespacesWork() {
  static const bool works = [] {
    if (::geteuid() != 0) return false;
    pid_t pid = ::fork();
    if (pid < 0) return false;
    if (pid == 0) ::_exit(::unshare(CLONE_NEWNS | CLONE_NEWNET) == 0 ? 0 : 1);
    int st = 0;
    while (::waitpid(pid, &st, 0) < 0 && errno == EINTR) {
    }
    return WIFEXITED(st) && WEXITSTATUS(st) == 0;
  }();
  return works;
}

// The single TrainingJobDefinition the coordinator sent as JSON; nullopt when absent or
// unreadable (the AssignTrial fields then stand alone).
std::optional<proto::TrainingJobDefinition> DefinitionOf(const proto::wire::AssignTrial& a) {
  if (a.spec_json.empty()) return std::nullopt;
  auto tree = proto::ParseText("{\"TrainingJobDefinition\":" + a.spec_json + "}");
  if (!tree.ok()) return std::nullopt;
  auto spec = proto::DecodeCreateRequest(*tree);
  if (!spec.ok() || !spec->training_job_definition) return std::nullopt;
  return spec->training_job_definition;
}

// A data-staging or upload error: the job's fault (ClientError, fails the trial) or the
// infrastructure's (InfraError, retried).
bool IsClientError(const Status& s) {
  return s.code() == StatusCode::kInvalidArgument || s.code() == StatusCode::kNotFound ||
         s.code() == StatusCode::kFailedPrecondition;
}

// A message waiting for the coordinator's Ack.
struct Pending {
  proto::wire::MsgType type;
  Key key;
  uint64_t seq = 0;
  std::vector<std::string> frames;
  int64_t sent_ms = 0;
};

}  // namespace

struct WorkerAgent::Impl {
  AgentOptions opt;
  zmq::context_t ctx{1};
  std::unique_ptr<zmq::socket_t> sock;
  std::unique_ptr<HandshakeMonitor> handshake_monitor;  // after sock: destroyed before it
  bool registered = false;
  int64_t last_heard_ms = 0;
  int64_t last_heartbeat_ms = 0;
  int64_t register_sent_ms = 0;
  // Until a RegisterAck arrives, Register is re-sent after this long, doubling from 20 ms up to
  // 1 s: with ZMQ_IMMEDIATE the first copy is dropped while the TCP connection is being set up.
  int64_t register_backoff_ms = 20;
  // Wakes the loop when a trial's program ended or its staging or upload finished, so the next
  // step (reporting the exit, starting the program) does not wait for the poll timeout.
  // Declared before `runs`, so it is closed only after every trial thread that may signal it.
  struct OwnedFd {
    int fd;
    ~OwnedFd() {
      if (fd >= 0) ::close(fd);
    }
  } wake{::eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC)};
  const int wake_fd = wake.fd;
  void Wake() const {
    const uint64_t one = 1;
    if (wake_fd >= 0) (void)!::write(wake_fd, &one, sizeof one);
  }
  void DrainWake() const {
    uint64_t n;
    if (wake_fd >= 0) (void)!::read(wake_fd, &n, sizeof n);
  }
  // This process's registration session (see Register.session): a restart is a new session.
  const uint64_t session = [] {
    std::random_device rd;
    uint64_t v = (uint64_t{rd()} << 32) ^ rd();
    return v == 0 ? 1 : v;
  }();
  uint64_t heartbeat_seq = 0;
  std::vector<Pending> outbox;

  struct Run {
    proto::wire::AssignTrial assign;
    std::string attempt_dir;                       // <work_dir>/trials/<trial>/attempt-<N>
    std::string root;                              // attempt_dir/ml: the attempt's /opt/ml
    // /opt/ml is mounted for the program: a private mount namespace (process mode as root) or
    // the container runtime's mounts (`container`).
    bool namespaces = false;
    bool container = false;                        // runs as `<runtime> run <image> train`
    std::string container_name;
    std::string last_line;                         // the program's last output line (guarded by mu)
    bool network_isolation = false;
    bool compress_output = true;
    TrialLayoutSpec layout;
    std::vector<std::string> argv;
    std::vector<BindMount> mounts;                 // root on /opt/ml, checkpoints (not channels)
    std::future<Result<std::vector<BindMount>>> staging;  // channel mounts once staged
    // The artifacts, packed and uploaded by the program's monitor thread as soon as it has
    // reaped the program (TrialProcess's on_exit); valid when there is an output path.
    std::future<Result<UploadedArtifacts>> upload;
    std::unique_ptr<TrialProcess> process;
    std::unique_ptr<MetricParser> parser;
    std::mutex mu;                                 // guards points and last values (reader thread)
    std::vector<proto::wire::MetricPoint> points;        // not yet sent
    std::map<std::string, double> last_values;
    std::vector<std::string> log_lines;            // not yet sent
    uint64_t next_line = 0;                        // number of the first line in log_lines
    uint64_t log_seq = 0;                          // last LogLines seq sent
    uint64_t seq = 0;                              // last MetricPoints seq sent
    int64_t deadline_ms = 0;                       // max runtime
    int64_t last_flush_ms = 0;
    std::string stop_reason;                       // why we stopped it ("" = not stopped)
    std::string stop_secondary;                    // secondary status when stopped
    bool interrupted = false;                      // stopped by an interruption notice
    int64_t stop_grace_ms = 0;
    // Assigned ahead (AssignTrial.after_*): laid out (and staged) now, started once `after`'s
    // program has ended. A predecessor whose successor waits wakes the loop as soon as its
    // program is reaped, before its artifacts are uploaded.
    bool queued = false;
    Key after;
    // A multi-host attempt's hosts other than algo-1 report no metrics or log lines (the
    // coordinator takes a gang's from algo-1); their output stays in their trial.log.
    bool reports_output = true;
    // KeepAlivePeriodInSeconds: the File-mode channels (key, directory) whose staged data is kept
    // for the job's next training job on this worker when this one ends.
    int64_t keep_alive_ms = 0;
    // A multi-host attempt: the NCCL preflight's command ("" = none) and what to log about it
    // (written by the staging thread, read after its future).
    std::vector<std::string> preflight;
    std::shared_ptr<std::string> preflight_note = std::make_shared<std::string>();
    std::vector<std::pair<std::string, std::string>> warm_channels;
    // CheckpointConfig.S3Uri: restored before the program starts, synced every
    // checkpoint_sync_ms while it runs (one pass at a time) and once more when it has ended.
    std::shared_ptr<CheckpointSync> checkpoints;
    std::future<Result<CheckpointStats>> checkpoint_pass;
    int64_t last_checkpoint_pass_ms = 0;
    bool checkpoint_error_logged = false;
    std::shared_ptr<std::atomic<bool>> successor_waits = std::make_shared<std::atomic<bool>>(false);
    // ResourceConfig.VolumeSizeInGB, watched while the program runs; exceeding it stops the
    // program and the attempt ends Failed with stop_reason (stop_fails).
    std::optional<VolumeLimit> volume_limit;
    std::unique_ptr<VolumeWatch> volume;
    bool stop_fails = false;
    // Pipe-mode channels: the feeds staging prepared (written by the staging thread, read after
    // its future), and their feeders, from the program's start until it is reaped or stopped.
    // Last: the feeders' callbacks use the members above.
    std::shared_ptr<std::vector<PipeFeed>> pipe_feeds = std::make_shared<std::vector<PipeFeed>>();
    std::vector<std::unique_ptr<PipeFeeder>> pipes;
  };
  std::map<Key, std::unique_ptr<Run>> runs;
  // Container images found present here (checked once per image when pulls are off).
  std::mutex images_mu;
  std::set<std::string> images_present;
  bool ImageKnownPresent(const std::string& image) {
    if (opt.container.pull != "never") return true;
    std::lock_guard<std::mutex> lock(images_mu);
    return images_present.count(image) > 0;
  }
  // Containers labelled with this worker's id that an earlier process left are removed once,
  // before this process's first container trial starts (on its staging thread, so a worker that
  // never runs a container never asks the runtime, and its start-up waits for nothing).
  std::once_flag containers_swept;
  std::atomic<bool> containers_swept_done{false};
  void SweepStaleContainers() {
    std::call_once(containers_swept, [this] {
      auto removed = RemoveStaleContainers(opt.container, opt.worker_id);
      if (!removed.ok()) {
        Log("worker: cannot look for stale containers: " + removed.status().message());
      } else if (*removed > 0) {
        Log("worker: removed " + std::to_string(*removed) + " container(s) an earlier process of " + opt.worker_id +
            " left");
      }
      containers_swept_done = true;
    });
  }
  mutable std::mutex runs_mu;  // guards the map's shape for running()

  // The S3 client, created on first use from opt.s3_endpoint and the environment.
  std::mutex s3_mu;
  std::shared_ptr<S3Client> s3;
  Result<const S3Client*> S3() {
    std::lock_guard<std::mutex> lock(s3_mu);
    if (!s3) {
      auto cfg = S3Config::FromEnvironment(opt.s3_endpoint);
      if (!cfg.ok()) return cfg.status();
      auto c = S3Client::Create(*cfg);
      if (!c.ok()) return c.status();
      s3 = std::move(c).value();
    }
    return static_cast<const S3Client*>(s3.get());
  }

  // The channel cache (worker/channel_cache.h); null when off or it cannot be opened.
  std::unique_ptr<ChannelCache> channel_cache;
  void OpenChannelCache() {
    if (opt.channel_cache_mb == 0 || channel_cache) return;
    const uint64_t bytes = opt.channel_cache_mb < 0 ? DefaultChannelCacheBytes(opt.work_dir)
                                                    : static_cast<uint64_t>(opt.channel_cache_mb) << 20;
    auto c = ChannelCache::Open({(fs::path(opt.work_dir) / "cache").string(), bytes, opt.log});
    if (!c.ok()) {
      Log("worker: staging without a channel cache: " + c.status().message());
      return;
    }
    channel_cache = std::move(c).value();
  }

  void Log(const std::string& l) const { opt.log(l); }
  int64_t Now() const { return opt.now_ms(); }

  // ---- socket ------------------------------------------------------------------------------------

  void Connect() {
    handshake_monitor.reset();
    sock = std::make_unique<zmq::socket_t>(ctx, zmq::socket_type::dealer);
    if (!opt.curve_server_key.empty()) {  // CurveZMQ: encrypted, and this key must be on the allow-list
      sock->set(zmq::sockopt::curve_serverkey, opt.curve_server_key);
      sock->set(zmq::sockopt::curve_publickey, opt.curve_public_key);
      sock->set(zmq::sockopt::curve_secretkey, opt.curve_secret_key);
    }
    sock->set(zmq::sockopt::handshake_ivl, 5000);
    handshake_monitor =
        std::make_unique<HandshakeMonitor>(ctx.handle(), sock->handle(), opt.connect, opt.curve_public_key, opt.log);
    sock->set(zmq::sockopt::routing_id, opt.worker_id);
    sock->set(zmq::sockopt::linger, 0);
    sock->set(zmq::sockopt::maxmsgsize, int64_t{16} << 20);
    sock->set(zmq::sockopt::reconnect_ivl, 100);
    sock->set(zmq::sockopt::reconnect_ivl_max, 2000);
    // Queue nothing while the connection is down: Register is re-sent every second until
    // acknowledged and reliable reports are re-sent after it, so a backlog would only replay
    // stale copies at the coordinator.
    sock->set(zmq::sockopt::immediate, true);
    sock->connect(opt.connect);
    registered = false;
    last_heard_ms = Now();
    register_backoff_ms = 20;
    SendRegister();
  }

  void SendFrames(const std::vector<std::string>& frames) {
    try {
      for (size_t i = 0; i < frames.size(); ++i) {
        auto flags = i + 1 < frames.size() ? zmq::send_flags::sndmore | zmq::send_flags::dontwait
                                           : zmq::send_flags::dontwait;
        if (!sock->send(zmq::buffer(frames[i]), flags)) return;  // HWM reached: resent later
      }
    } catch (const zmq::error_t& e) {
      Log(std::string("worker: send failed: ") + e.what());
    }
  }

  void Send(const proto::wire::Message& m) { SendFrames(proto::wire::EncodeFrames(m)); }

  // Sends a message that must be acknowledged, and keeps it until it is: in memory, and in the
  // on-disk journal (written first), so a worker process that dies before the acknowledgement
  // leaves it for the next one on this work directory.
  void SendReliable(const proto::wire::Message& m, proto::wire::MsgType type, Key key, uint64_t seq) {
    Pending p{type, std::move(key), seq, proto::wire::EncodeFrames(m), Now()};
    if (journal) {
      Status kept = journal->Append(p.key.first, p.key.second, p.frames);
      if (!kept.ok() && !journal_error_logged) {
        journal_error_logged = true;
        Log("worker: reports are kept in memory only from now on: " + kept.message());
      }
    }
    if (registered) SendFrames(p.frames);
    outbox.push_back(std::move(p));
  }

  std::optional<OutboxJournal> journal;
  bool journal_error_logged = false;

  // At start: the journal of earlier worker processes on this work directory. The reports of
  // attempts that ended (their TrialExited is there) go out again, and Register lists those
  // attempts as held so the coordinator waits for them; an attempt without one ended with its
  // worker (PR_SET_PDEATHSIG), and the coordinator retries it.
  void OpenJournal() {
    auto j = OutboxJournal::Open((fs::path(opt.work_dir) / "outbox").string());
    if (!j.ok()) {
      Log("worker: reports are kept in memory only: " + j.status().message());
      return;
    }
    journal.emplace(std::move(j).value());
    auto left = journal->Load();
    if (!left.ok()) {
      Log("worker: cannot read the reports left by an earlier worker process: " + left.status().message());
      return;
    }
    for (const auto& l : *left) {
      const Key key{l.trial, l.attempt};
      std::vector<Pending> reports;
      bool exited = false;
      for (const auto& frames : l.reports) {
        auto msg = proto::wire::DecodeFrames(frames);
        if (!msg.ok()) continue;
        uint64_t seq = 0;
        if (const auto* mp = std::get_if<proto::wire::MetricPoints>(&*msg)) seq = mp->seq;
        if (const auto* ll = std::get_if<proto::wire::LogLines>(&*msg)) seq = ll->seq;
        if (const auto* x = std::get_if<proto::wire::TrialExited>(&*msg)) {
          seq = x->seq;
          exited = true;
        }
        reports.push_back({proto::wire::TypeOf(*msg), key, seq, frames, 0});
      }
      if (!exited) {
        journal->Drop(l.trial, l.attempt);
        Log("worker: " + l.trial + " attempt " + std::to_string(l.attempt) +
            " ended with an earlier worker process before it finished; the coordinator retries it");
        continue;
      }
      Log("worker: delivering " + std::to_string(reports.size()) + " report(s) of " + l.trial + " attempt " +
          std::to_string(l.attempt) + ", which ended under an earlier worker process");
      for (auto& r : reports) outbox.push_back(std::move(r));
    }
  }

  // The attempts this worker answers for: those running, and those that ended while their
  // TrialExited is not acknowledged yet. Register and every Heartbeat list them.
  std::set<Key> HeldAttempts() const {
    std::set<Key> held;
    for (const auto& [k, run] : runs) held.insert(k);
    for (const auto& p : outbox) {
      if (p.type == proto::wire::MsgType::kTrialExited) held.insert(p.key);
    }
    return held;
  }

  void SendRegister() {
    proto::wire::Register r;
    r.protocol_version = proto::wire::kProtocolVersion;
    r.worker_id = opt.worker_id;
    r.host = opt.host;
    r.instance_type = opt.instance_type;
    r.instance_group = opt.instance_group;
    r.labels = opt.labels;
    for (const GpuDevice& g : opt.gpus) {
      proto::wire::GpuInfo gi;
      gi.index = static_cast<uint32_t>(g.index);
      gi.uuid = g.uuid;
      gi.name = g.name;
      gi.memory_mb = g.memory_mb;
      r.gpus.push_back(gi);
    }
    r.cpus = DetectCpus();
    r.memory_mb = DetectMemoryMb();
    {
      std::error_code ec;
      fs::create_directories(opt.work_dir, ec);
      const fs::space_info space = fs::space(opt.work_dir, ec);
      r.disk_mb = ec ? 0 : static_cast<uint64_t>(space.available >> 20);
    }
    r.slots = opt.slots;
    r.spot = opt.spot;
    // Attempts this worker still answers for: those running, and those that ended while their
    // TrialExited is not acknowledged yet (otherwise a coordinator that comes back would count
    // them as lost before it reads the exit report queued behind this Register).
    for (const auto& k : HeldAttempts()) r.running.push_back({k.first, k.second});
    r.session = session;
    Send(r);
    register_sent_ms = Now();
  }

  // ---- trials ------------------------------------------------------------------------------------

  // Resolves trainingImage to a program: an absolute path or file:// URI of an executable, or an
  // entry of the worker's image map; an empty argv means a container image (a runtime is set up).
  Result<std::vector<std::string>> Program(const std::string& image) {
    std::string path;
    if (image.rfind("file://", 0) == 0) {
      path = image.substr(7);
    } else if (!image.empty() && image[0] == '/') {
      path = image;
    } else {
      auto it = opt.images.find(image);
      if (it != opt.images.end()) return std::vector<std::string>{"/bin/sh", "-c", it->second + " train", "hpo-trainer"};
      if (opt.container.enabled() && !image.empty()) return std::vector<std::string>{};
      return Status::InvalidArgument("ClientError: trainingImage \"" + image + "\" is not known on worker " +
                                     opt.worker_id +
                                     "; give an absolute path or file:// URI of an executable, map the image with "
                                     "`hpo worker --image NAME=COMMAND`, or give the worker a container runtime "
                                     "(`--container-runtime podman|docker|apptainer`; none was found in its PATH)");
    }
    if (::access(path.c_str(), X_OK) != 0) {
      return Status::InvalidArgument("ClientError: trainingImage " + image + " is not an executable file on worker " +
                                     opt.worker_id);
    }
    return std::vector<std::string>{path, "train"};
  }

  void Exited(const Key& key, proto::wire::TrialExited x) {
    x.trial = key.first;
    x.attempt = key.second;
    x.ended_at_ms = Now();
    SendReliable(x, proto::wire::MsgType::kTrialExited, key, x.seq);
  }

  // ---- directory trees made ahead of time (worker/spare_dirs.h) ------------------------------

  // Unique per agent: "<pid>-<n>" (spare and kept-data directory names start with it).
  const std::string agent_tag = [] {
    static std::atomic<uint64_t> agents{0};
    return std::to_string(::getpid()) + "-" + std::to_string(++agents);
  }();
  std::optional<SpareTrialDirs> spares;  // made by WorkerAgent's constructor (it needs opt); uses `background`

  // The job's TrainingJobDefinition (DefinitionOf), parsed once per job rather than once per
  // trial: the attempts of a job carry the same spec_json.
  std::string definition_json;
  std::optional<proto::TrainingJobDefinition> definition;
  const std::optional<proto::TrainingJobDefinition>& Definition(const proto::wire::AssignTrial& a) {
    if (definition_json.empty() || a.spec_json != definition_json) {
      definition = DefinitionOf(a);
      definition_json = a.spec_json;
    }
    return definition;
  }

  void Assign(const proto::wire::AssignTrial& a) {
    Key key{a.trial, a.attempt};
    if (runs.count(key)) return;  // a re-sent assignment we already run
    auto run = std::make_unique<Run>();
    run->assign = a;
    const fs::path trial_dir = fs::path(opt.work_dir) / "trials" / a.trial;
    run->attempt_dir = (trial_dir / ("attempt-" + std::to_string(a.attempt))).string();
    run->root = (fs::path(run->attempt_dir) / "ml").string();
    auto fail = [&](const std::string& status, const std::string& reason) {
      proto::wire::TrialExited x;
      x.status = status;
      x.secondary_status = "Failed";
      x.exit_code = -1;
      x.failure_reason = proto::wire::SanitizeText(reason, 1024);
      Log("worker: trial " + a.trial + " attempt " + std::to_string(a.attempt) + " cannot start: " + reason);
      Exited(key, std::move(x));
    };
    auto program = Program(a.image);
    if (!program.ok()) return fail("Failed", program.status().message());
    run->argv = *program;
    std::vector<MetricDefinitionSpec> defs;
    for (const auto& m : a.metric_definitions) defs.push_back({m.name, m.regex});
    auto parser = MetricParser::Create(defs);
    if (!parser.ok()) return fail("Failed", "ClientError: " + parser.status().message());
    run->parser = std::make_unique<MetricParser>(std::move(parser).value());

    const std::optional<proto::TrainingJobDefinition>& def = Definition(a);
    run->network_isolation = def && def->enable_network_isolation.value_or(false);
    run->compress_output = !(def && def->output_data_config &&
                             def->output_data_config->compression_type.value_or("GZIP") == "NONE");
    run->container = run->argv.empty();
    run->namespaces = run->container || (opt.namespaces && NamespacesWork());
    if (run->container) run->container_name = ContainerName(opt.worker_id, a.trial, a.attempt);
    if (run->network_isolation && !run->container && !NamespacesWork()) {
      return fail("Failed", std::string("ClientError: EnableNetworkIsolation is true, but worker ") + opt.worker_id +
                                " cannot create a network namespace (" +
                                (::geteuid() != 0 ? "it does not run as root" : "unshare(CLONE_NEWNET) is refused") +
                                "); run the worker as root or use a container runtime");
    }

    TrialLayoutSpec& ls = run->layout;
    ls.job_name = a.trial;
    ls.job_arn = "arn:aws:sagemaker:local:000000000000:training-job/" + a.trial;
    ls.root = run->root;
    ls.visible_root = run->namespaces ? "/opt/ml" : "";
    ls.hyperparameters = a.hyperparameters;
    std::vector<ChannelSource> sources;
    for (const auto& c : a.channels) {
      const proto::Channel* dc = nullptr;
      if (def) {
        for (const auto& x : def->input_data_config) {
          if (x.channel_name.value_or("") == c.name) dc = &x;
        }
      }
      const proto::S3DataSource* s3src =
          dc && dc->data_source && dc->data_source->s3_data_source ? &*dc->data_source->s3_data_source : nullptr;
      const proto::FileSystemDataSource* fssrc = dc && dc->data_source && dc->data_source->file_system_data_source
                                                     ? &*dc->data_source->file_system_data_source
                                                     : nullptr;
      // S3DataSource.InstanceGroupNames: the channel exists only on hosts of those groups.
      if (s3src && !s3src->instance_group_names.empty()) {
        const std::string mine = !a.instance_group.empty() ? a.instance_group : opt.instance_group;
        const auto& names = s3src->instance_group_names;
        if (std::find(names.begin(), names.end(), mine) == names.end()) {
          Log("worker: " + a.trial + ": channel " + c.name + " is for instance group(s) " + names.front() +
              (names.size() > 1 ? ", ..." : "") + ", not this host's (" + (mine.empty() ? "none" : mine) +
              "): not staged here");
          continue;
        }
      }
      LayoutChannel lc;
      lc.name = c.name;
      lc.content_type = c.content_type;
      lc.input_mode = c.input_mode;
      lc.distribution = !c.distribution_type.empty() ? c.distribution_type
                        : s3src ? s3src->s3_data_distribution_type.value_or("")
                                : "";
      lc.record_wrapper = !c.record_wrapper_type.empty() ? c.record_wrapper_type
                          : dc ? dc->record_wrapper_type.value_or("")
                               : "";
      lc.compression = !c.compression_type.empty() ? c.compression_type
                       : dc ? dc->compression_type.value_or("")
                            : "";
      ls.channels.push_back(lc);
      ChannelSource src;
      src.name = c.name;
      src.input_mode = c.input_mode.empty() ? (a.input_mode.empty() ? "File" : a.input_mode) : c.input_mode;
      if (fssrc) {
        src.directory_path = fssrc->directory_path.value_or(c.uri);
        src.access_mode = fssrc->file_system_access_mode.value_or("ro");
      } else {
        src.uri = c.uri;
        src.s3_data_type = !c.s3_data_type.empty() ? c.s3_data_type : s3src ? s3src->s3_data_type.value_or("") : "";
        src.distribution = lc.distribution;
        if (s3src) src.attribute_names = s3src->attribute_names;
      }
      if (dc && dc->shuffle_config && dc->shuffle_config->seed) src.shuffle_seed = *dc->shuffle_config->seed;
      src.compression = lc.compression;  // StageChannel refuses Gzip outside Pipe mode
      src.record_wrapper = lc.record_wrapper;
      sources.push_back(std::move(src));
    }
    if (def && def->resource_config && def->resource_config->volume_size_in_gb.value_or(0) > 0) {
      VolumeLimit v;  // FastFile and file-system channels are not on a SageMaker volume
      v.dirs = {run->root, (trial_dir / "checkpoints").string()};
      for (const auto& src : sources) {
        if (src.input_mode == "FastFile" || !src.directory_path.empty()) {
          v.skip.push_back((fs::path(run->root) / "input" / "data" / src.name).string());
        }
      }
      v.volume_gb = *def->resource_config->volume_size_in_gb;
      v.unit_bytes = opt.volume_unit_bytes;
      run->volume_limit = std::move(v);
    }
    ls.current_host = a.current_host.empty() ? "algo-1" : a.current_host;
    ls.hosts = a.hosts.empty() ? std::vector<std::string>{ls.current_host} : a.hosts;
    ls.instance_type = !a.instance_type.empty() ? a.instance_type
                       : opt.instance_type.empty() ? "local"
                                                   : opt.instance_type;
    if (!a.instance_groups.empty()) {
      for (const auto& g : a.instance_groups) ls.instance_groups.push_back({g.name, g.instance_type, g.hosts});
      ls.current_group = a.instance_group;
    } else {
      ls.current_group = !a.instance_group.empty() ? a.instance_group
                         : opt.instance_group.empty() ? "homogeneousCluster"
                                                      : opt.instance_group;
      ls.instance_groups.push_back({ls.current_group, ls.instance_type, ls.hosts});
    }
    ls.num_cpus = static_cast<int>(std::max<uint32_t>(1, DetectCpus() / std::max<uint32_t>(1, opt.slots)));
    for (uint32_t g : a.gpus) ls.gpus.push_back(static_cast<int>(g));
    ls.environment = a.environment;
    ls.training_input_mode = a.input_mode.empty() ? "File" : a.input_mode;

    // The trial's first attempt here takes a directory tree made ahead of time (one rename);
    // otherwise a stale directory of this attempt (a worker restarted mid-attempt) goes, the
    // trial's checkpoints stay, and the tree is made now.
    ls.tree_made = spares->Take(trial_dir, a.attempt);
    if (!ls.tree_made) {
      std::error_code ec;
      fs::remove_all(run->attempt_dir, ec);
      if (ec) return fail("InfraError", "cannot remove the stale directory " + run->attempt_dir + ": " + ec.message());
    }
    Status laid = LayOutTrial(ls);
    if (!laid.ok()) return fail("InfraError", "cannot lay out the trial directory: " + laid.message());
    Status cp = PrepareCheckpoints(*run, trial_dir / "checkpoints");
    if (!cp.ok()) return fail(IsClientError(cp) ? "Failed" : "InfraError", cp.message());
    if (def && def->resource_config && def->resource_config->keep_alive_period_in_seconds.value_or(0) > 0) {
      run->keep_alive_ms = *def->resource_config->keep_alive_period_in_seconds * 1000;
      for (auto src = sources.begin(); src != sources.end();) {
        if (src->input_mode != "File") {
          ++src;
          continue;
        }
        const std::string dir = (fs::path(run->root) / "input" / "data" / src->name).string();
        run->warm_channels.push_back({ChannelKey(*src, ls.hosts, ls.current_host), dir});
        if (TakeWarmData(a, run->warm_channels.back().first, dir)) {
          Log("worker: " + a.trial + " attempt " + std::to_string(a.attempt) + ": channel " + src->name +
              " reuses the data staged for the job's previous training job here (keep-alive)");
          src = sources.erase(src);
        } else {
          ++src;
        }
      }
    }
    if (ls.hosts.size() > 1) {
      run->reports_output = ls.current_host == ls.hosts.front();
      Status named = HostsFile(*run, a);
      if (!named.ok()) return fail("InfraError", named.message());
      PlanPreflight(*run, a);
    }
    if (!a.checkpoint_uri.empty()) {
      auto sync = CheckpointSync::Create(a.checkpoint_uri, (trial_dir / "checkpoints").string(), [this] { return S3(); });
      if (!sync.ok()) return fail("Failed", "ClientError: " + sync.status().message());
      run->checkpoints = std::move(sync).value();
    }

    if (!a.after_trial.empty()) {
      const Key after{a.after_trial, a.after_attempt};
      auto pred = runs.find(after);
      if (pred != runs.end() && PredecessorRunning(after)) {
        run->queued = true;
        run->after = after;
        pred->second->successor_waits->store(true);
        Log("worker: " + a.trial + " attempt " + std::to_string(a.attempt) + " queued to start when " + after.first +
            " attempt " + std::to_string(after.second) + " ends");
      }
    }
    if (!run->queued) run->deadline_ms = Deadline(a);
    run->last_flush_ms = Now();
    Run& r = *run;
    {
      std::lock_guard<std::mutex> lock(runs_mu);
      runs[key] = std::move(run);
    }
    // A container trial stages at least the runtime's preparation (worker/container.h) until both
    // are done: the sweep of stale containers, and the image found present when pulls are off.
    const bool prepare_container = r.container && (!containers_swept_done || !ImageKnownPresent(a.image));
    if (sources.empty() && !r.checkpoints && r.preflight.empty() && !prepare_container) {  // nothing to stage: the program starts now (or when its slot frees)
      if (r.queued) {
        spares->Refill();
        return;
      }
      if (!StartProgram(key, r, {})) {
        std::lock_guard<std::mutex> lock(runs_mu);
        runs.erase(key);
      }
      spares->Refill();  // after the start: making a spare takes a CPU for a millisecond
      return;
    }
    spares->Refill();
    // Staging may take long: it runs on a pool thread, the program starts once it is done.
    StagingContext base;
    base.mount_namespace = r.namespaces;
    base.hosts = ls.hosts;
    base.current_host = ls.current_host;
    base.s3 = [this] { return S3(); };
    base.cache = channel_cache.get();
    const std::string root = r.root;
    const std::string visible = r.namespaces ? "/opt/ml" : r.root;
    const std::string what = a.trial + " attempt " + std::to_string(a.attempt);
    r.staging = tasks.Post([this, sources = std::move(sources), base, root, visible, checkpoints = r.checkpoints,
                            what, preflight = r.preflight, note = r.preflight_note, host = ls.current_host,
                            image = prepare_container ? a.image : std::string(), pipe_feeds = r.pipe_feeds,
                            attempt_dir = r.attempt_dir]() -> Result<std::vector<BindMount>> {
      struct WakeOnReturn {
        const Impl* impl;
        ~WakeOnReturn() { impl->Wake(); }
      } wake{this};
      if (!image.empty()) {  // a container trial: stale containers gone, its image here when pulls are off
        SweepStaleContainers();
        if (!ImageKnownPresent(image)) {
          Status present = CheckImage(opt.container, image);
          if (!present.ok()) return present;
          std::lock_guard<std::mutex> lock(images_mu);
          images_present.insert(image);
        }
      }
      if (checkpoints) {  // the previous attempts' checkpoints, wherever they ran
        auto restored = checkpoints->Restore();
        if (!restored.ok()) {
          return Status(restored.status().code(), "cannot restore the checkpoints from " + checkpoints->uri() + ": " +
                                                      restored.status().message());
        }
        if (restored->files > 0) {
          Log("worker: " + what + ": restored " + std::to_string(restored->files) + " checkpoint file(s), " +
              std::to_string(restored->bytes) + " bytes, from " + checkpoints->uri());
        }
      }
      std::vector<BindMount> mounts;
      for (const auto& src : sources) {
        StagingContext ctx = base;
        ctx.channel_dir = (fs::path(root) / "input" / "data" / src.name).string();
        ctx.visible_dir = (fs::path(visible) / "input" / "data" / src.name).string();
        ctx.spool_dir = (fs::path(attempt_dir) / "pipe" / src.name).string();
        auto staged = StageChannel(src, ctx);
        if (!staged.ok()) return staged.status();
        if (staged->objects > 0) {
          Log("worker: " + what + ": channel " + src.name + ": " + std::to_string(staged->objects) + " object(s), " +
              std::to_string(staged->bytes) + " bytes; from the channel cache " +
              std::to_string(staged->cached_objects) + " (" + std::to_string(staged->cached_bytes) +
              " bytes), copied or downloaded " + std::to_string(staged->objects - staged->cached_objects) + " (" +
              std::to_string(staged->bytes - staged->cached_bytes) + " bytes)");
        }
        for (auto& m : staged->mounts) mounts.push_back(std::move(m));
        if (staged->pipe) pipe_feeds->push_back(std::move(*staged->pipe));
      }
      if (!preflight.empty()) {  // every host's data is in place: the gang checks NCCL together
        Status checked = RunPreflight(preflight, host, note.get());
        if (!checked.ok()) return checked;
      }
      return mounts;
    });
  }

  // A multi-host trial: `algo-N` resolves to its host inside the trial, through a copy of
  // /etc/hosts with the gang's entries bind-mounted over /etc/hosts in the trial's mount
  // namespace. Without one (not root) the names are only in resourceconfig.json and SM_HOSTS.
  Status HostsFile(Run& r, const proto::wire::AssignTrial& a) {
    if (!r.namespaces) {
      Log("worker: " + a.trial + ": host names algo-N do not resolve inside the trial without a mount namespace "
          "(run the worker as root); they are in resourceconfig.json and SM_HOSTS");
      return Status::Ok();
    }
    std::string text;
    {
      std::ifstream in("/etc/hosts");
      std::stringstream ss;
      ss << in.rdbuf();
      text = ss.str();
    }
    if (!text.empty() && text.back() != '\n') text += '\n';
    text += "# hpo: the hosts of training job " + a.trial + "\n";
    for (const auto& host : a.hosts) {
      auto it = a.host_addresses.find(host);
      if (it == a.host_addresses.end()) continue;
      addrinfo hints{};
      hints.ai_family = AF_INET;
      addrinfo* res = nullptr;
      if (::getaddrinfo(it->second.c_str(), nullptr, &hints, &res) != 0 || res == nullptr) {
        return Status::Unavailable("cannot resolve " + it->second + ", the address of " + host);
      }
      char ip[INET_ADDRSTRLEN] = {0};
      ::inet_ntop(AF_INET, &reinterpret_cast<sockaddr_in*>(res->ai_addr)->sin_addr, ip, sizeof ip);
      ::freeaddrinfo(res);
      text += std::string(ip) + " " + host + "\n";
    }
    const std::string path = r.attempt_dir + "/hosts";
    std::ofstream out(path, std::ios::trunc);
    out << text;
    if (!out.flush()) return Status::IoError("cannot write " + path);
    r.mounts.push_back({path, "/etc/hosts", true});
    return Status::Ok();
  }

  // ---- warm reuse of staged channel data (KeepAlivePeriodInSeconds) -------------------------
  // A File-mode channel's staged copy outlives its training job here for the keep-alive period,
  // under <work_dir>/warm/, and the job's next training job with the same channel (same source,
  // distribution, shuffle and host) on this worker takes it with one rename instead of staging
  // it again. A source that changed in between is not seen until the kept copy expires.
  struct WarmData {
    std::string job, definition, key, path;
    int64_t until_ms = 0;
  };
  std::vector<WarmData> warm_data;  // loop thread
  uint64_t warm_seq = 0;

  static std::string ChannelKey(const ChannelSource& s, const std::vector<std::string>& hosts,
                                const std::string& current_host) {
    std::string k = s.name + '\x1f' + s.input_mode + '\x1f' + s.directory_path + '\x1f' + s.access_mode + '\x1f' +
                    s.uri + '\x1f' + s.s3_data_type + '\x1f' + s.distribution + '\x1f' +
                    (s.shuffle_seed ? std::to_string(*s.shuffle_seed) : "-") + '\x1f' + current_host;
    for (const auto& a : s.attribute_names) k += '\x1e' + a;
    for (const auto& h : hosts) k += '\x1d' + h;
    return k;
  }

  bool TakeWarmData(const proto::wire::AssignTrial& a, const std::string& key, const std::string& dir) {
    const int64_t now = Now();
    for (auto it = warm_data.begin(); it != warm_data.end(); ++it) {
      if (it->job != a.tuning_job || it->definition != a.definition_name || it->key != key || it->until_ms <= now) {
        continue;
      }
      std::error_code ec;
      fs::remove(dir, ec);  // the layout's empty channel directory
      fs::rename(it->path, dir, ec);
      const bool ok = !ec;
      if (!ok) {
        Log("worker: cannot reuse kept channel data " + it->path + ": " + ec.message() + "; staging it again");
        fs::create_directories(dir, ec);
        (void)background.Post([path = it->path] {
          std::error_code rec;
          fs::remove_all(path, rec);
        });
      }
      warm_data.erase(it);
      return ok;
    }
    return false;
  }

  // An attempt ended: its File-mode channels' data is kept for the keep-alive period.
  void KeepWarmData(const Run& r) {
    if (r.keep_alive_ms <= 0) return;
    for (const auto& [key, dir] : r.warm_channels) {
      std::error_code ec;
      if (!fs::is_directory(dir, ec)) continue;
      const fs::path kept = fs::path(opt.work_dir) / "warm" / (agent_tag + "-" + std::to_string(++warm_seq));
      fs::create_directories(kept.parent_path(), ec);
      fs::rename(dir, kept, ec);
      if (ec) continue;
      warm_data.push_back({r.assign.tuning_job, r.assign.definition_name, key, kept.string(), Now() + r.keep_alive_ms});
    }
  }

  // Kept data whose period is over goes (on a pool thread); all of it at shutdown.
  void ExpireWarmData(bool all = false) {
    const int64_t now = Now();
    for (auto it = warm_data.begin(); it != warm_data.end();) {
      if (!all && it->until_ms > now) {
        ++it;
        continue;
      }
      (void)background.Post([path = it->path] {
        std::error_code ec;
        fs::remove_all(path, ec);
      });
      it = warm_data.erase(it);
    }
  }

  // ---- NCCL preflight (multi-host GPU attempts) ---------------------------------------------
  std::string PreflightBinary() const {
    if (!opt.nccl_preflight.empty()) return opt.nccl_preflight;
    std::error_code ec;
    const fs::path self = fs::read_symlink("/proc/self/exe", ec);
    return ec ? std::string() : (self.parent_path() / "hpo-nccl-preflight").string();
  }

  void PlanPreflight(Run& r, const proto::wire::AssignTrial& a) {
    const std::string what = a.trial + " attempt " + std::to_string(a.attempt);
    auto skipped = [&](const std::string& why) {
      if (r.reports_output) r.log_lines.push_back("hpo: NCCL preflight skipped: " + why);  // to the coordinator
      Log("worker: " + what + ": NCCL preflight skipped: " + why);
    };
    if (a.gpus.empty()) return skipped("the training job's hosts have no GPUs");
    const std::string binary = PreflightBinary();
    if (binary.empty() || ::access(binary.c_str(), X_OK) != 0) {
      return skipped("this worker has no " + (binary.empty() ? std::string("hpo-nccl-preflight") : binary) +
                     " (hpo built without CUDA and NCCL)");
    }
    auto root = a.host_addresses.find(a.hosts.front());
    if (root == a.host_addresses.end()) return;
    size_t rank = 0;
    while (rank < a.hosts.size() && a.hosts[rank] != a.current_host) ++rank;
    // The bootstrap port: chosen from the attempt, the same on every host (a clash with something
    // else on algo-1 fails the check, and the retry's attempt number picks another).
    const uint32_t port = 29500 + static_cast<uint32_t>(std::hash<std::string>{}(a.trial + "#" + std::to_string(a.attempt)) % 400);
    std::string local;
    for (uint32_t g : a.gpus) {
      if (!local.empty()) local += ',';
      local += std::to_string(g);
    }
    r.preflight = {binary, "--rank", std::to_string(rank), "--nranks", std::to_string(a.hosts.size()), "--root",
                   root->second + ":" + std::to_string(port), "--gpu", std::to_string(a.gpus.front()),
                   "--local-gpus", local};
  }

  // Runs the preflight (on the staging thread), bounded by nccl_preflight_timeout_s.
  Status RunPreflight(const std::vector<std::string>& argv, const std::string& host, std::string* note) {
    auto ran = RunTool(argv, std::chrono::seconds(opt.nccl_preflight_timeout_s));
    if (!ran.ok()) {
      return Status::Unavailable("NCCL preflight on " + host + ": cannot start " + argv[0] + ": " + ran.status().message());
    }
    const std::string tail = ran->LastLine();
    if (ran->exit_code != 0) {
      return Status::Unavailable("NCCL preflight failed on " + host + " (worker " + opt.worker_id + "): " +
                                 (ran->exit_code < 0 ? "no answer within " + std::to_string(opt.nccl_preflight_timeout_s) +
                                                           " s" + (tail.empty() ? "" : " (last: " + tail + ")")
                                  : tail.empty()     ? "exit status " + std::to_string(ran->exit_code)
                                                     : tail));
    }
    *note = "hpo: NCCL preflight on " + host + ": " + tail;
    Log("worker: " + *note);
    return Status::Ok();
  }

  int64_t Deadline(const proto::wire::AssignTrial& a) const {
    return a.max_runtime_s > 0 ? Now() + static_cast<int64_t>(a.max_runtime_s) * 1000 : 0;
  }

  // Whether the attempt `k` still holds its slot here: staging, waiting, or its program runs.
  bool PredecessorRunning(const Key& k) {
    auto it = runs.find(k);
    if (it == runs.end()) return false;
    Run& p = *it->second;
    if (p.queued) return true;
    if (p.process) return !p.process->TryWait().has_value();
    return p.staging.valid();
  }

  // An attempt that ends before its program started (stopped while queued or staging).
  void ReportNotStarted(const Key& key, Run& r, const std::string& while_doing) {
    proto::wire::TrialExited x;
    x.status = r.interrupted ? "Interrupted" : "Stopped";
    x.secondary_status = r.interrupted ? "Interrupted" : r.stop_secondary;
    x.failure_reason = proto::wire::SanitizeText(r.stop_reason, 1024);
    Log("worker: " + key.first + " attempt " + std::to_string(key.second) + " ended " + x.status + " " +
        while_doing + ": " + x.failure_reason);
    Exited(key, std::move(x));
  }

  // The trial's checkpoint directory (kept across attempts) at checkpointConfig.localPath.
  Status PrepareCheckpoints(Run& r, const fs::path& keep) {
    std::error_code ec;
    fs::create_directories(keep, ec);
    if (ec) return Status::IoError("cannot create " + keep.string() + ": " + ec.message());
    std::string local = r.assign.checkpoint_local_path.empty() ? "/opt/ml/checkpoints" : r.assign.checkpoint_local_path;
    while (local.size() > 1 && local.back() == '/') local.pop_back();
    if (local.empty() || local[0] != '/' || local.find("/../") != std::string::npos ||
        local.find("/./") != std::string::npos || local.ends_with("/..")) {
      return Status::InvalidArgument("ClientError: CheckpointConfig.LocalPath "" + local + "" is not a clean absolute path");
    }
    const bool inside = local == "/opt/ml" || local.rfind("/opt/ml/", 0) == 0;
    if (local == "/opt/ml") return Status::InvalidArgument("ClientError: CheckpointConfig.LocalPath must not be /opt/ml itself");
    const fs::path in_root = inside ? fs::path(r.root) / local.substr(8) : fs::path();
    if (r.namespaces) {
      // The mount point on the host (a container runtime makes its own): an empty directory,
      // created once.
      if (!r.container) fs::create_directories("/opt/ml", ec);
      if (ec) return Status::IoError("cannot create the mount point /opt/ml: " + ec.message());
      r.mounts.push_back({r.root, "/opt/ml", false});
      fs::path target = local;
      if (inside) {
        fs::create_directories(in_root, ec);
      } else if (!r.container) {
        fs::create_directories(target, ec);  // the mount point, on the host
      }
      if (ec) return Status::IoError("cannot create the checkpoint mount point " + local + ": " + ec.message());
      r.mounts.push_back({keep.string(), local, false});
      return Status::Ok();
    }
    if (!inside) {
      return Status::FailedPrecondition("ClientError: CheckpointConfig.LocalPath " + local +
                                        " is outside /opt/ml, which needs a worker running as root");
    }
    fs::remove_all(in_root, ec);
    fs::create_directories(in_root.parent_path(), ec);
    fs::create_directory_symlink(keep, in_root, ec);
    if (ec) return Status::IoError("cannot link " + in_root.string() + " to " + keep.string() + ": " + ec.message());
    return Status::Ok();
  }

  // What the program's monitor thread does once the program has ended and been reaped: packs and
  // uploads the artifacts (when the job has an output path) right there, then wakes the loop,
  // which reports the exit with the points and lines still to send, in one go. (The alternative,
  // the loop noticing the exit and handing the upload to another thread that wakes it again,
  // cost two more thread switches per trial, and the coordinator a separate burst and commit for
  // the report.) A worker being destroyed uploads nothing more.
  static ArtifactSpec ArtifactsOf(const Run& r) {
    ArtifactSpec spec;
    spec.root = r.root;
    spec.output_path = r.assign.output_path;
    spec.job_name = r.assign.trial;
    spec.compress = r.compress_output;
    spec.scratch_dir = r.attempt_dir;
    return spec;
  }

  std::function<void()> UploadOnExit(Run& r) {
    const bool artifacts = !r.assign.output_path.empty();
    if (!artifacts && !r.checkpoints) return [this] { Wake(); };
    const ArtifactSpec spec = artifacts ? ArtifactsOf(r) : ArtifactSpec{};
    auto done = std::make_shared<std::promise<Result<UploadedArtifacts>>>();
    r.upload = done->get_future();
    const std::string what = r.assign.trial + " attempt " + std::to_string(r.assign.attempt);
    return [this, spec, done, artifacts, what, checkpoints = r.checkpoints, successor_waits = r.successor_waits] {
      if (successor_waits->load()) Wake();  // the next trial starts in this slot while we upload
      struct WakeOnReturn {
        const Impl* impl;
        ~WakeOnReturn() { impl->Wake(); }
      } wake{this};
      if (closing.load()) {
        done->set_value(Status::Unavailable("the worker stopped before the artifacts were uploaded"));
        return;
      }
      try {
        if (checkpoints) {  // the last pass: what the program wrote up to its end (or its grace period)
          auto pass = checkpoints->Sync();
          if (!pass.ok()) {
            Log("worker: " + what + ": the last checkpoint upload to " + checkpoints->uri() +
                " failed: " + pass.status().message());
          }
        }
        done->set_value(artifacts ? UploadArtifacts(spec, [this] { return S3(); })
                                  : Result<UploadedArtifacts>(UploadedArtifacts{}));
      } catch (...) {
        done->set_exception(std::current_exception());
      }
    };
  }

  // Starts the program of a staged attempt. False when it could not start (already reported).
  bool StartProgram(const Key& key, Run& r, std::vector<BindMount> channel_mounts) {
    ProcessSpec ps;
    ps.log_path = r.attempt_dir + "/trial.log";
    if (r.container) {  // the runtime's client is the trial's process; the trial's environment goes in
      ContainerSpec cs;
      cs.image = r.assign.image;
      cs.name = r.container_name;
      cs.worker_id = opt.worker_id;
      cs.trial = key.first;
      cs.hostname = r.layout.current_host;
      cs.mounts = r.mounts;
      for (auto& m : channel_mounts) cs.mounts.push_back(std::move(m));
      cs.env = TrainingEnvironment(r.layout);
      cs.gpus = r.layout.gpus;
      cs.network_none = r.network_isolation;
      ps.argv = ContainerRunCommand(opt.container, cs);
      ps.env = CurrentEnvironment();
      ps.cwd = r.attempt_dir;
    } else {
      ps.argv = r.argv;
      ps.env = TrainingEnvironment(r.layout);
      if (const char* path = std::getenv("PATH")) ps.env.emplace("PATH", path);
      if (const char* home = std::getenv("HOME")) ps.env.emplace("HOME", home);
      ps.env.emplace("LANG", "C.UTF-8");
      ps.cwd = r.namespaces ? "/opt/ml" : r.root;
      ps.isolation.mount_namespace = r.namespaces;
      ps.isolation.mounts = r.mounts;
      for (auto& m : channel_mounts) ps.isolation.mounts.push_back(std::move(m));
      ps.isolation.network_namespace = r.network_isolation;
    }
    if (!StartPipes(key, r)) return false;
    Run* raw = &r;
    auto proc = TrialProcess::Start(ps, [raw, this](auto /*stream*/, const auto& line) {
      std::vector<MetricHit> hits = raw->parser->Parse(line);
      int64_t now = Now();
      std::lock_guard<std::mutex> lock(raw->mu);
      if (raw->container) raw->last_line = line.substr(0, 512);
      // Cut to 16384 code points: at most 64 KiB once invalid bytes became U+FFFD.
      raw->log_lines.push_back(proto::wire::SanitizeText(line, 16384));
      for (const auto& h : hits) {
        raw->points.push_back({h.name, h.value, now, h.step});
        raw->last_values[h.name] = h.value;
      }
    }, ProcessOptions{.on_exit = UploadOnExit(r)});
    if (!proc.ok()) {
      proto::wire::TrialExited x;
      const bool infra = proc.status().code() == StatusCode::kFailedPrecondition ||
                         proc.status().code() == StatusCode::kInternal || proc.status().code() == StatusCode::kIoError;
      x.status = infra ? "InfraError" : "Failed";
      x.secondary_status = "Failed";
      x.failure_reason =
          proto::wire::SanitizeText((infra ? "InternalServerError: " : "AlgorithmError: ") + proc.status().message(), 1024);
      Log("worker: " + key.first + " attempt " + std::to_string(key.second) + " cannot start: " + proc.status().message());
      Exited(key, std::move(x));
      return false;
    }
    r.process = std::move(proc).value();
    if (r.volume_limit && opt.volume_check_ms > 0) {
      r.volume = std::make_unique<VolumeWatch>(*r.volume_limit, std::chrono::milliseconds(opt.volume_check_ms));
    }
    if (r.upload.valid()) {  // a local destination directory is made while the program runs
      (void)background.Post([spec = ArtifactsOf(r)] { PrepareArtifactDirectory(spec); });
    }
    Log("worker: started " + key.first + " attempt " + std::to_string(key.second) +
        (r.container ? " (" + opt.container.runtime + " container " + r.container_name + ", image " + r.assign.image + ")"
         : r.namespaces ? " (/opt/ml in a private mount namespace)"
                        : ""));
    proto::wire::TrialStarted s;
    s.trial = key.first;
    s.attempt = key.second;
    s.worker_id = opt.worker_id;
    s.started_at_ms = Now();
    SendReliable(s, proto::wire::MsgType::kTrialStarted, key, 0);
    return true;
  }

  // ---- spot interruptions ----------------------------------------------------------------------
  std::mutex interrupt_mu;
  std::string interrupt_reason;  // set by Interrupt() (any thread)
  bool interrupted = false;      // handled (loop thread)

  void CheckInterruption() {
    std::string reason;
    {
      std::lock_guard<std::mutex> lock(interrupt_mu);
      reason = interrupt_reason;
    }
    if (reason.empty() && !opt.notice_file.empty() && !interrupted) {
      std::error_code ec;
      if (std::filesystem::exists(opt.notice_file, ec)) {
        std::ifstream in(opt.notice_file);
        std::string first;
        std::getline(in, first);
        reason = "notice file " + opt.notice_file + (first.empty() ? "" : ": " + first);
      }
    }
    if (reason.empty() || interrupted) return;
    interrupted = true;
    Log("worker: interruption notice (" + reason + "): stopping " + std::to_string(runs.size()) +
        " trial(s); they end Interrupted and are re-queued elsewhere");
    proto::wire::InterruptionNotice n;
    n.worker_id = opt.worker_id;
    n.reason = proto::wire::SanitizeText(reason, 4096);
    n.deadline_ms = 0;
    if (registered) Send(n);
    std::lock_guard<std::mutex> lock(runs_mu);
    for (auto& [key, r] : runs) {
      r->interrupted = true;
      StopRun(*r, "Interrupted: " + reason, "Interrupted", r->assign.grace_period_s);
    }
  }

  void StopRun(Run& r, const std::string& reason, const std::string& secondary, int64_t grace_s) {
    if (!r.stop_reason.empty()) return;
    r.stop_reason = reason;
    r.stop_secondary = secondary;
    r.stop_grace_ms = grace_s * 1000;
    StopPipes(r);
    if (!r.process) return;
    const std::vector<std::string> stop = r.container ? ContainerStopCommand(opt.container, r.container_name, grace_s)
                                                      : std::vector<std::string>{};
    if (stop.empty()) {
      r.process->Stop(std::chrono::milliseconds(grace_s * 1000));
      return;
    }
    // The runtime stops the container (SIGTERM, SIGKILL after the grace period); the client
    // process is killed only if it is still there well after that.
    (void)background.Post([this, stop, grace_s] {
      auto done = RunTool(stop, std::chrono::seconds(grace_s) + opt.container.stop_margin);
      if (!done.ok() || done->exit_code != 0) {
        Log("worker: " + stop.back() + ": " + (done.ok() ? done->output : done.status().message()));
      }
    });
    r.process->Stop(std::chrono::milliseconds(grace_s * 1000) + opt.container.stop_margin);
  }

  // Pipe-mode channels (worker/pipe_channel.h): the FIFOs <channel>_0 exist before the program
  // starts; each epoch is logged here, an error that ends the feeding also in the trial's log.
  // False when a feeder cannot start (reported as for a program that cannot start).
  bool StartPipes(const Key& key, Run& r) {
    const std::string what = key.first + " attempt " + std::to_string(key.second);
    for (const PipeFeed& feed : *r.pipe_feeds) {
      PipeFeederOptions o;
      o.log = [this, what](const std::string& line) { Log("worker: " + what + ": " + line); };
      o.on_error = [this, what, raw = &r](const Status& s) {
        const std::string line = "hpo: Pipe input mode: " + s.message() + "; no more data is fed";
        Log("worker: " + what + ": " + line);
        if (FILE* f = std::fopen((raw->attempt_dir + "/trial.log").c_str(), "a")) {
          std::fprintf(f, "%s\n", line.c_str());
          std::fclose(f);
        }
        std::lock_guard<std::mutex> lock(raw->mu);
        if (raw->reports_output) raw->log_lines.push_back(proto::wire::SanitizeText(line, 16384));
      };
      auto feeder = PipeFeeder::Start(feed, std::move(o));
      if (!feeder.ok()) {
        proto::wire::TrialExited x;
        x.status = "InfraError";
        x.secondary_status = "Failed";
        x.failure_reason = proto::wire::SanitizeText("InternalServerError: " + feeder.status().message(), 1024);
        Log("worker: " + what + " cannot start: " + feeder.status().message());
        Exited(key, std::move(x));
        return false;  // the feeders started go with the attempt
      }
      r.pipes.push_back(std::move(feeder).value());
    }
    return true;
  }

  // Once the program has been reaped or is being stopped: no more epochs, and the spooled copies go.
  void StopPipes(Run& r) {
    if (r.pipes.empty()) return;
    for (auto& p : r.pipes) p->Stop();
    r.pipes.clear();
    (void)background.Post([dir = r.attempt_dir + "/pipe"] {
      std::error_code ec;
      fs::remove_all(dir, ec);
    });
  }

  // Sends the trial's buffered points and output lines, in batches.
  void Flush(const Key& key, Run& r) {
    std::vector<proto::wire::MetricPoint> pts;
    std::vector<std::string> lines;
    {
      std::lock_guard<std::mutex> lock(r.mu);
      pts.swap(r.points);
      lines.swap(r.log_lines);
    }
    r.last_flush_ms = Now();
    if (!r.reports_output) return;
    for (size_t i = 0; i < lines.size();) {
      proto::wire::LogLines m;
      m.trial = key.first;
      m.attempt = key.second;
      m.seq = ++r.log_seq;
      m.first_line = r.next_line;
      size_t bytes = 0;
      while (i < lines.size() && m.lines.size() < 2000 && bytes < (1u << 20)) {
        bytes += lines[i].size();
        m.lines.push_back(std::move(lines[i++]));
      }
      r.next_line += m.lines.size();
      SendReliable(m, proto::wire::MsgType::kLogLines, key, m.seq);
    }
    r.last_flush_ms = Now();
    for (size_t i = 0; i < pts.size(); i += opt.max_batch_points) {
      proto::wire::MetricPoints m;
      m.trial = key.first;
      m.attempt = key.second;
      m.seq = ++r.seq;
      m.points.assign(pts.begin() + static_cast<long>(i),
                      pts.begin() + static_cast<long>(std::min(pts.size(), i + opt.max_batch_points)));
      SendReliable(m, proto::wire::MsgType::kMetricPoints, key, m.seq);
    }
  }

  // Starts the next periodic checkpoint pass of a running attempt on a pool thread, at most one at
  // a time and every checkpoint_sync_ms; a failed pass is logged once (the next one retries).
  void CheckpointPass(const Key& key, Run& r, int64_t now) {
    if (r.checkpoint_pass.valid()) {
      if (!Ready(r.checkpoint_pass)) return;
      auto done = r.checkpoint_pass.get();
      if (!done.ok() && !r.checkpoint_error_logged) {
        r.checkpoint_error_logged = true;
        Log("worker: " + key.first + " attempt " + std::to_string(key.second) + ": uploading checkpoints to " +
            r.checkpoints->uri() + " failed (retried every " + std::to_string(opt.checkpoint_sync_ms) +
            " ms): " + done.status().message());
      }
    }
    if (now - r.last_checkpoint_pass_ms < opt.checkpoint_sync_ms) return;
    r.last_checkpoint_pass_ms = now;
    r.checkpoint_pass = background.Post([c = r.checkpoints] { return c->Sync(); });
  }

  static bool Ready(const auto& future) {
    return future.valid() && future.wait_for(std::chrono::seconds(0)) == std::future_status::ready;
  }

  void PollTrials() {
    int64_t now = Now();
    std::vector<Key> done;
    for (auto& [key, rp] : runs) {
      Run& r = *rp;
      if (r.deadline_ms && now >= r.deadline_ms && r.stop_reason.empty()) {
        StopRun(r, "MaxRuntimeExceeded: the training job ran longer than its max runtime of " +
                       std::to_string(r.assign.max_runtime_s) + " s",
                "MaxRuntimeExceeded", r.assign.grace_period_s);
      }
      if (r.queued) {  // assigned ahead: its slot frees when its predecessor's program ends
        if (r.stop_reason.empty() && PredecessorRunning(r.after)) continue;
        r.queued = false;
        if (r.stop_reason.empty()) r.deadline_ms = Deadline(r.assign);
        if (!r.staging.valid()) {
          if (!r.stop_reason.empty()) {
            ReportNotStarted(key, r, "before it started");
            done.push_back(key);
          } else if (!StartProgram(key, r, {})) {
            done.push_back(key);
          }
          continue;
        }
      }
      if (r.staging.valid()) {  // data staging
        if (!Ready(r.staging)) continue;
        auto mounts = r.staging.get();
        if (!r.preflight_note->empty() && r.reports_output) {
          std::lock_guard<std::mutex> lock(r.mu);
          r.log_lines.push_back(*r.preflight_note);
        }
        if (!r.stop_reason.empty()) {
          ReportNotStarted(key, r, "while staging data");
          done.push_back(key);
          continue;
        }
        if (!mounts.ok()) {
          proto::wire::TrialExited x;
          const bool client = IsClientError(mounts.status());
          x.status = client ? "Failed" : "InfraError";
          x.secondary_status = "Failed";
          x.failure_reason = proto::wire::SanitizeText(
              (client ? "ClientError: " : "InternalServerError: ") + mounts.status().message(), 1024);
          Log("worker: " + key.first + " attempt " + std::to_string(key.second) + " ended " + x.status +
              " while staging data: " + x.failure_reason);
          Exited(key, std::move(x));
          done.push_back(key);
          continue;
        }
        if (!StartProgram(key, r, std::move(mounts).value())) done.push_back(key);
        continue;
      }
      if (!r.process) continue;
      auto exit = r.process->TryWait();
      if (!exit) {
        if (now - r.last_flush_ms >= opt.flush_ms) Flush(key, r);
        if (r.checkpoints) CheckpointPass(key, r, now);
        if (r.volume && r.stop_reason.empty()) {
          if (std::string over = r.volume->Exceeded(); !over.empty()) {
            Log("worker: stopping " + key.first + " attempt " + std::to_string(key.second) + ": " + over);
            StopRun(r, over, "Failed", r.assign.grace_period_s);
            r.stop_fails = true;
          }
        }
        continue;
      }
      StopPipes(r);
      r.volume.reset();
      if (r.upload.valid() && !Ready(r.upload)) continue;  // its monitor thread wakes us when uploaded
      Flush(key, r);
      proto::wire::TrialExited x;
      x.seq = r.seq;
      x.exit_code = exit->exit_code;
      x.signal = exit->signal;
      if (r.reports_output) {
        std::lock_guard<std::mutex> lock(r.mu);
        for (const auto& [name, v] : r.last_values) x.final_metrics.push_back({name, v});
      }
      // Stopped: we asked it to stop before it ended (a stop that came while its artifacts were
      // being uploaded finds a program that had ended by itself).
      if (r.stop_fails && exit->stopped_by_us) {  // the job's fault (its volume)
        x.status = "Failed";
        x.secondary_status = "Failed";
        x.failure_reason = proto::wire::SanitizeText(r.stop_reason, 1024);
      } else if (r.interrupted && exit->stopped_by_us) {
        x.status = "Interrupted";
        x.secondary_status = "Interrupted";
        x.failure_reason = proto::wire::SanitizeText(r.stop_reason, 1024);
      } else if (!r.stop_reason.empty() && exit->stopped_by_us) {
        x.status = "Stopped";
        x.secondary_status = r.stop_secondary;
        x.failure_reason = proto::wire::SanitizeText(r.stop_reason, 1024);
      } else if (exit->exit_code == 0) {
        x.status = "Completed";
        x.secondary_status = "Completed";
      } else if (r.container && IsRuntimeFailure(opt.container, exit->exit_code)) {
        std::string last;
        {
          std::lock_guard<std::mutex> lock(r.mu);
          last = r.last_line;
        }
        x.status = "InfraError";
        x.secondary_status = "Failed";
        x.failure_reason = proto::wire::SanitizeText(
            "InternalServerError: the container runtime " + opt.container.runtime + " failed (exit 125): " + last, 1024);
      } else {
        x.status = "Failed";
        x.secondary_status = "Failed";
        auto reason = ReadFailureReason(r.root);
        std::string why = reason.ok() ? *reason : "";
        if (why.empty()) {
          why = exit->signal ? "AlgorithmError: the training program was killed by signal " +
                                   std::to_string(exit->signal)
                             : "AlgorithmError: the training program exited with code " +
                                   std::to_string(exit->exit_code);
        }
        x.failure_reason = proto::wire::SanitizeText(why, 1024);
      }
      if (r.container && exit->signal != 0) {  // the client was killed: the container may outlive it
        if (auto rm = ContainerRemoveCommand(opt.container, r.container_name); !rm.empty()) {
          (void)background.Post([rm] { (void)RunTool(rm, std::chrono::seconds(60)); });
        }
      }
      // Its monitor thread may still be letting go of the program's mount namespace (which the
      // kernel tears down with an RCU grace period): joined on a pool thread, not here.
      (void)background.Post([done_process = std::move(r.process)]() mutable { done_process.reset(); });
      std::string where;
      if (r.upload.valid()) {
        Result<UploadedArtifacts> uploaded = r.upload.get();
        if (!uploaded.ok()) {
          const Status& up = uploaded.status();
          Log("worker: " + key.first + " attempt " + std::to_string(key.second) +
              ": uploading the artifacts failed: " + up.message());
          if (x.status == "Completed") {
            const bool client = IsClientError(up);
            x.status = client ? "Failed" : "InfraError";
            x.secondary_status = "Failed";
            x.failure_reason = proto::wire::SanitizeText(
                (client ? "ClientError: " : "InternalServerError: ") + std::string("cannot upload the model: ") +
                    up.message(),
                1024);
          }
        } else if (!uploaded->model.empty()) {
          where = "; uploaded " + uploaded->model + " and " + uploaded->output_data;
        }
      }
      Log("worker: " + key.first + " attempt " + std::to_string(key.second) + " ended " + x.status + where);
      KeepWarmData(r);
      Exited(key, std::move(x));
      done.push_back(key);
    }
    std::lock_guard<std::mutex> lock(runs_mu);
    for (const auto& k : done) runs.erase(k);
  }

  // ---- messages ----------------------------------------------------------------------------------

  void OnAck(const proto::wire::Ack& a) {
    auto type = static_cast<proto::wire::MsgType>(a.type);
    // MetricPoints and TrialExited acknowledgements are cumulative (the coordinator applies
    // metric batches in seq order and acknowledges only without a gap). LogLines are stored by
    // line number in any order and acknowledged one by one: a cumulative reading would drop a
    // batch lost with a connection reset when a later one got through (a fault test lost lines).
    std::erase_if(outbox, [&](const Pending& p) {
      if (p.type != type || p.key.first != a.trial || p.key.second != a.attempt) return false;
      return type == proto::wire::MsgType::kLogLines ? p.seq == a.seq : p.seq <= a.seq;
    });
    // The attempt has ended and nothing of it waits for an acknowledgement: its journal goes.
    if (journal && !runs.count({a.trial, a.attempt}) &&
        std::none_of(outbox.begin(), outbox.end(),
                     [&](const Pending& p) { return p.key.first == a.trial && p.key.second == a.attempt; })) {
      journal->Drop(a.trial, a.attempt);
    }
  }

  Status Handle(const proto::wire::Message& m) {
    last_heard_ms = Now();
    if (const auto* ack = std::get_if<proto::wire::RegisterAck>(&m)) {
      if (!ack->accepted) {
        return Status::FailedPrecondition("the coordinator refused this worker: " + ack->reason);
      }
      registered = true;
      if (ack->heartbeat_interval_ms > 0) opt.heartbeat_ms = ack->heartbeat_interval_ms;
      if (ack->lease_ms > 0) opt.coordinator_lease_ms = ack->lease_ms;
      for (const auto& s : ack->stop) {
        auto it = runs.find({s.trial, s.attempt});
        if (it != runs.end()) StopRun(*it->second, "the coordinator no longer runs this attempt", "Stopped", 0);
      }
      for (auto& p : outbox) {  // what the old connection may have lost
        SendFrames(p.frames);
        p.sent_ms = Now();
      }
      Log("worker: registered with " + opt.connect + " as " + opt.worker_id);
      spares->Start();
    } else if (const auto* a = std::get_if<proto::wire::AssignTrial>(&m)) {
      Assign(*a);
    } else if (const auto* s = std::get_if<proto::wire::StopTrial>(&m)) {
      auto it = runs.find({s->trial, s->attempt});
      if (it != runs.end()) StopRun(*it->second, "Stopped: " + s->reason, "Stopped", s->grace_period_s);
    } else if (const auto* ack = std::get_if<proto::wire::Ack>(&m)) {
      OnAck(*ack);
    } else if (const auto* e = std::get_if<proto::wire::Error>(&m)) {
      if (e->code == "NotRegistered") {
        registered = false;
        SendRegister();
      } else {
        Log("worker: the coordinator reported " + e->code + ": " + e->message);
      }
    }
    return Status::Ok();
  }

  // How long the loop sleeps when nothing arrives. What is urgent wakes it at once (a message,
  // a program's exit, staging done); the rest is periodic: metric and log batches (flush_ms),
  // heartbeats, re-sends, max runtimes, the lease. Not every 10 ms with 16 slots busy: that was
  // 100 wake-ups a second per worker for nothing.
  int64_t TickMs() const {
    if (!registered || wake_fd < 0) return 10;
    const int64_t tick = std::min({int64_t{50}, opt.flush_ms, opt.heartbeat_ms, opt.resend_ms,
                                   opt.coordinator_lease_ms / 4});
    return std::max<int64_t>(tick, 1);
  }

  // --spot-notice-url: polled on its own thread (a metadata endpoint may take its timeout to
  // answer); a notice becomes an interruption like SIGUSR1. Errors are logged when they change.
  std::mutex notice_mu;
  std::condition_variable notice_cv;
  bool notice_stop = false;
  std::thread notice_thread;
  void StartNoticePoller() {
    if (!opt.spot || opt.notice_url.empty()) return;
    notice_thread = std::thread([this] {
      NoticeUrl url(opt.notice_url);
      std::string last_error;
      std::unique_lock<std::mutex> lock(notice_mu);
      while (!notice_stop) {
        lock.unlock();
        auto notice = url.Poll();
        lock.lock();
        if (!notice.ok()) {
          if (notice.status().message() != last_error) {
            last_error = notice.status().message();
            Log("worker: cannot read the spot notice URL (polling on every " + std::to_string(opt.notice_poll_ms) +
                " ms): " + last_error);
          }
        } else if (!notice->empty()) {
          lock.unlock();
          Interrupt("notice URL " + opt.notice_url + ": " + *notice);
          return;
        } else if (!last_error.empty()) {
          Log("worker: the spot notice URL answers again (no notice)");
          last_error.clear();
        }
        notice_cv.wait_for(lock, std::chrono::milliseconds(opt.notice_poll_ms), [this] { return notice_stop; });
      }
    });
  }
  void StopNoticePoller() {
    {
      std::lock_guard<std::mutex> lock(notice_mu);
      notice_stop = true;
    }
    notice_cv.notify_all();
    if (notice_thread.joinable()) notice_thread.join();
  }
  void Interrupt(const std::string& reason) {
    {
      std::lock_guard<std::mutex> lock(interrupt_mu);
      if (!interrupt_reason.empty()) return;
      interrupt_reason = reason.empty() ? "interrupted" : reason;
    }
    Wake();
  }

  Status Loop(const std::atomic<bool>& stop) {
    struct StopSparesOnReturn {
      Impl* impl;
      ~StopSparesOnReturn() {
        impl->StopNoticePoller();
        impl->spares->Stop();
      }
    } stop_spares{this};
    StartNoticePoller();
    OpenJournal();
    if (opt.container.enabled()) {
      Log("worker: container runtime " + opt.container.runtime + " (" + opt.container.binary + "), pulls " +
          opt.container.pull);
    }
    OpenChannelCache();
    Connect();
    while (!stop.load()) {
      zmq::pollitem_t items[] = {{sock->handle(), 0, ZMQ_POLLIN, 0}, {nullptr, wake_fd, ZMQ_POLLIN, 0}};
      try {
        zmq::poll(items, wake_fd >= 0 ? 2 : 1, std::chrono::milliseconds(TickMs()));
      } catch (const zmq::error_t& e) {
        if (e.num() != EINTR) Log(std::string("worker: poll failed: ") + e.what());
      }
      if (items[1].revents & ZMQ_POLLIN) DrainWake();
      CheckInterruption();
      while (items[0].revents & ZMQ_POLLIN) {
        std::vector<zmq::message_t> parts;
        zmq::recv_result_t got;
        try {
          got = zmq::recv_multipart(*sock, std::back_inserter(parts), zmq::recv_flags::dontwait);
        } catch (const zmq::error_t& e) {
          break;
        }
        if (!got) break;
        std::vector<std::string> frames;
        for (auto& p : parts) frames.push_back(p.to_string());
        proto::wire::Error reply;
        auto msg = proto::wire::DecodeFrames(frames, &reply);
        if (!msg.ok()) {
          Log("worker: rejected a message from the coordinator: " + msg.status().message());
          Send(reply);
          continue;
        }
        HPO_RETURN_IF_ERROR(Handle(*msg));
      }
      PollTrials();
      if (!warm_data.empty()) ExpireWarmData();
      int64_t now = Now();
      if (!registered && now - register_sent_ms >= register_backoff_ms) {
        SendRegister();
        register_backoff_ms = std::min<int64_t>(register_backoff_ms * 2, 1000);
      }
      if (registered && now - last_heartbeat_ms >= opt.heartbeat_ms) {
        proto::wire::Heartbeat h;
        h.worker_id = opt.worker_id;
        h.seq = ++heartbeat_seq;
        size_t busy = 0;
        for (const auto& [k, r] : runs) busy += r->queued ? 0 : 1;
        h.free_slots = static_cast<uint32_t>(opt.slots > busy ? opt.slots - busy : 0);
        // As in Register (the coordinator re-queues an attempt its worker does not hold).
        for (const auto& k : HeldAttempts()) h.running.push_back({k.first, k.second});
        Send(h);
        last_heartbeat_ms = now;
      }
      if (registered) {
        for (auto& p : outbox) {
          if (now - p.sent_ms >= opt.resend_ms) {
            SendFrames(p.frames);
            p.sent_ms = now;
          }
        }
      }
      if (now - last_heard_ms > opt.coordinator_lease_ms) {
        Log("worker: no word from the coordinator for " + std::to_string(now - last_heard_ms) +
            " ms; reconnecting (trials keep running)");
        Connect();
      }
    }
    // Shutdown: stop what runs, report it, and give the reports a moment to leave.
    // Every attempt gets its own grace period; output, uploads and the reports get
    // shutdown_extra_ms beyond the longest one.
    int64_t longest_grace_ms = 0;
    for (auto& [k, r] : runs) {
      StopRun(*r, "the worker is shutting down", "Stopped", r->assign.grace_period_s);
      longest_grace_ms = std::max(longest_grace_ms, r->stop_grace_ms);
    }
    int64_t until = Now() + longest_grace_ms + opt.shutdown_extra_ms;
    while (!runs.empty() && Now() < until) {
      PollTrials();
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    ExpireWarmData(true);
    return Status::Ok();
  }

  // Set when the agent is destroyed: monitor threads that see a program end now upload nothing.
  std::atomic<bool> closing{false};

  ~Impl() {
    closing = true;
    // The attempts still here (a shutdown that ran out of time) end first: their monitor threads
    // may still be uploading with what the members below hold.
    std::lock_guard<std::mutex> lock(runs_mu);
    runs.clear();
  }

  // Last members: destroyed first, so their threads end before anything their tasks use.
  TaskPool tasks;
  // Spares, stale-spare cleanup, artifact directories made early, joining finished programs'
  // threads: work that nothing waits for. (Not at a lower priority: on a machine busy with other
  // work that starved it, and launches fell back to making their trees themselves.)
  TaskPool background;
};

WorkerAgent::WorkerAgent(AgentOptions options) : impl_(std::make_unique<Impl>()) {
  if (!options.now_ms) options.now_ms = SystemNowMs;
  if (!options.log) options.log = [](const std::string& l) { std::fprintf(stderr, "%s\n", l.c_str()); };
  if (options.host.empty()) options.host = Hostname();
  if (options.worker_id.empty()) options.worker_id = options.host + "-" + std::to_string(::getpid());
  if (options.slots == 0) options.slots = 1;
  impl_->opt = std::move(options);
  Impl* impl = impl_.get();
  impl->spares.emplace(impl->opt.work_dir, impl->agent_tag, impl->opt.slots, &impl->background,
                       [impl](const std::string& l) { impl->Log(l); });
}

WorkerAgent::~WorkerAgent() = default;

Status WorkerAgent::Run(const std::atomic<bool>& stop) {
  try {
    return impl_->Loop(stop);
  } catch (const zmq::error_t& e) {
    return Status::Unavailable(std::string("worker: ZeroMQ error: ") + e.what());
  }
}

void WorkerAgent::Interrupt(const std::string& reason) { impl_->Interrupt(reason); }

size_t WorkerAgent::running() const {
  std::lock_guard<std::mutex> lock(impl_->runs_mu);
  return impl_->runs.size();
}

}  // namespace hpo::worker
