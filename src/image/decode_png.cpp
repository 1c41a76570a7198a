// PNG into the mode Pillow opens it as (PngImagePlugin's table): gray 1-bit -> 1, 2/4/8-bit -> L (scaled to
// 0..255 as Pillow's L;2 and L;4 unpackers do), 16-bit -> I; palette -> P (indices, any depth, and the PLTE
// entries over Pillow's initial gray-ramp palette); RGB, RGBA, LA; 16-bit colour keeps the high byte, as Pillow's
// ";16B" unpackers do. tRNS is ignored: convert("RGB") ignores it too.
//
// Two paths with the same output. Non-interlaced 8- and 16-bit files (nearly all photos) are decoded here: the
// chunks are walked once (CRCs of critical chunks checked, as libpng does), the image data is inflated in one call
// to libdeflate (twice zlib's speed; zlib in builds without it, CLIP_WITH_LIBDEFLATE) and the row filters are
// undone with SSE2 for 3- and 4-byte pixels, where libpng's and Pillow's byte-at-a-time Paeth filter was most of
// the decoding time. Interlaced and 1/2/4-bit files
// go through libpng. libpng reports errors by longjmp to the setjmp in the function that called it; those
// functions hold no C++ objects and the decoder state is released by PngJob's destructor.
#include <png.h>

#include "clip_features.h"
#if CLIP_WITH_LIBDEFLATE
#include <libdeflate.h>
#else
#include <zlib.h>
#endif

#include <algorithm>
#include <csetjmp>
#include <cstdio>
#include <cstring>
#include <memory>

#include "clip/util/error.h"
#include "image/decode_formats.h"

#if defined(__SSE2__)
#include <emmintrin.h>
#endif

