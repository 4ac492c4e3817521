#include "common/s3_client.h"

#include "common/http_client.h"

#include "common/aws_sigv4.h"
#include "common/file_util.h"
#include "common/object_store.h"
#include "common/text.h"

#include <curl/curl.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <functional>
#include <mutex>
#include <sstream>
#include <thread>

namespace hpo {

namespace fs = std::filesystem;

namespace {

std::string Lower(std::string_view s) { return AsciiLower(s); }

std::string AmzDate(std::time_t t) { return aws::AmzDate(static_cast<int64_t>(t)); }

std::string XmlUnescape(const std::string& s) {
  std::string out;
  for (std::size_t i = 0; i < s.size(); ++i) {
    if (s[i] != '&') {
      out.push_back(s[i]);
      continue;
    }
    std::size_t semi = s.find(';', i);
    if (semi == std::string::npos) {
      out.push_back(s[i]);
      continue;
    }
    std::string ent = s.substr(i + 1, semi - i - 1);
    if (ent == "amp") out += '&';
    else if (ent == "lt") out += '<';
    else if (ent == "gt") out += '>';
    else if (ent == "quot") out += '"';
    else if (ent == "apos") out += '\'';
    else if (!ent.empty() && ent[0] == '#') {
      long cp = ent.size() > 1 && (ent[1] == 'x' || ent[1] == 'X') ? std::strtol(ent.c_str() + 2, nullptr, 16)
                                                                   : std::strtol(ent.c_str() + 1, nullptr, 10);
      if (cp < 0x80) {
        out.push_back(static_cast<char>(cp));
      } else if (cp < 0x800) {
        out.push_back(static_cast<char>(0xC0 | (cp >> 6)));
        out.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
      } else if (cp < 0x10000) {
        out.push_back(static_cast<char>(0xE0 | (cp >> 12)));
        out.push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
        out.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
      } else {
        out.push_back(static_cast<char>(0xF0 | (cp >> 18)));
        out.push_back(static_cast<char>(0x80 | ((cp >> 12) & 0x3F)));
        out.push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
        out.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
      }
    } else {
      out += s.substr(i, semi - i + 1);
    }
    i = semi;
  }
  return out;
}

// The text of every <tag>...</tag> in `xml`, from `from` on, unescaped.
std::vector<std::string> XmlAll(const std::string& xml, const std::string& tag) {
  std::vector<std::string> out;
  const std::string open = "<" + tag + ">", close = "</" + tag + ">";
  std::size_t pos = 0;
  while ((pos = xml.find(open, pos)) != std::string::npos) {
    std::size_t start = pos + open.size();
    std::size_t end = xml.find(close, start);
    if (end == std::string::npos) break;
    out.push_back(XmlUnescape(xml.substr(start, end - start)));
    pos = end + close.size();
  }
  return out;
}

std::string XmlFirst(const std::string& xml, const std::string& tag) {
  auto all = XmlAll(xml, tag);
  return all.empty() ? "" : all[0];
}

// Reads `name` from the shared credentials file's `profile` section; empty when absent.
std::map<std::string, std::string> ReadProfile(const std::string& path, const std::string& profile) {
  std::map<std::string, std::string> out;
  std::ifstream in(path);
  std::string line, section;
  while (std::getline(in, line)) {
    line = std::string(TrimSpace(line));
    if (line.empty() || line[0] == '#' || line[0] == ';') continue;
    if (line.front() == '[' && line.back() == ']') {
      section = std::string(TrimSpace(line.substr(1, line.size() - 2)));
      continue;
    }
    if (section != profile) continue;
    auto eq = line.find('=');
    if (eq == std::string::npos) continue;
    out[Lower(TrimSpace(line.substr(0, eq)))] = std::string(TrimSpace(line.substr(eq + 1)));
  }
  return out;
}

std::string Env(const char* name) {
  const char* v = std::getenv(name);
  return v != nullptr ? v : "";
}

}  // namespace

std::string Sha256Hex(const std::string& data) { return aws::Sha256Hex(data); }

std::string UriEncode(const std::string& text, bool keep_slash) { return aws::UriEncode(text, keep_slash); }

std::string SignV4(const SigV4Request& r, const std::string& access_key, const std::string& secret_key,
                   const std::string& region, const std::string& service) {
  std::map<std::string, std::string> headers;  // lower-case name -> trimmed value, sorted
  for (const auto& [k, v] : r.headers) {
    // Sequential spaces inside a value collapse to one, as the canonical form wants.
    std::string value(TrimSpace(v)), collapsed;
    for (char c : value) {
      if (c == ' ' && !collapsed.empty() && collapsed.back() == ' ') continue;
      collapsed.push_back(c);
    }
    headers[Lower(k)] = collapsed;
  }
  std::vector<std::pair<std::string, std::string>> query;
  for (const auto& [k, v] : r.query) query.emplace_back(UriEncode(k, false), UriEncode(v, false));
  std::sort(query.begin(), query.end());
  std::string canonical_query, canonical_headers, signed_headers;
  for (const auto& [k, v] : query) canonical_query += (canonical_query.empty() ? "" : "&") + k + "=" + v;
  for (const auto& [k, v] : headers) {
    canonical_headers += k + ":" + v + "\n";
    signed_headers += (signed_headers.empty() ? "" : ";") + k;
  }
  const std::string canonical = r.method + "\n" + (r.path.empty() ? "/" : r.path) + "\n" + canonical_query + "\n" +
                                canonical_headers + "\n" + signed_headers + "\n" + r.payload_sha256;
  const std::string amz_date = headers["x-amz-date"];
  const std::string date = amz_date.substr(0, 8);
  const std::string scope = date + "/" + region + "/" + service + "/aws4_request";
  const std::string to_sign = "AWS4-HMAC-SHA256\n" + amz_date + "\n" + scope + "\n" + Sha256Hex(canonical);
  return "AWS4-HMAC-SHA256 Credential=" + access_key + "/" + scope + ", SignedHeaders=" + signed_headers +
         ", Signature=" + aws::SignatureHex(secret_key, date, region, service, to_sign);
}

Result<S3Uri> ParseS3Uri(const std::string& uri) {
  if (uri.rfind("s3://", 0) != 0) return Status::InvalidArgument("\"" + uri + "\" is not an s3:// URI");
  std::string rest = uri.substr(5);
  auto slash = rest.find('/');
  S3Uri out;
  out.bucket = rest.substr(0, slash);
  out.key = slash == std::string::npos ? "" : rest.substr(slash + 1);
  if (out.bucket.empty()) return Status::InvalidArgument("\"" + uri + "\" names no bucket");
  return out;
}

Result<S3Config> S3Config::FromEnvironment(const std::string& endpoint_flag) {
  S3Config c;
  std::string region = Env("AWS_REGION");
  if (region.empty()) region = Env("AWS_DEFAULT_REGION");
  if (!region.empty()) c.region = region;
  c.endpoint = endpoint_flag;
  if (c.endpoint.empty()) c.endpoint = Env("AWS_ENDPOINT_URL_S3");
  if (c.endpoint.empty()) c.endpoint = Env("AWS_ENDPOINT_URL");
  if (c.endpoint.empty()) c.endpoint = "https://s3." + c.region + ".amazonaws.com";
  while (!c.endpoint.empty() && c.endpoint.back() == '/') c.endpoint.pop_back();
  if (c.endpoint.rfind("http://", 0) != 0 && c.endpoint.rfind("https://", 0) != 0) {
    return Status::InvalidArgument("the S3 endpoint \"" + c.endpoint + "\" is not an http:// or https:// URL");
  }
  c.access_key = Env("AWS_ACCESS_KEY_ID");
  c.secret_key = Env("AWS_SECRET_ACCESS_KEY");
  c.session_token = Env("AWS_SESSION_TOKEN");
  if (c.access_key.empty() || c.secret_key.empty()) {
    std::string file = Env("AWS_SHARED_CREDENTIALS_FILE");
    if (file.empty()) file = Env("HOME") + "/.aws/credentials";
    std::string profile = Env("AWS_PROFILE");
    if (profile.empty()) profile = "default";
    auto p = ReadProfile(file, profile);
    c.access_key = p["aws_access_key_id"];
    c.secret_key = p["aws_secret_access_key"];
    c.session_token = p["aws_session_token"];
    if (c.access_key.empty() || c.secret_key.empty()) {
      return Status::InvalidArgument(
          "no S3 credentials: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or put aws_access_key_id and "
          "aws_secret_access_key in the [" + profile + "] profile of " + file);
    }
  }
  return c;
}

// ---- the client ----------------------------------------------------------------------------------

struct S3Client::Impl {
  S3Config cfg;
  std::string scheme_host;  // http://host:port
  std::string host;         // host[:port] as sent in the Host header

