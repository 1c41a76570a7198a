// Decoding: every bad input the issue lists gets one clear line naming the file (printed here), the pixel limit is
// checked from the header before anything is allocated, and every format keeps the mode Pillow opens it in. A build
// without a format's library (clip::features()) checks that format's refusal instead.
#include <gtest/gtest.h>

#include <sys/stat.h>
#include <unistd.h>

#include <cstring>
#include <filesystem>
#include <fstream>

#include "clip/image/decode.h"
#include "clip/util/error.h"
#include "image/encode.h"
#include "test_util.h"

namespace fs = std::filesystem;

namespace {

using clip::test::TempDir;

std::string image_bytes(const std::string& name) {
  std::ifstream in(clip::test::data("preprocess/" + name), std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

// Decoding `path` fails with one line that names it and contains `needle`.
void expect_refused(const std::string& path, const std::string& needle, const clip::DecodeOptions& options = {}) {
  try {
    const clip::Image image = clip::decode_image(path, options);
    ADD_FAILURE() << path << ": decoded (" << image.width << "x" << image.height << "), expected '" << needle << "'";
  } catch (const clip::Error& e) {
    const std::string message = e.what();
    std::printf("[ message  ] %s\n", message.c_str());
    EXPECT_EQ(message.rfind(path, 0), 0u) << message;
    EXPECT_NE(message.find(needle), std::string::npos) << message;
    EXPECT_EQ(message.find('\n'), std::string::npos) << message;
  }
}

TEST(DecodeErrors, PathsThatAreNotImageFiles) {
  TempDir dir;
  expect_refused(dir / "missing.jpg", "no such file");
  expect_refused(dir.path().string(), "is a directory");
  const std::string file = dir.write("file.png", image_bytes("images/tiny_5x3.png"));
  expect_refused(file + "/inside.png", "a part of the path is not a folder");
  expect_refused(dir.write("empty.jpg", ""), "empty file");
  expect_refused(dir.write("notes.jpg", "This is a text file\nwith two lines\n"), "not an image file: it starts with text");
  expect_refused(dir.write("noise.png", std::string("\x01\x02\x03\xfe\xff\x00\x10 noise", 14)), "unknown image format");
  expect_refused(dir.write("anim.gif", "GIF89a\x01\x00\x01\x00"), "GIF is not supported");
  // Not regular files: refused at once (a FIFO is never waited on, a device never read without end).
  ASSERT_EQ(::mkfifo((dir / "pipe.jpg").c_str(), 0600), 0);
  expect_refused(dir / "pipe.jpg", "is a FIFO (named pipe), not a regular file");
  expect_refused("/dev/zero", "is a device, not a regular file");
  try {
    clip::decode_image_bytes(nullptr, 0, "memory");
    ADD_FAILURE() << "decoded nothing";
  } catch (const clip::Error& e) {
    EXPECT_STREQ(e.what(), "memory: empty file (0 bytes)");
  }
}

TEST(DecodeErrors, TruncatedFilesOfEveryFormat) {
  CLIP_REQUIRE_FEATURE(jpeg);
  CLIP_REQUIRE_FEATURE(png);
  TempDir dir;
  expect_refused(clip::test::data("preprocess/images/truncated.jpg"), "truncated JPEG");
  const std::string jpeg = image_bytes("images/rocket.jpg");
  expect_refused(dir.write("half.jpg", jpeg.substr(0, jpeg.size() / 2)), "truncated JPEG");
  expect_refused(dir.write("no_eoi.jpg", jpeg.substr(0, jpeg.size() - 2)), "truncated JPEG");  // Pillow refuses it too
  const std::string progressive = image_bytes("extra/progressive.jpg");
  expect_refused(dir.write("progressive.jpg", progressive.substr(0, progressive.size() * 3 / 4)), "truncated JPEG");
  const std::string png = image_bytes("images/chelsea.png");
  expect_refused(dir.write("half.png", png.substr(0, png.size() / 2)), "truncated PNG");
  expect_refused(dir.write("header.png", png.substr(0, 20)), "PNG");
  if (!clip::features().opencv) return;  // FormatsLeftOutAreRefusedSayingWhichOption
  const std::string bmp = image_bytes("extra/rgb.bmp");
  expect_refused(dir.write("half.bmp", bmp.substr(0, bmp.size() / 2)), "truncated BMP");
  const std::string webp = image_bytes("images/astronaut.webp");
  expect_refused(dir.write("half.webp", webp.substr(0, webp.size() / 2)), "truncated WebP");
  const std::string ppm = image_bytes("extra/rgb.ppm");
  expect_refused(dir.write("half.ppm", ppm.substr(0, ppm.size() / 2)), "truncated PNM");
  const std::string tiff = image_bytes("extra/rgb.tiff");
  expect_refused(dir.write("half.tiff", tiff.substr(0, tiff.size() / 2)), "TIFF");
}

// Every short prefix of a file of each format, each in a buffer of exactly its size (so that an ASan build catches a
// read past it): decoded or refused with clip::Error, nothing else. Header parsers once read past tiny WebP (VP8X)
// and BMP (32-bit with bit fields) files.
TEST(DecodeErrors, EveryShortPrefixIsDecodedOrRefused) {
  int refused = 0, decoded = 0;
  for (const std::string file : {"images/rocket.jpg", "images/chelsea.png", "extra/rgb.bmp", "extra/exif8.webp",
                                 "extra/rgba.webp", "extra/rgb.tiff", "extra/rgb.ppm", "extra/palette.bmp"}) {
    if (!clip::test::decodes(file)) continue;
    const std::string bytes = image_bytes(file);
    for (size_t n = 0; n <= std::min<size_t>(bytes.size(), 160); ++n) {
      const std::vector<uint8_t> prefix(bytes.begin(), bytes.begin() + static_cast<std::ptrdiff_t>(n));
      try {
        clip::decode_image_bytes(prefix.data(), prefix.size(), file);
        ++decoded;
      } catch (const clip::Error&) {
        ++refused;
      }
    }
  }
  std::printf("[ measured ] short prefixes: %d refused with clip::Error, %d decoded, 0 crashed\n", refused, decoded);
  EXPECT_GT(refused, 0);
}

TEST(DecodeErrors, CorruptData) {
  CLIP_REQUIRE_FEATURE(jpeg);
  CLIP_REQUIRE_FEATURE(png);
  TempDir dir;
  std::string png = image_bytes("images/chelsea.png");
  png[png.size() / 2] = static_cast<char>(png[png.size() / 2] ^ 0x55);  // inside IDAT: its CRC no longer matches
  expect_refused(dir.write("crc.png", png), "corrupt PNG");
  std::string jpeg = image_bytes("images/rocket.jpg");
  jpeg[jpeg.find("\xff\xc0") + 4] = 12;  // 12-bit samples: not something Pillow's libjpeg reads either
  expect_refused(dir.write("precision.jpg", jpeg), "corrupt JPEG: Unsupported JPEG data precision 12");
}

uint32_t crc32(const std::string& bytes) {
  uint32_t c = 0xffffffffu;
  for (unsigned char b : bytes) {
    c ^= b;
    for (int k = 0; k < 8; ++k) c = (c >> 1) ^ (0xedb88320u & (0u - (c & 1u)));
  }
  return ~c;
}

std::string be32(uint32_t v) { return {char(v >> 24), char(v >> 16), char(v >> 8), char(v)}; }
std::string le32(uint32_t v) { return {char(v), char(v >> 8), char(v >> 16), char(v >> 24)}; }

// Headers that declare 10^10 pixels: refused from the header, before any allocation (allocating would need tens
// of gigabytes, so a test that passes also shows that none happened).
TEST(DecodeErrors, PixelLimitCheckedFromTheHeader) {
  CLIP_REQUIRE_FEATURE(jpeg);
  CLIP_REQUIRE_FEATURE(png);
  TempDir dir;
  const std::string ihdr = "IHDR" + be32(100000) + be32(100000) + std::string("\x08\x02\x00\x00\x00", 5);
  expect_refused(dir.write("bomb.png", std::string("\x89PNG\r\n\x1a\n", 8) + be32(13) + ihdr + be32(crc32(ihdr))),
                 "100000 x 100000 = 10000000000 pixels, over the limit of 89478485");
  std::string jpeg = image_bytes("images/rocket.jpg");
  const size_t sof = jpeg.find("\xff\xc0");
  ASSERT_NE(sof, std::string::npos);
  jpeg.replace(sof + 5, 4, "\xea\x60\xea\x60");  // height, width 60000 (libjpeg's own limit is 65500)
  expect_refused(dir.write("bomb.jpg", jpeg), "60000 x 60000 = 3600000000 pixels, over the limit");
  if (!clip::features().opencv) return;
  std::string bmp = image_bytes("extra/rgb.bmp");
  bmp.replace(18, 8, le32(100000) + le32(100000));
  expect_refused(dir.write("bomb.bmp", bmp), "over the limit");
  std::string webp = image_bytes("extra/exif8.webp");  // VP8X: canvas size at 24, 24 bits each, minus one
  webp.replace(24, 6, std::string("\xff\xff\xff\xff\xff\x00", 6));
  expect_refused(dir.write("bomb.webp", webp), "over the limit");
  const std::string tiff = std::string("II*\0", 4) + le32(8) + std::string("\x02\x00", 2) +
                           std::string("\x00\x01\x04\x00\x01\x00\x00\x00", 8) + le32(100000) +
                           std::string("\x01\x01\x04\x00\x01\x00\x00\x00", 8) + le32(100000) + le32(0);
  expect_refused(dir.write("bomb.tiff", tiff), "over the limit");
  expect_refused(dir.write("bomb.ppm", "P6\n100000 100000\n255\n"), "over the limit");
  // Found by fuzz/fuzz_image: sides whose product overflows an int64 (undefined behaviour before the limit check).
  expect_refused(dir.write("huge.ppm", "P6 6333333333333 3333333333333 255\n"),
                 "6333333333333 x 3333333333333 = 2.11111e+25 pixels, over the limit");
}

TEST(DecodeErrors, PixelLimitIsConfigurable) {
  CLIP_REQUIRE_FEATURE(png);
  clip::DecodeOptions options;
  options.max_pixels = 1000;
  expect_refused(clip::test::data("preprocess/images/chelsea.png"), "451 x 300 = 135300 pixels, over the limit of 1000", options);
  options.max_pixels = 135300;  // at the limit is allowed
  EXPECT_EQ(clip::decode_image(clip::test::data("preprocess/images/chelsea.png"), options).width, 451);
  options.max_pixels = 0;  // no limit
  EXPECT_EQ(clip::decode_image(clip::test::data("preprocess/images/chelsea.png"), options).height, 300);
}

TEST(Decode, ModesAsPillowOpensThem) {
  const std::vector<std::pair<std::string, std::string>> cases = {
      {"images/chelsea.png", "RGB"},     {"images/camera.png", "L"},          {"images/palette_color.png", "P"},
      {"images/horse.png", "RGBA"},      {"images/gray16_257x300.png", "I"},  {"images/rocket.jpg", "RGB"},
      {"images/astronaut.webp", "RGB"},  {"extra/cmyk.jpg", "CMYK"},          {"extra/gray.jpg", "L"},
      {"extra/la.png", "LA"},            {"extra/bilevel.png", "1"},          {"extra/gray4.png", "L"},
      {"extra/rgb16.png", "RGB"},        {"extra/palette_trns.png", "P"},     {"extra/palette.bmp", "P"},
      {"extra/gray.bmp", "L"},           {"extra/bilevel.bmp", "1"},          {"extra/rgb.tiff", "RGB"},
      {"extra/rgb.ppm", "RGB"},          {"extra/rgba.webp", "RGBA"}};
  int left_out = 0;
  for (const auto& [file, mode] : cases) {
    if (!clip::test::decodes(file)) {
      ++left_out;
      continue;
    }
    const clip::Image image = clip::decode_image(clip::test::data("preprocess/" + file));
    EXPECT_EQ(std::string(clip::mode_name(image.mode)), mode) << file;
    EXPECT_EQ(static_cast<int64_t>(image.pixels.size()), image.height * image.row_bytes()) << file;
  }
  if (left_out) std::printf("[ skipped  ] %d of %zu files: formats not in this build\n", left_out, cases.size());
}

// (TIFF is left out: libtiff, under Pillow and OpenCV alike, already turns the pixels by the orientation tag while
// decoding, and exif_transpose then turns them again; the parity test checks that both cases match Pillow.)
TEST(Decode, ExifOrientationOnlyWhenAsked) {
  for (const std::string file : {"exif6.jpg", "exif6.png", "exif8.webp"}) {
    if (!clip::test::decodes(file)) continue;
    const std::string path = clip::test::data("preprocess/extra/" + file);
    const clip::Image as_stored = clip::decode_image(path);
    clip::DecodeOptions options;
    options.apply_exif_orientation = true;
    const clip::Image upright = clip::decode_image(path, options);
    EXPECT_EQ(as_stored.width, 90) << file;
    EXPECT_EQ(upright.width, 120) << file;  // 6 and 8 turn by 90 degrees
    EXPECT_EQ(upright.height, 90) << file;
  }
}

TEST(Decode, BytesInMemoryEqualTheFile) {
  CLIP_REQUIRE_FEATURE(jpeg);
  const std::string bytes = image_bytes("images/rocket.jpg");
  const clip::Image a = clip::decode_image(clip::test::data("preprocess/images/rocket.jpg"));
  const clip::Image b = clip::decode_image_bytes(reinterpret_cast<const uint8_t*>(bytes.data()), bytes.size(), "rocket");
  EXPECT_EQ(a.pixels, b.pixels);
}

// In a build without a format's library, its files are refused with one line naming the option that brings it.
TEST(Decode, FormatsLeftOutAreRefusedSayingWhichOption) {
  const std::vector<std::pair<std::string, std::string>> cases = {{"images/rocket.jpg", "CLIP_WITH_JPEG"},
                                                                   {"images/chelsea.png", "CLIP_WITH_PNG"},
                                                                   {"extra/rgb.bmp", "CLIP_WITH_OPENCV"},
                                                                   {"images/astronaut.webp", "CLIP_WITH_OPENCV"},
                                                                   {"extra/rgb.tiff", "CLIP_WITH_OPENCV"}};
  int checked = 0;
  for (const auto& [file, option] : cases) {
    if (clip::test::decodes(file)) continue;
    expect_refused(clip::test::data("preprocess/" + file), "libclip was built without " + option);
    ++checked;
  }
  if (checked == 0) GTEST_SKIP() << "every format is in this build (" << clip::features_summary() << ")";
}

// The encoders that shards and datasets are written with: PNG gives the pixels back exactly, JPEG at quality 95
// within a few levels; sizes outside libjpeg's range are refused with a line naming the source.
TEST(Encode, RoundTripsThroughTheDecoder) {
  CLIP_REQUIRE_FEATURE(jpeg);
  CLIP_REQUIRE_FEATURE(png);
  const clip::Image photo = clip::decode_image(clip::test::data("preprocess/images/chelsea.png"));  // RGB, 451 x 300
  ASSERT_EQ(photo.mode, clip::PixelMode::RGB);
  const auto* rgb = photo.pixels.data();
  const std::string png = clip::detail::encode_png(rgb, photo.width, photo.height, 3, "chelsea");
  const clip::Image from_png = clip::decode_image_bytes(reinterpret_cast<const uint8_t*>(png.data()), png.size(), "png");
  EXPECT_EQ(from_png.pixels, photo.pixels);
  const std::string jpeg = clip::detail::encode_jpeg(rgb, photo.width, photo.height, 95, "chelsea");
  const clip::Image from_jpeg = clip::decode_image_bytes(reinterpret_cast<const uint8_t*>(jpeg.data()), jpeg.size(), "jpg");
  ASSERT_EQ(from_jpeg.width, photo.width);
  ASSERT_EQ(from_jpeg.height, photo.height);
  double total = 0;
  for (size_t i = 0; i < photo.pixels.size(); ++i) total += std::abs(int(from_jpeg.pixels[i]) - int(photo.pixels[i]));
  const double mean = total / double(photo.pixels.size());
  std::printf("[ measured ] PNG %zu bytes, exact; JPEG q95 %zu bytes, mean |difference| %.3f levels\n", png.size(),
              jpeg.size(), mean);
  EXPECT_LT(mean, 2.0);
  EXPECT_CONTAINS(clip::test::error_of([&] { clip::detail::encode_jpeg(rgb, 70000, 1, 95, "wide"); }),
                  "wide: cannot encode an image of 70000 x 1 pixels");
  EXPECT_CONTAINS(clip::test::error_of([&] { clip::detail::encode_jpeg(rgb, 4, 4, 0, "q"); }), "q: JPEG quality 0");
  EXPECT_CONTAINS(clip::test::error_of([&] { clip::detail::encode_png(rgb, 4, 4, 2, "two"); }), "two: cannot encode 2");
}

}  // namespace
