#include "train/shard_source.h"

#include <ATen/ATen.h>
#include <ATen/Context.h>

#include <condition_variable>
#include <cstdio>
#include <deque>
#include <mutex>
#include <thread>

#include <nlohmann/json.hpp>

#include "clip/data/shard_stream.h"
#include "clip/util/error.h"
#include "clip/util/features.h"
#include "clip/util/log.h"
#include "util/json.h"

namespace clip {
namespace {

using json = nlohmann::json;

constexpr uint64_t kAugmentSalt = 0x5348415547ULL;  // "SHAUG"
constexpr size_t kReadyPerWorker = 1;               // a thread holds one finished batch, then waits for its turn
constexpr int64_t kMinSamplesForLimit = 200;        // the failure fraction is judged from this many samples on
constexpr int64_t kMinShardsForLimit = 10;          // ... and shards (always at the end of the data)
constexpr size_t kErrorLinesPerBatch = 8;

struct WorkerBatch {
  at::Tensor images, texts;
  int64_t skipped = 0;
  std::vector<std::string> errors;
  ShardPosition position;  // the stream's, after this batch
  ShardCounts counts;      // the thread's, since the epoch (or the resume) began
};

struct Worker {
  std::thread thread;
  std::deque<WorkerBatch> ready;
  bool ended = false;
  ShardPosition start;
  // Consumer side: where the batches delivered so far leave this thread.
  ShardPosition delivered;
  int64_t batches = 0;
  ShardCounts counts;
  // Producer side, under the source's mutex: what the thread's last, empty batch counted (every sample it read at
  // the end of its stream failed); the consumer takes it over once the thread has ended.
  bool has_trailing = false;
  ShardCounts trailing_counts;
  std::string trailing_error;
};

// A position() read back for one rank.
struct RecordedPosition {
  int64_t epoch = 0, batch = 0, turn = 0;
  std::string fingerprint;
  std::vector<ShardPosition> streams;
  std::vector<int64_t> batches;
};

std::string hex(uint64_t v) {
  char text[17];
  std::snprintf(text, sizeof text, "%016llx", static_cast<unsigned long long>(v));
  return text;
}

class ShardBatchSource : public BatchSource {
 public:
  ShardBatchSource(const ModelConfig& model, const TrainConfig& config, std::shared_ptr<const Tokenizer> tokenizer,
                   int rank, int world_size)
      : config_(config), tokenizer_(std::move(tokenizer)), rank_(rank), world_size_(world_size) {
    if (!config.data.train_data_weights.empty() && !config.data.dataset_resampled) {
      fail("--train-data-weights ", config.data.train_data_weights, " needs --dataset-resampled (the weights say how often "
           "each source is drawn)");
    }
    if (config.evaluation.val_split > 0) fail("--val-split does not apply to shards; give a CSV with --val-data");
    std::vector<ShardSource> sources = parse_shard_sources(config.data.train_data, config.data.train_data_weights);
    int64_t samples = config.data.train_num_samples;
    if (samples <= 0) {
      std::vector<std::string> all;
      for (const ShardSource& s : sources) all.insert(all.end(), s.shards.begin(), s.shards.end());
      const std::optional<int64_t> counted = count_from_sizes_json(all);
      if (!counted) {
        fail(config.data.train_data, ": set --train-num-samples (samples per epoch); no sizes.json beside the shards lists "
             "them all (clip_shards writes one)");
      }
      samples = *counted;
    }
    per_epoch_ = samples / (config.data.batch_size * world_size);
    if (per_epoch_ < 1) {
      fail(config.data.train_data, ": ", samples, " samples per epoch make no batch of ", config.data.batch_size, " x ",
           world_size, " ranks; raise --train-num-samples or lower --batch-size");
    }
    const int threads = config.data.workers > 0 ? config.data.workers : std::max(1, int(std::thread::hardware_concurrency()));
    plan_ = std::make_unique<ShardPlan>(
        std::move(sources),
        ShardPlanOptions{config.data.dataset_resampled, uint64_t(config.runtime.seed), rank, world_size, threads});
    image_.preprocess = model.preprocess;
    if (config.data.augment) {
      RandomResizedCropOptions crop;
      crop.scale = {config.data.rrc_scale_min, config.data.rrc_scale_max};
      image_.random_resized_crop = crop;
    }
    image_.jpeg_dct_scaling = config.data.jpeg_dct_scaling;
    stream_.shuffle_buffer = config.data.shuffle_buffer;
    stream_.read.json_caption_key = config.data.json_caption_key;
    context_length_ = model.text.context_length;
    pin_ = at::hasCUDA();
    log_info(plan_->total_shards(), " shards in ", plan_->sources().size(), " source(s)",
             config.data.dataset_resampled ? " drawn with replacement" : "", ", ", samples, " samples per epoch, ",
             plan_->workers(), " loader threads on rank ", rank);
  }

