#pragma once
/// Models by name from the Hugging Face hub, as open_clip's `hf-hub:` and llama.cpp's `-hf` do.
///
///   clip::CLIP model = clip::load_model("hf-hub:timm/ViT-B-16-SigLIP2");   // load_model calls fetch_pretrained
///   std::string dir = clip::fetch_pretrained("google/siglip-base-patch16-224");
///
/// A name is `hf-hub:org/name`, or `org/name` where no file or folder of that name exists here. The repo's files go
/// to the Hugging Face cache (clip/io/hf_hub.h): an open_clip repo (`open_clip_config.json` with
/// `open_clip_model.safetensors` or `open_clip_pytorch_model.bin`) or an HF transformers one (`config.json` with
/// `model.safetensors`, its sharded index and shards, or `pytorch_model.bin`); the snapshot folder is returned and
/// loads like any folder of that layout. `@revision` after the name picks a branch, tag or commit.
#include <string>

#include "clip/io/hf_hub.h"

namespace clip {

/// Whether `name` is a hub model name rather than a local path (see above).
bool is_hub_model_name(const std::string& name);

/// Fetches what a model needs (config and weights) into the hub cache, or finds it there, and returns the local
/// snapshot folder. Errors say which repo and file, and what to do.
std::string fetch_pretrained(const std::string& name, HubOptions options = {});

}  // namespace clip
