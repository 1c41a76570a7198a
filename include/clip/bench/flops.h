#pragma once
/// Model FLOPs, counted analytically from a ModelConfig in the convention of open_clip's model profile.
///
///   double image = clip::image_forward_flops(clip::registered_config("ViT-B-32"));   // 8.82e9 per image
///
/// One FLOP is one multiply or one add, so a multiply-add counts 2: the convention of torch.utils.flop_counter,
/// which open_clip's profiler (`--profiler torch`, its default) sums (fvcore, its other profiler, reports
/// multiply-adds, half these numbers). Counted: every convolution and matrix product (the patch embedding; the
/// ResNet stem, bottleneck and downsample convolutions; attention in-projections, Q K^T, attention x V and
/// out-projections; MLPs; the attention pool; the output projections; the logits of the contrastive loss). Not
/// counted, as by the profiler: embedding lookups, normalizations, activations, softmax, pooling, residual adds
/// and biases. Causal attention counts the whole L x L product, as the profiler does.
#include <cstdint>
#include <string>
#include <vector>

#include "clip/model/config.h"

namespace clip {

/// How the ModifiedResNet's attention pool is counted.
enum class AttnPoolFlops {
  open_clip,  ///< every grid position queries and goes through c_proj, as open_clip's AttentionPool2d computes
  libclip,    ///< only the mean token queries (all the output needs), as libclip computes; 5% less for RN50
};

/// One itemized part of a forward pass: FLOPs per sample.
struct FlopTerm {
  std::string name;  ///< e.g. "transformer.resblocks (12) mlp"
  double flops;
};

/// The image tower's forward FLOPs per image, itemized.
std::vector<FlopTerm> image_tower_flop_terms(const ModelConfig& config, AttnPoolFlops pool = AttnPoolFlops::open_clip);

/// The text tower's forward FLOPs per sequence of `context_length` tokens, itemized.
std::vector<FlopTerm> text_tower_flop_terms(const ModelConfig& config);

/// The sum of a breakdown.
double total_flops(const std::vector<FlopTerm>& terms);

/// Forward FLOPs of one image (open_clip's count): ViT-B/32 8.82e9, RN50 12.22e9.
double image_forward_flops(const ModelConfig& config);

/// Forward FLOPs of one text: 5.96e9 for the 12-layer, 512-wide text tower.
double text_forward_flops(const ModelConfig& config);

/// The contrastive loss's logits per sample at a (global) batch of B: two [B, D] x [D, B] products, 4 B D.
double loss_forward_flops(const ModelConfig& config, int64_t batch_size);

/// One training sample: 3 x (image + text + loss) forward FLOPs (the backward pass costs twice the forward).
double train_flops_per_sample(const ModelConfig& config, int64_t batch_size);

}  // namespace clip
