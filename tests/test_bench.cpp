// FLOP accounting against open_clip's model profile, and the benchmark runner on the tiny models on the CPU.
#include <gtest/gtest.h>

#include <sys/wait.h>
#include <torch/cuda.h>

#include <array>
#include <cctype>
#include <cmath>
#include <cstdio>
#include <memory>
#include <ostream>
#include <nlohmann/json.hpp>

#include "clip/bench/benchmark.h"
#include "clip/model/precision.h"
#include "clip/bench/flops.h"
#include "clip/model/config.h"
#include "clip/util/cuda.h"
#include "clip/util/error.h"
#include "test_util.h"

namespace {

struct Profile {
  const char* model;
  double image_gflops, text_gflops;
};

// open_clip's docs/model_profile.csv (torch.utils.flop_counter, 2 FLOPs per multiply-add, batch 1): image_gflops
// and text_gflops of the nine OpenAI architectures, the SigLIP towers (timm's ViT with the MAP head; SO400M/14 at
// 384 px floors its grid to 27 x 27) and DFN's ViT-H at 378 px.
const Profile kOpenClipProfile[] = {
    {"RN50", 12.22, 5.96},         {"RN101", 19.54, 5.96},    {"RN50x4", 42.56, 9.27},
    {"RN50x16", 149.39, 13.30},    {"RN50x64", 529.11, 23.55}, {"ViT-B-32", 8.82, 5.96},
    {"ViT-B-16", 35.13, 5.96},     {"ViT-L-14", 162.03, 13.30}, {"ViT-L-14-336", 381.92, 13.30},
    {"ViT-B-16-SigLIP", 35.42, 11.02}, {"ViT-B-16-SigLIP-384", 112.13, 11.02}, {"ViT-L-16-SigLIP-256", 162.56, 39.06},
    {"ViT-SO400M-14-SigLIP", 220.35, 13.19}, {"ViT-SO400M-14-SigLIP-384", 670.35, 53.13},
    {"ViT-H-14-378-quickgelu", 1006.96, 47.09},
};

void PrintTo(const Profile& p, std::ostream* os) { *os << p.model; }

class OpenClipProfile : public testing::TestWithParam<Profile> {};

TEST_P(OpenClipProfile, FlopCountAgrees) {
  const Profile& p = GetParam();
  const clip::ModelConfig config = clip::load_model_config(clip::test::config(p.model));
  const double image = clip::image_forward_flops(config) / 1e9, text = clip::text_forward_flops(config) / 1e9;
  const double di = std::abs(image - p.image_gflops) / p.image_gflops, dt = std::abs(text - p.text_gflops) / p.text_gflops;
  std::printf("[ measured ] %-13s image %8.3f GFLOPs (open_clip %7.2f, %.2g)  text %6.3f (open_clip %5.2f, %.2g)\n",
              p.model, image, p.image_gflops, di, text, p.text_gflops, dt);
  EXPECT_LT(di, 0.01) << p.model << " image";
  EXPECT_LT(dt, 0.01) << p.model << " text";
}

INSTANTIATE_TEST_SUITE_P(ReleasedModels, OpenClipProfile, testing::ValuesIn(kOpenClipProfile),
                         [](const testing::TestParamInfo<Profile>& info) {
                           std::string name = info.param.model;
                           for (char& c : name) c = std::isalnum(static_cast<unsigned char>(c)) ? c : '_';
                           return name;
                         });

TEST(FlopCount, TrainingSampleIsThreeForwards) {
  const clip::ModelConfig config = clip::load_model_config(clip::test::config("ViT-B-32"));
  // PERFORMANCE.md: 44.34 GFLOPs per ViT-B/32 training sample; the loss adds 4 B D = 2.1 MFLOPs at B = 1024.
  EXPECT_NEAR(clip::loss_forward_flops(config, 1024), 4.0 * 1024 * 512, 1e-3);
  EXPECT_NEAR(clip::train_flops_per_sample(config, 1024) / 1e9, 44.34, 0.01);
}

TEST(FlopCount, ItemizesTheParts) {
  const clip::ModelConfig vit = clip::load_model_config(clip::test::config("ViT-B-32"));
  const auto terms = clip::image_tower_flop_terms(vit);
  // Patch embedding: 49 patches x 768 outputs x 3072 inputs, 2 FLOPs each.
  EXPECT_EQ(terms.front().flops, 2.0 * 49 * 768 * 3 * 32 * 32);
  EXPECT_DOUBLE_EQ(clip::total_flops(terms), clip::image_forward_flops(vit));
  // libclip's attention pool queries with the mean token alone: 12.22 -> 11.59 GFLOPs for RN50.
  const clip::ModelConfig rn = clip::load_model_config(clip::test::config("RN50"));
  const double executed = clip::total_flops(clip::image_tower_flop_terms(rn, clip::AttnPoolFlops::libclip)) / 1e9;
  std::printf("[ measured ] RN50 image tower as libclip computes it: %.3f GFLOPs\n", executed);
  EXPECT_NEAR(executed, 11.59, 0.01);
}

void expect_sane(const clip::BenchResult& r, const clip::BenchOptions& o) {
  ASSERT_EQ(r.step_seconds.size(), size_t(o.steps()));
  for (double s : r.step_seconds) EXPECT_GT(s, 0);
  EXPECT_NEAR(r.samples_per_second, double(o.batch_size()) / r.median_step_seconds, 1e-9 * r.samples_per_second);
  EXPECT_NEAR(r.achieved_tflops, r.samples_per_second * r.flops_per_sample / 1e12, 1e-9 * r.achieved_tflops);
  EXPECT_GT(r.peak_tflops, 0);
  EXPECT_NEAR(r.mfu, r.achieved_tflops / r.peak_tflops, 1e-12);
  EXPECT_GT(r.peak_memory_bytes, 1 << 20) << r.memory_kind;  // a process holding LibTorch is far over 1 MiB
  EXPECT_EQ(r.memory_kind.rfind("process peak RSS", 0), 0u) << r.memory_kind;
}

TEST(Benchmark, TrainsTheTinyViTOnTheCpu) {
  const auto o = clip::BenchOptions().model("vit_tiny").batch_size(4).steps(3).warmup(1).peak_tflops(0.05).threads(1);
  const clip::BenchResult r = clip::run_benchmark(o);
  expect_sane(r, o);
  const clip::ModelConfig config = clip::bench_model_config("vit_tiny");
  EXPECT_DOUBLE_EQ(r.flops_per_sample, clip::train_flops_per_sample(config, 4));
  EXPECT_FALSE(r.peak_measured);
  // Random features: the loss sits near ln(batch).
  EXPECT_TRUE(std::isfinite(r.last_loss));
  EXPECT_GT(r.last_loss, 0.5);
  EXPECT_LT(r.last_loss, 5.0);
  const std::string table = clip::format_bench_table({r});
  std::printf("%s", table.c_str());
  EXPECT_NE(table.find("vit_tiny"), std::string::npos);
  EXPECT_NE(table.find("MFU"), std::string::npos);
  const auto json = nlohmann::json::parse(clip::bench_result_json(r));
  EXPECT_EQ(json.at("mode"), "train");
  EXPECT_EQ(json.at("step_seconds").size(), 3u);
}

TEST(Benchmark, EncodesWithTheTinyResNetOnTheCpu) {
  for (const auto mode : {clip::BenchMode::image, clip::BenchMode::text}) {
    const auto o =
        clip::BenchOptions().model("rn_tiny").mode(mode).batch_size(3).steps(2).warmup(1).peak_tflops(0.05).threads(1);
    const clip::BenchResult r = clip::run_benchmark(o);
    expect_sane(r, o);
    const clip::ModelConfig config = clip::bench_model_config("rn_tiny");
    EXPECT_DOUBLE_EQ(r.flops_per_sample, mode == clip::BenchMode::image ? clip::image_forward_flops(config)
                                                                         : clip::text_forward_flops(config));
    std::printf("%s", clip::format_bench_table({r}).c_str());
  }
}

TEST(Benchmark, ReducedPrecisionReportsItsCosineAgainstFp32) {
  if (!clip::int8_available()) GTEST_SKIP() << "int8: this LibTorch has no quantized engine";
  for (const auto mode : {clip::BenchMode::image, clip::BenchMode::text}) {
    const auto o = clip::BenchOptions().model("vit_tiny").mode(mode).batch_size(4).steps(1).warmup(0).peak_tflops(1)
                       .precision(clip::BenchPrecision::int8);
    const clip::BenchResult r = clip::run_benchmark(o);
    expect_sane(r, o);
    EXPECT_GE(r.cosine_mean, 0.99);
    EXPECT_GE(r.cosine_min, 0.98);
    EXPECT_LE(r.cosine_min, r.cosine_mean);
    const std::string table = clip::format_bench_table({r});
    EXPECT_NE(table.find("int8"), std::string::npos) << table;
    EXPECT_NE(clip::bench_result_json(r).find("cosine_mean"), std::string::npos);
    std::printf("%s", table.c_str());
  }
  const clip::BenchResult fp32 = clip::run_benchmark(clip::BenchOptions().model("vit_tiny").mode(clip::BenchMode::image)
                                                         .batch_size(2).steps(1).warmup(0).peak_tflops(1));
  EXPECT_TRUE(std::isnan(fp32.cosine_mean)) << "fp32 has nothing to compare with";
}

TEST(Benchmark, MeasuresAMatmulPeak) {
  const double tflops = clip::measure_matmul_tflops("cpu", clip::BenchPrecision::fp32);
  std::printf("[ measured ] CPU fp32 2048^3 matrix product: %.1f GFLOP/s\n", 1e3 * tflops);
  EXPECT_GT(tflops, 1e-3);  // even the reference BLAS on one core does > 1 GFLOP/s
  EXPECT_LT(tflops, 100);
}

TEST(Benchmark, RefusesWhatItCannotRun) {
  auto message = [](const clip::BenchOptions& o) {
    try {
      clip::run_benchmark(o);
    } catch (const clip::Error& e) {
      return std::string(e.what());
    }
    return std::string("no error");
  };
  const auto tiny = clip::BenchOptions().model("vit_tiny").batch_size(2).steps(1).warmup(0).peak_tflops(1);
  // On the CPU, bf16 and int8 are inference precisions: image and text modes only.
  for (const auto precision : {clip::BenchPrecision::bf16, clip::BenchPrecision::int8}) {
    EXPECT_NE(message(clip::BenchOptions(tiny).mode(clip::BenchMode::train).precision(precision))
                  .find("training on the CPU is fp32"),
              std::string::npos);
  }
  EXPECT_NE(message(clip::BenchOptions(tiny).model("ViT-Z-99")).find("unknown model"), std::string::npos);
  EXPECT_NE(message(clip::BenchOptions(tiny).device("tpu")).find("expected cpu, cuda"), std::string::npos);
  EXPECT_NE(message(clip::BenchOptions(tiny).steps(0)).find("--steps"), std::string::npos);
  EXPECT_THROW(clip::parse_bench_mode("infer"), clip::Error);
  EXPECT_THROW(clip::parse_bench_precision("fp16"), clip::Error);
  // int8 on a GPU: refused as CPU-only where CUDA is there, else for the missing device.
  const std::string int8_cuda = message(clip::BenchOptions(tiny).device("cuda").precision(clip::BenchPrecision::int8));
  EXPECT_TRUE(int8_cuda.find("CPU inference") != std::string::npos || int8_cuda.find("--device cuda") != std::string::npos)
      << int8_cuda;
  if (!torch::cuda::is_available()) {
    EXPECT_NE(message(clip::BenchOptions(tiny).device("cuda")).find(clip::cuda_unavailable_reason()), std::string::npos);
  }
}

using ToolRun = clip::test::CommandResult;
ToolRun run(const std::string& command) { return clip::test::run_command(command + " 2>&1"); }

const std::string kBench = std::string(CLIP_BIN_DIR) + "/clip_bench";

TEST(ClipBench, PrintsATable) {
  const ToolRun r = run(kBench + " --model vit_tiny --batch-size 2 --steps 2 --warmup 1 --peak-tflops 0.05 --threads 1");
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_NE(r.output.find("samples/s"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("last loss"), std::string::npos) << r.output;
}

TEST(ClipBench, PrintsTheFlopBreakdown) {
  const ToolRun r = run(kBench + " --model ViT-B-32 --flops --batch-size 1024");
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_NE(r.output.find("image tower (open_clip's count): 8.82 GFLOPs"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("text tower: 5.96 GFLOPs"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("training sample at batch 1024: 44.34 GFLOPs"), std::string::npos) << r.output;
}

TEST(ClipBench, FailsWithOneLine) {
  const ToolRun bad_mode = run(kBench + " --model vit_tiny --mode infer");
  EXPECT_EQ(bad_mode.exit_code, 1) << bad_mode.output;
  EXPECT_NE(bad_mode.output.find("clip_bench: error: --mode 'infer'"), std::string::npos) << bad_mode.output;
  if (!torch::cuda::is_available()) {
    const ToolRun no_gpu = run(kBench + " --model vit_tiny --device cuda --steps 1 --warmup 0");
    EXPECT_EQ(no_gpu.exit_code, 1) << no_gpu.output;
    EXPECT_NE(no_gpu.output.find("--device cuda: " + clip::cuda_unavailable_reason()), std::string::npos) << no_gpu.output;
  }
}

}  // namespace
