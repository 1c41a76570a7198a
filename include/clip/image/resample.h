#pragma once
/// Pillow-exact resampling of pixel buffers (what PIL's Image.resize computes), computing only a window of the
/// resized image.
///
///   // 640 x 427 RGB -> 335 x 224, and of that only the centre 224 x 224:
///   clip::ResampleGeometry g{640, 427, 335, 224, {55, 0, 224, 224}};
///   clip::resample_u8(src, 640 * 3, 3, g, clip::Filter::bicubic, dst, 224 * 3);
///
/// The filter is separable: per output pixel, coefficients over a support of `filter_support * max(1, in / out)`
/// source pixels (so downsampling antialiases), normalized to sum 1. For 8-bit samples they are held in fixed point
/// with 22 fractional bits; the horizontal pass runs first into an 8-bit buffer (rounded and clamped), then the
/// vertical pass, except that (as Pillow 13) the vertical pass runs first when the height shrinks by more than twice
/// as many pixels as the width; a pass whose size does not change is skipped. Every output pixel depends only on its own
/// coefficients, so a window of the result is bit-identical to the same window cut from the whole result.
/// No OpenCV, no LibTorch: plain buffers, usable wherever pixels come from.
#include <cstdint>

namespace clip {

/// Resampling filters (Pillow's NEAREST, BILINEAR, BICUBIC with a = -0.5).
enum class Filter { nearest, bilinear, bicubic };

/// A rectangle of pixels: left, top, width, height.
struct Window {
  int64_t x = 0;
  int64_t y = 0;
  int64_t width = 0;
  int64_t height = 0;
};

/// A resize of an in_width x in_height source to out_width x out_height, of which `window` is computed.
struct ResampleGeometry {
  int64_t in_width = 0;
  int64_t in_height = 0;
  int64_t out_width = 0;
  int64_t out_height = 0;
  Window window;  ///< inside [0, out_width) x [0, out_height)
};

/// Resamples 8-bit samples, `channels` (1-4) per pixel, each channel separately (callers premultiply alpha).
/// `src` rows are `src_stride` bytes apart, `dst` rows `dst_stride` bytes apart; dst receives the window.
void resample_u8(const uint8_t* src, int64_t src_stride, int channels, const ResampleGeometry& geometry,
                 Filter filter, uint8_t* dst, int64_t dst_stride);

/// Resamples 16-bit gray held as 32-bit integers, as Pillow 10+ resizes a 16-bit gray PNG (mode I;16):
/// double-precision coefficients, each pass rounded and clipped to 0..65535. Strides in bytes.
void resample_i32(const uint8_t* src, int64_t src_stride, const ResampleGeometry& geometry, Filter filter,
                  uint8_t* dst, int64_t dst_stride);

/// Nearest neighbour as Pillow resizes palette and 1-bit images: output pixel x takes source pixel
/// floor((x + 0.5) * in / out), the position accumulated in double precision as Pillow does. Pixels of
/// `pixel_bytes` bytes are copied whole. Strides in bytes.
void resample_nearest(const uint8_t* src, int64_t src_stride, int64_t pixel_bytes, const ResampleGeometry& geometry,
                      uint8_t* dst, int64_t dst_stride);

}  // namespace clip
