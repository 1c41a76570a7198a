// Model parity with the reference (openai/CLIP's code, random fp16-exact weights): features and logits of the
// tiny ViT and ResNet fixtures, fp32, eval mode, within the fixtures' stated tolerance of 1e-4 relative.
#include <gtest/gtest.h>

#include <fstream>
#include <map>

#include <ATen/ATen.h>
#include <c10/core/InferenceMode.h>
#include <torch/nn/module.h>

#include "clip/embed.h"
#include "clip/model/checkpoint.h"
#include "clip/io/safetensors.h"
#include "clip/model/modified_resnet.h"
#include "clip/model/vision_transformer.h"
#include "clip/train/optimizer.h"
#include "clip/util/error.h"
#include "test_util.h"

namespace {

constexpr double kTolerance = 1e-4;  // the reference's own cross-machine spread, fixtures/README.md

class Parity : public testing::TestWithParam<std::string> {};

TEST_P(Parity, FeaturesAndLogitsMatchTheReference) {
  const std::string name = GetParam();
  clip::CLIP model =
      clip::load_model(clip::test::data(name + ".safetensors"), clip::LoadOptions().config_path(clip::test::data(name + ".json")));
  const clip::TensorMap io = clip::read_safetensors(clip::test::data(name + ".io.safetensors")).tensors;
  torch::NoGradGuard no_grad;
  const clip::ClipOutput out = model->forward(io.at("image"), io.at("text"));
  EXPECT_LT(clip::test::report(name + " image_features", out.image_features, io.at("image_features")), kTolerance);
  EXPECT_LT(clip::test::report(name + " text_features", out.text_features, io.at("text_features")), kTolerance);
  EXPECT_LT(clip::test::report(name + " logits_per_image", out.logits_per_image, io.at("logits_per_image")),
            kTolerance);
  EXPECT_LT(clip::test::report(name + " logits_per_text", out.logits_per_text, io.at("logits_per_text")), kTolerance);
}

TEST_P(Parity, BatchedEmbeddingMatchesOneBatch) {
  const std::string name = GetParam();
  clip::CLIP model =
      clip::load_model(clip::test::data(name + ".safetensors"), clip::LoadOptions().config_path(clip::test::data(name + ".json")));
  const clip::TensorMap io = clip::read_safetensors(clip::test::data(name + ".io.safetensors")).tensors;
  clip::EmbedOptions options;
  options.batch_size = 1;
  const clip::TensorMap out = clip::embed_tensors(*model, io, options);
  EXPECT_LT(clip::test::report(name + " batch-1 image_features", out.at("image_features"), io.at("image_features")),
            kTolerance);
  EXPECT_LT(clip::test::report(name + " batch-1 text_features", out.at("text_features"), io.at("text_features")),
            kTolerance);
  EXPECT_LT(clip::test::report(name + " batch-1 logits", out.at("logits_per_image"), io.at("logits_per_image")),
            kTolerance);
}

INSTANTIATE_TEST_SUITE_P(Fixtures, Parity, testing::Values("vit_tiny", "rn_tiny"));

TEST(Model, ParameterNamesAreTheReferenceStateDictKeys) {
  for (const std::string name : {"vit_tiny", "rn_tiny"}) {
    clip::CLIP model(clip::load_model_config(clip::test::data(name + ".json")));
    const clip::TensorMap reference = clip::read_safetensors(clip::test::data(name + ".safetensors")).tensors;
    const clip::StateDictMismatch m = clip::compare_state_dict(*model, reference);
    EXPECT_TRUE(m.empty()) << name << ": " << m.missing.size() << " missing, " << m.unexpected.size()
                           << " unexpected, " << m.wrong_shape.size() << " wrong shape";
  }
}

// The other families' layouts: libclip's named_parameters() of a model built from open_clip's config, against the
// state-dict keys and shapes open_clip 3.3 gives the same model (tests/data/NAME.keys.txt, make_family_keys.py).
TEST(Model, FamilyParameterNamesAreOpenClipsStateDictKeys) {
  for (const std::string name : {"ViT-B-16-SigLIP", "ViT-B-16-SigLIP2"}) {
    std::map<std::string, std::string> expected;
    std::ifstream in(clip::test::data(name + ".keys.txt"));
    ASSERT_TRUE(in) << name;
    for (std::string line; std::getline(in, line);) {
      if (line.empty() || line[0] == '#') continue;
      const size_t space = line.find(' ');
      expected[line.substr(0, space)] = line.substr(space + 1);
    }
    clip::CLIP model(clip::load_model_config(clip::test::config(name)));
    std::map<std::string, std::string> ours;
    for (const auto& p : model->named_parameters()) {
      std::string shape;
      for (const int64_t s : p.value().sizes()) shape += (shape.empty() ? "" : ",") + std::to_string(s);
      ours[p.key()] = shape;
    }
    for (const auto& [key, shape] : expected) {
      EXPECT_TRUE(ours.count(key)) << name << ": open_clip's " << key << " is missing";
      if (ours.count(key)) {
        EXPECT_EQ(ours[key], shape) << name << ": " << key;
      }
    }
    for (const auto& [key, shape] : ours) EXPECT_TRUE(expected.count(key)) << name << ": " << key << " is not open_clip's";
    std::printf("[ measured ] %s: %zu parameters, open_clip's state dict %zu keys\n", name.c_str(), ours.size(),
                expected.size());
  }
}

// A SigLIP model saved and loaded again computes the same outputs; its logits carry the learned bias.
TEST(Model, SigLipSavesLoadsAndAddsTheLogitBias) {
  clip::CLIP model(clip::load_model_config(clip::test::config("ViT-B-16-SigLIP")));
  model->eval();
  {
    torch::NoGradGuard no_grad;
    model->logit_bias.fill_(-3.5);
  }
  clip::test::TempDir dir;
  clip::save_model(*model, dir / "siglip.safetensors");
  clip::CLIP loaded = clip::load_model(dir / "siglip.safetensors");
  const at::Tensor images = at::randn({2, 3, 224, 224}, at::TensorOptions().dtype(at::kFloat));
  const at::Tensor ids = at::randint(0, 32000, {3, 64}, at::TensorOptions().dtype(at::kLong));
  torch::NoGradGuard no_grad;
  const clip::ClipOutput a = model->forward(images, ids);
  const clip::ClipOutput b = loaded->forward(images, ids);
  // Equal up to the kernels' rounding: the loaded weights view the file's mapping, whose alignment can pick another
  // vectorized path in LibTorch 2.x's convolution (measured 0 on 1.13).
  EXPECT_LT(clip::test::report("siglip image features, saved and loaded", b.image_features, a.image_features), 1e-6);
  EXPECT_LT(clip::test::report("siglip text features, saved and loaded", b.text_features, a.text_features), 1e-6);
  const at::Tensor cosine = at::matmul(clip::l2_normalize(a.image_features), clip::l2_normalize(a.text_features).t());
  EXPECT_LT(clip::test::report("siglip logits", a.logits_per_image, model->logit_scale.exp() * cosine - 3.5), 1e-6);
}

// no_causal_mask: every position sees every token. Pooled at the first position, a bidirectional tower's feature
// changes with the last token and a causal one's does not.
TEST(Model, BidirectionalTextSeesLaterTokens) {
  for (const bool bidirectional : {true, false}) {
    const std::string json = std::string(R"({"embed_dim": 16, "custom_text": true,
      "vision_cfg": {"image_size": 32, "layers": 1, "width": 64, "patch_size": 16},
      "text_cfg": {"context_length": 8, "vocab_size": 10, "width": 16, "heads": 1, "layers": 1, "pool_type": "first",
                   "proj_bias": true, "no_causal_mask": )") + (bidirectional ? "true" : "false") + "}}";
    clip::CLIP model(clip::parse_model_config(json, "inline"));
    torch::NoGradGuard no_grad;
    const at::Tensor ids = at::randint(0, 10, {2, 8}, at::TensorOptions().dtype(at::kLong));
    at::Tensor changed = ids.clone();
    changed.select(1, 7).fill_(9);
    changed.select(1, 7).masked_fill_(ids.select(1, 7).eq(9), 8);
    EXPECT_EQ(at::equal(model->encode_text(ids), model->encode_text(changed)), !bidirectional) << bidirectional;
    EXPECT_TRUE(model->named_parameters().contains("text.text_projection.bias"));
  }
}

