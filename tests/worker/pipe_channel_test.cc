// Pipe input mode: PipeFeeder (worker/pipe_channel.h) feeding FIFOs that a reader thread here
// opens and reads like a training program would, and StageChannel's Pipe-mode plans
// (worker/data_channels.h) from local sources. The same against a real S3 (radosgw) is in
// s3_radosgw_test.cc.
#include "worker/pipe_channel.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <future>
#include <mutex>
#include <set>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

#include "worker/data_channels.h"
#include "tests/worker/gzip_data.h"

namespace hpo::worker {
namespace {

namespace fs = std::filesystem;
using namespace std::chrono_literals;
using hpo::testing::Gzip;

void Put(const fs::path& p, const std::string& bytes) {
  fs::create_directories(p.parent_path());
  std::ofstream(p, std::ios::binary) << bytes;
}

// Bytes that do not compress to nothing and differ per seed.
std::string Noise(std::size_t n, unsigned seed) {
  std::string s(n, '\0');
  uint32_t x = seed * 2654435761u + 1;
  for (auto& c : s) {
    x ^= x << 13;
    x ^= x >> 17;
    x ^= x << 5;
    c = static_cast<char>(x & 0x3f) + ' ';  // printable, so failures are readable
  }
  return s;
}


// One RecordIO record, framed here by hand (not with the code under test): magic 0xced7230a and
// the length (cflag 0), little-endian, the payload, zero padding to a multiple of 4.
std::string Record(const std::string& payload) {
  const uint32_t n = static_cast<uint32_t>(payload.size());
  std::string r("\x0a\x23\xd7\xce", 4);
  for (int b = 0; b < 4; ++b) r += static_cast<char>((n >> (8 * b)) & 0xff);
  r += payload;
  r.append((4 - n % 4) % 4, '\0');
  return r;
}

// Opens a FIFO as a training program does (a blocking open, then read() until end of file), on
// a thread of its own; `limit` bytes at most, then it closes early. Never hangs a test: after
// `timeout` the FIFO is opened for writing here, which releases a blocked open() or read().
struct Reader {
  std::string path;
  std::size_t limit = SIZE_MAX;
  std::string data;
  bool opened = false;

  bool Run(std::chrono::milliseconds timeout = 10s) {
    auto done = std::async(std::launch::async, [this] {
      int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
      if (fd < 0) return;
      opened = true;
      char buf[65536];
      while (data.size() < limit) {
        ssize_t n = ::read(fd, buf, std::min(sizeof buf, limit - data.size()));
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) break;
        data.append(buf, static_cast<std::size_t>(n));
      }
      ::close(fd);
    });
    if (done.wait_for(timeout) == std::future_status::ready) return true;
    int unblock = ::open(path.c_str(), O_RDWR | O_NONBLOCK);
    done.wait();
    if (unblock >= 0) ::close(unblock);
    return false;
  }
};

std::string ReadEpoch(const fs::path& fifo, std::chrono::milliseconds timeout = 10s) {
  Reader r;
  r.path = fifo.string();
  EXPECT_TRUE(r.Run(timeout)) << "nothing fed " << fifo << " within the timeout";
  return r.data;
}

bool IsFifo(const fs::path& p) {
  struct stat st {};
  return ::lstat(p.c_str(), &st) == 0 && S_ISFIFO(st.st_mode);
}

// Waits up to 5 s for `p` to become a FIFO.
bool AwaitFifo(const fs::path& p) {
  for (int i = 0; i < 500; ++i) {
    if (IsFifo(p)) return true;
    std::this_thread::sleep_for(10ms);
  }
  return false;
}

class PipeFeederTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() /
           ("hpo-pipe-" + std::to_string(::getpid()) + "-" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name());
    data_ = dir_ / "ml" / "input" / "data";
    fs::remove_all(dir_);
    fs::create_directories(data_ / "train");  // the channel directory, as the layout makes it
  }
  void TearDown() override { fs::remove_all(dir_); }

  PipeFeed Feed(const std::vector<std::pair<std::string, std::string>>& objects) {
    PipeFeed f;
    f.channel = "train";
    f.data_dir = data_.string();
    for (const auto& [name, bytes] : objects) {
      Put(dir_ / "objects" / name, bytes);
      f.objects.push_back(
          {(dir_ / "objects" / name).string(), "file://" + (dir_ / "objects" / name).string()});
    }
    return f;
  }

  PipeFeederOptions Options(std::size_t buffer = 4096) {
    PipeFeederOptions o;
    o.buffer_bytes = buffer;  // small: every object takes many reads and writes
    o.log = [this](const std::string& l) {
      std::lock_guard<std::mutex> lock(mu_);
      logs_.push_back(l);
    };
    o.on_error = [this](const Status& s) {
      std::lock_guard<std::mutex> lock(mu_);
      errors_.push_back(s);
    };
    return o;
  }

  std::unique_ptr<PipeFeeder> Start(PipeFeed feed, PipeFeederOptions options) {
    auto f = PipeFeeder::Start(std::move(feed), std::move(options));
    EXPECT_TRUE(f.ok()) << f.status().ToString();
    return f.ok() ? std::move(f).value() : nullptr;
  }

  std::vector<Status> Errors() {
    std::lock_guard<std::mutex> lock(mu_);
    return errors_;
  }
  std::vector<std::string> Logs() {
    std::lock_guard<std::mutex> lock(mu_);
    return logs_;
  }

  fs::path dir_, data_;  // data_: the attempt's input/data
  std::mutex mu_;
  std::vector<std::string> logs_;
  std::vector<Status> errors_;
};

