#include "train_flags.h"

#include <CLI/CLI.hpp>

#include <cstdlib>
#include <iostream>
#include <map>

#include "clip/util/error.h"

namespace clip::tools {
namespace {

std::string flag_name(const std::string& key) {
  std::string flag = "--" + key;
  for (char& ch : flag) ch = ch == '_' ? '-' : ch;
  return flag;
}

}  // namespace

TrainConfig parse_train_args(int argc, const char* const* argv) {
  const std::vector<TrainSetting> settings = train_settings();
  CLI::App app{"clip_train: contrastive training of a CLIP model.\n"
               "Settings come from --config FILE.json, then from flags; every JSON key is also a flag\n"
               "(batch_size <-> --batch-size). The resolved config is printed and saved in output_dir."};
  std::string config_file;
  app.add_option("--config", config_file, "training config JSON (configs/train/*.json)")->check(CLI::ExistingFile);
  std::map<std::string, std::string> given;
  for (const TrainSetting& s : settings) {
    if (s.is_switch) {
      // A switch works bare (--lock-image) or with a value (--lock-image false). No default_str: CLI11 would
      // hand a bare switch its default as the value.
      app.add_option(flag_name(s.key), given[s.key], s.help + " (default " + s.default_value + ")")
          ->expected(0, 1)
          ->type_name("[BOOL]");
    } else {
      app.add_option(flag_name(s.key), given[s.key], s.help)->default_str(s.default_value);
    }
  }
  try {
    app.parse(argc, argv);
  } catch (const CLI::Success&) {
    std::cout << app.help();
    std::exit(0);
  } catch (const CLI::ParseError& e) {
    fail(e.what(), " (clip_train --help lists every flag)");
  }
  TrainConfig config;
  if (!config_file.empty()) config = load_train_config(config_file);
  for (const TrainSetting& s : settings) {
    if (app.get_option(flag_name(s.key))->count() == 0) continue;
    const std::string& text = given[s.key];
    set_train_setting(config, s.key, s.is_switch && text.empty() ? "true" : text, flag_name(s.key));
  }
  try {
    validate(config);
  } catch (const InvalidSetting& e) {
    // Name where the bad value came from: the flag (the message already does), or the config file's key.
    const bool from_flag = app.get_option(flag_name(e.key()))->count() > 0;
    if (!from_flag && !config_file.empty() &&
        train_setting(load_train_config(config_file), e.key()) != train_setting(TrainConfig{}, e.key())) {
      fail(config_file, ": '", e.key(), "' ", e.value(), ": expected ", e.expected());
    }
    throw;
  }
  return config;
}

}  // namespace clip::tools
