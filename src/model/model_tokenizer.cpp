#include "clip/model/model_tokenizer.h"

#include <filesystem>

#include "clip/io/hf_hub.h"
#include "clip/text/clip_bpe.h"
#include "clip/text/sentencepiece.h"
#include "clip/util/error.h"
#include "clip/util/features.h"
#include "io/hf_hub_cache.h"

namespace clip {

namespace {

bool has_sentencepiece_model(const std::string& dir) {
  std::error_code ec;
  return !dir.empty() && (std::filesystem::exists(std::filesystem::path(dir) / "spiece.model", ec) ||
                          std::filesystem::exists(std::filesystem::path(dir) / "tokenizer.model", ec));
}

// The folder of the Hugging Face tokenizer a config names: the model's own folder when it holds the tokenizer's
// files, else the hub repo `hf_tokenizer_name` through the local cache (fetched when missing and allowed).
std::string hf_tokenizer_folder(const TextConfig& text, const std::string& config_dir) {
  for (const std::string& dir : {text.tokenizer_dir, config_dir}) {
    if (has_sentencepiece_model(dir)) return dir;
  }
  std::string repo;
  try {
    repo = parse_hub_repo(text.hf_tokenizer_name);
  } catch (const Error&) {
    fail("the model's tokenizer '", text.hf_tokenizer_name, "' (text_cfg.hf_tokenizer_name) is not a hub repo and ",
         "the model's folder holds no spiece.model or tokenizer.model; put the tokenizer's files beside the model");
  }
  std::string dir;
  for (const char* file : {"spiece.model", "tokenizer.model"}) {
    const std::string path = fetch_hub_file(repo, file, HubOptions{}, /*optional=*/true);
    if (!path.empty()) {
      dir = std::filesystem::path(path).parent_path().string();
      break;
    }
  }
  if (dir.empty()) {
    const HubOptions resolved = detail::resolve_hub_options(HubOptions{});
    if (*resolved.offline || !features().hub) {
      fail("the model's tokenizer ", repo, " (text_cfg.hf_tokenizer_name) is not in the cache ", resolved.cache_dir,
           " and ", *resolved.offline ? "HF_HUB_OFFLINE is set; fetch it once online"
                                      : "this libclip cannot download (built without libcurl: CLIP_WITH_HUB=OFF)",
           ", or put its spiece.model/tokenizer.model and tokenizer_config.json beside the model");
    }
    fail("the model's tokenizer ", repo, " (text_cfg.hf_tokenizer_name) has no SentencePiece model (spiece.model ",
         "or tokenizer.model); libclip runs SigLIP's and SigLIP 2's SentencePiece tokenizers, not this one");
  }
  HubOptions same_commit;
  same_commit.revision = std::filesystem::path(dir).filename().string();
  for (const char* file : {"tokenizer_config.json", "special_tokens_map.json"}) {
    fetch_hub_file(repo, file, same_commit, /*optional=*/true);
  }
  return dir;
}

}  // namespace

std::unique_ptr<Tokenizer> load_tokenizer(const TextConfig& text, const std::string& config_dir) {
  std::unique_ptr<Tokenizer> tokenizer;
  if (!text.hf_tokenizer_name.empty() && text.tokenizer == TextConfig::kClipBpe) {
    // The CLIP BPE would give ids of another vocabulary: silently wrong embeddings.
    if (text.hf_tokenizer_strip_sep) {
      fail("the model's tokenizer '", text.hf_tokenizer_name, "' strips separator tokens (tokenizer_kwargs.",
           "strip_sep_token), which libclip does not run; give the model token ids made by that tokenizer ",
           "(clip_embed --inputs)");
    }
    const std::string folder = hf_tokenizer_folder(text, config_dir);
    SentencePieceOptions options = hf_sentencepiece_options(folder);
    options.clean(parse_text_clean(text.hf_tokenizer_clean));
    tokenizer = std::make_unique<SentencePieceTokenizer>(options);
  } else if (text.tokenizer == TextConfig::kClipBpe) {
    tokenizer = std::make_unique<ClipBpeTokenizer>();
  } else {
    std::filesystem::path path(text.tokenizer);
    if (path.is_relative() && !config_dir.empty()) path = std::filesystem::path(config_dir) / path;
    tokenizer = std::make_unique<SentencePieceTokenizer>(SentencePieceOptions(path.string()));
  }
  const std::string name = text.tokenizer == TextConfig::kClipBpe && !text.hf_tokenizer_name.empty()
                               ? text.hf_tokenizer_name
                               : text.tokenizer;
  if (tokenizer->vocab_size() > text.vocab_size) {
    fail("the tokenizer '", name, "' has ", tokenizer->vocab_size(),
         " ids, more than the model's text_cfg.vocab_size ", text.vocab_size);
  }
  if (text.pool == TextPool::first_eos && tokenizer->end_id() != text.eos_token_id) {
    fail("the tokenizer '", name, "' ends texts with id ", tokenizer->end_id(),
         " but text_cfg.eos_token_id is ", text.eos_token_id, "; the text tower would pool at the wrong position");
  }
  if (text.pool == TextPool::argmax && tokenizer->end_id() != tokenizer->vocab_size() - 1) {
    fail("the tokenizer '", name, "': pooling at argmax(ids) needs the end token to be the largest id (",
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
