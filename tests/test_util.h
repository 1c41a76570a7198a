#pragma once
// Shared helpers of the test suite: data paths and the relative difference the parity tests report.
#include <ATen/ATen.h>

#include <algorithm>
#include <cstdio>
#include <string>

namespace clip::test {

inline std::string data(const std::string& name) { return std::string(CLIP_TEST_DATA_DIR) + "/" + name; }
inline std::string config(const std::string& name) { return std::string(CLIP_CONFIG_DIR) + "/models/" + name + ".json"; }

/// max |a - b| / max |b|: the fixtures' tolerance measure.
inline double relative_difference(const at::Tensor& actual, const at::Tensor& expected) {
  const at::Tensor a = actual.to(at::kDouble), b = expected.to(at::kDouble);
  return (a - b).abs().max().item<double>() / b.abs().max().item<double>();
}

/// max |a - b| / max(max |b|, 1e-4): a gradient's relative difference, except that a gradient which is zero in
/// exact arithmetic (the attention pool's k_proj.bias: a constant added to every key cancels in the softmax) is
/// compared at the scale 1e-4 rather than at its float noise (~1e-9).
inline double gradient_difference(const at::Tensor& actual, const at::Tensor& expected) {
  return (actual.to(at::kDouble) - expected.to(at::kDouble)).abs().max().item<double>() /
         std::max(expected.abs().max().item<double>(), 1e-4);
}

/// Prints and returns the relative difference, so every parity test shows what it measured.
inline double report(const std::string& what, const at::Tensor& actual, const at::Tensor& expected) {
  const double d = relative_difference(actual, expected);
  std::printf("[ measured ] %-40s relative difference %.3g\n", what.c_str(), d);
  return d;
}

}  // namespace clip::test
