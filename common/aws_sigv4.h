// common/aws_sigv4.h: the primitives of AWS Signature Version 4, shared by the coordinator (which
// verifies signed SageMaker API requests) and the worker (which signs its S3 requests).
//
// Pure functions on strings: SHA-256 and HMAC-SHA256 (OpenSSL), lower-case hex, AWS's URI
// encoding, the x-amz-date form of a time, and the signature of a string to sign with the key
// derived from (secret, date, region, service). The canonical request is each side's own
// business (the verifier must rebuild it from what arrived, the signer from what it sends).
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>

namespace hpo::aws {

// Lower-case hex of n bytes.
std::string Hex(const unsigned char* p, std::size_t n);
// Lower-case hex of SHA-256(data).
std::string Sha256Hex(const std::string& data);
// HMAC-SHA256(key, data), raw bytes.
std::string HmacSha256(const std::string& key, const std::string& data);
// AWS's UriEncode: A-Z a-z 0-9 - . _ ~ as they are (and '/' when keep_slash), the rest %XX.
std::string UriEncode(const std::string& text, bool keep_slash);
// "YYYYMMDDTHHMMSSZ" (UTC) of a Unix time.
std::string AmzDate(int64_t unix_seconds);
// Hex signature of string_to_sign with the key AWS4<secret> -> date -> region -> service ->
// aws4_request (date is YYYYMMDD).
std::string SignatureHex(const std::string& secret, const std::string& date, const std::string& region,
                         const std::string& service, const std::string& string_to_sign);

}  // namespace hpo::aws
