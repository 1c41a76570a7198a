// Builds without image decoding (CLIP_WITH_OPENCV=OFF) leave the shard reader out, and libarchive with it.
#include "clip/util/error.h"
#include "train/shard_source.h"

namespace clip {

std::unique_ptr<BatchSource> make_shard_source(const ModelConfig&, const TrainConfig& config,
                                               std::shared_ptr<const Tokenizer>, int, int) {
  fail(config.data.train_data, ": WebDataset shards need a libclip built with CLIP_WITH_OPENCV=ON (image decoding and "
       "libarchive); this build has neither");
}

}  // namespace clip
