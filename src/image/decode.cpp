// decode_image: read the file, recognize the format from its bytes, hand it to the decoder for that format.
#include "clip/image/decode.h"

#include <cstring>

#include "clip/util/error.h"
#include "clip_features.h"
#include "image/decode_formats.h"
#include "util/file.h"

namespace clip {
namespace detail {
namespace {

bool starts_with(const uint8_t* d, size_t n, const char* magic, size_t m) {
  return n >= m && std::memcmp(d, magic, m) == 0;
}

// The formats this build decodes, for messages.
const char* supported_formats() {
  static const std::string list = [] {
    std::string s;
    if (CLIP_WITH_JPEG) s += "JPEG, ";
    if (CLIP_WITH_PNG) s += "PNG, ";
    if (CLIP_WITH_OPENCV) s += "BMP, WebP, TIFF, PNM, ";
    return s.empty() ? std::string("none: libclip was built without JPEG, PNG and OpenCV") : s.substr(0, s.size() - 2);
  }();
  return list.c_str();
}

// A format whose decoder this build leaves out.
[[noreturn, maybe_unused]] void not_built(const std::string& source, const char* format, const char* option) {
  fail(source, ": cannot decode ", format, ": libclip was built without ", option, " (supported here: ",
       supported_formats(), "); rebuild with -D", option, "=ON or convert the image");
}

// "not an image" explained by what the file starts with.
[[noreturn]] void unknown_format(const uint8_t* d, size_t n, const std::string& source) {
  const size_t shown = std::min<size_t>(n, 24);
  bool text = true;
  for (size_t i = 0; i < shown; ++i) {
    text = text && (d[i] == '\t' || d[i] == '\n' || d[i] == '\r' || (d[i] >= 0x20 && d[i] < 0x7f));
  }
  if (text) {
    std::string start(reinterpret_cast<const char*>(d), shown);
    for (char& c : start) c = (c == '\n' || c == '\r' || c == '\t') ? ' ' : c;
    fail(source, ": not an image file: it starts with text \"", start, "\" (supported: ", supported_formats(), ")");
  }
  std::string hex;
  for (size_t i = 0; i < std::min<size_t>(n, 8); ++i) hex += str(i ? " " : "", "0123456789abcdef"[d[i] >> 4], "0123456789abcdef"[d[i] & 15]);
  fail(source, ": unknown image format (first bytes ", hex, "; supported: ", supported_formats(), ")");
}

}  // namespace

Format sniff_format(const uint8_t* d, size_t n) {
  if (starts_with(d, n, "\xff\xd8\xff", 3)) return Format::jpeg;
  if (starts_with(d, n, "\x89PNG\r\n\x1a\n", 8)) return Format::png;
  if (starts_with(d, n, "BM", 2)) return Format::bmp;
  if (starts_with(d, n, "RIFF", 4) && n >= 12 && std::memcmp(d + 8, "WEBP", 4) == 0) return Format::webp;
  if (starts_with(d, n, "II*\0", 4) || starts_with(d, n, "MM\0*", 4)) return Format::tiff;
  if (n >= 3 && d[0] == 'P' && d[1] >= '1' && d[1] <= '6' && (d[2] == ' ' || d[2] == '\n' || d[2] == '\r' || d[2] == '\t')) {
    return Format::pnm;
  }
  if (starts_with(d, n, "GIF8", 4)) return Format::gif;
  return Format::unknown;
}

const char* format_name(Format f) {
  switch (f) {
    case Format::jpeg: return "JPEG";
    case Format::png: return "PNG";
    case Format::bmp: return "BMP";
    case Format::webp: return "WebP";
    case Format::tiff: return "TIFF";
    case Format::pnm: return "PNM";
    case Format::gif: return "GIF";
    case Format::unknown: break;
  }
  return "image";
}

void check_pixel_limit(int64_t width, int64_t height, const std::string& source, const DecodeOptions& options) {
  if (width <= 0 || height <= 0) fail(source, ": corrupt header: image size ", width, " x ", height);
  const double pixels = static_cast<double>(width) * static_cast<double>(height);
  if (options.max_pixels > 0 && pixels > static_cast<double>(options.max_pixels)) {
    // A hostile header's product may not fit an int64 (two 2^40 sides); print it as a double then.
    const std::string count = pixels < 9e18 ? std::to_string(static_cast<int64_t>(pixels)) : str(pixels);
    throw ImageTooLargeError(str(source, ": image is ", width, " x ", height, " = ", count, " pixels, over the limit of ",
                                 options.max_pixels, " (a possible decompression bomb; raise max_pixels)"));
  }
}

std::optional<uint32_t> tiff_tag(const uint8_t* d, size_t n, uint16_t tag) {
  if (n < 8) return std::nullopt;
  const bool little = d[0] == 'I' && d[1] == 'I';
  if (!little && !(d[0] == 'M' && d[1] == 'M')) return std::nullopt;
  auto u16 = [&](size_t o) -> uint32_t { return little ? d[o] | d[o + 1] << 8 : d[o] << 8 | d[o + 1]; };
  auto u32 = [&](size_t o) -> uint32_t {
    return little ? u16(o) | u16(o + 2) << 16 : u16(o) << 16 | u16(o + 2);
  };
  if (u16(2) != 42) return std::nullopt;
  const size_t ifd = u32(4);
  if (ifd > n - 2) return std::nullopt;
  const size_t entries = u16(ifd);
  for (size_t i = 0; i < entries; ++i) {
    const size_t e = ifd + 2 + 12 * i;
    if (e + 12 > n) break;
    if (u16(e) != tag) continue;
    const uint32_t type = u16(e + 2);
    if (type == 3) return u16(e + 8);  // SHORT
    if (type == 4) return u32(e + 8);  // LONG
    return std::nullopt;
  }
  return std::nullopt;
}

int exif_orientation(const uint8_t* tiff, size_t size) {
  const std::optional<uint32_t> v = tiff_tag(tiff, size, 0x0112);
  return v && *v >= 1 && *v <= 8 ? static_cast<int>(*v) : 1;
}

}  // namespace detail

Image decode_image_bytes(const uint8_t* data, size_t size, const std::string& source, const DecodeOptions& options) {
  using detail::Format;
  if (size == 0) fail(source, ": empty file (0 bytes)");
  const Format format = detail::sniff_format(data, size);
  detail::Decoded decoded;
  switch (format) {
    case Format::jpeg:
#if CLIP_WITH_JPEG
      decoded = detail::decode_jpeg(data, size, source, options);
      break;
#else
      detail::not_built(source, "JPEG", "CLIP_WITH_JPEG");
#endif
    case Format::png:
#if CLIP_WITH_PNG
      decoded = detail::decode_png(data, size, source, options);
      break;
#else
      detail::not_built(source, "PNG", "CLIP_WITH_PNG");
#endif
    case Format::bmp:
    case Format::webp:
    case Format::tiff:
    case Format::pnm:
#if CLIP_WITH_OPENCV
      decoded = detail::decode_with_opencv(data, size, format, source, options);
      break;
#else
      detail::not_built(source, detail::format_name(format), "CLIP_WITH_OPENCV");
#endif
    case Format::gif: fail(source, ": GIF is not supported (OpenCV cannot decode it); convert it to PNG");
    case Format::unknown: detail::unknown_format(data, size, source);
  }
  if (options.apply_exif_orientation && decoded.orientation != 1) {
    return apply_orientation(decoded.image, decoded.orientation);
  }
  return std::move(decoded.image);
}

Image decode_image(const std::string& path, const DecodeOptions& options) {
  const std::string bytes = read_file(path, "file", kMaxReadBytes);
  return decode_image_bytes(reinterpret_cast<const uint8_t*>(bytes.data()), bytes.size(), path, options);
}

}  // namespace clip
