#include "clip/util/cpu_split.h"

#include <sched.h>

#include <algorithm>
#include <cstdio>
#include <thread>

namespace clip {

std::string describe(const CpuSplit& s) {
  // The cores' time, or the CPU time counted when that is more: over a window of a few hundredths of a second the
  // kernel's CPU accounting can exceed cores x wall, and the shares must still add up to the whole.
  const double total = std::max({1e-9, double(s.cores) * s.wall_seconds, s.model + s.decoding + s.idle});
  char line[160];
  std::snprintf(line, sizeof line, "%d core%s x %.1f s: model %.0f%%, decoding %.0f%%, idle %.0f%%", s.cores,
                s.cores == 1 ? "" : "s", s.wall_seconds, 100 * s.model / total, 100 * s.decoding / total,
                100 * s.idle / total);
  return line;
}

int usable_cores() {
  cpu_set_t set;
  CPU_ZERO(&set);
  if (sched_getaffinity(0, sizeof set, &set) == 0) return std::max(1, CPU_COUNT(&set));
  return std::max(1, int(std::thread::hardware_concurrency()));
}

}  // namespace clip
