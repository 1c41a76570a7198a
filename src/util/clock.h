#pragma once
// Wall-clock durations for the library's own timings (data waits, model time, benchmark steps).
#include <chrono>

namespace clip {

using Clock = std::chrono::steady_clock;

/// Seconds from `start` to now.
inline double seconds_since(Clock::time_point start) {
  return std::chrono::duration<double>(Clock::now() - start).count();
}

}  // namespace clip
