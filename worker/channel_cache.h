// worker/channel_cache.h: a worker-local cache of S3 objects downloaded for data channels.
//
// What it is: hundreds of trials of a tuning job (and other jobs) stage the same dataset on the
// same worker; each staged object is downloaded once and kept under <work_dir>/cache/, and later
// stagings of the same object version take it from there (worker/data_channels.h calls Place for
// every s3:// object it stages).
//
// What is cached: whole S3 objects, one entry per object URI (endpoint, bucket, key), for the
// version ListObjectsV2 named: its ETag and size. An object whose ETag or size differs from the
// entry's is downloaded again and the old entry is dropped (an overwritten object always gets a
// new ETag in S3; LastModified is not part of the identity, so an object re-uploaded with the same
// bytes is not fetched again). Objects without an ETag are not cached. What GET returns is checked
// against the listing: when its ETag or size differ (the object was overwritten between the
// listing and the download), the trial gets what GET returned and nothing is cached.
//
// How a hit lands in the channel (`how`):
//   kHardLink: a hard link to the cached file, which is read-only (0444). Only for channels the
//     program cannot write through: FastFile channels under a read-only bind mount (a mount
//     namespace), where even root gets EROFS. Falls back to a copy when linking fails (another
//     filesystem, EMLINK).
//   kCopy: the trial's own copy (0644): a reflink (FICLONE, copy-on-write: instant on btrfs/XFS)
//     where the filesystem has them, else copy_file_range. File-mode channels are writable, and a
//     program running as root ignores 0444, so a hard link there would let a trial that writes in
//     place change the cache for every later trial; a copy cannot.
// Either way, a trial that deletes, renames or replaces its file never touches the cache.
//
// Size limit: `max_bytes` (the worker's --channel-cache-mb) counts the objects' sizes. Before a
// download, least-recently-used entries are evicted (whole objects) until the new one fits. An
// object larger than the limit, or one that cannot fit because the other entries are in use, is
// downloaded straight into the channel and not cached. Entries in use (being linked or copied
// by a staging, or being downloaded) are never evicted or removed mid-use; an entry dropped while
// in use (a newer version) is deleted when its last user is done. A hard link outlives its
// entry's eviction, so the disk space of an evicted entry is freed only once the trials that
// linked it are removed.
//
// Concurrency: Place may be called from many threads. Stagings of the same object wait for the
// one download in progress and then share its entry (the object is downloaded once); different
// objects download in parallel (the lock is not held across downloads, links or copies). A
// download that fails wakes the waiters, which then try themselves.
//
// Crash safety: a download goes to tmp/ and is renamed into objects/ only when complete (and
// checked against the expected size), so an entry is never partial. Entry names carry the hash
// of the URI, the object's size and a hash of its ETag: Open rebuilds the index from the
// directory, drops files whose size differs from their name's (a crash lost their data), keeps
// one version per URI (the newest), empties tmp/ (partial downloads), and evicts down to
// max_bytes. Recency is kept in memory; after a restart entries count as used when downloaded.
// One worker process uses a directory at a time (an flock on cache/lock, released when the
// process dies); Open fails with FailedPrecondition while another one holds it.
//
// Errors: IoError for local files (naming the path), FailedPrecondition as above, and whatever
// `download` returns (passed through unchanged, so an S3 error keeps its code).
#pragma once

#include <condition_variable>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <string>

#include "common/status.h"

namespace hpo::worker {

// One version of one S3 object: the cache key.
struct CachedObject {
  std::string endpoint;  // the S3 endpoint URL, e.g. http://127.0.0.1:7480
  std::string bucket;
  std::string key;
  std::string etag;      // ListObjectsV2's ETag without quotes; "" = not cacheable
  uint64_t size = 0;     // ListObjectsV2's Size
};

enum class Materialize { kCopy, kHardLink };

struct ChannelCacheOptions {
  std::string dir;          // <work_dir>/cache; created when missing
  uint64_t max_bytes = 0;   // > 0
  std::function<void(const std::string&)> log;  // may be empty
};

// What Place did for one object.
struct CachePlacement {
  bool hit = false;     // taken from the cache: no download by this call
  bool linked = false;  // the channel file is a hard link to the cached file
  bool cached = true;   // false: downloaded straight into the channel (not cacheable)
  uint64_t bytes = 0;
};

struct ChannelCacheStats {
  uint64_t hits = 0;              // objects served from the cache
  uint64_t downloads = 0;         // objects downloaded (cached or not)
  uint64_t waits = 0;             // Place calls that waited for another one's download
  uint64_t evictions = 0;         // entries evicted for room
  uint64_t uncached = 0;          // downloads not kept (too large, no room, changed meanwhile)
  uint64_t bytes_hit = 0;
  uint64_t bytes_downloaded = 0;
  uint64_t entries = 0;           // now
  uint64_t bytes = 0;             // now: entries' sizes, downloads in progress included
};

// The default limit for a work directory: 10% of its filesystem, at most 20 GiB (1 GiB when the
// size cannot be read).
uint64_t DefaultChannelCacheBytes(const std::string& work_dir);

class ChannelCache {
 public:
  // Opens (or creates) the cache directory and rebuilds the index (see "Crash safety").
  [[nodiscard]] static Result<std::unique_ptr<ChannelCache>> Open(ChannelCacheOptions options);
  ~ChannelCache();
  ChannelCache(const ChannelCache&) = delete;
  ChannelCache& operator=(const ChannelCache&) = delete;

  // Writes the object into `path` (created or truncated; on error removed), setting `*etag` to
  // the ETag the server sent ("" if none). Called without the cache's lock.
  using Download = std::function<Status(const std::string& path, std::string* etag)>;

  // Makes `dest` (its directory exists; an existing file is replaced) hold `object`: from the
  // cache, or downloaded into the cache first and then placed. An object with an empty ETag is
  // downloaded straight into `dest`.
  [[nodiscard]] Result<CachePlacement> Place(const CachedObject& object, const std::string& dest, Materialize how,
                                             const Download& download);

  ChannelCacheStats Stats() const;
  const std::string& dir() const { return options_.dir; }
  uint64_t max_bytes() const { return options_.max_bytes; }

 private:
  struct Entry {
    std::string file;    // name under objects/
    std::string version; // "<size>-<etag hash>"
    uint64_t size = 0;
    uint64_t last_use = 0;
    int pins = 0;
    bool doomed = false;  // dropped while pinned: deleted at the last unpin
  };
  explicit ChannelCache(ChannelCacheOptions options) : options_(std::move(options)) {}
  Status Load();
  // Evicts unpinned entries, least recently used first, until `need` more bytes fit. Lock held.
  bool MakeRoom(uint64_t need);
  // Removes an entry from the index; its file goes now, or at its last Unpin when in use. Lock held.
  void Drop(std::map<std::string, std::shared_ptr<Entry>>::iterator it);
  void Unpin(const std::shared_ptr<Entry>& e);  // lock held
  void RemoveFile(const std::string& file);
  void Log(const std::string& line) const;

  ChannelCacheOptions options_;
  int lock_fd_ = -1;
  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::map<std::string, std::shared_ptr<Entry>> entries_;  // URI hash -> current version
  std::set<std::string> downloading_;                      // URI hashes being downloaded
  uint64_t used_ = 0;       // entries' sizes (doomed ones until deleted) + reserved downloads
  uint64_t clock_ = 0;      // last_use source
  uint64_t tmp_seq_ = 0;
  ChannelCacheStats stats_;
};

}  // namespace hpo::worker
