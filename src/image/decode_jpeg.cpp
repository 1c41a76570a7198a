// JPEG through libjpeg(-turbo), set up as Pillow sets it up (default DCT and upsampling, so the same library gives
// the same pixels): 1 component -> L, 3 -> RGB, 4 -> CMYK with the Adobe polarity undone (Pillow always assumes
// it). A file that ends before the image data does is refused, as Pillow refuses it ("image file is truncated")
// where libjpeg alone would pad the picture with gray and only warn.
//
// The shard loader's reduced-size decode (decode_jpeg_reduced, declared in image/jpeg_reduced.h) is here too: the
// same job at a DCT scale of 1/2, 1/4 or 1/8.
//
// libjpeg reports errors through a callback that must not return; it longjmps back into the small functions
// below that call setjmp. They hold no C++ objects, so the jump skips no destructor; the decoder state lives in
// JpegJob, whose destructor releases it on every path.
#include <algorithm>
#include <csetjmp>
#include <cstdio>
#include <cstring>

// jpeglib.h needs size_t and FILE declared first.
#include <jerror.h>
#include <jpeglib.h>

#include <c10/util/Exception.h>

#include "clip/util/error.h"
#include "image/jpeg_reduced.h"
#include "image/decode_formats.h"

namespace clip::detail {
namespace {

struct JpegErrors {
  jpeg_error_mgr manager;  // first member: libjpeg hands the callbacks a pointer to it
  std::jmp_buf jump;
  char message[JMSG_LENGTH_MAX];
  bool truncated;
};

struct JpegJob {
  jpeg_decompress_struct info{};
  JpegErrors errors{};
  bool created = false;
  ~JpegJob() {
    if (created) jpeg_destroy_decompress(&info);
  }
};

[[noreturn]] void on_error(j_common_ptr info) {
  auto* errors = reinterpret_cast<JpegErrors*>(info->err);
  (*info->err->format_message)(info, errors->message);
  std::longjmp(errors->jump, 1);
}

void on_message(j_common_ptr info, int level) {
  // Warnings (level -1) about corrupt data are ignored as Pillow ignores them, except running out of data.
  if (level < 0 && info->err->msg_code == JWRN_JPEG_EOF) {
    auto* errors = reinterpret_cast<JpegErrors*>(info->err);
    errors->truncated = true;
    std::longjmp(errors->jump, 1);
  }
}

bool read_header(JpegJob& job, const uint8_t* data, size_t size, bool keep_exif) {
  job.info.err = jpeg_std_error(&job.errors.manager);
  job.errors.manager.error_exit = on_error;
  job.errors.manager.emit_message = on_message;
  if (setjmp(job.errors.jump)) return false;
  jpeg_create_decompress(&job.info);
  job.created = true;
  jpeg_mem_src(&job.info, data, static_cast<unsigned long>(size));
  if (keep_exif) jpeg_save_markers(&job.info, JPEG_APP0 + 1, 0xffff);
  jpeg_read_header(&job.info, TRUE);
  return true;
}

// Sets the output up (colour space, 1/`denominator` scale) and starts the decompressor.
bool start(JpegJob& job, J_COLOR_SPACE space, int denominator) {
  if (setjmp(job.errors.jump)) return false;
  job.info.out_color_space = space;
  job.info.scale_num = 1;
  job.info.scale_denom = static_cast<unsigned int>(denominator);
  jpeg_start_decompress(&job.info);
  return true;
}

// Reads the started image into `pixels` (output_height rows of row_bytes).
bool read_rows(JpegJob& job, uint8_t* pixels, size_t row_bytes) {
  if (setjmp(job.errors.jump)) return false;
  JSAMPROW rows[16];
  while (job.info.output_scanline < job.info.output_height) {
    const JDIMENSION first = job.info.output_scanline;
    const JDIMENSION n = std::min<JDIMENSION>(16, job.info.output_height - first);
    for (JDIMENSION i = 0; i < n; ++i) rows[i] = pixels + (first + i) * row_bytes;
    jpeg_read_scanlines(&job.info, rows, n);
  }
  jpeg_finish_decompress(&job.info);  // reads on to the end-of-image marker: a missing one is a truncated file
  return true;
}

int orientation_of(const jpeg_decompress_struct& info) {
  for (jpeg_saved_marker_ptr m = info.marker_list; m != nullptr; m = m->next) {
    if (m->marker == JPEG_APP0 + 1 && m->data_length > 6 && std::memcmp(m->data, "Exif\0\0", 6) == 0) {
      return exif_orientation(m->data + 6, m->data_length - 6);
    }
  }
  return 1;
}

[[noreturn]] void failed(const JpegJob& job, const std::string& source) {
  if (job.errors.truncated) fail(source, ": truncated JPEG: the file ends before the image data does");
  fail(source, ": corrupt JPEG: ", job.errors.message);
}

}  // namespace

Decoded decode_jpeg(const uint8_t* data, size_t size, const std::string& source, const DecodeOptions& options) {
  JpegJob job;
  if (!read_header(job, data, size, options.apply_exif_orientation)) failed(job, source);
  const int64_t width = job.info.image_width, height = job.info.image_height;
  check_pixel_limit(width, height, source, options);
  PixelMode mode;
  J_COLOR_SPACE space;
  switch (job.info.num_components) {
    case 1: mode = PixelMode::L, space = JCS_GRAYSCALE; break;
    case 3: mode = PixelMode::RGB, space = JCS_RGB; break;
    case 4: mode = PixelMode::CMYK, space = JCS_CMYK; break;
    default: fail(source, ": cannot handle a JPEG with ", job.info.num_components, " components (1, 3 or 4)");
  }
  Decoded out;
  // Saved markers live in libjpeg's image pool, which jpeg_finish_decompress frees: read them first.
  if (options.apply_exif_orientation) out.orientation = orientation_of(job.info);
  if (!start(job, space, 1)) failed(job, source);
  out.image = Image::allocate(width, height, mode);
  if (!read_rows(job, out.image.pixels.data(), static_cast<size_t>(out.image.row_bytes()))) failed(job, source);
  if (mode == PixelMode::CMYK) {
    for (uint8_t& v : out.image.pixels) v = static_cast<uint8_t>(255 - v);  // Pillow's "CMYK;I"
  }
  return out;
}

std::optional<Image> decode_jpeg_reduced(const uint8_t* data, size_t size, int denominator, const std::string& source,
                                         const DecodeOptions& options) {
  TORCH_CHECK(denominator == 2 || denominator == 4 || denominator == 8,
              "decode_jpeg_reduced: denominator must be 2, 4 or 8, got ", denominator);
  JpegJob job;
  if (!read_header(job, data, size, /*keep_exif=*/false)) failed(job, source);
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
