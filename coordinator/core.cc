#include "coordinator/core.h"

#include "coordinator/adaptive.h"
#include "coordinator/core_rows.h"
#include "coordinator/hyperband_strategy.h"
#include "coordinator/placement.h"

#include <algorithm>
#include <chrono>
#include <cctype>
#include <cmath>
#include <cstdio>
#include <deque>
#include <functional>

#include <nlohmann/json.hpp>

#include "coordinator/trial_name.h"

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

namespace {

std::string Lower(std::string s) {
  for (char& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

constexpr size_t kMaxFailureReason = 1024;

std::string Truncate(std::string s, size_t n = kMaxFailureReason) {
  if (s.size() > n) s.resize(n);
  return s;
}

}  // namespace

struct CoordinatorCore::Impl {
  JobStore* store;
  CoreOptions opt;
  std::map<std::string, std::unique_ptr<TuningJob>> jobs;  // key: lower-cased name
  std::map<std::string, Trial> trials;                      // key: trial name

  // What scheduling and completion ask about a job on every event, kept up to date as trials
  // change (Reindex, called wherever a trial is saved) so that no event costs O(trials): with
  // 10,000 trials a scan per event made a job's bookkeeping quadratic.
  struct JobIndex {
    std::vector<Observation> history;  // the strategy's view, by trial index - 1
    std::vector<std::optional<TrialState>> states;
    std::vector<char> succeeded_flags;
    std::vector<char> active_flags;  // counted in `active`: running or starting, not queued ahead
    std::set<int> pending;  // trial indexes waiting for a slot, oldest first
    int active = 0, unfinished = 0, succeeded = 0;
    std::string best;  // the best training job so far ("" none)
    // Completion criteria, fed each objective once, in the order the training jobs finished.
    std::vector<char> finish_counted;
    NotImprovingTracker not_improving;
    std::vector<double> finished_objectives;
    size_t convergence_checked = 0;  // finished_objectives.size() at the last convergence test
    // Warm start: the parents' training jobs as observations, and the strategy's view
    // (prior + history) rebuilt per call when there are any.
    std::vector<Observation> prior;
    std::vector<Observation> combined;
    bool combined_stale = true;  // history changed since `combined` was built
    std::deque<int64_t> durations;  // of the latest completed training jobs (assign ahead)
  };
  std::map<std::string, JobIndex> index;  // key: lower-cased job name
  std::map<std::string, SuggestionStats> suggestions;  // key: lower-cased job name

  // Counts one Propose call; a model-based one (the strategy reports stats) is also an event
  // with its breakdown, so `hpo` users see what each suggestion cost and why a fallback happened.
  void RecordSuggestion(const TuningJob& j, double seconds, int64_t now) {
    SuggestionStats& st = suggestions[Lower(j.name)];
    ++st.count;
    st.seconds_sum += seconds;
    st.seconds_max = std::max(st.seconds_max, seconds);
    const SuggestStats* s = j.strategy->LastSuggestStats();
    st.last = s ? *s : SuggestStats{};
    st.last.seconds = seconds;
    if (!s) return;
    if (!s->fallback.empty()) ++st.fallbacks;
    char buf[256];
    std::snprintf(buf, sizeof buf, "%.4f s (fit %.4f s, acquisition %.4f s) on %s, %zu observations, %zu pending",
                  seconds, s->fit_seconds, s->acq_seconds, s->device.empty() ? "-" : s->device.c_str(),
                  s->observations, s->pending);
    Event(now, "Suggestion", j.name, "",
          std::string(buf) + (s->fallback.empty() ? "" : "; random search because " + s->fallback));
  }
  std::map<std::string, WorkerInfo> workers;
  std::map<std::string, std::set<uint32_t>> worker_gpus_used;  // worker -> GPU indices in use
  std::map<std::pair<std::string, uint32_t>, std::vector<uint32_t>> attempt_gpus;
  // Assigned ahead: (trial, attempt) of a running attempt -> the trial queued behind it.
  std::map<std::pair<std::string, uint32_t>, std::string> successor;
  int64_t loaded_at_ms = -1;  // first tick after a restart: orphaned attempts get one lease
  std::vector<std::string> log;  // store failures, surfaced by Describe's failure reason

  // ---- persistence -----------------------------------------------------------------------------

  void Note(const Status& s) {
    if (!s.ok()) log.push_back(s.ToString());
  }

  void SaveJob(TuningJob& j, int64_t now) {
    j.last_modified_ms = now;
    Note(store->PutJob(JobToRow(j)));
  }
  void SaveTrial(const Trial& t) {
    Reindex(t);
    Note(store->PutTrial(TrialToRow(t)));
  }

  static Observation::Status ObservedStatus(TrialState s) {
    switch (s) {
      case TrialState::kCompleted: return Observation::kSucceeded;
      case TrialState::kStopped: return Observation::kStopped;
      case TrialState::kFailed: return Observation::kFailed;
      default: return Observation::kRunning;
    }
  }
  static bool IsTerminal(TrialState s) {
    return s == TrialState::kCompleted || s == TrialState::kFailed || s == TrialState::kStopped;
  }

  // Brings the job's index in line with the trial (its state, objective and hyperparameters).
  void Reindex(const Trial& t) {
    JobIndex& ix = index[Lower(t.tuning_job)];
    const size_t i = static_cast<size_t>(t.index > 0 ? t.index - 1 : 0);
    if (i >= ix.history.size()) {
      ix.history.resize(i + 1);
      ix.states.resize(i + 1);
      ix.succeeded_flags.resize(i + 1, 0);
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
      const bool maximize = j ? MaximizeFor(*j, t.definition_name) : false;
      ix.not_improving.Add(*t.objective, maximize);
      ix.finished_objectives.push_back(*t.objective);
    }
    if (ok) {
      auto it = ix.best.empty() ? trials.end() : trials.find(ix.best);
      if (it == trials.end() || !ObjectiveSucceeded(it->second) ||
          (j && Better(*t.objective, *it->second.objective, MaximizeFor(*j, t.definition_name)))) {
        ix.best = t.name;
      }
    }
  }
  JobIndex& Index(const TuningJob& j) { return index[Lower(j.name)]; }
  const JobIndex* Index(const TuningJob& j) const {
    auto it = index.find(Lower(j.name));
    return it == index.end() ? nullptr : &it->second;
  }
  void Event(int64_t now, const std::string& kind, const std::string& job, const std::string& trial,
             const std::string& msg) {
    Note(store->AppendEvent(now, kind, job, trial, msg));
  }

  void Load() {
    auto jrows = store->LoadJobs();
    if (!jrows.ok()) {
      log.push_back(jrows.status().ToString());
      return;
    }
    for (const auto& r : *jrows) {
      auto job = std::make_unique<TuningJob>();
      if (Status st = JobFromRow(r, job.get()); !st.ok()) {
        log.push_back(st.ToString() + " (the job is not loaded)");
        continue;
      }
      InitObjective(*job);
      auto strat = MakeStrategy(job->spec, job->seed);
      if (strat.ok()) job->strategy = std::move(strat).value();
      jobs[Lower(job->name)] = std::move(job);
    }
    auto trows = store->LoadTrials();
    if (!trows.ok()) {
      log.push_back(trows.status().ToString());
      return;
    }
    for (const auto& r : *trows) {
      Trial t = TrialFromRow(r);
      if (t.Queued()) successor[{t.after_trial, t.after_attempt}] = t.name;
      auto it = jobs.find(Lower(t.tuning_job));
      if (it == jobs.end()) continue;
      it->second->trials.push_back(t.name);
      trials[t.name] = std::move(t);
    }
    // Curves of the jobs that decide on them, from the stored metric points of each trial's
    // current attempt.
    for (auto& [name, t] : trials) {
      TuningJob* j = Job(t.tuning_job);
      if (!j || !TracksCurves(*j) || t.attempt == 0) continue;
      auto rows = store->LoadMetrics(name);
      if (!rows.ok()) {
        log.push_back(rows.status().ToString());
        continue;
      }
      const std::string objective = ObjectiveMetricFor(*j, t.definition_name);
      for (const MetricRow& m : *rows) {
        if (m.attempt == t.attempt && m.name == objective) t.curve.push_back(m.value);
      }
    }
    // Index in finishing order, so the completion criteria see the objectives as they came.
    std::vector<Trial*> order;
    for (auto& [name, t] : trials) order.push_back(&t);
    std::sort(order.begin(), order.end(), [](const Trial* a, const Trial* b) {
      const int64_t ea = a->Terminal() ? a->end_ms : INT64_MAX, eb = b->Terminal() ? b->end_ms : INT64_MAX;
      return std::tie(ea, a->tuning_job, a->index) < std::tie(eb, b->tuning_job, b->index);
    });
    for (Trial* t : order) Reindex(*t);
    for (auto& [key, j] : jobs) {
      if (j->spec.warm_start_config) BuildPrior(*j);
    }
  }

  // ---- adaptive tuning -------------------------------------------------------------------------

  static bool MedianRuleOn(const TuningJob& j) {
    const auto& c = j.spec.hyper_parameter_tuning_job_config;
    return c && c->training_job_early_stopping_type.value_or("Off") == "Auto";
  }
  static const HyperbandStrategy* HyperbandOf(const TuningJob& j) {
    return dynamic_cast<const HyperbandStrategy*>(j.strategy.get());
  }
  static bool TracksCurves(const TuningJob& j) { return MedianRuleOn(j) || HyperbandOf(j) != nullptr; }

  // The objective just got new emissions (curve grew from old_len): apply the job's rule at
  // each of them, in order, and stop the trial at the first that says so.
  void MaybeStopEarly(TuningJob& j, Trial& t, size_t old_len, int64_t now, std::vector<Outgoing>* out) {
    if (t.state != TrialState::kInProgress || t.stop_requested || j.status != "InProgress") return;
    const bool maximize = MaximizeFor(j, t.definition_name);
    const HyperbandStrategy* hb = HyperbandOf(j);
    std::vector<const std::vector<double>*> peers;
    const HyperbandSchedule* schedule = hb ? &hb->Schedule(t.definition_name) : nullptr;
    const int bracket = schedule ? schedule->BracketOf(t.index) : 0;
    for (const auto& name : j.trials) {
      const Trial& u = trials.at(name);
      if (u.name == t.name || u.curve.empty()) continue;
      if (schedule) {
        if (u.definition_name == t.definition_name && schedule->BracketOf(u.index) == bracket) peers.push_back(&u.curve);
      } else if (u.index < t.index) {
        peers.push_back(&u.curve);
      }
    }
    // The program's own epochs, when its definition says (the median rule does not stop a trial
    // at the emission that ends it anyway: the stop would only race its normal exit).
    const auto* def = Definition(j, t.definition_name);
    const std::optional<int64_t> last_epoch = def ? ProgramEpochs(*def) : std::nullopt;
    for (size_t k = old_len + 1; k <= t.curve.size(); ++k) {
      if (!schedule && last_epoch && static_cast<int64_t>(k) >= *last_epoch) break;
      const std::span<const double> prefix(t.curve.data(), k);
      std::string reason;
      if (schedule) {
        RungDecision d = AshaDecide(*schedule, t.index, prefix, peers, maximize);
        if (d.stop) reason = d.Explain(maximize);
      } else {
        MedianDecision d = MedianRule(peers, prefix, maximize);
        if (d.stop) reason = d.Explain(maximize);
      }
      if (reason.empty()) continue;
      Event(now, "EarlyStopped", j.name, t.name, reason);
      StopTrialMsg(t, reason, now, out);
      return;
    }
  }

  // Warm start: the parents' training jobs that have an objective, mapped onto this job's
  // tunable hyperparameters (a value the parent had fixed comes from its static ones).
  void BuildPrior(TuningJob& j) {
    JobIndex& ix = Index(j);
    ix.prior.clear();
    ix.combined_stale = true;
    const auto& w = *j.spec.warm_start_config;
    const bool transfer = w.warm_start_type.value_or("") == "TransferLearning";
    auto defs = j.spec.Definitions();
    if (defs.empty()) return;
    std::vector<std::string> names;  // this job's tunable hyperparameters
    for (const auto& [name, kind] : HyperParameterKinds(j.spec)) {
      if (kind != 's') names.push_back(name);
    }
    for (const auto& p : w.parent_hyper_parameter_tuning_jobs) {
      const TuningJob* parent = Job(p.hyper_parameter_tuning_job_name.value_or(""));
      if (!parent) continue;
      for (const auto& tn : parent->trials) {
        const Trial& u = trials.at(tn);
        if (!ObjectiveSucceeded(u)) continue;
        Observation o;
        o.trial = u.name;
        o.definition_name = defs[0]->definition_name.value_or("");
        bool complete = true;
        for (const auto& n : names) {
          const StringMap& from = u.tuned.count(n) ? u.tuned : u.hyperparameters;  // else the parent had it static
          auto v = from.find(n);
          if (v == from.end()) {
            complete = false;
            break;
          }
          o.hyperparameters[n] = v->second;
        }
        if (!complete) continue;
        o.objective = u.objective;
        o.status = Observation::kSucceeded;
        o.prior = transfer;
        ix.prior.push_back(std::move(o));
      }
    }
  }

  // The kind of every hyperparameter a job's (single) definition sets: 'i', 'c', 'k'
  // (integer, continuous, categorical ranges, as its SearchSpace reads them) or 's' (static).
  static std::map<std::string, char> HyperParameterKinds(const proto::TuningJobSpec& spec) {
    std::map<std::string, char> kinds;
    auto defs = spec.Definitions();
    if (defs.empty()) return kinds;
    for (const auto& [k, v] : defs[0]->static_hyper_parameters) kinds[k] = 's';
    if (Result<SearchSpace> space = SearchSpace::FromSpec(spec, *defs[0]); space.ok()) {
      for (const Dimension& d : space->dimensions()) {
        kinds[d.name] = d.kind == DimensionKind::kInteger ? 'i' : d.kind == DimensionKind::kContinuous ? 'c' : 'k';
      }
    }
    kinds.erase("_tuning_objective_metric");
    return kinds;
  }

  // Warm-start rules that need the store: the parents exist and are terminal, share the
  // objective and the hyperparameters, and their training jobs fit in the job limit.
  Status CheckWarmStart(const proto::TuningJobSpec& spec) {
    const auto& w = *spec.warm_start_config;
    const std::string base = "WarmStartConfig.ParentHyperParameterTuningJobs";
    TuningJob probe;
    probe.spec = spec;
    InitObjective(probe);
    const std::map<std::string, char> kinds = HyperParameterKinds(spec);
    static const std::map<char, std::string> kind_name = {
        {'i', "an integer range"}, {'c', "a continuous range"}, {'k', "a categorical range"}, {'s', "static"}};
    int64_t parent_trials = 0;
    for (size_t i = 0; i < w.parent_hyper_parameter_tuning_jobs.size(); ++i) {
      const std::string name = w.parent_hyper_parameter_tuning_jobs[i].hyper_parameter_tuning_job_name.value_or("");
      const std::string at = base + "[" + std::to_string(i) + "] \"" + name + "\": ";
      const TuningJob* parent = Job(name);
      if (!parent) {
        return Status::InvalidArgument(at + "no such tuning job on this coordinator (parents must be jobs it ran; "
                                            "`hpo list` shows them)");
      }
      if (!parent->Terminal()) {
        return Status::InvalidArgument(at + "is " + parent->status +
                                       "; a parent must be Completed, Stopped or Failed (wait for it, or stop it)");
      }
      if (parent->objective_metric != probe.objective_metric || parent->maximize != probe.maximize) {
        return Status::InvalidArgument(at + "its objective is " + (parent->maximize ? "Maximize " : "Minimize ") +
                                       parent->objective_metric + ", this job's is " +
                                       (probe.maximize ? "Maximize " : "Minimize ") + probe.objective_metric +
                                       "; warm start needs the same objective metric and type");
      }
      const std::map<std::string, char> pk = HyperParameterKinds(parent->spec);
      if (pk.size() != kinds.size()) {
        return Status::InvalidArgument(at + "it has " + std::to_string(pk.size()) +
                                       " static and tunable hyperparameters, this job " + std::to_string(kinds.size()) +
                                       "; warm start needs the same number of hyperparameters");
      }
      for (const auto& [hp, kind] : kinds) {
        auto it = pk.find(hp);
        if (it == pk.end()) {
          return Status::InvalidArgument(at + "it has no hyperparameter \"" + hp +
                                         "\"; warm start needs the same hyperparameters (static ones may become "
                                         "tunable and the other way round)");
        }
        if (kind != 's' && it->second != 's' && kind != it->second) {
          return Status::InvalidArgument(at + "\"" + hp + "\" is " + kind_name.at(it->second) + " there and " +
                                         kind_name.at(kind) + " here; a tunable hyperparameter keeps its type");
        }
      }
      parent_trials += static_cast<int64_t>(parent->trials.size());
    }
    const auto& cfg = *spec.hyper_parameter_tuning_job_config;
    const int64_t limit = cfg.strategy.value_or("") == "Random" ? opt.limits.max_training_jobs
                                                                : opt.limits.max_training_jobs_bayesian;
    const int64_t own = cfg.resource_limits && cfg.resource_limits->max_number_of_training_jobs
                            ? *cfg.resource_limits->max_number_of_training_jobs
                            : 0;
    if (parent_trials + own > limit) {
      return Status::InvalidArgument(
          "HyperParameterTuningJobConfig.ResourceLimits.MaxNumberOfTrainingJobs: the parents' " +
          std::to_string(parent_trials) + " training jobs plus this job's " + std::to_string(own) + " exceed the " +
          std::to_string(limit) +
          " a tuning job may have (parents' training jobs count against the limit); set it to at most " +
          std::to_string(std::max<int64_t>(0, limit - parent_trials)));
    }
    return Status::Ok();
  }

  void InitObjective(TuningJob& j) {
    const auto& cfg = j.spec.hyper_parameter_tuning_job_config;
    std::optional<proto::Objective> obj;
    if (cfg && cfg->hyper_parameter_tuning_job_objective) obj = cfg->hyper_parameter_tuning_job_objective;
    auto defs = j.spec.Definitions();
    if (!obj && !defs.empty() && defs[0]->tuning_objective) obj = defs[0]->tuning_objective;
    if (obj) {
      j.objective_metric = obj->metric_name.value_or("");
      j.maximize = obj->type.value_or("") == "Maximize";
    }
  }

  // ---- lookups ---------------------------------------------------------------------------------

  TuningJob* Job(const std::string& name) {
    auto it = jobs.find(Lower(name));
    return it == jobs.end() ? nullptr : it->second.get();
  }

  const proto::TrainingJobDefinition* Definition(const TuningJob& j, const std::string& def_name) const {
    auto defs = j.spec.Definitions();
    for (const auto* d : defs) {
      if (d->definition_name.value_or("") == def_name) return d;
    }
    return defs.empty() ? nullptr : defs[0];
  }

  std::string ObjectiveMetricFor(const TuningJob& j, const std::string& def_name) const {
    const auto* d = Definition(j, def_name);
    if (d && d->tuning_objective && d->tuning_objective->metric_name) return *d->tuning_objective->metric_name;
    return j.objective_metric;
  }

  bool MaximizeFor(const TuningJob& j, const std::string& def_name) const {
    const auto* d = Definition(j, def_name);
    if (d && d->tuning_objective && d->tuning_objective->type) return *d->tuning_objective->type == "Maximize";
    return j.maximize;
  }

  int64_t MaxJobs(const TuningJob& j) const {
    const auto& rl = j.spec.hyper_parameter_tuning_job_config->resource_limits;
    if (rl && rl->max_number_of_training_jobs) return *rl->max_number_of_training_jobs;
    return INT64_MAX;  // Grid without a limit: the grid bounds it
  }
  int64_t MaxParallel(const TuningJob& j) const {
    const auto& rl = j.spec.hyper_parameter_tuning_job_config->resource_limits;
    return rl && rl->max_parallel_training_jobs ? *rl->max_parallel_training_jobs : 1;
  }

  int ActiveCount(const TuningJob& j) const {
    const JobIndex* ix = Index(j);
    return ix ? ix->active : 0;
  }
  bool HasPending(const TuningJob& j) const {
    const JobIndex* ix = Index(j);
    return ix && !ix->pending.empty();
  }
  bool AnyUnfinished(const TuningJob& j) const {
    const JobIndex* ix = Index(j);
    return ix && ix->unfinished > 0;
  }

  // One Observation per trial the job has created, in creation order (the strategy's view).
  const std::vector<Observation>& History(const TuningJob& j) {
    JobIndex& ix = Index(j);
    if (ix.prior.empty()) return ix.history;
    if (ix.combined_stale) {  // rebuilt once per change, not on every scheduling question
      ix.combined = ix.prior;
      ix.combined.insert(ix.combined.end(), ix.history.begin(), ix.history.end());
      ix.combined_stale = false;
    }
    return ix.combined;
  }

  // Whether `a` is a better objective than `b` for the job's direction.
  static bool Better(double a, double b, bool maximize) { return maximize ? a > b : a < b; }

  bool ObjectiveSucceeded(const Trial& t) const {
    return t.objective.has_value() && (t.state == TrialState::kCompleted || t.state == TrialState::kStopped);
  }

  const Trial* Best(const TuningJob& j) const {
    const JobIndex* ix = Index(j);
    if (!ix || ix->best.empty()) return nullptr;
    auto it = trials.find(ix->best);
    return it == trials.end() ? nullptr : &it->second;
  }

  // ---- transitions -----------------------------------------------------------------------------

  void Secondary(Trial& t, const std::string& status, int64_t now, const std::string& msg = "") {
    if (!t.secondary.empty() && t.secondary.back().status == status) return;
    t.secondary.push_back({status, now, msg});
  }

  // The current attempt gives up its slot (it ended, or will never run here). A trial queued
  // behind it takes the slot and its GPUs; a queued attempt itself leaves its queue.
  void ReleaseSlot(Trial& t, int64_t now) {
    const auto key = std::make_pair(t.name, t.attempt);
    if (t.started && t.attempt_start_ms > 0 && now > t.attempt_start_ms) {  // the attempt's training time
      t.training_ms += now - t.attempt_start_ms;
      if (t.on_spot) t.spot_training_ms += now - t.attempt_start_ms;
    }
    t.attempt_start_ms = 0;
    for (const auto& h : t.gang) {  // a gang's other hosts (algo-1's GPUs are in attempt_gpus)
      auto hw = workers.find(h.worker_id);
      if (hw != workers.end()) hw->second.running.erase(key);
      if (h.worker_id == t.worker_id) continue;
      for (uint32_t idx : h.gpus) worker_gpus_used[h.worker_id].erase(idx);
    }
    t.gang.clear();
    auto w = workers.find(t.worker_id);
    if (w != workers.end()) {
      w->second.running.erase(key);
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
        if (!GpuHeld(t.worker_id, idx)) worker_gpus_used[t.worker_id].erase(idx);
      }
    }
    auto next = successor.find(key);
    if (next != successor.end()) {
      auto q = trials.find(next->second);
      successor.erase(next);
      if (q != trials.end()) Promote(q->second);
    }
  }

  // Warm reuse (ResourceConfig.KeepAlivePeriodInSeconds): a training job of this job's definition
  // that ended normally leaves its hosts' slots kept for the next one for that long; the
  // scheduler prefers them (PlaceHost), other jobs cannot take them meanwhile.
  // Called with the ended attempt's hosts (Trial::Hosts(), taken before ReleaseSlot forgets them).
  void KeepWarm(const Trial& t, const std::vector<std::string>& hosts, int64_t now) {
    const TuningJob* j = Job(t.tuning_job);
    if (!j || j->status != "InProgress" || !j->completion_reason.empty()) return;
    const auto* d = Definition(*j, t.definition_name);
    if (!d || !d->resource_config || d->resource_config->keep_alive_period_in_seconds.value_or(0) <= 0) return;
    const int64_t until = now + *d->resource_config->keep_alive_period_in_seconds * 1000;
    for (const auto& wid : hosts) {
      auto w = workers.find(wid);
      if (w != workers.end() && w->second.draining.empty()) {
        w->second.warm.push_back({Lower(j->name), t.definition_name, until});
      }
    }
  }
  void TakeWarm(WorkerInfo& w, const TuningJob& j, const std::string& definition) {
    const std::string key = Lower(j.name);
    auto it = std::find_if(w.warm.begin(), w.warm.end(),
                           [&](const WorkerInfo::Warm& x) { return x.job == key && x.definition == definition; });
    if (it != w.warm.end()) w.warm.erase(it);
  }
  // Drops kept slots that expired or whose job is no longer running.
  void ExpireWarm(int64_t now) {
    for (auto& [wid, w] : workers) {
      std::erase_if(w.warm, [&](const WorkerInfo::Warm& x) {
        auto j = jobs.find(x.job);
        return x.until_ms <= now || j == jobs.end() || j->second->status != "InProgress" ||
               !j->second->completion_reason.empty();
      });
    }
  }

  // Whether an attempt on `worker` still holds GPU `idx` (a queued successor shares its
  // predecessor's GPUs until one of them ends).
  bool GpuHeld(const std::string& worker, uint32_t idx) const {
    for (const auto& [key, gpus] : attempt_gpus) {
      if (std::find(gpus.begin(), gpus.end(), idx) == gpus.end()) continue;
      auto t = trials.find(key.first);
      if (t != trials.end() && t->second.worker_id == worker) return true;
    }
    return false;
  }

  // A trial queued ahead takes its slot: its predecessor ended, or its worker reported it
  // started (which it does only once the predecessor's program has ended).
  void Promote(Trial& q) {
    const auto key = std::make_pair(q.name, q.attempt);
    auto w = workers.find(q.worker_id);
    if (w != workers.end()) {
      w->second.queued.erase(key);
      w->second.running.insert(key);
    }
    successor.erase({q.after_trial, q.after_attempt});
    q.after_trial.clear();
    q.after_attempt = 0;
    SaveTrial(q);
  }

  // The trial waits for a host again (its slot already released): the next Launch starts a new
  // attempt.
  static void ToQueue(Trial& t) {
    t.state = TrialState::kPending;
    t.worker_id.clear();
    t.started = false;
    t.last_seq = 0;
  }

  // Ends the current attempt of an active trial with an infrastructure error: retried while the
  // retry strategy allows, else the trial fails.
  void InfraFailure(Trial& t, const std::string& reason, int64_t now) {
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
      Secondary(t, "Restarting", now, reason);
    } else {
      t.state = t.stop_requested ? TrialState::kStopped : TrialState::kFailed;
      t.end_ms = now;
      if (t.state == TrialState::kFailed) {
        t.failure_reason = Truncate(
            "InternalServerError: " + reason +
            (max_retries > 0 ? " (after " + std::to_string(t.infra_failures) + " attempts)" : ""));
        retryable_failures.insert(t.name);
      }
      Secondary(t, t.state == TrialState::kFailed ? "Failed" : "Stopped", now, reason);
    }
    SaveTrial(t);
  }
  std::set<std::string> retryable_failures;

