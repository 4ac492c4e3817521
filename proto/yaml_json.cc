// Text <-> tree: YAML and JSON parsing into nlohmann::ordered_json, and YAML writing.
#include <yaml-cpp/eventhandler.h>
#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <cctype>
#include <optional>
#include <regex>
#include <sstream>
#include <unordered_set>

#include "common/text.h"
#include "proto/codec.h"

namespace hpo::proto {

using Json = nlohmann::ordered_json;

namespace {

constexpr int kMaxDepth = 64;

// True when s is well-formed UTF-8 (JSON text, and so every document hpo writes, must be).
bool ValidUtf8(const std::string& s) {
  size_t i = 0, n = s.size();
  while (i < n) {
    unsigned char c = static_cast<unsigned char>(s[i]);
    size_t len = c < 0x80 ? 1 : (c >> 5) == 0x6 ? 2 : (c >> 4) == 0xE ? 3 : (c >> 3) == 0x1E ? 4 : 0;
    if (len == 0 || i + len > n) return false;
    uint32_t cp = len == 1 ? c : c & (0xFF >> (len + 1));
    for (size_t k = 1; k < len; ++k) {
      unsigned char cc = static_cast<unsigned char>(s[i + k]);
      if ((cc >> 6) != 0x2) return false;
      cp = (cp << 6) | (cc & 0x3F);
    }
    if ((len == 2 && cp < 0x80) || (len == 3 && cp < 0x800) || (len == 4 && (cp < 0x10000 || cp > 0x10FFFF)) ||
        (cp >= 0xD800 && cp <= 0xDFFF)) {
      return false;
    }
    i += len;
  }
  return true;
}

// yaml-cpp decodes the YAML escapes \N (U+0085) and \_ (U+00A0) to the code point's one Latin-1
// byte (0x85, 0xA0), not its UTF-8, and the text was refused as invalid UTF-8. In a document that
// is itself valid UTF-8 such a byte, outside any valid sequence, can only have come from one of
// those escapes: it is given its UTF-8 (C2 85, C2 A0). Anything else stays as it was.
std::string MendLatin1Escapes(const std::string& s) {
  std::string out;
  out.reserve(s.size() + 8);
  for (size_t i = 0; i < s.size();) {
    const unsigned char c = static_cast<unsigned char>(s[i]);
    if (c < 0x80) {
      out += s[i++];
      continue;
    }
    size_t len = (c >> 5) == 0x6 ? 2 : (c >> 4) == 0xE ? 3 : (c >> 3) == 0x1E ? 4 : 0;
    if (len > 0 && i + len <= s.size() && ValidUtf8(s.substr(i, len))) {
      out.append(s, i, len);
      i += len;
    } else if (c == 0x85 || c == 0xA0) {
      out += '\xC2';
      out += s[i++];
    } else {
      out += s[i++];
    }
  }
  return out;
}

Status NotUtf8(const YAML::Node& n) {
  return Status::InvalidArgument("line " + std::to_string(n.Mark().line + 1) + ": text is not valid UTF-8");
}

bool IsYamlNull(const std::string& s) { return s.empty() || s == "~" || s == "null" || s == "Null" || s == "NULL"; }

// What a YAML 1.1 reader (kubectl's, which turns a manifest into JSON before the API server
// checks it against the CRD's schema) types the plain scalar `s` as: "boolean", "integer",
// "number", or "" for text (nulls are handled apart; timestamps are left as text).
std::string Yaml11Kind(const std::string& s) {
  static const std::unordered_set<std::string> kBools = {"y",     "Y",     "yes", "Yes", "YES", "n",   "N",
                                                         "no",    "No",    "NO",  "true", "True", "TRUE", "false",
                                                         "False", "FALSE", "on",  "On",  "ON",  "off", "Off", "OFF"};
  if (kBools.count(s)) return "boolean";
  // Numbers begin with a digit, a sign or a point: most text is done here, without the regexes.
  if (s.empty() || s.size() > 64 || !(std::isdigit(static_cast<unsigned char>(s[0])) || s[0] == '+' || s[0] == '-' ||
                                      s[0] == '.')) {
    return "";
  }
  static const std::regex kInt("[-+]?(0b[01_]+|0x[0-9a-fA-F_]+|0o?[0-7_]+|0|[1-9][0-9_]*)");
  static const std::regex kFloat(
      "[-+]?((\\.[0-9][0-9_]*|[0-9][0-9_]*(\\.[0-9_]*)?)([eE][-+]?[0-9]+)?|\\.(inf|Inf|INF))|\\.(nan|NaN|NAN)");
  if (std::regex_match(s, kInt)) return "integer";
  if (std::regex_match(s, kFloat)) return "number";
  return "";
}

// What one document may expand to (kMaxDocumentNodes, kMaxDocumentTextBytes in codec.h). YAML
// aliases let a few hundred bytes name a tree of billions of nodes ("billion laughs"), and a 60 KB
// string named a thousand times is 60 MB; the conversion copies what an alias names, so it counts
// and stops long before the copies (here, in decoding and in re-encoding) add up.
struct ExpansionBudget {
  size_t nodes = 0, text_bytes = 0;
  bool source_utf8 = false;  // the document's text is valid UTF-8 (MendLatin1Escapes applies)
  Status Charge(size_t nodes_added, size_t bytes) {
    nodes += nodes_added;
    text_bytes += bytes;
    if (nodes > kMaxDocumentNodes || text_bytes > kMaxDocumentTextBytes) {
      return Status::InvalidArgument(
          "the YAML document expands to more than " + std::to_string(kMaxDocumentNodes) + " nodes or " +
          std::to_string(kMaxDocumentTextBytes >> 20) +
          " MiB of text (through aliases, e.g. *name references to &name anchors?); a tuning job spec is far "
          "smaller");
    }
    return Status::Ok();
  }
};

// YAML -> JSON. Plain scalars stay text (the model types them later), except null-like ones.
// Under `metadata` (opaque to the model) plain scalars get YAML's core-schema types instead.
// `path` names the node as the decoders do (keys joined by '.', list items as [i]); `kinds` (if
// given) gets TextTree::yaml_kinds' entries.
Status Convert(const YAML::Node& n, Json& out, bool infer, int depth, ExpansionBudget& budget, const std::string& path,
               std::map<std::string, std::string>* kinds, std::map<std::string, int>* lines = nullptr) {
  if (depth > kMaxDepth) return Status::InvalidArgument("YAML nesting deeper than 64 levels");
  HPO_RETURN_IF_ERROR(budget.Charge(1, n.IsScalar() ? n.Scalar().size() : 0));
  // Its line, unless its key's was noted (a mapping's value starts on the line after its key).
  if (lines && n.Mark().line >= 0) lines->emplace(path, n.Mark().line + 1);
  // Tags: YAML's own (!!str, !!int, ...) and none ("?" plain, "!" quoted) are read; any other was
  // dropped, so `roleARN: !GetAtt Role.Arn` read as the text "Role.Arn" and an error named the
  // value, not the tag.
  const std::string& tag = n.Tag();
  constexpr std::string_view kYamlTag = "tag:yaml.org,2002:";
  if (!tag.empty() && tag != "?" && tag != "!" && tag.rfind(kYamlTag, 0) != 0) {
    return Status::InvalidArgument(
        "line " + std::to_string(n.Mark().line + 1) + ", column " + std::to_string(n.Mark().column + 1) +
        ": the YAML tag " + tag + " is not supported: a tuning job's spec holds plain values. CloudFormation's "
        "!Ref, !Sub and !GetAtt are resolved by CloudFormation in its templates; write the value itself");
  }
  switch (n.Type()) {
    case YAML::NodeType::Null:
    case YAML::NodeType::Undefined:
      out = nullptr;
      return Status::Ok();
    case YAML::NodeType::Scalar: {
      std::string s = n.Scalar();
      if (!ValidUtf8(s) && budget.source_utf8) s = MendLatin1Escapes(s);
      if (!ValidUtf8(s)) return NotUtf8(n);
      bool plain = tag != "!" && tag != "tag:yaml.org,2002:str";  // !!str null is the text "null"
      if (kinds && !(plain && IsYamlNull(s))) {
        const std::string kind = Yaml11Kind(s);
        if (!kind.empty()) (*kinds)[path] = plain ? kind : "string";
      }
      if (plain && IsYamlNull(s)) {
        out = nullptr;
      } else if (plain && infer) {
        if (s == "true" || s == "True" || s == "TRUE") {
          out = true;
        } else if (s == "false" || s == "False" || s == "FALSE") {
          out = false;
        } else {
          Json parsed = Json::parse(s, nullptr, /*allow_exceptions=*/false);
          out = (parsed.is_number()) ? parsed : Json(s);
        }
      } else {
        out = s;
      }
      return Status::Ok();
    }
    case YAML::NodeType::Sequence:
      out = Json::array();
      for (const auto& e : n) {
        Json ej;
        HPO_RETURN_IF_ERROR(
            Convert(e, ej, infer, depth + 1, budget, path + "[" + std::to_string(out.size()) + "]", kinds, lines));
        out.push_back(std::move(ej));
      }
      return Status::Ok();
    case YAML::NodeType::Map: {
      // Appended in order, duplicates found through a set: ordered_json looks keys up by a linear
      // scan, and a map of thousands of keys named through aliases made that quadratic.
      out = Json::object();
      auto& object = out.get_ref<Json::object_t&>();
      std::unordered_set<std::string> seen;
      std::vector<Json> merges;  // the mappings a merge key (<<: *base) names, in order
      for (const auto& kv : n) {
        if (!kv.first.IsScalar()) {
          return Status::InvalidArgument("line " + std::to_string(kv.first.Mark().line + 1) +
                                         ": map keys must be plain strings");
        }
        std::string key = kv.first.Scalar();
        HPO_RETURN_IF_ERROR(budget.Charge(0, key.size()));
        if (!ValidUtf8(key) && budget.source_utf8) key = MendLatin1Escapes(key);
        if (!ValidUtf8(key)) return NotUtf8(kv.first);
        if (key == "<<" && kv.first.Tag() != "!") {
          Json source;
          HPO_RETURN_IF_ERROR(Convert(kv.second, source, infer, depth + 1, budget, path, kinds, nullptr));
          if (source.is_object()) {
            merges.push_back(std::move(source));
          } else if (source.is_array() && std::all_of(source.begin(), source.end(),
                                                      [](const Json& e) { return e.is_object(); })) {
            for (Json& e : source) merges.push_back(std::move(e));
          } else {
            return Status::InvalidArgument("line " + std::to_string(kv.first.Mark().line + 1) +
                                           ": a merge key (<<) takes a mapping or a list of mappings, e.g. <<: *base");
          }
          continue;
        }
        if (!seen.insert(key).second) {
          return Status::InvalidArgument("line " + std::to_string(kv.first.Mark().line + 1) +
                                         ": duplicate key \"" + key + "\"");
        }
        // A plain key kubectl's YAML 1.1 reader takes for a boolean (`on:`, `y:`): it sends the key
        // as "true" or "false" (a CRD pass: a hyperparameter named on became one named true).
        if (kinds && kv.first.Tag() != "!" && kv.first.Tag() != "tag:yaml.org,2002:str" &&
            Yaml11Kind(key) == "boolean") {
          (*kinds)[(path.empty() ? key : path + "." + key) + "#key"] = "boolean";
        }
        Json vj;
        bool child_infer = infer || (depth == 0 && key == "metadata");
        const std::string child = path.empty() ? key : path + "." + key;
        if (lines && kv.first.Mark().line >= 0) (*lines)[child] = kv.first.Mark().line + 1;
        HPO_RETURN_IF_ERROR(Convert(kv.second, vj, child_infer, depth + 1, budget, child, kinds, lines));
        object.emplace_back(key, std::move(vj));
      }
      // YAML's merge keys: the keys written in this mapping win, then the first merged mapping
      // that has the key.
      for (Json& source : merges) {
        for (auto& [key, value] : source.get_ref<Json::object_t&>()) {
          if (seen.insert(key).second) object.emplace_back(key, std::move(value));
        }
      }
      return Status::Ok();
    }
  }
  return Status::Internal("unknown YAML node type");
}

// True when s holds a character that a YAML reader must not see raw: C0 controls and DEL, NEL
// (U+0085), the line and paragraph separators (U+2028, U+2029) and the byte order mark (U+FEFF).
// Such text is written double-quoted with escapes.
bool NeedsEscapes(const std::string& s) {
  for (unsigned char c : s) {
    if (c < 0x20 || c == 0x7F) return true;
  }
  return s.find("\xC2\x85") != std::string::npos || s.find("\xE2\x80\xA8") != std::string::npos ||
         s.find("\xE2\x80\xA9") != std::string::npos || s.find("\xEF\xBB\xBF") != std::string::npos;
}

// YAML 1.1 timestamps (2001-12-14, 2001-12-14t21:59:43.10-05:00), which YAML 1.1 readers such
// as PyYAML and go-yaml v2 turn into dates: text starting YYYY-M-D.
bool LooksLikeDate(const std::string& s) {
  auto digits = [&](size_t& i, size_t lo, size_t hi) {
    size_t n = 0;
    while (i < s.size() && n < hi && std::isdigit(static_cast<unsigned char>(s[i]))) ++i, ++n;
    return n >= lo;
  };
  size_t i = 0;
  return digits(i, 4, 4) && i < s.size() && s[i++] == '-' && digits(i, 1, 2) && i < s.size() && s[i++] == '-' &&
         digits(i, 1, 2);
}

bool NeedsQuotes(const std::string& s) {
  if (s.empty() || IsYamlNull(s) || s == "=" || s == "<<" || NeedsEscapes(s) || LooksLikeDate(s)) return true;
  static const char* kWords[] = {"true", "false", "yes", "no", "on", "off", "y", "n"};
  const std::string lower = AsciiLower(s);
  for (const char* w : kWords) {
    if (lower == w) return true;
  }
  // Leading/trailing space.
  if (std::isspace(static_cast<unsigned char>(s.front())) || std::isspace(static_cast<unsigned char>(s.back()))) {
    return true;
  }
  // Anything YAML 1.1/1.2 could read as a number (ints, floats, hex, octal, .inf, .nan, 1_000).
  // Only text made of the characters the pattern uses can match, and only such text is given to
  // regex_match: libstdc++'s matcher recurses once per character, and a 60,000-digit string
  // overflowed the stack. Longer number-like text is quoted without asking, which is always safe
  // (a double-quoted scalar reads back as the same string).
  constexpr std::string_view kNumberChars = "0123456789abcdefABCDEFinoxINOX_.+-:";
  constexpr size_t kLongestMatched = 64;
  if (s.find_first_not_of(kNumberChars) != std::string::npos) return false;
  if (s.size() > kLongestMatched) return true;
  static const std::regex kNumber(
      // Signed hex, octal and base-60 forms too, and 0X/0O/0B (Go's and PyYAML's readers take
      // them): -0x1F and -1:30 went out unquoted and came back as -31 and -90.
      R"([-+]?(\.[0-9_]+|[0-9][0-9_]*(\.[0-9_]*)?)([eE][-+]?[0-9]+)?|[-+]?0[bB][01_]+|[-+]?0[xX][0-9a-fA-F_]+|[-+]?0[oO]?[0-7_]+|[-+]?\.(inf|Inf|INF)|\.(nan|NaN|NAN)|[-+]?[0-9][0-9_]*(:[0-5]?[0-9])+(\.[0-9_]*)?)");
  return std::regex_match(s, kNumber);
}

void Emit(YAML::Emitter& e, const Json& j) {
  switch (j.type()) {
    case Json::value_t::object:
      if (j.empty()) {
        e << YAML::Flow << YAML::BeginMap << YAML::EndMap;
        return;
      }
      e << YAML::BeginMap;
      for (auto it = j.begin(); it != j.end(); ++it) {
        e << YAML::Key;
        if (NeedsEscapes(it.key())) {
          e << YAML::EscapeNonAscii << YAML::DoubleQuoted << it.key() << YAML::EmitNonAscii;
        } else if (NeedsQuotes(it.key())) {
          e << YAML::DoubleQuoted << it.key();
        } else {
          e << it.key();
        }
        e << YAML::Value;
        Emit(e, it.value());
      }
      e << YAML::EndMap;
      return;
    case Json::value_t::array:
      if (j.empty()) {
        e << YAML::Flow << YAML::BeginSeq << YAML::EndSeq;
        return;
      }
      e << YAML::BeginSeq;
      for (const auto& v : j) Emit(e, v);
      e << YAML::EndSeq;
      return;
    case Json::value_t::string: {
      const std::string& s = j.get_ref<const std::string&>();
      if (NeedsEscapes(s)) {
        // yaml-cpp escapes C0 controls, U+0080-U+00A0 and U+FEFF in double quotes, but writes DEL
        // and U+2028/U+2029 raw unless asked to escape everything beyond ASCII.
        e << YAML::EscapeNonAscii << YAML::DoubleQuoted << s << YAML::EmitNonAscii;
      } else if (NeedsQuotes(s)) {
        e << YAML::DoubleQuoted << s;
      } else {
        e << s;
      }
      return;
    }
    case Json::value_t::null:
      e << YAML::Null;
      return;
    case Json::value_t::number_float: {
      // JSON's text is exact, but YAML 1.1 (PyYAML, kubectl) reads a float only with a '.'
      // before its exponent: 1e-07 came back as the string "1e-07". 1.0e-07 reads as a float
      // everywhere.
      std::string text = j.dump();
      if (const size_t exp = text.find_first_of("eE");
          exp != std::string::npos && text.find('.') == std::string::npos) {
        text.insert(exp, ".0");
      }
      e << text;
      return;
    }
    default:
      e << j.dump();  // integers and booleans: JSON's text is exact and valid YAML
      return;
  }
}

// Builds the tree for JSON text as nlohmann's DOM parser does, but refuses a repeated key (which
// the DOM parser resolves silently to the last value; YAML parsing refuses it too), nesting deeper
// than kMaxDepth and more than kMaxDocumentNodes values as soon as it sees them, and appends object
// members instead of looking each key up with ordered_json's linear scan (quadratic for an object
// of many keys).
class JsonBuilder : public nlohmann::json_sax<Json> {
 public:
  Json root;
  Status limit = Status::Ok();  // set when a limit stopped the parse
  std::optional<std::pair<size_t, std::string>> syntax_error;  // (byte offset, message)

