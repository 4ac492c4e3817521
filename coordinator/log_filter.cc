#include "coordinator/log_filter.h"

#include <algorithm>
#include <cctype>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <utility>
#include <variant>
#include <vector>

#include <re2/re2.h>
#include <nlohmann/json.hpp>

#include "common/text.h"

namespace hpo::coordinator {
namespace {

using Json = nlohmann::json;

bool IsSpace(char c) { return c == ' ' || c == '\t'; }

// `*` matches any run of characters, everything else itself.
bool Glob(std::string_view pattern, std::string_view text) {
  size_t p = 0, t = 0, star = std::string_view::npos, mark = 0;
  while (t < text.size()) {
    if (p < pattern.size() && pattern[p] == '*') {
      star = p++, mark = t;
    } else if (p < pattern.size() && pattern[p] == text[t]) {
      ++p, ++t;
    } else if (star != std::string_view::npos) {
      p = star + 1, t = ++mark;
    } else {
      return false;
    }
  }
  while (p < pattern.size() && pattern[p] == '*') ++p;
  return p == pattern.size();
}

// ---- the value a comparison reads ---------------------------------------------------------------

struct Scalar {
  enum Kind { kMissing, kText, kNumber, kBool, kNull, kComposite } kind = kMissing;
  std::string text;  // kText: the string; kNumber: as JSON writes it; kBool: true / false
  double number = 0;
  bool truth = false;
};

Scalar FromJson(const Json* j) {
  Scalar s;
  if (j == nullptr) return s;
  if (j->is_string()) {
    s.kind = Scalar::kText, s.text = j->get<std::string>();
  } else if (j->is_number()) {
    s.kind = Scalar::kNumber, s.number = j->get<double>(), s.text = j->dump();
  } else if (j->is_boolean()) {
    s.kind = Scalar::kBool, s.truth = j->get<bool>(), s.text = s.truth ? "true" : "false";
  } else if (j->is_null()) {
    s.kind = Scalar::kNull;
  } else {
    s.kind = Scalar::kComposite;
  }
  return s;
}

// ---- expressions: comparisons joined by && and || ----------------------------------------------

enum class Op { kEq, kNe, kLt, kGt, kLe, kGe, kIsTrue, kIsFalse, kIsNull, kNotExists, kPresent };

struct Comparison {
  std::string selector;  // "$.a[0].b" (JSON) or a field name (space-delimited)
  std::vector<std::variant<std::string, size_t>> path;  // JSON: the selector's steps
  Op op = Op::kPresent;                                 // kPresent: a bare field name, no condition
  std::string text;                                     // = / != against text (a glob)
  std::optional<double> number;                         // numeric comparisons
  std::shared_ptr<const re2::RE2> regex;                // = / != against %regex%
};

struct Node {
  enum Kind { kCompare, kAnd, kOr } kind = kCompare;
  Comparison compare;
  std::vector<Node> children;
};

bool Evaluate(const Comparison& c, const Scalar& v) {
  switch (c.op) {
    case Op::kPresent:
      return v.kind != Scalar::kMissing;
    case Op::kNotExists:
      return v.kind == Scalar::kMissing;
    case Op::kIsTrue:
      return v.kind == Scalar::kBool && v.truth;
    case Op::kIsFalse:
      return v.kind == Scalar::kBool && !v.truth;
    case Op::kIsNull:
      return v.kind == Scalar::kNull;
    default:
      break;
  }
  if (c.number) {
    std::optional<double> x;
    if (v.kind == Scalar::kNumber) x = v.number;
    if (v.kind == Scalar::kText) x = ParseDecimal(v.text);
    if (!x) return false;
    switch (c.op) {
      case Op::kEq:
        return *x == *c.number;
      case Op::kNe:
        return *x != *c.number;
      case Op::kLt:
        return *x < *c.number;
      case Op::kGt:
        return *x > *c.number;
      case Op::kLe:
        return *x <= *c.number;
      case Op::kGe:
        return *x >= *c.number;
      default:
        return false;
    }
  }
  if (v.kind != Scalar::kText && v.kind != Scalar::kNumber && v.kind != Scalar::kBool) return false;
  const bool hit = c.regex ? re2::RE2::PartialMatch(v.text, *c.regex) : Glob(c.text, v.text);
  return c.op == Op::kEq ? hit : !hit;
}

bool Evaluate(const Node& n, const std::function<Scalar(const Comparison&)>& read) {
  switch (n.kind) {
    case Node::kCompare:
      return Evaluate(n.compare, read(n.compare));
    case Node::kAnd:
      for (const Node& c : n.children) {
        if (!Evaluate(c, read)) return false;
      }
      return true;
    case Node::kOr:
      for (const Node& c : n.children) {
        if (Evaluate(c, read)) return true;
      }
      return false;
  }
  return false;
}

// ---- the expression lexer and parser ----------------------------------------------------------

struct Token {
  enum Kind { kEnd, kLParen, kRParen, kAnd, kOr, kOp, kWord, kQuoted, kRegex } kind = kEnd;
  std::string text;
};

class Parser {
 public:
  // `what` names the pattern kind in messages; `json` selects selectors ($.a.b) over names;
  // `base` is where `text` starts in the whole pattern (the offsets messages give).
  Parser(std::string_view text, std::string what, bool json, size_t base)
      : text_(text), what_(std::move(what)), json_(json), base_(base) {}

