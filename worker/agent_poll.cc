// worker/agent_poll.cc: WorkerAgent::Impl, running trials: spot interruptions, stops, log pipes, metrics, the poll (worker/agent_impl.h).
#include "worker/agent_impl.h"
#include "worker/orphans.h"

#include <sys/statvfs.h>

#include <cctype>
#include <fstream>
#include <csignal>

#include "common/text.h"

namespace hpo::worker {

void WorkerAgent::Impl::CheckInterruption() {
  std::string reason;
  bool planned = false;
  {
    std::lock_guard<std::mutex> lock(interrupt_mu);
    reason = interrupt_reason;
    planned = interrupt_planned;
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
  // (A planned shutdown, SIGTERM without --spot, is said as one: it read "interruption notice",
  // the README's word for spot reclaims; a security pass.)
  Log("worker: " + (planned ? reason : "interruption notice (" + reason + ")") + ": stopping " +
      std::to_string(runs.size()) + " trial(s); they end Interrupted and are re-queued elsewhere");
  proto::wire::InterruptionNotice n;
  n.worker_id = opt.worker_id;
  n.reason = proto::wire::SanitizeText(reason, 4096);
  n.deadline_ms = 0;
  n.planned = planned;
  notice = n;  // said again on every registration: a restarted coordinator has to hear it too
  if (registered) Send(n);
  std::lock_guard<std::mutex> lock(runs_mu);
  for (auto& [key, r] : runs) {
    if (!r->stop_reason.empty()) continue;  // already stopping as asked: it ends Stopped
    r->interrupted->store(true);
    StopRun(*r, "Interrupted: " + reason, "Interrupted", r->assign.grace_period_s);
  }
}

void WorkerAgent::Impl::StopRun(Run& r, const std::string& reason, const std::string& secondary, int64_t grace_s,
                                bool gang_stop) {
  if (!r.stop_reason.empty()) return;
  r.stop_reason = reason;
  r.stop_secondary = secondary;
  r.stop_grace_ms = grace_s * 1000;
  StopPipes(r);
  r.staging_cancel->store(true);  // still staging: no more downloads (it ends not started)
  // Algo-1 of a gang: stopped with the others, it merges what they hand over as they stop and
  // upload (GangPeersEnded, or their .done; at most the grace period and kHandOverWaitMs).
  r.peers_until_ms->store(Now() + grace_s * 1000 + agent_detail::kHandOverWaitMs);
  int running = Run::kPeersRunning;
  r.peers->compare_exchange_strong(running, gang_stop ? Run::kPeersStopping : Run::kPeersNotAwaited);
  if (!r.process) return;
  // What it is writing as it is told to stop: if the signal cuts that save off, its last pass
  // holds the file back (CheckpointSync::NoteWriters).
  if (r.checkpoints) r.checkpoints->NoteWriters();
  const std::vector<std::string> stop = r.container ? ContainerStopCommand(opt.container, r.container_name, grace_s)
                                                    : std::vector<std::string>{};
  if (stop.empty()) {
    r.process->Stop(std::chrono::milliseconds(grace_s * 1000));
    return;
  }
  // The runtime stops the container (SIGTERM, SIGKILL after the grace period); the client
  // process is killed only if it is still there well after that, and gets no SIGTERM of its own:
  // it forwards the signals it gets, and the program had two. Where the runtime cannot stop it
  // (no container yet: the client still creates it), the client gets the SIGTERM.
  (void)background.Post([this, stop, grace_s, process = r.process] {
    auto done = RunTool(stop, std::chrono::seconds(grace_s) + opt.container.stop_margin);
    if (done.ok() && done->exit_code == 0) return;
    if (process->TryWait().has_value()) return;  // it ended meanwhile: nothing was left to stop
    std::string why = done.ok() ? done->output : done.status().message();
    while (!why.empty() && std::isspace(static_cast<unsigned char>(why.back()))) why.pop_back();
    // (No such container: not made yet, or just gone with its program, whose client then ends.)
    if (AsciiLower(why).find("no such container") == std::string::npos) {
      Log("worker: " + stop.back() + ": the runtime's stop failed (" + why + "); its client gets the SIGTERM");
    }
    process->Stop(std::chrono::milliseconds(grace_s * 1000), /*term=*/true);
  });
  r.process->Stop(std::chrono::milliseconds(grace_s * 1000) + opt.container.stop_margin, /*term=*/false);
}

void WorkerAgent::Impl::KillRunsNow() {
  for (auto& [key, rp] : runs) {
    Run& r = *rp;
    if (r.stop_reason.empty()) StopRun(r, "the worker is quitting", "Stopped", 0);
    if (!r.process) continue;
    if (r.container) {
      const std::vector<std::string> stop = ContainerStopCommand(opt.container, r.container_name, 0);
      if (!stop.empty()) (void)background.Post([this, stop] { (void)RunTool(stop, opt.container.stop_margin); });
    }
    r.process->Stop(std::chrono::milliseconds(0));
  }
}

bool WorkerAgent::Impl::StartPipes(const Key& key, Run& r) {
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
      raw->log.Add(proto::wire::SanitizeText(line, 16384));
      if (!raw->pipe_error) raw->pipe_error = s;
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

void WorkerAgent::Impl::StopPipes(Run& r) {
  if (r.pipes.empty()) return;
  for (auto& p : r.pipes) p->Stop();
  r.pipes.clear();
  (void)background.Post([dir = r.attempt_dir + "/pipe"] {
    std::error_code ec;
    fs::remove_all(dir, ec);
  });
}

void WorkerAgent::Impl::Flush(const Key& key, Run& r, bool all) {
  std::vector<proto::wire::MetricPoint> pts;
  std::vector<LogWindow::Batch> batches;
  {
    std::lock_guard<std::mutex> lock(r.mu);
    pts.swap(r.points);
    // The batches in flight are counted only when lines wait (this runs every flush_ms per
    // attempt; the outbox is the loop thread's, as is this).
    size_t in_flight = 0;
    if (!all && !r.log.empty()) {
      for (const Pending& p : outbox) in_flight += p.type == proto::wire::MsgType::kLogLines && p.key == key;
    }
    while (!r.log.empty() && (all || in_flight + batches.size() < agent_detail::kLogBatchesInFlight)) {
      batches.push_back(r.log.Take(2000, size_t{1} << 20));
    }
  }
  r.last_flush_ms = Now();
  for (auto& b : batches) {
    proto::wire::LogLines m;
    m.trial = key.first;
    m.attempt = key.second;
    m.seq = ++r.log_seq;
    m.first_line = b.first_line;
    m.lines = std::move(b.lines);
    SendReliable(m, proto::wire::MsgType::kLogLines, key, m.seq);
  }
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

void WorkerAgent::Impl::PeriodicPass(const Key& key, const std::shared_ptr<CheckpointSync>& sync,
                                     std::future<Result<CheckpointStats>>& pass, int64_t& last_ms, bool& error_logged,
                                     int64_t period_ms, const std::string& what, int64_t now,
                                     const std::shared_ptr<std::atomic<bool>>& revoked) {
  if (pass.valid()) {
    if (!Ready(pass)) return;
    auto done = pass.get();
    if (!done.ok() && !error_logged && LeaseFresh() && !revoked->load()) {
      error_logged = true;
      Log("worker: " + key.first + " attempt " + std::to_string(key.second) + ": uploading " + what + " to " +
          sync->uri() + " failed (retried every " + std::to_string(period_ms) + " ms): " + done.status().message());
    }
  }
  if (now - last_ms < period_ms) return;
  last_ms = now;
  pass = background.Post([this, c = sync, revoked] {
    CommitGate gate([this, revoked] {
      return LeaseFresh() && !revoked->load()
                 ? Status::Ok()
                 : Status::Unavailable("paused until the coordinator confirms the attempt (see the worker's log)");
    });
    return c->Sync(SyncPass::kRunning);
  });
}

void WorkerAgent::Impl::CheckpointPass(const Key& key, Run& r, int64_t now) {
  PeriodicPass(key, r.checkpoints, r.checkpoint_pass, r.last_checkpoint_pass_ms, r.checkpoint_error_logged,
               opt.checkpoint_sync_ms, "checkpoints", now, r.revoked);
}

void WorkerAgent::Impl::IntermediatePass(const Key& key, Run& r, int64_t now) {
  if (opt.intermediate_sync_ms <= 0) return;
  PeriodicPass(key, r.intermediate, r.intermediate_pass, r.last_intermediate_pass_ms, r.intermediate_error_logged,
               opt.intermediate_sync_ms, "output/intermediate", now, r.revoked);
}

bool WorkerAgent::Impl::Ready(const auto& future) {
  return future.valid() && future.wait_for(std::chrono::seconds(0)) == std::future_status::ready;
}

proto::wire::TrialExited WorkerAgent::Impl::ExitReport(Run& r, const ExitInfo& exit, bool outside_term,
                                                       std::optional<uint64_t> used) {
  proto::wire::TrialExited x;
  x.seq = r.seq;
  x.exit_code = exit.exit_code;
  x.signal = exit.signal;
  {
    std::lock_guard<std::mutex> lock(r.mu);
    for (const auto& [name, v] : r.last_values) x.final_metrics.push_back({name, v});
  }
  const std::optional<Status> fed = [&r] {
    std::lock_guard<std::mutex> lock(r.mu);
    return r.pipe_error;
  }();
  // Stopped: we asked it to stop before it ended (a stop that came while its artifacts were
  // being uploaded finds a program that had ended by itself).
  if (r.stop_fails && exit.stopped_by_us) {  // the job's fault (its volume)
    x.status = "Failed";
    x.secondary_status = "Failed";
    x.failure_reason = proto::wire::SanitizeText(r.stop_reason, 1024);
  } else if (agent_detail::EndedInterrupted(exit, r.interrupted->load(), Signalled(exit.ended_unix_ns))) {
    x.status = "Interrupted";
    x.secondary_status = "Interrupted";
    // (Before the worker's loop heard of its own signal, the stop has no reason yet.)
    const std::string why =
        r.stop_reason.empty() ? "Interrupted: the worker " + opt.worker_id + " is shutting down" : r.stop_reason;
    x.failure_reason = proto::wire::SanitizeText(
        exit.stopped_by_us ? why : why + " (the signal that stopped the worker reached the training program first)",
        1024);
  } else if (const std::optional<int64_t> stalled = StallKillTime(owner_tag);
             stalled && !exit.stopped_by_us && exit.exit_code != 0 && r.started_unix_ms > 0 &&
             *stalled >= r.started_unix_ms) {
    // Killed by this worker's guard while this process did not run (worker/orphans.h
    // kStallMarkFile): its coordinator had counted it lost and runs it elsewhere.
    x.status = "InfraError";
    x.secondary_status = "Failed";
    x.failure_reason = proto::wire::SanitizeText(
        "InternalServerError: worker " + opt.worker_id + " stopped running past its coordinator's lease (stopped or "
            "hung); its guard ended the training job, which the coordinator runs again",
        1024);
  } else if (!r.stop_reason.empty() && exit.stopped_by_us) {
    x.status = "Stopped";
    x.secondary_status = r.stop_secondary;
    x.failure_reason = proto::wire::SanitizeText(r.stop_reason, 1024);
  } else if (exit.exit_code == 0 && fed) {
    // Pipe mode stopped feeding a channel: the program saw an end of data where there was more,
    // and its result is from part of it. It ended Completed, with an objective, and could be the
    // best; a line in its log was all that said so. The data's fault (a corrupt gzip object, a
    // record too large) fails it; a read that failed is the infrastructure's, and is retried.
    const bool data = fed->code() != StatusCode::kIoError;
    x.status = data ? "Failed" : "InfraError";
    x.secondary_status = "Failed";
    x.failure_reason = proto::wire::SanitizeText(
        std::string(data ? "ClientError" : "InternalServerError") + ": Pipe input mode: " + fed->message() +
            "; the program ended having read only the data before it",
        1024);
  } else if (exit.exit_code == 0) {
    x.status = "Completed";
    x.secondary_status = "Completed";
  } else if (r.container && IsRuntimeFailure(opt.container, exit.exit_code, r.LastLine())) {
    const std::string last = r.LastLine();
    x.status = "InfraError";
    x.secondary_status = "Failed";
    x.failure_reason = proto::wire::SanitizeText(
        "InternalServerError: the container runtime " + opt.container.runtime + " failed (exit " +
            std::to_string(exit.exit_code) + "): " + last +
            (exit.exit_code == 125
                 ? " (an image no registry here serves? run it as a local program: hpo worker --image NAME=COMMAND, "
                   "or a file:// trainingImage)"
                 : " (the OCI runtime could not create the container: check the runtime's configuration on this "
                   "worker, e.g. containers.conf)"),
        1024);
  } else {
    x.status = "Failed";
    x.secondary_status = "Failed";
    auto reason = ReadFailureReason(r.root);
    std::string why = reason.ok() ? *reason : "";
    std::string last_line = r.LastLine();  // what the program said last: a traceback's last line names the error
    while (!last_line.empty() && (last_line.back() == ' ' || last_line.back() == '\r')) last_line.pop_back();
    if (why.empty()) {
      why = outside_term ? (exit.signal ? std::string("AlgorithmError: the training program was killed by SIGTERM, which "
                                                       "hpo did not send")
                                         : std::string("AlgorithmError: the training program exited with code 143 "
                                                       "(128 + SIGTERM: what a shell returns when its command was "
                                                       "killed by SIGTERM); hpo sent none"))
            : exit.signal ? "AlgorithmError: the training program was killed by signal " +
                               std::to_string(exit.signal)
                         : "AlgorithmError: the training program exited with code " +
                               std::to_string(exit.exit_code);
      // Killed by SIGKILL that hpo did not send while the kernel's out-of-memory killer ended a
      // process: SageMaker's OutOfMemoryError (a container's --memory limit, or the machine's
      // memory). It read "exited with code 137", and `FailureReason ~ OutOfMemory` found nothing.
      const std::optional<uint64_t> oom = agent_detail::OomKills();
      if (agent_detail::OutsideKill(exit, r.container) && oom && r.oom_kills_at_start && *oom > *r.oom_kills_at_start) {
        why = "OutOfMemoryError: the training program was killed by SIGKILL, which hpo did not send, while the "
              "kernel's out-of-memory killer ended " + std::to_string(*oom - *r.oom_kills_at_start) +
              " process(es) on this machine: most likely it ran out of memory (dmesg names the process killed); "
              "use an instance type with more memory, or reduce the data, batch or model size per host";
      }
      // Without a failure file, what the program said last (a traceback's last line names the
      // error), as SageMaker's toolkit puts a script's error message in the reason.
      if (!last_line.empty()) why += "; its last output line: " + last_line;
    }
    x.failure_reason = proto::wire::SanitizeText(why, 1024);
    if (std::string full = OutOfSpaceNotOwn(r, used, why + "\n" + last_line); !full.empty()) {
      x.status = "InfraError";
      x.failure_reason = proto::wire::SanitizeText(full + "; the program said: " + why, 1024);
    }
  }
  return x;
}

std::optional<uint64_t> agent_detail::OomKills() {
  std::ifstream in("/proc/vmstat");
  for (std::string name; in >> name;) {
    uint64_t n = 0;
    if (!(in >> n)) break;
    if (name == "oom_kill") return n;
  }
  return std::nullopt;
}

// Free space under which a worker's disk counts as full (what a neighbour left after the failure).
constexpr uint64_t kNearlyFullBytes = 256ull << 20;

// Bytes free for an unprivileged writer on the file system of `path`; nullopt when not known.
static std::optional<uint64_t> FreeBytes(const std::string& path) {
  struct statvfs fs_info {};
  if (::statvfs(path.c_str(), &fs_info) != 0) return std::nullopt;
  return static_cast<uint64_t>(fs_info.f_bavail) * fs_info.f_frsize;
}

void WorkerAgent::Impl::NoteFullDisk(const Key& key, Run& r) {
  const std::optional<uint64_t> free = FreeBytes(r.attempt_dir);
  if (!free || *free >= kNearlyFullBytes) return;
  const uint64_t free_bytes = *free;
  // The program's output goes straight to trial.log: on a full disk its last writes may have
  // been refused, so neither that file nor what the coordinator holds need be complete. Said
  // in its log (hpo logs), where the gap would be read, and in the worker's.
  const std::string line = "hpo: the worker's disk had " + std::to_string(free_bytes >> 20) + " MiB free in " +
                           r.attempt_dir + " when the program ended: what it printed last may be missing here and "
                           "from its trial.log";
  Log("worker: " + key.first + " attempt " + std::to_string(key.second) + ": " + line.substr(5));
  if (FILE* f = std::fopen((r.attempt_dir + "/trial.log").c_str(), "a")) {
    std::fprintf(f, "%s\n", line.c_str());
    std::fclose(f);
  }
  std::lock_guard<std::mutex> lock(r.mu);
  r.log.Add(proto::wire::SanitizeText(line, 16384));
}

std::string WorkerAgent::Impl::OutOfSpaceNotOwn(const Run& r, std::optional<uint64_t> used, const std::string& said) {
  // What it said last, and the end of its log: launchers (torchrun, a logging shutdown) print
  // after the line that names the error.
  std::string tail = said;
  if (std::ifstream log(r.attempt_dir + "/trial.log", std::ios::binary); log) {
    log.seekg(0, std::ios::end);
    const std::streamoff size = log.tellg();
    const std::streamoff from = std::max<std::streamoff>(0, size - 16384);
    log.seekg(from);
    tail.append(std::istreambuf_iterator<char>(log), std::istreambuf_iterator<char>());
  }
  std::string line;  // the line that says so
  for (const char* sign : {"No space left on device", "[Errno 28]", "ENOSPC"}) {
    const size_t at = tail.rfind(sign);
    if (at == std::string::npos) continue;
    const size_t begin = tail.rfind('\n', at) + 1;  // 0 when it is the first line (npos + 1)
    line = tail.substr(begin, tail.find('\n', at) - begin);
    break;
  }
  if (line.empty()) return "";
  // The worker's disk is (nearly) full now: an ENOSPC from elsewhere (/dev/shm, a tmpfs /tmp, a
  // quota) is the program's to fix, and a retry would fail the same way. (Checked before the
  // walk below, which the loop thread would pay for every such failure.)
  const std::optional<uint64_t> free = FreeBytes(r.attempt_dir);
  if (!free || *free >= kNearlyFullBytes) return "";
  const uint64_t free_bytes = *free;
  // Its own use within its volume (measured while it ran, and again now: its files are still
  // there, and a program that filled the disk faster than the watch measures is its own cause):
  // the space went elsewhere.
  if (r.volume_limit) {
    if (auto now = DiskUsage(r.volume_limit->dirs, r.volume_limit->skip); now.ok()) used = std::max(used.value_or(0), *now);
  }
  const uint64_t limit = r.volume_limit ? r.volume_limit->limit_bytes() : 0;
  if (used && limit > 0 && *used >= limit) return "";  // its own volume: the job's fault
  auto gb = [](uint64_t b) {
    char buf[32];
    std::snprintf(buf, sizeof buf, "%.2f GB", static_cast<double>(b) / (1ull << 30));
    return std::string(buf);
  };
  std::string m = "InternalServerError: the training program ran out of disk space on worker " + opt.worker_id +
                  " (" + gb(free_bytes) + " free now under " + opt.work_dir + ")";
  if (used && limit > 0) {
    m += " while the training job used " + gb(*used) + " of its " + gb(limit) +
         " volume (ResourceConfig.VolumeSizeInGB): something else on the worker filled the disk";
  } else {
    m += ": the worker's disk is full";
  }
  return m + "; retried under the RetryStrategy. It said: " + line;
}

void WorkerAgent::Impl::KeepPendingExit(const Key& key, const Run& r) {
  PendingExit p;
  p.exit = *r.ended;
  p.exit.trial = key.first;
  p.exit.attempt = key.second;
  p.exit.ended_at_ms = Now();
  if (!r.assign.output_path.empty()) p.artifacts = ArtifactsOf(r);
  p.intermediate = r.intermediate != nullptr;
  if (r.checkpoints) {
    p.checkpoint_uri = r.checkpoints->uri();
    p.checkpoint_dir = r.checkpoint_dir;
  }
  if (Status s = WritePendingExit(r.attempt_dir, p); !s.ok()) {
    Log("worker: " + key.first + " attempt " + std::to_string(key.second) +
        ": its report waits for the uploads in memory only: " + s.message());
  }
}

void WorkerAgent::Impl::UploadFailed(proto::wire::TrialExited& x, const Status& up, const std::string& kept) {
  const bool client = IsClientError(up);
  x.status = client ? "Failed" : "InfraError";
  x.secondary_status = "Failed";
  // Messages that name what could not be uploaded (checkpoints, output/intermediate) say so.
  const bool named = up.message().rfind("cannot upload", 0) == 0;
  const std::string where = kept.empty() ? "" : " (" + kept + ")";
  x.failure_reason = proto::wire::SanitizeText(
      (client ? "ClientError: " : "InternalServerError: ") +
          (named ? up.message() + where : "cannot upload the artifacts" + where + ": " + up.message()),
      1024);
}

void WorkerAgent::Impl::FinishExit(const Key& key, Run& r) {
  proto::wire::TrialExited x = std::move(*r.ended);
  r.ended.reset();
  // Its monitor thread, which ran the uploads, may still be letting go of the program's mount
  // namespace (which the kernel tears down with an RCU grace period): joined on a pool thread,
  // not here, and only now (joined earlier, it held a pool thread for as long as the uploads
  // waited for the coordinator).
  if (r.process) (void)background.Post([done_process = std::move(r.process)]() mutable { done_process.reset(); });
  if (!r.resumed) {  // what the program's reader delivered since its exit was noticed (normally nothing)
    Flush(key, r, true);
    x.seq = r.seq;
  }
  std::string where;
  if (r.upload.valid()) {
    Result<UploadedArtifacts> uploaded = r.upload.get();
    if (!r.volume_over_at_exit.empty()) {  // the job's fault, as when a check caught it running
      x.status = "Failed";
      x.secondary_status = "Failed";
      x.failure_reason = proto::wire::SanitizeText(r.volume_over_at_exit, 1024);
    } else if (!uploaded.ok()) {
      const Status& up = uploaded.status();
      Log("worker: " + key.first + " attempt " + std::to_string(key.second) + ": uploading failed: " + up.message());
      if (x.status == "Completed") {
        // The trained model is nowhere else: it stays here, and the reason says where.
        // (A failed last checkpoint upload comes after the model's, which went up.)
        const bool model_up = up.message().rfind("cannot upload the checkpoints", 0) == 0;
        if (!opt.keep_trial_files && !model_up) {
          r.not_uploaded_dir = (fs::path(r.attempt_dir) / agent_detail::kNotUploaded).string();
        }
        const std::string& kept_in = opt.keep_trial_files ? r.root : r.not_uploaded_dir;
        UploadFailed(x, up,
                     model_up ? std::string()
                              : "its model and output stay on worker " + opt.worker_id + " in " + kept_in);
      }
    } else if (uploaded->handed_over) {
      // (It said "uploaded .../model.tar.gz", of files algo-1 may have packed without them.)
      where = "; handed its model and output data over to algo-1, which packs them into " + uploaded->model +
              " and " + uploaded->output_data + " if it has not packed them yet" +
              (uploaded->note.empty() ? "" : " (" + uploaded->note + ")");
    } else if (!uploaded->model.empty()) {
      where = "; uploaded " + uploaded->model + " and " + uploaded->output_data +
              (uploaded->note.empty() ? "" : " (" + uploaded->note + ")");
    }
  }
  Log("worker: " + key.first + " attempt " + std::to_string(key.second) + " ended " + x.status + where);
  KeepWarmData(r);
  // Its end: after the uploads (SageMaker's Uploading is part of a training job's time), less
  // the time they waited for a coordinator that was down (TrainingTimeInSeconds counted 17 s
  // for an 8 s program across a 12 s outage).
  if (x.ended_at_ms == 0) x.ended_at_ms = Now() - r.lease_wait_ms->load();
  // The outbox journal has the report now; one it could not take (a full disk) keeps the
  // pending-exit file, from which a later worker process reports the training job's end.
  if (Exited(key, std::move(x))) RemovePendingExit(r.attempt_dir);
}

void WorkerAgent::Impl::PollTrials() {
  PublishRuns();  // before any program below starts (worker/orphans.h)
  int64_t now = Now();
  std::vector<Key> done;
  const bool signalled = Signalled();  // (once a pass: PollTrials runs every tick)
  // The signal that stops this worker has come (the loop hears of it after this pass): the
  // coordinator hears that the worker is going before any exit report below, which it answered
  // with a new assignment here (a scancel's retry came back to its dying worker, and was
  // interrupted in turn).
  if (signalled && !interrupted && !loop_ended) {
    Interrupt("the worker " + opt.worker_id + " is shutting down", /*planned=*/true);
    CheckInterruption();
  }
  for (auto& [key, rp] : runs) {
    Run& r = *rp;
    if (!r.pull_reported && r.pulling->load() && registered) {  // its staging pulls the image
      r.pull_reported = true;
      SendStaging(key, proto::wire::kDownloadingTrainingImage, r.assign.image);
    }
    // (A report that says otherwise, e.g. a resumed Failed one whose program exited 0, wins.)
    if (!r.upload_reported && r.uploading->load() && registered && (!r.ended || r.ended->status == "Completed")) {
      r.upload_reported = true;
      SendStaging(key, proto::wire::kUploading, "model and output to " + r.assign.output_path);
    }
    if (r.deadline_ms && now >= r.deadline_ms && r.stop_reason.empty()) {
      StopRun(r, "MaxRuntimeExceeded: the training job ran longer than its max runtime of " +
                     std::to_string(r.assign.max_runtime_s) + " s",
              "MaxRuntimeExceeded", r.assign.grace_period_s);
    }
    // With nothing staged: its program starts, or, stopped meanwhile, it is reported unstarted.
    auto start_unstaged = [&] {
      if (!r.stop_reason.empty()) {
        ReportNotStarted(key, r, "before it started");
        done.push_back(key);
      } else if (!StartProgram(key, r, {})) {
        done.push_back(key);
      }
    };
    // The signal that stops this worker has come and its loop has yet to hear: what has not
    // started stays so (the stop hands it back as not started). Started, it ran for a moment and
    // came back Interrupted (37 ms after a scancel, in a user's pass).
    const bool hold = r.stop_reason.empty() && signalled;
    if (r.queued) {  // assigned ahead: its slot frees when its predecessor's program ends
      if (hold || (r.stop_reason.empty() && PredecessorRunning(r.after))) continue;
      if (r.stop_reason.empty() && !LeaseFresh()) continue;  // fenced: see lease_anchor_ms
      r.queued = false;
      if (r.stop_reason.empty()) r.deadline_ms = Deadline(r.assign);
      if (!r.staging.valid()) {
        start_unstaged();
        continue;
      }
    }
    if (r.awaits_lease) {  // ready to start when its assignment came (Run::awaits_lease)
      if (hold || (r.stop_reason.empty() && !LeaseFresh())) continue;
      r.awaits_lease = false;
      start_unstaged();
      continue;
    }
    if (r.staging.valid()) {  // data staging
      if (!Ready(r.staging)) continue;
      // Staged: it starts under a fresh lease (Run::awaits_lease); the staged data waits.
      if (hold || (r.stop_reason.empty() && !LeaseFresh())) continue;
      auto mounts = r.staging.get();
      if (!r.preflight_note->empty()) {
        std::lock_guard<std::mutex> lock(r.mu);
        r.log.Add(*r.preflight_note);
      }
      if (!r.stop_reason.empty()) {
        // (A stop during an image pull read "while staging data" alone: a containers pass.)
        ReportNotStarted(key, r, r.pulling->load() ? "while staging its data and pulling its image" : "while staging data");
        done.push_back(key);
        continue;
      }
      if (!mounts.ok()) {
        proto::wire::TrialExited x;
        const bool client = IsClientError(mounts.status());
        x.status = client ? "Failed" : "InfraError";
        x.secondary_status = "Failed";
        // This worker's lack of S3 (no credentials, a bad endpoint, an S3 service it cannot reach
        // or that refuses its credentials: the S3 client's Unavailable, which names an s3:// URI),
        // or of the image's registry (a name that does not resolve, no network to it): a refusal
        // to start it, which the coordinator takes elsewhere, and forgives when every worker
        // refuses (as they all do in hpo run, whose workers share one environment: they rested for
        // minutes, and every other tuning job waited with them).
        const std::string& said = mounts.status().message();
        const bool no_s3 = said.find(agent_detail::kNoS3) != std::string::npos ||
                           (mounts.status().code() == StatusCode::kUnavailable && said.find("s3://") != std::string::npos);
        x.failure_reason = proto::wire::SanitizeText(
            client ? "ClientError: " + said
            : no_s3 || said.rfind(agent_detail::kCannotPull, 0) == 0
                ? proto::wire::CannotStartReason(opt.worker_id, said)
                : "InternalServerError: " + said,
            1024);
        Log("worker: " + key.first + " attempt " + std::to_string(key.second) + " ended " + x.status +
            " while staging data: " + x.failure_reason);
        Exited(key, std::move(x));
        done.push_back(key);
        continue;
      }
      if (!StartProgram(key, r, std::move(mounts).value())) done.push_back(key);
      continue;
    }
    if (!r.ended) {
      if (!r.process) continue;
      auto exit = r.process->TryWait();
      if (!exit) {
        if (now - r.last_flush_ms >= opt.flush_ms) Flush(key, r);
        // Fenced as the last upload is: out of touch with the coordinator past half its lease,
        // this attempt may be counted lost and running elsewhere from the same destination, and
        // passes from here would overwrite (and delete) that attempt's newer checkpoints. They
        // resume once the coordinator has confirmed the attempt (a revoked one is stopped).
        const bool fresh = LeaseFresh();
        if (!fresh && (r.checkpoints || r.intermediate)) {
          auto& [since, said] = passes_paused.try_emplace(key, now, false).first->second;
          if (!said && now - since >= opt.coordinator_lease_ms / 4) {
            said = true;
            Log("worker: " + key.first + " attempt " + std::to_string(key.second) +
                ": checkpoint uploads paused: the coordinator has acknowledged no heartbeat for over half its lease "
                "(it may give this attempt to another worker); they resume when it confirms the attempt");
          }
        } else if (auto paused = passes_paused.find(key); fresh && paused != passes_paused.end()) {
          if (paused->second.second) {
            Log("worker: " + key.first + " attempt " + std::to_string(key.second) + ": checkpoint uploads resumed");
          }
          passes_paused.erase(paused);
        }
        if (fresh && r.checkpoints) CheckpointPass(key, r, now);
        if (fresh && r.intermediate) IntermediatePass(key, r, now);
        if (r.volume && r.stop_reason.empty()) {
          if (std::string over = r.volume->Exceeded(); !over.empty()) {
            Log("worker: stopping " + key.first + " attempt " + std::to_string(key.second) + ": " + over);
            StopRun(r, over, "Failed", r.assign.grace_period_s);
            r.stop_fails = true;
          }
        }
        continue;
      }
      // Killed by a SIGTERM that hpo did not send (signal 15, or exit 143 from a shell that got it):
      // most likely whatever is stopping the worker too. Slurm's scancel, for one, signals every
      // process of the job at once, so the program can die before the worker hears of its own
      // stop. Its report waits up to kOutsideTermWaitMs for that stop: then it is the capacity
      // going away (Interrupted, re-run elsewhere without a retry), not the algorithm failing.
      const bool outside_term = agent_detail::OutsideTerm(*exit);
      if (outside_term && !r.interrupted->load()) {
        if (r.outside_term_ms == 0) r.outside_term_ms = now;
        if (now - r.outside_term_ms < kOutsideTermWaitMs) continue;
      }
      StopPipes(r);
      const std::optional<uint64_t> used = r.volume ? std::optional<uint64_t>(r.volume->used_bytes()) : std::nullopt;
      r.volume.reset();
      NoteFullDisk(key, r);
      Flush(key, r, true);
      r.ended = ExitReport(r, *exit, outside_term, used);
      if (r.container && exit->signal != 0) {  // the client was killed: the container may outlive it
        if (auto rm = ContainerRemoveCommand(opt.container, r.container_name); !rm.empty()) {
          (void)background.Post([rm] { (void)RunTool(rm, std::chrono::seconds(60)); });
        }
      }
      // The uploads still run (or wait for the coordinator): the report outlives this process,
      // where the journal can take it over (a report that waits for metric batches the journal
      // does not have would wait forever).
      if (r.upload.valid() && !Ready(r.upload) && journal && !journal_error_logged) KeepPendingExit(key, r);
    } else if (r.resumed && !r.upload.valid()) {  // ended under an earlier worker process
      ExitInfo info;  // as the report kept says it ended
      info.exit_code = r.ended->exit_code;
      info.signal = r.ended->signal;
      info.stopped_by_us = r.ended->status != "Completed" && r.ended->status != "Failed";
      (void)background.Post([upload = UploadOnExit(r), info] { upload(info); });
    }
    if (r.upload.valid() && !Ready(r.upload)) continue;  // its thread wakes us when uploaded
    FinishExit(key, r);
    done.push_back(key);
  }
  std::lock_guard<std::mutex> lock(runs_mu);
  for (const auto& k : done) {
    passes_paused.erase(k);
    auto it = runs.find(k);
    if (it == runs.end()) continue;
    // However the attempt ended (its program exited, it failed to stage or to start, it was
    // stopped before it ran): AgentOptions::keep_trial_files aside, its own tree goes, its
    // trial.log and the training job's checkpoint directory (shared by its attempts, which a
    // later one here may need, e.g. after the coordinator gave a stalled attempt's slot to a new
    // one) stay. A channel that filled the disk half-way used to stay, and every later training
    // job sent to this worker failed for want of space.
    if (ReleasesCheckpoints()) held_checkpoints.insert(k.first);
    if (!opt.keep_trial_files) {
      (void)background.Post([root = it->second->root, hosts = it->second->attempt_dir + "/hosts",
                             kept = it->second->not_uploaded_dir] {
        std::error_code ec;
        if (!kept.empty()) {  // the model and output whose upload failed move out of the tree first
          fs::create_directories(kept, ec);
          for (const char* part : {"model", "output"}) {
            std::error_code mv;
            if (fs::exists(fs::path(root) / part, mv)) fs::rename(fs::path(root) / part, fs::path(kept) / part, mv);
          }
        }
        fs::remove_all(root, ec);
        fs::remove(hosts, ec);  // the /etc/hosts it saw
      });
    }
    // Pipe-mode data spooled while staging, whatever became of the attempt: StopPipes removes it
    // only where a feeder started, and a stop during staging or a channel that failed after
    // others were spooled left gigabytes for the 30 days trial logs are kept.
    (void)background.Post([pipe = it->second->attempt_dir + "/pipe", env = it->second->attempt_dir + "/container.env"] {
      std::error_code ec;
      fs::remove_all(pipe, ec);
      fs::remove(env, ec);  // the container's environment (secrets) is not kept with the logs
    });
    runs.erase(it);
  }
}

}  // namespace hpo::worker
