#include "model/folded_conv.h"

#include <ATen/ATen.h>

#include "clip/model/precision.h"
#include "util/torch_compat.h"

namespace clip {

at::Tensor FoldedConvBns::operator()(size_t slot, torch::nn::Conv2dImpl& conv, torch::nn::BatchNorm2dImpl& bn,
                                     const at::Tensor& x) {
  const at::Tensor& w = conv.weight;
  const auto& bn_options = bn.options;
  const auto* padding = compat::get_if<torch::ExpandingArray<2>>(&conv.options.padding());
  // bf16 inference: bf16 activations (ModifiedResNetImpl::forward casts its input) against the fold in bf16.
  const InferencePrecision precision = current_inference_precision();
  const bool bf16 = precision == InferencePrecision::bf16 && x.scalar_type() == at::kBFloat16 &&
                    w.scalar_type() == at::kFloat;
  const bool same_dtype = (x.scalar_type() == at::kFloat || x.scalar_type() == at::kDouble) &&
                          w.scalar_type() == x.scalar_type();
  const bool foldable = padding != nullptr && !at::GradMode::is_enabled() && !bn.is_training() && x.is_cpu() &&
                        w.is_cpu() && (bf16 || same_dtype) && !conv.bias.defined() && bn_options.affine() &&
                        bn_options.track_running_stats() && !w.is_inference() && !bn.weight.is_inference() &&
                        !bn.bias.is_inference() && !bn.running_mean.is_inference() && !bn.running_var.is_inference();
  if (!foldable) return bn.forward(conv.forward(x));

  const std::array<const at::Tensor*, 4> statistics{&bn.weight, &bn.bias, &bn.running_mean, &bn.running_var};
  at::Tensor weight, bias;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    if (folds_.size() <= slot) folds_.resize(slot + 1);
    Fold& f = folds_[slot];
    const at::ScalarType dtype = bf16 ? at::kBFloat16 : w.scalar_type();
    bool stale = !f.weight.defined() || f.weight.scalar_type() != dtype || f.source_data != w.data_ptr() ||
                 f.source_version != w._version();
    for (size_t i = 0; i < statistics.size() && !stale; ++i) stale = !at::equal(f.statistics[i], *statistics[i]);
    if (stale) {
      // scale = gamma / sqrt(var + eps): w' = w * scale (per output channel), b' = beta - mean * scale.
      const at::Tensor scale = bn.weight.to(at::kDouble) / (bn.running_var.to(at::kDouble) + bn_options.eps()).sqrt();
      f.weight = (w.to(at::kDouble) * scale.view({-1, 1, 1, 1}))
                     .to(dtype)
                     .contiguous(at::MemoryFormat::ChannelsLast);
      f.bias = (bn.bias.to(at::kDouble) - bn.running_mean.to(at::kDouble) * scale).to(dtype);
      f.source_data = w.data_ptr();
      f.source_version = w._version();
      for (size_t i = 0; i < statistics.size(); ++i) f.statistics[i] = statistics[i]->clone();
    }
    weight = f.weight;
    bias = f.bias;
  }
  const auto& o = conv.options;
  return at::conv2d(x, weight, bias, *o.stride(), **padding, *o.dilation(), o.groups());
}

}  // namespace clip
