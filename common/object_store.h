// common/object_store.h: one interface for the places data, checkpoints and models live.
//
// What it is: SageMaker specs name S3 locations (`s3://bucket/prefix`); on-prem clusters often
// put the same data on a shared filesystem (`file:///mnt/data/...` or a plain absolute path).
// ObjectStore is the handful of object operations the worker needs, with two implementations:
//   - S3ObjectStore: one bucket through common/s3_client.h (libcurl, SigV4, multipart uploads,
//     paginated listings, retries with backoff on 5xx and throttling);
//   - LocalObjectStore: a directory tree, keys being '/'-separated paths relative to its root.
//     Writes are atomic (a temporary name in the same directory, then rename), so a reader never
//     sees half a file; directories are created as needed; Delete removes the file and the
//     directories it leaves empty (up to the root), as an S3 prefix disappears with its last key.
// OpenObjectLocation() turns a URI into a store and a key prefix within it:
//   s3://bucket/some/prefix   -> S3ObjectStore(bucket), prefix "some/prefix"
//   file:///mnt/x, /mnt/x     -> LocalObjectStore("/"), prefix "mnt/x"
// Keys are always full keys of the store (prefix included), as S3 has them.
//
// Listing: every object whose key starts with `prefix` as a string (S3's semantics: "data/ASHA-1"
// also matches "data/ASHA-10/x"; callers that want directory semantics filter, see
// worker/data_channels.h), in key order, without directory markers. A local listing follows
// symbolic links to directories and files, and reports regular files only.
//
// Errors: NotFound for a missing key or bucket, InvalidArgument for a key that is not a clean
// relative path (LocalObjectStore: empty, absolute, or with "." or ".." components) or a URI that
// is neither s3://, file:// nor absolute, IoError for local filesystem failures (naming the
// path), and whatever S3Client returns for S3 (its messages name the operation and the URI).
//
// Fencing (CommitGate below): while a gate is in scope on the calling thread, every write or
// delete asks it just before it takes effect (LocalObjectStore: before the temporary file is
// renamed, or the file removed; S3ObjectStore: before the request that creates or deletes the
// object). A non-OK answer abandons the write (its temporary file goes) and is returned.
//
// Thread safety: implementations are immutable after construction; every method may be called
// from several threads at once.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "common/s3_client.h"
#include "common/status.h"

namespace hpo {

// A key or relative path that stays inside its root and can be a file there: not empty, not
// absolute, without "", "." or ".." components or one over 255 bytes (RelativePathProblem).
bool IsCleanRelativePath(const std::string& key);
// Why `key` cannot be a file's path relative to a directory ("would land outside the directory
// ...", "has an empty ... segment", "has a segment of N bytes ..."); "" when it can.
std::string RelativePathProblem(const std::string& key);

// Installs `check` for the calling thread until destroyed (nested gates: each must agree, the
// innermost asked first). The worker installs one around an attempt's uploads: a worker paused
// (or cut off) past its lease in the middle of one must not finish it over the artifacts of the
// attempt's re-run on another worker, at the same key; the check says whether the coordinator
// still counts the attempt as this worker's. A checkpoint pass adds one per file: the file must
// not have changed while it was read (worker/checkpoints.h). (S3: a multipart upload asks again
// before it completes; a single PUT of up to the multipart threshold is asked before its file is
// read and again once it has been, before it is sent.)
class CommitGate {
 public:
  explicit CommitGate(std::function<Status()> check);
  ~CommitGate();
  CommitGate(const CommitGate&) = delete;
  CommitGate& operator=(const CommitGate&) = delete;
  // The calling thread's gate's answer; Ok without one.
  static Status Check();

 private:
  std::function<Status()> check_;
  CommitGate* outer_;
};

struct ObjectInfo {
  std::string key;   // the full key
  uint64_t size = 0;
  std::string etag;  // S3's ETag without quotes; empty for local files
};

class ObjectStore {
 public:
  virtual ~ObjectStore() = default;

