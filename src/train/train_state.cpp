#include "clip/train/train_state.h"

#include <ATen/ATen.h>
#include <ATen/CPUGeneratorImpl.h>
#include <torch/nn/module.h>

#include <algorithm>
#include <cstdio>
#include <filesystem>

#include <nlohmann/json.hpp>

#include "clip/io/safetensors.h"
#include "clip/util/error.h"
#include "clip/util/log.h"
#include "util/json.h"

namespace fs = std::filesystem;

namespace clip {
namespace {

using json = nlohmann::json;

std::vector<fs::path> checkpoint_files(const std::string& output_dir) {
  std::vector<fs::path> files;
  const fs::path dir = fs::path(output_dir) / "checkpoints";
  std::error_code ec;
  if (!fs::is_directory(dir, ec)) return files;
  for (const auto& entry : fs::directory_iterator(dir)) {
    const std::string name = entry.path().filename().string();
    if (name.rfind("step_", 0) == 0 && entry.path().extension() == ".safetensors") files.push_back(entry.path());
  }
  std::sort(files.begin(), files.end());  // zero-padded step numbers sort by step
  return files;
}

}  // namespace

std::string checkpoint_path(const std::string& output_dir, int64_t step) {
  char name[64];
  std::snprintf(name, sizeof name, "step_%08lld.safetensors", static_cast<long long>(step));
  return (fs::path(output_dir) / "checkpoints" / name).string();
}

void save_train_checkpoint(const std::string& path, CLIPImpl& model, const TensorMap& optimizer_state,
                           const TrainProgress& progress, const std::string& train_config_json) {
  std::error_code ec;
  fs::create_directories(fs::path(path).parent_path(), ec);
  if (ec) fail(path, ": cannot create the checkpoint folder (", ec.message(), ")");
  TensorMap tensors;
  for (const auto& [name, t] : state_dict(model)) tensors["model." + name] = t;
  for (const auto& [name, t] : optimizer_state) tensors["optim." + name] = t;
  tensors["rng.cpu"] = at::detail::getDefaultCPUGenerator().get_state();
  const json p = {{"step", progress.step},
                  {"epoch", progress.epoch},
                  {"batch_in_epoch", progress.batch_in_epoch},
                  {"samples_seen", progress.samples_seen},
                  {"nonfinite_skipped", progress.nonfinite_skipped},
                  {"data_position", progress.data_position},
                  {"world_size", progress.world_size},
                  {"global_batch", progress.global_batch}};
  write_safetensors(path, tensors,
                    {{"format", "pt"},
                     {"clip_train_checkpoint", "1"},
                     {"progress", p.dump()},
                     {"train_config", train_config_json},
                     {"config", to_json(model.config())}});
}

TrainCheckpoint load_train_checkpoint(const std::string& path) {
  Safetensors file = read_safetensors(path);
  if (!file.metadata.count("clip_train_checkpoint") || !file.metadata.count("progress")) {
    fail(path, ": not a clip_train checkpoint (no training metadata); use --init to start from model weights");
  }
  TrainCheckpoint c;
  c.path = path;
  for (auto& [name, t] : file.tensors) {
    if (name.rfind("model.", 0) == 0) {
      c.model[name.substr(6)] = t;
    } else if (name.rfind("optim.", 0) == 0) {
      c.optimizer[name.substr(6)] = t;
    } else if (name == "rng.cpu") {
      c.cpu_rng_state = t;
    }
  }
  try {
    const json p = parse_json(file.metadata.at("progress"), path + " (progress)");
    c.progress.step = p.at("step").get<int64_t>();
    c.progress.epoch = p.at("epoch").get<int64_t>();
    c.progress.batch_in_epoch = p.at("batch_in_epoch").get<int64_t>();
    c.progress.samples_seen = p.at("samples_seen").get<int64_t>();
    c.progress.nonfinite_skipped = p.at("nonfinite_skipped").get<int64_t>();
    c.progress.data_position = p.value("data_position", "");
    c.progress.world_size = p.value("world_size", int64_t(0));
    c.progress.global_batch = p.value("global_batch", int64_t(0));
  } catch (const std::exception& e) {
    fail(path, ": malformed progress metadata (", e.what(), ")");
  }
  c.train_config_json = file.metadata.count("train_config") ? file.metadata.at("train_config") : "{}";
  c.model_config_json = file.metadata.count("config") ? file.metadata.at("config") : "";
  if (c.model.empty() || c.optimizer.empty()) fail(path, ": the checkpoint holds no model or optimizer state");
  return c;
}

std::string latest_checkpoint(const std::string& output_dir) {
  const fs::path dir = fs::path(output_dir) / "checkpoints";
  std::error_code ec;
  if (fs::is_directory(dir, ec)) {
    for (const auto& entry : fs::directory_iterator(dir)) {
      if (entry.path().filename().string().find(".tmp.") != std::string::npos) fs::remove(entry.path(), ec);
    }
  }
  std::vector<fs::path> files = checkpoint_files(output_dir);
  for (auto it = files.rbegin(); it != files.rend(); ++it) {
    try {
      load_train_checkpoint(it->string());
      return it->string();
    } catch (const Error& e) {
      log_warning("skipping unreadable checkpoint: ", e.what());
    }
  }
  return "";
}

std::vector<std::string> run_files(const std::string& output_dir) {
  std::vector<std::string> out;
  for (const fs::path& f : checkpoint_files(output_dir)) out.push_back(f.string());
  for (const char* name : {"metrics.jsonl", "zeroshot_details.json", "model.safetensors", "report.html"}) {
    std::error_code ec;
    const fs::path p = fs::path(output_dir) / name;
    if (fs::exists(p, ec)) out.push_back(p.string());
  }
  return out;
}

void prune_checkpoints(const std::string& output_dir, int64_t keep) {
  std::vector<fs::path> files = checkpoint_files(output_dir);
  for (size_t i = 0; i + static_cast<size_t>(keep) < files.size(); ++i) {
    std::error_code ec;
    fs::remove(files[i], ec);
  }
}

}  // namespace clip
