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
///
/// And open_clip's released weights by model and tag, as `open_clip.create_model("ViT-B-32", pretrained="openai")`:
///
///   clip::CLIP model = clip::load_pretrained("ViT-B-32", "openai");
///   clip::CLIP siglip = clip::load_pretrained("ViT-B-16-SigLIP2", "webli");
#include <memory>
#include <string>
#include <vector>

#include "clip/io/hf_hub.h"
#include "clip/model/checkpoint.h"

namespace clip {

/// Whether `name` is a hub model name rather than a local path (see above).
bool is_hub_model_name(const std::string& name);

/// Fetches what a model needs (config and weights) into the hub cache, or finds it there, and returns the local
/// snapshot folder. Errors say which repo and file, and what to do.
std::string fetch_pretrained(const std::string& name, HubOptions options = {});

/// Whether `name` is a tag open_clip has released weights under for some model ("openai", "webli", ...).
bool is_pretrained_tag(const std::string& name);

/// The tags open_clip 3.3 has released weights under for the config `model` ("openai", "laion2b_s34b_b79k", ...),
/// in open_clip's order; empty for a model without any (or not a config libclip ships).
std::vector<std::string> pretrained_tags(const std::string& model);

/// open_clip's weights `tag` of the config `model`, as open_clip loads them: the weights file of the hub repo
/// open_clip's registry names for the pair (`open_clip_model.safetensors`, else `open_clip_pytorch_model.bin`,
/// fetched into the hub cache when missing), into the shipped config `model` with what the release was trained
/// with (QuickGELU where it was; its mean, std, interpolation and resize mode). An unknown pair throws
/// clip::Error listing the model's tags (or the closest model names). `options` as load_model's (its config,
/// config_path and model_name are set here).
CLIP load_pretrained(const std::string& model, const std::string& tag, LoadOptions options = {},
                     const HubOptions& hub = {});

/// The config load_pretrained builds `model`/`tag` into (without fetching anything).
ModelConfig pretrained_config(const std::string& model, const std::string& tag);

}  // namespace clip
