#pragma once
// The model-loading flags that clip_embed, clip_zeroshot and clip_convert share (--checkpoint is each tool's own).
#include <CLI/CLI.hpp>

#include <string>

#include "clip/model/checkpoint.h"

namespace clip::tools {

struct ModelFlags {
  std::string config, model;
  bool verify = false, strict = false, override_config = false;

  /// Adds --config, --model, --override-config, and --verify and --strict where asked (a tool whose own --strict
  /// means more sets `strict` itself).
  void add_to(CLI::App& app, bool with_verify, bool with_strict = true) {
    app.add_option("--config", config,
                   "model config JSON (open_clip schema); default: stored with the checkpoint, else inferred");
    app.add_option("--model", model, "registry name (RN50 ... ViT-L-14-336): its config, and --verify's hash");
    if (with_verify) {
      app.add_flag("--verify", verify, "with --model: compare the checkpoint's SHA-256 with OpenAI's release (warns)");
    }
    if (with_strict) {
      app.add_flag("--strict", strict, "refuse weights that hold NaN or infinity (default: load them with a warning)");
    }
    app.add_flag("--override-config", override_config,
                 "let --config/--model differ from the config the checkpoint stores (default: refused)");
  }

  clip::LoadOptions options() const {
    return clip::LoadOptions().config_path(config).model_name(model).verify(verify).strict(strict).override_config(
        override_config);
  }
};

}  // namespace clip::tools
