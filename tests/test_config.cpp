// Model configs: the shipped files parse, build, and have the released models' parameter counts; bad
// configs fail with the file, key and value named.
#include <gtest/gtest.h>

#include <cstdio>
#include <filesystem>

#include "clip/model/checkpoint.h"
#include "clip/model/clip_model.h"
#include "clip/model/config.h"
#include "clip/model/model_tokenizer.h"
#include "clip/util/error.h"
#include "test_util.h"

namespace {

struct Released {
  const char* name;
  double millions;  // parameter count of OpenAI's release
};

// OpenAI's released checkpoints (logit_scale included).
constexpr Released kReleased[] = {
    {"RN50", 102.01},    {"RN101", 119.69},    {"RN50x4", 178.30},   {"RN50x16", 290.98},     {"RN50x64", 623.26},
    {"ViT-B-32", 151.28}, {"ViT-B-16", 149.62}, {"ViT-L-14", 427.62}, {"ViT-L-14-336", 427.94},
};

class ReleasedConfig : public testing::TestWithParam<Released> {};

TEST_P(ReleasedConfig, BuildsWithTheReleasedParameterCountAndInfersBack) {
  const Released r = GetParam();
  const clip::ModelConfig config = clip::load_model_config(clip::test::config(r.name));
  EXPECT_EQ(config.name, r.name);
  EXPECT_TRUE(config.quick_gelu);
  clip::CLIP model(config);
  const double millions = static_cast<double>(clip::count_parameters(*model)) / 1e6;
  const double relative = std::abs(millions - r.millions) / r.millions;
  std::printf("[ measured ] %-14s %.2fM parameters, released %.2fM, relative difference %.2g\n", r.name, millions,
              r.millions, relative);
  EXPECT_LT(relative, 5e-4);  // 0.05%: the released counts are rounded to 10k
  // openai/CLIP's build_model rules recover the architecture from the weights alone.
  const clip::ModelConfig inferred = clip::infer_model_config(clip::state_dict(*model), r.name);
  EXPECT_EQ(clip::to_json(inferred), clip::to_json(config));
}

INSTANTIATE_TEST_SUITE_P(Models, ReleasedConfig, testing::ValuesIn(kReleased),
                         [](const auto& info) {
                           std::string name = info.param.name;
                           for (char& c : name) c = std::isalnum(static_cast<unsigned char>(c)) ? c : '_';
                           return name;
                         });

TEST(ModelConfig, ReadsTheTinyFixtureModels) {
  const clip::ModelConfig vit = clip::load_model_config(clip::test::data("vit_tiny.json"));
  EXPECT_FALSE(vit.vision.is_resnet());
  EXPECT_EQ(vit.vision.heads(), 2);
  EXPECT_EQ(vit.text.vocab_size, 1000);
  EXPECT_EQ(vit.text.eos_token_id, 999);  // defaults to the last id when the vocabulary is not the CLIP BPE's
  const clip::ModelConfig rn = clip::load_model_config(clip::test::data("rn_tiny.json"));
  ASSERT_TRUE(rn.vision.is_resnet());
  EXPECT_EQ(rn.vision.resnet_layers, (std::vector<int64_t>{1, 2, 1, 1}));
  EXPECT_EQ(rn.vision.heads(), 4);  // 32 * width / head_width
}

TEST(ModelConfig, RoundTripsThroughJson) {
  clip::ModelConfig config = clip::load_model_config(clip::test::config("RN50x4"));
  config.preprocess.resize_mode = clip::ResizeMode::squash;
  config.text.pool = clip::TextPool::first_eos;
  config.text.eos_token_id = 2;
  config.layer_norm_eps = 1e-6;
  const clip::ModelConfig again = clip::parse_model_config(clip::to_json(config), "round trip");
  EXPECT_EQ(clip::to_json(again), clip::to_json(config));
  EXPECT_EQ(again.vision.resnet_layers, config.vision.resnet_layers);
  EXPECT_EQ(again.text.pool, clip::TextPool::first_eos);
  EXPECT_EQ(again.preprocess.resize_mode, clip::ResizeMode::squash);
  EXPECT_EQ(again.layer_norm_eps, 1e-6);
}

TEST(ModelConfig, AcceptsOpenClipKeysAtTheirDefaults) {
  const auto config = clip::parse_model_config(R"({
    "embed_dim": 64, "custom_text": false, "cast_dtype": "fp16",
    "vision_cfg": {"image_size": 32, "layers": 1, "width": 64, "patch_size": 16, "patch_dropout": 0.0,
                   "ls_init_value": null, "attentional_pool": false, "output_tokens": false},
    "text_cfg": {"context_length": 8, "vocab_size": 10, "width": 64, "heads": 1, "layers": 1,
                 "hf_tokenizer_name": "", "proj_bias": false, "pool_type": "argmax"},
    "preprocess_cfg": {"mean": [0.5, 0.5, 0.5], "std": [0.5, 0.5, 0.5], "interpolation": "bilinear",
                       "resize_mode": "longest", "size": 32}})",
                                               "inline");
  EXPECT_EQ(config.preprocess.mean[0], 0.5);
  EXPECT_EQ(config.preprocess.interpolation, clip::Filter::bilinear);
}