  Result<Node> ParseAll() {
    auto n = ParseOr();
    if (!n.ok()) return n.status();
    const Token& rest = Peek();
    if (!bad_.empty()) return Error(bad_);
    if (rest.kind == Token::kOp) {
      return Error("unexpected " + Describe(rest) +
                   " (a value holding = < > ! & | ( ) % or spaces is written \"in quotes\")");
    }
    if (rest.kind != Token::kEnd) return Error("unexpected " + Describe(rest));
    return n;
  }
  // The selectors (names) the expression reads, in order: the first is a space-delimited field's
  // name.
  const std::vector<std::string>& selectors() const { return selectors_; }

 private:
  Status Error(const std::string& why) const { return Status::InvalidArgument(what_ + ": " + why); }

  static std::string Describe(const Token& t) {
    switch (t.kind) {
      case Token::kEnd:
        return "end of pattern";
      case Token::kQuoted:
        return "\"" + t.text + "\"";
      case Token::kRegex:
        return "%" + t.text + "%";
      default:
        return "`" + t.text + "`";
    }
  }

  const Token& Peek() {
    if (!peeked_) {
      next_ = Lex();
      peeked_ = true;
    }
    return next_;
  }
  Token Take() {
    Peek();
    peeked_ = false;
    return next_;
  }