TEST_F(PipeFeederTest, EveryEpochGivesTheObjectsConcatenatedInOrderThroughTheNextFifo) {
  const std::string a = Noise(1000, 1), b = Noise(300 * 1024, 2),
                    c;  // b is more than a pipe buffer
  auto feeder = Start(Feed({{"a", a}, {"b", b}, {"c", c}}), Options());
  ASSERT_TRUE(feeder);
  // _0 exists before anyone reads (the program starts after Start()); _1 not yet.
  EXPECT_TRUE(IsFifo(data_ / "train_0"));
  EXPECT_FALSE(fs::exists(data_ / "train_1"));
  EXPECT_EQ(ReadEpoch(data_ / "train_0"), a + b + c);
  // At end of file the next epoch's FIFO is there already: a reader may open it at once.
  EXPECT_TRUE(IsFifo(data_ / "train_1"));
  EXPECT_EQ(ReadEpoch(data_ / "train_1"), a + b + c);
  EXPECT_TRUE(IsFifo(data_ / "train_2"));
  EXPECT_FALSE(fs::exists(data_ / "train_0")) << "a finished epoch's FIFO is removed";
  EXPECT_TRUE(fs::is_directory(data_ / "train")) << "the channel directory stays";
  EXPECT_TRUE(fs::is_empty(data_ / "train"));
  const PipeStats st = feeder->stats();
  EXPECT_EQ(st.epochs, 2u);
  EXPECT_EQ(st.bytes, 2 * (a.size() + b.size()));
  feeder->Stop();
  EXPECT_TRUE(feeder->error().ok());
  EXPECT_TRUE(Errors().empty());
  EXPECT_FALSE(fs::exists(data_ / "train_2")) << "Stop() removes the FIFO nobody opened";
  auto logs = Logs();
  ASSERT_EQ(logs.size(), 2u);
  EXPECT_NE(logs[0].find("channel train: epoch 0: " + std::to_string(a.size() + b.size()) +
                         " bytes, 3 object(s)"),
            std::string::npos)
      << logs[0];
  EXPECT_NE(logs[1].find("epoch 1:"), std::string::npos) << logs[1];
}

