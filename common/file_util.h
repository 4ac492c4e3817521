// common/file_util.h: whole-file reads, durable whole-file writes, and exclusive locks on
// directories.
//
// ReadFile never throws: a missing, unreadable or oversized file is an IoError naming the path
// and the OS reason. WriteFileAtomically writes a temp file beside the target, fsyncs it, renames
// it over the target and fsyncs the directory, so a crash leaves either the old or the new file.
// LockDirectory holds an flock(2) on DIR/lock for the life of the returned object: the kernel
// drops it when the process ends however it ends, so a crash leaves no stale lock.
#pragma once

#include <sys/types.h>

#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <map>
#include <string>

#include "common/status.h"

namespace hpo {

// Reads the whole file. Fails for files larger than max_bytes (default 64 MiB).
Result<std::string> ReadFile(const std::string& path, std::size_t max_bytes = 64u << 20);

// kDurable: on disk when the call returns (fsync of the file and of its directory).
// kAtomicOnly: readers see the old or the whole new content, but a machine crash may lose the
// write; for files that are rewritten anyway after a crash (a trial attempt's configuration),
// where an fsync would only add latency.
enum class Durability { kDurable, kAtomicOnly };

// Replaces path's content with data atomically (temp file + rename), and durably unless told.
// The file gets `mode` (less the umask) from its first byte: 0600 keeps a secret unreadable
// to others throughout.
Status WriteFileAtomically(const std::string& path, const std::string& data,
                           Durability durability = Durability::kDurable, unsigned mode = 0644);

// A process's state ('R', 'S', 'Z', ...), parent and process group, from /proc/PID/stat (read
// after the last ')': the command name may hold spaces and parentheses). False when the process
// is gone or its stat cannot be read.
struct ProcInfo {
  pid_t ppid = 0;
  pid_t pgid = 0;
  char state = '?';
};
bool ReadProcStat(pid_t pid, ProcInfo* out);

// Removes the temporaries a killed writer left in `dir`: files named `prefix` + PID + "-" + N (or
// + PID alone) whose PID is no live process (or a zombie). Writers that stage a file under a temporary name
// beside its target call it first, so a worker killed mid-upload leaves no half-written
// model.tar.gz.tmp-... in the job's output. Best effort: errors are ignored.
void RemoveStaleTemporaries(const std::string& dir, const std::string& prefix);

// Creates `dir` and its missing parents; `dir` itself, when this made it, with mode 0700 (a state
// or work directory holds specs with their secrets and training logs: its owner's only). An
// existing one is left as it is. IoError naming the directory when it cannot be made.
Status CreatePrivateDirectory(const std::string& dir);

// FailedPrecondition, saying what to do, when `dir` (its links followed) belongs to another user
// than this process's (root's is fine), or its group or others may write in it: a process that
// runs training programs there as root would create files in it and follow links that whoever
// could write there planted (a `trials` link to another user's directory). Ok when it does not
// exist (CreatePrivateDirectory then makes it this user's only).
Status CheckOwnDirectory(const std::string& dir, const std::string& what);

// The nearest of `path` and its ancestors that exists (a dangling link counts); "" when none does.
std::string NearestExisting(const std::string& path);
// InvalidArgument "F is a file, where the path PATH needs a directory" when the nearest existing
// of `path` and its ancestors is not a directory (links followed): a spec's local path that runs
// through a file, the job's mistake (found before training, not retried as the worker's); Ok
// otherwise, also when nothing of it exists.
Status NoFileInTheWay(const std::string& path);

// A file descriptor, closed when destroyed.
class OwnedFd {
 public:
  explicit OwnedFd(int fd = -1) : fd_(fd) {}
  ~OwnedFd();
  OwnedFd(OwnedFd&& o) noexcept : fd_(o.fd_) { o.fd_ = -1; }
  OwnedFd& operator=(OwnedFd&& o) noexcept;
  OwnedFd(const OwnedFd&) = delete;
  OwnedFd& operator=(const OwnedFd&) = delete;
  int get() const { return fd_; }

