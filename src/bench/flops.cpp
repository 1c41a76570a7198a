#include "clip/bench/flops.h"

#include <numeric>

#include "clip/util/error.h"

namespace clip {
namespace {

// 2 FLOPs per multiply-add throughout.
double matmul(double m, double k, double n) { return 2 * m * k * n; }

// A k x k convolution producing an out_hw x out_hw map (no bias, groups 1).
double conv(int64_t in, int64_t out, int64_t kernel, int64_t out_hw) {
  return matmul(double(out_hw) * double(out_hw), double(in) * double(kernel) * double(kernel), double(out));
}

int64_t mlp_hidden(int64_t width, double ratio) { return static_cast<int64_t>(double(width) * ratio); }  // int()

// `layers` pre-norm blocks over `tokens` positions of `width`: the fused QKV and out projections, Q K^T and
// attention x V (heads split the width, so the head count drops out), and the MLP.
void add_transformer(std::vector<FlopTerm>& terms, const std::string& prefix, int64_t tokens, int64_t width,
                     int64_t layers, double mlp_ratio) {
  const double l = double(tokens), d = double(width), n = double(layers);
  const std::string blocks = prefix + "transformer (" + std::to_string(layers) + " blocks) ";
  terms.push_back({blocks + "attn.in_proj", n * matmul(l, d, 3 * d)});
  terms.push_back({blocks + "attn q k^T + attn v", n * 2 * matmul(l, d, l)});
  terms.push_back({blocks + "attn.out_proj", n * matmul(l, d, d)});
  terms.push_back({blocks + "mlp", n * 2 * matmul(l, d, double(mlp_hidden(width, mlp_ratio)))});
}

void add_resnet(std::vector<FlopTerm>& terms, const ModelConfig& config, AttnPoolFlops pool) {
  const VisionConfig& v = config.vision;
  const int64_t w = v.width;
  if (v.image_size % 32 != 0) fail(config.name, ": ModifiedResNet image_size must be a multiple of 32, got ", v.image_size);
  // The 3-conv stem: a stride-2 3x3, two 3x3 at half resolution, then a 2x2 average pool.
  int64_t hw = v.image_size / 2;
  terms.push_back({"visual.stem (conv1-3)", conv(3, w / 2, 3, hw) + conv(w / 2, w / 2, 3, hw) + conv(w / 2, w, 3, hw)});
  hw /= 2;
  int64_t inplanes = w;
  for (int stage = 0; stage < 4; ++stage) {
    const int64_t planes = w << stage, blocks = v.resnet_layers[size_t(stage)];
    double convs = 0, downsample = 0;
    for (int64_t b = 0; b < blocks; ++b) {
      const int64_t stride = (stage > 0 && b == 0) ? 2 : 1;
      // conv1 1x1 and conv2 3x3 at the input resolution; the anti-aliasing avgpool; conv3 1x1 after it.
      const int64_t out_hw = hw / stride;
      convs += conv(inplanes, planes, 1, hw) + conv(planes, planes, 3, hw) + conv(planes, planes * 4, 1, out_hw);
      // The downsample branch pools first, so its 1x1 conv runs at the output resolution.
      if (stride > 1 || inplanes != planes * 4) downsample += conv(inplanes, planes * 4, 1, out_hw);
      inplanes = planes * 4;
      hw = out_hw;
    }
    const std::string layer = "visual.layer" + std::to_string(stage + 1);
    terms.push_back({layer + " (" + std::to_string(blocks) + " bottlenecks)", convs});
    terms.push_back({layer + ".0.downsample", downsample});
  }
  // Attention pool over [mean; grid] (HW + 1 positions) of width C = 32 w.
  const double c = double(w * 32), l = double(hw * hw + 1), out = double(config.embed_dim);
  const double queries = pool == AttnPoolFlops::open_clip ? l : 1;
  terms.push_back({"visual.attnpool k_proj + v_proj", 2 * matmul(l, c, c)});
  terms.push_back({"visual.attnpool q_proj", matmul(queries, c, c)});
  terms.push_back({"visual.attnpool q k^T + attn v", 2 * matmul(queries, c, l)});
  terms.push_back({"visual.attnpool c_proj", matmul(queries, c, out)});
}

// timm's ViT (SigLIP's towers): no class token unless the model has one, and the MAP head (one latent query over
// the patch tokens: kv for every token, q, attention and proj for one, then its MLP) or a mean, then `head.proj`.
void add_timm_vit(std::vector<FlopTerm>& terms, const ModelConfig& config) {
  const VisionConfig& v = config.vision;
  const int64_t grid = v.image_size / v.patch_size, w = v.width;
  const double d = double(w), patches = double(grid * grid);
  terms.push_back({"visual.trunk.patch_embed", conv(3, w, v.patch_size, grid)});
  add_transformer(terms, "visual.trunk.", grid * grid + (v.class_token ? 1 : 0), w, v.layers, v.mlp_ratio);
  if (v.timm_pool == "map") {
    terms.push_back({"visual.trunk.attn_pool kv", matmul(patches, d, 2 * d)});
    terms.push_back({"visual.trunk.attn_pool q, q k^T + attn v, proj", matmul(1, d, d) + 2 * matmul(1, d, patches) +
                                                                          matmul(1, d, d)});
    terms.push_back({"visual.trunk.attn_pool mlp", 2 * matmul(1, d, double(mlp_hidden(w, v.mlp_ratio)))});
  }
  if (v.timm_proj == "linear") terms.push_back({"visual.head.proj", matmul(1, d, double(config.embed_dim))});
}

void add_vit(std::vector<FlopTerm>& terms, const ModelConfig& config) {
  const VisionConfig& v = config.vision;
  if (v.is_timm()) return add_timm_vit(terms, config);
  const int64_t grid = v.image_size / v.patch_size, w = v.width;
  terms.push_back({"visual.conv1 (patch embedding)", conv(3, w, v.patch_size, grid)});
  add_transformer(terms, "visual.", grid * grid + 1, w, v.layers, v.mlp_ratio);
  terms.push_back({"visual.proj (class token)", matmul(1, double(w), double(config.embed_dim))});
}

}  // namespace

std::vector<FlopTerm> image_tower_flop_terms(const ModelConfig& config, AttnPoolFlops pool) {
  std::vector<FlopTerm> terms;
  if (config.vision.is_resnet()) {
    if (config.vision.resnet_layers.size() != 4) {
      fail(config.name, ": vision_cfg.layers must list 4 stages for a ModifiedResNet, got ", config.vision.resnet_layers.size());
    }
    add_resnet(terms, config, pool);
  } else {
    add_vit(terms, config);
  }
  return terms;
}

std::vector<FlopTerm> text_tower_flop_terms(const ModelConfig& config) {
  const TextConfig& t = config.text;
  std::vector<FlopTerm> terms;
  // token_embedding and positional_embedding are lookups and adds: no FLOPs.
  add_transformer(terms, "", t.context_length, t.width, t.layers, t.mlp_ratio);
  if (t.projection) {
    terms.push_back({"text_projection (pooled token)", matmul(1, double(t.width), double(config.embed_dim))});
  }
  return terms;
}

double total_flops(const std::vector<FlopTerm>& terms) {
  return std::accumulate(terms.begin(), terms.end(), 0.0, [](double sum, const FlopTerm& t) { return sum + t.flops; });
}

double image_forward_flops(const ModelConfig& config) { return total_flops(image_tower_flop_terms(config)); }

double text_forward_flops(const ModelConfig& config) { return total_flops(text_tower_flop_terms(config)); }

double loss_forward_flops(const ModelConfig& config, int64_t batch_size) {
  // logits_per_image = I T^T and logits_per_text = T I^T: 2 x 2 B^2 D for the batch, 4 B D per sample.
  return 2 * matmul(1, double(config.embed_dim), double(batch_size));
}

double train_flops_per_sample(const ModelConfig& config, int64_t batch_size) {
  return 3 * (image_forward_flops(config) + text_forward_flops(config) + loss_forward_flops(config, batch_size));
}

}  // namespace clip
