#include "clip/train/evaluation.h"

#include <ATen/ATen.h>
#include <c10/core/InferenceMode.h>

#include "clip/image/loader.h"
#include "clip/image/transform.h"
#include "clip/util/error.h"

namespace clip {
namespace {

// For each row, the rank of its own column among all columns (0 = best), ties counted pessimistically.
at::Tensor rank_of_match(const at::Tensor& scores) {
  const at::Tensor own = scores.diagonal().unsqueeze(1);
  return (scores > own).sum(1);
}

std::array<double, 3> recall(const at::Tensor& ranks) {
  std::array<double, 3> out{};
  const int64_t ks[3] = {1, 5, 10};
  for (int i = 0; i < 3; ++i) out[size_t(i)] = (ranks < ks[i]).to(at::kDouble).mean().item<double>();
  return out;
}

}  // namespace

RetrievalMetrics retrieval_metrics(const at::Tensor& image_features, const at::Tensor& text_features) {
  TORCH_CHECK(image_features.sizes() == text_features.sizes() && image_features.dim() == 2,
              "retrieval needs matching [N, D] features, got ", image_features.sizes(), " and ", text_features.sizes());
  const at::Tensor img = l2_normalize(image_features.to(at::kFloat));
  const at::Tensor txt = l2_normalize(text_features.to(at::kFloat));
  const at::Tensor scores = at::matmul(img, txt.t());
  RetrievalMetrics m;
  m.pairs = image_features.size(0);
  m.image_to_text = recall(rank_of_match(scores));
  m.text_to_image = recall(rank_of_match(scores.t()));
  return m;
}

RetrievalMetrics evaluate_retrieval(CLIPImpl& model, const CaptionDataset& data, const Tokenizer& tokenizer,
                                    int64_t batch_size, int workers) {
  ImageLoaderOptions o;
  o.batch_size = batch_size;
  o.threads = workers;
  o.preprocess = model.config().preprocess;
  ImageLoader loader(data.paths, o);
  const bool was_training = model.is_training();
  model.eval();
  c10::InferenceMode inference;
  const at::Device device = model.logit_scale.device();
  std::vector<at::Tensor> images, texts;
  while (auto batch = loader.next()) {
    if (batch->indices.empty()) continue;
    std::vector<std::string> captions;
    for (int64_t i : batch->indices) captions.push_back(data.caption(size_t(i), 0));
    const at::Tensor ids = tokenizer.tokenize(captions, model.config().text.context_length, /*truncate=*/true);
    images.push_back(model.encode_image(batch->images.to(device)).to(at::kCPU, at::kFloat));
    texts.push_back(model.encode_text(ids.to(device)).to(at::kCPU, at::kFloat));
  }
  model.train(was_training);
  if (images.empty()) fail(data.source, ": no validation image could be read");
  return retrieval_metrics(at::cat(images), at::cat(texts));
}

}  // namespace clip