  struct Response {
    long http = 0;
    std::string body;  // error bodies always; success bodies unless streamed to a file
    std::map<std::string, std::string> headers;  // lower-case names
  };

  // One request. `upload` is the body (nullptr = none); `sink` receives a 2xx body when set.
  struct Request {
    std::string method;
    std::string bucket;
    std::string key;
    std::map<std::string, std::string> query;
    const std::string* body = nullptr;
    std::FILE* sink = nullptr;
    std::string content_type;
  };

  static size_t WriteToString(char* p, size_t size, size_t n, void* ud) {
    static_cast<std::string*>(ud)->append(p, size * n);
    return size * n;
  }
  struct WriteCtx {
    Response* resp;
    std::FILE* sink;
    long* http;
    CURL* curl;
  };
  static size_t WriteBody(char* p, size_t size, size_t n, void* ud) {
    auto* ctx = static_cast<WriteCtx*>(ud);
    long code = 0;
    curl_easy_getinfo(ctx->curl, CURLINFO_RESPONSE_CODE, &code);
    if (ctx->sink != nullptr && code >= 200 && code < 300) {
      return std::fwrite(p, 1, size * n, ctx->sink);
    }
    ctx->resp->body.append(p, size * n);
    return size * n;
  }
  static size_t WriteHeader(char* p, size_t size, size_t n, void* ud) {
    std::string line(p, size * n);
    auto colon = line.find(':');
    if (colon != std::string::npos) {
      (*static_cast<std::map<std::string, std::string>*>(ud))[Lower(TrimSpace(line.substr(0, colon)))] =
          std::string(TrimSpace(line.substr(colon + 1)));
    }
    return size * n;
  }
  struct ReadCtx {
    const std::string* data;
    std::size_t pos = 0;
  };
  static size_t ReadBody(char* p, size_t size, size_t n, void* ud) {
    auto* ctx = static_cast<ReadCtx*>(ud);
    std::size_t left = ctx->data->size() - ctx->pos;
    std::size_t take = std::min(left, size * n);
    std::memcpy(p, ctx->data->data() + ctx->pos, take);
    ctx->pos += take;
    return take;
  }