  Token Lex() {
    while (pos_ < text_.size() && IsSpace(text_[pos_])) ++pos_;
    Token t;
    if (pos_ >= text_.size()) return t;
    const char c = text_[pos_];
    auto two = [&](std::string_view s) { return text_.substr(pos_, 2) == s; };
    if (c == '(' || c == ')') {
      t.kind = c == '(' ? Token::kLParen : Token::kRParen, t.text = std::string(1, c), ++pos_;
    } else if (two("&&") || two("||")) {
      t.kind = c == '&' ? Token::kAnd : Token::kOr, t.text = std::string(text_.substr(pos_, 2)),
      pos_ += 2;
    } else if (two("!=") || two("<=") || two(">=")) {
      t.kind = Token::kOp, t.text = std::string(text_.substr(pos_, 2)), pos_ += 2;
    } else if (c == '=' || c == '<' || c == '>') {
      t.kind = Token::kOp, t.text = std::string(1, c), ++pos_;
    } else if (c == '"') {
      t.kind = Token::kQuoted;
      size_t i = pos_ + 1;
      for (; i < text_.size() && text_[i] != '"'; ++i) {
        if (text_[i] == '\\' && i + 1 < text_.size()) ++i;
        t.text += text_[i];
      }
      if (i >= text_.size()) {
        t.kind = Token::kEnd;  // bad_ is reported by the caller
        bad_ = "a quoted string starting at offset " + std::to_string(base_ + pos_) +
               " has no closing quote";
        pos_ = text_.size();
        return t;
      }
      pos_ = i + 1;
    } else if (c == '%') {
      const size_t close = text_.find('%', pos_ + 1);
      if (close == std::string_view::npos) {
        bad_ = "a %regex% starting at offset " + std::to_string(base_ + pos_) + " has no closing %";
        pos_ = text_.size();
        return t;
      }
      t.kind = Token::kRegex, t.text = std::string(text_.substr(pos_ + 1, close - pos_ - 1)),
      pos_ = close + 1;
    } else {
      t.kind = Token::kWord;
      size_t i = pos_;
      while (i < text_.size() && !IsSpace(text_[i]) &&
             std::string_view("()=!<>&|\"%").find(text_[i]) == std::string_view::npos) {
        ++i;
      }
      if (i == pos_) {  // a lone ! or & or |
        bad_ = "unexpected `" + std::string(1, c) + "` at offset " + std::to_string(base_ + pos_) +
               " (operators: = != < > <= >= && || IS TRUE IS FALSE IS NULL NOT EXISTS)";
        pos_ = text_.size();
        return t;
      }
      t.text = std::string(text_.substr(pos_, i - pos_)), pos_ = i;
    }
    return t;
  }

  Result<Node> ParseOr() { return ParseJoined(Token::kOr); }
  Result<Node> ParseAnd() { return ParseJoined(Token::kAnd); }

  Result<Node> ParseJoined(Token::Kind joiner) {
    std::vector<Node> parts;
    while (true) {
      auto n = joiner == Token::kOr ? ParseAnd() : ParseUnary();
      if (!n.ok()) return n.status();
      parts.push_back(std::move(*n));
      if (Peek().kind != joiner) break;
      Take();
    }
    if (parts.size() == 1) return std::move(parts[0]);
    Node n;
    n.kind = joiner == Token::kOr ? Node::kOr : Node::kAnd;
    n.children = std::move(parts);
    return n;
  }

  Result<Node> ParseUnary() {
    if (!bad_.empty()) return Error(bad_);
    if (Peek().kind == Token::kLParen) {
      Take();
      auto n = ParseOr();
      if (!n.ok()) return n;
      if (Peek().kind != Token::kRParen)
        return Error(bad_.empty() ? "expected `)`, found " + Describe(Peek()) : bad_);
      Take();
      return n;
    }
    return ParseComparison();
  }

