#include "worker/process.h"

#include <sys/prctl.h>

#include <dirent.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <net/if.h>
#include <sched.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/mount.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <climits>
#include <condition_variable>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <mutex>
#include <system_error>
#include <thread>
#include <utility>

namespace hpo::worker {

namespace {

using Clock = std::chrono::steady_clock;

// An owned file descriptor.
class Fd {
 public:
  Fd() = default;
  explicit Fd(int fd) : fd_(fd) {}
  Fd(Fd&& o) noexcept : fd_(std::exchange(o.fd_, -1)) {}
  Fd& operator=(Fd&& o) noexcept {
    if (this != &o) {
      Close();
      fd_ = std::exchange(o.fd_, -1);
    }
    return *this;
  }
  ~Fd() { Close(); }
  int get() const { return fd_; }
  bool valid() const { return fd_ >= 0; }
  void Close() {
    if (fd_ >= 0) ::close(fd_);
    fd_ = -1;
  }

 private:
  int fd_ = -1;
};

std::string ErrnoText(int e) { return std::strerror(e); }

// The child of Start() shares the worker's memory (clone with CLONE_VM | CLONE_VFORK, as
// posix_spawn does) instead of copying it with fork(): a fork of the worker copies the page
// tables of its whole address space (the coordinator's too, under `hpo run`), holds every malloc
// arena lock of the process meanwhile, and leaves the child an address space to tear down at
// exec; that was most of a launch's cost (about 1.3 ms of latency and as much CPU per trial at
// 30 MB). The calling thread is suspended until the child has exec'd or exited; the other threads
// of the worker keep running. So the child runs on its own small stack, with every signal blocked
// until it has reset all handlers to the default (a handler of the worker must never run in it),
// makes only raw system calls, writes nothing but its own locals and the failure record below,
// and takes no lock: no malloc, no stdio, nothing that may be held by another thread.
// Functions that run in the child are marked HPO_CHILD: no sanitizer instrumentation (its
// runtime does not expect a second stack in a thread's memory).
#if defined(__clang__) || defined(__GNUC__)
#define HPO_CHILD __attribute__((no_sanitize("address", "thread"), noinline))
#else
#define HPO_CHILD
#endif

// ThreadSanitizer's clone() interceptor takes every clone for a fork: in the child it resets the
// runtime's state, which CLONE_VM shares with this process, so afterwards the worker's own locks
// go unseen and every mutex-guarded access is reported as a race. glibc's __clone is the same
// function without the interceptor; the child is not instrumented and the runtime never hears of
// it, which is right for a child that only execs.
#if defined(__SANITIZE_THREAD__)
#define HPO_TSAN_BUILD 1
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define HPO_TSAN_BUILD 1
#endif
#endif
#ifdef HPO_TSAN_BUILD
extern "C" int __clone(int (*fn)(void*), void* stack, int flags, void* arg, ...);
#define HPO_CLONE __clone
#else
#define HPO_CLONE ::clone
#endif

// Why the child could not exec, written by the child into the parent's memory.
struct ChildFailure {
  enum Stage : int {
    kSetup = 1,
    kChdir = 2,
    kExec = 3,
    kUnshare = 4,        // unshare(CLONE_NEWNS / CLONE_NEWNET)
    kMakePrivate = 5,    // mount --make-rprivate /
    kBind = 6,           // bind mount number `detail`
    kRemountRo = 7,      // read-only remount of bind mount number `detail`
    kLoopback = 8,       // bringing up lo in the new network namespace
  };
  int stage = 0;
  int error = 0;
  int detail = 0;
};

// The child's namespaces, prepared before the clone so the child only makes system calls.
struct ChildIsolation {
  bool mount_ns = false;
  bool net_ns = false;
  std::vector<const char*> sources, targets;
  std::vector<char> read_only;
  // Isolation::namespace_record: the directory followed by '/' in `record_path` and `record_tmp`
  // (record_dir_len bytes), each with room for the inode's digits, ".tmp" and the NUL; the text.
  // Empty record_path: no record.
  std::vector<char> record_path, record_tmp;
  std::size_t record_dir_len = 0;
  const char* record_text = nullptr;
  std::size_t record_text_len = 0;
};

// Everything the child needs, prepared by the parent; the child writes only `failure`, the
// namespace record's fields below and ChildIsolation's record_path / record_tmp buffers.
struct ChildArgs {
  const char* path = nullptr;
  char* const* argv = nullptr;
  char* const* envp = nullptr;
  const char* cwd = nullptr;
  int out_w = -1, err_w = -1;
  int max_fd = 1023;
  pid_t parent = 0;
  ChildIsolation* iso = nullptr;
  ChildFailure failure;
  // The namespace record: the inode it was named after (0: none written), or why it was not.
  std::uint64_t recorded_ns = 0;
  int record_error = 0;
  const char* record_step = nullptr;
};

// Raw system calls: no libc wrapper that an interposer (a sanitizer, a preload) could replace.
HPO_CHILD long Sys(long nr, long a = 0, long b = 0, long c = 0, long d = 0, long e = 0) {
  return ::syscall(nr, a, b, c, d, e);
}

// The kernel's struct sigaction on x86-64 and aarch64 (handler, flags, restorer, mask).
struct KernelSigaction {
  void (*handler)(int);
  unsigned long flags;
  void (*restorer)();
  uint64_t mask;
};

[[noreturn]] HPO_CHILD void ChildFail(ChildArgs* a, int stage, int error, int detail = 0) {
  a->failure.detail = detail;
  a->failure.error = error;
  a->failure.stage = stage;
  Sys(SYS_exit_group, 127);
  __builtin_unreachable();
}

// Moves fd to a number >= 3 (so that dup2 onto 0-2 cannot clobber it).
HPO_CHILD int RaiseFd(int fd) {
  if (fd >= 3) return fd;
  return static_cast<int>(Sys(SYS_fcntl, fd, F_DUPFD, 3));
}

HPO_CHILD void CloseFrom(int first, int max_fd) {
#ifdef SYS_close_range
  if (Sys(SYS_close_range, first, INT_MAX, 0) == 0) return;
#endif
  for (int fd = first; fd <= max_fd; ++fd) Sys(SYS_close, fd);
}

// Writes the file of Isolation::namespace_record in the child, once its mount namespace exists
// and before any mount could hide the directory. A failure is noted, not fatal.
HPO_CHILD void ChildRecordNamespace(ChildArgs* a) {
  ChildIsolation& iso = *a->iso;
  if (iso.record_path.empty()) return;
  struct stat st;
  if (Sys(SYS_newfstatat, AT_FDCWD, reinterpret_cast<long>("/proc/self/ns/mnt"), reinterpret_cast<long>(&st), 0) != 0) {
    a->record_error = errno;
    a->record_step = "stat /proc/self/ns/mnt";
    return;
  }
  char digits[24];
  std::size_t n = 0;
  for (std::uint64_t v = static_cast<std::uint64_t>(st.st_ino); n == 0 || v != 0; v /= 10) digits[n++] = static_cast<char>('0' + v % 10);
  char* path = iso.record_path.data();
  char* tmp = iso.record_tmp.data();
  std::size_t at = iso.record_dir_len;
  while (n > 0) {
    path[at] = tmp[at] = digits[--n];
    ++at;
  }
  path[at] = '\0';
  const char suffix[] = ".tmp";
  for (std::size_t i = 0; i < sizeof suffix; ++i) tmp[at + i] = suffix[i];
  const long fd = Sys(SYS_openat, AT_FDCWD, reinterpret_cast<long>(tmp), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) {
    a->record_error = errno;
    a->record_step = "create";
    return;
  }
  for (std::size_t done = 0; done < iso.record_text_len;) {
    const long w = Sys(SYS_write, fd, reinterpret_cast<long>(iso.record_text + done), static_cast<long>(iso.record_text_len - done));
    if (w <= 0) {
      a->record_error = w < 0 ? errno : EIO;
      a->record_step = "write";
      Sys(SYS_close, fd);
      Sys(SYS_unlinkat, AT_FDCWD, reinterpret_cast<long>(tmp), 0);
      return;
    }
    done += static_cast<std::size_t>(w);
  }
  Sys(SYS_close, fd);
#ifdef SYS_renameat2
  const long renamed = Sys(SYS_renameat2, AT_FDCWD, reinterpret_cast<long>(tmp), AT_FDCWD, reinterpret_cast<long>(path), 0);
#else
  const long renamed = Sys(SYS_renameat, AT_FDCWD, reinterpret_cast<long>(tmp), AT_FDCWD, reinterpret_cast<long>(path));
#endif
  if (renamed != 0) {
    a->record_error = errno;
    a->record_step = "rename";
    Sys(SYS_unlinkat, AT_FDCWD, reinterpret_cast<long>(tmp), 0);
    return;
  }
  a->recorded_ns = static_cast<std::uint64_t>(st.st_ino);
}

// Runs in the child after setsid(): enters the namespaces and applies the mounts.
HPO_CHILD void ChildIsolate(ChildArgs* a) {
  const ChildIsolation& iso = *a->iso;
  int flags = (iso.mount_ns ? CLONE_NEWNS : 0) | (iso.net_ns ? CLONE_NEWNET : 0);
  if (flags == 0) return;
  if (Sys(SYS_unshare, flags) != 0) ChildFail(a, ChildFailure::kUnshare, errno);
  if (iso.mount_ns) {
    if (Sys(SYS_mount, 0, reinterpret_cast<long>("/"), 0, MS_REC | MS_PRIVATE, 0) != 0) {
      ChildFail(a, ChildFailure::kMakePrivate, errno);
    }
    ChildRecordNamespace(a);
    const std::size_t n = iso.sources.size();
    for (std::size_t i = 0; i < n; ++i) {
      const long src = reinterpret_cast<long>(iso.sources.data()[i]);
      const long dst = reinterpret_cast<long>(iso.targets.data()[i]);
      if (Sys(SYS_mount, src, dst, 0, MS_BIND | MS_REC, 0) != 0) {
        ChildFail(a, ChildFailure::kBind, errno, static_cast<int>(i));
      }
      if (iso.read_only.data()[i] && Sys(SYS_mount, 0, dst, 0, MS_REMOUNT | MS_BIND | MS_RDONLY, 0) != 0) {
        ChildFail(a, ChildFailure::kRemountRo, errno, static_cast<int>(i));
      }
    }
  }
  if (iso.net_ns) {
    long sock = Sys(SYS_socket, AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (sock < 0) ChildFail(a, ChildFailure::kLoopback, errno);
    struct ifreq req;
    char* raw = reinterpret_cast<char*>(&req);
    for (std::size_t i = 0; i < sizeof req; ++i) raw[i] = 0;
    req.ifr_name[0] = 'l';
    req.ifr_name[1] = 'o';
    if (Sys(SYS_ioctl, sock, SIOCGIFFLAGS, reinterpret_cast<long>(&req)) != 0) {
      ChildFail(a, ChildFailure::kLoopback, errno);
    }
    req.ifr_flags = static_cast<short>(req.ifr_flags | IFF_UP | IFF_RUNNING);
    if (Sys(SYS_ioctl, sock, SIOCSIFFLAGS, reinterpret_cast<long>(&req)) != 0) {
      ChildFail(a, ChildFailure::kLoopback, errno);
    }
    Sys(SYS_close, sock);
  }
}

// The child: entered with every signal blocked. Never returns.
HPO_CHILD int ChildMain(void* arg) {
  ChildArgs* a = static_cast<ChildArgs*>(arg);
  // No handler of the worker may run here: every disposition goes back to the default (the
  // program inherits no ignored signal either) before the mask is cleared.
  KernelSigaction dfl{};
  dfl.handler = SIG_DFL;
  for (int sig = 1; sig < NSIG; ++sig) {
    if (sig == SIGKILL || sig == SIGSTOP) continue;
    Sys(SYS_rt_sigaction, sig, reinterpret_cast<long>(&dfl), 0, sizeof dfl.mask);
  }
  if (Sys(SYS_setsid) < 0) ChildFail(a, ChildFailure::kSetup, errno);
  // The program dies with the worker: a worker killed without warning (SIGKILL, OOM) must not
  // leave its trial running unseen while the coordinator retries it elsewhere. (The signal
  // follows the thread that started it, the worker's agent loop, which lives as long as the
  // worker.)
  if (Sys(SYS_prctl, PR_SET_PDEATHSIG, SIGKILL) != 0) ChildFail(a, ChildFailure::kSetup, errno);
  if (Sys(SYS_getppid) != a->parent) Sys(SYS_exit_group, 127);  // the worker died before prctl took effect
  ChildIsolate(a);

  long devnull = Sys(SYS_openat, AT_FDCWD, reinterpret_cast<long>("/dev/null"), O_RDONLY);
  if (devnull < 0) ChildFail(a, ChildFailure::kSetup, errno);
  const int in = RaiseFd(static_cast<int>(devnull));
  const int out = RaiseFd(a->out_w);
  const int err = RaiseFd(a->err_w);
  if (in < 0 || out < 0 || err < 0) ChildFail(a, ChildFailure::kSetup, errno);
  if (Sys(SYS_dup3, in, 0, 0) < 0) ChildFail(a, ChildFailure::kSetup, errno);
  if (Sys(SYS_dup3, out, 1, 0) < 0) ChildFail(a, ChildFailure::kSetup, errno);
  if (Sys(SYS_dup3, err, 2, 0) < 0) ChildFail(a, ChildFailure::kSetup, errno);
  // Nothing of the worker's leaks into the trainer: only 0-2 stay open.
  CloseFrom(3, a->max_fd);

  if (a->cwd != nullptr && Sys(SYS_chdir, reinterpret_cast<long>(a->cwd)) != 0) {
    ChildFail(a, ChildFailure::kChdir, errno);
  }
  sigset_t none;
  for (std::size_t i = 0; i < sizeof none; ++i) reinterpret_cast<char*>(&none)[i] = 0;
  Sys(SYS_rt_sigprocmask, SIG_SETMASK, reinterpret_cast<long>(&none), 0, sizeof(uint64_t));
  Sys(SYS_execve, reinterpret_cast<long>(a->path), reinterpret_cast<long>(a->argv), reinterpret_cast<long>(a->envp));
  ChildFail(a, ChildFailure::kExec, errno);
}

// Checks that path names an executable regular file; the error text says why not.

// The program's path: argv[0] as is when it has a '/', else the first executable match in the
// PATH of the program's own environment.
Result<std::string> ResolveProgram(const ProcessSpec& spec) {
  const std::string& name = spec.argv[0];
  if (name.empty()) return Status::InvalidArgument("cannot run an empty program name");
  if (name.find('/') != std::string::npos) {
    HPO_RETURN_IF_ERROR(CheckExecutable(name, name));
    return name;
  }
  auto it = spec.env.find("PATH");
  const std::string search = it != spec.env.end() ? it->second : "/usr/local/bin:/usr/bin:/bin";
  if (std::string found = FindProgram(name, search); !found.empty()) return found;
  return Status::NotFound("cannot run \"" + name + "\": not found in the program's PATH (" + search + ")");
}

Status CheckEnvironment(const std::map<std::string, std::string>& env) {
  for (const auto& [name, value] : env) {
    if (name.empty() || name.find('=') != std::string::npos || name.find('\0') != std::string::npos) {
      return Status::InvalidArgument("invalid environment variable name \"" + name + "\"");
    }
    if (value.find('\0') != std::string::npos) {
      return Status::InvalidArgument("environment variable " + name + " contains a NUL character");
    }
  }
  return Status::Ok();
}

int PidfdOpen(pid_t pid) {
#ifdef SYS_pidfd_open
  long fd = ::syscall(SYS_pidfd_open, pid, 0u);
  if (fd >= 0) {
    ::fcntl(static_cast<int>(fd), F_SETFD, FD_CLOEXEC);
    return static_cast<int>(fd);
  }
#endif
  return -1;
}

}  // namespace

Status CheckExecutable(const std::string& shown, const std::string& path) {
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0) {
    return Status::NotFound("cannot run \"" + shown + "\": " + ErrnoText(errno));
  }
  if (S_ISDIR(st.st_mode)) return Status::NotFound("cannot run \"" + shown + "\": it is a directory");
  if (!S_ISREG(st.st_mode)) return Status::NotFound("cannot run \"" + shown + "\": not a regular file");
  if (::access(path.c_str(), X_OK) != 0) {
    return Status::NotFound("cannot run \"" + shown + "\": not executable (" + ErrnoText(errno) + ")");
  }
  // A script's interpreter, when its #! line names one by its absolute path (one through
  // /usr/bin/env is looked up in the program's own PATH, which only the run knows).
  if (Fd f(::open(path.c_str(), O_RDONLY | O_CLOEXEC)); f.get() >= 0) {
    char head[256];
    const ssize_t n = ::read(f.get(), head, sizeof head);
    if (n > 2 && head[0] == '#' && head[1] == '!') {
      std::string line(head + 2, static_cast<size_t>(n) - 2);
      line = line.substr(0, line.find('\n'));
      const size_t begin = line.find_first_not_of(" \t");
      const std::string interpreter =
          begin == std::string::npos ? "" : line.substr(begin, line.find_first_of(" \t\r", begin) - begin);
      struct stat ist {};
      if (!interpreter.empty() && interpreter[0] == '/' &&
          (::stat(interpreter.c_str(), &ist) != 0 || !S_ISREG(ist.st_mode) ||
           ::access(interpreter.c_str(), X_OK) != 0)) {
        return Status::NotFound("cannot run \"" + shown + "\": its interpreter " + interpreter +
                                " (its #! line) is not an executable program here");
      }
    }
  }
  return Status::Ok();
}

struct TrialProcess::State {
  pid_t pid = -1;
  ProcessOptions options;
  LineCallback on_line;
  Clock::time_point started;

