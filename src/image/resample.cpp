// Pillow's ImagingResample (libImaging/Resample.c) re-derived: the same coefficients, bit for bit, and the same
// integer arithmetic, restricted to the output window that is asked for. Integer sums are exact, so the order in
// which the kernels add taps is free (they vectorize); the double-precision path of mode I keeps Pillow's order.
#include "clip/image/resample.h"

#include <c10/util/Exception.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <vector>

#include "image/simd.h"

namespace clip {
namespace {

// 8 bits of result, 2 bits of headroom for filters with negative lobes: Pillow's PRECISION_BITS.
constexpr int kPrecisionBits = 32 - 8 - 2;

double bicubic(double x) {
  constexpr double a = -0.5;
  if (x < 0.0) x = -x;
  if (x < 1.0) return ((a + 2.0) * x - (a + 3.0)) * x * x + 1;
  if (x < 2.0) return (((x - 5) * x + 8) * x - 4) * a;
  return 0.0;
}

double bilinear(double x) {
  if (x < 0.0) x = -x;
  return x < 1.0 ? 1.0 - x : 0.0;
}

// Coefficients of output pixels [begin, begin + count) of a resize from in_size to out_size.
struct Taps {
  int64_t ksize = 0;             // coefficient slots per output pixel
  int64_t kstride = 0;           // ksize rounded up to 8: rows of `fixed`, zero-padded for 8-wide loads
  std::vector<int32_t> first;    // first source pixel
  std::vector<int32_t> n;        // number of source pixels
  std::vector<double> weights;   // ksize per output pixel, normalized
  std::vector<int32_t> fixed;    // the same in fixed point (kPrecisionBits fractional bits), kstride apart

