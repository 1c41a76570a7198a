#include "model/packed_linear.h"

#include "util/torch_compat.h"

namespace clip {

at::Tensor PackedLinears::operator()(size_t slot, const at::Tensor& x, const at::Tensor& weight,
                                     const at::Tensor& bias) {
#if CLIP_HAS_MKL_PACKED_LINEAR
  const bool packable = !at::GradMode::is_enabled() && x.is_cpu() && x.scalar_type() == at::kFloat &&
                        weight.scalar_type() == at::kFloat && weight.is_contiguous() && !weight.is_inference() &&
                        (!bias.defined() || bias.scalar_type() == at::kFloat) && x.dim() >= 2 && x.numel() > 0 &&
                        compat::mkl_packed_linear_available();
  if (packable) {
    const int64_t rows = x.numel() / x.size(-1);
    at::Tensor packed;
    {
      std::lock_guard<std::mutex> lock(mutex_);
      if (packs_.size() <= slot) packs_.resize(slot + 1);
      Pack& p = packs_[slot];
      if (p.data != weight.data_ptr() || p.version != weight._version() || p.rows != rows) {
        p.packed = compat::mkl_pack_linear_weight(weight, rows);
        p.data = weight.data_ptr();
        p.version = weight._version();
        p.rows = rows;
      }
      packed = p.packed;
    }
    return compat::mkl_packed_linear(x, packed, weight, bias, rows);
  }
#else
  (void)slot;
#endif
  return at::linear(x, weight, bias);
}

}  // namespace clip