  // The URI of a key, for messages and for what is reported back (s3://b/k, file:///p).
  virtual std::string Uri(const std::string& key) const = 0;
  [[nodiscard]] virtual Result<std::vector<ObjectInfo>> List(const std::string& prefix) const = 0;
  [[nodiscard]] virtual Result<std::string> Get(const std::string& key) const = 0;
  // Into `path` (created or truncated; its directory must exist); a failure leaves no file.
  [[nodiscard]] virtual Status GetToFile(const std::string& key, const std::string& path) const = 0;
  // Only a regular file, opened without following a link or waiting on a FIFO
  // (common/file_util.h OpenRegularFile): it may be in a tree a training program owns.
  [[nodiscard]] virtual Status PutFile(const std::string& key, const std::string& path) const = 0;
  // The `size` bytes of an open file `fd` (read from its current offset; `name` for messages), for
  // callers that opened it themselves (OpenRegularFileBeneath).
  [[nodiscard]] virtual Status PutOpened(const std::string& key, int fd, uint64_t size, const std::string& name) const = 0;
  [[nodiscard]] virtual Status PutBytes(const std::string& key, const std::string& data) const = 0;
  // A key that does not exist is not an error.
  [[nodiscard]] virtual Status Delete(const std::string& key) const = 0;
  // The local file that holds `key`, for readers that can use it in place; empty for remote
  // stores.
  virtual std::string LocalPath(const std::string& key) const { return ""; }
};

class LocalObjectStore : public ObjectStore {
 public:
  explicit LocalObjectStore(std::string root);  // an absolute directory ("/" for file:// URIs)
  std::string Uri(const std::string& key) const override;
  Result<std::vector<ObjectInfo>> List(const std::string& prefix) const override;
  Result<std::string> Get(const std::string& key) const override;
  Status GetToFile(const std::string& key, const std::string& path) const override;
  Status PutFile(const std::string& key, const std::string& path) const override;
  Status PutOpened(const std::string& key, int fd, uint64_t size, const std::string& name) const override;
  Status PutBytes(const std::string& key, const std::string& data) const override;
  Status Delete(const std::string& key) const override;
  std::string LocalPath(const std::string& key) const override;

 private:
  Result<std::string> PathOf(const std::string& key) const;
  std::string root_;
};

class S3ObjectStore : public ObjectStore {
 public:
  // `client` is asked on first use (so a job that names no s3:// location needs no credentials)
  // and must outlive the store.
  S3ObjectStore(std::function<Result<const S3Client*>()> client, std::string bucket);
  std::string Uri(const std::string& key) const override;
  Result<std::vector<ObjectInfo>> List(const std::string& prefix) const override;
  Result<std::string> Get(const std::string& key) const override;
  Status GetToFile(const std::string& key, const std::string& path) const override;
  Status PutFile(const std::string& key, const std::string& path) const override;
  Status PutOpened(const std::string& key, int fd, uint64_t size, const std::string& name) const override;
  Status PutBytes(const std::string& key, const std::string& data) const override;
  Status Delete(const std::string& key) const override;
  const std::string& bucket() const { return bucket_; }

 private:
  // f(client), or the error of getting the client.
  template <class F>
  auto WithClient(F f) const -> decltype(f(nullptr)) {
    auto c = client_();
    if (!c.ok()) return c.status();
    return f(*c);
  }
  std::function<Result<const S3Client*>()> client_;
  std::string bucket_;
};

struct ObjectLocation {
  std::shared_ptr<const ObjectStore> store;
  std::string prefix;  // a key prefix in `store`, without a leading '/'; may be empty
  std::string bucket;  // the S3 bucket; empty for a local store

  bool s3() const { return !bucket.empty(); }
  // prefix + "/" + rel (no doubled '/'); rel alone when the prefix is empty.
  std::string Key(const std::string& rel) const;
};

// See the header comment. Errors: InvalidArgument for any other URI, or s3:// without a bucket.
[[nodiscard]] Result<ObjectLocation> OpenObjectLocation(const std::string& uri,
                                                        std::function<Result<const S3Client*>()> s3);

}  // namespace hpo
