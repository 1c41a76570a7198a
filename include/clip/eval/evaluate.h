#pragma once
/// The evaluation protocols of clip_eval, on files: zero-shot classification of a labeled folder or CSV, image-text
/// retrieval on a captions CSV, and linear probes on labeled folders, with results in LAION CLIP_benchmark's JSON
/// schema so that its comparison scripts read them.
///
///   clip::ImageFolder data = clip::read_labeled_csv("test.csv", "filepath", "label", ",");
///   clip::RetrievalSet set = clip::read_retrieval_csv("captions.tsv", "filepath", "title", "\t");
///   clip::CaptionRetrievalMetrics r = clip::evaluate_retrieval_set(*model, *tokenizer, set, {1, 5, 10});
///   clip::write_benchmark_result("result.json", {"flickr30k", "ViT-B-32", "model.pt", "zeroshot_retrieval",
///                                                clip::retrieval_result_metrics(r)});
#include <ATen/core/Tensor.h>

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "clip/data/image_folder.h"
#include "clip/image/loader.h"
#include "clip/model/clip_model.h"
#include "clip/text/tokenizer.h"
#include "clip/train/evaluation.h"
#include "clip/zeroshot/metrics.h"

namespace clip {

/// One result file of CLIP_benchmark: {"dataset", "model", "pretrained", "task", "metrics", "language"}.
struct BenchmarkResult {
  std::string dataset, model, pretrained, task;
  std::vector<std::pair<std::string, double>> metrics;  ///< in order; NaN is written as null
  std::string language = "en";
};

/// The JSON text of a result (one line).
std::string to_json(const BenchmarkResult& result);
/// Writes it atomically; errors name the file.
void write_benchmark_result(const std::string& path, const BenchmarkResult& result);

/// CLIP_benchmark's metric names: acc1, acc5, mean_per_class_recall (with `prefix` "lp_" for linear probes).
std::vector<std::pair<std::string, double>> classification_result_metrics(const ClassificationMetrics& m,
                                                                          const std::string& prefix = "");
/// image_retrieval_recall@k and text_retrieval_recall@k for each k.
std::vector<std::pair<std::string, double>> retrieval_result_metrics(const CaptionRetrievalMetrics& m);

/// A labeled image list from a CSV with a header row: the image column and the label column (class names); the
/// classes are the sorted distinct labels. Relative paths resolve against the CSV's folder.
ImageFolder read_labeled_csv(const std::string& path, const std::string& image_key, const std::string& label_key,
                             const std::string& separator);

/// Images and captions for retrieval: each distinct image once, each distinct caption once, and which caption
/// describes which image (an image may have several captions; a caption repeated under several images is one
/// query matching all of them).
struct RetrievalSet {
  std::string source;
  std::vector<std::string> images, texts;
  std::vector<std::pair<int64_t, int64_t>> matches;  ///< (text, image)
};

/// From open_clip's caption CSV (as clip_train reads it): one row per (image, caption).
RetrievalSet read_retrieval_csv(const std::string& path, const std::string& image_key, const std::string& caption_key,
                                const std::string& separator);

/// Embeds the set (images through the model's preprocessing; captions cut to the context, as open_clip's tokenizer
/// does) and measures retrieval. Unreadable images are left out, with their matches and the captions left without
/// one, and listed in `skipped`.
CaptionRetrievalMetrics evaluate_retrieval_set(CLIPImpl& model, const Tokenizer& tokenizer, const RetrievalSet& set,
                                               const std::vector<int64_t>& ks, int64_t batch_size = 64, int workers = 0,
                                               std::vector<ItemError>* skipped = nullptr);

/// Image features of a labeled folder for a linear probe: [N, D] float32 on the CPU (L2-normalized with `normalize`,
/// as CLIP_benchmark's default), the labels [N] of the images read, and the unreadable ones.
struct LabeledFeatures {
  at::Tensor features, labels;
  std::vector<ItemError> skipped;
};
LabeledFeatures labeled_image_features(CLIPImpl& model, const ImageFolder& folder, bool normalize,
                                       int64_t batch_size = 64, int workers = 0);

}  // namespace clip
