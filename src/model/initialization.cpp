#include "model/initialization.h"

namespace clip::detail {
namespace {

thread_local bool initializing = true;

}  // namespace

bool initializing_weights() { return initializing; }

SkipWeightInitialization::SkipWeightInitialization() : previous_(initializing) { initializing = false; }

SkipWeightInitialization::~SkipWeightInitialization() { initializing = previous_; }

at::Tensor scaled_randn(at::IntArrayRef shape, double scale) {
  return initializing ? scale * at::randn(shape) : at::empty(shape);
}

// Without initialization: the module built at its smallest (its draws cost nothing), then given its real options
// and parameters of the real shapes (set_data keeps the registered parameter and the member one tensor).
torch::nn::Linear linear(int64_t in, int64_t out, bool bias) {
  if (initializing) return torch::nn::Linear(torch::nn::LinearOptions(in, out).bias(bias));
  torch::nn::Linear m(torch::nn::LinearOptions(1, 1).bias(bias));
  m->options.in_features(in).out_features(out);
  m->weight.set_data(at::empty({out, in}));
  if (bias) m->bias.set_data(at::empty({out}));
  return m;
}

torch::nn::Conv2d conv2d(const torch::nn::Conv2dOptions& options) {
  if (initializing) return torch::nn::Conv2d(options);
  auto small = options;
  small.in_channels(options.groups()).out_channels(options.groups());
  torch::nn::Conv2d m(small);
  m->options.in_channels(options.in_channels()).out_channels(options.out_channels());
  const auto& k = *options.kernel_size();
  m->weight.set_data(at::empty({options.out_channels(), options.in_channels() / options.groups(), k[0], k[1]}));
  if (options.bias()) m->bias.set_data(at::empty({options.out_channels()}));
  return m;
}

}  // namespace clip::detail
