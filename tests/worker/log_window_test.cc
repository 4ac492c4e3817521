// LogWindow: lines are numbered as added; the head is held whole, past it only the newest `tail`
// lines (and `tail_bytes`) are held, and what is taken comes in consecutive batches, so that the
// coordinator stores exactly what it would have kept of the whole output.
#include "worker/log_window.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

namespace hpo::worker {
namespace {

// Every batch the window gives, until it is empty.
std::vector<LogWindow::Batch> Drain(LogWindow& w, size_t max_lines = 1000, size_t max_bytes = 1 << 20) {
  std::vector<LogWindow::Batch> out;
  while (!w.empty()) out.push_back(w.Take(max_lines, max_bytes));
  return out;
}

TEST(LogWindow, ShortOutputComesWholeAndNumberedFromZero) {
  LogWindow w(10, 10, 1 << 20);
  EXPECT_TRUE(w.empty());
  EXPECT_TRUE(w.Take(100, 1 << 20).lines.empty());
  for (int i = 0; i < 15; ++i) w.Add("line " + std::to_string(i));
  auto batches = Drain(w);
  ASSERT_EQ(batches.size(), 2u) << "the head and the rest come apart";
  EXPECT_EQ(batches[0].first_line, 0u);
  EXPECT_EQ(batches[0].lines.size(), 10u);
  EXPECT_EQ(batches[1].first_line, 10u);
  ASSERT_EQ(batches[1].lines.size(), 5u);
  EXPECT_EQ(batches[1].lines.back(), "line 14");
  EXPECT_EQ(w.lines_added(), 15u);
  EXPECT_EQ(w.lines_left_out(), 0u);
}

TEST(LogWindow, AFloodKeepsTheHeadAndOnlyTheNewestTailLines) {
  LogWindow w(100, 50, 1 << 20);
  for (int i = 0; i < 100000; ++i) w.Add(std::to_string(i));
  auto batches = Drain(w);
  ASSERT_EQ(batches.size(), 2u);
  EXPECT_EQ(batches[0].first_line, 0u);
  ASSERT_EQ(batches[0].lines.size(), 100u);
  EXPECT_EQ(batches[0].lines[99], "99");
  EXPECT_EQ(batches[1].first_line, 100000u - 50u) << "a gap: the coordinator drops those lines anyway";
  ASSERT_EQ(batches[1].lines.size(), 50u);
  EXPECT_EQ(batches[1].lines.front(), "99950");
  EXPECT_EQ(batches[1].lines.back(), "99999");
  EXPECT_EQ(w.lines_left_out(), 100000u - 150u);
}

TEST(LogWindow, LinesTakenBeforeTheFloodStaySentAndTheNumbersGoOn) {
  LogWindow w(4, 3, 1 << 20);
  for (int i = 0; i < 6; ++i) w.Add(std::to_string(i));
  auto first = Drain(w);
  ASSERT_EQ(first.size(), 2u);
  EXPECT_EQ(first[1].first_line, 4u);
  EXPECT_EQ(first[1].lines.size(), 2u);
  for (int i = 6; i < 20; ++i) w.Add(std::to_string(i));
  auto second = Drain(w);
  ASSERT_EQ(second.size(), 1u);
  EXPECT_EQ(second[0].first_line, 17u);
  EXPECT_EQ(second[0].lines, (std::vector<std::string>{"17", "18", "19"}));
}

TEST(LogWindow, TakeStopsAtItsLineAndByteLimitsButTakesAtLeastOneLine) {
  LogWindow w(100, 100, 1 << 20);
  for (int i = 0; i < 10; ++i) w.Add(std::string(10, 'a' + i));
  auto b = w.Take(3, 1 << 20);
  EXPECT_EQ(b.first_line, 0u);
  EXPECT_EQ(b.lines.size(), 3u);
  b = w.Take(100, 25);  // 10 + 10 reach 20 < 25, the third makes 30: no more after it
  EXPECT_EQ(b.first_line, 3u);
  EXPECT_EQ(b.lines.size(), 3u);
  b = w.Take(100, 1);
  EXPECT_EQ(b.first_line, 6u);
  EXPECT_EQ(b.lines.size(), 1u) << "a line longer than the byte limit still goes, alone";
}

TEST(LogWindow, TheTailIsAlsoBoundedInBytesButKeepsTheNewestLine) {
  LogWindow w(0, 1000, 100);
  for (int i = 0; i < 50; ++i) w.Add(std::string(30, 'x') + std::to_string(i % 10));
  auto batches = Drain(w);
  ASSERT_EQ(batches.size(), 1u);
  EXPECT_EQ(batches[0].lines.size(), 3u) << "three 31-byte lines fit in 100 bytes";
  EXPECT_EQ(batches[0].first_line, 47u);
  w.Add(std::string(500, 'y'));  // alone over the limit: held, it is the newest
  auto big = Drain(w);
  ASSERT_EQ(big.size(), 1u);
  EXPECT_EQ(big[0].first_line, 50u);
  EXPECT_EQ(big[0].lines[0].size(), 500u);
}

}  // namespace
}  // namespace hpo::worker
