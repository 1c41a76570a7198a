// CUDA against the CPU: model outputs in fp32 (1e-4 relative, TF32 off) and under bf16 autocast (logits 1e-2), one
// training step (loss, every gradient, every parameter after AdamW and the clamp) in fp32, and a bf16-autocast loss;
// then the benchmark runner on the GPU. Every test here is named *_CUDA and skips, saying why, where no GPU is
// visible, so `ctest -R _CUDA` on a CPU machine reports them as skipped rather than passed.
#include <gtest/gtest.h>

#include <ATen/ATen.h>
#include <torch/cuda.h>
#include <torch/nn/module.h>

#include <cmath>
#include <cstdio>

#include "clip/bench/benchmark.h"
#include "clip/model/checkpoint.h"
#include "clip/io/safetensors.h"
#include "clip/model/clip_model.h"
#include "clip/train/optimizer.h"
#include "clip/train/step.h"
#include "clip/util/cuda.h"
#include "test_util.h"
#include "util/torch_compat.h"

namespace {

const at::Device kCuda("cuda");

std::string why_no_cuda() { return clip::cuda_unavailable_reason(); }

// fp32 on the GPU means fp32: cuBLAS and cuDNN may otherwise use TF32 (cuDNN convolutions do by default).
class Cuda : public testing::Test {
 protected:
  void SetUp() override {
    if (!torch::cuda::is_available()) GTEST_SKIP() << why_no_cuda();
    at::globalContext().setAllowTF32CuBLAS(false);
    at::globalContext().setAllowTF32CuDNN(false);
  }
};

class CudaFixture : public testing::TestWithParam<std::string> {
 protected:
  void SetUp() override {
    if (!torch::cuda::is_available()) GTEST_SKIP() << why_no_cuda();
    at::globalContext().setAllowTF32CuBLAS(false);
    at::globalContext().setAllowTF32CuDNN(false);
  }
};

clip::CLIP load_fixture(const std::string& name, const std::string& device = "cpu") {
  return clip::load_model(clip::test::data(name + ".safetensors"),
                          clip::LoadOptions().config_path(clip::test::data(name + ".json")).device(device));
}

// max |a - b| / max(max |b|, 1e-4), as tests/test_train_step.cpp: a gradient that is zero in exact arithmetic
// is compared at the scale 1e-4 rather than at its float noise.
double gradient_difference(const at::Tensor& actual, const at::Tensor& expected) {
  const at::Tensor a = actual.to(at::kCPU, at::kDouble), b = expected.to(at::kCPU, at::kDouble);
  return (a - b).abs().max().item<double>() / std::max(b.abs().max().item<double>(), 1e-4);
}

double compare_outputs(const std::string& what, const clip::ClipOutput& got, const clip::ClipOutput& expected) {
  double worst = 0;
  worst = std::max(worst, clip::test::report(what + " image_features", got.image_features.cpu(), expected.image_features));
  worst = std::max(worst, clip::test::report(what + " text_features", got.text_features.cpu(), expected.text_features));
  worst = std::max(worst, clip::test::report(what + " logits_per_image", got.logits_per_image.cpu(), expected.logits_per_image));
  return worst;
}

// ||a - b|| / ||b|| (METHOD.md's measure for reduced precision), printed.
double norm_difference(const std::string& what, const at::Tensor& actual, const at::Tensor& expected) {
  const at::Tensor a = actual.to(at::kCPU, at::kDouble), b = expected.to(at::kCPU, at::kDouble);
  const double d = ((a - b).norm() / b.norm()).item<double>();
  std::printf("[ measured ] %-40s norm-relative difference %.3g\n", what.c_str(), d);
  return d;
}

// The smallest cosine similarity between matching rows, printed with the norm-relative difference.
double worst_cosine(const std::string& what, const at::Tensor& actual, const at::Tensor& expected) {
  const at::Tensor a = actual.to(at::kCPU, at::kDouble), b = expected.to(at::kCPU, at::kDouble);
  const double cosine = at::cosine_similarity(a, b, 1).min().item<double>();
  std::printf("[ measured ] %-40s worst row cosine %.6f, norm-relative difference %.3g\n", what.c_str(), cosine,
              ((a - b).norm() / b.norm()).item<double>());
  return cosine;
}

TEST_P(CudaFixture, Fp32OutputsEqualTheCpus_CUDA) {
  const std::string name = GetParam();
  const clip::TensorMap io = clip::read_safetensors(clip::test::data(name + ".io.safetensors")).tensors;
  clip::CLIP cpu = load_fixture(name), gpu = load_fixture(name, "cuda");
  torch::NoGradGuard no_grad;
  const clip::ClipOutput expected = cpu->forward(io.at("image"), io.at("text"));
  EXPECT_LT(compare_outputs(name + " cuda fp32", gpu->forward(io.at("image").to(kCuda), io.at("text").to(kCuda)), expected),
            1e-4);
}

// bf16 autocast (what clip_train and clip_bench --precision bf16 run): the logits within 1e-2 by the norm-relative
// measure ||a - b|| / ||b||; the features, whose bf16 rounding (2^-9 per operand) accumulates to 1-3% through the
// blocks (measured on the CPU's bf16 autocast: vit_tiny text 2.0%, rn_tiny 1.6%), by direction.
TEST_P(CudaFixture, Bf16AutocastOutputsNearTheCpus_CUDA) {
  const std::string name = GetParam();
  const clip::TensorMap io = clip::read_safetensors(clip::test::data(name + ".io.safetensors")).tensors;
  clip::CLIP cpu = load_fixture(name), gpu = load_fixture(name, "cuda");
  torch::NoGradGuard no_grad;
  const clip::ClipOutput expected = cpu->forward(io.at("image"), io.at("text"));
  clip::ClipOutput got;
  {
    clip::compat::AutocastGuard autocast(true, at::kBFloat16);
    got = gpu->forward(io.at("image").to(kCuda), io.at("text").to(kCuda));
  }
  EXPECT_EQ(got.image_features.scalar_type(), at::kBFloat16) << "autocast was not on";
  EXPECT_LT(norm_difference(name + " cuda bf16 logits_per_image", got.logits_per_image, expected.logits_per_image), 1e-2);
  EXPECT_GT(worst_cosine(name + " cuda bf16 image_features", got.image_features, expected.image_features), 0.999);
  EXPECT_GT(worst_cosine(name + " cuda bf16 text_features", got.text_features, expected.text_features), 0.999);
}

// One fp32 training step from the fixture's batch: contrastive_backward, AdamW, the clamp, on both devices.
TEST_P(CudaFixture, TrainingStepEqualsTheCpus_CUDA) {
  const std::string name = GetParam();
  const clip::TensorMap ref = clip::read_safetensors(clip::test::data(name + ".train_grad.safetensors")).tensors;
  const at::Tensor images = ref.at("image"), texts = ref.at("text");
  clip::CLIP cpu = load_fixture(name), gpu = load_fixture(name, "cuda");
  cpu->train();
  gpu->train();
  const auto adamw = clip::AdamWOptions().lr(1e-3).beta1(0.9).beta2(0.98).eps(1e-6).weight_decay(0.2);
  clip::AdamW cpu_opt(*cpu, adamw), gpu_opt(*gpu, adamw);

  const at::Tensor cpu_loss = clip::contrastive_backward(*cpu, clip::InfoNCELoss(), images, texts);
  const at::Tensor gpu_loss = clip::contrastive_backward(*gpu, clip::InfoNCELoss(), images.to(kCuda), texts.to(kCuda));
  EXPECT_LT(clip::test::report(name + " cuda loss", gpu_loss.cpu(), cpu_loss), 1e-5);
  const auto gpu_params = gpu->named_parameters();
  double worst = 0;
  std::string worst_name;
  for (const auto& item : cpu->named_parameters()) {
    const at::Tensor& g = gpu_params[item.key()].grad();
    ASSERT_TRUE(g.defined()) << item.key();
    const double d = gradient_difference(g, item.value().grad());
    if (d > worst) worst = d, worst_name = item.key();
    EXPECT_LT(d, 1e-3) << "gradient of " << item.key();
  }
  std::printf("[ measured ] %s cuda gradients: worst relative difference %.3g (%s)\n", name.c_str(), worst,
              worst_name.c_str());

  cpu_opt.step();
  gpu_opt.step();
  for (auto* model : {&cpu, &gpu}) {
    at::NoGradGuard no_grad;
    (*model)->logit_scale.clamp_(0, std::log(100.0));
  }
  // Adam's first step moves each element by about lr * g / (|g| + eps): gradient noise near eps can move an
  // element ~1e-4 the other way (tests/test_train_step.cpp), while a wrong step is ~2 lr = 2e-3 off.
  worst = 0;
  for (const auto& item : cpu->named_parameters()) {
    const double d = (gpu_params[item.key()].cpu() - item.value()).abs().max().item<double>();
    if (d > worst) worst = d, worst_name = item.key();
    EXPECT_LT(d, 5e-4) << "parameter after one step: " << item.key();
  }
  std::printf("[ measured ] %s cuda parameters after one AdamW step: worst absolute difference %.3g (%s)\n",
              name.c_str(), worst, worst_name.c_str());

  // The next loss sees every parameter at once.
  cpu_opt.zero_grad();
  gpu_opt.zero_grad();
  const at::Tensor cpu_next = clip::contrastive_backward(*cpu, clip::InfoNCELoss(), images, texts);
  const at::Tensor gpu_next = clip::contrastive_backward(*gpu, clip::InfoNCELoss(), images.to(kCuda), texts.to(kCuda));
  EXPECT_LT(clip::test::report(name + " cuda loss after the step", gpu_next.cpu(), cpu_next), 1e-4);
}

// The bf16-autocast step clip_train runs on GPUs: its loss against the fp32 CPU loss.
TEST_P(CudaFixture, Bf16AutocastLossNearTheCpus_CUDA) {
  const std::string name = GetParam();
  const clip::TensorMap ref = clip::read_safetensors(clip::test::data(name + ".train_grad.safetensors")).tensors;
  clip::CLIP cpu = load_fixture(name), gpu = load_fixture(name, "cuda");
  cpu->train();
  gpu->train();
  const at::Tensor cpu_loss = clip::contrastive_backward(*cpu, clip::InfoNCELoss(), ref.at("image"), ref.at("text"));
  clip::StepOptions bf16;
  bf16.bf16_autocast = true;
  const at::Tensor gpu_loss =
      clip::contrastive_backward(*gpu, clip::InfoNCELoss(), ref.at("image").to(kCuda), ref.at("text").to(kCuda), bf16);
  // bf16 moves the loss by ~1% (CPU bf16 autocast: vit_tiny 0.1%, rn_tiny 1.3%, with BatchNorm in train mode).
  EXPECT_LT(clip::test::report(name + " cuda bf16 autocast loss", gpu_loss.cpu(), cpu_loss), 3e-2);
  for (const auto& item : gpu->named_parameters()) {
    ASSERT_TRUE(item.value().grad().defined()) << item.key();
    EXPECT_EQ(item.value().grad().scalar_type(), at::kFloat) << item.key() << ": master weights stay fp32";
  }
}

INSTANTIATE_TEST_SUITE_P(Fixtures, CudaFixture, testing::Values("vit_tiny", "rn_tiny"));

// Full-size towers with fresh weights (12 layers, 768 wide; the ResNet's cuDNN convolutions): fp32 at 1e-4; under
// bf16 autocast the features by direction (their logits are ill-conditioned here: fresh image and text features are
// nearly orthogonal, so a small change in them is a large relative change in the logits).
TEST_F(Cuda, FullSizeModelsEqualTheCpus_CUDA) {
  for (const char* name : {"ViT-B-32", "RN50"}) {
    at::manual_seed(0);
    clip::CLIP model(clip::load_model_config(clip::test::config(name)));
    model->eval();
    at::Generator gen = at::detail::createCPUGenerator(1);
    const at::Tensor images = at::randn({2, 3, 224, 224}, gen, at::kFloat);
    at::Tensor texts = at::randint(1, 49405, {3, 77}, gen, at::kLong);
    texts.narrow(1, 12, 65).zero_();
    texts.select(1, 0).fill_(49406);
    texts.select(1, 11).fill_(49407);
    torch::NoGradGuard no_grad;
    const clip::ClipOutput expected = model->forward(images, texts);
    clip::convert_module(*model, kCuda, at::kFloat);
    EXPECT_LT(compare_outputs(std::string(name) + " cuda fp32", model->forward(images.to(kCuda), texts.to(kCuda)), expected),
              1e-4);
    clip::ClipOutput got;
    {
      clip::compat::AutocastGuard autocast(true, at::kBFloat16);
      got = model->forward(images.to(kCuda), texts.to(kCuda));
    }
    EXPECT_GT(worst_cosine(std::string(name) + " cuda bf16 image_features", got.image_features, expected.image_features),
              0.999);
    EXPECT_GT(worst_cosine(std::string(name) + " cuda bf16 text_features", got.text_features, expected.text_features),
              0.999);
  }
}

TEST_F(Cuda, BenchmarkRunsOnTheGpu_CUDA) {
  for (const auto mode : {clip::BenchMode::train, clip::BenchMode::image}) {
    const auto o = clip::BenchOptions()
                       .model("vit_tiny")
                       .device("cuda")
                       .mode(mode)
                       .precision(clip::BenchPrecision::bf16)
                       .batch_size(16)
                       .steps(3)
                       .warmup(2);
    const clip::BenchResult r = clip::run_benchmark(o);
    std::printf("%s", clip::format_bench_table({r}).c_str());
    EXPECT_EQ(r.memory_kind, "CUDA allocator peak");
    EXPECT_GT(r.peak_memory_bytes, 0);
    EXPECT_TRUE(r.peak_measured);
    EXPECT_GT(r.peak_tflops, 1.0) << "a bf16 matrix product on a GPU";
    EXPECT_GT(r.samples_per_second, 0);
    if (mode == clip::BenchMode::train) {
      EXPECT_TRUE(std::isfinite(r.last_loss));
    }
  }
}

}  // namespace
