#include "util/memory.h"

#include <sys/resource.h>

#include <cstdio>
#include <fstream>

#include "util/torch_compat.h"

namespace clip {

bool reset_peak_memory(const c10::Device& device) {
  if (device.is_cuda()) {
    compat::cuda_reset_peak_memory(device);
    return true;
  }
  std::ofstream clear("/proc/self/clear_refs");
  clear << "5";
  clear.flush();
  return static_cast<bool>(clear);
}

int64_t peak_memory_bytes(const c10::Device& device) {
  if (device.is_cuda()) return compat::cuda_peak_allocated_bytes(device);
  std::ifstream status("/proc/self/status");
  std::string line;
  while (std::getline(status, line)) {
    if (line.rfind("VmHWM:", 0) == 0) return std::stoll(line.substr(6)) * 1024;  // "VmHWM:   123456 kB"
  }
  rusage usage{};
  getrusage(RUSAGE_SELF, &usage);
  return int64_t(usage.ru_maxrss) * 1024;
}

std::string format_gib(int64_t bytes) {
  if (bytes < 0) return "n/a";
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.2f GiB", double(bytes) / double(1LL << 30));
  return buf;
}

}  // namespace clip
