// libjpeg reports errors through a callback that must not return; it longjmps back into write_jpeg, which holds no
// C++ objects (the compressor and its output buffer are released by JpegWriteJob's destructor).
#include "image/encode.h"

#include "clip/util/error.h"
#include "clip_features.h"

#if CLIP_WITH_JPEG
#include <csetjmp>
#include <cstdio>
#include <cstdlib>
// jpeglib.h needs size_t and FILE declared first.
#include <jpeglib.h>
#endif
#if CLIP_WITH_PNG
#include <png.h>
#endif

namespace clip::detail {
namespace {

void check_size(int64_t width, int64_t height, const std::string& source) {
  if (width <= 0 || height <= 0 || width > 65500 || height > 65500) {
    fail(source, ": cannot encode an image of ", width, " x ", height, " pixels (each side must be 1..65500)");
  }
}

#if CLIP_WITH_JPEG
struct JpegWriteJob {
  jpeg_compress_struct info{};
  struct {
    jpeg_error_mgr manager;  // first member: libjpeg hands the callbacks a pointer to it
    std::jmp_buf jump;
    char message[JMSG_LENGTH_MAX];
  } errors{};
  unsigned char* buffer = nullptr;  // jpeg_mem_dest's, malloc'd by libjpeg
  unsigned long size = 0;
  bool created = false;
  ~JpegWriteJob() {
    if (created) jpeg_destroy_compress(&info);
    std::free(buffer);
  }
};

[[noreturn]] void on_jpeg_error(j_common_ptr info) {
  auto* errors = reinterpret_cast<decltype(JpegWriteJob::errors)*>(info->err);
  (*info->err->format_message)(info, errors->message);
  std::longjmp(errors->jump, 1);
}

bool write_jpeg(JpegWriteJob& job, const uint8_t* rgb, int64_t width, int64_t height, int quality) {
  job.info.err = jpeg_std_error(&job.errors.manager);
  job.errors.manager.error_exit = on_jpeg_error;
  if (setjmp(job.errors.jump)) return false;
  jpeg_create_compress(&job.info);
  job.created = true;
  jpeg_mem_dest(&job.info, &job.buffer, &job.size);
  job.info.image_width = static_cast<JDIMENSION>(width);
  job.info.image_height = static_cast<JDIMENSION>(height);
  job.info.input_components = 3;
  job.info.in_color_space = JCS_RGB;
  jpeg_set_defaults(&job.info);
  jpeg_set_quality(&job.info, quality, TRUE);
  jpeg_start_compress(&job.info, TRUE);
  while (job.info.next_scanline < job.info.image_height) {
    JSAMPROW row = const_cast<JSAMPROW>(rgb + static_cast<size_t>(job.info.next_scanline) * size_t(width) * 3);
    jpeg_write_scanlines(&job.info, &row, 1);
  }
  jpeg_finish_compress(&job.info);
  return true;
}
#endif

}  // namespace

std::string encode_jpeg(const uint8_t* rgb, int64_t width, int64_t height, int quality, const std::string& source) {
#if CLIP_WITH_JPEG
  check_size(width, height, source);
  if (quality < 1 || quality > 100) fail(source, ": JPEG quality ", quality, " is not in 1..100");
  JpegWriteJob job;
  if (!write_jpeg(job, rgb, width, height, quality)) fail(source, ": cannot encode as JPEG: ", job.errors.message);
  return std::string(reinterpret_cast<const char*>(job.buffer), job.size);
#else
  (void)rgb, (void)width, (void)height, (void)quality;
  fail(source, ": cannot encode JPEG: libclip was built without CLIP_WITH_JPEG (libjpeg)");
#endif
}

std::string encode_png(const uint8_t* pixels, int64_t width, int64_t height, int channels, const std::string& source) {
#if CLIP_WITH_PNG
  check_size(width, height, source);
  if (channels != 1 && channels != 3) fail(source, ": cannot encode ", channels, " channels as PNG (1 or 3)");
  png_image image{};
  image.version = PNG_IMAGE_VERSION;
  image.width = static_cast<png_uint_32>(width);
  image.height = static_cast<png_uint_32>(height);
  image.format = channels == 1 ? PNG_FORMAT_GRAY : PNG_FORMAT_RGB;
  const auto stride = static_cast<png_int_32>(width * channels);
  std::string out(PNG_IMAGE_PNG_SIZE_MAX(image), '\0');  // the bound for incompressible pixels: one pass
  png_alloc_size_t size = out.size();
  if (!png_image_write_to_memory(&image, out.data(), &size, 0, pixels, stride, nullptr)) {
    fail(source, ": cannot encode as PNG: ", image.message);
  }
  out.resize(size);
  return out;
#else
  (void)pixels, (void)width, (void)height, (void)channels;
  fail(source, ": cannot encode PNG: libclip was built without CLIP_WITH_PNG (libpng)");
#endif
}

}  // namespace clip::detail
