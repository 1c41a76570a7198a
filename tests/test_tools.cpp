// The command-line tools, run as a user would: outputs checked against the reference fixtures, bad input
// answered with one line and a non-zero exit.
#include <gtest/gtest.h>

#include <sys/wait.h>
#include <unistd.h>

#include <array>
#include <cstdio>
#include <filesystem>
#include <memory>

#include "clip/io/safetensors.h"
#include "test_util.h"

namespace fs = std::filesystem;

namespace {

using Result = clip::test::CommandResult;
Result run(const std::string& command) { return clip::test::run_command(command + " 2>&1"); }

using clip::test::tool;

std::string temp_file(const std::string& name) {
  return (fs::temp_directory_path() / ("clip_tools_" + std::to_string(::getpid()) + "_" + name)).string();
}

class ClipEmbed : public testing::TestWithParam<std::string> {};

TEST_P(ClipEmbed, ReproducesTheReferenceOutputs) {
  const std::string name = GetParam();
  const std::string out = temp_file(name + ".out.safetensors");
  // Any checkpoint format, no config: the architecture is inferred from the state dict.
  const Result r = run(tool("clip_embed") + " --checkpoint " + clip::test::data(name + ".jit.pt") + " --inputs " +
                       clip::test::data(name + ".io.safetensors") + " --output " + out + " --print");
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_NE(r.output.find("logits_per_image [2 images x 3 texts]"), std::string::npos) << r.output;
  const clip::TensorMap got = clip::read_safetensors(out).tensors;
  const clip::TensorMap expected = clip::read_safetensors(clip::test::data(name + ".io.safetensors")).tensors;
  for (const char* key : {"image_features", "text_features", "logits_per_image", "logits_per_text"}) {
    ASSERT_TRUE(got.count(key)) << key;
    EXPECT_LT(clip::test::report(name + " clip_embed " + key, got.at(key), expected.at(key)), 1e-4);
  }
  fs::remove(out);
}

INSTANTIATE_TEST_SUITE_P(Fixtures, ClipEmbed, testing::Values("vit_tiny", "rn_tiny"));

TEST(ClipEmbedErrors, HelpListsEveryFlagWithDefaults) {
  const Result r = run(tool("clip_embed") + " --help");
  EXPECT_EQ(r.exit_code, 0);
  for (const char* flag : {"--checkpoint", "--config", "--model", "--verify", "--inputs", "--output", "--device",
                           "--batch-size", "--threads"}) {
    EXPECT_NE(r.output.find(flag), std::string::npos) << flag;
  }
  EXPECT_NE(r.output.find("256"), std::string::npos) << "default batch size shown";
}

// One line on stderr, naming the problem, and a non-zero exit.
void expect_one_line_failure(const std::string& args, const std::string& needle) {
  const Result r = run(tool("clip_embed") + " " + args);
  EXPECT_NE(r.exit_code, 0) << r.output;
  EXPECT_NE(r.output.find(needle), std::string::npos) << r.output;
  EXPECT_LE(std::count(r.output.begin(), r.output.end(), '\n'), 3) << r.output;
  std::printf("[ message  ] %s", r.output.c_str());
}

TEST(ClipEmbedErrors, BadInputsGiveOneClearLine) {
  const std::string vit = clip::test::data("vit_tiny");
  const std::string out = temp_file("err.safetensors");
  expect_one_line_failure("--checkpoint " + vit + ".json --config " + vit + ".json --inputs " + vit +
                              ".io.safetensors --output " + out,
                          "not a checkpoint");
  expect_one_line_failure("--model ViT-Q-99 --checkpoint " + vit + ".safetensors --inputs " + vit +
                              ".io.safetensors --output " + out,
                          "unknown model 'ViT-Q-99'");
  expect_one_line_failure("--checkpoint " + clip::test::data("rn_tiny.safetensors") + " --config " + vit +
                              ".json --inputs " + vit + ".io.safetensors --output " + out,
                          "state dict does not match");
  expect_one_line_failure("--checkpoint " + vit + ".safetensors --config " + vit + ".json --inputs " +
                              clip::test::data("rn_tiny.safetensors") + " --output " + out,
                          "neither 'image'");
  expect_one_line_failure("--checkpoint /nonexistent.safetensors --inputs x --output y", "/nonexistent.safetensors");
  expect_one_line_failure("--checkpoint " + vit + ".safetensors --config " + vit + ".json --inputs " + vit +
                              ".io.safetensors --output /nonexistent/dir/out.safetensors",
                          "/nonexistent/dir/out.safetensors");
  expect_one_line_failure("--checkpoint " + vit + ".safetensors --inputs " + vit + ".io.safetensors --output " + out +
                              " --bogus",
                          "bogus");
  EXPECT_FALSE(fs::exists(out));
}

}  // namespace