  // Owned by the monitor thread (wake_fd: written by any thread, closed by the destructor).
  Fd out_fd, err_fd, pidfd, log_fd, wake_fd;
  // The program's private mount namespace, opened by Start and held until the monitor thread has
  // handed the exit on (see Monitor).
  Fd mount_ns;
  std::uint64_t mount_ns_inode = 0;  // ExitInfo::mount_ns
  std::string namespace_record_error;  // TrialProcess::namespace_record_error
  bool log_failed = false;
  std::uint64_t log_bytes = 0;  // written to the log by this process (ProcessOptions::max_log_bytes)

  std::mutex mu;
  std::condition_variable done_cv;
  // Guarded by mu.
  bool stop_requested = false;  // Stop() was called (before the exit was noticed)
  bool term_sent = false;
  bool kill_sent = false;
  bool kill_now = false;        // the destructor runs
  bool reaped = false;          // the program was reaped: its pid may be reused, no more signals
  std::optional<Clock::time_point> kill_at;
  // Monitor thread only: the program (the group's leader) has exited during a stop's grace
  // period while others of its group still run: they get the rest of the grace period.
  bool leader_gone = false;
  std::optional<ExitInfo> exit;  // set once everything is done

  std::thread monitor;

  // Per-stream line assembly.
  struct Splitter {
    std::string line;
    bool discarding = false;  // the current line was too long; drop up to the next '\n'
    // While discarding: what follows the last '\r' seen (at most max_line_bytes), or without a
    // '\r' the line's last max_line_bytes, delivered as a line of its own at the '\n'. A
    // progress bar redraws itself with '\r' on one line that grows past any limit (Keras prints
    // " - val_loss: 0.41" at its end): what a terminal shows last is what its metric regexes are
    // for.
    std::string tail;
    bool after_cr = false;
    // The last piece ended in '\r': a redraw begins with the next byte, unless that is the '\n'
    // of a CRLF ending (which keeps the tail: the line's last text).
    bool pending_cr = false;
    uint64_t discarded = 0;  // bytes of the current line past its head (the tail's among them)
  };

