#include "worker/process.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/wait.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <filesystem>
#include <fstream>
#include <mutex>
#include <set>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

namespace hpo::worker {
namespace {

namespace fs = std::filesystem;
using std::chrono::milliseconds;
using Clock = std::chrono::steady_clock;

// Collects the lines a process writes; lets a test wait for one.
class Lines {
 public:
  LineCallback Callback() {
    return [this](Stream s, const std::string& line) {
      std::lock_guard<std::mutex> lock(mu_);
      (s == Stream::kStdout ? out_ : err_).push_back(line);
      cv_.notify_all();
    };
  }
  // Waits until stdout has at least n lines (at most 5 s).
  bool WaitForStdout(std::size_t n) {
    std::unique_lock<std::mutex> lock(mu_);
    return cv_.wait_for(lock, std::chrono::seconds(5), [&] { return out_.size() >= n; });
  }
  std::vector<std::string> out() {
    std::lock_guard<std::mutex> lock(mu_);
    return out_;
  }
  std::vector<std::string> err() {
    std::lock_guard<std::mutex> lock(mu_);
    return err_;
  }

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  std::vector<std::string> out_, err_;
};

class TrialProcessTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() /
           ("hpo-process-test-" + std::to_string(::getpid()) + "-" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(dir_);
    fs::create_directories(dir_);
  }
  void TearDown() override {
    std::error_code ec;
    fs::remove_all(dir_, ec);
  }

  ProcessSpec Shell(const std::string& script) {
    ProcessSpec spec;
    spec.argv = {"/bin/sh", "-c", script};
    spec.env = {{"PATH", "/usr/local/bin:/usr/bin:/bin"}};
    spec.cwd = dir_.string();
    spec.log_path = (dir_ / "trial.log").string();
    return spec;
  }

  std::string ReadLog() {
    std::ifstream in(dir_ / "trial.log");
    std::stringstream ss;
    ss << in.rdbuf();
    return ss.str();
  }

