#include "coordinator/job_store.h"

#include <fcntl.h>
#include <sqlite3.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <random>

#include "common/file_util.h"

namespace hpo::coordinator {
namespace {

constexpr const char* kSchema = R"sql(
CREATE TABLE IF NOT EXISTS jobs (
  name TEXT PRIMARY KEY COLLATE NOCASE,
  spec_json TEXT NOT NULL, spelling TEXT NOT NULL, metadata_json TEXT NOT NULL,
  status TEXT NOT NULL, failure_reason TEXT NOT NULL, completion_reason TEXT NOT NULL,
  seed INTEGER NOT NULL, creation_ms INTEGER NOT NULL, end_ms INTEGER NOT NULL,
  last_modified_ms INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS trials (
  name TEXT PRIMARY KEY, tuning_job TEXT NOT NULL, idx INTEGER NOT NULL,
  definition_name TEXT NOT NULL, state TEXT NOT NULL, attempt INTEGER NOT NULL,
  worker_id TEXT NOT NULL, creation_ms INTEGER NOT NULL, start_ms INTEGER NOT NULL,
  end_ms INTEGER NOT NULL, failure_reason TEXT NOT NULL, detail_json TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS trials_by_job ON trials(tuning_job, idx);
CREATE TABLE IF NOT EXISTS metrics (
  trial TEXT NOT NULL, attempt INTEGER NOT NULL, seq INTEGER NOT NULL, name TEXT NOT NULL,
  value REAL NOT NULL, timestamp_ms INTEGER NOT NULL, step INTEGER NOT NULL);
CREATE INDEX IF NOT EXISTS metrics_by_trial ON metrics(trial, attempt, seq);
CREATE TABLE IF NOT EXISTS events (
  id INTEGER PRIMARY KEY AUTOINCREMENT, ts_ms INTEGER NOT NULL, kind TEXT NOT NULL,
  job TEXT NOT NULL, trial TEXT NOT NULL, message TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS events_by_job ON events(job COLLATE NOCASE, id);
CREATE TABLE IF NOT EXISTS logs (
  id INTEGER PRIMARY KEY AUTOINCREMENT, trial TEXT NOT NULL, attempt INTEGER NOT NULL,
  line INTEGER NOT NULL, text TEXT NOT NULL, ts_ms INTEGER NOT NULL DEFAULT 0,
  UNIQUE(trial, attempt, line));
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
INSERT OR IGNORE INTO meta(key, value) VALUES ('schema_version', '1');
CREATE TABLE IF NOT EXISTS deleted_trials (name TEXT PRIMARY KEY, tuning_job TEXT NOT NULL);
INSERT OR IGNORE INTO meta(key, value) SELECT 'deleted_trials_from', coalesce(max(id), 0) FROM events;
CREATE TABLE IF NOT EXISTS cordons (worker TEXT PRIMARY KEY, reason TEXT NOT NULL, since_ms INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS notifications (
  id INTEGER PRIMARY KEY AUTOINCREMENT, target TEXT NOT NULL, body TEXT NOT NULL,
  created_ms INTEGER NOT NULL, attempts INTEGER NOT NULL, next_ms INTEGER NOT NULL, last_error TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS notifications_by_target ON notifications(target, id);
CREATE TABLE IF NOT EXISTS notified (resource TEXT PRIMARY KEY, state TEXT NOT NULL);
)sql";

// RAII prepared statement.
class Stmt {
 public:
  Stmt(sqlite3* db, const char* sql) : db_(db) {
    if (sqlite3_prepare_v2(db, sql, -1, &s_, nullptr) != SQLITE_OK) s_ = nullptr;
  }
  ~Stmt() { sqlite3_finalize(s_); }
  bool ok() const { return s_ != nullptr; }
  Stmt& Bind(int i, const std::string& v) {
    sqlite3_bind_text(s_, i, v.data(), static_cast<int>(v.size()), SQLITE_TRANSIENT);
    return *this;
  }
  Stmt& Bind(int i, int64_t v) {
    sqlite3_bind_int64(s_, i, v);
    return *this;
  }
  Stmt& Bind(int i, double v) {
    sqlite3_bind_double(s_, i, v);
    return *this;
  }
  int Step() { return sqlite3_step(s_); }
  void Reset() {
    sqlite3_reset(s_);
    sqlite3_clear_bindings(s_);
  }
  std::string Text(int i) {
    const unsigned char* t = sqlite3_column_text(s_, i);
    return t ? std::string(reinterpret_cast<const char*>(t), sqlite3_column_bytes(s_, i)) : std::string();
  }
  int64_t Int(int i) { return sqlite3_column_int64(s_, i); }
  double Real(int i) { return sqlite3_column_double(s_, i); }
  Status Error(const char* what) const {
    return Status::IoError(std::string("job store: ") + what + ": " + sqlite3_errmsg(db_));
  }

 private:
  sqlite3* db_;
  sqlite3_stmt* s_ = nullptr;
};

}  // namespace

namespace {
// Durability::kDeferred: the log's length (frames: pages of 4 KiB) at which MakeDurable's side
// checkpoints, and at which a commit does so itself (SQLite's default is 1,000 at the commit).
constexpr int kCheckpointFrames = 1000;
constexpr int kBackstopCheckpointFrames = 16384;

// One connection to `target` (a path or a file: URI naming `path`), waiting up to 5 s for locks.
Result<sqlite3*> OpenConnection(const std::string& target, const std::string& path, int flags, const char* how) {
  sqlite3* db = nullptr;
  // A new store is its owner's only (0600): it holds every spec, with its Environment's secrets,
  // and the training logs. SQLite gives the -wal and -shm files the database file's mode.
  if ((flags & SQLITE_OPEN_CREATE) && !path.empty() && path != ":memory:") {
    if (int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600); fd >= 0) ::close(fd);
  }
  if (int rc = sqlite3_open_v2(target.c_str(), &db, flags, nullptr); rc != SQLITE_OK) {
    std::string msg = db ? sqlite3_errmsg(db) : "out of memory";
    sqlite3_close(db);
    return Status::IoError("cannot open job store " + path + how + ": " + msg);
  }
  sqlite3_busy_timeout(db, 5000);
  return db;
}
}  // namespace

Result<std::unique_ptr<SqliteJobStore>> SqliteJobStore::Open(const std::string& path, bool check_integrity,
                                                             Durability durability) {
  if (path != ":memory:") {
    // After a crash most of what was committed may be in the write-ahead log alone (checkpoints
    // wait for kCheckpointFrames). With the database file gone or emptied beside it, SQLite
    // would start an empty store and drop the log with every job in it. A store's file has its
    // header (one page) before its log holds anything, so this is never a store being made.
    struct stat db_st {}, wal_st {};
    const bool db_there = ::stat(path.c_str(), &db_st) == 0;
    if ((!db_there || db_st.st_size == 0) && ::stat((path + "-wal").c_str(), &wal_st) == 0 && wal_st.st_size > 0) {
      return Status::FailedPrecondition(
          "the job store " + path + (db_there ? " is empty" : " is missing") + ", but its write-ahead log " + path +
          "-wal holds " + std::to_string(wal_st.st_size) +
          " bytes of records: both were left unchanged. Restore " + path +
          " from a backup (the -wal file beside it), or move " + path + "-wal aside to start with an empty store");
    }
  }
  auto opened = OpenConnection(path, path, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX, "");
  if (!opened.ok()) return opened.status();
  sqlite3* db = *opened;
  std::unique_ptr<SqliteJobStore> store(new SqliteJobStore(db));
  store->path_ = path;
  if (check_integrity && path != ":memory:") {
    Stmt q(db, "PRAGMA quick_check");
    std::string problems;
    if (!q.ok()) {
      problems = sqlite3_errmsg(db);
    } else {
      int rc = SQLITE_ROW;
      for (int n = 0; n < 3 && (rc = q.Step()) == SQLITE_ROW;) {
        const std::string line = q.Text(0);
        if (line == "ok") break;
        problems += (problems.empty() ? "" : "; ") + line;
        ++n;
      }
      if (rc != SQLITE_ROW && rc != SQLITE_DONE) problems += (problems.empty() ? "" : "; ") + std::string(sqlite3_errmsg(db));
    }
    if (!problems.empty()) {
      return Status::FailedPrecondition(
          "the job store " + path + " is damaged (SQLite: " + problems +
          "); restore it from a backup, or move it aside (with its -wal file) to start with an empty one");
    }
  }
  {
    // Someone else's SQLite file in hpo.db's place: refused, and not written to. A store of ours
    // has its meta row from the start (the schema is created in one transaction below), so
    // tables without it are not ours.
    Stmt t(db, "SELECT name FROM sqlite_master WHERE type='table' AND name NOT LIKE 'sqlite_%' ORDER BY name");
    std::string tables;
    bool meta = false;
    for (int n = 0; t.ok() && t.Step() == SQLITE_ROW; ++n) {
      const std::string name = t.Text(0);
      meta = meta || name == "meta";
      if (n < 8) tables += (tables.empty() ? "" : ", ") + name;
    }
    if (!tables.empty() && !meta) {
      return Status::FailedPrecondition("the file " + path + " is an SQLite database but not an hpo job store (its tables: " +
                                        tables + "); it was left unchanged: move it aside, or give another --state-dir");
    }
  }
  // A new store gives freed pages back to the file system (DeleteJob, DeleteTrial): set before
  // its first table exists, so only new stores; an older one is compacted by hand (README).
  bool empty = true;
  {
    Stmt t(db, "SELECT count(*) FROM sqlite_master");
    empty = t.ok() && t.Step() == SQLITE_ROW && t.Int(0) == 0;
  }
  if (empty) HPO_RETURN_IF_ERROR(store->Exec("PRAGMA auto_vacuum=INCREMENTAL"));
  if (path != ":memory:") {
    HPO_RETURN_IF_ERROR(store->Exec("PRAGMA journal_mode=WAL"));
  }
  const bool deferred = durability == Durability::kDeferred && path != ":memory:";
  HPO_RETURN_IF_ERROR(store->Exec(deferred ? "PRAGMA synchronous=NORMAL" : "PRAGMA synchronous=FULL"));
  if (deferred) {
    // Checkpoints move to MakeDurable's side (MaybeCheckpoint): the hook (which replaces
    // SQLite's automatic checkpoint) notes the log's length at each commit and checkpoints there
    // only as a backstop.
    sqlite3_wal_hook(
        db,
        [](void* self, sqlite3* conn, const char* name, int frames) {
          static_cast<SqliteJobStore*>(self)->log_frames_.store(frames);
          if (frames >= kBackstopCheckpointFrames) {
            (void)sqlite3_wal_checkpoint_v2(conn, name, SQLITE_CHECKPOINT_PASSIVE, nullptr, nullptr);
          }
          return SQLITE_OK;
        },
        store.get());
    auto second = OpenConnection(path, path, SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX, " for checkpoints");
    if (!second.ok()) return second.status();
    store->checkpointer_ = *second;
    // A connection that has read nothing does not know the file is in WAL mode, and its
    // checkpoints do nothing (they report -1 frames).
    if (sqlite3_exec(store->checkpointer_, "SELECT count(*) FROM sqlite_master", nullptr, nullptr, nullptr) != SQLITE_OK) {
      return Status::IoError("cannot read job store " + path + " for checkpoints: " + sqlite3_errmsg(store->checkpointer_));
    }
  }
  HPO_RETURN_IF_ERROR(store->Exec((std::string("BEGIN IMMEDIATE;") + kSchema + "COMMIT;").c_str()));
  // A store an older build made keeps no times with its log lines: the column is added (its lines
  // read as time 0, which readers take as unknown).
  if (!store->LogTimes()) {
    HPO_RETURN_IF_ERROR(store->Exec("ALTER TABLE logs ADD COLUMN ts_ms INTEGER NOT NULL DEFAULT 0"));
    store->log_times_ = 1;
  }
  {
    Stmt v(db, "SELECT value FROM meta WHERE key='schema_version'");
    if (!v.ok() || v.Step() != SQLITE_ROW) return v.Error("reading schema version");
    if (v.Text(0) != "1") {
      return Status::FailedPrecondition("job store " + path + " has schema version " + v.Text(0) +
                                        "; this build reads version 1");
    }
  }
  if (path != ":memory:") {  // its identity (StillOwnFile): made at the first open, by this build or a later one
    {
      Stmt id(db, "PRAGMA application_id");  // (finalized before the writes: open, it held the checkpoint off)
      if (!id.ok() || id.Step() != SQLITE_ROW) return id.Error("reading the store's identity");
      store->identity_ = static_cast<uint32_t>(id.Int(0));
    }
    store->header_fd_ = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);  // kept open: see header_fd_
    if (store->identity_ == 0) {
      std::random_device rd;
      while (store->identity_ == 0) store->identity_ = static_cast<uint32_t>(rd());
      HPO_RETURN_IF_ERROR(
          store->Exec(("PRAGMA application_id=" + std::to_string(static_cast<int32_t>(store->identity_))).c_str()));
    }
    // The log copied into the file and emptied, as nothing else reads the store yet: the identity
    // reaches the file's header now, not hours later, and no frames of an earlier process's log
    // stay past the new one's end, where LogDamage, after the next crash, took frames SQLite had
    // rightly dropped at this open for a damage (a regression pass: every later kill -9 warned).
    (void)store->Exec("PRAGMA wal_checkpoint(TRUNCATE)");
  }
  return store;
}

Result<std::unique_ptr<SqliteJobStore>> SqliteJobStore::OpenReadOnly(const std::string& path) {
  // No write-ahead log beside it: no writer has it open (one that closes removes the log), so it
  // is read as an immutable file, and SQLite leaves no -wal/-shm files behind. With a log (a
  // coordinator running, or one that crashed), a plain read-only connection reads through it.
  std::error_code ec;
  const bool quiet = !std::filesystem::exists(path + "-wal", ec) && !ec;
  std::string uri = "file:";
  for (char c : path) {
    if (c == '%' || c == '?' || c == '#') {
      char hex[4];
      std::snprintf(hex, sizeof hex, "%%%02X", static_cast<unsigned char>(c));
      uri += hex;
    } else {
      uri += c;
    }
  }
  uri += quiet ? "?immutable=1" : "?mode=ro";
  auto opened = OpenConnection(uri, path, SQLITE_OPEN_READONLY | SQLITE_OPEN_NOMUTEX | SQLITE_OPEN_URI, " for reading");
  if (!opened.ok()) return opened.status();
  sqlite3* db = *opened;
  std::unique_ptr<SqliteJobStore> store(new SqliteJobStore(db));
  Stmt v(db, "SELECT value FROM meta WHERE key='schema_version'");
  if (!v.ok() || v.Step() != SQLITE_ROW) {
    return Status::IoError("cannot read job store " + path + ": " + sqlite3_errmsg(db) +
                           " (is it a state directory's hpo.db?)");
  }
  if (v.Text(0) != "1") {
    return Status::FailedPrecondition("job store " + path + " has schema version " + v.Text(0) +
                                      "; this build reads version 1");
  }
  return store;
}

SqliteJobStore::~SqliteJobStore() {
  if (log_fd_ >= 0) ::close(log_fd_);
  if (checkpointer_) sqlite3_close(checkpointer_);
  sqlite3_close(db_);  // the last connection: checkpoints and removes the log
  if (header_fd_ >= 0) ::close(header_fd_);  // after SQLite's: closing it drops the process's locks on the file
}

Status SqliteJobStore::Exec(const char* sql) {
  char* err = nullptr;
  if (sqlite3_exec(db_, sql, nullptr, nullptr, &err) != SQLITE_OK) {
    std::string msg = err ? err : "unknown error";
    sqlite3_free(err);
    return Status::IoError(std::string("job store: ") + msg);
  }
  return Status::Ok();
}

// Transactions nest: the outermost is a real transaction (one commit, one fsync), inner ones are
// savepoints, so an inner rollback undoes only its own writes.
Status SqliteJobStore::Begin() {
  if (depth_ == 0) {
    HPO_RETURN_IF_ERROR(Exec("BEGIN IMMEDIATE"));
  } else {
    HPO_RETURN_IF_ERROR(Exec(("SAVEPOINT s" + std::to_string(depth_)).c_str()));
  }
  ++depth_;
  return Status::Ok();
}

Status SqliteJobStore::Commit() {
  HPO_CHECK(depth_ > 0);
  --depth_;
  if (depth_ > 0) return Exec(("RELEASE s" + std::to_string(depth_)).c_str());
  Status s = Exec("COMMIT");
  if (!s.ok()) Exec("ROLLBACK").ok();
  return s;
}

std::string SqliteJobStore::LogDamage(const std::string& path) {
  const std::string wal = path + "-wal";
  auto bytes = ReadFile(wal, uint64_t{1} << 30);
  if (!bytes.ok() || bytes->size() <= 32) return "";
  const std::string& b = *bytes;
  auto be32 = [&](size_t at) {
    return (uint32_t{static_cast<unsigned char>(b[at])} << 24) | (uint32_t{static_cast<unsigned char>(b[at + 1])} << 16) |
           (uint32_t{static_cast<unsigned char>(b[at + 2])} << 8) | uint32_t{static_cast<unsigned char>(b[at + 3])};
  };
  const uint32_t magic = be32(0);
  if (magic != 0x377f0682 && magic != 0x377f0683) return wal + "'s header is damaged (no write-ahead log magic): "
                                                        "SQLite drops the whole log";
  const bool big_endian = magic == 0x377f0683;
  // SQLite's checksum: pairs of 32-bit words (in the byte order the magic names), cumulative.
  auto checksum = [&](size_t at, size_t n, uint32_t& s0, uint32_t& s1) {
    for (size_t i = at; i + 8 <= at + n; i += 8) {
      uint32_t x0, x1;
      if (big_endian) {
        x0 = be32(i);
        x1 = be32(i + 4);
      } else {
        std::memcpy(&x0, b.data() + i, 4);
        std::memcpy(&x1, b.data() + i + 4, 4);
      }
      s0 += x0 + s1;
      s1 += x1 + s0;
    }
  };
  uint32_t s0 = 0, s1 = 0;
  checksum(0, 24, s0, s1);
  if (s0 != be32(24) || s1 != be32(28)) return wal + "'s header fails its checksum: SQLite drops the whole log";
  const uint32_t page = be32(8);
  if (page < 512 || page > 65536 || (page & (page - 1)) != 0) return "";
  const uint32_t salt1 = be32(16), salt2 = be32(20);
  const size_t frame = 24 + size_t{page};
  const size_t frames = (b.size() - 32) / frame;
  auto at = [&](size_t i) { return 32 + i * frame; };
  auto current = [&](size_t i) { return be32(at(i) + 8) == salt1 && be32(at(i) + 12) == salt2; };
  // Whether frame i validates, its checksum chained from (c0, c1).
  auto valid = [&](size_t i, uint32_t c0, uint32_t c1) {
    if (!current(i)) return false;
    checksum(at(i), 8, c0, c1);
    checksum(at(i) + 24, page, c0, c1);
    return c0 == be32(at(i) + 16) && c1 == be32(at(i) + 20);
  };
  size_t bad = frames;
  for (size_t i = 0; i < frames; ++i) {
    if (!valid(i, s0, s1)) {
      bad = i;
      break;
    }
    s0 = be32(at(i) + 16);
    s1 = be32(at(i) + 20);
  }
  if (bad >= frames || !current(bad)) return "";  // whole, or the rest is an earlier generation's
  // Frames after the bad one that validate from the stored checksum of the frame before them:
  // records SQLite will drop although they are whole.
  size_t whole_after = 0;
  for (size_t i = bad + 1; i < frames; ++i) {
    whole_after += valid(i, be32(at(i - 1) + 16), be32(at(i - 1) + 20));
  }
  if (whole_after == 0) return "";  // a tail cut by a crash
  return wal + "'s frame " + std::to_string(bad + 1) + " of " + std::to_string(frames) + " (byte " +
         std::to_string(at(bad)) + ") is damaged, and " + std::to_string(whole_after) +
         " whole frame(s) of the log follow it: SQLite keeps the records before it and drops those after";
}

Status SqliteJobStore::StillOwnFile() const {
  if (header_fd_ < 0 || identity_ == 0) return Status::Ok();
  // (Gone or replaced by another file, the descriptor still reads the old one: DirectoryLock::
  // StillThere's to say.)
  unsigned char header[100] = {0};
  const ssize_t n = ::pread(header_fd_, header, sizeof header, 0);
  if (n < 0) return Status::Ok();  // cannot tell: not a verdict
  const std::string what = path_ + " was overwritten in place while in use";
  if (n < static_cast<ssize_t>(sizeof header)) {
    return Status::FailedPrecondition(what + ": it was cut to " + std::to_string(n) +
                                      " bytes (a copy over it under way?)");
  }
  if (std::memcmp(header, "SQLite format 3", 16) != 0) {
    return Status::FailedPrecondition(what + ": it is no longer an SQLite database");
  }
  // application_id, big-endian at offset 68: this store's, or 0 until the first checkpoint after
  // the identity was made (it reaches the file then).
  const uint32_t id = (uint32_t{header[68]} << 24) | (uint32_t{header[69]} << 16) | (uint32_t{header[70]} << 8) |
                      uint32_t{header[71]};
  if (id == identity_) {
    identity_on_file_.store(true);
  } else if (id != 0 || identity_on_file_.load()) {
    return Status::FailedPrecondition(what + ": it now holds another store");
  }
  return Status::Ok();
}

Status SqliteJobStore::CopyTo(const std::string& path) {
  sqlite3* dest = nullptr;
  // The copy holds what the store holds (specs with their secrets): its owner's only, as the store.
  if (int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600); fd >= 0) ::close(fd);
  if (sqlite3_open_v2(path.c_str(), &dest, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, nullptr) != SQLITE_OK) {
    const std::string why = dest ? sqlite3_errmsg(dest) : "out of memory";
    sqlite3_close(dest);
    return Status::IoError("cannot create " + path + ": " + why);
  }
  sqlite3_backup* b = sqlite3_backup_init(dest, "main", db_, "main");
  int rc = SQLITE_ERROR;
  if (b) {
    rc = sqlite3_backup_step(b, -1);
    sqlite3_backup_finish(b);
  }
  const std::string why = sqlite3_errmsg(dest);
  sqlite3_close(dest);
  if (rc != SQLITE_DONE) return Status::IoError("cannot copy the database to " + path + ": " + why);
  return Status::Ok();
}

uint64_t SqliteJobStore::WriteMark() {
  if (!checkpointer_) return 0;  // (not deferred)
  // Rows written by this connection since it opened: grows with every write that reaches the log.
  const auto mark = static_cast<uint64_t>(sqlite3_total_changes64(db_));
  uint64_t seen = marked_.load();
  while (seen < mark && !marked_.compare_exchange_weak(seen, mark)) {
  }
  return mark;
}

Status SqliteJobStore::MakeDurable(uint64_t mark) {
  if (!checkpointer_ || mark == 0) return Status::Ok();
  std::unique_lock<std::mutex> lock(sync_mu_);
  for (;;) {
    if (!sync_failed_.ok()) return sync_failed_;
    if (durable_ >= mark) return Status::Ok();
    if (!syncing_) {
      // Every write marked by now has reached the log (marks are taken after writing), so the
      // sync about to begin covers them all, not only this caller's.
      const uint64_t covers = marked_.load();
      syncing_ = true;
      lock.unlock();
      const auto began = std::chrono::steady_clock::now();
      Status s = sync_for_testing_ ? sync_for_testing_() : SyncLog();
      if (s.ok()) MaybeCheckpoint();
      const auto took = static_cast<uint64_t>(
          std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::steady_clock::now() - began).count());
      sync_ns_ += took;
      if (took > sync_max_ns_.load()) sync_max_ns_.store(took);  // one sync at a time: no race
      lock.lock();
      syncing_ = false;
      ++syncs_;
      if (s.ok()) {
        durable_ = std::max(durable_, covers);
      } else {
        sync_failed_ = Status::IoError("the state database's write-ahead log could not be made durable (" +
                                       s.message() + "); what was written since the last sync may not be on disk");
      }
      sync_cv_.notify_all();
      continue;
    }
    sync_cv_.wait(lock);
  }
}

void SqliteJobStore::MaybeCheckpoint() {
  // Passive: copies what no reader still needs and never waits for the writer, which goes on
  // committing meanwhile; the writer starts the log over once a checkpoint has copied all of it.
  // Best effort: a checkpoint that cannot run now runs after a later sync, and the commits are
  // durable in the log whatever happens here.
  if (checkpointer_ == nullptr || log_frames_.load() < kCheckpointFrames) return;
  int log_frames = 0, copied = 0;
  if (sqlite3_wal_checkpoint_v2(checkpointer_, "main", SQLITE_CHECKPOINT_PASSIVE, &log_frames, &copied) == SQLITE_OK &&
      log_frames >= 0) {
    ++checkpoints_;
    // All of it copied: nothing to do until the log grows again (the next commit says how long).
    if (copied >= log_frames) log_frames_.store(0);
  }
}

Status SqliteJobStore::SyncLog() {
  // The log is opened once and kept: SQLite removes it only when its last connection closes,
  // and the checkpointer's stays open as long as this store (a checkpoint that truncates the log
  // keeps the file).
  const std::string log = path_ + "-wal";
  const bool first = log_fd_ < 0;
  if (first) {
    log_fd_ = ::open(log.c_str(), O_RDONLY | O_CLOEXEC);
    // No log: SQLite checkpointed it into the database (syncing both) and removed it.
    if (log_fd_ < 0) return errno == ENOENT ? Status::Ok() : Status::IoError("open " + log + ": " + std::strerror(errno));
  }
  int rc;
  do {
    rc = ::fdatasync(log_fd_);
  } while (rc != 0 && errno == EINTR);
  if (rc != 0) return Status::IoError("fdatasync " + log + ": " + std::strerror(errno));
  if (first) {
    // The log's name in the directory must be on disk too (SQLite syncs the directory when it
    // creates the log with synchronous=FULL).
    std::string dir = std::filesystem::path(path_).parent_path().string();
    if (dir.empty()) dir = ".";
    const int dfd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dfd < 0) return Status::IoError("open " + dir + ": " + std::strerror(errno));
    const int drc = ::fsync(dfd);
    const int derr = errno;
    ::close(dfd);
    if (drc != 0) return Status::IoError("fsync " + dir + ": " + std::strerror(derr));
  }
  return Status::Ok();
}