  // An attempt that was assigned but never reported started and that its worker does not hold
  // (the assignment was lost with a coordinator or a worker): the trial goes back to the queue
  // without spending a retry, since nothing of it ever ran.
  void Requeue(Trial& t, const std::string& reason, int64_t now) {
    ReleaseSlot(t, now);
    Event(now, "Requeued", t.tuning_job, t.name, "attempt " + std::to_string(t.attempt) + ": " + reason);
    ToQueue(t);
    SaveTrial(t);
  }

  // The attempt's capacity was reclaimed (spot): the trial goes back to the queue without
  // spending a retry, to start again from its checkpoint, preferably elsewhere. SageMaker's
  // secondary statuses: ... Training -> Interrupted -> Starting -> ...
  void Interrupted(Trial& t, const std::string& reason, int64_t now) {
    ReleaseSlot(t, now);
    Event(now, "Interrupted", t.tuning_job, t.name, "attempt " + std::to_string(t.attempt) + ": " + reason);
    t.interruptions++;
    t.interrupted_on = t.worker_id;
    ToQueue(t);
    Secondary(t, "Interrupted", now, reason);
    SaveTrial(t);
  }

  // StoppingCondition.MaxWaitTimeInSeconds (managed spot): a trial's whole time, waiting for
  // capacity and interrupted attempts included, is bounded; past it the trial ends Stopped with
  // secondary status MaxWaitTimeExceeded (its last objective, if any, stays).
  void ExpireMaxWait(TuningJob& j, int64_t now, std::vector<Outgoing>* out) {
    if (j.status != "InProgress") return;
    bool any = false;  // only jobs that set it pay for the scan
    for (const auto* d : j.spec.Definitions()) {
      any = any || (d->stopping_condition && d->stopping_condition->max_wait_time_in_seconds);
    }
    if (!any) return;
    for (const auto& name : j.trials) {
      Trial& t = trials.at(name);
      if (t.Terminal() || t.stop_requested) continue;
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

  // An attempt whose worker is gone or no longer holds it.
  void AttemptLost(Trial& t, const std::string& reason, int64_t now) {
    TuningJob* j = Job(t.tuning_job);
    if (!t.started && !t.stop_requested && j && j->status == "InProgress") {
      Requeue(t, reason + " before it started", now);
    } else {
      InfraFailure(t, reason, now);
    }
  }

  // Starts the job's next trial (a pending retry or a new proposal) on `worker`.
  // The job's oldest trial waiting for a host (a retry, or one created while no worker could
  // start it), or nullptr.
  Trial* OldestPending(TuningJob& j) {
    const JobIndex& ix = Index(j);
    if (ix.pending.empty()) return nullptr;
    return &trials.at(ix.history.at(static_cast<size_t>(*ix.pending.begin() - 1)).trial);
  }

  // A new trial from the strategy, Pending; nullptr when the job may not or cannot have more.
  Trial* CreateTrial(TuningJob& j, int64_t now) {
    {
      if (static_cast<int64_t>(j.trials.size()) >= MaxJobs(j) || !j.strategy) return nullptr;
      const auto started = std::chrono::steady_clock::now();
      auto props = j.strategy->Propose(1, History(j));
      RecordSuggestion(j, std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count(), now);
      if (props.empty()) return nullptr;
      Trial nt;
      nt.index = static_cast<int>(j.trials.size()) + 1;
      nt.name = TrialName(j.name, nt.index, j.seed);
      nt.tuning_job = j.name;
      nt.definition_name = props[0].definition_name;
      nt.tuned = props[0].hyperparameters;
      const auto* d = Definition(j, nt.definition_name);
      nt.hyperparameters =
          d ? MergeHyperParameters(*d, nt.tuned, ObjectiveMetricFor(j, nt.definition_name)) : nt.tuned;
      nt.creation_ms = now;
      nt.state = TrialState::kPending;
      j.trials.push_back(nt.name);
      Trial* t = &(trials[nt.name] = std::move(nt));
      SaveTrial(*t);
      return t;
    }
  }

  // The worker that starts `req` now (the one with the most free slots), or nullptr; *ever:
  // whether any registered worker could ever serve it; *why: the reasons, for people.
  // `avoid`: a trial's interrupted worker; it and spot workers are taken only when nothing else fits.
  WorkerInfo* PlaceHost(const HostRequest& req, bool* ever, std::string* why, uint32_t* gpus,
                        const std::string& avoid = "", bool prefer_on_demand = false,
                        const std::set<std::string>* exclude = nullptr, const std::string& job = "",
                        const std::string& definition = "") {
    WorkerInfo* best = nullptr;
    *ever = false;
    std::vector<std::string> reasons;
    auto rank = [&](const WorkerInfo& w) {
      // A slot kept warm for this job's definition first (KeepAlivePeriodInSeconds).
      return std::make_tuple(w.reg.worker_id != avoid, w.warm_for(job, definition) > 0,
                             !(prefer_on_demand && w.reg.spot), w.free_slots(job, definition));
    };
    for (auto& [id, w] : workers) {
      if (exclude && exclude->count(id)) continue;  // a host of the same gang
      FitResult f = Fit(opt.catalog, req, w.reg, w.free_slots(job, definition), worker_gpus_used[id]);
      *ever = *ever || f.ever;
      if (f.now && !w.draining.empty()) {
        f.now = false;
        f.why = "worker " + id + " is draining (" + w.draining + ")";
      }
      if (f.now) {
        if (!best || rank(w) > rank(*best)) {
          best = &w;
          *gpus = f.gpus;
        }
      } else if (reasons.size() < 4) {
        reasons.push_back(f.why);
      }
    }
    if (workers.empty()) reasons.push_back("no worker is registered");
    why->clear();
    for (const auto& r : reasons) *why += (why->empty() ? "" : "; ") + r;
    return best;
  }

  // The job cannot place its next host: remembered (and logged once per new reason) for
  // describe, and the pending trial says so in its secondary status.
  void NoteWaiting(TuningJob& j, Trial* t, const HostRequest& req, bool ever, const std::string& why, int64_t now,
                   size_t hosts = 1) {
    const std::string what = req.instance_type.empty() ? std::string("a worker") : req.instance_type;
    std::string reason = ever ? (hosts > 1 ? "waiting for a free worker for each of the " + std::to_string(hosts) +
                                                 " hosts of a training job (" + what + ", all at once)"
                                           : "waiting for a free worker that can serve " + what)
                              : "no registered worker can serve " + what + ": " + why;
    if (!ever && !req.instance_type.empty() && !opt.catalog.Find(req.instance_type)) {
      reason += " (start a worker with --instance-type " + req.instance_type + ")";
    }
    if (j.waiting_reason != reason) {
      if (!ever) Event(now, "Waiting", j.name, t ? t->name : "", reason);
      j.waiting_reason = reason;
    }
    if (j.waiting_since_ms == 0) j.waiting_since_ms = now;
    if (t && (t->secondary.empty() || t->secondary.back().message != reason)) {
      if (!t->secondary.empty() && t->secondary.back().status == "Starting") t->secondary.pop_back();
      t->secondary.push_back({"Starting", now, reason});
      SaveTrial(*t);
    }
  }

  // Places the job's next host: its oldest pending trial, else a new one from the strategy.
  // False when nothing more can be placed for this job now.
  bool PlaceNext(TuningJob& j, int64_t now, std::vector<Outgoing>* out) {
    Trial* t = OldestPending(j);
    if (!t) {
      // Only ask the strategy when one of the job's definitions can start somewhere now: a
      // proposal made while nothing can run it would be stale when it does.
      bool any_now = false, any_ever = false;
      std::string why;
      HostRequest first;
      size_t first_hosts = 1;
      for (const auto* d : j.spec.Definitions()) {
        const std::vector<HostPlan> plans = HostsFor(j, d->definition_name.value_or(""));
        bool ever = false;
        std::string w;
        if (!PlaceGang(plans, &ever, &w, "", false, Lower(j.name), d->definition_name.value_or("")).empty()) {
          any_now = true;
        }
        if (!any_ever && !ever && why.empty()) {
          why = w;
          first = plans[0].req;
          first_hosts = plans.size();
        }
        any_ever = any_ever || ever;
      }
      if (!any_now) {
        if (j.spec.Definitions().empty()) return false;
        if (why.empty()) {
          const auto plans = HostsFor(j, j.spec.Definitions()[0]->definition_name.value_or(""));
          first = plans[0].req;
          first_hosts = plans.size();
        }
        NoteWaiting(j, nullptr, first, any_ever, why, now, first_hosts);
        return false;
      }
      t = CreateTrial(j, now);
      if (!t) {
        MaybeFinish(j, now, out);  // nothing to propose (the strategy is exhausted): settle the job
        return false;
      }
    }
    const std::vector<HostPlan> plans = HostsFor(j, t->definition_name);
    bool ever = false;
    std::string why;
    const std::vector<GangPick> picks =
        PlaceGang(plans, &ever, &why, t->interrupted_on, t->interruptions > 0, Lower(j.name), t->definition_name);
    if (picks.empty()) {
      NoteWaiting(j, t, plans[0].req, ever, why, now, plans.size());
      return false;
    }
    j.waiting_reason.clear();
    j.waiting_since_ms = 0;
    Launch(j, *t, *picks[0].worker, picks[0].gpus, now, out, nullptr, &picks);
    return true;
  }

  // One host of a training job: what it asks for, in algo-N order (instance groups in the spec's
  // order, each InstanceCount times; else InstanceCount hosts of InstanceType).
  struct HostPlan {
    HostRequest req;
    std::string group;  // "" outside InstanceGroups
    std::string type;
  };
  std::vector<HostPlan> HostsFor(const TuningJob& j, const std::string& def_name) const {
    std::vector<HostPlan> v;
    const auto* d = Definition(j, def_name);
    const proto::ResourceConfig* rc = d && d->resource_config ? &*d->resource_config : nullptr;
    const int64_t volume = rc ? rc->volume_size_in_gb.value_or(0) : 0;
    if (rc && !rc->instance_groups.empty()) {
      for (const auto& g : rc->instance_groups) {
        const std::string name = g.instance_group_name.value_or(""), type = g.instance_type.value_or("");
        for (int64_t k = 0; k < g.instance_count.value_or(1); ++k) v.push_back({{type, name, volume}, name, type});
      }
    } else {
      const std::string type = rc ? rc->instance_type.value_or("") : "";
      for (int64_t k = 0; k < (rc ? rc->instance_count.value_or(1) : 1); ++k) v.push_back({{type, "", volume}, "", type});
    }
    if (v.empty()) v.push_back({});
    return v;
  }

  // A gang: one distinct worker per host, all at once or none (no partial hold, so gangs of
  // different jobs never deadlock; see docs/architecture.md). Empty when they cannot all start now.
  struct GangPick {
    WorkerInfo* worker = nullptr;
    uint32_t gpus = 0;
    const HostPlan* plan = nullptr;  // the host it plays (points into the caller's plans)
  };
  std::vector<GangPick> PlaceGang(const std::vector<HostPlan>& plans, bool* ever, std::string* why,
                                  const std::string& avoid = "", bool prefer_on_demand = false,
                                  const std::string& job = "", const std::string& definition = "") {
    std::vector<GangPick> picks;
    std::set<std::string> taken;
    // Whether the registered workers could ever serve it: each host's request by some worker,
    // and at least as many workers as hosts.
    *ever = workers.size() >= plans.size() || workers.empty();
    for (const auto& plan : plans) {
      bool e = false;
      uint32_t g = 0;
      std::string w;
      PlaceHost(plan.req, &e, &w, &g);
      if (!e) {
        *ever = false;
        *why = w;
        return {};
      }
    }
    if (!*ever) {
      *why = "a training job of " + std::to_string(plans.size()) + " hosts needs " + std::to_string(plans.size()) +
             " workers, and " + std::to_string(workers.size()) + " are registered";
      return {};
    }
    for (const auto& plan : plans) {
      bool e = false;
      uint32_t g = 0;
      WorkerInfo* w = PlaceHost(plan.req, &e, why, &g, avoid, prefer_on_demand, &taken, job, definition);
      if (!w) return {};
      taken.insert(w->reg.worker_id);
      picks.push_back({w, g, &plan});
    }
    return picks;
  }

  // Sends `a` (built for algo-1 on gang[0]) to every host of the gang with that host's name,
  // instance group and GPUs, and the addresses of all hosts (AssignTrial.host_addresses).
  void LaunchGang(Trial& t, const std::vector<GangPick>& gang, proto::wire::AssignTrial a, int64_t now,
                  std::vector<Outgoing>* out) {
    a.hosts.clear();
    a.instance_groups.clear();
    a.host_addresses.clear();
    for (size_t i = 0; i < gang.size(); ++i) {
      const std::string host = "algo-" + std::to_string(i + 1);
      a.hosts.push_back(host);
      a.host_addresses[host] = gang[i].worker->reg.host;
      const HostPlan& plan = *gang[i].plan;
      if (!plan.group.empty()) {
        auto g = std::find_if(a.instance_groups.begin(), a.instance_groups.end(),
                              [&](const auto& x) { return x.name == plan.group; });
        if (g == a.instance_groups.end()) {
          a.instance_groups.push_back({plan.group, plan.type.empty() ? "local" : plan.type, {}});
          g = a.instance_groups.end() - 1;
        }
        g->hosts.push_back(host);
      }
    }
    t.gang.clear();
    std::vector<std::string> where;
    for (size_t i = 0; i < gang.size(); ++i) {
      WorkerInfo& w = *gang[i].worker;
      const HostPlan& plan = *gang[i].plan;
      Trial::GangHost h;
      h.worker_id = w.reg.worker_id;
      h.group = plan.group;
      h.instance_type = !plan.type.empty() ? plan.type : w.reg.instance_type.empty() ? "local" : w.reg.instance_type;
      if (i == 0) {
        h.gpus = t.gpus;  // algo-1's, picked by Launch
      } else {
        auto& used = worker_gpus_used[w.reg.worker_id];
        h.gpus = PickGpus(w.reg, used, gang[i].gpus);
        for (uint32_t g : h.gpus) used.insert(g);
        w.running.insert({t.name, t.attempt});
      }
      proto::wire::AssignTrial mine = a;
      mine.current_host = a.hosts[i];
      mine.instance_group = h.group;
      mine.instance_type = h.instance_type;
      mine.gpus = h.gpus;
      where.push_back(a.hosts[i] + "=" + h.worker_id);
      t.gang.push_back(std::move(h));
      out->push_back({w.reg.worker_id, std::move(mine)});
    }
    std::string hosts;
    for (const auto& x : where) hosts += (hosts.empty() ? "" : " ") + x;
    if (!t.secondary.empty() && t.secondary.back().status == "Starting") t.secondary.pop_back();
    Secondary(t, "Starting", now, "Launching on " + std::to_string(gang.size()) + " hosts: " + hosts);
    SaveTrial(t);
    Event(now, "Assigned", t.tuning_job, t.name,
          "attempt " + std::to_string(t.attempt) + " on " + std::to_string(gang.size()) + " hosts: " + hosts);
  }

  // The other hosts of a gang whose host `wid` ended or was lost: stopped, their grace period.
  void StopGangPeers(const Trial& t, const std::string& wid, const std::string& reason, std::vector<Outgoing>* out) {
    if (t.gang.empty()) return;
    proto::wire::StopTrial m;
    m.trial = t.name;
    m.attempt = t.attempt;
    m.reason = "the attempt ended: " + reason;
    m.grace_period_s = static_cast<uint32_t>(opt.default_grace_period_s);
    SendToHosts(t, m, out, wid);
  }

  // Starts the trial's next attempt on `w` with `gpu_count` of its free GPUs; with `after`, an
  // attempt running on `w`, queues it there behind that attempt, in its slot and with its GPUs.
  void Launch(TuningJob& j, Trial& trial, WorkerInfo& w, uint32_t gpu_count, int64_t now,
              std::vector<Outgoing>* out, const Trial* after = nullptr, const std::vector<GangPick>* gang = nullptr) {
    Trial* t = &trial;
    const auto* def = Definition(j, t->definition_name);
    TakeWarm(w, j, t->definition_name);
    if (gang) {
      for (size_t i = 1; i < gang->size(); ++i) TakeWarm(*(*gang)[i].worker, j, t->definition_name);
    }
    t->attempt++;
    t->assigned_ms = now;
    t->curve.clear();
    t->state = TrialState::kInProgress;
    t->worker_id = w.reg.worker_id;
    t->started = false;
    t->last_seq = 0;
    if (!t->secondary.empty() && t->secondary.back().status == "Starting") t->secondary.pop_back();  // was waiting
    if (after) {
      t->after_trial = after->name;
      t->after_attempt = after->attempt;
      successor[{after->name, after->attempt}] = t->name;
      w.queued.insert({t->name, t->attempt});
      Secondary(*t, "Starting", now, "Queued on worker " + w.reg.worker_id + " to start when " + after->name + " ends");
    } else {
      Secondary(*t, "Starting", now, "Launching on worker " + w.reg.worker_id);
      w.running.insert({t->name, t->attempt});
    }

    proto::wire::AssignTrial a;
    a.trial = t->name;
    a.attempt = t->attempt;
    a.tuning_job = j.name;
    a.definition_name = t->definition_name;
    a.hyperparameters = t->hyperparameters;
    a.objective_metric = ObjectiveMetricFor(j, t->definition_name);
    a.hosts = {"algo-1"};
    a.current_host = "algo-1";
    a.grace_period_s = static_cast<uint32_t>(opt.default_grace_period_s);
    a.max_runtime_s = 86400;
    a.instance_type = w.reg.instance_type.empty() ? "local" : w.reg.instance_type;
    if (def) {
      if (def->algorithm_specification) {
        const auto& alg = *def->algorithm_specification;
        a.image = alg.training_image.value_or(alg.algorithm_name.value_or(""));
        a.input_mode = alg.training_input_mode.value_or("File");
        for (const auto& m : alg.metric_definitions) {
          a.metric_definitions.push_back({m.name.value_or(""), m.regex.value_or("")});
        }
      }
      a.environment = def->environment;
      // Single-host placement (multi-host gangs come with instance-group scheduling): this host
      // plays the first instance group, or the homogeneous ResourceConfig's type.
      if (def->resource_config && !def->resource_config->instance_groups.empty()) {
        const auto& g = def->resource_config->instance_groups[0];
        a.instance_group = g.instance_group_name.value_or("");
        a.instance_type = g.instance_type.value_or("");
        a.instance_groups.push_back({a.instance_group, a.instance_type, a.hosts});
      } else if (def->resource_config && def->resource_config->instance_type) {
        a.instance_type = *def->resource_config->instance_type;
      }
      if (def->stopping_condition && def->stopping_condition->max_runtime_in_seconds) {
        // MaxRuntimeInSeconds covers all attempts together: this one gets what the earlier ones
        // left (at least a second, so a spent budget ends it as MaxRuntimeExceeded at once).
        const int64_t left_ms = *def->stopping_condition->max_runtime_in_seconds * 1000 - t->training_ms;
        a.max_runtime_s = static_cast<uint32_t>(std::max<int64_t>(1, (left_ms + 999) / 1000));
      }
      for (const auto& c : def->input_data_config) {
        proto::wire::ChannelSpec cs;
        cs.name = c.channel_name.value_or("");
        if (c.data_source && c.data_source->s3_data_source) cs.uri = c.data_source->s3_data_source->s3_uri.value_or("");
        if (c.data_source && c.data_source->file_system_data_source) {
          cs.uri = c.data_source->file_system_data_source->directory_path.value_or("");
        }
        cs.content_type = c.content_type.value_or("");
        cs.input_mode = c.input_mode.value_or(a.input_mode);
        if (c.data_source && c.data_source->s3_data_source) {
          cs.s3_data_type = c.data_source->s3_data_source->s3_data_type.value_or("");
          cs.distribution_type = c.data_source->s3_data_source->s3_data_distribution_type.value_or("");
        }
        cs.compression_type = c.compression_type.value_or("");
        cs.record_wrapper_type = c.record_wrapper_type.value_or("");
        a.channels.push_back(std::move(cs));
      }
      if (def->output_data_config) a.output_path = def->output_data_config->s3_output_path.value_or("");
      if (def->checkpoint_config) {
        // Each training job of the tuning job under its own prefix, so that no trial resumes
        // from another's state; its attempts share it.
        std::string uri = def->checkpoint_config->s3_uri.value_or("");
        while (!uri.empty() && uri.back() == '/') uri.pop_back();
        a.checkpoint_uri = uri.empty() ? "" : uri + "/" + t->name;
        a.checkpoint_local_path = def->checkpoint_config->local_path.value_or("/opt/ml/checkpoints");
      }
      proto::TuningJobSpec one;
      one.training_job_definition = *def;
      a.spec_json = proto::EncodeCreateRequest(one)["TrainingJobDefinition"].dump();
    }
    // GPUs: placement's count (coordinator/placement.h), never one another trial holds; a
    // queued attempt gets its predecessor's, which it uses only once that one has ended.
    auto& used = worker_gpus_used[w.reg.worker_id];
    const std::vector<uint32_t> mine = after ? after->gpus : PickGpus(w.reg, used, gpu_count);
    for (uint32_t g : mine) {
      used.insert(g);
      a.gpus.push_back(static_cast<int32_t>(g));
    }
    attempt_gpus[{t->name, t->attempt}] = mine;
    t->gpus = mine;
    if (after) {
      a.after_trial = after->name;
      a.after_attempt = after->attempt;
    }

    if (gang && gang->size() > 1) {
      LaunchGang(*t, *gang, a, now, out);  // sends every host's AssignTrial
      return;
    }
    SaveTrial(*t);
    Event(now, after ? "AssignedAhead" : "Assigned", j.name, t->name,
          "attempt " + std::to_string(t->attempt) + " on worker " + w.reg.worker_id +
              (mine.empty() ? "" : " with " + std::to_string(mine.size()) + " GPU(s)") +
              (after ? ", to start when " + after->name + " ends" : ""));
    out->push_back({w.reg.worker_id, std::move(a)});
  }

  // Fills free slots, one host at a time: to the job with the fewest running trials (then the
  // oldest: fair share, see docs/architecture.md), on the worker with the most free slots among
  // those that fit it (coordinator/placement.h). A job that cannot place anything now is passed
  // over for this round, so it never blocks the others.
  void Schedule(int64_t now, std::vector<Outgoing>* out) {
    std::set<std::string> passed;
    for (;;) {
      // With every slot taken PlaceNext fails for each job in turn, after recording why it waits.
      TuningJob* pick = nullptr;
      int pick_active = 0;
      for (auto& [key, jp] : jobs) {
        TuningJob& j = *jp;
        if (j.status != "InProgress" || !j.completion_reason.empty() || passed.count(key)) continue;
        int active = ActiveCount(j);
        if (active >= MaxParallel(j)) continue;
        bool can_new = static_cast<int64_t>(j.trials.size()) < MaxJobs(j) && j.strategy &&
                       !j.strategy->Exhausted(History(j));
        if (!can_new && !HasPending(j)) {
          MaybeFinish(j, now, out);
          continue;
        }
        if (!pick || active < pick_active ||
            (active == pick_active && j.creation_ms < pick->creation_ms)) {
          pick = &j;
          pick_active = active;
        }
      }
      if (!pick) break;
      if (!PlaceNext(*pick, now, out)) passed.insert(Lower(pick->name));
    }
    AssignAhead(now, out);
  }

  // Takes back an attempt assigned ahead: the worker drops it (or kills it at once, had its
  // predecessor just ended), the trial waits for a slot again, oldest first in its job.
  void Withdraw(Trial& q, int64_t now, std::vector<Outgoing>* out) {
    proto::wire::StopTrial m;
    m.trial = q.name;
    m.attempt = q.attempt;
    m.reason = "withdrawn before it started: its slot goes to another tuning job (fair share)";
    m.grace_period_s = 0;
    out->push_back({q.worker_id, std::move(m)});
    ReleaseSlot(q, now);
    Event(now, "Withdrawn", q.tuning_job, q.name,
          "attempt " + std::to_string(q.attempt) + " taken back from worker " + q.worker_id +
              " before it started: another tuning job waits for a slot");
    ToQueue(q);
    Secondary(q, "Starting", now, "waiting for a slot (withdrawn from its worker for another tuning job)");
    SaveTrial(q);
  }

  // Whether the job's running attempts may get successors (CoreOptions::assign_ahead).
  bool AheadAllowed(const TuningJob& j) const {
    if (!opt.assign_ahead || j.status != "InProgress" || !j.completion_reason.empty() || !j.strategy) return false;
    if (j.spec.Definitions().size() != 1 || HasPending(j)) return false;
    if (HostsFor(j, j.spec.Definitions()[0]->definition_name.value_or("")).size() != 1) return false;  // no gangs
    if (static_cast<int64_t>(j.trials.size()) >= MaxJobs(j)) return false;
    switch (j.strategy->ProposeAhead()) {
      case Strategy::Ahead::kAlways: return true;
      case Strategy::Ahead::kNever: return false;
      case Strategy::Ahead::kWhileShort: break;
    }
    const JobIndex* ix = Index(j);
    if (!ix || ix->durations.size() < 3) return false;
    std::vector<int64_t> d(ix->durations.begin(), ix->durations.end());
    std::nth_element(d.begin(), d.begin() + static_cast<long>(d.size() / 2), d.end());
    return d[d.size() / 2] < opt.assign_ahead_max_trial_ms;
  }

  // Gives running attempts a successor from their job, queued on their worker (see
  // CoreOptions::assign_ahead): one per running attempt. While another job waits for a free
  // worker, none is given and those already queued are withdrawn: the next free slots are the
  // scheduler's to share (fair share), not one job's for another training job's length.
  void AssignAhead(int64_t now, std::vector<Outgoing>* out) {
    if (!opt.assign_ahead) return;
    std::set<std::string> waiting;  // jobs waiting for a free worker that exists
    for (const auto& [key, jp] : jobs) {
      if (jp->status == "InProgress" && jp->waiting_reason.rfind("waiting for a free worker", 0) == 0) {
        waiting.insert(key);
      }
    }
    auto others_wait = [&](const TuningJob& j) {
      return waiting.size() > 1 || (waiting.size() == 1 && !waiting.count(Lower(j.name)));
    };
    if (!waiting.empty()) {
      std::vector<Trial*> withdraw;
      for (auto& [wid, w] : workers) {
        for (const auto& key : w.queued) {
          auto it = trials.find(key.first);
          TuningJob* j = it == trials.end() ? nullptr : Job(it->second.tuning_job);
          if (j && others_wait(*j)) withdraw.push_back(&it->second);
        }
      }
      for (Trial* q : withdraw) Withdraw(*q, now, out);
    }
    std::map<std::string, bool> allowed;  // per job, asked once per round
    for (auto& [wid, w] : workers) {
      if (!w.draining.empty()) continue;
      const std::vector<std::pair<std::string, uint32_t>> running(w.running.begin(), w.running.end());
      for (const auto& key : running) {
        if (w.queued.size() >= w.reg.slots) break;
        if (successor.count(key)) continue;
        auto it = trials.find(key.first);
        if (it == trials.end()) continue;
        Trial& p = it->second;
        if (p.attempt != key.second || p.state != TrialState::kInProgress || p.stop_requested) continue;
        TuningJob* j = Job(p.tuning_job);
        if (!j) continue;
        auto [ok, fresh] = allowed.try_emplace(Lower(j->name), false);
        if (fresh) ok->second = AheadAllowed(*j) && !others_wait(*j);
        if (!ok->second) continue;
        if (j->strategy->Exhausted(History(*j))) {
          ok->second = false;
          continue;
        }
        Trial* q = CreateTrial(*j, now);
        if (!q) {
          ok->second = false;
          continue;
        }
        Launch(*j, *q, w, 0, now, out, &p);
        if (static_cast<int64_t>(j->trials.size()) >= MaxJobs(*j)) ok->second = false;
      }
    }
  }

  // Ends the job Failed with `reason`; its running trials are stopped.
  void FailJob(TuningJob& j, const std::string& reason, int64_t now, std::vector<Outgoing>* out) {
    j.status = "Failed";
    j.failure_reason = Truncate(reason);
    j.end_ms = now;
    StopAll(j, "tuning job failed: " + j.failure_reason, now, out);
    SaveJob(j, now);
    Event(now, "JobFailed", j.name, "", j.failure_reason);
  }

  // Trials that waited for a host longer than their definition's
  // StoppingCondition.MaxPendingTimeInSeconds fail with a capacity error; when no registered
  // worker could ever serve them the tuning job ends too (Failed, with the reason).
  void ExpirePending(TuningJob& j, int64_t now, std::vector<Outgoing>* out) {
    if (j.status != "InProgress") return;
    // A job that no registered worker can serve has no trial to time out: its wait counts.
    const auto defs = j.spec.Definitions();
    if (!defs.empty() && j.waiting_since_ms > 0 && j.waiting_reason.rfind("no registered worker", 0) == 0 &&
        defs[0]->stopping_condition && defs[0]->stopping_condition->max_pending_time_in_seconds &&
        now - j.waiting_since_ms >= *defs[0]->stopping_condition->max_pending_time_in_seconds * 1000) {
      FailJob(j, "MaxPendingTimeInSeconds (" + std::to_string(*defs[0]->stopping_condition->max_pending_time_in_seconds) +
                     " s) exceeded: " + j.waiting_reason, now, out);
      return;
    }
    std::vector<Trial*> expired;
    for (int index : Index(j).pending) {
      Trial& t = trials.at(Index(j).history.at(static_cast<size_t>(index - 1)).trial);
      const auto* d = Definition(j, t.definition_name);
      if (!d || !d->stopping_condition || !d->stopping_condition->max_pending_time_in_seconds) continue;
      if (now - t.creation_ms >= *d->stopping_condition->max_pending_time_in_seconds * 1000) expired.push_back(&t);
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
        FailJob(j, "MaxPendingTimeInSeconds (" + std::to_string(limit) + " s) exceeded: " + j.waiting_reason, now, out);
        return;
      }
    }
  }

  // Stops every trial of the job. Those queued ahead first: a worker reads its messages in
  // order, so a queued trial's stop is there before its predecessor can end and free the slot
  // (otherwise the queued one could start for a moment and count as having run).
  void StopAll(TuningJob& j, const std::string& reason, int64_t now, std::vector<Outgoing>* out) {
    for (const auto& name : j.trials) {
      Trial& t = trials.at(name);
      if (t.Queued()) StopTrialMsg(t, reason, now, out);
    }
    for (const auto& name : j.trials) StopTrialMsg(trials.at(name), reason, now, out);
  }

  void StopTrialMsg(Trial& t, const std::string& reason, int64_t now, std::vector<Outgoing>* out) {
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
    proto::wire::StopTrial m;
    m.trial = t.name;
    m.attempt = t.attempt;
    m.reason = reason;
    m.grace_period_s = static_cast<uint32_t>(opt.default_grace_period_s);
    SendToHosts(t, m, out);
  }

  // A message for every host of the trial's current attempt (one for a single-host attempt).
  void SendToHosts(const Trial& t, const proto::wire::StopTrial& m, std::vector<Outgoing>* out,
                   const std::string& except = "") {
    for (const auto& wid : t.Hosts()) {
      if (wid != except) out->push_back({wid, m});
    }
  }

  // Applies the completion rules to a job.
  void MaybeFinish(TuningJob& j, int64_t now, std::vector<Outgoing>* out) {
    if (j.Terminal()) return;
    if (j.status == "Stopping") {
      if (!AnyUnfinished(j)) {
        j.status = "Stopped";
        j.end_ms = now;
        SaveJob(j, now);
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
      }
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
    bool no_more = !j.completion_reason.empty() || static_cast<int64_t>(j.trials.size()) >= MaxJobs(j) ||
                   (j.strategy && j.strategy->Exhausted(History(j)) && !HasPending(j));
    if (!no_more || AnyUnfinished(j)) return;
    const int succeeded = Index(j).succeeded;
    j.end_ms = now;
    if (succeeded == 0) {
      j.status = "Failed";
      j.failure_reason = "No training job succeeded after " + std::to_string(j.trials.size()) +
                         " attempts. Please take a look at the training job failures to get more details.";
    } else {
      j.status = "Completed";
      if (j.completion_reason.empty()) {
        j.completion_reason = static_cast<int64_t>(j.trials.size()) >= MaxJobs(j)
                                  ? "MaxNumberOfTrainingJobs reached"
                                  : "search space exhausted";
      }
    }
    SaveJob(j, now);
    Event(now, "Job" + j.status, j.name, "", j.status == "Failed" ? j.failure_reason : j.completion_reason);
  }

  // BestObjectiveNotImproving, ConvergenceDetected and ResourceLimits.MaxRuntimeInSeconds: the
  // reason the job completes now, or "".
  std::string CompletionCriterionMet(TuningJob& j, int64_t now) {
    const auto& cfg = *j.spec.hyper_parameter_tuning_job_config;
    JobIndex& ix = Index(j);
    if (cfg.resource_limits && cfg.resource_limits->max_runtime_in_seconds &&
        now - j.creation_ms >= *cfg.resource_limits->max_runtime_in_seconds * 1000) {
      return "ResourceLimits.MaxRuntimeInSeconds (" + std::to_string(*cfg.resource_limits->max_runtime_in_seconds) +
             " s) reached";
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

  void FinishAll(int64_t now, std::vector<Outgoing>* out) {
    for (auto& [k, j] : jobs) ExpirePending(*j, now, out);
    for (auto& [k, j] : jobs) ExpireMaxWait(*j, now, out);
    for (auto& [k, j] : jobs) MaybeFinish(*j, now, out);
  }

  // ---- message handlers --------------------------------------------------------------------------

  Trial* CurrentAttempt(const std::string& trial, uint32_t attempt) {
    auto it = trials.find(trial);
    if (it == trials.end() || it->second.attempt != attempt || !it->second.Active()) return nullptr;
    return &it->second;
  }

  void OnRegister(const std::string& wid, const proto::wire::Register& r, int64_t now, std::vector<Outgoing>* out) {
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
    ack.accepted = true;
    // A worker re-sends Register until it is acknowledged, so copies queued while the
    // coordinator was away arrive together: the same registration again is not news.
    // Acting on it again could be wrong, too: attempts assigned since the first copy are not in
    // its `running` list. So a repeat is acknowledged and changes nothing.
    auto known = workers.find(wid);
    if (known != workers.end() && known->second.reg == r) {  // same session, same contents
      known->second.last_seen_ms = now;
      out->push_back({wid, std::move(ack)});
      return;
    }
    WorkerInfo& w = workers[wid];
    w.queued.clear();
    w.ending.clear();  // what it no longer reports was found lost just below
    std::set<std::pair<std::string, uint32_t>> reported;
    for (const auto& ra : r.running) reported.insert({ra.trial, ra.attempt});
    // Attempts we placed on this worker that it no longer runs were lost with its restart.
    for (auto& [name, t] : trials) {
      if (t.Active() && t.OnWorker(wid) && !reported.count({name, t.attempt})) {
        AttemptLost(t, "worker " + wid + " registered without the attempt", now);
      }
    }
    w.reg = r;
    w.last_seen_ms = now;
    w.running.clear();
    w.draining.clear();  // a new registration is new capacity
    std::vector<Trial*> queued;
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
      } else {
        ack.stop.push_back(ra);
      }
    }
    // Attempts assigned ahead stay queued behind their predecessor while it runs here; else
    // they have its slot (the worker starts them at once).
    for (Trial* t : queued) {
      if (w.running.count({t->after_trial, t->after_attempt})) {
        w.queued.insert({t->name, t->attempt});
        successor[{t->after_trial, t->after_attempt}] = t->name;
      } else {
        Promote(*t);
      }
    }
    Event(now, "WorkerRegistered", "", "",
          wid + " host=" + r.host + " slots=" + std::to_string(r.slots) + " gpus=" + std::to_string(r.gpus.size()) +
              (r.running.empty() ? "" : " re-attached=" + std::to_string(w.running.size()) +
                                            " stopped=" + std::to_string(ack.stop.size())));
    out->push_back({wid, std::move(ack)});
  }

  void OnTrialStarted(const std::string& wid, const proto::wire::TrialStarted& m, int64_t now) {
    Trial* t = CurrentAttempt(m.trial, m.attempt);
    if (!t || t->started) return;
    if (t->Queued()) {
      // Its predecessor's program has ended (the worker starts it only then) and its exit report
      // is on its way, or the predecessor never reached the worker: the slot is this attempt's
      // from now on, and heartbeats keep checking the predecessor (WorkerInfo::ending).
      auto w = workers.find(wid);
      if (w != workers.end() && w->second.running.erase({t->after_trial, t->after_attempt}) > 0) {
        w->second.ending.insert({t->after_trial, t->after_attempt});
      }
      Promote(*t);
    }
    t->started = true;
    t->attempt_start_ms = now;
    auto w = workers.find(wid);
    t->on_spot = w != workers.end() && w->second.reg.spot;
    if (t->start_ms == 0) t->start_ms = now;
    Secondary(*t, "Training", now, "Training in progress on " + wid);
    SaveTrial(*t);
  }

  // Returns whether to acknowledge. Batches are applied in seq order, exactly once: a duplicate
  // is acknowledged again, a batch after a gap (its predecessor lost with a connection) is left
  // unacknowledged, so the worker re-sends both, in order. An acknowledgement therefore means
  // "this seq and every earlier one are applied", which is how the worker reads it.
  bool OnMetrics(const std::string& wid, const proto::wire::MetricPoints& m, int64_t now, std::vector<Outgoing>* out) {
    Trial* t = CurrentAttempt(m.trial, m.attempt);
    if (!t || m.seq <= t->last_seq) return true;  // stale attempt or duplicate batch
    if (!t->gang.empty() && wid != t->worker_id) return true;  // only algo-1 reports a gang's metrics
    if (m.seq != t->last_seq + 1) return false;   // a gap: wait for the missing batch
    TuningJob* j = Job(t->tuning_job);
    std::string objective = j ? ObjectiveMetricFor(*j, t->definition_name) : "";
    const bool track = j && TracksCurves(*j);
    const size_t old_len = t->curve.size();
    std::vector<MetricRow> rows;
    for (const auto& p : m.points) {
      rows.push_back({t->name, m.attempt, m.seq, p.name, p.value, p.timestamp_ms, p.step});
      t->final_metrics[p.name] = p.value;
      if (p.name == objective) {
        t->objective = p.value;
        if (track) t->curve.push_back(p.value);
      }
    }
    t->last_seq = m.seq;
    Reindex(*t);
    Note(InTransaction(store, [&] {
      HPO_RETURN_IF_ERROR(store->AppendMetrics(rows));
      return store->PutTrial(TrialToRow(*t));
    }));
    if (track && t->curve.size() > old_len) MaybeStopEarly(*j, *t, old_len, now, out);
    return true;
  }

  void OnLogLines(const proto::wire::LogLines& m) {
    auto it = trials.find(m.trial);
    if (it == trials.end() || m.attempt > it->second.attempt) return;  // unknown trial or attempt
    std::vector<LogRow> rows;
    for (size_t i = 0; i < m.lines.size(); ++i) {
      uint64_t line = m.first_line + i;
      if (line >= CoordinatorCore::kMaxLogLinesPerAttempt) break;
      rows.push_back({0, m.trial, m.attempt, line, m.lines[i]});
    }
    if (!rows.empty()) Note(store->AppendLogs(rows));
  }

  // Returns whether to acknowledge: an exit whose attempt still misses metric batches (m.seq
  // says how many were sent) waits for them, so no point is lost behind the exit.
  bool OnExited(const std::string& wid, const proto::wire::TrialExited& m, int64_t now, std::vector<Outgoing>* out) {
    Trial* t = CurrentAttempt(m.trial, m.attempt);
    if (!t) return true;
    if (m.seq > t->last_seq) return false;
    TuningJob* j = Job(t->tuning_job);
    std::string objective = j ? ObjectiveMetricFor(*j, t->definition_name) : "";
    if (t->gang.empty() || wid == t->worker_id) {  // a gang's metrics are algo-1's
      for (const auto& fm : m.final_metrics) {
        t->final_metrics[fm.name] = fm.value;
        if (fm.name == objective) t->objective = fm.value;
      }
    }
    if (!t->gang.empty()) {
      auto host = std::find_if(t->gang.begin(), t->gang.end(), [&](const auto& h) { return h.worker_id == wid; });
      if (host == t->gang.end() || !host->exit.empty()) return true;  // not a host of it, or a repeat
      host->exit = m.status;
      const size_t index = static_cast<size_t>(host - t->gang.begin());
      if (m.status == "Completed") {
        const bool all = std::all_of(t->gang.begin(), t->gang.end(), [](const auto& h) { return h.exit == "Completed"; });
        if (!all) {  // the attempt completes when every host has
          SaveTrial(*t);
          return true;
        }
      } else {  // the first host that ends otherwise ends the attempt
        StopGangPeers(*t, wid, "algo-" + std::to_string(index + 1) + " ended " + m.status, out);
      }
    }
    if (m.status == "Interrupted" && !t->stop_requested && j && j->status == "InProgress") {
      Interrupted(*t, m.failure_reason.empty() ? "capacity interrupted" : m.failure_reason, now);
      return true;
    }
    if (m.status == "InfraError" || m.status == "Interrupted") {
      InfraFailure(*t, m.failure_reason.empty() ? m.status : m.failure_reason, now);
      return true;
    }
    const std::vector<std::string> hosts = t->Hosts();  // before ReleaseSlot forgets them
    ReleaseSlot(*t, now);
    KeepWarm(*t, hosts, now);
    t->end_ms = now;
    // No start time for an attempt whose program never ran (a start failure, a stop while it
    // was staging or queued ahead); TrialStarted always comes before the exit report.
    if (t->start_ms == 0 && t->started) t->start_ms = now;
    if (m.status == "Completed") {
      t->state = TrialState::kCompleted;
      if (j && t->started) {
        auto& d = Index(*j).durations;
        d.push_back(now - t->start_ms);
        if (d.size() > 25) d.pop_front();
      }
      Secondary(*t, "Uploading", now);
      Secondary(*t, "Completed", now);
    } else if (m.status == "Stopped") {
      t->state = TrialState::kStopped;
      if (t->stop_reason.rfind("MaxWaitTimeExceeded", 0) == 0) {
        Secondary(*t, "MaxWaitTimeExceeded", now, t->stop_reason);
      } else {
        Secondary(*t, m.secondary_status.empty() ? "Stopped" : m.secondary_status, now, m.failure_reason);
      }
    } else {
      t->state = TrialState::kFailed;
      t->failure_reason = Truncate(m.failure_reason.empty()
                                       ? "AlgorithmError: the training program exited with code " +
                                             std::to_string(m.exit_code)
                                       : m.failure_reason);
      Secondary(*t, "Failed", now, t->failure_reason);
    }
    SaveTrial(*t);
    Event(now, "TrialExited", t->tuning_job, t->name,
          std::string(TrialStateName(t->state)) + (t->objective ? " objective=" + std::to_string(*t->objective) : ""));
    return true;
  }

  // A heartbeat says what the worker holds. An attempt it runs that is not its current one here
  // (re-queued meanwhile, or an assignment that arrived late) is stopped, so a trial never runs
  // twice at once. An attempt placed on it that it does not hold, a lease after it was sent, was
  // lost in transit (a connection reset drops queued messages): it is re-queued (without
  // spending a retry when it never started), instead of waiting forever.
  void Reconcile(WorkerInfo& w, const proto::wire::Heartbeat& h, int64_t now, std::vector<Outgoing>* out) {
    const std::string& wid = w.reg.worker_id;
    std::set<std::pair<std::string, uint32_t>> held;
    for (const auto& r : h.running) {
      held.insert({r.trial, r.attempt});
      auto it = trials.find(r.trial);
      const bool current = it != trials.end() && it->second.attempt == r.attempt &&
                           (it->second.Active() || it->second.state == TrialState::kInProgress) &&
                           it->second.OnWorker(wid);
      if (current) continue;
      const bool ended_here = it != trials.end() && it->second.attempt == r.attempt && it->second.Terminal();
      if (ended_here) continue;  // its exit is being acknowledged
      proto::wire::StopTrial m;
      m.trial = r.trial;
      m.attempt = r.attempt;
      m.reason = "the coordinator no longer runs this attempt";
      m.grace_period_s = static_cast<uint32_t>(opt.default_grace_period_s);
      out->push_back({wid, std::move(m)});
    }
    std::vector<std::pair<std::string, uint32_t>> placed(w.running.begin(), w.running.end());
    placed.insert(placed.end(), w.queued.begin(), w.queued.end());
    placed.insert(placed.end(), w.ending.begin(), w.ending.end());
    for (const auto& key : placed) {
      if (held.count(key)) continue;
      auto it = trials.find(key.first);
      if (it == trials.end() || it->second.attempt != key.second || !it->second.Active()) continue;
      if (now - it->second.assigned_ms < opt.lease_ms) continue;  // may still be on its way
      AttemptLost(it->second, "worker " + wid + " does not hold attempt " + std::to_string(key.second) +
                                  " (its assignment was lost in transit)", now);
    }
  }

  void Handle(const std::string& wid, const proto::wire::Message& msg, int64_t now, std::vector<Outgoing>* out) {
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
      proto::wire::Ack a;
      a.type = static_cast<uint16_t>(proto::wire::MsgType::kHeartbeat);
      a.seq = h->seq;
      out->push_back({wid, std::move(a)});
      Reconcile(w->second, *h, now, out);
    } else if (const auto* s = std::get_if<proto::wire::TrialStarted>(&msg)) {
      OnTrialStarted(wid, *s, now);
      out->push_back({wid, proto::wire::Ack{static_cast<uint16_t>(proto::wire::MsgType::kTrialStarted), s->trial, s->attempt, 0}});
    } else if (const auto* m = std::get_if<proto::wire::MetricPoints>(&msg)) {
      if (OnMetrics(wid, *m, now, out)) {
        out->push_back({wid, proto::wire::Ack{static_cast<uint16_t>(proto::wire::MsgType::kMetricPoints), m->trial, m->attempt, m->seq}});
      }
    } else if (const auto* x = std::get_if<proto::wire::TrialExited>(&msg)) {
      if (OnExited(wid, *x, now, out)) {
        out->push_back({wid, proto::wire::Ack{static_cast<uint16_t>(proto::wire::MsgType::kTrialExited), x->trial, x->attempt, x->seq}});
      }
    } else if (const auto* l = std::get_if<proto::wire::LogLines>(&msg)) {
      OnLogLines(*l);
      out->push_back({wid, proto::wire::Ack{static_cast<uint16_t>(proto::wire::MsgType::kLogLines), l->trial, l->attempt, l->seq}});
    } else if (const auto* n = std::get_if<proto::wire::InterruptionNotice>(&msg)) {
      // No new trial goes there; its running attempts end Interrupted (the worker stops them).
      w->second.draining = "interruption notice: " + n->reason;
      Event(now, "InterruptionNotice", "", "", wid + ": " + n->reason);
    } else if (const auto* e = std::get_if<proto::wire::Error>(&msg)) {
      Event(now, "WorkerError", "", "", wid + ": " + e->code + ": " + e->message);
    }
  }
};

CoordinatorCore::CoordinatorCore(JobStore* store, CoreOptions options)
    : impl_(std::make_unique<Impl>()), options_(std::move(options)) {
  impl_->store = store;
  impl_->opt = options_;
  impl_->Load();
}

CoordinatorCore::~CoordinatorCore() = default;

Result<std::string> CoordinatorCore::Submit(const proto::TuningJobSpec& spec, proto::Spelling spelling,
                                            int64_t now_ms, std::vector<Outgoing>* out) {
  proto::FieldErrors errs = proto::Validate(spec, spelling, options_.limits);
  if (!errs.empty()) return Status::InvalidArgument(proto::JoinErrors(errs));
  const std::string name = *spec.hyper_parameter_tuning_job_name;
  if (impl_->Job(name)) {
    return Status::AlreadyExists("a tuning job named " + name + " already exists (names are not case sensitive)");
  }
  int64_t live = 0;
  for (const auto& [k, j] : impl_->jobs) live += j->Terminal() ? 0 : 1;
  if (live >= options_.max_concurrent_tuning_jobs) {
    return Status::ResourceExhausted("this coordinator already runs " + std::to_string(live) +
                                     " tuning jobs, its limit (raise max_concurrent_tuning_jobs in its config)");
  }
  if (spec.warm_start_config) {
    Status ws = impl_->CheckWarmStart(spec);
    if (!ws.ok()) return ws;
  }
  // Multi-host training jobs run as gangs (one worker per host); the wire carries at most 1024.
  const auto defs = spec.Definitions();
  for (size_t i = 0; i < defs.size(); ++i) {
    const auto& rc = defs[i]->resource_config;
    if (!rc) continue;
    int64_t hosts = rc->instance_count.value_or(1);
    if (!rc->instance_groups.empty()) {
      hosts = 0;
      for (const auto& g : rc->instance_groups) hosts += g.instance_count.value_or(1);
    }
    if (hosts > 1024) {
      const std::string at = spec.training_job_definition ? std::string("TrainingJobDefinition")
                                                          : "TrainingJobDefinitions[" + std::to_string(i) + "]";
      return Status::InvalidArgument(at + ".ResourceConfig asks for " + std::to_string(hosts) +
                                     " hosts per training job; at most 1024 are supported");
    }
  }
  auto job = std::make_unique<TuningJob>();
  job->name = name;
  job->spec = spec;
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
  Status s = impl_->store->PutJob(JobToRow(j));
  if (!s.ok()) return s;  // nothing acknowledged, nothing changed
  impl_->jobs[Lower(name)] = std::move(job);
  if (spec.warm_start_config) impl_->BuildPrior(j);
  impl_->Event(now_ms, "JobCreated", name, "", "strategy " + cfg.strategy.value_or(""));
  if (out) impl_->Schedule(now_ms, out);
  return JobArn(name);
}

Status CoordinatorCore::Stop(const std::string& name, int64_t now_ms, std::vector<Outgoing>* out) {
  TuningJob* j = impl_->Job(name);
  if (!j) return Status::NotFound("no tuning job named " + name);
  if (j->Terminal() || j->status == "Stopping") return Status::Ok();
  j->status = "Stopping";
  impl_->SaveJob(*j, now_ms);
  impl_->Event(now_ms, "JobStopping", j->name, "", "stop requested");
  impl_->StopAll(*j, "tuning job stopped", now_ms, out);
  impl_->MaybeFinish(*j, now_ms, out);
  return Status::Ok();
}

std::vector<Outgoing> CoordinatorCore::OnMessage(const std::string& worker_id, const proto::wire::Message& msg,
                                                 int64_t now_ms) {
  std::vector<Outgoing> out;
  impl_->Handle(worker_id, msg, now_ms, &out);
  impl_->FinishAll(now_ms, &out);
  impl_->Schedule(now_ms, &out);
  return out;
}

std::vector<Outgoing> CoordinatorCore::OnMessages(const std::vector<Incoming>& batch, int64_t now_ms) {
  std::vector<Outgoing> out;
  Status begun = impl_->store->Begin();
  for (const auto& in : batch) impl_->Handle(in.worker_id, in.message, now_ms, &out);
  impl_->FinishAll(now_ms, &out);
  impl_->Schedule(now_ms, &out);
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
  Status begun = impl_->store->Begin();
  std::vector<Outgoing> out = TickInTransaction(now_ms);
  if (begun.ok()) {
    Status committed = impl_->store->Commit();
    if (!committed.ok()) {
      impl_->Note(committed);
      return {};
    }
  }
  return out;
}

std::vector<Outgoing> CoordinatorCore::TickInTransaction(int64_t now_ms) {
  std::vector<Outgoing> out;
  if (impl_->loaded_at_ms < 0) impl_->loaded_at_ms = now_ms;
  // Lost workers.
  for (auto it = impl_->workers.begin(); it != impl_->workers.end();) {
    if (now_ms - it->second.last_seen_ms > options_.lease_ms) {
      std::string wid = it->first;
      impl_->Event(now_ms, "WorkerLost", "", "", wid + " missed its lease");
      for (auto& [name, t] : impl_->trials) {
        if (t.Active() && t.OnWorker(wid)) {
          impl_->StopGangPeers(t, wid, "host on worker " + wid + " was lost", &out);
          impl_->AttemptLost(t, "worker " + wid + " was lost", now_ms);
        }
      }
      impl_->worker_gpus_used.erase(wid);
      it = impl_->workers.erase(it);
    } else {
      ++it;
    }
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
        impl_->StopGangPeers(t, gone, "host on worker " + gone + " did not come back", &out);
        impl_->AttemptLost(t, "worker " + gone + " did not come back", now_ms);
      }
    }
  }
  impl_->ExpireWarm(now_ms);
  impl_->FinishAll(now_ms, &out);
  impl_->Schedule(now_ms, &out);
  return out;
}

