#pragma once
// Pixels to image file bytes: JPEG through libjpeg(-turbo) and PNG through libpng, with the settings OpenCV's
// imencode and Pillow's save use by default (JPEG: baseline, 4:2:0, the quality given; PNG: zlib's default level).
// For writing shards and datasets. In a build without the library (CLIP_WITH_JPEG / CLIP_WITH_PNG) the function
// throws clip::Error saying so. Every failure names `source`.
#include <cstdint>
#include <string>

namespace clip::detail {

/// RGB, 8 bits per sample, rows packed: `rgb` holds width * height * 3 bytes. quality: 1..100.
std::string encode_jpeg(const uint8_t* rgb, int64_t width, int64_t height, int quality, const std::string& source);

/// Gray (channels 1) or RGB (channels 3), 8 bits per sample, rows packed.
std::string encode_png(const uint8_t* pixels, int64_t width, int64_t height, int channels, const std::string& source);

}  // namespace clip::detail
