// clip_convert: any checkpoint libclip reads -> safetensors (config in the metadata) or an HF folder.
#include <CLI/CLI.hpp>
#include <iostream>

#include "clip/model/checkpoint.h"
#include "clip/model/pretrained.h"
#include "clip/model/hf.h"
#include "clip/util/error.h"
#include "tool_main.h"
#include "model_flags.h"
#include "cli.h"

namespace {

struct Params {
  std::string input;
  clip::tools::ModelFlags model;
  std::string output;
  std::string format = "safetensors";
  std::string dtype = "fp32";
};

at::ScalarType parse_dtype(const std::string& name) {
  if (name == "fp32") return at::kFloat;
  if (name == "fp16") return at::kHalf;
  return at::kBFloat16;
}

int run(const Params& p) {
  // A hub name is fetched (or found in the cache) first; the model keeps the repo's name.
  const std::string local = clip::is_hub_model_name(p.input) ? clip::fetch_pretrained(p.input) : p.input;
  const clip::CheckpointFormat format = clip::detect_format(local);
  clip::CLIP model = clip::load_model(p.input, p.model.options());
  const at::ScalarType dtype = parse_dtype(p.dtype);
  if (p.format == "hf") {
    clip::save_hf_folder(*model, p.output, dtype);
  } else {
    clip::save_model(*model, p.output, dtype);
  }
  std::cerr << "clip_convert: read " << p.input << (local == p.input ? "" : " (" + local + ")") << " ("
            << clip::format_name(format) << "), "
            << clip::count_parameters(*model) << " parameters, " << (model->config().quick_gelu ? "QuickGELU" : "GELU")
            << "; wrote " << p.output << " (" << (p.format == "hf" ? "HF folder" : "safetensors") << ", " << p.dtype
            << ")\n";
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  Params p;
  CLI::App app{"clip_convert: convert a CLIP checkpoint.\n"
               "Reads OpenAI .pt releases, torch.save/open_clip checkpoints, safetensors, HF and open_clip folders;\n"
               "writes safetensors with the config in its metadata (loads without a config), or an HF folder."};
  app.add_option("--input", p.input, "checkpoint file or folder, or a Hugging Face hub name (hf-hub:org/name)")
      ->required()
      ->check([](const std::string& input) {
        return clip::is_hub_model_name(input) ? std::string() : CLI::ExistingPath(input);
      });
  p.model.add_to(app, /*with_verify=*/true);
  app.add_option("--output", p.output, "output .safetensors file, or folder with --format hf")->required();
  app.add_option("--format", p.format, "safetensors | hf")
      ->capture_default_str()
      ->check(CLI::IsMember({"safetensors", "hf"}));
  app.add_option("--dtype", p.dtype, "dtype of the written weights: fp32 | fp16 | bf16")
      ->capture_default_str()
      ->check(CLI::IsMember({"fp32", "fp16", "bf16"}));
  if (const auto done = clip::tools::parse_flags(app, argc, argv, "clip_convert")) return *done;
  return clip::tools::run_tool("clip_convert", [&] { return run(p); });
}
