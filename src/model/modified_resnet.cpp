#include "clip/model/modified_resnet.h"

#include <ATen/ATen.h>
#include <torch/nn/modules/pooling.h>

#include <cmath>

#include "clip/util/error.h"
#include "clip/model/precision.h"
#include "model/folded_conv.h"
#include "model/initialization.h"
#include "model/packed_linear.h"

namespace clip {
namespace {

constexpr int64_t kExpansion = 4;

torch::nn::Conv2d conv(int64_t in, int64_t out, int64_t kernel, int64_t stride = 1) {
  return detail::conv2d(torch::nn::Conv2dOptions(in, out, kernel).stride(stride).padding(kernel / 2).bias(false));
}

}  // namespace

BottleneckImpl::BottleneckImpl(int64_t inplanes, int64_t planes, int64_t stride)
    : stride_(stride), folded_(std::make_shared<FoldedConvBns>()) {
  conv1 = register_module("conv1", conv(inplanes, planes, 1));
  bn1 = register_module("bn1", torch::nn::BatchNorm2d(planes));
  conv2 = register_module("conv2", conv(planes, planes, 3));
  bn2 = register_module("bn2", torch::nn::BatchNorm2d(planes));
  conv3 = register_module("conv3", conv(planes, planes * kExpansion, 1));
  bn3 = register_module("bn3", torch::nn::BatchNorm2d(planes * kExpansion));
  if (stride > 1 || inplanes != planes * kExpansion) {
    // The reference's OrderedDict names: "-1" (the pool, no parameters), "0" (conv), "1" (BatchNorm).
    downsample = torch::nn::Sequential();
    downsample->push_back("-1", torch::nn::AvgPool2d(stride));
    downsample->push_back("0", conv(inplanes, planes * kExpansion, 1));
    downsample->push_back("1", torch::nn::BatchNorm2d(planes * kExpansion));
    register_module("downsample", downsample);
  }
}

torch::Tensor BottleneckImpl::forward(const torch::Tensor& x) {
  // ReLUs and the residual add in place, as the reference's (nn.ReLU(inplace=True), out += identity): autograd
  // needs none of the overwritten values (BatchNorm's backward reads its input, ReLU's its own output).
  // Without autograd on the CPU each BatchNorm is folded into its convolution (src/model/folded_conv.h).
  FoldedConvBns& conv_bn = *folded_;
  at::Tensor out = conv_bn(0, *conv1, *bn1, x).relu_();
  out = conv_bn(1, *conv2, *bn2, out).relu_();
  if (stride_ > 1) out = at::avg_pool2d(out, stride_);
  out = conv_bn(2, *conv3, *bn3, out);
  if (downsample) {
    // downsample = [AvgPool2d, Conv2d, BatchNorm2d], the reference's layout (constructor).
    const at::Tensor pooled = downsample[0]->as<torch::nn::AvgPool2dImpl>()->forward(x);
    out += conv_bn(3, *downsample[1]->as<torch::nn::Conv2dImpl>(), *downsample[2]->as<torch::nn::BatchNorm2dImpl>(),
                   pooled);
  } else {
    out += x;
  }
  return out.relu_();
}

AttentionPool2dImpl::AttentionPool2dImpl(int64_t spatial_dim, int64_t embed_dim, int64_t heads, int64_t output_dim)
    : heads_(heads), packed_(std::make_shared<PackedLinears>()) {
  TORCH_CHECK(embed_dim % heads == 0, "attention pool width ", embed_dim, " is not a multiple of heads ", heads);
  const std::vector<int64_t> positions{spatial_dim * spatial_dim + 1, embed_dim};
  positional_embedding = register_parameter(
      "positional_embedding", detail::initializing_weights() ? torch::randn(positions) / std::sqrt(double(embed_dim))
                                                             : torch::empty(positions));
  k_proj = register_module("k_proj", detail::linear(embed_dim, embed_dim));
  q_proj = register_module("q_proj", detail::linear(embed_dim, embed_dim));
  v_proj = register_module("v_proj", detail::linear(embed_dim, embed_dim));
  c_proj = register_module("c_proj", detail::linear(embed_dim, output_dim));
}

torch::Tensor AttentionPool2dImpl::forward(const torch::Tensor& input) {
  // [N, C, H, W] -> [N, HW, C]; prepend the mean token; add positions.
  at::Tensor x = input.flatten(2).transpose(1, 2);
  TORCH_CHECK(x.size(1) + 1 == positional_embedding.size(0), "AttentionPool2d expects a ",
              std::lround(std::sqrt(double(positional_embedding.size(0) - 1))), "^2 grid, got ", input.size(2), "x",
              input.size(3));
  x = at::cat({x.mean(1, /*keepdim=*/true), x}, 1) + positional_embedding.to(x.scalar_type());
  const int64_t n = x.size(0), l = x.size(1), c = x.size(2), hd = c / heads_;
  // Only the mean token queries: q [N, H, 1, hd]; k, v [N, H, L, hd].
  // Reduced-precision inference runs the projections in its kernels (packed_linear.h); fp32 runs the modules, as the
  // reference does.
  const bool reduced = current_inference_precision() != InferencePrecision::fp32;
  const auto linear = [&](size_t slot, const at::Tensor& in, torch::nn::LinearImpl& layer) {
    return reduced ? (*packed_)(slot, in, layer.weight, layer.bias) : layer.forward(in);
  };
  at::Tensor q = linear(0, x.narrow(1, 0, 1), *q_proj).view({n, 1, heads_, hd}).transpose(1, 2);
  at::Tensor k = linear(1, x, *k_proj).view({n, l, heads_, hd}).transpose(1, 2);
  at::Tensor v = linear(2, x, *v_proj).view({n, l, heads_, hd}).transpose(1, 2);
  at::Tensor attn = at::softmax(at::matmul(q * (1.0 / std::sqrt(double(hd))), k.transpose(-2, -1)), -1);
  at::Tensor out = at::matmul(attn, v).transpose(1, 2).reshape({n, c});
  return linear(3, out, *c_proj);
}

ModifiedResNetImpl::ModifiedResNetImpl(const ModifiedResNetOptions& o)
    : options_(o), folded_(std::make_shared<FoldedConvBns>()) {
  TORCH_CHECK(o.layers().size() == 4, "ModifiedResNet needs 4 stages, got ", o.layers().size());
  TORCH_CHECK(o.image_size() % 32 == 0, "ModifiedResNet image_size must be a multiple of 32, got ", o.image_size());
  const int64_t w = o.width();
  conv1 = register_module("conv1", conv(3, w / 2, 3, 2));
  bn1 = register_module("bn1", torch::nn::BatchNorm2d(w / 2));
  conv2 = register_module("conv2", conv(w / 2, w / 2, 3));
  bn2 = register_module("bn2", torch::nn::BatchNorm2d(w / 2));
  conv3 = register_module("conv3", conv(w / 2, w, 3));
  bn3 = register_module("bn3", torch::nn::BatchNorm2d(w));

  int64_t inplanes = w;
  auto make_layer = [&](int64_t planes, int64_t blocks, int64_t stride) {
    torch::nn::Sequential layer;
    layer->push_back(Bottleneck(inplanes, planes, stride));
    inplanes = planes * kExpansion;
    for (int64_t i = 1; i < blocks; ++i) layer->push_back(Bottleneck(inplanes, planes, 1));
    return layer;
  };
  layer1 = register_module("layer1", make_layer(w, o.layers()[0], 1));
  layer2 = register_module("layer2", make_layer(w * 2, o.layers()[1], 2));
  layer3 = register_module("layer3", make_layer(w * 4, o.layers()[2], 2));
  layer4 = register_module("layer4", make_layer(w * 8, o.layers()[3], 2));
  attnpool = register_module("attnpool", AttentionPool2d(o.image_size() / 32, w * 32, o.heads(), o.output_dim()));
  if (detail::initializing_weights()) ModifiedResNetImpl::initialize_parameters();
}

void ModifiedResNetImpl::initialize_parameters() {
  torch::NoGradGuard no_grad;
  const double std = std::pow(static_cast<double>(attnpool->c_proj->weight.size(1)), -0.5);
  for (const auto& linear : {attnpool->q_proj, attnpool->k_proj, attnpool->v_proj, attnpool->c_proj}) {
    linear->weight.normal_(0, std);
  }
  // Zero-init the last BatchNorm of every residual branch, so each block starts as the identity.
  for (const auto& layer : {layer1, layer2, layer3, layer4}) {
    for (const auto& block : *layer) block.ptr()->as<BottleneckImpl>()->bn3->weight.zero_();
  }
}

void ModifiedResNetImpl::set_grad_checkpointing(bool enabled) {
  if (enabled) {
    fail("grad checkpointing is not available for the ResNet image tower (", options_.layers()[0], "-",
         options_.layers()[1], "-", options_.layers()[2], "-", options_.layers()[3],
         " blocks): recomputing its BatchNorms in training mode would update their running statistics twice per "
         "step. Train without it, or save memory with --accum-freq or a smaller --batch-size");
  }
}

torch::Tensor ModifiedResNetImpl::forward(const torch::Tensor& images) {
  TORCH_CHECK(images.dim() == 4 && images.size(1) == 3, "ModifiedResNet expects images [N, 3, H, W], got ",
              images.sizes());
  at::Tensor x = images.to(conv1->weight.scalar_type());
  // Inference on the CPU: channels-last (NHWC) activations, on which oneDNN's convolutions run faster, and each
  // BatchNorm folded into its convolution (FoldedConvBns, weights channels-last too). RN50 image tower on LibTorch
  // 2.11: docs/performance.md. The layout carries through every convolution, ReLU, pool and add; training keeps
  // NCHW (not measured).
  // bf16 inference (clip/model/precision.h) keeps the activations bf16 from here to the attention pool.
  const bool inference = x.is_cpu() && x.dim() == 4 && !at::GradMode::is_enabled();
  const bool bf16 = inference && !is_training() && x.scalar_type() == at::kFloat &&
                    current_inference_precision() == InferencePrecision::bf16;  // folded BatchNorms only
  if (bf16) x = x.to(at::kBFloat16);
  if (inference) x = x.contiguous(at::MemoryFormat::ChannelsLast);
  FoldedConvBns& conv_bn = *folded_;
  x = conv_bn(0, *conv1, *bn1, x).relu_();
  x = conv_bn(1, *conv2, *bn2, x).relu_();
  x = conv_bn(2, *conv3, *bn3, x).relu_();
  x = at::avg_pool2d(x, 2);
  x = layer4->forward(layer3->forward(layer2->forward(layer1->forward(x))));
  return attnpool(bf16 ? x.to(at::kFloat) : x);
}

}  // namespace clip
