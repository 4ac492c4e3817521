#include "coordinator/event_pattern.h"

#include <algorithm>
#include <string_view>
#include <utility>
#include <vector>

namespace hpo::coordinator {

namespace {

using Json = nlohmann::ordered_json;

constexpr int kMaxDepth = 10;
constexpr const char* kSupported =
    "supported: prefix, suffix, anything-but, exists, numeric, equals-ignore-case, wildcard (and $or between "
    "fields)";

enum class Cmp { kLess, kLessOrEqual, kEqual, kGreater, kGreaterOrEqual };

// One element of a leaf's array: a literal or a content filter.
struct Filter {
  enum class Kind { kString, kNumber, kBool, kNull, kPrefix, kSuffix, kEqualsIgnoreCase, kWildcard, kAnythingBut,
                    kNumeric, kExists };
  Kind kind = Kind::kNull;
  std::string text;                              // kString, kPrefix, kSuffix, kEqualsIgnoreCase, kWildcard
  bool ignore_case = false;                      // kPrefix, kSuffix: {"prefix": {"equals-ignore-case": ...}}
  double number = 0;                             // kNumber
  bool flag = false;                             // kBool: the value; kExists: true or false
  std::vector<Filter> excluded;                  // kAnythingBut: literals, or string filters (prefix, ...)
  std::vector<std::pair<Cmp, double>> bounds;    // kNumeric
};

}  // namespace

struct EventPattern::Node {
  struct Field {
    std::string key;
    std::unique_ptr<Node> nested;  // the pattern's value is an object
    std::vector<Filter> any_of;    // otherwise: the array's elements
  };
  std::vector<Field> fields;
  std::vector<std::unique_ptr<Node>> any_of;  // "$or": one of these must match too (none: no $or)
};

namespace {

using Node = EventPattern::Node;

Status Error(const std::string& path, const std::string& what) {
  return Status::InvalidArgument("event pattern" + (path.empty() ? std::string() : " at " + path) + ": " + what);
}

std::string Child(const std::string& path, const std::string& key) { return path.empty() ? key : path + "." + key; }
std::string Element(const std::string& path, size_t i) { return path + "[" + std::to_string(i) + "]"; }

// "a string", "an array", ...: what a JSON value is, for messages.
std::string KindOf(const Json& j) {
  if (j.is_object()) return "an object";
  if (j.is_array()) return "an array";
  if (j.is_string()) return "a string";
  if (j.is_boolean()) return "a boolean";
  if (j.is_number()) return "a number";
  return "null";
}

Result<Filter> Literal(const Json& j) {
  Filter f;
  if (j.is_string()) {
    f.kind = Filter::Kind::kString;
    f.text = j.get<std::string>();
  } else if (j.is_number()) {
    f.kind = Filter::Kind::kNumber;
    f.number = j.get<double>();
  } else if (j.is_boolean()) {
    f.kind = Filter::Kind::kBool;
    f.flag = j.get<bool>();
  } else if (j.is_null()) {
    f.kind = Filter::Kind::kNull;
  } else {
    return Status::InvalidArgument("not a literal");
  }
  return f;
}

Result<std::string> StringOperand(const Json& j, const std::string& path, const char* name) {
  if (!j.is_string()) return Error(path, std::string(name) + " takes a string, not " + KindOf(j));
  // As EventBridge refuses it ("consecutive wildcard characters are not allowed").
  if (std::string_view(name) == "wildcard" && j.get<std::string>().find("**") != std::string::npos) {
    return Error(path, "wildcard takes no two * in a row (EventBridge refuses them): one * stands for any run of "
                       "characters");
  }
  return j.get<std::string>();
}

// prefix / suffix: a string, or {"equals-ignore-case": "s"}.
Result<Filter> ParseAffix(const Json& x, const std::string& where, const std::string& name) {
  Filter f;
  f.kind = name == "prefix" ? Filter::Kind::kPrefix : Filter::Kind::kSuffix;
  if (x.is_object()) {
    if (x.size() != 1 || !x.contains("equals-ignore-case"))
      return Error(where, name + " takes a string, or {\"equals-ignore-case\": \"...\"}");
    auto s = StringOperand(x["equals-ignore-case"], Child(where, "equals-ignore-case"), "equals-ignore-case");
    if (!s.ok()) return s.status();
    f.text = std::move(s).value();
    f.ignore_case = true;
    return f;
  }
  auto s = StringOperand(x, where, name.c_str());
  if (!s.ok()) return s.status();
  f.text = std::move(s).value();
  return f;
}

Result<Filter> ParseAnythingBut(const Json& x, const std::string& path) {
  Filter f;
  f.kind = Filter::Kind::kAnythingBut;
  auto literal = [&](const Json& j, const std::string& where) -> Status {
    if (!j.is_string() && !j.is_number())
      return Error(where, "anything-but takes strings and numbers, not " + KindOf(j));
    f.excluded.push_back(*Literal(j));
    return Status::Ok();
  };
  if (x.is_object()) {
    static const char* const kInner[] = {"prefix", "suffix", "equals-ignore-case", "wildcard"};
    const bool known = x.size() == 1 && std::any_of(std::begin(kInner), std::end(kInner),
                                                    [&](const char* k) { return x.begin().key() == k; });
    if (!known)
      return Error(path, "anything-but takes a string, a number, an array of them, or one of {\"prefix\": \"...\"}, "
                         "{\"suffix\": \"...\"}, {\"equals-ignore-case\": \"...\" or [...]}, {\"wildcard\": \"...\" or "
                         "[...]}");
    const std::string name = x.begin().key();
    const Json& operand = x.begin().value();
    const std::string where = Child(path, name);
    if (name == "prefix" || name == "suffix") {
      auto s = StringOperand(operand, where, name.c_str());
      if (!s.ok()) return s.status();
      Filter p;
      p.kind = name == "prefix" ? Filter::Kind::kPrefix : Filter::Kind::kSuffix;
      p.text = std::move(s).value();
      f.excluded.push_back(std::move(p));
      return f;
    }
    // equals-ignore-case and wildcard: one string or a non-empty array of them.
    const Filter::Kind kind = name == "wildcard" ? Filter::Kind::kWildcard : Filter::Kind::kEqualsIgnoreCase;
    auto add = [&](const Json& j, const std::string& at) -> Status {
      auto s = StringOperand(j, at, name.c_str());
      if (!s.ok()) return s.status();
      Filter e;
      e.kind = kind;
      e.text = std::move(s).value();
      f.excluded.push_back(std::move(e));
      return Status::Ok();
    };
    if (operand.is_array()) {
      if (operand.empty()) return Error(where, name + " takes a non-empty array");
      for (size_t i = 0; i < operand.size(); ++i) HPO_RETURN_IF_ERROR(add(operand[i], Element(where, i)));
    } else {
      HPO_RETURN_IF_ERROR(add(operand, where));
    }
  } else if (x.is_array()) {
    if (x.empty()) return Error(path, "anything-but takes a non-empty array");
    for (size_t i = 0; i < x.size(); ++i) HPO_RETURN_IF_ERROR(literal(x[i], Element(path, i)));
    // As EventBridge refuses it: one kind per list.
    if (std::any_of(x.begin(), x.end(), [](const Json& j) { return j.is_string(); }) &&
        std::any_of(x.begin(), x.end(), [](const Json& j) { return j.is_number(); })) {
      return Error(path, "anything-but takes a list of strings or a list of numbers, not both (EventBridge refuses "
                         "the mix)");
    }
  } else {
    HPO_RETURN_IF_ERROR(literal(x, path));
  }
  return f;
}

Result<Filter> ParseNumeric(const Json& x, const std::string& path) {
  if (!x.is_array() || (x.size() != 2 && x.size() != 4))
    return Error(path, "numeric takes [op, number] or [op, number, op, number] (ops <, <=, =, >, >=)");
  static const std::pair<const char*, Cmp> kOps[] = {
      {"<", Cmp::kLess}, {"<=", Cmp::kLessOrEqual}, {"=", Cmp::kEqual}, {">", Cmp::kGreater}, {">=", Cmp::kGreaterOrEqual}};
  Filter f;
  f.kind = Filter::Kind::kNumeric;
  for (size_t i = 0; i < x.size(); i += 2) {
    const Json& op = x[i];
    auto it = std::find_if(std::begin(kOps), std::end(kOps),
                           [&](const auto& o) { return op.is_string() && op.get<std::string>() == o.first; });
    if (it == std::end(kOps)) return Error(Element(path, i), "numeric operator must be one of <, <=, =, >, >=");
    if (!x[i + 1].is_number()) return Error(Element(path, i + 1), "numeric takes a number, not " + KindOf(x[i + 1]));
    f.bounds.emplace_back(it->second, x[i + 1].get<double>());
  }
  // Two comparisons are a range, as EventBridge takes them: a lower bound (> or >=) and an upper
  // one (< or <=); "=" stands alone.
  if (f.bounds.size() == 2) {
    auto lower = [](Cmp c) { return c == Cmp::kGreater || c == Cmp::kGreaterOrEqual; };
    auto upper = [](Cmp c) { return c == Cmp::kLess || c == Cmp::kLessOrEqual; };
    const Cmp a = f.bounds[0].first, b = f.bounds[1].first;
    if (!((lower(a) && upper(b)) || (upper(a) && lower(b)))) {
      return Error(path, "numeric with two comparisons is a range: one of > or >= and one of < or <= (\"=\" stands "
                         "alone), as EventBridge takes it");
    }
  }
  return f;
}

Result<Filter> ParseContentFilter(const Json& obj, const std::string& path) {
  if (obj.size() != 1) return Error(path, "a content filter is an object with exactly one key; " + std::string(kSupported));
  const std::string& name = obj.begin().key();
  const Json& x = obj.begin().value();
  const std::string where = Child(path, name);
  Filter f;
  if (name == "prefix" || name == "suffix") return ParseAffix(x, where, name);
  if (name == "equals-ignore-case" || name == "wildcard") {
    auto s = StringOperand(x, where, name.c_str());
    if (!s.ok()) return s.status();
    f.kind = name == "wildcard" ? Filter::Kind::kWildcard : Filter::Kind::kEqualsIgnoreCase;
    f.text = std::move(s).value();
    return f;
  }
  if (name == "anything-but") return ParseAnythingBut(x, where);
  if (name == "numeric") return ParseNumeric(x, where);
  if (name == "exists") {
    if (!x.is_boolean()) return Error(where, "exists takes true or false, not " + KindOf(x));
    f.kind = Filter::Kind::kExists;
    f.flag = x.get<bool>();
    return f;
  }
  return Error(path, "unsupported content filter \"" + name + "\"; " + kSupported);
}

Status ParseObject(const Json& j, const std::string& path, int depth, Node* out) {
  if (depth > kMaxDepth) return Error(path, "nested deeper than " + std::to_string(kMaxDepth) + " levels");
  if (j.empty()) return Error(path, "an empty object matches nothing; give at least one field");
  for (const auto& [key, value] : j.items()) {
    const std::string where = Child(path, key);
    if (key == "$or") {
      // Alternatives at this level: each an object pattern of its own; one of them must match.
      if (!value.is_array() || value.size() < 2)
        return Error(where, "$or takes an array of at least two patterns (objects), e.g. "
                            "[{\"TrainingJobStatus\": [\"Failed\"]}, {\"SecondaryStatus\": [\"Stopped\"]}]");
      for (size_t i = 0; i < value.size(); ++i) {
        if (!value[i].is_object()) return Error(Element(where, i), "$or takes objects, not " + KindOf(value[i]));
        auto alt = std::make_unique<Node>();
        HPO_RETURN_IF_ERROR(ParseObject(value[i], Element(where, i), depth + 1, alt.get()));
        out->any_of.push_back(std::move(alt));
      }
      continue;
    }
    Node::Field field;
    field.key = key;
    if (value.is_object()) {
      field.nested = std::make_unique<Node>();
      HPO_RETURN_IF_ERROR(ParseObject(value, where, depth + 1, field.nested.get()));
    } else if (!value.is_array()) {
      return Error(where, "must be an array of values to match (or an object), not " + KindOf(value));
    } else if (value.empty()) {
      return Error(where, "an empty array matches nothing");
    } else {
      for (size_t i = 0; i < value.size(); ++i) {
        const Json& e = value[i];
        Result<Filter> f = e.is_object() ? ParseContentFilter(e, Element(where, i)) : Literal(e);
        if (!f.ok() && e.is_object()) return f.status();
        if (!f.ok())
          return Error(Element(where, i), "an element must be a string, number, boolean, null or content filter "
                                          "object, not " + KindOf(e));
        field.any_of.push_back(std::move(f).value());
      }
    }
    out->fields.push_back(std::move(field));
  }
  return Status::Ok();
}

// ---- matching

bool LowerEquals(std::string_view a, std::string_view b) {
  auto lower = [](char c) { return c >= 'A' && c <= 'Z' ? static_cast<char>(c - 'A' + 'a') : c; };
  return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin(), [&](char x, char y) { return lower(x) == lower(y); });
}

bool HasPrefix(std::string_view s, std::string_view p, bool ignore_case) {
  return s.size() >= p.size() && (ignore_case ? LowerEquals(s.substr(0, p.size()), p) : s.starts_with(p));
}
bool HasSuffix(std::string_view s, std::string_view p, bool ignore_case) {
  return s.size() >= p.size() && (ignore_case ? LowerEquals(s.substr(s.size() - p.size()), p) : s.ends_with(p));
}

// `s` matches `p`, * in `p` standing for any run of characters (greedy with backtracking to the
// last star: linear in practice, O(|p|*|s|) at worst).
bool Wildcard(std::string_view p, std::string_view s) {
  size_t pi = 0, si = 0, star = std::string_view::npos, mark = 0;
  while (si < s.size()) {
    if (pi < p.size() && p[pi] == '*') {
      star = pi++;
      mark = si;
    } else if (pi < p.size() && p[pi] == s[si]) {
      ++pi, ++si;
    } else if (star != std::string_view::npos) {
      pi = star + 1;
      si = ++mark;
    } else {
      return false;
    }
  }
  while (pi < p.size() && p[pi] == '*') ++pi;
  return pi == p.size();
}

bool Compare(Cmp c, double v, double bound) {
  switch (c) {
    case Cmp::kLess: return v < bound;
    case Cmp::kLessOrEqual: return v <= bound;
    case Cmp::kEqual: return v == bound;
    case Cmp::kGreater: return v > bound;
    case Cmp::kGreaterOrEqual: return v >= bound;
  }
  return false;
}

// Whether one value (not an array: the caller takes arrays apart) matches `f` (not kExists).
bool ValueMatches(const Filter& f, const Json& v) {
  const std::string* s = v.is_string() ? &v.get_ref<const std::string&>() : nullptr;
  switch (f.kind) {
    case Filter::Kind::kString: return s && *s == f.text;
    case Filter::Kind::kNumber: return v.is_number() && v.get<double>() == f.number;
    case Filter::Kind::kBool: return v.is_boolean() && v.get<bool>() == f.flag;
    case Filter::Kind::kNull: return v.is_null();
    case Filter::Kind::kPrefix: return s && HasPrefix(*s, f.text, f.ignore_case);
    case Filter::Kind::kSuffix: return s && HasSuffix(*s, f.text, f.ignore_case);
    case Filter::Kind::kEqualsIgnoreCase: return s && LowerEquals(*s, f.text);
    case Filter::Kind::kWildcard: return s && Wildcard(f.text, *s);
    case Filter::Kind::kAnythingBut:
      return (s || v.is_number()) &&
             std::none_of(f.excluded.begin(), f.excluded.end(), [&](const Filter& e) { return ValueMatches(e, v); });
    case Filter::Kind::kNumeric:
      return v.is_number() && std::all_of(f.bounds.begin(), f.bounds.end(), [&](const auto& b) {
               return Compare(b.first, v.get<double>(), b.second);
             });
    case Filter::Kind::kExists: return false;
  }
  return false;
}

// Present, for exists: in the event and a leaf (not an object, not an array without a leaf).
bool Present(const Json* v) {
  if (!v || v->is_object()) return false;
  if (!v->is_array()) return true;
  return std::any_of(v->begin(), v->end(), [](const Json& e) { return !e.is_object(); });
}

bool LeafMatches(const std::vector<Filter>& any_of, const Json* v) {
  for (const Filter& f : any_of) {
    if (f.kind == Filter::Kind::kExists) {
      if (Present(v) == f.flag) return true;
    } else if (v && v->is_array()) {
      if (std::any_of(v->begin(), v->end(), [&](const Json& e) { return ValueMatches(f, e); })) return true;
    } else if (v && ValueMatches(f, *v)) {
      return true;
    }
  }
  return false;
}

bool NodeMatches(const Node& node, const Json* obj);

// A nested pattern against the event's field `v`: an object is matched as it is; an array, as
// EventBridge does (array-consistent): when one of its objects (at any depth of arrays) matches the
// whole nested pattern, so that two fields never match from different elements. Anything else, and
// an array holding no object, is an absent object.
bool NestedMatches(const Node& node, const Json* v) {
  if (v && v->is_array()) {
    bool objects = false;
    for (const Json& e : *v) {
      if (!e.is_object() && !e.is_array()) continue;
      objects = true;
      if (NestedMatches(node, &e)) return true;
    }
    return !objects && NodeMatches(node, nullptr);
  }
  return NodeMatches(node, v && v->is_object() ? v : nullptr);
}

// `obj` is the event's object at this level, or null where the event has none.
bool NodeMatches(const Node& node, const Json* obj) {
  for (const Node::Field& field : node.fields) {
    const Json* v = nullptr;
    if (obj) {
      auto it = obj->find(field.key);
      if (it != obj->end()) v = &*it;
    }
    bool ok = field.nested ? NestedMatches(*field.nested, v) : LeafMatches(field.any_of, v);
    if (!ok) return false;
  }
  return node.any_of.empty() ||
         std::any_of(node.any_of.begin(), node.any_of.end(), [&](const auto& alt) { return NodeMatches(*alt, obj); });
}

}  // namespace

Result<EventPattern> EventPattern::Parse(const std::string& text) {
  Json j;
  try {
    j = Json::parse(text);
  } catch (const nlohmann::json::exception& e) {
    return Status::InvalidArgument(std::string("event pattern: not JSON: ") + e.what());
  }
  if (!j.is_object()) return Error("", "must be a JSON object, not " + KindOf(j));
  auto root = std::make_shared<Node>();
  HPO_RETURN_IF_ERROR(ParseObject(j, "", 1, root.get()));
  EventPattern p;
  p.text_ = text;
  p.root_ = std::move(root);
  return p;
}

bool EventPattern::Matches(const nlohmann::ordered_json& event) const {
  return NodeMatches(*root_, event.is_object() ? &event : nullptr);
}

}  // namespace hpo::coordinator
