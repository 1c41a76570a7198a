// The reference's preprocessing as one resize of the pixels the crop keeps. Sizes and offsets are computed with
// the reference's own arithmetic (torchvision 0.14, open_clip transform.py), including Python's round-half-even.
#include "clip/image/transform.h"

#include <ATen/ATen.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <vector>

#include "clip/util/error.h"

namespace clip {
namespace {

// Pixels without ownership: an image, or a tensor's data.
struct ImageView {
  const uint8_t* data;
  int64_t width, height, stride;
  PixelMode mode;
  const uint8_t* palette;
};

ImageView view_of(const Image& image) {
  TORCH_CHECK(static_cast<int64_t>(image.pixels.size()) == image.height * image.row_bytes(),
              "Image: ", image.pixels.size(), " bytes of pixels for ", image.width, "x", image.height, " ",
              mode_name(image.mode));
  TORCH_CHECK(image.mode != PixelMode::P || image.palette.size() == 768, "Image: mode P needs a 768-byte palette");
  return {image.pixels.data(), image.width, image.height, image.row_bytes(), image.mode,
          image.palette.empty() ? nullptr : image.palette.data()};
}

// Python's round() of a double: half to even (the default rounding mode).
int64_t round_half_even(double v) { return static_cast<int64_t>(std::nearbyint(v)); }

// Resizes `source` of the image to resized_w x resized_h and writes `window` of the result (which may reach
// outside it; those pixels are `fill`) in the image's own mode, Pillow's way: P and 1 by nearest neighbour,
// RGBA and LA premultiplied, I in integers.
void resize_window(const ImageView& im, const Window& source, int64_t resized_w, int64_t resized_h,
                   const Window& window, Filter filter, uint8_t fill, uint8_t* dst) {
  const int64_t bpp = mode_pixel_bytes(im.mode), dst_stride = window.width * bpp;
  const int64_t x0 = std::max<int64_t>(window.x, 0), x1 = std::min(window.x + window.width, resized_w);
  const int64_t y0 = std::max<int64_t>(window.y, 0), y1 = std::min(window.y + window.height, resized_h);
  const bool padded = x0 > window.x || y0 > window.y || x1 < window.x + window.width || y1 < window.y + window.height;
  if (padded) {
    if (im.mode == PixelMode::I) {
      const int32_t v = fill;
      for (int64_t i = 0; i < window.width * window.height; ++i) std::memcpy(dst + 4 * i, &v, 4);
    } else {
      std::memset(dst, fill, static_cast<size_t>(window.height * dst_stride));
    }
  }
  if (x0 >= x1 || y0 >= y1) return;

  const ResampleGeometry g{source.width, source.height, resized_w, resized_h, {x0, y0, x1 - x0, y1 - y0}};
  const uint8_t* src = im.data + source.y * im.stride + source.x * bpp;
  uint8_t* out = dst + (y0 - window.y) * dst_stride + (x0 - window.x) * bpp;
  const bool same_size = resized_w == source.width && resized_h == source.height;
  if (im.mode == PixelMode::P || im.mode == PixelMode::bilevel || filter == Filter::nearest) {
    resample_nearest(src, im.stride, bpp, g, out, dst_stride);
  } else if (im.mode == PixelMode::I) {
    resample_i32(src, im.stride, g, filter, out, dst_stride);
  } else if ((im.mode == PixelMode::RGBA || im.mode == PixelMode::LA) && !same_size) {
    // Pillow resizes RGBA as RGBa (and LA as La) and converts back afterwards.
    const int64_t row = source.width * bpp;
    std::vector<uint8_t> premultiplied(static_cast<size_t>(source.height * row));
    for (int64_t y = 0; y < source.height; ++y) std::memcpy(&premultiplied[y * row], src + y * im.stride, row);
    premultiply_alpha(premultiplied.data(), im.mode, source.width * source.height);
    resample_u8(premultiplied.data(), row, static_cast<int>(bpp), g, filter, out, dst_stride);
    for (int64_t y = 0; y < g.window.height; ++y) unpremultiply_alpha(out + y * dst_stride, im.mode, g.window.width);
  } else {
    resample_u8(src, im.stride, static_cast<int>(bpp), g, filter, out, dst_stride);
  }
}

// Offset of a centred crop of n out of `size` pixels (negative: padding before). torchvision's CenterCrop rounds
// half to even; open_clip's CenterCropOrPad truncates.
int64_t centre_offset(int64_t size, int64_t n, bool round) {
  if (size < n) return -((n - size) / 2);
  return round ? round_half_even(static_cast<double>(size - n) / 2.0) : (size - n) / 2;
}

void preprocess_view(const ImageView& im, const PreprocessOptions& o, uint8_t* rgb) {
  TORCH_CHECK(o.size > 0, "preprocess: size must be positive, got ", o.size);
  TORCH_CHECK(o.interpolation != Filter::nearest, "preprocess: interpolation must be bicubic or bilinear");
  if (im.width <= 0 || im.height <= 0) fail("preprocess: empty image (", im.width, "x", im.height, ")");
  const int64_t n = o.size, w = im.width, h = im.height;
  int64_t rw = n, rh = n;
  Window window{0, 0, n, n};
  switch (o.resize_mode) {
    case ResizeMode::shortest: {  // torchvision Resize(n): short side n, long side int(n * long / short)
      const int64_t resized_long = static_cast<int64_t>(static_cast<double>(n * std::max(w, h)) /
                                                        static_cast<double>(std::min(w, h)));
      (w <= h ? rh : rw) = resized_long;
      window.x = centre_offset(rw, n, true);
      window.y = centre_offset(rh, n, true);
      break;
    }
    case ResizeMode::longest: {  // open_clip ResizeKeepRatio(longest=1) + CenterCropOrPad
      const double ratio = std::max(static_cast<double>(h) / n, static_cast<double>(w) / n);
      // The reference fails on a side that rounds to 0 pixels; one pixel is the useful answer.
      rh = std::max<int64_t>(1, round_half_even(static_cast<double>(h) / ratio));
      rw = std::max<int64_t>(1, round_half_even(static_cast<double>(w) / ratio));
      window.x = centre_offset(rw, n, false);
      window.y = centre_offset(rh, n, false);
      break;
    }
    case ResizeMode::squash:
      break;
  }
  const bool direct = im.mode == PixelMode::RGB;
  std::vector<uint8_t> own;
  if (!direct) own.resize(static_cast<size_t>(n * n * mode_pixel_bytes(im.mode)));
  uint8_t* out = direct ? rgb : own.data();
  resize_window(im, {0, 0, w, h}, rw, rh, window, o.interpolation, o.fill, out);
  if (!direct) convert_to_rgb(out, im.mode, im.palette, n * n, rgb);
}

struct SplitMix64 {
  uint64_t state;
  uint64_t next() {
    uint64_t z = (state += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
  }
  double uniform(double lo, double hi) { return lo + (hi - lo) * (static_cast<double>(next() >> 11) * 0x1.0p-53); }
  int64_t integer(int64_t lo, int64_t hi) {  // in [lo, hi)
    return std::min(hi - 1, lo + static_cast<int64_t>(uniform(0.0, static_cast<double>(hi - lo))));
  }
};

}  // namespace

uint64_t item_seed(uint64_t seed, uint64_t index) {
  SplitMix64 a{seed};
  SplitMix64 b{a.next() ^ index};
  return b.next();
}

Window random_resized_crop_window(int64_t width, int64_t height, const RandomResizedCropOptions& o, uint64_t seed) {
  TORCH_CHECK(width > 0 && height > 0, "random_resized_crop_window: empty image");
  TORCH_CHECK(o.scale[0] > 0 && o.scale[0] <= o.scale[1] && o.ratio[0] > 0 && o.ratio[0] <= o.ratio[1],
              "random_resized_crop_window: bad scale or ratio range");
  SplitMix64 rng{seed};
  const double area = static_cast<double>(width) * static_cast<double>(height);
  const double log_r0 = std::log(o.ratio[0]), log_r1 = std::log(o.ratio[1]);
  for (int attempt = 0; attempt < 10; ++attempt) {
    const double target_area = area * rng.uniform(o.scale[0], o.scale[1]);
    const double aspect = std::exp(rng.uniform(log_r0, log_r1));
    const int64_t w = round_half_even(std::sqrt(target_area * aspect));
    const int64_t h = round_half_even(std::sqrt(target_area / aspect));
    if (0 < w && w <= width && 0 < h && h <= height) {
      const int64_t top = rng.integer(0, height - h + 1);
      const int64_t left = rng.integer(0, width - w + 1);
      return {left, top, w, h};
    }
  }
  // torchvision's fallback: the centred crop of the nearest allowed aspect ratio.
  const double in_ratio = static_cast<double>(width) / static_cast<double>(height);
  int64_t w = width, h = height;
  if (in_ratio < o.ratio[0]) {
    h = round_half_even(static_cast<double>(w) / o.ratio[0]);
  } else if (in_ratio > o.ratio[1]) {
    w = round_half_even(static_cast<double>(h) * o.ratio[1]);
  }
  return {(width - w) / 2, (height - h) / 2, w, h};
}

void preprocess_rgb(const Image& image, const PreprocessOptions& options, uint8_t* rgb) {
  preprocess_view(view_of(image), options, rgb);
}

void resized_crop_rgb(const Image& image, const Window& s, const PreprocessOptions& o, uint8_t* rgb) {
  TORCH_CHECK(o.size > 0, "resized_crop_rgb: size must be positive, got ", o.size);
  TORCH_CHECK(s.x >= 0 && s.y >= 0 && s.width > 0 && s.height > 0 && s.x + s.width <= image.width &&
                  s.y + s.height <= image.height,
              "resized_crop_rgb: window ", s.x, ",", s.y, " ", s.width, "x", s.height, " outside the ", image.width,
              "x", image.height, " image");
  const ImageView im = view_of(image);
  const int64_t n = o.size;
  std::vector<uint8_t> own(static_cast<size_t>(n * n * mode_pixel_bytes(im.mode)));
  resize_window(im, s, n, n, {0, 0, n, n}, o.interpolation, o.fill, own.data());
  convert_to_rgb(own.data(), im.mode, im.palette, n * n, rgb);
}

void normalize_rgb(const uint8_t* rgb, int64_t pixels, const std::array<double, 3>& mean,
                   const std::array<double, 3>& std, float* planes) {
  // ToTensor divides by 255 in float32, Normalize subtracts and divides by float32 mean and std: a table per
  // channel holds exactly those results.
  float table[3][256];
  for (int c = 0; c < 3; ++c) {
    const float m = static_cast<float>(mean[c]), s = static_cast<float>(std[c]);
    for (int v = 0; v < 256; ++v) table[c][v] = (static_cast<float>(v) / 255.0f - m) / s;
  }
  float *r = planes, *g = planes + pixels, *b = planes + 2 * pixels;
  for (int64_t i = 0; i < pixels; ++i, rgb += 3) {
    r[i] = table[0][rgb[0]];
    g[i] = table[1][rgb[1]];
    b[i] = table[2][rgb[2]];
  }
}

void rgb_to_planes(const uint8_t* rgb, int64_t pixels, uint8_t* planes) {
  for (int64_t i = 0; i < pixels; ++i, rgb += 3) {
    planes[i] = rgb[0];
    planes[pixels + i] = rgb[1];
    planes[2 * pixels + i] = rgb[2];
  }
}

at::Tensor preprocess(const Image& image, const PreprocessOptions& options) {
  const int64_t n = options.size;
  std::vector<uint8_t> rgb(static_cast<size_t>(n * n * 3));
  preprocess_rgb(image, options, rgb.data());
  at::Tensor out = at::empty({3, n, n}, at::kFloat);
  normalize_rgb(rgb.data(), n * n, options.mean, options.std, out.data_ptr<float>());
  return out;
}

at::Tensor preprocess_rgb_tensor(const at::Tensor& rgb, const PreprocessOptions& options) {
  TORCH_CHECK(rgb.dim() == 3 && rgb.size(2) == 3 && rgb.scalar_type() == at::kByte && rgb.device().is_cpu(),
              "preprocess_rgb_tensor: expected a CPU uint8 tensor [H, W, 3], got ", rgb.toString(), " ",
              rgb.sizes());
  const at::Tensor c = rgb.contiguous();
  const ImageView view{c.data_ptr<uint8_t>(), c.size(1), c.size(0), c.size(1) * 3, PixelMode::RGB, nullptr};
  const int64_t n = options.size;
  std::vector<uint8_t> out_rgb(static_cast<size_t>(n * n * 3));
  preprocess_view(view, options, out_rgb.data());
  at::Tensor out = at::empty({3, n, n}, at::kFloat);
  normalize_rgb(out_rgb.data(), n * n, options.mean, options.std, out.data_ptr<float>());
  return out;
}

}  // namespace clip
