#pragma once
// The one place that knows LibTorch versions apart (CI builds 1.13 on CPU; GPU machines build 2.x with CUDA).
// Code elsewhere calls these and never tests TORCH_VERSION_* itself.
#include <ATen/ATen.h>
#include <ATen/autocast_mode.h>
#include <torch/cuda.h>
#include <torch/version.h>

// CLIP_TORCH_CUDA: LibTorch was built with CUDA (set by src/CMakeLists.txt); only then do the CUDA headers exist.
#ifndef CLIP_TORCH_CUDA
#define CLIP_TORCH_CUDA 0
#endif
#if CLIP_TORCH_CUDA
#include <c10/cuda/CUDACachingAllocator.h>
#include <c10/cuda/CUDAFunctions.h>
#endif

#include <cmath>
#include <cstdlib>
#include <cstring>
#include <vector>

#if TORCH_VERSION_MAJOR >= 2
#define CLIP_HAS_FUSED_SDPA 1
#define CLIP_HAS_MKL_PACKED_LINEAR 1  // mkl::_mkl_reorder_linear_weight / mkl::_mkl_linear (when built with MKL)
#include <ATen/core/dispatch/Dispatcher.h>
#include <optional>
#else
#define CLIP_HAS_FUSED_SDPA 0
#define CLIP_HAS_MKL_PACKED_LINEAR 0
#endif
#if TORCH_VERSION_MAJOR > 2 || (TORCH_VERSION_MAJOR == 2 && TORCH_VERSION_MINOR >= 4)
#define CLIP_AUTOCAST_PER_DEVICE 1
#define CLIP_HAS_FUSED_ADAMW 1  // at::_fused_adamw_ on CPUs (2.4+) and CUDA
#else
#define CLIP_AUTOCAST_PER_DEVICE 0
#define CLIP_HAS_FUSED_ADAMW 0
#endif

namespace clip::compat {

/// LibTorch's option variants (a convolution's padding: explicit, 'valid' or 'same') are std::variant on 2.x and
/// c10::variant on 1.13.
#if TORCH_VERSION_MAJOR >= 2
using std::get_if;
#else
using c10::get_if;
#endif

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

/// MKL's GEMM with a weight packed once (cblas_sgemm_pack, what torch.compile's CPU freezing uses for fp32
/// linear layers): whether this LibTorch has it (2.x built with MKL, as PyPI's x86 wheels are). CLIP_MKL_PACKED=0
/// in the environment turns it off (to measure what it gives).
inline bool mkl_packed_linear_available() {
#if CLIP_HAS_MKL_PACKED_LINEAR
  static const bool available = [] {
    const char* env = std::getenv("CLIP_MKL_PACKED");
    if (env != nullptr && std::strcmp(env, "0") == 0) return false;
    auto& dispatcher = c10::Dispatcher::singleton();
    return at::hasMKL() && dispatcher.findSchema({"mkl::_mkl_linear", ""}).has_value() &&
           dispatcher.findSchema({"mkl::_mkl_reorder_linear_weight", ""}).has_value();
  }();
  return available;
#else
  return false;
#endif
}

#if CLIP_HAS_MKL_PACKED_LINEAR
/// weight [out, in] packed for products with `rows` rows of input.
inline at::Tensor mkl_pack_linear_weight(const at::Tensor& weight, int64_t rows) {
  static const auto op = c10::Dispatcher::singleton()
                             .findSchemaOrThrow("mkl::_mkl_reorder_linear_weight", "")
                             .typed<at::Tensor(const at::Tensor&, int64_t)>();
  return op.call(weight, rows);
}

/// x W^T + b from the packed weight (`weight` is the unpacked one, `rows` what it was packed for).
inline at::Tensor mkl_packed_linear(const at::Tensor& x, const at::Tensor& packed, const at::Tensor& weight,
                                    const at::Tensor& bias, int64_t rows) {
  static const auto op =
      c10::Dispatcher::singleton()
          .findSchemaOrThrow("mkl::_mkl_linear", "")
          .typed<at::Tensor(const at::Tensor&, const at::Tensor&, const at::Tensor&, const std::optional<at::Tensor>&,
                            int64_t)>();
  return op.call(x, packed, weight, bias.defined() ? std::optional<at::Tensor>(bias) : std::nullopt, rows);
}
#endif

/// Whether CUDA autocast is on, and its dtype.
inline bool autocast_enabled() {
#if CLIP_AUTOCAST_PER_DEVICE
  return at::autocast::is_autocast_enabled(at::kCUDA);
#else
  return at::autocast::is_enabled();
#endif
}
inline at::ScalarType autocast_dtype() {
#if CLIP_AUTOCAST_PER_DEVICE
  return at::autocast::get_autocast_dtype(at::kCUDA);
#else
  return at::autocast::get_autocast_gpu_dtype();
#endif
}

/// CUDA autocast for a scope (torch.autocast("cuda", dtype)); a no-op when not enabled. Restores the previous
/// state and clears the cast cache on exit, as Python's context manager does.
class AutocastGuard {
 public:
  AutocastGuard(bool enabled, at::ScalarType dtype) : enabled_(enabled) {
    if (!enabled_) return;
#if CLIP_AUTOCAST_PER_DEVICE
    previous_ = at::autocast::is_autocast_enabled(at::kCUDA);
    previous_dtype_ = at::autocast::get_autocast_dtype(at::kCUDA);
    at::autocast::set_autocast_enabled(at::kCUDA, true);
    at::autocast::set_autocast_dtype(at::kCUDA, dtype);
#else
    previous_ = at::autocast::is_enabled();
    previous_dtype_ = at::autocast::get_autocast_gpu_dtype();
    at::autocast::set_enabled(true);
    at::autocast::set_autocast_gpu_dtype(dtype);
#endif
    at::autocast::increment_nesting();
  }
  ~AutocastGuard() {
    if (!enabled_) return;
    if (at::autocast::decrement_nesting() == 0) at::autocast::clear_cache();
#if CLIP_AUTOCAST_PER_DEVICE
    at::autocast::set_autocast_enabled(at::kCUDA, previous_);
    at::autocast::set_autocast_dtype(at::kCUDA, previous_dtype_);
#else
    at::autocast::set_enabled(previous_);
    at::autocast::set_autocast_gpu_dtype(previous_dtype_);
#endif
  }
  AutocastGuard(const AutocastGuard&) = delete;
  AutocastGuard& operator=(const AutocastGuard&) = delete;

