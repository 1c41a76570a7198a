#pragma once
/// Embedding in batches: ready-made model inputs, image files, texts.
///
///   clip::TensorMap out = clip::embed_tensors(*model, {{"image", images}, {"text", ids}}, {});
///   clip::ImageEmbeddings e = clip::embed_image_files(*model, clip::image_list("photos/"), {});
///   at::Tensor t = clip::embed_texts(*model, *tokenizer, {"a cat", "a dog"}, {});
#include <cstdint>
#include <string>
#include <vector>

#include "clip/image/loader.h"
#include "clip/io/tensor_map.h"
#include "clip/model/clip_model.h"
#include "clip/text/tokenizer.h"

namespace clip {

/// Options of embed_tensors.
struct EmbedOptions {
  int64_t batch_size = 256;  ///< rows per forward pass
  std::string source = "inputs";  ///< names the inputs in error messages (a file name)
  int workers = 0;           ///< image decoding threads (0: one per core)
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

/// Tokenizes (no truncation: a text over the context length is an error naming it) and embeds texts:
/// [N, D] fp32, L2-normalized.
at::Tensor embed_texts(CLIPImpl& model, const Tokenizer& tokenizer, const std::vector<std::string>& texts,
                       const EmbedOptions& options = {});

/// The images of a folder (recursively, sorted) or the paths listed in a text file, one a line.
std::vector<std::string> image_list(const std::string& folder_or_list);

/// Texts from a file: JSONL objects with a "text" field, or plain lines (blank lines kept out).
std::vector<std::string> read_texts(const std::string& path);

}  // namespace clip
