#pragma once
// The resampler's hot loops, in portable C++ and, on x86-64, AVX2 (picked at run time, so a portable build still
// runs the wide integer multiplies where the CPU has them). Exact integer sums only: the result is the same bit
// for bit whichever version runs, and the same as Pillow's.
#include <cstdint>

namespace clip::simd {

/// Coefficients of one pass: for output pixel i, n[i] taps from source pixel first[i], weights k[i * ksize + t]
/// in fixed point with 22 fractional bits.
struct Taps8 {
  const int32_t* first;
  const int32_t* n;
  const int32_t* k;
  int64_t ksize;
  /// Optional, for 3- and 4-channel rows (see expand_weights): the weights as 16-bit halves laid out for
  /// multiply-add instructions, ksize / 4 groups of 32 per output pixel.
  const int16_t* weights16 = nullptr;
};

/// The weights16 table for `count` output pixels of `channels` (3 or 4) samples: count * ksize * 8 values. Each
/// weight k (|k| <= 2^22) is split exactly as k = 2048 * hi + lo with lo in 0..2047, both fitting 16 bits, so
/// 16-bit multiply-adds of 8-bit samples give sum(v * k) = 2048 * sum(v * hi) + sum(v * lo) with no rounding.
void expand_weights(const Taps8& taps, int64_t count, int channels, int16_t* weights16);

/// acc[i] = 2^21 (the rounding half) + sum over t < n of rows[t * stride + i] * k[t], for i < len.
void vertical_taps(const uint8_t* rows, int64_t stride, const int32_t* k, int32_t n, int64_t len, int32_t* acc);

/// dst[i] = clamp(acc[i] >> 22, 0, 255).
void clip_row(const int32_t* acc, int64_t len, uint8_t* dst);

/// One row of the horizontal pass: `count` output pixels of `channels` (1-4) samples from a row of `row_pixels`
/// source pixels, rounded and clamped to 8 bits as Pillow does.
void horizontal_row(const uint8_t* row, int64_t row_pixels, int channels, const Taps8& taps, int64_t count,
                    uint8_t* dst);

/// horizontal_row for two rows with the same taps (sharing the per-pixel work).
void horizontal_rows2(const uint8_t* row0, const uint8_t* row1, int64_t row_pixels, int channels, const Taps8& taps,
                      int64_t count, uint8_t* dst0, uint8_t* dst1);

}  // namespace clip::simd
