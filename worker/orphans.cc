#include "worker/orphans.h"

#include <dirent.h>
#include <fcntl.h>
#include <poll.h>
#include <spawn.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <map>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <fstream>
#include <sstream>
#include <thread>
#include <vector>

#include "common/file_util.h"
#include "proto/messages.h"

namespace hpo::worker {

namespace {

// TRAINING_JOB_NAME from /proc/PID/environ ("" if absent or unreadable).
std::string TrainingJobOf(pid_t pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/environ", std::ios::binary);
  constexpr std::string_view kKey = "TRAINING_JOB_NAME=";
  std::string entry;
  while (std::getline(in, entry, '\0')) {
    if (entry.compare(0, kKey.size(), kKey) == 0) return entry.substr(kKey.size());
  }
  return "";
}

// The value of `key` (with its '=') in /proc/PID/environ; nullopt if absent or unreadable.
std::optional<std::string> EnvironmentValue(pid_t pid, std::string_view key) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/environ", std::ios::binary);
  std::string entry;
  while (std::getline(in, entry, '\0')) {
    if (entry.compare(0, key.size(), key) == 0) return entry.substr(key.size());
  }
  return std::nullopt;
}

// The inode of PID's mount namespace, from the /proc/PID/ns/mnt link ("mnt:[4026532291]"); 0
// when unreadable (gone, a zombie, another user's).
std::uint64_t MountNamespaceOf(pid_t pid) {
  char target[64];
  const std::string link = "/proc/" + std::to_string(pid) + "/ns/mnt";
  const ssize_t n = ::readlink(link.c_str(), target, sizeof target - 1);
  if (n <= 0) return 0;
  target[n] = '\0';
  const char* open = std::strchr(target, '[');
  return open ? std::strtoull(open + 1, nullptr, 10) : 0;
}

std::string NamespaceMarks(const std::string& work_dir) { return work_dir + "/namespaces"; }

// A mark's namespace (its file name), and the directory (device, inode) seen at `visible`.
struct NamespaceMark {
  std::string path;
  std::uint64_t ns = 0;
  dev_t dev = 0;
  ino_t ino = 0;
  std::string visible;
};

std::vector<NamespaceMark> ReadNamespaceMarks(const std::string& work_dir) {
  std::vector<NamespaceMark> marks;
  std::error_code ec;
  for (const auto& e : std::filesystem::directory_iterator(NamespaceMarks(work_dir), ec)) {
    NamespaceMark m;
    m.path = e.path().string();
    m.ns = std::strtoull(e.path().filename().c_str(), nullptr, 10);
    auto text = ReadFile(m.path, 4096);
    if (m.ns == 0 || !text.ok()) continue;
    unsigned long long dev = 0, ino = 0;
    std::istringstream in(*text);
    if (!(in >> dev >> ino >> m.visible) || m.visible.empty() || m.visible[0] != '/') continue;
    m.dev = static_cast<dev_t>(dev);
    m.ino = static_cast<ino_t>(ino);
    marks.push_back(std::move(m));
  }
  return marks;
}

// Whether `pid` is in the marked namespace and sees the marked directory at its place.
bool InMarkedNamespace(pid_t pid, const std::vector<NamespaceMark>& marks) {
  if (marks.empty()) return false;
  const std::uint64_t ns = MountNamespaceOf(pid);
  for (const NamespaceMark& m : marks) {
    if (m.ns != ns) continue;
    struct stat st {};
    const std::string seen = "/proc/" + std::to_string(pid) + "/root" + m.visible;
    if (::stat(seen.c_str(), &st) == 0 && st.st_dev == m.dev && st.st_ino == m.ino) return true;
  }
  return false;
}

std::vector<pid_t> AllPids() {
  std::vector<pid_t> pids;
  DIR* d = ::opendir("/proc");
  if (!d) return pids;
  while (dirent* e = ::readdir(d)) {
    char* end = nullptr;
    long v = std::strtol(e->d_name, &end, 10);
    if (end && *end == '\0' && v > 0) pids.push_back(static_cast<pid_t>(v));
  }
  ::closedir(d);
  return pids;
}

}  // namespace

Status BecomeSubreaper() {
  if (::prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) != 0) {
    return Status::Internal(std::string("prctl(PR_SET_CHILD_SUBREAPER): ") + std::strerror(errno));
  }
  return Status::Ok();
}

