#pragma once
/// Where the trainer's batches come from. clip::Trainer makes one from TrainConfig::data (a CSV, a labeled
/// folder, WebDataset shards, synthetic data), or takes an app's own:
///
///   class MyBatches : public clip::BatchSource {
///     int64_t batches_per_epoch() const override { return 100; }
///     void start_epoch(int64_t epoch, int64_t first) override { epoch_ = epoch; next_ = first; }
///     std::optional<clip::TrainBatch> next() override {
///       if (next_ == 100) return std::nullopt;
///       return clip::TrainBatch{images_for(epoch_, next_), token_ids_for(epoch_, next_++)};
///     }
///   };
///   trainer.set_batch_source(std::make_unique<MyBatches>());
///
/// A resumed run calls start_epoch(epoch, first) with the batch it stopped before, so a source that can
/// reproduce batch (epoch, i) resumes exactly; one that cannot (a stream) records its state in position(),
/// which the checkpoint keeps and restore_position() hands back.
#include <ATen/core/Tensor.h>

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace clip {

/// One step's samples for this rank.
struct TrainBatch {
  at::Tensor images;  ///< [B, 3, R, R] float32, normalized as the model's preprocessing (ModelConfig::preprocess)
  at::Tensor texts;   ///< [B, L] int64 token ids, framed by the model's tokenizer
  int64_t skipped = 0;              ///< unreadable samples dropped from this batch (reported, not fatal)
  std::vector<std::string> errors;  ///< why, one line each
};

/// A sequence of epochs of batches.
class BatchSource {
 public:
  virtual ~BatchSource() = default;
  /// Batches per epoch (with several ranks: per rank).
  virtual int64_t batches_per_epoch() const = 0;
  /// Starts delivering batches of `epoch` from batch `first` on.
  virtual void start_epoch(int64_t epoch, int64_t first) = 0;
  /// The next batch of the epoch, or nullopt at its end.
  virtual std::optional<TrainBatch> next() = 0;
  /// Where the batches delivered so far leave the data, for checkpoints (shard streams); "" when (epoch, batch)
  /// say it all.
  virtual std::string position() const { return ""; }
  /// A recorded position(), taken up by the next start_epoch that continues at its (epoch, batch).
  virtual void restore_position(const std::string& /*position*/) {}
};

}  // namespace clip
