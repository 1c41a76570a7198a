#pragma once
// Peak memory of this process, for clip_bench and clip_train's reports.
//
//   const bool fresh = clip::reset_peak_memory(device);   // start a new peak (false: the process's whole life)
//   ... work ...
//   std::printf("%s\n", clip::format_gib(clip::peak_memory_bytes(device)).c_str());
#include <c10/core/Device.h>

#include <cstdint>
#include <string>

namespace clip {

/// Starts a new peak: CUDA's allocator statistics (torch.cuda.reset_peak_memory_stats) on a GPU, the process's
/// resident high-water mark (VmHWM, through /proc/self/clear_refs, Linux >= 4.0) on the CPU. False when the CPU
/// peak could not be reset (then peak_memory_bytes covers the process's whole life).
bool reset_peak_memory(const c10::Device& device);

/// The peak since reset_peak_memory: bytes held by CUDA's allocator on a GPU, the process's peak resident memory
/// on the CPU (VmHWM, else getrusage's lifetime peak).
int64_t peak_memory_bytes(const c10::Device& device);

/// "3.21 GiB"; "n/a" for a negative count.
std::string format_gib(int64_t bytes);

}  // namespace clip
