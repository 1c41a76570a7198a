#pragma once
/// A threaded loader: image files -> batches of model inputs, decoded ahead of the consumer.
///
///   clip::ImageLoaderOptions options;
///   options.preprocess = model->config().preprocess;
///   clip::ImageLoader loader(paths, options);
///   while (std::optional<clip::ImageBatch> batch = loader.next()) {
///     model->encode_image(batch->images.to(device, /*non_blocking=*/true));     // rows: batch->indices
///     for (const clip::ItemError& e : batch->errors) std::cerr << "error: " << e.message << "\n";
///   }
///
/// Worker threads take items one at a time in input order, decode and preprocess each straight into its row of
/// a preallocated batch, and stop claiming items when `prefetch_batches` batches are waiting, which bounds memory.
/// Each item's result depends only on its file and (with augmentation) on `seed` and its index, so the tensors do
/// not depend on the number of threads or on timing. A file that fails is an ItemError in its batch's report; the
/// other rows of that batch are delivered.
#include <ATen/core/Tensor.h>

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "clip/image/decode.h"
#include "clip/image/transform.h"

namespace clip {

/// What a batch holds per image.
enum class BatchFormat {
  normalized,  ///< float32 [B, 3, N, N], (x / 255 - mean) / std: the model input
  uint8,       ///< uint8 [B, 3, N, N] before normalization (a quarter of the bytes, e.g. to normalize on the GPU)
};

/// How the loader runs.
struct ImageLoaderOptions {
  int64_t batch_size = 64;
  int threads = 0;                 ///< worker threads; 0: one per core
  int64_t prefetch_batches = 4;    ///< batches prepared ahead of the consumer (at least 1)
  bool ordered = true;             ///< batches in input order; false: each batch as soon as it is complete
  BatchFormat format = BatchFormat::normalized;
  bool pin_memory = true;          ///< page-locked batches when CUDA is available (for non-blocking copies)
  PreprocessOptions preprocess;
  DecodeOptions decode;
  /// Training augmentation in place of the resize and centre crop; item i's window is drawn from
  /// item_seed(seed, i).
  std::optional<RandomResizedCropOptions> random_resized_crop;
  uint64_t seed = 0;
  /// When not empty, item i's augmentation is seeded by item_seed(seed, item_indices[i]) instead of by its
  /// position i: a loader over part of a longer list (a resumed epoch, one rank's share of a global batch) then
  /// crops each item as a loader over the whole list would.
  std::vector<uint64_t> item_indices;
  /// Also hash each file's bytes (ImageBatch::sha256), from the same read that decodes it.
  bool hash_content = false;
};

/// A file that could not be read or decoded.
struct ItemError {
  int64_t index = 0;    ///< position in the loader's input list
  std::string path;
  std::string message;  ///< one line, naming the file
};

/// One batch: the images that were read, in input order, and the failures among the batch's items.
struct ImageBatch {
  int64_t batch_index = 0;       ///< items [batch_index * batch_size, ...) of the input
  at::Tensor images;             ///< [rows, 3, N, N]; rows = items of the batch that were read
  std::vector<int64_t> indices;  ///< per row: its position in the input list
  std::vector<ItemError> errors;
  std::vector<std::string> sha256;  ///< per row, with options.hash_content: the file's SHA-256 (64 hex digits)
};

/// Decodes and preprocesses files on worker threads into a bounded queue of batches.
class ImageLoader {
 public:
  ImageLoader(std::vector<std::string> paths, ImageLoaderOptions options);
  ~ImageLoader();  ///< stops and joins the workers (batches not taken are dropped)
  ImageLoader(const ImageLoader&) = delete;
  ImageLoader& operator=(const ImageLoader&) = delete;

  /// The next batch (blocks until it is ready), or nullopt after the last one.
  std::optional<ImageBatch> next();

  int64_t size() const;         ///< number of input files
  double cpu_seconds() const;   ///< CPU time the workers have spent reading, decoding and preprocessing so far
  int64_t num_batches() const;

 private:
  struct State;
  std::unique_ptr<State> state_;
};

/// Reads, decodes and preprocesses one file as the loader does: [3, N, N] float32 or uint8 into `out` (which
/// must be contiguous and of that shape and type). Throws clip::Error naming the file. With `sha256`, also hashes
/// the bytes read into it.
void load_image_into(const std::string& path, const ImageLoaderOptions& options, uint64_t index, at::Tensor& out,
                     std::string* sha256 = nullptr);

}  // namespace clip