  bool null() override { return Add(nullptr) != nullptr; }
  bool boolean(bool v) override { return Add(v) != nullptr; }
  bool number_integer(number_integer_t v) override { return Add(v) != nullptr; }
  bool number_unsigned(number_unsigned_t v) override { return Add(v) != nullptr; }
  bool number_float(number_float_t v, const string_t&) override { return Add(v) != nullptr; }
  bool string(string_t& v) override { return Add(std::move(v)) != nullptr; }
  bool binary(binary_t& v) override { return Add(Json::binary(std::move(v))) != nullptr; }
  bool start_object(std::size_t) override { return Open(Json::object()); }
  bool start_array(std::size_t) override { return Open(Json::array()); }
  bool end_object() override { return Close(); }
  bool end_array() override { return Close(); }
  bool key(string_t& k) override {
    auto& object = open_.back()->get_ref<Json::object_t&>();
    if (!keys_.back().insert(k).second) {
      const std::string where = OpenPath();
      limit = Status::InvalidArgument("duplicate key \"" + k + "\" in " +
                                      (where.empty() ? std::string("the top-level object") : where) +
                                      "; give each member once");
      return false;
    }
    object.emplace_back(std::move(k), nullptr);
    member_ = &object.back().second;
    return true;
  }
  bool parse_error(std::size_t position, const std::string&, const nlohmann::detail::exception& e) override {
    syntax_error.emplace(position, e.what());
    return false;
  }

