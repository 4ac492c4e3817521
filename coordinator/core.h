// coordinator/core.h: the coordinator's event-driven core.
//
// What it is: the whole decision logic of the coordinator (tuning-job lifecycle, strategies,
// placement of trials on worker slots, retries, counters, best training job, completion rules)
// as a state machine. Events come in as method calls with the current time; what must be sent
// to workers comes out as a list of Outgoing messages. It knows nothing of sockets, threads or
// wall-clock time: the ZeroMQ dispatcher (coordinator/dispatcher.h) is one adapter, a simulated
// fleet with a virtual clock is another, and tests drive it directly.
//
// What it is not: a transport or a scheduler of its own time. The caller calls OnTick
// periodically (the dispatcher every few hundred milliseconds) so that leases expire.
//
// Durability: every state change of a job or trial is written to the JobStore before the
// method returns (write-through, one transaction per event); what a method acknowledged is on
// disk when the store is durable. If a store write fails the core logs the failure in the
// returned status and keeps its in-memory state consistent with what was written.
//
// Thread safety: none. One thread (or a mutex held by the caller) at a time.
#pragma once

#include <algorithm>
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string_view>
#include <set>
#include <string>
#include <vector>

#include "common/status.h"
#include "coordinator/job_store.h"
#include "coordinator/placement.h"
#include "coordinator/strategy.h"
#include "proto/codec.h"
#include "proto/messages.h"
#include "proto/tuning_job.h"
#include "proto/validate.h"

