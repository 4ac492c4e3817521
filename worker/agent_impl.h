// worker/agent_impl.h: the worker agent's private state (WorkerAgent::Impl), shared by the files
// that implement it. Not part of the worker's interface: only worker/agent*.cc include it;
// everything else talks to worker/agent.h.
//
// The implementation is split by topic, each file defining its part of Impl:
//   agent.cc          the public WorkerAgent methods, the socket (connect, reliable sends, the
//                     outbox journal, registration), coordinator messages and the main loop
//   agent_assign.cc   taking an assignment: the trial's tree, staging, hosts file, warm data
//   agent_start.cc    starting a trial's program: NCCL preflight, deadlines, checkpoints, uploads
//   agent_poll.cc     running trials: spot interruptions, stops, log pipes, metrics, the poll
//
// Threads: the loop thread owns everything but what is marked otherwise (runs_mu guards the shape
// of `runs` for running(); background tasks report through futures the loop polls).
#pragma once

#include <arpa/inet.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <sys/eventfd.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>
#include <algorithm>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <deque>
#include <filesystem>
#include <fstream>
#include <functional>
#include <future>
#include <iterator>
#include <limits>
#include <mutex>
#include <optional>
#include <random>
#include <set>
#include <sstream>
#include <system_error>
#include <thread>
#include <vector>
#include <zmq.hpp>
#include <zmq_addon.hpp>

#include "common/clock.h"
#include "proto/codec.h"
#include "proto/messages.h"
#include "worker/agent.h"
#include "worker/artifacts.h"
#include "worker/channel_cache.h"
#include "worker/checkpoints.h"
#include "worker/data_channels.h"
#include "worker/handshake_monitor.h"
#include "worker/log_window.h"
#include "worker/metric_parser.h"
#include "worker/outbox_journal.h"
#include "worker/pending_exit.h"
#include "worker/pipe_channel.h"
#include "worker/process.h"
#include "worker/spare_dirs.h"
#include "worker/spot_notice.h"
#include "worker/task_pool.h"
#include "worker/trial_layout.h"
#include "worker/volume_watch.h"

