// worker/process.h: one training program, run as its own process group.
//
// What it is: the local process side of a trial attempt. Start() resolves and checks the program,
// starts a child that shares the worker's memory until it execs (clone(CLONE_VM | CLONE_VFORK),
// as posix_spawn does: no copy of the worker's address space, no process-wide locks taken, the
// calling thread waits the few system calls until the exec), makes the child the leader of a
// new session and process group (setsid), points its
// stdin at /dev/null and its stdout and stderr at two pipes, closes every other inherited
// descriptor, resets signal dispositions and the signal mask, changes to the working directory
// and execs the program with exactly the given environment. Whatever prevents the exec
// (missing program, not executable, bad interpreter, bad working directory) is reported by
// Start() itself as an error naming the program, never as a mysterious exit code.
//
// One monitor thread per process then:
//   - reads stdout and stderr (two pipes, poll()), splits them on '\n', appends each line plus
//     '\n' to the log file (the line as written, no prefix; lines of the two streams do not
//     interleave within a line) and calls on_line(stream, line) for it, in the order the lines
//     were read. A final line without '\n' is delivered at end of file. A line of up to twice
//     max_line_bytes is delivered whole (its first and last max_line_bytes cover it); a longer
//     one is cut: its first max_line_bytes bytes are delivered, then its end as a line
//     of its own: what follows its last '\r' (a progress bar's final redraw, where Keras puts
//     " - val_loss: ..."), or without a '\r' its last max_line_bytes bytes (a metric printed at
//     the end of a long line); what lies between is dropped (from the callback and the log alike);
//   - notices the program's exit at once (pidfd; polling every poll_interval where the kernel
//     has no pidfd), then SIGKILLs whatever the program left running in its process group (as a
//     container's teardown would), then reaps the program, then collects the remaining output:
//     until both pipes are closed, or for at most output_drain when something that left the
//     group (a daemon that called setsid) still holds them;
//   - sends SIGKILL to the whole group when a Stop() grace period runs out.
// Signals to the group are only ever sent while the program is not yet reaped, so its process
// id, which is the group id, cannot have been reused by an unrelated process.
//
// Isolation (ProcessSpec::isolation, Linux, needs CAP_SYS_ADMIN, i.e. a root worker): before the
// exec the child may enter a new mount namespace, make every mount in it private (nothing it
// mounts propagates back to the host) and apply bind mounts in order (each optionally read-only),
// and/or enter a new network namespace in which only the loopback interface is up. This is how a
// trial sees its own root at /opt/ml while parallel trials on one host do not collide, and how
// enableNetworkIsolation is honoured without a container. A failure there (EPERM without the
// capability, a missing mount point) is reported by Start() as an error naming the step. The
// monitor thread holds a reference to the program's mount namespace until after on_exit, so that
// the kernel unmounts it (which waits for an RCU grace period) there rather than in the program's
// exit, before anyone hears of it.
//
// Stopping: Stop(grace) sends SIGTERM to the whole process group (the program and every
// descendant that stayed in its group, such as `sh -c 'a & b'`), and SIGKILL to the group once
// `grace` has passed and the program or anything of its group still runs. A program that dies
// of the SIGTERM while others of its group live on (a wrapper script that did not exec its
// trainer) leaves them the rest of the grace: the group is killed, and the program reaped, when
// they have ended or the grace is over. It does not block.
//
// Lifetime: the destructor SIGKILLs the group if the program still runs (no grace; call Stop()
// and Wait() first for a graceful end), reaps it, and joins the monitor thread: no zombies, no
// leaked threads or descriptors, and no callback runs after the destructor returns.
//
// Requirements on the embedding process: SIGCHLD must not be ignored (SIG_IGN makes the kernel
// reap children itself; the exit status is then unknown and reported as exit_code -1, signal 0),
// and nothing else may waitpid(-1, ...) for all children.
//
// Thread safety: Stop(), TryWait(), Wait() and pid() may be called from any threads, also
// concurrently. on_line runs on the monitor thread, one line at a time; it must not call Wait()
// or destroy this TrialProcess (that would deadlock), but Stop() and TryWait() are fine. A slow
// callback slows down reading, and the program blocks once its pipe buffer is full.
#pragma once

