#pragma once
// Batches for the trainer: (images, token ids) per step, reproducible from (seed, epoch, batch) so that a resumed
// run sees exactly the batches a straight run would.
#include <ATen/core/Tensor.h>

#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "clip/data/caption_dataset.h"
#include "clip/model/config.h"
#include "clip/text/tokenizer.h"
#include "clip/train/train_config.h"

namespace clip {

struct TrainBatch {
  at::Tensor images;  // [B, 3, R, R] float32, normalized
  at::Tensor texts;   // [B, L] int64
  int64_t skipped = 0;  // unreadable images dropped from this batch
  std::vector<std::string> errors;
};

class BatchSource {
 public:
  virtual ~BatchSource() = default;
  virtual int64_t batches_per_epoch() const = 0;
  /// Starts delivering batches of `epoch` from batch `first` on.
  virtual void start_epoch(int64_t epoch, int64_t first) = 0;
  /// The next batch of the epoch, or nullopt at its end.
  virtual std::optional<TrainBatch> next() = 0;
};

/// Random images and token sequences (for benchmarks and tests).
std::unique_ptr<BatchSource> make_synthetic_source(const ModelConfig& model, const TrainConfig& config);

/// Images and captions from a dataset, decoded and augmented on loader threads, tokenized per batch.
std::unique_ptr<BatchSource> make_dataset_source(CaptionDataset data, const ModelConfig& model,
                                                 const TrainConfig& config, std::shared_ptr<const Tokenizer> tokenizer);

}  // namespace clip
