// common/text.h: ASCII case folding, for names SageMaker compares without regard to case (tuning
// job names, header names, enum-like words) and protocol text. Bytes outside A-Z are left as
// they are (so UTF-8 passes through unchanged); no locale is consulted.
//
// Thread safety: pure functions.
#pragma once

#include <string>
#include <string_view>

namespace hpo {

inline std::string AsciiLower(std::string_view s) {
  std::string out(s);
  for (char& c : out) {
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
  }
  return out;
}

inline bool EqualsIgnoringCase(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i) {
    char x = a[i], y = b[i];
    if (x >= 'A' && x <= 'Z') x = static_cast<char>(x - 'A' + 'a');
    if (y >= 'A' && y <= 'Z') y = static_cast<char>(y - 'A' + 'a');
    if (x != y) return false;
  }
  return true;
}

}  // namespace hpo
