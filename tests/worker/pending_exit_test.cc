// PendingExit: a report waiting for its uploads survives the process that wrote it, whole; a
// damaged file is an error naming it, never a crash or a half-read report.
#include "worker/pending_exit.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>

namespace hpo::worker {
namespace {
namespace fs = std::filesystem;

class PendingExitTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::path(::testing::TempDir()) / ("hpo-pending-" + std::to_string(::getpid()) + "-" +
                                             ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(dir_);
    fs::create_directories(dir_);
  }
  void TearDown() override { fs::remove_all(dir_); }
  static PendingExit Sample() {
    PendingExit p;
    p.exit.trial = "job-001-1a2b3c4d";
    p.exit.attempt = 2;
    p.exit.seq = 7;
    p.exit.status = "Completed";
    p.exit.secondary_status = "Completed";
    p.exit.exit_code = 0;
    p.exit.ended_at_ms = 1764000000123;
    p.exit.final_metrics = {{"loss", 0.125}, {"val:acc", 0.9}};
    ArtifactSpec a;
    a.root = "/w/trials/job-001-1a2b3c4d/attempt-2/ml";
    a.output_path = "s3://bucket/out";
    a.job_name = "job-001-1a2b3c4d";
    a.compress = false;
    a.scratch_dir = "/w/trials/job-001-1a2b3c4d/attempt-2";
    a.replace = false;
    a.primary = false;
    a.host = "algo-2";
    a.hosts = {"algo-1", "algo-2"};
    a.attempt = 2;
    p.artifacts = a;
    p.intermediate = true;
    p.checkpoint_uri = "s3://bucket/ckpt/";
    p.checkpoint_dir = "/w/trials/job-001-1a2b3c4d/checkpoints-algo-2";
    return p;
  }
  fs::path dir_;
};

TEST_F(PendingExitTest, WhatIsWrittenIsReadBackWholeAndGoesWhenRemoved) {
  EXPECT_FALSE(ReadPendingExit(dir_.string()).value().has_value()) << "none yet";
  const PendingExit p = Sample();
  ASSERT_TRUE(WritePendingExit(dir_.string(), p).ok());
  auto back = ReadPendingExit(dir_.string());
  ASSERT_TRUE(back.ok()) << back.status().ToString();
  ASSERT_TRUE(back->has_value());
  const PendingExit& q = **back;
  EXPECT_EQ(q.exit, p.exit);
  ASSERT_TRUE(q.artifacts);
  EXPECT_EQ(q.artifacts->root, p.artifacts->root);
  EXPECT_EQ(q.artifacts->output_path, p.artifacts->output_path);
  EXPECT_EQ(q.artifacts->job_name, p.artifacts->job_name);
  EXPECT_EQ(q.artifacts->compress, false);
  EXPECT_EQ(q.artifacts->scratch_dir, p.artifacts->scratch_dir);
  EXPECT_EQ(q.artifacts->replace, false);
  EXPECT_EQ(q.artifacts->primary, false);
  EXPECT_EQ(q.artifacts->host, "algo-2");
  EXPECT_EQ(q.artifacts->hosts, (std::vector<std::string>{"algo-1", "algo-2"}));
  EXPECT_EQ(q.artifacts->attempt, 2u);
  EXPECT_TRUE(q.intermediate);
  EXPECT_EQ(q.checkpoint_uri, p.checkpoint_uri);
  EXPECT_EQ(q.checkpoint_dir, p.checkpoint_dir);

  PendingExit checkpoints_only = Sample();  // a job without an output path
  checkpoints_only.artifacts.reset();
  checkpoints_only.intermediate = false;
  ASSERT_TRUE(WritePendingExit(dir_.string(), checkpoints_only).ok());
  EXPECT_FALSE(ReadPendingExit(dir_.string()).value()->artifacts);

  RemovePendingExit(dir_.string());
  EXPECT_FALSE(ReadPendingExit(dir_.string()).value().has_value());
  RemovePendingExit(dir_.string());  // nothing there: nothing happens
}

TEST_F(PendingExitTest, ADamagedOrForeignFileIsAnErrorNamingIt) {
  const fs::path file = dir_ / kPendingExitFile;
  for (const std::string& text : {std::string("{\"version\": 1, \"trial\": \"x\""),  // cut short by a crash
                                 std::string("[1, 2]"), std::string("{\"version\": 99}"),
                                 std::string("{\"version\": 1, \"trial\": 5}")}) {
    std::ofstream(file, std::ios::trunc) << text;
    auto r = ReadPendingExit(dir_.string());
    ASSERT_FALSE(r.ok()) << text;
    EXPECT_EQ(r.status().code(), StatusCode::kInvalidArgument) << text;
    EXPECT_NE(r.status().message().find(file.string()), std::string::npos) << r.status().message();
  }
  // A report that would not pass as a wire message (a failure without its reason) is refused too.
  PendingExit p = Sample();
  p.exit.status = "Failed";
  p.exit.secondary_status = "Failed";
  p.exit.exit_code = 1;
  ASSERT_TRUE(WritePendingExit(dir_.string(), p).ok());
  EXPECT_FALSE(ReadPendingExit(dir_.string()).ok());
}

TEST_F(PendingExitTest, AnUnwritableDirectoryIsAnErrorNamingTheFile) {
  const fs::path not_a_dir = dir_ / "file";
  std::ofstream(not_a_dir) << "x";  // root or not, nothing can be created under a regular file
  Status s = WritePendingExit(not_a_dir.string(), Sample());
  EXPECT_FALSE(s.ok());
  EXPECT_NE(s.message().find(kPendingExitFile), std::string::npos) << s.message();
}

}  // namespace
}  // namespace hpo::worker
