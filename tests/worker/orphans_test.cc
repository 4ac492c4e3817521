// worker/orphans.h: a training program's daemon (setsid, outside its process group) becomes this
// process's child once its parent has gone (subreaper), is spared while its training job runs in
// some agent of the process, and is killed and reaped once none does.
#include "worker/orphans.h"

#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <iterator>
#include <map>
#include <memory>
#include <sstream>
#include <fstream>
#include <string>
#include <thread>
#include <vector>

#include "worker/process.h"

namespace hpo::worker {
namespace {

// A mark for a namespace known after the fact, as a program's start writes it
// (Isolation::namespace_record with PlanNamespaceMark's directory and text).
void Mark(const std::string& work_dir, std::uint64_t ns, const std::string& root, const std::string& visible) {
  auto plan = PlanNamespaceMark(work_dir, root, visible);
  ASSERT_TRUE(plan.ok()) << plan.status().ToString();
  std::ofstream(plan->dir + "/" + std::to_string(ns)) << plan->text;
}

bool Alive(pid_t pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/stat");
  std::string text;
  return std::getline(in, text) && text.find(") Z ") == std::string::npos;
}

bool Exists(pid_t pid) { return ::kill(pid, 0) == 0; }

// The first child of this process whose argv[0] is `argv0` (and argv[1] `arg1`, when given: a
// program's own `sleep 0.01`, orphaned as it exits, was taken for its daemon) (a scan of /proc,
// waiting 2 s at most).
pid_t ChildRunning(const std::string& argv0, const std::string& arg1 = "") {
  for (int i = 0; i < 100; ++i) {
    for (const auto& e : std::filesystem::directory_iterator("/proc")) {
      const std::string name = e.path().filename().string();
      if (name.find_first_not_of("0123456789") != std::string::npos) continue;
      std::ifstream stat(e.path() / "stat");
      std::string text;
      if (!std::getline(stat, text) || text.rfind(')') == std::string::npos) continue;
      std::istringstream rest(text.substr(text.rfind(')') + 1));
      char state;
      long ppid = 0;
      if (!(rest >> state >> ppid) || ppid != ::getpid()) continue;
      std::ifstream cmd(e.path() / "cmdline");
      std::string first, second;
      std::getline(cmd, first, '\0');
      std::getline(cmd, second, '\0');
      if (first == argv0 && (arg1.empty() || second == arg1)) return static_cast<pid_t>(std::stol(name));
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  return -1;
}

// A program in a private mount namespace (`mounts` bound in it) that starts `sleep SECONDS` as
// a daemon in a session of its own, with `launcher` before it ("env -i" clears its environment),
// and exits a second after the daemon has its session (else the group's kill at the exit takes
// it; the second lets TrialProcess read the program's namespace before it exits, which a loaded
// CI machine did not: "namespace 0 / 0"). The
// program (kept until the test ends: its namespace's number stays taken), its namespace's inode
// and the daemon, once this process's child; a failure is added and daemon is -1.
struct NamespaceDaemon {
  std::unique_ptr<TrialProcess> program;
  std::uint64_t ns = 0;
  pid_t daemon = -1;
};
NamespaceDaemon StartNamespaceDaemon(const std::string& launcher, const std::string& seconds,
                                     std::map<std::string, std::string> env, std::vector<BindMount> mounts = {}) {
  NamespaceDaemon out;
  ProcessSpec spec;
  spec.argv = {"/bin/sh", "-c",
               launcher + " setsid sleep " + seconds + " </dev/null >/dev/null 2>&1 & "
               "while [ \"$(cut -d' ' -f6 /proc/$!/stat)\" != \"$!\" ]; do sleep 0.01; done; sleep 1; exit 0"};
  spec.env = std::move(env);
  spec.env["PATH"] = "/usr/bin:/bin";
  spec.isolation.mount_namespace = true;
  spec.isolation.mounts = std::move(mounts);
  auto program = TrialProcess::Start(spec, [](Stream, const std::string&) {});
  if (!program.ok()) {
    ADD_FAILURE() << program.status().ToString();
    return out;
  }
  out.program = std::move(*program);
  const ExitInfo exit = out.program->Wait();
  out.ns = out.program->mount_ns();
  if (exit.exit_code != 0 || out.ns == 0 || exit.mount_ns != out.ns) {
    ADD_FAILURE() << "exit " << exit.exit_code << ", namespace " << out.ns << " / " << exit.mount_ns;
    return out;
  }
  out.daemon = ChildRunning("sleep", seconds);
  if (out.daemon <= 0) ADD_FAILURE() << "the daemon did not become this process's child";
  return out;
}

// A training program of `job` (and `attempt`, when given) that starts `sleep SECONDS` as a daemon
// in its own session and exits: the daemon's pid, once it is this process's child (-1 if not).
pid_t DaemonOf(const std::string& job, const char* attempt, const std::string& seconds) {
  pid_t program = ::fork();
  if (program < 0) return -1;
  if (program == 0) {
    ::setenv("TRAINING_JOB_NAME", job.c_str(), 1);
    if (attempt) ::setenv(kAttemptVariable, attempt, 1);
    const std::string script = "setsid sleep " + seconds + " </dev/null >/dev/null 2>&1 & exit 0";
    ::execl("/bin/sh", "sh", "-c", script.c_str(), nullptr);
    ::_exit(127);
  }
  int status = 0;
  if (::waitpid(program, &status, 0) != program) return -1;
  return ChildRunning("sleep");
}

TEST(Orphans, ADaemonOfAnEndedTrainingJobIsKilledAndReaped) {
  ASSERT_TRUE(BecomeSubreaper().ok());
  const pid_t daemon = DaemonOf("orphans-001-0a0b0c0d", nullptr, "60");
  ASSERT_GT(daemon, 0) << "the daemon did not become this process's child";

  std::vector<std::string> logged;
  auto log = [&](const std::string& line) { logged.push_back(line); };
  int owner = 0;
  PublishTrainingJobs(&owner, {}, {"orphans-001-0a0b0c0d"});
  EXPECT_EQ(SweepOrphans(1, 0, log), 0) << "spared while its training job runs";
  EXPECT_TRUE(Alive(daemon));
  EXPECT_EQ(SweepOrphans(2, 1000, log), 0) << "at most one pass per interval";

  PublishTrainingJobs(&owner, {}, {});
  EXPECT_EQ(SweepOrphans(3000, 1000, log), 1);
  ASSERT_EQ(logged.size(), 1u);
  EXPECT_NE(logged[0].find("training job orphans-001-0a0b0c0d left behind"), std::string::npos) << logged[0];
  for (int i = 0; i < 100 && Alive(daemon); ++i) std::this_thread::sleep_for(std::chrono::milliseconds(10));
  EXPECT_FALSE(Alive(daemon)) << "killed";
  // Reaped on the second pass that finds it ended (the first leaves it to a waiting tool).
  SweepOrphans(5000, 1000, log);
  EXPECT_TRUE(Exists(daemon)) << "a zombie still, after one pass";
  SweepOrphans(7000, 1000, log);
  EXPECT_FALSE(Exists(daemon)) << "reaped";
  ForgetTrainingJobs(&owner);
}

// A daemon of attempt 1 is not spared by attempt 2 of the same training job, which a retry brings
// to the same worker at once (it held the GPU memory and ports the retry needed).
TEST(Orphans, ADaemonOfAFailedAttemptIsKilledWhileTheRetryRuns) {
  ASSERT_TRUE(BecomeSubreaper().ok());
  const pid_t daemon = DaemonOf("orphans-002-0a0b0c0d", "1", "61");
  ASSERT_GT(daemon, 0);
  std::vector<std::string> logged;
  auto log = [&](const std::string& line) { logged.push_back(line); };
  int owner = 0;
  PublishTrainingJobs(&owner, {}, {AttemptKey("orphans-002-0a0b0c0d", 1)});
  EXPECT_EQ(SweepOrphans(10000, 0, log), 0) << "spared while its own attempt runs";
  PublishTrainingJobs(&owner, {}, {AttemptKey("orphans-002-0a0b0c0d", 2)});
  EXPECT_EQ(SweepOrphans(20000, 0, log), 1) << "the retry does not spare attempt 1's daemon";
  ASSERT_EQ(logged.size(), 1u);
  EXPECT_NE(logged[0].find("training job orphans-002-0a0b0c0d attempt 1 left behind"), std::string::npos) << logged[0];
  for (int i = 0; i < 100 && Alive(daemon); ++i) std::this_thread::sleep_for(std::chrono::milliseconds(10));
  EXPECT_FALSE(Alive(daemon));
  SweepOrphans(30000, 0, log);
  SweepOrphans(40000, 0, log);
  ForgetTrainingJobs(&owner);
}

// Before an attempt's files are uploaded, what it left running is killed (as a container's end
// takes its processes): a daemon still writing into the model directory could swap a file for a
// FIFO under the packing and block it for good. Another attempt's daemon is left to the sweep.
TEST(Orphans, AnAttemptsLeftoversAreKilledBeforeItsUploadAndNoOneElses) {
  ASSERT_TRUE(BecomeSubreaper().ok());
  const pid_t earlier = DaemonOf("orphans-003-0a0b0c0d", "1", "63");
  ASSERT_GT(earlier, 0);
  // Attempt 2's daemon runs another program, to be told apart from attempt 1's sleep.
  const pid_t program = ::fork();
  ASSERT_GE(program, 0);
  if (program == 0) {
    ::setenv("TRAINING_JOB_NAME", "orphans-003-0a0b0c0d", 1);
    ::setenv(kAttemptVariable, "2", 1);
    ::setenv("SM_CURRENT_HOST", "algo-2", 1);
    ::execl("/bin/sh", "sh", "-c", "setsid tail -f /dev/null </dev/null >/dev/null 2>&1 & exit 0", nullptr);
    ::_exit(127);
  }
  ASSERT_EQ(::waitpid(program, nullptr, 0), program);
  const pid_t mine = ChildRunning("tail");
  ASSERT_GT(mine, 0);
  std::vector<std::string> logged;
  auto log = [&](const std::string& line) { logged.push_back(line); };
  // The end of algo-1 of a multi-host attempt does not kill what algo-2 runs (in hpo run both
  // hosts are this process's).
  EXPECT_EQ(KillAttemptLeftovers("orphans-003-0a0b0c0d", 2, "algo-1", log), 0);
  EXPECT_TRUE(Alive(mine));
  EXPECT_EQ(KillAttemptLeftovers("orphans-003-0a0b0c0d", 2, "algo-2", log), 1);
  ASSERT_EQ(logged.size(), 1u);
  EXPECT_NE(logged[0].find("orphans-003-0a0b0c0d attempt 2 left running, before its files are uploaded"),
            std::string::npos)
      << logged[0];
  for (int i = 0; i < 100 && Alive(mine); ++i) std::this_thread::sleep_for(std::chrono::milliseconds(10));
  EXPECT_FALSE(Alive(mine));
  EXPECT_TRUE(Alive(earlier)) << "another attempt's daemon is not this upload's";
  EXPECT_EQ(KillAttemptLeftovers("orphans-003-0a0b0c0d", 1, "", log), 1);
  for (int i = 0; i < 100 && Alive(earlier); ++i) std::this_thread::sleep_for(std::chrono::milliseconds(10));
  EXPECT_FALSE(Alive(earlier));
  int owner = 0;
  PublishTrainingJobs(&owner, {}, {});
  SweepOrphans(50000, 0, log);  // reaps the two
  SweepOrphans(60000, 0, log);
  ForgetTrainingJobs(&owner);
}

// A daemon that also clears its environment (env -i) names no training job; run in the
// program's private mount namespace (a worker as root), it is still the attempt's, found there.
TEST(Orphans, ADaemonThatClearedItsEnvironmentIsFoundInTheProgramsMountNamespace) {
  if (::geteuid() != 0) GTEST_SKIP() << "a private mount namespace needs root";
  ASSERT_TRUE(BecomeSubreaper().ok());
  NamespaceDaemon started =
      StartNamespaceDaemon("env -i", "67", {{"TRAINING_JOB_NAME", "orphans-005-0a0b0c0d"}, {kAttemptVariable, "1"}});
  const pid_t daemon = started.daemon;
  ASSERT_GT(daemon, 0);
  std::ifstream environ("/proc/" + std::to_string(daemon) + "/environ", std::ios::binary);
  EXPECT_EQ(std::string(std::istreambuf_iterator<char>(environ), {}), "") << "an empty environment";

  std::vector<std::string> logged;
  auto log = [&](const std::string& line) { logged.push_back(line); };
  EXPECT_EQ(KillAttemptLeftovers("orphans-005-0a0b0c0d", 1, "", log), 0) << "its environment names nothing";
  EXPECT_TRUE(Alive(daemon));
  EXPECT_EQ(KillAttemptLeftovers("orphans-005-0a0b0c0d", 1, "", log, 1), 0) << "another namespace";
  EXPECT_EQ(KillAttemptLeftovers("orphans-005-0a0b0c0d", 1, "", log, started.ns), 1);
  ASSERT_EQ(logged.size(), 1u);
  EXPECT_NE(logged[0].find("orphans-005-0a0b0c0d attempt 1 left running"), std::string::npos) << logged[0];
  for (int i = 0; i < 100 && Alive(daemon); ++i) std::this_thread::sleep_for(std::chrono::milliseconds(10));
  EXPECT_FALSE(Alive(daemon));
  ::waitpid(daemon, nullptr, 0);
}

// The same daemon after its worker was killed without warning: the guard's (or the next
// worker's) sweep of the work directory finds it by the namespace the worker marked there, and
// only while it still sees the marked directory (a namespace number given out again names
// someone else's processes).
TEST(Orphans, AKilledWorkersDaemonWithAClearedEnvironmentIsFoundByItsMarkedNamespace) {
  if (::geteuid() != 0) GTEST_SKIP() << "a private mount namespace needs root";
  ASSERT_TRUE(BecomeSubreaper().ok());
  const std::filesystem::path work = std::filesystem::temp_directory_path() / ("hpo-orphans-" + std::to_string(::getpid()));
  const std::filesystem::path root = work / "attempt-root", visible = work / "visible", other = work / "other";
  for (const auto& d : {root, visible, other}) std::filesystem::create_directories(d);
  NamespaceDaemon started = StartNamespaceDaemon("env -i", "68", {}, {{root.string(), visible.string(), false}});
  const std::uint64_t ns = started.ns;
  const pid_t daemon = started.daemon;
  ASSERT_GT(daemon, 0);
  std::vector<std::string> logged;
  auto log = [&](const std::string& line) { logged.push_back(line); };

  // A mark whose directory is not what the namespace shows there: nothing.
  const std::string elsewhere = (work / "elsewhere").string();
  Mark(elsewhere, ns, other.string(), visible.string());
  EXPECT_EQ(KillLeftoversOf(elsewhere, log), 0);
  EXPECT_TRUE(Alive(daemon));
  EXPECT_TRUE(std::filesystem::is_empty(elsewhere + "/namespaces")) << "a sweep removes the marks it read";
  // An unmarked attempt: nothing either (its environment is empty).
  Mark(work.string(), ns, root.string(), visible.string());
  UnmarkAttemptNamespace(work.string(), ns);
  EXPECT_EQ(KillLeftoversOf(work.string(), log), 0);
  EXPECT_TRUE(Alive(daemon));
  // Marked: killed.
  Mark(work.string(), ns, root.string(), visible.string());
  EXPECT_EQ(KillLeftoversOf(work.string(), log), 1);
  ASSERT_EQ(logged.size(), 1u);
  EXPECT_NE(logged[0].find("left running by an earlier worker process on " + work.string()), std::string::npos)
      << logged[0];
  for (int i = 0; i < 100 && Alive(daemon); ++i) std::this_thread::sleep_for(std::chrono::milliseconds(10));
  EXPECT_FALSE(Alive(daemon));
  ::waitpid(daemon, nullptr, 0);
  EXPECT_TRUE(std::filesystem::is_empty(work / "namespaces"));
  std::filesystem::remove_all(work);
}

// Another worker's program in a namespace that a stale mark names (the kernel gave the number
// out again, and the marked directory's inode too): its environment names its own worker's
// directory, so the sweep leaves it alone. A guard's sweep at the end of a test's worker once
// killed the training program of another test running beside it this way.
TEST(Orphans, AProcessOfAnotherWorkersDirectoryIsSparedInAMarkedNamespace) {
  if (::geteuid() != 0) GTEST_SKIP() << "a private mount namespace needs root";
  ASSERT_TRUE(BecomeSubreaper().ok());
  const std::filesystem::path work =
      std::filesystem::temp_directory_path() / ("hpo-orphans-other-" + std::to_string(::getpid()));
  const std::filesystem::path root = work / "attempt-root", visible = work / "visible";
  for (const auto& d : {root, visible}) std::filesystem::create_directories(d);
  NamespaceDaemon started = StartNamespaceDaemon("", "69", {{kOwnerVariable, (work / "another-worker").string()}},
                                                 {{root.string(), visible.string(), false}});
  const std::uint64_t ns = started.ns;
  const pid_t daemon = started.daemon;
  ASSERT_GT(daemon, 0);
  std::vector<std::string> logged;
  auto log = [&](const std::string& line) { logged.push_back(line); };
  Mark(work.string(), ns, root.string(), visible.string());
  EXPECT_EQ(KillLeftoversOf(work.string(), log), 0) << (logged.empty() ? "" : logged[0]);
  EXPECT_TRUE(Alive(daemon));
  EXPECT_TRUE(std::filesystem::is_empty(work / "namespaces")) << "a sweep removes the marks it read";
  // Its own worker's sweep finds it by its environment.
  EXPECT_EQ(KillLeftoversOf((work / "another-worker").string(), log), 1);
  for (int i = 0; i < 100 && Alive(daemon); ++i) std::this_thread::sleep_for(std::chrono::milliseconds(10));
  EXPECT_FALSE(Alive(daemon));
  ::waitpid(daemon, nullptr, 0);
  std::filesystem::remove_all(work);
}

TEST(Orphans, ChildrenWithoutATrainingJobAreLeftAlone) {
  pid_t tool = ::fork();
  ASSERT_GE(tool, 0);
  if (tool == 0) {
    ::unsetenv("TRAINING_JOB_NAME");
    ::execl("/bin/sleep", "sleep", "30", nullptr);
    ::_exit(127);
  }
  std::this_thread::sleep_for(std::chrono::milliseconds(100));
  EXPECT_EQ(SweepOrphans(100000, 0, [](const std::string&) {}), 0);
  EXPECT_TRUE(Alive(tool));
  ::kill(tool, SIGKILL);
  ::waitpid(tool, nullptr, 0);
}

}  // namespace
}  // namespace hpo::worker
