// Two versions of each kernel: portable C++ and, on x86-64 CPUs that have it, AVX2 (chosen once, at first use).
// Both add exact integer products, so they agree bit for bit with each other and with Pillow.
#include "image/simd.h"

#include <algorithm>
#include <cstring>

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#define CLIP_HAVE_AVX2_KERNELS 1
#include <immintrin.h>
#else
#define CLIP_HAVE_AVX2_KERNELS 0
#endif

namespace clip::simd {
namespace {

constexpr int kShift = 22;
constexpr int32_t kHalf = 1 << (kShift - 1);

inline uint8_t clip8(int32_t v) { return static_cast<uint8_t>(std::clamp(v >> kShift, 0, 255)); }

// ---- portable versions ----

void vertical_taps_portable(const uint8_t* rows, int64_t stride, const int32_t* k, int32_t n, int64_t len,
                            int32_t* acc) {
  for (int64_t i = 0; i < len; ++i) acc[i] = kHalf;
  for (int32_t t = 0; t < n; ++t) {
    const uint8_t* r = rows + t * stride;
    const int32_t w = k[t];
    for (int64_t i = 0; i < len; ++i) acc[i] += r[i] * w;
  }
}

void clip_row_portable(const int32_t* acc, int64_t len, uint8_t* dst) {
  for (int64_t i = 0; i < len; ++i) dst[i] = clip8(acc[i]);
}

inline void pixel_portable(const uint8_t* s, int channels, const int32_t* k, int32_t n, uint8_t* out) {
  for (int c = 0; c < channels; ++c) {
    int32_t acc = kHalf;
    for (int32_t t = 0; t < n; ++t) acc += s[t * channels + c] * k[t];
    out[c] = clip8(acc);
  }
}

void horizontal_row_portable(const uint8_t* row, int64_t, int channels, const Taps8& taps, int64_t count,
                             uint8_t* dst) {
  for (int64_t x = 0; x < count; ++x) {
    pixel_portable(row + static_cast<int64_t>(taps.first[x]) * channels, channels, taps.k + x * taps.ksize,
                   taps.n[x], dst + x * channels);
  }
}

void horizontal_rows2_portable(const uint8_t* row0, const uint8_t* row1, int64_t row_pixels, int channels,
                               const Taps8& taps, int64_t count, uint8_t* dst0, uint8_t* dst1) {
  horizontal_row_portable(row0, row_pixels, channels, taps, count, dst0);
  horizontal_row_portable(row1, row_pixels, channels, taps, count, dst1);
}

#if CLIP_HAVE_AVX2_KERNELS
// ---- AVX2 versions: 8 int32 lanes, _mm256_mullo_epi32 for the exact products ----

__attribute__((target("avx2"))) void vertical_taps_avx2(const uint8_t* rows, int64_t stride, const int32_t* k,
                                                        int32_t n, int64_t len, int32_t* acc) {
  int64_t i = 0;
  for (; i + 16 <= len; i += 16) {  // 16 samples: two vectors of 8
    __m256i a0 = _mm256_set1_epi32(kHalf), a1 = a0;
    for (int32_t t = 0; t < n; ++t) {
      const __m128i b = _mm_loadu_si128(reinterpret_cast<const __m128i*>(rows + t * stride + i));
      const __m256i w = _mm256_set1_epi32(k[t]);
      a0 = _mm256_add_epi32(a0, _mm256_mullo_epi32(_mm256_cvtepu8_epi32(b), w));
      a1 = _mm256_add_epi32(a1, _mm256_mullo_epi32(_mm256_cvtepu8_epi32(_mm_srli_si128(b, 8)), w));
    }
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(acc + i), a0);
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(acc + i + 8), a1);
  }
  if (i < len) vertical_taps_portable(rows + i, stride, k, n, len - i, acc + i);
}

__attribute__((target("avx2"))) void clip_row_avx2(const int32_t* acc, int64_t len, uint8_t* dst) {
  int64_t i = 0;
  for (; i + 16 <= len; i += 16) {
    const __m256i a0 = _mm256_srai_epi32(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(acc + i)), kShift);
    const __m256i a1 = _mm256_srai_epi32(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(acc + i + 8)), kShift);
    // int32 -> int16 -> uint8 with saturation (= clamp to 0..255); packs work per 128-bit lane, hence the permute.
    const __m256i words = _mm256_permute4x64_epi64(_mm256_packs_epi32(a0, a1), 0xd8);
    const __m128i bytes = _mm_packus_epi16(_mm256_castsi256_si128(words), _mm256_extracti128_si256(words, 1));
    _mm_storeu_si128(reinterpret_cast<__m128i*>(dst + i), bytes);
  }
  clip_row_portable(acc + i, len - i, dst + i);
}