namespace hpo::worker {

// How long the report of a program killed by a SIGTERM that hpo did not send waits for the
// worker's own stop (PollTrials): a batch system's signal reaches both at about the same time.
inline constexpr int64_t kOutsideTermWaitMs = 2000;

namespace fs = std::filesystem;

namespace agent_detail {
// Killed by a SIGTERM that hpo did not send (signal 15, or exit 143 from a shell that got it):
// most likely whatever stops the worker too (PollTrials).
inline bool OutsideTerm(const ExitInfo& e) {
  return !e.stopped_by_us && (e.signal == SIGTERM || (e.signal == 0 && e.exit_code == 128 + SIGTERM));
}
// Whether an attempt of a worker told of an interruption (`interrupted`) ended Interrupted, to run
// again elsewhere: the interruption stopped it, or a SIGTERM from outside did. One that ended by
// itself meanwhile (exit 0 as the notice came) completed: its report says Completed, and its
// model is uploaded. (The upload once judged by the notice alone and left a Completed training
// job without its model.)
// `signalled`: the signal that stops the worker's process had arrived when the program's end was
// noticed (AgentOptions::stop_signal_unix_ns): it reached the program too, which ended by it
// however it exited (a SageMaker trainer saves on SIGTERM and exits 0: it read as Completed, with
// no objective, and never ran again).
inline bool EndedInterrupted(const ExitInfo& e, bool interrupted, bool signalled = false) {
  return (interrupted && (e.stopped_by_us || OutsideTerm(e))) || (signalled && !e.stopped_by_us);
}
// Whether a signal ended the program (in a container: the runtime's 128+N), which may have cut
// off a file it was writing (worker/checkpoints.h SyncPass::kKilled).
inline bool EndedBySignal(const ExitInfo& e, bool container) {
  return e.signal != 0 || (container && e.exit_code > 128 && e.exit_code < 128 + 65);
}

// The kernel's count of processes its out-of-memory killer has ended since boot (/proc/vmstat
// oom_kill: a container's memory limit's kills too); nullopt where it cannot be read.
std::optional<uint64_t> OomKills();
// Killed by SIGKILL that hpo did not send (signal 9, or a container runtime's 137).
inline bool OutsideKill(const ExitInfo& e, bool container) {
  return !e.stopped_by_us && (e.signal == SIGKILL || (container && e.signal == 0 && e.exit_code == 128 + SIGKILL));
}

// The worker's clock (common/clock.h): wall time that a stepped system clock does not move.
inline int64_t SystemNowMs() { return MonotonicWallMs(); }

inline std::string Hostname() {
  char buf[256] = {0};
  if (::gethostname(buf, sizeof buf - 1) != 0) return "localhost";
  return buf;
}

using Key = std::pair<std::string, uint32_t>;

// Whether this process may create mount and network namespaces: a forked child tries, once.
inline bool NamespacesWork() {
  static const bool works = [] {
    if (::geteuid() != 0) return false;
    pid_t pid = ::fork();
    if (pid < 0) return false;
    if (pid == 0) ::_exit(::unshare(CLONE_NEWNS | CLONE_NEWNET) == 0 ? 0 : 1);
    int st = 0;
    while (::waitpid(pid, &st, 0) < 0 && errno == EINTR) {
    }
    return WIFEXITED(st) && WEXITSTATUS(st) == 0;
  }();
  return works;
}

// The single TrainingJobDefinition the coordinator sent as JSON; nullopt when absent or
// unreadable (the AssignTrial fields then stand alone).
inline std::optional<proto::TrainingJobDefinition> DefinitionOf(const proto::wire::AssignTrial& a) {
  if (a.spec_json.empty()) return std::nullopt;
  auto tree = proto::ParseText("{\"TrainingJobDefinition\":" + a.spec_json + "}");
  if (!tree.ok()) return std::nullopt;
  auto spec = proto::DecodeCreateRequest(*tree);
  if (!spec.ok() || !spec->training_job_definition) return std::nullopt;
  return spec->training_job_definition;
}

// What S3() says when this worker has no S3 access (credentials, endpoint): its lack, not the
// training job's fault.
inline constexpr const char* kNoS3 = "this worker cannot use S3";
// Under an attempt's directory: the model and output of a completed program whose upload failed
// (model/, output/), kept in place of the /opt/ml tree that goes, until removed by hand.
inline constexpr const char* kNotUploaded = "not-uploaded";
// How PullImage's failures begin (worker/container.h): one that is not the image's own fault (a
// registry this worker cannot reach) is this worker's lack too.
inline constexpr const char* kCannotPull = "cannot pull trainingImage ";

// A data-staging or upload error: the job's fault (ClientError, fails the trial) or the
// infrastructure's (InfraError, retried).
inline bool IsClientError(const Status& s) {
  return s.code() == StatusCode::kInvalidArgument || s.code() == StatusCode::kNotFound ||
         s.code() == StatusCode::kFailedPrecondition;
}

// A message waiting for the coordinator's Ack.
struct Pending {
  proto::wire::MsgType type;
  Key key;
  uint64_t seq = 0;
  std::vector<std::string> frames;
  int64_t sent_ms = 0;
};

// Appended to a checkpoint directory's name (WORK_DIR/trials/<job>/checkpoints[-algo-N]) for a
// file beside it, written when its last upload to CheckpointConfig.S3Uri failed and removed when
// one succeeds: the directory may hold the only copy, and ReleaseTrials does not remove it.
inline constexpr const char* kUnsyncedMarker = ".unsynced";
// The marker's text: "attempt <N>\n", a line "held <path>" for each file that pass held back as
// cut off mid-write (worker/checkpoints.h SyncPass::kKilled: torn here, whole at the destination),
// then "<why>\n"; N the attempt whose last upload failed. The
// directory is newer than the destination only for the next attempt (N + 1): any later one
// means an attempt was placed elsewhere in between and may have uploaded, from the destination's
// older copy, checkpoints that now supersede these (the local copy resumed, and overwrote them
// with older steps). A marker without the line (older hpo) counts as the previous attempt's.
inline void WriteUnsyncedMarker(const std::string& path, uint32_t attempt, const std::string& why,
                                const std::vector<std::string>& held = {}) {
  std::ofstream out(path);
  out << "attempt " << attempt << "\n";
  for (const std::string& rel : held) {
    if (rel.find('\n') == std::string::npos) out << "held " << rel << "\n";
  }
  out << why << "\n";
}
inline std::vector<std::string> UnsyncedMarkerHeld(const std::string& path) {
  std::ifstream in(path);
  std::vector<std::string> held;
  std::string line;
  std::getline(in, line);  // attempt N
  while (std::getline(in, line) && line.rfind("held ", 0) == 0) held.push_back(line.substr(5));
  return held;
}
inline std::optional<uint32_t> UnsyncedMarkerAttempt(const std::string& path) {
  std::ifstream in(path);
  std::string word;
  uint64_t n = 0;
  if (!(in >> word >> n) || word != "attempt" || n > UINT32_MAX) return std::nullopt;
  return static_cast<uint32_t>(n);
}
// A stopped multi-host attempt's algo-1 waits this long past the stop's grace period for the
// other hosts' files (their upload starts once their program has ended), unless the coordinator
// says sooner that they have all ended (GangPeersEnded).
inline constexpr int64_t kHandOverWaitMs = 5 * 60 * 1000;

// Output lines in flight: an attempt has at most this many LogLines batches unacknowledged; its
// further lines wait in its LogWindow, which holds at most the newest kLogTailLines past the
// head, and at most kLogTailBytes of them. A program printing 300 MB as fast as it could took
// `hpo run` to 970 MB resident with every line queued for the coordinator.
inline constexpr size_t kLogBatchesInFlight = 4;
inline constexpr size_t kLogTailBytes = size_t{16} << 20;
}  // namespace agent_detail

using agent_detail::DefinitionOf;
using agent_detail::Hostname;
using agent_detail::IsClientError;
using agent_detail::Key;
using agent_detail::NamespacesWork;
using agent_detail::Pending;
using agent_detail::SystemNowMs;

struct WorkerAgent::Impl {
  AgentOptions opt;
  zmq::context_t ctx{1};
  std::unique_ptr<zmq::socket_t> sock;
  std::unique_ptr<HandshakeMonitor> handshake_monitor;  // after sock: destroyed before it
  // No S3 configuration at the start (Register.no_s3; credentials given later count once the
  // worker is started again).
  bool no_s3 = false;
  bool registered = false;
  std::atomic<int64_t> last_heard_ms{0};  // any message (reconnects after a silence of a lease)
  bool ever_heard = false;                // a coordinator has answered this process once
  bool ever_registered = false;           // ... and accepted it once
  std::string not_authorized;             // the coordinator's last NotAuthorized, until accepted again
  // Fencing. A worker that was paused (SIGSTOP, a VM stall) or cut off longer than the lease may
  // hold attempts the coordinator has since given to another worker; their uploads would then
  // overwrite the new attempt's artifacts at the same output path, and queued attempts would
  // start for a job that has moved on. The lease is the coordinator's: it counts a worker lost
  // once it has heard nothing from it for a lease. A heartbeat it acknowledged was heard no
  // earlier than it was sent, so this worker still holds its attempts until that send time plus
  // the lease; it acts (uploads, queued starts, checkpoint passes) only within half of it, from
  // `lease_anchor_ms`, the send time of the newest acknowledged heartbeat. The coordinator sends
  // a heartbeat's stops for attempts it no longer counts here (revoked) before its ack, so when
  // the anchor moves, they are applied already. Judged by when anything was last heard instead,
  // an ack the loop read just after a pause (or one a slow link delivered late) made a lost
  // worker's lease look fresh, and it uploaded over the re-run's model.
  // A RegisterAck moves nothing (it may be an old copy's): a heartbeat goes out at once.
  static constexpr int64_t kNoLease = std::numeric_limits<int64_t>::min() / 2;
  std::atomic<int64_t> lease_anchor_ms{kNoLease};
  // The coordinator's lease as LeaseFresh reads it from any thread: opt.coordinator_lease_ms is
  // the loop's own copy, which a RegisterAck changes (both are set together).
  std::atomic<int64_t> lease_ms{0};
  std::deque<std::pair<uint64_t, int64_t>> heartbeats_sent;  // seq and send time, not yet acknowledged
  // At the moment of acting (any thread). During shutdown (loop_ended) no heartbeat is sent any
  // more: what the lease was when the loop ended holds.
  bool LeaseFresh() const {
    if (loop_ended.load()) return lease_at_end.load();
    return Now() - lease_anchor_ms.load() <= lease_ms.load() / 2;
  }
  // Waits until LeaseFresh(); Unavailable when the attempt of `revoked` was revoked meanwhile,
  // or the worker is stopping (any thread but the loop's, which reads the acks it waits for).
  Status AwaitLease(const std::atomic<bool>& revoked) const;
  std::atomic<bool> loop_ended{false};
  std::atomic<bool> lease_at_end{false};
  int64_t last_loop_ms = 0;
  void SendHeartbeat();
  // During shutdown: reads what arrived and handles only acknowledgements.
  void ReadAcksWhileShuttingDown();
  int64_t last_heartbeat_ms = 0;
  int64_t register_sent_ms = 0;
  // Until a RegisterAck arrives, Register is re-sent after this long, doubling from 20 ms up to
  // 1 s: with ZMQ_IMMEDIATE the first copy is dropped while the TCP connection is being set up.
  int64_t register_backoff_ms = 20;
  // HandshakeMonitor::successes() when Register was last sent: a new connection up since then
  // (the coordinator back after a pause or a restart) gets a Register at once, not at the next
  // retry up to a second later, in which the training jobs it would be given wait.
  uint64_t register_handshakes = 0;
  // Wakes the loop when a trial's program ended or its staging or upload finished, so the next
  // step (reporting the exit, starting the program) does not wait for the poll timeout.
  // Declared before `runs`, so it is closed only after every trial thread that may signal it.
  struct OwnedFd {
    int fd;
    ~OwnedFd() {
      if (fd >= 0) ::close(fd);
    }
  } wake{::eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC)};
  const int wake_fd = wake.fd;
  void Wake() const {
    const uint64_t one = 1;
    if (wake_fd >= 0) (void)!::write(wake_fd, &one, sizeof one);
  }
  void DrainWake() const {
    uint64_t n;
    if (wake_fd >= 0) (void)!::read(wake_fd, &n, sizeof n);
  }
  // This process's registration session (see Register.session): a restart is a new session.
  const uint64_t session = [] {
    std::random_device rd;
    uint64_t v = (uint64_t{rd()} << 32) ^ rd();
    return v == 0 ? 1 : v;
  }();
  std::string register_work_dir;  // Register.work_dir, resolved at the first Register (loop thread)
  uint64_t heartbeat_seq = 0;
  std::vector<Pending> outbox;

