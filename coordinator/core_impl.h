// coordinator/core_impl.h: the coordinator core's private state (CoordinatorCore::Impl), shared
// by the files that implement it. Not part of the coordinator's interface: only
// coordinator/core*.cc include it; everything else talks to coordinator/core.h.
//
// The implementation is split by topic, each file defining its part of Impl:
//   core.cc              the public CoordinatorCore methods, persistence (load, save, reindex),
//   lookups core_tuning.cc       what the tuning rules see: early stopping, warm start priors, the
//   objective core_transitions.cc  a trial's transitions (slots, retries, queueing), job failure
//   and completion core_placement.cc    creating trials and placing them on workers (gangs, assign
//   ahead, scheduling) core_handlers.cc     the worker messages (register, started, metrics, logs,
//   exited, heartbeats) core_queries.cc      Describe, summaries and the other read-only queries
//
// Invariants every file keeps: every trial change goes through SaveTrial (which reindexes the job
// and writes the row), every job change through SaveJob, both inside the caller's transaction;
// JobIndex is the only per-job aggregate and is never recomputed by a scan on the hot path.
#pragma once

#include <algorithm>
#include <cctype>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <tuple>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "common/text.h"
#include "coordinator/adaptive.h"
#include "coordinator/core.h"
#include "coordinator/core_rows.h"
#include "coordinator/hyperband_strategy.h"
#include "coordinator/placement.h"
#include "coordinator/trial_name.h"

namespace hpo::coordinator {
namespace core_detail {

inline std::string Lower(std::string_view s) { return AsciiLower(s); }

inline constexpr size_t kMaxFailureReason = 1024;

// At most n characters (SageMaker's limits count characters), cut between characters.
inline std::string Truncate(const std::string& s, size_t n = kMaxFailureReason) { return Utf8Prefix(s, n); }

// A tuning job whose first kFailuresBeforeGivingUp training jobs to end all failed (none
// succeeded) stops the rest and fails, as SageMaker's "No training job succeeded after 5
// attempts" says it does; TuningJob::completion_reason is then kGaveUp.
inline constexpr int kFailuresBeforeGivingUp = 5;
inline constexpr const char* kGaveUp = "gave up: no training job succeeded";
// TuningJob::completion_reason begins with this when CoreOptions::max_tuning_job_runtime_s ended
// a job that gave no ResourceLimits.MaxRuntimeInSeconds.
inline constexpr const char* kRuntimeQuota = "runtime quota";

// How a gang's waiting reason starts when it could run but not now (NoteWaiting); HoldForGang
// holds workers only for those.
inline constexpr std::string_view kGangWaits = "waiting for a free worker for each of the ";

}  // namespace core_detail

struct CoordinatorCore::Impl {
  JobStore* store;
  CoreOptions opt;
  std::map<std::string, std::unique_ptr<TuningJob>> jobs;  // key: lower-cased name
  std::map<std::string, Trial> trials;                     // key: trial name
  // Assigned ahead, never started, lost with their worker after their tuning job ended: withdrawn
  // at the next FinishAll (AttemptLost runs inside loops over `trials`, which Withdraw erases from).
  std::set<std::string> withdraw_lost;
  // Attempts a worker said at its first registration had ended with its previous process, when
  // that process's coordinator stopped them on purpose (CoreOptions::
  // lost_at_first_registration_interrupted): their kEndedWithWorkerProcess reports end them
  // Interrupted, as a lost one does.
  std::set<std::pair<std::string, uint32_t>> ended_with_stopped_process;

  // What scheduling and completion ask about a job on every event, kept up to date as trials
  // change (Reindex, called wherever a trial is saved) so that no event costs O(trials): with
  // 10,000 trials a scan per event made a job's bookkeeping quadratic.
  struct JobIndex {
    std::vector<Observation> history;  // the strategy's view, by trial index - 1
    std::vector<std::optional<TrialState>> states;
    std::vector<char> succeeded_flags;
    std::vector<char> failed_flags;  // counted in `failed`
    std::vector<char> active_flags;  // counted in `active`: running or starting, not queued ahead
    std::set<int> pending;           // trial indexes waiting for a slot, oldest first
    // failed: ended without an objective that counts, other than by a stop (Failed, or
    // Completed without emitting the objective): what "No training job succeeded" counts.
    int active = 0, unfinished = 0, succeeded = 0, failed = 0;
    std::string best;  // the best training job so far ("" none)
    // Completion criteria, fed each objective once, in the order the training jobs finished.
    std::vector<char> finish_counted;
    int64_t last_counted = 0;  // the highest Trial::counted of the job
    NotImprovingTracker not_improving;
    std::vector<double> finished_objectives;
    size_t convergence_checked = 0;  // finished_objectives.size() at the last convergence test
    // Warm start: the parents' training jobs as observations, and the strategy's view
    // (prior + history) rebuilt per call when there are any.
    std::vector<Observation> prior;
    std::vector<Observation> combined;
    bool combined_stale = true;     // history changed since `combined` was built
    std::deque<int64_t> durations;  // of the latest completed training jobs (assign ahead)
  };
  std::map<std::string, JobIndex> index;               // key: lower-cased job name
  std::map<std::string, SuggestionStats> suggestions;  // key: lower-cased job name

  // Counts one Propose call; a model-based one (the strategy reports stats) is also an event
  // with its breakdown, so `hpo` users see what each suggestion cost and why a fallback happened.
  void RecordSuggestion(const TuningJob& j, double seconds, int64_t now);