namespace {

// clip_convert: OpenAI archive -> safetensors -> clip_embed without a config gives the reference outputs;
// the same through an HF folder; bad requests fail with one line.
TEST(ClipConvert, ConvertedFilesReproduceTheReference) {
  const std::string vit = clip::test::data("vit_tiny");
  const std::string st = temp_file("converted.safetensors"), hf = temp_file("converted_hf"),
                    out = temp_file("converted.out.safetensors");
  for (const auto& [args, path] : {std::pair<std::string, std::string>{"--output " + st, st},
                                   {"--format hf --output " + hf, hf}}) {
    const Result convert = run(tool("clip_convert") + " --input " + vit + ".jit.pt " + args);
    ASSERT_EQ(convert.exit_code, 0) << convert.output;
    EXPECT_NE(convert.output.find("TorchScript archive"), std::string::npos) << convert.output;
    const Result embed = run(tool("clip_embed") + " --checkpoint " + path + " --inputs " + vit +
                             ".io.safetensors --output " + out);
    ASSERT_EQ(embed.exit_code, 0) << embed.output;
    const clip::TensorMap got = clip::read_safetensors(out).tensors;
    const clip::TensorMap expected = clip::read_safetensors(vit + ".io.safetensors").tensors;
    EXPECT_LT(clip::test::report("clip_convert to " + std::string(path == hf ? "HF" : "safetensors") + " logits",
                                 got.at("logits_per_image"),
                                 expected.at("logits_per_image")),
              1e-4);
  }
  const Result half = run(tool("clip_convert") + " --input " + vit + ".safetensors --output " + st + " --dtype fp16");
  ASSERT_EQ(half.exit_code, 0) << half.output;
  EXPECT_EQ(clip::read_safetensors(st).tensors.at("visual.proj").scalar_type(), at::kHalf);
  const Result resnet_hf = run(tool("clip_convert") + " --input " + clip::test::data("rn_tiny.jit.pt") + " --output " +
                               hf + "_rn --format hf");
  EXPECT_NE(resnet_hf.exit_code, 0);
  EXPECT_NE(resnet_hf.output.find("no ResNet image tower"), std::string::npos) << resnet_hf.output;
  const Result bad_format = run(tool("clip_convert") + " --input " + vit + ".jit.pt --output x --format onnx");
  EXPECT_NE(bad_format.exit_code, 0);
  EXPECT_NE(bad_format.output.find("onnx"), std::string::npos) << bad_format.output;
  fs::remove(st);
  fs::remove(out);
  fs::remove_all(hf);
}

// The start-up BLAS check: with netlib's reference BLAS forced in front, the tool warns; with the system's
// selection (OpenBLAS after scripts/setup) it does not.
TEST(BlasCheck, WarnsWhenTheReferenceBlasIsLoaded) {
  const std::string reference = "/usr/lib/x86_64-linux-gnu/blas/libblas.so.3";
  if (!fs::exists(reference)) GTEST_SKIP() << "netlib's reference BLAS is not installed (" << reference << ")";
  const std::string vit = clip::test::data("vit_tiny");
  const std::string out = temp_file("blas.safetensors");
  const std::string args = " --checkpoint " + vit + ".safetensors --config " + vit + ".json --inputs " + vit +
                           ".io.safetensors --output " + out;
  const Result slow = run("LD_PRELOAD=" + reference + " " + tool("clip_embed") + args);
  EXPECT_EQ(slow.exit_code, 0) << slow.output;
  EXPECT_NE(slow.output.find("reference BLAS"), std::string::npos) << slow.output;
  const Result normal = run(tool("clip_embed") + args);
  std::printf("[ measured ] without LD_PRELOAD the tool %s\n",
              normal.output.find("reference BLAS") == std::string::npos ? "did not warn" : "warned");
  fs::remove(out);
}

}  // namespace
