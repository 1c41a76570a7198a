#include "image/thumbnail.h"

#include <algorithm>
#include <cmath>
#include <vector>

#include "clip/image/decode.h"
#include "clip/image/resample.h"
#include "image/encode.h"

namespace clip::detail {

std::string jpeg_thumbnail(const std::string& path, int size, int quality) {
  DecodeOptions options;
  options.apply_exif_orientation = true;
  const Image image = decode_image(path, options);
  std::vector<uint8_t> rgb(size_t(image.width * image.height * 3));
  convert_to_rgb(image.pixels.data(), image.mode, image.palette.data(), image.width * image.height, rgb.data());
  const double scale = std::min(1.0, double(size) / double(std::max(image.width, image.height)));
  const int64_t w = std::max<int64_t>(1, std::llround(double(image.width) * scale));
  const int64_t h = std::max<int64_t>(1, std::llround(double(image.height) * scale));
  if (w == image.width && h == image.height) return encode_jpeg(rgb.data(), w, h, quality, path);
  std::vector<uint8_t> small(size_t(w * h * 3));
  resample_u8(rgb.data(), image.width * 3, 3, {image.width, image.height, w, h, {0, 0, w, h}}, Filter::bicubic,
              small.data(), w * 3);
  return encode_jpeg(small.data(), w, h, quality, path);
}

}  // namespace clip::detail
