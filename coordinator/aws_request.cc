#include "coordinator/aws_request.h"

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstdlib>
#include <map>
#include <string_view>
#include <utility>

#include "common/text.h"
#include "proto/codec.h"

namespace hpo::coordinator {

namespace {

using Json = AwsRequest::Json;

std::string Dump(const Json& j) { return j.dump(-1, ' ', false, Json::error_handler_t::replace); }

// A query body's limits: a name of at most this many dotted parts (the deepest CloudWatch
// request, GetMetricData's dimension value, has 8) and list indexes up to this.
constexpr size_t kMaxQueryDepth = 16;
constexpr long kMaxQueryIndex = 100000;

// The times a timestamp member may name, in epoch seconds: 0000-01-01 to 9999-12-31T23:59:59.
constexpr double kEarliestSeconds = -62167219200.0;
constexpr double kLatestSeconds = 253402300799.0;

int HexValue(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

// application/x-www-form-urlencoded decoding: '+' is a space, %XX a byte.
std::optional<std::string> FormDecode(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '+') {
      out += ' ';
    } else if (s[i] == '%') {
      if (i + 2 >= s.size()) return std::nullopt;
      const int hi = HexValue(s[i + 1]), lo = HexValue(s[i + 2]);
      if (hi < 0 || lo < 0) return std::nullopt;
      out += static_cast<char>(hi * 16 + lo);
      i += 2;
    } else {
      out += s[i];
    }
  }
  return out;
}

// The tree a query body's names make before it becomes JSON.
struct QueryNode {
  std::optional<std::string> value;
  std::map<std::string, QueryNode> fields;
  std::map<long, QueryNode> items;  // `.member.N`, N from 1
};

std::string JoinName(const std::vector<std::string>& parts, size_t n) {
  std::string s;
  for (size_t i = 0; i < n && i < parts.size(); ++i) s += (i ? "." : "") + parts[i];
  return s;
}

// Converts `node` (named `name`) to JSON, or says what is wrong with the names under it.
std::optional<std::string> ToJson(const QueryNode& node, const std::string& name, Json* out) {
  const int kinds = (node.value ? 1 : 0) + (node.fields.empty() ? 0 : 1) + (node.items.empty() ? 0 : 1);
  if (kinds > 1) return name + " is given both as a value and as a structure or list";
  if (node.value) {
    *out = *node.value;
    return std::nullopt;
  }
  if (!node.items.empty()) {
    *out = Json::array();
    long expect = 1;
    for (const auto& [i, item] : node.items) {
      if (i != expect) return name + ".member." + std::to_string(expect) + " is missing before " + name + ".member." + std::to_string(i);
      Json j;
      if (auto e = ToJson(item, name + ".member." + std::to_string(i), &j)) return e;
      out->push_back(std::move(j));
      ++expect;
    }
    return std::nullopt;
  }
  *out = Json::object();
  for (const auto& [k, field] : node.fields) {
    Json j;
    if (auto e = ToJson(field, name.empty() ? k : name + "." + k, &j)) return e;
    (*out)[k] = std::move(j);
  }
  return std::nullopt;
}

std::string XmlEscape(std::string_view raw) {
  // An echoed name or value may hold bytes that are not UTF-8 (a message quotes the request): an
  // XML reader stops at them, so they become U+FFFD first.
  const std::string s = ReplaceInvalidUtf8(raw);
  std::string out;
  out.reserve(s.size());
  for (char c : s) {
    switch (c) {
      case '&': out += "&amp;"; break;
      case '<': out += "&lt;"; break;
      case '>': out += "&gt;"; break;
      case '"': out += "&quot;"; break;
      case '\'': out += "&apos;"; break;
      default:
        // XML 1.0 has no way to write other control characters, even escaped: U+FFFD instead.
        if (static_cast<unsigned char>(c) < 0x20 && c != '\t' && c != '\n' && c != '\r') {
          out += "\xEF\xBF\xBD";
        } else {
          out += c;
        }
    }
  }
  return out;
}

std::string XmlTimestamp(const Json& v) {
  if (!v.is_number()) return XmlEscape(v.is_string() ? v.get<std::string>() : Dump(v));
  return proto::FormatRfc3339(proto::Timestamp{static_cast<int64_t>(std::llround(v.get<double>() * 1000.0))});
}

// Writes `v`'s XML content: an object's members as elements, a list's items as <member>.
void WriteXml(const Json& v, bool timestamps, std::string* out) {
  if (v.is_object()) {
    for (auto it = v.begin(); it != v.end(); ++it) {
      if (it->is_null()) continue;
      const bool ts = it.key() == "Timestamp" || it.key() == "Timestamps";
      *out += "<" + it.key() + ">";
      WriteXml(*it, ts, out);
      *out += "</" + it.key() + ">";
    }
  } else if (v.is_array()) {
    for (const auto& e : v) {
      *out += "<member>";
      WriteXml(e, timestamps, out);
      *out += "</member>";
    }
  } else if (timestamps) {
    *out += XmlTimestamp(v);
  } else if (v.is_string()) {
    *out += XmlEscape(v.get<std::string>());
  } else if (v.is_boolean()) {
    *out += v.get<bool>() ? "true" : "false";
  } else {
    *out += Dump(v);
  }
}

}  // namespace

