// clip_preprocess: image files -> model-input tensors [3, N, N] (safetensors), or --bench: images/s per core.
#include <CLI/CLI.hpp>

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <map>
#include <nlohmann/json.hpp>

#include "clip/image/loader.h"
#include "clip/io/safetensors.h"
#include "clip/model/config.h"
#include "clip/util/error.h"
#include "tool_main.h"
#include "clip/util/utf8.h"
#include "cli.h"

namespace {

struct Params {
  std::vector<std::string> images;
  std::string output;
  std::string config;
  int64_t size = 0;  // 0: the config's image size, else 224
  std::string resize_mode;
  std::string interpolation;
  std::vector<double> mean;
  std::vector<double> std;
  int threads = 0;
  int64_t max_pixels = clip::kDefaultMaxImagePixels;
  bool exif = false;
  bool uint8 = false;
  std::string key = "name";
  bool bench = false;
  double bench_seconds = 5.0;
};

clip::ImageLoaderOptions loader_options(const Params& p) {
  clip::ImageLoaderOptions o;
  clip::PreprocessOptions preprocess;  // OpenAI CLIP's, 224
  if (!p.config.empty()) preprocess = clip::load_model_config(p.config).preprocess;
  if (!p.resize_mode.empty()) preprocess.resize_mode = clip::parse_resize_mode(p.resize_mode, "--resize-mode");
  if (!p.interpolation.empty()) preprocess.interpolation = clip::parse_interpolation(p.interpolation, "--interpolation");
  if (!p.mean.empty()) std::copy(p.mean.begin(), p.mean.end(), preprocess.mean.begin());
  if (!p.std.empty()) std::copy(p.std.begin(), p.std.end(), preprocess.std.begin());
  if (p.size > 0) preprocess.size = p.size;
  o.preprocess = preprocess;
  o.format = p.uint8 ? clip::BatchFormat::uint8 : clip::BatchFormat::normalized;
  o.threads = p.threads;
  o.batch_size = 16;
  o.pin_memory = false;
  o.decode.max_pixels = p.max_pixels;
  o.decode.apply_exif_orientation = p.exif;
  return o;
}

std::string json_array(const std::array<double, 3>& v) { return nlohmann::json(v).dump(); }

// Tensor names: file names, or the paths as given; two inputs may not share one.
std::vector<std::string> tensor_names(const Params& p) {
  std::vector<std::string> names;
  std::map<std::string, std::string> seen;
  for (const std::string& path : p.images) {
    names.push_back(p.key == "path" ? path : std::filesystem::path(path).filename().string());
    const auto [it, added] = seen.emplace(names.back(), path);
    if (!added) clip::fail("two inputs are named '", names.back(), "' (", it->second, ", ", path, "); use --key path");
  }
  return names;
}

int write(const Params& p) {
  if (p.output.empty()) clip::fail("--output is required (or --bench)");
  clip::tools::refuse_output_over_inputs(p.output, p.images);
  const clip::ImageLoaderOptions o = loader_options(p);
  const std::vector<std::string> names = tensor_names(p);
  clip::TensorMap tensors;
  nlohmann::json errors = nlohmann::json::object();
  clip::ImageLoader loader(p.images, o);
  while (std::optional<clip::ImageBatch> batch = loader.next()) {
    for (size_t r = 0; r < batch->indices.size(); ++r) tensors[names[batch->indices[r]]] = batch->images[r];
    for (const clip::ItemError& e : batch->errors) {
      std::cerr << "error: " << e.message << "\n";
      errors[clip::utf8_or_escaped(e.path)] = clip::utf8_or_escaped(e.message);
    }
  }
  const clip::PreprocessOptions& pre = o.preprocess;
  std::map<std::string, std::string> metadata{
      {"size", std::to_string(pre.size)},
      {"resize_mode", clip::resize_mode_name(pre.resize_mode)},
      {"interpolation", clip::interpolation_name(pre.interpolation)},
      {"mean", json_array(pre.mean)},
      {"std", json_array(pre.std)},
      {"format", p.uint8 ? "uint8, before normalization" : "float32, normalized"},
      {"images", std::to_string(tensors.size())},
      {"errors", errors.dump()}};
  clip::write_safetensors(p.output, tensors, metadata);
  std::cerr << "clip_preprocess: wrote " << tensors.size() << " of " << p.images.size() << " images to " << p.output
            << "\n";
  return errors.empty() ? 0 : 2;
}

// Decode + resize + crop + normalize from memory, one thread, each file in turn until the time is up.
int bench(const Params& p) {
  const clip::ImageLoaderOptions o = loader_options(p);
  const int64_t n = o.preprocess.size;
  std::vector<std::pair<std::string, std::vector<uint8_t>>> files;
  for (const std::string& path : p.images) {
    std::ifstream in(path, std::ios::binary);
    std::vector<uint8_t> bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    try {
      clip::decode_image_bytes(bytes.data(), bytes.size(), path, o.decode);
      files.emplace_back(path, std::move(bytes));
    } catch (const std::exception& e) {
      std::cerr << "error: " << clip::error_message(e) << " (left out of the benchmark)\n";
    }
  }
  if (files.empty()) clip::fail("no readable images to benchmark");
  std::vector<uint8_t> rgb(static_cast<size_t>(n * n * 3));
  std::vector<float> planes(static_cast<size_t>(n * n * 3));
  std::vector<double> seconds(files.size(), 0.0);
  using clock = std::chrono::steady_clock;
  const auto start = clock::now();
  int64_t rounds = 0;
  do {
    for (size_t i = 0; i < files.size(); ++i) {
      const auto t0 = clock::now();
      const clip::Image image = clip::decode_image_bytes(files[i].second.data(), files[i].second.size(), files[i].first, o.decode);
      clip::preprocess_rgb(image, o.preprocess, rgb.data());
      clip::normalize_rgb(rgb.data(), n * n, o.preprocess.mean, o.preprocess.std, planes.data());
      seconds[i] += std::chrono::duration<double>(clock::now() - t0).count();
    }
    ++rounds;
  } while (std::chrono::duration<double>(clock::now() - start).count() < p.bench_seconds);
  double total = 0.0;
  std::printf("%-32s %10s\n", "file", "ms/image");
  for (size_t i = 0; i < files.size(); ++i) {
    total += seconds[i];
    std::printf("%-32s %10.3f\n", std::filesystem::path(files[i].first).filename().c_str(), 1e3 * seconds[i] / rounds);
  }
  std::printf("clip_preprocess: %lld rounds of %zu images at %lld px, one thread: %.1f images/s per core\n",
              static_cast<long long>(rounds), files.size(), static_cast<long long>(n),
              static_cast<double>(rounds * static_cast<int64_t>(files.size())) / total);
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  Params p;
  CLI::App app{"clip_preprocess: image files to model-input tensors, as the reference preprocesses them.\n"
               "Writes each readable image as a [3,N,N] float32 tensor named by its file name; prints each failure\n"
               "as 'error: FILE: reason' and lists it in the output's metadata. Exit 0 when every image was read,\n"
               "2 when some were not (the rest are still written). Decodes JPEG, PNG, BMP, WebP, TIFF, PNM."};
  app.add_option("images", p.images, "image files")->required();
  app.add_option("--output", p.output, "safetensors file to write");
  app.add_option("--size", p.size, "output size N (default: the config's image_size, else 224)")
      ->check(clip::tools::positive_int());
  app.add_option("--config", p.config, "model config JSON (open_clip schema): preprocess_cfg and image_size")
      ->check(CLI::ExistingFile);
  app.add_option("--resize-mode", p.resize_mode, "shortest | longest | squash (default: the config's, else shortest)")
      ->check(CLI::IsMember({"shortest", "longest", "squash"}));
  app.add_option("--interpolation", p.interpolation, "bicubic | bilinear (default: the config's, else bicubic)")
      ->check(CLI::IsMember({"bicubic", "bilinear"}));
  app.add_option("--mean", p.mean, "per-channel mean (default: the config's, else OpenAI CLIP's)")->expected(3)
      ->check(clip::tools::finite_number());
  app.add_option("--std", p.std, "per-channel std (default: the config's, else OpenAI CLIP's)")->expected(3)
      ->check(clip::tools::positive_number());
  app.add_option("--threads", p.threads, "worker threads (0: one per core)")->capture_default_str()
      ->check(clip::tools::non_negative_int());
  app.add_option("--max-pixels", p.max_pixels, "refuse images with more pixels (0: no limit)")->capture_default_str()
      ->check(clip::tools::non_negative_int());
  app.add_flag("--apply-exif-orientation", p.exif, "rotate/mirror by the EXIF orientation (the reference does not)");
  app.add_flag("--uint8", p.uint8, "write uint8 [3,N,N] before normalization instead of float32");
  app.add_option("--key", p.key, "tensor names: name (file name) | path (as given)")->capture_default_str()
      ->check(CLI::IsMember({"name", "path"}));
  app.add_flag("--bench", p.bench, "measure decode + resize + crop + normalize, one thread, in images/s per core");
  app.add_option("--bench-seconds", p.bench_seconds, "how long --bench runs")->capture_default_str()
      ->check(clip::tools::positive_number());
  if (const auto done = clip::tools::parse_flags(app, argc, argv, "clip_preprocess")) return *done;
  return clip::tools::run_tool("clip_preprocess", [&] { return p.bench ? bench(p) : write(p); });
}
