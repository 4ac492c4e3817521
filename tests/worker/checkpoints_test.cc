// CheckpointSync against a local destination (the s3:// form runs in s3_radosgw_test.cc).
#include "worker/checkpoints.h"

#include <gtest/gtest.h>
#include <fcntl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <csignal>
#include <ctime>
#include <thread>
#include <vector>

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

// Files still being written (worker/checkpoints.h). The trainer rewrote its checkpoint in place
// (torch.save to the same name every epoch); a pass during the write put a torn copy over the
// whole one at the destination, and a worker lost before the next pass left the next attempt
// only that torn copy.
// (A file:// destination directory `dest`.)
std::unique_ptr<CheckpointSync> MakeSettling(const fs::path& dest, const fs::path& local, int64_t settle_ms,
                                             bool probe_writers = true, int64_t max_hold_ms = 120000) {
  CheckpointSyncOptions o;
  o.settle_ns = settle_ms * 1'000'000;
  o.probe_writers = probe_writers;
  o.max_hold_ns = max_hold_ms * 1'000'000;
  auto c = CheckpointSync::Create("file://" + dest.string(), local.string(),
                                  [] { return Result<const S3Client*>(Status::Internal("no S3 here")); }, o);
  EXPECT_TRUE(c.ok()) << c.status().ToString();
  return c.ok() ? std::move(c).value() : nullptr;
}

// Sets a file's mtime `ago_ms` into the past (a write that long ago).
void Age(const fs::path& p, int64_t ago_ms) {
  struct timespec now {};
  ::clock_gettime(CLOCK_REALTIME, &now);
  const int64_t ns = int64_t{now.tv_sec} * 1'000'000'000 + now.tv_nsec - ago_ms * 1'000'000;
  const struct timespec t{static_cast<time_t>(ns / 1'000'000'000), static_cast<long>(ns % 1'000'000'000)};
  const struct timespec times[2] = {t, t};
  ASSERT_EQ(::utimensat(AT_FDCWD, p.c_str(), times, 0), 0) << p;
}

// A save under way: the file truncated and partly written through a descriptor kept open.
struct OpenSave {
  OpenSave(const fs::path& p, const std::string& part) : fd(::open(p.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644)) {
    EXPECT_GE(fd, 0);
    Add(part);
  }
  void Add(const std::string& more) { EXPECT_EQ(::write(fd, more.data(), more.size()), static_cast<ssize_t>(more.size())); }
  ~OpenSave() { ::close(fd); }
  int fd;
};

TEST_F(CheckpointsTest, WhileTheProgramRunsAFileOpenForWritingWaitsAndTheDestinationKeepsTheWholeCopy) {
  const fs::path dest = dir_ / "bucket" / "job-001";
  const fs::path local = dir_ / "worker1" / "checkpoints";
  auto sync = MakeSettling(dest, local, 200);
  ASSERT_TRUE(sync);
  Write(local / "model.pt", "epoch 1, whole");
  auto pass = sync->Sync(SyncPass::kRunning);
  ASSERT_TRUE(pass.ok()) << pass.status().ToString();
  EXPECT_EQ(pass->files, 1u) << "closed: whole, however new";
  EXPECT_EQ(pass->held(), 0u);
  {
    OpenSave save(local / "model.pt", "epoch 2, h");  // the next epoch's save, under way
    for (int i = 0; i < 2; ++i) {
      pass = sync->Sync(SyncPass::kRunning);
      ASSERT_TRUE(pass.ok());
      EXPECT_EQ(pass->files, 0u);
      EXPECT_EQ(pass->held(), 1u);
      EXPECT_EQ(pass->held_paths, std::vector<std::string>{"model.pt"});
      EXPECT_EQ(Read(dest / "model.pt"), "epoch 1, whole");
    }
    // Settled by its mtime, still open: it waits (a save that pauses between tensors).
    Age(local / "model.pt", 5000);
    EXPECT_EQ(sync->Sync(SyncPass::kRunning)->held(), 1u);
    save.Add("alf, whole");
  }
  pass = sync->Sync(SyncPass::kRunning);
  ASSERT_TRUE(pass.ok());
  EXPECT_EQ(pass->files, 1u);
  EXPECT_EQ(pass->held(), 0u);
  EXPECT_EQ(Read(dest / "model.pt"), "epoch 2, half, whole");
  // The pass after the program ended by itself sends what is there.
  OpenSave left_open(local / "model.pt", "epoch 3");
  pass = sync->Sync(SyncPass::kEnded);
  ASSERT_TRUE(pass.ok());
  EXPECT_EQ(pass->files, 1u);
  EXPECT_EQ(Read(dest / "model.pt"), "epoch 3");
}

