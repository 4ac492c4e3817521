// Trial directory trees made ahead of time (worker/spare_dirs.h): made on the pool, moved into
// place once per trial, never over an existing trial directory, switched off when a move fails,
// and cleaned up (this agent's at Stop, a dead process's at Start).
#include "worker/spare_dirs.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <string>
#include <thread>
#include <vector>

namespace hpo::worker {
namespace {
namespace fs = std::filesystem;

class SpareDirsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() /
           ("hpo-spares-" + std::to_string(::getpid()) + "-" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(dir_);
    fs::create_directories(dir_);
  }
  void TearDown() override { fs::remove_all(dir_); }

  // Waits until `n` spares are ready (the pool makes them after a short delay).
  static bool WaitReady(const SpareTrialDirs& s, size_t n) {
    for (int i = 0; i < 500 && s.Ready() < n; ++i) std::this_thread::sleep_for(std::chrono::milliseconds(10));
    return s.Ready() == n;
  }
  std::string Tag() const { return std::to_string(::getpid()) + "-1"; }

  fs::path dir_;
  std::vector<std::string> log_;
};

TEST_F(SpareDirsTest, MakesTheSlotsCountOfTreesAndMovesOneIntoPlacePerTrial) {
  TaskPool pool;
  SpareTrialDirs s(dir_, Tag(), 2, &pool, [this](const std::string& l) { log_.push_back(l); });
  s.Start();
  ASSERT_TRUE(WaitReady(s, 2));
  s.Refill();  // already full: nothing more is made
  std::this_thread::sleep_for(std::chrono::milliseconds(60));
  EXPECT_EQ(s.Ready(), 2u);

  const fs::path t1 = dir_ / "trials" / "job-001";
  ASSERT_TRUE(s.Take(t1, 1));
  EXPECT_TRUE(fs::is_directory(t1 / "checkpoints"));
  EXPECT_TRUE(fs::is_regular_file(t1 / "attempt-1" / "trial.log"));
  EXPECT_TRUE(fs::is_directory(t1 / "attempt-1" / "ml"));
  EXPECT_EQ(s.Ready(), 1u);

  // A later attempt of another trial gets its attempt directory renamed.
  const fs::path t2 = dir_ / "trials" / "job-002";
  ASSERT_TRUE(s.Take(t2, 3));
  EXPECT_TRUE(fs::is_directory(t2 / "attempt-3" / "ml"));
  EXPECT_FALSE(fs::exists(t2 / "attempt-1"));
  EXPECT_FALSE(s.Take(dir_ / "trials" / "job-003", 1)) << "none ready";

  s.Refill();
  ASSERT_TRUE(WaitReady(s, 2));
  EXPECT_TRUE(log_.empty());
  s.Stop();
  EXPECT_EQ(s.Ready(), 0u);
  EXPECT_FALSE(fs::exists(dir_ / "spares")) << "this agent's spares are removed";
  EXPECT_TRUE(fs::exists(t1 / "attempt-1")) << "trial directories stay";
}

TEST_F(SpareDirsTest, NeverReplacesAnExistingTrialDirectoryAndKeepsTheSpare) {
  TaskPool pool;
  SpareTrialDirs s(dir_, Tag(), 1, &pool, [this](const std::string& l) { log_.push_back(l); });
  s.Start();
  ASSERT_TRUE(WaitReady(s, 1));
  const fs::path t = dir_ / "trials" / "job-001";
  fs::create_directories(t / "checkpoints");
  std::ofstream(t / "checkpoints" / "step-7") << "weights";
  EXPECT_FALSE(s.Take(t, 2));
  EXPECT_TRUE(fs::exists(t / "checkpoints" / "step-7")) << "a retry's checkpoints survive";
  EXPECT_EQ(s.Ready(), 1u) << "the spare is kept for the next trial";
  EXPECT_FALSE(s.Off());
  s.Stop();
}

TEST_F(SpareDirsTest, AMoveThatFailsSwitchesSparesOffWithOneLoggedLine) {
  TaskPool pool;
  SpareTrialDirs s(dir_, Tag(), 2, &pool, [this](const std::string& l) { log_.push_back(l); });
  s.Start();
  ASSERT_TRUE(WaitReady(s, 2));
  // The trials directory's parent does not exist: the rename fails with ENOENT.
  EXPECT_FALSE(s.Take(dir_ / "no-such-dir" / "job-001", 1));
  EXPECT_TRUE(s.Off());
  EXPECT_EQ(s.Ready(), 0u);
  ASSERT_EQ(log_.size(), 1u);
  EXPECT_NE(log_[0].find("laying trials out when assigned"), std::string::npos) << log_[0];
  s.Refill();  // off: nothing is made any more
  EXPECT_FALSE(s.Take(dir_ / "trials" / "job-002", 1));
  s.Stop();
}

TEST_F(SpareDirsTest, StartRemovesTheSparesOfAProcessThatIsGoneAndKeepsALiveOnes) {
  // pid_max is at most 4194304 on Linux: a larger pid belongs to no process.
  const fs::path dead = dir_ / "spares" / "999999999-1-1";
  const fs::path live = dir_ / "spares" / "1-1-1";  // init is alive
  fs::create_directories(dead / "attempt-1");
  fs::create_directories(live / "attempt-1");
  {
    TaskPool pool;
    SpareTrialDirs s(dir_, Tag(), 1, &pool, [this](const std::string& l) { log_.push_back(l); });
    s.Start();
    ASSERT_TRUE(WaitReady(s, 1));
    s.Stop();
  }  // the pool has run the cleanup
  EXPECT_FALSE(fs::exists(dead));
  EXPECT_TRUE(fs::exists(live));
}

}  // namespace
}  // namespace hpo::worker