  struct Run {
    proto::wire::AssignTrial assign;
    std::string attempt_dir;  // <work_dir>/trials/<trial>/attempt-<N>
    std::string checkpoint_dir;  // <work_dir>/trials/<trial>/checkpoints[-algo-N] (agent_assign.cc)
    std::string root;         // attempt_dir/ml: the attempt's /opt/ml
    // /opt/ml is mounted for the program: a private mount namespace (process mode as root) or
    // the container runtime's mounts (`container`).
    bool namespaces = false;
    bool container = false;  // runs as `<runtime> run <image> train`
    std::string container_name;
    std::string last_line;  // the program's last output line (guarded by mu)
    std::string LastLine() {
      std::lock_guard<std::mutex> lock(mu);
      return last_line;
    }
    bool network_isolation = false;
    bool compress_output = true;
    // Its program completed and its artifacts could not be uploaded: where its model and output
    // move (attempt_dir/kNotUploaded) instead of going with the tree, the only copy of the trained
    // model; "" otherwise.
    std::string not_uploaded_dir;
    TrialLayoutSpec layout;
    std::vector<std::string> argv;
    std::vector<BindMount> mounts;  // root on /opt/ml, checkpoints (not channels)
    std::future<Result<std::vector<BindMount>>> staging;  // channel mounts once staged
    // The artifacts, packed and uploaded by the program's monitor thread as soon as it has
    // reaped the program (TrialProcess's on_exit); valid when there is an output path.
    std::future<Result<UploadedArtifacts>> upload;
    std::shared_ptr<TrialProcess> process;  // (shared with a container stop under way)
    std::optional<uint64_t> oom_kills_at_start;  // agent_detail::OomKills() as the program started
    std::unique_ptr<MetricParser> parser;
    std::mutex mu;                                 // guards points, last values and log (reader thread)
    std::vector<proto::wire::MetricPoint> points;  // not yet sent
    std::map<std::string, double> last_values;
    // Output lines not yet sent (numbered; what the coordinator would not keep is left out).
    LogWindow log{proto::wire::kLogHeadLines, proto::wire::kLogTailLines, agent_detail::kLogTailBytes};
    uint64_t log_seq = 0;                // last LogLines seq sent
    uint64_t seq = 0;                    // last MetricPoints seq sent
    int64_t deadline_ms = 0;             // max runtime
    int64_t last_flush_ms = 0;
    std::string stop_reason;     // why we stopped it ("" = not stopped)
    std::string stop_secondary;  // secondary status when stopped
    // Stopped by an interruption notice. Shared with the uploading thread: the attempt runs again
    // elsewhere, so a single-host one uploads its checkpoints but no model.tar.gz to the training
    // job's final place, where a watcher took an empty archive for the result.
    std::shared_ptr<std::atomic<bool>> interrupted = std::make_shared<std::atomic<bool>>(false);
    // Stopped by an eviction (proto::wire::kStopReasonEvictedPrefix): it runs again elsewhere too,
    // so it uploads no model either (its exit is still reported Stopped; the coordinator knows).
    std::shared_ptr<std::atomic<bool>> evicted = std::make_shared<std::atomic<bool>>(false);
    // When the program was first seen dead of a SIGTERM hpo did not send (0: not so): its
    // report waits a moment for the worker's own stop (PollTrials).
    int64_t outside_term_ms = 0;
    int64_t started_unix_ms = 0;  // when its program started (TrialStarted.started_at_ms); 0: not yet
    int64_t stop_grace_ms = 0;
    // Assigned ahead (AssignTrial.after_*): laid out (and staged) now, started once `after`'s
    // program has ended. A predecessor whose successor waits wakes the loop as soon as its
    // program is reaped, before its artifacts are uploaded.
    bool queued = false;
    Key after;
    // Ready to start (nothing to stage, or staged) while the lease was stale: a worker that was
    // paused may read an assignment the coordinator has since given to another worker. It starts
    // once the lease is fresh (PollTrials), and never if the attempt is revoked meanwhile.
    bool awaits_lease = false;
    // KeepAlivePeriodInSeconds: the File-mode channels (key, directory) whose staged data is kept
    // for the job's next training job on this worker when this one ends.
    int64_t keep_alive_ms = 0;
    // A multi-host attempt: the NCCL preflight's command ("" = none) and what to log about it
    // (written by the staging thread, read after its future).
    std::vector<std::string> preflight;
    std::shared_ptr<std::string> preflight_note = std::make_shared<std::string>();
    std::vector<std::pair<std::string, std::string>> warm_channels;
    // Each warm channel directory's DirectoryFingerprint when the program started: kept at the
    // end only when unchanged (a program may rewrite its File-mode input, as SageMaker allows; the
    // next training job must not see that) and only when the program started (staging completed).
    std::map<std::string, uint64_t> warm_prints;
    // CheckpointConfig.S3Uri: restored before the program starts, synced every
    // checkpoint_sync_ms while it runs (one pass at a time) and once more when it has ended.
    std::shared_ptr<CheckpointSync> checkpoints;
    std::future<Result<CheckpointStats>> checkpoint_pass;
    int64_t last_checkpoint_pass_ms = 0;
    bool checkpoint_error_logged = false;
    // /opt/ml/output/intermediate (an output path is set): uploaded every intermediate_sync_ms
    // while the program runs and once more when it has ended, before the artifacts.
    std::shared_ptr<CheckpointSync> intermediate;
    std::future<Result<CheckpointStats>> intermediate_pass;
    int64_t last_intermediate_pass_ms = 0;
    bool intermediate_error_logged = false;
    std::shared_ptr<std::atomic<bool>> successor_waits = std::make_shared<std::atomic<bool>>(false);
    // Its staging pulls the image now (set by the staging thread); the loop says so once
    // (TrialStaging DownloadingTrainingImage).
    std::shared_ptr<std::atomic<bool>> pulling = std::make_shared<std::atomic<bool>>(false);
    bool pull_reported = false;
    // Its program completed and its model and output are being uploaded (set by the upload on
    // the program's exit); the loop says so once (TrialStaging Uploading) while no report is out.
    std::shared_ptr<std::atomic<bool>> uploading = std::make_shared<std::atomic<bool>>(false);
    bool upload_reported = false;
    // Set by StopRun while it stages: the staging thread fetches no more objects and stops an
    // image pull at once, so a stop does not wait for a download.
    std::shared_ptr<std::atomic<bool>> staging_cancel = std::make_shared<std::atomic<bool>>(false);
    // The image ID its staging pulled from a source (IsImageSource): what the container runs.
    // Written by the staging thread before its result is ready; read after.
    std::shared_ptr<std::string> pulled_id = std::make_shared<std::string>();
    // Algo-1 of a multi-host attempt with compressed output (ArtifactSpec::Merges): once its
    // program completed, its upload waits until the other hosts have ended (kPeersEnded, set by
    // the coordinator's GangPeersEnded), then merges what they handed over into its archives.
    // Stopped by the coordinator (kPeersStopping: the whole gang is stopped) it waits for their
    // hand-over (artifacts.h HandedOver) or GangPeersEnded, until peers_until_ms. Failed, or
    // stopped by this worker (an interruption, its volume, its max runtime: kPeersNotAwaited), it
    // waits for nothing: the coordinator stops the others once it hears of it.
    static constexpr int kPeersRunning = 0, kPeersEnded = 1, kPeersStopping = 2, kPeersNotAwaited = 3;
    std::shared_ptr<std::atomic<int>> peers = std::make_shared<std::atomic<int>>(kPeersRunning);
    std::shared_ptr<std::atomic<int64_t>> peers_until_ms = std::make_shared<std::atomic<int64_t>>(0);
    // The coordinator no longer runs this attempt (it told us after a gap): nothing of it is
    // uploaded.
    std::shared_ptr<std::atomic<bool>> revoked = std::make_shared<std::atomic<bool>>(false);
    // How long the uploads waited for the coordinator to confirm the lease (an outage): not
    // training time, so the exit report's ended_at_ms leaves it out.
    std::shared_ptr<std::atomic<int64_t>> lease_wait_ms = std::make_shared<std::atomic<int64_t>>(0);
    // ResourceConfig.VolumeSizeInGB, watched while the program runs; exceeding it stops the
    // program and the attempt ends Failed with stop_reason (stop_fails).
    std::optional<VolumeLimit> volume_limit;
    std::unique_ptr<VolumeWatch> volume;
    bool stop_fails = false;
    // Measured again once a program that completed has ended, before anything is packed: one that
    // filled its volume between two checks (or before the first) completed and uploaded a model
    // larger than its volume. Its reason when over (written by the upload thread before the
    // upload's promise is set, read after its future), else "".
    std::string volume_over_at_exit;
    // Pipe-mode channels: the feeds staging prepared (written by the staging thread, read after
    // its future), and their feeders, from the program's start until it is reaped or stopped.
    // Last: the feeders' callbacks use the members above.
    // The program has ended: its report, complete but for the uploads' outcome (PollTrials sends
    // it once they are done), and kept on disk meanwhile (worker/pending_exit.h).
    std::optional<proto::wire::TrialExited> ended;
    // Ended under an earlier worker process on this work directory, before its uploads were done
    // (ResumePendingExits): there is no program, only the uploads and the report; the artifacts
    // are described by `resumed_artifacts` (ArtifactsOf needs what the assignment said).
    bool resumed = false;
    std::optional<ArtifactSpec> resumed_artifacts;
    std::shared_ptr<std::vector<PipeFeed>> pipe_feeds = std::make_shared<std::vector<PipeFeed>>();
    std::vector<std::unique_ptr<PipeFeeder>> pipes;
    // The first error that stopped a Pipe mode feed (a corrupt gzip object, a failed read), under
    // `mu`: a program that then ends 0 trained on part of its data, and does not complete.
    std::optional<Status> pipe_error;
    // The program first (killed, its monitor thread joined), then the rest: its output callback
    // uses parser, mu, points, last_values and log, which members destroyed in reverse order
    // freed before `process` (a worker refused by the coordinator returned with programs still
    // printing).
    Run() = default;
    Run(const Run&) = delete;
    Run& operator=(const Run&) = delete;
    ~Run() {
      pipes.clear();
      process.reset();
    }
  };
  std::map<Key, std::unique_ptr<Run>> runs;
  // Container images found present here (checked, or pulled, once per image; never with pull
  // policy always, whose images are pulled for every trial).
  std::mutex images_mu;
  std::set<std::string> images_present;
  bool ImageKnownPresent(const std::string& image);
  // How long one image pull may take before the attempt ends as an infrastructure error.
  std::chrono::seconds pull_timeout{3600};
  // Containers labelled with this worker's id that an earlier process left are removed once,
  // before this process's first container trial starts (on its staging thread, so a worker that
  // never runs a container never asks the runtime, and its start-up waits for nothing).
  std::once_flag containers_swept;
  std::atomic<bool> containers_swept_done{false};
  void SweepStaleContainers();
  mutable std::mutex runs_mu;  // guards the map's shape for running()

