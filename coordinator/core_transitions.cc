// coordinator/core_transitions.cc: CoordinatorCore::Impl, a trial's transitions (slots, retries, queueing), job failure and completion (coordinator/core_impl.h).
#include "coordinator/core_impl.h"

#include <spdlog/spdlog.h>

#include "proto/codec.h"

namespace hpo::coordinator {

using core_detail::kFailuresBeforeGivingUp;
using core_detail::kGaveUp;
using core_detail::kRuntimeQuota;
using core_detail::Lower;
using core_detail::Truncate;
using proto::StringMap;

namespace {

// " is draining (...)", " is cordoned (...; hpo workers uncordon ID)" or " rests (...)": why
// worker `id` takes no new training job, in the order WorkerInfo::Closed picks.
std::string ClosedPhrase(const std::string& id, const WorkerInfo& w) {
  if (!w.draining.empty()) return " is draining (" + w.draining + ")";
  if (!w.cordoned.empty()) return " is cordoned (" + w.cordoned + "; hpo workers uncordon " + id + ")";
  return " rests (" + w.resting + ")";
}

}  // namespace

void CoordinatorCore::Impl::Secondary(Trial& t, const std::string& status, int64_t now, const std::string& msg) {
  if (!t.secondary.empty() && t.secondary.back().status == status) return;
  t.secondary.push_back({status, now, msg});
}

void CoordinatorCore::Impl::EndTrainingTime(Trial& t, int64_t until) {
  if (t.started && t.attempt_start_ms > 0 && until > t.attempt_start_ms) {
    t.training_ms += until - t.attempt_start_ms;
    if (t.on_spot) t.spot_training_ms += until - t.attempt_start_ms;
  }
  t.attempt_start_ms = 0;
}

void CoordinatorCore::Impl::ReleaseSlot(Trial& t, int64_t now) {
  const auto key = std::make_pair(t.name, t.attempt);
  EndTrainingTime(t, now);
  t.worker_started_ms = 0;
  t.worker_started_on.clear();
  t.unstarted_assign.reset();  // nothing to send again: one kept for every attempt that ended unstarted added up
  // A gang's hosts that have not reported their exit keep their slots and GPUs (`lingering`).
  std::set<std::string> linger;
  for (const auto& h : t.gang) {
    if (h.exit.empty() && workers.count(h.worker_id)) linger.insert(h.worker_id);
  }
  for (const auto& h : t.gang) {  // a gang's other hosts (algo-1's GPUs are in attempt_gpus)
    if (linger.count(h.worker_id)) {
      lingering[key][h.worker_id] = h.gpus;
      continue;
    }
    auto hw = workers.find(h.worker_id);
    if (hw != workers.end()) hw->second.running.erase(key);
    if (h.worker_id == t.worker_id) continue;
    for (uint32_t idx : h.gpus) worker_gpus_used[h.worker_id].erase(idx);
  }
  t.gang.clear();
  const bool algo1_lingers = linger.count(t.worker_id) > 0;
  auto w = workers.find(t.worker_id);
  if (w != workers.end()) {
    if (!algo1_lingers) w->second.running.erase(key);
    w->second.queued.erase(key);
    w->second.ending.erase(key);
  }
  if (t.Queued()) {
    successor.erase({t.after_trial, t.after_attempt});
    t.after_trial.clear();
    t.after_attempt = 0;
  }
  auto g = attempt_gpus.find(key);
  if (g != attempt_gpus.end()) {
    const std::vector<uint32_t> gone = std::move(g->second);
    attempt_gpus.erase(g);
    for (uint32_t idx : gone) {
      if (!algo1_lingers && !GpuHeld(t.worker_id, idx)) worker_gpus_used[t.worker_id].erase(idx);
    }
  }
  auto next = successor.find(key);
  if (next != successor.end()) {
    auto q = trials.find(next->second);
    successor.erase(next);
    if (q != trials.end()) Promote(q->second, now);
  }
}

void CoordinatorCore::Impl::KeepWarm(const Trial& t, const std::vector<std::string>& hosts, int64_t now) {
  const TuningJob* j = Job(t.tuning_job);
  if (!j || j->status != "InProgress" || !j->completion_reason.empty()) return;
  const auto* d = Definition(*j, t.definition_name);
  if (!d || !d->resource_config || d->resource_config->keep_alive_period_in_seconds.value_or(0) <= 0) return;
  const int64_t until = now + *d->resource_config->keep_alive_period_in_seconds * 1000;
  for (const auto& wid : hosts) {
    auto w = workers.find(wid);
    // Not a worker held for another job's gang: its slot would sit idle, usable by neither.
    auto held = held_for.find(wid);
    if (held != held_for.end() && held->second.job != Lower(j->name)) continue;
    if (w != workers.end() && w->second.Closed().empty()) {
      w->second.warm.push_back({Lower(j->name), t.definition_name, until});
    }
  }
}

void CoordinatorCore::Impl::TakeWarm(WorkerInfo& w, const TuningJob& j, const std::string& definition) {
  const std::string key = Lower(j.name);
  auto it = std::find_if(w.warm.begin(), w.warm.end(),
                         [&](const WorkerInfo::Warm& x) { return x.job == key && x.definition == definition; });
  if (it != w.warm.end()) w.warm.erase(it);
}

void CoordinatorCore::Impl::ExpireWarm(int64_t now) {
  for (auto& [wid, w] : workers) {
    std::erase_if(w.warm, [&](const WorkerInfo::Warm& x) {
      auto j = jobs.find(x.job);
      return x.until_ms <= now || j == jobs.end() || j->second->status != "InProgress" ||
             !j->second->completion_reason.empty();
    });
  }
}

bool CoordinatorCore::Impl::ReleaseLingering(const std::string& wid, const std::string& trial, uint32_t attempt) {
  auto it = lingering.find({trial, attempt});
  if (it == lingering.end()) return false;
  auto host = it->second.find(wid);
  if (host == it->second.end()) return false;
  const std::vector<uint32_t> gpus = std::move(host->second);
  it->second.erase(host);
  if (it->second.empty()) lingering.erase(it);
  auto w = workers.find(wid);
  if (w != workers.end()) w->second.running.erase({trial, attempt});
  for (uint32_t idx : gpus) {
    if (!GpuHeld(wid, idx)) worker_gpus_used[wid].erase(idx);
  }
  return true;
}

void CoordinatorCore::Impl::TellAlgo1IfPeersGone(const Trial& t, uint32_t attempt, std::vector<Outgoing>* out) const {
  const auto hosts = t.gang_workers.find(attempt);
  const auto left = lingering.find({t.name, attempt});
  if (hosts == t.gang_workers.end() || hosts->second.size() < 2 || left == lingering.end()) return;
  const std::string& algo1 = hosts->second[0];
  if (left->second.size() == 1 && left->second.count(algo1)) {
    out->push_back({algo1, proto::wire::GangPeersEnded{t.name, attempt}});
  }
}

bool CoordinatorCore::Impl::GpuHeld(const std::string& worker, uint32_t idx) const {
  for (const auto& [key, gpus] : attempt_gpus) {
    if (std::find(gpus.begin(), gpus.end(), idx) == gpus.end()) continue;
    auto t = trials.find(key.first);
    if (t != trials.end() && t->second.worker_id == worker) return true;
  }
  return false;
}

void CoordinatorCore::Impl::Promote(Trial& q, int64_t now) {
  // Never started before: it becomes a training job now, and SageMaker creates one when it
  // launches it (its CreationTime, and when its Starting began, were when it was queued).
  if (q.Unlaunched()) {
    q.creation_ms = now;
    // What it went through while queued (Starting, Downloading what it staged ahead) begins now;
    // when its data was in fact staged is said (a trainer that wrote to its own input prefix saw
    // the next training job read the data from before, dated after it).
    for (auto& s : q.secondary) {
      if (s.status == "Downloading" && s.start_ms > 0 && s.start_ms < now &&
          s.message.find(" (staged ahead") == std::string::npos) {
        s.message += " (staged ahead, from " + proto::FormatRfc3339(proto::Timestamp{s.start_ms}) +
                     ", while the training job before it in its slot ran)";
      }
      s.start_ms = std::max(s.start_ms, now);
    }
  }
  const auto key = std::make_pair(q.name, q.attempt);
  auto w = workers.find(q.worker_id);
  if (w != workers.end()) {
    w->second.queued.erase(key);
    w->second.running.insert(key);
  }
  // Its status said "Queued on worker W to start when P ends": P has ended.
  if (!q.secondary.empty() && q.secondary.back().status == "Starting") {
    q.secondary.back().message = "Launching on worker " + q.worker_id + " (" + q.after_trial + ", queued ahead of it, ended)";
  }
  successor.erase({q.after_trial, q.after_attempt});
  q.after_trial.clear();
  q.after_attempt = 0;
  // A request to move (Trial::moving) stands: the worker may still give it back unstarted (it had
  // not started when the request came: waiting for its lease, or staging). Its TrialStarted or its
  // exit report settles it.
  SaveTrial(q);
}

void CoordinatorCore::Impl::ToQueue(Trial& t) {
  t.state = TrialState::kPending;
  t.moving = false;  // back in the queue: a late answer to a request to move is a late report
  t.withdrawing = false;
  t.worker_id.clear();
  t.started = false;
  t.last_seq = 0;
  // metric_host stays: a metric's final value is the lowest host's across attempts (Trial::metric_host).
  t.metric_host_since.clear();
  t.evicted.clear();  // the eviction was of the attempt that ended
}

void CoordinatorCore::Impl::InfraFailure(Trial& t, const std::string& reason, int64_t now, const std::string& on,
                                        int64_t at) {
  const int64_t ended = at > 0 ? at : now;
  if (!on.empty() || !t.worker_id.empty()) t.interrupted_on = on.empty() ? t.worker_id : on;
  // A gang whose algo-1 is what was lost: no one will merge what the other hosts hand over.
  const bool algo1_lost = t.gang.size() > 1 && !on.empty() && on == t.gang[0].worker_id && t.gang[0].exit.empty();
  std::vector<std::string> other_hosts;
  for (size_t i = 1; algo1_lost && i < t.gang.size(); ++i) other_hosts.push_back(t.gang[i].worker_id);
  const uint32_t ended_attempt = t.attempt;
  ReleaseSlot(t, now);
  t.infra_failures++;
  TuningJob* j = Job(t.tuning_job);
  int64_t max_retries = 0;
  if (j) {
    const auto* d = Definition(*j, t.definition_name);
    if (d && d->retry_strategy && d->retry_strategy->maximum_retry_attempts) {
      max_retries = *d->retry_strategy->maximum_retry_attempts;
    }
  }
  Event(now, "InfraError", t.tuning_job, t.name, "attempt " + std::to_string(t.attempt) + ": " + reason);
  if (!t.stop_requested && j && j->status == "InProgress" && t.infra_failures <= max_retries) {
    ToQueue(t);
    t.requeued_ms = now;
    Secondary(t, "Restarting", ended, reason);
  } else {
    t.state = t.stop_requested ? TrialState::kStopped : TrialState::kFailed;
    t.end_ms = ended;
    if (t.state == TrialState::kFailed) {
      // The worker's reason may carry the prefix already (InfraError reports do).
      t.failure_reason = Truncate(
          (reason.rfind("InternalServerError", 0) == 0 ? "" : "InternalServerError: ") + reason +
          // Every attempt, interrupted ones included (it said 2 where the history showed 3).
          (ended_attempt > 1 ? " (after " + std::to_string(ended_attempt) + " attempts)" : ""));
      retryable_failures.insert(t.name);
    }
    Secondary(t, t.state == TrialState::kFailed ? "Failed" : "Stopped", ended, reason);
    // No retry follows, whose algo-1 would remove this attempt's hand-over folder.
    const auto* d = j ? Definition(*j, t.definition_name) : nullptr;
    if (algo1_lost && d && d->output_data_config && d->output_data_config->s3_output_path.value_or("") != "") {
      t.discard_hand_over = Trial::HandOverToDiscard{ended_attempt, *d->output_data_config->s3_output_path,
                                                     std::move(other_hosts)};
      discards[t.name] = {};
    }
  }
  SaveTrial(t);
}

void CoordinatorCore::Impl::SendDueDiscards(int64_t now, std::vector<Outgoing>* out) {
  for (auto it = discards.begin(); it != discards.end();) {
    auto t = trials.find(it->first);
    if (t == trials.end() || !t->second.discard_hand_over) {
      it = discards.erase(it);
      continue;
    }
    const Trial::HandOverToDiscard& d = *t->second.discard_hand_over;
    const auto runs = [&](const std::string& wid) { return it->second.running.count(wid) && workers.count(wid); };
    const bool awaited = it->second.restored && now - loaded_at_ms <= opt.lease_ms &&
                         std::any_of(d.workers.begin(), d.workers.end(), [&](const auto& w) { return !workers.count(w); });
    // A host still hands over (after its exit), or may (not registered since a restart, within a lease).
    if (lingering.count({it->first, d.attempt}) || std::any_of(d.workers.begin(), d.workers.end(), runs) || awaited) {
      ++it;
      continue;
    }
    for (const std::string& wid : d.workers) {
      if (!workers.count(wid)) continue;
      out->push_back({wid, proto::wire::DiscardHandOver{it->first, d.attempt, d.output_path}});
      spdlog::info("{} attempt {}: algo-1 was lost and no retry follows; worker {} removes the hosts' hand-over "
                   "folder under {}",
                   it->first, d.attempt, wid, d.output_path);
      break;
    }
    t->second.discard_hand_over.reset();
    SaveTrial(t->second);
    it = discards.erase(it);
  }
}

void CoordinatorCore::Impl::Requeue(Trial& t, const std::string& reason, int64_t now) {
  ReleaseSlot(t, now);
  Event(now, "Requeued", t.tuning_job, t.name, "attempt " + std::to_string(t.attempt) + ": " + reason);
  ToQueue(t);
  t.requeued_ms = now;
  SaveTrial(t);
}

void CoordinatorCore::Impl::Interrupted(Trial& t, const std::string& reason, int64_t now, int64_t at) {
  ReleaseSlot(t, now);
  Event(now, "Interrupted", t.tuning_job, t.name, "attempt " + std::to_string(t.attempt) + ": " + reason);
  t.interruptions++;
  t.interrupted_on = t.worker_id;
  ToQueue(t);
  t.requeued_ms = now;
  Secondary(t, "Interrupted", at > 0 ? at : now, reason);
  SaveTrial(t);
}

void CoordinatorCore::Impl::ExpireMaxWait(TuningJob& j, int64_t now, std::vector<Outgoing>* out) {
  if (j.status != "InProgress") return;
  bool any = false;  // only jobs that set it pay for the scan
  for (const auto* d : j.spec.Definitions()) {
    any = any || (d->stopping_condition && d->stopping_condition->max_wait_time_in_seconds);
  }
  if (!any) return;
  for (const auto& name : j.trials) {
    Trial& t = trials.at(name);
    // Not a training job yet (queued ahead, or given back before it ran): its clock starts when it
    // is launched (creation_ms is set then).
    if (t.Terminal() || t.stop_requested || t.Unlaunched()) continue;
    const auto* d = Definition(j, t.definition_name);
    if (!d || !d->stopping_condition || !d->stopping_condition->max_wait_time_in_seconds) continue;
    const int64_t limit = *d->stopping_condition->max_wait_time_in_seconds;
    if (now - t.creation_ms < limit * 1000) continue;
    const std::string reason = "MaxWaitTimeExceeded: " + std::to_string(limit) +
                               " s (StoppingCondition.MaxWaitTimeInSeconds) since the training job was created";
    Event(now, "MaxWaitTimeExceeded", j.name, t.name, reason);
    if (t.state == TrialState::kPending) {
      t.state = TrialState::kStopped;
      t.end_ms = now;
      Secondary(t, "MaxWaitTimeExceeded", now, reason);
      SaveTrial(t);
    } else {
      StopTrialMsg(t, reason, now, out);
    }
  }
}

void CoordinatorCore::Impl::AttemptLost(Trial& t, const std::string& reason, int64_t now, const std::string& on,
                                       int64_t heard_ms, int64_t fence_from_ms, bool notice_missed) {
  if (heard_ms > 0 && heard_ms < now) EndTrainingTime(t, heard_ms);  // ReleaseSlot then adds nothing more
  if (fence_from_ms > 0) {  // set before the re-queue, which stores it
    t.fenced_until_ms = fence_from_ms + proto::wire::StallKillAfterMs(opt.lease_ms) + opt.heartbeat_interval_ms + 2000;
  }
  TuningJob* j = Job(t.tuning_job);
  if (!t.started && !t.stop_requested && j && j->status == "InProgress") {
    Requeue(t, reason + " before it started", now);
  } else if (t.assigned_ahead && !t.started && t.start_ms == 0 && t.training_ms == 0 && j &&
             (j->status == "Stopping" || !j->completion_reason.empty())) {
    // Queued ahead on a worker and never started when its tuning job ended (its stop never reached
    // the worker, which restarted without it): never a training job, withdrawn as the worker's own
    // answer to the stop withdraws it. It was listed and counted as a Stopped training job.
    ReleaseSlot(t, now);
    t.state = TrialState::kStopped;
    t.end_ms = now;
    SaveTrial(t);
    withdraw_lost.insert(t.name);
  } else if (notice_missed && t.on_spot && !t.stop_requested && j && j->status == "InProgress") {
    // A spot worker reclaimed while the coordinator was down: its notice (and its Interrupted
    // report) went nowhere, and it spent a retry, or with none failed a managed spot training job.
    Interrupted(t, reason + ", a spot worker whose interruption notice could not be heard while the coordinator was "
                            "down: counted as an interruption",
                now, heard_ms);
  } else {
    InfraFailure(t, reason, now, on);
  }
}

Trial* CoordinatorCore::Impl::OldestPending(TuningJob& j, std::optional<int64_t> now) {
  const JobIndex& ix = Index(j);
  for (const auto index : ix.pending) {
    Trial* t = &trials.at(ix.history.at(static_cast<size_t>(index - 1)).trial);
    if (!now || MayStartNow(*t, *now)) return t;
  }
  return nullptr;
}

bool CoordinatorCore::Impl::MayStartNow(const Trial& t, int64_t now) const {
  return t.fenced_until_ms <= now && !lingering.count({t.name, t.attempt}) && !AwaitsRestartedHosts(t, now);
}

Trial* CoordinatorCore::Impl::CreateTrial(TuningJob& j, int64_t now) {
  if (static_cast<int64_t>(j.trials.size()) >= MaxJobs(j) || !j.strategy || j.Proposing()) return nullptr;
  const auto started = std::chrono::steady_clock::now();
  auto props = j.strategy->Propose(1, History(j));
  RecordSuggestion(j, std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count(), now);
  if (props.empty()) return nullptr;
  return AddTrial(j, props[0], now);
}

Trial* CoordinatorCore::Impl::AddTrial(TuningJob& j, const Proposal& p, int64_t now) {
  Trial nt;
  nt.index = static_cast<int>(j.trials.size()) + 1;
  nt.name = TrialName(j.name, nt.index, j.seed, j.creation_ms);
  nt.tuning_job = j.name;
  nt.definition_name = p.definition_name;
  nt.tuned = p.hyperparameters;
  const auto* d = Definition(j, nt.definition_name);
  nt.hyperparameters = d ? MergeHyperParameters(*d, nt.tuned, ObjectiveMetricFor(j, nt.definition_name)) : nt.tuned;
  nt.creation_ms = now;
  nt.tags = j.spec.tags;  // copied, as SageMaker tags each training job with its tuning job's
  nt.state = TrialState::kPending;
  j.trials.push_back(nt.name);
  Trial* t = &(trials[nt.name] = std::move(nt));
  SaveTrial(*t);
  return t;
}

void CoordinatorCore::Impl::RequestProposal(TuningJob& j, size_t n) {
  ProposalRequest r;
  r.job = j.name;
  r.id = ++next_proposal_id;
  r.n = std::max<size_t>(n, 1);
  r.strategy = j.strategy;
  r.history = History(j);
  r.curves.reserve(r.history.size());
  for (Observation& o : r.history) {  // they point into the core's trials: the request owns copies
    r.curves.push_back(o.curve ? std::optional<std::vector<double>>(*o.curve) : std::nullopt);
    o.curve = nullptr;
  }
  j.proposal_id = r.id;
  j.proposal_n = r.n;
  proposal_requests.push_back(std::move(r));
}

WorkerInfo* CoordinatorCore::Impl::PlaceHost(const HostRequest& req, bool* ever, std::string* why, uint32_t* gpus,
    const std::string& avoid, bool prefer_on_demand,
    const std::set<std::string>* exclude, const std::string& job,
    const std::string& definition) {
  WorkerInfo* best = nullptr;
  *ever = false;
  std::vector<std::string> reasons;
  auto rank = [&](const WorkerInfo& w) {
    // A slot kept warm for this job's definition first (KeepAlivePeriodInSeconds).
    // Then the capacity it asks for: spot with EnableManagedSpotTraining, unless this attempt
    // follows an interruption (on-demand first then, so it is not interrupted again).
    const bool wanted = prefer_on_demand ? !w.reg.spot : !req.managed_spot || w.reg.spot;
    return std::make_tuple(w.reg.worker_id != avoid, w.warm_for(job, definition) > 0, wanted,
                           w.free_slots(job, definition));
  };
  for (auto& [id, w] : workers) {
    if (exclude && exclude->count(id)) continue;  // a host of the same gang
    FitResult f = Fit(opt.catalog, req, w.reg, w.free_slots(job, definition), worker_gpus_used[id]);
    *ever = *ever || f.ever;
    if (f.now && !w.Closed().empty()) {
      f.now = false;
      f.why = "worker " + id + ClosedPhrase(id, w);
    }
    if (auto held = held_for.find(id); f.now && held != held_for.end() && held->second.job != job) {
      // Only what the held host needs is kept: a slot and its GPUs, if they stay free after this.
      std::set<uint32_t> used = worker_gpus_used[id];
      for (uint32_t g : PickGpus(w.reg, used, f.gpus)) used.insert(g);
      if (!Fit(opt.catalog, held->second.req, w.reg, w.free_slots(held->second.job, held->second.definition) - 1, used)
               .now) {
        f.now = false;
        f.why = "worker " + id + " is held for the hosts of tuning job " + held->second.job + "'s training job";
      }
    }
    if (f.now) {
      if (!best || rank(w) > rank(*best)) {
        best = &w;
        *gpus = f.gpus;
      }
    } else {
      reasons.push_back(f.why);
    }
  }
  // The first few, and how many more: a long list hid the workers the user meant.
  if (reasons.size() > 6) {
    const size_t more = reasons.size() - 5;
    reasons.resize(5);
    reasons.push_back("and " + std::to_string(more) + " more workers that cannot");
  }
  if (workers.empty()) reasons.push_back("no worker is registered");
  why->clear();
  // "T needs 4 vCPUs, 16 GiB; worker w1 has 2 CPUs" once per worker said what T needs each time:
  // said once, then what each worker has.
  std::string said_needs;
  for (const auto& r : reasons) {
    const size_t cut = r.find("; worker ");
    const std::string needs = r.find(" needs ") < cut && cut != std::string::npos ? r.substr(0, cut) : std::string();
    const std::string rest = !needs.empty() && needs == said_needs ? r.substr(cut + 2) : r;
    if (!needs.empty()) said_needs = needs;
    *why += (why->empty() ? "" : "; ") + rest;
  }
  return best;
}

std::string CoordinatorCore::Impl::NeverReason(const Unplaced& u, const std::string& definition) const {
  const HostRequest& req = u.req;
  const std::string what = !u.what.empty() ? u.what : req.instance_type.empty() ? std::string("a worker") : req.instance_type;
  // A multi-host training job some workers can serve, too few of them: said so (it read "no
  // registered worker can serve X: ..., and 1 of the registered workers can").
  // (Every host's request is one some worker serves: it is their number that falls short.)
  const bool too_few = u.hosts > 1 && !u.all.empty() && std::all_of(u.all.begin(), u.all.end(), [&](const HostRequest& r) {
    return std::any_of(workers.begin(), workers.end(), [&](const auto& w) { return CouldEverServe(w.second, r); });
  });
  std::string reason = std::string(too_few ? "too few registered workers can serve " : "no registered worker can serve ") +
                       what + (definition.empty() ? "" : " (training job definition " + definition + ")") + ": " + u.why;
  // Workers that would serve it but for their --instance-group (a worker with one serves only
  // that group's hosts of heterogeneous jobs): "give a worker --instance-type T" was wrong advice
  // to workers that had it.
  std::vector<std::string> grouped;
  for (const auto& [id, w] : workers) {
    if (w.reg.instance_group.empty() || w.reg.instance_group == req.instance_group) continue;
    proto::wire::Register ungrouped = w.reg;
    ungrouped.instance_group.clear();
    if (Fit(opt.catalog, req, ungrouped, static_cast<int>(w.reg.slots), {}).ever) grouped.push_back(id);
  }
  if (!grouped.empty() && !too_few) {
    std::string names;
    for (const std::string& id : grouped) names += (names.empty() ? "" : ", ") + id;
    reason += std::string(grouped.size() == 1 ? " (worker " : " (workers ") + names + " would, but " +
              (grouped.size() == 1 ? "it serves" : "they serve") + " only the instance group of its --instance-group: " +
              "start a worker without --instance-group" +
              (req.instance_group.empty() ? std::string() : " (or with --instance-group " + req.instance_group + ")") +
              (req.instance_type.empty() ? std::string() : ", with --instance-type " + req.instance_type) + ")";
    return reason;
  }
  // Workers that would serve it but for S3 credentials, or for being spot workers: one look each.
  bool no_s3 = false;
  std::vector<std::string> spot;
  for (const auto& [id, w] : workers) {
    const FitResult f = Fit(opt.catalog, req, w.reg, static_cast<int>(w.reg.slots), {});
    no_s3 = no_s3 || f.no_s3;
    if (f.spot) spot.push_back(id);
  }
  if (no_s3) {
    // The instance type was not the problem.
    reason += " (give a worker S3 credentials and start it again, or use file:// paths)";
  } else if (!spot.empty()) {
    // Workers that would serve it but are spot workers, for a job that is not managed spot: it said
    // "start more workers with --instance-type T" beside an idle one that has it (a gangs pass).
    std::string names;
    for (const std::string& id : spot) names += (names.empty() ? "" : ", ") + id;
    reason += std::string(spot.size() == 1 ? " (worker " : " (workers ") + names + " would, but " +
              (spot.size() == 1 ? "it is a spot worker" : "they are spot workers") +
              ": set EnableManagedSpotTraining in the training job definition, or start an on-demand worker)";
  } else if (!req.instance_type.empty() && !too_few) {  // (the gang's reason has its own hint: not twice)
    // What to start: `why` says what the catalog's type needs.
    reason += opt.catalog.Find(req.instance_type)
                  ? " (start a worker on a machine that has that, or give a worker --instance-type " + req.instance_type + ")"
                  : " (start a worker with --instance-type " + req.instance_type + ")";
  }
  return reason;
}

void CoordinatorCore::Impl::NoteWaiting(TuningJob& j, Trial* t, const Unplaced& u, int64_t now) {
  const bool ever = u.ever;
  // In the first lease after a restart the workers have not registered again yet; they do
  // within a heartbeat or two. "No registered worker can serve" then was noise: an event for
  // every job in progress at each restart, kept in their histories.
  if (!ever && resumed && (loaded_at_ms < 0 || now - loaded_at_ms < opt.lease_ms)) return;
  const std::string& why = u.why;
  const HostRequest& req = u.req;
  const std::string what = !u.what.empty() ? u.what : req.instance_type.empty() ? std::string("a worker") : req.instance_type;
  std::string reason;
  if (!ever) {
    reason = NeverReason(u);
  } else {
    reason = u.hosts > 1 ? std::string(core_detail::kGangWaits) + std::to_string(u.hosts) + " hosts of a training job (" +
                               what + ", all at once)"
                         : "waiting for a free worker that can serve " + what;
    if (u.hosts > 1 && why.find("another multi-host training job") != std::string::npos) reason += ": " + why;
    // An open worker passed over for want of disk (VolumeSizeInGB): said, or the reason named
    // only the cordoned ones and the idle one looked free.
    // So is one that has no S3 credentials for a job that uses S3 (it read "waiting for a free
    // worker" while that one stood idle, a regression pass).
    for (const auto& [id, w] : workers) {
      if (!w.Closed().empty()) continue;  // (said below)
      for (const HostRequest& r : u.all) {
        if (const FitResult f = Fit(opt.catalog, r, w.reg, w.free_slots(), {}); f.short_of_disk || f.no_s3 || f.spot) {
          reason += "; " + f.why;
          break;
        }
      }
    }
    // A worker that would serve it but drains, rests or is cordoned: say which and why (a spot
    // pass: the draining workers, the reason after an interruption, went unsaid).
    for (const auto& [id, worker] : workers) {
      if (worker.resting.empty() && worker.cordoned.empty() && worker.draining.empty()) continue;
      const auto& w = worker;  // a lambda may not capture a structured binding before clang 16
      // u.all holds every host's request, `req` (the first) among them.
      if (std::any_of(u.all.begin(), u.all.end(), [&](const HostRequest& r) { return CouldEverServe(w, r); })) {
        reason += "; worker " + id + ClosedPhrase(id, w);
      }
    }
  }
  if (!ever && j.waiting_said != reason) {
    Event(now, "Waiting", j.name, t ? t->name : "", reason);
    j.waiting_said = reason;
  }
  j.waiting_reason = reason;
  if (j.waiting_since_ms == 0) j.waiting_since_ms = now;
  if (t && (t->secondary.empty() || t->secondary.back().message != reason)) {
    if (!t->secondary.empty() && t->secondary.back().status == "Starting") t->secondary.pop_back();
    t->secondary.push_back({"Starting", now, reason});
    SaveTrial(*t);
  }
}

void CoordinatorCore::Impl::FailJob(TuningJob& j, const std::string& reason, int64_t now, std::vector<Outgoing>* out) {
  j.status = "Failed";
  j.failure_reason = Truncate(reason);
  j.end_ms = now;
  StopAll(j, "tuning job failed: " + j.failure_reason, now, out);
  SaveJob(j, now);
  ReleaseStrategyIfEnded(j);
  Event(now, "JobFailed", j.name, "", j.failure_reason);
}

void CoordinatorCore::Impl::ExpirePending(TuningJob& j, int64_t now, std::vector<Outgoing>* out) {
  if (j.status != "InProgress" || !j.completion_reason.empty()) return;  // ending: its pending ones are stopped
  // No registered worker can serve the job for MaxPendingTimeInSeconds: it cannot go on. With no
  // success it fails saying why; with some it ends as a job whose budget ran out, Completed with
  // its best once the training jobs it stops have ended (it failed, its results aside).
  auto cannot_go_on = [&](int64_t limit) {
    const std::string why = "MaxPendingTimeInSeconds (" + std::to_string(limit) + " s) exceeded: " + j.waiting_reason;
    if (Index(j).succeeded == 0) {
      FailJob(j, why, now, out);
      return;
    }
    j.completion_reason = why;
    StopAll(j, "tuning job complete: " + why, now, out);
    SaveJob(j, now);
    Event(now, "CompletionCriterion", j.name, "", why);
  };
  // A job that no registered worker can serve has no trial to time out: its wait counts (not
  // while it runs others: a definition none serves beside one served, PlaceNext).
  const auto defs = j.spec.Definitions();
  if (!defs.empty() && j.waiting_since_ms > 0 && j.waiting_reason.rfind("no registered worker", 0) == 0 &&
      ActiveCount(j) == 0 &&
      defs[0]->stopping_condition && defs[0]->stopping_condition->max_pending_time_in_seconds &&
      now - j.waiting_since_ms >= *defs[0]->stopping_condition->max_pending_time_in_seconds * 1000) {
    cannot_go_on(*defs[0]->stopping_condition->max_pending_time_in_seconds);
    return;
  }
  std::vector<Trial*> expired;
  for (int index : Index(j).pending) {
    Trial& t = trials.at(Index(j).history.at(static_cast<size_t>(index - 1)).trial);
    const auto* d = Definition(j, t.definition_name);
    if (!d || !d->stopping_condition || !d->stopping_condition->max_pending_time_in_seconds) continue;
    // Pending since it was created, or since an attempt that ended put it back (a retry, an
    // interruption): a two-hour training job retried after it ran is not two hours pending.
    const int64_t pending_since = std::max(t.creation_ms, t.requeued_ms);
    if (now - pending_since >= *d->stopping_condition->max_pending_time_in_seconds * 1000) expired.push_back(&t);
  }
  for (Trial* t : expired) {
    const auto* d = Definition(j, t->definition_name);
    const int64_t limit = *d->stopping_condition->max_pending_time_in_seconds;
    const std::string why = j.waiting_reason.empty() ? "no worker could start it" : j.waiting_reason;
    t->state = TrialState::kFailed;
    t->end_ms = now;
    t->failure_reason = Truncate("CapacityError: pending for " + std::to_string(limit) +
                                 " s (StoppingCondition.MaxPendingTimeInSeconds): " + why);
    Secondary(*t, "Failed", now, t->failure_reason);
    SaveTrial(*t);
    Event(now, "PendingTimeExceeded", j.name, t->name, t->failure_reason);
    if (j.waiting_reason.rfind("no registered worker", 0) == 0) {
      cannot_go_on(limit);
      return;
    }
  }
}

void CoordinatorCore::Impl::StopAll(TuningJob& j, const std::string& reason, int64_t now, std::vector<Outgoing>* out) {
  // One assigned ahead that went back to the queue before it ever started (its worker left or
  // was lost first) is withdrawn like one still queued on its worker (Trial::assigned_ahead).
  std::vector<std::string> never_ran;
  for (const auto& name : j.trials) {
    const Trial& t = trials.at(name);
    if (t.state == TrialState::kPending && t.assigned_ahead && t.start_ms == 0 && t.training_ms == 0) {
      never_ran.push_back(name);
    }
  }
  for (const auto& name : never_ran) {
    Trial& t = trials.at(name);
    t.state = TrialState::kStopped;  // out of the job's pending set first, as an ended one
    t.end_ms = now;
    SaveTrial(t);
    Withdraw(t, now);
  }
  for (const auto& name : j.trials) {
    Trial& t = trials.at(name);
    if (t.Queued()) StopTrialMsg(t, reason, now, out);
  }
  for (const auto& name : j.trials) StopTrialMsg(trials.at(name), reason, now, out);
}

void CoordinatorCore::Impl::StopTrialMsg(Trial& t, const std::string& reason, int64_t now, std::vector<Outgoing>* out,
                                        const std::string& except) {
  if (t.state == TrialState::kPending) {
    t.state = TrialState::kStopped;
    t.end_ms = now;
    Secondary(t, "Stopped", now, reason);
    SaveTrial(t);
    return;
  }
  if (!t.Active() || t.stop_requested) return;
  t.stop_requested = true;
  t.stop_reason = reason;
  t.state = TrialState::kStopping;
  Secondary(t, "Stopping", now, reason);
  SaveTrial(t);
  t.stop_sent_ms = now;
  SendToHosts(t, StopRequest(t), out, except);
}

proto::wire::StopTrial CoordinatorCore::Impl::StopRequest(const Trial& t) const {
  proto::wire::StopTrial m;
  m.trial = t.name;
  m.attempt = t.attempt;
  const std::string& why = t.stop_requested ? t.stop_reason : t.evicted;  // a stop of its own wins
  m.reason = why.empty() ? "stopped" : why;
  m.grace_period_s = static_cast<uint32_t>(opt.default_grace_period_s);
  return m;
}

void CoordinatorCore::Impl::SendToHosts(const Trial& t, const proto::wire::StopTrial& m, std::vector<Outgoing>* out,
    const std::string& except) {
  for (const auto& wid : t.Hosts()) {
    if (wid != except) out->push_back({wid, m});
  }
}

void CoordinatorCore::Impl::MaybeFinish(TuningJob& j, int64_t now, std::vector<Outgoing>* out) {
  if (j.Terminal()) return;
  if (j.status == "Stopping") {
    // Hosts of a multi-host attempt that ended before the stop (its retry waited, and was
    // withdrawn) still stop and upload: it read Stopped while their programs ran on. (FinishAll
    // asks again after every message and tick: their exits, or their workers' loss, end it.)
    const bool lingers = std::any_of(lingering.begin(), lingering.end(), [&](const auto& l) {
      auto t = trials.find(l.first.first);
      return t != trials.end() && t->second.tuning_job == j.name;
    });
    if (!AnyUnfinished(j) && !lingers) {
      j.status = "Stopped";
      j.end_ms = now;
      SaveJob(j, now);
      ReleaseStrategyIfEnded(j);
      Event(now, "JobStopped", j.name, "", "stopped on request");
    }
    return;
  }
  // Target objective reached: stop the rest and complete.
  const auto& cc = j.spec.hyper_parameter_tuning_job_config->tuning_job_completion_criteria;
  if (j.completion_reason.empty() && cc && cc->target_objective_metric_value) {
    const Trial* best = Best(j);
    double target = *cc->target_objective_metric_value;
    if (best && (j.maximize ? *best->objective >= target : *best->objective <= target)) {
      j.completion_reason = "TargetObjectiveMetricValue reached by " + best->name;
      StopAll(j, "tuning job target reached", now, out);
      SaveJob(j, now);
      Event(now, "CompletionCriterion", j.name, "", j.completion_reason);
    }
  }
  // SageMaker gives up on a tuning job whose first training jobs all fail ("No training job
  // succeeded after 5 attempts"), rather than spend its budget on a broken trainer or regex. Not
  // while one still running has emitted the objective: that one works, and stopping it ended the
  // job Completed with it as the best, after saying it had failed.
  auto objective_running = [&] {
    for (const auto& name : j.trials) {
      const Trial& t = trials.at(name);
      if (t.objective && t.state != TrialState::kCompleted && t.state != TrialState::kFailed &&
          t.state != TrialState::kStopped) {
        return true;
      }
    }
    return false;
  };
  if (j.completion_reason.empty() && Index(j).succeeded == 0 && Index(j).failed >= kFailuresBeforeGivingUp &&
      !objective_running()) {
    j.completion_reason = kGaveUp;
    StopAll(j, "tuning job failed: its first " + std::to_string(kFailuresBeforeGivingUp) +
                   " training jobs to end failed, and none succeeded", now, out);
    SaveJob(j, now);
  }
  if (j.completion_reason.empty()) {
    std::string reason = CompletionCriterionMet(j, now);
    if (!reason.empty()) {
      j.completion_reason = reason;
      StopAll(j, "tuning job complete: " + reason, now, out);
      SaveJob(j, now);
      Event(now, "CompletionCriterion", j.name, "", reason);
    }
  }
  // The count the decision to end was made on (a criterion's message quotes it): what the
  // training jobs it stops report afterwards does not add to it. Saved with the job below.
  if (!j.completion_reason.empty() && j.not_improving_final < 0) {
    j.not_improving_final = Index(j).not_improving.not_improving;
    SaveJob(j, now);
  }
  bool no_more = !j.completion_reason.empty() || static_cast<int64_t>(j.trials.size()) >= MaxJobs(j) ||
                 (j.strategy && !j.Proposing() && j.strategy->Exhausted(History(j)) && !HasPending(j));
  if (!no_more || AnyUnfinished(j)) return;
  const int succeeded = Index(j).succeeded;
  j.end_ms = now;
  if (succeeded == 0) {
    j.status = "Failed";
    // Given up: the count it gave up on (the stop message says "its first 5"), not the failures of
    // the training jobs it then stopped, which made it 6.
    const size_t attempts = j.completion_reason == kGaveUp ? static_cast<size_t>(kFailuresBeforeGivingUp) : j.trials.size();
    j.failure_reason = "No training job succeeded after " + std::to_string(attempts) +
                       (attempts == 1 ? " attempt" : " attempts") +
                       ". Please take a look at the training job failures to get more details.";
    // SageMaker's words, then what they do not say: training jobs that ran to the end without one
    // line the objective's regex matched (the usual cause when nothing failed).
    int completed_without_metric = 0;
    std::string example;
    for (const auto& name : j.trials) {
      const Trial& t = trials.at(name);
      if (t.state == TrialState::kCompleted && !t.objective) {
        ++completed_without_metric;
        if (example.empty()) example = t.name;
      }
    }
    // Ended by its runtime limit: the training jobs it stopped had not emitted the objective yet.
    int stopped_without_metric = 0;
    for (const auto& name : j.trials) {
      const Trial& t = trials.at(name);
      stopped_without_metric += t.state == TrialState::kStopped && !t.objective;
    }
    // The job's own limit, or the coordinator's quota for a job that gave none: which, and what to raise.
    auto stopped_by = [&](const std::string& limit, int64_t seconds, const std::string& raise) {
      j.failure_reason += " " + limit + " (" + std::to_string(seconds) + " s) was reached: that stopped " +
                          std::to_string(stopped_without_metric) + " running training job(s) before " +
                          (stopped_without_metric == 1 ? "it" : "they") + " emitted the objective metric; " + raise +
                          ".";
    };
    if (const std::string limit = "ResourceLimits.MaxRuntimeInSeconds"; j.completion_reason.rfind(limit, 0) == 0) {
      stopped_by("Its " + limit, *j.spec.hyper_parameter_tuning_job_config->resource_limits->max_runtime_in_seconds,
                 "raise ResourceLimits.MaxRuntimeInSeconds if they need longer");
    } else if (j.completion_reason.rfind(kRuntimeQuota, 0) == 0) {
      stopped_by("The coordinator's runtime quota for a tuning job", opt.max_tuning_job_runtime_s,
                 "give the job a ResourceLimits.MaxRuntimeInSeconds, or raise " + opt.quota_command +
                     " --max-tuning-job-runtime");
    }
    if (completed_without_metric > 0) {
      // "Of them" when the count is within the attempts the sentence names; one running beside the
      // five that ended it completed too ("after 5 attempts ... 6 of them" read as a contradiction).
      j.failure_reason += " " + std::to_string(completed_without_metric) +
                          (static_cast<size_t>(completed_without_metric) <= attempts ? " of them" : " training jobs") +
                          " completed without emitting the objective metric: check its MetricDefinitions "
                          "regex against their output, and that what it matched is a number (hpo logs " + example +
                          "; a non-finite value such as nan is noted there).";
    }
  } else {
    j.status = "Completed";
    if (j.completion_reason.empty()) {
      j.completion_reason = static_cast<int64_t>(j.trials.size()) >= MaxJobs(j)
                                ? "MaxNumberOfTrainingJobs reached"
                                : "search space exhausted";
    }
  }
  SaveJob(j, now);
  ReleaseStrategyIfEnded(j);
  Event(now, "Job" + j.status, j.name, "", j.status == "Failed" ? j.failure_reason : j.completion_reason);
}

std::string CoordinatorCore::Impl::CompletionCriterionMet(TuningJob& j, int64_t now) {
  const auto& cfg = *j.spec.hyper_parameter_tuning_job_config;
  JobIndex& ix = Index(j);
  if (cfg.resource_limits && cfg.resource_limits->max_runtime_in_seconds) {
    if (now - j.creation_ms >= *cfg.resource_limits->max_runtime_in_seconds * 1000) {
      return "ResourceLimits.MaxRuntimeInSeconds (" + std::to_string(*cfg.resource_limits->max_runtime_in_seconds) +
             " s) reached";
    }
  } else if (opt.max_tuning_job_runtime_s > 0 && now - j.creation_ms >= opt.max_tuning_job_runtime_s * 1000) {
    return std::string(kRuntimeQuota) + " (" + std::to_string(opt.max_tuning_job_runtime_s) +
           " s, " + opt.quota_command + " --max-tuning-job-runtime; SageMaker's is 30 days) reached: the job gave no "
           "ResourceLimits.MaxRuntimeInSeconds";
  }
  if (!cfg.tuning_job_completion_criteria) return "";
  const auto& cc = *cfg.tuning_job_completion_criteria;
  if (cc.best_objective_not_improving &&
      cc.best_objective_not_improving->max_number_of_training_jobs_not_improving &&
      ix.not_improving.not_improving >= *cc.best_objective_not_improving->max_number_of_training_jobs_not_improving) {
    return "BestObjectiveNotImproving: " + std::to_string(ix.not_improving.not_improving) +
           " training jobs in a row did not improve the best objective by more than 1 %";
  }
  if (cc.convergence_detected && cc.convergence_detected->complete_on_convergence.value_or("") == "Enabled" &&
      ix.finished_objectives.size() != ix.convergence_checked) {
    ix.convergence_checked = ix.finished_objectives.size();
    if (Converged(ix.finished_objectives, j.maximize)) {
      j.convergence_ms = now;
      return "ConvergenceDetected: the best objective moved by at most 0.1 % of the objectives' spread over "
             "the last " + std::to_string(std::max<size_t>(10, (ix.finished_objectives.size() + 4) / 5)) +
             " of " + std::to_string(ix.finished_objectives.size()) + " training jobs";
    }
  }
  return "";
}

void CoordinatorCore::Impl::FinishAll(int64_t now, std::vector<Outgoing>* out) {
  for (const std::string& name : std::exchange(withdraw_lost, {})) {
    if (auto t = trials.find(name); t != trials.end()) Withdraw(t->second, now);
  }
  for (auto& [k, j] : jobs) ExpirePending(*j, now, out);
  for (auto& [k, j] : jobs) ExpireMaxWait(*j, now, out);
  for (auto& [k, j] : jobs) MaybeFinish(*j, now, out);
}

}  // namespace hpo::coordinator
