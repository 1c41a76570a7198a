#pragma once
/// How an image becomes a model input: size, resize mode, filter, normalization. A model config holds one
/// (ModelConfig::preprocess, read from open_clip's `preprocess_cfg`, its size the tower's image size); the
/// transforms (transform.h) and loaders (loader.h) take one.
///
///   clip::PreprocessOptions o;                     // OpenAI CLIP's: 224, shortest side, bicubic, its mean/std
///   o.resize_mode = clip::parse_resize_mode("squash");
#include <array>
#include <cstdint>
#include <string>

#include "clip/image/resample.h"

namespace clip {

/// open_clip's resize modes.
enum class ResizeMode {
  shortest,  ///< short side to N (long side int(N * long / short)), then centre crop N x N (the reference's)
  longest,   ///< long side to N keeping the aspect ratio, then pad to N x N with `fill` (letterbox)
  squash,    ///< both sides to N, aspect ratio not kept
};

/// Parses "shortest" | "longest" | "squash"; anything else throws clip::Error naming `source`.
ResizeMode parse_resize_mode(const std::string& name, const std::string& source = "resize_mode");

/// Parses "bicubic" | "bilinear"; anything else throws clip::Error naming `source`.
Filter parse_interpolation(const std::string& name, const std::string& source = "interpolation");

/// What preprocessing produces: an N x N RGB image, normalized as (x / 255 - mean) / std per channel.
struct PreprocessOptions {
  int64_t size = 224;                                       ///< N: the output is N x N
  ResizeMode resize_mode = ResizeMode::shortest;
  Filter interpolation = Filter::bicubic;                   ///< bicubic or bilinear
  std::array<double, 3> mean{0.48145466, 0.4578275, 0.40821073};  ///< OpenAI CLIP's
  std::array<double, 3> std{0.26862954, 0.26130258, 0.27577711};
  uint8_t fill = 0;  ///< padding of `longest`, written in the image's own mode (open_clip's fill_color)
};

/// "shortest" | "longest" | "squash".
const char* resize_mode_name(ResizeMode mode);

/// "bicubic" | "bilinear" | "nearest".
const char* interpolation_name(Filter filter);

}  // namespace clip