  std::map<std::string, WorkerInfo> workers;
  std::map<std::string, DepartedWorker> departed;  // CoordinatorCore::Departed
  // Adds one to `departed`, the one gone longest ago going past kDepartedWorkersKept.
  void Depart(const std::string& wid, DepartedWorker gone);
  std::map<std::string, CordonRow> cordons;  // by worker id (CoordinatorCore::Cordon), as stored
  std::map<std::string, std::set<uint32_t>> worker_gpus_used;  // worker -> GPU indices in use
  std::map<std::pair<std::string, uint32_t>, std::vector<uint32_t>> attempt_gpus;
  // Assigned ahead: (trial, attempt) of a running attempt -> the trial queued behind it.
  std::map<std::pair<std::string, uint32_t>, std::string> successor;
  int64_t loaded_at_ms = -1;     // first tick after a restart: orphaned attempts get one lease
  bool resumed = false;          // tuning jobs in progress were loaded: a restart, whose workers come back
  // The coordinator's sign of life in the store (JobStore::PutAlive), written by ticks every
  // kAliveEveryMs; last_alive_ms is the one read at load (0: none).
  static constexpr int64_t kAliveEveryMs = 5000;
  int64_t alive_written_ms = 0;
  int64_t last_alive_ms = 0;
  std::vector<std::string> log;  // store failures, surfaced by Describe's failure reason
  Status load_status;  // the first failed read of Load (CoordinatorCore::LoadStatus)
  std::vector<std::string> load_notes;  // damaged training job rows Load read (CoordinatorCore::LoadNotes)
  // Tuning jobs in the store whose row cannot be read (a damaged spec): lower-cased name -> why.
  // Not loaded, and their name stays taken (a new job of that name took over their training
  // jobs' rows) until DeleteHyperParameterTuningJob removes what is left of them.
  std::map<std::string, std::string> unreadable;
  // Jobs Load found stored as Deleting (CoordinatorCore::TakeInterruptedDeletions), until taken.
  std::vector<std::string> interrupted_deletions;
  // Stores the job as Deleting (TuningJob::deleting) before its first row goes, with an event;
  // nothing changes when that write fails.
  Status BeginDeletion(TuningJob& j, int64_t now);
  std::map<std::string, uint64_t> event_counts;  // CoordinatorCore::EventCounts

  // ---- persistence -----------------------------------------------------------------------------

  void Note(const Status& s);

  // Runs `body` in one store transaction; what it produced is returned only once committed
  // (nothing if the commit fails: the failure is noted). If no transaction could begin, each
  // write commits on its own.
  template <class F>
  std::vector<Outgoing> Transaction(F&& body) {
    const Status begun = store->Begin();
    std::vector<Outgoing> out;
    body(&out);
    FlushStateChanges();
    if (begun.ok()) {
      if (Status committed = store->Commit(); !committed.ok()) {
        Note(committed);
        return {};
      }
    }
    return out;
  }

  void SaveJob(TuningJob& j, int64_t now);
  void SaveTrial(Trial& t);

  // State-change notifications (CoreOptions::notify). Each state a resource enters is one event,
  // even when it moves on within the same step (a training job's Uploading and Completed from one
  // batch of messages), as SageMaker sends each:
  // - SaveJob and SaveTrial (NoteState) build the event of a state the moment it is entered, the
  //   resource as it is then, as an entry of `pending`, in order (a training job's end before its
  //   tuning job's);
  // - a save that leaves the state as it was marks the state's entry stale (so does a training
  //   job's save for its tuning job's entry: its counters): FlushStateChanges builds it again, so a
  //   step's last state is told with all the step did;
  // - MarkChanged (creation, deletion, the catch-up at load) adds an entry built at the flush, of
  //   the state then;
  // - FlushStateChanges, at the end of each event, writes the entries whose state differs from the
  //   one last told (`notified`, key: "job:<lower-case name>" / "trial:<name>" -> NotifiedState).
  CoordinatorCore* self = nullptr;
  struct PendingNotice {
    std::string key;
    StateChange change;
    std::string state;               // "" until built (a MarkChanged entry)
    std::vector<Notification> rows;  // what opt.notify made of it
    bool built = false;              // rows made (or failed) for `state`
    bool stale = false;              // the resource changed since, in the same state: build again
    std::string failed;              // opt.notify threw: why
  };
  std::vector<PendingNotice> pending;
  std::map<std::string, size_t> pending_last;  // key -> its last entry in `pending`
  std::map<std::string, std::string> notified;
  void MarkChanged(std::string key);
  // `state` (NotifiedState) of the resource `key` just saved.
  void NoteState(const std::string& key, const StateChange& change, std::string state);
  void BuildNotice(PendingNotice& p);
  void FlushStateChanges();
  static constexpr const char* kNotNotified = "(not notified)";  // a state no resource is in
  // The state notifications are about ("" for a training job not launched yet).
  static std::string NotifiedState(const TuningJob& j) { return j.ShownStatus(); }
  static std::string NotifiedState(const Trial& t) {
    return t.Unlaunched() ? std::string() : std::string(TrainingJobStatusOf(t)) + "/" + t.SecondaryStatus();
  }
  // Load: each resource's notified state, from the store (notifications on only).
  void LoadNotified();
  // A deleted job's or training job's: not notified again (its store rows went with it).
  void ForgetNotified(const std::string& key) {
    notified.erase(key);
    DropPending(key);
  }
  // The notices of `key` noted in this step and not flushed yet.
  void DropPending(const std::string& key) {
    if (pending_last.erase(key)) {
      pending.erase(std::remove_if(pending.begin(), pending.end(), [&](const PendingNotice& p) { return p.key == key; }),
                    pending.end());
      for (size_t i = 0; i < pending.size(); ++i) pending_last[pending[i].key] = i;
    }
  }

