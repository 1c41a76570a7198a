#pragma once
/// Files of Hugging Face hub repositories, in the local cache exactly as `huggingface_hub` lays it out, and fetched
/// into it when missing.
///
///   std::string path = clip::fetch_hub_file("timm/ViT-B-16-SigLIP2", "open_clip_config.json");
///   // ~/.cache/huggingface/hub/models--timm--ViT-B-16-SigLIP2/snapshots/<commit>/open_clip_config.json
///
/// The cache: `$HF_HUB_CACHE`, else `$HF_HOME/hub`, else `$XDG_CACHE_HOME/huggingface/hub`, else
/// `~/.cache/huggingface/hub`; a repo is `models--<org>--<name>/` with `refs/<revision>` (the commit a branch
/// pointed at), `blobs/<etag>` (the files; an LFS file's etag is its SHA-256) and `snapshots/<commit>/<path>`
/// (relative symbolic links to the blobs). Python's huggingface_hub and libclip share it: what one fetched, the other
/// finds. Fetching asks `$HF_ENDPOINT` (https://huggingface.co by default) for the file's metadata (HEAD
/// `/<repo>/resolve/<revision>/<path>`), downloads it into `blobs/<etag>.incomplete` (resuming a partial one with an
/// HTTP range, retrying a dropped connection), checks its size and, for LFS files, its SHA-256 against the hub's
/// `X-Linked-Etag`, and only then moves it in place. `$HF_TOKEN` (or `$HF_HOME/token`) is sent for gated and private
/// repos; with `$HF_HUB_OFFLINE=1` nothing is asked of the network. Without libcurl (CLIP_WITH_HUB=OFF) files
/// already in the cache are still found; fetching throws clip::Error naming the option.
#include <cstdint>
#include <functional>
#include <optional>
#include <string>

namespace clip {

/// Where and how to fetch; every empty field takes huggingface_hub's environment variable or default.
struct HubOptions {
  std::string revision = "main";  ///< a branch, a tag or a 40-hex-digit commit
  std::string cache_dir;          ///< the hub cache folder (see hub_cache_dir)
  std::string endpoint;           ///< `$HF_ENDPOINT`, else https://huggingface.co
  std::string token;              ///< `$HF_TOKEN`, else the file `$HF_HOME/token` (huggingface-cli login's)
  std::optional<bool> offline;    ///< `$HF_HUB_OFFLINE` (1, true, yes, on)
  /// Called while a file downloads: (repo path, bytes done, bytes in all). Unset: a progress bar on stderr for
  /// files over 10 MB (clip::Progress).
  std::function<void(const std::string&, int64_t, int64_t)> progress;
  int attempts = 5;  ///< tries per file when the connection drops; each resumes where the last stopped
};

/// The cache folder the options (or the environment) name.
std::string hub_cache_dir(const HubOptions& options = {});

/// `org/name` (or `hf-hub:org/name`, open_clip's spelling) checked as a repo id; throws clip::Error saying what is
/// wrong otherwise. Returns it without the prefix.
std::string parse_hub_repo(const std::string& name);

/// The path of `file` of `repo` at options.revision in the cache, or "" when it is not there; never asks the network.
std::string cached_hub_file(const std::string& repo, const std::string& file, const HubOptions& options = {});

/// The path of `file` in the cache, fetched first when it is missing or the revision moved. A file the repo does
/// not have is "" when `optional`, else clip::Error. Every other failure (unreachable hub, gated repo without a
/// token, checksum mismatch, offline and not cached) is clip::Error with one line saying what to do. When the hub
/// cannot be reached and the cache has the file, the cached one is used with a warning, as huggingface_hub does.
std::string fetch_hub_file(const std::string& repo, const std::string& file, const HubOptions& options = {},
                           bool optional = false);

}  // namespace clip
