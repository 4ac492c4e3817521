// worker/agent_assign.cc: WorkerAgent::Impl, taking an assignment: the trial's tree, staging, hosts file, warm data (worker/agent_impl.h).
#include "worker/agent_impl.h"
#include "common/file_util.h"

#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <string_view>

namespace hpo::worker {

namespace {

// `command` as its words when it is a plain command (a program and its arguments, separated by
// spaces), nullopt when it uses shell syntax (quotes, variables, pipes, redirections, ...).
std::optional<std::vector<std::string>> PlainWords(const std::string& command) {
  static constexpr std::string_view kShell = "|&;<>()$`\\\"'*?[]#~%{}!=";
  if (command.find_first_of(kShell) != std::string::npos) return std::nullopt;
  std::vector<std::string> words;
  std::string word;
  for (char c : command) {
    if (c == ' ' || c == '\t') {
      if (!word.empty()) words.push_back(std::move(word));
      word.clear();
    } else {
      word += c;
    }
  }
  if (!word.empty()) words.push_back(std::move(word));
  if (words.empty()) return std::nullopt;
  return words;
}

// Whether the local directory `dir` can be made and written, from its nearest existing ancestor:
// InvalidArgument when that is not a directory (the spec's path runs through a file), IoError when
// the worker may not write there. Nothing is created.
Status LocalOutputUsable(const fs::path& dir) {
  HPO_RETURN_IF_ERROR(NoFileInTheWay(dir.string()));
  const std::string at = NearestExisting(dir.string());
  if (!at.empty() && ::access(at.c_str(), W_OK | X_OK) != 0) {
    return Status::IoError(at + " is not writable by the worker (uid " + std::to_string(::geteuid()) + "), and " +
                           dir.string() + " is made under it: " + std::strerror(errno));
  }
  return Status::Ok();
}

}  // namespace

Result<std::vector<std::string>> WorkerAgent::Impl::Program(const std::string& image) {
  std::string path;
  if (image.rfind("file://", 0) == 0) {
    path = image.substr(7);
  } else if (!image.empty() && image[0] == '/') {
    path = image;
  } else {
    auto it = opt.images.find(image);
    if (it != opt.images.end()) {
      // A plain command runs as it is: /bin/sh (dash) would drop the variables whose names are
      // not shell names, SM_HP_BATCH-SIZE among them. Shell syntax needs the shell.
      if (auto words = PlainWords(it->second)) {
        words->push_back("train");
        return *words;
      }
      return std::vector<std::string>{"/bin/sh", "-c", it->second + " train", "hpo-trainer"};
    }
    if (opt.container.enabled() && !image.empty()) return std::vector<std::string>{};
    return Status::NotFound("cannot run \"" + image + "\": this image is not known here; give an absolute path or "
                            "file:// URI of an executable, map the image to a program with --image NAME=COMMAND (of hpo "
                            "worker or hpo run), or give the worker a container runtime (--container-runtime "
                            "podman|docker|apptainer; " +
                            (opt.container.turned_off ? std::string("it was turned off with --container-runtime none")
                                                      : std::string("none was found in its PATH")) +
                            ")");
  }
  HPO_RETURN_IF_ERROR(CheckExecutable(path, path));
  return std::vector<std::string>{path, "train"};
}

bool WorkerAgent::Impl::Exited(const Key& key, proto::wire::TrialExited x) {
  x.trial = key.first;
  x.attempt = key.second;
  if (x.ended_at_ms == 0) x.ended_at_ms = Now();  // a resumed report has its program's end
  return SendReliable(x, proto::wire::MsgType::kTrialExited, key, x.seq);
}

const std::optional<proto::TrainingJobDefinition>& WorkerAgent::Impl::Definition(const proto::wire::AssignTrial& a) {
  if (definition_json.empty() || a.spec_json != definition_json) {
    definition = DefinitionOf(a);
    definition_json = a.spec_json;
  }
  return definition;
}

Result<std::unique_ptr<CheckpointSync>> WorkerAgent::Impl::IntermediateSync(const ArtifactSpec& spec,
                                                                           const std::string& root) {
  return CheckpointSync::Create(IntermediateUri(spec), (fs::path(root) / "output" / "intermediate").string(),
                                [this] { return S3(); },
                                {.mirror_deletes = false, .what = "OutputDataConfig.S3OutputPath"});
}

void WorkerAgent::Impl::Assign(const proto::wire::AssignTrial& a) {
  Key key{a.trial, a.attempt};
  // A re-sent assignment (the coordinator sends unstarted ones again when this worker
  // reconnects) of an attempt we run, or that has ended and whose exit is not acknowledged yet.
  if (HeldAttempts().count(key)) return;
  if (notice) {  // this capacity is going away: the training job runs elsewhere, no retry spent
    proto::wire::TrialExited x;
    x.status = "Interrupted";
    x.secondary_status = "Interrupted";
    x.failure_reason = proto::wire::SanitizeText("worker " + opt.worker_id + " is being reclaimed (" + notice->reason +
                                                     "): it takes no training job",
                                                 1024);
    Log("worker: " + a.trial + " attempt " + std::to_string(a.attempt) + " refused: " + x.failure_reason);
    Exited(key, std::move(x));
    return;
  }
  auto run = std::make_unique<Run>();
  run->assign = a;
  const fs::path trial_dir = fs::path(opt.work_dir) / "trials" / a.trial;
  // The training job's checkpoint directory on this worker, kept across its attempts here: one
  // per host of a multi-host job (a retry numbers its hosts anew, and algo-1 found algo-2's
  // files in the directory it was given), `checkpoints` for algo-1 and single-host jobs.
  const fs::path checkpoint_dir =
      trial_dir / (a.hosts.size() > 1 && !a.current_host.empty() && a.current_host != "algo-1"
                       ? "checkpoints-" + a.current_host
                       : std::string("checkpoints"));
  run->attempt_dir = AttemptDir(a.trial, a.attempt);
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
  // A program missing on this worker (or an image it does not map) may be on another: the
  // coordinator tries those, as for a program that cannot start (StartProgram), before it calls
  // the training job's program missing.
  auto program = Program(a.image);
  if (program.ok() && program->empty()) {  // for a container: an algorithm resource is no image
    const std::optional<proto::TrainingJobDefinition>& d = Definition(a);
    const auto* alg = d && d->algorithm_specification ? &*d->algorithm_specification : nullptr;
    if (alg && !alg->training_image && alg->algorithm_name.value_or("") == a.image) {
      program = Status::NotFound("cannot run \"" + a.image +
                                 "\": AlgorithmName names a SageMaker algorithm resource, whose image hpo cannot look "
                                 "up; map it to a program on the workers (--image " + a.image +
                                 "=COMMAND, of hpo worker or hpo run), or give the definition the algorithm's image "
                                 "as TrainingImage");
    }
  }
  if (!program.ok()) return fail("InfraError", proto::wire::CannotStartReason(opt.worker_id, program.status().message()));
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
  if (run->container) run->container_name = ContainerName(ContainerOwner(opt.worker_id, opt.work_dir), a.trial, a.attempt);
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
      // ShardedByS3Key splits the objects over the hosts that receive the channel, not over
      // every host of the job: an object given to a host outside the listed groups would be lost.
      if (s3src && !s3src->instance_group_names.empty()) {
        const auto& names = s3src->instance_group_names;
        for (const auto& g : a.instance_groups) {
          if (std::find(names.begin(), names.end(), g.name) == names.end()) continue;
          src.hosts.insert(src.hosts.end(), g.hosts.begin(), g.hosts.end());
        }
      }
    }
    if (dc && dc->shuffle_config && dc->shuffle_config->seed) src.shuffle_seed = *dc->shuffle_config->seed;
    src.compression = lc.compression;  // StageChannel refuses Gzip outside Pipe mode
    src.record_wrapper = lc.record_wrapper;
    sources.push_back(std::move(src));
  }
  if (def && def->resource_config && def->resource_config->volume_size_in_gb.value_or(0) > 0) {
    VolumeLimit v;  // FastFile and file-system channels are not on a SageMaker volume
    v.dirs = {run->root, checkpoint_dir.string()};
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
  // A trial without a network has only lo; a container on its own network, the runtime's eth0.
  ls.network_interface = run->network_isolation                                ? "lo"
                         : run->container && opt.container.network != "host" ? "eth0"
                                                                              : network_interface;
  ls.instance_type = !a.instance_type.empty() ? a.instance_type
                     : opt.instance_type.empty() ? "local"
                                                 : opt.instance_type;
  if (!a.instance_groups.empty()) {
    for (const auto& g : a.instance_groups) ls.instance_groups.push_back({g.name, g.instance_type, g.hosts});
    ls.current_group = a.instance_group;
  } else {
    // A job without InstanceGroups runs in SageMaker's "homogeneousCluster", whatever group
    // this worker is labelled with for placement (--instance-group).
    ls.current_group = !a.instance_group.empty() ? a.instance_group : "homogeneousCluster";
    ls.instance_groups.push_back({ls.current_group, ls.instance_type, ls.hosts});
  }
  ls.num_cpus = static_cast<int>(std::max<uint32_t>(1, DetectCpus() / std::max<uint32_t>(1, opt.slots)));
  for (uint32_t g : a.gpus) ls.gpus.push_back(static_cast<int>(g));
  ls.environment = a.environment;
  ls.training_input_mode = a.input_mode.empty() ? "File" : a.input_mode;
  if (!a.checkpoint_uri.empty()) {  // checkpointconfig.json names the directory as the program sees it
    ls.checkpoint_uri = a.checkpoint_uri;
    std::string local = a.checkpoint_local_path.empty() ? "/opt/ml/checkpoints" : a.checkpoint_local_path;
    while (local.size() > 1 && local.back() == '/') local.pop_back();
    if (!run->namespaces && local.rfind("/opt/ml/", 0) == 0) local = (fs::path(run->root) / local.substr(8)).string();
    ls.checkpoint_local_path = local;  // one PrepareCheckpoints refuses fails the trial before it runs
  }

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
  run->checkpoint_dir = checkpoint_dir.string();
  Status cp = PrepareCheckpoints(*run, checkpoint_dir);
  if (!cp.ok()) return fail(IsClientError(cp) ? "Failed" : "InfraError", cp.message());
  if (def && def->resource_config && def->resource_config->keep_alive_period_in_seconds.value_or(0) > 0) {
    run->keep_alive_ms = *def->resource_config->keep_alive_period_in_seconds * 1000;
    for (auto src = sources.begin(); src != sources.end();) {
      if (src->input_mode != "File" || !src->directory_path.empty()) {  // a file system is mounted, not kept
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
  // algo-N must resolve inside the trial for single-host jobs too: the training toolkit's entry
  // point looks up every host of resourceconfig.json before it runs the script, and retries for
  // 15 minutes when one does not resolve.
  Status named = HostsFile(*run, a);
  if (!named.ok()) return fail("InfraError", named.message());
  if (ls.hosts.size() > 1) {
    PlanPreflight(*run, a);
  }
  // A local destination (file:// or a path) is checked before the program starts: a path through a
  // file was found only at the upload, after the training, as an infrastructure error, and every
  // retry trained again. Only a path that cannot be a directory is the job's own mistake (a
  // ClientError); one the worker may not write is this worker's (an InfraError).
  auto local_destination = [this](const std::string& uri) -> Status {
    if (uri.rfind("s3://", 0) == 0) return Status::Ok();
    auto loc = OpenObjectLocation(uri, [this] { return S3(); });
    const std::string local = loc.ok() ? loc->store->LocalPath(loc->Key("")) : std::string();
    return local.empty() ? Status::Ok() : LocalOutputUsable(local);
  };
  if (!a.checkpoint_uri.empty()) {
    // At the first attempt only, and not its writability: a destination broken for a while is
    // resumed past from the worker's own copy (worker/checkpoints.h), which a refusal would end.
    // One through a file from the start is the job's mistake: a spot pass's every worker failed
    // to restore from it, in turn, as an infrastructure error, and rested.
    if (Status usable = a.attempt == 1 ? local_destination(a.checkpoint_uri) : Status::Ok();
        !usable.ok() && IsClientError(usable)) {
      return fail("Failed", "ClientError: CheckpointConfig.S3Uri " + a.checkpoint_uri + " cannot be used: " +
                                usable.message() + "; checked before training, so no work is lost");
    }
    CheckpointSyncOptions settling;
    settling.settle_ns = opt.checkpoint_settle_ms * 1'000'000;
    auto sync = CheckpointSync::Create(a.checkpoint_uri, checkpoint_dir.string(), [this] { return S3(); }, settling);
    if (!sync.ok()) return fail("Failed", "ClientError: " + sync.status().message());
    run->checkpoints = std::move(sync).value();
  }
  if (!a.output_path.empty()) {  // output/intermediate goes up while the program runs, as on SageMaker
    auto sync = IntermediateSync(ArtifactsOf(*run), run->root);
    if (!sync.ok()) return fail("Failed", "ClientError: " + sync.status().message());
    run->intermediate = std::move(sync).value();
    run->last_intermediate_pass_ms = Now();
    // A local S3OutputPath (as one in S3 is probed, below), also for writability.
    if (Status usable = local_destination(a.output_path); !usable.ok()) {
      const bool client = IsClientError(usable);
      return fail(client ? "Failed" : "InfraError", std::string(client ? "ClientError: " : "") +
                                                        "OutputDataConfig.S3OutputPath " + a.output_path +
                                                        " cannot be used: " + usable.message() +
                                                        "; checked before training, so no work is lost");
    }
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
  // Script mode (a framework estimator of the SageMaker SDK): its code in S3, at the hyperparameter
  // sagemaker_submit_directory (JSON-encoded, as the SDK sends it). A framework container's training
  // toolkit downloads it itself; a local program cannot reach S3 with the worker's endpoint and
  // credentials, so the worker puts it at /opt/ml/code/sourcedir.tar.gz for it
  // (examples/trainers/script_mode.py unpacks it there).
  std::string code_uri = proto::SubmitDirectory(a.hyperparameters);
  if (code_uri.rfind("s3://", 0) != 0) code_uri.clear();
  // An S3OutputPath in S3 is probed before the program starts, as the checkpoints' bucket is: a
  // missing bucket was found only when the trained model was uploaded, and the model was lost.
  const std::string output_probe =
      r.intermediate && r.intermediate->uri().rfind("s3://", 0) == 0 ? r.intermediate->uri() : std::string();
  if (sources.empty() && code_uri.empty() && !r.checkpoints && r.preflight.empty() && !prepare_container &&
      output_probe.empty()) {  // nothing to stage: the program starts now (or when its slot frees)
    if (r.queued) {
      spares->Refill();
      return;
    }
    PublishRuns();  // it runs here before its program does (worker/orphans.h)
    // Not started now after a pause (the coordinator first says it is still ours), nor once the
    // signal that stops this worker has come (PollTrials holds it, and the stop hands it back as
    // not started): a scancel's worker started an assignment 5 ms after its own interruption
    // report, and the attempt came back Interrupted at once.
    if (!LeaseFresh() || Signalled()) {
      r.awaits_lease = true;
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
  // What is fetched before the program starts, for people (SageMaker's secondary status
  // Downloading): the coordinator shows it until TrialStarted.
  if (registered && (!sources.empty() || r.checkpoints || !code_uri.empty())) {
    std::string fetched;
    auto add = [&](const std::string& part) { fetched += (fetched.empty() ? "" : "; ") + part; };
    if (!sources.empty()) {
      std::string names;
      for (const auto& src : sources) names += (names.empty() ? "" : ", ") + src.name;
      add((sources.size() == 1 ? "channel " : "channels ") + names);
    }
    if (r.checkpoints) add("checkpoints from " + r.checkpoints->uri());
    if (!code_uri.empty()) add("training code from " + code_uri);
    SendStaging(key, proto::wire::kDownloading, fetched);
  }
  // Staging may take long: it runs on a pool thread, the program starts once it is done.
  StagingContext base;
  base.mount_namespace = r.namespaces;
  base.hosts = ls.hosts;
  base.current_host = ls.current_host;
  base.s3 = [this] { return S3(); };
  base.cache = channel_cache.get();
  base.cancel = r.staging_cancel;
  const std::string root = r.root;
  const std::string visible = r.namespaces ? "/opt/ml" : r.root;
  const std::string what = a.trial + " attempt " + std::to_string(a.attempt);
  r.staging = tasks.Post([this, sources = std::move(sources), base, root, visible, checkpoints = r.checkpoints,
                          what, attempt = a.attempt, preflight = r.preflight, note = r.preflight_note, host = ls.current_host,
                          image = prepare_container ? a.image : std::string(), pipe_feeds = r.pipe_feeds,
                          attempt_dir = r.attempt_dir, code_uri, pulling = r.pulling,
                          pulled_id = r.pulled_id, cancel = r.staging_cancel,
                          output_probe]() -> Result<std::vector<BindMount>> {
    struct WakeOnReturn {
      const Impl* impl;
      ~WakeOnReturn() { impl->Wake(); }
    } wake{this};
    if (!image.empty()) {  // a container trial: stale containers gone, its image here when pulls are off
      SweepStaleContainers();
      if (!ImageKnownPresent(image) && !PullsBeforeStart(opt.container)) {
        Status present = CheckImage(opt.container, image);
        if (!present.ok()) return present;
        std::lock_guard<std::mutex> lock(images_mu);
        images_present.insert(image);
      }
    }
    if (!output_probe.empty()) {
      auto loc = OpenObjectLocation(output_probe, base.s3);
      Status can = loc.ok() ? loc->store->List(loc->Key("")).status() : loc.status();
      if (!can.ok()) {
        return Status(can.code(), "OutputDataConfig.S3OutputPath cannot be used (" + can.message() + ")" +
                                      (can.code() == StatusCode::kNotFound
                                           ? ": create its bucket, or give an S3OutputPath in one that exists"
                                           : "") +
                                      "; checked before training, so no work is lost");
      }
    }
    // An earlier attempt here whose last checkpoint upload failed left the newest checkpoints in
    // this directory (agent_detail::kUnsyncedMarker): they are uploaded and resumed from, not
    // replaced by the older ones at the destination.
    std::error_code mec;
    const fs::path unsynced =
        checkpoints ? fs::path(checkpoints->local_dir() + agent_detail::kUnsyncedMarker) : fs::path();
    // A checkpoint directory the program replaced with a link holds nothing to trust: the
    // marker goes and the restore below puts a directory back (the retry failed again and again).
    if (checkpoints && fs::exists(unsynced, mec) && !IsRealDirectory(checkpoints->local_dir())) fs::remove(unsynced, mec);
    if (checkpoints && fs::exists(unsynced, mec)) {
      const std::optional<uint32_t> failed = agent_detail::UnsyncedMarkerAttempt(unsynced);
      if (failed && attempt > *failed + 1) {
        fs::remove(unsynced, mec);
        Log("worker: " + what + ": this worker's checkpoint directory is attempt " + std::to_string(*failed) +
            "'s, whose last upload failed; attempts placed elsewhere since may have uploaded newer checkpoints to " +
            checkpoints->uri() + ", so they are restored instead");
      }
    }
    if (checkpoints && fs::exists(unsynced, mec)) {
      auto up = checkpoints->Adopt(agent_detail::UnsyncedMarkerHeld(unsynced.string()));
      if (up.ok()) {
        fs::remove(unsynced, mec);
        Log("worker: " + what + ": resumes from this worker's checkpoint directory, newer than " + checkpoints->uri() +
            " (an earlier attempt's last upload failed); uploaded it now (" + std::to_string(up->files) + " file(s), " +
            std::to_string(up->bytes) + " bytes)");
      } else {
        Log("worker: " + what + ": resumes from this worker's checkpoint directory, newer than " + checkpoints->uri() +
            " (an earlier attempt's last upload failed, and uploading it failed again: " + up.status().message() +
            "); this attempt's passes upload it");
      }
    } else if (checkpoints) {  // the previous attempts' checkpoints, wherever they ran
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
    if (!code_uri.empty()) {
      auto loc = OpenObjectLocation(code_uri, base.s3);
      const fs::path archive = fs::path(root) / "code" / "sourcedir.tar.gz";
      std::error_code ec;
      fs::create_directories(archive.parent_path(), ec);
      Status got = loc.ok() ? loc->store->GetToFile(loc->prefix, archive.string()) : loc.status();
      if (!got.ok()) {
        return Status(got.code(), "cannot download the training code (sagemaker_submit_directory " + code_uri +
                                      "): " + got.message());
      }
      Log("worker: " + what + ": training code from " + code_uri + " at /opt/ml/code/sourcedir.tar.gz");
    }
    std::vector<BindMount> mounts;
    for (const auto& src : sources) {
      if (cancel->load()) return Status::Unavailable("staging cancelled");
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
      if (!staged->note.empty()) Log("worker: " + what + ": channel " + src.name + ": " + staged->note);
      for (auto& m : staged->mounts) mounts.push_back(std::move(m));
      if (staged->pipe) pipe_feeds->push_back(std::move(*staged->pipe));
    }
    // Then the image, as SageMaker downloads it after the data (DownloadingTrainingImage): pulled
    // here, before the program starts, so its download is not training time.
    if (cancel->load()) return Status::Unavailable("staging cancelled");
    if (!image.empty() && PullsBeforeStart(opt.container) && !ImageKnownPresent(image)) {
      bool pull = opt.container.pull == "always";
      if (!pull) {
        auto present = ImagePresent(opt.container, image);
        if (!present.ok()) return present.status();
        pull = !*present;
      }
      if (pull) {
        pulling->store(true);
        Wake();  // the loop tells the coordinator
        const auto t0 = std::chrono::steady_clock::now();
        Log("worker: " + what + ": pulling trainingImage " + image);
        auto pulled = PullImage(opt.container, image, pull_timeout, cancel.get());
        if (!pulled.ok()) return pulled.status();
        const auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - t0);
        Log("worker: " + what + ": pulled trainingImage " + image + (pulled->empty() ? "" : " (" + *pulled + ")") +
            " in " + std::to_string(ms.count()) + " ms");
        if (IsImageSource(image)) *pulled_id = *pulled;  // run what was pulled, not the source again
      }
      std::lock_guard<std::mutex> lock(images_mu);  // ImageKnownPresent decides whether it counts
      images_present.insert(image);
    }
    if (!preflight.empty()) {  // every host's data is in place: the gang checks NCCL together
      Status checked = RunPreflight(preflight, host, note.get());
      if (!checked.ok()) return checked;
    }
    return mounts;
  });
}

Status WorkerAgent::Impl::HostsFile(Run& r, const proto::wire::AssignTrial& a) {
  const std::vector<std::string>& hosts = r.layout.hosts;
  if (!r.namespaces) {
    // Nothing to mount the names on. The training toolkit would wait 15 minutes for them
    // (sagemaker_training.entry_point._wait_hostname_resolution) unless SM_STUDIO_LOCAL_MODE is
    // true, which skips only that wait; the definition's own value wins.
    r.layout.environment.emplace("SM_STUDIO_LOCAL_MODE", "true");
    if (hosts.size() > 1) {
      Log("worker: " + a.trial + ": host names algo-N do not resolve inside the trial without a mount namespace "
          "(run the worker as root); they are in resourceconfig.json and SM_HOSTS");
    }
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
  for (const auto& host : hosts) {
    auto it = a.host_addresses.find(host);
    if (it == a.host_addresses.end()) {
      // A host without a worker address is this one (a single-host trial): a loopback address,
      // which needs no lookup and works under network isolation too; the worker's own where it
      // registered one (hpo run's local workers are 127.0.0.N: programs on different local
      // workers that bind algo-1 and a fixed port do not collide).
      if (host == r.layout.current_host) text += (opt.host.rfind("127.", 0) == 0 ? opt.host : "127.0.0.1") + " " + host + "\n";
      continue;
    }
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

std::string WorkerAgent::Impl::ChannelKey(const ChannelSource& s, const std::vector<std::string>& hosts,
    const std::string& current_host) {
  std::string k = s.name + '\x1f' + s.input_mode + '\x1f' + s.directory_path + '\x1f' + s.access_mode + '\x1f' +
                  s.uri + '\x1f' + s.s3_data_type + '\x1f' + s.distribution + '\x1f' +
                  (s.shuffle_seed ? std::to_string(*s.shuffle_seed) : "-") + '\x1f' + current_host;
  for (const auto& a : s.attribute_names) k += '\x1e' + a;
  for (const auto& h : hosts) k += '\x1d' + h;
  for (const auto& h : s.hosts) k += '\x1c' + h;
  return k;
}

bool WorkerAgent::Impl::TakeWarmData(const proto::wire::AssignTrial& a, const std::string& key, const std::string& dir) {
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

uint64_t WorkerAgent::Impl::DirectoryFingerprint(const std::string& dir) {
  std::vector<std::string> entries;
  std::error_code ec;
  for (fs::recursive_directory_iterator it(dir, ec), end; !ec && it != end; it.increment(ec)) {
    struct stat st {};
    if (::lstat(it->path().c_str(), &st) != 0) return 0;
    const std::string rel = it->path().lexically_relative(dir).string();
    entries.push_back(rel + '\0' + std::to_string(st.st_mode) + ' ' + std::to_string(st.st_size) + ' ' +
                      std::to_string(st.st_ino) + ' ' + std::to_string(st.st_mtim.tv_sec) + '.' +
                      std::to_string(st.st_mtim.tv_nsec));
  }
  if (ec) return 0;
  std::sort(entries.begin(), entries.end());
  uint64_t h = 1469598103934665603ull;  // FNV-1a
  for (const auto& e : entries) {
    for (unsigned char c : e) h = (h ^ c) * 1099511628211ull;
    h = (h ^ 0xff) * 1099511628211ull;
  }
  return h == 0 ? 1 : h;
}

void WorkerAgent::Impl::KeepWarmData(const Run& r) {
  if (r.keep_alive_ms <= 0) return;
  for (const auto& [key, dir] : r.warm_channels) {
    std::error_code ec;
    if (!fs::is_directory(dir, ec)) continue;
    const auto print = r.warm_prints.find(dir);
    if (print == r.warm_prints.end()) continue;  // the program never started: maybe half staged
    if (DirectoryFingerprint(dir) != print->second) {
      Log("worker: " + r.assign.trial + " attempt " + std::to_string(r.assign.attempt) + ": channel " +
          fs::path(dir).filename().string() +
          ": the training job changed its data, so the next one stages it afresh (keep-alive)");
      continue;
    }
    const fs::path kept = fs::path(opt.work_dir) / "warm" / (agent_tag + "-" + std::to_string(++warm_seq));
    fs::create_directories(kept.parent_path(), ec);
    fs::rename(dir, kept, ec);
    if (ec) continue;
    warm_data.push_back({r.assign.tuning_job, r.assign.definition_name, key, kept.string(), Now() + r.keep_alive_ms});
  }
}

void WorkerAgent::Impl::ExpireWarmData(bool all) {
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

}  // namespace hpo::worker
