#include "clip/util/cuda.h"

#include <c10/core/impl/DeviceGuardImplInterface.h>
#include <torch/cuda.h>

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

}  // namespace clip