namespace hpo::coordinator {

class CoordinatorCore;

// A tuning job's or training job's state as its notifications see it: a tuning job's shown
// status (InProgress, Completed, ..., Deleting), a training job's TrainingJobStatus and
// SecondaryStatus. CoreOptions::notify hears each change of it.
struct StateChange {
  enum class Kind { kTuningJob, kTrainingJob };
  Kind kind = Kind::kTuningJob;
  std::string name;
};

// One notification to write: the target (its URL) and the body to deliver to it.
struct Notification {
  std::string target;
  std::string body;
  int64_t created_ms = 0;
};

// Timing and limits, passed in (defaults suit a LAN cluster; tests use short ones).
// SageMaker's quota on a tuning job's runtime, 30 days: CoreOptions::max_tuning_job_runtime_s's
// default (hpo coordinator and hpo run --max-tuning-job-runtime).
inline constexpr int64_t kSageMakerTuningJobRuntimeS = 30 * 86400;

struct CoreOptions {
  int64_t heartbeat_interval_ms = 1000;  // told to workers at registration
  int64_t lease_ms = 10000;              // a worker silent this long is lost
  int64_t default_grace_period_s = 120;  // SIGTERM -> SIGKILL for stopped trials
  int64_t max_concurrent_tuning_jobs = 100;
  // A tuning job that gives no ResourceLimits.MaxRuntimeInSeconds ends after this long, as
  // SageMaker's quota of 30 days per tuning job ends it (its running training jobs are stopped,
  // and it ends as ResourceLimits.MaxRuntimeInSeconds ends one). One that gives a limit keeps
  // it, whatever this is. <= 0: no limit.
  int64_t max_tuning_job_runtime_s = kSageMakerTuningJobRuntimeS;
  // The command whose options set the quotas above (max_concurrent_tuning_jobs, the runtime), as
  // messages name it: `hpo run` sets its own (a runtime quota given to hpo run was said to be hpo
  // coordinator's option).
  std::string quota_command = "hpo coordinator";
  std::string region = "local";
  std::string account_id = "000000000000";
  proto::ValidationLimits limits;
  InstanceCatalog catalog = InstanceCatalog::Defaults();  // what each instance type needs
  // Assign ahead: a running attempt may get a successor from its job, sent to its worker at once
  // and started there the moment the attempt's program ends (AssignTrial.after_*), so a slot
  // does not wait for the round trip through the coordinator (exit report, commit, proposal,
  // assignment). At most one successor per running attempt, only for single-definition jobs
  // that no single result can end (no completion criterion), only while no other job waits for
  // capacity (fair share stays with the scheduler), and moved to a worker that becomes free to
  // start it before its predecessor ends (MoveQueuedToFreeWorkers); for
  // Hyperband only while the job's recent training jobs are shorter than
  // assign_ahead_max_trial_ms, where the round trip is a measurable share of a slot's time, and
  // while its proposals run inside the core (propose_off_core off); never for Bayesian, whose
  // proposal one training job early costs the model too much (docs/architecture.md).
  bool assign_ahead = true;
  int64_t assign_ahead_max_trial_ms = 60000;
  // The previous process on this store stopped itself, having killed its training programs on
  // purpose (hpo run, when it could not write its state database): the attempts a worker no
  // longer runs at its first registration with this core end Interrupted, to run again without
  // spending a retry, not as infrastructure errors (two of three training jobs were lost so).
  bool lost_at_first_registration_interrupted = false;
  // A multi-host training job that could run but has waited this long for enough free workers
  // at once holds workers for its hosts: other jobs' training jobs are not placed on them, so as
  // they free up the gang assembles. Without it, on a cluster busy with single-host training
  // jobs each freed slot went to one of those at once and the gang waited forever. < 0: never.
  int64_t gang_hold_after_ms = 60000;
  // What a second on a spot worker costs against one on on-demand capacity (BillableTimeInSeconds
  // counts spot time at this rate; 0.3 = 70 % savings, typical of SageMaker managed spot).
  double spot_price_ratio = 0.3;
  // Spot workers (`hpo worker --spot`) run only training jobs whose definition sets
  // EnableManagedSpotTraining, as SageMaker runs a training job without it on on-demand capacity
  // only: it is never interrupted. A definition with it prefers spot workers (and takes an
  // on-demand one when no spot worker can start it). true: spot workers take any training job
  // (a cluster that is all preemptible); billing still discounts only managed-spot seconds.
  bool spot_workers_take_all = false;
  // Proposals off the core: a job whose strategy ProposesOffCore (Bayesian, Hyperband) does not
  // call it inside the event that frees a slot. The core records a ProposalRequest (the job, a
  // copy of its history and curves, and how many configurations: as many as the job could start
  // now, so one model fit serves every slot free at the time) for the caller to run elsewhere
  // (CoordinatorCore::RunProposal, on another thread, without the core's lock) and hand back
  // with OnProposals; meanwhile the core keeps serving every other event and job (Hyperband's
  // rungs included), and asks that job for nothing more. Without it (tests,
  // simulations in virtual time) every proposal runs inside the event, as before. The dispatcher
  // runs the requests on its proposer thread (coordinator/dispatcher.h); `hpo run` and
  // `hpo coordinator` turn this on: a proposal from 5,000 observations takes seconds on a
  // CPU, and no heartbeat, result or API call should wait for it.
  bool propose_off_core = false;
  // Called when the store refuses a write (disk full, I/O error). The core's memory is then ahead
  // of its disk, and what it returns next would acknowledge to workers what is not stored (a
  // worker drops an acknowledged exit report): the caller should stop at once, before sending
  // anything more. `hpo coordinator` and `hpo run` print the reason and exit 3; started again
  // (with space freed) they resume from what the store holds, and the workers re-send what was
  // not acknowledged. Unset (tests): the failure is only kept in the core's log.
  std::function<void(const Status&)> on_store_failure;
  // Called with each event as it is written (its kind, tuning job, training job and message),
  // inside the core's event: `hpo coordinator` echoes them to its log (--log-events), so an
  // operator reading journald sees what `hpo events` lists. It must be quick. Unset: nothing.
  std::function<void(const std::string& kind, const std::string& job, const std::string& trial,
                     const std::string& message)>
      on_event;
  // State-change notifications (coordinator/notifier.h). When set, each change of a tuning job's
  // status or of a training job's status or secondary status is handed to it once the event that
  // made it is done (just before the event's transaction commits), with the core in its new
  // state; the notifications it returns (one per target that wants the change, possibly none)
  // are written to the store in that same transaction, with the state they were made for
  // (JobStore::PutNotified), so a change is notified once, whatever crashes: a change that was
  // written without its notifications (outside a transaction) is found when the core loads and
  // notified then, as the state it has come to. Resources the store holds with no notified state
  // (notifications newly turned on) are taken as notified in the state they are in. A training
  // job is notified from its launch (Trial::Unlaunched: none before). Several changes within one
  // event are one notification, of the last state. It runs inside the core's event: it must not
  // call the core's mutating methods. Unset: nothing is kept or written.
  std::function<std::vector<Notification>(CoordinatorCore& core, const StateChange& change)> notify;
};

// A proposal the core wants made outside it (CoreOptions::propose_off_core).
struct ProposalRequest {
  std::string job;  // the tuning job's name
  uint64_t id = 0;  // matches the result to the request
  size_t n = 1;     // configurations wanted: the job's slots that could start a training job now
  std::shared_ptr<Strategy> strategy;  // the job's; the core does not touch it until the result is back
  // The job's trials when it was asked. Their `curve` pointers are null here: the curves are
  // copied into `curves` (curves[i] is history[i]'s, nullopt where the core tracks none) and
  // RunProposal points the history at them, so a request may be moved or copied freely.
  std::vector<Observation> history;
  std::vector<std::optional<std::vector<double>>> curves;
};

struct ProposalResult {
  std::string job;
  uint64_t id = 0;
  std::vector<Proposal> proposals;
  double seconds = 0;  // how long Propose took
};

// A message for one worker.
struct Outgoing {
  std::string worker_id;
  proto::wire::Message message;
};

// Training job states as SageMaker reports them.
enum class TrialState { kPending, kInProgress, kCompleted, kFailed, kStopping, kStopped };
const char* TrialStateName(TrialState s);

struct SecondaryTransition {
  std::string status;  // Starting, Downloading, Training, Uploading, Completed, Failed, Stopped, ...
  int64_t start_ms = 0;
  std::string message;
};

// One training job of a tuning job.
struct Trial {
  std::string name;
  std::string tuning_job;
  int index = 0;  // 1-based
  std::string definition_name;
  proto::StringMap tuned;            // the tuned hyperparameters (TunedHyperParameters)
  proto::StringMap hyperparameters;  // what the program sees: static + tuned + _tuning_objective_metric
  // Its own tags: the tuning job's when the record was made (SageMaker copies them onto every
  // training job), changed since only by AddTags/DeleteTags on its own ARN. nullopt: a record
  // from before they were copied, which lists its tuning job's.
  std::optional<std::vector<proto::Tag>> tags;
  TrialState state = TrialState::kPending;
  std::vector<SecondaryTransition> secondary;  // SecondaryStatusTransitions, in order
  // Per attempt and host (job_store.h LogLineKey's host: 0 for a single host, N for algo-N): one
  // past the highest log line number received (memory only; after a restart the window starts
  // again from what arrives).
  std::map<std::pair<uint32_t, uint32_t>, uint64_t> log_lines_seen;
  uint32_t attempt = 0;                        // current attempt, 0 before the first start
  std::string worker_id;                       // where the current attempt runs
  bool started = false;                        // TrialStarted seen for the current attempt
  int64_t creation_ms = 0, start_ms = 0, end_ms = 0;
  std::optional<double> objective;               // last emitted value of the objective metric
  std::map<std::string, double> final_metrics;   // last value of every metric
  std::map<std::string, int64_t> final_metric_ms;  // when each of those was emitted (worker's clock)
  uint64_t last_seq = 0;                         // last MetricPoints seq applied (this attempt;
                                                 // of a gang, algo-1's: GangHost::seq the others')
  // A gang's metrics: every host parses its own output, and a metric's values are those of the
  // lowest-numbered host that reports it (index into `gang`; algo-1 is 0). The trainers of a
  // heterogeneous cluster are often a later instance group than the data hosts; where several
  // hosts print a metric (each rank its own loss), algo-1's wins, as with one host. A lower host
  // that starts reporting a metric later takes it over: its points replace the other's. Kept
  // across attempts, as final_metrics are: a retry's algo-1 that resumes past its last epoch and
  // prints nothing leaves its earlier value final, and algo-2's values in the retry do not count
  // (they did: the objective became another host's metric; a gang-faults pass).
  std::map<std::string, size_t> metric_host;
  std::map<std::string, int64_t> metric_host_since;  // when each took its metric (memory only)
  std::string failure_reason;
  int infra_failures = 0;  // attempts that ended in infrastructure errors
  // Attempts a worker could not start (an InfraError before the program ran: its disk, its image
  // mapping) run again without spending a retry while a worker that has not refused it is
  // registered (at most kSetupRequeues times): the workers that refused it, and how often.
  std::set<std::string> setup_refused_by;
  int setup_requeues = 0;
  bool stop_requested = false;
  std::string stop_reason;
  // The current attempt is being stopped because its worker was evicted (Evict: hpo workers
  // drain --now), and why. Its exit as Stopped then re-queues the training job as an
  // interruption does (no retry spent, placed elsewhere), unless a stop of its own came first.
  // Stored; cleared when it goes back to the queue.
  std::string evicted;
  // The objective's values in emission order, this attempt (coordinator/adaptive.h's curve),
  // tracked for jobs with early stopping or Hyperband; rebuilt from the store after a restart.
  std::vector<double> curve;
  size_t curve_decided = 0;  // points of `curve` early stopping / Hyperband have looked at
  std::vector<uint32_t> gpus;  // GPU indices of the current attempt on its worker
  // The current attempt's resources: an index into proto::ResourceOptions of its definition
  // (HyperParameterTuningResourceConfig.InstanceConfigs; 0 with a plain ResourceConfig).
  size_t resource_option = 0;
  int64_t assigned_ms = 0;     // when the current attempt was sent to its worker (not stored)
  // The current attempt's AssignTrial until its worker reports it started (single-host attempts;
  // not stored): sent again when that worker registers again, from the same process, without it
  // (OnRegister: it reconnected, and the first copy may have gone to the connection it left).
  std::shared_ptr<const proto::wire::AssignTrial> unstarted_assign;
  int64_t stop_sent_ms = 0;    // when its StopTrial was last sent (not stored; see Reconcile)
  // The attempt whose program its (first) host's worker said has ended (AttemptRef::ended in a
  // Register or Heartbeat, its exit report still to come; not stored): its curve is complete, and
  // early stopping does not stop it (a Hyperband pass: a job that completed during a coordinator
  // outage was "EarlyStopped" on the metrics replayed after the restart, and its history said
  // Stopping after its end).
  uint32_t ended_attempt = 0;
  // The current attempt's start by its worker's clock (TrialStarted.started_at_ms) and which
  // worker said so: with TrialExited.ended_at_ms from the same worker, the attempt's training
  // time as it ran, whatever the coordinator was doing meanwhile (down, paused, busy).
  int64_t worker_started_ms = 0;
  std::string worker_started_on;
  // The place of its objective in the order its tuning job's objectives were counted (1, 2, ...;
  // 0 not counted): the completion criteria count in that order, and a restart replays it. End
  // times do not keep it: an end heard late is dated back to when the training job ended.
  int64_t counted = 0;
  int interruptions = 0;       // attempts that ended Interrupted (spot): re-queued, no retry spent
  // When an attempt that ran (or was lost, or interrupted) put it back in the queue: its
  // MaxPendingTimeInSeconds counts from then, not from its creation (0: never re-queued). Stored.
  int64_t requeued_ms = 0;
  // Not placed again before this (coordinator clock): its last attempt's worker was lost, and
  // that worker's guard ends the program it may still run by then (proto::wire::
  // StallKillAfterMs); placed at once, the two ran side by side. 0: no wait. Stored while pending
  // (a coordinator restarted within the wait placed it at once).
  int64_t fenced_until_ms = 0;
  // The worker of the last attempt that was interrupted or ended in an infrastructure error: the
  // next attempt is placed elsewhere if possible (a full disk failed every retry on the same
  // worker within milliseconds while another sat idle).
  std::string interrupted_on;
  // A multi-host attempt (InstanceCount > 1 or several instance groups): every host of its gang,
  // algo-1 first (worker_id is gang[0]'s). Empty for a single-host attempt. Every host reports
  // its log lines and metric points (metric_host says whose values count). The attempt ends when
  // every host has exited Completed, or at the first host that ends otherwise (the others are
  // stopped), and a lost host ends it as an infrastructure error, retried as a unit.
  struct GangHost {
    std::string worker_id;
    std::string group;           // its instance group ("" for an InstanceCount gang)
    std::string instance_type;
    std::vector<uint32_t> gpus;
    std::string exit;            // the host's TrialExited status once it reported one
    uint64_t seq = 0;            // last MetricPoints seq applied from this host (algo-1: last_seq)
    int64_t ended_ms = 0;        // when it ended by this coordinator's clock (a late report: earlier)
    int64_t worker_started_ms = 0;  // its TrialStarted.started_at_ms (its worker's clock)
  };
  std::vector<GangHost> gang;
  // Each multi-host attempt's workers in host order (algo-1 first), kept after the attempt ends
  // (`gang` goes then): a host's last lines, flushed as it is stopped or after a retry began,
  // still go under its own numbers (OnLogLines).
  std::map<uint32_t, std::vector<std::string>> gang_workers;
  // An ended multi-host attempt whose algo-1 was lost with no retry to follow: what its other
  // hosts handed over under the output path will never be merged, and one of their workers is to
  // remove it (DiscardHandOver; Impl::SendDueDiscards says when). Stored, so that a coordinator
  // restart in between does not leave the folder; cleared once a worker is told.
  struct HandOverToDiscard {
    uint32_t attempt = 0;
    std::string output_path;
    std::vector<std::string> workers;  // the attempt's other hosts' workers, algo-2 first
  };
  std::optional<HandOverToDiscard> discard_hand_over;
  // The workers of the current attempt: its gang's, else worker_id alone.
  std::vector<std::string> Hosts() const {
    if (gang.empty()) return {worker_id};
    std::vector<std::string> v;
    for (const auto& h : gang) v.push_back(h.worker_id);
    return v;
  }
  bool OnWorker(const std::string& wid) const {
    if (gang.empty()) return worker_id == wid;
    for (const auto& h : gang) {
      if (h.worker_id == wid) return true;
    }
    return false;
  }
  // A gang host on `wid` that has reported its exit: the worker no longer lists the attempt
  // (its program ended) while the other hosts run on, and that is not a lost assignment.
  bool HostEnded(const std::string& wid) const {
    for (const auto& h : gang) {
      if (h.worker_id == wid && !h.exit.empty()) return true;
    }
    return false;
  }
  // Every host of a gang but algo-1 has reported its exit while algo-1 has not: algo-1's worker
  // is told (GangPeersEnded), as its upload waits to merge the others' files.
  bool PeersEnded() const {
    return gang.size() > 1 && gang[0].exit.empty() &&
           std::all_of(gang.begin() + 1, gang.end(), [](const GangHost& h) { return !h.exit.empty(); });
  }
  // The host of the current attempt that `wid` plays: its index into `gang` (algo-1 is 0); 0 for
  // a single-host attempt.
  size_t HostIndex(const std::string& wid) const {
    for (size_t i = 0; i < gang.size(); ++i) {
      if (gang[i].worker_id == wid) return i;
    }
    return 0;
  }
  // The last MetricPoints seq applied from that host: each host numbers its own batches.
  uint64_t& SeqOf(size_t host) { return host == 0 ? last_seq : gang[host].seq; }
  // Assigned ahead: the current attempt waits on its worker for this attempt (same worker, its
  // GPUs) to end, then starts in its slot. "" = not queued. It does not count against the job's
  // MaxParallelTrainingJobs until then (it is InProgress, secondary status Starting).
  std::string after_trial;
  uint32_t after_attempt = 0;
  bool Queued() const { return !after_trial.empty(); }
  // The current attempt was assigned ahead (Queued() until its predecessor ended). One that never
  // started its program when the tuning job was stopped is withdrawn, whether or not its
  // predecessor's end came first. Stored: a restarted coordinator listed and counted those given
  // back unstarted (requeued when their worker was lost) as InProgress training jobs.
  bool assigned_ahead = false;
  // Queued ahead and asked to leave its busy worker for a free one (StopTrial with
  // proto::wire::kStopReasonIfNotStarted): its worker's Stopped report puts it back in the queue
  // for the free worker; its start means it stays. Its predecessor's end settles nothing: the
  // request may reach the worker before the queued attempt starts there. A fair-share
  // withdrawal (another tuning job waits for a slot) asks the same way: `withdrawing` says which,
  // for the history.
  bool moving = false;
  bool withdrawing = false;
  // Not a training job to the API yet: assigned ahead and never started (queued on its worker, or
  // withdrawn back to the queue before it ran). SageMaker creates a training job when it launches
  // one, so such a trial is left out of the status counters, the lists and DescribeTrainingJob
  // until it starts: otherwise InProgress exceeded MaxParallelTrainingJobs, and a stopped job's
  // queued trials, withdrawn, vanished from lists that had shown them.
  // (Once its predecessor ended it runs, or is about to: listed, whether or not its start was heard.)
  bool Unlaunched() const {
    return start_ms == 0 && training_ms == 0 && (Queued() || (assigned_ahead && state == TrialState::kPending));
  }
  // Time the program ran, over all attempts (coordinator clock: TrialStarted to the attempt's
  // end), and the part of it on spot workers as managed spot; the current attempt's since
  // attempt_start_ms.
  int64_t training_ms = 0, spot_training_ms = 0;
  int64_t attempt_start_ms = 0;  // 0 when no attempt runs
  bool on_spot = false;          // the current attempt runs on a spot worker, EnableManagedSpotTraining set
  // TrainingTimeInSeconds and BillableTimeInSeconds as of `now` (both >= 1 once it started):
  // billable counts spot time at `spot_price_ratio` (CoreOptions), so SageMaker's savings figure,
  // (1 - billable / training) * 100, is what spot capacity saved.
  std::pair<int64_t, int64_t> TrainingAndBillableSeconds(int64_t now, double spot_price_ratio) const;

