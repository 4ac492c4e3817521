// coordinator/sigv4.h: AWS Signature Version 4 for the coordinator's HTTP API.
//
// What it is: the check AWS itself applies to a request signed with an `Authorization:
// AWS4-HMAC-SHA256 Credential=..., SignedHeaders=..., Signature=...` header, so that the aws CLI,
// boto3 and every other AWS SDK authenticate against a coordinator exactly as they do against
// SageMaker. The signing half (Sign) is the same computation, used by `hpo` client commands and
// by tests.
//
// The contract of Verify (in this order; the first failure is the answer):
//   1. No Authorization header: MissingAuthenticationTokenException, "Missing Authentication
//      Token" (HTTP 403; AWS's JSON services name it so, botocore shows it as the error code).
//   2. A header that is not `AWS4-HMAC-SHA256 Credential=AKID/DATE/REGION/SERVICE/aws4_request,
//      SignedHeaders=a;b;c, Signature=<64 hex>`, or no X-Amz-Date (nor Date) header, or a signed
//      header list without `host`, or X-Amz-Date / X-Amz-Target present but unsigned:
//      IncompleteSignatureException (HTTP 400), the message naming what is missing.
//   3. The credential scope: its date must be the date of X-Amz-Date, its service
//      `options.service`, its region `options.region` when that is set (any region otherwise),
//      its terminator `aws4_request`: InvalidSignatureException (403), AWS's wording.
//   4. X-Amz-Date more than `options.max_skew_s` (15 minutes) before or after `now_s`:
//      InvalidSignatureException "Signature expired: ..." / "Signature not yet current: ...".
//   5. An access key id that `secret_of` does not know: UnrecognizedClientException (403),
//      "The security token included in the request is invalid."
//   6. The signature recomputed from the canonical request (method; the URI path normalised
//      and URI-encoded as AWS does for every service but S3; the query parameters URI-encoded
//      and sorted; the signed headers lower-cased, values trimmed and inner spaces collapsed;
//      the hex SHA-256 of the body) differs from the one given (compared in constant time), or
//      an X-Amz-Content-SHA256 header differs from the body's hash: InvalidSignatureException
//      (403), "The request signature we calculated does not match the signature you provided. ..."
// Error codes are the ones SageMaker (an AWS JSON 1.1 service) answers with; S3 and the Query
// services call a mismatch SignatureDoesNotMatch and a missing one MissingAuthenticationToken,
// SageMaker does not, so neither appears here.
// Only header authentication is supported; presigned query-string requests are refused at
// step 1. X-Amz-Security-Token, when present, is covered by the signature but not checked
// against anything: the coordinator knows long-term access keys only.
//
// Thread safety: every function is pure (OpenSSL's one-shot HMAC/SHA-256), callable from any
// thread. Credentials objects are immutable once loaded.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "common/status.h"

namespace hpo::coordinator::sigv4 {

// An HTTP request as it arrived (or is about to be sent).
struct Request {
  std::string method;       // "POST"
  std::string path;         // the request target's path, percent-encoded as sent: "/", "/hpo/v1/jobs/x"
  std::string query;        // the raw query string without '?', "" when none
  std::vector<std::pair<std::string, std::string>> headers;  // as received; names in any case
  std::string body;
};

struct VerifyOptions {
  std::string service = "sagemaker";  // the credential scope's service must be this
  std::string region;                 // "" = any region is accepted
  int64_t max_skew_s = 15 * 60;       // allowed distance between X-Amz-Date and now
};

// The outcome of Verify: ok() with the caller's access key id, or an AWS error.
struct Verdict {
  int http_status = 200;     // 200 on success; 400 or 403 otherwise
  std::string error_type;    // "" on success, else the AWS error code (e.g. InvalidSignatureException)
  std::string message;       // AWS's message for the error
  std::string access_key_id; // who signed, on success
  bool ok() const { return error_type.empty(); }
};

// Looks up the secret access key of an access key id; nullopt = unknown key.
using SecretLookup = std::function<std::optional<std::string>(const std::string& access_key_id)>;

// Checks `req` signed at a time within options.max_skew_s of now_s (Unix seconds). See above.
Verdict Verify(const Request& req, const SecretLookup& secret_of, int64_t now_s, const VerifyOptions& options = {});

// Signs `req` in place as botocore does: sets X-Amz-Date (from now_s) and Authorization, signing
// every header present plus host (which must be among req.headers). For clients and tests.
void Sign(Request& req, const std::string& access_key_id, const std::string& secret_access_key,
          const std::string& region, const std::string& service, int64_t now_s);

// The pieces, exposed for tests against independently computed vectors. The canonical query is
// AWS's (names and values decoded, re-encoded with unreserved characters kept, sorted); with
// raw_query the pairs are sorted as they arrived, as botocore builds it. Verify accepts a
// signature over either form, since clients that send non-canonical escapes (e.g. %7E) differ.
std::string CanonicalRequest(const Request& req, const std::vector<std::string>& signed_headers,
                             bool raw_query = false);
std::string StringToSign(const std::string& amz_date, const std::string& scope, const std::string& canonical_request);
std::string Signature(const std::string& secret_access_key, const std::string& date, const std::string& region,
                      const std::string& service, const std::string& string_to_sign);
std::string Sha256Hex(const std::string& data);
// "20150830T123600Z" for a Unix time, and back (nullopt when malformed).
std::string AmzDate(int64_t unix_s);
std::optional<int64_t> ParseAmzDate(const std::string& amz_date);

// Access keys the coordinator accepts: access key id -> secret access key.
//
// File formats (auto-detected; '#' and ';' start comment lines; blank lines are ignored):
//   * the ~/.aws/credentials INI format: `[profile]` sections with `aws_access_key_id = ...` and
//     `aws_secret_access_key = ...` (other keys such as aws_session_token or region are ignored);
//     every profile's key pair is accepted;
//   * one `ACCESS_KEY_ID SECRET_ACCESS_KEY` pair per line, separated by blanks.
// Errors (InvalidArgument, naming the file and line): an unreadable file, a line that fits
// neither format, a profile with only one of the two keys, the same access key id twice with
// different secrets, no key at all.
class Credentials {
 public:
  static Result<Credentials> Load(const std::string& path);
  static Result<Credentials> Parse(const std::string& text, const std::string& source_name);
  std::optional<std::string> SecretOf(const std::string& access_key_id) const;
  size_t size() const { return keys_.size(); }

 private:
  std::map<std::string, std::string> keys_;
};

}  // namespace hpo::coordinator::sigv4
