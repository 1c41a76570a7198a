#pragma once
/// The arithmetic of inference on the CPU: fp32 (the reference's), bf16 or int8.
///
///   clip::CLIP model = clip::load_model("ViT-B-32.pt", clip::LoadOptions().precision(clip::InferencePrecision::int8));
///   model->encode_image(images);                              // int8 linear layers, fp32 in and out
///   model->set_inference_precision(clip::InferencePrecision::fp32);   // back to the reference's arithmetic
///
/// - int8: dynamic quantization, as torch.ao.quantization.quantize_dynamic does it: every linear layer of the
///   Transformer blocks and of the ResNet's attention pool, and the ViT's patch embedding (a convolution whose
///   stride is its kernel: a linear layer over patches), runs on int8 weights (symmetric, one scale per output
///   channel) against activations quantized per call (one scale per tensor), accumulating in int32, through
///   LibTorch's quantized operators (oneDNN). Everything else (the ResNet's convolutions, LayerNorm, attention,
///   the final projections) stays fp32.
/// - bf16: the same layers and the ResNet's convolutions multiply bf16 weights and activations (accumulating in
///   fp32); the ResNet's activations stay bf16 between convolutions. Only on CPUs with native bf16 arithmetic
///   (AVX512-BF16 or AMX): elsewhere it would be emulated, slower than fp32, and is refused.
/// The fp32 weights are kept (state dict, saving, training and the weights' fingerprint are unchanged); the int8 or
/// bf16 copies are made the first time each layer runs and remade when its weights change. Only inference without
/// autograd on CPU tensors is affected: training, and any CUDA tensor, computes as before.
/// Accuracy and speed against fp32: docs/performance.md. Set the precision before sharing a model among threads;
/// preparing int8 weights switches LibTorch's process-wide quantized engine for a moment (under a lock), so
/// quantized operators of one's own should not run on other threads meanwhile.
#include <string>

namespace clip {

enum class InferencePrecision { fp32, bf16, int8 };

/// "fp32", "bf16", "int8".
const char* to_string(InferencePrecision precision);

/// Parses "fp32", "bf16" or "int8"; clip::Error naming `source` otherwise.
InferencePrecision parse_inference_precision(const std::string& text, const std::string& source = "--precision");

/// Whether this CPU does bf16 arithmetic natively (AVX512-BF16 or AMX-BF16).
bool cpu_has_native_bf16();

/// Whether this LibTorch has a quantized engine that runs int8 linear layers (oneDNN, x86 or FBGEMM).
bool int8_available();

/// Refuses (clip::Error, one line saying what to use instead) a precision this machine cannot run well, or a
/// reduced precision on a device other than the CPU.
void check_inference_precision(InferencePrecision precision, bool on_cpu);

/// The precision that inference kernels on this thread follow (fp32 unless a guard below says otherwise).
InferencePrecision current_inference_precision();

/// Sets this thread's inference precision for its lifetime, as at::AutoGradMode does for autograd;
/// CLIPImpl::encode_image / encode_text put one around each tower with the model's precision.
class InferencePrecisionGuard {
 public:
  explicit InferencePrecisionGuard(InferencePrecision precision);
  ~InferencePrecisionGuard();
  InferencePrecisionGuard(const InferencePrecisionGuard&) = delete;
  InferencePrecisionGuard& operator=(const InferencePrecisionGuard&) = delete;

 private:
  InferencePrecision previous_;
};

}  // namespace clip