  // The S3 client, created on first use from opt.s3_endpoint and the environment.
  std::mutex s3_mu;
  std::shared_ptr<S3Client> s3;
  Result<const S3Client*> S3();

  // The channel cache (worker/channel_cache.h); null when off or it cannot be opened.
  std::unique_ptr<ChannelCache> channel_cache;
  void OpenChannelCache();

  void Log(const std::string& l) const { opt.log(l); }
  int64_t Now() const { return opt.now_ms(); }

  // ---- socket
  // ------------------------------------------------------------------------------------

  void Connect();

  void SendFrames(const std::vector<std::string>& frames);

  void Send(const proto::wire::Message& m) { SendFrames(proto::wire::EncodeFrames(m)); }

  // TrialStaging (informational, not acknowledged): the attempt fetches `what` before its
  // program starts (`status` proto::wire::kDownloading or kDownloadingTrainingImage), or uploads
  // it after its program completed (kUploading).
  void SendStaging(const Key& key, std::string_view status, const std::string& what) {
    proto::wire::TrialStaging m;
    m.trial = key.first;
    m.attempt = key.second;
    m.worker_id = opt.worker_id;
    m.status = std::string(status);
    m.what = proto::wire::SanitizeText(what, proto::wire::limits::kMaxTextChars);
    Send(m);
  }

