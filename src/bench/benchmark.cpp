#include "clip/bench/benchmark.h"

#include <ATen/ATen.h>
#include <c10/core/InferenceMode.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <nlohmann/json.hpp>
#include <sstream>

#include "clip/bench/flops.h"
#include "clip/data/synthetic.h"
#include "clip/model/clip_model.h"
#include "clip/model/registry.h"
#include "clip/train/optimizer.h"
#include "clip/train/step.h"
#include "clip/util/cuda.h"
#include "clip/util/error.h"
#include "clip/util/threads.h"
#include "util/clock.h"
#include "util/device.h"
#include "util/memory.h"
#include "util/torch_compat.h"

namespace clip {
namespace {

double median(std::vector<double> values) {
  std::sort(values.begin(), values.end());
  const size_t n = values.size();
  return n % 2 ? values[n / 2] : 0.5 * (values[n / 2 - 1] + values[n / 2]);
}


void validate(const BenchOptions& o) {
  if (o.batch_size() < 1) fail("--batch-size must be at least 1, got ", o.batch_size());
  if (o.steps() < 1) fail("--steps must be at least 1, got ", o.steps());
  if (o.warmup() < 0) fail("--warmup must be at least 0, got ", o.warmup());
  if (o.peak_tflops() < 0) fail("--peak-tflops must be positive (or 0 to measure), got ", o.peak_tflops());
}

}  // namespace

ModelConfig bench_model_config(const std::string& model) {
  return registered_config(model);  // a name, or a config file's path
}

BenchMode parse_bench_mode(const std::string& text) {
  if (text == "train") return BenchMode::train;
  if (text == "image") return BenchMode::image;
  if (text == "text") return BenchMode::text;
  fail("--mode '", text, "': expected train, image or text");
}

BenchPrecision parse_bench_precision(const std::string& text) {
  if (text == "fp32") return BenchPrecision::fp32;
  if (text == "bf16") return BenchPrecision::bf16;
  if (text == "int8") return BenchPrecision::int8;
  fail("--precision '", text, "': expected fp32, bf16 or int8");
}

const char* to_string(BenchMode mode) {
  switch (mode) {
    case BenchMode::train: return "train";
    case BenchMode::image: return "image";
    case BenchMode::text: return "text";
  }
  return "?";
}

const char* to_string(BenchPrecision precision) {
  switch (precision) {
    case BenchPrecision::bf16: return "bf16";
    case BenchPrecision::int8: return "int8";
    case BenchPrecision::fp32: break;
  }
  return "fp32";
}

double measure_matmul_tflops(const std::string& device_name, BenchPrecision precision) {
  const at::Device device = parse_device(device_name);
  const bool cuda = device.is_cuda();
  const at::ScalarType dtype = precision == BenchPrecision::bf16 ? at::kBFloat16 : at::kFloat;  // int8: fp32's
  const int64_t n = cuda ? 8192 : (precision == BenchPrecision::bf16 ? 1024 : 2048);
  // Several products between synchronizations on CUDA, so the host round trip stays out of the rate.
  const int inner = cuda ? 10 : 1, rounds = cuda ? 5 : 3;
  at::NoGradGuard no_grad;
  // Random data: products of zeros run faster than real data on some GPUs.
  const auto options = at::TensorOptions().device(device).dtype(dtype);
  const at::Tensor a = at::randn({n, n}, options), b = at::randn({n, n}, options);
  at::Tensor c = at::empty({n, n}, options);
  for (int i = 0; i < (cuda ? 3 : 1); ++i) at::mm_out(c, a, b);  // cuBLAS handles, heuristics, clocks
  compat::synchronize(device);
  std::vector<double> rates;
  for (int r = 0; r < rounds; ++r) {
    const auto start = Clock::now();
    for (int i = 0; i < inner; ++i) at::mm_out(c, a, b);
    compat::synchronize(device);
    rates.push_back(2.0 * double(n) * double(n) * double(n) * inner / seconds_since(start) / 1e12);
  }
  return median(rates);
}

BenchResult run_benchmark(const BenchOptions& o, const std::function<void(const std::string&)>& log_fn) {
  auto log = [&](const std::string& line) {
    if (log_fn) log_fn(line);
  };
  const at::Device device = parse_device(o.device());
  // CUDA: bf16 is autocast. CPU: bf16 and int8 are the model's inference precision (image and text modes).
  const bool bf16 = o.precision() == BenchPrecision::bf16 && device.is_cuda();
  const InferencePrecision cpu_precision =
      device.is_cuda() || o.precision() == BenchPrecision::fp32 ? InferencePrecision::fp32
      : o.precision() == BenchPrecision::bf16                  ? InferencePrecision::bf16
                                                               : InferencePrecision::int8;
  if (o.precision() == BenchPrecision::int8 && device.is_cuda()) {
    fail("--precision int8 is CPU inference; on ", o.device(), " use bf16 or fp32");
  }
  if (cpu_precision != InferencePrecision::fp32 && o.mode() == BenchMode::train) {
    fail("--precision ", to_string(o.precision()), " on the CPU is for --mode image or text; training on the CPU is fp32");
  }
  check_inference_precision(cpu_precision, !device.is_cuda());
  validate(o);
  BenchResult r;
  r.mode = o.mode();
  r.device = o.device();
  r.precision = o.precision();
  r.batch_size = o.batch_size();
  r.threads = set_cpu_threads(o.threads());

  const ModelConfig config = bench_model_config(o.model());
  r.model = config.name.empty() ? o.model() : config.name;
  at::manual_seed(o.seed());
  CLIP model(config);
  // fp32 weights in every mode: bf16 comes from autocast, as in clip_train and open_clip's own benchmarks.
  convert_module(*model, device, at::kFloat);
  model->set_inference_precision(cpu_precision);
  log(str("model ", r.model, ": ", double(count_parameters(*model)) / 1e6, "M parameters on ", o.device(), ", ",
          to_string(o.precision()), ", ", r.threads, " CPU thread(s)"));

  at::Generator gen = at::detail::createCPUGenerator(o.seed() + 1);
  const int64_t b = o.batch_size();
  at::Tensor images, texts;
  if (o.mode() != BenchMode::text) images = synthetic_images(config, b, gen).to(device);
  if (o.mode() != BenchMode::image) texts = synthetic_texts(config.text, b, gen).to(device);

  std::unique_ptr<AdamW> optimizer;
  const InfoNCELoss loss;
  StepResult last;
  StepOptions step_options;
  step_options.bf16_autocast = bf16;
  std::function<void()> step;
  switch (o.mode()) {
    case BenchMode::train:
      model->train();
      optimizer = std::make_unique<AdamW>(*model, default_adamw_options(config));
      step = [&] {
        last = train_step(*model, *optimizer, loss, images, texts, step_options);  // clip_train's, host sync and all
      };
      r.flops_per_sample = train_flops_per_sample(config, b);
      break;
    case BenchMode::image:
      model->eval();
      step = [&] {
        c10::InferenceMode inference;  // as clip_embed and clip_zeroshot encode
        compat::AutocastGuard autocast(bf16, at::kBFloat16);
        model->encode_image(images);
      };
      r.flops_per_sample = image_forward_flops(config);
      break;
    case BenchMode::text:
      model->eval();
      step = [&] {
        c10::InferenceMode inference;
        compat::AutocastGuard autocast(bf16, at::kBFloat16);
        model->encode_text(texts);
      };
      r.flops_per_sample = text_forward_flops(config);
      break;
  }

  const auto warm_start = Clock::now();
  for (int64_t i = 0; i < o.warmup(); ++i) step();
  compat::synchronize(device);
  if (o.warmup() > 0) log(str(o.warmup(), " warm-up step(s) in ", seconds_since(warm_start), " s"));

  // The peak covers the timed steps only (model, optimizer state and inputs are already resident).
  const bool peak_reset = reset_peak_memory(device);
  for (int64_t i = 0; i < o.steps(); ++i) {
    const auto start = Clock::now();
    step();
    compat::synchronize(device);
    r.step_seconds.push_back(seconds_since(start));
  }
  r.peak_memory_bytes = peak_memory_bytes(device);
  r.memory_kind = device.is_cuda() ? "CUDA allocator peak" : peak_reset ? "process peak RSS" : "process peak RSS since start";
  if (o.mode() == BenchMode::train) r.last_loss = last.loss;
  if (cpu_precision != InferencePrecision::fp32) {
    // The same inputs through the same weights in fp32: how far the reduced precision moved each output.
    c10::InferenceMode inference;
    const bool image = o.mode() == BenchMode::image;
    const at::Tensor reduced = image ? model->encode_image(images) : model->encode_text(texts);
    model->set_inference_precision(InferencePrecision::fp32);
    const at::Tensor full = image ? model->encode_image(images) : model->encode_text(texts);
    model->set_inference_precision(cpu_precision);
    const at::Tensor cosine = at::cosine_similarity(reduced.to(at::kDouble), full.to(at::kDouble), 1);
    r.cosine_mean = cosine.mean().item<double>();
    r.cosine_min = cosine.min().item<double>();
    log(str("cosine against fp32: mean ", r.cosine_mean, ", worst ", r.cosine_min, " over ", b, " samples"));
  }

  r.median_step_seconds = median(r.step_seconds);
  r.samples_per_second = double(b) / r.median_step_seconds;
  r.achieved_tflops = r.samples_per_second * r.flops_per_sample / 1e12;
  if (o.peak_tflops() > 0) {
    r.peak_tflops = o.peak_tflops();
  } else {
    // After the timed steps, so the product's buffers stay out of the memory peak.
    optimizer.reset();
    r.peak_tflops = measure_matmul_tflops(o.device(), o.precision());
    r.peak_measured = true;
    log(str("measured peak: ", r.peak_tflops, " TFLOP/s (", to_string(o.precision()), " matrix product)"));
  }
  r.mfu = r.achieved_tflops / r.peak_tflops;
  return r;
}

std::string format_bench_table(const std::vector<BenchResult>& results) {
  std::ostringstream out;
  char line[512];
  std::snprintf(line, sizeof line, "%-12s %-5s %-6s %-4s %6s %10s %7s %11s %12s %8s %12s %6s %10s %17s\n", "model",
                "mode", "device", "prec", "batch", "step ms", "spread", "samples/s", "GFLOP/sample", "TFLOP/s",
                "peak TFLOP/s", "MFU", "peak mem", "cos fp32 mean/min");
  out << line;
  for (const BenchResult& r : results) {
    const auto [lo, hi] = std::minmax_element(r.step_seconds.begin(), r.step_seconds.end());
    const double spread = r.step_seconds.empty() ? 0 : (*hi - *lo) / r.median_step_seconds;
    char peak[32];
    std::snprintf(peak, sizeof peak, "%.3g%s", r.peak_tflops, r.peak_measured ? " (m)" : "");
    char cosine[32] = "-";
    if (!std::isnan(r.cosine_mean)) std::snprintf(cosine, sizeof cosine, "%.5f/%.5f", r.cosine_mean, r.cosine_min);
    std::snprintf(line, sizeof line, "%-12s %-5s %-6s %-4s %6lld %10.2f %6.1f%% %11.1f %12.2f %8.3f %12s %5.1f%% %10s %17s\n",
                  r.model.c_str(), to_string(r.mode), r.device.c_str(), to_string(r.precision),
                  static_cast<long long>(r.batch_size), 1e3 * r.median_step_seconds, 100 * spread, r.samples_per_second,
                  r.flops_per_sample / 1e9, r.achieved_tflops, peak, 100 * r.mfu, format_gib(r.peak_memory_bytes).c_str(),
                  cosine);
    out << line;
  }
  return out.str();
}

std::string bench_result_json(const BenchResult& r) {
  nlohmann::json j = {{"model", r.model},
                            {"mode", to_string(r.mode)},
                            {"device", r.device},
                            {"precision", to_string(r.precision)},
                            {"batch_size", r.batch_size},
                            {"threads", r.threads},
                            {"step_seconds", r.step_seconds},
                            {"median_step_seconds", r.median_step_seconds},
                            {"samples_per_second", r.samples_per_second},
                            {"flops_per_sample", r.flops_per_sample},
                            {"achieved_tflops", r.achieved_tflops},
                            {"peak_tflops", r.peak_tflops},
                            {"peak_measured", r.peak_measured},
                            {"mfu", r.mfu},
                            {"peak_memory_bytes", r.peak_memory_bytes},
                            {"memory_kind", r.memory_kind},
                            {"last_loss", r.last_loss}};
  if (!std::isnan(r.cosine_mean)) {
    j["cosine_mean"] = r.cosine_mean;
    j["cosine_min"] = r.cosine_min;
  }
  return j.dump();
}

}  // namespace clip
