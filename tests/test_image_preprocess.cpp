// Parity with the reference preprocessing (PIL open + torchvision Resize/CenterCrop + convert("RGB") + ToTensor +
// Normalize): every image of ../shared/fixtures/preprocess (tests/data/preprocess), and extra files in the modes and
// formats the shared set lacks (made by tests/data/preprocess/make_fixtures.py with Pillow 9.4 and torchvision).
// Each comparison prints the largest difference in units of 1/255 and the fraction of values within one unit.
#include <gtest/gtest.h>

#include <ATen/ATen.h>

#include <fstream>
#include <nlohmann/json.hpp>

#include "clip/image/decode.h"
#include "clip/image/transform.h"
#include "clip/io/safetensors.h"
#include "clip/util/error.h"
#include "test_util.h"

namespace {

using json = nlohmann::json;

std::string preprocess_data(const std::string& name) { return clip::test::data("preprocess/" + name); }

bool is_jpeg(const std::string& file) {
  return file.size() > 4 && (file.substr(file.size() - 4) == ".jpg" || file.substr(file.size() - 5) == ".jpeg");
}

struct Difference {
  int max_units = 0;       // largest |ours - reference| in units of 1/255
  double within_one = 0;   // fraction of values at most one unit apart
  double float_max = 0;    // the same after normalization, as floats
};

// Ours against the reference's bytes [3, N, N], before and after normalization.
Difference compare(const std::string& what, const std::vector<uint8_t>& rgb, const at::Tensor& expected) {
  const int64_t n = expected.size(1);
  at::Tensor ours = at::from_blob(const_cast<uint8_t*>(rgb.data()), {n, n, 3}, at::kByte).permute({2, 0, 1}).to(at::kInt);
  const at::Tensor diff = (ours - expected.to(at::kInt)).abs();
  Difference d;
  d.max_units = diff.max().item<int>();
  d.within_one = diff.le(1).to(at::kDouble).mean().item<double>();
  // The normalized tensors: ours from normalize_rgb, the reference's by the same float32 formula as ToTensor +
  // Normalize (the stored bytes are exact inverses of the reference's floats).
  const clip::PreprocessOptions o;
  at::Tensor ours_f = at::empty({3, n, n}, at::kFloat);
  clip::normalize_rgb(rgb.data(), n * n, o.mean, o.std, ours_f.data_ptr<float>());
  const at::Tensor mean = at::tensor({o.mean[0], o.mean[1], o.mean[2]}, at::kFloat).view({3, 1, 1});
  const at::Tensor std = at::tensor({o.std[0], o.std[1], o.std[2]}, at::kFloat).view({3, 1, 1});
  const at::Tensor ref_f = (expected.to(at::kFloat).div(255) - mean) / std;
  d.float_max = (ours_f - ref_f).abs().max().item<double>();
  std::printf("[ measured ] %-30s max %d/255, within 1/255: %.5f%%, normalized max |diff| %.3g\n", what.c_str(),
              d.max_units, 100.0 * d.within_one, d.float_max);
  return d;
}

// The tolerance: PNG, BMP, WebP (and the other lossless formats) at most one unit off on 99.9% of values
// and two anywhere; JPEG at most two units off on 99% of values.
void expect_within_tolerance(const std::string& file, const Difference& d) {
  if (is_jpeg(file)) {
    EXPECT_GE(d.within_one, 0.99) << file;
  } else {
    EXPECT_LE(d.max_units, 2) << file;
    EXPECT_GE(d.within_one, 0.999) << file;
  }
}

TEST(PreprocessParity, SharedFixturesAt224) {
  std::ifstream in(preprocess_data("manifest_224.json"));
  const json manifest = json::parse(in);
  const clip::TensorMap expected = clip::read_safetensors(preprocess_data("expected_224.safetensors")).tensors;
  const clip::PreprocessOptions options;  // 224, shortest, bicubic, OpenAI's mean and std
  int compared = 0, exact = 0, left_out = 0;
  for (const json& entry : manifest) {
    const std::string file = entry.at("file"), path = preprocess_data("images/" + file);
    SCOPED_TRACE(file);
    if (!clip::test::decodes(file)) {  // a format this build leaves out (test_image_decode checks the refusal)
      left_out += entry.contains("error") ? 0 : 1;
      continue;
    }
    if (entry.contains("error")) {
      try {
        clip::decode_image(path);
        ADD_FAILURE() << "decoded an image the reference refuses (" << entry.at("error") << ")";
      } catch (const clip::Error& e) {
        std::printf("[ message  ] %s (reference: %s)\n", e.what(), entry.at("error").get<std::string>().c_str());
        EXPECT_NE(std::string(e.what()).find(path), std::string::npos);
        EXPECT_NE(std::string(e.what()).find("truncated"), std::string::npos);
      }
      continue;
    }
    const clip::Image image = clip::decode_image(path);
    EXPECT_EQ(std::string(clip::mode_name(image.mode)), entry.at("mode").get<std::string>());
    EXPECT_EQ(image.width, entry.at("width").get<int64_t>());
    EXPECT_EQ(image.height, entry.at("height").get<int64_t>());
    std::vector<uint8_t> rgb(224 * 224 * 3);
    clip::preprocess_rgb(image, options, rgb.data());
    const Difference d = compare(file + " (" + clip::mode_name(image.mode) + ")", rgb, expected.at(entry.at("expected")));
    expect_within_tolerance(file, d);
    ++compared;
    exact += d.max_units == 0;
  }
  std::printf("[ measured ] %d of %d images bit-identical to the reference (%d in formats not in this build)\n", exact,
              compared, left_out);
  EXPECT_EQ(compared + left_out, 15);
}

TEST(PreprocessParity, ModesFormatsAndResizeModes) {
  const clip::Safetensors file = clip::read_safetensors(preprocess_data("extra_expected.safetensors"));
  const json cases = json::parse(file.metadata.at("cases"));
  int exact = 0, left_out = 0;
  for (const json& c : cases) {
    const std::string name = c.at("name"), path = preprocess_data(c.at("file").get<std::string>());
    SCOPED_TRACE(name);
    if (!clip::test::decodes(path)) {
      ++left_out;
      continue;
    }
    clip::DecodeOptions decode;
    decode.apply_exif_orientation = c.value("exif_transpose", false);
    const clip::Image image = clip::decode_image(path, decode);
    // Pillow opens 16-bit gray+alpha PNG as RGBA (gray replicated); LA resizes to the same values.
    const std::string mode = c.at("mode");
    EXPECT_EQ(std::string(clip::mode_name(image.mode)), mode == "RGBA" && name == "la16.png" ? "LA" : mode);
    clip::PreprocessOptions o;
    o.size = c.at("size");
    o.resize_mode = clip::parse_resize_mode(c.value("resize_mode", "shortest"));
    o.interpolation = clip::parse_interpolation(c.value("interpolation", "bicubic"));
    std::vector<uint8_t> rgb(o.size * o.size * 3);
    if (c.contains("crop")) {  // [top, left, height, width] as torchvision's resized_crop takes it
      const std::vector<int64_t> t = c.at("crop");
      clip::resized_crop_rgb(image, {t[1], t[0], t[3], t[2]}, o, rgb.data());
    } else {
      clip::preprocess_rgb(image, o, rgb.data());
    }
    const Difference d = compare(name + " (" + mode + ")", rgb, file.tensors.at(name));
    expect_within_tolerance(c.at("file"), d);
    exact += d.max_units == 0;
  }
  std::printf("[ measured ] %d of %zu cases bit-identical to the reference (%d in formats not in this build)\n", exact,
              cases.size() - left_out, left_out);
}

TEST(PreprocessParity, TensorApiIsTheNormalizedBytes) {
  CLIP_REQUIRE_FEATURE(png);
  const clip::Image image = clip::decode_image(preprocess_data("images/chelsea.png"));
  const clip::PreprocessOptions o;
  const at::Tensor x = clip::preprocess(image, o);
  ASSERT_EQ(x.sizes(), at::IntArrayRef({3, 224, 224}));
  const at::Tensor expected = clip::read_safetensors(preprocess_data("expected_224.safetensors")).tensors.at("chelsea.png");
  const at::Tensor mean = at::tensor({o.mean[0], o.mean[1], o.mean[2]}, at::kFloat).view({3, 1, 1});
  const at::Tensor std = at::tensor({o.std[0], o.std[1], o.std[2]}, at::kFloat).view({3, 1, 1});
  EXPECT_TRUE(at::equal(x, (expected.to(at::kFloat).div(255) - mean) / std));
}

}  // namespace
