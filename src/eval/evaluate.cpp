#include "clip/eval/evaluate.h"

#include <ATen/ATen.h>

#include <cmath>
#include <filesystem>
#include <map>
#include <set>

#include "clip/data/caption_dataset.h"
#include "clip/embed.h"
#include "clip/util/error.h"
#include "util/atomic_file.h"
#include "util/json.h"

namespace clip {

std::string to_json(const BenchmarkResult& result) {
  nlohmann::ordered_json metrics = nlohmann::ordered_json::object();
  for (const auto& [name, value] : result.metrics) {
    metrics[name] = std::isfinite(value) ? nlohmann::ordered_json(value) : nlohmann::ordered_json(nullptr);
  }
  nlohmann::ordered_json j{{"dataset", result.dataset}, {"model", result.model}, {"pretrained", result.pretrained},
                           {"task", result.task},       {"metrics", metrics},    {"language", result.language}};
  return j.dump();
}

void write_benchmark_result(const std::string& path, const BenchmarkResult& result) {
  write_file_atomically(path, to_json(result) + "\n");
}

std::vector<std::pair<std::string, double>> classification_result_metrics(const ClassificationMetrics& m,
                                                                          const std::string& prefix) {
  return {{prefix + "acc1", m.acc1}, {prefix + "acc5", m.acc5}, {prefix + "mean_per_class_recall", m.mean_per_class_recall}};
}

std::vector<std::pair<std::string, double>> retrieval_result_metrics(const CaptionRetrievalMetrics& m) {
  std::vector<std::pair<std::string, double>> out;
  for (size_t i = 0; i < m.ks.size(); ++i) {
    out.emplace_back("image_retrieval_recall@" + std::to_string(m.ks[i]), m.image_retrieval_recall[i]);
    out.emplace_back("text_retrieval_recall@" + std::to_string(m.ks[i]), m.text_retrieval_recall[i]);
  }
  return out;
}

ImageFolder read_labeled_csv(const std::string& path, const std::string& image_key, const std::string& label_key,
                             const std::string& separator) {
  const CaptionDataset rows = read_caption_csv(path, image_key, label_key, separator, "--csv-label-key");
  if (rows.paths.empty()) fail(path, ": no rows");
  ImageFolder out;
  out.root = path;  // names the list in errors (its paths are resolved already)
  const std::set<std::string> names(rows.captions.begin(), rows.captions.end());
  out.classes.assign(names.begin(), names.end());
  std::map<std::string, int64_t> index;
  for (size_t i = 0; i < out.classes.size(); ++i) index[out.classes[i]] = static_cast<int64_t>(i);
  out.paths = rows.paths;
  for (const auto& label : rows.captions) out.labels.push_back(index.at(label));
  return out;
}

RetrievalSet read_retrieval_csv(const std::string& path, const std::string& image_key, const std::string& caption_key,
                                const std::string& separator) {
  const CaptionDataset rows = read_caption_csv(path, image_key, caption_key, separator);
  if (rows.paths.empty()) fail(path, ": no rows");
  RetrievalSet set;
  set.source = path;
  std::map<std::string, int64_t> image_index, text_index;
  std::set<std::pair<int64_t, int64_t>> seen;
  for (size_t r = 0; r < rows.paths.size(); ++r) {
    const auto [i, new_image] = image_index.try_emplace(rows.paths[r], static_cast<int64_t>(set.images.size()));
    if (new_image) set.images.push_back(rows.paths[r]);
    const auto [t, new_text] = text_index.try_emplace(rows.captions[r], static_cast<int64_t>(set.texts.size()));
    if (new_text) set.texts.push_back(rows.captions[r]);
    if (seen.emplace(t->second, i->second).second) set.matches.emplace_back(t->second, i->second);
  }
  return set;
}

CaptionRetrievalMetrics evaluate_retrieval_set(CLIPImpl& model, const Tokenizer& tokenizer, const RetrievalSet& set,
                                               const std::vector<int64_t>& ks, int64_t batch_size, int workers,
                                               std::vector<ItemError>* skipped) {
  EmbedOptions options;
  options.batch_size = batch_size;
  options.workers = workers;
  options.truncate = true;
  options.source = set.source;
  // Images: the readable ones, renumbered.
  std::vector<int64_t> row_of(set.images.size(), -1);
  std::vector<at::Tensor> parts;
  int64_t rows = 0;
  {
    ImageFeatureStream stream(model, set.images, options);
    while (auto batch = stream.next()) {
      if (skipped) skipped->insert(skipped->end(), batch->errors.begin(), batch->errors.end());
      if (batch->indices.empty()) continue;
      parts.push_back(batch->features.to(at::kCPU, at::kFloat));
      for (const int64_t i : batch->indices) row_of[size_t(i)] = rows++;
    }
  }
  if (parts.empty()) fail(set.source, ": none of its ", set.images.size(), " images could be read");
  // Captions whose images were all unreadable leave with them (as queries they could never be found).
  std::vector<int64_t> text_row(set.texts.size(), -1);
  std::vector<std::string> texts;
  std::vector<std::pair<int64_t, int64_t>> matches;
  for (const auto& [t, i] : set.matches) {
    if (row_of[size_t(i)] < 0) continue;
    if (text_row[size_t(t)] < 0) {
      text_row[size_t(t)] = static_cast<int64_t>(texts.size());
      texts.push_back(set.texts[size_t(t)]);
    }
    matches.emplace_back(text_row[size_t(t)], row_of[size_t(i)]);
  }
  return caption_retrieval_metrics(at::cat(parts), embed_texts(model, tokenizer, texts, options), matches, ks);
}

LabeledFeatures labeled_image_features(CLIPImpl& model, const ImageFolder& folder, bool normalize, int64_t batch_size,
                                       int workers) {
  if (folder.labels.size() != folder.paths.size()) fail(folder.root, ": not a labeled image list");
  EmbedOptions options;
  options.batch_size = batch_size;
  options.workers = workers;
  options.source = folder.root;
  LabeledFeatures out;
  std::vector<at::Tensor> parts;
  std::vector<int64_t> labels;
  ImageFeatureStream stream(model, folder.paths, options);
  while (auto batch = stream.next()) {
    out.skipped.insert(out.skipped.end(), batch->errors.begin(), batch->errors.end());
    if (batch->indices.empty()) continue;
    at::Tensor f = batch->features.to(at::kCPU, at::kFloat);
    parts.push_back(normalize ? l2_normalize(f) : f);
    for (const int64_t i : batch->indices) labels.push_back(folder.labels[size_t(i)]);
  }
  if (parts.empty()) fail(folder.root, ": none of its ", folder.paths.size(), " images could be read");
  out.features = at::cat(parts);
  out.labels = at::tensor(labels, at::kLong);
  return out;
}

}  // namespace clip