  const std::string& SecondaryStatus() const;
  bool Active() const { return state == TrialState::kInProgress || state == TrialState::kStopping; }
  // A StopTrial is owed to its workers until the attempt ends: a stop (StopTrialMsg) or an
  // eviction; re-sent to a worker that still holds it (a lost message, a restart).
  bool StopOwed() const {
    return (stop_requested && state == TrialState::kStopping) || (!evicted.empty() && Active());
  }
  bool Terminal() const {
    return state == TrialState::kCompleted || state == TrialState::kFailed || state == TrialState::kStopped;
  }
  // Its FinalHyperParameterTuningJobObjectiveMetric, as lists show and sort it: only once it has
  // ended Completed or Stopped (ObjectiveStatus Succeeded), as on SageMaker. A running one's value
  // is not final (a script picking the best mid-run took one whose value changed; the SDK's
  // analytics showed it as a FinalObjectiveValue), and a Failed one has none (the last value it
  // reported is in its metrics): neither is ranked nor sorted by it.
  bool ShowsObjective() const {
    return objective.has_value() && (state == TrialState::kCompleted || state == TrialState::kStopped);
  }
};

// The TrainingJobStatus SageMaker reports for the trial: its state's name, with Pending (waiting
// for a slot, a retry included) reported as InProgress.
const char* TrainingJobStatusOf(const Trial& t);

// A tuning job.
struct TuningJob {
  std::string name;
  proto::TuningJobSpec spec;
  // A job submitted as a Kubernetes resource: its metadata's name, namespace, labels and
  // annotations (proto::KeptKubernetesMetadata), which its resource (DescribeDocument) shows again.
  // Empty for one submitted as a SageMaker request. Stored (the row's metadata).
  nlohmann::ordered_json kubernetes_metadata = nlohmann::ordered_json::object();
  std::string status = "InProgress";  // InProgress, Completed, Failed, Stopping, Stopped
  // Its deletion has begun (DeleteSlice, Delete): shown as SageMaker's Deleting (ShownStatus), and
  // no new job may take it as a warm-start parent (the deletion would then be refused half done)
  // or its name. Stored (the row's metadata), before the first row goes: a coordinator stopped
  // mid-way finds it so when it starts again and finishes the deletion (TakeInterruptedDeletions),
  // where it used to serve the job as Completed without the logs and curves already gone.
  bool deleting = false;
  // Why the last step of its deletion failed (a disk error), shown as SageMaker's DeleteFailed
  // with this as FailureReason; deleting it again goes on. Not stored: a restart goes on at once.
  std::string delete_failure;
  const std::string& ShownStatus() const {
    static const std::string kDeleting = "Deleting", kDeleteFailed = "DeleteFailed";
    if (!deleting) return status;
    return delete_failure.empty() ? kDeleting : kDeleteFailed;
  }
  std::string failure_reason;
  std::string completion_reason;  // why it completed (limit, exhausted, target, ...)
  uint64_t seed = 0;
  int64_t creation_ms = 0, end_ms = 0, last_modified_ms = 0;
  std::vector<std::string> trials;  // names, in creation order
  std::shared_ptr<Strategy> strategy;
  // The ProposalRequest of this job that is out (CoreOptions::propose_off_core), 0 when none: its
  // strategy belongs to whoever runs it until OnProposals. Not stored: after a restart the job
  // simply asks again.
  uint64_t proposal_id = 0;
  size_t proposal_n = 0;  // the training jobs (free slots) that proposal is for
  bool Proposing() const { return proposal_id != 0; }
  // When the scheduler last gave this job a slot, by its count of placements (0: never since
  // this coordinator started). Among jobs with as many running, the one served longest ago goes
  // first: with more jobs than slots, oldest-first gave a freed slot back to the job that had
  // just ended a training job, and later jobs got nothing until the earlier ones completed.
  uint64_t last_placed = 0;
  std::string objective_metric;  // of the first definition (single objective per job here)
  bool maximize = false;
  int64_t convergence_ms = 0;    // when ConvergenceDetected's test first passed (0: not yet)
  // NumberOfTrainingJobsObjectiveNotImproving when the job decided to end (-1: not yet): the
  // training jobs that decision stops, and that end after it, are not counted in it.
  int64_t not_improving_final = -1;
  std::string waiting_reason;    // why its next training job cannot start ("" when it could)
  // The last Waiting event's words, until a training job starts: a fenced retry's wait and the
  // never-placeable reason took turns in waiting_reason at every tick, and each turn was said
  // again (133 events in 10 s).
  std::string waiting_said;
  int64_t waiting_since_ms = 0;

