#pragma once
/// Training streams over many shards: which shards each rank and loader thread reads in an epoch, a sample
/// shuffle buffer, sampling shards with replacement, and positions to resume from.
///
///   clip::ShardPlan plan(clip::parse_shard_sources("data/{00000..00099}.tar"), {/*resampled=*/false, seed, rank, world, 4});
///   clip::ShardStream stream(plan, /*worker=*/0, /*epoch=*/0);
///   while (std::optional<clip::ShardSample> s = stream.next()) train_on(*s);   // stream.position() to resume
///
/// Without resampling, every epoch is a sequence of passes; a pass reads each shard once, in an order shuffled
/// from (seed, epoch, pass), rank r taking shards r, r + W, ... of it and loader thread t every `workers`-th of
/// those, so no shard is read twice in a pass. With resampling, each (rank, thread) draws shards with
/// replacement from (seed, epoch, rank, thread), a source chosen by its weight and a shard uniformly within it,
/// so any number of ranks and threads works with any number of shards. Samples are shuffled in windows of
/// `shuffle_buffer` consecutive samples of a stream (each window in an order drawn from its seed; a window ends
/// early at the end of a pass, so passes never mix), which keeps a position small: where the current window
/// started, and how many of it were taken.
#include <ATen/core/Tensor.h>

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "clip/data/shards.h"
#include "clip/image/decode.h"
#include "clip/image/transform.h"

namespace clip {

/// How shards are dealt out.
struct ShardPlanOptions {
  bool resampled = false;  ///< draw shards with replacement (--dataset-resampled)
  uint64_t seed = 0;
  int rank = 0;
  int world_size = 1;
  int workers = 1;  ///< loader threads per rank
};

/// The shards of every (epoch, pass, worker) of one rank.
class ShardPlan {
 public:
  /// Throws clip::Error when there is no shard, or (without resampling) fewer shards than ranks.
  ShardPlan(std::vector<ShardSource> sources, ShardPlanOptions options);

  const ShardPlanOptions& options() const { return options_; }
  const std::vector<ShardSource>& sources() const { return sources_; }
  /// Threads with shards to read: `workers`, or fewer when this rank gets fewer shards per pass (no resampling).
  int workers() const;
  /// Shards in all sources.
  int64_t total_shards() const { return static_cast<int64_t>(all_.size()); }
  /// A digest of the shard list and the options that decide the order (positions record it).
  uint64_t fingerprint() const;

  /// Without resampling: the shards `worker` reads in (epoch, pass), in order.
  std::vector<std::string> worker_shards(int64_t epoch, int64_t pass, int worker) const;
  /// With resampling: the `index`-th shard `worker` draws in `epoch`.
  const std::string& draw(int64_t epoch, int worker, int64_t index) const;

 private:
  std::vector<ShardSource> sources_;
  std::vector<std::string> all_;
  std::vector<double> cumulative_;  // per source, normalized
  ShardPlanOptions options_;
};

/// Where a stream is: enough to continue it exactly.
struct ShardPosition {
  int64_t pass = 0;     ///< pass of the current window's first sample (0 with resampling)
  int64_t shard = 0;    ///< its shard: index in the worker's list of that pass (the draw index when resampling)
  int64_t sample = 0;   ///< samples of that shard before it
  int64_t window = 0;   ///< windows of the shuffle buffer completed before the current one
  int64_t taken = 0;    ///< samples of the current window already handed out
  int64_t emitted = 0;  ///< samples handed out since the epoch began
};

/// How a stream reads.
struct ShardStreamOptions {
  int64_t shuffle_buffer = 1000;  ///< window of the sample shuffle (0 or 1: shard order)
  int64_t max_passes = 0;         ///< without resampling: stop after this many passes (0: never stop)
  int64_t max_empty_shards = 64;  ///< stop after this many shards in a row gave no sample (all unreadable)
  ShardReadOptions read;
};

/// The samples of one (rank, worker) in one epoch.
class ShardStream {
 public:
  /// Starts at `start` (a position() of an earlier stream of the same plan, worker and epoch). `plan` must
  /// outlive the stream.
  ShardStream(const ShardPlan& plan, int worker, int64_t epoch, ShardStreamOptions options = {},
              ShardPosition start = {});
  ~ShardStream();
  ShardStream(const ShardStream&) = delete;
  ShardStream& operator=(const ShardStream&) = delete;

  /// The next sample, or nullopt when the stream has ended (max_passes, or max_empty_shards).
  std::optional<ShardSample> next();
  /// After the samples handed out so far.
  ShardPosition position() const;
  /// Everything read since construction (a window refilled on resume is counted again).
  ShardCounts counts() const;
  /// Failure messages since the last call.
  std::vector<std::string> take_errors();

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

/// How a sample's image becomes a model input.
struct ShardImageOptions {
  PreprocessOptions preprocess;
  DecodeOptions decode;
  std::optional<RandomResizedCropOptions> random_resized_crop;  ///< training augmentation, else resize + crop
  /// Decode JPEGs at 1/2, 1/4 or 1/8 size in the DCT domain (libjpeg-turbo, as PIL's Image.draft) when the
  /// region kept is still at least the output size: several times faster on large photos, not pixel-exact.
  bool jpeg_dct_scaling = false;
};

/// Decodes and preprocesses `sample`'s image into `out`, a contiguous float32 [3, N, N] (normalized); the crop
/// window is drawn from `seed`. Throws clip::Error naming the sample.
void load_shard_image(const ShardSample& sample, const ShardImageOptions& options, uint64_t seed, at::Tensor& out);

}  // namespace clip
