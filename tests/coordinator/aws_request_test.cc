// coordinator/aws_request.h: one action handler reads both AWS protocols. A query-protocol form
// becomes the JSON the same request carries, its strings convert through the typed readers, and
// answers and errors come out as XML; malformed forms are refused naming what is wrong.
#include "coordinator/aws_request.h"

#include <string>
#include <vector>

#include <gtest/gtest.h>

namespace hpo::coordinator {
namespace {

constexpr const char* kXmlns = "http://monitoring.amazonaws.com/doc/2010-08-01/";

TEST(AwsQueryRequest, ListsStructuresAndScalarsReadAsTheirJsonForm) {
  AwsRequest r = AwsRequest::Query(
      "Action=GetMetricData&Version=2010-08-01&StartTime=2026-12-05T10%3A00%3A00.250Z&MaxDatapoints=7"
      "&Q.member.2.Id=b&Q.member.1.Id=a&Q.member.1.Stat.Period=60&Q.member.1.Stat.Dims.member.1.Name=n+1"
      "&Q.member.1.On=false&Names.member.1=x&Names.member.2=%C3%A9&Empty=",
      kXmlns);
  ASSERT_FALSE(r.error()) << r.error()->body;
  EXPECT_TRUE(r.query());
  EXPECT_EQ(r.action(), "GetMetricData");
  EXPECT_EQ(r.version(), "2010-08-01");
  EXPECT_EQ(r.Timestamp("StartTime"), 1796464800.25);
  EXPECT_EQ(r.Integer("MaxDatapoints"), 7);
  EXPECT_EQ(r.Strings("Names"), (std::vector<std::string>{"x", "\xC3\xA9"}));
  EXPECT_EQ(r.Strings("Empty"), std::vector<std::string>{}) << "an empty value where a list is wanted";
  auto q = r.Structures("Q");
  ASSERT_TRUE(q);
  ASSERT_EQ(q->size(), 2u);
  EXPECT_EQ((*q)[0].String("Id"), "a") << "ordered by index, not by position in the form";
  EXPECT_EQ((*q)[1].String("Id"), "b");
  EXPECT_EQ((*q)[0].Bool("On"), false);
  auto stat = (*q)[0].Structure("Stat");
  ASSERT_TRUE(stat);
  EXPECT_EQ(stat->Integer("Period"), 60);
  EXPECT_EQ(stat->PathOf("Period"), "Q.member.1.Stat.Period");
  auto dims = stat->Structures("Dims");
  ASSERT_TRUE(dims && dims->size() == 1);
  EXPECT_EQ((*dims)[0].String("Name"), "n 1");
  EXPECT_FALSE(r.String("Absent"));
  EXPECT_FALSE(r.error());
}

TEST(AwsQueryRequest, AValueThatDoesNotConvertIsInvalidAndNamesItsPath) {
  AwsRequest r = AwsRequest::Query("Action=A&Version=1&Q.member.1.Period=6O&When=noon&On=yes", kXmlns);
  ASSERT_FALSE(r.error());
  auto q = r.Structures("Q");
  ASSERT_TRUE(q);
  EXPECT_FALSE((*q)[0].Integer("Period"));
  ASSERT_TRUE(r.error());
  EXPECT_EQ(r.error()->status, 400);
  EXPECT_EQ(r.error()->body,
            "<ErrorResponse xmlns=\"http://monitoring.amazonaws.com/doc/2010-08-01/\"><Error><Type>Sender</Type>"
            "<Code>InvalidParameterValue</Code><Message>The parameter Q.member.1.Period must be an integer, got "
            "&quot;6O&quot;.</Message></Error></ErrorResponse>");
  EXPECT_FALSE(r.Timestamp("When")) << "the first problem is kept";
  EXPECT_NE(r.error()->body.find("Q.member.1.Period"), std::string::npos);
}

TEST(AwsQueryRequest, MalformedFormsAreRefusedNamingTheProblem) {
  auto problem = [](const std::string& form) {
    AwsRequest r = AwsRequest::Query(form, kXmlns);
    if (!r.error()) return std::string("accepted");
    const std::string& b = r.error()->body;
    EXPECT_NE(b.find("<Code>MalformedQueryString</Code>"), std::string::npos) << form << ": " << b;
    const size_t at = b.find("<Message>") + 9;
    return b.substr(at, b.find("</Message>") - at);
  };
  EXPECT_EQ(problem("Version=1"), "the request has no Action");
  EXPECT_EQ(problem("Action=A&Action=B"), "Action is given twice");
  EXPECT_EQ(problem("Action=A&X=1&X=2"), "X is given twice");
  EXPECT_EQ(problem("Action=A&X=%zz"), "the request body is not form-encoded: a bad %-escape in &quot;X=%zz&quot;");
  EXPECT_EQ(problem("Action=A&X=%4"), "the request body is not form-encoded: a bad %-escape in &quot;X=%4&quot;");
  EXPECT_EQ(problem("Action=A&L.member.2=x"), "L.member.1 is missing before L.member.2");
  EXPECT_EQ(problem("Action=A&L.member.0=x"), "the name L.member.0 needs a list index from 1 to 100000");
  EXPECT_EQ(problem("Action=A&L.member.01=x"), "the name L.member.01 needs a list index from 1 to 100000");
  EXPECT_EQ(problem("Action=A&L.member.x=1"), "the name L.member.x needs a list index from 1 to 100000");
  EXPECT_EQ(problem("Action=A&S=1&S.T=2"), "S is given both as a value and as a structure or list");
  EXPECT_EQ(problem("Action=A&S..T=1"), "the name &quot;S..T&quot; has an empty part");
  EXPECT_EQ(problem("Action=A&X=%FF"), "the request body&apos;s names and values must be UTF-8");
  std::string deep = "Action=A&a";
  for (int i = 0; i < 16; ++i) deep += ".a";
  EXPECT_EQ(problem(deep + "=1").rfind("the name a.a.a", 0), 0u);
  EXPECT_EQ(problem("Action=A&&X=1&"), "accepted") << "empty pairs are skipped";
  // A message quoting bytes that are not UTF-8 is still UTF-8 (an XML reader would stop there).
  EXPECT_EQ(problem("Action=A&X\xFF=%zz"),
            "the request body is not form-encoded: a bad %-escape in &quot;X\xEF\xBF\xBD=%zz&quot;");
  std::string dots = "Action=A&";
  dots += std::string(1 << 20, '.');
  EXPECT_EQ(problem(dots + "=1").rfind("the name ....", 0), 0u) << "refused before it is split";
}

TEST(AwsQueryRequest, AnswersAreXmlWithTimestampsAsTimesAndTextEscaped) {
  AwsRequest r = AwsRequest::Query("Action=GetMetricStatistics&Version=2010-08-01", kXmlns);
  ASSERT_FALSE(r.error());
  AwsRequest::Json answer = {{"Label", "a<b & \"c\"\x01"},
                             {"Datapoints", AwsRequest::Json::array({{{"Timestamp", 1764928800.25},
                                                                      {"Sum", 4.0},
                                                                      {"Unit", "None"}}})},
                             {"Timestamps", {1764928800, 1764928860}},
                             {"Flag", true},
                             {"Gone", nullptr}};
  ApiResponse ok = r.Ok(answer);
  EXPECT_EQ(ok.status, 200);
  EXPECT_EQ(ok.content_type, "text/xml");
  EXPECT_EQ(ok.body,
            "<GetMetricStatisticsResponse xmlns=\"http://monitoring.amazonaws.com/doc/2010-08-01/\">"
            "<GetMetricStatisticsResult><Label>a&lt;b &amp; &quot;c&quot;\xEF\xBF\xBD</Label>"
            "<Datapoints><member><Timestamp>2025-12-05T10:00:00.250Z</Timestamp><Sum>4.0</Sum><Unit>None</Unit>"
            "</member></Datapoints><Timestamps><member>2025-12-05T10:00:00Z</member>"
            "<member>2025-12-05T10:01:00Z</member></Timestamps><Flag>true</Flag></GetMetricStatisticsResult>"
            "</GetMetricStatisticsResponse>");
  ApiResponse e = r.Error("Throttling", "slow down", 503);
  EXPECT_EQ(e.body.find("<Type>Receiver</Type><Code>Throttling</Code>") != std::string::npos, true) << e.body;
}

TEST(AwsJsonRequest, TypesAreCheckedAndNestedPathsNamed) {
  AwsRequest r(R"({"Q": [{"Stat": {"Period": "60"}}], "When": 1764928800.5, "L": ["a", 1]})",
               "application/x-amz-json-1.0");
  ASSERT_FALSE(r.error());
  EXPECT_FALSE(r.query());
  EXPECT_EQ(r.Timestamp("When"), 1764928800.5);
  auto q = r.Structures("Q");
  ASSERT_TRUE(q && q->size() == 1);
  auto stat = (*q)[0].Structure("Stat");
  ASSERT_TRUE(stat);
  EXPECT_FALSE(stat->Integer("Period"));
  ASSERT_TRUE(r.error());
  EXPECT_EQ(r.error()->body,
            R"({"__type":"SerializationException","message":"member Q[0].Stat.Period must be an integer, got string"})");
  EXPECT_EQ(r.error()->content_type, "application/x-amz-json-1.0");
  AwsRequest bad("[1]", "application/x-amz-json-1.1");
  ASSERT_TRUE(bad.error());
  EXPECT_NE(bad.error()->body.find("must be a JSON object"), std::string::npos);
  AwsRequest strings(R"({"L": ["a", 1]})", "application/x-amz-json-1.1");
  EXPECT_FALSE(strings.Strings("L"));
  ASSERT_TRUE(strings.error());
  EXPECT_NE(strings.error()->body.find("member L must hold strings"), std::string::npos);
}

}  // namespace
}  // namespace hpo::coordinator
