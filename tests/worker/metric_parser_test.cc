#include "worker/metric_parser.h"

#include <cmath>
#include <string>
#include <vector>

#include <gtest/gtest.h>

namespace hpo::worker {
namespace {

// The regexes SageMaker's built-in XGBoost algorithm uses.
const char kXgbValidationAuc[] = R"(.*\[[0-9]+\].*#011validation-auc:([-+]?[0-9]*\.?[0-9]+(?:[eE][-+]?[0-9]+)?).*)";
const char kXgbTrainAuc[] = R"(.*\[[0-9]+\].*#011train-auc:([-+]?[0-9]*\.?[0-9]+(?:[eE][-+]?[0-9]+)?).*)";

MetricParser Make(const std::vector<MetricDefinitionSpec>& defs) {
  auto p = MetricParser::Create(defs);
  EXPECT_TRUE(p.ok()) << p.status().ToString();
  return std::move(p).value();
}

TEST(MetricParser, ReadsXGBoostLinesAsCloudWatchShowsThem) {
  MetricParser p = Make({{"validation:auc", kXgbValidationAuc}, {"train:auc", kXgbTrainAuc}});
  auto hits = p.Parse("[12]#011train-auc:0.93#011validation-auc:0.91");
  ASSERT_EQ(hits.size(), 2u);
  EXPECT_EQ(hits[0].name, "validation:auc");
  EXPECT_DOUBLE_EQ(hits[0].value, 0.91);
  EXPECT_EQ(hits[0].step, 0u);
  EXPECT_EQ(hits[1].name, "train:auc");
  EXPECT_DOUBLE_EQ(hits[1].value, 0.93);
}

TEST(MetricParser, ReadsXGBoostLinesWithRealTabsThroughTheEscapedForm) {
  MetricParser p = Make({{"validation:auc", kXgbValidationAuc}});
  auto hits = p.Parse("[3]\ttrain-auc:0.8\tvalidation-auc:0.75");
  ASSERT_EQ(hits.size(), 1u);
  EXPECT_DOUBLE_EQ(hits[0].value, 0.75);
}

TEST(MetricParser, RegexWrittenForRawTabsStillMatchesTheRawLine) {
  MetricParser p = Make({{"loss", R"(\tloss=([0-9.]+))"}});
  auto hits = p.Parse("epoch 1\tloss=0.5");
  ASSERT_EQ(hits.size(), 1u);
  EXPECT_DOUBLE_EQ(hits[0].value, 0.5);
}

TEST(MetricParser, EscapesControlCharactersLikeRsyslog) {
  EXPECT_EQ(EscapeControlCharacters("a\tb\rc\x7f" "d"), "a#011b#015c#177d");
  EXPECT_EQ(EscapeControlCharacters("caf\xc3\xa9"), "caf\xc3\xa9");
}

TEST(MetricParser, OneLineCanYieldSeveralMetrics) {
  MetricParser p = Make({{"loss", R"(loss=([-+0-9.eE]+))"},
                         {"acc", R"(acc=([-+0-9.eE]+))"},
                         {"lr", R"(lr=([-+0-9.eE]+))"}});
  auto hits = p.Parse("step 10 loss=0.25 acc=0.9");
  ASSERT_EQ(hits.size(), 2u);
  EXPECT_EQ(hits[0].name, "loss");
  EXPECT_DOUBLE_EQ(hits[0].value, 0.25);
  EXPECT_EQ(hits[1].name, "acc");
  EXPECT_DOUBLE_EQ(hits[1].value, 0.9);
}

TEST(MetricParser, RegexWithoutCaptureGroupUsesTheWholeMatch) {
  MetricParser p = Make({{"number", R"([0-9]+\.[0-9]+)"}});
  auto hits = p.Parse("the value is 3.75 today");
  ASSERT_EQ(hits.size(), 1u);
  EXPECT_DOUBLE_EQ(hits[0].value, 3.75);
}

TEST(MetricParser, UsesTheFirstCaptureGroupWhenThereAreSeveral) {
  MetricParser p = Make({{"m", R"((\d+\.\d+) \((\d+)\))"}});
  auto hits = p.Parse("m 0.5 (7)");
  ASSERT_EQ(hits.size(), 1u);
  EXPECT_DOUBLE_EQ(hits[0].value, 0.5);
}

TEST(MetricParser, NonFiniteAndEmptyValuesAreSkippedAndCounted) {
  MetricParser p = Make({{"loss", R"(loss=(\S*))"}});
  EXPECT_TRUE(p.Parse("loss=nan").empty());
  // The first skip of each metric is handed out once, for the note in the trial's log.
  EXPECT_EQ(p.TakeFirstSkips(), (std::vector<std::pair<std::string, std::string>>{{"loss", "nan"}}));
  EXPECT_TRUE(p.TakeFirstSkips().empty());
  EXPECT_TRUE(p.Parse("loss=inf").empty());
  EXPECT_TRUE(p.TakeFirstSkips().empty()) << "once per metric";
  EXPECT_TRUE(p.Parse("loss=-inf").empty());
  EXPECT_TRUE(p.Parse("loss=NaN").empty());
  EXPECT_TRUE(p.Parse("loss=").empty());
  EXPECT_TRUE(p.Parse("loss=0x10").empty());
  EXPECT_TRUE(p.Parse("loss=1e999").empty());  // overflows to infinity
  EXPECT_EQ(p.skipped(), 7u);
  auto hits = p.Parse("loss=0.5");
  ASSERT_EQ(hits.size(), 1u);
  EXPECT_EQ(hits[0].step, 0u) << "skipped values do not count as emissions";
}

TEST(MetricParser, OptionalGroupThatDidNotTakePartIsSkipped) {
  MetricParser p = Make({{"m", R"(m(?:=([0-9]+))?)"}});
  EXPECT_TRUE(p.Parse("m here").empty());
  EXPECT_EQ(p.skipped(), 1u);
}

TEST(MetricParser, AcceptsScientificNotationSignsAndIntegers) {
  MetricParser p = Make({{"v", R"(v=(\S+))"}});
  struct Case {
    const char* line;
    double value;
  } cases[] = {{"v=1e-3", 1e-3},  {"v=2.5E+10", 2.5e10}, {"v=+0.5", 0.5}, {"v=-7", -7.0},
               {"v=42", 42.0},    {"v=.25", 0.25},       {"v=3.", 3.0},   {"v=-1.5e2", -150.0},
               {"v=1e-400", 0.0}};
  for (const auto& c : cases) {
    auto hits = p.Parse(c.line);
    ASSERT_EQ(hits.size(), 1u) << c.line;
    EXPECT_DOUBLE_EQ(hits[0].value, c.value) << c.line;
  }
  EXPECT_EQ(p.skipped(), 0u);
}

TEST(MetricParser, ParseMetricValueRejectsMalformedText) {
  double v = 123;
  for (const char* bad : {"", " ", "+", "-", ".", "e5", "1e", "1e+", "1.2.3", "12abc", "--1", "1,5", "nan", "inf",
                          "infinity", "0x1p3"}) {
    EXPECT_FALSE(ParseMetricValue(bad, &v)) << '"' << bad << '"';
  }
  EXPECT_EQ(v, 123) << "a rejected value leaves the output alone";
  ASSERT_TRUE(ParseMetricValue("  0.125\r", &v));
  EXPECT_DOUBLE_EQ(v, 0.125);
}

TEST(MetricParser, StepsCountEmissionsPerMetricName) {
  MetricParser p = Make({{"loss", R"(loss=([0-9.]+))"}, {"acc", R"(acc=([0-9.]+))"}});
  std::vector<MetricHit> all;
  for (const char* line : {"loss=0.9", "acc=0.1", "loss=0.8 acc=0.2", "nothing here", "loss=0.7"}) {
    for (auto& h : p.Parse(line)) all.push_back(h);
  }
  ASSERT_EQ(all.size(), 5u);
  EXPECT_EQ(all[0].name, "loss");
  EXPECT_EQ(all[0].step, 0u);
  EXPECT_EQ(all[1].name, "acc");
  EXPECT_EQ(all[1].step, 0u);
  EXPECT_EQ(all[2].name, "loss");
  EXPECT_EQ(all[2].step, 1u);
  EXPECT_EQ(all[3].name, "acc");
  EXPECT_EQ(all[3].step, 1u);
  EXPECT_EQ(all[4].name, "loss");
  EXPECT_EQ(all[4].step, 2u);
  EXPECT_DOUBLE_EQ(all[4].value, 0.7);
}

TEST(MetricParser, BadRegexIsAnErrorNamingTheMetric) {
  auto p = MetricParser::Create({{"good", "x=([0-9]+)"}, {"validation:loss", "loss=([0-9"}});
  ASSERT_FALSE(p.ok());
  EXPECT_EQ(p.status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(p.status().message().find("validation:loss"), std::string::npos) << p.status().message();
}

TEST(MetricParser, LongLinesAreMatchedOnTheirFirst64KiB) {
  MetricParser p = Make({{"loss", R"(loss=([0-9.]+))"}});
  std::string head = "loss=0.5 " + std::string(MetricParser::kMaxLineBytes, 'x') + " loss2=";
  auto hits = p.Parse(head);
  ASSERT_EQ(hits.size(), 1u);
  EXPECT_DOUBLE_EQ(hits[0].value, 0.5);

  MetricParser q = Make({{"late", R"(late=([0-9.]+))"}});
  std::string tail = std::string(MetricParser::kMaxLineBytes, 'x') + "late=1.0";
  EXPECT_TRUE(q.Parse(tail).empty()) << "text past the limit is not looked at";
}

// A progress bar redraws itself with '\r': the value is the last redraw's (what a terminal shows),
// as it is for an overlong line, and one per line. It was the first redraw's: a Keras-style
// objective was its first batch's loss.
TEST(MetricParser, ProgressLinesGiveTheirLastRedrawsValue) {
  MetricParser p = Make({{"loss", R"( - loss: ([0-9.]+))"}, {"val_loss", R"(val_loss: ([0-9.]+))"}});
  auto hits = p.Parse("1/3 [=>..] - loss: 0.9000\r2/3 [==>.] - loss: 0.5000\r3/3 [====] - loss: 0.3000 - val_loss: 0.41");
  ASSERT_EQ(hits.size(), 2u);
  EXPECT_EQ(hits[0].name, "loss");
  EXPECT_DOUBLE_EQ(hits[0].value, 0.3);
  EXPECT_EQ(hits[1].name, "val_loss");
  EXPECT_DOUBLE_EQ(hits[1].value, 0.41);
  // A later redraw without the metric: the last one that has it.
  hits = p.Parse("epoch 2 - loss: 0.25\rdone");
  ASSERT_EQ(hits.size(), 1u);
  EXPECT_DOUBLE_EQ(hits[0].value, 0.25);
  EXPECT_EQ(hits[0].step, 1u);
}

// A CRLF line ending (a program that writes "\r\n", or output through a pseudo-terminal) does not
// defeat a regex anchored with '$'.
TEST(MetricParser, CrlfEndingsMatchRegexesAnchoredAtTheEnd) {
  MetricParser p = Make({{"k", "k=([0-9]+)$"}});
  auto hits = p.Parse("k=1\r");
  ASSERT_EQ(hits.size(), 1u);
  EXPECT_DOUBLE_EQ(hits[0].value, 1);
  hits = p.Parse("k=2\r\r");
  ASSERT_EQ(hits.size(), 1u);
  EXPECT_DOUBLE_EQ(hits[0].value, 2);
}

// A regex written against SageMaker's escaped form of the carriage return still matches the whole
// line's escaped form.
TEST(MetricParser, RegexesForTheEscapedCarriageReturnStillMatch) {
  MetricParser p = Make({{"x", "#015x=([0-9]+)"}});
  auto hits = p.Parse("a\rx=7");
  ASSERT_EQ(hits.size(), 1u);
  EXPECT_DOUBLE_EQ(hits[0].value, 7);
}

// Bytes that are not UTF-8 (a Latin-1 micro sign) stopped '.' from matching across them, so
// SageMaker's own XGBoost regex found nothing on such a line, silently.
TEST(MetricParser, InvalidUtf8DoesNotStopDotFromMatching) {
  MetricParser p = Make({{"validation:auc", kXgbValidationAuc}, {"bin", R"(^.*bin=([0-9.]+))"}});
  auto hits = p.Parse("[3]\tlr=1e-3 \xb5s/step\tvalidation-auc:0.91");
  ASSERT_EQ(hits.size(), 1u);
  EXPECT_DOUBLE_EQ(hits[0].value, 0.91);
  hits = p.Parse("\xff\xfe bin=0.3");
  ASSERT_EQ(hits.size(), 1u);
  EXPECT_DOUBLE_EQ(hits[0].value, 0.3);
  // Valid UTF-8 in the line and in the regex is matched as it is.
  MetricParser u = Make({{"t", "\xc2\xb5s=([0-9]+)"}});
  hits = u.Parse("step \xc2\xb5s=12");
  ASSERT_EQ(hits.size(), 1u);
  EXPECT_DOUBLE_EQ(hits[0].value, 12);
}

TEST(MetricParser, NoDefinitionsFindNothing) {
  MetricParser p = Make({});
  EXPECT_TRUE(p.Parse("loss=0.5").empty());
}

TEST(MetricParser, MovedParserKeepsItsCounters) {
  MetricParser p = Make({{"loss", R"(loss=([0-9.]+))"}});
  ASSERT_EQ(p.Parse("loss=1").size(), 1u);
  MetricParser q = std::move(p);
  auto hits = q.Parse("loss=2");
  ASSERT_EQ(hits.size(), 1u);
  EXPECT_EQ(hits[0].step, 1u);
}

}  // namespace
}  // namespace hpo::worker
