// clip_embed: embed model inputs, image files or texts with a CLIP checkpoint into a safetensors file.
#include <ATen/Parallel.h>

#include <CLI/CLI.hpp>
#include <cstdio>
#include <iostream>

#include <nlohmann/json.hpp>

#include "clip/embed.h"
#include "clip/model/checkpoint.h"
#include "clip/io/safetensors.h"
#include "clip/model/model_tokenizer.h"
#include "clip/util/blas.h"
#include "clip/util/error.h"
#include "clip/util/threads.h"
#include "tool_main.h"
#include "clip/util/utf8.h"
#include "model_flags.h"
#include "cli.h"

namespace {

struct Params {
  std::string checkpoint;
  clip::tools::ModelFlags model;
  std::string inputs;
  std::string images;
  std::string texts;
  std::string output;
  std::string device = "cpu";
  int64_t batch_size = 256;
  int threads = 0;
  int workers = 0;
  bool print = false;
  bool truncate = false;
};

void print_logits(const at::Tensor& logits) {
  std::printf("logits_per_image [%lld images x %lld texts]:\n", static_cast<long long>(logits.size(0)),
              static_cast<long long>(logits.size(1)));
  const at::Tensor l = logits.contiguous();
  for (int64_t i = 0; i < l.size(0); ++i) {
    std::printf("  image %lld:", static_cast<long long>(i));
    for (int64_t j = 0; j < l.size(1); ++j) std::printf(" %9.4f", l[i][j].item<double>());
    std::printf("\n");
  }
}

int run(const Params& p) {
  clip::warn_if_reference_blas();
  clip::set_cpu_threads(p.threads);
  if (p.inputs.empty() && p.images.empty() && p.texts.empty()) {
    clip::fail("nothing to embed: give --inputs FILE.safetensors, or --images and/or --texts");
  }
  clip::CLIP model = clip::load_model(
      p.checkpoint, p.model.options().device(p.device));
  clip::EmbedOptions options;
  options.batch_size = p.batch_size;
  options.workers = p.workers;
  options.truncate = p.truncate;
  clip::TensorMap outputs;
  std::map<std::string, std::string> metadata{{"checkpoint", p.checkpoint}};
  if (!p.inputs.empty()) {
    options.source = p.inputs;
    outputs = clip::embed_tensors(*model, clip::read_safetensors(p.inputs).tensors, options);
  } else {
    if (!p.images.empty()) {
      options.source = p.images;
      const clip::ImageEmbeddings e = clip::embed_image_files(*model, clip::image_list(p.images), options);
      outputs["image_embeddings"] = e.embeddings;
      // File names and captions that are not UTF-8 keep their bytes as \xNN (clip/util/utf8.h).
      nlohmann::json images = nlohmann::json::array();
      for (const std::string& path : e.paths) images.push_back(clip::utf8_or_escaped(path));
      metadata["images"] = images.dump();
      nlohmann::json skipped = nlohmann::json::array();
      for (const auto& error : e.errors) {
        std::cerr << "skipped " << error.message << "\n";
        skipped.push_back({{"path", clip::utf8_or_escaped(error.path)}, {"error", clip::utf8_or_escaped(error.message)}});
      }
      metadata["skipped"] = skipped.dump();
    }
    if (!p.texts.empty()) {
      options.source = p.texts;
      const std::vector<std::string> texts = clip::read_texts(p.texts);
      const auto tokenizer = clip::load_tokenizer(model->config().text);
      outputs["text_embeddings"] = clip::embed_texts(*model, *tokenizer, texts, options);
      nlohmann::json text_list = nlohmann::json::array();
      for (const std::string& text : texts) text_list.push_back(clip::utf8_or_escaped(text));
      metadata["texts"] = text_list.dump();
    }
  }
  clip::write_safetensors(p.output, outputs, metadata);
  for (const auto& [name, tensor] : outputs) {
    std::cerr << "clip_embed: " << name << " " << clip::shape_string(tensor.sizes()) << "\n";
  }
  if (p.print && outputs.count("logits_per_image")) print_logits(outputs.at("logits_per_image"));
  std::cerr << "clip_embed: wrote " << p.output << "\n";
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  Params p;
  CLI::App app{"clip_embed: embed with a CLIP checkpoint.\n"
               "--inputs: 'image' [B,3,R,R] (normalized floats) and/or 'text' [T,L] (token ids) -> image_features,\n"
               "text_features (projected, not normalized) and, with both, logits_per_image/_text.\n"
               "--images/--texts: image files and texts -> image_embeddings/text_embeddings (L2-normalized), with\n"
               "the file names and texts, in order, in the output's metadata."};
  app.add_option("--checkpoint,--pretrained", p.checkpoint,
                 "model weights: OpenAI .pt, torch.save/open_clip .pt, safetensors, or an HF/open_clip folder")
      ->required()
      ->check(clip::tools::kCheckpointPath);
  p.model.add_to(app, /*with_verify=*/true);
  p.model.add_precision(app);
  auto* inputs = app.add_option("--inputs", p.inputs, "safetensors file with 'image' and/or 'text'")->check(CLI::ExistingFile);
  app.add_option("--images", p.images, "a folder of images (recursive) or a file listing image paths")
      ->excludes(inputs)
      ->check(CLI::ExistingPath);
  auto* texts = app.add_option("--texts", p.texts, "texts: one a line, or JSONL with a \"text\" field")
                    ->excludes(inputs)
                    ->check(CLI::ExistingFile);
  app.add_flag("--truncate", p.truncate,
               "with --texts: cut texts longer than the model's context, keeping the end token, as open_clip and "
               "transformers do (default: an error naming the text)")
      ->needs(texts);
  app.add_option("--output", p.output, "safetensors file to write")->required();
  app.add_option("--device", p.device, "cpu, cuda or cuda:N")->capture_default_str();
  app.add_option("--batch-size", p.batch_size, "rows per forward pass")->capture_default_str()->check(clip::tools::positive_int());
  app.add_option("--threads", p.threads, "LibTorch CPU threads (0: one per core)")
      ->capture_default_str()
      ->check(clip::tools::non_negative_int());
  app.add_option("--workers", p.workers, "image decoding threads (0: one per core)")
      ->capture_default_str()
      ->check(clip::tools::non_negative_int());
  app.add_flag("--print", p.print, "print logits_per_image to stdout (--inputs mode)");
  if (const auto done = clip::tools::parse_flags(app, argc, argv, "clip_embed")) return *done;
  return clip::tools::run_tool("clip_embed", [&] { return run(p); });
}
