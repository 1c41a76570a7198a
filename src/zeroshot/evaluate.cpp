#include "clip/zeroshot/evaluate.h"

#include "clip/zeroshot/metrics.h"

#include <ATen/ATen.h>
#include <c10/core/InferenceMode.h>
#include <torch/nn/module.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <fstream>
#include <iostream>
#include <map>

#include <nlohmann/json.hpp>

#include "clip/embed.h"
#include "clip/util/error.h"
#include "clip/util/log.h"
#include "clip/util/progress.h"
#include "util/atomic_file.h"
#include "util/clock.h"
#include "util/csv.h"
#include "util/json.h"

namespace clip {
namespace {

bool ends_with(const std::string& s, const std::string& suffix) {
  return s.size() >= suffix.size() && s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

// Per-image prediction rows, CSV or JSONL by the file's extension, written atomically at the end.
class PredictionWriter {
 public:
  PredictionWriter(const std::string& path, bool labeled, int64_t k) : path_(path), jsonl_(ends_with(path, ".jsonl")) {
    if (path.empty() || jsonl_) return;
    text_ = labeled ? "path,label" : "path";
    for (int64_t i = 1; i <= k; ++i) text_ += ",top" + std::to_string(i) + ",p" + std::to_string(i);
    text_ += "\n";
  }
  void row(const std::string& file, const std::string* label, const std::vector<std::pair<std::string, double>>& top) {
    if (path_.empty()) return;
    if (jsonl_) {
      nlohmann::json j = {{"path", file}};
      if (label) j["label"] = *label;
      j["topk"] = nlohmann::json::array();
      for (const auto& [name, p] : top) j["topk"].push_back({{"class", name}, {"p", p}});
      text_ += dump_json(j) + "\n";
      return;
    }
    text_ += csv_field(file);
    if (label) text_ += "," + csv_field(*label);
    char p[32];
    for (const auto& [name, prob] : top) {
      std::snprintf(p, sizeof p, "%.6f", prob);
      text_ += "," + csv_field(name) + "," + p;
    }
    text_ += "\n";
  }
  void commit() {
    if (path_.empty()) return;
    AtomicFile file(path_);
    file.write(text_.data(), text_.size());
    file.commit();
  }

 private:
  std::string path_;
  bool jsonl_;
  std::string text_;
};

void write_confusion(const std::string& path, const std::vector<std::string>& classes,
                     const std::vector<ConfusionCell>& cells) {
  std::string text = "true\\predicted";
  for (const auto& c : classes) text += "," + csv_field(c);
  text += "\n";
  auto cell = cells.begin();  // sorted by (truth, predicted)
  for (size_t i = 0; i < classes.size(); ++i) {
    std::vector<int64_t> row(classes.size(), 0);
    for (; cell != cells.end() && cell->truth == int64_t(i); ++cell) row[size_t(cell->predicted)] = cell->count;
    text += csv_field(classes[i]);
    for (const int64_t n : row) text += "," + std::to_string(n);
    text += "\n";
  }
  AtomicFile file(path);
  file.write(text.data(), text.size());
  file.commit();
}

}  // namespace

ZeroShotSummary classify_folder(CLIPImpl& model, const ZeroShotClassifier& classifier, const ImageFolder& folder,
                                const ZeroShotRunOptions& options) {
  const auto start = Clock::now();
  ZeroShotSummary s;
  s.labeled = !folder.labels.empty();
  s.k = std::min<int64_t>(options.topk, static_cast<int64_t>(classifier.classes().size()));
  const int64_t classes = static_cast<int64_t>(classifier.classes().size());
  if (s.labeled && static_cast<int64_t>(folder.classes.size()) != classes) {
    fail(folder.root, ": ", folder.classes.size(), " class folders but the classifier has ", classes, " classes");
  }

  EmbedOptions embed;
  embed.batch_size = options.batch_size;
  embed.workers = options.threads;
  ImageFeatureStream stream(model, folder.paths, embed);

  PredictionWriter writer(options.output, s.labeled, s.k);
  s.classes = classifier.classes();
  std::map<std::pair<int64_t, int64_t>, int64_t> confusion;  // (truth, predicted) -> images
  // Per class, the first examples_per_class right and wrong (by item: batches may come out of order).
  std::vector<std::vector<std::pair<int64_t, ZeroShotExample>>> right(size_t(s.labeled ? classes : 0)), wrong = right;
  auto keep = [&](std::vector<std::pair<int64_t, ZeroShotExample>>& kept, int64_t item, ZeroShotExample example) {
    kept.emplace_back(item, std::move(example));
    std::sort(kept.begin(), kept.end(), [](const auto& a, const auto& b) { return a.first < b.first; });
    if (int64_t(kept.size()) > options.examples_per_class) kept.pop_back();
  };
  std::vector<at::Tensor> ranks;  // per batch: [n, max(k, min(5, C))] ranked classes of the labeled images
  std::vector<int64_t> targets;
  const int64_t ranked = std::max<int64_t>(s.k, std::min<int64_t>(5, classes));
  double classify_seconds = 0;
  Progress progress("classify", stream.size(), "img");
  c10::InferenceMode inference;
  while (std::optional<ImageFeatureBatch> batch = stream.next()) {
    for (const ItemError& e : batch->errors) {
      if (options.strict) fail(e.message, " (--strict: stopping at the first unreadable file)");
      if (options.report_skipped) log_info("skipped ", e.message);
      s.errors.push_back(e);
    }
    s.skipped += static_cast<int64_t>(batch->errors.size());
    if (!batch->indices.empty()) {
      const auto model_start = Clock::now();
      const Prediction p = classifier.classify(batch->features, ranked);
      const at::Tensor top_i = p.top_indices.to(at::kCPU), top_p = p.top_probabilities.to(at::kCPU, at::kDouble);
      classify_seconds += seconds_since(model_start);
      const auto idx = top_i.accessor<int64_t, 2>();
      const auto prob = top_p.accessor<double, 2>();
      for (size_t row = 0; row < batch->indices.size(); ++row) {
        const int64_t item = batch->indices[row];
        std::vector<std::pair<std::string, double>> top;
        for (int64_t j = 0; j < s.k; ++j) top.emplace_back(classifier.classes()[size_t(idx[int64_t(row)][j])], prob[int64_t(row)][j]);
        const std::string* label = nullptr;
        if (s.labeled) {
          const int64_t truth = folder.labels[size_t(item)];
          label = &classifier.classes()[size_t(truth)];
          targets.push_back(truth);
          ++confusion[{truth, idx[int64_t(row)][0]}];
          auto& kept = (idx[int64_t(row)][0] == truth ? right : wrong)[size_t(truth)];
          // Built only when it is among the first so far (in folder order, all but the first few are not).
          if (int64_t(kept.size()) < options.examples_per_class || (!kept.empty() && item < kept.back().first)) {
            ZeroShotExample example{folder.paths[size_t(item)], truth, {}, {}};
            for (int64_t j = 0; j < s.k; ++j) {
              example.top.push_back(idx[int64_t(row)][j]);
              example.probabilities.push_back(prob[int64_t(row)][j]);
            }
            keep(kept, item, std::move(example));
          }
        }
        writer.row(folder.paths[size_t(item)], label, top);
      }
      if (s.labeled) ranks.push_back(top_i);
      s.images += static_cast<int64_t>(batch->indices.size());
    }
    if (options.progress) progress.advance(static_cast<int64_t>(batch->indices.size() + batch->errors.size()));
  }
  if (options.progress) progress.finish();
  s.wait_seconds = stream.wait_seconds();
  s.model_seconds = stream.model_seconds() + classify_seconds;
  s.cpu = stream.cpu_split();
  if (s.images == 0) fail(folder.root, ": none of its ", stream.size(), " images could be read");
  if (s.labeled) {
    const at::Tensor ranked_classes = at::cat(ranks), truth = at::tensor(targets, at::kLong);
    s.metrics = classification_metrics_from_ranks(ranked_classes, truth, classes);
    s.top1 = s.metrics.acc1;
    s.topk = ranked_classes.narrow(1, 0, s.k).eq(truth.unsqueeze(1)).any(1).to(at::kDouble).mean().item<double>();
    s.mean_per_class = s.metrics.mean_per_class_recall;
    for (const auto& [cell, n] : confusion) s.confusion.push_back({cell.first, cell.second, n});
    if (!options.confusion.empty()) write_confusion(options.confusion, s.classes, s.confusion);
    for (size_t c = 0; c < right.size(); ++c) {
      for (auto* kept : {&right[c], &wrong[c]}) {
        for (auto& [item, example] : *kept) s.examples.push_back(std::move(example));
      }
    }
  }
  writer.commit();
  s.seconds = seconds_since(start);
  return s;
}

}  // namespace clip
