// common/text.h: ASCII case folding, for names SageMaker compares without regard to case (tuning
// job names, header names, enum-like words) and protocol text. Bytes outside A-Z are left as
// they are (so UTF-8 passes through unchanged); no locale is consulted. And the length of UTF-8
// text in characters, which is what SageMaker's length limits count. And how deeply JSON text nests,
// and how far apart two words are (for "did you mean"). And trimming, and decimal numbers read
// exactly as written. And %XX decoding. And the rsyslog/CloudWatch form of control characters.
//
// Thread safety: pure functions.
#pragma once

#include <algorithm>
#include <charconv>
#include <cmath>
#include <cstdlib>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace hpo {

// Whether `s` holds a control character: a byte below 0x20, or 0x7f.
inline bool HasControlCharacters(std::string_view s) {
  return std::any_of(s.begin(), s.end(), [](char c) {
    const auto u = static_cast<unsigned char>(c);
    return u < 0x20 || u == 0x7f;
  });
}

// The rsyslog/CloudWatch form of a line, as SageMaker's training logs show it: bytes below 0x20
// and 0x7f written as '#' and three octal digits ("\t" -> "#011"). Other bytes, UTF-8 included,
// are unchanged.
inline std::string EscapeControlCharacters(std::string_view line) {
  std::string escaped;
  escaped.reserve(line.size() + 16);
  for (char ch : line) {
    const auto c = static_cast<unsigned char>(ch);
    if (c < 0x20 || c == 0x7f) {
      escaped.push_back('#');
      escaped.push_back(static_cast<char>('0' + ((c >> 6) & 7)));
      escaped.push_back(static_cast<char>('0' + ((c >> 3) & 7)));
      escaped.push_back(static_cast<char>('0' + (c & 7)));
    } else {
      escaped.push_back(ch);
    }
  }
  return escaped;
}

// `s` with its %XX escapes decoded (either case of hex); a '%' not followed by two hex digits stays
// as it is, and so does a '+' (neither SigV4 nor a URL's path means a space by it).
inline std::string PercentDecode(std::string_view s) {
  auto hex = [](char c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
  };
  std::string out;
  out.reserve(s.size());
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '%' && i + 2 < s.size() && hex(s[i + 1]) >= 0 && hex(s[i + 2]) >= 0) {
      out += static_cast<char>(hex(s[i + 1]) * 16 + hex(s[i + 2]));
      i += 2;
    } else {
      out += s[i];
    }
  }
  return out;
}

// `s` without the spaces, tabs, carriage returns and newlines at either end.
inline std::string_view TrimSpace(std::string_view s) {
  auto space = [](char c) { return c == ' ' || c == '\t' || c == '\r' || c == '\n'; };
  while (!s.empty() && space(s.front())) s.remove_prefix(1);
  while (!s.empty() && space(s.back())) s.remove_suffix(1);
  return s;
}

// The whole of `text` as a finite decimal number: an optional sign, digits with an optional
// point, an optional exponent ("-3", "0.5", ".5", "1e-4", "+2E3"); nothing around it. Not "nan",
// "inf", hex ("0x10", "0x1p-2") or spaces, which strtod and from_chars would take. An underflow
// reads as the nearest (sub)normal or zero; an overflow is no number.
inline std::optional<double> ParseDecimal(std::string_view text) {
  auto digit = [](char c) { return c >= '0' && c <= '9'; };
  size_t i = 0;
  if (i < text.size() && (text[i] == '+' || text[i] == '-')) ++i;
  bool digits = false;
  while (i < text.size() && digit(text[i])) ++i, digits = true;
  if (i < text.size() && text[i] == '.') {
    ++i;
    while (i < text.size() && digit(text[i])) ++i, digits = true;
  }
  if (!digits) return std::nullopt;
  if (i < text.size() && (text[i] == 'e' || text[i] == 'E')) {
    ++i;
    if (i < text.size() && (text[i] == '+' || text[i] == '-')) ++i;
    bool exponent_digits = false;
    while (i < text.size() && digit(text[i])) ++i, exponent_digits = true;
    if (!exponent_digits) return std::nullopt;
  }
  if (i != text.size()) return std::nullopt;
  if (text.front() == '+') text.remove_prefix(1);  // from_chars takes no leading '+'
  double v = 0;
  const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), v);
  if (ec == std::errc::result_out_of_range) {
    v = std::strtod(std::string(text).c_str(), nullptr);  // underflow: the (sub)normal or zero
  } else if (ec != std::errc() || end != text.data() + text.size()) {
    return std::nullopt;
  }
  if (!std::isfinite(v)) return std::nullopt;
  return v;
}

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

