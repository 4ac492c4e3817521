// coordinator/event_pattern.h: Amazon EventBridge event patterns (the JSON of an EventBridge rule,
// {"source": ["aws.sagemaker"], "detail": {"TrainingJobStatus": ["Failed", "Completed"]}}),
// parsed once and matched against the state-change events hpo sends to webhooks. A subset, with
// EventBridge's documented semantics:
//
//   object      every key must match (AND). A key whose value is an object is a nested pattern for
//               the event's field of that name; when that field is an array (FinalMetricDataList,
//               SecondaryStatusTransitions), for one of its objects, all of the nested pattern in
//               that one object (EventBridge's array-consistent matching); when it is absent or
//               neither, each of the nested pattern's leaves sees its field as absent.
//   "$or": [P1, P2, ...]  (a key of any object; two or more object patterns) one of the Pi, each
//               matched at this object's level, must match too: {"detail": {"$or": [
//               {"TrainingJobStatus": ["Failed"]}, {"SecondaryStatus": ["MaxRuntimeExceeded"]}]}}.
//   array       a leaf: the event's field matches when it matches one of the elements (OR); when
//               the field is an array, when one of its elements matches one of them.
//   literals    strings compare exactly (case-sensitive); numbers numerically (5 matches 5.0, "5"
//               does not); true and false; null matches a field that is null (not an absent one).
//   content filters, objects of exactly one key in a leaf's array:
//     {"prefix": "s"} / {"suffix": "s"}  a string field that starts / ends with s; with
//                                        {"equals-ignore-case": "s"} for s, ignoring ASCII case.
//     {"equals-ignore-case": "s"}        a string field equal to s ignoring ASCII case.
//     {"wildcard": "a*b"}                a string field matching, * standing for any run of
//                                        characters (no escapes: every other character is itself).
//     {"anything-but": X}                a string or number field that is none of X: a string, a
//                                        number, an array of them, {"prefix": "s"}, {"suffix":
//                                        "s"}, or {"equals-ignore-case": S} / {"wildcard": S}, S a
//                                        string or an array of them. An absent field does not
//                                        match.
//     {"numeric": [">", 0, "<=", 5]}     a number field satisfying one or two comparisons (<, <=,
//                                        =, >, >=), all of them; two are a range (one of > >=
//                                        and one of < <=), as EventBridge takes them.
//     {"exists": true|false}             the field is present / absent. Present means in the
//                                        event and a leaf: not an object, and not an array that
//                                        holds no leaf (an empty one).
//   Not supported (refused, naming what is): cidr (SageMaker's events carry no addresses).
//   A field the event lacks matches only {"exists": false}.
//
// Parse refuses, with InvalidArgument naming what is wrong and where (a path such as
// detail.TrainingJobStatus[1]): text that is not JSON; a pattern that is not an object; an empty
// object anywhere; a leaf that is not an array; an empty array; an element that is not a string,
// number, boolean, null or content filter; a content filter that is unknown (the message lists the
// supported ones), has more or fewer than one key, or whose operand is of the wrong kind; what
// EventBridge refuses (an anything-but list of strings and numbers both, a wildcard with two * in
// a row, two numeric comparisons that are not a range); and
// objects nested deeper than 10 levels (the pattern itself is level 1). It changes nothing.
// Copies share the parsed tree; thread-safe once parsed (const).
#pragma once

#include <memory>
#include <string>

#include <nlohmann/json.hpp>

#include "common/status.h"

namespace hpo::coordinator {

class EventPattern {
 public:
  // Parses a pattern (JSON text).
  static Result<EventPattern> Parse(const std::string& text);
  // Whether `event` (a JSON object; anything else is seen as an empty one) matches.
  bool Matches(const nlohmann::ordered_json& event) const;
  // The pattern as given (for messages).
  const std::string& text() const { return text_; }

  struct Node;  // the parsed pattern (event_pattern.cc)

 private:
  EventPattern() = default;
  std::string text_;
  std::shared_ptr<const Node> root_;
};

}  // namespace hpo::coordinator
