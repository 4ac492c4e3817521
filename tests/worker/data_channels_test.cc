// Data channels from local sources (file://, paths, fileSystemDataSource), artifacts packing
// and the S3 signer. The same code against a real S3 (radosgw) is in s3_radosgw_test.cc.
#include "worker/artifacts.h"
#include "worker/data_channels.h"
#include "common/s3_client.h"
#include "tests/shell.h"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cstdlib>
#include <future>
#include <chrono>
#include <sys/stat.h>
#include <filesystem>
#include <fstream>
#include <memory>
#include <set>
#include <sstream>
#include <thread>
#include <vector>

#include <sys/mount.h>
#include <cerrno>
#include <cstring>
#include <gtest/gtest.h>

namespace hpo::worker {
namespace {

namespace fs = std::filesystem;

std::string Slurp(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

void Put(const fs::path& p, const std::string& text) {
  fs::create_directories(p.parent_path());
  std::ofstream(p, std::ios::binary) << text;
}

using hpo::testing::Sh;

class Channels : public ::testing::Test {
 protected:
  // Host `i` of `hosts` for attempt 2 of training job `job`, packing from `root` into a local
  // output path: algo-1 (i == 0) merges, the others hand over.
  ArtifactSpec GangSpec(const std::string& job, const fs::path& root, const fs::path& out,
                        const std::vector<std::string>& hosts, size_t i) const {
    ArtifactSpec spec{.root = root.string(),
                      .output_path = "file://" + out.string(),
                      .job_name = job,
                      .compress = true,
                      .scratch_dir = dir_.string()};
    spec.replace = false;
    spec.primary = i == 0;
    spec.host = hosts[i];
    spec.hosts = hosts;
    spec.attempt = 2;
    return spec;
  }
  void SetUp() override {
    dir_ = fs::temp_directory_path() / ("hpo-ch-" + std::to_string(::getpid()) + "-" +
                                        ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(dir_);
    fs::create_directories(dir_ / "channel");
    Put(dir_ / "data" / "ASHA-1" / "a.csv", "1,2\n");
    Put(dir_ / "data" / "ASHA-1" / "sub" / "b.csv", "3,4\n");
    Put(dir_ / "data" / "ASHA-10" / "c.csv", "not mine\n");
  }
  void TearDown() override { fs::remove_all(dir_); }

  StagingContext Ctx(bool ns = false) {
    StagingContext c;
    c.channel_dir = (dir_ / "channel").string();
    c.visible_dir = "/opt/ml/input/data/train";
    c.mount_namespace = ns;
    c.hosts = {"algo-1"};
    c.current_host = "algo-1";
    c.s3 = []() -> Result<const S3Client*> { return Status::FailedPrecondition("no S3 in this test"); };
    return c;
  }
  ChannelSource Src(const std::string& uri) {
    ChannelSource s;
    s.name = "train";
    s.input_mode = "File";
    s.uri = uri;
    return s;
  }
  std::set<std::string> Files() {
    std::set<std::string> out;
    for (auto& e : fs::recursive_directory_iterator(dir_ / "channel")) {
      if (e.is_regular_file()) out.insert(fs::relative(e.path(), dir_ / "channel").string());
    }
    return out;
  }
  fs::path dir_;
};

TEST_F(Channels, APrefixIsMatchedAsADirectoryNotAsRawText) {
  // file:// and a bare path name the same source; ASHA-10 never leaks into ASHA-1.
  for (std::string uri : {"file://" + (dir_ / "data" / "ASHA-1").string(), (dir_ / "data" / "ASHA-1").string()}) {
    fs::remove_all(dir_ / "channel");
    fs::create_directories(dir_ / "channel");
    auto staged = StageChannel(Src(uri), Ctx());
    ASSERT_TRUE(staged.ok()) << staged.status().ToString();
    EXPECT_EQ(Files(), (std::set<std::string>{"a.csv", "sub/b.csv"})) << uri;
    EXPECT_EQ(staged->objects, 2u);
    EXPECT_EQ(staged->bytes, 8u);
    EXPECT_EQ(Slurp(dir_ / "channel" / "sub" / "b.csv"), "3,4\n");
  }
}

TEST_F(Channels, ASingleFileSourceLandsUnderItsName) {
  auto staged = StageChannel(Src((dir_ / "data" / "ASHA-1" / "a.csv").string()), Ctx());
  ASSERT_TRUE(staged.ok()) << staged.status().ToString();
  EXPECT_EQ(Files(), (std::set<std::string>{"a.csv"}));
}

// A training job stopped while it stages: no further object is fetched.
TEST_F(Channels, AStoppedStagingFetchesNothingMore) {
  StagingContext ctx = Ctx();
  auto cancel = std::make_shared<std::atomic<bool>>(true);
  ctx.cancel = cancel;
  ctx.parallel_fetches = 1;
  auto staged = StageChannel(Src((dir_ / "data" / "ASHA-1").string()), ctx);
  ASSERT_FALSE(staged.ok());
  EXPECT_EQ(staged.status().code(), StatusCode::kUnavailable);
  EXPECT_NE(staged.status().message().find("staging cancelled"), std::string::npos) << staged.status().ToString();
  EXPECT_TRUE(Files().empty());
  cancel->store(false);  // not stopped: everything
  ASSERT_TRUE(StageChannel(Src((dir_ / "data" / "ASHA-1").string()), ctx).ok());
  EXPECT_EQ(Files(), (std::set<std::string>{"a.csv", "sub/b.csv"}));
}

// A channel larger than the work directory's filesystem: the error says the disk is full
// (copy_file's sendfile path reported "Input/output error", which points at a failing disk).
TEST_F(Channels, AChannelThatDoesNotFitSaysTheWorkDirectoryIsFull) {
  const fs::path small = dir_ / "small";
  fs::create_directories(small);
  if (::mount("tmpfs", small.c_str(), "tmpfs", 0, "size=1m") != 0) {
    GTEST_SKIP() << "cannot mount a small tmpfs here (needs root): " << std::strerror(errno);
  }
  struct Unmount {
    fs::path p;
    ~Unmount() { ::umount2(p.c_str(), MNT_DETACH); }
  } unmount{small};
  Put(dir_ / "big" / "blob.bin", std::string(3 << 20, 'x'));
  StagingContext c = Ctx();
  c.channel_dir = (small / "channel").string();
  fs::create_directories(c.channel_dir);
  auto staged = StageChannel(Src((dir_ / "big").string()), c);
  ASSERT_FALSE(staged.ok());
  EXPECT_NE(staged.status().message().find("No space left on device: the work directory's filesystem"),
            std::string::npos)
      << staged.status().message();
  EXPECT_EQ(staged.status().message().find("Input/output error"), std::string::npos) << staged.status().message();
}

TEST_F(Channels, AMissingSourceIsNotFoundAndNamesTheChannel) {
  auto staged = StageChannel(Src((dir_ / "data" / "nope").string()), Ctx());
  ASSERT_FALSE(staged.ok());
  EXPECT_EQ(staged.status().code(), StatusCode::kNotFound);
  EXPECT_EQ(staged.status().message().rfind("channel train: ", 0), 0u) << staged.status().message();
}

// A regression pass: a channel's local path through a regular file was an infrastructure error,
// retried on every worker, which rested. It is the job's mistake (InvalidArgument: ClientError).
TEST_F(Channels, ALocalPathThroughAFileIsTheJobsMistake) {
  std::ofstream(dir_ / "afile") << "x\n";
  auto staged = StageChannel(Src((dir_ / "afile" / "x").string()), Ctx());
  ASSERT_FALSE(staged.ok());
  EXPECT_EQ(staged.status().code(), StatusCode::kInvalidArgument) << staged.status().message();
  EXPECT_NE(staged.status().message().find((dir_ / "afile").string() + " is a file, where the path"), std::string::npos)
      << staged.status().message();
}

TEST_F(Channels, ARelativeUriIsRefusedInEveryInputMode) {
  for (const char* mode : {"File", "FastFile", "Pipe"}) {
    ChannelSource rel = Src("data/train");
    rel.input_mode = mode;
    auto staged = StageChannel(rel, Ctx());
    ASSERT_FALSE(staged.ok()) << mode;
    EXPECT_EQ(staged.status().code(), StatusCode::kInvalidArgument) << mode;
    EXPECT_NE(staged.status().message().find("is not an s3://bucket/prefix URI, a file:// URI or an absolute path"), std::string::npos) << mode;
  }
}

TEST_F(Channels, AManifestListsObjectsUnderItsPrefixAndCannotEscapeTheChannel) {
  Put(dir_ / "manifest.json", "[{\"prefix\": \"file://" + (dir_ / "data").string() + "/\"}, \"ASHA-1/a.csv\", \"ASHA-10/c.csv\"]");
  ChannelSource m = Src((dir_ / "manifest.json").string());
  m.s3_data_type = "ManifestFile";
  auto staged = StageChannel(m, Ctx());
  ASSERT_TRUE(staged.ok()) << staged.status().ToString();
  EXPECT_EQ(Files(), (std::set<std::string>{"ASHA-1/a.csv", "ASHA-10/c.csv"}));
  Put(dir_ / "evil.json", "[{\"prefix\": \"" + (dir_ / "data").string() + "/\"}, \"../../etc/passwd\"]");
  m.uri = (dir_ / "evil.json").string();
  auto evil = StageChannel(m, Ctx());
  ASSERT_FALSE(evil.ok());
  EXPECT_NE(evil.status().message().find("could land outside the directory"), std::string::npos);
  // Names no file can have: a ClientError naming the object (a 300-byte segment was an IoError
  // from the file system, an infrastructure error retried on every worker; "a//b" was said to
  // land outside the channel).
  const std::string long_name(300, 'N');
  for (const std::string& name : {std::string("a//b.csv"), "x/" + long_name + ".csv"}) {
    Put(dir_ / "odd.json", "[{\"prefix\": \"" + (dir_ / "data").string() + "/\"}, \"" + name + "\"]");
    m.uri = (dir_ / "odd.json").string();
    auto odd = StageChannel(m, Ctx());
    ASSERT_FALSE(odd.ok()) << name;
    EXPECT_EQ(odd.status().code(), StatusCode::kInvalidArgument) << name;
    EXPECT_NE(odd.status().message().find((dir_ / "data").string() + "/" + name), std::string::npos)
        << odd.status().message();
    EXPECT_NE(odd.status().message().find(name.size() > 100 ? "a segment of 304 bytes; file names are at most 255"
                                                            : "an empty or \".\" segment"),
              std::string::npos)
        << odd.status().message();
    EXPECT_EQ(odd.status().message().find("outside"), std::string::npos) << odd.status().message();
  }
  // One name a file and a directory (a and a/b): a ClientError naming both, before anything is
  // staged (staging met it as an I/O error, an infrastructure failure).
  Put(dir_ / "dirfile.json", "[{\"prefix\": \"" + (dir_ / "data").string() + "/\"}, \"a\", \"a-b\", \"a/b\"]");
  m.uri = (dir_ / "dirfile.json").string();
  auto dirfile = StageChannel(m, Ctx());
  ASSERT_FALSE(dirfile.ok());
  EXPECT_EQ(dirfile.status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(dirfile.status().message().find("a would be a file and also the directory that holds a/b"),
            std::string::npos)
      << dirfile.status().message();
  // Not in Pipe mode, which streams the objects and makes no file of their names (a regression
  // pass found S3 keys p/a and p/a/b refused there). Here a/b cannot exist beside the file a.
  ChannelSource piped = m;
  piped.input_mode = "Pipe";
  auto streamed = StageChannel(piped, Ctx());
  EXPECT_EQ(streamed.status().message().find("would be a file and also the directory"), std::string::npos)
      << streamed.status().message();
  Put(dir_ / "bad.json", "{\"prefix\": 1}");
  m.uri = (dir_ / "bad.json").string();
  EXPECT_FALSE(StageChannel(m, Ctx()).ok());
}

TEST_F(Channels, AnAugmentedManifestKeepsOnlyTheAttributeNamesInOrder) {
  Put(dir_ / "aug.jsonl", "{\"source-ref\":\"s3://b/1.jpg\",\"label\":1,\"extra\":\"x\"}\n"
                          "{\"label\":0,\"source-ref\":\"s3://b/2.jpg\"}\n");
  ChannelSource a = Src((dir_ / "aug.jsonl").string());
  a.s3_data_type = "AugmentedManifestFile";
  a.attribute_names = {"source-ref", "label"};
  auto staged = StageChannel(a, Ctx());
  ASSERT_TRUE(staged.ok()) << staged.status().ToString();
  EXPECT_EQ(Slurp(dir_ / "channel" / "aug.jsonl"),
            "{\"source-ref\":\"s3://b/1.jpg\",\"label\":1}\n{\"source-ref\":\"s3://b/2.jpg\",\"label\":0}\n");
  a.attribute_names = {"label", "bbox"};
  auto missing = StageChannel(a, Ctx());
  ASSERT_FALSE(missing.ok());
  EXPECT_NE(missing.status().message().find("line 1 has no attribute \"bbox\""), std::string::npos);
}

// A manifest nested a million levels deep is refused with what is wrong, before anything walks it
// recursively (the worker would otherwise overflow its stack on the user's file).
TEST_F(Channels, ADeeplyNestedManifestIsRefusedNotACrash) {
  const std::string deep = std::string(1000000, '[') + std::string(1000000, ']');
  Put(dir_ / "deep.json", "[{\"prefix\": \"" + (dir_ / "data").string() + "/\"}, " + deep + "]");
  ChannelSource m = Src((dir_ / "deep.json").string());
  m.s3_data_type = "ManifestFile";
  auto staged = StageChannel(m, Ctx());
  ASSERT_FALSE(staged.ok());
  EXPECT_EQ(staged.status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(staged.status().message().find("nests more than 256 levels"), std::string::npos) << staged.status().message();
  Put(dir_ / "deep.jsonl", "{\"source-ref\":\"s3://b/1.jpg\",\"label\":1}\n{\"label\":" + deep + "}\n");
  ChannelSource a = Src((dir_ / "deep.jsonl").string());
  a.s3_data_type = "AugmentedManifestFile";
  a.attribute_names = {"label"};
  auto aug = StageChannel(a, Ctx());
  ASSERT_FALSE(aug.ok());
  EXPECT_NE(aug.status().message().find("line 2 nests more than 256 levels"), std::string::npos) << aug.status().message();
}

TEST_F(Channels, ShardedByS3KeySplitsTheObjectsAcrossTheHostsWithoutOverlap) {
  for (int i = 0; i < 7; ++i) Put(dir_ / "many" / ("part-" + std::to_string(i)), "x");
  ChannelSource s = Src((dir_ / "many").string());
  s.distribution = "ShardedByS3Key";
  StagingContext c1 = Ctx(), c2 = Ctx();
  c1.hosts = c2.hosts = {"algo-2", "algo-1"};
  c1.current_host = "algo-1";
  c2.current_host = "algo-2";
  auto a = PlanObjects(s, c1), b = PlanObjects(s, c2);
  ASSERT_TRUE(a.ok() && b.ok());
  EXPECT_EQ(a->size(), 4u);
  EXPECT_EQ(b->size(), 3u);
  std::set<std::string> all(a->begin(), a->end());
  for (const auto& x : *b) EXPECT_TRUE(all.insert(x).second) << x << " went to both hosts";
  EXPECT_EQ(all.size(), 7u);
  s.distribution = "FullyReplicated";
  EXPECT_EQ(PlanObjects(s, c2)->size(), 7u);
  s.distribution = "Sharded";
  EXPECT_FALSE(PlanObjects(s, c2).ok());
}

// S3DataSource.InstanceGroupNames: three hosts, "gpu" (algo-1) and "data" (algo-2, algo-3), a
// sharded channel for "data" only. Its two hosts split every object between them; none is given
// to algo-1, which does not receive the channel.
TEST_F(Channels, ShardedByS3KeySplitsTheObjectsOverTheHostsOfTheChannelsInstanceGroupsOnly) {
  for (int i = 0; i < 7; ++i) Put(dir_ / "many" / ("part-" + std::to_string(i)), "x");
  ChannelSource s = Src((dir_ / "many").string());
  s.distribution = "ShardedByS3Key";
  s.hosts = {"algo-3", "algo-2"};  // the "data" group's hosts, in any order
  std::set<std::string> all;
  size_t total = 0;
  for (const std::string host : {"algo-2", "algo-3"}) {
    StagingContext c = Ctx();
    c.hosts = {"algo-1", "algo-2", "algo-3"};
    c.current_host = host;
    auto mine = PlanObjects(s, c);
    ASSERT_TRUE(mine.ok()) << mine.status().ToString();
    EXPECT_EQ(mine->size(), host == "algo-2" ? 4u : 3u) << host;
    total += mine->size();
    for (const auto& x : *mine) EXPECT_TRUE(all.insert(x).second) << x << " went to two hosts";
  }
  EXPECT_EQ(total, 7u);
  EXPECT_EQ(all.size(), 7u) << "every object reaches one of the channel's hosts";
  // A host outside the channel's groups has no shard of it.
  StagingContext gpu = Ctx();
  gpu.hosts = {"algo-1", "algo-2", "algo-3"};
  gpu.current_host = "algo-1";
  auto none = PlanObjects(s, gpu);
  ASSERT_FALSE(none.ok());
  EXPECT_NE(none.status().message().find("not among the hosts of the channel's instance groups"), std::string::npos)
      << none.status().message();
  // FullyReplicated ignores the groups' hosts: every host that stages it gets everything.
  s.distribution = "FullyReplicated";
  EXPECT_EQ(PlanObjects(s, gpu)->size(), 7u);
}

TEST_F(Channels, AShuffleSeedGivesTheSameOrderEveryTimeAndAnotherSeedAnother) {
  for (int i = 0; i < 20; ++i) Put(dir_ / "many" / ("part-" + std::to_string(100 + i)), "x");
  ChannelSource s = Src((dir_ / "many").string());
  auto plain = PlanObjects(s, Ctx());
  s.shuffle_seed = 7;
  auto a = PlanObjects(s, Ctx()), b = PlanObjects(s, Ctx());
  s.shuffle_seed = 8;
  auto c = PlanObjects(s, Ctx());
  ASSERT_TRUE(plain.ok() && a.ok() && b.ok() && c.ok());
  EXPECT_TRUE(std::is_sorted(plain->begin(), plain->end()));
  EXPECT_EQ(*a, *b);
  EXPECT_NE(*a, *plain);
  EXPECT_NE(*a, *c);
  std::vector<std::string> sorted = *a;
  std::sort(sorted.begin(), sorted.end());
  EXPECT_EQ(sorted, *plain);
}

// A contract pass: in File mode a file-system source was copied, so what a program wrote to an "rw"
// channel vanished and "ro" was not enforced; SageMaker mounts an EFS or FSx directory in File mode.
TEST_F(Channels, AFileSystemSourceIsMountedInFileModeAsInFastFileMode) {
  ChannelSource f;
  f.name = "train";
  f.input_mode = "File";
  f.directory_path = (dir_ / "data" / "ASHA-1").string();
  auto file_mode = StageChannel(f, Ctx(/*ns=*/true));
  ASSERT_TRUE(file_mode.ok()) << file_mode.status().ToString();
  ASSERT_EQ(file_mode->mounts.size(), 1u);
  EXPECT_EQ(file_mode->mounts[0].source, f.directory_path);
  EXPECT_TRUE(file_mode->mounts[0].read_only);
  EXPECT_EQ(file_mode->objects, 0u) << "nothing copied";
  f.access_mode = "rw";
  auto file_rw = StageChannel(f, Ctx(true));
  ASSERT_TRUE(file_rw.ok());
  EXPECT_FALSE(file_rw->mounts[0].read_only);
  f.access_mode = "";

  f.input_mode = "FastFile";
  auto ro = StageChannel(f, Ctx(/*ns=*/true));
  ASSERT_TRUE(ro.ok());
  ASSERT_EQ(ro->mounts.size(), 1u);
  EXPECT_EQ(ro->mounts[0].source, f.directory_path);
  EXPECT_EQ(ro->mounts[0].target, "/opt/ml/input/data/train");
  EXPECT_TRUE(ro->mounts[0].read_only);
  EXPECT_EQ(ro->objects, 0u);  // nothing copied
  f.access_mode = "rw";
  auto rw = StageChannel(f, Ctx(true));
  ASSERT_TRUE(rw.ok());
  EXPECT_FALSE(rw->mounts[0].read_only);
  f.access_mode = "wo";
  EXPECT_FALSE(StageChannel(f, Ctx(true)).ok());

  // Without a mount namespace the channel directory links to the source.
  f.access_mode = "ro";
  auto linked = StageChannel(f, Ctx(false));
  ASSERT_TRUE(linked.ok()) << linked.status().ToString();
  EXPECT_TRUE(fs::is_symlink(dir_ / "channel"));
  EXPECT_EQ(Slurp(dir_ / "channel" / "a.csv"), "1,2\n");
  EXPECT_NE(linked->note.find("fileSystemAccessMode ro cannot be enforced"), std::string::npos) << linked->note;
  fs::remove(dir_ / "channel");
  f.input_mode = "File";
  f.access_mode = "rw";
  auto linked_file = StageChannel(f, Ctx(false));
  ASSERT_TRUE(linked_file.ok()) << linked_file.status().ToString();
  EXPECT_TRUE(fs::is_symlink(dir_ / "channel")) << "File mode links too: rw writes reach the file system";
  EXPECT_TRUE(linked_file->note.empty());
}

TEST_F(Channels, FastFileFromAnObjectSourceIsMountedReadOnlyInTheNamespace) {
  ChannelSource s = Src((dir_ / "data" / "ASHA-1").string());
  s.input_mode = "FastFile";
  auto staged = StageChannel(s, Ctx(true));
  ASSERT_TRUE(staged.ok());
  ASSERT_EQ(staged->mounts.size(), 1u);
  EXPECT_EQ(staged->mounts[0].source, (dir_ / "channel").string());
  EXPECT_TRUE(staged->mounts[0].read_only);
}

// ---- artifacts -------------------------------------------------------------------------------

TEST_F(Channels, WriteTarPacksFilesDirectoriesLinksAndLongNamesThatTarReadsBack) {
  fs::path model = dir_ / "model";
  Put(model / "model.pth", std::string(100000, 'w'));
  std::string long_dir(120, 'd');
  Put(model / long_dir / "weights.bin", "long");
  fs::create_directories(model / "empty");
  fs::create_directory_symlink("empty", model / "link");
  ASSERT_TRUE(WriteTar(model.string(), (dir_ / "m.tar.gz").string(), true).ok());
  std::string listing = Sh("tar -tzf " + (dir_ / "m.tar.gz").string() + " | LC_ALL=C sort");
  EXPECT_EQ(listing, long_dir + "/\n" + long_dir + "/weights.bin\nempty/\nlink\nmodel.pth\n");
  fs::create_directories(dir_ / "x");
  Sh("tar -xzf " + (dir_ / "m.tar.gz").string() + " -C " + (dir_ / "x").string());
  EXPECT_EQ(Slurp(dir_ / "x" / "model.pth"), std::string(100000, 'w'));
  EXPECT_EQ(Slurp(dir_ / "x" / long_dir / "weights.bin"), "long");
  EXPECT_TRUE(fs::is_symlink(dir_ / "x" / "link"));
  // Uncompressed, and an empty directory gives a valid empty archive.
  fs::create_directories(dir_ / "nothing");
  ASSERT_TRUE(WriteTar((dir_ / "nothing").string(), (dir_ / "n.tar").string(), false).ok());
  EXPECT_EQ(fs::file_size(dir_ / "n.tar"), 1024u);
  EXPECT_EQ(Sh("tar -tf " + (dir_ / "n.tar").string() + " && echo ok"), "ok\n");
}

// The program owns the model tree. A model directory it replaced with a link to a directory of
// the host is not followed (the host's files were packed into model.tar.gz): the archive is
// empty; a FIFO is left out without being opened.
TEST_F(Channels, WriteTarFollowsNoLinkedModelDirectoryAndOpensNoFifo) {
  const fs::path host = dir_ / "host-secrets";
  Put(host / "shadow", "root:x:0:0");
  const fs::path model = dir_ / "model";
  fs::create_directory_symlink(host, model);
  ASSERT_TRUE(WriteTar(model.string(), (dir_ / "m.tar").string(), false).ok());
  EXPECT_EQ(Sh("tar -tf " + (dir_ / "m.tar").string()), "") << "nothing of the host's";
  fs::remove(model);
  Put(model / "weights.bin", "w");
  ASSERT_EQ(::mkfifo((model / "pipe").c_str(), 0600), 0);
  fs::create_directory_symlink(host, model / "sub");
  auto packed = std::async(std::launch::async, [&] { return WriteTar(model.string(), (dir_ / "f.tar").string(), false); });
  ASSERT_EQ(packed.wait_for(std::chrono::seconds(10)), std::future_status::ready) << "blocked on the FIFO";
  ASSERT_TRUE(packed.get().ok());
  EXPECT_EQ(Sh("tar -tf " + (dir_ / "f.tar").string() + " | LC_ALL=C sort"), "sub\nweights.bin\n")
      << "the FIFO left out, the link kept as a link";
}

// A link whose target is longer than 100 bytes goes in a GNU long-link record (it failed the
// upload as an infrastructure error, retried to no end), and tar reads the target back whole.
TEST_F(Channels, WriteTarKeepsLinkTargetsLongerThanAHundredBytes) {
  fs::path model = dir_ / "model";
  const std::string target = "checkpoints/" + std::string(140, 't') + "/epoch-0009.pt";
  Put(model / target, "weights");
  fs::create_symlink(target, model / "latest.pt");
  ASSERT_TRUE(WriteTar(model.string(), (dir_ / "m.tar.gz").string(), true).ok());
  fs::create_directories(dir_ / "x");
  Sh("tar -xzf " + (dir_ / "m.tar.gz").string() + " -C " + (dir_ / "x").string());
  ASSERT_TRUE(fs::is_symlink(dir_ / "x" / "latest.pt"));
  EXPECT_EQ(fs::read_symlink(dir_ / "x" / "latest.pt").string(), target);
  EXPECT_EQ(Slurp(dir_ / "x" / "latest.pt"), "weights");
}

// A file hard-linked under a second name (a checkpoint kept as "latest" too) is packed once and
// its other name as a hard-link entry, as tar does: each name was a full copy, the archive (and
// its upload) twice the model. Extracted, both names are the one file again.
TEST_F(Channels, WriteTarPacksAHardLinkedFileOnce) {
  fs::path model = dir_ / "model";
  const std::string weights(300000, 'h');
  Put(model / "ckpt" / "epoch-9.pt", weights);
  fs::create_hard_link(model / "ckpt" / "epoch-9.pt", model / "latest.pt");
  Put(model / "other.pt", "x");
  ASSERT_TRUE(WriteTar(model.string(), (dir_ / "m.tar").string(), false).ok());
  EXPECT_LT(fs::file_size(dir_ / "m.tar"), weights.size() + 10 * 1024) << "packed once";
  EXPECT_EQ(Sh("tar -tvf " + (dir_ / "m.tar").string() + " | grep -c ' link to ckpt/epoch-9.pt'"), "1\n");
  fs::create_directories(dir_ / "x");
  Sh("tar -xf " + (dir_ / "m.tar").string() + " -C " + (dir_ / "x").string());
  EXPECT_EQ(Slurp(dir_ / "x" / "latest.pt"), weights);
  EXPECT_EQ(Slurp(dir_ / "x" / "ckpt" / "epoch-9.pt"), weights);
  EXPECT_EQ(Slurp(dir_ / "x" / "other.pt"), "x");
  // Python's tarfile (what SageMaker's model servers unpack with) reads it back too.
  EXPECT_EQ(Sh("python3 -c \"import tarfile,sys; t=tarfile.open(sys.argv[1]); "
               "print(len(t.extractfile('latest.pt').read()))\" " + (dir_ / "m.tar").string()),
            std::to_string(weights.size()) + "\n");
}

// A file with holes takes no blocks in the volume (VolumeSizeInGB let a 1 TB one through), and
// read byte for byte it took hours to pack into a gigabyte of archive. It goes in GNU tar's PAX
// sparse format 1.0 (its data extents and their map), which GNU tar and Python's tarfile (what
// SageMaker's model servers unpack with) restore: the same size, the same bytes, holes again.
TEST_F(Channels, WriteTarPacksAFileWithHolesAsItsDataAlone) {
  const fs::path model = dir_ / "model";
  fs::create_directories(model / "sub");
  constexpr uint64_t kHuge = uint64_t{64} << 30;  // 64 GiB, nearly all hole
  {
    const int fd = ::open((model / "memmap.bin").c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    ASSERT_GE(fd, 0);
    ASSERT_EQ(::pwrite(fd, "head", 4, 0), 4);
    ASSERT_EQ(::pwrite(fd, "middle", 6, uint64_t{5} << 30), 6);
    ASSERT_EQ(::ftruncate(fd, static_cast<off_t>(kHuge)), 0);  // ends in a hole
    ::close(fd);
  }
  {
    const int fd = ::open((model / "sub" / "empty-ish.bin").c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    ASSERT_EQ(::ftruncate(fd, 10 << 20), 0);  // all hole
    ::close(fd);
  }
  Put(model / "weights.pt", std::string(200000, 'w'));  // no hole: packed as before
  const std::string long_name = std::string(120, 'n') + ".bin";
  {
    const int fd = ::open((model / long_name).c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    ASSERT_EQ(::pwrite(fd, "tail", 4, 3 << 20), 4);  // starts with a hole
    ::close(fd);
  }
  struct stat st {};
  ASSERT_EQ(::stat((model / "memmap.bin").c_str(), &st), 0);
  if (static_cast<uint64_t>(st.st_blocks) * 512 > (uint64_t{1} << 20)) GTEST_SKIP() << "no holes on this filesystem";
  ASSERT_TRUE(WriteTar(model.string(), (dir_ / "m.tar.gz").string(), true).ok());
  EXPECT_LT(fs::file_size(dir_ / "m.tar.gz"), 64u << 10) << "the data alone";
  EXPECT_EQ(Sh("tar -tzf " + (dir_ / "m.tar.gz").string() + " | LC_ALL=C sort"),
            "memmap.bin\n" + long_name + "\nsub/\nsub/empty-ish.bin\nweights.pt\n");
  fs::create_directories(dir_ / "x");
  Sh("tar -xzf " + (dir_ / "m.tar.gz").string() + " -C " + (dir_ / "x").string());
  auto at = [](const fs::path& p, uint64_t offset, std::size_t n) {
    std::string out(n, '?');
    const int fd = ::open(p.c_str(), O_RDONLY);
    EXPECT_EQ(::pread(fd, out.data(), n, static_cast<off_t>(offset)), static_cast<ssize_t>(n)) << p;
    ::close(fd);
    return out;
  };
  EXPECT_EQ(fs::file_size(dir_ / "x" / "memmap.bin"), kHuge);
  EXPECT_EQ(at(dir_ / "x" / "memmap.bin", 0, 4), "head");
  EXPECT_EQ(at(dir_ / "x" / "memmap.bin", uint64_t{5} << 30, 6), "middle");
  EXPECT_EQ(at(dir_ / "x" / "memmap.bin", uint64_t{3} << 30, 4), std::string(4, '\0'));
  ASSERT_EQ(::stat((dir_ / "x" / "memmap.bin").c_str(), &st), 0);
  EXPECT_LT(static_cast<uint64_t>(st.st_blocks) * 512, uint64_t{1} << 20) << "GNU tar restored the holes";
  EXPECT_EQ(fs::file_size(dir_ / "x" / "sub" / "empty-ish.bin"), 10u << 20);
  EXPECT_EQ(at(dir_ / "x" / long_name, 3 << 20, 4), "tail");
  EXPECT_EQ(at(dir_ / "x" / long_name, 0, 4), std::string(4, '\0'));
  EXPECT_EQ(Slurp(dir_ / "x" / "weights.pt"), std::string(200000, 'w'));
  // Python's tarfile: the real names and sizes, and the bytes at their offsets.
  EXPECT_EQ(Sh("python3 -c \"import tarfile,sys; t=tarfile.open(sys.argv[1]); "
               "m={i.name: i for i in t.getmembers()}; f=t.extractfile('memmap.bin'); "
               "print(sorted(m), m['memmap.bin'].size, f.read(4), end=' '); f.seek(5 << 30); print(f.read(6), "
               "m['sub/empty-ish.bin'].size)\" " + (dir_ / "m.tar.gz").string()),
            "['memmap.bin', '" + long_name + "', 'sub', 'sub/empty-ish.bin', 'weights.pt'] " + std::to_string(kHuge) +
                " b'head' b'middle' 10485760\n");
}

// A size of 8 GiB or more does not fit the size field's 11 octal digits: written in GNU's
// base-256 form, which Python's tarfile (and GNU tar) decode to the same number. Cut to its low
// digits, a 8 GiB + 5 model file was recorded as 5 bytes and the rest of the archive was lost.
TEST(TarNumbers, SizesOf8GiBAndMoreUseBase256) {
  char field[12];
  const uint64_t below = (uint64_t{1} << 33) - 1, above = (uint64_t{1} << 33) + 5;
  ASSERT_TRUE(FitsOctal(12, below));
  TarNumber(field, 12, below);
  EXPECT_EQ(std::string(field, 12), std::string("77777777777") + '\0');
  ASSERT_FALSE(FitsOctal(12, above));
  TarNumber(field, 12, above);
  EXPECT_EQ(static_cast<unsigned char>(field[0]), 0x80u);
  uint64_t back = 0;
  for (int i = 1; i < 12; ++i) back = back << 8 | static_cast<unsigned char>(field[i]);
  EXPECT_EQ(back, above);
  std::string hex;
  for (char c : field) {
    char b[3];
    std::snprintf(b, sizeof b, "%02x", static_cast<unsigned char>(c));
    hex += b;
  }
  const std::string py = Sh("python3 -c \"import tarfile; print(tarfile.nti(bytes.fromhex('" + hex + "')))\"");
  EXPECT_EQ(py, std::to_string(above) + "\n");
}

// Archives larger than the writer's buffers, compressed and not, many in a row (the deflate
// streams are reused from one archive to the next) and from several threads at once, read back
// byte for byte.
TEST_F(Channels, LargeArchivesRoundTripManyTimesAndFromSeveralThreads) {
  fs::path model = dir_ / "big";
  std::string noise(1500000, '\0');
  uint64_t x = 88172645463325252ull;
  for (char& c : noise) {
    x ^= x << 13, x ^= x >> 7, x ^= x << 17;
    c = static_cast<char>(x);
  }
  std::string text;
  for (int i = 0; i < 20000; ++i) text += "line " + std::to_string(i) + "\n";
  Put(model / "noise.bin", noise);
  Put(model / "sub" / "text.txt", text);
  auto check = [&](const fs::path& archive, bool gzip, const fs::path& into) {
    fs::create_directories(into);
    Sh(std::string("tar -x") + (gzip ? "z" : "") + "f " + archive.string() + " -C " + into.string());
    EXPECT_TRUE(Slurp(into / "noise.bin") == noise) << archive;
    EXPECT_TRUE(Slurp(into / "sub" / "text.txt") == text) << archive;
  };
  for (int round = 0; round < 3; ++round) {
    for (bool gzip : {true, false}) {
      const fs::path archive = dir_ / ("r" + std::to_string(round) + (gzip ? ".tar.gz" : ".tar"));
      ASSERT_TRUE(WriteTar(model.string(), archive.string(), gzip).ok());
      check(archive, gzip, dir_ / ("x" + std::to_string(round) + (gzip ? "z" : "")));
    }
  }
  std::vector<std::thread> threads;
  std::vector<Status> results(4);
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&, t] { results[t] = WriteTar(model.string(), (dir_ / ("t" + std::to_string(t) + ".tar.gz")).string(), true); });
  }
  for (auto& t : threads) t.join();
  for (int t = 0; t < 4; ++t) {
    ASSERT_TRUE(results[t].ok()) << results[t].ToString();
    check(dir_ / ("t" + std::to_string(t) + ".tar.gz"), true, dir_ / ("y" + std::to_string(t)));
  }
}

TEST_F(Channels, ArtifactsLandAtTheSageMakerKeysOfALocalOutputPath) {
  fs::path root = dir_ / "root";
  Put(root / "model" / "model.txt", "the model");
  Put(root / "output" / "data" / "eval.json", "{}");
  for (std::string out : {"file://" + (dir_ / "out").string(), (dir_ / "out2/").string()}) {
    ArtifactSpec spec{.root = root.string(),
                      .output_path = out,
                      .job_name = "job-001-abcdef12",
                      .compress = true,
                      .scratch_dir = dir_.string()};
    auto up = UploadArtifacts(spec, [] { return Result<const S3Client*>(Status::Internal("unused")); });
    ASSERT_TRUE(up.ok()) << up.status().ToString();
    std::string base = out.rfind("file://", 0) == 0 ? out.substr(7) : out;
    while (base.back() == '/') base.pop_back();
    EXPECT_EQ(up->model, (out.back() == '/' ? out.substr(0, out.size() - 1) : out) + "/job-001-abcdef12/output/model.tar.gz");
    EXPECT_EQ(Sh("tar -xzOf " + base + "/job-001-abcdef12/output/model.tar.gz model.txt"), "the model");
    EXPECT_EQ(Sh("tar -tzf " + base + "/job-001-abcdef12/output/output.tar.gz"), "eval.json\n");
    // Packed in place under a temporary name and renamed: nothing else is left, here or in the
    // scratch directory.
    EXPECT_EQ(Sh("ls -A " + base + "/job-001-abcdef12/output"), "model.tar.gz\noutput.tar.gz\n");
    EXPECT_FALSE(fs::exists(dir_ / "model.tar.gz"));
    EXPECT_FALSE(fs::exists(dir_ / "output.tar.gz"));
  }
  ArtifactSpec rel{.root = root.string(),
                   .output_path = "relative/out",
                   .job_name = "j",
                   .compress = true,
                   .scratch_dir = dir_.string()};
  EXPECT_FALSE(UploadArtifacts(rel, [] { return Result<const S3Client*>(Status::Internal("unused")); }).ok());
}

// A multi-host job whose code saves the model on algo-1 only: another host's empty model
// directory does not replace algo-1's archive, whichever host finishes last.
TEST_F(Channels, AnotherHostsEmptyModelDoesNotReplaceAlgo1sArchive) {
  const fs::path algo1 = dir_ / "algo1", algo2 = dir_ / "algo2";
  Put(algo1 / "model" / "model.pt", "weights");
  Put(algo1 / "output" / "data" / "eval.json", "{}");
  fs::create_directories(algo2 / "model");
  const std::string out = "file://" + (dir_ / "out").string();
  ArtifactSpec first{.root = algo1.string(),
                     .output_path = out,
                     .job_name = "gang-001-abcdef12",
                     .compress = true,
                     .scratch_dir = dir_.string()};
  first.replace = false;
  ASSERT_TRUE(UploadArtifacts(first, [] { return Result<const S3Client*>(Status::Internal("unused")); }).ok());
  ArtifactSpec second{.root = algo2.string(),
                      .output_path = out,
                      .job_name = "gang-001-abcdef12",
                      .compress = true,
                      .scratch_dir = dir_.string()};
  second.replace = false;
  second.primary = false;  // algo-2, finishing last
  auto up = UploadArtifacts(second, [] { return Result<const S3Client*>(Status::Internal("unused")); });
  ASSERT_TRUE(up.ok()) << up.status().ToString();
  EXPECT_EQ(up->model, out + "/gang-001-abcdef12/output/model.tar.gz");
  const std::string base = (dir_ / "out" / "gang-001-abcdef12" / "output").string();
  EXPECT_EQ(Sh("tar -xzOf " + base + "/model.tar.gz model.pt"), "weights") << "algo-1's model is still there";
  EXPECT_EQ(Sh("tar -tzf " + base + "/output.tar.gz"), "eval.json\n");
  // A host that did write a model uploads it (the last one wins, as before).
  Put(algo2 / "model" / "rank1.pt", "rank 1");
  ASSERT_TRUE(UploadArtifacts(second, [] { return Result<const S3Client*>(Status::Internal("unused")); }).ok());
  EXPECT_EQ(Sh("tar -tzf " + base + "/model.tar.gz"), "rank1.pt\n");
}

// A three-host attempt: algo-2 and algo-3 hand their files over under the parts prefix, algo-1
// merges them into its archives (a path it has stays its own, a file where it has a directory
// too), and removes the hand-over, an earlier attempt's leftovers included (never merged).
TEST_F(Channels, Algo1MergesTheOtherHostsFilesIntoItsArchivesAndRemovesTheHandOver) {
  const std::vector<std::string> hosts = {"algo-1", "algo-2", "algo-3"};
  std::vector<fs::path> roots;
  for (const auto& h : hosts) roots.push_back(dir_ / h);
  Put(roots[0] / "model" / "config.json", "from algo-1");
  Put(roots[0] / "model" / "shards" / "algo-1.pt", "1");
  Put(roots[1] / "model" / "config.json", "from algo-2");
  Put(roots[1] / "model" / "shards" / "algo-2.pt", "2");
  Put(roots[1] / "output" / "data" / "eval-2.txt", "e2");
  Put(roots[2] / "model" / "shards", "a file where algo-1 has a directory");
  Put(roots[2] / "model" / "extra" / "deep" / "x.bin", "x");
  const fs::path base = dir_ / "out";
  Put(base / "j" / "output" / ".hpo-hosts" / "attempt-1" / "algo-2" / "model" / "stale.pt", "attempt 1");
  auto spec_of = [&](size_t i) { return GangSpec("j", roots[i], base, hosts, i); };
  auto unused = [] { return Result<const S3Client*>(Status::Internal("unused")); };
  for (size_t i : {2, 1}) {
    EXPECT_FALSE(HandedOver(spec_of(0), unused)) << "algo-2 has not handed its files over";
    auto up = UploadArtifacts(spec_of(i), unused);
    ASSERT_TRUE(up.ok()) << up.status().ToString();
    EXPECT_EQ(up->model, "file://" + base.string() + "/j/output/model.tar.gz") << "algo-1's, where it will be";
    EXPECT_TRUE(up->note.empty());
    EXPECT_TRUE(up->handed_over) << "said as handed over, not uploaded (its log said uploaded)";
  }
  EXPECT_TRUE(HandedOver(spec_of(0), unused));
  const fs::path parts = base / "j" / "output" / ".hpo-hosts" / "attempt-2";
  EXPECT_TRUE(fs::exists(parts / "algo-3.done")) << "also a host that had no data";
  EXPECT_EQ(Slurp(parts / "algo-2" / "model" / "config.json"), "from algo-2");
  EXPECT_EQ(Slurp(parts / "algo-2" / "data" / "eval-2.txt"), "e2");
  EXPECT_FALSE(fs::exists(base / "j" / "output" / "model.tar.gz")) << "only algo-1 writes the archives";
  auto up = UploadArtifacts(spec_of(0), unused);
  ASSERT_TRUE(up.ok()) << up.status().ToString();
  EXPECT_EQ(up->note,
            "model: 1 file from algo-2, 1 file from algo-3 merged; 2 paths another host also wrote kept as the lower "
            "host's; data: 1 file from algo-2 merged");
  const std::string model = (base / "j" / "output" / "model.tar.gz").string();
  EXPECT_EQ(Sh("tar -tzf " + model + " | sort"),
            "config.json\nextra/\nextra/deep/\nextra/deep/x.bin\nshards/\nshards/algo-1.pt\nshards/algo-2.pt\n");
  EXPECT_EQ(Sh("tar -xzOf " + model + " config.json"), "from algo-1");
  EXPECT_EQ(Sh("tar -xzOf " + model + " extra/deep/x.bin"), "x");
  EXPECT_EQ(Sh("tar -tzf " + (base / "j" / "output" / "output.tar.gz").string()), "eval-2.txt\n");
  EXPECT_EQ(Sh("ls -A " + (base / "j" / "output").string()), "model.tar.gz\noutput.tar.gz\n");
}

// Hosts past algo-9 are merged in number order (algo-2 before algo-10), and between two other
// hosts the lower one's file stays. A later attempt's hand-over (a retry already running when a
// stopped attempt's algo-1 packs at last) is left alone. A model directory that the program
// replaced with a link is not written through.
TEST_F(Channels, MergingTakesHostsInNumberOrderAndLeavesALaterAttemptsHandOver) {
  std::vector<std::string> hosts;
  for (int i = 1; i <= 10; ++i) hosts.push_back("algo-" + std::to_string(i));
  const fs::path base = dir_ / "out";
  auto spec_of = [&](const std::string& job, const fs::path& root, size_t i) {
    return GangSpec(job, root, base, hosts, i);
  };
  auto unused = [] { return Result<const S3Client*>(Status::Internal("unused")); };
  Put(dir_ / "j" / "algo-1" / "model" / "own.pt", "1");
  Put(dir_ / "j" / "algo-2" / "model" / "same.txt", "2");
  Put(dir_ / "j" / "algo-10" / "model" / "same.txt", "10");
  Put(dir_ / "j" / "algo-10" / "model" / "ten.pt", "10");
  Put(base / "j" / "output" / ".hpo-hosts" / "attempt-3" / "algo-2" / "model" / "next.pt", "attempt 3");
  for (size_t i = hosts.size() - 1; i >= 1; --i) {  // algo-10 first: the order of hand-over is no order
    ASSERT_TRUE(UploadArtifacts(spec_of("j", dir_ / "j" / hosts[i], i), unused).ok()) << hosts[i];
  }
  auto up = UploadArtifacts(spec_of("j", dir_ / "j" / "algo-1", 0), unused);
  ASSERT_TRUE(up.ok()) << up.status().ToString();
  EXPECT_EQ(up->note, "model: 1 file from algo-2, 1 file from algo-10 merged; 1 path another host also wrote kept "
                        "as the lower host's");
  const std::string model = (base / "j" / "output" / "model.tar.gz").string();
  EXPECT_EQ(Sh("tar -tzf " + model + " | sort"), "own.pt\nsame.txt\nten.pt\n");
  EXPECT_EQ(Sh("tar -xzOf " + model + " same.txt"), "2");
  EXPECT_FALSE(fs::exists(base / "j" / "output" / ".hpo-hosts" / "attempt-2"));
  EXPECT_EQ(Slurp(base / "j" / "output" / ".hpo-hosts" / "attempt-3" / "algo-2" / "model" / "next.pt"), "attempt 3")
      << "a later attempt's hand-over stays";

  // Algo-1's program made its model directory a link to a directory outside the attempt.
  fs::create_directories(dir_ / "elsewhere");
  fs::create_directories(dir_ / "k" / "algo-1");
  fs::create_directory_symlink(dir_ / "elsewhere", dir_ / "k" / "algo-1" / "model");
  Put(dir_ / "k" / "algo-2" / "model" / "cron-job", "* * * * * root evil");
  for (size_t i = hosts.size() - 1; i >= 1; --i) {
    ASSERT_TRUE(UploadArtifacts(spec_of("k", dir_ / "k" / hosts[i], i), unused).ok()) << hosts[i];
  }
  up = UploadArtifacts(spec_of("k", dir_ / "k" / "algo-1", 0), unused);
  ASSERT_TRUE(up.ok()) << up.status().ToString();
  EXPECT_NE(up->note.find("model: the other hosts' files were not merged: " + (dir_ / "k" / "algo-1" / "model").string() +
                            " is a symbolic link"),
            std::string::npos)
      << up->note;
  EXPECT_TRUE(fs::is_empty(dir_ / "elsewhere")) << "nothing written through the link";
}

// Algo-1 failed first and packed before the other hosts handed over: it merges no half-done
// hand-over, names the hosts it did not merge, and leaves its "packed" marker; the last host to
// hand over afterwards (here one with nothing to hand over) finds every marker and removes the
// folder. The soak found such folders left behind, each with one host's .done.
// Algo-1 of an attempt the coordinator no longer runs (the training job failed while algo-1's
// worker was out of touch, here after a coordinator restart) uploads nothing; it said nothing
// either, and the other hosts' hand-over stayed in the user's output for good (the soak found
// one). It now leaves its marker: the folder goes at once when the others have handed over, or
// with the last of them.
TEST_F(Channels, Algo1OfAnAttemptNoLongerRunLetsTheHandOverGo) {
  const std::vector<std::string> hosts = {"algo-1", "algo-2", "algo-3"};
  const fs::path base = dir_ / "out";
  auto unused = [] { return Result<const S3Client*>(Status::Internal("unused")); };
  const fs::path parts = base / "j" / "output" / ".hpo-hosts" / "attempt-2";
  Put(dir_ / "algo-2" / "model" / "shard-2.pt", "2");
  ASSERT_TRUE(UploadArtifacts(GangSpec("j", dir_ / "algo-2", base, hosts, 1), unused).ok());
  ASSERT_TRUE(AbandonHandOver(GangSpec("j", dir_ / "algo-1", base, hosts, 0), unused).ok());
  EXPECT_TRUE(fs::exists(parts / "packed")) << "algo-3 has not handed over yet";
  EXPECT_FALSE(fs::exists(base / "j" / "output" / "model.tar.gz")) << "nothing uploaded";
  ASSERT_TRUE(UploadArtifacts(GangSpec("j", dir_ / "algo-3", base, hosts, 2), unused).ok());
  EXPECT_FALSE(fs::exists(base / "j" / "output" / ".hpo-hosts")) << "the last host removed it";

  // Every other host done before: algo-1 removes it itself.
  for (size_t i : {1, 2}) ASSERT_TRUE(UploadArtifacts(GangSpec("k", dir_ / hosts[i], base, hosts, i), unused).ok());
  ASSERT_TRUE(fs::exists(base / "k" / "output" / ".hpo-hosts"));
  ASSERT_TRUE(AbandonHandOver(GangSpec("k", dir_ / "algo-1", base, hosts, 0), unused).ok());
  EXPECT_FALSE(fs::exists(base / "k" / "output" / ".hpo-hosts"));
}

// DiscardHandOver (the coordinator, when algo-1's worker was lost and no retry follows): the
// other hosts' hand-over is removed, attempts up to the one named, never a later one's; the
// folder goes once empty; one already gone is no error; a bad output path is named.
TEST_F(Channels, ADiscardedHandOverIsRemovedUpToItsAttempt) {
  const std::vector<std::string> hosts = {"algo-1", "algo-2", "algo-3"};
  const fs::path base = dir_ / "out";
  auto unused = [] { return Result<const S3Client*>(Status::Internal("unused")); };
  const fs::path root = base / "j" / "output" / ".hpo-hosts";
  Put(dir_ / "algo-2" / "model" / "shard-2.pt", "2");
  Put(dir_ / "algo-3" / "model" / "shard-3.pt", "3");
  ASSERT_TRUE(UploadArtifacts(GangSpec("j", dir_ / "algo-2", base, hosts, 1), unused).ok());
  ASSERT_TRUE(UploadArtifacts(GangSpec("j", dir_ / "algo-3", base, hosts, 2), unused).ok());
  ASSERT_TRUE(fs::exists(root / "attempt-2" / "algo-2" / "model" / "shard-2.pt"));
  Put(root / "attempt-1" / "algo-2.done", "");                       // an earlier attempt's
  Put(root / "attempt-3" / "algo-2" / "model" / "next.pt", "retry");  // a later one's
  Put(base / "j" / "output" / "output.tar.gz", "an earlier run's archive");
  ASSERT_TRUE(DiscardHandOverFolder(base.string(), "j", 2, unused).ok());
  EXPECT_FALSE(fs::exists(root / "attempt-1"));
  EXPECT_FALSE(fs::exists(root / "attempt-2"));
  EXPECT_EQ(Slurp(root / "attempt-3" / "algo-2" / "model" / "next.pt"), "retry");
  ASSERT_TRUE(DiscardHandOverFolder(base.string(), "j", 3, unused).ok());
  EXPECT_FALSE(fs::exists(root)) << "empty, it goes too";
  EXPECT_EQ(Slurp(base / "j" / "output" / "output.tar.gz"), "an earlier run's archive");
  EXPECT_TRUE(DiscardHandOverFolder(base.string(), "j", 3, unused).ok()) << "already gone";
  EXPECT_FALSE(DiscardHandOverFolder("", "j", 1, unused).ok());
}

TEST_F(Channels, TheLastHostToHandOverAfterAlgo1PackedRemovesTheFolder) {
  const std::vector<std::string> hosts = {"algo-1", "algo-2", "algo-3"};
  const fs::path base = dir_ / "out";
  auto unused = [] { return Result<const S3Client*>(Status::Internal("unused")); };
  const fs::path parts = base / "j" / "output" / ".hpo-hosts" / "attempt-2";
  Put(dir_ / "algo-1" / "model" / "shard-1.pt", "1");
  Put(parts / "algo-2" / "model" / "half.pt", "algo-2 is still uploading");  // no algo-2.done yet
  Put(base / "j" / "output" / ".hpo-hosts" / "attempt-1" / "algo-3.done", "");  // a lost host's, attempt 1
  auto up = UploadArtifacts(GangSpec("j", dir_ / "algo-1", base, hosts, 0), unused);
  ASSERT_TRUE(up.ok()) << up.status().ToString();
  EXPECT_EQ(up->note,
            "not merged: algo-2, algo-3 had not handed their files over (they ended after algo-1, or were lost; or a "
            "local output path that not every worker shares)");
  const std::string model = (base / "j" / "output" / "model.tar.gz").string();
  EXPECT_EQ(Sh("tar -tzf " + model), "shard-1.pt\n") << "half a hand-over is not merged";
  EXPECT_TRUE(fs::exists(parts / "packed"));
  EXPECT_FALSE(fs::exists(base / "j" / "output" / ".hpo-hosts" / "attempt-1")) << "an earlier attempt's leftovers go";

  Put(dir_ / "algo-2" / "model" / "shard-2.pt", "2");
  ASSERT_TRUE(UploadArtifacts(GangSpec("j", dir_ / "algo-2", base, hosts, 1), unused).ok());
  EXPECT_TRUE(fs::exists(parts / "algo-2.done")) << "algo-3 has not handed over: the folder stays";
  ASSERT_TRUE(UploadArtifacts(GangSpec("j", dir_ / "algo-3", base, hosts, 2), unused).ok());
  EXPECT_FALSE(fs::exists(base / "j" / "output" / ".hpo-hosts")) << "the last one removed it all";
  EXPECT_EQ(Sh("tar -tzf " + model), "shard-1.pt\n") << "algo-1's archive is as it packed it";

  // In the usual order (the others first, algo-1 last) it is algo-1 that removes the folder.
  for (size_t i : {1, 2}) ASSERT_TRUE(UploadArtifacts(GangSpec("k", dir_ / hosts[i], base, hosts, i), unused).ok());
  EXPECT_TRUE(fs::exists(base / "k" / "output" / ".hpo-hosts" / "attempt-2" / "algo-3.done"));
  up = UploadArtifacts(GangSpec("k", dir_ / "algo-1", base, hosts, 0), unused);
  ASSERT_TRUE(up.ok()) << up.status().ToString();
  EXPECT_EQ(up->note, "model: 1 file from algo-2 merged");
  EXPECT_EQ(Sh("ls -A " + (base / "k" / "output").string()), "model.tar.gz\noutput.tar.gz\n");
}

// A host that never ran (its worker died just before the assignment) never hands over. When the
// coordinator has said every other host ended (GangPeersEnded) before algo-1 packed, nothing more
// will come: algo-1 merges what is there and removes the attempt's folder. Without that, the
// folder stayed in the user's output for good when no retry followed (the soak found one). Without
// the coordinator's word, algo-1 still leaves it for a late host.
TEST_F(Channels, Algo1RemovesTheHandOverFolderWhenThePeersHaveEnded) {
  const std::vector<std::string> hosts = {"algo-1", "algo-2", "algo-3"};
  const fs::path base = dir_ / "out";
  auto unused = [] { return Result<const S3Client*>(Status::Internal("unused")); };
  Put(dir_ / "algo-1" / "model" / "shard-1.pt", "1");
  Put(dir_ / "algo-2" / "model" / "shard-2.pt", "2");
  for (const std::string job : {"j", "k"}) {
    ASSERT_TRUE(UploadArtifacts(GangSpec(job, dir_ / "algo-2", base, hosts, 1), unused).ok());
  }
  ArtifactSpec algo1 = GangSpec("j", dir_ / "algo-1", base, hosts, 0);
  algo1.peers_ended = true;
  auto up = UploadArtifacts(algo1, unused);
  ASSERT_TRUE(up.ok()) << up.status().ToString();
  EXPECT_EQ(Sh("tar -tzf " + (base / "j" / "output" / "model.tar.gz").string() + " | sort"), "shard-1.pt\nshard-2.pt\n");
  EXPECT_NE(up->note.find("algo-3 had not handed"), std::string::npos) << up->note;
  EXPECT_EQ(Sh("ls -A " + (base / "j" / "output").string()), "model.tar.gz\noutput.tar.gz\n");

  up = UploadArtifacts(GangSpec("k", dir_ / "algo-1", base, hosts, 0), unused);
  ASSERT_TRUE(up.ok()) << up.status().ToString();
  EXPECT_TRUE(fs::exists(base / "k" / "output" / ".hpo-hosts" / "attempt-2" / "packed"))
      << "algo-3 may still hand over: the folder stays";
}

// CompressionType NONE, three hosts: each writes its files under output/model/ itself; algo-1,
// last, removes what an earlier attempt wrote there that no host of this one did (a shard file a
// retry no longer writes would otherwise be deployed with the new ones), and the hand-over
// folder. A host whose list is missing leaves everything in place, and the note says so.
TEST_F(Channels, WithCompressionTypeNoneAlgo1RemovesAnEarlierAttemptsFilesOfEveryHost) {
  const std::vector<std::string> hosts = {"algo-1", "algo-2", "algo-3"};
  const fs::path base = dir_ / "out";
  auto unused = [] { return Result<const S3Client*>(Status::Internal("unused")); };
  auto spec_of = [&](const std::string& job, size_t i) {
    ArtifactSpec spec = GangSpec(job, dir_ / job / hosts[i], base, hosts, i);
    spec.compress = false;
    return spec;
  };
  const fs::path model = base / "j" / "output" / "model";
  Put(model / "shard-9-of-attempt-1.pt", "old");
  Put(model / "shard-2.pt", "old 2");
  Put(base / "j" / "output" / "data" / "old-eval.json", "old");
  Put(dir_ / "j" / "algo-1" / "model" / "shard-1.pt", "1");
  Put(dir_ / "j" / "algo-2" / "model" / "shard-2.pt", "2");
  Put(dir_ / "j" / "algo-3" / "output" / "data" / "eval-3.json", "3");
  // A path only the other hosts wrote holds whichever copy came last: said (a gangs pass).
  Put(dir_ / "j" / "algo-2" / "model" / "config.json", "2's");
  Put(dir_ / "j" / "algo-3" / "model" / "config.json", "3's");
  for (size_t i : {1, 2}) {
    auto up = UploadArtifacts(spec_of("j", i), unused);
    ASSERT_TRUE(up.ok()) << up.status().ToString();
    EXPECT_EQ(up->model, "file://" + base.string() + "/j/output/model/");
  }
  EXPECT_EQ(Slurp(model / "shard-2.pt"), "2") << "written straight there";
  EXPECT_EQ(Slurp(base / "j" / "output" / ".hpo-hosts" / "attempt-2" / "algo-3.keys"),
            "data/eval-3.json\nmodel/config.json\n");
  auto up = UploadArtifacts(spec_of("j", 0), unused);
  ASSERT_TRUE(up.ok()) << up.status().ToString();
  EXPECT_EQ(up->note, "1 path(s) that several hosts wrote hold the copy uploaded last: model/config.json (algo-2, "
                      "algo-3); 2 files of an earlier attempt removed");
  EXPECT_EQ(Sh("cd " + (base / "j" / "output").string() + " && find . -type f | sort"),
            "./data/eval-3.json\n./model/config.json\n./model/shard-1.pt\n./model/shard-2.pt\n");

  // Algo-3's list is missing (a host of an earlier build, or lost): nothing is removed.
  Put(base / "k" / "output" / "model" / "old.pt", "old");
  Put(dir_ / "k" / "algo-1" / "model" / "shard-1.pt", "1");
  ASSERT_TRUE(UploadArtifacts(spec_of("k", 1), unused).ok());
  up = UploadArtifacts(spec_of("k", 0), unused);
  ASSERT_TRUE(up.ok()) << up.status().ToString();
  EXPECT_EQ(up->note, "earlier attempts' files were kept: algo-3 has not said what it uploaded");
  EXPECT_EQ(Slurp(base / "k" / "output" / "model" / "old.pt"), "old");
  ASSERT_TRUE(UploadArtifacts(spec_of("k", 2), unused).ok());
  EXPECT_FALSE(fs::exists(base / "k" / "output" / ".hpo-hosts")) << "algo-3, last, removed the folder";
}

// CompressionType NONE: the model's and the output data's files themselves, under output/model/
// and output/data/ (no archive at all), and the model's URI is that prefix, which is what
// DescribeTrainingJob's S3ModelArtifacts names. An earlier attempt's files are gone after the
// next attempt's upload.
TEST_F(Channels, WithCompressionTypeNoneTheFilesLandUncompressedUnderOutputModel) {
  fs::path root = dir_ / "root";
  Put(root / "model" / "weights.bin", "the model");
  Put(root / "model" / "tokenizer" / "vocab.txt", "a b c");
  Put(root / "output" / "data" / "eval.json", "{}");
  fs::create_symlink("/etc/passwd", root / "model" / "link");
  // A link to a file of the model by a relative path goes up as that file (as `aws s3 sync`
  // uploads it; it vanished without a word, a contract pass); the others are named in the log.
  fs::create_symlink("weights.bin", root / "model" / "latest.bin");
  fs::create_symlink("../../outside", root / "model" / "tokenizer" / "up");
  const fs::path base = dir_ / "out";
  Put(base / "j" / "output" / "model" / "stale-from-attempt-1.bin", "old");
  ArtifactSpec none{.root = root.string(),
                    .output_path = "file://" + base.string() + "/",
                    .job_name = "j",
                    .compress = false,
                    .scratch_dir = dir_.string()};
  auto up = UploadArtifacts(none, [] { return Result<const S3Client*>(Status::Internal("unused")); });
  ASSERT_TRUE(up.ok()) << up.status().ToString();
  EXPECT_EQ(up->model, "file://" + base.string() + "/j/output/model/");
  EXPECT_EQ(up->output_data, "file://" + base.string() + "/j/output/data/");
  EXPECT_EQ(Slurp(base / "j" / "output" / "model" / "weights.bin"), "the model");
  EXPECT_EQ(Slurp(base / "j" / "output" / "model" / "tokenizer" / "vocab.txt"), "a b c");
  EXPECT_EQ(Slurp(base / "j" / "output" / "data" / "eval.json"), "{}");
  EXPECT_FALSE(fs::exists(base / "j" / "output" / "model" / "stale-from-attempt-1.bin"));
  EXPECT_FALSE(fs::exists(fs::symlink_status(base / "j" / "output" / "model" / "link"))) << "links are not followed";
  EXPECT_FALSE(fs::is_symlink(base / "j" / "output" / "model" / "latest.bin"));
  EXPECT_EQ(Slurp(base / "j" / "output" / "model" / "latest.bin"), "the model") << "the link's file";
  EXPECT_EQ(up->note, "model: left out 2 link(s): link -> /etc/passwd (absolute), tokenizer/up -> ../../outside "
                      "(outside the directory)");
  EXPECT_EQ(Sh("ls -A " + (base / "j" / "output").string()), "data\nmodel\n") << "no archive";
  // The hosts of a multi-host job merge their files there (SageMaker aggregates every host's
  // /opt/ml/model): nothing is deleted.
  Put(base / "j" / "output" / "model" / "from-algo-2.bin", "algo-2's");
  none.replace = false;
  ASSERT_TRUE(UploadArtifacts(none, [] { return Result<const S3Client*>(Status::Internal("unused")); }).ok());
  EXPECT_EQ(Slurp(base / "j" / "output" / "model" / "from-algo-2.bin"), "algo-2's");
  EXPECT_EQ(Slurp(base / "j" / "output" / "model" / "weights.bin"), "the model");
  none.replace = true;
  // An empty model is an empty prefix (a directory here), which still exists.
  fs::remove_all(root / "model");
  ASSERT_TRUE(UploadArtifacts(none, [] { return Result<const S3Client*>(Status::Internal("unused")); }).ok());
  EXPECT_TRUE(fs::is_directory(base / "j" / "output" / "model"));
  EXPECT_TRUE(fs::is_empty(base / "j" / "output" / "model"));
  // And the intermediate output's destination.
  EXPECT_EQ(IntermediateUri(none), "file://" + base.string() + "/j/output/intermediate");
}

// ---- S3 signing and configuration ------------------------------------------------------------

// The examples of the S3 documentation ("Signature Calculations for the Authorization Header"):
// access key AKIAIOSFODNN7EXAMPLE, 24 May 2013, us-east-1, bucket examplebucket.
SigV4Request DocRequest() {
  SigV4Request r;
  r.method = "GET";
  r.headers = {{"Host", "examplebucket.s3.amazonaws.com"},
               {"x-amz-date", "20130524T000000Z"},
               {"x-amz-content-sha256", Sha256Hex("")}};
  r.payload_sha256 = Sha256Hex("");
  return r;
}
constexpr const char* kDocSecret = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY";

TEST(S3Sign, MatchesTheGetObjectExampleOfTheS3Documentation) {
  SigV4Request r = DocRequest();
  r.path = "/test.txt";
  r.headers["Range"] = "bytes=0-9";
  EXPECT_EQ(SignV4(r, "AKIAIOSFODNN7EXAMPLE", kDocSecret, "us-east-1", "s3"),
            "AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/20130524/us-east-1/s3/aws4_request, "
            "SignedHeaders=host;range;x-amz-content-sha256;x-amz-date, "
            "Signature=f0e8bdb87c964420e857bd35b5d6ed310bd44f0170aba48dd91039c6036bdb41");
}

TEST(S3Sign, MatchesTheListObjectsExampleOfTheS3Documentation) {
  SigV4Request r = DocRequest();
  r.path = "/";
  r.query = {{"max-keys", "2"}, {"prefix", "J"}};
  EXPECT_EQ(SignV4(r, "AKIAIOSFODNN7EXAMPLE", kDocSecret, "us-east-1", "s3"),
            "AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/20130524/us-east-1/s3/aws4_request, "
            "SignedHeaders=host;x-amz-content-sha256;x-amz-date, "
            "Signature=34b48302e7b5fa45bde8084f4b7868a86f0a534bc59db6670ed5711ef69dc6f7");
}

TEST(S3Sign, UriEncodingKeepsUnreservedCharactersAndOptionallySlashes) {
  EXPECT_EQ(UriEncode("a b/c~d_e.f-g+h=", true), "a%20b/c~d_e.f-g%2Bh%3D");
  EXPECT_EQ(UriEncode("a/b", false), "a%2Fb");
  EXPECT_EQ(UriEncode("\xc3\xa9", false), "%C3%A9");
}

TEST(S3Config, ReadsTheEnvironmentThenTheSharedCredentialsFile) {
  for (const char* v : {"AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_ENDPOINT_URL",
                        "AWS_ENDPOINT_URL_S3", "AWS_REGION", "AWS_DEFAULT_REGION", "AWS_PROFILE"}) {
    ::unsetenv(v);
  }
  fs::path file = fs::temp_directory_path() / ("hpo-creds-" + std::to_string(::getpid()));
  std::ofstream(file) << "[default]\naws_access_key_id = AKDEFAULT\naws_secret_access_key=SDEFAULT\n"
                         "[ci]\naws_access_key_id=AKCI\naws_secret_access_key = SCI\naws_session_token = TOK\n";
  ::setenv("AWS_SHARED_CREDENTIALS_FILE", file.c_str(), 1);
  auto c = S3Config::FromEnvironment();
  ASSERT_TRUE(c.ok()) << c.status().ToString();
  EXPECT_EQ(c->access_key, "AKDEFAULT");
  EXPECT_EQ(c->endpoint, "https://s3.us-east-1.amazonaws.com");
  ::setenv("AWS_PROFILE", "ci", 1);
  ::setenv("AWS_REGION", "eu-west-1", 1);
  ::setenv("AWS_ENDPOINT_URL", "http://127.0.0.1:9/", 1);
  c = S3Config::FromEnvironment();
  ASSERT_TRUE(c.ok());
  EXPECT_EQ(c->access_key, "AKCI");
  EXPECT_EQ(c->session_token, "TOK");
  EXPECT_EQ(c->region, "eu-west-1");
  EXPECT_EQ(c->endpoint, "http://127.0.0.1:9");
  ::setenv("AWS_ENDPOINT_URL_S3", "http://s3.local:7480", 1);
  EXPECT_EQ(S3Config::FromEnvironment()->endpoint, "http://s3.local:7480");
  EXPECT_EQ(S3Config::FromEnvironment("http://flag:1")->endpoint, "http://flag:1");
  ::setenv("AWS_ACCESS_KEY_ID", "AKENV", 1);
  ::setenv("AWS_SECRET_ACCESS_KEY", "SENV", 1);
  EXPECT_EQ(S3Config::FromEnvironment()->access_key, "AKENV");
  ::unsetenv("AWS_ACCESS_KEY_ID");
  ::unsetenv("AWS_SECRET_ACCESS_KEY");
  ::setenv("AWS_PROFILE", "nobody", 1);
  auto none = S3Config::FromEnvironment();
  ASSERT_FALSE(none.ok());
  EXPECT_NE(none.status().message().find("[nobody] profile of " + file.string()), std::string::npos);
  EXPECT_FALSE(S3Config::FromEnvironment("ftp://x").ok());
  fs::remove(file);
  for (const char* v : {"AWS_SHARED_CREDENTIALS_FILE", "AWS_PROFILE", "AWS_REGION", "AWS_ENDPOINT_URL",
                        "AWS_ENDPOINT_URL_S3"}) {
    ::unsetenv(v);
  }
}

TEST(S3Client, AnUnreachableEndpointIsUnavailableAfterItsRetries) {
  S3Config c;
  c.endpoint = "http://127.0.0.1:9";  // discard port: nothing listens
  c.access_key = "a";
  c.secret_key = "b";
  c.max_attempts = 2;
  c.backoff = std::chrono::milliseconds(1);
  auto client = S3Client::Create(c);
  ASSERT_TRUE(client.ok());
  auto got = (*client)->Get("bucket", "key");
  ASSERT_FALSE(got.ok());
  EXPECT_EQ(got.status().code(), StatusCode::kUnavailable);
  EXPECT_NE(got.status().message().find("S3 GET s3://bucket/key: cannot reach the S3 endpoint http://127.0.0.1:9"),
            std::string::npos)
      << got.status().message();
  EXPECT_NE(got.status().message().find("gave up after 2 tries"), std::string::npos);
  c.part_size = 1 << 20;
  EXPECT_FALSE(S3Client::Create(c).ok());
}

TEST(S3Client, ParsesS3Uris) {
  auto u = ParseS3Uri("s3://bucket/a/b/");
  ASSERT_TRUE(u.ok());
  EXPECT_EQ(u->bucket, "bucket");
  EXPECT_EQ(u->key, "a/b/");
  EXPECT_EQ(ParseS3Uri("s3://bucket")->key, "");
  EXPECT_FALSE(ParseS3Uri("s3:///key").ok());
  EXPECT_FALSE(ParseS3Uri("https://bucket/key").ok());
}

}  // namespace
}  // namespace hpo::worker