  std::string Path(const Request& r) const {
    std::string path = "/" + UriEncode(r.bucket, false);
    if (!r.key.empty()) path += "/" + UriEncode(r.key, true);
    return path;
  }

  // One try. Returns a transport error as Unavailable; HTTP answers of any code as a Response.
  Result<Response> Once(const Request& r) const {
    CURL* curl = curl_easy_init();
    if (curl == nullptr) return Status::Internal("curl_easy_init failed");
    Response resp;
    const std::string path = Path(r);
    const std::string payload_hash = r.body != nullptr ? Sha256Hex(*r.body) : Sha256Hex("");
    SigV4Request sr;
    sr.method = r.method;
    sr.path = path;
    sr.query = r.query;
    sr.headers = {{"host", host}, {"x-amz-date", AmzDate(std::time(nullptr))}, {"x-amz-content-sha256", payload_hash}};
    if (!cfg.session_token.empty()) sr.headers["x-amz-security-token"] = cfg.session_token;
    sr.payload_sha256 = payload_hash;
    std::string auth = SignV4(sr, cfg.access_key, cfg.secret_key, cfg.region, "s3");

    std::string url = scheme_host + path;
    std::vector<std::pair<std::string, std::string>> q;
    for (const auto& [k, v] : r.query) q.emplace_back(UriEncode(k, false), UriEncode(v, false));
    std::sort(q.begin(), q.end());
    for (std::size_t i = 0; i < q.size(); ++i) {
      url += (i == 0 ? "?" : "&") + q[i].first + (q[i].second.empty() && r.method == "POST" ? "" : "=" + q[i].second);
    }
    // A POST's value-less parameter (?uploads) is sent bare and signed as "uploads=", as S3 wants.

    curl_slist* hdrs = nullptr;
    for (const auto& [k, v] : sr.headers) hdrs = curl_slist_append(hdrs, (k + ": " + v).c_str());
    hdrs = curl_slist_append(hdrs, ("Authorization: " + auth).c_str());
    hdrs = curl_slist_append(hdrs, "Expect:");
    if (!r.content_type.empty()) hdrs = curl_slist_append(hdrs, ("Content-Type: " + r.content_type).c_str());

    WriteCtx wctx{&resp, r.sink, &resp.http, curl};
    ReadCtx rctx{r.body};
    curl_easy_setopt(curl, CURLOPT_URL, url.c_str());
    curl_easy_setopt(curl, CURLOPT_HTTPHEADER, hdrs);
    curl_easy_setopt(curl, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(curl, CURLOPT_CONNECTTIMEOUT, static_cast<long>(cfg.connect_timeout.count()));
    curl_easy_setopt(curl, CURLOPT_LOW_SPEED_LIMIT, 1024L);
    curl_easy_setopt(curl, CURLOPT_LOW_SPEED_TIME, static_cast<long>(cfg.stall_timeout.count()));
    curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, &WriteBody);
    curl_easy_setopt(curl, CURLOPT_WRITEDATA, &wctx);
    curl_easy_setopt(curl, CURLOPT_HEADERFUNCTION, &WriteHeader);
    curl_easy_setopt(curl, CURLOPT_HEADERDATA, &resp.headers);
    if (r.method == "GET") {
      curl_easy_setopt(curl, CURLOPT_HTTPGET, 1L);
    } else if (r.method == "HEAD") {
      curl_easy_setopt(curl, CURLOPT_NOBODY, 1L);
    } else if (r.method == "PUT") {
      curl_easy_setopt(curl, CURLOPT_UPLOAD, 1L);
      curl_easy_setopt(curl, CURLOPT_READFUNCTION, &ReadBody);
      curl_easy_setopt(curl, CURLOPT_READDATA, &rctx);
      curl_easy_setopt(curl, CURLOPT_INFILESIZE_LARGE,
                       static_cast<curl_off_t>(r.body != nullptr ? r.body->size() : 0));
      static const std::string kEmpty;
      if (r.body == nullptr) rctx.data = &kEmpty;
    } else {
      curl_easy_setopt(curl, CURLOPT_CUSTOMREQUEST, r.method.c_str());
      if (r.body != nullptr) {
        curl_easy_setopt(curl, CURLOPT_POSTFIELDS, r.body->data());
        curl_easy_setopt(curl, CURLOPT_POSTFIELDSIZE_LARGE, static_cast<curl_off_t>(r.body->size()));
      } else if (r.method == "POST") {
        curl_easy_setopt(curl, CURLOPT_POSTFIELDS, "");
        curl_easy_setopt(curl, CURLOPT_POSTFIELDSIZE_LARGE, static_cast<curl_off_t>(0));
      }
    }
    CURLcode rc = curl_easy_perform(curl);
    curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &resp.http);
    curl_slist_free_all(hdrs);
    curl_easy_cleanup(curl);
    if (rc != CURLE_OK) {
      return Status::Unavailable("cannot reach the S3 endpoint " + cfg.endpoint + ": " + curl_easy_strerror(rc));
    }
    return resp;
  }