  int64_t source_begin() const { return first.front(); }
  int64_t source_end() const { return first.back() + n.back(); }
};

Taps compute_taps(int64_t in_size, int64_t out_size, int64_t begin, int64_t count, Filter filter) {
  TORCH_CHECK(filter != Filter::nearest, "compute_taps: nearest has no coefficients");
  double (*fn)(double) = filter == Filter::bicubic ? bicubic : bilinear;
  const double filter_support = filter == Filter::bicubic ? 2.0 : 1.0;
  // Pillow: scale = (double)(in1 - in0) / outSize with the box edges as floats; in0 = 0, in1 = in_size.
  const double scale = static_cast<double>(static_cast<float>(in_size)) / static_cast<double>(out_size);
  const double filterscale = std::max(scale, 1.0);
  const double support = filter_support * filterscale;
  Taps t;
  t.ksize = static_cast<int64_t>(std::ceil(support)) * 2 + 1;
  t.first.resize(count);
  t.n.resize(count);
  t.weights.assign(count * t.ksize, 0.0);
  t.kstride = (t.ksize + 7) & ~int64_t{7};
  t.fixed.assign(count * t.kstride, 0);
  const double ss = 1.0 / filterscale;
  for (int64_t i = 0; i < count; ++i) {
    const int64_t xx = begin + i;
    const double center = 0.0 + (static_cast<double>(xx) + 0.5) * scale;
    int xmin = static_cast<int>(center - support + 0.5);
    if (xmin < 0) xmin = 0;
    int xmax = static_cast<int>(center + support + 0.5);
    if (xmax > in_size) xmax = static_cast<int>(in_size);
    xmax -= xmin;
    double* k = t.weights.data() + i * t.ksize;
    double ww = 0.0;
    for (int x = 0; x < xmax; ++x) {
      const double w = fn((x + xmin - center + 0.5) * ss);
      k[x] = w;
      ww += w;
    }
    if (ww != 0.0) {
      for (int x = 0; x < xmax; ++x) k[x] /= ww;
    }
    t.first[i] = xmin;
    t.n[i] = xmax;
  }
  for (int64_t i = 0; i < count; ++i) {
    for (int64_t x = 0; x < t.ksize; ++x) {
      const double w = t.weights[i * t.ksize + x] * (1 << kPrecisionBits);
      t.fixed[i * t.kstride + x] = static_cast<int32_t>(w < 0 ? -0.5 + w : 0.5 + w);
    }
  }
  return t;
}

void horizontal_pass(const uint8_t* src, int64_t src_stride, int64_t rows, int64_t row_pixels, int channels,
                     const Taps& t, int64_t count, uint8_t* dst, int64_t dst_stride) {
  simd::Taps8 taps{t.first.data(), t.n.data(), t.fixed.data(), t.kstride};
  std::vector<int16_t> weights16;
  if (channels >= 3) {
    weights16.resize(static_cast<size_t>(count * t.kstride * 8));
    simd::expand_weights(taps, count, channels, weights16.data());
    taps.weights16 = weights16.data();
  }
  int64_t y = 0;
  for (; y + 2 <= rows; y += 2) {
    simd::horizontal_rows2(src + y * src_stride, src + (y + 1) * src_stride, row_pixels, channels, taps, count,
                           dst + y * dst_stride, dst + (y + 1) * dst_stride);
  }
  if (y < rows) simd::horizontal_row(src + y * src_stride, row_pixels, channels, taps, count, dst + y * dst_stride);
}

// Output rows of the vertical pass; `src` starts at the source row that row offset 0 of the taps refers to.
void vertical_pass(const uint8_t* src, int64_t src_stride, int64_t row_len, const Taps& t, int64_t row_offset,
                   int64_t count, uint8_t* dst, int64_t dst_stride) {
  std::vector<int32_t> acc(row_len);
  for (int64_t y = 0; y < count; ++y) {
    const int32_t* k = t.fixed.data() + y * t.kstride;
    const uint8_t* rows = src + (t.first[y] - row_offset) * src_stride;
    simd::vertical_taps(rows, src_stride, k, t.n[y], row_len, acc.data());
    simd::clip_row(acc.data(), row_len, dst + y * dst_stride);
  }
}

inline int32_t round_up(double f) { return static_cast<int32_t>(f >= 0.0 ? f + 0.5 : f - 0.5); }

inline int32_t load_i32(const uint8_t* p) {
  int32_t v;
  std::memcpy(&v, p, 4);
  return v;
}

void check_geometry(const ResampleGeometry& g) {
  const Window& w = g.window;
  TORCH_CHECK(g.in_width > 0 && g.in_height > 0 && g.out_width > 0 && g.out_height > 0,
              "resample: empty size ", g.in_width, "x", g.in_height, " -> ", g.out_width, "x", g.out_height);
  TORCH_CHECK(w.x >= 0 && w.y >= 0 && w.width > 0 && w.height > 0 && w.x + w.width <= g.out_width &&
                  w.y + w.height <= g.out_height,
              "resample: window ", w.x, ",", w.y, " ", w.width, "x", w.height, " outside ", g.out_width, "x",
              g.out_height);
}

void copy_window(const uint8_t* src, int64_t src_stride, int64_t pixel_bytes, const Window& w, uint8_t* dst,
                 int64_t dst_stride) {
  for (int64_t y = 0; y < w.height; ++y) {
    std::memcpy(dst + y * dst_stride, src + (w.y + y) * src_stride + w.x * pixel_bytes,
                static_cast<size_t>(w.width * pixel_bytes));
  }
}

}  // namespace

namespace {

// The two-pass driver both pixel types share: the vertical taps decide which source rows the window needs; the
// horizontal pass (when the width changes) writes them into a temporary (or straight to dst when the height does
// not change); the vertical pass reads that. `horizontal_step(rows, stride, n, taps, out, out_stride)` and
// `vertical_step(rows, stride, taps, row_offset, dst, dst_stride)` do the arithmetic of one pixel type.
template <typename Horizontal, typename Vertical>
void resample_separable(const uint8_t* src, int64_t src_stride, int64_t pixel_bytes, const ResampleGeometry& g,
                        Filter filter, uint8_t* dst, int64_t dst_stride, Horizontal horizontal_step,
                        Vertical vertical_step) {
  const Window& w = g.window;
  const bool resize_width = g.out_width != g.in_width, resize_height = g.out_height != g.in_height;
  if (!resize_width && !resize_height) return copy_window(src, src_stride, pixel_bytes, w, dst, dst_stride);

  // Source rows the window needs: all of its vertical taps, or just its own rows when there is no vertical pass.
  Taps vt;
  int64_t row_begin = w.y, row_end = w.y + w.height;
  if (resize_height) {
    vt = compute_taps(g.in_height, g.out_height, w.y, w.height, filter);
    row_begin = vt.source_begin();
    row_end = vt.source_end();
  }
  // Pillow 13 (python-pillow/Pillow#9549) runs the vertical pass first when the height shrinks by more than twice
  // as many pixels as the width; the order changes the rounding of the 8-bit (and clipping of the 16-bit)
  // intermediate, so it is followed exactly.
  const bool vertical_first = resize_width && resize_height && g.out_height < g.in_height &&
                              g.in_height - g.out_height > 2 * (g.in_width - g.out_width);
  if (vertical_first) {
    const Taps ht = compute_taps(g.in_width, g.out_width, w.x, w.width, filter);
    const int64_t col_begin = ht.source_begin(), col_end = ht.source_end();
    // The window's rows at every source column it needs, kept at their source positions (the horizontal taps index
    // source columns).
    const int64_t temp_stride = g.in_width * pixel_bytes;
    std::vector<uint8_t> temp(static_cast<size_t>(w.height * temp_stride));
    vertical_step(src + row_begin * src_stride + col_begin * pixel_bytes, src_stride, vt, row_begin,
                  col_end - col_begin, temp.data() + col_begin * pixel_bytes, temp_stride);
    horizontal_step(temp.data(), temp_stride, w.height, ht, dst, dst_stride);
    return;
  }
  const uint8_t* rows = src + row_begin * src_stride;
  int64_t rows_stride = src_stride;
  std::vector<uint8_t> temp;
  if (resize_width) {
    const Taps ht = compute_taps(g.in_width, g.out_width, w.x, w.width, filter);
    const int64_t temp_stride = w.width * pixel_bytes;
    temp.resize(static_cast<size_t>((row_end - row_begin) * temp_stride));
    uint8_t* out = resize_height ? temp.data() : dst;
    const int64_t out_stride = resize_height ? temp_stride : dst_stride;
    horizontal_step(rows, src_stride, row_end - row_begin, ht, out, out_stride);
    if (!resize_height) return;
    rows = temp.data();
    rows_stride = temp_stride;
  } else {
    rows += w.x * pixel_bytes;  // no horizontal pass: the window's columns of the source
  }
  vertical_step(rows, rows_stride, vt, row_begin, w.width, dst, dst_stride);
}

}  // namespace

void resample_u8(const uint8_t* src, int64_t src_stride, int channels, const ResampleGeometry& g, Filter filter,
                 uint8_t* dst, int64_t dst_stride) {
  check_geometry(g);
  TORCH_CHECK(channels >= 1 && channels <= 4, "resample_u8: channels ", channels);
  if (filter == Filter::nearest) return resample_nearest(src, src_stride, channels, g, dst, dst_stride);
  const int64_t width = g.window.width, height = g.window.height;
  resample_separable(
      src, src_stride, channels, g, filter, dst, dst_stride,
      [&](const uint8_t* rows, int64_t stride, int64_t n, const Taps& ht, uint8_t* out, int64_t out_stride) {
        horizontal_pass(rows, stride, n, g.in_width, channels, ht, width, out, out_stride);
      },
      [&](const uint8_t* rows, int64_t stride, const Taps& vt, int64_t row_begin, int64_t columns, uint8_t* out,
          int64_t out_stride) { vertical_pass(rows, stride, columns * channels, vt, row_begin, height, out, out_stride); });
}

namespace {
// Pillow opens a 16-bit gray PNG as I;16 (since Pillow 10) and clips each resampling pass to 0..65535 (#9480).
int32_t clip16(int32_t v) { return v <= 0 ? 0 : v < 65536 ? v : 65535; }
}  // namespace

void resample_i32(const uint8_t* src, int64_t src_stride, const ResampleGeometry& g, Filter filter, uint8_t* dst,
                  int64_t dst_stride) {
  check_geometry(g);
  if (filter == Filter::nearest) return resample_nearest(src, src_stride, 4, g, dst, dst_stride);
  const int64_t width = g.window.width, height = g.window.height;
  resample_separable(
      src, src_stride, 4, g, filter, dst, dst_stride,
      [&](const uint8_t* rows, int64_t stride, int64_t n, const Taps& ht, uint8_t* out, int64_t out_stride) {
        for (int64_t y = 0; y < n; ++y) {
          const uint8_t* s = rows + y * stride;
          for (int64_t x = 0; x < width; ++x) {
            const double* k = ht.weights.data() + x * ht.ksize;
            double ss = 0.0;
            for (int32_t i = 0; i < ht.n[x]; ++i) ss += load_i32(s + 4 * (ht.first[x] + i)) * k[i];
            const int32_t v = clip16(round_up(ss));
            std::memcpy(out + y * out_stride + 4 * x, &v, 4);
          }
        }
      },
      [&](const uint8_t* rows, int64_t stride, const Taps& vt, int64_t row_begin, int64_t columns, uint8_t* out,
          int64_t out_stride) {
        for (int64_t y = 0; y < height; ++y) {
          const double* k = vt.weights.data() + y * vt.ksize;
          const uint8_t* r = rows + (vt.first[y] - row_begin) * stride;
          for (int64_t x = 0; x < columns; ++x) {
            double ss = 0.0;
            for (int32_t i = 0; i < vt.n[y]; ++i) ss += load_i32(r + i * stride + 4 * x) * k[i];
            const int32_t v = clip16(round_up(ss));
            std::memcpy(out + y * out_stride + 4 * x, &v, 4);
          }
        }
      });
}

void resample_nearest(const uint8_t* src, int64_t src_stride, int64_t pixel_bytes, const ResampleGeometry& g,
                      uint8_t* dst, int64_t dst_stride) {
  check_geometry(g);
  const Window& w = g.window;
  if (g.out_width == g.in_width && g.out_height == g.in_height) {
    return copy_window(src, src_stride, pixel_bytes, w, dst, dst_stride);
  }
  // Pillow's ImagingScaleAffine: the source position starts at half a step and is advanced by repeated addition,
  // so it is accumulated here the same way, from the first output pixel up to the window's last.
  auto positions = [](int64_t in, int64_t out, int64_t begin, int64_t count) {
    const double step = static_cast<double>(static_cast<float>(in)) / static_cast<double>(out);
    std::vector<int64_t> pos(count);
    double p = 0.0 + step * 0.5;
    for (int64_t i = 0; i < begin + count; ++i, p += step) {
      if (i >= begin) pos[i - begin] = std::min<int64_t>(p < 0.0 ? 0 : static_cast<int64_t>(p), in - 1);
    }
    return pos;
  };
  const std::vector<int64_t> xs = positions(g.in_width, g.out_width, w.x, w.width);
  const std::vector<int64_t> ys = positions(g.in_height, g.out_height, w.y, w.height);
  for (int64_t y = 0; y < w.height; ++y) {
    const uint8_t* s = src + ys[y] * src_stride;
    uint8_t* d = dst + y * dst_stride;
    if (pixel_bytes == 1) {
      for (int64_t x = 0; x < w.width; ++x) d[x] = s[xs[x]];
    } else {
      for (int64_t x = 0; x < w.width; ++x) std::memcpy(d + x * pixel_bytes, s + xs[x] * pixel_bytes, pixel_bytes);
    }
  }
}

}  // namespace clip
