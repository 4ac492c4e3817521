// DiskUsage and VolumeWatch on real directories (the agent's use of them runs in
// tests/integration/runtime_test.cc: a trainer that writes past its VolumeSizeInGB fails).
#include "worker/volume_watch.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <thread>

namespace hpo::worker {
namespace {
namespace fs = std::filesystem;

class VolumeWatchTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::path(::testing::TempDir()) / ("hpo-volume-" + std::to_string(::getpid()) + "-" +
                                             ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(dir_);
    fs::create_directories(dir_);
  }
  void TearDown() override { fs::remove_all(dir_); }
  static void Write(const fs::path& p, size_t bytes) {
    fs::create_directories(p.parent_path());
    std::ofstream(p, std::ios::binary) << std::string(bytes, 'x');
  }
  static uint64_t Usage(const std::vector<fs::path>& dirs, const std::vector<fs::path>& skip = {}) {
    std::vector<std::string> d, s;
    for (const auto& p : dirs) d.push_back(p.string());
    for (const auto& p : skip) s.push_back(p.string());
    auto u = DiskUsage(d, s);
    EXPECT_TRUE(u.ok()) << u.status().ToString();
    return u.ok() ? *u : 0;
  }
  fs::path dir_;
};

TEST_F(VolumeWatchTest, DiskUsageCountsFilesOnceAndLeavesOutSkippedTreesAndSymlinkTargets) {
  const fs::path root = dir_ / "ml", ckpt = dir_ / "checkpoints", outside = dir_ / "outside";
  fs::create_directories(root);
  fs::create_directories(ckpt);
  const uint64_t empty = Usage({root, ckpt});
  Write(root / "model" / "weights", 1 << 20);
  const uint64_t with_model = Usage({root, ckpt});
  EXPECT_GE(with_model - empty, 1u << 20);
  EXPECT_LT(with_model - empty, (1u << 20) + (64u << 10));  // blocks, not more
  Write(ckpt / "ckpt", 1 << 20);
  const uint64_t with_ckpt = Usage({root, ckpt});
  EXPECT_GE(with_ckpt - with_model, 1u << 20);
  // A hard link to a counted file adds nothing; a symlink's target outside is not counted.
  fs::create_hard_link(root / "model" / "weights", root / "model" / "weights.link");
  Write(outside / "big", 4 << 20);
  fs::create_directory_symlink(outside, root / "input-link");
  const uint64_t linked = Usage({root, ckpt});
  EXPECT_LT(linked - with_ckpt, 64u << 10);
  // A FastFile channel is skipped.
  Write(root / "input" / "data" / "fast" / "x", 2 << 20);
  EXPECT_LT(Usage({root, ckpt}, {root / "input" / "data" / "fast"}) - linked, 64u << 10);
  EXPECT_GE(Usage({root, ckpt}) - linked, 2u << 20);
  // A missing directory counts as empty.
  EXPECT_EQ(Usage({dir_ / "missing"}), 0u);
}

TEST_F(VolumeWatchTest, TheReasonNamesTheVolumeAndTheUse) {
  VolumeLimit gib;
  gib.volume_gb = 2;
  EXPECT_EQ(VolumeExceededReason(gib, (5ull << 30) / 2),
            "ClientError: the training job used 2.500 GB of its volume (input data, model, output and checkpoints), "
            "more than ResourceConfig.VolumeSizeInGB=2; ask for a larger volume");
  // Just past the limit: the figure still reads as more than it.
  EXPECT_NE(VolumeExceededReason(gib, (2ull << 30) + 4096).find("used 2.000 (2147487744 bytes) GB"), std::string::npos)
      << VolumeExceededReason(gib, (2ull << 30) + 4096);
  VolumeLimit small;
  small.volume_gb = 1;
  small.unit_bytes = 1 << 20;
  EXPECT_EQ(VolumeExceededReason(small, 3 << 20),
            "ClientError: the training job used 3.000 GB of its volume (input data, model, output and checkpoints), "
            "more than ResourceConfig.VolumeSizeInGB=1; ask for a larger volume (this worker counts 1048576 bytes "
            "per GB)");
}

TEST_F(VolumeWatchTest, AWatchReportsTheFirstMeasurementAboveTheLimit) {
  const fs::path root = dir_ / "ml";
  fs::create_directories(root);
  VolumeLimit limit;
  limit.dirs = {root.string()};
  limit.volume_gb = 1;
  limit.unit_bytes = 1 << 20;  // 1 MiB
  VolumeWatch watch(limit, std::chrono::milliseconds(20));
  Write(root / "small", 100 << 10);
  // Measured again and again below the limit: nothing to report.
  while (watch.used_bytes() < (100u << 10)) std::this_thread::sleep_for(std::chrono::milliseconds(5));
  EXPECT_EQ(watch.Exceeded(), "");
  Write(root / "big", 2 << 20);
  std::string reason;
  while ((reason = watch.Exceeded()).empty()) std::this_thread::sleep_for(std::chrono::milliseconds(5));
  EXPECT_NE(reason.find("more than ResourceConfig.VolumeSizeInGB=1"), std::string::npos) << reason;
  EXPECT_GT(watch.used_bytes(), 2u << 20);
}

}  // namespace
}  // namespace hpo::worker