TEST_F(PipeFeederTest, GzipObjectsArriveDecompressed) {
  const std::string a = Noise(200 * 1024, 3), b = "second object\n", c = std::string(1 << 20, 'z');
  const std::string d1 = "member one,", d2 = "member two";
  PipeFeed feed = Feed(
      {{"a.gz", Gzip(a)}, {"b.gz", Gzip(b)}, {"c.gz", Gzip(c)}, {"d.gz", Gzip(d1) + Gzip(d2)}});
  feed.gzip = true;
  auto feeder = Start(feed, Options());
  ASSERT_TRUE(feeder);
  const std::string want = a + b + c + d1 + d2;  // concatenated gzip members read as one object
  EXPECT_EQ(ReadEpoch(data_ / "train_0"), want);
  ASSERT_TRUE(AwaitFifo(data_ / "train_1"));
  EXPECT_EQ(ReadEpoch(data_ / "train_1"), want);
  EXPECT_EQ(feeder->stats().bytes, 2 * want.size());
  EXPECT_TRUE(Errors().empty());
}

TEST_F(PipeFeederTest, RecordIOFramingIsByteExact) {
  std::vector<std::pair<std::string, std::string>> objects;
  for (std::size_t n : {0, 1, 3, 4, 5})
    objects.push_back({"len-" + std::to_string(n), Noise(n, 10 + n)});
  PipeFeed feed = Feed(objects);
  feed.record_io = true;
  auto feeder = Start(feed, Options());
  ASSERT_TRUE(feeder);
  const std::string got = ReadEpoch(data_ / "train_0");
  // By hand: magic 0xced7230a little-endian, length (cflag 0) little-endian, payload, zero pad.
  std::string want;
  for (const auto& [name, payload] : objects) want += Record(payload);
  ASSERT_EQ(got.size(), want.size());
  EXPECT_EQ(got, want);
  // 0 -> 8 bytes, 1 -> 12, 3 -> 12, 4 -> 12, 5 -> 16.
  EXPECT_EQ(got.size(), 8u + 12 + 12 + 12 + 16);
  EXPECT_EQ(got.substr(0, 8), std::string("\x0a\x23\xd7\xce\x00\x00\x00\x00", 8));
  EXPECT_EQ(got.substr(8, 12), std::string("\x0a\x23\xd7\xce\x01\x00\x00\x00", 8) +
                                   objects[1].second + std::string(3, '\0'));
  EXPECT_EQ(got.substr(8 + 12 + 12, 12),
            std::string("\x0a\x23\xd7\xce\x04\x00\x00\x00", 8) + objects[3].second);
}

TEST_F(PipeFeederTest, GzipAndRecordIOFrameTheDecompressedObjectInEveryEpoch) {
  const std::string a = Noise(70001, 4), b = "xyz";
  PipeFeed feed = Feed({{"a.gz", Gzip(a)}, {"b.gz", Gzip(b)}});
  feed.gzip = true;
  feed.record_io = true;
  auto feeder = Start(feed, Options());
  ASSERT_TRUE(feeder);
  const std::string want = Record(a) + Record(b);
  EXPECT_EQ(want.substr(4, 4), std::string("\x71\x11\x01\x00", 4));  // 70001 = 0x011171
  EXPECT_EQ(ReadEpoch(data_ / "train_0"), want);
  ASSERT_TRUE(AwaitFifo(data_ / "train_1"));
  EXPECT_EQ(ReadEpoch(data_ / "train_1"), want);  // the lengths counted in epoch 0 are reused
}

TEST_F(PipeFeederTest, ACorruptGzipObjectEndsTheFeedingWithAnErrorNamingIt) {
  for (const auto& [bad, why] : std::vector<std::pair<std::string, std::string>>{
           {"this is not gzip at all", "bad.gz"},
           {Gzip(Noise(50000, 5)).substr(0, 1000), "bad.gz"},  // truncated
           {Gzip("fine") + "trailing junk", "bad.gz"}}) {
    {
      std::lock_guard<std::mutex> lock(mu_);
      errors_.clear();
    }
    PipeFeed feed =
        Feed({{"good.gz", Gzip("good data\n")}, {"bad.gz", bad}, {"never.gz", Gzip("never\n")}});
    feed.gzip = true;
    auto feeder = Start(feed, Options());
    ASSERT_TRUE(feeder);
    const std::string got = ReadEpoch(data_ / "train_0");  // ends (end of file), never hangs
    EXPECT_EQ(got.rfind("good data\n", 0), 0u) << got.substr(0, 100);
    EXPECT_EQ(got.find("never"), std::string::npos);
    for (int i = 0; i < 500 && feeder->error().ok(); ++i) std::this_thread::sleep_for(10ms);
    const Status e = feeder->error();
    EXPECT_EQ(e.code(), StatusCode::kCorruption) << e.ToString();
    EXPECT_EQ(e.message().rfind("channel train: the object file://", 0), 0u) << e.message();
    EXPECT_NE(e.message().find(why), std::string::npos) << e.message();
    EXPECT_NE(e.message().find("is not valid gzip data"), std::string::npos) << e.message();
    ASSERT_EQ(Errors().size(), 1u);
    EXPECT_EQ(Errors()[0], e);
    std::this_thread::sleep_for(50ms);
    EXPECT_FALSE(fs::exists(data_ / "train_1")) << "no epoch after an error";
    feeder->Stop();
  }
}

