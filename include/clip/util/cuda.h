#pragma once
/// What the LibTorch that libclip was built against offers for GPUs.
///
///   if (auto why = clip::cuda_unavailable_reason(); !why.empty()) std::cerr << why << "\n";
#include <string>

namespace clip {

/// Whether LibTorch's CUDA backend is compiled in and linked (true on a CUDA build on a machine without a GPU).
bool cuda_built();

/// "" when a CUDA device can be used; else why not: "no CUDA device visible (no GPU or no driver)" on a CUDA
/// build, "this LibTorch was built without CUDA" on a CPU-only one.
std::string cuda_unavailable_reason();

}  // namespace clip