ApiResponse AwsJsonError(int status, const std::string& type, const std::string& message,
                         const std::string& content_type) {
  return {status, Dump({{"__type", type}, {"message", message}}), content_type};
}

ApiResponse AwsQueryError(int status, const std::string& type, const std::string& message, const std::string& xmlns) {
  return {status,
          "<ErrorResponse xmlns=\"" + XmlEscape(xmlns) + "\"><Error><Type>" + (status >= 500 ? "Receiver" : "Sender") +
              "</Type><Code>" + XmlEscape(type) + "</Code><Message>" + XmlEscape(message) +
              "</Message></Error></ErrorResponse>",
          "text/xml"};
}

AwsRequest::AwsRequest(const std::string& body, std::string content_type) : content_type_(std::move(content_type)) {
  if (auto bad = InvalidUtf8At(body)) {
    Fail("SerializationException", "the request body is not valid UTF-8 (byte offset " + std::to_string(*bad) + ")");
    return;
  }
  // The spec parser's limits (64 levels, 50,000 nodes, unique keys), as the SageMaker actions'.
  auto parsed = proto::ParseJson(body.empty() ? std::string_view("{}") : std::string_view(body));
  if (!parsed.ok()) {
    Fail("SerializationException", "the request body is not accepted JSON: " + parsed.status().message());
    return;
  }
  body_ = std::move(parsed).value();
  if (!body_.is_object()) {
    Fail("SerializationException", "the request body must be a JSON object");
    body_ = Json::object();
  }
}

AwsRequest AwsRequest::Query(const std::string& form, std::string xmlns) {
  AwsRequest r;
  r.query_ = true;
  r.content_type_ = "text/xml";
  r.xmlns_ = std::move(xmlns);
  auto malformed = [&](const std::string& why) {
    r.Fail("MalformedQueryString", why);
    return std::move(r);
  };
  QueryNode root;
  size_t pos = 0;
  while (pos <= form.size()) {
    size_t amp = form.find('&', pos);
    if (amp == std::string::npos) amp = form.size();
    std::string_view pair(form.data() + pos, amp - pos);
    pos = amp + 1;
    if (pair.empty()) continue;
    const size_t eq = pair.find('=');
    auto key = FormDecode(pair.substr(0, eq));
    auto value = FormDecode(eq == std::string_view::npos ? std::string_view() : pair.substr(eq + 1));
    if (!key || !value) return malformed("the request body is not form-encoded: a bad %-escape in \"" +
                                         std::string(pair.substr(0, 100)) + "\"");
    if (InvalidUtf8At(*key) || InvalidUtf8At(*value)) return malformed("the request body's names and values must be UTF-8");
    if (*key == "Action" || *key == "Version") {
      std::string& slot = *key == "Action" ? r.action_ : r.version_;
      if (!slot.empty()) return malformed(*key + " is given twice");
      slot = *value;
      continue;
    }
    // Counted before the name is split: a name of a million dots is refused, not split.
    if (static_cast<size_t>(std::count(key->begin(), key->end(), '.')) >= kMaxQueryDepth) {
      return malformed("the name " + key->substr(0, 100) + " has more than " + std::to_string(kMaxQueryDepth) + " parts");
    }
    std::vector<std::string> parts;
    for (size_t s = 0;;) {
      const size_t dot = key->find('.', s);
      parts.push_back(key->substr(s, dot == std::string::npos ? std::string::npos : dot - s));
      if (dot == std::string::npos) break;
      s = dot + 1;
    }
    QueryNode* node = &root;
    for (size_t i = 0; i < parts.size(); ++i) {
      if (parts[i].empty()) return malformed("the name \"" + key->substr(0, 100) + "\" has an empty part");
      if (parts[i] == "member" && i + 1 < parts.size()) {
        char* end = nullptr;
        errno = 0;
        const long n = std::strtol(parts[i + 1].c_str(), &end, 10);
        if (errno != 0 || *end != '\0' || n < 1 || n > kMaxQueryIndex || parts[i + 1][0] == '+' ||
            parts[i + 1][0] == '0') {
          return malformed("the name " + JoinName(parts, i + 2) + " needs a list index from 1 to " +
                           std::to_string(kMaxQueryIndex));
        }
        node = &node->items[n];
        ++i;
      } else {
        node = &node->fields[parts[i]];
      }
    }
    if (node->value) return malformed(*key + " is given twice");
    node->value = std::move(*value);
  }
  if (r.action_.empty()) return malformed("the request has no Action");
  if (auto e = ToJson(root, "", &r.body_)) return malformed(*e);
  return r;
}

