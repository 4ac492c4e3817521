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
// An attempt, in order (each step on its own thread where it may take long, so heartbeats and
// other trials go on):
//   1. Lay out: <work_dir>/trials/<trial>/attempt-<N>/ is removed if a stale one exists and made
//      afresh; its `ml/` directory is the attempt's /opt/ml (worker/trial_layout.h) and
//      `trial.log` its output. <work_dir>/trials/<trial>/checkpoints/ is kept across attempts of
//      the trial and appears at checkpointConfig.localPath (default /opt/ml/checkpoints).
//      The empty directory trees are made ahead of time, `slots` of them, under
//      <work_dir>/spares/ while trials run; a trial's first attempt here takes one with a single
//      rename (a dozen mkdir()s cost about a millisecond on ext4), a later one is made in place.
//   2. Stage the channels (worker/data_channels.h): fileSystemDataSource, s3:// (S3Client),
//      file:// and local paths. Pipe-mode channels are fed through their FIFOs by
//      worker/pipe_channel.h from just before the program starts until it is reaped or stopped.
//   3. Run the program: a local program (an absolute path, a file:// URI or an `images` entry) as
//      a process; any other trainingImage as `<runtime> run ... <image> train` in the configured
//      container runtime (worker/container.h), with the same /opt/ml mounts, environment, slot
//      GPUs and network isolation, stopped with the runtime's stop and the grace period. With
//      pulls off (--container-pull never) an image not present here fails the trial before it
//      starts (ClientError naming the image). Before its first container trial the agent removes
//      containers an earlier process of this worker left behind (label hpo.worker=<id>).
//      A local program: when the worker runs as root (and `namespaces` is on), the program runs
//      in a private mount namespace with the attempt's root bind-mounted on /opt/ml (and the
//      checkpoint directory and FastFile channels mounted inside it), so programs that hard-code
//      /opt/ml work and parallel trials do not collide; SM_* variables then name /opt/ml paths.
//      The mount point /opt/ml is created on the host once (an empty directory); a
//      checkpointConfig.localPath outside /opt/ml gets its (empty) mount point created on the host
//      too, and is refused without a mount namespace.
//      Otherwise SM_* name the attempt's own directories, and a program that hard-codes /opt/ml
//      cannot find its files (a documented limitation: run the worker as root or use containers).
//      enableNetworkIsolation runs the program in a new network namespace with only loopback up;
//      a worker that cannot do that refuses the trial (ClientError), never ignores the flag.
//   4. On exit: model/ and output/data/ are packed and uploaded to <S3OutputPath>/<trial>/output/
//      (worker/artifacts.h; CompressionType NONE: their files, under output/model/ and
//      output/data/) by the program's own output thread as soon as it has reaped the program,
//      after a last pass of output/intermediate/ (uploaded to .../output/intermediate/ every
//      intermediate_sync_ms while the program runs, local deletes not mirrored); then
//      output/failure becomes the FailureReason of a failed attempt, and the last points, output
//      lines and the exit report leave together.
//   A multi-host GPU attempt runs hpo-nccl-preflight on every host (one rank per host, its first
//   GPU, NCCL bootstrap at algo-1's address) before its program starts: the bus bandwidth goes
//   into the attempt's log (algo-1's reaches the coordinator), a failure ends the attempt as an
//   InfraError naming the host. CPU-only gangs skip it with a log line.
//   s3:// objects go through the worker's channel cache (worker/channel_cache.h, <work_dir>/cache/,
//   opened when Run starts), and each staged channel's log line says how many objects and bytes
//   came from it and how many were downloaded.
//   While the program runs, ResourceConfig.VolumeSizeInGB is watched (worker/volume_watch.h):
//   an attempt whose directories grow past it is stopped and ends Failed with a ClientError.
//   Checkpoints (CheckpointConfig.S3Uri, worker/checkpoints.h): restored into the trial's
//   checkpoint directory before the program starts (on the staging thread), uploaded every
//   checkpoint_sync_ms while it runs (local deletes mirrored), and once more after it has ended,
//   also when it was stopped or interrupted, before the exit is reported.
// A staging error that is the job's fault (missing data, bad manifest, refused credentials) fails
// the trial as a ClientError; one that is not (endpoint unreachable, local disk) is an
// InfraError, retried by the coordinator.
//
// Assigned ahead (AssignTrial.after_*): an attempt that names a predecessor still running here
// is laid out and staged at once but its program starts only when the predecessor's program has
// ended (the loop is woken at the reaping, before the predecessor's upload), in its slot, with
// its GPUs; its max runtime counts from then. Stopped while it waits, it ends Stopped (or
// Interrupted, on a spot notice) without having run.
//
// Stopping: StopTrial, the max runtime, or the agent's shutdown send SIGTERM to the trial's
// process group, wait the grace period, then SIGKILL. On shutdown the agent waits for every
// attempt's own grace period (plus shutdown_extra_ms for output and uploads) before it returns.
//
// Threads: Run() owns the socket and all trial bookkeeping; trial output readers run on their own
// threads (worker/process.h) and hand lines over through a mutex-protected queue, and upload the
// artifacts when their program has ended; data staging and making directory trees ahead of time
// run on a small pool of threads that are kept for the next trial.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "common/status.h"
#include "worker/container.h"
#include "worker/gpu_detect.h"

