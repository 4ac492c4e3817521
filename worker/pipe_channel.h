// worker/pipe_channel.h: feeding a Pipe-mode channel to the training program through FIFOs.
//
// What it is: SageMaker's Pipe input mode (reference/sagemaker-semantics.md §4). For a channel
// `<name>` the program reads the channel's data from the named pipe `input/data/<name>_<epoch>`
// (/opt/ml/input/data/<name>_0, _1, ...: siblings of the channel directory, which stays and
// stays empty). A PipeFeeder, on one thread of its own:
//   - creates `<name>_0` in Start(), before the program starts;
//   - waits until a reader opens the FIFO of the current epoch, then writes the channel's whole
//     data into it: every object of the feed, in the feed's order, each gunzipped on the fly
//     when `gzip` (zlib; concatenated gzip members are one object, as gunzip reads them), each
//     wrapped in one MXNet RecordIO record when `record_io` (see RecordIOHeader below);
//   - once everything is written and the reader has taken it all from the pipe, creates
//     `<name>_<epoch + 1>`, then closes its write end (so a reader that sees end of file finds
//     the next FIFO there already) and removes the finished FIFO (a late reader then fails to
//     open it instead of blocking forever); the next one is fed the same way when it is opened.
//     A reader that closes early (EPIPE) just ends that epoch;
//   - logs one line per epoch through `log` (bytes written, the FIFO's name).
// The feed names local files only: data_channels.h's StageChannel spools s3:// objects into the
// attempt's scratch directory once, during staging, so every epoch replays local files (no
// download per epoch, no S3 request while the program reads). Files are streamed through a
// fixed buffer (buffer_bytes), so memory does not grow with the objects' sizes; gzip+RecordIO
// needs each object's decompressed length before its record: the first epoch inflates an object
// twice (count, then feed), later epochs reuse the count.
//
// Waiting without blocking forever: the FIFO is opened with O_NONBLOCK (open() fails with ENXIO
// while there is no reader; retried after 1 ms, doubling up to open_poll_max), writes are
// non-blocking and wait in poll() together with the stop event, and SIGPIPE is blocked on the
// feeder's thread (a reader that went away is EPIPE there, never a signal to the worker). So
// Stop() returns within a poll interval or one buffer's worth of work, whatever the reader does.
// The write end is O_CLOEXEC: no program inherits it (which would hide the end of file). The
// FIFO opened must still be the one created (same inode): a program that replaced or removed it
// ends the feeding with an error rather than having a file of its own overwritten.
//
// Errors: Start() returns InvalidArgument for a feed without channel name or with a missing
// data_dir, IoError when `<name>_0` cannot be created, Internal when the thread cannot start.
// Later errors end the feeding for good (no further FIFO is created; the reader of the current
// one sees end of file) and are reported once through `on_error` and by error(): Corruption for an
// object that is not valid gzip (naming the object and zlib's reason), IoError for a file that
// cannot be read or a FIFO that cannot be created, was removed or replaced, InvalidArgument for a
// RecordIO record over 2^29 - 1 bytes. Every message starts with "channel <name>: ". Nothing
// here throws or aborts on bad data.
//
// Lifetime and thread safety: Stop() (also run by the destructor) makes the thread end and joins
// it; the reader of the current FIFO then sees end of file (also one blocked opening it), and a
// FIFO nobody opened is removed; it is idempotent and may be called from any thread, but not from
// `log` or `on_error` (which run on the feeder's thread). stats() and error() may be called from
// any thread at any time. The callbacks must not outlive what they capture: they are never called
// after Stop() has returned.
#pragma once

#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <optional>
#include <vector>

#include "common/status.h"

