#pragma once
// Training batches from WebDataset shards (clip_train --train-data "dir/{00000..01023}.tar").
//
// Each of config.workers threads reads its own shards (ShardStream), decodes, augments and tokenizes whole
// batches; the trainer takes batches from the threads in turn, so the sequence depends only on the seed, the
// epoch, the rank, the world size and the number of threads, never on timing. A sample whose image or caption
// fails is replaced by the next one (batches stay full) and counted in TrainBatch::skipped; more failures than
// --max-failure-fraction of what was read stops training with the counts. position() records, per thread, where
// its stream stands after the batches delivered, so a resumed run reads on from there (no re-reading).
#include <memory>

#include "train/data_source.h"

namespace clip {

/// Batches from the shards config.train_data names, for `rank` of `world_size` (0 and 1 on one process). An
/// epoch is train_num_samples / (batch_size x world_size) batches per rank (train_num_samples 0: the sum of the
/// shards' sizes.json entries). Throws clip::Error for a bad pattern, missing sample count, or (without
/// dataset_resampled) fewer shards than ranks.
std::unique_ptr<BatchSource> make_shard_source(const ModelConfig& model, const TrainConfig& config,
                                               std::shared_ptr<const Tokenizer> tokenizer, int rank, int world_size);

}  // namespace clip
