#include "model/packed_linear.h"

#include <ATen/core/dispatch/Dispatcher.h>
#include <ATen/native/quantized/PackedParams.h>

#include "clip/util/error.h"
#include "util/torch_compat.h"

namespace clip {

struct PackedLinears::Int8Weights {
  c10::intrusive_ptr<LinearPackedParamsBase> packed;
  bool reduce_range = false;  // 7-bit activations where pairs of products accumulate in int16 (see int8_bits)
};

namespace {

// weight [out, in] fp32 -> int8 per output channel, scale max|w| / levels (zero point 0; levels 127, or 63 for
// 7-bit weights), packed with the bias.
c10::intrusive_ptr<LinearPackedParamsBase> pack_int8(const at::Tensor& weight, const at::Tensor& bias, int levels) {
  const at::Tensor w = weight.detach().contiguous();
  const at::Tensor scales = w.abs().amax(1).clamp_min(1e-12) / double(levels);
  // round(w / scale) in [-levels, levels], made a per-channel quantized tensor directly: 3-4x faster than
  // at::quantize_per_channel (a third of a ViT-B/32's cold start in int8), the same integers (half to even).
  const at::Tensor integers = (w / scales.unsqueeze(1)).round_().clamp_(-levels, levels).to(at::kChar);
  const at::Tensor quantized = at::_make_per_channel_quantized_tensor(
      integers, scales.to(at::kDouble), at::zeros({w.size(0)}, w.options().dtype(at::kLong)), 0);
  static const auto prepack =
      c10::Dispatcher::singleton()
          .findSchemaOrThrow("quantized::linear_prepack", "")
          .typed<c10::intrusive_ptr<LinearPackedParamsBase>(at::Tensor, c10::optional<at::Tensor>)>();
  // The engine is process-wide state of LibTorch: set it for the packing only, one packing at a time.
  static std::mutex engine_mutex;
  std::lock_guard<std::mutex> lock(engine_mutex);
  auto& context = at::globalContext();
  const at::QEngine previous = context.qEngine();
  const std::optional<at::QEngine> engine = preferred_int8_engine();
  if (!engine) {
    fail("int8 inference: this LibTorch has no quantized engine for linear layers (oneDNN, x86 or FBGEMM); use fp32");
  }
  context.setQEngine(*engine);
  try {
    auto packed = prepack.call(quantized, bias.defined() ? c10::optional<at::Tensor>(bias.detach().contiguous())
                                                         : c10::optional<at::Tensor>());
    context.setQEngine(previous);
    return packed;
  } catch (...) {
    context.setQEngine(previous);
    throw;
  }
}

// How many bits the int8 kernels can use on this CPU. Without VNNI every engine multiplies with AVX2's vpmaddubsw,
// which adds pairs of u8 x s8 products in saturating int16: with 8-bit activations and 8-bit weights 2 x 255 x 127
// overflows and the sums clip. One side must give up a bit: FBGEMM and x86 drop the activations' (reduce_range,
// always, as PyTorch does); for oneDNN libclip drops the weights' instead (2 x 255 x 63 fits), since weights are
// quantized per output channel and activations per tensor, so a weight bit costs less. Measured on a 2-core AMD EPYC
// with AVX2 only, LibTorch 1.13's oneDNN, text cosine to fp32 (worst of 19 texts, rn_tiny / vit_tiny) and zero-shot
// top-1 of test_precision's trained model: 8 + 8 bits 0.978 / 0.989, -0.70 points; 7-bit activations 0.9968 / 0.9924,
// -0.55 points; 7-bit weights 0.9982 / 0.9975, -0.45 points.
struct Int8Bits {
  int weight_levels = 127;
  bool reduce_range = false;
};

Int8Bits int8_bits(at::QEngine engine) {
  if (engine != at::QEngine::ONEDNN) return {127, true};
#if defined(__x86_64__) && defined(__GNUC__)
  static const bool vnni = __builtin_cpu_supports("avx512vnni") || __builtin_cpu_supports("avxvnni");
  if (!vnni) return {63, false};
#endif
  return {127, false};
}

}  // namespace

std::optional<at::QEngine> preferred_int8_engine() {
  const auto& engines = at::globalContext().supportedQEngines();
  for (const at::QEngine engine : {at::QEngine::ONEDNN, at::QEngine::X86, at::QEngine::FBGEMM}) {
    if (std::find(engines.begin(), engines.end(), engine) != engines.end()) return engine;
  }
  return std::nullopt;
}

at::Tensor PackedLinears::operator()(size_t slot, const at::Tensor& x, const at::Tensor& weight,
                                     const at::Tensor& bias) {
  return run(slot, x, weight, bias, 1.0, 1.0);
}

at::Tensor PackedLinears::scaled(size_t slot, const at::Tensor& x, const at::Tensor& weight, const at::Tensor& bias,
                                 double in_scale, double out_scale) {
  TORCH_CHECK(current_inference_precision() != InferencePrecision::fp32 && !at::GradMode::is_enabled(),
              "PackedLinears::scaled is for reduced-precision inference");
  return run(slot, x, weight, bias, in_scale, out_scale);
}

at::Tensor PackedLinears::run(size_t slot, const at::Tensor& x, const at::Tensor& weight, const at::Tensor& bias,
                              double in_scale, double out_scale) {
  const bool inference = !at::GradMode::is_enabled() && x.is_cpu() && x.scalar_type() == at::kFloat &&
                         weight.scalar_type() == at::kFloat && weight.is_contiguous() && !weight.is_inference() &&
                         (!bias.defined() || (bias.scalar_type() == at::kFloat && !bias.is_inference())) &&
                         x.dim() >= 2 && x.numel() > 0;
  if (!inference) {  // the scales applied as they are (an inference tensor, a non-contiguous weight, ...)
    const at::Tensor y = at::linear(in_scale != 1.0 ? x * in_scale : x, weight, bias);
    return out_scale != 1.0 ? y * out_scale : y;
  }
  const InferencePrecision precision = current_inference_precision();
  const int64_t rows = x.numel() / x.size(-1);
  if (precision == InferencePrecision::fp32 && !compat::mkl_packed_linear_available()) return at::linear(x, weight, bias);

  Pack pack;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    if (packs_.size() <= slot) packs_.resize(slot + 1);
    Pack& p = packs_[slot];
    const void* bias_data = bias.defined() ? bias.data_ptr() : nullptr;
    const int64_t bias_version = bias.defined() ? int64_t(bias._version()) : -1;
    const bool stale = p.precision != precision || p.data != weight.data_ptr() || p.version != weight._version() ||
                       p.bias_data != bias_data || p.bias_version != bias_version ||
                       (precision == InferencePrecision::fp32 && p.rows != rows);
    if (stale) {
      p = Pack{};
      const bool scale = in_scale != 1.0 || out_scale != 1.0;
      const at::Tensor w = scale ? weight.detach() * (in_scale * out_scale) : weight.detach();
      const at::Tensor b = !bias.defined() ? at::Tensor() : scale ? bias.detach() * out_scale : bias.detach();
      switch (precision) {
        case InferencePrecision::int8: {
          const std::optional<at::QEngine> engine = preferred_int8_engine();
          const Int8Bits bits = engine ? int8_bits(*engine) : Int8Bits{};  // no engine: pack_int8 says so
          p.int8 = std::make_shared<Int8Weights>(Int8Weights{pack_int8(w, b, bits.weight_levels), bits.reduce_range});
          break;
        }
        case InferencePrecision::bf16:
          p.packed = w.to(at::kBFloat16).contiguous();
          if (b.defined()) p.bias = b.to(at::kBFloat16);
          break;
        case InferencePrecision::fp32:
#if CLIP_HAS_MKL_PACKED_LINEAR
          p.packed = compat::mkl_pack_linear_weight(weight, rows);
#endif
          break;
      }
      p.precision = precision;
      p.data = weight.data_ptr();
      p.version = weight._version();
      p.bias_data = bias_data;
      p.bias_version = bias_version;
      p.rows = rows;
    }
    pack = p;  // shares the tensors: a later repack of the slot does not pull them from under this call
  }
  switch (precision) {
    case InferencePrecision::int8: {
      std::vector<int64_t> shape = x.sizes().vec();
      at::Tensor out =
          pack.int8->packed->apply_dynamic(x.reshape({rows, x.size(-1)}).contiguous(), pack.int8->reduce_range);
      shape.back() = out.size(-1);
      return out.view(shape);
    }
    case InferencePrecision::bf16:
      return at::linear(x.to(at::kBFloat16), pack.packed, pack.bias).to(x.scalar_type());
    case InferencePrecision::fp32:
      break;
  }
#if CLIP_HAS_MKL_PACKED_LINEAR
  return compat::mkl_packed_linear(x, pack.packed, weight, bias, rows);
#else
  return at::linear(x, weight, bias);
#endif
}

}  // namespace clip
