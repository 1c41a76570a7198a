#pragma once
// The model-loading flags that clip_embed, clip_zeroshot and clip_convert share (--checkpoint is each tool's own).
#include <CLI/CLI.hpp>

#include <string>

#include "clip/model/checkpoint.h"
#include "clip/model/pretrained.h"

namespace clip::tools {

/// --checkpoint's check: a file or folder that exists, a Hugging Face hub name (hf-hub:org/name), or one of
/// open_clip's pretrained tags (with --model: `--model ViT-B-32 --pretrained openai`; --pretrained is the same flag).
inline const CLI::Validator kCheckpointPath(
    [](std::string& value) {
      return clip::is_hub_model_name(value) || clip::is_pretrained_tag(value) ? std::string()
                                                                               : CLI::ExistingPath(value);
    },
    "PATH, hf-hub:ORG/NAME or a pretrained TAG");

struct ModelFlags {
  std::string config, model;
  std::string precision = "fp32";
  bool verify = false, strict = false, override_config = false;

  /// Adds --config, --model, --override-config, and --verify and --strict where asked (a tool whose own --strict
  /// means more sets `strict` itself).
  void add_to(CLI::App& app, bool with_verify, bool with_strict = true) {
    app.add_option("--config", config,
                   "model config JSON (open_clip schema); default: stored with the checkpoint, else inferred");
    app.add_option("--model", model,
                   "registry name (RN50 ... ViT-L-14-336, configs/models): its config, and --verify's hash; with "
                   "--pretrained TAG, the model whose released weights open_clip names so (docs/models.md)");
    if (with_verify) {
      app.add_flag("--verify", verify, "with --model: compare the checkpoint's SHA-256 with OpenAI's release (warns)");
    }
    if (with_strict) {
      app.add_flag("--strict", strict, "refuse weights that hold NaN or infinity (default: load them with a warning)");
    }
    app.add_flag("--override-config", override_config,
                 "let --config/--model differ from the config the checkpoint stores (default: refused)");
  }

  /// Adds --precision (the tools that encode).
  void add_precision(CLI::App& app) {
    app.add_option("--precision", precision,
                   "CPU inference arithmetic: fp32 (the reference's), int8 (dynamic quantized linear layers) or bf16 "
                   "(CPUs with AVX512-BF16 or AMX); speed and accuracy: docs/performance.md")
        ->check(CLI::IsMember({"fp32", "bf16", "int8"}))
        ->capture_default_str();
  }

  clip::LoadOptions options() const {
    return clip::LoadOptions()
        .config_path(config)
        .model_name(model)
        .verify(verify)
        .strict(strict)
        .override_config(override_config)
        .precision(clip::parse_inference_precision(precision));
  }
};

}  // namespace clip::tools
