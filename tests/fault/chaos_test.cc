// Fault tests: a real cluster on loopback (tests/integration/cluster.h) whose coordinator and
// workers are killed with SIGKILL at random moments while a tuning job runs. Each test is
// bounded in time (about a minute) and is part of the default test run; on its own:
//   ctest --test-dir build -L fault --output-on-failure
// HPO_FAULT_SEED=N replays a run's kill schedule; the seed in use is printed.
#include <random>
#include <set>

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
  Json Counters(const std::string& job) {
    return Call("DescribeHyperParameterTuningJob", {{"HyperParameterTuningJobName", job}});
  }
  // Attempt directories per trial, over every worker's work directory.
  std::map<std::string, int> AttemptDirs() {
    std::map<std::string, int> n;
    for (auto& e : fs::recursive_directory_iterator(dir_)) {
      if (e.is_directory() && e.path().filename().string().rfind("attempt-", 0) == 0 &&
          e.path().parent_path().parent_path().filename() == "trials") {
        ++n[e.path().parent_path().filename().string()];
      }
    }
    return n;
  }
  // Lines of the trial's logs (all attempts) that the trainer printed for an epoch.
  int EpochLines(const std::string& trial) {
    int lines = 0;
    for (auto& e : fs::recursive_directory_iterator(dir_)) {
      if (e.path().filename() != "trial.log" || e.path().string().find("/" + trial + "/") == std::string::npos) continue;
      std::ifstream in(e.path());
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
  Json spec = Job("chaos-coord", "Random", 200, 6, ranges, {{"sleep_ms", "150"}});
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
  auto dirs = AttemptDirs();
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

}  // namespace
