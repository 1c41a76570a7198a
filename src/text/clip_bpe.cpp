#include "clip/text/clip_bpe.h"

#include <array>
#include <atomic>
#include <filesystem>

#include "clip/util/resources.h"
#include "text/bpe_merges.h"
#include "text/text_clean.h"
#include "text/unicode.h"
#include "text/word_cache.h"

namespace clip {
namespace {

constexpr const char* kVocabName = "bpe_simple_vocab_16e6.txt.gz";
constexpr size_t kMaxCachedWord = 4096;  // bytes; longer words are merged every time

// The reference's split pattern, with re.IGNORECASE, on the cleaned and lowercased text:
//   <\|startoftext\|>|<\|endoftext\|>|'s|'t|'re|'ve|'m|'ll|'d|[\p{L}]+|[\p{N}]|[^\s\p{L}\p{N}]+
// At each position the first alternative that matches wins; characters no alternative matches are skipped.
using text::CharClass;

constexpr std::array<CharClass, 128> make_ascii_classes() {
  std::array<CharClass, 128> c{};
  for (int i = 0; i < 128; ++i) c[i] = CharClass::other;
  for (int i = 'a'; i <= 'z'; ++i) c[i] = c[i - 32] = CharClass::letter;
  for (int i = '0'; i <= '9'; ++i) c[i] = CharClass::number;
  for (int i : {'\t', '\n', '\v', '\f', '\r', ' '}) c[i] = CharClass::skip;
  return c;
}
constexpr std::array<CharClass, 128> kAsciiClass = make_ascii_classes();

// Text the cleaning leaves as it is, up to ASCII lowercasing and whitespace (which the split skips anyway):
// printable ASCII other than '&', and tab, newline, form feed, carriage return. Such text is split directly.
constexpr std::array<bool, 256> make_simple() {
  std::array<bool, 256> s{};
  for (int i = 0x20; i < 0x7F; ++i) s[i] = i != '&';
  for (int i : {'\t', '\n', '\f', '\r'}) s[i] = true;
  return s;
}
constexpr std::array<bool, 256> kSimple = make_simple();

char ascii_lower(char c) { return c >= 'A' && c <= 'Z' ? static_cast<char>(c + 32) : c; }

// Length in bytes and class of the (valid) UTF-8 character at `i`.
size_t char_at(std::string_view t, size_t i, CharClass& cls) {
  const auto b = static_cast<uint8_t>(t[i]);
  if (b < 0x80) {
    cls = kAsciiClass[b];
    return 1;
  }
  size_t n = b >= 0xF0 ? 4 : b >= 0xE0 ? 3 : 2;
  char32_t cp = b & (n == 2 ? 0x1F : n == 3 ? 0x0F : 0x07);
  for (size_t k = 1; k < n; ++k) cp = (cp << 6) | (static_cast<uint8_t>(t[i + k]) & 0x3F);
  cls = text::classify(cp);
  return n;
}

// Matches `pattern` (lowercase ASCII) at `i` case-insensitively as re.IGNORECASE does: an 's' also matches
// U+017F LATIN SMALL LETTER LONG S, whose simple case folding is 's'. Returns the bytes matched (0: no match);
// `exact` is false when a long s was used.
size_t match_ignorecase(std::string_view t, size_t i, std::string_view pattern, bool& exact) {
  exact = true;
  size_t j = i;
  for (char p : pattern) {
    if (j < t.size() && ascii_lower(t[j]) == p) {
      ++j;
    } else if (p == 's' && j + 1 < t.size() && t[j] == '\xC5' && t[j + 1] == '\xBF') {
      j += 2;
      exact = false;
    } else {
      return 0;
    }
  }
  return j - i;
}

}  // namespace

std::string default_clip_bpe_vocab() {
  std::string tried;
  for (const std::string& root : resource_roots()) {
    for (const char* relative : {"", "third_party/clip_bpe/"}) {
      const std::filesystem::path candidate = std::filesystem::path(root) / (std::string(relative) + kVocabName);
      if (std::filesystem::exists(candidate)) return candidate.string();
      tried += (tried.empty() ? "" : ", ") + candidate.string();
    }
  }
  fail("the CLIP BPE vocabulary ", kVocabName, " was not found (tried ", tried,
       "); pass its path, or set CLIP_DATA_DIR to the folder holding it");
}

struct ClipBpeTokenizer::Impl {
  explicit Impl(ClipBpeOptions o)
      : options(std::move(o)),
        merges(options.vocab_path.empty() ? default_clip_bpe_vocab() : options.vocab_path),
        cache(options.cache_words) {}

  // Buffers of one thread, fetched once per text.
  struct Scratch {
    std::string word;
    std::vector<int32_t> merged;
    text::WordCache::LocalEntry* local = text::WordCache::thread_entries();
  };

  // Appends the ids of one word of the split.
  void emit_word(const std::string& word, std::vector<int64_t>& ids, Scratch& scratch) const {
    if (word.size() == 1) {
      ids.push_back(merges.byte_id(static_cast<uint8_t>(word[0]), true));
      return;
    }
    const bool cacheable = word.size() <= kMaxCachedWord && cache.enabled();
    const uint64_t hash = cacheable ? text::WordCache::hash(word) : 0;
    if (cacheable && cache.find(word, hash, ids, scratch.local)) return;
    std::vector<int32_t>& merged = scratch.merged;
    merged.clear();
    merges.encode_word(word, merged);
    computed.fetch_add(1, std::memory_order_relaxed);
    if (cacheable) cache.insert(word, hash, merged.data(), merged.size(), scratch.local);
    ids.insert(ids.end(), merged.begin(), merged.end());
  }

