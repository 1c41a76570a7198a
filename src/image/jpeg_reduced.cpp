// Reading a JPEG's size from its frame header without decoding; decode_jpeg_reduced, the DCT-scaled decode,
// lives in image/decode_jpeg.cpp beside the exact decoder, whose libjpeg job and error handling it shares.
#include "image/jpeg_reduced.h"

namespace clip::detail {

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

}  // namespace clip::detail
