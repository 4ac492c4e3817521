#include "worker/pipe_channel.h"

#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <numeric>
#include <random>
#include <system_error>

namespace hpo::worker {

namespace {

std::string ErrnoText(int e) { return std::strerror(e); }

// Closes a descriptor when it goes out of scope.
struct FdGuard {
  int fd = -1;
  ~FdGuard() {
    if (fd >= 0) ::close(fd);
  }
};

// A fresh FIFO at `path` (whatever was there is removed first); `made` gets its identity.
Status MakeFifo(const std::string& path, struct stat* made) {
  if (::unlink(path.c_str()) != 0 && errno != ENOENT) {
    return Status::IoError("cannot remove " + path + " to make the FIFO: " + ErrnoText(errno));
  }
  // Readable by the worker's user only: the program runs as that user, and any other reader
  // would take data away from it.
  if (::mkfifo(path.c_str(), 0600) != 0)
    return Status::IoError("cannot create the FIFO " + path + ": " + ErrnoText(errno));
  if (::lstat(path.c_str(), made) != 0)
    return Status::IoError("cannot stat the FIFO " + path + ": " + ErrnoText(errno));
  return Status::Ok();
}

bool SameFile(const struct stat& a, const struct stat& b) {
  return a.st_dev == b.st_dev && a.st_ino == b.st_ino;
}

// Gunzips the file `fd` into `sink`, member after member (concatenated gzip members are one
// stream, as gunzip reads them). Stops early, with OK, once `halt` says so.
Status Inflate(int fd, const std::string& name, std::vector<char>& in, std::vector<char>& out,
               const std::function<Status(const char*, std::size_t)>& sink,
               const std::function<bool()>& halt) {
  z_stream z{};
  if (::inflateInit2(&z, 16 + MAX_WBITS) != Z_OK)
    return Status::Internal("zlib: inflateInit2 failed");
  struct End {
    z_stream* z;
    ~End() { ::inflateEnd(z); }
  } end{&z};
  auto corrupt = [&](const std::string& why) {
    return Status::Corruption("the object " + name + " is not valid gzip data (" + why + ")");
  };
  bool in_member = false;
  uint64_t members = 0;
  for (;;) {
    ssize_t n = ::read(fd, in.data(), in.size());
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return Status::IoError("cannot read the object " + name + ": " + ErrnoText(errno));
    if (n == 0) break;
    z.next_in = reinterpret_cast<Bytef*>(in.data());
    z.avail_in = static_cast<uInt>(n);
    for (;;) {
      if (!in_member) {
        if (z.avail_in == 0) break;
        if (members > 0 && ::inflateReset(&z) != Z_OK)
          return Status::Internal("zlib: inflateReset failed");
        in_member = true;
      }
      z.next_out = reinterpret_cast<Bytef*>(out.data());
      z.avail_out = static_cast<uInt>(out.size());
      const int ret = ::inflate(&z, Z_NO_FLUSH);
      const std::size_t produced = out.size() - z.avail_out;
      if (ret != Z_OK && ret != Z_STREAM_END && ret != Z_BUF_ERROR) {
        return corrupt(z.msg != nullptr ? z.msg : ::zError(ret));
      }
      if (produced > 0) {
        HPO_RETURN_IF_ERROR(sink(out.data(), produced));
        if (halt()) return Status::Ok();
      }
      if (ret == Z_STREAM_END) {
        in_member = false;
        ++members;
        continue;
      }
      if (z.avail_in == 0 && z.avail_out != 0) break;  // wants more input
      if (ret == Z_BUF_ERROR && produced == 0)
        return corrupt("no progress");  // cannot happen; never loop
    }
  }
  if (in_member) return corrupt("it ends before the end of its gzip stream");
  if (members == 0) return corrupt("it is empty");
  return Status::Ok();
}

}  // namespace

std::string RecordIOHeader(uint32_t length) {
  const uint32_t words[2] = {kRecordIOMagic, length & static_cast<uint32_t>(kRecordIOMaxLength)};
  std::string out(8, '\0');
  for (int w = 0; w < 2; ++w) {
    for (int b = 0; b < 4; ++b) out[w * 4 + b] = static_cast<char>((words[w] >> (8 * b)) & 0xff);
  }
  return out;
}

std::size_t RecordIOPadding(uint64_t length) {
  return static_cast<std::size_t>((4 - length % 4) % 4);
}

struct PipeFeeder::Epoch {
  uint64_t bytes = 0;
  std::size_t objects = 0;
  bool reader_gone = false;  // EPIPE: the reader closed its end
};

PipeFeeder::PipeFeeder(PipeFeed feed, PipeFeederOptions options)
    : feed_(std::move(feed)), options_(std::move(options)), inflated_(feed_.objects.size(), -1) {
  const std::size_t size = std::max<std::size_t>(options_.buffer_bytes, 4096);
  in_buf_.resize(size);
  if (feed_.gzip) out_buf_.resize(size);
}

Result<std::unique_ptr<PipeFeeder>> PipeFeeder::Start(PipeFeed feed, PipeFeederOptions options) {
  if (feed.channel.empty()) return Status::InvalidArgument("a Pipe-mode feed needs a channel name");
  const std::string prefix = "channel " + feed.channel + ": ";
  std::error_code ec;
  if (!std::filesystem::is_directory(feed.data_dir, ec)) {
    return Status::InvalidArgument(prefix + "the data directory \"" + feed.data_dir +
                                   "\" does not exist");
  }
  std::unique_ptr<PipeFeeder> f(new PipeFeeder(std::move(feed), std::move(options)));
  f->stop_fd_ = ::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
  if (f->stop_fd_ < 0) return Status::Internal(prefix + "eventfd: " + ErrnoText(errno));
  struct stat made {};
  Status s = MakeFifo(f->FifoPath(0), &made);
  if (!s.ok()) return Status(s.code(), prefix + s.message());
  try {
    f->thread_ = std::thread([p = f.get()] { p->Run(); });
  } catch (const std::system_error& e) {
    ::unlink(f->FifoPath(0).c_str());
    return Status::Internal(prefix + "cannot start the feeding thread: " + e.what());
  }
  return f;
}

PipeFeeder::~PipeFeeder() {
  Stop();
  if (stop_fd_ >= 0) ::close(stop_fd_);
}

void PipeFeeder::Stop() {
  std::call_once(stop_once_, [this] {
    stopping_ = true;
    const uint64_t one = 1;
    if (stop_fd_ >= 0) (void)!::write(stop_fd_, &one, sizeof one);
    if (thread_.joinable()) thread_.join();
  });
}

PipeStats PipeFeeder::stats() const { return {bytes_.load(), epochs_.load()}; }

Status PipeFeeder::error() const {
  std::lock_guard<std::mutex> lock(mu_);
  return error_;
}

std::string PipeFeeder::FifoPath(uint64_t epoch) const {
  return (std::filesystem::path(feed_.data_dir) / (feed_.channel + "_" + std::to_string(epoch)))
      .string();
}

bool PipeFeeder::Wait(std::chrono::milliseconds timeout) const {
  pollfd p{stop_fd_, POLLIN, 0};
  (void)::poll(&p, 1, static_cast<int>(timeout.count()));
  return stopping_.load();
}

void PipeFeeder::Fail(Status s) {
  s = Status(s.code(), "channel " + feed_.channel + ": " + s.message());
  {
    std::lock_guard<std::mutex> lock(mu_);
    error_ = s;
  }
  if (options_.on_error) options_.on_error(s);
}

void PipeFeeder::Run() {
  // A write to a FIFO whose reader has gone raises SIGPIPE in the writing thread: blocked here,
  // so it is EPIPE (and the pending signal is taken back below), never the worker's death.
  sigset_t pipe_set;
  sigemptyset(&pipe_set);
  sigaddset(&pipe_set, SIGPIPE);
  pthread_sigmask(SIG_BLOCK, &pipe_set, nullptr);
  const auto log = [this](const std::string& line) {
    if (options_.log) options_.log("channel " + feed_.channel + ": " + line);
  };
  const auto max_wait = std::max(options_.open_poll_max, std::chrono::milliseconds(1));
  // Removes the FIFO at `path` if it is still the one made (`made`).
  const auto remove = [](const std::string& path, const struct stat& made) {
    struct stat now {};
    if (::lstat(path.c_str(), &now) == 0 && SameFile(now, made)) ::unlink(path.c_str());
  };
  struct stat made {};
  if (::lstat(FifoPath(0).c_str(), &made) != 0) {
    return Fail(Status::IoError("the FIFO " + FifoPath(0) +
                                " is gone before the program opened it: " + ErrnoText(errno)));
  }
  for (uint64_t epoch = 0;; ++epoch) {
    const std::string path = FifoPath(epoch);
    // Wait for a reader: open() with O_NONBLOCK fails with ENXIO until there is one.
    FdGuard fd;
    auto wait = std::chrono::milliseconds(1);
    for (;;) {
      fd.fd = ::open(path.c_str(), O_WRONLY | O_NONBLOCK | O_CLOEXEC);
      if (fd.fd >= 0) break;
      if (errno == EINTR) continue;
      if (errno != ENXIO)
        return Fail(Status::IoError("cannot open the FIFO " + path + ": " + ErrnoText(errno)));
      if (Wait(wait)) {
        // Stopped: a reader that is just opening it gets end of file rather than blocking for
        // ever, and one that comes later finds no FIFO.
        FdGuard last{::open(path.c_str(), O_WRONLY | O_NONBLOCK | O_CLOEXEC)};
        remove(path, made);
        return;
      }
      wait = std::min(wait * 2, max_wait);
    }
    struct stat opened {};
    if (::fstat(fd.fd, &opened) != 0 || !S_ISFIFO(opened.st_mode) || !SameFile(opened, made)) {
      return Fail(Status::IoError(
          path + " is no longer the FIFO the worker made (the program replaced it)"));
    }
    Epoch e;
    Status fed = Feed(fd.fd, epoch, &e);
    if (fed.ok() && !e.reader_gone && !stopping_.load()) {
      // Everything is in the pipe: wait until the reader has taken it (or went away), so that
      // the epoch ends once it is read to its end.
      wait = std::chrono::milliseconds(1);
      for (;;) {
        int queued = 0;
        if (::ioctl(fd.fd, FIONREAD, &queued) != 0 || queued == 0) break;
        pollfd p[2] = {{fd.fd, 0, 0}, {stop_fd_, POLLIN, 0}};
        (void)::poll(p, 2, static_cast<int>(wait.count()));
        if (stopping_.load() || (p[0].revents & (POLLERR | POLLHUP)) != 0) break;
        wait = std::min(wait * 2, max_wait);
      }
    }
    // The next epoch's FIFO exists before this one ends: a reader at end of file opens it at once.
    struct stat next {};
    const bool go_on = fed.ok() && !stopping_.load();
    Status made_next = go_on ? MakeFifo(FifoPath(epoch + 1), &next) : Status::Ok();
    // Counted before the reader can see the end of it: stats() read at end of file includes it.
    if (go_on) ++epochs_;
    ::close(fd.fd);  // the reader sees end of file
    fd.fd = -1;
    remove(path, made);
    if (!fed.ok()) {
      log("epoch " + std::to_string(epoch) + ": feeding stopped after " + std::to_string(e.bytes) +
          " bytes");
      return Fail(fed);
    }
    if (!go_on) {
      if (e.bytes > 0)
        log("epoch " + std::to_string(epoch) + ": stopped after " + std::to_string(e.bytes) +
            " bytes");
      return;
    }
    log("epoch " + std::to_string(epoch) + ": " + std::to_string(e.bytes) + " bytes, " +
        std::to_string(e.objects) + " object(s), into " + path +
        (e.reader_gone ? " (the reader closed it early)" : ""));
    if (!made_next.ok()) return Fail(made_next);
    made = next;
  }
}

Status PipeFeeder::Feed(int fd, uint64_t number, Epoch* epoch) {
  std::vector<std::size_t> order(feed_.objects.size());
  std::iota(order.begin(), order.end(), std::size_t{0});
  if (feed_.shuffle_seed && number > 0) {  // Fisher-Yates, as the staging's shuffle
    std::mt19937_64 rng(static_cast<uint64_t>(*feed_.shuffle_seed) ^ (0x9e3779b97f4a7c15ULL * number));
    for (std::size_t i = order.size(); i > 1; --i) std::swap(order[i - 1], order[rng() % i]);
  }
  for (std::size_t i : order) {
    HPO_RETURN_IF_ERROR(FeedObject(fd, i, epoch));
    if (epoch->reader_gone || stopping_.load()) return Status::Ok();
    ++epoch->objects;
  }
  return Status::Ok();
}

Status PipeFeeder::WriteAll(int fd, const char* data, std::size_t size, Epoch* epoch) {
  while (size > 0) {
    if (stopping_.load()) return Status::Ok();
    const ssize_t n = ::write(fd, data, size);
    if (n > 0) {
      data += n;
      size -= static_cast<std::size_t>(n);
      epoch->bytes += static_cast<uint64_t>(n);
      bytes_ += static_cast<uint64_t>(n);
      continue;
    }
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && errno == EAGAIN) {  // the pipe is full: wait for room, the reader's end, or Stop()
      pollfd p[2] = {{fd, POLLOUT, 0}, {stop_fd_, POLLIN, 0}};
      (void)::poll(p, 2, -1);
      continue;  // POLLERR (no reader) makes the next write() fail with EPIPE
    }
    if (n < 0 && errno == EPIPE) {
      sigset_t pipe_set;
      sigemptyset(&pipe_set);
      sigaddset(&pipe_set, SIGPIPE);
      const timespec zero{0, 0};
      (void)::sigtimedwait(&pipe_set, nullptr, &zero);  // the SIGPIPE this write raised, if any
      epoch->reader_gone = true;
      return Status::Ok();
    }
    return Status::IoError("cannot write to the FIFO: " + ErrnoText(n < 0 ? errno : EIO));
  }
  return Status::Ok();
}

