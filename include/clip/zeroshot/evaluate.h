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
  /// labeled folders: keep this many correctly and this many wrongly classified images of each class as
  /// ZeroShotSummary::examples (the first in folder order)
  int64_t examples_per_class = 0;
};

/// `count` images of class `truth` whose top-1 prediction was `predicted`.
struct ConfusionCell {
  int64_t truth = 0, predicted = 0, count = 0;
};

/// One image's prediction, kept as an example.
struct ZeroShotExample {
  std::string path;
  int64_t label = -1;                 ///< its class (an index of ZeroShotSummary::classes)
  std::vector<int64_t> top;           ///< the k best classes, best first
  std::vector<double> probabilities;  ///< theirs
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
  std::vector<std::string> classes;                ///< the classifier's
  /// labeled folders: the confusion matrix's non-zero cells, by true class then prediction (kept sparse: a dense
  /// matrix of 21,000 classes would not fit in memory)
  std::vector<ConfusionCell> confusion;
  /// labeled folders: ZeroShotRunOptions::examples_per_class of each class right and wrong, by class, in folder order
  std::vector<ZeroShotExample> examples;
  double seconds = 0;         ///< wall time, folder in to predictions out
  double wait_seconds = 0;    ///< time the model waited for decoded batches
  double model_seconds = 0;   ///< time in the image tower and the classifier
  CpuSplit cpu;               ///< where the cores' time went while the images were classified
};

/// Classifies every image of `folder` (labels, when present, index `classifier.classes()`).
ZeroShotSummary classify_folder(CLIPImpl& model, const ZeroShotClassifier& classifier, const ImageFolder& folder,
                                const ZeroShotRunOptions& options);

}  // namespace clip
