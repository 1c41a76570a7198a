// clip_preprocess run as a user would: the fixture images give the reference's tensors under their file names,
// failures are 'error: FILE: reason' lines and metadata, and the exit code says whether every image was read.
#include <gtest/gtest.h>

#include <ATen/ATen.h>
#include <sys/wait.h>
#include <unistd.h>

#include <array>
#include <cstdio>
#include <filesystem>
#include <memory>
#include <nlohmann/json.hpp>

#include "clip/io/safetensors.h"
#include "test_util.h"

namespace fs = std::filesystem;

namespace {

using Result = clip::test::CommandResult;
Result run(const std::string& args) {
  return clip::test::run_command(clip::test::tool("clip_preprocess") + " " + args + " 2>&1");
}

std::string image(const std::string& name) { return clip::test::data("preprocess/images/" + name); }

std::string temp_file(const std::string& name) {
  return (fs::temp_directory_path() / ("clip_preprocess_" + std::to_string(::getpid()) + "_" + name)).string();
}

const std::vector<std::string> kImages = {"chelsea.png", "coffee.png", "astronaut.png", "camera.png", "palette_color.png",
                                          "rocket.jpg", "horse.png", "fruits.jpg", "butterfly.jpg", "wide_1000x20.png",
                                          "tiny_5x3.png", "gray16_257x300.png", "rgba_257x300.png", "chelsea_q85.jpg",
                                          "astronaut.webp"};

// The images this build decodes (all of them with OpenCV; test_image_decode checks the refusal of the others).
std::vector<std::string> decodable_images() {
  std::vector<std::string> out;
  for (const std::string& name : kImages) {
    if (clip::test::decodes(name)) out.push_back(name);
  }
  return out;
}

TEST(ClipPreprocess, WritesTheReferenceTensorsAndReportsFailures) {
  const std::vector<std::string> images = decodable_images();
  std::string args = "--size 224 --threads 2 --output " + temp_file("out.safetensors");
  for (const std::string& name : images) args += " " + image(name);
  args += " " + image("truncated.jpg");
  const Result r = run(args);
  std::printf("[ output   ] %s", r.output.c_str());
  EXPECT_EQ(r.exit_code, 2) << "some image was not read";
  EXPECT_NE(r.output.find("error: " + image("truncated.jpg") + ": truncated JPEG"), std::string::npos) << r.output;

  const clip::Safetensors out = clip::read_safetensors(temp_file("out.safetensors"));
  const clip::TensorMap expected = clip::read_safetensors(clip::test::data("preprocess/expected_224.safetensors")).tensors;
  const at::Tensor mean = at::tensor({0.48145466, 0.4578275, 0.40821073}, at::kFloat).view({3, 1, 1});
  const at::Tensor std = at::tensor({0.26862954, 0.26130258, 0.27577711}, at::kFloat).view({3, 1, 1});
  ASSERT_EQ(out.tensors.size(), images.size());
  double worst = 0;
  for (const std::string& name : images) {
    ASSERT_TRUE(out.tensors.count(name)) << name;
    const at::Tensor reference = (expected.at(name).to(at::kFloat).div(255) - mean) / std;
    worst = std::max(worst, (out.tensors.at(name) - reference).abs().max().item<double>());
  }
  std::printf("[ measured ] clip_preprocess vs reference, %zu images: max |diff| %.3g\n", images.size(), worst);
  EXPECT_EQ(worst, 0.0);
  const nlohmann::json errors = nlohmann::json::parse(out.metadata.at("errors"));
  ASSERT_EQ(errors.size(), 1u);
  EXPECT_NE(errors.at(image("truncated.jpg")).get<std::string>().find("truncated"), std::string::npos);
  EXPECT_EQ(out.metadata.at("size"), "224");
  EXPECT_EQ(out.metadata.at("images"), std::to_string(images.size()));
  fs::remove(temp_file("out.safetensors"));
}

TEST(ClipPreprocess, ExitZeroWhenEveryImageIsReadAndUint8Output) {
  const Result r = run("--uint8 --output " + temp_file("u8.safetensors") + " " + image("rocket.jpg") + " " + image("horse.png"));
  EXPECT_EQ(r.exit_code, 0) << r.output;
  const clip::TensorMap out = clip::read_safetensors(temp_file("u8.safetensors")).tensors;
  const clip::TensorMap expected = clip::read_safetensors(clip::test::data("preprocess/expected_224.safetensors")).tensors;
  EXPECT_TRUE(at::equal(out.at("rocket.jpg"), expected.at("rocket.jpg")));
  EXPECT_TRUE(at::equal(out.at("horse.png"), expected.at("horse.png")));
  fs::remove(temp_file("u8.safetensors"));
}

TEST(ClipPreprocess, HelpAndBadArguments) {
  const Result help = run("--help");
  EXPECT_EQ(help.exit_code, 0);
  for (const char* flag : {"--output", "--size", "--config", "--resize-mode", "--interpolation", "--mean", "--std",
                           "--threads", "--max-pixels", "--apply-exif-orientation", "--uint8", "--key", "--bench"}) {
    EXPECT_NE(help.output.find(flag), std::string::npos) << flag;
  }
  EXPECT_NE(help.output.find("89478485"), std::string::npos) << "default pixel limit shown";
  // One line, a non-zero exit.
  for (const auto& [args, needle] : std::vector<std::pair<std::string, std::string>>{
           {image("rocket.jpg"), "--output is required"},
           {"--output x.safetensors --resize-mode crop " + image("rocket.jpg"), "crop"},
           {"--output x.safetensors " + image("rocket.jpg") + " " + image("rocket.jpg"), "two inputs are named 'rocket.jpg'"},
       }) {
    const Result r = run(args);
    std::printf("[ message  ] %s", r.output.c_str());
    EXPECT_NE(r.exit_code, 0) << args;
    EXPECT_NE(r.output.find(needle), std::string::npos) << r.output;
    EXPECT_LE(std::count(r.output.begin(), r.output.end(), '\n'), 2) << r.output;
  }
  // Every input unreadable: still a file (with the errors listed), exit 2.
  const Result none = run("--output " + temp_file("none.safetensors") + " /nonexistent/a.jpg");
  EXPECT_EQ(none.exit_code, 2);
  EXPECT_NE(none.output.find("error: /nonexistent/a.jpg: no such file"), std::string::npos) << none.output;
  fs::remove(temp_file("none.safetensors"));
}

TEST(ClipPreprocess, Bench) {
  const Result r = run("--bench --bench-seconds 0.3 " + image("rocket.jpg") + " " + image("chelsea.png"));
  std::printf("[ output   ] %s", r.output.c_str());
  EXPECT_EQ(r.exit_code, 0);
  EXPECT_NE(r.output.find("images/s per core"), std::string::npos);
}

}  // namespace