namespace hpo::worker {

struct AgentOptions {
  std::string connect = "tcp://127.0.0.1:7700";  // the coordinator's ZeroMQ endpoint
  std::string worker_id;                         // unique per worker; default host-pid
  std::string host;                              // default: hostname
  uint32_t slots = 1;                            // trials run at once
  std::vector<GpuDevice> gpus;                   // GPUs this worker may use (worker/gpu_detect.h)
  std::string instance_type;                     // advertised type (e.g. ml.g5.xlarge), may be empty
  std::string instance_group;
  std::map<std::string, std::string> labels;
  std::string work_dir = "/tmp/hpo-worker";      // trial roots live under <work_dir>/trials/;
                                                 // a relative one is made absolute at construction
  std::map<std::string, std::string> images;     // trainingImage name -> local command
  // The container runtime for a trainingImage that is neither a local program nor in `images`
  // (worker/container.h); disabled = such images are refused with a reason.
  ContainerConfig container;
  std::string s3_endpoint;  // S3 endpoint URL for s3:// URIs; empty = from the environment
                            // (common/s3_client.h S3Config::FromEnvironment)
  // CurveZMQ (all Z85, 40 characters): with curve_server_key set, the connection is encrypted and
  // authenticated with this worker's key pair, which the coordinator's allow-list must hold; a
  // refused handshake is logged (worker/handshake_monitor.h) and retried. "" = plain ZeroMQ.
  std::string curve_server_key;  // the coordinator's public key
  std::string curve_public_key, curve_secret_key;  // this worker's key pair
  bool namespaces = true;   // as root: /opt/ml via a private mount namespace (see above)
  int64_t shutdown_extra_ms = 30000;  // on shutdown, beyond the longest grace period
  // Spot / preemptible capacity (told to the coordinator, which prefers on-demand workers for
  // interrupted trials). An interruption notice (Interrupt(), or notice_file appearing) drains
  // the worker: the coordinator is told, every running trial gets SIGTERM and its grace period
  // and ends Interrupted (re-queued by the coordinator without spending a retry).
  bool spot = false;
  // When the signal that stops this worker's process arrived, on CLOCK_REALTIME in ns (0: not
  // yet; null: not watched), set by the process's signal handler before the agent hears of the
  // stop (Run's `stop`, polled). A batch system (scancel, the end of a Slurm allocation) or a
  // service manager signals every process of the job at once: a training program that ends after
  // it, even exiting 0 (SageMaker's contract: save on SIGTERM, exit), was cut short by it and
  // ends Interrupted, to run again elsewhere; and no queued training job starts after it.
  const std::atomic<int64_t>* stop_signal_unix_ns = nullptr;
  std::string notice_file;  // "" = none; watched every tick
  std::string notice_url;   // "" = none; polled every notice_poll_ms (worker/spot_notice.h)
  int64_t notice_poll_ms = 5000;
  int64_t heartbeat_ms = 1000;      // until the coordinator says otherwise at registration
  int64_t coordinator_lease_ms = 10000;  // silence after which the agent reconnects
  int64_t resend_ms = 2000;         // unacked messages are re-sent after this long
  int64_t flush_ms = 50;            // metric batches are sent at least this often
  int64_t checkpoint_sync_ms = 1000;  // new checkpoint files reach CheckpointConfig.S3Uri this often
  // Checkpoint files still being written wait (worker/checkpoints.h): while the program runs, one
  // open for writing (or, where the kernel cannot tell, changed less than this long ago or since
  // the last pass) is left, with the deletes, for a later pass; after a signal ended the program,
  // one it changed in its last this-many ms is not sent at all, so the destination keeps its last
  // whole copy. 0 = send files as they are (SageMaker's way).
  int64_t checkpoint_settle_ms = 200;
  // /opt/ml/output/intermediate reaches <S3OutputPath>/<job>/output/intermediate/ this often while
  // the program runs (new and changed files; a pass lists the directory), and once more after it
  // ended; 0 = only then.
  int64_t intermediate_sync_ms = 5000;
  // Channel cache (worker/channel_cache.h) under <work_dir>/cache/: an s3:// object version
  // staged before on this worker is not downloaded again. -1 = DefaultChannelCacheBytes (10% of
  // the work directory's filesystem, at most 20 GiB); 0 = off.
  int64_t channel_cache_mb = -1;
  // ResourceConfig.VolumeSizeInGB (worker/volume_watch.h): a running attempt's directories are
  // measured this often; above the volume it is stopped and fails (ClientError). 0 = not watched.
  int64_t volume_check_ms = 5000;
  uint64_t volume_unit_bytes = 1ull << 30;  // bytes per VolumeSizeInGB unit; tests shrink it
  // When an attempt has ended (its artifacts uploaded, its report made), its /opt/ml tree goes:
  // the copies of its input data, its model and output (which are at S3OutputPath), whatever it
  // wrote there; its trial.log stays (WORK_DIR/trials/<job>/attempt-N/trial.log), and so does
  // the training job's checkpoint directory (WORK_DIR/trials/<job>/checkpoints), which another
  // attempt here may resume from and which may hold the only copy when an upload to
  // CheckpointConfig.S3Uri failed; it goes once the training job has ended for good
  // (release_check_ms). A worker starting on a work directory removes the trees its
  // predecessor left (killed, it could not). True keeps everything, for looking at what a
  // program left behind.
  bool keep_trial_files = false;
  // How often the worker asks the coordinator which training jobs whose checkpoint directory it
  // keeps have ended for good (Completed, Failed, Stopped; no attempt to come), and removes
  // those directories, unless the last upload of one to CheckpointConfig.S3Uri failed (then it
  // may be the only copy and stays). 0: never asked, they stay (so does everything with
  // keep_trial_files).
  int64_t release_check_ms = 60000;
  // How long a training job's directory under WORK_DIR/trials/ (its attempts' trial.log files)
  // stays once nothing in it has changed: checked at start and hourly; one that holds a
  // checkpoint directory, or an attempt that runs here, stays. The coordinator keeps the logs
  // too (hpo logs). 0: forever (so does everything with keep_trial_files).
  int64_t trial_log_retention_ms = 30LL * 24 * 3600 * 1000;
  // The NCCL check before a multi-host GPU training job (kernels/nccl_preflight.cc); "" = the
  // hpo-nccl-preflight next to this executable. Missing: the check is skipped, with a log line.
  std::string nccl_preflight;
  // An hpo binary that runs `worker-guard` (worker/orphans.h OrphanGuard; the CLI gives its own,
  // /proc/self/exe): if this process is killed (kill -9, the OOM killer), the guard kills what its
  // training jobs left running. "" = none (then only the next worker on work_dir does).
  std::string orphan_guard;
  // The guard also ends the training jobs of a worker process that stopped running (SIGSTOP, a
  // hang) past its coordinator's lease (worker/orphans.h OrphanGuard, watch_stall): `hpo worker`,
  // whose coordinator runs them elsewhere meanwhile; not `hpo run`, whose coordinator stops too.
  bool guard_watches_stall = false;
  int64_t nccl_preflight_timeout_s = 120;
  size_t max_batch_points = 500;
  std::function<int64_t()> now_ms;                // clock; default MonotonicWallMs (common/clock.h)
  std::function<void(const std::string&)> log;   // default stderr
};

class WorkerAgent {
 public:
  explicit WorkerAgent(AgentOptions options);
  ~WorkerAgent();
  WorkerAgent(const WorkerAgent&) = delete;
  WorkerAgent& operator=(const WorkerAgent&) = delete;