  Result<Node> ParseComparison() {
    Token sel = Take();
    if (!bad_.empty()) return Error(bad_);
    if (sel.kind != Token::kWord) {
      return Error("expected " + std::string(json_ ? "a selector ($.name)" : "a field name") +
                   ", found " + Describe(sel));
    }
    Node n;
    Comparison& c = n.compare;
    c.selector = sel.text;
    if (json_) {
      HPO_RETURN_IF_ERROR(ParseSelector(sel.text, &c.path));
    } else if (!ValidName(sel.text)) {
      return Error("`" + sel.text +
                   "` is not a field name (letters, digits and _, not starting with a digit)");
    }
    const Token& next = Peek();
    if (!bad_.empty()) return Error(bad_);
    if (next.kind == Token::kWord && (Upper(next.text) == "IS" || Upper(next.text) == "NOT")) {
      const std::string first = Upper(Take().text);
      const Token second = Take();
      const std::string word = second.kind == Token::kWord ? Upper(second.text) : "";
      if (first == "IS" && word == "TRUE") {
        c.op = Op::kIsTrue;
      } else if (first == "IS" && word == "FALSE") {
        c.op = Op::kIsFalse;
      } else if (first == "IS" && word == "NULL") {
        c.op = Op::kIsNull;
      } else if (first == "NOT" && word == "EXISTS") {
        c.op = Op::kNotExists;
      } else {
        return Error("after " + c.selector + " " + first + ", expected " +
                     (first == "IS" ? "TRUE, FALSE or NULL" : "EXISTS") + ", found " +
                     Describe(second));
      }
      selectors_.push_back(c.selector);
      return n;
    }
    if (next.kind != Token::kOp) {
      if (!json_) {  // a field named, no condition
        c.op = Op::kPresent;
        selectors_.push_back(c.selector);
        return n;
      }
      return Error("expected an operator after " + c.selector +
                   " (= != < > <= >= IS TRUE IS FALSE IS NULL NOT EXISTS), "
                   "found " +
                   Describe(next));
    }
    const std::string op = Take().text;
    const Token value = Take();
    if (!bad_.empty()) return Error(bad_);
    static const std::map<std::string, Op> kOps = {{"=", Op::kEq},  {"!=", Op::kNe},
                                                   {"<", Op::kLt},  {">", Op::kGt},
                                                   {"<=", Op::kLe}, {">=", Op::kGe}};
    c.op = kOps.at(op);
    const bool equality = c.op == Op::kEq || c.op == Op::kNe;
    if (value.kind == Token::kWord) {
      c.number = ParseDecimal(value.text);
      if (!c.number) c.text = value.text;
    } else if (value.kind == Token::kQuoted) {
      c.text = value.text;
    } else if (value.kind == Token::kRegex) {
      auto re = std::make_shared<re2::RE2>(value.text, re2::RE2::Quiet);
      if (!re->ok())
        return Error("%" + value.text + "% is not a regular expression RE2 reads: " + re->error());
      c.regex = std::move(re);
    } else {
      return Error("expected a value after " + c.selector + " " + op + ", found " +
                   Describe(value));
    }
    if (!equality && !c.number) {
      return Error("`" + op + "` compares numbers, and " + Describe(value) + " is not one");
    }
    selectors_.push_back(c.selector);
    return n;
  }

  Status ParseSelector(const std::string& s,
                       std::vector<std::variant<std::string, size_t>>* path) const {
    auto bad = [&](const std::string& why) {
      return Error("selector `" + s + "`: " + why +
                   " (write $.name, $.name.inner or $.list[0].name)");
    };
    if (s.size() < 2 || s[0] != '$' || (s[1] != '.' && s[1] != '['))
      return bad("a selector starts with $. or $[");
    size_t i = 1;
    while (i < s.size()) {
      if (s[i] == '.') {
        size_t j = i + 1;
        while (j < s.size() && s[j] != '.' && s[j] != '[') ++j;
        if (j == i + 1) return bad("an empty name");
        std::string name = s.substr(i + 1, j - i - 1);
        if (name == "*") return bad("wildcard selectors are not supported");
        path->emplace_back(std::move(name));
        i = j;
      } else if (s[i] == '[') {
        const size_t close = s.find(']', i);
        if (close == std::string::npos) return bad("a [ without ]");
        const std::string index = s.substr(i + 1, close - i - 1);
        if (index.empty() || index.find_first_not_of("0123456789") != std::string::npos ||
            index.size() > 9) {
          return bad("an array index is a number, not `" + index + "`");
        }
        path->emplace_back(static_cast<size_t>(std::stoul(index)));
        i = close + 1;
      } else {
        return bad("unexpected `" + std::string(1, s[i]) + "`");
      }
    }
    return Status::Ok();
  }

  static bool ValidName(const std::string& s) {
    if (s.empty() || (s[0] >= '0' && s[0] <= '9')) return false;
    for (char ch : s) {
      if (!std::isalnum(static_cast<unsigned char>(ch)) && ch != '_') return false;
    }
    return true;
  }
  static std::string Upper(std::string s) {
    for (char& ch : s) ch = static_cast<char>(std::toupper(static_cast<unsigned char>(ch)));
    return s;
  }