  static void KeepTail(Splitter& sp, const char* p, std::size_t n, std::size_t max) {
    std::size_t m = n;
    while (m > 0 && p[m - 1] == '\r') --m;
    if (m == 0) {
      sp.pending_cr = sp.pending_cr || n > 0;
      return;
    }
    if (sp.pending_cr) {
      sp.tail.clear();
      sp.after_cr = true;
      sp.pending_cr = false;
    }
    KeepTailOf(sp, p, m, max);
    sp.pending_cr = m < n;
  }

  static void KeepTailOf(Splitter& sp, const char* p, std::size_t n, std::size_t max) {
    if (const void* cr = ::memrchr(p, '\r', n)) {
      const std::size_t off = static_cast<std::size_t>(static_cast<const char*>(cr) - p) + 1;
      sp.tail.assign(p + off, std::min(n - off, max));
      sp.after_cr = true;
    } else if (sp.after_cr) {
      const std::size_t room = max > sp.tail.size() ? max - sp.tail.size() : 0;
      sp.tail.append(p, std::min(room, n));
    } else if (n >= max) {  // no '\r' yet: the line's last max bytes, its end
      sp.tail.assign(p + n - max, max);
    } else {
      sp.tail.append(p, n);
      if (sp.tail.size() > max) sp.tail.erase(0, sp.tail.size() - max);
    }
  }
  Splitter splitters[2];

