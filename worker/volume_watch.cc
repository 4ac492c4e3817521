#include "worker/volume_watch.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <set>
#include <utility>

namespace hpo::worker {

namespace {

using InodeId = std::pair<dev_t, ino_t>;

struct Walker {
  std::set<InodeId> skip;
  std::set<InodeId> seen;  // inodes with several links, counted once
  const std::atomic<bool>* stop = nullptr;
  uint64_t total = 0;

  // Takes ownership of `fd` (a directory on `dev`).
  void Dir(int fd, dev_t dev, int depth) {
    DIR* d = ::fdopendir(fd);
    if (d == nullptr) {
      ::close(fd);
      return;
    }
    while (dirent* e = ::readdir(d)) {
      if (stop != nullptr && stop->load()) break;
      if (std::strcmp(e->d_name, ".") == 0 || std::strcmp(e->d_name, "..") == 0) continue;
      struct stat st {};
      if (::fstatat(fd, e->d_name, &st, AT_SYMLINK_NOFOLLOW) != 0) continue;  // gone meanwhile
      if (st.st_dev != dev || skip.count({st.st_dev, st.st_ino})) continue;
      if (!S_ISDIR(st.st_mode) && st.st_nlink > 1 && !seen.insert({st.st_dev, st.st_ino}).second) continue;
      total += static_cast<uint64_t>(st.st_blocks) * 512;
      if (S_ISDIR(st.st_mode) && depth < 512) {
        int sub = ::openat(fd, e->d_name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        if (sub >= 0) Dir(sub, dev, depth + 1);
      }
    }
    ::closedir(d);
  }
};

}  // namespace

Result<uint64_t> DiskUsage(const std::vector<std::string>& dirs, const std::vector<std::string>& skip,
                           const std::atomic<bool>* stop) {
  Walker w;
  w.stop = stop;
  for (const auto& s : skip) {
    struct stat st {};
    if (::lstat(s.c_str(), &st) == 0) w.skip.insert({st.st_dev, st.st_ino});
  }
  for (const auto& dir : dirs) {
    int fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0) {
      if (errno == ENOENT) continue;
      return Status::IoError("cannot measure " + dir + ": " + std::strerror(errno));
    }
    struct stat st {};
    if (::fstat(fd, &st) != 0 || w.skip.count({st.st_dev, st.st_ino}) || !w.seen.insert({st.st_dev, st.st_ino}).second) {
      ::close(fd);  // skipped, or already walked (one directory inside another)
      continue;
    }
    w.total += static_cast<uint64_t>(st.st_blocks) * 512;
    w.Dir(fd, st.st_dev, 0);
  }
  return w.total;
}

std::string VolumeExceededReason(const VolumeLimit& limit, uint64_t used_bytes) {
  // Enough digits that the figure reads as more than the limit ("1.0 GB ... more than 1" did not).
  const double gb = static_cast<double>(used_bytes) / static_cast<double>(limit.unit_bytes);
  char used[48];
  std::snprintf(used, sizeof used, "%.3f", gb);
  if (std::string(used) == std::to_string(limit.volume_gb) + ".000") {
    std::snprintf(used, sizeof used, "%.3f (%llu bytes)", gb, static_cast<unsigned long long>(used_bytes));
  }
  std::string reason = "ClientError: the training job used " + std::string(used) +
                       " GB of its volume (input data, model, output and checkpoints), more than "
                       "ResourceConfig.VolumeSizeInGB=" +
                       std::to_string(limit.volume_gb) + "; ask for a larger volume";
  if (limit.unit_bytes != (1ull << 30)) reason += " (this worker counts " + std::to_string(limit.unit_bytes) + " bytes per GB)";
  return reason;
}

VolumeWatch::VolumeWatch(VolumeLimit limit, std::chrono::milliseconds interval)
    : limit_(std::move(limit)), interval_(interval), thread_([this] { Loop(); }) {}

VolumeWatch::~VolumeWatch() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stop_ = true;
  }
  cv_.notify_all();
  thread_.join();
}

std::string VolumeWatch::Exceeded() const {
  std::lock_guard<std::mutex> lock(mu_);
  return exceeded_;
}

void VolumeWatch::Loop() {
  std::unique_lock<std::mutex> lock(mu_);
  while (!stop_) {
    lock.unlock();
    auto used = DiskUsage(limit_.dirs, limit_.skip, &stop_);
    lock.lock();
    if (stop_) break;
    if (used.ok()) {
      used_ = *used;
      if (*used > limit_.limit_bytes()) {
        exceeded_ = VolumeExceededReason(limit_, *used);
        break;
      }
    }
    cv_.wait_for(lock, interval_, [this] { return stop_.load(); });
  }
}

}  // namespace hpo::worker
