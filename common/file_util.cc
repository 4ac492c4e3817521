#include "common/file_util.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <optional>
#include <sstream>

namespace hpo {
namespace fs = std::filesystem;
namespace {

std::string Errno(const std::string& what, const std::string& path) {
  return what + " " + path + ": " + std::strerror(errno);
}

}  // namespace

Result<std::string> ReadFile(const std::string& path, std::size_t max_bytes) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return Status::IoError(Errno("cannot open", path));
  struct stat st {};
  if (::fstat(fd, &st) != 0) {
    Status s = Status::IoError(Errno("cannot stat", path));
    ::close(fd);
    return s;
  }
  if (S_ISDIR(st.st_mode)) {
    ::close(fd);
    return Status::IoError("cannot read " + path + ": it is a directory");
  }
  std::string out;
  char buf[1 << 16];
  for (;;) {
    ssize_t n = ::read(fd, buf, sizeof buf);
    if (n < 0) {
      if (errno == EINTR) continue;
      Status s = Status::IoError(Errno("cannot read", path));
      ::close(fd);
      return s;
    }
    if (n == 0) break;
    out.append(buf, static_cast<std::size_t>(n));
    if (out.size() > max_bytes) {
      ::close(fd);
      return Status::IoError("cannot read " + path + ": larger than " + std::to_string(max_bytes) + " bytes");
    }
  }
  ::close(fd);
  return out;
}

Status WriteFileAtomically(const std::string& path, const std::string& data, Durability durability, unsigned mode) {
  const bool durable = durability == Durability::kDurable;
  std::string tmp = path + ".tmp." + std::to_string(::getpid());
  int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, static_cast<mode_t>(mode));
  if (fd < 0) return Status::IoError(Errno("cannot create", tmp));
  const char* p = data.data();
  std::size_t left = data.size();
  while (left > 0) {
    ssize_t n = ::write(fd, p, left);
    if (n < 0) {
      if (errno == EINTR) continue;
      Status s = Status::IoError(Errno("cannot write", tmp));
      ::close(fd);
      ::unlink(tmp.c_str());
      return s;
    }
    p += n;
    left -= static_cast<std::size_t>(n);
  }
  if (durable && ::fsync(fd) != 0) {
    Status s = Status::IoError(Errno("cannot fsync", tmp));
    ::close(fd);
    ::unlink(tmp.c_str());
    return s;
  }
  ::close(fd);
  if (::rename(tmp.c_str(), path.c_str()) != 0) {
    Status s = Status::IoError(Errno("cannot rename onto", path));
    ::unlink(tmp.c_str());
    return s;
  }
  const size_t slash = path.rfind('/');
  const std::string dir = slash == std::string::npos ? "." : slash == 0 ? "/" : path.substr(0, slash);
  int dfd = durable ? ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC) : -1;
  if (dfd >= 0) {
    ::fsync(dfd);
    ::close(dfd);
  }
  return Status::Ok();
}

DirectoryLock::~DirectoryLock() {
  if (fd_ >= 0) ::close(fd_);  // closing the descriptors releases the flocks
  if (dir_fd_ >= 0) ::close(dir_fd_);
}

Status DirectoryLock::Watch(const std::string& file) {
  struct stat st {};
  if (::stat(file.c_str(), &st) != 0) return Status::IoError("cannot read " + file + ": " + std::strerror(errno));
  watched_ = file;
  watched_dev_ = st.st_dev;
  watched_ino_ = st.st_ino;
  return Status::Ok();
}

Status DirectoryLock::StillThere() const {
  if (watched_.empty()) return Status::Ok();
  struct stat st {};
  if (::stat(watched_.c_str(), &st) != 0) {
    if (errno != ENOENT) return Status::Ok();  // cannot tell (a transient error): not a verdict
    return Status::FailedPrecondition(watched_ + " was deleted while in use");
  }
  if (st.st_dev != watched_dev_ || st.st_ino != watched_ino_) {
    return Status::FailedPrecondition(watched_ + " was replaced by another file while in use");
  }
  return Status::Ok();
}

