// ChannelCache with a local "bucket": each object is a file under src/, and the download function
// copies it (as S3Client::GetToFile would stream it) and counts the calls. The s3:// path through
// StageChannel runs against radosgw in s3_radosgw_test.cc.
#include "worker/channel_cache.h"

#include <gtest/gtest.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <future>
#include <sstream>
#include <thread>

namespace hpo::worker {
namespace {
namespace fs = std::filesystem;

class ChannelCacheTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::path(::testing::TempDir()) / ("hpo-cache-" + std::to_string(::getpid()) + "-" +
                                             ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(dir_);
    fs::create_directories(dir_ / "src");
    fs::create_directories(dir_ / "trial");
  }
  void TearDown() override { fs::remove_all(dir_); }

  static void Write(const fs::path& p, const std::string& text) {
    fs::create_directories(p.parent_path());
    std::ofstream(p, std::ios::binary | std::ios::trunc) << text;
  }
  static std::string Read(const fs::path& p) {
    std::ifstream in(p, std::ios::binary);
    std::stringstream s;
    s << in.rdbuf();
    return s.str();
  }

  std::unique_ptr<ChannelCache> Open(uint64_t max_bytes) {
    auto c = ChannelCache::Open({(dir_ / "cache").string(), max_bytes, nullptr});
    EXPECT_TRUE(c.ok()) << c.status().ToString();
    return c.ok() ? std::move(c).value() : nullptr;
  }

  // The object `name` as the listing would name it: its current content's size, and `etag`.
  CachedObject Object(const std::string& name, const std::string& etag) {
    return {"http://127.0.0.1:7480", "bucket", "data/" + name, etag, fs::file_size(dir_ / "src" / name)};
  }

  // Downloads src/<name> (counting), reporting `etag` as the server's.
  ChannelCache::Download From(const std::string& name, const std::string& etag) {
    return [this, name, etag](const std::string& path, std::string* got) -> Status {
      ++downloads_;
      std::error_code ec;
      fs::copy_file(dir_ / "src" / name, path, fs::copy_options::overwrite_existing, ec);
      if (ec) return Status::IoError(ec.message());
      *got = etag;
      return Status::Ok();
    };
  }

  Result<CachePlacement> Stage(ChannelCache& c, const std::string& name, const std::string& etag,
                               const std::string& dest, Materialize how = Materialize::kCopy) {
    return c.Place(Object(name, etag), (dir_ / "trial" / dest).string(), how, From(name, etag));
  }

  size_t CachedFiles() {
    size_t n = 0;
    for (const auto& e : fs::directory_iterator(dir_ / "cache" / "objects")) n += e.is_regular_file() ? 1 : 0;
    return n;
  }