  bool Terminal() const { return status == "Completed" || status == "Failed" || status == "Stopped"; }
};

// How long a job's strategy took to propose configurations (DESIGN: latency is a product
// feature). Every Propose call is counted; `last` is the strategy's own breakdown of the latest
// call when it reports one (Bayesian), else only its seconds.
struct SuggestionStats {
  uint64_t count = 0;
  double seconds_sum = 0, seconds_max = 0;
  uint64_t fallbacks = 0;  // calls where the model could not propose and random search did
  uint64_t exploits = 0;   // proposals that were the model's predicted best (SuggestStats::exploit)
  SuggestStats last;
};

// A worker that missed its lease (lost) or left as it said it would, kept so that operators see
// where it went (hpo workers) until it registers again: the last kDepartedWorkersKept.
struct DepartedWorker {
  std::string host;
  std::string instance_type;
  int64_t last_seen_ms = 0;  // its last word
  int64_t gone_ms = 0;       // when this coordinator let it go
  bool left = false;         // it said it was going (an interruption notice) and gave everything back
  std::string why;           // "missed its lease while running 2 training job(s)", "left, as it said ..."
};
inline constexpr size_t kDepartedWorkersKept = 64;

// WorkerInfo::draining's beginning after a worker's InterruptionNotice: its capacity is being
// taken (a spot reclaim), or it is shutting down itself (InterruptionNotice.planned).
inline constexpr std::string_view kDrainingNotice = "interruption notice: ";
inline constexpr std::string_view kDrainingShutdown = "shutting down: ";

struct WorkerInfo {
  proto::wire::Register reg;
  int64_t last_seen_ms = 0;
  std::set<std::pair<std::string, uint32_t>> running;  // (trial, attempt)
  std::set<std::pair<std::string, uint32_t>> queued;   // assigned ahead, waiting for a slot here
  // Attempts whose successor started here (so, by the worker's account, they have ended) and whose
  // exit report has not arrived: off the slot count, still checked by heartbeats. The report may
  // be on its way, or the attempt may never have reached the worker (its AssignTrial was lost and
  // the successor started at once): a lease after it was sent, a heartbeat without it finds it lost.
  std::set<std::pair<std::string, uint32_t>> ending;
  // Attempts it runs that this coordinator has never heard of, of a tuning job it does not know
  // either: another coordinator's (a coordinator started on an empty or other state directory,
  // a restored backup). They are left to finish, not stopped: whose they are is not this
  // coordinator's to say. They hold their slots until the worker says they ended (AttemptRef::
  // ended: only their exit report is left there, kept for their own coordinator); their reports
  // are left unacknowledged unless this one deleted their tuning job.
  std::set<std::pair<std::string, uint32_t>> foreign;
  std::string draining;  // why no new trial goes there: kDrainingNotice or kDrainingShutdown and
                         // what the worker said; "" = open
  std::string cordoned;  // an operator's reason for sending it nothing new (Cordon); "" = not
  // A worker whose training jobs end InfraError kInfraErrorsBeforeRest times in a row (a full
  // disk, a broken container runtime) rests: no new training job goes there until
  // `resting_until_ms` (60 s, doubling while it keeps failing, at most 10 min), so it does not
  // burn every job's retries; a training job that ends otherwise there, or a new registration,
  // makes it whole again. Not persisted.
  int infra_streak = 0;
  // Whether a training job that ended with this worker's previous process (kill -9, a crash) has
  // counted in infra_streak since it registered: the others are the same fault (3 of them rested
  // a restarted, healthy worker for 60 s; a scale pass).
  bool ended_process_counted = false;
  std::string resting;  // why it rests; "" = not resting
  int64_t resting_until_ms = 0;
  int64_t rest_ms = 0;  // the next rest's length
  // Tuning jobs whose training jobs it could not start (their program, their image) within the
  // streak: a training job of one of them that no worker could start says the refusals were the
  // job's own mistake, and forgives every worker they counted against (those resting too).
  std::set<std::string> refused_jobs;
  // Why no new training job goes there now ("" = it may take one).
  const std::string& Closed() const {
    return !draining.empty() ? draining : !cordoned.empty() ? cordoned : resting;
  }
  // The worker's clock against the coordinator's: for its latest TrialStarted reports, when each
  // was heard minus when it says the program started (the last 16; not persisted). The smallest
  // is the offset plus the least delay: a start heard seconds late (a coordinator stall) is
  // placed at its own time by it, not at the time it was heard.
  std::deque<int64_t> clock_samples;
  // The same offset learnt from heartbeats (Heartbeat.sent_ms), for judging what a heartbeat
  // says the worker held: the smallest sample, allowed to rise by 10 ms per second since it was
  // taken (clock drift, a worker clock stepped back a little), so that a run of heartbeats heard
  // seconds late (behind a metric flood, or a stall) hardly moves it. A sample over a minute
  // above it is a clock stepped back or a heartbeat a minute late, which one cannot tell: such
  // heartbeats are not judged, and samples that stay that high for two minutes are the new
  // offset. Reset when another worker process registers under the id. nullopt: no sample yet.
  std::optional<int64_t> heartbeat_offset;
  int64_t heartbeat_offset_ms = 0;      // when it was last set
  int64_t heartbeat_jump_since_ms = 0;  // since when samples are over a minute above it (0: not)
  // When a heartbeat sent at `sent_ms` by the worker's clock was sent, by this coordinator's
  // (never later than now): `now` when the worker did not say; nullopt when it cannot be told.
  std::optional<int64_t> HeartbeatSentAt(int64_t sent_ms, int64_t now) {
    if (sent_ms <= 0) return now;
    constexpr int64_t kStepMs = 60'000, kAdoptMs = 120'000;
    const int64_t sample = now - sent_ms;
    const int64_t risen =
        heartbeat_offset ? *heartbeat_offset + (now - heartbeat_offset_ms) / 100 : sample;  // first: taken
    if (sample > risen + kStepMs) {
      if (heartbeat_jump_since_ms == 0) heartbeat_jump_since_ms = now;
      if (now - heartbeat_jump_since_ms < kAdoptMs) return std::nullopt;
    } else {
      heartbeat_jump_since_ms = 0;
      if (sample > risen) return std::min(now, sent_ms + risen);  // heard late: the learnt offset
    }
    heartbeat_offset = sample;  // the smallest yet, or a clock step that lasted
    heartbeat_offset_ms = now;
    heartbeat_jump_since_ms = 0;
    return std::min(now, sent_ms + sample);
  }
  std::optional<int64_t> ClockOffset() const {
    if (clock_samples.empty()) return std::nullopt;
    return *std::min_element(clock_samples.begin(), clock_samples.end());
  }
  // Sessions of earlier processes under this id, replaced by a newer registration. One that
  // registers again was not a restart: two live workers share the id (refused).
  // The latest 64, oldest first: a worker restarted every few minutes for months grew it without
  // end, and only a recent session's Register can still arrive late.
  std::deque<uint64_t> replaced_sessions;
  bool Replaced(uint64_t session) const {
    return std::find(replaced_sessions.begin(), replaced_sessions.end(), session) != replaced_sessions.end();
  }
  // KeepAlivePeriodInSeconds: a slot kept for the next training job of the same tuning job and
  // definition after one ended here, until `until_ms` (warm reuse; not persisted).
  struct Warm {
    std::string job;  // lower-cased tuning job name
    std::string definition;
    int64_t until_ms = 0;
  };
  std::vector<Warm> warm;
  // Slots no attempt holds and no warm reservation keeps; `for_job`/`definition` adds the slots
  // kept for that job's definition.
  int free_slots(const std::string& for_job = "", const std::string& definition = "") const {
    int kept = 0;
    for (const auto& w : warm) kept += (w.job == for_job && w.definition == definition) ? 0 : 1;
    return static_cast<int>(reg.slots) - static_cast<int>(running.size() + foreign.size()) - kept;
  }
  int warm_for(const std::string& job, const std::string& definition) const {
    int n = 0;
    for (const auto& w : warm) n += (w.job == job && w.definition == definition) ? 1 : 0;
    return n;
  }
};

class CoordinatorCore {
 public:
  // `store` must outlive the core. On construction the core loads what the store holds.
  CoordinatorCore(JobStore* store, CoreOptions options);
  ~CoordinatorCore();
  CoordinatorCore(const CoordinatorCore&) = delete;
  CoordinatorCore& operator=(const CoordinatorCore&) = delete;

