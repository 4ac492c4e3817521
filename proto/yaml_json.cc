// Text <-> tree: YAML and JSON parsing into nlohmann::ordered_json, and YAML writing.
#include <yaml-cpp/yaml.h>

#include <cctype>
#include <regex>

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

Status NotUtf8(const YAML::Node& n) {
  return Status::InvalidArgument("line " + std::to_string(n.Mark().line + 1) + ": text is not valid UTF-8");
}

bool IsYamlNull(const std::string& s) { return s.empty() || s == "~" || s == "null" || s == "Null" || s == "NULL"; }

// YAML -> JSON. Plain scalars stay text (the model types them later), except null-like ones.
// Under `metadata` (opaque to the model) plain scalars get YAML's core-schema types instead.
// What one document may expand to. YAML aliases let a few hundred bytes name a tree of
// billions of nodes ("billion laughs"); the conversion copies what an alias names, so it counts
// and stops long before memory runs out. A real tuning job is a few hundred nodes.
struct ExpansionBudget {
  static constexpr size_t kMaxNodes = 1'000'000;
  static constexpr size_t kMaxScalarBytes = 64u << 20;
  size_t nodes = 0, scalar_bytes = 0;
  Status Charge(size_t bytes) {
    if (++nodes > kMaxNodes || (scalar_bytes += bytes) > kMaxScalarBytes) {
      return Status::InvalidArgument(
          "the YAML document expands to more than 1000000 nodes or 64 MiB of text (through aliases, "
          "e.g. *name references to &name anchors?); a tuning job spec is far smaller");
    }
    return Status::Ok();
  }
};

Status Convert(const YAML::Node& n, Json& out, bool infer, int depth, ExpansionBudget& budget) {
  if (depth > kMaxDepth) return Status::InvalidArgument("YAML nesting deeper than 64 levels");
  HPO_RETURN_IF_ERROR(budget.Charge(n.IsScalar() ? n.Scalar().size() : 0));
  switch (n.Type()) {
    case YAML::NodeType::Null:
    case YAML::NodeType::Undefined:
      out = nullptr;
      return Status::Ok();
    case YAML::NodeType::Scalar: {
      const std::string& s = n.Scalar();
      if (!ValidUtf8(s)) return NotUtf8(n);
      bool plain = n.Tag() != "!";
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
        HPO_RETURN_IF_ERROR(Convert(e, ej, infer, depth + 1, budget));
        out.push_back(std::move(ej));
      }
      return Status::Ok();
    case YAML::NodeType::Map:
      out = Json::object();
      for (const auto& kv : n) {
        if (!kv.first.IsScalar()) {
          return Status::InvalidArgument("line " + std::to_string(kv.first.Mark().line + 1) +
                                         ": map keys must be plain strings");
        }
        const std::string key = kv.first.Scalar();
        if (!ValidUtf8(key)) return NotUtf8(kv.first);
        if (out.contains(key)) {
          return Status::InvalidArgument("line " + std::to_string(kv.first.Mark().line + 1) +
                                         ": duplicate key \"" + key + "\"");
        }
        Json vj;
        bool child_infer = infer || (depth == 0 && key == "metadata");
        HPO_RETURN_IF_ERROR(Convert(kv.second, vj, child_infer, depth + 1, budget));
        out[key] = std::move(vj);
      }
      return Status::Ok();
  }
  return Status::Internal("unknown YAML node type");
}

bool NeedsQuotes(const std::string& s) {
  if (s.empty() || IsYamlNull(s)) return true;
  static const char* kWords[] = {"true", "false", "yes", "no", "on", "off", "y", "n"};
  std::string lower;
  for (char ch : s) lower += static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
  for (const char* w : kWords) {
    if (lower == w) return true;
  }
  // Anything YAML 1.1/1.2 could read as a number (ints, floats, hex, octal, .inf, .nan, 1_000).
  static const std::regex kNumber(
      R"([-+]?(\.[0-9]+|[0-9][0-9_]*(\.[0-9_]*)?)([eE][-+]?[0-9]+)?|0x[0-9a-fA-F_]+|0o?[0-7_]+|[-+]?\.(inf|Inf|INF)|\.(nan|NaN|NAN)|[0-9][0-9_]*(:[0-5]?[0-9])+(\.[0-9_]*)?)");
  if (std::regex_match(s, kNumber)) return true;
  // Leading/trailing space or characters that start YAML syntax.
  if (std::isspace(static_cast<unsigned char>(s.front())) || std::isspace(static_cast<unsigned char>(s.back()))) {
    return true;
  }
  return false;
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
        if (NeedsQuotes(it.key())) {
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
      if (NeedsQuotes(s)) {
        e << YAML::DoubleQuoted << s;
      } else {
        e << s;
      }
      return;
    }
    case Json::value_t::null:
      e << YAML::Null;
      return;
    default:
      e << j.dump();  // numbers and booleans: JSON's text is exact and valid YAML
      return;
  }
}

}  // namespace

Result<TextTree> ParseText(std::string_view text) {
  size_t first = text.find_first_not_of(" \t\r\n");
  if (first == std::string_view::npos) return Status::InvalidArgument("the document is empty");
  if (text[first] == '{' || text[first] == '[') {
    Json j;
    try {
      j = Json::parse(text.begin(), text.end());
    } catch (const nlohmann::json::parse_error& e) {
      // e.byte is the offset; turn it into line:column.
      size_t line = 1, col = 1;
      for (size_t i = 0; i + 1 < e.byte && i < text.size(); ++i) {
        if (text[i] == '\n') {
          ++line;
          col = 1;
        } else {
          ++col;
        }
      }
      std::string what = e.what();
      auto pos = what.find("syntax error");
      return Status::InvalidArgument("malformed JSON at line " + std::to_string(line) + ", column " +
                                     std::to_string(col) + ": " +
                                     (pos == std::string::npos ? what : what.substr(pos)));
    }
    // Bound nesting depth so hostile input cannot exhaust the stack of later walkers.
    std::vector<std::pair<const Json*, int>> stack{{&j, 0}};
    while (!stack.empty()) {
      auto [node, d] = stack.back();
      stack.pop_back();
      if (d > kMaxDepth) return Status::InvalidArgument("JSON nesting deeper than 64 levels");
      if (node->is_structured()) {
        for (const auto& c : *node) stack.push_back({&c, d + 1});
      }
    }
    return TextTree{std::move(j), false};
  }
  try {
    std::vector<YAML::Node> docs = YAML::LoadAll(std::string(text));
    if (docs.empty()) return Status::InvalidArgument("the document is empty");
    if (docs.size() > 1) {
      return Status::InvalidArgument("the file holds " + std::to_string(docs.size()) +
                                     " YAML documents; give one tuning job per file");
    }
    TextTree out;
    out.from_yaml = true;
    ExpansionBudget budget;
    HPO_RETURN_IF_ERROR(Convert(docs[0], out.tree, false, 0, budget));
    if (out.tree.is_null()) return Status::InvalidArgument("the document is empty");
    return out;
  } catch (const YAML::Exception& e) {
    return Status::InvalidArgument("malformed YAML at line " + std::to_string(e.mark.line + 1) + ", column " +
                                   std::to_string(e.mark.column + 1) + ": " + e.msg);
  } catch (const std::exception& e) {
    return Status::InvalidArgument(std::string("malformed YAML: ") + e.what());
  }
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