  static Observation::Status ObservedStatus(TrialState s);
  static bool IsTerminal(TrialState s);

  // Brings the job's index in line with the trial (its state, objective and hyperparameters).
  void Reindex(Trial& t);
  JobIndex& Index(const TuningJob& j) { return index[core_detail::Lower(j.name)]; }
  const JobIndex* Index(const TuningJob& j) const;
  void Event(int64_t now, const std::string& kind, const std::string& job, const std::string& trial,
             const std::string& msg);

  void Load();

  // ---- adaptive tuning -------------------------------------------------------------------------

  static bool MedianRuleOn(const TuningJob& j);
  static const HyperbandStrategy* HyperbandOf(const TuningJob& j);
  static bool TracksCurves(const TuningJob& j) {
    return MedianRuleOn(j) || HyperbandOf(j) != nullptr;
  }

  // The objective just got new emissions (curve grew from old_len): apply the job's rule at
  // each of them, in order, and stop the trial at the first that says so.
  void MaybeStopEarly(TuningJob& j, Trial& t, size_t old_len, int64_t now,
                      std::vector<Outgoing>* out);

  // Warm start: the parents' training jobs that have an objective, mapped onto this job's
  // tunable hyperparameters (a value the parent had fixed comes from its static ones).
  void BuildPrior(TuningJob& j);

  // Why definition `def` of warm-start parent `parent` cannot inform a job of objective
  // (`metric`, `maximize`) and hyperparameters `kinds` (HyperParameterKinds): another objective,
  // or other hyperparameters; "" when it can. A parent with several definitions has one
  // objective per definition: only the training jobs of those that fit inform the child and
  // compete for its OverallBestTrainingJob (WarmFitting: their names).
  std::string WarmStartMismatch(const TuningJob& parent, const proto::TrainingJobDefinition& def,
                                const std::string& metric, bool maximize, const std::map<std::string, char>& kinds) const;
  std::set<std::string> WarmFitting(const TuningJob& child, const TuningJob& parent) const;

  // A warm-started job's objective: its (single) definition's metric and type.
  std::pair<std::string, bool> WarmObjective(const TuningJob& j) const;

  // The kind of every hyperparameter a definition of a job sets (its first when `def` is
  // null): 'i', 'c', 'k' (integer, continuous, categorical ranges, as its SearchSpace reads
  // them) or 's' (static).
  static std::map<std::string, char> HyperParameterKinds(const proto::TuningJobSpec& spec,
                                                         const proto::TrainingJobDefinition* def = nullptr);

  // Warm-start rules that need the store: the parents exist and are terminal, share the
  // objective and the hyperparameters, and their training jobs fit in the job limit.
  // What the job should know but that does not refuse it goes to *notes (WarmStart events).
  Status CheckWarmStart(const proto::TuningJobSpec& spec, proto::Spelling spelling, std::vector<std::string>* notes);

  void InitObjective(TuningJob& j);

  // ---- lookups ---------------------------------------------------------------------------------

  TuningJob* Job(const std::string& name);
  // "no tuning job named X" (NotFound), and when X is a training job's name, whose it is and what
  // stops or shows it: `hpo stop NAME-007-...` said only that no such tuning job exists.
  Status NoTuningJob(const std::string& name);
  // A training job this coordinator has never heard of, of a tuning job it does not know either:
  // another coordinator's (WorkerInfo::foreign).
  bool Foreign(const std::string& trial);
  // A report (metrics, log lines, an exit) about a Foreign training job that this coordinator
  // did not delete: it is left unacknowledged, so the worker keeps it for the coordinator whose
  // job it is. Acknowledged, the worker forgot it: a coordinator started on the wrong state
  // directory took a finished training job's exit, and the right one, back, never finished it
  // (its metrics had a gap, so even the worker's replay was refused).
  bool KeptForItsCoordinator(const std::string& trial);
  // Trial::ended_attempt from a worker's report of an attempt (Register or Heartbeat) whose
  // program has ended (AttemptRef::ended), when that worker runs its first host.
  void NoteProgramEnded(const proto::wire::AttemptRef& r, const std::string& wid);
  // Of training jobs this coordinator does not know, those of tuning jobs it deleted (the
  // store's record, or for a store of an older build, the job's deletion); a failed read goes
  // to `log` when given.
  std::set<std::string> DeletedHere(const std::vector<std::string>& unknown, std::vector<std::string>* log = nullptr);

  const proto::TrainingJobDefinition* Definition(const TuningJob& j,
                                                 const std::string& def_name) const;

  std::string ObjectiveMetricFor(const TuningJob& j, const std::string& def_name) const;

  bool MaximizeFor(const TuningJob& j, const std::string& def_name) const;

  int64_t MaxJobs(const TuningJob& j) const;
  int64_t MaxParallel(const TuningJob& j) const;

  int ActiveCount(const TuningJob& j) const;
  bool HasPending(const TuningJob& j) const;
  bool AnyUnfinished(const TuningJob& j) const;

  // One Observation per trial the job has created, in creation order (the strategy's view).
  const std::vector<Observation>& History(const TuningJob& j);

  // Whether `a` is a better objective than `b` for the job's direction.
  static bool Better(double a, double b, bool maximize) { return maximize ? a > b : a < b; }

  bool ObjectiveSucceeded(const Trial& t) const;

  const Trial* Best(const TuningJob& j) const;

