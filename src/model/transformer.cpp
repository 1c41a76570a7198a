#include "clip/model/transformer.h"

#include <ATen/ATen.h>
#include <torch/csrc/autograd/autograd.h>
#include <torch/csrc/autograd/custom_function.h>
#include <torch/nn/init.h>

#include <cmath>

#include "clip/model/precision.h"
#include "model/initialization.h"
#include "model/packed_linear.h"
#include "util/torch_compat.h"

namespace clip {

torch::Tensor activate(const torch::Tensor& x, Activation activation) {
  // QuickGELU is what OpenAI trained with; exact GELU (erf) is nn.GELU's default; SigLIP 2 uses the tanh form.
  switch (activation) {
    case Activation::quick_gelu: return x * at::sigmoid(1.702 * x);
    case Activation::gelu_tanh: return at::gelu(x, "tanh");
    case Activation::gelu: break;
  }
  return at::gelu(x);
}

LayerNormImpl::LayerNormImpl(int64_t width, double eps) : width_(width), eps_(eps) {
  weight = register_parameter("weight", torch::ones({width}));
  bias = register_parameter("bias", torch::zeros({width}));
}

torch::Tensor LayerNormImpl::forward(const torch::Tensor& x) {
  // The reference upcasts to fp32 for the normalization and casts back (half-precision statistics lose digits).
  if (x.scalar_type() == at::kFloat && weight.scalar_type() == at::kFloat) {
    return at::layer_norm(x, {width_}, weight, bias, eps_);
  }
  return at::layer_norm(x.to(at::kFloat), {width_}, weight.to(at::kFloat), bias.to(at::kFloat), eps_)
      .to(x.scalar_type());
}

MultiheadAttentionImpl::MultiheadAttentionImpl(int64_t width, int64_t heads, BlockNames names)
    : heads_(heads), packed_(std::make_shared<PackedLinears>()) {
  TORCH_CHECK(width % heads == 0, "attention width ", width, " is not a multiple of heads ", heads);
  if (names == BlockNames::timm) {
    // timm's Attention: the same fused [3D, D] projection as a Linear named `qkv`, and `proj`.
    torch::nn::Linear qkv = register_module("qkv", detail::linear(width, 3 * width));
    in_proj_weight = qkv->weight;
    in_proj_bias = qkv->bias;
    out_proj = register_module("proj", detail::linear(width, width));
  } else {
    in_proj_weight = register_parameter("in_proj_weight", torch::empty({3 * width, width}));
    in_proj_bias = register_parameter("in_proj_bias", torch::zeros({3 * width}));
    out_proj = register_module("out_proj", detail::linear(width, width));
  }
  // torch.nn.MultiheadAttention's own initialization.
  if (detail::initializing_weights()) {
    torch::NoGradGuard no_grad;
    torch::nn::init::xavier_uniform_(in_proj_weight);
    out_proj->bias.zero_();
  }
}

torch::Tensor MultiheadAttentionImpl::forward(const torch::Tensor& x, bool causal) {
  const int64_t n = x.size(0), l = x.size(1), d = x.size(2);
  // One fused projection [N, L, 3D], viewed as (q|k|v, head, head_dim) and moved to [3, N, H, L, hd].
  at::Tensor qkv = (*packed_)(0, x, in_proj_weight, in_proj_bias).view({n, l, 3, heads_, d / heads_});
  qkv = qkv.permute({2, 0, 3, 1, 4});
  at::Tensor out = compat::scaled_dot_product_attention(qkv[0], qkv[1], qkv[2], causal);
  return (*packed_)(1, out.transpose(1, 2).reshape({n, l, d}), out_proj->weight, out_proj->bias);
}

MlpImpl::MlpImpl(int64_t width, int64_t hidden, Activation activation, BlockNames names)
    : activation_(activation), packed_(std::make_shared<PackedLinears>()) {
  const bool timm = names == BlockNames::timm;
  c_fc = register_module(timm ? "fc1" : "c_fc", detail::linear(width, hidden));
  c_proj = register_module(timm ? "fc2" : "c_proj", detail::linear(hidden, width));
}

torch::Tensor MlpImpl::forward(const torch::Tensor& x) {
  PackedLinears& linear = *packed_;
  if (activation_ == Activation::quick_gelu && !at::GradMode::is_enabled() && x.is_cpu() &&
      current_inference_precision() != InferencePrecision::fp32) {
    // Reduced precision: QuickGELU(h) = h sigmoid(1.702 h) = SiLU(1.702 h) / 1.702, with 1.702 folded into c_fc's
    // prepared weights and 1 / 1.702 into c_proj's: one in-place pass instead of three and a buffer.
    constexpr double kQuickGelu = 1.702;
    at::Tensor hidden = linear.scaled(0, x, c_fc->weight, c_fc->bias, 1.0, kQuickGelu);
    at::silu_(hidden);
    return linear.scaled(1, hidden, c_proj->weight, c_proj->bias, 1.0 / kQuickGelu, 1.0);
  }
  at::Tensor hidden = linear(0, x, c_fc->weight, c_fc->bias);
  if (activation_ == Activation::quick_gelu && !at::GradMode::is_enabled()) {
    // Without autograd the hidden activations are ours alone: QuickGELU in place, the same arithmetic with one
    // [N, L, hidden] buffer instead of three.
    at::Tensor gate = hidden.mul(1.702);
    gate.sigmoid_();
    hidden.mul_(gate);
  } else {
    hidden = activate(hidden, activation_);
  }
  return linear(1, hidden, c_proj->weight, c_proj->bias);
}

ResidualAttentionBlockImpl::ResidualAttentionBlockImpl(const TransformerOptions& o) {
  const bool timm = o.names() == BlockNames::timm;
  ln_1 = register_module(timm ? "norm1" : "ln_1", LayerNorm(o.width(), o.layer_norm_eps()));
  attn = register_module("attn", MultiheadAttention(o.width(), o.heads(), o.names()));
  ln_2 = register_module(timm ? "norm2" : "ln_2", LayerNorm(o.width(), o.layer_norm_eps()));
  const auto hidden = static_cast<int64_t>(static_cast<double>(o.width()) * o.mlp_ratio());  // Python int()
  mlp = register_module("mlp", Mlp(o.width(), hidden, o.activation(), o.names()));
  if (o.layer_scale()) {
    // LayerScale modules holding one `gamma` each, as both references name them.
    const auto scale = [&](const char* name) {
      auto holder = register_module(name, std::make_shared<torch::nn::Module>());
      return holder->register_parameter("gamma", torch::full({o.width()}, *o.layer_scale()));
    };
    ls_1 = scale(timm ? "ls1" : "ls_1");
    ls_2 = scale(timm ? "ls2" : "ls_2");
  }
}

torch::Tensor ResidualAttentionBlockImpl::forward(const torch::Tensor& x, bool causal) {
  // Without autograd the residual adds go into the branch's fresh output (a + b == b + a bit for bit), when the
  // dtypes agree (under autocast the branch may be bf16 and the stream fp32: then the sum is promoted, as here).
  auto residual = [](const at::Tensor& stream, at::Tensor branch) {
    if (!at::GradMode::is_enabled() && branch.scalar_type() == stream.scalar_type() && branch.sizes() == stream.sizes()) {
      return branch.add_(stream);
    }
    return stream + branch;
  };
  const auto scaled = [](at::Tensor branch, const at::Tensor& gamma) {
    if (!gamma.defined()) return branch;
    return at::GradMode::is_enabled() ? branch * gamma : branch.mul_(gamma);
  };
  torch::Tensor y = residual(x, scaled(attn(ln_1(x), causal), ls_1));
  return residual(y, scaled(mlp(ln_2(y)), ls_2));
}

namespace {

// Reentrant activation checkpointing (torch.utils.checkpoint with use_reentrant=True): the forward runs without
// recording a graph and keeps the block's input; the backward recomputes the block with grad (under the
// forward's autocast state) and backpropagates through it, which also accumulates the block's parameter grads.
class CheckpointedBlock : public torch::autograd::Function<CheckpointedBlock> {
 public:
  static at::Tensor forward(torch::autograd::AutogradContext* ctx, const at::Tensor& x, ResidualAttentionBlockImpl* block,
                            bool causal) {
    ctx->save_for_backward({x});
    ctx->saved_data["block"] = reinterpret_cast<int64_t>(block);
    ctx->saved_data["causal"] = causal;
    ctx->saved_data["autocast"] = compat::autocast_enabled();
    ctx->saved_data["autocast_dtype"] = static_cast<int64_t>(compat::autocast_dtype());
    return block->forward(x, causal);
  }