  static bool Retryable(const Response& r) {
    if (r.http >= 500 || r.http == 429) return true;
    std::string code = XmlFirst(r.body, "Code");
    return code == "SlowDown" || code == "Throttling" || code == "RequestTimeout";
  }

  // The error for a non-2xx answer.
  Status HttpError(const std::string& what, const Response& r) const {
    std::string code = XmlFirst(r.body, "Code");
    std::string message = XmlFirst(r.body, "Message");
    std::string text = what + ": HTTP " + std::to_string(r.http) + (code.empty() ? "" : " " + code) +
                       (message.empty() ? "" : ": " + message);
    if (code == "SignatureDoesNotMatch") text += " (check the secret key for access key " + cfg.access_key + ")";
    if (code == "InvalidAccessKeyId") text += " (the access key " + cfg.access_key + " is unknown to " + cfg.endpoint + ")";
    if (code == "RequestTimeTooSkewed") {
      text += " (this machine's clock is more than 15 minutes off the S3 server's: set it right, e.g. with chrony or "
              "systemd-timesyncd)";
    }
    if (code == "ExpiredToken") {
      text += " (the session token, AWS_SESSION_TOKEN or the profile's aws_session_token, has expired: renew the "
              "credentials)";
    }
    if (r.http == 404) return Status::NotFound(text);
    if (r.http >= 500 || r.http == 429) return Status::Unavailable(text);
    // The endpoint refused who asks, not what is asked: this machine's credentials or its clock.
    // Another worker, configured right, can do the same request, so it is no error of the training
    // job (a worker with a wrong secret failed every job it took as a ClientError, and sank the
    // tuning job): Unavailable, an infrastructure error.
    if (code == "SignatureDoesNotMatch" || code == "InvalidAccessKeyId" || code == "RequestTimeTooSkewed" ||
        code == "ExpiredToken" || code == "InvalidToken") {
      return Status::Unavailable(text);
    }
    return Status::InvalidArgument(text);
  }