  // ---- transitions -----------------------------------------------------------------------------

  void Secondary(Trial& t, const std::string& status, int64_t now, const std::string& msg = "");

  // The current attempt gives up its slot (it ended, or will never run here). A trial queued
  // behind it takes the slot and its GPUs; a queued attempt itself leaves its queue.
  void ReleaseSlot(Trial& t, int64_t now);
  // The current attempt's training time (since attempt_start_ms) ends at `until`: added to the
  // trial's (and its spot time), once; ReleaseSlot ends it at the release, AttemptLost earlier.
  void EndTrainingTime(Trial& t, int64_t until);
  // Hosts of an ended gang attempt that were still running when it ended (told to stop: another
  // host failed, the training job was stopped): (trial, attempt) -> worker -> its GPUs. Their
  // slots and GPUs stay taken until each reports its exit (or its heartbeat no longer lists it,
  // or its worker is lost or registers without it): the next training job must not start in a
  // slot, on GPUs, that a program in its grace period still uses. Not persisted: after a
  // coordinator restart the workers' registrations say what still runs.
  std::map<std::pair<std::string, uint32_t>, std::map<std::string, std::vector<uint32_t>>> lingering;
  // Frees a lingering host's slot and GPUs; false when (trial, attempt) does not linger on `wid`.
  bool ReleaseLingering(const std::string& wid, const std::string& trial, uint32_t attempt);
  // Training jobs with a hand-over to discard (Trial::discard_hand_over: a multi-host attempt
  // that ended for good, no retry following, with algo-1's worker lost). Once none of its other
  // hosts still runs (each reported its exit, or was lost too), the first of their workers still
  // registered is told to remove it (DiscardHandOver, SendDueDiscards); with none left nobody
  // can, and the folder stays. After a coordinator restart (`restored`) the hosts' registrations
  // say which still run the attempt (`running`, until their exit reports), and it waits a lease
  // for those that have not registered yet.
  struct HandOverDiscard {
    bool restored = false;
    std::set<std::string> running;
  };
  std::map<std::string, HandOverDiscard> discards;
  void SendDueDiscards(int64_t now, std::vector<Outgoing>* out);
  // An ended gang attempt whose hosts other than algo-1 have all reported their exit (none
  // lingers) while algo-1 still does: algo-1's worker, whose upload waits for their hand-over,
  // is told (GangPeersEnded). Nothing otherwise.
  void TellAlgo1IfPeersGone(const Trial& t, uint32_t attempt, std::vector<Outgoing>* out) const;

  // Warm reuse (ResourceConfig.KeepAlivePeriodInSeconds): a training job of this job's definition
  // that ended normally leaves its hosts' slots kept for the next one for that long; the
  // scheduler prefers them (PlaceHost), other jobs cannot take them meanwhile.
  // Called with the ended attempt's hosts (Trial::Hosts(), taken before ReleaseSlot forgets them).
  void KeepWarm(const Trial& t, const std::vector<std::string>& hosts, int64_t now);
  void TakeWarm(WorkerInfo& w, const TuningJob& j, const std::string& definition);
  // Drops kept slots that expired or whose job is no longer running.
  void ExpireWarm(int64_t now);

  // Whether an attempt on `worker` still holds GPU `idx` (a queued successor shares its
  // predecessor's GPUs until one of them ends).
  bool GpuHeld(const std::string& worker, uint32_t idx) const;

  // A trial queued ahead takes its slot: its predecessor ended, or its worker reported it
  // started (which it does only once the predecessor's program has ended).
  void Promote(Trial& q, int64_t now);

  // The trial waits for a host again (its slot already released): the next Launch starts a new
  // attempt.
  static void ToQueue(Trial& t);

  // Ends the current attempt of an active trial with an infrastructure error: retried while the
  // retry strategy allows, else the trial fails.
  // `on`: the worker whose host failed (a gang's may not be algo-1's); its retry avoids it.
  // `at` (when > 0): when the attempt ended, for its transitions and end (a report heard late,
  // after a coordinator outage, is dated by the worker's measure, not by when it was heard).
  void InfraFailure(Trial& t, const std::string& reason, int64_t now, const std::string& on = "", int64_t at = 0);
  // A training job on `wid` ended InfraError: counted in its streak, which puts it to rest
  // (WorkerInfo::resting) at kInfraErrorsBeforeRest.
  // A MaxRuntimeExceeded stop's reason for people: the worker's, or, for an attempt after others
  // that trained (`trained_before` ms), one that names MaxRuntimeInSeconds and what was left of it.
  std::string MaxRuntimeReason(const Trial& t, int64_t trained_before, const std::string& worker_said);
  // Forgets `w`'s streak of infrastructure errors, and ends the rest it caused: the refusals were
  // the training job's fault (no worker could start it).
  void Forgive(WorkerInfo& w, int64_t now);
  // The WorkerResting event is under `t`'s tuning job and names `t` (hpo events NAME, which hpo
  // run points to, showed no rest while the job sat waiting for the worker).
  // `refusal`: it could not start the program (IsCannotStartReason), counted in refused_jobs.
  void NoteInfraError(const std::string& wid, const Trial& t, const std::string& reason, int64_t now,
                      bool refusal = false);
  static constexpr int kInfraErrorsBeforeRest = 3;
  static constexpr int64_t kFirstRestMs = 60'000, kLongestRestMs = 600'000;
  static constexpr int kSetupRequeues = 10;  // Trial::setup_requeues
  // A worker's report of a start or an end heard this much later than it happened (a coordinator
  // outage or stall) is dated by the worker's account, not by when it was heard. Reports heard
  // less late keep `now`: the difference is the message's own delay, and times then keep the
  // order results came in (the completion criteria count in that order, kept as Trial::counted).
  static constexpr int64_t kHeardLateMs = 2000;
  // Whether `ran` ms, a worker's measure of an attempt of `t` (its start and end on its own
  // clock), can be believed at `now`: not longer than since the attempt was assigned (a worker
  // clock that jumped).
  static bool RunBelievable(const Trial& t, int64_t ran, int64_t now) {
    return ran >= 0 && ran <= (t.assigned_ms > 0 ? now - t.assigned_ms + 1000 : ran);
  }
  // A training job assigned ahead that never started, stopped because its tuning job ended
  // first: SageMaker would never have created it, so it leaves the job's records (the store's
  // too) and the history keeps a "TrainingJobWithdrawn" event. `t` is gone afterwards.
  void Withdraw(Trial& t, int64_t now);
  std::set<std::string> retryable_failures;

