// Durability off the core's lock (coordinator/job_store.h Durability::kDeferred and
// coordinator/dispatcher.h DispatcherOptions::deferred_store): a deferred store's commits wait
// for no disk; MakeDurable syncs once for every commit before it, and a failed sync is final.
// Through the dispatcher, nothing is acknowledged to a worker or answered to a writing API call
// before the sync, while readers are served during it.

#include <sqlite3.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <functional>
#include <future>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>
#include <zmq.hpp>
#include <zmq_addon.hpp>

#include "common/file_util.h"
#include "coordinator/core.h"
#include "coordinator/dispatcher.h"
#include "coordinator/job_store.h"
#include "proto/messages.h"
#include "tests/coordinator/core_fixture.h"
#include "tests/coordinator/fake_worker.h"

namespace hpo::coordinator {
namespace {

using namespace std::chrono_literals;

// A database path of its own in the test's temporary directory, removed (with its log) after.
class TempDb {
 public:
  explicit TempDb(const std::string& name)
      : path_(::testing::TempDir() + "hpo-durable-" + name + "-" + std::to_string(::getpid()) + ".db") {
    Remove();
  }
  ~TempDb() { Remove(); }
  const std::string& path() const { return path_; }

 private:
  void Remove() {
    for (const char* suffix : {"", "-wal", "-shm"}) std::remove((path_ + suffix).c_str());
  }
  std::string path_;
};

// A trial of `job` with 250 log lines of 400 bytes (100 KB), in one transaction.
Status PutNoisyTrial(SqliteJobStore& store, const std::string& job, const std::string& name) {
  TrialRow t;
  t.name = name;
  t.tuning_job = job;
  std::vector<LogRow> lines;
  for (uint64_t l = 0; l < 250; ++l) lines.push_back({0, t.name, 1, l, std::string(400, 'x')});
  return InTransaction(&store, [&] {
    HPO_RETURN_IF_ERROR(store.PutTrial(t));
    return store.AppendLogs(lines);
  });
}

JobRow Job(const std::string& name) {
  JobRow r;
  r.name = name;
  r.spec_json = "{}";
  r.spelling = "api";
  r.metadata_json = "{}";
  r.status = "InProgress";
  return r;
}

// A disk whose flush waits until Open() (the sync a test holds), counting the flushes.
class Gate {
 public:
  std::function<Status()> Sync() {
    return [this]() -> Status {
      std::unique_lock<std::mutex> lock(mu_);
      ++entered_;
      cv_.notify_all();
      cv_.wait_for(lock, 20s, [&] { return open_; });
      return Status::Ok();
    };
  }
  bool WaitEntered(int n) {
    std::unique_lock<std::mutex> lock(mu_);
    return cv_.wait_for(lock, 10s, [&] { return entered_ >= n; });
  }
  void Close() {
    std::lock_guard<std::mutex> lock(mu_);
    open_ = false;
  }
  void Open() {
    {
      std::lock_guard<std::mutex> lock(mu_);
      open_ = true;
    }
    cv_.notify_all();
  }

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  int entered_ = 0;
  bool open_ = false;
};

TEST(DeferredStore, MakeDurableSyncsOnceForWhatWasWrittenAndNotAgain) {
  TempDb db("once");
  auto s = SqliteJobStore::Open(db.path(), true, Durability::kDeferred);
  ASSERT_TRUE(s.ok()) << s.status().ToString();
  SqliteJobStore& store = **s;
  const uint64_t m0 = store.WriteMark();
  ASSERT_TRUE(store.PutJob(Job("a")).ok());
  const uint64_t m1 = store.WriteMark();
  EXPECT_GT(m1, m0) << "a write moves the mark";
  EXPECT_EQ(store.syncs(), 0u) << "a deferred commit does not sync";
  ASSERT_TRUE(store.MakeDurable(m1).ok());  // the real fdatasync of the log
  EXPECT_EQ(store.syncs(), 1u);
  ASSERT_TRUE(store.MakeDurable(m1).ok());
  ASSERT_TRUE(store.MakeDurable(m0).ok());
  EXPECT_EQ(store.syncs(), 1u) << "what is on disk is not synced again";
  EXPECT_EQ(store.WriteMark(), m1) << "reading moves nothing";
  ASSERT_TRUE(store.LoadJobs().ok());
  EXPECT_EQ(store.WriteMark(), m1);
  ASSERT_TRUE(InTransaction(&store, [&] { return store.PutJob(Job("b")); }).ok());
  const uint64_t m2 = store.WriteMark();
  EXPECT_GT(m2, m1);
  ASSERT_TRUE(store.MakeDurable(m2).ok());
  EXPECT_EQ(store.syncs(), 2u);
}

TEST(DeferredStore, WithoutDeferringOrWithoutAFileThereIsNothingToWaitFor) {
  TempDb db("at-commit");
  auto at_commit = SqliteJobStore::Open(db.path());
  ASSERT_TRUE(at_commit.ok());
  ASSERT_TRUE((*at_commit)->PutJob(Job("a")).ok());
  EXPECT_EQ((*at_commit)->WriteMark(), 0u);
  EXPECT_TRUE((*at_commit)->MakeDurable(5).ok());
  EXPECT_EQ((*at_commit)->syncs(), 0u);
  auto memory = SqliteJobStore::Open(":memory:", true, Durability::kDeferred);
  ASSERT_TRUE(memory.ok());
  ASSERT_TRUE((*memory)->PutJob(Job("a")).ok());
  EXPECT_EQ((*memory)->WriteMark(), 0u);
  EXPECT_TRUE((*memory)->MakeDurable(5).ok());
  EXPECT_EQ((*memory)->syncs(), 0u);
}

// Callers that come while a sync runs share the next one: three callers, two syncs.
TEST(DeferredStore, CallersDuringASyncShareTheNextOne) {
  TempDb db("group");
  auto s = SqliteJobStore::Open(db.path(), true, Durability::kDeferred);
  ASSERT_TRUE(s.ok());
  SqliteJobStore& store = **s;
  Gate gate;
  store.SetSyncForTesting(gate.Sync());
  ASSERT_TRUE(store.PutJob(Job("a")).ok());
  const uint64_t m1 = store.WriteMark();
  auto first = std::async(std::launch::async, [&] { return store.MakeDurable(m1); });
  ASSERT_TRUE(gate.WaitEntered(1));
  // Written while the first sync runs: that sync may have begun before, so it cannot count.
  ASSERT_TRUE(store.PutJob(Job("b")).ok());
  const uint64_t m2 = store.WriteMark();
  auto second = std::async(std::launch::async, [&] { return store.MakeDurable(m2); });
  auto third = std::async(std::launch::async, [&] { return store.MakeDurable(m2); });
  EXPECT_EQ(second.wait_for(100ms), std::future_status::timeout) << "returned before its write was synced";
  gate.Open();
  EXPECT_TRUE(first.get().ok());
  EXPECT_TRUE(second.get().ok());
  EXPECT_TRUE(third.get().ok());
  EXPECT_EQ(store.syncs(), 2u) << "the second and third callers should share one sync";
  EXPECT_GE(store.sync_max_seconds(), 0.09) << "the held sync took at least 100 ms";
  EXPECT_GE(store.sync_seconds(), store.sync_max_seconds());
}

// The kernel reports a write-back error once; a second fdatasync may then succeed over lost
// data. So after a failed sync no later one is believed.
TEST(DeferredStore, AFailedSyncIsFinal) {
  TempDb db("failed");
  auto s = SqliteJobStore::Open(db.path(), true, Durability::kDeferred);
  ASSERT_TRUE(s.ok());
  SqliteJobStore& store = **s;
  int calls = 0;
  store.SetSyncForTesting([&]() -> Status {
    return ++calls == 1 ? Status::IoError("fdatasync hpo.db-wal: Input/output error") : Status::Ok();
  });
  ASSERT_TRUE(store.PutJob(Job("a")).ok());
  const Status first = store.MakeDurable(store.WriteMark());
  ASSERT_FALSE(first.ok());
  EXPECT_EQ(first.code(), StatusCode::kIoError);
  EXPECT_NE(first.message().find("write-ahead log"), std::string::npos) << first.message();
  EXPECT_NE(first.message().find("Input/output error"), std::string::npos) << first.message();
  ASSERT_TRUE(store.PutJob(Job("b")).ok());
  EXPECT_FALSE(store.MakeDurable(store.WriteMark()).ok()) << "a later sync was believed after a failed one";
  EXPECT_EQ(calls, 1);
}

// The log is checkpointed on MakeDurable's side once it is long, not by the commit under the
// core's mutex (where its two syncs held every API call), and so it stays bounded.
TEST(DeferredStore, TheLogIsCheckpointedAfterASyncAndStaysBounded) {
  TempDb db("checkpoint");
  auto s = SqliteJobStore::Open(db.path(), true, Durability::kDeferred);
  ASSERT_TRUE(s.ok());
  SqliteJobStore& store = **s;
  for (int i = 0; i < 200; ++i) {  // about 20 MB of log lines, 100 KB a commit
    ASSERT_TRUE(PutNoisyTrial(store, "j", "t" + std::to_string(i)).ok());
    ASSERT_TRUE(store.MakeDurable(store.WriteMark()).ok());
  }
  EXPECT_GE(store.checkpoints(), 1u);
  std::error_code ec;
  const auto log = std::filesystem::file_size(db.path() + "-wal", ec);
  ASSERT_FALSE(ec);
  EXPECT_LT(log, 10u << 20) << "the log grew with everything written: it was never checkpointed";
  auto rows = store.LoadLogs("t199", 0, 1000);
  ASSERT_TRUE(rows.ok());
  EXPECT_EQ(rows->size(), 250u);
}

// Each host of a multi-host training job reads its own stream, whole, from its first line to the
// end of a host's numbers: the bound was OR-ed into the host's bits, so for algo-1, algo-3, ...
// (hosts 1, 3, ...) it equalled the first key, and their streams read empty through GetLogEvents
// (a user pass saw only algo-2's output in estimator.logs()).
TEST(JobStoreLogs, EveryHostOfAMultiHostTrainingJobReadsItsOwnStream) {
  TempDb db("log-hosts");
  auto s = SqliteJobStore::Open(db.path());
  ASSERT_TRUE(s.ok()) << s.status().ToString();
  std::vector<LogRow> rows;
  for (uint32_t host = 0; host <= 4; ++host) {
    for (uint64_t line = 0; line < 3; ++line) {
      rows.push_back({0, "t", 1, LogLineKey(host, line), "h" + std::to_string(host) + "l" + std::to_string(line), 1000});
    }
  }
  ASSERT_TRUE((*s)->AppendLogs(rows).ok());
  for (uint32_t host = 0; host <= 4; ++host) {
    for (bool from_end : {false, true}) {
      auto lines = (*s)->LoadStreamLines("t", 1, host, 0, kLogLineLimit, 0, INT64_MAX, 10, from_end);
      ASSERT_TRUE(lines.ok());
      std::vector<std::string> got;
      for (const auto& r : *lines) got.push_back(r.text);
      const std::string h = "h" + std::to_string(host);
      EXPECT_EQ(got, (std::vector<std::string>{h + "l0", h + "l1", h + "l2"})) << "host " << host;
    }
    auto from_one = (*s)->LoadStreamLines("t", 1, host, 1, kLogLineLimit, 0, INT64_MAX, 10, false);
    ASSERT_TRUE(from_one.ok());
    EXPECT_EQ(from_one->size(), 2u) << "host " << host;
  }
}

// Log lines keep when they arrived (CloudWatch Logs' timestamps, coordinator/cloudwatch_logs.h).
// A store an older build wrote has no such column: read-only it reads as time 0; opened to write,
// the column is added and old lines keep time 0 beside new ones with theirs.
TEST(JobStoreLogs, LinesKeepTheirTimesAndAnOlderStoreGainsTheColumn) {
  TempDb db("log-times");
  {
    auto s = SqliteJobStore::Open(db.path());
    ASSERT_TRUE(s.ok()) << s.status().ToString();
    ASSERT_TRUE((*s)->AppendLogs({{0, "t", 1, LogLineKey(0, 0), "first", 1000},
                                  {0, "t", 1, LogLineKey(0, 1), "second", 3000},
                                  {0, "t", 1, LogLineKey(2, 0), "host two", 2000},
                                  {0, "u", 1, LogLineKey(0, 0), "other job", 2500}})
                    .ok());
    auto streams = (*s)->LoadLogStreams("t");
    ASSERT_TRUE(streams.ok());
    ASSERT_EQ(streams->size(), 2u);
    EXPECT_EQ((*streams)[0], (LogStreamRow{"t", 1, 0, 1000, 3000, 2, 11}));
    EXPECT_EQ((*streams)[1], (LogStreamRow{"t", 1, 2, 2000, 2000, 1, 8}));
    auto tail = (*s)->LoadStreamLines("t", 1, 0, 0, kLogLineLimit, 0, INT64_MAX, 1, true);
    ASSERT_TRUE(tail.ok());
    ASSERT_EQ(tail->size(), 1u);
    EXPECT_EQ((*tail)[0].text, "second");
    EXPECT_EQ((*tail)[0].ts_ms, 3000);
    auto windowed = (*s)->LoadStreamLines("t", 1, 0, 0, kLogLineLimit, 2000, INT64_MAX, 10, false);
    ASSERT_TRUE(windowed.ok());
    ASSERT_EQ(windowed->size(), 1u);
    EXPECT_EQ((*windowed)[0].text, "second");
    auto by_time = (*s)->LoadLinesByTime({"t", "u"}, 0, INT64_MAX, INT64_MIN, 0, 10);
    ASSERT_TRUE(by_time.ok());
    std::vector<std::string> order;
    for (const auto& r : *by_time) order.push_back(r.text);
    EXPECT_EQ(order, (std::vector<std::string>{"first", "host two", "other job", "second"}));
    auto after = (*s)->LoadLinesByTime({"t", "u"}, 0, INT64_MAX, (*by_time)[1].ts_ms, (*by_time)[1].id, 10);
    ASSERT_TRUE(after.ok());
    EXPECT_EQ(after->size(), 2u) << "after the cursor (time, id)";
  }
  // As an older build left it: no ts_ms column, one line of its own.
  sqlite3* raw = nullptr;
  ASSERT_EQ(sqlite3_open(db.path().c_str(), &raw), SQLITE_OK);
  ASSERT_EQ(sqlite3_exec(raw,
                         "ALTER TABLE logs DROP COLUMN ts_ms;"
                         "INSERT INTO logs(trial, attempt, line, text) VALUES('old', 1, 0, 'from before');",
                         nullptr, nullptr, nullptr),
            SQLITE_OK)
      << sqlite3_errmsg(raw);
  sqlite3_close(raw);
  {
    auto ro = SqliteJobStore::OpenReadOnly(db.path());
    ASSERT_TRUE(ro.ok()) << ro.status().ToString();
    auto rows = (*ro)->LoadLogs("old", 0, 10);
    ASSERT_TRUE(rows.ok()) << rows.status().ToString();
    ASSERT_EQ(rows->size(), 1u);
    EXPECT_EQ((*rows)[0].ts_ms, 0);
    auto streams = (*ro)->LoadLogStreams("old");
    ASSERT_TRUE(streams.ok()) << streams.status().ToString();
    EXPECT_EQ(streams->size(), 1u);
    auto lines = (*ro)->LoadStreamLines("old", 1, 0, 0, kLogLineLimit, 5, 10, 10, false);
    ASSERT_TRUE(lines.ok()) << lines.status().ToString();
    EXPECT_EQ(lines->size(), 1u) << "no times to filter by";
  }
  auto s = SqliteJobStore::Open(db.path());
  ASSERT_TRUE(s.ok()) << s.status().ToString();
  ASSERT_TRUE((*s)->AppendLogs({{0, "old", 1, LogLineKey(0, 1), "from now", 7000}}).ok());
  auto rows = (*s)->LoadLogs("old", 0, 10);
  ASSERT_TRUE(rows.ok()) << rows.status().ToString();
  ASSERT_EQ(rows->size(), 2u);
  EXPECT_EQ((*rows)[0].ts_ms, 0);
  EXPECT_EQ((*rows)[1].ts_ms, 7000);
}

// An operator pass: a job's deletion was one transaction, whose write-ahead log grew to twice the
// job's size (51 MB to delete 27 MB), so a nearly full disk could not delete the job that would
// have freed it. Its logs and metrics now go a slice at a time, the log's pages reused.
TEST(JobStoreDelete, ALargeJobIsDeletedWithLessFreeSpaceThanItsSize) {
  const std::filesystem::path dir = ::testing::TempDir() + "hpo-delete-" + std::to_string(::getpid());
  std::filesystem::create_directories(dir);
  if (::mount("tmpfs", dir.c_str(), "tmpfs", 0, "size=40m") != 0) {
    std::filesystem::remove(dir);
    GTEST_SKIP() << "cannot mount a tmpfs (needs root)";
  }
  struct Unmount {
    std::filesystem::path p;
    ~Unmount() {
      ::umount2(p.c_str(), MNT_DETACH);
      std::filesystem::remove_all(p);
    }
  } unmount{dir};
  const std::string path = (dir / "hpo.db").string();
  {
    auto s = SqliteJobStore::Open(path);
    ASSERT_TRUE(s.ok()) << s.status().message();
    SqliteJobStore& store = **s;
    ASSERT_TRUE(InTransaction(&store, [&] { return store.PutJob(Job("noisy")); }).ok());
    for (int i = 0; i < 120; ++i) {  // about 12 MB of log lines
      ASSERT_TRUE(PutNoisyTrial(store, "noisy", "noisy-" + std::to_string(i)).ok());
    }
  }  // closed: its log is checkpointed into the database and removed
  {
    auto s = SqliteJobStore::Open(path);
    ASSERT_TRUE(s.ok()) << s.status().message();
    SqliteJobStore& store = **s;
    // Leave 6 MB free: less than the job's logs.
    struct statvfs fsinfo {};
    ASSERT_EQ(::statvfs(dir.c_str(), &fsinfo), 0);
    const uint64_t free_bytes = static_cast<uint64_t>(fsinfo.f_bavail) * fsinfo.f_frsize;
    ASSERT_GT(free_bytes, 6u << 20);
    std::ofstream(dir / "fill") << std::string(free_bytes - (6u << 20), 'f');
    Status deleted = store.DeleteJob("noisy");
    EXPECT_TRUE(deleted.ok()) << deleted.message();
    auto jobs = store.LoadJobs();
    ASSERT_TRUE(jobs.ok());
    EXPECT_TRUE(jobs->empty());
    auto left = store.LoadLogs("noisy-7", 0, 10);
    ASSERT_TRUE(left.ok());
    EXPECT_TRUE(left->empty());
  }
}

// A crash of the process (here: _exit without closing the database) loses no commit, synced or
// not: the log was written when Commit returned.
TEST(DeferredStore, ACrashOfTheProcessLosesNoCommit) {
  TempDb db("crash");
  const pid_t child = ::fork();
  ASSERT_GE(child, 0);
  if (child == 0) {
    auto s = SqliteJobStore::Open(db.path(), true, Durability::kDeferred);
    if (!s.ok()) ::_exit(2);
    for (int i = 0; i < 50; ++i) {
      if (!InTransaction(s->get(), [&] { return (*s)->PutJob(Job("j" + std::to_string(i))); }).ok()) ::_exit(3);
    }
    ::_exit(0);  // no close, no sync, no checkpoint
  }
  int status = 0;
  ASSERT_EQ(::waitpid(child, &status, 0), child);
  ASSERT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << status;
  auto s = SqliteJobStore::Open(db.path());
  ASSERT_TRUE(s.ok()) << s.status().ToString();
  auto jobs = (*s)->LoadJobs();
  ASSERT_TRUE(jobs.ok());
  EXPECT_EQ(jobs->size(), 50u);
}

// After a crash nearly everything may be in the log alone. A database file gone or emptied beside
// it made Open start an empty store and drop the log, with every job in it; it is refused now,
// and both files stay as they were.
TEST(DeferredStore, AStoreWhoseFileIsGoneButWhoseLogHoldsRecordsIsRefused) {
  namespace fs = std::filesystem;
  TempDb db("lostfile");
  const pid_t child = ::fork();
  ASSERT_GE(child, 0);
  if (child == 0) {
    auto s = SqliteJobStore::Open(db.path(), true, Durability::kDeferred);
    if (!s.ok()) ::_exit(2);
    for (int i = 0; i < 20; ++i) {
      if (!InTransaction(s->get(), [&] { return (*s)->PutJob(Job("j" + std::to_string(i))); }).ok()) ::_exit(3);
    }
    ::_exit(0);  // killed: the jobs are in the log
  }
  int status = 0;
  ASSERT_EQ(::waitpid(child, &status, 0), child);
  ASSERT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << status;
  const std::string wal = db.path() + "-wal";
  const auto wal_size = fs::file_size(wal);
  ASSERT_GT(wal_size, 0u);
  const std::string saved = db.path() + ".saved";
  fs::copy_file(db.path(), saved, fs::copy_options::overwrite_existing);
  for (const bool emptied : {true, false}) {
    if (emptied) {
      std::ofstream(db.path(), std::ios::trunc).close();
    } else {
      fs::remove(db.path());
    }
    auto s = SqliteJobStore::Open(db.path(), true, Durability::kDeferred);
    ASSERT_FALSE(s.ok());
    EXPECT_EQ(s.status().code(), StatusCode::kFailedPrecondition);
    EXPECT_NE(s.status().message().find(emptied ? "is empty" : "is missing"), std::string::npos) << s.status().message();
    EXPECT_NE(s.status().message().find(wal), std::string::npos) << s.status().message();
    EXPECT_EQ(fs::file_size(wal), wal_size);
    EXPECT_EQ(fs::exists(db.path()), emptied);
  }
  // Restored, everything is there.
  fs::copy_file(saved, db.path(), fs::copy_options::overwrite_existing);
  fs::remove(saved);
  auto s = SqliteJobStore::Open(db.path());
  ASSERT_TRUE(s.ok()) << s.status().ToString();
  auto jobs = (*s)->LoadJobs();
  ASSERT_TRUE(jobs.ok());
  EXPECT_EQ(jobs->size(), 20u);
}

// The copy made when the store's file was deleted under a running coordinator holds every spec and
// its secrets: its owner's only, as the store itself (it was 0644).
TEST(JobStoreCopy, TheCopyIsItsOwnersOnly) {
  TempDb db("copy");
  auto s = SqliteJobStore::Open(db.path());
  ASSERT_TRUE(s.ok()) << s.status().ToString();
  ASSERT_TRUE(InTransaction(s->get(), [&] { return (*s)->PutJob(Job("j")); }).ok());
  const std::string copy = db.path() + ".recovered";
  std::remove(copy.c_str());
  const mode_t old_mask = ::umask(022);
  ASSERT_TRUE((*s)->CopyTo(copy).ok());
  ::umask(old_mask);
  struct stat st {};
  ASSERT_EQ(::stat(copy.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
  std::remove(copy.c_str());
}

// ---- through the dispatcher ----------------------------------------------------------------

// The dispatcher loop on a thread of its own until the end of the scope.
class Loop {
 public:
  explicit Loop(Dispatcher& d) : thread_([this, &d] { d.Run(stop_); }) {}
  ~Loop() {
    stop_ = true;
    thread_.join();
  }

 private:
  std::atomic<bool> stop_{false};
  std::thread thread_;
};

// RegisterAcks the worker has received by now.
size_t Acks(FakeWorker& w) {
  w.Drain();
  return w.Count<proto::wire::RegisterAck>();
}

TEST(DeferredDispatcher, NothingIsAcknowledgedBeforeTheSyncAndReadersAreServedDuringIt) {
  TempDb db("dispatcher");
  auto s = SqliteJobStore::Open(db.path(), true, Durability::kDeferred);
  ASSERT_TRUE(s.ok());
  SqliteJobStore& store = **s;
  Gate gate;
  store.SetSyncForTesting(gate.Sync());
  CoordinatorCore core(&store, CoreOptions{});
  DispatcherOptions dopt = LoopbackOptions();
  dopt.deferred_store = &store;
  Dispatcher d(&core, dopt);
  ASSERT_TRUE(d.Bind().ok());
  // The loop's first tick writes the coordinator's sign of life and syncs it on the loop's own
  // thread; held at the gate, that sync would keep the registration from being read at all (CI
  // under load once saw the tick's sync come first). It goes through before the gate closes; the
  // next sign of life is 5 s away.
  gate.Open();
  Loop loop(d);
  for (int i = 0; i < 500 && store.syncs() == 0; ++i) std::this_thread::sleep_for(10ms);
  ASSERT_GE(store.syncs(), 1u) << "the first tick's sign of life was never synced";
  gate.Close();

  zmq::context_t ctx;
  FakeWorker w(ctx, d.endpoint(), "w1");
  w.Register();
  // The registration is applied and its commit waits for the disk: a reader sees the worker
  // meanwhile (before this change it queued behind the fsync, under the core's mutex)...
  ASSERT_TRUE(gate.WaitEntered(2)) << "the registration was never synced";
  const auto t0 = std::chrono::steady_clock::now();
  bool registered = Registered(d, "w1");
  while (!registered && std::chrono::steady_clock::now() - t0 < 2s) {
    std::this_thread::sleep_for(10ms);
    registered = Registered(d, "w1");
  }
  EXPECT_TRUE(registered);
  EXPECT_LT(std::chrono::steady_clock::now() - t0, 2s) << "a reader waited for the sync";
  // ...but the worker hears nothing until the disk has it.
  std::this_thread::sleep_for(150ms);
  EXPECT_EQ(Acks(w), 0u) << "acknowledged before the registration was on disk";

  // A writing API call (a tuning job submitted) answers only after its sync, too.
  auto submitted = std::async(std::launch::async, [&] {
    return d.WithCore([&](CoordinatorCore& c) {
      std::vector<Outgoing> out;
      const bool ok = c.Submit(coretest::Spec("durable-job", "Random", 1, 1), proto::Spelling::kCrd, d.Now(), &out).ok();
      d.Post(std::move(out));
      return ok;
    });
  });
  EXPECT_EQ(submitted.wait_for(200ms), std::future_status::timeout) << "answered before the job was on disk";
  gate.Open();
  EXPECT_TRUE(submitted.get());
  bool acked = false;
  for (int i = 0; i < 300 && !acked; ++i) {
    acked = Acks(w) > 0;
    if (!acked) std::this_thread::sleep_for(10ms);
  }
  EXPECT_TRUE(acked) << "the acknowledgement never came after the sync";
  EXPECT_GE(store.syncs(), 3u);
}

TEST(DeferredDispatcher, AFailedSyncWithholdsTheRepliesAndIsReportedOnce) {
  TempDb db("dispatcher-failed");
  auto s = SqliteJobStore::Open(db.path(), true, Durability::kDeferred);
  ASSERT_TRUE(s.ok());
  SqliteJobStore& store = **s;
  store.SetSyncForTesting([] { return Status::IoError("fdatasync hpo.db-wal: Input/output error"); });
  CoordinatorCore core(&store, CoreOptions{});
  DispatcherOptions dopt = LoopbackOptions();
  std::mutex mu;
  std::vector<std::string> logged, failures;
  dopt.log = [&](const std::string& line) {
    std::lock_guard<std::mutex> lock(mu);
    logged.push_back(line);
  };
  dopt.on_sync_failure = [&](const Status& st) {
    std::lock_guard<std::mutex> lock(mu);
    failures.push_back(st.message());
  };
  dopt.deferred_store = &store;
  Dispatcher d(&core, dopt);
  ASSERT_TRUE(d.Bind().ok());
  {
    Loop loop(d);
    zmq::context_t ctx;
    FakeWorker w(ctx, d.endpoint(), "w1");
    w.Register();
    WaitRegistered(d, "w1");
    w.Register();  // again: still no acknowledgement, and no second report
    std::this_thread::sleep_for(300ms);
    EXPECT_EQ(Acks(w), 0u) << "acknowledged what may not be on disk";
  }
  std::lock_guard<std::mutex> lock(mu);
  ASSERT_EQ(failures.size(), 1u);
  EXPECT_NE(failures[0].find("Input/output error"), std::string::npos) << failures[0];
  bool said = false;
  for (const auto& l : logged) said = said || l.find("nothing is acknowledged") != std::string::npos;
  EXPECT_TRUE(said) << "the log does not say the coordinator stopped acknowledging";
}

}  // namespace
// A durability pass: 64 bytes of a log damaged in its middle, and SQLite, which keeps the frames
// up to the first bad one, dropped the 212 whole frames after it (a job) without a word.
// LogDamage names such damage before the store is opened; a whole log and a tail cut by a crash
// (what SQLite is right to drop) are no damage.
TEST(DeferredStore, ALogDamagedInItsMiddleIsToldApartFromATornTail) {
  TempDb db("waldamage"), copy("waldamage-copy");
  auto s = SqliteJobStore::Open(db.path(), true, Durability::kDeferred);
  ASSERT_TRUE(s.ok()) << s.status().ToString();
  for (int i = 0; i < 40; ++i) {  // one commit each: many frames
    JobRow j = Job("job-" + std::to_string(i));
    j.spec_json = std::string(3000, 'x');
    ASSERT_TRUE((*s)->PutJob(j).ok());
  }
  auto copy_of = [&](const std::function<void(std::string&)>& damage) {
    std::string wal = *ReadFile(db.path() + "-wal", 1 << 30);
    damage(wal);
    std::filesystem::copy_file(db.path(), copy.path(), std::filesystem::copy_options::overwrite_existing);
    std::ofstream(copy.path() + "-wal", std::ios::binary | std::ios::trunc) << wal;
  };
  copy_of([](std::string&) {});
  EXPECT_EQ(SqliteJobStore::LogDamage(copy.path()), "") << "a whole log";
  const size_t size = ReadFile(db.path() + "-wal", 1 << 30)->size();
  ASSERT_GT(size, 20u * 4120) << "the test needs a log of many frames";
  copy_of([&](std::string& w) { w.resize(size - 3000); });
  EXPECT_EQ(SqliteJobStore::LogDamage(copy.path()), "") << "a torn tail is what a crash leaves";
  copy_of([&](std::string& w) {
    for (size_t i = 0; i < 64; ++i) w[size / 3 + i] = static_cast<char>(w[size / 3 + i] ^ 0x5a);
  });
  const std::string said = SqliteJobStore::LogDamage(copy.path());
  EXPECT_NE(said.find("is damaged, and "), std::string::npos) << said;
  EXPECT_NE(said.find("drops those after"), std::string::npos) << said;
  copy_of([](std::string& w) { w[0] = 'x'; });
  EXPECT_NE(SqliteJobStore::LogDamage(copy.path()).find("header is damaged"), std::string::npos);
  std::remove((copy.path() + "-wal").c_str());
  EXPECT_EQ(SqliteJobStore::LogDamage(copy.path()), "") << "no log";
}

// A regression pass: StillOwnFile opened and closed the database file at each check, and closing
// any descriptor of a file drops every POSIX lock the process holds on it, SQLite's too. Another
// process's connection (the README's `sqlite3 hpo.db .backup`) then took itself for the only one
// and, closing, deleted the running store's log: acknowledged jobs were lost at the next crash.
TEST(DeferredStore, CheckingTheFileKeepsSQLitesLocksSoAnotherProcessLeavesTheLog) {
  TempDb db("ownfile");
  auto s = SqliteJobStore::Open(db.path(), true, Durability::kDeferred);
  ASSERT_TRUE(s.ok()) << s.status().ToString();
  ASSERT_TRUE((*s)->PutJob(Job("kept")).ok());
  for (int i = 0; i < 3; ++i) EXPECT_TRUE((*s)->StillOwnFile().ok());
  ASSERT_TRUE(std::filesystem::exists(db.path() + "-wal"));
  const std::string other = "python3 -c \"import sqlite3; c = sqlite3.connect('" + db.path() +
                            "'); c.execute('PRAGMA application_id').fetchall(); c.close()\"";
  ASSERT_EQ(std::system(other.c_str()), 0);
  EXPECT_TRUE(std::filesystem::exists(db.path() + "-wal")) << "another process's connection deleted the log in use";
  EXPECT_TRUE((*s)->StillOwnFile().ok());
  ASSERT_TRUE((*s)->PutJob(Job("after")).ok());
  auto reader = SqliteJobStore::OpenReadOnly(db.path());
  ASSERT_TRUE(reader.ok()) << reader.status().ToString();
  auto jobs = (*reader)->LoadJobs();
  ASSERT_TRUE(jobs.ok());
  EXPECT_EQ(jobs->size(), 2u) << "what the store wrote after is read";
}

}  // namespace hpo::coordinator