  void Wake() {
    uint64_t one = 1;
    ssize_t ignored = ::write(wake_fd.get(), &one, sizeof one);
    (void)ignored;
  }

  void Deliver(Stream stream, const std::string& line) {
    WriteLog(line);
    if (on_line) on_line(stream, line);
  }

  // One line to trial.log (with its '\n'), within max_log_bytes.
  void WriteLog(const std::string& line) {
    if (log_fd.valid() && !log_failed && options.max_log_bytes > 0 && log_bytes + line.size() + 1 > options.max_log_bytes) {
      const std::string note = "hpo: trial.log reached " + std::to_string(options.max_log_bytes >> 20) +
                               " MiB; the program's further output is not kept here (its metrics are still read)\n";
      ssize_t ignored = ::write(log_fd.get(), note.data(), note.size());
      (void)ignored;
      log_failed = true;
    }
    if (log_fd.valid() && !log_failed) {
      std::string record;
      record.reserve(line.size() + 1);
      record.append(line).push_back('\n');
      log_bytes += record.size();
      const char* p = record.data();
      std::size_t left = record.size();
      while (left > 0) {
        ssize_t n = ::write(log_fd.get(), p, left);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) {
          log_failed = true;  // e.g. a full disk: keep running the trial, stop logging
          break;
        }
        p += n;
        left -= static_cast<std::size_t>(n);
      }
    }
  }

  void Feed(Stream stream, const char* data, std::size_t n) {
    Splitter& sp = splitters[static_cast<int>(stream)];
    const std::size_t max = options.max_line_bytes;
    std::size_t pos = 0;
    while (pos < n) {
      const void* nl = std::memchr(data + pos, '\n', n - pos);
      const std::size_t end = nl ? static_cast<std::size_t>(static_cast<const char*>(nl) - data) : n;
      if (!sp.discarding) {
        // A line of up to twice the limit is its first and last max bytes: it is kept whole (cut
        // at the limit, a metric across the cut, "loss=" | "0.75", was in neither piece).
        const std::size_t whole = 2 * max;
        const std::size_t room = whole > sp.line.size() ? whole - sp.line.size() : 0;
        const std::size_t take = std::min(room, end - pos);
        sp.line.append(data + pos, take);
        if (take < end - pos) {  // too long: deliver the head, keep the end, drop the middle
          const std::size_t head = HeadEnd(sp.line, max);
          Deliver(stream, sp.line.substr(0, head));
          sp.discarding = true;
          sp.discarded = sp.line.size() - head + (end - pos - take);
          KeepTail(sp, sp.line.data() + max, sp.line.size() - max, max);
          sp.line.clear();
          KeepTail(sp, data + pos + take, end - pos - take, max);
        }
      } else {
        sp.discarded += end - pos;
        KeepTail(sp, data + pos, end - pos, max);
      }
      if (nl) {
        if (!sp.discarding) {
          Deliver(stream, sp.line);
        } else {
          TrimTailStart(sp);
          NoteLeftOut(sp);
          // The last redraw of a progress line, or the end of an overlong one (a metric printed
          // after 64 KiB of a line was lost; SageMaker's log splits such a line, keeping it).
          if (!sp.tail.empty()) Deliver(stream, sp.tail);
        }
        sp.line.clear();
        sp.tail.clear();
        sp.after_cr = false;
        sp.pending_cr = false;
        sp.discarding = false;
        pos = end + 1;
      } else {
        pos = n;
      }
    }
  }