namespace {

// The process holding a flock on `path` (from /proc/locks): its pid, 0 when none holds one, nullopt
// when it cannot be told (no /proc, no such path).
std::optional<long> FlockHolder(const std::string& path) {
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0) return std::nullopt;
  std::ifstream in("/proc/locks");
  if (!in) return std::nullopt;
  // "1: FLOCK  ADVISORY  WRITE 4242 00:2d:1234567 0 EOF": the device as hex major:minor, then the
  // inode. Waiters ("1: -> FLOCK ...") hold nothing.
  char want[64];
  std::snprintf(want, sizeof want, "%02x:%02x:%llu", major(st.st_dev), minor(st.st_dev),
                static_cast<unsigned long long>(st.st_ino));
  std::string line;
  while (std::getline(in, line)) {
    std::istringstream fields(line);
    std::string index, kind, mode, access, pid, where;
    if (!(fields >> index >> kind) || kind != "FLOCK") continue;
    if (!(fields >> mode >> access >> pid >> where)) continue;
    if (where == want) return std::max(1L, std::strtol(pid.c_str(), nullptr, 10));
  }
  return 0;
}

}  // namespace

Result<std::unique_ptr<DirectoryLock>> LockDirectory(const std::string& dir, const std::string& what) {
  const std::string path = dir + "/lock";
  auto in_use = [&] {
    auto holder = ReadFile(path, 4096);
    std::string who = holder.ok() ? *holder : std::string();
    while (!who.empty() && (who.back() == '\n' || who.back() == ' ')) who.pop_back();
    // The lock file deleted (its note with it): the directory's lock still names its holder, and
    // the process's own command line says what it is (a durability pass read "another process").
    if (const std::optional<long> pid = who.empty() ? FlockHolder(dir) : std::nullopt; pid && *pid > 0) {
      auto cmdline = ReadFile("/proc/" + std::to_string(*pid) + "/cmdline", 4096);
      std::string command = cmdline.ok() ? *cmdline : std::string();
      std::replace(command.begin(), command.end(), '\0', ' ');
      while (!command.empty() && command.back() == ' ') command.pop_back();
      if (command.size() > 120) command = command.substr(0, 117) + "...";
      who = "pid " + std::to_string(*pid) + (command.empty() ? "" : " (" + command + ")");
    }
    return Status::FailedPrecondition(dir + " is in use by " + (who.empty() ? "another process" : who));
  };
  const int dir_fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dir_fd < 0) return Status::IoError("cannot open " + dir + ": " + std::strerror(errno));
  if (::flock(dir_fd, LOCK_EX | LOCK_NB) != 0) {
    const int err = errno;
    ::close(dir_fd);
    if (err != EWOULDBLOCK) return Status::IoError("cannot lock " + dir + ": " + std::strerror(err));
    return in_use();
  }
  int fd = ::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
  if (fd < 0) {
    const int err = errno;
    ::close(dir_fd);
    return Status::IoError("cannot open " + path + ": " + std::strerror(err));
  }
  if (::flock(fd, LOCK_EX | LOCK_NB) != 0) {  // an older hpo holding only the file's lock
    const int err = errno;
    ::close(fd);
    ::close(dir_fd);
    if (err != EWOULDBLOCK) return Status::IoError("cannot lock " + path + ": " + std::strerror(err));
    return in_use();
  }
  // Ours now: say who holds it (the old text, if any, was a holder that has ended). Written over
  // the old text, then cut to length: emptied first, the file read empty for a moment, and a
  // restarted worker reading it then did not see that its predecessor's guard held it (it waits
  // for that one) and quit.
  const std::string text = "pid " + std::to_string(::getpid()) + " (" + what + ")\n";
  if (::pwrite(fd, text.data(), text.size(), 0) < 0 || ::ftruncate(fd, static_cast<off_t>(text.size())) != 0) {
    // The lock holds without the note; only the message another process gets is poorer.
  }
  return std::unique_ptr<DirectoryLock>(new DirectoryLock(fd, dir_fd));
}


