// coordinator/core.cc: the public CoordinatorCore methods, persistence and lookups; the rest of
// CoordinatorCore::Impl is in the other core_*.cc files (coordinator/core_impl.h lists them).
#include "coordinator/core.h"

#include <atomic>
#include <chrono>
#include <set>
#include <string>

#include "coordinator/autotune.h"
#include "coordinator/core_impl.h"

namespace hpo::coordinator {

using proto::StringMap;

const char* TrialStateName(TrialState s) {
  switch (s) {
    case TrialState::kPending: return "Pending";
    case TrialState::kInProgress: return "InProgress";
    case TrialState::kCompleted: return "Completed";
    case TrialState::kFailed: return "Failed";
    case TrialState::kStopping: return "Stopping";
    case TrialState::kStopped: return "Stopped";
  }
  return "Unknown";
}

const char* TrainingJobStatusOf(const Trial& t) {
  return t.state == TrialState::kPending ? "InProgress" : TrialStateName(t.state);
}

std::pair<int64_t, int64_t> Trial::TrainingAndBillableSeconds(int64_t now, double spot_price_ratio) const {
  int64_t total = training_ms, spot = spot_training_ms;
  if (attempt_start_ms > 0 && now > attempt_start_ms) {
    total += now - attempt_start_ms;
    if (on_spot) spot += now - attempt_start_ms;
  }
  if (total <= 0 && start_ms == 0) return {0, 0};
  const double billable_ms = static_cast<double>(total - spot) + static_cast<double>(spot) * spot_price_ratio;
  // Whole seconds, rounded up: the API's minimum for both members is 1.
  auto secs = [](double ms) { return std::max<int64_t>(1, static_cast<int64_t>(std::ceil(ms / 1000.0))); };
  return {secs(static_cast<double>(total)), secs(billable_ms)};
}

const std::string& Trial::SecondaryStatus() const {
  static const std::string kStarting = "Starting";
  return secondary.empty() ? kStarting : secondary.back().status;
}

using core_detail::Lower;
using core_detail::Truncate;

namespace {
std::string WarpNote(double lambda) {
  char buf[64];
  std::snprintf(buf, sizeof buf, "; objectives warped (Yeo-Johnson lambda %.3f)", lambda);
  return buf;
}
}  // namespace

void CoordinatorCore::Impl::RecordSuggestion(const TuningJob& j, double seconds, int64_t now) {
  SuggestionStats& st = suggestions[Lower(j.name)];
  ++st.count;
  st.seconds_sum += seconds;
  st.seconds_max = std::max(st.seconds_max, seconds);
  const SuggestStats* s = j.strategy ? j.strategy->LastSuggestStats() : nullptr;
  st.last = s ? *s : SuggestStats{};
  st.last.seconds = seconds;
  if (!s) return;
  if (!s->fallback.empty()) ++st.fallbacks;
  if (s->exploit) ++st.exploits;
  char buf[256];
  // No device: no model ran (the start design, or a fallback the message names); "on -" said so badly.
  // A CUDA engine's fit runs its likelihood on the GPU too (FitOptions::engine), unless it said why not.
  std::snprintf(buf, sizeof buf, "%.4f s (fit %.4f s%s, acquisition %.4f s)%s%s, %zu observations, %zu pending",
                seconds, s->fit_seconds, s->fit_device_evaluations > 0 ? " on the GPU" : "", s->acq_seconds,
                s->device.empty() ? "" : " on ", s->device.c_str(), s->observations, s->pending);
  Event(now, "Suggestion", j.name, "",
        std::string(buf) + (s->fallback.empty() ? "" : "; without the model: " + s->fallback) +
            (s->failed > 0 ? "; " + std::to_string(s->failed) + " failed fantasised at the worst objective" : "") +
            (s->exploit ? "; the model's predicted best (one proposal per round of parallel trials)" : "") +
            (s->output_lambda != 1.0 ? WarpNote(s->output_lambda) : std::string()));
}

void CoordinatorCore::Impl::Note(const Status& s) {
  if (s.ok()) return;
  log.push_back(s.ToString());
  if (opt.on_store_failure) opt.on_store_failure(s);
}

void CoordinatorCore::Impl::SaveJob(TuningJob& j, int64_t now) {
  j.last_modified_ms = now;
  Note(store->PutJob(JobToRow(j)));
  // (no key built when notifications are off: every save on the dispatch path would pay for it)
  if (opt.notify) NoteState("job:" + Lower(j.name), {StateChange::Kind::kTuningJob, j.name}, NotifiedState(j));
}

void CoordinatorCore::Impl::SaveTrial(Trial& t) {
  Reindex(t);
  Note(store->PutTrial(TrialToRow(t)));
  if (!opt.notify) return;
  std::string state = NotifiedState(t);
  if (state.empty()) {  // not a training job to the API yet: notified from its launch
    // Nor from a save earlier in this step, before it was assigned ahead: that event told a
    // queued one InProgress (past MaxParallelTrainingJobs), with a CreationTime that later moved.
    DropPending("trial:" + t.name);
    return;
  }
  NoteState("trial:" + t.name, {StateChange::Kind::kTrainingJob, t.name}, std::move(state));
  // Its tuning job's counters and best training job moved: an event of it built before is redone.
  if (auto it = pending_last.find("job:" + Lower(t.tuning_job)); it != pending_last.end()) {
    pending[it->second].stale = true;
  }
}

void CoordinatorCore::Impl::MarkChanged(std::string key) {
  if (!opt.notify) return;
  if (auto it = pending_last.find(key); it != pending_last.end()) {
    pending[it->second].stale = true;  // built at the flush, as it is then
    return;
  }
  StateChange change;
  if (key.rfind("job:", 0) == 0) {
    const TuningJob* j = Job(key.substr(4));
    if (!j) return;
    change = {StateChange::Kind::kTuningJob, j->name};
  } else {
    change = {StateChange::Kind::kTrainingJob, key.substr(6)};
  }
  pending_last[key] = pending.size();
  pending.push_back({std::move(key), std::move(change), "", {}, false, false, ""});
}

void CoordinatorCore::Impl::BuildNotice(PendingNotice& p) {
  p.built = true;
  p.stale = false;
  p.failed.clear();
  p.rows.clear();
  try {
    p.rows = opt.notify(*self, p.change);
  } catch (const std::exception& e) {
    p.failed = e.what();
  }
}

void CoordinatorCore::Impl::NoteState(const std::string& key, const StateChange& change, std::string state) {
  if (auto last = pending_last.find(key); last != pending_last.end()) {
    PendingNotice& p = pending[last->second];
    if (!p.built) {  // a MarkChanged entry of this step: it becomes this state's, built now
      p.state = std::move(state);
      BuildNotice(p);
      return;
    }
    if (p.state == state) {  // the same state saved again: built again at the flush
      p.stale = true;
      return;
    }
  } else if (auto n = notified.find(key); n != notified.end() && n->second == state) {
    return;  // told already
  }
  PendingNotice p{key, change, std::move(state), {}, false, false, ""};
  BuildNotice(p);
  pending_last[key] = pending.size();
  pending.push_back(std::move(p));
}

void CoordinatorCore::Impl::FlushStateChanges() {
  if (!opt.notify || pending.empty()) return;
  std::vector<PendingNotice> notices;
  notices.swap(pending);
  pending_last.clear();
  std::map<std::string, size_t> last;  // key -> its last entry: the only one rebuilt when stale
  for (size_t i = 0; i < notices.size(); ++i) last[notices[i].key] = i;
  for (size_t i = 0; i < notices.size(); ++i) {
    PendingNotice& p = notices[i];
    const bool is_last = last[p.key] == i;
    // (An entry not built is a MarkChanged one: always its key's last.)
    if (!p.built || (p.stale && is_last)) {
      // Built now, of the state the resource is in now (if it still is a resource).
      if (p.change.kind == StateChange::Kind::kTuningJob) {
        const TuningJob* j = Job(p.change.name);
        if (!j) continue;
        p.state = NotifiedState(*j);
      } else {
        auto it = trials.find(p.change.name);
        if (it == trials.end()) continue;
        p.state = NotifiedState(it->second);
        if (p.state.empty()) continue;
      }
      BuildNotice(p);
    }
    if (auto n = notified.find(p.key); n != notified.end() && n->second == p.state) continue;
    if (!p.failed.empty()) {
      // Nothing written for it, and taken as notified in no state (kNotNotified): its next change,
      // or the next start of the coordinator, tries again.
      Note(Status::Internal("the notification of " + p.change.name + "'s state " + p.state +
                            " could not be made: " + p.failed));
      Note(store->PutNotified(p.key, kNotNotified));
      notified[p.key] = kNotNotified;
      continue;
    }
    Status written = Status::Ok();
    for (const Notification& n : p.rows) {
      if (written.ok()) written = store->AppendNotification(n.target, n.body, n.created_ms);
    }
    if (written.ok()) written = store->PutNotified(p.key, p.state);
    Note(written);
    if (written.ok()) notified[p.key] = p.state;
  }
}

void CoordinatorCore::Impl::LoadNotified() {
  auto stored = store->LoadNotified();
  if (!stored.ok()) {
    log.push_back("notifications: " + stored.status().ToString() + " (every resource is taken as notified as it is)");
    stored = std::map<std::string, std::string>{};
  }
  // What has no stored state is taken as notified in the state it is in (notifications newly on,
  // or a resource of a time they were off); one whose state moved on since it was last notified
  // (a change written outside a transaction, then a crash) is notified now.
  for (const auto& [lower, j] : jobs) {
    const std::string key = "job:" + lower;
    auto it = stored->find(key);
    if (it == stored->end()) {
      notified[key] = NotifiedState(*j);
    } else {
      notified[key] = it->second;
      if (it->second != NotifiedState(*j)) MarkChanged(key);
    }
  }
  for (const auto& [name, t] : trials) {
    const std::string key = "trial:" + name, state = NotifiedState(t);
    auto it = stored->find(key);
    if (it == stored->end()) {
      if (!state.empty()) notified[key] = state;
    } else {
      notified[key] = it->second;
      if (it->second != state) MarkChanged(key);
    }
  }
}

Observation::Status CoordinatorCore::Impl::ObservedStatus(TrialState s) {
  switch (s) {
    case TrialState::kCompleted: return Observation::kSucceeded;
    case TrialState::kStopped: return Observation::kStopped;
    case TrialState::kFailed: return Observation::kFailed;
    default: return Observation::kRunning;
  }
}

bool CoordinatorCore::Impl::IsTerminal(TrialState s) {
  return s == TrialState::kCompleted || s == TrialState::kFailed || s == TrialState::kStopped;
}

void CoordinatorCore::Impl::Reindex(Trial& t) {
  JobIndex& ix = index[Lower(t.tuning_job)];
  const size_t i = static_cast<size_t>(t.index > 0 ? t.index - 1 : 0);
  if (i >= ix.history.size()) {
    ix.history.resize(i + 1);
    ix.states.resize(i + 1);
    ix.succeeded_flags.resize(i + 1, 0);
    ix.failed_flags.resize(i + 1, 0);
    ix.active_flags.resize(i + 1, 0);
    ix.finish_counted.resize(i + 1, 0);
  }
  if (auto old = ix.states[i]) {
    if (*old == TrialState::kPending) ix.pending.erase(t.index);
    if (!IsTerminal(*old)) --ix.unfinished;
  }
  ix.states[i] = t.state;
  ix.combined_stale = true;
  if (t.state == TrialState::kPending) ix.pending.insert(t.index);
  const bool active = t.state != TrialState::kPending && !IsTerminal(t.state) && !t.Queued();
  ix.active += static_cast<int>(active) - static_cast<int>(ix.active_flags[i]);
  ix.active_flags[i] = active;
  if (!IsTerminal(t.state)) ++ix.unfinished;
  const bool ok = ObjectiveSucceeded(t);
  ix.succeeded += static_cast<int>(ok) - static_cast<int>(ix.succeeded_flags[i]);
  ix.succeeded_flags[i] = ok;
  const bool failed = !ok && (t.state == TrialState::kFailed || (t.state == TrialState::kCompleted && !t.objective));
  ix.failed += static_cast<int>(failed) - static_cast<int>(ix.failed_flags[i]);
  ix.failed_flags[i] = failed;
  Observation& o = ix.history[i];
  TuningJob* j = Job(t.tuning_job);
  if (o.trial.empty()) {  // a trial's name, definition and configuration never change
    o.trial = t.name;
    o.definition_name = t.definition_name;
    o.hyperparameters = t.tuned;
    auto self = trials.find(t.name);  // map nodes are stable: the pointer stays valid
    if (j && TracksCurves(*j) && self != trials.end()) o.curve = &self->second.curve;
  }
  o.objective = t.objective;
  o.status = ObservedStatus(t.state);
  if (ok && !ix.finish_counted[i]) {
    ix.finish_counted[i] = 1;
    if (t.counted == 0) t.counted = ix.last_counted + 1;  // counted now (saved with it), or before a restart
    ix.last_counted = std::max(ix.last_counted, t.counted);
    const bool maximize = j ? MaximizeFor(*j, t.definition_name) : false;
    ix.not_improving.Add(*t.objective, maximize);
    ix.finished_objectives.push_back(*t.objective);
  }
  if (ok) {
    // Of equal values, the one that ended first (then the first created), whatever the order the
    // index is built in: a restart's rebuild could name another of a Grid job's tied ones.
    auto it = ix.best.empty() ? trials.end() : trials.find(ix.best);
    const Trial* best = it != trials.end() && ObjectiveSucceeded(it->second) ? &it->second : nullptr;
    if (!best || (j && Better(*t.objective, *best->objective, MaximizeFor(*j, t.definition_name))) ||
        (*t.objective == *best->objective &&
         std::make_pair(t.end_ms, t.creation_ms) < std::make_pair(best->end_ms, best->creation_ms))) {
      ix.best = t.name;
    }
  }
}

const CoordinatorCore::Impl::JobIndex* CoordinatorCore::Impl::Index(const TuningJob& j) const {
  auto it = index.find(Lower(j.name));
  return it == index.end() ? nullptr : &it->second;
}

void CoordinatorCore::Impl::Event(int64_t now, const std::string& kind, const std::string& job, const std::string& trial,
    const std::string& msg) {
  ++event_counts[kind];
  Note(store->AppendEvent(now, kind, job, trial, msg));
  if (opt.on_event) opt.on_event(kind, job, trial, msg);
}

void CoordinatorCore::Impl::Load() {
  // A read that fails stops the load there: the caller refuses to serve (LoadStatus).
  auto failed = [&](const std::string& what, const Status& s) {
    load_status = Status::IoError("cannot read the " + what + " from the state database: " + s.message());
    log.push_back(load_status.ToString());
  };
  auto jrows = store->LoadJobs();
  if (!jrows.ok()) return failed("tuning jobs", jrows.status());
  for (const auto& r : *jrows) {
    auto job = std::make_unique<TuningJob>();
    if (Status st = JobFromRow(r, job.get()); !st.ok()) {
      log.push_back(st.ToString() + " (the job is not loaded)");
      unreadable[Lower(r.name)] = st.message();
      continue;
    }
    InitObjective(*job);
    if (job->deleting && !job->Terminal()) job->deleting = false;  // only an ended job is ever deleted
    if (job->deleting) {
      interrupted_deletions.push_back(job->name);
      load_notes.push_back("tuning job " + job->name +
                           ": its deletion was interrupted (the coordinator stopped part-way); it is shown as "
                           "Deleting and the deletion goes on now");
    }
    // An ended job's is not made again (ReleaseStrategyIfEnded): it proposes nothing more.
    if (!job->Terminal()) {
      resumed = true;
      auto strat = MakeStrategy(job->spec, job->seed);
      if (strat.ok()) job->strategy = std::move(strat).value();
    }
    jobs[Lower(job->name)] = std::move(job);
  }
  if (auto alive = store->LoadAlive(); alive.ok()) last_alive_ms = *alive;
  auto crows = store->LoadCordons();
  if (!crows.ok()) return failed("cordoned workers", crows.status());
  for (auto& r : *crows) cordons[r.worker] = std::move(r);
  auto trows = store->LoadTrials();
  if (!trows.ok()) return failed("training jobs", trows.status());
  std::vector<std::string> damaged_active;  // training jobs whose damaged rows end them now
  for (const auto& r : *trows) {
    std::string damage;
    Trial t = TrialFromRow(r, &damage);
    if (t.Queued()) successor[{t.after_trial, t.after_attempt}] = t.name;
    auto it = jobs.find(Lower(t.tuning_job));
    if (it == jobs.end()) continue;
    if (!damage.empty()) {
      // Its hyperparameters, metric sequence or attempts cannot be read: one in progress could
      // never take its worker's report (the sequence numbers restart at 0), and its tuning job
      // waited for it for good. It ends Failed, as an infrastructure error, and says why.
      // An unknown state loads as Failed; without an end time it had not ended.
      const bool active = !t.Terminal() || (!ParseTrialState(r.state) && t.end_ms == 0);
      load_notes.push_back("training job " + t.name + ": its stored row is damaged (" + damage + ")" +
                           (active ? "; it ends Failed, its attempt's results lost" : "; what can be read is served"));
      if (active) {
        t.state = TrialState::kFailed;
        t.end_ms = std::max(t.creation_ms, it->second->last_modified_ms);
        t.failure_reason = "InternalServerError: hpo's stored record of this training job was damaged (" + damage +
                           "); its attempt's results are lost";
        damaged_active.push_back(t.name);
      }
    }
    it->second->trials.push_back(t.name);
    if (t.discard_hand_over) discards[t.name] = {.restored = true, .running = {}};
    trials[t.name] = std::move(t);
  }
  // Curves of the jobs that decide on them, from the stored metric points of each trial's
  // current attempt.
  for (auto& [name, t] : trials) {
    TuningJob* j = Job(t.tuning_job);
    if (!j || !TracksCurves(*j) || t.attempt == 0) continue;
    auto rows = store->LoadMetrics(name);
    if (!rows.ok()) return failed("metrics of " + name, rows.status());
    const std::string objective = ObjectiveMetricFor(*j, t.definition_name);
    for (const MetricRow& m : *rows) {
      if (m.attempt == t.attempt && m.name == objective) t.curve.push_back(m.value);
    }
    t.curve_decided = t.curve.size();  // decided on before the restart
  }
  // Index in the order the objectives were counted, so the completion criteria see them as they
  // came; a store written before that order was kept (counted 0) in finishing order, ahead.
  std::vector<Trial*> order;
  for (auto& [name, t] : trials) order.push_back(&t);
  std::sort(order.begin(), order.end(), [](const Trial* a, const Trial* b) {
    const int64_t ea = a->Terminal() ? a->end_ms : INT64_MAX, eb = b->Terminal() ? b->end_ms : INT64_MAX;
    return std::tie(a->counted, ea, a->tuning_job, a->index) < std::tie(b->counted, eb, b->tuning_job, b->index);
  });
  for (Trial* t : order) Reindex(*t);
  for (const std::string& name : damaged_active) {
    Trial& t = trials.at(name);
    retryable_failures.insert(t.name);
    Secondary(t, "Failed", t.end_ms, t.failure_reason);
    Event(t.end_ms, "TrainingJobRecordDamaged", t.tuning_job, t.name, t.failure_reason);
    SaveTrial(t);
  }
  for (auto& [key, j] : jobs) {
    if (j->spec.warm_start_config) BuildPrior(*j);
  }
  // A stopping job never places a trial again: one waiting in its queue (left there by a build
  // whose fair-share withdrawal re-queued trials being stopped) ends Stopped now, or the job
  // stays Stopping for good.
  for (auto& [key, j] : jobs) {
    if (j->status != "Stopping") continue;
    for (const auto& name : j->trials) {
      Trial& t = trials.at(name);
      if (t.state != TrialState::kPending) continue;
      const int64_t now = std::max(j->last_modified_ms, t.assigned_ms);
      t.state = TrialState::kStopped;
      t.end_ms = now;
      Secondary(t, "Stopped", now, "tuning job stopped");
      SaveTrial(t);
    }
  }
  if (opt.notify) LoadNotified();
}

TuningJob* CoordinatorCore::Impl::Job(const std::string& name) {
  auto it = jobs.find(Lower(name));
  return it == jobs.end() ? nullptr : it->second.get();
}

const proto::TrainingJobDefinition* CoordinatorCore::Impl::Definition(const TuningJob& j, const std::string& def_name) const {
  auto defs = j.spec.Definitions();
  for (const auto* d : defs) {
    if (d->definition_name.value_or("") == def_name) return d;
  }
  return defs.empty() ? nullptr : defs[0];
}

std::string CoordinatorCore::Impl::ObjectiveMetricFor(const TuningJob& j, const std::string& def_name) const {
  const auto* d = Definition(j, def_name);
  if (d && d->tuning_objective && d->tuning_objective->metric_name) return *d->tuning_objective->metric_name;
  return j.objective_metric;
}

bool CoordinatorCore::Impl::MaximizeFor(const TuningJob& j, const std::string& def_name) const {
  const auto* d = Definition(j, def_name);
  if (d && d->tuning_objective && d->tuning_objective->type) return *d->tuning_objective->type == "Maximize";
  return j.maximize;
}

int64_t CoordinatorCore::Impl::MaxJobs(const TuningJob& j) const {
  const auto& rl = j.spec.hyper_parameter_tuning_job_config->resource_limits;
  if (rl && rl->max_number_of_training_jobs) return *rl->max_number_of_training_jobs;
  return INT64_MAX;  // Grid without a limit: the grid bounds it
}

int64_t CoordinatorCore::Impl::MaxParallel(const TuningJob& j) const {
  const auto& rl = j.spec.hyper_parameter_tuning_job_config->resource_limits;
  return rl && rl->max_parallel_training_jobs ? *rl->max_parallel_training_jobs : 1;
}

int CoordinatorCore::Impl::ActiveCount(const TuningJob& j) const {
  const JobIndex* ix = Index(j);
  return ix ? ix->active : 0;
}

bool CoordinatorCore::Impl::HasPending(const TuningJob& j) const {
  const JobIndex* ix = Index(j);
  return ix && !ix->pending.empty();
}

bool CoordinatorCore::Impl::AnyUnfinished(const TuningJob& j) const {
  const JobIndex* ix = Index(j);
  return ix && ix->unfinished > 0;
}

const std::vector<Observation>& CoordinatorCore::Impl::History(const TuningJob& j) {
  JobIndex& ix = Index(j);
  if (ix.prior.empty()) return ix.history;
  if (ix.combined_stale) {  // rebuilt once per change, not on every scheduling question
    ix.combined = ix.prior;
    ix.combined.insert(ix.combined.end(), ix.history.begin(), ix.history.end());
    ix.combined_stale = false;
  }
  return ix.combined;
}

bool CoordinatorCore::Impl::ObjectiveSucceeded(const Trial& t) const {
  return t.objective.has_value() && (t.state == TrialState::kCompleted || t.state == TrialState::kStopped);
}

const Trial* CoordinatorCore::Impl::Best(const TuningJob& j) const {
  const JobIndex* ix = Index(j);
  if (!ix || ix->best.empty()) return nullptr;
  auto it = trials.find(ix->best);
  return it == trials.end() ? nullptr : &it->second;
}

CoordinatorCore::CoordinatorCore(JobStore* store, CoreOptions options)
    : impl_(std::make_unique<Impl>()), options_(std::move(options)) {
  static std::atomic<uint64_t> made{0};
  instance_ = ++made;
  impl_->store = store;
  impl_->opt = options_;
  impl_->self = this;
  impl_->Load();
}

CoordinatorCore::~CoordinatorCore() = default;

Result<std::string> CoordinatorCore::Submit(const proto::TuningJobSpec& written, proto::Spelling spelling,
                                            int64_t now_ms, std::vector<Outgoing>* out,
                                            const nlohmann::ordered_json& kubernetes_metadata) {
  // Instance types: SageMaker's, any that this coordinator's catalog has, or one a registered
  // worker advertises; any other is refused, as SageMaker refuses a value outside its enum (one a
  // few edits from a SageMaker type with the closest). A type far from all of them was taken for
  // one of one's own "served by a worker to come": `foo` was accepted through the API, and its job
  // waited with nothing said to boto3 (a user's pass). A type of one's own goes in the catalog.
  proto::ValidationLimits limits = options_.limits;
  std::set<std::string> known;
  if (!limits.known_instance_types) {
    known = options_.catalog.Types();
    for (const auto& [id, w] : impl_->workers) {
      if (!w.reg.instance_type.empty()) known.insert(w.reg.instance_type);
    }
    limits.known_instance_types = &known;
  }
  proto::FieldErrors errs = proto::Validate(written, spelling, limits);
  if (!errs.empty()) {
    // Over a quota only (a request SageMaker's API accepts): ResourceLimitExceeded, as SageMaker.
    const bool quota = std::all_of(errs.begin(), errs.end(), [](const proto::FieldError& e) { return e.quota; });
    return quota ? Status::ResourceExhausted(proto::JoinErrors(errs)) : Status::InvalidArgument(proto::JoinErrors(errs));
  }
  // A relative file:// program names a file next to a spec file, which hpo submit and hpo run
  // resolve before sending; sent as it is (the aws CLI, boto3, a converted spec), the workers
  // looked for it in their own directories and every training job failed.
  {
    const auto defs = written.Definitions();
    for (size_t i = 0; i < defs.size(); ++i) {
      const auto& as = defs[i]->algorithm_specification;
      const std::string image = as && as->training_image ? *as->training_image : "";
      if (!proto::IsRelativeFileImage(image)) continue;
      const bool api = spelling == proto::Spelling::kApi;
      const std::string where =
          (written.training_job_definition ? std::string(api ? "TrainingJobDefinition" : "spec.trainingJobDefinition")
                                           : std::string(api ? "TrainingJobDefinitions[" : "spec.trainingJobDefinitions[") +
                                                 std::to_string(i) + "]") +
          (api ? ".AlgorithmSpecification.TrainingImage" : ".algorithmSpecification.trainingImage");
      return Status::InvalidArgument(where + ": " + image +
                                     " is a relative path, which the coordinator has no directory to resolve against: "
                                     "give an absolute one (file:///path/to/trainer), or submit the spec file with "
                                     "hpo submit (or hpo run), which resolves it against the file's directory");
    }
  }
  // Autotune's choices become part of the spec the job runs, stores and describes.
  Result<AutotuneResult> tuned = ResolveAutotune(written, options_.limits, spelling);
  if (!tuned.ok()) return tuned.status();
  const proto::TuningJobSpec& spec = tuned->spec;
  if (!tuned->choices.empty()) {
    errs = proto::Validate(spec, spelling, options_.limits);
    if (!errs.empty()) return Status::InvalidArgument("with Autotune's choices: " + proto::JoinErrors(errs));
  }
  const std::string name = *spec.hyper_parameter_tuning_job_name;
  if (auto damaged = impl_->unreadable.find(Lower(name)); damaged != impl_->unreadable.end()) {
    return Status::AlreadyExists("a tuning job named " + name + " is in the state database but cannot be read (" +
                                 damaged->second + "): choose another name, or delete what is left of it (hpo delete " +
                                 name + ")");
  }
  if (const TuningJob* same = impl_->Job(name)) {
    const std::string as = same->name == name ? "" : " as " + same->name;
    if (same->deleting) {
      return Status::AlreadyExists("a tuning job named " + name + " is being deleted" + as +
                                   ": create it again once DescribeHyperParameterTuningJob (hpo describe " + same->name +
                                   ") says it is not found");
    }
    return Status::AlreadyExists("a tuning job named " + name + " already exists" + as + " (" + same->status +
                                 "; names are not case sensitive): choose another name, or delete it first (hpo delete " +
                                 same->name + ", once it has ended)");
  }
  int64_t live = 0;
  for (const auto& [k, j] : impl_->jobs) live += j->Terminal() ? 0 : 1;
  if (live >= options_.max_concurrent_tuning_jobs) {
    return Status::ResourceExhausted("this coordinator already runs " + std::to_string(live) +
                                     (live == 1 ? " tuning job" : " tuning jobs") +
                                     ", its quota: wait for one to end, stop one, or raise the quota with " +
                                     options_.quota_command + " --max-concurrent-tuning-jobs");
  }
  std::vector<std::string> warm_notes;
  if (spec.warm_start_config) {
    Status ws = impl_->CheckWarmStart(spec, spelling, &warm_notes);
    if (!ws.ok()) return ws;
  }
  auto job = std::make_unique<TuningJob>();
  job->name = name;
  job->spec = spec;
  job->kubernetes_metadata = proto::KeptKubernetesMetadata(kubernetes_metadata);
  const auto& cfg = *spec.hyper_parameter_tuning_job_config;
  job->seed = cfg.random_seed ? static_cast<uint64_t>(*cfg.random_seed)
                              : std::hash<std::string>{}(name) ^ static_cast<uint64_t>(now_ms) * 0x9E3779B97F4A7C15ull;
  job->creation_ms = now_ms;
  job->last_modified_ms = now_ms;
  impl_->InitObjective(*job);
  auto strat = MakeStrategy(spec, job->seed);
  if (!strat.ok()) return Status::InvalidArgument(strat.status().message());
  job->strategy = std::move(strat).value();
  TuningJob& j = *job;
  impl_->jobs[Lower(name)] = std::move(job);
  auto forget = [&] {  // nothing acknowledged, nothing changed
    impl_->index.erase(Lower(name));
    impl_->jobs.erase(Lower(name));
  };
  if (spec.warm_start_config) {
    impl_->BuildPrior(j);
    // IdenticalDataAndAlgorithm parents' configurations count as this job's own, so a finite
    // space they covered leaves nothing to run: refused rather than run as an empty job.
    if (j.strategy->Exhausted(impl_->History(j))) {
      forget();
      return Status::InvalidArgument(
          "WarmStartConfig: the parent jobs (IdenticalDataAndAlgorithm) already ran every configuration of "
          "this job's search space, so it would have nothing to run; widen the ranges, or use WarmStartType "
          "TransferLearning to run them again (on new data or a new algorithm)");
    }
  }
  if (Status s = impl_->store->PutJob(JobToRow(j)); !s.ok()) {
    forget();
    return s;
  }
  impl_->MarkChanged("job:" + Lower(name));
  impl_->Event(now_ms, "JobCreated", name, "", "strategy " + cfg.strategy.value_or(""));
  if (spec.warm_start_config) {
    std::string parents;
    for (const auto& p : spec.warm_start_config->parent_hyper_parameter_tuning_jobs) {
      parents += (parents.empty() ? "" : ", ") + p.hyper_parameter_tuning_job_name.value_or("");
    }
    const size_t prior = impl_->Index(j).prior.size();
    impl_->Event(now_ms, "WarmStart", name, "",
                 spec.warm_start_config->warm_start_type.value_or("") + " from " + parents + ": " +
                     std::to_string(prior) + " of their training jobs with an objective " +
                     (prior == 1 ? "informs" : "inform") + " the search");
    for (const std::string& note : warm_notes) impl_->Event(now_ms, "WarmStart", name, "", note);
  }
  for (const AutotuneChoice& c : tuned->choices) {
    impl_->Event(now_ms, "AutotuneChose", name, "", c.field + " = " + c.value + " (" + c.reason + ")");
  }
  for (const std::string& note : proto::BuiltInAlgorithmNotes(spec, proto::Spelling::kApi)) {
    impl_->Event(now_ms, "BuiltInAlgorithm", name, "", note);
  }
  for (const std::string& note : proto::NotEnforced(spec, proto::Spelling::kApi)) {
    impl_->Event(now_ms, "NotEnforced", name, "", note);
  }
  if (out) impl_->Schedule(now_ms, out);
  impl_->FlushStateChanges();  // its creation, and its first training jobs'
  return JobArn(name);
}

Status CoordinatorCore::Impl::NoTuningJob(const std::string& name) {
  std::string said = "no tuning job named " + name;
  if (const Trial* t = TrialNamed(name)) {
    said += "; " + name + " is a training job of the tuning job " + t->tuning_job +
            " (StopTrainingJob and DescribeTrainingJob take it: hpo stop --training-job " + name +
            ", hpo describe --training-job " + name + ")";
  }
  return Status::NotFound(said);
}

Status CoordinatorCore::Stop(const std::string& name, int64_t now_ms, std::vector<Outgoing>* out) {
  TuningJob* j = impl_->Job(name);
  if (!j) return impl_->NoTuningJob(name);
  if (j->Terminal()) {  // as SageMaker refuses it (StopTrainingJob alike): ValidationException
    return Status::FailedPrecondition("tuning job " + j->name + " has already ended: it is " + j->ShownStatus() +
                                      "; only an InProgress tuning job can be stopped");
  }
  // One transaction: a coordinator killed part-way left the job Stopping with training jobs never
  // told, and the stop asked again found it Stopping and did nothing. Asked again, the stop is
  // applied again (StopAll passes over what is stopping already).
  std::vector<Outgoing> sent = impl_->Transaction([&](std::vector<Outgoing>* o) {
    if (j->status != "Stopping") {
      j->status = "Stopping";
      impl_->SaveJob(*j, now_ms);
      impl_->Event(now_ms, "JobStopping", j->name, "", "stop requested");
    }
    impl_->StopAll(*j, "tuning job stopped", now_ms, o);
    impl_->MaybeFinish(*j, now_ms, o);
  });
  if (out) {
    for (auto& m : sent) out->push_back(std::move(m));
  }
  return Status::Ok();
}

Status CoordinatorCore::Cordon(const std::string& worker_id, const std::string& reason, int64_t now_ms,
                               std::vector<Outgoing>* out) {
  auto printable = [](const std::string& s) {
    return std::all_of(s.begin(), s.end(), [](unsigned char c) { return c >= 0x20 && c != 0x7f; });
  };
  if (!proto::wire::IsWorkerId(worker_id)) {
    return Status::InvalidArgument("a worker id is 1 to 128 of A-Z a-z 0-9 . _ : @ - (hpo workers lists them); got \"" +
                                   Truncate(worker_id, 64) + "\"");
  }
  if (reason.size() > 1024 || !printable(reason)) {
    return Status::InvalidArgument("the reason is at most 1,024 printable characters on one line");
  }
  CordonRow row{worker_id, reason.empty() ? "cordoned by an operator" : reason, now_ms};
  if (auto had = impl_->cordons.find(worker_id); had != impl_->cordons.end()) row.since_ms = had->second.since_ms;
  std::vector<Outgoing> sent = impl_->Transaction([&](std::vector<Outgoing>* o) {
    impl_->Note(impl_->store->PutCordon(row));
    impl_->cordons[worker_id] = row;
    auto w = impl_->workers.find(worker_id);
    impl_->Event(now_ms, "CordonSet", "", "",
                 worker_id + ": " + row.reason +
                     (w == impl_->workers.end() ? " (not registered now: it takes nothing new when it comes)"
                                                : " (what runs there finishes; nothing new goes there)"));
    if (w == impl_->workers.end()) return;
    w->second.cordoned = row.reason;
    // What waits there behind a running attempt goes elsewhere, unless it has started meanwhile.
    for (const auto& [trial, attempt] : std::set<std::pair<std::string, uint32_t>>(w->second.queued)) {
      Trial* t = impl_->CurrentAttempt(trial, attempt);
      if (t && t->Queued()) impl_->Withdraw(*t, now_ms, o, "worker " + worker_id + " is cordoned");
    }
  });
  for (auto& m : sent) out->push_back(std::move(m));
  return Status::Ok();
}

Status CoordinatorCore::Uncordon(const std::string& worker_id, int64_t now_ms, std::vector<Outgoing>* out) {
  if (!impl_->cordons.count(worker_id)) {
    return Status::NotFound("worker " + worker_id + " is not cordoned" +
                            (impl_->workers.count(worker_id) ? "" : " (nor registered: hpo workers lists them)"));
  }
  std::vector<Outgoing> sent = impl_->Transaction([&](std::vector<Outgoing>* o) {
    impl_->Note(impl_->store->DeleteCordon(worker_id));
    impl_->cordons.erase(worker_id);
    impl_->Event(now_ms, "CordonLifted", "", "", worker_id + ": it takes new training jobs again");
    if (auto w = impl_->workers.find(worker_id); w != impl_->workers.end()) w->second.cordoned.clear();
    impl_->Schedule(now_ms, o);
  });
  for (auto& m : sent) out->push_back(std::move(m));
  return Status::Ok();
}

Status CoordinatorCore::Evict(const std::string& worker_id, const std::string& reason, int64_t now_ms,
                              std::vector<Outgoing>* out, std::vector<std::string>* evicted) {
  if (proto::wire::IsWorkerId(worker_id) && !impl_->workers.count(worker_id)) {
    return Status::NotFound("no worker " + worker_id + " is registered, so nothing runs there (hpo workers lists them; "
                            "hpo workers cordon " + worker_id + " keeps it from new work when it comes)");
  }
  HPO_RETURN_IF_ERROR(Cordon(worker_id, reason, now_ms, out));
  const std::string why = proto::wire::kStopReasonEvictedPrefix + worker_id + " (" + impl_->cordons.at(worker_id).reason +
                          "); it runs again elsewhere without spending a retry";
  std::vector<Outgoing> sent = impl_->Transaction([&](std::vector<Outgoing>* o) {
    const WorkerInfo& w = impl_->workers.at(worker_id);
    for (const auto& [trial, attempt] : std::set<std::pair<std::string, uint32_t>>(w.running)) {
      Trial* t = impl_->CurrentAttempt(trial, attempt);
      // Queued ahead there: Cordon asked it back. Being stopped already: that stop stands.
      if (!t || !t->Active() || t->Queued() || t->stop_requested || !t->evicted.empty()) continue;
      t->evicted = why;
      impl_->Event(now_ms, "Evicted", t->tuning_job, t->name, "attempt " + std::to_string(t->attempt) + ": " + why);
      // No Stopping (SageMaker's word for a stop someone asked for): it reads Interrupted when its
      // program has ended, as after a spot notice.
      impl_->SaveTrial(*t);
      t->stop_sent_ms = now_ms;
      impl_->SendToHosts(*t, impl_->StopRequest(*t), o);
      if (evicted) evicted->push_back(t->name);
    }
  });
  for (auto& m : sent) out->push_back(std::move(m));
  return Status::Ok();
}

std::vector<CordonRow> CoordinatorCore::Cordons() const {
  std::vector<CordonRow> out;
  for (const auto& [id, row] : impl_->cordons) out.push_back(row);
  return out;
}

Status CoordinatorCore::SetTags(const std::string& name, std::vector<proto::Tag> tags) {
  TuningJob* j = impl_->Job(name);
  if (!j) return Status::NotFound("no tuning job named " + name);
  j->spec.tags = std::move(tags);
  impl_->Note(impl_->store->PutJob(JobToRow(*j)));
  return Status::Ok();
}

Status CoordinatorCore::SetTrainingJobTags(const std::string& name, std::vector<proto::Tag> tags) {
  Trial* t = impl_->TrialNamed(name);
  if (!t) return Status::NotFound("no training job named " + name);
  t->tags = std::move(tags);
  impl_->SaveTrial(*t);
  return Status::Ok();
}

Status CoordinatorCore::StopTrainingJob(const std::string& name, int64_t now_ms, std::vector<Outgoing>* out) {
  Trial* found = impl_->TrialNamed(name);
  if (!found) return Status::NotFound("no training job named " + name);
  Trial& t = *found;
  if (t.Terminal()) {
    return Status::FailedPrecondition("training job " + t.name + " has already ended: it is " + TrialStateName(t.state) +
                                      "; only an InProgress training job can be stopped");
  }
  if (t.state == TrialState::kStopping) return Status::Ok();
  std::vector<Outgoing> sent = impl_->Transaction([&](std::vector<Outgoing>* o) {
    impl_->Event(now_ms, "TrainingJobStopped", t.tuning_job, t.name, "stop requested (StopTrainingJob)");
    impl_->StopTrialMsg(t, "stopped by request (StopTrainingJob)", now_ms, o);
    if (TuningJob* j = impl_->Job(t.tuning_job)) impl_->MaybeFinish(*j, now_ms, o);
  });
  if (out) {
    for (auto& m : sent) out->push_back(std::move(m));
  }
  return Status::Ok();
}

Status CoordinatorCore::LoadStatus() const { return impl_->load_status; }

bool CoordinatorCore::AnyUnfinished(const TuningJob& job) const { return impl_->AnyUnfinished(job); }

std::vector<std::string> CoordinatorCore::LoadNotes() const {
  std::vector<std::string> out = UnreadableJobs();
  out.insert(out.end(), impl_->load_notes.begin(), impl_->load_notes.end());
  return out;
}

std::vector<std::string> CoordinatorCore::UnreadableJobs() const {
  std::vector<std::string> out;
  for (const auto& [name, why] : impl_->unreadable) {
    out.push_back(why + ": the job is not served, and its name is refused to a new job; hpo delete " + name +
                  " removes what is left of it");
  }
  return out;
}

Status CoordinatorCore::Deletable(const TuningJob& job) const {
  const TuningJob* j = &job;
  if (!j->Terminal()) {
    if (j->status == "Stopping") {
      return Status::FailedPrecondition("tuning job " + j->name +
                                        " is Stopping (its training jobs are ending); delete it once it has ended "
                                        "(hpo describe " + j->name + " says when; hpo delete --stop " + j->name +
                                        " waits for it)");
    }
    return Status::FailedPrecondition("tuning job " + j->name + " is " + j->status +
                                      "; stop it (StopHyperParameterTuningJob, or hpo stop " + j->name +
                                      ") and delete it once it has ended (hpo delete --stop " + j->name +
                                      " does both)");
  }
  if (j->Proposing()) {
    return Status::FailedPrecondition("tuning job " + j->name +
                                      " is still finishing its last proposal; try again in a few seconds");
  }
  // Every job that warm-starts from it, named at once (one at a time took a refusal each).
  std::map<std::string, std::string> children;  // name -> status, in name order
  for (const auto& [key, other] : impl_->jobs) {
    if (other.get() == j || !other->spec.warm_start_config) continue;
    for (const auto& p : other->spec.warm_start_config->parent_hyper_parameter_tuning_jobs) {
      if (Lower(p.hyper_parameter_tuning_job_name.value_or("")) == Lower(j->name)) {
        children[other->name] = other->status;
        break;
      }
    }
  }
  if (!children.empty()) {
    std::string list, names;
    for (const auto& [child, status] : children) {
      list += (list.empty() ? "" : ", ") + child + " (" + status + ")";
      names += " " + child;
    }
    return Status::FailedPrecondition(
        (children.size() == 1 ? "tuning job " + list + " warm-starts from " + j->name + " and reads its training jobs"
                              : std::to_string(children.size()) + " tuning jobs warm-start from " + j->name +
                                    " and read its training jobs: " + list) +
        "; delete " + (children.size() == 1 ? "it" : "them") + " first (hpo delete" + names + ")");
  }
  return Status::Ok();
}

namespace {
// A job's FailureReason while it is DeleteFailed (TuningJob::delete_failure).
std::string DeleteFailure(const TuningJob& j, const Status& why) {
  return "the deletion failed part-way (" + why.message() + "); delete it again (hpo delete " + j.name +
         ") once the state database is writable";
}
}  // namespace

Status CoordinatorCore::Impl::BeginDeletion(TuningJob& j, int64_t now) {
  if (j.deleting) return Status::Ok();
  const int64_t modified = j.last_modified_ms;
  j.deleting = true;
  j.last_modified_ms = now;
  if (Status s = store->PutJob(JobToRow(j)); !s.ok()) {
    j.deleting = false;
    j.last_modified_ms = modified;
    return s;
  }
  Event(now, "JobDeleting", j.name, "",
        "deletion begun: its " + std::to_string(j.trials.size()) +
            " training jobs' records, metrics and logs are removed; their output stays");
  MarkChanged("job:" + Lower(j.name));  // notified as Deleting before the job goes
  FlushStateChanges();
  return Status::Ok();
}

void CoordinatorCore::RecordEvent(int64_t now_ms, const std::string& kind, const std::string& job,
                                  const std::string& trial, const std::string& message) {
  impl_->Event(now_ms, kind, job, trial, message);
}

std::vector<std::string> CoordinatorCore::TakeInterruptedDeletions() {
  std::vector<std::string> v;
  v.swap(impl_->interrupted_deletions);
  return v;
}

Result<bool> CoordinatorCore::DeleteSlice(const std::string& name, int64_t now_ms) {
  TuningJob* j = impl_->Job(name);
  if (!j) {
    // Unknown (Delete says so), or what is left of an unreadable row: its rows in slices too.
    if (!impl_->unreadable.count(Lower(name))) return false;
    return impl_->store->DeleteJobSlice(name);
  }
  HPO_RETURN_IF_ERROR(Deletable(*j));
  HPO_RETURN_IF_ERROR(impl_->BeginDeletion(*j, now_ms));
  // Slices for up to 25 ms a call: each call's answer waits for the disk, and one per 2,000 rows
  // made a large deletion take twice as long as it did in one piece.
  const auto began = std::chrono::steady_clock::now();
  for (bool any = false;;) {
    Result<bool> more = impl_->store->DeleteJobSlice(j->name);
    if (!more.ok()) {
      // What is left of it stays, as it is, shown DeleteFailed: deleting it again goes on.
      j->delete_failure = DeleteFailure(*j, more.status());
      return more.status();
    }
    j->delete_failure.clear();
    if (!*more) return any;
    any = true;
    if (std::chrono::steady_clock::now() - began >= std::chrono::milliseconds(25)) return true;
  }
}

Status CoordinatorCore::Delete(const std::string& name, int64_t now_ms) {
  TuningJob* j = impl_->Job(name);
  if (auto damaged = impl_->unreadable.find(Lower(name)); !j && damaged != impl_->unreadable.end()) {
    // What is left of a job whose row cannot be read: its rows go, and the name is free again.
    if (Status s = impl_->store->DeleteJob(name); !s.ok()) return s;
    impl_->Event(now_ms, "JobDeleted", name, "", "deleted what was left of a tuning job whose stored row could not be "
                                                 "read (" + damaged->second + ")");
    impl_->unreadable.erase(damaged);
    return Status::Ok();
  }
  if (!j) return impl_->NoTuningJob(name);
  HPO_RETURN_IF_ERROR(Deletable(*j));
  HPO_RETURN_IF_ERROR(impl_->BeginDeletion(*j, now_ms));
  const std::string deleted = j->name;  // as created
  if (Status s = impl_->store->DeleteJob(deleted); !s.ok()) {  // it stays, stored as Deleting
    j->delete_failure = DeleteFailure(*j, s);
    return s;
  }
  // An ended job's trials hold no slot, GPU or successor: ReleaseSlot gave those up as each ended.
  for (const std::string& t : j->trials) {
    impl_->trials.erase(t);
    impl_->retryable_failures.erase(t);  // it grew with every deleted job's retried failures
    impl_->ForgetNotified("trial:" + t);
  }
  impl_->ForgetNotified("job:" + Lower(deleted));
  const size_t gone = j->trials.size();
  impl_->index.erase(Lower(deleted));
  impl_->suggestions.erase(Lower(deleted));
  impl_->jobs.erase(Lower(deleted));
  impl_->Event(now_ms, "JobDeleted", deleted, "",
               std::to_string(gone) + " training job records removed; their output stays");
  return Status::Ok();
}

std::vector<Outgoing> CoordinatorCore::OnMessage(const std::string& worker_id, const proto::wire::Message& msg,
                                                 int64_t now_ms) {
  std::vector<Outgoing> out;
  impl_->Handle(worker_id, msg, now_ms, &out);
  impl_->FinishAll(now_ms, &out);
  impl_->Schedule(now_ms, &out);
  impl_->FlushStateChanges();
  return out;
}

std::vector<Outgoing> CoordinatorCore::OnMessages(const std::vector<Incoming>& batch, int64_t now_ms) {
  std::vector<Outgoing> out;
  Status begun = impl_->store->Begin();
  for (const auto& in : batch) impl_->Handle(in.worker_id, in.message, now_ms, &out);
  impl_->FinishAll(now_ms, &out);
  impl_->Schedule(now_ms, &out);
  impl_->FlushStateChanges();
  if (!begun.ok()) {
    impl_->Note(begun);  // each write committed on its own, as without a batch
    return out;
  }
  Status committed = impl_->store->Commit();
  if (!committed.ok()) {
    impl_->Note(committed);
    return {};  // nothing was acknowledged: the workers re-send
  }
  return out;
}

std::vector<Outgoing> CoordinatorCore::OnTick(int64_t now_ms) {
  return impl_->Transaction([&](std::vector<Outgoing>* out) { *out = TickInTransaction(now_ms); });
}

std::vector<ProposalRequest> CoordinatorCore::TakeProposalRequests() {
  std::vector<ProposalRequest> v;
  v.swap(impl_->proposal_requests);
  return v;
}

ProposalResult CoordinatorCore::RunProposal(ProposalRequest& request) {
  ProposalResult r;
  r.job = request.job;
  r.id = request.id;
  const auto started = std::chrono::steady_clock::now();
  for (size_t i = 0; i < request.history.size() && i < request.curves.size(); ++i) {
    request.history[i].curve = request.curves[i] ? &*request.curves[i] : nullptr;
  }
  if (request.strategy) r.proposals = request.strategy->Propose(request.n, request.history);
  for (Observation& o : request.history) o.curve = nullptr;
  r.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
  return r;
}

std::vector<Outgoing> CoordinatorCore::OnProposals(std::vector<ProposalResult> results, int64_t now_ms) {
  return impl_->Transaction([&](std::vector<Outgoing>* out) {
    for (const ProposalResult& r : results) {
      TuningJob* j = impl_->Job(r.job);
      if (!j || !j->Proposing() || j->proposal_id != r.id) continue;  // not one this core is waiting for
      j->proposal_id = 0;
      j->proposal_n = 0;
      impl_->RecordSuggestion(*j, r.seconds, now_ms);
      // The job may have ended or been stopped while its proposal was made: then it is dropped.
      Impl::ReleaseStrategyIfEnded(*j);
      if (j->status != "InProgress" || !j->completion_reason.empty()) continue;
      for (const Proposal& p : r.proposals) {
        if (static_cast<int64_t>(j->trials.size()) >= impl_->MaxJobs(*j)) break;
        impl_->AddTrial(*j, p, now_ms);
      }
    }
    impl_->FinishAll(now_ms, out);
    impl_->Schedule(now_ms, out);
  });
}

void CoordinatorCore::CancelProposals() {
  impl_->proposal_requests.clear();
  for (auto& [key, j] : impl_->jobs) {
    j->proposal_id = 0;
    j->proposal_n = 0;
  }
}

void CoordinatorCore::Impl::Depart(const std::string& wid, DepartedWorker gone) {
  departed[wid] = std::move(gone);
  if (departed.size() > kDepartedWorkersKept) {  // the one gone longest ago goes
    auto oldest = departed.begin();
    for (auto d = departed.begin(); d != departed.end(); ++d) {
      if (d->second.gone_ms < oldest->second.gone_ms) oldest = d;
    }
    departed.erase(oldest);
  }
}

void CoordinatorCore::CreditStall(int64_t gap_ms, int64_t now_ms) {
  if (gap_ms <= 0) return;
  impl_->Transaction([&](std::vector<Outgoing>*) {
    for (auto& [wid, w] : impl_->workers) w.last_seen_ms = std::min(now_ms, w.last_seen_ms + gap_ms);
    // So is the lease of workers not yet back since a restart: a stall right after loading (a
    // busy disk) declared a live worker's attempt lost before it could register, and ran it again.
    if (impl_->loaded_at_ms >= 0) impl_->loaded_at_ms = std::min(now_ms, impl_->loaded_at_ms + gap_ms);
    impl_->Event(now_ms, "CoordinatorStalled", "", "",
                 "the coordinator read no message for " + std::to_string(gap_ms / 1000) + "." +
                     std::to_string(gap_ms % 1000 / 100) +
                     " s (the coordinator's own work held it, such as a long request or a slow store write, or the "
                     "process was paused, stopped or swapping, or its disk stalled): the workers' leases do not count "
                     "it");
  });
}

std::vector<Outgoing> CoordinatorCore::TickInTransaction(int64_t now_ms) {
  std::vector<Outgoing> out;
  if (impl_->loaded_at_ms < 0) impl_->loaded_at_ms = now_ms;
  // Lost workers.
  for (auto it = impl_->workers.begin(); it != impl_->workers.end();) {
    if (now_ms - it->second.last_seen_ms > options_.lease_ms) {
      std::string wid = it->first;
      // A worker that said it was going (its interruption notice: a spot reclaim, or SIGTERM, as
      // systemctl stop sends) and gave back everything it ran has left, as it said: not an
      // outage for an alert on WorkerLost to page someone about.
      std::vector<Trial*> held;
      size_t running = 0;  // of `held`, those whose program had started
      for (auto& [name, t] : impl_->trials) {
        if (t.Active() && t.OnWorker(wid)) {
          held.push_back(&t);
          running += t.started ? 1 : 0;
        }
      }
      const std::string& draining = it->second.draining;
      // What it said, after "interruption notice: " or "shutting down: " (WorkerInfo::draining).
      std::optional<std::string> said;
      for (std::string_view prefix : {kDrainingNotice, kDrainingShutdown}) {
        if (draining.rfind(prefix, 0) == 0) said = draining.substr(prefix.size());
      }
      DepartedWorker gone{it->second.reg.host, it->second.reg.instance_type, it->second.last_seen_ms, now_ms, false, ""};
      if (held.empty() && said) {
        gone.left = true;
        gone.why = "left, as it said it would (" + *said + ")";
        impl_->Event(now_ms, "WorkerLeft", "", "", wid + " " + gone.why);
      } else {
        const size_t waiting = held.size() - running;  // queued ahead, or starting: not begun
        gone.why = "missed its lease" +
                   (held.empty() ? std::string()
                    : running == 0
                        ? " with " + std::to_string(waiting) + " training job(s) there that had not started"
                        : " while running " + std::to_string(running) + " training job(s)" +
                              (waiting > 0 ? " (and " + std::to_string(waiting) + " not started yet)" : ""));
        impl_->Event(now_ms, "WorkerLost", "", "", wid + " missed its lease");
      }
      impl_->Depart(wid, std::move(gone));
      const bool said_going = said.has_value();
      for (Trial* t : held) {
        if (!t->Active() || !t->OnWorker(wid)) continue;  // settled by another's loss (a gang's host)
        impl_->StopGangPeers(*t, wid, "host on worker " + wid + " was lost", &out);
        // Lost after it said it was going (a spot reclaim: the instance is terminated once the
        // notice's time is up, however long the program takes to save), or while evicted: the
        // interruption it was, as if the worker had reported it. It cost a retry, and failed a
        // managed spot training job that had no RetryStrategy.
        const TuningJob* job = impl_->Job(t->tuning_job);
        if ((said_going || !t->evicted.empty()) && t->started && !t->stop_requested && job &&
            job->status == "InProgress") {
          if (it->second.last_seen_ms < now_ms) impl_->EndTrainingTime(*t, it->second.last_seen_ms);
          impl_->Interrupted(*t,
                             "worker " + wid + " was lost after " +
                                 (said_going ? "it said it was going (" + *said + ")"
                                             : std::string("the eviction: ") + t->evicted),
                             now_ms);
          continue;
        }
        impl_->AttemptLost(*t, "worker " + wid + " was lost", now_ms, wid, it->second.last_seen_ms,
                           it->second.last_seen_ms);
      }
      impl_->worker_gpus_used.erase(wid);
      for (auto l = impl_->lingering.begin(); l != impl_->lingering.end();) {
        l->second.erase(wid);
        l = l->second.empty() ? impl_->lingering.erase(l) : std::next(l);
      }
      it = impl_->workers.erase(it);
    } else {
      ++it;
    }
  }
  // Workers whose rest is over take training jobs again (one more infrastructure error puts
  // them back to rest, for twice as long).
  for (auto& [wid, w] : impl_->workers) {
    if (w.resting.empty() || now_ms < w.resting_until_ms) continue;
    w.resting.clear();
    w.infra_streak = Impl::kInfraErrorsBeforeRest - 1;
    impl_->Event(now_ms, "WorkerBack", "", "", wid + " takes training jobs again after its rest");
  }
  // Attempts whose worker never came back after a coordinator restart.
  if (now_ms - impl_->loaded_at_ms > options_.lease_ms) {
    for (auto& [name, t] : impl_->trials) {
      if (!t.Active()) continue;
      std::string gone;
      for (const auto& wid : t.Hosts()) {
        if (gone.empty() && !impl_->workers.count(wid)) gone = wid;
      }
      if (!gone.empty()) {
        // Listed as lost (hpo workers), as one that missed its lease is: a restarted coordinator
        // knows it only from the attempts it held.
        if (!impl_->departed.count(gone)) {
          impl_->Depart(gone, {"", "", impl_->last_alive_ms, now_ms, false,
                               "did not come back after the coordinator restarted, with training jobs of its own"});
          impl_->Event(now_ms, "WorkerLost", "", "", gone + " did not come back after the coordinator restarted");
        }
        impl_->StopGangPeers(t, gone, "host on worker " + gone + " did not come back", &out);
        // It ran until the coordinator's last sign of life before the restart, as far as anyone
        // knows; not through the downtime.
        // Its worker may have run, and stalled, as late as the restart: its guard ends the program
        // by the stall time after that.
        impl_->AttemptLost(t, "worker " + gone + " did not come back", now_ms, gone, impl_->last_alive_ms,
                           impl_->loaded_at_ms, /*notice_missed=*/true);
      }
    }
  }
  if (now_ms - impl_->alive_written_ms >= Impl::kAliveEveryMs) {
    impl_->alive_written_ms = now_ms;
    impl_->Note(impl_->store->PutAlive(now_ms));
  }
  impl_->ExpireWarm(now_ms);
  impl_->SendDueDiscards(now_ms, &out);
  impl_->FinishAll(now_ms, &out);
  impl_->Schedule(now_ms, &out);
  return out;
}

}  // namespace hpo::coordinator