// Where the kernel cannot tell whether a file is open for writing (NFS), a file goes once
// unchanged for the settle time and seen so by two passes.
TEST_F(CheckpointsTest, WhereTheKernelCannotTellAFileGoesOnceUnchangedOverTwoPasses) {
  const fs::path dest = dir_ / "bucket" / "job-001";
  const fs::path local = dir_ / "worker1" / "checkpoints";
  auto sync = MakeSettling(dest, local, 2000, /*probe_writers=*/false);
  ASSERT_TRUE(sync);
  Write(local / "model.pt", "epoch 1, whole");
  Age(local / "model.pt", 5000);
  EXPECT_EQ(sync->Sync(SyncPass::kRunning)->held(), 1u) << "settled, but not yet seen so by an earlier pass";
  auto pass = sync->Sync(SyncPass::kRunning);
  ASSERT_TRUE(pass.ok());
  EXPECT_EQ(pass->files, 1u);
  Write(local / "model.pt", "epoch 2, h");  // just written
  for (int i = 0; i < 2; ++i) EXPECT_EQ(sync->Sync(SyncPass::kRunning)->held(), 1u);
  EXPECT_EQ(Read(dest / "model.pt"), "epoch 1, whole");
  Write(local / "model.pt", "epoch 2, whole");
  Age(local / "model.pt", 2500);
  EXPECT_EQ(sync->Sync(SyncPass::kRunning)->held(), 1u);
  pass = sync->Sync(SyncPass::kRunning);
  ASSERT_TRUE(pass.ok());
  EXPECT_EQ(pass->files, 1u);
  EXPECT_EQ(Read(dest / "model.pt"), "epoch 2, whole");
  // A truncation caught between its new size and its new mtime (the kernel sets them in that
  // order): an empty file with the settled mtime of the whole one the last pass saw.
  struct stat whole {};
  ASSERT_EQ(::stat((local / "model.pt").c_str(), &whole), 0);
  ASSERT_EQ(::truncate((local / "model.pt").c_str(), 0), 0);
  const struct timespec stale[2] = {whole.st_atim, whole.st_mtim};
  ASSERT_EQ(::utimensat(AT_FDCWD, (local / "model.pt").c_str(), stale, 0), 0);
  EXPECT_EQ(sync->Sync(SyncPass::kRunning)->held(), 1u);
  EXPECT_EQ(Read(dest / "model.pt"), "epoch 2, whole");
}