TEST(Model, TextParametersAreSharedNotCopied) {
  clip::CLIP model(clip::load_model_config(clip::test::data("vit_tiny.json")));
  EXPECT_TRUE(model->named_parameters()["positional_embedding"].is_same(model->text->positional_embedding));
  EXPECT_TRUE(model->named_parameters()["transformer.resblocks.0.attn.in_proj_weight"].is_same(
      model->text->transformer->resblocks[0]->as<clip::ResidualAttentionBlockImpl>()->attn->in_proj_weight));
  // Each tensor once: the text tower is not registered twice.
  EXPECT_EQ(model->parameters().size(), model->named_parameters().size());
}

TEST(Model, ConvertKeepsIntegerBuffersAndSharing) {
  clip::CLIP model = clip::load_model(clip::test::data("rn_tiny.safetensors"), clip::LoadOptions().config_path(clip::test::data("rn_tiny.json")));
  clip::convert_module(*model, torch::kCPU, at::kDouble);
  EXPECT_EQ(model->named_buffers()["visual.bn1.num_batches_tracked"].scalar_type(), at::kLong);
  EXPECT_EQ(model->text->positional_embedding.scalar_type(), at::kDouble);
  EXPECT_EQ(model->named_parameters()["positional_embedding"].scalar_type(), at::kDouble);
  // fp64 is at least as close to the fp32 reference as fp32 is.
  const clip::TensorMap io = clip::read_safetensors(clip::test::data("rn_tiny.io.safetensors")).tensors;
  torch::NoGradGuard no_grad;
  const at::Tensor features = model->encode_text(io.at("text"));
  EXPECT_LT(clip::test::report("rn_tiny fp64 text_features", features, io.at("text_features")), kTolerance);
}

