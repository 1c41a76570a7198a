// clip_bench: training and inference throughput, peak memory and model-FLOP utilisation on synthetic inputs.
#include <CLI/CLI.hpp>
#include <cstdio>
#include <fstream>
#include <iostream>

#include "clip/bench/benchmark.h"
#include "clip/bench/flops.h"
#include "clip/bench/search_bench.h"
#include "clip/util/blas.h"
#include "clip/util/error.h"
#include "clip/util/threads.h"
#include "tool_main.h"
#include "cli.h"

namespace {

struct Params {
  clip::BenchOptions bench;
  std::string mode = "train";
  std::string precision = "fp32";
  std::string json;
  bool flops = false;
  clip::SearchBenchOptions search;
};

// --mode search: the image index's search beside faiss alone.
int run_search(const Params& p) {
  clip::set_cpu_threads(p.bench.threads());
  const std::vector<clip::SearchBenchRow> rows = clip::run_search_benchmark(
      p.search, [](const std::string& line) { std::cerr << "clip_bench: " << line << "\n"; });
  std::printf("%s", clip::format_search_bench_table(rows).c_str());
  return 0;
}

// --flops: the itemized count instead of a benchmark.
int print_flops(const Params& p) {
  const clip::ModelConfig config = clip::bench_model_config(p.bench.model());
  auto print = [](const char* title, const std::vector<clip::FlopTerm>& terms) {
    std::printf("%s: %.2f GFLOPs\n", title, clip::total_flops(terms) / 1e9);
    for (const auto& t : terms) std::printf("  %-48s %10.4f\n", t.name.c_str(), t.flops / 1e9);
  };
  print("image tower (open_clip's count)", clip::image_tower_flop_terms(config));
  if (config.vision.is_resnet()) {
    std::printf("image tower as libclip computes it (mean-token attention pool): %.2f GFLOPs\n",
                clip::total_flops(clip::image_tower_flop_terms(config, clip::AttnPoolFlops::libclip)) / 1e9);
  }
  print("text tower", clip::text_tower_flop_terms(config));
  const int64_t b = p.bench.batch_size();
  std::printf("loss at batch %lld: %.6f GFLOPs per sample\ntraining sample at batch %lld: %.2f GFLOPs\n",
              static_cast<long long>(b), clip::loss_forward_flops(config, b) / 1e9, static_cast<long long>(b),
              clip::train_flops_per_sample(config, b) / 1e9);
  return 0;
}

int run(Params p) {
  if (p.flops) return print_flops(p);
  if (p.mode == "search") return run_search(p);
  clip::warn_if_reference_blas();
  p.bench.mode(clip::parse_bench_mode(p.mode)).precision(clip::parse_bench_precision(p.precision));
  const clip::BenchResult r =
      clip::run_benchmark(p.bench, [](const std::string& line) { std::cerr << "clip_bench: " << line << "\n"; });
  std::printf("%s", clip::format_bench_table({r}).c_str());
  if (r.mode == clip::BenchMode::train) std::printf("last loss: %.4f\n", r.last_loss);
  if (!p.json.empty()) {
    std::ofstream out(p.json, std::ios::app);
    out << clip::bench_result_json(r) << "\n";
    if (!out) clip::fail(p.json, ": cannot append the result");
  }
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  Params p;
  CLI::App app{"clip_bench: throughput, peak memory and model-FLOP utilisation (MFU) of CLIP training and inference\n"
               "on synthetic inputs. Each of --steps steps is timed after --warmup steps (synchronized on CUDA); the\n"
               "median is reported. FLOPs are counted from the config (2 per multiply-add, open_clip's convention);\n"
               "a training sample is 3x its forward FLOPs. Train: forward+backward, AdamW, logit-scale clamp."};
  std::string model = p.bench.model(), device = p.bench.device();
  int64_t batch = p.bench.batch_size(), steps = p.bench.steps(), warmup = p.bench.warmup();
  double peak = p.bench.peak_tflops();
  int threads = p.bench.threads();
  app.add_option("--model", model, "registry name (RN50 ... ViT-L-14-336, vit_tiny) or a model-config JSON file")
      ->capture_default_str();
  app.add_option("--batch-size", batch, "samples per step")->capture_default_str()->check(clip::tools::positive_int());
  app.add_option("--mode", p.mode, "train | image | text | search (the image index beside faiss alone)")
      ->capture_default_str();
  app.add_option("--sizes", p.search.sizes, "search: vectors in the index")->capture_default_str();
  app.add_option("--kinds", p.search.kinds, "search: flat, ivf")->capture_default_str();
  app.add_option("--query-batches", p.search.batches, "search: queries per call")->capture_default_str();
  app.add_option("--dim", p.search.dim, "search: dimensions")->capture_default_str()->check(clip::tools::positive_int());
  app.add_option("--device", device, "cpu, cuda or cuda:N")->capture_default_str();
  app.add_option("--precision", p.precision,
                 "fp32 | bf16 | int8. CUDA: bf16 is autocast over fp32 weights, as clip_train. CPU, image and text "
                 "modes: bf16 or int8 inference (as --precision of clip_embed), with the cosine against fp32")
      ->capture_default_str();
  app.add_option("--steps", steps, "timed steps")->capture_default_str()->check(clip::tools::positive_int());
  app.add_option("--warmup", warmup, "untimed steps first")->capture_default_str()->check(clip::tools::non_negative_int());
  app.add_option("--peak-tflops", peak, "the device's peak TFLOP/s for MFU (0: measure a matrix product)")
      ->capture_default_str()
      ->check(clip::tools::non_negative_number());
  app.add_option("--threads", threads, "LibTorch CPU threads (0: one per core)")->capture_default_str()
      ->check(clip::tools::non_negative_int());
  app.add_option("--json", p.json, "append the result as one JSON line to this file");
  app.add_flag("--flops", p.flops, "print the model's itemized FLOP count and exit");
  if (const auto done = clip::tools::parse_flags(app, argc, argv, "clip_bench")) return *done;
  p.bench.model(model).device(device).batch_size(batch).steps(steps).warmup(warmup).peak_tflops(peak).threads(threads);
  return clip::tools::run_tool("clip_bench", [&] { return run(p); });
}