  // Sends a message that must be acknowledged, and keeps it until it is: in memory, and in the
  // on-disk journal (written first), so a worker process that dies before the acknowledgement
  // leaves it for the next one on this work directory.
  // Returns whether the report is in the journal (true when there is none to keep it).
  bool SendReliable(const proto::wire::Message& m, proto::wire::MsgType type, Key key,
                    uint64_t seq);

  std::optional<OutboxJournal> journal;
  bool journal_error_logged = false;

  // At start: the journal of earlier worker processes on this work directory. The reports of
  // attempts that ended (their TrialExited is there) go out again, and Register lists those
  // attempts as held so the coordinator waits for them. So do the reports of attempts whose
  // program ended while their uploads waited (worker/pending_exit.h: ResumePendingExits). An
  // attempt with neither ended with its worker (PR_SET_PDEATHSIG), and the coordinator retries it.
  void OpenJournal();
  // <work_dir>/trials/<trial>/attempt-<N>: an attempt's directory (its trial.log, its /opt/ml tree
  // `ml`, its pending report).
  std::string AttemptDir(const std::string& trial, uint32_t attempt) const;
  // At start: the attempt directories earlier processes on this work directory left (attempt 0
  // for a name that is not attempt-<N>), read once for the two steps below.
  std::vector<std::pair<Key, fs::path>> LeftAttemptDirs() const;
  // At start, after OpenJournal: attempts whose program ended under an earlier process while
  // their uploads waited (worker/pending_exit.h) become runs again, with only their uploads and
  // report left; RemoveLeftoverTrees keeps their trees, and Register lists them as held.
  void ResumePendingExits(const std::vector<std::pair<Key, fs::path>>& left);
  // At start: the /opt/ml trees of attempts an earlier process on this work directory left
  // (AgentOptions::keep_trial_files), removed before the worker connects.
  void RemoveLeftoverTrees(const std::vector<std::pair<Key, fs::path>>& left);
  // The sync of an attempt's output/intermediate (under `root`) to <S3OutputPath>/<job>/output/
  // intermediate, which the program's run and a resumed upload share.
  Result<std::unique_ptr<CheckpointSync>> IntermediateSync(const ArtifactSpec& spec, const std::string& root);

