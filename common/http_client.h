// common/http_client.h: one HTTP(S) POST, over libcurl, for what the coordinator sends out on
// its own (the state-change notifications of coordinator/notifier.h).
//
// Contract: http:// and https:// only (any other scheme is refused before anything is sent);
// redirects are not followed (a webhook that answers 3xx has answered); the certificate of an
// https server is checked against the system's roots. HttpPost: one call, one connection, any
// thread; HttpClient keeps its connection between calls, one thread at a time.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "common/status.h"

namespace hpo {

struct HttpReply {
  long status = 0;
  std::string body;  // at most its first 4 KiB
};

// Posts `body` to `url` with `headers` (each "Name: value"), waiting at most `timeout_ms` in all,
// connecting included. Returns the server's reply, whatever its status. Errors: InvalidArgument
// for a URL that is not http(s); Unavailable with libcurl's reason when no reply came (refused,
// name not found, TLS, timed out).
Result<HttpReply> HttpPost(const std::string& url, const std::vector<std::string>& headers, const std::string& body,
                           int64_t timeout_ms);

// The same, keeping its connection between calls (HTTP keep-alive; TLS set up once): for many
// requests to one server in a row. One thread at a time.
class HttpClient {
 public:
  HttpClient();
  ~HttpClient();
  HttpClient(const HttpClient&) = delete;
  HttpClient& operator=(const HttpClient&) = delete;
  Result<HttpReply> Post(const std::string& url, const std::vector<std::string>& headers, const std::string& body,
                         int64_t timeout_ms);

 private:
  void* curl_;  // CURL*
};

}  // namespace hpo
