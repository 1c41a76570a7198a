#pragma once
/// Evaluations during and after training: image<->text retrieval on held-out pairs, zero-shot on a labeled folder.
///
///   clip::RetrievalMetrics r = clip::retrieval_metrics(image_features, text_features);
///   std::printf("image->text R@1 %.3f\n", r.image_to_text[0]);
#include <ATen/core/Tensor.h>

#include <array>
#include <cstdint>

#include "clip/data/caption_dataset.h"
#include "clip/model/clip_model.h"
#include "clip/text/tokenizer.h"

namespace clip {

/// Recall at 1, 5 and 10 in both directions, as open_clip's get_clip_metrics: row i's match is column i.
struct RetrievalMetrics {
  std::array<double, 3> image_to_text{};  ///< R@1, R@5, R@10
  std::array<double, 3> text_to_image{};
  int64_t pairs = 0;
};

/// Recall@K of matching rows of two feature matrices [N, D] (normalized here).
RetrievalMetrics retrieval_metrics(const at::Tensor& image_features, const at::Tensor& text_features);

/// Embeds a dataset's images (no augmentation; unreadable ones skipped with their captions) and captions
/// (each sample's caption with seed 0) and measures retrieval.
RetrievalMetrics evaluate_retrieval(CLIPImpl& model, const CaptionDataset& data, const Tokenizer& tokenizer,
                                    int64_t batch_size, int workers);

}  // namespace clip