// open_clip's own RN50.json writes "patch_size": null (a ResNet never reads it); its preprocess_cfg drops None.
TEST(ModelConfig, ReadsOpenClipsNulls) {
  const auto config = clip::parse_model_config(R"({
    "embed_dim": 1024, "vision_cfg": {"image_size": 224, "layers": [3, 4, 6, 3], "width": 64, "patch_size": null},
    "text_cfg": {"context_length": 77, "vocab_size": 49408, "width": 512, "heads": 8, "layers": 12},
    "preprocess_cfg": {"resize_mode": null}})",
                                               "RN50.json");
  EXPECT_EQ(config.vision.resnet_layers, (std::vector<int64_t>{3, 4, 6, 3}));
  EXPECT_EQ(config.preprocess.resize_mode, clip::ResizeMode::shortest);
}

// Expects parse_model_config to fail with a message containing every one of `needles`.
void expect_error(const std::string& json, std::initializer_list<const char*> needles) {
  try {
    clip::parse_model_config(json, "bad.json");
    ADD_FAILURE() << "accepted " << json;
  } catch (const clip::Error& e) {
    const std::string message = e.what();
    std::printf("[ message  ] %s\n", message.c_str());
    for (const char* needle : needles) EXPECT_NE(message.find(needle), std::string::npos) << message;
  }
}

const char* kText = R"("text_cfg": {"context_length": 8, "vocab_size": 10, "width": 64, "heads": 1, "layers": 1})";
std::string with_vision(const std::string& vision, const std::string& extra = "") {
  return R"({"embed_dim": 16, "vision_cfg": )" + vision + ", " + kText + extra + "}";
}

TEST(ModelConfig, RejectsUnknownKeysNamingFileKeyAndValue) {
  expect_error(with_vision(R"({"layers": 1, "width": 64, "patch_size": 16, "image_size": 32, "widht": 3})"),
               {"bad.json", "vision_cfg.widht", "3", "unknown key"});
  expect_error(with_vision(R"({"layers": 1, "width": 64, "patch_size": 16, "image_size": 32})", R"(, "foo": "bar")"),
               {"bad.json", "'foo'", "bar"});
}

TEST(ModelConfig, RejectsWrongTypes) {
  expect_error(with_vision(R"({"layers": 1, "width": "64", "patch_size": 16, "image_size": 32})"),
               {"bad.json", "vision_cfg.width", "integer", "\"64\""});
  expect_error(with_vision(R"({"layers": [1, 2], "width": 64, "image_size": 32})"), {"vision_cfg.layers", "[1,2]"});
  // null is not "the default" outside a ResNet's patch_size and preprocess_cfg (open_clip would fail too).
  expect_error(with_vision(R"({"layers": 1, "width": 64, "patch_size": null, "image_size": 32})"),
               {"vision_cfg.patch_size", "integer", "null"});
  expect_error(R"({"embed_dim": 16, "quick_gelu": 1, "vision_cfg": {}, )" + std::string(kText) + "}",
               {"quick_gelu", "true or false"});
  expect_error(with_vision(R"({"layers": 1, "width": 64, "patch_size": 16, "image_size": -32})"),
               {"vision_cfg.image_size", "positive"});
}

