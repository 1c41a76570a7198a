#pragma once
/// Classification metrics as LAION's CLIP_benchmark computes them (clip_benchmark/metrics/zeroshot_classification.py),
/// with one rule of our own where it has none: equal scores rank the lower class index first (torch.topk promises no
/// order for ties; torch.argmax takes the first maximum, which this rule agrees with).
///
///   clip::ClassificationMetrics m = clip::classification_metrics(logits, targets);   // [N, C], [N]
///   std::printf("acc1 %.4f acc5 %.4f mean per-class recall %.4f\n", m.acc1, m.acc5, m.mean_per_class_recall);
#include <ATen/core/Tensor.h>

#include <cstdint>

namespace clip {

/// The k best columns of each row of `scores` [N, C], best first; equal scores: the lower column first. k is capped at
/// C. int64 [N, min(k, C)] on the CPU.
at::Tensor ranked_topk(const at::Tensor& scores, int64_t k);

/// CLIP_benchmark's acc1, acc5 and mean_per_class_recall.
struct ClassificationMetrics {
  double acc1 = 0;  ///< the fraction of samples whose class ranks first
  /// the fraction whose class ranks in the top 5; NaN with fewer than 5 classes (CLIP_benchmark writes NaN too)
  double acc5 = 0;
  /// the mean, over the classes that have samples, of the fraction of their samples ranked first (scikit-learn's
  /// balanced_accuracy_score: a class that is predicted but has no samples does not count)
  double mean_per_class_recall = 0;
  int64_t samples = 0;
  int64_t classes = 0;               ///< C
  int64_t classes_with_samples = 0;  ///< the classes the mean runs over
};

/// From each sample's ranked classes (ranked_topk, k >= min(5, C)) and its class [N] (integers in [0, classes)).
ClassificationMetrics classification_metrics_from_ranks(const at::Tensor& ranked, const at::Tensor& targets,
                                                        int64_t classes);

/// From logits [N, C] and targets [N].
ClassificationMetrics classification_metrics(const at::Tensor& logits, const at::Tensor& targets);

}  // namespace clip
