#pragma once
// Device names from users ("cpu", "cuda", "cuda:1") to at::Device, checked once for every tool and the library:
// a name LibTorch does not know, a CUDA device on a build or machine without one, an index past the visible
// devices are each one clip::Error naming the flag, never LibTorch's backend-dispatch dump. Internal.
#include <ATen/core/Tensor.h>

#include <string>

namespace clip {

/// Parses and checks `name`; `what` names it in errors ("--device").
at::Device parse_device(const std::string& name, const std::string& what = "--device");

}  // namespace clip
