// coordinator/job_store.h: the coordinator's durable state.
//
// One SQLite database (WAL mode) in the state directory, with tables for tuning jobs, trials,
// metric points, workers and events. The core writes through it: each event's changes are one
// transaction (Begin/Commit), and nothing the core acknowledges leaves before its transaction is
// on disk: either each commit waits for the disk (Durability::kAtCommit, synchronous=FULL), or
// commits only write the log and whoever answers waits for the disk first, outside the core's
// lock (Durability::kDeferred and MakeDurable: `hpo coordinator` and `hpo run`, through the
// dispatcher). SqliteJobStore(":memory:") is the same code without a file, for tests and the
// simulated fleet.
//
// Rows are plain values; the spec is stored as the SageMaker JSON request so the store does not
// depend on the codec's internal types.
//
// Errors: every method returns a Status; a failed statement rolls back the open transaction.
// Thread safety: none; the coordinator core serializes access. The one exception is
// SqliteJobStore::MakeDurable, which any thread may call at any time.
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <initializer_list>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <vector>

#include "common/status.h"

struct sqlite3;

namespace hpo::coordinator {

struct JobRow {
  std::string name;
  std::string spec_json;  // CreateHyperParameterTuningJob request (API spelling)
  std::string spelling;   // "crd" or "api": how the user wrote it
  std::string metadata_json;  // the CRD document's metadata (may be "{}")
  std::string status;
  std::string failure_reason;
  std::string completion_reason;
  uint64_t seed = 0;
  int64_t creation_ms = 0, end_ms = 0, last_modified_ms = 0;
  bool operator==(const JobRow&) const = default;
};

struct TrialRow {
  std::string name;
  std::string tuning_job;
  int index = 0;
  std::string definition_name;
  std::string state;
  uint32_t attempt = 0;
  std::string worker_id;
  int64_t creation_ms = 0, start_ms = 0, end_ms = 0;
  std::string failure_reason;
  std::string detail_json;  // tuned, hyperparameters, secondary transitions, final metrics, ...
  bool operator==(const TrialRow&) const = default;
};

struct MetricRow {
  std::string trial;
  uint32_t attempt = 0;
  uint64_t seq = 0;
  std::string name;
  double value = 0;
  int64_t timestamp_ms = 0;
  uint32_t step = 0;
  bool operator==(const MetricRow&) const = default;
};

struct LogRow {
  int64_t id = 0;  // increasing cursor across the whole store
  std::string trial;
  uint32_t attempt = 0;
  uint64_t line = 0;  // 0-based line number within the attempt's output of one host (a multi-host
                      // attempt's host in the high bits: coordinator/core.h LogLineKey)
  std::string text;
  int64_t ts_ms = 0;  // when the coordinator received it (0: stored by a build that kept no times)
  bool operator==(const LogRow&) const = default;
};

// One host's output of one attempt: what CloudWatch Logs calls a log stream
// (coordinator/cloudwatch_logs.h names it `<training job>/algo-<host>-<first line's second>`).
struct LogStreamRow {
  std::string trial;
  uint32_t attempt = 0;
  uint32_t host = 0;  // LogLineHost: 0 for a single-host attempt
  int64_t first_ms = 0, last_ms = 0;  // the times of its first and last lines kept
  int64_t lines = 0, bytes = 0;       // lines kept and their text's bytes
  bool operator==(const LogStreamRow&) const = default;
};

// A stored log line's number (LogRow::line): the host of a multi-host attempt (1 for algo-1, 2
// for algo-2, ...; 0 for a single-host attempt) from bit kLogHostShift up, the line's number in
// that host's output below it. Each host's output is then its own run of numbers, kept and
// trimmed on its own, and a reader tells the hosts apart.
inline constexpr int kLogHostShift = 40;
inline constexpr uint64_t kLogLineLimit = uint64_t{1} << kLogHostShift;  // line numbers below this
inline constexpr uint64_t LogLineKey(uint32_t host, uint64_t line) { return (uint64_t{host} << kLogHostShift) | line; }
inline constexpr uint32_t LogLineHost(uint64_t key) { return static_cast<uint32_t>(key >> kLogHostShift); }
inline constexpr uint64_t LogLineNumber(uint64_t key) { return key & (kLogLineLimit - 1); }

// One entry of the coordinator's history: a job created, a training job stopped early and why, a
// suggestion's cost, a worker lost, what Autotune chose, ... (`kind` names which).
struct EventRow {
  int64_t id = 0;  // increasing in the order the events were written
  int64_t ts_ms = 0;
  std::string kind;
  std::string job;    // tuning job, "" for the coordinator's own (a worker lost)
  std::string trial;  // training job, "" for the job's own
  std::string message;
  bool operator==(const EventRow&) const = default;
};

// A worker an operator has cordoned (CoordinatorCore::Cordon): no new training job goes there.
struct CordonRow {
  std::string worker;  // the worker's id, registered or not
  std::string reason;
  int64_t since_ms = 0;
  bool operator==(const CordonRow&) const = default;
};

// A state-change event waiting to be delivered to one target (coordinator/notifier.h): the
// core writes it in the same transaction as the change (CoreOptions::notify), the notifier
// deletes it once the target has taken it, or gives up on it.
struct NotificationRow {
  int64_t id = 0;  // increasing in the order written: delivery order per target
  std::string target;  // the target's URL
  std::string body;    // the event, as sent
  int64_t created_ms = 0;
  int attempts = 0;      // deliveries tried and failed
  int64_t next_ms = 0;   // not before then (0: at once)
  std::string last_error;
  bool operator==(const NotificationRow&) const = default;
};

class JobStore {
 public:
  virtual ~JobStore() = default;
  // Transactions nest: Begin inside Begin opens a savepoint; only the outermost Commit makes the
  // writes durable; Rollback undoes the writes since the matching Begin.
  virtual Status Begin() = 0;
  virtual Status Commit() = 0;
  virtual void Rollback() = 0;
  virtual Status PutJob(const JobRow& row) = 0;
  virtual Status PutTrial(const TrialRow& row) = 0;
  virtual Status AppendMetrics(const std::vector<MetricRow>& rows) = 0;
  virtual Status AppendEvent(int64_t ts_ms, const std::string& kind, const std::string& job,
                             const std::string& trial, const std::string& message) = 0;
  virtual Result<std::vector<JobRow>> LoadJobs() = 0;
  virtual Result<std::vector<TrialRow>> LoadTrials() = 0;
  virtual Result<std::vector<MetricRow>> LoadMetrics(const std::string& trial) = 0;
  // The values of one metric of one attempt, in the order emitted (seq): a learning curve. The
  // default filters LoadMetrics; a store with an index reads only those rows (a job reporting 20
  // metrics read 20 times the rows it needed, under the core's lock, for every curve drawn).
  virtual Result<std::vector<double>> LoadMetricValues(const std::string& trial, uint32_t attempt,
                                                       const std::string& name) {
    auto rows = LoadMetrics(trial);
    if (!rows.ok()) return rows.status();
    std::vector<double> out;
    for (const MetricRow& m : *rows) {
      if (m.attempt == attempt && m.name == name) out.push_back(m.value);
    }
    return out;
  }
  // Removes the attempt's points of metric `name` (a multi-host attempt whose metric a lower host
  // reports from now on: coordinator/core.h Trial::metric_host).
  virtual Status DeleteMetrics(const std::string& trial, uint32_t attempt, const std::string& name) = 0;
  // Log lines are keyed by (trial, attempt, line): writing a line twice keeps the first.
  virtual Status AppendLogs(const std::vector<LogRow>& rows) = 0;
  // Up to `limit` lines of the trial with id > after_id, in order.
  virtual Result<std::vector<LogRow>> LoadLogs(const std::string& trial, int64_t after_id, size_t limit) = 0;
  // Removes the attempt's lines numbered in [from_line, to_line) (a log's middle, once it is
  // longer than the coordinator keeps).
  virtual Status TrimLogs(const std::string& trial, uint32_t attempt, uint64_t from_line, uint64_t to_line) = 0;
  // The log streams of a trial, by attempt and host. (The defaults: a store that keeps no
  // streams answers Unimplemented.)
  virtual Result<std::vector<LogStreamRow>> LoadLogStreams(const std::string& trial) {
    (void)trial;
    return Status::FailedPrecondition("this job store keeps no log streams");
  }
  // Up to `limit` lines of one stream with numbers (LogLineNumber) in [from, to) and times in
  // [start_ms, end_ms), in line order; with `from_end`, the last `limit` of them (still in line
  // order).
  virtual Result<std::vector<LogRow>> LoadStreamLines(const std::string& trial, uint32_t attempt, uint32_t host,
                                                      uint64_t from, uint64_t to, int64_t start_ms, int64_t end_ms,
                                                      size_t limit, bool from_end) {
    (void)trial, (void)attempt, (void)host, (void)from, (void)to, (void)start_ms, (void)end_ms, (void)limit,
        (void)from_end;
    return Status::FailedPrecondition("this job store keeps no log streams");
  }
  // Up to `limit` lines of any of `trials` with times in [start_ms, end_ms), ordered by (time,
  // id), after the line (after_ms, after_id): CloudWatch's FilterLogEvents across streams.
  virtual Result<std::vector<LogRow>> LoadLinesByTime(const std::vector<std::string>& trials, int64_t start_ms,
                                                      int64_t end_ms, int64_t after_ms, int64_t after_id,
                                                      size_t limit) {
    (void)trials, (void)start_ms, (void)end_ms, (void)after_ms, (void)after_id, (void)limit;
    return Status::FailedPrecondition("this job store keeps no log streams");
  }
  // Removes the job (name matched case-insensitively), its trials and their metrics and log lines,
  // all or nothing. The events of its training jobs go too; the job's own (those of no training
  // job: created, waiting, completion, ...) stay, its history. No such job: Ok, nothing done.
  virtual Status DeleteJob(const std::string& name) = 0;
  // DeleteJob's bulk ahead of it, a slice at a time (a few thousand rows, one transaction), so a
  // caller may let others use the store between slices: the job's metric points, log lines and
  // training jobs' events, then the file's pages they freed. True when it did something (call
  // again), false when nothing is left (or this store does not slice: DeleteJob does it all). The
  // job itself stays.
  virtual Result<bool> DeleteJobSlice(const std::string& name) {
    (void)name;
    return false;
  }
  // Deletes one training job's row, metrics and log lines, all or nothing (a training job that
  // never ran, withdrawn when its tuning job ended first). No such training job: Ok.
  virtual Status DeleteTrial(const std::string& name) = 0;
  // Up to `limit` events with id > after_id, oldest first: every event when `job` is empty, else
  // that tuning job's (name matched case-insensitively). A name used again after a deletion has
  // the newest job's events only; a deleted job not re-created, its own up to its JobDeleted.
  virtual Result<std::vector<EventRow>> LoadEvents(const std::string& job, int64_t after_id, size_t limit) = 0;
  // The newest `limit` of those events, oldest first. This default pages through LoadEvents.
  virtual Result<std::vector<EventRow>> LoadLastEvents(const std::string& job, size_t limit) {
    std::vector<EventRow> out;
    int64_t after = 0;
    for (;;) {
      auto page = LoadEvents(job, after, 5000);
      if (!page.ok()) return page.status();
      if (page->empty()) break;
      after = page->back().id;
      for (auto& e : *page) out.push_back(std::move(e));
      if (out.size() > limit) out.erase(out.begin(), out.end() - static_cast<std::ptrdiff_t>(limit));
    }
    return out;
  }
  // Those of `names` that were training jobs here, deleted since (with their tuning job, or
  // withdrawn before they ran): DeleteJob and DeleteTrial keep the names.
  virtual Result<std::set<std::string>> DeletedTrials(const std::vector<std::string>& names) = 0;
  // Whether a tuning job of that name (case-insensitive) was deleted here before the store kept
  // deleted training jobs' names (a store of an older build): its names are not known one by one.
  virtual Result<bool> DeletedUnrecorded(const std::string& job) = 0;
  // Cordoned workers: put (replacing one of the same worker), delete (none: no error), all by id.
  virtual Status PutCordon(const CordonRow& row) = 0;
  virtual Status DeleteCordon(const std::string& worker) = 0;
  virtual Result<std::vector<CordonRow>> LoadCordons() = 0;
  // The coordinator's last sign of life (its clock, ms), written every few seconds: after a crash,
  // the attempts whose workers do not come back were last known to run then, not until the
  // restart (downtime billed as training time). 0 when none was written.
  virtual Status PutAlive(int64_t ms) = 0;
  virtual Result<int64_t> LoadAlive() = 0;
  // State-change notifications (NotificationRow) and the state each resource was last notified
  // in (`resource`: "job:<lower-case name>" or "trial:<name>"; deleted with its job or training
  // job). A store that keeps none refuses the writes and reads nothing.
  virtual Status AppendNotification(const std::string& target, const std::string& body, int64_t created_ms) {
    (void)target, (void)body, (void)created_ms;
    return Status::FailedPrecondition("this job store keeps no notifications");
  }
  // Up to `limit` rows with id > after_id, oldest first: `target`'s, or every target's for "".
  virtual Result<std::vector<NotificationRow>> LoadNotifications(const std::string& target, int64_t after_id,
                                                                 size_t limit) {
    (void)target, (void)after_id, (void)limit;
    return std::vector<NotificationRow>{};
  }
  virtual Status UpdateNotification(int64_t id, int attempts, int64_t next_ms, const std::string& last_error) {
    (void)id, (void)attempts, (void)next_ms, (void)last_error;
    return Status::FailedPrecondition("this job store keeps no notifications");
  }
  // The targets notifications wait for, each with how many.
  virtual Result<std::map<std::string, int64_t>> NotificationTargets() { return std::map<std::string, int64_t>{}; }
  // Removes the notifications waiting for `target`: every one, or those with id <= through_id.
  virtual Status DeleteNotificationsOf(const std::string& target, int64_t through_id = INT64_MAX) {
    (void)target, (void)through_id;
    return Status::FailedPrecondition("this job store keeps no notifications");
  }
  // How many notifications wait, and when the oldest of them was made (0 when none).
  struct NotificationBacklog {
    int64_t waiting = 0;
    int64_t oldest_ms = 0;
  };
  virtual Result<NotificationBacklog> Backlog() const { return NotificationBacklog{}; }
  virtual Status PutNotified(const std::string& resource, const std::string& state) {
    (void)resource, (void)state;
    return Status::FailedPrecondition("this job store keeps no notifications");
  }
  virtual Result<std::map<std::string, std::string>> LoadNotified() { return std::map<std::string, std::string>{}; }
};

// When a commit is on disk (SqliteJobStore::Open).
enum class Durability {
  // Each outermost Commit returns once its writes are on disk (SQLite's synchronous=FULL: an
  // fdatasync of the write-ahead log per commit, made by whoever commits).
  kAtCommit,
  // Commits write the log and return without waiting for the disk (synchronous=NORMAL): a
  // crash of the process loses nothing, a power failure may lose the newest commits. Whoever
  // must not answer before the disk has them calls MakeDurable, which needs no serialization:
  // the coordinator's dispatcher does so after releasing the core's mutex, so that API calls
  // and the dispatcher's next batch do not queue behind an fsync (coordinator/dispatcher.h).
  // Checkpoints (the log copied into the database, both synced) run there too, once the log
  // passes 4 MB, on a connection of their own; a commit makes one itself only past 64 MB (a
  // store nobody calls MakeDurable on).
  kDeferred,
};

class SqliteJobStore final : public JobStore {
 public:
  // Opens (creating if needed) the database at `path` (":memory:" for none) and its schema.
  // check_integrity: SQLite's quick_check first (time linear in the file's size, about a second
  // per GB), so that a damaged file is refused with what to do rather than read as fewer rows;
  // a coordinator checks, a read-only look (hpo events --state-dir) need not.
  static Result<std::unique_ptr<SqliteJobStore>> Open(const std::string& path, bool check_integrity = true,
                                                      Durability durability = Durability::kAtCommit);
  // What SQLite would drop for good of the write-ahead log beside the database at `path` when it
  // opens it: SQLite keeps the frames up to the first that fails its checksum and drops the rest,
  // so a damaged block in the middle of a log lost every later record without a word (a
  // durability pass: 212 frames, a whole job). Returns "" when nothing would be dropped that
  // validates (no log, a whole one, or a tail cut by a crash), else a sentence naming the first
  // damaged frame and how many valid frames of the log's current generation follow it. Reads the
  // file only. (Open empties the log once SQLite has read it, so frames it dropped then are not
  // found again after a later crash.)
  static std::string LogDamage(const std::string& path);
  // Opens an existing database for reading only (hpo describe/trials/logs/events --state-dir, on
  // a directory that a coordinator may be using at the same time): nothing is created or
  // written, and every write method fails with IoError. Errors: IoError when there is no
  // readable database at `path`; FailedPrecondition for another schema version.
  static Result<std::unique_ptr<SqliteJobStore>> OpenReadOnly(const std::string& path);
  ~SqliteJobStore() override;

