#pragma once
/// Zero-shot classification of a folder of images, with accuracy when the folder is labeled.
///
///   clip::ImageFolder folder = clip::scan_labeled_folder("val/");
///   clip::ZeroShotSummary s = clip::classify_folder(*model, classifier, folder, {});
///   std::printf("top-1 %.2f%%\n", 100 * s.top1);
///
/// Decoding runs on loader threads ahead of the model (clip::ImageLoader); unreadable files are skipped and
/// reported once each (or fatal with `strict`).
#include <cstdint>
#include <string>
#include <vector>

#include "clip/data/image_folder.h"
#include "clip/image/loader.h"
#include "clip/util/cpu_split.h"
#include "clip/zeroshot/classifier.h"
#include "clip/zeroshot/metrics.h"

namespace clip {

/// Options of classify_folder.
struct ZeroShotRunOptions {
  int64_t topk = 5;
  int64_t batch_size = 64;
  int threads = 0;          ///< decoding threads; 0: one per core
  bool strict = false;      ///< an unreadable file is fatal instead of skipped
  std::string output;       ///< per-image predictions: .csv or .jsonl (empty: none)
  std::string confusion;    ///< confusion matrix CSV (labeled folders; empty: none)
  bool progress = true;     ///< progress on stderr
  bool report_skipped = true;  ///< print each skipped file on stderr
};

/// What classify_folder measured.
struct ZeroShotSummary {
  int64_t images = 0;   ///< classified
  int64_t skipped = 0;  ///< unreadable
  std::vector<ItemError> errors;
  bool labeled = false;
  double top1 = 0, topk = 0, mean_per_class = 0;  ///< accuracies in [0, 1] (labeled folders)
  ClassificationMetrics metrics;  ///< labeled folders: CLIP_benchmark's acc1, acc5, mean_per_class_recall
  int64_t k = 0;                                   ///< the k of topk
  double seconds = 0;         ///< wall time, folder in to predictions out
  double wait_seconds = 0;    ///< time the model waited for decoded batches
  double model_seconds = 0;   ///< time in the image tower and the classifier
  CpuSplit cpu;               ///< where the cores' time went while the images were classified
};

/// Classifies every image of `folder` (labels, when present, index `classifier.classes()`).
ZeroShotSummary classify_folder(CLIPImpl& model, const ZeroShotClassifier& classifier, const ImageFolder& folder,
                                const ZeroShotRunOptions& options);

}  // namespace clip
