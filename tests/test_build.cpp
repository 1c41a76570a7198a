// What the LibTorch that libclip was built against provides, checked against what the configuration requires
// (CLIP_REQUIRE_CUDA: the LibTorch 2.x build of CI and GPU machines must have CUDA and NCCL compiled in).
#include <gtest/gtest.h>

#include <torch/version.h>

#include <algorithm>
#include <cstdio>

#include "clip/dist/communicator.h"
#include "clip/util/cuda.h"
#include "clip/util/features.h"

namespace {

bool has(const std::vector<std::string>& names, const std::string& name) {
  return std::find(names.begin(), names.end(), name) != names.end();
}

TEST(Build, HasWhatTheConfigurationRequires) {
  const std::vector<std::string> backends = clip::Communicator::backends();
  std::string listed;
  for (const std::string& b : backends) listed += (listed.empty() ? "" : ", ") + b;
  std::printf("[ measured ] LibTorch %s, CUDA %s, c10d backends: %s; CUDA device: %s\n", TORCH_VERSION,
              clip::cuda_built() ? "compiled in" : "not compiled in", listed.c_str(),
              clip::cuda_unavailable_reason().empty() ? "visible" : clip::cuda_unavailable_reason().c_str());
  std::printf("[ measured ] features: %s\n", clip::features_summary().c_str());
  // The c10d backends are the ones the configure found (cmake/Features.cmake).
  EXPECT_EQ(has(backends, "gloo"), clip::features().gloo);
  EXPECT_EQ(has(backends, "nccl"), clip::features().nccl);
  // The CPU tests of distributed training (test_dist) run over Gloo in every configuration.
  EXPECT_TRUE(has(backends, "gloo")) << listed;
  if (CLIP_REQUIRE_CUDA) {
    EXPECT_TRUE(clip::cuda_built());
    EXPECT_TRUE(has(backends, "nccl")) << listed;
    // Without a GPU the reason names the device, not the build: *_CUDA tests skip for that reason.
    if (!clip::cuda_unavailable_reason().empty()) {
      EXPECT_EQ(clip::cuda_unavailable_reason(), "no CUDA device visible (no GPU or no driver)");
    }
  }
}

}  // namespace
