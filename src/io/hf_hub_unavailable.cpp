// fetch_hub_file in a build without libcurl (CLIP_WITH_HUB=OFF): the cache is still read.
#include "clip/io/hf_hub.h"
#include "clip/util/error.h"
#include "io/hf_hub_cache.h"

namespace clip {

std::string fetch_hub_file(const std::string& name, const std::string& file, const HubOptions& options, bool optional) {
  const std::string cached = cached_hub_file(name, file, options);
  if (!cached.empty()) return cached;
  if (optional) return "";
  const HubOptions o = detail::resolve_hub_options(options);
  if (*o.offline) {
    fail(parse_hub_repo(name), ": ", file, " is not in the cache ", o.cache_dir, " and HF_HUB_OFFLINE is set; fetch it once online");
  }
  fail(parse_hub_repo(name), ": ", file, " is not in the cache ", o.cache_dir,
       " and this libclip cannot download (built without libcurl: CLIP_WITH_HUB=OFF); fetch it with huggingface_hub "
       "(huggingface-cli download ", parse_hub_repo(name), ") or a libclip built with libcurl");
}

}  // namespace clip
