// LockDirectory: one holder at a time, a message naming the holder, released when the lock object
// goes (and, by the kernel, when the process ends however it ends: the child below). And the
// opening of files in trees a training program owns: no link followed, no FIFO waited on.
#include "common/file_util.h"

#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <filesystem>
#include <fstream>
#include <chrono>
#include <thread>
#include <optional>
#include <string>

namespace hpo {
namespace {

namespace fs = std::filesystem;

class DirectoryLockTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() / ("hpo-lock-test-" + std::to_string(::getpid()));
    fs::remove_all(dir_);
    fs::create_directories(dir_);
  }
  void TearDown() override { fs::remove_all(dir_); }
  fs::path dir_;
};

// A worker (root) took any existing --work-dir: one another user made (the default
// /tmp/hpo-worker, made first by anyone), with a `trials` link to a third user's directory, had
// the training jobs' folders made there.
TEST_F(DirectoryLockTest, AnotherUsersOrAWorldWritableDirectoryIsRefusedAsOnesOwn) {
  const fs::path mine = dir_ / "mine";
  fs::create_directories(mine);
  fs::permissions(mine, fs::perms::owner_all, fs::perm_options::replace);
  EXPECT_TRUE(CheckOwnDirectory(mine.string(), "the work directory").ok());
  EXPECT_TRUE(CheckOwnDirectory((dir_ / "not-yet").string(), "the work directory").ok()) << "made private later";
  fs::permissions(mine, fs::perms::all, fs::perm_options::replace);
  Status open = CheckOwnDirectory(mine.string(), "the work directory");
  EXPECT_EQ(open.code(), StatusCode::kFailedPrecondition);
  EXPECT_NE(open.message().find("(mode 0777) is writable by other users"), std::string::npos) << open.message();
  EXPECT_NE(open.message().find("chmod 700 " + mine.string()), std::string::npos) << open.message();
  fs::permissions(mine, fs::perms::all | fs::perms::sticky_bit, fs::perm_options::replace);  // as /tmp
  Status sticky = CheckOwnDirectory(mine.string(), "the work directory");
  EXPECT_EQ(sticky.code(), StatusCode::kFailedPrecondition);
  EXPECT_EQ(sticky.message().find("chmod 700"), std::string::npos)
      << "never advised for a shared one: " << sticky.message();
  EXPECT_NE(sticky.message().find("give a directory of its own"), std::string::npos) << sticky.message();
  fs::permissions(mine, fs::perms::owner_all | fs::perms::group_read | fs::perms::group_exec,
                  fs::perm_options::replace);
  EXPECT_TRUE(CheckOwnDirectory(mine.string(), "the work directory").ok()) << "others may read";
  std::ofstream(dir_ / "file") << "x";
  EXPECT_EQ(CheckOwnDirectory((dir_ / "file").string(), "the work directory").code(), StatusCode::kFailedPrecondition);
  if (::geteuid() == 0) {
    ASSERT_EQ(::chown(mine.c_str(), 65534, 65534), 0);
    Status theirs = CheckOwnDirectory(mine.string(), "the work directory");
    EXPECT_EQ(theirs.code(), StatusCode::kFailedPrecondition);
    EXPECT_NE(theirs.message().find("belongs to user 65534"), std::string::npos) << theirs.message();
    const fs::path link = dir_ / "link";
    fs::create_directory_symlink(mine, link);
    EXPECT_EQ(CheckOwnDirectory(link.string(), "the work directory").code(), StatusCode::kFailedPrecondition)
        << "followed through a link";
  }
}

