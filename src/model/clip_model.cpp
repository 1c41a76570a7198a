#include "clip/model/clip_model.h"

#include <unistd.h>

#include "clip/io/tensor_map.h"
#include "clip/util/error.h"
#include "clip/util/sha256.h"

#include <ATen/ATen.h>

#include "clip/model/modified_resnet.h"
#include "clip/model/timm_vit.h"
#include "clip/model/vision_transformer.h"

namespace clip {
namespace {

std::shared_ptr<VisionTowerImpl> make_vision_tower(const ModelConfig& c, Activation act) {
  const VisionConfig& v = c.vision;
  if (v.is_resnet()) {
    return std::make_shared<ModifiedResNetImpl>(
        ModifiedResNetOptions(v.resnet_layers, c.embed_dim, v.heads(), v.image_size, v.width));
  }
  if (v.is_timm()) {
    // timm's towers use their own activation whatever quick_gelu says (open_clip's note in _build_vision_tower).
    const TimmPool pool = v.timm_pool == "map" ? TimmPool::map : v.timm_pool == "token" ? TimmPool::token : TimmPool::avg;
    return std::make_shared<TimmVisionTransformerImpl>(
        TimmVisionTransformerOptions(v.image_size, v.patch_size, v.width, v.layers, v.heads(), c.embed_dim)
            .mlp_ratio(v.mlp_ratio)
            .activation(v.gelu_tanh ? Activation::gelu_tanh : Activation::gelu)
            .layer_norm_eps(v.layer_norm_eps.value_or(1e-6))
            .class_token(v.class_token)
            .pool(pool)
            .fc_norm(v.fc_norm)
            .projection(v.timm_proj == "linear")
            .projection_bias(v.timm_proj_bias)
            .layer_scale(v.ls_init_value));
  }
  return std::make_shared<VisionTransformerImpl>(
      VisionTransformerOptions(v.image_size, v.patch_size, v.width, v.layers, v.heads(), c.embed_dim)
          .mlp_ratio(v.mlp_ratio)
          .activation(v.gelu_tanh ? Activation::gelu_tanh : act)
          .layer_norm_eps(v.layer_norm_eps.value_or(c.layer_norm_eps))
          .layer_scale(v.ls_init_value));
}

}  // namespace

at::Tensor l2_normalize(const at::Tensor& x) { return x / x.norm(2, -1, /*keepdim=*/true); }

namespace {

// About how many parameters `c` makes (within a few percent for ViTs and the text tower; ResNets scaled from RN50's
// 38M at width 64 and 16 blocks), to refuse a model that cannot fit in memory before allocating it: LibTorch's
// allocations succeed lazily under overcommit and initialization would then be killed by the kernel, not refused.
double approximate_parameters(const ModelConfig& c) {
  const VisionConfig& v = c.vision;
  const TextConfig& t = c.text;
  const auto blocks = [](double layers, double width, double mlp_ratio) {
    return layers * (4 + 2 * mlp_ratio) * width * width;
  };
  double vision = 0;
  if (v.is_resnet()) {
    double depth = 0;
    for (const int64_t n : v.resnet_layers) depth += double(n);
    vision = 38e6 * (double(v.width) / 64) * (double(v.width) / 64) * depth / 16;
  } else {
    const double grid = double(v.image_size / v.patch_size);
    vision = 3.0 * double(v.patch_size * v.patch_size) * double(v.width) + (grid * grid + 1) * double(v.width) +
             blocks(double(v.layers), double(v.width), v.mlp_ratio) + double(v.width) * double(c.embed_dim);
  }
  const double text = double(t.vocab_size + t.context_length) * double(t.width) +
                      blocks(double(t.layers), double(t.width), t.mlp_ratio) + double(t.width) * double(c.embed_dim);
  return vision + text;
}

void require_memory_for(const ModelConfig& c) {
  const double bytes = 4 * approximate_parameters(c);  // fp32, as every model is built
  const double memory = double(sysconf(_SC_PHYS_PAGES)) * double(sysconf(_SC_PAGE_SIZE));
  if (memory > 0 && bytes > memory) {
    fail("model ", c.name.empty() ? std::string("(unnamed)") : c.name, ": about ", approximate_parameters(c) / 1e9,
         "B parameters, ", bytes / 1e9, " GB in fp32, more than this machine's ", memory / 1e9,
         " GB of memory; check its config (width, layers, vocab_size, image_size)");
  }
}

}  // namespace

CLIPImpl::CLIPImpl(ModelConfig config) : config_(std::move(config)) {
  require_memory_for(config_);
  config_.preprocess.size = config_.vision.image_size;  // the input the tower takes
  const Activation act = config_.quick_gelu ? Activation::quick_gelu : Activation::gelu;
  visual = register_module("visual", VisionTower(make_vision_tower(config_, act)));
  text = TextTransformer(
      TextTransformerOptions(config_.text, config_.embed_dim).activation(act).layer_norm_eps(config_.layer_norm_eps));
  if (config_.custom_text) {
    register_module("text", text);  // open_clip's CustomTextCLIP: `text.token_embedding.weight`, ...
  } else {
    // The reference keeps the text tower's parts at the top level; register the same modules and tensors here
    // (shared, not copied) so that named_parameters() is the checkpoint layout.
    register_module("token_embedding", text->token_embedding);
    register_parameter("positional_embedding", text->positional_embedding);
    register_module("transformer", text->transformer);
    register_module("ln_final", text->ln_final);
    if (text->text_projection_linear) {
      register_module("text_projection", text->text_projection_linear);
    } else if (text->text_projection.defined()) {
      register_parameter("text_projection", text->text_projection);
    }
  }
  // Each tower initializes itself as the reference does; only the temperature is left.
  logit_scale = register_parameter("logit_scale", torch::full({}, config_.init_logit_scale));
  if (config_.init_logit_bias) logit_bias = register_parameter("logit_bias", torch::full({}, *config_.init_logit_bias));
}

void CLIPImpl::initialize_parameters() {
  visual->initialize_parameters();
  text->initialize_parameters();
  torch::NoGradGuard no_grad;
  logit_scale.fill_(config_.init_logit_scale);
  if (logit_bias.defined()) logit_bias.fill_(*config_.init_logit_bias);
}

void CLIPImpl::set_grad_checkpointing(bool enabled) {
  visual->set_grad_checkpointing(enabled);  // first: a tower that refuses leaves the text tower as it was
  text->transformer->set_grad_checkpointing(enabled);
}

void CLIPImpl::set_inference_precision(InferencePrecision precision) {
  check_inference_precision(precision, logit_scale.is_cpu());
  precision_ = precision;
}

torch::Tensor CLIPImpl::encode_image(const torch::Tensor& images, bool normalize) {
  InferencePrecisionGuard precision(precision_);
  at::Tensor features = visual->forward(images);
  return normalize ? l2_normalize(features) : features;
}

torch::Tensor CLIPImpl::encode_text(const torch::Tensor& ids, bool normalize) {
  InferencePrecisionGuard precision(precision_);
  at::Tensor features = text->forward(ids);
  return normalize ? l2_normalize(features) : features;
}

ClipOutput CLIPImpl::forward(const torch::Tensor& images, const torch::Tensor& ids) {
  return compute_logits(encode_image(images), encode_text(ids), logit_scale, logit_bias);
}

ClipOutput compute_logits(const torch::Tensor& image_features, const torch::Tensor& text_features,
                          const torch::Tensor& logit_scale, const torch::Tensor& logit_bias) {
  ClipOutput out;
  out.image_features = image_features;
  out.text_features = text_features;
  out.logits_per_image =
      logit_scale.exp() * at::matmul(l2_normalize(image_features), l2_normalize(text_features).t());
  if (logit_bias.defined()) out.logits_per_image = out.logits_per_image + logit_bias;
  out.logits_per_text = out.logits_per_image.t();
  return out;
}

void convert_module(torch::nn::Module& module, const torch::Device& device, at::ScalarType dtype) {
  module.to(device);
  torch::NoGradGuard no_grad;
  for (auto& p : module.parameters()) {
    if (p.is_floating_point() && p.scalar_type() != dtype) p.set_data(p.to(dtype));
  }
  for (auto& b : module.buffers()) {
    if (b.is_floating_point() && b.scalar_type() != dtype) b.set_data(b.to(dtype));
  }
}

int64_t count_parameters(const torch::nn::Module& module) {
  int64_t n = 0;
  for (const auto& p : module.parameters()) n += p.numel();
  return n;
}

std::string weights_fingerprint(const CLIPImpl& model) {
  constexpr int64_t kSamples = 4096;
  Sha256 hash;
  ModelConfig config = model.config();
  config.name.clear();
  const std::string arch = to_json(config);
  hash.update(arch.data(), arch.size());
  const auto add = [&](const std::string& name, const at::Tensor& t) {
    const std::string head = name + "|" + shape_string(t.sizes()) + "|";
    hash.update(head.data(), head.size());
    at::Tensor flat = t.detach().reshape({-1});
    if (flat.numel() > kSamples) {  // evenly spaced, chosen on the tensor's device before the copy
      const int64_t step = flat.numel() / kSamples;
      flat = flat.slice(0, 0, step * kSamples, step);
    }
    const at::Tensor values = flat.to(at::kCPU, at::kFloat).contiguous();
    hash.update(values.data_ptr<float>(), static_cast<size_t>(values.numel()) * sizeof(float));
  };
  for (const auto& p : model.named_parameters()) add(p.key(), p.value());
  for (const auto& b : model.named_buffers()) {
    if (b.value().is_floating_point()) add(b.key(), b.value());
  }
  return hash.hex_digest();
}

}  // namespace clip