  fs::path dir_;
};

// True while pid names a process that has not died (a zombie counts as dead).
bool Alive(pid_t pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/stat");
  if (!in) return false;
  std::string stat((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  auto paren = stat.rfind(')');
  if (paren == std::string::npos || paren + 2 >= stat.size()) return false;
  char state = stat[paren + 2];
  return state != 'Z' && state != 'X';
}

bool DiesWithin(pid_t pid, milliseconds limit) {
  auto until = Clock::now() + limit;
  while (Clock::now() < until) {
    if (!Alive(pid)) return true;
    std::this_thread::sleep_for(milliseconds(5));
  }
  return !Alive(pid);
}

TEST_F(TrialProcessTest, CapturesStdoutAndStderrLinesIncludingAFinalLineWithoutNewline) {
  Lines lines;
  auto p = TrialProcess::Start(Shell("printf 'one\\ntwo\\nlast'; printf 'e1\\ne2' >&2"), lines.Callback());
  ASSERT_TRUE(p.ok()) << p.status().ToString();
  ExitInfo exit = (*p)->Wait();
  EXPECT_EQ(exit.exit_code, 0);
  EXPECT_EQ(exit.signal, 0);
  EXPECT_FALSE(exit.stopped_by_us);
  EXPECT_EQ(lines.out(), (std::vector<std::string>{"one", "two", "last"}));
  EXPECT_EQ(lines.err(), (std::vector<std::string>{"e1", "e2"}));
  // The log has every line of both streams, each as written plus a newline.
  std::string log = ReadLog();
  for (const char* l : {"one\n", "two\n", "last\n", "e1\n", "e2\n"}) {
    EXPECT_NE(log.find(l), std::string::npos) << l;
  }
  EXPECT_EQ(log.size(), std::string("one\ntwo\nlast\ne1\ne2\n").size());
}

TEST_F(TrialProcessTest, LogIsAppendedToNotReplaced) {
  { std::ofstream(dir_ / "trial.log") << "attempt 1\n"; }
  auto p = TrialProcess::Start(Shell("echo attempt 2"), nullptr);
  ASSERT_TRUE(p.ok()) << p.status().ToString();
  (*p)->Wait();
  EXPECT_EQ(ReadLog(), "attempt 1\nattempt 2\n");
}

TEST_F(TrialProcessTest, PassesExactlyTheGivenEnvironmentAndWorkingDirectory) {
  Lines lines;
  ProcessSpec spec;
  spec.argv = {"/usr/bin/env"};
  spec.env = {{"ALPHA", "1"}, {"BETA", "two words"}, {"EMPTY", ""}};
  spec.cwd = dir_.string();
  auto p = TrialProcess::Start(spec, lines.Callback());
  ASSERT_TRUE(p.ok()) << p.status().ToString();
  EXPECT_EQ((*p)->Wait().exit_code, 0);
  std::vector<std::string> out = lines.out();
  EXPECT_EQ(std::set<std::string>(out.begin(), out.end()),
            (std::set<std::string>{"ALPHA=1", "BETA=two words", "EMPTY="}));

  Lines cwd_lines;
  ProcessSpec pwd = Shell("pwd -P");
  auto q = TrialProcess::Start(pwd, cwd_lines.Callback());
  ASSERT_TRUE(q.ok()) << q.status().ToString();
  (*q)->Wait();
  ASSERT_EQ(cwd_lines.out().size(), 1u);
  EXPECT_EQ(cwd_lines.out()[0], fs::canonical(dir_).string());
}

TEST_F(TrialProcessTest, BareProgramNameIsLookedUpInTheProgramsPath) {
  Lines lines;
  ProcessSpec spec;
  spec.argv = {"echo", "found"};
  spec.env = {{"PATH", "/nonexistent:/bin:/usr/bin"}};
  auto p = TrialProcess::Start(spec, lines.Callback());
  ASSERT_TRUE(p.ok()) << p.status().ToString();
  EXPECT_EQ((*p)->Wait().exit_code, 0);
  EXPECT_EQ(lines.out(), (std::vector<std::string>{"found"}));

  spec.argv = {"surely-no-such-program-hpo"};
  auto q = TrialProcess::Start(spec, nullptr);
  ASSERT_FALSE(q.ok());
  EXPECT_NE(q.status().message().find("not found in the program's PATH"), std::string::npos)
      << q.status().message();
}

TEST_F(TrialProcessTest, ReportsExitCodesAndSignals) {
  auto p = TrialProcess::Start(Shell("exit 7"), nullptr);
  ASSERT_TRUE(p.ok()) << p.status().ToString();
  ExitInfo e = (*p)->Wait();
  EXPECT_EQ(e.exit_code, 7);
  EXPECT_EQ(e.signal, 0);

  auto q = TrialProcess::Start(Shell("kill -USR1 $$"), nullptr);
  ASSERT_TRUE(q.ok()) << q.status().ToString();
  ExitInfo f = (*q)->Wait();
  EXPECT_EQ(f.exit_code, -1);
  EXPECT_EQ(f.signal, SIGUSR1);
  EXPECT_FALSE(f.stopped_by_us);
}

TEST_F(TrialProcessTest, MissingProgramFailsAtStartWithAClearMessage) {
  ProcessSpec spec = Shell("");
  spec.argv = {(dir_ / "no-such-trainer").string(), "train"};
  auto p = TrialProcess::Start(spec, nullptr);
  ASSERT_FALSE(p.ok());
  EXPECT_EQ(p.status().code(), StatusCode::kNotFound) << "this machine lacks it: a worker's fault, not the program's";
  EXPECT_NE(p.status().message().find("no-such-trainer"), std::string::npos) << p.status().message();
  EXPECT_NE(p.status().message().find("No such file"), std::string::npos) << p.status().message();
  EXPECT_FALSE(fs::exists(dir_ / "trial.log")) << "a failed start leaves no log behind";
}

TEST_F(TrialProcessTest, ProgramThatIsNotExecutableOrIsADirectoryFailsAtStart) {
  fs::path plain = dir_ / "plain.sh";
  { std::ofstream(plain) << "#!/bin/sh\necho hi\n"; }
  fs::permissions(plain, fs::perms::owner_read | fs::perms::owner_write);
  ProcessSpec spec = Shell("");
  spec.argv = {plain.string()};
  auto p = TrialProcess::Start(spec, nullptr);
  ASSERT_FALSE(p.ok());
  EXPECT_NE(p.status().message().find("not executable"), std::string::npos) << p.status().message();

  spec.argv = {dir_.string()};
  auto q = TrialProcess::Start(spec, nullptr);
  ASSERT_FALSE(q.ok());
  EXPECT_NE(q.status().message().find("directory"), std::string::npos) << q.status().message();
}

TEST_F(TrialProcessTest, ExecFailureIsReportedByStartNotAsAnExitCode) {
  fs::path script = dir_ / "bad-interpreter";
  { std::ofstream(script) << "#!/nonexistent/interpreter\n"; }
  fs::permissions(script, fs::perms::owner_all);
  ProcessSpec spec = Shell("");
  spec.argv = {script.string()};
  auto p = TrialProcess::Start(spec, nullptr);
  ASSERT_FALSE(p.ok());
  EXPECT_EQ(p.status().code(), StatusCode::kNotFound);
  EXPECT_NE(p.status().message().find("interpreter"), std::string::npos) << p.status().message();
}

TEST_F(TrialProcessTest, MissingWorkingDirectoryFailsAtStart) {
  ProcessSpec spec = Shell("true");
  spec.cwd = (dir_ / "missing").string();
  auto p = TrialProcess::Start(spec, nullptr);
  ASSERT_FALSE(p.ok());
  EXPECT_NE(p.status().message().find("working directory"), std::string::npos) << p.status().message();
}

TEST_F(TrialProcessTest, BadEnvironmentNameFailsAtStart) {
  ProcessSpec spec = Shell("true");
  spec.env["A=B"] = "x";
  auto p = TrialProcess::Start(spec, nullptr);
  ASSERT_FALSE(p.ok());
  EXPECT_EQ(p.status().code(), StatusCode::kInvalidArgument);
}

TEST_F(TrialProcessTest, StopSendsSigtermAndACleanExitIsStoppedByUsWithItsExitCode) {
  Lines lines;
  auto p = TrialProcess::Start(Shell("trap 'echo got-term; exit 3' TERM; echo ready; "
                                     "while :; do sleep 0.05; done"),
                               lines.Callback());
  ASSERT_TRUE(p.ok()) << p.status().ToString();
  ASSERT_TRUE(lines.WaitForStdout(1));
  EXPECT_FALSE((*p)->TryWait().has_value());
  (*p)->Stop(std::chrono::seconds(5));
  ExitInfo e = (*p)->Wait();
  EXPECT_TRUE(e.stopped_by_us);
  EXPECT_EQ(e.exit_code, 3);
  EXPECT_EQ(e.signal, 0);
  EXPECT_LT(e.duration, milliseconds(3000)) << "ended by SIGTERM, not by the grace period";
  EXPECT_EQ(lines.out(), (std::vector<std::string>{"ready", "got-term"}));
  // Stop after the end is harmless.
  (*p)->Stop(milliseconds(0));
  ASSERT_TRUE((*p)->TryWait().has_value());
  EXPECT_EQ((*p)->TryWait()->exit_code, 3);
}

TEST_F(TrialProcessTest, TrainerIgnoringSigtermIsKilledAfterTheGrace) {
  Lines lines;
  auto p = TrialProcess::Start(Shell("trap '' TERM; echo ready; while :; do sleep 0.05; done"), lines.Callback());
  ASSERT_TRUE(p.ok()) << p.status().ToString();
  ASSERT_TRUE(lines.WaitForStdout(1));
  auto stop_at = Clock::now();
  (*p)->Stop(milliseconds(200));
  (*p)->Stop(milliseconds(200));  // twice is fine and does not extend the grace
  ExitInfo e = (*p)->Wait();
  auto took = Clock::now() - stop_at;
  EXPECT_TRUE(e.stopped_by_us);
  EXPECT_EQ(e.exit_code, -1);
  EXPECT_EQ(e.signal, SIGKILL);
  EXPECT_GE(took, milliseconds(190));
  EXPECT_LT(took, milliseconds(1500));
}

TEST_F(TrialProcessTest, SecondStopCanShortenTheGrace) {
  Lines lines;
  auto p = TrialProcess::Start(Shell("trap '' TERM; echo ready; while :; do sleep 0.05; done"), lines.Callback());
  ASSERT_TRUE(p.ok()) << p.status().ToString();
  ASSERT_TRUE(lines.WaitForStdout(1));
  auto stop_at = Clock::now();
  (*p)->Stop(std::chrono::seconds(60));
  (*p)->Stop(milliseconds(50));
  ExitInfo e = (*p)->Wait();
  EXPECT_EQ(e.signal, SIGKILL);
  EXPECT_LT(Clock::now() - stop_at, milliseconds(1500));
}

// A wrapper script that runs the trainer without exec (`#!/bin/sh` then `python train.py`) dies
// of the SIGTERM at once; the trainer in its group gets the rest of the grace period to save its
// checkpoint. The group was killed when the wrapper died: every stop lost the checkpoint.
TEST_F(TrialProcessTest, AWrappersTrainerGetsTheGraceAfterTheWrapperDiesOfTheStop) {
  std::ofstream(dir_ / "trainer.sh") << "trap 'sleep 0.4; echo saved; exit 0' TERM\n"
                                        "echo ready\n"
                                        "while :; do sleep 0.05; done\n";
  Lines lines;
  // `; true`: the shell waits for the trainer instead of becoming it.
  auto p = TrialProcess::Start(Shell("/bin/sh " + (dir_ / "trainer.sh").string() + "; true"), lines.Callback());
  ASSERT_TRUE(p.ok()) << p.status().ToString();
  ASSERT_TRUE(lines.WaitForStdout(1));
  const auto stop_at = Clock::now();
  (*p)->Stop(std::chrono::seconds(5));
  ExitInfo e = (*p)->Wait();
  EXPECT_TRUE(e.stopped_by_us);
  EXPECT_EQ(e.signal, SIGTERM) << "the wrapper died of the stop";
  EXPECT_EQ(lines.out(), (std::vector<std::string>{"ready", "saved"})) << "the trainer saved within its grace";
  EXPECT_LT(Clock::now() - stop_at, milliseconds(3000)) << "ended when the trainer did, not at the grace's end";
}

// A stop that comes after the program has exited, before it is reaped (MaxRuntime, early
// stopping or a StopTrial racing a natural end), leaves its exit as it was: exit 0 was reported
// Stopped. Each round stops the program the moment it shows as a zombie.
TEST_F(TrialProcessTest, AStopAfterTheProgramExitedOnItsOwnLeavesItsExitAlone) {
  for (int round = 0; round < 30; ++round) {
    Lines lines;
    auto p = TrialProcess::Start(Shell("exit 0"), lines.Callback());
    ASSERT_TRUE(p.ok()) << p.status().ToString();
    const pid_t pid = (*p)->pid();
    const std::string stat = "/proc/" + std::to_string(pid) + "/stat";
    auto running = [&] {  // read with syscalls: the process may be reaped in the middle
      const int fd = ::open(stat.c_str(), O_RDONLY | O_CLOEXEC);
      if (fd < 0) return false;
      char buf[256];
      const ssize_t n = ::read(fd, buf, sizeof buf - 1);
      ::close(fd);
      if (n <= 0) return false;
      const std::string text(buf, static_cast<size_t>(n));
      const size_t paren = text.rfind(')');
      return paren != std::string::npos && paren + 2 < text.size() && text[paren + 2] != 'Z';
    };
    const auto until = Clock::now() + milliseconds(2000);
    while (running() && Clock::now() < until) {
    }
    (*p)->Stop(milliseconds(0));
    ExitInfo e = (*p)->Wait();
    EXPECT_FALSE(e.stopped_by_us) << "round " << round;
    EXPECT_EQ(e.exit_code, 0) << "round " << round;
  }
}

// The log file is bounded (a print in a hot loop filled the worker's disk and failed every other
// training job there); the lines past the bound still reach the callback (metrics).
TEST_F(TrialProcessTest, TheLogStopsAtItsLimitAndEveryLineStillReachesTheCallback) {
  Lines lines;
  ProcessOptions options;
  options.max_log_bytes = 1000;
  auto p = TrialProcess::Start(Shell("i=0; while [ $i -lt 100 ]; do echo line-$i-0123456789012345678901234567890123; "
                                     "i=$((i+1)); done"),
                               lines.Callback(), options);
  ASSERT_TRUE(p.ok()) << p.status().ToString();
  ExitInfo e = (*p)->Wait();
  EXPECT_EQ(e.exit_code, 0);
  EXPECT_EQ(lines.out().size(), 100u) << "every line reaches the callback";
  const std::string log = ReadLog();
  EXPECT_LE(log.size(), 1000u + 200u) << log.size();
  EXPECT_NE(log.find("hpo: trial.log reached 0 MiB; the program's further output is not kept here"), std::string::npos)
      << log;
  EXPECT_EQ(log.find("line-99-"), std::string::npos);
}

TEST_F(TrialProcessTest, GrandchildrenAreStoppedWithTheGroup) {
  Lines lines;
  auto p = TrialProcess::Start(Shell("sleep 30 & echo $!; sleep 30 & echo $!; wait"), lines.Callback());
  ASSERT_TRUE(p.ok()) << p.status().ToString();
  ASSERT_TRUE(lines.WaitForStdout(2));
  std::vector<pid_t> sleeps;
  for (const auto& l : lines.out()) sleeps.push_back(static_cast<pid_t>(std::stoi(l)));
  for (pid_t s : sleeps) ASSERT_TRUE(Alive(s));
  (*p)->Stop(milliseconds(500));
  ExitInfo e = (*p)->Wait();
  EXPECT_TRUE(e.stopped_by_us);
  EXPECT_EQ(e.signal, SIGTERM);
  for (pid_t s : sleeps) EXPECT_TRUE(DiesWithin(s, milliseconds(1000))) << "sleep " << s << " survived";
}

TEST_F(TrialProcessTest, WhatTheTrainerLeavesRunningIsKilledWhenItExits) {
  Lines lines;
  auto start = Clock::now();
  auto p = TrialProcess::Start(Shell("sleep 30 & echo $!; exit 0"), lines.Callback());
  ASSERT_TRUE(p.ok()) << p.status().ToString();
  ExitInfo e = (*p)->Wait();
  EXPECT_EQ(e.exit_code, 0);
  EXPECT_FALSE(e.stopped_by_us);
  EXPECT_LT(Clock::now() - start, milliseconds(1500)) << "the leftover's open stdout did not hold Wait() up";
  ASSERT_EQ(lines.out().size(), 1u);
  EXPECT_TRUE(DiesWithin(static_cast<pid_t>(std::stoi(lines.out()[0])), milliseconds(1000)));
}

TEST_F(TrialProcessTest, OutputHeldByAnEscapedDaemonIsAbandonedAfterTheDrainTime) {
  Lines lines;
  ProcessOptions options;
  options.output_drain = milliseconds(100);
  auto start = Clock::now();
  auto p = TrialProcess::Start(Shell("setsid sleep 30 & echo $!; sleep 0.1; exit 0"), lines.Callback(), options);
  ASSERT_TRUE(p.ok()) << p.status().ToString();
  ExitInfo e = (*p)->Wait();
  EXPECT_EQ(e.exit_code, 0);
  EXPECT_LT(Clock::now() - start, milliseconds(1500));
  ASSERT_EQ(lines.out().size(), 1u);
  pid_t escaped = static_cast<pid_t>(std::stoi(lines.out()[0]));
  ::kill(escaped, SIGKILL);  // it left our group on purpose; clean up after the test
}

TEST_F(TrialProcessTest, ThousandLineBurstArrivesCompleteAndInOrder) {
  Lines lines;
  auto p = TrialProcess::Start(Shell("i=0; while [ $i -lt 1000 ]; do echo line-$i; i=$((i+1)); done"),
                               lines.Callback());
  ASSERT_TRUE(p.ok()) << p.status().ToString();
  EXPECT_EQ((*p)->Wait().exit_code, 0);
  std::vector<std::string> out = lines.out();
  ASSERT_EQ(out.size(), 1000u);
  for (int i = 0; i < 1000; ++i) ASSERT_EQ(out[i], "line-" + std::to_string(i));
  std::string log = ReadLog();
  EXPECT_EQ(std::count(log.begin(), log.end(), '\n'), 1000);
  EXPECT_EQ(log.substr(0, 14), "line-0\nline-1\n");
}

// A line over twice the limit: its head, then its end (its last max_line_bytes) as a line of its
// own; the middle is dropped. Only the head was kept, and a metric at the end of a 70 KB line
// lost. A line of up to twice the limit is its head and its end: whole (cut at the limit, a
// metric across the cut was in neither piece).
TEST_F(TrialProcessTest, VeryLongLinesKeepTheirHeadAndTheirEnd) {
  Lines lines;
  ProcessOptions options;
  options.max_line_bytes = 10;
  auto p = TrialProcess::Start(
      Shell("printf '0123456789abcdef\\nshort\\n0123456789\\nXYZ0123456789middle0123456789 loss=0.5\\n"
            "0123456789 loss=0.75\\nend'"),
      lines.Callback(), options);
  ASSERT_TRUE(p.ok()) << p.status().ToString();
  (*p)->Wait();
  // (The end's first word, "9", was cut: left out.)
  EXPECT_EQ(lines.out(), (std::vector<std::string>{"0123456789abcdef", "short", "0123456789", "XYZ0123456",
                                                   "loss=0.5", "0123456789 loss=0.75", "end"}));
  // The log says what it left out, between the head and the end (it read as if the line were whole).
  EXPECT_EQ(ReadLog(), "0123456789abcdef\nshort\n0123456789\nXYZ0123456\n"
                       "[hpo: 20 bytes of this line left out: a line keeps its first and last 10 bytes]\n"
                       "loss=0.5\n0123456789 loss=0.75\nend\n");
}

// A progress bar redraws itself with '\r' on one line that outgrows the limit; Keras prints the
// epoch's metrics at its end. What follows the last '\r' is delivered as a line of its own
// (a metric there was silently lost, and an objective with it).
TEST_F(TrialProcessTest, TheLastRedrawOfAnOverlongProgressLineIsDelivered) {
  Lines lines;
  ProcessOptions options;
  options.max_line_bytes = 16;
  auto p = TrialProcess::Start(Shell("printf '1/3 [=  ]\r2/3 [== ]\r3/3 [===] - val_loss: 0.41\nnext\n'"),
                               lines.Callback(), options);
  ASSERT_TRUE(p.ok()) << p.status().ToString();
  (*p)->Wait();
  // The head (cut), then the final redraw (cut to the limit too), then the next line.
  EXPECT_EQ(lines.out(), (std::vector<std::string>{"1/3 [=  ]\r2/3", "3/3 [===] - val_", "next"}));
  // Without a '\r', the head and the line's end.
  Lines plain;
  auto q = TrialProcess::Start(Shell("printf '0123456789abcdefghijklmnopqrstuvwxyz-tail\nnext\n'"), plain.Callback(),
                               options);
  ASSERT_TRUE(q.ok());
  (*q)->Wait();
  EXPECT_EQ(plain.out(), (std::vector<std::string>{"0123456789abcdef", "pqrstuvwxyz-tail", "next"}));
  // An overlong last line without a '\n' keeps its end too.
  Lines last;
  auto r = TrialProcess::Start(Shell("printf '0123456789abcdefghijklmnopqrstuvwxyz loss=0.25'"), last.Callback(),
                               options);
  ASSERT_TRUE(r.ok());
  (*r)->Wait();
  EXPECT_EQ(last.out(), (std::vector<std::string>{"0123456789abcdef", "loss=0.25"}));
}

// A progress bar of thousands of redraws on one line: its head was cut inside a number, and
// "loss=0.0" of "loss=0.000796" became a point of the curve (and a Minimize job's best). The
// head ends before the word the cut goes through; the end is the last redraw, whole.
TEST_F(TrialProcessTest, AnOverlongLinesHeadNeverEndsInHalfANumber) {
  Lines lines;
  ProcessOptions options;
  options.max_line_bytes = 48;  // byte 48 is inside the third redraw's "loss=0.345678"
  auto p = TrialProcess::Start(
      Shell("printf '\\rs1 loss=0.123456\\rs2 loss=0.234567\\rs3 loss=0.345678\\rs4 loss=0.456789"
            "\\rs5 loss=0.567891\\rs6 loss=0.678912\\n'"),
      lines.Callback(), options);
  ASSERT_TRUE(p.ok()) << p.status().ToString();
  (*p)->Wait();
  EXPECT_EQ(lines.out(), (std::vector<std::string>{"\rs1 loss=0.123456\rs2 loss=0.234567\rs3", "s6 loss=0.678912"}));
}

// An overlong line that ends in "\r\n": its end is delivered, not the empty text after its '\r'
// (the metric at its end was lost). A '\r' that ends one read and a redraw that begins the next
// still start a new redraw.
TEST_F(TrialProcessTest, AnOverlongCrlfLineKeepsItsEnd) {
  Lines lines;
  ProcessOptions options;
  options.max_line_bytes = 16;
  auto p = TrialProcess::Start(Shell("printf '0123456789abcdefghijklmnopqrstuvwxyz loss=0.25\\r\\nnext\\n'; "
                                     "printf '0123456789abcdefghijklmnopqrstuvwxyz old=1\\r'; sleep 0.2; "
                                     "printf 'new=2\\n'"),
                               lines.Callback(), options);
  ASSERT_TRUE(p.ok()) << p.status().ToString();
  (*p)->Wait();
  EXPECT_EQ(lines.out(), (std::vector<std::string>{"0123456789abcdef", "loss=0.25", "next", "0123456789abcdef",
                                                   "new=2"}));
}

TEST_F(TrialProcessTest, DefaultLineLimitIs64KiB) {
  Lines lines;
  // 140000 bytes on one line, then 65530 and a metric (a line a user pass lost its objective
  // to: it was cut between "loss=" and "0.75"), then a short one.
  auto p = TrialProcess::Start(Shell("head -c 140000 /dev/zero | tr '\\0' a; echo; "
                                     "head -c 65530 /dev/zero | tr '\\0' c; echo ' loss=0.75'; echo after"),
                               lines.Callback());
  ASSERT_TRUE(p.ok()) << p.status().ToString();
  (*p)->Wait();
  std::vector<std::string> out = lines.out();
  ASSERT_EQ(out.size(), 4u);
  EXPECT_EQ(out[0].size(), 64u * 1024);
  EXPECT_EQ(out[1].size(), 64u * 1024) << "the line's end";
  EXPECT_EQ(out[2].size(), 65540u) << "whole: its first and last 64 KiB are all of it";
  EXPECT_EQ(out[2].substr(out[2].size() - 10), " loss=0.75");
  EXPECT_EQ(out[3], "after");
}

TEST_F(TrialProcessTest, TryWaitIsEmptyWhileRunningAndDestructorKillsAndReaps) {
  Lines lines;
  pid_t pid;
  {
    auto p = TrialProcess::Start(Shell("echo ready; exec sleep 30"), lines.Callback());
    ASSERT_TRUE(p.ok()) << p.status().ToString();
    ASSERT_TRUE(lines.WaitForStdout(1));
    pid = (*p)->pid();
    EXPECT_GT(pid, 0);
    EXPECT_FALSE((*p)->TryWait().has_value());
    EXPECT_EQ(::getpgid(pid), pid) << "the program leads its own process group";
  }
  // Reaped by the destructor: the pid no longer names a child of ours.
  EXPECT_FALSE(Alive(pid));
  EXPECT_EQ(::waitpid(pid, nullptr, WNOHANG), -1);
}

TEST_F(TrialProcessTest, LeaksNoDescriptors) {
  auto count_fds = [] {
    std::size_t n = 0;
    for ([[maybe_unused]] const auto& e : fs::directory_iterator("/proc/self/fd")) ++n;
    return n;
  };
  std::size_t before = count_fds();
  for (int i = 0; i < 5; ++i) {
    auto p = TrialProcess::Start(Shell("echo hi"), nullptr);
    ASSERT_TRUE(p.ok()) << p.status().ToString();
    (*p)->Wait();
  }
  ProcessSpec bad = Shell("");
  bad.argv = {(dir_ / "missing").string()};
  ASSERT_FALSE(TrialProcess::Start(bad, nullptr).ok());
  EXPECT_EQ(count_fds(), before);
}

TEST_F(TrialProcessTest, ProgramInheritsNoDescriptorsBeyondTheStandardThree) {
  Lines lines;
  // A descriptor the worker leaves inheritable must not reach the trainer.
  int opened = ::open("/dev/null", O_RDONLY);
  ASSERT_GE(opened, 0);
  int leaked = ::fcntl(opened, F_DUPFD, 100);  // inheritable: no FD_CLOEXEC
  ::close(opened);
  ASSERT_GE(leaked, 100);
  auto p = TrialProcess::Start(Shell("ls /proc/self/fd"), lines.Callback());
  ::close(leaked);
  ASSERT_TRUE(p.ok()) << p.status().ToString();
  (*p)->Wait();
  // 0, 1, 2 and the descriptor ls opens to read the directory.
  std::vector<std::string> out = lines.out();
  EXPECT_LE(out.size(), 4u);
  for (const auto& fd : out) EXPECT_NE(fd, std::to_string(leaked));
}

TEST_F(TrialProcessTest, ProgramDoesNotInheritIgnoredOrBlockedSignalsOfTheWorker) {
  // The CLI ignores SIGPIPE, and an agent thread may block signals; the trainer must see neither.
  struct sigaction ignore {}, old_usr1 {};
  ignore.sa_handler = SIG_IGN;
  sigemptyset(&ignore.sa_mask);
  ASSERT_EQ(::sigaction(SIGUSR1, &ignore, &old_usr1), 0);
  sigset_t term, old_mask;
  sigemptyset(&term);
  sigaddset(&term, SIGTERM);
  ASSERT_EQ(::pthread_sigmask(SIG_BLOCK, &term, &old_mask), 0);

  auto usr1 = TrialProcess::Start(Shell("kill -USR1 $$; echo survived"), nullptr);
  Lines lines;
  auto term_proc = TrialProcess::Start(Shell("echo ready; exec sleep 30"), lines.Callback());

  ::pthread_sigmask(SIG_SETMASK, &old_mask, nullptr);
  ::sigaction(SIGUSR1, &old_usr1, nullptr);

  ASSERT_TRUE(usr1.ok()) << usr1.status().ToString();
  EXPECT_EQ((*usr1)->Wait().signal, SIGUSR1);
  ASSERT_TRUE(term_proc.ok()) << term_proc.status().ToString();
  ASSERT_TRUE(lines.WaitForStdout(1));
  (*term_proc)->Stop(std::chrono::seconds(5));
  ExitInfo e = (*term_proc)->Wait();
  EXPECT_EQ(e.signal, SIGTERM);
  EXPECT_LT(e.duration, milliseconds(3000));
}

// The program starts from a child that shares the worker's memory until it execs; the worker's
// other threads go on meanwhile (starting programs, allocating). Many starts from several threads
// at once all run the right program with the right environment and output.
TEST_F(TrialProcessTest, ManyThreadsStartProgramsAtOnceWhileOthersAllocate) {
  std::atomic<bool> stop{false};
  std::vector<std::thread> busy;
  for (int t = 0; t < 2; ++t) {
    busy.emplace_back([&stop] {
      std::vector<std::string> keep;
      while (!stop.load()) {
        keep.emplace_back(4096 + keep.size() % 7 * 1000, 'x');
        if (keep.size() > 64) keep.clear();
      }
    });
  }
  constexpr int kThreads = 6, kEach = 15;
  std::vector<std::string> errors[kThreads];
  std::vector<std::thread> starters;
  for (int t = 0; t < kThreads; ++t) {
    starters.emplace_back([this, t, &errors] {
      for (int i = 0; i < kEach; ++i) {
        const std::string id = std::to_string(t) + "-" + std::to_string(i);
        ProcessSpec spec = Shell("echo \"$ID $PWD\"; exit 7");
        spec.env["ID"] = id;
        spec.log_path = (dir_ / ("trial-" + id + ".log")).string();
        Lines lines;
        auto p = TrialProcess::Start(spec, lines.Callback());
        if (!p.ok()) {
          errors[t].push_back(id + ": " + p.status().ToString());
          continue;
        }
        ExitInfo e = (*p)->Wait();
        std::vector<std::string> out = lines.out();
        if (e.exit_code != 7 || out != std::vector<std::string>{id + " " + dir_.string()}) {
          errors[t].push_back(id + ": exit " + std::to_string(e.exit_code) + ", " + std::to_string(out.size()) +
                              " lines, first \"" + (out.empty() ? "" : out[0]) + "\"");
        }
      }
    });
  }
  for (auto& t : starters) t.join();
  stop = true;
  for (auto& t : busy) t.join();
  for (int t = 0; t < kThreads; ++t) EXPECT_TRUE(errors[t].empty()) << errors[t].front();
}

TEST_F(TrialProcessTest, CallbackMayStopTheProcess) {
  std::mutex mu;
  std::condition_variable cv;
  bool ready = false;
  TrialProcess* raw = nullptr;
  auto p = TrialProcess::Start(Shell("echo go; while :; do sleep 0.05; done"), [&](Stream, const std::string& l) {
    std::unique_lock<std::mutex> lock(mu);
    cv.wait(lock, [&] { return ready; });
    if (l == "go") raw->Stop(milliseconds(100));
  });
  ASSERT_TRUE(p.ok()) << p.status().ToString();
  {
    std::lock_guard<std::mutex> lock(mu);
    raw = p->get();
    ready = true;
  }
  cv.notify_all();
  ExitInfo e = (*p)->Wait();
  EXPECT_TRUE(e.stopped_by_us);
}

}  // namespace
}  // namespace hpo::worker

namespace hpo::worker {
namespace {

// A worker killed without warning takes its trials with it (PR_SET_PDEATHSIG), so the
// coordinator's retry elsewhere never runs beside a forgotten copy.
TEST_F(TrialProcessTest, TheProgramDiesWhenTheWorkerThatStartedItIsKilled) {
  const fs::path pid_file = dir_ / "program.pid";
  pid_t worker = ::fork();
  ASSERT_GE(worker, 0);
  if (worker == 0) {  // a stand-in worker: starts the program, then waits to be killed
    auto p = TrialProcess::Start(Shell("echo $$ > " + pid_file.string() + "; exec sleep 60"), nullptr);
    if (!p.ok()) ::_exit(1);
    ::pause();
    ::_exit(0);
  }
  pid_t program = 0;
  for (int i = 0; i < 200 && program == 0; ++i) {
    std::ifstream in(pid_file);
    if (!(in >> program)) program = 0;
    if (program == 0) std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  ASSERT_GT(program, 0) << "the program did not start";
  ASSERT_EQ(::kill(program, 0), 0);
  ::kill(worker, SIGKILL);
  ::waitpid(worker, nullptr, 0);
  bool gone = false;
  for (int i = 0; i < 200 && !gone; ++i) {
    // Gone, or a zombie waiting for init to reap it.
    std::ifstream stat("/proc/" + std::to_string(program) + "/stat");
    std::string line;
    gone = !std::getline(stat, line) || line.find(") Z ") != std::string::npos;
    if (!gone) std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  EXPECT_TRUE(gone) << "pid " << program << " outlived its worker";
  if (!gone) ::kill(program, SIGKILL);
}

}  // namespace
}  // namespace hpo::worker