namespace {

struct Registry {
  std::mutex mu;
  std::map<const void*, std::pair<std::set<pid_t>, std::set<std::string>>> owners;
  std::set<pid_t> zombies_seen;  // untracked ended children seen by the previous pass
  int64_t last_pass_ms = 0;
};

Registry& TheRegistry() {
  static Registry* r = new Registry();  // never destroyed: agents may outlive static destruction order
  return *r;
}

}  // namespace

void PublishTrainingJobs(const void* owner, std::set<pid_t> tracked, std::set<std::string> running) {
  Registry& r = TheRegistry();
  std::lock_guard<std::mutex> lock(r.mu);
  r.owners[owner] = {std::move(tracked), std::move(running)};
}

void ForgetTrainingJobs(const void* owner) {
  Registry& r = TheRegistry();
  std::lock_guard<std::mutex> lock(r.mu);
  r.owners.erase(owner);
}

int SweepOrphans(int64_t now_ms, int64_t interval_ms, const std::function<void(const std::string&)>& log) {
  Registry& r = TheRegistry();
  std::lock_guard<std::mutex> lock(r.mu);
  if (r.last_pass_ms != 0 && now_ms - r.last_pass_ms < interval_ms) return 0;
  r.last_pass_ms = now_ms;
  std::set<pid_t> tracked;
  std::set<std::string> running, running_jobs;  // attempts (AttemptKey), and their training jobs
  for (const auto& [owner, sets] : r.owners) {
    tracked.insert(sets.first.begin(), sets.first.end());
    running.insert(sets.second.begin(), sets.second.end());
    for (const std::string& k : sets.second) running_jobs.insert(k.substr(0, k.rfind('#')));
  }
  const std::string attempt_key = std::string(kAttemptVariable) + "=";
  const char* inherited = std::getenv("TRAINING_JOB_NAME");  // the worker's own, if it has one
  const pid_t self = ::getpid();
  std::set<pid_t> zombies;
  int killed = 0;
  for (pid_t pid : AllPids()) {
    ProcInfo p;
    if (!ReadProcStat(pid, &p) || p.ppid != self || tracked.count(pid)) continue;
    if (p.state == 'Z') {
      // Ended: reap it once a pass has left it to whoever might be waiting for it.
      if (r.zombies_seen.count(pid)) {
        ::waitpid(pid, nullptr, WNOHANG);
      } else {
        zombies.insert(pid);
      }
      continue;
    }
    const std::string job = TrainingJobOf(pid);
    if (job.empty() || (inherited && job == inherited)) continue;
    const std::optional<std::string> attempt = EnvironmentValue(pid, attempt_key);
    if (attempt ? running.count(job + "#" + *attempt) > 0 : running_jobs.count(job) > 0) continue;
    log("worker: killing process " + std::to_string(pid) + " that training job " + job +
        (attempt ? " attempt " + *attempt : std::string()) +
        " left behind (it outlived its attempt, as a daemon)");
    if (p.pgid == pid) ::kill(-pid, SIGKILL);  // its own group: whatever it started there too
    ::kill(pid, SIGKILL);
    ++killed;
  }
  r.zombies_seen = std::move(zombies);
  return killed;
}

