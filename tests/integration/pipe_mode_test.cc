// Pipe input mode end to end (worker/pipe_channel.h): a real `hpo coordinator` and `hpo worker`,
// and a Python trainer that reads its channels the way SageMaker's Pipe mode serves them, from
// the FIFOs SM_CHANNEL_<NAME>_<epoch> (/opt/ml/input/data/train_0, train_1, ...):
//   - "train": gzip-compressed objects from a file:// S3Uri, CompressionType Gzip and
//     RecordWrapperType RecordIO: two epochs, each one RecordIO record per object holding the
//     decompressed object, checked byte for byte;
//   - "extra": plain objects, one epoch, their concatenation.
// It checks inputdataconfig.json too, prints its metric and completes. Two ways to run a worker:
// as root (the trial in a private mount namespace, the FIFOs seen through /opt/ml) and as an
// unprivileged user (no namespace: SM_CHANNEL_TRAIN names the attempt's own directory).
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>
#include <httplib.h>
#include <nlohmann/json.hpp>

#include "tests/integration/cluster.h"
#include "tests/worker/gzip_data.h"

namespace {

namespace fs = std::filesystem;
using hpo::testing::Gzip;
using Json = nlohmann::ordered_json;

using hpo::testing::Child;
using hpo::testing::FreePort;

using hpo::testing::Slurp;


// Object i of "train": the trainer computes the same text (PART below).
std::string Part(int i, int lines) {
  std::string s;
  for (int j = 0; j < lines; ++j)
    s += "line " + std::to_string(j) + " of part " + std::to_string(i) + "\n";
  return s;
}

constexpr const char* kTrainer = R"PY(#!/usr/bin/python3
import json, os, stat, struct, sys

def fail(msg):
    with open(os.path.join(os.environ.get("SM_OUTPUT_DIR", "/tmp"), "failure"), "w") as f:
        f.write(msg)
    print("CHECK FAILED: " + msg, flush=True)
    sys.exit(1)

hp = json.load(open(os.path.join(os.environ["SM_INPUT_CONFIG_DIR"], "hyperparameters.json")))
parts, lines = int(hp["parts"]), int(hp["lines"])
train = os.environ["SM_CHANNEL_TRAIN"]
extra = os.environ["SM_CHANNEL_EXTRA"]
if hp["namespace"] == "1" and train != "/opt/ml/input/data/train":
    fail("SM_CHANNEL_TRAIN is " + train)
for ch in (train, extra):
    if not os.path.isdir(ch):
        fail(ch + " is not a directory")
    if os.listdir(ch):
        fail(ch + " is not empty: %r" % os.listdir(ch))
# The host names: the training toolkit looks up every host before it runs a script and waits up
# to 15 minutes for them. With a mount namespace algo-1 resolves; without one SM_STUDIO_LOCAL_MODE
# tells the toolkit not to wait.
import socket
if hp["namespace"] == "1":
    try:
        socket.gethostbyname("algo-1")
    except OSError as e:
        fail("algo-1 does not resolve in a single-host trial: %s" % e)
    if "SM_STUDIO_LOCAL_MODE" in os.environ:
        fail("SM_STUDIO_LOCAL_MODE is set although algo-1 resolves")
elif os.environ.get("SM_STUDIO_LOCAL_MODE") != "true":
    fail("SM_STUDIO_LOCAL_MODE is %r without a mount namespace" % os.environ.get("SM_STUDIO_LOCAL_MODE"))
cfg = json.load(open(os.path.join(os.environ["SM_INPUT_CONFIG_DIR"], "inputdataconfig.json")))
want_cfg = {
    "extra": {"RecordWrapperType": "None", "S3DistributionType": "FullyReplicated", "TrainingInputMode": "Pipe"},
    "train": {"CompressionType": "Gzip", "ContentType": "text/plain", "RecordWrapperType": "RecordIO",
              "S3DistributionType": "FullyReplicated", "TrainingInputMode": "Pipe"},
}
if cfg != want_cfg:
    fail("inputdataconfig.json is " + json.dumps(cfg, sort_keys=True))

def part(i):
    return "".join("line %d of part %d\n" % (j, i) for j in range(lines)).encode()

def records(path):
    if not stat.S_ISFIFO(os.stat(path).st_mode):
        fail(path + " is not a FIFO")
    out = []
    with open(path, "rb") as f:
        while True:
            head = f.read(8)
            if not head:
                return out
            if len(head) != 8:
                fail("%s: a record header of %d bytes" % (path, len(head)))
            magic, lrec = struct.unpack("<II", head)
            if magic != 0xCED7230A:
                fail("%s: record %d has magic %#x" % (path, len(out), magic))
            if lrec >> 29:
                fail("%s: record %d has cflag %d" % (path, len(out), lrec >> 29))
            n = lrec & ((1 << 29) - 1)
            body = f.read(n)
            pad = f.read((4 - n % 4) % 4)
            if len(body) != n or pad != b"\0" * ((4 - n % 4) % 4):
                fail("%s: record %d is cut short or badly padded" % (path, len(out)))
            out.append(body)

if hp.get("corrupt") == "1":
    # The second object is not gzip: epoch 0 ends after the first record, and no epoch follows.
    got = records(train + "_0")
    if got != [part(0)]:
        fail("corrupt: %d records, lengths %s" % (len(got), [len(g) for g in got]))
    print("corrupt: 1 record before the end of the feeding", flush=True)
    print("loss=0.5")
    sys.exit(0)
want = [part(i) for i in range(parts)]
total = 0
for epoch in range(2):
    got = records("%s_%d" % (train, epoch))
    if got != want:
        fail("epoch %d: %d records, lengths %s, expected %s" % (epoch, len(got), [len(g) for g in got], [len(w) for w in want]))
    total += sum(len(g) for g in got)
    print("epoch %d: %d records" % (epoch, len(got)), flush=True)
with open(extra + "_0", "rb") as f:
    data = f.read()
if data != b"alpha\nbeta\n":
    fail("extra_0 gave %r" % data[:100])
print("bytes=%d" % total)
print("loss=0.125")
)PY";