  ~ShardBatchSource() override { stop(); }

  int64_t batches_per_epoch() const override { return per_epoch_; }

  void start_epoch(int64_t epoch, int64_t first) override {
    stop();
    epoch_ = epoch;
    delivered_ = first;
    turn_ = 0;
    fatal_.clear();
    workers_.clear();
    const int n = plan_->workers();
    for (int w = 0; w < n; ++w) workers_.push_back(std::make_unique<Worker>());
    if (first > 0) continue_from_record(first);
    recorded_.reset();
    started_ = true;
    if (delivered_ >= per_epoch_) return;
    stopping_ = false;
    for (int w = 0; w < n; ++w) workers_[size_t(w)]->thread = std::thread([this, w] { run(w); });
  }

  std::optional<TrainBatch> next() override {
    if (!started_ || delivered_ >= per_epoch_) return std::nullopt;
    std::unique_lock<std::mutex> lock(mutex_);
    const size_t n = workers_.size();
    size_t ended_in_a_row = 0;
    std::optional<WorkerBatch> batch;
    size_t from = 0;
    while (!batch) {
      if (!fatal_.empty()) fail(fatal_);
      Worker& w = *workers_[turn_];
      if (!w.ready.empty()) {
        batch = std::move(w.ready.front());
        w.ready.pop_front();
        from = turn_;
      } else if (w.ended) {
        turn_ = (turn_ + 1) % n;
        if (++ended_in_a_row >= n) break;
      } else {
        ready_.wait(lock);
      }
    }
    if (!batch) {  // every thread has run out of data
      // Take over what the threads' last, empty batches counted: each thread has ended, its earlier batches were
      // all delivered, so these counts are its newest.
      for (const auto& worker : workers_) {
        if (!worker->has_trailing) continue;
        worker->counts = worker->trailing_counts;
        if (first_error_.empty()) first_error_ = worker->trailing_error;
      }
      lock.unlock();
      check_failures(/*at_end=*/true);
      return std::nullopt;
    }
    turn_ = (from + 1) % n;
    lock.unlock();
    space_.notify_all();

    Worker& w = *workers_[from];
    w.delivered = batch->position;
    ++w.batches;
    w.counts = batch->counts;
    ++delivered_;
    if (first_error_.empty() && !batch->errors.empty()) first_error_ = batch->errors.front();
    check_failures(/*at_end=*/false);

    TrainBatch out;
    out.images = std::move(batch->images);
    out.texts = std::move(batch->texts);
    out.skipped = batch->skipped;
    const size_t shown = std::min(batch->errors.size(), kErrorLinesPerBatch);
    out.errors.assign(batch->errors.begin(), batch->errors.begin() + static_cast<std::ptrdiff_t>(shown));
    if (batch->errors.size() > shown) {
      out.errors.push_back(str(batch->errors.size() - shown, " more failures in this batch (counted in skipped_images)"));
    }
    return out;
  }

  std::string position() const override {
    if (!started_) return "";
    json streams = json::array();
    for (const auto& w : workers_) {
      const ShardPosition& p = w->delivered;
      streams.push_back({{"pass", p.pass}, {"shard", p.shard}, {"sample", p.sample}, {"window", p.window},
                         {"taken", p.taken}, {"emitted", p.emitted}, {"batches", w->batches}});
    }
    return json{{"kind", "shards"}, {"rank", rank_}, {"world_size", world_size_}, {"fingerprint", hex(plan_->fingerprint())},
                {"epoch", epoch_}, {"batch", delivered_}, {"turn", turn_}, {"streams", streams}}
        .dump();
  }

