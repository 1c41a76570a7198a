#pragma once
/// Zero-shot classification: class names x prompt templates -> a linear classifier over image embeddings.
///
///   auto tokenizer = clip::load_tokenizer(model->config().text);
///   auto classifier = clip::ZeroShotClassifier::build(*model, *tokenizer, classes, templates);
///   clip::Prediction p = classifier.classify(model->encode_image(images), /*k=*/5);
///
/// Each class's weight is the mean of its L2-normalized prompt embeddings, re-normalized (the reference's
/// prompt ensembling); logits = scale * normalize(image) W^T with scale 100, the reference's zero-shot protocol.
#include <ATen/core/Tensor.h>
#include <torch/arg.h>

#include <string>
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
  at::Tensor probabilities;  ///< [N, C] softmax of the logits
  at::Tensor top_indices;    ///< [N, k] int64, most probable first
  at::Tensor top_probabilities;  ///< [N, k]
};

/// A [C, D] matrix of normalized class embeddings with its class names and templates.
class ZeroShotClassifier {
 public:
  ZeroShotClassifier(at::Tensor weights, std::vector<std::string> classes, std::vector<std::string> templates,
                     double scale = 100.0);

  /// Embeds every class x template prompt (in batches, on the model's device, no grad) and ensembles them.
  /// Throws clip::Error naming a prompt that does not fit the context length.
  static ZeroShotClassifier build(CLIPImpl& model, const Tokenizer& tokenizer, const std::vector<std::string>& classes,
                                  const std::vector<std::string>& templates, const ZeroShotOptions& options = {});

  /// The ensembling alone, for prompts embedded elsewhere (e.g. through a clip::DynamicBatcher):
  /// `prompt_embeddings` [C * T, D] holds the L2-normalized embeddings of every class x template prompt, class-major
  /// (class 0's T templates first), as build() embeds them.
  static ZeroShotClassifier from_prompt_embeddings(const at::Tensor& prompt_embeddings, std::vector<std::string> classes,
                                                   std::vector<std::string> templates, double scale = 100.0);
  /// The prompts build() embeds, class-major: fill_template(templates[t], classes[c]) at c * T + t.
  static std::vector<std::string> prompts(const std::vector<std::string>& classes,
                                          const std::vector<std::string>& templates);
  /// Reads what save() wrote; errors name the file.
  static ZeroShotClassifier load(const std::string& path);
  /// Writes the weights as safetensors with the classes, templates and scale in the metadata.
  void save(const std::string& path) const;

  /// scale * normalize(image_features) W^T: [N, C] (computed on the features' device, returned in fp32).
  at::Tensor logits(const at::Tensor& image_features) const;
  /// Softmax probabilities and the top k classes (k is capped at the class count).
  Prediction classify(const at::Tensor& image_features, int64_t k = 5) const;

  const at::Tensor& weights() const { return weights_; }
  const std::vector<std::string>& classes() const { return classes_; }
  const std::vector<std::string>& templates() const { return templates_; }
  double scale() const { return scale_; }

 private:
  at::Tensor weights_;  // [C, D] fp32
  std::vector<std::string> classes_;
  std::vector<std::string> templates_;
  double scale_;
};

}  // namespace clip
