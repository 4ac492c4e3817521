// ASCII case folding: letters A-Z only, every other byte (UTF-8 included) as it was.

#include "common/text.h"

#include <gtest/gtest.h>

namespace hpo {
namespace {

TEST(Text, AsciiLowerFoldsOnlyAToZ) {
  EXPECT_EQ(AsciiLower("My-Tuning-JOB-001"), "my-tuning-job-001");
  EXPECT_EQ(AsciiLower("X-Amz-Content-SHA256"), "x-amz-content-sha256");
  EXPECT_EQ(AsciiLower("Caf\xC3\x89 \xC3\xA9t\xC3\xA9"), "caf\xC3\x89 \xC3\xA9t\xC3\xA9") << "UTF-8 bytes unchanged";
  EXPECT_EQ(AsciiLower("[\\]^_`{@"), "[\\]^_`{@") << "the neighbours of A-Z and a-z";
  EXPECT_EQ(AsciiLower(""), "");
}

TEST(Text, EqualsIgnoringCaseComparesFoldedBytes) {
  EXPECT_TRUE(EqualsIgnoringCase("FALSE", "false"));
  EXPECT_TRUE(EqualsIgnoringCase("", ""));
  EXPECT_FALSE(EqualsIgnoringCase("false", "fals"));
  EXPECT_FALSE(EqualsIgnoringCase("@", "`")) << "not letters: 0x40 and 0x60 differ";
  EXPECT_FALSE(EqualsIgnoringCase("\xC3\x89", "\xC3\xA9")) << "no Unicode folding";
}

TEST(Text, Utf8LengthCountsCharactersNotBytes) {
  EXPECT_EQ(Utf8Length(""), 0u);
  EXPECT_EQ(Utf8Length("abc"), 3u);
  EXPECT_EQ(Utf8Length("caf\xC3\xA9"), 4u) << "two-byte e-acute";
  EXPECT_EQ(Utf8Length("\xE2\x82\xAC"), 1u) << "three-byte euro sign";
  EXPECT_EQ(Utf8Length("\xF0\x9F\x98\x80!"), 2u) << "four-byte emoji and a letter";
}

TEST(Text, JsonNestingDepthCountsBracketsOutsideStrings) {
  EXPECT_EQ(JsonNestingDepth(""), 0u);
  EXPECT_EQ(JsonNestingDepth("1"), 0u);
  EXPECT_EQ(JsonNestingDepth("[1, {\"a\": [2]}]"), 3u);
  EXPECT_EQ(JsonNestingDepth("{\"[[[[\": \"{{\"}"), 1u) << "brackets inside strings do not count";
  EXPECT_EQ(JsonNestingDepth("[\"a\\\"[[\", []]"), 2u) << "an escaped quote does not end the string";
  EXPECT_EQ(JsonNestingDepth("]]][[]"), 2u) << "malformed text is measured the same way";
  EXPECT_EQ(JsonNestingDepth(std::string(100000, '[')), 100000u);
}

TEST(Text, InvalidUtf8AtFindsTheFirstBadByteAndAcceptsWellFormedText) {
  EXPECT_EQ(InvalidUtf8At(""), std::nullopt);
  EXPECT_EQ(InvalidUtf8At("plain ascii"), std::nullopt);
  EXPECT_EQ(InvalidUtf8At("caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80"), std::nullopt);  // é € 😀
  EXPECT_EQ(InvalidUtf8At("ab\xff"), 2u);
  EXPECT_EQ(InvalidUtf8At("\xc3\x28"), 0u);          // a lead without its continuation
  EXPECT_EQ(InvalidUtf8At("x\xc0\xaf"), 1u);         // overlong '/'
  EXPECT_EQ(InvalidUtf8At("\xe0\x80\xaf"), 0u);     // overlong, three bytes
  EXPECT_EQ(InvalidUtf8At("\xed\xa0\x80"), 0u);     // a UTF-16 surrogate
  EXPECT_EQ(InvalidUtf8At("\xf4\x90\x80\x80"), 0u);  // above U+10FFFF
  EXPECT_EQ(InvalidUtf8At("ok\xe2\x82"), 2u);        // cut short
  EXPECT_EQ(InvalidUtf8At("\x80"), 0u);               // a stray continuation byte
}

TEST(Text, ReplaceInvalidUtf8PutsUFFFDForEachBadByteAndKeepsTheRest) {
  EXPECT_EQ(ReplaceInvalidUtf8(""), "");
  EXPECT_EQ(ReplaceInvalidUtf8("caf\xc3\xa9"), "caf\xc3\xa9");
  EXPECT_EQ(ReplaceInvalidUtf8("1 \xb5s"), "1 \xef\xbf\xbds");
  EXPECT_EQ(ReplaceInvalidUtf8("\xff\xfe x"), "\xef\xbf\xbd\xef\xbf\xbd x");
  EXPECT_EQ(ReplaceInvalidUtf8("ok\xe2\x82"), "ok\xef\xbf\xbd\xef\xbf\xbd");  // cut short: each byte
  EXPECT_EQ(ReplaceInvalidUtf8(std::string("a\0b", 3)), std::string("a\0b", 3));  // NUL is valid UTF-8
}

TEST(Text, TrimSpaceDropsSpacesTabsAndLineEndsAtTheEnds) {
  EXPECT_EQ(TrimSpace(" \t a b \r\n"), "a b");
  EXPECT_EQ(TrimSpace(" \r\n\t"), "");
  EXPECT_EQ(TrimSpace("x"), "x");
}

TEST(Text, ParseDecimalTakesDecimalTextOnly) {
  EXPECT_EQ(ParseDecimal("-3"), -3.0);
  EXPECT_EQ(ParseDecimal("+2E3"), 2000.0);
  EXPECT_EQ(ParseDecimal(".5"), 0.5);
  EXPECT_EQ(ParseDecimal("5."), 5.0);
  EXPECT_EQ(ParseDecimal("1e-400"), 0.0) << "an underflow reads as zero";
  for (const char* bad : {"", " 1", "1 ", "0x10", "0x1p-2", "inf", "nan", "1e", "e5", "--1", "1e999", "."}) {
    EXPECT_FALSE(ParseDecimal(bad)) << '"' << bad << '"';
  }
}

}  // namespace
}  // namespace hpo
