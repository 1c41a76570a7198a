// JPEG at 1/2, 1/4 or 1/8 size: libjpeg-turbo computes the reduced image from the low DCT coefficients of each
// block, so the skipped pixels are never produced (and most of the inverse-DCT work is skipped with them).
//
// libjpeg reports errors through a callback that must not return: it longjmps back into the small functions
// below that call setjmp. They hold no C++ objects, so the jump skips no destructor; the decoder state lives in
// Job, whose destructor releases it on every path (the same arrangement as image/decode_jpeg.cpp).
#include "data/shards_jpeg.h"

#include <algorithm>
#include <csetjmp>
#include <cstdio>

// jpeglib.h needs size_t and FILE declared first.
#include <jerror.h>
#include <jpeglib.h>

#include <c10/util/Exception.h>

#include "clip/util/error.h"
#include "image/decode_formats.h"

namespace clip::detail {
namespace {

struct Errors {
  jpeg_error_mgr manager;  // first member: libjpeg hands the callbacks a pointer to it
  std::jmp_buf jump;
  char message[JMSG_LENGTH_MAX];
  bool truncated;
};

struct Job {
  jpeg_decompress_struct info{};
  Errors errors{};
  bool created = false;
  ~Job() {
    if (created) jpeg_destroy_decompress(&info);
  }
};

[[noreturn]] void on_error(j_common_ptr info) {
  auto* errors = reinterpret_cast<Errors*>(info->err);
  (*info->err->format_message)(info, errors->message);
  std::longjmp(errors->jump, 1);
}

void on_message(j_common_ptr info, int level) {
  // As the exact decoder: corrupt-data warnings pass, running out of data is a truncated file.
  if (level < 0 && info->err->msg_code == JWRN_JPEG_EOF) {
    auto* errors = reinterpret_cast<Errors*>(info->err);
    errors->truncated = true;
    std::longjmp(errors->jump, 1);
  }
}

bool read_header(Job& job, const uint8_t* data, size_t size) {
  job.info.err = jpeg_std_error(&job.errors.manager);
  job.errors.manager.error_exit = on_error;
  job.errors.manager.emit_message = on_message;
  if (setjmp(job.errors.jump)) return false;
  jpeg_create_decompress(&job.info);
  job.created = true;
  jpeg_mem_src(&job.info, data, static_cast<unsigned long>(size));
  jpeg_read_header(&job.info, TRUE);
  return true;
}

bool start(Job& job, J_COLOR_SPACE space, int denominator) {
  if (setjmp(job.errors.jump)) return false;
  job.info.out_color_space = space;
  job.info.scale_num = 1;
  job.info.scale_denom = static_cast<unsigned int>(denominator);
  jpeg_start_decompress(&job.info);
  return true;
}

bool read_rows(Job& job, uint8_t* pixels, size_t row_bytes) {
  if (setjmp(job.errors.jump)) return false;
  JSAMPROW rows[16];
  while (job.info.output_scanline < job.info.output_height) {
    const JDIMENSION first = job.info.output_scanline;
    const JDIMENSION n = std::min<JDIMENSION>(16, job.info.output_height - first);
    for (JDIMENSION i = 0; i < n; ++i) rows[i] = pixels + (first + i) * row_bytes;
    jpeg_read_scanlines(&job.info, rows, n);
  }
  jpeg_finish_decompress(&job.info);
  return true;
}

[[noreturn]] void failed(const Job& job, const std::string& source) {
  if (job.errors.truncated) fail(source, ": truncated JPEG: the file ends before the image data does");
  fail(source, ": corrupt JPEG: ", job.errors.message);
}

}  // namespace

std::optional<std::pair<int64_t, int64_t>> jpeg_dimensions(const uint8_t* d, size_t n) {
  if (n < 4 || d[0] != 0xff || d[1] != 0xd8) return std::nullopt;
  size_t i = 2;
  while (i + 4 <= n) {
    if (d[i] != 0xff) return std::nullopt;
    const uint8_t marker = d[i + 1];
    if (marker == 0xff) {  // fill byte
      ++i;
      continue;
    }
    if (marker == 0xd8 || (marker >= 0xd0 && marker <= 0xd7) || marker == 0x01) {  // no length field
      i += 2;
      continue;
    }
    const size_t length = size_t(d[i + 2]) << 8 | d[i + 3];
    const bool frame = marker >= 0xc0 && marker <= 0xcf && marker != 0xc4 && marker != 0xc8 && marker != 0xcc;
    if (frame) {
      if (i + 9 > n || length < 7) return std::nullopt;
      const int64_t height = int64_t(d[i + 5]) << 8 | d[i + 6], width = int64_t(d[i + 7]) << 8 | d[i + 8];
      if (width == 0 || height == 0) return std::nullopt;
      return std::make_pair(width, height);
    }
    if (marker == 0xd9 || marker == 0xda || length < 2) return std::nullopt;  // image data before a frame header
    i += 2 + length;
  }
  return std::nullopt;
}

std::optional<Image> decode_jpeg_reduced(const uint8_t* data, size_t size, int denominator, const std::string& source,
                                         const DecodeOptions& options) {
  TORCH_CHECK(denominator == 2 || denominator == 4 || denominator == 8,
              "decode_jpeg_reduced: denominator must be 2, 4 or 8, got ", denominator);
  Job job;
  if (!read_header(job, data, size)) failed(job, source);
  check_pixel_limit(job.info.image_width, job.info.image_height, source, options);
  PixelMode mode;
  J_COLOR_SPACE space;
  switch (job.info.num_components) {
    case 1: mode = PixelMode::L, space = JCS_GRAYSCALE; break;
    case 3: mode = PixelMode::RGB, space = JCS_RGB; break;
    default: return std::nullopt;
  }
  if (!start(job, space, denominator)) failed(job, source);
  Image image = Image::allocate(job.info.output_width, job.info.output_height, mode);
  if (!read_rows(job, image.pixels.data(), static_cast<size_t>(image.row_bytes()))) failed(job, source);
  return image;
}

}  // namespace clip::detail