void SqliteJobStore::Rollback() {
  if (depth_ == 0) return;
  --depth_;
  if (depth_ > 0) {
    const std::string sp = "s" + std::to_string(depth_);
    (void)Exec(("ROLLBACK TO " + sp).c_str());
    (void)Exec(("RELEASE " + sp).c_str());
  } else {
    (void)Exec("ROLLBACK");
  }
}

Status SqliteJobStore::PutJob(const JobRow& r) {
  Stmt s(db_,
         "INSERT OR REPLACE INTO jobs(name, spec_json, spelling, metadata_json, status, failure_reason, "
         "completion_reason, seed, creation_ms, end_ms, last_modified_ms) VALUES(?,?,?,?,?,?,?,?,?,?,?)");
  if (!s.ok()) return s.Error("preparing job write");
  s.Bind(1, r.name).Bind(2, r.spec_json).Bind(3, r.spelling).Bind(4, r.metadata_json).Bind(5, r.status);
  s.Bind(6, r.failure_reason).Bind(7, r.completion_reason).Bind(8, static_cast<int64_t>(r.seed));
  s.Bind(9, r.creation_ms).Bind(10, r.end_ms).Bind(11, r.last_modified_ms);
  if (s.Step() != SQLITE_DONE) return s.Error("writing job");
  return Status::Ok();
}

