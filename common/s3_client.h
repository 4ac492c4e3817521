// common/s3_client.h: a small S3 client (no AWS SDK), the S3 side of common/object_store.h.
//
// What it is: the handful of S3 operations a worker needs, against any S3-compatible endpoint
// (AWS, Ceph radosgw, MinIO), over libcurl, signed with AWS Signature Version 4 computed here
// (SignV4 below; OpenSSL for SHA-256 and HMAC). Addressing is path-style
// (`<endpoint>/<bucket>/<key>`), which every S3 implementation accepts.
//   - List: ListObjectsV2 with pagination (continuation tokens) until the listing is complete.
//   - Get / GetToFile: GetObject into memory or streamed into a file.
//   - PutFile / PutBytes: PutObject; files larger than multipart_threshold go up as a multipart
//     upload of part_size parts (aborted again when a part fails).
// Every request is retried with exponential backoff on connection errors, HTTP 5xx and throttling
// (429, SlowDown); other HTTP errors are not retried.
//
// Configuration (S3Config::FromEnvironment): endpoint from the worker's `--s3-endpoint`, else
// AWS_ENDPOINT_URL_S3, else AWS_ENDPOINT_URL, else https://s3.<region>.amazonaws.com; region from
// AWS_REGION, else AWS_DEFAULT_REGION, else us-east-1; credentials from AWS_ACCESS_KEY_ID /
// AWS_SECRET_ACCESS_KEY / AWS_SESSION_TOKEN, else the profile AWS_PROFILE (default "default") of
// the shared credentials file (AWS_SHARED_CREDENTIALS_FILE, else ~/.aws/credentials).
//
// Errors name the operation, the s3:// URI and what the service said, e.g.
//   "S3 GET s3://data/train/a.csv: HTTP 403 SignatureDoesNotMatch: ... (check the secret key)"
// NotFound for a missing bucket or key (404), PermissionDenied-like answers (401/403) and other
// 4xx as InvalidArgument, except a refusal of this machine's credentials or clock
// (SignatureDoesNotMatch, InvalidAccessKeyId, RequestTimeTooSkewed, ExpiredToken, InvalidToken),
// which is Unavailable, as is an endpoint that cannot be reached or keeps failing after the
// retries; IoError for local files.
//
// Thread safety: an S3Client is immutable after construction; its methods may be called from any
// threads concurrently (each request uses its own curl handle).
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "common/status.h"

namespace hpo {

struct S3Config {
  std::string endpoint;       // scheme://host[:port], no path; required
  std::string region = "us-east-1";
  std::string access_key;     // required
  std::string secret_key;     // required
  std::string session_token;  // empty = none
  int max_attempts = 4;                         // tries per request, first one included
  std::chrono::milliseconds backoff{200};       // before the second try; doubled each time
  std::chrono::seconds connect_timeout{10};
  std::chrono::seconds stall_timeout{60};       // a transfer slower than 1 KiB/s this long fails
  uint64_t multipart_threshold = 64ull << 20;   // PutFile uses multipart above this many bytes
  uint64_t part_size = 16ull << 20;             // >= 5 MiB, S3's minimum for all parts but the last
  int list_page_size = 1000;                    // max-keys of each ListObjectsV2 page (1-1000)
  // Told of each try that failed and is tried again: what failed, and which try comes when (an
  // endpoint that stalls costs stall_timeout a try, and its callers heard nothing for minutes).
  // Called on the requesting thread; may be empty.
  std::function<void(const std::string&)> on_retry;

  // The configuration described at the top; `endpoint_flag` (the worker's --s3-endpoint) wins
  // over the environment when not empty. Errors: InvalidArgument when no credentials are found
  // (naming the variables and the file looked at) or the endpoint is not an http(s) URL.
  static Result<S3Config> FromEnvironment(const std::string& endpoint_flag = "");
};

// s3://bucket/key -> {bucket, key}. The key may be empty ("s3://bucket" or "s3://bucket/").
struct S3Uri {
  std::string bucket;
  std::string key;
  std::string ToString() const { return "s3://" + bucket + "/" + key; }
};
// Errors: InvalidArgument when the text does not start with s3:// or has no bucket.
[[nodiscard]] Result<S3Uri> ParseS3Uri(const std::string& uri);

struct S3Object {
  std::string key;
  uint64_t size = 0;
  std::string etag;  // without the quotes
};

class S3Client {
 public:
  // Errors: InvalidArgument for a config without endpoint or credentials, or a part size below
  // 5 MiB.
  [[nodiscard]] static Result<std::unique_ptr<S3Client>> Create(S3Config config);
  ~S3Client();
  S3Client(const S3Client&) = delete;
  S3Client& operator=(const S3Client&) = delete;

  // Every object whose key starts with `prefix` (all pages), in key order.
  [[nodiscard]] Result<std::vector<S3Object>> List(const std::string& bucket, const std::string& prefix) const;
  // The whole object in memory (manifests and other small objects).
  [[nodiscard]] Result<std::string> Get(const std::string& bucket, const std::string& key) const;
  // Streams the object into `path` (created or truncated; its directory must exist). On error the
  // partial file is removed. `etag`, when given, receives the ETag of what was sent (without the
  // quotes; "" if the server sent none): the version actually fetched (worker/channel_cache.h).
  [[nodiscard]] Status GetToFile(const std::string& bucket, const std::string& key, const std::string& path,
                                 std::string* etag = nullptr) const;
  // Uploads a file; multipart above multipart_threshold.
  [[nodiscard]] Status PutFile(const std::string& bucket, const std::string& key, const std::string& path) const;
  // The `size` bytes of the open file `fd` from its current offset (`name` for messages).
  [[nodiscard]] Status PutOpened(const std::string& bucket, const std::string& key, int fd, uint64_t size,
                                 const std::string& name) const;
  [[nodiscard]] Status PutBytes(const std::string& bucket, const std::string& key, const std::string& data) const;
  // DeleteObject; a key that does not exist is not an error (S3 answers 204 either way).
  [[nodiscard]] Status Delete(const std::string& bucket, const std::string& key) const;
  // CreateBucket; an existing bucket owned by the caller is not an error (for tests and tools).
  [[nodiscard]] Status CreateBucket(const std::string& bucket) const;

  const S3Config& config() const;

 private:
  struct Impl;
  explicit S3Client(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

// ---- Signature Version 4, exposed for tests --------------------------------------------------

struct SigV4Request {
  std::string method;                         // "GET", "PUT", ...
  std::string path;                           // the URI path as sent, already percent-encoded
  std::map<std::string, std::string> query;   // decoded names and values
  std::map<std::string, std::string> headers; // every header to sign (any case); must hold host
                                              // and x-amz-date (yyyymmddThhmmssZ)
  std::string payload_sha256;                 // hex SHA-256 of the body, or "UNSIGNED-PAYLOAD"
};

// The Authorization header value for `request`, signed for `service` in `region`
// ("AWS4-HMAC-SHA256 Credential=AK/20130524/us-east-1/s3/aws4_request, SignedHeaders=...,
// Signature=..."). Pure.
std::string SignV4(const SigV4Request& request, const std::string& access_key, const std::string& secret_key,
                   const std::string& region, const std::string& service);

// Percent-encoding as SigV4 wants it: unreserved characters (A-Z a-z 0-9 - . _ ~) kept, '/' kept
// when keep_slash, every other byte %XX (upper case).
std::string UriEncode(const std::string& text, bool keep_slash);

// Lower-case hex SHA-256 of `data`.
std::string Sha256Hex(const std::string& data);

}  // namespace hpo
