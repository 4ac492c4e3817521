// The S3 client, S3 data channels and S3 artifacts against a real S3 implementation that checks
// SigV4 signatures: Ceph radosgw, started by tests/worker/with_radosgw.sh (which sets
// AWS_ENDPOINT_URL_S3 and the credentials; CTest skips these tests when radosgw cannot start).
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#include <atomic>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <future>
#include <random>
#include <set>
#include <sstream>
#include <thread>

#include <gtest/gtest.h>

#include "worker/artifacts.h"
#include "worker/channel_cache.h"
#include "worker/checkpoints.h"
#include "worker/data_channels.h"
#include "worker/pipe_channel.h"
#include "common/file_util.h"
#include "common/object_store.h"
#include "common/s3_client.h"
#include "tests/loopback.h"
#include "tests/shell.h"
#include "tests/worker/gzip_data.h"

namespace hpo::worker {
namespace {

namespace fs = std::filesystem;

// Every key under `prefix` in `bucket`, in listing order.
std::vector<std::string> Keys(const S3Client& client, const std::string& bucket, const std::string& prefix) {
  std::vector<std::string> keys;
  auto listed = client.List(bucket, prefix);
  EXPECT_TRUE(listed.ok()) << listed.status().ToString();
  if (listed.ok()) {
    for (const auto& o : *listed) keys.push_back(o.key);
  }
  return keys;
}

using hpo::testing::Sh;

std::string Slurp(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

class Radosgw : public ::testing::Test {
 protected:
  void SetUp() override {
    if (std::getenv("AWS_ENDPOINT_URL_S3") == nullptr) GTEST_SKIP() << "run through tests/worker/with_radosgw.sh";
    auto cfg = S3Config::FromEnvironment();
    ASSERT_TRUE(cfg.ok()) << cfg.status().ToString();
    cfg->multipart_threshold = 5u << 20;
    cfg->part_size = 5u << 20;
    cfg->backoff = std::chrono::milliseconds(20);
    cfg_ = *cfg;
    auto c = S3Client::Create(cfg_);
    ASSERT_TRUE(c.ok());
    client_ = std::move(c).value();
    bucket_ = "hpo-" + std::to_string(::getpid()) + "-" + std::to_string(counter_++);
    ASSERT_TRUE(client_->CreateBucket(bucket_).ok());
    dir_ = fs::temp_directory_path() / ("hpo-s3-" + bucket_);
    fs::remove_all(dir_);
    fs::create_directories(dir_ / "channel");
  }
  void TearDown() override { fs::remove_all(dir_); }

  StagingContext Ctx(const std::string& host = "algo-1") {
    StagingContext c;
    c.channel_dir = (dir_ / "channel").string();
    c.visible_dir = "/opt/ml/input/data/train";
    c.hosts = {"algo-1", "algo-2"};
    c.current_host = host;
    const S3Client* raw = client_.get();
    c.s3 = [raw]() -> Result<const S3Client*> { return raw; };
    return c;
  }

  static inline int counter_ = 0;
  S3Config cfg_;
  std::unique_ptr<S3Client> client_;
  std::string bucket_;
  fs::path dir_;
};

// common/object_store.h: the S3 and the local implementation give the same answers for the same
// tree (raw-prefix listing in key order, sizes, gets, deletes), so every caller can treat
// s3:// and file:// locations alike.
TEST_F(Radosgw, BothObjectStoresListTheSameTreeTheSameWay) {
  const S3Client* raw = client_.get();
  S3ObjectStore remote([raw]() -> Result<const S3Client*> { return raw; }, bucket_);
  LocalObjectStore local((dir_ / "local").string());
  const std::vector<std::pair<std::string, std::string>> tree = {
      {"data/ASHA-1/a.csv", "1,2"}, {"data/ASHA-1/sub/b.csv", "3,4,5"}, {"data/ASHA-10/c.csv", "no"},
      {"data/ASHA-2", "a file"}, {"other/x", ""}};
  for (const ObjectStore* s : {static_cast<const ObjectStore*>(&remote), static_cast<const ObjectStore*>(&local)}) {
    for (const auto& [k, v] : tree) ASSERT_TRUE(s->PutBytes(k, v).ok()) << s->Uri(k);
  }
  for (const std::string prefix : {"data/ASHA-1", "data/ASHA-1/", "data/", "data/ASHA-2", "", "missing"}) {
    auto a = remote.List(prefix);
    auto b = local.List(prefix);
    ASSERT_TRUE(a.ok() && b.ok()) << prefix;
    ASSERT_EQ(a->size(), b->size()) << prefix;
    for (size_t i = 0; i < a->size(); ++i) {
      EXPECT_EQ((*a)[i].key, (*b)[i].key) << prefix;
      EXPECT_EQ((*a)[i].size, (*b)[i].size) << prefix;
    }
  }
  EXPECT_EQ(*remote.Get("data/ASHA-1/sub/b.csv"), *local.Get("data/ASHA-1/sub/b.csv"));
  EXPECT_EQ(remote.Get("data/none").status().code(), StatusCode::kNotFound);
  EXPECT_EQ(local.Get("data/none").status().code(), StatusCode::kNotFound);
  for (const ObjectStore* s : {static_cast<const ObjectStore*>(&remote), static_cast<const ObjectStore*>(&local)}) {
    ASSERT_TRUE(s->Delete("data/ASHA-1/sub/b.csv").ok());
    ASSERT_TRUE(s->Delete("data/ASHA-1/sub/b.csv").ok());  // gone already: not an error
    EXPECT_EQ(s->List("data/ASHA-1/")->size(), 1u) << s->Uri("");
  }
}

TEST_F(Radosgw, PutGetAndListWithPaginationAndAwkwardKeys) {
  std::vector<std::string> keys = {"data/a b.csv", "data/c+d=e.csv", "data/\xc3\xa9t\xc3\xa9.txt", "data/sub/x", "data/y"};
  for (const auto& k : keys) ASSERT_TRUE(client_->PutBytes(bucket_, k, "content of " + k).ok()) << k;
  S3Config small = cfg_;
  small.list_page_size = 2;  // three pages
  auto paged = S3Client::Create(small);
  auto listed = (*paged)->List(bucket_, "data/");
  ASSERT_TRUE(listed.ok()) << listed.status().ToString();
  std::vector<std::string> got;
  for (const auto& o : *listed) got.push_back(o.key);
  std::sort(keys.begin(), keys.end());
  EXPECT_EQ(got, keys);
  EXPECT_EQ((*listed)[0].size, std::string("content of " + (*listed)[0].key).size());
  EXPECT_FALSE((*listed)[0].etag.empty());
  auto body = client_->Get(bucket_, "data/a b.csv");
  ASSERT_TRUE(body.ok()) << body.status().ToString();
  EXPECT_EQ(*body, "content of data/a b.csv");
}

TEST_F(Radosgw, ALargeFileGoesUpInPartsAndComesBackIdentical) {
  std::string data(11u << 20, '\0');  // three 5 MiB parts, the last one short
  std::mt19937 rng(1);
  for (auto& c : data) c = static_cast<char>(rng());
  std::ofstream(dir_ / "big.bin", std::ios::binary) << data;
  ASSERT_TRUE(client_->PutFile(bucket_, "big/big.bin", (dir_ / "big.bin").string()).ok());
  auto listed = client_->List(bucket_, "big/");
  ASSERT_TRUE(listed.ok());
  ASSERT_EQ(listed->size(), 1u);
  EXPECT_EQ((*listed)[0].size, data.size());
  EXPECT_NE((*listed)[0].etag.find("-3"), std::string::npos) << "a multipart ETag ends with -<parts>: " << (*listed)[0].etag;
  ASSERT_TRUE(client_->GetToFile(bucket_, "big/big.bin", (dir_ / "back.bin").string()).ok());
  EXPECT_TRUE(Slurp(dir_ / "back.bin") == data);
}

// A fenced multipart upload (common/object_store.h CommitGate) asks again before it completes:
// the parts take a while, and a worker paused past its lease meanwhile must not complete it over
// the re-run's model. Refused then, the object never appears and the parts are aborted.
TEST_F(Radosgw, AMultipartUploadRefusedAtItsEndLeavesNoObject) {
  std::string data(11u << 20, 'm');
  std::ofstream(dir_ / "model.bin", std::ios::binary) << data;
  S3ObjectStore store([raw = client_.get()]() -> Result<const S3Client*> { return raw; }, bucket_);
  int asked = 0;
  {
    CommitGate gate([&] { return ++asked == 1 ? Status::Ok() : Status::Unavailable("the lease is stale"); });
    Status put = store.PutFile("out/model.tar.gz", (dir_ / "model.bin").string());
    EXPECT_EQ(put.code(), StatusCode::kUnavailable) << put.ToString();
  }
  EXPECT_EQ(asked, 2) << "asked before the upload and before completing it";
  auto listed = client_->List(bucket_, "out/");
  ASSERT_TRUE(listed.ok());
  EXPECT_TRUE(listed->empty()) << "the refused upload left an object";
  ASSERT_TRUE(store.PutFile("out/model.tar.gz", (dir_ / "model.bin").string()).ok()) << "without a gate it goes";
}

// A single PUT of an opened file asks its gate before reading the file and again once it has read
// it, before sending: a checkpoint pass's gate refuses a file that changed while it was read (a
// trainer's save resumed), and the object keeps its whole copy.
TEST_F(Radosgw, ASinglePutIsAskedAgainAfterItsFileWasRead) {
  ASSERT_TRUE(client_->PutBytes(bucket_, "ck/model.pt", "epoch 1, whole").ok());
  std::ofstream(dir_ / "model.pt", std::ios::binary) << "epoch 2, h";
  S3ObjectStore store([raw = client_.get()]() -> Result<const S3Client*> { return raw; }, bucket_);
  OwnedFd fd(::open((dir_ / "model.pt").c_str(), O_RDONLY | O_CLOEXEC));
  ASSERT_GE(fd.get(), 0);
  int asked = 0;
  {
    CommitGate gate([&] { return ++asked == 1 ? Status::Ok() : Status::FailedPrecondition("model.pt changed"); });
    Status put = store.PutOpened("ck/model.pt", fd.get(), 10, (dir_ / "model.pt").string());
    EXPECT_EQ(put.code(), StatusCode::kFailedPrecondition) << put.ToString();
  }
  EXPECT_EQ(asked, 2) << "asked before the read and after it";
  EXPECT_EQ(*client_->Get(bucket_, "ck/model.pt"), "epoch 1, whole");
}

TEST_F(Radosgw, AWrongSecretIsRefusedWithTheServicesReason) {
  S3Config bad = cfg_;
  bad.secret_key = "not-the-secret";
  auto c = S3Client::Create(bad);
  auto got = (*c)->Get(bucket_, "x");
  ASSERT_FALSE(got.ok());
  // This machine's credentials, not the request: an infrastructure error (the training job runs
  // elsewhere), not a ClientError of the training job.
  EXPECT_EQ(got.status().code(), StatusCode::kUnavailable);
  EXPECT_NE(got.status().message().find("HTTP 403 SignatureDoesNotMatch"), std::string::npos) << got.status().message();
  EXPECT_NE(got.status().message().find("check the secret key"), std::string::npos);
}

TEST_F(Radosgw, AMissingBucketOrKeyIsNotFound) {
  auto nb = client_->List("hpo-no-such-bucket", "");
  ASSERT_FALSE(nb.ok());
  EXPECT_EQ(nb.status().code(), StatusCode::kNotFound);
  EXPECT_NE(nb.status().message().find("NoSuchBucket"), std::string::npos) << nb.status().message();
  auto nk = client_->GetToFile(bucket_, "nope", (dir_ / "nope").string());
  ASSERT_FALSE(nk.ok());
  EXPECT_EQ(nk.code(), StatusCode::kNotFound);
  EXPECT_NE(nk.message().find("NoSuchKey"), std::string::npos);
  EXPECT_FALSE(fs::exists(dir_ / "nope"));  // no partial file left
}

TEST_F(Radosgw, ADroppedConnectionIsRetriedThenUnavailable) {
  // A server that accepts and hangs up at once, counting the tries.
  const hpo::testing::LoopbackSocket listener = hpo::testing::BindLoopback(/*backlog=*/8);
  ASSERT_GE(listener.fd, 0);
  const int fd = listener.fd;
  std::atomic<int> accepted{0};
  std::atomic<bool> stop{false};
  std::thread server([&] {
    while (!stop) {
      int c = ::accept(fd, nullptr, nullptr);
      if (c < 0) break;
      ++accepted;
      ::close(c);
    }
  });
  S3Config drop = cfg_;
  drop.endpoint = "http://127.0.0.1:" + std::to_string(listener.port);
  drop.max_attempts = 3;
  // Each retry is told (a stalled endpoint held a training job minutes without a word).
  std::vector<std::string> retries;
  drop.on_retry = [&](const std::string& what) { retries.push_back(what); };
  auto c = S3Client::Create(drop);
  auto got = (*c)->Get(bucket_, "x");
  stop = true;
  ::shutdown(fd, SHUT_RDWR);
  ::close(fd);
  server.join();
  ASSERT_FALSE(got.ok());
  EXPECT_EQ(got.status().code(), StatusCode::kUnavailable);
  EXPECT_NE(got.status().message().find("gave up after 3 tries"), std::string::npos) << got.status().message();
  EXPECT_EQ(accepted.load(), 3);
  ASSERT_EQ(retries.size(), 2u);
  EXPECT_EQ(retries[0].rfind("S3 GET s3://" + bucket_ + "/x: ", 0), 0u) << retries[0];
  EXPECT_NE(retries[0].find("; try 2 of 3 in "), std::string::npos) << retries[0];
  EXPECT_NE(retries[1].find("; try 3 of 3 in "), std::string::npos) << retries[1];
}

// S3Prefix is a key name prefix, as SageMaker matches it ("SageMaker uses all objects that match
// the specified key name prefix"): a prefix that ends inside a name takes every name that starts
// so, and each object lands at its key after the last '/' at or before the prefix's end.
TEST_F(Radosgw, AnS3PrefixChannelTakesEveryKeyThatStartsWithThePrefix) {
  for (const char* k : {"jobs/ASHA-1/train/a.csv", "jobs/ASHA-1/train/sub/b.csv", "jobs/ASHA-10/train/c.csv",
                        "jobs/ASHA-1/", "jobs/ASHA-1/train/dir/", "data/train/part-0.csv", "data/train/part-1.csv",
                        "data/train-extra/x.csv", "data/shard-0", "data/shard-1", "data/other", "c/train/train-1.csv",
                        "c/train-1.csv", "empty/", "d//double.csv", "d/double.csv", "fd/a", "fd/a/b"}) {
    ASSERT_TRUE(client_->PutBytes(bucket_, k, std::string("x") + k).ok());
  }
  auto stage = [&](const std::string& key_prefix) -> Result<std::set<std::string>> {
    fs::remove_all(dir_ / "channel");
    fs::create_directories(dir_ / "channel");
    ChannelSource s;
    s.name = "train";
    s.input_mode = "File";
    s.uri = "s3://" + bucket_ + "/" + key_prefix;
    auto staged = StageChannel(s, Ctx());
    if (!staged.ok()) return staged.status();
    std::set<std::string> files;
    for (auto& e : fs::recursive_directory_iterator(dir_ / "channel")) {
      if (e.is_regular_file()) files.insert(fs::relative(e.path(), dir_ / "channel").string());
    }
    EXPECT_EQ(staged->objects, files.size()) << key_prefix;
    return files;
  };
  using Set = std::set<std::string>;
  EXPECT_EQ(*stage("data/shard-"), (Set{"shard-0", "shard-1"}));
  EXPECT_EQ(Slurp(dir_ / "channel" / "shard-1"), "xdata/shard-1");
  // Keys that continue the prefix with '/' lose it (the SDK's upload_data + fit pattern); a
  // namesake keeps its whole name.
  EXPECT_EQ(*stage("data/train"), (Set{"part-0.csv", "part-1.csv", "train-extra/x.csv"}));
  EXPECT_EQ(Slurp(dir_ / "channel" / "train-extra" / "x.csv"), "xdata/train-extra/x.csv");
  EXPECT_EQ(*stage("data/train/"), (Set{"part-0.csv", "part-1.csv"})) << "a trailing '/' takes a directory";
  EXPECT_EQ(*stage("jobs/ASHA-1"), (Set{"train/a.csv", "train/sub/b.csv", "ASHA-10/train/c.csv"}))
      << "directory markers are not files";
  EXPECT_EQ(*stage("jobs/ASHA-1/"), (Set{"train/a.csv", "train/sub/b.csv"}));
  EXPECT_EQ(*stage("data/train/part-1.csv"), (Set{"part-1.csv"})) << "one object lands under its name";
  auto clash = stage("c/train");
  ASSERT_FALSE(clash.ok());
  EXPECT_EQ(clash.status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(clash.status().message().find("would land at train-1.csv"), std::string::npos) << clash.status().message();
  auto none = stage("jobs/ASHA-2");
  ASSERT_FALSE(none.ok());
  EXPECT_EQ(none.status().code(), StatusCode::kNotFound);
  EXPECT_NE(none.status().message().find("no object's key starts with the key name prefix of s3://"), std::string::npos)
      << none.status().message();
  // Only a folder marker there (the console's "Create folder"): "no object" says why that does not
  // count (a user's pass read it as wrong, the object being there).
  auto marker = stage("empty/");
  ASSERT_FALSE(marker.ok());
  EXPECT_NE(marker.status().message().find("(folder marker objects, keys ending in '/', hold no data and do not "
                                           "count)"),
            std::string::npos)
      << marker.status().message();
  // Two keys that differ by an empty segment, under a prefix that ends in '/': adding a '/' cannot
  // help, and the message no longer says to.
  auto twice = stage("d/");
  ASSERT_FALSE(twice.ok());
  EXPECT_NE(twice.status().message().find("would land at double.csv; rename one of them"), std::string::npos)
      << twice.status().message();
  // A key that is also the folder of another (fd/a and fd/a/b): the data set's error, naming both
  // (staging met it as "Is a directory", an infrastructure error that rested every worker).
  auto folder = stage("fd/");
  ASSERT_FALSE(folder.ok());
  EXPECT_EQ(folder.status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(folder.status().message().find("s3://" + bucket_ + "/fd/a and s3://" + bucket_ +
                                           "/fd/a/b cannot both be in the channel directory: a would be a file and "
                                           "also the directory that holds a/b"),
            std::string::npos)
      << folder.status().message();
}

TEST_F(Radosgw, ShardedByS3KeyGivesEachOfTwoHostsItsOwnHalf) {
  for (int i = 0; i < 6; ++i) ASSERT_TRUE(client_->PutBytes(bucket_, "shard/part-" + std::to_string(i), "p").ok());
  ChannelSource s;
  s.name = "train";
  s.input_mode = "File";
  s.uri = "s3://" + bucket_ + "/shard/";
  s.distribution = "ShardedByS3Key";
  auto h1 = PlanObjects(s, Ctx("algo-1")), h2 = PlanObjects(s, Ctx("algo-2"));
  ASSERT_TRUE(h1.ok() && h2.ok());
  EXPECT_EQ(*h1, (std::vector<std::string>{"part-0", "part-2", "part-4"}));
  EXPECT_EQ(*h2, (std::vector<std::string>{"part-1", "part-3", "part-5"}));
}

TEST_F(Radosgw, AManifestInS3PointsAtObjectsInS3) {
  ASSERT_TRUE(client_->PutBytes(bucket_, "m/one.csv", "1").ok());
  ASSERT_TRUE(client_->PutBytes(bucket_, "m/deep/two.csv", "2").ok());
  ASSERT_TRUE(client_->PutBytes(bucket_, "manifest", "[{\"prefix\":\"s3://" + bucket_ + "/m/\"},\"one.csv\",\"deep/two.csv\"]").ok());
  ChannelSource s;
  s.name = "train";
  s.input_mode = "File";
  s.uri = "s3://" + bucket_ + "/manifest";
  s.s3_data_type = "ManifestFile";
  auto staged = StageChannel(s, Ctx());
  ASSERT_TRUE(staged.ok()) << staged.status().ToString();
  EXPECT_EQ(Slurp(dir_ / "channel" / "deep" / "two.csv"), "2");
  EXPECT_EQ(staged->objects, 2u);
}

TEST_F(Radosgw, ArtifactsLandAtTheSageMakerKeys) {
  fs::create_directories(dir_ / "root" / "model");
  fs::create_directories(dir_ / "root" / "output" / "data");
  std::ofstream(dir_ / "root" / "model" / "model.txt") << "weights";
  std::ofstream(dir_ / "root" / "output" / "data" / "eval.txt") << "eval";
  ArtifactSpec spec{.root = (dir_ / "root").string(),
                    .output_path = "s3://" + bucket_ + "/out/",
                    .job_name = "tune-001-0123abcd",
                    .compress = true,
                    .scratch_dir = dir_.string()};
  const S3Client* raw = client_.get();
  auto up = UploadArtifacts(spec, [raw]() -> Result<const S3Client*> { return raw; });
  ASSERT_TRUE(up.ok()) << up.status().ToString();
  EXPECT_EQ(up->model, "s3://" + bucket_ + "/out/tune-001-0123abcd/output/model.tar.gz");
  std::vector<std::string> keys = Keys(*client_, bucket_, "out/");
  ASSERT_EQ(keys, (std::vector<std::string>{"out/tune-001-0123abcd/output/model.tar.gz",
                                            "out/tune-001-0123abcd/output/output.tar.gz"}));
  ASSERT_TRUE(client_->GetToFile(bucket_, keys[0], (dir_ / "m.tgz").string()).ok());
  EXPECT_EQ(Sh("tar -xzOf " + (dir_ / "m.tgz").string() + " model.txt"), "weights");

  // CompressionType NONE: the files themselves under output/model/ and output/data/, and a
  // retry's upload leaves only its own files there.
  ASSERT_TRUE(client_->PutBytes(bucket_, "out/tune-001-0123abcd/output/model/stale.bin", "attempt 1").ok());
  fs::create_directories(dir_ / "root" / "model" / "sub");
  std::ofstream(dir_ / "root" / "model" / "sub" / "vocab.txt") << "a b";
  spec.compress = false;
  auto flat = UploadArtifacts(spec, [raw]() -> Result<const S3Client*> { return raw; });
  ASSERT_TRUE(flat.ok()) << flat.status().ToString();
  EXPECT_EQ(flat->model, "s3://" + bucket_ + "/out/tune-001-0123abcd/output/model/");
  EXPECT_EQ(Keys(*client_, bucket_, "out/tune-001-0123abcd/output/"),
            (std::vector<std::string>{"out/tune-001-0123abcd/output/data/eval.txt",
                                      "out/tune-001-0123abcd/output/model.tar.gz",
                                      "out/tune-001-0123abcd/output/model/model.txt",
                                      "out/tune-001-0123abcd/output/model/sub/vocab.txt",
                                      "out/tune-001-0123abcd/output/output.tar.gz"}));
}

// A two-host attempt with an s3:// output path: algo-2's files go up under the parts prefix,
// algo-1 merges them into its model.tar.gz and deletes the parts.
TEST_F(Radosgw, Algo1MergesAnotherHostsModelFromS3AndDeletesTheHandOver) {
  const std::vector<std::string> hosts = {"algo-1", "algo-2"};
  for (const auto& h : hosts) {
    fs::create_directories(dir_ / h / "model");
    std::ofstream(dir_ / h / "model" / (h + ".pt")) << h;
  }
  const S3Client* raw = client_.get();
  auto s3 = [raw]() -> Result<const S3Client*> { return raw; };
  for (size_t i : {1, 0}) {
    ArtifactSpec spec{.root = (dir_ / hosts[i]).string(),
                      .output_path = "s3://" + bucket_ + "/gang/",
                      .job_name = "tune-002-0123abcd",
                      .compress = true,
                      .scratch_dir = dir_.string()};
    spec.replace = false;
    spec.primary = i == 0;
    spec.host = hosts[i];
    spec.hosts = hosts;
    spec.attempt = 1;
    auto up = UploadArtifacts(spec, s3);
    ASSERT_TRUE(up.ok()) << hosts[i] << ": " << up.status().ToString();
    if (i == 1) {
      EXPECT_EQ(Keys(*client_, bucket_, "gang/tune-002-0123abcd/output/"),
                (std::vector<std::string>{"gang/tune-002-0123abcd/output/.hpo-hosts/attempt-1/algo-2.done",
                                          "gang/tune-002-0123abcd/output/.hpo-hosts/attempt-1/algo-2/model/algo-2.pt"}))
          << "only the hand-over: algo-1 writes the archives";
      ArtifactSpec algo1 = spec;
      algo1.host = "algo-1";
      EXPECT_TRUE(HandedOver(algo1, s3)) << "algo-1 sees algo-2's hand-over done";
    } else {
      EXPECT_EQ(up->note, "model: 1 file from algo-2 merged");
    }
  }
  const std::vector<std::string> keys = Keys(*client_, bucket_, "gang/");
  ASSERT_EQ(keys, (std::vector<std::string>{"gang/tune-002-0123abcd/output/model.tar.gz",
                                            "gang/tune-002-0123abcd/output/output.tar.gz"}))
      << "the hand-over is gone";
  ASSERT_TRUE(client_->GetToFile(bucket_, keys[0], (dir_ / "m.tgz").string()).ok());
  EXPECT_EQ(Sh("tar -tzf " + (dir_ / "m.tgz").string() + " | sort"), "algo-1.pt\nalgo-2.pt\n");
}

// Pipe mode from S3: the objects are downloaded once into the spool directory while staging and
// every epoch is fed from there (gunzipped, framed as RecordIO), even once S3 no longer has them.
TEST_F(Radosgw, APipeModeChannelIsDownloadedOnceAndFedEveryEpochFromTheSpool) {
  auto gzip = [](const std::string& data) { return hpo::testing::Gzip(data); };

  auto record = [](const std::string& payload) {
    std::string r = RecordIOHeader(static_cast<uint32_t>(payload.size())) + payload;
    return r.append(RecordIOPadding(payload.size()), '\0');
  };
  std::string big;
  for (int i = 0; i < 20000; ++i) big += "row " + std::to_string(i) + "\n";  // ~200 KB
  ASSERT_TRUE(client_->PutBytes(bucket_, "pipe/train/b.gz", gzip("second\n")).ok());
  ASSERT_TRUE(client_->PutBytes(bucket_, "pipe/train/a.gz", gzip(big)).ok());
  ASSERT_TRUE(client_->PutBytes(bucket_, "pipe/train0/c.gz", gzip("a namesake's")).ok());
  ChannelSource s;
  s.name = "train";
  s.input_mode = "Pipe";
  s.uri = "s3://" + bucket_ + "/pipe/train/";  // a directory: the namesake pipe/train0 is not its
  s.compression = "Gzip";
  s.record_wrapper = "RecordIO";
  StagingContext ctx = Ctx();
  ctx.spool_dir = (dir_ / "spool" / "train").string();
  auto staged = StageChannel(s, ctx);
  ASSERT_TRUE(staged.ok()) << staged.status().ToString();
  ASSERT_TRUE(staged->pipe.has_value());
  EXPECT_EQ(staged->objects, 2u);
  ASSERT_EQ(staged->pipe->objects.size(), 2u);
  EXPECT_EQ(staged->pipe->objects[0].name, "s3://" + bucket_ + "/pipe/train/a.gz");
  EXPECT_EQ(staged->pipe->objects[0].path.rfind(ctx.spool_dir + "/", 0), 0u);
  EXPECT_TRUE(fs::is_empty(dir_ / "channel"));
  // Gone from S3: the epochs come from the spool.
  ASSERT_TRUE(client_->Delete(bucket_, "pipe/train/a.gz").ok());
  ASSERT_TRUE(client_->Delete(bucket_, "pipe/train/b.gz").ok());
  auto feeder = PipeFeeder::Start(*staged->pipe);
  ASSERT_TRUE(feeder.ok()) << feeder.status().ToString();
  const std::string want = record(big) + record("second\n");
  for (int epoch = 0; epoch < 2; ++epoch) {
    auto read = std::async(std::launch::async, [&] {
      std::string got;
      int fd = ::open((dir_ / ("train_" + std::to_string(epoch))).c_str(), O_RDONLY | O_CLOEXEC);
      if (fd < 0) return std::string("cannot open");
      char buf[65536];
      ssize_t n;
      while ((n = ::read(fd, buf, sizeof buf)) > 0) got.append(buf, static_cast<std::size_t>(n));
      ::close(fd);
      return got;
    });
    ASSERT_EQ(read.wait_for(std::chrono::seconds(20)), std::future_status::ready) << "epoch " << epoch;
    EXPECT_EQ(read.get(), want) << "epoch " << epoch;
  }
  (*feeder)->Stop();
  EXPECT_TRUE((*feeder)->error().ok()) << (*feeder)->error().ToString();
  EXPECT_EQ((*feeder)->stats().epochs, 2u);
}

// Checkpoints (worker/checkpoints.h) in S3: uploaded, changed, deleted, restored elsewhere.
TEST_F(Radosgw, CheckpointsSyncToAPrefixAndComeBackOnAnotherHost) {
  const S3Client* raw = client_.get();
  auto s3 = [raw]() -> Result<const S3Client*> { return raw; };
  const std::string uri = "s3://" + bucket_ + "/ckpt/tune-001-0123abcd";
  ASSERT_TRUE(client_->PutBytes(bucket_, "ckpt/tune-001-0123abcd0/state.txt", "a namesake's").ok());
  auto a = CheckpointSync::Create(uri, (dir_ / "a").string(), s3);
  ASSERT_TRUE(a.ok()) << a.status().ToString();
  auto restored = (*a)->Restore();
  ASSERT_TRUE(restored.ok()) << restored.status().ToString();
  EXPECT_EQ(restored->files, 0u) << "a prefix is a directory";
  fs::create_directories(dir_ / "a" / "sub");
  std::ofstream(dir_ / "a" / "state.txt") << "epoch=7";
  std::ofstream(dir_ / "a" / "sub" / "old.bin") << "old";
  ASSERT_TRUE((*a)->Sync().ok());
  fs::remove(dir_ / "a" / "sub" / "old.bin");
  auto pass = (*a)->Sync();
  ASSERT_TRUE(pass.ok()) << pass.status().ToString();
  EXPECT_EQ(pass->deleted, 1u);
  auto listed = client_->List(bucket_, "ckpt/tune-001-0123abcd/");
  ASSERT_TRUE(listed.ok());
  ASSERT_EQ(listed->size(), 1u);
  EXPECT_EQ((*listed)[0].key, "ckpt/tune-001-0123abcd/state.txt");

  auto b = CheckpointSync::Create(uri + "/", (dir_ / "b").string(), s3);
  ASSERT_TRUE(b.ok());
  restored = (*b)->Restore();
  ASSERT_TRUE(restored.ok()) << restored.status().ToString();
  EXPECT_EQ(restored->files, 1u);
  EXPECT_EQ(Slurp(dir_ / "b" / "state.txt"), "epoch=7");
}

// The channel cache against real S3: a second staging of the same objects downloads nothing
// (counted by the cache: every GET goes through its download function), an overwritten object
// (new ETag) is downloaded again with its new content, and a FastFile channel under a read-only
// mount gets hard links to the cached files.
TEST_F(Radosgw, TheChannelCacheServesASecondStagingAndFetchesAnOverwrittenObjectAgain) {
  ASSERT_TRUE(client_->PutBytes(bucket_, "cached/a.csv", "version 1 of a").ok());
  ASSERT_TRUE(client_->PutBytes(bucket_, "cached/sub/b.csv", "b, never changed").ok());
  std::string big(6u << 20, '\0');  // a multipart upload: its ETag is "<md5>-2"
  std::mt19937 rng(7);
  for (auto& c : big) c = static_cast<char>(rng());
  std::ofstream(dir_ / "big.bin", std::ios::binary) << big;
  ASSERT_TRUE(client_->PutFile(bucket_, "cached/big.bin", (dir_ / "big.bin").string()).ok());
  auto cache = ChannelCache::Open({(dir_ / "cache").string(), 64u << 20, nullptr});
  ASSERT_TRUE(cache.ok()) << cache.status().ToString();
  ChannelSource s;
  s.name = "train";
  s.input_mode = "File";
  s.uri = "s3://" + bucket_ + "/cached";
  auto stage = [&](const std::string& channel, bool mount_namespace = false) {
    StagingContext ctx = Ctx();
    ctx.channel_dir = (dir_ / channel).string();
    ctx.mount_namespace = mount_namespace;
    ctx.cache = cache->get();
    fs::create_directories(ctx.channel_dir);
    return StageChannel(s, ctx);
  };

  auto first = stage("trial-1");
  ASSERT_TRUE(first.ok()) << first.status().ToString();
  EXPECT_EQ(first->objects, 3u);
  EXPECT_EQ(first->cached_objects, 0u);
  EXPECT_EQ((*cache)->Stats().downloads, 3u);

  auto second = stage("trial-2");
  ASSERT_TRUE(second.ok()) << second.status().ToString();
  EXPECT_EQ(second->objects, 3u);
  EXPECT_EQ(second->cached_objects, 3u);
  EXPECT_EQ(second->cached_bytes, second->bytes);
  EXPECT_EQ((*cache)->Stats().downloads, 3u) << "the second staging downloaded something";
  EXPECT_EQ(Slurp(dir_ / "trial-2" / "a.csv"), "version 1 of a");
  EXPECT_EQ(Slurp(dir_ / "trial-2" / "sub" / "b.csv"), "b, never changed");
  EXPECT_TRUE(Slurp(dir_ / "trial-2" / "big.bin") == big);

  ASSERT_TRUE(client_->PutBytes(bucket_, "cached/a.csv", "version 2 of a, longer").ok());
  auto third = stage("trial-3");
  ASSERT_TRUE(third.ok()) << third.status().ToString();
  EXPECT_EQ(third->cached_objects, 2u);
  EXPECT_EQ((*cache)->Stats().downloads, 4u);
  EXPECT_EQ(Slurp(dir_ / "trial-3" / "a.csv"), "version 2 of a, longer");
  EXPECT_EQ(Slurp(dir_ / "trial-2" / "a.csv"), "version 1 of a");  // an earlier trial keeps its copy
  EXPECT_EQ((*cache)->Stats().entries, 3u);  // the old version of a.csv is gone

  s.input_mode = "FastFile";
  auto fast = stage("trial-4", /*mount_namespace=*/true);
  ASSERT_TRUE(fast.ok()) << fast.status().ToString();
  EXPECT_EQ(fast->cached_objects, 3u);
  EXPECT_EQ((*cache)->Stats().downloads, 4u);
  ASSERT_EQ(fast->mounts.size(), 1u);  // the read-only bind mount that makes the link safe
  EXPECT_TRUE(fast->mounts[0].read_only);
  struct stat st {};
  ASSERT_EQ(::stat((dir_ / "trial-4" / "big.bin").c_str(), &st), 0);
  EXPECT_EQ(st.st_nlink, 2u);  // the cached file and this channel's link
  EXPECT_EQ(st.st_mode & 0777, 0444u);
}

}  // namespace
}  // namespace hpo::worker
