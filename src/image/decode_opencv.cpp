// BMP, WebP, TIFF and PNM through OpenCV's imgcodecs. OpenCV decides the pixels; the header decides what Pillow
// would call the mode (OpenCV expands palettes to BGR) and the size, which is checked against the pixel limit
// before OpenCV allocates anything. Files shorter than their header says are refused as truncated.
#include <opencv2/core.hpp>
#include <opencv2/core/utils/logger.hpp>
#include <opencv2/imgcodecs.hpp>

#include <array>
#include <cstring>
#include <map>

#include "clip/util/error.h"
#include "image/decode_formats.h"

namespace clip::detail {
namespace {

uint32_t le16(const uint8_t* p) { return p[0] | p[1] << 8; }
uint32_t le32(const uint8_t* p) { return le16(p) | le16(p + 2) << 16; }

// What the header says: size, Pillow's mode where OpenCV cannot tell it, orientation.
struct Header {
  int64_t width = 0;
  int64_t height = 0;
  int orientation = 1;
  bool has_mode = false;           // BMP: P, L or 1 for palette files; RGB or RGBA for 32-bit ones
  PixelMode mode = PixelMode::RGB;
  std::vector<uint8_t> palette;    // BMP mode P: RGB entries
  bool truncated = false;          // shorter than the header says (reported after the pixel-limit check)
};

[[noreturn]] void truncated(const std::string& source, Format f) {
  fail(source, ": truncated ", format_name(f), ": the file ends before the image data does");
}

Header bmp_header(const uint8_t* d, size_t n, const std::string& source) {
  if (n < 26) truncated(source, Format::bmp);
  Header h;
  const uint32_t data_offset = le32(d + 10), header_size = le32(d + 14);
  uint32_t bits, compression = 0, colors = 0, entry = 4;
  if (header_size == 12) {  // OS/2 BITMAPCOREHEADER
    h.width = le16(d + 18);
    h.height = le16(d + 20);
    bits = le16(d + 24);
    entry = 3;
  } else {
    if (header_size < 40 || n < 54) fail(source, ": corrupt BMP: header of ", header_size, " bytes");
    h.width = static_cast<int32_t>(le32(d + 18));
    h.height = std::abs(static_cast<int64_t>(static_cast<int32_t>(le32(d + 22))));  // negative: rows top-down
    bits = le16(d + 28);
    compression = le32(d + 30);
    colors = le32(d + 46);
  }
  if (bits <= 8) {
    // Pillow's BmpImagePlugin: a palette of black and white is "1", one of the gray ramp 0, 1, 2, ... is "L",
    // any other is "P".
    if (colors == 0) colors = 1u << bits;
    const size_t palette_at = 14 + header_size;
    if (colors > 256 || palette_at + static_cast<size_t>(colors) * entry > n) fail(source, ": corrupt BMP palette");
    bool gray = true;
    h.palette.assign(768, 0);
    for (int i = 0; i < 256; ++i) h.palette[3 * i] = h.palette[3 * i + 1] = h.palette[3 * i + 2] = static_cast<uint8_t>(i);
    for (uint32_t i = 0; i < colors; ++i) {
      const uint8_t* bgr = d + palette_at + i * entry;
      const uint8_t expect = colors == 2 ? static_cast<uint8_t>(i * 255) : static_cast<uint8_t>(i);
      gray = gray && bgr[0] == expect && bgr[1] == expect && bgr[2] == expect;
      h.palette[3 * i] = bgr[2], h.palette[3 * i + 1] = bgr[1], h.palette[3 * i + 2] = bgr[0];
    }
    h.has_mode = true;
    h.mode = gray ? (colors == 2 ? PixelMode::bilevel : PixelMode::L) : PixelMode::P;
  } else if (bits == 32) {
    // Alpha only where bit fields name an alpha mask (Pillow's BGRA/RGBA/ABGR raw modes).
    uint32_t alpha_mask = 0;
    if (compression == 3 || compression == 6) alpha_mask = header_size >= 56 && n >= 70 ? le32(d + 66) : 0;
    h.has_mode = true;
    h.mode = alpha_mask != 0 ? PixelMode::RGBA : PixelMode::RGB;
  }
  if ((compression == 0 || compression == 3) && bits > 0 && bits <= 32 && h.width > 0) {
    const uint64_t stride = ((static_cast<uint64_t>(h.width) * bits + 31) / 32) * 4;
    h.truncated = static_cast<uint64_t>(data_offset) + stride * static_cast<uint64_t>(h.height) > n;
  }
  return h;
}

Header webp_header(const uint8_t* d, size_t n, const std::string& source) {
  if (n < 31) truncated(source, Format::webp);  // VP8X's canvas height ends at byte 30
  Header h;
  h.truncated = static_cast<uint64_t>(le32(d + 4)) + 8 > n;
  if (std::memcmp(d + 12, "VP8 ", 4) == 0) {
    h.width = le16(d + 26) & 0x3fff;
    h.height = le16(d + 28) & 0x3fff;
  } else if (std::memcmp(d + 12, "VP8L", 4) == 0) {
    const uint32_t bits = le32(d + 21);
    h.width = (bits & 0x3fff) + 1;
    h.height = ((bits >> 14) & 0x3fff) + 1;
  } else if (std::memcmp(d + 12, "VP8X", 4) == 0) {
    h.width = (le32(d + 24) & 0xffffff) + 1;
    h.height = (le32(d + 27) & 0xffffff) + 1;
    for (size_t at = 12; at + 8 <= n;) {  // chunks: fourcc, size, data padded to even
      const uint64_t length = le32(d + at + 4);
      if (std::memcmp(d + at, "EXIF", 4) == 0 && at + 8 + length <= n) {
        const uint8_t* exif = d + at + 8;
        const size_t skip = length > 6 && std::memcmp(exif, "Exif\0\0", 6) == 0 ? 6 : 0;
        h.orientation = exif_orientation(exif + skip, length - skip);
      }
      at += 8 + length + (length & 1);
    }
  } else {
    fail(source, ": corrupt WebP: unknown chunk '", std::string(reinterpret_cast<const char*>(d + 12), 4), "'");
  }
  return h;
}

Header tiff_header(const uint8_t* d, size_t n, const std::string& source) {
  Header h;
  const std::optional<uint32_t> w = tiff_tag(d, n, 256), ht = tiff_tag(d, n, 257);
  if (!w || !ht) fail(source, ": corrupt TIFF: no image width or length in the first directory");
  h.width = *w;
  h.height = *ht;
  h.orientation = exif_orientation(d, n);
  return h;
}

Header pnm_header(const uint8_t* d, size_t n, const std::string& source) {
  size_t at = 2;
  auto number = [&]() -> int64_t {
    for (;;) {  // whitespace and # comments
      while (at < n && std::strchr(" \t\r\n", d[at]) != nullptr) ++at;
      if (at < n && d[at] == '#') {
        while (at < n && d[at] != '\n') ++at;
      } else {
        break;
      }
    }
    if (at >= n || d[at] < '0' || d[at] > '9') fail(source, ": corrupt PNM header");
    int64_t v = 0;
    while (at < n && d[at] >= '0' && d[at] <= '9' && v < (int64_t{1} << 40)) v = v * 10 + (d[at++] - '0');
    return v;
  };
  Header h;
  h.width = number();
  h.height = number();
  const char kind = static_cast<char>(d[1]);
  if (kind == '5' || kind == '6') {  // binary gray / colour: the data size is known
    const int64_t maxval = number();
    // In double: hostile sides of up to 2^43 each would overflow an int64 product (the pixel limit refuses them).
    const double bytes = static_cast<double>(h.width) * static_cast<double>(h.height) * (kind == '6' ? 3 : 1) *
                         (maxval > 255 ? 2 : 1);
    h.truncated = static_cast<double>(at + 1) + bytes > static_cast<double>(n);
  }
  return h;
}

// OpenCV's BGR(A) to RGB(A), 16-bit colour to its high byte, 16-bit gray to I.
Image from_mat(const cv::Mat& m, const std::string& source) {
  const int channels = m.channels(), depth = m.depth();
  if (depth != CV_8U && depth != CV_16U) fail(source, ": unsupported sample type (OpenCV depth ", depth, ")");
  if (channels != 1 && channels != 3 && channels != 4) fail(source, ": unsupported channel count ", channels);
  const PixelMode mode = channels == 1 ? (depth == CV_16U ? PixelMode::I : PixelMode::L)
                                       : channels == 3 ? PixelMode::RGB : PixelMode::RGBA;
  Image image = Image::allocate(m.cols, m.rows, mode);
  for (int y = 0; y < m.rows; ++y) {
    uint8_t* out = image.row(y);
    if (depth == CV_8U) {
      const uint8_t* in = m.ptr<uint8_t>(y);
      if (channels == 1) {
        std::memcpy(out, in, static_cast<size_t>(m.cols));
        continue;
      }
      for (int x = 0; x < m.cols; ++x, in += channels, out += channels) {
        out[0] = in[2], out[1] = in[1], out[2] = in[0];
        if (channels == 4) out[3] = in[3];
      }
    } else {
      const uint16_t* in = m.ptr<uint16_t>(y);
      for (int x = 0; x < m.cols; ++x, in += channels) {
        if (channels == 1) {
          const int32_t v = in[0];
          std::memcpy(out + 4 * x, &v, 4);
          continue;
        }
        uint8_t* o = out + x * channels;
        o[0] = static_cast<uint8_t>(in[2] >> 8), o[1] = static_cast<uint8_t>(in[1] >> 8), o[2] = static_cast<uint8_t>(in[0] >> 8);
        if (channels == 4) o[3] = static_cast<uint8_t>(in[3] >> 8);
      }
    }
  }
  return image;
}

// OpenCV gives a palette BMP as BGR (or gray): map the colours back to indices so that it resizes as Pillow's P.
Image to_mode(Image image, const Header& h, const std::string& source) {
  if (!h.has_mode || h.mode == image.mode) return image;
  const int64_t count = image.width * image.height, in_bpp = image.pixel_bytes();
  Image out = Image::allocate(image.width, image.height, h.mode);
  switch (h.mode) {
    case PixelMode::L:
    case PixelMode::bilevel:
      for (int64_t i = 0; i < count; ++i) out.pixels[i] = image.pixels[i * in_bpp];
      break;
    case PixelMode::P: {
      out.palette = h.palette;
      std::map<std::array<uint8_t, 3>, uint8_t> index;
      for (int i = 255; i >= 0; --i) index[{h.palette[3 * i], h.palette[3 * i + 1], h.palette[3 * i + 2]}] = static_cast<uint8_t>(i);
      for (int64_t i = 0; i < count; ++i) {
        const uint8_t* p = &image.pixels[i * in_bpp];
        const std::array<uint8_t, 3> rgb = in_bpp >= 3 ? std::array<uint8_t, 3>{p[0], p[1], p[2]}
                                                       : std::array<uint8_t, 3>{p[0], p[0], p[0]};
        const auto it = index.find(rgb);
        if (it == index.end()) fail(source, ": corrupt BMP: a pixel colour is not in the palette");
        out.pixels[i] = it->second;
      }
      break;
    }
    case PixelMode::RGB:
    case PixelMode::RGBA: {
      const int out_bpp = mode_pixel_bytes(h.mode);
      for (int64_t i = 0; i < count; ++i) {
        const uint8_t* p = &image.pixels[i * in_bpp];
        uint8_t* o = &out.pixels[i * out_bpp];
        for (int c = 0; c < 3; ++c) o[c] = in_bpp >= 3 ? p[c] : p[0];
        if (out_bpp == 4) o[3] = in_bpp == 4 ? p[3] : 255;
      }
      break;
    }
    default:
      return image;
  }
  return out;
}

Header header_of(Format format, const uint8_t* data, size_t size, const std::string& source) {
  switch (format) {
    case Format::bmp: return bmp_header(data, size, source);
    case Format::webp: return webp_header(data, size, source);
    case Format::tiff: return tiff_header(data, size, source);
    case Format::pnm: return pnm_header(data, size, source);
    default: fail(source, ": not a format for OpenCV");
  }
}

}  // namespace

Decoded decode_with_opencv(const uint8_t* data, size_t size, Format format, const std::string& source,
                           const DecodeOptions& options) {
  const Header h = header_of(format, data, size, source);
  check_pixel_limit(h.width, h.height, source, options);
  if (h.truncated) truncated(source, format);
  if (size > static_cast<size_t>(INT32_MAX)) fail(source, ": file over 2 GiB");
  cv::Mat mat;
  try {
    const cv::Mat bytes(1, static_cast<int>(size), CV_8UC1, const_cast<uint8_t*>(data));
    // OpenCV's own warnings about a file it cannot read would go to stderr beside our one-line error: off, once.
    static const bool quiet = [] {
      cv::utils::logging::setLogLevel(cv::utils::logging::LOG_LEVEL_ERROR);
      return true;
    }();
    (void)quiet;
    mat = cv::imdecode(bytes, cv::IMREAD_UNCHANGED);  // file's own depth and channels; no EXIF rotation
  } catch (const cv::Exception& e) {
    fail(source, ": corrupt ", format_name(format), ": ", e.err);
  }
  if (mat.empty()) fail(source, ": corrupt or truncated ", format_name(format), " (OpenCV could not decode it)");
  check_pixel_limit(mat.cols, mat.rows, source, options);
  Decoded out;
  out.image = to_mode(from_mat(mat, source), h, source);
  out.orientation = h.orientation;
  return out;
}

}  // namespace clip::detail