// A copy that fails because the file changed under it (the store finds it truncated while it
// reads it) is a file still being written: held for the next pass, not a failed pass (which the
// worker logs as an upload error).
TEST_F(CheckpointsTest, ACopyThatATruncationRacedIsHeldNotAnError) {
  const fs::path dest = dir_ / "bucket" / "job-001";
  const fs::path local = dir_ / "worker1" / "checkpoints";
  auto sync = MakeSettling(dest, local, 200);
  ASSERT_TRUE(sync);
  Write(local / "model.pt", std::string(1 << 20, 'm'));
  {
    CommitGate rewrite_started([&] {  // the trainer's next save truncates it as the copy ends
      EXPECT_EQ(::truncate((local / "model.pt").c_str(), 0), 0);
      return Status::Unavailable("model.pt changed while it was copied");
    });
    auto pass = sync->Sync(SyncPass::kRunning);
    ASSERT_TRUE(pass.ok()) << pass.status().ToString();
    EXPECT_EQ(pass->held(), 1u);
    EXPECT_EQ(pass->files, 0u);
  }
  EXPECT_FALSE(fs::exists(dest / "model.pt"));
  Write(local / "model.pt", "saved again");
  auto pass = sync->Sync(SyncPass::kRunning);
  ASSERT_TRUE(pass.ok());
  EXPECT_EQ(pass->files, 1u);
  EXPECT_EQ(Read(dest / "model.pt"), "saved again");
}

TEST_F(CheckpointsTest, DeletesWaitWhileANewCheckpointIsBeingWritten) {
  const fs::path dest = dir_ / "bucket" / "job-001";
  const fs::path local = dir_ / "worker1" / "checkpoints";
  auto sync = MakeSettling(dest, local, 200);
  ASSERT_TRUE(sync);
  Write(local / "ckpt-5.pt", "five");
  ASSERT_EQ(sync->Sync(SyncPass::kRunning)->files, 1u);
  // The trainer removes the old checkpoint, then writes the new one.
  fs::remove(local / "ckpt-5.pt");
  {
    OpenSave save(local / "ckpt-6.pt", "si");
    auto pass = sync->Sync(SyncPass::kRunning);
    ASSERT_TRUE(pass.ok());
    EXPECT_EQ(pass->deleted, 0u);
    EXPECT_EQ(pass->held(), 1u);
    EXPECT_EQ(Tree(dest), (std::set<std::string>{"ckpt-5.pt"})) << "a worker lost now leaves the next attempt ckpt-5";
    save.Add("x");
  }
  auto pass = sync->Sync(SyncPass::kRunning);
  ASSERT_TRUE(pass.ok());
  EXPECT_EQ(pass->files, 1u);
  EXPECT_EQ(pass->deleted, 1u);
  EXPECT_EQ(Tree(dest), (std::set<std::string>{"ckpt-6.pt"}));
  EXPECT_EQ(Read(dest / "ckpt-6.pt"), "six");
}

TEST_F(CheckpointsTest, AFileKeptOpenForWritingGoesOnceHeldBackLongEnoughBetweenTwoWrites) {
  const fs::path dest = dir_ / "bucket" / "job-001";
  const fs::path local = dir_ / "worker1" / "checkpoints";
  auto sync = MakeSettling(dest, local, 200, true, /*max_hold_ms=*/30);
  ASSERT_TRUE(sync);
  Write(local / "old.pt", "old");
  ASSERT_EQ(sync->Sync(SyncPass::kRunning)->files, 1u);
  fs::remove(local / "old.pt");
  OpenSave log(local / "train.log", "line 1\n");  // appended all the time
  auto pass = sync->Sync(SyncPass::kRunning);
  ASSERT_TRUE(pass.ok());
  EXPECT_EQ(pass->held(), 1u);
  EXPECT_EQ(pass->deleted, 0u);
  ::usleep(40000);
  log.Add("line 2\n");
  // Held long enough, and just written: the pass waits for 50 ms without a write, then sends it.
  pass = sync->Sync(SyncPass::kRunning);
  ASSERT_TRUE(pass.ok());
  EXPECT_EQ(pass->held(), 0u);
  EXPECT_EQ(pass->files, 1u);
  EXPECT_EQ(pass->deleted, 1u) << "the deletes, held as long, go";
  EXPECT_EQ(Read(dest / "train.log"), "line 1\nline 2\n");
  EXPECT_EQ(Tree(dest), (std::set<std::string>{"train.log"}));
  // Changed again: held back from now, for as long again.
  log.Add("line 3\n");
  pass = sync->Sync(SyncPass::kRunning);
  ASSERT_TRUE(pass.ok());
  EXPECT_EQ(pass->held(), 1u);
}