int KillAttemptLeftovers(const std::string& trial, uint32_t attempt, const std::string& host,
                         const std::function<void(const std::string&)>& log, std::uint64_t mount_ns) {
  const std::string attempt_key = std::string(kAttemptVariable) + "=";
  const pid_t self = ::getpid();
  std::set<pid_t> tracked;
  {
    Registry& r = TheRegistry();
    std::lock_guard<std::mutex> lock(r.mu);
    for (const auto& [owner, sets] : r.owners) tracked.insert(sets.first.begin(), sets.first.end());
  }
  std::set<pid_t> killed;
  // A process in the program's private mount namespace is the attempt's whatever its environment
  // says, unless the namespace is this process's own (it never is: the program's is new).
  if (mount_ns != 0 && mount_ns == MountNamespaceOf(self)) mount_ns = 0;
  // Until a pass finds nothing (at most 8): a process killed in one pass may not be dead yet, and
  // its children become ours only once it is, so each pass waits a little after killing. Best
  // effort without a namespace (a process that cleared its environment is not found): the
  // uploads' own checks (common/file_util.h OpenRegularFile) are what keeps them safe.
  for (int pass = 0; pass < 8; ++pass) {
    const size_t before = killed.size();
    for (pid_t pid : AllPids()) {
      ProcInfo p;
      if (pid == self || killed.count(pid) || tracked.count(pid) || !ReadProcStat(pid, &p) || p.state == 'Z') continue;
      const bool in_namespace = mount_ns != 0 && MountNamespaceOf(pid) == mount_ns;
      if (!in_namespace) {
        if (p.ppid != self) continue;
        if (TrainingJobOf(pid) != trial || EnvironmentValue(pid, attempt_key) != std::to_string(attempt)) continue;
        if (!host.empty() && EnvironmentValue(pid, "SM_CURRENT_HOST=").value_or(host) != host) continue;
      }
      if (p.pgid == pid) ::kill(-pid, SIGKILL);
      if (::kill(pid, SIGKILL) == 0) {
        killed.insert(pid);
        log("worker: killing process " + std::to_string(pid) + " that " + trial + " attempt " +
            std::to_string(attempt) + " left running, before its files are uploaded (a container's end takes "
            "its processes with it)");
      }
    }
    if (killed.size() == before) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  return static_cast<int>(killed.size());
}

Result<NamespaceMarkPlan> PlanNamespaceMark(const std::string& work_dir, const std::string& root,
                                           const std::string& visible) {
  struct stat st {};
  if (::stat(root.c_str(), &st) != 0) return Status::IoError("cannot stat " + root + ": " + std::strerror(errno));
  NamespaceMarkPlan plan{.dir = NamespaceMarks(work_dir),
                         .text = std::to_string(static_cast<unsigned long long>(st.st_dev)) + " " +
                                 std::to_string(static_cast<unsigned long long>(st.st_ino)) + " " + visible + "\n"};
  std::error_code ec;
  std::filesystem::create_directories(plan.dir, ec);
  if (ec) return Status::IoError("cannot create " + plan.dir + ": " + ec.message());
  return plan;
}

void UnmarkAttemptNamespace(const std::string& work_dir, std::uint64_t mount_ns) {
  std::error_code ec;
  std::filesystem::remove(NamespaceMarks(work_dir) + "/" + std::to_string(mount_ns), ec);
}

int KillLeftoversOf(const std::string& work_dir, const std::function<void(const std::string&)>& log) {
  const std::string key = std::string(kOwnerVariable) + "=";
  const pid_t self = ::getpid();
  const std::vector<NamespaceMark> marks = ReadNamespaceMarks(work_dir);
  int killed = 0;
  std::set<pid_t> done;  // killed in the first pass, not reaped yet: counted once
  // Twice: a process may start a child between the scan and its kill.
  for (int pass = 0; pass < 2; ++pass) {
    for (pid_t pid : AllPids()) {
      if (pid == self || done.count(pid)) continue;
      // A process that names another worker's directory is that worker's, whatever namespace it
      // is in: a mark's namespace number and directory inode may both have been given out again.
      const auto owner = EnvironmentValue(pid, key);
      if (owner ? *owner != work_dir : !InMarkedNamespace(pid, marks)) continue;
      ProcInfo p;
      const std::string job = TrainingJobOf(pid);
      if (ReadProcStat(pid, &p) && p.pgid == pid) ::kill(-pid, SIGKILL);
      if (::kill(pid, SIGKILL) == 0) {
        done.insert(pid);
        ++killed;
        log("worker: killing process " + std::to_string(pid) + " of training job " + (job.empty() ? "?" : job) +
            ", left running by an earlier worker process on " + work_dir);
      }
    }
  }
  // The marks' programs are gone with the worker that made them.
  for (const NamespaceMark& m : marks) {
    std::error_code ec;
    std::filesystem::remove(m.path, ec);
  }
  return killed;
}

Result<std::unique_ptr<OrphanGuard>> OrphanGuard::Start(const std::string& binary, const std::string& work_dir,
                                                        const ContainerConfig& containers,
                                                        const std::string& container_owner, bool watch_stall) {
  int fds[2];
  if (::pipe2(fds, O_CLOEXEC) != 0) return Status::IoError(std::string("cannot make the orphan guard's pipe: ") + std::strerror(errno));
  posix_spawn_file_actions_t actions;
  posix_spawnattr_t attr;
  posix_spawn_file_actions_init(&actions);
  posix_spawnattr_init(&attr);
  posix_spawn_file_actions_adddup2(&actions, fds[0], 0);  // dup2 clears close-on-exec on 0
  sigset_t none, defaults;
  sigemptyset(&none);
  sigemptyset(&defaults);
  for (int sig : {SIGINT, SIGTERM, SIGHUP, SIGQUIT, SIGPIPE}) sigaddset(&defaults, sig);
  posix_spawnattr_setsigmask(&attr, &none);
  posix_spawnattr_setsigdefault(&attr, &defaults);
  posix_spawnattr_setpgroup(&attr, 0);
  posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF | POSIX_SPAWN_SETPGROUP);
  std::vector<std::string> args = {"hpo", kOrphanGuardCommand, "--work-dir", work_dir};
  if (watch_stall) args.push_back("--watch-stall");
  if (containers.enabled() && !container_owner.empty()) {
    args.insert(args.end(), {"--container-runtime", containers.runtime, "--container-binary", containers.binary,
                             "--container-owner", container_owner});
  }
  std::vector<char*> argv;
  for (std::string& a : args) argv.push_back(a.data());
  argv.push_back(nullptr);
  pid_t pid = -1;
  const int rc = ::posix_spawn(&pid, binary.c_str(), &actions, &attr, argv.data(), environ);
  posix_spawn_file_actions_destroy(&actions);
  posix_spawnattr_destroy(&attr);
  ::close(fds[0]);
  if (rc != 0) {
    ::close(fds[1]);
    return Status::IoError("cannot start the orphan guard " + binary + ": " + std::strerror(rc));
  }
  // Non-blocking: Alive never waits for a guard that does not read.
  (void)::fcntl(fds[1], F_SETFL, ::fcntl(fds[1], F_GETFL) | O_NONBLOCK);
  return std::unique_ptr<OrphanGuard>(new OrphanGuard(pid, fds[1]));
}