// Sum of the 8 lanes.
__attribute__((target("avx2"))) inline int32_t lane_sum(__m256i v) {
  __m128i s = _mm_add_epi32(_mm256_castsi256_si128(v), _mm256_extracti128_si256(v, 1));
  s = _mm_add_epi32(s, _mm_shuffle_epi32(s, 0x4e));
  s = _mm_add_epi32(s, _mm_shuffle_epi32(s, 0xb1));
  return _mm_cvtsi128_si32(s);
}

template <int channels>
__attribute__((target("avx2"))) void horizontal_row_avx2(const uint8_t* row, int64_t row_pixels, const Taps8& taps,
                                                         int64_t count, uint8_t* dst) {
  // Loads of 16 bytes may reach past the pixels used (weighted 0), so a pixel whose taps end within that distance
  // of the row's end is done the portable way.
  const __m128i pair_up = channels == 3 ? _mm_setr_epi8(0, 3, 1, 4, 2, 5, -1, -1, 6, 9, 7, 10, 8, 11, -1, -1)
                                         : _mm_setr_epi8(0, 4, 1, 5, 2, 6, 3, 7, 8, 12, 9, 13, 10, 14, 11, 15);
  const int64_t step = channels;
  for (int64_t x = 0; x < count; ++x, dst += channels) {
    const int32_t first = taps.first[x], n = taps.n[x];
    const int32_t* k = taps.k + x * taps.ksize;
    const uint8_t* s = row + static_cast<int64_t>(first) * channels;
    const int64_t end_byte = (first + (n - 1) / 4 * 4) * channels + 16;  // the last 16-byte load's end
    if constexpr (channels == 1) {
      if (first + ((n + 7) & ~7) > row_pixels) {
        pixel_portable(s, 1, k, n, dst);
        continue;
      }
      __m256i acc = _mm256_setzero_si256();
      for (int32_t t = 0; t < n; t += 8) {  // weights past n are zero in the padded coefficient rows
        const __m256i v = _mm256_cvtepu8_epi32(_mm_loadl_epi64(reinterpret_cast<const __m128i*>(s + t)));
        const __m256i w = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(k + t));
        acc = _mm256_add_epi32(acc, _mm256_mullo_epi32(v, w));
      }
      dst[0] = clip8(kHalf + lane_sum(acc));
      continue;
    }
    if (taps.weights16 == nullptr || end_byte > row_pixels * channels) {
      pixel_portable(s, channels, k, n, dst);
      continue;
    }
    // Four taps per step: 16 bytes (4 pixels) shuffled so that each 16-bit pair holds one channel of two
    // neighbouring pixels, then multiply-added with the pair's weights, high and low halves separately.
    __m256i hi = _mm256_setzero_si256(), lo = _mm256_setzero_si256();
    const __m256i* w = reinterpret_cast<const __m256i*>(taps.weights16 + x * taps.ksize * 8);
    for (int32_t t = 0; t < n; t += 4, w += 2) {  // weights past n are zero
      const __m128i b = _mm_shuffle_epi8(_mm_loadu_si128(reinterpret_cast<const __m128i*>(s + t * step)), pair_up);
      const __m256i v = _mm256_cvtepu8_epi16(b);
      hi = _mm256_add_epi32(hi, _mm256_madd_epi16(v, _mm256_loadu_si256(w)));
      lo = _mm256_add_epi32(lo, _mm256_madd_epi16(v, _mm256_loadu_si256(w + 1)));
    }
    const __m256i acc = _mm256_add_epi32(_mm256_slli_epi32(hi, 11), lo);
    // Halves added, rounding half, >> 22, then int32 -> int16 -> uint8 with saturation: Pillow's clip8.
    const __m128i sum = _mm_srai_epi32(_mm_add_epi32(_mm_add_epi32(_mm256_castsi256_si128(acc), _mm256_extracti128_si256(acc, 1)),
                                                     _mm_set1_epi32(kHalf)), kShift);
    const uint32_t bytes = static_cast<uint32_t>(_mm_cvtsi128_si32(_mm_packus_epi16(_mm_packs_epi32(sum, sum), sum)));
    if (channels == 4 || x + 1 < count) {
      std::memcpy(dst, &bytes, 4);  // RGB: the fourth byte is the next pixel's, written over next
    } else {
      const uint16_t two = static_cast<uint16_t>(bytes);
      std::memcpy(dst, &two, 2);
      dst[2] = static_cast<uint8_t>(bytes >> 16);
    }
  }
}
#endif

}  // namespace