  Status Begin() override;
  Status Commit() override;
  void Rollback() override;
  Status PutJob(const JobRow& row) override;
  Status PutTrial(const TrialRow& row) override;
  Status AppendMetrics(const std::vector<MetricRow>& rows) override;
  Status AppendEvent(int64_t ts_ms, const std::string& kind, const std::string& job, const std::string& trial,
                     const std::string& message) override;
  Result<std::vector<JobRow>> LoadJobs() override;
  Result<std::vector<TrialRow>> LoadTrials() override;
  Result<std::vector<MetricRow>> LoadMetrics(const std::string& trial) override;
  Result<std::vector<double>> LoadMetricValues(const std::string& trial, uint32_t attempt,
                                               const std::string& name) override;
  Status AppendLogs(const std::vector<LogRow>& rows) override;
  Result<std::vector<LogRow>> LoadLogs(const std::string& trial, int64_t after_id, size_t limit) override;
  Status TrimLogs(const std::string& trial, uint32_t attempt, uint64_t from_line, uint64_t to_line) override;
  Result<std::vector<LogStreamRow>> LoadLogStreams(const std::string& trial) override;
  Result<std::vector<LogRow>> LoadStreamLines(const std::string& trial, uint32_t attempt, uint32_t host,
                                              uint64_t from, uint64_t to, int64_t start_ms, int64_t end_ms,
                                              size_t limit, bool from_end) override;
  Result<std::vector<LogRow>> LoadLinesByTime(const std::vector<std::string>& trials, int64_t start_ms,
                                              int64_t end_ms, int64_t after_ms, int64_t after_id,
                                              size_t limit) override;
  Status DeleteMetrics(const std::string& trial, uint32_t attempt, const std::string& name) override;
  Status DeleteJob(const std::string& name) override;
  Result<bool> DeleteJobSlice(const std::string& name) override;
  Status DeleteTrial(const std::string& name) override;
  Result<std::vector<EventRow>> LoadEvents(const std::string& job, int64_t after_id, size_t limit) override;
  Result<std::vector<EventRow>> LoadLastEvents(const std::string& job, size_t limit) override;
  Result<std::set<std::string>> DeletedTrials(const std::vector<std::string>& names) override;
  Result<bool> DeletedUnrecorded(const std::string& job) override;
  Status PutCordon(const CordonRow& row) override;
  Status DeleteCordon(const std::string& worker) override;
  Result<std::vector<CordonRow>> LoadCordons() override;
  Status PutAlive(int64_t ms) override;
  Result<int64_t> LoadAlive() override;
  Status AppendNotification(const std::string& target, const std::string& body, int64_t created_ms) override;
  Result<std::vector<NotificationRow>> LoadNotifications(const std::string& target, int64_t after_id,
                                                         size_t limit) override;
  Status UpdateNotification(int64_t id, int attempts, int64_t next_ms, const std::string& last_error) override;
  Result<std::map<std::string, int64_t>> NotificationTargets() override;
  Status DeleteNotificationsOf(const std::string& target, int64_t through_id = INT64_MAX) override;
  Result<NotificationBacklog> Backlog() const override;
  Status PutNotified(const std::string& resource, const std::string& state) override;
  Result<std::map<std::string, std::string>> LoadNotified() override;

