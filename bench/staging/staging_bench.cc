// Staging throughput through the worker's own code (worker/data_channels.h StageChannel with
// worker/channel_cache.h), against the S3 endpoint of the environment (S3Config::FromEnvironment;
// bench/staging/run.sh starts radosgw and uploads the data sets).
//
//   staging_bench --uri s3://bucket/prefix --dir /tmp/x [--cache-mb 4096] [--repeat 1]
//
// Stages the channel several ways, each into a fresh directory (a new trial), and prints one
// markdown table row per way: objects, MiB, seconds, MB/s (10^6 bytes per second), GETs sent.
//   no cache          what a worker without the cache does for every trial: download
//   cold cache        the first trial on a worker with an empty cache: download into the cache,
//                     then copy (reflink where possible) into the channel
//   cached, File      a later trial: copy (reflink) from the cache, no GET
//   cached, FastFile  a later FastFile trial under a read-only mount: hard links, no GET
// With --repeat N each way runs N times and the median is printed.
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <string>
#include <vector>

#include "worker/channel_cache.h"
#include "worker/data_channels.h"
#include "common/s3_client.h"

namespace {

namespace fs = std::filesystem;
using hpo::worker::ChannelCache;
using hpo::worker::ChannelSource;
using hpo::S3Client;
using hpo::worker::StagingContext;

[[noreturn]] void Die(const std::string& why) {
  std::fprintf(stderr, "staging_bench: %s\n", why.c_str());
  std::exit(1);
}

struct Row {
  std::string way;
  size_t objects = 0;
  uint64_t bytes = 0;
  double seconds = 0;
  uint64_t gets = 0;
};

}  // namespace

int main(int argc, char** argv) {
  std::string uri, dir;
  int64_t cache_mb = 4096;
  int repeat = 1;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    auto next = [&]() -> std::string {
      if (i + 1 >= argc) Die(a + " needs a value");
      return argv[++i];
    };
    if (a == "--uri") uri = next();
    else if (a == "--dir") dir = next();
    else if (a == "--cache-mb") cache_mb = std::atoll(next().c_str());
    else if (a == "--repeat") repeat = std::max(1, std::atoi(next().c_str()));
    else Die("unknown argument " + a + " (see the header of bench/staging/staging_bench.cc)");
  }
  if (uri.empty() || dir.empty()) Die("--uri and --dir are required");
  auto cfg = hpo::S3Config::FromEnvironment();
  if (!cfg.ok()) Die(cfg.status().message());
  auto client = S3Client::Create(*cfg);
  if (!client.ok()) Die(client.status().message());
  const S3Client* s3 = client->get();
  fs::remove_all(dir);
  fs::create_directories(dir);

  int trial = 0;
  // Stages once into a new trial directory; `gets` = downloads counted by the cache (or the
  // objects, without a cache: each one is a GET).
  auto stage = [&](const std::string& mode, ChannelCache* cache, bool read_only_mount) -> Row {
    ChannelSource src;
    src.name = "train";
    src.input_mode = mode;
    src.uri = uri;
    StagingContext ctx;
    ctx.channel_dir = (fs::path(dir) / ("trial-" + std::to_string(++trial))).string();
    ctx.visible_dir = "/opt/ml/input/data/train";
    ctx.mount_namespace = read_only_mount;
    ctx.hosts = {"algo-1"};
    ctx.current_host = "algo-1";
    ctx.s3 = [s3]() -> hpo::Result<const S3Client*> { return s3; };
    ctx.cache = cache;
    fs::create_directories(ctx.channel_dir);
    const uint64_t before = cache ? cache->Stats().downloads : 0;
    auto t0 = std::chrono::steady_clock::now();
    auto staged = hpo::worker::StageChannel(src, ctx);
    const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    if (!staged.ok()) Die(staged.status().ToString());
    Row r;
    r.objects = staged->objects;
    r.bytes = staged->bytes;
    r.seconds = s;
    r.gets = cache ? cache->Stats().downloads - before : staged->objects;
    fs::remove_all(ctx.channel_dir);
    return r;
  };
  auto median = [&](const std::string& way, auto once) {
    std::vector<Row> rows;
    for (int i = 0; i < repeat; ++i) rows.push_back(once());
    std::sort(rows.begin(), rows.end(), [](const Row& a, const Row& b) { return a.seconds < b.seconds; });
    Row r = rows[rows.size() / 2];
    r.way = way;
    return r;
  };
  auto open_cache = [&](bool empty) {
    const std::string cdir = (fs::path(dir) / "cache").string();
    if (empty) fs::remove_all(cdir);
    auto c = ChannelCache::Open({cdir, static_cast<uint64_t>(cache_mb) << 20, nullptr});
    if (!c.ok()) Die(c.status().message());
    return std::move(c).value();
  };

  std::vector<Row> rows;
  rows.push_back(median("no cache (download)", [&] { return stage("File", nullptr, false); }));
  rows.push_back(median("cold cache (download + copy in)", [&] {
    auto cache = open_cache(true);
    return stage("File", cache.get(), false);
  }));
  auto cache = open_cache(false);
  rows.push_back(median("cached, File (copy/reflink)", [&] { return stage("File", cache.get(), false); }));
  rows.push_back(median("cached, FastFile (hard link)", [&] { return stage("FastFile", cache.get(), true); }));

  for (const auto& r : rows) {
    std::printf("| %s | %s | %zu | %.1f | %.3f | %.1f | %llu |\n", uri.c_str(), r.way.c_str(), r.objects,
                static_cast<double>(r.bytes) / (1 << 20), r.seconds, static_cast<double>(r.bytes) / 1e6 / r.seconds,
                static_cast<unsigned long long>(r.gets));
  }
  fs::remove_all(dir);
  return 0;
}
