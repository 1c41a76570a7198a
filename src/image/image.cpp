#include "clip/image/image.h"

#include <c10/util/Exception.h>

#include <algorithm>
#include <cstring>

namespace clip {
namespace {

// Pillow's MULDIV255: round(a * b / 255) in integers.
inline uint8_t muldiv255(unsigned a, unsigned b) {
  const unsigned t = a * b + 128;
  return static_cast<uint8_t>(((t >> 8) + t) >> 8);
}

}  // namespace

const char* mode_name(PixelMode mode) {
  switch (mode) {
    case PixelMode::L: return "L";
    case PixelMode::LA: return "LA";
    case PixelMode::RGB: return "RGB";
    case PixelMode::RGBA: return "RGBA";
    case PixelMode::P: return "P";
    case PixelMode::bilevel: return "1";
    case PixelMode::I: return "I";
    case PixelMode::CMYK: return "CMYK";
  }
  return "?";
}

int mode_channels(PixelMode mode) {
  switch (mode) {
    case PixelMode::LA: return 2;
    case PixelMode::RGB: return 3;
    case PixelMode::RGBA:
    case PixelMode::CMYK: return 4;
    default: return 1;
  }
}

int mode_pixel_bytes(PixelMode mode) { return mode == PixelMode::I ? 4 : mode_channels(mode); }

Image Image::allocate(int64_t width, int64_t height, PixelMode mode) {
  TORCH_CHECK(width >= 0 && height >= 0, "Image::allocate: negative size ", width, " x ", height);
  Image image;
  image.width = width;
  image.height = height;
  image.mode = mode;
  image.pixels.resize(static_cast<size_t>(width * height * mode_pixel_bytes(mode)));
  if (mode == PixelMode::P) {
    image.palette.resize(768);
    for (int i = 0; i < 768; ++i) image.palette[i] = static_cast<uint8_t>(i / 3);
  }
  return image;
}

void convert_to_rgb(const uint8_t* in, PixelMode mode, const uint8_t* palette, int64_t count, uint8_t* out) {
  switch (mode) {
    case PixelMode::RGB:
      std::memcpy(out, in, static_cast<size_t>(count) * 3);
      return;
    case PixelMode::RGBA:
      for (int64_t i = 0; i < count; ++i, in += 4, out += 3) out[0] = in[0], out[1] = in[1], out[2] = in[2];
      return;
    case PixelMode::L:
      for (int64_t i = 0; i < count; ++i, out += 3) out[0] = out[1] = out[2] = in[i];
      return;
    case PixelMode::LA:
      for (int64_t i = 0; i < count; ++i, out += 3) out[0] = out[1] = out[2] = in[2 * i];
      return;
    case PixelMode::bilevel:
      for (int64_t i = 0; i < count; ++i, out += 3) out[0] = out[1] = out[2] = in[i] ? 255 : 0;
      return;
    case PixelMode::P:
      TORCH_CHECK(palette != nullptr, "convert_to_rgb: mode P needs a palette");
      for (int64_t i = 0; i < count; ++i, out += 3) std::memcpy(out, palette + 3 * in[i], 3);
      return;
    case PixelMode::I:
      for (int64_t i = 0; i < count; ++i, out += 3) {
        int32_t v;
        std::memcpy(&v, in + 4 * i, 4);
        out[0] = out[1] = out[2] = static_cast<uint8_t>(std::clamp<int32_t>(v, 0, 255));
      }
      return;
    case PixelMode::CMYK:
      // Pillow 9's cmyk2rgb: each of C, M, Y removes its share of what K leaves.
      for (int64_t i = 0; i < count; ++i, in += 4, out += 3) {
        const unsigned nk = 255u - in[3];
        for (int c = 0; c < 3; ++c) out[c] = static_cast<uint8_t>(nk - muldiv255(in[c], nk));
      }
      return;
  }
}

void premultiply_alpha(uint8_t* p, PixelMode mode, int64_t count) {
  TORCH_CHECK(mode == PixelMode::RGBA || mode == PixelMode::LA, "premultiply_alpha: mode ", mode_name(mode));
  const int n = mode_channels(mode), colors = n - 1;
  for (int64_t i = 0; i < count; ++i, p += n) {
    const unsigned a = p[colors];
    for (int c = 0; c < colors; ++c) p[c] = muldiv255(p[c], a);
  }
}

void unpremultiply_alpha(uint8_t* p, PixelMode mode, int64_t count) {
  TORCH_CHECK(mode == PixelMode::RGBA || mode == PixelMode::LA, "unpremultiply_alpha: mode ", mode_name(mode));
  const int n = mode_channels(mode), colors = n - 1;
  for (int64_t i = 0; i < count; ++i, p += n) {
    const unsigned a = p[colors];
    if (a == 0 || a == 255) continue;
    for (int c = 0; c < colors; ++c) p[c] = static_cast<uint8_t>(std::min(255u, 255u * p[c] / a));
  }
}

Image apply_orientation(const Image& in, int orientation) {
  if (orientation < 2 || orientation > 8) return in;
  const bool swap = orientation >= 5;  // 5-8 exchange width and height
  Image out = Image::allocate(swap ? in.height : in.width, swap ? in.width : in.height, in.mode);
  out.palette = in.palette;
  const int64_t W = in.width, H = in.height, bpp = in.pixel_bytes();
  for (int64_t y = 0; y < out.height; ++y) {
    uint8_t* dst = out.row(y);
    for (int64_t x = 0; x < out.width; ++x, dst += bpp) {
      int64_t sx = x, sy = y;  // the source pixel of output (x, y)
      switch (orientation) {
        case 2: sx = W - 1 - x; break;                      // mirror left-right
        case 3: sx = W - 1 - x, sy = H - 1 - y; break;      // rotate 180
        case 4: sy = H - 1 - y; break;                      // mirror top-bottom
        case 5: sx = y, sy = x; break;                      // transpose
        case 6: sx = y, sy = H - 1 - x; break;              // rotate 90 clockwise (PIL ROTATE_270)
        case 7: sx = W - 1 - y, sy = H - 1 - x; break;      // transverse
        case 8: sx = W - 1 - y, sy = x; break;              // rotate 90 anticlockwise (PIL ROTATE_90)
      }
      std::memcpy(dst, in.row(sy) + sx * bpp, static_cast<size_t>(bpp));
    }
  }
  return out;
}

}  // namespace clip