  // With retries. `what` names the operation for errors ("S3 GET s3://b/k"). `before_try` runs
  // before each try (rewinds a sink file).
  Result<Response> Call(const Request& r, const std::string& what,
                        const std::function<Status()>& before_try = nullptr) const {
    std::chrono::milliseconds wait = cfg.backoff;
    Status last = Status::Ok();
    for (int attempt = 1; attempt <= std::max(1, cfg.max_attempts); ++attempt) {
      if (attempt > 1) {
        std::this_thread::sleep_for(wait);
        wait *= 2;
      }
      if (before_try) HPO_RETURN_IF_ERROR(before_try());
      auto resp = Once(r);
      if (!resp.ok()) {
        last = Status::Unavailable(what + ": " + resp.status().message());
      } else if (resp->http >= 200 && resp->http < 300) {
        return resp;
      } else {
        last = HttpError(what, *resp);
        if (!Retryable(*resp)) return last;
      }
      if (cfg.on_retry && attempt < cfg.max_attempts) {
        char in[32];
        if (wait.count() < 1000) {
          std::snprintf(in, sizeof in, "%lld ms", static_cast<long long>(wait.count()));
        } else {
          std::snprintf(in, sizeof in, "%.1f s", static_cast<double>(wait.count()) / 1000.0);
        }
        cfg.on_retry(last.message() + "; try " + std::to_string(attempt + 1) + " of " +
                     std::to_string(cfg.max_attempts) + " in " + in);
      }
    }
    return Status::Unavailable(last.message() + " (gave up after " + std::to_string(cfg.max_attempts) + " tries)");
  }

  std::string Uri(const std::string& bucket, const std::string& key) const { return "s3://" + bucket + "/" + key; }
};