TEST(Model, InitializationFollowsTheReference) {
  clip::CLIP model(clip::load_model_config(clip::test::data("rn_tiny.json")));
  auto params = model->named_parameters();
  EXPECT_NEAR(params["logit_scale"].item<double>(), std::log(1 / 0.07), 1e-6);
  EXPECT_EQ(params["visual.layer1.0.bn3.weight"].abs().sum().item<double>(), 0.0);  // zero-init residual branch
  EXPECT_NEAR(params["token_embedding.weight"].std().item<double>(), 0.02, 0.002);
  EXPECT_NEAR(params["positional_embedding"].std().item<double>(), 0.01, 0.001);
  const double proj_std = std::pow(64.0, -0.5) * std::pow(4.0, -0.5);  // width^-0.5 (2 layers)^-0.5
  EXPECT_NEAR(params["transformer.resblocks.0.attn.out_proj.weight"].std().item<double>(), proj_std, 0.1 * proj_std);
}

TEST(Model, WrongInputSizesFailClearly) {
  clip::CLIP model(clip::load_model_config(clip::test::data("vit_tiny.json")));
  torch::NoGradGuard no_grad;
  EXPECT_THROW(model->encode_image(at::zeros({1, 3, 32, 32})), c10::Error);
  EXPECT_THROW(model->encode_image(at::zeros({1, 64, 64})), c10::Error);
  EXPECT_THROW(model->encode_text(at::zeros({1, 78}, at::kLong)), c10::Error);
  clip::TensorMap bad{{"text", at::full({1, 5}, 1000, at::kLong)}};
  EXPECT_THROW(clip::embed_tensors(*model, bad), clip::Error);
  EXPECT_THROW(clip::embed_tensors(*model, {{"image", at::zeros({1, 3, 32, 32})}}), clip::Error);
  EXPECT_THROW(clip::embed_tensors(*model, {{"other", at::zeros({1})}}), clip::Error);
  // NaN inputs ran to NaN features with exit 0 (issue 17); they are refused, counted.
  at::Tensor nan_image = at::zeros({2, 3, 64, 64});
  nan_image[1][0][5][5] = std::nan("");
  clip::EmbedOptions options;
  options.source = "inputs.safetensors";
  EXPECT_CONTAINS(clip::test::error_of([&] { clip::embed_tensors(*model, {{"image", nan_image}}, options); }),
                  "inputs.safetensors: 'image' holds 1 NaN or infinite values");
}

