#pragma once
/// Image files to pixels, in the mode the reference (PIL's Image.open) gives them.
///
///   clip::Image image = clip::decode_image("photo.jpg");   // throws clip::Error naming the file
///
/// JPEG (libjpeg-turbo) and PNG (libpng) are decoded directly, which keeps their exact modes (palette, 1-bit,
/// gray + alpha, 16-bit gray as I, CMYK) and catches truncated files; BMP, WebP, TIFF and PNM go through
/// OpenCV's imgcodecs with the mode read from their headers. Every failure is one clip::Error line that names
/// the file: missing or unreadable path, a directory, an empty file, an unknown format (e.g. text called .jpg),
/// truncated or corrupt data, and a declared size over the pixel limit, checked from the header before any
/// pixel memory is allocated. Each format needs its library in the build (CLIP_WITH_JPEG, CLIP_WITH_PNG,
/// CLIP_WITH_OPENCV; clip::features() tells); a format left out is refused with a line saying which option.
#include <cstddef>
#include <cstdint>
#include <string>

#include "clip/image/image.h"
#include "clip/util/error.h"

namespace clip {

/// PIL's Image.MAX_IMAGE_PIXELS: larger images are refused (decompression bombs).
constexpr int64_t kDefaultMaxImagePixels = 89'478'485;

/// An image refused by DecodeOptions::max_pixels (its header declares more pixels): a clip::Error a server can tell
/// from other decoding failures (413, not 400).
class ImageTooLargeError : public Error {
 public:
  using Error::Error;
};

/// How files are decoded.
struct DecodeOptions {
  int64_t max_pixels = kDefaultMaxImagePixels;  ///< refuse images with more pixels than this (0: no limit)
  bool apply_exif_orientation = false;  ///< rotate/mirror by the EXIF orientation tag (the reference does not)
};

/// Reads and decodes an image file.
Image decode_image(const std::string& path, const DecodeOptions& options = {});

/// Decodes an image held in memory; `source` names it in errors (a file name, a tar member).
Image decode_image_bytes(const uint8_t* data, size_t size, const std::string& source,
                         const DecodeOptions& options = {});

}  // namespace clip