  std::string_view text_;
  std::string what_;
  bool json_;
  size_t base_;
  size_t pos_ = 0;
  bool peeked_ = false;
  Token next_;
  std::string bad_;  // a lexing error, reported at the next parse step
  std::vector<std::string> selectors_;
};

// ---- the four kinds -------------------------------------------------------------------------

struct Terms {
  std::vector<std::string> all, none, any;
};

struct Delimited {
  struct Field {
    bool ellipsis = false;
    std::string name;
    std::optional<Node> condition;  // absent: the name alone
    size_t named_after = 0;         // named fields after this one
    bool ellipsis_after = false;    // a ... after this one
  };
  std::vector<Field> fields;
};

// The message's space-delimited fields: runs between spaces or tabs, a "quoted" or [bracketed]
// run one field without its quotes or brackets (to the end of the message when unclosed).
std::vector<std::string_view> SplitFields(std::string_view m) {
  std::vector<std::string_view> out;
  size_t i = 0;
  while (i < m.size()) {
    if (IsSpace(m[i])) {
      ++i;
      continue;
    }
    if (m[i] == '"' || m[i] == '[') {
      const size_t close = m.find(m[i] == '"' ? '"' : ']', i + 1);
      const size_t end = close == std::string_view::npos ? m.size() : close;
      out.push_back(m.substr(i + 1, end - i - 1));
      i = close == std::string_view::npos ? m.size() : close + 1;
      continue;
    }
    size_t j = i;
    while (j < m.size() && !IsSpace(m[j])) ++j;
    out.push_back(m.substr(i, j - i));
    i = j;
  }
  return out;
}

// Splits the inside of [ ... ] at commas outside quotes, %regex% and parentheses.
std::vector<std::string_view> SplitEntries(std::string_view s) {
  std::vector<std::string_view> out;
  size_t start = 0, depth = 0;
  char in = 0;
  for (size_t i = 0; i < s.size(); ++i) {
    const char c = s[i];
    if (in) {
      if (c == '\\' && in == '"' && i + 1 < s.size()) {
        ++i;
      } else if (c == in) {
        in = 0;
      }
    } else if (c == '"' || c == '%') {
      in = c;
    } else if (c == '(') {
      ++depth;
    } else if (c == ')') {
      depth = depth > 0 ? depth - 1 : 0;
    } else if (c == ',' && depth == 0) {
      out.push_back(s.substr(start, i - start));
      start = i + 1;
    }
  }
  out.push_back(s.substr(start));
  return out;
}

}  // namespace

struct LogFilter::Impl {
  enum Kind { kTerms, kRegex, kJson, kDelimited } kind = kTerms;
  Terms terms;
  std::unique_ptr<re2::RE2> regex;
  Node json;
  Delimited delimited;
  // The pattern names a control character as CloudWatch shows it ("#011"): matched against
  // that form of the message (EscapeControlCharacters).
  bool escaped_form = false;