  void restore_position(const std::string& text) override {
    recorded_.reset();
    const json j = parse_json_or_discarded(text);
    // One object for this rank, or an array with one object per rank.
    try {
      const json* mine = nullptr;
      if (j.is_object()) mine = &j;
      if (j.is_array()) {
        for (const json& item : j) {  // j itself: a pointer into a copy would dangle after the loop
          if (item.is_object() && item.value("rank", -1) == rank_) mine = &item;
        }
      }
      if (mine == nullptr || mine->value("kind", "") != "shards" || mine->value("rank", -1) != rank_) return;
      RecordedPosition r;
      r.epoch = mine->at("epoch").get<int64_t>();
      r.batch = mine->at("batch").get<int64_t>();
      r.turn = mine->at("turn").get<int64_t>();
      r.fingerprint = mine->at("fingerprint").get<std::string>();
      for (const json& s : mine->at("streams")) {
        auto field = [&s](const char* name) { return s.at(name).get<int64_t>(); };
        r.streams.push_back(ShardPosition{field("pass"), field("shard"), field("sample"), field("window"),
                                          field("taken"), field("emitted")});
        r.batches.push_back(s.at("batches").get<int64_t>());
      }
      recorded_ = std::move(r);
    } catch (const json::exception&) {
      recorded_.reset();
    }
  }

 private:
  void continue_from_record(int64_t first) {
    const std::string fingerprint = hex(plan_->fingerprint());
    const bool usable = recorded_ && recorded_->epoch == epoch_ && recorded_->batch == first &&
                        recorded_->fingerprint == fingerprint && recorded_->streams.size() == workers_.size() &&
                        recorded_->turn >= 0 && recorded_->turn < static_cast<int64_t>(workers_.size());
    if (!usable) {
      log_warning("no shard position recorded for epoch ", epoch_, " batch ", first,
                  " with these shards, ranks and --workers; the rest of the epoch reads from the epoch's first shards");
      return;
    }
    turn_ = static_cast<size_t>(recorded_->turn);
    for (size_t w = 0; w < workers_.size(); ++w) {
      workers_[w]->start = workers_[w]->delivered = recorded_->streams[w];
      workers_[w]->batches = recorded_->batches[w];
    }
  }

  void stop() {
    {
      std::lock_guard<std::mutex> lock(mutex_);
      stopping_ = true;
    }
    space_.notify_all();
    for (auto& w : workers_) {
      if (w->thread.joinable()) w->thread.join();
    }
  }

  void run(int index) {
    Worker& w = *workers_[size_t(index)];
    try {
      ShardStream stream(*plan_, index, epoch_, stream_, w.start);
      const uint64_t stream_id = uint64_t(rank_) * uint64_t(plan_->options().workers) + uint64_t(index);
      const uint64_t augment_seed = item_seed(item_seed(uint64_t(config_.runtime.seed) ^ kAugmentSalt, uint64_t(epoch_)), stream_id);
      int64_t undecodable = 0;
      for (;;) {
        {
          std::unique_lock<std::mutex> lock(mutex_);
          space_.wait(lock, [&] { return stopping_ || w.ready.size() < kReadyPerWorker; });
          if (stopping_) return;
        }
        bool ended = false;
        WorkerBatch batch = make_batch(stream, augment_seed, undecodable, ended);
        std::lock_guard<std::mutex> lock(mutex_);
        if (batch.images.size(0) > 0) {
          w.ready.push_back(std::move(batch));
        } else {
          // Nothing to train on, but what failed still counts (a shard that is not a tar, every image corrupt):
          // kept for the consumer, which reports it at the end of the epoch (next()).
          w.has_trailing = true;
          w.trailing_counts = batch.counts;
          if (w.trailing_error.empty() && !batch.errors.empty()) w.trailing_error = batch.errors.front();
        }
        w.ended = ended;
        ready_.notify_all();
        if (ended) return;
      }
    } catch (const std::exception& e) {
      std::lock_guard<std::mutex> lock(mutex_);
      fatal_ = error_message(e);
      ready_.notify_all();
    }
  }