// ---- queries ---------------------------------------------------------------------------------------

std::string CoordinatorCore::JobArn(const std::string& job) const {
  return "arn:aws:sagemaker:" + options_.region + ":" + options_.account_id + ":hyper-parameter-tuning-job/" +
         Lower(job);
}

std::string CoordinatorCore::TrainingJobArn(const std::string& trial) const {
  return "arn:aws:sagemaker:" + options_.region + ":" + options_.account_id + ":training-job/" + Lower(trial);
}

proto::TrainingJobSummary CoordinatorCore::Summary(const Trial& t) const {
  proto::TrainingJobSummary s;
  const TuningJob* j = FindJob(t.tuning_job);
  if (!t.definition_name.empty()) s.training_job_definition_name = t.definition_name;
  s.training_job_name = t.name;
  s.training_job_arn = TrainingJobArn(t.name);
  s.tuning_job_name = t.tuning_job;
  s.creation_time = proto::Timestamp{t.creation_ms};
  if (t.start_ms) s.training_start_time = proto::Timestamp{t.start_ms};
  if (t.end_ms) s.training_end_time = proto::Timestamp{t.end_ms};
  s.training_job_status = t.state == TrialState::kPending ? "InProgress" : TrialStateName(t.state);
  s.tuned_hyper_parameters = t.tuned;
  if (!t.failure_reason.empty()) s.failure_reason = t.failure_reason;
  if (t.objective && j) {
    s.final_hyper_parameter_tuning_job_objective_metric = proto::FinalObjectiveMetric{
        impl_->MaximizeFor(*j, t.definition_name) ? "Maximize" : "Minimize",
        impl_->ObjectiveMetricFor(*j, t.definition_name), *t.objective};
  }
  s.objective_status = impl_->ObjectiveSucceeded(t) ? "Succeeded" : (t.Terminal() ? "Failed" : "Pending");
  return s;
}

