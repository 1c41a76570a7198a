#pragma once
/// The contrastive (InfoNCE) loss CLIP trains with.
///
///   torch::Tensor loss = clip::contrastive_loss(image_features, text_features, model->logit_scale);
///
/// Features are L2-normalized here; logits = exp(logit_scale) * image @ text^T; the loss is the mean of the
/// image->text and text->image cross-entropies with the diagonal as targets (open_clip's ClipLoss).
#include <ATen/core/Tensor.h>

namespace clip {

/// Symmetric InfoNCE over a batch of matching pairs: row i of each is the same sample.
/// `logit_scale` is the raw learned parameter; its exp is the inverse temperature.
at::Tensor contrastive_loss(const at::Tensor& image_features, const at::Tensor& text_features,
                            const at::Tensor& logit_scale);

/// The same with features that are already L2-normalized and an already exponentiated scale; `labels` are the
/// target column of each row ([rows] int64), so a rank can score its local rows against gathered columns.
at::Tensor contrastive_loss_normalized(const at::Tensor& image_rows, const at::Tensor& text_rows,
                                       const at::Tensor& image_columns, const at::Tensor& text_columns,
                                       const at::Tensor& scale, const at::Tensor& labels);

}  // namespace clip
