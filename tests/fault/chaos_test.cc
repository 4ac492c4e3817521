// Fault tests: a real cluster on loopback (tests/integration/cluster.h) whose coordinator and
// workers are killed with SIGKILL at random moments while a tuning job runs. Each test is
// bounded in time (about a minute) and is part of the default test run; on its own:
//   ctest --test-dir build -L fault --output-on-failure
// HPO_FAULT_SEED=N replays a run's kill schedule; the seed in use is printed.
#include <mutex>
#include <random>
#include <set>

#include "tests/fault/fault_proxy.h"
#include "common/s3_client.h"
#include "tests/integration/cluster.h"

namespace {

using hpo::testing::Cluster;
namespace fs = std::filesystem;
using Json = nlohmann::ordered_json;

uint64_t FaultSeed() {
  const char* env = std::getenv("HPO_FAULT_SEED");
  uint64_t seed = env ? std::strtoull(env, nullptr, 10) : std::random_device{}();
  std::printf("fault schedule: HPO_FAULT_SEED=%llu\n", static_cast<unsigned long long>(seed));
  return seed;
}

class Chaos : public Cluster {
 protected:
  // A client of the radosgw that tests/worker/with_radosgw.sh started, with a new bucket named
  // `prefix`-<pid> in it (its name in *bucket); nullptr, the test failed, when either cannot be had.
  std::unique_ptr<hpo::S3Client> RadosgwBucket(const std::string& prefix, std::string* bucket) {
    auto cfg = hpo::S3Config::FromEnvironment();
    if (!cfg.ok()) {
      ADD_FAILURE() << cfg.status().ToString();
      return nullptr;
    }
    auto client = hpo::S3Client::Create(*cfg);
    if (!client.ok()) {
      ADD_FAILURE() << client.status().ToString();
      return nullptr;
    }
    *bucket = prefix + "-" + std::to_string(::getpid());
    if (hpo::Status made = (*client)->CreateBucket(*bucket); !made.ok()) {
      ADD_FAILURE() << made.ToString();
      return nullptr;
    }
    return std::move(client).value();
  }
  Json Counters(const std::string& job) {
    return Call("DescribeHyperParameterTuningJob", {{"HyperParameterTuningJobName", job}});
  }
  // Attempts per trial whose program ran (its trial.log has output), over every worker's work
  // directory. An attempt queued ahead and moved to a free worker before it started leaves an
  // attempt directory with an empty trial.log: it did not run (counting directories took such a
  // move, right after a coordinator restart, for a training job run twice).
  std::map<std::string, int> AttemptsThatRan() {
    std::map<std::string, int> n;
    for (const fs::path& log : AllTrialLogs()) {
      std::error_code gone;  // a worker may remove it meanwhile
      const fs::path attempt = log.parent_path();
      if (attempt.filename().string().rfind("attempt-", 0) != 0 ||
          attempt.parent_path().parent_path().filename() != "trials" || fs::file_size(log, gone) == 0 || gone) {
        continue;
      }
      ++n[attempt.parent_path().filename().string()];
    }
    return n;
  }
  // Lines of the trial's logs (all attempts) that the trainer printed for an epoch.
  int EpochLines(const std::string& trial) {
    int lines = 0;
    for (const fs::path& path : TrialLogs(trial)) {
      std::ifstream in(path);
      for (std::string line; std::getline(in, line);) lines += line.rfind("epoch=", 0) == 0;
    }
    return lines;
  }
};

// 200 trials; the coordinator is killed (SIGKILL) 20 times at random moments and restarted on
// the same state directory each time. Every trial runs exactly once and completes, no retry is
// spent, and the stored history is what an uninterrupted run stores.
TEST_F(Chaos, TwentyCoordinatorKillsDuringA200TrialJobLoseNothingAndRepeatNothing) {
  std::mt19937_64 rng(FaultSeed());
  Json ranges = {{"ContinuousParameterRanges",
                  {{{"Name", "x"}, {"MinValue", "-1"}, {"MaxValue", "1"}},
                   {{"Name", "y"}, {"MinValue", "-1"}, {"MaxValue", "1"}}}}};
  Json spec = Job("chaos-coord", "Random", 200, 6, ranges, {{"sleep_ms", "250"}});
  spec["TrainingJobDefinition"]["StaticHyperParameters"]["epochs"] = "3";
  Call("CreateHyperParameterTuningJob", spec);
  int kills = 0;
  for (; kills < 20; ++kills) {
    std::this_thread::sleep_for(std::chrono::milliseconds(150 + rng() % 700));
    Json d = Counters("chaos-coord");
    if (d.value("HyperParameterTuningJobStatus", "") != "InProgress") break;
    coordinator_->Kill(SIGKILL);
    if (rng() % 2) std::this_thread::sleep_for(std::chrono::milliseconds(rng() % 500));
    StartCoordinator();
    ASSERT_TRUE(WaitForWorkers(3)) << "after kill " << kills + 1 << "; see " << dir_;
  }
  Json d = WaitFor("chaos-coord", 180);
  std::printf("coordinator kills: %d\n", kills);
  EXPECT_GE(kills, 15) << "the job ended before enough kills; make it longer";
  ASSERT_EQ(d["HyperParameterTuningJobStatus"], "Completed") << d.dump(2);
  EXPECT_EQ(d["TrainingJobStatusCounters"]["Completed"], 200);
  EXPECT_EQ(d["TrainingJobStatusCounters"]["RetryableError"], 0);
  EXPECT_EQ(d["TrainingJobStatusCounters"]["NonRetryableError"], 0);
  EXPECT_EQ(d["ObjectiveStatusCounters"]["Succeeded"], 200);
  auto trials = Trials("chaos-coord");
  ASSERT_EQ(trials.size(), 200u);
  auto dirs = AttemptsThatRan();
  for (const auto& t : trials) {
    const std::string name = t["TrainingJobName"];
    EXPECT_EQ(dirs[name], 1) << name << " ran " << dirs[name] << " times";
    EXPECT_EQ(EpochLines(name), 3) << name;
    Json tj = Call("DescribeTrainingJob", {{"TrainingJobName", name}});
    EXPECT_EQ(tj["TrainingJobStatus"], "Completed") << name;
    auto last = LastLossInLog(name);
    ASSERT_TRUE(last) << name;
    EXPECT_DOUBLE_EQ(t["FinalHyperParameterTuningJobObjectiveMetric"]["Value"].get<double>(), *last) << name;
  }
}

// A Bayesian job, whose proposals run on the coordinator's proposer thread with a copy of the
// job's history (coordinator/core.h, propose_off_core): the coordinator is killed at random
// moments, proposals in flight among them. A request lives only in memory, so after each
// restart the job asks again; every trial still runs exactly once and the job completes with
// exactly its budget.
TEST_F(Chaos, CoordinatorKillsDuringABayesianJobLoseNoProposalAndRepeatNoTrial) {
  std::mt19937_64 rng(FaultSeed() + 1);
  Json ranges = {{"ContinuousParameterRanges",
                  {{{"Name", "x"}, {"MinValue", "-1"}, {"MaxValue", "1"}},
                   {{"Name", "y"}, {"MinValue", "-1"}, {"MaxValue", "1"}}}}};
  Json spec = Job("chaos-bayes", "Bayesian", 96, 6, ranges, {{"sleep_ms", "200"}});
  spec["TrainingJobDefinition"]["StaticHyperParameters"]["epochs"] = "3";
  Call("CreateHyperParameterTuningJob", spec);
  int kills = 0;
  for (; kills < 8; ++kills) {
    std::this_thread::sleep_for(std::chrono::milliseconds(300 + rng() % 900));
    Json d = Counters("chaos-bayes");
    if (d.value("HyperParameterTuningJobStatus", "") != "InProgress") break;
    coordinator_->Kill(SIGKILL);
    StartCoordinator();
    ASSERT_TRUE(WaitForWorkers(3)) << "after kill " << kills + 1 << "; see " << dir_;
  }
  Json d = WaitFor("chaos-bayes", 180);
  std::printf("coordinator kills during the Bayesian job: %d\n", kills);
  EXPECT_GE(kills, 5) << "the job ended before enough kills; make it longer";
  ASSERT_EQ(d["HyperParameterTuningJobStatus"], "Completed") << d.dump(2);
  EXPECT_EQ(d["TrainingJobStatusCounters"]["Completed"], 96);
  EXPECT_EQ(d["ObjectiveStatusCounters"]["Succeeded"], 96);
  auto trials = Trials("chaos-bayes");
  ASSERT_EQ(trials.size(), 96u);
  auto dirs = AttemptsThatRan();
  std::set<std::pair<std::string, std::string>> configs;
  for (const auto& t : trials) {
    const std::string name = t["TrainingJobName"];
    EXPECT_EQ(dirs[name], 1) << name << " ran " << dirs[name] << " times";
    configs.insert({t["TunedHyperParameters"]["x"].get<std::string>(), t["TunedHyperParameters"]["y"].get<std::string>()});
  }
  EXPECT_EQ(configs.size(), 96u) << "a configuration was proposed twice";
}

// Workers are killed (SIGKILL) at random moments and restarted; their attempts end as
// infrastructure errors and are retried elsewhere within maximumRetryAttempts; the job
// completes and the counters add up.
TEST_F(Chaos, WorkersKilledAtRandomAreRetriedWithinTheLimitAndTheJobCompletes) {
  std::mt19937_64 rng(FaultSeed());
  Json ranges = {{"ContinuousParameterRanges", {{{"Name", "x"}, {"MinValue", "-1"}, {"MaxValue", "1"}}}}};
  Json spec = Job("chaos-workers", "Random", 40, 6, ranges, {{"sleep_ms", "150"}});
  spec["TrainingJobDefinition"]["RetryStrategy"] = {{"MaximumRetryAttempts", 10}};
  Call("CreateHyperParameterTuningJob", spec);
  for (int kills = 0; kills < 6; ++kills) {
    std::this_thread::sleep_for(std::chrono::milliseconds(500 + rng() % 1000));
    if (Counters("chaos-workers").value("HyperParameterTuningJobStatus", "") != "InProgress") break;
    size_t victim = rng() % workers_.size();
    workers_[victim]->Kill(SIGKILL);
    StartWorker(static_cast<int>(victim) + 1, victim);
  }
  Json d = WaitFor("chaos-workers", 120);
  ASSERT_EQ(d["HyperParameterTuningJobStatus"], "Completed") << d.dump(2);
  EXPECT_EQ(d["TrainingJobStatusCounters"]["Completed"], 40);
  EXPECT_EQ(d["TrainingJobStatusCounters"]["RetryableError"], 0) << "no trial used up its 10 retries";
  EXPECT_EQ(d["TrainingJobStatusCounters"]["NonRetryableError"], 0);
  EXPECT_EQ(d["ObjectiveStatusCounters"]["Succeeded"], 40);
  for (const auto& t : Trials("chaos-workers")) {
    Json tj = Call("DescribeTrainingJob", {{"TrainingJobName", t["TrainingJobName"]}});
    EXPECT_EQ(tj["TrainingJobStatus"], "Completed");
  }
}

// Workers are killed (SIGKILL) at random moments while trainers rewrite a 2.5 MB checkpoint in
// place every epoch (torch.save to one name: truncated, then written for about half a second
// through one descriptor). Each retry resumes from what CheckpointConfig.S3Uri holds, and checks
// it: a torn one (short, or without its last line) fails the training job with "TORN". The
// worker's passes sent a checkpoint as it was at that moment, so a kill while the destination
// held half a save left the retry that half (with --checkpoint-settle-ms 0, SageMaker's way,
// most runs of this test restore one); a file open for writing now waits for its close.
class InPlaceCheckpoints : public Chaos {
 protected:
  void BeforeCoordinator() override { worker_args_ = {"--checkpoint-sync-ms", "300"}; }
  void Run(const std::string& checkpoint_uri) {
    std::mt19937_64 rng(FaultSeed());
    constexpr int kEpochs = 12;  // a training job runs about 10 s: most kills find some running
    Json spec = ScriptJob("chaos-inplace", 4, 3,
                          "#!/bin/sh\n"
                          "ck=\"$(dirname \"$SM_MODEL_DIR\")/checkpoints\"\n"
                          "e=0\n"
                          "if [ -f \"$ck/model.ckpt\" ]; then\n"
                          "  size=$(wc -c < \"$ck/model.ckpt\")\n"
                          "  if [ \"$size\" != 2621455 ] || [ \"$(tail -c 4 \"$ck/model.ckpt\")\" != end ]; then\n"
                          "    echo \"TORN checkpoint restored: $size bytes\"; exit 1\n"
                          "  fi\n"
                          "  e=$(expr \"$(head -c 10 \"$ck/model.ckpt\" | cut -c7-10)\" + 0)\n"
                          "  echo \"resumed_from=$e\"\n"
                          "fi\n"
                          "while [ $e -lt " + std::to_string(kEpochs) + " ]; do\n"
                          "  e=$((e + 1))\n"
                          "  exec 3> \"$ck/model.ckpt\"\n"
                          "  printf 'epoch %04d\\n' $e >&3\n"
                          "  c=0; while [ $c -lt 40 ]; do head -c 65536 /dev/zero >&3; sleep 0.01; c=$((c + 1)); done\n"
                          "  printf 'end\\n' >&3\n"
                          "  exec 3>&-\n"
                          "  echo \"epoch=$e loss=0.$e\"\n"
                          "  sleep 0.3\n"
                          "done\n");
    spec["TrainingJobDefinition"]["CheckpointConfig"] = {{"S3Uri", checkpoint_uri}};
    spec["TrainingJobDefinition"]["RetryStrategy"] = {{"MaximumRetryAttempts", 10}};
    Call("CreateHyperParameterTuningJob", spec);
    WaitForPrograms(3);
    int kills = 0;
    for (; kills < 6; ++kills) {
      std::this_thread::sleep_for(std::chrono::milliseconds(1200 + rng() % 1200));
      if (Counters("chaos-inplace").value("HyperParameterTuningJobStatus", "") != "InProgress") break;
      const size_t victim = rng() % workers_.size();
      workers_[victim]->Kill(SIGKILL);
      StartWorker(static_cast<int>(victim) + 1, victim);
    }
    Json d = WaitFor("chaos-inplace", 150);
    std::printf("worker kills: %d\n", kills);
    int torn = 0, resumed = 0;
    for (const auto& t : Trials("chaos-inplace")) {
      for (const fs::path& path : TrialLogs(t["TrainingJobName"])) {
        std::ifstream in(path);
        for (std::string line; std::getline(in, line);) {
          torn += line.rfind("TORN", 0) == 0;
          resumed += line.rfind("resumed_from=", 0) == 0 && line != "resumed_from=0";
        }
      }
    }
    std::printf("retries that resumed from a checkpoint: %d, from a torn one: %d\n", resumed, torn);
    EXPECT_EQ(torn, 0) << "a retry restored half a save; see " << dir_;
    ASSERT_EQ(d["HyperParameterTuningJobStatus"], "Completed") << d.dump(2);
    EXPECT_EQ(d["TrainingJobStatusCounters"]["Completed"], 4);
    EXPECT_GE(kills, 3) << "the job ended before enough kills; make it longer";
    EXPECT_GE(resumed, 1) << "no retry resumed from a checkpoint; see " << dir_;
  }
};

TEST_F(InPlaceCheckpoints, WorkersKilledWhileTrainersRewriteCheckpointsNeverLeaveARetryATornOne) {
  Run("file://" + (dir_ / "ck").string());
}

// The same with the checkpoints in S3 (radosgw): each upload a single PUT that asks again, once
// the file is read, whether it changed. Run through tests/worker/with_radosgw.sh (CTest:
// Chaos.CheckpointsInRadosgw).
TEST_F(InPlaceCheckpoints, WorkersKilledWhileTrainersRewriteCheckpointsInS3NeverLeaveARetryATornOne) {
  if (std::getenv("AWS_ENDPOINT_URL_S3") == nullptr) GTEST_SKIP() << "run through tests/worker/with_radosgw.sh";
  std::string bucket;
  ASSERT_TRUE(RadosgwBucket("hpo-inplace", &bucket));
  Run("s3://" + bucket + "/checkpoints");
}

// A worker is paused (SIGSTOP) while its training program runs, past the coordinator's lease:
// the coordinator re-runs the training job elsewhere and the tuning job completes. When the
// paused worker runs again, its program has long ended: it must not upload that stale attempt's
// artifacts over the new attempt's (the same output path), nor start the attempt that was queued
// behind it. Every model.tar.gz is left as the completed job wrote it.
TEST_F(Chaos, APausedWorkerThatWasReplacedOverwritesNoArtifactAndStartsNothing) {
  Json ranges = {{"ContinuousParameterRanges", {{{"Name", "x"}, {"MinValue", "-1"}, {"MaxValue", "1"}}}}};
  Json spec = Job("paused", "Random", 3, 1, ranges, {{"sleep_ms", "600"}});
  spec["TrainingJobDefinition"]["RetryStrategy"] = {{"MaximumRetryAttempts", 2}};
  Call("CreateHyperParameterTuningJob", spec);
  WaitForPrograms(1);
  std::vector<fs::path> logs;  // of programs that have started (prepared attempts have empty ones)
  for (const fs::path& p : AllTrialLogs()) {
    std::error_code ec;
    if (fs::file_size(p, ec) > 0 && !ec) logs.push_back(p);
  }
  ASSERT_EQ(logs.size(), 1u) << "one training job at a time";
  size_t victim = workers_.size();
  for (size_t i = 0; i < workers_.size(); ++i) {
    if (logs[0].string().find((dir_ / ("w" + std::to_string(i + 1))).string() + "/") == 0) victim = i;
  }
  ASSERT_LT(victim, workers_.size()) << logs[0];
  const fs::path victim_dir = dir_ / ("w" + std::to_string(victim + 1));
  ASSERT_EQ(::kill(workers_[victim]->pid(), SIGSTOP), 0);

  Json d = WaitFor("paused", 60);
  ASSERT_EQ(d["HyperParameterTuningJobStatus"], "Completed") << d.dump(2);
  EXPECT_EQ(d["TrainingJobStatusCounters"]["Completed"], 3) << d.dump(2);
  // What the completed job left: every artifact's time and size, and the programs the paused
  // worker had started.
  auto snapshot = [&] {
    std::map<std::string, std::pair<fs::file_time_type, uintmax_t>> files;
    for (const auto& e : fs::recursive_directory_iterator(dir_ / "out")) {
      if (e.is_regular_file()) files[e.path().string()] = {e.last_write_time(), e.file_size()};
    }
    return files;
  };
  auto started_on_victim = [&] {
    int n = 0;
    for (const fs::path& p : AllTrialLogs()) {
      std::error_code ec;
      n += p.string().find(victim_dir.string() + "/") == 0 && fs::file_size(p, ec) > 0 && !ec;
    }
    return n;
  };
  const auto artifacts = snapshot();
  ASSERT_EQ(artifacts.size(), 6u) << "model.tar.gz and output.tar.gz per training job";
  const int programs = started_on_victim();

  ASSERT_EQ(::kill(workers_[victim]->pid(), SIGCONT), 0);
  std::this_thread::sleep_for(std::chrono::seconds(4));  // it notices, reconnects, is told
  EXPECT_EQ(snapshot(), artifacts) << "an artifact was written after the job completed";
  EXPECT_EQ(started_on_victim(), programs) << "the paused worker started a training program after it ran again";
  Json after = Counters("paused");
  EXPECT_EQ(after["TrainingJobStatusCounters"], d["TrainingJobStatusCounters"]);
  EXPECT_EQ(after["BestTrainingJob"]["TrainingJobName"], d["BestTrainingJob"]["TrainingJobName"]);
}

// One worker is spot capacity (`hpo worker --spot`): it is interrupted (SIGUSR1, a notice) three
// times while a job runs, and replaced by a fresh spot worker each time. Interrupted trials are
// re-queued without spending a retry (the job allows none), end Completed, and show the
// Interrupted secondary status.
TEST_F(Chaos, SpotInterruptionsRequeueTrialsWithoutSpendingARetry) {
  auto spot_worker = [&](int n) {
    return std::make_unique<hpo::testing::Child>(
        std::vector<std::string>{HPO_BINARY, "worker", "--connect", "tcp://127.0.0.1:" + std::to_string(zmq_port_),
                                 "--id", "spot" + std::to_string(n), "--slots", "2", "--work-dir",
                                 (dir_ / ("spot" + std::to_string(n))).string(), "--image",
                                 std::string("quadratic=") + HPO_QUADRATIC, "--spot"},
        (dir_ / ("spot" + std::to_string(n) + ".log")).string());
  };
  workers_[0]->Kill(SIGKILL);  // w1's place goes to spot capacity
  auto spot = spot_worker(1);
  ASSERT_TRUE(WaitForWorkers(3)) << "see " << dir_;
  Json ranges = {{"ContinuousParameterRanges", {{{"Name", "x"}, {"MinValue", "-1"}, {"MaxValue", "1"}}}}};
  Json spec = Job("chaos-spot", "Random", 30, 6, ranges, {{"sleep_ms", "250"}});  // 4 epochs: 1 s a trial
  spec["TrainingJobDefinition"]["EnableManagedSpotTraining"] = true;  // what spot workers run
  Call("CreateHyperParameterTuningJob", spec);
  int interruptions = 0;
  for (int round = 2; round <= 4; ++round) {
    std::this_thread::sleep_for(std::chrono::milliseconds(1200));
    if (Counters("chaos-spot").value("HyperParameterTuningJobStatus", "") != "InProgress") break;
    ::kill(spot->pid(), SIGUSR1);
    ++interruptions;
    std::this_thread::sleep_for(std::chrono::milliseconds(800));  // its trials end Interrupted
    spot->Kill(SIGTERM);
    spot = spot_worker(round);  // fresh capacity: a new spot worker
  }
  Json d = WaitFor("chaos-spot", 120);
  EXPECT_GE(interruptions, 3);
  ASSERT_EQ(d["HyperParameterTuningJobStatus"], "Completed") << d.dump(2);
  EXPECT_EQ(d["TrainingJobStatusCounters"]["Completed"], 30);
  EXPECT_EQ(d["TrainingJobStatusCounters"]["RetryableError"], 0) << "an interruption spent a retry";
  EXPECT_EQ(d["TrainingJobStatusCounters"]["NonRetryableError"], 0);
  int interrupted_trials = 0;
  for (const auto& t : Trials("chaos-spot")) {
    Json tj = Call("DescribeTrainingJob", {{"TrainingJobName", t["TrainingJobName"]}});
    EXPECT_EQ(tj["TrainingJobStatus"], "Completed");
    for (const auto& s : tj["SecondaryStatusTransitions"]) {
      if (s["Status"] == "Interrupted") {
        ++interrupted_trials;
        break;
      }
    }
  }
  std::printf("spot interruptions: %d, trials interrupted: %d\n", interruptions, interrupted_trials);
  EXPECT_GE(interrupted_trials, 1);
}

// Spot workers are interrupted (SIGUSR1, a notice) every second or so while checkpointing trainers
// run (examples/trainers/quadratic.cc, checkpoint=true: state after every epoch). An interrupted
// trial's checkpoints are synced after its grace period; its next attempt, on another worker,
// starts with them copied back in and resumes (the trainer prints `resumed from epoch=N`). No
// retry is spent, and each interruption costs at most the epoch that was running.
// Every other notice comes from a metadata URL the workers poll (--spot-notice-url, EC2's
// answers: 404, then the notice document), the others as SIGUSR1.
class SpotCheckpoints : public Chaos {
 protected:
  void Run(const std::string& checkpoint_uri) {
    httplib::Server metadata;
    std::mutex noticed_mu;
    std::set<std::string> noticed;
    metadata.Get(R"(/spot/(\w+)/instance-action)", [&](const httplib::Request& req, httplib::Response& res) {
      std::lock_guard<std::mutex> lock(noticed_mu);
      if (!noticed.count(req.matches[1].str())) {
        res.status = 404;
        return;
      }
      res.set_content(R"({"action": "terminate", "time": "2026-11-29T10:00:00Z"})", "application/json");
    });
    const int metadata_port = metadata.bind_to_any_port("127.0.0.1");
    std::thread serve([&] { metadata.listen_after_bind(); });
    struct StopOnReturn {
      httplib::Server& s;
      std::thread& t;
      ~StopOnReturn() {
        s.stop();
        t.join();
      }
    } stop_metadata{metadata, serve};
    auto spot_worker = [&](int n) {
      const std::string id = "spot" + std::to_string(n);
      return std::make_unique<hpo::testing::Child>(
          std::vector<std::string>{HPO_BINARY, "worker", "--connect", "tcp://127.0.0.1:" + std::to_string(zmq_port_),
                                   "--id", id, "--slots", "2", "--work-dir", (dir_ / id).string(), "--image",
                                   std::string("quadratic=") + HPO_QUADRATIC, "--spot", "--spot-notice-url",
                                   "http://127.0.0.1:" + std::to_string(metadata_port) + "/spot/" + id +
                                       "/instance-action",
                                   "--spot-notice-poll-ms", "100"},
          (dir_ / (id + ".log")).string());
    };
    std::vector<int> ids = {1, 2};
    workers_[0]->Kill(SIGKILL);
    workers_[1]->Kill(SIGKILL);
    auto spot_a = spot_worker(1);
    auto spot_b = spot_worker(2);
    ASSERT_TRUE(WaitForWorkers(3)) << "see " << dir_;
    constexpr int kEpochs = 12;
    Json ranges = {{"ContinuousParameterRanges", {{{"Name", "x"}, {"MinValue", "-1"}, {"MaxValue", "1"}}}}};
    Json spec = Job("chaos-ckpt", "Random", 10, 6, ranges, {{"sleep_ms", "150"}, {"checkpoint", "true"}});
    spec["TrainingJobDefinition"]["StaticHyperParameters"]["epochs"] = std::to_string(kEpochs);
    spec["TrainingJobDefinition"]["EnableManagedSpotTraining"] = true;
    spec["TrainingJobDefinition"]["CheckpointConfig"] = {{"S3Uri", checkpoint_uri}};
    Call("CreateHyperParameterTuningJob", spec);
    int interruptions = 0;
    for (int round = 3; round <= 10; ++round) {
      std::this_thread::sleep_for(std::chrono::milliseconds(900));
      if (Counters("chaos-ckpt").value("HyperParameterTuningJobStatus", "") != "InProgress") break;
      auto& victim = round % 2 ? spot_a : spot_b;
      int& victim_id = ids[round % 2 ? 0 : 1];
      if (round % 4 < 2) {
        ::kill(victim->pid(), SIGUSR1);
      } else {
        std::lock_guard<std::mutex> lock(noticed_mu);
        noticed.insert("spot" + std::to_string(victim_id));
      }
      ++interruptions;
      std::this_thread::sleep_for(std::chrono::milliseconds(500));  // notice, grace, last checkpoint pass, report
      victim->Kill(SIGTERM);
      victim = spot_worker(round);  // fresh capacity
      victim_id = round;
    }
    Json d = WaitFor("chaos-ckpt", 120);
    ASSERT_EQ(d["HyperParameterTuningJobStatus"], "Completed") << d.dump(2);
    EXPECT_GE(interruptions, 3);
    EXPECT_EQ(d["TrainingJobStatusCounters"]["Completed"], 10);
    EXPECT_EQ(d["TrainingJobStatusCounters"]["RetryableError"], 0) << "an interruption spent a retry";
    int resumed = 0, interrupted_trials = 0;
    for (const auto& t : Trials("chaos-ckpt")) {
      const std::string name = t["TrainingJobName"];
      int attempts = 0, epoch_lines = 0, resumes = 0, last_attempt = 0;
      std::optional<double> last;  // the last loss of the last attempt
      for (const fs::path& path : TrialLogs(name)) {
        ++attempts;
        const int n = std::stoi(path.parent_path().filename().string().substr(8));  // attempt-N
        std::ifstream in(path);
        for (std::string line; std::getline(in, line);) {
          epoch_lines += line.rfind("epoch=", 0) == 0;
          resumes += line.rfind("resumed from epoch=", 0) == 0;
          const size_t at = line.find(" loss=");
          if (line.rfind("epoch=", 0) == 0 && at != std::string::npos && n >= last_attempt) {
            last = std::stod(line.substr(at + 6));
            last_attempt = n;
          }
        }
      }
      interrupted_trials += attempts > 1;
      resumed += resumes;
      // Every epoch ran at least once; an interruption repeats at most the one in progress.
      EXPECT_GE(epoch_lines, kEpochs) << name;
      EXPECT_LE(epoch_lines, kEpochs + (attempts - 1)) << name << " lost more than an epoch per interruption";
      ASSERT_TRUE(last) << name;
      EXPECT_DOUBLE_EQ(t["FinalHyperParameterTuningJobObjectiveMetric"]["Value"].get<double>(), *last) << name;
    }
    std::printf("interruptions %d, trials interrupted %d, resumed from a checkpoint %d times\n", interruptions,
                interrupted_trials, resumed);
    EXPECT_GE(resumed, 1) << "no interrupted trial resumed from its checkpoint; see " << dir_;
    EXPECT_GE(SpotLogLines("interruption notice (notice URL"), 1)
        << "no worker took a notice from its metadata URL; see " << dir_;
  }
  // Lines of the spot workers' logs that contain `text`.
  int SpotLogLines(const std::string& text) {
    int n = 0;
    for (const auto& e : fs::directory_iterator(dir_)) {
      if (e.path().filename().string().rfind("spot", 0) != 0 || e.path().extension() != ".log") continue;
      std::ifstream in(e.path());
      for (std::string line; std::getline(in, line);) n += line.find(text) != std::string::npos;
    }
    return n;
  }
};

TEST_F(SpotCheckpoints, InterruptedTrainersResumeFromCheckpointsInALocalDirectory) {
  Run("file://" + (dir_ / "checkpoints").string());
  // An interrupted attempt runs again: it uploaded its empty or partial model.tar.gz to the
  // training job's final place meanwhile. Now only the attempt that ends does.
  EXPECT_GE(SpotLogLines("interrupted: no model uploaded"), 1)
      << "no interrupted attempt said it left its model out; see " << dir_;
  for (const auto& t : Trials("chaos-ckpt")) {
    const std::string name = t["TrainingJobName"];
    EXPECT_TRUE(fs::exists(dir_ / "out" / name / "output" / "model.tar.gz")) << name << ": the last attempt's model";
  }
  // One prefix per training job, holding the last state.
  int dirs = 0;
  for (const auto& e : fs::directory_iterator(dir_ / "checkpoints")) {
    ++dirs;
    EXPECT_TRUE(fs::exists(e.path() / "state.txt")) << e.path();
  }
  EXPECT_EQ(dirs, 10);
}

// Run through tests/worker/with_radosgw.sh (CTest: Chaos.CheckpointsInRadosgw).
TEST_F(SpotCheckpoints, InterruptedTrainersResumeFromCheckpointsInS3) {
  if (std::getenv("AWS_ENDPOINT_URL_S3") == nullptr) GTEST_SKIP() << "run through tests/worker/with_radosgw.sh";
  std::string bucket;
  auto client = RadosgwBucket("hpo-chaos", &bucket);
  ASSERT_TRUE(client);
  Run("s3://" + bucket + "/checkpoints");
  auto listed = client->List(bucket, "checkpoints/");
  ASSERT_TRUE(listed.ok()) << listed.status().ToString();
  std::set<std::string> states;
  for (const auto& o : *listed) {
    if (o.key.size() > 10 && o.key.ends_with("/state.txt")) states.insert(o.key);
  }
  EXPECT_EQ(states.size(), 10u) << "one state.txt per training job";
}

// An S3OutputPath in a bucket that does not exist was found when the trained model was uploaded,
// after the whole training, and the model was lost. It is checked while staging now: the training
// job fails before its program runs, saying to create the bucket. Through with_radosgw.sh (CTest:
// Chaos.OutputBucketInRadosgw).
TEST_F(Chaos, AnS3OutputPathInAMissingBucketFailsBeforeTheProgramRuns) {
  if (std::getenv("AWS_ENDPOINT_URL_S3") == nullptr) GTEST_SKIP() << "run through tests/worker/with_radosgw.sh";
  Json ranges = {{"ContinuousParameterRanges", {{{"Name", "x"}, {"MinValue", "-1"}, {"MaxValue", "1"}}}}};
  Json spec = Job("nobucket", "Random", 1, 1, ranges);
  spec["TrainingJobDefinition"]["OutputDataConfig"]["S3OutputPath"] =
      "s3://hpo-no-such-bucket-" + std::to_string(::getpid()) + "/runs";
  Call("CreateHyperParameterTuningJob", spec);
  Json d = WaitFor("nobucket", 60);
  EXPECT_EQ(d["HyperParameterTuningJobStatus"], "Failed") << d.dump(2);
  const auto trials = Trials("nobucket");
  ASSERT_EQ(trials.size(), 1u);
  const std::string name = trials[0]["TrainingJobName"];
  const std::string reason = trials[0].value("FailureReason", "");
  EXPECT_EQ(reason.rfind("ClientError: OutputDataConfig.S3OutputPath cannot be used", 0), 0u) << reason;
  EXPECT_NE(reason.find("NoSuchBucket"), std::string::npos) << reason;
  EXPECT_NE(reason.find("create its bucket"), std::string::npos) << reason;
  for (const fs::path& log : TrialLogs(name)) {
    std::ifstream in(log);
    for (std::string line; std::getline(in, line);) {
      EXPECT_NE(line.rfind("epoch=", 0), 0u) << "the program ran: " << line;
    }
  }
}

// The network between workers and coordinator misbehaves: the workers connect through a proxy
// that delays traffic, partitions it (shorter and longer than the 3 s lease) and resets every
// connection, at random moments. Nothing is lost or delivered twice: every trial completes, its
// stored output lines are each epoch exactly once, and its objective is its log's last loss.
class NetChaos : public Chaos {
 protected:
  void BeforeWorkers() override {
    worker_port_ = hpo::testing::FreePort();
    proxy_ = std::make_unique<hpo::testing::FaultProxy>(worker_port_, zmq_port_);
  }
  void TearDown() override {
    proxy_.reset();
    Chaos::TearDown();
  }
  // The trial's output lines the coordinator stored for its last attempt, in order.
  std::vector<std::string> StoredLines(const std::string& trial) {
    httplib::Client c("127.0.0.1", http_port_);
    auto res = c.Get("/hpo/v1/logs/" + trial + "?limit=10000");
    if (!res || res->status != 200) return {};
    const Json body = Json::parse(res->body);
    uint64_t last_attempt = 0;
    for (const Json& l : body["lines"]) last_attempt = std::max<uint64_t>(last_attempt, l["attempt"].get<uint64_t>());
    std::vector<std::string> out;
    for (const Json& l : body["lines"]) {
      if (l["attempt"].get<uint64_t>() == last_attempt) out.push_back(l["text"]);
    }
    return out;
  }
  std::unique_ptr<hpo::testing::FaultProxy> proxy_;
};

TEST_F(NetChaos, DelaysPartitionsAndResetsLoseAndDuplicateNothing) {
  std::mt19937_64 rng(FaultSeed());
  Json ranges = {{"ContinuousParameterRanges", {{{"Name", "x"}, {"MinValue", "-1"}, {"MaxValue", "1"}}}}};
  // Long enough for at least five faults whatever the seed draws (150 ms once ended after four).
  Json spec = Job("chaos-net", "Random", 90, 6, ranges, {{"sleep_ms", "250"}});
  spec["TrainingJobDefinition"]["StaticHyperParameters"]["epochs"] = "3";
  spec["TrainingJobDefinition"]["RetryStrategy"] = {{"MaximumRetryAttempts", 10}};
  Call("CreateHyperParameterTuningJob", spec);
  int faults = 0;
  bool long_partition = false;
  const auto until = std::chrono::steady_clock::now() + std::chrono::seconds(40);
  while (std::chrono::steady_clock::now() < until) {
    std::this_thread::sleep_for(std::chrono::milliseconds(200 + rng() % 400));
    if (Counters("chaos-net").value("HyperParameterTuningJobStatus", "") != "InProgress") break;
    ++faults;
    switch (rng() % 4) {
      case 0:
        proxy_->Delay(50 + static_cast<int>(rng() % 250));
        std::this_thread::sleep_for(std::chrono::milliseconds(500 + rng() % 1500));
        break;
      case 1:  // shorter than the lease: nobody is declared lost
        proxy_->Partition();
        std::this_thread::sleep_for(std::chrono::milliseconds(300 + rng() % 1500));
        break;
      case 2:
        proxy_->Reset();
        break;
      case 3:  // longer than the lease, at most once: the workers are lost and come back
        if (long_partition) continue;
        long_partition = true;
        proxy_->Partition();
        std::this_thread::sleep_for(std::chrono::milliseconds(4500));
        break;
    }
    proxy_->Pass();
  }
  proxy_->Pass();
  std::printf("network faults: %d (long partition: %s, resets: %llu)\n", faults, long_partition ? "yes" : "no",
              static_cast<unsigned long long>(proxy_->resets()));
  Json d = WaitFor("chaos-net", 120);
  EXPECT_GE(faults, 5) << "the job ended before enough faults; make it longer";
  ASSERT_EQ(d["HyperParameterTuningJobStatus"], "Completed") << d.dump(2);
  EXPECT_EQ(d["TrainingJobStatusCounters"]["Completed"], 90);
  EXPECT_EQ(d["TrainingJobStatusCounters"]["RetryableError"], 0);
  EXPECT_EQ(d["ObjectiveStatusCounters"]["Succeeded"], 90);
  auto trials = Trials("chaos-net");
  ASSERT_EQ(trials.size(), 90u);
  for (const auto& t : trials) {
    const std::string name = t["TrainingJobName"];
    std::vector<std::string> lines = StoredLines(name);
    std::vector<std::string> epochs;
    for (const auto& l : lines) {
      if (l.rfind("epoch=", 0) == 0) epochs.push_back(l.substr(0, l.find(' ')));
    }
    EXPECT_EQ(epochs, (std::vector<std::string>{"epoch=0", "epoch=1", "epoch=2"})) << name << ": stored lines lost or doubled";
    std::optional<double> last;
    for (const auto& l : lines) {
      if (auto p = l.find("loss="); p != std::string::npos) last = std::stod(l.substr(p + 5));
    }
    ASSERT_TRUE(last) << name;
    EXPECT_DOUBLE_EQ(t["FinalHyperParameterTuningJobObjectiveMetric"]["Value"].get<double>(), *last) << name;
  }
}

}  // namespace