  // Runs until `stop` becomes true (then stops its trials with their grace period) or the
  // coordinator refuses the registration (returns the reason as FailedPrecondition). Holds an
  // exclusive lock on work_dir while it runs: a second agent on the same directory (whose outbox
  // journal and trial directories would collide) gets InvalidArgument naming the holder, as do
  // an endpoint ZeroMQ cannot parse and options the coordinator would refuse in the registration
  // (worker_id, host, instance_type, instance_group, labels, slots; the message names the option).
  Status Run(const std::atomic<bool>& stop);

  // Quit now (as if `stop` were set): the trials running, or in their grace period, get SIGKILL
  // (a container runtime's stop with no grace) instead of waiting it out. A person's second
  // Ctrl-C. Thread-safe (not from a signal handler); Run still reports what ended.
  void Abort();

  // Attempts this worker holds now: running, staging, or assigned ahead and waiting for their
  // slot (for tests and status lines). Thread-safe.
  size_t running() const;

  // The capacity is being reclaimed (a spot notice): see AgentOptions::spot. Thread-safe and
  // async-signal-unsafe (call it from a thread, not a handler); repeated calls do nothing more.
  // `planned`: the worker itself is going, not its capacity (InterruptionNotice.planned); the
  // attempts are handled alike.
  void Interrupt(const std::string& reason, bool planned = false);

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

// WORK_DIR/worker-id: the id of the worker that last ran on a work directory. The agent writes
// it once it holds the directory's lock; `hpo worker` without --id starts as it.
inline constexpr const char* kWorkerIdFile = "worker-id";
// The id kept there, or "" when there is none or it is not a worker id (letters, digits and
// ._:@-, at most 128).
std::string KeptWorkerId(const std::string& work_dir);

// The number of CPUs this process may run on (its affinity: a Slurm step, taskset, a cpuset)
// and the MiB of memory of this machine.
uint32_t DetectCpus();
uint64_t DetectMemoryMb();
// The network interface that carries `host` (an address, or a name resolved here): the one
// holding that address; for a host that is none of this machine's, the default route's; "eth0"
// when neither can be found. What training jobs are told as network_interface_name.
std::string InterfaceOf(const std::string& host);

}  // namespace hpo::worker