void AwsRequest::Fail(const std::string& type, const std::string& message) {
  if (!error_) error_ = Error(type, message);
}

ApiResponse AwsRequest::Error(const std::string& type, const std::string& message, int status) const {
  return query_ ? AwsQueryError(status, type, message, xmlns_) : AwsJsonError(status, type, message, content_type_);
}

ApiResponse AwsRequest::Ok(const Json& answer) const {
  if (!query_) return {200, Dump(answer), content_type_};
  std::string xml = "<" + action_ + "Response xmlns=\"" + XmlEscape(xmlns_) + "\"><" + action_ + "Result>";
  WriteXml(answer, false, &xml);
  xml += "</" + action_ + "Result></" + action_ + "Response>";
  return {200, std::move(xml), content_type_};
}

std::string AwsRequest::Object::PathOf(const char* name) const {
  return path_.empty() ? std::string(name) : path_ + "." + name;
}

const Json* AwsRequest::Object::Member(const char* name, bool (*ok)(const Json&), const char* type) const {
  auto it = j_->find(name);
  if (it == j_->end() || it->is_null()) return nullptr;
  if (!ok(*it)) {
    if (r_->query_) {
      r_->Fail("MalformedQueryString", PathOf(name) + " must be " + type);
    } else {
      r_->Fail("SerializationException", "member " + PathOf(name) + " must be " + type + ", got " + it->type_name());
    }
    return nullptr;
  }
  return &*it;
}

std::optional<std::string> AwsRequest::Object::Text(const char* name, const char* type) const {
  const Json* v = Member(name, [](const Json& x) { return x.is_string(); }, type);
  return v ? std::optional<std::string>(v->get<std::string>()) : std::nullopt;
}

std::optional<std::string> AwsRequest::Object::String(const char* name) const {
  const Json* v = Member(name, [](const Json& x) { return x.is_string(); }, "a string");
  return v ? std::optional<std::string>(v->get<std::string>()) : std::nullopt;
}

std::optional<int64_t> AwsRequest::Object::Integer(const char* name) const {
  if (r_->query_) {
    auto text = Text(name, "an integer");
    if (!text) return std::nullopt;
    char* end = nullptr;
    errno = 0;
    const long long v = std::strtoll(text->c_str(), &end, 10);
    if (text->empty() || errno != 0 || *end != '\0') {
      r_->Fail("InvalidParameterValue", "The parameter " + PathOf(name) + " must be an integer, got \"" +
                                            text->substr(0, 100) + "\".");
      return std::nullopt;
    }
    return static_cast<int64_t>(v);
  }
  const Json* v = Member(name, [](const Json& x) { return x.is_number_integer(); }, "an integer");
  return v ? std::optional<int64_t>(v->get<int64_t>()) : std::nullopt;
}

