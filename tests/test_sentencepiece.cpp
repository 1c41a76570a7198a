// SentencePiece: a small model trained on generated captions, round trips, ids in range, pooling at the first
// end token; `text_cfg.tokenizer` in model configs; every error message.
#include <gtest/gtest.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <random>

#include "clip/model/model_tokenizer.h"
#include "clip/model/text_transformer.h"
#include "clip/text/clip_bpe.h"
#include "clip/text/sentencepiece.h"
#include "test_util.h"

namespace fs = std::filesystem;
using Ids = std::vector<int64_t>;

namespace {

using clip::test::error_of;

std::string temp_dir() {
  static const std::string dir = [] {
    const fs::path d = fs::temp_directory_path() / ("clip_spm_test_" + std::to_string(::getpid()));
    fs::create_directories(d);
    return d.string();
  }();
  return dir;
}

std::vector<std::string> generated_captions(size_t n, unsigned seed) {
  const char* adjectives[] = {"red",   "small",  "big",   "blue", "furry",   "old",
                              "shiny", "wooden", "happy", "tiny", "striped", "sleepy"};
  const char* nouns[] = {"cat",   "dog",  "car",   "house",  "tree",    "bird",
                         "chair", "boat", "horse", "flower", "bicycle", "teapot"};
  const char* places[] = {"on a table",  "in a park",   "near the sea",   "at night",
                          "in the snow", "on a street", "under a bridge", "next to a window"};
  std::mt19937 rng(seed);
  std::vector<std::string> out;
  for (size_t i = 0; i < n; ++i) {
    out.push_back(std::string("a photo of a ") + adjectives[rng() % 12] + " " + nouns[rng() % 12] + " " +
                  places[rng() % 8]);
  }
  return out;
}

std::string write_captions(const std::string& name, const std::vector<std::string>& captions) {
  const std::string path = temp_dir() + "/" + name;
  std::ofstream out(path);
  for (const auto& c : captions) out << c << "\n";
  return path;
}

// One trained model for the suite (training takes well under a second).
const std::string& model_path() {
  static const std::string path = [] {
    const std::string model = temp_dir() + "/captions.model";
    const clip::SentencePieceTrainResult r = clip::train_sentencepiece(
        clip::SentencePieceTrainOptions(write_captions("captions.txt", generated_captions(2000, 1)), model)
            .vocab_size(64));
    std::printf("[ measured ] trained %lld pieces on %lld captions\n", static_cast<long long>(r.vocab_size),
                static_cast<long long>(r.sentences));
    return model;
  }();
  return path;
}

}  // namespace

TEST(SentencePiece, TrainedModelRoundTripsAndStaysInRange) {
  const clip::SentencePieceTokenizer spm{clip::SentencePieceOptions(model_path())};
  EXPECT_EQ(spm.vocab_size(), 64);
  EXPECT_EQ(spm.pad_id(), 0);
  EXPECT_EQ(spm.start_id(), 2);
  EXPECT_EQ(spm.end_id(), 3);
  EXPECT_EQ(spm.pool(), clip::TextPool::first_eos);
  EXPECT_EQ(spm.piece(3), "</s>");
  size_t round_trips = 0;
  const std::vector<std::string> held_out = generated_captions(200, 99);
  for (const std::string& caption : held_out) {
    const Ids ids = spm.encode(caption);
    ASSERT_FALSE(ids.empty());
    for (int64_t id : ids) {
      ASSERT_GE(id, 4) << caption;  // no pad, unk, start or end inside a caption made of known words
      ASSERT_LT(id, spm.vocab_size());
    }
    round_trips += spm.decode(ids) == caption;
  }
  std::printf("[ measured ] held-out captions that round-trip: %zu/%zu\n", round_trips, held_out.size());
  EXPECT_EQ(round_trips, held_out.size());
  // Unknown characters map to unk (1), and decode drops start, end and pad.
  const Ids unknown = spm.encode("\xE6\x9D\xB1");
  EXPECT_NE(std::find(unknown.begin(), unknown.end(), 1), unknown.end());
  Ids framed = spm.encode("a red cat");
  framed.insert(framed.begin(), 2);
  framed.push_back(3);
  framed.push_back(0);
  EXPECT_EQ(spm.decode(framed), "a red cat");
}