// A trainer that deletes its old checkpoint, then writes the next epoch's for longer than a pass
// period: each new file is held back, and so is the delete, for as long as that file has been
// held. One clock for all held files ran out after 10 s while each new file was brand new, the
// deletes went, and the destination was left empty (a spot pass: a kill then lost 18 epochs).
TEST_F(CheckpointsTest, DeletesWaitWhileEachEpochsNewFileIsHeldOnItsOwnClock) {
  const fs::path dest = dir_ / "bucket" / "job-001";
  const fs::path local = dir_ / "worker1" / "checkpoints";
  auto sync = MakeSettling(dest, local, 200, true, /*max_hold_ms=*/30);
  ASSERT_TRUE(sync);
  Write(local / "ckpt-5.pt", "five");
  ASSERT_EQ(sync->Sync(SyncPass::kRunning)->files, 1u);
  fs::remove(local / "ckpt-5.pt");
  {
    OpenSave save(local / "ckpt-6.pt", "si");
    auto p = sync->Sync(SyncPass::kRunning);
    ASSERT_TRUE(p.ok());
    EXPECT_EQ(p->held(), 1u);
    EXPECT_EQ(p->deleted, 0u);
    save.Add("x");
  }
  fs::remove(local / "ckpt-6.pt");  // the next epoch, before a pass saw ckpt-6 whole
  ::usleep(40000);                  // past max_hold since the first held file
  OpenSave save7(local / "ckpt-7.pt", "sev");
  auto p = sync->Sync(SyncPass::kRunning);
  ASSERT_TRUE(p.ok());
  EXPECT_EQ(p->held(), 1u);
  EXPECT_EQ(p->deleted, 0u) << "ckpt-7 was just opened, yet the deletes went";
  EXPECT_EQ(Tree(dest), (std::set<std::string>{"ckpt-5.pt"}));
}

// A file rewritten all the time (truncated, written in ten pieces 60 ms apart, then 150 ms
// closed), each pass falling inside a save: once held back past max_hold, a pass waits for the
// moment it is closed and sends it whole. It was held at every such pass, for good (a gang-faults
// pass: 18 s with no blob); waiting for 50 ms without a write instead sent half of it (a
// regression pass: the pieces are more than 50 ms apart).
TEST_F(CheckpointsTest, AFileRewrittenInStepWithThePassesStillGoesWhole) {
  const fs::path dest = dir_ / "bucket" / "job-001";
  const fs::path local = dir_ / "worker1" / "checkpoints";
  auto sync = MakeSettling(dest, local, 200, true, /*max_hold_ms=*/30);
  ASSERT_TRUE(sync);
  fs::create_directories(local);
  std::atomic<int> cycle{0};
  std::atomic<bool> stop{false};
  std::thread trainer([&] {
    while (!stop) {
      {
        OpenSave save(local / "model.pt", "");
        ++cycle;  // a save begins: truncated, then 10 writes 10 ms apart
        for (int i = 0; i < 10; ++i) {
          save.Add(std::string(4096, static_cast<char>('a' + i)));
          ::usleep(60000);
        }
      }
      ::usleep(150000);
    }
  });
  size_t sent = 0;
  for (int c = 1; c <= 6; ++c) {  // each pass 20 ms into a save
    while (cycle < c) ::usleep(1000);
    ::usleep(20000);
    auto p = sync->Sync(SyncPass::kRunning);
    ASSERT_TRUE(p.ok()) << p.status().ToString();
    sent += p->files;
    if (fs::exists(dest / "model.pt")) EXPECT_EQ(fs::file_size(dest / "model.pt"), 40960u) << "sent torn, pass " << c;
  }
  stop = true;
  trainer.join();
  EXPECT_GE(sent, 1u) << "held past max_hold, yet never sent";
  ASSERT_TRUE(fs::exists(dest / "model.pt"));
  EXPECT_EQ(fs::file_size(dest / "model.pt"), 40960u) << "sent torn";
}