Result<proto::DescribeTuningJobResponse> CoordinatorCore::Describe(const std::string& name) const {
  const TuningJob* j = FindJob(name);
  if (!j) return Status::NotFound("no tuning job named " + name);
  proto::DescribeTuningJobResponse r;
  r.spec = j->spec;
  r.spec.hyper_parameter_tuning_job_name = j->name;
  auto& st = r.status;
  st.hyper_parameter_tuning_job_arn = JobArn(j->name);
  st.hyper_parameter_tuning_job_status = j->status;
  st.creation_time = proto::Timestamp{j->creation_ms};
  if (j->end_ms) st.hyper_parameter_tuning_end_time = proto::Timestamp{j->end_ms};
  st.last_modified_time = proto::Timestamp{j->last_modified_ms};
  proto::TrainingJobStatusCounters c{0, 0, 0, 0, 0};
  proto::ObjectiveStatusCounters o{0, 0, 0};
  int64_t runtime_ms = 0;
  for (const auto& tn : j->trials) {
    const Trial& t = impl_->trials.at(tn);
    switch (t.state) {
      case TrialState::kPending:
      case TrialState::kInProgress:
      case TrialState::kStopping: ++*c.in_progress; break;
      case TrialState::kCompleted: ++*c.completed; break;
      case TrialState::kStopped: ++*c.stopped; break;
      case TrialState::kFailed:
        if (impl_->retryable_failures.count(t.name) || t.failure_reason.rfind("InternalServerError", 0) == 0) {
          ++*c.retryable_error;
        } else {
          ++*c.non_retryable_error;
        }
        break;
    }
    if (impl_->ObjectiveSucceeded(t)) {
      ++*o.succeeded;
    } else if (t.Terminal()) {
      ++*o.failed;
    } else {
      ++*o.pending;
    }
    if (t.start_ms && t.end_ms) runtime_ms += t.end_ms - t.start_ms;
  }
  st.training_job_status_counters = c;
  st.objective_status_counters = o;
  const Trial* best = impl_->Best(*j);
  if (best) st.best_training_job = Summary(*best);
  if (j->spec.warm_start_config) {
    // The best across this job and its parents (SageMaker's OverallBestTrainingJob).
    const Trial* overall = best;
    for (const auto& p : j->spec.warm_start_config->parent_hyper_parameter_tuning_jobs) {
      const TuningJob* parent = FindJob(p.hyper_parameter_tuning_job_name.value_or(""));
      const Trial* pb = parent ? impl_->Best(*parent) : nullptr;
      if (pb && (!overall || Impl::Better(*pb->objective, *overall->objective, j->maximize))) overall = pb;
    }
    if (overall) st.overall_best_training_job = Summary(*overall);
  }
  if (const Impl::JobIndex* ix = static_cast<const Impl&>(*impl_).Index(*j)) {
    proto::TuningJobCompletionDetails details;
    details.number_of_training_jobs_objective_not_improving = ix->not_improving.not_improving;
    if (j->convergence_ms) details.convergence_detected_time = proto::Timestamp{j->convergence_ms};
    st.tuning_job_completion_details = details;
  }
  if (!j->failure_reason.empty()) st.failure_reason = j->failure_reason;
  st.consumed_resources = proto::ConsumedResources{runtime_ms / 1000};
  return r;
}

