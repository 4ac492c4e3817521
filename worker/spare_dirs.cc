#include "worker/spare_dirs.h"

#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <thread>
#include <utility>
#include <vector>

#include "common/status.h"
#include "worker/trial_layout.h"

namespace hpo::worker {
namespace fs = std::filesystem;
namespace {

// Not right away: the program just started loads its libraries, and another slot's launch or
// exit report may be due; a spare is needed only for this slot's next trial.
constexpr int64_t kSpareDelayMs = 20;

Status MakeSpare(const fs::path& dir) {
  for (const fs::path& d : {dir, dir / "checkpoints", dir / "attempt-1"}) {
    if (::mkdir(d.c_str(), 0777) != 0) return Status::IoError("cannot create " + d.string() + ": " + std::strerror(errno));
  }
  HPO_RETURN_IF_ERROR(MakeTrialTree((dir / "attempt-1" / "ml").string(), /*config_files=*/true));
  const fs::path log = dir / "attempt-1" / "trial.log";
  int fd = ::open(log.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
  if (fd < 0) return Status::IoError("cannot create " + log.string() + ": " + std::strerror(errno));
  ::close(fd);
  return Status::Ok();
}

}  // namespace

SpareTrialDirs::SpareTrialDirs(fs::path work_dir, std::string tag, size_t count, TaskPool* pool,
                               std::function<void(const std::string&)> log)
    : work_dir_(std::move(work_dir)), tag_(std::move(tag)), count_(count), pool_(pool), log_(std::move(log)) {}

void SpareTrialDirs::Start() {
  if (started_) return;
  started_ = true;
  const std::string mine = std::to_string(::getpid()) + "-";
  (void)pool_->Post([root = SpareRoot(), mine] {
    std::error_code ec;
    for (fs::directory_iterator it(root, ec), end; !ec && it != end; it.increment(ec)) {
      const std::string name = it->path().filename().string();
      const long pid = std::strtol(name.c_str(), nullptr, 10);
      if (name.rfind(mine, 0) == 0 || pid <= 0) continue;
      if (::kill(static_cast<pid_t>(pid), 0) != 0 && errno == ESRCH) {
        std::error_code rm;
        fs::remove_all(it->path(), rm);
      }
    }
  });
  Refill();
}

void SpareTrialDirs::Refill() {
  std::vector<fs::path> to_make;
  {
    std::lock_guard<std::mutex> lock(mu_);
    while (!off_ && !closing_ && ready_.size() + making_ < count_) {
      ++making_;
      to_make.push_back(SpareRoot() / (tag_ + "-" + std::to_string(++seq_)));
    }
  }
  for (const fs::path& dir : to_make) {
    (void)pool_->Post([this, dir] {
      std::this_thread::sleep_for(std::chrono::milliseconds(kSpareDelayMs));
      std::error_code ec;
      fs::create_directories(SpareRoot(), ec);
      Status made = MakeSpare(dir);
      bool keep = false;
      {
        std::lock_guard<std::mutex> lock(mu_);
        --making_;
        if (!made.ok()) off_ = true;
        keep = made.ok() && !closing_;
        if (keep) ready_.push_back(dir.string());
      }
      if (!made.ok()) {
        log_("worker: cannot prepare trial directories ahead of time (" + made.message() +
             "); laying them out when assigned");
      }
      if (!keep) fs::remove_all(dir, ec);
    });
  }
}

bool SpareTrialDirs::Take(const fs::path& trial_dir, uint32_t attempt) {
  std::string dir;
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (off_ || ready_.empty()) return false;
    dir = std::move(ready_.front());
    ready_.pop_front();
  }
  if (!trials_root_made_) {  // <work_dir>/trials/ appears with the first trial
    std::error_code ec;
    fs::create_directories(TrialsRoot(), ec);
    trials_root_made_ = !ec;
  }
  bool taken = false;
  if (::renameat2(AT_FDCWD, dir.c_str(), AT_FDCWD, trial_dir.c_str(), RENAME_NOREPLACE) == 0) {
    taken = true;
    if (attempt != 1) {
      const fs::path first = trial_dir / "attempt-1";
      const fs::path wanted = trial_dir / ("attempt-" + std::to_string(attempt));
      if (::rename(first.c_str(), wanted.c_str()) != 0) {
        std::error_code ec;
        fs::remove_all(first, ec);
        taken = false;
      }
    }
  } else if (errno == EEXIST || errno == ENOTEMPTY) {  // a retry of a trial seen here before
    std::lock_guard<std::mutex> lock(mu_);
    ready_.push_front(std::move(dir));
    return false;
  } else {
    // No RENAME_NOREPLACE here (EINVAL), spares/ and trials/ on different file systems (EXDEV),
    // or the spare was removed behind our back (ENOENT): stop using spares.
    const int e = errno;
    log_("worker: cannot move a prepared trial directory into place (" + std::string(std::strerror(e)) +
         "); laying trials out when assigned");
    std::vector<std::string> left;
    {
      std::lock_guard<std::mutex> lock(mu_);
      off_ = true;
      left.assign(ready_.begin(), ready_.end());
      ready_.clear();
    }
    left.push_back(dir);
    (void)pool_->Post([left] {
      std::error_code ec;
      for (const auto& d : left) fs::remove_all(d, ec);
    });
    return false;
  }
  return taken;
}

void SpareTrialDirs::Stop() {
  std::deque<std::string> left;
  {
    std::lock_guard<std::mutex> lock(mu_);
    closing_ = true;
    left.swap(ready_);
  }
  std::error_code ec;
  for (const auto& d : left) fs::remove_all(d, ec);
  ::rmdir(SpareRoot().c_str());  // when empty: other agents may share the work directory
}

size_t SpareTrialDirs::Ready() const {
  std::lock_guard<std::mutex> lock(mu_);
  return ready_.size();
}

bool SpareTrialDirs::Off() const {
  std::lock_guard<std::mutex> lock(mu_);
  return off_;
}

}  // namespace hpo::worker