  // Splits lowercased (or simple, see kSimple) UTF-8 text with the reference's pattern and merges each piece.
  void split(std::string_view t, std::vector<int64_t>& ids, Scratch& scratch) const {
    std::string& word = scratch.word;
    size_t i = 0;
    const size_t n = t.size();
    while (i < n) {
      CharClass cls;
      size_t len = char_at(t, i, cls);
      if (cls == CharClass::skip) {
        i += len;
        continue;
      }
      word.clear();
      if (t[i] == '<') {
        size_t m = 0;
        bool exact = false;
        int32_t special = 0;
        for (const auto& [pattern, id] : {std::pair<std::string_view, int32_t>{"<|startoftext|>", merges.start_id()},
                                          {"<|endoftext|>", merges.end_id()}}) {
          if ((m = match_ignorecase(t, i, pattern, exact)) != 0) {
            special = id;
            break;
          }
        }
        if (m != 0) {
          if (exact) {
            ids.push_back(special);  // the reference's cache maps the special tokens to themselves
          } else {
            word.assign(t.data() + i, m);  // "<|ſtartoftext|>": matched, but an ordinary word
            emit_word(word, ids, scratch);
          }
          i += m;
          continue;
        }
      }
      if (t[i] == '\'') {
        size_t m = 0;
        bool exact = false;
        for (std::string_view c : {"'s", "'t", "'re", "'ve", "'m", "'ll", "'d"}) {
          if ((m = match_ignorecase(t, i, c, exact)) != 0) break;
        }
        if (m != 0) {
          for (size_t k = i; k < i + m; ++k) word.push_back(ascii_lower(t[k]));
          emit_word(word, ids, scratch);
          i += m;
          continue;
        }
      }
      if (cls == CharClass::number) {
        word.assign(t.data() + i, len);
        emit_word(word, ids, scratch);
        i += len;
        continue;
      }
      // A run of letters, or a run of characters that are neither letters, numbers nor spaces.
      const CharClass run = cls;
      do {
        for (size_t k = i; k < i + len; ++k) word.push_back(ascii_lower(t[k]));
        i += len;
        if (i < n) len = char_at(t, i, cls);
      } while (i < n && cls == run);
      emit_word(word, ids, scratch);
    }
  }

  ClipBpeOptions options;
  text::BpeMerges merges;
  mutable text::WordCache cache;
  mutable std::atomic<size_t> computed{0};
};

ClipBpeTokenizer::ClipBpeTokenizer(ClipBpeOptions options) : impl_(std::make_unique<Impl>(std::move(options))) {}
ClipBpeTokenizer::~ClipBpeTokenizer() = default;

void ClipBpeTokenizer::encode(std::string_view text, std::vector<int64_t>& ids) const {
  bool simple = true;
  for (char c : text) {
    if (!kSimple[static_cast<uint8_t>(c)]) {
      simple = false;
      break;
    }
  }
  thread_local Impl::Scratch scratch;
  if (simple) {
    impl_->split(text, ids, scratch);
    return;
  }
  thread_local std::string cleaned;
  text::clean_text(text, impl_->options.fix_text, cleaned);
  impl_->split(cleaned, ids, scratch);
}

std::string ClipBpeTokenizer::decode(const std::vector<int64_t>& ids) const {
  std::string bytes;
  for (size_t i = 0; i < ids.size(); ++i) {
    const int64_t id = ids[i];
    if (id < 0 || id >= impl_->merges.vocab_size()) {
      fail("decode: id ", id, " at position ", i, " is outside the vocabulary [0, ", impl_->merges.vocab_size(), ")");
    }
    bytes += impl_->merges.bytes(static_cast<int32_t>(id));
    if (impl_->merges.ends_word(static_cast<int32_t>(id))) bytes += "</w>";
  }
  std::string text = text::utf8_decode_replace(bytes);
  std::string out;
  out.reserve(text.size());
  for (size_t i = 0; i < text.size();) {
    if (text.compare(i, 4, "</w>") == 0) {
      out.push_back(' ');
      i += 4;
    } else {
      out.push_back(text[i++]);
    }
  }
  return out;
}

std::string ClipBpeTokenizer::clean(std::string_view text) const {
  std::string out;
  text::clean_text(text, impl_->options.fix_text, out);
  return out;
}

std::string ClipBpeTokenizer::token(int64_t id) const {
  if (id < 0 || id >= impl_->merges.vocab_size()) {
    fail("token: id ", id, " is outside the vocabulary [0, ", impl_->merges.vocab_size(), ")");
  }
  const auto i = static_cast<int32_t>(id);
  if (i >= impl_->merges.start_id()) return std::string(impl_->merges.bytes(i));
  std::string out;
  for (char b : impl_->merges.bytes(i)) text::append_utf8(text::BpeMerges::byte_symbol(static_cast<uint8_t>(b)), out);
  if (impl_->merges.ends_word(i)) out += "</w>";
  return out;
}

ClipBpeTokenizer::CacheStats ClipBpeTokenizer::cache_stats() const {
  return {impl_->cache.size(), impl_->computed.load(std::memory_order_relaxed)};
}

void ClipBpeTokenizer::clear_cache() const {
  impl_->cache.clear();
  impl_->computed.store(0, std::memory_order_relaxed);
}

const ClipBpeOptions& ClipBpeTokenizer::options() const { return impl_->options; }
int64_t ClipBpeTokenizer::start_id() const { return impl_->merges.start_id(); }
int64_t ClipBpeTokenizer::end_id() const { return impl_->merges.end_id(); }
int64_t ClipBpeTokenizer::vocab_size() const { return impl_->merges.vocab_size(); }

}  // namespace clip