Result<proto::TuningJobDocument> CoordinatorCore::DescribeDocument(const std::string& name) const {
  auto d = Describe(name);
  if (!d.ok()) return d.status();
  proto::TuningJobDocument doc;
  doc.metadata = nlohmann::ordered_json{{"name", Lower(name)}};
  doc.spec = d->spec;
  doc.status = d->status;
  auto& st = *doc.status;
  st.ack_resource_metadata = proto::AckResourceMetadata{st.hyper_parameter_tuning_job_arn, options_.account_id,
                                                        options_.region};
  st.hyper_parameter_tuning_job_arn.reset();
  std::string status = st.hyper_parameter_tuning_job_status.value_or("");
  bool synced = status != "InProgress" && status != "Stopping";
  st.conditions.push_back(proto::Condition{"ACK.ResourceSynced", synced ? "True" : "False",
                                           st.last_modified_time, std::nullopt,
                                           "HyperParameterTuningJob is in " + status + " status."});
  const TuningJob* j = FindJob(name);
  if (j && !j->waiting_reason.empty() && status == "InProgress") {
    st.conditions.push_back(proto::Condition{"Waiting", "True", proto::Timestamp{j->waiting_since_ms},
                                             std::string("NoWorkerFits"), j->waiting_reason});
  }
  return doc;
}