  WorkerBatch make_batch(ShardStream& stream, uint64_t augment_seed, int64_t& undecodable, bool& ended) {
    const int64_t b = config_.data.batch_size, r = image_.preprocess.size;
    WorkerBatch out;
    out.images = at::empty({b, 3, r, r}, at::TensorOptions().dtype(at::kFloat).pinned_memory(pin_));
    out.texts = at::full({b, context_length_}, tokenizer_->pad_id(), at::kLong);
    const int64_t failed_before = stream.counts().failed() + undecodable;
    int64_t rows = 0;
    std::vector<std::string> errors;
    while (rows < b) {
      if (stopping()) break;
      std::optional<ShardSample> sample = stream.next();
      if (!sample) {
        ended = true;
        break;
      }
      // The crop is drawn from the sample's place in this thread's stream: the same after a resume.
      const uint64_t index = uint64_t(stream.position().emitted - 1);
      try {
        at::Tensor row = out.images[rows];
        load_shard_image(*sample, image_, item_seed(augment_seed, index), row);
        const std::vector<int64_t> ids =
            tokenizer_->frame(tokenizer_->encode(sample->caption), context_length_, /*truncate=*/true);
        tokenizer_->pad_into(ids, context_length_, out.texts[rows].data_ptr<int64_t>());
        ++rows;
      } catch (const std::exception& e) {
        ++undecodable;
        const std::string message = error_message(e);  // decode errors name the member already
        errors.push_back(message.rfind(sample->name(), 0) == 0 ? message : sample->name() + ": " + message);
      }
    }
    out.errors = stream.take_errors();
    out.errors.insert(out.errors.end(), errors.begin(), errors.end());
    out.counts = stream.counts();
    out.counts.undecodable = undecodable;
    out.skipped = out.counts.failed() - failed_before;
    out.position = stream.position();
    if (rows < b) {
      out.images = out.images.narrow(0, 0, rows);
      out.texts = out.texts.narrow(0, 0, rows);
    }
    return out;
  }

  bool stopping() {
    std::lock_guard<std::mutex> lock(mutex_);
    return stopping_;
  }

  void check_failures(bool at_end) {
    const double limit = config_.data.max_failure_fraction;
    if (limit >= 1) return;
    ShardCounts t;
    for (const auto& w : workers_) t += w->counts;
    const int64_t groups = t.groups(), failed = t.failed();
    if ((groups >= kMinSamplesForLimit || at_end) && failed > 0 && double(failed) > limit * double(groups)) {
      char percent[32];
      std::snprintf(percent, sizeof percent, "%.1f%%", 100.0 * double(failed) / double(groups));
      fail(config_.data.train_data, ": ", failed, " of ", groups, " samples failed (", percent, ", over --max-failure-fraction ",
           limit, "): ", t.corrupt, " corrupt, ", t.no_image, " without image, ",
           t.no_caption, " without caption, ", t.undecodable, " undecodable; e.g. ", first_error_);
    }
    if ((t.shards >= kMinShardsForLimit || at_end) && t.shards_failed > 0 &&
        double(t.shards_failed) > limit * double(t.shards)) {
      fail(config_.data.train_data, ": ", t.shards_failed, " of ", t.shards, " shards could not be read (over "
           "--max-failure-fraction ", limit, "); e.g. ", first_error_);
    }
  }

  TrainConfig config_;
  std::shared_ptr<const Tokenizer> tokenizer_;
  int rank_ = 0, world_size_ = 1;
  int64_t per_epoch_ = 0, context_length_ = 77;
  bool pin_ = false;
  std::unique_ptr<ShardPlan> plan_;
  ShardImageOptions image_;
  ShardStreamOptions stream_;

  int64_t epoch_ = 0, delivered_ = 0;
  size_t turn_ = 0;
  bool started_ = false;
  std::optional<RecordedPosition> recorded_;
  std::string first_error_;

  std::mutex mutex_;
  std::condition_variable space_, ready_;
  bool stopping_ = false;
  std::string fatal_;
  std::vector<std::unique_ptr<Worker>> workers_;
};

}  // namespace

std::unique_ptr<BatchSource> make_shard_source(const ModelConfig& model, const TrainConfig& config,
                                               std::shared_ptr<const Tokenizer> tokenizer, int rank, int world_size) {
  TORCH_CHECK(world_size >= 1 && rank >= 0 && rank < world_size, "make_shard_source: rank ", rank, " of ", world_size);
  if (!features().shards) {
    fail(config.data.train_data, ": training from WebDataset shards needs a libclip built with CLIP_WITH_SHARDS "
         "(libarchive, JPEG and PNG); this build is ", features_summary());
  }
  return std::make_unique<ShardBatchSource>(model, config, std::move(tokenizer), rank, world_size);
}

}  // namespace clip