std::optional<bool> DirectoryLocked(const std::string& dir) {
  const std::optional<long> holder = FlockHolder(dir);
  if (!holder) return std::nullopt;
  return *holder != 0;
}

bool ReadProcStat(pid_t pid, ProcInfo* out) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/stat");
  std::string text;
  if (!std::getline(in, text)) return false;
  const size_t close = text.rfind(')');
  if (close == std::string::npos) return false;
  std::istringstream rest(text.substr(close + 1));
  long ppid = 0, pgid = 0;
  if (!(rest >> out->state >> ppid >> pgid)) return false;
  out->ppid = static_cast<pid_t>(ppid);
  out->pgid = static_cast<pid_t>(pgid);
  return true;
}

void RemoveStaleTemporaries(const std::string& dir, const std::string& prefix) {
  std::error_code ec;
  for (const auto& e : std::filesystem::directory_iterator(dir, ec)) {
    const std::string name = e.path().filename().string();
    if (name.size() <= prefix.size() || name.compare(0, prefix.size(), prefix) != 0) continue;
    const std::string rest = name.substr(prefix.size());
    const size_t digits = rest.find_first_not_of("0123456789");
    if (digits == 0 || (digits != std::string::npos && rest[digits] != '-')) continue;
    const long pid = std::strtol(rest.substr(0, digits).c_str(), nullptr, 10);
    if (pid <= 0) continue;
    // Alive, or not ours to judge, unless it is a zombie: killed, and not reaped by its parent
    // yet (a shell that started the worker in the background), which writes nothing more.
    ProcInfo p;
    if ((::kill(static_cast<pid_t>(pid), 0) == 0 || errno != ESRCH) &&
        !(ReadProcStat(static_cast<pid_t>(pid), &p) && p.state == 'Z')) {
      continue;
    }
    std::error_code rm;
    std::filesystem::remove(e.path(), rm);
  }
}

Status CreatePrivateDirectory(const std::string& dir) {
  std::error_code ec;
  const bool existed = std::filesystem::exists(dir, ec);
  std::filesystem::create_directories(dir, ec);
  if (ec) return Status::IoError("cannot create the directory " + dir + ": " + ec.message());
  if (!existed) {
    std::filesystem::permissions(dir, std::filesystem::perms::owner_all, std::filesystem::perm_options::replace, ec);
    if (ec) return Status::IoError("cannot make the directory " + dir + " its owner's only: " + ec.message());
  }
  return Status::Ok();
}

std::string NearestExisting(const std::string& path) {
  std::filesystem::path at = path;
  std::error_code ec;
  while (!std::filesystem::exists(std::filesystem::symlink_status(at, ec))) {
    if (!at.has_parent_path() || at.parent_path() == at) return "";
    at = at.parent_path();
  }
  return at.string();
}

Status NoFileInTheWay(const std::string& path) {
  const std::string at = NearestExisting(path);
  std::error_code ec;
  if (at.empty() || std::filesystem::is_directory(at, ec)) return Status::Ok();
  return Status::InvalidArgument(at + " is a file, where the path " + path + " needs a directory");
}

