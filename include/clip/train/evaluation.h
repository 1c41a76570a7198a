#pragma once
/// Evaluations during and after training: image<->text retrieval on held-out pairs, zero-shot on a labeled folder.
///
///   clip::RetrievalMetrics r = clip::retrieval_metrics(image_features, text_features);
///   std::printf("image->text R@1 %.3f\n", r.image_to_text[0]);
#include <ATen/core/Tensor.h>

#include <array>
#include <cstdint>
#include <utility>
#include <vector>

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

/// Recall@K of matching rows of two feature matrices [N, D] (normalized here): caption_retrieval_metrics with text i
/// describing image i.
RetrievalMetrics retrieval_metrics(const at::Tensor& image_features, const at::Tensor& text_features);

/// Zero-shot retrieval as LAION's CLIP_benchmark measures it (clip_benchmark/metrics/zeroshot_retrieval.py): a query
/// is found at k when any of its matches ranks in the top k.
struct CaptionRetrievalMetrics {
  std::vector<int64_t> ks;
  /// per k, CLIP_benchmark's image_retrieval_recall@k: text queries, the fraction with a matching image in the top k
  std::vector<double> image_retrieval_recall;
  /// per k, text_retrieval_recall@k: image queries, the fraction with a matching text in the top k
  std::vector<double> text_retrieval_recall;
  int64_t images = 0, texts = 0;
};

/// `matches`: (text, image) pairs. In CLIP_benchmark each text describes one image and an image may have several
/// texts; a text with several images (the same caption under many images, made one query) is found when any of them
/// ranks in the top k. Scores are cosine similarities; equal scores rank the lower index first (torch.topk, which
/// CLIP_benchmark uses, promises no order for ties). A query without a match counts as a miss, as there.
CaptionRetrievalMetrics caption_retrieval_metrics(const at::Tensor& image_features, const at::Tensor& text_features,
                                                  const std::vector<std::pair<int64_t, int64_t>>& matches,
                                                  const std::vector<int64_t>& ks = {1, 5, 10});

/// Embeds a dataset's images (no augmentation; unreadable ones skipped with their captions) and captions
/// (each sample's caption with seed 0) and measures retrieval.
RetrievalMetrics evaluate_retrieval(CLIPImpl& model, const CaptionDataset& data, const Tokenizer& tokenizer,
                                    int64_t batch_size, int workers);

}  // namespace clip
