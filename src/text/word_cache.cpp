#include "text/word_cache.h"

#include <cstring>
#include <memory>
#include <mutex>

namespace clip::text {
namespace {

uint64_t load(const char* p, size_t n) {
  uint64_t v = 0;
  std::memcpy(&v, p, n);
  return v;
}

uint64_t fmix(uint64_t h) {
  h ^= h >> 33;
  h *= 0xff51afd7ed558ccdULL;
  h ^= h >> 33;
  h *= 0xc4ceb9fe1a85ec53ULL;
  h ^= h >> 33;
  return h;
}

bool same_key(const std::string& keys, uint32_t offset, uint32_t length, std::string_view word) {
  return length == word.size() && std::memcmp(keys.data() + offset, word.data(), length) == 0;
}

constexpr size_t kLocalEntries = 2048;

std::atomic<uint64_t> next_tag{1};

}  // namespace

// The per-thread front: 2048 direct-mapped entries of words up to 24 bytes with up to 8 ids (~160 KB a thread).
struct WordCache::LocalEntry {
  uint64_t tag = 0;  // 0: empty
  uint64_t hash = 0;
  uint8_t key_length = 0;
  uint8_t id_count = 0;
  char key[24];
  int32_t ids[8];
};

namespace {
constexpr size_t kLocalKey = sizeof(WordCache::LocalEntry::key);
constexpr size_t kLocalIds = sizeof(WordCache::LocalEntry::ids) / sizeof(int32_t);
}  // namespace

WordCache::LocalEntry* WordCache::thread_entries() {
  thread_local std::unique_ptr<LocalEntry[]> entries(new LocalEntry[kLocalEntries]);
  return entries.get();
}

WordCache::WordCache(size_t max_words)
    : shard_capacity_((max_words + kShards - 1) / kShards), tag_(next_tag.fetch_add(1)) {}

void WordCache::remember(std::string_view word, uint64_t hash, const int32_t* ids, size_t count,
                         LocalEntry* local) const {
  if (word.size() > kLocalKey || count > kLocalIds) return;
  LocalEntry& e = local[hash % kLocalEntries];
  e.tag = tag_.load(std::memory_order_relaxed);
  e.hash = hash;
  e.key_length = static_cast<uint8_t>(word.size());
  e.id_count = static_cast<uint8_t>(count);
  std::memcpy(e.key, word.data(), word.size());
  std::memcpy(e.ids, ids, count * sizeof(int32_t));
}

uint64_t WordCache::hash(std::string_view word) {
  uint64_t h = 0x9E3779B97F4A7C15ULL ^ (word.size() * 0x100000001B3ULL);
  const char* p = word.data();
  size_t n = word.size();
  for (; n >= 8; p += 8, n -= 8) h = (h ^ fmix(load(p, 8))) * 0x9E3779B97F4A7C15ULL;
  if (n > 0) h = (h ^ fmix(load(p, n) + 1)) * 0x9E3779B97F4A7C15ULL;
  return fmix(h);
}

bool WordCache::find(std::string_view word, uint64_t hash, std::vector<int64_t>& ids, LocalEntry* local) const {
  if (!enabled()) return false;
  if (word.size() <= kLocalKey) {
    const LocalEntry& e = local[hash % kLocalEntries];
    if (e.tag == tag_.load(std::memory_order_relaxed) && e.hash == hash && e.key_length == word.size() &&
        std::memcmp(e.key, word.data(), word.size()) == 0) {
      ids.insert(ids.end(), e.ids, e.ids + e.id_count);
      return true;
    }
  }
  const Shard& s = shard(hash);
  std::shared_lock<std::shared_mutex> lock(s.mutex);
  if (s.slots.empty()) return false;
  const size_t mask = s.slots.size() - 1;
  for (size_t i = hash & mask;; i = (i + 1) & mask) {
    const Slot& slot = s.slots[i];
    if (slot.value_length == 0) return false;
    if (slot.hash == hash && same_key(s.keys, slot.key_offset, slot.key_length, word)) {
      const int32_t* v = s.values.data() + slot.value_offset;
      ids.insert(ids.end(), v, v + slot.value_length);
      remember(word, hash, v, slot.value_length, local);
      return true;
    }
  }
}

void WordCache::grow(Shard& s) {
  std::vector<Slot> old;
  old.swap(s.slots);
  s.slots.assign(old.empty() ? 64 : old.size() * 2, Slot{0, 0, 0, 0, 0});
  const size_t mask = s.slots.size() - 1;
  for (const Slot& slot : old) {
    if (slot.value_length == 0) continue;
    size_t i = slot.hash & mask;
    while (s.slots[i].value_length != 0) i = (i + 1) & mask;
    s.slots[i] = slot;
  }
}

void WordCache::insert(std::string_view word, uint64_t hash, const int32_t* ids, size_t count, LocalEntry* local) {
  if (!enabled() || count == 0) return;
  remember(word, hash, ids, count, local);
  Shard& s = shard(hash);
  std::unique_lock<std::shared_mutex> lock(s.mutex);
  if (s.count >= shard_capacity_ || s.keys.size() + word.size() > UINT32_MAX / 2) {
    s.slots.clear();
    s.keys.clear();
    s.values.clear();
    s.count = 0;
  }
  if ((s.count + 1) * 2 > s.slots.size()) grow(s);
  const size_t mask = s.slots.size() - 1;
  size_t i = hash & mask;
  for (; s.slots[i].value_length != 0; i = (i + 1) & mask) {
    const Slot& slot = s.slots[i];
    if (slot.hash == hash && same_key(s.keys, slot.key_offset, slot.key_length, word)) return;  // another thread
  }
  s.slots[i] = Slot{hash, static_cast<uint32_t>(s.keys.size()), static_cast<uint32_t>(word.size()),
                    static_cast<uint32_t>(s.values.size()), static_cast<uint32_t>(count)};
  s.keys.append(word.data(), word.size());
  s.values.insert(s.values.end(), ids, ids + count);
  ++s.count;
}

size_t WordCache::size() const {
  size_t n = 0;
  for (const Shard& s : shards_) {
    std::shared_lock<std::shared_mutex> lock(s.mutex);
    n += s.count;
  }
  return n;
}

void WordCache::clear() {
  tag_.store(next_tag.fetch_add(1), std::memory_order_relaxed);  // every thread's front entries become stale
  for (Shard& s : shards_) {
    std::unique_lock<std::shared_mutex> lock(s.mutex);
    s.slots.clear();
    s.slots.shrink_to_fit();
    s.keys.clear();
    s.keys.shrink_to_fit();
    s.values.clear();
    s.values.shrink_to_fit();
    s.count = 0;
  }
}

}  // namespace clip::text