// The edit distance (Levenshtein: insertions, deletions, substitutions) between two words,
// ASCII letters compared without case: for "did you mean ...?" on a misspelt name.
inline size_t EditDistance(std::string_view a, std::string_view b) {
  auto lower = [](char c) { return c >= 'A' && c <= 'Z' ? static_cast<char>(c - 'A' + 'a') : c; };
  std::vector<size_t> prev(b.size() + 1), cur(b.size() + 1);
  for (size_t j = 0; j <= b.size(); ++j) prev[j] = j;
  for (size_t i = 1; i <= a.size(); ++i) {
    cur[0] = i;
    for (size_t j = 1; j <= b.size(); ++j) {
      cur[j] = std::min({prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (lower(a[i - 1]) == lower(b[j - 1]) ? 0 : 1)});
    }
    std::swap(prev, cur);
  }
  return prev[b.size()];
}

// How deeply JSON text nests arrays and objects ("[[1]]" is 2), counting brackets outside string
// literals; malformed text is measured the same way. Checked before parsing text from outside
// (a manifest, a request) whose tree is later walked or printed recursively, so that a million
// brackets give an error instead of a stack overflow.
inline size_t JsonNestingDepth(std::string_view s) {
  size_t depth = 0, deepest = 0;
  bool in_string = false, escaped = false;
  for (char c : s) {
    if (in_string) {
      if (escaped) {
        escaped = false;
      } else if (c == '\\') {
        escaped = true;
      } else if (c == '"') {
        in_string = false;
      }
    } else if (c == '"') {
      in_string = true;
    } else if (c == '[' || c == '{') {
      deepest = ++depth > deepest ? depth : deepest;
    } else if ((c == ']' || c == '}') && depth > 0) {
      --depth;
    }
  }
  return deepest;
}

// The number of characters (Unicode code points) in UTF-8 text: every byte that does not continue
// a sequence (10xxxxxx) starts one. Text that is not valid UTF-8 is counted the same way; the
// parsers refuse such text before any limit is checked.
inline size_t Utf8Length(std::string_view s) {
  size_t n = 0;
  for (char c : s) n += (static_cast<unsigned char>(c) & 0xC0) != 0x80;
  return n;
}

// The first `chars` characters of UTF-8 text (all of it when it has no more): cut before a
// byte that starts a character, never inside one. A cut at a byte count split a character, and
// the coordinator aborted writing the record (a 1,024-byte cut of a Chinese failure message).
inline std::string Utf8Prefix(std::string_view s, size_t chars) {
  size_t n = 0;
  for (size_t i = 0; i < s.size(); ++i) {
    if ((static_cast<unsigned char>(s[i]) & 0xC0) != 0x80 && n++ == chars) return std::string(s.substr(0, i));
  }
  return std::string(s);
}

// The length of the well-formed UTF-8 sequence at s[i] (RFC 3629: no overlong forms, no
// surrogates, nothing above U+10FFFF), or 0 when none starts there. i < s.size().
inline size_t Utf8SequenceLength(std::string_view s, size_t i) {
  const auto b = [&](size_t k) { return static_cast<unsigned char>(s[k]); };
  const unsigned char c = b(i);
  if (c < 0x80) return 1;
  size_t n = 0;
  unsigned char lo = 0x80, hi = 0xBF;  // the allowed range of the second byte
  if (c >= 0xC2 && c <= 0xDF) {
    n = 2;
  } else if (c >= 0xE0 && c <= 0xEF) {
    n = 3;
    if (c == 0xE0) lo = 0xA0;  // overlong
    if (c == 0xED) hi = 0x9F;  // surrogates
  } else if (c >= 0xF0 && c <= 0xF4) {
    n = 4;
    if (c == 0xF0) lo = 0x90;  // overlong
    if (c == 0xF4) hi = 0x8F;  // above U+10FFFF
  } else {
    return 0;
  }
  if (i + n > s.size()) return 0;
  if (b(i + 1) < lo || b(i + 1) > hi) return 0;
  for (size_t k = 2; k < n; ++k) {
    if (b(i + k) < 0x80 || b(i + k) > 0xBF) return 0;
  }
  return n;
}

// Where UTF-8 text first goes wrong: the offset of the first byte that does not start or
// continue a well-formed sequence; nullopt for valid text.
inline std::optional<size_t> InvalidUtf8At(std::string_view s) {
  for (size_t i = 0; i < s.size();) {
    const size_t n = Utf8SequenceLength(s, i);
    if (n == 0) return i;
    i += n;
  }
  return std::nullopt;
}

// The text with every byte that is not part of a well-formed sequence replaced by U+FFFD, as a
// terminal or `hpo logs` shows it. Linear in the size.
inline std::string ReplaceInvalidUtf8(std::string_view s) {
  std::string out;
  out.reserve(s.size() + 8);
  for (size_t i = 0; i < s.size();) {
    const size_t n = Utf8SequenceLength(s, i);
    if (n == 0) {
      out += "\xEF\xBF\xBD";  // U+FFFD
      ++i;
    } else {
      out.append(s.substr(i, n));
      i += n;
    }
  }
  return out;
}

}  // namespace hpo
