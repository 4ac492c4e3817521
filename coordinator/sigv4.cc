#include "coordinator/sigv4.h"

#include "common/aws_sigv4.h"

#include <openssl/crypto.h>

#include <algorithm>
#include <cctype>
#include <ctime>
#include <set>
#include <sstream>

#include "common/file_util.h"
#include "common/text.h"

namespace hpo::coordinator::sigv4 {

namespace {

constexpr char kAlgorithm[] = "AWS4-HMAC-SHA256";

std::string Lower(std::string_view s) { return AsciiLower(s); }

// AWS's UriEncode: unreserved characters as they are, everything else %XX (upper-case hex).
std::string UriEncode(const std::string& s, bool keep_slash) { return aws::UriEncode(s, keep_slash); }

// RFC 3986 remove_dot_segments, with empty segments dropped as AWS does (botocore's
// normalize_url_path); a trailing slash is kept.
std::string NormalizePath(const std::string& path) {
  if (path.empty()) return "/";
  std::vector<std::string> out;
  size_t pos = 0;
  while (pos <= path.size()) {
    size_t slash = path.find('/', pos);
    std::string seg = path.substr(pos, slash == std::string::npos ? std::string::npos : slash - pos);
    if (!seg.empty() && seg != ".") {
      if (seg == "..") {
        if (!out.empty()) out.pop_back();
      } else {
        out.push_back(seg);
      }
    }
    if (slash == std::string::npos) break;
    pos = slash + 1;
  }
  std::string r = path[0] == '/' ? "/" : "";
  for (size_t i = 0; i < out.size(); ++i) r += (i ? "/" : "") + out[i];
  if (path.back() == '/' && !out.empty()) r += "/";
  return r;
}

std::string CanonicalQuery(const std::string& query, bool raw) {
  if (query.empty()) return "";
  std::vector<std::pair<std::string, std::string>> pairs;
  size_t pos = 0;
  while (pos <= query.size()) {
    size_t amp = query.find('&', pos);
    std::string pair = query.substr(pos, amp == std::string::npos ? std::string::npos : amp - pos);
    if (!pair.empty()) {
      size_t eq = pair.find('=');
      std::string k = eq == std::string::npos ? pair : pair.substr(0, eq);
      std::string v = eq == std::string::npos ? "" : pair.substr(eq + 1);
      if (raw) {
        pairs.emplace_back(k, v);
      } else {
        pairs.emplace_back(UriEncode(PercentDecode(k), false), UriEncode(PercentDecode(v), false));
      }
    }
    if (amp == std::string::npos) break;
    pos = amp + 1;
  }
  std::sort(pairs.begin(), pairs.end());
  std::string out;
  for (size_t i = 0; i < pairs.size(); ++i) out += (i ? "&" : "") + pairs[i].first + "=" + pairs[i].second;
  return out;
}

// All values of a header (case-insensitive name), joined by ',' as AWS does for repeats.
std::optional<std::string> HeaderValue(const Request& req, const std::string& lower_name) {
  std::optional<std::string> v;
  for (const auto& [k, val] : req.headers) {
    if (Lower(k) != lower_name) continue;
    // Trim and collapse inner runs of blanks to one space.
    std::string collapsed;
    std::istringstream in(val);
    std::string word;
    while (in >> word) collapsed += (collapsed.empty() ? "" : " ") + word;
    v = v ? *v + "," + collapsed : collapsed;
  }
  return v;
}

Verdict Error(int status, const std::string& type, const std::string& message) {
  Verdict v;
  v.http_status = status;
  v.error_type = type;
  v.message = message;
  return v;
}

Verdict Incomplete(const std::string& message) { return Error(400, "IncompleteSignatureException", message); }
Verdict Invalid(const std::string& message) { return Error(403, "InvalidSignatureException", message); }

std::vector<std::string> Split(const std::string& s, char sep) {
  std::vector<std::string> out;
  size_t pos = 0;
  while (true) {
    size_t p = s.find(sep, pos);
    out.push_back(s.substr(pos, p == std::string::npos ? std::string::npos : p - pos));
    if (p == std::string::npos) break;
    pos = p + 1;
  }
  return out;
}

std::optional<int64_t> ParseHttpDate(const std::string& s) {
  std::tm tm{};
  const char* end = strptime(s.c_str(), "%a, %d %b %Y %H:%M:%S GMT", &tm);
  if (!end || *end != '\0') return std::nullopt;
  return static_cast<int64_t>(timegm(&tm));
}

}  // namespace

std::string Sha256Hex(const std::string& data) { return aws::Sha256Hex(data); }

std::string AmzDate(int64_t unix_s) { return aws::AmzDate(unix_s); }

std::optional<int64_t> ParseAmzDate(const std::string& s) {
  if (s.size() != 16 || s[8] != 'T' || s[15] != 'Z') return std::nullopt;
  for (size_t i = 0; i < 15; ++i) {
    if (i != 8 && !std::isdigit(static_cast<unsigned char>(s[i]))) return std::nullopt;
  }
  std::tm tm{};
  tm.tm_year = std::stoi(s.substr(0, 4)) - 1900;
  tm.tm_mon = std::stoi(s.substr(4, 2)) - 1;
  tm.tm_mday = std::stoi(s.substr(6, 2));
  tm.tm_hour = std::stoi(s.substr(9, 2));
  tm.tm_min = std::stoi(s.substr(11, 2));
  tm.tm_sec = std::stoi(s.substr(13, 2));
  if (tm.tm_mon > 11 || tm.tm_mday < 1 || tm.tm_mday > 31 || tm.tm_hour > 23 || tm.tm_min > 59 || tm.tm_sec > 60) {
    return std::nullopt;
  }
  return static_cast<int64_t>(timegm(&tm));
}

std::string CanonicalRequest(const Request& req, const std::vector<std::string>& signed_headers, bool raw_query) {
  std::string out = req.method + "\n";
  out += UriEncode(NormalizePath(req.path), true) + "\n";
  out += CanonicalQuery(req.query, raw_query) + "\n";
  std::string names;
  for (const auto& h : signed_headers) {
    out += h + ":" + HeaderValue(req, h).value_or("") + "\n";
    names += (names.empty() ? "" : ";") + h;
  }
  out += "\n" + names + "\n";
  out += Sha256Hex(req.body);
  return out;
}

std::string StringToSign(const std::string& amz_date, const std::string& scope, const std::string& canonical_request) {
  return std::string(kAlgorithm) + "\n" + amz_date + "\n" + scope + "\n" + Sha256Hex(canonical_request);
}

std::string Signature(const std::string& secret, const std::string& date, const std::string& region,
                      const std::string& service, const std::string& string_to_sign) {
  return aws::SignatureHex(secret, date, region, service, string_to_sign);
}

void Sign(Request& req, const std::string& access_key_id, const std::string& secret, const std::string& region,
          const std::string& service, int64_t now_s) {
  const std::string amz_date = AmzDate(now_s);
  auto drop = [&](const std::string& lower) {
    req.headers.erase(std::remove_if(req.headers.begin(), req.headers.end(),
                                     [&](const auto& h) { return Lower(h.first) == lower; }),
                      req.headers.end());
  };
  drop("authorization");
  drop("x-amz-date");
  req.headers.emplace_back("X-Amz-Date", amz_date);
  std::set<std::string> names;
  for (const auto& [k, v] : req.headers) {
    std::string l = Lower(k);
    if (l != "user-agent" && l != "expect" && l != "x-amzn-trace-id") names.insert(l);
  }
  std::vector<std::string> signed_headers(names.begin(), names.end());
  const std::string date = amz_date.substr(0, 8);
  const std::string scope = date + "/" + region + "/" + service + "/aws4_request";
  std::string sts = StringToSign(amz_date, scope, CanonicalRequest(req, signed_headers));
  std::string list;
  for (const auto& h : signed_headers) list += (list.empty() ? "" : ";") + h;
  req.headers.emplace_back("Authorization", std::string(kAlgorithm) + " Credential=" + access_key_id + "/" + scope +
                                                ", SignedHeaders=" + list +
                                                ", Signature=" + Signature(secret, date, region, service, sts));
}

Verdict Verify(const Request& req, const SecretLookup& secret_of, int64_t now_s, const VerifyOptions& options) {
  std::optional<std::string> auth = HeaderValue(req, "authorization");
  if (!auth || auth->empty()) return Error(403, "MissingAuthenticationTokenException", "Missing Authentication Token");

  // AWS4-HMAC-SHA256 Credential=..., SignedHeaders=..., Signature=...
  size_t sp = auth->find(' ');
  std::string algorithm = auth->substr(0, sp);
  if (algorithm != kAlgorithm) {
    return Incomplete("Unsupported AWS 'algorithm': '" + algorithm + "' (this coordinator accepts " + kAlgorithm + ")");
  }
  std::map<std::string, std::string> params;
  for (const std::string& part : Split(sp == std::string::npos ? "" : auth->substr(sp + 1), ',')) {
    std::string p(TrimSpace(part));
    size_t eq = p.find('=');
    if (eq == std::string::npos) continue;
    params[std::string(TrimSpace(p.substr(0, eq)))] = std::string(TrimSpace(p.substr(eq + 1)));
  }
  std::string missing;
  for (const char* need : {"Credential", "SignedHeaders", "Signature"}) {
    if (!params.count(need) || params[need].empty()) {
      missing += std::string("Authorization header requires '") + need + "' parameter. ";
    }
  }
  std::optional<std::string> amz_date = HeaderValue(req, "x-amz-date");
  std::optional<std::string> http_date = HeaderValue(req, "date");
  if (!amz_date && !http_date) {
    missing += "Authorization header requires existence of either a 'X-Amz-Date' or a 'Date' header. ";
  }
  if (!missing.empty()) return Incomplete(missing + "Authorization=" + *auth);

  const std::string& signature = params["Signature"];
  std::vector<std::string> signed_headers = Split(params["SignedHeaders"], ';');
  for (const auto& h : signed_headers) {
    if (h.empty() || h != Lower(h)) {
      return Incomplete("SignedHeaders must be lower-case header names separated by ';', got '" +
                        params["SignedHeaders"] + "'");
    }
  }
  if (!std::is_sorted(signed_headers.begin(), signed_headers.end())) {
    return Incomplete("SignedHeaders must be sorted, got '" + params["SignedHeaders"] + "'");
  }
  auto is_signed = [&](const std::string& h) {
    return std::find(signed_headers.begin(), signed_headers.end(), h) != signed_headers.end();
  };
  if (!is_signed("host")) return Incomplete("'Host' or ':authority' must be a 'SignedHeader' in the AWS Authorization.");
  if (amz_date && !is_signed("x-amz-date")) {
    return Incomplete("'X-Amz-Date' must be a 'SignedHeader' in the AWS Authorization when it is present.");
  }
  if (HeaderValue(req, "x-amz-target") && !is_signed("x-amz-target")) {
    return Incomplete("'X-Amz-Target' must be a 'SignedHeader' in the AWS Authorization when it is present.");
  }

  // Credential=AKID/YYYYMMDD/REGION/SERVICE/aws4_request
  std::vector<std::string> cred = Split(params["Credential"], '/');
  if (cred.size() != 5 || cred[0].empty()) {
    return Incomplete("Credential must have exactly 5 slash-delimited elements, e.g. "
                      "keyid/date/region/service/term, got '" + params["Credential"] + "'");
  }
  std::string request_date = amz_date ? *amz_date : *http_date;
  std::optional<int64_t> when = amz_date ? ParseAmzDate(*amz_date) : ParseHttpDate(*http_date);
  if (!when) {
    return Incomplete(std::string("Date must be in ISO-8601 'basic format'. Got '") + request_date +
                      "'. See http://en.wikipedia.org/wiki/ISO_8601");
  }
  const std::string iso_date = AmzDate(*when);
  if (cred[1] != iso_date.substr(0, 8)) {
    return Invalid("Date in Credential scope does not match YYYYMMDD from ISO-8601 version of date from HTTP: '" +
                   cred[1] + "' != '" + iso_date.substr(0, 8) + "', from '" + iso_date + "'.");
  }
  if (!options.region.empty() && cred[2] != options.region) {
    return Invalid("Credential should be scoped to a valid region. ");
  }
  if (cred[2].empty()) return Invalid("Credential should be scoped to a valid region. ");
  if (cred[3] != options.service) {
    return Invalid("Credential should be scoped to correct service: '" + options.service + "'. ");
  }
  if (cred[4] != "aws4_request") {
    return Invalid("Credential should be scoped with a valid terminator: 'aws4_request', not '" + cred[4] + "'. ");
  }

  const std::string now_iso = AmzDate(now_s);
  if (*when < now_s - options.max_skew_s) {
    return Invalid("Signature expired: " + iso_date + " is now earlier than " + AmzDate(now_s - options.max_skew_s) +
                   " (" + now_iso + " - " + std::to_string(options.max_skew_s / 60) + " min.)");
  }
  if (*when > now_s + options.max_skew_s) {
    return Invalid("Signature not yet current: " + iso_date + " is still later than " +
                   AmzDate(now_s + options.max_skew_s) + " (" + now_iso + " + " +
                   std::to_string(options.max_skew_s / 60) + " min.)");
  }

  std::optional<std::string> secret = secret_of(cred[0]);
  if (!secret) return Error(403, "UnrecognizedClientException", "The security token included in the request is invalid.");

  const std::string mismatch =
      "The request signature we calculated does not match the signature you provided. Check your AWS Secret Access "
      "Key and signing method. Consult the service documentation for details.";
  std::optional<std::string> content_sha = HeaderValue(req, "x-amz-content-sha256");
  if (content_sha && *content_sha != "UNSIGNED-PAYLOAD" && Lower(*content_sha) != Sha256Hex(req.body)) {
    return Invalid(mismatch);
  }
  const std::string scope = cred[1] + "/" + cred[2] + "/" + cred[3] + "/" + cred[4];
  auto matches = [&](bool raw_query) {
    std::string expected = Signature(*secret, cred[1], cred[2], cred[3],
                                     StringToSign(request_date, scope, CanonicalRequest(req, signed_headers, raw_query)));
    return signature.size() == expected.size() &&
           CRYPTO_memcmp(signature.data(), expected.data(), expected.size()) == 0;
  };
  if (!matches(false) && (CanonicalQuery(req.query, true) == CanonicalQuery(req.query, false) || !matches(true))) {
    return Invalid(mismatch);
  }
  Verdict ok;
  ok.access_key_id = cred[0];
  return ok;
}

// ---- credentials ---------------------------------------------------------------------------------

Result<Credentials> Credentials::Load(const std::string& path) {
  auto text = ReadFile(path, 1u << 20);
  if (!text.ok()) return Status::InvalidArgument("cannot read the credentials file: " + text.status().message());
  return Parse(*text, path);
}

Result<Credentials> Credentials::Parse(const std::string& text, const std::string& source) {
  Credentials c;
  auto add = [&](const std::string& id, const std::string& secret, int line) -> Status {
    auto it = c.keys_.find(id);
    if (it != c.keys_.end() && it->second != secret) {
      return Status::InvalidArgument(source + ":" + std::to_string(line) + ": access key id " + id +
                                     " appears twice with different secrets");
    }
    c.keys_[id] = secret;
    return Status::Ok();
  };
  std::vector<std::string> lines = Split(text, '\n');
  bool ini = false;
  for (const auto& l : lines) {
    std::string t(TrimSpace(l));
    if (t.empty() || t[0] == '#' || t[0] == ';') continue;
    ini = t[0] == '[';
    break;
  }
  // INI: the current profile's keys, flushed at the next section and at the end.
  std::string profile, id, secret;
  int profile_line = 0;
  auto flush = [&]() -> Status {
    if (profile.empty() || (id.empty() && secret.empty())) return Status::Ok();
    if (id.empty() || secret.empty()) {
      return Status::InvalidArgument(source + ":" + std::to_string(profile_line) + ": profile [" + profile +
                                     "] has " + (id.empty() ? "aws_secret_access_key but no aws_access_key_id"
                                                            : "aws_access_key_id but no aws_secret_access_key"));
    }
    return add(id, secret, profile_line);
  };
  for (size_t i = 0; i < lines.size(); ++i) {
    const int n = static_cast<int>(i + 1);
    std::string t(TrimSpace(lines[i]));
    if (t.empty() || t[0] == '#' || t[0] == ';') continue;
    const std::string where = source + ":" + std::to_string(n) + ": ";
    if (ini) {
      if (t[0] == '[') {
        if (t.back() != ']' || t.size() < 3) return Status::InvalidArgument(where + "malformed section header " + t);
        HPO_RETURN_IF_ERROR(flush());
        profile = std::string(TrimSpace(t.substr(1, t.size() - 2)));
        profile_line = n;
        id.clear();
        secret.clear();
        continue;
      }
      size_t eq = t.find('=');
      if (eq == std::string::npos) {
        // Only the line's first word: the rest may be a secret key whose `=` was forgotten (this
        // message goes to the log).
        const std::string first = t.substr(0, std::min(t.find_first_of(" \t"), size_t{64}));
        return Status::InvalidArgument(where + "expected `name = value` inside profile [" + profile +
                                       "], got a line without `=` that begins " + first +
                                       (first.size() < t.size() ? " (the rest is not shown)" : ""));
      }
      std::string k = Lower(TrimSpace(t.substr(0, eq))), v = std::string(TrimSpace(t.substr(eq + 1)));
      if (k == "aws_access_key_id") id = v;
      if (k == "aws_secret_access_key") secret = v;
      continue;
    }
    std::istringstream in(t);
    std::string a, b, extra;
    in >> a >> b >> extra;
    if (a.empty() || b.empty() || !extra.empty() || a.find('=') != std::string::npos) {
      return Status::InvalidArgument(where + "expected `ACCESS_KEY_ID SECRET_ACCESS_KEY`, got " +
                                     std::to_string(Split(t, ' ').size()) + " field(s)");
    }
    HPO_RETURN_IF_ERROR(add(a, b, n));
  }
  if (ini) HPO_RETURN_IF_ERROR(flush());
  if (c.keys_.empty()) return Status::InvalidArgument(source + ": no access keys found");
  return c;
}

std::optional<std::string> Credentials::SecretOf(const std::string& id) const {
  auto it = keys_.find(id);
  if (it == keys_.end()) return std::nullopt;
  return it->second;
}

}  // namespace hpo::coordinator::sigv4
