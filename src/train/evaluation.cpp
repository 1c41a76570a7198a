#include "clip/train/evaluation.h"

#include <ATen/ATen.h>
#include <c10/core/InferenceMode.h>

#include "clip/embed.h"
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
  EmbedOptions options;
  options.batch_size = batch_size;
  options.workers = workers;
  options.truncate = true;  // captions longer than the context are cut, as in training
  options.source = data.source;
  std::vector<at::Tensor> images;
  std::vector<std::string> captions;  // of the images that were read
  {
    ImageFeatureStream stream(model, data.paths, options);
    while (auto batch = stream.next()) {
      if (batch->indices.empty()) continue;
      images.push_back(batch->features.to(at::kCPU, at::kFloat));
      for (int64_t i : batch->indices) captions.push_back(data.caption(size_t(i), 0));
    }
  }
  if (images.empty()) fail(data.source, ": no validation image could be read");
  return retrieval_metrics(at::cat(images), embed_texts(model, tokenizer, captions, options));
}

}  // namespace clip
