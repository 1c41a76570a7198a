#include "clip/image/loader.h"

#include <ATen/ATen.h>
#include <ATen/Context.h>

#include <algorithm>
#include <condition_variable>
#include <map>
#include <mutex>
#include <thread>

#include "clip/util/error.h"
#include "clip/util/sha256.h"
#include "util/clock.h"
#include "util/file.h"

namespace clip {

void load_image_into(const std::string& path, const ImageLoaderOptions& options, uint64_t index, at::Tensor& out,
                     std::string* sha256) {
  const int64_t n = options.preprocess.size;
  const at::ScalarType type = options.format == BatchFormat::normalized ? at::kFloat : at::kByte;
  TORCH_CHECK(out.is_contiguous() && out.scalar_type() == type && out.sizes() == at::IntArrayRef({3, n, n}),
              "load_image_into: expected a contiguous ", at::toString(type), " [3, ", n, ", ", n, "], got ",
              out.toString(), " ", out.sizes());
  Image image;
  if (sha256) {
    const std::string bytes = read_file(path, "file");
    Sha256 hash;
    hash.update(bytes.data(), bytes.size());
    *sha256 = hash.hex_digest();
    image = decode_image_bytes(reinterpret_cast<const uint8_t*>(bytes.data()), bytes.size(), path, options.decode);
  } else {
    image = decode_image(path, options.decode);
  }
  thread_local std::vector<uint8_t> rgb;
  rgb.resize(static_cast<size_t>(n * n * 3));
  if (options.random_resized_crop) {
    const Window window = random_resized_crop_window(image.width, image.height, *options.random_resized_crop,
                                                     item_seed(options.seed, options.item_indices.empty()
                                                                               ? index
                                                                               : options.item_indices.at(index)));
    resized_crop_rgb(image, window, options.preprocess, rgb.data());
  } else {
    preprocess_rgb(image, options.preprocess, rgb.data());
  }
  if (options.format == BatchFormat::normalized) {
    normalize_rgb(rgb.data(), n * n, options.preprocess.mean, options.preprocess.std, out.data_ptr<float>());
  } else {
    rgb_to_planes(rgb.data(), n * n, out.data_ptr<uint8_t>());
  }
}

namespace {

// A batch being filled by the workers.
struct Slot {
  at::Tensor images;
  std::vector<ItemError> errors;
  std::vector<std::string> sha256;  // per item of the batch, with options.hash_content
  int64_t remaining = 0;
};

}  // namespace

struct ImageLoader::State {
  std::vector<std::string> paths;
  ImageLoaderOptions options;
  int64_t batches = 0;

  std::mutex mutex;
  std::condition_variable work;   // workers wait for room in the queue
  std::condition_variable ready;  // the consumer waits for a complete batch
  int64_t next_item = 0;
  int64_t delivered = 0;          // batches handed to the consumer
  int64_t next_ordered = 0;
  bool stop = false;
  double cpu_seconds = 0;         // the workers' CPU time on items
  std::string fatal;              // a failure of the whole loader (a batch that cannot be allocated), for next()
  std::map<int64_t, Slot> slots;  // claimed and not yet delivered
  std::vector<std::thread> workers;

  int64_t rows_of(int64_t batch) const {
    return std::min(options.batch_size, static_cast<int64_t>(paths.size()) - batch * options.batch_size);
  }

  void run() {
    const int64_t total = static_cast<int64_t>(paths.size()), n = options.preprocess.size;
    const auto type = options.format == BatchFormat::normalized ? at::kFloat : at::kByte;
    const bool pin = options.pin_memory && at::hasCUDA();
    for (;;) {
      std::unique_lock<std::mutex> lock(mutex);
      work.wait(lock, [&] {
        return stop || next_item >= total || next_item / options.batch_size < delivered + options.prefetch_batches;
      });
      if (stop || next_item >= total) return;
      const int64_t item = next_item++, batch = item / options.batch_size;
      Slot& slot = slots[batch];
      if (!slot.images.defined()) {
        slot.remaining = rows_of(batch);
        if (options.hash_content) slot.sha256.resize(static_cast<size_t>(slot.remaining));
        try {
          slot.images = at::empty({slot.remaining, 3, n, n}, at::TensorOptions().dtype(type).pinned_memory(pin));
        } catch (const std::exception&) {  // out of memory: the consumer is told, no thread dies with it
          const double gb = double(slot.remaining) * 3 * double(n) * double(n) * (type == at::kFloat ? 4 : 1) / 1e9;
          fatal = str("cannot allocate a batch of ", slot.remaining, " x 3 x ", n, " x ", n, " (", gb,
                      " GB); lower the image size or the batch size");
          stop = true;
          ready.notify_all();
          work.notify_all();
          return;
        }
      }
      at::Tensor row = slot.images[item - batch * options.batch_size];
      // Each worker writes its own element; the vector was sized when the slot was made and is not resized.
      std::string* sha256 = options.hash_content ? &slot.sha256[size_t(item - batch * options.batch_size)] : nullptr;
      lock.unlock();

      std::optional<ItemError> error;
      const double cpu_start = thread_cpu_seconds();
      try {
        load_image_into(paths[item], options, static_cast<uint64_t>(item), row, sha256);
      } catch (const std::exception& e) {
        error = ItemError{item, paths[item], error_message(e)};
      } catch (...) {
        error = ItemError{item, paths[item], paths[item] + ": unknown error"};
      }

      const double cpu = thread_cpu_seconds() - cpu_start;
      lock.lock();
      cpu_seconds += cpu;
      Slot& done = slots[batch];
      if (error) done.errors.push_back(std::move(*error));
      if (--done.remaining == 0) ready.notify_all();
    }
  }

