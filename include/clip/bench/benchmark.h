#pragma once
/// Throughput, peak memory and model-FLOP utilisation of training and inference on synthetic inputs: the library
/// behind clip_bench.
///
///   clip::BenchResult r = clip::run_benchmark(clip::BenchOptions().model("ViT-B-32").batch_size(1024)
///                                                 .device("cuda").precision(clip::BenchPrecision::bf16));
///   std::fputs(clip::format_bench_table({r}).c_str(), stdout);
///
/// A step is what the trainer does per batch (train: clip::train_step, clip/train/step.h, the very function
/// clip_train calls, its host synchronization included) or one encode_image / encode_text call (image, text). After `warmup` untimed steps, each of `steps`
/// steps is timed on its own, synchronizing the device after it; the median is reported. MFU is
/// samples/s x model FLOPs per sample (clip/bench/flops.h) / peak FLOP/s, the peak given or measured with a large
/// matrix product in the benchmark's precision.
#include <torch/arg.h>

#include <cstdint>
#include <functional>
#include <limits>
#include <string>
#include <vector>

#include "clip/model/config.h"

namespace clip {

/// What a step does.
enum class BenchMode {
  train,  ///< clip::train_step: forward, backward, gradient norm, AdamW, logit-scale clamp
  image,  ///< encode_image without grad
  text,   ///< encode_text without grad
};

/// Arithmetic of a benchmark.
enum class BenchPrecision {
  fp32,  ///< fp32 weights and math (LibTorch's defaults: no TF32 in cuBLAS)
  bf16,  ///< CUDA: bf16 autocast over fp32 weights (as clip_train and open_clip); CPU, image and text modes: the
         ///< model's bf16 inference precision (clip/model/precision.h)
  int8,  ///< CPU, image and text modes: the model's int8 inference precision (dynamic quantized linear layers)
};

/// "train" | "image" | "text" (clip::Error otherwise).
BenchMode parse_bench_mode(const std::string& text);
/// "fp32" | "bf16" | "int8" (clip::Error otherwise).
BenchPrecision parse_bench_precision(const std::string& text);
/// The flag spelling: "train", "image", "text".
const char* to_string(BenchMode mode);
/// The flag spelling: "fp32", "bf16", "int8".
const char* to_string(BenchPrecision precision);

/// Options of run_benchmark.
struct BenchOptions {
  TORCH_ARG(std::string, model) = "ViT-B-32";  ///< registry name (configs/models) or a model-config JSON file
  TORCH_ARG(int64_t, batch_size) = 32;
  TORCH_ARG(BenchMode, mode) = BenchMode::train;
  TORCH_ARG(std::string, device) = "cpu";  ///< cpu, cuda or cuda:N
  TORCH_ARG(BenchPrecision, precision) = BenchPrecision::fp32;
  TORCH_ARG(int64_t, steps) = 10;   ///< timed steps (the median is reported)
  TORCH_ARG(int64_t, warmup) = 3;   ///< untimed steps first
  TORCH_ARG(double, peak_tflops) = 0;  ///< the device's peak for MFU; 0 measures a matrix product
  TORCH_ARG(int, threads) = 0;      ///< LibTorch CPU threads; 0: one per core
  TORCH_ARG(uint64_t, seed) = 0;
};

/// What one benchmark measured.
struct BenchResult {
  std::string model;
  BenchMode mode = BenchMode::train;
  std::string device;
  BenchPrecision precision = BenchPrecision::fp32;
  int64_t batch_size = 0;
  int threads = 0;
  std::vector<double> step_seconds;  ///< each timed step, in order
  double median_step_seconds = 0;
  double samples_per_second = 0;     ///< batch_size / median step
  double flops_per_sample = 0;       ///< model FLOPs (train: 3 x forward, loss included)
  double achieved_tflops = 0;        ///< samples/s x flops_per_sample / 1e12
  double peak_tflops = 0;
  bool peak_measured = false;        ///< measured here rather than given
  double mfu = 0;                    ///< achieved / peak
  int64_t peak_memory_bytes = -1;    ///< during the timed steps; -1 when unknown
  std::string memory_kind;           ///< "CUDA allocator peak" (max allocated) or "process peak RSS"
  double last_loss = 0;              ///< train mode: the loss of the last step (a sanity check: finite, ~ln B)
  /// CPU bf16 / int8 inference: cosine similarity of each sample's output with the same model's fp32 output, the
  /// mean and the smallest over the batch; NaN otherwise.
  double cosine_mean = std::numeric_limits<double>::quiet_NaN();
  double cosine_min = std::numeric_limits<double>::quiet_NaN();
};

/// The config of `model`: a registry name (configs/models) or a model-config file (a path ending in .json), as
/// registered_config. clip::Error naming the known models when it is neither.
ModelConfig bench_model_config(const std::string& model);

/// Builds the model from its config with fresh weights, runs the benchmark, returns what it measured.
/// `log` receives progress lines (model built, warm-up done, peak measured). clip::Error on bad options, an
/// unknown model, or a CUDA device that is not visible.
BenchResult run_benchmark(const BenchOptions& options, const std::function<void(const std::string&)>& log = {});

/// The rate of a large matrix product on `device` in `precision` (median of a few), in TFLOP/s: CUDA 8192^3,
/// CPU 2048^3 (fp32) or 1024^3 (bf16), on random data. int8 measures the fp32 product (so a CPU int8 run's MFU is
/// against fp32's rate).
double measure_matmul_tflops(const std::string& device, BenchPrecision precision);

/// A fixed-width table, one row per result, with a header.
std::string format_bench_table(const std::vector<BenchResult>& results);

/// One JSON object (one line) with every field, for logs and scripts.
std::string bench_result_json(const BenchResult& result);

}  // namespace clip
