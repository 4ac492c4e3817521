// MonotonicWallMs: wall time that only moves forward, at the monotonic clock's pace.
#include "common/clock.h"

#include <gtest/gtest.h>

#include <chrono>
#include <cstdlib>
#include <thread>

namespace hpo {
namespace {

int64_t SystemMs() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::system_clock::now().time_since_epoch())
      .count();
}

TEST(MonotonicWallMs, StartsAtTheSystemClockAndNeverGoesBack) {
  const int64_t first = MonotonicWallMs();
  EXPECT_LE(std::abs(first - SystemMs()), 1000) << "wall time, not time since boot";
  int64_t last = first;
  for (int i = 0; i < 100000; ++i) {
    const int64_t now = MonotonicWallMs();
    ASSERT_GE(now, last);
    last = now;
  }
  std::this_thread::sleep_for(std::chrono::milliseconds(50));
  const int64_t later = MonotonicWallMs();
  EXPECT_GE(later - first, 50);
  EXPECT_LT(later - first, 5000);
}

}  // namespace
}  // namespace hpo
