#pragma once
// A thread-safe cache of words already merged: word bytes -> BPE ids.
//
// Two levels. In front, a small direct-mapped table per thread (short words only) that needs no lock, so
// threads tokenizing the same common words do not contend. Behind it, 64 shards shared by all threads, each an
// open-addressing table behind a reader-writer lock, its keys and values in flat arenas (no allocation per
// entry): a lookup takes one shard's lock shared, an insert exclusively. A shard that reaches its share of the
// capacity is emptied (the reference's cache is unbounded; results never depend on the cache). Per-thread
// entries carry the cache's tag, which clear() renews, so stale entries are never used.
#include <array>
#include <atomic>
#include <cstddef>
#include <cstdint>
#include <shared_mutex>
#include <string>
#include <string_view>
#include <vector>

namespace clip::text {

class WordCache {
 public:
  explicit WordCache(size_t max_words);

  static uint64_t hash(std::string_view word);

  /// The calling thread's front table; fetch it once per text (thread-local lookups cost a call in a shared
  /// library) and pass it to find and insert.
  struct LocalEntry;
  static LocalEntry* thread_entries();

  /// Appends the cached ids of `word` to `ids` and returns true, or returns false when absent.
  bool find(std::string_view word, uint64_t hash, std::vector<int64_t>& ids, LocalEntry* local) const;
  void insert(std::string_view word, uint64_t hash, const int32_t* ids, size_t count, LocalEntry* local);

  size_t size() const;
  void clear();
  bool enabled() const { return shard_capacity_ > 0; }

 private:
  static constexpr size_t kShards = 64;
  struct Slot {
    uint64_t hash;
    uint32_t key_offset;
    uint32_t key_length;
    uint32_t value_offset;
    uint32_t value_length;  // 0: empty slot
  };
  struct alignas(64) Shard {
    mutable std::shared_mutex mutex;
    std::vector<Slot> slots;
    std::string keys;
    std::vector<int32_t> values;
    size_t count = 0;
  };

  Shard& shard(uint64_t hash) const { return shards_[hash >> 58]; }
  static void grow(Shard& s);
  void remember(std::string_view word, uint64_t hash, const int32_t* ids, size_t count, LocalEntry* local) const;

  size_t shard_capacity_;
  std::atomic<uint64_t> tag_;  ///< unique to this cache and its contents since the last clear()
  mutable std::array<Shard, kShards> shards_;
};

}  // namespace clip::text