// `hpo coordinator --notify`: a webhook receiver (a real Python server that checks signatures, as
// a user's would) is down for the start of a tuning job and then answers 503 three times, and the
// coordinator is killed (SIGKILL) three times while the job runs. Every state of every training
// job and of the tuning job still reaches it, signed, each state once (repeats after a kill carry
// the same event id), in the order the states came.
class NotifyChaos : public Chaos {
 protected:
  void BeforeCoordinator() override {
    receiver_port_ = hpo::testing::FreePort();
    std::ofstream(dir_ / "secret") << "webhook-key\n";
    coordinator_args_ = {"--notify", "http://127.0.0.1:" + std::to_string(receiver_port_) + "/events",
                         "--notify-secret-file", (dir_ / "secret").string()};
  }
  void StartReceiver() {
    receiver_ = std::make_unique<hpo::testing::Child>(
        std::vector<std::string>{"/usr/bin/python3", std::string(HPO_SOURCE_DIR) + "/tests/fault/webhook_receiver.py",
                                 "--port", std::to_string(receiver_port_), "--out", (dir_ / "events.jsonl").string(),
                                 "--secret-file", (dir_ / "secret").string(), "--fail", "3"},
        (dir_ / "receiver.log").string());
  }
  std::vector<Json> Received() {
    std::vector<Json> out;
    std::ifstream in(dir_ / "events.jsonl");
    for (std::string line; std::getline(in, line);) out.push_back(Json::parse(line));
    return out;
  }
  void TearDown() override {
    receiver_.reset();
    Chaos::TearDown();
  }
  // hpo_notifications_waiting from GET /hpo/v1/metrics (-1 when it is not there).
  double NotificationsWaiting() {
    httplib::Client c("127.0.0.1", http_port_);
    auto res = c.Get("/hpo/v1/metrics");
    if (!res) return -1;
    const std::string key = "\nhpo_notifications_waiting ";
    const size_t at = res->body.find(key);
    return at == std::string::npos ? -1 : std::stod(res->body.substr(at + key.size()));
  }
  int receiver_port_ = 0;
  std::unique_ptr<hpo::testing::Child> receiver_;
};

