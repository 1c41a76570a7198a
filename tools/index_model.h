#pragma once
// The model of an image index, for the tools that use one (clip_index update, clip_search): the --checkpoint given,
// else the checkpoint (and config) the index records. Tool code.
#include <filesystem>
#include <string>

#include "clip/index/image_index.h"
#include "clip/model/checkpoint.h"
#include "clip/util/cuda.h"
#include "clip/util/error.h"
#include "model_flags.h"

namespace clip::tools {

/// "auto": CUDA when a device is visible (and the precision is fp32: int8 and bf16 are CPU inference), else the CPU;
/// anything else as given.
inline std::string resolve_device(const std::string& device, const std::string& precision) {
  if (device != "auto") return device;
  if (precision != "fp32") return "cpu";
  return clip::cuda_unavailable_reason().empty() ? "cuda" : "cpu";
}

/// Loads `checkpoint` with `flags` on `device`; with no checkpoint, the one the index in `index_dir` was made with.
/// How an index records the model it was made with: a path made absolute; a hub name or a pretrained tag (with the
/// --model the index records beside it) as given.
inline std::string recorded_checkpoint(const std::string& checkpoint) {
  if (clip::is_hub_model_name(checkpoint) || (clip::is_pretrained_tag(checkpoint) && !std::filesystem::exists(checkpoint))) {
    return checkpoint;
  }
  return std::filesystem::absolute(checkpoint).string();
}

inline clip::CLIP load_index_model(const std::string& index_dir, const clip::IndexInfo& info,
                                   const std::string& checkpoint, ModelFlags flags, const std::string& device) {
  std::string path = checkpoint;
  if (path.empty()) {
    path = info.model_checkpoint;
    if (path.empty()) {
      clip::fail(index_dir, ": records no model (it was made from embeddings); name one with --checkpoint");
    }
    if (!std::filesystem::exists(path) && !clip::is_hub_model_name(path) && !clip::is_pretrained_tag(path)) {
      clip::fail("the index's model ", path, " is not there any more; name it with --checkpoint (the same weights, "
                 "wherever they are now)");
    }
    if (flags.config.empty() && flags.model.empty() && !info.model_config.empty()) {
      (std::filesystem::exists(info.model_config) ? flags.config : flags.model) = info.model_config;
    }
  }
  return clip::load_model(path, flags.options().device(resolve_device(device, flags.precision)));
}

}  // namespace clip::tools