namespace hpo::worker {

struct PipeObject {
  std::string path;  // a local file: the object itself, or its spooled copy
  std::string name;  // how logs and errors name it (its URI or path)
};

struct PipeFeed {
  std::string channel;              // the channel name; the FIFOs are <data_dir>/<channel>_<epoch>
  std::string data_dir;             // <root>/input/data, on the worker's side; must exist
  std::vector<PipeObject> objects;  // in feeding order; may be empty (empty epochs)
  bool gzip = false;                // CompressionType Gzip: each object is gunzipped while fed
  bool record_io = false;           // RecordWrapperType RecordIO: each object is one record
  // ShuffleConfig.Seed: SageMaker shuffles Pipe-mode data at the start of every epoch. Epoch 0
  // goes in `objects`' order (the staging shuffled it with the seed); each later epoch in an
  // order drawn from the seed and the epoch's number, the same on every worker.
  std::optional<int64_t> shuffle_seed;
};

struct PipeStats {
  uint64_t bytes = 0;   // written into the FIFOs, all epochs together (framing included)
  uint64_t epochs = 0;  // epochs fed to their end (a reader that closed early counts too)
};

struct PipeFeederOptions {
  std::function<void(const std::string&)> log;  // one line per epoch; may be empty
  std::function<void(const Status&)> on_error;  // once, when feeding ends with an error
  std::chrono::milliseconds open_poll_max{50};  // longest wait between tries to open a FIFO
  std::size_t buffer_bytes = 256 * 1024;        // read and write buffer (two of them with gzip)
};

// MXNet RecordIO framing (dmlc-core recordio): little-endian uint32 magic 0xced7230a, then a
// little-endian uint32 whose lower 29 bits are the payload's length and upper 3 bits the
// continuation flag (always 0 here: one record per payload), then the payload, then zero bytes
// up to a multiple of 4. A payload must be shorter than 2^29 bytes.
inline constexpr uint32_t kRecordIOMagic = 0xced7230a;
inline constexpr uint64_t kRecordIOMaxLength = (uint64_t{1} << 29) - 1;
std::string RecordIOHeader(uint32_t length);   // the 8 header bytes
std::size_t RecordIOPadding(uint64_t length);  // 0-3 zero bytes after a payload of `length`

class PipeFeeder {
 public:
  // Creates <data_dir>/<channel>_0 (replacing whatever is there) and starts feeding. Errors as
  // described at the top.
  [[nodiscard]] static Result<std::unique_ptr<PipeFeeder>> Start(PipeFeed feed,
                                                                 PipeFeederOptions options = {});
  ~PipeFeeder();
  PipeFeeder(const PipeFeeder&) = delete;
  PipeFeeder& operator=(const PipeFeeder&) = delete;

  // Ends the feeding (a reader of the current epoch sees end of file) and joins the thread.
  void Stop();
  PipeStats stats() const;
  // OK, or the error that ended the feeding.
  Status error() const;
  const std::string& channel() const { return feed_.channel; }

 private:
  PipeFeeder(PipeFeed feed, PipeFeederOptions options);
  struct Epoch;
  void Run();
  Status Feed(int fd, uint64_t number, Epoch* epoch);
  Status FeedObject(int fd, std::size_t index, Epoch* epoch);
  Status WriteAll(int fd, const char* data, std::size_t size, Epoch* epoch);
  Result<uint64_t> InflatedLength(std::size_t index);
  bool Wait(std::chrono::milliseconds timeout) const;  // true when stopping
  std::string FifoPath(uint64_t epoch) const;
  void Fail(Status s);

  const PipeFeed feed_;
  const PipeFeederOptions options_;
  int stop_fd_ = -1;  // eventfd, readable once Stop() was called
  std::atomic<bool> stopping_{false};
  std::atomic<uint64_t> bytes_{0};
  std::atomic<uint64_t> epochs_{0};
  mutable std::mutex mu_;
  Status error_;                        // guarded by mu_
  std::vector<int64_t> inflated_;       // feeder thread: decompressed lengths, -1 unknown
  std::vector<char> in_buf_, out_buf_;  // feeder thread
  std::once_flag stop_once_;
  std::thread thread_;
};

}  // namespace hpo::worker