TEST_F(CheckpointsTest, AfterASignalEndedTheProgramWhatItWasWritingStaysAsTheDestinationHasIt) {
  const fs::path dest = dir_ / "bucket" / "job-001";
  const fs::path local = dir_ / "worker1" / "checkpoints";
  auto sync = MakeSettling(dest, local, 2000);
  ASSERT_TRUE(sync);
  Write(local / "model.pt", "epoch 1, whole");
  Write(local / "ckpt-1.pt", "one");
  ASSERT_EQ(sync->Sync(SyncPass::kRunning)->files, 2u);
  // SIGKILL at the end of the grace period, in the middle of rewriting model.pt; a metrics file
  // it finished 8 s before, and a removed ckpt-1 replaced by a half-written ckpt-2.
  Write(local / "model.pt", "epoch 2, h");
  Write(local / "metrics.json", "{}");
  Age(local / "metrics.json", 8000);
  fs::remove(local / "ckpt-1.pt");
  Write(local / "ckpt-2.pt", "tw");
  struct timespec killed {};
  ::clock_gettime(CLOCK_REALTIME, &killed);
  const int64_t ended_ns = int64_t{killed.tv_sec} * 1'000'000'000 + killed.tv_nsec;
  ::usleep(20000);  // the last pass starts a little after the end
  auto pass = sync->Sync(SyncPass::kKilled, ended_ns);
  ASSERT_TRUE(pass.ok()) << pass.status().ToString();
  EXPECT_EQ(pass->files, 1u);
  EXPECT_EQ(pass->held(), 2u);
  EXPECT_EQ(pass->deleted, 0u);
  // The worker's note says which held file has a whole copy to keep: ckpt-2 was never uploaded
  // ("keeps its last whole copies" was said of it too).
  EXPECT_TRUE(sync->AtDestination("model.pt"));
  EXPECT_FALSE(sync->AtDestination("ckpt-2.pt"));
  EXPECT_EQ(Read(dest / "model.pt"), "epoch 1, whole");
  EXPECT_EQ(Tree(dest), (std::set<std::string>{"ckpt-1.pt", "metrics.json", "model.pt"}));
  // A next attempt restores the whole copies.
  const fs::path next = dir_ / "worker2" / "checkpoints";
  auto again = Make("file://" + dest.string(), next);
  ASSERT_TRUE(again);
  ASSERT_TRUE(again->Restore().ok());
  EXPECT_EQ(Read(next / "model.pt"), "epoch 1, whole");
  EXPECT_EQ(Read(next / "ckpt-1.pt"), "one");
  // Ended long after the last write (a program killed while computing): everything goes.
  auto later = MakeSettling(dir_ / "bucket" / "job-002", local, 2000);
  ASSERT_TRUE(later);
  pass = later->Sync(SyncPass::kKilled, ended_ns + 5'000'000'000);
  ASSERT_TRUE(pass.ok());
  EXPECT_EQ(pass->held(), 0u);
  EXPECT_EQ(pass->files, 3u);
}

// A save stalled in a write (dirty-page throttling, a slow volume) has an mtime older than the
// settle time when a signal ends the program; that the last pass found it open for writing says
// it was cut off.
TEST_F(CheckpointsTest, AfterASignalAFileTheLastPassFoundOpenForWritingStaysAsTheDestinationHasIt) {
  const fs::path dest = dir_ / "bucket" / "job-001";
  const fs::path local = dir_ / "worker1" / "checkpoints";
  auto sync = MakeSettling(dest, local, 200);
  ASSERT_TRUE(sync);
  Write(local / "model.pt", "epoch 1, whole");
  Write(local / "notes.txt", "epoch 1");
  ASSERT_EQ(sync->Sync(SyncPass::kRunning)->files, 2u);
  {
    OpenSave save(local / "model.pt", "epoch 2, h");
    EXPECT_EQ(sync->Sync(SyncPass::kRunning)->held(), 1u);
    Age(local / "model.pt", 5000);  // then nothing more was written before the end
  }
  Write(local / "notes.txt", "epoch 2");
  Age(local / "notes.txt", 5000);  // closed, written long before the end: whole
  auto pass = sync->Sync(SyncPass::kKilled);
  ASSERT_TRUE(pass.ok());
  EXPECT_EQ(pass->held_paths, std::vector<std::string>{"model.pt"});
  EXPECT_EQ(pass->files, 1u);
  EXPECT_EQ(Read(dest / "model.pt"), "epoch 1, whole");
  EXPECT_EQ(Read(dest / "notes.txt"), "epoch 2");
}

// A save that began after the last periodic pass and that the stop signal cut in half: no pass
// saw it open, and its mtime was older than the settle time, so the half went up over the whole
// copy (a spot pass: 3 runs of 3). The look at the stop (NoteWriters) holds it back.
TEST_F(CheckpointsTest, AFileOpenForWritingWhenTheProgramIsToldToStopIsHeldAfterTheSignal) {
  const fs::path dest = dir_ / "bucket" / "job-001";
  const fs::path local = dir_ / "worker1" / "checkpoints";
  auto sync = MakeSettling(dest, local, 200);
  ASSERT_TRUE(sync);
  Write(local / "model.pt", "epoch 1, whole");
  ASSERT_EQ(sync->Sync(SyncPass::kRunning)->files, 1u);
  {
    OpenSave save(local / "model.pt", "epoch 2, h");  // after that pass; the next has not come
    Age(local / "model.pt", 300);
    sync->NoteWriters();  // the stop signal goes now; the program dies with the file half written
  }
  auto pass = sync->Sync(SyncPass::kKilled);
  ASSERT_TRUE(pass.ok());
  EXPECT_EQ(pass->held_paths, std::vector<std::string>{"model.pt"});
  EXPECT_EQ(Read(dest / "model.pt"), "epoch 1, whole");
  // Noted for that pass only: a later program's pass after its own end sends the file.
  EXPECT_EQ(sync->Sync(SyncPass::kEnded)->files, 1u);
}

// An attempt killed mid-write whose last upload also failed left its directory as the newest
// copy, torn files in it; the next attempt here adopts the directory. It takes the destination's
// whole copies of the files that pass held back (a held file the destination never had goes),
// uploads the rest, and never deletes a held file's copy there. A held path under a link the
// program left is not followed.
TEST_F(CheckpointsTest, AdoptingADirectoryTakesTheDestinationsWholeCopiesOfTheFilesHeldAsTorn) {
  const fs::path dest = dir_ / "bucket" / "job-001";
  const fs::path local = dir_ / "worker1" / "checkpoints";
  Write(dest / "model.pt", "epoch 1, whole");
  Write(dest / "notes.txt", "old notes");
  Write(dest / "stale.txt", "deleted by the program");
  Write(local / "model.pt", "epoch 2, h");
  Write(local / "notes.txt", "new notes");
  Write(local / "half.pt", "ha");
  Write(dir_ / "outside" / "x", "not the program's");
  fs::create_directory_symlink(dir_ / "outside", local / "sub");
  auto sync = MakeSettling(dest, local, 200);
  ASSERT_TRUE(sync);
  auto up = sync->Adopt({"model.pt", "half.pt", "sub/x", "../escape"});
  ASSERT_TRUE(up.ok()) << up.status().ToString();
  EXPECT_EQ(Read(local / "model.pt"), "epoch 1, whole") << "the whole copy, for the attempt to resume from";
  EXPECT_FALSE(fs::exists(local / "half.pt"));
  EXPECT_EQ(Read(dir_ / "outside" / "x"), "not the program's");
  EXPECT_EQ(Read(dest / "model.pt"), "epoch 1, whole");
  EXPECT_EQ(Read(dest / "notes.txt"), "new notes");
  EXPECT_EQ(Tree(dest), (std::set<std::string>{"model.pt", "notes.txt"}));
}

// The worker says at its start when its work directory's filesystem cannot tell which files are
// open for writing (the passes then fall back to the settle time); here it can, and the probe
// leaves nothing behind. A directory it cannot write to is said so.
TEST_F(CheckpointsTest, TheWriterProbeSaysWhenAFilesystemCannotTellWhoWrites) {
  EXPECT_EQ(WriterProbeProblem(dir_.string()), "");
  EXPECT_TRUE(fs::is_empty(dir_));
  const std::string missing = WriterProbeProblem((dir_ / "missing").string());
  EXPECT_NE(missing.find("cannot probe " + (dir_ / "missing").string() + " for file leases"), std::string::npos) << missing;
}

// A trainer rewriting a large checkpoint in place, in chunks through one descriptor, pausing
// between chunks, while the passes run every 20 ms: whatever the destination holds at any moment
// is a whole version, whether the kernel tells which files are open for writing or not.
TEST_F(CheckpointsTest, PassesDuringInPlaceRewritesNeverPutATornCopyAtTheDestination) {
  for (const bool probe : {true, false}) {
    SCOPED_TRACE(probe ? "open-for-writing probe" : "settle time and two looks");
    const fs::path dest = dir_ / (probe ? "bucket-probe" : "bucket-settle") / "job-001";
    const fs::path local = dir_ / (probe ? "w-probe" : "w-settle") / "checkpoints";
    auto sync = MakeSettling(dest, local, 150, probe);
    ASSERT_TRUE(sync);
    constexpr size_t kChunk = 4096, kChunks = 64;
    auto version = [&](int v) { return std::string(kChunk * kChunks, static_cast<char>('a' + v)); };
    std::atomic<bool> done{false};
    std::thread writer([&] {
      fs::create_directories(local);
      for (int v = 0; v < 6; ++v) {
        const std::string data = version(v);
        {
          OpenSave save(local / "model.pt", "");
          for (size_t c = 0; c < kChunks; ++c) {
            save.Add(data.substr(c * kChunk, kChunk));
            ::usleep(c == kChunks / 2 ? 60000 : 1000);  // a save takes about 130 ms, with one pause
          }
        }
        ::usleep(v % 2 ? 400000 : 50000);  // an epoch's training: sometimes long enough to settle
      }
      done = true;
    });
    int whole_seen = 0, passes = 0;
    while (!done) {
      auto pass = sync->Sync(SyncPass::kRunning);
      if (!pass.ok()) {  // a copy that raced a truncation is a file still being written, not an error
        done = true;
        writer.join();
        FAIL() << pass.status().ToString();
      }
      ++passes;
      if (fs::exists(dest / "model.pt")) {
        const std::string up = Read(dest / "model.pt");
        if (up.size() != kChunk * kChunks || up.find_first_not_of(up[0]) != std::string::npos) {
          done = true;
          writer.join();
          FAIL() << "a torn copy went up after " << passes << " passes (" << up.size() << " bytes)";
        }
        ++whole_seen;
      }
      ::usleep(20000);
    }
    writer.join();
    EXPECT_GT(whole_seen, 0);
    auto last = sync->Sync(SyncPass::kEnded);
    ASSERT_TRUE(last.ok());
    EXPECT_EQ(Read(dest / "model.pt"), version(5));
  }
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

// A spot pass: Lightning's save_last="link" (last.ckpt -> a file beside it) was skipped, and the
// resumed attempt had no last.ckpt. A link to a file inside the directory by a relative path goes
// up as that file (as `aws s3 sync` sends it) and comes back as a copy; it follows the file's
// changes and its own removal. A link that leaves the directory (absolute, or by "..") is not
// read, and is named; nor is a link through which a directory above the file is a link.
TEST_F(CheckpointsTest, ALinkToAFileInsideTheDirectoryGoesUpAsThatFileAndNoOtherLinkIsRead) {
  const fs::path dest = dir_ / "bucket" / "job-001";
  const fs::path local = dir_ / "worker1" / "checkpoints";
  auto sync = Make("file://" + dest.string(), local);
  ASSERT_TRUE(sync);
  Write(local / "epochs" / "epoch=3.ckpt", "weights 3");
  fs::create_symlink("epochs/epoch=3.ckpt", local / "last.ckpt");
  // epochs/sub-last names epochs/../epoch=3.ckpt, which is missing.
  fs::create_symlink("../epoch=3.ckpt", local / "epochs" / "sub-last");
  Write(dir_ / "secret", "not the program's");
  fs::create_symlink(dir_ / "secret", local / "abs");
  fs::create_symlink("../../secret", local / "up");
  fs::create_directory_symlink(dir_, local / "root");
  fs::create_symlink("root/secret", local / "via-link");
  auto pass = sync->Sync();
  ASSERT_TRUE(pass.ok()) << pass.status().ToString();
  EXPECT_EQ(Tree(dest), (std::set<std::string>{"epochs/epoch=3.ckpt", "last.ckpt"}));
  EXPECT_EQ(Read(dest / "last.ckpt"), "weights 3");
  EXPECT_FALSE(fs::is_symlink(dest / "last.ckpt"));
  fs::create_directory_symlink("epochs", local / "dirlink");
  fs::create_symlink("epochs/none.ckpt", local / "dangling");
  ASSERT_TRUE(sync->Sync().ok());
  std::vector<std::string> skipped = sync->SkippedLinks();
  EXPECT_EQ(skipped, (std::vector<std::string>{"abs -> " + (dir_ / "secret").string() + " (absolute)",
                                               "dangling -> epochs/none.ckpt (to nothing)",
                                               "dirlink -> epochs (to a directory)",
                                               "epochs/sub-last -> ../epoch=3.ckpt (to nothing)",
                                               "root -> " + dir_.string() + " (absolute)",
                                               "up -> ../../secret (outside the directory)",
                                               "via-link -> root/secret (through a link)"}));
  // A link pointed elsewhere each epoch is named once, as it is now (a regression pass: seven).
  fs::remove(local / "abs");
  fs::create_symlink(dir_ / "secret2", local / "abs");
  ASSERT_TRUE(sync->Sync().ok());
  skipped = sync->SkippedLinks();
  EXPECT_EQ(skipped.size(), 7u);
  EXPECT_EQ(skipped[0], "abs -> " + (dir_ / "secret2").string() + " (absolute)");
  // The file it names changes: the link's copy follows; the link goes: so does its copy.
  Write(local / "epochs" / "epoch=4.ckpt", "weights 4");
  fs::remove(local / "last.ckpt");
  fs::create_symlink("epochs/epoch=4.ckpt", local / "last.ckpt");
  ASSERT_TRUE(sync->Sync().ok());
  EXPECT_EQ(Read(dest / "last.ckpt"), "weights 4");
  fs::remove(local / "last.ckpt");
  ASSERT_TRUE(sync->Sync().ok());
  EXPECT_FALSE(fs::exists(dest / "last.ckpt"));
  // A restore brings the link's file back as a copy.
  fs::create_symlink("epochs/epoch=4.ckpt", local / "last.ckpt");
  ASSERT_TRUE(sync->Sync().ok());
  auto other = Make("file://" + dest.string(), dir_ / "worker2" / "checkpoints");
  ASSERT_TRUE(other);
  ASSERT_TRUE(other->Restore().ok());
  EXPECT_EQ(Read(dir_ / "worker2" / "checkpoints" / "last.ckpt"), "weights 4");
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