  // An attempt that was assigned but never reported started and that its worker does not hold
  // (the assignment was lost with a coordinator or a worker): the trial goes back to the queue
  // without spending a retry, since nothing of it ever ran.
  void Requeue(Trial& t, const std::string& reason, int64_t now);

  // The attempt's capacity was reclaimed (spot): the trial goes back to the queue without
  // spending a retry, to start again from its checkpoint, preferably elsewhere. SageMaker's
  // secondary statuses: ... Training -> Interrupted -> Starting -> ...
  void Interrupted(Trial& t, const std::string& reason, int64_t now, int64_t at = 0);  // `at` as InfraFailure's

  // StoppingCondition.MaxWaitTimeInSeconds (managed spot): a trial's whole time, waiting for
  // capacity and interrupted attempts included, is bounded; past it the trial ends Stopped with
  // secondary status MaxWaitTimeExceeded (its last objective, if any, stays).
  void ExpireMaxWait(TuningJob& j, int64_t now, std::vector<Outgoing>* out);

  // An attempt whose worker is gone or no longer holds it. `heard_ms` > 0: when it was last known
  // to run (its worker's last message; the coordinator's last sign of life before a restart): its
  // training time ends there, not at `now` (a lease, or a coordinator's downtime, is not training).
  // `fence_from_ms` > 0: the worker may still run the program (it went silent then, or had not come
  // back since a restart at that time): a re-run waits until that worker's guard has ended it
  // (Trial::fenced_until_ms, stored with the trial). `notice_missed`: the worker may have sent an
  // interruption notice the coordinator could not hear (it was down): an attempt on spot capacity
  // (Trial::on_spot) is then the interruption it most likely was, re-queued without a retry.
  void AttemptLost(Trial& t, const std::string& reason, int64_t now, const std::string& on = "",
                   int64_t heard_ms = 0, int64_t fence_from_ms = 0, bool notice_missed = false);

  // Starts the job's next trial (a pending retry or a new proposal) on `worker`.
  // The job's oldest trial waiting for a host (a retry, or one created while no worker could
  // start it), or nullptr.
  // With `now`, the oldest that may start: its fence has passed (Trial::fenced_until_ms), and no
  // host of its ended attempt still stops (`lingering`: a gang's retry waits for the other hosts'
  // last checkpoints, and their programs, to be done). One that may not does not hold up the
  // job's others; it still counts against MaxParallelTrainingJobs (PlaceNext).
  Trial* OldestPending(TuningJob& j, std::optional<int64_t> now = std::nullopt);
  // Whether a pending trial may start at `now` (OldestPending's test).
  bool MayStartNow(const Trial& t, int64_t now) const;
  // Whether `wid`, registering with attempt `attempt` of `trial` still running, is a host of that
  // multi-host attempt which ended while the trial waits for its retry (Pending): one that was
  // told to stop and lingered when a coordinator restart forgot `lingering`.
  bool GangHostStopping(const std::string& trial, uint32_t attempt, const std::string& wid) const;
  // A multi-host retry waits a lease after the state was loaded: its other hosts, still stopping,
  // say so as they register again (GangHostStopping).
  bool AwaitsRestartedHosts(const Trial& t, int64_t now) const {
    return EndedGangHosts(t) != nullptr && now - loaded_at_ms <= opt.lease_ms;
  }
  // The workers of a waiting retry's ended attempt, when that attempt had several hosts; else null.
  static const std::vector<std::string>* EndedGangHosts(const Trial& t) {
    auto hosts = t.gang_workers.find(t.attempt);
    return t.state == TrialState::kPending && hosts != t.gang_workers.end() && hosts->second.size() > 1
               ? &hosts->second
               : nullptr;
  }

  // A new trial from the strategy, Pending; nullptr when the job may not or cannot have more.
  Trial* CreateTrial(TuningJob& j, int64_t now);
  // The job's next trial, Pending, from a proposal.
  Trial* AddTrial(TuningJob& j, const Proposal& p, int64_t now);

  // Proposals off the core (CoreOptions::propose_off_core): whether the job's proposals go out
  // as requests, and recording one (the job is then Proposing() until OnProposals).
  bool OffCore(const TuningJob& j) const {
    return opt.propose_off_core && j.strategy && j.strategy->ProposesOffCore();
  }
  // The request asks for n configurations: the slots the job could fill now (StartableNow), so
  // one model fit serves several free slots (at 3,000 observations one proposal of 8 takes 3.7 s,
  // eight of 1 take 17 s), and a wide job's proposals keep up with its training jobs.
  void RequestProposal(TuningJob& j, size_t n);
  // How many of the job's training jobs could start now on the registered workers (placements
  // simulated on copies of their free slots and GPUs), between 1 and `limit`; 1 for jobs with
  // several definitions or several hosts per training job.
  size_t StartableNow(const TuningJob& j, size_t limit) const;
  std::vector<ProposalRequest> proposal_requests;
  uint64_t next_proposal_id = 0;

