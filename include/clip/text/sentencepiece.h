#pragma once
/// SentencePiece vocabularies: train one on captions, tokenize with it.
///
///   clip::train_sentencepiece(clip::SentencePieceTrainOptions("captions.txt", "spm.model").vocab_size(8000));
///   clip::SentencePieceTokenizer spm(clip::SentencePieceOptions("spm.model").lowercase(true));
///   at::Tensor ids = spm.tokenize({"a photo of a cat"});   // [1, 77]: start ... end pad pad ...
///
/// Also the tokenizers of SigLIP (T5's SentencePiece model) and SigLIP 2 (Gemma's) as Hugging Face and open_clip
/// run them: hf_sentencepiece_options reads a tokenizer folder.
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

/// How a text is cleaned before SentencePiece sees it, as the Python tokenizers that wrap a SentencePiece model do.
enum class TextClean {
  none,          ///< the text as given (HF's T5 and Gemma tokenizers)
  whitespace,    ///< open_clip HFTokenizer's default: ftfy.fix_text, html.unescape twice, " ".join(text.split())
  lower,         ///< open_clip's "lower": `whitespace`, then str.lower()
  canonicalize,  ///< open_clip's "canonicalize" (its SigLIP configs): ftfy and html.unescape as `whitespace`, then
                 ///< '_' -> ' ', string.punctuation removed, str.lower(), " ".join(text.split())
};

/// The name of a TextClean as open_clip's `tokenizer_kwargs.clean` spells it ("whitespace", ...; "none").
const char* to_string(TextClean clean);
/// Parses those names; anything else throws clip::Error listing them.
TextClean parse_text_clean(const std::string& name);

/// Options of a SentencePieceTokenizer. An id of -1 takes the piece named by start_piece/end_piece/pad_piece
/// if given, else the model's own (its bos/eos/pad piece); a model without that piece then needs the id given
/// here.
struct SentencePieceOptions {
  explicit SentencePieceOptions(std::string model_path) : model_path_(std::move(model_path)) {}
  TORCH_ARG(std::string, model_path);
  TORCH_ARG(int64_t, start_id) = -1;
  TORCH_ARG(int64_t, end_id) = -1;
  TORCH_ARG(int64_t, pad_id) = -1;  ///< -1: the model's pad piece, or 0 when it has none
  TORCH_ARG(std::string, start_piece);  ///< the start token by name ("<bos>"); the model must have it
  TORCH_ARG(std::string, end_piece);    ///< the end token by name ("</s>", "<eos>")
  TORCH_ARG(std::string, pad_piece);    ///< the pad token by name
  TORCH_ARG(std::string, unk_piece);    ///< `siglip`: the unknown token as written ("<unk>" if empty)
  /// Python-style full Unicode lowercase before encoding (as the model was trained with
  /// SentencePieceTrainOptions::lowercase); after `clean`.
  TORCH_ARG(bool, lowercase) = false;
  /// Cleaning before anything else, as open_clip's HFTokenizer(clean=...) does before the HF tokenizer runs.
  TORCH_ARG(TextClean, clean) = TextClean::none;
  /// HF SiglipTokenizer's own pipeline (after `clean`): "\u2581" + the text with U+2581 as spaces, split at the
  /// special tokens, each part lowercased, string.punctuation removed, whitespace collapsed and stripped, then
  /// encoded behind "<unk>" whose pieces are dropped (transformers 5, legacy).
  TORCH_ARG(bool, siglip) = false;
  /// Which special tokens frame a text and where the padding goes (Tokenizer::framing): a model without a
  /// start piece needs add_start(false).
  TORCH_ARG(bool, add_start) = true;
  TORCH_ARG(bool, add_end) = true;
  TORCH_ARG(bool, pad_left) = false;
  /// As Hugging Face's tokenizers treat a SentencePiece model's control, unknown and user-defined pieces (added
  /// tokens): where one appears in the text as written it is that id, and the text between them is encoded
  /// piece by piece. Off: SentencePiece alone sees the whole text (it escapes spaces before it matches them).
  TORCH_ARG(bool, split_special) = false;
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

  Framing framing() const override { return framing_; }

  /// The piece of one id ("▁photo").
  std::string piece(int64_t id) const;

 private:
  void encode_piece(std::string_view text, std::vector<int64_t>& ids) const;
  void encode_siglip(std::string_view text, std::vector<int64_t>& ids) const;

  struct Impl;
  std::unique_ptr<Impl> impl_;
  Framing framing_;
  SentencePieceOptions options_;
  int64_t start_id_ = -1;
  int64_t end_id_ = -1;
  int64_t pad_id_ = 0;
};

/// The options that tokenize as the Hugging Face tokenizer of `folder` does: its SentencePiece model
/// (`spiece.model` or `tokenizer.model`), its `tokenizer_config.json` (tokenizer_class SiglipTokenizer,
/// T5Tokenizer or GemmaTokenizer, with or without Fast; add_bos_token, add_eos_token, padding_side,
/// do_lower_case) and `special_tokens_map.json` (bos/eos/pad tokens, which win over the config as in
/// transformers). Without a tokenizer_config.json the class is SiglipTokenizer for `spiece.model` and
/// GemmaTokenizer for `tokenizer.model`. A folder without a model, an unreadable JSON file or another class
/// throws clip::Error naming the file.
SentencePieceOptions hf_sentencepiece_options(const std::string& folder);

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
