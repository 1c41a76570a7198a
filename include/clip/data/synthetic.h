#pragma once
/// Random model inputs shaped like real ones: for benchmarks, tests and smoke runs of training
/// (`clip_train --train-data synthetic`, `clip_bench`).
///
///   at::Generator gen = at::detail::createCPUGenerator(seed);
///   at::Tensor texts = clip::synthetic_texts(config.text, 32, gen);     // [32, 77] int64
///   at::Tensor images = clip::synthetic_images(config, 32, gen);        // [32, 3, 224, 224] float32
#include <ATen/core/Generator.h>
#include <ATen/core/Tensor.h>

#include <cstdint>

#include "clip/model/config.h"

namespace clip {

/// Token ids framed as the model's tokenizer frames them, so the text tower pools where it would on real text:
/// for TextPool::argmax (the CLIP BPE's layout) the start id vocab_size - 2, words in [1, vocab_size - 2), the
/// end id vocab_size - 1; for TextPool::first_eos, words in [1, vocab_size) other than eos_token_id, then
/// eos_token_id. Each row: (start id,) 1 or more words, the end id, zeros to the end of the context.
at::Tensor synthetic_texts(const TextConfig& text, int64_t batch, at::Generator& gen);

/// Standard-normal images [batch, 3, image_size, image_size] float32 (the scale of normalized pixels).
at::Tensor synthetic_images(const ModelConfig& config, int64_t batch, at::Generator& gen);

}  // namespace clip