Status SqliteJobStore::PutTrial(const TrialRow& r) {
  Stmt s(db_,
         "INSERT OR REPLACE INTO trials(name, tuning_job, idx, definition_name, state, attempt, worker_id, "
         "creation_ms, start_ms, end_ms, failure_reason, detail_json) VALUES(?,?,?,?,?,?,?,?,?,?,?,?)");
  if (!s.ok()) return s.Error("preparing trial write");
  s.Bind(1, r.name).Bind(2, r.tuning_job).Bind(3, static_cast<int64_t>(r.index)).Bind(4, r.definition_name);
  s.Bind(5, r.state).Bind(6, static_cast<int64_t>(r.attempt)).Bind(7, r.worker_id).Bind(8, r.creation_ms);
  s.Bind(9, r.start_ms).Bind(10, r.end_ms).Bind(11, r.failure_reason).Bind(12, r.detail_json);
  if (s.Step() != SQLITE_DONE) return s.Error("writing trial");
  return Status::Ok();
}

Status SqliteJobStore::AppendMetrics(const std::vector<MetricRow>& rows) {
  Stmt s(db_, "INSERT INTO metrics(trial, attempt, seq, name, value, timestamp_ms, step) VALUES(?,?,?,?,?,?,?)");
  if (!s.ok()) return s.Error("preparing metric write");
  for (const auto& r : rows) {
    s.Reset();
    s.Bind(1, r.trial).Bind(2, static_cast<int64_t>(r.attempt)).Bind(3, static_cast<int64_t>(r.seq));
    s.Bind(4, r.name).Bind(5, r.value).Bind(6, r.timestamp_ms).Bind(7, static_cast<int64_t>(r.step));
    if (s.Step() != SQLITE_DONE) return s.Error("writing metric");
  }
  return Status::Ok();
}

