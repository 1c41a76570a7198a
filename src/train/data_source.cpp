#include "train/data_source.h"

#include <ATen/ATen.h>
#include <ATen/CPUGeneratorImpl.h>

#include <algorithm>
#include <numeric>
#include <random>

#include "clip/data/synthetic.h"
#include "clip/image/loader.h"
#include "clip/image/transform.h"
#include "clip/util/error.h"

namespace clip {
namespace {

constexpr uint64_t kShuffleSalt = 0x5348554646ULL;   // "SHUFF"
constexpr uint64_t kAugmentSalt = 0x4155474dULL;     // "AUGM"
constexpr uint64_t kCaptionSalt = 0x43415054ULL;     // "CAPT"
constexpr uint64_t kSyntheticSalt = 0x53594e54ULL;   // "SYNT"

class SyntheticSource : public BatchSource {
 public:
  SyntheticSource(const ModelConfig& model, const TrainConfig& config, int rank, int world)
      : model_(model), config_(config), rank_(rank), world_(world) {}
  int64_t batches_per_epoch() const override {
    return std::max<int64_t>(config_.data.synthetic_samples / (config_.data.batch_size * world_), 1);
  }
  void start_epoch(int64_t epoch, int64_t first) override {
    epoch_ = epoch;
    next_ = first;
  }
  std::optional<TrainBatch> next() override {
    if (next_ >= batches_per_epoch()) return std::nullopt;
    const uint64_t seed = item_seed(item_seed(uint64_t(config_.runtime.seed) ^ kSyntheticSalt, uint64_t(epoch_)), uint64_t(next_++));
    at::Generator gen = at::detail::createCPUGenerator(seed);
    // The global batch, of which this rank keeps its slice.
    const int64_t b = config_.data.batch_size * world_;
    TrainBatch batch;
    batch.images = synthetic_images(model_, b, gen);
    batch.texts = synthetic_texts(model_.text, b, gen);
    if (world_ > 1) {
      batch.images = batch.images.narrow(0, rank_ * config_.data.batch_size, config_.data.batch_size).contiguous();
      batch.texts = batch.texts.narrow(0, rank_ * config_.data.batch_size, config_.data.batch_size).contiguous();
    }
    return batch;
  }

 private:
  ModelConfig model_;
  TrainConfig config_;
  int rank_, world_;
  int64_t epoch_ = 0, next_ = 0;
};

class DatasetSource : public BatchSource {
 public:
  DatasetSource(CaptionDataset data, const ModelConfig& model, const TrainConfig& config,
                std::shared_ptr<const Tokenizer> tokenizer, int rank, int world)
      : data_(std::move(data)), model_(model), config_(config), tokenizer_(std::move(tokenizer)), rank_(rank), world_(world) {
    if (static_cast<int64_t>(data_.size()) < global_batch()) {
      fail(data_.source, ": ", data_.size(), " samples, fewer than one global batch of ", global_batch(),
           "; lower --batch-size");
    }
  }

  int64_t global_batch() const { return config_.data.batch_size * world_; }

  // The last partial global batch is dropped on every rank, as open_clip does in training.
  int64_t batches_per_epoch() const override { return static_cast<int64_t>(data_.size()) / global_batch(); }

  void start_epoch(int64_t epoch, int64_t first) override {
    loader_.reset();
    epoch_ = epoch;
    order_.resize(data_.size());
    std::iota(order_.begin(), order_.end(), size_t{0});
    std::mt19937_64 rng(item_seed(uint64_t(config_.runtime.seed) ^ kShuffleSalt, uint64_t(epoch)));
    std::shuffle(order_.begin(), order_.end(), rng);
    // This rank's items: slice `rank_` of every global batch from `first` on, in order; each keeps its position
    // in the epoch, which picks the sample, seeds its crop and its caption.
    positions_.clear();
    std::vector<std::string> paths;
    std::vector<uint64_t> seeds;
    for (int64_t batch = first; batch < batches_per_epoch(); ++batch) {
      for (int64_t i = 0; i < config_.data.batch_size; ++i) {
        const int64_t position = batch * global_batch() + rank_ * config_.data.batch_size + i;
        positions_.push_back(position);
        paths.push_back(data_.paths[order_[size_t(position)]]);
        seeds.push_back(static_cast<uint64_t>(position));
      }
    }
    if (paths.empty()) return;
    ImageLoaderOptions o;
    o.batch_size = config_.data.batch_size;
    o.threads = config_.data.workers;
    o.preprocess = model_.preprocess;
    if (config_.data.augment) {
      RandomResizedCropOptions crop;
      crop.scale = {config_.data.rrc_scale_min, config_.data.rrc_scale_max};
      o.random_resized_crop = crop;
    }
    // Item seeds follow the position in the epoch, so a resumed epoch augments as a straight one.
    o.seed = item_seed(uint64_t(config_.runtime.seed) ^ kAugmentSalt, uint64_t(epoch));
    o.item_indices = std::move(seeds);
    loader_ = std::make_unique<ImageLoader>(std::move(paths), o);
  }

  std::optional<TrainBatch> next() override {
    if (!loader_) return std::nullopt;
    std::optional<ImageBatch> batch = loader_->next();
    if (!batch) return std::nullopt;
    TrainBatch out;
    out.images = std::move(batch->images);
    std::vector<std::string> captions;
    const uint64_t caption_seed = item_seed(uint64_t(config_.runtime.seed) ^ kCaptionSalt, uint64_t(epoch_));
    for (int64_t row : batch->indices) {
      const size_t sample = order_[size_t(positions_[size_t(row)])];
      captions.push_back(data_.caption(sample, caption_seed));
    }
    out.texts = tokenizer_->tokenize(captions, model_.text.context_length, /*truncate=*/true);
    out.skipped = static_cast<int64_t>(batch->errors.size());
    for (const auto& e : batch->errors) out.errors.push_back(e.message);
    return out;
  }

 private:
  CaptionDataset data_;
  ModelConfig model_;
  TrainConfig config_;
  std::shared_ptr<const Tokenizer> tokenizer_;
  int rank_, world_;
  std::vector<size_t> order_;
  std::vector<int64_t> positions_;  // epoch position of each item handed to the loader
  int64_t epoch_ = 0;
  std::unique_ptr<ImageLoader> loader_;
};

}  // namespace

std::unique_ptr<BatchSource> make_synthetic_source(const ModelConfig& model, const TrainConfig& config, int rank,
                                                   int world_size) {
  return std::make_unique<SyntheticSource>(model, config, rank, world_size);
}

std::unique_ptr<BatchSource> make_dataset_source(CaptionDataset data, const ModelConfig& model,
                                                 const TrainConfig& config, std::shared_ptr<const Tokenizer> tokenizer,
                                                 int rank, int world_size) {
  return std::make_unique<DatasetSource>(std::move(data), model, config, std::move(tokenizer), rank, world_size);
}

}  // namespace clip
