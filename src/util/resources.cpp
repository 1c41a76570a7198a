#include "clip/util/resources.h"

#include <dlfcn.h>

#include <cstdlib>
#include <filesystem>

#include "clip/util/error.h"

namespace fs = std::filesystem;

namespace clip {

std::vector<std::string> resource_roots() {
  std::vector<std::string> roots;
  if (const char* env = std::getenv("CLIP_DATA_DIR"); env != nullptr && *env != '\0') roots.emplace_back(env);
  // Where this shared library lives: <prefix>/lib/libclip.so -> <prefix>/share/clip.
  Dl_info info{};
  if (dladdr(reinterpret_cast<void*>(&resource_roots), &info) != 0 && info.dli_fname != nullptr) {
    std::error_code ec;
    const fs::path lib = fs::weakly_canonical(fs::path(info.dli_fname), ec);
    if (!ec) roots.push_back((lib.parent_path().parent_path() / "share" / "clip").string());
  }
  return roots;
}

std::string resource_path(const std::string& relative) {
  const std::vector<std::string> roots = resource_roots();
  for (const auto& root : roots) {
    const fs::path candidate = fs::path(root) / relative;
    if (fs::exists(candidate)) return candidate.string();
  }
  std::string searched;
  for (const auto& root : roots) searched += (searched.empty() ? "" : ", ") + root;
  fail(relative, ": not found in libclip's data folders (", searched, "); set CLIP_DATA_DIR to the folder holding it");
}

}  // namespace clip
