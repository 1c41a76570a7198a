#include "clip/util/cuda.h"

#include <c10/core/impl/DeviceGuardImplInterface.h>
#include <torch/cuda.h>

#include "clip/util/error.h"
#include "util/device.h"
#include "util/torch_compat.h"

namespace clip {

bool cuda_built() {
  // CLIP_TORCH_CUDA: the headers were there when libclip was built; the device guard: c10_cuda registered itself
  // when it was loaded, which a LibTorch built without CUDA never does.
  return CLIP_TORCH_CUDA && c10::impl::hasDeviceGuardImpl(c10::DeviceType::CUDA);
}

std::string cuda_unavailable_reason() {
  if (!cuda_built()) return "this LibTorch was built without CUDA";
  if (!torch::cuda::is_available()) return "no CUDA device visible (no GPU or no driver)";
  return "";
}

at::Device parse_device(const std::string& name, const std::string& what) {
  at::Device device(at::kCPU);
  try {
    device = at::Device(name);
  } catch (const std::exception&) {
    fail(what, " '", name, "': expected cpu, cuda or cuda:N");
  }
  if (!device.is_cpu() && !device.is_cuda()) fail(what, " '", name, "': expected cpu, cuda or cuda:N");
  if (device.is_cuda()) {
    if (const std::string why = cuda_unavailable_reason(); !why.empty()) fail(what, " ", name, ": ", why);
  }
  // device_count() is size_t in LibTorch 1.13 and c10::DeviceIndex (int8_t) in 2.9+: compare and print as int64.
  const auto visible = static_cast<int64_t>(torch::cuda::device_count());
  if (device.is_cuda() && device.has_index() && int64_t(device.index()) >= visible) {
    fail(what, " ", name, ": only ", visible, " CUDA device(s) visible");
  }
  return device;
}

}  // namespace clip