  // The worker that starts `req` now (the one with the most free slots), or nullptr; *ever:
  // whether any registered worker could ever serve it; *why: the reasons, for people.
  // `avoid`: a trial's interrupted worker; it and spot workers are taken only when nothing else
  // fits.
  WorkerInfo* PlaceHost(const HostRequest& req, bool* ever, std::string* why, uint32_t* gpus,
                        const std::string& avoid = "", bool prefer_on_demand = false,
                        const std::set<std::string>* exclude = nullptr, const std::string& job = "",
                        const std::string& definition = "");

  // The job cannot place its next host: remembered (and logged once per new reason) for
  // describe, and the pending trial says so in its secondary status.
  // Why a training job cannot be placed now (PlaceTraining), for NoteWaiting.
  struct Unplaced {
    bool ever = false;    // some worker could serve it (it waits for a free one)
    std::string why;      // why not now, or why never
    HostRequest req;      // the request of its first host (ever), or of the one no worker serves
    std::vector<HostRequest> all;  // every host's request (ever): a resting worker may serve any
    size_t hosts = 1;     // its hosts
    std::string what;     // its instance types, for people (GangTypes; "A or B" across options)
  };
  void NoteWaiting(TuningJob& j, Trial* t, const Unplaced& u, int64_t now);
  // Why no registered worker can ever serve it (u.ever false), with what to start; naming
  // `definition` when given.
  std::string NeverReason(const Unplaced& u, const std::string& definition = "") const;
  // Whether `w` could serve `req` at all (its totals, all slots free): never, or only busy now.
  bool CouldEverServe(const WorkerInfo& w, const HostRequest& req) const {
    return Fit(opt.catalog, req, w.reg, static_cast<int>(w.reg.slots), {}).ever;
  }
  // The request that asks `q`'s worker to give it back if it has not started it (a move to a free
  // worker): MoveQueuedToFreeWorkers sends it, a re-registration with `q` still queued re-sends it.
  static proto::wire::StopTrial MoveRequest(const Trial& q) {
    proto::wire::StopTrial m;
    m.trial = q.name;
    m.attempt = q.attempt;
    m.reason = proto::wire::kStopReasonIfNotStarted;
    m.grace_period_s = 0;
    return m;
  }

  // Places the job's next host: its oldest pending trial, else a new one from the strategy.
  // False when nothing more can be placed for this job now.
  bool PlaceNext(TuningJob& j, int64_t now, std::vector<Outgoing>* out);

  // One host of a training job: what it asks for, in algo-N order (instance groups in the spec's
  // order, each InstanceCount times; else InstanceCount hosts of InstanceType).
  struct HostPlan {
    HostRequest req;
    std::string group;  // "" outside InstanceGroups
    std::string type;
  };
  // With HyperParameterTuningResourceConfig.InstanceConfigs a definition has several resource
  // options (proto::ResourceOptions, in order of preference); `option` picks one.
  std::vector<HostPlan> HostsFor(const TuningJob& j, const std::string& def_name, size_t option = 0) const;
  size_t ResourceOptionCount(const TuningJob& j, const std::string& def_name) const;

  // A gang: one distinct worker per host, all at once or none (no partial hold, so gangs of
  // different jobs never deadlock; see docs/architecture.md). Empty when they cannot all start now.
  // Workers held for a multi-host training job (CoreOptions::gang_hold_after_ms): worker id ->
  // the job (lower-case name), its definition and the host's request. Recomputed by every
  // Schedule pass, memory only. PlaceHost places another job's training job on a held worker only
  // where the held host would still fit right after (a free slot and its GPUs stay for it).
  struct Held {
    std::string job;
    std::string definition;
    HostRequest req;
  };
  std::map<std::string, Held> held_for;
  // After `j` failed to place a gang that could run: holds workers for its hosts once it has
  // waited long enough, and says so in its waiting reason.
  void HoldForGang(TuningJob& j, int64_t now);

  struct GangPick {
    WorkerInfo* worker = nullptr;
    uint32_t gpus = 0;
    const HostPlan* plan = nullptr;  // the host it plays (points into the caller's plans)
  };
  // `*blocking` (when given and the gang can never be served): the index of the host that no
  // worker, or too few distinct workers, can serve.
  std::vector<GangPick> PlaceGang(const std::vector<HostPlan>& plans, bool* ever, std::string* why,
                                  const std::string& avoid = "", bool prefer_on_demand = false,
                                  const std::string& job = "", const std::string& definition = "",
                                  size_t* blocking = nullptr);

  // A training job's placement: the first of its definition's resource options (in order of
  // preference: AllocationStrategy Prioritized) whose hosts can all start now. `plans` are that
  // option's hosts and `picks` point into them. False when no option can start now; then *ever
  // says whether some option could ever be served, and *why, *req and *hosts describe the first
  // option that could (or, when none could ever be served, why not for each, with the request of
  // the first option's host that no worker serves), for NoteWaiting. For a gang of several
  // instance types `what` names them all ("ml.p4d.24xlarge x2 + ml.c5.xlarge"): the first
  // host's type alone named a type that was not the one missing.
  struct Placement {
    size_t option = 0;
    std::vector<HostPlan> plans;
    std::vector<GangPick> picks;
  };
  // The instance types of a training job's hosts, for people: "ml.g5.xlarge", or for a gang of
  // several types "ml.p4d.24xlarge x2 + ml.c5.xlarge".
  static std::string GangTypes(const std::vector<HostPlan>& plans);
  bool PlaceTraining(const TuningJob& j, const std::string& def_name, const std::string& avoid, bool prefer_on_demand,
                     Placement* p, Unplaced* u);