  // The pieces of an overlong line are cut inside it: the word cut in two at each cut is left
  // out, so that no metric regex reads half a number (a 1 MB progress bar's head ended in
  // "loss=0.0" of "loss=0.000796", and 0.0 became a point of the curve and the job's best).
  // The head ends before its last space, tab or '\r' (at `max` when the byte after it is one; at
  // `max` too when it has none: one word that long has no number a regex would read).
  static std::size_t HeadEnd(const std::string& line, std::size_t max) {
    const std::size_t at = line.find_last_of(" \t\r", max);
    return at == std::string::npos || at == 0 ? max : at;
  }
  // The end, when it is the line's last bytes rather than its last redraw (which begins at a
  // '\r'): from after its first space or tab.
  static void TrimTailStart(Splitter& sp) {
    if (sp.after_cr || sp.tail.empty()) return;
    const std::size_t at = sp.tail.find_first_of(" \t");
    if (at != std::string::npos) sp.tail.erase(0, at + 1);
  }

  // In trial.log only (the metric regexes never see it), between an overlong line's head and its
  // end: how much of it is not kept (the log read as if the line were whole, and the coordinator's
  // copy sent readers to trial.log for "the whole line").
  void NoteLeftOut(const Splitter& sp) {
    const uint64_t left_out = sp.discarded > sp.tail.size() ? sp.discarded - sp.tail.size() : 0;
    if (left_out == 0) return;
    const std::size_t max = options.max_line_bytes;
    WriteLog("[hpo: " + std::to_string(left_out) + " bytes of this line left out: a line keeps its first and last " +
             (max % 1024 == 0 ? std::to_string(max / 1024) + " KiB]" : std::to_string(max) + " bytes]"));
  }

  void FlushPartial(Stream stream) {
    Splitter& sp = splitters[static_cast<int>(stream)];
    if (!sp.discarding && !sp.line.empty()) Deliver(stream, sp.line);
    if (sp.discarding) TrimTailStart(sp);
    if (sp.discarding) NoteLeftOut(sp);
    if (sp.discarding && !sp.tail.empty()) Deliver(stream, sp.tail);  // an overlong last line's end
    sp.line.clear();
    sp.tail.clear();
    sp.after_cr = false;
    sp.pending_cr = false;
    sp.discarding = false;
  }

  // Reads once from one pipe; closes it at end of file or on error.
  void ReadOnce(Fd& fd, Stream stream, char* buf, std::size_t size) {
    ssize_t n = ::read(fd.get(), buf, size);
    if (n < 0 && (errno == EINTR || errno == EAGAIN)) return;
    if (n <= 0) {
      FlushPartial(stream);
      fd.Close();
      return;
    }
    Feed(stream, buf, static_cast<std::size_t>(n));
  }

  // Whether a process other than the (exited) leader is in the program's process group: /proc
  // read for processes of that group that are not zombies.
  bool GroupHasOthers() const {
    DIR* d = ::opendir("/proc");
    if (!d) return false;
    bool found = false;
    while (dirent* e = ::readdir(d)) {
      if (e->d_name[0] < '1' || e->d_name[0] > '9') continue;
      const pid_t p = static_cast<pid_t>(std::strtol(e->d_name, nullptr, 10));
      if (p == pid) continue;
      char path[64];
      std::snprintf(path, sizeof path, "/proc/%d/stat", static_cast<int>(p));
      const int fd = ::open(path, O_RDONLY | O_CLOEXEC);
      if (fd < 0) continue;
      char buf[512];
      const ssize_t n = ::read(fd, buf, sizeof buf - 1);
      ::close(fd);
      if (n <= 0) continue;
      buf[n] = '\0';
      const char* close_paren = std::strrchr(buf, ')');  // the name may hold spaces and parentheses
      if (!close_paren) continue;
      char state = 0;
      long ppid = 0, pgrp = 0;
      if (std::sscanf(close_paren + 1, " %c %ld %ld", &state, &ppid, &pgrp) != 3) continue;
      if (pgrp == pid && state != 'Z') {
        found = true;
        break;
      }
    }
    ::closedir(d);
    return found;
  }

