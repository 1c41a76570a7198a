// ShardPlan: which shards each (rank, worker) reads. Every draw comes from item_seed (SplitMix64) of the seed and
// the indices, never from a library distribution, so the same seed deals the same shards on every machine.
#include <algorithm>
#include <numeric>

#include "clip/data/shard_stream.h"
#include "clip/util/error.h"

namespace clip {
namespace {

constexpr uint64_t kPassSalt = 0x53484152445041ULL;  // "SHARDPA"
constexpr uint64_t kDrawSalt = 0x53484152445244ULL;  // "SHARDRD"

double unit_interval(uint64_t bits) { return static_cast<double>(bits >> 11) * 0x1.0p-53; }

}  // namespace

ShardPlan::ShardPlan(std::vector<ShardSource> sources, ShardPlanOptions options)
    : sources_(std::move(sources)), options_(options) {
  TORCH_CHECK(options_.world_size >= 1 && options_.rank >= 0 && options_.rank < options_.world_size,
              "ShardPlan: rank ", options_.rank, " of world size ", options_.world_size);
  TORCH_CHECK(options_.workers >= 1, "ShardPlan: workers must be at least 1, got ", options_.workers);
  double total = 0;
  for (const ShardSource& s : sources_) {
    all_.insert(all_.end(), s.shards.begin(), s.shards.end());
    total += s.shards.empty() ? 0 : s.weight;
  }
  if (all_.empty()) fail("no shards to read");
  if (!options_.resampled && total_shards() < options_.world_size) {
    fail(total_shards(), " shards for ", options_.world_size, " ranks: without --dataset-resampled every rank needs a "
         "shard of its own; use --dataset-resampled (shards drawn with replacement) or write more, smaller shards");
  }
  double sum = 0;
  for (const ShardSource& s : sources_) {
    sum += s.shards.empty() ? 0 : s.weight;
    cumulative_.push_back(sum / total);
  }
}

int ShardPlan::workers() const {
  if (options_.resampled) return options_.workers;
  const int64_t mine = (total_shards() - options_.rank + options_.world_size - 1) / options_.world_size;
  return static_cast<int>(std::min<int64_t>(options_.workers, mine));
}

uint64_t ShardPlan::fingerprint() const {
  uint64_t h = 0xcbf29ce484222325ULL;  // FNV-1a
  auto mix = [&h](const void* data, size_t size) {
    for (size_t i = 0; i < size; ++i) h = (h ^ static_cast<const uint8_t*>(data)[i]) * 0x100000001b3ULL;
  };
  for (const ShardSource& s : sources_) {
    mix(&s.weight, sizeof s.weight);
    for (const std::string& shard : s.shards) mix(shard.data(), shard.size() + 1);
  }
  const int64_t fields[] = {options_.resampled, static_cast<int64_t>(options_.seed), options_.rank,
                            options_.world_size, options_.workers};
  mix(fields, sizeof fields);
  return h;
}

std::vector<std::string> ShardPlan::worker_shards(int64_t epoch, int64_t pass, int worker) const {
  TORCH_CHECK(!options_.resampled, "ShardPlan::worker_shards: the plan resamples; use draw()");
  TORCH_CHECK(worker >= 0 && worker < workers(), "ShardPlan: worker ", worker, " of ", workers());
  // Fisher-Yates over all shards, seeded by (seed, epoch, pass).
  std::vector<size_t> order(all_.size());
  std::iota(order.begin(), order.end(), size_t{0});
  const uint64_t seed = item_seed(item_seed(options_.seed ^ kPassSalt, uint64_t(epoch)), uint64_t(pass));
  for (size_t i = order.size(); i > 1; --i) std::swap(order[i - 1], order[item_seed(seed, i) % i]);
  // Rank r takes shards r, r + W, ... of the order; its worker w every workers()-th of those from w.
  std::vector<std::string> out;
  const size_t stride = static_cast<size_t>(options_.world_size) * static_cast<size_t>(workers());
  for (size_t i = static_cast<size_t>(options_.rank) + static_cast<size_t>(worker) * options_.world_size;
       i < order.size(); i += stride) {
    out.push_back(all_[order[i]]);
  }
  return out;
}

const std::string& ShardPlan::draw(int64_t epoch, int worker, int64_t index) const {
  TORCH_CHECK(options_.resampled, "ShardPlan::draw: the plan does not resample; use worker_shards()");
  const uint64_t stream = uint64_t(options_.rank) * uint64_t(options_.workers) + uint64_t(worker);
  const uint64_t bits =
      item_seed(item_seed(item_seed(options_.seed ^ kDrawSalt, uint64_t(epoch)), stream), uint64_t(index));
  const double u = unit_interval(bits);
  size_t source = 0;
  while (source + 1 < sources_.size() && (sources_[source].shards.empty() || u >= cumulative_[source])) ++source;
  const std::vector<std::string>& shards = sources_[source].shards;
  return shards[item_seed(bits, 1) % shards.size()];
}

}  // namespace clip