namespace clip::detail {
namespace {

uint32_t be32(const uint8_t* p) { return uint32_t{p[0]} << 24 | p[1] << 16 | p[2] << 8 | p[3]; }

// ---------------------------------------------------------------------------------------------------------------
// CRC-32 and inflate: libdeflate where the build has it, else zlib, with the same results.
uint32_t crc32_of(const uint8_t* data, size_t size) {
#if CLIP_WITH_LIBDEFLATE
  return libdeflate_crc32(0, data, size);
#else
  uLong crc = ::crc32(0L, Z_NULL, 0);
  for (size_t done = 0; done < size;) {
    const uInt part = static_cast<uInt>(std::min<size_t>(size - done, size_t(1) << 30));
    crc = ::crc32(crc, data + done, part);
    done += part;
  }
  return static_cast<uint32_t>(crc);
#endif
}

enum class Inflated { ok, too_much, bad };

// Inflates the zlib stream `in` into `out`, which has room for `capacity` bytes; `got` is what it held. too_much:
// the stream has more than that; bad: corrupt or cut short (Adler-32 checked).
Inflated inflate_zlib(const uint8_t* in, size_t in_size, uint8_t* out, size_t capacity, size_t& got) {
  got = 0;
  if (in_size == 0) return Inflated::bad;
#if CLIP_WITH_LIBDEFLATE
  std::unique_ptr<libdeflate_decompressor, void (*)(libdeflate_decompressor*)> inflater(
      libdeflate_alloc_decompressor(), libdeflate_free_decompressor);
  if (!inflater) throw std::bad_alloc();
  const libdeflate_result r = libdeflate_zlib_decompress(inflater.get(), in, in_size, out, capacity, &got);
  return r == LIBDEFLATE_SUCCESS ? Inflated::ok : r == LIBDEFLATE_INSUFFICIENT_SPACE ? Inflated::too_much : Inflated::bad;
#else
  z_stream z{};
  if (inflateInit(&z) != Z_OK) throw std::bad_alloc();
  constexpr size_t kPart = size_t(1) << 30;  // avail_in and avail_out are 32-bit
  size_t in_left = in_size, out_left = capacity;
  z.next_in = const_cast<Bytef*>(in);
  z.next_out = out;
  int r = Z_OK;
  while (r == Z_OK) {
    if (z.avail_in == 0 && in_left > 0) {
      z.avail_in = static_cast<uInt>(std::min(in_left, kPart));
      in_left -= z.avail_in;
    }
    if (z.avail_out == 0 && out_left > 0) {
      z.avail_out = static_cast<uInt>(std::min(out_left, kPart));
      out_left -= z.avail_out;
    }
    r = inflate(&z, Z_NO_FLUSH);
    if (r == Z_BUF_ERROR && ((z.avail_in == 0 && in_left == 0) || (z.avail_out == 0 && out_left == 0))) break;
  }
  got = capacity - out_left - z.avail_out;
  const bool out_full = z.avail_out == 0 && out_left == 0;
  inflateEnd(&z);
  if (r == Z_STREAM_END) return Inflated::ok;
  return r == Z_BUF_ERROR && out_full ? Inflated::too_much : Inflated::bad;
#endif
}

// ---------------------------------------------------------------------------------------------------------------
// What the chunks hold.
struct PngInfo {
  int64_t width = 0, height = 0;
  int bit_depth = 0, color_type = 0, interlace = 0;
  const uint8_t* palette = nullptr;  // PLTE entries, 3 bytes each
  size_t palette_size = 0;
  const uint8_t* exif = nullptr;
  size_t exif_size = 0;
  std::vector<const uint8_t*> idat;  // the IDAT chunks' data, in order
  std::vector<size_t> idat_size;
  bool complete = false;  // IEND reached (else the file ends early)
};

PngInfo read_chunks(const uint8_t* d, size_t n, const std::string& source) {
  PngInfo info;
  size_t pos = 8;
  bool first = true;
  while (pos + 12 <= n) {
    const uint32_t length = be32(d + pos);
    const uint8_t* type = d + pos + 4;
    if (length > 0x7fffffffu) fail(source, ": corrupt PNG: chunk length ", length);
    if (pos + 12 + length > n) break;  // cut off inside this chunk
    const uint8_t* data = d + pos + 8;
    const bool critical = (type[0] & 0x20) == 0;
    const std::string name(reinterpret_cast<const char*>(type), 4);
    if (critical && crc32_of(type, length + 4) != be32(data + length)) {
      fail(source, ": corrupt PNG: ", name, ": CRC error");
    }
    if (first != (name == "IHDR")) fail(source, ": corrupt PNG: IHDR is not the first chunk");
    first = false;
    if (name == "IHDR") {
      if (length != 13) fail(source, ": corrupt PNG: IHDR of ", length, " bytes");
      info.width = be32(data);
      info.height = be32(data + 4);
      info.bit_depth = data[8];
      info.color_type = data[9];
      info.interlace = data[12];
      const int b = info.bit_depth;
      const bool valid = data[10] == 0 && data[11] == 0 && info.interlace <= 1 &&
                         ((info.color_type == 0 && (b == 1 || b == 2 || b == 4 || b == 8 || b == 16)) ||
                          (info.color_type == 3 && (b == 1 || b == 2 || b == 4 || b == 8)) ||
                          ((info.color_type == 2 || info.color_type == 4 || info.color_type == 6) && (b == 8 || b == 16)));
      if (!valid) fail(source, ": corrupt PNG: bit depth ", b, " with colour type ", info.color_type);
    } else if (name == "PLTE") {
      info.palette = data;
      info.palette_size = length / 3;
    } else if (name == "IDAT") {
      info.idat.push_back(data);
      info.idat_size.push_back(length);
    } else if (name == "eXIf") {
      info.exif = data;
      info.exif_size = length;
    } else if (name == "IEND") {
      info.complete = true;
      break;
    } else if (critical) {
      fail(source, ": corrupt PNG: unknown critical chunk ", name);
    }
    pos += 12 + length;
  }
  if (first) fail(source, ": truncated PNG: the file ends inside its header");
  return info;
}

// ---------------------------------------------------------------------------------------------------------------
// Undoing the row filters (PNG spec 9.2): x is the row (in place), b the row above (zeros for the first row).

inline uint8_t paeth(int a, int b, int c) {
  const int pa = std::abs(b - c), pb = std::abs(a - c), pc = std::abs(a + b - 2 * c);
  return static_cast<uint8_t>(pa <= pb && pa <= pc ? a : pb <= pc ? b : c);
}

void unfilter_bytes(int type, uint8_t* x, const uint8_t* b, size_t len, size_t bpp) {
  switch (type) {
    case 1:
      for (size_t i = bpp; i < len; ++i) x[i] = static_cast<uint8_t>(x[i] + x[i - bpp]);
      break;
    case 2:
      for (size_t i = 0; i < len; ++i) x[i] = static_cast<uint8_t>(x[i] + b[i]);
      break;
    case 3:
      for (size_t i = 0; i < bpp; ++i) x[i] = static_cast<uint8_t>(x[i] + (b[i] >> 1));
      for (size_t i = bpp; i < len; ++i) x[i] = static_cast<uint8_t>(x[i] + ((x[i - bpp] + b[i]) >> 1));
      break;
    case 4:
      for (size_t i = 0; i < bpp; ++i) x[i] = static_cast<uint8_t>(x[i] + b[i]);  // paeth(0, b, 0) = b
      for (size_t i = bpp; i < len; ++i) x[i] = static_cast<uint8_t>(x[i] + paeth(x[i - bpp], b[i], b[i - bpp]));
      break;
    default:
      break;
  }
}

#if defined(__SSE2__)
// 3- and 4-byte pixels, one pixel per step in 16-bit lanes (the approach of libpng's SSE2 filters). Loads and
// stores are 4 bytes; for 3-byte pixels the row buffer has slack after it.
inline __m128i load_pixel(const uint8_t* p) {
  int32_t v;
  std::memcpy(&v, p, 4);
  return _mm_unpacklo_epi8(_mm_cvtsi32_si128(v), _mm_setzero_si128());
}

template <size_t bpp>
inline void store_pixel(uint8_t* p, __m128i v) {
  const int32_t bytes = _mm_cvtsi128_si32(_mm_packus_epi16(v, v));
  std::memcpy(p, &bytes, bpp);  // a constant size: two plain stores, not a call
}

template <size_t bpp>
void unfilter_pixels(int type, uint8_t* x, const uint8_t* b, size_t len) {
  const __m128i zero = _mm_setzero_si128(), bytes = _mm_set1_epi16(0xff);
  __m128i a = zero, c = zero;  // left and upper-left pixels
  if (type == 1) {
    for (size_t i = 0; i < len; i += bpp) {
      a = _mm_and_si128(_mm_add_epi16(load_pixel(x + i), a), bytes);
      store_pixel<bpp>(x + i, a);
    }
  } else if (type == 3) {
    for (size_t i = 0; i < len; i += bpp) {
      const __m128i avg = _mm_srli_epi16(_mm_add_epi16(a, load_pixel(b + i)), 1);
      a = _mm_and_si128(_mm_add_epi16(load_pixel(x + i), avg), bytes);
      store_pixel<bpp>(x + i, a);
    }
  } else {  // 4: Paeth
    for (size_t i = 0; i < len; i += bpp) {
      const __m128i above = load_pixel(b + i);
      __m128i pa = _mm_sub_epi16(above, c), pb = _mm_sub_epi16(a, c);
      __m128i pc = _mm_add_epi16(pa, pb);
      pa = _mm_max_epi16(pa, _mm_sub_epi16(zero, pa));
      pb = _mm_max_epi16(pb, _mm_sub_epi16(zero, pb));
      pc = _mm_max_epi16(pc, _mm_sub_epi16(zero, pc));
      const __m128i smallest = _mm_min_epi16(pc, _mm_min_epi16(pa, pb));
      const __m128i use_a = _mm_cmpeq_epi16(pa, smallest), use_b = _mm_cmpeq_epi16(pb, smallest);
      const __m128i b_or_c = _mm_or_si128(_mm_and_si128(use_b, above), _mm_andnot_si128(use_b, c));
      const __m128i nearest = _mm_or_si128(_mm_and_si128(use_a, a), _mm_andnot_si128(use_a, b_or_c));
      a = _mm_and_si128(_mm_add_epi16(load_pixel(x + i), nearest), bytes);
      store_pixel<bpp>(x + i, a);
      c = above;
    }
  }
}
#endif

void unfilter_row(int type, uint8_t* x, const uint8_t* b, size_t len, size_t bpp) {
#if defined(__SSE2__)
  if (bpp == 3 && type != 2 && type != 0) return unfilter_pixels<3>(type, x, b, len);
  if (bpp == 4 && type != 2 && type != 0) return unfilter_pixels<4>(type, x, b, len);
#endif
  unfilter_bytes(type, x, b, len, bpp);
}

// ---------------------------------------------------------------------------------------------------------------
// The fast path: non-interlaced, 8 or 16 bits per sample.

PixelMode mode_of(const PngInfo& info) {
  switch (info.color_type) {
    case 0: return info.bit_depth == 1 ? PixelMode::bilevel : info.bit_depth == 16 ? PixelMode::I : PixelMode::L;
    case 2: return PixelMode::RGB;
    case 3: return PixelMode::P;
    case 4: return PixelMode::LA;
    default: return PixelMode::RGBA;
  }
}

void copy_palette(const PngInfo& info, Image& image, const std::string& source) {
  if (info.palette == nullptr) fail(source, ": corrupt PNG: palette image without PLTE");
  std::memcpy(image.palette.data(), info.palette, std::min<size_t>(info.palette_size, 256) * 3);
}

Image decode_fast(const PngInfo& info, const std::string& source) {
  const int channels = info.color_type == 2 ? 3 : info.color_type == 4 ? 2 : info.color_type == 6 ? 4 : 1;
  const size_t sample_bytes = static_cast<size_t>(info.bit_depth / 8), bpp = channels * sample_bytes;
  const size_t row_len = static_cast<size_t>(info.width) * bpp, stride = row_len + 1;
  const size_t expected = stride * static_cast<size_t>(info.height);

  std::vector<uint8_t> compressed;
  const uint8_t* in = info.idat.empty() ? nullptr : info.idat[0];
  size_t in_size = info.idat.empty() ? 0 : info.idat_size[0];
  if (info.idat.size() > 1) {
    size_t total = 0;
    for (size_t part : info.idat_size) total += part;
    compressed.resize(total);
    for (size_t i = 0, at = 0; i < info.idat.size(); at += info.idat_size[i++]) {
      std::memcpy(compressed.data() + at, info.idat[i], info.idat_size[i]);
    }
    in = compressed.data();
    in_size = total;
  }
  std::vector<uint8_t> raw(expected + 8);  // slack: 4-byte pixel loads at the end of the last row
  size_t got = 0;
  const Inflated r = inflate_zlib(in, in_size, raw.data(), expected, got);
  if (r != Inflated::ok || got != expected) {
    if (!info.complete) fail(source, ": truncated PNG: the file ends before the image data does");
    if (r == Inflated::too_much) fail(source, ": corrupt PNG: more image data than ", info.width, " x ", info.height);
    fail(source, ": corrupt PNG: ", r == Inflated::ok ? "image data too short" : "bad compressed image data");
  }

  const std::vector<uint8_t> zeros(row_len + 8, 0);
  const uint8_t* above = zeros.data();
  for (int64_t y = 0; y < info.height; ++y) {
    uint8_t* row = raw.data() + y * stride + 1;
    const int filter = row[-1];
    if (filter > 4) fail(source, ": corrupt PNG: row ", y, " has filter type ", filter);
    unfilter_row(filter, row, above, row_len, bpp);
    above = row;
  }
  const PixelMode mode = mode_of(info);
  if (mode == PixelMode::I) {
    Image image = Image::allocate(info.width, info.height, mode);
    for (int64_t y = 0; y < info.height; ++y) {
      const uint8_t* row = raw.data() + y * stride + 1;
      uint8_t* out = image.row(y);
      for (int64_t x = 0; x < info.width; ++x) {
        const int32_t v = row[2 * x] << 8 | row[2 * x + 1];
        std::memcpy(out + 4 * x, &v, 4);
      }
    }
    return image;
  }
  // The pixels are the unfiltered rows without their filter bytes (16-bit: the high bytes): moved down in place,
  // and the buffer becomes the image's.
  const size_t out_row = row_len / sample_bytes;
  for (int64_t y = 0; y < info.height; ++y) {
    const uint8_t* row = raw.data() + y * stride + 1;
    uint8_t* out = raw.data() + y * out_row;
    if (sample_bytes == 1) {
      std::memmove(out, row, row_len);
    } else {
      for (size_t i = 0; i < out_row; ++i) out[i] = row[2 * i];
    }
  }
  raw.resize(out_row * static_cast<size_t>(info.height));
  Image image;
  image.width = info.width;
  image.height = info.height;
  image.mode = mode;
  image.pixels = std::move(raw);
  if (mode == PixelMode::P) {
    image.palette = Image::allocate(0, 0, PixelMode::P).palette;
    copy_palette(info, image, source);
  }
  return image;
}

// ---------------------------------------------------------------------------------------------------------------
// libpng, for interlaced and 1/2/4-bit files.

struct PngJob {
  png_structp png = nullptr;
  png_infop info = nullptr;
  const uint8_t* data = nullptr;
  size_t size = 0;
  size_t position = 0;
  char message[256] = {};
  ~PngJob() {
    if (png != nullptr) png_destroy_read_struct(&png, info != nullptr ? &info : nullptr, nullptr);
  }
};

void on_read(png_structp png, png_bytep out, png_size_t n) {
  auto* job = static_cast<PngJob*>(png_get_io_ptr(png));
  if (n > job->size - job->position) png_error(png, "truncated PNG: the file ends before the image data does");
  std::memcpy(out, job->data + job->position, n);
  job->position += n;
}

[[noreturn]] void on_error(png_structp png, png_const_charp message) {
  auto* job = static_cast<PngJob*>(png_get_error_ptr(png));
  std::snprintf(job->message, sizeof job->message, "%s", message);
  png_longjmp(png, 1);
}

void on_warning(png_structp, png_const_charp) {}  // ancillary-chunk trouble: Pillow reads on as well

bool read_header(PngJob& job) {
  if (setjmp(png_jmpbuf(job.png))) return false;
  png_set_read_fn(job.png, &job, on_read);
  png_set_user_limits(job.png, 0x7fffffff, 0x7fffffff);  // the pixel limit is ours, checked already
  png_read_info(job.png, job.info);
  return true;
}

bool read_rows(PngJob& job, int bit_depth, int color_type, png_bytep* rows) {
  if (setjmp(png_jmpbuf(job.png))) return false;
  if (color_type == PNG_COLOR_TYPE_GRAY && bit_depth < 8) png_set_expand_gray_1_2_4_to_8(job.png);
  if (color_type == PNG_COLOR_TYPE_PALETTE && bit_depth < 8) png_set_packing(job.png);
  if (color_type != PNG_COLOR_TYPE_GRAY && bit_depth == 16) png_set_strip_16(job.png);  // the high byte
  png_set_interlace_handling(job.png);
  png_read_update_info(job.png, job.info);
  png_read_image(job.png, rows);
  return true;
}

Image decode_libpng(const uint8_t* data, size_t size, const PngInfo& chunks, const std::string& source) {
  PngJob job;
  job.data = data;
  job.size = size;
  job.png = png_create_read_struct(PNG_LIBPNG_VER_STRING, &job, on_error, on_warning);
  if (job.png != nullptr) job.info = png_create_info_struct(job.png);
  if (job.png == nullptr || job.info == nullptr) fail(source, ": cannot start libpng (out of memory?)");
  if (!read_header(job)) fail(source, ": corrupt PNG: ", job.message);
  Image image = Image::allocate(chunks.width, chunks.height, mode_of(chunks));
  if (image.mode == PixelMode::P) copy_palette(chunks, image, source);
  // 16-bit gray lands as big-endian pairs at the start of each (4-byte-per-pixel) row and is widened in place.
  std::vector<png_bytep> rows(static_cast<size_t>(image.height));
  for (int64_t y = 0; y < image.height; ++y) rows[y] = image.row(y);
  if (!read_rows(job, chunks.bit_depth, chunks.color_type, rows.data())) fail(source, ": corrupt PNG: ", job.message);
  if (image.mode == PixelMode::I) {
    for (int64_t y = 0; y < image.height; ++y) {
      uint8_t* row = image.row(y);
      for (int64_t x = image.width - 1; x >= 0; --x) {
        const int32_t v = row[2 * x] << 8 | row[2 * x + 1];
        std::memcpy(row + 4 * x, &v, 4);
      }
    }
  }
  return image;
}

}  // namespace

Decoded decode_png(const uint8_t* data, size_t size, const std::string& source, const DecodeOptions& options) {
  const PngInfo info = read_chunks(data, size, source);
  check_pixel_limit(info.width, info.height, source, options);  // from IHDR, before anything else is read
  Decoded out;
  out.image = info.interlace == 0 && info.bit_depth >= 8 ? decode_fast(info, source)
                                                         : decode_libpng(data, size, info, source);
  if (options.apply_exif_orientation && info.exif != nullptr) out.orientation = exif_orientation(info.exif, info.exif_size);
  return out;
}

}  // namespace clip::detail