  fs::path dir_;
  std::atomic<int> downloads_{0};
};

TEST_F(ChannelCacheTest, ASecondStagingOfTheSameVersionIsAHitWithoutDownload) {
  Write(dir_ / "src" / "a.csv", "1,2,3\n");
  auto cache = Open(1 << 20);
  ASSERT_TRUE(cache);
  auto first = Stage(*cache, "a.csv", "etag-1", "t1-a.csv");
  ASSERT_TRUE(first.ok()) << first.status().ToString();
  EXPECT_FALSE(first->hit);
  EXPECT_TRUE(first->cached);
  auto second = Stage(*cache, "a.csv", "etag-1", "t2-a.csv");
  ASSERT_TRUE(second.ok()) << second.status().ToString();
  EXPECT_TRUE(second->hit);
  EXPECT_FALSE(second->linked);  // kCopy
  EXPECT_EQ(downloads_, 1);
  EXPECT_EQ(Read(dir_ / "trial" / "t1-a.csv"), "1,2,3\n");
  EXPECT_EQ(Read(dir_ / "trial" / "t2-a.csv"), "1,2,3\n");
  const ChannelCacheStats s = cache->Stats();
  EXPECT_EQ(s.hits, 1u);
  EXPECT_EQ(s.downloads, 1u);
  EXPECT_EQ(s.bytes_hit, 6u);
  EXPECT_EQ(s.entries, 1u);
  EXPECT_EQ(s.bytes, 6u);
  // The same key at another endpoint or bucket is another object.
  CachedObject other = Object("a.csv", "etag-1");
  other.bucket = "other-bucket";
  auto third = cache->Place(other, (dir_ / "trial" / "t3-a.csv").string(), Materialize::kCopy, From("a.csv", "etag-1"));
  ASSERT_TRUE(third.ok());
  EXPECT_FALSE(third->hit);
  EXPECT_EQ(downloads_, 2);
}

TEST_F(ChannelCacheTest, AChangedETagIsDownloadedAgainAndTheOldEntryGoes) {
  Write(dir_ / "src" / "a.csv", "old content\n");
  auto cache = Open(1 << 20);
  ASSERT_TRUE(cache);
  ASSERT_TRUE(Stage(*cache, "a.csv", "etag-1", "t1").ok());
  Write(dir_ / "src" / "a.csv", "new content\n");  // same size, new version
  auto again = Stage(*cache, "a.csv", "etag-2", "t2");
  ASSERT_TRUE(again.ok()) << again.status().ToString();
  EXPECT_FALSE(again->hit);
  EXPECT_EQ(downloads_, 2);
  EXPECT_EQ(Read(dir_ / "trial" / "t2"), "new content\n");
  EXPECT_EQ(Read(dir_ / "trial" / "t1"), "old content\n");  // the earlier trial's copy is its own
  EXPECT_EQ(CachedFiles(), 1u);
  EXPECT_EQ(cache->Stats().entries, 1u);
  auto third = Stage(*cache, "a.csv", "etag-2", "t3");
  ASSERT_TRUE(third.ok());
  EXPECT_TRUE(third->hit);
  EXPECT_EQ(Read(dir_ / "trial" / "t3"), "new content\n");
}

TEST_F(ChannelCacheTest, LeastRecentlyUsedObjectsAreEvictedAtTheLimit) {
  for (const char* n : {"a", "b", "c", "d"}) Write(dir_ / "src" / n, std::string(1000, n[0]));
  auto cache = Open(3000);
  ASSERT_TRUE(cache);
  ASSERT_TRUE(Stage(*cache, "a", "ea", "1a").ok());
  ASSERT_TRUE(Stage(*cache, "b", "eb", "1b").ok());
  ASSERT_TRUE(Stage(*cache, "c", "ec", "1c").ok());
  ASSERT_TRUE(Stage(*cache, "a", "ea", "2a").ok());  // a used again: b is the oldest now
  EXPECT_EQ(downloads_, 3);
  ASSERT_TRUE(Stage(*cache, "d", "ed", "1d").ok());
  EXPECT_EQ(cache->Stats().evictions, 1u);
  EXPECT_EQ(cache->Stats().bytes, 3000u);
  EXPECT_EQ(CachedFiles(), 3u);
  auto a = Stage(*cache, "a", "ea", "3a");
  auto c = Stage(*cache, "c", "ec", "2c");
  auto d = Stage(*cache, "d", "ed", "2d");
  ASSERT_TRUE(a.ok() && c.ok() && d.ok());
  EXPECT_TRUE(a->hit);
  EXPECT_TRUE(c->hit);
  EXPECT_TRUE(d->hit);
  EXPECT_EQ(downloads_, 4);
  auto b = Stage(*cache, "b", "eb", "2b");  // evicted: downloaded again
  ASSERT_TRUE(b.ok());
  EXPECT_FALSE(b->hit);
  EXPECT_EQ(downloads_, 5);
  EXPECT_EQ(Read(dir_ / "trial" / "2b"), std::string(1000, 'b'));
  EXPECT_LE(cache->Stats().bytes, 3000u);
}

TEST_F(ChannelCacheTest, AnObjectLargerThanTheCacheIsStagedButNotKept) {
  Write(dir_ / "src" / "big", std::string(5000, 'x'));
  auto cache = Open(4096);
  ASSERT_TRUE(cache);
  auto p = Stage(*cache, "big", "e", "big");
  ASSERT_TRUE(p.ok());
  EXPECT_FALSE(p->cached);
  EXPECT_EQ(Read(dir_ / "trial" / "big"), std::string(5000, 'x'));
  EXPECT_EQ(CachedFiles(), 0u);
  EXPECT_EQ(cache->Stats().uncached, 1u);
}

TEST_F(ChannelCacheTest, ADownloadInProgressIsNotEvictedForAnotherObject) {
  Write(dir_ / "src" / "b", std::string(1000, 'b'));
  Write(dir_ / "src" / "c", std::string(1000, 'c'));
  auto cache = Open(1000);
  ASSERT_TRUE(cache);
  std::promise<void> c_done;
  std::promise<void> b_started;
  auto b = std::async(std::launch::async, [&] {
    return cache->Place(Object("b", "eb"), (dir_ / "trial" / "b").string(), Materialize::kCopy,
                        [&](const std::string& path, std::string* etag) {
                          b_started.set_value();
                          c_done.get_future().wait();  // c is staged while b downloads
                          return From("b", "eb")(path, etag);
                        });
  });
  b_started.get_future().wait();
  auto c = Stage(*cache, "c", "ec", "c");  // no room: b's download holds the whole cache
  c_done.set_value();
  ASSERT_TRUE(c.ok());
  EXPECT_FALSE(c->cached);
  auto bp = b.get();
  ASSERT_TRUE(bp.ok()) << bp.status().ToString();
  EXPECT_TRUE(bp->cached);
  auto again = Stage(*cache, "b", "eb", "b2");
  ASSERT_TRUE(again.ok());
  EXPECT_TRUE(again->hit);
  EXPECT_EQ(Read(dir_ / "trial" / "b2"), std::string(1000, 'b'));
  EXPECT_EQ(Read(dir_ / "trial" / "c"), std::string(1000, 'c'));
}

TEST_F(ChannelCacheTest, TwoStagingsOfTheSameObjectAtOnceDownloadItOnce) {
  Write(dir_ / "src" / "a", std::string(100000, 'a'));
  auto cache = Open(1 << 20);
  ASSERT_TRUE(cache);
  std::promise<void> release;
  std::shared_future<void> released = release.get_future().share();
  auto slow = [&](const std::string& path, std::string* etag) {
    released.wait();  // held until the second staging waits (or, wrongly, downloads too)
    return From("a", "ea")(path, etag);
  };
  auto first = std::async(std::launch::async, [&] {
    return cache->Place(Object("a", "ea"), (dir_ / "trial" / "1").string(), Materialize::kCopy, slow);
  });
  // The first one is downloading once the cache counts a download.
  while (cache->Stats().downloads == 0) std::this_thread::sleep_for(std::chrono::milliseconds(1));
  auto second = std::async(std::launch::async, [&] {
    return cache->Place(Object("a", "ea"), (dir_ / "trial" / "2").string(), Materialize::kCopy, slow);
  });
  while (cache->Stats().waits == 0 && cache->Stats().downloads < 2) {
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  release.set_value();
  auto p1 = first.get();
  auto p2 = second.get();
  ASSERT_TRUE(p1.ok() && p2.ok());
  EXPECT_EQ(downloads_, 1);
  EXPECT_EQ(cache->Stats().waits, 1u);
  EXPECT_FALSE(p1->hit);
  EXPECT_TRUE(p2->hit);
  EXPECT_EQ(Read(dir_ / "trial" / "2"), std::string(100000, 'a'));
}

TEST_F(ChannelCacheTest, DifferentObjectsDownloadInParallel) {
  Write(dir_ / "src" / "a", "aaa");
  Write(dir_ / "src" / "b", "bbb");
  auto cache = Open(1 << 20);
  ASSERT_TRUE(cache);
  // Each download waits for the other to have started: only parallel downloads finish.
  std::promise<void> a_started, b_started;
  auto a = std::async(std::launch::async, [&] {
    return cache->Place(Object("a", "ea"), (dir_ / "trial" / "a").string(), Materialize::kCopy,
                        [&](const std::string& path, std::string* etag) {
                          a_started.set_value();
                          b_started.get_future().wait();
                          return From("a", "ea")(path, etag);
                        });
  });
  auto b = cache->Place(Object("b", "eb"), (dir_ / "trial" / "b").string(), Materialize::kCopy,
                        [&](const std::string& path, std::string* etag) {
                          b_started.set_value();
                          a_started.get_future().wait();
                          return From("b", "eb")(path, etag);
                        });
  ASSERT_TRUE(b.ok());
  ASSERT_TRUE(a.get().ok());
  EXPECT_EQ(downloads_, 2);
}

TEST_F(ChannelCacheTest, APartialDownloadLeftByACrashIsDiscardedAndCompleteEntriesAreReused) {
  Write(dir_ / "src" / "done", "complete object");
  Write(dir_ / "src" / "half", std::string(10000, 'h'));
  {
    auto cache = Open(1 << 20);
    ASSERT_TRUE(cache);
    ASSERT_TRUE(Stage(*cache, "done", "e1", "done").ok());
  }
  // A worker process dies mid-download: half the object is in the cache's tmp/.
  pid_t pid = ::fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    auto c = ChannelCache::Open({(dir_ / "cache").string(), 1 << 20, nullptr});
    if (!c.ok()) std::_Exit(2);
    (void)(*c)->Place(Object("half", "e2"), (dir_ / "trial" / "half").string(), Materialize::kCopy,
                      [](const std::string& path, std::string*) -> Status {
                        std::ofstream(path, std::ios::binary) << std::string(5000, 'h');
                        std::_Exit(9);  // killed here
                        return Status::Ok();
                      });
    std::_Exit(3);
  }
  int st = 0;
  ASSERT_EQ(::waitpid(pid, &st, 0), pid);
  ASSERT_TRUE(WIFEXITED(st));
  ASSERT_EQ(WEXITSTATUS(st), 9);
  size_t partial = 0;
  for (const auto& e : fs::directory_iterator(dir_ / "cache" / "tmp")) partial += e.is_regular_file() ? 1 : 0;
  ASSERT_EQ(partial, 1u);
  // An entry cut short by a crash (its name says 10000 bytes) is dropped too.
  Write(dir_ / "cache" / "objects" / (std::string(64, 'a') + "-10000-" + std::string(16, 'b')), "short");

  auto cache = Open(1 << 20);  // the restarted worker
  ASSERT_TRUE(cache);
  EXPECT_TRUE(fs::is_empty(dir_ / "cache" / "tmp"));
  EXPECT_EQ(cache->Stats().entries, 1u);
  auto done = Stage(*cache, "done", "e1", "done2");
  ASSERT_TRUE(done.ok());
  EXPECT_TRUE(done->hit);
  EXPECT_EQ(Read(dir_ / "trial" / "done2"), "complete object");
  auto half = Stage(*cache, "half", "e2", "half2");
  ASSERT_TRUE(half.ok());
  EXPECT_FALSE(half->hit);
  EXPECT_EQ(Read(dir_ / "trial" / "half2"), std::string(10000, 'h'));
  EXPECT_EQ(downloads_, 2);  // "done" before the crash, "half" after
}

TEST_F(ChannelCacheTest, ATrialThatChangesItsCopyDoesNotChangeTheCache) {
  Write(dir_ / "src" / "a", "original");
  auto cache = Open(1 << 20);
  ASSERT_TRUE(cache);
  ASSERT_TRUE(Stage(*cache, "a", "e", "copy").ok());
  // File mode: the trial's own copy, writable, another inode.
  const fs::path copy = dir_ / "trial" / "copy";
  std::ofstream(copy, std::ios::binary | std::ios::app) << " and appended";
  ASSERT_EQ(Read(copy), "original and appended");
  auto again = Stage(*cache, "a", "e", "copy2");
  ASSERT_TRUE(again.ok());
  EXPECT_TRUE(again->hit);
  EXPECT_EQ(Read(dir_ / "trial" / "copy2"), "original");

  // FastFile under a read-only mount: a hard link to the read-only cached file. Replacing or
  // deleting it (what a program can do there at all) leaves the cache alone.
  auto linked = Stage(*cache, "a", "e", "link", Materialize::kHardLink);
  ASSERT_TRUE(linked.ok());
  EXPECT_TRUE(linked->linked);
  struct stat st {};
  ASSERT_EQ(::stat((dir_ / "trial" / "link").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0444u);
  EXPECT_EQ(st.st_nlink, 2u);
  fs::remove(dir_ / "trial" / "link");
  Write(dir_ / "trial" / "link", "replaced");
  fs::remove(dir_ / "trial" / "copy2");
  auto third = Stage(*cache, "a", "e", "copy3");
  ASSERT_TRUE(third.ok());
  EXPECT_TRUE(third->hit);
  EXPECT_EQ(Read(dir_ / "trial" / "copy3"), "original");
  EXPECT_EQ(downloads_, 1);
}

TEST_F(ChannelCacheTest, AnObjectOverwrittenBetweenListingAndDownloadIsPlacedButNotCached) {
  Write(dir_ / "src" / "a", "version 2 bytes");
  auto cache = Open(1 << 20);
  ASSERT_TRUE(cache);
  CachedObject listed = Object("a", "etag-1");  // what the listing said
  auto p = cache->Place(listed, (dir_ / "trial" / "a").string(), Materialize::kCopy, From("a", "etag-2"));
  ASSERT_TRUE(p.ok());
  EXPECT_FALSE(p->cached);
  EXPECT_EQ(Read(dir_ / "trial" / "a"), "version 2 bytes");
  EXPECT_EQ(CachedFiles(), 0u);
  EXPECT_TRUE(fs::is_empty(dir_ / "cache" / "tmp"));
}

TEST_F(ChannelCacheTest, ACachedFileRemovedBehindTheCachesBackIsDownloadedAgain) {
  Write(dir_ / "src" / "a", "content");
  auto cache = Open(1 << 20);
  ASSERT_TRUE(cache);
  ASSERT_TRUE(Stage(*cache, "a", "e", "1").ok());
  for (const auto& e : fs::directory_iterator(dir_ / "cache" / "objects")) fs::remove(e.path());
  auto p = Stage(*cache, "a", "e", "2");
  ASSERT_TRUE(p.ok()) << p.status().ToString();
  EXPECT_FALSE(p->hit);
  EXPECT_EQ(Read(dir_ / "trial" / "2"), "content");
  EXPECT_EQ(downloads_, 2);
}

TEST_F(ChannelCacheTest, ASecondProcessOnTheSameDirectoryIsRefused) {
  auto cache = Open(1 << 20);
  ASSERT_TRUE(cache);
  auto second = ChannelCache::Open({(dir_ / "cache").string(), 1 << 20, nullptr});
  ASSERT_FALSE(second.ok());
  EXPECT_EQ(second.status().code(), StatusCode::kFailedPrecondition);
  cache.reset();
  EXPECT_TRUE(ChannelCache::Open({(dir_ / "cache").string(), 1 << 20, nullptr}).ok());
}

TEST_F(ChannelCacheTest, ADownloadErrorIsPassedThroughAndNothingIsCached) {
  Write(dir_ / "src" / "a", "content");
  auto cache = Open(1 << 20);
  ASSERT_TRUE(cache);
  auto p = cache->Place(Object("a", "e"), (dir_ / "trial" / "a").string(), Materialize::kCopy,
                        [](const std::string& path, std::string*) -> Status {
                          std::ofstream(path) << "partial";
                          return Status::NotFound("S3 GET s3://bucket/data/a: HTTP 404 NoSuchKey");
                        });
  ASSERT_FALSE(p.ok());
  EXPECT_EQ(p.status().code(), StatusCode::kNotFound);
  EXPECT_EQ(CachedFiles(), 0u);
  EXPECT_TRUE(fs::is_empty(dir_ / "cache" / "tmp"));
  EXPECT_EQ(cache->Stats().bytes, 0u);
  auto ok = Stage(*cache, "a", "e", "a");
  ASSERT_TRUE(ok.ok());
  EXPECT_TRUE(ok->cached);
}

}  // namespace
}  // namespace hpo::worker
