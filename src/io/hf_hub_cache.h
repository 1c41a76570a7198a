#pragma once
// The parts of huggingface_hub's cache layout that finding and fetching share (src/io/hf_hub.cpp,
// src/io/hf_hub_fetch.cpp). io-layer code.
#include <filesystem>
#include <string>

#include "clip/io/hf_hub.h"

namespace clip::detail {

/// The options with every empty field filled from the environment (huggingface_hub's variables and defaults).
HubOptions resolve_hub_options(const HubOptions& options);

/// `<cache>/models--<org>--<name>`.
std::filesystem::path hub_repo_dir(const HubOptions& resolved, const std::string& repo);

/// Whether `revision` is a full commit hash (40 lowercase hex digits).
bool is_commit_hash(const std::string& revision);

/// The commit `revision` names in the cache (itself for a commit hash; refs/<revision> for a branch), or "".
std::string cached_commit(const std::filesystem::path& repo_dir, const std::string& revision);

/// A file path inside a repo: relative, no "..", no empty parts, no backslashes (it names a cache path).
void check_repo_file(const std::string& repo, const std::string& file);

}  // namespace clip::detail
