#pragma once
/// The training objectives: CLIP's contrastive (InfoNCE) loss and SigLIP's sigmoid loss.
///
///   torch::Tensor loss = clip::contrastive_loss(image_features, text_features, model->logit_scale);
///   clip::InfoNCELoss infonce;                       // the same as an object the trainer takes (clip::Loss)
///   torch::Tensor same = infonce({image_features, text_features, model->logit_scale}, /*comm=*/nullptr);
///   clip::SigLipLoss siglip;                         // needs the model's logit_bias (init_logit_bias)
///   torch::Tensor s = siglip({image_features, text_features, model->logit_scale, model->logit_bias}, comm);
///
/// Features are L2-normalized here; logits = exp(logit_scale) * image @ text^T (+ logit_bias). InfoNCE: the mean
/// of the image->text and text->image cross-entropies with the diagonal as targets (open_clip's ClipLoss).
/// SigLIP (Zhai et al. 2023): every image-text pair is a binary decision, -log sigmoid(+-logit), summed over the
/// pairs and divided by the number of images (open_clip's SigLipLoss).
#include <ATen/core/Tensor.h>

#include <string>

namespace clip {

class Communicator;

/// Symmetric InfoNCE over a batch of matching pairs: row i of each is the same sample.
/// `logit_scale` is the raw learned parameter; its exp is the inverse temperature.
at::Tensor contrastive_loss(const at::Tensor& image_features, const at::Tensor& text_features,
                            const at::Tensor& logit_scale);

/// The same with features that are already L2-normalized and an already exponentiated scale; `labels` are the
/// target column of each row ([rows] int64), so a rank can score its local rows against gathered columns.
at::Tensor contrastive_loss_normalized(const at::Tensor& image_rows, const at::Tensor& text_rows,
                                       const at::Tensor& image_columns, const at::Tensor& text_columns,
                                       const at::Tensor& scale, const at::Tensor& labels);

/// What a loss sees of one (micro-)step: this rank's features as the towers give them (not normalized) and the
/// model's temperature parameter.
struct LossInputs {
  at::Tensor image_features;  ///< [b, D]
  at::Tensor text_features;   ///< [b, D]; row i matches image row i
  at::Tensor logit_scale;     ///< the raw parameter (exp is the inverse temperature); detached in the micro-steps
                              ///< that must not take its gradient (gradient accumulation, clip/train/step.h)
  at::Tensor logit_bias = {};  ///< the model's learned bias (SigLIP), undefined without one; detached like the scale
};

/// A training objective over matching image-text pairs. The trainer, clip_bench and contrastive_backward take
/// one; InfoNCELoss is CLIP's. An implementation must be a pure function of its inputs (it runs once per
/// micro-batch, and once more without gradients when accumulating) and, given `comm`, return the same value on
/// every rank's share of the global batch.
class Loss {
 public:
  virtual ~Loss() = default;
  /// The scalar loss. With `comm` (several ranks) the loss is over the global batch: every rank's features are
  /// gathered with all_gather_with_grad (clip/dist/communicator.h), so gradients reach every rank's towers.
  virtual at::Tensor operator()(const LossInputs& inputs, Communicator* comm) const = 0;
  /// A short name for logs and reports ("infonce").
  virtual std::string name() const = 0;
};

/// Symmetric InfoNCE, open_clip's ClipLoss: contrastive_loss over the global batch. With `local_loss`, each rank
/// scores only its own rows against all columns (logits [b, B] instead of [B, B]: less memory, the same
/// gradients), and returns its share.
class InfoNCELoss : public Loss {
 public:
  explicit InfoNCELoss(bool local_loss = false) : local_loss_(local_loss) {}
  at::Tensor operator()(const LossInputs& inputs, Communicator* comm) const override;
  std::string name() const override { return "infonce"; }
  bool local_loss() const { return local_loss_; }

 private:
  bool local_loss_;
};

/// SigLIP's pairwise sigmoid loss of rows against columns (features L2-normalized, `scale` exponentiated,
/// `bias` undefined for none): sum over pairs of -log sigmoid(label * logit), label +1 on the diagonal when
/// `positives` and -1 elsewhere, divided by the number of rows.
at::Tensor sigmoid_loss_normalized(const at::Tensor& image_rows, const at::Tensor& text_columns, const at::Tensor& scale,
                                   const at::Tensor& bias, bool positives);

/// SigLIP's loss, open_clip's SigLipLoss. With `comm`, no rank gathers the global batch: the text features travel
/// around the ring of ranks, one block from each neighbour per round (both directions at once, as open_clip's
/// 'bidir'), and each rank scores its images against each block as it arrives; gradients go back the same way
/// (ring_shift_with_grad). Memory per rank is O(local batch^2). Each rank returns its share (its images against
/// every text, divided by its batch), so the ranks' losses averaged are the global batch's loss.
class SigLipLoss : public Loss {
 public:
  at::Tensor operator()(const LossInputs& inputs, Communicator* comm) const override;
  std::string name() const override { return "siglip"; }
};

}  // namespace clip