  // Sends `a` (built for algo-1 on gang[0]) to every host of the gang with that host's name,
  // instance group and GPUs, and the addresses of all hosts (AssignTrial.host_addresses).
  // `chosen` is the Assigned event's note of the instance config taken (" as TYPE (2 of 3 ...)").
  void LaunchGang(Trial& t, const std::vector<GangPick>& gang, proto::wire::AssignTrial a,
                  int64_t now, std::vector<Outgoing>* out, const std::string& chosen = "");

  // The other hosts of a gang whose host `wid` ended or was lost: stopped, their grace period.
  void StopGangPeers(const Trial& t, const std::string& wid, const std::string& reason,
                     std::vector<Outgoing>* out);

  // Starts the trial's next attempt on `w` with `gpu_count` of its free GPUs; with `after`, an
  // attempt running on `w`, queues it there behind that attempt, in its slot and with its GPUs.
  void Launch(TuningJob& j, Trial& trial, WorkerInfo& w, uint32_t gpu_count, int64_t now,
              std::vector<Outgoing>* out, const Trial* after = nullptr,
              const std::vector<GangPick>* gang = nullptr);

  // Fills free slots, one host at a time: to the job with the fewest running trials (then the
  // oldest: fair share, see docs/architecture.md), on the worker with the most free slots among
  // those that fit it (coordinator/placement.h). A job that cannot place anything now is passed
  // over for this round, so it never blocks the others.
  void Schedule(int64_t now, std::vector<Outgoing>* out);

  // Fair share while proposals are made off the core (a Bayesian or Hyperband job's take 0.3 s
  // and more): the free slots asked for by jobs the fair order serves before `j` (FairRank)
  // whose proposals are out. `j` takes a free slot only beyond those; a Random job
  // took each slot a model-based job had asked for while its proposal was made, and held three
  // quarters of a shared cluster.
  // `proposing`: the jobs whose proposals are out, by key.
  int ReservedBefore(const TuningJob& j, const std::map<std::string, TuningJob*>& proposing) const;
  // The fair order's key of a job, smallest first: fewest running, then served longest ago
  // (TuningJob::last_placed), then oldest.
  std::tuple<int, uint64_t, int64_t> FairRank(const TuningJob& j) const {
    return {ActiveCount(j), j.last_placed, j.creation_ms};
  }
  uint64_t placements = 0;  // slots given by Schedule since this coordinator started (TuningJob::last_placed)
  // Free slots of the workers that take new training jobs.
  int FreeSlots() const;
  // Another job that wants more training jobs has fewer running than `j` (counting the slots its
  // proposal out asked for): `j`'s running attempts get no successor queued ahead, so the slots
  // they free go to the fair order.
  bool OthersBehind(const TuningJob& j) const;

  // Takes back an attempt assigned ahead: the worker drops it (or kills it at once, had its
  // predecessor just ended), the trial waits for a slot again, oldest first in its job.
  void Withdraw(Trial& q, int64_t now, std::vector<Outgoing>* out,
                const std::string& why = "another tuning job waits for a slot (fair share)");
  // The attempt, given back unstarted, waits for a slot again: a Withdrawn event with `why`,
  // its status "waiting for a slot (`waiting`)".
  void TakeBack(Trial& q, int64_t now, const std::string& why, const std::string& waiting);

  // Attempts assigned ahead wait behind a busy worker's running attempt; once the scheduler has
  // filled what it can, each whose job could start a training job on another worker now
  // (nothing of its own pending, under MaxParallelTrainingJobs) is asked back from its worker
  // if it has not started (Trial::moving, kStopReasonIfNotStarted); given back, it is queued and
  // placed on the free worker. Without it a job's last training jobs queued behind one worker
  // while another stood idle; taken back unasked, one that had just started ran twice.
  void MoveQueuedToFreeWorkers(std::vector<Outgoing>* out);

  // Whether the job's running attempts may get successors (CoreOptions::assign_ahead).
  bool AheadAllowed(const TuningJob& j) const;

  // Gives running attempts a successor from their job, queued on their worker (see
  // CoreOptions::assign_ahead): one per running attempt. While another job waits for a free
  // worker, none is given and those already queued are withdrawn: the next free slots are the
  // scheduler's to share (fair share), not one job's for another training job's length.
  void AssignAhead(int64_t now, std::vector<Outgoing>* out);

  // Ends the job Failed with `reason`; its running trials are stopped.
  void FailJob(TuningJob& j, const std::string& reason, int64_t now, std::vector<Outgoing>* out);

  // Trials that waited for a host longer than their definition's
  // StoppingCondition.MaxPendingTimeInSeconds fail with a capacity error; when no registered
  // worker could ever serve them the tuning job ends too (Failed, with the reason).
  void ExpirePending(TuningJob& j, int64_t now, std::vector<Outgoing>* out);

  // Stops every trial of the job. Those queued ahead first: a worker reads its messages in
  // order, so a queued trial's stop is there before its predecessor can end and free the slot
  // (otherwise the queued one could start for a moment and count as having run).
  void StopAll(TuningJob& j, const std::string& reason, int64_t now, std::vector<Outgoing>* out);