  static torch::autograd::tensor_list backward(torch::autograd::AutogradContext* ctx,
                                               torch::autograd::tensor_list grad_outputs) {
    auto* block = reinterpret_cast<ResidualAttentionBlockImpl*>(ctx->saved_data["block"].toInt());
    const at::Tensor input = ctx->get_saved_variables()[0].detach().requires_grad_(true);
    at::Tensor output;
    {
      at::AutoGradMode grad(true);
      compat::AutocastGuard autocast(ctx->saved_data["autocast"].toBool(),
                                     static_cast<at::ScalarType>(ctx->saved_data["autocast_dtype"].toInt()));
      output = block->forward(input, ctx->saved_data["causal"].toBool());
    }
    torch::autograd::backward({output}, {grad_outputs[0]});
    return {input.grad(), at::Tensor(), at::Tensor()};
  }
};

}  // namespace

TransformerImpl::TransformerImpl(const TransformerOptions& options) : options_(options) {
  resblocks = torch::nn::ModuleList();
  for (int64_t i = 0; i < options.layers(); ++i) resblocks->push_back(ResidualAttentionBlock(options));
  // timm's blocks sit at the ViT's top level; the tower that owns them registers the list there.
  if (options.names() == BlockNames::open_clip) register_module("resblocks", resblocks);
}

torch::Tensor TransformerImpl::forward(torch::Tensor x, bool causal) {
  const bool checkpoint = grad_checkpointing_ && at::GradMode::is_enabled() && is_training();
  for (const auto& module : *resblocks) {
    auto* block = module->as<ResidualAttentionBlockImpl>();
    x = checkpoint && x.requires_grad() ? CheckpointedBlock::apply(x, block, causal) : block->forward(x, causal);
  }
  return x;
}

void TransformerImpl::initialize_parameters() {
  torch::NoGradGuard no_grad;
  const double width = static_cast<double>(options_.width());
  const double attn_std = std::pow(width, -0.5);
  const double proj_std = attn_std * std::pow(2.0 * static_cast<double>(options_.layers()), -0.5);
  const double fc_std = std::pow(2.0 * width, -0.5);
  for (const auto& module : *resblocks) {
    auto* block = module->as<ResidualAttentionBlockImpl>();
    block->attn->in_proj_weight.normal_(0, attn_std);
    block->attn->out_proj->weight.normal_(0, proj_std);
    block->mlp->c_fc->weight.normal_(0, fc_std);
    block->mlp->c_proj->weight.normal_(0, proj_std);
  }
}

}  // namespace clip
