#pragma once
/// Zero-shot classification: class names x prompt templates -> a linear classifier over image embeddings.
///
///   auto tokenizer = clip::load_tokenizer(model->config().text);
///   auto classifier = clip::ZeroShotClassifier::build(*model, *tokenizer, classes, templates);
///   clip::Prediction p = classifier.classify(model->encode_image(images), /*k=*/5);
///
/// Each class's weight is the mean of its L2-normalized prompt embeddings, re-normalized (the reference's
/// prompt ensembling); logits = scale * normalize(image) W^T with scale 100, the reference's zero-shot protocol, and
/// probabilities a softmax over the classes. A model trained with the sigmoid loss (SigLIP: it has a `logit_bias`)
/// scores each class on its own: logits = exp(logit_scale) * cosine + logit_bias, its learned values, and
/// probabilities sigmoid(logits), independent per class (they need not sum to 1: multi-label by nature). The
/// ranking, and so every accuracy, is the same either way.
#include <ATen/core/Tensor.h>
#include <torch/arg.h>

#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "clip/model/clip_model.h"
#include "clip/text/tokenizer.h"

namespace clip {

/// Options of ZeroShotClassifier::build.
struct ZeroShotOptions {
  TORCH_ARG(double, scale) = 100.0;     ///< logit scale of classification
  TORCH_ARG(int64_t, batch_size) = 256;  ///< prompts per text-encoder pass
};

/// Top-k predictions of a batch of images.
struct Prediction {
  at::Tensor probabilities;  ///< [N, C] softmax of the logits, or their sigmoid (sigmoid())
  at::Tensor top_indices;    ///< [N, k] int64, most probable first
  at::Tensor top_probabilities;  ///< [N, k]
};

/// A [C, D] matrix of normalized class embeddings with its class names and templates.
class ZeroShotClassifier {
 public:
  /// `bias`: sigmoid scores with this logit bias (SigLIP); none: softmax.
  ZeroShotClassifier(at::Tensor weights, std::vector<std::string> classes, std::vector<std::string> templates,
                     double scale = 100.0, std::optional<double> bias = std::nullopt);

  /// Embeds every class x template prompt (in batches, on the model's device, no grad) and ensembles them. For a
  /// model with a logit bias, the classifier scores by sigmoid with the model's own scale and bias
  /// (options.scale is then unused). Throws clip::Error naming a prompt that does not fit the context length.
  static ZeroShotClassifier build(CLIPImpl& model, const Tokenizer& tokenizer, const std::vector<std::string>& classes,
                                  const std::vector<std::string>& templates, const ZeroShotOptions& options = {});

  /// The ensembling alone, for prompts embedded elsewhere (e.g. through a clip::DynamicBatcher):
  /// `prompt_embeddings` [C * T, D] holds the L2-normalized embeddings of every class x template prompt, class-major
  /// (class 0's T templates first), as build() embeds them.
  static ZeroShotClassifier from_prompt_embeddings(const at::Tensor& prompt_embeddings, std::vector<std::string> classes,
                                                   std::vector<std::string> templates, double scale = 100.0,
                                                   std::optional<double> bias = std::nullopt);
  /// The scale and bias build() uses for `model`: 100 and none (softmax), or a sigmoid model's exp(logit_scale) and
  /// logit_bias.
  static std::pair<double, std::optional<double>> scoring_of(const CLIPImpl& model, double softmax_scale = 100.0);
  /// The prompts build() embeds, class-major: fill_template(templates[t], classes[c]) at c * T + t.
  static std::vector<std::string> prompts(const std::vector<std::string>& classes,
                                          const std::vector<std::string>& templates);
  /// Reads what save() wrote; errors name the file.
  static ZeroShotClassifier load(const std::string& path);
  /// Writes the weights as safetensors with the classes, templates and scale in the metadata.
  void save(const std::string& path) const;

  /// scale * normalize(image_features) W^T (+ bias): [N, C] (computed on the features' device, returned in fp32).
  at::Tensor logits(const at::Tensor& image_features) const;
  /// Probabilities (softmax, or sigmoid per class) and the top k classes (k is capped at the class count).
  Prediction classify(const at::Tensor& image_features, int64_t k = 5) const;

  const at::Tensor& weights() const { return weights_; }
  const std::vector<std::string>& classes() const { return classes_; }
  const std::vector<std::string>& templates() const { return templates_; }
  double scale() const { return scale_; }
  /// The logit bias of sigmoid scoring; none for softmax.
  const std::optional<double>& bias() const { return bias_; }
  bool sigmoid() const { return bias_.has_value(); }

 private:
  at::Tensor weights_;  // [C, D] fp32
  std::vector<std::string> classes_;
  std::vector<std::string> templates_;
  double scale_;
  std::optional<double> bias_;
};

}  // namespace clip