  // A copy of the whole database, as this connection reads it, at `path` (SQLite's online
  // backup): where the service's commits are serialized. What a coordinator whose hpo.db was
  // deleted under it saves before it stops (its open connection still reads every record).
  Status CopyTo(const std::string& path);
  // Whether the file at the store's path is still this store's (read straight from its header
  // through a descriptor kept open, no lock taken or dropped; any thread): Ok, or FailedPrecondition naming what it holds now when it was
  // overwritten in place (`cp backup.db hpo.db` under a running coordinator: the same file, so
  // DirectoryLock::StillThere saw nothing, and the commits acknowledged after it went into a
  // store that could not be opened again). Each store has an identity of its own, made at its
  // first open, in SQLite's application_id; a file that is not an SQLite database, or has
  // another store's identity, is not this store. Ok for ":memory:".
  Status StillOwnFile() const;

  // ---- Durability::kDeferred (with kAtCommit, or without a file, these do nothing) -------------
  // A mark that grows with the store's writes: read, where the store is serialized, after
  // writing; MakeDurable(mark) then covers them.
  uint64_t WriteMark();
  // Returns once every write up to `mark` is on disk: at once if an earlier sync covered it, else
  // after one fdatasync of the write-ahead log (and, the first time, of its directory) that began
  // after the mark was taken. Callers that come while a sync runs wait for it and share the next
  // one (group commit). Any thread, at any time, without the store's serialization. A failed
  // sync is final: this call and every later one return IoError (the kernel forgets a write-back
  // error once it has reported it, so a second fdatasync could succeed over lost data).
  Status MakeDurable(uint64_t mark);
  // How many syncs MakeDurable has made, and how many checkpoints after them; the syncs' total
  // and longest time (checkpoints included), for /hpo/v1/metrics. Any thread.
  uint64_t syncs() const { return syncs_.load(); }
  uint64_t checkpoints() const { return checkpoints_.load(); }
  double sync_seconds() const { return static_cast<double>(sync_ns_.load()) / 1e9; }
  double sync_max_seconds() const { return static_cast<double>(sync_max_ns_.load()) / 1e9; }
  // Tests: replaces the fdatasync (a slow disk, a failing one). Set before any MakeDurable.
  void SetSyncForTesting(std::function<Status()> sync) { sync_for_testing_ = std::move(sync); }