  // ---- API-facing ----------------------------------------------------------------------------
  // Validates, persists and starts a tuning job. With Autotune the job runs, stores and
  // describes the spec with Autotune's choices filled in (coordinator/autotune.h), and each
  // choice is an "AutotuneChose" event. Errors: InvalidArgument (validation, all errors in the
  // message), AlreadyExists (ResourceInUse), ResourceExhausted (too many jobs).
  // On success returns the job's ARN; trials for free slots are in *out.
  // `kubernetes_metadata`: a Kubernetes resource's metadata, kept as proto::KeptKubernetesMetadata says.
  Result<std::string> Submit(const proto::TuningJobSpec& spec, proto::Spelling spelling, int64_t now_ms,
                             std::vector<Outgoing>* out,
                             const nlohmann::ordered_json& kubernetes_metadata = nlohmann::ordered_json::object());
  // Why the registered workers could never run some training job of `spec` (Autotune's choices
  // made): NeverReason's text for the first definition none of them could ever serve, naming the
  // definition when there are several; "" when each could run on one of them (busy or not).
  // Changes nothing. `hpo run` asks before submitting, so that a type none of its local workers
  // serves is refused before any training job starts.
  std::string NeverServable(const proto::TuningJobSpec& spec);
  // Stops a job: running trials get StopTrial with the grace period, in one store transaction.
  // NotFound if unknown; a job already terminal is left as it is (no error, like SageMaker's
  // idempotent stop); one Stopping already is stopped again (what was not told yet is told).
  Status Stop(const std::string& job, int64_t now_ms, std::vector<Outgoing>* out);
  // Replaces a tuning job's tags (SageMaker's AddTags and DeleteTags on its ARN; the caller merges
  // and validates): stored with its spec, listed by ListTags for the job and its training jobs.
  // LastModifiedTime stays. Errors: NotFound.
  Status SetTags(const std::string& job, std::vector<proto::Tag> tags);
  // Replaces a training job's own tags (AddTags and DeleteTags on its ARN), stored with it; its
  // tuning job's stay as they are. Errors: NotFound.
  Status SetTrainingJobTags(const std::string& training_job, std::vector<proto::Tag> tags);
  // Stops one training job of a tuning job (SageMaker's StopTrainingJob): its program gets
  // SIGTERM and the grace period (one not started yet ends at once), it ends Stopped, is not
  // retried, its last objective value counts as an early-stopped one's does, and the tuning job
  // goes on to its next training job. Stopping one already Stopping is accepted again. Errors:
  // NotFound; FailedPrecondition, changing nothing, when it has ended (naming its status).
  Status StopTrainingJob(const std::string& trial, int64_t now_ms, std::vector<Outgoing>* out);
  // Deletes a tuning job's entry (SageMaker's DeleteHyperParameterTuningJob): the job and its
  // training jobs' records, metrics and log lines leave the store, Describe and the lists; what
  // the training jobs wrote to S3OutputPath stays, and the name may be used again. Errors:
  // NotFound; FailedPrecondition, changing nothing, while the job is InProgress or Stopping (stop
  // it first), while its last proposal is still being computed (retry), or while another job
  // names it in WarmStartConfig (that job's prior is built from it: delete that one first). What
  // is left of a job whose stored row cannot be read (UnreadableJobs) is deleted too. The job is
  // stored as Deleting first; a store error after that leaves it DeleteFailed (deleting it again
  // goes on), never back to its old status without the rows already gone.
  Status Delete(const std::string& job, int64_t now_ms);
  // Delete's bulk ahead of it, one slice of the store's rows a call (JobStore::DeleteJobSlice:
  // metric points, log lines, training jobs' events), for a caller that lets go of the core
  // between calls: one call for a large job's whole deletion held the core, and every worker's
  // messages and API call, for seconds. Refused as Delete is, with its Status and changing
  // nothing; true while it deleted something (call again), false when Delete may finish. The
  // first call stores the job as Deleting (TuningJob::deleting) before any row goes. The job stays
  // listed, and its name taken, until Delete. The remains of an unreadable job go in slices too.
  // A failed slice leaves the job DeleteFailed (TuningJob::delete_failure) until a call succeeds.
  Result<bool> DeleteSlice(const std::string& job, int64_t now_ms);
  // The jobs whose deletion the store says had begun when the core was loaded (a coordinator
  // stopped mid-way), each named once: the caller finishes them as it deletes any other
  // (DeleteSlice, then Delete). LoadNotes names them too.
  std::vector<std::string> TakeInterruptedDeletions();
  // Tuning jobs in the store that could not be read when it was loaded (a damaged row), one line
  // each with why and what to do: the caller says so when it starts. They are not served, and
  // their name is refused to a new job until deleted (their training jobs' rows are still there).
  std::vector<std::string> UnreadableJobs() const;
  // What the caller says when it starts: UnreadableJobs' lines, then one per training job whose
  // stored row was damaged (one that had not ended ends Failed, with an event saying why).
  std::vector<std::string> LoadNotes() const;
  // Whether a training job of `job` has not ended (one ends after its tuning job when the tuning
  // job failed while it ran). Kept by the core's index: no walk over the training jobs.
  bool AnyUnfinished(const TuningJob& job) const;
  // Whether the store could be read when the core was made: a failed read of its jobs, trials,
  // cordons or metric curves (a disk error) leaves the core partial, and a core serving that
  // would make new training jobs under the names of stored ones, overwriting them. The caller
  // must not serve a core whose load failed (IoError, naming what could not be read).
  Status LoadStatus() const;

