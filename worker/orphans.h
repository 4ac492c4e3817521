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
// and processes of a trial that runs in a container (the runtime owns those).
//
// Thread safety: all functions are thread-safe (one mutex for the process).
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <functional>
#include <set>
#include <string>

#include "common/status.h"

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

// Every local training program gets kOwnerVariable=<its worker's work directory> in its
// environment, and its descendants inherit it. A worker killed without warning (kill -9, the OOM
// killer) takes only its direct children along (PR_SET_PDEATHSIG): a wrapper's children
// (torchrun's ranks, a DataLoader's workers, a `train` script's python) lived on under init,
// holding GPU memory and writing the checkpoints the retry resumes from. The next worker on that
// work directory (which holds its lock, so nothing else runs for it) calls this before it
// connects: every process whose environment names `work_dir` is killed with its process group.
// Returns how many; processes of other users whose environment it cannot read are not seen.
inline constexpr const char* kOwnerVariable = "HPO_WORKER_DIR";
// Kills (SIGKILL, with their process groups) the processes attempt `attempt` of `trial` left
// running on `host` (its SM_CURRENT_HOST) once its program ended: this process's children (a
// daemon, a background job, reparented to the subreaper) whose environment names that training
// job, attempt and host, and that no agent tracks as a program (in hpo run the other hosts of a
// multi-host attempt are this process's children too). Called before the attempt's trees are
// uploaded, as a container's end takes everything with it before SageMaker uploads: a process
// left writing there could swap files under the upload. Returns how many.
int KillAttemptLeftovers(const std::string& trial, uint32_t attempt, const std::string& host,
                         const std::function<void(const std::string&)>& log);
// The attempt number every local training program (and what it starts) gets in its environment.
inline constexpr const char* kAttemptVariable = "HPO_ATTEMPT";
inline std::string AttemptKey(const std::string& trial, uint32_t attempt) {
  return trial + "#" + std::to_string(attempt);
}
int KillLeftoversOf(const std::string& work_dir, const std::function<void(const std::string&)>& log);

}  // namespace hpo::worker
