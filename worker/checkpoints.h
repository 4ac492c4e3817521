// worker/checkpoints.h: a trial's checkpoint directory kept in step with CheckpointConfig.S3Uri.
//
// What it is: SageMaker's checkpoint contract (reference/sagemaker-semantics.md, managed spot and
// checkpoints): when an attempt starts, the objects under the checkpoint URI are copied into the
// local checkpoint directory (default /opt/ml/checkpoints); while it trains, new and changed
// local files are uploaded and local deletes are mirrored; when it ends (also when interrupted,
// after the program's grace period) a last pass runs. So an attempt that starts on any worker
// resumes from what the previous attempt wrote, and a worker killed without notice loses at most
// what was written since the last pass.
//
// Destinations: `s3://bucket/prefix`, `file:///dir` or an absolute local path (a shared
// filesystem), all through common/object_store.h. Objects are `<destination>/<path relative to the local directory>`;
// the prefix is taken as a directory (a trailing '/' is implied, so `.../ASHA-1` never picks up
// `.../ASHA-10`'s objects, the trap SageMaker documents).
//
// Files: regular files only (symlinks and special files are skipped); a file counts as changed
// when its size or modification time (ns) differs from what was last uploaded. A local copy is
// written under a temporary name and renamed, so a reader of the destination never sees half a
// file (the object store's atomic writes). Keys or paths that would leave the directory (`..`,
// absolute) are refused with an error naming them.
//
// Errors: IoError (local files, naming the path) and what S3Client returns; a failed pass leaves
// the failed files marked as not uploaded, so the next pass tries them again.
//
// Thread safety: Restore and Sync serialize on an internal mutex; the object may be used from
// several threads (the periodic pass on a pool thread, the last one on the program's monitor
// thread).
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>

#include "common/status.h"
#include "common/object_store.h"

struct stat;
struct timespec;

namespace hpo::worker {

// The same mirroring serves /opt/ml/output/intermediate (worker/artifacts.h), which SageMaker
// uploads during training but never deletes from: mirror_deletes false.
struct CheckpointSyncOptions {
  bool mirror_deletes = true;                   // a file deleted locally is deleted at the destination
  std::string what = "CheckpointConfig.S3Uri";  // names the destination in errors
};

struct CheckpointStats {
  size_t files = 0;     // files copied (restore) or uploaded (sync)
  size_t deleted = 0;   // objects removed at the destination (sync)
  uint64_t bytes = 0;
};

class CheckpointSync {
 public:
  // `uri`: the destination; `local_dir`: the directory the program sees as its checkpoint
  // directory (created when missing). `s3` is called only for an s3:// destination.
  // Errors: InvalidArgument for a URI that is none of the three forms.
  [[nodiscard]] static Result<std::unique_ptr<CheckpointSync>> Create(
      const std::string& uri, const std::string& local_dir, std::function<Result<const S3Client*>()> s3,
      CheckpointSyncOptions options = {});

  // Makes the local directory hold exactly what the destination holds (its previous content is
  // removed, once the destination could be listed: a listing that fails leaves the directory as
  // it was). An empty or missing destination leaves an empty directory. An object listed but
  // gone by the time it is read (the previous attempt's last pass, a lifecycle rule) is left out,
  // not an error.
  [[nodiscard]] Result<CheckpointStats> Restore();

  // One pass: uploads new and changed files, deletes at the destination what was uploaded and
  // is gone locally (unless mirror_deletes is off).
  [[nodiscard]] Result<CheckpointStats> Sync();

  // The reverse of Restore, for a local directory known to be newer than the destination (an
  // earlier attempt here whose last upload failed): a pass that also deletes at the destination
  // whatever the directory does not hold (unless mirror_deletes is off), as the files this
  // object never uploaded (another process's passes) would otherwise stay and be restored beside
  // the newer ones.
  [[nodiscard]] Result<CheckpointStats> Adopt();

  const std::string& uri() const { return uri_; }
  const std::string& local_dir() const { return local_dir_; }

 private:
  CheckpointSync() = default;
  struct FileState {
    uint64_t size = 0;
    int64_t mtime_ns = 0;
    bool operator==(const FileState&) const = default;
    static FileState Of(const struct ::stat& st);         // its size and mtime
    static int64_t Nanos(const struct ::timespec& t);      // as nanoseconds
  };
  std::string uri_;
  std::string local_dir_;
  CheckpointSyncOptions options_;
  ObjectLocation dest_;     // the destination (common/object_store.h)
  std::mutex mu_;
  // Relative path -> state at the destination; kUnknown after a failed upload (an older copy may
  // be there): never equal to a file's state, so the next pass uploads it again, or deletes the
  // object once the file is gone.
  std::map<std::string, FileState> synced_;
  static constexpr FileState kUnknown{~uint64_t{0}, -1};
  // A file whose mtime was less than this before its copy began may be rewritten within the same
  // timestamp tick, unseen by size and mtime: it is sent again by the next pass (Sync).
  static constexpr int64_t kRacyNs = 50'000'000;
};

}  // namespace hpo::worker