  // ---- operators -----------------------------------------------------------------------------
  // Cordons a worker (hpo workers cordon): no new training job goes to it; those running there
  // finish as they would, and those assigned ahead to it that have not started are asked back,
  // to run elsewhere. Stored: it holds across the worker's restarts and the coordinator's, until
  // Uncordon. An id that is not registered may be cordoned too (a machine coming back from
  // repair, before its worker starts). Cordoning again replaces the reason. A CordonSet event.
  // Errors: InvalidArgument, changing nothing, for an empty or over-long (> 128) id or an
  // over-long (> 1,024) reason.
  Status Cordon(const std::string& worker_id, const std::string& reason, int64_t now_ms, std::vector<Outgoing>* out);
  // Lifts a cordon (a CordonLifted event); waiting training jobs may go there at once (in *out).
  // Errors: NotFound when the worker is not cordoned.
  Status Uncordon(const std::string& worker_id, int64_t now_ms, std::vector<Outgoing>* out);
  // Every cordon, by worker id (registered or not).
  std::vector<CordonRow> Cordons() const;
  // Evicts a registered worker (hpo workers drain --now): cordons it (Cordon, with `reason`) and
  // stops the training jobs running there now, with their grace period (the program gets SIGTERM,
  // its last checkpoints are uploaded); each that ends Stopped goes back to the queue as a spot
  // interruption does: no retry spent, placed on another worker, resuming from its checkpoints.
  // One that completes or fails meanwhile ends so. Multi-host training jobs stop on every host.
  // The evicted training jobs' names go to *evicted. An Evicted event each.
  // Errors: as Cordon's; NotFound for a worker that is not registered (nothing runs there).
  Status Evict(const std::string& worker_id, const std::string& reason, int64_t now_ms, std::vector<Outgoing>* out,
               std::vector<std::string>* evicted);

