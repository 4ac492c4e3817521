// worker/agent.cc: the public WorkerAgent methods, the socket, coordinator messages and the loop;
// the rest of WorkerAgent::Impl is in the other agent_*.cc files (worker/agent_impl.h lists them).
#include "worker/agent.h"

#include "worker/agent_impl.h"

#include "common/file_util.h"
#include "worker/orphans.h"

#include <arpa/inet.h>
#include <sched.h>
#include <ifaddrs.h>
#include <net/if.h>
#include <netdb.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include <algorithm>
#include <chrono>
#include <cctype>
#include <cstring>
#include <sstream>
#include <stdexcept>
#include <string_view>

namespace hpo::worker {

// Free space for trials in `dir`, in MiB, as Register.disk_mb and Heartbeat.disk_mb report it;
// 0 when it cannot be told.
static uint64_t FreeDiskMb(const std::string& dir) {
  std::error_code ec;
  const fs::space_info space = fs::space(dir, ec);
  return ec ? 0 : static_cast<uint64_t>(space.available >> 20);
}

// The CPUs this process may run on (its affinity: a Slurm step, taskset, a cpuset), not every
// CPU of the machine: a worker given one CPU of eight advertised eight, and its training jobs
// were told SM_NUM_CPUS=8 while they shared one.
uint32_t DetectCpus() {
  cpu_set_t set;
  CPU_ZERO(&set);
  if (::sched_getaffinity(0, sizeof set, &set) == 0) {
    const int n = CPU_COUNT(&set);
    if (n > 0) return static_cast<uint32_t>(n);
  }
  long n = ::sysconf(_SC_NPROCESSORS_ONLN);
  return n > 0 ? static_cast<uint32_t>(n) : 1;
}

uint64_t DetectMemoryMb() {
  long pages = ::sysconf(_SC_PHYS_PAGES);
  long page = ::sysconf(_SC_PAGE_SIZE);
  return pages > 0 && page > 0 ? static_cast<uint64_t>(pages) * static_cast<uint64_t>(page) / (1024 * 1024) : 0;
}

std::string InterfaceOf(const std::string& host) {
  std::vector<sockaddr_storage> addresses;
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_flags = AI_ADDRCONFIG;
  addrinfo* found = nullptr;
  if (!host.empty() && ::getaddrinfo(host.c_str(), nullptr, &hints, &found) == 0) {
    for (addrinfo* a = found; a; a = a->ai_next) {
      sockaddr_storage ss{};
      std::memcpy(&ss, a->ai_addr, std::min<size_t>(a->ai_addrlen, sizeof ss));
      addresses.push_back(ss);
    }
    ::freeaddrinfo(found);
  }
  auto same = [](const sockaddr* x, const sockaddr_storage& y) {
    if (x->sa_family != y.ss_family) return false;
    if (x->sa_family == AF_INET) {
      return reinterpret_cast<const sockaddr_in*>(x)->sin_addr.s_addr ==
             reinterpret_cast<const sockaddr_in*>(&y)->sin_addr.s_addr;
    }
    return x->sa_family == AF_INET6 && std::memcmp(&reinterpret_cast<const sockaddr_in6*>(x)->sin6_addr,
                                                   &reinterpret_cast<const sockaddr_in6*>(&y)->sin6_addr,
                                                   sizeof(in6_addr)) == 0;
  };
  ifaddrs* ifs = nullptr;
  std::string name;
  if (::getifaddrs(&ifs) == 0) {
    for (ifaddrs* i = ifs; i && name.empty(); i = i->ifa_next) {
      if (!i->ifa_addr) continue;
      for (const auto& a : addresses) {
        if (same(i->ifa_addr, a)) name = i->ifa_name;
      }
      // 127.0.0.0/8 is all on lo, which holds only 127.0.0.1 as an address.
      for (const auto& a : addresses) {
        if (name.empty() && a.ss_family == AF_INET && (i->ifa_flags & IFF_LOOPBACK) &&
            (ntohl(reinterpret_cast<const sockaddr_in*>(&a)->sin_addr.s_addr) >> 24) == 127) {
          name = i->ifa_name;
        }
      }
    }
    ::freeifaddrs(ifs);
  }
  if (!name.empty()) return name;
  // The default route's interface (/proc/net/route: Iface, Destination 00000000).
  if (auto routes = ReadFile("/proc/net/route", 1u << 20); routes.ok()) {
    std::istringstream in(*routes);
    std::string line;
    std::getline(in, line);  // the header
    while (std::getline(in, line)) {
      std::istringstream fields(line);
      std::string iface, destination;
      if (fields >> iface >> destination && destination == "00000000") return iface;
    }
  }
  return "eth0";
}

bool WorkerAgent::Impl::ImageKnownPresent(const std::string& image) {
  if (opt.container.pull != "never" && !PullsBeforeStart(opt.container)) return true;  // apptainer fetches itself
  if (opt.container.pull == "always") return false;  // pulled for every trial
  if (opt.container.pull == "missing" && IsImageSource(image)) return false;  // a source: copied every time
  std::lock_guard<std::mutex> lock(images_mu);
  return images_present.count(image) > 0;
}

void WorkerAgent::Impl::SweepStaleContainers() {
  std::call_once(containers_swept, [this] {
    auto removed = RemoveStaleContainers(opt.container, ContainerOwner(opt.worker_id, opt.work_dir));
    if (!removed.ok()) {
      Log("worker: cannot look for stale containers: " + removed.status().message());
    } else if (*removed > 0) {
      Log("worker: removed " + std::to_string(*removed) + " container(s) an earlier process of " + opt.worker_id +
          " left");
    }
    containers_swept_done = true;
  });
}

Result<const S3Client*> WorkerAgent::Impl::S3() {
  std::lock_guard<std::mutex> lock(s3_mu);
  if (!s3) {
    // What this worker lacks (credentials, a usable endpoint) is no fault of the training job:
    // Unavailable, an infrastructure error, and the job runs on a worker that has them (it
    // failed as a ClientError, sinking the tuning job).
    auto cfg = S3Config::FromEnvironment(opt.s3_endpoint);
    if (!cfg.ok()) return Status::Unavailable(std::string(agent_detail::kNoS3) + ": " + cfg.status().message());
    // Said in the worker's log, at most one line each 10 s: a stalled endpoint held a training
    // job in Uploading for minutes without a word (an S3 pass).
    cfg->on_retry = [this, endpoint = cfg->endpoint,
                     last = std::make_shared<std::atomic<int64_t>>(0)](const std::string& what) {
      const int64_t now = Now();
      int64_t before = last->load();
      if (now - before < 10'000 || !last->compare_exchange_strong(before, now)) return;
      Log("worker: S3 at " + endpoint + " is not answering as it should, retrying: " + what);
    };
    auto c = S3Client::Create(*cfg);
    if (!c.ok()) return Status::Unavailable(std::string(agent_detail::kNoS3) + ": " + c.status().message());
    s3 = std::move(c).value();
  }
  return static_cast<const S3Client*>(s3.get());
}

void WorkerAgent::Impl::OpenChannelCache() {
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

void WorkerAgent::Impl::Connect() {
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
  // "<id>/<session>": this process's own connection at the coordinator (coordinator/dispatcher.h
  // routes_). Under the bare id, a second process started with this worker's --id took this
  // connection over at the coordinator before it was refused.
  char session_hex[17];
  std::snprintf(session_hex, sizeof session_hex, "%016llx", static_cast<unsigned long long>(session));
  sock->set(zmq::sockopt::routing_id, opt.worker_id + "/" + session_hex);
  sock->set(zmq::sockopt::linger, 0);
  sock->set(zmq::sockopt::maxmsgsize, int64_t{16} << 20);
  sock->set(zmq::sockopt::reconnect_ivl, 100);
  sock->set(zmq::sockopt::reconnect_ivl_max, 2000);
  // Queue nothing while the connection is down: Register is re-sent every second until
  // acknowledged and reliable reports are re-sent after it, so a backlog would only replay
  // stale copies at the coordinator.
  sock->set(zmq::sockopt::immediate, true);
  // An IPv6 address (tcp://[::1]:7700) needs ZeroMQ's IPv6 on; not for names, which might then
  // resolve to an IPv6 address a coordinator on 0.0.0.0 does not listen on.
  if (opt.connect.find('[') != std::string::npos) sock->set(zmq::sockopt::ipv6, true);
  try {
    sock->connect(opt.connect);
  } catch (const zmq::error_t& e) {
    throw std::invalid_argument("cannot connect to " + opt.connect + ": " + e.what() +
                                " (an endpoint looks like tcp://HOST:7700)");
  }
  registered = false;
  last_heard_ms = Now();
  register_backoff_ms = 20;
  SendRegister();
}

void WorkerAgent::Impl::SendFrames(const std::vector<std::string>& frames) {
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

bool WorkerAgent::Impl::SendReliable(const proto::wire::Message& m, proto::wire::MsgType type, Key key, uint64_t seq) {
  Pending p{type, std::move(key), seq, proto::wire::EncodeFrames(m), Now()};
  bool kept_on_disk = true;
  if (journal) {
    Status kept = journal->Append(p.key.first, p.key.second, p.frames);
    kept_on_disk = kept.ok();
    if (!kept.ok() && !journal_error_logged) {
      journal_error_logged = true;
      Log("worker: reports are kept in memory only from now on: " + kept.message());
    }
  }
  if (registered) SendFrames(p.frames);
  outbox.push_back(std::move(p));
  return kept_on_disk;
}

void WorkerAgent::Impl::OpenJournal() {
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
    std::vector<std::pair<uint64_t, uint64_t>> line_ranges;  // of each report: [first, end) (LogLines)
    uint64_t lines_end = 0;                                  // one past the highest line number
    bool exited = false, started = false;
    uint64_t last_batch = 0;  // the last metric batch it holds (an exit report follows it)
    for (const auto& frames : l.reports) {
      auto msg = proto::wire::DecodeFrames(frames);
      if (!msg.ok()) continue;
      uint64_t seq = 0;
      std::pair<uint64_t, uint64_t> lines{0, 0};
      started = started || std::holds_alternative<proto::wire::TrialStarted>(*msg);
      if (const auto* mp = std::get_if<proto::wire::MetricPoints>(&*msg)) {
        seq = mp->seq;
        last_batch = std::max(last_batch, seq);
      }
      if (const auto* ll = std::get_if<proto::wire::LogLines>(&*msg)) {
        seq = ll->seq;
        lines = {ll->first_line, ll->first_line + ll->lines.size()};
        lines_end = std::max(lines_end, lines.second);
      }
      if (const auto* x = std::get_if<proto::wire::TrialExited>(&*msg)) {
        seq = x->seq;
        exited = true;
      }
      reports.push_back({proto::wire::TypeOf(*msg), key, seq, frames, 0});
      line_ranges.push_back(lines);
    }
    // Batches of lines the coordinator would not keep (the middle of a long log, by the numbers
    // of the newest lines) are not sent again; a flood journaled under a fast coordinator would
    // otherwise all be held in memory here.
    std::vector<Pending> kept;
    for (size_t i = 0; i < reports.size(); ++i) {
      const auto [first, end] = line_ranges[i];
      if (end > first && first >= proto::wire::kLogHeadLines && end + proto::wire::kLogTailLines <= lines_end) continue;
      kept.push_back(std::move(reports[i]));
    }
    reports.swap(kept);
    const std::string attempt_dir = AttemptDir(l.trial, l.attempt);
    if (!exited && fs::exists(fs::path(attempt_dir) / kPendingExitFile)) {
      // Its program ended; its uploads were left to do (ResumePendingExits): its reports so far
      // go out again, its exit report follows the uploads.
      for (auto& r : reports) outbox.push_back(std::move(r));
      continue;
    }
    if (exited) RemovePendingExit(attempt_dir);  // journaled: nothing is left to resume
    if (!exited && started) {
      // Its program started (its reports begin with TrialStarted) and ended with that process,
      // whose guard ended it: an infrastructure failure, reported so. Dropped, the coordinator may
      // never have heard that it started (it started while the coordinator was away), counted it
      // lost "before it started" and ran it again without spending a retry: twice, under no
      // RetryStrategy. Its metrics and lines go too; the report follows the last metric batch.
      proto::wire::TrialExited x;
      x.trial = l.trial;
      x.attempt = l.attempt;
      x.seq = last_batch;
      x.status = "InfraError";
      x.secondary_status = "Failed";
      x.failure_reason = std::string(proto::wire::kEndedWithWorkerProcess);
      // When it last wrote to its log: a bound on its end that the downtime does not stretch.
      std::error_code ec;
      const auto wrote = fs::last_write_time(fs::path(attempt_dir) / "trial.log", ec);
      if (!ec) {
        x.ended_at_ms = std::chrono::duration_cast<std::chrono::milliseconds>(
                            std::chrono::file_clock::to_sys(wrote).time_since_epoch())
                            .count();
      }
      Pending p{proto::wire::MsgType::kTrialExited, key, x.seq, proto::wire::EncodeFrames(x), 0};
      if (Status kept = journal->Append(l.trial, l.attempt, p.frames); !kept.ok()) {
        Log("worker: cannot journal the exit report of " + l.trial + ": " + kept.message());
      }
      reports.push_back(std::move(p));
      Log("worker: " + l.trial + " attempt " + std::to_string(l.attempt) +
          " ended with an earlier worker process before it finished: its reports go to the coordinator with an "
          "infrastructure failure, which its RetryStrategy retries");
    } else if (!exited) {
      journal->Drop(l.trial, l.attempt);  // it never started: the coordinator places it again
      continue;
    }
    Log("worker: delivering " + std::to_string(reports.size()) + " report(s) of " + l.trial + " attempt " +
        std::to_string(l.attempt) + ", which ended under an earlier worker process");
    for (auto& r : reports) outbox.push_back(std::move(r));
  }
}

std::string KeptWorkerId(const std::string& work_dir) {
  auto kept = ReadFile((fs::path(work_dir) / kWorkerIdFile).string(), 4096);
  if (!kept.ok()) return "";
  std::string id = *kept;
  while (!id.empty() && (id.back() == '\n' || id.back() == ' ')) id.pop_back();
  const bool valid = !id.empty() && id.size() <= 128 && std::all_of(id.begin(), id.end(), [](char c) {
    return std::isalnum(static_cast<unsigned char>(c)) || std::string_view("._:@-").find(c) != std::string_view::npos;
  });
  return valid ? id : "";
}

void WorkerAgent::Impl::NoteWorkerId() {
  const std::string before = KeptWorkerId(opt.work_dir);
  if (before == opt.worker_id) return;
  std::set<Key> left;  // attempts whose reports the journal holds for delivery (OpenJournal)
  for (const auto& p : outbox) left.insert(p.key);
  if (!before.empty() && !left.empty()) {
    Log("worker: " + opt.work_dir + " was worker " + before + "'s, which left the reports of " +
        std::to_string(left.size()) + " training job attempt(s) undelivered; as " + opt.worker_id +
        " this worker cannot deliver them (the coordinator refuses them, and those training jobs run again or fail). "
        "To deliver them, stop this worker and start it once with --id " + before);
    return;
  }
  const std::string file = (fs::path(opt.work_dir) / kWorkerIdFile).string();
  if (Status s = WriteFileAtomically(file, opt.worker_id + "\n"); !s.ok()) {
    Log("worker: cannot keep this worker's id in " + file + " (" + s.message() +
        "): restarted without --id, it will be another worker; give --id");
  }
}

std::string WorkerAgent::Impl::AttemptDir(const std::string& trial, uint32_t attempt) const {
  return (fs::path(opt.work_dir) / "trials" / trial / ("attempt-" + std::to_string(attempt))).string();
}

std::vector<std::pair<Key, fs::path>> WorkerAgent::Impl::LeftAttemptDirs() const {
  std::vector<std::pair<Key, fs::path>> left;
  std::error_code ec;
  for (fs::directory_iterator trial(fs::path(opt.work_dir) / "trials", ec), end; !ec && trial != end;
       trial.increment(ec)) {
    std::error_code ec2;
    for (fs::directory_iterator a(trial->path(), ec2), aend; !ec2 && a != aend; a.increment(ec2)) {
      const std::string n = a->path().filename().string();
      if (n.rfind("attempt-", 0) != 0) continue;
      char* rest = nullptr;
      const unsigned long number = std::strtoul(n.c_str() + 8, &rest, 10);
      const uint32_t attempt = rest && *rest == '\0' && number <= UINT32_MAX ? static_cast<uint32_t>(number) : 0;
      left.push_back({{trial->path().filename().string(), attempt}, a->path()});
    }
  }
  return left;
}

void WorkerAgent::Impl::ResumePendingExits(const std::vector<std::pair<Key, fs::path>>& left) {
  // Without the journal, the reports sent before the exit (the metric batches its seq counts)
  // are gone, and the exit report would wait for them forever: such attempts ended with the
  // earlier process (the coordinator retries them).
  const bool resume = journal.has_value();
  for (const auto& [dir_key, path] : left) {
    const std::string dir = path.string();
    auto read = ReadPendingExit(dir);
    if (!read.ok()) {
      Log("worker: " + read.status().message() + "; removed, and the attempt counts as ended with the earlier "
          "worker process");
      RemovePendingExit(dir);
      continue;
    }
    if (!read->has_value()) continue;
    PendingExit p = std::move(**read);
    const Key key{p.exit.trial, p.exit.attempt};
    bool journaled = false;     // its exit report is in the journal already (a crash right after)
    uint64_t journaled_seq = 0;  // the last metric batch the journal has
    for (const auto& o : outbox) {
      if (o.key != key) continue;
      journaled |= o.type == proto::wire::MsgType::kTrialExited;
      if (o.type == proto::wire::MsgType::kMetricPoints) journaled_seq = std::max(journaled_seq, o.seq);
    }
    if (!resume || journaled || key != dir_key || runs.count(key) || (!p.artifacts && p.checkpoint_uri.empty())) {
      RemovePendingExit(dir);
      continue;
    }
    // The exit report follows the metric batch it names (seq). A journal torn at its end (the
    // process died in a write, the disk filled) lost the last batches: the report follows the
    // last one the journal still has, or the coordinator would wait for the lost ones forever.
    // Their values are not lost for the objective: the report carries the final metrics.
    if (p.exit.seq > journaled_seq) {
      Log("worker: " + key.first + " attempt " + std::to_string(key.second) + ": its journal ends at metric batch " +
          std::to_string(journaled_seq) + " of " + std::to_string(p.exit.seq) +
          " (cut short); the exit report follows the batches it has");
      p.exit.seq = journaled_seq;
    }
    auto run = std::make_unique<Run>();
    run->assign.trial = key.first;
    run->assign.attempt = key.second;
    run->attempt_dir = dir;
    run->root = (path / "ml").string();
    run->checkpoint_dir = p.checkpoint_dir;
    run->seq = p.exit.seq;
    if (p.artifacts) {
      run->assign.output_path = p.artifacts->output_path;
      run->resumed_artifacts = p.artifacts;
      if (p.intermediate) {
        auto sync = IntermediateSync(*p.artifacts, run->root);
        if (sync.ok()) run->intermediate = std::move(sync).value();
        if (!sync.ok() && p.exit.status == "Completed") UploadFailed(p.exit, sync.status());
      }
    }
    if (!p.checkpoint_uri.empty()) {
      auto sync = CheckpointSync::Create(p.checkpoint_uri, p.checkpoint_dir, [this] { return S3(); });
      if (sync.ok()) run->checkpoints = std::move(sync).value();
      if (!sync.ok() && p.exit.status == "Completed") UploadFailed(p.exit, sync.status());
    }
    Log("worker: " + key.first + " attempt " + std::to_string(key.second) + " ended " + p.exit.status +
        " under an earlier worker process before its uploads were done; they resume once the coordinator confirms "
        "the attempt is still this worker's");
    run->ended = std::move(p.exit);
    run->resumed = true;
    std::lock_guard<std::mutex> lock(runs_mu);
    runs.emplace(key, std::move(run));
  }
}

void WorkerAgent::Impl::RemoveLeftoverTrees(const std::vector<std::pair<Key, fs::path>>& left) {
  if (opt.keep_trial_files) return;
  // This process holds the work directory and runs nothing yet: every attempt's /opt/ml tree
  // under trials/ is an earlier process's (killed, it could not remove them), whether that
  // attempt ran, ended or waited queued with its data staged. Logs and checkpoints stay, and so
  // do the trees of the attempts whose uploads resume (ResumePendingExits).
  std::vector<fs::path> trees;
  for (const auto& [key, path] : left) {
    if (!runs.count(key) && fs::exists(path / "ml")) trees.push_back(path / "ml");
  }
  if (trees.empty()) return;
  Log("worker: removing the /opt/ml trees of " + std::to_string(trees.size()) +
      " attempt(s) an earlier worker process left in " + opt.work_dir + " (their trial.log files stay)");
  // Before connecting, not in the background: a new assignment must not find its tree going.
  for (const auto& t : trees) {
    std::error_code rm;
    fs::remove_all(t, rm);
  }
}

// A training job's checkpoint directories on this worker: `checkpoints`, and `checkpoints-algo-N`
// for the hosts of a multi-host job it ran other than algo-1.
static std::vector<fs::path> CheckpointDirsOf(const fs::path& trial) {
  std::vector<fs::path> dirs;
  std::error_code ec;
  for (fs::directory_iterator e(trial, ec), end; !ec && e != end; e.increment(ec)) {
    const std::string n = e->path().filename().string();
    std::error_code ec2;
    if ((n == "checkpoints" || n.rfind("checkpoints-", 0) == 0) && e->is_directory(ec2)) dirs.push_back(e->path());
  }
  return dirs;
}

// Whether an attempt of the training job at `trial` kept a model whose upload failed
// (agent_detail::kNotUploaded): the only copy, removed by hand, never by the log sweep.
static bool HoldsNotUploaded(const fs::path& trial) {
  std::error_code ec;
  for (fs::directory_iterator e(trial, ec), end; !ec && e != end; e.increment(ec)) {
    std::error_code ec2;
    if (fs::exists(e->path() / agent_detail::kNotUploaded, ec2)) return true;
  }
  return false;
}

void WorkerAgent::Impl::SweepOldTrialLogs(int64_t now) {
  log_swept = true;
  last_log_sweep_ms = now;
  if (opt.keep_trial_files || opt.trial_log_retention_ms <= 0) return;
  // Here, on the loop thread, only the listing and what the loop knows (what runs here); the
  // walk over every file's time and the removal on a pool thread. A directory a new attempt
  // starts in meanwhile has a fresh time and stays.
  std::vector<fs::path> candidates;
  std::error_code ec;
  for (fs::directory_iterator trial(fs::path(opt.work_dir) / "trials", ec), end; !ec && trial != end;
       trial.increment(ec)) {
    std::error_code e2;
    if (trial->is_directory(e2) && !RunsTrial(trial->path().filename().string())) candidates.push_back(trial->path());
  }
  if (candidates.empty()) return;
  (void)background.Post([this, candidates = std::move(candidates), retention_ms = opt.trial_log_retention_ms] {
    const auto horizon = fs::file_time_type::clock::now() - std::chrono::milliseconds(retention_ms);
    std::vector<fs::path> old;
    for (const auto& dir : candidates) {
      if (!CheckpointDirsOf(dir).empty() || HoldsNotUploaded(dir)) continue;
      std::error_code e2;
      bool recent = false;
      for (fs::recursive_directory_iterator f(dir, e2), fend; !e2 && f != fend && !recent; f.increment(e2)) {
        std::error_code e3;
        const auto t = fs::last_write_time(f->path(), e3);
        recent = e3 || t > horizon;
      }
      if (!recent && !e2) old.push_back(dir);
    }
    if (old.empty()) return;
    Log("worker: removing " + std::to_string(old.size()) + " training job director" + (old.size() == 1 ? "y" : "ies") +
        " (their trial.log files) unchanged for " + std::to_string(retention_ms / 86'400'000) + " day(s) from " +
        opt.work_dir + "/trials (hpo worker --trial-log-days)");
    for (const auto& dir : old) {
      std::error_code rm;
      fs::remove_all(dir, rm);
    }
  });
}

bool WorkerAgent::Impl::RunsTrial(const std::string& trial) const {
  auto it = runs.lower_bound({trial, 0});
  return it != runs.end() && it->first.first == trial;
}

void WorkerAgent::Impl::FindHeldCheckpoints() {
  if (!ReleasesCheckpoints()) return;
  std::error_code ec;
  for (fs::directory_iterator trial(fs::path(opt.work_dir) / "trials", ec), end; !ec && trial != end;
       trial.increment(ec)) {
    std::error_code ec2;
    const std::string name = trial->path().filename().string();
    // Names the wire can carry only (a directory someone else made there is not ours to ask about).
    if (!proto::wire::ReleaseTrials{{name}}.Validate().ok()) continue;
    if (!CheckpointDirsOf(trial->path()).empty()) held_checkpoints.insert(name);
  }
}

void WorkerAgent::Impl::SendHeldTrials(int64_t now) {
  last_held_query_ms = now;
  proto::wire::HeldTrials h;
  h.worker_id = opt.worker_id;
  // From where the last query stopped, wrapping around, so every name gets asked about.
  auto it = held_checkpoints.upper_bound(held_cursor);
  for (size_t seen = 0; seen < held_checkpoints.size() && h.trials.size() < proto::wire::limits::kMaxHeldTrials;
       ++seen, ++it) {
    if (it == held_checkpoints.end()) it = held_checkpoints.begin();
    if (!RunsTrial(*it)) h.trials.push_back(*it);
    held_cursor = *it;
  }
  if (!h.trials.empty()) Send(h);
}

void WorkerAgent::Impl::OnRelease(const proto::wire::ReleaseTrials& r) {
  std::vector<fs::path> gone;
  for (const auto& name : r.trials) {
    // Only what this worker asked about, and never under an attempt that runs here.
    if (!held_checkpoints.count(name) || RunsTrial(name)) continue;
    held_checkpoints.erase(name);
    const fs::path trial = fs::path(opt.work_dir) / "trials" / name;
    for (const fs::path& dir : CheckpointDirsOf(trial)) {
      std::error_code ec;
      if (fs::exists(dir.string() + agent_detail::kUnsyncedMarker, ec)) {
        Log("worker: " + name + " has ended; its checkpoint directory " + dir.string() +
            " stays: its last upload to CheckpointConfig.S3Uri failed, so it may hold the only copy (copy it, then "
            "remove it)");
        continue;
      }
      gone.push_back(dir);
    }
  }
  if (gone.empty()) return;
  Log("worker: removing " + std::to_string(gone.size()) + " local checkpoint director" +
      (gone.size() > 1 ? "ies" : "y") + " of training jobs that have ended (" +
      gone.front().parent_path().filename().string() + (gone.size() > 1 ? ", ..." : "") +
      "); a training job with a CheckpointConfig has its checkpoints at its S3Uri");
  (void)background.Post([gone = std::move(gone)] {
    for (const auto& p : gone) {
      std::error_code ec;
      fs::remove_all(p, ec);
    }
  });
}

std::set<Key> WorkerAgent::Impl::HeldAttempts() const {
  std::set<Key> held;
  for (const auto& [k, run] : runs) held.insert(k);
  for (const auto& p : outbox) {
    if (p.type == proto::wire::MsgType::kTrialExited) held.insert(p.key);
  }
  return held;
}

std::vector<proto::wire::AttemptRef> WorkerAgent::Impl::HeldAttemptRefs() const {
  std::vector<proto::wire::AttemptRef> refs;
  for (const auto& k : HeldAttempts()) refs.push_back({k.first, k.second, runs.count(k) == 0});
  return refs;
}

void WorkerAgent::Impl::SendRegister() {
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
    (void)CreatePrivateDirectory(opt.work_dir);
    r.disk_mb = FreeDiskMb(opt.work_dir);
  }
  r.slots = opt.slots;
  r.spot = opt.spot;
  r.no_s3 = no_s3;
  // Attempts this worker still answers for: those running, and those that ended while their
  // TrialExited is not acknowledged yet (otherwise a coordinator that comes back would count
  // them as lost before it reads the exit report queued behind this Register).
  r.running = HeldAttemptRefs();
  r.session = session;
  // Said so that a second worker on this host under the same id, in another directory, is told
  // apart from this one restarting (SanitizeText: a path of odd bytes must not void the Register).
  // The directory itself, however it was named (a link, a relative path); resolved once, as the
  // Register is sent every second until acknowledged.
  if (register_work_dir.empty()) {
    std::error_code ec;
    const fs::path wd = fs::weakly_canonical(fs::absolute(opt.work_dir, ec), ec);
    register_work_dir = proto::wire::SanitizeText((ec ? fs::path(opt.work_dir) : wd).lexically_normal().string(), 4096);
  }
  r.work_dir = register_work_dir;
  register_handshakes = handshake_monitor ? handshake_monitor->successes() : 0;  // read before the send
  Send(r);
  register_sent_ms = Now();
}

Status WorkerAgent::Impl::AwaitLease(const std::atomic<bool>& revoked) const {
  for (bool asked = false; !LeaseFresh() && !revoked.load() && !closing.load(); asked = true) {
    if (!asked) Wake();  // the loop sends the heartbeat that confirms
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  if (revoked.load()) {
    return Status::Unavailable("the coordinator no longer runs this attempt (it counted it lost while this worker "
                               "was out of touch past its lease); nothing more of it was written");
  }
  if (closing.load()) return Status::Unavailable("the worker stopped before the artifacts were uploaded");
  return Status::Ok();
}

void WorkerAgent::Impl::OnAck(const proto::wire::Ack& a) {
  auto type = static_cast<proto::wire::MsgType>(a.type);
  if (type == proto::wire::MsgType::kHeartbeat) {
    // Its stops came before it (coordinator Reconcile): the lease now runs from its send time.
    for (const auto& [seq, sent_ms] : heartbeats_sent) {
      if (seq == a.seq && sent_ms > lease_anchor_ms.load()) lease_anchor_ms = sent_ms;
    }
    while (!heartbeats_sent.empty() && heartbeats_sent.front().first <= a.seq) heartbeats_sent.pop_front();
  }
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

Status WorkerAgent::Impl::Handle(const proto::wire::Message& m) {
  last_heard_ms = Now();
  ever_heard = true;
  if (const auto* ack = std::get_if<proto::wire::RegisterAck>(&m)) {
    if (!ack->accepted) {
      return Status::FailedPrecondition("the coordinator refused this worker: " + ack->reason);
    }
    for (const auto& s : ack->stop) {
      auto it = runs.find({s.trial, s.attempt});
      if (it == runs.end() || *it->second->revoked) continue;  // (a copy's answer repeats them)
      *it->second->revoked = true;
      StopRun(*it->second, proto::wire::kStopReasonRevoked, "Stopped", 0);
    }
    // The answer to a copy of the Register sent again while the first was unanswered (every
    // second, and at once on a new connection): registered already.
    if (registered) return Status::Ok();
    registered = true;
    ever_registered = true;
    not_authorized.clear();
    if (ack->heartbeat_interval_ms > 0) opt.heartbeat_ms = ack->heartbeat_interval_ms;
    if (ack->lease_ms > 0) {
      opt.coordinator_lease_ms = ack->lease_ms;
      lease_ms.store(ack->lease_ms);
    }
    // Its stops are applied (above); the lease waits for a heartbeat sent now (it may be an old copy's
    // answer, read after a pause), which the coordinator reconciles before acknowledging.
    SendHeartbeat();
    // Interrupted before: a coordinator that restarted since (or never heard it) learns it now,
    // or it gives this worker training jobs again, the one just interrupted among them.
    if (notice) Send(*notice);
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
    if (it != runs.end() && s->reason == proto::wire::kStopReasonIfNotStarted && it->second->process) {
      // Started already (its predecessor ended first): it stays; its TrialStarted says so.
      Log("worker: " + s->trial + " attempt " + std::to_string(s->attempt) +
          " has started: it stays here, not moved to a free worker");
    } else if (it != runs.end()) {
      // A heartbeat's reconciliation: the attempt was given to another worker while this one was
      // out of touch (proto::wire::kStopReasonRevoked).
      if (s->reason == proto::wire::kStopReasonRevoked) *it->second->revoked = true;
      if (s->reason.rfind(proto::wire::kStopReasonEvictedPrefix, 0) == 0 && it->second->stop_reason.empty()) {
        *it->second->evicted = true;
      }
      // The coordinator's own stop (MaxWaitTimeInSeconds, MaxRuntime, StopTrainingJob) of a run an
      // interruption notice is already stopping: it ends Stopped and uploads its model, its grace
      // period running on. (It ended Interrupted with no model, and never ran again: a spot pass.)
      Run& r = *it->second;
      if (r.interrupted->load() && s->reason != proto::wire::kStopReasonRevoked &&
          s->reason != proto::wire::kStopReasonIfNotStarted &&
          s->reason.rfind(proto::wire::kStopReasonEvictedPrefix, 0) != 0) {
        r.interrupted->store(false);
        r.stop_reason = "Stopped: " + s->reason;
        r.stop_secondary = "Stopped";
      }
      StopRun(r, "Stopped: " + s->reason, "Stopped", s->grace_period_s,
              /*gang_stop=*/s->reason != proto::wire::kStopReasonRevoked);
    }
  } else if (const auto* g = std::get_if<proto::wire::GangPeersEnded>(&m)) {
    if (auto it = runs.find({g->trial, g->attempt}); it != runs.end()) {
      int running = Run::kPeersRunning, stopping = Run::kPeersStopping;
      if (it->second->peers->compare_exchange_strong(running, Run::kPeersEnded) ||
          it->second->peers->compare_exchange_strong(stopping, Run::kPeersEnded)) {
        Log("worker: " + g->trial + " attempt " + std::to_string(g->attempt) +
            ": the other hosts have ended; algo-1 merges their model and output data into its archives");
      }
    }
  } else if (const auto* d = std::get_if<proto::wire::DiscardHandOver>(&m)) {
    // Off the loop: on S3 it is a listing and a deletion per object.
    (void)background.Post([this, d = *d] {
      const std::string what = d.trial + " attempt " + std::to_string(d.attempt);
      const Status st = DiscardHandOverFolder(d.output_path, d.trial, d.attempt, [this] { return S3(); });
      Log(st.ok() ? "worker: " + what + ": algo-1 was lost and no retry follows: the hosts' hand-over folder " +
                        "under the output path is removed"
                  : "worker: " + what + ": cannot remove the hosts' hand-over folder under the output path: " +
                        st.message());
    });
  } else if (const auto* ack = std::get_if<proto::wire::Ack>(&m)) {
    OnAck(*ack);
  } else if (const auto* rel = std::get_if<proto::wire::ReleaseTrials>(&m)) {
    OnRelease(*rel);
  } else if (const auto* e = std::get_if<proto::wire::Error>(&m)) {
    if (e->code == "NotRegistered") {
      registered = false;
      lease_anchor_ms = kNoLease;  // it has counted this worker lost, or restarted: nothing is held
      heartbeats_sent.clear();
      SendRegister();
    } else if (e->code == "NotAuthorized" && !ever_registered) {
      // Never accepted (its id is another key's): nothing it sends will be read; waiting would
      // only say "no word from the coordinator" forever, under a service manager that saw it up.
      return Status::FailedPrecondition("the coordinator refused this worker: " + e->message);
    } else {
      if (e->code == "NotAuthorized") not_authorized = e->message;
      Log("worker: the coordinator reported " + e->code + ": " + e->message);
    }
  }
  return Status::Ok();
}

void WorkerAgent::Impl::ReadAcksWhileShuttingDown() {
  for (int i = 0; i < 1000; ++i) {
    std::vector<zmq::message_t> parts;
    zmq::recv_result_t got;
    try {
      got = zmq::recv_multipart(*sock, std::back_inserter(parts), zmq::recv_flags::dontwait);
    } catch (const zmq::error_t&) {
      return;
    }
    if (!got) return;
    std::vector<std::string> frames;
    for (auto& p : parts) frames.push_back(p.to_string());
    auto msg = proto::wire::DecodeFrames(frames, nullptr);
    if (!msg.ok()) continue;
    last_heard_ms = Now();
    if (const auto* ack = std::get_if<proto::wire::Ack>(&*msg)) OnAck(*ack);
  }
}

void WorkerAgent::Impl::SendHeartbeat() {
  proto::wire::Heartbeat h;
  h.worker_id = opt.worker_id;
  h.seq = ++heartbeat_seq;
  size_t busy = 0;
  for (const auto& [k, r] : runs) busy += r->queued ? 0 : 1;
  h.free_slots = static_cast<uint32_t>(opt.slots > busy ? opt.slots - busy : 0);
  // As in Register (the coordinator re-queues an attempt its worker does not hold).
  h.running = HeldAttemptRefs();
  h.sent_ms = Now();  // the clock TrialStarted.started_at_ms is on
  // Kept until acknowledged (the lease runs from it), for at most a lease: an older one would
  // not make the lease fresh.
  while (!heartbeats_sent.empty() && h.sent_ms - heartbeats_sent.front().second > opt.coordinator_lease_ms) {
    heartbeats_sent.pop_front();
  }
  heartbeats_sent.emplace_back(h.seq, h.sent_ms);
  h.disk_mb = FreeDiskMb(opt.work_dir);
  Send(h);
  last_heartbeat_ms = Now();
}

int64_t WorkerAgent::Impl::TickMs() const {
  if (!registered || wake_fd < 0) return 10;
  const int64_t tick = std::min({int64_t{50}, opt.flush_ms, opt.heartbeat_ms, opt.resend_ms,
                                 opt.coordinator_lease_ms / 4});
  return std::max<int64_t>(tick, 1);
}

void WorkerAgent::Impl::StartNoticePoller() {
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

void WorkerAgent::Impl::StopNoticePoller() {
  {
    std::lock_guard<std::mutex> lock(notice_mu);
    notice_stop = true;
  }
  notice_cv.notify_all();
  if (notice_thread.joinable()) notice_thread.join();
}

void WorkerAgent::Impl::Interrupt(const std::string& reason, bool planned) {
  {
    std::lock_guard<std::mutex> lock(interrupt_mu);
    if (!interrupt_reason.empty()) return;
    interrupt_reason = reason.empty() ? "interrupted" : reason;
    interrupt_planned = planned;
  }
  Wake();
}

namespace {

// What the coordinator checks of a registration that comes from the options (the worker's name,
// host, instance type and group, labels, slots), checked before anything starts: a worker the
// coordinator would refuse every time said so only in its log, several times a second, forever.
// The message names the option.
Status CheckRegistration(const AgentOptions& opt) {
  proto::wire::Register r;
  r.protocol_version = proto::wire::kProtocolVersion;
  r.session = 1;
  r.worker_id = opt.worker_id;
  r.host = opt.host;
  r.instance_type = opt.instance_type;
  r.instance_group = opt.instance_group;
  r.labels = opt.labels;
  r.cpus = 1;
  r.memory_mb = 1;
  r.slots = opt.slots;
  Status s = r.Validate();
  if (s.ok()) return s;
  std::string message = s.message();
  for (const auto& [field, option] : {std::pair<std::string, std::string>{"Register.worker_id", "--id"},
                                      {"Register.host", "--host"},
                                      {"Register.instance_type", "--instance-type"},
                                      {"Register.instance_group", "--instance-group"},
                                      {"Register.labels", "--label"},
                                      {"Register.slots", "--slots"}}) {
    if (message.rfind(field, 0) == 0) message = option + message.substr(field.size());
  }
  return Status::InvalidArgument("worker: " + message + " (the coordinator would refuse this worker)");
}

}  // namespace

Status WorkerAgent::Impl::Loop(const std::atomic<bool>& stop) {
  if (Status s = CheckRegistration(opt); !s.ok()) return s;
  struct StopSparesOnReturn {
    Impl* impl;
    ~StopSparesOnReturn() {
      impl->StopNoticePoller();
      impl->spares->Stop();
    }
  } stop_spares{this};
  // Not another user's, nor one others write in: the worker (often root) creates and follows
  // paths there.
  if (Status s = CheckOwnDirectory(opt.work_dir, "the work directory"); !s.ok()) return s;
  // Its owner's only when made here: trial logs and specs hold the training jobs' secrets.
  (void)CreatePrivateDirectory(opt.work_dir);  // a failure shows in the lock's error below
  // Made after the lock below, and gone after it: its sweep waits for the lock.
  std::unique_ptr<OrphanGuard> guard;
  auto lock = LockDirectory(opt.work_dir, "hpo worker " + opt.worker_id);
  // The guard of a killed predecessor sweeping what it left (a service restarted at once): its
  // sweep ends (a /proc scan; a container runtime's rm within its stop timeout), then it is ours.
  const std::string guard_holder = std::string("(") + kOrphanGuardLockHolder + ")";
  for (int i = 0; i < 1200 && !lock.ok() && lock.status().code() == StatusCode::kFailedPrecondition &&
                  lock.status().message().find(guard_holder) != std::string::npos;
       ++i) {
    if (i == 0) Log("worker: waiting for the guard of the worker process that ended on " + opt.work_dir +
                    " to finish removing what its training jobs left");
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
    lock = LockDirectory(opt.work_dir, "hpo worker " + opt.worker_id);
  }
  if (!lock.ok()) {
    return Status::InvalidArgument("the work directory " + lock.status().message() +
                                      "; give each worker on a machine its own --work-dir");
  }
  // Daemons a training program leaves behind become this process's children (worker/orphans.h).
  if (Status s = BecomeSubreaper(); !s.ok()) Log("worker: " + s.message() + "; daemons of training jobs may outlive them");
  StartNoticePoller();
  {
    std::error_code ec;
    const fs::path dir = fs::weakly_canonical(fs::absolute(opt.work_dir, ec), ec);
    owner_tag = ec ? opt.work_dir : dir.string();
  }
  // Programs (and their children) an earlier process on this work directory left running when
  // it was killed: they would hold GPUs and write the checkpoints the retries resume from.
  if (const int n = KillLeftoversOf(owner_tag, [this](const std::string& l) { Log(l); }); n > 0) {
    Log("worker: killed " + std::to_string(n) + " process(es) of training jobs an earlier worker process on " +
        owner_tag + " left running");
  }
  // Containers an earlier process on this work directory left running (killed -9, their
  // programs run on under the runtime's monitor) go now, not at the first container training
  // job, which may never come. In the background: the runtime may take long to answer (a first
  // podman run, a docker without its socket), and the worker connects meanwhile; a container
  // training job waits for the sweep (SweepStaleContainers runs once).
  if (opt.container.enabled()) (void)tasks.Post([this] { SweepStaleContainers(); });
  // And what they leave if this process is killed (worker/orphans.h OrphanGuard).
  if (!opt.orphan_guard.empty()) {
    auto g = OrphanGuard::Start(opt.orphan_guard, owner_tag, opt.container,
                                ContainerOwner(opt.worker_id, opt.work_dir), opt.guard_watches_stall);
    if (g.ok()) {
      guard = std::move(g).value();
    } else {
      Log("worker: " + g.status().message() + "; if this process is killed, the processes its training jobs started "
          "are killed only when a worker starts again on " + owner_tag);
    }
  }
  OpenJournal();
  NoteWorkerId();
  {
    const auto left = LeftAttemptDirs();
    ResumePendingExits(left);
    RemoveLeftoverTrees(left);
  }
  FindHeldCheckpoints();
  last_held_query_ms = Now();  // the first question after release_check_ms, as every later one
  if (opt.container.enabled()) {
    Log("worker: container runtime " + opt.container.runtime + " (" + opt.container.binary + "), pulls " +
        opt.container.pull);
  }
  OpenChannelCache();
  if (opt.checkpoint_settle_ms > 0) {
    if (const std::string why = WriterProbeProblem(opt.work_dir); !why.empty()) {
      Log("worker: note: " + why + "; a changed checkpoint file goes up once unchanged for --checkpoint-settle-ms (" +
          std::to_string(opt.checkpoint_settle_ms) + ") and seen so by two passes (one rewritten more often: every 10 s)");
    }
  }
  // Said once at the start, to the log and in every registration (Register.no_s3): training jobs
  // with s3:// data, output or checkpoints go to other workers.
  if (auto cfg = S3Config::FromEnvironment(opt.s3_endpoint); !cfg.ok()) {
    no_s3 = true;
    Log("worker: note: " + cfg.status().message() + " (--s3-endpoint); training jobs with s3:// data, output or "
        "checkpoints cannot run here and go to other workers");
  }
  Connect();
  while (!stop.load() && !abort_now.load()) {
    zmq::pollitem_t items[] = {{sock->handle(), 0, ZMQ_POLLIN, 0}, {nullptr, wake_fd, ZMQ_POLLIN, 0}};
    try {
      zmq::poll(items, wake_fd >= 0 ? 2 : 1, std::chrono::milliseconds(TickMs()));
    } catch (const zmq::error_t& e) {
      if (e.num() != EINTR) Log(std::string("worker: poll failed: ") + e.what());
    }
    if (items[1].revents & ZMQ_POLLIN) DrainWake();
    {
      // A gap in this loop longer than half a lease (the process was paused): what it holds may
      // have been given away meanwhile; ask at once, and hold uploads and starts until answered.
      const int64_t now = Now();
      // (The lease has run out by itself meanwhile: this heartbeat only asks at once.)
      if (last_loop_ms > 0 && now - last_loop_ms > opt.coordinator_lease_ms / 2) {
        Log("worker: this process did not run for " + std::to_string(now - last_loop_ms) +
            " ms; uploads and queued starts wait until the coordinator confirms what this worker still runs");
        if (registered) SendHeartbeat();
      }
      last_loop_ms = now;
    }
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
    if (guard) guard->Alive(registered ? lease_ms.load() : 0);  // (its stall watch: OrphanGuard)
    SweepLeftovers(/*final=*/false);
    if (!warm_data.empty()) ExpireWarmData();
    int64_t now = Now();
    if (!registered) {
      if (handshake_monitor && handshake_monitor->successes() != register_handshakes) {
        SendRegister();  // a connection just came up
      } else if (now - register_sent_ms >= register_backoff_ms) {
        SendRegister();
        register_backoff_ms = std::min<int64_t>(register_backoff_ms * 2, 1000);
      }
    }
    // At least four a lease: the lease runs from an acknowledged heartbeat's send time and is
    // acted on for half of it, so a heartbeat interval near the lease (--heartbeat-ms) would leave
    // uploads waiting between heartbeats.
    if (registered && now - last_heartbeat_ms >= std::min(opt.heartbeat_ms, opt.coordinator_lease_ms / 4)) {
      SendHeartbeat();
    }
    if (!log_swept || now - last_log_sweep_ms >= 3'600'000) SweepOldTrialLogs(now);
    if (registered && !held_checkpoints.empty() && ReleasesCheckpoints() &&
        now - last_held_query_ms >= opt.release_check_ms) {
      SendHeldTrials(now);
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
      // Named: a worker pointed at a port where nothing listens said only "no word from the
      // coordinator", every 10 s, with no endpoint and nothing to check.
      if (!ever_heard && handshake_monitor && handshake_monitor->failures() > 0 &&
          handshake_monitor->successes() == 0) {
        // Something answers and refuses the handshake: the monitor says why (a refused key was
        // also told "is one running there?" every 10 s).
      } else if (!ever_heard) {
        Log("worker: no answer from a coordinator at " + opt.connect + " for " +
            std::to_string((now - last_heard_ms) / 1000) +
            " s: is one running and listening there (hpo coordinator --listen), and is --connect right?"
            " Still trying");
      } else if (!not_authorized.empty()) {
        Log("worker: the coordinator at " + opt.connect + " reads nothing from this worker (" + not_authorized +
            "); reconnecting" + (runs.empty() ? "" : " (its training jobs keep running)"));
      } else {
        Log("worker: no word from the coordinator at " + opt.connect + " for " + std::to_string(now - last_heard_ms) +
            " ms; reconnecting" + (runs.empty() ? "" : " (its training jobs keep running)"));
      }
      Connect();
    }
  }
  // Shutdown (SIGTERM: systemctl stop, the end of a Slurm allocation, a drained node): the
  // capacity goes away, as with a spot interruption. The coordinator is told (it assigns nothing
  // more here), and what runs ends Interrupted: re-queued elsewhere without spending a retry,
  // rather than Stopped for good. Then: report it, and give the reports a moment to leave.
  // Every attempt gets its own grace period; output, uploads and the reports get
  // shutdown_extra_ms beyond the longest one.
  lease_at_end = LeaseFresh();
  loop_ended = true;
  if (guard) guard->Alive(0);  // the stall watch ends: a shutdown's grace periods are no stall
  Interrupt("the worker " + opt.worker_id + " is shutting down", /*planned=*/true);
  CheckInterruption();
  int64_t longest_grace_ms = 0;
  for (auto& [k, r] : runs) {
    StopRun(*r, "the worker is shutting down", "Stopped", r->assign.grace_period_s);
    longest_grace_ms = std::max(longest_grace_ms, r->stop_grace_ms);
  }
  int64_t until = Now() + longest_grace_ms + opt.shutdown_extra_ms;
  bool killed = false;
  while (!runs.empty() && Now() < until) {
    if (abort_now.load() && !killed) {
      KillRunsNow();
      killed = true;
      until = std::min(until, Now() + opt.shutdown_extra_ms);
    }
    PollTrials();
    // Still here for the coordinator while programs use their grace period: without heartbeats
    // it took this worker for lost after one lease, and a program that needed longer than that
    // to save and exit ended Failed (worker lost) instead of Interrupted and run again elsewhere.
    // Only acknowledgements are read now; nothing new is taken on.
    if (registered && Now() - last_heartbeat_ms >= opt.heartbeat_ms) SendHeartbeat();
    ReadAcksWhileShuttingDown();
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  ExpireWarmData(true);
  SweepLeftovers(/*final=*/true);
  return Status::Ok();
}

void WorkerAgent::Impl::PublishRuns() {
  std::set<pid_t> tracked;
  std::set<std::string> running;
  for (const auto& [key, r] : runs) {
    running.insert(AttemptKey(key.first, key.second));
    if (r->process) tracked.insert(r->process->pid());
  }
  PublishTrainingJobs(this, std::move(tracked), std::move(running));
}

void WorkerAgent::Impl::SweepLeftovers(bool final) {
  // Otherwise what PollTrials published holds (a run it ended goes at the next publication:
  // its daemons at most one loop later).
  if (final) ForgetTrainingJobs(this);
  SweepOrphans(Now(), final ? 0 : 1000, [this](const std::string& line) { Log(line); });
}

WorkerAgent::Impl::~Impl() {
  closing = true;
  ForgetTrainingJobs(this);  // a loop that ended early did not
  // The attempts still here (a shutdown that ran out of time) end first: their monitor threads
  // may still be uploading with what the members below hold.
  std::lock_guard<std::mutex> lock(runs_mu);
  runs.clear();
}

WorkerAgent::WorkerAgent(AgentOptions options) : impl_(std::make_unique<Impl>()) {
  if (!options.now_ms) options.now_ms = SystemNowMs;
  if (!options.log) options.log = [](const std::string& l) { std::fprintf(stderr, "%s\n", l.c_str()); };
  if (options.host.empty()) options.host = Hostname();
  if (options.worker_id.empty()) options.worker_id = options.host + "-" + std::to_string(::getpid());
  if (options.slots == 0) options.slots = 1;
  // Absolute: a training program runs in its own directory, and every path it is given (SM_MODEL_DIR,
  // the channels, a container's -v mounts) must still name the same place from there.
  if (!options.work_dir.empty()) {
    std::error_code ec;
    const fs::path absolute = fs::absolute(options.work_dir, ec);
    if (!ec) options.work_dir = absolute.lexically_normal().string();
    while (options.work_dir.size() > 1 && options.work_dir.back() == '/') options.work_dir.pop_back();
  }
  impl_->opt = std::move(options);
  impl_->lease_ms.store(impl_->opt.coordinator_lease_ms);
  impl_->network_interface = InterfaceOf(impl_->opt.host);
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
  } catch (const std::invalid_argument& e) {
    return Status::InvalidArgument(std::string("worker: ") + e.what());
  }
}

void WorkerAgent::Interrupt(const std::string& reason, bool planned) { impl_->Interrupt(reason, planned); }

void WorkerAgent::Abort() {
  impl_->abort_now = true;
  impl_->Wake();
}

size_t WorkerAgent::running() const {
  std::lock_guard<std::mutex> lock(impl_->runs_mu);
  return impl_->runs.size();
}

}  // namespace hpo::worker