Status SqliteJobStore::AppendEvent(int64_t ts_ms, const std::string& kind, const std::string& job,
                                   const std::string& trial, const std::string& message) {
  Stmt s(db_, "INSERT INTO events(ts_ms, kind, job, trial, message) VALUES(?,?,?,?,?)");
  if (!s.ok()) return s.Error("preparing event write");
  s.Bind(1, ts_ms).Bind(2, kind).Bind(3, job).Bind(4, trial).Bind(5, message);
  if (s.Step() != SQLITE_DONE) return s.Error("writing event");
  return Status::Ok();
}

Status SqliteJobStore::PutCordon(const CordonRow& row) {
  Stmt s(db_, "INSERT OR REPLACE INTO cordons(worker, reason, since_ms) VALUES(?,?,?)");
  if (!s.ok()) return s.Error("preparing cordon write");
  s.Bind(1, row.worker).Bind(2, row.reason).Bind(3, row.since_ms);
  if (s.Step() != SQLITE_DONE) return s.Error("writing cordon");
  return Status::Ok();
}

Status SqliteJobStore::DeleteCordon(const std::string& worker) {
  Stmt s(db_, "DELETE FROM cordons WHERE worker = ?");
  if (!s.ok()) return s.Error("preparing cordon removal");
  s.Bind(1, worker);
  if (s.Step() != SQLITE_DONE) return s.Error("removing cordon");
  return Status::Ok();
}