 private:
  int fd_;
};

// Files a training program owns (its model, output, checkpoint and intermediate trees) may be
// swapped while the worker reads them. OpenRegularFile opens `path` for reading only when it is
// a regular file: a symbolic link (as its last component) is not followed, and a FIFO, socket or
// device is neither waited on nor read (opened O_NONBLOCK, then fstat). `size` gets the size of
// the file opened. Errors: NotFound when it is gone, InvalidArgument when it is a link or not a
// regular file, IoError otherwise; each names the path.
Result<OwnedFd> OpenRegularFile(const std::string& path, uint64_t* size = nullptr);
// As OpenRegularFile, for `rel` (a '/'-separated relative path, no "..") under the directory
// `root`: root itself and each directory on the way are opened with O_NOFOLLOW, each from the
// one before, so a link anywhere on the way (a directory the program renamed and replaced with
// a link after a listing) is not followed. InvalidArgument when one is a link or not a directory.
Result<OwnedFd> OpenRegularFileBeneath(const std::string& root, const std::string& rel, uint64_t* size = nullptr);
// Reads exactly `n` bytes from `fd` into `buf`; IoError naming `path` when the file ends sooner
// (it shrank while it was read) or a read fails.
Status ReadExactly(int fd, char* buf, std::size_t n, const std::string& path);
// The regular files under the directory `root`, as the worker uploads a tree the program wrote:
// each name (its '/'-separated path relative to root) with the relative path of the file to read
// for it (OpenRegularFileBeneath), the same but for a link. A link whose target, by a relative
// path, is a regular file inside root (Lightning's save_last="link": last.ckpt -> epoch=3.ckpt)
// stands for that file, as `aws s3 sync` uploads a link's file; no link is followed on the way
// to it, so nothing outside root is read. Other links (absolute, leaving root, through or to a
// link, to a directory, or to nothing) are left out, and `skipped` gets each one's name and
// "-> target (why)"; an entry that is a file again is erased from it. Special files are left out.
// Empty when root does not exist; InvalidArgument when root is a link or not a directory (the
// program replaced it: not followed, and not taken for empty); IoError when it cannot be listed.
Result<std::map<std::string, std::string>> FilesBeneath(const std::string& root,
                                                       std::map<std::string, std::string>* skipped = nullptr);
// Whether `path` is a directory and not a symbolic link to one. The worker walks a program's
// trees only through real directories: a link there would take it outside the trial.
bool IsRealDirectory(const std::string& path);

// An exclusive lock on a directory, held until destroyed: a flock on the directory itself and
// one on its lock file (DIR/lock), which holds the holder's pid and command for the message
// another process gets. The directory's own lock holds when the lock file is deleted: with only
// the file's, `rm DIR/lock` let a second coordinator share the database, and it re-queued the
// first one's running training jobs as lost.
class DirectoryLock {
 public:
  ~DirectoryLock();
  DirectoryLock(const DirectoryLock&) = delete;
  DirectoryLock& operator=(const DirectoryLock&) = delete;
  // OK while `file` (a path in the directory, e.g. its database) is still the file it was when
  // Watch named it; FailedPrecondition naming it once it was deleted or replaced (its records
  // would vanish at the next start). OK when nothing is watched.
  Status Watch(const std::string& file);
  Status StillThere() const;

 private:
  friend Result<std::unique_ptr<DirectoryLock>> LockDirectory(const std::string&, const std::string&);
  DirectoryLock(int fd, int dir_fd) : fd_(fd), dir_fd_(dir_fd) {}
  int fd_;
  int dir_fd_;
  std::string watched_;
  unsigned long long watched_dev_ = 0, watched_ino_ = 0;
};

// Takes the lock without waiting. FailedPrecondition when another process holds it ("DIR is in
// use by pid N (WHAT)"); IoError when the lock file cannot be opened. `what` names this holder,
// e.g. "hpo run spec.yaml".
Result<std::unique_ptr<DirectoryLock>> LockDirectory(const std::string& dir, const std::string& what);

// Whether some process holds DIR's lock (LockDirectory), told from /proc/locks without taking
// any lock: a reader that took one for a moment could make a coordinator starting then refuse the
// directory as in use. nullopt when it cannot tell (no /proc/locks, DIR unreadable).
std::optional<bool> DirectoryLocked(const std::string& dir);

}  // namespace hpo
