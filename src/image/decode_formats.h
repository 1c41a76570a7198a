#pragma once
// Internal to the decoders: format sniffing, header parsing and the per-format decoders behind decode_image. Each
// decoder exists only in builds with its library (clip_features.h); decode.cpp dispatches accordingly.
// Every function that fails throws clip::Error whose message starts with `source`.
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "clip/image/decode.h"

namespace clip::detail {

enum class Format { jpeg, png, bmp, webp, tiff, pnm, gif, unknown };

/// The format from the first bytes (magic numbers), whatever the file is called.
Format sniff_format(const uint8_t* data, size_t size);

/// "JPEG", "PNG", "BMP", "WebP", "TIFF", "PNM", "GIF"; "image" for unknown.
const char* format_name(Format format);

/// A decoded image and the EXIF orientation its file declares (1 when none).
struct Decoded {
  Image image;
  int orientation = 1;
};

/// Throws when width x height exceeds options.max_pixels (called as soon as a header gives the size).
void check_pixel_limit(int64_t width, int64_t height, const std::string& source, const DecodeOptions& options);

/// The orientation (1-8) in TIFF-structured EXIF data (what follows "Exif\0\0" in a JPEG APP1 segment, a PNG
/// eXIf chunk, a WebP EXIF chunk, or a TIFF file itself); 1 when absent or malformed.
int exif_orientation(const uint8_t* tiff, size_t size);

/// The value of a tag of a TIFF file's first IFD (SHORT or LONG), if present.
std::optional<uint32_t> tiff_tag(const uint8_t* tiff, size_t size, uint16_t tag);

Decoded decode_jpeg(const uint8_t* data, size_t size, const std::string& source, const DecodeOptions& options);
Decoded decode_png(const uint8_t* data, size_t size, const std::string& source, const DecodeOptions& options);

/// BMP, WebP, TIFF, PNM through OpenCV; the pixel limit and PIL's mode come from the header.
Decoded decode_with_opencv(const uint8_t* data, size_t size, Format format, const std::string& source,
                           const DecodeOptions& options);

}  // namespace clip::detail