  // ---- worker-facing -------------------------------------------------------------------------
  // Handles one decoded message from a worker. Returns the replies and any new assignments.
  std::vector<Outgoing> OnMessage(const std::string& worker_id, const proto::wire::Message& msg, int64_t now_ms);
  // Handles a batch of messages in one store transaction (group commit: one fsync for the batch
  // instead of several per message). The replies (acknowledgements among them) are returned
  // only once the batch is durable; if the commit fails none is returned, the failure is
  // logged, and the workers re-send what was not acknowledged.
  struct Incoming {
    std::string worker_id;
    proto::wire::Message message;
  };
  std::vector<Outgoing> OnMessages(const std::vector<Incoming>& batch, int64_t now_ms);
  // Expires leases and schedules. Call periodically.
  std::vector<Outgoing> OnTick(int64_t now_ms);
  // The caller read nothing for `gap_ms` up to `now_ms` (the process was paused or stopped, the
  // machine swapped, a disk stalled): every worker's lease is extended by that time, which was the
  // coordinator's silence, not the workers'. Their heartbeats of that time wait unread.
  void CreditStall(int64_t gap_ms, int64_t now_ms);

  // ---- proposals off the core (CoreOptions::propose_off_core) --------------------------------
  // The requests recorded since the last call, oldest first (each job has at most one out).
  std::vector<ProposalRequest> TakeProposalRequests();
  // Runs a request's Propose and times it. Touches only the request: call it without the core's
  // lock, one request of a job at a time.
  static ProposalResult RunProposal(ProposalRequest& request);
  // Results back: each becomes its job's next trial (placed at once when a slot is free) unless
  // the job ended, was stopped, reached its limits or was never asked (an unknown id: ignored).
  // An empty proposal list means the strategy is exhausted. Returns the assignments, as OnTick.
  std::vector<Outgoing> OnProposals(std::vector<ProposalResult> results, int64_t now_ms);
  // Forgets every request out, taken or not (its caller shuts down): each job asks again the
  // next time it is scheduled, and results that come back later are ignored.
  void CancelProposals();

