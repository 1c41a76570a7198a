#include "clip/data/image_folder.h"

#include <algorithm>
#include <cctype>
#include <filesystem>

#include "clip/util/error.h"

namespace fs = std::filesystem;

namespace clip {
namespace {

bool hidden(const fs::path& p) { return !p.filename().empty() && p.filename().string()[0] == '.'; }

void require_folder(const std::string& root) {
  std::error_code ec;
  if (!fs::is_directory(root, ec)) fail(root, fs::exists(root, ec) ? ": not a folder" : ": no such folder");
}

// Sorted image files below `dir`, skipping hidden entries (and not descending into hidden folders).
std::vector<std::string> images_below(const fs::path& dir) {
  std::vector<std::string> out;
  std::error_code ec;
  fs::recursive_directory_iterator it(dir, fs::directory_options::follow_directory_symlink, ec), end;
  if (ec) fail(dir.string(), ": cannot list (", ec.message(), ")");
  for (; it != end; it.increment(ec)) {
    if (ec) fail(dir.string(), ": cannot list (", ec.message(), ")");
    if (hidden(it->path())) {
      if (it->is_directory(ec)) it.disable_recursion_pending();
      continue;
    }
    if (it->is_regular_file(ec) && has_image_extension(it->path().string())) out.push_back(it->path().string());
  }
  std::sort(out.begin(), out.end());
  return out;
}

std::vector<fs::path> class_folders(const std::string& root) {
  std::vector<fs::path> out;
  for (const auto& entry : fs::directory_iterator(root)) {
    std::error_code ec;
    if (!hidden(entry.path()) && entry.is_directory(ec)) out.push_back(entry.path());
  }
  std::sort(out.begin(), out.end());
  return out;
}

}  // namespace

bool has_image_extension(const std::string& path) {
  std::string ext = fs::path(path).extension().string();
  std::transform(ext.begin(), ext.end(), ext.begin(), [](unsigned char c) { return std::tolower(c); });
  for (const char* known : {".jpg", ".jpeg", ".jpe", ".png", ".bmp", ".webp", ".tif", ".tiff", ".ppm", ".pgm", ".pbm"}) {
    if (ext == known) return true;
  }
  return false;
}

ImageFolder scan_images(const std::string& root) {
  require_folder(root);
  ImageFolder folder;
  folder.root = root;
  folder.paths = images_below(root);
  if (folder.paths.empty()) fail(root, ": holds no images (looked recursively for .jpg .png .webp .bmp .tif ...)");
  return folder;
}

ImageFolder scan_labeled_folder(const std::string& root) {
  require_folder(root);
  ImageFolder folder;
  folder.root = root;
  const std::vector<fs::path> classes = class_folders(root);
  if (classes.empty()) fail(root, ": has no class subfolders; a labeled folder holds one subfolder per class");
  for (size_t c = 0; c < classes.size(); ++c) {
    folder.classes.push_back(classes[c].filename().string());
    for (auto& path : images_below(classes[c])) {
      folder.paths.push_back(std::move(path));
      folder.labels.push_back(static_cast<int64_t>(c));
    }
  }
  if (folder.paths.empty()) fail(root, ": its ", classes.size(), " class subfolders hold no images");
  return folder;
}

bool looks_labeled(const std::string& root) {
  require_folder(root);
  bool has_folder = false;
  for (const auto& entry : fs::directory_iterator(root)) {
    std::error_code ec;
    if (hidden(entry.path())) continue;
    if (entry.is_directory(ec)) has_folder = true;
    if (entry.is_regular_file(ec) && has_image_extension(entry.path().string())) return false;
  }
  return has_folder;
}

}  // namespace clip