 private:
  template <typename V>
  Json* Add(V&& v) {
    if (open_.size() > static_cast<size_t>(kMaxDepth)) {
      limit = Status::InvalidArgument("JSON nesting deeper than 64 levels");
      return nullptr;
    }
    if (++nodes_ > kMaxDocumentNodes) {
      limit = Status::InvalidArgument("the JSON document has more than " + std::to_string(kMaxDocumentNodes) +
                                      " nodes; a tuning job spec is far smaller");
      return nullptr;
    }
    if (open_.empty()) {
      root = Json(std::forward<V>(v));
      return &root;
    }
    if (open_.back()->is_array()) {
      auto& array = open_.back()->get_ref<Json::array_t&>();
      array.emplace_back(std::forward<V>(v));
      return &array.back();
    }
    *member_ = Json(std::forward<V>(v));
    return member_;
  }
  bool Open(Json container) {
    bool object = container.is_object();
    Json* added = Add(std::move(container));
    if (added == nullptr) return false;
    open_.push_back(added);
    if (object) keys_.emplace_back();
    return true;
  }
  bool Close() {
    if (open_.back()->is_object()) keys_.pop_back();
    open_.pop_back();
    return true;
  }

  // Where the innermost open container is, e.g. "A.B[2]": each enclosing object's last key, each
  // enclosing array's last index.
  std::string OpenPath() const {
    std::string path;
    for (size_t i = 0; i + 1 < open_.size(); ++i) {
      if (open_[i]->is_array()) {
        path += "[" + std::to_string(open_[i]->size() - 1) + "]";
      } else {
        const auto& object = open_[i]->get_ref<const Json::object_t&>();
        path += (path.empty() ? "" : ".") + object.back().first;
      }
    }
    return path;
  }

