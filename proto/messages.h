// proto/messages.h: the coordinator <-> worker wire protocol.
//
// What it is: one plain struct per message, the framing that turns a message into the frames of
// one multipart ZeroMQ message and back, and the validation every received message passes. The
// ZeroMQ adapters (coordinator/dispatcher, worker/agent) only move frames; the simulated fleet of
// bench/ may skip the frames and pass the structs directly.
//
// What it is not: a transport. Nothing here knows about sockets, files, processes or clocks;
// timestamps are values the caller supplies.
//
// Wire format (protocol version 1):
// - A message is exactly two frames: frame 0 is the MsgType as a 2-byte big-endian uint16;
//   frame 1 is a msgpack map keyed by field name (nested records are maps too, lists are arrays).
// - Unknown keys are ignored, so a later version may add fields; every field listed below is
//   required in version 1 and a missing one is an error. A field that may be "empty" is still
//   sent, as "" / [] / {} / 0 as its comment says.
// - Frozen across all versions, so that any two builds can tell each other they disagree: the
//   frame layout, the MsgType values of Register, RegisterAck and Error, and their keys
//   `protocol_version`, `accepted`, `reason`, `code`, `message`, `in_reply_to`.
//
// Conversation:
// - A worker connects and sends Register (also on every reconnect, listing the attempts it still
//   runs); the coordinator answers RegisterAck, or Error{ProtocolVersionMismatch}, which a worker
//   treats as fatal. Nothing else is sent before an accepted RegisterAck.
// - worker -> coordinator: Register, Heartbeat, TrialStarted, MetricPoints, LogLines,
//   TrialExited, InterruptionNotice, HeldTrials, Ack (of AssignTrial and StopTrial), Error.
//   coordinator -> worker: RegisterAck, AssignTrial, StopTrial, ReleaseTrials (the answer to
//   HeldTrials), Ack (of Heartbeat, TrialStarted, MetricPoints, LogLines, TrialExited,
//   InterruptionNotice), Error.
// - Delivery is at least once; every handler is idempotent on (trial, attempt, seq). The
//   coordinator answers each Heartbeat with Ack{kHeartbeat, seq}, after the StopTrial messages
//   its reconciliation sends: the worker's lease runs from the send time of the newest heartbeat
//   so acknowledged (worker/agent_impl.h lease_anchor_ms), with those stops applied. An Ack of MetricPoints is cumulative: it says that every batch of
//   that attempt up to and including `seq` is stored, so the coordinator acks the highest seq it
//   holds with all earlier ones, and the worker may drop those batches from its resend buffer.
// - A receiver answers a message it cannot decode with the Error that DecodeFrames fills in, and
//   never answers an Error with an Error.
//
// Strings: every string on the wire is valid UTF-8 without NUL bytes. Limits below are sanity
// bounds on what a peer may send; they are never tighter than SageMaker's own rules, which
// proto/validate.h enforces on the spec before any trial exists.
//
// Ownership and thread safety: the structs are plain values that own all their data; functions
// read their arguments during the call only, keep nothing, and return owned values. All
// functions are pure and may be called from any thread concurrently.
//
// Errors: no function here throws (msgpack exceptions are caught inside and become Status
// values), and decoding never crashes, whatever the bytes. Its memory is bounded by the limits
// below: at most about 25 bytes per body byte while it runs (msgpack reserves an array's slots
// at its header), so about 100 MiB for the largest body; the ZeroMQ adapters should also set
// ZMQ_MAXMSGSIZE to limits::kMaxBodyBytes so that larger frames never reach memory.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <tuple>
#include <variant>
#include <vector>

#include <msgpack.hpp>

#include "common/status.h"
#include "proto/tuning_job.h"  // StringMap