  // ---- queries -------------------------------------------------------------------------------
  // ConsumedResources.RuntimeInSeconds is wall time from creation to the end, or to `now_ms`
  // while the job runs (0: to its last change, for callers without a clock).
  Result<proto::DescribeTuningJobResponse> Describe(const std::string& job, int64_t now_ms = 0) const;
  // The CRD document with its status block filled in.
  Result<proto::TuningJobDocument> DescribeDocument(const std::string& job) const;
  std::vector<const TuningJob*> Jobs() const;
  const TuningJob* FindJob(const std::string& job) const;
  const Trial* FindTrial(const std::string& trial) const;
  std::vector<const Trial*> TrialsOf(const std::string& job) const;
  proto::TrainingJobSummary Summary(const Trial& t) const;
  std::vector<const WorkerInfo*> Workers() const;
  // Workers lost or gone and not registered again, by id (the last kDepartedWorkersKept).
  const std::map<std::string, DepartedWorker>& Departed() const;
  // The GPU indices of `worker` its training jobs hold now.
  std::set<uint32_t> GpusInUse(const std::string& worker) const;
  // The job's suggestion latency so far; nullptr for an unknown job or before its first proposal.
  const SuggestionStats* Suggestions(const std::string& job) const;
  // Events written since this core started, by kind (WorkerLost, InfraError, JobFailed, ...):
  // counters for monitoring (GET /hpo/v1/metrics hpo_events_total), reset by a restart.
  std::map<std::string, uint64_t> EventCounts() const;
  // The trial's stored output lines after the cursor `after_id` (0 = from the start).
  Result<std::vector<LogRow>> Logs(const std::string& trial, int64_t after_id, size_t limit) const;
  // What CloudWatch Logs' actions read (coordinator/cloudwatch_logs.h), each a bounded, indexed
  // read: the names of training jobs that start with `prefix`, after `after` in name order, at
  // most `limit`; a training job's log streams; the lines of one stream and of several training
  // jobs by time (JobStore::LoadStreamLines, LoadLinesByTime). NotFound for an unknown training job.
  std::vector<std::string> TrialNames(const std::string& prefix, const std::string& after, size_t limit) const;
  // Every stored metric value of a training job, of every attempt (CloudWatch's view,
  // coordinator/cloudwatch_metrics.h). NotFound for an unknown training job.
  Result<std::vector<MetricRow>> MetricHistory(const std::string& trial) const;
  Result<std::vector<LogStreamRow>> LogStreams(const std::string& trial) const;
  Result<std::vector<LogRow>> StreamLines(const std::string& trial, uint32_t attempt, uint32_t host, uint64_t from,
                                          uint64_t to, int64_t start_ms, int64_t end_ms, size_t limit,
                                          bool from_end) const;
  Result<std::vector<LogRow>> LinesByTime(const std::vector<std::string>& trials, int64_t start_ms, int64_t end_ms,
                                          int64_t after_ms, int64_t after_id, size_t limit) const;
  // The objective's values of each of the job's training jobs (their current attempts), in the
  // order the trainer emitted them: from memory where the core tracks curves (early stopping,
  // Hyperband), else read from the store. NotFound for an unknown job.
  // With `only`, just those training jobs' (names not of this job are left out). With
  // `attempt_starts`, every attempt's values, one after another (a training job resumed after an
  // interruption goes on where it was), and for each training job with more than one attempt the
  // index in its curve where each later attempt's begin.
  Result<std::map<std::string, std::vector<double>>> Curves(
      const std::string& job, const std::set<std::string>* only = nullptr,
      std::map<std::string, std::vector<size_t>>* attempt_starts = nullptr) const;
  // The coordinator's history after the cursor `after_id` (0 = from the start), oldest first:
  // every event when `job` is empty, else that job's (a deleted job's events stay). NotFound for a
  // job this coordinator never had.
  Result<std::vector<EventRow>> Events(const std::string& job, int64_t after_id, size_t limit) const;
  // The newest `limit` of them, oldest first (NotFound as Events).
  Result<std::vector<EventRow>> LastEvents(const std::string& job, size_t limit) const;
  // Lines kept per attempt: its first kLogHeadLines and its last kLogTailLines (where the final
  // metrics and a traceback are); the middle of a longer log is dropped, and readers see the gap
  // in the line numbers. A line is kept up to kLogLineBytes (cut at a character, with a note of
  // how much was cut). So one attempt stores at most about 80 MB however much its program
  // prints (with 100,000 lines each way and 16 KB lines it was 3.2 GB: one chatty trainer
  // filled the state disk and stopped the coordinator for every job). The worker's own
  // trial.log keeps every line whole.
  static constexpr uint64_t kLogHeadLines = proto::wire::kLogHeadLines;
  static constexpr uint64_t kLogTailLines = proto::wire::kLogTailLines;
  static constexpr size_t kLogLineBytes = proto::wire::kStoredLogLineBytes;  // (StoredLogLine)
  // Points of one metric stored per attempt: every one of its first kMetricHeadPoints emissions,
  // then every 2nd of the next kMetricHeadPoints, every 4th of the 2 * kMetricHeadPoints after
  // that, and so on (KeepsMetricPoint): about kMetricHeadPoints / 2 more per doubling, 6,600
  // for 50,000 emissions, 11,000 for a million. A program that prints its loss every step
  // stored every point (1.5 million rows for 30 training jobs in a scale pass, stalling the
  // coordinator for seconds). The objective and FinalMetricDataList see every point as it
  // comes; a chart of a long curve shows it thinned. The objective of a job with early stopping
  // or Hyperband is stored whole: their rules index its curve by emission, and a restarted
  // coordinator rebuilds the curves from the store.
  static constexpr uint32_t kMetricHeadPoints = 2000;
  static bool KeepsMetricPoint(uint32_t step) {
    if (step < kMetricHeadPoints) return true;
    uint64_t stride = 2;
    for (uint64_t bound = 2ull * kMetricHeadPoints; step >= bound; bound *= 2) stride *= 2;
    return step % stride == 0;
  }
  std::string JobArn(const std::string& job) const;
  std::string TrainingJobArn(const std::string& trial) const;
  const CoreOptions& options() const { return options_; }
  // Writes an event of the coordinator's history (`hpo events`, CoreOptions::on_event, the
  // events counter) on behalf of a part outside the core: the notifier's dropped deliveries.
  void RecordEvent(int64_t now_ms, const std::string& kind, const std::string& job, const std::string& trial,
                   const std::string& message);
  // Unique among the cores this process made (1, 2, ...): a key for caches of what one core
  // answered, which another core at the same address must not be given.
  uint64_t instance() const { return instance_; }

 private:
  std::vector<Outgoing> TickInTransaction(int64_t now_ms);
  // Why `job` cannot be deleted now (Delete's FailedPrecondition), or Ok.
  Status Deletable(const TuningJob& job) const;
  struct Impl;
  std::unique_ptr<Impl> impl_;
  CoreOptions options_;
  uint64_t instance_ = 0;
};

}  // namespace hpo::coordinator