#include <sys/types.h>

#include <atomic>
#include <chrono>
#include <cstddef>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "common/status.h"

namespace hpo::worker {

enum class Stream { kStdout, kStderr };

// Called once per output line, without the '\n'.
using LineCallback = std::function<void(Stream stream, const std::string& line)>;

// One bind mount in the child's private mount namespace.
struct BindMount {
  std::string source;      // an existing file or directory on the host
  std::string target;      // an existing mount point, as seen after the earlier mounts
  bool read_only = false;  // remounted read-only
};

struct Isolation {
  // A new mount namespace, with "/" made recursively private and `mounts` applied in order.
  bool mount_namespace = false;
  std::vector<BindMount> mounts;  // only with mount_namespace
  // A new network namespace with only "lo" up: no route leaves the machine or reaches the host.
  bool network_namespace = false;
  // With mount_namespace: a record of the new namespace that the child writes before it runs the
  // program, so that it exists from the program's first instruction on: the file
  // `<namespace_record_dir>/<inode>` (the namespace's inode number, ExitInfo::mount_ns) holding
  // `namespace_record`, written under a temporary name and renamed into place. The directory
  // must exist. A failed start removes it again; one that cannot be written does not stop the
  // start (TrialProcess::namespace_record_error says why). Empty directory: no record. (The
  // worker's namespace marks, worker/orphans.h: a worker killed a moment after the start still
  // leaves the mark by which the next sweep finds what the program started.)
  std::string namespace_record_dir;
  std::string namespace_record;
};

struct ProcessSpec {
  // argv[0] is the program: a path containing '/' is used as is (relative paths are relative to
  // the worker's, not the program's, working directory); a bare name is looked up in the PATH
  // of `env` (not the worker's), like execvpe. Must not be empty.
  std::vector<std::string> argv;
  // The complete environment of the program: nothing is inherited from the worker. Names must be
  // non-empty and contain neither '=' nor NUL.
  std::map<std::string, std::string> env;
  // Working directory of the program; empty = the worker's own.
  std::string cwd;
  // Every stdout and stderr line is appended to this file (created 0644 if missing; its
  // directory must exist); empty = no log file.
  std::string log_path;
  // Namespaces and mounts of the child (see "Isolation" above); default none. The working
  // directory is entered after the mounts, so it may name a path inside them.
  Isolation isolation;
};

// Timings and limits, with defaults suitable for production (STYLE: timings come in from the
// caller; tests pass short ones).
struct ExitInfo {
  int exit_code = -1;          // the program's exit status; -1 when a signal ended it
  int signal = 0;              // the signal that ended it; 0 when it exited
  bool stopped_by_us = false;  // Stop() was called before the program ended
  std::chrono::milliseconds duration{0};  // from the start to the exit being noticed
  // When the exit was noticed, on CLOCK_REALTIME (the clock of files' mtimes: what the program
  // wrote just before a signal ended it, worker/checkpoints.h SyncPass::kKilled); 0 = unknown.
  int64_t ended_unix_ns = 0;
  // The program's private mount namespace (Isolation::mount_namespace), by its inode number as
  // /proc/PID/ns/mnt names it ("mnt:[N]"); 0 without one. Whatever is still in it after the exit
  // was started by the program, however it left the group and whatever it did to its environment
  // (worker/orphans.h KillAttemptLeftovers).
  std::uint64_t mount_ns = 0;
};

struct ProcessOptions {
  // How often the exit is checked where the kernel offers no pidfd (Linux < 5.3).
  std::chrono::milliseconds poll_interval{20};
  // After the program exited and its group was killed: how long to keep reading output still
  // held open by processes that left the group, before giving up on it.
  std::chrono::milliseconds output_drain{2000};
  // Longer lines are cut (see above).
  std::size_t max_line_bytes = 64 * 1024;
  // The log file takes at most this many bytes (0: no limit); then one line says the rest is not
  // kept, and lines still reach the callback (metrics are parsed from all of them). A print in
  // a hot loop (16 MB/s) filled the worker's disk, failing every other training job there.
  std::uint64_t max_log_bytes = 512ull << 20;
  // Called on the monitor thread right after TryWait() starts returning the exit, with that exit
  // (so a caller can wake its own loop instead of polling, or do the first steps after the exit
  // right there). It may take its time (the destructor waits for it), but must not call Wait() or
  // destroy this object.
  std::function<void(const ExitInfo&)> on_exit;
};

class TrialProcess {
 public:
  // Starts the program. On success the program has been exec'd (or at least its exec did not
  // fail) and the monitor thread runs. Errors, with nothing left running and no descriptor open:
  //   InvalidArgument: empty argv, a bad environment name, a program the kernel refuses to exec
  //     (ENOEXEC: a script without a #! line), or a working directory that does not exist;
  //   NotFound: this machine lacks the program: missing, not found in PATH, a directory, not
  //     executable, or its interpreter (the #! line) or a library missing (on a cluster a worker's
  //     own fault: another worker may have it);
  //   IoError: the log file cannot be opened;
  //   FailedPrecondition: an isolation step failed (unshare, a mount, bringing up loopback), with
  //     the step and the errno text;
  //   Internal: pipe(), clone() or thread creation failed.
  [[nodiscard]] static Result<std::unique_ptr<TrialProcess>> Start(const ProcessSpec& spec, LineCallback on_line,
                                                                   ProcessOptions options = {});

