#pragma once
/// Where a text tower pools its sequence into one feature: a property of a tokenizer's ids (the CLIP BPE's end
/// token is its largest id), held by the model config (clip/model/config.h) and reported by Tokenizer::pool().

namespace clip {

enum class TextPool {
  argmax,     ///< at argmax(ids): the CLIP BPE's end token has the largest id (openai/CLIP, open_clip)
  first_eos,  ///< at the first `eos_token_id` (HF transformers, other vocabularies)
  last,       ///< at the last position (SigLIP: texts are padded to the context length)
  first,      ///< at the first position
};

}  // namespace clip