Result<std::vector<CordonRow>> SqliteJobStore::LoadCordons() {
  // A read-only store of an older hpo has no such table: no cordons.
  Stmt s(db_, "SELECT worker, reason, since_ms FROM cordons ORDER BY worker");
  if (!s.ok()) return std::vector<CordonRow>{};
  std::vector<CordonRow> out;
  int rc;
  while ((rc = s.Step()) == SQLITE_ROW) out.push_back({s.Text(0), s.Text(1), s.Int(2)});
  if (rc != SQLITE_DONE) return s.Error("reading cordons");
  return out;
}

Status SqliteJobStore::AppendNotification(const std::string& target, const std::string& body, int64_t created_ms) {
  Stmt s(db_, "INSERT INTO notifications(target, body, created_ms, attempts, next_ms, last_error) VALUES(?,?,?,0,0,'')");
  if (!s.ok()) return s.Error("preparing a notification's write");
  s.Bind(1, target).Bind(2, body).Bind(3, created_ms);
  if (s.Step() != SQLITE_DONE) return s.Error("writing a notification");
  return Status::Ok();
}

Result<std::vector<NotificationRow>> SqliteJobStore::LoadNotifications(const std::string& target, int64_t after_id,
                                                                       size_t limit) {
  // A read-only store of an older hpo has no such table: nothing waits.
  Stmt s(db_,
         "SELECT id, target, body, created_ms, attempts, next_ms, last_error FROM notifications WHERE id > ?1 "
         "AND (?2 = '' OR target = ?2) ORDER BY id LIMIT ?3");
  if (!s.ok()) return std::vector<NotificationRow>{};
  s.Bind(1, after_id).Bind(2, target).Bind(3, static_cast<int64_t>(limit));
  std::vector<NotificationRow> out;
  int rc;
  while ((rc = s.Step()) == SQLITE_ROW) {
    out.push_back({s.Int(0), s.Text(1), s.Text(2), s.Int(3), static_cast<int>(s.Int(4)), s.Int(5), s.Text(6)});
  }
  if (rc != SQLITE_DONE) return s.Error("reading notifications");
  return out;
}

Status SqliteJobStore::UpdateNotification(int64_t id, int attempts, int64_t next_ms, const std::string& last_error) {
  Stmt s(db_, "UPDATE notifications SET attempts=?, next_ms=?, last_error=? WHERE id=?");
  if (!s.ok()) return s.Error("preparing a notification's update");
  s.Bind(1, static_cast<int64_t>(attempts)).Bind(2, next_ms).Bind(3, last_error).Bind(4, id);
  if (s.Step() != SQLITE_DONE) return s.Error("updating a notification");
  return Status::Ok();
}

Result<std::map<std::string, int64_t>> SqliteJobStore::NotificationTargets() {
  Stmt s(db_, "SELECT target, count(*) FROM notifications GROUP BY target");
  if (!s.ok()) return std::map<std::string, int64_t>{};
  std::map<std::string, int64_t> out;
  int rc;
  while ((rc = s.Step()) == SQLITE_ROW) out[s.Text(0)] = s.Int(1);
  if (rc != SQLITE_DONE) return s.Error("reading notification targets");
  return out;
}

Status SqliteJobStore::DeleteNotificationsOf(const std::string& target, int64_t through_id) {
  Stmt s(db_, "DELETE FROM notifications WHERE target=? AND id<=?");
  if (!s.ok()) return s.Error("preparing the removal of a target's notifications");
  s.Bind(1, target).Bind(2, through_id);
  if (s.Step() != SQLITE_DONE) return s.Error("removing a target's notifications");
  return Status::Ok();
}

Result<JobStore::NotificationBacklog> SqliteJobStore::Backlog() const {
  Stmt s(db_, "SELECT count(*), coalesce(min(created_ms), 0) FROM notifications");
  if (!s.ok()) return NotificationBacklog{};
  if (s.Step() != SQLITE_ROW) return s.Error("counting notifications");
  return NotificationBacklog{s.Int(0), s.Int(1)};
}

Status SqliteJobStore::PutNotified(const std::string& resource, const std::string& state) {
  Stmt s(db_, "INSERT OR REPLACE INTO notified(resource, state) VALUES(?,?)");
  if (!s.ok()) return s.Error("preparing a notified state's write");
  s.Bind(1, resource).Bind(2, state);
  if (s.Step() != SQLITE_DONE) return s.Error("writing a notified state");
  return Status::Ok();
}

Result<std::map<std::string, std::string>> SqliteJobStore::LoadNotified() {
  Stmt s(db_, "SELECT resource, state FROM notified");
  if (!s.ok()) return std::map<std::string, std::string>{};
  std::map<std::string, std::string> out;
  int rc;
  while ((rc = s.Step()) == SQLITE_ROW) out[s.Text(0)] = s.Text(1);
  if (rc != SQLITE_DONE) return s.Error("reading notified states");
  return out;
}

