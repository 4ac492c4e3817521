// cli/cli_util.h: the table lines the CLI prints (hpo search, hpo compare, hpo workers).

#include "cli/cli_util.h"

#include <gtest/gtest.h>

namespace hpo::cli {
namespace {

TEST(AlignedRows, ColumnsAreAsWideAsTheirWidestCellInCharacters) {
  // "é" is two bytes: counted as bytes, the row after it lost a column's alignment.
  const std::vector<std::string> lines =
      AlignedRows({{"NAME", "OPTIMIZER", "LR"}, {"a", "adam", "0.1"}, {"long-name", "rmsprop-é", "1"}});
  ASSERT_EQ(lines.size(), 3u);
  EXPECT_EQ(lines[0], "NAME       OPTIMIZER  LR");
  EXPECT_EQ(lines[1], "a          adam       0.1");
  EXPECT_EQ(lines[2], "long-name  rmsprop-é  1");
}

TEST(AlignedRows, RowsMayBeShorterAndNothingIsPaddedAtTheEnd) {
  const std::vector<std::string> lines = AlignedRows({{"A", "B"}, {"wide"}});
  ASSERT_EQ(lines.size(), 2u);
  EXPECT_EQ(lines[0], "A     B");
  EXPECT_EQ(lines[1], "wide");
  EXPECT_TRUE(AlignedRows({}).empty());
}

// Webhook URLs curl would refuse at every POST (their events then waited 24 hours) are refused
// when the options are read; those curl takes pass, whatever their scheme's case.
TEST(HttpUrlProblem, NamesWhatCurlWouldRefuse) {
  for (const std::string good :
       {"http://127.0.0.1:21007/x", "https://hooks.slack.com/services/T0/B0/x?y=1#z",
        "https://user:pw@example.com:8443/a%20b", "http://[::1]:8080/x", "http://host.example"}) {
    EXPECT_EQ(HttpUrlProblem(good), "") << good;
  }
  const std::vector<std::pair<std::string, std::string>> bad = {
      {"notaurl", "give an http:// or https:// URL"},
      {"ftp://x/y", "not ftp://"},
      {"HTTP://127.0.0.1/x", "write its scheme in lower case: http://"},
      {"http://127.0.0.1:99999/x", "the port '99999'"},
      {"http://host:notaport/x", "the port 'notaport'"},
      {"http://host:/x", "no port after it"},
      {"http://", "has no host"},
      {"http:///path", "has no host"},
      {"http://127.0.0.1:21007/a b", "no spaces"},
      {"http://h/x\n", "control characters"},
      {"http://a/c1,http://b/c2", "holds a second URL"},
      {"http://a/e1 http://b/e2", "holds a second URL"},
      {"http://ho$t/x", "no host name or address"},
      {"http://[::1/x", "no closing ]"},
  };
  for (const auto& [url, why] : bad) {
    const std::string problem = HttpUrlProblem(url);
    EXPECT_NE(problem.find(why), std::string::npos) << url << ": " << problem;
  }
}

// A security pass: --http [::1]:7780 kept the brackets, and the listen failed ("not an address of
// this machine").
TEST(HostPort, AnIpv6AddressComesWithoutItsBrackets) {
  EXPECT_EQ(HostPort("--http", "[::1]:7780", "127.0.0.1:7780"), (std::pair<std::string, int>{"::1", 7780}));
  EXPECT_EQ(HostPort("--http", "[::]:0", "127.0.0.1:7780"), (std::pair<std::string, int>{"::", 0}));
  EXPECT_EQ(HostPort("--http", "127.0.0.1:7780", "127.0.0.1:7780"), (std::pair<std::string, int>{"127.0.0.1", 7780}));
  // And a URL puts them back (the coordinator printed http://::1:7780, which nothing takes).
  EXPECT_EQ(UrlHost("::1"), "[::1]");
  EXPECT_EQ(UrlHost("127.0.0.1"), "127.0.0.1");
  EXPECT_EQ(UrlHost("[::1]"), "[::1]");
}

// A CLI pass: after a resume the progress line read "0 failed, 2 infrastructure errors" above a
// summary and hpo trials that said "2 failed (2 by infrastructure)". Failed counts both kinds.
TEST(ProgressLine, FailedCountsBothKindsAndSaysWhichWereOfInfrastructure) {
  proto::DescribeTuningJobResponse d;
  d.spec.hyper_parameter_tuning_job_name = "slow";
  d.status.hyper_parameter_tuning_job_status = "Completed";
  d.status.training_job_status_counters = proto::TrainingJobStatusCounters{4, 0, 2, 1, 0};
  const std::string line = ProgressLine(d, 65'000, 7, 0);
  EXPECT_EQ(line, "slow  Completed  7/7 done, 0 running, 3 failed (2 by infrastructure)  00:01:05");
  EXPECT_EQ(ProgressLine(d, 65'000, 7, 0, 60), "slow  Completed  7/7 done, 0 running, 3 failed  00:01:05")
      << "narrow: the part in brackets goes first";
}

}  // namespace
}  // namespace hpo::cli
