// common/clock.h: the clock the coordinator and the workers run on.
//
// What it is: milliseconds since the Unix epoch that never go backwards and never jump: the
// system clock read once, when the process first asks, advanced by the monotonic clock from
// then on. Leases, heartbeats, deadlines, resends and ticks are intervals of it, so a system
// clock stepped back (an NTP correction, an operator's `date -s`) no longer silenced a worker's
// heartbeats until its coordinator counted it lost, nor stepped forward ended running training
// jobs as MaxRuntimeExceeded or stopped the coordinator's ticks. Timestamps sent on the wire and
// stored stay close to wall time: both clocks are slewed alike by NTP; a step of the system clock
// reaches a process only when it restarts (the coordinator learns each worker's offset from its
// reports, so a worker whose clock differs is read on the coordinator's).
//
// Thread safety: safe from any thread (the anchor is a function-local static).
#pragma once

#include <chrono>
#include <cstdint>

namespace hpo {

inline int64_t MonotonicWallMs() {
  using namespace std::chrono;
  struct Anchor {
    int64_t wall_ms = duration_cast<milliseconds>(system_clock::now().time_since_epoch()).count();
    steady_clock::time_point steady = steady_clock::now();
  };
  static const Anchor anchor;
  return anchor.wall_ms + duration_cast<milliseconds>(steady_clock::now() - anchor.steady).count();
}

}  // namespace hpo
