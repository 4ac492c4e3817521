// OutboxJournal: reports survive the process that wrote them; a record cut short is dropped.
#include "worker/outbox_journal.h"

#include <gtest/gtest.h>
#include <sys/resource.h>
#include <unistd.h>

#include <csignal>

#include <filesystem>
#include <fstream>

namespace hpo::worker {
namespace {
namespace fs = std::filesystem;

class OutboxJournalTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::path(::testing::TempDir()) / ("hpo-outbox-" + std::to_string(::getpid()) + "-" +
                                             ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(dir_);
  }
  void TearDown() override { fs::remove_all(dir_); }
  fs::path dir_;
};

TEST_F(OutboxJournalTest, ReportsOfEachAttemptComeBackInOrderUntilDropped) {
  {
    auto j = OutboxJournal::Open(dir_.string());
    ASSERT_TRUE(j.ok()) << j.status().ToString();
    ASSERT_TRUE(j->Append("job-001-aaaaaaaa", 1, {std::string("\x00\x05", 2), "started"}).ok());
    ASSERT_TRUE(j->Append("job-001-aaaaaaaa", 1, {std::string("\x00\x06", 2), std::string("points\0with nul", 15)}).ok());
    ASSERT_TRUE(j->Append("job-002-bbbbbbbb", 2, {std::string("\x00\x07", 2), "exited"}).ok());
    ASSERT_TRUE(j->Append("job-003-cccccccc", 1, {std::string("\x00\x05", 2), "gone"}).ok());
    j->Drop("job-003-cccccccc", 1);
  }  // the process ends here, say
  auto j = OutboxJournal::Open(dir_.string());
  ASSERT_TRUE(j.ok());
  auto left = j->Load();
  ASSERT_TRUE(left.ok()) << left.status().ToString();
  ASSERT_EQ(left->size(), 2u);
  std::map<std::string, OutboxJournal::Leftover> by;
  for (auto& l : *left) by[l.trial] = l;
  ASSERT_EQ(by["job-001-aaaaaaaa"].attempt, 1u);
  ASSERT_EQ(by["job-001-aaaaaaaa"].reports.size(), 2u);
  EXPECT_EQ(by["job-001-aaaaaaaa"].reports[1][1], std::string("points\0with nul", 15));
  EXPECT_EQ(by["job-002-bbbbbbbb"].attempt, 2u);
  EXPECT_EQ(by["job-002-bbbbbbbb"].reports[0][1], "exited");
  j->Drop("job-001-aaaaaaaa", 1);
  j->Drop("job-002-bbbbbbbb", 2);
  left = j->Load();
  ASSERT_TRUE(left.ok());
  EXPECT_TRUE(left->empty());
}

TEST_F(OutboxJournalTest, ARecordCutShortByACrashIsDroppedAndTheOnesBeforeItKept) {
  {
    auto j = OutboxJournal::Open(dir_.string());
    ASSERT_TRUE(j.ok());
    ASSERT_TRUE(j->Append("job-001-aaaaaaaa", 1, {"a", "first"}).ok());
    ASSERT_TRUE(j->Append("job-001-aaaaaaaa", 1, {"b", "second"}).ok());
  }
  const fs::path file = dir_ / "job-001-aaaaaaaa.1.log";
  fs::resize_file(file, fs::file_size(file) - 3);
  auto j = OutboxJournal::Open(dir_.string());
  ASSERT_TRUE(j.ok());
  auto left = j->Load();
  ASSERT_TRUE(left.ok());
  ASSERT_EQ(left->size(), 1u);
  ASSERT_EQ((*left)[0].reports.size(), 1u);
  EXPECT_EQ((*left)[0].reports[0][1], "first");
  // Cut off on load: what this process appends for the attempt (a resumed upload's exit) reads back.
  ASSERT_TRUE(j->Append("job-001-aaaaaaaa", 1, {"c", "exited"}).ok());
  left = j->Load();
  ASSERT_TRUE(left.ok());
  ASSERT_EQ((*left)[0].reports.size(), 2u);
  EXPECT_EQ((*left)[0].reports[1][1], "exited");
}

// A write the disk cuts short (here the file size limit, as a full disk would) is cut off again:
// the torn record made every later report of the attempt, its exit among them, unreadable.
TEST_F(OutboxJournalTest, AnAppendTheDiskCutsShortLeavesNoTornRecordBehind) {
  auto j = OutboxJournal::Open(dir_.string());
  ASSERT_TRUE(j.ok());
  ASSERT_TRUE(j->Append("job-001-aaaaaaaa", 1, {"a", "first"}).ok());
  const fs::path file = dir_ / "job-001-aaaaaaaa.1.log";
  const auto size = fs::file_size(file);
  struct rlimit was{};
  ASSERT_EQ(::getrlimit(RLIMIT_FSIZE, &was), 0);
  auto old_handler = std::signal(SIGXFSZ, SIG_IGN);
  struct rlimit small = was;
  small.rlim_cur = size + 8;
  ASSERT_EQ(::setrlimit(RLIMIT_FSIZE, &small), 0);
  const Status torn = j->Append("job-001-aaaaaaaa", 1, {"b", std::string(100, 'x')});
  ASSERT_EQ(::setrlimit(RLIMIT_FSIZE, &was), 0);
  std::signal(SIGXFSZ, old_handler);
  ASSERT_FALSE(torn.ok());
  EXPECT_NE(torn.message().find("cannot append to"), std::string::npos) << torn.message();
  EXPECT_EQ(fs::file_size(file), size) << "the part written is cut off";
  ASSERT_TRUE(j->Append("job-001-aaaaaaaa", 1, {"c", "exited"}).ok());
  auto left = j->Load();
  ASSERT_TRUE(left.ok());
  ASSERT_EQ(left->size(), 1u);
  ASSERT_EQ((*left)[0].reports.size(), 2u);
  EXPECT_EQ((*left)[0].reports[1][1], "exited");
}

TEST_F(OutboxJournalTest, AnUnwritableDirectoryIsAnErrorNamingIt) {
  std::ofstream(dir_.string()) << "a file, not a directory";
  auto j = OutboxJournal::Open((dir_ / "outbox").string());
  ASSERT_FALSE(j.ok());
  EXPECT_NE(j.status().message().find("cannot create the outbox directory"), std::string::npos) << j.status().message();
  fs::remove(dir_);
}

}  // namespace
}  // namespace hpo::worker
