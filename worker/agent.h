// worker/agent.h: the worker side of the coordinator<->worker protocol.
//
// A WorkerAgent connects a DEALER socket (routing id = worker id) to the coordinator, registers
// its resources, heartbeats, and runs the trials it is assigned: each attempt gets its own root
// directory laid out like SageMaker's /opt/ml (worker/trial_layout.h), its program runs as a
// process group (worker/process.h), every stdout/stderr line is matched against the job's metric
// regexes (worker/metric_parser.h) and the points are streamed back in batches.
//
// Delivery: TrialStarted, MetricPoints and TrialExited are kept until the coordinator acks them
// and re-sent after a timeout and after every reconnect, so they arrive at least once; the
// coordinator drops duplicates by (trial, attempt, seq). A worker that hears nothing from its
// coordinator for the lease keeps its trials running, reconnects with a fresh socket and
// registers again listing what it still runs.
//
// Stopping: StopTrial, the max runtime, or the agent's shutdown send SIGTERM to the trial's
// process group, wait the grace period, then SIGKILL.
//
// Threads: Run() owns the socket and all trial bookkeeping; trial output readers run on their own
// threads and hand lines over through a mutex-protected queue.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "common/status.h"

namespace hpo::worker {

struct AgentOptions {
  std::string connect = "tcp://127.0.0.1:7700";  // the coordinator's ZeroMQ endpoint
  std::string worker_id;                         // unique per worker; default host-pid
  std::string host;                              // default: hostname
  uint32_t slots = 1;                            // trials run at once
  std::vector<int> gpus;                         // GPU indices this worker may use
  std::string instance_type;                     // advertised type (e.g. ml.g5.xlarge), may be empty
  std::string instance_group;
  std::map<std::string, std::string> labels;
  std::string work_dir = "/tmp/hpo-worker";      // trial roots live under <work_dir>/trials/
  std::map<std::string, std::string> images;     // trainingImage name -> local command
  int64_t heartbeat_ms = 1000;      // until the coordinator says otherwise at registration
  int64_t coordinator_lease_ms = 10000;  // silence after which the agent reconnects
  int64_t resend_ms = 2000;         // unacked messages are re-sent after this long
  int64_t flush_ms = 50;            // metric batches are sent at least this often
  size_t max_batch_points = 500;
  std::function<int64_t()> now_ms;                // clock; default system clock
  std::function<void(const std::string&)> log;   // default stderr
};

class WorkerAgent {
 public:
  explicit WorkerAgent(AgentOptions options);
  ~WorkerAgent();
  WorkerAgent(const WorkerAgent&) = delete;
  WorkerAgent& operator=(const WorkerAgent&) = delete;

  // Runs until `stop` becomes true (then stops its trials with their grace period) or the
  // coordinator refuses the registration (returns the reason as FailedPrecondition).
  Status Run(const std::atomic<bool>& stop);

  // Trials running now (for tests and status lines). Thread-safe.
  size_t running() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

// The number of CPUs and MiB of memory of this machine.
uint32_t DetectCpus();
uint64_t DetectMemoryMb();

}  // namespace hpo::worker