void OrphanGuard::Alive(int64_t lease_ms) {
  const auto now = std::chrono::steady_clock::now();
  if (lease_ms != said_lease_ms_) {
    const std::string said = "L" + std::to_string(lease_ms) + "\n";
    if (::write(write_fd_, said.data(), said.size()) == static_cast<ssize_t>(said.size())) said_lease_ms_ = lease_ms;
  } else if (now - said_alive_ < std::chrono::milliseconds(500)) {
    return;
  } else {
    (void)!::write(write_fd_, ".", 1);
  }
  said_alive_ = now;
}

std::optional<int64_t> StallKillTime(const std::string& work_dir) {
  std::ifstream in(std::filesystem::path(work_dir) / kStallMarkFile);
  int64_t ms = 0;
  if (!(in >> ms) || ms <= 0) return std::nullopt;
  return ms;
}

OrphanGuard::~OrphanGuard() {
  ::close(write_fd_);
  // The guard sweeps (a scan of /proc) and exits; a process-wide sweep may have reaped it.
  for (int i = 0; i < 500; ++i) {
    const pid_t r = ::waitpid(pid_, nullptr, WNOHANG);
    if (r == pid_ || (r < 0 && errno == ECHILD)) return;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
}

namespace {

// What a guard does when its worker's training jobs must go: their processes, then their
// containers. Returns false when the containers could not be removed.
bool KillTrainingJobsOf(const std::string& work_dir, const std::function<void(const std::string&)>& log,
                        const ContainerConfig& containers, const std::string& container_owner, const std::string& why) {
  const int n = KillLeftoversOf(work_dir, log);
  if (n > 0) log("hpo worker-guard: " + why + "; killed " + std::to_string(n) + " process(es) they ran");
  if (!containers.enabled() || container_owner.empty()) return true;
  auto removed = RemoveStaleContainers(containers, container_owner);
  if (!removed.ok()) {
    log("hpo worker-guard: cannot remove the containers of the worker on " + work_dir + ": " +
        removed.status().message() + "; the next worker started on that directory removes them");
    return false;
  }
  if (*removed > 0) log("hpo worker-guard: " + why + "; removed " + std::to_string(*removed) + " container(s) they ran in");
  return true;
}

}  // namespace

int RunOrphanGuard(const std::string& work_dir, int64_t lock_wait_ms,
                   const std::function<void(const std::string&)>& log, const ContainerConfig& containers,
                   const std::string& container_owner, bool watch_stall) {
  // SIGPIPE too: with the worker gone, nothing may read its log (hpo run | tee, with tee ended),
  // and the first line written would end the guard after one kill.
  for (int sig : {SIGINT, SIGTERM, SIGHUP, SIGQUIT, SIGPIPE}) ::signal(sig, SIG_IGN);
  // Nothing of the worker's but the pipe (0) and the log (1, 2): a descriptor it left without
  // close-on-exec (another pipe's write end) would otherwise outlive it here (Linux 5.9+).
  (void)::close_range(3, ~0U, 0);
  char buf[256];
  int64_t lease_ms = 0;       // the worker's lease, as it said (watch_stall)
  std::string lease_text;     // an "L<ms>" being read
  bool in_lease = false;
  int64_t silent_ms = 0;      // since the worker last said it runs, counted while the guard ran
  bool killed = false;        // for this silence
  auto last = std::chrono::steady_clock::now();
  for (;;) {
    pollfd p{0, POLLIN, 0};
    const int ready = ::poll(&p, 1, watch_stall ? 1000 : -1);
    const auto now = std::chrono::steady_clock::now();
    const int64_t step = std::chrono::duration_cast<std::chrono::milliseconds>(now - last).count();
    last = now;
    if (ready > 0) {
      const ssize_t n = ::read(0, buf, sizeof buf);
      if (n == 0) break;
      if (n < 0 && errno != EINTR && errno != EAGAIN) break;  // not a pipe after all: nothing to wait for
      for (ssize_t i = 0; i < n; ++i) {
        const char c = buf[i];
        if (c == 'L') {
          in_lease = true;
          lease_text.clear();
        } else if (in_lease && c == '\n') {
          in_lease = false;
          lease_ms = std::strtoll(lease_text.c_str(), nullptr, 10);
        } else if (in_lease && lease_text.size() < 20) {
          lease_text += c;
        }
      }
      if (n > 0) silent_ms = 0, killed = false;
      continue;
    }
    if (ready < 0 && errno != EINTR) break;
    // A step much longer than the poll's second is the guard itself stopped (the machine asleep or
    // paused as a whole, which stops the coordinator's clock too): not the worker's silence.
    if (step <= 3000) silent_ms += step;
    if (watch_stall && lease_ms > 0 && !killed && silent_ms > proto::wire::StallKillAfterMs(lease_ms)) {
      killed = true;
      const int64_t unix_ms = std::chrono::duration_cast<std::chrono::milliseconds>(
                                  std::chrono::system_clock::now().time_since_epoch())
                                  .count();
      (void)WriteFileAtomically((std::filesystem::path(work_dir) / kStallMarkFile).string(),
                                std::to_string(unix_ms) + "\n", Durability::kAtomicOnly, 0600);
      (void)KillTrainingJobsOf(work_dir, log, containers, container_owner,
                               "the worker on " + work_dir + " has not run for " + std::to_string(silent_ms / 1000) +
                                   " s, past its coordinator's lease (" + std::to_string(lease_ms / 1000) +
                                   " s), which runs its training jobs elsewhere");
    }
  }
  // The worker's lock goes with its process; a worker that ended cleanly let it go already.
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(lock_wait_ms);
  Result<std::unique_ptr<DirectoryLock>> lock = LockDirectory(work_dir, kOrphanGuardLockHolder);
  while (!lock.ok() && lock.status().code() == StatusCode::kFailedPrecondition &&
         std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
    lock = LockDirectory(work_dir, kOrphanGuardLockHolder);
  }
  if (!lock.ok()) {
    if (lock.status().code() == StatusCode::kFailedPrecondition) return 0;  // another worker's now
    log("hpo worker-guard: " + lock.status().message());
    return 1;
  }
  return KillTrainingJobsOf(work_dir, log, containers, container_owner,
                            "the worker on " + work_dir + " ended while its training jobs ran")
             ? 0
             : 1;
}

}  // namespace hpo::worker