Status SqliteJobStore::PutAlive(int64_t ms) {
  Stmt s(db_, "INSERT OR REPLACE INTO meta(key, value) VALUES ('alive_ms', ?)");
  if (!s.ok()) return s.Error("preparing the coordinator's sign of life");
  s.Bind(1, std::to_string(ms));
  if (s.Step() != SQLITE_DONE) return s.Error("writing the coordinator's sign of life");
  return Status::Ok();
}

Result<int64_t> SqliteJobStore::LoadAlive() {
  Stmt s(db_, "SELECT CAST(value AS INTEGER) FROM meta WHERE key = 'alive_ms'");
  if (!s.ok()) return int64_t{0};  // a read-only store of an older hpo
  const int rc = s.Step();
  if (rc == SQLITE_ROW) return s.Int(0);
  if (rc != SQLITE_DONE) return s.Error("reading the coordinator's sign of life");
  return int64_t{0};
}

Result<std::vector<JobRow>> SqliteJobStore::LoadJobs() {
  Stmt s(db_,
         "SELECT name, spec_json, spelling, metadata_json, status, failure_reason, completion_reason, seed, "
         "creation_ms, end_ms, last_modified_ms FROM jobs ORDER BY creation_ms, name");
  if (!s.ok()) return s.Error("preparing job read");
  std::vector<JobRow> out;
  int rc;
  while ((rc = s.Step()) == SQLITE_ROW) {
    JobRow r;
    r.name = s.Text(0);
    r.spec_json = s.Text(1);
    r.spelling = s.Text(2);
    r.metadata_json = s.Text(3);
    r.status = s.Text(4);
    r.failure_reason = s.Text(5);
    r.completion_reason = s.Text(6);
    r.seed = static_cast<uint64_t>(s.Int(7));
    r.creation_ms = s.Int(8);
    r.end_ms = s.Int(9);
    r.last_modified_ms = s.Int(10);
    out.push_back(std::move(r));
  }
  if (rc != SQLITE_DONE) return s.Error("reading jobs");
  return out;
}

Result<std::vector<TrialRow>> SqliteJobStore::LoadTrials() {
  Stmt s(db_,
         "SELECT name, tuning_job, idx, definition_name, state, attempt, worker_id, creation_ms, start_ms, "
         "end_ms, failure_reason, detail_json FROM trials ORDER BY tuning_job, idx");
  if (!s.ok()) return s.Error("preparing trial read");
  std::vector<TrialRow> out;
  int rc;
  while ((rc = s.Step()) == SQLITE_ROW) {
    TrialRow r;
    r.name = s.Text(0);
    r.tuning_job = s.Text(1);
    r.index = static_cast<int>(s.Int(2));
    r.definition_name = s.Text(3);
    r.state = s.Text(4);
    r.attempt = static_cast<uint32_t>(s.Int(5));
    r.worker_id = s.Text(6);
    r.creation_ms = s.Int(7);
    r.start_ms = s.Int(8);
    r.end_ms = s.Int(9);
    r.failure_reason = s.Text(10);
    r.detail_json = s.Text(11);
    out.push_back(std::move(r));
  }
  if (rc != SQLITE_DONE) return s.Error("reading trials");
  return out;
}

Result<std::vector<MetricRow>> SqliteJobStore::LoadMetrics(const std::string& trial) {
  Stmt s(db_,
         "SELECT trial, attempt, seq, name, value, timestamp_ms, step FROM metrics WHERE trial=? "
         "ORDER BY attempt, seq, rowid");
  if (!s.ok()) return s.Error("preparing metric read");
  s.Bind(1, trial);
  std::vector<MetricRow> out;
  int rc;
  while ((rc = s.Step()) == SQLITE_ROW) {
    MetricRow r;
    r.trial = s.Text(0);
    r.attempt = static_cast<uint32_t>(s.Int(1));
    r.seq = static_cast<uint64_t>(s.Int(2));
    r.name = s.Text(3);
    r.value = s.Real(4);
    r.timestamp_ms = s.Int(5);
    r.step = static_cast<uint32_t>(s.Int(6));
    out.push_back(std::move(r));
  }
  if (rc != SQLITE_DONE) return s.Error("reading metrics");
  return out;
}

Result<std::vector<double>> SqliteJobStore::LoadMetricValues(const std::string& trial, uint32_t attempt,
                                                             const std::string& name) {
  // metrics_by_trial (trial, attempt, seq) gives the attempt's rows in order; the name is
  // checked on those alone.
  Stmt s(db_, "SELECT value FROM metrics WHERE trial=? AND attempt=? AND name=? ORDER BY seq, rowid");
  if (!s.ok()) return s.Error("preparing metric read");
  s.Bind(1, trial).Bind(2, static_cast<int64_t>(attempt)).Bind(3, name);
  std::vector<double> out;
  int rc;
  while ((rc = s.Step()) == SQLITE_ROW) out.push_back(s.Real(0));
  if (rc != SQLITE_DONE) return s.Error("reading metrics");
  return out;
}

bool SqliteJobStore::LogTimes() {
  if (log_times_ < 0) {
    Stmt s(db_, "SELECT count(*) FROM pragma_table_info('logs') WHERE name='ts_ms'");
    log_times_ = s.ok() && s.Step() == SQLITE_ROW && s.Int(0) > 0 ? 1 : 0;
  }
  return log_times_ == 1;
}

Status SqliteJobStore::AppendLogs(const std::vector<LogRow>& rows) {
  Stmt s(db_, "INSERT OR IGNORE INTO logs(trial, attempt, line, text, ts_ms) VALUES(?,?,?,?,?)");
  if (!s.ok()) return s.Error("preparing log write");
  for (const auto& r : rows) {
    s.Reset();
    s.Bind(1, r.trial).Bind(2, static_cast<int64_t>(r.attempt)).Bind(3, static_cast<int64_t>(r.line)).Bind(4, r.text);
    s.Bind(5, r.ts_ms);
    if (s.Step() != SQLITE_DONE) return s.Error("writing log line");
  }
  return Status::Ok();
}

namespace {
// The columns LogRow reads, ts_ms as 0 where the store keeps none.
std::string LogColumns(bool times) {
  return std::string("id, trial, attempt, line, text, ") + (times ? "ts_ms" : "0");
}
LogRow ReadLogRow(Stmt& s) {
  return {s.Int(0), s.Text(1), static_cast<uint32_t>(s.Int(2)), static_cast<uint64_t>(s.Int(3)), s.Text(4), s.Int(5)};
}
}  // namespace

Result<std::vector<LogStreamRow>> SqliteJobStore::LoadLogStreams(const std::string& trial) {
  const std::string times = LogTimes() ? "ts_ms" : "0";
  Stmt s(db_, ("SELECT attempt, line >> " + std::to_string(kLogHostShift) + " AS host, min(" + times + "), max(" +
               times + "), count(*), sum(length(CAST(text AS BLOB))) FROM logs WHERE trial=? GROUP BY attempt, host "
               "ORDER BY attempt, host")
                  .c_str());
  if (!s.ok()) return s.Error("preparing log stream read");
  s.Bind(1, trial);
  std::vector<LogStreamRow> out;
  int rc;
  while ((rc = s.Step()) == SQLITE_ROW) {
    out.push_back({trial, static_cast<uint32_t>(s.Int(0)), static_cast<uint32_t>(s.Int(1)), s.Int(2), s.Int(3),
                   s.Int(4), s.Int(5)});
  }
  if (rc != SQLITE_DONE) return s.Error("reading log streams");
  return out;
}