TEST(SentencePiece, TokenizeFramesAndPoolingFollowsTheEndToken) {
  const clip::SentencePieceTokenizer spm{clip::SentencePieceOptions(model_path())};
  const std::vector<std::string> texts = {"a photo of a red cat", "a dog", ""};
  const at::Tensor ids = spm.tokenize(texts, 16);
  ASSERT_EQ(ids.sizes(), (std::vector<int64_t>{3, 16}));
  std::vector<int64_t> expected_end;
  for (int64_t i = 0; i < 3; ++i) {
    const Ids text = spm.encode(texts[i]);
    EXPECT_EQ(ids[i][0].item<int64_t>(), 2);
    const auto end = static_cast<int64_t>(text.size()) + 1;
    EXPECT_EQ(ids[i][end].item<int64_t>(), 3);
    if (end + 1 < 16) {
      EXPECT_EQ(ids[i][end + 1].item<int64_t>(), 0);  // zero padding is the pad piece
    }
    expected_end.push_back(end);
  }
  // The text tower of a model using this vocabulary pools at the first end token.
  clip::TextConfig cfg;
  cfg.context_length = 16;
  cfg.vocab_size = spm.vocab_size();
  cfg.width = 32;
  cfg.heads = 2;
  cfg.layers = 1;
  cfg.pool = spm.pool();
  cfg.eos_token_id = spm.end_id();
  cfg.tokenizer = model_path();
  clip::TextTransformer tower(clip::TextTransformerOptions(cfg, 8));
  tower->initialize_parameters();
  const at::Tensor positions = tower->pool_positions(ids);
  for (int64_t i = 0; i < 3; ++i) EXPECT_EQ(positions[i].item<int64_t>(), expected_end[i]) << i;
  EXPECT_EQ(tower->forward(ids).sizes(), (std::vector<int64_t>{3, 8}));
  // Truncation keeps the end token last, as with the CLIP BPE.
  const at::Tensor cut = spm.tokenize({"a photo of a big blue bicycle under a bridge at night"}, 6, true);
  EXPECT_EQ(cut[0][5].item<int64_t>(), 3);
  EXPECT_EQ(tower->pool_positions(cut)[0].item<int64_t>(), 5);
}

TEST(SentencePiece, Lowercasing) {
  // At encode time (Python's str.lower), or built into a model trained with lowercase(true).
  const clip::SentencePieceTokenizer lower{clip::SentencePieceOptions(model_path()).lowercase(true)};
  const clip::SentencePieceTokenizer plain{clip::SentencePieceOptions(model_path())};
  EXPECT_EQ(lower.encode("A Photo Of A RED CAT"), plain.encode("a photo of a red cat"));
  EXPECT_NE(plain.encode("A Photo Of A RED CAT"), plain.encode("a photo of a red cat"));

  std::vector<std::string> mixed = generated_captions(1500, 5);
  for (size_t i = 0; i < mixed.size(); i += 2) {
    for (char& c : mixed[i]) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  }
  const std::string folded = temp_dir() + "/folded.model";
  clip::train_sentencepiece(clip::SentencePieceTrainOptions(write_captions("mixed.txt", mixed), folded)
                                .vocab_size(60)
                                .lowercase(true)
                                .model_type("bpe"));
  const clip::SentencePieceTokenizer self_folding{clip::SentencePieceOptions(folded)};
  EXPECT_EQ(self_folding.encode("A PHOTO OF A TINY TEAPOT"), self_folding.encode("a photo of a tiny teapot"));
}

TEST(SentencePiece, ThreadsAgree) {
  const clip::SentencePieceTokenizer spm{clip::SentencePieceOptions(model_path())};
  const std::vector<std::string> texts = generated_captions(3000, 11);
  std::vector<Ids> one;
  for (const auto& t : texts) one.push_back(spm.encode(t));
  EXPECT_EQ(spm.encode_batch(texts), one);
}

TEST(SentencePiece, Errors) {
  EXPECT_CONTAINS(error_of([] { clip::SentencePieceTokenizer t{clip::SentencePieceOptions("/nonexistent.model")}; }),
                  "/nonexistent.model: no such SentencePiece model");
  const std::string junk = write_captions("junk.model", {"this is not a model"});
  EXPECT_CONTAINS(error_of([&] { clip::SentencePieceTokenizer t{clip::SentencePieceOptions(junk)}; }),
                  "junk.model: not a SentencePiece model");
  EXPECT_CONTAINS(error_of([] { clip::SentencePieceTokenizer t{clip::SentencePieceOptions(model_path()).end_id(64)}; }),
                  "end (eos) id 64 is outside the model's 64 pieces");
  EXPECT_CONTAINS(error_of([] { clip::SentencePieceTokenizer t{clip::SentencePieceOptions(model_path()).end_id(2)}; }),
                  "start and end ids are both 2");
  const clip::SentencePieceTokenizer spm{clip::SentencePieceOptions(model_path())};
  EXPECT_CONTAINS(error_of([&] { spm.encode("bad \xFF"); }), "invalid UTF-8 at byte 4 (0xFF)");
  EXPECT_CONTAINS(error_of([&] { spm.tokenize({"ok", "bad \xFF"}); }), "text 1: invalid UTF-8 at byte 4");
  EXPECT_CONTAINS(error_of([&] {
                    spm.decode({5, 64});
                  }),
                  "decode: id 64 at position 1 is outside the vocabulary [0, 64)");

  const std::string out = temp_dir() + "/never.model";
  auto train = [&](const std::string& input, int64_t vocab) {
    clip::train_sentencepiece(clip::SentencePieceTrainOptions(input, out).vocab_size(vocab));
  };
  EXPECT_CONTAINS(error_of([&] { train("/nonexistent.txt", 64); }), "/nonexistent.txt: no such captions file");
  EXPECT_CONTAINS(error_of([&] { train(write_captions("few.txt", generated_captions(20, 3)), 5000); }),
                  "Vocabulary size too high");
  EXPECT_CONTAINS(error_of([&] { train(write_captions("empty.txt", {"", ""}), 64); }), "no captions");
  EXPECT_CONTAINS(error_of([&] {
                    train(write_captions("utf8.txt", {"fine", "bad \xC3"}), 64);
                  }),
                  "utf8.txt: line 2: invalid UTF-8 at byte 4");
  EXPECT_CONTAINS(error_of([&] {
                    clip::train_sentencepiece(
                        clip::SentencePieceTrainOptions(write_captions("t.txt", {"a"}), out).model_type("wordpiece"));
                  }),
                  "model type 'wordpiece' is not one of unigram, bpe, char, word");
  EXPECT_FALSE(fs::exists(out));
}

