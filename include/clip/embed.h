#pragma once
/// Embedding ready-made model inputs in batches.
///
///   clip::TensorMap out = clip::embed_tensors(*model, {{"image", images}, {"text", ids}}, {});
///   // out: image_features, text_features, logits_per_image, logits_per_text
#include <cstdint>
#include <string>

#include "clip/io/tensor_map.h"
#include "clip/model/clip_model.h"

namespace clip {

/// Options of embed_tensors.
struct EmbedOptions {
  int64_t batch_size = 256;  ///< rows per forward pass
  std::string source = "inputs";  ///< names the inputs in error messages (a file name)
};

/// Reads `image` [B, 3, R, R] (floating point, normalized) and/or `text` [T, L] (integer token ids) and returns
/// `image_features` / `text_features` (projected, not normalized; fp32 on the CPU) and, when both are given,
/// `logits_per_image` [B, T] and `logits_per_text` [T, B]. Inputs that do not fit the model (resolution,
/// context length, ids outside the vocabulary, dtype, rank) throw clip::Error naming `source`.
TensorMap embed_tensors(CLIPImpl& model, const TensorMap& inputs, const EmbedOptions& options = {});

}  // namespace clip