TEST_F(PipeFeederTest, StopReturnsPromptlyWhenNobodyOpenedTheFifo) {
  auto feeder = Start(Feed({{"a", "data"}}), Options());
  ASSERT_TRUE(feeder);
  std::this_thread::sleep_for(200ms);  // the feeder is waiting for a reader
  const auto t0 = std::chrono::steady_clock::now();
  feeder->Stop();
  const auto took = std::chrono::steady_clock::now() - t0;
  EXPECT_LT(took, 1s);
  EXPECT_EQ(feeder->stats().epochs, 0u);
  EXPECT_TRUE(feeder->error().ok());
  feeder.reset();  // the destructor's Stop() is a no-op now
}

TEST_F(PipeFeederTest, StopReturnsPromptlyWhileAReaderHoldsTheFifoWithoutReading) {
  auto feeder = Start(Feed({{"big", Noise(4 << 20, 6)}}), Options());
  ASSERT_TRUE(feeder);
  int fd =
      ::open((data_ / "train_0").c_str(), O_RDONLY | O_CLOEXEC);  // blocks until the feeder opens
  ASSERT_GE(fd, 0);
  char buf[100];
  ASSERT_GT(::read(fd, buf, sizeof buf), 0);
  std::this_thread::sleep_for(100ms);  // the pipe is full: the feeder waits in poll()
  const auto t0 = std::chrono::steady_clock::now();
  feeder->Stop();
  EXPECT_LT(std::chrono::steady_clock::now() - t0, 1s);
  // The reader gets what was in the pipe, then end of file.
  ssize_t n;
  while ((n = ::read(fd, buf, sizeof buf)) > 0) {
  }
  EXPECT_EQ(n, 0);
  ::close(fd);
  EXPECT_LT(feeder->stats().bytes, uint64_t{4} << 20);
}

TEST_F(PipeFeederTest, AReaderThatClosesEarlyJustEndsThatEpoch) {
  const std::string big = Noise(4 << 20, 7);  // far more than the pipe holds: the feeder gets EPIPE
  auto feeder = Start(Feed({{"big", big}, {"tail", "tail"}}), Options());
  ASSERT_TRUE(feeder);
  Reader early;
  early.path = (data_ / "train_0").string();
  early.limit = 10;
  ASSERT_TRUE(early.Run());
  EXPECT_EQ(early.data, big.substr(0, 10));
  // No SIGPIPE killed this process, and the next epoch comes whole.
  ASSERT_TRUE(AwaitFifo(data_ / "train_1"));
  EXPECT_EQ(ReadEpoch(data_ / "train_1"), big + "tail");
  EXPECT_TRUE(feeder->error().ok());
  EXPECT_GE(feeder->stats().epochs, 2u);
  auto logs = Logs();
  ASSERT_GE(logs.size(), 1u);
  EXPECT_NE(logs[0].find("the reader closed it early"), std::string::npos) << logs[0];
}

TEST_F(PipeFeederTest, AFifoReplacedByTheProgramIsNotWrittenTo) {
  auto feeder = Start(Feed({{"a", "secret"}}), Options());
  ASSERT_TRUE(feeder);
  fs::remove(data_ / "train_0");
  Put(data_ / "train_0", "mine");
  for (int i = 0; i < 500 && feeder->error().ok(); ++i) std::this_thread::sleep_for(10ms);
  EXPECT_EQ(feeder->error().code(), StatusCode::kIoError) << feeder->error().ToString();
  std::ifstream in(data_ / "train_0");
  std::string content;
  std::getline(in, content);
  EXPECT_EQ(content, "mine");
}

