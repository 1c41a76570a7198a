#pragma once
// The CLIP BPE vocabulary as merge ranks over byte ids, and the merge loop of one word.
//
// The reference works on strings of bytes_to_unicode() characters with "</w>" appended to a word's last
// character; here a symbol is an id and the strings never exist: ids 0..255 are the single bytes (in
// bytes_to_unicode's order), 256..511 the same bytes ending a word, 512 + r the result of merge r, then
// <|startoftext|> and <|endoftext|>.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace clip::text {

class BpeMerges {
 public:
  /// The reference keeps lines 1..48894 of the merges file (line 0 is its version header).
  static constexpr size_t kMaxMerges = 49152 - 256 - 2;

  /// Reads a merges file (gzip or plain); errors name the file and the line.
  explicit BpeMerges(const std::string& path);

  /// Appends the ids of one word (its UTF-8 bytes, already split and lowercased) to `ids`, exactly as the
  /// reference's bpe(): the lowest-ranked adjacent pair is merged everywhere, left to right, until none is left.
  void encode_word(std::string_view word, std::vector<int32_t>& ids) const;

  /// bytes_to_unicode(): the character the reference's vocabulary writes for one byte.
  static char32_t byte_symbol(uint8_t byte);

  /// The id of one byte, alone or ending a word.
  int32_t byte_id(uint8_t byte, bool end_of_word) const { return byte_id_[byte] + (end_of_word ? 256 : 0); }

  size_t merges() const { return merges_; }
  int32_t start_id() const { return static_cast<int32_t>(512 + merges_); }
  int32_t end_id() const { return start_id() + 1; }
  int32_t vocab_size() const { return end_id() + 1; }

  /// The bytes an id stands for, and whether it ends a word ("</w>").
  std::string_view bytes(int32_t id) const {
    return std::string_view(token_bytes_.data() + token_offset_[id], token_offset_[id + 1] - token_offset_[id]);
  }
  bool ends_word(int32_t id) const { return token_eow_[id] != 0; }

 private:
  static constexpr int32_t kNoMerge = -1;
  int32_t rank(int32_t left, int32_t right) const;
  void merge_small(std::vector<int32_t>& symbols) const;
  void merge_large(std::vector<int32_t>& symbols) const;

  size_t merges_ = 0;
  int32_t byte_id_[256] = {};
  // Open-addressing table (a power of two, under half full): key (left << 32 | right) -> rank.
  std::vector<uint64_t> keys_;
  std::vector<int32_t> ranks_;
  uint64_t mask_ = 0;
  // Every id's bytes, for decode.
  std::string token_bytes_;
  std::vector<uint32_t> token_offset_;
  std::vector<uint8_t> token_eow_;
};

}  // namespace clip::text