 private:
  bool enabled_;
  bool previous_ = false;
  at::ScalarType previous_dtype_ = at::kHalf;
};

/// One AdamW update (torch.optim.AdamW's math, decoupled weight decay) over lists of tensors. LibTorch 2.4+:
/// the fused kernel (torch.optim.AdamW(fused=True)), one pass over each parameter's four tensors; before, or for
/// tensors it does not take: multi-tensor (foreach) kernels, nine passes. bias1 = 1 - beta1^step,
/// bias2 = 1 - beta2^step.
inline void adamw_step(std::vector<at::Tensor>& params, std::vector<at::Tensor>& grads,
                       std::vector<at::Tensor>& exp_avgs, std::vector<at::Tensor>& exp_avg_sqs, double lr,
                       double beta1, double beta2, double eps, double weight_decay, double bias1, double bias2,
                       int64_t step) {
#if CLIP_HAS_FUSED_ADAMW
  bool fusable = !params.empty();
  for (size_t i = 0; i < params.size() && fusable; ++i) {
    fusable = params[i].scalar_type() == at::kFloat && grads[i].scalar_type() == at::kFloat &&
              !grads[i].is_sparse() && params[i].device() == params[0].device();
  }
  if (fusable) {
    // The kernel computes the bias corrections from each parameter's step count, read-only here.
    const at::Tensor step_count = at::full({}, static_cast<double>(step), params[0].options().dtype(at::kFloat));
    const std::vector<at::Tensor> steps(params.size(), step_count);
    at::_fused_adamw_(params, grads, exp_avgs, exp_avg_sqs, /*max_exp_avg_sqs=*/{}, steps, lr, beta1, beta2,
                      weight_decay, eps, /*amsgrad=*/false, /*maximize=*/false);
    // The fused kernel leaves the version counters where they were (as in PyTorch, whose fused optimizers do the
    // same); the caches of derived weights (src/model/packed_linear.h, folded_conv.h) read them to know a weight
    // changed, so move them as any in-place update does.
    for (at::Tensor& p : params) p.unsafeGetTensorImpl()->bump_version();
    return;
  }
#else
  (void)step;
#endif
  if (weight_decay != 0) at::_foreach_mul_(params, 1 - lr * weight_decay);
  at::_foreach_mul_(exp_avgs, beta1);
  at::_foreach_add_(exp_avgs, grads, 1 - beta1);
  at::_foreach_mul_(exp_avg_sqs, beta2);
  at::_foreach_addcmul_(exp_avg_sqs, grads, grads, 1 - beta2);
  std::vector<at::Tensor> denom = at::_foreach_sqrt(exp_avg_sqs);
  at::_foreach_div_(denom, std::sqrt(bias2));
  at::_foreach_add_(denom, eps);
  at::_foreach_addcdiv_(params, exp_avgs, denom, -lr / bias1);
}

/// Waits for the work queued on a CUDA device (torch.cuda.synchronize); a no-op on the CPU.
inline void synchronize(const c10::Device& device) {
  if (device.is_cuda()) torch::cuda::synchronize(device.has_index() ? device.index() : -1);
}

#if CLIP_TORCH_CUDA
inline c10::DeviceIndex cuda_index(const c10::Device& device) {
  return device.has_index() ? device.index() : c10::cuda::current_device();
}
#endif

/// Starts a new peak for cuda_peak_allocated_bytes (torch.cuda.reset_peak_memory_stats); a no-op on the CPU.
/// The caching allocator's getDeviceStats / resetPeakStats take an int device in 1.x and a c10::DeviceIndex in
/// 2.x; a DeviceIndex converts to either.
inline void cuda_reset_peak_memory(const c10::Device& device) {
#if CLIP_TORCH_CUDA
  if (device.is_cuda()) c10::cuda::CUDACachingAllocator::resetPeakStats(cuda_index(device));
#else
  (void)device;
#endif
}

/// The most bytes the CUDA caching allocator had handed out since the last reset (torch.cuda.max_memory_allocated);
/// -1 for a CPU device or a LibTorch without CUDA.
inline int64_t cuda_peak_allocated_bytes(const c10::Device& device) {
#if CLIP_TORCH_CUDA
  if (!device.is_cuda()) return -1;
  const auto stats = c10::cuda::CUDACachingAllocator::getDeviceStats(cuda_index(device));
  return stats.allocated_bytes[0].peak;  // [0]: StatType::AGGREGATE, the small and large pools together
#else
  (void)device;
  return -1;
#endif
}

}  // namespace clip::compat