  // If the program has ended: kills what it left in its group, reaps it and records how it
  // ended. Returns true once reaped.
  bool CheckExit(ExitInfo* info) {
    siginfo_t si{};
    int r = ::waitid(P_PID, static_cast<id_t>(pid), &si, WEXITED | WNOHANG | WNOWAIT);
    if (r == 0 && si.si_pid == 0) return false;  // still running
    if (r < 0 && errno == EINTR) return false;
    std::lock_guard<std::mutex> lock(mu);
    info->exit_code = -1;
    info->signal = 0;
    if (r == 0) {
      // Stopped, with grace left, and the group lives on without its leader: a wrapper script
      // (`#!/bin/sh` then `python train.py`, no exec) dies of the SIGTERM at once while the
      // trainer saves its checkpoint. The group gets the rest of the grace period (the leader
      // stays a zombie meanwhile, so the group id cannot be reused); killed at once, the trainer
      // lost its checkpoint on every stop and interruption.
      if (stop_requested && !kill_sent && !kill_now && kill_at && Clock::now() < *kill_at && GroupHasOthers()) {
        leader_gone = true;
        return false;
      }
      // Still a zombie, so the group id cannot have been reused: take the group down with it.
      ::kill(-pid, SIGKILL);
      int status = 0;
      pid_t w;
      do {
        w = ::waitpid(pid, &status, 0);
      } while (w < 0 && errno == EINTR);
      if (w == pid && WIFEXITED(status)) {
        info->exit_code = WEXITSTATUS(status);
      } else if (w == pid && WIFSIGNALED(status)) {
        info->signal = WTERMSIG(status);
      }
    }
    // r < 0 (ECHILD): someone else reaped it (SIGCHLD ignored); the status is unknown.
    reaped = true;
    info->stopped_by_us = stop_requested;
    info->duration = std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - started);
    struct timespec ended {};
    ::clock_gettime(CLOCK_REALTIME, &ended);
    info->ended_unix_ns = int64_t{ended.tv_sec} * 1'000'000'000 + ended.tv_nsec;
    return true;
  }

  void Monitor() {
    // When the last process of a mount namespace exits, the kernel unmounts its tree before the
    // exit becomes visible (exit_task_namespaces() runs before the parent is notified), with an
    // RCU grace period: 0.2-0.4 ms on every trial's exit path here. Holding a reference (opened
    // by Start) moves that work to this thread, after on_exit. (A program that ends before that
    // open leaves the teardown in its own exit, as without it.)
    std::vector<char> buf(64 * 1024);
    ExitInfo info;
    info.mount_ns = mount_ns_inode;
    bool reaped_here = false;
    Clock::time_point drain_until;
    for (;;) {
      Clock::time_point now = Clock::now();
      int timeout_ms = -1;
      auto limit = [&](Clock::time_point t) {
        auto ms = std::chrono::ceil<std::chrono::milliseconds>(t - now).count();
        ms = std::clamp<int64_t>(ms, 0, INT_MAX);
        if (timeout_ms < 0 || ms < timeout_ms) timeout_ms = static_cast<int>(ms);
      };
      bool closing = false;
      {
        std::lock_guard<std::mutex> lock(mu);
        closing = kill_now;
        if (!reaped_here && !kill_sent && (kill_now || (kill_at && now >= *kill_at))) {
          ::kill(-pid, SIGKILL);
          kill_sent = true;
        }
        if (!reaped_here && !kill_sent && kill_at) limit(*kill_at);
      }
      if (!reaped_here && (!pidfd.valid() || leader_gone)) limit(now + options.poll_interval);
      if (reaped_here) {
        if (!out_fd.valid() && !err_fd.valid()) break;
        if (now >= drain_until) break;
        limit(closing ? now : drain_until);
      }

      pollfd fds[4];
      nfds_t nfds = 0;
      int out_i = -1, err_i = -1;
      if (out_fd.valid()) out_i = static_cast<int>(nfds), fds[nfds++] = {out_fd.get(), POLLIN, 0};
      if (err_fd.valid()) err_i = static_cast<int>(nfds), fds[nfds++] = {err_fd.get(), POLLIN, 0};
      // Readable at exit (and from then on: not polled while the group finishes its grace).
      if (!reaped_here && pidfd.valid() && !leader_gone) fds[nfds++] = {pidfd.get(), POLLIN, 0};
      const int wake_i = static_cast<int>(nfds);
      fds[nfds++] = {wake_fd.get(), POLLIN, 0};

      int ready = ::poll(fds, nfds, timeout_ms);
      if (ready < 0 && errno != EINTR) {
        // poll() on our own descriptors cannot fail for a good reason; fall back to a short sleep.
        std::this_thread::sleep_for(options.poll_interval);
      }
      if (ready == 0 && reaped_here && closing) break;  // destructor: nothing more is readable now
      if (ready > 0) {
        if (fds[wake_i].revents & POLLIN) {
          uint64_t count;
          ssize_t ignored = ::read(wake_fd.get(), &count, sizeof count);
          (void)ignored;
        }
        constexpr short kReadable = POLLIN | POLLHUP | POLLERR;
        if (out_i >= 0 && (fds[out_i].revents & kReadable)) ReadOnce(out_fd, Stream::kStdout, buf.data(), buf.size());
        if (err_i >= 0 && (fds[err_i].revents & kReadable)) ReadOnce(err_fd, Stream::kStderr, buf.data(), buf.size());
      }
      // The exit is checked whatever woke us (the pidfd, output, a Stop(), or the poll interval).
      if (!reaped_here && CheckExit(&info)) {
        reaped_here = true;
        drain_until = Clock::now() + options.output_drain;
        pidfd.Close();
      }
    }
    // Output still held by processes that escaped the group is abandoned; partial lines are
    // delivered.
    if (out_fd.valid()) FlushPartial(Stream::kStdout);
    if (err_fd.valid()) FlushPartial(Stream::kStderr);
    out_fd.Close();
    err_fd.Close();
    log_fd.Close();
    {
      std::lock_guard<std::mutex> lock(mu);
      exit = info;
      done_cv.notify_all();
    }
    if (options.on_exit) options.on_exit(info);
    mount_ns.Close();  // the namespace goes now, unless something that escaped the group still uses it
  }
};

TrialProcess::TrialProcess(std::unique_ptr<State> state) : state_(std::move(state)) {}