Result<std::vector<LogRow>> SqliteJobStore::LoadStreamLines(const std::string& trial, uint32_t attempt, uint32_t host,
                                                            uint64_t from, uint64_t to, int64_t start_ms,
                                                            int64_t end_ms, size_t limit, bool from_end) {
  const bool times = LogTimes();
  const std::string sql = "SELECT " + LogColumns(times) +
                          " FROM logs WHERE trial=? AND attempt=? AND line>=? AND line<?" +
                          (times ? " AND ts_ms>=? AND ts_ms<?" : "") + " ORDER BY line " +
                          (from_end ? "DESC" : "ASC") + " LIMIT ?";
  Stmt s(db_, sql.c_str());
  if (!s.ok()) return s.Error("preparing log stream read");
  // Added, not OR-ed (LogLineKey): the end of a host's numbers, kLogLineLimit, is the next host's
  // first key; OR-ed into an odd host's bits it was that host's own first key, and algo-1, algo-3,
  // ... read empty through GetLogEvents.
  const uint64_t first = LogLineKey(host, 0) + std::min(from, kLogLineLimit);
  const uint64_t end = LogLineKey(host, 0) + std::min(to, kLogLineLimit);
  s.Bind(1, trial).Bind(2, static_cast<int64_t>(attempt)).Bind(3, static_cast<int64_t>(first));
  s.Bind(4, static_cast<int64_t>(end));
  int at = 5;
  if (times) s.Bind(at, start_ms).Bind(at + 1, end_ms), at += 2;
  s.Bind(at, static_cast<int64_t>(std::min<size_t>(limit, INT64_MAX)));
  std::vector<LogRow> out;
  int rc;
  while ((rc = s.Step()) == SQLITE_ROW) out.push_back(ReadLogRow(s));
  if (rc != SQLITE_DONE) return s.Error("reading a log stream");
  if (from_end) std::reverse(out.begin(), out.end());
  return out;
}

Result<std::vector<LogRow>> SqliteJobStore::LoadLinesByTime(const std::vector<std::string>& trials, int64_t start_ms,
                                                            int64_t end_ms, int64_t after_ms, int64_t after_id,
                                                            size_t limit) {
  if (trials.empty()) return std::vector<LogRow>{};
  const bool times = LogTimes();
  const std::string t = times ? "ts_ms" : "0";
  std::string sql = "SELECT " + LogColumns(times) + " FROM logs WHERE trial IN (";
  for (size_t i = 0; i < trials.size(); ++i) sql += i ? ",?" : "?";
  sql += ") AND " + t + ">=? AND " + t + "<? AND (" + t + ">? OR (" + t + "=? AND id>?)) ORDER BY " + t +
         ", id LIMIT ?";
  Stmt s(db_, sql.c_str());
  if (!s.ok()) return s.Error("preparing a read of log lines by time");
  int at = 1;
  for (const auto& trial : trials) s.Bind(at++, trial);
  s.Bind(at, start_ms).Bind(at + 1, end_ms).Bind(at + 2, after_ms).Bind(at + 3, after_ms).Bind(at + 4, after_id);
  s.Bind(at + 5, static_cast<int64_t>(std::min<size_t>(limit, INT64_MAX)));
  std::vector<LogRow> out;
  int rc;
  while ((rc = s.Step()) == SQLITE_ROW) out.push_back(ReadLogRow(s));
  if (rc != SQLITE_DONE) return s.Error("reading log lines by time");
  return out;
}

Status SqliteJobStore::TrimLogs(const std::string& trial, uint32_t attempt, uint64_t from_line, uint64_t to_line) {
  if (to_line <= from_line) return Status::Ok();
  Stmt s(db_, "DELETE FROM logs WHERE trial=? AND attempt=? AND line>=? AND line<?");
  if (!s.ok()) return s.Error("preparing log trim");
  s.Bind(1, trial).Bind(2, static_cast<int64_t>(attempt)).Bind(3, static_cast<int64_t>(from_line))
      .Bind(4, static_cast<int64_t>(to_line));
  if (s.Step() != SQLITE_DONE) return s.Error("trimming a log");
  return Status::Ok();
}

Status SqliteJobStore::DeleteMetrics(const std::string& trial, uint32_t attempt, const std::string& name) {
  Stmt s(db_, "DELETE FROM metrics WHERE trial=? AND attempt=? AND name=?");
  if (!s.ok()) return s.Error("preparing a metric deletion");
  s.Bind(1, trial).Bind(2, static_cast<int64_t>(attempt)).Bind(3, name);
  if (s.Step() != SQLITE_DONE) return s.Error("deleting a metric's points");
  return Status::Ok();
}

// Runs `sqls`, each with ?1 = name, in one transaction: all or nothing.
Status SqliteJobStore::DeleteAll(std::initializer_list<const char*> sqls, const std::string& name, const char* what) {
  HPO_RETURN_IF_ERROR(Begin());
  for (const char* sql : sqls) {
    Stmt s(db_, sql);
    if (!s.ok()) {
      Rollback();
      return s.Error((std::string("preparing the deletion of ") + what).c_str());
    }
    s.Bind(1, name);
    if (s.Step() != SQLITE_DONE) {
      Status e = s.Error((std::string("deleting ") + what).c_str());
      Rollback();
      return e;
    }
  }
  return Commit();
}

Result<bool> SqliteJobStore::DeleteJobSlice(const std::string& name) {
  // A slice per transaction with a checkpoint after each: in one transaction a large job's rows
  // grew the write-ahead log to twice their size, so a nearly full disk could not delete the job
  // that would have freed it.
  for (const char* sql :
       {"DELETE FROM logs WHERE rowid IN (SELECT rowid FROM logs WHERE trial IN (SELECT name FROM trials WHERE "
        "tuning_job = ?1 COLLATE NOCASE) LIMIT 2000)",
        "DELETE FROM metrics WHERE rowid IN (SELECT rowid FROM metrics WHERE trial IN (SELECT name FROM trials WHERE "
        "tuning_job = ?1 COLLATE NOCASE) LIMIT 2000)",
        // The events of its training jobs go with them (about 2.5 rows per training job, which
        // grew a benchmark coordinator's store without bound); the job's own stay, its history.
        "DELETE FROM events WHERE rowid IN (SELECT rowid FROM events WHERE job = ?1 COLLATE NOCASE AND trial != '' "
        "LIMIT 2000)"}) {
    Stmt st(db_, sql);
    if (!st.ok()) return st.Error("preparing the deletion of a job's logs, metrics and training jobs' events");
    st.Bind(1, name);
    if (st.Step() != SQLITE_DONE) return st.Error("deleting a job's logs, metrics and training jobs' events");
    if (sqlite3_changes(db_) > 0) {
      (void)Exec("PRAGMA wal_checkpoint(PASSIVE)");  // the next slice reuses the log's pages
      return true;
    }
  }
  // Then what that freed goes back to the file system (Compact), a slice of pages at a time: at
  // the end, in one go, it held the core for most of a second per 100 MB freed.
  auto free_pages = [this]() -> int64_t {
    Stmt st(db_, "PRAGMA freelist_count");
    return st.ok() && st.Step() == SQLITE_ROW ? st.Int(0) : 0;
  };
  const int64_t before = free_pages();
  if (before == 0) return false;
  if (Status s = Exec("PRAGMA incremental_vacuum(500)"); !s.ok()) return s;
  (void)Exec("PRAGMA wal_checkpoint(PASSIVE)");
  return free_pages() < before;  // a store without auto_vacuum (an older one) frees none this way
}

