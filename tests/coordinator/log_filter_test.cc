// CloudWatch Logs filter patterns (coordinator/log_filter.h): each kind against the lines a
// training job prints, and the errors for patterns it cannot read.
#include "coordinator/log_filter.h"

#include <string>
#include <vector>

#include <gtest/gtest.h>

namespace hpo::coordinator {
namespace {

// The messages `pattern` matches among `lines`.
std::vector<std::string> Matching(const std::string& pattern,
                                  const std::vector<std::string>& lines) {
  auto f = LogFilter::Parse(pattern);
  EXPECT_TRUE(f.ok()) << pattern << ": " << f.status().message();
  std::vector<std::string> out;
  if (!f.ok()) return out;
  for (const auto& l : lines) {
    if (f->Matches(l)) out.push_back(l);
  }
  return out;
}

std::string ErrorOf(const std::string& pattern) {
  auto f = LogFilter::Parse(pattern);
  EXPECT_FALSE(f.ok()) << pattern << " was accepted";
  return f.ok() ? "" : f.status().message();
}

const std::vector<std::string> kText = {
    "epoch=1 loss=0.91 acc=0.55",
    "epoch=2 loss=0.42 acc=0.81",
    "[2026-12-06 09:00:01] WARN disk at 91%",
    "ERROR: CUDA out of memory",
    "Epoch[4] Validation-accuracy=0.83",
};

TEST(LogFilter, TermsAllNoneAnyAndEmpty) {
  EXPECT_EQ(Matching("", kText).size(), kText.size());
  EXPECT_EQ(Matching("   ", kText).size(), kText.size());
  EXPECT_EQ(Matching("loss acc", kText), (std::vector<std::string>{kText[0], kText[1]}));
  EXPECT_EQ(Matching("loss -epoch=1", kText), (std::vector<std::string>{kText[1]}));
  EXPECT_EQ(Matching("?WARN ?ERROR", kText), (std::vector<std::string>{kText[2], kText[3]}));
  EXPECT_EQ(Matching("\"out of memory\"", kText), (std::vector<std::string>{kText[3]}));
  EXPECT_TRUE(Matching("error", kText).empty()) << "case-sensitive";
  EXPECT_NE(ErrorOf("\"open").find("no closing quote"), std::string::npos);
}

// XGBoost prints "[1]\ttrain-auc:0.93\tvalidation-auc:0.90"; SageMaker's CloudWatch shows the tabs
// as "#011", and patterns (and its own metric regexes) name them so. Such a pattern found nothing
// here; others still see the raw tab.
TEST(LogFilter, APatternNamingATabAsCloudWatchWritesItFindsTheTab) {
  const std::vector<std::string> lines = {"[1]\ttrain-auc:0.93\tvalidation-auc:0.90", "[2] validation-auc:0.91",
                                          "no#011 tab here"};
  EXPECT_EQ(Matching("#011validation", lines), (std::vector<std::string>{lines[0]}));
  EXPECT_EQ(Matching("\"#011validation-auc\"", lines), (std::vector<std::string>{lines[0]}));
  EXPECT_EQ(Matching("%#011validation-auc:0\\.9[0-9]%", lines), (std::vector<std::string>{lines[0]}));
  EXPECT_EQ(Matching("validation-auc -#011", lines), (std::vector<std::string>{lines[1]})) << "excluded by its tab";
  EXPECT_EQ(Matching("#011", lines), (std::vector<std::string>{lines[0], lines[2]})) << "a line without one as written";
  EXPECT_EQ(Matching("%\ttrain%", lines), (std::vector<std::string>{lines[0]})) << "the raw tab, without #011";
}

TEST(LogFilter, RegexIsTheWholePattern) {
  EXPECT_EQ(Matching("%WARN|ERROR%", kText), (std::vector<std::string>{kText[2], kText[3]}));
  EXPECT_EQ(Matching("%^epoch=[0-9]+ loss=0\\.4%", kText), (std::vector<std::string>{kText[1]}));
  EXPECT_EQ(Matching(" %Validation-accuracy=0\\.8[0-9]% ", kText),
            (std::vector<std::string>{kText[4]}));
  EXPECT_NE(ErrorOf("%a(b%").find("RE2"), std::string::npos);
}

const std::vector<std::string> kJson = {
    R"({"epoch": 1, "loss": 0.91, "phase": "train", "best": false})",
    R"({"epoch": 2, "loss": 0.42, "phase": "validation", "best": true, "gpu": {"mem": [11.5, 12.0]}})",
    R"({"epoch": 3, "loss": "nan", "phase": "validation", "note": null})",
    R"(  {"event": "checkpoint", "path": "/opt/ml/checkpoints/model.pt", "tags": ["a", "b"]})",
    "epoch=4 loss=0.1",
    "{not json",
    R"([{"epoch": 5}])",
};

TEST(LogFilter, JsonComparisons) {
  EXPECT_EQ(Matching("{ $.loss < 0.5 }", kJson), (std::vector<std::string>{kJson[1]}))
      << "a string that is no number (\"nan\") does not compare";
  EXPECT_EQ(Matching("{ $.epoch >= 2 }", kJson), (std::vector<std::string>{kJson[1], kJson[2]}));
  EXPECT_EQ(Matching("{ $.epoch = 3 }", kJson), (std::vector<std::string>{kJson[2]}));
  EXPECT_EQ(Matching("{ $.phase = \"valid*\" }", kJson),
            (std::vector<std::string>{kJson[1], kJson[2]}));
  EXPECT_EQ(Matching("{ $.phase = train }", kJson), (std::vector<std::string>{kJson[0]}));
  EXPECT_EQ(Matching("{ $.phase != \"train\" }", kJson),
            (std::vector<std::string>{kJson[1], kJson[2]}))
      << "!= does not match events without the field";
  EXPECT_EQ(Matching("{ $.path = %model\\.pt$% }", kJson), (std::vector<std::string>{kJson[3]}));
  EXPECT_EQ(Matching("{ $.gpu.mem[1] >= 12 }", kJson), (std::vector<std::string>{kJson[1]}));
  EXPECT_EQ(Matching("{ $.tags[0] = \"a\" }", kJson), (std::vector<std::string>{kJson[3]}));
  EXPECT_EQ(Matching("{ $[0].epoch = 5 }", kJson), (std::vector<std::string>{kJson[6]}));
  EXPECT_TRUE(Matching("{ $.epoch = 0x1 }", kJson).empty()) << "hex is text, not the number 1";
  EXPECT_EQ(Matching("[a, b = 0x1*, ...]", {"w 0x1f", "w 1"}),
            (std::vector<std::string>{"w 0x1f"}));
  EXPECT_TRUE(Matching("[a, b < 5, ...]", {"w inf", "w nan", "w 0x3"}).empty())
      << "none reads as a number";
  EXPECT_EQ(Matching("{ $.epoch = 1* }", kJson), (std::vector<std::string>{kJson[0]}))
      << "a glob reads a number as JSON writes it";
}

TEST(LogFilter, JsonKeywordsAndLogic) {
  EXPECT_EQ(Matching("{ $.best IS TRUE }", kJson), (std::vector<std::string>{kJson[1]}));
  EXPECT_EQ(Matching("{ $.best is false }", kJson), (std::vector<std::string>{kJson[0]}));
  EXPECT_EQ(Matching("{ $.note IS NULL }", kJson), (std::vector<std::string>{kJson[2]}));
  EXPECT_EQ(Matching("{ $.epoch NOT EXISTS }", kJson),
            (std::vector<std::string>{kJson[3], kJson[6]}))
      << "not JSON, never matched; an array has no $.epoch";
  EXPECT_EQ(Matching("{ $.phase = \"validation\" && $.loss < 0.5 || $.event = checkpoint }", kJson),
            (std::vector<std::string>{kJson[1], kJson[3]}));
  EXPECT_EQ(Matching("{ ($.epoch = 1 || $.epoch = 3) && $.phase = \"validation\" }", kJson),
            (std::vector<std::string>{kJson[2]}));
  EXPECT_EQ(Matching("{ $.gpu = \"*\" }", kJson), std::vector<std::string>{})
      << "an object is not text";
}

TEST(LogFilter, JsonErrorsNameTheSpot) {
  EXPECT_NE(ErrorOf("{ $.loss < 0.5").find("must end with }"), std::string::npos);
  EXPECT_NE(ErrorOf("{ $.phase < \"abc\" }").find("compares numbers"), std::string::npos);
  EXPECT_NE(ErrorOf("{ loss < 1 }").find("selector `loss`"), std::string::npos);
  EXPECT_NE(ErrorOf("{ $.a[x] = 1 }").find("array index"), std::string::npos);
  EXPECT_NE(ErrorOf("{ $.a.* = 1 }").find("wildcard"), std::string::npos);
  EXPECT_NE(ErrorOf("{ $.a = }").find("expected a value"), std::string::npos);
  EXPECT_NE(ErrorOf("{ $.a = 1 && }").find("expected a selector"), std::string::npos);
  EXPECT_NE(ErrorOf("{ ($.a = 1 }").find("expected `)`"), std::string::npos);
  EXPECT_NE(ErrorOf("{ $.a IS MAYBE }").find("TRUE, FALSE or NULL"), std::string::npos);
  EXPECT_NE(ErrorOf("{ $.a = \"open }").find("no closing quote"), std::string::npos);
  EXPECT_NE(ErrorOf("{ $.a = 1 ! }").find("unexpected `!`"), std::string::npos);
  EXPECT_NE(ErrorOf("{ $.a }").find("expected an operator"), std::string::npos);
  EXPECT_NE(ErrorOf("{ $.a = 1 ) }").find("unexpected `)`"), std::string::npos);
  EXPECT_NE(ErrorOf("{ $.a = %(% }").find("RE2"), std::string::npos);
}

const std::vector<std::string> kDelimited = {
    "127.0.0.1 - frank [10/Oct/2026:13:25:15 -0700] \"GET /index.html HTTP/1.0\" 200 1534",
    "127.0.0.1 - - [10/Oct/2026:13:25:16 -0700] \"GET /missing.html HTTP/1.0\" 404 12",
    "10.0.0.7 - - [10/Oct/2026:13:25:17 -0700] \"POST /train HTTP/1.1\" 503 0",
    "epoch 3 loss 0.42",
    "epoch 4 loss 0.17 best",
};

TEST(LogFilter, SpaceDelimitedFields) {
  const std::string seven = "[ip, user, username, timestamp, request, status, bytes]";
  EXPECT_EQ(Matching(seven, kDelimited).size(), 3u)
      << "seven fields, the quoted and bracketed runs one each";
  EXPECT_EQ(Matching("[ip, user, username, timestamp, request = \"*html*\", status = 4*, bytes]",
                     kDelimited),
            (std::vector<std::string>{kDelimited[1]}));
  EXPECT_EQ(Matching("[ip = 127.*, ..., status != 200, bytes]", kDelimited),
            (std::vector<std::string>{kDelimited[1]}));
  EXPECT_EQ(Matching("[..., status = 4* || status = 5*, bytes]", kDelimited),
            (std::vector<std::string>{kDelimited[1], kDelimited[2]}));
  EXPECT_EQ(Matching("[..., status >= 500, bytes < 100]", kDelimited),
            (std::vector<std::string>{kDelimited[2]}));
  EXPECT_EQ(Matching("[ip, user, username = frank, ...]", kDelimited),
            (std::vector<std::string>{kDelimited[0]}));
  EXPECT_EQ(Matching("[w1 = epoch, n, w3, loss < 0.3, ...]", kDelimited),
            (std::vector<std::string>{kDelimited[4]}))
      << "... also stands for no field at all";
  EXPECT_EQ(Matching("[w1 = epoch, n, w3, loss]", kDelimited),
            (std::vector<std::string>{kDelimited[3]}))
      << "without ..., the number of fields must agree";
  EXPECT_EQ(Matching("[..., loss, flag = best]", kDelimited),
            (std::vector<std::string>{kDelimited[4]}));
  EXPECT_EQ(Matching("[..., w = %^/(index|train)%, ...]", kDelimited).size(), 0u)
      << "the request field holds the verb first";
  EXPECT_EQ(Matching("[..., r = %^(GET|POST) /(index|train)%, status, bytes]", kDelimited),
            (std::vector<std::string>{kDelimited[0], kDelimited[2]}));
  EXPECT_EQ(Matching("[w1, ..., w2 = best]", kDelimited),
            (std::vector<std::string>{kDelimited[4]}));
  EXPECT_EQ(Matching("[a, b = 3 || b = 4, c, d < 0.3 && d > 0.1, ...]", kDelimited),
            (std::vector<std::string>{kDelimited[4]}));
  EXPECT_EQ(Matching("[a, b, c = loss && a = epoch, d]", kDelimited),
            (std::vector<std::string>{kDelimited[3]}))
      << "a condition may read another field";
}

// A 64 KiB line (the longest a worker sends) of 32,768 fields against two ...: tried once per
// split between them, not once per pair of lengths (that took minutes, holding the core's lock).
TEST(LogFilter, SpaceDelimitedLongLineIsLinear) {
  std::string line;
  for (int i = 0; i < 32768; ++i) line += i == 20000 ? "x " : "a ";
  line += "end";
  EXPECT_EQ(Matching("[..., w = x, ..., last = end]", {line}).size(), 1u);
  EXPECT_EQ(Matching("[..., w = y, ..., last = end]", {line}).size(), 0u);
  EXPECT_EQ(Matching("[first = a, ..., w = x, second, ...]", {line}).size(), 1u);
  EXPECT_EQ(Matching("[..., a1, a2, a3]", {"one two"}).size(), 0u) << "fewer fields than names";
}

// Bad input never crashes the coordinator: a pattern deep in parentheses is refused for its
// length before the parser recurses, and a deeply nested JSON line is read without recursion.
TEST(LogFilter, DeepNestingIsRefusedOrReadSafely) {
  const std::string deep =
      "{ " + std::string(100000, '(') + "$.a = 1" + std::string(100000, ')') + " }";
  EXPECT_NE(ErrorOf(deep).find("at most 1024 characters"), std::string::npos);
  const std::string nested =
      "{ " + std::string(500, '(') + "$.a = 1" + std::string(500, ')') + " }";
  EXPECT_TRUE(LogFilter::Parse(nested).ok()) << "500 levels fit in 1024 characters";
  const std::string line = std::string(30000, '[') + std::string(30000, ']');
  EXPECT_EQ(Matching("{ $[0][0] NOT EXISTS }", {line}).size(), 0u);
  EXPECT_EQ(Matching("{ $[0] NOT EXISTS }", {line + "x"}).size(), 0u) << "not JSON";
  EXPECT_NE(ErrorOf("{ $.a = \"x }").find("offset 8"), std::string::npos)
      << "offsets count from the pattern's start";
}

TEST(LogFilter, SpaceDelimitedErrors) {
  EXPECT_NE(ErrorOf("[a, b").find("must end with ]"), std::string::npos);
  EXPECT_NE(ErrorOf("[a, , b]").find("field 2: empty"), std::string::npos);
  EXPECT_NE(ErrorOf("[a, a]").find("already a field's"), std::string::npos);
  EXPECT_NE(ErrorOf("[a, b = 1 || c = 2]").find("`c`, which is no field's name"),
            std::string::npos);
  EXPECT_NE(ErrorOf("[..., a, ..., b, ...]").find("at most two"), std::string::npos);
  EXPECT_NE(ErrorOf("[1abc]").find("not a field name"), std::string::npos);
  EXPECT_NE(ErrorOf("[a < x]").find("compares numbers"), std::string::npos);
  EXPECT_NE(ErrorOf("[a = loss=*]").find("written \"in quotes\""), std::string::npos);
}

}  // namespace
}  // namespace hpo::coordinator
