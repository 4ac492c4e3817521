// coordinator/core_handlers.cc: CoordinatorCore::Impl, the worker messages (register, started, metrics, logs, exited, heartbeats) (coordinator/core_impl.h).
#include "coordinator/core_impl.h"
#include <cmath>

namespace hpo::coordinator {

using core_detail::Lower;
using core_detail::Truncate;
using proto::StringMap;

Trial* CoordinatorCore::Impl::CurrentAttempt(const std::string& trial, uint32_t attempt) {
  auto it = trials.find(trial);
  if (it == trials.end() || it->second.attempt != attempt || !it->second.Active()) return nullptr;
  return &it->second;
}

namespace {

// Why an attempt the previous process stopped on purpose (CoreOptions::
// lost_at_first_registration_interrupted) ends Interrupted.
constexpr const char* kStoppedWithItsStore =
    "the previous process stopped it, having found its state database unwritable; it runs again";

// A training job started at `at` existed by then. One queued ahead becomes a training job when
// its predecessor's end, or its own start, is heard (Impl::Promote); a start dated earlier (heard
// late, or re-dated by its exit report) moves its CreationTime and its Starting back with it.
void CreatedBy(Trial& t, int64_t at) {
  t.creation_ms = std::min(t.creation_ms, at);
  for (auto& s : t.secondary) {
    if (s.status == "Starting") s.start_ms = std::min(s.start_ms, at);
  }
}

}  // namespace

void CoordinatorCore::Impl::OnRegister(const std::string& wid, const proto::wire::Register& r, int64_t now, std::vector<Outgoing>* out) {
  proto::wire::RegisterAck ack;
  ack.protocol_version = proto::wire::kProtocolVersion;
  ack.heartbeat_interval_ms = static_cast<uint32_t>(opt.heartbeat_interval_ms);
  ack.lease_ms = static_cast<uint32_t>(opt.lease_ms);
  Status v = proto::wire::CheckProtocolVersion(r.protocol_version);
  if (!v.ok()) {
    ack.accepted = false;
    ack.reason = v.message();
    out->push_back({wid, std::move(ack)});
    return;
  }
  if (r.worker_id != wid) {
    // A worker's connection carries its id (its ZeroMQ routing id): registered under another, it
    // was a phantom worker that held slots no one would use.
    ack.accepted = false;
    ack.reason = "Register.worker_id " + r.worker_id + " is not this connection's id; a worker sets its ZeroMQ "
                 "routing id to its worker id";
    out->push_back({wid, std::move(ack)});
    return;
  }
  ack.accepted = true;
  // A worker re-sends Register until it is acknowledged, so copies queued while the
  // coordinator was away arrive together: the same registration again is not news.
  // Acting on it again could be wrong, too: attempts assigned since the first copy are not in
  // its `running` list. So a repeat is acknowledged and changes nothing. A repeat is one of the
  // same worker process (its session), whatever else differs: each copy is built when sent, with
  // the free disk space of that moment (comparing whole messages took copies for restarts, and
  // an attempt started since the first copy was re-queued and ran twice at once).
  // But the worker reconnects this way too (a lease without word from the coordinator: a paused
  // coordinator), and an AssignTrial sent just before its new connection was read went to the
  // connection it had closed: lost, and found so only by a heartbeat a lease later, its slot
  // idle meanwhile. So each attempt placed here that has not started and that this Register does
  // not list is sent again (the same attempt: the worker ignores a copy of one it holds), and its
  // time in transit counts from now (Reconcile).
  auto known = workers.find(wid);
  if (known != workers.end() && known->second.reg.session == r.session) {
    known->second.last_seen_ms = now;
    out->push_back({wid, std::move(ack)});
    std::set<std::pair<std::string, uint32_t>> listed;
    for (const auto& ra : r.running) listed.insert({ra.trial, ra.attempt});
    std::vector<std::pair<std::string, uint32_t>> placed(known->second.running.begin(), known->second.running.end());
    placed.insert(placed.end(), known->second.queued.begin(), known->second.queued.end());
    for (const auto& key : placed) {
      Trial* t = CurrentAttempt(key.first, key.second);
      // unstarted_assign: a single-host attempt that has not started (Launch keeps none for a gang).
      if (!t || !t->unstarted_assign || listed.count(key) || t->worker_id != wid || t->StopOwed() || t->moving ||
          t->withdrawing) {
        continue;
      }
      t->assigned_ms = now;
      out->push_back({wid, *t->unstarted_assign});
    }
    return;
  }
  if (known != workers.end() && known->second.Replaced(r.session)) {
    // A process that a newer one under the same id replaced is still alive: two workers share
    // the id, and each registration would take the other's attempts. The older one is refused
    // (it exits, its training jobs stop); the newer one keeps the id.
    ack.accepted = false;
    ack.reason = "another worker registered with the id " + wid + " (host " + known->second.reg.host +
                 ") after this one: two live workers share the id; give each its own --id";
    Event(now, "WorkerIdConflict", "", "", wid + ": a process on " + r.host + " registered again after " +
                                               known->second.reg.host + " took the id; refused it");
    out->push_back({wid, std::move(ack)});
    return;
  }
  // The same host in another work directory is another worker too (each directory is held by one
  // worker at a time, so a restart is on the directory it had).
  const bool other_dir = known != workers.end() && known->second.reg.host == r.host && !r.work_dir.empty() &&
                         !known->second.reg.work_dir.empty() && known->second.reg.work_dir != r.work_dir;
  if (known != workers.end() && known->second.reg.session != r.session &&
      (known->second.reg.host != r.host || other_dir)) {
    // A new process under a live worker's id (heard within its lease) on another host is not
    // that worker restarting: a copied config's `id:`, or a mistyped --id. Taking the id, it took
    // the running worker's attempts (they failed as lost) and then had it refused. The newcomer
    // is refused; the worker that holds the id runs on. So is one on the same host in another
    // work directory. (A restart on the same host and directory, the usual case, replaces the
    // process as before; a worker moved to a new machine or directory under its id is accepted
    // once the old one's lease has run out.)
    ack.accepted = false;
    const std::string where = known->second.reg.host + (other_dir ? " in " + known->second.reg.work_dir : "");
    ack.reason = "the id " + wid + " is held by a running worker on host " + where + " (heard " +
                 std::to_string(std::max<int64_t>(0, now - known->second.last_seen_ms) / 1000) +
                 " s ago): give each worker its own --id (a copied config file's `id:` is a common cause); if that "
                 "worker is gone, start this one again after " + std::to_string(opt.lease_ms / 1000) +
                 " s, when the coordinator counts it lost";
    Event(now, "WorkerIdConflict", "", "", wid + ": a process on " + r.host + (other_dir ? " in " + r.work_dir : "") +
                                               " asked for the id held by the running worker on " + where +
                                               "; refused it");
    out->push_back({wid, std::move(ack)});
    return;
  }
  if (known != workers.end() && known->second.reg.session != 0 && known->second.reg.session != r.session) {
    known->second.replaced_sessions.push_back(known->second.reg.session);
    if (known->second.replaced_sessions.size() > 64) known->second.replaced_sessions.pop_front();
  }
  departed.erase(wid);
  const bool first_registration = workers.count(wid) == 0;  // with this core
  WorkerInfo& w = workers[wid];
  w.queued.clear();
  w.ending.clear();  // what it no longer reports was found lost just below
  std::set<std::pair<std::string, uint32_t>> reported;
  for (const auto& ra : r.running) {
    reported.insert({ra.trial, ra.attempt});
    NoteProgramEnded(ra, wid);
    // Ended with the previous worker process, which stopped them on purpose (below): its report
    // (kEndedWithWorkerProcess) ends them Interrupted too.
    if (ra.ended && first_registration && opt.lost_at_first_registration_interrupted) {
      ended_with_stopped_process.insert({ra.trial, ra.attempt});
    }
  }
  // Attempts we placed on this worker that it no longer runs were lost with its restart.
  for (auto& [name, t] : trials) {
    if (t.Active() && t.OnWorker(wid) && !reported.count({name, t.attempt}) && !t.HostEnded(wid)) {
      // A gang's other hosts are stopped, as when a worker is lost: left alone they ran to their
      // own end beside the retry (a soak saw a MaxParallelTrainingJobs 1 job with two running).
      StopGangPeers(t, wid, "host on worker " + wid + " restarted without it", out);
      if (first_registration && opt.lost_at_first_registration_interrupted && t.started) {
        Interrupted(t, kStoppedWithItsStore, now);
        continue;
      }
      // Its first registration with this coordinator process: the coordinator restarted, and the
      // worker need not have (it said "it restarted" of a worker that had not; a durability pass).
      AttemptLost(t,
                  first_registration
                      ? "worker " + wid + " registered after the coordinator's restart and does not run it" +
                            (t.started ? " (it restarted too, or was told to stop it)" : "")
                      : "worker " + wid + " registered again and no longer runs it (it restarted, or was told to stop it)",
                  now, wid);
    }
  }
  if (w.reg.session != r.session) {  // another process, maybe on another machine: its clock anew
    w.clock_samples.clear();
    w.heartbeat_offset.reset();
    w.heartbeat_jump_since_ms = 0;
  }
  w.reg = r;
  w.last_seen_ms = now;
  w.running.clear();
  // Stopped gang hosts still running keep their slots; those it no longer runs are done.
  for (auto it = lingering.begin(); it != lingering.end();) {
    auto host = it->second.find(wid);
    if (host != it->second.end()) {
      if (reported.count(it->first)) {
        w.running.insert(it->first);
      } else {
        for (uint32_t idx : host->second) worker_gpus_used[wid].erase(idx);
        it->second.erase(host);
      }
    }
    it = it->second.empty() ? lingering.erase(it) : std::next(it);
  }
  w.foreign.clear();
  // A host of an attempt whose hand-over is to be discarded, still running it (after a
  // coordinator restart, which forgot `lingering`): the folder waits for its exit report.
  for (auto& [trial, d] : discards) {
    d.running.erase(wid);
    const auto t = trials.find(trial);
    if (t == trials.end() || !t->second.discard_hand_over) continue;
    if (reported.count({trial, t->second.discard_hand_over->attempt})) d.running.insert(wid);
  }
  w.draining.clear();  // a new registration is new capacity
  // ...but not a cordon: an operator's, held until lifted.
  if (auto cordon = cordons.find(wid); cordon != cordons.end()) {
    w.cordoned = cordon->second.reason;
  } else {
    w.cordoned.clear();
  }
  w.resting.clear();   // (a restarted worker process, perhaps on a repaired machine)
  w.infra_streak = 0;
  w.ended_process_counted = false;
  w.rest_ms = 0;
  w.refused_jobs.clear();
  w.resting_until_ms = 0;  // else the old rest, still running, kept a new one from starting
  std::vector<Trial*> queued;
  std::vector<proto::wire::StopTrial> lingering_stops;  // sent after the ack
  size_t foreign_ended = 0;
  for (const auto& ra : r.running) {
    Trial* t = CurrentAttempt(ra.trial, ra.attempt);
    if (t && !t->gang.empty() && t->OnWorker(wid)) {  // one host of a gang
      w.running.insert({ra.trial, ra.attempt});
      for (const auto& h : t->gang) {
        if (h.worker_id != wid) continue;
        for (uint32_t g : h.gpus) worker_gpus_used[wid].insert(g);
      }
      if (t->worker_id == wid) attempt_gpus[{t->name, t->attempt}] = t->gpus;
    } else if (t && t->gang.empty() && (t->worker_id == wid || t->worker_id.empty())) {
      t->worker_id = wid;
      if (t->Queued()) {
        queued.push_back(t);
      } else {
        w.running.insert({ra.trial, ra.attempt});
      }
      // Its GPUs stay its own across a coordinator restart (the assignment is in the store).
      for (uint32_t g : t->gpus) worker_gpus_used[wid].insert(g);
      attempt_gpus[{t->name, t->attempt}] = t->gpus;
    } else if (GangHostStopping(ra.trial, ra.attempt, wid)) {
      // A host of a gang's ended attempt, still stopping across a coordinator restart (which
      // forgot `lingering`): it lingers again, its slot held, told to stop as before (not
      // revoked: its last checkpoints go up), and the retry waits for its exit (OldestPending).
      lingering[{ra.trial, ra.attempt}].emplace(wid, std::vector<uint32_t>{});
      w.running.insert({ra.trial, ra.attempt});
      proto::wire::StopTrial m;
      m.trial = ra.trial;
      m.attempt = ra.attempt;
      m.reason = "the attempt ended: another host of it was lost or interrupted";
      m.grace_period_s = static_cast<uint32_t>(opt.default_grace_period_s);
      lingering_stops.push_back(std::move(m));
    } else if (Foreign(ra.trial)) {
      // One that ended there holds only its exit report (kept for its coordinator), not a slot:
      // counted, a worker that outlived its coordinator's state ran nothing new on those slots.
      if (ra.ended) ++foreign_ended;
      else w.foreign.insert({ra.trial, ra.attempt});
    } else {
      ack.stop.push_back(ra);
    }
  }
  if (!w.foreign.empty()) {
    Event(now, "ForeignTrainingJobs", "", "",
          wid + " runs " + std::to_string(w.foreign.size()) + " training job(s) this coordinator does not know (" +
              w.foreign.begin()->first + (w.foreign.size() > 1 ? ", ..." : "") +
              "): another coordinator's, or of another state directory. They are left to finish and hold their "
              "slots" + (foreign_ended ? " (" + std::to_string(foreign_ended) + " more ended there and hold none)" : "") +
              "; if this coordinator should know them, stop it and start it on their state directory");
  } else if (foreign_ended) {
    Event(now, "ForeignTrainingJobs", "", "",
          wid + " keeps the exit reports of " + std::to_string(foreign_ended) +
              " ended training job(s) this coordinator does not know: another coordinator's, or of another state "
              "directory. They hold no slot; the worker keeps the reports for their coordinator. If this "
              "coordinator should know them, stop it and start it on their state directory");
  }
  // Attempts assigned ahead stay queued behind their predecessor while it runs here; else
  // they have its slot (the worker starts them at once).
  std::vector<proto::wire::StopTrial> asks;  // after the ack
  // Stops of the attempts it holds that are being stopped: the first may never have left (the
  // coordinator stopped right after saving it) or been lost with the connection. Queued ones
  // first, as StopAll sends them.
  std::vector<proto::wire::StopTrial> stops;
  for (const auto& ra : r.running) {
    Trial* t = CurrentAttempt(ra.trial, ra.attempt);
    if (!t || !t->StopOwed() || !t->OnWorker(wid) || t->HostEnded(wid)) continue;
    t->stop_sent_ms = now;
    if (t->Queued()) asks.push_back(StopRequest(*t));
    else stops.push_back(StopRequest(*t));
  }
  asks.insert(asks.end(), stops.begin(), stops.end());
  for (Trial* t : queued) {
    if (w.running.count({t->after_trial, t->after_attempt})) {
      w.queued.insert({t->name, t->attempt});
      successor[{t->after_trial, t->after_attempt}] = t->name;
    } else {
      Promote(*t, now);
    }
    // Asked to move, and still queued there: the request may never have left (the coordinator
    // stopped right after saving it) and is asked again; the worker answers it once.
    if (t->moving) asks.push_back(MoveRequest(*t));
  }
  // Of those it holds, the ones that ended while it was away (their reports follow) are said
  // apart: re-attached counted them as running (a scale pass). Those queued behind them here
  // (started meanwhile, promoted by those reports) are re-attached too (a notify pass read 0).
  size_t ended_here = 0;
  for (const auto& ra : r.running) ended_here += ra.ended && w.running.count({ra.trial, ra.attempt}) ? 1 : 0;
  Event(now, "WorkerRegistered", "", "",
        wid + " host=" + r.host + " slots=" + std::to_string(r.slots) + " gpus=" + std::to_string(r.gpus.size()) +
            (r.running.empty() ? ""
                               : " re-attached=" + std::to_string(w.running.size() + w.queued.size() - ended_here) +
                                     (ended_here ? " ended-while-away=" + std::to_string(ended_here) : "") +
                                     " stopped=" + std::to_string(ack.stop.size())));
  out->push_back({wid, std::move(ack)});
  for (auto& m : asks) out->push_back({wid, std::move(m)});
  for (auto& m : lingering_stops) out->push_back({wid, std::move(m)});
}

bool CoordinatorCore::Impl::GangHostStopping(const std::string& trial, uint32_t attempt, const std::string& wid) const {
  auto it = trials.find(trial);
  if (it == trials.end() || it->second.attempt != attempt) return false;
  const std::vector<std::string>* hosts = EndedGangHosts(it->second);
  return hosts && std::find(hosts->begin(), hosts->end(), wid) != hosts->end();
}

namespace {
// The secondary statuses a stop's reason may begin with ("MaxWaitTimeExceeded: ..."): the
// training job then ends reading it (OnExited).
constexpr const char* kStopStatuses[] = {"MaxWaitTimeExceeded", "MaxRuntimeExceeded"};

// "AlgorithmError: algo-2 (worker w2): ..." for the host of a gang that ended it (`on_host`; ""
// for a single-host training job): SageMaker's kind of error stays first.
std::string WithHost(const std::string& reason, const std::string& on_host) {
  if (on_host.empty()) return reason;
  const size_t colon = reason.find(": ");
  const bool kind = colon != std::string::npos && colon < 40 && reason.find(' ') == colon + 1;
  return kind ? reason.substr(0, colon + 2) + on_host + reason.substr(colon + 2) : on_host + reason;
}
}  // namespace

bool CoordinatorCore::Impl::FromElsewhere(const std::string& wid, const std::string& trial, uint32_t attempt,
                                          const char* what, int64_t now) {
  auto it = trials.find(trial);
  if (it == trials.end() || it->second.attempt != attempt || !it->second.Active() || it->second.OnWorker(wid)) {
    return false;
  }
  const Trial& t = it->second;
  if (refused_reports.size() < 10000 && refused_reports.insert({wid, trial, attempt}).second) {
    std::string hosts;
    for (const auto& h : t.Hosts()) hosts += (hosts.empty() ? "" : ", ") + h;
    Event(now, "ReportRefused", t.tuning_job, trial,
          "worker " + wid + " sent " + what + " for attempt " + std::to_string(attempt) + ", which runs on " + hosts +
              "; ignored");
  }
  return true;
}

void CoordinatorCore::Impl::OnTrialStaging(const std::string& wid, const proto::wire::TrialStaging& m, int64_t now) {
  Trial* t = CurrentAttempt(m.trial, m.attempt);
  // Only from a worker it was placed on (FromElsewhere lets reports about an attempt that has
  // not started through), and only while it is launching: not once started (a late report) or
  // stopping. Each status once, in SageMaker's order (another host of a gang says it too):
  // Starting -> Downloading -> DownloadingTrainingImage -> Training. Uploading comes after
  // Training, from the worker whose program completed, and only then.
  if (!t || !t->OnWorker(wid) || t->stop_requested || t->secondary.empty()) return;
  const std::string& last = t->secondary.back().status;
  if (m.status == proto::wire::kUploading) {
    // After its program completed (Training -> Uploading), until the exit report says Completed;
    // from the worker of algo-1 (a gang's other hosts hand their files to it).
    if (!t->started || last != "Training" || wid != t->worker_id) return;
    Secondary(*t, "Uploading", now, "Uploading generated training model on worker " + wid + ": " + m.what);
    SaveTrial(*t);
    return;
  }
  if (t->started) return;
  const bool image = m.status == proto::wire::kDownloadingTrainingImage;
  if (last != "Starting" && !(image && last == proto::wire::kDownloading)) return;
  Secondary(*t, m.status, now,
            (image ? "Downloading the training image on worker " : "Downloading input data on worker ") + wid + ": " +
                m.what);
  SaveTrial(*t);
}

void CoordinatorCore::Impl::OnTrialStarted(const std::string& wid, const proto::wire::TrialStarted& m, int64_t now) {
  Trial* t = CurrentAttempt(m.trial, m.attempt);
  if (!t) return;
  // Each start teaches the offset of its worker's clock from this coordinator's (the least of the
  // last 16 is taken: one heard late only says more). Another host of a multi-host attempt
  // teaches it too: its end, heard late, is placed by it (OnTrialExited).
  auto w = workers.find(wid);
  const int64_t offset_sample = now - m.started_at_ms;
  auto sample = [&] {
    if (w == workers.end() || m.started_at_ms <= 0) return;
    w->second.clock_samples.push_back(offset_sample);
    if (w->second.clock_samples.size() > 16) w->second.clock_samples.pop_front();
  };
  // Each host's start by its own worker's clock: its end, by the same clock, measures its run,
  // also across a restart of this coordinator (which forgets the offsets).
  for (auto& h : t->gang) {
    if (h.worker_id == wid && h.worker_started_ms == 0 && m.started_at_ms > 0) h.worker_started_ms = m.started_at_ms;
  }
  if (t->started) {
    if (!t->gang.empty()) {
      sample();
      SaveTrial(*t);
    }
    return;
  }
  if (t->Queued()) {
    // Its predecessor's program has ended (the worker starts it only then) and its exit report
    // is on its way, or the predecessor never reached the worker: the slot is this attempt's
    // from now on, and heartbeats keep checking the predecessor (WorkerInfo::ending).
    auto w = workers.find(wid);
    if (w != workers.end() && w->second.running.erase({t->after_trial, t->after_attempt}) > 0) {
      w->second.ending.insert({t->after_trial, t->after_attempt});
    }
    Promote(*t, now);
  }
  t->moving = false;  // started before it was asked to move (or to make way): it stays
  t->withdrawing = false;
  t->started = true;
  t->unstarted_assign.reset();
  // When it started by this coordinator's clock: now, unless the report came seconds late (it
  // started during a coordinator stall: its start and end were both dated at the stall's end).
  int64_t start_at = now;
  if (w != workers.end() && m.started_at_ms > 0) {
    if (const auto offset = w->second.ClockOffset()) {
      const int64_t then = m.started_at_ms + *offset;
      if (now - then > kHeardLateMs && then >= t->assigned_ms) start_at = then;
    }
    sample();
  }
  t->attempt_start_ms = start_at;
  t->worker_started_ms = m.started_at_ms;
  t->worker_started_on = wid;
  // Billed as managed spot: a spot worker and a definition with EnableManagedSpotTraining (one
  // without it runs there only under --spot-workers-take all, at the on-demand price).
  {
    const TuningJob* j = Job(t->tuning_job);
    const auto* d = j ? Definition(*j, t->definition_name) : nullptr;
    t->on_spot = w != workers.end() && w->second.reg.spot && d && d->enable_managed_spot_training.value_or(false);
  }
  if (t->start_ms == 0) {
    t->start_ms = start_at;
    CreatedBy(*t, start_at);
  }
  // An attempt assigned ahead starts on the worker as soon as its predecessor's program ends,
  // which can be just after the coordinator asked it to stop (a completion criterion met by that
  // predecessor): it stays Stopping, its history never goes back to Training.
  if (!t->stop_requested) {
    Secondary(*t, "Training", std::max(start_at, t->secondary.empty() ? start_at : t->secondary.back().start_ms),
              t->gang.empty() ? "Training in progress on " + wid
                              : "Training in progress on " + std::to_string(t->gang.size()) + " hosts (algo-1 on " +
                                    t->worker_id + ")");
  }
  SaveTrial(*t);
}

bool CoordinatorCore::Impl::TakesMetric(Trial& t, size_t host, const std::string& name, int64_t now,
                                       std::vector<std::string>* replaced) {
  if (t.gang.empty()) return true;
  auto it = t.metric_host.find(name);
  if (it != t.metric_host.end() && it->second < host) return false;  // a lower host reports it
  if (it != t.metric_host.end() && it->second > host) replaced->push_back(name);
  if (it == t.metric_host.end() || it->second != host) t.metric_host_since[name] = now;
  t.metric_host[name] = host;
  return true;
}

// How long a gang's metric must have come from a host other than algo-1 before early stopping
// and Hyperband decide on its values: hosts that print the same metric at the same pace (every
// rank its own loss) reach the coordinator a flush apart, and the first to arrive is not always
// the lowest. Decided on the first batch of a higher host, the best configuration of a Hyperband
// job was stopped on algo-2's value before algo-1's, 0.05 s behind, arrived.
constexpr int64_t kMetricHostSettleMs = 3000;

bool CoordinatorCore::Impl::MetricSettled(const Trial& t, const std::string& name, int64_t now) const {
  auto host = t.metric_host.find(name);
  if (t.gang.empty() || host == t.metric_host.end() || host->second == 0) return true;
  auto since = t.metric_host_since.find(name);
  return since == t.metric_host_since.end() || now - since->second >= kMetricHostSettleMs;  // none after a restart
}

bool CoordinatorCore::Impl::OnMetrics(const std::string& wid, const proto::wire::MetricPoints& m, int64_t now, std::vector<Outgoing>* out) {
  Trial* t = CurrentAttempt(m.trial, m.attempt);
  if (!t) return true;  // stale attempt
  const size_t host = t->HostIndex(wid);
  uint64_t& seq = t->SeqOf(host);
  if (m.seq <= seq) return true;                  // a duplicate batch
  if (m.seq != seq + 1) return false;             // a gap: wait for the missing batch
  TuningJob* j = Job(t->tuning_job);
  std::string objective = j ? ObjectiveMetricFor(*j, t->definition_name) : "";
  const bool track = j && TracksCurves(*j);
  std::vector<MetricRow> rows;
  std::vector<std::string> replaced;  // metrics a lower host of a gang takes over from a higher one
  for (const auto& p : m.points) {
    const size_t taken_over = replaced.size();
    if (!TakesMetric(*t, host, p.name, now, &replaced)) continue;
    if (replaced.size() > taken_over) {  // from now on this host's: the other's values go
      if (p.name == objective) {
        t->curve.clear();
        t->curve_decided = 0;
      }
      for (auto it = rows.begin(); it != rows.end();) it = it->name == p.name ? rows.erase(it) : it + 1;
    }
    // The objective of a job that tracks curves (early stopping, Hyperband) is kept whole: its
    // rules index a curve by emission, and a restart rebuilds the curve from what is stored.
    if (CoordinatorCore::KeepsMetricPoint(p.step) || (track && p.name == objective)) {
      rows.push_back({t->name, m.attempt, m.seq, p.name, p.value, p.timestamp_ms, p.step});
    }
    t->final_metrics[p.name] = p.value;
    t->final_metric_ms[p.name] = p.timestamp_ms;
    if (p.name == objective) {
      t->objective = p.value;
      if (track) t->curve.push_back(p.value);
    }
  }
  seq = m.seq;
  Reindex(*t);
  Note(InTransaction(store, [&] {
    for (const auto& name : replaced) HPO_RETURN_IF_ERROR(store->DeleteMetrics(t->name, m.attempt, name));
    HPO_RETURN_IF_ERROR(store->AppendMetrics(rows));
    return store->PutTrial(TrialToRow(*t));
  }));
  // Early stopping and Hyperband look at each new point once, when its host is settled, and
  // not while the points come seconds late (after a coordinator outage): the program may have
  // ended meanwhile, its exit report right behind them, and a chaos pass saw a training job that
  // had completed marked Stopping by early stopping first. They are decided on with the next
  // point that comes on time, if the program is still running.
  int64_t newest = 0;
  for (const auto& p : m.points) {
    if (p.name == objective) newest = std::max(newest, p.timestamp_ms);
  }
  bool late = false;
  if (auto w = workers.find(wid); w != workers.end() && newest > 0) {
    if (const auto offset = w->second.ClockOffset()) late = now - (newest + *offset) > kHeardLateMs;
  }
  if (track && !late && t->curve.size() > t->curve_decided && MetricSettled(*t, objective, now)) {
    const size_t from = t->curve_decided;
    t->curve_decided = t->curve.size();
    MaybeStopEarly(*j, *t, from, now, out);
  }
  return true;
}

void CoordinatorCore::Impl::OnLogLines(const std::string& wid, const proto::wire::LogLines& m, int64_t now_ms) {
  auto it = trials.find(m.trial);
  if (it == trials.end() || m.attempt > it->second.attempt) return;  // unknown trial or attempt
  // Head and tail (CoordinatorCore::kLogHeadLines, kLogTailLines): lines past the head are
  // kept until they are more than kLogTailLines behind the newest one.
  constexpr uint64_t kHead = CoordinatorCore::kLogHeadLines, kTail = CoordinatorCore::kLogTailLines;
  Trial& t = it->second;
  if (m.first_line > kLogLineLimit - m.lines.size()) return;  // numbers no program reaches
  // A gang host's lines are numbered apart: 1 + its index (also after the attempt ended).
  uint32_t host = 0;
  if (auto g = t.gang_workers.find(m.attempt); g != t.gang_workers.end()) {
    auto at = std::find(g->second.begin(), g->second.end(), wid);
    if (at != g->second.end()) host = static_cast<uint32_t>(at - g->second.begin() + 1);
  }
  uint64_t& seen = t.log_lines_seen[{m.attempt, host}];  // one past the highest line number received
  const uint64_t before = seen;
  if (!m.lines.empty()) seen = std::max<uint64_t>(seen, m.first_line + m.lines.size());
  const uint64_t tail_from = seen > kHead + kTail ? seen - kTail : kHead;  // lines in [kHead, tail_from) go
  std::vector<LogRow> rows;
  for (size_t i = 0; i < m.lines.size(); ++i) {
    uint64_t line = m.first_line + i;
    if (line >= kHead && line < tail_from) continue;  // a re-sent line of the dropped middle
    const std::string& text = m.lines[i];
    rows.push_back({0, m.trial, m.attempt, LogLineKey(host, line),
                    text.size() <= CoordinatorCore::kLogLineBytes ? text : proto::wire::StoredLogLine(text), now_ms});
  }
  if (!rows.empty()) Note(store->AppendLogs(rows));
  if (tail_from > kHead && seen > before) {
    // The window moved: drop what fell out of it (one range delete per batch; the rows already
    // dropped are not there to scan).
    Note(store->TrimLogs(m.trial, m.attempt, LogLineKey(host, kHead), LogLineKey(host, tail_from)));
  }
}

void CoordinatorCore::Impl::Forgive(WorkerInfo& w, int64_t now) {
  w.infra_streak = 0;
  w.rest_ms = 0;
  w.refused_jobs.clear();
  if (!w.resting.empty()) {
    w.resting_until_ms = 0;
    w.resting.clear();
    Event(now, "WorkerBack", "", "",
          w.reg.worker_id + ": the training job it could not start no worker could: its fault, not this worker's");
  }
}

void CoordinatorCore::Impl::NoteInfraError(const std::string& wid, const Trial& t, const std::string& reason,
                                          int64_t now, bool refusal) {
  auto it = workers.find(wid);
  if (it == workers.end()) return;
  WorkerInfo& w = it->second;
  if (refusal) w.refused_jobs.insert(t.tuning_job);
  if (reason.find(proto::wire::kEndedWithWorkerProcess) != std::string::npos) {
    if (w.ended_process_counted) return;
    w.ended_process_counted = true;
  }
  if (++w.infra_streak < kInfraErrorsBeforeRest) return;
  // Resting already: the attempts it had when the rest began fail too (a burst of them, in
  // milliseconds), which is one fault, not a reason to rest longer.
  if (w.resting_until_ms > now) return;
  w.rest_ms = std::min<int64_t>(w.rest_ms > 0 ? w.rest_ms * 2 : kFirstRestMs, kLongestRestMs);
  w.resting_until_ms = now + w.rest_ms;
  w.resting = std::to_string(w.infra_streak) + " infrastructure errors in a row, the last: " + Truncate(reason, 300) +
              "; no new training job for " + std::to_string(w.rest_ms / 1000) + " s";
  Event(now, "WorkerResting", t.tuning_job, t.name, wid + ": " + w.resting);
}

bool CoordinatorCore::Impl::OnExited(const std::string& wid, const proto::wire::TrialExited& reported, int64_t now,
                                     std::vector<Outgoing>* out) {
  Trial* t = CurrentAttempt(reported.trial, reported.attempt);
  if (!t) return true;
  // Stopped because its worker was evicted (Evict), and by nothing else: an interruption, so it
  // runs again elsewhere without spending a retry.
  proto::wire::TrialExited as_interrupted;
  const bool evicted = !t->evicted.empty() && !t->stop_requested && reported.status == "Stopped";
  // Interrupted (a spot notice) while the coordinator stopped it (MaxWaitTimeInSeconds, a user's
  // stop): its stop wins, as the worker now reports it; an older worker's report, or one that
  // raced the stop, read as an infrastructure error that never ran again (a spot pass).
  const bool stopped_anyway = t->stop_requested && reported.status == "Interrupted";
  if (evicted) {
    as_interrupted = reported;
    as_interrupted.status = "Interrupted";
    as_interrupted.failure_reason = t->evicted;
  } else if (stopped_anyway) {
    as_interrupted = reported;
    as_interrupted.status = as_interrupted.secondary_status = "Stopped";
    as_interrupted.failure_reason = "Stopped: " + t->stop_reason;
  }
  const proto::wire::TrialExited& m = evicted || stopped_anyway ? as_interrupted : reported;
  const size_t host = t->HostIndex(wid);
  if (m.seq > t->SeqOf(host)) return false;
  if (t->moving) {
    // Given back unstarted, as asked (MoveQueuedToFreeWorkers, or a fair-share Withdraw): queued
    // for the free worker, or for a slot after the job that waits.
    t->moving = false;
    const bool withdrawn = std::exchange(t->withdrawing, false);
    TuningJob* owner = Job(t->tuning_job);
    if (m.status == "Stopped" && !t->started && !t->stop_requested && owner && owner->status == "InProgress") {
      auto from = workers.find(wid);
      if (withdrawn && from != workers.end() && !from->second.cordoned.empty()) {
        TakeBack(*t, now, "worker " + wid + " is cordoned", "withdrawn from cordoned worker " + wid);
      } else if (withdrawn) {
        TakeBack(*t, now, "another tuning job waits for a slot", "withdrawn from its worker for another tuning job");
      } else {
        TakeBack(*t, now, "another worker is free to run it now",
                 "moved from busy worker " + t->worker_id + " to a free one");
      }
      return true;
    }
  }
  const bool queued_ahead = t->Queued();  // ReleaseSlot forgets it
  int64_t end_at = now;  // the training job's end: now, or earlier when its report came late
  // The training time as the worker measured it (its own clock at both ends): the coordinator's
  // clock counts from when it heard of the start to when it hears of the end, which a coordinator
  // outage or pause stretches or squeezes. An attempt cannot have run longer than since it was
  // assigned: a larger figure (a worker clock that jumped) is not believed.
  // (A multi-host attempt's end is its last host's: placed below, host by host.)
  if (t->gang.empty() && t->started && t->attempt_start_ms > 0 && t->worker_started_ms > 0 &&
      wid == t->worker_started_on && m.ended_at_ms >= t->worker_started_ms) {
    const int64_t ran = m.ended_at_ms - t->worker_started_ms;
    if (RunBelievable(*t, ran, now)) {
      // Heard of the start on time and of the end late (a coordinator outage): it ended then.
      // Only when late by seconds (kHeardLateMs). The completion criteria count objectives in
      // the order heard, not by end time (Trial::counted, which a restart replays).
      if (now - (t->attempt_start_ms + ran) > kHeardLateMs) end_at = t->attempt_start_ms + ran;
      const int64_t began = now - ran;
      // The first attempt's start is the training job's: it moves back with it (a start heard
      // of late, by seconds as the end above), never forward (an end heard of late). Moved back
      // by the milliseconds a message takes, TrainingStartTime differed between a training job's
      // Training event and its last, and from its Training transition.
      if (t->start_ms == t->attempt_start_ms && t->start_ms - began > kHeardLateMs) {
        t->start_ms = began;
        CreatedBy(*t, began);
      }
      t->attempt_start_ms = began;
    }
  }
  TuningJob* j = Job(t->tuning_job);
  std::string objective = j ? ObjectiveMetricFor(*j, t->definition_name) : "";
  if (!t->gang.empty() && (!t->OnWorker(wid) || t->HostEnded(wid))) return true;  // not a host of it, or a repeat
  std::vector<std::string> replaced;  // a gang's metrics: of the lowest host that reports each
  for (const auto& fm : m.final_metrics) {
    if (!TakesMetric(*t, host, fm.name, now, &replaced)) continue;
    if (std::isnan(fm.value)) {  // its last match was "nan" or "inf": no final value, whatever came before
      t->final_metrics.erase(fm.name);
      t->final_metric_ms.erase(fm.name);
      if (fm.name == objective) t->objective.reset();
      continue;
    }
    // The last value seen at the end; a value the points already carried keeps their time.
    if (!t->final_metrics.count(fm.name) || t->final_metrics[fm.name] != fm.value || !t->final_metric_ms.count(fm.name)) {
      t->final_metric_ms[fm.name] = m.ended_at_ms > 0 ? m.ended_at_ms : now;
    }
    t->final_metrics[fm.name] = fm.value;
    if (fm.name == objective) t->objective = fm.value;
  }
  for (const auto& name : replaced) {  // a lower host's final value, where a higher one sent points
    Note(store->DeleteMetrics(t->name, m.attempt, name));
    if (name == objective) {
      t->curve.clear();
      t->curve_decided = 0;
    }
  }
  std::string on_host;  // which host of a gang ended it, for the failure reason
  if (!t->gang.empty()) {  // a host of it that had not ended (checked above)
    t->gang[host].exit = m.status;
    // When this host ended, for a report heard seconds late: by its run as its worker measured it
    // (start and end on one clock, the start kept with the attempt across a restart), else by the
    // offset learnt from its worker's starts. The attempt ends with its last host (or the first
    // that failed): a job whose hosts ended in a coordinator outage read TrainingEndTime, and 12 s
    // of training for 3, from the restart.
    int64_t host_end = now;
    const int64_t began = t->gang[host].worker_started_ms;
    if (t->started && t->attempt_start_ms > 0 && began > 0 && m.ended_at_ms >= began) {
      const int64_t ran = m.ended_at_ms - began;
      const int64_t then = t->attempt_start_ms + ran;
      if (RunBelievable(*t, ran, now) && now - then > kHeardLateMs) host_end = then;
    } else if (auto w = workers.find(wid); t->started && t->attempt_start_ms > 0 && m.ended_at_ms > 0) {
      const std::optional<int64_t> offset = w != workers.end() ? w->second.ClockOffset() : std::nullopt;
      const int64_t then = offset ? m.ended_at_ms + *offset : now;
      if (offset && now - then > kHeardLateMs && then >= t->attempt_start_ms) host_end = then;
    }
    t->gang[host].ended_ms = host_end;
    end_at = host_end;
    on_host = "algo-" + std::to_string(host + 1) + " (worker " + wid + "): ";
    if (t->PeersEnded()) out->push_back({t->gang[0].worker_id, proto::wire::GangPeersEnded{t->name, t->attempt}});
    // Another host ran out the training job's MaxRuntimeInSeconds (every host's worker keeps the
    // limit; the first to reach it is often not algo-1): the training job is over, and it ends as
    // a stop the coordinator asked for, below. The others are told to stop, and algo-1's report
    // (once it has merged and uploaded) ends it, reading MaxRuntimeExceeded (the Stopped branch).
    // Before, this report ended it at once, Stopped while algo-1 still wrote model.tar.gz.
    if (m.status == "Stopped" && m.secondary_status == "MaxRuntimeExceeded" && !t->stop_requested && host != 0 &&
        t->gang[0].exit.empty()) {
      std::string reason = MaxRuntimeReason(*t, t->training_ms, WithHost(m.failure_reason, on_host));
      if (reason.rfind("MaxRuntimeExceeded", 0) != 0) reason = "MaxRuntimeExceeded: " + reason;
      StopTrialMsg(*t, reason, now, out, wid);  // not the host that stopped itself
    }
    // A stop the coordinator asked for (every host was told): the attempt ends with algo-1's
    // report, which comes once it has merged what the others handed over and uploaded the
    // archives, as a SageMaker training job reads Stopped once its model is up. Another host's
    // report only says it is done (algo-1 is told when all are, above). Before, the first
    // host's report ended it, and the job read Stopped (its tuning job Completed) while algo-1
    // still wrote model.tar.gz (the soak saw the hand-over folder then). A lost algo-1 still
    // ends the attempt through its lease.
    const bool stopping = t->stop_requested && (m.status == "Stopped" || m.status == "Completed");
    if (stopping && host != 0 && t->gang[0].exit.empty() && workers.count(t->gang[0].worker_id)) {
      SaveTrial(*t);
      return true;
    }
    if (m.status == "Completed" && !(stopping && host == 0)) {
      const bool all = std::all_of(t->gang.begin(), t->gang.end(), [](const auto& h) { return h.exit == "Completed"; });
      if (!all) {  // the attempt completes when every host has
        SaveTrial(*t);
        return true;
      }
      for (const auto& h : t->gang) end_at = std::max(end_at, h.ended_ms);
    } else if (m.status != "Completed") {  // the first host that ends otherwise ends the attempt
      StopGangPeers(*t, wid, "algo-" + std::to_string(host + 1) + " ended " + m.status, out);
    }
    // Its training time runs to that end (ReleaseSlot counts to now from attempt_start_ms).
    if (end_at < now && t->started && t->attempt_start_ms > 0 && end_at >= t->attempt_start_ms) {
      t->attempt_start_ms = now - (end_at - t->attempt_start_ms);
    }
  }
  // When it ended, for its transitions: a report heard late (after a coordinator outage) is dated
  // by the worker's measure of the attempt, never before the transition it follows (the
  // transitions said 8 s of training that never happened, against a right TrainingTimeInSeconds).
  const int64_t ended_at = std::max(end_at, t->secondary.empty() ? end_at : t->secondary.back().start_ms);
  // Queued ahead there and never started (its worker got a notice, or shut down): no training
  // job yet, so no interruption either; it waits in the queue, and its creation, CreationTime and
  // the MaxWaitTimeInSeconds clock come when it is launched. (It was counted Interrupted, ran out
  // its MaxWait in the queue, and took a place of MaxNumberOfTrainingJobs never training: a spot pass.)
  if (m.status == "Interrupted" && !t->stop_requested && !t->started && t->start_ms == 0 && t->training_ms == 0 &&
      (queued_ahead || t->assigned_ahead) && j && j->status == "InProgress") {
    t->interrupted_on = wid;
    TakeBack(*t, now, "its worker was interrupted (" + m.failure_reason + ")", "its worker was interrupted");
    // Promoted already (its predecessor's report came first), it is a training job: it stays
    // listed, waiting, and its MaxWaitTimeInSeconds counts from that creation, as SageMaker's.
    if (!queued_ahead) t->assigned_ahead = false;
    return true;
  }
  if (m.status == "Interrupted" && !t->stop_requested && j && j->status == "InProgress") {
    Interrupted(*t, m.failure_reason.empty() ? "capacity interrupted" : m.failure_reason, now, ended_at);
    return true;
  }
  if (m.status == "InfraError" && m.failure_reason == proto::wire::kEndedWithWorkerProcess &&
      ended_with_stopped_process.erase({t->name, t->attempt}) > 0 && !t->stop_requested && j &&
      j->status == "InProgress") {
    Interrupted(*t, kStoppedWithItsStore, now, ended_at);
    return true;
  }
  if (m.status == "InfraError" || m.status == "Interrupted") {
    const std::string reason = WithHost(m.failure_reason.empty() ? m.status : m.failure_reason, on_host);
    // It could not start the program (or reach its S3): counted against this tuning job's refusals.
    const bool refusal =
        m.status == "InfraError" && !t->started && proto::wire::IsCannotStartReason(m.failure_reason, wid);
    if (m.status == "InfraError") NoteInfraError(wid, *t, reason, now, refusal);
    // A worker that could not start the program (its disk, its image mapping) says nothing about
    // the training job while another worker that can serve it has not tried: it runs again without
    // spending a retry (elsewhere when it can; the refusing worker soon rests). One broken worker,
    // handed twice its slots by assign ahead, failed a whole tuning job in milliseconds before.
    if (m.status == "InfraError" && !t->started && !t->stop_requested && t->setup_requeues < kSetupRequeues && j &&
        j->status == "InProgress" && j->completion_reason.empty()) {
      t->setup_refused_by.insert(wid);
      // Only workers that could ever serve it count (a CPU worker is no second opinion on a GPU
      // job's program: the attempt went back to the one refusing GPU worker ten times).
      const auto plans = HostsFor(*j, t->definition_name, t->resource_option);
      // A worker resting after infrastructure errors is no second opinion now either: waiting
      // for it stalled every training job when all the workers lacked the same thing (hpo run's
      // share one environment: no S3 credentials rested them all for minutes).
      const bool untried = std::any_of(workers.begin(), workers.end(), [&](const auto& w) {
        return !t->setup_refused_by.count(w.first) && w.second.draining.empty() && w.second.resting_until_ms <= now &&
               !plans.empty() && CouldEverServe(w.second, plans[0].req);
      });
      if (untried) {
        t->setup_requeues++;
        t->interrupted_on = wid;  // placed elsewhere when it can be
        Requeue(*t, "worker " + wid + " could not start it: " + reason, now);
        Secondary(*t, "Starting", now, "waiting for a slot (worker " + wid + " could not start it; another will try)");
        SaveTrial(*t);
        return true;
      }
      if (t->gang.empty() && refusal) {
        // Every worker that can serve it could not run its program (or pull its image): more
        // likely the training job's program is what is missing (a mistyped path, an interpreter
        // no worker has, an image in a registry none can reach) than every worker. The refusals
        // do not rest the workers (every worker rested after three such training jobs, and the
        // tuning job stalled); the attempt fails as an infrastructure error, which RetryStrategy
        // retries (a worker that can run it may have come by then).
        std::string who;
        for (const auto& id : t->setup_refused_by) who += (who.empty() ? "" : ", ") + id;
        // Every worker its refusals counted against, this training job's or another of the job's
        // (with several attempts in flight, one worker rested on three of them before any one had
        // been refused by all, and rested again, longer, each time it came back).
        for (auto& [id, w] : workers) {
          if (t->setup_refused_by.count(id) || w.refused_jobs.count(t->tuning_job)) Forgive(w, now);
        }
        const std::string said = m.failure_reason.substr(proto::wire::CannotStartReason(wid, "").size());
        InfraFailure(*t,
                     "InternalServerError: no worker could start it (every worker that can serve it refused: " + who +
                         "): " + said +
                         (proto::wire::IsCannotStartReason(m.failure_reason, wid, /*program=*/true)
                              ? "; check the training image or program path"
                          : said.rfind("cannot pull trainingImage ", 0) == 0
                              ? "; check the image's name and the workers' access to its registry, or map it to a "
                                "program on the workers (hpo worker --image NAME=COMMAND; hpo run --image)"
                          : said.find("s3://") != std::string::npos
                              ? "; check the workers' S3 endpoint (hpo worker or hpo run --s3-endpoint, "
                                "AWS_ENDPOINT_URL_S3) "
                                "and credentials (AWS_ACCESS_KEY_ID, AWS_PROFILE)"
                              : ""),
                     now, wid);
        return true;
      }
    }
    InfraFailure(*t, reason, now, wid, ended_at);
    return true;
  }
  if (auto w = workers.find(wid); w != workers.end()) {  // it ran a training job to its end: whole
    w->second.infra_streak = 0;
    w->second.rest_ms = 0;
    w->second.refused_jobs.clear();
  }
  const std::vector<std::string> hosts = t->Hosts();  // before ReleaseSlot forgets them
  const int64_t trained_before = t->training_ms;       // by the earlier attempts
  const std::string worker_said = m.secondary_status == "MaxRuntimeExceeded"
                                      ? MaxRuntimeReason(*t, trained_before, m.failure_reason)
                                      : m.failure_reason;
  ReleaseSlot(*t, now);
  KeepWarm(*t, hosts, now);
  t->end_ms = end_at;
  // Its last transitions are dated by its end too (a report heard late, after a coordinator
  // outage, closed Training seconds after TrainingEndTime), never before the one they follow.
  const int64_t ended = std::max(end_at, t->secondary.empty() ? end_at : t->secondary.back().start_ms);
  // No start time for an attempt whose program never ran (a start failure, a stop while it
  // was staging or queued ahead); TrialStarted always comes before the exit report.
  if (t->start_ms == 0 && t->started) t->start_ms = now;
  if (m.status == "Completed") {
    // Unless the worker said so when it began (OnTrialStaging): a stop asked for meanwhile came
    // between, and Uploading was said twice (the second for no time).
    bool said_uploading = false;
    for (auto s = t->secondary.rbegin(); s != t->secondary.rend() && s->status != "Training"; ++s) {
      said_uploading = said_uploading || s->status == "Uploading";
    }
    if (!said_uploading) {
      Secondary(*t, "Uploading", ended);
      // Its own state change (InProgress, Uploading), as when the worker said it as it began:
      // heard only with the exit report (which a worker sends again to a restarted coordinator),
      // it was folded into Completed's, and its event never sent.
      if (opt.notify) SaveTrial(*t);
    }
    t->state = TrialState::kCompleted;
    if (j && t->started) {
      auto& d = Index(*j).durations;
      d.push_back(now - t->start_ms);
      if (d.size() > 25) d.pop_front();
    }
    Secondary(*t, "Completed", ended);
  } else if (m.status == "Stopped") {
    t->state = TrialState::kStopped;
    // A stop of the coordinator's whose reason names SageMaker's secondary status for it (its
    // MaxWaitTimeInSeconds; another host of a gang that ran out MaxRuntimeInSeconds) reads that.
    const auto named = std::find_if(std::begin(kStopStatuses), std::end(kStopStatuses), [&](const char* s) {
      return t->stop_reason.rfind(std::string(s) + ":", 0) == 0;
    });
    if (named != std::end(kStopStatuses)) {
      Secondary(*t, *named, ended, t->stop_reason);
    } else {
      // The worker's reason begins "Stopped: " (its log says so); the transition is Stopped already
      // (it read "Stopped  Stopped: early stopping ...").
      const std::string status = m.secondary_status.empty() ? "Stopped" : m.secondary_status;
      const bool doubled = status == "Stopped" && worker_said.rfind("Stopped: ", 0) == 0;
      Secondary(*t, status, ended, doubled ? worker_said.substr(9) : worker_said);
    }
  } else {
    t->state = TrialState::kFailed;
    t->failure_reason = Truncate(WithHost(m.failure_reason.empty() ? "AlgorithmError: the training program exited with code " +
                                                                      std::to_string(m.exit_code)
                                                                : m.failure_reason,
                                          on_host));
    Secondary(*t, "Failed", ended, t->failure_reason);
  }
  SaveTrial(*t);
  // Why, where there is a reason: `hpo events` says what happened and why.
  // A stop that came after the program had ended (an EarlyStopped event before it) is said, or
  // the history read as a training job both stopped early and Completed.
  const std::string why = t->state == TrialState::kFailed ? t->failure_reason
                          : t->state == TrialState::kStopped ? (t->stop_reason.empty() ? worker_said : t->stop_reason)
                          : t->stop_requested && !t->stop_reason.empty()
                              ? "its program ended on its own before the stop (" + t->stop_reason + ") reached it"
                              : std::string();
  // One queued ahead that never started when its tuning job ended was never a training job: its
  // history says it was withdrawn (Withdraw's event), not that a training job exited Stopped.
  if ((queued_ahead || t->assigned_ahead) && t->state == TrialState::kStopped && !t->started && t->attempt == 1 && j &&
      (j->status == "Stopping" || !j->completion_reason.empty())) {
    Withdraw(*t, now);
    if (!trials.count(m.trial)) return true;  // withdrawn (a store failure keeps it, stopped)
  }
  // The objective as printed elsewhere (%g, 10 digits): std::to_string's six decimals showed a
  // loss of 1e-09 as 0.000000.
  char value[40] = "";
  if (t->objective) std::snprintf(value, sizeof value, " objective=%.10g", *t->objective);
  Event(now, "TrialExited", t->tuning_job, t->name,
        std::string(TrialStateName(t->state)) + value + (why.empty() ? "" : ": " + why));
  return true;
}

std::string CoordinatorCore::Impl::MaxRuntimeReason(const Trial& t, int64_t trained_before, const std::string& worker_said) {
  const TuningJob* j = Job(t.tuning_job);
  const auto* d = j ? Definition(*j, t.definition_name) : nullptr;
  if (trained_before <= 0 || !d) return worker_said;
  // The worker knows only what this attempt was given: "its max runtime of 1200 s" read as a
  // limit the user never set, when MaxRuntimeInSeconds 3600 (or the default day) covers all
  // attempts together.
  const int64_t total = d->stopping_condition.value_or(proto::StoppingCondition{}).MaxRuntimeSeconds();
  auto seconds = [](int64_t ms) {  // tenths: "trained 2 s, had the 2 s left" of a 4 s limit hid 0.9 s
    char buf[32];
    std::snprintf(buf, sizeof buf, "%.1f", static_cast<double>(ms) / 1000);
    return std::string(buf);
  };
  return "MaxRuntimeExceeded: the training job ran longer than its max runtime of " + std::to_string(total) +
         " s, which covers all its attempts together: the attempts before this one (attempt " +
         std::to_string(t.attempt) + ") trained " + seconds(trained_before) + " s of it, and this one had the " +
         seconds(std::max<int64_t>(0, total * 1000 - trained_before)) + " s left";
}

void CoordinatorCore::Impl::Withdraw(Trial& t, int64_t now) {
  TuningJob* j = Job(t.tuning_job);
  if (!j) return;
  const std::string name = t.name, job = j->name;
  if (Status s = store->DeleteTrial(name); !s.ok()) {
    Note(s);
    return;  // kept as a stopped training job: nothing is lost
  }
  JobIndex& ix = Index(*j);
  const size_t i = static_cast<size_t>(t.index > 0 ? t.index - 1 : 0);
  if (i < ix.history.size()) ix.history[i].curve = nullptr;  // the trial's curve goes with it
  j->trials.erase(std::remove(j->trials.begin(), j->trials.end(), name), j->trials.end());
  trials.erase(name);
  ForgetNotified("trial:" + name);
  // (Stopping: its running training jobs still have their grace period; "ended" was said then too.)
  Event(now, "TrainingJobWithdrawn", job, name,
        std::string("assigned ahead to a busy slot, never started: the tuning job ") +
            (j->status == "Stopping" ? "was stopped first" : "ended first") +
            ", so it is not one of its training jobs");
}

bool CoordinatorCore::Impl::Foreign(const std::string& trial) {
  if (trials.count(trial)) return false;
  const std::string job = TuningJobOfTrialName(trial);
  return job.empty() || Job(job) == nullptr;
}

std::set<std::string> CoordinatorCore::Impl::DeletedHere(const std::vector<std::string>& unknown,
                                                          std::vector<std::string>* log) {
  std::set<std::string> out;
  auto deleted = store->DeletedTrials(unknown);
  if (!deleted.ok() && log) log->push_back(deleted.status().ToString());
  std::map<std::string, bool> unrecorded;  // a store of an older build: per tuning job, one query
  for (const auto& name : unknown) {
    if (deleted.ok() && deleted->count(name)) {
      out.insert(name);
      continue;
    }
    const std::string job = TuningJobOfTrialName(name);
    if (job.empty()) continue;
    auto known = unrecorded.find(job);
    if (known == unrecorded.end()) {
      auto was = store->DeletedUnrecorded(job);
      known = unrecorded.emplace(job, was.ok() && *was).first;
    }
    if (known->second) out.insert(name);
  }
  return out;
}

void CoordinatorCore::Impl::NoteProgramEnded(const proto::wire::AttemptRef& r, const std::string& wid) {
  if (!r.ended) return;
  auto it = trials.find(r.trial);
  if (it == trials.end() || it->second.attempt != r.attempt) return;
  Trial& t = it->second;
  if (t.gang.empty() ? t.OnWorker(wid) : t.gang[0].worker_id == wid) t.ended_attempt = r.attempt;
}

bool CoordinatorCore::Impl::KeptForItsCoordinator(const std::string& trial) {
  return Foreign(trial) && DeletedHere({trial}).empty();
}

void CoordinatorCore::Impl::Reconcile(WorkerInfo& w, const proto::wire::Heartbeat& h, int64_t now, std::vector<Outgoing>* out) {
  const std::string& wid = w.reg.worker_id;
  // What it held when it sent this: an attempt assigned after that (or within a lease of it,
  // still on its way) is not missing from it. Judged by `now`, a heartbeat read seconds late
  // behind a worker's metric flood re-queued attempts its worker had started, and they ran twice.
  const std::optional<int64_t> sent_at = w.HeartbeatSentAt(h.sent_ms, now);
  std::set<std::pair<std::string, uint32_t>> held;
  for (const auto& r : h.running) {
    held.insert({r.trial, r.attempt});
    auto it = trials.find(r.trial);
    const bool current = it != trials.end() && it->second.attempt == r.attempt &&
                         (it->second.Active() || it->second.state == TrialState::kInProgress) &&
                         it->second.OnWorker(wid);
    if (current) {
      Trial& t = it->second;
      NoteProgramEnded(r, wid);
      if (t.StopOwed() && now - t.stop_sent_ms >= kStopResendMs) {
        t.stop_sent_ms = now;  // still held there: the stop may have been lost (StopRequest)
        out->push_back({wid, StopRequest(t)});
      }
      // Algo-1 waits for it to pack its archives; the first may have been lost (not acknowledged).
      if (t.PeersEnded() && t.gang[0].worker_id == wid) {
        out->push_back({wid, proto::wire::GangPeersEnded{t.name, t.attempt}});
      }
      continue;
    }
    const bool ended_here = it != trials.end() && it->second.attempt == r.attempt && it->second.Terminal();
    if (ended_here) {  // its exit is being acknowledged; a stopped gang's algo-1 may wait for its peers
      TellAlgo1IfPeersGone(it->second, r.attempt, out);
      continue;
    }
    // A host of a gang's attempt that ended elsewhere (another host lost or interrupted), told to
    // stop: it saves and uploads its last checkpoints, which the retry (waiting for it,
    // OldestPending) resumes from. Revoked, it uploaded nothing and the retry lost its epochs.
    if (auto l = lingering.find({r.trial, r.attempt}); l != lingering.end() && l->second.count(wid)) {
      if (it != trials.end()) TellAlgo1IfPeersGone(it->second, r.attempt, out);
      continue;
    }
    if (it == trials.end() && Foreign(r.trial)) {  // another coordinator's: left to finish
      // Ended there, only its exit report kept for its coordinator: its slot is free.
      if (r.ended) w.foreign.erase({r.trial, r.attempt});
      else w.foreign.insert({r.trial, r.attempt});
      continue;
    }
    proto::wire::StopTrial m;
    m.trial = r.trial;
    m.attempt = r.attempt;
    // Revoked: the worker uploads nothing of the attempt (its artifacts path is the re-run's too;
    // worker/agent_impl.h lease_anchor_ms).
    m.reason = proto::wire::kStopReasonRevoked;
    m.grace_period_s = static_cast<uint32_t>(opt.default_grace_period_s);
    out->push_back({wid, std::move(m)});
  }
  for (auto f = w.foreign.begin(); f != w.foreign.end();) f = held.count(*f) ? std::next(f) : w.foreign.erase(f);
  std::vector<std::pair<std::string, uint32_t>> placed(w.running.begin(), w.running.end());
  placed.insert(placed.end(), w.queued.begin(), w.queued.end());
  placed.insert(placed.end(), w.ending.begin(), w.ending.end());
  for (const auto& key : placed) {
    if (held.count(key)) continue;
    if (ReleaseLingering(wid, key.first, key.second)) continue;  // its program is gone, its report too
    auto it = trials.find(key.first);
    if (it == trials.end() || it->second.attempt != key.second || !it->second.Active()) continue;
    if (it->second.HostEnded(wid)) continue;  // this host's part ended; the gang's other hosts run on
    if (!sent_at || *sent_at - it->second.assigned_ms < opt.lease_ms) continue;  // may still be on its way
    AttemptLost(it->second, "worker " + wid + " does not hold attempt " + std::to_string(key.second) +
                                " (its assignment was lost in transit)", now, wid);
  }
}

void CoordinatorCore::Impl::Handle(const std::string& wid, const proto::wire::Message& msg, int64_t now, std::vector<Outgoing>* out) {
  if (const auto* r = std::get_if<proto::wire::Register>(&msg)) {
    OnRegister(wid, *r, now, out);
    return;
  }
  auto w = workers.find(wid);
  if (w == workers.end()) {
    // Not registered (e.g. the coordinator restarted): ask it to register again.
    proto::wire::Error e;
    e.code = "NotRegistered";
    e.message = "worker " + wid + " is not registered with this coordinator; send Register";
    e.in_reply_to = static_cast<uint16_t>(proto::wire::TypeOf(msg));
    out->push_back({wid, std::move(e)});
    return;
  }
  w->second.last_seen_ms = now;
  if (const auto* h = std::get_if<proto::wire::Heartbeat>(&msg)) {
    // Placement's view of its free disk follows the worker's (0: it could not tell; kept).
    if (h->disk_mb > 0) w->second.reg.disk_mb = h->disk_mb;
    // Its stops (revoked attempts among them) before its ack: the worker's lease runs from an
    // acknowledged heartbeat, so by the time it reads the ack it has applied them (worker/
    // agent_impl.h lease_anchor_ms). Acked first, a worker paused past its lease read the ack,
    // took its lease for fresh and uploaded over the re-run's model before it read the stop.
    Reconcile(w->second, *h, now, out);
    proto::wire::Ack a;
    a.type = static_cast<uint16_t>(proto::wire::MsgType::kHeartbeat);
    a.seq = h->seq;
    out->push_back({wid, std::move(a)});
  } else if (const auto* s = std::get_if<proto::wire::TrialStarted>(&msg)) {
    // Kept for its own coordinator as its other reports are: acknowledged here, the worker
    // forgot it, and the right coordinator, back, had a Completed training job with no start
    // (TrainingStartTime, TrainingTimeInSeconds and BillableTimeInSeconds null).
    if (KeptForItsCoordinator(s->trial)) return;
    if (!FromElsewhere(wid, s->trial, s->attempt, "TrialStarted", now)) OnTrialStarted(wid, *s, now);
    out->push_back({wid, proto::wire::Ack{static_cast<uint16_t>(proto::wire::MsgType::kTrialStarted), s->trial, s->attempt, 0}});
  } else if (const auto* st = std::get_if<proto::wire::TrialStaging>(&msg)) {
    if (!FromElsewhere(wid, st->trial, st->attempt, "TrialStaging", now)) OnTrialStaging(wid, *st, now);
  } else if (const auto* m = std::get_if<proto::wire::MetricPoints>(&msg)) {
    if (KeptForItsCoordinator(m->trial)) return;
    if (FromElsewhere(wid, m->trial, m->attempt, "MetricPoints", now) || OnMetrics(wid, *m, now, out)) {
      out->push_back({wid, proto::wire::Ack{static_cast<uint16_t>(proto::wire::MsgType::kMetricPoints), m->trial, m->attempt, m->seq}});
    }
  } else if (const auto* x = std::get_if<proto::wire::TrialExited>(&msg)) {
    if (KeptForItsCoordinator(x->trial)) return;
    if (ReleaseLingering(wid, x->trial, x->attempt)) {  // a stopped gang host is done: its slot is free
      if (auto t = trials.find(x->trial); t != trials.end()) TellAlgo1IfPeersGone(t->second, x->attempt, out);
      SendDueDiscards(now, out);
    } else if (auto d = discards.find(x->trial); d != discards.end() && d->second.running.erase(wid)) {
      SendDueDiscards(now, out);  // a host that ran on through a coordinator restart has handed over
    }
    if (auto w = workers.find(wid); w != workers.end()) w->second.foreign.erase({x->trial, x->attempt});
    if (FromElsewhere(wid, x->trial, x->attempt, "TrialExited", now) || OnExited(wid, *x, now, out)) {
      out->push_back({wid, proto::wire::Ack{static_cast<uint16_t>(proto::wire::MsgType::kTrialExited), x->trial, x->attempt, x->seq}});
    }
  } else if (const auto* l = std::get_if<proto::wire::LogLines>(&msg)) {
    if (KeptForItsCoordinator(l->trial)) return;
    if (!FromElsewhere(wid, l->trial, l->attempt, "LogLines", now)) OnLogLines(wid, *l, now);
    out->push_back({wid, proto::wire::Ack{static_cast<uint16_t>(proto::wire::MsgType::kLogLines), l->trial, l->attempt, l->seq}});
  } else if (const auto* held = std::get_if<proto::wire::HeldTrials>(&msg)) {
    // Of the training jobs whose checkpoint directory the worker keeps, those that will run no
    // attempt more may go: ended ones, and those of a job deleted here (a fault pass found their
    // directories kept forever when the delete came before the worker asked). One this
    // coordinator does not know otherwise (another coordinator's) is not released: the worker
    // keeps what nobody vouches for.
    // Deleted ones are matched by name, not by their tuning job's: another coordinator's job of a
    // name deleted here is not this one's.
    proto::wire::ReleaseTrials release;
    std::vector<std::string> unknown;
    for (const auto& name : held->trials) {
      auto it = trials.find(name);
      if (it == trials.end()) unknown.push_back(name);
      else if (it->second.Terminal()) release.trials.push_back(name);
    }
    const std::set<std::string> deleted = DeletedHere(unknown, &log);
    for (const auto& name : unknown) {
      if (deleted.count(name)) release.trials.push_back(name);
    }
    if (!release.trials.empty()) out->push_back({wid, std::move(release)});
  } else if (const auto* n = std::get_if<proto::wire::InterruptionNotice>(&msg)) {
    // No new trial goes there; its running attempts end Interrupted (the worker stops them).
    // (Said so in `hpo workers`: a planned shutdown read as a spot reclaim there.)
    w->second.draining = std::string(n->planned ? kDrainingShutdown : kDrainingNotice) + n->reason;
    Event(now, n->planned ? "WorkerShuttingDown" : "InterruptionNotice", "", "", wid + ": " + n->reason);
    // A multi-host attempt with a host there ends with it: its other hosts are told to stop now,
    // as for an eviction (a Stopped one reads Interrupted: no retry spent). They trained on alone
    // for that host's whole grace period, until its exit report (a gang-faults pass: 10 s, up to
    // 240 s with the default grace). That worker stops its own host itself.
    for (const auto& [trial, attempt] : std::set<std::pair<std::string, uint32_t>>(w->second.running)) {
      Trial* t = CurrentAttempt(trial, attempt);
      if (!t || t->gang.empty() || !t->Active() || t->Queued() || t->stop_requested || !t->evicted.empty() ||
          t->HostEnded(wid)) {
        continue;
      }
      t->evicted = "algo-" + std::to_string(t->HostIndex(wid) + 1) + "'s worker " + wid +
                   (n->planned ? " is shutting down (" : " got an interruption notice (") + n->reason +
                   "); the training job runs again without spending a retry";
      Event(now, "GangHostInterrupted", t->tuning_job, t->name,
            "attempt " + std::to_string(t->attempt) + ": " + t->evicted);
      SaveTrial(*t);
      t->stop_sent_ms = now;
      SendToHosts(*t, StopRequest(*t), out, /*except=*/wid);
    }
  } else if (const auto* e = std::get_if<proto::wire::Error>(&msg)) {
    Event(now, "WorkerError", "", "", wid + ": " + e->code + ": " + e->message);
  }
}

}  // namespace hpo::coordinator