  bool complete(int64_t batch) const {
    const auto it = slots.find(batch);
    return it != slots.end() && it->second.remaining == 0 && it->second.images.defined();
  }
};

ImageLoader::ImageLoader(std::vector<std::string> paths, ImageLoaderOptions options)
    : state_(std::make_unique<State>()) {
  TORCH_CHECK(options.batch_size > 0, "ImageLoader: batch_size must be positive, got ", options.batch_size);
  TORCH_CHECK(options.prefetch_batches > 0, "ImageLoader: prefetch_batches must be positive");
  TORCH_CHECK(options.preprocess.size > 0, "ImageLoader: size must be positive");
  TORCH_CHECK(options.item_indices.empty() || options.item_indices.size() == paths.size(), "ImageLoader: ",
              options.item_indices.size(), " item_indices for ", paths.size(), " paths");
  State& s = *state_;
  s.paths = std::move(paths);
  s.options = std::move(options);
  const int64_t total = static_cast<int64_t>(s.paths.size());
  s.batches = (total + s.options.batch_size - 1) / s.options.batch_size;
  int64_t threads = s.options.threads > 0 ? s.options.threads : std::max(1u, std::thread::hardware_concurrency());
  threads = std::min(threads, std::max<int64_t>(total, 1));
  for (int64_t i = 0; i < threads; ++i) s.workers.emplace_back([&s] { s.run(); });
}

ImageLoader::~ImageLoader() {
  {
    std::lock_guard<std::mutex> lock(state_->mutex);
    state_->stop = true;
  }
  state_->work.notify_all();
  for (std::thread& t : state_->workers) t.join();
}

int64_t ImageLoader::size() const { return static_cast<int64_t>(state_->paths.size()); }

double ImageLoader::cpu_seconds() const {
  std::lock_guard<std::mutex> lock(state_->mutex);
  return state_->cpu_seconds;
}
int64_t ImageLoader::num_batches() const { return state_->batches; }

std::optional<ImageBatch> ImageLoader::next() {
  State& s = *state_;
  std::unique_lock<std::mutex> lock(s.mutex);
  if (s.delivered >= s.batches) return std::nullopt;
  int64_t batch = -1;
  s.ready.wait(lock, [&] {
    if (!s.fatal.empty()) return true;
    if (s.options.ordered) {
      batch = s.next_ordered;
      return s.complete(batch);
    }
    for (const auto& [index, slot] : s.slots) {
      if (slot.remaining == 0 && slot.images.defined()) return (batch = index), true;
    }
    return false;
  });
  if (!s.fatal.empty()) fail(s.fatal);
  Slot slot = std::move(s.slots.at(batch));
  s.slots.erase(batch);
  if (s.options.ordered) ++s.next_ordered;
  ++s.delivered;
  lock.unlock();
  s.work.notify_all();

  ImageBatch out;
  out.batch_index = batch;
  out.errors = std::move(slot.errors);
  std::sort(out.errors.begin(), out.errors.end(), [](const ItemError& a, const ItemError& b) { return a.index < b.index; });
  const int64_t first = batch * s.options.batch_size, rows = slot.images.size(0);
  std::vector<int64_t> keep;
  size_t e = 0;
  for (int64_t r = 0; r < rows; ++r) {
    if (e < out.errors.size() && out.errors[e].index == first + r) {
      ++e;
      continue;
    }
    keep.push_back(r);
    out.indices.push_back(first + r);
    if (!slot.sha256.empty()) out.sha256.push_back(std::move(slot.sha256[size_t(r)]));
  }
  if (static_cast<int64_t>(keep.size()) == rows) {
    out.images = slot.images;
  } else {  // drop the rows of failed items, into memory pinned as the batch's was
    std::vector<int64_t> shape = slot.images.sizes().vec();
    shape[0] = static_cast<int64_t>(keep.size());
    out.images = at::empty(shape, slot.images.options().pinned_memory(slot.images.is_pinned()));
    at::index_select_out(out.images, slot.images, 0, at::tensor(keep, at::kLong));
  }
  return out;
}

}  // namespace clip