// Inference without autograd may take faster paths on the CPU: the Transformer's linear layers from weights packed
// once (LibTorch 2.x with MKL, src/model/packed_linear.h), the ResNet's convolutions with their BatchNorms folded
// in (src/model/folded_conv.h). The results must equal those of the plain path (autograd on: at::linear, conv then
// BatchNorm), also after the weights or the BatchNorm statistics change in place (an optimizer step, a load, a
// training-mode forward) and when the batch size changes. 1e-6 relative.
class InferencePaths : public testing::TestWithParam<std::string> {};

TEST_P(InferencePaths, EqualTheAutogradPathAcrossWeightAndBatchChanges) {
  const std::string name = GetParam();
  clip::CLIP model = clip::load_model(clip::test::data(name + ".safetensors"),
                                      clip::LoadOptions().config_path(clip::test::data(name + ".json")));
  model->eval();
  at::manual_seed(3);
  const at::Tensor images = at::randn({3, 3, 64, 64});
  const at::Tensor ids = at::randint(1, 400, {3, 77}, at::kLong);
  // The batch order: after the change the first product has the row count of the last one before it, so only
  // the weight's version counter can tell that its pack is stale.
  auto check = [&](const std::string& what, std::vector<int64_t> batches) {
    at::Tensor image_ref, text_ref;
    {
      at::AutoGradMode grad(true);
      image_ref = model->encode_image(images).detach();
      text_ref = model->encode_text(ids).detach();
    }
    for (int64_t batch : batches) {
      c10::InferenceMode inference;
      EXPECT_LT(clip::test::report(name + " " + what + " image, batch " + std::to_string(batch),
                                   model->encode_image(images.narrow(0, 0, batch)), image_ref.narrow(0, 0, batch)),
                1e-6);
      EXPECT_LT(clip::test::report(name + " " + what + " text, batch " + std::to_string(batch),
                                   model->encode_text(ids.narrow(0, 0, batch)), text_ref.narrow(0, 0, batch)),
                1e-6);
    }
  };
  check("inference", {3, 1});
  {
    torch::NoGradGuard no_grad;  // a change in place, as an optimizer step makes it
    for (auto& p : model->parameters()) p.mul_(1.25).add_(0.01);
  }
  check("after an in-place change,", {1, 3});
  {
    // An optimizer step (fused AdamW on LibTorch 2.4+: a kernel that does not move version counters itself).
    clip::AdamW optimizer(*model, clip::AdamWOptions().lr(1e-2));
    (model->encode_image(images).square().sum() + model->encode_text(ids).square().sum()).backward();
    optimizer.step();
  }
  check("after an optimizer step,", {3, 1});
  {
    // A training-mode forward moves the BatchNorms' running statistics (the ResNet; the ViT has none).
    torch::NoGradGuard no_grad;
    model->train();
    model->encode_image(at::randn({4, 3, 64, 64}));
    model->eval();
  }
  check("after a training-mode forward,", {3, 1});
}

INSTANTIATE_TEST_SUITE_P(Fixtures, InferencePaths, testing::Values("vit_tiny", "rn_tiny"));

}  // namespace
