#include "clip/util/threads.h"

#include <ATen/Parallel.h>

#include <algorithm>
#include <thread>

namespace clip {

int set_cpu_threads(int requested) {
  // Debian's OpenMP LibTorch starts with one thread whatever the machine has; tools want every core unless
  // told otherwise.
  const int threads = requested > 0 ? requested : std::max(1, static_cast<int>(std::thread::hardware_concurrency()));
  at::set_num_threads(threads);
  return threads;
}

}  // namespace clip
