// libFuzzer target for EventBridge event patterns (coordinator/event_pattern.h), which
// `hpo coordinator --notify-pattern` reads from the user.
//
// Input layout: the pattern's text, then optionally a 0 byte and an event's JSON text.
//
// Checks, beyond "no crash, no sanitizer report, no runaway recursion": a refused pattern is
// InvalidArgument with a message that says "event pattern"; an accepted one matches the same event
// the same way twice (matching keeps no state) and matches any event without throwing, the
// pattern's own JSON and a non-object included.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>

#include <nlohmann/json.hpp>

#include "coordinator/event_pattern.h"

using hpo::coordinator::EventPattern;
using Json = nlohmann::ordered_json;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string input(reinterpret_cast<const char*>(data), size);
  const size_t split = input.find('\0');
  const std::string pattern_text = input.substr(0, split);
  const std::string event_text = split == std::string::npos ? std::string() : input.substr(split + 1);

  hpo::Result<EventPattern> pattern = EventPattern::Parse(pattern_text);
  if (!pattern.ok()) {
    if (pattern.status().code() != hpo::StatusCode::kInvalidArgument) std::abort();
    if (pattern.status().message().find("event pattern") == std::string::npos) std::abort();
    return 0;
  }
  Json event = Json::parse(event_text, nullptr, /*allow_exceptions=*/false);
  if (event.is_discarded()) event = Json::object();
  if (pattern->Matches(event) != pattern->Matches(event)) std::abort();
  (void)pattern->Matches(Json::parse(pattern_text));
  (void)pattern->Matches(Json::array({1, "x", nullptr}));
  return 0;
}