  // Training jobs whose checkpoint directory (WORK_DIR/trials/<job>/checkpoints) this worker
  // keeps while no attempt of theirs runs here: found at start, added as attempts end. Every
  // AgentOptions::release_check_ms the worker asks the coordinator which of them have ended for
  // good (HeldTrials, at most kMaxHeldTrials a time, continuing after `held_cursor`) and removes
  // those directories when told (ReleaseTrials). Empty with keep_trial_files.
  std::set<std::string> held_checkpoints;
  std::string held_cursor;
  int64_t last_held_query_ms = 0;
  // AgentOptions::trial_log_retention_ms: whether and when the trial directories were last swept.
  bool log_swept = false;
  int64_t last_log_sweep_ms = 0;
  // Removes the trials/ directories unchanged for the retention period that hold no checkpoint
  // directory and no attempt that runs here: listed here, checked and removed on a pool thread.
  void SweepOldTrialLogs(int64_t now);
  // The work directory as the programs' kOwnerVariable names it (made absolute at Run).
  std::string owner_tag;
  bool ReleasesCheckpoints() const { return !opt.keep_trial_files && opt.release_check_ms > 0; }
  bool RunsTrial(const std::string& trial) const;
  void FindHeldCheckpoints();
  void SendHeldTrials(int64_t now);
  void OnRelease(const proto::wire::ReleaseTrials& r);

  // The attempts this worker answers for: those running, and those that ended while their
  // TrialExited is not acknowledged yet. Register and every Heartbeat list them.
  std::set<Key> HeldAttempts() const;
  // The same as Register.running and Heartbeat.running: those whose run is over marked `ended`
  // (they hold no slot here, and a coordinator that does not know them must not count one).
  std::vector<proto::wire::AttemptRef> HeldAttemptRefs() const;

  void SendRegister();

  // ---- trials
  // ------------------------------------------------------------------------------------

  // Resolves trainingImage to a program: an absolute path or file:// URI of an executable, or an
  // entry of the worker's image map; an empty argv means a container image (a runtime is set up).
  // NotFound "cannot run \"...\": WHY" when this worker cannot run it (missing, not executable,
  // an image it does not map and no container runtime).
  Result<std::vector<std::string>> Program(const std::string& image);

  // Sends the attempt's exit report; whether it is in the journal (SendReliable).
  bool Exited(const Key& key, proto::wire::TrialExited x);

  // ---- directory trees made ahead of time (worker/spare_dirs.h) ------------------------------

  // The interface that carries this worker's --host (InterfaceOf), found at construction.
  std::string network_interface = "eth0";

  // Unique per agent: "<pid>-<n>" (spare and kept-data directory names start with it).
  const std::string agent_tag = [] {
    static std::atomic<uint64_t> agents{0};
    return std::to_string(::getpid()) + "-" + std::to_string(++agents);
  }();
  std::optional<SpareTrialDirs>
      spares;  // made by WorkerAgent's constructor (it needs opt); uses `background`

  // The job's TrainingJobDefinition (DefinitionOf), parsed once per job rather than once per
  // trial: the attempts of a job carry the same spec_json.
  std::string definition_json;
  std::optional<proto::TrainingJobDefinition> definition;
  const std::optional<proto::TrainingJobDefinition>& Definition(const proto::wire::AssignTrial& a);

  void Assign(const proto::wire::AssignTrial& a);