TEST(ModelConfig, RejectsUnsupportedArchitectures) {
  expect_error(with_vision(R"({"layers": 1, "width": 64, "patch_size": 16, "image_size": 32, "attentional_pool": true})"),
               {"vision_cfg.attentional_pool", "true", "not supported"});
  expect_error(with_vision(R"({"layers": 1, "width": 64, "patch_size": 16, "image_size": 32, "timm_model_name": "x"})"),
               {"vision_cfg.timm_model_name 'x'", "not a timm model libclip builds", "vit_base_patch16_siglip_224"});
  expect_error(with_vision(R"({"image_size": 256, "timm_model_name": "vit_base_patch16_siglip_224"})"),
               {"image_size 256", "vit_base_patch16_siglip_224's 224"});
  expect_error(with_vision(R"({"image_size": 224, "timm_model_name": "vit_base_patch16_siglip_gap_224",
                               "timm_pool": "map"})"),
               {"timm_pool 'map'", "pools by 'avg'"});
  expect_error(with_vision(R"({"layers": 1, "width": 64, "patch_size": 16, "image_size": 32, "timm_pool": "map"})"),
               {"vision_cfg.timm_pool needs vision_cfg.timm_model_name"});
  expect_error(with_vision(R"({"layers": [1, 1, 1, 1], "width": 64, "image_size": 64, "ls_init_value": 0.1})"),
               {"apply to ViTs, not the ModifiedResNet"});
  expect_error(with_vision(R"({"layers": 1, "width": 64, "patch_size": 16, "image_size": 32,
                               "act_kwargs": {"approximate": "sigmoid"}})"),
               {"vision_cfg.act_kwargs.approximate", "sigmoid"});
  expect_error(with_vision(R"({"layers": 1, "width": 64, "patch_size": 16, "image_size": 30})"),
               {"image_size 30", "patch_size 16"});
}

TEST(ModelConfig, RejectsMissingPartsAndBadJson) {
  expect_error(R"({"vision_cfg": {}, "text_cfg": {}})", {"embed_dim", "required"});
  expect_error(R"({"embed_dim": 16, "text_cfg": {}})", {"vision_cfg", "required"});
  expect_error(R"({"embed_dim": 16,)", {"bad.json", "not valid JSON"});
  expect_error(R"([1, 2])", {"bad.json", "JSON object"});
}

// Found by scripts/bad_inputs: 2^40 layers looped for hours building the model, 2^40 widths died in LibTorch's
// allocator with its raw message. Sizes are bounded far above every released CLIP, and a model whose fp32
// weights cannot fit in this machine's memory is refused before anything is allocated.
TEST(ModelConfig, AbsurdSizesAreRefused) {
  const auto config = [](const std::string& vision, const std::string& text) {
    return R"({"embed_dim": 64, "vision_cfg": {"image_size": 64, "patch_size": 16, )" + vision +
           R"(}, "text_cfg": {"context_length": 77, "vocab_size": 1000, "heads": 2, )" + text + "}}";
  };
  expect_error(config(R"("layers": 1099511627776, "width": 128)", R"("width": 128, "layers": 2)"),
               {"bad.json", "'vision_cfg.layers' must be a positive number of at most 256, got 1099511627776"});
  expect_error(config(R"("layers": 2, "width": 128)", R"("width": 1099511627776, "layers": 2)"),
               {"'text_cfg.width' must be a positive number of at most 16384"});
  // Within every bound, still terabytes: refused by the memory check, not killed while initializing.
  const clip::ModelConfig huge =
      clip::parse_model_config(config(R"("layers": 256, "width": 16384, "head_width": 64)",
                                      R"("width": 16384, "layers": 256)"), "huge.json");
  const std::string message = clip::test::error_of([&] { clip::CLIP model(huge); });
  EXPECT_CONTAINS(message, "GB in fp32, more than this machine's");
}

// Every config shipped in configs/models (OpenAI's releases, open_clip's plain-CLIP ViTs, SigLIP and SigLIP 2,
// MetaCLIP 2's worldwide towers) parses and round-trips through to_json unchanged.
TEST(ModelConfig, EveryShippedConfigParsesAndRoundTrips) {
  int count = 0;
  for (const auto& entry : std::filesystem::directory_iterator(std::string(CLIP_CONFIG_DIR) + "/models")) {
    if (entry.path().extension() != ".json") continue;
    const clip::ModelConfig config = clip::load_model_config(entry.path().string());
    const clip::ModelConfig again = clip::parse_model_config(clip::to_json(config), "round trip");
    EXPECT_EQ(clip::to_json(again), clip::to_json(config)) << entry.path();
    EXPECT_TRUE(clip::config_differences(again, config).empty()) << entry.path();
    ++count;
  }
  std::printf("[ measured ] %d model configs in configs/models parse and round-trip\n", count);
  EXPECT_GE(count, 70);
}

