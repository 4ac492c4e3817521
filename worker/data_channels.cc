#include "worker/data_channels.h"

#include "common/file_util.h"
#include "common/object_store.h"
#include "common/text.h"

#include <sys/stat.h>

#include <algorithm>
#include <cerrno>
#include <atomic>
#include <filesystem>
#include <fstream>
#include <functional>
#include <map>
#include <mutex>
#include <optional>
#include <random>
#include <sstream>
#include <thread>

#include <nlohmann/json.hpp>

namespace hpo::worker {

namespace fs = std::filesystem;
using Json = nlohmann::ordered_json;

// A manifest's JSON is walked and printed recursively; real ones nest two or three levels.
constexpr size_t kMaxManifestDepth = 256;

namespace {

// What went wrong copying to `dest`. A full filesystem can surface as EIO (copy_file's sendfile
// path), which sends people looking for a failing disk: when the destination has next to no
// space left, it is said so, naming that filesystem.
std::string CopyError(const std::error_code& ec, const fs::path& dest) {
  if (ec.value() == ENOSPC || ec.value() == EDQUOT || ec.value() == EIO) {
    std::error_code sec;
    const fs::space_info space = fs::space(dest.parent_path(), sec);
    if (!sec && space.available < (1u << 20)) {
      return "No space left on device: the work directory's filesystem (" + dest.parent_path().string() + ") has " +
             std::to_string(space.available >> 10) + " KiB free; give the worker more room or a smaller channel";
    }
  }
  return ec.message();
}

// One object of a source: where to fetch it and where it lands.
struct Item {
  std::string rel;     // relative name in the channel directory
  bool s3 = false;
  std::string bucket;  // s3 only
  std::string where;   // the key (s3) or the local path
  uint64_t size = 0;
  std::string etag{};  // s3 objects of a listing: the version, for the channel cache
};

struct Fail {
  std::string channel;
  Status operator()(const Status& s) const {
    return Status(s.code(), "channel " + channel + ": " + s.message());
  }
};

std::string LocalPath(const std::string& uri) { return uri.rfind("file://", 0) == 0 ? uri.substr(7) : uri; }

bool IsS3(const std::string& uri) { return uri.rfind("s3://", 0) == 0; }

// Every object of an S3Prefix source, with the name it gets in the channel directory.
//
// s3:// URIs: a key name prefix, as SageMaker matches it (S3DataSource.S3Uri: "SageMaker uses
// all objects that match the specified key name prefix"), so s3://b/data/shard- takes
// data/shard-0 and data/shard-1, and s3://b/train takes train/... and train-extra/.... An object
// lands at its key after the last '/' that comes at or before the end of the prefix: keys that
// continue the prefix with '/' lose the prefix and that '/' (s3://b/p/train -> p/train/a.csv
// lands as a.csv, what the SageMaker SDK's upload_data + fit pattern relies on), keys that
// continue it inside a name keep that name whole (s3://b/data/train -> data/train-x.csv lands as
// train-x.csv, as remote SageMaker jobs name it; sagemaker-python-sdk issue #3612 shows remote
// jobs keeping "train-data.csv" where local mode wrote "-data.csv"). Two objects that would land
// at the same name are an error.
//
// file:// and local paths: a directory (or a single file), not a raw prefix: "data/ASHA-1" takes
// the file "data/ASHA-1" itself and everything under "data/ASHA-1/", never "data/ASHA-10/...",
// and files land at their path relative to it.
Result<std::vector<Item>> ListUri(const std::string& uri, const StagingContext& ctx) {
  auto loc = OpenObjectLocation(uri, ctx.s3);
  if (!loc.ok()) return Status::InvalidArgument("the data source " + loc.status().message());
  const std::string& prefix = loc->prefix;
  auto objects = loc->store->List(prefix);
  if (!objects.ok() && !loc->s3()) {
    // A file where a directory of a local path should be is the job's mistake, not this worker's:
    // as an infrastructure error it was retried on every worker, which rested (a regression pass).
    // (Above the path itself: a channel may be one file.)
    const std::string local = loc->store->LocalPath(prefix);
    HPO_RETURN_IF_ERROR(NoFileInTheWay(fs::path(local).parent_path().string()));
  }
  if (!objects.ok()) return objects.status();
  const std::string dir = prefix.empty() || prefix.back() == '/' ? prefix : prefix + "/";
  std::vector<Item> out;
  std::map<std::string, std::string> landed;  // s3: relative name -> the key that lands there
  for (const auto& o : *objects) {
    Item it;
    it.s3 = loc->s3();
    it.bucket = loc->bucket;
    it.where = it.s3 ? o.key : loc->store->LocalPath(o.key);
    it.size = o.size;
    it.etag = o.etag;
    if (it.s3) {
      if (o.key.compare(0, prefix.size(), prefix) != 0) continue;
      const std::size_t slash = o.key.rfind('/', prefix.size());
      it.rel = slash == std::string::npos ? o.key : o.key.substr(slash + 1);
      if (it.rel.empty() || it.rel.back() == '/') continue;  // a "directory" marker object
      auto [at, fresh] = landed.emplace(it.rel, o.key);
      if (!fresh) {
        // With a prefix that ends in '/' already, the keys differ in what no file name can hold
        // (an empty segment, "p//a.csv" beside "p/a.csv"): the advice to add a '/' was no help.
        return Status::InvalidArgument(
            "the objects " + at->second + " and " + o.key + " of s3://" + loc->bucket +
            " both match the key name prefix of " + uri + " and would land at " + it.rel +
            (prefix.empty() || prefix.back() != '/'
                 ? "; end the S3Uri with '/' to take only what is under that prefix as a directory"
                 : "; rename one of them (a channel's files are named by their keys after the prefix)"));
      }
    } else if (!prefix.empty() && o.key == prefix) {
      it.rel = fs::path(prefix).filename().string();
    } else if (o.key.rfind(dir, 0) == 0 && o.key.size() > dir.size()) {
      it.rel = o.key.substr(dir.size());
    } else {
      continue;  // "ASHA-10/..." under the local directory "ASHA-1"
    }
    out.push_back(std::move(it));
  }
  if (out.empty()) {
    // (The listing leaves out folder marker objects, the console's "Create folder": "no object"
    // read as wrong where one was there.)
    return Status::NotFound(loc->s3() ? "no object's key starts with the key name prefix of " + uri +
                                            " (folder marker objects, keys ending in '/', hold no data and do not count)"
                                      : "no file under " + uri);
  }
  return out;
}

// The bytes of one object (a manifest).
Result<std::string> ReadUri(const std::string& uri, const StagingContext& ctx) {
  auto loc = OpenObjectLocation(uri, ctx.s3);
  if (!loc.ok()) return Status::InvalidArgument("the data source " + loc.status().message());
  return loc->store->Get(loc->prefix);
}

Result<std::vector<Item>> ManifestItems(const std::string& uri, const StagingContext& ctx) {
  auto text = ReadUri(uri, ctx);
  if (!text.ok()) return text.status();
  if (JsonNestingDepth(*text) > kMaxManifestDepth) {
    return Status::InvalidArgument("the manifest " + uri + " nests more than " + std::to_string(kMaxManifestDepth) +
                                   " levels of JSON arrays and objects");
  }
  Json j = Json::parse(*text, nullptr, false);
  if (j.is_discarded() || !j.is_array() || j.empty() || !j[0].is_object() || !j[0].contains("prefix") ||
      !j[0]["prefix"].is_string()) {
    return Status::InvalidArgument("the manifest " + uri +
                                   " is not a JSON array starting with {\"prefix\": \"s3://bucket/prefix/\"}");
  }
  std::string prefix = j[0]["prefix"].get<std::string>();
  std::vector<Item> out;
  for (std::size_t i = 1; i < j.size(); ++i) {
    if (!j[i].is_string()) {
      return Status::InvalidArgument("the manifest " + uri + ": entry " + std::to_string(i) + " is not a string");
    }
    std::string rel = j[i].get<std::string>();
    Item it;
    it.rel = rel;
    if (IsS3(prefix)) {
      auto parsed = ParseS3Uri(prefix);
      if (!parsed.ok()) return parsed.status();
      it.s3 = true;
      it.bucket = parsed->bucket;
      it.where = parsed->key + rel;
    } else {
      std::string dir = LocalPath(prefix);
      it.where = dir + (dir.empty() || dir.back() == '/' ? "" : "/") + rel;
    }
    out.push_back(std::move(it));
  }
  return out;
}

// Fisher-Yates with a fixed generator: the same seed gives the same order everywhere (objects,
// and an augmented manifest's lines).
template <typename T>
void Shuffle(std::vector<T>* items, int64_t seed) {
  std::mt19937_64 rng(static_cast<uint64_t>(seed));
  for (std::size_t i = items->size(); i > 1; --i) {
    std::size_t j = static_cast<std::size_t>(rng() % i);
    std::swap((*items)[i - 1], (*items)[j]);
  }
}

// With ShardedByS3Key, the current host's share of `all` (the i-th of every n, n hosts in name
// order; after any shuffle, as SageMaker shards the shuffled list); FullyReplicated keeps them all.
template <typename T>
Status KeepShard(const ChannelSource& src, const StagingContext& ctx, std::vector<T>* all) {
  const std::string dist = src.distribution.empty() ? "FullyReplicated" : src.distribution;
  if (dist == "FullyReplicated") return Status::Ok();
  if (dist != "ShardedByS3Key") {
    return Status::InvalidArgument("S3DataDistributionType \"" + dist + "\" is not FullyReplicated or ShardedByS3Key");
  }
  std::vector<std::string> hosts = src.hosts.empty() ? ctx.hosts : src.hosts;
  std::sort(hosts.begin(), hosts.end());
  hosts.erase(std::unique(hosts.begin(), hosts.end()), hosts.end());
  auto pos = std::find(hosts.begin(), hosts.end(), ctx.current_host);
  if (pos == hosts.end()) {
    return Status::InvalidArgument("the current host " + ctx.current_host + " is not among the " +
                                   (src.hosts.empty() ? "trial's hosts" : "hosts of the channel's instance groups"));
  }
  const std::size_t me = static_cast<std::size_t>(pos - hosts.begin());
  std::vector<T> mine;
  for (std::size_t i = 0; i < all->size(); ++i) {
    if (i % hosts.size() == me) mine.push_back(std::move((*all)[i]));
  }
  *all = std::move(mine);
  return Status::Ok();
}

Result<std::vector<Item>> Plan(const ChannelSource& src, const StagingContext& ctx) {
  const std::string type = src.s3_data_type.empty() ? "S3Prefix" : src.s3_data_type;
  std::vector<Item> items;
  if (type == "S3Prefix") {
    auto listed = ListUri(src.uri, ctx);
    if (!listed.ok()) return listed.status();
    items = std::move(listed).value();
  } else if (type == "ManifestFile") {
    auto listed = ManifestItems(src.uri, ctx);
    if (!listed.ok()) return listed.status();
    items = std::move(listed).value();
  } else {
    return Status::InvalidArgument("S3DataType \"" + type + "\" is not S3Prefix, ManifestFile or AugmentedManifestFile");
  }
  const auto uri_of = [](const Item& it) { return it.s3 ? "s3://" + it.bucket + "/" + it.where : it.where; };
  std::map<std::string, const Item*> by_name;
  for (const auto& it : items) {
    // A ClientError naming the object: it is the data set's, and a retry (or another worker)
    // meets it again. (A name over 255 bytes was an IoError from the file system: an
    // infrastructure error, retried at once on every worker until they were all resting.)
    const std::string why = RelativePathProblem(it.rel);
    if (!why.empty()) {
      return Status::InvalidArgument("the object " + uri_of(it) + " (\"" + it.rel + "\")" +
                                     " cannot be a file in the channel directory: its name " + why +
                                     ". Rename it, or leave it out of the channel (a ManifestFile lists the objects "
                                     "to use)");
    }
    by_name.emplace(it.rel, &it);
  }
  // A name that one object needs as a file and another as its directory (keys p/a and p/a/b) is
  // the data set's error too, named so: staging met it as "Is a directory" or "File exists" (the
  // order varied), an infrastructure error that spent the retries and rested every worker. Not in
  // Pipe mode, which streams the objects and makes no file of their names.
  for (auto at = by_name.begin(); src.input_mode != "Pipe" && at != by_name.end(); ++at) {
    const std::string& name = at->first;
    auto under = by_name.lower_bound(name + "/");
    if (under == by_name.end() || under->first.compare(0, name.size() + 1, name + "/") != 0) continue;
    return Status::InvalidArgument("the objects " + uri_of(*at->second) + " and " + uri_of(*under->second) +
                                   " cannot both be in the channel directory: " + name +
                                   " would be a file and also the directory that holds " + under->first +
                                   ". Rename or remove one of them, or point the channel at a prefix that holds only "
                                   "one (a channel's files are named by their keys after the prefix)");
  }
  if (src.shuffle_seed) Shuffle(&items, *src.shuffle_seed);
  HPO_RETURN_IF_ERROR(KeepShard(src, ctx, &items));
  return items;
}

// `link`: a cached object may be hard-linked (the channel is read-only to the program).
Status Fetch(const Item& it, const fs::path& dest, const StagingContext& ctx, bool link, StagedChannel* staged) {
  std::error_code ec;
  fs::create_directories(dest.parent_path(), ec);
  if (ec) return Status::IoError("cannot create " + dest.parent_path().string() + ": " + ec.message());
  if (it.s3) {
    auto s3 = ctx.s3();
    if (!s3.ok()) return s3.status();
    const S3Client* client = *s3;
    if (ctx.cache == nullptr || it.etag.empty()) return client->GetToFile(it.bucket, it.where, dest.string());
    auto placed = ctx.cache->Place(
        {client->config().endpoint, it.bucket, it.where, it.etag, it.size}, dest.string(),
        link ? Materialize::kHardLink : Materialize::kCopy,
        [&](const std::string& path, std::string* etag) { return client->GetToFile(it.bucket, it.where, path, etag); });
    if (!placed.ok()) return placed.status();
    if (placed->hit) {
      ++staged->cached_objects;
      staged->cached_bytes += placed->bytes;
    }
    return Status::Ok();
  }
  if (!fs::is_regular_file(it.where, ec)) return Status::NotFound(it.where + " does not exist or is not a file");
  fs::copy_file(it.where, dest, fs::copy_options::overwrite_existing, ec);
  if (ec) return Status::IoError("cannot copy " + it.where + " to " + dest.string() + ": " + CopyError(ec, dest));
  return Status::Ok();
}

// Each non-blank line of an augmented manifest, reduced to attribute_names in that order.
Status ForEachAugmentedLine(const ChannelSource& src, const StagingContext& ctx,
                            const std::function<Status(const Json&)>& each) {
  if (src.attribute_names.empty()) {
    return Status::InvalidArgument("AugmentedManifestFile needs AttributeNames");
  }
  auto text = ReadUri(src.uri, ctx);
  if (!text.ok()) return text.status();
  std::istringstream in(*text);
  std::string line;
  std::size_t n = 0;
  while (std::getline(in, line)) {
    ++n;
    if (line.find_first_not_of(" \t\r") == std::string::npos) continue;
    if (JsonNestingDepth(line) > kMaxManifestDepth) {
      return Status::InvalidArgument("the augmented manifest " + src.uri + ": line " + std::to_string(n) +
                                     " nests more than " + std::to_string(kMaxManifestDepth) +
                                     " levels of JSON arrays and objects");
    }
    Json j = Json::parse(line, nullptr, false);
    if (j.is_discarded() || !j.is_object()) {
      return Status::InvalidArgument("the augmented manifest " + src.uri + ": line " + std::to_string(n) +
                                     " is not a JSON object");
    }
    Json reduced = Json::object();
    for (const auto& a : src.attribute_names) {
      if (!j.contains(a)) {
        return Status::InvalidArgument("the augmented manifest " + src.uri + ": line " + std::to_string(n) +
                                       " has no attribute \"" + a + "\"");
      }
      reduced[a] = j[a];
    }
    HPO_RETURN_IF_ERROR(each(reduced));
  }
  return Status::Ok();
}

Result<StagedChannel> StageAugmented(const ChannelSource& src, const StagingContext& ctx) {
  std::string out;
  HPO_RETURN_IF_ERROR(ForEachAugmentedLine(src, ctx, [&out](const Json& reduced) {
    out += reduced.dump() + "\n";
    return Status::Ok();
  }));
  std::string base = IsS3(src.uri) ? src.uri.substr(src.uri.rfind('/') + 1) : fs::path(LocalPath(src.uri)).filename().string();
  if (base.empty()) base = "manifest";
  fs::path dest = fs::path(ctx.channel_dir) / base;
  std::ofstream f(dest, std::ios::binary | std::ios::trunc);
  f << out;
  if (!f.flush()) return Status::IoError("cannot write " + dest.string());
  StagedChannel staged;
  staged.bytes = out.size();
  staged.objects = 1;
  return staged;
}

// Pipe mode (see the header): plans the feed; downloads s3:// objects into the spool directory.
// Fetches every item of `plan` for which `dest` gives a destination, ctx.parallel_fetches at a
// time (the calling thread and the others take the next item until all are done or one failed;
// the first error stops the others from starting more). Each fetch's cache hits are added to
// *staged, and `done` (when set) runs with the destination, both under a lock.
Status FetchAll(const std::vector<Item>& plan, const StagingContext& ctx, bool link,
                const std::function<std::optional<fs::path>(std::size_t)>& dest, StagedChannel* staged,
                const std::function<void(const fs::path&)>& done = nullptr) {
  std::atomic<std::size_t> next{0};
  std::mutex mu;
  Status first = Status::Ok();
  auto work = [&] {
    for (std::size_t i = next++; i < plan.size(); i = next++) {
      {
        std::lock_guard<std::mutex> lock(mu);
        if (first.ok() && ctx.cancel && ctx.cancel->load()) first = Status::Unavailable("staging cancelled");
        if (!first.ok()) return;
      }
      const std::optional<fs::path> to = dest(i);
      if (!to) continue;
      StagedChannel one;
      Status s = Fetch(plan[i], *to, ctx, link, &one);
      std::lock_guard<std::mutex> lock(mu);
      if (!s.ok()) {
        if (first.ok()) first = s;
        return;
      }
      staged->cached_objects += one.cached_objects;
      staged->cached_bytes += one.cached_bytes;
      if (done) done(*to);
    }
  };
  const std::size_t threads = std::min<std::size_t>(plan.size(), static_cast<std::size_t>(std::max(1, ctx.parallel_fetches)));
  std::vector<std::thread> pool;
  for (std::size_t t = 1; t < threads; ++t) pool.emplace_back(work);
  work();
  for (auto& t : pool) t.join();
  return first;
}

Result<StagedChannel> StagePipe(const ChannelSource& src, const StagingContext& ctx) {
  const std::string record_wrapper = src.record_wrapper.empty() ? "None" : src.record_wrapper;
  if (record_wrapper != "None" && record_wrapper != "RecordIO") {
    return Status::InvalidArgument("RecordWrapperType \"" + record_wrapper + "\" is not None or RecordIO");
  }
  StagedChannel staged;
  PipeFeed feed;
  feed.channel = src.name;
  feed.data_dir = fs::path(ctx.channel_dir).parent_path().string();
  feed.gzip = src.compression == "Gzip";
  feed.record_io = record_wrapper == "RecordIO";
  std::error_code ec;
  auto spool = [&]() -> Status {
    if (ctx.spool_dir.empty()) return Status::Internal("Pipe mode needs a spool directory and has none");
    fs::remove_all(ctx.spool_dir, ec);
    fs::create_directories(ctx.spool_dir, ec);
    if (ec) return Status::IoError("cannot create " + ctx.spool_dir + ": " + ec.message());
    return Status::Ok();
  };
  if (src.directory_path.empty() && src.s3_data_type == "AugmentedManifestFile") {
    if (feed.gzip) {
      return Status::InvalidArgument("CompressionType Gzip is not supported with AugmentedManifestFile (its lines are "
                                     "fed, not compressed objects); use None");
    }
    HPO_RETURN_IF_ERROR(spool());
    const fs::path dest = fs::path(ctx.spool_dir) / "augmented-manifest";
    std::ofstream out(dest, std::ios::binary | std::ios::trunc);
    // One line's records, written out. An attribute whose name ends in "-ref" (Ground Truth's
    // source-ref) names an object: its record is the object's bytes (an image), as SageMaker
    // streams it, not its URI; read one at a time, so that only one is in memory.
    auto write = [&](const Json& reduced) -> Status {
      if (ctx.cancel && ctx.cancel->load()) return Status::Unavailable("staging cancelled");
      if (!feed.record_io) {
        out << reduced.dump() << '\n';
        return Status::Ok();
      }
      for (const auto& [name, value] : reduced.items()) {  // one record per attribute, in order
        std::string payload;
        if (name.size() > 4 && name.compare(name.size() - 4, 4, "-ref") == 0 && value.is_string()) {
          auto object = ReadUri(value.get<std::string>(), ctx);
          if (!object.ok()) {
            return Status(object.status().code(), "the augmented manifest " + src.uri + ": \"" + name + "\" " +
                                                      value.get<std::string>() + ": " + object.status().message());
          }
          payload = std::move(object).value();
        } else {
          payload = value.is_string() ? value.get<std::string>() : value.dump();
        }
        if (payload.size() > kRecordIOMaxLength) {
          return Status::InvalidArgument("the augmented manifest " + src.uri + ": the value of \"" + name +
                                         "\" is too long for a RecordIO record");
        }
        static constexpr char kZeros[4] = {0, 0, 0, 0};
        out << RecordIOHeader(static_cast<uint32_t>(payload.size())) << payload;
        out.write(kZeros, static_cast<std::streamsize>(RecordIOPadding(payload.size())));
      }
      return Status::Ok();
    };
    // With ShuffleConfig the lines are shuffled ("the order of the JSON lines ... is shuffled"):
    // their reduced JSON is gathered and shuffled first (not the objects they name); the whole
    // feed is one object, in the same order every epoch. With ShardedByS3Key each host is fed its
    // share of the lines (after the shuffle), as of a prefix's objects (every host got them all).
    const bool sharded = src.distribution == "ShardedByS3Key";
    std::vector<Json> lines;
    HPO_RETURN_IF_ERROR(ForEachAugmentedLine(src, ctx, [&](const Json& reduced) {
      if (!src.shuffle_seed && !sharded) return write(reduced);
      lines.push_back(reduced);
      return Status::Ok();
    }));
    if (src.shuffle_seed || sharded) {
      if (src.shuffle_seed) Shuffle(&lines, *src.shuffle_seed);
      HPO_RETURN_IF_ERROR(KeepShard(src, ctx, &lines));
      for (const auto& line : lines) HPO_RETURN_IF_ERROR(write(line));
    }
    if (!out.flush()) return Status::IoError("cannot write " + dest.string());
    out.close();
    feed.record_io = false;  // framed already
    feed.objects.push_back({dest.string(), src.uri});
    staged.bytes = fs::file_size(dest, ec);
    staged.objects = 1;
    staged.pipe = std::move(feed);
    return staged;
  }
  ChannelSource listed = src;
  if (!src.directory_path.empty()) {  // fileSystemDataSource: its files, in key order
    listed.uri = src.directory_path;
    listed.s3_data_type.clear();
    listed.distribution.clear();
  }
  auto plan = Plan(listed, ctx);
  if (!plan.ok()) return plan.status();
  // s3:// objects are spooled (several at once), local ones fed in place; the feed keeps the
  // plan's order either way.
  if (std::any_of(plan->begin(), plan->end(), [](const Item& it) { return it.s3; })) HPO_RETURN_IF_ERROR(spool());
  for (const Item& it : *plan) {
    if (!it.s3 && !fs::is_regular_file(it.where, ec)) return Status::NotFound(it.where + " does not exist or is not a file");
  }
  HPO_RETURN_IF_ERROR(FetchAll(
      *plan, ctx, /*link=*/false,  // through the cache: a copy
      [&](std::size_t i) {
        return (*plan)[i].s3 ? std::optional<fs::path>(fs::path(ctx.spool_dir) / std::to_string(i)) : std::nullopt;
      },
      &staged));
  for (std::size_t i = 0; i < plan->size(); ++i) {
    const Item& it = (*plan)[i];
    const std::string path = it.s3 ? (fs::path(ctx.spool_dir) / std::to_string(i)).string() : it.where;
    feed.objects.push_back({path, it.s3 ? "s3://" + it.bucket + "/" + it.where : it.where});
    staged.bytes += fs::file_size(path, ec);
  }
  staged.objects = feed.objects.size();
  feed.shuffle_seed = src.shuffle_seed;  // a new order each later epoch, as SageMaker's Pipe mode
  staged.pipe = std::move(feed);
  return staged;
}

// Read-only where it can be enforced: a read-only bind mount of the channel on itself.
void MakeReadOnly(const StagingContext& ctx, StagedChannel* staged) {
  if (ctx.mount_namespace) staged->mounts.push_back({ctx.channel_dir, ctx.visible_dir, true});
}

}  // namespace

Result<std::vector<std::string>> PlanObjects(const ChannelSource& source, const StagingContext& context) {
  auto plan = Plan(source, context);
  if (!plan.ok()) return Fail{source.name}(plan.status());
  std::vector<std::string> out;
  for (const auto& it : *plan) out.push_back(it.rel);
  return out;
}

Result<StagedChannel> StageChannel(const ChannelSource& src, const StagingContext& ctx) {
  const Fail fail{src.name};
  const std::string mode = src.input_mode.empty() ? "File" : src.input_mode;
  if (mode != "File" && mode != "FastFile" && mode != "Pipe") {
    return fail(Status::InvalidArgument("input mode \"" + mode + "\" is not File, FastFile or Pipe"));
  }
  const std::string compression = src.compression.empty() ? "None" : src.compression;
  if (compression != "None" && compression != "Gzip") {
    return fail(Status::InvalidArgument("CompressionType \"" + compression + "\" is not None or Gzip"));
  }
  if (compression == "Gzip" && mode != "Pipe") {
    return fail(Status::InvalidArgument("CompressionType Gzip applies to Pipe input mode only; this channel's input "
                                        "mode is " + mode + " (use None, or InputMode Pipe)"));
  }
  if (mode == "Pipe") {
    if (src.directory_path.empty() && src.uri.empty()) {
      return fail(Status::InvalidArgument("has neither an S3Uri nor a file system directory"));
    }
    auto piped = StagePipe(src, ctx);
    if (!piped.ok()) return fail(piped.status());
    return piped;
  }
  StagedChannel staged;
  if (!src.directory_path.empty()) {  // fileSystemDataSource
    const std::string access = src.access_mode.empty() ? "ro" : src.access_mode;
    if (access != "ro" && access != "rw") {
      return fail(Status::InvalidArgument("fileSystemAccessMode \"" + access + "\" is not ro or rw"));
    }
    std::error_code ec;
    if (!fs::is_directory(src.directory_path, ec)) {
      return fail(Status::NotFound("the file system directory " + src.directory_path + " does not exist"));
    }
    // Mounted, in File mode as in FastFile, as SageMaker mounts an EFS or FSx directory: nothing
    // is copied, and with "rw" what the program writes there stays on the file system.
    if (ctx.mount_namespace) {
      staged.mounts.push_back({src.directory_path, ctx.visible_dir, access == "ro"});
    } else {
      fs::remove_all(ctx.channel_dir, ec);
      fs::create_directory_symlink(src.directory_path, ctx.channel_dir, ec);
      if (ec) return fail(Status::IoError("cannot link " + ctx.channel_dir + " to " + src.directory_path + ": " + ec.message()));
      if (access == "ro") {
        staged.note = "fileSystemAccessMode ro cannot be enforced by a worker that is not root (no mount "
                      "namespace): the channel is a link to " + src.directory_path + ", and what the program "
                      "writes there changes it";
      }
    }
    return staged;
  }
  if (src.uri.empty()) return fail(Status::InvalidArgument("has neither an S3Uri nor a file system directory"));
  if (src.s3_data_type == "AugmentedManifestFile") {
    auto a = StageAugmented(src, ctx);
    if (!a.ok()) return fail(a.status());
    if (mode == "FastFile") MakeReadOnly(ctx, &*a);
    return a;
  }
  auto plan = Plan(src, ctx);
  if (!plan.ok()) return fail(plan.status());
  const bool link = mode == "FastFile" && ctx.mount_namespace;  // read-only even to root
  Status fetched = FetchAll(
      *plan, ctx, link, [&](std::size_t i) { return std::optional<fs::path>(fs::path(ctx.channel_dir) / (*plan)[i].rel); },
      &staged, [&](const fs::path& to) {
        std::error_code ec;
        staged.bytes += fs::file_size(to, ec);
        ++staged.objects;
      });
  if (!fetched.ok()) return fail(fetched);
  if (mode == "FastFile") MakeReadOnly(ctx, &staged);
  return staged;
}

}  // namespace hpo::worker
