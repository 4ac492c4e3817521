#include "worker/checkpoints.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <ctime>
#include <filesystem>
#include <optional>
#include <set>
#include <system_error>

#include "common/file_util.h"

namespace hpo::worker {
namespace fs = std::filesystem;

namespace {

// The files under `dir` to sync (common/file_util.h FilesBeneath), our temporary copies (of a
// restore under way) left out.
Result<std::map<std::string, std::string>> Files(const fs::path& dir,
                                                std::map<std::string, std::string>* skipped = nullptr) {
  auto files = FilesBeneath(dir.string(), skipped);
  if (!files.ok()) return files.status();
  std::erase_if(*files, [](const auto& f) {
    return f.first.find("/.hpo-tmp-") != std::string::npos || f.first.rfind(".hpo-tmp-", 0) == 0;
  });
  return files;
}

// Whether any process has the file open for writing (its own save under way, or a descriptor
// kept open), as errno: the kernel refuses a read lease then (EAGAIN); 0 when it granted one,
// released at once; another errno when it cannot tell here (a filesystem without leases, such as
// NFS: EINVAL; not the file's owner and no CAP_LEASE: EACCES). An open for writing meanwhile waits
// those microseconds (one with O_NONBLOCK fails EWOULDBLOCK), and no lease-break signal is sent,
// as no owner is set (F_SETOWN).
int LeaseProbe(int fd) {
  if (::fcntl(fd, F_SETLEASE, F_RDLCK) != 0) return errno;
  (void)::fcntl(fd, F_SETLEASE, F_UNLCK);
  return 0;
}

// LeaseProbe as a yes or no; nullopt where the kernel cannot tell.
std::optional<bool> OpenForWriting(int fd) {
  const int e = LeaseProbe(fd);
  if (e == 0 || e == EAGAIN) return e == EAGAIN;
  return std::nullopt;
}

}  // namespace

std::string WriterProbeProblem(const std::string& dir) {
  const std::string probe = dir + "/.hpo-tmp-lease-probe-" + std::to_string(::getpid());
  OwnedFd made(::open(probe.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600));
  if (made.get() < 0) return "cannot probe " + dir + " for file leases: " + std::strerror(errno);
  made = OwnedFd();
  OwnedFd fd(::open(probe.c_str(), O_RDONLY | O_CLOEXEC));
  std::string problem;
  if (fd.get() < 0) {
    problem = "cannot probe " + dir + " for file leases: " + std::strerror(errno);
  } else if (const int e = LeaseProbe(fd.get()); e != 0) {
    problem = "the filesystem of " + dir + " cannot say which files are open for writing (no file leases: " +
              std::strerror(e) + ")";
  }
  ::unlink(probe.c_str());
  return problem;
}

Result<std::unique_ptr<CheckpointSync>> CheckpointSync::Create(const std::string& uri, const std::string& local_dir,
                                                               std::function<Result<const S3Client*>()> s3,
                                                               CheckpointSyncOptions options) {
  std::unique_ptr<CheckpointSync> c(new CheckpointSync());
  c->uri_ = uri;
  c->local_dir_ = local_dir;
  c->options_ = std::move(options);
  auto dest = OpenObjectLocation(uri, std::move(s3));
  if (!dest.ok()) return Status::InvalidArgument(c->options_.what + " " + dest.status().message());
  c->dest_ = std::move(dest).value();
  if (!c->dest_.prefix.empty() && c->dest_.prefix.back() != '/') c->dest_.prefix += '/';
  return c;
}

Result<CheckpointStats> CheckpointSync::Restore() {
  std::lock_guard<std::mutex> lock(mu_);
  CheckpointStats st;
  std::error_code ec;
  // The destination first: when it cannot be listed (S3 down), what is here stays.
  auto objects = dest_.store->List(dest_.prefix);
  if (!objects.ok()) return objects.status();
  // Empty the directory, keeping the directory itself (it may be a mount point). One a program
  // replaced with a link goes, not what the link points to.
  if (fs::is_symlink(fs::symlink_status(local_dir_, ec))) fs::remove(local_dir_, ec);
  fs::create_directories(local_dir_, ec);
  if (ec) return Status::IoError("cannot create " + local_dir_ + ": " + ec.message());
  for (const auto& e : fs::directory_iterator(local_dir_, ec)) {
    std::error_code rec;
    fs::remove_all(e.path(), rec);
    if (rec) return Status::IoError("cannot empty " + local_dir_ + ": " + rec.message());
  }
  if (ec) return Status::IoError("cannot list " + local_dir_ + ": " + ec.message());
  synced_.clear();
  std::vector<std::pair<std::string, std::string>> todo;  // relative path, key
  for (const ObjectInfo& o : *objects) {
    const bool under = o.key.compare(0, dest_.prefix.size(), dest_.prefix) == 0;
    const std::string rel = under ? o.key.substr(dest_.prefix.size()) : std::string();
    if (!under || !IsCleanRelativePath(rel)) {
      return Status::InvalidArgument("ClientError: checkpoint object " + dest_.store->Uri(o.key) +
                                     " would be written outside the checkpoint directory");
    }
    todo.push_back({rel, o.key});
    st.bytes += o.size;
  }
  for (const auto& [rel, key] : todo) {
    const fs::path to = fs::path(local_dir_) / rel;
    fs::create_directories(to.parent_path(), ec);
    if (ec) return Status::IoError("cannot create " + to.parent_path().string() + ": " + ec.message());
    if (Status got = dest_.store->GetToFile(key, to.string()); !got.ok()) {
      if (got.code() == StatusCode::kNotFound) continue;  // deleted since the listing
      return got;
    }
    struct stat sb{};
    if (::stat(to.c_str(), &sb) == 0) {
      synced_[rel] = {static_cast<uint64_t>(sb.st_size), int64_t{sb.st_mtim.tv_sec} * 1000000000 + sb.st_mtim.tv_nsec};
    }
    ++st.files;
  }
  return st;
}

Result<CheckpointStats> CheckpointSync::Adopt(const std::vector<std::string>& held) {
  std::set<std::string> torn;
  {
    std::lock_guard<std::mutex> lock(mu_);
    // No program runs now; the tree is still the last one's: a held file is only replaced where
    // every directory on its way is a real one (a link there is not followed), and the file
    // itself is removed first (a link in its place goes, not what it points to).
    for (const std::string& rel : held) {
      if (!IsCleanRelativePath(rel)) continue;
      bool real = true;
      for (fs::path at = fs::path(rel).parent_path(); real && !at.empty(); at = at.parent_path()) {
        real = IsRealDirectory((fs::path(local_dir_) / at).string());
      }
      if (!real) continue;
      torn.insert(rel);
      const fs::path to = fs::path(local_dir_) / rel;
      std::error_code ec;
      fs::remove(to, ec);
      if (ec) return Status::IoError("cannot remove " + to.string() + ", cut off mid-write: " + ec.message());
      if (Status got = dest_.store->GetToFile(dest_.prefix + rel, to.string()); !got.ok()) fs::remove(to, ec);
    }
    auto objects = dest_.store->List(dest_.prefix);
    if (!objects.ok()) return objects.status();
    for (const ObjectInfo& o : *objects) {
      if (o.key.compare(0, dest_.prefix.size(), dest_.prefix) != 0) continue;
      const std::string rel = o.key.substr(dest_.prefix.size());
      // Not known to be this directory's: uploaded again when the file is here, else deleted.
      // (A held file's copy there is the whole one: never deleted for being absent here.)
      if (IsCleanRelativePath(rel) && !torn.count(rel)) synced_.emplace(rel, kUnknown);
    }
  }
  return Sync();
}

std::vector<std::string> CheckpointSync::SkippedLinks() {
  std::lock_guard<std::mutex> lock(mu_);
  std::vector<std::string> out;
  for (const auto& [name, why] : skipped_links_) out.push_back(name + " " + why);
  return out;
}

std::vector<std::string> CheckpointSync::LastHeld() {
  std::lock_guard<std::mutex> lock(mu_);
  return last_held_;
}

bool CheckpointSync::AtDestination(const std::string& rel) {
  std::lock_guard<std::mutex> lock(mu_);
  return synced_.count(rel) > 0;
}

CheckpointSync::FileState CheckpointSync::FileState::Of(const struct ::stat& st) {
  return {static_cast<uint64_t>(st.st_size), Nanos(st.st_mtim)};
}

int64_t CheckpointSync::FileState::Nanos(const struct ::timespec& t) {
  return int64_t{t.tv_sec} * 1000000000 + t.tv_nsec;
}

void CheckpointSync::NoteWriters() {
  if (options_.settle_ns <= 0 || !options_.probe_writers) return;
  auto files = Files(local_dir_);
  if (!files.ok()) return;
  std::set<std::string> writing;
  for (const auto& [rel, source] : *files) {
    auto in = OpenRegularFileBeneath(local_dir_, source);
    if (in.ok() && OpenForWriting(in->get()).value_or(false)) writing.insert(rel);
  }
  std::lock_guard<std::mutex> lock(noted_mu_);
  noted_writers_ = std::move(writing);
}

Result<CheckpointStats> CheckpointSync::Sync(SyncPass pass, int64_t ended_ns) {
  std::lock_guard<std::mutex> lock(mu_);
  std::set<std::string> noted;
  if (pass != SyncPass::kRunning) {
    std::lock_guard<std::mutex> noted_lock(noted_mu_);
    noted.swap(noted_writers_);
  }
  last_held_.clear();
  CheckpointStats st;
  auto files = Files(local_dir_, &skipped_links_);
  if (!files.ok()) return files.status();
  Status first = Status::Ok();
  struct timespec pass_began {};
  ::clock_gettime(CLOCK_REALTIME, &pass_began);
  const int64_t now_ns = FileState::Nanos(pass_began);
  // Changed within settle_ns of the pass (of the program's end, after a kill): being written, by
  // its mtime. A mtime more than a second ahead is a stepped clock or an archive's stamp.
  const int64_t reference_ns = pass == SyncPass::kKilled && ended_ns > 0 ? ended_ns : now_ns;
  auto being_written = [&](int64_t mtime_ns) {
    const int64_t age = reference_ns - mtime_ns;
    return age > -1'000'000'000 && age < options_.settle_ns;
  };
  auto hold = [&](const std::string& rel) { st.held_paths.push_back(rel); };
  // How long this pass may still wait for a quiet moment in files held back past max_hold_ns.
  int64_t quiet_budget_ns = kQuietWaitNs;
  for (const auto& [rel, source] : *files) {
    // Opened from the directory down, no link followed on the way, and read through that
    // descriptor: the program may swap the file, or a directory above it, after the listing.
    auto in = OpenRegularFileBeneath(local_dir_, source);
    struct stat sb{};
    if (!in.ok() || ::fstat(in->get(), &sb) != 0) {
      // Gone, or swapped for a link or a FIFO, since the listing (neither is followed or read),
      // is no error: the next pass deletes what went up of it. Either way what the destination
      // has is not known if a copy went up before, as after a failed upload.
      const bool swapped = in.ok() || in.status().code() == StatusCode::kNotFound ||
                           in.status().code() == StatusCode::kInvalidArgument;
      if (!swapped && first.ok()) first = in.status();
      if (auto known = synced_.find(rel); known != synced_.end()) known->second = kUnknown;
      continue;
    }
    FileState now = FileState::Of(sb);
    auto it = synced_.find(rel);
    if (it != synced_.end() && it->second == now) {
      held_since_.erase(rel);
      open_for_writing_.erase(rel);
      continue;
    }
    // Cut off mid-write, most likely: changed just before the end, or open for writing when the
    // last pass looked (a save stalled in a write, its mtime older). The destination's copy stays.
    if (options_.settle_ns > 0 && pass == SyncPass::kKilled &&
        (being_written(now.mtime_ns) || open_for_writing_.count(rel) || noted.count(rel))) {
      hold(rel);
      continue;
    }
    if (options_.settle_ns > 0 && pass == SyncPass::kRunning) {
      // Settled: no process has it open for writing; where the kernel cannot tell, unchanged for
      // settle_ns and seen as it is now by the previous pass too (a truncation shows its new
      // size before its new mtime: one look in between saw an empty file with a settled mtime).
      bool settled = false;
      const std::optional<bool> writing = options_.probe_writers ? OpenForWriting(in->get()) : std::nullopt;
      auto [look, first_look] = seen_.try_emplace(rel, now);
      if (writing.has_value()) {
        settled = !*writing;
        if (*writing) {
          open_for_writing_.insert(rel);
        } else {
          open_for_writing_.erase(rel);
        }
      } else {
        settled = !being_written(now.mtime_ns) && !first_look && look->second == now;
      }
      look->second = now;
      // Held back long enough (a log kept open, a file rewritten every few hundred ms where the
      // kernel cannot tell): sent once no write is under way, the copy still refused if one starts.
      // The pass waits for such a moment (at most kQuietWaitNs in all): a pass a period later
      // that again fell inside a save found none, and a trainer whose saves fill most of its
      // epoch had its checkpoint never sent (a spot pass).
      if (!settled) {
        const int64_t since = held_since_.emplace(rel, now_ns).first->second;
        if (now_ns - since < options_.max_hold_ns) {
          hold(rel);
          continue;
        }
        // Where the kernel tells, the moment is one with no process holding it open for writing:
        // a save that pauses between its writes (100 ms) is quiet by its mtime, and a pass that
        // waited for that sent half a checkpoint (a regression pass: a retry resumed from it). A
        // file never closed (a log) goes, when the wait runs out, at a quiet moment, as before.
        int64_t quiet_ns = 0;
        bool closed = false;
        for (;;) {
          struct timespec t {};
          ::clock_gettime(CLOCK_REALTIME, &t);
          struct stat cur {};
          if (::fstat(in->get(), &cur) != 0) break;
          now = FileState::Of(cur);  // the copy's gate compares with this
          quiet_ns = FileState::Nanos(t) - now.mtime_ns;
          closed = writing.has_value() && !OpenForWriting(in->get()).value_or(true);
          if (closed || (!writing.has_value() && quiet_ns >= kRacyNs) || quiet_budget_ns <= 0) break;
          ::usleep(5000);
          quiet_budget_ns -= 5'000'000;
        }
        if (!closed && quiet_ns < kRacyNs) {
          hold(rel);
          continue;
        }
      }
    }
    // While the program runs, a copy of a file it wrote again meanwhile (a save that resumed
    // after a pause) does not take effect: the destination keeps its copy.
    bool changed_during_copy = false;
    std::optional<CommitGate> unchanged;
    const bool unchanged_gate_wanted = options_.settle_ns > 0 && pass == SyncPass::kRunning;
    if (unchanged_gate_wanted) {
      unchanged.emplace([&, fd = in->get()] {
        struct stat cur {};
        if (::fstat(fd, &cur) == 0 && FileState::Of(cur) == now) return Status::Ok();
        changed_during_copy = true;
        return Status::FailedPrecondition(rel + " changed while it was read");
      });
    }
    struct timespec began {};
    ::clock_gettime(CLOCK_REALTIME, &began);
    Status put = dest_.store->PutOpened(dest_.prefix + rel, in->get(), now.size, local_dir_ + "/" + source);
    unchanged.reset();
    if (!put.ok() && unchanged_gate_wanted) {
      // A copy that failed because the file changed under it (truncated while read: the store
      // says so) is a file still being written, not an error.
      struct stat cur {};
      changed_during_copy = changed_during_copy || ::fstat(in->get(), &cur) != 0 || FileState::Of(cur) != now;
    }
    if (changed_during_copy) {
      held_since_.emplace(rel, now_ns);
      hold(rel);
      continue;
    }
    held_since_.erase(rel);
    if (!put.ok()) {
      // Not forgotten: an older copy may be at the destination, and a file deleted before the
      // next pass would have stayed there for good (restored into the next attempt).
      if (first.ok()) first = put;
      synced_[rel] = kUnknown;
      continue;
    }
    // What went up is the file as `now` only if nothing wrote it during the copy or could still
    // write it unseen: a file's mtime comes from the kernel's coarse clock (ticks of up to 10
    // ms), so a rewrite of the same size within the tick of the last write leaves size and mtime
    // as they were. A copy that raced a rewrite (`echo 6 > epoch`: truncated, then written) went
    // up torn, and matching `now` it was never sent again: the next attempt restored an empty
    // epoch file. Such a file is sent again by the next pass.
    struct stat after {};
    const bool changed = ::fstat(in->get(), &after) != 0 || FileState::Of(after) != now;
    const bool racy = FileState::Nanos(began) - now.mtime_ns < kRacyNs;
    synced_[rel] = changed || racy ? kUnknown : now;
    ++st.files;
    st.bytes += now.size;
  }
  auto gone = [&](const std::string& rel) { return files->count(rel) == 0; };
  std::erase_if(held_since_, [&](const auto& e) { return gone(e.first); });
  std::erase_if(seen_, [&](const auto& e) { return gone(e.first); });
  std::erase_if(open_for_writing_, gone);
  // While a file is held back, so are the deletes: a trainer that removes its old checkpoint
  // before writing the new one has the old one kept at the destination until the new one is whole.
  // They wait as long as one of the files held now has been held less than max_hold_ns: each
  // epoch's new file starts its own clock. (One clock for all of them ran out while each new file
  // was still being written, and the deletes emptied the destination: a spot pass lost 18 epochs.)
  bool hold_deletes = pass == SyncPass::kKilled && !st.held_paths.empty();
  for (const std::string& rel : pass == SyncPass::kKilled ? std::vector<std::string>{} : st.held_paths) {
    const auto held = held_since_.find(rel);
    hold_deletes = hold_deletes || held == held_since_.end() || now_ns - held->second < options_.max_hold_ns;
  }
  for (auto it = synced_.begin(); it != synced_.end();) {
    if (!options_.mirror_deletes || hold_deletes) break;
    if (files->count(it->first)) {
      ++it;
      continue;
    }
    Status rm = dest_.store->Delete(dest_.prefix + it->first);
    if (!rm.ok()) {
      if (first.ok()) first = rm;
      ++it;
      continue;
    }
    ++st.deleted;
    it = synced_.erase(it);
  }
  last_held_ = st.held_paths;
  if (!first.ok()) return first;
  return st;
}

}  // namespace hpo::worker