TEST_F(NotifyChaos, EveryStateReachesAWebhookThatWasDownThroughCoordinatorKills) {
  std::mt19937_64 rng(FaultSeed() + 7);
  Json ranges = {{"ContinuousParameterRanges", {{{"Name", "x"}, {"MinValue", "-1"}, {"MaxValue", "1"}}}}};
  Json spec = Job("notified", "Random", 24, 6, ranges, {{"sleep_ms", "250"}});
  spec["TrainingJobDefinition"]["StaticHyperParameters"]["epochs"] = "3";
  Call("CreateHyperParameterTuningJob", spec);
  for (int kill = 0; kill < 3; ++kill) {
    std::this_thread::sleep_for(std::chrono::milliseconds(500 + rng() % 1500));
    coordinator_->Kill(SIGKILL);
    StartCoordinator();
    ASSERT_TRUE(WaitForWorkers(3)) << "after kill " << kill + 1 << "; see " << dir_;
    if (kill == 0) {
      // What waits for the receiver shows in the metrics, for an alert on a webhook that is down.
      EXPECT_GT(NotificationsWaiting(), 0.0);
      StartReceiver();
    }
  }
  Json d = WaitFor("notified", 120);
  ASSERT_EQ(d["HyperParameterTuningJobStatus"], "Completed") << d.dump(2);
  // The job's end is its last event: once it is in, everything before it is.
  auto job_done = [&] {
    for (const Json& r : Received()) {
      if (r["event"]["detail"].value("HyperParameterTuningJobStatus", "") == "Completed") return true;
    }
    return false;
  };
  // The head event may wait out a doubled backoff (1+2+4+8+16+32 s at worst: the receiver down,
  // then 503 three times): two minutes.
  for (int i = 0; i < 1200 && !job_done(); ++i) std::this_thread::sleep_for(std::chrono::milliseconds(100));
  ASSERT_TRUE(job_done()) << "the tuning job's Completed never arrived; see " << dir_;
  std::set<std::string> ids;
  std::map<std::string, std::vector<std::string>> states;  // resource -> states, once per event id
  size_t repeats = 0;
  for (const Json& r : Received()) {
    const Json& e = r["event"];
    EXPECT_EQ(r["event_id_header"], e["id"]);
    EXPECT_EQ(e["source"], "aws.sagemaker");
    if (!ids.insert(e["id"].get<std::string>()).second) {
      ++repeats;
      continue;
    }
    const Json& detail = e["detail"];
    if (e["detail-type"] == "SageMaker Training Job State Change") {
      states[detail["TrainingJobName"]].push_back(detail["TrainingJobStatus"].get<std::string>() + "/" +
                                                  detail["SecondaryStatus"].get<std::string>());
    } else {
      ASSERT_EQ(e["detail-type"], "SageMaker HyperParameter Tuning Job State Change");
      states["notified"].push_back(detail["HyperParameterTuningJobStatus"]);
    }
  }
  std::printf("events: %zu, repeated after a kill: %zu\n", ids.size(), repeats);
  // The last one is deleted once its POST has returned: a moment after the receiver wrote it.
  for (int i = 0; i < 50 && NotificationsWaiting() != 0.0; ++i) std::this_thread::sleep_for(std::chrono::milliseconds(100));
  EXPECT_EQ(NotificationsWaiting(), 0.0);
  EXPECT_EQ(states["notified"].front(), "InProgress");
  EXPECT_EQ(states["notified"].back(), "Completed");
  const auto trials = Trials("notified");
  ASSERT_EQ(trials.size(), 24u);
  for (const auto& t : trials) {
    const std::string name = t["TrainingJobName"];
    const std::vector<std::string>& seen = states[name];
    ASSERT_FALSE(seen.empty()) << name;
    EXPECT_EQ(seen.back(), "Completed/Completed") << name;
    // In the order of its transitions, each once.
    Json tj = Call("DescribeTrainingJob", {{"TrainingJobName", name}});
    std::vector<std::string> transitions;
    for (const Json& st : tj["SecondaryStatusTransitions"]) transitions.push_back(st["Status"]);
    size_t at = 0;
    for (size_t i = 0; i < seen.size(); ++i) {
      if (i > 0) {
        EXPECT_NE(seen[i], seen[i - 1]) << name << ": a state told twice";
      }
      const std::string secondary = seen[i].substr(seen[i].find('/') + 1);
      auto it = std::find(transitions.begin() + static_cast<std::ptrdiff_t>(at), transitions.end(), secondary);
      EXPECT_NE(it, transitions.end()) << name << ": " << secondary << " out of order; transitions "
                                       << tj["SecondaryStatusTransitions"].dump();
      if (it != transitions.end()) at = static_cast<size_t>(it - transitions.begin());
    }
  }
}
