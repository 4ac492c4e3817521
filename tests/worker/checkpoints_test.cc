// CheckpointSync against a local destination (the s3:// form runs in s3_radosgw_test.cc).
#include "worker/checkpoints.h"

#include <gtest/gtest.h>
#include <fcntl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include <csignal>

#include <filesystem>
#include <fstream>
#include <set>
#include <sstream>

namespace hpo::worker {
namespace {
namespace fs = std::filesystem;

class CheckpointsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::path(::testing::TempDir()) / ("hpo-ckpt-" + std::to_string(::getpid()) + "-" +
                                             ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(dir_);
    fs::create_directories(dir_);
  }
  void TearDown() override { fs::remove_all(dir_); }
  static void Write(const fs::path& p, const std::string& text) {
    fs::create_directories(p.parent_path());
    std::ofstream(p) << text;
  }
  static std::string Read(const fs::path& p) {
    std::ifstream in(p);
    std::stringstream s;
    s << in.rdbuf();
    return s.str();
  }
  static std::set<std::string> Tree(const fs::path& d) {
    std::set<std::string> out;
    if (!fs::exists(d)) return out;
    for (const auto& e : fs::recursive_directory_iterator(d)) {
      if (e.is_regular_file()) out.insert(fs::relative(e.path(), d).generic_string());
    }
    return out;
  }
  std::unique_ptr<CheckpointSync> Make(const std::string& uri, const fs::path& local) {
    auto c = CheckpointSync::Create(uri, local.string(), [] { return Result<const S3Client*>(Status::Internal("no S3 here")); });
    EXPECT_TRUE(c.ok()) << c.status().ToString();
    return c.ok() ? std::move(c).value() : nullptr;
  }
  fs::path dir_;
};

TEST_F(CheckpointsTest, NewAndChangedFilesGoUpLocalDeletesAreMirroredAndANewAttemptGetsThemBack) {
  const fs::path dest = dir_ / "bucket" / "job-001";
  const fs::path local = dir_ / "worker1" / "checkpoints";
  auto sync = Make("file://" + dest.string(), local);
  ASSERT_TRUE(sync);
  auto restored = sync->Restore();  // nothing there yet
  ASSERT_TRUE(restored.ok()) << restored.status().ToString();
  EXPECT_EQ(restored->files, 0u);

  Write(local / "state.txt", "epoch=3");
  Write(local / "shards" / "opt.bin", "0123456789");
  ::usleep(60000);  // older than the racy window (a file written just before is sent again)
  auto pass = sync->Sync();
  ASSERT_TRUE(pass.ok()) << pass.status().ToString();
  EXPECT_EQ(pass->files, 2u);
  EXPECT_EQ(Tree(dest), (std::set<std::string>{"state.txt", "shards/opt.bin"}));

  pass = sync->Sync();  // nothing changed: nothing sent
  ASSERT_TRUE(pass.ok());
  EXPECT_EQ(pass->files, 0u);

  ::usleep(2000);  // a distinct modification time
  Write(local / "state.txt", "epoch=4");
  fs::remove(local / "shards" / "opt.bin");
  pass = sync->Sync();
  ASSERT_TRUE(pass.ok());
  EXPECT_EQ(pass->files, 1u);
  EXPECT_EQ(pass->deleted, 1u);
  EXPECT_EQ(Tree(dest), (std::set<std::string>{"state.txt"}));
  EXPECT_EQ(Read(dest / "state.txt"), "epoch=4");

  // The next attempt, on another worker whose directory holds stale files: it sees exactly what
  // the destination holds.
  const fs::path other = dir_ / "worker2" / "checkpoints";
  Write(other / "stale.txt", "from an older attempt");
  auto next = Make(dest.string(), other);  // a plain path works as file:// does
  ASSERT_TRUE(next);
  restored = next->Restore();
  ASSERT_TRUE(restored.ok()) << restored.status().ToString();
  EXPECT_EQ(restored->files, 1u);
  EXPECT_EQ(Tree(other), (std::set<std::string>{"state.txt"}));
  EXPECT_EQ(Read(other / "state.txt"), "epoch=4");
  // What was restored is not sent back, and deleting it locally deletes it there.
  pass = next->Sync();
  ASSERT_TRUE(pass.ok());
  EXPECT_EQ(pass->files, 0u);
  fs::remove(other / "state.txt");
  pass = next->Sync();
  ASSERT_TRUE(pass.ok());
  EXPECT_EQ(pass->deleted, 1u);
  EXPECT_TRUE(Tree(dest).empty());
}

// A program rewrites its checkpoint in place, the same size, within the timestamp tick of the
// copy the last pass sent (`echo 6 > epoch` while it went up): size and mtime are as they were,
// yet the content is not. A file written that recently is sent again by the next pass, so the
// destination ends with what the file holds. (The torn copy of a truncate-then-write went up
// as "\0\0" and was never replaced: the next attempt restored an empty epoch.)
TEST_F(CheckpointsTest, AFileRewrittenWithinItsTimestampTickIsSentAgain) {
  const fs::path dest = dir_ / "bucket" / "job-001";
  const fs::path local = dir_ / "worker1" / "checkpoints";
  auto sync = Make("file://" + dest.string(), local);
  ASSERT_TRUE(sync);
  Write(local / "epoch", "5\n");
  auto pass = sync->Sync();
  ASSERT_TRUE(pass.ok()) << pass.status().ToString();
  ASSERT_EQ(Read(dest / "epoch"), "5\n");
  struct stat before {};
  ASSERT_EQ(::stat((local / "epoch").c_str(), &before), 0);
  Write(local / "epoch", "6\n");
  // Within the same tick: the mtime the copy saw.
  const struct timespec times[2] = {before.st_atim, before.st_mtim};
  ASSERT_EQ(::utimensat(AT_FDCWD, (local / "epoch").c_str(), times, 0), 0);
  pass = sync->Sync();
  ASSERT_TRUE(pass.ok()) << pass.status().ToString();
  EXPECT_EQ(pass->files, 1u);
  EXPECT_EQ(Read(dest / "epoch"), "6\n");
  // Once the file is older than the window, an unchanged file is not sent again.
  ::usleep(60000);
  ASSERT_TRUE(sync->Sync().ok());
  pass = sync->Sync();
  ASSERT_TRUE(pass.ok());
  EXPECT_EQ(pass->files, 0u);
}

// An upload that fails leaves the older copy at the destination: the file was forgotten, so
// when the program deleted it before the next pass the stale copy stayed there for good, and the
// next attempt's restore brought back a checkpoint the program had deleted.
TEST_F(CheckpointsTest, AFileWhoseUploadFailedAndWasThenDeletedIsDeletedAtTheDestination) {
  const fs::path dest = dir_ / "bucket" / "job-001";
  const fs::path local = dir_ / "worker1" / "checkpoints";
  auto sync = Make("file://" + dest.string(), local);
  ASSERT_TRUE(sync);
  Write(local / "ckpt-3", "epoch=3");
  ASSERT_TRUE(sync->Sync().ok());
  ASSERT_EQ(Read(dest / "ckpt-3"), "epoch=3");
  // The rewrite's upload fails: a file size limit makes the copy fail (root ignores permissions).
  ::usleep(2000);
  Write(local / "ckpt-3", std::string(8192, 'x'));
  struct rlimit before {};
  ASSERT_EQ(::getrlimit(RLIMIT_FSIZE, &before), 0);
  auto old_handler = ::signal(SIGXFSZ, SIG_IGN);
  struct rlimit small = before;
  small.rlim_cur = 1024;
  ASSERT_EQ(::setrlimit(RLIMIT_FSIZE, &small), 0);
  auto failed = sync->Sync();
  ::setrlimit(RLIMIT_FSIZE, &before);
  ::signal(SIGXFSZ, old_handler);
  ASSERT_FALSE(failed.ok()) << "the upload was to fail";
  EXPECT_EQ(Read(dest / "ckpt-3"), "epoch=3") << "the older copy is still there";
  // The program deletes it before the next pass: the older copy goes too.
  fs::remove(local / "ckpt-3");
  auto pass = sync->Sync();
  ASSERT_TRUE(pass.ok()) << pass.status().ToString();
  EXPECT_EQ(pass->deleted, 1u);
  EXPECT_TRUE(Tree(dest).empty());
}

// A checkpoint directory the program replaced with a link (to a directory of the host): a sync
// neither uploads what it points to nor takes it for empty (the destination's checkpoints would
// be deleted), and a restore replaces the link, leaving what it pointed to alone.
TEST_F(CheckpointsTest, ACheckpointDirectoryReplacedWithALinkIsNotFollowed) {
  const fs::path dest = dir_ / "bucket" / "job-001";
  const fs::path local = dir_ / "worker1" / "checkpoints";
  auto sync = Make("file://" + dest.string(), local);
  ASSERT_TRUE(sync);
  Write(local / "ckpt-1", "epoch=1");
  ASSERT_TRUE(sync->Sync().ok());
  const fs::path host = dir_ / "host";
  Write(host / "shadow", "root:x:0:0");
  fs::remove_all(local);
  fs::create_directory_symlink(host, local);
  auto pass = sync->Sync();
  EXPECT_FALSE(pass.ok());
  EXPECT_EQ(Tree(dest), std::set<std::string>{"ckpt-1"}) << "nothing uploaded, nothing deleted";
  auto restored = sync->Restore();
  ASSERT_TRUE(restored.ok()) << restored.status().ToString();
  EXPECT_FALSE(fs::is_symlink(local));
  EXPECT_EQ(Tree(local), std::set<std::string>{"ckpt-1"});
  EXPECT_EQ(Read(host / "shadow"), "root:x:0:0") << "what the link pointed to is left alone";
}

// A destination that cannot be listed (S3 down) leaves the local directory as it was: it was
// emptied first, and a retry on the same worker lost the only copy of the newest checkpoints.
TEST_F(CheckpointsTest, ARestoreWhoseDestinationCannotBeListedLeavesTheLocalCopy) {
  const fs::path dest = dir_ / "bucket" / "job-001";
  const fs::path local = dir_ / "worker1" / "checkpoints";
  Write(local / "ckpt-8", "epoch=8");
  Write(dir_ / "bucket", "not a directory");  // the destination's parent is a file
  auto sync = Make("file://" + dest.string(), local);
  ASSERT_TRUE(sync);
  auto restored = sync->Restore();
  ASSERT_FALSE(restored.ok()) << "a listing that cannot work is an error";
  EXPECT_EQ(Tree(local), std::set<std::string>{"ckpt-8"});
  EXPECT_EQ(Read(local / "ckpt-8"), "epoch=8");
}

// A CheckpointConfig.S3Uri of file:// through a symlink (a shared volume linked in): the retry's
// restore crashed the worker (a key resolved through the link was cut at the link's length).
TEST_F(CheckpointsTest, ARestoreThroughASymlinkedDestinationGetsTheCheckpointsBack) {
  Write(dir_ / "real-volume-with-a-longer-name" / "job-001" / "ck.txt", "epoch=3");
  fs::create_directory_symlink(dir_ / "real-volume-with-a-longer-name", dir_ / "ck");
  auto sync = Make("file://" + (dir_ / "ck" / "job-001").string(), dir_ / "local");
  ASSERT_TRUE(sync);
  auto restored = sync->Restore();
  ASSERT_TRUE(restored.ok()) << restored.status().ToString();
  EXPECT_EQ(restored->files, 1u);
  EXPECT_EQ(Read(dir_ / "local" / "ck.txt"), "epoch=3");
}

TEST_F(CheckpointsTest, APrefixIsADirectoryNotAStringPrefix) {
  Write(dir_ / "ckpt" / "ASHA-10" / "state.txt", "other job");
  auto sync = Make((dir_ / "ckpt" / "ASHA-1").string(), dir_ / "local");
  ASSERT_TRUE(sync);
  auto restored = sync->Restore();
  ASSERT_TRUE(restored.ok());
  EXPECT_EQ(restored->files, 0u) << "ASHA-1 must not pick up ASHA-10's checkpoints";
}

// output/intermediate (worker/artifacts.h): uploaded during training like checkpoints, but what
// the program deletes locally stays uploaded, as SageMaker never deletes from that prefix.
TEST_F(CheckpointsTest, WithoutMirroredDeletesAPassOnlyUploadsNewAndChangedFiles) {
  const fs::path dest = dir_ / "out" / "job-001" / "output" / "intermediate";
  const fs::path local = dir_ / "ml" / "output" / "intermediate";
  auto c = CheckpointSync::Create("file://" + dest.string(), local.string(),
                                  [] { return Result<const S3Client*>(Status::Internal("no S3 here")); },
                                  {.mirror_deletes = false, .what = "OutputDataConfig.S3OutputPath"});
  ASSERT_TRUE(c.ok()) << c.status().ToString();
  Write(local / "step1.txt", "one");
  Write(local / "sub" / "curve.csv", "1,2");
  auto first = (*c)->Sync();
  ASSERT_TRUE(first.ok()) << first.status().ToString();
  EXPECT_EQ(first->files, 2u);
  EXPECT_EQ(Tree(dest), (std::set<std::string>{"step1.txt", "sub/curve.csv"}));
  fs::remove(local / "step1.txt");
  Write(local / "sub" / "curve.csv", "1,2,3");
  auto second = (*c)->Sync();
  ASSERT_TRUE(second.ok()) << second.status().ToString();
  EXPECT_EQ(second->files, 1u);
  EXPECT_EQ(second->deleted, 0u);
  EXPECT_EQ(Tree(dest), (std::set<std::string>{"step1.txt", "sub/curve.csv"}));
  EXPECT_EQ(Read(dest / "sub" / "curve.csv"), "1,2,3");
  auto bad = CheckpointSync::Create("relative", local.string(), [] { return Result<const S3Client*>(Status::Internal("no S3 here")); },
                                    {.mirror_deletes = false, .what = "OutputDataConfig.S3OutputPath"});
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.status().message().rfind("OutputDataConfig.S3OutputPath ", 0), 0u) << bad.status().message();
}

TEST_F(CheckpointsTest, BadDestinationsAreRefusedWithTheReason) {
  auto none = [] { return Result<const S3Client*>(Status::Internal("no S3 here")); };
  auto rel = CheckpointSync::Create("relative/dir", (dir_ / "l").string(), none);
  ASSERT_FALSE(rel.ok());
  EXPECT_NE(rel.status().message().find("is not an s3://bucket/prefix URI, a file:// URI or an absolute path"),
            std::string::npos)
      << rel.status().message();
  EXPECT_FALSE(CheckpointSync::Create("s3://", (dir_ / "l").string(), none).ok());
  // An s3:// destination without a client reports the client's error, and changes nothing.
  auto s3 = CheckpointSync::Create("s3://bucket/p", (dir_ / "l").string(), none);
  ASSERT_TRUE(s3.ok());
  Write(dir_ / "l" / "a.txt", "x");
  auto pass = (*s3)->Sync();
  ASSERT_FALSE(pass.ok());
  EXPECT_NE(pass.status().message().find("no S3 here"), std::string::npos);
}

}  // namespace
}  // namespace hpo::worker
