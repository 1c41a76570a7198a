#include "clip/model/model_tokenizer.h"

#include <filesystem>

#include "clip/text/clip_bpe.h"
#include "clip/text/sentencepiece.h"
#include "clip/util/error.h"

namespace clip {

std::unique_ptr<Tokenizer> load_tokenizer(const TextConfig& text, const std::string& config_dir) {
  std::unique_ptr<Tokenizer> tokenizer;
  if (!text.hf_tokenizer_name.empty() && text.tokenizer == TextConfig::kClipBpe) {
    // The CLIP BPE would give ids of another vocabulary: silently wrong embeddings.
    fail("the model's tokenizer is the Hugging Face tokenizer '", text.hf_tokenizer_name,
         "' (text_cfg.hf_tokenizer_name), which libclip cannot load yet; give the model token ids made by that ",
         "tokenizer (clip_embed --inputs), or set text_cfg.tokenizer to an equivalent SentencePiece .model file");
  }
  if (text.tokenizer == TextConfig::kClipBpe) {
    tokenizer = std::make_unique<ClipBpeTokenizer>();
  } else {
    std::filesystem::path path(text.tokenizer);
    if (path.is_relative() && !config_dir.empty()) path = std::filesystem::path(config_dir) / path;
    tokenizer = std::make_unique<SentencePieceTokenizer>(SentencePieceOptions(path.string()));
  }
  if (tokenizer->vocab_size() > text.vocab_size) {
    fail("text_cfg.tokenizer '", text.tokenizer, "' has ", tokenizer->vocab_size(),
         " ids, more than the model's text_cfg.vocab_size ", text.vocab_size);
  }
  if (text.pool == TextPool::first_eos && tokenizer->end_id() != text.eos_token_id) {
    fail("text_cfg.tokenizer '", text.tokenizer, "' ends texts with id ", tokenizer->end_id(),
         " but text_cfg.eos_token_id is ", text.eos_token_id, "; the text tower would pool at the wrong position");
  }
  if (text.pool == TextPool::argmax && tokenizer->end_id() != tokenizer->vocab_size() - 1) {
    fail("text_cfg.tokenizer '", text.tokenizer, "': pooling at argmax(ids) needs the end token to be the largest id (",
         tokenizer->vocab_size() - 1, "), but it is ", tokenizer->end_id(), "; set text_cfg.pool_type to \"eos\"");
  }
  return tokenizer;
}

namespace {

class UnavailableTokenizer : public Tokenizer {
 public:
  UnavailableTokenizer(const TextConfig& text, std::string reason) : text_(text), reason_(std::move(reason)) {}
  void encode(std::string_view, std::vector<int64_t>&) const override { fail(reason_); }
  std::string decode(const std::vector<int64_t>&) const override { fail(reason_); }
  int64_t start_id() const override { return text_.eos_token_id; }
  int64_t end_id() const override { return text_.eos_token_id; }
  int64_t pad_id() const override { return text_.pad_id; }
  int64_t vocab_size() const override { return text_.vocab_size; }
  TextPool pool() const override { return text_.pool; }

 private:
  TextConfig text_;
  std::string reason_;
};

}  // namespace

std::unique_ptr<Tokenizer> unavailable_tokenizer(const TextConfig& text, std::string reason) {
  return std::make_unique<UnavailableTokenizer>(text, std::move(reason));
}

}  // namespace clip
