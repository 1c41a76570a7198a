#include "clip/train/loss.h"

#include <ATen/ATen.h>

#include "clip/dist/communicator.h"
#include "clip/model/clip_model.h"

namespace clip {

at::Tensor contrastive_loss_normalized(const at::Tensor& image_rows, const at::Tensor& text_rows,
                                       const at::Tensor& image_columns, const at::Tensor& text_columns,
                                       const at::Tensor& scale, const at::Tensor& labels) {
  // logits_per_image[i, j] = scale * <image_i, text_j>; logits_per_text[i, j] = scale * <text_i, image_j>.
  const at::Tensor logits_per_image = scale * at::matmul(image_rows, text_columns.t());
  const at::Tensor logits_per_text = scale * at::matmul(text_rows, image_columns.t());
  return (at::cross_entropy_loss(logits_per_image.to(at::kFloat), labels) +
          at::cross_entropy_loss(logits_per_text.to(at::kFloat), labels)) /
         2;
}

at::Tensor contrastive_loss(const at::Tensor& image_features, const at::Tensor& text_features,
                            const at::Tensor& logit_scale) {
  TORCH_CHECK(image_features.sizes() == text_features.sizes() && image_features.dim() == 2,
              "contrastive_loss needs image and text features of one shape [N, D], got ", image_features.sizes(),
              " and ", text_features.sizes());
  const at::Tensor image = l2_normalize(image_features);
  const at::Tensor text = l2_normalize(text_features);
  const at::Tensor labels = at::arange(image.size(0), image.options().dtype(at::kLong));
  return contrastive_loss_normalized(image, text, image, text, logit_scale.exp(), labels);
}

at::Tensor InfoNCELoss::operator()(const LossInputs& in, Communicator* comm) const {
  if (comm == nullptr) return contrastive_loss(in.image_features, in.text_features, in.logit_scale);
  const at::Tensor img = l2_normalize(in.image_features), txt = l2_normalize(in.text_features);
  const at::Tensor all_img = all_gather_with_grad(*comm, img);
  const at::Tensor all_txt = all_gather_with_grad(*comm, txt);
  const at::TensorOptions labels = img.options().dtype(at::kLong);
  if (local_loss_) {
    const int64_t b = img.size(0);
    return contrastive_loss_normalized(img, txt, all_img, all_txt, in.logit_scale.exp(),
                                       at::arange(b, labels) + comm->rank() * b);
  }
  return contrastive_loss_normalized(all_img, all_txt, all_img, all_txt, in.logit_scale.exp(),
                                     at::arange(all_img.size(0), labels));
}

}  // namespace clip
