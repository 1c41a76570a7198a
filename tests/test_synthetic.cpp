// Synthetic inputs (clip/data/synthetic.h) must be framed as the model's tokenizer frames text, so that the text
// tower pools at the end token: the largest id for the CLIP BPE's layout, eos_token_id for other vocabularies
// (the synthetic training data once wrote vocab_size - 1 as the end token for every model, which a
// SentencePiece model never pools at).
#include <gtest/gtest.h>

#include <ATen/ATen.h>
#include <ATen/CPUGeneratorImpl.h>

#include "clip/data/synthetic.h"
#include "clip/model/config.h"

namespace {

// Checks every row: [start,] words, the end id once, zeros after it. Returns the end positions.
std::vector<int64_t> check_rows(const at::Tensor& ids, const clip::TextConfig& text, int64_t end_id, bool start) {
  EXPECT_EQ(ids.sizes(), (std::vector<int64_t>{ids.size(0), text.context_length}));
  EXPECT_EQ(ids.scalar_type(), at::kLong);
  std::vector<int64_t> ends;
  auto a = ids.accessor<int64_t, 2>();
  for (int64_t i = 0; i < ids.size(0); ++i) {
    int64_t end = -1;
    for (int64_t j = 0; j < text.context_length; ++j) {
      const int64_t v = a[i][j];
      if (end >= 0) {
        EXPECT_EQ(v, 0) << "row " << i << " position " << j << " after the end token";
      } else if (v == end_id) {
        end = j;
      } else if (start && j == 0) {
        EXPECT_EQ(v, text.vocab_size - 2) << "row " << i << ": the start token";
      } else {
        EXPECT_GE(v, 1) << "row " << i << " position " << j;
        EXPECT_LT(v, text.vocab_size) << "row " << i << " position " << j;
        if (start) {
          EXPECT_LT(v, text.vocab_size - 2) << "row " << i << ": a word that is the start token";
        }
      }
    }
    EXPECT_GE(end, start ? 2 : 1) << "row " << i << ": the end token, after at least one word";
    ends.push_back(end);
  }
  return ends;
}

TEST(Synthetic, ClipBpeLayoutPoolsAtTheLargestId) {
  clip::TextConfig text;  // the CLIP BPE: 49408 ids, pooled at argmax
  at::Generator gen = at::detail::createCPUGenerator(7);
  const at::Tensor ids = clip::synthetic_texts(text, 64, gen);
  const std::vector<int64_t> ends = check_rows(ids, text, text.vocab_size - 1, /*start=*/true);
  const at::Tensor argmax = ids.argmax(-1);
  for (size_t i = 0; i < ends.size(); ++i) EXPECT_EQ(argmax[int64_t(i)].item<int64_t>(), ends[i]);
}

TEST(Synthetic, OtherVocabulariesEndWithTheirEosToken) {
  clip::TextConfig text;  // a SentencePiece-like vocabulary: 1000 ids, eos 1, pooled at the first eos
  text.vocab_size = 1000;
  text.context_length = 16;
  text.pool = clip::TextPool::first_eos;
  text.eos_token_id = 1;
  at::Generator gen = at::detail::createCPUGenerator(8);
  const at::Tensor ids = clip::synthetic_texts(text, 256, gen);
  check_rows(ids, text, /*end_id=*/1, /*start=*/false);
  // Every row has exactly one eos; word ids cover the rest of the vocabulary, the largest included.
  EXPECT_TRUE(ids.eq(1).sum(-1).eq(1).all().item<bool>());
  EXPECT_TRUE(ids.eq(text.vocab_size - 1).any().item<bool>());
}

TEST(Synthetic, ImagesHaveTheTowersSize) {
  clip::ModelConfig config;
  config.vision.image_size = 64;
  at::Generator gen = at::detail::createCPUGenerator(9);
  EXPECT_EQ(clip::synthetic_images(config, 3, gen).sizes(), (std::vector<int64_t>{3, 3, 64, 64}));
}

TEST(Synthetic, BadConfigsFailClearly) {
  clip::TextConfig text;
  text.pool = clip::TextPool::first_eos;
  text.eos_token_id = text.vocab_size;  // outside the vocabulary
  at::Generator gen = at::detail::createCPUGenerator(1);
  EXPECT_THROW(clip::synthetic_texts(text, 2, gen), std::exception);
}

}  // namespace