void expand_weights(const Taps8& taps, int64_t count, int channels, int16_t* weights16) {
  // Per group of 4 taps: 16 high halves then 16 low halves. Lanes 0-7 weigh taps 0 and 1 of the group, lanes 8-15
  // taps 2 and 3, alternating per channel as the shuffle in horizontal_row pairs the pixels; RGB leaves the
  // fourth pair of each half at zero.
  for (int64_t x = 0; x < count; ++x) {
    const int32_t* k = taps.k + x * taps.ksize;
    int16_t* out = weights16 + x * taps.ksize * 8;
    for (int64_t g = 0; g < taps.ksize / 4; ++g, out += 32) {
      for (int half = 0; half < 2; ++half) {
        for (int c = 0; c < 4; ++c) {
          for (int j = 0; j < 2; ++j) {
            const int32_t w = c < channels ? k[4 * g + 2 * half + j] : 0;
            out[8 * half + 2 * c + j] = static_cast<int16_t>(w >> 11);          // high: floor(w / 2048)
            out[16 + 8 * half + 2 * c + j] = static_cast<int16_t>(w & 2047);    // low: 0..2047
          }
        }
      }
    }
  }
}

namespace {

__attribute__((target("avx2"))) void horizontal_row_avx2(const uint8_t* row, int64_t row_pixels, int channels,
                                                         const Taps8& taps, int64_t count, uint8_t* dst) {
  switch (channels) {
    case 1: return horizontal_row_avx2<1>(row, row_pixels, taps, count, dst);
    case 3: return horizontal_row_avx2<3>(row, row_pixels, taps, count, dst);
    case 4: return horizontal_row_avx2<4>(row, row_pixels, taps, count, dst);
    default: return horizontal_row_portable(row, row_pixels, channels, taps, count, dst);
  }
}

// Two rows at once: the weights, the bounds and the final packing are shared by the two rows' pixels.
template <int channels>
__attribute__((target("avx2"))) void horizontal_rows2_avx2(const uint8_t* row0, const uint8_t* row1,
                                                           int64_t row_pixels, const Taps8& taps, int64_t count,
                                                           uint8_t* dst0, uint8_t* dst1) {
  const __m128i pair_up = channels == 3 ? _mm_setr_epi8(0, 3, 1, 4, 2, 5, -1, -1, 6, 9, 7, 10, 8, 11, -1, -1)
                                         : _mm_setr_epi8(0, 4, 1, 5, 2, 6, 3, 7, 8, 12, 9, 13, 10, 14, 11, 15);
  const __m128i half = _mm_set1_epi32(kHalf);
  for (int64_t x = 0; x < count; ++x, dst0 += channels, dst1 += channels) {
    const int32_t first = taps.first[x], n = taps.n[x];
    const uint8_t* s0 = row0 + static_cast<int64_t>(first) * channels;
    const uint8_t* s1 = row1 + static_cast<int64_t>(first) * channels;
    if ((first + (n - 1) / 4 * 4) * channels + 16 > row_pixels * channels) {
      const int32_t* k = taps.k + x * taps.ksize;
      pixel_portable(s0, channels, k, n, dst0);
      pixel_portable(s1, channels, k, n, dst1);
      continue;
    }
    __m256i hi0 = _mm256_setzero_si256(), lo0 = hi0, hi1 = hi0, lo1 = hi0;
    const __m256i* w = reinterpret_cast<const __m256i*>(taps.weights16 + x * taps.ksize * 8);
    for (int32_t t = 0; t < n; t += 4, w += 2) {
      const __m256i wh = _mm256_loadu_si256(w), wl = _mm256_loadu_si256(w + 1);
      const __m256i v0 = _mm256_cvtepu8_epi16(_mm_shuffle_epi8(_mm_loadu_si128(reinterpret_cast<const __m128i*>(s0 + t * channels)), pair_up));
      const __m256i v1 = _mm256_cvtepu8_epi16(_mm_shuffle_epi8(_mm_loadu_si128(reinterpret_cast<const __m128i*>(s1 + t * channels)), pair_up));
      hi0 = _mm256_add_epi32(hi0, _mm256_madd_epi16(v0, wh));
      lo0 = _mm256_add_epi32(lo0, _mm256_madd_epi16(v0, wl));
      hi1 = _mm256_add_epi32(hi1, _mm256_madd_epi16(v1, wh));
      lo1 = _mm256_add_epi32(lo1, _mm256_madd_epi16(v1, wl));
    }
    const __m256i a0 = _mm256_add_epi32(_mm256_slli_epi32(hi0, 11), lo0);
    const __m256i a1 = _mm256_add_epi32(_mm256_slli_epi32(hi1, 11), lo1);
    const __m128i r0 = _mm_srai_epi32(_mm_add_epi32(_mm_add_epi32(_mm256_castsi256_si128(a0), _mm256_extracti128_si256(a0, 1)), half), kShift);
    const __m128i r1 = _mm_srai_epi32(_mm_add_epi32(_mm_add_epi32(_mm256_castsi256_si128(a1), _mm256_extracti128_si256(a1, 1)), half), kShift);
    const __m128i bytes = _mm_packus_epi16(_mm_packs_epi32(r0, r1), r0);  // row 0's pixel in bytes 0-3, row 1's in 4-7
    const uint32_t p0 = static_cast<uint32_t>(_mm_cvtsi128_si32(bytes));
    const uint32_t p1 = static_cast<uint32_t>(_mm_extract_epi32(bytes, 1));
    if (channels == 4 || x + 1 < count) {
      std::memcpy(dst0, &p0, 4);
      std::memcpy(dst1, &p1, 4);
    } else {
      for (int c = 0; c < 3; ++c) dst0[c] = static_cast<uint8_t>(p0 >> (8 * c)), dst1[c] = static_cast<uint8_t>(p1 >> (8 * c));
    }
  }
}

__attribute__((target("avx2"))) void horizontal_rows2_dispatch(const uint8_t* row0, const uint8_t* row1,
                                                               int64_t row_pixels, int channels, const Taps8& taps,
                                                               int64_t count, uint8_t* dst0, uint8_t* dst1) {
  if (channels == 3 && taps.weights16 != nullptr) return horizontal_rows2_avx2<3>(row0, row1, row_pixels, taps, count, dst0, dst1);
  if (channels == 4 && taps.weights16 != nullptr) return horizontal_rows2_avx2<4>(row0, row1, row_pixels, taps, count, dst0, dst1);
  horizontal_row_avx2(row0, row_pixels, channels, taps, count, dst0);
  horizontal_row_avx2(row1, row_pixels, channels, taps, count, dst1);
}

struct Kernels {
  void (*vertical_taps)(const uint8_t*, int64_t, const int32_t*, int32_t, int64_t, int32_t*);
  void (*clip_row)(const int32_t*, int64_t, uint8_t*);
  void (*horizontal_row)(const uint8_t*, int64_t, int, const Taps8&, int64_t, uint8_t*);
  void (*horizontal_rows2)(const uint8_t*, const uint8_t*, int64_t, int, const Taps8&, int64_t, uint8_t*, uint8_t*);
};

const Kernels& kernels() {
  static const Kernels chosen = [] {
#if CLIP_HAVE_AVX2_KERNELS
    if (__builtin_cpu_supports("avx2")) {
      return Kernels{vertical_taps_avx2, clip_row_avx2, horizontal_row_avx2, horizontal_rows2_dispatch};
    }
#endif
    return Kernels{vertical_taps_portable, clip_row_portable, horizontal_row_portable, horizontal_rows2_portable};
  }();
  return chosen;
}

}  // namespace

void vertical_taps(const uint8_t* rows, int64_t stride, const int32_t* k, int32_t n, int64_t len, int32_t* acc) {
  kernels().vertical_taps(rows, stride, k, n, len, acc);
}

void clip_row(const int32_t* acc, int64_t len, uint8_t* dst) { kernels().clip_row(acc, len, dst); }

void horizontal_row(const uint8_t* row, int64_t row_pixels, int channels, const Taps8& taps, int64_t count,
                    uint8_t* dst) {
  kernels().horizontal_row(row, row_pixels, channels, taps, count, dst);
}

}  // namespace clip::simd

namespace clip::simd {
void horizontal_rows2(const uint8_t* row0, const uint8_t* row1, int64_t row_pixels, int channels, const Taps8& taps,
                      int64_t count, uint8_t* dst0, uint8_t* dst1) {
  kernels().horizontal_rows2(row0, row1, row_pixels, channels, taps, count, dst0, dst1);
}
}  // namespace clip::simd
