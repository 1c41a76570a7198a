#include "clip/model/timm_vit.h"

#include <ATen/ATen.h>

#include <cmath>

#include "model/initialization.h"
#include "util/torch_compat.h"

namespace clip {

AttentionPoolLatentImpl::AttentionPoolLatentImpl(int64_t width, int64_t heads, double mlp_ratio, Activation activation,
                                                 double layer_norm_eps)
    : heads_(heads) {
  TORCH_CHECK(width % heads == 0, "attention-pool width ", width, " is not a multiple of heads ", heads);
  latent = register_parameter("latent", detail::scaled_randn({1, 1, width}, 0.02));
  q = register_module("q", detail::linear(width, width));
  kv = register_module("kv", detail::linear(width, 2 * width));
  proj = register_module("proj", detail::linear(width, width));
  norm = register_module("norm", LayerNorm(width, layer_norm_eps));
  const auto hidden = static_cast<int64_t>(static_cast<double>(width) * mlp_ratio);  // Python int()
  mlp = register_module("mlp", Mlp(width, hidden, activation, BlockNames::timm));
}

torch::Tensor AttentionPoolLatentImpl::forward(const torch::Tensor& tokens) {
  const int64_t n = tokens.size(0), l = tokens.size(1), d = tokens.size(2), hd = d / heads_;
  // The one query is the same for every image: project it once, [1, 1, D] -> [N, H, 1, hd].
  const at::Tensor query = q(latent.to(tokens.scalar_type())).view({1, heads_, 1, hd}).expand({n, heads_, 1, hd});
  // Keys and values from the fused projection: [N, L, 2D] -> [2, N, H, L, hd].
  const at::Tensor keys_values = kv(tokens).view({n, l, 2, heads_, hd}).permute({2, 0, 3, 1, 4});
  at::Tensor x = compat::scaled_dot_product_attention(query, keys_values[0], keys_values[1], /*causal=*/false);
  x = proj(x.transpose(1, 2).reshape({n, 1, d}));
  x = x + mlp(norm(x));
  return x.select(1, 0);
}

TimmVisionTransformerImpl::TimmVisionTransformerImpl(const TimmVisionTransformerOptions& o)
    : options_(o), trunk_(std::make_shared<torch::nn::Module>()) {
  TORCH_CHECK(o.image_size() >= o.patch_size(), "image_size ", o.image_size(), " is smaller than patch_size ",
              o.patch_size());
  TORCH_CHECK(o.pool() != TimmPool::token || o.class_token(), "class-token pooling needs a class token");
  TORCH_CHECK(o.projection() || o.output_dim() == o.width(), "a timm tower without a projection gives width ",
              o.width(), " features, not ", o.output_dim());
  register_module("trunk", trunk_);
  const int64_t grid = o.image_size() / o.patch_size();  // floored, as timm's strided convolution does
  auto patch = trunk_->register_module("patch_embed", std::make_shared<torch::nn::Module>());
  patch_embed = patch->register_module(
      "proj", detail::conv2d(torch::nn::Conv2dOptions(3, o.width(), o.patch_size()).stride(o.patch_size())));
  if (o.class_token()) cls_token = trunk_->register_parameter("cls_token", detail::scaled_randn({1, 1, o.width()}, 1e-6));
  pos_embed = trunk_->register_parameter(
      "pos_embed", detail::scaled_randn({1, grid * grid + (o.class_token() ? 1 : 0), o.width()}, 0.02));
  transformer = Transformer(TransformerOptions(o.width(), o.layers(), o.heads())
                                .mlp_ratio(o.mlp_ratio())
                                .activation(o.activation())
                                .layer_norm_eps(o.layer_norm_eps())
                                .names(BlockNames::timm)
                                .layer_scale(o.layer_scale()));
  trunk_->register_module("blocks", transformer->resblocks);
  norm = trunk_->register_module(o.fc_norm() ? "fc_norm" : "norm", LayerNorm(o.width(), o.layer_norm_eps()));
  if (o.pool() == TimmPool::map) {
    attn_pool = trunk_->register_module(
        "attn_pool", AttentionPoolLatent(o.width(), o.heads(), o.mlp_ratio(), o.activation(), o.layer_norm_eps()));
  }
  if (o.projection()) {
    auto head_holder = register_module("head", std::make_shared<torch::nn::Module>());
    head = head_holder->register_module(
        "proj", detail::linear(o.width(), o.output_dim(), o.projection_bias()));
  }
  if (detail::initializing_weights()) initialize_parameters();
}

void TimmVisionTransformerImpl::initialize_parameters() {
  torch::NoGradGuard no_grad;
  pos_embed.normal_(0, 0.02);
  if (cls_token.defined()) cls_token.normal_(0, 1e-6);
  transformer->initialize_parameters();
  if (attn_pool) attn_pool->latent.normal_(0, std::pow(static_cast<double>(options_.width()), -0.5));
  if (head) head->weight.normal_(0, std::pow(static_cast<double>(options_.width()), -0.5));
}

void TimmVisionTransformerImpl::train(bool on) {
  VisionTowerImpl::train(on);
  transformer->train(on);
}

torch::Tensor TimmVisionTransformerImpl::forward(const torch::Tensor& images) {
  TORCH_CHECK(images.dim() == 4 && images.size(1) == 3, "TimmVisionTransformer expects images [N, 3, H, W], got ",
              images.sizes());
  const int64_t prefix = options_.class_token() ? 1 : 0;
  // Patchify: [N, 3, R, R] -> [N, W, g, g] -> [N, g*g, W].
  at::Tensor x = patch_embed(images.to(patch_embed->weight.scalar_type())).flatten(2).transpose(1, 2);
  TORCH_CHECK(x.size(1) + prefix == pos_embed.size(1), "TimmVisionTransformer was built for ", options_.image_size(),
              " px images, got ", images.size(2), "x", images.size(3));
  if (prefix) x = at::cat({cls_token.to(x.scalar_type()).expand({x.size(0), 1, x.size(2)}), x}, 1);
  x = transformer(x + pos_embed.to(x.scalar_type()));
  switch (options_.pool()) {
    case TimmPool::map: x = attn_pool(norm(x).narrow(1, prefix, x.size(1) - prefix)); break;
    case TimmPool::token: x = norm(x).select(1, 0); break;
    case TimmPool::avg: {
      // timm's global_pool_nlc: the mean of the patch tokens; the final norm before it, or after it (fc_norm).
      if (options_.fc_norm()) {
        x = norm(x.narrow(1, prefix, x.size(1) - prefix).mean(1));
      } else {
        x = norm(x).narrow(1, prefix, x.size(1) - prefix).mean(1);
      }
      break;
    }
  }
  return head ? head(x) : x;
}

}  // namespace clip
