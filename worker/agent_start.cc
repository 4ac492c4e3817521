// worker/agent_start.cc: WorkerAgent::Impl, starting a trial's program: NCCL preflight, deadlines, checkpoints, uploads (worker/agent_impl.h).
#include "worker/agent_impl.h"
#include "worker/orphans.h"

#include <fcntl.h>
#include <unistd.h>

#include <cmath>

namespace hpo::worker {

std::string WorkerAgent::Impl::PreflightBinary() const {
  if (!opt.nccl_preflight.empty()) return opt.nccl_preflight;
  std::error_code ec;
  const fs::path self = fs::read_symlink("/proc/self/exe", ec);
  return ec ? std::string() : (self.parent_path() / "hpo-nccl-preflight").string();
}

void WorkerAgent::Impl::PlanPreflight(Run& r, const proto::wire::AssignTrial& a) {
  const std::string what = a.trial + " attempt " + std::to_string(a.attempt);
  auto skipped = [&](const std::string& why) {
    r.log.Add("hpo: NCCL preflight skipped: " + why);  // to the coordinator
    Log("worker: " + what + ": NCCL preflight skipped: " + why);
  };
  // Hosts without GPUs have nothing to check: said in the worker's log only (in the training
  // log, read as the program's own output, the line puzzled an SDK pass).
  if (a.gpus.empty()) return Log("worker: " + what + ": NCCL preflight skipped: the training job's hosts have no GPUs");
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

Status WorkerAgent::Impl::RunPreflight(const std::vector<std::string>& argv, const std::string& host, std::string* note) {
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

int64_t WorkerAgent::Impl::Deadline(const proto::wire::AssignTrial& a) const {
  return a.max_runtime_s > 0 ? Now() + static_cast<int64_t>(a.max_runtime_s) * 1000 : 0;
}

bool WorkerAgent::Impl::PredecessorRunning(const Key& k) {
  auto it = runs.find(k);
  if (it == runs.end()) return false;
  Run& p = *it->second;
  // (One waiting for its lease starts once it has one: a successor assigned meanwhile waits for
  // it, or both started together past the job's MaxParallelTrainingJobs; the soak caught that.)
  if (p.queued || p.awaits_lease) return true;
  if (p.process) return !p.process->TryWait().has_value();
  return p.staging.valid();
}

void WorkerAgent::Impl::ReportNotStarted(const Key& key, Run& r, const std::string& while_doing) {
  proto::wire::TrialExited x;
  x.status = r.interrupted->load() ? "Interrupted" : "Stopped";
  x.secondary_status = r.interrupted->load() ? "Interrupted" : r.stop_secondary;
  x.failure_reason = proto::wire::SanitizeText(r.stop_reason, 1024);
  Log("worker: " + key.first + " attempt " + std::to_string(key.second) + " ended " + x.status + " " +
      while_doing + ": " + x.failure_reason);
  Exited(key, std::move(x));
}

Status WorkerAgent::Impl::PrepareCheckpoints(Run& r, const fs::path& keep) {
  std::error_code ec;
  fs::create_directories(keep, ec);
  if (ec) return Status::IoError("cannot create " + keep.string() + ": " + ec.message());
  std::string local = r.assign.checkpoint_local_path.empty() ? "/opt/ml/checkpoints" : r.assign.checkpoint_local_path;
  while (local.size() > 1 && local.back() == '/') local.pop_back();
  if (local.empty() || local[0] != '/' || local.find("/../") != std::string::npos ||
      local.find("/./") != std::string::npos || local.ends_with("/..") || local.ends_with("/.")) {
    return Status::InvalidArgument("ClientError: CheckpointConfig.LocalPath \"" + local +
                                   "\" is not a clean absolute path (no . or .. components)");
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

ArtifactSpec WorkerAgent::Impl::ArtifactsOf(const Run& r) {
  ArtifactSpec spec;
  spec.root = r.root;
  spec.output_path = r.assign.output_path;
  spec.job_name = r.assign.trial;
  spec.compress = r.compress_output;
  spec.scratch_dir = r.attempt_dir;
  spec.replace = r.layout.hosts.size() <= 1;
  spec.primary = r.layout.hosts.size() <= 1 || r.layout.current_host == "algo-1";
  if (r.layout.hosts.size() > 1) {
    spec.host = r.layout.current_host;
    spec.hosts = r.layout.hosts;
    spec.attempt = r.assign.attempt;
  }
  return spec;
}

std::function<void(const ExitInfo&)> WorkerAgent::Impl::UploadOnExit(Run& r) {
  // The program's end is the end of what it started, as a container's end is, whatever follows
  // (waiting for the other hosts or the coordinator, uploads, or nothing to upload): what it left
  // running (a daemon still writing its model or checkpoints) could swap files under the uploads
  // (a FIFO blocked them for good; a link uploaded a host file). Its namespace's mark goes with
  // it: the namespace's number (and its /opt/ml's inode) are given out again, and a mark left
  // behind (an attempt revoked before its upload) named another training job's program to the
  // guard's sweep at this worker's end, which killed it (worker/orphans.h KillLeftoversOf).
  const std::string host = r.layout.hosts.size() > 1 ? r.layout.current_host : std::string();
  auto end_leftovers = [this, trial = r.assign.trial, attempt = r.assign.attempt, host](const ExitInfo& exit) {
    KillAttemptLeftovers(trial, attempt, host, [this](const std::string& l) { Log(l); }, exit.mount_ns);
    if (exit.mount_ns != 0) UnmarkAttemptNamespace(owner_tag, exit.mount_ns);
  };
  const bool artifacts = !r.assign.output_path.empty();
  if (!artifacts && !r.checkpoints) {
    return [this, end_leftovers](const ExitInfo& exit) {
      end_leftovers(exit);
      Wake();
    };
  }
  const ArtifactSpec spec = !artifacts ? ArtifactSpec{} : r.resumed_artifacts ? *r.resumed_artifacts : ArtifactsOf(r);
  auto done = std::make_shared<std::promise<Result<UploadedArtifacts>>>();
  r.upload = done->get_future();
  const std::string what = r.assign.trial + " attempt " + std::to_string(r.assign.attempt);
  // Beside the training job's checkpoint directory while its last upload failed: the directory
  // may then hold the only copy, and ReleaseTrials leaves it (agent_detail::kUnsyncedMarker).
  fs::path unsynced = r.checkpoint_dir + agent_detail::kUnsyncedMarker;
  return [this, spec, done, artifacts, what, trial = r.assign.trial, attempt = r.assign.attempt,
          checkpoints = r.checkpoints, intermediate = r.intermediate,
          successor_waits = r.successor_waits, revoked = r.revoked, lease_wait_ms = r.lease_wait_ms,
          interrupted = r.interrupted, evicted = r.evicted,
          container = r.container, uploading = r.uploading,
          peers = r.peers, peers_until_ms = r.peers_until_ms, unsynced = std::move(unsynced),
          raw = &r, end_leftovers](const ExitInfo& exit) {
    end_leftovers(exit);
    if (successor_waits->load()) Wake();  // the next trial starts in this slot while we upload
    struct WakeOnReturn {
      const Impl* impl;
      ~WakeOnReturn() { impl->Wake(); }
    } wake{this};
    // Algo-1 of a multi-host attempt (Run::peers): completed, the other hosts' files are up once
    // they have all ended (the coordinator says so); stopped with them, once each has handed its
    // files over, or at the stop's deadline. Failed on its own, it waits for nothing.
    if (artifacts && spec.primary && spec.Gang()) {
      // Its checkpoints go up now, as every other host's do after its program: only the model
      // waits for the others. (Its last epoch stayed here until they ended, and a worker killed
      // meanwhile lost it; a gang-faults pass.) The last pass below sends what this one held.
      if (checkpoints && LeaseFresh() && !revoked->load()) {
        CommitGate gate([this, revoked] { return AwaitLease(*revoked); });
        (void)checkpoints->Sync(agent_detail::EndedBySignal(exit, container) ? SyncPass::kKilled : SyncPass::kEnded,
                                exit.ended_unix_ns);
      }
      const bool completed = exit.exit_code == 0 && !exit.stopped_by_us;
      int running = Run::kPeersRunning;
      if (!completed) peers->compare_exchange_strong(running, Run::kPeersNotAwaited);
      if (peers->load() == Run::kPeersRunning) {
        const std::string others =
            spec.hosts.size() == 2 ? std::string("host has") : std::to_string(spec.hosts.size() - 1) + " hosts have";
        Log("worker: " + what + ": algo-1's program has ended; " +
            (spec.compress ? "its model and output data are packed once the other " + others + " ended, with theirs merged in"
                           : "its model and output data are uploaded once the other " + others +
                                 " ended (an earlier attempt's files are then removed)"));
      }
      // The time it waits so while the coordinator is not heard (it relays the others' end) is
      // left out of the attempt's end, as a wait for the lease below is: a coordinator outage
      // made a 6 s training job of 2 hosts 13 to 20 s long (a regression pass).
      int64_t unheard_ms = 0;
      while (peers->load() == Run::kPeersRunning && !revoked->load() && !closing.load()) {
        const int64_t before = Now();
        std::this_thread::sleep_for(std::chrono::milliseconds(20));
        if (!LeaseFresh()) unheard_ms += Now() - before;
      }
      lease_wait_ms->store(unheard_ms);
      while (peers->load() == Run::kPeersStopping && !revoked->load() && !closing.load() &&
             !HandedOver(spec, [this] { return S3(); })) {
        if (Now() >= peers_until_ms->load()) {
          Log("worker: " + what + ": stopped; not every other host handed its model over within the stop's grace "
              "period and " + std::to_string(agent_detail::kHandOverWaitMs / 60000) +
              " minutes: packed with what they had");
          break;
        }
        std::this_thread::sleep_for(std::chrono::milliseconds(200));
      }
    }
    // Fenced (lease_anchor_ms): after a pause or a cut-off, the coordinator first says whether this
    // attempt is still ours; if another worker has re-run it, its artifacts are at the same path.
    if (!LeaseFresh()) {
      const auto wait_began = std::chrono::steady_clock::now();
      (void)AwaitLease(*revoked);  // what ended the wait is read just below
      lease_wait_ms->fetch_add(std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() -
                                                                                     wait_began)
                                   .count());
    }
    if (revoked->load()) {
      Log("worker: " + what + ": not uploaded: the coordinator no longer counts this attempt (it counted this worker, "
          "or another host of the training job, lost, or gave the attempt to another worker)");
      if (artifacts && spec.primary && spec.Gang()) {  // the other hosts' hand-over is not left behind
        if (Status s = AbandonHandOver(spec, [this] { return S3(); }); !s.ok()) {
          Log("worker: " + what + ": the other hosts' hand-over stays: " + s.message());
        }
      }
      done->set_value(Status::Unavailable("the coordinator no longer runs this attempt; nothing was uploaded"));
      return;
    }
    if (closing.load()) {
      done->set_value(Status::Unavailable("the worker stopped before the artifacts were uploaded"));
      return;
    }
    // And at each write's last moment (common/object_store.h CommitGate): packing a large model
    // takes seconds, and a worker paused meanwhile past its lease renamed its archive over the
    // re-run's when it woke.
    CommitGate gate([this, revoked] { return AwaitLease(*revoked); });
    try {
      if (raw->volume_limit && exit.exit_code == 0 && !exit.stopped_by_us) {
        auto used = DiskUsage(raw->volume_limit->dirs, raw->volume_limit->skip);
        if (used.ok() && *used > raw->volume_limit->limit_bytes()) {
          raw->volume_over_at_exit = VolumeExceededReason(*raw->volume_limit, *used);
          Log("worker: " + what + ": not uploaded: " + raw->volume_over_at_exit);
          done->set_value(Status::InvalidArgument(raw->volume_over_at_exit));
          return;
        }
      }
      // Interrupted on a single host: it runs again, and its model would be the job's until then.
      // So does one whose container the runtime could not start (no program ran: empty archives).
      // (As ExitReport judges it: the runtime's last line tells a runc failure's 126 from the
      // program's. The Run outlives its process, whose output thread runs this.)
      const bool never_ran =
          container && IsRuntimeFailure(opt.container, exit.exit_code, raw->LastLine()) && !exit.stopped_by_us;
      // (Evicted: only if the stop ended it; a program that completed first reports Completed.)
      const bool was_evicted = evicted->load() && exit.stopped_by_us;
      const bool runs_again =
          ((agent_detail::EndedInterrupted(exit, interrupted->load(), Signalled(exit.ended_unix_ns)) || was_evicted) &&
           !spec.Gang()) ||
          never_ran;
      // Completed, and its model goes up: the training job says Uploading from here (the loop
      // tells the coordinator, unless the report it has by then says otherwise).
      if (artifacts && spec.primary && !runs_again && exit.exit_code == 0 && !exit.stopped_by_us) {
        uploading->store(true);
        Wake();
      }
      // A failed last checkpoint pass fails a training job that otherwise completed (as on
      // SageMaker, where it ends InternalServerError after Uploading), once the artifacts are up.
      Status checkpoint_error;
      if (checkpoints) {  // the last pass: what the program wrote up to its end (or its grace period)
        auto pass = checkpoints->Sync(
            agent_detail::EndedBySignal(exit, container) ? SyncPass::kKilled : SyncPass::kEnded,
            exit.ended_unix_ns);
        std::error_code ec;
        if (const std::vector<std::string> links = checkpoints->SkippedLinks(); !links.empty()) {
          std::string names;
          for (size_t i = 0; i < links.size() && i < 5; ++i) names += (i ? ", " : "") + links[i];
          if (links.size() > 5) names += ", ...";
          Log("worker: " + what + ": " + std::to_string(links.size()) + " checkpoint link(s) not uploaded (" + names +
              "): a link is uploaded as the file it names only when that is inside the checkpoint directory by a "
              "relative path; the next attempt starts without them");
        }
        const std::vector<std::string> held = checkpoints->LastHeld();
        if (!held.empty()) {
          std::string names;
          for (size_t i = 0; i < held.size() && i < 5; ++i) names += (i ? ", " : "") + held[i];
          if (held.size() > 5) names += ", ...";
          size_t copies = 0;  // (one never uploaded has no whole copy to keep)
          for (const std::string& rel : held) copies += checkpoints->AtDestination(rel);
          const std::string kept =
              copies == held.size() ? " keeps its last whole copies for the next attempt"
              : copies == 0         ? " has no earlier copy of them: the next attempt starts without them"
                                    : " keeps the last whole copies of " + std::to_string(copies) +
                                  " of them; the next attempt starts without the other " +
                                  std::to_string(held.size() - copies);
          Log("worker: " + what + ": a signal ended the program while it was writing " + std::to_string(held.size()) +
              " checkpoint file(s) (" + names + "): not uploaded, and no delete mirrored; " + checkpoints->uri() +
              kept);
        }
        if (!pass.ok() && revoked->load()) {
          // Not ours any more: no marker (it would keep this copy as the newest and, adopted by a
          // later attempt here, put it over the re-run's checkpoints).
          Log("worker: " + what + ": the last checkpoint upload stopped: " + pass.status().message());
        } else if (!pass.ok()) {
          Log("worker: " + what + ": the last checkpoint upload to " + checkpoints->uri() +
              " failed: " + pass.status().message());
          // (The held files are torn here: the attempt that adopts this directory takes the
          // destination's copies of them.)
          agent_detail::WriteUnsyncedMarker(unsynced, attempt, checkpoints->uri() + ": " + pass.status().message(),
                                            held);
          checkpoint_error = Status(pass.status().code(), "cannot upload the checkpoints to " + checkpoints->uri() +
                                                              ": " + pass.status().message() +
                                                              " (the worker keeps its local copy)");
        } else {
          fs::remove(unsynced, ec);
        }
      }
      if (intermediate) {  // the last pass: what the program wrote there up to its end
        auto pass = intermediate->Sync();
        if (!pass.ok()) {
          done->set_value(Status(pass.status().code(), "cannot upload output/intermediate to " + intermediate->uri() +
                                                           ": " + pass.status().message()));
          return;
        }
      }
      if (artifacts && runs_again) {
        Log("worker: " + what +
            (never_ran ? ": the container runtime could not start it" : was_evicted ? ": evicted" : ": interrupted") +
            ": no model uploaded (it runs again)");
      }
      ArtifactSpec final_spec = spec;
      final_spec.peers_ended = spec.primary && spec.Gang() && peers->load() == Run::kPeersEnded;
      Result<UploadedArtifacts> uploaded = artifacts && !runs_again
                                               ? UploadArtifacts(final_spec, [this] { return S3(); })
                                               : Result<UploadedArtifacts>(UploadedArtifacts{});
      if (uploaded.ok() && !checkpoint_error.ok()) uploaded = checkpoint_error;
      done->set_value(std::move(uploaded));
    } catch (...) {
      done->set_exception(std::current_exception());
    }
  };
}

namespace {

// What SageMaker gives a training container of AWS: its region (AWS_REGION, AWS_DEFAULT_REGION)
// and the role's credentials. Here: the worker's own (its credentials, profile and endpoints, as
// its S3 access uses them), so that a trainer calling boto3 or the aws CLI reaches the same S3 as
// its channels came from; it got none, and boto3 said "Unable to locate credentials". Callers
// add them under the spec's Environment, which wins (emplace); a region it names is taken for
// both variables (with AWS_REGION alone, AWS_DEFAULT_REGION said us-east-1, and boto3 went
// there; a contract pass). With EnableNetworkIsolation nothing is given, as SageMaker gives no
// credentials to an isolated container.
std::map<std::string, std::string> AwsEnvironment(const std::string& s3_endpoint,
                                                  const std::map<std::string, std::string>& spec_env) {
  std::map<std::string, std::string> env;
  for (const char* name : {"AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE",
                           "AWS_SHARED_CREDENTIALS_FILE", "AWS_CONFIG_FILE", "AWS_CA_BUNDLE", "AWS_ENDPOINT_URL",
                           "AWS_ENDPOINT_URL_S3", "AWS_REGION", "AWS_DEFAULT_REGION"}) {
    if (const char* v = std::getenv(name); v != nullptr && *v != '\0') env[name] = v;
  }
  if (!s3_endpoint.empty()) env["AWS_ENDPOINT_URL_S3"] = s3_endpoint;  // hpo worker --s3-endpoint
  // SageMaker always sets both; the worker's S3 access takes us-east-1 when it is told none.
  for (const char* name : {"AWS_REGION", "AWS_DEFAULT_REGION"}) {
    if (auto it = spec_env.find(name); it != spec_env.end() && !it->second.empty()) {
      env["AWS_REGION"] = env["AWS_DEFAULT_REGION"] = it->second;
      return env;
    }
  }
  const std::string region = env.count("AWS_REGION")           ? env["AWS_REGION"]
                             : env.count("AWS_DEFAULT_REGION") ? env["AWS_DEFAULT_REGION"]
                                                               : "us-east-1";
  env.emplace("AWS_REGION", region);
  env.emplace("AWS_DEFAULT_REGION", region);
  return env;
}

// Linux refuses to start a program one of whose environment strings (NAME=VALUE) passes
// MAX_ARG_STRLEN, 128 KiB ("Argument list too long"): SM_HPS and SM_USER_ARGS carry every
// hyperparameter, and SageMaker's limits (100 of 2,500 characters) go past it. Such a variable is
// left out, and said (`left`), rather than the training job failing unstarted as an AlgorithmError;
// hyperparameters.json has them all.
void DropOversizedVariables(std::map<std::string, std::string>& env, std::vector<std::string>* left) {
  constexpr size_t kMaxArgStrlen = 32 * 4096;
  for (auto it = env.begin(); it != env.end();) {
    if (it->first.size() + it->second.size() + 2 > kMaxArgStrlen) {
      left->push_back(it->first + " (" + std::to_string(it->second.size() / 1024) + " KiB)");
      it = env.erase(it);
    } else {
      ++it;
    }
  }
}

}  // namespace

bool WorkerAgent::Impl::StartProgram(const Key& key, Run& r, std::vector<BindMount> channel_mounts) {
  // The warm channels as the program finds them (KeepWarmData keeps only what it left unchanged).
  for (const auto& [channel_key, dir] : r.warm_channels) r.warm_prints[dir] = DirectoryFingerprint(dir);
  ProcessSpec ps;
  ps.log_path = r.attempt_dir + "/trial.log";
  std::vector<std::string> oversized;  // variables left out of its environment (DropOversizedVariables)
  if (r.container) {  // the runtime's client is the trial's process; the trial's environment goes in
    ContainerSpec cs;
    cs.image = r.pulled_id->empty() ? r.assign.image : *r.pulled_id;  // a source is run as what was pulled
    cs.name = r.container_name;
    cs.worker_id = ContainerOwner(opt.worker_id, opt.work_dir);
    cs.trial = key.first;
    cs.hostname = r.layout.current_host;
    cs.mounts = r.mounts;
    for (auto& m : channel_mounts) cs.mounts.push_back(std::move(m));
    cs.env = TrainingEnvironment(r.layout);
    // (Apptainer takes its environment on the command line, where every user's `ps` reads it:
    // there the credentials go by its own APPTAINERENV_ variables, below.)
    std::map<std::string, std::string> aws;
    if (!r.network_isolation) aws = AwsEnvironment(opt.s3_endpoint, cs.env);
    if (opt.container.runtime != "apptainer") {
      for (auto& [k, v] : aws) cs.env.emplace(k, v);
    }
    DropOversizedVariables(cs.env, &oversized);
    cs.gpus = r.layout.gpus;
    cs.network_none = r.network_isolation;
    if (opt.container.runtime != "apptainer") {
      const std::string file = r.attempt_dir + "/container.env";
      const int fd = ::open(file.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
      const std::string text = EnvFileText(cs.env).first;
      if (fd >= 0 && ::write(fd, text.data(), text.size()) == static_cast<ssize_t>(text.size())) cs.env_file = file;
      if (fd >= 0) ::close(fd);
      if (cs.env_file.empty()) {
        Log("worker: " + key.first + " attempt " + std::to_string(key.second) + ": cannot write " + file +
            "; the environment goes on the container runtime's command line");
      }
    }
    ps.argv = ContainerRunCommand(opt.container, cs);
    ps.env = CurrentEnvironment();
    if (opt.container.runtime == "apptainer") {
      for (auto& [k, v] : aws) {
        if (!cs.env.count(k)) ps.env["APPTAINERENV_" + k] = v;  // the spec's Environment wins
      }
    }
    ps.cwd = r.attempt_dir;
  } else {
    ps.argv = r.argv;
    ps.env = TrainingEnvironment(r.layout);
    if (!r.network_isolation) {
      for (auto& [k, v] : AwsEnvironment(opt.s3_endpoint, ps.env)) ps.env.emplace(k, v);
    }
    if (const char* path = std::getenv("PATH")) ps.env.emplace("PATH", path);
    if (const char* home = std::getenv("HOME")) ps.env.emplace("HOME", home);
    ps.env.emplace("LANG", "C.UTF-8");
    // A local program stands in for a framework image, which sets ENV PYTHONUNBUFFERED=1: a
    // Python trainer's print()s reached the log in 4 KiB blocks, after the epochs they measured,
    // and early stopping, Hyperband and `hpo logs -f` saw nothing until the end. The spec's
    // Environment wins.
    ps.env.emplace("PYTHONUNBUFFERED", "1");
    DropOversizedVariables(ps.env, &oversized);
    // What this worker's successor on the work directory kills, if it dies without warning
    // (worker/orphans.h KillLeftoversOf): the program and everything it starts inherit it.
    ps.env[kOwnerVariable] = owner_tag;
    ps.env[kAttemptVariable] = std::to_string(key.second);  // the orphan sweep spares only this attempt's
    ps.cwd = r.namespaces ? "/opt/ml" : r.root;
    ps.isolation.mount_namespace = r.namespaces;
    ps.isolation.mounts = r.mounts;
    for (auto& m : channel_mounts) ps.isolation.mounts.push_back(std::move(m));
    ps.isolation.network_namespace = r.network_isolation;
    if (r.namespaces) {
      // Written by the program's start, before it runs: found by the guard or the next worker if
      // this one is killed at any moment after (worker/orphans.h PlanNamespaceMark).
      if (Result<NamespaceMarkPlan> mark = PlanNamespaceMark(owner_tag, r.root, "/opt/ml"); mark.ok()) {
        ps.isolation.namespace_record_dir = std::move(mark->dir);
        ps.isolation.namespace_record = std::move(mark->text);
      } else {
        Log("worker: " + key.first + " attempt " + std::to_string(key.second) + ": " + mark.status().message() +
            "; a process it leaves with a cleared environment may outlive this worker if it is killed");
      }
    }
  }
  if (!oversized.empty()) {
    std::string names;
    for (const auto& n : oversized) names += (names.empty() ? "" : ", ") + n;
    const std::string note = "hpo: left out of the program's environment, past Linux's 128 KiB for one variable: " +
                             names + "; /opt/ml/input/config/hyperparameters.json has every hyperparameter";
    Log("worker: " + key.first + " attempt " + std::to_string(key.second) + ": " + note);
    std::lock_guard<std::mutex> lock(r.mu);
    r.log.Add(note);
  }
  if (!StartPipes(key, r)) return false;
  Run* raw = &r;
  auto proc = TrialProcess::Start(ps, [raw, this](auto /*stream*/, const auto& line) {
    std::vector<MetricHit> hits = raw->parser->Parse(line);
    const auto skips = raw->parser->TakeFirstSkips();
    int64_t now = Now();
    std::lock_guard<std::mutex> lock(raw->mu);
    // Its last words, for a failure reason (a container runtime's error, a traceback's last line).
    if (line.find_first_not_of(" \t\r") != std::string::npos) raw->last_line.assign(line, 0, 512);
    // As the coordinator keeps it, cut here, where the whole line's length is known.
    raw->log.Add(proto::wire::StoredLogLine(line));
    for (const auto& [metric, text] : skips) {  // once per metric: why a matching line gave no value
      raw->log.Add(proto::wire::SanitizeText(
          "hpo: metric " + metric + ": its regex matched \"" + text +
              "\", which is not a finite number: it gives no value, and \"nan\" or \"inf\" as the last value "
              "leaves the metric no final value (this note is shown once)",
          16384));
    }
    // A run that diverged: its final value is not the last finite one (a NaN model could be the
    // best); NaN in final_metrics says so to the coordinator.
    for (const auto& name : raw->parser->NonFinite()) raw->last_values[name] = std::nan("");
    for (const auto& h : hits) {
      raw->points.push_back({h.name, h.value, now, h.step});
      raw->last_values[h.name] = h.value;
    }
  }, ProcessOptions{.on_exit = UploadOnExit(r)});
  if (!proc.ok()) {
    proto::wire::TrialExited x;
    // What this worker lacks (the program, its interpreter) or could not do is its fault: the
    // coordinator runs the attempt elsewhere. A program the kernel refuses is the program's.
    const StatusCode code = proc.status().code();
    const bool infra = code == StatusCode::kFailedPrecondition || code == StatusCode::kInternal ||
                       code == StatusCode::kIoError || code == StatusCode::kNotFound;
    x.status = infra ? "InfraError" : "Failed";
    x.secondary_status = "Failed";
    x.failure_reason = proto::wire::SanitizeText(
        infra ? proto::wire::CannotStartReason(opt.worker_id, proc.status().message())
              : "AlgorithmError: " + proc.status().message(),
        1024);
    Log("worker: " + key.first + " attempt " + std::to_string(key.second) + " cannot start: " + proc.status().message());
    Exited(key, std::move(x));
    return false;
  }
  r.process = std::move(proc).value();
  r.oom_kills_at_start = agent_detail::OomKills();
  if (const std::string& why = r.process->namespace_record_error(); !why.empty()) {
    Log("worker: " + key.first + " attempt " + std::to_string(key.second) + ": " + why +
        "; a process it leaves with a cleared environment may outlive this worker if it is killed");
  }
  if (r.volume_limit && opt.volume_check_ms > 0) {
    r.volume = std::make_unique<VolumeWatch>(*r.volume_limit, std::chrono::milliseconds(opt.volume_check_ms));
  }
  if (r.upload.valid()) {  // a local destination directory is made while the program runs
    (void)background.Post([spec = ArtifactsOf(r)] { PrepareArtifactDirectory(spec); });
  }
  Log("worker: started " + key.first + " attempt " + std::to_string(key.second) +
      (r.container ? " (" + opt.container.runtime + " container " + r.container_name + ", image " + r.assign.image +
                         (r.pulled_id->empty() ? "" : " as pulled, " + r.pulled_id->substr(0, 12)) + ")"
       : r.namespaces ? " (/opt/ml in a private mount namespace)"
                      : ""));
  proto::wire::TrialStarted s;
  s.trial = key.first;
  s.attempt = key.second;
  s.worker_id = opt.worker_id;
  s.started_at_ms = Now();
  r.started_unix_ms = s.started_at_ms;
  SendReliable(s, proto::wire::MsgType::kTrialStarted, key, 0);
  return true;
}

}  // namespace hpo::worker
