#pragma once
/// The named models: OpenAI's released architectures, their configs in configs/models and the SHA-256 of the
/// release files.
///
///   clip::ModelConfig cfg = clip::registered_config("ViT-B-32");
///   clip::verify_release("ViT-B-32", "ViT-B-32.pt");   // warns on stderr when the hash differs
#include <string>
#include <vector>

#include "clip/model/config.h"

namespace clip {

/// One released model.
struct RegisteredModel {
  std::string name;          ///< registry name, also the config's file stem: "ViT-B-32"
  std::string release_file;  ///< OpenAI's file name: "ViT-B-32.pt"
  std::string sha256;        ///< of the release file
};

/// Every registered model, in release order.
const std::vector<RegisteredModel>& registered_models();

/// The entry for `name`; throws clip::Error listing the known names otherwise.
const RegisteredModel& registered_model(const std::string& name);

/// Reads `name`'s config from configs/models (see resource_path). Names of config files there that are not
/// release models (the tiny test models) work too, and so does the path of a config file ("x.json").
ModelConfig registered_config(const std::string& name);

/// Hashes `path` and compares with the release's SHA-256. Returns true when they match; otherwise prints a
/// warning naming the file and both hashes to stderr and returns false.
bool verify_release(const std::string& name, const std::string& path);

}  // namespace clip
