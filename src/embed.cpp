#include "clip/embed.h"

#include <ATen/ATen.h>
#include <torch/nn/module.h>

#include "clip/util/error.h"

namespace clip {
namespace {

// Runs `encode` over row batches of `input` on the model's device and concatenates fp32 CPU results.
template <typename Encode>
at::Tensor batched(const at::Tensor& input, int64_t batch_size, const at::TensorOptions& device, Encode encode) {
  std::vector<at::Tensor> parts;
  for (int64_t start = 0; start < input.size(0); start += batch_size) {
    const int64_t n = std::min(batch_size, input.size(0) - start);
    parts.push_back(encode(input.narrow(0, start, n).to(device.device())).to(at::kCPU, at::kFloat));
  }
  return at::cat(parts, 0);
}

void check_image(const ModelConfig& c, const at::Tensor& image, const std::string& source) {
  const int64_t r = c.vision.image_size;
  if (image.dim() != 4 || image.size(1) != 3 || image.size(2) != r || image.size(3) != r) {
    fail(source, ": 'image' has shape ", shape_string(image.sizes()), ", the model expects [N, 3, ", r, ", ", r, "]");
  }
  if (!image.is_floating_point()) fail(source, ": 'image' must be floating point, got ", image.scalar_type());
}

void check_text(const ModelConfig& c, const at::Tensor& text, const std::string& source) {
  if (text.dim() != 2 || text.size(1) > c.text.context_length) {
    fail(source, ": 'text' has shape ", shape_string(text.sizes()), ", the model expects [N, L] with L <= ",
         c.text.context_length);
  }
  if (text.is_floating_point() || text.scalar_type() == at::kBool) {
    fail(source, ": 'text' must hold integer token ids, got ", text.scalar_type());
  }
  if (text.numel() > 0) {
    const int64_t lo = text.min().item<int64_t>(), hi = text.max().item<int64_t>();
    if (lo < 0 || hi >= c.text.vocab_size) {
      fail(source, ": 'text' holds token ids in [", lo, ", ", hi, "], outside the model's vocabulary [0, ",
           c.text.vocab_size, ")");
    }
  }
}

}  // namespace

TensorMap embed_tensors(CLIPImpl& model, const TensorMap& inputs, const EmbedOptions& options) {
  TORCH_CHECK(options.batch_size > 0, "batch_size must be positive, got ", options.batch_size);
  const auto image = inputs.find("image");
  const auto text = inputs.find("text");
  if (image == inputs.end() && text == inputs.end()) {
    fail(options.source, ": holds neither 'image' [N, 3, R, R] nor 'text' [N, L]; nothing to embed");
  }
  torch::NoGradGuard no_grad;
  const at::Tensor weight = model.logit_scale;
  const at::TensorOptions device = weight.options();
  TensorMap out;
  if (image != inputs.end()) {
    check_image(model.config(), image->second, options.source);
    out["image_features"] = batched(image->second.to(weight.scalar_type()), options.batch_size, device,
                                    [&](const at::Tensor& x) { return model.encode_image(x); });
  }
  if (text != inputs.end()) {
    check_text(model.config(), text->second, options.source);
    out["text_features"] = batched(text->second.to(at::kLong), options.batch_size, device,
                                   [&](const at::Tensor& x) { return model.encode_text(x); });
  }
  if (image != inputs.end() && text != inputs.end()) {
    ClipOutput logits = compute_logits(out["image_features"], out["text_features"],
                                       model.logit_scale.to(at::kCPU, at::kFloat));
    out["logits_per_image"] = logits.logits_per_image;
    out["logits_per_text"] = logits.logits_per_text.contiguous();
  }
  return out;
}

}  // namespace clip