TEST_F(PipeFeederTest, StartRefusesAFeedWithoutItsDataDirectory) {
  PipeFeed feed;
  feed.channel = "train";
  feed.data_dir = (dir_ / "nope").string();
  auto f = PipeFeeder::Start(feed);
  ASSERT_FALSE(f.ok());
  EXPECT_EQ(f.status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(f.status().message().rfind("channel train: ", 0), 0u);
  feed.channel = "";
  EXPECT_FALSE(PipeFeeder::Start(feed).ok());
}

// ---- StageChannel in Pipe mode ---------------------------------------------------------------

class PipeStaging : public PipeFeederTest {
 protected:
  StagingContext Ctx(const std::string& host = "algo-1") {
    StagingContext c;
    c.channel_dir = (data_ / "train").string();
    c.visible_dir = "/opt/ml/input/data/train";
    c.hosts = {"algo-1", "algo-2"};
    c.current_host = host;
    c.spool_dir = (dir_ / "spool" / "train").string();
    c.s3 = []() -> Result<const S3Client*> {
      return Status::FailedPrecondition("no S3 in this test");
    };
    return c;
  }
  ChannelSource Src(const std::string& uri) {
    ChannelSource s;
    s.name = "train";
    s.input_mode = "Pipe";
    s.uri = uri;
    return s;
  }
  // Stages `s` for `host` and reads one epoch of it.
  std::string StageAndRead(const ChannelSource& s, const std::string& host = "algo-1") {
    auto staged = StageChannel(s, Ctx(host));
    EXPECT_TRUE(staged.ok()) << staged.status().ToString();
    if (!staged.ok() || !staged->pipe) return "<not staged>";
    EXPECT_TRUE(fs::is_empty(data_ / "train")) << "Pipe mode puts no file in the channel directory";
    auto feeder = Start(*staged->pipe, Options());
    if (!feeder) return "<no feeder>";
    return ReadEpoch(data_ / "train_0");
  }
};

TEST_F(PipeStaging, AnS3PrefixIsFedInKeyOrderAndGzipAndRecordIOApply) {
  Put(dir_ / "src" / "ASHA-1" / "b.csv", "3,4\n");
  Put(dir_ / "src" / "ASHA-1" / "a.csv", "1,2\n");
  Put(dir_ / "src" / "ASHA-1" / "sub" / "c.csv", "5,6\n");
  Put(dir_ / "src" / "ASHA-10" / "x.csv", "not mine\n");
  ChannelSource s = Src("file://" + (dir_ / "src" / "ASHA-1").string());
  auto staged = StageChannel(s, Ctx());
  ASSERT_TRUE(staged.ok()) << staged.status().ToString();
  ASSERT_TRUE(staged->pipe.has_value());
  EXPECT_EQ(staged->objects, 3u);
  EXPECT_EQ(staged->bytes, 12u);
  EXPECT_EQ(staged->pipe->data_dir, data_.string());
  EXPECT_FALSE(fs::exists(dir_ / "spool")) << "local objects are read in place";
  EXPECT_EQ(StageAndRead(s), "1,2\n3,4\n5,6\n");

  s.record_wrapper = "RecordIO";
  EXPECT_EQ(StageAndRead(s), Record("1,2\n") + Record("3,4\n") + Record("5,6\n"));

  Put(dir_ / "gz" / "p1.gz", Gzip("first\n"));
  Put(dir_ / "gz" / "p2.gz", Gzip("second\n"));
  ChannelSource g = Src((dir_ / "gz").string());
  g.compression = "Gzip";
  EXPECT_EQ(StageAndRead(g), "first\nsecond\n");
  g.record_wrapper = "RecordIO";
  EXPECT_EQ(StageAndRead(g), Record("first\n") + Record("second\n"));
}

TEST_F(PipeStaging, AManifestIsFedInManifestOrder) {
  Put(dir_ / "src" / "one", "1");
  Put(dir_ / "src" / "two", "2");
  Put(dir_ / "src" / "three", "3");
  Put(dir_ / "manifest.json",
      "[{\"prefix\": \"" + (dir_ / "src").string() + "/\"}, \"two\", \"three\", \"one\"]");
  ChannelSource m = Src((dir_ / "manifest.json").string());
  m.s3_data_type = "ManifestFile";
  EXPECT_EQ(StageAndRead(m), "231");
  Put(dir_ / "missing.json",
      "[{\"prefix\": \"" + (dir_ / "src").string() + "/\"}, \"two\", \"four\"]");
  m.uri = (dir_ / "missing.json").string();
  auto missing = StageChannel(m, Ctx());
  ASSERT_FALSE(missing.ok());
  EXPECT_EQ(missing.status().code(), StatusCode::kNotFound) << missing.status().ToString();
}

TEST_F(PipeStaging, ShardedByS3KeyFeedsTwoHostsDisjointHalves) {
  std::set<std::string> all;
  for (int i = 0; i < 7; ++i) {
    const std::string part = "<part-" + std::to_string(i) + ">";
    Put(dir_ / "many" / ("part-" + std::to_string(i)), part);
    all.insert(part);
  }
  ChannelSource s = Src((dir_ / "many").string());
  s.distribution = "ShardedByS3Key";
  const std::string h1 = StageAndRead(s, "algo-1"), h2 = StageAndRead(s, "algo-2");
  EXPECT_EQ(h1, "<part-0><part-2><part-4><part-6>");
  EXPECT_EQ(h2, "<part-1><part-3><part-5>");
  std::set<std::string> seen;
  for (const std::string& got : {h1, h2}) {
    for (std::size_t at = 0; at < got.size();) {
      const std::size_t end = got.find('>', at) + 1;
      EXPECT_TRUE(seen.insert(got.substr(at, end - at)).second)
          << got.substr(at, end - at) << " went to both hosts";
      at = end;
    }
  }
  EXPECT_EQ(seen, all);
}

TEST_F(PipeStaging, AShuffleSeedGivesTheSameOrderAsFileModeEveryTime) {
  for (int i = 0; i < 20; ++i)
    Put(dir_ / "many" / ("p" + std::to_string(100 + i)), "<" + std::to_string(100 + i) + ">");
  ChannelSource s = Src((dir_ / "many").string());
  s.shuffle_seed = 7;
  auto order = PlanObjects(s, Ctx());  // what File mode stages, in this order
  ASSERT_TRUE(order.ok());
  std::string want;
  for (const auto& rel : *order) want += "<" + rel.substr(1) + ">";
  const std::string first = StageAndRead(s);
  EXPECT_EQ(first, want);
  EXPECT_EQ(StageAndRead(s), first);
  s.shuffle_seed = 8;
  EXPECT_NE(StageAndRead(s), first);
  s.shuffle_seed.reset();
  std::string sorted;
  for (int i = 0; i < 20; ++i) sorted += "<" + std::to_string(100 + i) + ">";
  EXPECT_EQ(StageAndRead(s), sorted);
  EXPECT_NE(first, sorted);
}

// SageMaker shuffles Pipe-mode data at the start of every epoch: epoch 0 in the seed's order (as
// File mode stages it), each later one in another order, the same for every run with the seed.
// Every epoch replayed epoch 0's order.
TEST_F(PipeStaging, AShuffleSeedGivesEachEpochItsOwnOrderTheSameEveryRun) {
  for (int i = 0; i < 20; ++i)
    Put(dir_ / "many" / ("p" + std::to_string(100 + i)), "<" + std::to_string(100 + i) + ">");
  ChannelSource s = Src((dir_ / "many").string());
  s.shuffle_seed = 7;
  auto epochs = [&] {
    auto staged = StageChannel(s, Ctx());
    EXPECT_TRUE(staged.ok() && staged->pipe) << staged.status().ToString();
    std::vector<std::string> out;
    if (!staged.ok() || !staged->pipe) return out;
    auto feeder = Start(*staged->pipe, Options());
    for (int e = 0; e < 3; ++e) out.push_back(ReadEpoch(data_ / ("train_" + std::to_string(e))));
    feeder->Stop();
    return out;
  };
  const auto first = epochs();
  ASSERT_EQ(first.size(), 3u);
  EXPECT_NE(first[1], first[0]);
  EXPECT_NE(first[2], first[1]);
  auto sorted = [](std::string x) {
    std::sort(x.begin(), x.end());
    return x;
  };
  EXPECT_EQ(sorted(first[1]), sorted(first[0])) << "the same objects";
  EXPECT_EQ(epochs(), first) << "the same orders with the same seed";
  s.shuffle_seed.reset();
  const auto plain = epochs();
  ASSERT_EQ(plain.size(), 3u);
  EXPECT_EQ(plain[1], plain[0]) << "without a seed, key order every epoch";
}

// ShuffleConfig shuffles an augmented manifest's lines (they were fed in file order).
TEST_F(PipeStaging, AShuffleSeedShufflesAnAugmentedManifestsLines) {
  std::string manifest, in_order;
  for (int i = 0; i < 12; ++i) {
    manifest += "{\"label\":" + std::to_string(i) + "}\n";
    in_order += "{\"label\":" + std::to_string(i) + "}\n";
  }
  Put(dir_ / "aug.jsonl", manifest);
  ChannelSource a = Src((dir_ / "aug.jsonl").string());
  a.s3_data_type = "AugmentedManifestFile";
  a.attribute_names = {"label"};
  EXPECT_EQ(StageAndRead(a), in_order);
  a.shuffle_seed = 11;
  const std::string shuffled = StageAndRead(a);
  EXPECT_NE(shuffled, in_order);
  EXPECT_EQ(shuffled.size(), in_order.size());
  EXPECT_EQ(StageAndRead(a), shuffled) << "the same order with the same seed";
}

// ShardedByS3Key splits an augmented manifest's lines over the hosts, after a shuffle, as a
// prefix's objects (every host was fed every line; an S3 pass).
TEST_F(PipeStaging, ShardedByS3KeySplitsAnAugmentedManifestsLinesOverTheHosts) {
  std::string manifest;
  for (int i = 0; i < 7; ++i) manifest += "{\"label\":" + std::to_string(i) + "}\n";
  Put(dir_ / "aug.jsonl", manifest);
  ChannelSource a = Src((dir_ / "aug.jsonl").string());
  a.s3_data_type = "AugmentedManifestFile";
  a.attribute_names = {"label"};
  a.distribution = "ShardedByS3Key";
  EXPECT_EQ(StageAndRead(a, "algo-1"), "{\"label\":0}\n{\"label\":2}\n{\"label\":4}\n{\"label\":6}\n");
  EXPECT_EQ(StageAndRead(a, "algo-2"), "{\"label\":1}\n{\"label\":3}\n{\"label\":5}\n");
  a.shuffle_seed = 11;
  const std::string one = StageAndRead(a, "algo-1"), two = StageAndRead(a, "algo-2");
  std::multiset<std::string> lines;
  for (const std::string& fed : {one, two}) {
    std::istringstream in(fed);
    for (std::string line; std::getline(in, line);) lines.insert(line);
  }
  EXPECT_EQ(lines.size(), 7u) << one << "|" << two;
  EXPECT_EQ(std::set<std::string>(lines.begin(), lines.end()).size(), 7u) << "no line fed to both: " << one << two;
  a.distribution = "FullyReplicated";
  EXPECT_EQ(StageAndRead(a, "algo-2").size(), manifest.size());
}

TEST_F(PipeStaging, AnAugmentedManifestIsFedAsReducedLinesOrOneRecordPerAttribute) {
  Put(dir_ / "img" / "1.jpg", "JPEG-one");
  Put(dir_ / "img" / "2.jpg", "JPEG-two");
  const std::string one = (dir_ / "img" / "1.jpg").string(), two = (dir_ / "img" / "2.jpg").string();
  Put(dir_ / "aug.jsonl",
      "{\"source-ref\":\"" + one + "\",\"label\":1,\"extra\":\"x\"}\n"
      "\n"
      "{\"label\":{\"class\":0},\"source-ref\":\"" + two + "\"}\n");
  ChannelSource a = Src((dir_ / "aug.jsonl").string());
  a.s3_data_type = "AugmentedManifestFile";
  a.attribute_names = {"source-ref", "label"};
  EXPECT_EQ(StageAndRead(a), "{\"source-ref\":\"" + one + "\",\"label\":1}\n{\"source-ref\":\"" + two +
                                 "\",\"label\":{\"class\":0}}\n");
  // RecordIO: one record per attribute; a "-ref" attribute's record is the object it names (the
  // image), as SageMaker streams it (its URI was sent instead).
  a.record_wrapper = "RecordIO";
  EXPECT_EQ(StageAndRead(a), Record("JPEG-one") + Record("1") + Record("JPEG-two") + Record("{\"class\":0}"));
  Put(dir_ / "gone.jsonl", "{\"source-ref\":\"" + (dir_ / "img" / "3.jpg").string() + "\",\"label\":3}\n");
  ChannelSource g = a;
  g.uri = (dir_ / "gone.jsonl").string();
  auto gone = StageChannel(g, Ctx());
  ASSERT_FALSE(gone.ok());
  EXPECT_NE(gone.status().message().find("\"source-ref\" " + (dir_ / "img" / "3.jpg").string()), std::string::npos)
      << gone.status().message();
  a.attribute_names = {"label", "bbox"};
  auto missing = StageChannel(a, Ctx());
  ASSERT_FALSE(missing.ok());
  EXPECT_NE(missing.status().message().find("line 1 has no attribute \"bbox\""), std::string::npos);
}

TEST_F(PipeStaging, AFileSystemDirectoryIsFedInKeyOrder) {
  Put(dir_ / "fs" / "b", "B");
  Put(dir_ / "fs" / "a", "A");
  Put(dir_ / "fs" / "d" / "c", "C");
  ChannelSource f;
  f.name = "train";
  f.input_mode = "Pipe";
  f.directory_path = (dir_ / "fs").string();
  EXPECT_EQ(StageAndRead(f), "ABC");
}

TEST_F(PipeStaging, BadCompressionOrWrapperSettingsAreClientErrorsNamingTheChannel) {
  Put(dir_ / "src" / "a", "a");
  struct Case {
    std::string mode, compression, wrapper, s3_data_type, want;
  };
  for (const Case& c : std::vector<Case>{
           {"File", "Gzip", "", "",
            "CompressionType Gzip applies to Pipe input mode only; this channel's input mode is "
            "File"},
           {"FastFile", "Gzip", "", "", "this channel's input mode is FastFile"},
           {"Pipe", "Zip", "", "", "CompressionType \"Zip\" is not None or Gzip"},
           {"File", "zip", "", "", "CompressionType \"zip\" is not None or Gzip"},
           {"Pipe", "", "Protobuf", "", "RecordWrapperType \"Protobuf\" is not None or RecordIO"},
           {"Pipe", "Gzip", "", "AugmentedManifestFile",
            "CompressionType Gzip is not supported with AugmentedManifestFile"}}) {
    ChannelSource s = Src((dir_ / "src").string());
    s.input_mode = c.mode;
    s.compression = c.compression;
    s.record_wrapper = c.wrapper;
    s.s3_data_type = c.s3_data_type;
    s.attribute_names = {"x"};
    auto staged = StageChannel(s, Ctx());
    ASSERT_FALSE(staged.ok()) << c.want;
    EXPECT_EQ(staged.status().code(), StatusCode::kInvalidArgument) << staged.status().ToString();
    EXPECT_EQ(staged.status().message().rfind("channel train: ", 0), 0u)
        << staged.status().message();
    EXPECT_NE(staged.status().message().find(c.want), std::string::npos)
        << staged.status().message();
  }
  // "None" is the default spelled out, in every mode.
  ChannelSource s = Src((dir_ / "src").string());
  s.compression = "None";
  s.record_wrapper = "None";
  EXPECT_TRUE(StageChannel(s, Ctx()).ok());
  s.input_mode = "File";
  EXPECT_TRUE(StageChannel(s, Ctx()).ok());
}

}  // namespace
}  // namespace hpo::worker
