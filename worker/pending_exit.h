// worker/pending_exit.h: an attempt whose program has ended but whose report waits for its
// uploads, kept on disk so that the next worker process on the work directory can finish it.
//
// What it is for: when a training program ends, its checkpoints, output/intermediate and
// artifacts (model.tar.gz, output.tar.gz) are uploaded before its TrialExited is sent, and the
// upload is fenced: it waits until the coordinator confirms that the attempt is still this
// worker's (another worker may have re-run it into the same output path). During a coordinator
// outage that wait lasts as long as the outage. A worker killed meanwhile (a node reboot, an OOM
// kill, SIGKILL from a scheduler) used to leave nothing saying the program had finished: its
// successor removed the attempt's tree and the coordinator re-ran (or failed) a training job
// that had completed. Now the report, complete but for the uploads' outcome, and what the uploads
// need are written to <attempt_dir>/exit-pending.json before the wait; the next worker process
// keeps the tree, re-registers holding the attempt, and uploads and reports once the coordinator
// confirms (worker/agent.cc ResumePendingExits). The file goes once the TrialExited is in the
// outbox journal (worker/outbox_journal.h), which takes over from there.
//
// Durability: written to a temporary file and renamed over (never half written); no fsync: it
// survives the worker process, not a power cut, like the journal.
//
// Thread safety: free functions on files; callers keep one writer per attempt directory.
#pragma once

#include <optional>
#include <string>

#include "common/status.h"
#include "proto/messages.h"
#include "worker/artifacts.h"

namespace hpo::worker {

inline constexpr const char* kPendingExitFile = "exit-pending.json";

struct PendingExit {
  // The report as it stands when the program has ended: trial, attempt, seq, status, secondary
  // status, exit code, signal, failure reason, final metrics and ended_at_ms (when it ended).
  proto::wire::TrialExited exit;
  std::optional<ArtifactSpec> artifacts;  // OutputDataConfig.S3OutputPath given: what to upload
  bool intermediate = false;              // upload <root>/output/intermediate first (with artifacts)
  std::string checkpoint_uri;             // CheckpointConfig.S3Uri ("" = none)
  std::string checkpoint_dir;             // the local directory synced to it
};

// Writes <attempt_dir>/exit-pending.json. Errors: IoError naming the file (the caller logs it: the
// report is then only in memory, as before).
[[nodiscard]] Status WritePendingExit(const std::string& attempt_dir, const PendingExit& pending);

// Reads it. nullopt when there is none; InvalidArgument naming the file when it cannot be read
// or is not one this code wrote (the caller treats the attempt as ended without a report).
[[nodiscard]] Result<std::optional<PendingExit>> ReadPendingExit(const std::string& attempt_dir);

// Removes it (nothing when there is none).
void RemovePendingExit(const std::string& attempt_dir);

}  // namespace hpo::worker
