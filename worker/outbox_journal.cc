#include "worker/outbox_journal.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>

namespace hpo::worker {
namespace fs = std::filesystem;

namespace {

void PutU32(std::string* out, uint32_t v) {
  for (int i = 0; i < 4; ++i) out->push_back(static_cast<char>((v >> (8 * i)) & 0xff));
}

bool GetU32(const std::string& in, size_t* at, uint32_t* v) {
  if (in.size() - *at < 4) return false;
  *v = 0;
  for (int i = 0; i < 4; ++i) *v |= static_cast<uint32_t>(static_cast<unsigned char>(in[*at + i])) << (8 * i);
  *at += 4;
  return true;
}

}  // namespace

Result<OutboxJournal> OutboxJournal::Open(const std::string& dir) {
  std::error_code ec;
  fs::create_directories(dir, ec);
  if (ec) return Status::IoError("cannot create the outbox directory " + dir + ": " + ec.message());
  return OutboxJournal(dir);
}

OutboxJournal::OutboxJournal(OutboxJournal&& other) noexcept : dir_(std::move(other.dir_)), fds_(std::move(other.fds_)) {
  other.fds_.clear();
}

OutboxJournal& OutboxJournal::operator=(OutboxJournal&& other) noexcept {
  if (this != &other) {
    CloseAll();
    dir_ = std::move(other.dir_);
    fds_ = std::move(other.fds_);
    other.fds_.clear();
  }
  return *this;
}

OutboxJournal::~OutboxJournal() { CloseAll(); }

void OutboxJournal::CloseAll() {
  for (auto& [key, fd] : fds_) ::close(fd);
  fds_.clear();
}

std::string OutboxJournal::Path(const std::string& trial, uint32_t attempt) const {
  return dir_ + "/" + trial + "." + std::to_string(attempt) + ".log";
}

Status OutboxJournal::Append(const std::string& trial, uint32_t attempt, const std::vector<std::string>& frames) {
  auto key = std::make_pair(trial, attempt);
  if (broken_.count(key)) {
    return Status::IoError("cannot append to " + Path(trial, attempt) + ": it ends in a record cut short");
  }
  auto it = fds_.find(key);
  if (it == fds_.end()) {
    const std::string path = Path(trial, attempt);
    const int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
    if (fd < 0) return Status::IoError("cannot open " + path + ": " + std::strerror(errno));
    it = fds_.emplace(key, fd).first;
  }
  std::string record;
  PutU32(&record, static_cast<uint32_t>(frames.size()));
  for (const auto& f : frames) {
    PutU32(&record, static_cast<uint32_t>(f.size()));
    record += f;
  }
  // A record is whole or not there: one cut short (a full disk part-way) is cut off again, or
  // the records appended after it (the training job's exit among them) could not be read back.
  struct stat st{};
  if (::fstat(it->second, &st) != 0) {
    return Status::IoError("cannot append to " + Path(trial, attempt) + ": " + std::strerror(errno));
  }
  size_t done = 0;
  while (done < record.size()) {
    const ssize_t n = ::write(it->second, record.data() + done, record.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      const int err = n < 0 ? errno : ENOSPC;
      if (::ftruncate(it->second, st.st_size) != 0) {  // the torn record stays: nothing more is written here
        ::close(it->second);
        fds_.erase(it);
        broken_.insert(key);
      }
      return Status::IoError("cannot append to " + Path(trial, attempt) + ": " + std::strerror(err));
    }
    done += static_cast<size_t>(n);
  }
  return Status::Ok();
}

void OutboxJournal::Drop(const std::string& trial, uint32_t attempt) {
  auto it = fds_.find({trial, attempt});
  if (it != fds_.end()) {
    ::close(it->second);
    fds_.erase(it);
  }
  broken_.erase({trial, attempt});
  std::error_code ec;
  fs::remove(Path(trial, attempt), ec);
}

Result<std::vector<OutboxJournal::Leftover>> OutboxJournal::Load() const {
  std::vector<Leftover> out;
  std::error_code ec;
  for (const auto& e : fs::directory_iterator(dir_, ec)) {
    const std::string name = e.path().filename().string();
    if (!name.ends_with(".log")) continue;
    const std::string stem = name.substr(0, name.size() - 4);
    const size_t dot = stem.rfind('.');
    if (dot == std::string::npos || dot == 0) continue;
    Leftover l;
    l.trial = stem.substr(0, dot);
    try {
      l.attempt = static_cast<uint32_t>(std::stoul(stem.substr(dot + 1)));
    } catch (...) {
      continue;
    }
    std::ifstream in(e.path(), std::ios::binary);
    const std::string data((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    size_t at = 0;
    for (;;) {
      uint32_t n = 0;
      const size_t start = at;
      if (!GetU32(data, &at, &n) || n > 16) break;
      std::vector<std::string> frames;
      bool whole = true;
      for (uint32_t i = 0; i < n && whole; ++i) {
        uint32_t len = 0;
        whole = GetU32(data, &at, &len) && data.size() - at >= len;
        if (whole) {
          frames.push_back(data.substr(at, len));
          at += len;
        }
      }
      if (!whole) {
        at = start;
        break;  // cut short by a crash: the rest is lost, the reports before it are whole
      }
      l.reports.push_back(std::move(frames));
    }
    if (at < data.size()) {
      // A record cut short: cut off, so that what a later process appends for this attempt (a
      // resumed upload's exit) follows the whole records and can be read back.
      std::error_code rec;
      fs::resize_file(e.path(), at, rec);
    }
    out.push_back(std::move(l));
  }
  if (ec) return Status::IoError("cannot list " + dir_ + ": " + ec.message());
  return out;
}

}  // namespace hpo::worker
