#pragma once
/// SentencePiece vocabularies: train one on captions, tokenize with it.
///
///   clip::train_sentencepiece(clip::SentencePieceTrainOptions("captions.txt", "spm.model").vocab_size(8000));
///   clip::SentencePieceTokenizer spm(clip::SentencePieceOptions("spm.model").lowercase(true));
///   at::Tensor ids = spm.tokenize({"a photo of a cat"});   // [1, 77]: start ... end pad pad ...
///
/// For models whose text tower pools at the first end token (`text_cfg.tokenizer` names the `.model` file and
/// `text_cfg.eos_token_id` its end id). Models trained here use the layout pad 0, unk 1, start 2, end 3, so
/// zero padding is the pad token.
#include <torch/arg.h>

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "clip/text/tokenizer.h"

namespace clip {

/// Options of a SentencePieceTokenizer. An id of -1 takes the model's own (its bos/eos/pad piece); a model
/// without that piece then needs the id given here.
struct SentencePieceOptions {
  explicit SentencePieceOptions(std::string model_path) : model_path_(std::move(model_path)) {}
  TORCH_ARG(std::string, model_path);
  TORCH_ARG(int64_t, start_id) = -1;
  TORCH_ARG(int64_t, end_id) = -1;
  TORCH_ARG(int64_t, pad_id) = -1;  ///< -1: the model's pad piece, or 0 when it has none
  /// Python-style full Unicode lowercase before encoding (as the model was trained with
  /// SentencePieceTrainOptions::lowercase).
  TORCH_ARG(bool, lowercase) = false;
};

/// A SentencePiece model (`.model`, libsentencepiece) behind the Tokenizer interface.
class SentencePieceTokenizer : public Tokenizer {
 public:
  /// Loads the model; a missing or unreadable file, or an id option outside it, throws clip::Error naming it.
  explicit SentencePieceTokenizer(const SentencePieceOptions& options);
  ~SentencePieceTokenizer() override;
  SentencePieceTokenizer(const SentencePieceTokenizer&) = delete;
  SentencePieceTokenizer& operator=(const SentencePieceTokenizer&) = delete;

  void encode(std::string_view text, std::vector<int64_t>& ids) const override;
  using Tokenizer::encode;
  /// The detokenized text; start, end and pad ids are dropped first.
  std::string decode(const std::vector<int64_t>& ids) const override;

  int64_t start_id() const override { return start_id_; }
  int64_t end_id() const override { return end_id_; }
  int64_t pad_id() const override { return pad_id_; }
  int64_t vocab_size() const override;  ///< the model's piece count
  TextPool pool() const override { return TextPool::first_eos; }

  /// The piece of one id ("▁photo").
  std::string piece(int64_t id) const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
  SentencePieceOptions options_;
  int64_t start_id_ = -1;
  int64_t end_id_ = -1;
  int64_t pad_id_ = 0;
};

/// Training a SentencePiece vocabulary from a text file of one caption per line.
struct SentencePieceTrainOptions {
  SentencePieceTrainOptions(std::string input, std::string output)
      : input_(std::move(input)), output_(std::move(output)) {}
  TORCH_ARG(std::string, input);   ///< UTF-8 text, one caption a line; empty lines are skipped
  TORCH_ARG(std::string, output);  ///< the `.model` file to write (atomically)
  TORCH_ARG(int64_t, vocab_size) = 8000;
  TORCH_ARG(std::string, model_type) = "unigram";  ///< unigram | bpe | char | word
  TORCH_ARG(double, character_coverage) = 0.9995;
  TORCH_ARG(bool, lowercase) = false;     ///< lowercase the captions first (then tokenize with lowercase too)
  TORCH_ARG(int64_t, max_sentences) = 0;  ///< 0: every line; else a uniform sample of this many
  TORCH_ARG(int64_t, threads) = 1;
};

/// Statistics of a finished training run.
struct SentencePieceTrainResult {
  int64_t sentences = 0;   ///< captions read
  int64_t vocab_size = 0;  ///< pieces in the written model
};

/// Trains with libsentencepiece and writes `options.output()`. Errors (unreadable input, a vocabulary larger
/// than the captions allow, ...) throw clip::Error naming the file and SentencePiece's reason.
SentencePieceTrainResult train_sentencepiece(const SentencePieceTrainOptions& options);

}  // namespace clip
