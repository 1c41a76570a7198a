// safetensors reader/writer and the checked state-dict copy: round trips, every malformed-file case named in
// the Foundation issue, and state dicts that do not fit the model.
#include <gtest/gtest.h>

#include <ATen/ATen.h>

#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <limits>
#include <optional>

#include <unistd.h>

#include "clip/model/checkpoint.h"
#include "clip/io/safetensors.h"
#include "clip/util/error.h"
#include "test_util.h"

namespace fs = std::filesystem;

namespace {

using clip::test::TempDir;

std::string bytes_of(const std::string& header, const std::string& data,
                     std::optional<uint64_t> declared_length = std::nullopt) {
  const uint64_t n = declared_length.value_or(header.size());
  std::string out(8, '\0');
  std::memcpy(out.data(), &n, 8);
  return out + header + data;
}

void write_bytes(const std::string& path, const std::string& bytes) {
  std::ofstream(path, std::ios::binary).write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
}

// Expects reading `bytes` to throw clip::Error whose message holds the file name and `needle`.
void expect_rejected(const std::string& bytes, const std::string& needle) {
  TempDir dir;
  const std::string path = (dir / "bad.safetensors");
  write_bytes(path, bytes);
  try {
    clip::read_safetensors(path);
    ADD_FAILURE() << "accepted a file that should fail with '" << needle << "'";
  } catch (const clip::Error& e) {
    const std::string message = e.what();
    std::printf("[ message  ] %s\n", message.c_str());
    EXPECT_NE(message.find(path), std::string::npos) << message;
    EXPECT_NE(message.find(needle), std::string::npos) << message;
  }
}

const std::string k16Floats(64, '\0');

TEST(Safetensors, RoundTripsEveryDtypeAndMetadata) {
  TempDir dir;
  clip::TensorMap tensors{
      {"f32", at::randn({3, 4})},
      {"f16", at::randn({5}).to(at::kHalf)},
      {"bf16", at::randn({2, 2}).to(at::kBFloat16)},
      {"f64", at::randn({1}).to(at::kDouble)},
      {"i64", at::arange(7)},
      {"i32", at::arange(3).to(at::kInt)},
      {"u8", at::arange(9).to(at::kByte)},
      {"bool", at::ones({2}, at::kBool)},
      {"scalar", at::full({}, 2.5)},
      {"empty", at::empty({0, 3})},
      {"strided", at::randn({4, 6}).t()},
  };
  const std::string path = (dir / "round.safetensors");
  clip::write_safetensors(path, tensors, {{"format", "pt"}, {"note", "x"}});
  const clip::Safetensors back = clip::read_safetensors(path);
  EXPECT_EQ(back.metadata.at("note"), "x");
  ASSERT_EQ(back.tensors.size(), tensors.size());
  for (const auto& [name, tensor] : tensors) {
    const at::Tensor& got = back.tensors.at(name);
    EXPECT_EQ(got.scalar_type(), tensor.scalar_type()) << name;
    EXPECT_EQ(got.sizes(), tensor.sizes()) << name;
    EXPECT_TRUE(at::equal(got, tensor)) << name;
  }
  // Header padded so the data starts 8-byte aligned, as the Python library writes it.
  std::ifstream in(path, std::ios::binary);
  uint64_t header = 0;
  in.read(reinterpret_cast<char*>(&header), 8);
  EXPECT_EQ(header % 8, 0u);
  EXPECT_FALSE(fs::exists(path + ".tmp." + std::to_string(::getpid())));
}

TEST(Safetensors, ReadsTheReferenceFixture) {
  const clip::Safetensors file = clip::read_safetensors(clip::test::data("vit_tiny.safetensors"));
  EXPECT_EQ(file.tensors.size(), 62u);
  EXPECT_EQ(file.tensors.at("visual.conv1.weight").sizes(), (std::vector<int64_t>{128, 3, 16, 16}));
  EXPECT_EQ(file.tensors.at("logit_scale").dim(), 0);
}

TEST(Safetensors, RejectsTruncatedFiles) {
  std::ifstream in(clip::test::data("vit_tiny.safetensors"), std::ios::binary);
  std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  expect_rejected(bytes.substr(0, bytes.size() - 100), "run past the end of the data");
  expect_rejected(bytes.substr(0, 5), "too short");
  expect_rejected("", "too short");
  expect_rejected(bytes.substr(0, 1000), "header length");
}

TEST(Safetensors, RejectsHeaderLengthPastTheEnd) {
  expect_rejected(bytes_of("{}", "", 1 << 20), "header length 1048576 runs past the end");
  expect_rejected(bytes_of("{}", "", std::numeric_limits<uint64_t>::max() - 1), "runs past the end");
}

TEST(Safetensors, RejectsInvalidJson) {
  expect_rejected(bytes_of(R"({"a": {"dtype": "F32", )", ""), "not valid JSON");
  expect_rejected(bytes_of("[1, 2]", ""), "not a JSON object");
  expect_rejected(bytes_of(R"({"a": 3})", ""), "tensor 'a': header entry is not a JSON object");
  expect_rejected(bytes_of(R"({"a": {"dtype": "F32", "shape": [-1], "data_offsets": [0, 0]}})", ""),
                  "not a non-negative integer");
  expect_rejected(bytes_of(R"({"a": {"dtype": "F32", "shape": [1]}})", ""), "'data_offsets' must be");
  expect_rejected(bytes_of(R"({"__metadata__": {"k": 1}})", ""), "__metadata__ value for 'k'");
}

TEST(Safetensors, RejectsOffsetsOutOfRange) {
  expect_rejected(bytes_of(R"({"a": {"dtype": "F32", "shape": [16], "data_offsets": [64, 128]}})", k16Floats),
                  "tensor 'a': data_offsets [64, 128] run past the end of the data (64 bytes)");
  expect_rejected(bytes_of(R"({"a": {"dtype": "F32", "shape": [0], "data_offsets": [8, 4]}})", k16Floats),
                  "reversed");
}

TEST(Safetensors, RejectsOverlappingTensors) {
  expect_rejected(bytes_of(R"({"a": {"dtype": "F32", "shape": [8], "data_offsets": [0, 32]},
                               "b": {"dtype": "F32", "shape": [8], "data_offsets": [16, 48]}})",
                           k16Floats),
                  "overlap");
}