TEST(TokenizerConfig, TextCfgTokenizerNamesTheVocabulary) {
  fs::copy_file(model_path(), temp_dir() + "/vocab.model", fs::copy_options::overwrite_existing);
  const std::string base = R"({"embed_dim": 8, "vision_cfg": {"image_size": 32, "layers": 1, "width": 64,
    "patch_size": 16}, "text_cfg": {"context_length": 16, "vocab_size": 64, "width": 32, "heads": 2, "layers": 1)";
  // A SentencePiece path: pooling defaults to the first end token, whose id must be given.
  const clip::ModelConfig spm =
      clip::parse_model_config(base + R"(, "tokenizer": "vocab.model", "eos_token_id": 3}})", "spm.json");
  EXPECT_EQ(spm.text.tokenizer, "vocab.model");
  EXPECT_EQ(spm.text.pool, clip::TextPool::first_eos);
  const auto tokenizer = clip::load_tokenizer(spm.text, temp_dir());
  EXPECT_NE(dynamic_cast<const clip::SentencePieceTokenizer*>(tokenizer.get()), nullptr);
  EXPECT_EQ(tokenizer->end_id(), 3);
  // Round trip through to_json keeps the tokenizer.
  const clip::ModelConfig again = clip::parse_model_config(clip::to_json(spm), "round trip");
  EXPECT_EQ(again.text.tokenizer, "vocab.model");
  EXPECT_EQ(again.text.pool, clip::TextPool::first_eos);
  EXPECT_EQ(clip::to_json(again), clip::to_json(spm));
  const clip::ModelConfig argmax =
      clip::parse_model_config(base + R"(, "tokenizer": "vocab.model", "pool_type": "argmax"}})", "argmax.json");
  EXPECT_EQ(clip::parse_model_config(clip::to_json(argmax), "round trip").text.pool, clip::TextPool::argmax);
  EXPECT_CONTAINS(error_of([&] { clip::load_tokenizer(argmax.text, temp_dir()); }),
                  "pooling at argmax(ids) needs the end token to be the largest id (63), but it is 3");
  // The default stays the CLIP BPE with argmax pooling.
  const clip::ModelConfig bpe = clip::load_model_config(clip::test::config("ViT-B-32"));
  EXPECT_EQ(bpe.text.tokenizer, "clip_bpe");
  EXPECT_EQ(bpe.text.pool, clip::TextPool::argmax);
  EXPECT_EQ(clip::to_json(bpe).find("tokenizer"), std::string::npos);

  EXPECT_CONTAINS(error_of([&] { clip::parse_model_config(base + R"(, "tokenizer": "vocab.model"}})", "x.json"); }),
                  "x.json: text_cfg.tokenizer names a SentencePiece model; set text_cfg.eos_token_id");
  EXPECT_CONTAINS(error_of([&] { clip::parse_model_config(base + R"(, "tokenizer": "gpt2"}})", "x.json"); }),
                  "x.json: 'text_cfg.tokenizer' must be \"clip_bpe\" or the path of a SentencePiece .model file");
  EXPECT_CONTAINS(error_of([&] { clip::parse_model_config(base + R"(, "tokenizer": 3}})", "x.json"); }),
                  "'text_cfg.tokenizer' must be a string, got 3");
  const clip::ModelConfig wrong_eos =
      clip::parse_model_config(base + R"(, "tokenizer": "vocab.model", "eos_token_id": 5}})", "spm.json");
  EXPECT_CONTAINS(error_of([&] { clip::load_tokenizer(wrong_eos.text, temp_dir()); }),
                  "ends texts with id 3 but text_cfg.eos_token_id is 5");
  EXPECT_CONTAINS(error_of([&] { clip::load_tokenizer(spm.text, "/nonexistent"); }),
                  "/nonexistent/vocab.model: no such SentencePiece model");
}

