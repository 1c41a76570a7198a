#include "clip/train/evaluation.h"

#include <ATen/ATen.h>
#include <c10/core/InferenceMode.h>

#include <algorithm>
#include <limits>

#include "clip/embed.h"
#include "clip/util/error.h"

namespace clip {
namespace {

// For each (row, positive column) pair: the rank of the positive among the row's columns (0 = best), equal scores
// ranking the lower column first. `scores` [R, N]; rows and columns int64 [P].
at::Tensor ranks_of(const at::Tensor& scores, const at::Tensor& rows, const at::Tensor& columns) {
  constexpr int64_t kChunk = 512;  // pairs per pass: [kChunk, N] comparisons at a time
  std::vector<at::Tensor> out;
  const at::Tensor positions = at::arange(scores.size(1), at::kLong).unsqueeze(0);  // [1, N]
  for (int64_t start = 0; start < rows.size(0); start += kChunk) {
    const int64_t n = std::min(kChunk, rows.size(0) - start);
    const at::Tensor r = rows.narrow(0, start, n), c = columns.narrow(0, start, n);
    const at::Tensor row_scores = scores.index_select(0, r);                // [n, N]
    const at::Tensor own = row_scores.gather(1, c.unsqueeze(1));            // [n, 1]
    const at::Tensor ahead = (row_scores > own) | ((row_scores == own) & (positions < c.unsqueeze(1)));
    out.push_back(ahead.sum(1));
  }
  return at::cat(out);
}

}  // namespace

CaptionRetrievalMetrics caption_retrieval_metrics(const at::Tensor& image_features, const at::Tensor& text_features,
                                                  const std::vector<std::pair<int64_t, int64_t>>& matches,
                                                  const std::vector<int64_t>& ks) {
  TORCH_CHECK(image_features.dim() == 2 && text_features.dim() == 2 &&
                  image_features.size(1) == text_features.size(1),
              "retrieval needs [I, D] image and [T, D] text features, got ", image_features.sizes(), " and ",
              text_features.sizes());
  CaptionRetrievalMetrics m;
  m.ks = ks;
  m.images = image_features.size(0);
  m.texts = text_features.size(0);
  if (m.images == 0 || m.texts == 0) fail("retrieval: no images or no texts to evaluate");
  std::vector<int64_t> text_of, image_of;
  for (const auto& [t, i] : matches) {
    if (t < 0 || t >= m.texts || i < 0 || i >= m.images) {
      fail("retrieval: the match (text ", t, ", image ", i, ") is outside ", m.texts, " texts and ", m.images, " images");
    }
    text_of.push_back(t);
    image_of.push_back(i);
  }
  if (matches.empty()) fail("retrieval: no text is matched with an image");
  const at::Tensor texts = at::tensor(text_of, at::kLong), images = at::tensor(image_of, at::kLong);
  const at::Tensor img = l2_normalize(image_features.to(at::kCPU, at::kFloat));
  const at::Tensor txt = l2_normalize(text_features.to(at::kCPU, at::kFloat));
  const at::Tensor text_scores = at::matmul(txt, img.t());  // [T, I]
  // A NaN score would rank first (no comparison with it holds): refuse instead of inflating recall.
  if (!at::isfinite(text_scores).all().item<bool>()) fail("retrieval: an embedding holds NaN or infinity");
  // Per query, the best rank of its matches (a query without one: never found).
  const auto best_rank = [](const at::Tensor& scores, const at::Tensor& queries, const at::Tensor& targets,
                            int64_t count) {
    at::Tensor best = at::full({count}, std::numeric_limits<int64_t>::max(), at::kLong);
    const at::Tensor ranks = ranks_of(scores, queries, targets);
    auto b = best.accessor<int64_t, 1>();
    const auto q = queries.accessor<int64_t, 1>();
    const auto r = ranks.accessor<int64_t, 1>();
    for (int64_t i = 0; i < queries.size(0); ++i) b[q[i]] = std::min(b[q[i]], r[i]);
    return best;
  };
  const at::Tensor text_best = best_rank(text_scores, texts, images, m.texts);
  const at::Tensor image_best = best_rank(text_scores.t().contiguous(), images, texts, m.images);
  for (const int64_t k : ks) {
    TORCH_CHECK(k >= 1, "retrieval: recall@k needs k >= 1, got ", k);
    m.image_retrieval_recall.push_back((text_best < k).to(at::kDouble).mean().item<double>());
    m.text_retrieval_recall.push_back((image_best < k).to(at::kDouble).mean().item<double>());
  }
  return m;
}

RetrievalMetrics retrieval_metrics(const at::Tensor& image_features, const at::Tensor& text_features) {
  TORCH_CHECK(image_features.sizes() == text_features.sizes() && image_features.dim() == 2,
              "retrieval needs matching [N, D] features, got ", image_features.sizes(), " and ", text_features.sizes());
  std::vector<std::pair<int64_t, int64_t>> pairs;
  for (int64_t i = 0; i < image_features.size(0); ++i) pairs.emplace_back(i, i);
  const CaptionRetrievalMetrics c = caption_retrieval_metrics(image_features, text_features, pairs, {1, 5, 10});
  RetrievalMetrics m;
  m.pairs = image_features.size(0);
  for (size_t i = 0; i < 3; ++i) {
    m.image_to_text[i] = c.text_retrieval_recall[i];
    m.text_to_image[i] = c.image_retrieval_recall[i];
  }
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