TEST(Safetensors, RejectsUnknownDtypes) {
  expect_rejected(bytes_of(R"({"a": {"dtype": "F8_E4M3", "shape": [4], "data_offsets": [0, 4]}})", k16Floats),
                  "unsupported dtype 'F8_E4M3'");
}

TEST(Safetensors, RejectsShapeByteCountMismatch) {
  expect_rejected(bytes_of(R"({"a": {"dtype": "F32", "shape": [3, 4], "data_offsets": [0, 32]}})", k16Floats),
                  "needs 12 x 4 bytes, but data_offsets hold 32");
  expect_rejected(
      bytes_of(R"({"a": {"dtype": "F32", "shape": [4294967296, 4294967296, 4], "data_offsets": [0, 0]}})", k16Floats),
      "too large");
}

TEST(Safetensors, RejectsPathsThatAreNotFiles) {
  TempDir dir;
  for (const auto& [path, needle] : {std::pair<std::string, std::string>{(dir / "missing.safetensors"), "cannot open"},
                                     {(dir / ""), "is a directory"}}) {
    try {
      clip::read_safetensors(path);
      ADD_FAILURE() << path;
    } catch (const clip::Error& e) {
      EXPECT_NE(std::string(e.what()).find(needle), std::string::npos) << e.what();
    }
  }
}

TEST(Safetensors, WriteReportsUnwritableFolder) {
  try {
    clip::write_safetensors("/nonexistent/folder/x.safetensors", {{"a", at::ones({1})}});
    ADD_FAILURE();
  } catch (const clip::Error& e) {
    EXPECT_NE(std::string(e.what()).find("/nonexistent/folder/x.safetensors"), std::string::npos) << e.what();
  }
}

// Expects load_state_dict to refuse `sd` with a message holding every needle, and to leave the model unchanged.
void expect_state_dict_rejected(const clip::TensorMap& sd, std::initializer_list<const char*> needles) {
  clip::CLIP model(clip::load_model_config(clip::test::data("vit_tiny.json")));
  const at::Tensor before = model->logit_scale.clone();
  try {
    clip::load_state_dict(*model, sd, "weights.safetensors");
    ADD_FAILURE();
  } catch (const clip::Error& e) {
    const std::string message = e.what();
    std::printf("[ message  ] %s\n", message.substr(0, 300).c_str());
    EXPECT_NE(message.find("weights.safetensors"), std::string::npos);
    for (const char* needle : needles) EXPECT_NE(message.find(needle), std::string::npos) << message;
  }
  EXPECT_TRUE(at::equal(before, model->logit_scale)) << "a failed load must not change the model";
}

TEST(StateDict, RejectsAKeyWithTheWrongShape) {
  clip::TensorMap sd = clip::read_safetensors(clip::test::data("vit_tiny.safetensors")).tensors;
  sd["logit_scale"] = at::zeros({2});
  sd["visual.proj"] = at::zeros({128, 32});
  expect_state_dict_rejected(sd, {"wrong shape", "visual.proj: expected [128, 64], got [128, 32]",
                                  "logit_scale: expected [], got [2]"});
}

TEST(StateDict, ListsMissingAndUnexpectedKeys) {
  clip::TensorMap sd = clip::read_safetensors(clip::test::data("vit_tiny.safetensors")).tensors;
  sd.erase("ln_final.weight");
  sd["visual.extra"] = at::zeros({1});
  expect_state_dict_rejected(sd, {"missing 1 keys: ln_final.weight", "unexpected 1 keys: visual.extra"});
  // A ResNet state dict for a ViT model: many of both, summarized.
  expect_state_dict_rejected(clip::read_safetensors(clip::test::data("rn_tiny.safetensors")).tensors,
                             {"missing", "unexpected", "more)"});
}

TEST(StateDict, LoadModelReadsTheConfigFromMetadata) {
  TempDir dir;
  clip::CLIP model = clip::load_model(clip::test::data("vit_tiny.safetensors"),
                                       clip::LoadOptions().config_path(clip::test::data("vit_tiny.json")));
  const std::string path = (dir / "with_config.safetensors");
  clip::save_model(*model, path);
  clip::CLIP again = clip::load_model(path);
  EXPECT_EQ(clip::to_json(again->config()), clip::to_json(model->config()));
  for (const auto& [name, tensor] : clip::state_dict(*model)) {
    EXPECT_TRUE(at::equal(tensor, clip::state_dict(*again).at(name))) << name;
  }
}

}  // namespace
