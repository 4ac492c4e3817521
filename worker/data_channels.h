// worker/data_channels.h: staging a trial's input channels into input/data/<channel>.
//
// What it is: for one channel of one attempt, makes the data visible where SageMaker puts it
// (reference/sagemaker-semantics.md §4), before the training program starts.
//
// Sources:
//   - fileSystemDataSource (a directory on a shared filesystem: NFS, Lustre, ...):
//       File and FastFile alike (SageMaker mounts an EFS or FSx directory): the directory itself,
//         without copying: bind-mounted on the channel directory in the trial's private mount
//         namespace, read-only unless fileSystemAccessMode is "rw" (whose writes stay on the
//         file system). Without a mount namespace (worker not root) the channel directory becomes
//         a symlink to it, and read-only cannot be enforced (StagedChannel::note says so).
//   - s3DataSource, whose S3Uri is s3://bucket/prefix, file:///path or /path:
//       S3Prefix: an s3:// URI is a key name prefix, as SageMaker has it: every object whose key
//         starts with it ("s3://b/data/shard-" takes data/shard-0 and data/shard-1; "s3://b/train"
//         takes train/... and train-extra/...; end it with '/' to take a directory). An object
//         lands at its key after the last '/' at or before the end of the prefix: "train/a.csv"
//         under "s3://b/train" as a.csv, "train-extra/x.csv" as train-extra/x.csv, and
//         "data/shard-0" under "s3://b/data/shard-" as shard-0 (two objects landing at one name are
//         an InvalidArgument). A file:// URI or local path is a file or a directory tree, matched
//         as a directory: "data/ASHA-1" takes the file "data/ASHA-1" itself and everything under
//         "data/ASHA-1/", never "data/ASHA-10/...", each file at its path relative to it.
//       ManifestFile: the URI names a JSON manifest `[{"prefix": "s3://b/p/"}, "rel/a", ...]`;
//         each listed object lands at its relative name.
//       AugmentedManifestFile: the URI names a JSON Lines file; the channel gets that file (under
//         its own name) with each line reduced to `attribute_names`, in that order. A line that
//         lacks one is an error naming the line.
//     Order and sharding: objects are taken in key order (manifest order for manifests); with a
//     shuffle seed they are shuffled reproducibly (the same seed gives the same order on every
//     worker); ShardedByS3Key then gives object i to the host at position i mod N of the N sorted
//     hosts that receive the channel (ChannelSource::hosts, else every host of the trial), so
//     their shards are disjoint and together complete (an augmented manifest's lines likewise,
//     in Pipe mode); FullyReplicated gives every host everything.
//     Input modes: File downloads (copies) into the channel directory; FastFile does the same and
//     then makes the channel read-only (a read-only bind mount of the directory on itself where
//     a mount namespace is used). Pipe stages no file in the channel directory (it stays, empty)
//     but returns StagedChannel::pipe, the feed that worker/pipe_channel.h's PipeFeeder writes
//     into the FIFOs input/data/<name>_<epoch> once the program runs:
//       - S3Prefix / ManifestFile: the same objects in the same order as File mode (the listing,
//         shuffle and sharding above), one after the other. Local objects (file://, paths) are
//         read in place at every epoch; s3:// objects are downloaded once, now, into
//         `spool_dir` (the attempt's scratch area, outside what the program sees) and replayed
//         from there at every epoch, so an epoch never waits on S3 and memory stays bounded.
//       - AugmentedManifestFile: the reduced lines (as File mode writes them), one per line, or
//         with RecordWrapperType RecordIO one record per attribute value (in attribute order,
//         line after line; a string value's record is the raw string, any other value its
//         compact JSON text), written once into `spool_dir` and replayed.
//       - fileSystemDataSource: the directory's files in key order, read in place.
//     CompressionType Gzip (Pipe mode only, as SageMaker has it) makes the feeder gunzip every
//     object while feeding; RecordWrapperType RecordIO makes it wrap every object (decompressed)
//     in one RecordIO record. In File and FastFile mode RecordWrapperType changes nothing here
//     (it is only written to inputdataconfig.json).
//     Channel cache: with StagingContext.cache set, every s3:// object of an S3Prefix listing
//     (which names its ETag) goes through it (worker/channel_cache.h): a version staged before on
//     this worker is not downloaded again. It is hard-linked only into FastFile channels under a
//     read-only bind mount, and copied (reflinked where possible) everywhere else. Manifest
//     entries (no listing, so no ETag) and local sources are never cached.
//
// Errors (the trial then does not start): InvalidArgument for bad input (unknown data type,
// malformed manifest, a relative name that leaves the channel, an unknown input mode,
// CompressionType or RecordWrapperType, Gzip outside Pipe mode or with an augmented manifest
// ...), NotFound for a missing directory, file, bucket or key, what S3Client returns for S3
// failures, IoError for local files. Every message starts with "channel <name>: ".
//
// Thread safety: StageChannel may run for different channels and trials concurrently.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "common/status.h"
#include "worker/pipe_channel.h"
#include "worker/channel_cache.h"
#include "worker/process.h"
#include "common/s3_client.h"