TEST_F(DirectoryLockTest, ASecondHolderIsRefusedWithTheFirstOnesPidAndName) {
  auto first = LockDirectory(dir_.string(), "hpo run spec.yaml");
  ASSERT_TRUE(first.ok()) << first.status().ToString();
  auto second = LockDirectory(dir_.string(), "hpo run other.yaml");
  ASSERT_FALSE(second.ok());
  EXPECT_EQ(second.status().code(), StatusCode::kFailedPrecondition);
  EXPECT_EQ(second.status().message(),
            dir_.string() + " is in use by pid " + std::to_string(::getpid()) + " (hpo run spec.yaml)");
  // Its lock file deleted (an operator's rm), the note went with it: the directory's own lock
  // still names the holder, by its command line (it said "another process"; a durability pass).
  fs::remove(dir_ / "lock");
  auto fourth = LockDirectory(dir_.string(), "hpo run other.yaml");
  ASSERT_FALSE(fourth.ok());
  EXPECT_EQ(fourth.status().message().rfind(dir_.string() + " is in use by pid " + std::to_string(::getpid()) + " (", 0),
            0u)
      << fourth.status().message();
  EXPECT_NE(fourth.status().message().find("common_file_util_test"), std::string::npos) << fourth.status().message();
  first->reset();
  auto third = LockDirectory(dir_.string(), "hpo run other.yaml");
  EXPECT_TRUE(third.ok()) << "released with its object: " << third.status().ToString();
}

TEST_F(DirectoryLockTest, WhetherADirectoryIsHeldIsToldWithoutTakingItsLock) {
  ASSERT_EQ(DirectoryLocked(dir_.string()), std::optional<bool>(false));
  auto held = LockDirectory(dir_.string(), "hpo run spec.yaml");
  ASSERT_TRUE(held.ok()) << held.status().ToString();
  EXPECT_EQ(DirectoryLocked(dir_.string()), std::optional<bool>(true));
  held->reset();
  EXPECT_EQ(DirectoryLocked(dir_.string()), std::optional<bool>(false));
  // Asking took nothing: the lock is still free to take.
  EXPECT_TRUE(LockDirectory(dir_.string(), "hpo run spec.yaml").ok());
  EXPECT_EQ(DirectoryLocked((dir_ / "missing").string()), std::nullopt);
}

// A restarted worker waits for its killed predecessor's guard, which it recognises by the name
// the guard wrote in the lock file. Written as truncate-then-write, the file read empty for a
// moment whenever a holder took the lock, and a worker reading it then was told "in use by
// another process" and quit (a CurveZMQ integration test's re-keyed worker did). The name is
// never missing once written: a reader racing holders that take and drop the lock sees one.
TEST_F(DirectoryLockTest, TheHoldersNameIsNeverMissingWhileTheLockChangesHands) {
  { auto first = LockDirectory(dir_.string(), "hpo worker-guard"); ASSERT_TRUE(first.ok()); }
  std::atomic<bool> done{false};
  std::thread holders([&] {
    for (int i = 0; i < 20000; ++i) {
      auto l = LockDirectory(dir_.string(), i % 2 ? "hpo worker-guard" : "hpo worker w1");
      ASSERT_TRUE(l.ok()) << l.status().ToString();
    }
    done = true;
  });
  int reads = 0, without_name = 0;
  while (!done.load()) {
    std::ifstream in(dir_ / "lock");
    std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    ++reads;
    without_name += text.find("(hpo worker") == std::string::npos;
  }
  holders.join();
  EXPECT_EQ(without_name, 0) << "of " << reads << " reads, the lock file named no holder";
}

// `rm DIR/lock` under a holder: a second process made a new lock file, locked it, and shared the
// holder's database. The directory's own lock still refuses it.
TEST_F(DirectoryLockTest, DeletingTheLockFileDoesNotLetASecondHolderIn) {
  auto first = LockDirectory(dir_.string(), "hpo coordinator");
  ASSERT_TRUE(first.ok()) << first.status().ToString();
  fs::remove(dir_ / "lock");
  auto second = LockDirectory(dir_.string(), "hpo coordinator --listen tcp://127.0.0.1:7711");
  ASSERT_FALSE(second.ok()) << "a second holder got in once the lock file was deleted";
  EXPECT_EQ(second.status().code(), StatusCode::kFailedPrecondition) << second.status().ToString();
}

