// ShardStream: one (rank, worker)'s samples across its shards, shuffled in windows; load_shard_image.
#include <ATen/ATen.h>

#include <algorithm>

#include "clip/data/shard_stream.h"
#include "clip/util/error.h"
#include "image/jpeg_reduced.h"
#include "image/decode_formats.h"

namespace clip {
namespace {

constexpr uint64_t kWindowSalt = 0x53485546574eULL;  // "SHUFWN"

ShardCounts minus(ShardCounts a, const ShardCounts& b) {
  a.shards -= b.shards;
  a.shards_failed -= b.shards_failed;
  a.shards_truncated -= b.shards_truncated;
  a.samples -= b.samples;
  a.no_image -= b.no_image;
  a.no_caption -= b.no_caption;
  a.corrupt -= b.corrupt;
  a.undecodable -= b.undecodable;
  return a;
}

}  // namespace

struct ShardStream::Impl {
  const ShardPlan& plan;
  int worker;
  int64_t epoch;
  ShardStreamOptions options;
  uint64_t window_seed;

  // Where the next sample is read: shard `shard` of pass `pass`, after `sample` of its samples.
  int64_t pass = 0, shard = 0, sample = 0;
  std::vector<std::string> pass_shards;  // without resampling: the list of `pass`
  int64_t listed_pass = -1;
  std::unique_ptr<ShardReader> reader;
  ShardCounts reader_base;  // counts of the open reader that were counted before (skipped on resume)
  bool shard_gave_sample = false, pass_gave_sample = false, ended = false;
  bool whole_pass = true;  // the current pass is read from its first shard (not resumed inside it)
  int64_t empty_run = 0;

  // The shuffle window being handed out.
  std::vector<ShardSample> window;
  ShardPosition window_start;  // pass, shard, sample of its first sample; window = its index
  bool has_window = false;
  int64_t taken = 0, emitted = 0;
  int64_t resume_taken = 0;  // samples of the first window already handed out before a resume

  ShardCounts counts;
  std::vector<std::string> errors;

  Impl(const ShardPlan& p, int w, int64_t e, ShardStreamOptions o, const ShardPosition& start)
      : plan(p), worker(w), epoch(e), options(std::move(o)) {
    const ShardPlanOptions& po = plan.options();
    window_seed = item_seed(item_seed(po.seed ^ kWindowSalt, uint64_t(epoch)),
                            uint64_t(po.rank) * uint64_t(po.workers) + uint64_t(worker));
    pass = start.pass;
    shard = start.shard;
    sample = start.sample;
    window_start = start;
    resume_taken = start.taken;
    emitted = start.emitted - start.taken;
    whole_pass = shard == 0 && sample == 0;
  }

  void close_reader() {
    counts += minus(reader->counts(), reader_base);
    for (std::string& e : reader->take_errors()) errors.push_back(std::move(e));
    reader.reset();
  }

  // The path of the current shard; nullptr at the end of a pass.
  const std::string* current_shard() {
    if (plan.options().resampled) return &plan.draw(epoch, worker, shard);
    if (listed_pass != pass) {
      pass_shards = plan.worker_shards(epoch, pass, worker);
      listed_pass = pass;
    }
    return shard < static_cast<int64_t>(pass_shards.size()) ? &pass_shards[size_t(shard)] : nullptr;
  }

  // The next sample from the current shard on; at the end of a pass, nullopt unless `cross_pass` (a shuffle window
  // never mixes two passes, so every sample of a pass comes before any of the next).
  std::optional<ShardSample> read_one(bool cross_pass) {
    while (!ended) {
      if (!reader) {
        const std::string* path = current_shard();
        if (path == nullptr) {  // the pass is over
          if (!cross_pass) return std::nullopt;
          const bool empty = whole_pass && !pass_gave_sample;
          if (empty) errors.push_back(str("no shard of pass ", pass, " gave a sample; the stream of worker ", worker, " stops"));
          ++pass;
          shard = sample = 0;
          ended = empty || (options.max_passes > 0 && pass >= options.max_passes);
          pass_gave_sample = false;
          whole_pass = true;
          continue;
        }
        reader = std::make_unique<ShardReader>(*path, options.read);
        shard_gave_sample = false;
        if (sample > 0) {  // resuming inside this shard: read over what was handed out before
          shard_gave_sample = reader->skip(sample) > 0;
          reader_base = reader->counts();
          reader->take_errors();
        } else {
          reader_base = ShardCounts{};
        }
      }
      if (std::optional<ShardSample> s = reader->next()) {
        ++sample;
        shard_gave_sample = pass_gave_sample = true;
        empty_run = 0;
        return s;
      }
      close_reader();
      pass_gave_sample = pass_gave_sample || shard_gave_sample;
      if (!shard_gave_sample && ++empty_run >= options.max_empty_shards) {
        errors.push_back(str(empty_run, " shards in a row gave no sample; the stream of worker ", worker, " stops"));
        ended = true;
      }
      ++shard;
      sample = 0;
    }
    return std::nullopt;
  }