  // Every trial, single-host too: `algo-N` resolves to its host inside the trial, through a copy
  // of /etc/hosts with the trial's entries (a gang member's worker address; 127.0.0.1 for the
  // only host of a single-host trial) bind-mounted over /etc/hosts in the trial's mount namespace
  // or container. Without one (process mode, not root) the names are only in resourceconfig.json
  // and SM_HOSTS, and SM_STUDIO_LOCAL_MODE=true (unless the definition sets it) keeps the
  // training toolkit from waiting 15 minutes for them to resolve.
  Status HostsFile(Run& r, const proto::wire::AssignTrial& a);

  // ---- warm reuse of staged channel data (KeepAlivePeriodInSeconds) -------------------------
  // A File-mode channel's staged copy outlives its training job here for the keep-alive period,
  // under <work_dir>/warm/, and the job's next training job with the same channel (same source,
  // distribution, shuffle and host) on this worker takes it with one rename instead of staging
  // it again, unless the program that used it changed it (a file written, added, removed or
  // touched: Run::warm_prints) or never started. A source that changed in between is not seen
  // until the kept copy expires.
  struct WarmData {
    std::string job, definition, key, path;
    int64_t until_ms = 0;
  };
  std::vector<WarmData> warm_data;  // loop thread
  uint64_t warm_seq = 0;

  static std::string ChannelKey(const ChannelSource& s, const std::vector<std::string>& hosts,
                                const std::string& current_host);

  bool TakeWarmData(const proto::wire::AssignTrial& a, const std::string& key,
                    const std::string& dir);

  // An attempt ended: its File-mode channels' data is kept for the keep-alive period, when as
  // the program found it.
  void KeepWarmData(const Run& r);
  // What a directory tree holds, as a hash of every entry's relative path, type, size, inode and
  // modification time (symbolic links not followed); 0 when it cannot be read.
  static uint64_t DirectoryFingerprint(const std::string& dir);

  // Kept data whose period is over goes (on a pool thread); all of it at shutdown.
  void ExpireWarmData(bool all = false);

  // ---- NCCL preflight (multi-host GPU attempts) ---------------------------------------------
  std::string PreflightBinary() const;

  void PlanPreflight(Run& r, const proto::wire::AssignTrial& a);

  // Runs the preflight (on the staging thread), bounded by nccl_preflight_timeout_s.
  Status RunPreflight(const std::vector<std::string>& argv, const std::string& host,
                      std::string* note);

  int64_t Deadline(const proto::wire::AssignTrial& a) const;

  // Whether the attempt `k` still holds its slot here: staging, waiting, or its program runs.
  bool PredecessorRunning(const Key& k);

  // An attempt that ends before its program started (stopped while queued or staging).
  void ReportNotStarted(const Key& key, Run& r, const std::string& while_doing);

  // The trial's checkpoint directory (kept across attempts) at checkpointConfig.localPath.
  Status PrepareCheckpoints(Run& r, const fs::path& keep);

  // What the program's monitor thread does once the program has ended and been reaped: packs and
  // uploads the artifacts (when the job has an output path) right there, then wakes the loop,
  // which reports the exit with the points and lines still to send, in one go. (The alternative,
  // the loop noticing the exit and handing the upload to another thread that wakes it again,
  // cost two more thread switches per trial, and the coordinator a separate burst and commit for
  // the report.) A worker being destroyed uploads nothing more.
  static ArtifactSpec ArtifactsOf(const Run& r);

  std::function<void(const ExitInfo&)> UploadOnExit(Run& r);

  // Starts the program of a staged attempt. False when it could not start (already reported).
  bool StartProgram(const Key& key, Run& r, std::vector<BindMount> channel_mounts);

  // ---- spot interruptions ----------------------------------------------------------------------
  std::atomic<bool> abort_now{false};  // set by Abort() (any thread)
  std::mutex interrupt_mu;
  std::string interrupt_reason;  // set by Interrupt() (any thread)
  bool interrupt_planned = false;  // with it: the worker itself is going (InterruptionNotice.planned)
  bool interrupted = false;      // handled (loop thread)
  std::optional<proto::wire::InterruptionNotice> notice;  // what was said then, for re-registrations

  void CheckInterruption();

  // `gang_stop`: the coordinator's StopTrial, which stops every host of a multi-host attempt
  // (Run::kPeersStopping); any other stop is this worker's own (Run::kPeersNotAwaited).
  void StopRun(Run& r, const std::string& reason, const std::string& secondary, int64_t grace_s,
               bool gang_stop = false);
  // After Abort(): every run's program (or container) is killed without waiting out its grace.
  void KillRunsNow();
  // Kills what training jobs left behind (worker/orphans.h), at most once a second; `final`
  // (the agent is done): this agent runs nothing any more.
  void SweepLeftovers(bool final);
  // What this agent runs, published before any of its programs starts (PollTrials): another
  // agent of the process sweeping meanwhile must not take a new program for a daemon.
  void PublishRuns();

  // Pipe-mode channels (worker/pipe_channel.h): the FIFOs <channel>_0 exist before the program
  // starts; each epoch is logged here, an error that ends the feeding also in the trial's log.
  // False when a feeder cannot start (reported as for a program that cannot start).
  bool StartPipes(const Key& key, Run& r);

  // Once the program has been reaped or is being stopped: no more epochs, and the spooled copies
  // go.
  void StopPipes(Run& r);

  // Keeps this worker's id in WORK_DIR/worker-id (what `hpo worker` without --id starts as), once
  // the directory is locked and the journal read; warns instead when the journal holds another
  // id's undelivered reports (they are refused under this id: the message names the id that
  // delivers them).
  void NoteWorkerId();