S3Client::S3Client(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
S3Client::~S3Client() = default;
const S3Config& S3Client::config() const { return impl_->cfg; }

Result<std::unique_ptr<S3Client>> S3Client::Create(S3Config config) {
  if (config.endpoint.empty()) return Status::InvalidArgument("the S3 endpoint is empty");
  if (config.access_key.empty() || config.secret_key.empty()) {
    return Status::InvalidArgument("S3 credentials are missing (access key and secret key)");
  }
  if (config.part_size < (5ull << 20)) {
    return Status::InvalidArgument("the multipart part size must be at least 5 MiB, got " +
                                   std::to_string(config.part_size) + " bytes");
  }
  if (config.list_page_size < 1 || config.list_page_size > 1000) {
    return Status::InvalidArgument("the list page size must be 1-1000");
  }
  CurlGlobalInit();
  auto impl = std::make_unique<Impl>();
  while (!config.endpoint.empty() && config.endpoint.back() == '/') config.endpoint.pop_back();
  auto sep = config.endpoint.find("://");
  if (sep == std::string::npos) return Status::InvalidArgument("the S3 endpoint \"" + config.endpoint + "\" is not a URL");
  impl->scheme_host = config.endpoint;
  impl->host = config.endpoint.substr(sep + 3);
  if (impl->host.find('/') != std::string::npos) {
    return Status::InvalidArgument("the S3 endpoint \"" + config.endpoint + "\" must not have a path");
  }
  impl->cfg = std::move(config);
  return std::unique_ptr<S3Client>(new S3Client(std::move(impl)));
}

Result<std::vector<S3Object>> S3Client::List(const std::string& bucket, const std::string& prefix) const {
  std::vector<S3Object> out;
  std::string token;
  for (;;) {
    Impl::Request r;
    r.method = "GET";
    r.bucket = bucket;
    r.query = {{"list-type", "2"}, {"prefix", prefix}, {"max-keys", std::to_string(impl_->cfg.list_page_size)}};
    if (!token.empty()) r.query["continuation-token"] = token;
    auto resp = impl_->Call(r, "S3 ListObjectsV2 " + impl_->Uri(bucket, prefix));
    if (!resp.ok()) return resp.status();
    const std::string& xml = resp->body;
    std::size_t pos = 0;
    while ((pos = xml.find("<Contents>", pos)) != std::string::npos) {
      std::size_t end = xml.find("</Contents>", pos);
      if (end == std::string::npos) break;
      std::string block = xml.substr(pos, end - pos);
      S3Object o;
      o.key = XmlFirst(block, "Key");
      o.size = std::strtoull(XmlFirst(block, "Size").c_str(), nullptr, 10);
      o.etag = XmlFirst(block, "ETag");
      if (o.etag.size() >= 2 && o.etag.front() == '"' && o.etag.back() == '"') o.etag = o.etag.substr(1, o.etag.size() - 2);
      out.push_back(std::move(o));
      pos = end;
    }
    if (XmlFirst(xml, "IsTruncated") != "true") break;
    token = XmlFirst(xml, "NextContinuationToken");
    if (token.empty()) {
      return Status::Unavailable("S3 ListObjectsV2 " + impl_->Uri(bucket, prefix) +
                                 ": the listing is truncated but has no NextContinuationToken");
    }
  }
  std::sort(out.begin(), out.end(), [](const S3Object& a, const S3Object& b) { return a.key < b.key; });
  return out;
}

Result<std::string> S3Client::Get(const std::string& bucket, const std::string& key) const {
  Impl::Request r;
  r.method = "GET";
  r.bucket = bucket;
  r.key = key;
  auto resp = impl_->Call(r, "S3 GET " + impl_->Uri(bucket, key));
  if (!resp.ok()) return resp.status();
  return std::move(resp->body);
}

Status S3Client::GetToFile(const std::string& bucket, const std::string& key, const std::string& path,
                           std::string* etag) const {
  std::FILE* f = nullptr;
  Impl::Request r;
  r.method = "GET";
  r.bucket = bucket;
  r.key = key;
  auto rewind = [&]() -> Status {
    if (f != nullptr) std::fclose(f);
    f = std::fopen(path.c_str(), "wb");
    if (f == nullptr) return Status::IoError("cannot write " + path + ": " + std::strerror(errno));
    r.sink = f;
    return Status::Ok();
  };
  auto resp = impl_->Call(r, "S3 GET " + impl_->Uri(bucket, key), rewind);
  bool write_ok = f != nullptr && std::fflush(f) == 0;
  if (f != nullptr) write_ok = std::fclose(f) == 0 && write_ok;
  if (!resp.ok() || !write_ok) {
    std::error_code ec;
    fs::remove(path, ec);
    if (!resp.ok()) return resp.status();
    return Status::IoError("cannot write " + path + ": " + std::strerror(errno));
  }
  if (etag != nullptr) {
    *etag = resp->headers["etag"];
    if (etag->size() >= 2 && etag->front() == '"' && etag->back() == '"') *etag = etag->substr(1, etag->size() - 2);
  }
  return Status::Ok();
}

Status S3Client::PutBytes(const std::string& bucket, const std::string& key, const std::string& data) const {
  Impl::Request r;
  r.method = "PUT";
  r.bucket = bucket;
  r.key = key;
  r.body = &data;
  return impl_->Call(r, "S3 PUT " + impl_->Uri(bucket, key)).status();
}

Status S3Client::PutFile(const std::string& bucket, const std::string& key, const std::string& path) const {
  // Only a regular file, opened without following a link or waiting on a FIFO: the file may be
  // in a tree a training program owns (common/file_util.h).
  uint64_t size = 0;
  auto opened = OpenRegularFile(path, &size);
  if (!opened.ok()) return opened.status();
  return PutOpened(bucket, key, opened->get(), size, path);
}

Status S3Client::PutOpened(const std::string& bucket, const std::string& key, int in, uint64_t size,
                           const std::string& path) const {
  const std::string what = impl_->Uri(bucket, key);
  if (size <= impl_->cfg.multipart_threshold) {
    std::string data(size, '\0');
    HPO_RETURN_IF_ERROR(ReadExactly(in, data.data(), data.size(), path));
    HPO_RETURN_IF_ERROR(CommitGate::Check());  // (common/object_store.h: what was read is still the file)
    return PutBytes(bucket, key, data);
  }
  Impl::Request init;
  init.method = "POST";
  init.bucket = bucket;
  init.key = key;
  init.query = {{"uploads", ""}};
  auto started = impl_->Call(init, "S3 CreateMultipartUpload " + what);
  if (!started.ok()) return started.status();
  const std::string upload_id = XmlFirst(started->body, "UploadId");
  if (upload_id.empty()) return Status::Unavailable("S3 CreateMultipartUpload " + what + ": no UploadId in the answer");
  auto abort = [&](Status why) {
    Impl::Request a;
    a.method = "DELETE";
    a.bucket = bucket;
    a.key = key;
    a.query = {{"uploadId", upload_id}};
    (void)impl_->Call(a, "S3 AbortMultipartUpload " + what);
    return why;
  };
  std::string complete = "<CompleteMultipartUpload>";
  std::string part(impl_->cfg.part_size, '\0');
  uint64_t done = 0;
  for (int number = 1; done < size; ++number) {
    const uint64_t n = std::min<uint64_t>(impl_->cfg.part_size, size - done);
    part.resize(n);
    if (Status read = ReadExactly(in, part.data(), part.size(), path); !read.ok()) return abort(read);
    Impl::Request p;
    p.method = "PUT";
    p.bucket = bucket;
    p.key = key;
    p.query = {{"partNumber", std::to_string(number)}, {"uploadId", upload_id}};
    p.body = &part;
    auto resp = impl_->Call(p, "S3 UploadPart " + std::to_string(number) + " of " + what);
    if (!resp.ok()) return abort(resp.status());
    std::string etag = resp->headers["etag"];
    complete += "<Part><PartNumber>" + std::to_string(number) + "</PartNumber><ETag>" + etag + "</ETag></Part>";
    done += n;
  }
  complete += "</CompleteMultipartUpload>";
  // The object appears only now: a fenced upload (common/object_store.h CommitGate) asks again,
  // after the parts' transfer, which a worker paused past its lease may have spent asleep.
  if (Status gate = CommitGate::Check(); !gate.ok()) return abort(gate);
  Impl::Request c;
  c.method = "POST";
  c.bucket = bucket;
  c.key = key;
  c.query = {{"uploadId", upload_id}};
  c.body = &complete;
  c.content_type = "application/xml";
  auto resp = impl_->Call(c, "S3 CompleteMultipartUpload " + what);
  if (!resp.ok()) return abort(resp.status());
  // S3 may answer 200 with an error document when completing fails late.
  if (resp->body.find("<Error>") != std::string::npos) {
    return abort(impl_->HttpError("S3 CompleteMultipartUpload " + what, *resp));
  }
  return Status::Ok();
}

Status S3Client::Delete(const std::string& bucket, const std::string& key) const {
  Impl::Request r;
  r.method = "DELETE";
  r.bucket = bucket;
  r.key = key;
  return impl_->Call(r, "S3 DELETE " + impl_->Uri(bucket, key)).status();
}

Status S3Client::CreateBucket(const std::string& bucket) const {
  Impl::Request r;
  r.method = "PUT";
  r.bucket = bucket;
  auto resp = impl_->Call(r, "S3 CreateBucket s3://" + bucket);
  if (!resp.ok() && resp.status().message().find("BucketAlreadyOwnedByYou") != std::string::npos) return Status::Ok();
  return resp.status();
}

}  // namespace hpo
