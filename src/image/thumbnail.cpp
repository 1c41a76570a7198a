#include "image/thumbnail.h"

#include <ATen/Parallel.h>

#include <algorithm>
#include <cmath>
#include <vector>

#include "clip/image/decode.h"
#include "clip/image/resample.h"
#include "clip/util/error.h"
#include "image/encode.h"

namespace clip::detail {
namespace {

Thumbnail make_thumbnail(const std::string& path, int size, int quality) {
  DecodeOptions options;
  options.apply_exif_orientation = true;
  const Image image = decode_image(path, options);
  std::vector<uint8_t> rgb(size_t(image.width * image.height * 3));
  convert_to_rgb(image.pixels.data(), image.mode, image.palette.data(), image.width * image.height, rgb.data());
  const double scale = std::min(1.0, double(size) / double(std::max(image.width, image.height)));
  const int64_t w = std::max<int64_t>(1, std::llround(double(image.width) * scale));
  const int64_t h = std::max<int64_t>(1, std::llround(double(image.height) * scale));
  Thumbnail out;
  out.width = int(w), out.height = int(h);
  if (w == image.width && h == image.height) {
    out.jpeg = encode_jpeg(rgb.data(), w, h, quality, path);
    return out;
  }
  std::vector<uint8_t> small(size_t(w * h * 3));
  resample_u8(rgb.data(), image.width * 3, 3, {image.width, image.height, w, h, {0, 0, w, h}}, Filter::bicubic,
              small.data(), w * 3);
  out.jpeg = encode_jpeg(small.data(), w, h, quality, path);
  return out;
}

}  // namespace

std::string jpeg_thumbnail(const std::string& path, int size, int quality) {
  return make_thumbnail(path, size, quality).jpeg;
}

std::vector<Thumbnail> jpeg_thumbnails(const std::vector<std::string>& paths, int size, int quality) {
  std::vector<Thumbnail> out(paths.size());
  at::parallel_for(0, int64_t(paths.size()), 1, [&](int64_t begin, int64_t end) {
    for (int64_t i = begin; i < end; ++i) {
      try {
        out[size_t(i)] = make_thumbnail(paths[size_t(i)], size, quality);
      } catch (const std::exception& e) {
        out[size_t(i)].problem = error_message(e);
      }
    }
  });
  return out;
}

}  // namespace clip::detail