// A watched file (the state database) deleted or replaced while held is reported; left alone, it
// is fine.
TEST_F(DirectoryLockTest, AWatchedFileDeletedOrReplacedIsReported) {
  auto lock = LockDirectory(dir_.string(), "hpo coordinator");
  ASSERT_TRUE(lock.ok());
  const fs::path db = dir_ / "hpo.db";
  std::ofstream(db) << "x";
  std::ifstream open_as_sqlite_keeps_it(db);  // its inode stays in use, as the database's does
  ASSERT_TRUE((*lock)->Watch(db.string()).ok());
  EXPECT_TRUE((*lock)->StillThere().ok());
  std::ofstream(db, std::ios::app) << "more";  // written to: the same file
  EXPECT_TRUE((*lock)->StillThere().ok());
  fs::remove(db);
  Status gone = (*lock)->StillThere();
  EXPECT_EQ(gone.code(), StatusCode::kFailedPrecondition);
  EXPECT_NE(gone.message().find(db.string() + " was deleted while in use"), std::string::npos) << gone.message();
  std::ofstream(db) << "a restore copied over it";
  EXPECT_EQ((*lock)->StillThere().code(), StatusCode::kFailedPrecondition);
}

TEST_F(DirectoryLockTest, AHolderThatDiesWithoutCleaningUpLeavesNoStaleLock) {
  pid_t child = ::fork();
  ASSERT_GE(child, 0);
  if (child == 0) {
    auto held = LockDirectory(dir_.string(), "child");
    ::_exit(held.ok() ? 0 : 1);  // no destructor runs
  }
  int status = 0;
  ASSERT_EQ(::waitpid(child, &status, 0), child);
  ASSERT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0);
  auto after = LockDirectory(dir_.string(), "parent");
  EXPECT_TRUE(after.ok()) << after.status().ToString();
}

TEST_F(DirectoryLockTest, AMissingDirectoryIsAnIoErrorNamingThePath) {
  auto missing = LockDirectory((dir_ / "nope").string(), "x");
  ASSERT_FALSE(missing.ok());
  EXPECT_EQ(missing.status().code(), StatusCode::kIoError);
  EXPECT_NE(missing.status().message().find((dir_ / "nope").string()), std::string::npos);
}

