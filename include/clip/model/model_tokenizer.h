#pragma once
/// The tokenizer a model reads its ids from.
///
///   clip::ModelConfig config = clip::load_model_config("configs/models/ViT-B-32.json");
///   std::unique_ptr<clip::Tokenizer> tok = clip::load_tokenizer(config.text);
#include <memory>
#include <string>

#include "clip/model/config.h"
#include "clip/text/tokenizer.h"

namespace clip {

/// The tokenizer a model config names (`text_cfg.tokenizer`): the CLIP BPE with its default vocabulary, or a
/// SentencePiece model (a relative path is taken relative to `config_dir`). Checks that its ids fit the
/// model: vocab_size within `text.vocab_size`, and with TextPool::first_eos, its end id equal to
/// `text.eos_token_id`. A config whose tokenizer is a Hugging Face hub tokenizer (`hf_tokenizer_name`: SigLIP's,
/// MetaCLIP 2's) and names no SentencePiece file is refused: libclip does not load those tokenizers yet.
std::unique_ptr<Tokenizer> load_tokenizer(const TextConfig& text, const std::string& config_dir = "");

/// A stand-in for a tokenizer that cannot be loaded (`reason`: load_tokenizer's message): encode throws clip::Error
/// with it, so that an application serving images (clip_serve) still says why a text request fails.
std::unique_ptr<Tokenizer> unavailable_tokenizer(const TextConfig& text, std::string reason);

}  // namespace clip
