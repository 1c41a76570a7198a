#pragma once
/// Text to token ids: the interface the CLIP BPE and SentencePiece tokenizers share.
///
///   std::unique_ptr<clip::Tokenizer> tok = clip::load_tokenizer(config.text);   // clip/model/model_tokenizer.h
///   at::Tensor ids = tok->tokenize({"a photo of a cat", "a dog"});   // [2, 77] int64
///
/// `encode` gives the ids of one text alone; `tokenize` frames each text with the start and end tokens, pads to
/// the context length and stacks them, as the reference's `clip.tokenize`. Every method is const and safe to call
/// from many threads at once.
#include <ATen/core/Tensor.h>

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "clip/text/text_pool.h"
#include "clip/util/error.h"

namespace clip {

/// A text that could not be tokenized: which one (its index in the batch) and why.
class TextError : public Error {
 public:
  /// what() is "text <index>: <reason>".
  TextError(size_t index, const std::string& reason);
  /// The failing text's position in the batch (clip_tokenize adds its first line number to name the line).
  size_t index() const { return index_; }
  /// The message without the "text N: " prefix.
  const std::string& reason() const { return reason_; }

 private:
  size_t index_;
  std::string reason_;
};

/// Tokenizes texts into model inputs.
class Tokenizer {
 public:
  virtual ~Tokenizer() = default;

  /// Appends the ids of `text` alone (no start or end token, never truncated) to `ids`. Throws clip::Error on
  /// text that is not valid UTF-8, naming the byte offset.
  virtual void encode(std::string_view text, std::vector<int64_t>& ids) const = 0;
  /// The text the ids stand for, as the reference's decode does.
  virtual std::string decode(const std::vector<int64_t>& ids) const = 0;

  /// The id that opens every framed text (<|startoftext|>, or SentencePiece's bos).
  virtual int64_t start_id() const = 0;
  /// The id that closes every framed text (<|endoftext|>, or SentencePiece's eos).
  virtual int64_t end_id() const = 0;
  /// The id that fills a framed row after the end token (0 for both tokenizers as shipped).
  virtual int64_t pad_id() const = 0;
  /// Number of ids: every id is in [0, vocab_size()).
  virtual int64_t vocab_size() const = 0;
  /// Where a text tower reading these ids pools: TextPool::argmax for the CLIP BPE (its end token has the
  /// largest id), TextPool::first_eos otherwise.
  virtual TextPool pool() const = 0;

  /// Which special tokens frame a text, and on which side the padding goes (Hugging Face's add_bos_token,
  /// add_eos_token and padding_side). Both tokens and right padding for the CLIP BPE and libclip's own
  /// SentencePiece models.
  struct Framing {
    bool start = true;
    bool end = true;
    bool pad_left = false;
  };
  virtual Framing framing() const { return {}; }

  /// The ids of one text alone.
  std::vector<int64_t> encode(std::string_view text) const;

  /// `encode` of every text, in parallel over LibTorch's intra-op threads; a failing text throws TextError
  /// naming its index (the lowest failing index when several fail).
  std::vector<std::vector<int64_t>> encode_batch(const std::vector<std::string>& texts) const;

  /// start + ids + end (those of framing()), the text's ids cut when `truncate` so that the whole fits
  /// `context_length` (the end token is kept, as the references do); without `truncate`, a text longer than the
  /// context throws TextError with its token count. `index` names the text in that error.
  std::vector<int64_t> frame(std::vector<int64_t> ids, int64_t context_length, bool truncate, size_t index = 0) const;

  /// Copies framed ids (at most `context_length`) into `row` of `context_length` ids and fills the rest with
  /// pad_id(), after the ids or, with framing().pad_left, before them.
  void pad_into(const std::vector<int64_t>& framed, int64_t context_length, int64_t* row) const;

  /// [texts.size(), context_length] int64: each text framed (start token, its ids, end token), then padded.
  at::Tensor tokenize(const std::vector<std::string>& texts, int64_t context_length = 77, bool truncate = false) const;
};

}  // namespace clip