std::optional<double> AwsRequest::Object::Number(const char* name) const {
  if (r_->query_) {
    auto text = Text(name, "a number");
    if (!text) return std::nullopt;
    char* end = nullptr;
    const double v = std::strtod(text->c_str(), &end);
    if (text->empty() || *end != '\0' || !std::isfinite(v)) {
      r_->Fail("InvalidParameterValue", "The parameter " + PathOf(name) + " must be a number, got \"" +
                                            text->substr(0, 100) + "\".");
      return std::nullopt;
    }
    return v;
  }
  const Json* v = Member(name, [](const Json& x) { return x.is_number(); }, "a number");
  return v ? std::optional<double>(v->get<double>()) : std::nullopt;
}

std::optional<double> AwsRequest::Object::Timestamp(const char* name) const {
  if (r_->query_) {
    auto text = Text(name, "a timestamp");
    if (!text) return std::nullopt;
    auto t = proto::ParseRfc3339(*text);
    if (!t.ok()) {
      r_->Fail("InvalidParameterValue", "The parameter " + PathOf(name) + " must be a time, " + t.status().message());
      return std::nullopt;
    }
    return static_cast<double>(t->unix_millis) / 1000.0;
  }
  const Json* v = Member(name, [](const Json& x) { return x.is_number(); }, "a timestamp (epoch seconds)");
  if (!v) return std::nullopt;
  // Years 0000 to 9999, as RFC 3339 writes them: a caller's arithmetic in milliseconds stays in
  // range (1e300 seconds would overflow any integer it became).
  const double seconds = v->get<double>();
  if (!(seconds >= kEarliestSeconds && seconds <= kLatestSeconds)) {
    r_->Fail("InvalidParameterValue", "The parameter " + PathOf(name) + " must be a time from the year 0000 to 9999 "
                                          "in epoch seconds, got " + Dump(*v) + ".");
    return std::nullopt;
  }
  return seconds;
}

std::optional<bool> AwsRequest::Object::Bool(const char* name) const {
  if (r_->query_) {
    auto text = Text(name, "true or false");
    if (!text) return std::nullopt;
    if (*text == "true") return true;
    if (*text == "false") return false;
    r_->Fail("InvalidParameterValue", "The parameter " + PathOf(name) + " must be true or false, got \"" +
                                          text->substr(0, 100) + "\".");
    return std::nullopt;
  }
  const Json* v = Member(name, [](const Json& x) { return x.is_boolean(); }, "a boolean");
  return v ? std::optional<bool>(v->get<bool>()) : std::nullopt;
}

std::optional<std::vector<std::string>> AwsRequest::Object::Strings(const char* name) const {
  // A query request writes an empty list as `Name=`.
  if (r_->query_ && j_->contains(name) && (*j_)[name] == "") return std::vector<std::string>{};
  const Json* v = Member(name, [](const Json& x) { return x.is_array(); }, "a list of strings");
  if (!v) return std::nullopt;
  std::vector<std::string> out;
  for (const auto& e : *v) {
    if (!e.is_string()) {
      r_->Fail(r_->query_ ? "MalformedQueryString" : "SerializationException",
               "member " + PathOf(name) + " must hold strings");
      return std::nullopt;
    }
    out.push_back(e.get<std::string>());
  }
  return out;
}

std::optional<AwsRequest::Object> AwsRequest::Object::Structure(const char* name) const {
  const Json* v = Member(name, [](const Json& x) { return x.is_object(); }, "a structure");
  if (!v) return std::nullopt;
  return Object(r_, v, PathOf(name));
}

std::optional<std::vector<AwsRequest::Object>> AwsRequest::Object::Structures(const char* name) const {
  if (r_->query_ && j_->contains(name) && (*j_)[name] == "") return std::vector<Object>{};
  const Json* v = Member(name, [](const Json& x) { return x.is_array(); }, "a list of structures");
  if (!v) return std::nullopt;
  std::vector<Object> out;
  for (size_t i = 0; i < v->size(); ++i) {
    const std::string path = r_->query_ ? PathOf(name) + ".member." + std::to_string(i + 1)
                                        : PathOf(name) + "[" + std::to_string(i) + "]";
    if (!(*v)[i].is_object()) {
      r_->Fail(r_->query_ ? "MalformedQueryString" : "SerializationException", "member " + path + " must be a structure");
      return std::nullopt;
    }
    out.push_back(Object(r_, &(*v)[i], path));
  }
  return out;
}

}  // namespace hpo::coordinator
