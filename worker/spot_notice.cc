#include "worker/spot_notice.h"

#include <curl/curl.h>

#include <algorithm>
#include <cctype>
#include <memory>

#include "common/text.h"

namespace hpo::worker {

namespace {

size_t Collect(char* data, size_t size, size_t n, void* out) {
  auto* body = static_cast<std::string*>(out);
  const size_t bytes = size * n;
  if (body->size() < 64 * 1024) body->append(data, std::min(bytes, 64 * 1024 - body->size()));
  return bytes;
}

std::string Trim(std::string s) {
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.back()))) s.pop_back();
  size_t i = 0;
  while (i < s.size() && std::isspace(static_cast<unsigned char>(s[i]))) ++i;
  return s.substr(i);
}

// scheme://host[:port] of a URL ("" when it has none).
std::string Origin(const std::string& url) {
  const size_t scheme = url.find("://");
  if (scheme == std::string::npos) return "";
  const size_t path = url.find('/', scheme + 3);
  return path == std::string::npos ? url : url.substr(0, path);
}

}  // namespace

Result<NoticeUrl::Answer> NoticeUrl::Request(const std::string& method, const std::string& url,
                                             const std::string& header) const {
  std::unique_ptr<CURL, void (*)(CURL*)> curl(curl_easy_init(), curl_easy_cleanup);
  if (!curl) return Status::Internal("curl_easy_init failed");
  Answer a;
  curl_slist* headers = curl_slist_append(nullptr, "Metadata-Flavor: Google");
  if (!header.empty()) headers = curl_slist_append(headers, header.c_str());
  std::unique_ptr<curl_slist, void (*)(curl_slist*)> hold(headers, curl_slist_free_all);
  curl_easy_setopt(curl.get(), CURLOPT_URL, url.c_str());
  curl_easy_setopt(curl.get(), CURLOPT_CUSTOMREQUEST, method.c_str());
  if (method == "PUT") curl_easy_setopt(curl.get(), CURLOPT_POSTFIELDS, "");
  curl_easy_setopt(curl.get(), CURLOPT_HTTPHEADER, headers);
  curl_easy_setopt(curl.get(), CURLOPT_TIMEOUT_MS, static_cast<long>(timeout_ms_));
  curl_easy_setopt(curl.get(), CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(curl.get(), CURLOPT_NOPROXY, "*");  // a metadata endpoint is never behind a proxy
  curl_easy_setopt(curl.get(), CURLOPT_WRITEFUNCTION, Collect);
  curl_easy_setopt(curl.get(), CURLOPT_WRITEDATA, &a.body);
  const CURLcode rc = curl_easy_perform(curl.get());
  if (rc != CURLE_OK) {
    return Status::Unavailable("spot notice URL " + url + ": " + curl_easy_strerror(rc));
  }
  curl_easy_getinfo(curl.get(), CURLINFO_RESPONSE_CODE, &a.code);
  return a;
}

Result<std::string> NoticeUrl::Poll() {
  auto get = [&]() { return Request("GET", url_, token_.empty() ? "" : "X-aws-ec2-metadata-token: " + token_); };
  auto answer = get();
  if (!answer.ok()) return answer.status();
  if (answer->code == 401) {  // EC2 IMDSv2: a session token first
    const std::string token_url = Origin(url_) + "/latest/api/token";
    auto token = Request("PUT", token_url, "X-aws-ec2-metadata-token-ttl-seconds: 300");
    if (!token.ok()) return token.status();
    if (token->code != 200 || Trim(token->body).empty()) {
      return Status::Unavailable("spot notice URL " + url_ + " answered 401 and the IMDSv2 token request PUT " +
                                 token_url + " answered " + std::to_string(token->code));
    }
    token_ = Trim(token->body);
    answer = get();
    if (!answer.ok()) return answer.status();
  }
  if (answer->code == 404) return std::string();
  if (answer->code != 200) {
    return Status::Unavailable("spot notice URL " + url_ + " answered HTTP " + std::to_string(answer->code));
  }
  std::string body = Trim(answer->body);
  if (body.empty() || EqualsIgnoringCase(body, "false")) return std::string();
  if (body.size() > 1024) body.resize(1024);
  return body;
}

}  // namespace hpo::worker