// open_clip's SigLIP configs name a timm tower and a bidirectional text tower; the parser resolves both as open_clip
// and timm 1.0.31 build them.
TEST(ModelConfig, SigLipConfigsResolveAsOpenClipBuildsThem) {
  const clip::ModelConfig siglip = clip::load_model_config(clip::test::config("ViT-B-16-SigLIP"));
  EXPECT_TRUE(siglip.custom_text);
  EXPECT_TRUE(siglip.vision.is_timm());
  EXPECT_EQ(siglip.vision.width, 768);
  EXPECT_EQ(siglip.vision.layers, 12);
  EXPECT_EQ(siglip.vision.heads(), 12);
  EXPECT_EQ(siglip.vision.patch_size, 16);
  EXPECT_FALSE(siglip.vision.class_token);
  EXPECT_FALSE(siglip.vision.gelu_tanh);
  EXPECT_EQ(siglip.vision.timm_pool, "map");
  EXPECT_EQ(siglip.vision.timm_proj, "none");
  EXPECT_EQ(siglip.vision.layer_norm_eps, 1e-6);
  EXPECT_FALSE(siglip.text.causal);
  EXPECT_EQ(siglip.text.pool, clip::TextPool::last);
  EXPECT_TRUE(siglip.text.proj_bias);
  EXPECT_EQ(siglip.text.layer_norm_eps, 1e-6);
  EXPECT_FALSE(siglip.text.gelu_tanh);
  EXPECT_EQ(siglip.text.hf_tokenizer_name, "timm/ViT-B-16-SigLIP");
  EXPECT_EQ(siglip.init_logit_bias, -10.0);
  const clip::ModelConfig siglip2 = clip::load_model_config(clip::test::config("ViT-B-16-SigLIP2"));
  EXPECT_TRUE(siglip2.text.gelu_tanh);
  EXPECT_EQ(siglip2.text.vocab_size, 256000);
  EXPECT_FALSE(siglip2.vision.gelu_tanh);  // timm's vit_base_patch16_siglip_224 keeps exact GELU
  const clip::ModelConfig so400m = clip::load_model_config(clip::test::config("ViT-SO400M-16-SigLIP2-256"));
  EXPECT_TRUE(so400m.vision.gelu_tanh);
  EXPECT_EQ(so400m.vision.mlp_ratio, 3.7362);
  EXPECT_EQ(so400m.vision.heads(), 16);
  const clip::ModelConfig i18n = clip::load_model_config(clip::test::config("ViT-SO400M-16-SigLIP-i18n-256"));
  EXPECT_FALSE(i18n.text.projection);
  // MetaCLIP 2: open_clip's eos_id is the pooling token.
  const clip::ModelConfig worldwide = clip::load_model_config(clip::test::config("ViT-H-14-worldwide"));
  EXPECT_EQ(worldwide.text.pool, clip::TextPool::first_eos);
  EXPECT_EQ(worldwide.text.eos_token_id, 2);
  // Their hub tokenizers come from the hub (test_hub.cpp fetches one from a stand-in): offline with an empty cache,
  // a clear line, never the CLIP BPE in their place.
  const std::string cache = (std::filesystem::temp_directory_path() / ("clip_config_hub_" + std::to_string(::getpid())))
                                .string();
  ::setenv("HF_HUB_OFFLINE", "1", 1);
  ::setenv("HF_HUB_CACHE", cache.c_str(), 1);
  const std::string error = clip::test::error_of([&] { clip::load_tokenizer(siglip2.text); });
  ::unsetenv("HF_HUB_OFFLINE");
  ::unsetenv("HF_HUB_CACHE");
  EXPECT_CONTAINS(error, "the model's tokenizer timm/ViT-B-16-SigLIP2 (text_cfg.hf_tokenizer_name) is not in the cache");
  EXPECT_CONTAINS(error, "HF_HUB_OFFLINE is set");
}

TEST(ModelConfig, MissingFileIsAClearError) {
  try {
    clip::load_model_config("/nonexistent/model.json");
    ADD_FAILURE();
  } catch (const clip::Error& e) {
    EXPECT_NE(std::string(e.what()).find("/nonexistent/model.json: no such model config file"), std::string::npos) << e.what();
  }
}

}  // namespace
