#include "clip/embed.h"

#include <ATen/ATen.h>
#include <c10/core/InferenceMode.h>
#include <torch/nn/module.h>

#include <algorithm>
#include <filesystem>
#include <sstream>

#include "clip/data/image_folder.h"
#include "clip/image/transform.h"
#include "clip/text/text_lines.h"
#include "clip/util/error.h"
#include "clip/util/utf8.h"
#include "util/clock.h"
#include "util/file.h"

namespace clip {
namespace {

// Runs `encode` over row batches of `input` on the model's device and concatenates fp32 CPU results.
template <typename Encode>
at::Tensor batched(const at::Tensor& input, int64_t batch_size, const at::TensorOptions& device, Encode encode) {
  std::vector<at::Tensor> parts;
  for (int64_t start = 0; start < input.size(0); start += batch_size) {
    const int64_t n = std::min(batch_size, input.size(0) - start);
    parts.push_back(encode(input.narrow(0, start, n).to(device.device())).to(at::kCPU, at::kFloat));
  }
  return at::cat(parts, 0);
}

void check_image(const ModelConfig& c, const at::Tensor& image, const std::string& source) {
  const int64_t r = c.vision.image_size;
  if (image.dim() != 4 || image.size(1) != 3 || image.size(2) != r || image.size(3) != r) {
    fail(source, ": 'image' has shape ", shape_string(image.sizes()), ", the model expects [N, 3, ", r, ", ", r, "]");
  }
  if (!image.is_floating_point()) fail(source, ": 'image' must be floating point, got ", image.scalar_type());
  // NaN or infinity in an input gives NaN features that look like any others downstream.
  if (image.numel() > 0) {
    const int64_t bad = image.isfinite().logical_not().sum().item<int64_t>();
    if (bad > 0) {
      fail(source, ": 'image' holds ", bad, " NaN or infinite values; the inputs are damaged (remake them with "
           "clip_preprocess)");
    }
  }
}

void check_text(const ModelConfig& c, const at::Tensor& text, const std::string& source) {
  if (text.dim() != 2 || text.size(1) > c.text.context_length) {
    fail(source, ": 'text' has shape ", shape_string(text.sizes()), ", the model expects [N, L] with L <= ",
         c.text.context_length);
  }
  if (text.is_floating_point() || text.scalar_type() == at::kBool) {
    fail(source, ": 'text' must hold integer token ids, got ", text.scalar_type());
  }
  if (text.numel() > 0) {
    const int64_t lo = text.min().item<int64_t>(), hi = text.max().item<int64_t>();
    if (lo < 0 || hi >= c.text.vocab_size) {
      fail(source, ": 'text' holds token ids in [", lo, ", ", hi, "], outside the model's vocabulary [0, ",
           c.text.vocab_size, ")");
    }
  }
}

}  // namespace

TensorMap embed_tensors(CLIPImpl& model, const TensorMap& inputs, const EmbedOptions& options) {
  TORCH_CHECK(options.batch_size > 0, "batch_size must be positive, got ", options.batch_size);
  const auto image = inputs.find("image");
  const auto text = inputs.find("text");
  if (image == inputs.end() && text == inputs.end()) {
    fail(options.source, ": holds neither 'image' [N, 3, R, R] nor 'text' [N, L]; nothing to embed");
  }
  torch::NoGradGuard no_grad;
  const at::Tensor weight = model.logit_scale;
  const at::TensorOptions device = weight.options();
  TensorMap out;
  if (image != inputs.end()) {
    check_image(model.config(), image->second, options.source);
    out["image_features"] = batched(image->second.to(weight.scalar_type()), options.batch_size, device,
                                    [&](const at::Tensor& x) { return model.encode_image(x); });
  }
  if (text != inputs.end()) {
    check_text(model.config(), text->second, options.source);
    out["text_features"] = batched(text->second.to(at::kLong), options.batch_size, device,
                                   [&](const at::Tensor& x) { return model.encode_text(x); });
  }
  if (image != inputs.end() && text != inputs.end()) {
    const at::Tensor bias = model.logit_bias.defined() ? model.logit_bias.to(at::kCPU, at::kFloat) : at::Tensor();
    ClipOutput logits = compute_logits(out["image_features"], out["text_features"],
                                       model.logit_scale.to(at::kCPU, at::kFloat), bias);
    out["logits_per_image"] = logits.logits_per_image;
    out["logits_per_text"] = logits.logits_per_text.contiguous();
  }
  return out;
}

struct ImageFeatureStream::State {
  State(CLIPImpl& m, std::vector<std::string> paths, const ImageLoaderOptions& o)
      : model(m), was_training(m.is_training()), loader(std::move(paths), o) {}
  CLIPImpl& model;
  bool was_training;
  // Before the loader, whose threads start decoding as it is made: their CPU time falls inside the split's window.
  Clock::time_point start = Clock::now();
  double process_cpu_start = process_cpu_seconds();
  ImageLoader loader;
  double wait_seconds = 0, model_seconds = 0;
};

namespace {

ImageLoaderOptions loader_options(const CLIPImpl& model, const EmbedOptions& options) {
  ImageLoaderOptions o;
  o.batch_size = options.batch_size;
  o.threads = options.workers;
  o.preprocess = model.config().preprocess;
  o.hash_content = options.hash_content;
  return o;
}

}  // namespace

ImageFeatureStream::ImageFeatureStream(CLIPImpl& model, std::vector<std::string> paths, const EmbedOptions& options)
    : state_(std::make_unique<State>(model, std::move(paths), loader_options(model, options))) {
  model.eval();
}

ImageFeatureStream::~ImageFeatureStream() { state_->model.train(state_->was_training); }

std::optional<ImageFeatureBatch> ImageFeatureStream::next() {
  const auto wait = Clock::now();
  std::optional<ImageBatch> batch = state_->loader.next();
  state_->wait_seconds += seconds_since(wait);
  if (!batch) return std::nullopt;
  ImageFeatureBatch out;
  out.indices = std::move(batch->indices);
  out.errors = std::move(batch->errors);
  out.sha256 = std::move(batch->sha256);
  if (!out.indices.empty()) {
    const auto start = Clock::now();
    c10::InferenceMode inference;
    CLIPImpl& model = state_->model;
    const at::Tensor& weight = model.logit_scale;
    out.features = model.encode_image(batch->images.to(weight.device(), weight.scalar_type(), /*non_blocking=*/true));
    state_->model_seconds += seconds_since(start);
  }
  return out;
}

int64_t ImageFeatureStream::size() const { return state_->loader.size(); }
double ImageFeatureStream::wait_seconds() const { return state_->wait_seconds; }
double ImageFeatureStream::model_seconds() const { return state_->model_seconds; }

CpuSplit ImageFeatureStream::cpu_split() const {
  CpuSplit split;
  split.cores = usable_cores();
  split.wall_seconds = seconds_since(state_->start);
  const double process = process_cpu_seconds() - state_->process_cpu_start;
  split.decoding = std::min(state_->loader.cpu_seconds(), process);
  split.model = process - split.decoding;
  split.idle = std::max(0.0, double(split.cores) * split.wall_seconds - process);
  return split;
}


ImageEmbeddings embed_image_files(CLIPImpl& model, const std::vector<std::string>& paths, const EmbedOptions& options) {
  ImageFeatureStream stream(model, paths, options);
  ImageEmbeddings out;
  std::vector<at::Tensor> parts;
  while (auto batch = stream.next()) {
    for (auto& e : batch->errors) out.errors.push_back(std::move(e));
    if (batch->indices.empty()) continue;
    parts.push_back(l2_normalize(batch->features).to(at::kCPU, at::kFloat));
    for (int64_t i : batch->indices) out.paths.push_back(paths[size_t(i)]);
  }
  if (parts.empty()) {
    fail(options.source, ": none of the ", paths.size(), " images could be read",
         out.errors.empty() ? std::string() : " (" + out.errors.front().message + ")");
  }
  out.embeddings = at::cat(parts);
  return out;
}

at::Tensor embed_texts(CLIPImpl& model, const Tokenizer& tokenizer, const std::vector<std::string>& texts,
                       const EmbedOptions& options) {
  if (texts.empty()) fail(options.source, ": no texts to embed");
  at::Tensor ids;
  try {
    ids = tokenizer.tokenize(texts, model.config().text.context_length, options.truncate);
  } catch (const TextError& e) {
    fail(options.source, ": text ", e.index() + 1, " (\"", utf8_excerpt(texts.at(e.index())), "\"): ", e.reason());
  }
  const bool was_training = model.is_training();
  model.eval();
  std::vector<at::Tensor> parts;
  {
    c10::InferenceMode inference;
    const at::Device device = model.logit_scale.device();
    for (int64_t start = 0; start < ids.size(0); start += options.batch_size) {
      const int64_t n = std::min(options.batch_size, ids.size(0) - start);
      parts.push_back(model.encode_text(ids.narrow(0, start, n).to(device), /*normalize=*/true).to(at::kCPU, at::kFloat));
    }
  }
  model.train(was_training);
  return at::cat(parts);
}

std::vector<std::string> image_list(const std::string& folder_or_list) {
  std::error_code ec;
  if (std::filesystem::is_directory(folder_or_list, ec)) return scan_images(folder_or_list).paths;
  if (!std::filesystem::exists(folder_or_list, ec)) fail(folder_or_list, ": no such folder or list file");
  std::istringstream in(read_file(folder_or_list));
  std::vector<std::string> paths;
  std::string line;
  while (std::getline(in, line)) {
    if (!line.empty() && line.back() == '\r') line.pop_back();
    if (!line.empty()) paths.push_back(line);
  }
  if (paths.empty()) fail(folder_or_list, ": the list names no images");
  return paths;
}

std::vector<std::string> read_texts(const std::string& path) {
  std::istringstream in(read_file(path, "texts file"));
  std::vector<std::string> texts;
  std::string line;
  int64_t lineno = 0;
  bool jsonl = false, first = true;
  while (std::getline(in, line)) {
    ++lineno;
    if (!line.empty() && line.back() == '\r') line.pop_back();
    if (line.empty()) continue;
    if (first) jsonl = line.front() == '{';
    first = false;
    if (!jsonl) {
      texts.push_back(line);
      continue;
    }
    texts.push_back(text_from_json_line(line, str(path, ":", lineno)));
  }
  if (texts.empty()) fail(path, ": holds no texts");
  return texts;
}

}  // namespace clip
