#pragma once
// Batches for the trainer: (images, token ids) per step, reproducible from (seed, epoch, batch) so that a resumed
// run sees exactly the batches a straight run would.
#include <memory>

#include "clip/data/caption_dataset.h"
#include "clip/model/config.h"
#include "clip/text/tokenizer.h"
#include "clip/train/batch_source.h"
#include "clip/train/train_config.h"

namespace clip {

/// Random images and token sequences (for benchmarks and tests). With several ranks, each gets its slice of the
/// global batch that one process would draw.
std::unique_ptr<BatchSource> make_synthetic_source(const ModelConfig& model, const TrainConfig& config, int rank = 0,
                                                   int world_size = 1);

/// Images and captions from a dataset, decoded and augmented on loader threads, tokenized per batch. Each epoch
/// is one shuffled order (from the seed) cut into global batches of world_size x batch_size; rank r takes the r-th
/// slice of each, so the ranks together see what one process with the global batch would, crops included.
std::unique_ptr<BatchSource> make_dataset_source(CaptionDataset data, const ModelConfig& model,
                                                 const TrainConfig& config, std::shared_ptr<const Tokenizer> tokenizer,
                                                 int rank = 0, int world_size = 1);

}  // namespace clip