  // Sends the trial's buffered points and output lines, in batches. Output lines wait while
  // kLogBatchesInFlight of the attempt's batches are not acknowledged (a coordinator that stores
  // them slower than the program prints, or is away), unless `all` (the program has ended: what
  // the window holds goes now).
  void Flush(const Key& key, Run& r, bool all = false);

  // Starts the next periodic checkpoint pass of a running attempt on a pool thread, at most one at
  // a time and every checkpoint_sync_ms; a failed pass is logged once (the next one retries).
  void CheckpointPass(const Key& key, Run& r, int64_t now);
  // Attempts whose periodic passes wait for the coordinator to confirm them (out of touch past
  // half the lease) -> since when, and whether that was said. Said once a pause has lasted a
  // quarter of a lease (a coordinator slow for a moment paused them for a beat and said so, again
  // and again), and then once when they resume.
  std::map<Key, std::pair<int64_t, bool>> passes_paused;
  // The same for output/intermediate, every intermediate_sync_ms (0 = never while it runs).
  void IntermediatePass(const Key& key, Run& r, int64_t now);
  // One periodic pass of `sync` as described above; `what` names it in the log.
  // Its writes are fenced (common/object_store.h CommitGate): one that finds the lease stale, or
  // the attempt revoked, ends the pass (not logged as a failure: the files go in a later pass).
  void PeriodicPass(const Key& key, const std::shared_ptr<CheckpointSync>& sync,
                    std::future<Result<CheckpointStats>>& pass, int64_t& last_ms, bool& error_logged,
                    int64_t period_ms, const std::string& what, int64_t now,
                    const std::shared_ptr<std::atomic<bool>>& revoked);

  static bool Ready(const auto& future);
  // Whether the signal that stops this process had arrived by `unix_ns` (AgentOptions::
  // stop_signal_unix_ns); `unix_ns` 0: by now.
  // A stopping signal still pending (sent, its handler yet to run on one of this process's
  // threads: the thread that noticed the program's end may get there first) counts as arrived.
  bool Signalled(int64_t unix_ns = 0) const {
    if (!opt.stop_signal_unix_ns) return false;
    const int64_t at = opt.stop_signal_unix_ns->load();
    if (at != 0) return unix_ns == 0 || at <= unix_ns;
    sigset_t pending;
    sigemptyset(&pending);
    return ::sigpending(&pending) == 0 && (sigismember(&pending, SIGTERM) == 1 || sigismember(&pending, SIGINT) == 1 ||
                                           sigismember(&pending, SIGHUP) == 1);
  }

  void PollTrials();
  // The report of a program that has ended (`outside_term`: killed by a SIGTERM hpo did not send,
  // after the wait for the worker's own stop; `used`: its volume's last measurement, if watched),
  // but for its uploads' outcome.
  proto::wire::TrialExited ExitReport(Run& r, const ExitInfo& exit, bool outside_term, std::optional<uint64_t> used);
  // A failed program whose output (`said`) says it ran out of disk space while its own use was
  // within its volume and the worker's disk is nearly full now (under 256 MiB free): the
  // InternalServerError reason that makes the failure an infrastructure error, retried, not the
  // algorithm's; "" otherwise.
  // A neighbour (another training job, another process) filling the worker's one filesystem used
  // to fail this training job for good as an AlgorithmError.
  // On a (nearly) full disk as an attempt's program ends: a line in its log (and the worker's)
  // that its output may be cut short.
  void NoteFullDisk(const Key& key, Run& r);
  std::string OutOfSpaceNotOwn(const Run& r, std::optional<uint64_t> used, const std::string& said);
  // Writes r.ended, with what its uploads need, beside the attempt (worker/pending_exit.h).
  void KeepPendingExit(const Key& key, const Run& r);
  // The uploads are done: r.ended, amended with their outcome, goes to the coordinator.
  void FinishExit(const Key& key, Run& r);
  // A Completed report whose uploads failed: Failed (ClientError) or InfraError, naming what;
  // `kept`: where the model and output stay on this worker ("" when they do not).
  static void UploadFailed(proto::wire::TrialExited& x, const Status& up, const std::string& kept = "");

  // ---- messages
  // ----------------------------------------------------------------------------------

  void OnAck(const proto::wire::Ack& a);

  Status Handle(const proto::wire::Message& m);

  // How long the loop sleeps when nothing arrives. What is urgent wakes it at once (a message,
  // a program's exit, staging done); the rest is periodic: metric and log batches (flush_ms),
  // heartbeats, re-sends, max runtimes, the lease. Not every 10 ms with 16 slots busy: that was
  // 100 wake-ups a second per worker for nothing.
  int64_t TickMs() const;

  // --spot-notice-url: polled on its own thread (a metadata endpoint may take its timeout to
  // answer); a notice becomes an interruption like SIGUSR1. Errors are logged when they change.
  std::mutex notice_mu;
  std::condition_variable notice_cv;
  bool notice_stop = false;
  std::thread notice_thread;
  void StartNoticePoller();
  void StopNoticePoller();
  void Interrupt(const std::string& reason, bool planned = false);

  Status Loop(const std::atomic<bool>& stop);

  // Set when the agent is destroyed: monitor threads that see a program end now upload nothing.
  std::atomic<bool> closing{false};

  ~Impl();

  // Last members: destroyed first, so their threads end before anything their tasks use.
  TaskPool tasks;
  // Spares, stale-spare cleanup, artifact directories made early, joining finished programs'
  // threads: work that nothing waits for. (Not at a lower priority: on a machine busy with other
  // work that starved it, and launches fell back to making their trees themselves.)
  TaskPool background;
};

}  // namespace hpo::worker
