// Trains a CLIP model on data the application holds in memory, through libclip's public API: a BatchSource of
// its own, a callback that watches the loss, clip::Trainer. The data: 8 classes, each image a flat colour with
// noise, each caption the class's token; the model must learn to pair them.
//   train_in_memory CONFIG.json OUTPUT_DIR
#include <clip/train/trainer.h>

#include <ATen/ATen.h>
#include <ATen/CPUGeneratorImpl.h>

#include <cmath>
#include <cstdio>
#include <exception>
#include <memory>

namespace {

constexpr int64_t kClasses = 8, kBatch = 16, kBatchesPerEpoch = 8;

// Batch i of epoch e, made on demand from (e, i): a resumed run gets exactly the batches it would have had.
class ColourBatches : public clip::BatchSource {
 public:
  explicit ColourBatches(const clip::ModelConfig& model) : model_(model) {}
  int64_t batches_per_epoch() const override { return kBatchesPerEpoch; }
  void start_epoch(int64_t epoch, int64_t first) override {
    epoch_ = epoch;
    next_ = first;
  }
  std::optional<clip::TrainBatch> next() override {
    if (next_ == kBatchesPerEpoch) return std::nullopt;
    at::Generator gen = at::detail::createCPUGenerator(uint64_t(epoch_ * 1000 + next_++));
    const int64_t r = model_.vision.image_size, l = model_.text.context_length, vocab = model_.text.vocab_size;
    const at::Tensor labels = at::randint(kClasses, {kBatch}, gen, at::kLong);
    // Class k's colour: channel (k % 3) bright, (k / 3) sets the others' level.
    const at::Tensor colours = at::stack({(labels % 3 == 0).to(at::kFloat), (labels % 3 == 1).to(at::kFloat),
                                          (labels % 3 == 2).to(at::kFloat)}, 1) +
                               (labels / 3).to(at::kFloat).unsqueeze(1) * 0.5;
    clip::TrainBatch batch;
    batch.images = colours.view({kBatch, 3, 1, 1}).expand({kBatch, 3, r, r}) + 0.1 * at::randn({kBatch, 3, r, r}, gen);
    // [start, class word, end, 0 ...] with the CLIP BPE's layout: the end token is the largest id (argmax pooling).
    batch.texts = at::zeros({kBatch, l}, at::kLong);
    batch.texts.select(1, 0).fill_(vocab - 2);
    batch.texts.select(1, 1).copy_(labels + 1);
    batch.texts.select(1, 2).fill_(vocab - 1);
    return batch;
  }

 private:
  clip::ModelConfig model_;
  int64_t epoch_ = 0, next_ = 0;
};

// Keeps the first and last loss of the run.
struct LossWatch : clip::TrainCallback {
  double first = -1, last = -1;
  void on_step(const clip::StepEvent& e) override {
    if (first < 0) first = e.result.loss;
    last = e.result.loss;
  }
};

}  // namespace

int main(int argc, char** argv) {
  if (argc != 3) {
    std::fprintf(stderr, "usage: %s CONFIG.json OUTPUT_DIR\n", argv[0]);
    return 2;
  }
  try {
    clip::TrainConfig config;
    config.model.config = argv[1];
    config.optimizer.epochs = 6;
    config.optimizer.lr = 2e-3;
    config.optimizer.warmup = 4;
    config.checkpoint.output_dir = argv[2];
    clip::Trainer trainer(config);
    trainer.set_batch_source(std::make_unique<ColourBatches>(clip::load_model_config(argv[1])));
    auto watch = std::make_shared<LossWatch>();
    trainer.add_callback(watch);
    const clip::TrainResult r = trainer.run();
    std::printf("trained %lld steps in memory: loss %.4f -> %.4f (chance: ln %lld = %.4f)\n",
                static_cast<long long>(r.steps), watch->first, watch->last, static_cast<long long>(kBatch),
                std::log(double(kBatch)));
    return watch->last < watch->first ? 0 : 1;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "train_in_memory: %s\n", e.what());
    return 1;
  }
}
