#include "text/bpe_merges.h"

#include <zlib.h>

#include <climits>
#include <cstdio>
#include <filesystem>
#include <memory>
#include <queue>
#include <unordered_map>

#include "clip/util/error.h"
#include "text/unicode.h"
#include "util/file.h"

namespace clip::text {
namespace {

// bytes_to_unicode(): the printable bytes keep their own code point, the other 68 become U+0100 + n in order.
// `order` lists the bytes in the order of the reference's vocabulary (its dict's insertion order).
struct ByteAlphabet {
  uint8_t order[256];
  int byte_of[256 + 68];  // code point -> byte, -1 if none

  ByteAlphabet() {
    for (int& b : byte_of) b = -1;
    int n = 0;
    auto printable = [](int b) { return (b >= 33 && b <= 126) || (b >= 161 && b <= 172) || (b >= 174 && b <= 255); };
    for (int b = 0; b < 256; ++b) {
      if (printable(b)) {
        order[n++] = static_cast<uint8_t>(b);
        byte_of[b] = b;
      }
    }
    int extra = 0;
    for (int b = 0; b < 256; ++b) {
      if (!printable(b)) {
        order[n++] = static_cast<uint8_t>(b);
        byte_of[256 + extra++] = b;
      }
    }
  }
};

const ByteAlphabet& alphabet() {
  static const ByteAlphabet a;
  return a;
}

std::string read_maybe_gzip(const std::string& path) {
  require_regular_file(path, "BPE vocabulary file");
  std::unique_ptr<gzFile_s, int (*)(gzFile)> file(gzopen(path.c_str(), "rb"), gzclose);
  if (!file) fail(path, ": cannot open the BPE vocabulary");
  std::string data;
  char buffer[1 << 16];
  int n;
  while ((n = gzread(file.get(), buffer, sizeof(buffer))) > 0) data.append(buffer, static_cast<size_t>(n));
  if (n < 0) {
    int code = 0;
    fail(path, ": cannot read the BPE vocabulary (", gzerror(file.get(), &code), ")");
  }
  return data;
}

uint64_t pair_key(int32_t left, int32_t right) {
  return (static_cast<uint64_t>(static_cast<uint32_t>(left)) << 32) | static_cast<uint32_t>(right);
}

uint64_t mix(uint64_t key) {
  key ^= key >> 33;
  key *= 0xff51afd7ed558ccdULL;
  key ^= key >> 33;
  return key;
}

constexpr int32_t kSmallWord = 32;  // longer words use the heap; see merge_large

}  // namespace

char32_t BpeMerges::byte_symbol(uint8_t byte) {
  const ByteAlphabet& a = alphabet();
  for (char32_t c = 0; c < 256 + 68; ++c) {
    if (a.byte_of[c] == byte) return c;
  }
  return 0;  // unreachable: every byte has a symbol
}

BpeMerges::BpeMerges(const std::string& path) {
  const std::string data = read_maybe_gzip(path);
  const ByteAlphabet& a = alphabet();
  for (int i = 0; i < 256; ++i) byte_id_[a.order[i]] = i;

  token_offset_.push_back(0);
  for (int eow = 0; eow < 2; ++eow) {
    for (int i = 0; i < 256; ++i) {
      token_bytes_.push_back(static_cast<char>(a.order[i]));
      token_offset_.push_back(static_cast<uint32_t>(token_bytes_.size()));
      token_eow_.push_back(static_cast<uint8_t>(eow));
    }
  }

  // A merge token: bytes_to_unicode characters, "</w>" at the end of a word's last piece.
  std::u32string chars;
  auto parse_token = [&](std::string_view text, size_t line, std::string& bytes, bool& eow) {
    eow = text.size() >= 4 && text.substr(text.size() - 4) == "</w>";
    if (eow) text.remove_suffix(4);
    try {
      utf8_to_utf32(text, chars);
    } catch (const Error& e) {
      fail(path, ": line ", line + 1, ": ", e.what());
    }
    bytes.clear();
    for (char32_t c : chars) {
      const int b = c < 256 + 68 ? a.byte_of[c] : -1;
      if (b < 0) {
        char code[16];
        std::snprintf(code, sizeof(code), "U+%04X", static_cast<unsigned>(c));
        fail(path, ": line ", line + 1, ": ", code, " is not one of bytes_to_unicode's characters");
      }
      bytes.push_back(static_cast<char>(b));
    }
    if (bytes.empty()) fail(path, ": line ", line + 1, ": empty merge token");
  };

  // The token ids of every byte string seen so far, to find a merge's two parts.
  struct Key {
    std::string bytes;
    bool eow;
    bool operator==(const Key& o) const { return eow == o.eow && bytes == o.bytes; }
  };
  struct KeyHash {
    size_t operator()(const Key& k) const { return std::hash<std::string>()(k.bytes) * 2 + k.eow; }
  };
  std::unordered_map<Key, int32_t, KeyHash> ids;
  for (int32_t id = 0; id < 512; ++id) ids[{std::string(bytes(id)), ends_word(id)}] = id;

  std::vector<std::pair<int32_t, int32_t>> pairs;
  size_t line = 0, pos = 0;
  std::string left_bytes, right_bytes;
  while (pos <= data.size() && pairs.size() < kMaxMerges) {
    size_t end = data.find('\n', pos);
    if (end == std::string::npos) end = data.size();
    const std::string_view text(data.data() + pos, end - pos);
    if (line > 0) {
      // merge.split(): two tokens separated by whitespace
      const size_t space = text.find(' ');
      if (space == std::string_view::npos || text.find(' ', space + 1) != std::string_view::npos) {
        if (end >= data.size() && text.empty()) break;  // the file's final newline
        fail(path, ": line ", line + 1, ": expected two tokens separated by one space, got '", text, "'");
      }
      bool left_eow = false, right_eow = false;
      parse_token(text.substr(0, space), line, left_bytes, left_eow);
      parse_token(text.substr(space + 1), line, right_bytes, right_eow);
      const auto l = ids.find({left_bytes, left_eow});
      const auto r = ids.find({right_bytes, right_eow});
      if (l == ids.end() || r == ids.end() || left_eow) {
        fail(path, ": line ", line + 1, ": merge '", text, "' uses a token no earlier line made");
      }
      const auto id = static_cast<int32_t>(512 + pairs.size());
      pairs.emplace_back(l->second, r->second);
      token_bytes_ += left_bytes;
      token_bytes_ += right_bytes;
      token_offset_.push_back(static_cast<uint32_t>(token_bytes_.size()));
      token_eow_.push_back(static_cast<uint8_t>(right_eow));
      if (!ids.emplace(Key{left_bytes + right_bytes, right_eow}, id).second) {
        fail(path, ": line ", line + 1, ": merge '", text, "' repeats an earlier token");
      }
    }
    pos = end + 1;
    ++line;
  }
  if (pairs.empty()) fail(path, ": no merges found; expected the CLIP BPE merges (bpe_simple_vocab_16e6.txt.gz)");
  merges_ = pairs.size();
  for (const char* special : {"<|startoftext|>", "<|endoftext|>"}) {
    token_bytes_ += special;
    token_offset_.push_back(static_cast<uint32_t>(token_bytes_.size()));
    token_eow_.push_back(0);
  }

  size_t capacity = 1;
  while (capacity < pairs.size() * 3) capacity <<= 1;
  keys_.assign(capacity, ~uint64_t{0});
  ranks_.assign(capacity, kNoMerge);
  mask_ = capacity - 1;
  for (size_t r = 0; r < pairs.size(); ++r) {
    const uint64_t key = pair_key(pairs[r].first, pairs[r].second);
    uint64_t slot = mix(key) & mask_;
    while (keys_[slot] != ~uint64_t{0}) slot = (slot + 1) & mask_;
    keys_[slot] = key;
    ranks_[slot] = static_cast<int32_t>(r);
  }
}

int32_t BpeMerges::rank(int32_t left, int32_t right) const {
  const uint64_t key = pair_key(left, right);
  for (uint64_t slot = mix(key) & mask_;; slot = (slot + 1) & mask_) {
    const uint64_t k = keys_[slot];
    if (k == key) return ranks_[slot];
    if (k == ~uint64_t{0}) return kNoMerge;
  }
}

void BpeMerges::encode_word(std::string_view word, std::vector<int32_t>& ids) const {
  thread_local std::vector<int32_t> symbols;
  symbols.clear();
  for (size_t i = 0; i < word.size(); ++i) {
    symbols.push_back(byte_id(static_cast<uint8_t>(word[i]), i + 1 == word.size()));
  }
  if (symbols.size() <= kSmallWord) {
    merge_small(symbols);
  } else {
    merge_large(symbols);
  }
  ids.insert(ids.end(), symbols.begin(), symbols.end());
}

// The reference's loop as written: find the lowest-ranked pair, merge all its occurrences left to right.
void BpeMerges::merge_small(std::vector<int32_t>& s) const {
  size_t n = s.size();
  while (n > 1) {
    int32_t best = INT32_MAX, first = 0, second = 0;
    for (size_t i = 0; i + 1 < n; ++i) {
      const int32_t r = rank(s[i], s[i + 1]);
      if (r != kNoMerge && r < best) {
        best = r;
        first = s[i];
        second = s[i + 1];
      }
    }
    if (best == INT32_MAX) break;
    const int32_t merged = 512 + best;
    size_t j = 0;
    for (size_t i = 0; i < n;) {
      if (i + 1 < n && s[i] == first && s[i + 1] == second) {
        s[j++] = merged;
        i += 2;
      } else {
        s[j++] = s[i++];
      }
    }
    n = j;
  }
  s.resize(n);
}

// The same result in O(n log n) for long words: pairs in a heap ordered by (rank, position), symbols in a linked
// list. Equal to the reference's loop because every merge's parts come from earlier merges (the file is in
// learning order, checked by the constructor), so a merge never creates a pair ranked below the one being
// merged, and equal ranks go left to right.
void BpeMerges::merge_large(std::vector<int32_t>& s) const {
  struct Node {
    int32_t id, prev, next;
  };
  struct Pair {
    uint64_t order;  // rank << 32 | position of the left symbol
    int32_t left, right;
    bool operator>(const Pair& o) const { return order > o.order; }
  };
  const auto n = static_cast<int32_t>(s.size());
  std::vector<Node> nodes(static_cast<size_t>(n));
  for (int32_t i = 0; i < n; ++i) nodes[i] = {s[i], i - 1, i + 1 < n ? i + 1 : -1};
  std::priority_queue<Pair, std::vector<Pair>, std::greater<Pair>> heap;
  auto push = [&](int32_t pos) {
    if (pos < 0 || nodes[pos].next < 0) return;
    const int32_t next = nodes[pos].next;
    const int32_t r = rank(nodes[pos].id, nodes[next].id);
    if (r != kNoMerge) {
      heap.push({(static_cast<uint64_t>(r) << 32) | static_cast<uint32_t>(pos), nodes[pos].id, nodes[next].id});
    }
  };
  for (int32_t i = 0; i + 1 < n; ++i) push(i);
  while (!heap.empty()) {
    const Pair p = heap.top();
    heap.pop();
    const auto pos = static_cast<int32_t>(p.order & 0xFFFFFFFFu);
    Node& left = nodes[pos];
    if (left.id != p.left || left.next < 0 || nodes[left.next].id != p.right) continue;  // stale
    const int32_t gone = left.next;
    left.id = 512 + static_cast<int32_t>(p.order >> 32);
    left.next = nodes[gone].next;
    if (left.next >= 0) nodes[left.next].prev = pos;
    nodes[gone].id = -1;
    push(left.prev);
    push(pos);
  }
  s.clear();
  for (int32_t i = 0; i >= 0; i = nodes[i].next) s.push_back(nodes[i].id);
}

}  // namespace clip::text
