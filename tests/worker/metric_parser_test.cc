#include "worker/metric_parser.h"

#include <algorithm>
#include <cmath>
#include <map>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "common/text.h"
#include "proto/builtin_algorithms.h"

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

TEST(MetricParser, LongLinesAreMatchedOnTheirFirst128KiB) {
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

// "nan" and "inf" give no value but are named (a run that diverged: its last value is then not a
// number); malformed text is not.
TEST(MetricParser, NonFiniteNumbersAreNamedAndMalformedTextIsNot) {
  MetricParser p = Make({{"loss", R"(loss=(\S+))"}, {"acc", R"(acc=(\S+))"}});
  EXPECT_TRUE(p.Parse("loss=nan acc=0.5").size() == 1u);
  EXPECT_EQ(p.NonFinite(), std::vector<std::string>{"loss"});
  for (const char* text : {"loss=-Inf", "loss=NaN", "loss=+infinity", "loss=1e999", "loss=-nan"}) {
    EXPECT_TRUE(p.Parse(text).empty()) << text;
    EXPECT_EQ(p.NonFinite(), std::vector<std::string>{"loss"}) << text;
  }
  EXPECT_TRUE(p.Parse("loss=abc").empty());
  EXPECT_TRUE(p.NonFinite().empty()) << "malformed, not a number at all";
  EXPECT_EQ(p.Parse("loss=0.25").size(), 1u);
  EXPECT_TRUE(p.NonFinite().empty()) << "cleared at each line";
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

// ---- SageMaker's built-in algorithms (proto/builtin_algorithms.h) --------------------------------

// What the definitions hpo gives a training job of `image` with objective `objective` read from
// one log line, name -> value.
std::map<std::string, double> BuiltIn(const std::string& image, const std::string& objective,
                                      const std::string& line) {
  std::vector<MetricDefinitionSpec> defs;
  for (const auto& d : proto::BuiltInMetricDefinitions(image, objective)) defs.push_back({*d.name, *d.regex});
  EXPECT_FALSE(defs.empty()) << image << " " << objective;
  EXPECT_EQ(defs.empty() ? "" : defs[0].name, objective) << "the objective's definition comes first";
  std::map<std::string, double> out;
  for (const MetricHit& h : Make(defs).Parse(line)) out[h.name] = h.value;
  return out;
}
using Values = std::map<std::string, double>;

// The log lines below are the algorithms' own, as their CloudWatch logs show them (a prefix of
// date, level and thread, then the metric); each yields the metric it reports and nothing else.
TEST(BuiltInMetrics, LinearLearnersDefinitionsReadItsLines) {
  const std::string image = "382416733822.dkr.ecr.us-east-1.amazonaws.com/linear-learner:1";
  const std::string p = "[07/17/2024 19:38:23 INFO 139933004003136] ";
  // The objective loss is logged under the loss function's name; the validation one per epoch.
  EXPECT_EQ(BuiltIn(image, "validation:objective_loss",
                    p + "#quality_metric: host=algo-1, epoch=0, validation "
                        "binary_classification_cross_entropy_objective <loss>=0.508278604365"),
            (Values{{"validation:objective_loss", 0.508278604365}}));
  EXPECT_EQ(BuiltIn(image, "validation:objective_loss",
                    p + "#quality_metric: host=algo-1, validation multiclass_cross_entropy_objective <loss>=0.1778"),
            Values{})
      << "SageMaker's validation:objective_loss reads the epochs' lines, not the final model's";
  EXPECT_EQ(BuiltIn(image, "test:objective_loss",
                    p + "#quality_metric: host=algo-1, test mse_objective <loss>=0.25"),
            (Values{{"test:objective_loss", 0.25}}));
  EXPECT_EQ(BuiltIn(image, "validation:macro_f_beta",
                    p + "#quality_metric: host=algo-1, validation macro_f_1.000 <score>=0.9140763282775879"),
            (Values{{"validation:macro_f_beta", 0.9140763282775879}}));
  EXPECT_EQ(BuiltIn(image, "validation:multiclass_accuracy",
                    p + "#quality_metric: host=algo-1, validation multiclass_top_k_accuracy_3 <score>=1.0"),
            (Values{{"validation:multiclass_top_k_accuracy", 1.0}}));
  EXPECT_EQ(BuiltIn(image, "validation:multiclass_accuracy",
                    p + "#quality_metric: host=algo-1, validation multiclass_accuracy <score>=0.9469825155104343"),
            (Values{{"validation:multiclass_accuracy", 0.9469825155104343}}));
  EXPECT_EQ(BuiltIn(image, "validation:mse", "#quality_metric: host=algo-1, validation mse <loss>=13.7226685169"),
            (Values{{"validation:mse", 13.7226685169}}));
  EXPECT_EQ(BuiltIn(image, "test:precision", p + "#quality_metric: host=algo-2, test macro_precision <score>=0.5"),
            (Values{{"test:macro_precision", 0.5}}))
      << "precision is not macro_precision; any host";
  EXPECT_EQ(BuiltIn(image, "test:binary_f_beta", p + "#quality_metric: host=algo-1, test binary_f_0.500 <score>=0.7"),
            (Values{{"test:binary_f_beta", 0.7}}));
  EXPECT_EQ(BuiltIn(image, "test:mse", p + "#progress_metric: host=algo-1, completed 6 % of epochs"), Values{});
}

TEST(BuiltInMetrics, TheOtherAlgorithmsDefinitionsReadTheirLines) {
  const std::string ecr = "174872318107.dkr.ecr.us-west-2.amazonaws.com/";
  const std::string p = "[02/23/2019 22:01:02 INFO 140697667364672] ";
  EXPECT_EQ(BuiltIn(ecr + "kmeans:1", "test:msd", p + "#quality_metric: host=algo-1, test msd <loss>=0.0657843798399"),
            (Values{{"test:msd", 0.0657843798399}}));
  EXPECT_EQ(BuiltIn(ecr + "kmeans:1", "test:ssd", p + "#quality_metric: host=algo-1, train msd <loss>=0.06"),
            Values{});
  // Factorization Machines and k-NN: the test summary line, or its #quality_metric twin.
  EXPECT_EQ(BuiltIn(ecr + "factorization-machines:1", "test:rmse",
                    p + "#test_score (algo-1) : ('rmse', 0.19088356774389661)"),
            (Values{{"test:rmse", 0.19088356774389661}}));
  EXPECT_EQ(BuiltIn(ecr + "factorization-machines:1", "test:binary_f_beta",
                    p + "#quality_metric: host=algo-1, test binary_f_1.000 <score>=0.81"),
            (Values{{"test:binary_f_beta", 0.81}}));
  EXPECT_EQ(BuiltIn(ecr + "knn:1", "test:accuracy", p + "#test_score (algo-1) : ('accuracy', 0.98666666666666669)"),
            (Values{{"test:accuracy", 0.98666666666666669}}));
  EXPECT_EQ(BuiltIn(ecr + "knn:1", "test:mse", p + "#test_score (algo-1) : ('mse', 0.013333333333333334)"),
            (Values{{"test:mse", 0.013333333333333334}}));
  // DeepAR: the final loss may be negative; the per-batch training loss is no metric to tune.
  const std::string deepar = ecr + "forecasting-deepar:1";
  EXPECT_EQ(BuiltIn(deepar, "test:RMSE", p + "#quality_metric: host=algo-1, test RMSE <loss>=0.3283896350838211"),
            (Values{{"test:RMSE", 0.3283896350838211}}));
  EXPECT_EQ(BuiltIn(deepar, "test:RMSE",
                    p + "#quality_metric: host=algo-1, test mean_wQuantileLoss <loss>=0.03412824351371161"),
            (Values{{"test:mean_wQuantileLoss", 0.03412824351371161}}));
  EXPECT_EQ(BuiltIn(deepar, "train:final_loss",
                    p + "#quality_metric: host=algo-1, train final_loss <loss>=-0.1284581024199724"),
            (Values{{"train:final_loss", -0.1284581024199724}}));
  EXPECT_EQ(BuiltIn(deepar, "train:final_loss",
                    p + "#quality_metric: host=algo-1, epoch=0, batch=0 train loss <loss>=2.3160951137542725"),
            Values{});
  // Object Detection writes its mAP in parentheses; IP Insights its AUC per epoch.
  EXPECT_EQ(BuiltIn(ecr + "object-detection:1", "validation:mAP",
                    p + "#quality_metric: host=algo-1, epoch=3, validation mAP <score>=(0.3127)"),
            (Values{{"validation:mAP", 0.3127}}));
  EXPECT_EQ(BuiltIn(ecr + "ipinsights:1", "validation:discriminator_auc",
                    p + "#quality_metric: host=algo-1, epoch=1, validation discriminator_auc <score>=0.912"),
            (Values{{"validation:discriminator_auc", 0.912}}));
  // Image Classification (MXNet's epoch lines) and BlazingText.
  const std::string ic = ecr + "image-classification:1";
  EXPECT_EQ(BuiltIn(ic, "validation:accuracy", "[09/07/2019 22:57:59 INFO 140484553713472] Epoch[0] "
                                               "Validation-accuracy=0.771429"),
            (Values{{"validation:accuracy", 0.771429}}));
  EXPECT_EQ(BuiltIn(ic, "validation:accuracy", "[09/07/2019 22:57:58 INFO 140484553713472] Epoch[0] "
                                               "Train-accuracy=0.375000"),
            Values{});
  EXPECT_EQ(BuiltIn(ecr + "blazingtext:1", "validation:accuracy", "#validation_accuracy: 0.9228"),
            (Values{{"validation:accuracy", 0.9228}}));
  EXPECT_EQ(BuiltIn(ecr + "blazingtext:1", "validation:accuracy", "#train_accuracy: 0.9888"), Values{});
}

// Every definition hpo gives compiles in RE2, reads a number of its own metric's line, and
// no other metric of the same algorithm reads that line (names that are prefixes of others:
// precision and macro_precision, multiclass_accuracy and multiclass_top_k_accuracy, mse and rmse).
TEST(BuiltInMetrics, EachMetricsLineYieldsThatMetricAlone) {
  struct Case {
    std::string image, metric, line;
  };
  const std::string ll = "382416733822.dkr.ecr.us-east-1.amazonaws.com/linear-learner:1";
  std::vector<Case> cases;
  for (const std::string c : {"test", "validation"}) {
    const std::string e = c == "validation" ? "epoch=4, " : "";
    auto q = [&](const std::string& name, const std::string& tag) {
      return "#quality_metric: host=algo-1, " + e + c + " " + name + " <" + tag + ">=0.625";
    };
    cases.push_back({ll, c + ":objective_loss", q("squared_loss_objective", "loss")});
    for (const std::string name : {"absolute_loss", "mse"}) {
      cases.push_back({ll, c + ":" + name, "#quality_metric: host=algo-1, " + c + " " + name + " <loss>=0.625"});
    }
    for (const std::string name : {"binary_classification_accuracy", "dcg", "macro_precision", "macro_recall",
                                   "multiclass_accuracy", "precision", "recall", "roc_auc_score"}) {
      cases.push_back({ll, c + ":" + name, "#quality_metric: host=algo-1, " + c + " " + name + " <score>=0.625"});
    }
  }
  for (const auto& c : cases) {
    SCOPED_TRACE(c.line);
    EXPECT_EQ(BuiltIn(c.image, c.metric, c.line), (Values{{c.metric, 0.625}}));
  }
  for (const auto& a : std::vector<std::string>{"kmeans", "factorization-machines", "knn", "forecasting-deepar",
                                                "object-detection", "ipinsights", "image-classification",
                                                "blazingtext", "linear-learner", "sagemaker-xgboost"}) {
    const auto alg = proto::BuiltInAlgorithmFor("example.com/" + a + ":1");
    ASSERT_TRUE(alg.has_value()) << a;
    for (const auto& m : alg->metrics) {
      if (a == "sagemaker-xgboost") continue;  // any eval_metric: covered by the XGBoost tests
      const bool unread = std::count(alg->metrics_without_regex.begin(), alg->metrics_without_regex.end(), m) > 0;
      const auto defs = proto::BuiltInMetricDefinitions("example.com/" + a + ":1", m);
      EXPECT_EQ(defs.empty(), unread) << a << " " << m;
      std::vector<MetricDefinitionSpec> specs;
      for (const auto& d : defs) specs.push_back({*d.name, *d.regex});
      EXPECT_TRUE(MetricParser::Create(specs).ok()) << a << " " << m;
    }
  }
}

}  // namespace
}  // namespace hpo::worker
