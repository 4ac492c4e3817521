// tests/integration/cluster.h: a real hpo cluster on loopback for integration and fault tests.
//
// `Cluster` (a GoogleTest fixture) starts an `hpo coordinator` and three `hpo worker` processes
// (two slots each, the dependency-free trainer examples/trainers/quadratic.cc mapped to the image
// name "quadratic") in a fresh directory under the test temp dir, and talks to the coordinator
// through its SageMaker HTTP API. Processes are killed (SIGTERM, then SIGKILL, whole process
// group) when the fixture ends. Needs HPO_BINARY and HPO_QUADRATIC defined by the build.
#pragma once

#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <gtest/gtest.h>
#include <httplib.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <memory>
#include <optional>
#include <regex>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include <nlohmann/json.hpp>

#include "tests/shell.h"

namespace hpo::testing {


namespace fs = std::filesystem;
using Json = nlohmann::ordered_json;

// A file's bytes ("" when it cannot be read).
inline std::string Slurp(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

// A child process, killed (SIGTERM, then SIGKILL) when the handle goes away.
class Child {
 public:
  explicit Child(std::vector<std::string> argv, const std::string& log) {
    pid_ = ::fork();
    if (pid_ == 0) {
      ::setpgid(0, 0);
      FILE* f = std::freopen(log.c_str(), "a", stderr);
      (void)f;
      std::vector<char*> args;
      for (auto& a : argv) args.push_back(a.data());
      args.push_back(nullptr);
      ::execv(args[0], args.data());
      std::_Exit(127);
    }
  }
  ~Child() { Kill(SIGTERM); }
  void Kill(int sig) {
    if (pid_ <= 0) return;
    ::kill(-pid_, sig);
    ::kill(pid_, sig);
    for (int i = 0; i < 100; ++i) {
      int st;
      if (::waitpid(pid_, &st, WNOHANG) == pid_) {
        pid_ = -1;
        return;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    ::kill(-pid_, SIGKILL);
    ::kill(pid_, SIGKILL);
    ::waitpid(pid_, nullptr, 0);
    pid_ = -1;
  }
  pid_t pid() const { return pid_; }

 private:
  pid_t pid_ = -1;
};

// A port nothing listens on now: bind port 0, read the port, close. The kernel may hand the
// same port to two binds in a row once the first is closed, so a port this process was given
// before is never given again (a coordinator's ZeroMQ and HTTP ports once came out equal).
inline int FreePort() {
  static std::set<int> given;
  for (int tries = 0; tries < 64; ++tries) {
    int fd = ::socket(AF_INET, SOCK_STREAM, 0);
    if (fd < 0) return -1;
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    addr.sin_port = 0;
    if (::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
      ::close(fd);
      return -1;
    }
    socklen_t len = sizeof addr;
    ::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len);
    ::close(fd);
    const int port = ntohs(addr.sin_port);
    if (given.insert(port).second) return port;
  }
  return -1;
}

class Cluster : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::path(::testing::TempDir()) / ("hpo-it-" + std::to_string(::getpid()) + "-" +
                                             ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(dir_);
    fs::create_directories(dir_);
    zmq_port_ = FreePort();
    http_port_ = FreePort();
    BeforeCoordinator();
    StartCoordinator();
    BeforeWorkers();
    for (int i = 1; i <= default_workers_; ++i) StartWorker(i);
    ASSERT_TRUE(WaitForWorkers(default_workers_)) << "the cluster did not come up; see " << dir_;
  }

  // The coordinator on the fixture's ports and state directory (again, after a kill).
  void StartCoordinator() {
    std::vector<std::string> args = {HPO_BINARY, "coordinator", "--listen",
                                     "tcp://" + listen_host_ + ":" + std::to_string(zmq_port_), "--http",
                                     "127.0.0.1:" + std::to_string(http_port_), "--state-dir", (dir_ / "state").string(),
                                     "--lease-ms", "3000", "--grace", grace_s_};
    if (listen_host_ != "127.0.0.1") args.push_back("--insecure");  // a test network, no keys
    args.insert(args.end(), coordinator_args_.begin(), coordinator_args_.end());
    coordinator_ = std::make_unique<Child>(args, (dir_ / "coordinator.log").string());
  }

  // True once the API answers and `n` workers are registered (10 s at most).
  bool WaitForWorkers(int n) {
    for (int i = 0; i < 100; ++i) {
      httplib::Client probe("127.0.0.1", http_port_);
      probe.set_connection_timeout(1, 0);
      probe.set_read_timeout(1, 0);
      auto res = probe.Get("/hpo/v1/health");
      if (res && res->status == 200 && Json::parse(res->body)["workers"] == n) return true;
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
    return false;
  }

  // Starts worker `w<i>`; with `replace`, in that entry of workers_ (after a kill) instead of
  // a new one.
  void StartWorker(int i, std::optional<size_t> replace = std::nullopt) {
    std::vector<std::string> argv = {HPO_BINARY, "worker", "--connect",
                                     "tcp://127.0.0.1:" + std::to_string(worker_port_ ? worker_port_ : zmq_port_),
                                     "--id", "w" + std::to_string(i), "--slots", "2", "--work-dir",
                                     (dir_ / ("w" + std::to_string(i))).string(), "--image",
                                     std::string("quadratic=") + HPO_QUADRATIC};
    argv.insert(argv.end(), worker_args_.begin(), worker_args_.end());
    if (auto own = worker_args_of_.find(i); own != worker_args_of_.end()) {
      argv.insert(argv.end(), own->second.begin(), own->second.end());
    }
    auto child = std::make_unique<Child>(argv, (dir_ / ("worker" + std::to_string(i) + ".log")).string());
    if (replace) {
      workers_.at(*replace) = std::move(child);
    } else {
      workers_.push_back(std::move(child));
    }
  }

  Json Call(const std::string& action, const Json& body, int expect_status = 200) {
    httplib::Client c("127.0.0.1", http_port_);
    c.set_read_timeout(30, 0);
    auto res = c.Post("/", {{"X-Amz-Target", "SageMaker." + action}}, body.dump(), "application/x-amz-json-1.1");
    EXPECT_TRUE(res) << action;
    if (!res) return Json();
    EXPECT_EQ(res->status, expect_status) << action << ": " << res->body;
    return Json::parse(res->body, nullptr, false);
  }

  Json Job(const std::string& name, const std::string& strategy, int jobs, int parallel, Json ranges,
           Json statics = Json::object()) {
    if (!statics.contains("epochs")) statics["epochs"] = "4";  // a test's own count stands
    return {{"HyperParameterTuningJobName", name},
            {"HyperParameterTuningJobConfig",
             {{"Strategy", strategy},
              {"HyperParameterTuningJobObjective", {{"Type", "Minimize"}, {"MetricName", "loss"}}},
              {"ResourceLimits", {{"MaxNumberOfTrainingJobs", jobs}, {"MaxParallelTrainingJobs", parallel}}},
              {"ParameterRanges", ranges}}},
            {"TrainingJobDefinition",
             {{"StaticHyperParameters", statics},
              {"AlgorithmSpecification",
               {{"TrainingImage", "quadratic"},
                {"TrainingInputMode", "File"},
                {"MetricDefinitions", {{{"Name", "loss"}, {"Regex", "loss=([0-9.eE+-]+)"}}}}}},
              {"RoleArn", "arn:aws:iam::123456789012:role/hpo-it"},
              {"OutputDataConfig", {{"S3OutputPath", (dir_ / "out").string()}}},
              {"ResourceConfig", {{"InstanceType", "ml.m5.large"}, {"InstanceCount", 1}, {"VolumeSizeInGB", 1}}},
              {"StoppingCondition", {{"MaxRuntimeInSeconds", 60}}}}}};
  }

  // A Random job (x in [0, 1]) whose training image is the shell script `script`, written to
  // dir_/NAME.sh and made executable.
  Json ScriptJob(const std::string& name, int jobs, int parallel, const std::string& script,
                 Json statics = Json::object()) {
    const fs::path trainer = dir_ / (name + ".sh");
    std::ofstream(trainer) << script;
    fs::permissions(trainer, fs::perms::owner_all | fs::perms::group_read | fs::perms::others_read);
    Json ranges = {{"ContinuousParameterRanges", {{{"Name", "x"}, {"MinValue", "0"}, {"MaxValue", "1"}}}}};
    Json spec = Job(name, "Random", jobs, parallel, ranges, std::move(statics));
    spec["TrainingJobDefinition"]["AlgorithmSpecification"]["TrainingImage"] = "file://" + trainer.string();
    return spec;
  }

  Json WaitFor(const std::string& name, int seconds = 60) {
    Json d;
    for (int i = 0; i < seconds * 10; ++i) {
      d = Call("DescribeHyperParameterTuningJob", {{"HyperParameterTuningJobName", name}});
      std::string st = d.value("HyperParameterTuningJobStatus", "");
      if (st == "Completed" || st == "Failed" || st == "Stopped") return d;
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
    ADD_FAILURE() << name << " did not finish in " << seconds << " s: " << d.dump();
    return d;
  }

  std::vector<Json> Trials(const std::string& name) {
    std::vector<Json> out;
    Json req = {{"HyperParameterTuningJobName", name}, {"MaxResults", 7}};
    for (;;) {
      Json page = Call("ListTrainingJobsForHyperParameterTuningJob", req);
      for (auto& t : page["TrainingJobSummaries"]) out.push_back(t);
      if (!page.contains("NextToken")) return out;
      req["NextToken"] = page["NextToken"];
    }
  }

  // Every trial.log under dir_, read while the workers run: a directory or file that goes away
  // meanwhile (a worker moves prepared attempts out of its spares/ and removes them) is skipped,
  // not an exception.
  // A walk stops at its first error, and the workers remove ended attempts' trees in the
  // background as it goes (ENOENT on a directory it was about to enter): walked again until one
  // walk sees no error. (A test that read the logs right after a job ended missed a trial.log now
  // and then, and failed finding no objective in it.)
  std::vector<fs::path> AllTrialLogs() {
    std::vector<fs::path> logs;
    for (int walk = 0; walk < 20; ++walk) {
      logs.clear();
      std::error_code ec;
      fs::recursive_directory_iterator it(dir_, fs::directory_options::skip_permission_denied, ec), end;
      for (; !ec && it != end; it.increment(ec)) {
        if (it->path().filename() == "trial.log") logs.push_back(it->path());
      }
      if (!ec) break;
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    return logs;
  }

  // Every trial.log of `trial` (each attempt, on every worker under dir_).
  std::vector<fs::path> TrialLogs(const std::string& trial) {
    std::vector<fs::path> logs;
    for (const fs::path& p : AllTrialLogs()) {
      if (p.string().find("/" + trial + "/") != std::string::npos) logs.push_back(p);
    }
    return logs;
  }

  // Waits (5 s at most) until `n` training programs have written to their trial.log.
  void WaitForPrograms(int n) {
    for (int i = 0; i < 100; ++i) {
      int training = 0;
      for (const fs::path& p : AllTrialLogs()) {
        std::error_code ec;
        const auto size = fs::file_size(p, ec);
        training += !ec && size > 0;
      }
      if (training >= n) return;
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
  }

  // The last `loss=` value in a trial's log, read from the worker's trial directory.
  std::optional<double> LastLossInLog(const std::string& trial) {
    for (const fs::path& path : TrialLogs(trial)) {
      std::ifstream in(path);
      std::string line;
      std::optional<double> last;
      std::regex re("loss=([0-9.eE+-]+)");
      std::smatch m;
      while (std::getline(in, line)) {
        if (std::regex_search(line, m, re)) last = std::stod(m[1]);
      }
      // An attempt that never ran (queued ahead, then moved to a free worker) left no lines.
      if (last) return last;
    }
    return std::nullopt;
  }

  // The processes stop (the workers, then the coordinator) and, when the test passed, its folder
  // goes: every run of the suite left some ninety of them, archives and databases included, in
  // the temporary directory. A failed test keeps its own (its messages say "see DIR"), and
  // HPO_KEEP_TEST_DIRS=1 keeps them all. A fixture with a TearDown of its own calls this last.
  void TearDown() override {
    workers_.clear();
    coordinator_.reset();
    const char* keep = std::getenv("HPO_KEEP_TEST_DIRS");
    if (HasFailure() || (keep != nullptr && *keep != '\0' && std::string(keep) != "0")) return;
    std::error_code ec;
    fs::remove_all(dir_, ec);
  }

  // Called once the coordinator is started and before the workers are (e.g. to put a proxy
  // between them: set worker_port_ to where the workers should connect).
  virtual void BeforeWorkers() {}
  // Called before the coordinator starts (e.g. to make network namespaces, set listen_host_ to
  // an address in them and default_workers_ to 0 to start workers of one's own).
  virtual void BeforeCoordinator() {}

  fs::path dir_;
  int zmq_port_ = 0, http_port_ = 0;
  int worker_port_ = 0;  // 0: the workers connect to zmq_port_
  std::string listen_host_ = "127.0.0.1";  // the coordinator's ZeroMQ address (else --insecure)
  int default_workers_ = 3;                // hpo workers w1..wN started by SetUp
  std::string grace_s_ = "1";              // the coordinator's --grace (the lease is 3 s)
  std::vector<std::string> coordinator_args_;  // more `hpo coordinator` flags (set in BeforeCoordinator)
  std::vector<std::string> worker_args_;       // more `hpo worker` flags (set in BeforeCoordinator)
  std::map<int, std::vector<std::string>> worker_args_of_;  // ... for worker w<i> alone
  std::unique_ptr<Child> coordinator_;
  std::vector<std::unique_ptr<Child>> workers_;
};

}  // namespace hpo::testing