// A writer killed between writing its temporary and renaming it left model.tar.gz.tmp-PID-N in the
// job's output (a fault pass found a 15 MB one). Temporaries of dead processes go; a live
// writer's, other names and other prefixes stay.
TEST_F(DirectoryLockTest, StaleTemporariesOfDeadWritersAreRemovedAndLiveOnesKept) {
  const pid_t dead = ::fork();
  if (dead == 0) ::_exit(0);
  ASSERT_GT(dead, 0);
  ::waitpid(dead, nullptr, 0);  // reaped: no such process now
  const std::string mine = std::to_string(::getpid()), gone = std::to_string(dead);
  for (const std::string& name : {"model.tar.gz.tmp-" + gone + "-1", "model.tar.gz.tmp-" + mine + "-2",
                                  std::string("model.tar.gz"), std::string("model.tar.gz.tmp-notapid"),
                                  "output.tar.gz.tmp-" + gone + "-1"}) {
    std::ofstream(dir_ / name) << "x";
  }
  RemoveStaleTemporaries(dir_.string(), "model.tar.gz.tmp-");
  EXPECT_FALSE(fs::exists(dir_ / ("model.tar.gz.tmp-" + gone + "-1")));
  EXPECT_TRUE(fs::exists(dir_ / ("model.tar.gz.tmp-" + mine + "-2"))) << "a live writer's";
  EXPECT_TRUE(fs::exists(dir_ / "model.tar.gz"));
  EXPECT_TRUE(fs::exists(dir_ / "model.tar.gz.tmp-notapid"));
  EXPECT_TRUE(fs::exists(dir_ / ("output.tar.gz.tmp-" + gone + "-1"))) << "another prefix";
  RemoveStaleTemporaries((dir_ / "missing").string(), "x");  // no directory: nothing happens
  // A writer killed but not yet reaped by its parent (a shell that started it in the background)
  // is a zombie: it writes nothing more, and its temporary goes (it stayed for good).
  const pid_t zombie = ::fork();
  if (zombie == 0) ::_exit(0);
  ASSERT_GT(zombie, 0);
  for (int i = 0; i < 200; ++i) {  // until it has ended, unreaped
    std::ifstream stat("/proc/" + std::to_string(zombie) + "/stat");
    std::string text;
    std::getline(stat, text);
    if (text.find(") Z") != std::string::npos) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  const std::string undead = "model.tar.gz.tmp-" + std::to_string(zombie) + "-3";
  std::ofstream(dir_ / undead) << "x";
  RemoveStaleTemporaries(dir_.string(), "model.tar.gz.tmp-");
  EXPECT_FALSE(fs::exists(dir_ / undead));
  ::waitpid(zombie, nullptr, 0);
}

// A file under a program's tree is reached from the tree's root down, no link followed on the
// way: a directory renamed and replaced with a link (to a directory of the host) after the
// worker listed the tree had the worker read the host's file through it.
// A spec's local path through a regular file (output, checkpoints, a channel) is the job's
// mistake: named, as the first existing part of it that is a file. Nothing of it existing, or a
// directory on the way, is fine.
TEST_F(DirectoryLockTest, APathThroughAFileIsNamedAndOneThroughDirectoriesIsFine) {
  std::ofstream(dir_ / "afile") << "x";
  const Status through = NoFileInTheWay((dir_ / "afile" / "a" / "b").string());
  EXPECT_EQ(through.code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(through.message(), (dir_ / "afile").string() + " is a file, where the path " +
                                   (dir_ / "afile" / "a" / "b").string() + " needs a directory");
  EXPECT_TRUE(NoFileInTheWay((dir_ / "new" / "deep").string()).ok());
  EXPECT_EQ(NearestExisting((dir_ / "new" / "deep").string()), dir_.string());
  EXPECT_TRUE(NoFileInTheWay("/nonexistent-root-hpo/x").ok());
}

TEST_F(DirectoryLockTest, AFileBeneathARootIsReachedWithoutFollowingALinkOnTheWay) {
  const fs::path root = dir_ / "tree", host = dir_ / "host";
  fs::create_directories(root / "sub");
  fs::create_directories(host);
  std::ofstream(root / "sub" / "ckpt") << "mine";
  std::ofstream(host / "ckpt") << "root:x:0:0";
  uint64_t size = 0;
  auto mine = OpenRegularFileBeneath(root.string(), "sub/ckpt", &size);
  ASSERT_TRUE(mine.ok()) << mine.status().ToString();
  EXPECT_EQ(size, 4u);
  char buf[4];
  ASSERT_TRUE(ReadExactly(mine->get(), buf, 4, "ckpt").ok());
  EXPECT_EQ(std::string(buf, 4), "mine");
  // The swap: sub becomes a link to the host's directory.
  fs::rename(root / "sub", root / "old");
  fs::create_directory_symlink(host, root / "sub");
  auto swapped = OpenRegularFileBeneath(root.string(), "sub/ckpt", &size);
  EXPECT_EQ(swapped.status().code(), StatusCode::kInvalidArgument) << swapped.status().ToString();
  EXPECT_NE(swapped.status().message().find("is a link or not a directory"), std::string::npos)
      << swapped.status().message();
  EXPECT_EQ(OpenRegularFileBeneath(root.string(), "old/../sub/ckpt").status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(OpenRegularFileBeneath(root.string(), "old/gone").status().code(), StatusCode::kNotFound);
  // The root itself a link: not followed either.
  fs::create_directory_symlink(host, dir_ / "linked-root");
  EXPECT_EQ(OpenRegularFileBeneath((dir_ / "linked-root").string(), "ckpt").status().code(),
            StatusCode::kInvalidArgument);
  EXPECT_TRUE(OpenRegularFileBeneath(root.string(), "old/ckpt").ok());
}

}  // namespace
}  // namespace hpo