Result<std::unique_ptr<TrialProcess>> TrialProcess::Start(const ProcessSpec& spec, LineCallback on_line,
                                                          ProcessOptions options) {
  if (spec.argv.empty()) return Status::InvalidArgument("no program to run: argv is empty");
  if (options.max_line_bytes == 0) return Status::InvalidArgument("max_line_bytes must be positive");
  HPO_RETURN_IF_ERROR(CheckEnvironment(spec.env));
  Result<std::string> path = ResolveProgram(spec);
  if (!path.ok()) return path.status();
  if (!spec.cwd.empty()) {
    struct stat st {};
    if (::stat(spec.cwd.c_str(), &st) != 0) {
      return Status::InvalidArgument("cannot use \"" + spec.cwd + "\" as working directory: " + ErrnoText(errno));
    }
    if (!S_ISDIR(st.st_mode)) {
      return Status::InvalidArgument("cannot use \"" + spec.cwd + "\" as working directory: not a directory");
    }
  }

  auto state = std::make_unique<State>();
  state->options = options;
  state->on_line = std::move(on_line);
  if (!spec.log_path.empty()) {
    state->log_fd = Fd(::open(spec.log_path.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644));
    if (!state->log_fd.valid()) {
      return Status::IoError("cannot open the log file " + spec.log_path + ": " + ErrnoText(errno));
    }
  }
  int out[2], err[2];
  if (::pipe2(out, O_CLOEXEC) != 0) return Status::Internal("pipe: " + ErrnoText(errno));
  Fd out_r(out[0]), out_w(out[1]);
  if (::pipe2(err, O_CLOEXEC) != 0) return Status::Internal("pipe: " + ErrnoText(errno));
  Fd err_r(err[0]), err_w(err[1]);
  state->wake_fd = Fd(::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK));
  if (!state->wake_fd.valid()) return Status::Internal("eventfd: " + ErrnoText(errno));

  // Everything the child needs is built before the clone: the child only makes system calls.
  std::vector<std::string> arg_strings = spec.argv;
  std::vector<std::string> env_strings;
  env_strings.reserve(spec.env.size());
  for (const auto& [k, v] : spec.env) env_strings.push_back(k + "=" + v);
  std::vector<char*> argv, envp;
  for (auto& s : arg_strings) argv.push_back(s.data());
  argv.push_back(nullptr);
  for (auto& s : env_strings) envp.push_back(s.data());
  envp.push_back(nullptr);
  ChildIsolation iso;
  iso.mount_ns = spec.isolation.mount_namespace;
  iso.net_ns = spec.isolation.network_namespace;
  if (!iso.mount_ns && !spec.isolation.mounts.empty()) {
    return Status::InvalidArgument("bind mounts need a private mount namespace (isolation.mount_namespace)");
  }
  for (const auto& m : spec.isolation.mounts) {
    iso.sources.push_back(m.source.c_str());
    iso.targets.push_back(m.target.c_str());
    iso.read_only.push_back(m.read_only ? 1 : 0);
  }
  if (iso.mount_ns && !spec.isolation.namespace_record_dir.empty()) {
    const std::string dir = spec.isolation.namespace_record_dir + "/";
    iso.record_dir_len = dir.size();
    iso.record_path.assign(dir.size() + 32, '\0');
    std::copy(dir.begin(), dir.end(), iso.record_path.begin());
    iso.record_tmp = iso.record_path;
    iso.record_text = spec.isolation.namespace_record.data();
    iso.record_text_len = spec.isolation.namespace_record.size();
  }
  long open_max = ::sysconf(_SC_OPEN_MAX);
  ChildArgs child;
  child.path = path->c_str();
  child.argv = argv.data();
  child.envp = envp.data();
  child.cwd = spec.cwd.empty() ? nullptr : spec.cwd.c_str();
  child.out_w = out_w.get();
  child.err_w = err_w.get();
  child.max_fd = static_cast<int>(std::clamp<long>(open_max > 0 ? open_max : 1024, 3, 65536)) - 1;
  child.parent = ::getpid();
  child.iso = &iso;

  // The child's stack: only the pages it touches (a few) are ever allocated.
  constexpr std::size_t kChildStack = 256 * 1024;
  void* stack = ::mmap(nullptr, kChildStack, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_STACK | MAP_NORESERVE,
                       -1, 0);
  if (stack == MAP_FAILED) return Status::Internal("mmap of the child's stack: " + ErrnoText(errno));
  sigset_t all, old;
  ::sigfillset(&all);
  ::pthread_sigmask(SIG_SETMASK, &all, &old);
  state->started = Clock::now();
  // Returns once the child has exec'd (or failed and exited): CLONE_VFORK.
  pid_t pid = HPO_CLONE(ChildMain, static_cast<char*>(stack) + kChildStack, CLONE_VM | CLONE_VFORK | SIGCHLD, &child);
  const int clone_errno = errno;
  ::pthread_sigmask(SIG_SETMASK, &old, nullptr);
  ::munmap(stack, kChildStack);
  if (pid < 0) return Status::Internal("clone: " + ErrnoText(clone_errno));
  out_w.Close();
  err_w.Close();

  const ChildFailure failure = child.failure;
  if (failure.stage != 0) {
    int ignored;
    while (::waitpid(pid, &ignored, 0) < 0 && errno == EINTR) {
    }
    if (child.recorded_ns != 0) ::unlink(iso.record_path.data());  // no program ran in that namespace
    const std::string& shown = spec.argv[0];
    switch (failure.stage) {
      case ChildFailure::kChdir:
        return Status::InvalidArgument("cannot use \"" + spec.cwd + "\" as working directory: " +
                                       ErrnoText(failure.error));
      case ChildFailure::kExec: {
        std::string why = ErrnoText(failure.error);
        if (failure.error == ENOENT) {
          return Status::NotFound("cannot run \"" + shown + "\": its interpreter (the #! line) or a library it needs is missing");
        }
        if (failure.error == ENOEXEC) why = "not an executable format (a script without a #! line?)";
        return Status::InvalidArgument("cannot run \"" + shown + "\": " + why);
      }
      case ChildFailure::kUnshare:
        return Status::FailedPrecondition(
            "cannot isolate \"" + shown + "\": unshare(" +
            std::string(iso.mount_ns ? "CLONE_NEWNS" : "") + (iso.mount_ns && iso.net_ns ? "|" : "") +
            (iso.net_ns ? "CLONE_NEWNET" : "") + ") failed: " + ErrnoText(failure.error) +
            (failure.error == EPERM ? " (namespaces need root / CAP_SYS_ADMIN)" : ""));
      case ChildFailure::kMakePrivate:
        return Status::FailedPrecondition("cannot make the mounts of \"" + shown +
                                          "\" private: " + ErrnoText(failure.error));
      case ChildFailure::kBind:
      case ChildFailure::kRemountRo: {
        const auto i = static_cast<std::size_t>(failure.detail);
        const BindMount& m = spec.isolation.mounts.at(i);
        return Status::FailedPrecondition(
            std::string(failure.stage == ChildFailure::kBind ? "cannot bind-mount " : "cannot make read-only ") +
            m.source + " on " + m.target + " for \"" + shown + "\": " + ErrnoText(failure.error));
      }
      case ChildFailure::kLoopback:
        return Status::FailedPrecondition("cannot bring up the loopback interface in the network namespace of \"" +
                                          shown + "\": " + ErrnoText(failure.error));
      default:
        return Status::Internal("cannot set up the process for \"" + shown + "\": " + ErrnoText(failure.error));
    }
  }

  state->pid = pid;
  state->out_fd = std::move(out_r);
  state->err_fd = std::move(err_r);
  state->pidfd = Fd(PidfdOpen(pid));
  if (iso.mount_ns) {
    // The program has exec'd (the spawn waits for that) and cannot have been reaped: its
    // namespace is readable unless it has already exited.
    const std::string ns = "/proc/" + std::to_string(pid) + "/ns/mnt";
    state->mount_ns = Fd(::open(ns.c_str(), O_RDONLY | O_CLOEXEC));
    struct stat st {};
    if (state->mount_ns.valid() && ::fstat(state->mount_ns.get(), &st) == 0) {
      state->mount_ns_inode = static_cast<std::uint64_t>(st.st_ino);
    }
    if (child.record_step != nullptr) {
      state->namespace_record_error = "cannot record the mount namespace of \"" + spec.argv[0] + "\" in " +
                                      spec.isolation.namespace_record_dir + " (" + child.record_step +
                                      "): " + ErrnoText(child.record_error);
    }
  }
  State* raw = state.get();
  try {
    state->monitor = std::thread([raw] {
      ::pthread_setname_np(::pthread_self(), "hpo-trial-io");  // for top -H, perf
      raw->Monitor();
    });
  } catch (const std::system_error& e) {
    ::kill(-pid, SIGKILL);
    int ignored;
    while (::waitpid(pid, &ignored, 0) < 0 && errno == EINTR) {
    }
    return Status::Internal(std::string("cannot start the output thread: ") + e.what());
  }
  return std::unique_ptr<TrialProcess>(new TrialProcess(std::move(state)));
}