namespace hpo::worker {

struct ChannelSource {
  std::string name;        // the channel name
  std::string input_mode;  // File | FastFile | Pipe (already resolved against the job's mode)
  // fileSystemDataSource (directory_path not empty) ...
  std::string directory_path;
  std::string access_mode;  // rw | ro; empty = ro
  // ... or s3DataSource
  std::string uri;                           // s3://, file:// or an absolute path
  std::string s3_data_type;                  // S3Prefix (= empty) | ManifestFile | AugmentedManifestFile
  std::string distribution;                  // FullyReplicated (= empty) | ShardedByS3Key
  std::vector<std::string> attribute_names;  // AugmentedManifestFile only
  // ShardedByS3Key: the hosts that receive this channel (those of the instance groups that
  // S3DataSource.InstanceGroupNames lists), among which the objects are split; empty = every
  // host of the trial (StagingContext::hosts).
  std::vector<std::string> hosts;
  std::optional<int64_t> shuffle_seed;
  std::string compression;     // CompressionType: None (= empty) | Gzip (Pipe mode only)
  std::string record_wrapper;  // RecordWrapperType: None (= empty) | RecordIO (acted on in Pipe mode)
};

struct StagingContext {
  std::string channel_dir;                   // <root>/input/data/<name> on the worker; exists
  std::string visible_dir;                   // the same as the program sees it (/opt/ml/...)
  bool mount_namespace = false;              // the trial runs in a private mount namespace
  std::vector<std::string> hosts;            // every host of the trial
  std::string current_host;
  // Pipe mode: the scratch directory for s3:// objects and augmented manifests (emptied and
  // created when needed; not visible to the program). Unused in the other modes.
  std::string spool_dir;
  // The S3 client, created on first use (so jobs without s3:// need no credentials).
  std::function<Result<const S3Client*>()> s3;
  ChannelCache* cache = nullptr;             // the worker's channel cache; nullptr = none
  // File and FastFile mode: objects fetched at once (each on its own thread; the first error
  // stops the others from starting more). Small objects are bound by round trips, not bandwidth.
  int parallel_fetches = 8;
  // Set when the training job is stopped while staging: no further object is fetched, and
  // StageChannel returns Unavailable "staging cancelled" (a fetch under way completes).
  std::shared_ptr<const std::atomic<bool>> cancel;
};

struct StagedChannel {
  std::vector<BindMount> mounts;  // to apply in the trial's mount namespace
  uint64_t bytes = 0;             // copied or downloaded; Pipe: the size of one epoch's objects
  std::size_t objects = 0;        // files copied or downloaded (0 for a bind mount); Pipe: objects to feed
  // Pipe mode: what to feed into <channel_dir>_<epoch> (data_dir is channel_dir's parent).
  std::optional<PipeFeed> pipe;
  std::size_t cached_objects = 0; // of `objects`, taken from the channel cache (no download)
  uint64_t cached_bytes = 0;      // of `bytes`, taken from the channel cache
  std::string note;               // for the worker's log: a limit of how it was staged, or ""
};

[[nodiscard]] Result<StagedChannel> StageChannel(const ChannelSource& source, const StagingContext& context);

// The objects of `uri` after shuffling and sharding, as relative names: what StageChannel would
// put on `context.current_host` for an S3Prefix source. Exposed for tests.
[[nodiscard]] Result<std::vector<std::string>> PlanObjects(const ChannelSource& source, const StagingContext& context);

}  // namespace hpo::worker