std::vector<const TuningJob*> CoordinatorCore::Jobs() const {
  std::vector<const TuningJob*> out;
  for (const auto& [k, j] : impl_->jobs) out.push_back(j.get());
  std::sort(out.begin(), out.end(), [](auto* a, auto* b) { return a->creation_ms < b->creation_ms; });
  return out;
}

const TuningJob* CoordinatorCore::FindJob(const std::string& job) const {
  auto it = impl_->jobs.find(Lower(job));
  return it == impl_->jobs.end() ? nullptr : it->second.get();
}

const Trial* CoordinatorCore::FindTrial(const std::string& trial) const {
  auto it = impl_->trials.find(trial);
  return it == impl_->trials.end() ? nullptr : &it->second;
}

std::vector<const Trial*> CoordinatorCore::TrialsOf(const std::string& job) const {
  std::vector<const Trial*> out;
  const TuningJob* j = FindJob(job);
  if (!j) return out;
  for (const auto& t : j->trials) out.push_back(&impl_->trials.at(t));
  return out;
}

Result<std::vector<LogRow>> CoordinatorCore::Logs(const std::string& trial, int64_t after_id, size_t limit) const {
  if (!FindTrial(trial)) return Status::NotFound("no training job named " + trial);
  return impl_->store->LoadLogs(trial, after_id, limit);
}

const SuggestionStats* CoordinatorCore::Suggestions(const std::string& job) const {
  auto it = impl_->suggestions.find(Lower(job));
  return it == impl_->suggestions.end() ? nullptr : &it->second;
}

std::vector<const WorkerInfo*> CoordinatorCore::Workers() const {
  std::vector<const WorkerInfo*> out;
  for (const auto& [k, w] : impl_->workers) out.push_back(&w);
  return out;
}

}  // namespace hpo::coordinator