Status SqliteJobStore::DeleteJob(const std::string& name) {
  // Its metrics and logs first, in slices (DeleteJobSlice). Until the last step below the job is
  // there (a failure leaves it, with fewer logs and metrics; deleting it again finishes).
  for (;;) {
    auto more = DeleteJobSlice(name);
    if (!more.ok()) return more.status();
    if (!*more) break;
  }
  HPO_RETURN_IF_ERROR(
      DeleteAll({"INSERT OR IGNORE INTO deleted_trials(name, tuning_job) "
                 "SELECT name, tuning_job FROM trials WHERE tuning_job = ?1 COLLATE NOCASE",
                 "DELETE FROM metrics WHERE trial IN (SELECT name FROM trials WHERE tuning_job = ?1 COLLATE NOCASE)",
                 "DELETE FROM logs WHERE trial IN (SELECT name FROM trials WHERE tuning_job = ?1 COLLATE NOCASE)",
                 "DELETE FROM notified WHERE resource IN (SELECT 'trial:' || name FROM trials WHERE tuning_job = ?1 "
                 "COLLATE NOCASE) OR resource = 'job:' || lower(?1)",
                 "DELETE FROM trials WHERE tuning_job = ?1 COLLATE NOCASE",
                 "DELETE FROM jobs WHERE name = ?1"},  // the column is COLLATE NOCASE
                name, "a job"));
  Compact();
  return Status::Ok();
}

void SqliteJobStore::Compact() {
  // What the deletion freed goes back to the file system: the pages (auto_vacuum=INCREMENTAL; a
  // no-op for an older store without it), then the file itself once the WAL is checkpointed.
  // Best effort: the rows are gone either way, and a failure here changes nothing.
  (void)Exec("PRAGMA incremental_vacuum");
  (void)Exec("PRAGMA wal_checkpoint(TRUNCATE)");
}

Status SqliteJobStore::DeleteTrial(const std::string& name) {
  return DeleteAll({"INSERT OR IGNORE INTO deleted_trials(name, tuning_job) SELECT name, tuning_job FROM trials "
                    "WHERE name = ?1",
                    "DELETE FROM metrics WHERE trial = ?1", "DELETE FROM logs WHERE trial = ?1",
                    "DELETE FROM notified WHERE resource = 'trial:' || ?1", "DELETE FROM trials WHERE name = ?1"},
                   name, "a training job");
}

Result<std::vector<EventRow>> SqliteJobStore::LoadEvents(const std::string& job, int64_t after_id, size_t limit) {
  // A job's history starts after the JobDeleted event of an earlier job of the same name, unless
  // that event is the name's last (the job is deleted and not re-created: its own history).
  Stmt s(db_,
         "SELECT id, ts_ms, kind, job, trial, message FROM events WHERE (?1 = '' OR job = ?1 COLLATE NOCASE) "
         "AND id > max(?2, CASE WHEN ?1 = '' THEN 0 ELSE (SELECT coalesce(max(id), 0) FROM events "
         "WHERE job = ?1 COLLATE NOCASE AND kind = 'JobDeleted' AND id < (SELECT max(id) FROM events "
         "WHERE job = ?1 COLLATE NOCASE)) END) ORDER BY id LIMIT ?3");
  if (!s.ok()) return s.Error("preparing event read");
  s.Bind(1, job).Bind(2, after_id).Bind(3, static_cast<int64_t>(limit));
  std::vector<EventRow> out;
  int rc;
  while ((rc = s.Step()) == SQLITE_ROW) {
    out.push_back({s.Int(0), s.Int(1), s.Text(2), s.Text(3), s.Text(4), s.Text(5)});
  }
  if (rc != SQLITE_DONE) return s.Error("reading events");
  return out;
}

Result<std::vector<EventRow>> SqliteJobStore::LoadLastEvents(const std::string& job, size_t limit) {
  // LoadEvents' rows, newest first and cut at `limit`, then put back in order: the dashboard read
  // a job's whole history, 5,000 rows at a time under the core's lock, for its last 100.
  Stmt s(db_,
         "SELECT id, ts_ms, kind, job, trial, message FROM events WHERE (?1 = '' OR job = ?1 COLLATE NOCASE) "
         "AND id > (CASE WHEN ?1 = '' THEN 0 ELSE (SELECT coalesce(max(id), 0) FROM events "
         "WHERE job = ?1 COLLATE NOCASE AND kind = 'JobDeleted' AND id < (SELECT max(id) FROM events "
         "WHERE job = ?1 COLLATE NOCASE)) END) ORDER BY id DESC LIMIT ?2");
  if (!s.ok()) return s.Error("preparing event read");
  s.Bind(1, job).Bind(2, static_cast<int64_t>(limit));
  std::vector<EventRow> out;
  int rc;
  while ((rc = s.Step()) == SQLITE_ROW) {
    out.push_back({s.Int(0), s.Int(1), s.Text(2), s.Text(3), s.Text(4), s.Text(5)});
  }
  if (rc != SQLITE_DONE) return s.Error("reading events");
  std::reverse(out.begin(), out.end());
  return out;
}

Result<std::set<std::string>> SqliteJobStore::DeletedTrials(const std::vector<std::string>& names) {
  Stmt s(db_, "SELECT 1 FROM deleted_trials WHERE name = ?1");
  if (!s.ok()) return s.Error("preparing a deleted training job lookup");
  std::set<std::string> out;
  for (const auto& name : names) {
    s.Reset();
    s.Bind(1, name);
    const int rc = s.Step();
    if (rc == SQLITE_ROW) out.insert(name);
    else if (rc != SQLITE_DONE) return s.Error("looking up a deleted training job");
  }
  return out;
}

Result<bool> SqliteJobStore::DeletedUnrecorded(const std::string& job) {
  Stmt s(db_,
         "SELECT 1 FROM events WHERE job = ?1 COLLATE NOCASE AND kind = 'JobDeleted' AND id <= "
         "(SELECT CAST(value AS INTEGER) FROM meta WHERE key = 'deleted_trials_from') LIMIT 1");
  if (!s.ok()) return s.Error("preparing a deletion lookup");
  s.Bind(1, job);
  const int rc = s.Step();
  if (rc == SQLITE_ROW) return true;
  if (rc != SQLITE_DONE) return s.Error("looking up a deletion");
  return false;
}

Result<std::vector<LogRow>> SqliteJobStore::LoadLogs(const std::string& trial, int64_t after_id, size_t limit) {
  Stmt s(db_, ("SELECT " + LogColumns(LogTimes()) + " FROM logs WHERE trial=? AND id>? ORDER BY id LIMIT ?").c_str());
  if (!s.ok()) return s.Error("preparing log read");
  s.Bind(1, trial).Bind(2, after_id).Bind(3, static_cast<int64_t>(limit));
  std::vector<LogRow> out;
  int rc;
  while ((rc = s.Step()) == SQLITE_ROW) out.push_back(ReadLogRow(s));
  if (rc != SQLITE_DONE) return s.Error("reading log lines");
  return out;
}

}  // namespace hpo::coordinator
