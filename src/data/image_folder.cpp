#include "clip/data/image_folder.h"

#include <sys/stat.h>

#include <algorithm>
#include <cctype>
#include <filesystem>
#include <optional>
#include <set>

#include "clip/util/error.h"
#include "clip/util/log.h"

namespace fs = std::filesystem;

namespace clip {
namespace {

bool hidden(const fs::path& p) { return !p.filename().empty() && p.filename().string()[0] == '.'; }

void require_folder(const std::string& root) {
  std::error_code ec;
  if (!fs::is_directory(root, ec)) fail(root, fs::exists(root, ec) ? ": not a folder" : ": no such folder");
}

// What a walk has seen, by device and inode: each real folder is entered once and each real file listed once,
// however many symlinks (or hard links) reach them; a symlink back into the walk (`self -> .`) is reported once
// and not followed.
struct Walk {
  std::set<std::pair<uint64_t, uint64_t>> folders, files;
  std::vector<std::string> loops;
};

std::optional<std::pair<uint64_t, uint64_t>> identity(const fs::path& p) {
  struct stat st {};
  if (::stat(p.c_str(), &st) != 0) return std::nullopt;
  return std::make_pair(static_cast<uint64_t>(st.st_dev), static_cast<uint64_t>(st.st_ino));
}

// Sorted image files below `dir`, skipping hidden entries and not descending into hidden folders. The walk goes in
// sorted depth-first order, so which of two names of one file is kept does not depend on the file system.
std::vector<std::string> images_below(const fs::path& dir, Walk& walk) {
  std::vector<std::string> out;
  std::vector<fs::path> pending{dir};
  while (!pending.empty()) {
    const fs::path folder = std::move(pending.back());
    pending.pop_back();
    if (const auto id = identity(folder); id && !walk.folders.insert(*id).second) {
      std::error_code ec;
      if (fs::is_symlink(folder, ec)) walk.loops.push_back(folder.string());
      continue;
    }
    std::vector<fs::directory_entry> entries;
    std::error_code ec;
    for (fs::directory_iterator it(folder, ec), end; !ec && it != end; it.increment(ec)) entries.push_back(*it);
    if (ec) fail(folder.string(), ": cannot list (", ec.message(), ")");
    std::sort(entries.begin(), entries.end());
    std::vector<fs::path> subfolders;
    for (const fs::directory_entry& entry : entries) {
      if (hidden(entry.path())) continue;
      if (entry.is_directory(ec)) {
        subfolders.push_back(entry.path());
      } else if (entry.is_regular_file(ec) && has_image_extension(entry.path().string())) {
        const auto id = identity(entry.path());
        if (!id || walk.files.insert(*id).second) out.push_back(entry.path().string());  // else: the same file again
      }
    }
    pending.insert(pending.end(), subfolders.rbegin(), subfolders.rend());  // the first subfolder is visited next
  }
  std::sort(out.begin(), out.end());
  return out;
}

void report_loops(const Walk& walk) {
  if (walk.loops.empty()) return;
  log_warning(walk.loops.front(), ": a symlink to a folder already listed, not followed again",
              walk.loops.size() > 1 ? str(" (and ", walk.loops.size() - 1, " more such links)") : std::string());
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
  Walk walk;
  folder.paths = images_below(root, walk);
  report_loops(walk);
  if (folder.paths.empty()) fail(root, ": holds no images (looked recursively for .jpg .png .webp .bmp .tif ...)");
  return folder;
}

ImageFolder scan_labeled_folder(const std::string& root) {
  require_folder(root);
  ImageFolder folder;
  folder.root = root;
  const std::vector<fs::path> classes = class_folders(root);
  if (classes.empty()) fail(root, ": has no class subfolders; a labeled folder holds one subfolder per class");
  Walk walk;
  for (size_t c = 0; c < classes.size(); ++c) {
    folder.classes.push_back(classes[c].filename().string());
    for (auto& path : images_below(classes[c], walk)) {
      folder.paths.push_back(std::move(path));
      folder.labels.push_back(static_cast<int64_t>(c));
    }
  }
  report_loops(walk);
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
