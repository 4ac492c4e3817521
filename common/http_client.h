// common/http_client.h: one HTTP(S) POST, over libcurl, for what the coordinator sends out on
// its own (the state-change notifications of coordinator/notifier.h).
//
// Contract: http:// and https:// only (any other scheme is refused before anything is sent);
// redirects are not followed (a webhook that answers 3xx has answered); the certificate of an
// https server is checked against the system's roots.
#pragma once

#include <atomic>
#include <cstdint>
#include <string>
#include <vector>

#include "common/status.h"

namespace hpo {

struct HttpReply {
  long status = 0;
  std::string body;  // at most its first 4 KiB
};

// libcurl's one-time global set-up, for every user of libcurl here (this file, s3_client.cc).
void CurlGlobalInit();

// Posts `body` to `url` with `headers` (each "Name: value"), waiting at most `timeout_ms` in all,
// connecting included, and keeps the connection for the next call (HTTP keep-alive; TLS set up
// once). Returns the server's reply, whatever its status. Errors: InvalidArgument for a URL that
// is not http(s); Unavailable with libcurl's reason when no reply came (refused, name not found,
// TLS, timed out). With `cancel`, a request in flight is abandoned within about a second of it
// turning true (Unavailable; a process shutting down does not wait out `timeout_ms` for a server
// that hangs). One thread at a time.
class HttpClient {
 public:
  HttpClient();
  ~HttpClient();
  HttpClient(const HttpClient&) = delete;
  HttpClient& operator=(const HttpClient&) = delete;
  Result<HttpReply> Post(const std::string& url, const std::vector<std::string>& headers, const std::string& body,
                         int64_t timeout_ms, const std::atomic<bool>* cancel = nullptr);

 private:
  void* curl_;  // CURL*
};

}  // namespace hpo
