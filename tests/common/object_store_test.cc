// common/object_store.h: the local implementation's semantics (raw prefixes as S3 lists them,
// atomic writes, deletes that take empty directories with them, keys that cannot leave the
// root) and the URI forms. The S3 implementation runs against a real radosgw in
// tests/worker/s3_radosgw_test.cc (Radosgw.BothObjectStoresListTheSameTreeTheSameWay).
#include "common/object_store.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <future>
#include <vector>

#include <gtest/gtest.h>

namespace hpo {
namespace {

namespace fs = std::filesystem;

class LocalStoreTest : public ::testing::Test {
 protected:
  void SetUp() override {
    root_ = fs::path(::testing::TempDir()) / ("hpo-store-" + std::to_string(::getpid()));
    fs::remove_all(root_);
    fs::create_directories(root_);
  }
  void TearDown() override { fs::remove_all(root_); }
  std::vector<std::string> Keys(const ObjectStore& s, const std::string& prefix) {
    auto listed = s.List(prefix);
    EXPECT_TRUE(listed.ok()) << listed.status().message();
    std::vector<std::string> keys;
    if (listed.ok()) {
      for (const auto& o : *listed) keys.push_back(o.key);
    }
    return keys;
  }
  fs::path root_;
};

// A file truncated while it is copied (a program rewriting its checkpoint in place) is an
// error, not an object of the size it had, padded with zeros.
TEST_F(LocalStoreTest, AFileTruncatedDuringItsCopyIsRefusedNotPaddedWithZeros) {
  LocalObjectStore s(root_.string());
  const fs::path file = root_ / "epoch";
  std::ofstream(file) << "5\n";
  const int fd = ::open(file.c_str(), O_RDONLY | O_CLOEXEC);
  ASSERT_GE(fd, 0);
  ASSERT_EQ(::truncate(file.c_str(), 0), 0);  // after the size (2) was taken
  const Status put = s.PutOpened("ck/epoch", fd, 2, file.string());
  ::close(fd);
  ASSERT_FALSE(put.ok());
  EXPECT_EQ(put.code(), StatusCode::kUnavailable);
  EXPECT_NE(put.message().find("changed while it was copied (0 bytes now, 2 when the copy began)"), std::string::npos)
      << put.message();
  EXPECT_FALSE(fs::exists(root_ / "ck" / "epoch"));
  // A sparse tail is no change: it stays a hole.
  std::ofstream(file) << "ab";
  ASSERT_EQ(::truncate(file.c_str(), 1 << 20), 0);
  const int sparse = ::open(file.c_str(), O_RDONLY | O_CLOEXEC);
  ASSERT_TRUE(s.PutOpened("ck/sparse", sparse, 1 << 20, file.string()).ok());
  ::close(sparse);
  EXPECT_EQ(fs::file_size(root_ / "ck" / "sparse"), 1u << 20);
}

TEST_F(LocalStoreTest, PutGetListAndDeleteLikeS3) {
  LocalObjectStore s(root_.string());
  ASSERT_TRUE(s.PutBytes("data/ASHA-1/a.csv", "1,2").ok());
  ASSERT_TRUE(s.PutBytes("data/ASHA-1/sub/b.csv", "3,4").ok());
  ASSERT_TRUE(s.PutBytes("data/ASHA-10/c.csv", "no").ok());
  ASSERT_TRUE(s.PutBytes("other/x", "x").ok());
  // Raw prefixes, as S3 lists them, in key order.
  EXPECT_EQ(Keys(s, "data/ASHA-1"),
            (std::vector<std::string>{"data/ASHA-1/a.csv", "data/ASHA-1/sub/b.csv", "data/ASHA-10/c.csv"}));
  EXPECT_EQ(Keys(s, "data/ASHA-1/"), (std::vector<std::string>{"data/ASHA-1/a.csv", "data/ASHA-1/sub/b.csv"}));
  EXPECT_EQ(Keys(s, "data/ASHA-1/a"), (std::vector<std::string>{"data/ASHA-1/a.csv"}));
  EXPECT_EQ(Keys(s, "missing/"), std::vector<std::string>{});
  EXPECT_EQ(Keys(s, "").size(), 4u);
  EXPECT_EQ(*s.Get("data/ASHA-1/a.csv"), "1,2");
  EXPECT_EQ(s.Get("data/nope").status().code(), StatusCode::kNotFound);
  const fs::path out = root_ / "copy.csv";
  ASSERT_TRUE(s.GetToFile("data/ASHA-1/sub/b.csv", out.string()).ok());
  std::ifstream in(out);
  std::string text;
  std::getline(in, text);
  EXPECT_EQ(text, "3,4");
  EXPECT_EQ(s.LocalPath("data/ASHA-1/a.csv"), (root_ / "data/ASHA-1/a.csv").string());
  EXPECT_EQ(s.Uri("data/ASHA-1/a.csv"), "file://" + (root_ / "data/ASHA-1/a.csv").string());
  // Deleting the last key of a "directory" takes the directory with it; a missing key is fine.
  ASSERT_TRUE(s.Delete("data/ASHA-1/sub/b.csv").ok());
  EXPECT_FALSE(fs::exists(root_ / "data/ASHA-1/sub"));
  EXPECT_TRUE(fs::exists(root_ / "data/ASHA-1"));
  EXPECT_TRUE(s.Delete("data/ASHA-1/sub/b.csv").ok());
  EXPECT_TRUE(fs::exists(root_));
}

TEST_F(LocalStoreTest, WritesAreAtomicAndHalfWrittenFilesAreNotListed) {
  LocalObjectStore s(root_.string());
  fs::create_directories(root_ / "ck");
  std::ofstream(root_ / "ck" / ".hpo-tmp-model.pt-123-1") << "half";  // a writer that died
  ASSERT_TRUE(s.PutBytes("ck/model.pt", std::string(1 << 20, 'w')).ok());
  EXPECT_EQ(Keys(s, "ck/"), std::vector<std::string>{"ck/model.pt"});
  // PutFile of a missing source leaves no file and no temporary behind.
  EXPECT_FALSE(s.PutFile("ck/other.pt", (root_ / "nope").string()).ok());
  EXPECT_FALSE(fs::exists(root_ / "ck" / "other.pt"));
  int entries = 0;
  for (const auto& e : fs::directory_iterator(root_ / "ck")) entries += e.path().filename() != ".hpo-tmp-model.pt-123-1";
  EXPECT_EQ(entries, 1);
}

// Symlinked data (a dataset linked in, DVC and git-annex caches): listed under the link's own
// name, as the files they point at. Keys were made with the links resolved, so such files fell
// outside the prefix and were silently left out of a File-mode channel.
TEST_F(LocalStoreTest, SymlinkedFilesAndDirectoriesAreListedUnderTheLinksName) {
  LocalObjectStore s(root_.string());
  ASSERT_TRUE(s.PutBytes("real/big.csv", "1,2").ok());
  ASSERT_TRUE(s.PutBytes("real/dir/c.csv", "5,6").ok());
  ASSERT_TRUE(s.PutBytes("data/plain.csv", "3,4").ok());
  fs::create_symlink(root_ / "real" / "big.csv", root_ / "data" / "linked.csv");
  fs::create_directory_symlink(root_ / "real" / "dir", root_ / "data" / "linkdir");
  fs::create_directory_symlink(root_ / "data", root_ / "via-link");
  EXPECT_EQ(Keys(s, "data/"),
            (std::vector<std::string>{"data/linkdir/c.csv", "data/linked.csv", "data/plain.csv"}));
  EXPECT_EQ(Keys(s, "via-link/"),
            (std::vector<std::string>{"via-link/linkdir/c.csv", "via-link/linked.csv", "via-link/plain.csv"}));
  EXPECT_EQ(*s.Get("data/linked.csv"), "1,2");
}

// PutFile reads only a regular file: a link is not followed (a program's link to a host file
// was uploaded as its content) and a FIFO is not opened (it blocked the upload for good).
TEST_F(LocalStoreTest, PutFileReadsOnlyARegularFileWithoutFollowingALinkOrWaitingOnAFifo) {
  LocalObjectStore s((root_ / "bucket").string());
  const fs::path src = root_ / "src";
  fs::create_directories(src);
  std::ofstream(src / "secret") << "root:x:0:0";
  fs::create_symlink(src / "secret", src / "link");
  ASSERT_EQ(::mkfifo((src / "fifo").c_str(), 0600), 0);
  auto link = s.PutFile("k/link", (src / "link").string());
  EXPECT_EQ(link.code(), StatusCode::kInvalidArgument) << link.ToString();
  EXPECT_NE(link.message().find("symbolic link"), std::string::npos) << link.message();
  auto fifo = std::async(std::launch::async, [&] { return s.PutFile("k/fifo", (src / "fifo").string()); });
  ASSERT_EQ(fifo.wait_for(std::chrono::seconds(10)), std::future_status::ready) << "blocked on the FIFO";
  EXPECT_EQ(fifo.get().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(s.PutFile("k/gone", (src / "gone").string()).code(), StatusCode::kNotFound);
  EXPECT_TRUE(Keys(s, "k/").empty());
  ASSERT_TRUE(s.PutFile("k/secret", (src / "secret").string()).ok());
  EXPECT_EQ(Keys(s, "k/"), std::vector<std::string>{"k/secret"});
}

// A program's sparse file (truncate -s 1T) takes no blocks in its volume; copied byte for byte,
// it filled the destination's disk (3 GiB of holes became 3 GiB written). The copy keeps the holes
// and the same content.
TEST_F(LocalStoreTest, PutFileKeepsASparseFilesHoles) {
  LocalObjectStore s((root_ / "bucket").string());
  const fs::path src = root_ / "sparse";
  const uint64_t size = 256ull << 20;  // 256 MiB, nearly all of it a hole
  {
    std::ofstream(src).close();
    fs::resize_file(src, size);
    std::fstream f(src, std::ios::in | std::ios::out | std::ios::binary);
    f.seekp(100 << 20);
    f << "data in the middle";
  }
  struct stat st {};
  ASSERT_EQ(::stat(src.c_str(), &st), 0);
  const bool sparse_here = static_cast<uint64_t>(st.st_blocks) * 512 < (1u << 20);
  ASSERT_TRUE(s.PutFile("k/sparse", src.string()).ok());
  const fs::path copy = root_ / "bucket" / "k" / "sparse";
  EXPECT_EQ(fs::file_size(copy), size);
  std::ifstream in(copy, std::ios::binary);
  in.seekg(100 << 20);
  std::string got(18, '\0');
  in.read(got.data(), 18);
  EXPECT_EQ(got, "data in the middle");
  in.seekg(0);
  char first[4] = {1, 1, 1, 1};
  in.read(first, 4);
  EXPECT_EQ(std::string(first, 4), std::string(4, '\0'));
  ASSERT_EQ(::stat(copy.c_str(), &st), 0);
  if (sparse_here) {
    EXPECT_LT(static_cast<uint64_t>(st.st_blocks) * 512, 1u << 20) << "the holes were written out";
  }
  // An ordinary file is copied whole.
  std::ofstream(root_ / "plain") << std::string(3 << 20, 'x');
  ASSERT_TRUE(s.PutFile("k/plain", (root_ / "plain").string()).ok());
  std::ifstream plain(root_ / "bucket" / "k" / "plain", std::ios::binary);
  EXPECT_EQ(std::string(std::istreambuf_iterator<char>(plain), {}), std::string(3 << 20, 'x'));
}

TEST_F(LocalStoreTest, KeysThatLeaveTheRootAreRefused) {
  LocalObjectStore s(root_.string());
  for (const std::string bad : {"", "/etc/passwd", "../x", "a/../../x", "a//b", "./a"}) {
    EXPECT_EQ(s.PutBytes(bad, "x").code(), StatusCode::kInvalidArgument) << bad;
    EXPECT_EQ(s.Get(bad).status().code(), StatusCode::kInvalidArgument) << bad;
  }
}

TEST(ObjectLocation, UriForms) {
  auto no_s3 = []() -> Result<const S3Client*> { return Status::Unavailable("no S3 in this test"); };
  auto s3 = OpenObjectLocation("s3://bucket/some/prefix", no_s3);
  ASSERT_TRUE(s3.ok());
  EXPECT_TRUE(s3->s3());
  EXPECT_EQ(s3->prefix, "some/prefix");
  EXPECT_EQ(s3->Key("job/output/model.tar.gz"), "some/prefix/job/output/model.tar.gz");
  EXPECT_EQ(s3->store->Uri("k"), "s3://bucket/k");
  EXPECT_TRUE(s3->store->LocalPath("k").empty());
  // The S3 client is asked for only when used, and its error comes back.
  EXPECT_EQ(s3->store->Get("k").status().code(), StatusCode::kUnavailable);
  for (const std::string uri : {"file:///mnt/data/x/", "/mnt/data/x"}) {
    auto local = OpenObjectLocation(uri, no_s3);
    ASSERT_TRUE(local.ok()) << uri;
    EXPECT_FALSE(local->s3());
    EXPECT_EQ(local->prefix, "mnt/data/x");
    EXPECT_EQ(local->store->LocalPath(local->Key("a.csv")), "/mnt/data/x/a.csv");
  }
  for (const std::string bad : {"relative/path", "http://host/x", "s3://", "file://relative"}) {
    auto r = OpenObjectLocation(bad, no_s3);
    EXPECT_FALSE(r.ok()) << bad;
    if (!r.ok()) {
      EXPECT_EQ(r.status().code(), StatusCode::kInvalidArgument) << bad;
    }
  }
}

// A CommitGate in scope on the calling thread is asked at each write's last moment: refused, the
// write leaves nothing (not the file, not its temporary), a delete deletes nothing, and the
// refusal is returned. The worker fences uploads with it: a worker paused past its lease while
// it wrote a model renamed it over the re-run's when it woke.
TEST_F(LocalStoreTest, ACommitGateRefusingAWriteLeavesNothingAndOnlyOnItsThread) {
  LocalObjectStore store(root_.string());
  ASSERT_TRUE(store.PutBytes("kept", "old").ok()) << "no gate: writes go";
  int asked = 0;
  {
    CommitGate gate([&] {
      ++asked;
      return Status::Unavailable("the lease is stale");
    });
    Status put = store.PutBytes("kept", "new");
    EXPECT_EQ(put.code(), StatusCode::kUnavailable);
    EXPECT_EQ(put.message(), "the lease is stale");
    EXPECT_FALSE(store.PutBytes("fresh", "x").ok());
    EXPECT_FALSE(store.Delete("kept").ok());
    EXPECT_EQ(asked, 3);
    // Another thread has no gate.
    EXPECT_TRUE(std::async(std::launch::async, [&] { return store.PutBytes("other", "y"); }).get().ok());
    {
      // Nested (a checkpoint pass's per-file gate inside the lease's): each must agree. An inner
      // gate that answered alone let a write through that the lease refused.
      std::vector<std::string> order;
      CommitGate inner([&] {
        order.push_back("inner");
        return Status::Ok();
      });
      EXPECT_FALSE(store.PutBytes("inner", "z").ok()) << "the outer gate refuses it too";
      EXPECT_EQ(asked, 4);
      EXPECT_EQ(order, std::vector<std::string>{"inner"}) << "the innermost is asked first";
      CommitGate refusing([] { return Status::FailedPrecondition("changed while it was read"); });
      Status put = store.PutBytes("inner", "z");
      EXPECT_EQ(put.message(), "changed while it was read");
      EXPECT_EQ(asked, 4) << "the first refusal answers";
    }
    EXPECT_FALSE(store.PutBytes("inner", "w").ok()) << "the outer one again";
  }
  EXPECT_EQ(*store.Get("kept"), "old");
  EXPECT_FALSE(fs::exists(root_ / "fresh"));
  EXPECT_FALSE(fs::exists(root_ / "inner"));
  for (const auto& e : fs::directory_iterator(root_)) {
    EXPECT_EQ(e.path().filename().string().find(".hpo-tmp-"), std::string::npos) << e.path() << " was left";
  }
  EXPECT_TRUE(store.PutBytes("kept", "after").ok()) << "gone with its scope";
}

}  // namespace
}  // namespace hpo