Status CheckOwnDirectory(const std::string& dir, const std::string& what) {
  struct stat st {};
  if (::stat(dir.c_str(), &st) != 0) {
    if (errno == ENOENT) return Status::Ok();
    return Status::IoError("cannot read " + what + " " + dir + ": " + std::strerror(errno));
  }
  if (!S_ISDIR(st.st_mode)) return Status::FailedPrecondition(what + " " + dir + " is not a directory");
  const uid_t me = ::geteuid();
  if (st.st_uid != me && st.st_uid != 0) {
    return Status::FailedPrecondition(
        what + " " + dir + " belongs to user " + std::to_string(st.st_uid) + ", not to this one (" +
        std::to_string(me) +
        "): whoever made it could have left links there that training jobs' files would follow; give a directory of "
        "this user's, or remove that one");
  }
  if (st.st_mode & (S_IWGRP | S_IWOTH)) {
    char mode[8];
    std::snprintf(mode, sizeof mode, "%04o", static_cast<unsigned>(st.st_mode & 07777));
    // A shared directory (sticky, as /tmp, or another user's): never "chmod 700" it.
    const bool shared = (st.st_mode & S_ISVTX) || st.st_uid != me;
    return Status::FailedPrecondition(
        what + " " + dir + " (mode " + mode + ") is writable by other users, who could leave links there that " +
        "training jobs' files would follow; " +
        (shared ? "give a directory of its own (e.g. " + dir + "/hpo-worker, which it makes its owner's only)"
                : "make it its owner's only (chmod 700 " + dir + "), or give another"));
  }
  return Status::Ok();
}

OwnedFd::~OwnedFd() {
  if (fd_ >= 0) ::close(fd_);
}

OwnedFd& OwnedFd::operator=(OwnedFd&& o) noexcept {
  if (this != &o) {
    if (fd_ >= 0) ::close(fd_);
    fd_ = o.fd_;
    o.fd_ = -1;
  }
  return *this;
}

namespace {

// The last step of OpenRegularFile(Beneath): `name` opened from `dir` (AT_FDCWD: the working
// directory, or `name` is absolute); `path` names it in messages.
Result<OwnedFd> OpenRegularAt(int dir, const char* name, const std::string& path, uint64_t* size) {
  OwnedFd fd(::openat(dir, name, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_NOCTTY | O_CLOEXEC));
  if (fd.get() < 0) {
    const int e = errno;
    if (e == ENOENT) return Status::NotFound("cannot read " + path + ": it is gone");
    if (e == ELOOP) return Status::InvalidArgument("cannot read " + path + ": it is a symbolic link, not followed");
    return Status::IoError("cannot read " + path + ": " + std::strerror(e));
  }
  struct stat st {};
  if (::fstat(fd.get(), &st) != 0) return Status::IoError("cannot read " + path + ": " + std::strerror(errno));
  if (!S_ISREG(st.st_mode)) return Status::InvalidArgument("cannot read " + path + ": not a regular file");
  // Regular files never block; reads go back to blocking mode for the callers' loops.
  const int flags = ::fcntl(fd.get(), F_GETFL);
  if (flags >= 0) (void)::fcntl(fd.get(), F_SETFL, flags & ~O_NONBLOCK);
  if (size) *size = static_cast<uint64_t>(st.st_size);
  return fd;
}

}  // namespace

Result<OwnedFd> OpenRegularFile(const std::string& path, uint64_t* size) {
  return OpenRegularAt(AT_FDCWD, path.c_str(), path, size);
}

