// worker/metric_parser.h: SageMaker MetricDefinitions applied to a training program's output.
//
// What it is: the job's metric definitions ({Name, Regex}, RE2 syntax), compiled once per trial
// attempt and applied to every stdout/stderr line, as SageMaker applies them to the training
// container's log:
//   - every definition is tried on every line; a line may yield several metrics;
//   - a definition matches when its regex matches anywhere in the line (RE2::PartialMatch);
//   - the value is the text of capture group 1, or the whole match when the regex has no group;
//   - the text must be a finite decimal number: optional sign (+ or -), digits with an optional
//     fraction, optional exponent ("3", "-0.25", "+.5", "1e-3", "2.5E+10"); surrounding spaces
//     and tabs are ignored. Empty text, "nan", "inf", hex and anything else is skipped and
//     counted in skipped(); "nan" and "inf" (a diverged run) are also named by NonFinite();
//   - lines longer than kMaxLineBytes are matched on their first kMaxLineBytes bytes;
//   - a line with carriage returns (a progress bar redrawing itself, or a CRLF ending) is what a
//     terminal shows last: a definition takes its value from the last redraw (the text after a
//     '\r') it matches, and only then from the whole line. A definition yields at most one
//     value per line, so a line of 100 redraws is one emission (one "epoch" for early stopping);
//   - a line that is not valid UTF-8 is matched with U+FFFD in place of each bad byte (as
//     `hpo logs` shows it), so that '.' in `.*\[[0-9]+\].*` crosses a Latin-1 "\xb5s".
//
// Control characters. SageMaker matches the regexes against the CloudWatch form of each line,
// in which rsyslog has escaped control characters as '#' and three octal digits (a tab becomes
// "#011"); that is why the built-in XGBoost definitions read
// `.*\[[0-9]+\].*#011validation-auc:([-+]?[0-9]*\.?[0-9]+(?:[eE][-+]?[0-9]+)?).*`.
// A definition that does not match the raw line is therefore tried once more on the escaped form
// (only when the line holds control characters), so definitions written for SageMaker and
// definitions written against the raw output both work. A definition yields at most one value
// per line.
//
// What it is not: it does not know which metric is the objective, and does not decide anything
// about stopping; the step it returns is only a per-name emission counter.
//
// Thread safety: thread-compatible. One parser per trial attempt, used by one thread at a time
// (normally the attempt's output reader). Distinct parsers share nothing.
#pragma once

#include <cstddef>
#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "common/status.h"

namespace re2 {
class RE2;
}

namespace hpo::worker {

// One MetricDefinitions entry.
struct MetricDefinitionSpec {
  std::string name;   // metric name as reported (e.g. "validation:auc")
  std::string regex;  // RE2 syntax
};

// One value found on one line.
struct MetricHit {
  std::string name;
  double value = 0;   // finite
  uint32_t step = 0;  // 0-based: how many values of this name this parser emitted before this one
};

class MetricParser {
 public:
  static constexpr std::size_t kMaxLineBytes = 128 * 1024;  // the longest line a trial delivers whole (worker/process.h)

  // Compiles every regex. Errors: InvalidArgument naming the metric and RE2's reason when a
  // regex does not compile. Definitions keep their order; two definitions may share a name
  // (their values then share one step counter).
  [[nodiscard]] static Result<MetricParser> Create(const std::vector<MetricDefinitionSpec>& defs);

  MetricParser(MetricParser&&) noexcept;
  MetricParser& operator=(MetricParser&&) noexcept;
  ~MetricParser();

  // Applies every definition to `line` (without its trailing newline), in definition order, and
  // returns the values found, advancing the step counter of each emitted name.
  std::vector<MetricHit> Parse(std::string_view line);

  // The names whose match on the last Parse call was a non-finite number ("nan", "-inf",
  // "Infinity", any case): no value, but the metric's latest value is then not a number (a run
  // that diverged), which a final value must not hide (worker: TrialExited.final_metrics NaN).
  const std::vector<std::string>& NonFinite() const { return non_finite_; }
  // Matches whose captured text was not a finite number, since creation.
  uint64_t skipped() const { return skipped_; }
  // The first skipped match of each metric name not reported yet, as (name, captured text cut to
  // 80 bytes): so the trial's log can say once why "loss=nan" gave no value, rather than leave
  // the user to suspect the regex. Empty when there is nothing new.
  std::vector<std::pair<std::string, std::string>> TakeFirstSkips();

 private:
  struct Def {
    std::string name;
    std::unique_ptr<re2::RE2> re;
    bool has_group = false;
  };
  MetricParser() = default;

  std::vector<Def> defs_;
  std::map<std::string, uint32_t> steps_;
  uint64_t skipped_ = 0;
  std::map<std::string, bool> skip_reported_;  // metric name -> its first skip was taken
  std::vector<std::pair<std::string, std::string>> new_skips_;
  std::vector<std::string> non_finite_;
};

// Parses a metric value as described above. Returns false (and leaves *out alone) for empty,
// malformed or non-finite text.
bool ParseMetricValue(std::string_view text, double* out);

}  // namespace hpo::worker
