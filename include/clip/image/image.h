#pragma once
/// A decoded image in the pixel mode its file holds, before any conversion.
///
///   clip::Image image = clip::decode_image("cat.png");    // e.g. mode P, 10 x 10 (see decode.h)
///   std::vector<uint8_t> rgb(image.width * image.height * 3);
///   clip::convert_to_rgb(image.pixels.data(), image.mode, image.palette.data(), image.width * image.height, rgb.data());
///
/// The reference (openai/CLIP, open_clip) resizes a PIL image in the mode its file opened as and converts to RGB
/// last, so the mode decides how it is resampled: palette and 1-bit images by nearest neighbour, RGBA and LA with
/// premultiplied alpha, 16-bit gray as 32-bit integers. Modes are named after Pillow's.
#include <cstdint>
#include <vector>

namespace clip {

/// Pixel layouts (Pillow's modes).
enum class PixelMode : uint8_t {
  L,        ///< 8-bit gray
  LA,       ///< 8-bit gray + alpha
  RGB,      ///< 8-bit red, green, blue
  RGBA,     ///< 8-bit red, green, blue, alpha (not premultiplied)
  P,        ///< 8-bit indices into `Image::palette`
  bilevel,  ///< Pillow's "1": one byte per pixel, 0 or 255
  I,        ///< 32-bit signed integers, native byte order (a 16-bit gray PNG opens as this)
  CMYK,     ///< 8-bit cyan, magenta, yellow, black (the Adobe polarity of JPEG files already undone)
};

/// Pillow's name of a mode: "L", "LA", "RGB", "RGBA", "P", "1", "I", "CMYK".
const char* mode_name(PixelMode mode);

/// Samples per pixel: 1 (L, P, 1, I), 2 (LA), 3 (RGB), 4 (RGBA, CMYK).
int mode_channels(PixelMode mode);

/// Bytes per pixel: 4 for I, else mode_channels().
int mode_pixel_bytes(PixelMode mode);

/// An image: rows top to bottom, samples interleaved, no row padding.
struct Image {
  int64_t width = 0;
  int64_t height = 0;
  PixelMode mode = PixelMode::RGB;
  std::vector<uint8_t> pixels;   ///< height * width * mode_pixel_bytes(mode) bytes
  std::vector<uint8_t> palette;  ///< mode P: 256 RGB triplets (768 bytes); empty otherwise

  /// An image of the given size and mode with zeroed pixels. Mode P gets Pillow's initial palette, a gray ramp
  /// (entry i is i, i, i), which a file's palette then overwrites from the start.
  static Image allocate(int64_t width, int64_t height, PixelMode mode);

  int64_t pixel_bytes() const { return mode_pixel_bytes(mode); }
  int64_t row_bytes() const { return width * pixel_bytes(); }
  uint8_t* row(int64_t y) { return pixels.data() + y * row_bytes(); }
  const uint8_t* row(int64_t y) const { return pixels.data() + y * row_bytes(); }
};

/// Converts `count` pixels of `mode` to RGB as Pillow's convert("RGB") does: alpha dropped, not composited; gray
/// replicated; P looked up in `palette` (768 bytes; unused otherwise); 1 as 0 or 255; I clipped to 0..255; CMYK
/// as Pillow 9 does (each of C, M, Y scaled by 255 - K).
void convert_to_rgb(const uint8_t* pixels, PixelMode mode, const uint8_t* palette, int64_t count, uint8_t* rgb);

/// Premultiplies (RGBA -> Pillow's RGBa, LA -> La) `count` pixels in place: c = round(c * a / 255).
void premultiply_alpha(uint8_t* pixels, PixelMode mode, int64_t count);

/// Undoes premultiply_alpha as Pillow does (RGBa -> RGBA): c = min(255, c * 255 / a) for 0 < a < 255.
void unpremultiply_alpha(uint8_t* pixels, PixelMode mode, int64_t count);

/// Applies an EXIF orientation (1-8, the values of tag 0x0112) as PIL's ImageOps.exif_transpose: 2 mirrors,
/// 3 rotates by 180 degrees, 6 rotates clockwise by 90, 8 anticlockwise, 5 and 7 transpose. 1 and values outside
/// 1-8 leave the image as it is.
Image apply_orientation(const Image& image, int orientation);

}  // namespace clip