// Hugging Face framings (tests/reference/test_hf_tokenizers.py holds them against transformers itself): no start
// token, left padding, pieces named by the folder's tokenizer_config.json and special_tokens_map.json.
TEST(SentencePiece, HfFoldersFrameAsTheirConfigSays) {
  // The trained model's layout: pad 0, unk 1, start 2, end 3.
  const fs::path dir = fs::path(temp_dir()) / "hf_folder";
  fs::create_directories(dir);
  fs::copy_file(model_path(), dir / "tokenizer.model", fs::copy_options::overwrite_existing);
  auto write = [&](const char* name, const std::string& text) { std::ofstream(dir / name) << text; };
  write("tokenizer_config.json", R"({"tokenizer_class": "GemmaTokenizerFast", "add_bos_token": false,
                                     "add_eos_token": true, "padding_side": "left", "bos_token": "<s>",
                                     "eos_token": "</s>", "pad_token": "<pad>"})");
  const clip::SentencePieceOptions options = clip::hf_sentencepiece_options(dir.string());
  EXPECT_FALSE(options.add_start());
  EXPECT_TRUE(options.add_end());
  EXPECT_TRUE(options.pad_left());
  const clip::SentencePieceTokenizer spm(options);
  const Ids text = spm.encode("a photo of a cat");
  ASSERT_FALSE(text.empty());
  const at::Tensor row = spm.tokenize({"a photo of a cat"}, 16);
  Ids expected(16 - text.size() - 1, 0);  // left padding, then the text and its end token
  expected.insert(expected.end(), text.begin(), text.end());
  expected.push_back(3);
  EXPECT_EQ(Ids(row.data_ptr<int64_t>(), row.data_ptr<int64_t>() + 16), expected);
  // Truncation keeps the end token; the text is what is cut.
  const Ids cut = spm.frame(text, 3, /*truncate=*/true);
  EXPECT_EQ(cut, (Ids{text[0], text[1], 3}));
  EXPECT_CONTAINS(error_of([&] { spm.frame(text, 3, false); }), "more than the context length 3");

  // The special tokens map wins over the config, as in transformers.
  write("special_tokens_map.json", R"({"eos_token": {"content": "<s>", "lstrip": false}})");
  EXPECT_EQ(clip::SentencePieceTokenizer(clip::hf_sentencepiece_options(dir.string())).end_id(), 2);
  fs::remove(dir / "special_tokens_map.json");

  write("tokenizer_config.json", R"({"tokenizer_class": "BertTokenizer"})");
  EXPECT_CONTAINS(error_of([&] { clip::hf_sentencepiece_options(dir.string()); }),
                  "tokenizer_class 'BertTokenizer' is not one libclip runs");
  // Gemma's "<bos>" is not in this model: no matter while the framing leaves it out.
  write("tokenizer_config.json", R"({"tokenizer_class": "GemmaTokenizer", "eos_token": "</s>"})");
  EXPECT_EQ(clip::SentencePieceTokenizer(clip::hf_sentencepiece_options(dir.string())).framing().start, false);
  write("tokenizer_config.json", R"({"tokenizer_class": "GemmaTokenizer", "add_bos_token": true})");
  EXPECT_CONTAINS(error_of([&] { clip::SentencePieceTokenizer t(clip::hf_sentencepiece_options(dir.string())); }),
                  "the model has no piece '<bos>' for the start (bos) token");
  write("tokenizer_config.json", R"({"tokenizer_class": "T5Tokenizer", "eos_token": "<nope>"})");
  EXPECT_CONTAINS(error_of([&] { clip::SentencePieceTokenizer t(clip::hf_sentencepiece_options(dir.string())); }),
                  "the model has no piece '<nope>' for the end (eos) token");
  write("tokenizer_config.json", R"({"tokenizer_class": "GemmaTokenizer", "padding_side": "middle"})");
  EXPECT_CONTAINS(error_of([&] { clip::hf_sentencepiece_options(dir.string()); }), "padding_side 'middle'");
  write("tokenizer_config.json", "{not json");
  EXPECT_CONTAINS(error_of([&] { clip::hf_sentencepiece_options(dir.string()); }), "tokenizer_config.json");
  fs::remove(dir / "tokenizer.model");
  EXPECT_CONTAINS(error_of([&] { clip::hf_sentencepiece_options(dir.string()); }),
                  "no SentencePiece model (spiece.model or tokenizer.model)");
}
