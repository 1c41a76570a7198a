#include "clip/data/synthetic.h"

#include <ATen/ATen.h>

#include <algorithm>

#include "clip/util/error.h"

namespace clip {

at::Tensor synthetic_texts(const TextConfig& text, int64_t batch, at::Generator& gen) {
  const int64_t l = text.context_length, vocab = text.vocab_size;
  if (l < 3 || vocab < 4) fail("synthetic_texts: needs context_length >= 3 and vocab_size >= 4, got ", l, " and ", vocab);
  const bool clip_bpe_layout = text.pool == TextPool::argmax;
  const int64_t end = clip_bpe_layout ? vocab - 1 : text.eos_token_id;
  if (end < 0 || end >= vocab) fail("synthetic_texts: eos_token_id ", end, " is outside the vocabulary of ", vocab);
  const int64_t first_word = clip_bpe_layout ? 1 : 0;  // position 0 holds the start id in the CLIP BPE's layout
  at::Tensor words;
  if (clip_bpe_layout) {
    words = at::randint(1, vocab - 2, {batch, l}, gen, at::kLong);
  } else {
    words = at::randint(1, vocab - 1, {batch, l}, gen, at::kLong);  // then skip the end id
    words = words + (words >= end).to(at::kLong);
  }
  // n words at [first_word, first_word + n), the end id right after them, inside the context.
  const int64_t max_words = l - 1 - first_word;
  const at::Tensor counts = at::randint(1, max_words + 1, {batch, 1}, gen, at::kLong);  // 1 .. max_words
  const at::Tensor positions = at::arange(l, at::kLong).unsqueeze(0);
  const at::Tensor end_at = counts + first_word;
  at::Tensor ids = words.masked_fill(positions >= end_at, 0);
  ids.scatter_(1, end_at, end);
  if (clip_bpe_layout) ids.select(1, 0).fill_(vocab - 2);
  return ids;
}

at::Tensor synthetic_images(const ModelConfig& config, int64_t batch, at::Generator& gen) {
  const int64_t r = config.vision.image_size;
  return at::randn({batch, 3, r, r}, gen, at::kFloat);
}

}  // namespace clip