  std::vector<Json*> open_;  // the containers being filled, outermost first
  std::vector<std::unordered_set<std::string>> keys_;  // the keys of each open object
  Json* member_ = nullptr;  // where the value after a key goes
  size_t nodes_ = 0;
};

// Counts the YAML documents in `yaml` with yaml-cpp's event parser, which builds no nodes (and
// so does not expand aliases either).
//
// This replaces YAML::LoadAll, which in yaml-cpp 0.7 (Debian 12's) never returns on a document
// whose next token cannot start a node, e.g. a ',' outside brackets as in `"x",` or `[a], b`: the
// parser reports an empty document without consuming the token, LoadAll asks for the next one,
// gets the same empty document, and appends null nodes to its result until memory runs out
// (jbeder/yaml-cpp#1040; fixed upstream after 0.8.0 by jbeder/yaml-cpp#1319). A document always
// consumes at least one token, so two documents that start at the same offset mean the parser is
// stuck there: that is reported as malformed YAML at that line and column.
//
// Empty documents (nothing, or a lone null, between `---` separators: helm and kustomize output,
// a trailing `---`) are not counted, as kubectl skips them; `first` is the index among all
// documents of the first one with content.
// False when the scalar at text[pos] is quoted (' or ") and its quote is never closed. yaml-cpp
// takes such a value to run to the end of the file, without an error: `value: 'crd-test` on a
// tag swallowed the warmStartConfig after it, and the spec was valid without its warm start.
// (PyYAML and kubectl refuse it: "found unexpected end of stream".) In single quotes '' is a
// quote; in double quotes a backslash escapes the next character.
bool Closed(const std::string& text, size_t pos) {
  if (pos >= text.size() || (text[pos] != '\'' && text[pos] != '"')) return true;
  const char quote = text[pos];
  for (size_t i = pos + 1; i < text.size(); ++i) {
    if (quote == '"' && text[i] == '\\') {
      ++i;
    } else if (text[i] == quote) {
      if (quote == '\'' && i + 1 < text.size() && text[i + 1] == '\'') {
        ++i;
      } else {
        return true;
      }
    }
  }
  return false;
}

struct YamlDocuments {
  size_t with_content = 0;
  size_t first = 0;
};
Result<YamlDocuments> CountYamlDocuments(const std::string& yaml) {
  struct StartMarks : YAML::EventHandler {
    std::optional<YAML::Mark> start;
    bool content = false;
    void OnDocumentStart(const YAML::Mark& mark) override {
      start = mark;
      content = false;
    }
    void OnDocumentEnd() override {}
    void OnNull(const YAML::Mark&, YAML::anchor_t) override {}
    void OnAlias(const YAML::Mark&, YAML::anchor_t) override { content = true; }
    void OnScalar(const YAML::Mark& mark, const std::string&, YAML::anchor_t, const std::string&) override {
      content = true;
      if (!unclosed && mark.pos >= 0 && !Closed(*text, static_cast<size_t>(mark.pos))) unclosed = mark;
    }
    const std::string* text = nullptr;
    std::optional<YAML::Mark> unclosed;  // a quoted scalar with no closing quote
    void OnSequenceStart(const YAML::Mark&, const std::string&, YAML::anchor_t, YAML::EmitterStyle::value) override {
      content = true;
    }
    void OnSequenceEnd() override {}
    void OnMapStart(const YAML::Mark&, const std::string&, YAML::anchor_t, YAML::EmitterStyle::value) override {
      content = true;
    }
    void OnMapEnd() override {}
  };
  std::istringstream in(yaml);
  YAML::Parser parser(in);
  StartMarks marks;
  marks.text = &yaml;
  std::optional<int> previous_pos;
  YamlDocuments docs;
  size_t all = 0;
  while (parser.HandleNextDocument(marks)) {
    if (!marks.start) return Status::Internal("yaml-cpp reported a document without its start");
    const YAML::Mark& at = *marks.start;
    if (previous_pos && at.pos <= *previous_pos) {
      std::string what = "unexpected text";
      if (at.pos >= 0 && static_cast<size_t>(at.pos) < yaml.size() &&
          std::isgraph(static_cast<unsigned char>(yaml[at.pos]))) {
        what = std::string("unexpected '") + yaml[at.pos] + "'";
        if (yaml[at.pos] == ',') what += " outside a [flow sequence] or {flow map}";
      }
      return Status::InvalidArgument("malformed YAML at line " + std::to_string(at.line + 1) + ", column " +
                                     std::to_string(at.column + 1) + ": " + what);
    }
    if (marks.unclosed) {
      const char quote = yaml[static_cast<size_t>(marks.unclosed->pos)];
      return Status::InvalidArgument("malformed YAML at line " + std::to_string(marks.unclosed->line + 1) +
                                     ", column " + std::to_string(marks.unclosed->column + 1) +
                                     ": the value quoted with " + quote + " here is never closed (no closing " + quote +
                                     " before the end of the file): add it, or the rest of the file is read as "
                                     "part of this value");
    }
    previous_pos = at.pos;
    marks.start.reset();
    if (marks.content && docs.with_content++ == 0) docs.first = all;
    ++all;
  }
  return docs;
}

}  // namespace

namespace {

// " (line K is indented with a tab ...)" for the first line up to `line` (0-based) whose
// indentation holds a tab, which YAML does not allow; "" when none does. yaml-cpp's own message
// ("illegal map value") does not say so.
std::string TabHint(std::string_view text, int line) {
  int at = 0;
  for (size_t pos = 0; pos < text.size() && at <= line; ++at) {
    const size_t end = std::min(text.find('\n', pos), text.size());
    for (size_t i = pos; i < end && (text[i] == ' ' || text[i] == '\t'); ++i) {
      if (text[i] == '\t') {
        return " (line " + std::to_string(at + 1) + " is indented with a tab; YAML indents with spaces only)";
      }
    }
    pos = end + 1;
  }
  return "";
}

Result<TextTree> ParseYaml(std::string_view text) {
  try {
    const std::string yaml(text);
    Result<YamlDocuments> docs = CountYamlDocuments(yaml);
    if (!docs.ok()) return docs.status();
    if (docs->with_content == 0) return Status::InvalidArgument("the document is empty");
    size_t pick = docs->first;
    std::vector<YAML::Node> all;  // LoadAll only when needed: the count above found no place it sticks at
    if (docs->with_content > 1) {
      // A manifest as kubectl applies it: a Namespace (or a ConfigMap...) beside the tuning job.
      // The one HyperParameterTuningJob document is the spec; the others are not hpo's.
      all = YAML::LoadAll(yaml);
      std::vector<size_t> jobs;
      for (size_t i = 0; i < all.size(); ++i) {
        const YAML::Node& d = all[i];
        if (d.IsMap() && d["kind"] && d["kind"].IsScalar() && d["kind"].Scalar() == "HyperParameterTuningJob") {
          jobs.push_back(i);
        }
      }
      if (jobs.size() != 1) {
        return Status::InvalidArgument(
            "the file holds " + std::to_string(docs->with_content) + " YAML documents" +
            (jobs.empty() ? std::string(" and none is of kind HyperParameterTuningJob")
                          : ", " + std::to_string(jobs.size()) + " of them of kind HyperParameterTuningJob") +
            "; give one tuning job per file (other documents, such as a Namespace, may stand beside it)");
      }
      pick = jobs[0];
    }
    TextTree out;
    out.from_yaml = true;
    ExpansionBudget budget;
    budget.source_utf8 = ValidUtf8(yaml);
    if (all.empty() && pick != 0) all = YAML::LoadAll(yaml);  // past empty documents
    const YAML::Node root = all.empty() ? YAML::Load(yaml) : all.at(pick);
    HPO_RETURN_IF_ERROR(Convert(root, out.tree, false, 0, budget, "", &out.yaml_kinds, &out.yaml_lines));
    if (out.tree.is_null()) {
      return Status::InvalidArgument("the document is empty (or only null): a spec is a mapping of fields (YAML) or "
                                     "an object (JSON)");
    }
    return out;
  } catch (const YAML::Exception& e) {
    // yaml-cpp stops at about 500 levels of nesting with the message "bad file", which says
    // nothing of the kind.
    const std::string why = e.msg == YAML::ErrorMsg::BAD_FILE
                                ? "nesting deeper than the YAML parser allows (a tuning job's spec needs a few "
                                  "levels: check the indentation)"
                                : e.msg;
    return Status::InvalidArgument("malformed YAML at line " + std::to_string(e.mark.line + 1) + ", column " +
                                   std::to_string(e.mark.column + 1) + ": " + why + TabHint(text, e.mark.line));
  } catch (const std::exception& e) {
    return Status::InvalidArgument(std::string("malformed YAML: ") + e.what());
  }
}

}  // namespace

Result<TextTree> ParseText(std::string_view text) {
  if (text.size() > kMaxDocumentBytes) {
    return Status::InvalidArgument("the document is " + std::to_string(text.size()) + " bytes, more than the limit of " +
                                   std::to_string(kMaxDocumentBytes >> 20) +
                                   " MiB; a tuning job spec is a few KB");
  }
  // A UTF-8 byte-order mark (Notepad and PowerShell write one) is not part of the document:
  // left in, a JSON file was read as YAML, with YAML's looser types ("1" passed for an integer).
  if (text.starts_with("\xEF\xBB\xBF")) text.remove_prefix(3);
  if (text.starts_with("\xFF\xFE") || text.starts_with("\xFE\xFF")) {
    return Status::InvalidArgument("the document is UTF-16 (it starts with a UTF-16 byte-order mark); save it as "
                                   "UTF-8, as SageMaker requests and Kubernetes manifests are");
  }
  size_t first = text.find_first_not_of(" \t\r\n");
  if (first == std::string_view::npos) return Status::InvalidArgument("the document is empty");
  if (text.substr(first, 2) == "//" || text.substr(first, 2) == "/*") {
    return Status::InvalidArgument("the document starts with a comment (" + std::string(text.substr(first, 2)) +
                                   "), which JSON does not allow; remove it, or write the spec as YAML (# comments)");
  }
  if (text[first] != '{' && text[first] != '[') return ParseYaml(text);
  // YAML's flow style starts with a brace too: {name: x, spec: {...}}. A brace followed by an
  // unquoted key is such YAML; a quoted key or a bracket means JSON, read strictly (as YAML,
  // {"a": 1, "b": } would pass with b null).
  size_t next = text.find_first_not_of(" \t\r\n", first + 1);
  if (text[first] == '{' && next != std::string_view::npos && text[next] != '"' && text[next] != '}') {
    return ParseYaml(text);
  }
  auto json = ParseJson(text);
  if (!json.ok()) return json.status();
  return TextTree{std::move(json).value(), false, {}, {}};
}

Result<Json> ParseJson(std::string_view text) {
  if (text.size() > kMaxDocumentBytes) {
    return Status::InvalidArgument("the JSON text is " + std::to_string(text.size()) + " bytes, more than the limit of " +
                                   std::to_string(kMaxDocumentBytes >> 20) + " MiB");
  }
  JsonBuilder builder;
  bool parsed = Json::sax_parse(text.begin(), text.end(), &builder);
  if (!builder.limit.ok()) return builder.limit;
  if (parsed) return std::move(builder.root);
  if (!builder.syntax_error) return Status::InvalidArgument("malformed JSON");
  // The error's byte offset; turn it into line:column.
  auto [byte, what] = *builder.syntax_error;
  size_t line = 1, col = 1;
  for (size_t i = 0; i + 1 < byte && i < text.size(); ++i) {
    if (text[i] == '\n') {
      ++line;
      col = 1;
    } else {
      ++col;
    }
  }
  auto pos = what.find("syntax error");
  return Status::InvalidArgument("malformed JSON at line " + std::to_string(line) + ", column " + std::to_string(col) +
                                 ": " + (pos == std::string::npos ? what : what.substr(pos)));
}

std::string ToYaml(const Json& tree) {
  YAML::Emitter e;
  e.SetIndent(2);
  e.SetMapFormat(YAML::Block);
  e.SetSeqFormat(YAML::Block);
  Emit(e, tree);
  std::string out = e.c_str();
  if (out.empty() || out.back() != '\n') out += '\n';
  return out;
}

}  // namespace hpo::proto