 private:
  // After a deletion: freed pages back to the file system (new stores), the WAL truncated.
  void Compact();
  explicit SqliteJobStore(sqlite3* db) : db_(db) {}
  Status Exec(const char* sql);
  Status DeleteAll(std::initializer_list<const char*> sqls, const std::string& name, const char* what);
  Status SyncLog();  // fdatasync of the write-ahead log (MakeDurable's one sync)
  void MaybeCheckpoint();  // after a sync: a passive checkpoint once the log is long
  // Whether the logs table has its ts_ms column (a store opened read-only as an older build
  // left it has not; Open adds it).
  bool LogTimes();
  sqlite3* db_;
  int log_times_ = -1;  // LogTimes' answer once asked: 1 yes, 0 no
  sqlite3* checkpointer_ = nullptr;  // Durability::kDeferred: used only inside MakeDurable's sync
  int depth_ = 0;  // open Begin()s: the outermost is a transaction, inner ones savepoints
  std::string path_;  // the database's path (":memory:" for none); with Durability::kDeferred, checkpointer_ is set
  uint32_t identity_ = 0;      // its application_id (StillOwnFile)
  mutable std::atomic<bool> identity_on_file_{false};  // seen in the file's header once
  // The database file, opened once for StillOwnFile's reads and closed after SQLite's connections:
  // closing any descriptor of a file drops every POSIX lock the process holds on it, SQLite's
  // among them (an open and close per check let the sqlite3 CLI's .backup, the README's, take
  // itself for the only connection and delete the running store's log; a regression pass).
  int header_fd_ = -1;
  std::atomic<uint64_t> marked_{0};  // the highest WriteMark taken
  std::atomic<uint64_t> syncs_{0};
  std::atomic<uint64_t> checkpoints_{0};
  std::atomic<uint64_t> sync_ns_{0}, sync_max_ns_{0};
  std::atomic<int> log_frames_{0};  // frames in the log as of the last commit (its WAL hook)
  std::function<Status()> sync_for_testing_;
  int log_fd_ = -1;  // the write-ahead log, opened by the first sync (only syncs use it)
  std::mutex sync_mu_;  // guards the four below
  std::condition_variable sync_cv_;
  uint64_t durable_ = 0;    // every write up to this mark is on disk
  bool syncing_ = false;    // a sync is running (without sync_mu_)
  Status sync_failed_;      // the first failed sync, returned from then on
};

// Runs `body` inside Begin/Commit; rolls back when it or the commit fails.
template <class F>
Status InTransaction(JobStore* store, F&& body) {
  HPO_RETURN_IF_ERROR(store->Begin());
  Status s = body();
  if (!s.ok()) {
    store->Rollback();
    return s;
  }
  return store->Commit();
}

}  // namespace hpo::coordinator
