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

// Its pace is CLOCK_BOOTTIME's, which counts a suspended machine's sleep (a suspended worker's
// lease must look as old as it is when it wakes); CLOCK_MONOTONIC stops meanwhile.
TEST(MonotonicWallMs, MovesAtTheBootClocksPace) {
  const int64_t wall0 = MonotonicWallMs(), boot0 = BootTimeMs();
  std::this_thread::sleep_for(std::chrono::milliseconds(100));
  const int64_t wall1 = MonotonicWallMs(), boot1 = BootTimeMs();
  EXPECT_NEAR(static_cast<double>(wall1 - wall0), static_cast<double>(boot1 - boot0), 2.0);
  timespec ts{};
  ASSERT_EQ(::clock_gettime(CLOCK_BOOTTIME, &ts), 0);
  EXPECT_NEAR(static_cast<double>(BootTimeMs()), ts.tv_sec * 1000.0 + ts.tv_nsec / 1e6, 5.0);
}

}  // namespace
}  // namespace hpo
