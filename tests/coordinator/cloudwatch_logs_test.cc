// The training jobs' output as CloudWatch Logs serves it (coordinator/cloudwatch_logs.h), read
// through HandleLogsAction over a core driven directly.

#include <gtest/gtest.h>

#include <set>
#include <string>

#include <nlohmann/json.hpp>

#include "coordinator/cloudwatch_logs.h"
#include "coordinator/dispatcher.h"
#include "tests/coordinator/core_fixture.h"
#include "tests/coordinator/fake_worker.h"

namespace hpo::coordinator {
namespace {

using Json = nlohmann::json;
using coretest::CoreTest;
using coretest::Only;
using coretest::Spec;

class LogsTest : public CoreTest {
 protected:
  Json Call(Dispatcher& d, const std::string& action, const Json& body, int status = 200) {
    const ApiResponse r = HandleLogsAction(d, action, body.dump());
    EXPECT_EQ(r.status, status) << action << ": " << r.body;
    return Json::parse(r.body);
  }
};

// Two attempts of one host whose first lines fell in one second (a spot interruption's and its
// re-run's) had one stream name, and GetLogEvents by it read only the first's lines (a pass).
// Names are unique: the later attempt's seconds are one more, and an earlier attempt's name never
// changes when a later one appears.
TEST_F(LogsTest, AttemptsThatBeganInOneSecondHaveStreamsOfTheirOwn) {
  Register("w1", 1);
  auto a = Only<proto::wire::AssignTrial>(Submit(Spec("cw", "Random", 1, 1))).at(0);
  const int64_t t = 1'796'674'665'000;
  ASSERT_TRUE(store_->AppendLogs({{0, a.trial, 1, LogLineKey(0, 0), "slow 0", t + 100}}).ok());
  Dispatcher d(core_.get(), LoopbackOptions());
  const Json group = {{"logGroupName", kTrainingJobLogGroup}, {"logStreamNamePrefix", a.trial + "/"}};
  Json one = Call(d, "DescribeLogStreams", group);
  ASSERT_EQ(one["logStreams"].size(), 1u) << one.dump();
  const std::string first = one["logStreams"][0]["logStreamName"];
  EXPECT_EQ(first, a.trial + "/algo-1-1796674665");

  ASSERT_TRUE(store_->AppendLogs({{0, a.trial, 2, LogLineKey(0, 0), "slow 0 again", t + 700},
                                  {0, a.trial, 2, LogLineKey(0, 1), "final_loss=0.1", t + 1900}})
                  .ok());
  Json two = Call(d, "DescribeLogStreams", group);
  ASSERT_EQ(two["logStreams"].size(), 2u) << two.dump();
  std::set<std::string> names;
  for (const auto& s : two["logStreams"]) names.insert(s["logStreamName"].get<std::string>());
  EXPECT_EQ(names, (std::set<std::string>{first, a.trial + "/algo-1-1796674666"})) << two.dump();
  auto read = [&](const std::string& stream) {
    Json page = Call(d, "GetLogEvents",
                     {{"logGroupName", kTrainingJobLogGroup}, {"logStreamName", stream}, {"startFromHead", true}});
    std::string text;
    for (const auto& e : page["events"]) text += e["message"].get<std::string>() + "\n";
    return text;
  };
  EXPECT_EQ(read(first), "slow 0\n");
  EXPECT_EQ(read(a.trial + "/algo-1-1796674666"), "slow 0 again\nfinal_loss=0.1\n");
}

// FilterLogEvents' endTime takes an event at that very time ("later than this time are not
// returned"); GetLogEvents' does not ("equal to or later"). FilterLogEvents left it out.
TEST_F(LogsTest, FilterLogEventsEndTimeIsInclusiveAndGetLogEventsIsNot) {
  Register("w1", 1);
  auto a = Only<proto::wire::AssignTrial>(Submit(Spec("cw", "Random", 1, 1))).at(0);
  const int64_t t = 1'796'674'665'000;
  ASSERT_TRUE(store_->AppendLogs({{0, a.trial, 1, LogLineKey(0, 0), "slow 9", t - 10},
                                  {0, a.trial, 1, LogLineKey(0, 1), "slow 10", t},
                                  {0, a.trial, 1, LogLineKey(0, 2), "slow 11", t + 10}})
                  .ok());
  Dispatcher d(core_.get(), LoopbackOptions());
  const std::string stream = a.trial + "/algo-1-1796674664";
  Json filtered = Call(d, "FilterLogEvents",
                       {{"logGroupName", kTrainingJobLogGroup}, {"logStreamNames", {stream}}, {"startTime", t},
                        {"endTime", t}});
  ASSERT_EQ(filtered["events"].size(), 1u) << filtered.dump();
  EXPECT_EQ(filtered["events"][0]["message"], "slow 10");
  Json got = Call(d, "GetLogEvents",
                  {{"logGroupName", kTrainingJobLogGroup}, {"logStreamName", stream}, {"startTime", t - 10},
                   {"endTime", t}, {"startFromHead", true}});
  ASSERT_EQ(got["events"].size(), 1u) << got.dump();
  EXPECT_EQ(got["events"][0]["message"], "slow 9");
}

}  // namespace
}  // namespace hpo::coordinator
