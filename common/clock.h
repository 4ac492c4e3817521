// common/clock.h: the clock the coordinator and the workers run on.
//
// What it is: milliseconds since the Unix epoch that never go backwards and never jump: the
// system clock read once, when the process first asks, advanced from then on by the monotonic
// clock that counts a suspended machine's sleep too (CLOCK_BOOTTIME; CLOCK_MONOTONIC stops
// meanwhile, and a worker suspended past its lease woke to a lease that looked fresh). Leases, heartbeats, deadlines, resends and ticks are intervals of it, so a system
// clock stepped back (an NTP correction, an operator's `date -s`) no longer silenced a worker's
// heartbeats until its coordinator counted it lost, nor stepped forward ended running training
// jobs as MaxRuntimeExceeded or stopped the coordinator's ticks. Timestamps sent on the wire and
// stored stay close to wall time: both clocks are slewed alike by NTP; a step of the system clock
// reaches a process only when it restarts (the coordinator learns each worker's offset from its
// reports, so a worker whose clock differs is read on the coordinator's).
//
// Thread safety: safe from any thread (the anchor is a function-local static).
#pragma once

#include <time.h>

#include <chrono>
#include <cstdint>

namespace hpo {

// CLOCK_BOOTTIME in milliseconds (monotonic, counting suspend).
inline int64_t BootTimeMs() {
  timespec ts{};
  ::clock_gettime(CLOCK_BOOTTIME, &ts);
  return static_cast<int64_t>(ts.tv_sec) * 1000 + ts.tv_nsec / 1'000'000;
}

inline int64_t MonotonicWallMs() {
  using namespace std::chrono;
  struct Anchor {
    int64_t wall_ms = duration_cast<milliseconds>(system_clock::now().time_since_epoch()).count();
    int64_t boot_ms = BootTimeMs();
  };
  static const Anchor anchor;
  return anchor.wall_ms + (BootTimeMs() - anchor.boot_ms);
}

}  // namespace hpo
