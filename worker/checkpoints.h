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
// Files: regular files, and links to regular files inside the directory by a relative path
// (uploaded as the file they name, as `aws s3 sync` does for files: Lightning's last.ckpt;
// restored as a copy); other links (to directories too, which `aws s3 sync` would follow) and
// special files are skipped (SkippedLinks names the links); a file counts as changed
// when its size or modification time (ns) differs from what was last uploaded. A local copy is
// written under a temporary name and renamed, so a reader of the destination never sees half a
// file (the object store's atomic writes). Keys or paths that would leave the directory (`..`,
// absolute) are refused with an error naming them.
//
// Files still being written: a trainer that rewrites its checkpoint in place (torch.save to the
// same name every epoch, as many SageMaker examples do) is mid-write for seconds, and a pass that
// sent it then put a torn copy over the whole one at the destination; a worker lost before the
// next pass left the next attempt only that torn copy. With `settle_ns` set, a pass while the
// program runs (SyncPass::kRunning) sends a changed file only once it has settled: no process has
// it open for writing (the kernel refuses a read lease then: probe_writers), or, where the kernel
// cannot tell (NFS), unchanged for settle_ns and seen as it is now (size, mtime) by the previous
// pass too (a truncation shows its new size before its new mtime, so one look in between saw an
// empty file with a settled mtime). A copy during which the file changed does not take effect (a
// per-file CommitGate, common/object_store.h). Such a pass mirrors no delete while it holds a file
// back (a trainer that deletes its old checkpoint before writing the new one keeps the old at the
// destination until the new is whole). A file held back longer than `max_hold_ns` (a log kept
// open, or a file rewritten every few hundred ms where the kernel cannot tell) goes once no write
// is under way (its mtime older than kRacyNs; a pass waits up to kQuietWaitNs for that), the
// copy still refused if a write starts; deletes wait while any file held has been held less. The pass after the program's end sends everything
// (kEnded), except after a program killed by a signal (kKilled: the grace period ran out, or it
// had no SIGTERM handler): a file changed within settle_ns of that end, or open for writing when
// the last pass looked or when the program was told to stop (NoteWriters), was most likely cut
// off mid-write, so it is held back for good, with the
// deletes, and the destination keeps its last whole copy (the next attempt restores that;
// CheckpointStats::held_paths names them). A program that writes one checkpoint through several
// opens (shell appends) is whole only at its last close: such a program should write to a new
// name and rename it.
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
#include <set>
#include <string>
#include <vector>

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
  int64_t settle_ns = 0;                        // see "Files still being written" (0: send files as they are)
  bool probe_writers = true;                    // ... ask the kernel whether a file is open for writing
  int64_t max_hold_ns = 10'000'000'000;         // ... and how long a pass while it runs holds one back at most
};

// Which pass (see "Files still being written").
enum class SyncPass {
  kRunning,  // the program runs
  kEnded,    // the program ended by itself (an exit status), or it never ran here: everything goes
  kKilled,   // a signal ended the program: what it was writing then stays held back
};

struct CheckpointStats {
  size_t files = 0;     // files copied (restore) or uploaded (sync)
  size_t deleted = 0;   // objects removed at the destination (sync)
  uint64_t bytes = 0;
  std::vector<std::string> held_paths;  // files held back as still being written (sync)
  size_t held() const { return held_paths.size(); }
};

// Why a worker's passes cannot tell which files under `dir` are open for writing (a filesystem
// without file leases, such as NFS; a worker without CAP_LEASE where it does not own the files),
// so that they fall back to the settle time and two looks; "" when they can. Probes with a
// temporary file in `dir`.
std::string WriterProbeProblem(const std::string& dir);

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
  // is gone locally (unless mirror_deletes is off); files still being written wait as `pass`
  // says. `ended_ns` (kKilled): when the program ended, on CLOCK_REALTIME (files' mtimes are on
  // it), as ExitInfo::ended_unix_ns records it; 0 = now.
  [[nodiscard]] Result<CheckpointStats> Sync(SyncPass pass = SyncPass::kEnded, int64_t ended_ns = 0);
  // Looks now which files some process has open for writing, and remembers them for a kKilled
  // pass (held back as cut off mid-write). Called just before the program is told to stop: the
  // periodic passes look about once a second, and a save between two of them that a signal cut
  // in half went up whole-looking over the last good copy. Does not wait for a pass under way.
  void NoteWriters();
  // The files the last Sync held back (CheckpointStats::held_paths), also when it failed.
  std::vector<std::string> LastHeld();
  // Links the passes so far skipped, each once, as last seen ("name -> target (why)": absolute,
  // outside the directory, to a directory, to nothing).
  std::vector<std::string> SkippedLinks();
  // Whether the destination holds (or, after a failed upload, may hold) a copy of the file at
  // `rel`, as this object restored or uploaded it: a held file without one is not there at all.
  bool AtDestination(const std::string& rel);

  // The reverse of Restore, for a local directory known to be newer than the destination (an
  // earlier attempt here whose last upload failed): a pass that also deletes at the destination
  // whatever the directory does not hold (unless mirror_deletes is off), as the files this
  // object never uploaded (another process's passes) would otherwise stay and be restored beside
  // the newer ones. `held`: files that attempt's last pass held back as cut off mid-write
  // (SyncPass::kKilled), torn here: each is replaced by the destination's whole copy (removed when
  // the destination has none or it cannot be fetched, never deleted there), so the next attempt
  // resumes from the newer files without a torn one.
  [[nodiscard]] Result<CheckpointStats> Adopt(const std::vector<std::string>& held = {});

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
  // Since when (CLOCK_REALTIME ns) a pass has held back each file, and the deletes (0: not held).
  std::map<std::string, int64_t> held_since_;
  // What the last pass while the program ran saw of each changed file it looked at, and which
  // of them some process had open for writing.
  std::map<std::string, FileState> seen_;
  std::set<std::string> open_for_writing_;
  std::mutex noted_mu_;                  // NoteWriters' own: it must not wait for a pass
  std::set<std::string> noted_writers_;  // open for writing when the program was told to stop
  std::vector<std::string> last_held_;
  std::map<std::string, std::string> skipped_links_;  // name -> "-> target (why)", the latest
  // A file whose mtime was less than this before its copy began may be rewritten within the same
  // timestamp tick, unseen by size and mtime: it is sent again by the next pass (Sync).
  static constexpr int64_t kRacyNs = 50'000'000;
  // How long one pass waits, in all, for a moment without writes in files held back past
  // max_hold_ns (Sync).
  static constexpr int64_t kQuietWaitNs = 2'000'000'000;
};

}  // namespace hpo::worker