Result<uint64_t> PipeFeeder::InflatedLength(std::size_t index) {
  if (inflated_[index] >= 0) return static_cast<uint64_t>(inflated_[index]);
  const PipeObject& o = feed_.objects[index];
  FdGuard in{::open(o.path.c_str(), O_RDONLY | O_CLOEXEC)};
  if (in.fd < 0)
    return Status::IoError("cannot read the object " + o.name + ": " + ErrnoText(errno));
  uint64_t length = 0;
  Status s = Inflate(
      in.fd, o.name, in_buf_, out_buf_,
      [&](const char*, std::size_t n) {
        length += n;
        return Status::Ok();
      },
      [this] { return stopping_.load(); });
  if (!s.ok()) return s;
  if (stopping_.load()) return uint64_t{0};  // not counted to the end: not kept
  inflated_[index] = static_cast<int64_t>(length);
  return length;
}

Status PipeFeeder::FeedObject(int fd, std::size_t index, Epoch* epoch) {
  const PipeObject& o = feed_.objects[index];
  const auto halt = [&] { return epoch->reader_gone || stopping_.load(); };
  uint64_t length = 0;  // the payload's length, for RecordIO
  if (feed_.record_io) {
    if (feed_.gzip) {
      auto counted = InflatedLength(index);
      if (!counted.ok()) return counted.status();
      if (stopping_.load()) return Status::Ok();
      length = *counted;
    } else {
      struct stat st {};
      if (::stat(o.path.c_str(), &st) != 0)
        return Status::IoError("cannot read the object " + o.name + ": " + ErrnoText(errno));
      length = static_cast<uint64_t>(st.st_size);
    }
    if (length > kRecordIOMaxLength) {
      return Status::InvalidArgument("the object " + o.name + " is " + std::to_string(length) +
                                     " bytes, more than a RecordIO record can hold (" +
                                     std::to_string(kRecordIOMaxLength) + ")");
    }
  }
  FdGuard in{::open(o.path.c_str(), O_RDONLY | O_CLOEXEC)};
  if (in.fd < 0)
    return Status::IoError("cannot read the object " + o.name + ": " + ErrnoText(errno));
  if (feed_.record_io) {
    const std::string header = RecordIOHeader(static_cast<uint32_t>(length));
    HPO_RETURN_IF_ERROR(WriteAll(fd, header.data(), header.size(), epoch));
    if (halt()) return Status::Ok();
  }
  uint64_t payload = 0;
  auto sink = [&](const char* data, std::size_t n) {
    payload += n;
    return WriteAll(fd, data, n, epoch);
  };
  if (feed_.gzip) {
    HPO_RETURN_IF_ERROR(Inflate(in.fd, o.name, in_buf_, out_buf_, sink, halt));
  } else {
    for (;;) {
      const ssize_t n = ::read(in.fd, in_buf_.data(), in_buf_.size());
      if (n < 0 && errno == EINTR) continue;
      if (n < 0)
        return Status::IoError("cannot read the object " + o.name + ": " + ErrnoText(errno));
      if (n == 0) break;
      HPO_RETURN_IF_ERROR(sink(in_buf_.data(), static_cast<std::size_t>(n)));
      if (halt()) return Status::Ok();
    }
  }
  if (halt() || !feed_.record_io) return Status::Ok();
  if (payload != length) {  // the record's header promised `length` bytes
    return Status::IoError("the object " + o.name + " changed while it was fed (" +
                           std::to_string(payload) + " bytes instead of " + std::to_string(length) +
                           ")");
  }
  static constexpr char kZeros[4] = {0, 0, 0, 0};
  return WriteAll(fd, kZeros, RecordIOPadding(length), epoch);
}

}  // namespace hpo::worker