void TrialProcess::Stop(std::chrono::milliseconds grace, bool term) {
  State& s = *state_;
  {
    std::lock_guard<std::mutex> lock(s.mu);
    if (s.reaped) return;
    // Ended already, not yet reaped: it ended on its own (exit 0 is Completed, not Stopped), and
    // what it left in its group is killed as it is reaped.
    siginfo_t si{};
    if (!s.stop_requested && ::waitid(P_PID, static_cast<id_t>(s.pid), &si, WEXITED | WNOHANG | WNOWAIT) == 0 &&
        si.si_pid == s.pid) {
      return;
    }
    s.stop_requested = true;
    if (term && !s.term_sent) {
      ::kill(-s.pid, SIGTERM);
      s.term_sent = true;
    }
    auto deadline = Clock::now() + std::max(grace, std::chrono::milliseconds(0));
    if (!s.kill_at || deadline < *s.kill_at) s.kill_at = deadline;
  }
  s.Wake();
}

std::optional<ExitInfo> TrialProcess::TryWait() {
  std::lock_guard<std::mutex> lock(state_->mu);
  return state_->exit;
}

ExitInfo TrialProcess::Wait() {
  std::unique_lock<std::mutex> lock(state_->mu);
  state_->done_cv.wait(lock, [this] { return state_->exit.has_value(); });
  return *state_->exit;
}

pid_t TrialProcess::pid() const { return state_->pid; }

std::uint64_t TrialProcess::mount_ns() const { return state_->mount_ns_inode; }

const std::string& TrialProcess::namespace_record_error() const { return state_->namespace_record_error; }

TrialProcess::~TrialProcess() {
  if (!state_) return;
  {
    std::lock_guard<std::mutex> lock(state_->mu);
    state_->kill_now = true;
  }
  state_->Wake();
  if (state_->monitor.joinable()) state_->monitor.join();
}

std::string FindProgram(const std::string& name, const std::string& path_list) {
  std::size_t begin = 0;
  while (begin <= path_list.size()) {
    std::size_t end = path_list.find(':', begin);
    if (end == std::string::npos) end = path_list.size();
    const std::string dir = path_list.substr(begin, end - begin);
    const std::string candidate = (dir.empty() ? std::string(".") : dir) + "/" + name;
    if (CheckExecutable(candidate, candidate).ok()) return candidate;
    begin = end + 1;
  }
  return "";
}

std::string ToolResult::LastLine() const {
  std::string t = output;
  while (!t.empty() && (t.back() == '\n' || t.back() == '\r' || t.back() == ' ')) t.pop_back();
  const auto nl = t.rfind('\n');
  return nl == std::string::npos ? t : t.substr(nl + 1);
}

std::map<std::string, std::string> CurrentEnvironment() {
  std::map<std::string, std::string> env;
  for (char** e = environ; e && *e; ++e) {
    std::string kv = *e;
    const auto eq = kv.find('=');
    if (eq == std::string::npos || eq == 0) continue;
    env.emplace(kv.substr(0, eq), kv.substr(eq + 1));
  }
  return env;
}

Result<ToolResult> RunTool(const std::vector<std::string>& argv, std::chrono::milliseconds timeout,
                           const std::atomic<bool>* cancel) {
  ProcessSpec ps;
  ps.argv = argv;
  ps.env = CurrentEnvironment();
  auto out = std::make_shared<std::string>();
  auto mu = std::make_shared<std::mutex>();
  auto proc = TrialProcess::Start(ps, [out, mu](Stream, const std::string& line) {
    std::lock_guard<std::mutex> lock(*mu);
    out->append(line).push_back('\n');
    if (out->size() > 64 * 1024) out->erase(0, out->size() - 64 * 1024);
  });
  if (!proc.ok()) return proc.status();
  const auto until = std::chrono::steady_clock::now() + timeout;
  std::optional<ExitInfo> exit;
  while (!(exit = (*proc)->TryWait())) {
    const bool cancelled = cancel && cancel->load();
    if (cancelled || std::chrono::steady_clock::now() >= until) {
      (*proc)->Stop(std::chrono::milliseconds(0));
      exit = (*proc)->Wait();
      if (cancelled) return Status::Unavailable("cancelled");
      break;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  ToolResult r;
  r.exit_code = exit->exit_code;
  std::lock_guard<std::mutex> lock(*mu);
  r.output = *out;
  return r;
}

}  // namespace hpo::worker
