#include "clip/zeroshot/classifier.h"

#include <ATen/ATen.h>
#include <torch/nn/module.h>

#include <nlohmann/json.hpp>

#include <cmath>
#include <cstdio>

#include "clip/embed.h"
#include "clip/io/safetensors.h"
#include "clip/util/error.h"
#include "clip/zeroshot/metrics.h"
#include "clip/text/prompts.h"
#include "util/json.h"

namespace clip {
namespace {

// A double written so that std::stod reads back the same value (std::to_string keeps 6 decimals).
std::string str_precise(double value) {
  char buffer[32];
  std::snprintf(buffer, sizeof buffer, "%.17g", value);
  return buffer;
}

}  // namespace

ZeroShotClassifier::ZeroShotClassifier(at::Tensor weights, std::vector<std::string> classes,
                                       std::vector<std::string> templates, double scale, std::optional<double> bias)
    : weights_(std::move(weights)),
      classes_(std::move(classes)),
      templates_(std::move(templates)),
      scale_(scale),
      bias_(bias) {
  TORCH_CHECK(weights_.dim() == 2 && weights_.size(0) == static_cast<int64_t>(classes_.size()),
              "classifier weights ", weights_.sizes(), " do not match ", classes_.size(), " classes");
}

std::vector<std::string> ZeroShotClassifier::prompts(const std::vector<std::string>& classes,
                                                     const std::vector<std::string>& templates) {
  if (classes.empty()) fail("zero-shot classifier: no class names");
  if (templates.empty()) fail("zero-shot classifier: no templates");
  std::vector<std::string> out;
  out.reserve(classes.size() * templates.size());
  for (const auto& name : classes) {
    for (const auto& templ : templates) out.push_back(fill_template(templ, name));
  }
  return out;
}

ZeroShotClassifier ZeroShotClassifier::from_prompt_embeddings(const at::Tensor& prompt_embeddings,
                                                              std::vector<std::string> classes,
                                                              std::vector<std::string> templates, double scale,
                                                              std::optional<double> bias) {
  const auto c = static_cast<int64_t>(classes.size()), t = static_cast<int64_t>(templates.size());
  TORCH_CHECK(prompt_embeddings.dim() == 2 && prompt_embeddings.size(0) == c * t, "prompt embeddings ",
              prompt_embeddings.sizes(), " do not match ", c, " classes x ", t, " templates");
  // [C * T, D] -> [C, T, D] -> mean over templates -> re-normalize.
  const at::Tensor per_class = prompt_embeddings.view({c, t, -1});
  return ZeroShotClassifier(l2_normalize(per_class.mean(1)), std::move(classes), std::move(templates), scale, bias);
}

std::pair<double, std::optional<double>> ZeroShotClassifier::scoring_of(const CLIPImpl& model, double softmax_scale) {
  if (!model.logit_bias.defined()) return {softmax_scale, std::nullopt};
  return {std::exp(model.logit_scale.item<double>()), model.logit_bias.item<double>()};
}

ZeroShotClassifier ZeroShotClassifier::build(CLIPImpl& model, const Tokenizer& tokenizer,
                                             const std::vector<std::string>& classes,
                                             const std::vector<std::string>& templates,
                                             const ZeroShotOptions& options) {
  const std::vector<std::string> all = prompts(classes, templates);
  EmbedOptions embed;
  embed.batch_size = options.batch_size();
  embed.source = "zero-shot prompts";
  const auto [scale, bias] = scoring_of(model, options.scale());
  return from_prompt_embeddings(embed_texts(model, tokenizer, all, embed).to(model.logit_scale.device()), classes,
                                templates, scale, bias);
}

at::Tensor ZeroShotClassifier::logits(const at::Tensor& image_features) const {
  TORCH_CHECK(image_features.dim() == 2 && image_features.size(1) == weights_.size(1), "image features ",
              image_features.sizes(), " do not match the classifier's dimension ", weights_.size(1));
  const at::Tensor x = l2_normalize(image_features.to(at::kFloat));
  const at::Tensor logits = scale_ * at::matmul(x, weights_.to(x.device()).t());
  return bias_ ? logits + *bias_ : logits;
}

Prediction ZeroShotClassifier::classify(const at::Tensor& image_features, int64_t k) const {
  Prediction p;
  const at::Tensor l = logits(image_features);
  p.probabilities = bias_ ? at::sigmoid(l) : at::softmax(l, -1);
  p.top_indices = ranked_topk(l, k).to(l.device());  // equal logits: the lower class first
  p.top_probabilities = p.probabilities.gather(1, p.top_indices);
  return p;
}

void ZeroShotClassifier::save(const std::string& path) const {
  const nlohmann::json classes(classes_), templates(templates_);
  write_safetensors(path, {{"weights", weights_.to(at::kCPU).contiguous()}},
                    {{"format", "pt"},
                     {"clip_zeroshot_classifier", "1"},
                     {"classes", dump_json(classes)},
                     {"templates", dump_json(templates)},
                     {"scale", str_precise(scale_)},
                     {"scores", bias_ ? "sigmoid" : "softmax"},
                     {"bias", bias_ ? str_precise(*bias_) : "none"}});
}

ZeroShotClassifier ZeroShotClassifier::load(const std::string& path) {
  Safetensors file = read_safetensors(path);
  auto weights = file.tensors.find("weights");
  if (weights == file.tensors.end() || !file.metadata.count("classes") || !file.metadata.count("templates")) {
    fail(path, ": not a saved zero-shot classifier (needs 'weights' and classes/templates metadata); write one "
               "with --save-classifier");
  }
  std::vector<std::string> classes, templates;
  double scale = 100.0;
  std::optional<double> bias;
  try {
    classes = parse_json(file.metadata.at("classes"), path + " (classes)").get<std::vector<std::string>>();
    templates = parse_json(file.metadata.at("templates"), path + " (templates)").get<std::vector<std::string>>();
    if (file.metadata.count("scale")) scale = std::stod(file.metadata.at("scale"));
    if (file.metadata.count("scores") && file.metadata.at("scores") == "sigmoid") bias = std::stod(file.metadata.at("bias"));
  } catch (const std::exception& e) {
    fail(path, ": malformed classifier metadata (", e.what(), ")");
  }
  if (weights->second.dim() != 2 || weights->second.size(0) != static_cast<int64_t>(classes.size())) {
    fail(path, ": weights ", shape_string(weights->second.sizes()), " do not match its ", classes.size(), " classes");
  }
  return ZeroShotClassifier(weights->second.to(at::kFloat), std::move(classes), std::move(templates), scale, bias);
}

}  // namespace clip
