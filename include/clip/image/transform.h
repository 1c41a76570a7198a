#pragma once
/// Model-input preprocessing that reproduces the reference's to the pixel: openai/CLIP's Resize(N, BICUBIC),
/// CenterCrop(N), convert("RGB"), ToTensor, Normalize; open_clip's resize modes and RandomResizedCrop.
///
///   const clip::PreprocessOptions& options = model->config().preprocess;   // or your own
///   at::Tensor x = clip::preprocess(clip::decode_image("cat.jpg"), options);   // [3, 224, 224] float32
///
/// The resize runs in the image's own mode (see image.h) with Pillow's resampling (resample.h), only over the
/// pixels the crop keeps; the conversion to RGB comes last, as in the reference.
#include <ATen/core/Tensor.h>

#include <array>
#include <cstdint>
#include <string>

#include "clip/image/image.h"
#include "clip/image/preprocess_options.h"
#include "clip/image/resample.h"

namespace clip {

/// open_clip's training crop (torchvision RandomResizedCrop): a window of scale x the area and aspect ratio in
/// `ratio` (log-uniform), resized to N x N.
struct RandomResizedCropOptions {
  std::array<double, 2> scale{0.9, 1.0};
  std::array<double, 2> ratio{3.0 / 4.0, 4.0 / 3.0};
};

/// The source window RandomResizedCrop picks for an image of width x height: torchvision's algorithm (ten tries,
/// then the centred fallback) driven by a generator seeded with `seed` alone, so the same seed gives the same
/// window on every machine and thread.
Window random_resized_crop_window(int64_t width, int64_t height, const RandomResizedCropOptions& options,
                                  uint64_t seed);

/// A 64-bit seed for item `index` of a stream seeded with `seed` (SplitMix64 of both).
uint64_t item_seed(uint64_t seed, uint64_t index);

/// Preprocesses into an N x N x 3 RGB buffer (rows, then pixels, then channels), before normalization.
void preprocess_rgb(const Image& image, const PreprocessOptions& options, uint8_t* rgb);

/// Crops `source` (inside the image) and resizes it to N x N, as torchvision's resized_crop: the augmentation's
/// output, before normalization, into an N x N x 3 RGB buffer.
void resized_crop_rgb(const Image& image, const Window& source, const PreprocessOptions& options, uint8_t* rgb);

/// Normalizes `pixels` RGB pixels (interleaved) into three planes of float: ((v / 255) - mean) / std in float32,
/// as ToTensor and Normalize compute it, bit for bit.
void normalize_rgb(const uint8_t* rgb, int64_t pixels, const std::array<double, 3>& mean,
                   const std::array<double, 3>& std, float* planes);

/// Writes the three planes of an interleaved RGB buffer as bytes (a [3, H, W] uint8 layout).
void rgb_to_planes(const uint8_t* rgb, int64_t pixels, uint8_t* planes);

/// The model input of one image: [3, N, N] float32, normalized.
at::Tensor preprocess(const Image& image, const PreprocessOptions& options);

/// The same from an RGB image already in a tensor: [H, W, 3] uint8 on the CPU (e.g. decoded by another library).
at::Tensor preprocess_rgb_tensor(const at::Tensor& rgb, const PreprocessOptions& options);

}  // namespace clip
