#include "worker/channel_cache.h"

#include <fcntl.h>
#include <linux/fs.h>
#include <sys/file.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <vector>

#include "common/s3_client.h"  // Sha256Hex

namespace hpo::worker {

namespace fs = std::filesystem;

namespace {

std::string Errno(const std::string& what, int err) { return what + ": " + std::strerror(err); }

bool IsHex(const std::string& s, std::size_t n) {
  return s.size() == n && std::all_of(s.begin(), s.end(), [](char c) {
           return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f');
         });
}

// "<uri hash>-<size>-<etag hash>": the URI hash and the version ("<size>-<etag hash>"), or
// false for a name the cache did not write.
bool ParseName(const std::string& name, std::string* uri_hash, std::string* version, uint64_t* size) {
  const auto a = name.find('-');
  const auto b = a == std::string::npos ? std::string::npos : name.find('-', a + 1);
  if (b == std::string::npos) return false;
  const std::string uh = name.substr(0, a), sz = name.substr(a + 1, b - a - 1), eh = name.substr(b + 1);
  if (!IsHex(uh, 64) || !IsHex(eh, 16) || sz.empty() || sz.size() > 20 ||
      !std::all_of(sz.begin(), sz.end(), [](char c) { return c >= '0' && c <= '9'; })) {
    return false;
  }
  *uri_hash = uh;
  *version = sz + "-" + eh;
  *size = std::stoull(sz);
  return true;
}

// Copies `src` into a new file `dest` (mode 0666 less the umask): a reflink where the filesystem
// has them, else copy_file_range, else read/write.
Status CopyFile(const std::string& src, const std::string& dest) {
  int in = ::open(src.c_str(), O_RDONLY | O_CLOEXEC);
  if (in < 0) return Status::IoError(Errno("cannot read " + src, errno));
  int out = ::open(dest.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0666);
  if (out < 0) {
    const int err = errno;
    ::close(in);
    return Status::IoError(Errno("cannot create " + dest, err));
  }
  Status s = Status::Ok();
  if (::ioctl(out, FICLONE, in) != 0) {
    bool plain = false;
    for (;;) {
      ssize_t n = ::copy_file_range(in, nullptr, out, nullptr, 1 << 30, 0);
      if (n == 0) break;
      if (n > 0) continue;
      if (errno == EINTR) continue;
      if (errno == EXDEV || errno == ENOSYS || errno == EINVAL || errno == EOPNOTSUPP) {
        plain = true;  // nothing copied yet on these errors
        break;
      }
      s = Status::IoError(Errno("cannot copy " + src + " to " + dest, errno));
      break;
    }
    if (plain) {
      std::vector<char> buf(1 << 20);
      for (;;) {
        ssize_t n = ::read(in, buf.data(), buf.size());
        if (n == 0) break;
        if (n < 0) {
          if (errno == EINTR) continue;
          s = Status::IoError(Errno("cannot read " + src, errno));
          break;
        }
        for (ssize_t done = 0; done < n;) {
          ssize_t w = ::write(out, buf.data() + done, static_cast<size_t>(n - done));
          if (w < 0 && errno == EINTR) continue;
          if (w < 0) {
            s = Status::IoError(Errno("cannot write " + dest, errno));
            break;
          }
          done += w;
        }
        if (!s.ok()) break;
      }
    }
  }
  ::close(in);
  if (::close(out) != 0 && s.ok()) s = Status::IoError(Errno("cannot write " + dest, errno));
  if (!s.ok()) ::unlink(dest.c_str());
  return s;
}

// Makes `dest` hold the cached file `src`: a hard link when asked (and possible), else a copy.
// True when linked.
Result<bool> PlaceFile(const std::string& src, const std::string& dest, Materialize how) {
  if (::unlink(dest.c_str()) != 0 && errno != ENOENT) return Status::IoError(Errno("cannot replace " + dest, errno));
  if (how == Materialize::kHardLink) {
    if (::link(src.c_str(), dest.c_str()) == 0) return true;
    if (errno != EXDEV && errno != EMLINK && errno != EPERM) {
      return Status::IoError(Errno("cannot link " + dest + " to " + src, errno));
    }
  }
  HPO_RETURN_IF_ERROR(CopyFile(src, dest));
  return false;
}

// Moves a downloaded file that is not kept into the channel.
Status MoveInto(const std::string& from, const std::string& dest) {
  if (::rename(from.c_str(), dest.c_str()) == 0) return Status::Ok();
  if (errno != EXDEV) return Status::IoError(Errno("cannot move " + from + " to " + dest, errno));
  Status s = CopyFile(from, dest);
  ::unlink(from.c_str());
  return s;
}

}  // namespace

uint64_t DefaultChannelCacheBytes(const std::string& work_dir) {
  fs::path p = work_dir.empty() ? fs::path("/") : fs::path(work_dir);
  std::error_code ec;
  while (!fs::exists(p, ec) && p.has_parent_path() && p != p.parent_path()) p = p.parent_path();
  const fs::space_info space = fs::space(p, ec);
  if (ec || space.capacity == 0) return 1ull << 30;
  return std::min<uint64_t>(space.capacity / 10, 20ull << 30);
}

Result<std::unique_ptr<ChannelCache>> ChannelCache::Open(ChannelCacheOptions options) {
  if (options.dir.empty()) return Status::InvalidArgument("the channel cache needs a directory");
  if (options.max_bytes == 0) return Status::InvalidArgument("the channel cache's size limit must be above 0");
  std::unique_ptr<ChannelCache> cache(new ChannelCache(std::move(options)));
  HPO_RETURN_IF_ERROR(cache->Load());
  return cache;
}

ChannelCache::~ChannelCache() {
  if (lock_fd_ >= 0) ::close(lock_fd_);  // releases the flock
}

void ChannelCache::Log(const std::string& line) const {
  if (options_.log) options_.log(line);
}

void ChannelCache::RemoveFile(const std::string& file) {
  const std::string path = options_.dir + "/objects/" + file;
  if (::unlink(path.c_str()) != 0 && errno != ENOENT) Log(Errno("worker: channel cache: cannot remove " + path, errno));
}

Status ChannelCache::Load() {
  const fs::path dir(options_.dir);
  std::error_code ec;
  fs::create_directories(dir / "objects", ec);
  if (!ec) fs::create_directories(dir / "tmp", ec);
  if (ec) return Status::IoError("cannot create the channel cache " + options_.dir + ": " + ec.message());
  const std::string lock_path = (dir / "lock").string();
  lock_fd_ = ::open(lock_path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
  if (lock_fd_ < 0) return Status::IoError(Errno("cannot open " + lock_path, errno));
  if (::flock(lock_fd_, LOCK_EX | LOCK_NB) != 0) {
    const int err = errno;
    if (err == EWOULDBLOCK) {
      return Status::FailedPrecondition("the channel cache " + options_.dir +
                                        " is in use by another worker process on this work directory");
    }
    return Status::IoError(Errno("cannot lock " + lock_path, err));
  }
  // Partial downloads of an earlier process.
  size_t partial = 0;
  for (fs::directory_iterator it(dir / "tmp", ec), end; !ec && it != end; it.increment(ec)) {
    std::error_code rm;
    fs::remove_all(it->path(), rm);
    ++partial;
  }
  if (ec) return Status::IoError("cannot list " + (dir / "tmp").string() + ": " + ec.message());
  // Complete entries: one version per URI (the newest), sizes as named.
  struct Found {
    std::string file, version;
    uint64_t size;
    int64_t mtime_ns;
  };
  std::map<std::string, Found> found;
  size_t dropped = 0;
  for (fs::directory_iterator it(dir / "objects", ec), end; !ec && it != end; it.increment(ec)) {
    const std::string name = it->path().filename().string();
    std::string uh, version;
    uint64_t size = 0;
    struct stat st {};
    const bool ok = ParseName(name, &uh, &version, &size) && ::lstat(it->path().c_str(), &st) == 0 &&
                    S_ISREG(st.st_mode) && static_cast<uint64_t>(st.st_size) == size;
    if (!ok) {
      std::error_code rm;
      fs::remove_all(it->path(), rm);
      ++dropped;
      continue;
    }
    const int64_t mtime = static_cast<int64_t>(st.st_mtim.tv_sec) * 1000000000 + st.st_mtim.tv_nsec;
    auto [pos, inserted] = found.try_emplace(uh, Found{name, version, size, mtime});
    if (!inserted) {
      const bool newer = mtime > pos->second.mtime_ns;
      RemoveFile(newer ? pos->second.file : name);
      ++dropped;
      if (newer) pos->second = Found{name, version, size, mtime};
    }
  }
  if (ec) return Status::IoError("cannot list " + (dir / "objects").string() + ": " + ec.message());
  std::vector<std::pair<int64_t, std::string>> order;
  for (const auto& [uh, f] : found) order.emplace_back(f.mtime_ns, uh);
  std::sort(order.begin(), order.end());
  std::lock_guard<std::mutex> lock(mu_);
  for (const auto& [mtime, uh] : order) {
    const Found& f = found[uh];
    auto e = std::make_shared<Entry>();
    e->file = f.file;
    e->version = f.version;
    e->size = f.size;
    e->last_use = ++clock_;
    entries_[uh] = e;
    used_ += f.size;
  }
  const size_t before = entries_.size();
  MakeRoom(0);
  Log("worker: channel cache " + options_.dir + ": " + std::to_string(entries_.size()) + " object(s), " +
      std::to_string(used_ >> 20) + " MiB of " + std::to_string(options_.max_bytes >> 20) + " MiB" +
      (partial ? ", " + std::to_string(partial) + " partial download(s) removed" : "") +
      (dropped ? ", " + std::to_string(dropped) + " damaged or superseded file(s) removed" : "") +
      (before > entries_.size() ? ", " + std::to_string(before - entries_.size()) + " evicted to fit" : ""));
  return Status::Ok();
}

bool ChannelCache::MakeRoom(uint64_t need) {
  while (used_ + need > options_.max_bytes) {
    auto victim = entries_.end();
    for (auto it = entries_.begin(); it != entries_.end(); ++it) {
      if (it->second->pins == 0 && (victim == entries_.end() || it->second->last_use < victim->second->last_use)) {
        victim = it;
      }
    }
    if (victim == entries_.end()) return false;
    RemoveFile(victim->second->file);
    used_ -= victim->second->size;
    entries_.erase(victim);
    ++stats_.evictions;
  }
  return true;
}

void ChannelCache::Drop(std::map<std::string, std::shared_ptr<Entry>>::iterator it) {
  std::shared_ptr<Entry> e = it->second;
  entries_.erase(it);
  if (e->pins > 0) {
    e->doomed = true;  // deleted by its last Unpin
    return;
  }
  RemoveFile(e->file);
  used_ -= e->size;
}

void ChannelCache::Unpin(const std::shared_ptr<Entry>& e) {
  if (--e->pins == 0 && e->doomed) {
    RemoveFile(e->file);
    used_ -= e->size;
  }
}

Result<CachePlacement> ChannelCache::Place(const CachedObject& o, const std::string& dest, Materialize how,
                                           const Download& download) {
  CachePlacement out;
  out.bytes = o.size;
  if (o.etag.empty()) {  // no version to tell a changed object by
    std::string etag;
    HPO_RETURN_IF_ERROR(download(dest, &etag));
    std::lock_guard<std::mutex> lock(mu_);
    ++stats_.downloads;
    ++stats_.uncached;
    stats_.bytes_downloaded += o.size;
    out.cached = false;
    return out;
  }
  const std::string uh = Sha256Hex(o.endpoint + "\n" + o.bucket + "\n" + o.key);
  const std::string version = std::to_string(o.size) + "-" + Sha256Hex(o.etag).substr(0, 16);
  const std::string objects = options_.dir + "/objects/";
  std::unique_lock<std::mutex> lock(mu_);
  bool waited = false;
  for (;;) {
    if (downloading_.count(uh)) {  // the same object (any version) is being downloaded: wait
      if (!waited) ++stats_.waits;
      waited = true;
      cv_.wait(lock);
      continue;
    }
    auto it = entries_.find(uh);
    if (it == entries_.end()) break;
    std::shared_ptr<Entry> e = it->second;
    if (e->version != version) {  // another version: dropped
      Drop(it);
      break;
    }
    ++e->pins;
    e->last_use = ++clock_;
    lock.unlock();
    const std::string src = objects + e->file;
    struct stat st {};
    const bool intact = ::stat(src.c_str(), &st) == 0 && static_cast<uint64_t>(st.st_size) == o.size;
    Result<bool> placed = intact ? PlaceFile(src, dest, how) : Result<bool>(false);
    lock.lock();
    Unpin(e);
    if (!intact) {  // removed or cut behind the cache's back: dropped, downloaded again
      Log("worker: channel cache: " + src + " is missing or has the wrong size; downloading it again");
      auto again = entries_.find(uh);
      if (again != entries_.end() && again->second == e) Drop(again);
      continue;
    }
    if (!placed.ok()) return placed.status();
    ++stats_.hits;
    stats_.bytes_hit += o.size;
    out.hit = true;
    out.linked = *placed;
    return out;
  }
  // A miss: downloaded into tmp/, then renamed into objects/, unless it cannot be kept.
  if (o.size > options_.max_bytes || !MakeRoom(o.size)) {
    ++stats_.downloads;
    ++stats_.uncached;
    stats_.bytes_downloaded += o.size;
    lock.unlock();
    std::string etag;
    HPO_RETURN_IF_ERROR(download(dest, &etag));
    out.cached = false;
    return out;
  }
  downloading_.insert(uh);
  used_ += o.size;  // reserved while downloading
  ++stats_.downloads;
  stats_.bytes_downloaded += o.size;
  const std::string name = uh + "-" + version;
  const std::string tmp = options_.dir + "/tmp/" + name + "." + std::to_string(++tmp_seq_);
  lock.unlock();

  std::string etag;
  Status s = download(tmp, &etag);
  bool keep = s.ok();
  if (s.ok()) {
    struct stat st {};
    if (::stat(tmp.c_str(), &st) != 0) {
      s = Status::IoError(Errno("cannot read " + tmp, errno));
      keep = false;
    } else if (static_cast<uint64_t>(st.st_size) != o.size || (!etag.empty() && etag != o.etag)) {
      Log("worker: channel cache: s3://" + o.bucket + "/" + o.key + " changed after it was listed (ETag " + o.etag +
          ", " + std::to_string(o.size) + " bytes; got " + (etag.empty() ? "no ETag" : "ETag " + etag) + ", " +
          std::to_string(st.st_size) + " bytes): placed, not cached");
      keep = false;
      out.bytes = static_cast<uint64_t>(st.st_size);
    } else if (::chmod(tmp.c_str(), 0444) != 0 || ::rename(tmp.c_str(), (objects + name).c_str()) != 0) {
      s = Status::IoError(Errno("cannot move " + tmp + " into " + objects, errno));
      keep = false;
    }
  }
  if (s.ok() && !keep) s = MoveInto(tmp, dest);  // changed meanwhile: this trial's own
  if (!s.ok()) ::unlink(tmp.c_str());

  lock.lock();
  downloading_.erase(uh);
  used_ -= o.size;
  cv_.notify_all();
  if (!s.ok()) return s;
  if (!keep) {
    ++stats_.uncached;
    out.cached = false;
    return out;
  }
  auto e = std::make_shared<Entry>();
  e->file = name;
  e->version = version;
  e->size = o.size;
  e->last_use = ++clock_;
  e->pins = 1;
  entries_[uh] = e;
  used_ += o.size;
  lock.unlock();
  Result<bool> placed = PlaceFile(objects + name, dest, how);
  lock.lock();
  Unpin(e);
  if (!placed.ok()) return placed.status();
  out.linked = *placed;
  return out;
}

ChannelCacheStats ChannelCache::Stats() const {
  std::lock_guard<std::mutex> lock(mu_);
  ChannelCacheStats s = stats_;
  s.entries = entries_.size();
  s.bytes = used_;
  return s;
}

}  // namespace hpo::worker