  bool refill() {
    const int64_t index = has_window ? window_start.window + 1 : window_start.window;
    window.clear();
    window_start = ShardPosition{pass, shard, sample, index, 0, 0};
    const int64_t size = std::max<int64_t>(options.shuffle_buffer, 1);
    while (static_cast<int64_t>(window.size()) < size) {
      std::optional<ShardSample> s = read_one(/*cross_pass=*/window.empty());
      if (!s) break;
      window.push_back(std::move(*s));
    }
    has_window = true;
    taken = 0;
    if (window.empty()) return false;
    const uint64_t seed = item_seed(window_seed, uint64_t(index));
    for (size_t i = window.size(); i > 1; --i) std::swap(window[i - 1], window[item_seed(seed, i) % i]);
    if (resume_taken > 0) {
      const int64_t drop = std::min<int64_t>(resume_taken, static_cast<int64_t>(window.size()));
      taken = drop;
      emitted += drop;
      resume_taken = 0;
    }
    return true;
  }
};

ShardStream::ShardStream(const ShardPlan& plan, int worker, int64_t epoch, ShardStreamOptions options,
                         ShardPosition start)
    : impl_(std::make_unique<Impl>(plan, worker, epoch, std::move(options), start)) {
  TORCH_CHECK(worker >= 0 && worker < plan.workers(), "ShardStream: worker ", worker, " of ", plan.workers());
}

ShardStream::~ShardStream() = default;

std::optional<ShardSample> ShardStream::next() {
  Impl& s = *impl_;
  if (!s.has_window || s.taken >= static_cast<int64_t>(s.window.size())) {
    if (!s.refill()) return std::nullopt;
  }
  ++s.emitted;
  return std::move(s.window[size_t(s.taken++)]);
}

ShardPosition ShardStream::position() const {
  const Impl& s = *impl_;
  if (!s.has_window) {
    ShardPosition p = s.window_start;
    p.emitted = s.emitted + s.resume_taken;
    return p;
  }
  if (s.taken < static_cast<int64_t>(s.window.size())) {
    ShardPosition p = s.window_start;
    p.taken = s.taken;
    p.emitted = s.emitted;
    return p;
  }
  // The window is used up: the next one starts where reading stands.
  return ShardPosition{s.pass, s.shard, s.sample, s.window_start.window + 1, 0, s.emitted};
}

ShardCounts ShardStream::counts() const {
  ShardCounts c = impl_->counts;
  if (impl_->reader) c += minus(impl_->reader->counts(), impl_->reader_base);
  return c;
}

std::vector<std::string> ShardStream::take_errors() {
  Impl& s = *impl_;
  if (s.reader) {
    for (std::string& e : s.reader->take_errors()) s.errors.push_back(std::move(e));
  }
  std::vector<std::string> out;
  out.swap(s.errors);
  return out;
}

void load_shard_image(const ShardSample& sample, const ShardImageOptions& options, uint64_t seed, at::Tensor& out) {
  const int64_t n = options.preprocess.size;
  TORCH_CHECK(out.is_contiguous() && out.scalar_type() == at::kFloat && out.sizes() == at::IntArrayRef({3, n, n}),
              "load_shard_image: expected a contiguous float [3, ", n, ", ", n, "], got ", out.toString(), " ",
              out.sizes());
  const std::string source = sample.name() + "." + sample.image_format;
  const uint8_t* data = sample.image.data();
  const size_t size = sample.image.size();

  // The region the output is made from, in full-size pixels: the crop window, or (resize + centre crop) the
  // whole image, whose short side decides the scale.
  auto region = [&](int64_t width, int64_t height) {
    if (options.random_resized_crop) {
      return random_resized_crop_window(width, height, *options.random_resized_crop, seed);
    }
    return Window{0, 0, width, height};
  };

  Image image;
  std::optional<Window> window;
  bool reduced = false;
  if (options.jpeg_dct_scaling && detail::sniff_format(data, size) == detail::Format::jpeg) {
    if (const auto dims = detail::jpeg_dimensions(data, size)) {
      const auto [width, height] = *dims;
      const Window w = region(width, height);
      int denominator = 1;
      for (int d : {8, 4, 2}) {
        if (std::min(w.width, w.height) / d >= n) {
          denominator = d;
          break;
        }
      }
      if (denominator > 1) {
        if (std::optional<Image> small = detail::decode_jpeg_reduced(data, size, denominator, source, options.decode)) {
          image = std::move(*small);
          reduced = true;
          // The window in the reduced image's pixels (its sides are the full ones / d, rounded up).
          const double sx = double(image.width) / double(width), sy = double(image.height) / double(height);
          Window r;
          r.x = std::min<int64_t>(int64_t(double(w.x) * sx), image.width - 1);
          r.y = std::min<int64_t>(int64_t(double(w.y) * sy), image.height - 1);
          r.width = std::clamp<int64_t>(std::llround(double(w.width) * sx), 1, image.width - r.x);
          r.height = std::clamp<int64_t>(std::llround(double(w.height) * sy), 1, image.height - r.y);
          window = r;
        }
      }
    }
  }
  if (!reduced) {
    image = decode_image_bytes(data, size, source, options.decode);
    if (options.random_resized_crop) window = region(image.width, image.height);
  }

  thread_local std::vector<uint8_t> rgb;
  rgb.resize(static_cast<size_t>(n * n * 3));
  if (options.random_resized_crop) {
    resized_crop_rgb(image, *window, options.preprocess, rgb.data());
  } else {
    preprocess_rgb(image, options.preprocess, rgb.data());
  }
  normalize_rgb(rgb.data(), n * n, options.preprocess.mean, options.preprocess.std, out.data_ptr<float>());
}

}  // namespace clip
