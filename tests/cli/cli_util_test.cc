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

}  // namespace
}  // namespace hpo::cli