  bool Matches(std::string_view m) const;
  bool MatchFields(const std::vector<std::string_view>& fields, size_t pi, size_t fi,
                   std::map<std::string, std::string_view>* bound) const;
};

bool LogFilter::Impl::MatchFields(const std::vector<std::string_view>& fields, size_t pi, size_t fi,
                                  std::map<std::string, std::string_view>* bound) const {
  const auto& pattern = delimited.fields;
  if (pi == pattern.size()) {
    if (fi != fields.size()) return false;
    auto read = [&](const Comparison& c) {
      Scalar s;
      if (auto it = bound->find(c.selector); it != bound->end())
        s.kind = Scalar::kText, s.text = std::string(it->second);
      return s;
    };
    for (const auto& f : pattern) {
      if (f.condition && !Evaluate(*f.condition, read)) return false;
    }
    return true;
  }
  const auto& f = pattern[pi];
  if (f.ellipsis) {
    if (fields.size() < fi + f.named_after) return false;
    // The last ... takes exactly what the named fields after it leave: a line of n fields is
    // tried n ways at most (two ...), not n squared.
    if (!f.ellipsis_after) return MatchFields(fields, pi + 1, fields.size() - f.named_after, bound);
    for (size_t next = fi; next + f.named_after <= fields.size(); ++next) {
      if (MatchFields(fields, pi + 1, next, bound)) return true;
    }
    return false;
  }
  if (fi >= fields.size()) return false;
  (*bound)[f.name] = fields[fi];
  return MatchFields(fields, pi + 1, fi + 1, bound);
}

bool LogFilter::Impl::Matches(std::string_view m) const {
  switch (kind) {
    case kTerms: {
      auto has = [&](const std::string& t) { return m.find(t) != std::string_view::npos; };
      for (const auto& t : terms.all) {
        if (!has(t)) return false;
      }
      for (const auto& t : terms.none) {
        if (has(t)) return false;
      }
      return terms.any.empty() || std::any_of(terms.any.begin(), terms.any.end(), has);
    }
    case kRegex:
      return re2::RE2::PartialMatch(re2::StringPiece(m.data(), m.size()), *regex);
    case kJson: {
      const std::string_view t = TrimSpace(m);
      if (t.empty() || (t.front() != '{' && t.front() != '[')) return false;
      const Json doc = Json::parse(t, nullptr, /*allow_exceptions=*/false);
      if (doc.is_discarded()) return false;
      auto read = [&](const Comparison& c) {
        const Json* at = &doc;
        for (const auto& step : c.path) {
          if (const auto* name = std::get_if<std::string>(&step)) {
            if (!at->is_object()) return Scalar{};
            auto it = at->find(*name);
            if (it == at->end()) return Scalar{};
            at = &*it;
          } else {
            const size_t index = std::get<size_t>(step);
            if (!at->is_array() || index >= at->size()) return Scalar{};
            at = &(*at)[index];
          }
        }
        return FromJson(at);
      };
      return Evaluate(json, read);
    }
    case kDelimited: {
      const std::vector<std::string_view> fields = SplitFields(m);
      std::map<std::string, std::string_view> bound;
      return MatchFields(fields, 0, 0, &bound);
    }
  }
  return false;
}

Result<LogFilter> LogFilter::Parse(std::string_view pattern) {
  // CloudWatch's own bound, which also bounds the parser's recursion (one level per parenthesis).
  if (pattern.size() > kMaxPatternBytes) {
    return Status::InvalidArgument(
        "a filter pattern is at most " + std::to_string(kMaxPatternBytes) +
        " characters, as in CloudWatch Logs; this one has " + std::to_string(pattern.size()));
  }
  auto impl = std::make_shared<Impl>();
  for (size_t i = 0; i + 3 < pattern.size() && !impl->escaped_form; ++i) {
    impl->escaped_form = pattern[i] == '#' && pattern[i + 1] >= '0' && pattern[i + 1] <= '3' && pattern[i + 2] >= '0' &&
                         pattern[i + 2] <= '7' && pattern[i + 3] >= '0' && pattern[i + 3] <= '7';
  }
  const std::string_view p = TrimSpace(pattern);
  if (!p.empty() && p.front() == '{') {
    if (p.back() != '}')
      return Status::InvalidArgument("JSON pattern: it starts with { and must end with }");
    Parser parser(p.substr(1, p.size() - 2), "JSON pattern", /*json=*/true,
                  static_cast<size_t>(p.data() - pattern.data()) + 1);
    auto n = parser.ParseAll();
    if (!n.ok()) return n.status();
    impl->kind = Impl::kJson, impl->json = std::move(*n);
    return LogFilter(std::move(impl));
  }
  if (!p.empty() && p.front() == '[') {
    if (p.back() != ']')
      return Status::InvalidArgument(
          "space-delimited pattern: it starts with [ and must end with ]");
    Delimited d;
    int ellipses = 0;
    std::map<std::string, size_t> names;
    std::vector<std::string> read;  // every name a condition reads
    for (std::string_view entry : SplitEntries(p.substr(1, p.size() - 2))) {
      entry = TrimSpace(entry);
      Delimited::Field f;
      const std::string where =
          "space-delimited pattern, field " + std::to_string(d.fields.size() + 1);
      if (entry == "...") {
        f.ellipsis = true;
        if (++ellipses > 2)
          return Status::InvalidArgument(where + ": at most two `...` in a pattern");
      } else if (entry.empty()) {
        return Status::InvalidArgument(where + ": empty (write a name, name = value, or ...)");
      } else {
        Parser parser(entry, where, /*json=*/false,
                      static_cast<size_t>(entry.data() - pattern.data()));
        auto n = parser.ParseAll();
        if (!n.ok()) return n.status();
        f.name = parser.selectors().front();
        if (!names.emplace(f.name, d.fields.size()).second) {
          return Status::InvalidArgument(where + ": the name `" + f.name +
                                         "` is already a field's");
        }
        read.insert(read.end(), parser.selectors().begin(), parser.selectors().end());
        // A bare name is no condition; a name with conditions keeps the whole expression.
        if (!(n->kind == Node::kCompare && n->compare.op == Op::kPresent))
          f.condition = std::move(*n);
      }
      d.fields.push_back(std::move(f));
    }
    for (const std::string& name : read) {
      if (!names.count(name)) {
        return Status::InvalidArgument("space-delimited pattern: a condition reads `" + name +
                                       "`, which is no field's name");
      }
    }
    size_t named = 0;
    bool ellipsis = false;
    for (auto f = d.fields.rbegin(); f != d.fields.rend(); ++f) {
      f->named_after = named, f->ellipsis_after = ellipsis;
      ellipsis = ellipsis || f->ellipsis;
      named += f->ellipsis ? 0 : 1;
    }
    impl->kind = Impl::kDelimited, impl->delimited = std::move(d);
    return LogFilter(std::move(impl));
  }
  if (p.size() >= 2 && p.front() == '%' && p.back() == '%') {
    auto re = std::make_unique<re2::RE2>(std::string(p.substr(1, p.size() - 2)), re2::RE2::Quiet);
    if (!re->ok())
      return Status::InvalidArgument("regex pattern: RE2 cannot read it: " + re->error());
    impl->kind = Impl::kRegex, impl->regex = std::move(re);
    return LogFilter(std::move(impl));
  }
  Terms& t = impl->terms;
  size_t i = 0;
  while (i < p.size()) {
    if (IsSpace(p[i])) {
      ++i;
      continue;
    }
    std::vector<std::string>* into = &t.all;
    if (p[i] == '-' || p[i] == '?') into = p[i++] == '-' ? &t.none : &t.any;
    std::string term;
    if (i < p.size() && p[i] == '"') {
      const size_t close = p.find('"', i + 1);
      if (close == std::string_view::npos) {
        return Status::InvalidArgument("term pattern: the quoted term at offset " +
                                       std::to_string(i) + " has no closing quote");
      }
      term = std::string(p.substr(i + 1, close - i - 1));
      i = close + 1;
    } else {
      size_t end = i;
      while (end < p.size() && !IsSpace(p[end])) ++end;
      term = std::string(p.substr(i, end - i));
      i = end;
    }
    if (!term.empty()) into->push_back(std::move(term));
  }
  return LogFilter(std::move(impl));
}

bool LogFilter::Matches(std::string_view message) const {
  if (impl_->escaped_form && HasControlCharacters(message)) return impl_->Matches(EscapeControlCharacters(message));
  return impl_->Matches(message);
}

}  // namespace hpo::coordinator
