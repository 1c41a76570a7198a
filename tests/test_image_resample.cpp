// Pillow-exact resampling, the preprocessing geometry, RandomResizedCrop and normalization, on pixel buffers
// (no decoding: this suite builds with CLIP_WITH_OPENCV=OFF too). Expected numbers were printed by Pillow 9.4.
#include <gtest/gtest.h>

#include <ATen/ATen.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <random>
#include <tuple>

#include "clip/image/transform.h"
#include "clip/model/config.h"
#include "clip/util/error.h"

namespace {

using clip::Filter;
using clip::Image;
using clip::PixelMode;
using clip::ResampleGeometry;
using clip::Window;

// A 7 x 5 gray image and Pillow's resizes of it (Image.fromarray(a).resize(size, filter)).
const std::vector<uint8_t> kSource = {255, 228, 34,  121, 243, 189, 6,   131, 102, 168, 82,  193,
                                      187, 150, 81,  243, 205, 24,  236, 8,   246, 164, 231, 36,
                                      210, 111, 172, 210, 174, 176, 218, 242, 169, 114, 205};

std::vector<uint8_t> resize_gray(int64_t w, int64_t h, Filter filter, Window window = {}) {
  if (window.width == 0) window = {0, 0, w, h};
  std::vector<uint8_t> out(window.width * window.height);
  clip::resample_u8(kSource.data(), 7, 1, ResampleGeometry{7, 5, w, h, window}, filter, out.data(), window.width);
  return out;
}

TEST(Resample, MatchesPillowBicubicDown) {
  EXPECT_EQ(resize_gray(3, 4, Filter::bicubic), (std::vector<uint8_t>{181, 138, 144, 141, 136, 161, 173, 132, 162, 181, 196, 163}));
  EXPECT_EQ(resize_gray(7, 2, Filter::bicubic), (std::vector<uint8_t>{162, 181, 125, 80, 219, 147, 123, 144, 211, 144, 176, 159, 113, 222}));
}

TEST(Resample, MatchesPillowBicubicUp) {
  const std::vector<uint8_t> expected = {
      255, 255, 225, 64,  35,  124, 215, 248, 200, 72,  0,   224, 214, 180, 92,  70,  112, 194, 232, 202, 104,
      37,  145, 124, 107, 148, 133, 88,  156, 205, 197, 160, 131, 93,  118, 160, 204, 146, 44,  160, 199, 104,
      155, 206, 70,  150, 248, 231, 133, 24,  175, 193, 13,  135, 255, 116, 184, 244, 134, 95,  125, 157, 147,
      95,  171, 237, 164, 202, 217, 74,  93,  221, 150, 116, 170, 197, 211, 173, 183, 189, 164, 189, 240, 183,
      138, 133, 175, 210, 175, 171, 174, 218, 244, 245, 202, 152, 109, 161, 211};
  EXPECT_EQ(resize_gray(11, 9, Filter::bicubic), expected);
}

TEST(Resample, MatchesPillowBilinearAndNearest) {
  EXPECT_EQ(resize_gray(4, 3, Filter::bilinear), (std::vector<uint8_t>{185, 112, 182, 127, 155, 147, 142, 159, 181, 177, 166, 175}));
  EXPECT_EQ(resize_gray(4, 5, Filter::nearest),
            (std::vector<uint8_t>{255, 34, 243, 6, 131, 168, 193, 150, 81, 205, 236, 246, 164, 36, 111, 210, 174, 218, 169, 205}));
  const std::vector<uint8_t> up = resize_gray(13, 8, Filter::nearest);
  EXPECT_EQ(std::vector<uint8_t>(up.begin(), up.begin() + 13),
            (std::vector<uint8_t>{255, 255, 228, 228, 34, 34, 121, 243, 243, 189, 189, 6, 6}));
  EXPECT_EQ(std::vector<uint8_t>(up.end() - 13, up.end()),
            (std::vector<uint8_t>{174, 174, 176, 176, 218, 218, 242, 169, 169, 114, 114, 205, 205}));
}

// 16-bit gray as Pillow 10+ resizes it (I;16): each pass rounded and clipped to 0..65535, so a clipped
// intermediate shows in the result (Pillow's 32-bit mode I gives 51085 and 26688 for the first and sixth values).
TEST(Resample, MatchesPillowI16) {
  std::vector<int32_t> src(kSource.size());
  for (size_t i = 0; i < src.size(); ++i) src[i] = kSource[i] > 100 ? kSource[i] * 257 : 0;  // hard edges: overshoot
  std::vector<int32_t> out(15);
  clip::resample_i32(reinterpret_cast<const uint8_t*>(src.data()), 7 * 4, ResampleGeometry{7, 5, 5, 3, {0, 0, 5, 3}},
                     Filter::bicubic, reinterpret_cast<uint8_t*>(out.data()), 5 * 4);
  EXPECT_EQ(out, (std::vector<int32_t>{50407, 28878, 22052, 55788, 24609, 26732, 46586, 20707, 36175, 44962, 47421,
                                       40538, 51884, 35491, 48301}));
}

// Any window of the resized image equals the same window cut from the whole result.
TEST(Resample, WindowsAreExactCutsOfTheWholeResize) {
  std::mt19937 rng(7);
  for (int trial = 0; trial < 40; ++trial) {
    const int64_t w = 1 + rng() % 90, h = 1 + rng() % 90, ow = 1 + rng() % 120, oh = 1 + rng() % 120;
    const int channels = 1 + static_cast<int>(rng() % 4);
    std::vector<uint8_t> src(w * h * channels);
    for (uint8_t& v : src) v = static_cast<uint8_t>(rng());
    for (Filter filter : {Filter::bicubic, Filter::bilinear, Filter::nearest}) {
      std::vector<uint8_t> full(ow * oh * channels);
      clip::resample_u8(src.data(), w * channels, channels, {w, h, ow, oh, {0, 0, ow, oh}}, filter, full.data(), ow * channels);
      const int64_t x = rng() % ow, y = rng() % oh, ww = 1 + rng() % (ow - x), wh = 1 + rng() % (oh - y);
      std::vector<uint8_t> part(ww * wh * channels);
      clip::resample_u8(src.data(), w * channels, channels, {w, h, ow, oh, {x, y, ww, wh}}, filter, part.data(), ww * channels);
      for (int64_t r = 0; r < wh; ++r) {
        ASSERT_EQ(0, std::memcmp(&part[r * ww * channels], &full[((y + r) * ow + x) * channels], ww * channels))
            << w << "x" << h << " -> " << ow << "x" << oh << " channels " << channels << " window " << x << "," << y;
      }
    }
  }
}

// Pillow's algorithm written plainly (whole image, one sample at a time): the vectorized kernels must agree with
// it on every size, channel count and filter.
std::vector<uint8_t> plain_resize(const std::vector<uint8_t>& src, int64_t w, int64_t h, int c, int64_t ow, int64_t oh,
                                  bool bicubic) {
  auto taps = [&](int64_t in, int64_t out) {
    const double scale = static_cast<double>(in) / out, fs = std::max(scale, 1.0), support = (bicubic ? 2.0 : 1.0) * fs;
    std::vector<std::vector<std::pair<int64_t, int32_t>>> all(out);
    for (int64_t x = 0; x < out; ++x) {
      const double center = (x + 0.5) * scale;
      const int64_t lo = std::max<int64_t>(0, static_cast<int64_t>(center - support + 0.5));
      const int64_t hi = std::min<int64_t>(in, static_cast<int64_t>(center + support + 0.5));
      std::vector<double> k;
      double sum = 0;
      for (int64_t i = lo; i < hi; ++i) {
        double d = std::abs((i - center + 0.5) * (1.0 / fs)), v;
        if (bicubic) {
          v = d < 1 ? (1.5 * d - 2.5) * d * d + 1 : d < 2 ? (((d - 5) * d + 8) * d - 4) * -0.5 : 0;
        } else {
          v = d < 1 ? 1 - d : 0;
        }
        k.push_back(v);
        sum += v;
      }
      for (size_t i = 0; i < k.size(); ++i) {
        const double f = k[i] / sum * (1 << 22);
        all[x].emplace_back(lo + static_cast<int64_t>(i), static_cast<int32_t>(f < 0 ? f - 0.5 : f + 0.5));
      }
    }
    return all;
  };
  auto clip8 = [](int64_t v) { return static_cast<uint8_t>(std::clamp<int64_t>(v >> 22, 0, 255)); };
  const auto ht = taps(w, ow), vt = taps(h, oh);
  // One pass along x (rows of the source taken at `in_w` wide) or along y, as Pillow's two resamplers.
  auto horizontal = [&](const std::vector<uint8_t>& in, int64_t in_w, int64_t rows) {
    std::vector<uint8_t> res(rows * ow * c);
    for (int64_t y = 0; y < rows; ++y)
      for (int64_t x = 0; x < ow; ++x)
        for (int ch = 0; ch < c; ++ch) {
          int64_t acc = 1 << 21;
          for (const auto& [i, k] : ht[x]) acc += in[(y * in_w + i) * c + ch] * k;
          res[(y * ow + x) * c + ch] = ow == w ? in[(y * in_w + x) * c + ch] : clip8(acc);
        }
    return res;
  };
  auto vertical = [&](const std::vector<uint8_t>& in, int64_t cols) {
    std::vector<uint8_t> res(oh * cols * c);
    for (int64_t y = 0; y < oh; ++y)
      for (int64_t x = 0; x < cols; ++x)
        for (int ch = 0; ch < c; ++ch) {
          int64_t acc = 1 << 21;
          for (const auto& [i, k] : vt[y]) acc += in[(i * cols + x) * c + ch] * k;
          res[(y * cols + x) * c + ch] = oh == h ? in[(y * cols + x) * c + ch] : clip8(acc);
        }
    return res;
  };
  // Pillow 13 runs the vertical pass first when the height shrinks by more than twice as many pixels as the width.
  const bool vertical_first = ow != w && oh < h && h - oh > 2 * (w - ow);
  std::vector<uint8_t> out = vertical_first ? horizontal(vertical(src, w), w, oh) : vertical(horizontal(src, w, h), ow);
  return out;
}

TEST(Resample, VectorKernelsAgreeWithThePlainAlgorithm) {
  std::mt19937 rng(11);
  int compared = 0;
  for (int trial = 0; trial < 150; ++trial) {
    const int64_t w = 1 + rng() % 200, h = 1 + rng() % 60, ow = 1 + rng() % 120, oh = 1 + rng() % 60;
    const int channels = 1 + static_cast<int>(rng() % 4);
    const bool bicubic = rng() % 2;
    std::vector<uint8_t> src(w * h * channels);
    for (uint8_t& v : src) v = static_cast<uint8_t>(rng() % 4 == 0 ? (rng() % 2) * 255 : rng());  // many extremes
    std::vector<uint8_t> got(ow * oh * channels);
    clip::resample_u8(src.data(), w * channels, channels, {w, h, ow, oh, {0, 0, ow, oh}},
                      bicubic ? Filter::bicubic : Filter::bilinear, got.data(), ow * channels);
    ASSERT_EQ(got, plain_resize(src, w, h, channels, ow, oh, bicubic))
        << w << "x" << h << " -> " << ow << "x" << oh << " channels " << channels << (bicubic ? " bicubic" : " bilinear");
    ++compared;
  }
  std::printf("[ measured ] %d random resizes identical to the plain algorithm\n", compared);
}

TEST(Resample, SameSizeIsACopy) {
  EXPECT_EQ(resize_gray(7, 5, Filter::bicubic), kSource);
  EXPECT_EQ(resize_gray(7, 5, Filter::nearest), kSource);
}

TEST(Convert, MatchesPillowConversions) {
  // Pillow 9.4: CMYK (10,20,30,40) (200,100,50,25) (255,0,128,255) -> RGB.
  const uint8_t cmyk[] = {10, 20, 30, 40, 200, 100, 50, 25, 255, 0, 128, 255};
  uint8_t rgb[9];
  clip::convert_to_rgb(cmyk, PixelMode::CMYK, nullptr, 3, rgb);
  EXPECT_EQ(std::vector<uint8_t>(rgb, rgb + 9), (std::vector<uint8_t>{207, 198, 190, 50, 140, 185, 0, 0, 0}));
  // I is clipped; 1 is 0 or 255.
  const int32_t values[] = {-5, 100, 70000};
  clip::convert_to_rgb(reinterpret_cast<const uint8_t*>(values), PixelMode::I, nullptr, 3, rgb);
  EXPECT_EQ(std::vector<uint8_t>(rgb, rgb + 9), (std::vector<uint8_t>{0, 0, 0, 100, 100, 100, 255, 255, 255}));
  // LA -> La -> LA (Pillow: La [100,128, 0,1, 0,0, 77,254], back [199,128, 255,1, 0,0, 77,254]).
  uint8_t la[] = {200, 128, 100, 1, 255, 0, 77, 254};
  clip::premultiply_alpha(la, PixelMode::LA, 4);
  EXPECT_EQ(std::vector<uint8_t>(la, la + 8), (std::vector<uint8_t>{100, 128, 0, 1, 0, 0, 77, 254}));
  uint8_t la_pre[] = {100, 128, 1, 1, 0, 0, 77, 254};
  clip::unpremultiply_alpha(la_pre, PixelMode::LA, 4);
  EXPECT_EQ(std::vector<uint8_t>(la_pre, la_pre + 8), (std::vector<uint8_t>{199, 128, 255, 1, 0, 0, 77, 254}));
}

TEST(Orientation, AllEightAsPillowExifTranspose) {
  // 3 x 2 image with pixels 1..6; expected layouts of PIL's transposes (rows top to bottom).
  Image image = Image::allocate(3, 2, PixelMode::L);
  for (int i = 0; i < 6; ++i) image.pixels[i] = static_cast<uint8_t>(i + 1);
  const std::vector<std::pair<int, std::vector<uint8_t>>> cases = {
      {1, {1, 2, 3, 4, 5, 6}}, {2, {3, 2, 1, 6, 5, 4}}, {3, {6, 5, 4, 3, 2, 1}}, {4, {4, 5, 6, 1, 2, 3}},
      {5, {1, 4, 2, 5, 3, 6}}, {6, {4, 1, 5, 2, 6, 3}}, {7, {6, 3, 5, 2, 4, 1}}, {8, {3, 6, 2, 5, 1, 4}}};
  for (const auto& [orientation, expected] : cases) {
    const Image out = clip::apply_orientation(image, orientation);
    EXPECT_EQ(out.pixels, expected) << "orientation " << orientation;
    EXPECT_EQ(out.width, orientation >= 5 ? 2 : 3);
  }
}

Image random_rgb(int64_t w, int64_t h, uint32_t seed) {
  Image image = Image::allocate(w, h, PixelMode::RGB);
  std::mt19937 rng(seed);
  for (uint8_t& v : image.pixels) v = static_cast<uint8_t>(rng());
  return image;
}

// The geometry of each resize mode against the resize done by hand.
TEST(Preprocess, ShortestIsResizeThenCentreCropWithPythonRounding) {
  const Image image = random_rgb(101, 67, 1);  // -> int(32 * 101 / 67) = 48 x 32, crop offset round(8.0) = 8
  clip::PreprocessOptions o;
  o.size = 32;
  std::vector<uint8_t> got(32 * 32 * 3), expected(32 * 32 * 3);
  clip::preprocess_rgb(image, o, got.data());
  clip::resample_u8(image.pixels.data(), 101 * 3, 3, {101, 67, 48, 32, {8, 0, 32, 32}}, Filter::bicubic, expected.data(), 96);
  EXPECT_EQ(got, expected);
  // 33 x 101 -> 32 x int(32 * 101 / 33) = 32 x 97: offset round(32.5) = 32, half to even.
  const Image tall = random_rgb(33, 101, 2);
  clip::preprocess_rgb(tall, o, got.data());
  clip::resample_u8(tall.pixels.data(), 33 * 3, 3, {33, 101, 32, 97, {0, 32, 32, 32}}, Filter::bicubic, expected.data(), 96);
  EXPECT_EQ(got, expected);
}

TEST(Preprocess, LongestPadsAndSquashStretches) {
  const Image image = random_rgb(100, 50, 3);
  clip::PreprocessOptions o;
  o.size = 40;
  o.resize_mode = clip::ResizeMode::longest;  // -> 40 x 20, padded by 10 rows above and below
  o.fill = 7;
  std::vector<uint8_t> got(40 * 40 * 3), expected(40 * 20 * 3);
  clip::preprocess_rgb(image, o, got.data());
  clip::resample_u8(image.pixels.data(), 300, 3, {100, 50, 40, 20, {0, 0, 40, 20}}, Filter::bicubic, expected.data(), 120);
  for (int64_t i = 0; i < 10 * 120; ++i) ASSERT_EQ(got[i], 7);
  EXPECT_EQ(0, std::memcmp(&got[10 * 120], expected.data(), expected.size()));
  for (int64_t i = 30 * 120; i < 40 * 120; ++i) ASSERT_EQ(got[i], 7);

  o.resize_mode = clip::ResizeMode::squash;
  o.interpolation = Filter::bilinear;
  std::vector<uint8_t> squash(40 * 40 * 3);
  clip::preprocess_rgb(image, o, got.data());
  clip::resample_u8(image.pixels.data(), 300, 3, {100, 50, 40, 40, {0, 0, 40, 40}}, Filter::bilinear, squash.data(), 120);
  EXPECT_EQ(got, squash);
}

TEST(Preprocess, TensorInputEqualsImageInput) {
  const Image image = random_rgb(80, 60, 4);
  clip::PreprocessOptions o;
  o.size = 48;
  const at::Tensor hwc = at::from_blob(const_cast<uint8_t*>(image.pixels.data()), {60, 80, 3}, at::kByte);
  EXPECT_TRUE(at::equal(clip::preprocess_rgb_tensor(hwc, o), clip::preprocess(image, o)));
  EXPECT_THROW(clip::preprocess_rgb_tensor(hwc.to(at::kFloat), o), c10::Error);
}

TEST(Normalize, IsToTensorThenNormalizeBitForBit) {
  std::vector<uint8_t> rgb(256 * 3);
  for (int i = 0; i < 256 * 3; ++i) rgb[i] = static_cast<uint8_t>(i / 3);
  const clip::PreprocessOptions o;
  at::Tensor got = at::empty({3, 256}, at::kFloat);
  clip::normalize_rgb(rgb.data(), 256, o.mean, o.std, got.data_ptr<float>());
  // torchvision: img.float().div(255), then (x - mean) / std with float32 mean and std tensors.
  const at::Tensor x = at::arange(256, at::kFloat).div(255).unsqueeze(0).expand({3, 256});
  const at::Tensor mean = at::tensor({o.mean[0], o.mean[1], o.mean[2]}, at::kFloat).unsqueeze(1);
  const at::Tensor std = at::tensor({o.std[0], o.std[1], o.std[2]}, at::kFloat).unsqueeze(1);
  EXPECT_TRUE(at::equal(got, (x - mean) / std));
}

TEST(RandomResizedCrop, ReproducibleAndWithinTheRanges) {
  const clip::RandomResizedCropOptions o;  // scale 0.9-1.0, ratio 3/4-4/3 (open_clip's)
  int distinct = 0;
  Window previous{};
  for (uint64_t i = 0; i < 200; ++i) {
    const uint64_t seed = clip::item_seed(42, i);
    const Window w = clip::random_resized_crop_window(640, 480, o, seed);
    const Window again = clip::random_resized_crop_window(640, 480, o, seed);
    ASSERT_EQ(std::tie(w.x, w.y, w.width, w.height), std::tie(again.x, again.y, again.width, again.height));
    ASSERT_GE(w.x, 0);
    ASSERT_GE(w.y, 0);
    ASSERT_LE(w.x + w.width, 640);
    ASSERT_LE(w.y + w.height, 480);
    const double area = static_cast<double>(w.width * w.height) / (640.0 * 480.0);
    EXPECT_GE(area, 0.89);
    EXPECT_LE(area, 1.0);
    const double ratio = static_cast<double>(w.width) / w.height;
    EXPECT_GE(ratio, 0.74);
    EXPECT_LE(ratio, 1.34);
    distinct += (w.x != previous.x || w.y != previous.y || w.width != previous.width);
    previous = w;
  }
  EXPECT_GT(distinct, 150);
  // A 1000 x 20 strip: no try fits, so torchvision's fallback: full height, width 20 * 4/3 rounded, centred.
  const Window strip = clip::random_resized_crop_window(1000, 20, o, 1);
  EXPECT_EQ(std::tie(strip.x, strip.y, strip.width, strip.height), std::make_tuple(int64_t{486}, int64_t{0}, int64_t{27}, int64_t{20}));
  EXPECT_NE(clip::item_seed(1, 0), clip::item_seed(1, 1));
  EXPECT_NE(clip::item_seed(1, 0), clip::item_seed(2, 0));
}

TEST(Preprocess, OptionsFromConfigAndBadNames) {
  clip::ModelConfig config = clip::parse_model_config(
      R"({"embed_dim": 64, "vision_cfg": {"image_size": 336, "layers": 1, "width": 64, "patch_size": 16},
          "text_cfg": {"width": 64, "heads": 1, "layers": 1},
          "preprocess_cfg": {"resize_mode": "squash", "interpolation": "bilinear"}})",
      "inline");
  const clip::PreprocessOptions& o = config.preprocess;
  EXPECT_EQ(o.size, 336);  // the tower's image size
  EXPECT_EQ(o.resize_mode, clip::ResizeMode::squash);
  EXPECT_EQ(o.interpolation, Filter::bilinear);
  EXPECT_EQ(clip::parse_model_config(clip::to_json(config), "again").preprocess.resize_mode, clip::ResizeMode::squash);
  try {
    clip::parse_resize_mode("crop");
    FAIL() << "no error";
  } catch (const clip::Error& e) {
    std::printf("[ message  ] %s\n", e.what());
    EXPECT_NE(std::string(e.what()).find("unknown resize mode 'crop'"), std::string::npos);
  }
}

}  // namespace
