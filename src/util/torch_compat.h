#pragma once
// The one place that knows LibTorch versions apart (CI builds 1.13 on CPU; GPU machines build 2.x with CUDA).
// Code elsewhere calls these and never tests TORCH_VERSION_* itself.
#include <ATen/ATen.h>
#include <torch/version.h>

#include <cmath>

#if TORCH_VERSION_MAJOR >= 2
#define CLIP_HAS_FUSED_SDPA 1
#else
#define CLIP_HAS_FUSED_SDPA 0
#endif

namespace clip::compat {

/// softmax(q k^T / sqrt(d) [+ causal mask]) v for q, k, v of shape [N, H, L, d].
/// LibTorch 2.x dispatches to flash / memory-efficient kernels; 1.13 runs matmul-softmax-matmul.
inline at::Tensor scaled_dot_product_attention(const at::Tensor& q, const at::Tensor& k, const at::Tensor& v,
                                               bool causal) {
#if CLIP_HAS_FUSED_SDPA
  return at::scaled_dot_product_attention(q, k, v, /*attn_mask=*/{}, /*dropout_p=*/0.0, causal);
#else
  const double scale = 1.0 / std::sqrt(static_cast<double>(q.size(-1)));
  at::Tensor scores = at::matmul(q * scale, k.transpose(-2, -1));
  if (causal) {
    const int64_t lq = q.size(-2), lk = k.size(-2);
    at::Tensor mask = at::ones({lq, lk}, q.options().dtype(at::kBool)).triu(lk - lq + 1);
    scores = scores.masked_fill(mask, -std::numeric_limits<double>::infinity());
  }
  return at::matmul(at::softmax(scores, -1, scores.scalar_type()), v);
#endif
}

}  // namespace clip::compat
