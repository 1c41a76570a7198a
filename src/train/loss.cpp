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

at::Tensor sigmoid_loss_normalized(const at::Tensor& image_rows, const at::Tensor& text_columns, const at::Tensor& scale,
                                   const at::Tensor& bias, bool positives) {
  at::Tensor logits = scale * at::matmul(image_rows, text_columns.t());
  if (bias.defined()) logits = logits + bias;
  logits = logits.to(at::kFloat);
  // -log sigmoid(-z) = softplus(z) for the negatives; -log sigmoid(z) = softplus(z) - z for the diagonal.
  at::Tensor total = at::softplus(logits).sum();
  if (positives) total = total - logits.diagonal().sum();
  return total / image_rows.size(0);
}

at::Tensor SigLipLoss::operator()(const LossInputs& in, Communicator* comm) const {
  TORCH_CHECK(in.image_features.sizes() == in.text_features.sizes() && in.image_features.dim() == 2,
              "SigLipLoss needs image and text features of one shape [N, D], got ", in.image_features.sizes(), " and ",
              in.text_features.sizes());
  const at::Tensor img = l2_normalize(in.image_features), txt = l2_normalize(in.text_features);
  const at::Tensor scale = in.logit_scale.exp();
  at::Tensor loss = sigmoid_loss_normalized(img, txt, scale, in.logit_bias, /*positives=*/true);
  if (comm == nullptr || comm->size() == 1) return loss;
  // Round k brings the texts of ranks r-k and r+k (one block when they are the same rank, or for the last round
  // of an even world size): W-1 blocks in ceil((W-1)/2) rounds.
  const int others = comm->size() - 1;
  at::Tensor to_right = txt, to_left = txt;
  for (int round = 0; round < others / 2; ++round) {
    const std::vector<at::Tensor> got = ring_shift_with_grad(*comm, {to_right, to_left}, {+1, -1});
    loss = loss + sigmoid_loss_normalized(img, got[0], scale, in.logit_bias, false) +
           sigmoid_loss_normalized(img, got[1], scale, in.logit_bias, false);
    to_right = got[0];
    to_left = got[1];
  }
  if (others % 2) {
    const at::Tensor got = ring_shift_with_grad(*comm, {to_right}, {+1})[0];
    loss = loss + sigmoid_loss_normalized(img, got, scale, in.logit_bias, false);
  }
  return loss;
}

}  // namespace clip
