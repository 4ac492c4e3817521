// coordinator/log_filter.h: CloudWatch Logs filter patterns (FilterLogEvents' filterPattern),
// parsed once and matched against each event's message.
//
// The four kinds CloudWatch Logs documents, with its semantics (patterns are case-sensitive):
//   terms      ERROR "two words" -exclude ?either ?or: every plain or "quoted" term appears, no
//              -term does, and one of the ?terms does when there are any (substrings). The empty
//              pattern matches every event.
//   regex      %ERROR|WARN%: the whole pattern one regular expression, found anywhere in the
//              message (RE2 syntax: no lookaround or backreferences).
//   JSON       { $.loss < 0.5 && ($.phase = "val*" || $.best IS TRUE) }: the message parsed as
//              JSON (an event that is not JSON never matches). Selectors $.a.b and $.a[0].c.
//              = and != compare text: "a string" or a bare word, * a wildcard, or %regex%;
//              a number (0.5, -3, 1e-4) compares numerically, with =, !=, <, >, <= and >= (a
//              string that reads as a number is compared as one); IS TRUE, IS FALSE, IS NULL,
//              NOT EXISTS. && binds tighter than ||; parentheses group.
//   space-delimited  [ip, user, ..., status = 4* || status = 5*, bytes > 1000]: the message
//              split at spaces and tabs, a "quoted" or [bracketed] run one field (without its
//              quotes or brackets); one pattern field per message field, `...` standing for any
//              number of them (at most two `...`). A field is a name, or conditions on the
//              pattern's names in the JSON patterns' syntax.
// Control characters: SageMaker's training logs reach CloudWatch through rsyslog, which writes
// them as '#' and three octal digits (a tab reads "#011"), and patterns written for them name
// that form; a pattern that does ("#011validation-auc") is matched against the message so
// written. Any other pattern sees the message as the program printed it.
// A selector or field that is missing, or whose value is of the wrong kind for its comparison
// (an object compared with "x", a word with < 5), makes its comparison false, != included: a
// pattern never matches an event for lacking what it names.
//
// Parse refuses a pattern over 1024 characters (CloudWatch's limit), and what it cannot read, with
// InvalidArgument naming the spot ("JSON pattern: `<`
// compares numbers, and \"abc\" is not one"); it changes nothing. Matching allocates only for
// JSON events and the space-delimited split. Thread-safe once parsed (const).
#pragma once

#include <cstddef>
#include <memory>
#include <string_view>

#include "common/status.h"

namespace hpo::coordinator {

class LogFilter {
 public:
  static constexpr size_t kMaxPatternBytes = 1024;  // CloudWatch's limit on filterPattern
  static Result<LogFilter> Parse(std::string_view pattern);
  bool Matches(std::string_view message) const;

  struct Impl;

 private:
  explicit LogFilter(std::shared_ptr<const Impl> impl) : impl_(std::move(impl)) {}
  std::shared_ptr<const Impl> impl_;
};

}  // namespace hpo::coordinator
