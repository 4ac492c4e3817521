// worker/volume_watch.h: ResourceConfig.VolumeSizeInGB enforced while a training program runs.
//
// What it is: SageMaker gives a training job an ML storage volume of VolumeSizeInGB; File-mode
// input data, /opt/ml/model, /opt/ml/output and the checkpoint directory live on it, and a job
// that writes more runs out of space. A worker has one filesystem for all its trials, so it
// measures instead: while the program runs, a VolumeWatch walks the attempt's directories every
// `interval` (du-style: the blocks allocated to every file and directory, each inode once,
// symlinks not followed, other filesystems not entered) and reports the first measurement above
// the limit. The agent (worker/agent.h) then stops the program (SIGTERM, its grace period,
// SIGKILL) and the attempt ends Failed with VolumeExceededReason: the job's fault, like a full
// volume on SageMaker, not an infrastructure error that would be retried.
//
// What counts: the attempt's root (its /opt/ml: File-mode channels, model, output, and whatever
// else the program writes there) and the trial's checkpoint directory. Not counted (`skip`):
// FastFile channels and fileSystemDataSource channels, which SageMaker does not put on the volume
// (streamed from S3, or mounted). The worker's own files (trial.log, the channel cache) are
// outside these directories.
//
// Cost: one directory walk per interval (default 5 s) per running attempt, on the watch's own
// thread; readdir + fstatat per entry, so about 1 ms per thousand files.
//
// Units: VolumeSizeInGB is in GiB (2^30 bytes, as the coordinator's placement check reads it);
// `unit_bytes` replaces 2^30 for tests (the worker's hidden --volume-unit-bytes), since
// VolumeSizeInGB must be an integer >= 1.
//
// Errors: entries that vanish or cannot be read during a walk are skipped (the program may be
// deleting files); DiskUsage fails with IoError only when a directory to measure cannot be
// opened (a missing one counts as empty).
//
// Thread safety: Exceeded() and used_bytes() may be called from any thread; the destructor stops
// and joins the watch's thread (a walk in progress stops at its next entry).
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "common/status.h"

namespace hpo::worker {

struct VolumeLimit {
  std::vector<std::string> dirs;  // measured (absolute paths on the worker)
  std::vector<std::string> skip;  // subtrees of `dirs` not counted
  int64_t volume_gb = 0;          // ResourceConfig.VolumeSizeInGB; >= 1
  uint64_t unit_bytes = 1ull << 30;
  uint64_t limit_bytes() const { return static_cast<uint64_t>(volume_gb) * unit_bytes; }
};

// Bytes allocated under `dirs`, `skip` subtrees left out (see "What counts"). `stop`, when set,
// ends the walk early (the result is then partial).
[[nodiscard]] Result<uint64_t> DiskUsage(const std::vector<std::string>& dirs, const std::vector<std::string>& skip,
                                         const std::atomic<bool>* stop = nullptr);

// "ClientError: the training job used 1.3 GB of its volume (input data, model, output and
// checkpoints), more than ResourceConfig.VolumeSizeInGB=1; ask for a larger volume" (GB =
// limit.unit_bytes, normally GiB).
std::string VolumeExceededReason(const VolumeLimit& limit, uint64_t used_bytes);

class VolumeWatch {
 public:
  // Starts measuring at once, then every `interval`.
  VolumeWatch(VolumeLimit limit, std::chrono::milliseconds interval);
  ~VolumeWatch();
  VolumeWatch(const VolumeWatch&) = delete;
  VolumeWatch& operator=(const VolumeWatch&) = delete;

  // "" while every measurement was within the limit; else VolumeExceededReason of the first one
  // that was not (measuring then stops).
  std::string Exceeded() const;
  uint64_t used_bytes() const { return used_.load(); }  // the last measurement

 private:
  void Loop();

  const VolumeLimit limit_;
  const std::chrono::milliseconds interval_;
  std::atomic<uint64_t> used_{0};
  std::atomic<bool> stop_{false};
  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::string exceeded_;
  std::thread thread_;  // last: started once the members above exist
};

}  // namespace hpo::worker