namespace hpo::proto::wire {

// Bumped on any change an older peer cannot ignore (a new required field, a changed meaning).
constexpr uint32_t kProtocolVersion = 14;  // 2: Register.session; 3: AssignTrial.after_*;
                                          // 4: HeldTrials, ReleaseTrials; 5: StopTrial with
                                          // kStopReasonIfNotStarted (an older worker stopped
                                          // an attempt that had started); 6: Heartbeat.sent_ms;
                                          // 7: Heartbeat.disk_mb; 8: TrialStaging;
                                          // 9: GangPeersEnded (algo-1 waits for it);
                                          // 10: InterruptionNotice.planned,
                                          // Register.work_dir, TrialStaging kUploading;
                                          // 11: DiscardHandOver; 12: AttemptRef.ended;
                                          // 13: FinalMetric.value NaN (no final value)
                                          // 14: Register.no_s3

// Values are part of the wire format: never renumber, never reuse.
enum class MsgType : uint16_t {
  kInvalid = 0,
  kRegister = 1,
  kRegisterAck = 2,
  kHeartbeat = 3,
  kAssignTrial = 4,
  kTrialStarted = 5,
  kMetricPoints = 6,
  kTrialExited = 7,
  kStopTrial = 8,
  kInterruptionNotice = 9,
  kAck = 10,
  kError = 11,
  kLogLines = 12,
  kHeldTrials = 13,
  kReleaseTrials = 14,
  kTrialStaging = 15,
  kGangPeersEnded = 16,
  kDiscardHandOver = 17,
};

// "Register", "AssignTrial", ...; "Invalid" for kInvalid and for values no message has.
const char* MsgTypeName(MsgType type);

// Limits a decoded message must respect (see also each struct's Validate()).
namespace limits {
constexpr size_t kMaxBodyBytes = 4u << 20;       // frame 1
constexpr size_t kMaxStringBytes = 1u << 20;     // any one string (spec_json is the big one)
constexpr size_t kMaxArrayEntries = 16384;       // any one array
constexpr size_t kMaxMapEntries = 1000;          // any one map, records included
constexpr size_t kMaxDepth = 16;                 // nesting of arrays and maps
constexpr size_t kMaxPointsPerBatch = 10000;     // MetricPoints.points
constexpr size_t kMaxFailureReasonChars = 1024;  // TrialExited.failure_reason, as SageMaker
constexpr size_t kMaxTextChars = 4096;           // reasons and error messages
constexpr size_t kMaxLogLinesPerBatch = 10000;   // LogLines.lines
constexpr size_t kMaxLogLineBytes = 64u << 10;   // one LogLines line
constexpr size_t kMaxHeldTrials = 1024;          // HeldTrials.trials, ReleaseTrials.trials
}  // namespace limits

// Error codes an Error message carries (Error.code); peers may send others.
namespace error_code {
inline constexpr std::string_view kProtocolVersionMismatch = "ProtocolVersionMismatch";
inline constexpr std::string_view kMalformedMessage = "MalformedMessage";      // frames or msgpack
inline constexpr std::string_view kUnknownMessageType = "UnknownMessageType";  // frame 0
inline constexpr std::string_view kInvalidField = "InvalidField";  // a field's type or value
}  // namespace error_code

// TrialExited.status values.
namespace exit_status {
inline constexpr std::string_view kCompleted = "Completed";      // exit code 0
inline constexpr std::string_view kFailed = "Failed";            // algorithm error: fails the trial
inline constexpr std::string_view kStopped = "Stopped";          // after StopTrial or max runtime
inline constexpr std::string_view kInterrupted = "Interrupted";  // re-queued, spends no retry
inline constexpr std::string_view kInfraError = "InfraError";    // retried under retryStrategy
}  // namespace exit_status

// Declares a struct's wire fields once: the msgpack map packing (MSGPACK_DEFINE_MAP) and the
// field list DecodeFrames reads with its own strict, field-naming decoder. Decode only through
// DecodeFrames: the msgpack_unpack this also generates skips every check.
#define HPO_WIRE_FIELDS(...)                                                  \
  MSGPACK_DEFINE_MAP(__VA_ARGS__)                                             \
  auto WireFields() { return std::tie MSGPACK_DEFINE_MAP_IMPL(__VA_ARGS__); } \
  auto WireFields() const { return std::tie MSGPACK_DEFINE_MAP_IMPL(__VA_ARGS__); }

// ---------------------------------------------------------------------------------------------
// Records used inside messages
// ---------------------------------------------------------------------------------------------

// One execution of one trial: the idempotency key of everything about a running trial.
struct AttemptRef {
  std::string trial;     // training job name, SageMaker pattern, 1-63 chars
  uint32_t attempt = 0;  // >= 1
  // In Register.running and Heartbeat.running: its program has ended and its uploads are done;
  // the worker holds only its exit report (TrialExited, not yet acknowledged). It holds no slot
  // there. Elsewhere false.
  bool ended = false;
  bool operator==(const AttemptRef&) const = default;
  HPO_WIRE_FIELDS(trial, attempt, ended)
};

struct GpuInfo {
  uint32_t index = 0;      // the device index the worker's runtime uses (CUDA_VISIBLE_DEVICES)
  std::string uuid;        // "GPU-..." from the driver; empty = unknown; <= 128
  std::string name;        // model, e.g. "NVIDIA H200"; empty = unknown; <= 256
  uint64_t memory_mb = 0;  // total memory; 0 = unknown
  bool operator==(const GpuInfo&) const = default;
  HPO_WIRE_FIELDS(index, uuid, name, memory_mb)
};

// A MetricDefinition of the training job: each match of `regex` in the program's output is one
// point of metric `name`.
struct MetricDef {
  std::string name;   // 1-255 chars
  std::string regex;  // 1-1024 chars; its first capture group holds the number
  bool operator==(const MetricDef&) const = default;
  HPO_WIRE_FIELDS(name, regex)
};

// A data channel of the training job (inputdataconfig.json, /opt/ml/input/data/<name>).
struct ChannelSpec {
  std::string name;               // [A-Za-z0-9.-_]{1,64}, unique within the trial
  std::string uri;                // s3://, file:// or an absolute local path; 1-1024 chars
  std::string content_type;       // MIME type; empty = none declared; <= 256
  std::string input_mode;         // "File" | "Pipe" | "FastFile"; empty = AssignTrial.input_mode
  std::string s3_data_type;       // "S3Prefix" (= empty) | "ManifestFile" | "AugmentedManifestFile"
  std::string distribution_type;  // "FullyReplicated" (= empty) | "ShardedByS3Key"
  std::string compression_type;   // "None" (= empty) | "Gzip"
  std::string record_wrapper_type;  // "None" (= empty) | "RecordIO"
  bool operator==(const ChannelSpec&) const = default;
  HPO_WIRE_FIELDS(name, uri, content_type, input_mode, s3_data_type, distribution_type,
                  compression_type, record_wrapper_type)
};

// One instance group of a heterogeneous trial (resourceconfig.json instance_groups).
struct InstanceGroupSpec {
  std::string name;                // 1-64 chars, unique within the trial
  std::string instance_type;       // 1-64 chars
  std::vector<std::string> hosts;  // the trial's hosts in this group; 1+, each in AssignTrial.hosts
  bool operator==(const InstanceGroupSpec&) const = default;
  HPO_WIRE_FIELDS(name, instance_type, hosts)
};

// One match of a metric regex.
struct MetricPoint {
  std::string name;          // the MetricDef name; 1-255 chars
  double value = 0;          // finite
  int64_t timestamp_ms = 0;  // Unix epoch milliseconds of the output line; >= 0
  uint32_t step = 0;  // 0-based index of this emission of `name` within the attempt; points of
                      // one name appear in a batch in increasing step order
  bool operator==(const MetricPoint&) const = default;
  HPO_WIRE_FIELDS(name, value, timestamp_ms, step)
};

// The last value of one metric in an attempt.
struct FinalMetric {
  std::string name;  // 1-255 chars, unique within the list
  // Finite, or NaN: the metric's last match was "nan" or "inf" (a run that diverged), so it has
  // no final value; the coordinator keeps none (and no objective, for the objective metric)
  // rather than the last finite value before it.
  double value = 0;
  bool operator==(const FinalMetric&) const = default;
  HPO_WIRE_FIELDS(name, value)
};

// ---------------------------------------------------------------------------------------------
// Messages. Validate() checks every field and returns InvalidArgument naming the first bad one
// ("AssignTrial.attempt: must be >= 1"); DecodeFrames calls it on everything it decodes.
// ---------------------------------------------------------------------------------------------

// worker -> coordinator, first on every connection (also each reconnect).
struct Register {
  uint32_t protocol_version = kProtocolVersion;  // must be kProtocolVersion
  std::string worker_id;       // stable across reconnects and restarts; [A-Za-z0-9._:@-]{1,128}
  std::string host;            // reachable host name or address; printable ASCII, 1-255
  std::string instance_type;   // e.g. "ml.p4d.24xlarge"; empty = none declared (matches none
                               // that names one); <= 64
  std::string instance_group;  // empty = in no instance group; <= 64
  StringMap labels;            // free-form placement labels; <= 64, keys 1-253, values <= 1024
  std::vector<GpuInfo> gpus;   // empty = no GPU; <= 64, unique indices
  uint32_t cpus = 0;           // logical CPUs; >= 1
  uint64_t memory_mb = 0;      // >= 1
  uint32_t slots = 0;          // trials it runs at once; 1-1024
  bool spot = false;           // may be interrupted (spot / preemptible capacity)
  std::vector<AttemptRef> running;  // attempts still running from before; empty on first start;
                                    // <= 4096, unique
  uint64_t disk_mb = 0;  // free space for trials (its work directory) at registration, then
                         // as each Heartbeat says; 0 = unknown
  uint64_t session = 0;  // >= 1, random per worker process: a new value under a known worker_id
                         // means the worker restarted (and holds only `running`); the same
                         // value again is a re-sent copy of a registration already handled
  std::string work_dir;  // the worker's work directory, absolute and resolved (one worker holds
                         // it at a time); <= 4096 chars; empty = not said. A new session under a
                         // live worker's id is a restart only on the same host and work directory.
  // The worker has no S3 configuration (no credentials found, or its endpoint is not a URL): a
  // training job that reads or writes s3:// (channels, output, checkpoints) is not sent there
  // (each such attempt failed there as an infrastructure error, and the worker was put to rest).
  bool no_s3 = false;
  bool operator==(const Register&) const = default;
  Status Validate() const;
  HPO_WIRE_FIELDS(protocol_version, worker_id, host, instance_type, instance_group, labels, gpus,
                  cpus, memory_mb, slots, spot, running, disk_mb, session, work_dir, no_s3)
};

// coordinator -> worker, the answer to Register.
struct RegisterAck {
  uint32_t protocol_version = kProtocolVersion;  // must be kProtocolVersion
  bool accepted = false;  // false: the worker must not send more; `reason` says why
  std::string reason;     // why not accepted; required (1+ chars) when !accepted; <= 4096 chars
  uint32_t heartbeat_interval_ms = 0;  // when accepted: 1-3600000; 0 allowed when not
  uint32_t lease_ms = 0;  // when accepted: > heartbeat_interval_ms, <= 86400000; silent longer
                          // than this, the worker is lost and its trials become InfraErrors
  std::vector<AttemptRef> stop;  // of Register.running, the attempts to stop (SIGTERM, grace,
                                 // no TrialExited needed); the others are re-attached; <= 4096
  bool operator==(const RegisterAck&) const = default;
  Status Validate() const;
  HPO_WIRE_FIELDS(protocol_version, accepted, reason, heartbeat_interval_ms, lease_ms, stop)
};

// worker -> coordinator, every heartbeat_interval_ms; answered with Ack{kHeartbeat, seq}.
struct Heartbeat {
  std::string worker_id;            // as in Register
  uint64_t seq = 0;                 // >= 1, +1 per heartbeat of this worker process
  uint32_t free_slots = 0;          // slots not running a trial; <= Register.slots
  std::vector<AttemptRef> running;  // every attempt running now; <= 4096, unique
  // The worker's clock (ms since the epoch) when it built this heartbeat; 0 = unknown. A
  // heartbeat read long after it was sent (behind a backlog of metric batches, or a coordinator
  // stall) says what the worker held then, not now: the coordinator judges `running` by it.
  int64_t sent_ms = 0;
  // Free space for trials (its work directory) now, as Register.disk_mb; 0 = unknown. Placement
  // checks VolumeSizeInGB against the latest (a disk that filled after registration failed
  // every training job sent there).
  uint64_t disk_mb = 0;
  bool operator==(const Heartbeat&) const = default;
  Status Validate() const;
  HPO_WIRE_FIELDS(worker_id, seq, free_slots, running, sent_ms, disk_mb)
};

// coordinator -> worker: run one attempt of one trial on one host (a multi-host trial sends one
// AssignTrial per host, differing only in current_host/instance_type/instance_group/gpus).
// Idempotent on (trial, attempt); acknowledged with Ack{kAssignTrial, trial, attempt}.
struct AssignTrial {
  std::string trial;            // training job name: [A-Za-z0-9](-*[A-Za-z0-9]){0,62}
  uint32_t attempt = 0;         // >= 1
  std::string tuning_job;       // tuning job name: [A-Za-z0-9](-*[A-Za-z0-9]){0,31}
  std::string definition_name;  // TrainingJobDefinition.DefinitionName; empty = the single
                                // TrainingJobDefinition; else 1-64, same pattern as tuning_job
  StringMap hyperparameters;    // hyperparameters.json: static and tuned, values as text;
                                // <= 256 entries, keys 1-256 bytes, values <= 32768 bytes
  std::string image;            // AlgorithmSpecification.TrainingImage: an image, or an
                                // executable's path / file:// URI; 1-4096 bytes
  std::vector<MetricDef> metric_definitions;  // <= 100, unique names
  std::string objective_metric;    // the tuning objective's metric; a metric_definitions name
  StringMap environment;           // extra environment of the training program; <= 256 entries,
                                   // keys [A-Za-z_][A-Za-z0-9_]{0,511}, values <= 32768 bytes
  uint32_t max_runtime_s = 0;      // MaxRuntimeInSeconds left to this attempt (all attempts share
                                   // it); >= 1
  uint32_t grace_period_s = 0;     // SIGTERM to SIGKILL when stopping; <= 86400 (0 = kill at once)
  std::vector<std::string> hosts;  // all hosts of the trial, "algo-1".."algo-N"; 1-1024, unique,
                                   // each [A-Za-z0-9._-]{1,64}
  std::string current_host;        // this worker's name among `hosts`
  std::string instance_type;       // the instance type this host plays
                                   // (resourceconfig.json current_instance_type); 1-64
  std::string instance_group;      // this host's instance group; empty = the trial has none;
                                   // else a name in instance_groups
  std::vector<InstanceGroupSpec> instance_groups;  // empty = one homogeneous ResourceConfig;
                                                   // else <= 16, partitioning `hosts`
  std::vector<uint32_t> gpus;         // GPU indices (GpuInfo.index) given to this attempt; empty =
                                      // none; <= 64, unique
  std::string input_mode;             // TrainingInputMode: "File" | "Pipe" | "FastFile"
  std::vector<ChannelSpec> channels;  // empty = no input data; <= 100, unique names
  std::string output_path;            // S3OutputPath (s3://, file:// or a local path); 1-1024
  std::string checkpoint_uri;         // empty = no checkpointing; <= 1024
  std::string checkpoint_local_path;  // empty = /opt/ml/checkpoints; else absolute, <= 4096
  std::string spec_json;  // the full TrainingJobDefinition as JSON text, for records and tools
                          // that need more than the fields above; may be empty; <= 1 MiB
  // Assigned ahead ("start when a slot frees"): "" / 0 = start now. Otherwise an attempt this
  // worker was assigned earlier (same job and definition, holding `gpus`): the worker prepares
  // this one (layout, data) at once but starts its program only once that attempt's program has
  // ended, in its slot; if that attempt is not running here (already ended, or unknown), at once.
  // The coordinator counts it against the job's parallelism only from then on.
  std::string after_trial;   // "" or a trial name as `trial`, never `trial` itself
  uint32_t after_attempt = 0;  // 0 when after_trial is ""; else >= 1
  // A multi-host trial: the address (host name or IP, as the worker registered it) of every
  // host in `hosts`, so the worker can make `algo-N` resolve inside the trial; {} for one host.
  // Keys are `hosts` entries, values printable ASCII 1-255.
  StringMap host_addresses;
  bool operator==(const AssignTrial&) const = default;
  Status Validate() const;
  HPO_WIRE_FIELDS(trial, attempt, tuning_job, definition_name, hyperparameters, image,
                  metric_definitions, objective_metric, environment, max_runtime_s, grace_period_s,
                  hosts, current_host, instance_type, instance_group, instance_groups, gpus,
                  input_mode, channels, output_path, checkpoint_uri, checkpoint_local_path,
                  spec_json, after_trial, after_attempt, host_addresses)
};

// worker -> coordinator: the training program of this attempt is running.
struct TrialStarted {
  std::string trial;          // as in AssignTrial
  uint32_t attempt = 0;       // >= 1
  std::string worker_id;      // as in Register
  int64_t started_at_ms = 0;  // Unix epoch ms when the program started; >= 0
  bool operator==(const TrialStarted&) const = default;
  Status Validate() const;
  HPO_WIRE_FIELDS(trial, attempt, worker_id, started_at_ms)
};

// worker -> coordinator: the attempt fetches what its program needs before it starts, as
// SageMaker's secondary statuses say: kDownloading (data channels, the previous attempts'
// checkpoints, script mode's code), then kDownloadingTrainingImage (the image, pulled before the
// program starts). Informational and not acknowledged (a lost one only leaves the status where
// it was); sent at most once per status, attempt and host, before its TrialStarted.
inline constexpr std::string_view kDownloading = "Downloading";
inline constexpr std::string_view kDownloadingTrainingImage = "DownloadingTrainingImage";
// And after it (protocol 10): kUploading, once the program completed and the worker uploads its
// model and output (algo-1 of a multi-host attempt: also after the other hosts ended), so the
// training job says Uploading while it does, not only once the exit report arrives.
inline constexpr std::string_view kUploading = "Uploading";
struct TrialStaging {
  std::string trial;      // as in AssignTrial
  uint32_t attempt = 0;   // >= 1
  std::string worker_id;  // as in Register
  std::string status;     // kDownloading, kDownloadingTrainingImage or kUploading
  std::string what;       // for people, e.g. "channels train, validation; checkpoints"; 1-4096 chars
  bool operator==(const TrialStaging&) const = default;
  Status Validate() const;
  HPO_WIRE_FIELDS(trial, attempt, worker_id, status, what)
};

// coordinator -> the worker of algo-1 of a multi-host attempt: every other host of the attempt
// has ended (sent its TrialExited, so whatever it uploaded of its /opt/ml/model and
// /opt/ml/output/data is in place). Algo-1, whose program has ended (or when it ends), merges
// those into model.tar.gz and output.tar.gz and uploads them (worker/artifacts.h): its upload
// waits for this message or a StopTrial. Not acknowledged: sent when the last other host ends and
// again with the answer to every heartbeat of that worker that still lists the attempt; a worker
// takes it once and ignores it for an attempt it does not hold.
struct GangPeersEnded {
  std::string trial;     // as in AssignTrial
  uint32_t attempt = 0;  // >= 1
  bool operator==(const GangPeersEnded&) const = default;
  Status Validate() const;
  HPO_WIRE_FIELDS(trial, attempt)
};

// worker -> coordinator: a batch of metric points, in output order. Acked cumulatively.
struct MetricPoints {
  std::string trial;                // as in AssignTrial
  uint32_t attempt = 0;             // >= 1
  uint64_t seq = 0;                 // per attempt: 1 for the first batch, +1 per batch
  std::vector<MetricPoint> points;  // 1-10000
  bool operator==(const MetricPoints&) const = default;
  Status Validate() const;
  HPO_WIRE_FIELDS(trial, attempt, seq, points)
};

// worker -> coordinator: the attempt ended (for whatever reason, stops included).
struct TrialExited {
  std::string trial;             // as in AssignTrial
  uint32_t attempt = 0;          // >= 1
  uint64_t seq = 0;              // the last MetricPoints seq sent for this attempt; 0 = none sent
  std::string status;            // exit_status::k*: "Completed" | "Failed" | "Stopped" |
                                 // "Interrupted" | "InfraError"
  std::string secondary_status;  // SageMaker SecondaryStatus: "Completed" (iff status is
                                 // Completed), "Failed", "MaxRuntimeExceeded",
                                 // "MaxWaitTimeExceeded", "Stopped", "Interrupted", ...
  int32_t exit_code = -1;  // the program's exit code 0-255; -1 = none (signalled, never started);
                           // 0 when Completed
  int32_t signal = 0;      // the signal that ended the program 1-127; 0 = none
  std::string failure_reason;  // first 1024 chars of /opt/ml/output/failure, or what went wrong;
                               // required when Failed or InfraError; <= 1024 chars
  int64_t ended_at_ms = 0;     // Unix epoch ms; >= 0
  std::vector<FinalMetric> final_metrics;  // last value of each metric seen; empty = none;
                                           // <= 1000, unique names
  bool operator==(const TrialExited&) const = default;
  Status Validate() const;
  HPO_WIRE_FIELDS(trial, attempt, seq, status, secondary_status, exit_code, signal, failure_reason,
                  ended_at_ms, final_metrics)
};

// coordinator -> worker: stop an attempt (early stopping, user stop, max runtime, lost gang).
// Acked with Ack{kStopTrial}; the attempt then ends with TrialExited{Stopped}.
// A StopTrial whose reason is exactly kStopReasonRevoked (a heartbeat's or a re-registration's
// reconciliation: the attempt was given to another worker while this one was out of touch) also
// tells the worker to upload nothing of the attempt: its artifact paths are the re-run's too.
// The reason string is frozen like the fields (any two builds of protocol version 1 agree on it).
inline constexpr const char* kStopReasonRevoked = "the coordinator no longer runs this attempt";
// A StopTrial whose reason starts with kStopReasonEvictedPrefix (hpo workers drain --now, the
// coordinator's Evict) stops an attempt that runs again elsewhere without spending a retry: as
// after an interruption notice, a single-host one uploads its checkpoints but no model.
inline constexpr const char* kStopReasonEvictedPrefix = "evicted from worker ";
// A StopTrial whose reason is exactly kStopReasonIfNotStarted applies only to an attempt whose
// program has not started (queued ahead behind another, or staging): it is dropped and ends with
// TrialExited{Stopped} as any stopped one. An attempt already running ignores it (acked; its
// TrialStarted tells the coordinator). The coordinator moves a queued attempt to a free worker so,
// without ever running it twice.
inline constexpr const char* kStopReasonIfNotStarted = "withdrawn if not started: a free worker can run it now";
// The failure reason of a TrialExited{InfraError} whose worker could not start the program (the
// program, its interpreter or a library missing on that worker): "InternalServerError: on worker
// W: cannot run ...". The coordinator tries another worker that can serve it; refused by every
// such worker, the training job's program is what is missing.
inline std::string CannotStartReason(const std::string& worker_id, const std::string& cannot_run) {
  return "InternalServerError: on worker " + worker_id + ": " + cannot_run;
}
// Whether `reason` is one of those (any lack of the worker's that keeps an attempt from starting:
// its program, or its S3 access); `program`: only a program it cannot run ("cannot run \"...").
inline bool IsCannotStartReason(std::string_view reason, const std::string& worker_id, bool program = false) {
  const std::string head = CannotStartReason(worker_id, program ? "cannot run \"" : "");
  return reason.substr(0, head.size()) == head;
}
// The failure reason of a TrialExited{InfraError} a worker process sends for an attempt whose
// program started under an earlier process on its work directory and ended with it (its journal
// holds the attempt's reports and no exit): the program was killed with that process.
inline constexpr std::string_view kEndedWithWorkerProcess =
    "InternalServerError: the worker process ended while the training program ran (it was killed, or its machine "
    "went down), and the program ended with it";
struct StopTrial {
  std::string trial;            // as in AssignTrial
  uint32_t attempt = 0;         // >= 1
  std::string reason;           // shown to users; 1-4096 chars
  uint32_t grace_period_s = 0;  // SIGTERM to SIGKILL; <= 86400 (0 = kill at once)
  bool operator==(const StopTrial&) const = default;
  Status Validate() const;
  HPO_WIRE_FIELDS(trial, attempt, reason, grace_period_s)
};

// worker -> coordinator: the worker's capacity is about to go away (spot reclaim, drain). The
// worker stops its attempts itself (each ends with TrialExited{Interrupted}).
struct InterruptionNotice {
  std::string worker_id;    // as in Register
  std::string reason;       // e.g. "spot instance-action: terminate"; 1-4096 chars
  int64_t deadline_ms = 0;  // Unix epoch ms when the capacity goes; 0 = unknown; >= 0
  // The worker itself is going (SIGTERM without --spot, the end of `hpo run`, its terminal
  // closing), not its capacity being taken: the coordinator treats both alike but records a
  // WorkerShuttingDown event, so an alert on spot notices does not fire on planned shutdowns.
  bool planned = false;
  bool operator==(const InterruptionNotice&) const = default;
  Status Validate() const;
  HPO_WIRE_FIELDS(worker_id, reason, deadline_ms, planned)
};

// Either way: acknowledges one message, identified by its type and (trial, attempt, seq).
struct Ack {
  uint16_t type = 0;     // the MsgType acknowledged: AssignTrial, TrialStarted, MetricPoints,
                         // TrialExited, StopTrial (trial-scoped), or Heartbeat,
                         // InterruptionNotice (worker-scoped)
  std::string trial;     // trial-scoped: as in AssignTrial; worker-scoped: empty
  uint32_t attempt = 0;  // trial-scoped: >= 1; worker-scoped: 0
  uint64_t seq = 0;      // Heartbeat.seq; MetricPoints.seq (cumulative, >= 1); TrialExited.seq;
                         // else 0
  bool operator==(const Ack&) const = default;
  Status Validate() const;
  HPO_WIRE_FIELDS(type, trial, attempt, seq)
};

// Either way: the answer to a message that could not be decoded or not be honoured.
struct Error {
  std::string code;          // error_code::k* or another [A-Za-z0-9]{1,64}
  std::string message;       // for people; 1-4096 chars
  uint16_t in_reply_to = 0;  // the MsgType value of the offending message, as received (may be
                             // one this build does not know); 0 = unknown
  bool operator==(const Error&) const = default;
  Status Validate() const;
  HPO_WIRE_FIELDS(code, message, in_reply_to)
};

// How long a worker process may go without running, under a lease of `lease_ms`, before its guard
// ends the training programs it left running (worker/orphans.h OrphanGuard, watch_stall): the
// lease and half again, at least 2 s more. The coordinator places a lost worker's attempt again
// only once that time (and a margin) has passed since it last heard the worker, so that the
// program and its re-run never run at once.
inline constexpr int64_t StallKillAfterMs(int64_t lease_ms) { return lease_ms + (lease_ms / 2 > 2000 ? lease_ms / 2 : 2000); }

// What the coordinator keeps of an attempt's output (per host of a multi-host attempt): lines
// numbered below kLogHeadLines, and the last kLogTailLines. A worker may leave out lines it knows
// fall between the two (numbered kLogHeadLines or more and more than kLogTailLines behind the
// newest line it read); the coordinator takes the line numbers as they come, gaps included.
inline constexpr uint64_t kLogHeadLines = 10000;
inline constexpr uint64_t kLogTailLines = 10000;
// ... and of each line, its first kStoredLogLineBytes: StoredLogLine.
inline constexpr size_t kStoredLogLineBytes = 4096;

// worker -> coordinator: a batch of the attempt's output lines (stdout and stderr, in the
// order the worker read them), so `hpo logs` works wherever the trial ran. Stored by line number
// in any order and acknowledged one batch at a time (Ack{kLogLines, seq}), not cumulatively.
struct LogLines {
  std::string trial;     // as in AssignTrial
  uint32_t attempt = 0;  // >= 1
  uint64_t seq = 0;      // per attempt: 1 for the first batch, +1 per batch
  uint64_t first_line = 0;  // 0-based number of lines[0] within the attempt's output
  std::vector<std::string> lines;  // 1-10000, each <= 64 KiB, without the newline
  bool operator==(const LogLines&) const = default;
  Status Validate() const;
  HPO_WIRE_FIELDS(trial, attempt, seq, first_line, lines)
};

// worker -> coordinator, now and then while the worker keeps the checkpoint directory
// (WORK_DIR/trials/<training job>/checkpoints) of training jobs it runs no attempt of: which of
// them have ended for good? Answered with ReleaseTrials when any have; not acknowledged (the
// worker asks again later).
struct HeldTrials {
  std::string worker_id;            // as in Register
  std::vector<std::string> trials;  // training job names; 1-kMaxHeldTrials, unique
  bool operator==(const HeldTrials&) const = default;
  Status Validate() const;
  HPO_WIRE_FIELDS(worker_id, trials)
};

// coordinator -> worker: of HeldTrials.trials, those that have ended for good (Completed, Failed
// or Stopped, no attempt to come; or of a tuning job deleted on this coordinator). The worker removes their checkpoint directories, except one
// whose last upload to CheckpointConfig.S3Uri failed: that may be the only copy, and it stays.
// Names it does not hold are ignored.
struct ReleaseTrials {
  std::vector<std::string> trials;  // training job names; 1-kMaxHeldTrials, unique
  bool operator==(const ReleaseTrials&) const = default;
  Status Validate() const;
  HPO_WIRE_FIELDS(trials)
};

// coordinator -> the worker of a host other than algo-1 of a multi-host attempt that ended for
// good (no retry follows) without algo-1's packing: algo-1's worker was lost or restarted without
// it. What the other hosts handed over under the output path for algo-1 to merge
// (<trial>/output/.hpo-hosts/, worker/artifacts.h) will never be merged: the worker removes that
// folder's attempts up to this one. Sent once the attempt's other hosts have all reported their
// exit (so none hands over after it), to the first of their workers still registered (algo-2's,
// else algo-3's, ...). Not acknowledged: a worker or coordinator that restarts before it is done
// leaves the folder, as before.
struct DiscardHandOver {
  std::string trial;        // as in AssignTrial
  uint32_t attempt = 0;     // >= 1
  std::string output_path;  // as AssignTrial.output_path: 1-1024 bytes
  bool operator==(const DiscardHandOver&) const = default;
  Status Validate() const;
  HPO_WIRE_FIELDS(trial, attempt, output_path)
};

#undef HPO_WIRE_FIELDS

// Alternatives in MsgType order: index() + 1 == the MsgType value.
using Message = std::variant<Register, RegisterAck, Heartbeat, AssignTrial, TrialStarted,
                             MetricPoints, TrialExited, StopTrial, InterruptionNotice, Ack, Error,
                             LogLines, HeldTrials, ReleaseTrials, TrialStaging, GangPeersEnded,
                             DiscardHandOver>;

MsgType TypeOf(const Message& message);

// The struct's Validate().
Status Validate(const Message& message);

// Whether `id` is a worker id as every message carries it: 1-128 characters of A-Z a-z 0-9 and
// . _ : @ - (what the coordinator accepts anywhere a worker is named, a cordon included).
bool IsWorkerId(std::string_view id);

// OK when theirs == kProtocolVersion, else FailedPrecondition "protocol version mismatch: this
// build speaks 1, peer speaks N; upgrade the older side".
Status CheckProtocolVersion(uint32_t theirs);

// The two frames of `message`. Never fails and does not validate: a sender building a message
// from outside input (a spec, a file) calls Validate() first, or the peer will reject it.
std::vector<std::string> EncodeFrames(const Message& message);

// Decodes and validates one received message. Never throws, whatever the bytes.
// Errors:
// - InvalidArgument naming the message type and field ("AssignTrial.attempt: must be >= 1",
//   "MetricPoints.points[3].value: must be finite") for wrong frame count or type-frame length,
//   unknown types, bodies that are not one msgpack map or exceed the limits, wrong value types,
//   missing fields, duplicate keys and invalid values;
// - FailedPrecondition (CheckProtocolVersion's message) for a Register or RegisterAck of another
//   protocol version; this is checked before anything else in the body.
// When decoding fails and `reply` is given, *reply is set to the Error to send back (code from
// error_code, the failure's message, in_reply_to the received type value); it is untouched on
// success.
Result<Message> DecodeFrames(const std::vector<std::string>& frames, Error* reply = nullptr);
Result<Message> DecodeFrames(std::string_view type_frame, std::string_view body,
                             Error* reply = nullptr);

// Makes arbitrary bytes (a failure file, a program's output) fit a wire text field: invalid UTF-8
// sequences become U+FFFD, NUL bytes are dropped, and the text is cut to at most max_chars code
// points (limits::kMaxFailureReasonChars for TrialExited.failure_reason).
std::string SanitizeText(std::string_view raw, size_t max_chars);

// What the coordinator keeps of one output line (as a LogLines line, SanitizeText'd): the line
// itself up to kStoredLogLineBytes; a longer one cut at a character to at most that, then
// " ... [N more bytes in the worker's trial.log, which keeps a line's first and last 64 KiB]", N
// the bytes of `line` after the cut. The worker cuts each line so before it sends it (it alone
// knows the whole line: the coordinator's count was of a copy cut before, 12288 for any line
// over 16 KiB); a text that already ends so is returned as it is.
std::string StoredLogLine(std::string_view line);

}  // namespace hpo::proto::wire
