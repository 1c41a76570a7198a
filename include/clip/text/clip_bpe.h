#pragma once
/// The CLIP byte-level BPE of openai/CLIP, id for id.
///
///   clip::ClipBpeTokenizer bpe;                          // the vocabulary shipped with libclip
///   std::vector<int64_t> ids = bpe.encode("A photo of a cat.");   // {320, 1125, 539, 320, 2368, 269}
///   at::Tensor batch = bpe.tokenize({"a dog", "a cat"});          // [2, 77]: 49406 ... 49407 0 0 ...
///
/// Cleaning as the reference: a subset of ftfy's repairs (NFC and the character-level fixes; see
/// docs/tokenizer.md for which), html.unescape twice, strip, whitespace runs to one space, Python's full Unicode
/// lowercase; then the reference's split pattern (special tokens, contractions, letter runs, single digits, runs
/// of other characters), UTF-8 bytes mapped to the vocabulary's characters, and merges by rank. Words already
/// seen are cached (sharded, thread-safe). Invalid UTF-8 is an error naming the byte offset.
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "clip/text/tokenizer.h"

namespace clip {

/// Options of a ClipBpeTokenizer.
struct ClipBpeOptions {
  /// The merges file (`bpe_simple_vocab_16e6.txt.gz`, gzip or plain text); empty: default_clip_bpe_vocab().
  std::string vocab_path;
  /// Apply the ftfy subset (NFC, C1 controls, Latin ligatures, character widths, curly quotes, terminal escapes,
  /// control characters, ftfy's own entity pass) before the reference's cleaning. Off: the reference's cleaning
  /// minus ftfy.
  bool fix_text = true;
  /// Most words kept in the cache (spread over its shards); a full shard is emptied. 0 disables the cache.
  size_t cache_words = size_t{1} << 20;
};

/// The default vocabulary: $CLIP_DATA_DIR, then `<libclip's folder>/../share/clip` (an installed tree), then the
/// source tree libclip was built from (`third_party/clip_bpe/`). Throws clip::Error listing the paths tried.
std::string default_clip_bpe_vocab();

/// openai/CLIP's SimpleTokenizer in C++.
class ClipBpeTokenizer : public Tokenizer {
 public:
  /// The default vocabulary's layout (a merges file with fewer merges moves the special ids down).
  static constexpr int64_t kVocabSize = 49408;
  static constexpr int64_t kStartId = 49406;  ///< <|startoftext|>
  static constexpr int64_t kEndId = 49407;    ///< <|endoftext|>

  /// Loads the merges (~60 ms); a missing or malformed file throws clip::Error naming it (and the line).
  explicit ClipBpeTokenizer(ClipBpeOptions options = {});
  ~ClipBpeTokenizer() override;
  ClipBpeTokenizer(const ClipBpeTokenizer&) = delete;
  ClipBpeTokenizer& operator=(const ClipBpeTokenizer&) = delete;

  void encode(std::string_view text, std::vector<int64_t>& ids) const override;
  using Tokenizer::encode;
  /// The reference's decode: tokens concatenated, bytes decoded as UTF-8 with U+FFFD for invalid sequences,
  /// every "</w>" replaced by a space. An id outside the vocabulary is an error naming its position.
  std::string decode(const std::vector<int64_t>& ids) const override;

  int64_t start_id() const override;  ///< kStartId with the default vocabulary
  int64_t end_id() const override;    ///< kEndId with the default vocabulary
  int64_t pad_id() const override { return 0; }
  int64_t vocab_size() const override;  ///< kVocabSize with the default vocabulary
  TextPool pool() const override { return TextPool::argmax; }

  /// The text the split pattern sees: cleaned and lowercased exactly as the reference's
  /// `whitespace_clean(basic_clean(text)).lower()` (with the ftfy subset standing in for ftfy).
  std::string clean(std::string_view text) const;
  /// The vocabulary entry of one id, as the reference's encoder keys spell it ("photo</w>", "<|endoftext|>";
  /// bytes shown as bytes_to_unicode's characters).
  std::string token(int64_t id) const;

  /// Words in the cache now, and words merged from scratch (cache misses) since construction or clear_cache().
  struct CacheStats {
    size_t words = 0;
    size_t computed = 0;
  };
  CacheStats cache_stats() const;
  /// Empties the word cache (every thread's part of it); results never depend on the cache.
  void clear_cache() const;

  /// The options this tokenizer was made with.
  const ClipBpeOptions& options() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace clip
