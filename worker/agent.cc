#include "worker/agent.h"

#include <sys/stat.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <mutex>
#include <thread>

#include <zmq.hpp>
#include <zmq_addon.hpp>

#include "proto/messages.h"
#include "worker/metric_parser.h"
#include "worker/process.h"
#include "worker/trial_layout.h"

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
  bool registered = false;
  int64_t last_heard_ms = 0;
  int64_t last_heartbeat_ms = 0;
  int64_t register_sent_ms = 0;
  uint64_t heartbeat_seq = 0;
  std::vector<Pending> outbox;

  struct Run {
    proto::wire::AssignTrial assign;
    std::string root;
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
  };
  std::map<Key, std::unique_ptr<Run>> runs;
  mutable std::mutex runs_mu;  // guards the map's shape for running()

  void Log(const std::string& l) const { opt.log(l); }
  int64_t Now() const { return opt.now_ms(); }

  // ---- socket ------------------------------------------------------------------------------------

  void Connect() {
    sock = std::make_unique<zmq::socket_t>(ctx, zmq::socket_type::dealer);
    sock->set(zmq::sockopt::routing_id, opt.worker_id);
    sock->set(zmq::sockopt::linger, 0);
    sock->set(zmq::sockopt::maxmsgsize, int64_t{16} << 20);
    sock->set(zmq::sockopt::reconnect_ivl, 100);
    sock->set(zmq::sockopt::reconnect_ivl_max, 2000);
    sock->connect(opt.connect);
    registered = false;
    last_heard_ms = Now();
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

  // Sends a message that must be acknowledged, and keeps it until it is.
  void SendReliable(const proto::wire::Message& m, proto::wire::MsgType type, Key key, uint64_t seq) {
    Pending p{type, std::move(key), seq, proto::wire::EncodeFrames(m), Now()};
    if (registered) SendFrames(p.frames);
    outbox.push_back(std::move(p));
  }

  void SendRegister() {
    proto::wire::Register r;
    r.protocol_version = proto::wire::kProtocolVersion;
    r.worker_id = opt.worker_id;
    r.host = opt.host;
    r.instance_type = opt.instance_type;
    r.instance_group = opt.instance_group;
    r.labels = opt.labels;
    for (int g : opt.gpus) {
      proto::wire::GpuInfo gi;
      gi.index = static_cast<uint32_t>(g);
      r.gpus.push_back(gi);
    }
    r.cpus = DetectCpus();
    r.memory_mb = DetectMemoryMb();
    r.slots = opt.slots;
    r.spot = false;
    for (const auto& [k, run] : runs) r.running.push_back({k.first, k.second});
    Send(r);
    register_sent_ms = Now();
  }

  // ---- trials ------------------------------------------------------------------------------------

  // Resolves trainingImage to a program: an absolute path or file:// URI of an executable, or an
  // entry of the worker's image map.
  Result<std::vector<std::string>> Program(const std::string& image) {
    std::string path;
    if (image.rfind("file://", 0) == 0) {
      path = image.substr(7);
    } else if (!image.empty() && image[0] == '/') {
      path = image;
    } else {
      auto it = opt.images.find(image);
      if (it == opt.images.end()) {
        return Status::InvalidArgument("ClientError: trainingImage \"" + image + "\" is not known on worker " +
                                       opt.worker_id +
                                       "; give an absolute path or file:// URI of an executable, or map the image "
                                       "with `hpo worker --image NAME=COMMAND`");
      }
      return std::vector<std::string>{"/bin/sh", "-c", it->second + " train", "hpo-trainer"};
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

  void Assign(const proto::wire::AssignTrial& a) {
    Key key{a.trial, a.attempt};
    if (runs.count(key)) return;  // a re-sent assignment we already run
    auto run = std::make_unique<Run>();
    run->assign = a;
    run->root = (fs::path(opt.work_dir) / "trials" / a.trial / ("attempt-" + std::to_string(a.attempt))).string();
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
    std::vector<MetricDefinitionSpec> defs;
    for (const auto& m : a.metric_definitions) defs.push_back({m.name, m.regex});
    auto parser = MetricParser::Create(defs);
    if (!parser.ok()) return fail("Failed", "ClientError: " + parser.status().message());
    run->parser = std::make_unique<MetricParser>(std::move(parser).value());

    TrialLayoutSpec ls;
    ls.job_name = a.trial;
    ls.job_arn = "arn:aws:sagemaker:local:000000000000:training-job/" + a.trial;
    ls.root = run->root;
    ls.hyperparameters = a.hyperparameters;
    for (const auto& c : a.channels) {
      LayoutChannel lc;
      lc.name = c.name;
      lc.content_type = c.content_type;
      lc.input_mode = c.input_mode;
      ls.channels.push_back(lc);
    }
    ls.current_host = a.current_host.empty() ? "algo-1" : a.current_host;
    ls.hosts = a.hosts.empty() ? std::vector<std::string>{ls.current_host} : a.hosts;
    ls.instance_type = opt.instance_type.empty() ? "local" : opt.instance_type;
    ls.current_group = opt.instance_group.empty() ? "homogeneousCluster" : opt.instance_group;
    ls.instance_groups.push_back({ls.current_group, ls.instance_type, ls.hosts});
    ls.num_cpus = static_cast<int>(std::max<uint32_t>(1, DetectCpus() / std::max<uint32_t>(1, opt.slots)));
    for (int32_t g : a.gpus) ls.gpus.push_back(g);
    ls.environment = a.environment;
    ls.training_input_mode = a.input_mode.empty() ? "File" : a.input_mode;
    std::error_code ec;
    fs::remove_all(run->root, ec);
    Status laid = LayOutTrial(ls);
    if (!laid.ok()) return fail("InfraError", "cannot lay out the trial directory: " + laid.message());

    ProcessSpec ps;
    ps.argv = *program;
    ps.env = TrainingEnvironment(ls);
    if (const char* path = std::getenv("PATH")) ps.env.emplace("PATH", path);
    if (const char* home = std::getenv("HOME")) ps.env.emplace("HOME", home);
    ps.env.emplace("LANG", "C.UTF-8");
    ps.cwd = run->root;
    ps.log_path = run->root + "/trial.log";
    Run* raw = run.get();
    auto proc = TrialProcess::Start(ps, [raw, this](auto /*stream*/, const auto& line) {
      std::vector<MetricHit> hits = raw->parser->Parse(line);
      int64_t now = Now();
      std::lock_guard<std::mutex> lock(raw->mu);
      // Cut to 16384 code points: at most 64 KiB once invalid bytes became U+FFFD.
      raw->log_lines.push_back(proto::wire::SanitizeText(line, 16384));
      for (const auto& h : hits) {
        raw->points.push_back({h.name, h.value, now, h.step});
        raw->last_values[h.name] = h.value;
      }
    });
    if (!proc.ok()) return fail("Failed", "AlgorithmError: " + proc.status().message());
    run->process = std::move(proc).value();
    run->deadline_ms = a.max_runtime_s > 0 ? Now() + static_cast<int64_t>(a.max_runtime_s) * 1000 : 0;
    run->last_flush_ms = Now();
    Log("worker: started " + a.trial + " attempt " + std::to_string(a.attempt));
    proto::wire::TrialStarted s;
    s.trial = a.trial;
    s.attempt = a.attempt;
    s.worker_id = opt.worker_id;
    s.started_at_ms = Now();
    SendReliable(s, proto::wire::MsgType::kTrialStarted, key, 0);
    std::lock_guard<std::mutex> lock(runs_mu);
    runs[key] = std::move(run);
  }

  void StopRun(Run& r, const std::string& reason, const std::string& secondary, int64_t grace_s) {
    if (!r.stop_reason.empty()) return;
    r.stop_reason = reason;
    r.stop_secondary = secondary;
    r.process->Stop(std::chrono::milliseconds(grace_s * 1000));
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
      auto exit = r.process->TryWait();
      if (!exit) {
        if (now - r.last_flush_ms >= opt.flush_ms) Flush(key, r);
        continue;
      }
      Flush(key, r);
      proto::wire::TrialExited x;
      x.seq = r.seq;
      x.exit_code = exit->exit_code;
      x.signal = exit->signal;
      {
        std::lock_guard<std::mutex> lock(r.mu);
        for (const auto& [name, v] : r.last_values) x.final_metrics.push_back({name, v});
      }
      if (!r.stop_reason.empty()) {
        x.status = "Stopped";
        x.secondary_status = r.stop_secondary;
        x.failure_reason = proto::wire::SanitizeText(r.stop_reason, 1024);
      } else if (exit->exit_code == 0) {
        x.status = "Completed";
        x.secondary_status = "Completed";
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
      Log("worker: " + key.first + " attempt " + std::to_string(key.second) + " ended " + x.status);
      Exited(key, std::move(x));
      done.push_back(key);
    }
    std::lock_guard<std::mutex> lock(runs_mu);
    for (const auto& k : done) runs.erase(k);
  }

  // ---- messages ----------------------------------------------------------------------------------

  void OnAck(const proto::wire::Ack& a) {
    auto type = static_cast<proto::wire::MsgType>(a.type);
    std::erase_if(outbox, [&](const Pending& p) {
      return p.type == type && p.key.first == a.trial && p.key.second == a.attempt && p.seq <= a.seq &&
             (type != proto::wire::MsgType::kMetricPoints || p.seq <= a.seq);
    });
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

  Status Loop(const std::atomic<bool>& stop) {
    Connect();
    while (!stop.load()) {
      zmq::pollitem_t items[] = {{sock->handle(), 0, ZMQ_POLLIN, 0}};
      try {
        zmq::poll(items, 1, std::chrono::milliseconds(10));
      } catch (const zmq::error_t& e) {
        if (e.num() != EINTR) Log(std::string("worker: poll failed: ") + e.what());
      }
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
      int64_t now = Now();
      if (!registered && now - register_sent_ms > 1000) SendRegister();
      if (registered && now - last_heartbeat_ms >= opt.heartbeat_ms) {
        proto::wire::Heartbeat h;
        h.worker_id = opt.worker_id;
        h.seq = ++heartbeat_seq;
        h.free_slots = static_cast<uint32_t>(opt.slots > runs.size() ? opt.slots - runs.size() : 0);
        for (const auto& [k, r] : runs) h.running.push_back({k.first, k.second});
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
    for (auto& [k, r] : runs) StopRun(*r, "the worker is shutting down", "Stopped", r->assign.grace_period_s);
    int64_t until = Now() + 3000;
    while (!runs.empty() && Now() < until) {
      PollTrials();
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    return Status::Ok();
  }
};

WorkerAgent::WorkerAgent(AgentOptions options) : impl_(std::make_unique<Impl>()) {
  if (!options.now_ms) options.now_ms = SystemNowMs;
  if (!options.log) options.log = [](const std::string& l) { std::fprintf(stderr, "%s\n", l.c_str()); };
  if (options.host.empty()) options.host = Hostname();
  if (options.worker_id.empty()) options.worker_id = options.host + "-" + std::to_string(::getpid());
  if (options.slots == 0) options.slots = 1;
  impl_->opt = std::move(options);
}

WorkerAgent::~WorkerAgent() = default;

Status WorkerAgent::Run(const std::atomic<bool>& stop) {
  try {
    return impl_->Loop(stop);
  } catch (const zmq::error_t& e) {
    return Status::Unavailable(std::string("worker: ZeroMQ error: ") + e.what());
  }
}

size_t WorkerAgent::running() const {
  std::lock_guard<std::mutex> lock(impl_->runs_mu);
  return impl_->runs.size();
}

}  // namespace hpo::worker