  // Marks a running trial Stopping for `reason` and tells its hosts (but `except`, a host that
  // has stopped already); nothing for one stopped already. A pending one is Stopped at once.
  void StopTrialMsg(Trial& t, const std::string& reason, int64_t now, std::vector<Outgoing>* out,
                    const std::string& except = "");
  // The StopTrial of a trial being stopped (its stop_reason). Sent again to a worker that still
  // reports the attempt, at most every kStopResendMs, and to one that registers again holding
  // it: a stop lost in transit (a coordinator restart, a dropped connection) was never sent
  // again, and the training job ran to its end, Completed.
  proto::wire::StopTrial StopRequest(const Trial& t) const;
  static constexpr int64_t kStopResendMs = 5000;

  // A message for every host of the trial's current attempt (one for a single-host attempt).
  void SendToHosts(const Trial& t, const proto::wire::StopTrial& m, std::vector<Outgoing>* out,
                   const std::string& except = "");

  // Applies the completion rules to a job.
  void MaybeFinish(TuningJob& j, int64_t now, std::vector<Outgoing>* out);
  // An ended job's strategy goes (a Bayesian one holds its GP's n x n Cholesky factor: about
  // 32 MiB at 2,000 observations), once no proposal of it is out; nothing asks it again.
  static void ReleaseStrategyIfEnded(TuningJob& j) {
    if (j.Terminal() && !j.Proposing()) j.strategy.reset();
  }

  // BestObjectiveNotImproving, ConvergenceDetected and ResourceLimits.MaxRuntimeInSeconds: the
  // reason the job completes now, or "".
  std::string CompletionCriterionMet(TuningJob& j, int64_t now);

  void FinishAll(int64_t now, std::vector<Outgoing>* out);

  // ---- message handlers
  // --------------------------------------------------------------------------

  Trial* CurrentAttempt(const std::string& trial, uint32_t attempt);
  // The training job of that name, matched case-insensitively as SageMaker matches names (a
  // job's ARN is lower-cased; its tuning job's name may not be); null when there is none.
  Trial* TrialNamed(const std::string& name);

  void OnRegister(const std::string& wid, const proto::wire::Register& r, int64_t now,
                  std::vector<Outgoing>* out);

  // A report (TrialStarted, MetricPoints, LogLines, TrialExited) about the current attempt of an
  // active training job from a worker that does not run it: a peer must not end, or score,
  // another worker's training job. It is acknowledged like a stale one (a straggler drops it)
  // and never applied; the first such report per (worker, training job, attempt) is an event.
  bool FromElsewhere(const std::string& wid, const std::string& trial, uint32_t attempt, const char* what, int64_t now);
  std::set<std::tuple<std::string, std::string, uint32_t>> refused_reports;  // at most 10,000
  // TrialStaging: the attempt fetches its input (secondary status Downloading).
  void OnTrialStaging(const std::string& wid, const proto::wire::TrialStaging& m, int64_t now);
  void OnTrialStarted(const std::string& wid, const proto::wire::TrialStarted& m, int64_t now);

  // Whether the metric `name` reported by host `host` (index into t.gang) counts: the lowest host
  // reporting a metric is its source (Trial::metric_host). When `host` takes it over from a
  // higher one, `name` is added to *replaced (the caller drops the other's points).
  // `now` starts the settling time of a host that takes a metric (MetricSettled).
  bool TakesMetric(Trial& t, size_t host, const std::string& name, int64_t now, std::vector<std::string>* replaced);
  // Whether early stopping and Hyperband may decide on the metric's values: a single host's, or
  // algo-1's, at once; a higher host's once it has been the metric's source for a few seconds
  // (a lower host printing the same metric may be a flush behind).
  bool MetricSettled(const Trial& t, const std::string& name, int64_t now) const;

  // Returns whether to acknowledge. Batches are applied in seq order (each host of a gang has its
  // own), exactly once: a duplicate is acknowledged again, a batch after a gap (its predecessor
  // lost with a connection) is left unacknowledged, so the worker re-sends both, in order. An
  // acknowledgement therefore means "this seq and every earlier one are applied", which is how
  // the worker reads it.
  bool OnMetrics(const std::string& wid, const proto::wire::MetricPoints& m, int64_t now,
                 std::vector<Outgoing>* out);

  // Stores the lines (head and tail per attempt and host: CoordinatorCore::kLogHeadLines); a
  // gang host's under its own numbers (job_store.h LogLineKey).
  void OnLogLines(const std::string& wid, const proto::wire::LogLines& m, int64_t now_ms);

  // Returns whether to acknowledge: an exit whose attempt still misses metric batches (m.seq
  // says how many were sent) waits for them, so no point is lost behind the exit.
  bool OnExited(const std::string& wid, const proto::wire::TrialExited& m, int64_t now,
                std::vector<Outgoing>* out);

  // A heartbeat says what the worker holds. An attempt it runs that is not its current one here
  // (re-queued meanwhile, or an assignment that arrived late) is stopped, so a trial never runs
  // twice at once. An attempt placed on it that it does not hold, a lease after it was sent, was
  // lost in transit (a connection reset drops queued messages): it is re-queued (without
  // spending a retry when it never started), instead of waiting forever.
  void Reconcile(WorkerInfo& w, const proto::wire::Heartbeat& h, int64_t now,
                 std::vector<Outgoing>* out);

  void Handle(const std::string& wid, const proto::wire::Message& msg, int64_t now,
              std::vector<Outgoing>* out);
};

}  // namespace hpo::coordinator
