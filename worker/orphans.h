// worker/orphans.h: processes a training job leaves behind.
//
// Stopping a training job kills its process group (worker/process.h). A program that daemonizes
// (fork, setsid, fork) leaves that group and would outlive the training job, holding a GPU, a
// port or the trial's mount namespace; on SageMaker the container's end takes everything with it.
// So the worker makes itself a child subreaper (prctl PR_SET_CHILD_SUBREAPER): such a process,
// once its parent is gone, becomes the worker's child instead of init's. OrphanSweep then finds
// those children by the TRAINING_JOB_NAME in their environment (every training program gets it)
// and kills (SIGKILL, its process group too) those whose training job no longer runs on this
// worker, and reaps them and any other child of ours that nobody waits for.
//
// What it does not catch: a process that also cleared its environment (env -i) and daemonized,
// unless the program ran in a private mount namespace (as root; then KillAttemptLeftovers finds
// it there at the attempt's end, and KillLeftoversOf after a killed worker), and processes of a
// trial that runs in a container (the runtime owns those).
//
// Thread safety: all functions are thread-safe (one mutex for the process).
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <chrono>
#include <functional>
#include <optional>
#include <memory>
#include <set>
#include <string>

#include "common/status.h"
#include "worker/container.h"

namespace hpo::worker {

// prctl(PR_SET_CHILD_SUBREAPER) for this process (all its threads).
Status BecomeSubreaper();

// Several agents may share one process (hpo run's local workers), and so its children: each
// publishes what it runs, and a sweep by any of them spares what any of them runs.
// `owner` identifies the agent; `tracked`: pids whose exit someone waits for (its training
// programs); `running`: the attempts on it now, as "TRAINING_JOB#ATTEMPT" (AttemptKey). A
// process started with kAttemptVariable is spared only while its own attempt runs: a daemon of a
// failed attempt survived the retry that came to the same worker at once, holding its GPU memory
// and ports. One without it is spared while any attempt of its training job runs.
void PublishTrainingJobs(const void* owner, std::set<pid_t> tracked, std::set<std::string> running);
void ForgetTrainingJobs(const void* owner);

// One pass over this process's children, at most once per `interval_ms` in the whole process
// (else it returns 0 at once): a child with a TRAINING_JOB_NAME that no agent runs (and that is
// not the worker's own, inherited value) is killed with its process group; a child that has ended
// and that no one tracks is reaped when a pass finds it a second time (a tool's own waitpid gets
// the first chance). Returns how many processes it killed.
int SweepOrphans(int64_t now_ms, int64_t interval_ms, const std::function<void(const std::string&)>& log);

// The attempt number every local training program (and what it starts) gets in its environment.
inline constexpr const char* kAttemptVariable = "HPO_ATTEMPT";
inline std::string AttemptKey(const std::string& trial, uint32_t attempt) {
  return trial + "#" + std::to_string(attempt);
}

// Kills (SIGKILL, with their process groups) the processes attempt `attempt` of `trial` left
// running on `host` (its SM_CURRENT_HOST) once its program ended: this process's children (a
// daemon, a background job, reparented to the subreaper) whose environment names that training
// job, attempt and host, and that no agent tracks as a program (in hpo run the other hosts of a
// multi-host attempt are this process's children too). Called before the attempt's trees are
// uploaded, as a container's end takes everything with it before SageMaker uploads: a process
// left writing there could swap files under the upload. With `mount_ns` (the program's private
// mount namespace, ExitInfo::mount_ns; 0: none), also every process still in that namespace,
// whatever its parent or environment: one that cleared its environment (env -i) and daemonized
// is found that way. Returns how many.
int KillAttemptLeftovers(const std::string& trial, uint32_t attempt, const std::string& host,
                         const std::function<void(const std::string&)>& log, std::uint64_t mount_ns = 0);

// Every local training program gets kOwnerVariable=<its worker's work directory> in its
// environment, and its descendants inherit it. A worker killed without warning (kill -9, the OOM
// killer) takes only its direct children along (PR_SET_PDEATHSIG): a wrapper's children
// (torchrun's ranks, a DataLoader's workers, a `train` script's python) lived on under init,
// holding GPU memory and writing the checkpoints the retry resumes from. The next worker on that
// work directory (which holds its lock, so nothing else runs for it) calls this before it
// connects: every process whose environment names `work_dir` is killed with its process group.
// Processes that also cleared their environment are found by the mount namespace their program
// ran in, where its start marked it (PlanNamespaceMark); the marks are removed once swept. A
// process whose environment names another work directory is never this one's, in whatever
// namespace it runs (namespace numbers and inodes are given out again).
// Returns how many; processes of other users whose environment it cannot read are not seen.
inline constexpr const char* kOwnerVariable = "HPO_WORKER_DIR";
int KillLeftoversOf(const std::string& work_dir, const std::function<void(const std::string&)>& log);

// While a program that runs in a private mount namespace (as root) lives, a mark stays in its
// worker's work directory, `namespaces/<inode>`: the namespace, and the directory `root` that the
// program sees at `visible` (its /opt/ml). KillLeftoversOf (the guard's, or the next worker's on
// the directory) kills every process in a marked namespace that still sees that directory there,
// so one that ran env -i and daemonized does not outlive a worker killed without warning; the
// directory check keeps a namespace number the kernel gave out again after the program's end
// from naming anyone else's processes. UnmarkAttemptNamespace when the attempt has ended (after
// KillAttemptLeftovers).
//
// The program's own start writes its mark: PlanNamespaceMark gives the directory (made here) and
// the text for Isolation::namespace_record_dir / namespace_record (worker/process.h), which the
// child writes before it runs the program, so a worker killed at any moment after the start
// leaves the mark. Errors: IoError when `root` cannot be read or the directory cannot be made
// (the caller goes on: only the env -i case is then left to the environment's match).
struct NamespaceMarkPlan {
  std::string dir;   // <work_dir>/namespaces
  std::string text;  // "<device> <inode> <visible>\n" of `root`
};
Result<NamespaceMarkPlan> PlanNamespaceMark(const std::string& work_dir, const std::string& root,
                                           const std::string& visible);
void UnmarkAttemptNamespace(const std::string& work_dir, std::uint64_t mount_ns);

// The guard of a worker's work directory: KillLeftoversOf at the moment the worker process ends,
// however it ends, rather than at the next start on that directory, which may never come (`hpo
// run` makes a new directory each time; a cluster's node may not get its worker back). A process
// of its own: `binary` run as `BINARY worker-guard --work-dir DIR` (kOrphanGuardCommand), in a
// process group of its own (a Ctrl-C in the terminal does not reach it), its standard input the
// read end of a pipe whose write end only this process holds (close-on-exec: no program inherits
// it). When this process ends, or the guard object goes, the guard reads end-of-file, waits for
// the work directory's lock (held by the worker until its end), and kills what the directory's
// training jobs left running. A lock another worker took meanwhile is that worker's: it swept at
// its own start, and the guard leaves its processes alone.
// With a container runtime (podman or docker), the guard also removes the containers labelled
// with the worker's ContainerOwner(): a killed worker's containers run on under the runtime's
// monitor, out of reach of any signal to the worker's processes, and `hpo run` never starts a
// worker on that directory again to sweep them.
inline constexpr const char* kOrphanGuardCommand = "worker-guard";
// How the guard names itself in the work directory's lock: a worker that finds it there waits for
// the guard's sweep of a killed predecessor (a service restarted at once) instead of failing.
inline constexpr const char* kOrphanGuardLockHolder = "hpo worker-guard";

// With `watch_stall` (a worker whose coordinator is elsewhere: `hpo worker`), the guard also
// watches that the worker process still runs: the worker says so (Alive) each pass of its loop,
// with the coordinator's lease. A worker silent for longer than the lease and half again (at
// least 2 s more), counted only while the guard itself ran (a machine asleep or paused as a whole
// stops both, and its coordinator's clock with them), has been counted lost by its coordinator,
// which runs its training jobs elsewhere: the guard kills what they run here (as at the worker's
// end) and writes kStallMarkFile in the work directory (the time, Unix ms), so that a worker that
// comes back reports them ended by the stall, not by their programs. Without it, a worker stopped
// (SIGSTOP, a hung agent) left its trainers running beside their re-runs elsewhere until it
// resumed. Not for `hpo run`, whose coordinator stops with its workers (Ctrl-Z).
inline constexpr const char* kStallMarkFile = "stalled";

class OrphanGuard {
 public:
  // Errors: IoError when the pipe or the process cannot be made (the caller runs without one).
  // `containers` enabled: the guard also removes the containers of `container_owner`.
  static Result<std::unique_ptr<OrphanGuard>> Start(const std::string& binary, const std::string& work_dir,
                                                    const ContainerConfig& containers = {},
                                                    const std::string& container_owner = "",
                                                    bool watch_stall = false);
  // The worker runs, under a lease of `lease_ms` (0: none yet): at most every 500 ms a byte down
  // the pipe, and the lease when it changes. Never blocks (a full pipe drops it).
  void Alive(int64_t lease_ms);
  // Closes the pipe (the guard sweeps and exits) and reaps the guard, waiting up to 5 s.
  ~OrphanGuard();
  OrphanGuard(const OrphanGuard&) = delete;
  OrphanGuard& operator=(const OrphanGuard&) = delete;
  pid_t pid() const { return pid_; }