Result<OwnedFd> OpenRegularFileBeneath(const std::string& root, const std::string& rel, uint64_t* size) {
  const std::string path = root + "/" + rel;
  auto open_dir = [&](int at, const std::string& name, const std::string& shown) -> Result<OwnedFd> {
    OwnedFd d(::openat(at, name.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
    if (d.get() >= 0) return d;
    const int e = errno;
    if (e == ENOENT) return Status::NotFound("cannot read " + path + ": " + shown + " is gone");
    if (e == ELOOP || e == ENOTDIR) {
      return Status::InvalidArgument("cannot read " + path + ": " + shown + " is a link or not a directory, not followed");
    }
    return Status::IoError("cannot read " + path + ": " + shown + ": " + std::strerror(e));
  };
  auto dir = open_dir(AT_FDCWD, root, root);
  if (!dir.ok()) return dir.status();
  OwnedFd at = std::move(dir).value();
  std::string walked = root;
  size_t from = 0;
  for (;;) {
    const size_t slash = rel.find('/', from);
    const std::string part = rel.substr(from, slash == std::string::npos ? std::string::npos : slash - from);
    if (part == "..") return Status::InvalidArgument("cannot read " + path + ": \"..\" is not followed");
    if (slash == std::string::npos) {
      if (part.empty() || part == ".") return Status::InvalidArgument("cannot read " + path + ": not a file name");
      return OpenRegularAt(at.get(), part.c_str(), path, size);
    }
    if (!part.empty() && part != ".") {
      walked += "/" + part;
      auto next = open_dir(at.get(), part, walked);
      if (!next.ok()) return next.status();
      at = std::move(next).value();
    }
    from = slash + 1;
  }
}

Status ReadExactly(int fd, char* buf, std::size_t n, const std::string& path) {
  std::size_t got = 0;
  while (got < n) {
    const ssize_t r = ::read(fd, buf + got, n - got);
    if (r < 0 && errno == EINTR) continue;
    if (r < 0) return Status::IoError("cannot read " + path + ": " + std::strerror(errno));
    if (r == 0) return Status::IoError("cannot read " + path + ": it shrank while it was read");
    got += static_cast<std::size_t>(r);
  }
  return Status::Ok();
}

Result<std::map<std::string, std::string>> FilesBeneath(const std::string& root,
                                                       std::map<std::string, std::string>* skipped) {
  const fs::path dir(root);
  std::map<std::string, std::string> out;
  std::error_code ec;
  if (!fs::exists(fs::symlink_status(dir, ec))) return out;
  // Replaced with a link by the program: not followed (the worker would upload a directory of
  // the host), and not taken for empty (the destination's checkpoints would be deleted).
  if (!IsRealDirectory(dir.string())) {
    return Status::InvalidArgument(dir.string() + " is not a directory: a link there is not followed, and nothing "
                                   "under it is uploaded (the program replaced the directory?)");
  }
  fs::recursive_directory_iterator it(dir, fs::directory_options::skip_permission_denied, ec), end;
  if (ec) return Status::IoError("cannot list " + dir.string() + ": " + ec.message());
  for (; it != end; it.increment(ec)) {
    if (ec) return Status::IoError("cannot list " + dir.string() + ": " + ec.message());
    std::error_code sec;
    const bool link = it->is_symlink(sec);
    if (!link && !it->is_regular_file(sec)) continue;
    const std::string rel = it->path().lexically_relative(dir).generic_string();  // (relative() follows links)
    if (sec) continue;
    if (!link) {
      out[rel] = rel;
      continue;
    }
    const fs::path target = fs::read_symlink(it->path(), sec);
    if (sec) continue;
    const std::string source = (fs::path(rel).parent_path() / target).lexically_normal().generic_string();
    std::string why;
    if (target.is_absolute()) {
      why = "absolute";
    } else if (source.empty() || source == "." || source == ".." || source.rfind("../", 0) == 0) {
      why = "outside the directory";
    } else {  // what the opener will find: each directory on the way a real one, then a file
      fs::path at = dir;
      const fs::path parts(source);
      for (auto part = parts.begin(); part != parts.end() && why.empty(); ++part) {
        at /= *part;
        const fs::file_type type = fs::symlink_status(at, sec).type();
        const bool last = std::next(part) == parts.end();
        if (type == fs::file_type::not_found) {
          why = "to nothing";
        } else if (type == fs::file_type::symlink) {
          why = last ? "to a link" : "through a link";
        } else if (!last && type != fs::file_type::directory) {
          why = "to nothing";
        } else if (last && type != fs::file_type::regular) {
          why = type == fs::file_type::directory ? "to a directory" : "not to a file";
        }
      }
    }
    if (!why.empty()) {
      if (skipped) (*skipped)[rel] = "-> " + target.string() + " (" + why + ")";
      continue;
    }
    if (skipped) skipped->erase(rel);
    out[rel] = source;  // (one swapped since, for a link or a directory, fails to open: skipped as swapped)
  }
  return out;
}

bool IsRealDirectory(const std::string& path) {
  struct stat st {};
  return ::lstat(path.c_str(), &st) == 0 && S_ISDIR(st.st_mode);
}

}  // namespace hpo