struct Mode {
  const char* name;
  bool as_root;  // the worker runs as root (mount namespace); else as nobody (setpriv) or oneself
  friend void PrintTo(const Mode& m, std::ostream* os) { *os << m.name; }
};

class PipeMode : public ::testing::TestWithParam<Mode> {
 protected:
  void SetUp() override {
    const Mode mode = GetParam();
    if (mode.as_root && ::geteuid() != 0) GTEST_SKIP() << "the /opt/ml mount namespace needs root";
    const bool setpriv = !mode.as_root && ::geteuid() == 0;
    if (setpriv && ::access("/usr/bin/setpriv", X_OK) != 0)
      GTEST_SKIP() << "no /usr/bin/setpriv to drop root";
    if (::access("/usr/bin/python3", X_OK) != 0)
      GTEST_SKIP() << "no /usr/bin/python3 for the trainer";
    dir_ = fs::path(::testing::TempDir()) /
           ("hpo-pipe-" + std::to_string(::getpid()) + "-" + mode.name);
    fs::remove_all(dir_);
    fs::create_directories(dir_);
    fs::permissions(dir_, fs::perms::all);  // 0777: an unprivileged worker writes its output here
    std::ofstream(dir_ / "train.py") << kTrainer;
    fs::permissions(dir_ / "train.py", fs::perms::owner_all | fs::perms::group_read |
                                           fs::perms::group_exec | fs::perms::others_read |
                                           fs::perms::others_exec);
    for (int i = 0; i < kParts; ++i) {
      const fs::path p = dir_ / "data" / "train" / ("part-" + std::to_string(i) + ".gz");
      fs::create_directories(p.parent_path());
      std::ofstream(p, std::ios::binary) << Gzip(Part(i, kLines));
    }
    fs::create_directories(dir_ / "data" / "extra");
    std::ofstream(dir_ / "data" / "extra" / "a.txt") << "alpha\n";
    std::ofstream(dir_ / "data" / "extra" / "b.txt") << "beta\n";
    fs::create_directories(dir_ / "out");
    fs::permissions(dir_ / "out", fs::perms::all);  // the unprivileged worker uploads here
    // The work directory its worker's own, and only its: one others may write in is refused.
    fs::create_directories(dir_ / "w1");
    fs::permissions(dir_ / "w1", fs::perms::owner_all, fs::perm_options::replace);
    if (setpriv && ::chown((dir_ / "w1").c_str(), 65534, 65534) != 0) FAIL() << "cannot chown " << dir_ / "w1";
    zmq_port_ = FreePort();
    http_port_ = FreePort();
    coordinator_ = std::make_unique<Child>(
        std::vector<std::string>{HPO_BINARY, "coordinator", "--listen",
                                 "tcp://127.0.0.1:" + std::to_string(zmq_port_), "--http",
                                 "127.0.0.1:" + std::to_string(http_port_), "--state-dir",
                                 (dir_ / "state").string(), "--grace", "1"},
        (dir_ / "coordinator.log").string());
    std::vector<std::string> worker;
    if (setpriv) worker = {"/usr/bin/setpriv", "--reuid=65534", "--regid=65534", "--clear-groups"};
    for (std::string a : {std::string(HPO_BINARY), std::string("worker"), std::string("--connect"),
                          "tcp://127.0.0.1:" + std::to_string(zmq_port_), std::string("--id"),
                          std::string("w1"), std::string("--slots"), std::string("1"),
                          std::string("--work-dir"), (dir_ / "w1").string()}) {
      worker.push_back(a);
    }
    worker_ = std::make_unique<Child>(worker, (dir_ / "worker.log").string());
    for (int i = 0; i < 100; ++i) {
      httplib::Client probe("127.0.0.1", http_port_);
      auto res = probe.Get("/hpo/v1/health");
      if (res && res->status == 200 && Json::parse(res->body)["workers"] == 1) return;
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
    FAIL() << "the cluster did not come up; see " << dir_;
  }
  void TearDown() override {
    worker_.reset();
    coordinator_.reset();
    if (!HasFailure()) fs::remove_all(dir_);
  }

  Json Call(const std::string& action, const Json& body) {
    httplib::Client c("127.0.0.1", http_port_);
    c.set_read_timeout(30, 0);
    auto res = c.Post("/", {{"X-Amz-Target", "SageMaker." + action}}, body.dump(),
                      "application/x-amz-json-1.1");
    EXPECT_TRUE(res && res->status == 200) << action << ": " << (res ? res->body : "no answer");
    return res ? Json::parse(res->body, nullptr, false) : Json();
  }

  // The job: one training job of train.py, "train" from `train_dir` (Gzip, RecordIO), "extra"
  // plain; waits for its end and returns the training job's summary.
  Json RunJob(const fs::path& train_dir, bool corrupt) {
    const bool ns = GetParam().as_root;
    Json job = {
        {"HyperParameterTuningJobName", "pipe"},
        {"HyperParameterTuningJobConfig",
         {{"Strategy", "Grid"},
          {"HyperParameterTuningJobObjective", {{"Type", "Minimize"}, {"MetricName", "loss"}}},
          {"ResourceLimits", {{"MaxNumberOfTrainingJobs", 1}, {"MaxParallelTrainingJobs", 1}}},
          {"ParameterRanges",
           {{"CategoricalParameterRanges", {{{"Name", "opt"}, {"Values", {"adam"}}}}}}}}},
        {"TrainingJobDefinition",
         {{"StaticHyperParameters",
           {{"parts", std::to_string(kParts)},
            {"lines", std::to_string(kLines)},
            {"namespace", ns ? "1" : "0"},
            {"corrupt", corrupt ? "1" : "0"}}},
          {"AlgorithmSpecification",
           {{"TrainingImage", (dir_ / "train.py").string()},
            {"TrainingInputMode", "Pipe"},
            {"MetricDefinitions", {{{"Name", "loss"}, {"Regex", "loss=([0-9.]+)"}}}}}},
          {"RoleArn", "arn:aws:iam::123456789012:role/hpo-pipe"},
          {"InputDataConfig",
           {{{"ChannelName", "train"},
             {"ContentType", "text/plain"},
             {"CompressionType", "Gzip"},
             {"RecordWrapperType", "RecordIO"},
             {"DataSource",
              {{"S3DataSource",
                {{"S3DataType", "S3Prefix"},
                 {"S3Uri", "file://" + train_dir.string()},
                 {"S3DataDistributionType", "FullyReplicated"}}}}}},
            {{"ChannelName", "extra"},
             {"DataSource",
              {{"S3DataSource",
                {{"S3DataType", "S3Prefix"},
                 {"S3Uri", "file://" + (dir_ / "data" / "extra").string()}}}}}}}},
          {"OutputDataConfig", {{"S3OutputPath", "file://" + (dir_ / "out").string()}}},
          {"ResourceConfig",
           {{"InstanceType", "ml.m5.large"}, {"InstanceCount", 1}, {"VolumeSizeInGB", 1}}},
          {"StoppingCondition", {{"MaxRuntimeInSeconds", 60}}}}}};
    Call("CreateHyperParameterTuningJob", job);
    Json d;
    for (int i = 0; i < 600; ++i) {
      d = Call("DescribeHyperParameterTuningJob", {{"HyperParameterTuningJobName", "pipe"}});
      std::string st = d.value("HyperParameterTuningJobStatus", "");
      if (st == "Completed" || st == "Failed" || st == "Stopped") break;
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
    EXPECT_EQ(d["HyperParameterTuningJobStatus"], corrupt ? "Failed" : "Completed") << d.dump();
    Json trials = Call("ListTrainingJobsForHyperParameterTuningJob",
                       {{"HyperParameterTuningJobName", "pipe"}});
    EXPECT_EQ(trials["TrainingJobSummaries"].size(), 1u) << trials.dump();
    return trials["TrainingJobSummaries"].size() == 1 ? trials["TrainingJobSummaries"][0]
                                                      : Json::object();
  }

  static constexpr int kParts = 3;
  static constexpr int kLines = 4000;  // ~90 KB per object: more than a pipe buffer
  fs::path dir_;
  int zmq_port_ = 0, http_port_ = 0;
  std::unique_ptr<Child> coordinator_, worker_;
};

TEST_P(PipeMode, ATrainerReadsTwoEpochsOfGzippedRecordIODataFromTheFifos) {
  const bool ns = GetParam().as_root;
  const Json t = RunJob(dir_ / "data" / "train", false);
  ASSERT_TRUE(t.contains("TrainingJobName")) << t.dump();
  const std::string name = t["TrainingJobName"];
  const fs::path attempt = dir_ / "w1" / "trials" / name / "attempt-1";
  const std::string log = Slurp(attempt / "trial.log");
  EXPECT_EQ(t["TrainingJobStatus"], "Completed") << t.value("FailureReason", "") << "\n"
                                                 << log << "\n"
                                                 << Slurp(dir_ / "worker.log");
  // value(), not operator[]: on a const object a missing key is undefined behaviour (a training
  // job that did not complete has no final metric).
  EXPECT_EQ(t.value("/FinalHyperParameterTuningJobObjectiveMetric/Value"_json_pointer, Json()), 0.125) << t.dump();
  EXPECT_NE(log.find("epoch 0: 3 records"), std::string::npos) << log;
  EXPECT_NE(log.find("epoch 1: 3 records"), std::string::npos) << log;
  // The worker logged each epoch it fed; the channel directory stayed; finished FIFOs are gone.
  const std::string wlog = Slurp(dir_ / "worker.log");
  EXPECT_NE(wlog.find("channel train: epoch 0: "), std::string::npos) << wlog;
  EXPECT_NE(wlog.find("channel train: epoch 1: "), std::string::npos) << wlog;
  EXPECT_NE(wlog.find("channel extra: epoch 0: 11 bytes, 2 object(s)"), std::string::npos) << wlog;
  // Once it ended, the attempt's /opt/ml tree (FIFOs, channel directory) goes; its log stays.
  for (int i = 0; i < 100 && fs::exists(attempt / "ml"); ++i) std::this_thread::sleep_for(std::chrono::milliseconds(50));
  EXPECT_FALSE(fs::exists(attempt / "ml"));
  EXPECT_TRUE(fs::exists(attempt / "trial.log"));
  EXPECT_EQ(ns, wlog.find("/opt/ml in a private mount namespace") != std::string::npos) << wlog;
}

TEST_P(PipeMode, ACorruptGzipObjectEndsTheFeedingAndFailsTheTrainingJobAsAClientError) {
  const fs::path bad = dir_ / "data" / "bad";
  fs::create_directories(bad);
  std::ofstream(bad / "part-0.gz", std::ios::binary) << Gzip(Part(0, kLines));
  std::ofstream(bad / "part-1.gz", std::ios::binary) << "this is not gzip data";
  std::ofstream(bad / "part-2.gz", std::ios::binary) << Gzip(Part(2, kLines));
  const Json t = RunJob(bad, true);
  ASSERT_TRUE(t.contains("TrainingJobName")) << t.dump();
  const std::string name = t["TrainingJobName"];
  const std::string log = Slurp(dir_ / "w1" / "trials" / name / "attempt-1" / "trial.log");
  // The program read part of its data and ended 0: it does not complete (it did, with an
  // objective that could be the best, and only this log line said so). The data's fault.
  EXPECT_EQ(t["TrainingJobStatus"], "Failed") << log;
  EXPECT_NE(t.value("FailureReason", "").find("ClientError: Pipe input mode: channel train: the object " +
                                               (bad / "part-1.gz").string() + " is not valid gzip data"),
            std::string::npos)
      << t.dump(2);
  EXPECT_NE(t.value("FailureReason", "").find("; the program ended having read only the data before it"),
            std::string::npos)
      << t.dump(2);
  EXPECT_NE(log.find("corrupt: 1 record before the end of the feeding"), std::string::npos) << log;
  EXPECT_NE(log.find("hpo: Pipe input mode: channel train: the object " +
                     (bad / "part-1.gz").string() + " is not valid gzip data"),
            std::string::npos)
      << log;
  // The worker lives on.
  httplib::Client probe("127.0.0.1", http_port_);
  auto res = probe.Get("/hpo/v1/health");
  ASSERT_TRUE(res && res->status == 200);
  EXPECT_EQ(Json::parse(res->body)["workers"], 1) << res->body;
  EXPECT_NE(
      Slurp(dir_ / "worker.log").find("channel train: the object " + (bad / "part-1.gz").string()),
      std::string::npos);
}

INSTANTIATE_TEST_SUITE_P(Workers, PipeMode,
                         ::testing::Values(Mode{"MountNamespace", true},
                                           Mode{"Unprivileged", false}),
                         [](const auto& info) { return std::string(info.param.name); });

}  // namespace