 private:
  OrphanGuard(pid_t pid, int write_fd) : pid_(pid), write_fd_(write_fd) {}
  pid_t pid_;
  int write_fd_;
  int64_t said_lease_ms_ = 0;
  std::chrono::steady_clock::time_point said_alive_{};
};

// The guard's side (`hpo worker-guard --work-dir DIR [--container-runtime R --container-binary B
// --container-owner O]`): ignores SIGINT, SIGTERM, SIGHUP, SIGQUIT and SIGPIPE, closes every
// descriptor but 0-2, blocks until its standard input reads end-of-file, then takes DIR's lock
// (trying for up to `lock_wait_ms`), calls KillLeftoversOf(DIR) and, with `containers` enabled,
// RemoveStaleContainers(containers, container_owner). Returns the process's exit code: 0 (also
// when another worker holds the lock), 1 when the lock could not be taken for another reason or
// the containers could not be listed or removed (the worker's next start sweeps them).
// With `watch_stall`, it also watches the worker as OrphanGuard says (Alive) while it waits.
int RunOrphanGuard(const std::string& work_dir, int64_t lock_wait_ms,
                   const std::function<void(const std::string&)>& log, const ContainerConfig& containers = {},
                   const std::string& container_owner = "", bool watch_stall = false);
// The time (Unix ms) the guard last killed this work directory's training jobs for a stall
// (kStallMarkFile), or nullopt.
std::optional<int64_t> StallKillTime(const std::string& work_dir);

}  // namespace hpo::worker
