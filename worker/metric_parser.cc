#include "worker/metric_parser.h"

#include <cmath>
#include <cstdlib>
#include <optional>
#include <string>

#include <re2/re2.h>

#include "common/text.h"

namespace hpo::worker {

namespace {

// "nan", "inf", "infinity" in any case, with an optional sign (what Python, C and NumPy print),
// and a number too large for a double ("1e999": Python's float() of it is inf).
bool IsNonFiniteNumber(std::string_view text) {
  const std::string t(TrimSpace(text));
  if (t.empty()) return false;
  char* end = nullptr;
  const double v = std::strtod(t.c_str(), &end);
  return end == t.c_str() + t.size() && !std::isfinite(v);
}

}  // namespace

bool ParseMetricValue(std::string_view text, double* out) {
  const std::optional<double> v = ParseDecimal(TrimSpace(text));
  if (!v) return false;
  *out = *v;
  return true;
}


Result<MetricParser> MetricParser::Create(const std::vector<MetricDefinitionSpec>& defs) {
  MetricParser parser;
  parser.defs_.reserve(defs.size());
  for (const auto& d : defs) {
    RE2::Options options;
    options.set_log_errors(false);
    auto re = std::make_unique<RE2>(d.regex, options);
    if (!re->ok()) {
      return Status::InvalidArgument("metric \"" + d.name + "\": regex \"" + d.regex +
                                     "\" does not compile: " + re->error());
    }
    Def def;
    def.name = d.name;
    def.has_group = re->NumberOfCapturingGroups() > 0;
    def.re = std::move(re);
    parser.defs_.push_back(std::move(def));
  }
  return parser;
}

MetricParser::MetricParser(MetricParser&&) noexcept = default;
MetricParser& MetricParser::operator=(MetricParser&&) noexcept = default;
MetricParser::~MetricParser() = default;

std::vector<MetricHit> MetricParser::Parse(std::string_view line) {
  std::vector<MetricHit> hits;
  non_finite_.clear();
  if (defs_.empty()) return hits;
  if (line.size() > kMaxLineBytes) line = line.substr(0, kMaxLineBytes);
  // Bytes that are not UTF-8 (a Latin-1 "\xb5s") stop RE2's '.' from matching across them: the
  // line is matched as `hpo logs` shows it, with U+FFFD in their place.
  std::string valid;
  if (InvalidUtf8At(line)) {
    valid = ReplaceInvalidUtf8(line);
    line = valid;
  }
  // A line's redraws: the text between carriage returns, last first. A CRLF line ending leaves
  // an empty last one, which matches nothing.
  std::vector<std::string_view> redraws;
  if (line.find('\r') != std::string_view::npos) {
    for (size_t end = line.size();;) {
      const size_t cr = end == 0 ? std::string_view::npos : line.rfind('\r', end - 1);
      const size_t begin = cr == std::string_view::npos ? 0 : cr + 1;
      redraws.push_back(line.substr(begin, end - begin));
      if (cr == std::string_view::npos) break;
      end = cr;
    }
  }
  // The escaped form is built at most once per line, and only when some definition needs it.
  std::string escaped;
  bool escaped_ready = false;
  const bool has_control = HasControlCharacters(line);

  auto match = [](const Def& d, std::string_view text, std::string_view* captured) {
    re2::StringPiece input(text.data(), text.size());
    re2::StringPiece groups[2];
    const int n = d.has_group ? 2 : 1;
    if (!d.re->Match(input, 0, input.size(), RE2::UNANCHORED, groups, n)) return false;
    const re2::StringPiece& g = groups[n - 1];
    *captured = g.data() == nullptr ? std::string_view() : std::string_view(g.data(), g.size());
    return true;
  };

  for (const Def& d : defs_) {
    std::string_view captured;
    bool matched = false;
    for (std::string_view r : redraws) {
      if ((matched = match(d, r, &captured))) break;
    }
    if (!matched) matched = match(d, line, &captured);
    if (!matched && has_control) {
      if (!escaped_ready) {
        escaped = EscapeControlCharacters(line);
        escaped_ready = true;
      }
      matched = match(d, escaped, &captured);
    }
    if (!matched) continue;
    double value = 0;
    if (!ParseMetricValue(captured, &value)) {
      if (IsNonFiniteNumber(captured)) non_finite_.push_back(d.name);
      ++skipped_;
      if (!skip_reported_[d.name]) {
        skip_reported_[d.name] = true;
        new_skips_.emplace_back(d.name, std::string(captured.substr(0, 80)));
      }
      continue;
    }
    uint32_t& step = steps_[d.name];
    hits.push_back(MetricHit{d.name, value, step});
    ++step;
  }
  return hits;
}

std::vector<std::pair<std::string, std::string>> MetricParser::TakeFirstSkips() {
  std::vector<std::pair<std::string, std::string>> out;
  out.swap(new_skips_);
  return out;
}

}  // namespace hpo::worker