  ~TrialProcess();
  TrialProcess(const TrialProcess&) = delete;
  TrialProcess& operator=(const TrialProcess&) = delete;

  // SIGTERM to the process group now (only on the first call), SIGKILL to the group once `grace`
  // has passed if the program still runs. A later call may shorten the deadline but never
  // extends it. No-op once the program has ended. Never blocks. `term` false: the deadline only,
  // no SIGTERM (a container runtime's stop delivers it to the program; the runtime's client,
  // which forwards the signals it gets, gave the program a second one); a later call with `term`
  // sends it.
  void Stop(std::chrono::milliseconds grace, bool term = true);

  // The exit, once the program has ended, been reaped and all its output has been delivered to
  // the callback and the log; nullopt before. Never blocks.
  std::optional<ExitInfo> TryWait();

  // Blocks until TryWait() would return a value, and returns it.
  ExitInfo Wait();

  // The program's process id, which is also its process group id (and session id).
  pid_t pid() const;
  // Its private mount namespace's inode (ExitInfo::mount_ns), known from Start on; 0 without one.
  std::uint64_t mount_ns() const;
  // Why Isolation::namespace_record could not be written ("" when it was, or none was asked).
  const std::string& namespace_record_error() const;

 private:
  struct State;
  explicit TrialProcess(std::unique_ptr<State> state);
  std::unique_ptr<State> state_;
};

// This process's environment (the runtime's client needs the worker's: PATH, HOME,
// CONTAINERS_CONF, XDG_RUNTIME_DIR, DOCKER_HOST, ...).
std::map<std::string, std::string> CurrentEnvironment();

// The first executable `name` in the ':'-separated directory list `path_list` (an empty entry is
// the current directory), as execvp looks it up; "" when there is none.
std::string FindProgram(const std::string& name, const std::string& path_list);

// Ok when `path` is an executable regular file; else NotFound "cannot run \"SHOWN\": WHY" (no such
// file, a directory, not a regular file, not executable, or a script whose #! line names an
// interpreter by absolute path that is not an executable file here).
Status CheckExecutable(const std::string& shown, const std::string& path);

struct ToolResult {
  int exit_code = -1;  // -1 when killed (timeout) or ended by a signal
  std::string output;  // stdout and stderr, at most the last 64 KiB
  // The output's last non-empty line, without its line end.
  std::string LastLine() const;
};

// Runs a short command (a container runtime's image check, stop or cleanup, the NCCL preflight,
// an image pull) as a TrialProcess with the worker's environment and waits for it; its process
// group is killed after `timeout`, or as soon as `*cancel` becomes true (then Unavailable
// "cancelled"). Errors: what TrialProcess::Start returns.
[[nodiscard]] Result<ToolResult> RunTool(const std::vector<std::string>& argv, std::chrono::milliseconds timeout,
                                         const std::atomic<bool>* cancel = nullptr);

}  // namespace hpo::worker
