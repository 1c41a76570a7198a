#pragma once
/// Embedding in batches: ready-made model inputs, image files, texts. The one path from image files to
/// features (ImageFeatureStream) and the one from texts to features (embed_texts) that clip_embed, zero-shot
/// classification and the evaluations during training all use.
///
///   clip::TensorMap out = clip::embed_tensors(*model, {{"image", images}, {"text", ids}}, {});
///   clip::ImageEmbeddings e = clip::embed_image_files(*model, clip::image_list("photos/"), {});
///   at::Tensor t = clip::embed_texts(*model, *tokenizer, {"a cat", "a dog"}, {});
///
///   clip::ImageFeatureStream stream(*model, paths, {});      // batch by batch, for work of your own per batch
///   while (auto batch = stream.next()) use(batch->features, batch->indices);
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "clip/image/loader.h"
#include "clip/io/tensor_map.h"
#include "clip/model/clip_model.h"
#include "clip/text/tokenizer.h"
#include "clip/util/cpu_split.h"

namespace clip {

/// Options of embed_tensors.
struct EmbedOptions {
  int64_t batch_size = 256;  ///< rows per forward pass
  std::string source = "inputs";  ///< names the inputs in error messages (a file name)
  int workers = 0;           ///< image decoding threads (0: one per core)
  bool truncate = false;     ///< embed_texts: cut texts longer than the context (else an error naming the text)
  bool hash_content = false; ///< ImageFeatureStream: also each file's SHA-256, from the read that decodes it
};

/// One batch of image files' features.
struct ImageFeatureBatch {
  at::Tensor features;            ///< [rows, D] as the image tower gives them (not normalized), on the model's
                                  ///< device; made under InferenceMode
  std::vector<int64_t> indices;   ///< per row: its position in the input list
  std::vector<ItemError> errors;  ///< the batch's files that could not be read (not fatal)
  std::vector<std::string> sha256;  ///< per row, with EmbedOptions::hash_content: the file's SHA-256
};

/// Image files to features, batch by batch: loader threads decode and preprocess ahead (the model config's
/// preprocessing), the model encodes each batch in eval mode under InferenceMode (its training mode is restored
/// when the stream ends).
class ImageFeatureStream {
 public:
  ImageFeatureStream(CLIPImpl& model, std::vector<std::string> paths, const EmbedOptions& options = {});
  ~ImageFeatureStream();
  ImageFeatureStream(const ImageFeatureStream&) = delete;
  ImageFeatureStream& operator=(const ImageFeatureStream&) = delete;

  /// The next batch, or nullopt after the last one. A batch may have no rows (all its files failed).
  std::optional<ImageFeatureBatch> next();
  int64_t size() const;          ///< number of input files
  double wait_seconds() const;   ///< time next() spent waiting for decoded images
  double model_seconds() const;  ///< time spent in the model
  CpuSplit cpu_split() const;    ///< since the stream was made

 private:
  struct State;
  std::unique_ptr<State> state_;
};

/// Embeddings of image files, in input order, without the unreadable ones.
struct ImageEmbeddings {
  at::Tensor embeddings;           ///< [N_read, D] fp32, L2-normalized
  std::vector<std::string> paths;  ///< the files read, in input order
  std::vector<ItemError> errors;   ///< the files skipped
};

/// Reads `image` [B, 3, R, R] (floating point, normalized) and/or `text` [T, L] (integer token ids) and returns
/// `image_features` / `text_features` (projected, not normalized; fp32 on the CPU) and, when both are given,
/// `logits_per_image` [B, T] and `logits_per_text` [T, B]. Inputs that do not fit the model (resolution,
/// context length, ids outside the vocabulary, dtype, rank) throw clip::Error naming `source`.
TensorMap embed_tensors(CLIPImpl& model, const TensorMap& inputs, const EmbedOptions& options = {});

/// Decodes and preprocesses files as the model's config says (loader threads ahead of the model) and embeds
/// them; unreadable files are reported in `errors`, not fatal. Throws clip::Error when none can be read.
ImageEmbeddings embed_image_files(CLIPImpl& model, const std::vector<std::string>& paths,
                                  const EmbedOptions& options = {});

/// Tokenizes (without options.truncate, a text over the context length is an error naming it) and embeds texts
/// in batches: [N, D] fp32 on the CPU, L2-normalized.
at::Tensor embed_texts(CLIPImpl& model, const Tokenizer& tokenizer, const std::vector<std::string>& texts,
                       const EmbedOptions& options = {});

/// The images of a folder (recursively, sorted) or the paths listed in a text file, one a line.
std::vector<std::string> image_list(const std::string& folder_or_list);

/// Texts from a file: JSONL objects with a "text" field, or plain lines (blank lines kept out).
std::vector<std::string> read_texts(const std::string& path);

}  // namespace clip
